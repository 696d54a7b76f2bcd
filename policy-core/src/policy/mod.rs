//! Loading and compiling Rego policy, and loading `data`.
//!
//! Flow: [`PolicySet::load`] finds the `.rego` files under the policy paths
//! (sorted), reads the data files, and compiles everything once into a
//! prepared regorus [`Engine`]. Evaluators clone that engine per worker (a
//! clone shares the compiled modules and costs well under a microsecond).
//! [`ModuleInfo`] describes what each module defines, for rule discovery.

mod builtins;
mod data;
mod discovery;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use regorus::{Engine, Value};

use crate::error::{Error, Result};

pub(crate) use builtins::sprintf_is_plain;
pub use builtins::{
    bind_policy_dir, record_trace_notes, register_builtins, register_builtins_with,
    register_go_sprintf, take_trace_notes,
};
pub use discovery::{ModuleInfo, RuleInfo};

/// Which Rego syntax the policies are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegoVersion {
    /// Rego v0 (`deny[msg] { ... }`); modules importing `rego.v1` still parse as v1.
    V0,
    /// Rego v1 (`deny contains msg if { ... }`), the default.
    #[default]
    V1,
}

impl std::str::FromStr for RegoVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "v0" | "V0" => Ok(RegoVersion::V0),
            "v1" | "V1" => Ok(RegoVersion::V1),
            other => Err(Error::Config(format!("invalid Rego version: {other}"))),
        }
    }
}

/// How to load a policy set.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Policy files or directories (walked for `*.rego`).
    pub policy_paths: Vec<PathBuf>,
    /// Data files or directories (walked for `.json`, `.yaml`, `.yml`).
    pub data_paths: Vec<PathBuf>,
    /// Syntax of the policies.
    pub rego_version: RegoVersion,
    /// When true a builtin error aborts evaluation (conftest's
    /// `--show-builtin-errors`); otherwise it makes the expression undefined, as OPA does.
    pub strict_builtin_errors: bool,
    /// OPA's strict mode (`--strict`): refuse policies with the errors
    /// [`crate::rego::strict`] finds.
    pub strict: bool,
    /// An OPA capabilities file (`--capabilities`): refuse policies calling
    /// builtins it does not list.
    pub capabilities: Option<PathBuf>,
}

/// Compiled policies and data, ready to evaluate.
#[derive(Debug, Clone)]
pub struct PolicySet {
    engine: Engine,
    modules: Vec<ModuleInfo>,
    /// Whether errors of regard's own builtins abort evaluation (shared
    /// with the extensions registered in `engine`).
    strict_builtins: Arc<AtomicBool>,
}

