//! End-to-end admission tests: the real `regard-webhook` binary evaluating the policies in
//! `tests/webhook/policies*` for the AdmissionReviews in `tests/webhook/reviews`, over verified
//! HTTPS on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::{Setup, fixture, http_get, sample};
use serde_json::json;

const DENY_LABELS: &str = "[pod-must-have-app] Pod web-bad must have labels: app, owner";
const WARN_TAG: &str = "[no-latest-tag] container <web> uses a disallowed tag <latest>";

#[tokio::test]
async fn gatekeeper_response_shapes() {
    let setup = Setup::new("policies");
    let hook = setup.start(&[
        "--exempt-namespace",
        "kube-*",
        "--exempt-namespace",
        "*-system",
    ]);
    hook.wait_ready().await;

    let deny = hook.admit(&fixture("reviews/pod-create-deny.json")).await;
    assert_eq!(deny.status, 200);
    assert_eq!(deny.content_type, "application/json");
    assert_eq!(
        deny.json(),
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "allowed": false,
                "status": {"code": 403, "reason": "Forbidden", "message": DENY_LABELS},
                "warnings": [WARN_TAG]
            }
        })
    );

    let v1beta1 = hook
        .admit(&fixture("reviews/pod-create-deny-v1beta1.json"))
        .await;
    assert_eq!(
        v1beta1.json(),
        json!({
            "apiVersion": "admission.k8s.io/v1beta1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "7f0b2cbd-3f4c-4bd5-8e53-3f2e0c5f1b21",
                "allowed": false,
                "status": {"code": 403, "reason": "Forbidden", "message": DENY_LABELS},
                "warnings": [WARN_TAG]
            }
        })
    );

    let allow = hook.admit(&fixture("reviews/pod-create-allow.json")).await;
    assert_eq!(
        allow.json(),
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": "0d7a1c9e-2b56-4d9a-9c1e-8f34b5e6a701", "allowed": true, "status": {"code": 200}}
        })
    );

    let warn = hook.admit(&fixture("reviews/pod-create-warn.json")).await;
    assert_eq!(
        warn.json()["response"],
        json!({
            "uid": "c2b8e0f1-9d4a-4c3b-8e7f-6a5b4c3d2e1f",
            "allowed": true,
            "status": {"code": 299},
            "warnings": ["[no-latest-tag] container <web> uses a disallowed tag <latest>"]
        })
    );

    // dryRun requests are evaluated like real ones.
    let dry = hook.admit(&fixture("reviews/pod-create-dryrun.json")).await;
    assert_eq!(dry.json()["response"]["allowed"], false);
    assert_eq!(dry.json()["response"]["status"]["message"], DENY_LABELS);
    assert_eq!(
        dry.json()["response"]["uid"],
        "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
    );

    // DELETE evaluates oldObject.
    let delete = hook.admit(&fixture("reviews/pod-delete.json")).await;
    assert_eq!(delete.json()["response"]["allowed"], false);
    assert_eq!(delete.json()["response"]["status"]["message"], DENY_LABELS);
    let no_old = hook
        .admit(&fixture("reviews/pod-delete-no-old-object.json"))
        .await;
    assert_eq!(
        no_old.json()["response"],
        json!({
            "uid": "4f3e2d1c-0b9a-4f8e-a7d6-c5b4a3f2e1d0",
            "allowed": false,
            "status": {"code": 400, "reason": "BadRequest", "message": "oldObject cannot be nil for DELETE operations"}
        })
    );

    // --exempt-namespace: by request namespace, and by a Namespace object's own name.
    let exempt = hook
        .admit(&fixture("reviews/pod-create-exempt-namespace.json"))
        .await;
    assert_eq!(
        exempt.json()["response"],
        json!({
            "uid": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
            "allowed": true,
            "status": {"code": 200, "message": "namespace \"kube-system\" is exempt from policy (--exempt-namespace)"}
        })
    );
    let ns = hook
        .admit(&fixture("reviews/namespace-create-exempt.json"))
        .await;
    assert_eq!(ns.json()["response"]["allowed"], true);
    assert_eq!(
        ns.json()["response"]["status"]["message"],
        "namespace \"kube-tenant-a\" is exempt from policy (--exempt-namespace)"
    );

    // Constraint-level excludedNamespaces: the labels constraint skips "legacy"; only the
    // dryrun constraint fires, which is logged and counted but not reported.
    let excluded = hook
        .admit(&fixture("reviews/pod-create-excluded-namespace.json"))
        .await;
    assert_eq!(
        excluded.json()["response"],
        json!({"uid": "e5d4c3b2-a1f0-4e9d-8c7b-6a5f4e3d2c1b", "allowed": true, "status": {"code": 200}})
    );
    hook.wait_log("container <web> image <nginx:1.27> is not from an allowed repository")
        .await;
    let line = hook
        .log_text()
        .lines()
        .find(|l| l.contains("nginx:1.27"))
        .map(common::json_str)
        .unwrap();
    // Gatekeeper's --log-denies record (keys and message prefix).
    assert_eq!(
        line["message"],
        "denied admission: container <web> image <nginx:1.27> is not from an allowed repository"
    );
    assert_eq!(line["process"], "admission");
    assert_eq!(line["event_type"], "violation");
    assert_eq!(line["constraint_group"], "constraints.gatekeeper.sh");
    assert_eq!(line["constraint_kind"], "K8sAllowedRepos");
    assert_eq!(line["constraint_action"], "dryrun");
    assert_eq!(line["constraint_name"], "repos-trial");
    assert_eq!(line["resource_group"], "");
    assert_eq!(line["resource_api_version"], "v1");
    assert_eq!(line["resource_kind"], "Pod");
    assert_eq!(line["resource_namespace"], "legacy");
    assert_eq!(line["request_uid"], "e5d4c3b2-a1f0-4e9d-8c7b-6a5f4e3d2c1b");

    let m = hook.metrics_text().await;
    let get = |s: &str| sample(&m, s).unwrap_or_else(|| panic!("no {s} in\n{m}"));
    assert_eq!(
        get("regard_webhook_admission_requests_total{decision=\"deny\",dry_run=\"false\"}"),
        3.0
    );
    assert_eq!(
        get("regard_webhook_admission_requests_total{decision=\"deny\",dry_run=\"true\"}"),
        1.0
    );
    assert_eq!(
        get("regard_webhook_admission_requests_total{decision=\"allow\",dry_run=\"false\"}"),
        5.0
    );
    assert_eq!(
        get("regard_webhook_admission_requests_total{decision=\"error\",dry_run=\"false\"}"),
        1.0
    );
    assert_eq!(get("regard_webhook_admission_exempt_total"), 2.0);
    assert_eq!(
        get("regard_webhook_http_responses_total{code=\"200\"}"),
        10.0
    );
    assert_eq!(get("regard_webhook_policy_templates"), 3.0);
    assert_eq!(get("regard_webhook_policy_constraints"), 3.0);
    assert_eq!(
        get("regard_webhook_policy_reloads_total{result=\"success\"}"),
        1.0
    );
    assert_eq!(
        get(
            "regard_webhook_constraint_violations_total{kind=\"K8sRequiredLabels\",name=\"pod-must-have-app\",action=\"deny\"}"
        ),
        4.0
    );
    assert_eq!(
        get(
            "regard_webhook_constraint_violations_total{kind=\"K8sAllowedRepos\",name=\"repos-trial\",action=\"dryrun\"}"
        ),
        5.0
    );
    assert_eq!(
        get(
            "regard_webhook_constraint_evaluation_duration_seconds_count{kind=\"K8sDisallowedTags\",name=\"no-latest-tag\"}"
        ),
        7.0
    );
    assert_eq!(
        get(
            "regard_webhook_admission_duration_seconds_count{decision=\"allow\",dry_run=\"false\"}"
        ),
        5.0
    );
}

