//! Turning a source string into a [`Source`], the way conftest (go-getter
//! plus conftest's OCI detector) reads it: `localhost` becomes `127.0.0.1`,
//! a `getter::` prefix forces the getter, a `//subdir` suffix selects a
//! directory, and a string without a scheme is tried as a well-known or
//! loopback registry, an scp-style or GitHub git address, and finally a
//! local path.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where a bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An OCI artifact: `registry/repository[:tag|@digest]` (no scheme).
    Oci {
        /// The reference with `:latest` added when it names no tag or digest.
        reference: String,
    },
    /// A file or archive served over HTTP(S).
    Http {
        /// The URL without go-getter's `//subdir` and `archive`/`filename` parameters.
        url: String,
        /// What the download is.
        kind: HttpKind,
        /// The directory inside an archive to keep.
        subdir: Option<String>,
    },
    /// A git repository, cloned with the system `git`.
    Git {
        /// What `git clone` is given.
        repository: String,
        /// The directory inside the repository to keep.
        subdir: Option<String>,
        /// `?ref=`: a branch, tag or commit.
        reference: Option<String>,
    },
    /// A file or directory on this machine.
    Local {
        /// The path.
        path: PathBuf,
        /// The directory inside it to keep.
        subdir: Option<String>,
    },
}

/// What an HTTP source holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpKind {
    /// A gzip-compressed tar archive (`.tar.gz`, `.tgz`).
    TarGz,
    /// An uncompressed tar archive (`.tar`).
    Tar,
    /// A zip archive.
    Zip,
    /// One file, saved under this name.
    File(String),
}

/// Registries conftest's detector recognises without an `oci://` prefix.
const OCI_HOST_PATTERNS: &[&str] = &[
    r"azurecr\.io",
    r"gcr\.io",
    r"registry\.gitlab\.com",
    r"pkg\.dev",
    r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]*\.amazonaws\.com",
    r"^quay\.io",
    r"(::1|127\.0\.0\.1|localhost):[0-9]{1,5}",
];

impl Source {
    /// Reads a source string.
    ///
    /// ```
    /// use policy_source::{HttpKind, Source};
    /// assert_eq!(
    ///     Source::detect("localhost:5000/team/policies").unwrap(),
    ///     Source::Oci { reference: "127.0.0.1:5000/team/policies:latest".into() }
    /// );
    /// assert_eq!(
    ///     Source::detect("https://example.com/b.tar.gz//policy").unwrap(),
    ///     Source::Http {
    ///         url: "https://example.com/b.tar.gz".into(),
    ///         kind: HttpKind::TarGz,
    ///         subdir: Some("policy".into()),
    ///     }
    /// );
    /// ```
    pub fn detect(raw: &str) -> Result<Source> {
        let invalid = |reason: &str| Error::InvalidSource {
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        if raw.trim().is_empty() {
            return Err(invalid("empty source"));
        }
        let text = raw.replace("localhost", "127.0.0.1");
        let (forced, rest) = split_forced(&text);
        let (rest, subdir) = split_subdir(rest);
        let rest = rest.as_str();
        if let Some(forced) = forced {
            return match forced {
                "git" => git_source(raw, rest, subdir),
                "oci" => oci_source(raw, rest.strip_prefix("oci://").unwrap_or(rest)),
                "file" => Ok(local_source(
                    rest.strip_prefix("file://").unwrap_or(rest),
                    subdir,
                )),
                "http" | "https" => http_source(raw, rest, subdir),
                other => Err(Error::UnknownScheme {
                    url: raw.to_owned(),
                    scheme: other.to_owned(),
                }),
            };
        }
        if let Some((scheme, after)) = rest.split_once("://") {
            return match scheme {
                "oci" => oci_source(raw, after),
                "https" | "http" => http_source(raw, rest, subdir),
                "git" | "ssh" => git_source(raw, rest, subdir),
                "file" => Ok(local_source(after, subdir)),
                other => Err(Error::UnknownScheme {
                    url: raw.to_owned(),
                    scheme: other.to_owned(),
                }),
            };
        }
        if OCI_HOST_PATTERNS
            .iter()
            .any(|p| regex::Regex::new(p).is_ok_and(|re| re.is_match(rest)))
        {
            return oci_source(raw, rest);
        }
        if let Some(path) = rest.strip_prefix("git@") {
            // scp-style `git@host:owner/repo.git`
            if path.contains(':') {
                return git_source(
                    raw,
                    &format!("ssh://git@{}", path.replacen(':', "/", 1)),
                    subdir,
                );
            }
        }
        if rest.starts_with("github.com/") {
            return github_source(raw, rest, subdir);
        }
        Ok(local_source(rest, subdir))
    }

    /// The name conftest checks for an existing entry before a pull: the last
    /// path segment of the source.
    pub fn basename(&self) -> String {
        let text = match self {
            Source::Oci { reference } => reference.as_str(),
            Source::Http { url, kind, .. } => match kind {
                HttpKind::File(name) => name.as_str(),
                _ => url.as_str(),
            },
            Source::Git { repository, .. } => repository.as_str(),
            Source::Local { path, .. } => return base_of(&path.to_string_lossy()),
        };
        base_of(text.split('?').next().unwrap_or(text))
    }
}

fn base_of(text: &str) -> String {
    text.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(text)
        .to_owned()
}

/// Splits go-getter's `getter::` prefix off (`git::https://…`).
fn split_forced(text: &str) -> (Option<&str>, &str) {
    if let Some((head, tail)) = text.split_once("::")
        && !head.is_empty()
        && head.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return (Some(head), tail);
    }
    (None, text)
}

