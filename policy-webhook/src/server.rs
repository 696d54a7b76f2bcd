//! Listeners and lifecycle: the HTTPS admission port, the plain-HTTP health and metrics ports,
//! the reload tasks, and graceful shutdown.
//!
//! Shutdown on SIGTERM (or SIGINT) follows what Kubernetes needs from a webhook: `/readyz` starts
//! failing at once so the Pod leaves the Service endpoints, but the listener keeps serving for
//! `--shutdown-delay` because the API server goes on using open connections for a while. Then the
//! listener closes, keep-alive connections are told to close after their current request, and
//! in-flight requests get up to `--shutdown-grace` to finish. A second signal exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::admission::{self, AdmissionState};
use crate::audit::{Audit, LatestReport};
use crate::certs::CertRotator;
use crate::cluster;
use crate::config::Config;
use crate::controller::audit::ClusterAudit;
use crate::controller::validate::SelfValidation;
use crate::controller::{self, ClusterPolicies, Settings as ControllerSettings};
use crate::fswatch;
use crate::leader::{self, LeaderElector, LeaseSettings};
use crate::metrics::{self, Metrics};
use crate::namespaces::{NamespaceCache, Namespaces};
use crate::policy::{Loader, PolicyStore, PolicyWatcher};
use crate::remote::RemoteBundles;
use crate::sync::DataSync;
use crate::tls::{self, TlsState};

/// State behind `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug)]
struct OpsState {
    policies: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    /// With `--watch-namespaces`: not ready until the first list arrived.
    namespaces: Option<Arc<NamespaceCache>>,
    /// With `--sync-data`: not ready until every synced kind is listed and served.
    synced: Option<Arc<AtomicBool>>,
    /// With `--policy-source cluster`: not ready until the policies present at start are loaded.
    cluster_policies: Option<Arc<AtomicBool>>,
    /// With `--audit-interval`: the latest audit report.
    audit: Option<LatestReport>,
    shutting_down: AtomicBool,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Arc<OpsState>>) -> (StatusCode, &'static str) {
    if ops.shutting_down.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else if ops
        .cluster_policies
        .as_ref()
        .is_some_and(|r| !r.load(Ordering::Acquire))
    {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster policies not loaded yet\n",
        )
    } else if !ops.policies.is_loaded() {
        (StatusCode::SERVICE_UNAVAILABLE, "policy set not loaded\n")
    } else if ops.namespaces.as_ref().is_some_and(|n| !n.is_synced()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "namespaces not listed yet\n",
        )
    } else if ops
        .synced
        .as_ref()
        .is_some_and(|s| !s.load(Ordering::Acquire))
    {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "synced data not loaded yet\n",
        )
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn metrics_text(State(ops): State<Arc<OpsState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        ops.metrics.encode(),
    )
}

fn health_router(ops: Arc<OpsState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ops)
}

async fn audit_report(State(ops): State<Arc<OpsState>>) -> axum::response::Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    match ops.audit.as_ref().map(|a| a.load_full()) {
        None => (
            StatusCode::NOT_FOUND,
            "no audit: start with --sync-data --audit-interval DURATION\n",
        )
            .into_response(),
        Some(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no audit has finished yet\n",
        )
            .into_response(),
        Some(Some(report)) => match serde_json::to_vec(&*report) {
            Ok(body) => (StatusCode::OK, json, body).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
    }
}

fn metrics_router(ops: Arc<OpsState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/v1/audit", get(audit_report))
        .with_state(ops)
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} address {addr}"))
}

