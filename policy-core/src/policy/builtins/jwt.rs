//! `io.jwt.*`: decoding, verifying and signing JSON Web Tokens (JWS compact
//! serialization) with OPA's semantics.
//!
//! Keys come as OPA takes them: a PEM certificate or PEM public key, a JWK
//! or a JWK set (`{"keys": [...]}`) for verification, a plain secret for
//! the `verify_hs*` builtins, and a JWK (the first of a set) for signing.
//! Signatures use `ring` (RSA PKCS#1 v1.5 and PSS, ECDSA on P-256 and
//! P-384, Ed25519, HMAC) and `p521` for ECDSA on P-521, which ring lacks.
//! ring accepts RSA keys of 2048 bits and more (1024 for RS256 and RS512
//! verification); a smaller key does not verify.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use regorus::Value;
use ring::rand::SystemRandom;
use ring::signature as sig;

use super::crypto::{constant_time_eq, hex, hmac_bytes};
use super::{Builtin, go_json, object_operand, pem, str_operand};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("io.jwt.decode", 1, decode),
    ("io.jwt.decode_verify", 2, decode_verify),
    ("io.jwt.verify_hs256", 2, |a| {
        verify_hs("io.jwt.verify_hs256", Hash::Sha256, a)
    }),
    ("io.jwt.verify_hs384", 2, |a| {
        verify_hs("io.jwt.verify_hs384", Hash::Sha384, a)
    }),
    ("io.jwt.verify_hs512", 2, |a| {
        verify_hs("io.jwt.verify_hs512", Hash::Sha512, a)
    }),
    ("io.jwt.verify_rs256", 2, |a| {
        verify_builtin("io.jwt.verify_rs256", Alg::Rs(Hash::Sha256), a)
    }),
    ("io.jwt.verify_rs384", 2, |a| {
        verify_builtin("io.jwt.verify_rs384", Alg::Rs(Hash::Sha384), a)
    }),
    ("io.jwt.verify_rs512", 2, |a| {
        verify_builtin("io.jwt.verify_rs512", Alg::Rs(Hash::Sha512), a)
    }),
    ("io.jwt.verify_ps256", 2, |a| {
        verify_builtin("io.jwt.verify_ps256", Alg::Ps(Hash::Sha256), a)
    }),
    ("io.jwt.verify_ps384", 2, |a| {
        verify_builtin("io.jwt.verify_ps384", Alg::Ps(Hash::Sha384), a)
    }),
    ("io.jwt.verify_ps512", 2, |a| {
        verify_builtin("io.jwt.verify_ps512", Alg::Ps(Hash::Sha512), a)
    }),
    ("io.jwt.verify_es256", 2, |a| {
        verify_builtin("io.jwt.verify_es256", Alg::Es(Hash::Sha256), a)
    }),
    ("io.jwt.verify_es384", 2, |a| {
        verify_builtin("io.jwt.verify_es384", Alg::Es(Hash::Sha384), a)
    }),
    ("io.jwt.verify_es512", 2, |a| {
        verify_builtin("io.jwt.verify_es512", Alg::Es(Hash::Sha512), a)
    }),
    ("io.jwt.verify_eddsa", 2, |a| {
        verify_builtin("io.jwt.verify_eddsa", Alg::EdDsa, a)
    }),
    ("io.jwt.encode_sign", 3, encode_sign),
    ("io.jwt.encode_sign_raw", 3, encode_sign_raw),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha256 => sha2::Sha256::digest(msg).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(msg).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(msg).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => hmac_bytes::<hmac::Hmac<sha2::Sha256>>(key, msg),
            Hash::Sha384 => hmac_bytes::<hmac::Hmac<sha2::Sha384>>(key, msg),
            Hash::Sha512 => hmac_bytes::<hmac::Hmac<sha2::Sha512>>(key, msg),
        }
    }
}

/// A JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Alg {
    Hs(Hash),
    Rs(Hash),
    Ps(Hash),
    Es(Hash),
    EdDsa,
}

impl Alg {
    fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "HS256" => Alg::Hs(Hash::Sha256),
            "HS384" => Alg::Hs(Hash::Sha384),
            "HS512" => Alg::Hs(Hash::Sha512),
            "RS256" => Alg::Rs(Hash::Sha256),
            "RS384" => Alg::Rs(Hash::Sha384),
            "RS512" => Alg::Rs(Hash::Sha512),
            "PS256" => Alg::Ps(Hash::Sha256),
            "PS384" => Alg::Ps(Hash::Sha384),
            "PS512" => Alg::Ps(Hash::Sha512),
            "ES256" => Alg::Es(Hash::Sha256),
            "ES384" => Alg::Es(Hash::Sha384),
            "ES512" => Alg::Es(Hash::Sha512),
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_jwk(crv: &str) -> Result<Curve> {
        match crv {
            "P-256" => Ok(Curve::P256),
            "P-384" => Ok(Curve::P384),
            "P-521" => Ok(Curve::P521),
            other => bail!("unsupported elliptic curve {other:?}"),
        }
    }

    /// Bytes in one coordinate or scalar.
    fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// A key that can check a signature.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed SEC1 point (`04 || x || y`).
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
    /// A symmetric key, from a JWK of type `oct`.
    Secret(Vec<u8>),
}

/// A key with the algorithm and key id a JWK set may give it.
#[derive(Debug, Clone)]
struct VerificationKey {
    key: PublicKey,
    alg: String,
    kid: String,
}