/// Splits go-getter's `//subdir` off: the first `//` after the scheme's `://`,
/// before any query string, which stays with the source.
fn split_subdir(text: &str) -> (String, Option<String>) {
    let (main, query) = match text.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (text, None),
    };
    let start = main.find("://").map_or(0, |i| i + 3);
    let Some(rel) = main.get(start..).and_then(|tail| tail.find("//")) else {
        return (text.to_owned(), None);
    };
    let cut = start + rel;
    let (head, sub) = (
        main.get(..cut).unwrap_or(main),
        main.get(cut + 2..).unwrap_or(""),
    );
    let head = match query {
        Some(q) => format!("{head}?{q}"),
        None => head.to_owned(),
    };
    let sub = sub.trim_matches('/');
    (head, (!sub.is_empty()).then(|| sub.to_owned()))
}

fn oci_source(raw: &str, reference: &str) -> Result<Source> {
    let reference = reference.trim_end_matches('/');
    let Some((_, last)) = reference.rsplit_once('/') else {
        return Err(Error::InvalidSource {
            url: raw.to_owned(),
            reason: "not a valid registry reference: it needs REGISTRY/REPOSITORY".to_owned(),
        });
    };
    let reference = if last.contains(':') || last.contains('@') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    };
    oci_client::Reference::try_from(reference.as_str()).map_err(|e| Error::InvalidSource {
        url: raw.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Source::Oci { reference })
}

fn http_source(raw: &str, url: &str, subdir: Option<String>) -> Result<Source> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut archive = None;
    let mut filename = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("archive", v)) => archive = Some(v.to_owned()),
            Some(("filename", v)) => filename = Some(v.to_owned()),
            _ => kept.push(pair),
        }
    }
    let clean = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let lower = base.to_ascii_lowercase();
    let kind = match archive.as_deref() {
        Some("tar.gz" | "tgz") => HttpKind::TarGz,
        Some("tar") => HttpKind::Tar,
        Some("zip") => HttpKind::Zip,
        Some("false") | None if archive.is_some() || !is_archive_name(&lower) => {
            let name = filename.unwrap_or_else(|| base_of(base));
            if name.is_empty() || name == "." || name == ".." || name.contains('\\') {
                return Err(Error::InvalidSource {
                    url: raw.to_owned(),
                    reason: "cannot tell the file name; add ?filename=NAME".to_owned(),
                });
            }
            HttpKind::File(name)
        }
        None if lower.ends_with(".zip") => HttpKind::Zip,
        None if lower.ends_with(".tar") => HttpKind::Tar,
        None => HttpKind::TarGz,
        Some(other) => {
            return Err(Error::InvalidSource {
                url: raw.to_owned(),
                reason: format!(
                    "unsupported archive type {other:?} (tar.gz, tgz, tar, zip, false)"
                ),
            });
        }
    };
    Ok(Source::Http {
        url: clean,
        kind,
        subdir,
    })
}

