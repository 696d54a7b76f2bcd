//! `time.parse_rfc3339_ns` for dates outside the nanosecond range, as Go
//! computes them.
//!
//! A time in nanoseconds since 1970 fits an `int64` from 1677 to 2262. Go's
//! `UnixNano` does not check: for a later date it returns the product
//! wrapped around, a negative number, and OPA returns that (OPA issue 4098).
//! Policies written against OPA rely on it: Forseti's key-age check treats
//! a negative expiry as "far in the future". regorus makes the call
//! undefined instead. Here regorus' result is used whenever it has one; a
//! string in RFC 3339's exact shape that regorus refuses gets Go's wrapped
//! value, computed from the date with `jiff`.

use anyhow::{Result, bail};
use regorus::Value;

use super::{Builtin, call_regorus, str_operand};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] =
    &[("time.parse_rfc3339_ns", 1, parse_rfc3339_ns)];

fn parse_rfc3339_ns(args: &[Value]) -> Result<Value> {
    let [text] = args else {
        bail!("time.parse_rfc3339_ns expects 1 argument");
    };
    let regorus = call_regorus("time.parse_rfc3339_ns", args);
    if let Ok(v) = &regorus
        && *v != Value::Undefined
    {
        return regorus;
    }
    let s = str_operand("time.parse_rfc3339_ns", 1, text)?;
    if !rfc3339_shape(s) {
        return regorus;
    }
    let Ok(ts) = s.parse::<jiff::Timestamp>() else {
        return regorus;
    };
    let ns = ts
        .as_second()
        .wrapping_mul(1_000_000_000)
        .wrapping_add(i64::from(ts.subsec_nanosecond()));
    Ok(Value::from(ns))
}

/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z` or `±HH:MM`: what
/// Go's `time.RFC3339` layout accepts (`t` and `z` too).
fn rfc3339_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b'T') || at(10, b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6) && i + 6 == b.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        parse_rfc3339_ns(&[Value::from(s)]).unwrap_or(Value::Undefined)
    }

    #[test]
    fn in_range_dates_are_regorus_answers() {
        assert_eq!(
            parse("2018-03-24T10:00:00Z"),
            Value::from(1_521_885_600_000_000_000_i64)
        );
        assert_eq!(
            parse("2200-08-22T19:55:36Z"),
            Value::from(7_278_321_336_000_000_000_i64)
        );
    }

    #[test]
    fn later_dates_wrap_as_in_go() {
        // Go: time.Date(2999, 8, 22, 19, 55, 36, 0, time.UTC).UnixNano()
        let secs: i64 = 32_492_346_936;
        assert_eq!(
            parse("2999-08-22T19:55:36Z"),
            Value::from(secs.wrapping_mul(1_000_000_000))
        );
        assert!(parse("2999-08-22T19:55:36Z").as_i64().unwrap() < 0);
    }

    #[test]
    fn other_shapes_stay_undefined() {
        assert_eq!(parse("1900-01-01T01:00:006Z"), Value::Undefined);
        assert_eq!(parse("2999-08-22 19:55:36Z"), Value::Undefined);
        assert_eq!(parse("not a time"), Value::Undefined);
    }
}
