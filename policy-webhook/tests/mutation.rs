//! `/v1/mutate` end to end: the real `regard-webhook` binary over TLS, serving the mutators of
//! `tests/webhook/policies-mutation`. Every returned patch is decoded, applied to the object
//! that was sent (json-patch, RFC 6902) and the result compared with the expected object
//! exactly; then the mutated object goes to `/v1/admit`, as the API server sends it.

mod common;

use base64::Engine as _;
use serde_json::{Value, json};

const POLICIES: &str = "policies-mutation";

/// An AdmissionReview (`apiVersion`) for `object`, a resource of `resource`
/// (`"", "v1", "pods"`): kind, name and namespace fill the envelope (`namespace` overrides the
/// object's, as the API server sends the request's namespace even when the object has none).
/// DELETE moves the object to `oldObject`; UPDATE sends it as both.
fn review(
    api_version: &str,
    operation: &str,
    resource: [&str; 3],
    namespace: Option<&str>,
    object: &Value,
) -> Vec<u8> {
    let [group, version, plural] = resource;
    let (new, old) = match operation {
        "DELETE" => (Value::Null, object.clone()),
        "UPDATE" => (object.clone(), object.clone()),
        _ => (object.clone(), Value::Null),
    };
    let mut request = json!({
        "uid": "2f0c6d1e-7a4b-4c39-9d51-0e8b7f6a5c42",
        "kind": {"group": group, "version": version, "kind": object["kind"]},
        "resource": {"group": group, "version": version, "resource": plural},
        "name": object["metadata"]["name"], "operation": operation,
        "userInfo": {"username": "dev"}, "object": new, "oldObject": old, "dryRun": false
    });
    if let Some(ns) = namespace.or(object["metadata"]["namespace"].as_str()) {
        request["namespace"] = json!(ns);
    }
    json!({"apiVersion": api_version, "kind": "AdmissionReview", "request": request})
        .to_string()
        .into_bytes()
}

fn create(namespace: &str, object: &Value) -> Vec<u8> {
    let resource = match object["kind"].as_str() {
        Some("ConfigMap") => ["", "v1", "configmaps"],
        Some("Deployment") => ["apps", "v1", "deployments"],
        _ => ["", "v1", "pods"],
    };
    review(
        "admission.k8s.io/v1",
        "CREATE",
        resource,
        Some(namespace),
        object,
    )
}

/// What `/v1/mutate` answered: the response, and the object after applying its patch.
struct Mutation {
    response: Value,
    mutated: Value,
}

impl Mutation {
    fn message(&self) -> &str {
        self.response["status"]["message"].as_str().unwrap_or("")
    }
}

/// Posts to `/v1/mutate`, checks the envelope, applies the patch (if any) to `object`.
async fn mutate(hook: &common::Webhook, body: &[u8], object: &Value) -> Mutation {
    let reply = hook
        .client()
        .post(hook.addr, "/v1/mutate", body)
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let review = reply.json();
    let sent = common::json(body);
    assert_eq!(review["apiVersion"], sent["apiVersion"]);
    assert_eq!(review["kind"], "AdmissionReview");
    let response = review["response"].clone();
    assert_eq!(response["uid"], sent["request"]["uid"]);
    let mut mutated = object.clone();
    match response["patch"].as_str() {
        None => assert_eq!(response.get("patchType"), None, "{response}"),
        Some(encoded) => {
            assert_eq!(response["patchType"], "JSONPatch");
            assert_eq!(response["allowed"], true);
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
            assert!(!patch.0.is_empty(), "an empty patch is sent as none");
            json_patch::patch(&mut mutated, &patch).unwrap_or_else(|e| {
                panic!(
                    "patch {} does not apply: {e}",
                    String::from_utf8_lossy(&bytes)
                )
            });
        }
    }
    Mutation { response, mutated }
}

fn pod(namespace: Option<&str>, containers: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": containers}
    });
    if let Some(ns) = namespace {
        pod["metadata"]["namespace"] = json!(ns);
    }
    pod
}

fn two_containers() -> Value {
    json!([
        {"name": "web", "image": "nginx:1.27", "args": ["--debug", "--port=80"]},
        {"name": "sidecar", "image": "registry.example.com/proxy:2",
         "securityContext": {"runAsNonRoot": false}}
    ])
}

