//! Mutation: 20 mutators of all four kinds applied to a Pod with three
//! containers, plus the JSON patch an admission response carries (the
//! in-process part of a `/v1/mutate` review). Target: < 50 µs.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use policy_core::Value;
use policy_core::mutation::{MutationContext, MutationSystem, patch};
use serde_json::json;

fn mutators() -> Vec<(String, Value)> {
    let apply_to = json!([{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}]);
    let mut docs = Vec::new();
    let mut push = |v: serde_json::Value| {
        docs.push((
            "bench.yaml".to_owned(),
            Value::from_json_str(&v.to_string()).unwrap(),
        ));
    };
    let assign = |name: &str, location: &str, value: serde_json::Value| {
        json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign", "metadata": {"name": name},
               "spec": {"applyTo": apply_to, "location": location,
                        "parameters": {"pathTests": [{"subPath": location, "condition": "MustNotExist"}],
                                       "assign": {"value": value}}}})
    };
    for (field, short) in [
        ("containers", "c"),
        ("initContainers", "i"),
        ("ephemeralContainers", "e"),
    ] {
        let sc = format!("spec.{field}[name: *].securityContext");
        push(assign(
            &format!("{short}-escalation"),
            &format!("{sc}.allowPrivilegeEscalation"),
            json!(false),
        ));
        push(assign(
            &format!("{short}-read-only"),
            &format!("{sc}.readOnlyRootFilesystem"),
            json!(true),
        ));
        push(
            json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "ModifySet", "metadata": {"name": format!("{short}-drop")},
                    "spec": {"applyTo": apply_to, "location": format!("{sc}.capabilities.drop"),
                             "parameters": {"operation": "merge", "values": {"fromList": ["ALL"]}}}}),
        );
    }
    push(assign(
        "pod-non-root",
        "spec.securityContext.runAsNonRoot",
        json!(true),
    ));
    push(assign(
        "pod-seccomp",
        "spec.securityContext.seccompProfile",
        json!({"type": "RuntimeDefault"}),
    ));
    push(assign(
        "pod-fs-group",
        "spec.securityContext.fsGroup",
        json!(2000),
    ));
    push(assign(
        "pod-token",
        "spec.automountServiceAccountToken",
        json!(false),
    ));
    push(assign(
        "pull-policy",
        "spec.containers[name: *].imagePullPolicy",
        json!("IfNotPresent"),
    ));
    for label in ["owner", "team", "cost-center"] {
        push(
            json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "AssignMetadata", "metadata": {"name": label},
                    "spec": {"location": format!("metadata.labels.{label}"), "parameters": {"assign": {"value": "x"}}}}),
        );
    }
    push(
        json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "AssignMetadata", "metadata": {"name": "stamp"},
                "spec": {"location": "metadata.annotations.\"example.com/mutated\"", "parameters": {"assign": {"value": "yes"}}}}),
    );
    push(
        json!({"apiVersion": "mutations.gatekeeper.sh/v1alpha1", "kind": "AssignImage", "metadata": {"name": "mirror"},
                "spec": {"applyTo": apply_to, "location": "spec.containers[name: *].image",
                         "parameters": {"assignDomain": "mirror.example.com"}}}),
    );
    push(
        json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "ModifySet", "metadata": {"name": "prune-net-raw"},
                "spec": {"applyTo": apply_to, "location": "spec.containers[name: *].securityContext.capabilities.add",
                         "parameters": {"operation": "prune", "values": {"fromList": ["NET_RAW"]}}}}),
    );
    docs
}

fn bench(c: &mut Criterion) {
    let (system, errors) = MutationSystem::from_documents(&mutators());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(system.mutator_count(), 20);
    assert_eq!(system.conflicts(), &[]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
        "spec": {"containers": [
            {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
             "securityContext": {"capabilities": {"add": ["NET_RAW"]}}},
            {"name": "sidecar", "image": "envoyproxy/envoy:v1.30"},
            {"name": "log", "image": "busybox:1.36", "resources": {"limits": {"memory": "64Mi"}}}],
            "initContainers": [{"name": "setup", "image": "busybox:1.36"}]}});
    let ctx = MutationContext::default();
    let mut check = pod.clone();
    let outcome = system.mutate(&mut check, &ctx).unwrap();
    assert_eq!(outcome.iterations, 2);
    assert_eq!(outcome.applied.len(), 17);
    c.bench_function("mutation/20_mutators_pod_with_patch", |b| {
        b.iter_batched(
            || pod.clone(),
            |mut obj| {
                system.mutate(&mut obj, &ctx).unwrap();
                black_box(patch::diff(&pod, &obj))
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("mutation/20_mutators_pod_unchanged", |b| {
        b.iter_batched(
            || check.clone(),
            |mut obj| black_box(system.mutate(&mut obj, &ctx).unwrap()),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