fn is_archive_name(lower: &str) -> bool {
    [".tar.gz", ".tgz", ".tar", ".zip"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// go-getter's GitHub shorthand: `github.com/OWNER/REPO[/DIR…][?ref=R]` is
/// the repository `https://github.com/OWNER/REPO.git` and, past the third
/// segment, a subdirectory (`github.com/o/r/contrib/x` is `…/r.git//contrib/x`).
fn github_source(raw: &str, rest: &str, subdir: Option<String>) -> Result<Source> {
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let (repo, below) = parts.split_at(parts.len().min(3));
    if repo.len() < 3 {
        return Err(Error::InvalidSource {
            url: raw.to_owned(),
            reason: "GitHub sources are github.com/OWNER/REPO".to_owned(),
        });
    }
    let mut url = format!("https://{}", repo.join("/"));
    if !url.ends_with(".git") {
        url.push_str(".git");
    }
    if let Some(q) = query {
        url = format!("{url}?{q}");
    }
    let below = below.join("/");
    let below = below.trim_matches('/');
    let subdir = match (below.is_empty(), subdir) {
        (true, subdir) => subdir,
        (false, None) => Some(below.to_owned()),
        (false, Some(sub)) => Some(format!("{below}/{sub}")),
    };
    git_source(raw, &url, subdir)
}

fn git_source(raw: &str, url: &str, subdir: Option<String>) -> Result<Source> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut reference = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("ref", v)) if !v.is_empty() => reference = Some(v.to_owned()),
            Some(("depth" | "sshkey", _)) => {}
            _ => {
                return Err(Error::InvalidSource {
                    url: raw.to_owned(),
                    reason: format!("unsupported git parameter {pair:?} (ref= is supported)"),
                });
            }
        }
    }
    if base.is_empty() {
        return Err(Error::InvalidSource {
            url: raw.to_owned(),
            reason: "empty git repository".to_owned(),
        });
    }
    // A ref starting with `-` would reach git as an option.
    if reference.as_deref().is_some_and(|r| r.starts_with('-')) || base.starts_with('-') {
        return Err(Error::InvalidSource {
            url: raw.to_owned(),
            reason: "git repository and ref must not start with '-'".to_owned(),
        });
    }
    Ok(Source::Git {
        repository: base.to_owned(),
        subdir,
        reference,
    })
}

