//! Certificates without cert-manager, as Gatekeeper's cert-controller does them: a CA and a
//! serving certificate kept in one Secret (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`), the CA
//! injected into the `caBundle` of the named webhook configurations, rotation before expiry.
//!
//! Data flow: [`CertRotator::reconcile`] reads the Secret and checks it ([`assess`]); a missing
//! or invalid Secret gets a new CA and certificate, a certificate near expiry (or not valid for
//! the Service name) a new certificate from the same CA, a CA near expiry both. Writes carry
//! the read resourceVersion, so when replicas race only one wins; the losers get 409, read the
//! Secret again and use the winner's certificate. The result is written to the
//! `--tls-cert-file`/`--tls-key-file` paths (atomically, key first), where the existing file
//! reload ([`crate::tls::watch`]) picks it up, so every replica serves what the Secret holds
//! within one reconcile of a change: [`CertRotator::run`] watches the Secret and the webhook
//! configurations (kube-rs watchers) and re-checks at the rotation deadline. After a CA
//! rotation the old CA stays in `caBundle` until it expires ([`ca_bundle`]), so replicas that
//! have not yet reloaded are still trusted.
//!
//! Differences from Gatekeeper: keys are ECDSA P-256 (rcgen on ring cannot generate RSA).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::watcher;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Secret keys, as Gatekeeper names them.
pub const CA_CERT: &str = "ca.crt";
/// The CA's private key.
pub const CA_KEY: &str = "ca.key";
/// The serving certificate.
pub const TLS_CERT: &str = "tls.crt";
/// The serving certificate's key.
pub const TLS_KEY: &str = "tls.key";

const CA_COMMON_NAME: &str = "regard-ca";
const ORGANIZATION: &str = "regard";
/// NotBefore is backdated this much for clocks slightly behind ours (Gatekeeper: 1 h).
const BACKDATE: Duration = Duration::from_secs(3600);
/// Attempts of one reconcile when writes conflict.
const ATTEMPTS: usize = 5;

/// Why certificates could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The API server refused or failed a request.
    #[error("{what}: {source}")]
    Api {
        /// The request (e.g. `updating Secret regard-system/regard-webhook-cert`).
        what: String,
        /// The client error.
        source: kube::Error,
    },
    /// rcgen could not generate a key or sign a certificate.
    #[error("generating {what}: {source}")]
    Generate {
        /// The CA or the serving certificate.
        what: &'static str,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// Writes kept conflicting with other replicas.
    #[error("{0}: still conflicting after {ATTEMPTS} attempts")]
    Conflicts(String),
    /// The certificate files could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Settings of certificate rotation (`--cert-secret` and friends).
#[derive(Debug, Clone)]
pub struct CertSettings {
    /// Namespace of the Secret.
    pub secret_namespace: String,
    /// Name of the Secret.
    pub secret_name: String,
    /// DNS names the serving certificate is for (`<service>.<namespace>.svc`).
    pub dns_names: Vec<String>,
    /// ValidatingWebhookConfiguration whose webhooks get the CA.
    pub validating_webhook: Option<String>,
    /// MutatingWebhookConfiguration whose webhooks get the CA (when it exists).
    pub mutating_webhook: Option<String>,
    /// CA lifetime.
    pub ca_validity: Duration,
    /// Serving certificate lifetime.
    pub cert_validity: Duration,
    /// Renew when expiring within this.
    pub lookahead: Duration,
    /// Longest time between two checks.
    pub check_interval: Duration,
    /// Where the serving certificate is written for the TLS reloader.
    pub cert_file: PathBuf,
    /// Where its key is written.
    pub key_file: PathBuf,
}

/// PEM material read from, or written to, the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// CA certificate.
    pub ca_cert: String,
    /// CA private key.
    pub ca_key: String,
    /// Serving certificate.
    pub cert: String,
    /// Serving key.
    pub key: String,
}

/// What a Secret's content needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid beyond the lookahead; rotation due at the given time.
    Valid {
        /// When the earlier of the CA and the certificate enters the lookahead window.
        renew_at: SystemTime,
    },
    /// The CA is good; the serving certificate needs reissuing (why).
    RenewCert(String),
    /// A new CA and certificate are needed (why).
    RenewAll(String),
}