/// [`two_containers`] after every mutator that applies outside the special namespaces.
fn two_containers_mutated() -> Value {
    json!([
        {"name": "web", "image": "nginx:1.27", "args": ["--port=80"],
         "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}},
        {"name": "sidecar", "image": "registry.example.com/proxy:2",
         "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}}
    ])
}

fn mutated_pod(namespace: Option<&str>, containers: Value, labels: Value) -> Value {
    let mut pod = pod(namespace, containers);
    pod["metadata"]["labels"] = labels;
    pod["spec"]["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    pod
}

#[tokio::test]
async fn patches_turn_objects_into_the_mutated_objects() {
    let setup = common::Setup::new(POLICIES);
    let hook = setup.start(&[]);
    hook.wait_ready().await;
    let owner = json!({"app": "web", "owner": "platform"});

    // Every kind: Assign (glob, keyed-list append, pathTests, fromMetadata), AssignMetadata,
    // ModifySet merge and prune, AssignImage.
    let cases: Vec<(&str, Vec<u8>, Value, Value)> = vec![
        (
            "a Pod in default",
            create("default", &pod(Some("default"), two_containers())),
            pod(Some("default"), two_containers()),
            mutated_pod(Some("default"), two_containers_mutated(), owner.clone()),
        ),
        (
            // The API server may send an object without metadata.namespace: mutation sees
            // the request's namespace, and the patch does not add one.
            "a Pod without metadata.namespace",
            create("default", &pod(None, two_containers())),
            pod(None, two_containers()),
            mutated_pod(None, two_containers_mutated(), owner.clone()),
        ),
        (
            "the same Pod as an UPDATE",
            review(
                "admission.k8s.io/v1",
                "UPDATE",
                ["", "v1", "pods"],
                None,
                &pod(Some("default"), two_containers()),
            ),
            pod(Some("default"), two_containers()),
            mutated_pod(Some("default"), two_containers_mutated(), owner.clone()),
        ),
        (
            "the same Pod in an admission.k8s.io/v1beta1 review",
            review(
                "admission.k8s.io/v1beta1",
                "CREATE",
                ["", "v1", "pods"],
                None,
                &pod(Some("default"), two_containers()),
            ),
            pod(Some("default"), two_containers()),
            mutated_pod(Some("default"), two_containers_mutated(), owner.clone()),
        ),
        {
            // A tolerations entry appended by key; an existing owner label, drop list and
            // seccomp profile are kept (AssignMetadata only adds, pathTests MustNotExist).
            let mut original = pod(
                Some("batch"),
                json!([{"name": "job", "image": "busybox:1.36",
                        "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}]),
            );
            original["metadata"]["labels"]["owner"] = json!("team-a");
            original["spec"]["tolerations"] = json!([{"key": "gpu", "operator": "Exists"}]);
            original["spec"]["securityContext"] =
                json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "job.json"}});
            let mut expected = original.clone();
            expected["spec"]["containers"] = json!([{"name": "job", "image": "busybox:1.36",
                "securityContext": {"capabilities": {"drop": ["NET_RAW", "ALL"]},
                                    "runAsNonRoot": true}}]);
            expected["spec"]["tolerations"] = json!([
                {"key": "gpu", "operator": "Exists"},
                {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
            ]);
            (
                "a Pod in batch",
                create("batch", &original),
                original,
                expected,
            )
        },
        (
            "a Pod in mirrored (AssignImage)",
            create(
                "mirrored",
                &pod(
                    Some("mirrored"),
                    json!([{"name": "a", "image": "nginx:1.27"},
                           {"name": "b", "image": "docker.io/library/redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
                           {"name": "c", "image": "localhost:5000/tools/debug"}]),
                ),
            ),
            pod(
                Some("mirrored"),
                json!([{"name": "a", "image": "nginx:1.27"},
                       {"name": "b", "image": "docker.io/library/redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
                       {"name": "c", "image": "localhost:5000/tools/debug"}]),
            ),
            mutated_pod(
                Some("mirrored"),
                json!([
                    {"name": "a", "image": "mirror.example.com/nginx:1.27",
                     "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}},
                    {"name": "b", "image": "mirror.example.com/library/redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                     "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}},
                    {"name": "c", "image": "mirror.example.com/tools/debug",
                     "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}}
                ]),
                owner.clone(),
            ),
        ),
        (
            "a Pod in privileged (excluded by the runAsNonRoot mutator's match)",
            create(
                "privileged",
                &pod(
                    Some("privileged"),
                    json!([{"name": "web", "image": "nginx:1.27"}]),
                ),
            ),
            pod(
                Some("privileged"),
                json!([{"name": "web", "image": "nginx:1.27"}]),
            ),
            mutated_pod(
                Some("privileged"),
                json!([{"name": "web", "image": "nginx:1.27",
                        "securityContext": {"capabilities": {"drop": ["ALL"]}}}]),
                owner.clone(),
            ),
        ),
        {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "settings", "namespace": "shop"},
                            "data": {"mode": "fast"}});
            let mut expected = cm.clone();
            expected["data"]["namespace"] = json!("shop");
            (
                "a ConfigMap (fromMetadata)",
                create("shop", &cm),
                cm,
                expected,
            )
        },
        {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "empty", "namespace": "shop"}});
            let mut expected = cm.clone();
            expected["data"] = json!({"namespace": "shop"});
            (
                "a ConfigMap without data",
                create("shop", &cm),
                cm,
                expected,
            )
        },
        {
            let done = mutated_pod(Some("default"), two_containers_mutated(), owner.clone());
            (
                "an already mutated Pod (reinvocation): no patch",
                create("default", &done),
                done.clone(),
                done,
            )
        },
        {
            let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": "web", "namespace": "default"},
                                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
            (
                "a Deployment (no mutator applies)",
                create("default", &deploy),
                deploy.clone(),
                deploy,
            )
        },
    ];
    for (what, body, original, expected) in cases {
        let m = mutate(&hook, &body, &original).await;
        assert_eq!(m.response["allowed"], true, "{what}: {}", m.response);
        assert_eq!(m.mutated, expected, "{what}");
        if original == expected {
            assert_eq!(m.response.get("patch"), None, "{what}");
            assert_eq!(m.message(), "Resource was not mutated", "{what}");
        } else {
            assert_eq!(m.response["status"]["code"], 200, "{what}");
        }
    }

    let metrics = hook.metrics_text().await;
    for (series, value) in [
        ("regard_webhook_mutators", 8.0),
        ("regard_webhook_mutator_errors", 1.0),
        ("regard_webhook_mutator_conflicts", 0.0),
        (
            "regard_webhook_mutation_requests_total{result=\"mutated\"}",
            9.0,
        ),
        (
            "regard_webhook_mutation_requests_total{result=\"unchanged\"}",
            2.0,
        ),
        (
            "regard_webhook_mutations_applied_total{kind=\"AssignMetadata\",name=\"owner-label\"}",
            6.0,
        ),
        (
            "regard_webhook_mutations_applied_total{kind=\"AssignImage\",name=\"mirror-registry\"}",
            1.0,
        ),
        (
            "regard_webhook_mutations_applied_total{kind=\"Assign\",name=\"tolerate-dedicated\"}",
            1.0,
        ),
        (
            "regard_webhook_mutation_duration_seconds_count{result=\"mutated\"}",
            9.0,
        ),
    ] {
        assert_eq!(
            common::sample(&metrics, series),
            Some(value),
            "{series}\n{metrics}"
        );
    }
    let log = hook.log_text();
    assert!(
        log.contains("sets-a-label") && log.contains("can't change metadata"),
        "the rejected mutator is logged by name: {log}"
    );
}

#[tokio::test]
async fn requests_that_are_not_mutated_by_rule() {
    let setup = common::Setup::new(POLICIES);
    let hook = setup.start(&["--exempt-namespace", "kube-*"]);
    hook.wait_ready().await;
    let pod = pod(Some("default"), two_containers());

    let skipped: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "DELETE",
            review(
                "admission.k8s.io/v1",
                "DELETE",
                ["", "v1", "pods"],
                None,
                &pod,
            ),
            "Mutating only on create or update",
        ),
        (
            "CONNECT",
            review(
                "admission.k8s.io/v1",
                "CONNECT",
                ["", "v1", "pods"],
                None,
                &pod,
            ),
            "Mutating only on create or update",
        ),
        (
            "an exempt namespace",
            create("kube-system", &pod),
            "namespace \"kube-system\" is exempt from policy (--exempt-namespace)",
        ),
        (
            "a namespace the Config excludes from mutation-webhook",
            create("excluded", &pod),
            "namespace \"excluded\" is excluded from mutation by the policy set's Config",
        ),
        (
            "a Gatekeeper resource",
            review(
                "admission.k8s.io/v1",
                "CREATE",
                ["mutations.gatekeeper.sh", "v1", "assign"],
                None,
                &json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign",
                        "metadata": {"name": "x"}, "spec": {}}),
            ),
            "Not mutating gatekeeper resources",
        ),
    ];
    for (what, body, message) in skipped {
        let m = mutate(&hook, &body, &pod).await;
        assert_eq!(
            m.response,
            json!({"uid": "2f0c6d1e-7a4b-4c39-9d51-0e8b7f6a5c42", "allowed": true,
                   "status": {"code": 200, "message": message}}),
            "{what}"
        );
    }

    // The Config excludes "excluded" from mutation only: validation still runs there.
    let reply = hook.admit(&create("excluded", &pod)).await;
    assert_eq!(reply.json()["response"]["allowed"], false);

    // Not an object: the envelope is refused before anything is mutated.
    let mut not_object = common::json(&create("default", &pod));
    not_object["request"]["object"] = json!("a string");
    let reply = hook
        .client()
        .post(hook.addr, "/v1/mutate", not_object.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .text()
            .starts_with("body is not an AdmissionReview: invalid type: string \"a string\", expected a Kubernetes object"),
        "{}",
        reply.text()
    );

    // A CREATE without an object.
    let mut no_object = common::json(&create("default", &pod));
    no_object["request"]["object"] = Value::Null;
    let m = mutate(&hook, no_object.to_string().as_bytes(), &pod).await;
    assert_eq!(
        m.response,
        json!({"uid": "2f0c6d1e-7a4b-4c39-9d51-0e8b7f6a5c42", "allowed": false,
               "status": {"code": 400, "reason": "BadRequest",
                          "message": "request.object is missing: Create needs the object to mutate"}})
    );

    // A mutator that fails on this object: refused with the error, which names the mutator;
    // never a patch.
    let broken = json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "web", "namespace": "default"},
                        "spec": {"containers": [{"name": "web", "image": "nginx",
                                                 "securityContext": "oops"}]}});
    let m = mutate(&hook, &create("default", &broken), &broken).await;
    assert_eq!(m.response["allowed"], false, "{}", m.response);
    assert_eq!(m.response["status"]["code"], 500);
    assert_eq!(m.response.get("patch"), None);
    assert!(
        m.message().contains("containers-run-as-non-root"),
        "{}",
        m.message()
    );

    let metrics = hook.metrics_text().await;
    for (series, value) in [
        (
            "regard_webhook_mutation_requests_total{result=\"skipped\"}",
            5.0,
        ),
        (
            "regard_webhook_mutation_requests_total{result=\"error\"}",
            2.0,
        ),
        ("regard_webhook_http_responses_total{code=\"400\"}", 1.0),
    ] {
        assert_eq!(
            common::sample(&metrics, series),
            Some(value),
            "{series}\n{metrics}"
        );
    }
}