fn local_source(path: &str, subdir: Option<String>) -> Source {
    Source::Local {
        path: PathBuf::from(path),
        subdir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(r: &str) -> Source {
        Source::Oci {
            reference: r.to_owned(),
        }
    }

    #[test]
    fn oci_forms() {
        assert_eq!(
            Source::detect("oci://ghcr.io/o/p:v1").ok(),
            Some(oci("ghcr.io/o/p:v1"))
        );
        assert_eq!(
            Source::detect("oci://ghcr.io/o/p").ok(),
            Some(oci("ghcr.io/o/p:latest"))
        );
        assert_eq!(
            Source::detect("127.0.0.1:5000/p@sha256:0123456789012345678901234567890123456789012345678901234567890123").ok(),
            Some(oci("127.0.0.1:5000/p@sha256:0123456789012345678901234567890123456789012345678901234567890123"))
        );
        assert_eq!(
            Source::detect("myacr.azurecr.io/team/policy:v3").ok(),
            Some(oci("myacr.azurecr.io/team/policy:v3"))
        );
        // Docker Hub and unknown hosts need oci:// (conftest treats them as paths).
        assert_eq!(
            Source::detect("registry.example:5000/p:v1").ok(),
            Some(Source::Local {
                path: "registry.example:5000/p:v1".into(),
                subdir: None
            })
        );
    }

    #[test]
    fn oci_without_repository() {
        let err = Source::detect("oci://ghcr.io").map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "oci://ghcr.io: invalid source: not a valid registry reference: it needs REGISTRY/REPOSITORY"
        );
    }

    #[test]
    fn http_forms() {
        assert_eq!(
            Source::detect("https://h/x/deny.rego").ok(),
            Some(Source::Http {
                url: "https://h/x/deny.rego".into(),
                kind: HttpKind::File("deny.rego".into()),
                subdir: None
            })
        );
        assert_eq!(
            Source::detect("https://h/x/get?archive=zip&token=1").ok(),
            Some(Source::Http {
                url: "https://h/x/get?token=1".into(),
                kind: HttpKind::Zip,
                subdir: None
            })
        );
        assert_eq!(
            Source::detect("https://h/x/raw?filename=a.rego").ok(),
            Some(Source::Http {
                url: "https://h/x/raw".into(),
                kind: HttpKind::File("a.rego".into()),
                subdir: None
            })
        );
    }

    #[test]
    fn git_forms() {
        assert_eq!(
            Source::detect("git::https://h/r.git//policy/k8s?ref=v2").ok(),
            Some(Source::Git {
                repository: "https://h/r.git".into(),
                subdir: Some("policy/k8s".into()),
                reference: Some("v2".into())
            })
        );
        assert_eq!(
            Source::detect("git::file:///srv/repo.git").ok(),
            Some(Source::Git {
                repository: "file:///srv/repo.git".into(),
                subdir: None,
                reference: None
            })
        );
        assert_eq!(
            Source::detect("git@github.com:o/r.git").ok(),
            Some(Source::Git {
                repository: "ssh://git@github.com/o/r.git".into(),
                subdir: None,
                reference: None
            })
        );
        // GitHub shorthand: the path past OWNER/REPO is a subdirectory.
        assert_eq!(
            Source::detect("github.com/o/r/contrib/plugins/x").ok(),
            Some(Source::Git {
                repository: "https://github.com/o/r.git".into(),
                subdir: Some("contrib/plugins/x".into()),
                reference: None
            })
        );
        assert_eq!(
            Source::detect("github.com/o/r.git//policy?ref=v1").ok(),
            Some(Source::Git {
                repository: "https://github.com/o/r.git".into(),
                subdir: Some("policy".into()),
                reference: Some("v1".into())
            })
        );
        assert_eq!(
            Source::detect("github.com/o")
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "github.com/o: invalid source: GitHub sources are github.com/OWNER/REPO"
        );
        let err = Source::detect("git::https://h/r.git?ref=--upload-pack=x")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "git::https://h/r.git?ref=--upload-pack=x: invalid source: git repository and ref must not start with '-'"
        );
    }

    #[test]
    fn unknown_schemes() {
        for (src, scheme) in [
            ("s3::https://b/k", "s3"),
            ("gcs://b/k", "gcs"),
            ("ftp://h/p", "ftp"),
        ] {
            let err = Source::detect(src).map(|_| ()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{src}: unsupported source scheme {scheme:?} (supported: oci://, https://, http://, git::, file://, local paths)"
                )
            );
        }
    }

    #[test]
    fn local_and_basename() {
        let s = Source::detect("./shared/policy").ok();
        assert_eq!(
            s,
            Some(Source::Local {
                path: "./shared/policy".into(),
                subdir: None
            })
        );
        assert_eq!(s.map(|s| s.basename()).as_deref(), Some("policy"));
        assert_eq!(
            Source::detect("oci://127.0.0.1:5000/team/p:v1")
                .map(|s| s.basename())
                .ok()
                .as_deref(),
            Some("p:v1")
        );
    }
}
