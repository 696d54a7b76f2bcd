//! The `net.*` builtins regorus lacks: `net.cidr_intersects`,
//! `net.cidr_overlap` (OPA's deprecated alias of `net.cidr_contains`),
//! `net.cidr_contains_matches`, `net.cidr_merge`, and `net.lookup_ip_addr`,
//! which is an error because regard performs no DNS lookups (policy
//! results must not depend on the network), and `http.send`, an error for
//! the same reason (regorus' own silently returns undefined).
//!
//! Addresses are held as 128-bit numbers in IPv6 space, IPv4 ones mapped to
//! `::ffff:a.b.c.d` as Go's `net.IP` holds them, so both families sort and
//! merge on one scale as in OPA.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Result, anyhow, bail};
use regorus::Value;

use super::{Builtin, str_operand, type_name, unary};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("net.cidr_intersects", 2, cidr_intersects),
    ("net.cidr_overlap", 2, cidr_overlap),
    ("net.cidr_contains_matches", 2, cidr_contains_matches),
    ("net.cidr_merge", 1, cidr_merge),
    ("net.lookup_ip_addr", 1, lookup_ip_addr),
    ("http.send", 1, http_send),
];

const V4_MAPPED: u128 = 0xffff_0000_0000;

/// A network: its address as written (for printing), prefix length and family.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Net {
    addr: u128,
    prefix: u32,
    v4: bool,
}

impl Net {
    fn bits(&self) -> u32 {
        if self.v4 { 32 } else { 128 }
    }

    /// The host bits of this network, set.
    fn host_mask(&self) -> u128 {
        let host = self.bits() - self.prefix.min(self.bits());
        if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        }
    }

    fn first(&self) -> u128 {
        self.addr & !self.host_mask()
    }

    fn last(&self) -> u128 {
        self.first() | self.host_mask()
    }

    /// Go's `IPNet.Contains`: same family and inside the range.
    fn contains(&self, ip: u128, v4: bool) -> bool {
        self.v4 == v4 && ip & !self.host_mask() == self.first()
    }

    /// Go's `IPNet.String`: the address as stored, then the prefix length.
    fn render(&self) -> String {
        format!("{}/{}", render_ip(self.addr, self.v4), self.prefix)
    }
}

fn render_ip(addr: u128, v4: bool) -> String {
    if v4 {
        Ipv4Addr::from((addr & 0xffff_ffff) as u32).to_string()
    } else {
        Ipv6Addr::from(addr).to_string()
    }
}

/// Go's `net.ParseIP`: the address and whether it is IPv4 (or IPv4-mapped).
fn parse_ip(s: &str) -> Option<(u128, bool)> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some((u128::from(u32::from(a)), true)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Some((u128::from(u32::from(v4)), true)),
            None => Some((u128::from(a), false)),
        },
    }
}

/// Go's `net.ParseCIDR`: the network with its address masked.
fn parse_cidr(s: &str) -> Result<Net> {
    let bad = || anyhow!("invalid CIDR address: {s}");
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let v4 = !addr.contains(':');
    let addr = match addr.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix: u32 = len.parse().map_err(|_| bad())?;
    let net = Net { addr, prefix, v4 };
    if prefix > net.bits() {
        return Err(bad());
    }
    Ok(Net {
        addr: net.first(),
        ..net
    })
}

fn cidr_operand(name: &str, pos: usize, v: &Value) -> Result<Net> {
    parse_cidr(str_operand(name, pos, v)?).map_err(|e| anyhow!("{name}: {e}"))
}

/// `net.cidr_contains` as OPA defines it: an address or a whole network.
fn contains(name: &str, a: &Value, b: &Value) -> Result<bool> {
    let net = cidr_operand(name, 1, a)?;
    let b_str = str_operand(name, 2, b)?;
    if let Some((ip, v4)) = parse_ip(b_str) {
        return Ok(net.contains(ip, v4));
    }
    let inner = parse_cidr(b_str).map_err(|_| {
        anyhow!("{name}: not a valid textual representation of an IP address or CIDR: {b_str}")
    })?;
    Ok(net.contains(inner.first(), inner.v4) && net.contains(inner.last(), inner.v4))
}

fn cidr_overlap(args: &[Value]) -> Result<Value> {
    let [a, b] = args else {
        bail!("net.cidr_overlap: expects 2 arguments");
    };
    Ok(Value::from(contains("net.cidr_overlap", a, b)?))
}

fn cidr_intersects(args: &[Value]) -> Result<Value> {
    let [a, b] = args else {
        bail!("net.cidr_intersects: expects 2 arguments");
    };
    let a = cidr_operand("net.cidr_intersects", 1, a)?;
    let b = cidr_operand("net.cidr_intersects", 2, b)?;
    Ok(Value::from(
        a.contains(b.first(), b.v4) || b.contains(a.first(), a.v4),
    ))
}