fn params_base(common_name: &str, now: SystemTime, validity: Duration) -> CertificateParams {
    params_with_names(CertificateParams::default(), common_name, now, validity)
}

fn params_with_names(
    mut params: CertificateParams,
    common_name: &str,
    now: SystemTime,
    validity: Duration,
) -> CertificateParams {
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + validity).into();
    params
}

/// The CA's parameters; reissuing with the same subject and key yields certificates that
/// chain to the CA in the Secret.
fn ca_params(now: SystemTime, validity: Duration) -> CertificateParams {
    let mut params = params_base(CA_COMMON_NAME, now, validity);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A new CA and a serving certificate from it.
pub fn generate_all(
    dns_names: &[String],
    now: SystemTime,
    ca_validity: Duration,
    cert_validity: Duration,
) -> Result<Bundle, CertError> {
    let gen_err = |what| move |source| CertError::Generate { what, source };
    let ca_key = KeyPair::generate().map_err(gen_err("the CA key"))?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params(now, ca_validity), ca_key)
        .map_err(gen_err("the CA"))?;
    let ca_pem = ca.pem();
    let (cert, key) = issue(&ca, dns_names, now, cert_validity)?;
    Ok(Bundle {
        ca_cert: ca_pem,
        ca_key: ca_key_pem,
        cert,
        key,
    })
}

