//! Command-line flags (each also read from a `REGARD_WEBHOOK_*` environment variable) and their
//! validation into a [`Config`] the server runs from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Parser, ValueEnum};
use policy_core::gatekeeper::Evaluator;

use crate::exempt::NamespaceExemptions;

/// `regard-webhook`: a Gatekeeper-compatible validating admission webhook.
#[derive(Debug, Parser)]
#[command(name = "regard-webhook", version, about, long_about = None)]
pub struct Args {
    /// Directory of ConstraintTemplates, Constraints and ExpansionTemplates (YAML/JSON, walked);
    /// reloaded on change, keeping the last good set when a new file is bad.
    #[arg(long, env = "REGARD_WEBHOOK_POLICY_DIR", value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,

    /// Built-in policy bundle to serve (`regard policies list`), or a remote one
    /// (`oci://REGISTRY/REPO:TAG|@DIGEST`, an `https://` archive, `git::URL//DIR?ref=REF`) pulled at
    /// start and every --bundle-refresh; repeatable; combined with `--policy-dir` when both are
    /// given. At least one of the two is required.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_BUNDLE",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub bundle: Vec<String>,

    /// How often remote bundles are checked for a new digest (a digest-pinned reference never
    /// changes); a failed pull or a bundle that does not compile keeps the last good set.
    #[arg(long, env = "REGARD_WEBHOOK_BUNDLE_REFRESH", default_value = "5m", value_parser = parse_duration)]
    pub bundle_refresh: Duration,

    /// Plain HTTP to every registry of remote bundles (loopback registries use it without this).
    #[arg(long, env = "REGARD_WEBHOOK_BUNDLE_INSECURE")]
    pub bundle_insecure: bool,

    /// PEM CA certificates trusted, beside the system roots, for remote bundle registries and
    /// servers. Registry credentials come from the Docker config (`DOCKER_CONFIG`).
    #[arg(long, env = "REGARD_WEBHOOK_BUNDLE_CA_FILE", value_name = "FILE")]
    pub bundle_ca_file: Option<PathBuf>,

    /// Largest remote bundle accepted, in bytes once unpacked.
    #[arg(long, env = "REGARD_WEBHOOK_MAX_BUNDLE_BYTES", default_value_t = policy_source::DEFAULT_MAX_BUNDLE_BYTES)]
    pub max_bundle_bytes: u64,

    /// PEM certificate chain served to clients (reloaded when it changes). Required unless
    /// --cert-secret provides the certificate (then it is written here; default
    /// `--cert-dir`/tls.crt).
    #[arg(long, env = "REGARD_WEBHOOK_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key for the certificate (reloaded when it changes); with --cert-secret,
    /// default `--cert-dir`/tls.key.
    #[arg(long, env = "REGARD_WEBHOOK_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM CA bundle: when set, only clients presenting a certificate issued by it are served (mTLS).
    #[arg(long, env = "REGARD_WEBHOOK_CLIENT_CA_FILE", value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,

