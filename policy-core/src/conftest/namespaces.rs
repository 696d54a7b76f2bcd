//! Choosing which packages (conftest "namespaces") to query.

/// How namespaces are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceSelection {
    /// Every package found in the loaded modules.
    All,
    /// These names or glob patterns, in order. Without glob characters the
    /// names are used literally, even if no such package exists (it then
    /// simply has no rules). If any pattern contains `*`, `?` or `[`, every
    /// pattern is matched against the loaded packages instead.
    Patterns(Vec<String>),
}

impl Default for NamespaceSelection {
    fn default() -> Self {
        NamespaceSelection::Patterns(vec!["main".to_owned()])
    }
}

/// Resolves a selection against the loaded packages.
///
/// ```
/// use policy_core::conftest::{select_namespaces, NamespaceSelection};
/// let packages = vec!["commands".to_owned(), "main".to_owned(), "main.gke".to_owned()];
/// let pick = |p: &[&str]| select_namespaces(
///     &packages,
///     &NamespaceSelection::Patterns(p.iter().map(|s| s.to_string()).collect()),
/// );
/// assert_eq!(pick(&["main"]), vec!["main"]);
/// assert_eq!(pick(&["m*"]), vec!["main", "main.gke"]);
/// assert_eq!(pick(&["c*", "main"]), vec!["commands", "main"]);
/// ```
pub fn select_namespaces(packages: &[String], selection: &NamespaceSelection) -> Vec<String> {
    match selection {
        NamespaceSelection::All => packages.to_vec(),
        NamespaceSelection::Patterns(patterns) => {
            let globbing = patterns.iter().any(|p| p.contains(['*', '?', '[']));
            let mut out: Vec<String> = Vec::new();
            for pattern in patterns {
                if globbing {
                    for package in packages {
                        if glob_match(pattern, package) && !out.contains(package) {
                            out.push(package.clone());
                        }
                    }
                } else if !out.contains(pattern) {
                    out.push(pattern.clone());
                }
            }
            out
        }
    }
}

/// Go's `path.Match` with `.` as an ordinary character (there is no `/` in a
/// package name, so `*` matches any run of characters). Written by hand
/// because glob crates treat `[!..]`/`[^..]` and escapes differently from Go.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some(('*', rest)) => {
            (0..=n.len()).any(|i| n.get(i..).is_some_and(|tail| match_from(rest, tail)))
        }
        Some(('?', rest)) => n
            .split_first()
            .is_some_and(|(_, tail)| match_from(rest, tail)),
        Some(('[', rest)) => {
            let Some((c, tail)) = n.split_first() else {
                return false;
            };
            match class_match(rest, *c) {
                Some((true, after)) => match_from(after, tail),
                _ => false,
            }
        }
        Some(('\\', rest)) => match (rest.split_first(), n.split_first()) {
            (Some((pc, prest)), Some((nc, ntail))) => pc == nc && match_from(prest, ntail),
            _ => false,
        },
        Some((pc, rest)) => n
            .split_first()
            .is_some_and(|(nc, tail)| pc == nc && match_from(rest, tail)),
    }
}

/// Matches `c` against a character class whose `[` was consumed. Returns
/// whether it matched and the pattern after the closing `]`, or `None` for a
/// malformed class (which matches nothing, like Go's `ErrBadPattern`).
fn class_match(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negated, mut rest) = match p.split_first() {
        Some(('^', r)) => (true, r),
        _ => (false, p),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&lo, after) = rest.split_first()?;
        if lo == ']' && !first {
            return Some((matched != negated, after));
        }
        first = false;
        let (lo, after) = if lo == '\\' {
            let (&esc, after) = after.split_first()?;
            (esc, after)
        } else {
            (lo, after)
        };
        if let Some(('-', range_rest)) = after.split_first()
            && let Some((&hi, after_hi)) = range_rest.split_first()
            && hi != ']'
        {
            matched |= lo <= c && c <= hi;
            rest = after_hi;
            continue;
        }
        matched |= lo == c;
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn go_path_match_semantics() {
        assert!(glob_match("main.*", "main.gke"));
        assert!(glob_match("*", "a.b.c"));
        assert!(glob_match("ma?n", "main"));
        assert!(glob_match("[lm]ain", "main"));
        assert!(glob_match("[^x]ain", "main"));
        assert!(glob_match("[a-z]ain", "main"));
        assert!(!glob_match("[^m]ain", "main"));
        assert!(!glob_match("main", "main.gke"));
        assert!(!glob_match("[", "main"));
    }
}
