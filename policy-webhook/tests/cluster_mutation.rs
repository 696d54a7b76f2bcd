//! Mutators from the cluster (`--policy-source cluster`): the real `regard-webhook` binary
//! against the in-process fake API server, with `Assign`, `AssignMetadata` and `ModifySet`
//! objects applied, changed and deleted while it runs. Every patch `/v1/mutate` returns is
//! asserted exactly, applied to the object sent, and the result sent to `/v1/admit`, as the API
//! server does.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::apiserver::FakeApiServer;
use common::{Setup, Webhook, sample};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds");
const MUTATIONS: &str = "mutations.gatekeeper.sh/v1";

/// Every CRD of `deploy/crds`, seeded and Established.
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
        api.wait_for(&format!("{name} established"), WAIT, |api| {
            api.get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                &name,
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
}

fn start_webhook(setup: &Setup, api: &FakeApiServer) -> Webhook {
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
        &["--audit-interval", "0"],
    )
}

/// An `Assign` on Pods.
fn assign(name: &str, location: &str, value: Value) -> Value {
    json!({
        "apiVersion": MUTATIONS, "kind": "Assign",
        "metadata": {"name": name},
        "spec": {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
                 "match": {"scope": "Namespaced", "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]},
                 "location": location,
                 "parameters": {"assign": {"value": value}}}
    })
}

fn label(name: &str, key: &str, value: &str) -> Value {
    json!({
        "apiVersion": MUTATIONS, "kind": "AssignMetadata",
        "metadata": {"name": name},
        "spec": {"match": {"scope": "Namespaced", "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]},
                 "location": format!("metadata.labels.{key}"),
                 "parameters": {"assign": {"value": value}}}
    })
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "prod"},
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
}

/// An AdmissionReview v1 CREATE of `object` in its namespace.
fn create(object: &Value) -> Vec<u8> {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "7d0c2b7e-3f0a-4e5b-9a61-2c4d8e1f5a90", "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": object["kind"]},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
        "userInfo": {"username": "dev"}, "object": object, "oldObject": null, "dryRun": false
    }})
    .to_string()
    .into_bytes()
}

/// The JSON patch `/v1/mutate` returns for a CREATE of `object` (`None`: no patch), and
/// `object` with it applied.
async fn mutate(webhook: &Webhook, object: &Value) -> (Option<Value>, Value) {
    let reply = webhook
        .client()
        .post(webhook.addr, "/v1/mutate", &create(object))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let response = reply.json()["response"].clone();
    assert_eq!(response["allowed"], true, "{response}");
    let Some(encoded) = response["patch"].as_str() else {
        assert_eq!(response.get("patchType"), None, "{response}");
        return (None, object.clone());
    };
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut mutated = object.clone();
    json_patch::patch(&mut mutated, &patch).unwrap();
    (Some(serde_json::from_slice(&bytes).unwrap()), mutated)
}

/// The mutator's `status.byPod[0]` once `ready` accepts it.
async fn wait_status(
    api: &FakeApiServer,
    kind: &str,
    name: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let api_version = if kind == "AssignImage" {
        "mutations.gatekeeper.sh/v1alpha1"
    } else {
        MUTATIONS
    };
    api.wait_for(&format!("{kind} {name} status"), WAIT, |api| {
        let m = api.get(api_version, kind, None, name)?;
        let entry = m["status"]["byPod"][0].clone();
        ready(&entry).then_some(entry)
    })
    .await
}

