//! `regex.globs_match(glob1, glob2)`: whether two glob-style patterns have
//! a non-empty string in common.
//!
//! As in OPA, only `.` (any character), `[...]` (a character class, with
//! `a-z` ranges), `*`, `+` (repeat the previous item) and `\` (escape) are
//! special; every other character stands for itself. The answer comes from
//! a search of the product of the two patterns' automata, over states
//! "position in each pattern, and whether a character was consumed yet".

use std::collections::{BTreeSet, HashSet};

use anyhow::{Result, bail};
use regorus::Value;

use super::{Builtin, str_operand};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("regex.globs_match", 2, globs_match)];

/// What one pattern position matches.
#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Char(char),
    Any,
    Class(BTreeSet<char>),
}

impl Atom {
    /// Whether some character matches both atoms.
    fn overlaps(&self, other: &Atom) -> bool {
        match (self, other) {
            (Atom::Char(a), Atom::Char(b)) => a == b,
            (Atom::Any, Atom::Any) => true,
            (Atom::Char(c), Atom::Class(s)) | (Atom::Class(s), Atom::Char(c)) => s.contains(c),
            (Atom::Any, Atom::Class(s)) | (Atom::Class(s), Atom::Any) => !s.is_empty(),
            (Atom::Any, Atom::Char(_)) | (Atom::Char(_), Atom::Any) => true,
            (Atom::Class(a), Atom::Class(b)) => !a.is_disjoint(b),
        }
    }
}

/// An atom and whether it may repeat any number of times (including none).
type Item = (Atom, bool);

/// Parses a pattern; `a+` becomes `a` followed by `a*`.
fn parse(pattern: &str) -> Result<Vec<Item>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut items: Vec<Item> = Vec::new();
    let mut i = 0;
    // Whether the previous item may take a `*` or `+`.
    let mut can_repeat = false;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '*' | '+' => {
                if !can_repeat {
                    bail!("pos:{}: flag '{c}' must be preceded by a non-flag", i - 1);
                }
                can_repeat = false;
                let Some(last) = items.last_mut() else {
                    bail!("pos:{}: flag '{c}' must be preceded by a non-flag", i - 1);
                };
                if c == '*' {
                    last.1 = true;
                } else {
                    let atom = last.0.clone();
                    items.push((atom, true));
                }
                continue;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i) else {
                    bail!("pos:{}: input ends with a \\ (escape) character", i - 1);
                };
                i += 1;
                items.push((Atom::Char(escaped), false));
            }
            '.' => items.push((Atom::Any, false)),
            ']' => bail!("pos:{}: set-close ']' with no preceding '['", i - 1),
            '[' => {
                let (class, next) = parse_class(&chars, i)?;
                i = next;
                items.push((Atom::Class(class), false));
            }
            other => items.push((Atom::Char(other), false)),
        }
        can_repeat = true;
    }
    Ok(items)
}

/// Parses a character class whose `[` ends just before `start`; returns it
/// and the index after its `]`.
fn parse_class(chars: &[char], start: usize) -> Result<(BTreeSet<char>, usize)> {
    let mut set = BTreeSet::new();
    let mut prev: Option<char> = None;
    let mut i = start;
    loop {
        let Some(&c) = chars.get(i) else {
            bail!("pos:{i}: found [ without matching ]");
        };
        i += 1;
        match c {
            ']' => return Ok((set, i)),
            '-' => {
                let Some(low) = prev else {
                    bail!("pos:{i}: range character '-' must be preceded by a Unicode character");
                };
                let high = match chars.get(i) {
                    Some('\\') => {
                        i += 1;
                        chars.get(i).copied()
                    }
                    Some(']' | '-') => {
                        bail!("pos:{i}: range character '-' cannot be followed by a special symbol")
                    }
                    other => other.copied(),
                };
                let Some(high) = high else {
                    bail!("pos:{i}: range character '-' must be followed by a Unicode character");
                };
                i += 1;
                if high < low {
                    bail!(
                        "pos:{i}: range is out of order: '{high}' comes before '{low}' in Unicode"
                    );
                }
                set.extend(low..=high);
                prev = None;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i) else {
                    bail!("pos:{}: input ends with a \\ (escape) character", i - 1);
                };
                i += 1;
                set.insert(escaped);
                prev = Some(escaped);
            }
            other => {
                set.insert(other);
                prev = Some(other);
            }
        }
    }
}

/// Whether some non-empty string matches both patterns.
fn intersect(a: &[Item], b: &[Item]) -> bool {
    let mut seen: HashSet<(usize, usize, bool)> = HashSet::new();
    let mut stack = vec![(0usize, 0usize, false)];
    while let Some(state) = stack.pop() {
        if !seen.insert(state) {
            continue;
        }
        let (i, j, consumed) = state;
        let (ia, ib) = (a.get(i), b.get(j));
        if ia.is_none() && ib.is_none() && consumed {
            return true;
        }
        // Skip a repeatable item without matching anything.
        if let Some((_, true)) = ia {
            stack.push((i + 1, j, consumed));
        }
        if let Some((_, true)) = ib {
            stack.push((i, j + 1, consumed));
        }
        // Consume one character that both current items accept.
        if let (Some((x, rx)), Some((y, ry))) = (ia, ib)
            && x.overlaps(y)
        {
            let ni = if *rx { i } else { i + 1 };
            let nj = if *ry { j } else { j + 1 };
            stack.push((ni, nj, true));
        }
    }
    false
}

fn globs_match(args: &[Value]) -> Result<Value> {
    let [a, b] = args else {
        bail!("regex.globs_match: expects 2 arguments");
    };
    let a = str_operand("regex.globs_match", 1, a)?;
    let b = str_operand("regex.globs_match", 2, b)?;
    let a = parse(a).map_err(|e| anyhow::anyhow!("regex.globs_match: {e}"))?;
    let b = parse(b).map_err(|e| anyhow::anyhow!("regex.globs_match: {e}"))?;
    Ok(Value::from(intersect(&a, &b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(a: &str, b: &str) -> bool {
        globs_match(&[Value::from(a), Value::from(b)])
            .unwrap()
            .as_bool()
            .copied()
            .unwrap()
    }

    #[test]
    fn intersections() {
        assert!(m("a.a.[0-9]+z", "a.a.00z"));
        assert!(m("a.*", "ab"));
        assert!(m("[a-c]+", "[c-e]+"));
        assert!(m(".*abc", "x+abc"));
        assert!(!m("a.a.[0-9]+z", "a.a.0z0"));
        assert!(!m("[a-c]", "[d-f]"));
        assert!(!m("abc", "ab"));
        assert!(m("a\\.b", "a.b"));
        assert!(!m("a\\.b", "axb"));
    }

    #[test]
    fn only_non_empty_strings_count() {
        assert!(!m("a*", "b*"));
        assert!(!m("", ""));
        assert!(m("a*b*", "b+"));
    }

    #[test]
    fn malformed_patterns_are_errors() {
        let err = |a: &str| {
            globs_match(&[Value::from(a), Value::from("x")])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("*a"),
            "regex.globs_match: pos:0: flag '*' must be preceded by a non-flag"
        );
        assert_eq!(
            err("[ab"),
            "regex.globs_match: pos:3: found [ without matching ]"
        );
        assert_eq!(
            err("a]"),
            "regex.globs_match: pos:1: set-close ']' with no preceding '['"
        );
    }
}
