//! `--policy-source cluster` end to end: the real `regard-webhook` binary against the in-process
//! fake API server (`tests/common/apiserver`), with policies applied as Kubernetes objects and
//! reviews sent to its TLS `/v1/admit`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::apiserver::{FakeApiServer, Options};
use common::{Setup, Webhook, http_get};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds");
const TEMPLATES: &str = "templates.gatekeeper.sh/v1";
const CONSTRAINTS: &str = "constraints.gatekeeper.sh/v1beta1";

/// Every document of `deploy/crds`, seeded as `kubectl apply -k deploy/crds` would create them,
/// once they are Established.
async fn seed_crds(api: &FakeApiServer) {
    let mut names = Vec::new();
    let files =
        policy_core::gatekeeper::read_document_files(&[Path::new(CRDS).display().to_string()])
            .unwrap();
    for (_, docs) in files {
        for d in docs {
            let v = serde_json::to_value(&d).unwrap();
            if v["kind"] == "CustomResourceDefinition" {
                names.push(v["metadata"]["name"].as_str().unwrap().to_owned());
                api.seed(v);
            }
        }
    }
    for name in names {
        wait_established(api, &name).await;
    }
}

async fn wait_established(api: &FakeApiServer, name: &str) {
    api.wait_for(&format!("{name} established"), WAIT, |api| {
        api.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            name,
        )
        .filter(|c| {
            c["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            })
        })
    })
    .await;
}

fn required_labels_template() -> Value {
    json!({
        "apiVersion": TEMPLATES, "kind": "ConstraintTemplate",
        "metadata": {"name": "k8srequiredlabels"},
        "spec": {
            "crd": {"spec": {"names": {"kind": "K8sRequiredLabels"},
                "validation": {"openAPIV3Schema": {"type": "object", "properties": {
                    "labels": {"type": "array", "items": {"type": "string"}}}}}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": r#"package k8srequiredlabels
violation[{"msg": msg}] {
  required := input.parameters.labels[_]
  not input.review.object.metadata.labels[required]
  msg := sprintf("missing label %v", [required])
}"#}]
        }
    })
}

fn broken_template() -> Value {
    json!({
        "apiVersion": TEMPLATES, "kind": "ConstraintTemplate",
        "metadata": {"name": "k8sbroken"},
        "spec": {
            "crd": {"spec": {"names": {"kind": "K8sBroken"}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh",
                         "rego": "package k8sbroken\nviolation[{\"msg\": \"x\"}] {\n  input.review.object.\n}"}]
        }
    })
}

fn required_labels(name: &str, labels: &[&str], extra: Value) -> Value {
    let mut c = json!({
        "apiVersion": CONSTRAINTS, "kind": "K8sRequiredLabels",
        "metadata": {"name": name},
        "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                           "excludedNamespaces": ["kube-*"]},
                 "parameters": {"labels": labels}}
    });
    if let (Some(spec), Value::Object(extra)) = (c["spec"].as_object_mut(), extra) {
        spec.extend(extra);
    }
    c
}

fn pod(name: &str, namespace: Option<&str>, labels: Value) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    if let Some(ns) = namespace {
        p["metadata"]["namespace"] = json!(ns);
    }
    p
}

/// An AdmissionReview for `object` (group/version/kind from it), in `namespace`, by `user`.
fn review(object: &Value, namespace: &str, user: &str) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let mut request = json!({
        "uid": "u-1", "operation": "CREATE",
        "kind": {"group": group, "version": version, "kind": object["kind"]},
        "resource": {"group": group, "version": version, "resource": "things"},
        "name": object["metadata"]["name"], "userInfo": {"username": user},
        "object": object, "oldObject": null, "dryRun": false
    });
    if !namespace.is_empty() {
        request["namespace"] = json!(namespace);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
        .to_string()
        .into_bytes()
}

