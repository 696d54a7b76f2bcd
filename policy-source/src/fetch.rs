//! The non-registry sources: HTTP(S) files and archives, git repositories
//! (cloned with the system `git`), and local files or directories. Each
//! writes into a [`Staging`] directory under the same checks and size limit
//! as a registry pull.

use std::path::Path;
use std::process::Command;

use futures_util::StreamExt as _;

use crate::Options;
use crate::archive::{self, ArchiveKind};
use crate::detect::HttpKind;
use crate::error::{Error, Result};
use crate::oci::error_chain;
use crate::staging::Staging;

/// Downloads `url` and stages it as one file or an unpacked archive.
pub(crate) async fn http(
    raw: &str,
    url: &str,
    kind: &HttpKind,
    opts: &Options,
    staging: &mut Staging,
) -> Result<()> {
    crate::install_crypto();
    let mut builder = reqwest::Client::builder()
        .user_agent("regard")
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(120));
    if let Some(path) = &opts.ca_file {
        let pem = std::fs::read(path).map_err(|e| Error::CaFile {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::CaFile {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    let transfer = |e: reqwest::Error| Error::Transfer {
        url: raw.to_owned(),
        detail: error_chain(&e),
    };
    let client = builder.build().map_err(transfer)?;
    let response = client.get(url).send().await.map_err(transfer)?;
    let status = response.status();
    if !status.is_success() {
        let detail = format!("{url} answered {status}");
        return Err(match status.as_u16() {
            404 | 410 => Error::NotFound {
                url: raw.to_owned(),
                detail,
            },
            401 | 403 => Error::Unauthorized {
                url: raw.to_owned(),
                detail,
            },
            _ => Error::Transfer {
                url: raw.to_owned(),
                detail,
            },
        });
    }
    let limit = staging.remaining();
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(staging.too_large());
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(transfer)?);
        if body.len() as u64 > limit {
            return Err(staging.too_large());
        }
    }
    match kind {
        HttpKind::File(name) => staging.write(name, &body),
        HttpKind::TarGz => archive::extract(ArchiveKind::TarGz, &body, staging, None),
        HttpKind::Tar => archive::extract(ArchiveKind::Tar, &body, staging, None),
        HttpKind::Zip => archive::extract(ArchiveKind::Zip, &body, staging, None),
    }
}

/// Clones `repository` (at `reference`) and stages its files without `.git`.
pub(crate) fn git(
    raw: &str,
    repository: &str,
    reference: Option<&str>,
    staging: &mut Staging,
) -> Result<()> {
    let checkout = tempfile::Builder::new()
        .prefix("regard-git-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let dir = checkout.path().join("repo");
    let fail = |detail: String| Error::Git {
        url: raw.to_owned(),
        detail,
    };
    let run = |args: &[&str], cwd: Option<&Path>| -> Result<()> {
        let mut cmd = Command::new("git");
        cmd.args(args).env("GIT_TERMINAL_PROMPT", "0");
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let out = cmd
            .output()
            .map_err(|e| fail(format!("cannot run git: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
        }
    };
    let dir_str = dir.to_string_lossy().into_owned();
    match reference {
        None => run(
            &[
                "clone", "--quiet", "--depth", "1", "--", repository, &dir_str,
            ],
            None,
        )?,
        Some(r) => {
            // A branch or tag clones shallowly; a commit needs the history.
            let shallow = run(
                &[
                    "clone", "--quiet", "--depth", "1", "--branch", r, "--", repository, &dir_str,
                ],
                None,
            );
            if shallow.is_err() {
                let _ = std::fs::remove_dir_all(&dir);
                run(&["clone", "--quiet", "--", repository, &dir_str], None)?;
                run(&["checkout", "--quiet", r, "--"], Some(&dir))?;
            }
        }
    }
    copy_tree(&dir, staging, true)
}

/// Stages a local file or directory.
pub(crate) fn local(path: &Path, staging: &mut Staging) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            url: staging.url().to_owned(),
            detail: format!("no file or directory {}", path.display()),
        },
        _ => Error::io(path, e),
    })?;
    if meta.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        return staging.write_from(&name, file);
    }
    copy_tree(path, staging, false)
}

/// Copies the regular files under `root` into the staging directory,
/// refusing links (a repository's link to `/etc` must not pull it in).
fn copy_tree(root: &Path, staging: &mut Staging, skip_git: bool) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
            let rel = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if skip_git && rel == ".git" {
                continue;
            }
            if kind.is_symlink() {
                let target = std::fs::read_link(&path)
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let escapes = Path::new(&target).is_absolute()
                    || path
                        .parent()
                        .map(|p| p.join(&target))
                        .and_then(|t| std::fs::canonicalize(t).ok())
                        .zip(std::fs::canonicalize(root).ok())
                        .is_none_or(|(t, r)| !t.starts_with(r));
                return Err(Error::Link {
                    url: staging.url().to_owned(),
                    entry: rel,
                    target,
                    escapes,
                });
            }
            if kind.is_dir() {
                staging.mkdir(&rel)?;
                stack.push(path);
            } else if kind.is_file() {
                let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                staging.write_from(&rel, file)?;
            }
        }
    }
    Ok(())
}
