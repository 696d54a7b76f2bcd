//! Kubernetes' CEL IP and CIDR libraries: `ip("10.0.0.1")`, `cidr("10.0.0.0/8")`.
//!
//! Addresses are read as the API server reads them (Go's `netip`, with the
//! library's own refusals): IPv4 in dotted decimal without leading zeros,
//! IPv6 in any RFC 4291 form, no zone (`fe80::1%eth0`) and no IPv4-mapped IPv6
//! (`::ffff:1.2.3.4`). A CIDR keeps the address it was written with
//! (`cidr("10.0.0.1/8").ip()` is `10.0.0.1`; `masked()` clears the host bits).
//! The classification methods follow Go's definitions: `isGlobalUnicast()` is
//! true for private ranges too, and false for the IPv4 broadcast address.
//!
//! Functions: `ip(string)`, `isIP(string)`, `ip.isCanonical(string)`, on an
//! IP `family()`, `isUnspecified()`, `isLoopback()`, `isLinkLocalMulticast()`,
//! `isLinkLocalUnicast()`, `isGlobalUnicast()`; `cidr(string)`,
//! `isCIDR(string)`, on a CIDR `containsIP(ip|string)`,
//! `containsCIDR(cidr|string)`, `ip()`, `masked()`, `prefixLength()`; and
//! `string(ip)`, `string(cidr)`.

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cel::common::types::{CelBool, CelInt, CelString, STRING_TYPE, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

use super::library::{string_arg, take};

/// The CEL types (`const` for declarations, `static` for values).
const IP: Type = Type::new_unspecified_type("net.IP");
static IP_TYPE: Type = IP;
const CIDR: Type = Type::new_unspecified_type("net.CIDR");
static CIDR_TYPE: Type = CIDR;

/// An IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ip(IpAddr);

/// A CIDR: an address as written and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Val for Ip {
    fn get_type(&self) -> &Type {
        &IP_TYPE
    }

    fn cel_type() -> &'static Type {
        &IP_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Ip>().is_some_and(|o| o == self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Ip {}

impl Val for Cidr {
    fn get_type(&self) -> &Type {
        &CIDR_TYPE
    }

    fn cel_type() -> &'static Type {
        &CIDR_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Cidr>().is_some_and(|o| o == self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Cidr {}

/// Parses an address as the API server's library does.
fn parse_ip(text: &str) -> Result<IpAddr, String> {
    if text.contains('%') {
        return Err(format!(
            "IP address {text:?} with zone value is not allowed"
        ));
    }
    // std's parser refuses IPv4 octets with leading zeros, as Go's netip does.
    let addr: IpAddr = text.parse().map_err(|e| {
        format!("IP Address {text:?} parse error during conversion from string: {e}")
    })?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!("IPv4-mapped IPv6 address {text:?} is not allowed"));
    }
    Ok(addr)
}

/// Parses a CIDR as the API server's library does.
fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let bad = || format!("network address {text:?} parse error during conversion from string");
    let (addr, bits) = text.split_once('/').ok_or_else(bad)?;
    if addr.contains('%') {
        return Err(format!("CIDR {text:?} with zone value is not allowed"));
    }
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!("IPv4-mapped IPv6 address {text:?} is not allowed"));
    }
    // Go's ParsePrefix: decimal digits, no sign, no leading zero.
    if bits.is_empty()
        || !bits.bytes().all(|b| b.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
    {
        return Err(bad());
    }
    let bits: u8 = bits.parse().map_err(|_| bad())?;
    if bits > max_bits(addr) {
        return Err(bad());
    }
    Ok(Cidr { addr, bits })
}

fn max_bits(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with all but its first `bits` bits cleared.
fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

impl Cidr {
    fn contains(&self, addr: IpAddr) -> bool {
        max_bits(addr) == max_bits(self.addr) && mask(addr, self.bits) == mask(self.addr, self.bits)
    }
}

fn is_link_local_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_link_local_multicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    }
}

/// Go's `IsGlobalUnicast`.
fn is_global_unicast(addr: IpAddr) -> bool {
    if addr == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return false;
    }
    !addr.is_unspecified()
        && !addr.is_loopback()
        && !addr.is_multicast()
        && !is_link_local_unicast(addr)
}

