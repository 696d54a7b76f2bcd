//! Deprecated and removed Kubernetes API versions.
//!
//! One row per old `apiVersion` and its kinds: the release that deprecated it,
//! the release that stopped serving it, and what to use instead. Rows come from
//! the Kubernetes "Deprecated API Migration Guide" (every removal since 1.16; its
//! newest section is 1.32) and, for 1.33–1.37, from the prerelease-lifecycle
//! schedule generated into `k8s.io/api`, cross-checked against the embedded
//! schemas (each of those kinds is present in the version before its removal
//! and absent from the removal version). [`lookup`] says what a target version
//! makes of an object's `apiVersion`/`kind`.

use super::KubeVersion;

/// One deprecated API version of some kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeprecatedApi {
    /// The old `apiVersion`.
    pub api_version: &'static str,
    /// The kinds it served that are covered by this row.
    pub kinds: &'static [&'static str],
    /// The release that deprecated it (`None` where Kubernetes published none).
    pub deprecated_in: Option<KubeVersion>,
    /// The first release that no longer serves it.
    pub removed_in: KubeVersion,
    /// The `apiVersion` to use instead, or what to do when there is none.
    pub replacement: Replacement,
}

/// What replaces a deprecated API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// Another `apiVersion` of the same kind.
    ApiVersion(&'static str),
    /// No API replaces it; the text says what to do instead.
    None(&'static str),
}

/// What a target version makes of an `apiVersion`/`kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Deprecated at the target version, still served.
    Deprecated(&'static DeprecatedApi),
    /// No longer served at the target version.
    Removed(&'static DeprecatedApi),
}

const fn v(minor: u32) -> KubeVersion {
    KubeVersion::new(1, minor)
}

const fn some(minor: u32) -> Option<KubeVersion> {
    Some(KubeVersion::new(1, minor))
}

const fn row(
    api_version: &'static str,
    kinds: &'static [&'static str],
    deprecated_in: Option<KubeVersion>,
    removed_in: KubeVersion,
    replacement: &'static str,
) -> DeprecatedApi {
    DeprecatedApi {
        api_version,
        kinds,
        deprecated_in,
        removed_in,
        replacement: Replacement::ApiVersion(replacement),
    }
}

/// Every row, by removal release.
pub static DEPRECATED_APIS: &[DeprecatedApi] = &[
    // 1.16
    row(
        "extensions/v1beta1",
        &["NetworkPolicy"],
        some(9),
        v(16),
        "networking.k8s.io/v1",
    ),
    row(
        "extensions/v1beta1",
        &["PodSecurityPolicy"],
        None,
        v(16),
        "policy/v1beta1",
    ),
    row(
        "extensions/v1beta1",
        &["DaemonSet", "Deployment", "ReplicaSet"],
        some(8),
        v(16),
        "apps/v1",
    ),
    row(
        "apps/v1beta1",
        &[
            "Deployment",
            "StatefulSet",
            "ReplicaSet",
            "ControllerRevision",
        ],
        some(8),
        v(16),
        "apps/v1",
    ),
    row(
        "apps/v1beta2",
        &[
            "DaemonSet",
            "Deployment",
            "StatefulSet",
            "ReplicaSet",
            "ControllerRevision",
        ],
        some(9),
        v(16),
        "apps/v1",
    ),
    // 1.22
    row(
        "admissionregistration.k8s.io/v1beta1",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ],
        some(16),
        v(22),
        "admissionregistration.k8s.io/v1",
    ),
    row(
        "apiextensions.k8s.io/v1beta1",
        &["CustomResourceDefinition"],
        some(16),
        v(22),
        "apiextensions.k8s.io/v1",
    ),
    row(
        "apiregistration.k8s.io/v1beta1",
        &["APIService"],
        some(19),
        v(22),
        "apiregistration.k8s.io/v1",
    ),
    row(
        "authentication.k8s.io/v1beta1",
        &["TokenReview"],
        some(19),
        v(22),
        "authentication.k8s.io/v1",
    ),
    row(
        "authorization.k8s.io/v1beta1",
        &[
            "SubjectAccessReview",
            "LocalSubjectAccessReview",
            "SelfSubjectAccessReview",
            "SelfSubjectRulesReview",
        ],
        some(19),
        v(22),
        "authorization.k8s.io/v1",
    ),
    row(
        "certificates.k8s.io/v1beta1",
        &["CertificateSigningRequest"],
        some(19),
        v(22),
        "certificates.k8s.io/v1",
    ),
    row(
        "coordination.k8s.io/v1beta1",
        &["Lease"],
        some(19),
        v(22),
        "coordination.k8s.io/v1",
    ),
    row(
        "extensions/v1beta1",
        &["Ingress"],
        some(14),
        v(22),
        "networking.k8s.io/v1",
    ),
    row(
        "networking.k8s.io/v1beta1",
        &["Ingress", "IngressClass"],
        some(19),
        v(22),
        "networking.k8s.io/v1",
    ),
    row(
        "rbac.authorization.k8s.io/v1beta1",
        &["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
        some(17),
        v(22),
        "rbac.authorization.k8s.io/v1",
    ),
    row(
        "scheduling.k8s.io/v1beta1",
        &["PriorityClass"],
        some(14),
        v(22),
        "scheduling.k8s.io/v1",
    ),
    row(
        "storage.k8s.io/v1beta1",
        &["CSIDriver", "StorageClass", "VolumeAttachment"],
        some(19),
        v(22),
        "storage.k8s.io/v1",
    ),
    row(
        "storage.k8s.io/v1beta1",
        &["CSINode"],
        some(17),
        v(22),
        "storage.k8s.io/v1",
    ),
    row(
        "admission.k8s.io/v1beta1",
        &["AdmissionReview"],
        some(19),
        v(22),
        "admission.k8s.io/v1",
    ),
    // 1.24 (alpha, lifecycle schedule)
    row(
        "storage.k8s.io/v1alpha1",
        &["CSIStorageCapacity", "VolumeAttachment"],
        some(21),
        v(24),
        "storage.k8s.io/v1",
    ),
    // 1.25
    row("batch/v1beta1", &["CronJob"], some(21), v(25), "batch/v1"),
    row(
        "discovery.k8s.io/v1beta1",
        &["EndpointSlice"],
        some(21),
        v(25),
        "discovery.k8s.io/v1",
    ),
    row(
        "events.k8s.io/v1beta1",
        &["Event"],
        some(22),
        v(25),
        "events.k8s.io/v1",
    ),
    row(
        "autoscaling/v2beta1",
        &["HorizontalPodAutoscaler"],
        some(22),
        v(25),
        "autoscaling/v2",
    ),
    row(
        "policy/v1beta1",
        &["PodDisruptionBudget", "Eviction"],
        some(21),
        v(25),
        "policy/v1",
    ),
    DeprecatedApi {
        api_version: "policy/v1beta1",
        kinds: &["PodSecurityPolicy"],
        deprecated_in: some(21),
        removed_in: v(25),
        replacement: Replacement::None(
            "no replacement API: use Pod Security Admission or an admission webhook",
        ),
    },
    row(
        "node.k8s.io/v1beta1",
        &["RuntimeClass"],
        some(22),
        v(25),
        "node.k8s.io/v1",
    ),
    // 1.26
    row(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        &["FlowSchema", "PriorityLevelConfiguration"],
        some(23),
        v(26),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    row(
        "autoscaling/v2beta2",
        &["HorizontalPodAutoscaler"],
        some(23),
        v(26),
        "autoscaling/v2",
    ),
    // 1.27
    row(
        "storage.k8s.io/v1beta1",
        &["CSIStorageCapacity"],
        some(24),
        v(27),
        "storage.k8s.io/v1",
    ),
    // 1.29
    row(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        &["FlowSchema", "PriorityLevelConfiguration"],
        some(26),
        v(29),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    // 1.32
    row(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        &["FlowSchema", "PriorityLevelConfiguration"],
        some(29),
        v(32),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    row(
        "admissionregistration.k8s.io/v1alpha1",
        &[
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ],
        some(29),
        v(32),
        "admissionregistration.k8s.io/v1",
    ),
    row(
        "authentication.k8s.io/v1alpha1",
        &["SelfSubjectReview"],
        some(29),
        v(32),
        "authentication.k8s.io/v1",
    ),
    // 1.33–1.37 (prerelease-lifecycle schedule, confirmed by the embedded schemas)
    row(
        "authentication.k8s.io/v1beta1",
        &["SelfSubjectReview"],
        some(30),
        v(33),
        "authentication.k8s.io/v1",
    ),
    row(
        "admissionregistration.k8s.io/v1beta1",
        &[
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ],
        some(31),
        v(34),
        "admissionregistration.k8s.io/v1",
    ),
    row(
        "storage.k8s.io/v1alpha1",
        &["VolumeAttributesClass"],
        some(32),
        v(35),
        "storage.k8s.io/v1",
    ),
    row(
        "storagemigration.k8s.io/v1alpha1",
        &["StorageVersionMigration"],
        some(33),
        v(35),
        "storagemigration.k8s.io/v1beta1",
    ),
    row(
        "storage.k8s.io/v1beta1",
        &["VolumeAttributesClass"],
        some(34),
        v(37),
        "storage.k8s.io/v1",
    ),
    row(
        "networking.k8s.io/v1beta1",
        &["IPAddress", "ServiceCIDR"],
        some(34),
        v(37),
        "networking.k8s.io/v1",
    ),
    row(
        "certificates.k8s.io/v1alpha1",
        &["ClusterTrustBundle"],
        some(34),
        v(37),
        "certificates.k8s.io/v1beta1",
    ),
];

/// What `target` makes of `api_version`/`kind`: `None` when it is neither
/// deprecated nor removed there (or deprecated only in a later release).
///
/// ```
/// use policy_core::kube::{KubeVersion, deprecations::{Status, lookup}};
/// let at = KubeVersion::new(1, 21);
/// assert!(matches!(lookup("extensions/v1beta1", "Ingress", at), Some(Status::Deprecated(_))));
/// assert!(matches!(lookup("extensions/v1beta1", "Ingress", KubeVersion::new(1, 22)), Some(Status::Removed(_))));
/// assert_eq!(lookup("networking.k8s.io/v1", "Ingress", at), None);
/// ```
pub fn lookup(api_version: &str, kind: &str, target: KubeVersion) -> Option<Status> {
    let row = DEPRECATED_APIS
        .iter()
        .find(|r| r.api_version == api_version && r.kinds.contains(&kind))?;
    if target >= row.removed_in {
        Some(Status::Removed(row))
    } else if row.deprecated_in.is_some_and(|d| target >= d) {
        Some(Status::Deprecated(row))
    } else {
        None
    }
}

impl Status {
    /// The report line: what is wrong at `target` and what to use instead.
    pub fn message(&self, kind: &str, target: KubeVersion) -> String {
        let (row, what) = match self {
            Status::Removed(row) => (
                row,
                format!(
                    "{} {kind} is no longer served since Kubernetes {} (target {target})",
                    row.api_version, row.removed_in
                ),
            ),
            Status::Deprecated(row) => (
                row,
                match row.deprecated_in {
                    Some(d) => format!(
                        "{} {kind} is deprecated since Kubernetes {d} and removed in {} (target {target})",
                        row.api_version, row.removed_in
                    ),
                    None => format!(
                        "{} {kind} is deprecated and removed in Kubernetes {} (target {target})",
                        row.api_version, row.removed_in
                    ),
                },
            ),
        };
        match row.replacement {
            Replacement::ApiVersion(api) => format!("{what}; use {api}"),
            Replacement::None(text) => format!("{what}; {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The removal boundaries of the guide: served (maybe deprecated) one
    /// release before, removed at the release.
    #[test]
    fn removal_boundaries() {
        let cases = [
            ("apps/v1beta1", "Deployment", 16),
            ("extensions/v1beta1", "Ingress", 22),
            ("rbac.authorization.k8s.io/v1beta1", "ClusterRole", 22),
            ("policy/v1beta1", "PodSecurityPolicy", 25),
            ("batch/v1beta1", "CronJob", 25),
            ("autoscaling/v2beta2", "HorizontalPodAutoscaler", 26),
            ("storage.k8s.io/v1beta1", "CSIStorageCapacity", 27),
            ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", 29),
            (
                "flowcontrol.apiserver.k8s.io/v1beta3",
                "PriorityLevelConfiguration",
                32,
            ),
            (
                "admissionregistration.k8s.io/v1beta1",
                "ValidatingAdmissionPolicy",
                34,
            ),
            ("storage.k8s.io/v1beta1", "VolumeAttributesClass", 37),
        ];
        for (api, kind, removed) in cases {
            let before = lookup(api, kind, KubeVersion::new(1, removed - 1));
            assert!(
                matches!(before, Some(Status::Deprecated(_))),
                "{api} {kind} at 1.{}: {before:?}",
                removed - 1
            );
            let at = lookup(api, kind, KubeVersion::new(1, removed));
            assert!(
                matches!(at, Some(Status::Removed(_))),
                "{api} {kind} at 1.{removed}"
            );
        }
    }

    #[test]
    fn not_yet_deprecated_and_current_versions_pass() {
        assert_eq!(
            lookup("batch/v1beta1", "CronJob", KubeVersion::new(1, 20)),
            None
        );
        assert_eq!(
            lookup("apps/v1", "Deployment", KubeVersion::new(1, 37)),
            None
        );
        // The kind matters: extensions/v1beta1 Ingress lived on after Deployment left.
        assert!(matches!(
            lookup("extensions/v1beta1", "Ingress", KubeVersion::new(1, 16)),
            Some(Status::Deprecated(_))
        ));
    }

    #[test]
    fn messages() {
        let target = KubeVersion::new(1, 37);
        let removed = lookup("extensions/v1beta1", "Ingress", target);
        assert_eq!(
            removed
                .map(|s| s.message("Ingress", target))
                .unwrap_or_default(),
            "extensions/v1beta1 Ingress is no longer served since Kubernetes 1.22 (target 1.37); use networking.k8s.io/v1"
        );
        let target = KubeVersion::new(1, 24);
        let deprecated = lookup("policy/v1beta1", "PodSecurityPolicy", target);
        assert_eq!(
            deprecated
                .map(|s| s.message("PodSecurityPolicy", target))
                .unwrap_or_default(),
            "policy/v1beta1 PodSecurityPolicy is deprecated since Kubernetes 1.21 and removed in 1.25 (target 1.24); no replacement API: use Pod Security Admission or an admission webhook"
        );
    }

    /// The built-in `deprecated-apis` ConstraintTemplate carries the same table in Rego.
    #[test]
    fn the_constraint_template_table_matches() {
        let template =
            include_str!("../../../policies/best-practices/deprecated-apis/template.yaml");
        let mut rows: Vec<&DeprecatedApi> = DEPRECATED_APIS.iter().collect();
        rows.sort_by_key(|r| r.removed_in);
        let mut want = String::from("              deprecations := [\n");
        for (i, r) in rows.iter().enumerate() {
            let kinds: Vec<String> = r.kinds.iter().map(|k| format!("\"{k}\"")).collect();
            let deprecated = r
                .deprecated_in
                .map_or("null".to_owned(), |d| format!("\"{d}\""));
            let advice = match r.replacement {
                Replacement::ApiVersion(api) => format!("use {api}"),
                Replacement::None(text) => text.to_owned(),
            };
            let comma = if i + 1 == rows.len() { "" } else { "," };
            want.push_str(&format!(
                "              \t{{\"apiVersion\": \"{}\", \"kinds\": [{}], \"deprecatedIn\": {deprecated}, \"removedIn\": \"{}\", \"advice\": \"{advice}\"}}{comma}\n",
                r.api_version,
                kinds.join(", "),
                r.removed_in
            ));
        }
        want.push_str("              ]\n");
        assert!(
            template.contains(&want),
            "template table differs; expected:\n{want}"
        );
    }
}
