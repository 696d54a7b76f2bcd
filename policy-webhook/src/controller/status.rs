//! Writes the status Gatekeeper shows on templates and constraints, through the status
//! subresource, without flooding the API server.
//!
//! Updates go into a coalescing queue keyed by object: a newer update of the same object and
//! part (this pod's `byPod` entry, or the audit's totals) replaces the queued one, so a burst of
//! changes to one object costs one write. One worker drains the queue in arrival order behind a
//! token bucket ([`RATE_PER_SECOND`] writes a second, bursts of [`BURST`]). Each write reads the
//! object, merges this pod's entry into `status.byPod` (other pods' entries are kept, sorted by
//! id, as Gatekeeper's status controller sorts them) or sets the audit fields, and replaces the
//! status with the object's `resourceVersion`: a concurrent writer makes it fail with 409
//! Conflict, and it is read and tried again (up to [`ATTEMPTS`] times). A gone object is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Steady rate of status writes.
pub const RATE_PER_SECOND: f64 = 20.0;
/// Writes allowed at once after a quiet period.
pub const BURST: f64 = 40.0;
/// Tries per write (409 conflicts and transient errors).
pub const ATTEMPTS: u32 = 5;

/// Which part of an object's status an update sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// This pod's entry in `status.byPod` (for templates also `status.created`).
    ByPod,
    /// `auditTimestamp`, `totalViolations`, `violations`.
    Audit,
}

/// The object a status update is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `group/version`, the plural resource name and the kind.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Kind.
    pub kind: String,
    /// Object name (templates and constraints are cluster-scoped).
    pub name: String,
}

impl Target {
    /// A ConstraintTemplate.
    pub fn template(name: &str) -> Self {
        Target {
            group: "templates.gatekeeper.sh".to_owned(),
            version: "v1".to_owned(),
            plural: "constrainttemplates".to_owned(),
            kind: "ConstraintTemplate".to_owned(),
            name: name.to_owned(),
        }
    }

