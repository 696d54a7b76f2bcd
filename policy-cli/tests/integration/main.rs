//! Integration tests: the real `regard` binary on real fixture files under
//! `tests/` at the repository root. One test binary, one module per area.

mod compat;
mod distribution;
mod doc;
mod gk;
mod gk_push;
mod gk_vap;
mod kube;
mod mutate;
mod parse;
mod plugins;
mod policies;
mod registry;
mod sources;
mod test_cmd;
mod util;
mod verify;
