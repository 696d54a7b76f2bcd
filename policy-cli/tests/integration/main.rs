//! Integration tests: the real `regard` binary on real fixture files under `tests/` at the repo root.

mod gk;
