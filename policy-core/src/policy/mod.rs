//! Loading and compiling Rego policy, and loading `data`.
//!
//! Flow: [`PolicySet::load`] finds the `.rego` files under the policy paths
//! (sorted), reads the data files, and compiles everything once into a
//! prepared regorus [`Engine`]. Evaluators clone that engine per worker (a
//! clone shares the compiled modules and costs well under a microsecond).
//! [`ModuleInfo`] describes what each module defines, for rule discovery.
//!
//! [`PolicySet::load_tests`] loads policies for running their unit tests: it
//! splits duplicate test definitions apart (as OPA runs them), and a file
//! that does not parse or compile is left out and listed as an
//! [`ExcludedFile`] rather than failing the load, so the tests of the other
//! files still run. When everything compiles this costs one parse per file;
//! each failing file costs one more compilation of the rest.

pub(crate) mod builtins;
mod data;
mod discovery;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use regorus::{Engine, Value};

use crate::error::{Error, Result};
use crate::rego::split_tests;
pub use crate::rego::split_tests::SplitTest;

pub(crate) use builtins::rvm as rvm_builtins;
pub use builtins::{
    bind_policy_dir, is_extension, record_trace_notes, register_builtins, register_builtins_for,
    register_builtins_with, register_go_sprintf, take_trace_notes,
};
pub use discovery::{ModuleInfo, RuleInfo, data_ref, ref_text};

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
    /// The Rego version the modules were parsed with.
    version: RegoVersion,
    /// Files left out because they do not compile ([`PolicySet::load_tests`] only).
    excluded: Vec<ExcludedFile>,
    /// Test definitions compiled under internal names ([`PolicySet::load_tests`] only).
    split_tests: Vec<SplitTest>,
}

/// A policy file left out of a test run because it does not parse or compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedFile {
    /// The file.
    pub file: String,
    /// 1-based line the compiler points at in this file, when it does.
    pub line: Option<u32>,
    /// The compiler's message on one line, with its location
    /// (`policy/bad.rego:4:8: unexpected token`).
    pub message: String,
}

impl ExcludedFile {
    fn new(file: &str, compiler_message: &str) -> ExcludedFile {
        if let Some(e) = crate::rego::messages::compile_error(compiler_message)
            && e.file == file
        {
            return ExcludedFile {
                file: file.to_owned(),
                line: Some(e.line),
                message: e.to_string(),
            };
        }
        let line = crate::error::location(compiler_message)
            .filter(|(f, _, _)| *f == file)
            .map(|(_, line, _)| line);
        let text = crate::error::condense(compiler_message);
        let message = if text.starts_with(file) {
            text
        } else {
            format!("{file}: {text}")
        };
        ExcludedFile {
            file: file.to_owned(),
            line,
            message,
        }
    }
}

/// Prepares (compiles) an engine's modules. A panic in the compiler is an
/// error too.
pub(crate) fn compile(engine: &mut Engine) -> std::result::Result<(), String> {
    match crate::guard::catch(|| engine.eval_query("true".to_owned(), false)) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic.to_string()),
    }
}

impl PolicySet {
    /// Loads every `.rego` file under `options.policy_paths` and every data
    /// file under `options.data_paths`.
    pub fn load(options: &LoadOptions) -> Result<PolicySet> {
        let files = find_policy_files(&options.policy_paths)?;
        no_policies_check(&files, options)?;
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
        let texts: Vec<&str> = sources.iter().map(|(_, t)| t.as_str()).collect();
        let mut engine = engine_with_flag(version, &strict_builtins, Some(&texts))?;
        configure(&mut engine)?;
        let modules = stage_and_add(&mut engine, sources, version == RegoVersion::V1)?;
        Ok(PolicySet::loaded(engine, modules, strict_builtins, version))
    }

