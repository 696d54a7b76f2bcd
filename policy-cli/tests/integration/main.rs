//! Integration tests: the real `regard` binary on real fixture files under `tests/`.

mod parse;