/// `--evaluator rvm` answers every fixture review byte for byte as the interpreter does.
#[tokio::test]
async fn the_rvm_evaluator_gives_the_interpreters_answers() {
    let setup = Setup::new("policies");
    let interpreter = setup.start(&[]);
    let rvm = setup.start(&["--evaluator", "rvm"]);
    interpreter.wait_ready().await;
    rvm.wait_ready().await;
    for review in [
        "reviews/pod-create-deny.json",
        "reviews/pod-create-deny-v1beta1.json",
        "reviews/pod-create-allow.json",
        "reviews/pod-create-warn.json",
        "reviews/pod-create-dryrun.json",
        "reviews/pod-create-privileged.json",
        "reviews/pod-delete.json",
    ] {
        let body = fixture(review);
        let (a, b) = (interpreter.admit(&body).await, rvm.admit(&body).await);
        assert_eq!((a.status, a.json()), (b.status, b.json()), "{review}");
    }
    // Every fixture template compiles for the RVM: none is logged as interpreted.
    assert!(
        !rvm.log_text().contains("template runs on the interpreter"),
        "{}",
        rvm.log_text()
    );
}

#[tokio::test]
async fn ready_only_after_the_policy_set_loads() {
    let setup = Setup::new("policies");
    let staged = setup.dir.path().join("staged");
    std::fs::rename(&setup.policy_dir, &staged).unwrap();
    std::fs::create_dir(&setup.policy_dir).unwrap();
    let hook = setup.start(&[]);

    hook.wait_log("policy load failed; not ready until the policy directory loads")
        .await;
    assert_eq!(
        http_get(hook.health, "/readyz").await.unwrap(),
        (503, "policy set not loaded\n".to_owned())
    );
    assert_eq!(
        http_get(hook.health, "/healthz").await.unwrap(),
        (200, "ok\n".to_owned())
    );
    // Not an "allowed": an error answer until policies are there.
    let early = hook.admit(&fixture("reviews/pod-create-allow.json")).await;
    assert_eq!(
        early.json()["response"],
        json!({
            "uid": "0d7a1c9e-2b56-4d9a-9c1e-8f34b5e6a701",
            "allowed": false,
            "status": {"code": 500, "reason": "InternalError", "message": "policy set not loaded yet"}
        })
    );

    for entry in std::fs::read_dir(&staged).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), setup.policy_dir.join(entry.file_name())).unwrap();
    }
    hook.wait_ready().await;
    let deny = hook.admit(&fixture("reviews/pod-create-deny.json")).await;
    assert_eq!(deny.json()["response"]["status"]["message"], DENY_LABELS);
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(
            &m,
            "regard_webhook_policy_reloads_total{result=\"failure\"}"
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test]
async fn policy_changes_are_picked_up_while_requests_flow() {
    let setup = Setup::new("policies");
    let hook = setup.start(&[]);
    hook.wait_ready().await;
    let body = fixture("reviews/pod-create-deny.json");
    let new_message = "[pod-must-have-app] Pod web-bad must have labels: app, owner, tier";

    // Keep requests flowing (bounded) while the directory changes.
    let client = hook.client();
    let addr = hook.addr;
    let body2 = body.clone();
    let flow = tokio::spawn(async move {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let reply = client.post(addr, "/v1/admit", &body2).await.unwrap();
            assert_eq!(reply.status, 200, "{}", reply.text());
            let msg = reply.json()["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .to_owned();
            let done = msg.ends_with(", tier");
            seen.push(msg);
            if done && seen.len() > 20 {
                break;
            }
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    setup.require_tier_label();
    let seen = flow.await.unwrap();
    assert!(
        seen.iter().all(|m| m == DENY_LABELS || m == new_message),
        "{seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some(new_message));
    // Once switched, never back.
    let first_new = seen.iter().position(|m| m == new_message).unwrap();
    assert!(seen[first_new..].iter().all(|m| m == new_message));

    // A bad file keeps the last good set, is logged and counted; the server stays ready.
    std::fs::write(setup.policy_dir.join("zz-broken.yaml"), "kind: ConstraintTemplate\napiVersion: templates.gatekeeper.sh/v1\nmetadata: {name: broken}\nspec:\n  crd: {spec: {names: {kind: Broken}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package broken\n        violation[{\"msg\": msg}] {\n").unwrap();
    hook.wait_log("policy reload failed; keeping the last good policy set")
        .await;
    let reply = hook.admit(&body).await;
    assert_eq!(reply.json()["response"]["status"]["message"], new_message);
    assert_eq!(http_get(hook.health, "/readyz").await.unwrap().0, 200);
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(
            &m,
            "regard_webhook_policy_reloads_total{result=\"success\"}"
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "regard_webhook_policy_reloads_total{result=\"failure\"}"
        ),
        Some(1.0),
        "{m}"
    );

    // Removing the bad file loads again.
    std::fs::remove_file(setup.policy_dir.join("zz-broken.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sample(
        &hook.metrics_text().await,
        "regard_webhook_policy_reloads_total{result=\"success\"}",
    ) != Some(3.0)
    {
        assert!(Instant::now() < deadline, "{}", hook.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn eval_timeout_answers_per_timeout_policy() {
    let setup = Setup::new("policies-slow");
    let deny = setup.start(&["--eval-timeout", "300ms"]);
    deny.wait_ready().await;
    let reply = deny.admit(&fixture("reviews/pod-create-allow.json")).await;
    assert_eq!(
        reply.json()["response"],
        json!({
            "uid": "0d7a1c9e-2b56-4d9a-9c1e-8f34b5e6a701",
            "allowed": false,
            "status": {
                "code": 504,
                "reason": "Timeout",
                "message": "regard-webhook: policy evaluation timed out after 300ms (--timeout-policy deny)"
            }
        })
    );
    let m = deny.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_admission_timeouts_total"),
        Some(1.0),
        "{m}"
    );
    drop(deny);

    let allow = setup.start(&["--eval-timeout", "300ms", "--timeout-policy", "allow"]);
    allow.wait_ready().await;
    let reply = allow.admit(&fixture("reviews/pod-create-allow.json")).await;
    assert_eq!(
        reply.json()["response"],
        json!({
            "uid": "0d7a1c9e-2b56-4d9a-9c1e-8f34b5e6a701",
            "allowed": true,
            "status": {"code": 299},
            "warnings": ["regard-webhook: policy evaluation timed out after 300ms (--timeout-policy allow)"]
        })
    );
}

#[tokio::test]
async fn an_evaluation_error_is_a_violation_under_the_constraints_action() {
    let setup = Setup::new("policies-eval-error");
    let hook = setup.start(&[]);
    hook.wait_ready().await;
    let reply = hook.admit(&fixture("reviews/pod-create-allow.json")).await;
    let response = &reply.json()["response"];
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let msg = response["status"]["message"].as_str().unwrap();
    assert!(msg.starts_with("[replica-number] "), "{msg}");
    assert!(
        msg.ends_with(
            "/template.rego:5: eval_conflict_error: complete rules must not produce multiple outputs"
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn sigterm_drains_then_exits() {
    let setup = Setup::new("policies-slow");
    let mut hook = setup.start(&["--eval-timeout", "1500ms", "--shutdown-delay", "500ms"]);
    hook.wait_ready().await;
    // A request in flight when the signal arrives is still answered.
    let client = hook.client();
    let addr = hook.addr;
    let inflight = tokio::spawn(async move {
        client
            .post(addr, "/v1/admit", &fixture("reviews/pod-create-allow.json"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = hook.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    hook.wait_log("shutdown requested").await;
    assert_eq!(
        http_get(hook.health, "/readyz").await.unwrap(),
        (503, "shutting down\n".to_owned())
    );
    // Still serving new requests during --shutdown-delay.
    let during = hook.admit(&fixture("bad/empty-uid.json")).await;
    assert_eq!(during.status, 400);
    let reply = inflight.await.unwrap().unwrap();
    assert_eq!(reply.json()["response"]["status"]["code"], 504);
    let status = hook.terminate_wait();
    assert_eq!(status.code(), Some(0), "{}", hook.log_text());
    assert!(
        hook.log_text().contains("all connections closed"),
        "{}",
        hook.log_text()
    );
}

/// A ConfigMap volume as the kubelet writes it: files are symlinks into `..data`, itself a
/// symlink to a timestamped directory, swapped atomically on update.
#[cfg(unix)]
#[tokio::test]
async fn configmap_volume_updates_are_picked_up() {
    use std::os::unix::fs::symlink;
    let setup = Setup::new("policies");
    let vol = setup.dir.path().join("volume");
    let first = vol.join("..2026_11_22_10_00_00.000000001");
    std::fs::create_dir_all(&first).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&setup.policy_dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), first.join(entry.file_name())).unwrap();
        names.push(entry.file_name());
    }
    symlink("..2026_11_22_10_00_00.000000001", vol.join("..data")).unwrap();
    for n in &names {
        symlink(std::path::Path::new("..data").join(n), vol.join(n)).unwrap();
    }
    let vol_dir = vol.display().to_string();
    let hook = setup.start_with(&["--policy-dir", &vol_dir], &[]);
    hook.wait_ready().await;
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_policy_constraints"),
        Some(3.0),
        "{m}"
    );
    let body = fixture("reviews/pod-create-deny.json");
    assert_eq!(
        hook.admit(&body).await.json()["response"]["status"]["message"],
        DENY_LABELS
    );

    // The update: a new timestamped directory, then an atomic rename of the `..data` link.
    let second = vol.join("..2026_11_22_10_05_00.000000002");
    std::fs::create_dir(&second).unwrap();
    for n in &names {
        let text = std::fs::read_to_string(first.join(n)).unwrap();
        std::fs::write(
            second.join(n),
            text.replace("labels: [\"app\", \"owner\"]", "labels: [\"app\"]"),
        )
        .unwrap();
    }
    symlink("..2026_11_22_10_05_00.000000002", vol.join("..data_tmp")).unwrap();
    std::fs::rename(vol.join("..data_tmp"), vol.join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();

    let want = "[pod-must-have-app] Pod web-bad must have labels: app";
    hook.wait_message(&body, want, "the new ConfigMap revision not served")
        .await;
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_policy_constraints"),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "regard_webhook_policy_reloads_total{result=\"failure\"}"
        ),
        None,
        "{m}"
    );
}

#[tokio::test]
async fn built_in_bundles_are_served_without_a_policy_directory() {
    let setup = Setup::new("policies");
    let hook = setup.start_with(&["--bundle", "baseline"], &[]);
    hook.wait_ready().await;
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_policy_constraints"),
        Some(11.0),
        "{m}"
    );
    let reply = hook
        .admit(&fixture("reviews/pod-create-privileged.json"))
        .await;
    assert_eq!(
        reply.json()["response"],
        json!({
            "uid": "3c1f6a52-8d0e-4f7b-9a61-2b7c4d9e0f13",
            "allowed": false,
            "status": {
                "code": 403,
                "reason": "Forbidden",
                "message": "[privileged] Pod/debug in namespace default: container \"web\" sets securityContext.privileged: true; privileged containers are not allowed"
            }
        })
    );
}

#[test]
fn a_policy_source_is_required() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regard-webhook"))
        .args(["--tls-cert-file", "x.crt", "--tls-key-file", "x.key"])
        .output()
        .expect("run regard-webhook");
    assert_eq!(out.status.code(), Some(2), "configuration errors exit 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("give --policy-dir DIR, --bundle NAME, or both"),
        "{stderr}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regard-webhook"))
        .args([
            "--bundle",
            "nope",
            "--tls-cert-file",
            "x.crt",
            "--tls-key-file",
            "x.key",
        ])
        .output()
        .expect("run regard-webhook");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown bundle") && stderr.contains("nope"),
        "{stderr}"
    );
}

/// A stand-in for the Kubernetes API server on plain HTTP on loopback: discovery, and list
/// (held back until released), watch (events the test sends) and get for the collections the
/// test declares.
mod fake_cluster {
    use std::collections::BTreeMap;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};
    use serde_json::{Value, json};
    use tokio::sync::{broadcast, watch};

    pub const NAMESPACES: &str = "/api/v1/namespaces";
    pub const INGRESSES: &str = "/apis/networking.k8s.io/v1/ingresses";

    #[derive(Default)]
    struct Collection {
        /// Objects by name (or namespace/name), and whether the list shows them.
        objects: BTreeMap<String, (Value, bool)>,
        watches: usize,
    }

    pub struct Cluster {
        collections: Mutex<BTreeMap<String, Collection>>,
        discovery: Mutex<BTreeMap<String, Value>>,
        release: watch::Sender<bool>,
        events: broadcast::Sender<(String, String)>,
        pub authorizations: Mutex<Vec<String>>,
    }

    pub fn namespace(name: &str, labels: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "resourceVersion": "100"},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
        })
    }

    /// An Ingress as it appears in a list: items carry no apiVersion or kind.
    pub fn ingress(namespace: &str, name: &str, host: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "100"},
            "spec": {"rules": [{"host": host}]}
        })
    }

    fn key(obj: &Value) -> String {
        let meta = &obj["metadata"];
        match meta["namespace"].as_str() {
            Some(ns) => format!("{ns}/{}", meta["name"].as_str().unwrap()),
            None => meta["name"].as_str().unwrap().to_owned(),
        }
    }

    impl Cluster {
        pub fn new() -> Arc<Cluster> {
            Arc::new(Cluster {
                collections: Mutex::new(BTreeMap::new()),
                discovery: Mutex::new(BTreeMap::new()),
                release: watch::channel(false).0,
                events: broadcast::channel(16).0,
                authorizations: Mutex::new(Vec::new()),
            })
        }

        /// Serves `kind` at `path` (`/api/v1/<plural>` or `/apis/<group>/<version>/<plural>`).
        pub fn resource(&self, path: &str, kind: &str, namespaced: bool) {
            let (group_version, plural) = path.rsplit_once('/').unwrap();
            let gv = group_version
                .strip_prefix("/apis/")
                .or_else(|| group_version.strip_prefix("/api/"))
                .unwrap();
            let resource = json!({
                "name": plural, "singularName": "", "namespaced": namespaced, "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
            });
            let mut discovery = self.discovery.lock().unwrap();
            let doc = discovery.entry(group_version.to_owned()).or_insert_with(|| {
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": []})
            });
            doc["resources"].as_array_mut().unwrap().push(resource);
            self.collections
                .lock()
                .unwrap()
                .insert(path.to_owned(), Collection::default());
        }

        /// Adds an object; `listed: false` leaves it out of lists (get still finds it).
        pub fn add(&self, path: &str, obj: Value, listed: bool) {
            let mut collections = self.collections.lock().unwrap();
            let c = collections.get_mut(path).unwrap();
            c.objects.insert(key(&obj), (obj, listed));
        }

        /// Lets list requests answer.
        pub fn release_list(&self) {
            self.release.send_replace(true);
        }

        /// Waits (bounded) until a watch on `path` is open.
        pub async fn wait_for_watch(&self, path: &str) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.collections.lock().unwrap()[path].watches == 0 {
                assert!(Instant::now() < deadline, "no watch on {path}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        /// Sends a watch event (`ADDED`, `MODIFIED`, `DELETED`) to the watches on `path`.
        pub fn event(&self, path: &str, kind: &str, mut obj: Value, resource_version: u32) {
            obj["metadata"]["resourceVersion"] = json!(resource_version.to_string());
            let mut collections = self.collections.lock().unwrap();
            let c = collections.get_mut(path).unwrap();
            if kind == "DELETED" {
                c.objects.remove(&key(&obj));
            } else {
                c.objects.insert(key(&obj), (obj.clone(), true));
            }
            let line = json!({"type": kind, "object": obj}).to_string() + "\n";
            self.events.send((path.to_owned(), line)).unwrap();
        }

        /// Serves the fake API on 127.0.0.1; returns its URL.
        pub async fn serve(self: &Arc<Cluster>) -> String {
            let app = axum::Router::new()
                .fallback(handle)
                .with_state(self.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        }

        /// A kubeconfig for this cluster with a bearer token, written to `path`.
        pub fn write_kubeconfig(&self, url: &str, path: &std::path::Path) {
            std::fs::write(
                path,
                format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n\
                     users:\n- name: test\n  user:\n    token: test-token\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
                     current-context: test\n"
                ),
            )
            .unwrap();
        }
    }

    async fn handle(State(cluster): State<Arc<Cluster>>, uri: Uri, headers: HeaderMap) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        cluster.authorizations.lock().unwrap().push(auth);
        let path = uri.path();
        if let Some(doc) = cluster.discovery.lock().unwrap().get(path) {
            return json_response(StatusCode::OK, doc);
        }
        let query = uri.query().unwrap_or("");
        let is_collection = cluster.collections.lock().unwrap().contains_key(path);
        if is_collection
            && query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1")
        {
            let rx = cluster.events.subscribe();
            cluster
                .collections
                .lock()
                .unwrap()
                .get_mut(path)
                .unwrap()
                .watches += 1;
            let path = path.to_owned();
            let stream = futures_util::stream::unfold((rx, path), |(mut rx, path)| async move {
                loop {
                    let (event_path, line) = rx.recv().await.ok()?;
                    if event_path == path {
                        return Some((Ok::<_, Infallible>(Bytes::from(line)), (rx, path)));
                    }
                }
            });
            return Body::from_stream(stream).into_response();
        }
        if is_collection {
            let mut release = cluster.release.subscribe();
            let _ = release.wait_for(|released| *released).await;
            let items: Vec<Value> = cluster.collections.lock().unwrap()[path]
                .objects
                .values()
                .filter(|(_, listed)| *listed)
                .map(|(obj, _)| obj.clone())
                .collect();
            return json_response(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "100"}, "items": items}),
            );
        }
        let found = path.rsplit_once('/').and_then(|(parent, name)| {
            let collections = cluster.collections.lock().unwrap();
            collections
                .get(parent)?
                .objects
                .get(name)
                .map(|(obj, _)| obj.clone())
        });
        match found {
            Some(obj) => json_response(StatusCode::OK, &obj),
            None => json_response(
                StatusCode::NOT_FOUND,
                &json!({
                    "apiVersion": "v1", "kind": "Status", "status": "Failure",
                    "message": format!("{path} not found"), "reason": "NotFound", "code": 404
                }),
            ),
        }
    }

    fn json_response(status: StatusCode, body: &Value) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// Waits (bounded) until `/readyz` fails for `reason` (a policy set loads first), asserting it
