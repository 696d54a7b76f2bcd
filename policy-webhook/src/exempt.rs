//! `--exempt-namespace`: namespaces the webhook admits without evaluating anything.
//!
//! Patterns follow Gatekeeper's wildcard rules: a `*` may stand only at the start and/or the end
//! (`kube-*` prefix, `*-system` suffix, `*sys*` contains, `*` everything). Gatekeeper's
//! `--exempt-namespace-prefix kube-` and `--exempt-namespace-suffix -system` are the same as
//! `kube-*` and `*-system`.

use std::fmt;

/// A set of namespace patterns.
#[derive(Clone, Debug, Default)]
pub struct NamespaceExemptions {
    patterns: Vec<Pattern>,
}

#[derive(Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Any => write!(f, "*"),
            Pattern::Exact(s) => write!(f, "{s}"),
            Pattern::Prefix(s) => write!(f, "{s}*"),
            Pattern::Suffix(s) => write!(f, "*{s}"),
            Pattern::Contains(s) => write!(f, "*{s}*"),
        }
    }
}

/// A pattern `--exempt-namespace` (or `-prefix`, `-suffix`) cannot accept.
#[derive(Debug, thiserror::Error)]
#[error("--{flag} {pattern:?}: {reason}")]
pub struct PatternError {
    flag: &'static str,
    pattern: String,
    reason: &'static str,
}

impl NamespaceExemptions {
    /// Parses the patterns; empty strings are ignored (they come from trailing commas in env vars).
    pub fn new(patterns: &[String]) -> Result<Self, PatternError> {
        Self::with_affixes(patterns, &[], &[])
    }

    /// Patterns plus Gatekeeper's plain prefixes and suffixes (no `*` in those).
    pub fn with_affixes(
        patterns: &[String],
        prefixes: &[String],
        suffixes: &[String],
    ) -> Result<Self, PatternError> {
        let mut all: Vec<(&'static str, String, String)> = Vec::new();
        for p in patterns {
            all.push(("exempt-namespace", p.clone(), p.clone()));
        }
        for (flag, affixes, glob) in [
            ("exempt-namespace-prefix", prefixes, "{}*"),
            ("exempt-namespace-suffix", suffixes, "*{}"),
        ] {
            for a in affixes {
                let a = a.trim();
                if a.is_empty() {
                    continue;
                }
                if a.contains('*') {
                    return Err(PatternError {
                        flag,
                        pattern: a.to_owned(),
                        reason: "give the text without `*`",
                    });
                }
                all.push((flag, a.to_owned(), glob.replace("{}", a)));
            }
        }
        let mut parsed = Vec::new();
        for (flag, shown, raw) in &all {
            let p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let err = |reason| PatternError {
                flag,
                pattern: shown.clone(),
                reason,
            };
            if p == "*" {
                parsed.push(Pattern::Any);
                continue;
            }
            let starts = p.starts_with('*');
            let ends = p.len() > 1 && p.ends_with('*');
            let core = p
                .get(usize::from(starts)..p.len() - usize::from(ends))
                .unwrap_or_default();
            if core.contains('*') {
                return Err(err("`*` is only allowed at the start or the end"));
            }
            if !core
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                return Err(err(
                    "a namespace has only lowercase letters, digits, `-` and `.`",
                ));
            }
            parsed.push(match (starts, ends) {
                (false, false) => Pattern::Exact(core.to_owned()),
                (false, true) => Pattern::Prefix(core.to_owned()),
                (true, false) => Pattern::Suffix(core.to_owned()),
                (true, true) => Pattern::Contains(core.to_owned()),
            });
        }
        Ok(NamespaceExemptions { patterns: parsed })
    }

    /// Whether `namespace` matches one of the patterns. The empty namespace (cluster-scoped
    /// objects) is only matched by `*`.
    pub fn is_exempt(&self, namespace: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Exact(s) => namespace == s,
            Pattern::Prefix(s) => namespace.starts_with(s.as_str()) && !namespace.is_empty(),
            Pattern::Suffix(s) => namespace.ends_with(s.as_str()) && !namespace.is_empty(),
            Pattern::Contains(s) => namespace.contains(s.as_str()) && !namespace.is_empty(),
        })
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(p: &[&str]) -> NamespaceExemptions {
        NamespaceExemptions::new(&p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn globs() {
        let s = set(&["kube-*", "*-system", "gatekeeper", "*mid*"]);
        assert!(s.is_exempt("kube-public"));
        assert!(s.is_exempt("kube-"));
        assert!(s.is_exempt("regard-system"));
        assert!(s.is_exempt("gatekeeper"));
        assert!(s.is_exempt("amidb"));
        assert!(!s.is_exempt("gatekeeper-x"));
        assert!(!s.is_exempt("default"));
        assert!(!s.is_exempt("kube"));
        assert!(!s.is_exempt(""));
        assert!(set(&["*"]).is_exempt("anything"));
        assert!(set(&["*"]).is_exempt(""));
        assert!(set(&[""]).is_empty());
    }

    #[test]
    fn gatekeeper_prefix_and_suffix_flags() {
        let s = NamespaceExemptions::with_affixes(
            &["team-a".to_owned()],
            &["kube-".to_owned()],
            &["-system".to_owned(), String::new()],
        )
        .unwrap();
        assert!(s.is_exempt("team-a") && s.is_exempt("kube-public") && s.is_exempt("x-system"));
        assert!(!s.is_exempt("default") && !s.is_exempt(""));
        let err = NamespaceExemptions::with_affixes(&[], &["kube-*".to_owned()], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--exempt-namespace-prefix \"kube-*\": give the text without `*`"
        );
        let err = NamespaceExemptions::with_affixes(&[], &[], &["-Sys".to_owned()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--exempt-namespace-suffix \"-Sys\": a namespace has only lowercase letters, digits, `-` and `.`"
        );
    }

    #[test]
    fn bad_patterns() {
        for p in ["a*b", "**x*", "Kube", "a b"] {
            assert!(
                NamespaceExemptions::new(&[p.to_owned()]).is_err(),
                "{p} accepted"
            );
        }
    }
}
