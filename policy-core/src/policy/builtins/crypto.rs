//! `crypto.md5`, `crypto.sha1`, `crypto.sha256`, `crypto.hmac.*`: digests
//! and HMACs of a string, as lowercase hex, and `crypto.hmac.equal`, a
//! constant-time comparison of two MACs.

use anyhow::{Result, bail};
use hmac::{KeyInit, Mac};
use md5::Md5;
use regorus::Value;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

use super::{Builtin, str_operand, unary};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("crypto.md5", 1, |a| digest::<Md5>("crypto.md5", a)),
    ("crypto.sha1", 1, |a| digest::<Sha1>("crypto.sha1", a)),
    ("crypto.sha256", 1, |a| digest::<Sha256>("crypto.sha256", a)),
    ("crypto.hmac.md5", 2, |a| {
        mac::<hmac::Hmac<Md5>>("crypto.hmac.md5", a)
    }),
    ("crypto.hmac.sha1", 2, |a| {
        mac::<hmac::Hmac<Sha1>>("crypto.hmac.sha1", a)
    }),
    ("crypto.hmac.sha256", 2, |a| {
        mac::<hmac::Hmac<Sha256>>("crypto.hmac.sha256", a)
    }),
    ("crypto.hmac.sha512", 2, |a| {
        mac::<hmac::Hmac<Sha512>>("crypto.hmac.sha512", a)
    }),
    ("crypto.hmac.equal", 2, hmac_equal),
];

/// Lowercase hex, as Go's `hex.EncodeToString`.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn digest<D: Digest>(name: &str, args: &[Value]) -> Result<Value> {
    let input = str_operand(name, 1, unary(name, args)?)?;
    Ok(Value::from(hex(&D::digest(input.as_bytes()))))
}

/// The HMAC of `message` under `key`.
pub(super) fn hmac_bytes<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn mac<M: Mac + KeyInit>(name: &str, args: &[Value]) -> Result<Value> {
    let [message, key] = args else {
        bail!("{name}: expects 2 arguments");
    };
    let message = str_operand(name, 1, message)?;
    let key = str_operand(name, 2, key)?;
    Ok(Value::from(hex(&hmac_bytes::<M>(
        key.as_bytes(),
        message.as_bytes(),
    ))))
}

/// Compares without an early exit, as Go's `hmac.Equal` does.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hmac_equal(args: &[Value]) -> Result<Value> {
    let [a, b] = args else {
        bail!("crypto.hmac.equal: expects 2 arguments");
    };
    let a = str_operand("crypto.hmac.equal", 1, a)?;
    let b = str_operand("crypto.hmac.equal", 2, b)?;
    Ok(Value::from(constant_time_eq(a.as_bytes(), b.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[&str]) -> String {
        let f = BUILTINS
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, _, f)| *f)
            .unwrap();
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        f(&args).unwrap().as_string().unwrap().to_string()
    }

    #[test]
    fn digests_match_published_vectors() {
        // RFC 1321 A.5, FIPS 180-2 appendix examples.
        assert_eq!(
            call("crypto.md5", &["abc"]),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            call("crypto.sha1", &["abc"]),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            call("crypto.sha256", &["abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmacs_match_rfc_vectors() {
        // RFC 2202 test case 2 (MD5, SHA-1) and RFC 4231 test case 2.
        let msg = "what do ya want for nothing?";
        assert_eq!(
            call("crypto.hmac.md5", &[msg, "Jefe"]),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            call("crypto.hmac.sha1", &[msg, "Jefe"]),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            call("crypto.hmac.sha256", &[msg, "Jefe"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            call("crypto.hmac.sha512", &[msg, "Jefe"]),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn hmac_equal_compares_whole_strings() {
        let f = |a: &str, b: &str| hmac_equal(&[Value::from(a), Value::from(b)]).unwrap();
        assert_eq!(f("abc", "abc"), Value::from(true));
        assert_eq!(f("abc", "abd"), Value::from(false));
        assert_eq!(f("abc", "ab"), Value::from(false));
    }
}
