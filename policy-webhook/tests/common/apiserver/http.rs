//! The fake API server's HTTP side: routing of `/api`, `/apis` and resource paths, discovery
//! documents (plain and aggregated v2), watch streams, request recording and failure injection.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::select::{FieldSelector, LabelSelector};
use super::store::{
    ApiError, CRD_GROUP, CRDS, EventType, ListOptions, Notice, PatchKind, ResourceDef, render,
    version_priority,
};
use super::{RecordedRequest, Shared};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(err: &ApiError) -> Response {
    json_response(err.code, &err.status())
}

fn not_served() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The Kubernetes verb of a request.
fn verb(method: &Method, is_object: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET if watch => "watch",
        Method::GET if is_object => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if is_object => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    }
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let query = parse_query(uri.query().unwrap_or(""));
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let watch = matches!(param("watch").as_deref(), Some("true" | "1"));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match segments.as_slice() {
        ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
        _ => &[],
    };
    // `namespaces/NS/PLURAL` is a collection; `PLURAL/NAME/status` an object.
    let is_object = match rest {
        [] | [_] => false,
        ["namespaces", _, third] => matches!(*third, "status" | "finalize"),
        _ => true,
    };
    let verb = verb(&method, is_object, watch);
    shared.record(RecordedRequest {
        verb: verb.to_owned(),
        path: path.clone(),
        query: uri.query().unwrap_or("").to_owned(),
    });
    if let Some(err) = shared.injected_failure(verb, &path) {
        return error_response(&err);
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    match segments.as_slice() {
        ["version"] => json_response(
            200,
            &json!({
                "major": "1", "minor": "36", "gitVersion": "v1.36.0-regard-fake",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc",
                "platform": "linux/amd64"
            }),
        ),
        ["healthz" | "readyz" | "livez"] => (StatusCode::OK, "ok").into_response(),
        ["api"] if aggregated => aggregated_response(&shared, true),
        ["apis"] if aggregated => aggregated_response(&shared, false),
        ["api"] => json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.address}
            ]}),
        ),
        ["apis"] => json_response(200, &group_list(&shared)),
        ["api", version] => resource_list(&shared, "", version),
        ["apis", group] => match group_list(&shared)["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["name"] == json!(group)))
        {
            Some(g) => {
                let mut g = g.clone();
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                json_response(200, &g)
            }
            None => error_response(&not_served()),
        },
        ["apis", group, version] => resource_list(&shared, group, version),
        ["api", version, rest @ ..] => {
            resource(&shared, &method, &headers, "", version, rest, &query, body).await
        }
        ["apis", group, version, rest @ ..] => {
            resource(
                &shared, &method, &headers, group, version, rest, &query, body,
            )
            .await
        }
        _ => error_response(&not_served()),
    }
}

/// Groups other than core, each version sorted by Kubernetes version priority.
fn group_versions(shared: &Shared) -> Vec<(String, Vec<String>)> {
    let store = shared.store.lock().unwrap();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for def in store.defs() {
        if def.group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == def.group) {
            Some((_, versions)) => {
                if !versions.contains(&def.version) {
                    versions.push(def.version.clone());
                }
            }
            None => groups.push((def.group.clone(), vec![def.version.clone()])),
        }
    }
    for (_, versions) in &mut groups {
        versions.sort_by_key(|v| version_priority(v));
    }
    groups
}

fn group_list(shared: &Shared) -> Value {
    let groups: Vec<Value> = group_versions(shared)
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_list(shared: &Shared, group: &str, version: &str) -> Response {
    let defs: Vec<ResourceDef> = shared
        .store
        .lock()
        .unwrap()
        .defs()
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .cloned()
        .collect();
    if defs.is_empty() {
        return error_response(&not_served());
    }
    let mut resources = Vec::new();
    for d in &defs {
        let mut r = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced,
            "kind": d.kind, "verbs": VERBS,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        if d.status {
            resources.push(json!({
                "name": format!("{}/status", d.plural), "singularName": "",
                "namespaced": d.namespaced, "kind": d.kind, "verbs": ["get", "patch", "update"]
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// `/api` or `/apis` as aggregated discovery (apidiscovery.k8s.io/v2).
fn aggregated_response(shared: &Shared, core: bool) -> Response {
    let defs: Vec<ResourceDef> = shared.store.lock().unwrap().defs().to_vec();
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_owned()])]
    } else {
        group_versions(shared)
    };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = defs
                        .iter()
                        .filter(|d| d.group == group && d.version == *v)
                        .map(|d| {
                            let kind =
                                json!({"group": d.group, "version": d.version, "kind": d.kind});
                            let mut r = json!({
                                "resource": d.plural, "responseKind": kind,
                                "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": d.singular, "verbs": VERBS,
                            });
                            if !d.short_names.is_empty() {
                                r["shortNames"] = json!(d.short_names);
                            }
                            if !d.categories.is_empty() {
                                r["categories"] = json!(d.categories);
                            }
                            if d.status {
                                r["subresources"] = json!([{
                                    "subresource": "status", "responseKind": kind,
                                    "verbs": ["get", "patch", "update"]
                                }]);
                            }
                            r
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    let body = json!({
        "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {}, "items": items
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, AGGREGATED)],
        body.to_string(),
    )
        .into_response()
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type JSON): {e}"
        ))
    })
}