    /// With --client-ca-file: the subject common name client certificates must have, as
    /// Gatekeeper's flag of the same name; an empty value accepts any name the CA issued.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_CLIENT_CN_NAME",
        value_name = "NAME",
        default_value = "kube-apiserver"
    )]
    pub client_cn_name: String,

    /// Lowest TLS version accepted.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_TLS_MIN_VERSION",
        value_enum,
        default_value = "1.3"
    )]
    pub tls_min_version: TlsVersion,

    /// HTTPS address serving `POST /v1/admit`.
    #[arg(long, env = "REGARD_WEBHOOK_ADDR", default_value = "0.0.0.0:8443", value_parser = parse_addr)]
    pub addr: SocketAddr,

    /// Plain-HTTP address serving `GET /healthz` and `GET /readyz`.
    #[arg(long, env = "REGARD_WEBHOOK_HEALTH_ADDR", default_value = ":9090", value_parser = parse_addr)]
    pub health_addr: SocketAddr,

    /// Plain-HTTP address serving `GET /metrics` (Prometheus text); may equal --health-addr.
    #[arg(long, env = "REGARD_WEBHOOK_METRICS_ADDR", default_value = ":8888", value_parser = parse_addr)]
    pub metrics_addr: SocketAddr,

    /// Namespace never evaluated (always allowed); `*` allowed at the start and/or end
    /// (`kube-*`, `*-system`). Repeatable; comma-separated in the environment variable.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_EXEMPT_NAMESPACE",
        value_delimiter = ',',
        value_name = "GLOB"
    )]
    pub exempt_namespace: Vec<String>,

    /// Namespaces starting with this are exempt, as `--exempt-namespace PREFIX*` (Gatekeeper's
    /// flag). Repeatable; comma-separated in the environment variable.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_EXEMPT_NAMESPACE_PREFIX",
        value_delimiter = ',',
        value_name = "PREFIX"
    )]
    pub exempt_namespace_prefix: Vec<String>,

    /// Namespaces ending with this are exempt, as `--exempt-namespace *SUFFIX` (Gatekeeper's
    /// flag). Repeatable; comma-separated in the environment variable.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_EXEMPT_NAMESPACE_SUFFIX",
        value_delimiter = ',',
        value_name = "SUFFIX",
        // Suffixes usually start with `-` (`-system`).
        allow_hyphen_values = true
    )]
    pub exempt_namespace_suffix: Vec<String>,

    /// Largest request body accepted, in bytes (larger bodies get HTTP 400).
    #[arg(long, env = "REGARD_WEBHOOK_MAX_BODY_BYTES", default_value_t = 3 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Budget for one admission review (queueing for an evaluation slot included).
    #[arg(long, env = "REGARD_WEBHOOK_EVAL_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub eval_timeout: Duration,

    /// Answer given when --eval-timeout expires.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_TIMEOUT_POLICY",
        value_enum,
        default_value = "deny"
    )]
    pub timeout_policy: TimeoutPolicy,

    /// Evaluator: `rvm` (Rego on regorus' compiled VM, 2-3x faster, and CEL expressions lowered
    /// at load; templates it cannot run, and reviews where a rule produces conflicting values,
    /// fall back to the interpreters) or `interpreter` (every template on regorus' interpreter,
    /// CEL on the cel crate's); same results either way
    #[arg(
        long,
        env = "REGARD_WEBHOOK_EVALUATOR",
        default_value = Evaluator::NAMES[0],
        value_parser = PossibleValuesParser::new(Evaluator::NAMES).try_map(|s| s.parse::<Evaluator>())
    )]
    pub evaluator: Evaluator,

    /// Run a ConstraintTemplate's K8sNativeValidation (CEL) code when it has some, before its
    /// Rego, as Gatekeeper does by default; `=false` runs the Rego (CEL-only templates then
    /// report that no engine can run them).
    #[arg(
        long = "enable-k8s-native-validation",
        env = "REGARD_WEBHOOK_ENABLE_K8S_NATIVE_VALIDATION",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub enable_k8s_native_validation: bool,

    /// Watch the cluster's Namespaces (needs get/list/watch on namespaces) so that
    /// `namespaceSelector` and `input.review.namespaceObject` see the request's Namespace, as in
    /// Gatekeeper. Without it, a namespaced object checked by a constraint with a
    /// `namespaceSelector` is rejected as "unable to match constraints". /readyz waits for the
    /// first complete list.
    #[arg(long, env = "REGARD_WEBHOOK_WATCH_NAMESPACES")]
    pub watch_namespaces: bool,

    /// Sync the kinds the policy set's Gatekeeper `Config` (`spec.sync.syncOnly`) and `SyncSet`
    /// documents name from the cluster into `data.inventory` (needs list/watch on them), for
    /// referential templates. /readyz waits until each kind has been listed.
    #[arg(long, env = "REGARD_WEBHOOK_SYNC_DATA")]
    pub sync_data: bool,

    /// Audit this often (`0` = no audit). With `--policy-source cluster` (default 60s there) every
    /// kind some constraint can match is listed from the API server and results go to the
    /// constraints' status, as Gatekeeper's audit does; with `--audit-from-cache`, or with files
    /// as the policy source (default 0 there; needs --sync-data), the synced objects are
    /// audited. Results are also logged, exported as metrics and served on `GET /v1/audit` of the
    /// metrics address.
    #[arg(long, env = "REGARD_WEBHOOK_AUDIT_INTERVAL", value_parser = parse_duration)]
    pub audit_interval: Option<Duration>,

    /// With `--policy-source cluster`: audit the objects --sync-data keeps instead of listing
    /// the API server (Gatekeeper's flag).
    #[arg(long, env = "REGARD_WEBHOOK_AUDIT_FROM_CACHE")]
    pub audit_from_cache: bool,

    /// Page size of the audit's list requests (`limit`/`continue`), as Gatekeeper's flag.
    #[arg(long, env = "REGARD_WEBHOOK_AUDIT_CHUNK_SIZE", default_value_t = 500)]
    pub audit_chunk_size: u32,

    /// Where policies come from: `dir` (--policy-dir), `bundle` (--bundle), both combined when
    /// both are given (the default when either is), or `cluster`: ConstraintTemplates,
    /// constraints, Config, SyncSets and ExpansionTemplates from the API server, as Gatekeeper
    /// reads them (needs the CRDs of `deploy/crds`; not beside Gatekeeper).
    #[arg(long, env = "REGARD_WEBHOOK_POLICY_SOURCE", value_enum)]
    pub policy_source: Option<PolicySourceKind>,

    /// With `--policy-source cluster`: the user whose requests for policy resources are not
    /// reviewed by the self-validation (regard's own writes); default: the service account of
    /// the pod's token (`system:serviceaccount:NAMESPACE:NAME`).
    #[arg(long, env = "REGARD_WEBHOOK_SERVICE_ACCOUNT", value_name = "USER")]
    pub service_account: Option<String>,

    /// Violations kept per constraint in the audit report (Gatekeeper's flag of the same name).
    #[arg(
        long,
        env = "REGARD_WEBHOOK_CONSTRAINT_VIOLATIONS_LIMIT",
        default_value_t = 20
    )]
    pub constraint_violations_limit: usize,

    /// Kubeconfig used by --watch-namespaces and --sync-data (default: the in-cluster service
    /// account, then $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "REGARD_WEBHOOK_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Evaluations running at once (0 = number of CPUs); further requests wait within their budget.
    #[arg(long, env = "REGARD_WEBHOOK_MAX_CONCURRENT_EVALS", default_value_t = 0)]
    pub max_concurrent_evals: usize,

    /// Time a client has to finish the TLS handshake.
    #[arg(long, env = "REGARD_WEBHOOK_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Time a client has to send a request's headers; also closes keep-alive connections idle that long.
    #[arg(long, env = "REGARD_WEBHOOK_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's body.
    #[arg(long, env = "REGARD_WEBHOOK_BODY_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// How often the policy directory and the certificate files are checked for changes besides
    /// filesystem events (the fallback for filesystems that report none).
    #[arg(long, env = "REGARD_WEBHOOK_RELOAD_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub reload_interval: Duration,

    /// On SIGTERM: time to keep serving (while /readyz fails) before closing the listener, so
    /// Service endpoints drain.
    #[arg(long, env = "REGARD_WEBHOOK_SHUTDOWN_DELAY", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// After the listener closes: longest wait for in-flight requests to finish.
    #[arg(long, env = "REGARD_WEBHOOK_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Log one line per deny and warn result (dryrun results are always logged).
    #[arg(long, env = "REGARD_WEBHOOK_LOG_DENIES")]
    pub log_denies: bool,

    /// `/v1/mutate`: mark every mutated object with Gatekeeper's `gatekeeper.sh/mutation-id`
    /// and `gatekeeper.sh/mutations` annotations (which mutators changed it).
    #[arg(long, env = "REGARD_WEBHOOK_MUTATION_ANNOTATIONS")]
    pub mutation_annotations: bool,

    /// `/v1/mutate`: log one line per mutated object, naming the mutators that changed it
    /// (Gatekeeper's `--log-mutations`).
    #[arg(long, env = "REGARD_WEBHOOK_LOG_MUTATIONS")]
    pub log_mutations: bool,

    /// Log line format.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,

    /// Log filter (`info`, `debug`, `regard_webhook=debug,warn`, …).
    #[arg(long, env = "REGARD_WEBHOOK_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// What this process runs: `webhook`, `audit`, `status` (Gatekeeper's flag). Repeatable or
    /// comma-separated; omitted = all.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_OPERATION",
        value_enum,
        value_delimiter = ','
    )]
    pub operation: Vec<crate::operations::Operation>,

    /// Namespace this Pod runs in, for the Service DNS name of generated certificates and the
    /// audit Lease (default: the service account's namespace, then --cert-secret's).
    #[arg(long, env = "REGARD_WEBHOOK_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// This replica's identity in the audit Lease (default: `$HOSTNAME`, the Pod name).
    #[arg(long, env = "REGARD_WEBHOOK_POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,

    /// Provide the serving certificate without cert-manager, as Gatekeeper's cert-controller:
    /// keep a CA and a certificate for `--cert-service-name.NAMESPACE.svc` in this Secret
    /// (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`; created when missing, rotated before expiry,
    /// shared by the replicas), inject the CA into the webhook configurations, and serve it.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_CERT_SECRET",
        value_name = "NAMESPACE/NAME"
    )]
    pub cert_secret: Option<String>,

    /// With --cert-secret: where the certificate and key are written for serving.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_CERT_DIR",
        default_value = "/certs",
        value_name = "DIR"
    )]
    pub cert_dir: PathBuf,

    /// With --cert-secret: the Service in front of the webhook; the certificate is for
    /// `NAME.NAMESPACE.svc`.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_CERT_SERVICE_NAME",
        default_value = "regard-webhook"
    )]
    pub cert_service_name: String,

    /// With --cert-secret: the ValidatingWebhookConfiguration whose webhooks get the CA in
    /// `clientConfig.caBundle`.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_WEBHOOK_CONFIG_NAME",
        default_value = "regard-webhook",
        value_name = "NAME"
    )]
    pub webhook_config_name: String,

    /// With --cert-secret: the MutatingWebhookConfiguration that gets the CA too, when it
    /// exists (empty: none).
    #[arg(
        long,
        env = "REGARD_WEBHOOK_MUTATING_WEBHOOK_CONFIG_NAME",
        default_value = "regard-webhook-mutating",
        value_name = "NAME"
    )]
    pub mutating_webhook_config_name: String,

    /// With --cert-secret: lifetime of a generated serving certificate.
    #[arg(long, env = "REGARD_WEBHOOK_CERT_VALIDITY", default_value = "8760h", value_parser = parse_duration)]
    pub cert_validity: Duration,

    /// With --cert-secret: lifetime of a generated CA.
    #[arg(long, env = "REGARD_WEBHOOK_CA_VALIDITY", default_value = "87600h", value_parser = parse_duration)]
    pub ca_validity: Duration,

    /// With --cert-secret: renew the certificate (or the CA) when it expires within this.
    #[arg(long, env = "REGARD_WEBHOOK_CERT_ROTATION_LOOKAHEAD", default_value = "2160h", value_parser = parse_duration)]
    pub cert_rotation_lookahead: Duration,

    /// With --cert-secret: longest time between two checks of the Secret (it is also watched).
    #[arg(long, env = "REGARD_WEBHOOK_CERT_CHECK_INTERVAL", default_value = "12h", value_parser = parse_duration)]
    pub cert_check_interval: Duration,

    /// Lease (coordination.k8s.io/v1, in --namespace) that elects the one replica running the
    /// audit; empty: every replica with the `audit` operation audits.
    #[arg(
        long,
        env = "REGARD_WEBHOOK_AUDIT_LEASE_NAME",
        default_value = "regard-audit",
        value_name = "NAME"
    )]
    pub audit_lease_name: String,

    /// How long the audit Lease holds without renewal: a replica that stops renewing is
    /// replaced within this (renewals every 2/15 of it, stepping down after 2/3 of it).
    #[arg(long, env = "REGARD_WEBHOOK_AUDIT_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub audit_lease_duration: Duration,
}

