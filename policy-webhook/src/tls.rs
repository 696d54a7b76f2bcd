//! TLS: builds the rustls server configuration from PEM files and reloads it when they change.
//!
//! Kubernetes updates a mounted Secret by swapping a `..data` symlink, and cert-manager may write
//! the certificate and the key a moment apart, so the reloader re-reads both files whenever the
//! filesystem reports a change in their directories ([`crate::fswatch`], after a short settling
//! delay) and, as a fallback, every interval; when their bytes changed it builds a new
//! configuration. Only a configuration whose
//! key matches its certificate replaces the served one; a bad or half-written pair is logged and
//! counted, the previous configuration keeps serving, and the next change is tried again. Each new
//! connection takes the current configuration, so rotation needs no restart and in-flight
//! connections are untouched.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::config::{TlsFiles, TlsVersion};
use crate::metrics::{Metrics, Outcome, ReloadLabels};

/// Largest PEM file read (certificate chains and CA bundles are a few KiB).
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file has no usable PEM content.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the material (for example a key that does not match the certificate).
    #[error("{0}")]
    Rustls(String),
}

/// The PEM bytes of the configured files, read once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Pems {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Pems {
    fn read(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(Pems {
            cert: read_capped(&files.cert_file)?,
            key: read_capped(&files.key_file)?,
            client_ca: files
                .client_ca_file
                .as_deref()
                .map(read_capped)
                .transpose()?,
        })
    }

    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, TlsError> {
    let err = |source| TlsError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            message: format!("larger than {MAX_PEM_BYTES} bytes"),
        });
    }
    Ok(buf)
}

/// A built server configuration and facts about it.
#[derive(Debug, Clone)]
pub struct Material {
    /// The rustls configuration.
    pub config: Arc<ServerConfig>,
    /// `notAfter` of the leaf certificate, Unix seconds.
    pub not_after: i64,
    /// Hash of the PEM files it was built from.
    fingerprint: u64,
}

/// Builds the rustls configuration from the files.
pub fn load(files: &TlsFiles) -> Result<Material, TlsError> {
    build(files, &Pems::read(files)?)
}

fn build(files: &TlsFiles, pems: &Pems) -> Result<Material, TlsError> {
    let name = |p: &Path| p.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pems.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: name(&files.cert_file),
            message: e.to_string(),
        })?;
    let leaf = chain.first().ok_or_else(|| TlsError::Pem {
        path: name(&files.cert_file),
        message: "no CERTIFICATE block".to_owned(),
    })?;
    let not_after = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| TlsError::Pem {
            path: name(&files.cert_file),
            message: format!("unreadable certificate: {e}"),
        })?
        .1
        .validity()
        .not_after
        .timestamp();
    let key = PrivateKeyDer::from_pem_slice(&pems.key).map_err(|e| TlsError::Pem {
        path: name(&files.key_file),
        message: e.to_string(),
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match files.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (&files.client_ca_file, &pems.client_ca) {
        (Some(path), Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert = cert.map_err(|e| TlsError::Pem {
                    path: name(path),
                    message: e.to_string(),
                })?;
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: name(path),
                    message: e.to_string(),
                })?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem {
                    path: name(path),
                    message: "no CERTIFICATE block".to_owned(),
                });
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Rustls(format!("client CA {}: {e}", name(path))))?;
            match &files.client_cn {
                Some(cn) => builder.with_client_cert_verifier(Arc::new(CommonNameVerifier {
                    inner: verifier,
                    common_name: cn.clone(),
                })),
                None => builder.with_client_cert_verifier(verifier),
            }
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError::Rustls(format!(
            "{} / {}: {e}",
            name(&files.cert_file),
            name(&files.key_file)
        ))
    })?;
    // The API server speaks HTTP/1.1 to webhooks.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Material {
        config: Arc::new(config),
        not_after,
        fingerprint: pems.fingerprint(),
    })
}

/// A client certificate verifier that also requires the certificate's subject common name to
/// be one name, as Gatekeeper's `--client-cn-name` does: a client CA often issues certificates
/// to more clients than the API server. rustls verifies chains, not names, for clients, so this
/// wraps its WebPKI verifier.
#[derive(Debug)]
struct CommonNameVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    common_name: String,
}

impl ClientCertVerifier for CommonNameVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let mut names = cert.subject().iter_common_name();
        let matches = names.any(|cn| cn.as_str().is_ok_and(|cn| cn == self.common_name));
        if matches {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(WrongCommonName(self.common_name.clone()))),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client certificate's subject has another common name than `--client-cn-name`.
#[derive(Debug, thiserror::Error)]
#[error("client certificate common name is not {0:?} (--client-cn-name)")]
struct WrongCommonName(String);

/// The configuration new connections use, swapped atomically on reload.
#[derive(Debug)]
pub struct TlsState {
    current: ArcSwap<ServerConfig>,
}

impl TlsState {
    /// Starts with `material`.
    pub fn new(material: &Material) -> Self {
        TlsState {
            current: ArcSwap::new(material.config.clone()),
        }
    }

    /// The configuration for the next connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    fn replace(&self, material: &Material) {
        self.current.store(material.config.clone());
    }
}

/// Reads the files every `interval`, and soon after `wake` is notified (a filesystem event, see
/// [`crate::fswatch`]), and swaps in a new configuration when they change; runs until its task
/// is aborted.
pub async fn watch(
    files: TlsFiles,
    state: Arc<TlsState>,
    metrics: Arc<Metrics>,
    interval: Duration,
    wake: Arc<tokio::sync::Notify>,
    initial: &Material,
) {
    let mut last_attempt = Some(initial.fingerprint);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        crate::fswatch::next_check(&mut ticker, &wake).await;
        let files_for_read = files.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let pems = Pems::read(&files_for_read)?;
            let fp = pems.fingerprint();
            Ok::<_, TlsError>((fp, pems))
        })
        .await;
        let (fp, pems) = match attempt {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                // Missing files during a symlink swap are normal; report only persistent trouble
                // at debug level and keep serving.
                tracing::debug!(error = %e, "certificate files not readable; keeping current");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "certificate reload task failed");
                continue;
            }
        };
        if last_attempt == Some(fp) {
            continue;
        }
        last_attempt = Some(fp);
        match build(&files, &pems) {
            Ok(material) => {
                state.replace(&material);
                metrics.tls_cert_expiry.set(material.not_after);
                metrics
                    .tls_reloads
                    .get_or_create(&ReloadLabels {
                        result: Outcome::success,
                    })
                    .inc();
                tracing::info!(not_after = material.not_after, "TLS certificate reloaded");
            }
            Err(e) => {
                metrics
                    .tls_reloads
                    .get_or_create(&ReloadLabels {
                        result: Outcome::failure,
                    })
                    .inc();
                tracing::error!(error = %e, "new TLS certificate rejected; keeping the current one");
            }
        }
    }
}
