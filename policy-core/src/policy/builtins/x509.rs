//! `crypto.x509.*` and `crypto.parse_private_keys`: certificates,
//! certificate requests and private keys, returned shaped as Go's
//! `encoding/json` prints `x509.Certificate`, `x509.CertificateRequest`,
//! `tls.Certificate` and the private key types (Go 1.24 field set), since
//! that is what OPA hands to Rego.
//!
//! Input is PEM, or base64 of DER or of PEM, as OPA accepts. Certificates
//! are decoded field by field with [`super::der`], following Go's parser,
//! so raw fields hold exactly the bytes Go would. Chain verification
//! (`parse_and_verify_certificates*`) takes the first certificate as the
//! root and the last as the leaf, as OPA does, and checks signatures,
//! validity periods, CA constraints, path lengths, extended key usages and
//! the DNS name; it does not apply name constraints.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use regorus::Value;
use ring::signature as sig;

use super::der::{self, Der};
use super::goshape::{self, Instant, big, bytes, list, oid, opt_bytes, strings};
use super::jwt::{Curve, PublicKey, public_key_from_spki};
use super::keys;
use super::{Builtin, object_of, object_operand, pem, str_operand, unary};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("crypto.x509.parse_certificates", 1, parse_certificates),
    (
        "crypto.x509.parse_and_verify_certificates",
        1,
        parse_and_verify,
    ),
    (
        "crypto.x509.parse_and_verify_certificates_with_options",
        2,
        parse_and_verify_with_options,
    ),
    (
        "crypto.x509.parse_certificate_request",
        1,
        parse_certificate_request,
    ),
    ("crypto.x509.parse_keypair", 2, parse_keypair),
    (
        "crypto.x509.parse_rsa_private_key",
        1,
        parse_rsa_private_key,
    ),
    ("crypto.parse_private_keys", 1, parse_private_keys),
];

/// A parsed extension.
#[derive(Debug, Clone)]
struct Extension {
    id: Vec<u64>,
    critical: bool,
    value: Vec<u8>,
}

/// A distinguished name, as Go's `pkix.Name` after `FillFromRDNSequence`.
#[derive(Debug, Clone, Default)]
struct Name {
    raw: Vec<u8>,
    /// Every attribute in order: type and string value.
    names: Vec<(Vec<u64>, String)>,
}

impl Name {
    fn parse(raw: &[u8]) -> Result<Name> {
        let mut name = Name {
            raw: raw.to_vec(),
            names: Vec::new(),
        };
        let mut seq = Der::new(raw).read_seq()?;
        while !seq.is_empty() {
            let mut rdn = Der::new(seq.read(der::SET)?);
            while !rdn.is_empty() {
                let mut atv = rdn.read_seq()?;
                let ty = atv.read_oid()?;
                let (tag, value, _) = atv.read_any()?;
                let value = asn1_string(tag, value).map_err(|e| {
                    anyhow!("x509: invalid RDNSequence: invalid attribute value: {e}")
                })?;
                name.names.push((ty, value));
            }
        }
        Ok(name)
    }

    /// The values of the attribute `2.5.4.<n>`.
    fn values(&self, n: u64) -> Vec<String> {
        self.names
            .iter()
            .filter(|(t, _)| t.as_slice() == [2, 5, 4, n])
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn last(&self, n: u64) -> String {
        self.values(n).pop().unwrap_or_default()
    }

    fn to_value(&self) -> Value {
        object_of([
            ("Country", strings(&self.values(6))),
            ("Organization", strings(&self.values(10))),
            ("OrganizationalUnit", strings(&self.values(11))),
            ("Locality", strings(&self.values(7))),
            ("Province", strings(&self.values(8))),
            ("StreetAddress", strings(&self.values(9))),
            ("PostalCode", strings(&self.values(17))),
            ("SerialNumber", Value::from(self.last(5))),
            ("CommonName", Value::from(self.last(3))),
            (
                "Names",
                list(
                    self.names
                        .iter()
                        .map(|(t, v)| {
                            object_of([("Type", oid(t)), ("Value", Value::from(v.as_str()))])
                        })
                        .collect(),
                ),
            ),
            ("ExtraNames", Value::Null),
        ])
    }
}

/// Go's `parseASN1String`.
fn asn1_string(tag: u8, b: &[u8]) -> Result<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString
        0x0c | 0x13 | 0x16 | 0x12 => {
            String::from_utf8(b.to_vec()).map_err(|_| anyhow!("invalid UTF-8 string"))
        }
        // T61String: Latin-1, as Go reads it.
        0x14 => Ok(b.iter().map(|c| char::from(*c)).collect()),
        // BMPString: UTF-16BE.
        0x1e => {
            if !b.len().is_multiple_of(2) {
                bail!("invalid BMPString");
            }
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| {
                    u16::from_be_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            String::from_utf16(&units).map_err(|_| anyhow!("invalid BMPString"))
        }
        _ => bail!("unsupported string type: {tag:#04x}"),
    }
}

/// A public key with the algorithm numbers Go gives it.
#[derive(Debug, Clone)]
struct Spki {
    raw: Vec<u8>,
    /// Go's `PublicKeyAlgorithm`: 0 unknown, 1 RSA, 2 DSA, 3 ECDSA, 4 Ed25519.
    algorithm: u8,
    key: Option<PublicKey>,
}

impl Spki {
    fn parse(raw: &[u8]) -> Result<Spki> {
        let mut seq = Der::new(raw).read_seq()?;
        let alg_oid = seq.read_seq()?.read_oid()?;
        let algorithm = match der::oid_string(&alg_oid).as_str() {
            "1.2.840.113549.1.1.1" => 1,
            "1.2.840.10040.4.1" => 2,
            "1.2.840.10045.2.1" => 3,
            "1.3.101.112" => 4,
            _ => 0,
        };
        let key = match algorithm {
            1 | 3 | 4 => Some(public_key_from_spki(raw)?),
            _ => None,
        };
        Ok(Spki {
            raw: raw.to_vec(),
            algorithm,
            key,
        })
    }

    /// The `PublicKey` field: `*rsa.PublicKey`, `*ecdsa.PublicKey` or
    /// `ed25519.PublicKey` as Go marshals them (an elliptic curve has no
    /// exported fields, hence `{}`).
    fn key_value(&self) -> Value {
        public_key_value(self.key.as_ref())
    }
}

fn public_key_value(key: Option<&PublicKey>) -> Value {
    match key {
        Some(PublicKey::Rsa { n, e }) => object_of([("N", big(n)), ("E", big(e))]),
        Some(PublicKey::Ec { point, curve }) => {
            let size = curve_size(*curve);
            let x = point.get(1..1 + size).unwrap_or(&[]);
            let y = point.get(1 + size..).unwrap_or(&[]);
            object_of([("Curve", Value::new_object()), ("X", big(x)), ("Y", big(y))])
        }
        Some(PublicKey::Ed25519(k)) => bytes(k),
        Some(PublicKey::Secret(_)) | None => Value::Null,
    }
}

fn curve_size(c: Curve) -> usize {
    match c {
        Curve::P256 => 32,
        Curve::P384 => 48,
        Curve::P521 => 66,
    }
}

/// Go's `SignatureAlgorithm` number for an AlgorithmIdentifier.
fn signature_algorithm(ai: &[u8]) -> Result<u8> {
    let mut seq = Der::new(ai);
    let id = der::oid_string(&seq.read_oid()?);
    Ok(match id.as_str() {
        "1.2.840.113549.1.1.2" => 1,
        "1.2.840.113549.1.1.4" => 2,
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => 3,
        "1.2.840.113549.1.1.11" => 4,
        "1.2.840.113549.1.1.12" => 5,
        "1.2.840.113549.1.1.13" => 6,
        "1.2.840.10040.4.3" => 7,
        "2.16.840.1.101.3.4.3.2" => 8,
        "1.2.840.10045.4.1" => 9,
        "1.2.840.10045.4.3.2" => 10,
        "1.2.840.10045.4.3.3" => 11,
        "1.2.840.10045.4.3.4" => 12,
        "1.2.840.113549.1.1.10" => {
            // RSASSA-PSS: the hash named in the parameters.
            let params = ai;
            let has = |hash: &[u8]| params.windows(hash.len()).any(|w| w == hash);
            if has(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]) {
                13
            } else if has(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02]) {
                14
            } else if has(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03]) {
                15
            } else {
                0
            }
        }
        "1.3.101.112" => 16,
        _ => 0,
    })
}

