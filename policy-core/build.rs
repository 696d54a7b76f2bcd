//! Embeds the built-in policy library (`../policies`): every bundle manifest,
//! ConstraintTemplate, default Constraint, SyncSet and mutator file becomes an `include_str!` entry
//! in `$OUT_DIR/library_files.rs`, so the binary carries the library and the
//! files stay the single source.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            // Samples and suites are test data, not part of the library.
            if path.file_name().is_some_and(|n| n == "samples") {
                continue;
            }
            collect(&path, root, out);
        } else if path.file_name().is_some_and(|n| {
            n == "template.yaml"
                || n == "constraint.yaml"
                || n == "syncset.yaml"
                || n == "mutators.yaml"
                || (n == "bundles.yaml" && dir == root)
        }) {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("..").join("policies");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let mut code = String::from(
        "/// (path relative to `policies/`, contents) of every embedded library file.\n",
    );
    code.push_str("pub(crate) static FILES: &[(&str, &str)] = &[\n");
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
        let _ = writeln!(
            code,
            "    ({rel:?}, include_str!({:?})),",
            abs.to_string_lossy()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("library_files.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