/// This pod's status entry for a mutator that is applied, at `generation`.
fn enforced(api: &FakeApiServer, kind: &str, name: &str, generation: i64) -> Value {
    let api_version = if kind == "AssignImage" {
        "mutations.gatekeeper.sh/v1alpha1"
    } else {
        MUTATIONS
    };
    let uid = api.get(api_version, kind, None, name).unwrap()["metadata"]["uid"].clone();
    json!({"id": "regard-0", "mutatorUID": uid, "operations": ["audit", "status", "webhook"],
           "enforced": true, "observedGeneration": generation})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutators_apply_update_and_delete_without_a_restart() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    let setup = Setup::new("policies");
    let webhook = start_webhook(&setup, &api);
    webhook.wait_ready().await;
    assert_eq!(mutate(&webhook, &pod()).await.0, None);

    // Apply: the next CREATE gets the patch.
    api.seed(assign(
        "non-root",
        "spec.securityContext.runAsNonRoot",
        json!(true),
    ));
    let want = enforced(&api, "Assign", "non-root", 1);
    wait_status(&api, "Assign", "non-root", |s| *s == want).await;
    assert_eq!(
        mutate(&webhook, &pod()).await.0,
        Some(json!([{"op": "add", "path": "/spec/securityContext",
                     "value": {"runAsNonRoot": true}}]))
    );

    // Update: the new value.
    api.seed(assign(
        "non-root",
        "spec.securityContext.runAsUser",
        json!(1000),
    ));
    let want = enforced(&api, "Assign", "non-root", 2);
    wait_status(&api, "Assign", "non-root", |s| *s == want).await;
    let mut with_context = pod();
    with_context["spec"]["securityContext"] = json!({"runAsNonRoot": false});
    assert_eq!(
        mutate(&webhook, &with_context).await.0,
        Some(json!([{"op": "add", "path": "/spec/securityContext/runAsUser", "value": 1000}]))
    );

    // Delete: no patch any more.
    assert!(api.delete(MUTATIONS, "Assign", None, "non-root"));
    webhook.wait_log("mutator deleted").await;
    let deadline = std::time::Instant::now() + WAIT;
    while mutate(&webhook, &pod()).await.0.is_some() {
        assert!(std::time::Instant::now() < deadline, "still mutating");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = webhook.metrics_text().await;
    assert_eq!(sample(&metrics, "regard_webhook_mutators"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_mutator_is_reported_and_the_others_still_apply() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    // Present before start: readiness waits for them.
    api.seed(assign("bad", "metadata.labels.team", json!("a")));
    api.seed(label("team", "team", "payments"));
    api.seed(json!({
        "apiVersion": MUTATIONS, "kind": "ModifySet",
        "metadata": {"name": "drop-all"},
        "spec": {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
                 "location": "spec.containers[name: *].securityContext.capabilities.drop",
                 "parameters": {"operation": "merge", "values": {"fromList": ["ALL"]}}}
    }));
    api.seed(json!({
        "apiVersion": "mutations.gatekeeper.sh/v1alpha1", "kind": "AssignImage",
        "metadata": {"name": "mirror"},
        "spec": {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
                 "location": "spec.containers[name: *].image",
                 "parameters": {"assignDomain": "mirror.example.com"}}
    }));
    let setup = Setup::new("policies");
    let webhook = start_webhook(&setup, &api);
    webhook.wait_ready().await;

    // Ready means the mutators present at start are served: no waiting for their status.
    let (patch, mutated) = mutate(&webhook, &pod()).await;
    assert_eq!(
        patch,
        Some(json!([
            {"op": "add", "path": "/metadata/labels", "value": {"team": "payments"}},
            {"op": "replace", "path": "/spec/containers/0/image",
             "value": "mirror.example.com/nginx"},
            {"op": "add", "path": "/spec/containers/0/securityContext",
             "value": {"capabilities": {"drop": ["ALL"]}}},
        ]))
    );
    // Mutated again (reinvocation): nothing to change.
    assert_eq!(mutate(&webhook, &mutated).await.0, None);

    let bad = wait_status(&api, "Assign", "bad", |s| !s.is_null()).await;
    let uid = api.get(MUTATIONS, "Assign", None, "bad").unwrap()["metadata"]["uid"].clone();
    assert_eq!(
        bad,
        json!({"id": "regard-0", "mutatorUID": uid, "operations": ["audit", "status", "webhook"],
               "observedGeneration": 1,
               "errors": [{"message": "spec.location: assign bad can't change metadata"}]})
    );
    let want = enforced(&api, "AssignMetadata", "team", 1);
    wait_status(&api, "AssignMetadata", "team", |s| *s == want).await;
    let want = enforced(&api, "ModifySet", "drop-all", 1);
    wait_status(&api, "ModifySet", "drop-all", |s| *s == want).await;
    let want = enforced(&api, "AssignImage", "mirror", 1);
    wait_status(&api, "AssignImage", "mirror", |s| *s == want).await;
    webhook
        .wait_log("mutator refused (the others are applied): assign bad can't change metadata")
        .await;
    let metrics = webhook.metrics_text().await;
    assert_eq!(sample(&metrics, "regard_webhook_mutators"), Some(3.0));
    assert_eq!(sample(&metrics, "regard_webhook_mutator_errors"), Some(1.0));
    assert_eq!(
        sample(&metrics, "regard_webhook_mutator_conflicts"),
        Some(0.0)
    );

    // `kubectl apply` of the refused mutator fails at once (self-validation on /v1/admit).
    let apply = |object: &Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "0b6f1c3a-5d2e-4f7a-8c91-3e5d7a9b1c20", "operation": "CREATE",
            "kind": {"group": "mutations.gatekeeper.sh", "version": "v1", "kind": object["kind"]},
            "resource": {"group": "mutations.gatekeeper.sh", "version": "v1", "resource": "assign"},
            "name": object["metadata"]["name"], "userInfo": {"username": "alice"},
            "object": object, "oldObject": null, "dryRun": false
        }})
        .to_string()
        .into_bytes()
    };
    let answer = webhook
        .admit(&apply(&assign("bad", "metadata.labels.team", json!("a"))))
        .await
        .json()["response"]
        .clone();
    assert_eq!(
        (
            &answer["allowed"],
            &answer["status"]["code"],
            &answer["status"]["message"]
        ),
        (
            &json!(false),
            &json!(422),
            &json!("spec.location: assign bad can't change metadata")
        )
    );
    let answer = webhook
        .admit(&apply(&assign("bad", "spec.priority", json!(5))))
        .await
        .json()["response"]
        .clone();
    assert_eq!(answer["allowed"], true, "{answer}");

    // Fixing the refused mutator puts it to work.
    api.seed(assign("bad", "spec.priority", json!(5)));
    let want = enforced(&api, "Assign", "bad", 2);
    wait_status(&api, "Assign", "bad", |s| *s == want).await;
    assert_eq!(
        mutate(&webhook, &mutated).await.0,
        Some(json!([{"op": "add", "path": "/spec/priority", "value": 5}]))
    );
    let metrics = webhook.metrics_text().await;
    assert_eq!(sample(&metrics, "regard_webhook_mutator_errors"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_mutators_are_disabled_and_say_so() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    let setup = Setup::new("policies");
    let webhook = start_webhook(&setup, &api);
    webhook.wait_ready().await;

    api.seed(assign("as-object", "spec.foo.bar", json!(1)));
    api.seed(assign("as-list", "spec.foo[name: x].bar", json!(1)));
    api.seed(label("team", "team", "payments"));
    let message = "the following mutators have conflicting schemas at spec.foo (v1 Pod): \
                   Assign/as-list, Assign/as-object; they are disabled";
    for name in ["as-list", "as-object"] {
        let uid = api.get(MUTATIONS, "Assign", None, name).unwrap()["metadata"]["uid"].clone();
        let want = json!({"id": "regard-0", "mutatorUID": uid,
                          "operations": ["audit", "status", "webhook"], "observedGeneration": 1,
                          "errors": [{"type": "ErrConflictingSchema", "message": message}]});
        wait_status(&api, "Assign", name, |s| *s == want).await;
    }
    let want = enforced(&api, "AssignMetadata", "team", 1);
    wait_status(&api, "AssignMetadata", "team", |s| *s == want).await;
    assert_eq!(
        mutate(&webhook, &pod()).await.0,
        Some(json!([{"op": "add", "path": "/metadata/labels", "value": {"team": "payments"}}]))
    );
    let metrics = webhook.metrics_text().await;
    assert_eq!(sample(&metrics, "regard_webhook_mutators"), Some(1.0));
    assert_eq!(
        sample(&metrics, "regard_webhook_mutator_conflicts"),
        Some(2.0)
    );

    // Removing one side of the conflict enables the other.
    assert!(api.delete(MUTATIONS, "Assign", None, "as-list"));
    let want = enforced(&api, "Assign", "as-object", 1);
    wait_status(&api, "Assign", "as-object", |s| *s == want).await;
    let (patch, _) = mutate(&webhook, &pod()).await;
    assert_eq!(
        patch,
        Some(json!([
            {"op": "add", "path": "/metadata/labels", "value": {"team": "payments"}},
            {"op": "add", "path": "/spec/foo", "value": {"bar": 1}},
        ]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mutated_object_passes_validation_the_original_fails() {
    let api = FakeApiServer::start().await;
    seed_crds(&api).await;
    let setup = Setup::new("policies");
    let webhook = start_webhook(&setup, &api);
    webhook.wait_ready().await;
    api.seed(json!({
        "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
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
    }));
    api.wait_for("constraint CRD", WAIT, |api| {
        api.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "k8srequiredlabels.constraints.gatekeeper.sh",
        )
        .filter(|c| {
            c["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established"))
        })
    })
    .await;
    api.seed(json!({
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
        "metadata": {"name": "need-team"},
        "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]},
                 "parameters": {"labels": ["team"]}}
    }));
    api.wait_for("constraint enforced", WAIT, |api| {
        api.get(
            "constraints.gatekeeper.sh/v1beta1",
            "K8sRequiredLabels",
            None,
            "need-team",
        )
        .filter(|c| c["status"]["byPod"][0]["enforced"] == true)
    })
    .await;
    api.seed(label("team", "team", "payments"));
    let want = enforced(&api, "AssignMetadata", "team", 1);
    wait_status(&api, "AssignMetadata", "team", |s| *s == want).await;

    let original = pod();
    let (patch, mutated) = mutate(&webhook, &original).await;
    assert_eq!(
        patch,
        Some(json!([{"op": "add", "path": "/metadata/labels", "value": {"team": "payments"}}]))
    );
    let verdict = |body: Vec<u8>| {
        let webhook = &webhook;
        async move {
            let r = webhook.admit(&body).await.json()["response"].clone();
            (
                r["allowed"].as_bool().unwrap(),
                r["status"]["message"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    assert_eq!(
        verdict(create(&original)).await,
        (false, "[need-team] missing label team".to_owned())
    );
    assert_eq!(verdict(create(&mutated)).await, (true, String::new()));
}