impl PolicySet {
    /// Loads every `.rego` file under `options.policy_paths` and every data
    /// file under `options.data_paths`.
    pub fn load(options: &LoadOptions) -> Result<PolicySet> {
        let files = find_policy_files(&options.policy_paths)?;
        if files.is_empty() {
            return Err(Error::NoPolicies {
                paths: options
                    .policy_paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        let sources = PolicySet::read_sources(&files)?;
        let mut set = PolicySet::from_sources(sources, options.rego_version)?;
        set.check_compat(options)?;
        set.set_strict_builtin_errors(options.strict_builtin_errors);
        set.add_data_paths(&options.data_paths)?;
        Ok(set)
    }

    /// Compiles policies given as `(file name, source)` pairs.
    ///
    /// ```
    /// use policy_core::policy::{PolicySet, RegoVersion};
    /// let set = PolicySet::from_sources(
    ///     vec![("p.rego".into(), "package main\ndeny contains \"no\" if input.bad\n".into())],
    ///     RegoVersion::V1,
    /// ).unwrap();
    /// assert_eq!(set.packages(), vec!["main".to_owned()]);
    /// ```
    pub fn from_sources(sources: Vec<(String, String)>, version: RegoVersion) -> Result<PolicySet> {
        PolicySet::from_sources_with(sources, version, |_| Ok(()))
    }

    /// Like [`PolicySet::from_sources`], with a hook that configures the
    /// engine (extra builtins, for example) before the policies are added.
    pub fn from_sources_with(
        sources: Vec<(String, String)>,
        version: RegoVersion,
        configure: impl FnOnce(&mut Engine) -> Result<()>,
    ) -> Result<PolicySet> {
        let strict_builtins = Arc::new(AtomicBool::new(false));
        let mut engine = engine_with_flag(version, &strict_builtins)?;
        configure(&mut engine)?;
        for (path, text) in sources {
            let text = bind_policy_dir(&text, &path);
            engine
                .add_policy(path.clone(), text)
                .map_err(|e| Error::Policy {
                    path: PathBuf::from(path),
                    message: e.to_string(),
                })?;
        }
        let modules = discovery::describe(engine.get_modules());
        Ok(PolicySet {
            engine,
            modules,
            strict_builtins,
        })
    }

    /// Runs the OPA-compatibility checks `options` asks for (strict mode,
    /// capabilities) and fails with all their errors together, as OPA does.
    pub fn check_compat(&mut self, options: &LoadOptions) -> Result<()> {
        let modules = self.engine.get_modules();
        let mut errors = Vec::new();
        if options.strict {
            errors.extend(crate::rego::strict::check(modules));
        }
        if let Some(path) = &options.capabilities {
            let caps = crate::rego::capabilities::Capabilities::from_file(path)?;
            errors.extend(caps.check(modules));
        }
        if errors.is_empty() {
            return Ok(());
        }
        errors.sort();
        Err(Error::Compile { errors })
    }

    /// Whether a builtin error aborts evaluation (conftest's
    /// `--show-builtin-errors`) instead of making the expression undefined.
    pub fn set_strict_builtin_errors(&mut self, strict: bool) {
        self.engine.set_strict_builtin_errors(strict);
        self.strict_builtins.store(strict, Ordering::Relaxed);
    }

    /// Reads policy files into `(path, source)` pairs.
    pub fn read_sources(files: &[PathBuf]) -> Result<Vec<(String, String)>> {
        files
            .iter()
            .map(|file| {
                let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
                Ok((
                    file.display().to_string(),
                    crate::input::decode(bytes, file)?,
                ))
            })
            .collect()
    }

    /// Loads data files and directories into `data`, as `--data` does.
    pub fn add_data_paths(&mut self, paths: &[PathBuf]) -> Result<()> {
        for (path, value) in data::load(paths)? {
            self.add_data(&path, value)?;
        }
        Ok(())
    }

    /// Merges a JSON/YAML object into `data`; `path` is only for error messages.
    pub fn add_data(&mut self, path: &Path, value: Value) -> Result<()> {
        self.engine.add_data(value).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// What each loaded module defines, in load order.
    pub fn modules(&self) -> &[ModuleInfo] {
        &self.modules
    }

    /// Distinct package names (without the `data.` prefix), sorted.
    pub fn packages(&self) -> Vec<String> {
        let mut names: Vec<String> = self.modules.iter().map(|m| m.package.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The prepared engine. Clone it to evaluate; the clone is cheap.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A regorus engine with the settings conftest and Gatekeeper parity need:
/// OPA's non-strict builtin errors, gathered `print()` output, and the
/// builtins regorus lacks.
pub fn new_engine(version: RegoVersion) -> Result<Engine> {
    engine_with_flag(version, &Arc::new(AtomicBool::new(false)))
}

fn engine_with_flag(version: RegoVersion, strict_builtins: &Arc<AtomicBool>) -> Result<Engine> {
    let mut engine = Engine::new();
    engine.set_rego_v0(version == RegoVersion::V0);
    engine.set_strict_builtin_errors(false);
    engine.set_gather_prints(true);
    register_builtins_with(&mut engine, strict_builtins)?;
    Ok(engine)
}

/// Every `*.rego` file under the given files and directories: arguments in
/// order, each directory in sorted order, duplicates dropped.
pub fn find_policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if meta.is_file() {
            if !out.contains(root) {
                out.push(root.clone());
            }
            continue;
        }
        for path in crate::input::walk_files(root)? {
            if path.extension().is_some_and(|e| e == "rego") && !out.contains(&path) {
                out.push(path);
            }
        }
    }
    Ok(out)
}
