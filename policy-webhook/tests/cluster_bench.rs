//! Benchmarks of `--policy-source cluster` on the fake API server (`bench/cluster.sh` runs them
//! in release mode; `#[ignore]`d so the test suite does not): policy-set rebuild time with 50
//! templates and 500 constraints, apply→enforce latency of a constraint, and a whole-cluster
//! audit of 10,000 Pods against 15 gatekeeper-library Pod templates (time and peak memory).
//! Figures are printed; BENCHMARKS.md records them.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::apiserver::FakeApiServer;
use common::{Setup, Webhook, http_get};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds");
const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/gatekeeper-library"
);
/// The 15 library templates of the webhook load test (`bench/webhook/run.sh`).
const POD_TEMPLATES: [&str; 15] = [
    "pod-security-policy/allow-privilege-escalation",
    "pod-security-policy/capabilities",
    "pod-security-policy/forbidden-sysctls",
    "pod-security-policy/host-filesystem",
    "pod-security-policy/host-namespaces",
    "pod-security-policy/host-network-ports",
    "pod-security-policy/privileged-containers",
    "pod-security-policy/proc-mount",
    "pod-security-policy/read-only-root-filesystem",
    "pod-security-policy/seccomp",
    "pod-security-policy/users",
    "pod-security-policy/volumes",
    "general/allowedrepos",
    "general/containerlimits",
    "general/disallowedtags",
];

fn documents(path: &Path) -> Vec<Value> {
    policy_core::gatekeeper::read_document_files(&[path.display().to_string()])
        .unwrap()
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .map(|d| serde_json::to_value(&d).unwrap())
        .collect()
}

async fn established(api: &FakeApiServer, name: &str) {
    api.wait_for(name, WAIT, |api| {
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

async fn fake_with_crds() -> FakeApiServer {
    let api = FakeApiServer::start().await;
    for crd in documents(Path::new(CRDS)) {
        if crd["kind"] == "CustomResourceDefinition" {
            let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
            api.seed(crd);
            established(&api, &name).await;
        }
    }
    api
}

fn start(setup: &Setup, api: &FakeApiServer, extra: &[&str]) -> Webhook {
    let kubeconfig = api.kubeconfig().display().to_string();
    setup.start_with(
        &[
            "--policy-source",
            "cluster",
            "--kubeconfig",
            &kubeconfig,
            "--pod-name",
            "bench-0",
            "--audit-lease-name",
            "",
        ],
        extra,
    )
}

fn review(object: &Value) -> Vec<u8> {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "b", "operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": object["metadata"]["name"], "namespace": "prod", "userInfo": {"username": "dev"},
        "object": object, "oldObject": null}})
    .to_string()
    .into_bytes()
}

