//! Per-review latency of the Gatekeeper framework on the repository's
//! fixtures (`tests/gk`): a plain object as gator reviews it, and an
//! admission request as the webhook does.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use policy_core::Value;
use policy_core::gatekeeper::{
    Evaluator, PolicyBundle, ReviewOptions, WEBHOOK_ENFORCEMENT_POINT, read_document_files,
};

fn fixtures() -> (PolicyBundle, Vec<Value>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/gk");
    let paths = vec![
        dir.join("basic").display().to_string(),
        dir.join("compat").display().to_string(),
    ];
    let docs: Vec<(String, Value)> = read_document_files(&paths)
        .unwrap()
        .into_iter()
        .flat_map(|(f, ds)| ds.into_iter().map(move |d| (f.clone(), d)))
        .collect();
    let objects = docs.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>();
    let bundle = PolicyBundle::from_documents(docs)
        .unwrap()
        .with_inventory(&objects)
        .unwrap();
    (bundle, objects)
}

fn bench(c: &mut Criterion) {
    let (bundle, objects) = fixtures();
    let pod = objects
        .iter()
        .find(|o| o["kind"] == Value::from("Pod") && o["metadata"]["name"] == Value::from("mixed"))
        .unwrap()
        .clone();
    let request = {
        let mut r = Value::new_object();
        let m = r.as_object_mut().unwrap();
        m.insert(Value::from("uid"), Value::from("1"));
        m.insert(Value::from("operation"), Value::from("CREATE"));
        m.insert(Value::from("namespace"), Value::from("default"));
        m.insert(Value::from("object"), pod.clone());
        r
    };
    // The interpreter, as these two benchmarks measured before the RVM
    // became the default.
    let options = ReviewOptions {
        evaluator: Evaluator::Interpreter,
        ..ReviewOptions::default()
    };
    c.bench_function("review_object: Pod, fixture constraints", |b| {
        b.iter(|| bundle.review_object(black_box(&pod), &options).unwrap())
    });
    let webhook = ReviewOptions {
        enforcement_point: WEBHOOK_ENFORCEMENT_POINT.to_owned(),
        ..options.clone()
    };
    c.bench_function("review_request: Pod CREATE", |b| {
        b.iter(|| {
            bundle
                .review_request(black_box(&request), &webhook)
                .unwrap()
        })
    });
    let rvm = ReviewOptions {
        evaluator: Evaluator::Rvm,
        ..webhook.clone()
    };
    c.bench_function("review_request: Pod CREATE, --evaluator rvm", |b| {
        b.iter(|| bundle.review_request(black_box(&request), &rvm).unwrap())
    });
    c.bench_function("review_objects: all fixture objects (rayon)", |b| {
        b.iter(|| bundle.review_objects(black_box(&objects), &options))
    });
}

/// `n` Deployments (with a PodDisruptionBudget for every other one) in 50 namespaces.
fn cluster_objects(n: usize) -> Vec<Value> {
    let mut objects = Vec::with_capacity(n + n / 2);
    for i in 0..n {
        let ns = format!("team-{}", i % 50);
        let json = format!(
            r#"{{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {{"name": "app-{i}", "namespace": "{ns}", "labels": {{"app": "app-{i}"}}}},
                "spec": {{"replicas": 3, "selector": {{"matchLabels": {{"app": "app-{i}"}}}},
                         "template": {{"metadata": {{"labels": {{"app": "app-{i}"}}}},
                                      "spec": {{"containers": [{{"name": "c", "image": "registry.example.com/app:{i}"}}]}}}}}}}}"#
        );
        objects.push(Value::from_json_str(&json).unwrap());
        if i % 2 == 0 {
            let pdb = format!(
                r#"{{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                    "metadata": {{"name": "app-{i}", "namespace": "{ns}"}},
                    "spec": {{"minAvailable": 1, "selector": {{"matchLabels": {{"app": "app-{i}"}}}}}}}}"#
            );
            objects.push(Value::from_json_str(&pdb).unwrap());
        }
    }
    objects
}

