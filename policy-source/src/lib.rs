//! # policy-source
//!
//! Where regard's policies come from when they are not already on disk:
//! OCI registries (artifacts in conftest's layout, and gator's template
//! bundles), HTTPS files and archives, git repositories and local paths,
//! read with conftest's source syntax ([`Source::detect`]). Used by the
//! `regard` CLI (`pull`, `push`, `test --update`, `gk push`, `gk -i`) and by
//! `regard-webhook --bundle`; `policy-core` stays free of network code.
//!
//! Every fetch writes into a temporary directory beside its destination,
//! checking each entry name (no `..`, no absolute paths, no links) and the
//! total size ([`Options::max_bytes`]); only a complete fetch is moved into
//! place, so a failed one leaves the destination as it was.
//!
//! ```no_run
//! # async fn demo() -> Result<(), policy_source::Error> {
//! use policy_source::{Options, PullMode};
//! let pulled = policy_source::pull(
//!     "oci://127.0.0.1:5000/team/policies:v3",
//!     std::path::Path::new("policy"),
//!     PullMode::RefuseExisting,
//!     &Options::default(),
//! )
//! .await?;
//! println!("{} files, manifest {:?}", pulled.files.len(), pulled.digest);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod archive;
mod detect;
mod error;
mod fetch;
pub mod oci;
mod pull_cache;
mod staging;

use std::path::{Path, PathBuf};

pub use detect::{HttpKind, Source};
pub use error::{Error, Result};
pub use pull_cache::{LayerCounts, PullCache};

use staging::Staging;

/// The default of `--max-bundle-bytes`: 100 MiB.
pub const DEFAULT_MAX_BUNDLE_BYTES: u64 = 100 * 1024 * 1024;

/// Settings shared by every fetch and push.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most bytes a bundle may occupy once unpacked (and download).
    pub max_bytes: u64,
    /// Plain HTTP for every registry (conftest's `--tls=false`); loopback
    /// registries use plain HTTP without it.
    pub insecure: bool,
    /// Extra PEM CA certificates trusted beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// The directory of the Docker `config.json` [default: `$DOCKER_CONFIG`, else `~/.docker`].
    pub docker_config: Option<PathBuf>,
    /// What earlier pulls of the same OCI source kept ([`PullCache`]): its
    /// registry client, and the layers, so that only new ones are downloaded.
    pub cache: Option<PullCache>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_bytes: DEFAULT_MAX_BUNDLE_BYTES,
            insecure: false,
            ca_file: None,
            docker_config: None,
            cache: None,
        }
    }
}

/// What happens when the destination already holds the source's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullMode {
    /// `regard pull`: refuse when `<dest>/<source basename>` exists (conftest's rule).
    RefuseExisting,
    /// `regard test --update`: overwrite the files the source brings.
    Overwrite,
}

/// The outcome of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The files written, relative to the destination, sorted.
    pub files: Vec<PathBuf>,
    /// The manifest digest, for OCI sources.
    pub digest: Option<String>,
}

/// A bundle fetched into a temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempBundle {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// The files, relative to [`TempBundle::root`].
    pub files: Vec<PathBuf>,
    /// The manifest digest, for OCI sources.
    pub digest: Option<String>,
}

impl TempBundle {
    /// The directory holding the bundle's files.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The outcome of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The reference pushed to (`:latest` added when no tag was given).
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The layer titles, sorted.
    pub titles: Vec<String>,
}

/// Installs ring as rustls' process-wide crypto provider (the workspace
/// builds rustls without aws-lc). Harmless when one is already installed.
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Fetches `source` into `staging`; returns the manifest digest for OCI.
async fn fetch_into(
    raw: &str,
    source: &Source,
    opts: &Options,
    staging: &mut Staging,
) -> Result<Option<String>> {
    let (digest, subdir) = match source {
        Source::Oci { reference } => {
            let repo =
                oci::Repository::connect(raw, reference, opts, oci_client::RegistryOperation::Pull)
                    .await?;
            (Some(repo.pull(staging, opts.cache.as_ref()).await?), None)
        }
        Source::Http { url, kind, subdir } => {
            fetch::http(raw, url, kind, opts, staging).await?;
            (None, subdir.as_deref())
        }
        Source::Git {
            repository,
            subdir,
            reference,
        } => {
            fetch::git(raw, repository, reference.as_deref(), staging)?;
            (None, subdir.as_deref())
        }
        Source::Local { path, subdir } => {
            fetch::local(path, staging)?;
            (None, subdir.as_deref())
        }
    };
    if let Some(subdir) = subdir {
        staging.select_subdir(subdir)?;
    }
    Ok(digest)
}