/// `elapsed_ms` of every "cluster policy set rebuilt" log line.
fn rebuild_times(webhook: &Webhook) -> Vec<u64> {
    webhook
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "cluster policy set rebuilt")
        .filter_map(|v| v["elapsed_ms"].as_u64())
        .collect()
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/cluster.sh"]
async fn rebuild_and_apply_to_enforce_with_50_templates_and_500_constraints() {
    let api = fake_with_crds().await;
    for t in 0..50 {
        let kind = format!("K8sBench{t:02}");
        let package = kind.to_lowercase();
        api.seed(json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": package},
            "spec": {"crd": {"spec": {"names": {"kind": kind}, "validation": {"openAPIV3Schema": {
                "type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}}}}}},
                "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": format!(
                    "package {package}\nviolation[{{\"msg\": msg}}] {{\n  required := input.parameters.labels[_]\n  not input.review.object.metadata.labels[required]\n  msg := sprintf(\"missing label %v\", [required])\n}}")}]}
        }));
    }
    let setup = Setup::new("policies");
    let started = Instant::now();
    let webhook = start(&setup, &api, &["--audit-interval", "0"]);
    for t in 0..50 {
        established(&api, &format!("k8sbench{t:02}.constraints.gatekeeper.sh")).await;
    }
    webhook.wait_ready().await;
    let templates_ready = started.elapsed();
    for t in 0..50 {
        for c in 0..10 {
            api.seed(json!({
                "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": format!("K8sBench{t:02}"),
                "metadata": {"name": format!("c{c}")},
                "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]},
                         "parameters": {"labels": ["owner"]}}
            }));
        }
    }
    let deadline = Instant::now() + WAIT;
    while !webhook
        .metrics_text()
        .await
        .lines()
        .any(|l| l == "regard_webhook_policy_constraints 500")
    {
        assert!(Instant::now() < deadline, "500 constraints never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"owner": "me", "probe": "yes"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let body = review(&pod);
    assert!(webhook.admit(&body).await.json()["response"]["allowed"] == json!(true));
    let mut latencies = Vec::new();
    for i in 0..10 {
        let applied = Instant::now();
        api.seed(json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sBench00",
            "metadata": {"name": format!("probe-{i}")},
            "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                               "labelSelector": {"matchLabels": {"probe": "yes"}}},
                     "parameters": {"labels": [format!("x{i}")]}}
        }));
        loop {
            let r = webhook.admit(&body).await.json();
            if r["response"]["status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("[probe-{i}]")))
            {
                break;
            }
            assert!(applied.elapsed() < WAIT, "probe {i} never enforced");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(applied.elapsed());
    }
    let times = rebuild_times(&webhook);
    let at_full: Vec<u64> = times.iter().rev().take(10).copied().collect();
    latencies.sort();
    println!(
        "50 templates compiled, CRDs established, ready: {:.2} s",
        templates_ready.as_secs_f64()
    );
    println!(
        "rebuilds: {} in all; the last 10 (50 templates, 500+ constraints): max {} ms, {:?} ms",
        times.len(),
        at_full.iter().max().unwrap_or(&0),
        at_full
    );
    println!(
        "apply -> enforce (10 constraints, one at a time): median {:.0} ms, max {:.0} ms",
        latencies[5].as_secs_f64() * 1000.0,
        latencies[9].as_secs_f64() * 1000.0
    );
    println!("peak RSS: {} MB", peak_rss_kb(webhook.pid()) / 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/cluster.sh"]
async fn audit_of_10000_pods_against_15_library_templates() {
    let root = std::env::var("REGARD_GATEKEEPER_LIBRARY").unwrap_or_else(|_| LIBRARY.to_owned());
    let library = Path::new(&root).join("library");
    assert!(library.is_dir(), "{} is missing", library.display());
    let api = fake_with_crds().await;
    let mut constraints = Vec::new();
    for t in POD_TEMPLATES {
        let dir = library.join(t);
        api.seed(documents(&dir.join("template.yaml")).remove(0));
        let mut samples: Vec<_> = std::fs::read_dir(dir.join("samples"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        samples.sort();
        constraints.push(documents(&samples[0].join("constraint.yaml")).remove(0));
    }
    let review_doc: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/webhook/reviews/pod-create-allow.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let template_pod = review_doc["request"]["object"].clone();
    for n in 0..20 {
        api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n:02}")}}));
    }
    // REGARD_BENCH_PODS: fewer for a quick run.
    let pods: u64 = std::env::var("REGARD_BENCH_PODS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let seeding = Instant::now();
    for i in 0..pods {
        let mut pod = template_pod.clone();
        pod["metadata"]["name"] = json!(format!("pod-{i:05}"));
        // Half in `default`, where the allowedrepos sample constraint applies.
        let ns = if i % 2 == 0 {
            "default".to_owned()
        } else {
            format!("ns-{:02}", i % 20)
        };
        pod["metadata"]["namespace"] = json!(ns);
        api.seed(pod);
    }
    println!(
        "seeded {pods} Pods in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let setup = Setup::new("policies");
    // Audit as its own Deployment does (no admission work competes), so the audit uses both cores.
    let webhook = start(
        &setup,
        &api,
        &["--audit-interval", "5s", "--operation", "audit,status"],
    );
    for c in &constraints {
        let crd = format!(
            "{}.constraints.gatekeeper.sh",
            c["kind"].as_str().unwrap().to_lowercase()
        );
        established(&api, &crd).await;
        api.seed(c.clone());
    }
    webhook.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(600);
    let report = loop {
        assert!(
            Instant::now() < deadline,
            "no complete audit in time:\n{}",
            webhook.log_text()
        );
        if let Ok((200, body)) = http_get(webhook.metrics, "/v1/audit").await {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["objects"].as_u64().unwrap_or(0) >= pods {
                break v;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "audit: {} objects reviewed, {} violations, {:.2} s; peak RSS of regard-webhook {} MB",
        report["objects"],
        report["totalViolations"],
        report["durationSeconds"].as_f64().unwrap(),
        peak_rss_kb(webhook.pid()) / 1024
    );
    if std::env::var("REGARD_BENCH_DEBUG").is_ok() {
        let mut lists: Vec<String> = api
            .requests()
            .into_iter()
            .filter(|r| r.verb == "list")
            .map(|r| format!("{}?{}", r.path, r.query))
            .collect();
        lists.sort();
        lists.dedup();
        println!("lists: {lists:#?}");
        println!("{}", webhook.log_text());
    }
}
