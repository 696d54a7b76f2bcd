//! In-process tests of the `/v1/admit` router (`tower::ServiceExt::oneshot`), with reviewers
//! whose answers and timing the test controls: the mapping from findings to Gatekeeper's
//! response, concurrency slots and timeouts, and the bad-input paths.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use policy_webhook::admission::{AdmissionState, router};
use policy_webhook::config::{AdmissionSettings, TimeoutPolicy};
use policy_webhook::metrics::Metrics;
use policy_webhook::policy::PolicyStore;
use policy_webhook::review::{Action, ConstraintRun, Finding, Review, ReviewError, Reviewer};
use serde_json::json;
use tower::ServiceExt;

const ALLOW: &str = include_str!("../../tests/webhook/reviews/pod-create-allow.json");

/// Returns fixed findings; records the request it saw.
#[derive(Debug, Default)]
struct Fixed {
    findings: Vec<Finding>,
    seen: std::sync::Mutex<Vec<regorus::Value>>,
}

impl Reviewer for Fixed {
    fn review(&self, request: &regorus::Value, _: Duration) -> Result<Review, ReviewError> {
        self.seen.lock().unwrap().push(request.clone());
        Ok(Review {
            findings: self.findings.clone(),
            runs: vec![ConstraintRun {
                kind: "K".into(),
                name: "c".into(),
                duration: Duration::from_micros(5),
                violations: self.findings.len(),
            }],
            ..Review::default()
        })
    }
    fn template_count(&self) -> usize {
        1
    }
    fn constraint_count(&self) -> usize {
        1
    }
}

/// Sleeps, counting how many run at once.
#[derive(Debug, Default)]
struct Slow {
    delay: Duration,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Reviewer for Slow {
    fn review(&self, _: &regorus::Value, budget: Duration) -> Result<Review, ReviewError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.delay.min(budget));
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.delay > budget {
            Err(ReviewError::Timeout(budget))
        } else {
            Ok(Review::default())
        }
    }
    fn template_count(&self) -> usize {
        0
    }
    fn constraint_count(&self) -> usize {
        0
    }
}

#[derive(Debug)]
struct Failing;

impl Reviewer for Failing {
    fn review(&self, _: &regorus::Value, _: Duration) -> Result<Review, ReviewError> {
        Err(ReviewError::Failed("template k8sx: boom".into()))
    }
    fn template_count(&self) -> usize {
        0
    }
    fn constraint_count(&self) -> usize {
        0
    }
}

/// Panics on every review, as a bug in the engine would.
#[derive(Debug)]
struct Panicking;

impl Reviewer for Panicking {
    fn review(&self, _: &regorus::Value, _: Duration) -> Result<Review, ReviewError> {
        panic!("engine bug")
    }
    fn template_count(&self) -> usize {
        0
    }
    fn constraint_count(&self) -> usize {
        0
    }
}

fn finding(name: &str, msg: &str, action: Action) -> Finding {
    Finding {
        constraint_kind: "K8sThing".into(),
        constraint_name: name.into(),
        msg: msg.into(),
        action,
    }
}

fn app(reviewer: Arc<dyn Reviewer>, settings: AdmissionSettings) -> (axum::Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let state = AdmissionState::new(
        settings,
        Arc::new(PolicyStore::with(reviewer)),
        metrics.clone(),
    )
    .unwrap();
    (router(Arc::new(state)), metrics)
}

async fn post(app: axum::Router, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
    let req = Request::post("/v1/admit")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

fn response(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(body).unwrap()["response"].clone()
}

#[tokio::test]
async fn deny_and_warn_lines_follow_gatekeeper() {
    let reviewer = Arc::new(Fixed {
        findings: vec![
            finding("a-deny", "first", Action::Deny),
            finding("b-warn", "careful", Action::Warn),
            finding("c-dry", "only logged", Action::Dryrun),
            finding("d-deny", "second\nline", Action::Deny),
        ],
        ..Fixed::default()
    });
    let (app, metrics) = app(reviewer.clone(), AdmissionSettings::default());
    let (status, body) = post(app, ALLOW).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        response(&body),
        json!({
            "uid": "0d7a1c9e-2b56-4d9a-9c1e-8f34b5e6a701",
            "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": "[a-deny] first\n[d-deny] second\nline"},
            "warnings": ["[b-warn] careful"]
        })
    );
    // The reviewer got the raw request object, untouched.
    let raw: serde_json::Value = serde_json::from_str(ALLOW).unwrap();
    let seen = reviewer.seen.lock().unwrap()[0].to_string();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen).unwrap(),
        raw["request"]
    );
    let text = metrics.encode();
    assert!(text.contains(
        "regard_webhook_constraint_violations_total{kind=\"K8sThing\",name=\"c-dry\",action=\"dryrun\"} 1\n"
    ));
}