/// The subject alternative names.
#[derive(Debug, Default, Clone)]
struct Sans {
    dns: Vec<String>,
    emails: Vec<String>,
    ips: Vec<String>,
    uris: Vec<String>,
}

fn ip_string(b: &[u8]) -> Result<String> {
    match b.len() {
        4 => Ok(std::net::Ipv4Addr::new(
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
            b.get(2).copied().unwrap_or(0),
            b.get(3).copied().unwrap_or(0),
        )
        .to_string()),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = std::net::Ipv6Addr::from(a);
            Ok(match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            })
        }
        n => bail!("x509: cannot parse IP address of length {n}"),
    }
}

fn parse_sans(value: &[u8]) -> Result<Sans> {
    let mut sans = Sans::default();
    let mut seq = Der::new(value).read_seq()?;
    while !seq.is_empty() {
        let (tag, content, _) = seq.read_any()?;
        let text =
            || String::from_utf8(content.to_vec()).map_err(|_| anyhow!("x509: SAN is not ASCII"));
        match tag {
            0x81 => sans.emails.push(text()?),
            0x82 => sans.dns.push(text()?),
            0x86 => {
                let uri = text()?;
                goshape::url(&uri).map_err(|e| anyhow!("x509: cannot parse URI {uri:?}: {e}"))?;
                sans.uris.push(uri);
            }
            0x87 => sans.ips.push(ip_string(content)?),
            _ => {}
        }
    }
    Ok(sans)
}

fn parse_extensions(raw: &[u8]) -> Result<Vec<Extension>> {
    let mut out = Vec::new();
    let mut seq = Der::new(raw).read_seq()?;
    while !seq.is_empty() {
        let mut ext = seq.read_seq()?;
        let id = ext.read_oid()?;
        let critical = ext
            .read_optional(der::BOOLEAN)?
            .is_some_and(|b| b.first().is_some_and(|x| *x != 0));
        let value = ext.read(der::OCTET_STRING)?.to_vec();
        if out.iter().any(|e: &Extension| e.id == id) {
            bail!(
                "x509: certificate contains duplicate extension with OID {:?}",
                der::oid_string(&id)
            );
        }
        out.push(Extension {
            id,
            critical,
            value,
        });
    }
    Ok(out)
}

fn extension_values(exts: &[Extension]) -> Value {
    list(
        exts.iter()
            .map(|e| {
                object_of([
                    ("Id", oid(&e.id)),
                    ("Critical", Value::from(e.critical)),
                    ("Value", bytes(&e.value)),
                ])
            })
            .collect(),
    )
}

/// Go's `ExtKeyUsage` numbers.
const EXT_KEY_USAGES: &[(&str, u8)] = &[
    ("2.5.29.37.0", 0),
    ("1.3.6.1.5.5.7.3.1", 1),
    ("1.3.6.1.5.5.7.3.2", 2),
    ("1.3.6.1.5.5.7.3.3", 3),
    ("1.3.6.1.5.5.7.3.4", 4),
    ("1.3.6.1.5.5.7.3.5", 5),
    ("1.3.6.1.5.5.7.3.6", 6),
    ("1.3.6.1.5.5.7.3.7", 7),
    ("1.3.6.1.5.5.7.3.8", 8),
    ("1.3.6.1.5.5.7.3.9", 9),
    ("1.3.6.1.4.1.311.10.3.3", 10),
    ("2.16.840.1.113730.4.1", 11),
    ("1.3.6.1.4.1.311.2.1.22", 12),
    ("1.3.6.1.4.1.311.61.1.1", 13),
];

/// A certificate with the fields of Go's `x509.Certificate`.
#[derive(Debug, Clone, Default)]
struct Certificate {
    raw: Vec<u8>,
    raw_tbs: Vec<u8>,
    signature: Vec<u8>,
    signature_algorithm: u8,
    spki: Option<Spki>,
    version: i64,
    serial: Vec<u8>,
    issuer: Name,
    subject: Name,
    not_before: Option<Instant>,
    not_after: Option<Instant>,
    key_usage: u32,
    extensions: Vec<Extension>,
    unhandled_critical: Vec<Vec<u64>>,
    ext_key_usage: Vec<u8>,
    unknown_ext_key_usage: Vec<Vec<u64>>,
    basic_constraints_valid: bool,
    is_ca: bool,
    max_path_len: i64,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    ocsp_server: Vec<String>,
    issuing_certificate_url: Vec<String>,
    sans: Sans,
    permitted_dns_critical: bool,
    permitted: Subtrees,
    excluded: Subtrees,
    crl_distribution_points: Vec<String>,
    policies: Vec<Vec<u64>>,
    inhibit_any_policy: i64,
    inhibit_any_policy_zero: bool,
    inhibit_policy_mapping: i64,
    inhibit_policy_mapping_zero: bool,
    require_explicit_policy: i64,
    require_explicit_policy_zero: bool,
    policy_mappings: Vec<(Vec<u64>, Vec<u64>)>,
}

/// One side of a name constraints extension.
#[derive(Debug, Clone, Default)]
struct Subtrees {
    dns: Vec<String>,
    ips: Vec<(String, Vec<u8>)>,
    emails: Vec<String>,
    uri_domains: Vec<String>,
}

fn parse_subtrees(content: &[u8]) -> Result<(Subtrees, bool)> {
    let mut out = Subtrees::default();
    let mut unhandled = false;
    let mut seq = Der::new(content);
    while !seq.is_empty() {
        let mut subtree = seq.read_seq()?;
        let (tag, value, _) = subtree.read_any()?;
        let text = || {
            String::from_utf8(value.to_vec()).map_err(|_| anyhow!("x509: invalid constraint value"))
        };
        match tag {
            0x82 => out.dns.push(text()?),
            0x81 => out.emails.push(text()?),
            0x86 => out.uri_domains.push(text()?),
            0x87 => {
                let (ip, mask) = match value.len() {
                    8 => value.split_at(4),
                    32 => value.split_at(16),
                    n => bail!("x509: IP constraint contained value of length {n}"),
                };
                out.ips.push((ip_string(ip)?, mask.to_vec()));
            }
            _ => unhandled = true,
        }
    }
    Ok((out, unhandled))
}

fn oid_text_list(oids: &[Vec<u64>]) -> Value {
    list(
        oids.iter()
            .map(|o| Value::from(der::oid_string(o)))
            .collect(),
    )
}

impl Certificate {
    /// Parses one certificate from the front of `input`; returns it and
    /// the bytes after it.
    fn parse(input: &[u8]) -> Result<(Certificate, &[u8])> {
        let mut outer = Der::new(input);
        let (tag, body, raw) = outer
            .read_any()
            .map_err(|_| anyhow!("x509: malformed certificate"))?;
        if tag != der::SEQUENCE {
            bail!("x509: malformed certificate");
        }
        let rest = input.get(raw.len()..).unwrap_or(&[]);
        let mut cert_seq = Der::new(body);
        let (tbs_tag, tbs_body, tbs_raw) = cert_seq.read_any()?;
        if tbs_tag != der::SEQUENCE {
            bail!("x509: malformed tbs certificate");
        }
        let mut c = Certificate {
            raw: raw.to_vec(),
            raw_tbs: tbs_raw.to_vec(),
            ..Certificate::default()
        };
        let mut tbs = Der::new(tbs_body);
        let version = match tbs.read_optional(0xa0)? {
            Some(v) => Der::new(v).read_int()?,
            None => 0,
        };
        if !(0..=2).contains(&version) {
            bail!("x509: malformed version");
        }
        c.version = version + 1;
        let serial = tbs.read(der::INTEGER)?;
        if serial.first().is_some_and(|b| b & 0x80 != 0) {
            bail!("x509: negative serial number");
        }
        c.serial = serial.to_vec();
        let inner_ai = tbs.read_seq()?;
        let outer_ai = cert_seq.read(der::SEQUENCE)?;
        c.signature_algorithm = signature_algorithm(outer_ai)?;
        let _ = inner_ai;
        let (_, _, issuer_raw) = tbs.read_any()?;
        c.issuer = Name::parse(issuer_raw)?;
        let mut validity = tbs.read_seq()?;
        let (t1, b1, _) = validity.read_any()?;
        let (t2, b2, _) = validity.read_any()?;
        c.not_before = Some(Instant::from_asn1(t1, b1)?);
        c.not_after = Some(Instant::from_asn1(t2, b2)?);
        let (_, _, subject_raw) = tbs.read_any()?;
        c.subject = Name::parse(subject_raw)?;
        let (_, _, spki_raw) = tbs.read_any()?;
        c.spki = Some(Spki::parse(spki_raw)?);
        if c.version > 1 {
            tbs.read_optional(0x81)?;
            tbs.read_optional(0xa1)?;
            tbs.read_optional(0x82)?;
            tbs.read_optional(0xa2)?;
            if c.version == 3
                && let Some(exts) = tbs.read_optional(0xa3)?
            {
                c.extensions = parse_extensions(exts)?;
                c.process_extensions()?;
            }
        }
        let sig_bits = cert_seq.read(der::BIT_STRING)?;
        c.signature = sig_bits.get(1..).unwrap_or(&[]).to_vec();
        Ok((c, rest))
    }