/// never says ready meanwhile.
async fn wait_unready_because(hook: &common::Webhook, reason: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http_get(hook.health, "/readyz").await.unwrap();
        if ready == (503, reason.to_owned()) {
            return;
        }
        assert_eq!(ready.0, 503, "ready too early");
        assert!(Instant::now() < deadline, "{}", hook.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `response.allowed` and `response.status.message` of an answer.
fn verdict(reply: common::Reply) -> (bool, String) {
    let response = &reply.json()["response"];
    (
        response["allowed"].as_bool().unwrap(),
        response["status"]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

/// An AdmissionReview (v1) for `object`, a resource of `resource` (`"", "v1", "pods"`): the
/// object's kind, name and namespace fill the envelope; DELETE moves it to `oldObject` and
/// UPDATE sends it as both.
fn admission_review(
    uid: &str,
    operation: &str,
    resource: [&str; 3],
    object: serde_json::Value,
) -> Vec<u8> {
    let [group, version, plural] = resource;
    let kind = object["kind"].clone();
    let meta = &object["metadata"];
    let (new, old) = match operation {
        "DELETE" => (serde_json::Value::Null, object.clone()),
        "UPDATE" => (object.clone(), object.clone()),
        _ => (object.clone(), serde_json::Value::Null),
    };
    let mut request = json!({
        "uid": uid, "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": plural},
        "name": meta["name"], "operation": operation, "userInfo": {"username": "dev"},
        "object": new, "oldObject": old, "dryRun": false
    });
    if let Some(ns) = meta["namespace"].as_str() {
        request["namespace"] = json!(ns);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
        .to_string()
        .into_bytes()
}

/// A Pod CREATE without labels in `namespace`.
fn pod_review(uid: &str, namespace: &str) -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1"}]}
    });
    admission_review(uid, "CREATE", ["", "v1", "pods"], pod)
}

#[tokio::test]
async fn watched_namespaces_feed_namespace_selector_and_namespace_object() {
    use fake_cluster::{Cluster, NAMESPACES, namespace};

    let cluster = Cluster::new();
    cluster.resource(NAMESPACES, "Namespace", false);
    cluster.add(NAMESPACES, namespace("prod", json!({"env": "prod"})), true);
    cluster.add(NAMESPACES, namespace("dev", json!({"env": "dev"})), true);
    cluster.add(
        NAMESPACES,
        namespace("archive", json!({"env": "dev", "frozen": "true"})),
        true,
    );
    // Created just now: the API server has it, the watch has not delivered it yet.
    cluster.add(
        NAMESPACES,
        namespace("fresh", json!({"env": "prod"})),
        false,
    );
    let url = cluster.serve().await;
    let setup = Setup::new("policies-namespaces");
    let kubeconfig = setup.dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&url, &kubeconfig);
    let kubeconfig = kubeconfig.display().to_string();
    let hook = setup.start(&["--watch-namespaces", "--kubeconfig", &kubeconfig]);

    // Policies load at once; readiness waits for the first namespace list.
    wait_unready_because(&hook, "namespaces not listed yet\n").await;
    cluster.release_list();
    hook.wait_ready().await;
    hook.wait_log("namespace cache synced").await;

    let need_owner = "[prod-pods-need-owner] Pod web must have labels: owner".to_owned();
    assert_eq!(
        verdict(hook.admit(&pod_review("1", "prod")).await),
        (false, need_owner.clone())
    );
    assert_eq!(
        verdict(hook.admit(&pod_review("2", "dev")).await),
        (true, String::new())
    );
    assert_eq!(
        verdict(hook.admit(&pod_review("3", "archive")).await),
        (
            false,
            "[no-writes-to-frozen-namespaces] namespace archive is frozen".to_owned()
        )
    );
    // Not in the cache yet: read from the API server once.
    assert_eq!(
        verdict(hook.admit(&pod_review("4", "fresh")).await),
        (false, need_owner.clone())
    );
    // Unknown to the cluster: Gatekeeper's autoreject for a namespaceSelector.
    let unmatched = (
        false,
        "[prod-pods-need-owner] unable to match constraints: error matching the requested object: web :failed to run Match criteria: namespace selector for namespace-scoped object but missing Namespace".to_owned(),
    );
    assert_eq!(
        verdict(hook.admit(&pod_review("5", "ghost")).await),
        unmatched
    );

    // A label change arrives over the watch.
    cluster.wait_for_watch(NAMESPACES).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    cluster.event(
        NAMESPACES,
        "MODIFIED",
        namespace("dev", json!({"env": "prod"})),
        101,
    );
    loop {
        let (allowed, _) = verdict(hook.admit(&pod_review("6", "dev")).await);
        if !allowed {
            break;
        }
        assert!(Instant::now() < deadline, "label change not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.event(NAMESPACES, "DELETED", namespace("archive", json!({})), 102);
    loop {
        // Gone from the cache and from the API server: unknown, as `ghost` was.
        if verdict(hook.admit(&pod_review("7", "archive")).await) == unmatched {
            break;
        }
        assert!(Instant::now() < deadline, "deletion not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let m = hook.metrics_text().await;
    let lookups = |result: &str| {
        sample(
            &m,
            &format!("regard_webhook_namespace_lookups_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!(lookups("api"), Some(1.0), "{m}");
    assert!(lookups("not_found").unwrap_or(0.0) >= 2.0, "{m}");
    assert!(lookups("cache").unwrap_or(0.0) >= 4.0, "{m}");
    // prod, dev and fresh (archive was deleted).
    assert_eq!(
        sample(&m, "regard_webhook_namespaces_cached"),
        Some(3.0),
        "{m}"
    );
    let auth = cluster.authorizations.lock().unwrap().clone();
    assert!(!auth.is_empty());
    assert!(auth.iter().all(|a| a == "Bearer test-token"), "{auth:?}");
}

/// An AdmissionReview for the Namespace `name` with `labels`.
fn namespace_review(uid: &str, operation: &str, name: &str, labels: serde_json::Value) -> Vec<u8> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    admission_review(uid, operation, ["", "v1", "namespaces"], ns)
}

#[tokio::test]
async fn only_exempt_namespaces_may_carry_the_ignore_label() {
    let setup = Setup::new("policies");
    // Gatekeeper's flags: the same as --exempt-namespace kube-* and *-system.
    let hook = setup.start(&[
        "--exempt-namespace-prefix",
        "kube-",
        "--exempt-namespace-suffix",
        "-system",
    ]);
    hook.wait_ready().await;
    let client = hook.client();
    let label = |uid: &str, body: Vec<u8>| {
        let client = &client;
        let uid = uid.to_owned();
        async move {
            let reply = client
                .post(hook.addr, "/v1/admitlabel", &body)
                .await
                .unwrap();
            assert_eq!(reply.status, 200);
            let response = reply.json()["response"].clone();
            assert_eq!(response["uid"], uid.as_str());
            response
        }
    };
    let ignored = json!({"admission.regard.dev/ignore": "true"});

    assert_eq!(
        label(
            "1",
            namespace_review("1", "UPDATE", "team-a", ignored.clone())
        )
        .await,
        json!({
            "uid": "1", "allowed": false,
            "status": {"code": 403, "reason": "Forbidden",
                       "message": "Only exempt namespace can have the admission.regard.dev/ignore label"}
        })
    );
    // Gatekeeper's label too, so namespaces labelled for Gatekeeper keep their meaning.
    let gatekeeper_ignored = json!({"admission.gatekeeper.sh/ignore": "true"});
    assert_eq!(
        label(
            "1g",
            namespace_review("1g", "CREATE", "team-a", gatekeeper_ignored)
        )
        .await,
        json!({
            "uid": "1g", "allowed": false,
            "status": {"code": 403, "reason": "Forbidden",
                       "message": "Only exempt namespace can have the admission.gatekeeper.sh/ignore label"}
        })
    );
    let allowed = |uid: &str| json!({"uid": uid, "allowed": true, "status": {"code": 200}});
    // Exempt namespaces (prefix, suffix) may; an unlabelled one passes; deleting is never stopped.
    for (uid, operation, name, labels) in [
        ("2", "CREATE", "kube-tenant", ignored.clone()),
        ("3", "CREATE", "team-b", json!({"env": "prod"})),
        ("3b", "CREATE", "team-system", ignored.clone()),
        ("4", "DELETE", "team-a", ignored.clone()),
    ] {
        assert_eq!(
            label(uid, namespace_review(uid, operation, name, labels)).await,
            allowed(uid)
        );
    }
    // Only Namespaces are checked: the label on a Pod means nothing.
    let mut pod: serde_json::Value =
        serde_json::from_slice(&fixture("reviews/pod-create-allow.json")).unwrap();
    pod["request"]["object"]["metadata"]["labels"] = ignored.clone();
    let uid = pod["request"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(
        label(&uid, pod.to_string().into_bytes()).await,
        allowed(&uid)
    );
    // The same envelope checks as /v1/admit.
    let bad = client
        .post(hook.addr, "/v1/admitlabel", b"{}")
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.text(),
        "body is not an AdmissionReview: missing field `apiVersion` at line 1 column 2\n"
    );

    let m = hook.metrics_text().await;
    let count = |decision: &str| {
        sample(
            &m,
            &format!("regard_webhook_namespace_label_requests_total{{decision=\"{decision}\"}}"),
        )
    };
    assert_eq!(
        (count("deny"), count("allow")),
        (Some(2.0), Some(5.0)),
        "{m}"
    );
    // Label reviews are not policy reviews.
    assert_eq!(
        sample(
            &m,
            "regard_webhook_admission_requests_total{decision=\"deny\",dry_run=\"false\"}"
        ),
        None
    );
}

/// An Ingress CREATE (or UPDATE) of `namespace/name` for `host`.
fn ingress_review(uid: &str, operation: &str, namespace: &str, name: &str, host: &str) -> Vec<u8> {
    let mut ingress = fake_cluster::ingress(namespace, name, host);
    ingress["apiVersion"] = json!("networking.k8s.io/v1");
    ingress["kind"] = json!("Ingress");
    admission_review(
        uid,
        operation,
        ["networking.k8s.io", "v1", "ingresses"],
        ingress,
    )
}

#[tokio::test]
async fn synced_data_feeds_referential_templates() {
    use fake_cluster::{Cluster, INGRESSES, ingress};

    let cluster = Cluster::new();
    cluster.resource(INGRESSES, "Ingress", true);
    cluster.add(INGRESSES, ingress("shop", "web", "shop.example.com"), true);
    // Excluded from sync by the Config: never in data.inventory.
    cluster.add(
        INGRESSES,
        ingress("kube-system", "dash", "dash.example.com"),
        true,
    );
    let url = cluster.serve().await;
    let setup = Setup::new("policies-sync");
    let kubeconfig = setup.dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&url, &kubeconfig);
    let hook = setup.start(&["--sync-data", "--kubeconfig", kubeconfig.to_str().unwrap()]);

    wait_unready_because(&hook, "synced data not loaded yet\n").await;
    cluster.release_list();
    hook.wait_ready().await;

    let taken = |host: &str, by: &str| {
        (
            false,
            format!("[unique-ingress-host] host {host} is already used by ingress {by}"),
        )
    };
    let allowed = (true, String::new());
    assert_eq!(
        verdict(
            hook.admit(&ingress_review(
                "1",
                "CREATE",
                "other",
                "web2",
                "shop.example.com"
            ))
            .await
        ),
        taken("shop.example.com", "shop/web")
    );
    // Updating the synced object itself is no conflict.
    assert_eq!(
        verdict(
            hook.admit(&ingress_review(
                "2",
                "UPDATE",
                "shop",
                "web",
                "shop.example.com"
            ))
            .await
        ),
        allowed
    );
    // kube-system is excluded from sync.
    assert_eq!(
        verdict(
            hook.admit(&ingress_review(
                "3",
                "CREATE",
                "other",
                "dash2",
                "dash.example.com"
            ))
            .await
        ),
        allowed
    );
    // sandbox is excluded from the webhook.
    assert_eq!(
        verdict(
            hook.admit(&ingress_review(
                "4",
                "CREATE",
                "sandbox",
                "web3",
                "shop.example.com"
            ))
            .await
        ),
        (
            true,
            "namespace \"sandbox\" is excluded from the webhook by the policy set's Config"
                .to_owned()
        )
    );

    // Watch events reach the data.
    cluster.wait_for_watch(INGRESSES).await;
    cluster.event(
        INGRESSES,
        "ADDED",
        ingress("team", "api", "api.example.com"),
        101,
    );
    cluster.event(
        INGRESSES,
        "DELETED",
        ingress("shop", "web", "shop.example.com"),
        102,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let api = verdict(
            hook.admit(&ingress_review(
                "5",
                "CREATE",
                "other",
                "api2",
                "api.example.com",
            ))
            .await,
        );
        let shop = verdict(
            hook.admit(&ingress_review(
                "6",
                "CREATE",
                "other",
                "web2",
                "shop.example.com",
            ))
            .await,
        );
        if api == taken("api.example.com", "team/api") && shop == allowed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "watch events not applied: {api:?} {shop:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let m = hook.metrics_text().await;
    // team/api and kube-system/dash (excluded from data.inventory, but synced).
    assert_eq!(
        sample(&m, "regard_webhook_synced_objects"),
        Some(2.0),
        "{m}"
    );
    let auth = cluster.authorizations.lock().unwrap().clone();
    assert!(auth.iter().all(|a| a == "Bearer test-token"), "{auth:?}");
    assert_eq!(
        http_get(hook.metrics, "/v1/audit").await.unwrap(),
        (
            404,
            "no audit: start with --sync-data --audit-interval DURATION\n".to_owned()
        )
    );
}

#[tokio::test]
async fn a_policy_set_asking_for_synced_data_is_flagged_without_sync_data() {
    let setup = Setup::new("policies-sync");
    let hook = setup.start(&[]);
    hook.wait_ready().await;
    hook.wait_log("the policy set's Config/SyncSet asks for synced data; without --sync-data, data.inventory stays empty")
        .await;
    assert!(hook.log_text().contains("networking.k8s.io/v1 Ingress"));
}

#[tokio::test]
async fn a_config_added_by_a_reload_starts_syncing_without_a_restart() {
    use fake_cluster::{Cluster, INGRESSES, ingress};

    let cluster = Cluster::new();
    cluster.resource(INGRESSES, "Ingress", true);
    cluster.add(INGRESSES, ingress("shop", "web", "shop.example.com"), true);
    cluster.release_list();
    let url = cluster.serve().await;
    let setup = Setup::new("policies-sync");
    let config = setup.policy_dir.join("sync.yaml");
    let staged = setup.dir.path().join("sync.yaml");
    std::fs::rename(&config, &staged).unwrap();
    let kubeconfig = setup.dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&url, &kubeconfig);
    let hook = setup.start(&["--sync-data", "--kubeconfig", kubeconfig.to_str().unwrap()]);
    // Nothing to sync: ready at once, and the template sees an empty inventory.
    hook.wait_ready().await;
    let review = ingress_review("1", "CREATE", "other", "web2", "shop.example.com");
    assert_eq!(
        hook.admit(&review).await.json()["response"]["allowed"],
        true
    );

    common::write_atomic(&config, &std::fs::read(&staged).unwrap());
    hook.wait_log("syncing into data.inventory").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = hook.admit(&review).await.json();
        if reply["response"]["allowed"] == false {
            assert_eq!(
                reply["response"]["status"]["message"],
                "[unique-ingress-host] host shop.example.com is already used by ingress shop/web"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{}", hook.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn audit_reviews_the_synced_objects() {
    use fake_cluster::{Cluster, INGRESSES, ingress};

    let cluster = Cluster::new();
    cluster.resource(INGRESSES, "Ingress", true);
    // Three Ingresses already share a host; `legacy` is excluded from audit by the Config (but
    // synced, so the others still conflict with it).
    for (ns, name) in [("shop", "web"), ("other", "dup"), ("legacy", "old")] {
        cluster.add(INGRESSES, ingress(ns, name, "shop.example.com"), true);
    }
    cluster.release_list();
    let url = cluster.serve().await;
    let setup = Setup::new("policies-sync");
    let kubeconfig = setup.dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&url, &kubeconfig);
    let hook = setup.start(&[
        "--sync-data",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--audit-interval",
        "200ms",
        "--constraint-violations-limit",
        "3",
        // This fake cluster serves no Leases: every replica audits (the Lease is tested in
        // cluster_certs.rs).
        "--audit-lease-name=",
    ]);
    hook.wait_ready().await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut report = loop {
        let (code, body) = http_get(hook.metrics, "/v1/audit").await.unwrap();
        if code == 200 {
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        assert_eq!((code, body.as_str()), (503, "no audit has finished yet\n"));
        assert!(Instant::now() < deadline, "{}", hook.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let timestamp = report["auditTimestamp"].as_str().unwrap().to_owned();
    assert!(
        timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
    assert!(report["durationSeconds"].as_f64().unwrap() >= 0.0);
    let object = report.as_object_mut().unwrap();
    object.remove("auditTimestamp");
    object.remove("durationSeconds");
    let violation = |ns: &str, name: &str, by: &str| {
        json!({
            "group": "networking.k8s.io", "version": "v1", "kind": "Ingress",
            "namespace": ns, "name": name,
            "message": format!("host shop.example.com is already used by ingress {by}"),
            "enforcementAction": "deny"
        })
    };
    assert_eq!(
        report,
        json!({
            "objects": 2,
            "totalViolations": 4,
            "constraints": [{
                "kind": "K8sUniqueIngressHost", "name": "unique-ingress-host",
                "totalViolations": 4,
                // The first 3 of 4 by namespace, name, message.
                "violations": [
                    violation("other", "dup", "legacy/old"),
                    violation("other", "dup", "shop/web"),
                    violation("shop", "web", "legacy/old"),
                ]
            }]
        })
    );
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(
            &m,
            "regard_webhook_audit_violations{enforcement_action=\"deny\"}"
        ),
        Some(4.0),
        "{m}"
    );
    hook.wait_log("violation_audited").await;
}

/// CEL templates, ValidatingAdmissionPolicies and the engine flag through
/// the real webhook. A DELETE gives each engine its own input (CEL: `object`
/// null, the deleted object as `oldObject`), and the answer never changes
/// between identical requests.
#[tokio::test]
async fn cel_templates_and_validating_admission_policies() {
    let setup = Setup::new("policies-cel");
    let hook = setup.start(&[]);
    hook.wait_ready().await;

    // The policy denies: the API server's answer alone (it never calls the webhook then).
    let create = hook.admit(&fixture("reviews/pod-create-deny.json")).await;
    assert_eq!(
        create.json()["response"]["status"]["message"],
        json!(
            "pods \"web-bad\" is forbidden: ValidatingAdmissionPolicy 'needs-owner' with binding 'needs-owner-everywhere' denied request: an owner label is required"
        )
    );
    for _ in 0..50 {
        let delete = hook.admit(&fixture("reviews/pod-delete.json")).await;
        assert_eq!(
            delete.json()["response"]["status"]["message"],
            json!("[protected-name] cel: DELETE of web-bad, object null")
        );
    }
    drop(hook);

    let rego = setup.start(&["--enable-k8s-native-validation=false"]);
    rego.wait_ready().await;
    let delete = rego.admit(&fixture("reviews/pod-delete.json")).await;
    assert_eq!(
        delete.json()["response"]["status"]["message"],
        json!("[protected-name] rego: DELETE of web-bad")
    );
    drop(rego);
}

/// The pod of `reviews/pod-create-deny.json` changed by `edit`, as an AdmissionReview body.
fn edited_pod(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut review = common::json(&fixture("reviews/pod-create-deny.json"));
    edit(&mut review["request"]);
    serde_json::to_vec(&review).unwrap()
}

/// The AdmissionReview response without the parts that do not concern policies.
fn response_of(reply: &common::Reply) -> serde_json::Value {
    let mut response = reply.json()["response"].take();
    let object = response.as_object_mut().unwrap();
    object.remove("uid");
    response
}

/// ValidatingAdmissionPolicies answer through the webhook as the API server answers: the first
/// denied decision alone (its reason and code, `admission.NewForbidden`'s message), a warning
/// per Warn decision, the Audit failures and the policies' audit annotations under the keys a
/// webhook can send; a Gatekeeper constraint's denial only when no policy denies.
#[tokio::test]
async fn validating_admission_policies_answer_as_the_api_server() {
    let setup = Setup::new("policies-vap");
    let hook = setup.start(&[]);
    hook.wait_ready().await;
    let warning = "Validation failed for ValidatingAdmissionPolicy 'c-team-review' with binding 'team-review-warn': payments pods are reviewed by the payments team";
    let team_failure = r#"{"message":"payments pods are reviewed by the payments team","policy":"c-team-review","binding":"team-review-audit","expressionIndex":0,"validationActions":["Audit"]}"#;
    let denied = "ValidatingAdmissionPolicy 'a-no-latest' with binding 'no-latest' denied request: image nginx:latest uses the latest tag";

    // Two policies and the constraint deny: only the first policy (by name) is reported.
    let reply = hook.admit(&fixture("reviews/pod-create-deny.json")).await;
    assert_eq!(
        response_of(&reply),
        json!({
            "allowed": false,
            "status": {
                "status": "Failure",
                "code": 403,
                "reason": "Forbidden",
                "message": format!("pods \"web-bad\" is forbidden: {denied}"),
                "details": {"name": "web-bad", "kind": "pods", "causes": [{"message": denied}]},
            },
            "warnings": [warning],
            "auditAnnotations": {
                "a-no-latest_images": "nginx:latest",
                "c-team-review_team": "payments",
                "validation_failure": format!(
                    r#"[{{"message":"an owner label is required","policy":"b-needs-owner","binding":"needs-owner","expressionIndex":0,"validationActions":["Deny","Audit"]}},{team_failure}]"#
                ),
            },
        })
    );

    // Only `b-needs-owner` denies, with the default reason: Invalid, 422.
    let body = edited_pod(|r| {
        r["object"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    });
    let reply = hook.admit(&body).await;
    let status = &reply.json()["response"]["status"];
    assert_eq!(
        (&status["code"], &status["reason"], &status["message"]),
        (
            &json!(422),
            &json!("Invalid"),
            &json!(
                "pods \"web-bad\" is forbidden: ValidatingAdmissionPolicy 'b-needs-owner' with binding 'needs-owner' denied request: an owner label is required"
            )
        )
    );

    // No policy denies: Gatekeeper's aggregate for the constraint, the policies' warning and
    // annotations beside it.
    let body = edited_pod(|r| {
        r["object"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        r["object"]["metadata"]["labels"]["owner"] = json!("shop");
    });
    let reply = hook.admit(&body).await;
    assert_eq!(
        response_of(&reply),
        json!({
            "allowed": false,
            "status": {
                "code": 403,
                "reason": "Forbidden",
                "message": "[protected-name] cel: CREATE of web-bad, object set",
            },
            "warnings": [warning],
            "auditAnnotations": {
                "a-no-latest_images": "nginx:1.27",
                "c-team-review_team": "payments",
                "validation_failure": format!("[{team_failure}]"),
            },
        })
    );

    // Allowed, with the warning (Gatekeeper's 299).
    let body = edited_pod(|r| {
        r["name"] = json!("web-ok");
        r["object"]["metadata"]["name"] = json!("web-ok");
        r["object"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        r["object"]["metadata"]["labels"]["owner"] = json!("shop");
        r["object"]["metadata"]["labels"]["team"] = json!("search");
    });
    let reply = hook.admit(&body).await;
    assert_eq!(
        response_of(&reply),
        json!({
            "allowed": true,
            "status": {"code": 200},
            "auditAnnotations": {
                "a-no-latest_images": "nginx:1.27",
                "c-team-review_team": "search",
            },
        })
    );
}

/// `matchPolicy: Equivalent` at the door: a Deployment CREATE made through `extensions/v1beta1`
/// is denied by the policy on `apps/v1 deployments`; the `Exact` policy only warns on `apps/v1`;
/// a policy's message uses the 1.34 list extensions.
#[tokio::test]
async fn validating_admission_policies_match_equivalent_resources() {
    let setup = Setup::new("../gk/vap-match-policy/policy");
    let hook = setup.start(&[]);
    hook.wait_ready().await;
    let review = |group: &str, version: &str| {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1", "operation": "CREATE", "name": "app-web", "namespace": "shop",
                "kind": {"group": group, "version": version, "kind": "Deployment"},
                "resource": {"group": group, "version": version, "resource": "deployments"},
                "userInfo": {"username": "dev"},
                "object": {
                    "apiVersion": if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") },
                    "kind": "Deployment",
                    "metadata": {"name": "app-web", "namespace": "shop"},
                    "spec": {"replicas": 7},
                },
            },
        }))
        .unwrap()
    };
    let denied = "ValidatingAdmissionPolicy 'replicas-equivalent' with binding 'replicas-equivalent' denied request: replicas 7 above 3";
    // The API server names the resource as requested (`admission.NewForbidden` of the request).
    let expected = |group: &str, warnings: serde_json::Value| {
        let mut response = json!({
            "allowed": false,
            "status": {
                "status": "Failure",
                "code": 422,
                "reason": "Invalid",
                "message": format!("deployments.{group} \"app-web\" is forbidden: {denied}"),
                "details": {"name": "app-web", "group": group, "kind": "deployments", "causes": [{"message": denied}]},
            },
        });
        if !warnings.is_null() {
            response["warnings"] = warnings;
        }
        response
    };
    let reply = hook.admit(&review("extensions", "v1beta1")).await;
    assert_eq!(response_of(&reply), expected("extensions", json!(null)));
    let reply = hook.admit(&review("apps", "v1")).await;
    assert_eq!(
        response_of(&reply),
        expected(
            "apps",
            json!([
                "Validation failed for ValidatingAdmissionPolicy 'replicas-exact' with binding 'replicas-exact': replicas 7 above 3"
            ])
        )
    );

    // Kubernetes 1.34's list extensions (`sort`, `reverse`) in a policy served by the webhook.
    let config_map = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u2", "operation": "CREATE", "name": "app-config", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "userInfo": {"username": "dev"},
            "object": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "app-config", "namespace": "shop"},
                "data": {"b": "2", "c": "3", "a": "1"},
            },
        },
    }))
    .unwrap();
    let reply = hook.admit(&config_map).await;
    assert_eq!(
        reply.json()["response"]["status"]["message"],
        "configmaps \"app-config\" is forbidden: ValidatingAdmissionPolicy 'few-keys' with binding 'few-keys' denied request: keys c, b, a are more than 2"
    );
}
