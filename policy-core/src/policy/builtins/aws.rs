//! `providers.aws.sign_req(request, aws_config, time_ns)`: signs an
//! `http.send` request object with AWS Signature Version 4, as OPA does, and
//! returns the request with its headers replaced by the signed set
//! (`Authorization`, `host`, `x-amz-date`, and for S3 and Glacier
//! `x-amz-content-sha256`). The signing time is the third argument, so the
//! result is deterministic.

use std::collections::BTreeSet;

use anyhow::{Result, anyhow, bail};
use regorus::Value;
use sha2::{Digest, Sha256};

use super::crypto::{hex, hmac_bytes};
use super::goshape::civil_from_days;
use super::{Builtin, go_json, object_operand, type_name};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("providers.aws.sign_req", 3, sign_req)];

const NAME: &str = "providers.aws.sign_req";

/// The request keys `http.send` accepts.
const REQUEST_KEYS: &[&str] = &[
    "body",
    "cache",
    "cache_ignored_headers",
    "caching_mode",
    "enable_redirect",
    "force_cache",
    "force_cache_duration_seconds",
    "force_json_decode",
    "force_yaml_decode",
    "headers",
    "max_retry_attempts",
    "method",
    "raise_error",
    "raw_body",
    "timeout",
    "tls_ca_cert",
    "tls_ca_cert_env_variable",
    "tls_ca_cert_file",
    "tls_client_cert",
    "tls_client_cert_env_variable",
    "tls_client_cert_file",
    "tls_client_key",
    "tls_client_key_env_variable",
    "tls_client_key_file",
    "tls_insecure_skip_verify",
    "tls_server_name",
    "tls_use_system_certs",
    "url",
];

const REQUIRED_CONFIG: &[&str] = &[
    "aws_access_key",
    "aws_region",
    "aws_secret_access_key",
    "aws_service",
];

/// OPA prints a set of strings as `{"a", "b"}`.
fn set_text(items: &BTreeSet<&str>) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("{{{}}}", quoted.join(", "))
}

fn text(v: &Value) -> String {
    v.as_string().map(|s| s.to_string()).unwrap_or_default()
}

/// Go's `url.URL.EscapedPath`, `Host` and `RawQuery` of a request URL.
struct UrlParts {
    host: String,
    path: String,
    query: String,
}