    /// Go's `processExtensions`.
    fn process_extensions(&mut self) -> Result<()> {
        let exts = self.extensions.clone();
        for e in &exts {
            let mut unhandled = false;
            let v = e.value.as_slice();
            match e.id.as_slice() {
                [2, 5, 29, 15] => {
                    let bits = Der::new(v).read(der::BIT_STRING)?;
                    let data = bits.get(1..).unwrap_or(&[]);
                    self.key_usage = (0..9)
                        .filter(|i| data.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                        .fold(0, |acc, i| acc | (1 << i));
                }
                [2, 5, 29, 19] => {
                    let mut seq = Der::new(v).read_seq()?;
                    self.is_ca = seq
                        .read_optional(der::BOOLEAN)?
                        .is_some_and(|b| b.first().is_some_and(|x| *x != 0));
                    self.max_path_len = if seq.peek_tag() == Some(der::INTEGER) {
                        seq.read_int()?
                    } else {
                        -1
                    };
                    self.basic_constraints_valid = true;
                }
                [2, 5, 29, 17] => {
                    self.sans = parse_sans(v)?;
                    let s = &self.sans;
                    unhandled = s.dns.is_empty()
                        && s.emails.is_empty()
                        && s.ips.is_empty()
                        && s.uris.is_empty();
                }
                [2, 5, 29, 30] => {
                    let mut seq = Der::new(v).read_seq()?;
                    if let Some(p) = seq.read_optional(0xa0)? {
                        let (t, u) = parse_subtrees(p)?;
                        self.permitted = t;
                        unhandled |= u;
                    }
                    if let Some(x) = seq.read_optional(0xa1)? {
                        let (t, u) = parse_subtrees(x)?;
                        self.excluded = t;
                        unhandled |= u;
                    }
                    self.permitted_dns_critical = e.critical;
                }
                [2, 5, 29, 31] => {
                    let mut seq = Der::new(v).read_seq()?;
                    while !seq.is_empty() {
                        let mut dp = seq.read_seq()?;
                        let Some(name) = dp.read_optional(0xa0)? else {
                            continue;
                        };
                        let mut full = Der::new(name);
                        let Some(general) = full.read_optional(0xa0)? else {
                            continue;
                        };
                        let mut names = Der::new(general);
                        while names.peek_tag() == Some(0x86) {
                            let uri = names.read(0x86)?;
                            self.crl_distribution_points
                                .push(String::from_utf8_lossy(uri).into_owned());
                        }
                    }
                }
                [2, 5, 29, 35] => {
                    if e.critical {
                        bail!("x509: authority key identifier incorrectly marked critical");
                    }
                    let mut seq = Der::new(v).read_seq()?;
                    self.authority_key_id = seq.read_optional(0x80)?.map(<[u8]>::to_vec);
                }
                [2, 5, 29, 36] => {
                    let mut seq = Der::new(v).read_seq()?;
                    if let Some(b) = seq.read_optional(0x80)? {
                        self.require_explicit_policy = der::int_value(b)?;
                        self.require_explicit_policy_zero = self.require_explicit_policy == 0;
                    }
                    if let Some(b) = seq.read_optional(0x81)? {
                        self.inhibit_policy_mapping = der::int_value(b)?;
                        self.inhibit_policy_mapping_zero = self.inhibit_policy_mapping == 0;
                    }
                }
                [2, 5, 29, 37] => {
                    let mut seq = Der::new(v).read_seq()?;
                    while !seq.is_empty() {
                        let eku = seq.read_oid()?;
                        let text = der::oid_string(&eku);
                        match EXT_KEY_USAGES.iter().find(|(o, _)| *o == text) {
                            Some((_, n)) => self.ext_key_usage.push(*n),
                            None => self.unknown_ext_key_usage.push(eku),
                        }
                    }
                }
                [2, 5, 29, 14] => {
                    if e.critical {
                        bail!("x509: subject key identifier incorrectly marked critical");
                    }
                    self.subject_key_id = Some(Der::new(v).read(der::OCTET_STRING)?.to_vec());
                }
                [2, 5, 29, 32] => {
                    let mut seq = Der::new(v).read_seq()?;
                    while !seq.is_empty() {
                        let policy = seq.read_seq()?.read_oid()?;
                        if self.policies.contains(&policy) {
                            bail!("x509: invalid certificate policies");
                        }
                        self.policies.push(policy);
                    }
                }
                [2, 5, 29, 33] => {
                    let mut seq = Der::new(v).read_seq()?;
                    while !seq.is_empty() {
                        let mut m = seq.read_seq()?;
                        let issuer = m.read_oid()?;
                        let subject = m.read_oid()?;
                        self.policy_mappings.push((issuer, subject));
                    }
                }
                [2, 5, 29, 54] => {
                    self.inhibit_any_policy = Der::new(v).read_int()?;
                    self.inhibit_any_policy_zero = self.inhibit_any_policy == 0;
                }
                [2, 5, 29, _] => unhandled = true,
                [1, 3, 6, 1, 5, 5, 7, 1, 1] => {
                    if e.critical {
                        bail!("x509: authority info access incorrectly marked critical");
                    }
                    let mut seq = Der::new(v).read_seq()?;
                    while !seq.is_empty() {
                        let mut ad = seq.read_seq()?;
                        let method = ad.read_oid()?;
                        let Some(location) = ad.read_optional(0x86)? else {
                            continue;
                        };
                        let location = String::from_utf8_lossy(location).into_owned();
                        match method.as_slice() {
                            [1, 3, 6, 1, 5, 5, 7, 48, 1] => self.ocsp_server.push(location),
                            [1, 3, 6, 1, 5, 5, 7, 48, 2] => {
                                self.issuing_certificate_url.push(location)
                            }
                            _ => {}
                        }
                    }
                }
                _ => unhandled = true,
            }
            if e.critical && unhandled {
                self.unhandled_critical.push(e.id.clone());
            }
        }
        Ok(())
    }

    fn subtrees_values(t: &Subtrees) -> [Value; 4] {
        [
            strings(&t.dns),
            list(
                t.ips
                    .iter()
                    .map(|(ip, mask)| {
                        object_of([("IP", Value::from(ip.as_str())), ("Mask", bytes(mask))])
                    })
                    .collect(),
            ),
            strings(&t.emails),
            strings(&t.uri_domains),
        ]
    }

    /// The JSON Go's `encoding/json` writes for this `x509.Certificate`;
    /// OPA's `parse_certificates` adds `URIStrings`.
    fn to_value(&self, with_uri_strings: bool) -> Result<Value> {
        let spki = self.spki.as_ref();
        let uris = self
            .sans
            .uris
            .iter()
            .map(|u| goshape::url(u))
            .collect::<Result<Vec<_>>>()?;
        let [pdns, pips, pemails, puris] = Self::subtrees_values(&self.permitted);
        let [xdns, xips, xemails, xuris] = Self::subtrees_values(&self.excluded);
        let time = |t: Option<Instant>| Value::from(t.map(Instant::rfc3339).unwrap_or_default());
        let mut fields: Vec<(&str, Value)> = vec![
            ("Raw", bytes(&self.raw)),
            ("RawTBSCertificate", bytes(&self.raw_tbs)),
            (
                "RawSubjectPublicKeyInfo",
                bytes(spki.map(|s| s.raw.as_slice()).unwrap_or(&[])),
            ),
            ("RawSubject", bytes(&self.subject.raw)),
            ("RawIssuer", bytes(&self.issuer.raw)),
            ("Signature", bytes(&self.signature)),
            (
                "SignatureAlgorithm",
                Value::from(u64::from(self.signature_algorithm)),
            ),
            (
                "PublicKeyAlgorithm",
                Value::from(u64::from(spki.map_or(0, |s| s.algorithm))),
            ),
            ("PublicKey", spki.map_or(Value::Null, Spki::key_value)),
            ("Version", Value::from(self.version)),
            ("SerialNumber", big(&self.serial)),
            ("Issuer", self.issuer.to_value()),
            ("Subject", self.subject.to_value()),
            ("NotBefore", time(self.not_before)),
            ("NotAfter", time(self.not_after)),
            ("KeyUsage", Value::from(u64::from(self.key_usage))),
            ("Extensions", extension_values(&self.extensions)),
            ("ExtraExtensions", Value::Null),
            (
                "UnhandledCriticalExtensions",
                list(self.unhandled_critical.iter().map(|o| oid(o)).collect()),
            ),
            (
                "ExtKeyUsage",
                list(
                    self.ext_key_usage
                        .iter()
                        .map(|u| Value::from(u64::from(*u)))
                        .collect(),
                ),
            ),
            (
                "UnknownExtKeyUsage",
                list(self.unknown_ext_key_usage.iter().map(|o| oid(o)).collect()),
            ),
            (
                "BasicConstraintsValid",
                Value::from(self.basic_constraints_valid),
            ),
            ("IsCA", Value::from(self.is_ca)),
            ("MaxPathLen", Value::from(self.max_path_len)),
            (
                "MaxPathLenZero",
                Value::from(self.basic_constraints_valid && self.max_path_len == 0),
            ),
            ("SubjectKeyId", opt_bytes(self.subject_key_id.as_deref())),
            (
                "AuthorityKeyId",
                opt_bytes(self.authority_key_id.as_deref()),
            ),
            ("OCSPServer", strings(&self.ocsp_server)),
            (
                "IssuingCertificateURL",
                strings(&self.issuing_certificate_url),
            ),
            ("DNSNames", strings(&self.sans.dns)),
            ("EmailAddresses", strings(&self.sans.emails)),
            ("IPAddresses", strings(&self.sans.ips)),
            ("URIs", list(uris)),
            (
                "PermittedDNSDomainsCritical",
                Value::from(self.permitted_dns_critical),
            ),
            ("PermittedDNSDomains", pdns),
            ("ExcludedDNSDomains", xdns),
            ("PermittedIPRanges", pips),
            ("ExcludedIPRanges", xips),
            ("PermittedEmailAddresses", pemails),
            ("ExcludedEmailAddresses", xemails),
            ("PermittedURIDomains", puris),
            ("ExcludedURIDomains", xuris),
            (
                "CRLDistributionPoints",
                strings(&self.crl_distribution_points),
            ),
            (
                "PolicyIdentifiers",
                list(self.policies.iter().map(|o| oid(o)).collect()),
            ),
            ("Policies", oid_text_list(&self.policies)),
            ("InhibitAnyPolicy", Value::from(self.inhibit_any_policy)),
            (
                "InhibitAnyPolicyZero",
                Value::from(self.inhibit_any_policy_zero),
            ),
            (
                "InhibitPolicyMapping",
                Value::from(self.inhibit_policy_mapping),
            ),
            (
                "InhibitPolicyMappingZero",
                Value::from(self.inhibit_policy_mapping_zero),
            ),
            (
                "RequireExplicitPolicy",
                Value::from(self.require_explicit_policy),
            ),
            (
                "RequireExplicitPolicyZero",
                Value::from(self.require_explicit_policy_zero),
            ),
            (
                "PolicyMappings",
                list(
                    self.policy_mappings
                        .iter()
                        .map(|(i, s)| {
                            object_of([
                                ("IssuerDomainPolicy", Value::from(der::oid_string(i))),
                                ("SubjectDomainPolicy", Value::from(der::oid_string(s))),
                            ])
                        })
                        .collect(),
                ),
            ),
        ];
        if with_uri_strings {
            fields.push(("URIStrings", strings(&self.sans.uris)));
        }
        Ok(object_of(fields))
    }
}

/// The DER of OPA's certificate input: PEM, base64 DER, or base64 PEM.
fn certificate_der(input: &str) -> Result<Vec<u8>> {
    if input.starts_with("-----BEGIN") {
        return certificates_from_pem(input);
    }
    let decoded = goshape::decode_base64(input)?;
    if decoded.starts_with(b"-----BEGIN") {
        let text = String::from_utf8(decoded).map_err(|_| anyhow!("PEM is not UTF-8"))?;
        return certificates_from_pem(&text);
    }
    Ok(decoded)
}

/// Every block must be a certificate; decoding stops at the first text
/// that is not a block.
fn certificates_from_pem(mut text: &str) -> Result<Vec<u8>> {
    let mut der = Vec::new();
    while let Some((block, rest)) = pem::decode(text) {
        if block.label != "CERTIFICATE" {
            bail!("PEM block type is '{}', expected CERTIFICATE", block.label);
        }
        der.extend(block.der);
        text = rest;
    }
    Ok(der)
}

/// Go's `x509.ParseCertificates`.
fn parse_all(mut der: &[u8]) -> Result<Vec<Certificate>> {
    let mut certs = Vec::new();
    while !der.is_empty() {
        let (cert, rest) = Certificate::parse(der)?;
        certs.push(cert);
        der = rest;
    }
    Ok(certs)
}

fn certs_value(certs: &[Certificate], with_uri_strings: bool) -> Result<Value> {
    Ok(Value::from(
        certs
            .iter()
            .map(|c| c.to_value(with_uri_strings))
            .collect::<Result<Vec<_>>>()?,
    ))
}

fn parse_certificates(args: &[Value]) -> Result<Value> {
    let name = "crypto.x509.parse_certificates";
    let input = str_operand(name, 1, unary(name, args)?)?;
    let certs = certificate_der(input)
        .and_then(|der| parse_all(&der))
        .map_err(|e| anyhow!("{name}: {e}"))?;
    certs_value(&certs, true)
}

/// Go's `x509.VerifyOptions`, as far as OPA exposes them.
#[derive(Debug, Default)]
struct VerifyOptions {
    dns_name: String,
    /// Seconds since the epoch; now when unset.
    current_time: Option<i64>,
    /// Go's `ExtKeyUsage` numbers; server authentication when empty.
    key_usages: Vec<u8>,
}

const KEY_USAGE_NAMES: &[(&str, u8)] = &[
    ("KeyUsageAny", 0),
    ("KeyUsageServerAuth", 1),
    ("KeyUsageClientAuth", 2),
    ("KeyUsageCodeSigning", 3),
    ("KeyUsageEmailProtection", 4),
    ("KeyUsageIPSECEndSystem", 5),
    ("KeyUsageIPSECTunnel", 6),
    ("KeyUsageIPSECUser", 7),
    ("KeyUsageTimeStamping", 8),
    ("KeyUsageOCSPSigning", 9),
    ("KeyUsageMicrosoftServerGatedCrypto", 10),
    ("KeyUsageNetscapeServerGatedCrypto", 11),
    ("KeyUsageMicrosoftCommercialCodeSigning", 12),
    ("KeyUsageMicrosoftKernelCodeSigning", 13),
];

fn verify_options(obj: &regorus::value::Object) -> Result<VerifyOptions> {
    let mut o = VerifyOptions::default();
    for (k, v) in obj.iter() {
        let Ok(key) = k.as_string() else {
            continue;
        };
        match key.as_ref() {
            "DNSName" => {
                o.dns_name = v
                    .as_string()
                    .map_err(|_| anyhow!("'DNSName' should be a string"))?
                    .trim_matches('"')
                    .to_owned();
            }
            "CurrentTime" => {
                let Value::Number(_) = v else {
                    bail!("'CurrentTime' should be a number");
                };
                let ns = v
                    .as_i64()
                    .map_err(|_| anyhow!("'CurrentTime' should be a valid int64 number"))?;
                o.current_time = Some(ns.div_euclid(1_000_000_000));
            }
            "MaxConstraintComparisons" => {
                let Value::Number(_) = v else {
                    bail!("'MaxConstraintComparisons' should be a number");
                };
                v.as_i64()
                    .map_err(|_| anyhow!("'MaxConstraintComparisons' should be a valid number"))?;
            }
            "KeyUsages" => {
                let items: Vec<Value> = match v {
                    Value::Array(a) => a.iter().cloned().collect(),
                    Value::Set(s) => s.iter().cloned().collect(),
                    _ => bail!("'KeyUsages' should be an Array or Set"),
                };
                let mut invalid = Vec::new();
                for item in items {
                    if let Ok(s) = item.as_string() {
                        let s = s.trim_matches('"');
                        match KEY_USAGE_NAMES.iter().find(|(n, _)| *n == s) {
                            Some((_, u)) => o.key_usages.push(*u),
                            None => invalid.push(s.to_owned()),
                        }
                    }
                }
                if !invalid.is_empty() {
                    bail!(
                        "invalid entries for 'KeyUsages' found: [{}]",
                        invalid.join(" ")
                    );
                }
            }
            _ => bail!("invalid key option"),
        }
    }
    Ok(o)
}

/// Whether `child`'s signature verifies under `parent`'s public key.
fn signed_by(child: &Certificate, parent: &Certificate) -> bool {
    let Some(key) = parent.spki.as_ref().and_then(|s| s.key.as_ref()) else {
        return false;
    };
    let msg = child.raw_tbs.as_slice();
    let signature = child.signature.as_slice();
    match (child.signature_algorithm, key) {
        (4..=6, PublicKey::Rsa { n, e }) => {
            let params = match child.signature_algorithm {
                4 => &sig::RSA_PKCS1_2048_8192_SHA256,
                5 => &sig::RSA_PKCS1_2048_8192_SHA384,
                _ => &sig::RSA_PKCS1_2048_8192_SHA512,
            };
            sig::RsaPublicKeyComponents { n, e }
                .verify(params, msg, signature)
                .is_ok()
        }
        (13..=15, PublicKey::Rsa { n, e }) => {
            let params = match child.signature_algorithm {
                13 => &sig::RSA_PSS_2048_8192_SHA256,
                14 => &sig::RSA_PSS_2048_8192_SHA384,
                _ => &sig::RSA_PSS_2048_8192_SHA512,
            };
            sig::RsaPublicKeyComponents { n, e }
                .verify(params, msg, signature)
                .is_ok()
        }
        (10..=12, PublicKey::Ec { curve, point }) => {
            let alg: &dyn sig::VerificationAlgorithm = match (curve, child.signature_algorithm) {
                (Curve::P256, 10) => &sig::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, 11) => &sig::ECDSA_P256_SHA384_ASN1,
                (Curve::P384, 10) => &sig::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, 11) => &sig::ECDSA_P384_SHA384_ASN1,
                (Curve::P521, 12) => {
                    use p521::ecdsa::signature::Verifier;
                    let Ok(vk) = p521::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
                        return false;
                    };
                    let Ok(s) = p521::ecdsa::Signature::from_der(signature) else {
                        return false;
                    };
                    return vk.verify(msg, &s).is_ok();
                }
                _ => return false,
            };
            sig::UnparsedPublicKey::new(alg, point)
                .verify(msg, signature)
                .is_ok()
        }
        (16, PublicKey::Ed25519(pk)) => sig::UnparsedPublicKey::new(&sig::ED25519, pk)
            .verify(msg, signature)
            .is_ok(),
        _ => false,
    }
}

