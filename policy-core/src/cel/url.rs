//! Kubernetes' CEL URL library: `url("https://example.com:80/path?q=1")`.
//!
//! The API server reads URLs with Go's `url.ParseRequestURI`: an absolute URL
//! (`scheme:…`) or an absolute path (`/…`), nothing relative, and no fragment
//! split off (a `#` stays in the path). The getters return Go's fields:
//! `getScheme()` (lower-cased), `getHost()` (with port and IPv6 brackets),
//! `getHostname()` (without either), `getPort()`, `getEscapedPath()` (Go's
//! `EscapedPath`: the path as written when that is valid, else re-escaped),
//! `getQuery()` (a `map(string, list(string))`, `+` read as a space, pairs
//! with a `;` or a bad escape left out, as Go's `ParseQuery` leaves them).
//!
//! The `url` crate implements the WHATWG standard, which normalizes
//! (`https://example.com` gets the path `/`) where Go keeps what was written,
//! and so would change what policies see; the request-URI grammar is small,
//! so it is written here after Go's rules.

use std::any::Any;
use std::collections::HashMap;

use cel::common::types::{CelBool, CelList, CelMap, CelMapKey, CelString, STRING_TYPE, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

use super::library::{string_arg, take};
use crate::gourl::{escape_path, valid_encoded_path};

/// The CEL type of URLs (`const` for declarations, `static` for values).
const URL: Type = Type::new_unspecified_type("kubernetes.URL");
static URL_TYPE: Type = URL;

/// A parsed URL, as Go's `url.URL` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    scheme: String,
    host: String,
    /// The unescaped path.
    path: String,
    /// The path as written, when it differs from the escaped `path`.
    raw_path: String,
    raw_query: String,
}

impl Val for Url {
    fn get_type(&self) -> &Type {
        &URL_TYPE
    }

    fn cel_type() -> &'static Type {
        &URL_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Url>().is_some_and(|o| o == self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Url {}

/// Go's `url.ParseRequestURI`.
fn parse(raw: &str) -> Result<Url, String> {
    let fail = |why: &str| {
        Err(format!(
            "URL parse error during conversion from string: parse {raw:?}: {why}"
        ))
    };
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return fail("net/url: invalid control character in URL");
    }
    if raw.is_empty() {
        return fail("empty url");
    }
    let mut url = Url {
        scheme: String::new(),
        host: String::new(),
        path: String::new(),
        raw_path: String::new(),
        raw_query: String::new(),
    };
    if raw == "*" {
        url.path = "*".to_owned();
        return Ok(url);
    }
    let (scheme, rest) = match split_scheme(raw) {
        Ok(parts) => parts,
        Err(why) => return fail(why),
    };
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = rest.split_once('?') {
        url.raw_query = query.to_owned();
        rest = before;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // An opaque URL (`mailto:a@b`): no host, no path.
            return Ok(url);
        }
        return fail("invalid URI for request");
    }
    if !url.scheme.is_empty()
        && let Some(after) = rest.strip_prefix("//")
    {
        let (authority, path) = match after.find('/') {
            Some(i) => after.split_at(i),
            None => (after, ""),
        };
        let host = match authority.rfind('@') {
            Some(i) => &authority[i + 1..],
            None => authority,
        };
        if let Err(why) = check_host(host) {
            return fail(&why);
        }
        url.host = match unescape(host, false) {
            Ok(h) => h,
            Err(why) => return fail(&why),
        };
        rest = path;
    }
    url.path = match unescape(rest, false) {
        Ok(p) => p,
        Err(why) => return fail(&why),
    };
    if escape_path(&url.path) != rest {
        url.raw_path = rest.to_owned();
    }
    Ok(url)
}

/// Go's `getScheme`: `(scheme, rest)`; no scheme when the text does not start with one.
fn split_scheme(raw: &str) -> Result<(&str, &str), &'static str> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme"),
            ':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseHost` checks: a closed IPv6 bracket and a numeric optional port.
fn check_host(host: &str) -> Result<(), String> {
    let port = if host.starts_with('[') {
        let close = host.rfind(']').ok_or("missing ']' in host")?;
        &host[close + 1..]
    } else {
        match host.rfind(':') {
            Some(i) => &host[i..],
            None => "",
        }
    };
    let valid = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(format!("invalid port {port:?} after host"))
    }
}

/// `(hostname, port)` of a host, as Go's `Hostname()` and `Port()`.
fn split_host_port(host: &str) -> (&str, &str) {
    let (name, port) = match host.rfind(':') {
        Some(i)
            if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) && !host[i..].contains(']') =>
        {
            (&host[..i], &host[i + 1..])
        }
        _ => (host, ""),
    };
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(inner) => (inner, port),
        None => (name, port),
    }
}

/// Percent-decoding; `plus_is_space` for query components.
fn unescape(s: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(decoded) = hex else {
                    let shown: String = s[i..].chars().take(3).collect();
                    return Err(format!("invalid URL escape {shown:?}"));
                };
                out.push(decoded);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl Url {
    /// Go's `EscapedPath`.
    fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded_path(&self.raw_path)
            && unescape(&self.raw_path, false).is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == "*" {
            return "*".to_owned();
        }
        escape_path(&self.path)
    }

    /// Go's `Query()`: values per key, in order.
    fn query(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for pair in self.raw_query.split('&') {
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Ok(key), Ok(value)) = (unescape(key, true), unescape(value, true)) else {
                continue;
            };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => out.push((key, vec![value])),
            }
        }
        out
    }
}

