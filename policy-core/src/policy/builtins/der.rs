//! A minimal DER reader for the certificate extensions and private keys
//! the `crypto.*` builtins decode field by field, the way Go's
//! `cryptobyte` does, so every field reaches Rego with Go's encoding.

use anyhow::{Result, bail};

pub(super) const BOOLEAN: u8 = 0x01;
pub(super) const INTEGER: u8 = 0x02;
pub(super) const BIT_STRING: u8 = 0x03;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const OID: u8 = 0x06;
pub(super) const SEQUENCE: u8 = 0x30;
pub(super) const SET: u8 = 0x31;

/// A cursor over DER elements.
#[derive(Debug, Clone, Copy)]
pub(super) struct Der<'a> {
    data: &'a [u8],
}

impl<'a> Der<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Der { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// The next element: its tag, its contents and the whole element.
    pub fn read_any(&mut self) -> Result<(u8, &'a [u8], &'a [u8])> {
        let (&tag, rest) = self
            .data
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("truncated DER"))?;
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("truncated DER"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                bail!("unsupported DER length");
            }
            let (bytes, after) = rest
                .split_at_checked(n)
                .ok_or_else(|| anyhow::anyhow!("truncated DER"))?;
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let header = self.data.len() - rest.len();
        let (content, after) = rest
            .split_at_checked(len)
            .ok_or_else(|| anyhow::anyhow!("truncated DER"))?;
        let whole = self.data.get(..header + len).unwrap_or(&[]);
        self.data = after;
        Ok((tag, content, whole))
    }

    /// The contents of the next element, which must have tag `tag`.
    pub fn read(&mut self, tag: u8) -> Result<&'a [u8]> {
        let (t, content, _) = self.read_any()?;
        if t != tag {
            bail!("unexpected DER tag {t:#04x}, wanted {tag:#04x}");
        }
        Ok(content)
    }

    /// The contents of the next element if it has tag `tag`.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn read_seq(&mut self) -> Result<Der<'a>> {
        self.read(SEQUENCE).map(Der::new)
    }

    pub fn read_oid(&mut self) -> Result<Vec<u64>> {
        oid_arcs(self.read(OID)?)
    }

    /// A non-negative INTEGER as big-endian bytes without leading zeros.
    pub fn read_uint(&mut self) -> Result<&'a [u8]> {
        let b = self.read(INTEGER)?;
        if b.first().is_some_and(|x| *x & 0x80 != 0) {
            bail!("negative integer");
        }
        let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        Ok(b.get(first..).unwrap_or(&[]))
    }

    /// A small INTEGER, negative values allowed.
    pub fn read_int(&mut self) -> Result<i64> {
        int_value(self.read(INTEGER)?)
    }
}

pub(super) fn int_value(b: &[u8]) -> Result<i64> {
    if b.is_empty() || b.len() > 8 {
        bail!("integer out of range");
    }
    let negative = b.first().is_some_and(|x| *x & 0x80 != 0);
    let init: i64 = if negative { -1 } else { 0 };
    Ok(b.iter().fold(init, |acc, x| (acc << 8) | i64::from(*x)))
}

/// The arcs of an OBJECT IDENTIFIER's contents.
pub(super) fn oid_arcs(b: &[u8]) -> Result<Vec<u64>> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, byte) in b.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            bail!("OID arc too large");
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == b.len() {
            bail!("truncated OID");
        }
    }
    if arcs.is_empty() {
        bail!("empty OID");
    }
    Ok(arcs)
}

pub(super) fn oid_string(arcs: &[u64]) -> String {
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_and_oids() {
        // SEQUENCE { OID 2.5.29.15, BOOLEAN true, INTEGER -2 }
        let der = [
            0x30, 0x0b, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x02, 0x01, 0xfe,
        ];
        let mut outer = Der::new(&der);
        let mut seq = outer.read_seq().unwrap();
        assert!(outer.is_empty());
        assert_eq!(seq.read_oid().unwrap(), vec![2, 5, 29, 15]);
        assert_eq!(seq.read(BOOLEAN).unwrap(), &[0xff]);
        assert_eq!(seq.read_int().unwrap(), -2);
        assert!(seq.read_any().is_err());
    }
}