/// `(allowed, code, message)` of an answer.
async fn admit(webhook: &Webhook, body: &[u8]) -> (bool, i64, String) {
    let reply = webhook.admit(body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let r = &reply.json()["response"];
    (
        r["allowed"].as_bool().unwrap(),
        r["status"]["code"].as_i64().unwrap_or(0),
        r["status"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

fn start_webhook(setup: &Setup, api: &FakeApiServer, extra: &[&str]) -> Webhook {
    let kubeconfig = api.kubeconfig().display().to_string();
    setup.start_with(
        &[
            "--policy-source",
            "cluster",
            "--kubeconfig",
            &kubeconfig,
            "--pod-name",
            "regard-0",
        ],
        extra,
    )
}

/// The constraint's `status.byPod[0]`, once it says `enforced` is `want`.
async fn wait_enforced(api: &FakeApiServer, kind: &str, name: &str, want: bool) -> Value {
    api.wait_for(&format!("{kind} {name} enforced={want}"), WAIT, |api| {
        let c = api.get(CONSTRAINTS, kind, None, name)?;
        let entry = c["status"]["byPod"][0].clone();
        (entry["enforced"] == json!(want)).then_some(entry)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_template_then_constraint_enforce_then_delete() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    let setup = Setup::new("policies");
    let webhook = start_webhook(&setup, &api, &["--audit-interval", "0"]);
    webhook.wait_ready().await;

    // Nothing yet: admitted.
    let bare = review(&pod("web", Some("prod"), json!({})), "prod", "dev");
    assert!(admit(&webhook, &bare).await.0);

    api.seed(required_labels_template());
    api.seed(broken_template());
    let crd = api
        .wait_for("constraint CRD", WAIT, |api| {
            api.get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "k8srequiredlabels.constraints.gatekeeper.sh",
            )
        })
        .await;
    assert_eq!(
        crd["spec"]["names"],
        json!({"kind": "K8sRequiredLabels", "listKind": "K8sRequiredLabelsList",
               "plural": "k8srequiredlabels", "singular": "k8srequiredlabels",
               "categories": ["constraint", "constraints"]})
    );
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(
        crd["metadata"]["ownerReferences"][0]["kind"],
        "ConstraintTemplate"
    );

    // Template status: created, and this pod's entry; the broken one reports its error.
    let t = api
        .wait_for("template status", WAIT, |api| {
            api.get(TEMPLATES, "ConstraintTemplate", None, "k8srequiredlabels")
                .filter(|t| t["status"]["created"] == json!(true))
        })
        .await;
    let entry = &t["status"]["byPod"][0];
    assert_eq!(entry["id"], "regard-0");
    assert_eq!(entry["templateUID"], t["metadata"]["uid"]);
    assert_eq!(entry["operations"], json!(["audit", "status", "webhook"]));
    assert!(entry.get("errors").is_none(), "{entry}");
    let broken = api
        .wait_for("broken template status", WAIT, |api| {
            api.get(TEMPLATES, "ConstraintTemplate", None, "k8sbroken")
                .filter(|t| t["status"]["created"] == json!(false))
        })
        .await;
    let error = &broken["status"]["byPod"][0]["errors"][0];
    assert_eq!(error["code"], "ingest_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not ingest Rego: "),
        "{error}"
    );
    // A template that does not compile gets no CRD.
    assert!(
        api.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "k8sbroken.constraints.gatekeeper.sh"
        )
        .is_none()
    );

    // The constraint, once its CRD is served; enforced while the broken template sits beside it.
    wait_established(&api, "k8srequiredlabels.constraints.gatekeeper.sh").await;
    api.seed(required_labels("need-owner", &["owner"], json!({})));
    let entry = wait_enforced(&api, "K8sRequiredLabels", "need-owner", true).await;
    assert_eq!(entry["observedGeneration"], json!(1));
    assert_eq!(entry["operations"], json!(["audit", "status", "webhook"]));
    let (allowed, code, message) = admit(&webhook, &bare).await;
    assert_eq!(
        (allowed, code, message.as_str()),
        (false, 403, "[need-owner] missing label owner")
    );
    let labelled = review(
        &pod("web", Some("prod"), json!({"owner": "me"})),
        "prod",
        "dev",
    );
    assert!(admit(&webhook, &labelled).await.0);
    // A Pod without metadata.namespace in kube-system: the request's namespace is matched.
    let in_kube_system = review(&pod("web", None, json!({})), "kube-system", "dev");
    assert!(admit(&webhook, &in_kube_system).await.0);

    // Deleted: no longer enforced.
    assert!(api.delete(CONSTRAINTS, "K8sRequiredLabels", None, "need-owner"));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if admit(&webhook, &bare).await.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still denied after the delete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Deleting the template deletes its CRD.
    assert!(api.delete(TEMPLATES, "ConstraintTemplate", None, "k8srequiredlabels"));
    api.wait_for("CRD deleted", WAIT, |api| {
        api.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "k8srequiredlabels.constraints.gatekeeper.sh",
        )
        .is_none()
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_policies_present_at_start() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    api.seed(required_labels_template());
    let setup = Setup::new("policies");
    // A first replica creates the constraint CRD; then a constraint is applied.
    let first = start_webhook(&setup, &api, &["--audit-interval", "0"]);
    wait_established(&api, "k8srequiredlabels.constraints.gatekeeper.sh").await;
    api.seed(required_labels("need-owner", &["owner"], json!({})));
    wait_enforced(&api, "K8sRequiredLabels", "need-owner", true).await;
    drop(first);
    // A new replica whose first lists of that kind fail: it must not report ready (and
    // serve an empty policy set) until the constraint present at start is loaded.
    api.fail_next(
        "list",
        "/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels",
        3,
        500,
    );
    let webhook = start_webhook(&setup, &api, &["--audit-interval", "0"]);
    let (code, body) = loop {
        match http_get(webhook.health, "/readyz").await {
            Ok(answer) => break answer,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(
        (code, body.as_str()),
        (503, "cluster policies not loaded yet\n")
    );
    webhook.wait_ready().await;
    assert!(
        api.count(
            "list",
            "/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels"
        ) >= 4
    );
    // Ready means the constraint present at start is served.
    let bare = review(&pod("web", Some("prod"), json!({})), "prod", "dev");
    assert_eq!(
        admit(&webhook, &bare).await,
        (false, 403, "[need-owner] missing label owner".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_policy_resources_are_rejected_at_admission() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    api.seed(required_labels_template());
    let setup = Setup::new("policies");
    let webhook = start_webhook(
        &setup,
        &api,
        &[
            "--audit-interval",
            "0",
            "--service-account",
            "system:serviceaccount:regard:regard-webhook",
        ],
    );
    webhook.wait_ready().await;
    api.wait_for("template status", WAIT, |api| {
        api.get(TEMPLATES, "ConstraintTemplate", None, "k8srequiredlabels")
            .filter(|t| t["status"]["created"] == json!(true))
    })
    .await;

    let (allowed, code, message) = admit(&webhook, &review(&broken_template(), "", "alice")).await;
    assert_eq!((allowed, code), (false, 422));
    assert!(message.starts_with("Could not ingest Rego: "), "{message}");
    // regard's own writes are not reviewed.
    assert!(
        admit(
            &webhook,
            &review(
                &broken_template(),
                "",
                "system:serviceaccount:regard:regard-webhook"
            )
        )
        .await
        .0
    );
    let mut renamed = required_labels_template();
    renamed["metadata"]["name"] = json!("other");
    assert_eq!(
        admit(&webhook, &review(&renamed, "", "alice")).await,
        (false, 422, "invalid ConstraintTemplate: the ConstraintTemplate's name \"other\" is not equal to the lowercase of CRD's Kind: \"k8srequiredlabels\"".to_owned())
    );
    let blocking = required_labels("c", &["owner"], json!({"enforcementAction": "block"}));
    assert_eq!(
        admit(&webhook, &review(&blocking, "", "alice")).await,
        (false, 422, "unrecognized enforcementAction: \"block\" is not within the supported list [deny dryrun warn scoped]".to_owned())
    );
    let mut bad_params = required_labels("c", &[], json!({}));
    bad_params["spec"]["parameters"] = json!({"labels": "owner"});
    let (allowed, code, message) = admit(&webhook, &review(&bad_params, "", "alice")).await;
    assert_eq!((allowed, code), (false, 422));
    assert!(message.starts_with("spec.parameters/labels: "), "{message}");
    let config = json!({"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
                        "metadata": {"name": "cfg", "namespace": "gatekeeper-system"}});
    assert_eq!(
        admit(&webhook, &review(&config, "gatekeeper-system", "alice")).await,
        (
            false,
            422,
            "config resource must have name 'config'".to_owned()
        )
    );
    let good = required_labels("c", &["owner"], json!({}));
    assert!(admit(&webhook, &review(&good, "", "alice")).await.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_writes_capped_violations_to_constraint_status() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    api.seed(required_labels_template());
    for i in 0..25 {
        api.seed(pod(&format!("p{i:02}"), Some("default"), json!({})));
    }
    api.seed(pod("ok", Some("default"), json!({"owner": "me"})));
    api.seed(pod("sys", Some("kube-system"), json!({})));
    let setup = Setup::new("policies");
    let webhook = start_webhook(
        &setup,
        &api,
        &[
            "--audit-interval",
            "1s",
            "--constraint-violations-limit",
            "3",
            "--audit-chunk-size",
            "10",
        ],
    );
    api.wait_for("constraint CRD", WAIT, |api| {
        api.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "k8srequiredlabels.constraints.gatekeeper.sh",
        )
    })
    .await;
    wait_established(&api, "k8srequiredlabels.constraints.gatekeeper.sh").await;
    api.seed(required_labels("need-owner", &["owner"], json!({})));
    webhook.wait_ready().await;
    let status = api
        .wait_for("audit status", WAIT, |api| {
            let c = api.get(CONSTRAINTS, "K8sRequiredLabels", None, "need-owner")?;
            (c["status"]["totalViolations"] == json!(25)).then(|| c["status"].clone())
        })
        .await;
    let violations = status["violations"].as_array().unwrap();
    // The three smallest, written largest first.
    let names: Vec<&str> = violations
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["p02", "p01", "p00"]);
    assert_eq!(
        violations[2],
        json!({"enforcementAction": "deny", "group": "", "version": "v1", "kind": "Pod",
               "namespace": "default", "name": "p00", "message": "missing label owner"})
    );
    let ts = status["auditTimestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    // The audit paginated: 27 pods at 10 per page.
    assert!(
        api.requests()
            .iter()
            .any(|r| r.path == "/api/v1/pods" && r.query.contains("continue=")),
        "no continued list of pods"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_after_410_keeps_and_updates_the_policies() {
    // Watches end every second, so they resume from their resourceVersion.
    let api = FakeApiServer::start_with(Options {
        max_watch: Some(Duration::from_secs(1)),
        ..Options::default()
    })
    .await;
    seed_crds(&api).await;
    api.seed(required_labels_template());
    let setup = Setup::new("policies");
    let webhook = start_webhook(&setup, &api, &["--audit-interval", "0"]);
    api.wait_for("constraint CRD", WAIT, |api| {
        api.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "k8srequiredlabels.constraints.gatekeeper.sh",
        )
    })
    .await;
    wait_established(&api, "k8srequiredlabels.constraints.gatekeeper.sh").await;
    api.seed(required_labels("need-owner", &["owner"], json!({})));
    webhook.wait_ready().await;
    wait_enforced(&api, "K8sRequiredLabels", "need-owner", true).await;
    // The history is gone: resuming watches get 410 Gone and list again.
    api.compact();
    api.seed(required_labels("need-team", &["team"], json!({})));
    api.compact();
    wait_enforced(&api, "K8sRequiredLabels", "need-team", true).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bare = review(&pod("web", Some("prod"), json!({})), "prod", "dev");
    let (allowed, _, message) = admit(&webhook, &bare).await;
    assert!(!allowed);
    assert_eq!(
        message,
        "[need-owner] missing label owner\n[need-team] missing label team"
    );
}
