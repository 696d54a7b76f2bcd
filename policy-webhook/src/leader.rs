//! Leader election on a `coordination.k8s.io/v1` Lease, so that exactly one replica runs the
//! audit at a time (client-go's algorithm, small enough to own: the published crates target
//! older kube majors).
//!
//! Each replica tries every `retry_period` to take the Lease: it may when the Lease is missing,
//! released (no holder), already its own, or not renewed for `lease_duration` as measured on
//! this replica's clock since it last saw the Lease change (so clock skew between nodes does
//! not matter). Every write carries the read resourceVersion, so of two replicas racing for an
//! expired Lease one gets 409 Conflict and stays a follower. The leader renews every
//! `retry_period`; when it has not renewed for `renew_deadline` it steps down before another
//! replica may take over. Leadership is published on a `tokio::sync::watch<bool>`;
//! [`run_when_leader`] runs a task only while it is `true`.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// Lease timing and identity.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease (`--audit-lease-name`).
    pub name: String,
    /// This replica's identity (the Pod name).
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long steps down (less than `lease_duration`).
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// client-go's defaults (15 s, 10 s, 2 s).
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaseSettings {
        LeaseSettings {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What this replica last saw of the Lease.
#[derive(Debug, Default)]
struct Observed {
    /// resourceVersion last read.
    resource_version: Option<String>,
    /// When it was first seen with that resourceVersion, on the local clock.
    since: Option<Instant>,
}

/// A Lease-based elector.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Observed,
    leader: watch::Sender<bool>,
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("settings", &self.settings)
            .field("observed", &self.observed)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// An elector for `settings`; nobody leads until [`run`](Self::run).
    pub fn new(client: kube::Client, settings: LeaseSettings) -> LeaderElector {
        LeaderElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: Observed::default(),
            leader: watch::channel(false).0,
        }
    }

    /// `true` while this replica leads.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// One attempt to take or renew the Lease; `Ok(true)` when this replica holds it now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let s = &self.settings;
        let duration_seconds = i32::try_from(s.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&s.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now_micro()),
                    renew_time: Some(now_micro()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let now = Instant::now();
        if lease.metadata.resource_version != self.observed.resource_version {
            self.observed = Observed {
                resource_version: lease.metadata.resource_version.clone(),
                since: Some(now),
            };
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == s.identity;
        let held_for = spec
            .lease_duration_seconds
            .and_then(|d| u64::try_from(d).ok())
            .map_or(s.lease_duration, Duration::from_secs);
        let expired = self
            .observed
            .since
            .is_none_or(|since| now.duration_since(since) >= held_for);
        if !mine && !holder.is_empty() && !expired {
            return Ok(false);
        }
        if !mine {
            spec.acquire_time = Some(now_micro());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(s.identity.clone());
        spec.lease_duration_seconds = Some(duration_seconds);
        spec.renew_time = Some(now_micro());
        match self
            .api
            .replace(&s.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observed = Observed {
                    resource_version: written.metadata.resource_version,
                    since: Some(Instant::now()),
                };
                Ok(true)
            }
            // Another replica wrote first; it leads.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it (on shutdown), so a follower takes over at
    /// its next attempt instead of after `lease_duration`.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        self.leader.send_replace(false);
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    /// Campaigns and renews, publishing leadership, until `stop` completes; then releases the
    /// Lease and returns. Dropping the elector's task instead leaves the Lease to expire.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut last_renewal: Option<Instant> = None;
        loop {
            let attempt = self.try_acquire_or_renew().await;
            let now = Instant::now();
            match attempt {
                Ok(true) => {
                    last_renewal = Some(now);
                    if !*self.leader.borrow() {
                        tracing::info!(lease = %self.settings.name, identity = %self.settings.identity, "became leader");
                    }
                    self.leader.send_replace(true);
                }
                Ok(false) => {
                    if *self.leader.borrow() {
                        tracing::warn!(lease = %self.settings.name, "lost the lease to another replica");
                    }
                    last_renewal = None;
                    self.leader.send_replace(false);
                }
                Err(e) => {
                    tracing::warn!(lease = %self.settings.name, error = %e, "lease request failed");
                    // Step down before the Lease can expire for the others.
                    let overdue = last_renewal
                        .is_none_or(|t| now.duration_since(t) >= self.settings.renew_deadline);
                    if overdue && *self.leader.borrow() {
                        tracing::warn!(lease = %self.settings.name, "could not renew in time; stepping down");
                        self.leader.send_replace(false);
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.retry_period) => {}
                () = &mut stop => {
                    if let Err(e) = self.release().await {
                        tracing::warn!(lease = %self.settings.name, error = %e, "releasing the lease failed");
                    }
                    return;
                }
            }
        }
    }
}

/// Runs the future `task()` makes while `leader` is `true`: started when leadership is
/// gained, dropped (cancelled) when it is lost, started afresh when gained again. Returns
/// when `leader`'s sender is gone.
pub async fn run_when_leader<F, Fut>(mut leader: watch::Receiver<bool>, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if leader.wait_for(|l| *l).await.is_err() {
            return;
        }
        let running = task();
        let finished = tokio::select! {
            () = running => true,
            lost = leader.wait_for(|l| !*l) => {
                if lost.is_err() {
                    return;
                }
                false
            }
        };
        // A task that ended by itself waits for the next term.
        if finished && leader.wait_for(|l| !*l).await.is_err() {
            return;
        }
    }
}
