//! Tests of the fake API server (`tests/common/apiserver`) through kube-rs: what the cluster
//! policy source, the certificate rotation and leader election rely on.

mod common;

use std::time::{Duration, Instant};

use common::apiserver::{FakeApiServer, Options};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::{Discovery, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn configmap(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}
    }))
    .unwrap()
}

/// The `Status` of a failed call: (code, reason, message).
fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A CRD `widgets.example.com` serving v1 (storage) and v1beta1, with a status subresource.
fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "categories": ["gadgets"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                 "subresources": {"status": {}}},
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                 "subresources": {"status": {}}}
            ]
        }
    }))
    .unwrap()
}

fn widgets(client: &kube::Client, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.com", version, "Widget");
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    )
}

async fn establish_widgets(api: &FakeApiServer) {
    let crds: Api<CustomResourceDefinition> = Api::all(api.client());
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let established = await_condition(
        crds,
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(WAIT, established)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn crud_conflicts_and_patches_behave_as_the_real_server() {
    let api = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let created = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(
        api_error(
            cms.create(&PostParams::default(), &configmap("a", json!({})))
                .await
        ),
        (
            409,
            "AlreadyExists".into(),
            "configmaps \"a\" already exists".into()
        )
    );

    let mut changed = created.clone();
    changed.data = Some([("k".to_owned(), "w".to_owned())].into());
    let updated = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    // `changed` still carries the first resourceVersion.
    assert_eq!(
        api_error(cms.replace("a", &PostParams::default(), &changed).await),
        (
            409,
            "Conflict".into(),
            "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; \
             please apply your changes to the latest version and try again"
                .into()
        )
    );

    let merged = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"m": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&merged.data).unwrap(),
        json!({"k": "w", "m": "1"})
    );
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/data/k"}])).unwrap();
    let patched = cms
        .patch("a", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&patched.data).unwrap(),
        json!({"m": "1"})
    );

    // A no-op write keeps the resourceVersion.
    let same = cms
        .replace("a", &PostParams::default(), &patched)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        patched.metadata.resource_version
    );

    let generated = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap(),
        )
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        api_error(cms.get("a").await),
        (404, "NotFound".into(), "configmaps \"a\" not found".into())
    );
    let missing_ns: Api<ConfigMap> = Api::namespaced(api.client(), "nowhere");
    assert_eq!(
        api_error(
            missing_ns
                .create(&PostParams::default(), &configmap("b", json!({})))
                .await
        ),
        (
            404,
            "NotFound".into(),
            "namespaces \"nowhere\" not found".into()
        )
    );
}

#[tokio::test]
async fn a_stale_lease_update_conflicts() {
    let api = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(api.client(), "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "regard-audit"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut first = leases.get("regard-audit").await.unwrap();
    let mut second = first.clone();
    first.spec.as_mut().unwrap().holder_identity = Some("b".into());
    second.spec.as_mut().unwrap().holder_identity = Some("c".into());
    leases
        .replace("regard-audit", &PostParams::default(), &first)
        .await
        .unwrap();
    let (code, reason, message) = api_error(
        leases
            .replace("regard-audit", &PostParams::default(), &second)
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"regard-audit\": the object \
         has been modified; please apply your changes to the latest version and try again"
    );
    let stored = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-system"),
            "regard-audit",
        )
        .unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], json!("b"));
}

