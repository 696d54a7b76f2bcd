//! Cost of the OPA-compatibility compile stage on 500 policy modules: the
//! example policy (Rego v1) and a v0 policy, 250 copies each, every copy in
//! its own package. Measures the stage alone, a whole load (stage plus
//! regorus' compilation), regorus alone on the same sources (what a load
//! would cost without regard), and a whole load of 500 files of one
//! package, as a conftest policy directory of `package main` files is.
//!
//! Run with `cargo bench -p policy-core --bench rego_stage`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

// The allocator of the `regard` and `regard-webhook` binaries, so the
// figures are theirs (the stage and regorus allocate on several threads).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
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

/// `n` copies of the example policy in one package, each rule renamed per
/// file so that the files form one valid package.
fn one_package(n: usize) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy/kubernetes.rego");
    let src = std::fs::read_to_string(&path).expect("bench policy file");
    let names = [
        "workload_kinds",
        "pod_spec",
        "containers",
        "name",
        "deny_privileged",
        "deny_run_as_root",
        "deny_host_network",
        "deny_latest_tag",
        "violation_missing_limits",
        "deny_privilege_escalation",
        "warn_no_readiness_probe",
        "warn_missing_team_label",
        "warn_single_replica",
        "exception",
    ];
    (0..n)
        .map(|i| {
            let mut text = src.clone();
            for name in names {
                text = text.replace(name, &format!("{name}_{i}"));
            }
            (format!("m{i}.rego"), text)
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
    // The same load with every step but the stage: what the stage adds is
    // the difference to "load: 500 modules".
    c.bench_function("load without the stage: 500 modules", |b| {
        b.iter(|| {
            black_box(
                PolicySet::from_sources_without_stage(v1.clone(), RegoVersion::V1)
                    .expect("v1 loads"),
            );
            black_box(
                PolicySet::from_sources_without_stage(v0.clone(), RegoVersion::V0)
                    .expect("v0 loads"),
            );
        });
    });
    let main = one_package(500);
    c.bench_function("load: 500 modules of one package", |b| {
        b.iter(|| black_box(PolicySet::from_sources(main.clone(), RegoVersion::V1).ok()));
    });
    // The baseline: regorus parsing the unprepared sources into one engine
    // per version, what a load would cost without regard's stage.
    c.bench_function("regorus alone: 500 modules", |b| {
        b.iter(|| {
            for (sources, v0) in [(&v1, false), (&v0, true)] {
                let mut engine = regorus::Engine::new();
                engine.set_rego_v0(v0);
                for (path, src) in sources {
                    black_box(engine.add_policy(path.clone(), src.clone()).ok());
                }
                black_box(engine);
            }
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
