//! Compiled regular expressions, kept per thread between calls.
//!
//! A policy calls `re_match` or CEL's `find` with the same literal pattern
//! for every object it reviews; compiling the pattern each time cost more
//! than the match (a Gatekeeper template with one `regex.match` per
//! container spent 5 % of its evaluation compiling). regorus' own regex
//! builtins use its `cache` feature; this cache serves the builtins regard
//! adds. It is per thread, so there is no lock on the evaluation path and
//! each `Regex` keeps its own search cache warm (a clone shared out of a
//! global cache starts cold). It is bounded: past [`CAPACITY`] patterns the
//! thread's cache is emptied, so a policy that builds patterns from input
//! cannot grow it without limit.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

/// Patterns kept per thread; policies use a handful.
const CAPACITY: usize = 256;

thread_local! {
    static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Runs `f` with `pattern` compiled by `compile`, compiling it only the
/// first time this thread sees it. A pattern that does not compile is not
/// cached: its error is returned every time.
pub(crate) fn with_regex<T, E>(
    pattern: &str,
    compile: impl FnOnce(&str) -> Result<Regex, E>,
    f: impl FnOnce(&Regex) -> T,
) -> Result<T, E> {
    CACHE.with(|cell| {
        // A re-entrant call (not possible today: `f` only matches) falls
        // back to compiling without the cache.
        let Ok(mut cache) = cell.try_borrow_mut() else {
            return compile(pattern).map(|re| f(&re));
        };
        if let Some(re) = cache.get(pattern) {
            return Ok(f(re));
        }
        let re = compile(pattern)?;
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        let out = f(&re);
        cache.insert(pattern.to_owned(), re);
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_each_pattern_once_per_thread() {
        let mut compiled = 0;
        for text in ["a1", "b", "c22"] {
            let found = with_regex(
                r"\d+",
                |p| {
                    compiled += 1;
                    Regex::new(p)
                },
                |re| re.find(text).map(|m| m.as_str().to_owned()),
            )
            .unwrap();
            assert_eq!(
                found,
                match text {
                    "a1" => Some("1".to_owned()),
                    "c22" => Some("22".to_owned()),
                    _ => None,
                }
            );
        }
        assert_eq!(compiled, 1);
    }

    #[test]
    fn errors_are_not_cached() {
        for _ in 0..2 {
            let err = with_regex("(", Regex::new, |re| re.is_match("x")).unwrap_err();
            assert!(err.to_string().contains("unclosed group"), "{err}");
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        for i in 0..CAPACITY + 10 {
            let p = format!("^x{i}$");
            assert!(with_regex(&p, Regex::new, |re| re.is_match(&format!("x{i}"))).unwrap());
        }
        CACHE.with(|c| assert!(c.borrow().len() <= CAPACITY));
    }
}