    /// A constraint of `kind`.
    pub fn constraint(kind: &str, name: &str) -> Self {
        Target {
            group: super::crd::CONSTRAINT_GROUP.to_owned(),
            version: super::crd::CONSTRAINT_STORAGE_VERSION.to_owned(),
            plural: kind.to_lowercase(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: format!("{}/{}", self.group, self.version),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// What an update writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// This pod's `byPod` entry (its `id` names the pod); for a template, `created` is derived.
    ByPod(Value),
    /// The audit's totals and kept violations (an empty list removes the field).
    Audit {
        /// Run start, RFC 3339 UTC.
        timestamp: String,
        /// Every violation found.
        total: u64,
        /// The kept violations.
        violations: Vec<Value>,
    },
}

#[derive(Debug, Default)]
struct Queue {
    order: VecDeque<(Target, Part)>,
    pending: HashMap<(Target, Part), Update>,
}

/// The coalescing, rate-limited status queue. Clone is cheap.
#[derive(Debug, Clone)]
pub struct StatusWriter {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    pod: String,
}

impl StatusWriter {
    /// A writer whose `byPod` entries carry `pod` as their id. Call [`StatusWriter::run`].
    pub fn new(pod: String) -> Self {
        StatusWriter {
            queue: Arc::new(Mutex::new(Queue::default())),
            wake: Arc::new(Notify::new()),
            pod,
        }
    }

    /// This pod's id in `byPod`.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// Queues an update, replacing a queued one for the same object and part.
    pub fn send(&self, target: Target, update: Update) {
        let part = match update {
            Update::ByPod(_) => Part::ByPod,
            Update::Audit { .. } => Part::Audit,
        };
        let key = (target, part);
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.pending.insert(key.clone(), update).is_none() {
            q.order.push_back(key);
        }
        drop(q);
        self.wake.notify_one();
    }

    /// Updates waiting to be written.
    pub fn backlog(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .order
            .len()
    }

    /// The next queued update (the worker's, and tests').
    pub(super) fn pop(&self) -> Option<(Target, Update)> {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let key = q.order.pop_front()?;
        let update = q.pending.remove(&key)?;
        Some((key.0, update))
    }

    /// Writes queued updates forever.
    pub async fn run(self, client: Client) {
        let mut bucket = TokenBucket::new(RATE_PER_SECOND, BURST);
        loop {
            let Some((target, update)) = self.pop() else {
                self.wake.notified().await;
                continue;
            };
            bucket.take().await;
            if let Err(error) = write(&client, &target, &update, &self.pod).await {
                tracing::warn!(kind = %target.kind, name = %target.name, %error, "status write failed");
            }
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    async fn take(&mut self) {
        loop {
            let now = Instant::now();
            let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let wait = (1.0 - self.tokens) / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// Merges `update` into `object`'s status. Pure, for tests.
pub fn apply(object: &mut Value, update: &Update, pod: &str, is_template: bool) {
    let Some(root) = object.as_object_mut() else {
        return;
    };
    let status = root.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let Some(status) = status.as_object_mut() else {
        return;
    };
    match update {
        Update::ByPod(entry) => {
            let mut entries: Vec<Value> = status
                .get("byPod")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            entries.retain(|e| e.get("id").and_then(Value::as_str) != Some(pod));
            entries.push(entry.clone());
            entries.sort_by(|a, b| {
                let id = |v: &Value| v.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                id(a).cmp(&id(b))
            });
            if is_template {
                let created = entries.iter().any(|e| {
                    e.get("errors")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
                });
                status.insert("created".to_owned(), Value::Bool(created));
            }
            status.insert("byPod".to_owned(), Value::Array(entries));
        }
        Update::Audit {
            timestamp,
            total,
            violations,
        } => {
            status.insert("auditTimestamp".to_owned(), json!(timestamp));
            status.insert("totalViolations".to_owned(), json!(total));
            if violations.is_empty() {
                status.remove("violations");
            } else {
                status.insert("violations".to_owned(), Value::Array(violations.clone()));
            }
        }
    }
}

async fn write(
    client: &Client,
    target: &Target,
    update: &Update,
    pod: &str,
) -> Result<(), kube::Error> {
    let resource = target.resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let is_template = target.kind == "ConstraintTemplate";
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let Some(current) = api.get_opt(&target.name).await? else {
                return Ok(None);
            };
            let mut value = serde_json::to_value(&current).map_err(kube::Error::SerdeError)?;
            let before = value.get("status").cloned();
            apply(&mut value, update, pod, is_template);
            if value.get("status") == before.as_ref() {
                return Ok(Some(()));
            }
            let mut object: DynamicObject =
                serde_json::from_value(value).map_err(kube::Error::SerdeError)?;
            object.types = Some(kube::api::TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
            api.replace_status(&target.name, &PostParams::default(), &object)
                .await
                .map(|_| Some(()))
        }
        .await;
        match result {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => {
                tracing::debug!(kind = %target.kind, name = %target.name, "status conflict; reading again");
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!(kind = %target.kind, name = %target.name, error = %e, "status write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_pod_entries_merge_and_sort() {
        let mut obj = json!({"metadata": {"name": "t"}, "status": {"byPod": [
            {"id": "b", "errors": [{"code": "ingest_error", "message": "x"}]},
            {"id": "c"},
        ]}});
        apply(
            &mut obj,
            &Update::ByPod(json!({"id": "c", "observedGeneration": 2})),
            "c",
            true,
        );
        apply(
            &mut obj,
            &Update::ByPod(
                json!({"id": "a", "errors": [{"code": "create_error", "message": "y"}]}),
            ),
            "a",
            true,
        );
        assert_eq!(
            obj["status"],
            json!({"created": true, "byPod": [
                {"id": "a", "errors": [{"code": "create_error", "message": "y"}]},
                {"id": "b", "errors": [{"code": "ingest_error", "message": "x"}]},
                {"id": "c", "observedGeneration": 2},
            ]})
        );
        apply(
            &mut obj,
            &Update::ByPod(
                json!({"id": "c", "errors": [{"code": "ingest_error", "message": "z"}]}),
            ),
            "c",
            true,
        );
        assert_eq!(obj["status"]["created"], json!(false));
    }

    #[test]
    fn audit_fields_set_and_cleared() {
        let mut obj = json!({"metadata": {"name": "c"}});
        let audit = |total, violations| Update::Audit {
            timestamp: "2026-01-01T00:00:00Z".to_owned(),
            total,
            violations,
        };
        apply(
            &mut obj,
            &audit(3, vec![json!({"name": "p"})]),
            "pod",
            false,
        );
        assert_eq!(
            obj["status"],
            json!({"auditTimestamp": "2026-01-01T00:00:00Z", "totalViolations": 3, "violations": [{"name": "p"}]})
        );
        apply(&mut obj, &audit(0, vec![]), "pod", false);
        assert_eq!(
            obj["status"],
            json!({"auditTimestamp": "2026-01-01T00:00:00Z", "totalViolations": 0})
        );
    }

    #[test]
    fn queue_coalesces_per_object_and_part() {
        let w = StatusWriter::new("pod".to_owned());
        w.send(
            Target::template("a"),
            Update::ByPod(json!({"id": "pod", "n": 1})),
        );
        w.send(Target::template("b"), Update::ByPod(json!({"id": "pod"})));
        w.send(
            Target::template("a"),
            Update::ByPod(json!({"id": "pod", "n": 2})),
        );
        assert_eq!(w.backlog(), 2);
        assert_eq!(
            w.pop(),
            Some((
                Target::template("a"),
                Update::ByPod(json!({"id": "pod", "n": 2}))
            ))
        );
        assert_eq!(w.pop().map(|p| p.0.name), Some("b".to_owned()));
        assert_eq!(w.pop(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_paces_after_the_burst() {
        let mut b = TokenBucket::new(10.0, 2.0);
        let start = Instant::now();
        for _ in 0..4 {
            b.take().await;
        }
        // Two from the burst, then 100 ms each.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(210),
            "{elapsed:?}"
        );
    }
}