#[tokio::test]
async fn the_mutated_object_is_validated_as_a_cluster_would() {
    let setup = common::Setup::new(POLICIES);
    let hook = setup.start(&["--mutation-annotations", "--log-mutations"]);
    hook.wait_ready().await;
    let original = pod(Some("default"), two_containers());

    // As sent, the Pod lacks the owner label the constraint requires.
    let reply = hook.admit(&create("default", &original)).await;
    let response = &reply.json()["response"];
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        "[pod-must-have-owner] Pod web must have labels: owner"
    );

    // The API server mutates first, then validates what mutation returned.
    let m = mutate(&hook, &create("default", &original), &original).await;
    let annotations = m.mutated["metadata"]["annotations"].clone();
    let id = annotations["gatekeeper.sh/mutation-id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4,
        "{id:?} is a UUID"
    );
    assert_eq!(
        annotations["gatekeeper.sh/mutations"],
        "Assign//containers-run-as-non-root:0, Assign//pod-seccomp-default:3, \
         AssignMetadata//owner-label:0, ModifySet//drop-all-capabilities:0, \
         ModifySet//no-debug-args:0"
    );
    let mut expected = mutated_pod(
        Some("default"),
        two_containers_mutated(),
        json!({"app": "web", "owner": "platform"}),
    );
    expected["metadata"]["annotations"] = annotations;
    assert_eq!(m.mutated, expected);

    let reply = hook.admit(&create("default", &m.mutated)).await;
    let response = &reply.json()["response"];
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["status"]["code"], 200);

    hook.wait_log("\"message\":\"Mutation applied\"").await;
    let line = hook
        .log_text()
        .lines()
        .find(|l| l.contains("\"message\":\"Mutation applied\""))
        .map(common::json_str)
        .unwrap();
    assert_eq!(line["event_type"], "mutation_applied");
    assert_eq!(line["mutation_id"], id.as_str());
    assert_eq!(line["resource_kind"], "Pod");
    assert_eq!(line["resource_namespace"], "default");
    assert_eq!(line["resource_name"], "web");
}