    /// The set of what `engine` holds, nothing excluded.
    fn loaded(
        engine: Engine,
        modules: Vec<ModuleInfo>,
        strict_builtins: Arc<AtomicBool>,
        version: RegoVersion,
    ) -> PolicySet {
        PolicySet {
            engine,
            modules,
            strict_builtins,
            version,
            excluded: Vec::new(),
            split_tests: Vec::new(),
        }
    }

    /// Like [`PolicySet::from_sources`] without the OPA-compatibility
    /// compile stage: each source goes to regorus as written. For measuring
    /// what the stage costs (`benches/rego_stage.rs`); a policy loaded this
    /// way is not evaluated as OPA evaluates it.
    #[doc(hidden)]
    pub fn from_sources_without_stage(
        sources: Vec<(String, String)>,
        version: RegoVersion,
    ) -> Result<PolicySet> {
        let strict_builtins = Arc::new(AtomicBool::new(false));
        let texts: Vec<&str> = sources.iter().map(|(_, t)| t.as_str()).collect();
        let mut engine = engine_with_flag(version, &strict_builtins, Some(&texts))?;
        for (path, text) in sources {
            engine
                .add_policy(path.clone(), text)
                .map_err(|e| Error::Policy {
                    path: PathBuf::from(path),
                    message: e.to_string(),
                })?;
        }
        let modules = discovery::describe(engine.get_modules());
        Ok(PolicySet::loaded(engine, modules, strict_builtins, version))
    }

    /// Loads policies to run their unit tests, as `verify` does: like
    /// [`PolicySet::load`], but each further definition of a `test_*` rule
    /// becomes a test of its own (see [`crate::rego::split_tests`]), and a
    /// file that does not parse or compile is left out and listed in
    /// [`PolicySet::excluded`] instead of failing the load.
    pub fn load_tests(options: &LoadOptions) -> Result<PolicySet> {
        let files = find_policy_files(&options.policy_paths)?;
        no_policies_check(&files, options)?;
        let sources = PolicySet::read_sources(&files)?;
        let mut set = PolicySet::from_test_sources_with(sources, options.rego_version, |_| Ok(()))?;
        set.check_compat(options)?;
        set.set_strict_builtin_errors(options.strict_builtin_errors);
        set.add_data_paths(&options.data_paths)?;
        Ok(set)
    }