/// A serving certificate for `dns_names`, signed by `issuer`; (certificate, key) PEM.
fn issue(
    issuer: &Issuer<'_, KeyPair>,
    dns_names: &[String],
    now: SystemTime,
    validity: Duration,
) -> Result<(String, String), CertError> {
    let gen_err = |source| CertError::Generate {
        what: "the serving certificate",
        source,
    };
    let common_name = dns_names.first().map_or("regard-webhook", String::as_str);
    let sans = CertificateParams::new(dns_names.to_vec()).map_err(gen_err)?;
    let mut params = params_with_names(sans, common_name, now, validity);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(gen_err)?;
    let cert = params.signed_by(&key, issuer).map_err(gen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A new serving certificate from the CA in `bundle`.
pub fn reissue(
    bundle: &Bundle,
    dns_names: &[String],
    now: SystemTime,
    cert_validity: Duration,
) -> Result<Bundle, CertError> {
    let ca_key = KeyPair::from_pem(&bundle.ca_key).map_err(|source| CertError::Generate {
        what: "the CA key (unreadable)",
        source,
    })?;
    // Only the subject and key of the issuer params matter for signing.
    let issuer = Issuer::new(ca_params(now, Duration::ZERO), ca_key);
    let (cert, key) = issue(&issuer, dns_names, now, cert_validity)?;
    Ok(Bundle {
        cert,
        key,
        ..bundle.clone()
    })
}

/// The single certificate of `pem` and its `notAfter`, and whether `key_pem` is its key.
fn parse_pair(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(CertificateDer<'static>, SystemTime), String> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("unreadable key: {e}"))?;
    if key.public_key_raw()
        != cert
            .tbs_certificate
            .subject_pki
            .subject_public_key
            .data
            .as_ref()
    {
        return Err("the key does not belong to the certificate".to_owned());
    }
    let not_after = u64::try_from(cert.validity().not_after.timestamp())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .map_err(|_| "notAfter before 1970".to_owned())?;
    let der = der.into_owned();
    Ok((der, not_after))
}

/// Checks a Secret's content at `now`: parsable, keys matching, the certificate issued by
/// the CA for `dns_names` (verified as a TLS client would), neither expiring within
/// `lookahead`.
pub fn assess(
    bundle: &Bundle,
    dns_names: &[String],
    now: SystemTime,
    lookahead: Duration,
) -> Verdict {
    let (ca_der, ca_not_after) = match parse_pair(&bundle.ca_cert, &bundle.ca_key) {
        Ok(v) => v,
        Err(e) => return Verdict::RenewAll(format!("CA: {e}")),
    };
    if ca_not_after <= now + lookahead {
        return Verdict::RenewAll("the CA expires within the rotation lookahead".to_owned());
    }
    let (cert_der, cert_not_after) = match parse_pair(&bundle.cert, &bundle.key) {
        Ok(v) => v,
        Err(e) => return Verdict::RenewCert(format!("serving certificate: {e}")),
    };
    if cert_not_after <= now + lookahead {
        return Verdict::RenewCert(
            "the serving certificate expires within the rotation lookahead".to_owned(),
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    if let Err(e) = roots.add(ca_der) {
        return Verdict::RenewAll(format!("CA: {e}"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider,
    )
    .build()
    {
        Ok(v) => v,
        Err(e) => return Verdict::RenewAll(format!("CA: {e}")),
    };
    let unix = UnixTime::since_unix_epoch(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    for name in dns_names {
        let Ok(server_name) = ServerName::try_from(name.clone()) else {
            return Verdict::RenewCert(format!("{name:?} is not a DNS name"));
        };
        if let Err(e) = verifier.verify_server_cert(&cert_der, &[], &server_name, &[], unix) {
            return Verdict::RenewCert(format!("serving certificate for {name}: {e}"));
        }
    }
    Verdict::Valid {
        renew_at: ca_not_after.min(cert_not_after) - lookahead,
    }
}

fn bundle_of(secret: &Secret) -> Bundle {
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
    };
    Bundle {
        ca_cert: text(CA_CERT),
        ca_key: text(CA_KEY),
        cert: text(TLS_CERT),
        key: text(TLS_KEY),
    }
}

fn secret_data(bundle: &Bundle) -> std::collections::BTreeMap<String, ByteString> {
    [
        (CA_CERT, &bundle.ca_cert),
        (CA_KEY, &bundle.ca_key),
        (TLS_CERT, &bundle.cert),
        (TLS_KEY, &bundle.key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
    .collect()
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Keeps the Secret, the webhook configurations' `caBundle` and the served files in step.
#[derive(Clone)]
pub struct CertRotator {
    client: kube::Client,
    settings: CertSettings,
}

impl std::fmt::Debug for CertRotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertRotator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl CertRotator {
    /// A rotator using `client`.
    pub fn new(client: kube::Client, settings: CertSettings) -> CertRotator {
        CertRotator { client, settings }
    }

    fn secret_label(&self) -> String {
        format!(
            "Secret {}/{}",
            self.settings.secret_namespace, self.settings.secret_name
        )
    }

    /// Makes the Secret hold a valid bundle (creating or rotating it) and returns it with the
    /// time its rotation is due.
    pub async fn reconcile_secret(
        &self,
        now: SystemTime,
    ) -> Result<(Bundle, SystemTime), CertError> {
        let s = &self.settings;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &s.secret_namespace);
        let label = self.secret_label();
        let api_err = |what: &str| {
            let what = format!("{what} {label}");
            move |source| CertError::Api { what, source }
        };
        for _ in 0..ATTEMPTS {
            let existing = api
                .get_opt(&s.secret_name)
                .await
                .map_err(api_err("reading"))?;
            let Some(mut secret) = existing else {
                let bundle = generate_all(&s.dns_names, now, s.ca_validity, s.cert_validity)?;
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(s.secret_name.clone()),
                        namespace: Some(s.secret_namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".to_owned()),
                    data: Some(secret_data(&bundle)),
                    ..Secret::default()
                };
                match api.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = %label, "generated a CA and a serving certificate");
                        continue;
                    }
                    // Another replica created it first: use theirs.
                    Err(e) if is_conflict(&e) => continue,
                    Err(e) => return Err(api_err("creating")(e)),
                }
            };
            let current = bundle_of(&secret);
            let renewed = match assess(&current, &s.dns_names, now, s.lookahead) {
                Verdict::Valid { renew_at } => return Ok((current, renew_at)),
                Verdict::RenewCert(why) => {
                    tracing::info!(secret = %label, reason = %why, "issuing a new serving certificate");
                    let reissued = reissue(&current, &s.dns_names, now, s.cert_validity)?;
                    // A CA made elsewhere (another subject) cannot be reissued from: replace it.
                    match assess(&reissued, &s.dns_names, now, s.lookahead) {
                        Verdict::Valid { .. } => reissued,
                        _ => generate_all(&s.dns_names, now, s.ca_validity, s.cert_validity)?,
                    }
                }
                Verdict::RenewAll(why) => {
                    tracing::info!(secret = %label, reason = %why, "generating a new CA and serving certificate");
                    generate_all(&s.dns_names, now, s.ca_validity, s.cert_validity)?
                }
            };
            secret.data = Some(secret_data(&renewed));
            // The read resourceVersion makes this a compare-and-swap between replicas.
            match api
                .replace(&s.secret_name, &PostParams::default(), &secret)
                .await
            {
                Ok(_) => continue,
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(api_err("updating")(e)),
            }
        }
        Err(CertError::Conflicts(label))
    }

    /// Writes `ca_pem` into every webhook's `clientConfig.caBundle` of the named
    /// configurations (keeping a previous CA that is about to expire anyway, see
    /// [`ca_bundle`]); a configuration that does not exist (yet) is skipped. Returns the names
    /// updated.
    pub async fn inject(&self, ca_pem: &str, now: SystemTime) -> Result<Vec<String>, CertError> {
        let mut updated = Vec::new();
        let bundle = (ca_pem, now, self.settings.lookahead);
        if let Some(name) = &self.settings.validating_webhook {
            let api: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
            let changed = inject_into(&api, name, |c: &mut ValidatingWebhookConfiguration| {
                set_bundles(
                    c.webhooks
                        .iter_mut()
                        .flatten()
                        .map(|w| &mut w.client_config.ca_bundle),
                    bundle,
                )
            })
            .await?;
            if changed {
                updated.push(format!("ValidatingWebhookConfiguration {name}"));
            }
        }
        if let Some(name) = &self.settings.mutating_webhook {
            let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
            let changed = inject_into(&api, name, |c: &mut MutatingWebhookConfiguration| {
                set_bundles(
                    c.webhooks
                        .iter_mut()
                        .flatten()
                        .map(|w| &mut w.client_config.ca_bundle),
                    bundle,
                )
            })
            .await?;
            if changed {
                updated.push(format!("MutatingWebhookConfiguration {name}"));
            }
        }
        Ok(updated)
    }

    /// One full pass: Secret, caBundle, files. Returns when the next check is due.
    pub async fn reconcile(&self, now: SystemTime) -> Result<SystemTime, CertError> {
        let (bundle, renew_at) = self.reconcile_secret(now).await?;
        for name in self.inject(&bundle.ca_cert, now).await? {
            tracing::info!(configuration = %name, "CA bundle injected");
        }
        write_files(&self.settings.cert_file, &self.settings.key_file, &bundle)?;
        Ok(renew_at)
    }

    /// Reconciles until it succeeds (retrying every `retry`), so the server starts with a
    /// certificate on disk.
    pub async fn initial(&self, retry: Duration) -> SystemTime {
        loop {
            match self.reconcile(SystemTime::now()).await {
                Ok(renew_at) => return renew_at,
                Err(e) => {
                    tracing::warn!(error = %e, "certificates not ready; retrying");
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }

    /// Reconciles whenever the Secret or a named webhook configuration changes, and when
    /// rotation is due (at most `check_interval` apart); runs until its task is aborted.
    pub async fn run(self, mut renew_at: SystemTime) {
        let s = &self.settings;
        let by_name =
            |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &s.secret_namespace);
        let mut changes = futures_util::stream::select_all(vec![
            watcher(secrets, by_name(&s.secret_name))
                .map(|_| ())
                .boxed(),
        ]);
        if let Some(name) = &s.validating_webhook {
            let api: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
            changes.push(watcher(api, by_name(name)).map(|_| ()).boxed());
        }
        if let Some(name) = &s.mutating_webhook {
            let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
            changes.push(watcher(api, by_name(name)).map(|_| ()).boxed());
        }
        loop {
            let until_due = renew_at
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .min(s.check_interval);
            tokio::select! {
                // Watch errors too: the watcher retries, and a check does no harm.
                _ = changes.next() => {}
                () = tokio::time::sleep(until_due) => {}
            }
            match self.reconcile(SystemTime::now()).await {
                Ok(next) => renew_at = next,
                Err(e) => {
                    tracing::warn!(error = %e, "certificate reconcile failed; retrying");
                    renew_at = SystemTime::now() + Duration::from_secs(5).min(s.check_interval);
                }
            }
        }
    }
}

/// The caBundle to write: the CA, then the one CA of `current` (the bundle there now) that
/// differs from it, has not expired, and expires within `lookahead` — the CA an expiry
/// rotation replaced. Replicas that have not yet reloaded still serve certificates from it,
/// so the API server keeps trusting it until it expires (at most `lookahead`). A CA replaced
/// for any other reason (unreadable, wrong key) is dropped at once.
pub fn ca_bundle(
    ca_pem: &str,
    current: Option<&[u8]>,
    now: SystemTime,
    lookahead: Duration,
) -> Vec<u8> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = ca_pem.trim_end().as_bytes().to_vec();
    out.push(b'\n');
    let new_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).ok();
    let text = current.map(String::from_utf8_lossy).unwrap_or_default();
    // Each PEM block of the current bundle, kept as its text.
    for block in text.split_inclusive(END).filter(|b| b.contains(END)) {
        let Ok(der) = CertificateDer::from_pem_slice(block.as_bytes()) else {
            continue;
        };
        if Some(&der) == new_der.as_ref() {
            continue;
        }
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            continue;
        };
        let not_after = u64::try_from(cert.validity().not_after.timestamp())
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if not_after > now && not_after <= now + lookahead {
            out.extend_from_slice(block.trim().as_bytes());
            out.push(b'\n');
            break;
        }
    }
    out
}

fn set_bundles<'a>(
    slots: impl Iterator<Item = &'a mut Option<ByteString>>,
    (ca_pem, now, lookahead): (&str, SystemTime, Duration),
) -> bool {
    let mut changed = false;
    for slot in slots {
        let desired = ByteString(ca_bundle(
            ca_pem,
            slot.as_ref().map(|b| b.0.as_slice()),
            now,
            lookahead,
        ));
        if slot.as_ref() != Some(&desired) {
            *slot = Some(desired);
            changed = true;
        }
    }
    changed
}

async fn inject_into<K>(
    api: &Api<K>,
    name: &str,
    mut set: impl FnMut(&mut K) -> bool,
) -> Result<bool, CertError>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let label = format!("{} {name}", K::kind(&()));
    let api_err = |what: &str| {
        let what = format!("{what} {label}");
        move |source| CertError::Api { what, source }
    };
    for _ in 0..ATTEMPTS {
        let Some(mut config) = api.get_opt(name).await.map_err(api_err("reading"))? else {
            return Ok(false);
        };
        if !set(&mut config) {
            return Ok(false);
        }
        match api.replace(name, &PostParams::default(), &config).await {
            Ok(_) => return Ok(true),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(api_err("updating")(e)),
        }
    }
    Err(CertError::Conflicts(label))
}

fn write_atomic(path: &Path, contents: &str) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.display().to_string(),
        source,
    };
    if std::fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        return Ok(());
    }
    let tmp = path.with_extension("regard-tmp");
    std::fs::write(&tmp, contents).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Writes the serving pair for the TLS reloader: key first, so the reloader never pairs a new
/// certificate with an old key for long (it rejects mismatched pairs and retries anyway).
pub fn write_files(cert_file: &Path, key_file: &Path, bundle: &Bundle) -> Result<(), CertError> {
    for dir in [cert_file.parent(), key_file.parent()]
        .into_iter()
        .flatten()
    {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
                path: dir.display().to_string(),
                source,
            })?;
        }
    }
    write_atomic(key_file, &bundle.key)?;
    write_atomic(cert_file, &bundle.cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn names() -> Vec<String> {
        vec!["regard-webhook.regard-system.svc".to_owned()]
    }

    #[test]
    fn a_fresh_bundle_is_valid_until_the_lookahead() {
        let now = SystemTime::now();
        let bundle = generate_all(&names(), now, 3650 * DAY, 365 * DAY).unwrap();
        assert_eq!(
            assess(&bundle, &names(), now, 90 * DAY),
            Verdict::Valid {
                // Certificates carry whole seconds.
                renew_at: SystemTime::UNIX_EPOCH
                    + Duration::from_secs(
                        (now + 365 * DAY)
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .unwrap()
                            .as_secs()
                    )
                    - 90 * DAY
            }
        );
        assert_eq!(
            assess(&bundle, &names(), now + 300 * DAY, 90 * DAY),
            Verdict::RenewCert(
                "the serving certificate expires within the rotation lookahead".into()
            )
        );
        assert_eq!(
            assess(&bundle, &names(), now + 3600 * DAY, 90 * DAY),
            Verdict::RenewAll("the CA expires within the rotation lookahead".into())
        );
    }

    #[test]
    fn a_reissued_certificate_chains_to_the_same_ca() {
        let now = SystemTime::now();
        let bundle = generate_all(&names(), now, 3650 * DAY, DAY).unwrap();
        let renewed = reissue(&bundle, &names(), now, 365 * DAY).unwrap();
        assert_eq!(renewed.ca_cert, bundle.ca_cert);
        assert_ne!(renewed.cert, bundle.cert);
        assert!(matches!(
            assess(&renewed, &names(), now, 90 * DAY),
            Verdict::Valid { .. }
        ));
    }

    #[test]
    fn the_ca_bundle_keeps_only_a_replaced_ca_that_is_about_to_expire() {
        let now = SystemTime::now();
        let old = generate_all(&names(), now, 100 * DAY, DAY).unwrap();
        let new = generate_all(&names(), now, 3650 * DAY, DAY).unwrap();
        let current = old.ca_cert.as_bytes();
        // Expiring within the lookahead: kept after the new CA.
        assert_eq!(
            String::from_utf8(ca_bundle(&new.ca_cert, Some(current), now, 120 * DAY)).unwrap(),
            format!("{}{}", new.ca_cert, old.ca_cert)
        );
        // Not expiring soon (replaced for another reason), or expired: dropped.
        for (at, lookahead) in [(now, 90 * DAY), (now + 101 * DAY, 120 * DAY)] {
            assert_eq!(
                ca_bundle(&new.ca_cert, Some(current), at, lookahead),
                new.ca_cert.as_bytes()
            );
        }
        // The current CA is not repeated; garbage is ignored.
        assert_eq!(
            ca_bundle(&new.ca_cert, Some(new.ca_cert.as_bytes()), now, 90 * DAY),
            new.ca_cert.as_bytes()
        );
        assert_eq!(
            ca_bundle(
                &new.ca_cert,
                Some(b"-----END CERTIFICATE-----"),
                now,
                90 * DAY
            ),
            new.ca_cert.as_bytes()
        );
    }

    #[test]
    fn wrong_names_keys_and_garbage_are_renewed() {
        let now = SystemTime::now();
        let bundle = generate_all(&names(), now, 3650 * DAY, 365 * DAY).unwrap();
        let other = vec!["other.regard-system.svc".to_owned()];
        assert!(matches!(
            assess(&bundle, &other, now, 90 * DAY),
            Verdict::RenewCert(why) if why.starts_with("serving certificate for other.regard-system.svc:")
        ));
        let swapped = Bundle {
            key: bundle.ca_key.clone(),
            ..bundle.clone()
        };
        assert_eq!(
            assess(&swapped, &names(), now, 90 * DAY),
            Verdict::RenewCert(
                "serving certificate: the key does not belong to the certificate".into()
            )
        );
        let foreign = generate_all(&names(), now, 3650 * DAY, 365 * DAY).unwrap();
        let mixed = Bundle {
            cert: foreign.cert,
            key: foreign.key,
            ..bundle
        };
        assert!(matches!(
            assess(&mixed, &names(), now, 90 * DAY),
            Verdict::RenewCert(_)
        ));
        let empty = Bundle {
            ca_cert: String::new(),
            ca_key: String::new(),
            cert: String::new(),
            key: String::new(),
        };
        assert!(
            matches!(assess(&empty, &names(), now, 90 * DAY), Verdict::RenewAll(why) if why.starts_with("CA: unreadable certificate"))
        );
    }
}