fn list_options(query: &[(String, String)]) -> Result<ListOptions, ApiError> {
    let mut opts = ListOptions::default();
    for (k, v) in query {
        match k.as_str() {
            "labelSelector" if !v.is_empty() => {
                opts.labels = Some(LabelSelector::parse(v).map_err(ApiError::bad_request)?)
            }
            "fieldSelector" if !v.is_empty() => {
                opts.fields = Some(FieldSelector::parse(v).map_err(ApiError::bad_request)?)
            }
            "limit" => opts.limit = v.parse().ok(),
            "continue" if !v.is_empty() => opts.continue_token = Some(v.clone()),
            _ => {}
        }
    }
    Ok(opts)
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    shared: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    group: &str,
    version: &str,
    rest: &[&str],
    query: &[(String, String)],
    body: Bytes,
) -> Response {
    let lookup = |plural: &str| {
        shared
            .store
            .lock()
            .unwrap()
            .def(group, version, plural)
            .cloned()
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if lookup(plural).is_some_and(|d| d.namespaced) => {
            (Some((*ns).to_owned()), {
                let mut v = vec![*plural];
                v.extend_from_slice(tail);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let Some(def) = rest.first().and_then(|p| lookup(p)) else {
        return error_response(&not_served());
    };
    let name = rest.get(1).copied();
    let sub = rest.get(2).copied();
    if rest.len() > 3 || sub.is_some_and(|s| s != "status") {
        return error_response(&not_served());
    }
    if def.namespaced && namespace.is_none() && name.is_some() {
        return error_response(&not_served());
    }
    let status = sub.is_some();
    let dry_run = query.iter().any(|(k, v)| k == "dryRun" && v == "All");
    let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let ns = namespace.clone().unwrap_or_default();
    let result = match (method.clone(), name) {
        (Method::GET, None) if matches!(param("watch"), Some("true" | "1")) => {
            return match list_options(query) {
                Ok(opts) => watch(shared, def, namespace, opts, query),
                Err(e) => error_response(&e),
            };
        }
        (Method::GET, None) => list_options(query).and_then(|opts| {
            shared
                .store
                .lock()
                .unwrap()
                .list(&def, namespace.as_deref(), &opts)
        }),
        (Method::POST, None) => parse_body(&body).and_then(|obj| {
            let created = shared.store.lock().unwrap().create(&def, &ns, obj, dry_run);
            created.inspect(|obj| {
                if !dry_run {
                    shared.after_create(&def, obj);
                }
            })
        }),
        (Method::DELETE, None) => list_options(query).and_then(|opts| {
            shared
                .store
                .lock()
                .unwrap()
                .delete_collection(&def, namespace.as_deref(), &opts)
        }),
        (Method::GET, Some(name)) => shared.store.lock().unwrap().get(&def, &ns, name),
        (Method::PUT, Some(name)) => parse_body(&body).and_then(|obj| {
            shared
                .store
                .lock()
                .unwrap()
                .update(&def, &ns, name, obj, status, dry_run)
        }),
        (Method::PATCH, Some(name)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = match content_type.split(';').next().unwrap_or("").trim() {
                "application/merge-patch+json" => Ok(PatchKind::Merge),
                "application/json-patch+json" => Ok(PatchKind::Json),
                "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
                "application/apply-patch+yaml" | "application/apply-patch+json" => {
                    Ok(PatchKind::Apply)
                }
                other => Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                    ),
                )),
            };
            kind.and_then(|kind| {
                let patch = parse_body(&body)?;
                let mut store = shared.store.lock().unwrap();
                let existed = store.get(&def, &ns, name).is_ok();
                let out = store.patch(&def, &ns, name, kind, patch, status, dry_run);
                drop(store);
                out.inspect(|obj| {
                    if !existed && !dry_run {
                        shared.after_create(&def, obj);
                    }
                })
            })
        }
        (Method::DELETE, Some(name)) => {
            let out = shared
                .store
                .lock()
                .unwrap()
                .delete(&def, &ns, name, dry_run);
            out.map(|obj| {
                if def.builtin && !matches!(def.plural.as_str(), "pods" | "namespaces" | "services")
                {
                    json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": def.group, "kind": def.plural,
                                    "uid": obj["metadata"]["uid"]}
                    })
                } else {
                    obj
                }
            })
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    };
    match result {
        Ok(obj) => {
            let code = if *method == Method::POST { 201 } else { 200 };
            json_response(code, &obj)
        }
        Err(e) => error_response(&e),
    }
}