/// Runs the webhook until SIGTERM/SIGINT, then drains and returns.
pub async fn run(config: Config, loader: Loader) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    // With --cert-secret the certificate files exist only after the first reconcile.
    let cert_task = start_certificates(&config).await?;
    let material = if config.operations.webhook {
        Some(tls::load(&config.tls).context("loading the TLS certificate")?)
    } else {
        None
    };
    let tls_state = material.as_ref().map(|m| Arc::new(TlsState::new(m)));
    if let Some(material) = &material {
        metrics.tls_cert_expiry.set(material.not_after);
    }
    let policies = Arc::new(PolicyStore::new());
    let client = match &config.cluster {
        Some(access) => Some(
            cluster::connect(access.kubeconfig.as_deref())
                .await
                .context(if access.watch_namespaces {
                    "--watch-namespaces"
                } else {
                    "--sync-data"
                })?,
        ),
        None => None,
    };
    let namespaces = match (&config.cluster, &client) {
        (Some(access), Some(client)) if access.watch_namespaces => {
            Some(Namespaces::new(client.clone(), metrics.clone()))
        }
        _ => None,
    };
    let data_sync = match (&config.cluster, &client) {
        (Some(access), Some(client)) if access.sync_data => Some(DataSync::new(
            client.clone(),
            policies.clone(),
            metrics.clone(),
        )),
        _ => None,
    };
    let cluster_policies = match (&config.cluster, &client) {
        (Some(access), Some(client)) => access.policies.as_ref().map(|p| {
            ClusterPolicies::new(
                client.clone(),
                policies.clone(),
                metrics.clone(),
                ControllerSettings {
                    engines: policy_core::gatekeeper::Engines {
                        evaluator: config.evaluator,
                        k8s_native_validation: config.k8s_native_validation,
                    },
                    pod: p.pod.clone(),
                    namespace: p.namespace.clone(),
                    operations: [
                        ("audit", config.operations.audit),
                        ("status", config.operations.status),
                        ("webhook", config.operations.webhook),
                    ]
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(name, _)| name.to_owned())
                    .collect(),
                },
            )
        }),
        _ => None,
    };
    let ops = Arc::new(OpsState {
        policies: policies.clone(),
        metrics: metrics.clone(),
        namespaces: namespaces.as_ref().map(|n| n.cache().clone()),
        synced: data_sync.as_ref().map(DataSync::ready_flag),
        cluster_policies: cluster_policies.as_ref().map(ClusterPolicies::ready_flag),
        audit: config
            .cluster
            .as_ref()
            .and_then(|c| c.audit_interval)
            .map(|_| LatestReport::default()),
        shutting_down: AtomicBool::new(false),
    });

    let admit_listener = match config.operations.webhook {
        true => Some(bind(config.addr, "admission (--addr)").await?),
        false => None,
    };
    let health_listener = bind(config.health_addr, "health (--health-addr)").await?;
    let local = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let admit_local = admit_listener
        .as_ref()
        .map_or_else(|| "none (no webhook operation)".to_owned(), local);
    let health_local = local(&health_listener);
    let mut metrics_local = health_local.clone();
    if config.metrics_addr == config.health_addr {
        let app = health_router(ops.clone()).merge(metrics_router(ops.clone()));
        tokio::spawn(serve_plain(health_listener, app));
    } else {
        let metrics_listener = bind(config.metrics_addr, "metrics (--metrics-addr)").await?;
        metrics_local = local(&metrics_listener);
        tokio::spawn(serve_plain(health_listener, health_router(ops.clone())));
        tokio::spawn(serve_plain(metrics_listener, metrics_router(ops.clone())));
    }
    tracing::info!(
        addr = %admit_local,
        health_addr = %health_local,
        metrics_addr = %metrics_local,
        policy_dir = ?config.policy_dir,
        bundles = ?config.bundles,
        "regard-webhook listening"
    );

    // Filesystem events wake the reload loops early; the guards live as long as the server.
    let tls_wake = Arc::new(tokio::sync::Notify::new());
    let mut tls_dirs: Vec<(PathBuf, bool)> = Vec::new();
    for file in [
        Some(&config.tls.cert_file),
        Some(&config.tls.key_file),
        config.tls.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let dir = fswatch::parent_dir(file);
        if !tls_dirs.iter().any(|(d, _)| *d == dir) {
            tls_dirs.push((dir, false));
        }
    }
    let _tls_events = material
        .is_some()
        .then(|| fswatch::watch("certificate files", &tls_dirs, tls_wake.clone()));
    let policy_wake = Arc::new(tokio::sync::Notify::new());
    let _policy_events = config.policy_dir.as_ref().map(|dir| {
        fswatch::watch(
            "policy directory",
            &[(dir.clone(), true)],
            policy_wake.clone(),
        )
    });
    let tls_task = match (&material, &tls_state) {
        (Some(material), Some(state)) => {
            let (files, state, metrics, interval, material) = (
                config.tls.clone(),
                state.clone(),
                metrics.clone(),
                config.reload_interval,
                material.clone(),
            );
            Some(tokio::spawn(async move {
                tls::watch(files, state, metrics, interval, tls_wake, &material).await;
            }))
        }
        _ => None,
    };
    let mut watcher = PolicyWatcher::new(
        config.policy_dir.clone(),
        loader,
        policies.clone(),
        metrics.clone(),
    );
    if let Some(remote) = &config.remote {
        watcher = watcher.with_remote(RemoteBundles::new(
            remote.sources.clone(),
            remote.options.clone(),
            remote.refresh,
            metrics.clone(),
        ));
    }
    let status_writer = cluster_policies
        .as_ref()
        .map(ClusterPolicies::status_writer);
    let catalog = cluster_policies.as_ref().map(ClusterPolicies::catalog);
    let policy_task = match cluster_policies {
        Some(cluster) => tokio::spawn(cluster.run()),
        // Remote bundles are checked as often as `--bundle-refresh` asks, also when that is
        // shorter than the directory's reload interval.
        None => tokio::spawn(watcher.run(
            check_interval(
                config.reload_interval,
                config.remote.as_ref().map(|r| r.refresh),
            ),
            policy_wake,
        )),
    };

    let namespace_task = namespaces.clone().map(|n| tokio::spawn(n.run()));
    let list_audit = config
        .cluster
        .as_ref()
        .and_then(|c| c.policies.as_ref())
        .filter(|p| p.list_audit);
    let (lease_stop, lease_stopped) = watch::channel(false);
    let audit_task = match (&config.cluster, &data_sync, &ops.audit, &client) {
        (Some(access), _, Some(latest), Some(client))
            if config.operations.audit && list_audit.is_some() =>
        {
            match (access.audit_interval, list_audit, &status_writer) {
                (Some(interval), Some(p), Some(status)) => {
                    let ctx = ClusterAudit {
                        client: client.clone(),
                        interval,
                        limit: access.violations_limit,
                        chunk_size: p.audit_chunk_size,
                        store: policies.clone(),
                        namespaces: namespaces.as_ref().map(|n| n.cache().clone()),
                        exemptions: config.admission.exemptions.clone(),
                        metrics: metrics.clone(),
                        latest: latest.clone(),
                        status: status.clone(),
                        parallel: !config.operations.webhook,
                    };
                    Some(spawn_audit(
                        config.audit_lease.clone(),
                        client.clone(),
                        move || {
                            // The Lease gates the whole loop (run_when_leader), so the loop
                            // itself always may audit.
                            let (always, is_leader) = watch::channel(true);
                            let ctx = ctx.clone();
                            async move {
                                let _always = always;
                                controller::audit::run_cluster(ctx, is_leader).await;
                            }
                        },
                        lease_stopped.clone(),
                    ))
                }
                _ => None,
            }
        }
        (Some(access), Some(sync), Some(latest), Some(client)) if config.operations.audit => {
            access.audit_interval.map(|interval| {
                let audit = Audit {
                    interval,
                    limit: access.violations_limit,
                    store: policies.clone(),
                    objects: sync.objects(),
                    namespaces: namespaces.as_ref().map(|n| n.cache().clone()),
                    metrics: metrics.clone(),
                    latest: latest.clone(),
                    parallel: !config.operations.webhook,
                };
                spawn_audit(
                    config.audit_lease.clone(),
                    client.clone(),
                    move || audit.clone().run(),
                    lease_stopped.clone(),
                )
            })
        }
        _ => None,
    };
    let sync_task = match data_sync {
        Some(sync) => tokio::spawn(sync.run()),
        None => tokio::spawn(warn_unsynced(policies.clone())),
    };
    let mut admission = AdmissionState::new(config.admission.clone(), policies, metrics.clone())?;
    if let Some(namespaces) = namespaces {
        admission = admission.with_namespaces(namespaces);
    }
    if let Some(catalog) = catalog {
        let own = config
            .cluster
            .as_ref()
            .and_then(|c| c.policies.as_ref())
            .and_then(|p| p.service_account.clone());
        admission = admission.with_self_validation(SelfValidation::new(catalog, own));
    }
    let admission = Arc::new(admission);
    let app = admission::router(admission);
    let (stop_tx, stop_rx) = watch::channel(false);
    let graceful = Arc::new(GracefulShutdown::new());
    let accept = match (admit_listener, tls_state) {
        (Some(listener), Some(tls)) => Some(tokio::spawn(accept_loop(
            listener,
            AcceptSettings {
                tls,
                app,
                metrics,
                handshake_timeout: config.handshake_timeout,
                header_read_timeout: config.header_read_timeout,
            },
            graceful.clone(),
            stop_rx,
        ))),
        _ => None,
    };

    let mut signals = Signals::new()?;
    signals.recv().await;
    ops.shutting_down.store(true, Ordering::Relaxed);
    // Hand the audit Lease over now rather than after it expires.
    let _ = lease_stop.send(true);
    tracing::info!(
        delay = ?config.shutdown_delay,
        "shutdown requested; /readyz now fails, still serving while endpoints drain"
    );
    tokio::select! {
        () = tokio::time::sleep(config.shutdown_delay) => {}
        () = signals.recv() => {
            tracing::warn!("second signal; exiting now");
            return Ok(());
        }
    }
    let _ = stop_tx.send(true);
    if let Some(accept) = accept {
        let _ = accept.await;
    }
    // The accept loop has returned its handle, so this is the last one.
    let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
    tracing::info!(
        connections = graceful.count(),
        grace = ?config.shutdown_grace,
        "listener closed; finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
        () = signals.recv() => tracing::warn!("second signal; exiting now"),
    }
    if let Some(task) = tls_task {
        task.abort();
    }
    if let Some(task) = cert_task {
        task.abort();
    }
    policy_task.abort();
    if let Some(task) = namespace_task {
        task.abort();
    }
    sync_task.abort();
    if let Some(mut task) = audit_task {
        // The Lease release started at the signal; let it finish (bounded) before exiting.
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
    Ok(())
}

