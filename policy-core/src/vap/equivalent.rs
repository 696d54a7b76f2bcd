//! The API server's equivalent resources, for `matchPolicy: Equivalent`.
//!
//! A policy whose rules name `apps/v1 deployments` also matches a request made
//! through another version of the same group (`apps/v1beta2`), or through
//! another group serving the same storage (`extensions/v1beta1`), when its
//! `matchPolicy` is `Equivalent` (the API server's default). The API server
//! knows the equivalents from the resources it serves; offline, regard knows
//! them from the embedded Kubernetes schemas (every `apiVersion` that served a
//! built-in kind in any embedded release) and the deprecation table (older
//! versions and the group each one moved to), plus the one pair that shares
//! storage without a deprecation: core `v1` Events and `events.k8s.io` Events.
//! A kind regard does not know (a custom resource) is taken as served by every
//! version of its group: which versions a CRD serves is the cluster's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crate::gatekeeper::object::split_api_version as split;
use crate::kube::deprecations::{DEPRECATED_APIS, Replacement};

/// A version for a kind whose versions are unknown: any version a rule names.
pub(crate) const ANY_VERSION: &str = "*";

/// Groups that serve the same storage for a kind, besides the deprecation
/// table's moves.
const SHARED_STORAGE: &[(&str, &str, &str)] = &[("", "events.k8s.io", "Event")];

#[derive(Debug, Default)]
struct Table {
    /// `(group, kind)` → the versions that served it.
    versions: BTreeMap<(String, String), BTreeSet<String>>,
    /// `(group, kind)` → the other groups that served the same resource.
    partners: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Table {
    fn build() -> Table {
        let mut table = Table::default();
        // The embedded schemas cannot fail to load in a built binary (a unit
        // test loads them); if they ever did, only the deprecation rows remain.
        let served = crate::kube::catalog::served_kinds().unwrap_or_default();
        for (api_version, kind) in &served {
            table.add_version(api_version, kind);
        }
        for row in DEPRECATED_APIS {
            for kind in row.kinds {
                table.add_version(row.api_version, kind);
                if let Replacement::ApiVersion(to) = row.replacement {
                    table.add_version(to, kind);
                    table.pair(split(row.api_version).0, split(to).0, kind);
                }
            }
        }
        for (a, b, kind) in SHARED_STORAGE {
            table.pair(a, b, kind);
        }
        table.close();
        table
    }

    fn add_version(&mut self, api_version: &str, kind: &str) {
        let (group, version) = split(api_version);
        self.versions
            .entry((group.to_owned(), kind.to_owned()))
            .or_default()
            .insert(version.to_owned());
    }

    fn pair(&mut self, a: &str, b: &str, kind: &str) {
        if a == b {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            self.partners
                .entry((x.to_owned(), kind.to_owned()))
                .or_default()
                .insert(y.to_owned());
        }
    }

    /// Makes the partner relation transitive (a kind that moved twice).
    fn close(&mut self) {
        loop {
            let mut added = false;
            let keys: Vec<(String, String)> = self.partners.keys().cloned().collect();
            for (group, kind) in keys {
                let direct = self
                    .partners
                    .get(&(group.clone(), kind.clone()))
                    .cloned()
                    .unwrap_or_default();
                for other in direct {
                    let theirs = self
                        .partners
                        .get(&(other.clone(), kind.clone()))
                        .cloned()
                        .unwrap_or_default();
                    let mine = self
                        .partners
                        .entry((group.clone(), kind.clone()))
                        .or_default();
                    for g in theirs {
                        if g != group {
                            added |= mine.insert(g);
                        }
                    }
                }
            }
            if !added {
                return;
            }
        }
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::build)
}

/// Builds the table now (it inflates the embedded schemas), so that loading
/// a policy pays for it rather than the first request it reviews.
pub(crate) fn warm() {
    table();
}

/// The `(group, version)` pairs through which the resource of `kind`, requested
/// as `group`/`version`, is also served, other than the request's own, in a
/// fixed order. [`ANY_VERSION`] stands for every version of a group when the
/// kind's versions are unknown.
pub(crate) fn equivalents(group: &str, version: &str, kind: &str) -> Vec<(String, String)> {
    let t = table();
    let key = (group.to_owned(), kind.to_owned());
    let mut groups: BTreeSet<&str> = BTreeSet::from([group]);
    if let Some(partners) = t.partners.get(&key) {
        groups.extend(partners.iter().map(String::as_str));
    }
    let mut out = Vec::new();
    for g in groups {
        match t.versions.get(&(g.to_owned(), kind.to_owned())) {
            Some(versions) => out.extend(
                versions
                    .iter()
                    .filter(|v| !(g == group && *v == version))
                    .map(|v| (g.to_owned(), v.clone())),
            ),
            None if g == group => out.push((g.to_owned(), ANY_VERSION.to_owned())),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(group: &str, version: &str, kind: &str) -> Vec<String> {
        equivalents(group, version, kind)
            .into_iter()
            .map(|(g, v)| if g.is_empty() { v } else { format!("{g}/{v}") })
            .collect()
    }

    #[test]
    fn moved_kinds_are_equivalent_across_groups_and_versions() {
        assert_eq!(
            of("apps", "v1", "Deployment"),
            ["apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"]
        );
        assert_eq!(
            of("extensions", "v1beta1", "Ingress"),
            ["networking.k8s.io/v1", "networking.k8s.io/v1beta1"]
        );
        assert_eq!(
            of("policy", "v1", "PodDisruptionBudget"),
            ["policy/v1beta1"]
        );
        assert_eq!(
            of("autoscaling", "v1", "HorizontalPodAutoscaler"),
            [
                "autoscaling/v2",
                "autoscaling/v2beta1",
                "autoscaling/v2beta2"
            ]
        );
    }

    #[test]
    fn events_share_storage_and_unknown_kinds_take_any_version() {
        assert_eq!(
            of("", "v1", "Event"),
            ["events.k8s.io/v1", "events.k8s.io/v1beta1"]
        );
        assert_eq!(of("", "v1", "Pod"), Vec::<String>::new());
        assert_eq!(of("example.com", "v1", "Widget"), ["example.com/*"]);
    }
}
