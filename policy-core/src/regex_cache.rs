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

use regex::{Regex, RegexBuilder};

/// Patterns kept per thread; policies use a handful.
const CAPACITY: usize = 256;

/// The largest compiled pattern accepted, regorus' own bound: a pattern
/// from input cannot make a policy build an unbounded automaton.
const SIZE_LIMIT: usize = 100 * 1024;

/// `pattern` compiled with Go's meaning (RE2, what OPA and cel-go use):
/// `\d \w \s \b` are ASCII there and Unicode in Rust's `regex`, where a
/// Unicode `\d{4}` repeated a few times also passes [`SIZE_LIMIT`] (see
/// [`crate::rego::regex_classes`], which does the same for literal
/// patterns at load).
pub(crate) fn compile_go(pattern: &str) -> Result<Regex, regex::Error> {
    let ascii = crate::rego::regex_classes::ascii_classes(pattern);
    RegexBuilder::new(ascii.as_deref().unwrap_or(pattern))
        .size_limit(SIZE_LIMIT)
        .build()
}

/// Runs `f` with `pattern` compiled as [`compile_go`] does, once per thread.
pub(crate) fn with_go_regex<T>(
    pattern: &str,
    f: impl FnOnce(&Regex) -> T,
) -> Result<T, regex::Error> {
    with_regex(pattern, compile_go, f)
}

thread_local! {
    static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Runs `f` with `pattern` compiled by `compile`, compiling it only the
/// first time this thread sees it. A pattern that does not compile is not
/// cached: its error is returned every time. Every caller compiles the same
/// way ([`with_go_regex`]), since they share the cache.
fn with_regex<T, E>(
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
    fn go_patterns_have_ascii_classes() {
        let digits = |s: &str| with_go_regex(r"^\d+$", |re| re.is_match(s)).unwrap();
        assert!(digits("2024"));
        // U+0663, an Arabic-Indic digit: a `\d` in Rust's Unicode mode.
        assert!(!digits("\u{663}"));
        let word = |s: &str| with_go_regex(r"^\w+\b", |re| re.is_match(s)).unwrap();
        assert!(word("abc_1 x"));
        assert!(!word("é"));
        // Six Unicode `\d{4}` would pass the size limit; ASCII ones do not.
        let iban = r"[^\.](?:\b[A-Z]{2}\d{2} ?\d{4} ?\d{4} ?\d{4} ?\d{4} ?[\d]{0,2}\b)";
        assert!(with_go_regex(iban, |re| re.is_match(" GB82 WEST 1234 5698 7654 32")).is_ok());
        assert!(
            RegexBuilder::new(iban)
                .size_limit(SIZE_LIMIT)
                .build()
                .is_err()
        );
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
