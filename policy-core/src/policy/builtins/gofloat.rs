//! Go's `%e`, `%f` and `%g` for `sprintf` on non-integer numbers.
//!
//! OPA's `sprintf` hands a number that is not an integer to Go's
//! `fmt.Sprintf` as a `float64`, so `%f` prints six decimals, `%e` a
//! two-digit signed exponent and `%g` the shortest form, switching to the
//! exponent form below 1e-4 or from 1e6 up (Go's `strconv` with precision 6
//! for that decision). regorus prints such numbers in its own notation
//! (`692.0956516265869`, `1.2345e3`); policies put the result in messages
//! that users and tests compare.

/// A parsed verb: `%[flags][width][.precision]verb`.
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: usize,
    precision: Option<usize>,
    verb: char,
}

fn parse(spec: &str, verb: char) -> Option<Spec> {
    let body = spec.strip_prefix('%')?.strip_suffix(verb)?;
    let mut s = Spec {
        minus: false,
        plus: false,
        space: false,
        zero: false,
        sharp: false,
        width: 0,
        precision: None,
        verb,
    };
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        match c {
            '-' => s.minus = true,
            '+' => s.plus = true,
            ' ' => s.space = true,
            '0' => s.zero = true,
            '#' => s.sharp = true,
            _ => break,
        }
        rest = rest.get(1..)?;
    }
    let (width, prec) = match rest.split_once('.') {
        Some((w, p)) => (w, Some(p)),
        None => (rest, None),
    };
    if !width.is_empty() {
        s.width = width.parse().ok()?;
    }
    if let Some(p) = prec {
        s.precision = Some(if p.is_empty() { 0 } else { p.parse().ok()? });
    }
    Some(s)
}

/// Formats `x` as Go does for `spec` (such as `%.2f`), when `verb` is one
/// of Go's float verbs; `None` for other verbs or a malformed spec.
pub(super) fn format(spec: &str, verb: char, x: f64) -> Option<String> {
    if !matches!(verb, 'e' | 'E' | 'f' | 'F' | 'g' | 'G') {
        return None;
    }
    let s = parse(spec, verb)?;
    let body = if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        "Inf".to_owned()
    } else {
        match s.verb {
            'e' | 'E' => exp_form(x.abs(), s.precision.unwrap_or(6)),
            'f' | 'F' => format!("{:.*}", s.precision.unwrap_or(6), x.abs()),
            _ => g_form(x.abs(), s.precision, s.sharp),
        }
    };
    let body = if s.verb.is_ascii_uppercase() {
        body.to_uppercase()
    } else {
        body
    };
    let sign = if x.is_sign_negative() && !x.is_nan() {
        "-"
    } else if s.plus {
        "+"
    } else if s.space {
        " "
    } else {
        ""
    };
    let len = sign.len() + body.len();
    let pad = s.width.saturating_sub(len);
    Some(if s.minus {
        format!("{sign}{body}{}", " ".repeat(pad))
    } else if s.zero && x.is_finite() {
        format!("{sign}{}{body}", "0".repeat(pad))
    } else {
        format!("{}{sign}{body}", " ".repeat(pad))
    })
}

/// `d.ddde±XX` with `prec` decimals (Go pads the exponent to two digits).
fn exp_form(x: f64, prec: usize) -> String {
    go_exponent(&format!("{x:.prec$e}"))
}

/// Rust's `1.5e3` / `1.5e-7` as Go's `1.5e+03` / `1.5e-07`.
fn go_exponent(rust: &str) -> String {
    let Some((mantissa, exp)) = rust.split_once('e') else {
        return rust.to_owned();
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

fn g_form(x: f64, precision: Option<usize>, sharp: bool) -> String {
    // The decimal exponent and significant digits after rounding.
    let (sci, eprec) = match precision {
        None => (format!("{x:e}"), 6),
        Some(p) => {
            let p = p.max(1);
            (format!("{x:.*e}", p - 1), p)
        }
    };
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits = mantissa.chars().filter(char::is_ascii_digit).count();
    let eprec = match precision {
        // Go: a precision above the digit count of an integer-like value
        // uses the digit count for the decision.
        Some(_) if eprec > digits && digits as i64 > exp => digits,
        _ => eprec,
    };
    let trim = |s: String| -> String {
        if sharp || !s.contains('.') {
            s
        } else {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
    };
    if exp < -4 || exp >= eprec as i64 {
        let (m, e) = sci.split_at(mantissa.len());
        go_exponent(&format!("{}{e}", trim(m.to_owned())))
    } else {
        let decimals = (digits as i64 - 1 - exp).max(0) as usize;
        trim(format!("{x:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::format;

    fn go(spec: &str, x: f64) -> String {
        let verb = spec.chars().last().unwrap();
        format(spec, verb, x).unwrap()
    }

    #[test]
    fn f_verb() {
        assert_eq!(go("%f", 692.0956516265869), "692.095652");
        assert_eq!(go("%.2f", 1.005), "1.00");
        assert_eq!(go("%.1f", -0.25), "-0.2");
        assert_eq!(go("%8.3f", 1.23456), "   1.235");
        assert_eq!(go("%-8.1f", 2.5), "2.5     ");
        assert_eq!(go("%08.2f", -1.5), "-0001.50");
        assert_eq!(go("%+.1f", 1.5), "+1.5");
    }

    #[test]
    fn e_verb() {
        assert_eq!(go("%e", 1234.5), "1.234500e+03");
        assert_eq!(go("%.2e", 0.000123), "1.23e-04");
        assert_eq!(go("%E", 1.5), "1.500000E+00");
    }

    #[test]
    fn g_verb() {
        assert_eq!(go("%g", 0.5), "0.5");
        assert_eq!(go("%g", 1234567.5), "1.2345675e+06");
        assert_eq!(go("%g", 0.00001), "1e-05");
        assert_eq!(go("%g", 123456.5), "123456.5");
        assert_eq!(go("%.3g", 1.23456), "1.23");
        assert_eq!(go("%.2g", 1234.5), "1.2e+03");
    }

    #[test]
    fn other_verbs_are_not_ours() {
        assert_eq!(format("%d", 'd', 1.5), None);
        assert_eq!(format("%v", 'v', 1.5), None);
    }
}
