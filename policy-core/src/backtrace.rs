//! Library backtraces off, whatever `RUST_BACKTRACE` says.
//!
//! regorus' parser builds and discards `anyhow` errors while it parses valid
//! policies (it tries one form, then another). With `RUST_BACKTRACE=1` set,
//! as many CI environments set it, every such error captures a backtrace:
//! measured here, loading a 1,900-file policy library took five times as
//! long. `RUST_LIB_BACKTRACE=0` turns capture off for errors while keeping
//! panic backtraces, but a process cannot safely change its own environment
//! once threads may run (and regard forbids `unsafe`), so the binaries
//! re-execute themselves once with the variable set, first thing in `main`.
//! regard's errors never print a backtrace, so nothing visible changes.
//! Embedders with the same concern can call [`disable_for_errors`] too, or
//! set `RUST_LIB_BACKTRACE=0` themselves.

/// Re-executes the current binary with `RUST_LIB_BACKTRACE=0` when
/// `RUST_BACKTRACE` asks for backtraces and `RUST_LIB_BACKTRACE` is unset.
/// Returns only when no re-execution was needed or it failed.
pub fn disable_for_errors() {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;

        let wants = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        if !wants || std::env::var_os("RUST_LIB_BACKTRACE").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let Some(arg0) = args.next() else { return };
        // `exec` only returns on failure; regard then runs as it is.
        let _ = std::process::Command::new(exe)
            .arg0(arg0)
            .args(args)
            .env("RUST_LIB_BACKTRACE", "0")
            .exec();
    }
}