/// Pulls `source` into the directory `dest`, keeping the files' relative
/// layout. Nothing is written to `dest` unless the whole fetch succeeded.
pub async fn pull(source: &str, dest: &Path, mode: PullMode, opts: &Options) -> Result<Pulled> {
    let detected = Source::detect(source)?;
    if mode == PullMode::RefuseExisting {
        let existing = dest.join(detected.basename());
        if existing.exists() {
            return Err(Error::Exists { path: existing });
        }
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut staging = Staging::new(&parent, source, opts.max_bytes)?;
    let digest = fetch_into(source, &detected, opts, &mut staging).await?;
    let files = staging.commit(dest)?;
    Ok(Pulled { files, digest })
}

/// Pulls `source` into a new temporary directory (for `gk -i` and the
/// webhook, which read the bundle and let it go).
pub async fn pull_temp(source: &str, opts: &Options) -> Result<TempBundle> {
    let detected = Source::detect(source)?;
    let mut staging = Staging::new(&std::env::temp_dir(), source, opts.max_bytes)?;
    let digest = fetch_into(source, &detected, opts, &mut staging).await?;
    let files = staging.files().cloned().collect();
    let (dir, root) = staging.into_temp();
    Ok(TempBundle {
        _dir: dir,
        root,
        files,
        digest,
    })
}

/// The manifest digest an OCI `source` names now, without downloading the
/// bundle (a HEAD request; a digest reference answers itself).
pub async fn current_digest(source: &str, opts: &Options) -> Result<String> {
    match Source::detect(source)? {
        Source::Oci { reference } => {
            oci::Repository::connect(
                source,
                &reference,
                opts,
                oci_client::RegistryOperation::Pull,
            )
            .await?
            .manifest_digest()
            .await
        }
        _ => Err(Error::InvalidSource {
            url: source.to_owned(),
            reason: "only OCI sources have a digest".to_owned(),
        }),
    }
}

/// Pushes the `.rego` files under `policy` and the data files under `data`
/// to `target` (`[oci://]REGISTRY/REPOSITORY[:TAG]`) in conftest's layout.
/// The caller compiles the policies first, as conftest does.
pub async fn push(
    target: &str,
    policy: &[String],
    data: &[String],
    opts: &Options,
) -> Result<Pushed> {
    if !target
        .strip_prefix("oci://")
        .unwrap_or(target)
        .contains('/')
    {
        return Err(Error::InvalidSource {
            url: target.to_owned(),
            reason: "destination url missing repository".to_owned(),
        });
    }
    let files = oci::bundle_files(policy, data)?;
    push_files(target, files, opts).await
}

/// Pushes the `.yaml`, `.yml` and `.json` files under `paths` (Gatekeeper
/// templates, constraints, mutators, objects, suites) to `target`
/// (`[oci://]REGISTRY/REPOSITORY[:TAG]`) as `oras push REF FILE...` would:
/// one layer per file with [`oci::FILE_LAYER_MEDIA_TYPE`], titled by its
/// path as given, which gator's `--image`, `regard gk -i` and
/// `regard-webhook --bundle` read. The caller checks the documents first.
pub async fn push_gatekeeper(target: &str, paths: &[String], opts: &Options) -> Result<Pushed> {
    let files = oci::gatekeeper_files(paths)?;
    push_files(target, files, opts).await
}

/// The files [`push_gatekeeper`] sends for `paths` (the `.yaml`, `.yml` and
/// `.json` files under them, hidden directories skipped), in title order, so
/// that a caller can check exactly those before pushing.
pub fn gatekeeper_paths(paths: &[String]) -> Result<Vec<PathBuf>> {
    oci::gatekeeper_paths(paths)
}

/// Pushes `files` to `target` in conftest's layout (one layer per file,
/// titled by [`oci::BundleFile::title`], an empty `{}` config).
pub async fn push_files(
    target: &str,
    mut files: Vec<oci::BundleFile>,
    opts: &Options,
) -> Result<Pushed> {
    let bare = target.strip_prefix("oci://").unwrap_or(target);
    let Some((_, last)) = bare.rsplit_once('/') else {
        return Err(Error::InvalidSource {
            url: target.to_owned(),
            reason: "destination url missing repository".to_owned(),
        });
    };
    let reference = if last.contains(':') || last.contains('@') {
        bare.to_owned()
    } else {
        format!("{bare}:latest")
    };
    for f in &files {
        // A title a pull refuses would make an unusable bundle.
        if f.title.starts_with('/') || f.title.split('/').any(|p| p == "..") {
            return Err(Error::UnsafePath {
                url: target.to_owned(),
                entry: f.title.clone(),
                reason: "pulls refuse absolute and `..` titles; push with paths below the working directory".to_owned(),
            });
        }
    }
    files.sort_by(|a, b| a.title.cmp(&b.title));
    let titles = files.iter().map(|f| f.title.clone()).collect();
    let repo = oci::Repository::connect(
        target,
        &reference,
        opts,
        oci_client::RegistryOperation::Push,
    )
    .await?;
    let digest = repo.push(files).await?;
    Ok(Pushed {
        reference,
        digest,
        titles,
    })
}
