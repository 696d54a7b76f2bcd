//! conftest's plugins: `regard plugin install SOURCE` and `regard NAME ARGS…`.
//!
//! A plugin is a directory with a `plugin.yaml` (`name`, `version`, `usage`,
//! `description`, `command`). Installing copies it into conftest's plugin
//! cache, `<XDG data dir>/.conftest/plugins/<name>`, so plugins installed by
//! either tool serve both. Running `regard NAME ARGS…` (any name that is not
//! a regard command) runs the plugin's command with `CONFTEST_PLUGIN_DIR`
//! set and `$VARS` expanded, the arguments appended, stdio inherited, and
//! exits with the plugin's own status.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Deserialize;

use crate::source_cmd::{SourceArgs, block_on};

/// `regard plugin`
#[derive(Debug, Args)]
pub(crate) struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Install a plugin from a directory or a URL (https archive, git::, oci://)
    Install {
        /// Directory holding plugin.yaml, or a URL as `regard pull` takes
        #[arg(value_name = "SOURCE")]
        source: String,
        #[command(flatten)]
        source_args: SourceArgs,
    },
}

/// `plugin.yaml`.
#[derive(Debug, Deserialize)]
struct Manifest {
    name: String,
    command: String,
}

/// Runs `regard plugin …`.
pub(crate) fn run(args: &PluginArgs) -> Result<u8> {
    match &args.command {
        PluginCommand::Install {
            source,
            source_args,
        } => {
            install(source, source_args)?;
            Ok(0)
        }
    }
}

/// Reads and checks a plugin directory's `plugin.yaml`.
fn manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("plugin.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    // The name becomes a directory of the cache: one plain component.
    let mut parts = Path::new(&manifest.name).components();
    if !matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    ) {
        bail!(
            "{}: plugin name {:?} must be a plain file name",
            path.display(),
            manifest.name
        );
    }
    if manifest.command.trim().is_empty() {
        bail!("{}: the plugin has no command", path.display());
    }
    Ok(manifest)
}

/// The XDG data directories, preferred first: `$XDG_DATA_HOME` (default
/// `~/.local/share`), then `$XDG_DATA_DIRS` (default `/usr/local/share:/usr/share`).
fn data_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => dirs.push(PathBuf::from(dir)),
        None => dirs.extend(home.map(|h| h.join(".local/share"))),
    }
    let others = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".to_owned());
    dirs.extend(
        others
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
    );
    dirs
}

/// The plugin cache, as conftest finds it: the first data directory that
/// already has `.conftest/plugins`, else the first writable one, else
/// `~/.conftest/plugins`.
fn cache_dir() -> PathBuf {
    let dirs = data_dirs();
    let cache = |d: &Path| d.join(".conftest").join("plugins");
    if let Some(found) = dirs.iter().map(|d| cache(d)).find(|c| c.is_dir()) {
        return found;
    }
    if let Some(writable) = dirs.iter().find(|d| writable(d)) {
        return cache(writable);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    cache(&home)
}

/// Whether a directory can be made in `dir` (conftest's test).
fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".regardcheck-{}", std::process::id()));
    let made = std::fs::create_dir(&probe).is_ok();
    if made {
        let _ = std::fs::remove_dir(&probe);
    }
    made
}

/// Installs a plugin, replacing an installed one of the same name.
fn install(source: &str, source_args: &SourceArgs) -> Result<()> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("creating the plugin directory {}", cache.display()))?;
    let local = Path::new(source.strip_prefix("file://").unwrap_or(source));
    if local.is_dir() {
        let manifest = manifest(local)?;
        let dest = cache.join(&manifest.name);
        replace_dir(local, &dest)?;
        return Ok(());
    }
    let bundle = block_on(policy_source::pull_temp(source, &source_args.options()))?
        .with_context(|| format!("downloading the plugin {source}"))?;
    let manifest = manifest(bundle.root())?;
    let dest = cache.join(&manifest.name);
    replace_dir(bundle.root(), &dest)?;
    // Downloads keep no file modes: the command the manifest names in the
    // plugin's directory is made executable, as an unpacked archive leaves it.
    mark_command_executable(&manifest.command, &dest)?;
    Ok(())
}