#[tokio::test]
async fn crds_become_established_and_change_discovery() {
    let api = FakeApiServer::start_with(Options {
        crd_establish_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let client = api.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let started = Instant::now();
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    // Not served until Established.
    assert_eq!(
        api_error(widgets(&client, "v1").list(&ListParams::default()).await).0,
        404
    );
    let crd = crds.get("widgets.example.com").await.unwrap();
    assert!(
        crd.status
            .unwrap()
            .conditions
            .unwrap_or_default()
            .is_empty()
    );
    let established = await_condition(
        crds.clone(),
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(WAIT, established)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let crd = crds.get("widgets.example.com").await.unwrap();
    let status = crd.status.unwrap();
    let conditions: Vec<(String, String)> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    assert_eq!(
        conditions,
        [
            ("NamesAccepted".into(), "True".into()),
            ("Established".into(), "True".into())
        ]
    );
    assert_eq!(status.stored_versions, Some(vec!["v1".to_owned()]));

    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let group = discovery.get("example.com").expect("group example.com");
        let versions: Vec<&str> = group.versions().collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        let (resource, caps) = group.recommended_kind("Widget").unwrap();
        assert_eq!(
            (resource.version.as_str(), resource.plural.as_str()),
            ("v1", "widgets")
        );
        assert_eq!(caps.scope, Scope::Cluster);
        assert_eq!(caps.subresources.len(), 1, "{caps:?}");
        let pods = discovery.get("").unwrap().recommended_kind("Pod").unwrap();
        assert_eq!(pods.1.scope, Scope::Namespaced);
    }

    // Objects are readable at every served version; deleting the CRD takes them away.
    widgets(&client, "v1")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let old = widgets(&client, "v1beta1").get("w").await.unwrap();
    assert_eq!(old.types.unwrap().api_version, "example.com/v1beta1");
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(widgets(&client, "v1").get("w").await).0, 404);
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!discovery.has_group("example.com"));
    assert_eq!(api.list("v1", "Namespace", None).len(), 3);
}

#[tokio::test]
async fn the_status_subresource_and_generation() {
    let api = FakeApiServer::start().await;
    establish_widgets(&api).await;
    let client = api.client();
    let widgets = widgets(&client, "v1");
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1}, "status": {"ignored": true}
    }))
    .unwrap();
    let created = widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.data.get("status"), None);

    let status = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"seen": 1}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"], json!({"seen": 1}));
    assert_eq!(status.data["spec"], json!({"size": 1}));
    assert_eq!(status.metadata.generation, Some(1));

    let mut changed = status.clone();
    changed.data["status"] = json!({"seen": 2});
    let same_spec = widgets
        .replace("w", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(same_spec.data["status"], json!({"seen": 1}));
    assert_eq!(same_spec.metadata.generation, Some(1));
    assert_eq!(
        same_spec.metadata.resource_version,
        status.metadata.resource_version
    );

    let respec = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(respec.metadata.generation, Some(2));
    assert_eq!(respec.data["status"], json!({"seen": 1}));
    let mut stale = status.clone();
    stale.data["status"] = json!({"seen": 3});
    assert_eq!(
        api_error(
            widgets
                .replace_status("w", &PostParams::default(), &stale)
                .await
        )
        .0,
        409
    );
    // ConfigMaps have no status subresource.
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &configmap("c", json!({})))
        .await
        .unwrap();
    assert_eq!(
        api_error(
            cms.patch_status("c", &PatchParams::default(), &Patch::Merge(json!({})))
                .await
        )
        .0,
        404
    );
}

#[tokio::test]
async fn lists_paginate_and_select() {
    let api = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::all(api.client());
    for (ns, name, tier) in [
        ("default", "c1", "web"),
        ("default", "c2", "db"),
        ("kube-system", "c3", "web"),
        ("default", "c4", "web"),
        ("kube-public", "c5", "db"),
    ] {
        api.seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": ns, "labels": {"tier": tier}}}));
    }
    let mut names = Vec::new();
    let mut pages = 0;
    let mut params = ListParams::default().limit(2);
    loop {
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|c| {
            format!(
                "{}/{}",
                c.metadata.namespace.as_deref().unwrap(),
                c.metadata.name.as_deref().unwrap()
            )
        }));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "default/c1",
            "default/c2",
            "default/c4",
            "kube-public/c5",
            "kube-system/c3"
        ]
    );
    let names_of = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect()
    };
    assert_eq!(
        names_of(
            cms.list(&ListParams::default().labels("tier=web"))
                .await
                .unwrap()
        ),
        ["c1", "c4", "c3"]
    );
    assert_eq!(
        names_of(
            cms.list(&ListParams::default().labels("tier notin (web),tier"))
                .await
                .unwrap()
        ),
        ["c2", "c5"]
    );
    assert_eq!(
        names_of(
            cms.list(&ListParams::default().fields("metadata.name=c3"))
                .await
                .unwrap()
        ),
        ["c3"]
    );
    let default: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    assert_eq!(
        names_of(default.list(&ListParams::default()).await.unwrap()),
        ["c1", "c2", "c4"]
    );
    assert_eq!(api.count("list", "/api/v1/configmaps"), 6);
}

