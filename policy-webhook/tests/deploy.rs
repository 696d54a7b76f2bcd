//! `deploy/` builds with `kubectl kustomize` and says what the cluster mode needs: no
//! cert-manager, the certificate flags, the RBAC rules certificates and the Lease rely on, and
//! Gatekeeper's webhook defaults.

use std::process::Command;

use serde::Deserialize as _;
use serde_json::{Value, json};

/// Whether `kubectl` can run here; when it cannot, the kubectl tests say so and pass.
fn have_kubectl() -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("notice: kubectl is not installed; skipping the kubectl check");
    }
    found
}

fn manifests() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let out = Command::new("kubectl")
        .args(["kustomize", dir])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| serde_json::to_value(yaml_serde::Value::deserialize(doc).unwrap()).unwrap())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == json!(kind) && d["metadata"]["name"] == json!(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn kustomize_builds_the_cluster_mode_without_cert_manager() {
    if !have_kubectl() {
        return;
    }
    let docs = manifests();
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole regard-webhook",
            "ClusterRoleBinding regard-webhook",
            "CustomResourceDefinition assign.mutations.gatekeeper.sh",
            "CustomResourceDefinition assignimage.mutations.gatekeeper.sh",
            "CustomResourceDefinition assignmetadata.mutations.gatekeeper.sh",
            "CustomResourceDefinition configs.config.gatekeeper.sh",
            "CustomResourceDefinition constrainttemplates.templates.gatekeeper.sh",
            "CustomResourceDefinition expansiontemplate.expansion.gatekeeper.sh",
            "CustomResourceDefinition modifyset.mutations.gatekeeper.sh",
            "CustomResourceDefinition syncsets.syncset.gatekeeper.sh",
            "Deployment regard-webhook",
            "MutatingWebhookConfiguration regard-webhook-mutating",
            "Namespace regard-system",
            "PodDisruptionBudget regard-webhook",
            "Role regard-webhook",
            "RoleBinding regard-webhook",
            "Service regard-webhook",
            "Service regard-webhook-metrics",
            "ServiceAccount regard-webhook",
            "ValidatingWebhookConfiguration regard-webhook",
        ]
    );
    assert!(
        docs.iter()
            .all(|d| !d["apiVersion"].as_str().unwrap().contains("cert-manager"))
    );

    let deployment = find(&docs, "Deployment", "regard-webhook");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for expected in [
        "--policy-source=cluster",
        "--cert-secret=regard-system/regard-webhook-cert",
        "--cert-dir=/certs",
        "--cert-service-name=regard-webhook",
        "--webhook-config-name=regard-webhook",
        "--audit-lease-name=regard-audit",
        "--exempt-namespace=regard-system",
    ] {
        assert!(args.contains(&expected), "{expected} missing from {args:?}");
    }
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--tls-cert-file") || a.starts_with("--policy-dir"))
    );
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "certs", "mountPath": "/certs"}])
    );
    let env: Vec<(&str, &str)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        env,
        [
            ("REGARD_WEBHOOK_NAMESPACE", "metadata.namespace"),
            ("REGARD_WEBHOOK_POD_NAME", "metadata.name")
        ]
    );

    // The Secret, the Lease and the webhook configuration by name; nothing else writable.
    let role = find(&docs, "Role", "regard-webhook");
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["regard-webhook-cert"],
             "verbs": ["get", "list", "watch", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["regard-audit"],
             "verbs": ["get", "update"]},
        ])
    );
    let cluster_role = find(&docs, "ClusterRole", "regard-webhook");
    let rules = cluster_role["rules"].as_array().unwrap();
    let resources_of = |group: &str| -> Vec<&str> {
        rules
            .iter()
            .filter(|r| r["apiGroups"] == json!([group]))
            .flat_map(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
            })
            .collect()
    };
    // Every CRD in deploy/crds is readable under its own plural.
    for crd in docs
        .iter()
        .filter(|d| d["kind"] == json!("CustomResourceDefinition"))
    {
        let (group, plural) = (
            crd["spec"]["group"].as_str().unwrap(),
            crd["spec"]["names"]["plural"].as_str().unwrap(),
        );
        assert!(
            resources_of(group).contains(&plural),
            "no rule for {plural}.{group}"
        );
    }
    // The mutators' status (this pod's byPod entry) is written through the status subresource.
    let mutators = ["assign", "assignmetadata", "modifyset", "assignimage"];
    let status_rule = rules
        .iter()
        .find(|r| {
            r["apiGroups"] == json!(["mutations.gatekeeper.sh"])
                && r["verbs"] != json!(["get", "list", "watch"])
        })
        .unwrap();
    assert_eq!(
        (&status_rule["resources"], &status_rule["verbs"]),
        (
            &json!(mutators.map(|m| format!("{m}/status"))),
            &json!(["get", "update", "patch"])
        )
    );
    let read_rule = rules
        .iter()
        .find(|r| {
            r["apiGroups"] == json!(["mutations.gatekeeper.sh"])
                && r["verbs"] == json!(["get", "list", "watch"])
        })
        .unwrap();
    assert_eq!(read_rule["resources"], json!(mutators));
    let vwc_rule = rules
        .iter()
        .find(|r| r["resources"] == json!(["validatingwebhookconfigurations"]))
        .unwrap();
    assert_eq!(vwc_rule["resourceNames"], json!(["regard-webhook"]));
    assert_eq!(vwc_rule["verbs"], json!(["get", "list", "watch", "update"]));
    // Writes anywhere else only to Gatekeeper's groups and CRDs.
    for rule in rules {
        let writes = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| matches!(v.as_str(), Some("create" | "update" | "patch" | "delete")));
        if writes {
            let group = rule["apiGroups"][0].as_str().unwrap();
            assert!(
                group.ends_with("gatekeeper.sh")
                    || group == "apiextensions.k8s.io"
                    || rule["resourceNames"].is_array(),
                "{rule}"
            );
        }
    }

    let vwc = find(&docs, "ValidatingWebhookConfiguration", "regard-webhook");
    assert_eq!(
        vwc["metadata"].get("annotations"),
        None,
        "no CA injector annotation"
    );
    let admit = &vwc["webhooks"][0];
    assert_eq!(
        (
            &admit["failurePolicy"],
            &admit["timeoutSeconds"],
            admit["clientConfig"].get("caBundle")
        ),
        (&json!("Ignore"), &json!(3), None)
    );
    assert_eq!(
        admit["namespaceSelector"]["matchExpressions"],
        json!([
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["regard-system"]},
            {"key": "admission.gatekeeper.sh/ignore", "operator": "DoesNotExist"},
            {"key": "admission.regard.dev/ignore", "operator": "DoesNotExist"},
        ])
    );
}