/// Go's `VerifyHostname` against DNS and IP SANs.
fn matches_host(cert: &Certificate, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
    {
        let want = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(v6.to_string(), |v4| v4.to_string()),
        };
        return cert.sans.ips.contains(&want);
    }
    cert.sans.dns.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
            None => pattern == host,
        }
    })
}

/// Whether the chain's extended key usages allow one of `wanted`.
fn chain_allows_usage(chain: &[&Certificate], wanted: &[u8]) -> bool {
    let wanted: Vec<u8> = if wanted.is_empty() {
        vec![1]
    } else {
        wanted.to_vec()
    };
    if wanted.contains(&0) {
        return true;
    }
    let mut remaining = wanted;
    for cert in chain.iter().rev() {
        if cert.ext_key_usage.is_empty() && cert.unknown_ext_key_usage.is_empty() {
            continue;
        }
        if cert.ext_key_usage.contains(&0) {
            continue;
        }
        remaining.retain(|u| cert.ext_key_usage.contains(u));
        if remaining.is_empty() {
            return false;
        }
    }
    true
}

/// OPA's `verifyX509CertificateChain`: the first certificate is the root,
/// the last the leaf, the rest intermediates. Returns the verified chain,
/// leaf first.
fn verify_chain(certs: &[Certificate], opts: &VerifyOptions) -> Result<Vec<Certificate>> {
    let (Some(root), Some(leaf)) = (certs.first(), certs.last()) else {
        bail!("must supply at least two certificates to be able to verify");
    };
    if certs.len() < 2 {
        bail!("must supply at least two certificates to be able to verify");
    }
    let intermediates: Vec<&Certificate> = certs
        .get(1..certs.len() - 1)
        .unwrap_or(&[])
        .iter()
        .collect();
    let now = opts.current_time.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    let valid_at = |c: &Certificate| {
        c.not_before.is_some_and(|t| t.0 <= now) && c.not_after.is_some_and(|t| now <= t.0)
    };
    if !leaf.unhandled_critical.is_empty() || !valid_at(leaf) {
        bail!("x509: certificate is not valid");
    }
    if !opts.dns_name.is_empty() && !matches_host(leaf, &opts.dns_name) {
        bail!("x509: certificate is not valid for {}", opts.dns_name);
    }
    // Depth-first search from the leaf up to the root.
    fn extend<'a>(
        chain: &mut Vec<&'a Certificate>,
        root: &'a Certificate,
        intermediates: &[&'a Certificate],
        valid_at: &dyn Fn(&Certificate) -> bool,
        opts: &VerifyOptions,
    ) -> bool {
        let Some(&child) = chain.last() else {
            return false;
        };
        let can_sign = |parent: &Certificate, below: usize| {
            parent.issuer_ok_for(child)
                && (parent.version < 3 || parent.basic_constraints_valid)
                && (!parent.basic_constraints_valid || parent.is_ca)
                && (parent.key_usage == 0 || parent.key_usage & (1 << 5) != 0)
                && (!parent.basic_constraints_valid
                    || parent.max_path_len < 0
                    || below <= parent.max_path_len as usize)
                && signed_by(child, parent)
        };
        let below = chain.len() - 1;
        if can_sign(root, below) {
            chain.push(root);
            if chain_allows_usage(chain, &opts.key_usages) {
                return true;
            }
            chain.pop();
        }
        for &candidate in intermediates {
            if chain.iter().any(|c| std::ptr::eq(*c, candidate))
                || !candidate.unhandled_critical.is_empty()
                || !valid_at(candidate)
                || !can_sign(candidate, below)
            {
                continue;
            }
            chain.push(candidate);
            if extend(chain, root, intermediates, valid_at, opts) {
                return true;
            }
            chain.pop();
        }
        false
    }
    let mut chain = vec![leaf];
    if std::ptr::eq(leaf, root) || !extend(&mut chain, root, &intermediates, &valid_at, opts) {
        bail!("x509: certificate signed by unknown authority");
    }
    Ok(chain.into_iter().cloned().collect())
}

