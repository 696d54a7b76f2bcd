//! OCI registries through `oci-client`: pulling an artifact into a
//! [`Staging`] directory the way oras' file store does for conftest and
//! gator (a layer titled by `org.opencontainers.image.title` becomes that
//! file; a layer also annotated `io.deis.oras.content.unpack: "true"` is a
//! tar.gz of the directory named by its title), and pushing a bundle in
//! conftest's layout (one layer per Rego or data file, conftest's media
//! types, an empty `{}` config) or, for Gatekeeper, in the layout
//! `oras push REF FILE...` gives gator (one layer per YAML or JSON file
//! with oras' default file media type, the same config). Plain HTTP is used
//! for loopback registries or when asked for; credentials come from the
//! Docker config ([`auth`]).

pub(crate) mod auth;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::archive::{self, ArchiveKind};
use crate::error::{Error, Result};
use crate::staging::Staging;
use crate::{Options, PullCache};

/// conftest's media type for a Rego layer.
pub const POLICY_LAYER_MEDIA_TYPE: &str =
    "application/vnd.cncf.openpolicyagent.policy.layer.v1+rego";
/// conftest's media type for a data (JSON or YAML) layer.
pub const DATA_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.openpolicyagent.data.layer.v1+json";
/// The media type `oras push` gives a file (oras-go's default blob media
/// type): the layers of a Gatekeeper bundle, which gator writes to disk by
/// title whatever their type.
pub const FILE_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// The config media type oras-go v2 gives artifacts without one (conftest's push).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.unknown.config.v1+json";
/// The annotation naming the file a layer holds.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// oras' annotation for a layer that is a tar.gz of a directory.
pub const UNPACK_ANNOTATION: &str = "io.deis.oras.content.unpack";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Parallel blob transfers per artifact.
const PARALLEL: usize = 8;