/// `--policy-source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicySourceKind {
    /// `--policy-dir`.
    Dir,
    /// `--bundle`.
    Bundle,
    /// The API server.
    Cluster,
}

/// TLS protocol versions `--tls-min-version` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    Tls13,
}

/// What to answer when an evaluation does not finish within `--eval-timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimeoutPolicy {
    /// Admit the request, with a warning saying evaluation timed out.
    Allow,
    /// Reject the request with a message saying evaluation timed out.
    Deny,
}

impl TimeoutPolicy {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutPolicy::Allow => "allow",
            TimeoutPolicy::Deny => "deny",
        }
    }
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Validated settings the server runs from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Policy directory, if any.
    pub policy_dir: Option<PathBuf>,
    /// Built-in bundles served (with the directory's policies, if any).
    pub bundles: Vec<String>,
    /// Remote bundles (`--bundle oci://…`), if any.
    pub remote: Option<RemoteSettings>,
    /// Rego evaluator.
    pub evaluator: Evaluator,
    /// Whether K8sNativeValidation (CEL) code runs before Rego.
    pub k8s_native_validation: bool,
    /// TLS material and settings.
    pub tls: TlsFiles,
    /// HTTPS address.
    pub addr: SocketAddr,
    /// Health address.
    pub health_addr: SocketAddr,
    /// Metrics address.
    pub metrics_addr: SocketAddr,
    /// Limits and timeouts on the admission path.
    pub admission: AdmissionSettings,
    /// How to reach the cluster, when anything is read from it.
    pub cluster: Option<ClusterAccess>,
    /// Handshake timeout.
    pub handshake_timeout: Duration,
    /// Header read (and keep-alive idle) timeout.
    pub header_read_timeout: Duration,
    /// Poll period for file changes.
    pub reload_interval: Duration,
    /// Drain delay before the listener closes.
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight requests after the listener closes.
    pub shutdown_grace: Duration,
    /// `--operation`.
    pub operations: crate::operations::Operations,
    /// `--kubeconfig`, for every cluster connection.
    pub kubeconfig: Option<PathBuf>,
    /// With `--cert-secret` (and the webhook operation): certificate rotation.
    pub certs: Option<crate::certs::CertSettings>,
    /// With the audit operation and a lease name: the audit Lease.
    pub audit_lease: Option<crate::leader::LeaseSettings>,
}