fn b64url(s: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| anyhow!("invalid base64url: {e}"))
}

/// OPA's `base64url.decode`: padding is optional, as RFC 7515 appendix C
/// describes.
fn b64url_opa(s: &str) -> Result<Vec<u8>> {
    let mut padded = s.to_owned();
    if !s.ends_with('=') {
        match s.len() % 4 {
            0 => {}
            2 => padded.push_str("=="),
            3 => padded.push('='),
            _ => bail!("illegal base64url string: {s}"),
        }
    }
    URL_SAFE
        .decode(padded)
        .map_err(|e| anyhow!("illegal base64 data: {e}"))
}

/// The key in a SubjectPublicKeyInfo.
pub(super) fn public_key_from_spki(der: &[u8]) -> Result<PublicKey> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| anyhow!("failed to parse a public key: {e}"))?;
    public_key_of(&spki)
}

pub(super) fn public_key_of(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<PublicKey> {
    use x509_parser::public_key::PublicKey as Parsed;
    let alg = spki.algorithm.algorithm.to_id_string();
    match spki
        .parsed()
        .map_err(|e| anyhow!("failed to parse a public key: {e}"))?
    {
        Parsed::RSA(k) => Ok(PublicKey::Rsa {
            n: strip_zeros(k.modulus).to_vec(),
            e: strip_zeros(k.exponent).to_vec(),
        }),
        Parsed::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let curve = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => Curve::P256,
                Some("1.3.132.0.34") => Curve::P384,
                Some("1.3.132.0.35") => Curve::P521,
                _ => bail!("unsupported elliptic curve"),
            };
            Ok(PublicKey::Ec {
                curve,
                point: point.data().to_vec(),
            })
        }
        _ if alg == "1.3.101.112" => Ok(PublicKey::Ed25519(spki.subject_public_key.data.to_vec())),
        _ => bail!("unsupported public key algorithm {alg}"),
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or(&[])
}

/// Go's `jwk.ParseString`: a single key or `{"keys": [...]}`.
fn parse_jwk_set(text: &str) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| anyhow!("failed to parse a JWK key (set): {e}"))?;
    let serde_json::Value::Object(obj) = v else {
        bail!("failed to parse a JWK key (set): not an object");
    };
    match obj.get("keys") {
        Some(serde_json::Value::Array(keys)) => keys
            .iter()
            .map(|k| match k {
                serde_json::Value::Object(o) => Ok(o.clone()),
                _ => bail!("failed to parse a JWK key (set): key is not an object"),
            })
            .collect(),
        Some(_) => bail!("failed to parse a JWK key (set): keys is not an array"),
        None => Ok(vec![obj]),
    }
}

fn jwk_str<'a>(k: &'a serde_json::Map<String, serde_json::Value>, field: &str) -> Result<&'a str> {
    match k.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s),
        _ => bail!("JWK: missing or invalid {field:?}"),
    }
}

fn jwk_bytes(k: &serde_json::Map<String, serde_json::Value>, field: &str) -> Result<Vec<u8>> {
    b64url(jwk_str(k, field)?).map_err(|e| anyhow!("JWK {field:?}: {e}"))
}

fn jwk_public(k: &serde_json::Map<String, serde_json::Value>) -> Result<PublicKey> {
    match jwk_str(k, "kty")? {
        "RSA" => Ok(PublicKey::Rsa {
            n: strip_zeros(&jwk_bytes(k, "n")?).to_vec(),
            e: strip_zeros(&jwk_bytes(k, "e")?).to_vec(),
        }),
        "EC" => {
            let curve = Curve::from_jwk(jwk_str(k, "crv")?)?;
            let (x, y) = (jwk_bytes(k, "x")?, jwk_bytes(k, "y")?);
            Ok(PublicKey::Ec {
                curve,
                point: ec_point(curve, &x, &y)?,
            })
        }
        "OKP" => match jwk_str(k, "crv")? {
            "Ed25519" => Ok(PublicKey::Ed25519(jwk_bytes(k, "x")?)),
            other => bail!("unsupported OKP curve {other:?}"),
        },
        "oct" => Ok(PublicKey::Secret(jwk_bytes(k, "k")?)),
        other => bail!("unsupported JWK key type {other:?}"),
    }
}

/// `04 || x || y`, each coordinate left-padded to the curve size.
fn ec_point(curve: Curve, x: &[u8], y: &[u8]) -> Result<Vec<u8>> {
    let size = curve.size();
    let (x, y) = (strip_zeros(x), strip_zeros(y));
    if x.len() > size || y.len() > size {
        bail!("EC coordinate too long for the curve");
    }
    let mut point = vec![4u8];
    for c in [x, y] {
        point.extend(std::iter::repeat_n(0u8, size - c.len()));
        point.extend_from_slice(c);
    }
    Ok(point)
}