/// A connected registry repository.
pub(crate) struct Repository {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    url: String,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Whether `registry` (`host[:port]`) is this machine.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if registry.matches(':').count() > 1 {
        registry
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What a client is built from: the protocol, and a hash of the extra CA
/// certificates and of the credentials (the key is compared, never shown).
fn client_key(
    protocol: &ClientProtocol,
    insecure: bool,
    certificates: &[Certificate],
    auth: &RegistryAuth,
) -> String {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut h = DefaultHasher::new();
    for c in certificates {
        c.data.hash(&mut h);
    }
    match auth {
        RegistryAuth::Anonymous => 0u8.hash(&mut h),
        RegistryAuth::Basic(user, password) => (1u8, user, password).hash(&mut h),
        RegistryAuth::Bearer(token) => (2u8, token).hash(&mut h),
    }
    format!("{protocol:?} {insecure} {:016x}", h.finish())
}

fn ca_certificates(opts: &Options) -> Result<Vec<Certificate>> {
    let Some(path) = &opts.ca_file else {
        return Ok(Vec::new());
    };
    let data = std::fs::read(path).map_err(|e| Error::CaFile {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
        return Err(Error::CaFile {
            path: path.clone(),
            detail: "no PEM certificate in the file".to_owned(),
        });
    }
    Ok(vec![Certificate {
        encoding: CertificateEncoding::Pem,
        data,
    }])
}

impl Repository {
    /// Connects to the repository of `reference` for `op`; `url` is the
    /// source as the user wrote it, for messages.
    pub(crate) async fn connect(
        url: &str,
        reference: &str,
        opts: &Options,
        op: RegistryOperation,
    ) -> Result<Repository> {
        crate::install_crypto();
        let reference: Reference =
            reference
                .parse()
                .map_err(|e: oci_client::ParseError| Error::InvalidSource {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?;
        let registry = reference.resolve_registry().to_owned();
        let protocol = if opts.insecure {
            ClientProtocol::Http
        } else if is_loopback(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let auth = auth::registry_auth(&registry, opts.docker_config.as_deref())?;
        // A kept client serves while the settings and credentials it was built with hold
        // (credentials read again each time, so a rotated password builds a new one).
        let certificates = ca_certificates(opts)?;
        let key = client_key(&protocol, opts.insecure, &certificates, &auth);
        let kept = opts.cache.as_ref().and_then(|c| c.client(&key));
        let client = match kept {
            Some(client) => client,
            None => {
                let config = ClientConfig {
                    protocol,
                    extra_root_certificates: certificates,
                    user_agent: "regard",
                    connect_timeout: Some(std::time::Duration::from_secs(30)),
                    read_timeout: Some(std::time::Duration::from_secs(120)),
                    ..ClientConfig::default()
                };
                let client = Client::try_from(config).map_err(|e| map_error(url, e))?;
                client
                    .auth(&reference, &auth, op)
                    .await
                    .map_err(|e| map_error(url, e))?;
                if let Some(cache) = &opts.cache {
                    cache.keep_client(&key, &client);
                }
                client
            }
        };
        Ok(Repository {
            client,
            reference,
            auth,
            url: url.to_owned(),
        })
    }

    /// The digest of the manifest the reference names now (a HEAD request).
    pub(crate) async fn manifest_digest(&self) -> Result<String> {
        if let Some(d) = self.reference.digest() {
            return Ok(d.to_owned());
        }
        self.client
            .fetch_manifest_digest(&self.reference, &self.auth)
            .await
            .map_err(|e| map_error(&self.url, e))
    }

    /// Pulls the artifact into `staging`; returns the manifest digest. With
    /// `cache`, layers it holds are not downloaded again.
    pub(crate) async fn pull(
        &self,
        staging: &mut Staging,
        cache: Option<&PullCache>,
    ) -> Result<String> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(
                &self.reference,
                &self.auth,
                &[MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE],
            )
            .await
            .map_err(|e| map_error(&self.url, e))?;
        let actual = sha256_digest(&bytes);
        if let Some(expected) = self.reference.digest()
            && expected != actual
        {
            return Err(Error::DigestMismatch {
                url: self.url.clone(),
                what: "the manifest".to_owned(),
                expected: expected.to_owned(),
                actual,
            });
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| Error::Transfer {
                url: self.url.clone(),
                detail: format!("not an OCI image manifest: {e}"),
            })?;
        let layers: Vec<(&OciDescriptor, &str)> = manifest
            .layers
            .iter()
            .filter_map(|l| {
                let title = l.annotations.as_ref()?.get(TITLE_ANNOTATION)?;
                Some((l, title.as_str()))
            })
            .collect();
        let mut declared: u64 = 0;
        for (layer, title) in &layers {
            // Check names before downloading anything.
            staging.relative(title)?;
            let size = u64::try_from(layer.size).map_err(|_| Error::Transfer {
                url: self.url.clone(),
                detail: format!("layer {title:?} has a negative size"),
            })?;
            declared = declared.saturating_add(size);
        }
        if declared > staging.remaining() {
            return Err(staging.too_large());
        }
        let blobs: Vec<Arc<Vec<u8>>> =
            futures_util::stream::iter(layers.iter().map(|(l, t)| self.cached_blob(l, t, cache)))
                .buffered(PARALLEL)
                .try_collect()
                .await?;
        for ((layer, title), data) in layers.iter().zip(blobs) {
            let unpack = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(UNPACK_ANNOTATION))
                .is_some_and(|v| v == "true");
            if unpack {
                archive::extract(ArchiveKind::TarGz, &data, staging, Some(title))?;
            } else {
                staging.write(title, &data)?;
            }
        }
        if let Some(cache) = cache {
            cache.finish(layers.iter().map(|(l, _)| l.digest.clone()).collect());
        }
        Ok(digest)
    }

    /// One blob, from `cache` when it holds it, else downloaded (and kept).
    async fn cached_blob(
        &self,
        layer: &OciDescriptor,
        title: &str,
        cache: Option<&PullCache>,
    ) -> Result<Arc<Vec<u8>>> {
        if let Some(data) = cache.and_then(|c| c.get(&layer.digest)) {
            return Ok(data);
        }
        let data = self.blob(layer, title).await?;
        if let Some(cache) = cache {
            cache.insert(&layer.digest, &data);
        }
        Ok(Arc::new(data))
    }

    /// One blob, checked against its descriptor's size and digest.
    async fn blob(&self, layer: &OciDescriptor, title: &str) -> Result<Vec<u8>> {
        let limit = u64::try_from(layer.size).unwrap_or(0);
        let mut stream = self
            .client
            .pull_blob_stream(&self.reference, layer)
            .await
            .map_err(|e| map_error(&self.url, e))?;
        let mut data = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(1 << 20));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.blob_error(title, &layer.digest, e))?;
            data.extend_from_slice(&chunk);
            if data.len() as u64 > limit {
                return Err(Error::Transfer {
                    url: self.url.clone(),
                    detail: format!(
                        "layer {title:?} is larger than its descriptor's {limit} bytes"
                    ),
                });
            }
        }
        let actual = sha256_digest(&data);
        if layer.digest.starts_with("sha256:") && actual != layer.digest {
            return Err(Error::DigestMismatch {
                url: self.url.clone(),
                what: format!("layer {title:?}"),
                expected: layer.digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    fn blob_error(&self, title: &str, digest: &str, e: std::io::Error) -> Error {
        if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<oci_client::errors::DigestError>())
        {
            return Error::DigestMismatch {
                url: self.url.clone(),
                what: format!("layer {title:?}"),
                expected: expected.clone(),
                actual: actual.clone(),
            };
        }
        Error::Transfer {
            url: self.url.clone(),
            detail: format!("reading layer {title:?} ({digest}): {e}"),
        }
    }

    /// Pushes `files` (title, media type, bytes) as a conftest bundle and
    /// tags it; returns the manifest digest.
    pub(crate) async fn push(&self, files: Vec<BundleFile>) -> Result<String> {
        let config = b"{}".to_vec();
        let config_desc = Descriptor::new(CONFIG_MEDIA_TYPE, &config, None);
        let layers: Vec<Descriptor> = files
            .iter()
            .map(|f| Descriptor::new(f.media_type, &f.data, Some(&f.title)))
            .collect();
        let uploads = std::iter::once((config_desc.digest.clone(), config)).chain(
            files
                .into_iter()
                .zip(&layers)
                .map(|(f, d)| (d.digest.clone(), f.data)),
        );
        futures_util::stream::iter(uploads.map(|(digest, data)| async move {
            self.client
                .push_blob(&self.reference, data, &digest)
                .await
                .map(|_| ())
                .map_err(|e| map_error(&self.url, e))
        }))
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
        let manifest = Manifest {
            schema_version: 2,
            config: config_desc,
            layers,
        };
        let body = serde_json::to_vec(&manifest).map_err(|e| Error::Transfer {
            url: self.url.clone(),
            detail: e.to_string(),
        })?;
        let digest = sha256_digest(&body);
        self.client
            .push_manifest_raw(
                &self.reference,
                body,
                reqwest::header::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(|e| map_error(&self.url, e))?;
        Ok(digest)
    }
}

/// One file of a bundle to push.
#[derive(Debug, Clone)]
pub struct BundleFile {
    /// The `org.opencontainers.image.title` annotation: the file's path in the bundle.
    pub title: String,
    /// [`POLICY_LAYER_MEDIA_TYPE`], [`DATA_LAYER_MEDIA_TYPE`] or [`FILE_LAYER_MEDIA_TYPE`].
    pub media_type: &'static str,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// The manifest as oras-go v2 writes it for conftest: no `mediaType`
/// property, no `artifactType`, no annotations.
#[derive(Debug, Serialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u8,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Field order as Go's `ocispec.Descriptor` marshals it.
#[derive(Debug, Serialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Descriptor {
    fn new(media_type: &str, data: &[u8], title: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: sha256_digest(data),
            size: data.len() as u64,
            annotations: title.map(|t| [(TITLE_ANNOTATION.to_owned(), t.to_owned())].into()),
        }
    }
}

pub(crate) fn sha256_digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Maps oci-client's errors onto ours, keeping the server's words.
fn map_error(url: &str, e: OciDistributionError) -> Error {
    let url = url.to_owned();
    match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let detail = envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound,
                ) => Error::NotFound { url, detail },
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => {
                    Error::Unauthorized { url, detail }
                }
                _ => Error::Transfer { url, detail },
            }
        }
        OciDistributionError::UnauthorizedError { url: at } => Error::Unauthorized {
            url,
            detail: format!("{at} answered 401 Unauthorized"),
        },
        OciDistributionError::AuthenticationFailure(detail) => Error::Unauthorized { url, detail },
        OciDistributionError::ImageManifestNotFoundError(detail) => Error::NotFound { url, detail },
        OciDistributionError::ServerError {
            code,
            message,
            url: at,
        } => match code {
            404 => Error::NotFound {
                url,
                detail: format!("{at} answered 404"),
            },
            401 | 403 => Error::Unauthorized {
                url,
                detail: format!("{at} answered {code}"),
            },
            _ => Error::Transfer {
                url,
                detail: format!("{at} answered {code}: {}", message.trim()),
            },
        },
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => Error::DigestMismatch {
            url,
            what: "a blob".to_owned(),
            expected,
            actual,
        },
        OciDistributionError::RequestError(e) => Error::Transfer {
            url,
            detail: error_chain(&e),
        },
        other => Error::Transfer {
            url,
            detail: error_chain(&other),
        },
    }
}