/// Copies directory `from` to `to`, removing what was at `to` first.
fn replace_dir(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)
            .with_context(|| format!("removing the old plugin {}", to.display()))?;
    }
    for entry in walkdir::WalkDir::new(from).follow_links(true) {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?;
        } else {
            // `copy` keeps the permission bits (a script stays executable).
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mark_command_executable(command: &str, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir_text = dir.to_string_lossy();
    let expanded = expand_env(command, |k| {
        (k == "CONFTEST_PLUGIN_DIR")
            .then(|| dir_text.to_string())
            .or_else(|| std::env::var(k).ok())
    });
    let (exe, _) = split_command(&expanded, Vec::new());
    let exe = PathBuf::from(exe);
    if exe.starts_with(dir) && exe.is_file() {
        let mut perms = std::fs::metadata(&exe)?.permissions();
        perms.set_mode(perms.mode() | 0o755);
        std::fs::set_permissions(&exe, perms)
            .with_context(|| format!("making {} executable", exe.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn mark_command_executable(_command: &str, _dir: &Path) -> Result<()> {
    Ok(())
}

/// Runs the installed plugin `args[0]` with the rest of `args`; returns its
/// exit status.
pub(crate) fn run_external(args: &[OsString]) -> Result<u8> {
    let Some((name, rest)) = args.split_first() else {
        bail!("no command given");
    };
    let name = name.to_string_lossy();
    let dir = cache_dir().join(name.as_ref());
    if !dir.join("plugin.yaml").is_file() {
        bail!("unknown command {name:?}: not a regard command or an installed plugin");
    }
    let manifest = manifest(&dir)?;
    let dir_text = dir.to_string_lossy().into_owned();
    let expanded = expand_env(&manifest.command, |k| {
        (k == "CONFTEST_PLUGIN_DIR")
            .then(|| dir_text.clone())
            .or_else(|| std::env::var(k).ok())
    });
    let (exe, cmd_args) = split_command(&expanded, rest.to_vec());
    let status = std::process::Command::new(&exe)
        .args(cmd_args)
        .env("CONFTEST_PLUGIN_DIR", &dir)
        .status()
        .with_context(|| format!("running the plugin {name} ({exe})"))?;
    Ok(match status.code() {
        Some(code) => u8::try_from(code.rem_euclid(256)).unwrap_or(1),
        // Killed by a signal: the shell's 128 + signal.
        None => signal_status(&status),
    })
}

#[cfg(unix)]
fn signal_status(status: &std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .signal()
        .and_then(|s| u8::try_from(128 + s).ok())
        .unwrap_or(1)
}

#[cfg(not(unix))]
fn signal_status(_status: &std::process::ExitStatus) -> u8 {
    1
}

/// `$VAR` and `${VAR}` replaced by `lookup`'s value (empty when unset), as
/// Go's `os.ExpandEnv` does.
fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, used) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                // Go drops a `${` that is never closed.
                None => ("", after.len()),
            }
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..len], len)
        };
        if used == 0 {
            // A `$` followed by no name stays.
            out.push('$');
        } else {
            out.push_str(&lookup(name).unwrap_or_default());
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// conftest's split of a plugin command: words separated by single spaces
/// after the last `/` (a directory may contain spaces), then `extra`.
fn split_command(command: &str, extra: Vec<OsString>) -> (String, Vec<OsString>) {
    let (dir, base) = match command.rfind('/') {
        Some(slash) => (Some(&command[..slash]), &command[slash + 1..]),
        None => (None, command),
    };
    let mut words = base.split(' ');
    let first = words.next().unwrap_or_default();
    let exe = match dir {
        Some(dir) => format!("{dir}/{first}"),
        None => first.to_owned(),
    };
    let mut args: Vec<OsString> = words.map(OsString::from).collect();
    args.extend(extra);
    (exe, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_as_go_expands_them() {
        let lookup = |k: &str| (k == "DIR").then(|| "/p".to_owned());
        assert_eq!(expand_env("$DIR/run.sh", lookup), "/p/run.sh");
        assert_eq!(expand_env("${DIR}x $UNSET.", lookup), "/px .");
        assert_eq!(expand_env("a $ b$", lookup), "a $ b$");
        assert_eq!(expand_env("${DIR", lookup), "");
    }

    #[test]
    fn commands_split_after_the_last_directory() {
        let (exe, args) = split_command("/my dir/run.sh -v", vec!["x".into()]);
        assert_eq!(exe, "/my dir/run.sh");
        assert_eq!(args, vec![OsString::from("-v"), OsString::from("x")]);
        let (exe, args) = split_command("python3 tool.py", Vec::new());
        assert_eq!(
            (exe.as_str(), args),
            ("python3", vec![OsString::from("tool.py")])
        );
    }
}
