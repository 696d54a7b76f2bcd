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
    let options = ReviewOptions::default();
    c.bench_function("review_object: Pod, fixture constraints", |b| {
        b.iter(|| bundle.review_object(black_box(&pod), &options).unwrap())
    });
    let webhook = ReviewOptions {
        enforcement_point: WEBHOOK_ENFORCEMENT_POINT.to_owned(),
        ..ReviewOptions::default()
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

criterion_group!(benches, bench);
criterion_main!(benches);