/// An error and its causes, `a: b: c` (reqwest hides the useful part in the chain).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Collects the files `regard push` sends: `.rego` files under the policy
/// paths, `.json`/`.yaml`/`.yml` files under the data paths, titled by
/// their path as given (cleaned, forward slashes), sorted by title.
pub(crate) fn bundle_files(policy: &[String], data: &[String]) -> Result<Vec<BundleFile>> {
    let mut out = Titled::default();
    for p in policy {
        add_files(&mut out, p, &["rego"], POLICY_LAYER_MEDIA_TYPE)?;
    }
    for d in data {
        add_files(&mut out, d, &["json", "yaml", "yml"], DATA_LAYER_MEDIA_TYPE)?;
    }
    if out.is_empty() {
        return Err(Error::NothingToPush {
            paths: policy.iter().chain(data).cloned().collect(),
        });
    }
    Ok(out.into_values().collect())
}

/// Collects the files `regard gk push` sends: the `.yaml`, `.yml` and
/// `.json` files under `paths` (the files gator reads from an image), titled
/// like [`bundle_files`], sorted by title.
pub(crate) fn gatekeeper_files(paths: &[String]) -> Result<Vec<BundleFile>> {
    gatekeeper_paths(paths)?
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            Ok(BundleFile {
                title: clean_title(&path),
                media_type: FILE_LAYER_MEDIA_TYPE,
                data,
            })
        })
        .collect()
}