/// Remote bundle sources and how to fetch them.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// The sources, as given.
    pub sources: Vec<String>,
    /// `--bundle-refresh`.
    pub refresh: Duration,
    /// Registry and download settings.
    pub options: policy_source::Options,
}

/// What is read from the cluster, and how to reach it.
#[derive(Debug, Clone)]
pub struct ClusterAccess {
    /// Explicit kubeconfig; `None` infers the cluster as kubectl does.
    pub kubeconfig: Option<PathBuf>,
    /// `--watch-namespaces`.
    pub watch_namespaces: bool,
    /// `--sync-data`.
    pub sync_data: bool,
    /// `--audit-interval`, when not zero.
    pub audit_interval: Option<Duration>,
    /// `--constraint-violations-limit`.
    pub violations_limit: usize,
    /// With `--policy-source cluster`: the controller's settings.
    pub policies: Option<ClusterSettings>,
}

/// Settings of `--policy-source cluster`.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This pod (`--pod-name`, else the host name).
    pub pod: String,
    /// The namespace regard runs in (`--namespace`, else the service account's).
    pub namespace: String,
    /// The user whose policy-resource requests are not self-validated.
    pub service_account: Option<String>,
    /// Audit by listing the API server (not `--audit-from-cache`).
    pub list_audit: bool,
    /// `--audit-chunk-size`.
    pub audit_chunk_size: u32,
}

