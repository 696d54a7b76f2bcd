//! The Kubernetes checks: the start-up cost of loading one version's embedded
//! schemas, and validating a Deployment once its kind is compiled.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use policy_core::input::{Format, ParsedFile};
use policy_core::kube::{KubeChecker, KubeFile, KubeOptions, KubeVersion};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0
          ports:
            - containerPort: 8080
          resources:
            limits: {cpu: 500m, memory: 256Mi}
";

fn bench(c: &mut Criterion) {
    let version = KubeVersion::new(1, 37);
    c.bench_function("kube/load_schemas_1.37", |b| {
        b.iter(|| black_box(KubeChecker::new(KubeOptions::new(version)).unwrap()))
    });
    let checker = KubeChecker::new(KubeOptions::new(version)).unwrap();
    let file = ParsedFile::from_text("web.yaml", DEPLOYMENT, Format::Yaml).unwrap();
    let files = [KubeFile::with_text(&file, DEPLOYMENT)];
    // The first call compiles the Deployment schema; the benchmark measures the rest.
    assert_eq!(checker.check(&files)[0].successes, 1);
    c.bench_function("kube/check_deployment", |b| {
        b.iter(|| black_box(checker.check(black_box(&files))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