fn url_parts(url: &str) -> Result<UrlParts> {
    let without_fragment = url.split('#').next().unwrap_or("");
    let (before_query, query) = match without_fragment.split_once('?') {
        Some((a, q)) => (a, q.to_owned()),
        None => (without_fragment, String::new()),
    };
    let Some((_, rest)) = before_query.split_once("://") else {
        bail!("{NAME}: parse {url:?}: missing scheme or host");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Ok(UrlParts {
        host: host.to_owned(),
        path: escaped_path(path),
        query,
    })
}

/// The path as sent: kept when already validly escaped, else escaped (Go's rules).
fn escaped_path(raw: &str) -> String {
    if crate::gourl::valid_encoded_path(raw) {
        raw.to_owned()
    } else {
        crate::gourl::escape_path(raw)
    }
}

fn sign_req(args: &[Value]) -> Result<Value> {
    let [request, config, time_ns] = args else {
        bail!("{NAME}: expects 3 arguments");
    };
    let request = object_operand(NAME, 1, request)?;
    let config = object_operand(NAME, 1, config)?;
    let missing: BTreeSet<&str> = REQUIRED_CONFIG
        .iter()
        .copied()
        .filter(|k| !config.contains_key(&Value::from(*k)))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{NAME}: operand 2 missing required AWS config parameters(s): {}",
            set_text(&missing)
        );
    }
    let invalid: BTreeSet<&str> = REQUIRED_CONFIG
        .iter()
        .copied()
        .filter(|k| !matches!(config.get(&Value::from(*k)), Some(Value::String(_))))
        .collect();
    if !invalid.is_empty() {
        bail!(
            "{NAME}: operand 2 invalid values for required AWS config parameters(s): {}",
            set_text(&invalid)
        );
    }
    let cfg = |k: &str| config.get(&Value::from(k)).map(text).unwrap_or_default();
    let Value::Number(_) = time_ns else {
        bail!(
            "{NAME}: operand 1 must be number but got {}",
            type_name(time_ns)
        );
    };
    let ns = time_ns.as_i64().map_err(|_| {
        anyhow!("{NAME}: operand 3 could not convert time_ns value into a unix timestamp")
    })?;

    // http.send's request checks.
    let mut unknown = BTreeSet::new();
    for k in request.keys() {
        let key = k.as_string().map(|s| s.to_string()).unwrap_or_default();
        if !REQUEST_KEYS.contains(&key.as_str()) {
            unknown.insert(key);
        }
    }
    if !unknown.is_empty() {
        let unknown: BTreeSet<&str> = unknown.iter().map(String::as_str).collect();
        bail!(
            "{NAME}: invalid request parameters(s): {}",
            set_text(&unknown)
        );
    }
    let field = |k: &str| request.get(&Value::from(k));
    let missing: BTreeSet<&str> = ["method", "url"]
        .into_iter()
        .filter(|k| field(k).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{NAME}: missing required request parameters(s): {}",
            set_text(&missing)
        );
    }
    let headers = match field("headers") {
        None => None,
        Some(Value::Object(h)) => Some(h.clone()),
        Some(other) => bail!(
            "{NAME}: operand 0 must be object but got {}",
            type_name(other)
        ),
    };
    let invalid: BTreeSet<&str> = ["method", "url"]
        .into_iter()
        .filter(|k| !matches!(field(k), Some(Value::String(_))))
        .collect();
    if !invalid.is_empty() {
        bail!(
            "{NAME}: operand 1 invalid values for required request parameters(s): {}",
            set_text(&invalid)
        );
    }
    let url = url_parts(&field("url").map(text).unwrap_or_default())?;
    let method = field("method").map(text).unwrap_or_default();
    let body = match (field("raw_body"), field("body")) {
        (Some(raw), _) => text(raw).into_bytes(),
        (None, Some(body)) => go_json(body)?.into_bytes(),
        (None, None) => Vec::new(),
    };
    let unsigned = match config.get(&Value::from("disable_payload_signing")) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            bail!("{NAME}: operand 2 invalid value for 'disable_payload_signing' in AWS config")
        }
    };

    let request_headers: Vec<(String, String)> = headers
        .as_ref()
        .map(|h| h.iter().map(|(k, v)| (text(k), text(v))).collect())
        .unwrap_or_default();
    let signed = sign_v4(&SigningInput {
        method: &method,
        url: &url,
        headers: &request_headers,
        body: &body,
        service: &cfg("aws_service"),
        access_key: &cfg("aws_access_key"),
        secret_key: &cfg("aws_secret_access_key"),
        region: &cfg("aws_region"),
        session_token: &cfg("aws_session_token"),
        time_ns: ns,
        unsigned_payload: unsigned,
    });

    let mut out_headers = std::collections::BTreeMap::new();
    for (k, v) in request_headers {
        out_headers.insert(Value::from(k), Value::from(v));
    }
    out_headers.insert(
        Value::from("Authorization"),
        Value::from(signed.authorization),
    );
    for (k, v) in signed.aws_headers {
        out_headers.insert(Value::from(k), Value::from(v));
    }
    let mut out = request.clone();
    out.insert(Value::from("headers"), Value::from(out_headers));
    Ok(Value::Object(regorus::Rc::new(out)))
}

struct SigningInput<'a> {
    method: &'a str,
    url: &'a UrlParts,
    headers: &'a [(String, String)],
    body: &'a [u8],
    service: &'a str,
    access_key: &'a str,
    secret_key: &'a str,
    region: &'a str,
    session_token: &'a str,
    time_ns: i64,
    unsigned_payload: bool,
}

struct Signed {
    authorization: String,
    aws_headers: Vec<(String, String)>,
}

fn mac(key: &[u8], msg: &str) -> Vec<u8> {
    hmac_bytes::<hmac::Hmac<Sha256>>(key, msg.as_bytes())
}

