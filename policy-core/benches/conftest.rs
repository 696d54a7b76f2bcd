//! Criterion benchmarks for the conftest path: YAML parsing, and evaluating
//! the example policy (9 rules sharing helpers) over many documents.
//!
//! Run with `cargo bench -p policy-core --bench conftest`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use policy_core::conftest::{Checker, NamespaceSelection};
use policy_core::input::{Format, ParsedFile};
use policy_core::policy::{LoadOptions, PolicySet};

/// A Deployment, a Service and a ConfigMap, like the reference corpus.
fn manifest(i: usize) -> String {
    let tag = ["1.25.3", "latest", "2.0"][i % 3];
    let privileged = i.is_multiple_of(20);
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  namespace: ns-{ns}
  labels:
    app: app-{i}
    team: team-{team}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: app-{i}
  template:
    metadata:
      labels:
        app: app-{i}
    spec:
      securityContext:
        runAsNonRoot: true
      containers:
        - name: c0
          image: registry.example.com/team/app-{i}:{tag}
          securityContext:
            privileged: {privileged}
            allowPrivilegeEscalation: false
          resources:
            limits:
              cpu: 500m
              memory: 256Mi
---
apiVersion: v1
kind: Service
metadata:
  name: app-{i}
spec:
  selector:
    app: app-{i}
  ports:
    - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{i}
data:
  key: value
",
        ns = i % 13,
        team = i % 7,
        replicas = 1 + i % 4,
    )
}

fn benches(c: &mut Criterion) {
    let texts: Vec<String> = (0..200).map(manifest).collect();
    let mut group = c.benchmark_group("conftest");
    group.throughput(Throughput::Elements(texts.len() as u64 * 3));
    group.bench_function("parse_yaml_200_files", |b| {
        b.iter(|| {
            for (i, t) in texts.iter().enumerate() {
                let f = ParsedFile::from_text(&format!("f{i}.yaml"), t, Format::Yaml);
                black_box(f.ok());
            }
        });
    });
    let policy_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy");
    let policies = PolicySet::load(&LoadOptions {
        policy_paths: vec![policy_dir],
        ..LoadOptions::default()
    })
    .expect("example policy loads");
    let checker = Checker::new(&policies, &NamespaceSelection::default()).expect("checker");
    let files: Vec<ParsedFile> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| ParsedFile::from_text(&format!("f{i}.yaml"), t, Format::Yaml).expect("parse"))
        .collect();
    group.bench_function("check_600_documents_9_rules", |b| {
        b.iter(|| black_box(checker.check_files(&files).expect("check")));
    });
    group.finish();
}

criterion_group!(conftest, benches);
criterion_main!(conftest);
