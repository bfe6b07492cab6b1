//! IP networks (CIDR) as the recipe uses them: service and cluster ranges.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network: an address with its host bits zero and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x::y/n`; refuses set host bits (a common typo worth stopping).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not a CIDR (expected address/prefix, e.g. 10.32.0.0/24)")
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR: {addr:?} is not an IP address"))?;
        let max = max_prefix(addr);
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{s:?} is not a CIDR: prefix must be 0..={max}"))?;
        let cidr = Cidr { addr, prefix };
        if cidr.network() != addr {
            return Err(format!(
                "{s:?} has host bits set; did you mean {}/{prefix}?",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Number of host bits.
    pub fn host_bits(&self) -> u8 {
        max_prefix(self.addr) - self.prefix
    }

    pub fn network(&self) -> IpAddr {
        from_u128(self.addr, to_u128(self.addr) & self.mask())
    }

    /// The `n`th address of the network (0 is the network address), if the network holds it.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let size = 1u128.checked_shl(u32::from(self.host_bits())).unwrap_or(0);
        if size != 0 && n >= size {
            return None;
        }
        Some(from_u128(self.addr, to_u128(self.network()) + n))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addr.is_ipv4() == ip.is_ipv4() && to_u128(ip) & self.mask() == to_u128(self.network())
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    fn mask(&self) -> u128 {
        let bits = u32::from(max_prefix(self.addr));
        let host = u32::from(self.host_bits());
        let all = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        all & !(1u128.checked_shl(host).map_or(u128::MAX, |v| v - 1))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(like: IpAddr, v: u128) -> IpAddr {
    match like {
        // The value came from an IPv4 address masked within 32 bits.
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_indexes() {
        let c = Cidr::parse("10.32.0.0/24").expect("valid");
        assert_eq!(c.nth(1), Some("10.32.0.1".parse().expect("ip")));
        assert_eq!(c.nth(10), Some("10.32.0.10".parse().expect("ip")));
        assert_eq!(c.nth(256), None);
        assert!(c.contains("10.32.0.200".parse().expect("ip")));
        assert!(!c.contains("10.33.0.1".parse().expect("ip")));
        let v6 = Cidr::parse("fd00::/108").expect("valid");
        assert_eq!(v6.nth(1), Some("fd00::1".parse().expect("ip")));
    }

    #[test]
    fn refuses_nonsense() {
        assert!(Cidr::parse("10.32.0.0").is_err());
        assert!(Cidr::parse("10.32.0.0/33").is_err());
        assert!(Cidr::parse("10.32.0.300/24").is_err());
        let e = Cidr::parse("10.32.0.5/24").expect_err("host bits");
        assert!(e.contains("10.32.0.0/24"), "{e}");
        assert!(Cidr::parse("0.0.0.0/0").is_ok());
    }
}