/// Files and settings that make up the served TLS configuration.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
    /// Optional client CA bundle (PEM) for mTLS.
    pub client_ca_file: Option<PathBuf>,
    /// Common name required of client certificates (with a client CA).
    pub client_cn: Option<String>,
    /// Lowest protocol version.
    pub min_version: TlsVersion,
}

/// Settings of the `POST /v1/admit` handler.
#[derive(Debug, Clone)]
pub struct AdmissionSettings {
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// Time allowed for reading the body.
    pub body_read_timeout: Duration,
    /// Per-request evaluation budget.
    pub eval_timeout: Duration,
    /// Answer on timeout.
    pub timeout_policy: TimeoutPolicy,
    /// Evaluations running at once.
    pub max_concurrent_evals: usize,
    /// Namespaces never evaluated.
    pub exemptions: NamespaceExemptions,
    /// Log deny and warn results.
    pub log_denies: bool,
    /// `/v1/mutate` options.
    pub mutation: MutationSettings,
}

/// Settings of the `POST /v1/mutate` handler (the rest it shares with `/v1/admit`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MutationSettings {
    /// Add Gatekeeper's mutation annotations to mutated objects.
    pub annotations: bool,
    /// Log each mutated object.
    pub log: bool,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            max_body_bytes: 3 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(10),
            eval_timeout: Duration::from_secs(2),
            timeout_policy: TimeoutPolicy::Deny,
            max_concurrent_evals: default_parallelism(),
            exemptions: NamespaceExemptions::default(),
            log_denies: false,
            mutation: MutationSettings::default(),
        }
    }
}

fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