#[tokio::test]
async fn watches_resume_from_a_resource_version_and_get_410_when_compacted() {
    let api = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let start = api.resource_version().to_string();
    cms.create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("b", json!({"x": "1"})))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": null}}})),
    )
    .await
    .unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();

    let events = |params: WatchParams, from: String| {
        let cms = cms.clone();
        async move {
            let stream = cms.watch(&params.timeout(1), &from).await.unwrap();
            stream
                .map(|e| match e.unwrap() {
                    WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.unwrap()),
                    WatchEvent::Modified(c) => format!("MODIFIED {}", c.metadata.name.unwrap()),
                    WatchEvent::Deleted(c) => format!("DELETED {}", c.metadata.name.unwrap()),
                    WatchEvent::Bookmark(_) => "BOOKMARK".into(),
                    WatchEvent::Error(s) => format!("ERROR {} {} {}", s.code, s.reason, s.message),
                })
                // Bookmarks (every second) are tested on their own.
                .filter(|line| std::future::ready(line != "BOOKMARK"))
                .collect::<Vec<String>>()
                .await
        }
    };
    assert_eq!(
        events(WatchParams::default(), start.clone()).await,
        [
            "ADDED a",
            "ADDED b",
            "MODIFIED a",
            "MODIFIED b",
            "DELETED b"
        ]
    );
    // A label selector sees `b` leave the selection as a deletion.
    assert_eq!(
        events(WatchParams::default().labels("x=1"), start.clone()).await,
        ["ADDED b", "DELETED b"]
    );
    // Without a resourceVersion: the current objects as ADDED.
    assert_eq!(
        events(WatchParams::default(), "0".into()).await,
        ["ADDED a"]
    );

    api.compact();
    let now = api.resource_version();
    assert_eq!(
        events(WatchParams::default(), start.clone()).await,
        [format!(
            "ERROR 410 Expired too old resource version: {start} ({now})"
        )]
    );
    assert_eq!(
        events(WatchParams::default(), now.to_string()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn bookmarks_carry_the_latest_resource_version() {
    let api = FakeApiServer::start_with(Options {
        bookmark_interval: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let from = api.resource_version().to_string();
    // A change elsewhere still moves the bookmark on.
    api.seed(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}));
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &from)
        .await
        .unwrap()
        .boxed();
    let event = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata.resource_version,
                api.resource_version().to_string()
            )
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn the_kube_runtime_watcher_relists_after_410() {
    let api = FakeApiServer::start_with(Options {
        max_watch: Some(Duration::from_millis(500)),
        bookmark_interval: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    cms.create(&PostParams::default(), &configmap("before", json!({})))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(cms.clone(), watcher::Config::default());
    tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(event) = stream.next().await {
            let line = match event {
                Ok(watcher::Event::Init) => "Init".to_owned(),
                Ok(watcher::Event::InitApply(c)) => {
                    format!("InitApply {}", c.metadata.name.unwrap())
                }
                Ok(watcher::Event::InitDone) => "InitDone".to_owned(),
                Ok(watcher::Event::Apply(c)) => format!("Apply {}", c.metadata.name.unwrap()),
                Ok(watcher::Event::Delete(c)) => format!("Delete {}", c.metadata.name.unwrap()),
                Err(e) => format!("Error {e}"),
            };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        [next().await, next().await, next().await],
        ["Init", "InitApply before", "InitDone"]
    );
    cms.create(&PostParams::default(), &configmap("seen", json!({})))
        .await
        .unwrap();
    assert_eq!(next().await, "Apply seen");

    // Keep the watcher from reconnecting while a change it misses is compacted away.
    let path = "/api/v1/namespaces/default/configmaps";
    api.fail_next("watch", path, 1000, 500);
    api.wait_for("a refused watch", WAIT, |api| {
        (api.open_watches(path) == 0).then_some(())
    })
    .await;
    cms.create(&PostParams::default(), &configmap("missed", json!({})))
        .await
        .unwrap();
    api.compact();
    api.clear_failures();
    let mut events = Vec::new();
    while !events.iter().any(|e| e == "InitDone") {
        events.push(next().await);
    }
    events.retain(|e| !e.starts_with("Error"));
    assert_eq!(
        events,
        [
            "Init",
            "InitApply before",
            "InitApply missed",
            "InitApply seen",
            "InitDone"
        ]
    );
    let gone = api
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.path == path)
        .count();
    assert_eq!(gone, 2, "one list at start, one relist after 410");
}

#[tokio::test]
async fn injected_failures_and_request_counts() {
    let api = FakeApiServer::start().await;
    api.seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}));
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let path = "/api/v1/namespaces/default/configmaps/c";
    api.fail_next("patch", path, 2, 500);
    let patch = Patch::Merge(json!({"data": {"a": "b"}}));
    assert_eq!(
        api_error(cms.patch("c", &PatchParams::default(), &patch).await),
        (
            500,
            "InternalError".into(),
            format!("injected failure (500 {path})")
        )
    );
    assert_eq!(
        api_error(cms.patch("c", &PatchParams::default(), &patch).await).0,
        500
    );
    cms.patch("c", &PatchParams::default(), &patch)
        .await
        .unwrap();
    cms.get("c").await.unwrap();
    assert_eq!(api.count("patch", path), 3);
    assert_eq!(api.count("get", path), 1);
    assert_eq!(api.count("*", path), 4);
}