impl Certificate {
    /// Whether this certificate's subject is `child`'s issuer.
    fn issuer_ok_for(&self, child: &Certificate) -> bool {
        self.subject.raw == child.issuer.raw
    }
}

fn unverified() -> Value {
    Value::from(vec![Value::from(false), Value::new_array()])
}

fn parse_and_verify(args: &[Value]) -> Result<Value> {
    let name = "crypto.x509.parse_and_verify_certificates";
    let input = str_operand(name, 1, unary(name, args)?)?;
    let Ok(certs) = certificate_der(input).and_then(|der| parse_all(&der)) else {
        return Ok(unverified());
    };
    match verify_chain(&certs, &VerifyOptions::default()) {
        Ok(chain) => Ok(Value::from(vec![
            Value::from(true),
            certs_value(&chain, true)?,
        ])),
        Err(_) => Ok(unverified()),
    }
}

fn parse_and_verify_with_options(args: &[Value]) -> Result<Value> {
    let name = "crypto.x509.parse_and_verify_certificates_with_options";
    let [input, options] = args else {
        bail!("{name}: expects 2 arguments");
    };
    let input = str_operand(name, 1, input)?;
    let options = object_operand(name, 2, options)?;
    let Ok(certs) = certificate_der(input).and_then(|der| parse_all(&der)) else {
        return Ok(unverified());
    };
    let opts = verify_options(options).map_err(|e| anyhow!("{name}: {e}"))?;
    match verify_chain(&certs, &opts) {
        // OPA returns these without `URIStrings`.
        Ok(chain) => Ok(Value::from(vec![
            Value::from(true),
            certs_value(&chain, false)?,
        ])),
        Err(_) => Ok(unverified()),
    }
}

