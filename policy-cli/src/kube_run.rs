//! The Kubernetes schema and deprecated-API checks of `regard test` and
//! `regard gk test`: builds a `KubeChecker` from the resolved settings, teaches
//! it the CRDs among the inputs and under `--crd-dir`, and returns its results
//! (namespaces `schema` and `deprecated-api`) for the caller to render.

use anyhow::{Context, Result};
use policy_core::conftest::CheckResult;
use policy_core::kube::{KubeChecker, KubeFile, KubeOptions};

/// Resolved `--kube-version` and friends.
#[derive(Debug, Clone)]
pub(crate) struct KubeSettings {
    pub(crate) options: KubeOptions,
    pub(crate) crd_dirs: Vec<String>,
    /// The checks were turned on by default: say so on stderr.
    pub(crate) announce: bool,
}

/// Runs the checks over `files`.
pub(crate) fn check(settings: &KubeSettings, files: &[KubeFile<'_>]) -> Result<Vec<CheckResult>> {
    let options = &settings.options;
    if settings.announce {
        let what = match (options.schema, options.deprecations) {
            (true, true) => "schemas and deprecated APIs",
            (true, false) => "schemas",
            _ => "deprecated APIs",
        };
        eprintln!(
            "regard: checking Kubernetes {what} for {} (--kube-version none turns this off)",
            options.version
        );
    }
    let mut checker = KubeChecker::new(options.clone())?;
    for dir in &settings.crd_dirs {
        checker
            .add_crd_dir(std::path::Path::new(dir))
            .with_context(|| format!("--crd-dir {dir}"))?;
    }
    for file in files {
        checker.add_crds(&file.documents);
    }
    Ok(checker.check(files))
}