/// Registers the URL functions on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], url_of)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    env.add_member_overload("getScheme", "url_get_scheme", URL, vec![], get_scheme)?;
    env.add_member_overload("getHost", "url_get_host", URL, vec![], get_host)?;
    env.add_member_overload("getHostname", "url_get_hostname", URL, vec![], get_hostname)?;
    env.add_member_overload("getPort", "url_get_port", URL, vec![], get_port)?;
    env.add_member_overload(
        "getEscapedPath",
        "url_get_escaped_path",
        URL,
        vec![],
        get_escaped_path,
    )?;
    env.add_member_overload("getQuery", "url_get_query", URL, vec![], get_query)?;
    Ok(())
}

fn url_arg<'a>(function: &str, v: &'a dyn Val) -> Result<&'a Url, ExecutionError> {
    v.downcast_ref::<Url>()
        .ok_or_else(|| ExecutionError::function_error(function, "argument is not a URL"))
}

fn string_result<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    get: fn(&Url) -> String,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [u] = take(function, args)?;
    let text = get(url_arg(function, u.as_ref())?);
    Ok(CowVal::owned(CelString::from(text)))
}

fn url_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("url", args)?;
    let url = parse(string_arg("url", s.as_ref())?)
        .map_err(|e| ExecutionError::function_error("url", e))?;
    Ok(CowVal::owned(url))
}

fn is_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("isURL", args)?;
    let ok = parse(string_arg("isURL", s.as_ref())?).is_ok();
    Ok(CowVal::owned(CelBool::from(ok)))
}

fn get_scheme<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    string_result("getScheme", args, |u| u.scheme.clone())
}

fn get_host<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    string_result("getHost", args, |u| u.host.clone())
}

fn get_hostname<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    string_result("getHostname", args, |u| {
        split_host_port(&u.host).0.to_owned()
    })
}

fn get_port<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    string_result("getPort", args, |u| split_host_port(&u.host).1.to_owned())
}

fn get_escaped_path<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    string_result("getEscapedPath", args, Url::escaped_path)
}

fn get_query<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [u] = take("getQuery", args)?;
    let url = url_arg("getQuery", u.as_ref())?;
    let map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = url
        .query()
        .into_iter()
        .map(|(key, values)| {
            let list: Vec<Box<dyn Val + 'v>> = values
                .into_iter()
                .map(|v| Box::new(CelString::from(v)) as Box<dyn Val + 'v>)
                .collect();
            (
                CelMapKey::from(key),
                Box::new(CelList::from(list)) as Box<dyn Val + 'v>,
            )
        })
        .collect();
    Ok(CowVal::owned(CelMap::from(map)))
}

#[cfg(test)]
mod tests {
    use crate::cel::evaluate_standalone;

    /// The examples of the Kubernetes CEL documentation, and the edges around them.
    #[test]
    fn kubernetes_url_library_table() {
        let cases: &[(&str, &str)] = &[
            ("isURL('https://example.com:80/')", "true"),
            ("isURL('https://example.com')", "true"),
            ("isURL('/absolute-path')", "true"),
            ("isURL('../relative-path')", "false"),
            ("isURL('example.com')", "false"),
            ("isURL('')", "false"),
            ("isURL('https://example.com:8a/')", "false"),
            ("isURL('https://[::1/')", "false"),
            ("isURL('https://example.com/%zz')", "false"),
            ("isURL(':no-scheme')", "false"),
            ("url('https://example.com:80/').getScheme()", "\"https\""),
            ("url('HTTPS://example.com/').getScheme()", "\"https\""),
            ("url('/absolute-path').getScheme()", "\"\""),
            (
                "url('https://example.com:80/').getHost()",
                "\"example.com:80\"",
            ),
            ("url('https://example.com/').getHost()", "\"example.com\""),
            ("url('https://[::1]:80/').getHost()", "\"[::1]:80\""),
            ("url('https://[::1]/').getHost()", "\"[::1]\""),
            ("url('/path').getHost()", "\"\""),
            (
                "url('https://user:pw@example.com/').getHost()",
                "\"example.com\"",
            ),
            (
                "url('https://example.com:80/').getHostname()",
                "\"example.com\"",
            ),
            ("url('https://[::1]:80/').getHostname()", "\"::1\""),
            ("url('https://[::1]/').getHostname()", "\"::1\""),
            ("url('https://example.com:80/').getPort()", "\"80\""),
            ("url('https://example.com/').getPort()", "\"\""),
            ("url('https://[::1]/').getPort()", "\"\""),
            (
                "url('https://example.com/path').getEscapedPath()",
                "\"/path\"",
            ),
            (
                "url('https://example.com/path with spaces/').getEscapedPath()",
                "\"/path%20with%20spaces/\"",
            ),
            ("url('https://example.com').getEscapedPath()", "\"\""),
            (
                "url('https://example.com/a%2Fb').getEscapedPath()",
                "\"/a%2Fb\"",
            ),
            (
                "url('https://example.com/a(b)').getEscapedPath()",
                "\"/a(b)\"",
            ),
            (
                "url('https://example.com/a#frag').getEscapedPath()",
                "\"/a%23frag\"",
            ),
            (
                "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
                "true",
            ),
            (
                "url('https://example.com/?q=a+b%21').getQuery()['q'][0]",
                "\"a b!\"",
            ),
            (
                "url('https://example.com/?a;b=1&c=2').getQuery() == {'c': ['2']}",
                "true",
            ),
            ("url('https://example.com/').getQuery().size()", "0"),
            (
                "url('https://example.com/?flag').getQuery()['flag']",
                "[\"\"]",
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(evaluate_standalone(expr).as_deref(), Ok(*want), "{expr}");
        }
        let err = evaluate_standalone("url('../x')").unwrap_err();
        assert!(err.contains("invalid URI for request"), "{err}");
    }
}