/// The files [`gatekeeper_files`] would push, as found on disk, in title order.
pub(crate) fn gatekeeper_paths(paths: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = std::collections::BTreeMap::new();
    for p in paths {
        for path in walk(Path::new(p))? {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if GATEKEEPER_EXTENSIONS.contains(&ext) {
                out.entry(clean_title(&path)).or_insert(path);
            }
        }
    }
    if out.is_empty() {
        return Err(Error::NoManifests {
            paths: paths.to_vec(),
        });
    }
    Ok(out.into_values().collect())
}

/// The files gator reads from a bundle.
const GATEKEEPER_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Bundle files by title: a file reached twice is pushed once.
type Titled = std::collections::BTreeMap<String, BundleFile>;

/// Adds the files under `root` whose extension is one of `exts`.
fn add_files(out: &mut Titled, root: &str, exts: &[&str], media_type: &'static str) -> Result<()> {
    for path in walk(Path::new(root))? {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !exts.contains(&ext) {
            continue;
        }
        let title = clean_title(&path);
        if out.contains_key(&title) {
            continue;
        }
        let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        out.insert(
            title.clone(),
            BundleFile {
                title,
                media_type,
                data,
            },
        );
    }
    Ok(())
}

/// Files under `root` (itself if a file), in a stable order; hidden
/// directories (`.git`) are skipped.
fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if meta.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(std::result::Result::ok)
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() && !hidden => stack.push(path),
                Ok(m) if m.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Go's `filepath.Clean` for the relative paths conftest titles layers
