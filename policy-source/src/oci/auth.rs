//! Registry credentials from the Docker config, as docker, oras and conftest
//! read it: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; for a
//! registry, a `credHelpers` entry wins, then the `credsStore` helper, then
//! an inline `auths` entry; nothing found means anonymous access. Helpers are
//! the `docker-credential-NAME` programs, asked with `get` and the registry
//! host on standard input.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The directory holding `config.json`.
fn config_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker"))
}

/// `https://index.docker.io/v1/` and `registry-1.docker.io` are both Docker Hub.
fn normalize(host: &str) -> String {
    let host = host
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_owned(),
        other => other.replace("localhost", "127.0.0.1"),
    }
}

/// The credentials for `registry` (`host[:port]`).
pub(crate) fn registry_auth(registry: &str, explicit_dir: Option<&Path>) -> Result<RegistryAuth> {
    let Some(dir) = config_dir(explicit_dir) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| Error::Credentials {
        registry: registry.to_owned(),
        detail: format!("{}: {e}", path.display()),
    })?;
    let wanted = normalize(registry);
    let helper = config
        .cred_helpers
        .iter()
        .find(|(host, _)| normalize(host) == wanted)
        .map(|(_, h)| h.clone())
        .or(config.creds_store.clone())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper
        && let Some(auth) = ask_helper(&helper, registry)?
    {
        return Ok(auth);
    }
    let Some(entry) = config
        .auths
        .iter()
        .find(|(host, _)| normalize(host) == wanted)
        .map(|(_, e)| e)
    else {
        return Ok(RegistryAuth::Anonymous);
    };
    entry_auth(registry, entry)
}

fn entry_auth(registry: &str, entry: &AuthEntry) -> Result<RegistryAuth> {
    if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Error::Credentials {
                registry: registry.to_owned(),
                detail: "the \"auth\" entry is not base64 of USER:PASSWORD".to_owned(),
            })?;
        let (user, pass) = decoded.split_once(':').ok_or_else(|| Error::Credentials {
            registry: registry.to_owned(),
            detail: "the \"auth\" entry is not base64 of USER:PASSWORD".to_owned(),
        })?;
        return Ok(RegistryAuth::Basic(user.to_owned(), pass.to_owned()));
    }
    if let (Some(user), Some(pass)) = (&entry.username, &entry.password) {
        return Ok(RegistryAuth::Basic(user.clone(), pass.clone()));
    }
    if let Some(token) = &entry.identity_token {
        return Ok(RegistryAuth::Bearer(token.clone()));
    }
    Ok(RegistryAuth::Anonymous)
}

/// Runs `docker-credential-HELPER get`; `None` when the helper has nothing
/// for this registry.
fn ask_helper(helper: &str, registry: &str) -> Result<Option<RegistryAuth>> {
    let program = format!("docker-credential-{helper}");
    let fail = |detail: String| Error::Credentials {
        registry: registry.to_owned(),
        detail: format!("{program}: {detail}"),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helper protocol's answer for "nothing stored here".
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{}{}", stdout.trim(), stderr.trim())));
    }
    let answer: HelperAnswer =
        serde_json::from_str(stdout.trim()).map_err(|e| fail(format!("unreadable answer: {e}")))?;
    if answer.username == "<token>" {
        return Ok(Some(RegistryAuth::Bearer(answer.secret)));
    }
    Ok(Some(RegistryAuth::Basic(answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: RegistryAuth) -> Option<(String, String)> {
        match auth {
            RegistryAuth::Basic(u, p) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn inline_auths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"http://localhost:5000":{"auth":"YWxpY2U6czNjcmV0"},"other:1":{"username":"u","password":"p"}}}"#,
        )
        .unwrap();
        assert_eq!(
            basic(registry_auth("127.0.0.1:5000", Some(dir.path())).unwrap()),
            Some(("alice".to_owned(), "s3cret".to_owned()))
        );
        assert_eq!(
            basic(registry_auth("other:1", Some(dir.path())).unwrap()),
            Some(("u".to_owned(), "p".to_owned()))
        );
        assert!(matches!(
            registry_auth("nobody:1", Some(dir.path())).unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn missing_helper_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers":{"r.example":"regard-test-absent"}}"#,
        )
        .unwrap();
        let err = registry_auth("r.example", Some(dir.path())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "credentials for r.example: docker-credential-regard-test-absent: No such file or directory (os error 2)"
        );
    }
}
