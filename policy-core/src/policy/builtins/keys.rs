//! Private keys for `crypto.x509.parse_keypair`,
//! `crypto.x509.parse_rsa_private_key` and `crypto.parse_private_keys`:
//! PKCS #1, PKCS #8 and SEC 1 DER, shown either as Go's `encoding/json`
//! prints `*rsa.PrivateKey`, `*ecdsa.PrivateKey` and `ed25519.PrivateKey`,
//! or as a JWK.

use anyhow::{Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regorus::Value;

use super::der::{self, Der};
use super::goshape::{big, bytes};
use super::jwt::{Curve, PublicKey};
use super::{object_of, pem};

/// A private key with the parts Go and JWK show.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PrivateKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        d: Vec<u8>,
        p: Vec<u8>,
        q: Vec<u8>,
        dp: Vec<u8>,
        dq: Vec<u8>,
        qi: Vec<u8>,
    },
    Ec {
        curve: Curve,
        d: Vec<u8>,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        seed: Vec<u8>,
        public: Vec<u8>,
    },
}

fn curve_size(c: Curve) -> usize {
    match c {
        Curve::P256 => 32,
        Curve::P384 => 48,
        Curve::P521 => 66,
    }
}

fn curve_from_oid(arcs: &[u64]) -> Result<Curve> {
    match der::oid_string(arcs).as_str() {
        "1.2.840.10045.3.1.7" => Ok(Curve::P256),
        "1.3.132.0.34" => Ok(Curve::P384),
        "1.3.132.0.35" => Ok(Curve::P521),
        _ => bail!("x509: unknown elliptic curve"),
    }
}

fn curve_name(c: Curve) -> &'static str {
    match c {
        Curve::P256 => "P-256",
        Curve::P384 => "P-384",
        Curve::P521 => "P-521",
    }
}

fn padded(b: &[u8], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size.saturating_sub(b.len())];
    out.extend_from_slice(b);
    out
}

impl PrivateKey {
    /// Go's `x509.ParsePKCS1PrivateKey` (two-prime keys).
    pub fn from_pkcs1(der_bytes: &[u8]) -> Result<PrivateKey> {
        let mut seq = Der::new(der_bytes)
            .read_seq()
            .map_err(|_| anyhow!("x509: failed to parse private key"))?;
        let version = seq.read_int()?;
        if version != 0 {
            bail!("x509: unsupported private key version");
        }
        let mut next = || seq.read_uint().map(<[u8]>::to_vec);
        Ok(PrivateKey::Rsa {
            n: next()?,
            e: next()?,
            d: next()?,
            p: next()?,
            q: next()?,
            dp: next()?,
            dq: next()?,
            qi: next()?,
        })
    }

    /// Go's `x509.ParseECPrivateKey`, with the curve from PKCS #8 when
    /// the SEC 1 structure leaves it out.
    pub fn from_sec1(der_bytes: &[u8], curve: Option<Curve>) -> Result<PrivateKey> {
        let mut seq = Der::new(der_bytes)
            .read_seq()
            .map_err(|_| anyhow!("x509: failed to parse EC private key"))?;
        if seq.read_int()? != 1 {
            bail!("x509: unknown EC private key version");
        }
        let d = seq.read(der::OCTET_STRING)?.to_vec();
        let mut curve = curve;
        let mut public = None;
        if let Some(params) = seq.read_optional(0xa0)? {
            curve = Some(curve_from_oid(&Der::new(params).read_oid()?)?);
        }
        if let Some(pk) = seq.read_optional(0xa1)? {
            public = Some(
                Der::new(pk)
                    .read(der::BIT_STRING)?
                    .get(1..)
                    .unwrap_or(&[])
                    .to_vec(),
            );
        }
        let curve = curve.ok_or_else(|| anyhow!("x509: unknown elliptic curve"))?;
        let size = curve_size(curve);
        let point = public.ok_or_else(|| anyhow!("x509: EC private key without its public key"))?;
        if point.first() != Some(&4) || point.len() != 1 + 2 * size {
            bail!("x509: invalid EC public key");
        }
        Ok(PrivateKey::Ec {
            curve,
            d: padded(&d, size),
            x: point.get(1..1 + size).unwrap_or(&[]).to_vec(),
            y: point.get(1 + size..).unwrap_or(&[]).to_vec(),
        })
    }