/// OPA's `getKeysFromCertOrJWK`.
fn verification_keys(text: &str) -> Result<Vec<VerificationKey>> {
    if let Some((block, rest)) = pem::decode(text) {
        if !rest.is_empty() {
            bail!("extra data after a PEM certificate block");
        }
        let key = match block.label.as_str() {
            "CERTIFICATE" => {
                use x509_parser::prelude::FromDer;
                let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&block.der)
                    .map_err(|e| anyhow!("failed to parse a PEM certificate: {e}"))?;
                public_key_of(cert.public_key())?
            }
            "PUBLIC KEY" => public_key_from_spki(&block.der)
                .map_err(|e| anyhow!("failed to parse a PEM public key: {e}"))?,
            _ => bail!("failed to extract a Key from the PEM certificate"),
        };
        return Ok(vec![VerificationKey {
            key,
            alg: String::new(),
            kid: String::new(),
        }]);
    }
    let mut keys = Vec::new();
    for k in parse_jwk_set(text)? {
        let alg = match k.get("alg") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        // Keys for algorithms OPA does not know are skipped.
        if !alg.is_empty() && Alg::from_name(&alg).is_none() {
            continue;
        }
        let kid = match k.get("kid") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        keys.push(VerificationKey {
            key: jwk_public(&k)?,
            alg,
            kid,
        });
    }
    Ok(keys)
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` from big-endian r and s.
fn ecdsa_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(b: &[u8]) -> Vec<u8> {
        let b = strip_zeros(b);
        let mut v = Vec::with_capacity(b.len() + 3);
        v.push(2);
        let pad = b.first().is_none_or(|x| *x >= 0x80);
        push_len(&mut v, b.len() + usize::from(pad));
        if pad {
            v.push(0);
        }
        v.extend_from_slice(b);
        v
    }
    fn push_len(v: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            v.push(len as u8);
        } else if len < 0x100 {
            v.extend([0x81, len as u8]);
        } else {
            v.extend([0x82, (len >> 8) as u8, len as u8]);
        }
    }
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    push_len(&mut out, body.len());
    out.extend(body);
    out
}

/// Whether `signature` over `msg` verifies under `key` with `alg`; a key
/// of the wrong type for the algorithm does not verify.
fn verify_signature(key: &PublicKey, alg: Alg, msg: &[u8], signature: &[u8]) -> bool {
    match (alg, key) {
        (Alg::Hs(h), PublicKey::Secret(secret)) => {
            constant_time_eq(&h.hmac(secret, msg), signature)
        }
        (Alg::Rs(h), PublicKey::Rsa { n, e }) => {
            let params: &[&sig::RsaParameters] = match h {
                Hash::Sha256 => &[
                    &sig::RSA_PKCS1_2048_8192_SHA256,
                    &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                ],
                Hash::Sha384 => &[&sig::RSA_PKCS1_2048_8192_SHA384],
                Hash::Sha512 => &[
                    &sig::RSA_PKCS1_2048_8192_SHA512,
                    &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                ],
            };
            let key = sig::RsaPublicKeyComponents { n, e };
            params.iter().any(|p| key.verify(p, msg, signature).is_ok())
        }
        (Alg::Ps(h), PublicKey::Rsa { n, e }) => {
            let params = match h {
                Hash::Sha256 => &sig::RSA_PSS_2048_8192_SHA256,
                Hash::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
                Hash::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
            };
            sig::RsaPublicKeyComponents { n, e }
                .verify(params, msg, signature)
                .is_ok()
        }
        (Alg::Es(h), PublicKey::Ec { curve, point }) => {
            // As OPA: the first half of the signature is r, the second s.
            let (r, s) = signature.split_at(signature.len() / 2);
            let ring_alg: &dyn sig::VerificationAlgorithm = match (curve, h) {
                (Curve::P256, Hash::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, Hash::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
                (Curve::P384, Hash::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, Hash::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
                (Curve::P521, _) => return verify_p521(point, &h.digest(msg), r, s),
                _ => return false,
            };
            sig::UnparsedPublicKey::new(ring_alg, point)
                .verify(msg, &ecdsa_der(r, s))
                .is_ok()
        }
        (Alg::EdDsa, PublicKey::Ed25519(pk)) => sig::UnparsedPublicKey::new(&sig::ED25519, pk)
            .verify(msg, signature)
            .is_ok(),
        _ => false,
    }
}

fn verify_p521(point: &[u8], digest: &[u8], r: &[u8], s: &[u8]) -> bool {
    use p521::ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(vk) = p521::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
        return false;
    };
    let (r, s) = (strip_zeros(r), strip_zeros(s));
    if r.len() > 66 || s.len() > 66 {
        return false;
    }
    let mut fixed = vec![0u8; 132];
    if let Some(rd) = fixed.get_mut(66 - r.len()..66) {
        rd.copy_from_slice(r);
    }
    if let Some(sd) = fixed.get_mut(132 - s.len()..) {
        sd.copy_from_slice(s);
    }
    let Ok(signature) = p521::ecdsa::Signature::from_slice(&fixed) else {
        return false;
    };
    vk.verify_prehash(digest, &signature).is_ok()
}

/// The three parts of a compact JWS.
struct Token<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn split_token(s: &str) -> Result<Token<'_>> {
    if !s.contains('.') {
        bail!("encoded JWT had no period separators");
    }
    let parts: Vec<&str> = s.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        bail!("encoded JWT must have 3 sections, found {}", parts.len());
    };
    Ok(Token {
        header,
        payload,
        signature,
    })
}

/// A JSON object from decoded token bytes.
fn json_object(bytes: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow!("invalid JSON: not UTF-8"))?;
    let v = Value::from_json_str(text).map_err(|e| anyhow!("invalid JSON: {e}"))?;
    if !matches!(v, Value::Object(_)) {
        bail!("decoded JSON type was not an Object");
    }
    Ok(v)
}

fn decode_header(token: &Token<'_>) -> Result<Value> {
    let bytes =
        b64url_opa(token.header).map_err(|e| anyhow!("JWT header had invalid encoding: {e}"))?;
    let header = json_object(&bytes).map_err(|e| anyhow!("bad JWT header: {e}"))?;
    if header
        .as_object()
        .is_ok_and(|o| o.contains_key(&Value::from("enc")))
    {
        bail!("JWT is a JWE object, which is not supported");
    }
    Ok(header)
}

fn decode_str<'a>(name: &str, args: &'a [Value]) -> Result<&'a str> {
    match args.first() {
        Some(v) => str_operand(name, 1, v),
        None => bail!("{name}: expects arguments"),
    }
}

fn decode(args: &[Value]) -> Result<Value> {
    let jwt = decode_str("io.jwt.decode", args)?;
    decode_token(jwt).map_err(|e| anyhow!("io.jwt.decode: {e}"))
}

fn decode_token(jwt: &str) -> Result<Value> {
    let token = split_token(jwt)?;
    let header = decode_header(&token)?;
    let payload =
        b64url_opa(token.payload).map_err(|e| anyhow!("JWT payload had invalid encoding: {e}"))?;
    if header["cty"] == Value::from("JWT") {
        // A nested token; jwt.io quotes it, so quotes are trimmed.
        let inner = String::from_utf8(payload).map_err(|_| anyhow!("nested JWT is not UTF-8"))?;
        return decode_token(inner.trim_matches(|c| c == '"' || c == '\''));
    }
    let payload = json_object(&payload)?;
    let signature = b64url_opa(token.signature)
        .map_err(|e| anyhow!("JWT signature had invalid encoding: {e}"))?;
    Ok(Value::from(vec![
        header,
        payload,
        Value::from(hex(&signature)),
    ]))
}

/// The JOSE header fields OPA checks.
#[derive(Debug, Default)]
struct Header {
    alg: String,
    kid: String,
    cty: String,
    crit: Vec<String>,
    unknown: Vec<String>,
}

impl Header {
    fn parse(v: &Value) -> Result<Header> {
        let mut h = Header::default();
        let Ok(obj) = v.as_object() else {
            bail!("JWT header is not an object");
        };
        for (k, v) in obj.iter() {
            let key = k.as_string().map(|s| s.to_string()).unwrap_or_default();
            let text = |name: &str| match v {
                Value::String(s) => Ok(s.to_string()),
                _ => Err(anyhow!("{name}: must be a string")),
            };
            match key.as_str() {
                "alg" => h.alg = text("alg")?,
                "kid" => h.kid = text("kid")?,
                "typ" => {
                    text("typ")?;
                }
                "cty" => h.cty = text("cty")?,
                "crit" => {
                    let Value::Array(items) = v else {
                        bail!("crit: must be a list");
                    };
                    h.crit = items
                        .iter()
                        .filter_map(|i| i.as_string().ok().map(|s| s.to_string()))
                        .collect();
                    if h.crit.is_empty() {
                        bail!("crit: must be a nonempty list");
                    }
                }
                _ => h.unknown.push(key),
            }
        }
        Ok(h)
    }

    /// RFC 7515: `alg` is required and every critical parameter known.
    fn valid(&self) -> bool {
        !self.alg.is_empty() && !self.unknown.iter().any(|u| self.crit.contains(u))
    }
}

fn verify_with_keys(
    keys: &[VerificationKey],
    kid: &str,
    alg: Alg,
    header_alg: &str,
    msg: &[u8],
    signature: &[u8],
) -> bool {
    if !kid.is_empty()
        && let Some(key) = keys.iter().find(|k| k.kid == kid)
    {
        return verify_signature(&key.key, alg, msg, signature);
    }
    keys.iter()
        .filter(|k| k.alg.is_empty() || k.alg == header_alg)
        .any(|k| verify_signature(&k.key, alg, msg, signature))
}

/// `io.jwt.verify_rs256` and its siblings.
fn verify_builtin(name: &str, alg: Alg, args: &[Value]) -> Result<Value> {
    let [jwt, key] = args else {
        bail!("{name}: expects 2 arguments");
    };
    let jwt = str_operand(name, 1, jwt)?;
    let key = str_operand(name, 2, key)?;
    let run = || -> Result<bool> {
        let token = split_token(jwt)?;
        let keys = verification_keys(key)?;
        let signature = b64url_opa(token.signature)?;
        let header = Header::parse(&decode_header(&token)?)?;
        let msg = format!("{}.{}", token.header, token.payload);
        Ok(verify_with_keys(
            &keys,
            &header.kid,
            alg,
            &header.alg,
            msg.as_bytes(),
            &signature,
        ))
    };
    Ok(Value::from(run().map_err(|e| anyhow!("{name}: {e}"))?))
}

fn verify_hs(name: &str, hash: Hash, args: &[Value]) -> Result<Value> {
    let [jwt, secret] = args else {
        bail!("{name}: expects 2 arguments");
    };
    let jwt = str_operand(name, 1, jwt)?;
    let secret = str_operand(name, 2, secret)?;
    let token = split_token(jwt).map_err(|e| anyhow!("{name}: {e}"))?;
    let msg = format!("{}.{}", token.header, token.payload);
    let signature = b64url_opa(token.signature).map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(Value::from(constant_time_eq(
        &hash.hmac(secret.as_bytes(), msg.as_bytes()),
        &signature,
    )))
}

/// The constraints object of `io.jwt.decode_verify`.
#[derive(Default)]
struct Constraints {
    keys: Option<Vec<VerificationKey>>,
    secret: String,
    alg: String,
    iss: String,
    aud: String,
    /// Nanoseconds since the epoch.
    time: f64,
}

fn time_constraint(v: &Value) -> Result<f64> {
    let Value::Number(_) = v else {
        bail!("token time constraint: must be a number");
    };
    let t = v
        .as_f64()
        .map_err(|_| anyhow!("token time constraint: unvalid float64"))?;
    if t < 0.0 {
        bail!("token time constraint: must not be negative");
    }
    Ok(t)
}

impl Constraints {
    fn parse(obj: &regorus::value::Object) -> Result<Constraints> {
        let mut c = Constraints::default();
        let mut time = None;
        for (k, v) in obj.iter() {
            let key = k.as_string().map(|s| s.to_string()).unwrap_or_default();
            let text = |name: &str| match v {
                Value::String(s) => Ok(s.to_string()),
                _ => Err(anyhow!("{name} constraint: must be a string")),
            };
            match key.as_str() {
                "cert" => {
                    let Value::String(s) = v else {
                        bail!("cert constraint: must be a string");
                    };
                    c.keys = Some(verification_keys(s)?);
                }
                "secret" => c.secret = text("secret")?,
                "alg" => c.alg = text("alg")?,
                "iss" => c.iss = text("iss")?,
                "aud" => c.aud = text("aud")?,
                "time" => time = Some(time_constraint(v)?),
                other => bail!("unknown token validation constraint: {other}"),
            }
        }
        c.time = match time {
            Some(t) => t,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as f64)
                .unwrap_or(0.0),
        };
        let key_count = usize::from(c.keys.is_some()) + usize::from(!c.secret.is_empty());
        if key_count > 1 {
            bail!("duplicate key constraints");
        }
        if key_count < 1 {
            bail!("no key constraint");
        }
        Ok(c)
    }

    fn verify(&self, header: &Header, msg: &[u8], signature: &[u8]) -> bool {
        let Some(alg) = Alg::from_name(&header.alg) else {
            return false;
        };
        match &self.keys {
            Some(keys) => verify_with_keys(keys, &header.kid, alg, &header.alg, msg, signature),
            None => verify_signature(
                &PublicKey::Secret(self.secret.as_bytes().to_vec()),
                alg,
                msg,
                signature,
            ),
        }
    }

    fn valid_audience(&self, aud: &Value) -> bool {
        match aud {
            Value::String(s) => s.as_ref() == self.aud,
            Value::Array(a) => a
                .iter()
                .any(|e| e.as_string().is_ok_and(|s| s.as_ref() == self.aud)),
            _ => false,
        }
    }
}

fn decode_verify(args: &[Value]) -> Result<Value> {
    let [jwt, constraints] = args else {
        bail!("io.jwt.decode_verify: expects 2 arguments");
    };
    let constraints = object_operand("io.jwt.decode_verify", 2, constraints)?;
    decode_verify_token(jwt, constraints).map_err(|e| anyhow!("io.jwt.decode_verify: {e}"))
}

fn unverified() -> Value {
    Value::from(vec![
        Value::from(false),
        Value::new_object(),
        Value::new_object(),
    ])
}

fn decode_verify_token(jwt: &Value, constraints: &regorus::value::Object) -> Result<Value> {
    let c = Constraints::parse(constraints)?;
    let mut current = str_operand("io.jwt.decode_verify", 1, jwt)?.to_owned();
    let (header, payload_bytes) = loop {
        let token = split_token(&current)?;
        let header_value = decode_header(&token)?;
        let header = Header::parse(&header_value)?;
        if !header.valid() || (!c.alg.is_empty() && c.alg != header.alg) {
            return Ok(unverified());
        }
        let signature = b64url_opa(token.signature)?;
        let msg = format!("{}.{}", token.header, token.payload);
        if !c.verify(&header, msg.as_bytes(), &signature) {
            return Ok(unverified());
        }
        let payload = b64url_opa(token.payload)
            .map_err(|e| anyhow!("JWT payload had invalid encoding: {e}"))?;
        if header.cty.eq_ignore_ascii_case("JWT") {
            current = String::from_utf8(payload).map_err(|_| anyhow!("nested JWT is not UTF-8"))?;
            continue;
        }
        break (header_value, payload);
    };
    let payload = json_object(&payload_bytes)?;
    if !c.iss.is_empty()
        && payload["iss"]
            .as_string()
            .map(|s| s.as_ref() != c.iss)
            .unwrap_or(true)
    {
        return Ok(unverified());
    }
    match &payload["aud"] {
        Value::Undefined if !c.aud.is_empty() => return Ok(unverified()),
        Value::Undefined => {}
        aud if !c.valid_audience(aud) => return Ok(unverified()),
        _ => {}
    }
    let now = c.time / 1e9;
    match &payload["exp"] {
        Value::Undefined => {}
        exp @ Value::Number(_) => {
            if exp.as_f64().is_ok_and(|exp| now >= exp) {
                return Ok(unverified());
            }
        }
        _ => bail!("exp value must be a number"),
    }
    match &payload["nbf"] {
        Value::Undefined => {}
        nbf @ Value::Number(_) => {
            if nbf.as_f64().is_ok_and(|nbf| now < nbf) {
                return Ok(unverified());
            }
        }
        _ => bail!("nbf value must be a number"),
    }
    Ok(Value::from(vec![Value::from(true), header, payload]))
}

/// A private key from a JWK, for signing.
enum SigningKey {
    Secret(Vec<u8>),
    Rsa(sig::RsaKeyPair),
    Ec(Curve, Vec<u8>, Vec<u8>),
    Ed25519(sig::Ed25519KeyPair),
}

fn signing_key(k: &serde_json::Map<String, serde_json::Value>) -> Result<SigningKey> {
    match jwk_str(k, "kty")? {
        "oct" => Ok(SigningKey::Secret(jwk_bytes(k, "k")?)),
        "RSA" => {
            let field = |f: &str| jwk_bytes(k, f);
            let components = ring::rsa::KeyPairComponents {
                public_key: ring::rsa::PublicKeyComponents {
                    n: field("n")?,
                    e: field("e")?,
                },
                d: field("d")?,
                p: field("p")?,
                q: field("q")?,
                dP: field("dp")?,
                dQ: field("dq")?,
                qInv: field("qi")?,
            };
            sig::RsaKeyPair::from_components(&components)
                .map(SigningKey::Rsa)
                .map_err(|e| anyhow!("invalid RSA private key: {e}"))
        }
        "EC" => {
            let curve = Curve::from_jwk(jwk_str(k, "crv")?)?;
            let point = ec_point(curve, &jwk_bytes(k, "x")?, &jwk_bytes(k, "y")?)?;
            let d = strip_zeros(&jwk_bytes(k, "d")?).to_vec();
            if d.len() > curve.size() {
                bail!("EC private key too long for the curve");
            }
            let mut scalar = vec![0u8; curve.size() - d.len()];
            scalar.extend(d);
            Ok(SigningKey::Ec(curve, scalar, point))
        }
        "OKP" => match jwk_str(k, "crv")? {
            "Ed25519" => sig::Ed25519KeyPair::from_seed_and_public_key(
                &jwk_bytes(k, "d")?,
                &jwk_bytes(k, "x")?,
            )
            .map(SigningKey::Ed25519)
            .map_err(|e| anyhow!("invalid Ed25519 private key: {e}")),
            other => bail!("unsupported OKP curve {other:?}"),
        },
        other => bail!("unsupported JWK key type {other:?}"),
    }
}

fn sign(key: &SigningKey, alg: Alg, msg: &[u8]) -> Result<Vec<u8>> {
    let rng = SystemRandom::new();
    match (alg, key) {
        (Alg::Hs(h), SigningKey::Secret(secret)) => Ok(h.hmac(secret, msg)),
        (Alg::Rs(h) | Alg::Ps(h), SigningKey::Rsa(pair)) => {
            let padding: &dyn sig::RsaEncoding = match (alg, h) {
                (Alg::Rs(_), Hash::Sha256) => &sig::RSA_PKCS1_SHA256,
                (Alg::Rs(_), Hash::Sha384) => &sig::RSA_PKCS1_SHA384,
                (Alg::Rs(_), Hash::Sha512) => &sig::RSA_PKCS1_SHA512,
                (_, Hash::Sha256) => &sig::RSA_PSS_SHA256,
                (_, Hash::Sha384) => &sig::RSA_PSS_SHA384,
                (_, Hash::Sha512) => &sig::RSA_PSS_SHA512,
            };
            let mut out = vec![0u8; pair.public().modulus_len()];
            pair.sign(padding, &rng, msg, &mut out)
                .map_err(|e| anyhow!("RSA signing failed: {e}"))?;
            Ok(out)
        }
        (Alg::Es(h), SigningKey::Ec(curve, d, point)) => {
            let ring_alg = match (curve, h) {
                (Curve::P256, Hash::Sha256) => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                (Curve::P384, Hash::Sha384) => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                (Curve::P521, Hash::Sha512) => {
                    use p521::ecdsa::signature::Signer;
                    let sk = p521::ecdsa::SigningKey::from_slice(d)
                        .map_err(|e| anyhow!("invalid P-521 private key: {e}"))?;
                    let s: p521::ecdsa::Signature = sk.sign(msg);
                    return Ok(s.to_bytes().to_vec());
                }
                _ => bail!("the key's curve does not match the algorithm"),
            };
            let pair = sig::EcdsaKeyPair::from_private_key_and_public_key(ring_alg, d, point, &rng)
                .map_err(|e| anyhow!("invalid EC private key: {e}"))?;
            let s = pair
                .sign(&rng, msg)
                .map_err(|e| anyhow!("ECDSA signing failed: {e}"))?;
            Ok(s.as_ref().to_vec())
        }
        (Alg::EdDsa, SigningKey::Ed25519(pair)) => Ok(pair.sign(msg).as_ref().to_vec()),
        _ => bail!("the key type does not match the algorithm"),
    }
}

/// Signs `header.payload` (both base64url-encoded from the given bytes)
/// with the first key of a JWK set.
fn encode_and_sign(header: &str, payload: &str, jwk: &str) -> Result<Value> {
    let keys = parse_jwk_set(jwk)?;
    let Some(first) = keys.first() else {
        bail!("no keys found in JWK set");
    };
    let header_json: Option<serde_json::Value> = serde_json::from_str(header).ok();
    let field = |name: &str| {
        header_json
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let alg_name = field("alg").ok_or_else(|| anyhow!("missing or invalid 'alg' header"))?;
    let alg =
        Alg::from_name(&alg_name).ok_or_else(|| anyhow!("unknown JWS algorithm: {alg_name}"))?;
    let typ = field("typ");
    if (typ.is_none() || typ.as_deref() == Some("JWT"))
        && serde_json::from_str::<serde::de::IgnoredAny>(payload).is_err()
    {
        bail!("type is JWT but payload is not JSON");
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = sign(&signing_key(first)?, alg, signing_input.as_bytes())?;
    Ok(Value::from(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

fn encode_sign_raw(args: &[Value]) -> Result<Value> {
    let name = "io.jwt.encode_sign_raw";
    let [header, payload, key] = args else {
        bail!("{name}: expects 3 arguments");
    };
    let key = str_operand(name, 3, key)?;
    let header = str_operand(name, 1, header)?;
    let payload = str_operand(name, 2, payload)?;
    encode_and_sign(header, payload, key).map_err(|e| anyhow!("{name}: {e}"))
}

fn encode_sign(args: &[Value]) -> Result<Value> {
    let name = "io.jwt.encode_sign";
    let [header, payload, key] = args else {
        bail!("{name}: expects 3 arguments");
    };
    let header = go_json(header)?;
    let payload = go_json(payload)?;
    let key = go_json(key)?;
    encode_and_sign(&header, &payload, &key).map_err(|e| anyhow!("{name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_JWK: &str = include_str!("testdata/rsa.jwk.json");
    const EC_JWK: &str = include_str!("testdata/ec.jwk.json");
    const EC521_JWK: &str = include_str!("testdata/ec521.jwk.json");
    const ED_JWK: &str = include_str!("testdata/ed25519.jwk.json");
    const RSA_PUBLIC_PEM: &str = include_str!("testdata/rsa_public.pem");
    const RS256_TOKEN: &str = include_str!("testdata/rs256.jwt");
    const ED_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.34VfPqNc1ETjlfoPk6T99n2LoY1ygnwJM2t3s6tWRdwQRbQ6nOmg-to8VlXC9THKAp7a5-x-RidGzNySeSphDg";

    fn call(name: &str, args: &[Value]) -> Result<Value> {
        let f = BUILTINS
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, _, f)| *f)
            .unwrap();
        f(args)
    }

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    fn json(v: &str) -> Value {
        Value::from_json_str(v).unwrap()
    }

    /// The public half of a JWK.
    fn public_jwk(jwk: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(jwk).unwrap();
        for f in ["d", "p", "q", "dp", "dq", "qi"] {
            v.as_object_mut().unwrap().remove(f);
        }
        v.to_string()
    }

    fn tamper(token: &str) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(r#"{"sub":"mallory"}"#),
            parts[2]
        )
    }

    #[test]
    fn rfc7515_hs256_example() {
        // RFC 7515 appendix A.1: header and payload bytes as given there.
        let header = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
        let payload =
            "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
        let key = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
        let token = call("io.jwt.encode_sign_raw", &[s(header), s(payload), s(key)]).unwrap();
        assert_eq!(
            token,
            s(
                "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
            )
        );
        let decoded = call("io.jwt.decode", &[token]).unwrap();
        assert_eq!(
            decoded,
            json(
                r#"[{"typ": "JWT", "alg": "HS256"}, {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": true}, "7418dfb49799e0254ffa607dd8adbbba16d4254d69d6bff05b58055853848d79"]"#
            )
        );
    }

    #[test]
    fn hs256_with_a_string_secret() {
        let token = call(
            "io.jwt.encode_sign",
            &[
                json(r#"{"alg": "HS256"}"#),
                json(r#"{"sub": "a<b"}"#),
                json(r#"{"kty": "oct", "k": "c2VjcmV0"}"#),
            ],
        )
        .unwrap();
        // Go's json.Marshal escapes '<' in the payload.
        let payload = token
            .as_string()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(payload).unwrap(),
            br#"{"sub":"a\u003cb"}"#
        );
        assert_eq!(
            call("io.jwt.verify_hs256", &[token.clone(), s("secret")]).unwrap(),
            Value::from(true)
        );
        assert_eq!(
            call("io.jwt.verify_hs256", &[token.clone(), s("other")]).unwrap(),
            Value::from(false)
        );
        assert_eq!(
            call("io.jwt.verify_hs384", &[token, s("secret")]).unwrap(),
            Value::from(false)
        );
    }

    #[test]
    fn rs256_matches_an_independent_signer() {
        let token = call(
            "io.jwt.encode_sign",
            &[
                json(r#"{"typ": "JWT", "alg": "RS256"}"#),
                json(r#"{"sub": "regard"}"#),
                json(RSA_JWK),
            ],
        )
        .unwrap();
        assert_eq!(token, s(RS256_TOKEN.trim()));
        for key in [
            RSA_PUBLIC_PEM.to_owned(),
            public_jwk(RSA_JWK),
            format!(r#"{{"keys": [{}]}}"#, public_jwk(RSA_JWK)),
        ] {
            assert_eq!(
                call("io.jwt.verify_rs256", &[token.clone(), s(&key)]).unwrap(),
                Value::from(true),
                "{key}"
            );
        }
        let forged = s(&tamper(RS256_TOKEN.trim()));
        assert_eq!(
            call("io.jwt.verify_rs256", &[forged, s(RSA_PUBLIC_PEM)]).unwrap(),
            Value::from(false)
        );
        assert_eq!(
            call("io.jwt.verify_ps256", &[token.clone(), s(RSA_PUBLIC_PEM)]).unwrap(),
            Value::from(false)
        );
        assert_eq!(
            call("io.jwt.verify_es256", &[token, s(RSA_PUBLIC_PEM)]).unwrap(),
            Value::from(false)
        );
    }

    #[test]
    fn randomized_signatures_round_trip() {
        let cases = [
            ("PS256", RSA_JWK, "io.jwt.verify_ps256"),
            ("PS512", RSA_JWK, "io.jwt.verify_ps512"),
            ("RS384", RSA_JWK, "io.jwt.verify_rs384"),
            ("ES256", EC_JWK, "io.jwt.verify_es256"),
            ("ES512", EC521_JWK, "io.jwt.verify_es512"),
        ];
        for (alg, jwk, verify) in cases {
            let header = Value::from(BTreeMapValue::from([("alg", alg)]));
            let token = call(
                "io.jwt.encode_sign",
                &[header, json(r#"{"n": 1}"#), json(jwk)],
            )
            .unwrap();
            let key = s(&public_jwk(jwk));
            assert_eq!(
                call(verify, &[token.clone(), key.clone()]).unwrap(),
                Value::from(true),
                "{alg}"
            );
            let forged = s(&tamper(token.as_string().unwrap()));
            assert_eq!(
                call(verify, &[forged, key]).unwrap(),
                Value::from(false),
                "{alg}"
            );
        }
    }

    /// A one-entry string map, for headers.
    struct BTreeMapValue;
    impl BTreeMapValue {
        fn from(items: [(&str, &str); 1]) -> std::collections::BTreeMap<Value, Value> {
            items
                .iter()
                .map(|(k, v)| (Value::from(*k), Value::from(*v)))
                .collect()
        }
    }

    #[test]
    fn eddsa_is_deterministic() {
        let token = call(
            "io.jwt.encode_sign_raw",
            &[s(r#"{"alg":"EdDSA"}"#), s(r#"{"a":1}"#), s(ED_JWK)],
        )
        .unwrap();
        assert_eq!(token, s(ED_TOKEN));
        assert_eq!(
            call("io.jwt.verify_eddsa", &[token, s(&public_jwk(ED_JWK))]).unwrap(),
            Value::from(true)
        );
    }

    #[test]
    fn decode_verify_checks_constraints() {
        let token = call(
            "io.jwt.encode_sign",
            &[
                json(r#"{"alg": "HS256", "typ": "JWT"}"#),
                json(r#"{"iss": "me", "aud": ["x", "y"], "nbf": 100, "exp": 200}"#),
                json(r#"{"kty": "oct", "k": "c2VjcmV0"}"#),
            ],
        )
        .unwrap();
        let dv = |c: &str| call("io.jwt.decode_verify", &[token.clone(), json(c)]);
        let ok = json(
            r#"[true, {"alg": "HS256", "typ": "JWT"}, {"iss": "me", "aud": ["x", "y"], "nbf": 100, "exp": 200}]"#,
        );
        let no = json("[false, {}, {}]");
        assert_eq!(
            dv(r#"{"secret": "secret", "time": 150000000000, "aud": "y", "iss": "me"}"#).unwrap(),
            ok
        );
        assert_eq!(
            dv(r#"{"secret": "secret", "time": 150000000000, "aud": "y", "alg": "HS256"}"#)
                .unwrap(),
            ok
        );
        // A token with an audience needs an audience constraint.
        assert_eq!(
            dv(r#"{"secret": "secret", "time": 150000000000}"#).unwrap(),
            no
        );
        assert_eq!(
            dv(r#"{"secret": "secret", "time": 250000000000, "aud": "y"}"#).unwrap(),
            no
        );
        assert_eq!(
            dv(r#"{"secret": "secret", "time": 50000000000, "aud": "y"}"#).unwrap(),
            no
        );
        assert_eq!(
            dv(r#"{"secret": "wrong", "time": 150000000000, "aud": "y"}"#).unwrap(),
            no
        );
        assert_eq!(
            dv(r#"{"secret": "secret", "time": 150000000000, "aud": "y", "iss": "you"}"#).unwrap(),
            no
        );
        assert_eq!(
            dv(r#"{"secret": "secret", "time": 150000000000, "aud": "y", "alg": "RS256"}"#)
                .unwrap(),
            no
        );
        assert_eq!(
            dv(r#"{"secret": "secret", "bogus": 1}"#)
                .unwrap_err()
                .to_string(),
            "io.jwt.decode_verify: unknown token validation constraint: bogus"
        );
        assert_eq!(
            dv(r#"{"time": 1}"#).unwrap_err().to_string(),
            "io.jwt.decode_verify: no key constraint"
        );
        let rs = dv(&format!(r#"{{"cert": {RSA_PUBLIC_PEM:?}}}"#)).unwrap();
        assert_eq!(rs, no);
    }

    #[test]
    fn decode_rejects_malformed_tokens() {
        assert_eq!(
            call("io.jwt.decode", &[s("abc")]).unwrap_err().to_string(),
            "io.jwt.decode: encoded JWT had no period separators"
        );
        assert_eq!(
            call("io.jwt.decode", &[s("a.b")]).unwrap_err().to_string(),
            "io.jwt.decode: encoded JWT must have 3 sections, found 2"
        );
        let jwe_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
        assert_eq!(
            call("io.jwt.decode", &[s(&format!("{jwe_header}.e30.e30"))])
                .unwrap_err()
                .to_string(),
            "io.jwt.decode: JWT is a JWE object, which is not supported"
        );
    }
}
