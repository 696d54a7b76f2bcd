//! The OPA-compatibility compile stage: checks and rewrites, run on the
//! parsed modules of every policy set, that make regorus accept, reject and
//! read Rego as OPA's compiler does.

pub mod capabilities;
pub mod strict;