#[tokio::test]
async fn dryrun_only_is_allowed_without_warnings() {
    let reviewer = Arc::new(Fixed {
        findings: vec![finding("c-dry", "only logged", Action::Dryrun)],
        ..Fixed::default()
    });
    let (app, _) = app(reviewer, AdmissionSettings::default());
    let (_, body) = post(app, ALLOW).await;
    assert_eq!(
        response(&body),
        json!({"uid": "0d7a1c9e-2b56-4d9a-9c1e-8f34b5e6a701", "allowed": true, "status": {"code": 200}})
    );
}

#[tokio::test]
async fn review_failure_is_an_error_not_an_allow() {
    let (app, _) = app(Arc::new(Failing), AdmissionSettings::default());
    let (_, body) = post(app, ALLOW).await;
    assert_eq!(
        response(&body),
        json!({
            "uid": "0d7a1c9e-2b56-4d9a-9c1e-8f34b5e6a701",
            "allowed": false,
            "status": {"code": 500, "reason": "InternalError", "message": "policy evaluation failed: template k8sx: boom"}
        })
    );
}

#[tokio::test]
async fn a_panicking_review_is_an_error_and_the_server_goes_on() {
    let (app, _) = app(
        Arc::new(Panicking),
        AdmissionSettings {
            max_concurrent_evals: 1,
            ..AdmissionSettings::default()
        },
    );
    // Twice on the one evaluation thread: it survives the first panic.
    for _ in 0..2 {
        let (status, body) = post(app.clone(), ALLOW).await;
        assert_eq!(status, StatusCode::OK);
        let r = response(&body);
        assert_eq!(r["allowed"], false);
        assert_eq!(r["status"]["code"], 500);
        let message = r["status"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("policy evaluation failed: evaluation panicked: engine bug at policy-webhook/tests/router.rs:"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn not_loaded_is_an_error_not_an_allow() {
    let metrics = Arc::new(Metrics::new());
    let state = AdmissionState::new(
        AdmissionSettings::default(),
        Arc::new(PolicyStore::new()),
        metrics,
    )
    .unwrap();
    let (_, body) = post(router(Arc::new(state)), ALLOW).await;
    assert_eq!(response(&body)["allowed"], false);
    assert_eq!(response(&body)["status"]["code"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_are_bounded_and_queueing_counts_against_the_budget() {
    let slow = Arc::new(Slow {
        delay: Duration::from_millis(1200),
        ..Slow::default()
    });
    let settings = AdmissionSettings {
        max_concurrent_evals: 2,
        eval_timeout: Duration::from_millis(2000),
        timeout_policy: TimeoutPolicy::Deny,
        ..AdmissionSettings::default()
    };
    let (app, metrics) = app(slow.clone(), settings);
    // Four requests, two slots, 1.2 s each against a 2 s budget: two run at once and finish;
    // the other two wait for a slot, start with 0.8 s left, and time out.
    let tasks: Vec<_> = (0..4)
        .map(|_| tokio::spawn(post(app.clone(), ALLOW)))
        .collect();
    let mut allowed = 0;
    let mut timed_out = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        match response(&body)["status"]["code"].as_u64() {
            Some(200) => allowed += 1,
            Some(504) => timed_out += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(slow.peak.load(Ordering::SeqCst), 2);
    assert_eq!((allowed, timed_out), (2, 2));
    assert!(
        metrics
            .encode()
            .contains("regard_webhook_admission_timeouts_total 2\n")
    );
}

#[tokio::test]
async fn body_limit_and_methods() {
    let settings = AdmissionSettings {
        max_body_bytes: 100,
        ..AdmissionSettings::default()
    };
    let (app, _) = app(Arc::new(Fixed::default()), settings);
    let (status, body) = post(app.clone(), ALLOW).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, b"request body larger than 100 bytes\n");
    let resp = app
        .clone()
        .oneshot(Request::get("/v1/admit").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