/// with, in forward slashes.
fn clean_title(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                if parts.last().is_some_and(|l| l != "..") {
                    parts.pop();
                } else {
                    parts.push("..".to_owned());
                }
            }
            _ => {}
        }
    }
    let rel = parts.join("/");
    if path.is_absolute() {
        format!("/{rel}")
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "localhost:1",
            "[::1]:5000",
            "::1",
            "127.0.0.2",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["ghcr.io", "10.0.0.1:5000", "localhost.example.com:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn manifest_bytes_match_conftest_layout() {
        let files = [BundleFile {
            title: "policy/deny.rego".to_owned(),
            media_type: POLICY_LAYER_MEDIA_TYPE,
            data: b"package main\n".to_vec(),
        }];
        let manifest = Manifest {
            schema_version: 2,
            config: Descriptor::new(CONFIG_MEDIA_TYPE, b"{}", None),
            layers: files
                .iter()
                .map(|f| Descriptor::new(f.media_type, &f.data, Some(&f.title)))
                .collect(),
        };
        assert_eq!(
            serde_json::to_string(&manifest).unwrap(),
            format!(
                concat!(
                    r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.unknown.config.v1+json","#,
                    r#""digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"#,
                    r#""layers":[{{"mediaType":"application/vnd.cncf.openpolicyagent.policy.layer.v1+rego","#,
                    r#""digest":"{}","size":13,"#,
                    r#""annotations":{{"org.opencontainers.image.title":"policy/deny.rego"}}}}]}}"#
                ),
                sha256_digest(b"package main\n")
            )
        );
    }

    #[test]
    fn gatekeeper_files_are_the_yaml_and_json_files_gator_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bundle");
        for (rel, text) in [
            ("template.yaml", "kind: ConstraintTemplate\n"),
            ("samples/constraint.yml", "kind: K8sDemo\n"),
            ("samples/pod.json", "{}"),
            ("README.md", "# notes\n"),
            ("src.rego", "package x\n"),
            (".git/config.yaml", "x: 1\n"),
        ] {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let root = root.to_string_lossy().into_owned();
        let files = gatekeeper_files(std::slice::from_ref(&root)).unwrap();
        let got: Vec<(String, &str, usize)> = files
            .iter()
            .map(|f| {
                let title = f.title.rsplit("bundle/").next().unwrap().to_owned();
                (title, f.media_type, f.data.len())
            })
            .collect();
        let expected = [
            ("samples/constraint.yml", FILE_LAYER_MEDIA_TYPE, 14),
            ("samples/pod.json", FILE_LAYER_MEDIA_TYPE, 2),
            ("template.yaml", FILE_LAYER_MEDIA_TYPE, 25),
        ]
        .map(|(t, m, n)| (t.to_owned(), m, n));
        assert_eq!(got, expected);

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let empty = empty.to_string_lossy().into_owned();
        let err = gatekeeper_files(std::slice::from_ref(&empty)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("nothing to push: no .yaml, .yml or .json files under {empty}")
        );
    }

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(
            clean_title(Path::new("./policy//a/../deny.rego")),
            "policy/deny.rego"
        );
        assert_eq!(
            clean_title(Path::new("../shared/x.rego")),
            "../shared/x.rego"
        );
    }
}