    /// Go's `x509.ParsePKCS8PrivateKey`.
    pub fn from_pkcs8(der_bytes: &[u8]) -> Result<PrivateKey> {
        let mut seq = Der::new(der_bytes)
            .read_seq()
            .map_err(|_| anyhow!("x509: failed to parse private key"))?;
        seq.read_int()?;
        let mut alg = seq.read_seq()?;
        let oid = alg.read_oid()?;
        let key = seq.read(der::OCTET_STRING)?;
        match der::oid_string(&oid).as_str() {
            "1.2.840.113549.1.1.1" => PrivateKey::from_pkcs1(key),
            "1.2.840.10045.2.1" => {
                let curve = curve_from_oid(&alg.read_oid()?)?;
                PrivateKey::from_sec1(key, Some(curve))
            }
            "1.3.101.112" => {
                let seed = Der::new(key).read(der::OCTET_STRING)?;
                if seed.len() != 32 {
                    bail!("x509: invalid Ed25519 private key length: {}", seed.len());
                }
                let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                    .map_err(|_| anyhow!("x509: invalid Ed25519 private key"))?;
                use ring::signature::KeyPair;
                Ok(PrivateKey::Ed25519 {
                    seed: seed.to_vec(),
                    public: pair.public_key().as_ref().to_vec(),
                })
            }
            other => {
                bail!("x509: PKCS#8 wrapping contained private key with unknown algorithm: {other}")
            }
        }
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa { n, e, .. } => PublicKey::Rsa {
                n: n.clone(),
                e: e.clone(),
            },
            PrivateKey::Ec { curve, x, y, .. } => PublicKey::Ec {
                curve: *curve,
                point: [&[4u8][..], x, y].concat(),
            },
            PrivateKey::Ed25519 { public, .. } => PublicKey::Ed25519(public.clone()),
        }
    }

    /// As Go's `encoding/json` prints the key.
    pub fn go_value(&self) -> Value {
        match self {
            PrivateKey::Rsa {
                n,
                e,
                d,
                p,
                q,
                dp,
                dq,
                qi,
            } => object_of([
                ("N", big(n)),
                ("E", big(e)),
                ("D", big(d)),
                ("Primes", Value::from(vec![big(p), big(q)])),
                (
                    "Precomputed",
                    object_of([
                        ("Dp", big(dp)),
                        ("Dq", big(dq)),
                        ("Qinv", big(qi)),
                        ("CRTValues", Value::new_array()),
                    ]),
                ),
            ]),
            PrivateKey::Ec { x, y, d, .. } => object_of([
                ("Curve", Value::new_object()),
                ("X", big(x)),
                ("Y", big(y)),
                ("D", big(d)),
            ]),
            PrivateKey::Ed25519 { seed, public } => bytes(&[seed.as_slice(), public].concat()),
        }
    }

    /// The key as a JWK.
    pub fn jwk(&self) -> Value {
        let b = |v: &[u8]| Value::from(URL_SAFE_NO_PAD.encode(v));
        match self {
            PrivateKey::Rsa {
                n,
                e,
                d,
                p,
                q,
                dp,
                dq,
                qi,
            } => object_of([
                ("kty", Value::from("RSA")),
                ("n", b(n)),
                ("e", b(e)),
                ("d", b(d)),
                ("p", b(p)),
                ("q", b(q)),
                ("dp", b(dp)),
                ("dq", b(dq)),
                ("qi", b(qi)),
            ]),
            PrivateKey::Ec { curve, d, x, y } => object_of([
                ("kty", Value::from("EC")),
                ("crv", Value::from(curve_name(*curve))),
                ("x", b(x)),
                ("y", b(y)),
                ("d", b(d)),
            ]),
            PrivateKey::Ed25519 { seed, public } => object_of([
                ("kty", Value::from("OKP")),
                ("crv", Value::from("Ed25519")),
                ("x", b(public)),
                ("d", b(seed)),
            ]),
        }
    }
}

/// OPA's `getPrivateKeysFromPEMData`: base64 is decoded first if it
/// decodes; then every `RSA PRIVATE KEY`, `PRIVATE KEY` and
/// `EC PRIVATE KEY` block is parsed, other blocks skipped.
pub(super) fn keys_from_pem_data(input: &str) -> Result<Vec<PrivateKey>> {
    let decoded = super::goshape::decode_base64(input)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let mut text = decoded.as_deref().unwrap_or(input);
    let mut keys = Vec::new();
    while let Some((block, rest)) = pem::decode(text) {
        match block.label.as_str() {
            "RSA PRIVATE KEY" => keys.push(PrivateKey::from_pkcs1(&block.der)?),
            "PRIVATE KEY" => keys.push(PrivateKey::from_pkcs8(&block.der)?),
            "EC PRIVATE KEY" => keys.push(PrivateKey::from_sec1(&block.der, None)?),
            _ => {}
        }
        text = rest;
    }
    Ok(keys)
}

/// Go's `tls` key parsing: PKCS #1, then PKCS #8, then SEC 1.
pub(super) fn parse_any_private_key(der_bytes: &[u8]) -> Result<PrivateKey> {
    PrivateKey::from_pkcs1(der_bytes)
        .or_else(|_| PrivateKey::from_pkcs8(der_bytes))
        .or_else(|_| PrivateKey::from_sec1(der_bytes, None))
        .map_err(|_| anyhow!("tls: failed to parse private key"))
}