/// The `(cidr, index)` pairs of one operand of `net.cidr_contains_matches`.
fn match_terms(pos: usize, v: &Value) -> Result<Vec<(Value, Value)>> {
    let cidr_of = |x: &Value| -> Result<Value> {
        match x {
            Value::String(_) => Ok(x.clone()),
            Value::Array(a) if !a.is_empty() => Ok(a.get(0).cloned().unwrap_or(Value::Null)),
            _ => bail!(
                "net.cidr_contains_matches: operand {pos}: element must be string or non-empty array"
            ),
        }
    };
    match v {
        Value::String(_) => Ok(vec![(v.clone(), v.clone())]),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| Ok((cidr_of(x)?, Value::from(i))))
            .collect(),
        Value::Set(s) => s.iter().map(|x| Ok((cidr_of(x)?, x.clone()))).collect(),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| Ok((cidr_of(x)?, k.clone())))
            .collect(),
        // OPA's type checker rejects other types; at run time they match nothing.
        _ => Ok(Vec::new()),
    }
}

fn cidr_contains_matches(args: &[Value]) -> Result<Value> {
    let [a, b] = args else {
        bail!("net.cidr_contains_matches: expects 2 arguments");
    };
    let mut out = BTreeSet::new();
    let rhs = match_terms(2, b)?;
    for (cidr1, index1) in match_terms(1, a)? {
        for (cidr2, index2) in &rhs {
            if contains("net.cidr_contains_matches", &cidr1, cidr2)? {
                out.insert(Value::from(vec![index1.clone(), index2.clone()]));
            }
        }
    }
    Ok(Value::from(out))
}

/// One element of `net.cidr_merge`: a CIDR, or an IPv4 address with its
/// classful default mask (Go's `IP.DefaultMask`), address left unmasked.
fn merge_element(v: &Value) -> Result<Net> {
    let Value::String(s) = v else {
        bail!("net.cidr_merge: element must be string");
    };
    match parse_ip(s) {
        Some((ip, true)) => {
            let top = (ip >> 24) as u8;
            let prefix = if top < 0x80 {
                8
            } else if top < 0xc0 {
                16
            } else {
                24
            };
            Ok(Net {
                addr: ip,
                prefix,
                v4: true,
            })
        }
        Some((_, false)) => bail!("net.cidr_merge: IPv6 invalid: needs prefix length"),
        None => parse_cidr(s).map_err(|e| anyhow!("net.cidr_merge: {e}")),
    }
}

/// A range in the shared 128-bit scale, and the network it came from if
/// it was not merged with another.
struct Range {
    first: u128,
    last: u128,
    net: Option<Net>,
}

fn to_shared(addr: u128, v4: bool) -> u128 {
    if v4 { V4_MAPPED | addr } else { addr }
}

/// Go's `GetPreviousIP`: one less, except at the bottom of each family.
fn previous(ip: u128) -> u128 {
    if ip == V4_MAPPED || ip == 0 {
        ip
    } else {
        ip - 1
    }
}

/// The fewest CIDRs covering `first..=last` (both in one family's scale).
fn range_to_cidrs(mut first: u128, last: u128, v4: bool) -> Vec<Net> {
    let bits = if v4 { 32 } else { 128 };
    let mut out = Vec::new();
    loop {
        // The largest block aligned at `first` that stays within `last`.
        let mut host = if first == 0 {
            bits
        } else {
            first.trailing_zeros().min(bits)
        };
        while host > 0 {
            let span = if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            };
            if first.checked_add(span).is_some_and(|end| end <= last) {
                break;
            }
            host -= 1;
        }
        out.push(Net {
            addr: first,
            prefix: bits - host,
            v4,
        });
        let span = if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        match first.checked_add(span).and_then(|e| e.checked_add(1)) {
            Some(next) if next <= last => first = next,
            _ => return out,
        }
    }
}

fn cidr_merge(args: &[Value]) -> Result<Value> {
    let nets: Vec<Net> = match unary("net.cidr_merge", args)? {
        Value::Array(a) => a.iter().map(merge_element).collect::<Result<_>>()?,
        Value::Set(s) => s.iter().map(merge_element).collect::<Result<_>>()?,
        _ => bail!("net.cidr_merge: operand must be an array"),
    };
    let mut ranges: Vec<Range> = nets
        .into_iter()
        .map(|n| Range {
            first: to_shared(n.first(), n.v4),
            last: to_shared(n.last(), n.v4),
            net: Some(n),
        })
        .collect();
    ranges.sort_by(|a, b| a.last.cmp(&b.last).then(a.first.cmp(&b.first)));
    // Merge from the top down, as OPA does, so a range swallows every
    // earlier range that overlaps or touches it.
    let mut i = ranges.len();
    while i > 1 {
        i -= 1;
        let (Some(cur), Some(prev)) = (ranges.get(i), ranges.get(i - 1)) else {
            break;
        };
        if previous(cur.first) <= prev.last {
            let merged = Range {
                first: prev.first.min(cur.first),
                last: cur.last,
                net: None,
            };
            ranges.splice(i - 1..=i, [merged]);
        }
    }
    let mut out = BTreeSet::new();
    for r in ranges {
        match r.net {
            Some(n) => {
                out.insert(Value::from(n.render()));
            }
            None => {
                let v4 = r.first & !0xffff_ffff == V4_MAPPED;
                let (first, last) = if v4 {
                    (r.first & 0xffff_ffff, r.last & 0xffff_ffff)
                } else {
                    (r.first, r.last)
                };
                for n in range_to_cidrs(first, last, v4) {
                    out.insert(Value::from(n.render()));
                }
            }
        }
    }
    Ok(Value::from(out))
}

