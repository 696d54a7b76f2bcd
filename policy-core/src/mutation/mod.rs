//! Gatekeeper mutation: `Assign`, `AssignMetadata`, `ModifySet` and
//! `AssignImage` (`mutations.gatekeeper.sh`).
//!
//! Mutator documents are read and validated into [`Mutator`]s
//! ([`mutator`]), their `location` paths parsed by [`location`]; a
//! [`MutationSystem`] orders them, disables those whose schemas conflict and
//! applies them to an object until it stops changing ([`system`], one
//! mutator at a time by [`apply`]); [`patch::diff`] turns the before and
//! after into the JSON patch an admission response carries. Matching reuses
//! the constraints' `spec.match` implementation ([`crate::gatekeeper::MatchCriteria`]).

mod apply;
pub mod location;
pub mod mutator;
pub mod patch;
pub mod system;

pub use crate::gatekeeper::SourceType;
pub use location::{ListKey, Location, LocationError, MAX_NODES, PathNode};
pub use mutator::{
    Action, AssignSource, MUTATIONS_GROUP, MutationApplyTo, Mutator, MutatorError, MutatorId,
    MutatorKind, Operation, PathCondition, PathTests, SetOperation,
};
pub use patch::PatchOp;
pub use system::{MutationContext, MutationError, MutationOutcome, MutationSystem, SchemaConflict};
