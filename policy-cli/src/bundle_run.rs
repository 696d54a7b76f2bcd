//! `regard test` on ConstraintTemplate bundles: choosing and loading the
//! built-in library's bundles (`--bundle baseline`, or the default bundles
//! when no policy is given) and directories of templates and constraints
//! (`--bundle DIR`). Reviewing them in conftest's result shape is
//! `policy_core::conftest::check_bundle`.

use anyhow::{Result, bail};
use policy_core::Value;
use policy_core::gatekeeper::{PolicyBundle, read_document_files};
use policy_core::library;
use policy_core::mutation::MutationSystem;

/// Which bundles a run uses.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    /// Built-in bundle names or directories, as given.
    pub(crate) entries: Vec<String>,
    /// Chosen because no policy was given (announced on stderr).
    pub(crate) implicit: bool,
}

impl Selection {
    /// The library's default bundles.
    pub(crate) fn defaults() -> Result<Selection> {
        Ok(Selection {
            entries: library::default_bundles()?,
            implicit: true,
        })
    }

    /// The line `regard test` prints to stderr when it picked the defaults.
    pub(crate) fn announcement(&self) -> Option<String> {
        self.implicit.then(|| {
            format!(
                "regard: no policy given and no ./policy directory; using the built-in bundles {}",
                self.entries.join(", ")
            )
        })
    }

    /// Compiles the selection: built-in names from the embedded library,
    /// anything else as a directory of templates and constraints.
    /// The mutators among the selection's documents come back beside the bundle.
    pub(crate) fn load(&self) -> Result<(PolicyBundle, Vec<(String, Value)>)> {
        let known: Vec<String> = library::bundles()?.into_iter().map(|b| b.name).collect();
        let (names, dirs): (Vec<&String>, Vec<&String>) =
            self.entries.iter().partition(|e| known.contains(e));
        let mut docs = library::documents(&names)?;
        for dir in dirs {
            if !std::path::Path::new(dir).exists() {
                bail!(
                    "--bundle {dir}: neither a built-in bundle ({}) nor an existing directory",
                    known.join(", ")
                );
            }
            for (source, values) in read_document_files(std::slice::from_ref(dir))? {
                docs.extend(values.into_iter().map(|v| (source.clone(), v)));
            }
        }
        let mutators: Vec<(String, Value)> = docs
            .iter()
            .filter(|(_, d)| MutationSystem::is_mutator(d))
            .cloned()
            .collect();
        let bundle = PolicyBundle::from_documents(docs)?;
        if bundle.constraint_count() == 0
            && bundle.admission_policy_bindings().is_empty()
            && mutators.is_empty()
        {
            bail!("--bundle {}: no Constraints found", self.entries.join(","));
        }
        Ok((bundle, mutators))
    }
}