/// What `regard-webhook --sync-data` does after a change: rebuild the policy set with the
/// synced objects as `data.inventory`; and a review against that much data.
fn synced_data(c: &mut Criterion) {
    let docs = policy_core::library::documents(&["baseline", "best-practices"]).unwrap();
    let bundle = PolicyBundle::from_documents(docs).unwrap();
    let objects = cluster_objects(4_000);
    let mut group = c.benchmark_group("synced data");
    group.sample_size(20);
    group.bench_function("with_inventory: built-in bundles, 6,000 objects", |b| {
        b.iter(|| bundle.with_inventory(black_box(&objects)).unwrap())
    });
    let synced = bundle.with_inventory(&objects).unwrap();
    let request = {
        let mut r = Value::new_object();
        let m = r.as_object_mut().unwrap();
        m.insert(Value::from("uid"), Value::from("1"));
        m.insert(Value::from("operation"), Value::from("CREATE"));
        m.insert(Value::from("namespace"), Value::from("team-1"));
        m.insert(Value::from("object"), objects[2].clone());
        r
    };
    let webhook = ReviewOptions {
        enforcement_point: WEBHOOK_ENFORCEMENT_POINT.to_owned(),
        evaluator: Evaluator::Interpreter,
        ..ReviewOptions::default()
    };
    let outcome = synced.review_request(&request, &webhook).unwrap();
    assert!(
        outcome
            .violations
            .iter()
            .any(|v| v.msg.contains("PodDisruptionBudget")),
        "the Deployment without a PodDisruptionBudget is reported"
    );
    group.bench_function(
        "review_request: Deployment CREATE, built-in bundles, 6,000 synced objects",
        |b| {
            b.iter(|| {
                synced
                    .review_request(black_box(&request), &webhook)
                    .unwrap()
            })
        },
    );
    let audit = ReviewOptions {
        enforcement_point: policy_core::gatekeeper::AUDIT_ENFORCEMENT_POINT.to_owned(),
        ..ReviewOptions::default()
    };
    group.sample_size(10);
    group.bench_function(
        "audit: every one of the 6,000 synced objects, one thread",
        |b| {
            b.iter(|| {
                for o in &objects {
                    black_box(synced.review_object_in(o, None, &audit).unwrap());
                }
            })
        },
    );
    let empty = bundle.with_inventory(&[]).unwrap();
    group.bench_function(
        "review_request: Deployment CREATE, built-in bundles, no synced objects",
        |b| b.iter(|| empty.review_request(black_box(&request), &webhook).unwrap()),
    );
    group.finish();
}

/// The 16 gatekeeper-library templates that carry K8sNativeValidation code
/// with the first sample constraint of each, per review on CEL (the default)
/// and on their Rego, for each library sample object of those templates.
fn cel_vs_rego(c: &mut Criterion) {
    let library =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/gatekeeper-library/library");
    if !library.is_dir() {
        eprintln!(
            "{} is absent; skipping the CEL benchmark",
            library.display()
        );
        return;
    }
    let mut docs = Vec::new();
    let mut objects = Vec::new();
    for entry in walkdir(&library) {
        if !entry.ends_with("template.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        if !text.contains("K8sNativeValidation") {
            continue;
        }
        let dir = entry.parent().unwrap();
        let files = read_document_files(&[dir.display().to_string()]).unwrap();
        let mut constraint_taken = false;
        for (file, ds) in files {
            for d in ds {
                let is_template = file.ends_with("template.yaml");
                let is_constraint = file.ends_with("constraint.yaml");
                if is_template || (is_constraint && !constraint_taken) {
                    constraint_taken |= is_constraint;
                    docs.push((file.clone(), d));
                } else if !is_constraint
                    && !file.ends_with("suite.yaml")
                    && d["kind"] != Value::from("AdmissionReview")
                    && file.contains("/samples/")
                {
                    objects.push(d);
                }
            }
        }
    }
    let bundle = PolicyBundle::from_documents(docs).unwrap();
    assert_eq!(bundle.templates().filter(|t| t.has_cel).count(), 16);
    let cel = ReviewOptions::default();
    let rego = ReviewOptions {
        disable_k8s_native_validation: true,
        ..ReviewOptions::default()
    };
    let mut group = c.benchmark_group("library CEL templates");
    let n = objects.len();
    group.bench_function(
        format!("CEL: {n} sample objects, 16 templates, one thread"),
        |b| {
            b.iter(|| {
                for o in &objects {
                    black_box(bundle.review_object(o, &cel).unwrap());
                }
            })
        },
    );
    group.bench_function(
        format!("Rego: {n} sample objects, 16 templates, one thread"),
        |b| {
            b.iter(|| {
                for o in &objects {
                    black_box(bundle.review_object(o, &rego).unwrap());
                }
            })
        },
    );
    group.finish();
}

/// Every file under `dir`, sorted.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

criterion_group!(benches, bench, synced_data, cel_vs_rego);
criterion_main!(benches);
