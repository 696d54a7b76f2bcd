//! Cost of the OPA-compatibility compile stage on 500 policy modules: the
//! example policy (Rego v1) and a v0 policy, 250 copies each, every copy in
//! its own package. Measures the stage alone and a whole load (stage plus
//! regorus' compilation) for comparison.
//!
//! Run with `cargo bench -p policy-core --bench rego_stage`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use policy_core::policy::{PolicySet, RegoVersion, opa_compatible_source};

fn copies(file: &str, n: usize) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let src = std::fs::read_to_string(&path).expect("bench policy file");
    (0..n)
        .map(|i| {
            let text = src.replacen("package main", &format!("package p{i}"), 1);
            (format!("p{i}.rego"), text)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let v1 = copies("examples/policy/kubernetes.rego", 250);
    let v0 = copies("tests/conftest/v0/policy/legacy.rego", 250);
    c.bench_function("stage: 500 modules", |b| {
        b.iter(|| {
            for (_, src) in &v1 {
                black_box(opa_compatible_source(src, RegoVersion::V1).ok());
            }
            for (_, src) in &v0 {
                black_box(opa_compatible_source(src, RegoVersion::V0).ok());
            }
        });
    });
    c.bench_function("load: 500 modules (stage + regorus)", |b| {
        b.iter(|| {
            black_box(PolicySet::from_sources(v1.clone(), RegoVersion::V1).ok());
            black_box(PolicySet::from_sources(v0.clone(), RegoVersion::V0).ok());
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
