//! Containing panics at evaluation boundaries.
//!
//! regorus (and the third-party parsers behind `parse_config*`) can panic on
//! some inputs, for example a builtin given an argument its code never
//! expected. Every place that hands a policy or a document to the engine runs
//! it through [`catch`], which turns a panic into a [`Panic`] value the caller
//! reports as an error naming the rule, test or document, so one bad input
//! never takes the process or the other results down.
//!
//! The default panic hook would still print `thread '…' panicked at …` to
//! stderr, outside the report. The first call to [`catch`] installs a hook
//! that stays silent while the panicking thread is inside [`catch`] (the
//! message becomes the error instead) and hands every other panic to the hook
//! that was there before, so bugs elsewhere still print as usual. The crate
//! must be built with `panic = "unwind"` (the default): with `abort` nothing
//! can be caught, so the workspace does not set it.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// A panic caught by [`catch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// The panic's message (`window size must be non-zero`), followed by
    /// where it happened when known (`at regorus-0.14.1/src/builtins/objects.rs:359`).
    pub message: String,
}

impl std::fmt::Display for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "evaluation panicked: {}", self.message)
    }
}

thread_local! {
    /// How many [`catch`] calls this thread is inside (they can nest: a
    /// `parse_config` builtin runs inside a guarded evaluation).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// Where the last caught panic on this thread happened, set by the hook.
    static LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", short_path(l.file()), l.line()));
                LOCATION.with(|c| c.set(location));
            } else {
                previous(info);
            }
        }));
    });
}

/// The path from the crate directory on (`regorus-0.14.1/src/lib.rs`), so
/// messages do not depend on where cargo keeps sources.
fn short_path(file: &str) -> &str {
    let parts: Vec<(usize, &str)> = file
        .match_indices(['/', '\\'])
        .map(|(i, _)| i)
        .zip(file.split(['/', '\\']).skip(1))
        .collect();
    // The component before the last `src` is the crate directory.
    match parts.iter().rposition(|(_, name)| *name == "src") {
        Some(i) if i > 0 => parts
            .get(i - 1)
            .and_then(|(start, _)| file.get(start + 1..))
            .unwrap_or(file),
        _ => file,
    }
}

/// Runs `f`; a panic inside it is returned as [`Panic`] instead of unwinding
/// further, and nothing is printed for it.
///
/// Whatever `f` was mutating may be half-updated after a panic: callers drop
/// or rebuild it (an engine is re-cloned from the prepared one).
///
/// ```
/// use policy_core::guard::catch;
/// assert_eq!(catch(|| 2 + 2), Ok(4));
/// let caught = catch(|| -> u8 { panic!("boom") }).unwrap_err();
/// assert!(caught.message.starts_with("boom at "), "{}", caught.message);
/// ```
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    install_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    // Callers discard anything `f` touched when it panics, so observing a
    // broken invariant afterwards is not possible.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let message = match LOCATION.with(Cell::take) {
            Some(at) => format!("{text} at {at}"),
            None => text,
        };
        Panic { message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_and_location() {
        let p = catch(|| -> () { panic!("it broke: {}", 7) }).unwrap_err();
        assert!(
            p.message
                .starts_with("it broke: 7 at policy-core/src/guard.rs:"),
            "{}",
            p.message
        );
        assert!(
            p.to_string()
                .starts_with("evaluation panicked: it broke: 7")
        );
    }

    #[test]
    fn nested_catches_and_values() {
        let outer = catch(|| catch(|| -> u8 { panic!("inner") }).map_err(|p| p.message));
        let inner = outer.unwrap().unwrap_err();
        assert!(inner.starts_with("inner at "), "{inner}");
        assert_eq!(catch(|| "ok"), Ok("ok"));
    }

    #[test]
    fn short_paths() {
        assert_eq!(
            short_path("/root/.cargo/registry/src/index-1/regorus-0.14.1/src/builtins/objects.rs"),
            "regorus-0.14.1/src/builtins/objects.rs"
        );
        assert_eq!(
            short_path("policy-core/src/guard.rs"),
            "policy-core/src/guard.rs"
        );
        assert_eq!(short_path("src/main.rs"), "src/main.rs");
        assert_eq!(short_path("lib.rs"), "lib.rs");
    }
}