impl Args {
    /// Checks the flags and turns them into a [`Config`].
    pub fn into_config(self) -> anyhow::Result<Config> {
        let exemptions = NamespaceExemptions::with_affixes(
            &self.exempt_namespace,
            &self.exempt_namespace_prefix,
            &self.exempt_namespace_suffix,
        )?;
        if self.eval_timeout.is_zero() {
            anyhow::bail!("--eval-timeout must be greater than zero");
        }
        if self.reload_interval.is_zero() {
            anyhow::bail!("--reload-interval must be greater than zero");
        }
        if self.max_body_bytes == 0 {
            anyhow::bail!("--max-body-bytes must be greater than zero");
        }
        match self.policy_source {
            Some(PolicySourceKind::Cluster)
                if self.policy_dir.is_some() || !self.bundle.is_empty() =>
            {
                anyhow::bail!(
                    "--policy-source cluster reads policies from the API server: drop --policy-dir and --bundle"
                );
            }
            Some(PolicySourceKind::Cluster) => {}
            Some(PolicySourceKind::Dir) if self.policy_dir.is_none() => {
                anyhow::bail!("--policy-source dir needs --policy-dir DIR");
            }
            Some(PolicySourceKind::Bundle) if self.bundle.is_empty() => {
                anyhow::bail!("--policy-source bundle needs --bundle NAME");
            }
            _ if self.policy_dir.is_none() && self.bundle.is_empty() => {
                anyhow::bail!(
                    "give --policy-dir DIR, --bundle NAME, or both (or --policy-source cluster)"
                );
            }
            _ => {}
        }
        let (remote, builtin): (Vec<String>, Vec<String>) = self
            .bundle
            .into_iter()
            .partition(|b| crate::remote::is_remote(b));
        if !builtin.is_empty() {
            policy_core::library::select(&builtin)?;
        }
        for source in &remote {
            policy_source::Source::detect(source)?;
        }
        if !remote.is_empty() && self.bundle_refresh.is_zero() {
            anyhow::bail!("--bundle-refresh must be greater than zero");
        }
        let remote = (!remote.is_empty()).then_some(RemoteSettings {
            sources: remote,
            refresh: self.bundle_refresh,
            options: policy_source::Options {
                max_bytes: self.max_bundle_bytes,
                insecure: self.bundle_insecure,
                ca_file: self.bundle_ca_file,
                docker_config: None,
                // Each remote source gets its own (`RemoteBundles`).
                cache: None,
            },
        });
        let cluster_source = self.policy_source == Some(PolicySourceKind::Cluster);
        let audit_interval = self.audit_interval.unwrap_or(if cluster_source {
            Duration::from_secs(60)
        } else {
            Duration::ZERO
        });
        let cache_audit = !cluster_source || self.audit_from_cache;
        if !audit_interval.is_zero() && cache_audit && !self.sync_data {
            anyhow::bail!(
                "--audit-interval audits the objects --sync-data keeps: give --sync-data too"
            );
        }
        if self.audit_from_cache && !cluster_source {
            anyhow::bail!(
                "--audit-from-cache is for --policy-source cluster (file sources always audit the synced objects)"
            );
        }
        if self.audit_chunk_size == 0 {
            anyhow::bail!("--audit-chunk-size must be greater than zero");
        }
        if self.service_account.is_some() && !cluster_source {
            anyhow::bail!("--service-account is only used with --policy-source cluster");
        }
        // A cluster source reads the Namespaces too: Gatekeeper always looks them up.
        let watch_namespaces = self.watch_namespaces || cluster_source;
        if self.kubeconfig.is_some()
            && !self.watch_namespaces
            && !self.sync_data
            && self.cert_secret.is_none()
            && !cluster_source
        {
            anyhow::bail!(
                "--kubeconfig is only used with --watch-namespaces, --sync-data, --cert-secret or --policy-source cluster"
            );
        }
        let operations = crate::operations::Operations::from_flags(&self.operation);
        let cert_secret = match &self.cert_secret {
            Some(value) => match value.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                    Some((ns.to_owned(), name.to_owned()))
                }
                _ => anyhow::bail!("--cert-secret {value:?}: expected NAMESPACE/NAME"),
            },
            None => None,
        };
        let namespace = self
            .namespace
            .clone()
            .or_else(service_account_namespace)
            .or_else(|| cert_secret.as_ref().map(|(ns, _)| ns.clone()))
            .unwrap_or_else(|| "default".to_owned());
        let (cert_file, key_file) = match (self.tls_cert_file, self.tls_key_file) {
            (Some(cert), Some(key)) => (cert, key),
            // Without the webhook operation nothing is served over TLS: the paths go unused.
            (cert, key) if cert_secret.is_some() || !operations.webhook => (
                cert.unwrap_or_else(|| self.cert_dir.join(crate::certs::TLS_CERT)),
                key.unwrap_or_else(|| self.cert_dir.join(crate::certs::TLS_KEY)),
            ),
            _ => anyhow::bail!(
                "give --tls-cert-file and --tls-key-file, or --cert-secret NAMESPACE/NAME"
            ),
        };
        if cert_secret.is_some() {
            for (flag, value) in [
                ("--cert-validity", self.cert_validity),
                ("--ca-validity", self.ca_validity),
                ("--cert-check-interval", self.cert_check_interval),
            ] {
                if value.is_zero() {
                    anyhow::bail!("{flag} must be greater than zero");
                }
            }
            if self.cert_rotation_lookahead >= self.cert_validity {
                anyhow::bail!(
                    "--cert-rotation-lookahead must be shorter than --cert-validity, or every check rotates"
                );
            }
        }
        let certs =
            cert_secret
                .filter(|_| operations.webhook)
                .map(
                    |(secret_namespace, secret_name)| crate::certs::CertSettings {
                        secret_namespace,
                        secret_name,
                        dns_names: vec![format!("{}.{namespace}.svc", self.cert_service_name)],
                        validating_webhook: Some(self.webhook_config_name.clone())
                            .filter(|n| !n.is_empty()),
                        mutating_webhook: Some(self.mutating_webhook_config_name.clone())
                            .filter(|n| !n.is_empty()),
                        ca_validity: self.ca_validity,
                        cert_validity: self.cert_validity,
                        lookahead: self.cert_rotation_lookahead,
                        check_interval: self.cert_check_interval,
                        cert_file: cert_file.clone(),
                        key_file: key_file.clone(),
                    },
                );
        if self.audit_lease_duration < Duration::from_secs(1) {
            anyhow::bail!("--audit-lease-duration must be at least 1s");
        }
        let identity = self
            .pod_name
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("regard-webhook-{}", std::process::id()));
        let audit_lease = (operations.audit && !self.audit_lease_name.is_empty()).then(|| {
            let duration = self.audit_lease_duration;
            crate::leader::LeaseSettings {
                renew_deadline: duration * 2 / 3,
                retry_period: duration * 2 / 15,
                lease_duration: duration,
                ..crate::leader::LeaseSettings::new(&namespace, &self.audit_lease_name, &identity)
            }
        });
        let max_concurrent_evals = match self.max_concurrent_evals {
            0 => default_parallelism(),
            n => n,
        };
        Ok(Config {
            policy_dir: self.policy_dir,
            bundles: builtin,
            remote,
            evaluator: self.evaluator,
            k8s_native_validation: self.enable_k8s_native_validation,
            tls: TlsFiles {
                cert_file,
                key_file,
                client_cn: (self.client_ca_file.is_some() && !self.client_cn_name.is_empty())
                    .then_some(self.client_cn_name),
                client_ca_file: self.client_ca_file,
                min_version: self.tls_min_version,
            },
            addr: self.addr,
            health_addr: self.health_addr,
            metrics_addr: self.metrics_addr,
            admission: AdmissionSettings {
                max_body_bytes: self.max_body_bytes,
                body_read_timeout: self.body_read_timeout,
                eval_timeout: self.eval_timeout,
                timeout_policy: self.timeout_policy,
                max_concurrent_evals,
                exemptions,
                log_denies: self.log_denies,
                mutation: MutationSettings {
                    annotations: self.mutation_annotations,
                    log: self.log_mutations,
                },
            },
            cluster: (watch_namespaces || self.sync_data).then_some(ClusterAccess {
                kubeconfig: self.kubeconfig.clone(),
                watch_namespaces,
                sync_data: self.sync_data,
                audit_interval: (!audit_interval.is_zero()).then_some(audit_interval),
                violations_limit: self.constraint_violations_limit,
                policies: cluster_source.then(|| ClusterSettings {
                    pod: identity.clone(),
                    namespace: namespace.clone(),
                    service_account: self.service_account.clone().or_else(own_service_account),
                    list_audit: !self.audit_from_cache,
                    audit_chunk_size: self.audit_chunk_size,
                }),
            }),
            handshake_timeout: self.handshake_timeout,
            header_read_timeout: self.header_read_timeout,
            reload_interval: self.reload_interval,
            shutdown_delay: self.shutdown_delay,
            shutdown_grace: self.shutdown_grace,
            operations,
            kubeconfig: self.kubeconfig,
            certs,
            audit_lease,
        })
    }
}