fn parse_certificate_request(args: &[Value]) -> Result<Value> {
    let name = "crypto.x509.parse_certificate_request";
    let input = str_operand(name, 1, unary(name, args)?)?;
    csr_value(input).map_err(|e| anyhow!("{name}: {e}"))
}

fn csr_value(input: &str) -> Result<Value> {
    let mut der: Vec<u8> = if input.starts_with("-----BEGIN CERTIFICATE REQUEST-----") {
        input.as_bytes().to_vec()
    } else {
        goshape::decode_base64(input)?
    };
    if let Some((block, _)) = std::str::from_utf8(&der).ok().and_then(pem::decode) {
        if block.label != "CERTIFICATE REQUEST" {
            bail!("invalid PEM-encoded certificate signing request");
        }
        der = block.der;
    }
    let mut outer = Der::new(&der);
    let (tag, body, raw) = outer.read_any()?;
    if tag != der::SEQUENCE || !outer.is_empty() {
        bail!("x509: malformed certificate request");
    }
    let mut csr = Der::new(body);
    let (_, info_body, info_raw) = csr.read_any()?;
    let sig_alg = signature_algorithm(csr.read(der::SEQUENCE)?)?;
    let signature = csr.read(der::BIT_STRING)?.get(1..).unwrap_or(&[]).to_vec();
    let mut info = Der::new(info_body);
    let version = info.read_int()?;
    let (_, _, subject_raw) = info.read_any()?;
    let subject = Name::parse(subject_raw)?;
    let (_, _, spki_raw) = info.read_any()?;
    let spki = Spki::parse(spki_raw)?;
    let mut attributes = Vec::new();
    if let Some(attrs) = info.read_optional(0xa0)? {
        let mut attrs = Der::new(attrs);
        while !attrs.is_empty() {
            let mut attr = attrs.read_seq()?;
            let ty = attr.read_oid()?;
            let mut values = Der::new(attr.read(der::SET)?);
            let mut sets = Vec::new();
            let mut ok = true;
            while !values.is_empty() {
                let Ok(mut seq) = values.read_seq() else {
                    ok = false;
                    break;
                };
                let mut pairs = Vec::new();
                while !seq.is_empty() {
                    let Ok(mut pair) = seq.read_seq() else {
                        ok = false;
                        break;
                    };
                    let (Ok(t), Ok((vt, vb, _))) = (pair.read_oid(), pair.read_any()) else {
                        ok = false;
                        break;
                    };
                    if !pair.is_empty() {
                        ok = false;
                        break;
                    }
                    let value = match vt {
                        der::OCTET_STRING => bytes(vb),
                        der::BOOLEAN => Value::from(vb.first().is_some_and(|b| *b != 0)),
                        _ => asn1_string(vt, vb).map(Value::from).unwrap_or(Value::Null),
                    };
                    pairs.push(object_of([("Type", oid(&t)), ("Value", value)]));
                }
                sets.push(Value::from(pairs));
            }
            if ok {
                attributes.push(object_of([
                    ("Type", oid(&ty)),
                    ("Value", Value::from(sets)),
                ]));
            }
        }
    }
    // Extensions come from the extensionRequest attribute.
    let extensions = csr_extensions(info_body)?;
    let mut sans = Sans::default();
    for e in &extensions {
        if e.id.as_slice() == [2, 5, 29, 17] {
            sans = parse_sans(&e.value)?;
        }
    }
    let uris = sans
        .uris
        .iter()
        .map(|u| goshape::url(u))
        .collect::<Result<Vec<_>>>()?;
    Ok(object_of([
        ("Raw", bytes(raw)),
        ("RawTBSCertificateRequest", bytes(info_raw)),
        ("RawSubjectPublicKeyInfo", bytes(spki_raw)),
        ("RawSubject", bytes(subject_raw)),
        ("Version", Value::from(version)),
        ("Signature", bytes(&signature)),
        ("SignatureAlgorithm", Value::from(u64::from(sig_alg))),
        ("PublicKeyAlgorithm", Value::from(u64::from(spki.algorithm))),
        ("PublicKey", spki.key_value()),
        ("Subject", subject.to_value()),
        ("Attributes", list(attributes)),
        ("Extensions", extension_values(&extensions)),
        ("ExtraExtensions", Value::Null),
        ("DNSNames", strings(&sans.dns)),
        ("EmailAddresses", strings(&sans.emails)),
        ("IPAddresses", strings(&sans.ips)),
        ("URIs", list(uris)),
    ]))
}

/// The extensions in a CSR's `extensionRequest` attribute.
fn csr_extensions(info_body: &[u8]) -> Result<Vec<Extension>> {
    let mut info = Der::new(info_body);
    info.read_any()?;
    info.read_any()?;
    info.read_any()?;
    let Some(attrs) = info.read_optional(0xa0)? else {
        return Ok(Vec::new());
    };
    let mut attrs = Der::new(attrs);
    while !attrs.is_empty() {
        let mut attr = attrs.read_seq()?;
        let ty = attr.read_oid()?;
        let values = attr.read(der::SET)?;
        if ty.as_slice() == [1, 2, 840, 113549, 1, 9, 14] {
            let (_, _, first) = Der::new(values).read_any()?;
            return parse_extensions(first);
        }
    }
    Ok(Vec::new())
}

fn parse_rsa_private_key(args: &[Value]) -> Result<Value> {
    let name = "crypto.x509.parse_rsa_private_key";
    let input = str_operand(name, 1, unary(name, args)?)?;
    if input.is_empty() {
        bail!("{name}: input PEM data was empty");
    }
    let text = if input.starts_with("-----BEGIN") {
        input.to_owned()
    } else {
        let b = goshape::decode_base64(input).map_err(|e| anyhow!("{name}: {e}"))?;
        String::from_utf8(b).map_err(|_| anyhow!("{name}: PEM is not UTF-8"))?
    };
    let keys = keys::keys_from_pem_data(&text).map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(keys.first().map_or(Value::Null, keys::PrivateKey::jwk))
}

fn parse_private_keys(args: &[Value]) -> Result<Value> {
    let name = "crypto.parse_private_keys";
    let input = str_operand(name, 1, unary(name, args)?)?;
    if input.is_empty() {
        return Ok(Value::Null);
    }
    let keys = keys::keys_from_pem_data(input).map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(Value::from(
        keys.iter()
            .map(keys::PrivateKey::go_value)
            .collect::<Vec<_>>(),
    ))
}