    /// Compiles sources as [`PolicySet::load_tests`] does; `configure` runs
    /// on each engine built (extra builtins, for example).
    ///
    /// ```
    /// use policy_core::policy::{PolicySet, RegoVersion};
    /// let set = PolicySet::from_test_sources_with(
    ///     vec![
    ///         ("bad.rego".into(), "package main\ntest_a if {\n".into()),
    ///         ("good.rego".into(), "package main\ntest_b if true\n".into()),
    ///     ],
    ///     RegoVersion::V1,
    ///     |_| Ok(()),
    /// ).unwrap();
    /// assert_eq!(set.excluded()[0].file, "bad.rego");
    /// assert_eq!(set.modules().len(), 1);
    /// ```
    pub fn from_test_sources_with(
        sources: Vec<(String, String)>,
        version: RegoVersion,
        configure: impl Fn(&mut Engine) -> Result<()>,
    ) -> Result<PolicySet> {
        let rego_v1 = version == RegoVersion::V1;
        let order: Vec<String> = sources.iter().map(|(file, _)| file.clone()).collect();
        let mut excluded: Vec<ExcludedFile> = Vec::new();
        // The OPA-compatibility stage first, file by file; then the split,
        // which needs every module of a package.
        let mut kept = Vec::with_capacity(sources.len());
        for (path, text) in compile_all(sources, rego_v1) {
            match text {
                Ok(text) => kept.push((path, text)),
                Err(e) => excluded.push(ExcludedFile {
                    message: format!("{path}:{e}"),
                    line: Some(e.line),
                    file: path,
                }),
            }
        }
        let annotation_errors = crate::rego::annotate(&mut kept, rego_v1);
        let mut index = 0;
        kept.retain(|(path, _)| {
            let error = annotation_errors.get(index).cloned().flatten();
            index += 1;
            match error {
                Some(e) => {
                    excluded.push(ExcludedFile {
                        message: format!("{path}:{e}"),
                        line: Some(e.line),
                        file: path.clone(),
                    });
                    false
                }
                None => true,
            }
        });
        let mut split = split_tests::split(&mut kept, rego_v1);
        let mut set = loop {
            let (mut set, unparsed) = PolicySet::build(&kept, version, &configure)?;
            for (file, message) in &unparsed {
                excluded.push(ExcludedFile::new(file, message));
            }
            kept.retain(|(file, _)| !unparsed.iter().any(|(f, _)| f == file));
            let Err(message) = compile(&mut set.engine) else {
                break set;
            };
            // The file the message points at, else the first file whose
            // absence lets the rest compile.
            let named = crate::error::location(&message)
                .map(|(file, _, _)| file)
                .filter(|file| kept.iter().any(|(k, _)| k == file))
                .map(str::to_owned);
            let culprit = match named {
                Some(file) => file,
                None => {
                    PolicySet::first_breaking(&kept, version, &configure)?.ok_or_else(|| {
                        Error::Policy {
                            path: kept
                                .first()
                                .map(|(f, _)| f.clone())
                                .unwrap_or_default()
                                .into(),
                            message: message.clone(),
                        }
                    })?
                }
            };
            excluded.push(ExcludedFile::new(&culprit, &message));
            kept.retain(|(file, _)| *file != culprit);
        };
        split.retain(|s| kept.iter().any(|(file, _)| *file == s.file));
        // Excluded files in load order, whichever round found them.
        excluded.sort_by_key(|e| order.iter().position(|f| *f == e.file));
        set.excluded = excluded;
        set.split_tests = split;
        Ok(set)
    }

    /// Adds each source (already through the compatibility stage) to a
    /// fresh engine; files that do not parse are returned with the parser's
    /// message instead.
    fn build(
        sources: &[(String, String)],
        version: RegoVersion,
        configure: &impl Fn(&mut Engine) -> Result<()>,
    ) -> Result<(PolicySet, Vec<(String, String)>)> {
        let strict_builtins = Arc::new(AtomicBool::new(false));
        let texts: Vec<&str> = sources.iter().map(|(_, t)| t.as_str()).collect();
        let mut engine = engine_with_flag(version, &strict_builtins, Some(&texts))?;
        configure(&mut engine)?;
        let mut unparsed = Vec::new();
        for (path, text) in sources {
            let added = crate::guard::catch(|| engine.add_policy(path.clone(), text.clone()));
            match added {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => unparsed.push((path.clone(), e.to_string())),
                Err(panic) => unparsed.push((path.clone(), panic.to_string())),
            }
        }
        let modules = discovery::describe(engine.get_modules());
        Ok((
            PolicySet::loaded(engine, modules, strict_builtins, version),
            unparsed,
        ))
    }