#[tokio::test]
async fn finalizers_delay_deletion_until_removed() {
    let api = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let mut cm = configmap("f", json!({}));
    cm.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    let marked = cms.get("f").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("f").await).0, 404);
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let api = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let params = PatchParams::apply("regard").force();
    let apply = |data: Value| {
        Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": data}),
        )
    };
    cms.patch("s", &params, &apply(json!({"a": "1"})))
        .await
        .unwrap();
    let merged = cms
        .patch("s", &params, &apply(json!({"b": "2"})))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(merged.data).unwrap(),
        json!({"a": "1", "b": "2"})
    );
}

#[tokio::test]
async fn crd_schemas_are_checked_and_custom_resources_pruned_and_validated() {
    let api = FakeApiServer::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(api.client());
    let mut crd = serde_json::to_value(widget_crd()).unwrap();
    // Not structural: a property without a type.
    crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"] = json!({
        "type": "object",
        "properties": {"spec": {"properties": {"size": {"type": "integer"}}}}
    });
    let (code, reason, message) = api_error(
        crds.create(
            &PostParams::default(),
            &serde_json::from_value(crd.clone()).unwrap(),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        message,
        "CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid: \
         spec.versions[1].schema.openAPIV3Schema.properties[spec].type: Required value: \
         must not be empty for specified object fields"
    );

    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    });
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = schema.clone();
    crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"] = schema;
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();
    let established = await_condition(
        crds,
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(WAIT, established)
        .await
        .unwrap()
        .unwrap();

    let client = api.client();
    let widgets = widgets(&client, "v1");
    let widget = |spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": spec, "extra": 1
        }))
        .unwrap()
    };
    let created = widgets
        .create(
            &PostParams::default(),
            &widget(
                json!({"size": 2, "unknown": true, "labels": {"a": "b"}, "free": {"any": [1]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        created.data,
        json!({"spec": {"size": 2, "labels": {"a": "b"}, "free": {"any": [1]}}})
    );
    let (code, _, message) = api_error(
        widgets
            .replace(
                "w",
                &PostParams::default(),
                &widget(json!({"size": "big", "mode": "warp"})),
            )
            .await,
    );
    assert_eq!(code, 422);
    assert_eq!(
        message,
        // Errors in field-name order.
        "Widget.example.com \"w\" is invalid: [spec.mode: Unsupported value: \"warp\": \
         supported values: \"fast\", \"slow\", spec.size: Invalid value: \"big\": spec.size in \
         body must be of type integer: \"string\"]"
    );
    assert_eq!(
        api_error(
            widgets
                .replace("w", &PostParams::default(), &widget(json!({})))
                .await
        )
        .2,
        "Widget.example.com \"w\" is invalid: spec.size: Required value"
    );
}

/// kubectl, a second client with its own expectations of discovery, lists and apply.
fn kubectl(api: &FakeApiServer, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(api.kubeconfig())
        .args(args)
        .env("HOME", api.kubeconfig().parent().unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

// Multi-threaded: kubectl runs as a blocking child process while the fake serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_applies_and_deletes() {
    let installed = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        println!("notice: kubectl is not installed; skipping the kubectl check");
        return;
    }
    let api = FakeApiServer::start().await;
    let run = |args: &'static [&'static str], stdin: Option<String>| {
        let api = &api;
        async move { tokio::task::block_in_place(|| kubectl(api, args, stdin.as_deref())) }
    };
    let (ok, out) = run(&["get", "namespaces", "-o", "name"], None).await;
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "namespace/default\nnamespace/kube-public\nnamespace/kube-system\n"
    );
    let crd = serde_json::to_string(&widget_crd()).unwrap();
    let (ok, out) = run(&["apply", "--validate=false", "-f", "-"], Some(crd)).await;
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n"
    );
    let (ok, out) = run(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
        None,
    )
    .await;
    assert!(ok, "{out}");
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    let (ok, out) = run(
        &["apply", "--validate=false", "-f", "-"],
        Some(widget.to_string()),
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "widget.example.com/w created\n");
    let (ok, out) = run(
        &["get", "widgets", "-o", "jsonpath={.items[*].metadata.name}"],
        None,
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "w");
    // Re-applying a change patches it.
    let changed = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}});
    let (ok, out) = run(
        &["apply", "--validate=false", "-f", "-"],
        Some(changed.to_string()),
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "widget.example.com/w configured\n");
    assert_eq!(
        api.get("example.com/v1", "Widget", None, "w").unwrap()["spec"]["size"],
        json!(2)
    );
    let (ok, out) = run(&["delete", "widget", "w"], None).await;
    assert!(ok, "{out}");
    assert_eq!(out, "widget.example.com \"w\" deleted\n");
}