#[tokio::test]
async fn mutators_reload_with_the_policy_set() {
    let setup = common::Setup::new(POLICIES);
    let hook = setup.start(&[]);
    hook.wait_ready().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "settings", "namespace": "shop"}});
    let m = mutate(&hook, &create("shop", &cm), &cm).await;
    assert_eq!(m.mutated["data"], json!({"namespace": "shop"}));

    // A new mutator file (atomically, as a ConfigMap update): served after the reload, and the
    // refused one still counted.
    common::write_atomic(
        &setup.policy_dir.join("more.yaml"),
        br#"
apiVersion: mutations.gatekeeper.sh/v1
kind: AssignMetadata
metadata:
  name: managed-by
spec:
  location: "metadata.labels.managed-by"
  parameters:
    assign:
      value: regard
"#,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = hook.metrics_text().await;
        if common::sample(&metrics, "regard_webhook_mutators") == Some(9.0) {
            assert_eq!(
                common::sample(&metrics, "regard_webhook_mutator_errors"),
                Some(1.0)
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let m = mutate(&hook, &create("shop", &cm), &cm).await;
    let mut expected = cm.clone();
    expected["data"] = json!({"namespace": "shop"});
    expected["metadata"]["labels"] = json!({"managed-by": "regard"});
    assert_eq!(m.mutated, expected);

    // A file that breaks the whole set (a template that does not compile) keeps the last good
    // set, mutators included.
    common::write_atomic(
        &setup.policy_dir.join("requiredlabels-template.yaml"),
        b"apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: broken}\nspec: {crd: {spec: {names: {kind: Broken}}}, targets: [{target: admission.k8s.gatekeeper.sh, rego: 'package x\nviolation[{' }]}\n",
    );
    hook.wait_log("policy reload failed; keeping the last good policy set")
        .await;
    let m = mutate(&hook, &create("shop", &cm), &cm).await;
    assert_eq!(m.mutated, expected);
}

#[tokio::test]
async fn built_in_bundles_mutate_then_validate() {
    // restricted-defaults' mutators make a bare Pod meet restricted: denied as sent, admitted
    // as mutated, the way the API server calls the two webhooks.
    let setup = common::Setup::new(POLICIES);
    let hook = setup.start_with(&["--bundle", "restricted,restricted-defaults"], &[]);
    hook.wait_ready().await;
    let bare = json!({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "bare", "namespace": "apps"},
                      "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}});
    let reply = hook.admit(&create("apps", &bare)).await;
    assert_eq!(
        reply.json()["response"]["allowed"],
        false,
        "{}",
        reply.text()
    );

    let m = mutate(&hook, &create("apps", &bare), &bare).await;
    let mut expected = bare.clone();
    expected["spec"]["securityContext"] =
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    expected["spec"]["containers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    assert_eq!(m.mutated, expected);

    let reply = hook.admit(&create("apps", &m.mutated)).await;
    let response = &reply.json()["response"];
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response.get("warnings"), None, "{response}");
}
