//! # policy-core
//!
//! Rego policy evaluation for configuration files and Kubernetes admission,
//! built on the [`regorus`] interpreter. It gives conftest's semantics
//! (`deny`/`warn`/`exception` rules, counting, `--combine`) and is the engine
//! behind the `regard` command-line tool.
//!
//! Evaluate a policy against a manifest in a few lines:
//!
//! ```
//! use policy_core::conftest::{Checker, NamespaceSelection};
//! use policy_core::input::Format;
//! use policy_core::policy::{PolicySet, RegoVersion};
//!
//! let policy = r#"
//! package main
//! deny contains msg if {
//!     input.kind == "Deployment"
//!     not input.spec.template.spec.securityContext.runAsNonRoot
//!     msg := sprintf("%s must not run as root", [input.metadata.name])
//! }
//! "#;
//! let policies = PolicySet::from_sources(vec![("policy.rego".into(), policy.into())], RegoVersion::V1)?;
//! let checker = Checker::new(&policies, &NamespaceSelection::default())?;
//! let manifest = "kind: Deployment\nmetadata:\n  name: web\n";
//! let file = policy_core::input::ParsedFile::from_text("deploy.yaml", manifest, Format::Yaml)?;
//! let results = checker.check_files(&[file])?;
//! assert_eq!(results[0].failures[0].msg, "web must not run as root");
//! # Ok::<(), policy_core::Error>(())
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

pub mod backtrace;
pub(crate) mod cel;
pub mod conftest;
mod error;
pub mod gatekeeper;
mod gourl;
pub mod guard;
pub mod input;
pub mod kube;
pub mod library;
pub mod mutation;
pub mod policy;
mod regex_cache;
pub mod rego;
mod rvm;
pub mod vap;

pub use error::{Error, Result};
pub use regorus::Value;