/// Registers the IP and CIDR functions on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], ip_of)?;
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip)?;
    env.add_overload(
        "ip.isCanonical",
        "ip_is_canonical",
        vec![STRING_TYPE],
        is_canonical,
    )?;
    env.add_member_overload("family", "ip_family", IP, vec![], family)?;
    env.add_member_overload(
        "isUnspecified",
        "ip_is_unspecified",
        IP,
        vec![],
        is_unspecified_method,
    )?;
    env.add_member_overload(
        "isLoopback",
        "ip_is_loopback",
        IP,
        vec![],
        is_loopback_method,
    )?;
    env.add_member_overload(
        "isLinkLocalMulticast",
        "ip_is_link_local_multicast",
        IP,
        vec![],
        is_link_local_multicast_method,
    )?;
    env.add_member_overload(
        "isLinkLocalUnicast",
        "ip_is_link_local_unicast",
        IP,
        vec![],
        is_link_local_unicast_method,
    )?;
    env.add_member_overload(
        "isGlobalUnicast",
        "ip_is_global_unicast",
        IP,
        vec![],
        is_global_unicast_method,
    )?;
    env.add_overload("string", "ip_to_string", vec![IP], to_string)?;
    env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], cidr_of)?;
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr)?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_ip",
        CIDR,
        vec![IP],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_string",
        CIDR,
        vec![STRING_TYPE],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr",
        CIDR,
        vec![CIDR],
        contains_cidr,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr_string",
        CIDR,
        vec![STRING_TYPE],
        contains_cidr,
    )?;
    env.add_member_overload("ip", "cidr_ip", CIDR, vec![], cidr_ip)?;
    env.add_member_overload("masked", "cidr_masked", CIDR, vec![], masked)?;
    env.add_member_overload(
        "prefixLength",
        "cidr_prefix_length",
        CIDR,
        vec![],
        prefix_length,
    )?;
    env.add_overload("string", "cidr_to_string", vec![CIDR], to_string)?;
    Ok(())
}

fn ip_arg(function: &str, v: &dyn Val) -> Result<IpAddr, ExecutionError> {
    if let Some(ip) = v.downcast_ref::<Ip>() {
        return Ok(ip.0);
    }
    let text = string_arg(function, v)?;
    parse_ip(text).map_err(|e| ExecutionError::function_error(function, e))
}

fn cidr_arg(function: &str, v: &dyn Val) -> Result<Cidr, ExecutionError> {
    if let Some(c) = v.downcast_ref::<Cidr>() {
        return Ok(*c);
    }
    let text = string_arg(function, v)?;
    parse_cidr(text).map_err(|e| ExecutionError::function_error(function, e))
}

fn ip_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("ip", args)?;
    Ok(CowVal::owned(Ip(ip_arg("ip", s.as_ref())?)))
}

fn is_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("isIP", args)?;
    let ok = parse_ip(string_arg("isIP", s.as_ref())?).is_ok();
    Ok(CowVal::owned(CelBool::from(ok)))
}

/// Whether the string is the address' canonical form (an error when it is no address).
fn is_canonical<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("ip.isCanonical", args)?;
    let text = string_arg("ip.isCanonical", s.as_ref())?;
    let addr = parse_ip(text).map_err(|e| ExecutionError::function_error("ip.isCanonical", e))?;
    Ok(CowVal::owned(CelBool::from(addr.to_string() == text)))
}

fn family<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [ip] = take("family", args)?;
    let family = match ip_arg("family", ip.as_ref())? {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    };
    Ok(CowVal::owned(CelInt::from(family)))
}

fn classify<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    test: impl Fn(&IpAddr) -> bool,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [ip] = take(function, args)?;
    let addr = ip_arg(function, ip.as_ref())?;
    Ok(CowVal::owned(CelBool::from(test(&addr))))
}

fn is_unspecified_method<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    classify("isUnspecified", args, IpAddr::is_unspecified)
}

fn is_loopback_method<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    classify("isLoopback", args, IpAddr::is_loopback)
}

fn is_link_local_multicast_method<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    classify("isLinkLocalMulticast", args, |ip| {
        is_link_local_multicast(*ip)
    })
}

fn is_link_local_unicast_method<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    classify("isLinkLocalUnicast", args, |ip| is_link_local_unicast(*ip))
}

fn is_global_unicast_method<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    classify("isGlobalUnicast", args, |ip| is_global_unicast(*ip))
}

fn to_string<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [v] = take("string", args)?;
    let text = if let Some(ip) = v.downcast_ref::<Ip>() {
        ip.0.to_string()
    } else if let Some(c) = v.downcast_ref::<Cidr>() {
        format!("{}/{}", c.addr, c.bits)
    } else {
        return Err(ExecutionError::function_error(
            "string",
            "not an IP or CIDR",
        ));
    };
    Ok(CowVal::owned(CelString::from(text)))
}

fn cidr_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("cidr", args)?;
    Ok(CowVal::owned(cidr_arg("cidr", s.as_ref())?))
}

fn is_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("isCIDR", args)?;
    let ok = parse_cidr(string_arg("isCIDR", s.as_ref())?).is_ok();
    Ok(CowVal::owned(CelBool::from(ok)))
}

fn contains_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [c, ip] = take("containsIP", args)?;
    let c = cidr_arg("containsIP", c.as_ref())?;
    let addr = ip_arg("containsIP", ip.as_ref())?;
    Ok(CowVal::owned(CelBool::from(c.contains(addr))))
}