#[tokio::test]
async fn the_watcher_s_streaming_list_ends_with_the_initial_events_bookmark() {
    let api = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    cms.create(&PostParams::default(), &configmap("first", json!({})))
        .await
        .unwrap();
    let mut stream = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut next = async || match tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        watcher::Event::Init => "Init".to_owned(),
        watcher::Event::InitApply(c) => format!("InitApply {}", c.metadata.name.unwrap()),
        watcher::Event::InitDone => "InitDone".to_owned(),
        watcher::Event::Apply(c) => format!("Apply {}", c.metadata.name.unwrap()),
        watcher::Event::Delete(c) => format!("Delete {}", c.metadata.name.unwrap()),
    };
    assert_eq!(
        [next().await, next().await, next().await],
        ["Init", "InitApply first", "InitDone"]
    );
    cms.create(&PostParams::default(), &configmap("second", json!({})))
        .await
        .unwrap();
    assert_eq!(next().await, "Apply second");
    assert_eq!(
        api.count("list", "/api/v1/namespaces/default/configmaps"),
        0
    );
    let watch = api
        .requests()
        .into_iter()
        .find(|r| r.verb == "watch")
        .unwrap();
    assert!(
        watch.query.contains("sendInitialEvents=true"),
        "{}",
        watch.query
    );
}