    /// The first file without which the others compile, when the compiler's
    /// message names none of them.
    fn first_breaking(
        sources: &[(String, String)],
        version: RegoVersion,
        configure: &impl Fn(&mut Engine) -> Result<()>,
    ) -> Result<Option<String>> {
        for (i, (file, _)) in sources.iter().enumerate() {
            let rest: Vec<(String, String)> = sources
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, s)| s.clone())
                .collect();
            let (mut set, _) = PolicySet::build(&rest, version, configure)?;
            if compile(&mut set.engine).is_ok() {
                return Ok(Some(file.clone()));
            }
        }
        Ok(None)
    }

    /// Files left out because they do not parse or compile, in load order
    /// ([`PolicySet::load_tests`] only; empty otherwise).
    pub fn excluded(&self) -> &[ExcludedFile] {
        &self.excluded
    }

    /// Test definitions compiled under internal names because their package
    /// already had a test of that name ([`PolicySet::load_tests`] only).
    pub fn split_tests(&self) -> &[SplitTest] {
        &self.split_tests
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

    /// Whether builtin errors abort evaluation (see
    /// [`PolicySet::set_strict_builtin_errors`]).
    pub(crate) fn strict_builtin_errors(&self) -> bool {
        self.strict_builtins.load(Ordering::Relaxed)
    }

    /// The Rego version the modules were parsed with.
    pub fn rego_version(&self) -> RegoVersion {
        self.version
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

    /// The text regard shows for an error regorus reported while compiling
    /// or evaluating this set: OPA's wording (`file:line: kind: message`)
    /// where OPA words the error differently, otherwise regorus' message on
    /// one line.
    ///
    /// ```
    /// use policy_core::policy::{PolicySet, RegoVersion};
    /// let set = PolicySet::from_sources(
    ///     vec![("p.rego".into(), "package t\np := 1\np := 2\n".into())],
    ///     RegoVersion::V1,
    /// ).unwrap();
    /// let err = set.engine().clone().eval_rule("data.t.p".into()).unwrap_err();
    /// assert_eq!(
    ///     set.error_text(&err.to_string()),
    ///     "p.rego:3: eval_conflict_error: complete rules must not produce multiple outputs"
    /// );
    /// ```
    pub fn error_text(&self, message: &str) -> String {
        // Reading the modules needs a mutable engine; a clone is cheap.
        let mut engine = self.engine.clone();
        crate::rego::messages::render(message, engine.get_modules())
    }
}

/// conftest refuses to run without a policy file (`no policies found in …`).
fn no_policies_check(files: &[PathBuf], options: &LoadOptions) -> Result<()> {
    if !files.is_empty() {
        return Ok(());
    }
    Err(Error::NoPolicies {
        paths: options
            .policy_paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// Runs the compile stage over `sources` and adds the prepared modules to
/// `engine`, in order. The stage runs on worker threads (one fewer than the
/// rayon pool's) and on this thread, which adds each module as soon as it
/// and those before it are prepared and stages one itself whenever it would
/// otherwise wait, so the stage's parsing overlaps regorus' own.
/// The whole-set passes need every module and run after; when they change a
/// module (METADATA calls, a function split across files, `with` targets,
/// dynamic `data` refs) the engine is rebuilt from its state before the
/// first module with the final texts. Errors are those of the sequential order: the first stage error,
/// else the first annotation error, else the first error adding a module.
/// Returns what each module defines, described as it is added (this thread
/// would otherwise wait for the stage).
fn stage_and_add(
    engine: &mut Engine,
    sources: Vec<(String, String)>,
    rego_v1: bool,
) -> Result<Vec<ModuleInfo>> {
    // A rayon worker must not block on the channel below (a one-thread pool
    // would never run the stage); there the stage runs first, in parallel.
    let pipelined = rayon::current_thread_index().is_none() && rayon::current_num_threads() > 1;
    let base = engine.clone();
    let n = sources.len();
    let mut staged: Vec<Option<(String, StageResult)>> = (0..n).map(|_| None).collect();
    let mut add_error: Option<Error> = None;
    let mut described: Vec<ModuleInfo> = Vec::with_capacity(n);
    let add = |engine: &mut Engine,
               path: &str,
               text: &str,
               add_error: &mut Option<Error>,
               described: &mut Vec<ModuleInfo>| {
        if add_error.is_some() {
            return;
        }
        match engine.add_policy(path.to_owned(), text.to_owned()) {
            Ok(_) => {
                if let Some(module) = engine.get_modules().last() {
                    described.extend(discovery::describe(std::slice::from_ref(module)));
                }
            }
            Err(e) => {
                *add_error = Some(Error::Policy {
                    path: PathBuf::from(path),
                    message: e.to_string(),
                });
            }
        }
    };
    if pipelined {
        // Workers take modules in order (one counter), so results arrive
        // nearly in order. This thread adds them in order and, whenever
        // the next one is not staged yet, stages the next untaken module
        // itself instead of waiting: adding and staging cost about the
        // same, so both cores stay busy until the end.
        let workers = rayon::current_num_threads().saturating_sub(1).max(1);
        let next_index = std::sync::atomic::AtomicUsize::new(0);
        let take = || next_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stage = |i: usize| {
            sources
                .get(i)
                .map(|(path, text)| crate::rego::compile(&bind_policy_dir(text, path), rego_v1))
        };
        let (tx, rx) = std::sync::mpsc::channel::<(usize, StageResult)>();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                scope.spawn(move || {
                    loop {
                        let i = take();
                        let Some(out) = stage(i) else { break };
                        // The receiver lives until every result is in.
                        let _ = tx.send((i, out));
                    }
                });
            }
            drop(tx);
            let store = |staged: &mut Vec<Option<(String, StageResult)>>, i: usize, out| {
                if let (Some(slot), Some((path, _))) = (staged.get_mut(i), sources.get(i)) {
                    *slot = Some((path.clone(), out));
                }
            };
            let mut next = 0;
            while next < n {
                while let Ok((i, out)) = rx.try_recv() {
                    store(&mut staged, i, out);
                }
                if let Some(Some((path, out))) = staged.get(next) {
                    if let Ok(text) = out {
                        add(engine, path, text, &mut add_error, &mut described);
                    }
                    next += 1;
                    continue;
                }
                let i = take();
                match stage(i) {
                    Some(out) => store(&mut staged, i, out),
                    // Every module is taken: wait for the workers' results
                    // (or, should a worker be gone, stage the next one here).
                    None => match rx.recv() {
                        Ok((i, out)) => store(&mut staged, i, out),
                        Err(_) => {
                            if let Some(out) = stage(next) {
                                store(&mut staged, next, out);
                            }
                        }
                    },
                }
            }
        });
    } else {
        for (i, (path, out)) in compile_all(sources, rego_v1).into_iter().enumerate() {
            if let Ok(text) = &out {
                add(engine, &path, text, &mut add_error, &mut described);
            }
            if let Some(slot) = staged.get_mut(i) {
                *slot = Some((path, out));
            }
        }
    }
    let mut compiled = Vec::with_capacity(n);
    for (path, out) in staged.into_iter().flatten() {
        let text = out.map_err(|e| Error::Compile {
            errors: vec![e.in_file(&path)],
        })?;
        compiled.push((path, text));
    }
    let before: Vec<String> = compiled.iter().map(|(_, t)| t.clone()).collect();
    let annotation_errors = crate::rego::annotate(&mut compiled, rego_v1);
    for ((path, _), e) in compiled.iter().zip(annotation_errors) {
        if let Some(e) = e {
            return Err(Error::Compile {
                errors: vec![e.in_file(path)],
            });
        }
    }
    let changed = compiled
        .iter()
        .zip(&before)
        .any(|((_, now), was)| now != was);
    if changed {
        *engine = base;
        add_error = None;
        described.clear();
        for (path, text) in &compiled {
            add(engine, path, text, &mut add_error, &mut described);
        }
    }
    match add_error {
        Some(e) => Err(e),
        None => Ok(described),
    }
}

type StageResult = std::result::Result<String, crate::rego::CompileError>;

/// Runs every module through the compile stage, in parallel (each module
/// is independent; the stage is mostly parsing), keeping the order.
fn compile_all(
    sources: Vec<(String, String)>,
    rego_v1: bool,
) -> Vec<(
    String,
    std::result::Result<String, crate::rego::CompileError>,
)> {
    use rayon::prelude::*;
    sources
        .into_par_iter()
        .map(|(path, text)| {
            let out = crate::rego::compile(&bind_policy_dir(&text, &path), rego_v1);
            (path, out)
        })
        .collect()
}

/// The source regard compiles for a policy module: the module rewritten by
/// the OPA-compatibility compile stage so that regorus evaluates it as OPA
/// does (see the crate's `rego` module), or the compile error OPA reports.
///
/// ```
/// use policy_core::policy::{opa_compatible_source, RegoVersion};
/// let src = "package t\np[x] { x := 1 } { x := 2 }\n";
/// let out = opa_compatible_source(src, RegoVersion::V0).unwrap();
/// assert_eq!(out, "package t\np[x] { x := 1 } p[x] { x := 2 }\n");
/// ```
pub fn opa_compatible_source(src: &str, version: RegoVersion) -> Result<String> {
    crate::rego::compile(src, version == RegoVersion::V1).map_err(|e| Error::Policy {
        path: PathBuf::from("policy.rego"),
        message: e.to_string(),
    })
}

pub use crate::rego::metadata::Annotated;

/// Every `# METADATA` annotation of a set of policy modules with the path
/// it documents, sorted by path as OPA's flattened annotation set is
/// (what `conftest doc` documents).
///
/// ```
/// use policy_core::policy::{annotations, RegoVersion};
/// let src = "# METADATA\n# title: Checks\npackage main\n\n# METADATA\n# title: No root\ndeny contains \"x\" if false\n";
/// let found = annotations(&[("p.rego".into(), src.into())], RegoVersion::V1).unwrap();
/// let paths: Vec<_> = found.iter().map(|a| a.path.join(".")).collect();
/// assert_eq!(paths, ["main", "main.deny"]);
/// assert_eq!(found[1].annotations["title"], "No root");
/// ```
pub fn annotations(sources: &[(String, String)], version: RegoVersion) -> Result<Vec<Annotated>> {
    crate::rego::metadata::annotated(sources, version == RegoVersion::V1).map_err(|(i, message)| {
        Error::Policy {
            path: PathBuf::from(sources.get(i).map_or("", |(p, _)| p.as_str())),
            message,
        }
    })
}

/// Executes a Go `text/template` over variables given as JSON, with the
/// functions and limits of `strings.render_template`.
///
/// ```
/// let vars = serde_json::json!({"xs": ["a", "b"]});
/// let out = policy_core::policy::render_go_template("{{range .xs}}<{{.}}>{{end}}", &vars).unwrap();
/// assert_eq!(out, "<a><b>");
/// ```
pub fn render_go_template(template: &str, vars: &serde_json::Value) -> Result<String> {
    builtins::template::render_json(template, vars).map_err(|e| Error::Config(e.to_string()))
}

/// A regorus engine with the settings conftest and Gatekeeper parity need:
/// OPA's non-strict builtin errors, gathered `print()` output, and the
/// builtins regorus lacks.
pub fn new_engine(version: RegoVersion) -> Result<Engine> {
    engine_with_flag(version, &Arc::new(AtomicBool::new(false)), None)
}

/// Like [`new_engine`], with only the builtins that `sources`, the
/// policies about to be added, call (see [`register_builtins_for`]).
pub fn new_engine_for(version: RegoVersion, sources: &[&str]) -> Result<Engine> {
    engine_with_flag(version, &Arc::new(AtomicBool::new(false)), Some(sources))
}

fn engine_with_flag(
    version: RegoVersion,
    strict_builtins: &Arc<AtomicBool>,
    sources: Option<&[&str]>,
) -> Result<Engine> {
    let mut engine = Engine::new();
    engine.set_rego_v0(version == RegoVersion::V0);
    engine.set_policy_length_config(crate::rego::length_limits());
    engine.set_strict_builtin_errors(false);
    engine.set_gather_prints(true);
    match sources {
        Some(sources) => register_builtins_for(&mut engine, strict_builtins, sources)?,
        None => register_builtins_with(&mut engine, strict_builtins)?,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
        files
            .iter()
            .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
            .collect()
    }

    fn files(set: &PolicySet) -> Vec<&str> {
        set.modules().iter().map(|m| m.file.as_str()).collect()
    }

    #[test]
    fn test_sources_leave_out_what_does_not_parse_or_compile() {
        // In load order: a parse error, regorus' compile error, an error
        // OPA reports that the compatibility stage finds, and a METADATA
        // block OPA rejects.
        let set = PolicySet::from_test_sources_with(
            sources(&[
                ("a.rego", "package a\ntest_a if true\n"),
                ("parse.rego", "package b\ntest_b if {\n  x :=\n}\n"),
                ("unsafe.rego", "package c\np if {\n  x > 1\n}\n"),
                (
                    "opa.rego",
                    "package e\np if {\n  some i\n  input.a[i]\n  some i\n}\n",
                ),
                (
                    "meta.rego",
                    "package m\n\n# METADATA\n# scope: package\ntest_m if true\n",
                ),
                ("d.rego", "package a\ntest_a if false\n"),
            ]),
            RegoVersion::V1,
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(
            set.excluded(),
            &[
                ExcludedFile {
                    file: "parse.rego".to_owned(),
                    line: Some(3),
                    message: "parse.rego:3:5: expecting `}` while parsing set".to_owned(),
                },
                ExcludedFile {
                    file: "unsafe.rego".to_owned(),
                    line: Some(3),
                    message: "unsafe.rego:3: rego_unsafe_var_error: var x is unsafe".to_owned(),
                },
                ExcludedFile {
                    file: "opa.rego".to_owned(),
                    line: Some(5),
                    message: "opa.rego:5: rego_compile_error: var i declared above".to_owned(),
                },
                ExcludedFile {
                    file: "meta.rego".to_owned(),
                    line: Some(3),
                    message: "meta.rego:3: rego_parse_error: annotation scope 'package' must be applied to package (have rule)".to_owned(),
                },
            ]
        );
        assert_eq!(files(&set), ["a.rego", "d.rego"]);
        assert_eq!(
            set.split_tests(),
            &[SplitTest {
                file: "d.rego".to_owned(),
                package: "a".to_owned(),
                rule: "test_a__01".to_owned(),
                name: "test_a#01".to_owned(),
                line: 2,
            }]
        );
    }

    #[test]
    fn test_sources_that_compile_are_all_kept() {
        let set = PolicySet::from_test_sources_with(
            sources(&[
                ("a.rego", "package a\ntest_a if true\n"),
                ("b.rego", "package b\ntest_b if data.a.test_a\n"),
            ]),
            RegoVersion::V1,
            |_| Ok(()),
        )
        .unwrap();
        assert!(set.excluded().is_empty());
        assert!(set.split_tests().is_empty());
        assert_eq!(files(&set), ["a.rego", "b.rego"]);
    }

    #[test]
    fn the_file_whose_absence_lets_the_rest_compile() {
        let files = sources(&[
            ("a.rego", "package a\ntest_a if true\n"),
            ("b.rego", "package b\np if {\n  y > 1\n}\n"),
            ("c.rego", "package c\ntest_c if true\n"),
        ]);
        let found = PolicySet::first_breaking(&files, RegoVersion::V1, &|_| Ok(())).unwrap();
        assert_eq!(found.as_deref(), Some("b.rego"));
        // Two broken files: leaving out any one is not enough.
        let mut two = files;
        two.push((
            "e.rego".to_owned(),
            "package e\nq if {\n  w > 1\n}\n".to_owned(),
        ));
        assert_eq!(
            PolicySet::first_breaking(&two, RegoVersion::V1, &|_| Ok(())).unwrap(),
            None
        );
    }

    #[test]
    fn compiling_a_set_that_does_not_compile_names_the_file() {
        let set = PolicySet::from_sources(
            sources(&[("u.rego", "package u\np if {\n  z > 1\n}\n")]),
            RegoVersion::V1,
        )
        .unwrap();
        let err = crate::conftest::Checker::new(&set, &crate::conftest::NamespaceSelection::All)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "1 error occurred: u.rego:3: rego_unsafe_var_error: var z is unsafe"
        );
    }
}