/// Where the in-cluster service account's files are mounted.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The user of the pod's service account token (its JWT `sub` claim), when there is one.
fn own_service_account() -> Option<String> {
    let token = std::fs::read_to_string(format!("{SERVICE_ACCOUNT_DIR}/token")).ok()?;
    token_subject(&token)
}

/// The `sub` claim of a JWT, unverified (only ever our own token).
pub fn token_subject(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

/// The namespace of the mounted service account, when running in a Pod.
fn service_account_namespace() -> Option<String> {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Parses `host:port`, or `:port` (all IPv4 interfaces, as Go programs accept).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_owned(),
    };
    full.parse()
        .map_err(|e| format!("{s:?} is not an address like 0.0.0.0:8443 or :8443 ({e})"))
}

/// Parses durations such as `500ms`, `2s`, `1m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 2s or 1m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr(":9090"), Ok("0.0.0.0:9090".parse().unwrap()));
        assert_eq!(
            parse_addr("127.0.0.1:8443"),
            Ok("127.0.0.1:8443".parse().unwrap())
        );
        assert_eq!(parse_addr("[::1]:1"), Ok("[::1]:1".parse().unwrap()));
        assert!(parse_addr("localhost").is_err());
    }

    fn config_of(args: &[&str]) -> anyhow::Result<Config> {
        let argv = ["regard-webhook", "--bundle", "baseline"]
            .iter()
            .chain(args);
        Args::try_parse_from(argv)?.into_config()
    }

    #[test]
    fn cert_secret_provides_the_serving_files_and_names() {
        let config = config_of(&[
            "--cert-secret=regard-system/regard-cert",
            "--namespace=regard-system",
            "--pod-name=regard-0",
        ])
        .unwrap();
        assert_eq!(config.tls.cert_file, PathBuf::from("/certs/tls.crt"));
        assert_eq!(config.tls.key_file, PathBuf::from("/certs/tls.key"));
        let certs = config.certs.unwrap();
        assert_eq!(certs.dns_names, ["regard-webhook.regard-system.svc"]);
        assert_eq!(
            (certs.secret_namespace.as_str(), certs.secret_name.as_str()),
            ("regard-system", "regard-cert")
        );
        assert_eq!(certs.validating_webhook.as_deref(), Some("regard-webhook"));
        assert_eq!(
            certs.mutating_webhook.as_deref(),
            Some("regard-webhook-mutating")
        );
        assert_eq!(certs.cert_validity, Duration::from_secs(365 * 86_400));
        assert_eq!(certs.lookahead, Duration::from_secs(90 * 86_400));
        let lease = config.audit_lease.unwrap();
        assert_eq!(
            (
                lease.namespace.as_str(),
                lease.name.as_str(),
                lease.identity.as_str()
            ),
            ("regard-system", "regard-audit", "regard-0")
        );
        assert_eq!(
            (
                lease.lease_duration,
                lease.renew_deadline,
                lease.retry_period
            ),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
    }

    #[test]
    fn operations_gate_certificates_and_the_lease() {
        let config = config_of(&["--cert-secret=ns/c", "--operation=audit,status"]).unwrap();
        assert!(config.certs.is_none(), "no webhook, no certificates");
        assert!(config.audit_lease.is_some());
        assert_eq!(
            config.operations,
            crate::operations::Operations {
                webhook: false,
                audit: true,
                status: true
            }
        );
        // An audit-only process needs no certificate.
        let config = config_of(&["--operation=audit"]).unwrap();
        assert!(config.certs.is_none() && !config.operations.webhook);
        let config = config_of(&["--cert-secret=ns/c", "--operation=webhook"]).unwrap();
        assert!(config.certs.is_some() && config.audit_lease.is_none());
        let config = config_of(&["--cert-secret=ns/c", "--audit-lease-name="]).unwrap();
        assert!(config.audit_lease.is_none());
    }

    #[test]
    fn certificate_flags_are_checked() {
        let err = |args: &[&str]| config_of(args).unwrap_err().to_string();
        assert_eq!(
            err(&[]),
            "give --tls-cert-file and --tls-key-file, or --cert-secret NAMESPACE/NAME"
        );
        assert_eq!(
            err(&["--cert-secret=just-a-name"]),
            "--cert-secret \"just-a-name\": expected NAMESPACE/NAME"
        );
        assert_eq!(
            err(&[
                "--cert-secret=ns/c",
                "--cert-validity=1h",
                "--cert-rotation-lookahead=2h"
            ]),
            "--cert-rotation-lookahead must be shorter than --cert-validity, or every check rotates"
        );
    }

    #[test]
    fn service_account_from_token() {
        // {"sub":"system:serviceaccount:regard-system:regard-webhook"}
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6cmVnYXJkLXN5c3RlbTpyZWdhcmQtd2ViaG9vayJ9.c2ln";
        assert_eq!(
            token_subject(token).as_deref(),
            Some("system:serviceaccount:regard-system:regard-webhook")
        );
        assert_eq!(token_subject("not-a-jwt"), None);
    }

    #[test]
    fn policy_source_flags() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "regard-webhook",
                "--tls-cert-file",
                "c",
                "--tls-key-file",
                "k",
            ];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).unwrap().into_config()
        };
        let c = parse(&["--policy-source", "cluster"]).unwrap();
        let access = c.cluster.unwrap();
        assert!(access.watch_namespaces);
        assert_eq!(access.audit_interval, Some(Duration::from_secs(60)));
        let p = access.policies.unwrap();
        assert!(p.list_audit);
        assert_eq!(p.audit_chunk_size, 500);
        let c = parse(&["--policy-source", "cluster", "--audit-interval", "0"]).unwrap();
        assert_eq!(c.cluster.unwrap().audit_interval, None);
        assert_eq!(
            parse(&["--policy-source", "cluster", "--policy-dir", "d"])
                .unwrap_err()
                .to_string(),
            "--policy-source cluster reads policies from the API server: drop --policy-dir and --bundle"
        );
        assert_eq!(
            parse(&["--policy-source", "cluster", "--audit-from-cache"])
                .unwrap_err()
                .to_string(),
            "--audit-interval audits the objects --sync-data keeps: give --sync-data too"
        );
        assert_eq!(
            parse(&["--policy-source", "dir"]).unwrap_err().to_string(),
            "--policy-source dir needs --policy-dir DIR"
        );
        assert!(parse(&["--policy-dir", "d"]).unwrap().cluster.is_none());
    }

    #[test]
    fn every_flag_has_an_env_var() {
        use clap::CommandFactory;
        for arg in Args::command().get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{id} has no env var"));
            let expected = format!("REGARD_WEBHOOK_{}", id.to_uppercase());
            assert_eq!(env.to_str(), Some(expected.as_str()));
        }
    }
}