/// What a watch sends for `event` given its filters: the type (a modification that moves an
/// object in or out of the selection is ADDED or DELETED, as the real server does) or nothing.
fn filtered_type(
    kind: EventType,
    object: &Value,
    previous: Option<&Value>,
    namespace: Option<&str>,
    opts: &ListOptions,
) -> Option<EventType> {
    if let Some(ns) = namespace
        && object["metadata"]["namespace"].as_str() != Some(ns)
    {
        return None;
    }
    let now = opts.matches(object);
    match (kind, previous) {
        (EventType::Modified, Some(prev)) => match (opts.matches(prev), now) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
        _ => now.then_some(kind),
    }
}

fn line(value: &Value) -> Bytes {
    let mut s = value.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(&json!({"type": "BOOKMARK", "object": {
        "kind": def.kind, "apiVersion": def.group_version(), "metadata": metadata
    }}))
}

/// A watch: the backlog (missed events, or the current objects as ADDED) then live events,
/// bookmarks when asked for, until `timeoutSeconds` or the resource goes away.
fn watch(
    shared: &Arc<Shared>,
    def: ResourceDef,
    namespace: Option<String>,
    opts: ListOptions,
    query: &[(String, String)],
) -> Response {
    let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let bookmarks = param("allowWatchBookmarks").as_deref() == Some("true");
    let initial_events = param("sendInitialEvents").as_deref() == Some("true");
    let timeout = param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let timeout = match (timeout, shared.options.max_watch) {
        (Some(t), Some(max)) => Some(t.min(max)),
        (t, max) => t.or(max),
    };
    let requested_rv = param("resourceVersion").unwrap_or_default();
    let gr = def.group_resource();
    let mut backlog: Vec<Bytes> = Vec::new();
    let (rx, start_rv) = {
        let store = shared.store.lock().unwrap();
        let current = store.resource_version();
        let from = if requested_rv.is_empty() || requested_rv == "0" || initial_events {
            None
        } else {
            match requested_rv.parse::<u64>() {
                Ok(rv) => Some(rv),
                Err(_) => {
                    return error_response(&ApiError::bad_request(format!(
                        "invalid resource version: {requested_rv}"
                    )));
                }
            }
        };
        match from {
            None => {
                for obj in store.current(&gr) {
                    if filtered_type(EventType::Added, &obj, None, namespace.as_deref(), &opts)
                        .is_some()
                    {
                        backlog.push(line(
                            &json!({"type": "ADDED", "object": render(&def, &obj)}),
                        ));
                    }
                }
                if initial_events {
                    backlog.push(bookmark(&def, current, true));
                }
            }
            Some(rv) => match store.events_since(&gr, rv) {
                Some(events) => {
                    for e in events {
                        if let Some(t) = filtered_type(
                            e.kind,
                            &e.object,
                            e.previous.as_ref(),
                            namespace.as_deref(),
                            &opts,
                        ) {
                            backlog.push(line(
                                &json!({"type": t.as_str(), "object": render(&def, &e.object)}),
                            ));
                        }
                    }
                }
                None => {
                    // The real server answers 200 and sends the 410 as an ERROR event.
                    let gone = ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {rv} ({})", store.floor()),
                    );
                    let body = line(&json!({"type": "ERROR", "object": gone.status()}));
                    return (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                        .into_response();
                }
            },
        }
        (shared.tx.subscribe(), current)
    };
    let (out, out_rx) = mpsc::channel::<Bytes>(256);
    let watch_path = shared.watch_opened(&def, namespace.as_deref());
    let shared2 = shared.clone();
    let interval = shared.options.bookmark_interval;
    tokio::spawn(async move {
        let _guard = WatchGuard(shared2, watch_path);
        for b in backlog {
            if out.send(b).await.is_err() {
                return;
            }
        }
        let mut rx: broadcast::Receiver<Notice> = rx;
        let mut seen = start_rv;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            let sleep_until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(24 * 3600));
            tokio::select! {
                notice = rx.recv() => match notice {
                    Ok(Notice::Event(e)) => {
                        seen = seen.max(e.rv);
                        if e.resource != gr {
                            continue;
                        }
                        if let Some(t) = filtered_type(e.kind, &e.object, e.previous.as_ref(), namespace.as_deref(), &opts) {
                            let l = line(&json!({"type": t.as_str(), "object": render(&def, &e.object)}));
                            if out.send(l).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(Notice::Gone(resource)) if resource == gr => return,
                    Ok(Notice::Gone(_)) => {}
                    // A watcher that falls behind is closed; the client resumes from its last RV.
                    Err(_) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if out.send(bookmark(&def, seen, false)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(sleep_until) => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Counts a watch as closed when its task ends.
struct WatchGuard(Arc<Shared>, String);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watch_closed(&self.1);
    }
}

/// Whether `def` is the CRD resource.
pub fn is_crd(def: &ResourceDef) -> bool {
    def.group == CRD_GROUP && def.plural == CRDS
}