fn lookup_ip_addr(args: &[Value]) -> Result<Value> {
    let name = str_operand("net.lookup_ip_addr", 1, unary("net.lookup_ip_addr", args)?)?;
    bail!("net.lookup_ip_addr: {name}: DNS lookups are disabled in regard")
}

fn http_send(args: &[Value]) -> Result<Value> {
    match unary("http.send", args)? {
        Value::Object(_) => bail!("http.send: network requests are disabled in regard"),
        other => bail!(
            "http.send: operand 1 must be object but got {}",
            type_name(other)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        Value::from_json_str(s).unwrap()
    }

    fn json(value: &Value) -> String {
        value.to_json_str().unwrap().split_whitespace().collect()
    }

    #[test]
    fn intersects_and_overlap() {
        let f = |a: &str, b: &str| cidr_intersects(&[Value::from(a), Value::from(b)]).unwrap();
        assert_eq!(f("192.168.0.0/16", "192.168.1.0/24"), Value::from(true));
        assert_eq!(f("192.168.1.0/24", "192.168.0.0/16"), Value::from(true));
        assert_eq!(f("192.168.1.0/24", "192.168.2.0/24"), Value::from(false));
        assert_eq!(f("fd00::/8", "fd12::/16"), Value::from(true));
        let o = |a: &str, b: &str| cidr_overlap(&[Value::from(a), Value::from(b)]).unwrap();
        assert_eq!(o("10.0.0.0/8", "10.1.2.3"), Value::from(true));
        assert_eq!(o("10.0.0.0/8", "10.0.0.0/7"), Value::from(false));
    }

    #[test]
    fn contains_matches_pairs_indexes() {
        let out = cidr_contains_matches(&[
            v(r#"["10.0.0.0/8", ["192.168.0.0/16", "extra"]]"#),
            v(r#"{"a": "10.1.1.1", "b": "192.168.3.0/24", "c": "8.8.8.8"}"#),
        ])
        .unwrap();
        assert_eq!(json(&out), r#"[[0,"a"],[1,"b"]]"#);
    }

    #[test]
    fn merge_joins_adjacent_and_contained_networks() {
        let m = |s: &str| json(&cidr_merge(&[v(s)]).unwrap());
        assert_eq!(
            m(r#"["192.0.128.0/24", "192.0.129.0/24"]"#),
            r#"["192.0.128.0/23"]"#
        );
        assert_eq!(
            m(r#"["10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8"]"#),
            r#"["10.0.0.0/8"]"#
        );
        assert_eq!(
            m(r#"["192.0.128.0/24", "192.0.130.0/24"]"#),
            r#"["192.0.128.0/24","192.0.130.0/24"]"#
        );
        assert_eq!(
            m(r#"["192.0.129.0/24", "192.0.130.0/24"]"#),
            r#"["192.0.129.0/24","192.0.130.0/24"]"#
        );
        assert_eq!(
            m(r#"["192.0.128.0/24", "192.0.129.0/24", "192.0.130.0/24"]"#),
            r#"["192.0.128.0/23","192.0.130.0/24"]"#
        );
        assert_eq!(
            m(r#"["2001:db8::/33", "2001:db8:8000::/33"]"#),
            r#"["2001:db8::/32"]"#
        );
        // A bare IPv4 address stands for its classful network.
        assert_eq!(m(r#"["192.168.1.5"]"#), r#"["192.168.1.5/24"]"#);
        assert_eq!(
            cidr_merge(&[v(r#"["::1"]"#)]).unwrap_err().to_string(),
            "net.cidr_merge: IPv6 invalid: needs prefix length"
        );
    }

    #[test]
    fn lookups_and_requests_fail_without_network() {
        assert_eq!(
            lookup_ip_addr(&[Value::from("example.com")])
                .unwrap_err()
                .to_string(),
            "net.lookup_ip_addr: example.com: DNS lookups are disabled in regard"
        );
        assert_eq!(
            http_send(&[v(r#"{"method": "get", "url": "http://x"}"#)])
                .unwrap_err()
                .to_string(),
            "http.send: network requests are disabled in regard"
        );
    }
}