fn contains_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [c, other] = take("containsCIDR", args)?;
    let c = cidr_arg("containsCIDR", c.as_ref())?;
    let other = cidr_arg("containsCIDR", other.as_ref())?;
    Ok(CowVal::owned(CelBool::from(
        c.bits <= other.bits && c.contains(other.addr),
    )))
}

fn cidr_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [c] = take("ip", args)?;
    Ok(CowVal::owned(Ip(cidr_arg("ip", c.as_ref())?.addr)))
}

fn masked<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [c] = take("masked", args)?;
    let c = cidr_arg("masked", c.as_ref())?;
    Ok(CowVal::owned(Cidr {
        addr: mask(c.addr, c.bits),
        bits: c.bits,
    }))
}

fn prefix_length<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [c] = take("prefixLength", args)?;
    let c = cidr_arg("prefixLength", c.as_ref())?;
    Ok(CowVal::owned(CelInt::from(i64::from(c.bits))))
}

#[cfg(test)]
mod tests {
    use crate::cel::evaluate_standalone;

    /// The examples of the Kubernetes CEL documentation, and the edges around them.
    #[test]
    fn kubernetes_ip_and_cidr_library_table() {
        let cases: &[(&str, &str)] = &[
            ("isIP('127.0.0.1')", "true"),
            ("isIP('::1')", "true"),
            ("isIP('127.0.0.256')", "false"),
            ("isIP('127.0.0.01')", "false"),
            ("isIP(':::1')", "false"),
            ("isIP('::ffff:1.2.3.4')", "false"),
            ("isIP('fe80::1%eth0')", "false"),
            ("ip('127.0.0.1').family()", "4"),
            ("ip('::1').family()", "6"),
            ("ip.isCanonical('127.0.0.1')", "true"),
            ("ip.isCanonical('2001:db8::abcd')", "true"),
            ("ip.isCanonical('2001:DB8::ABCD')", "false"),
            ("ip.isCanonical('2001:db8::0:0:0:abcd')", "false"),
            ("ip('0.0.0.0').isUnspecified()", "true"),
            ("ip('::').isUnspecified()", "true"),
            ("ip('127.0.0.1').isUnspecified()", "false"),
            ("ip('127.0.0.1').isLoopback()", "true"),
            ("ip('::1').isLoopback()", "true"),
            ("ip('1.2.3.4').isLoopback()", "false"),
            ("ip('224.0.0.1').isLinkLocalMulticast()", "true"),
            ("ip('224.0.1.1').isLinkLocalMulticast()", "false"),
            ("ip('ff02::1').isLinkLocalMulticast()", "true"),
            ("ip('169.254.169.254').isLinkLocalUnicast()", "true"),
            ("ip('fe80::1').isLinkLocalUnicast()", "true"),
            ("ip('192.168.0.1').isLinkLocalUnicast()", "false"),
            ("ip('192.168.0.1').isGlobalUnicast()", "true"),
            ("ip('255.255.255.255').isGlobalUnicast()", "false"),
            ("ip('2001:db8::abcd').isGlobalUnicast()", "true"),
            ("ip('ff00::1').isGlobalUnicast()", "false"),
            ("string(ip('2001:DB8::ABCD'))", "\"2001:db8::abcd\""),
            ("ip('127.0.0.1') == ip('127.0.0.1')", "true"),
            ("ip('127.0.0.1') == ip('127.0.0.2')", "false"),
            ("isCIDR('192.168.0.0/16')", "true"),
            ("isCIDR('192.168.0.0/33')", "false"),
            ("isCIDR('192.168.0.0')", "false"),
            ("isCIDR('::1/128')", "true"),
            ("isCIDR('10.0.0.0/08')", "false"),
            (
                "cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))",
                "true",
            ),
            (
                "cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))",
                "false",
            ),
            ("cidr('192.168.0.0/24').containsIP('192.168.0.1')", "true"),
            ("cidr('192.168.0.0/24').containsIP('::1')", "false"),
            (
                "cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))",
                "true",
            ),
            (
                "cidr('192.168.1.0/24').containsCIDR(cidr('192.168.0.0/16'))",
                "false",
            ),
            (
                "cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')",
                "true",
            ),
            ("cidr('192.168.0.1/24').ip() == ip('192.168.0.1')", "true"),
            (
                "cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')",
                "true",
            ),
            (
                "string(cidr('192.168.0.1/24').masked())",
                "\"192.168.0.0/24\"",
            ),
            ("cidr('::1/128').masked() == cidr('::1/128')", "true"),
            ("cidr('192.168.0.0/16').prefixLength()", "16"),
            ("cidr('::1/128').prefixLength()", "128"),
            ("cidr('0.0.0.0/0').containsIP('8.8.8.8')", "true"),
        ];
        for (expr, want) in cases {
            assert_eq!(evaluate_standalone(expr).as_deref(), Ok(*want), "{expr}");
        }
        let err = evaluate_standalone("ip('1.2.3')").unwrap_err();
        assert!(
            err.contains("IP Address \"1.2.3\" parse error during conversion from string"),
            "{err}"
        );
    }
}
