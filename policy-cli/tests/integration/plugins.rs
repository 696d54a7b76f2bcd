//! conftest plugins: `regard plugin install DIR` and `regard NAME ARGS…`.

use crate::util::{Run, assert_text, fixtures};

/// `regard ARGS` with the plugin cache under `data` (as `$XDG_DATA_HOME`).
fn regard_with(data: &std::path::Path, args: &[&str]) -> crate::util::Output {
    Run::new(".", args)
        .env("XDG_DATA_HOME", &data.to_string_lossy())
        .env("XDG_DATA_DIRS", "/nonexistent")
        .output()
}

#[test]
fn installed_plugins_run_with_their_own_exit_status() {
    let data = tempfile::tempdir().expect("tempdir");
    let source = fixtures().join("plugins/count");
    let out = regard_with(
        data.path(),
        &["plugin", "install", &source.to_string_lossy()],
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    let installed = data.path().join(".conftest/plugins/count");
    assert!(installed.join("plugin.yaml").is_file());

    // The manifest's own arguments come first; flags are the plugin's.
    let out = regard_with(data.path(), &["count", "a", "--policy", "b c"]);
    assert_eq!(out.code, 4);
    assert_text(
        "count: 4 arguments: --from-plugin a --policy b c\n",
        &out.stdout,
    );
    let out = regard_with(data.path(), &["count"]);
    assert_eq!(out.code, 1);
    assert_text("count: 1 arguments: --from-plugin\n", &out.stdout);

    // Installing again replaces the plugin's directory.
    std::fs::write(installed.join("stale.txt"), "old").expect("write");
    let out = regard_with(
        data.path(),
        &["plugin", "install", &source.to_string_lossy()],
    );
    assert_eq!(out.code, 0);
    assert!(!installed.join("stale.txt").exists());

    let out = regard_with(data.path(), &["counter"]);
    assert_eq!(out.code, 1);
    assert_text(
        "Error: unknown command \"counter\": not a regard command or an installed plugin\n",
        &out.stderr,
    );
}

#[test]
fn a_directory_without_a_manifest_is_no_plugin() {
    let data = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let out = regard_with(
        data.path(),
        &["plugin", "install", &empty.path().to_string_lossy()],
    );
    assert_eq!(out.code, 1);
    assert_text(
        &format!(
            "Error: reading {}/plugin.yaml: No such file or directory (os error 2)\n",
            empty.path().display()
        ),
        &out.stderr,
    );
    let named = tempfile::tempdir().expect("tempdir");
    std::fs::write(named.path().join("plugin.yaml"), "name: ../x\ncommand: x\n").expect("write");
    let out = regard_with(
        data.path(),
        &["plugin", "install", &named.path().to_string_lossy()],
    );
    assert_eq!(out.code, 1);
    assert_text(
        &format!(
            "Error: {}/plugin.yaml: plugin name \"../x\" must be a plain file name\n",
            named.path().display()
        ),
        &out.stderr,
    );
}