/// With `--cert-secret` (webhook operation): reconciles the certificate Secret until the
/// files exist, then keeps rotating in a task.
/// How often the policy watcher checks: the directory's reload interval, or
/// `--bundle-refresh` when remote bundles ask for more often (the watcher is
/// what refreshes them, so a longer tick would stretch their period).
fn check_interval(reload: Duration, bundle_refresh: Option<Duration>) -> Duration {
    match bundle_refresh {
        Some(refresh) if !refresh.is_zero() => reload.min(refresh),
        _ => reload,
    }
}

async fn start_certificates(
    config: &Config,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(settings) = &config.certs else {
        return Ok(None);
    };
    let client = cluster::connect(config.kubeconfig.as_deref())
        .await
        .context("--cert-secret")?;
    let rotator = CertRotator::new(client, settings.clone());
    let renew_at = rotator.initial(Duration::from_secs(2)).await;
    Ok(Some(tokio::spawn(rotator.run(renew_at))))
}

/// Runs an audit loop (`run` makes it), under the audit Lease when one is configured: only the
/// replica holding it audits ([`leader::run_when_leader`] with the elector's `watch<bool>`; the
/// loop starts when the Lease is gained and is cancelled when it is lost). `stop` releases the
/// Lease.
fn spawn_audit<F, Fut>(
    lease: Option<LeaseSettings>,
    client: kube::Client,
    mut run: F,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(lease) = lease else {
        return tokio::spawn(async move {
            tokio::select! {
                () = run() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    };
    let elector = LeaderElector::new(client, lease);
    let is_leader = elector.subscribe();
    tokio::spawn(async move {
        let election = elector.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        let audit = leader::run_when_leader(is_leader, run);
        tokio::join!(election, audit);
    })
}

/// Without `--sync-data`, says so whenever a loaded policy set asks for synced data.
async fn warn_unsynced(policies: Arc<PolicyStore>) {
    let mut kinds = policies.sync_kinds();
    loop {
        let asked: Vec<String> = kinds
            .borrow_and_update()
            .iter()
            .map(ToString::to_string)
            .collect();
        if !asked.is_empty() {
            tracing::warn!(
                kinds = %asked.join(", "),
                "the policy set's Config/SyncSet asks for synced data; without --sync-data, data.inventory stays empty"
            );
        }
        if kinds.changed().await.is_err() {
            return;
        }
    }
}

async fn serve_plain(listener: TcpListener, app: Router) {
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "plain-HTTP server stopped");
    }
}

struct AcceptSettings {
    tls: Arc<TlsState>,
    app: Router,
    metrics: Arc<Metrics>,
    handshake_timeout: Duration,
    header_read_timeout: Duration,
}

async fn accept_loop(
    listener: TcpListener,
    settings: AcceptSettings,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                tokio::spawn(serve_connection(
                    tcp,
                    peer,
                    settings.clone(),
                    graceful.watcher(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    settings: Arc<AcceptSettings>,
    watcher: Watcher,
) {
    let _ = tcp.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(settings.tls.current());
    let stream = match tokio::time::timeout(settings.handshake_timeout, acceptor.accept(tcp)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            settings.metrics.tls_handshake_failures.inc();
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            settings.metrics.tls_handshake_failures.inc();
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(
        TokioIo::new(stream),
        TowerToHyperService::new(settings.app.clone()),
    );
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// SIGTERM and SIGINT.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_bundles_shorten_the_check_interval_only() {
        let s = Duration::from_secs;
        assert_eq!(check_interval(s(2), None), s(2));
        assert_eq!(check_interval(s(2), Some(s(1))), s(1));
        assert_eq!(check_interval(s(2), Some(s(60))), s(2));
        assert_eq!(check_interval(s(2), Some(Duration::ZERO)), s(2));
    }
}
