//! Values shaped like Go's `encoding/json` output for the standard library
//! types OPA hands to Rego (`x509.Certificate`, `pkix.Name`, `url.URL`,
//! `time.Time`, private keys): `[]byte` as standard base64, `*big.Int` as
//! a number, `asn1.ObjectIdentifier` as an array of numbers, nil slices as
//! `null`.

use anyhow::{Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use regorus::Value;

/// Go's `base64.StdEncoding.DecodeString`, which skips `\r` and `\n`.
pub(super) fn decode_base64(s: &str) -> Result<Vec<u8>> {
    let text: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    STANDARD
        .decode(text)
        .map_err(|e| anyhow::anyhow!("illegal base64 data: {e}"))
}

/// `[]byte`: standard base64.
pub(super) fn bytes(b: &[u8]) -> Value {
    Value::from(STANDARD.encode(b))
}

/// A nil-able `[]byte`.
pub(super) fn opt_bytes(b: Option<&[u8]>) -> Value {
    b.map_or(Value::Null, bytes)
}

/// A nil-able slice: `null` when empty, as Go leaves unset slices nil.
pub(super) fn list(items: Vec<Value>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::from(items)
    }
}

pub(super) fn strings(items: &[String]) -> Value {
    list(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// A non-negative `*big.Int` from big-endian bytes.
pub(super) fn big(b: &[u8]) -> Value {
    let n = num_bigint::BigUint::from_bytes_be(b);
    Value::from_numeric_string(&n.to_string()).unwrap_or(Value::Null)
}

/// `asn1.ObjectIdentifier`: the arcs as numbers.
pub(super) fn oid(arcs: &[u64]) -> Value {
    Value::from(arcs.iter().map(|a| Value::from(*a)).collect::<Vec<_>>())
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A UTC instant, in seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Instant(pub i64);

impl Instant {
    /// Go's `time.Time` JSON (RFC 3339) for a whole-second UTC time.
    pub fn rfc3339(self) -> String {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }

    /// An ASN.1 UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime
    /// (`YYYYMMDDHHMMSSZ`), as X.509 validity periods use them.
    pub fn from_asn1(tag: u8, text: &[u8]) -> Result<Instant> {
        let s = std::str::from_utf8(text)?;
        let digits = s.strip_suffix('Z').unwrap_or("");
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            bail!("malformed time {s:?}");
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64> {
            digits
                .get(r)
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| anyhow::anyhow!("malformed time {s:?}"))
        };
        let (year, rest) = match (tag, digits.len()) {
            (0x17, 12) => {
                let yy = num(0..2)?;
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
            }
            (0x18, 14) => (num(0..4)?, 4),
            _ => bail!("malformed time {s:?}"),
        };
        let month = num(rest..rest + 2)?;
        let day = num(rest + 2..rest + 4)?;
        let (h, mi, sec) = (
            num(rest + 4..rest + 6)?,
            num(rest + 6..rest + 8)?,
            num(rest + 8..rest + 10)?,
        );
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 59 {
            bail!("malformed time {s:?}");
        }
        let days = days_from_civil(year, month as u32, day as u32);
        Ok(Instant(days * 86_400 + h * 3600 + mi * 60 + sec))
    }
}

fn unhex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `url.unescape` (no `+` handling, as in paths).
fn unescape(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|x| unhex(*x)),
                b.get(i + 2).and_then(|x| unhex(*x)),
            ) else {
                bail!("invalid URL escape {:?}", s.get(i..).unwrap_or(""));
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.escape` for a path (`fragment` for a fragment).
fn escape(s: &str, fragment: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        let keep = !crate::gourl::path_byte_needs_escape(c)
            || (fragment && matches!(c, b'!' | b'(' | b')' | b'*' | b'?'));
        if keep {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// `*url.URL` as Go's `encoding/json` prints it (every exported field).
pub(super) fn url(s: &str) -> Result<Value> {
    let (mut rest, fragment) = match s.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let mut scheme = String::new();
    if let Some(colon) = rest.find(':') {
        let cand = rest.get(..colon).unwrap_or("");
        if cand.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && cand
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            scheme = cand.to_ascii_lowercase();
            rest = rest.get(colon + 1..).unwrap_or("");
        } else if colon == 0 {
            bail!("missing protocol scheme");
        }
    }
    let (rest, raw_query, force_query) = match rest.split_once('?') {
        Some((a, q)) => (a, q.to_owned(), q.is_empty()),
        None => (rest, String::new(), false),
    };
    let mut opaque = String::new();
    let mut host = String::new();
    let mut user = Value::Null;
    let mut path_raw = "";
    if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest.to_owned();
    } else if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = after.get(..end).unwrap_or("");
        path_raw = after.get(end..).unwrap_or("");
        host = match authority.rsplit_once('@') {
            Some((_, h)) => {
                user = Value::new_object();
                h.to_owned()
            }
            None => authority.to_owned(),
        };
    } else {
        path_raw = rest;
    }
    let path = unescape(path_raw)?;
    let raw_path = if escape(&path, false) == path_raw {
        String::new()
    } else {
        path_raw.to_owned()
    };
    let (frag, raw_frag) = match fragment {
        Some(f) => {
            let decoded = unescape(f)?;
            let raw = if escape(&decoded, true) == f {
                String::new()
            } else {
                f.to_owned()
            };
            (decoded, raw)
        }
        None => (String::new(), String::new()),
    };
    Ok(super::object_of([
        ("Scheme", Value::from(scheme)),
        ("Opaque", Value::from(opaque)),
        ("User", user),
        ("Host", Value::from(host)),
        ("Path", Value::from(path)),
        ("RawPath", Value::from(raw_path)),
        ("OmitHost", Value::from(false)),
        ("ForceQuery", Value::from(force_query)),
        ("RawQuery", Value::from(raw_query)),
        ("Fragment", Value::from(frag)),
        ("RawFragment", Value::from(raw_frag)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = Instant::from_asn1(0x17, b"240229123456Z").unwrap();
        assert_eq!(t.rfc3339(), "2024-02-29T12:34:56Z");
        let g = Instant::from_asn1(0x18, b"19491231235959Z").unwrap();
        assert_eq!(g.rfc3339(), "1949-12-31T23:59:59Z");
        assert!(Instant::from_asn1(0x17, b"2402291234Z").is_err());
    }

    #[test]
    fn urls_have_go_fields() {
        let u = url("spiffe://example.org/ns/a%20b?x=1#f").unwrap();
        let get = |k: &str| u[k].clone();
        assert_eq!(get("Scheme"), Value::from("spiffe"));
        assert_eq!(get("Host"), Value::from("example.org"));
        assert_eq!(get("Path"), Value::from("/ns/a b"));
        assert_eq!(get("RawPath"), Value::from(""));
        assert_eq!(get("RawQuery"), Value::from("x=1"));
        assert_eq!(get("Fragment"), Value::from("f"));
        assert_eq!(get("User"), Value::Null);
        assert_eq!(
            url("urn:example:a").unwrap()["Opaque"],
            Value::from("example:a")
        );
    }

    #[test]
    fn big_numbers_keep_every_digit() {
        let v = big(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            v,
            Value::from_numeric_string("18446744073709551616").unwrap()
        );
        assert_ne!(
            v,
            Value::from_numeric_string("18446744073709551615").unwrap()
        );
    }
}
