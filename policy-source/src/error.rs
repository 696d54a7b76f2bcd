//! The one error type of this crate. Every variant names the source (the URL
//! or reference as the user wrote it) or the local path it concerns, so a
//! message read in a CI log says which of several sources failed.

use std::path::PathBuf;

/// Why fetching or publishing a policy bundle failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source string has a scheme this crate does not fetch (`s3::`, `gcs::`, `hg::` …).
    #[error(
        "{url}: unsupported source scheme {scheme:?} (supported: oci://, https://, http://, git::, file://, local paths)"
    )]
    UnknownScheme {
        /// The source as given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// The source could not be parsed (a bad OCI reference, URL or git form).
    #[error("{url}: invalid source: {reason}")]
    InvalidSource {
        /// The source as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry or server has no such tag, digest, repository or file.
    #[error("{url}: not found: {detail}")]
    NotFound {
        /// The source as given.
        url: String,
        /// The server's answer.
        detail: String,
    },
    /// The registry refused the credentials (or asked for some and there were none).
    #[error("{url}: authentication failed: {detail}")]
    Unauthorized {
        /// The source as given.
        url: String,
        /// The server's answer.
        detail: String,
    },
    /// Downloaded content does not hash to the digest that names it.
    #[error("{url}: digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The source as given.
        url: String,
        /// Which blob (layer title or digest).
        what: String,
        /// The digest the manifest names.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// The bundle is larger than `--max-bundle-bytes`.
    #[error("{url}: bundle exceeds the size limit of {limit} bytes (--max-bundle-bytes)")]
    TooLarge {
        /// The source as given.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// An archive entry or layer title would land outside the destination.
    #[error("{url}: refusing entry {entry:?}: {reason}")]
    UnsafePath {
        /// The source as given.
        url: String,
        /// The entry name or layer title.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An archive entry is a symbolic or hard link; links are never extracted.
    #[error("{url}: refusing entry {entry:?}: it is a link to {target:?}{}", if *.escapes { ", outside the destination" } else { "; links are not extracted" })]
    Link {
        /// The source as given.
        url: String,
        /// The entry name.
        entry: String,
        /// The link target.
        target: String,
        /// Whether the target resolves outside the destination.
        escapes: bool,
    },
    /// The archive or layer content is malformed.
    #[error("{url}: bad archive: {detail}")]
    Archive {
        /// The source as given.
        url: String,
        /// The decoder's message.
        detail: String,
    },
    /// Talking to the registry or server failed (connection, TLS, protocol, HTTP status).
    #[error("{url}: {detail}")]
    Transfer {
        /// The source as given.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// `git` failed or could not be run.
    #[error("{url}: git: {detail}")]
    Git {
        /// The source as given.
        url: String,
        /// git's message.
        detail: String,
    },
    /// Reading the Docker config or running a credential helper failed.
    #[error("credentials for {registry}: {detail}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// What went wrong.
        detail: String,
    },
    /// The `--ca-file` could not be read or holds no certificate.
    #[error("CA file {}: {detail}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A local file operation failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// `pull` found the destination entry already present (conftest refuses as well).
    #[error("policy file already exists at {}, refusing to overwrite", path.display())]
    Exists {
        /// The existing path.
        path: PathBuf,
    },
    /// Nothing to push: no Rego or data files under the given paths.
    #[error("nothing to push: no .rego, .json, .yaml or .yml files under {}", paths.join(", "))]
    NothingToPush {
        /// The paths searched.
        paths: Vec<String>,
    },
    /// Nothing to push: no YAML or JSON files under the paths given to `gk push`.
    #[error("nothing to push: no .yaml, .yml or .json files under {}", paths.join(", "))]
    NoManifests {
        /// The paths searched.
        paths: Vec<String>,
    },
}

impl Error {
    /// Wraps an IO error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
