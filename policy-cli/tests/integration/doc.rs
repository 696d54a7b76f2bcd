//! `regard doc`: Markdown from METADATA annotations (tests/doc).

use crate::util::{Run, assert_text};

fn doc(out: &std::path::Path, args: &[&str]) -> crate::util::Output {
    let out_text = out.to_string_lossy().into_owned();
    let mut all = vec!["doc", "-o", &out_text];
    all.extend_from_slice(args);
    Run::new("doc", &all).output()
}

#[test]
fn sections_follow_the_annotated_paths() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = doc(out_dir.path(), &["./policy"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    // Test files are left out; a nested package is one level deeper.
    assert_text(
        "# images - Image rules\n\n\
         Where container images may come from.\n\n\
         ## images.deny - Trusted registries\n\n\
         Images must come from a registry on the allow list.\n\n\
         Related Resources:\n\n\
         * [The allow list](https://example.org/registries)\n\
         * https://example.org/why\n\n\
         ## images.network - Port rules\n\n\n\n\
         ### images.network.deny - No privileged ports\n\n\n\n",
        &std::fs::read_to_string(out_dir.path().join("policy.md")).expect("policy.md"),
    );
}

#[test]
fn a_go_template_renders_the_sections() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = doc(out_dir.path(), &["-t", "layout.tpl", "./policy/network"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_text(
        "1 images.network (package): Port rules\n2 images.network.deny (rule): No privileged ports\n",
        &std::fs::read_to_string(out_dir.path().join("network.md")).expect("network.md"),
    );
}

#[test]
fn nothing_to_document_is_an_error() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = doc(out_dir.path(), &["layout.tpl"]);
    assert_eq!(out.code, 1);
    assert_text("Error: layout.tpl is not a directory\n", &out.stderr);
    let bare = tempfile::tempdir().expect("tempdir");
    std::fs::write(bare.path().join("a.rego"), "package a\n").expect("write");
    let bare_text = bare.path().to_string_lossy().into_owned();
    let out = doc(out_dir.path(), &[&bare_text]);
    assert_eq!(out.code, 1);
    assert_text(
        &format!("Error: {bare_text}: no annotations found\n"),
        &out.stderr,
    );
}
