//! `purl.parse` and `purl.is_valid`: Package URLs
//! (`pkg:type/namespace/name@version?qualifiers#subpath`), parsed with the
//! rules of the Go `packageurl-go` library OPA uses: the type is
//! lowercased, some types lowercase their namespace and name (`pypi` also
//! turns `_` into `-`), empty qualifier values are dropped, and `conan`,
//! `swift` and `cran` have required parts.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use regorus::Value;

use super::{Builtin, object_of, str_operand, unary};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] =
    &[("purl.parse", 1, parse), ("purl.is_valid", 1, is_valid)];

/// The parts of a Package URL.
#[derive(Debug, Default, PartialEq)]
struct Purl {
    ty: String,
    namespace: String,
    name: String,
    version: String,
    qualifiers: Vec<(String, String)>,
    subpath: String,
}

/// Go's `url.PathUnescape`.
fn unescape(s: &str, what: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(v) = hex else {
                bail!(
                    "failed to unescape {what}: invalid URL escape {:?}",
                    s.get(i..).unwrap_or("")
                );
            };
            out.push(v);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow!("failed to unescape {what}: invalid UTF-8"))
}

fn valid_qualifier_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '.' | '-' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn from_string(purl: &str) -> Result<Purl> {
    let mut p = Purl::default();
    let (mut remainder, subpath) = match purl.split_once('#') {
        Some((r, s)) => (r, Some(s)),
        None => (purl, None),
    };
    if let Some(sub) = subpath {
        let mut parts = Vec::new();
        for item in sub.trim_matches('/').split('/') {
            let item = item.replace('.', "");
            if !item.is_empty() {
                parts.push(unescape(&item, "path")?);
            }
        }
        p.subpath = parts.join("/");
    }
    if let Some(q) = remainder.rfind('?') {
        for item in remainder.get(q + 1..).unwrap_or("").split('&') {
            let Some((k, v)) = item.split_once('=') else {
                bail!("invalid qualifier {item:?}: expected key=value");
            };
            let key = unescape(&k.to_lowercase(), "qualifier key")?;
            if !valid_qualifier_key(&key) {
                bail!("invalid qualifier key: '{key}'");
            }
            let v = v.split('=').next().unwrap_or("");
            if v.is_empty() {
                continue;
            }
            p.qualifiers.push((key, unescape(v, "qualifier value")?));
        }
        remainder = remainder.get(..q).unwrap_or("");
    }
    let Some(("pkg", rest)) = remainder.split_once(':') else {
        bail!("scheme is missing");
    };
    let Some((ty, rest)) = rest.trim_start_matches('/').split_once('/') else {
        bail!("type is missing");
    };
    p.ty = ty.to_lowercase();
    let (ns_part, last) = match rest.rfind('/') {
        Some(i) => (
            Some(rest.get(..i).unwrap_or("")),
            rest.get(i + 1..).unwrap_or(""),
        ),
        None => (None, rest),
    };
    let (name, version) = match last.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (last, None),
    };
    p.name = unescape(name, "purl name")?;
    if let Some(v) = version {
        p.version = unescape(v, "purl version")?;
    }
    match p.ty.as_str() {
        "bitbucket" | "deb" | "github" | "golang" => p.name = p.name.to_lowercase(),
        "pypi" => p.name = p.name.replace('_', "-").to_lowercase(),
        _ => {}
    }
    if let Some(ns) = ns_part {
        let parts = ns
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| unescape(s, "path"))
            .collect::<Result<Vec<_>>>()?;
        p.namespace = parts.join("/");
    }
    if matches!(
        p.ty.as_str(),
        "bitbucket" | "deb" | "github" | "golang" | "rpm"
    ) {
        p.namespace = p.namespace.to_lowercase();
    }
    if p.name.is_empty() {
        bail!("name is required");
    }
    let channel = p
        .qualifiers
        .iter()
        .rev()
        .find(|(k, _)| k == "channel")
        .map(|(_, v)| v.as_str());
    match p.ty.as_str() {
        "conan" if !p.namespace.is_empty() && channel.is_none() => {
            bail!("channel qualifier does not exist")
        }
        "conan" if p.namespace.is_empty() && channel.is_some_and(|c| !c.is_empty()) => {
            bail!("namespace is required if channel is non empty")
        }
        "swift" if p.namespace.is_empty() => bail!("namespace is required"),
        "swift" | "cran" if p.version.is_empty() => bail!("version is required"),
        _ => {}
    }
    Ok(p)
}

fn parse(args: &[Value]) -> Result<Value> {
    let s = str_operand("purl.parse", 1, unary("purl.parse", args)?)?;
    let p = from_string(s).map_err(|e| anyhow!("purl.parse: invalid PURL {s:?}: {e}"))?;
    let mut fields = vec![("type", Value::from(p.ty)), ("name", Value::from(p.name))];
    for (k, v) in [
        ("namespace", p.namespace),
        ("version", p.version),
        ("subpath", p.subpath),
    ] {
        if !v.is_empty() {
            fields.push((k, Value::from(v)));
        }
    }
    if !p.qualifiers.is_empty() {
        let q: BTreeMap<Value, Value> = p
            .qualifiers
            .into_iter()
            .map(|(k, v)| (Value::from(k), Value::from(v)))
            .collect();
        fields.push(("qualifiers", Value::from(q)));
    }
    Ok(object_of(fields))
}

fn is_valid(args: &[Value]) -> Result<Value> {
    Ok(Value::from(match unary("purl.is_valid", args)? {
        Value::String(s) => from_string(s).is_ok(),
        _ => false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Value {
        Value::from_json_str(s).unwrap()
    }

    #[test]
    fn parses_the_spec_examples() {
        assert_eq!(
            parse(&[Value::from("pkg:npm/%40angular/animation@12.3.1")]).unwrap(),
            json(
                r#"{"type": "npm", "namespace": "@angular", "name": "animation", "version": "12.3.1"}"#
            )
        );
        assert_eq!(
            parse(&[Value::from(
                "pkg:PyPI/Django_Utils@1.0?arch=x86_64&empty=#/src/./lib/"
            )])
            .unwrap(),
            json(
                r#"{"type": "pypi", "name": "django-utils", "version": "1.0", "qualifiers": {"arch": "x86_64"}, "subpath": "src/lib"}"#
            )
        );
        assert_eq!(
            parse(&[Value::from("pkg:maven/org.apache/commons-io")]).unwrap(),
            json(r#"{"type": "maven", "namespace": "org.apache", "name": "commons-io"}"#)
        );
    }

    #[test]
    fn rejects_what_packageurl_go_rejects() {
        let err = |s: &str| parse(&[Value::from(s)]).unwrap_err().to_string();
        assert_eq!(
            err("npm/x"),
            "purl.parse: invalid PURL \"npm/x\": scheme is missing"
        );
        assert_eq!(
            err("pkg:npm"),
            "purl.parse: invalid PURL \"pkg:npm\": type is missing"
        );
        assert_eq!(
            err("pkg:cran/A3"),
            "purl.parse: invalid PURL \"pkg:cran/A3\": version is required"
        );
        assert_eq!(
            is_valid(&[Value::from("pkg:npm/")]).unwrap(),
            Value::from(false)
        );
        assert_eq!(is_valid(&[Value::from(1)]).unwrap(), Value::from(false));
        assert_eq!(
            is_valid(&[Value::from("pkg:golang/x/y@v1")]).unwrap(),
            Value::from(true)
        );
    }
}