/// PEM text from OPA's keypair input: PEM as is, otherwise base64 of PEM,
/// or of DER which is then wrapped as a `label` block.
fn keypair_pem(input: &str, label: &str) -> Result<String> {
    if input.starts_with("-----BEGIN ") {
        return Ok(input.to_owned());
    }
    let decoded = goshape::decode_base64(input)?;
    if decoded.starts_with(b"-----BEGIN") {
        return String::from_utf8(decoded).map_err(|_| anyhow!("PEM is not UTF-8"));
    }
    Ok(format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        STANDARD.encode(decoded)
    ))
}

fn parse_keypair(args: &[Value]) -> Result<Value> {
    let name = "crypto.x509.parse_keypair";
    let [cert, key] = args else {
        bail!("{name}: expects 2 arguments");
    };
    let cert = str_operand(name, 1, cert)?;
    let key = str_operand(name, 2, key)?;
    keypair_value(cert, key).map_err(|e| anyhow!("{name}: {e}"))
}

/// Go's `tls.X509KeyPair`, as `encoding/json` prints the `tls.Certificate`.
fn keypair_value(cert: &str, key: &str) -> Result<Value> {
    let cert_pem = keypair_pem(cert, "CERTIFICATE")?;
    let key_pem = keypair_pem(key, "PRIVATE KEY")?;
    let mut chain = Vec::new();
    let mut text = cert_pem.as_str();
    while let Some((block, rest)) = pem::decode(text) {
        if block.label == "CERTIFICATE" {
            chain.push(block.der);
        }
        text = rest;
    }
    let Some(leaf_der) = chain.first() else {
        bail!("tls: failed to find any PEM data in certificate input");
    };
    let mut private = None;
    let mut text = key_pem.as_str();
    while let Some((block, rest)) = pem::decode(text) {
        if block.label == "PRIVATE KEY" || block.label.ends_with(" PRIVATE KEY") {
            private = Some(keys::parse_any_private_key(&block.der)?);
            break;
        }
        text = rest;
    }
    let private =
        private.ok_or_else(|| anyhow!("tls: failed to find any PEM data in key input"))?;
    let (leaf, rest) = Certificate::parse(leaf_der)?;
    if !rest.is_empty() {
        bail!("x509: trailing data");
    }
    let leaf_key = leaf.spki.as_ref().and_then(|s| s.key.clone());
    match (&leaf_key, private.public()) {
        (Some(a), b) if *a == b => {}
        (Some(PublicKey::Rsa { .. }), keys_pub) if !matches!(keys_pub, PublicKey::Rsa { .. }) => {
            bail!("tls: private key type does not match public key type")
        }
        (Some(PublicKey::Ec { .. }), keys_pub) if !matches!(keys_pub, PublicKey::Ec { .. }) => {
            bail!("tls: private key type does not match public key type")
        }
        (Some(PublicKey::Ed25519(_)), keys_pub) if !matches!(keys_pub, PublicKey::Ed25519(_)) => {
            bail!("tls: private key type does not match public key type")
        }
        (Some(_), _) => bail!("tls: private key does not match public key"),
        (None, _) => bail!("tls: unknown public key algorithm"),
    }
    Ok(object_of([
        (
            "Certificate",
            Value::from(chain.iter().map(|c| bytes(c)).collect::<Vec<_>>()),
        ),
        ("PrivateKey", private.go_value()),
        ("SupportedSignatureAlgorithms", Value::Null),
        ("OCSPStaple", Value::Null),
        ("SignedCertificateTimestamps", Value::Null),
        ("Leaf", leaf.to_value(false)?),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber, date_time_ymd,
    };

    fn call(name: &str, args: &[Value]) -> Result<Value> {
        let f = BUILTINS
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, _, f)| *f)
            .unwrap();
        f(args)
    }

    fn json(v: &str) -> Value {
        Value::from_json_str(v).unwrap()
    }

    struct Chain {
        root: String,
        intermediate: String,
        leaf: String,
        leaf_der: Vec<u8>,
        leaf_key: String,
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2100, 1, 1);
        p
    }

    fn chain() -> Chain {
        let root = CertifiedIssuer::self_signed(
            ca_params("Regard Test Root"),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let intermediate = CertifiedIssuer::signed_by(
            ca_params("Regard Test Intermediate"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let mut p = CertificateParams::new(vec!["example.com".to_owned()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        p.subject_alt_names.push(SanType::URI(
            "spiffe://example.org/ns/default".try_into().unwrap(),
        ));
        p.subject_alt_names
            .push(SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
        p.distinguished_name
            .push(DnType::CommonName, "leaf.example.com");
        p.distinguished_name
            .push(DnType::OrganizationName, "Regard");
        p.distinguished_name.push(DnType::CountryName, "NL");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.serial_number = Some(SerialNumber::from(vec![0x01, 0x02, 0x03]));
        p.not_before = date_time_ymd(2024, 1, 2);
        p.not_after = date_time_ymd(2099, 12, 31);
        let key = KeyPair::generate().unwrap();
        let leaf = p.signed_by(&key, &intermediate).unwrap();
        Chain {
            root: root.pem(),
            intermediate: intermediate.pem(),
            leaf: leaf.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key: key.serialize_pem(),
        }
    }

    #[test]
    fn certificate_fields_have_go_shapes() {
        let c = chain();
        let certs = call(
            "crypto.x509.parse_certificates",
            &[Value::from(c.leaf.as_str())],
        )
        .unwrap();
        let leaf = &certs[0];
        assert_eq!(leaf["Raw"], Value::from(STANDARD.encode(&c.leaf_der)));
        assert_eq!(leaf["Version"], Value::from(3));
        assert_eq!(leaf["SerialNumber"], Value::from(66051));
        assert_eq!(leaf["SignatureAlgorithm"], Value::from(10));
        assert_eq!(leaf["PublicKeyAlgorithm"], Value::from(3));
        assert_eq!(leaf["NotBefore"], Value::from("2024-01-02T00:00:00Z"));
        assert_eq!(leaf["NotAfter"], Value::from("2099-12-31T00:00:00Z"));
        assert_eq!(
            leaf["Subject"]["CommonName"],
            Value::from("leaf.example.com")
        );
        assert_eq!(leaf["Subject"]["Organization"], json(r#"["Regard"]"#));
        assert_eq!(leaf["Subject"]["Country"], json(r#"["NL"]"#));
        assert_eq!(leaf["Subject"]["Locality"], Value::Null);
        assert_eq!(
            leaf["Issuer"]["CommonName"],
            Value::from("Regard Test Intermediate")
        );
        assert_eq!(leaf["DNSNames"], json(r#"["example.com"]"#));
        assert_eq!(leaf["IPAddresses"], json(r#"["10.0.0.1"]"#));
        assert_eq!(leaf["EmailAddresses"], json(r#"["ops@example.com"]"#));
        assert_eq!(
            leaf["URIStrings"],
            json(r#"["spiffe://example.org/ns/default"]"#)
        );
        assert_eq!(leaf["URIs"][0]["Host"], Value::from("example.org"));
        assert_eq!(leaf["URIs"][0]["Path"], Value::from("/ns/default"));
        assert_eq!(leaf["KeyUsage"], Value::from(1));
        assert_eq!(leaf["ExtKeyUsage"], json("[1]"));
        assert_eq!(leaf["IsCA"], Value::from(false));
        assert_eq!(leaf["BasicConstraintsValid"], Value::from(false));
        assert_eq!(leaf["PublicKey"]["Curve"], json("{}"));
        assert_eq!(leaf["UnhandledCriticalExtensions"], Value::Null);
        let keys: Vec<String> = leaf
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_string().unwrap().to_string())
            .collect();
        // Go 1.24's exported x509.Certificate fields, and OPA's URIStrings.
        let go_fields = "AuthorityKeyId BasicConstraintsValid CRLDistributionPoints DNSNames EmailAddresses \
            ExcludedDNSDomains ExcludedEmailAddresses ExcludedIPRanges ExcludedURIDomains ExtKeyUsage Extensions \
            ExtraExtensions IPAddresses InhibitAnyPolicy InhibitAnyPolicyZero InhibitPolicyMapping \
            InhibitPolicyMappingZero IsCA Issuer IssuingCertificateURL KeyUsage MaxPathLen MaxPathLenZero NotAfter \
            NotBefore OCSPServer PermittedDNSDomains PermittedDNSDomainsCritical PermittedEmailAddresses \
            PermittedIPRanges PermittedURIDomains Policies PolicyIdentifiers PolicyMappings PublicKey \
            PublicKeyAlgorithm Raw RawIssuer RawSubject RawSubjectPublicKeyInfo RawTBSCertificate \
            RequireExplicitPolicy RequireExplicitPolicyZero SerialNumber Signature SignatureAlgorithm Subject \
            SubjectKeyId URIStrings URIs UnhandledCriticalExtensions UnknownExtKeyUsage Version";
        assert_eq!(keys, go_fields.split_whitespace().collect::<Vec<_>>());
        // Base64 of DER and base64 of PEM are accepted too.
        let b64 = Value::from(STANDARD.encode(&c.leaf_der));
        assert_eq!(
            call("crypto.x509.parse_certificates", &[b64]).unwrap(),
            certs
        );
        // Go's base64 decoder skips line breaks.
        let wrapped = STANDARD
            .encode(&c.leaf_der)
            .as_bytes()
            .chunks(64)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            call("crypto.x509.parse_certificates", &[Value::from(wrapped)]).unwrap(),
            certs
        );
        let b64_pem = Value::from(STANDARD.encode(c.leaf.as_bytes()));
        assert_eq!(
            call("crypto.x509.parse_certificates", &[b64_pem]).unwrap(),
            certs
        );
    }

    #[test]
    fn chains_verify_root_first() {
        let c = chain();
        let input = format!("{}{}{}", c.root, c.intermediate, c.leaf);
        let out = call(
            "crypto.x509.parse_and_verify_certificates",
            &[Value::from(input.as_str())],
        )
        .unwrap();
        assert_eq!(out[0], Value::from(true));
        let names: Vec<Value> = (0..3)
            .map(|i| out[1][i]["Subject"]["CommonName"].clone())
            .collect();
        assert_eq!(
            names,
            vec![
                Value::from("leaf.example.com"),
                Value::from("Regard Test Intermediate"),
                Value::from("Regard Test Root"),
            ]
        );
        let unverified = json("[false, []]");
        let skipped = format!("{}{}", c.root, c.leaf);
        assert_eq!(
            call(
                "crypto.x509.parse_and_verify_certificates",
                &[Value::from(skipped.as_str())]
            )
            .unwrap(),
            unverified
        );
        let reversed = format!("{}{}{}", c.leaf, c.intermediate, c.root);
        assert_eq!(
            call(
                "crypto.x509.parse_and_verify_certificates",
                &[Value::from(reversed.as_str())]
            )
            .unwrap(),
            unverified
        );

        let with = |opts: &str| {
            call(
                "crypto.x509.parse_and_verify_certificates_with_options",
                &[Value::from(input.as_str()), json(opts)],
            )
        };
        assert_eq!(
            with(r#"{"DNSName": "example.com"}"#).unwrap()[0],
            Value::from(true)
        );
        assert_eq!(
            with(r#"{"DNSName": "example.com"}"#).unwrap()[1][0]["URIStrings"],
            Value::Undefined
        );
        assert_eq!(with(r#"{"DNSName": "other.com"}"#).unwrap(), unverified);
        assert_eq!(
            with(r#"{"KeyUsages": ["KeyUsageClientAuth"]}"#).unwrap(),
            unverified
        );
        assert_eq!(
            with(r#"{"KeyUsages": ["KeyUsageServerAuth"]}"#).unwrap()[0],
            Value::from(true)
        );
        // 2100-01-02, after every certificate expired.
        assert_eq!(
            with(r#"{"CurrentTime": 4102531200000000000}"#).unwrap(),
            unverified
        );
        assert_eq!(
            with(r#"{"Bogus": 1}"#).unwrap_err().to_string(),
            "crypto.x509.parse_and_verify_certificates_with_options: invalid key option"
        );
    }

    #[test]
    fn keypairs_and_requests() {
        let c = chain();
        let pair = call(
            "crypto.x509.parse_keypair",
            &[
                Value::from(c.leaf.as_str()),
                Value::from(c.leaf_key.as_str()),
            ],
        )
        .unwrap();
        assert_eq!(
            pair["Certificate"],
            Value::from(vec![Value::from(STANDARD.encode(&c.leaf_der))])
        );
        assert_eq!(
            pair["Leaf"]["Subject"]["CommonName"],
            Value::from("leaf.example.com")
        );
        assert_eq!(pair["PrivateKey"]["Curve"], json("{}"));
        assert_eq!(pair["PrivateKey"]["X"], pair["Leaf"]["PublicKey"]["X"]);
        let other_key = KeyPair::generate().unwrap().serialize_pem();
        assert_eq!(
            call(
                "crypto.x509.parse_keypair",
                &[
                    Value::from(c.leaf.as_str()),
                    Value::from(other_key.as_str())
                ]
            )
            .unwrap_err()
            .to_string(),
            "crypto.x509.parse_keypair: tls: private key does not match public key"
        );

        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["csr.example.com".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "csr");
        let csr = p.serialize_request(&key).unwrap().pem().unwrap();
        let req = call(
            "crypto.x509.parse_certificate_request",
            &[Value::from(csr.as_str())],
        )
        .unwrap();
        assert_eq!(req["Subject"]["CommonName"], Value::from("csr"));
        assert_eq!(req["DNSNames"], json(r#"["csr.example.com"]"#));
        assert_eq!(req["Version"], Value::from(0));
        assert_eq!(req["SignatureAlgorithm"], Value::from(10));
        assert_eq!(req["Extensions"][0]["Id"], json("[2, 5, 29, 17]"));
    }

    #[test]
    fn private_keys_as_go_and_jwk() {
        let rsa_jwk = json(include_str!("testdata/rsa.jwk.json"));
        for pem_text in [
            include_str!("testdata/rsa_pkcs1.pem"),
            include_str!("testdata/rsa_pkcs8.pem"),
        ] {
            assert_eq!(
                call(
                    "crypto.x509.parse_rsa_private_key",
                    &[Value::from(pem_text)]
                )
                .unwrap(),
                rsa_jwk
            );
            let b64 = Value::from(STANDARD.encode(pem_text));
            assert_eq!(
                call("crypto.x509.parse_rsa_private_key", &[b64]).unwrap(),
                rsa_jwk
            );
        }
        let ec_jwk = json(include_str!("testdata/ec.jwk.json"));
        for pem_text in [
            include_str!("testdata/ec_sec1.pem"),
            include_str!("testdata/ec_pkcs8.pem"),
        ] {
            assert_eq!(
                call(
                    "crypto.x509.parse_rsa_private_key",
                    &[Value::from(pem_text)]
                )
                .unwrap(),
                ec_jwk
            );
        }
        let ed = call(
            "crypto.x509.parse_rsa_private_key",
            &[Value::from(include_str!("testdata/ed25519.pem"))],
        )
        .unwrap();
        assert_eq!(ed, json(include_str!("testdata/ed25519.jwk.json")));

        let all = format!(
            "{}{}{}",
            include_str!("testdata/rsa_pkcs1.pem"),
            include_str!("testdata/ec_sec1.pem"),
            include_str!("testdata/ed25519.pem")
        );
        let keys = call("crypto.parse_private_keys", &[Value::from(all.as_str())]).unwrap();
        assert_eq!(keys[0]["E"], Value::from(65537));
        assert_eq!(keys[0]["Precomputed"]["CRTValues"], json("[]"));
        assert_eq!(
            keys[1]["D"],
            Value::from_numeric_string(
                "29486439584736341514735322721632484796055507621568960292682169117883014961395"
            )
            .unwrap()
        );
        assert_eq!(
            keys[2],
            Value::from(
                "wfQbBAr7kmnrUEtmQvWepCqrz6a+iSgCXvQS0UwDAYwHpYquL0XZjOJgx39lTTuyxJXzAvjpdEQm/cH2H+F5/A=="
            )
        );
        assert_eq!(
            call("crypto.parse_private_keys", &[Value::from("")]).unwrap(),
            Value::Null
        );
        assert_eq!(
            call("crypto.parse_private_keys", &[Value::from("no keys")]).unwrap(),
            json("[]")
        );
    }
}
