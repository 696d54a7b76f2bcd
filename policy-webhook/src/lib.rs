//! # policy-webhook
//!
//! `regard-webhook`: a Kubernetes validating admission webhook that answers AdmissionReviews
//! with the same ConstraintTemplates and Constraints `regard gk test` checks in CI. Policy logic
//! lives in `policy-core`'s Gatekeeper framework; this crate adds serving: TLS with certificate
//! hot reload and optional mTLS, the `/v1/admit` and `/v1/admitlabel` handlers, policy hot
//! reload, health, metrics and graceful shutdown.
//!
//! Data flow: [`server`] accepts TLS connections (configuration from [`tls`]) and hands requests
//! to the [`admission`] router, which checks the envelope and evaluates the raw request through
//! the [`review::Reviewer`] currently held by [`policy::PolicyStore`]. From the cluster (only
//! when asked), [`namespaces`] keeps the Namespaces that `namespaceSelector` and
//! `namespaceObject` need, and [`sync`] keeps the objects referential templates read as
//! `data.inventory`. With `--policy-source cluster`, [`controller`] fills the store from the
//! ConstraintTemplates and constraints in the API server instead of [`policy::PolicyWatcher`]'s
//! directory, writes their status, audits the cluster and validates the policy resources at
//! admission.
//! [`mutate`] serves `/v1/mutate` with the mutators of the same policy set.
#![deny(missing_docs)]

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod controller;
mod eval_pool;
pub mod exempt;
pub mod fswatch;
pub mod gatekeeper;
pub mod leader;
pub mod metrics;
pub mod mutate;
pub mod namespaces;
pub mod operations;
pub mod policy;
pub mod remote;
pub mod review;
pub mod server;
pub mod sync;
pub mod tls;
