//! Flag defaults from the environment and config files, as conftest reads
//! them: a flag on the command line wins, then `REGARD_<FLAG>` or
//! `CONFTEST_<FLAG>` (upper-case, `-` → `_`), then the key of the same name in
//! `regard.toml` or `conftest.toml` in the working directory (or `--config-file`),
//! then the built-in default.

use std::path::Path;

use anyhow::{Context, Result, bail};
use policy_core::kube::{KubeOptions, KubeVersion, UnknownSchema};
use policy_core::policy::{LoadOptions, RegoVersion};

use crate::cli::{KubeArgs, PolicyArgs};
use crate::output::OutputFormat;

/// The environment and config-file layers below the command line.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    file: Option<toml::Table>,
}

impl Layers {
    /// Reads the config file: `explicit` if given (it must exist), otherwise
    /// `regard.toml` or `conftest.toml` in the working directory if present.
    pub(crate) fn load(explicit: Option<&str>) -> Result<Layers> {
        let path = match explicit {
            Some(p) => Some(Path::new(p).to_path_buf()),
            None => ["regard.toml", "conftest.toml"]
                .iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .map(Path::to_path_buf),
        };
        let Some(path) = path else {
            return Ok(Layers::default());
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let file: toml::Table = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        Ok(Layers { file: Some(file) })
    }

    fn env(key: &str) -> Option<String> {
        let suffix = key.to_ascii_uppercase().replace('-', "_");
        ["REGARD_", "CONFTEST_"]
            .iter()
            .find_map(|prefix| std::env::var(format!("{prefix}{suffix}")).ok())
    }

    fn file_value(&self, key: &str) -> Option<&toml::Value> {
        self.file.as_ref()?.get(key)
    }

    /// A single-valued flag.
    pub(crate) fn string(&self, key: &str, flag: Option<String>) -> Result<Option<String>> {
        if flag.is_some() {
            return Ok(flag);
        }
        if let Some(v) = Self::env(key) {
            return Ok(Some(v));
        }
        match self.file_value(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => bail!(
                "config key {key:?} must be a string, got {}",
                other.type_str()
            ),
        }
    }

    /// A repeatable flag; strings from the environment or config file are
    /// split on commas, as conftest does.
    pub(crate) fn list(&self, key: &str, flag: Vec<String>) -> Result<Vec<String>> {
        if !flag.is_empty() {
            return Ok(flag);
        }
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(v) = Self::env(key) {
            return Ok(split(&v));
        }
        match self.file_value(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(split(s)),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => bail!(
                        "config key {key:?} must hold strings, got {}",
                        other.type_str()
                    ),
                })
                .collect(),
            Some(other) => bail!(
                "config key {key:?} must be a string or a list, got {}",
                other.type_str()
            ),
        }
    }

    /// A boolean flag: its value on the command line (`--x` is true, and
    /// `--x=false` overrides a lower layer), else the lower layers'.
    pub(crate) fn flag(&self, key: &str, flag: Option<bool>) -> Result<bool> {
        if let Some(value) = flag {
            return Ok(value);
        }
        if let Some(v) = Self::env(key) {
            return match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                _ => bail!("environment value for {key:?} must be true or false, got {v:?}"),
            };
        }
        match self.file_value(key) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(other) => bail!(
                "config key {key:?} must be true or false, got {}",
                other.type_str()
            ),
        }
    }
}

impl Layers {
    /// Policy loading settings shared by `test` and `verify`.
    pub(crate) fn load_options(&self, args: PolicyArgs) -> Result<LoadOptions> {
        let mut policy = self.list("policy", args.policy)?;
        if policy.is_empty() {
            policy.push("policy".to_owned());
        }
        let rego_version: RegoVersion = self
            .string("rego-version", args.rego_version)?
            .as_deref()
            .unwrap_or("v1")
            .parse()?;
        Ok(LoadOptions {
            policy_paths: policy.into_iter().map(Into::into).collect(),
            data_paths: self
                .list("data", args.data)?
                .into_iter()
                .map(Into::into)
                .collect(),
            rego_version,
            strict_builtin_errors: self.flag("show-builtin-errors", args.show_builtin_errors)?,
            strict: self.flag("strict", args.strict)?,
            capabilities: self
                .string("capabilities", args.capabilities)?
                .filter(|s| !s.is_empty())
                .map(Into::into),
        })
    }

    /// `-o`, defaulting to stdout.
    pub(crate) fn output_format(&self, flag: Option<String>) -> Result<OutputFormat> {
        OutputFormat::parse(self.string("output", flag)?.as_deref().unwrap_or("stdout"))
    }
}

impl Layers {
    /// The Kubernetes checks to run, if any. `default_on`: run them at the
    /// newest embedded version when no version is configured.
    pub(crate) fn kube_options(
        &self,
        args: KubeArgs,
        default_on: bool,
    ) -> Result<Option<crate::kube_run::KubeSettings>> {
        // regard.toml may spell the key either way.
        let version = match self.string("kube-version", args.kube_version)? {
            Some(v) => Some(v),
            None => self.string("kube_version", None)?,
        };
        let defaulted = version.is_none();
        let version = match version.as_deref().map(str::trim) {
            Some("none") | Some("") => return Ok(None),
            Some(v) => v.parse::<KubeVersion>()?,
            None if default_on => KubeVersion::newest()?,
            None => return Ok(None),
        };
        let unknown = match self
            .string("schema-unknown", args.schema_unknown)?
            .as_deref()
        {
            None | Some("skip") => UnknownSchema::Skip,
            Some("fail") => UnknownSchema::Fail,
            Some(other) => bail!("--schema-unknown must be fail or skip, got {other:?}"),
        };
        let mut options = KubeOptions::new(version);
        options.schema = !self.flag("no-schema", args.no_schema)?;
        options.deprecations = !self.flag("no-deprecations", args.no_deprecations)?;
        options.unknown_schema = unknown;
        if !options.schema && !options.deprecations {
            return Ok(None);
        }
        Ok(Some(crate::kube_run::KubeSettings {
            options,
            crd_dirs: self.list("crd-dir", args.crd_dir)?,
            announce: defaulted,
        }))
    }
}