fn sign_v4(input: &SigningInput<'_>) -> Signed {
    let secs = input.time_ns.div_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        tod / 3600,
        (tod / 60) % 60,
        tod % 60
    );
    let content_hash = if input.unsigned_payload {
        "UNSIGNED-PAYLOAD".to_owned()
    } else {
        hex(&Sha256::digest(input.body))
    };
    let mut aws_headers = vec![
        ("host".to_owned(), input.url.host.clone()),
        ("x-amz-date".to_owned(), stamp.clone()),
    ];
    if input.service == "s3" || input.service == "glacier" {
        aws_headers.push(("x-amz-content-sha256".to_owned(), content_hash.clone()));
    }
    if !input.session_token.is_empty() {
        aws_headers.push((
            "x-amz-security-token".to_owned(),
            input.session_token.to_owned(),
        ));
    }
    let mut to_sign: std::collections::BTreeMap<String, String> =
        aws_headers.iter().cloned().collect();
    for (k, v) in input.headers {
        let lower = k.to_lowercase();
        if !matches!(
            lower.as_str(),
            "authorization" | "user-agent" | "x-amzn-trace-id"
        ) {
            to_sign.insert(lower, v.clone());
        }
    }
    let mut canonical = format!(
        "{}\n{}\n{}\n",
        input.method, input.url.path, input.url.query
    );
    for (k, v) in &to_sign {
        canonical.push_str(&format!("{k}:{v}\n"));
    }
    canonical.push('\n');
    let signed_headers = to_sign.keys().cloned().collect::<Vec<_>>().join(";");
    canonical.push_str(&format!("{signed_headers}\n{content_hash}"));
    let scope = format!("{date}/{}/{}/aws4_request", input.region, input.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = mac(format!("AWS4{}", input.secret_key).as_bytes(), &date);
    let key = mac(&key, input.region);
    let key = mac(&key, input.service);
    let key = mac(&key, "aws4_request");
    let signature = hex(&mac(&key, &string_to_sign));
    Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
            input.access_key
        ),
        aws_headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &str) -> Value {
        Value::from_json_str(v).unwrap()
    }

    #[test]
    fn matches_the_aws_documentation_example() {
        // The IAM ListUsers example of AWS's Signature Version 4 guide:
        // 2015-08-30T12:36:00Z is 1440938160 s after the epoch.
        let request = json(
            r#"{"method": "GET", "url": "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
                "headers": {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}}"#,
        );
        let config = json(
            r#"{"aws_access_key": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "aws_service": "iam", "aws_region": "us-east-1"}"#,
        );
        let signed =
            sign_req(&[request, config, Value::from(1_440_938_160_000_000_000i64)]).unwrap();
        assert_eq!(
            signed["headers"],
            json(
                r#"{"content-type": "application/x-www-form-urlencoded; charset=utf-8",
                    "host": "iam.amazonaws.com", "x-amz-date": "20150830T123600Z",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request,SignedHeaders=content-type;host;x-amz-date,Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"}"#
            )
        );
        assert_eq!(signed["method"], Value::from("GET"));
    }

    #[test]
    fn s3_signs_the_payload_hash_and_checks_the_config() {
        let request =
            json(r#"{"method": "PUT", "url": "https://b.s3.amazonaws.com/k", "raw_body": "hi"}"#);
        let config = json(
            r#"{"aws_access_key": "A", "aws_secret_access_key": "S", "aws_service": "s3", "aws_region": "eu-west-1"}"#,
        );
        let signed = sign_req(&[request.clone(), config, Value::from(0)]).unwrap();
        assert_eq!(
            signed["headers"]["x-amz-content-sha256"],
            Value::from("8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4")
        );
        assert_eq!(
            signed["headers"]["x-amz-date"],
            Value::from("19700101T000000Z")
        );
        let err =
            sign_req(&[request, json(r#"{"aws_service": "s3"}"#), Value::from(0)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"providers.aws.sign_req: operand 2 missing required AWS config parameters(s): {"aws_access_key", "aws_region", "aws_secret_access_key"}"#
        );
    }
}
