//! The bidirectional flow key: the same key for both directions of a connection.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address and port, compact and `Copy` (20 bytes, byte-aligned address). IPv4 addresses
/// are stored IPv4-mapped; the address bytes compare like the numbers they spell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addr: [u8; 16],
    pub port: u16,
    pub v4: bool,
}

/// Address (as the number its bytes spell), then port, then family: the order the fields'
/// derived order gives, with the address compared as one 128-bit number instead of byte by
/// byte (this comparison runs for every packet).
impl Ord for Endpoint {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        u128::from_be_bytes(self.addr)
            .cmp(&u128::from_be_bytes(other.addr))
            .then(self.port.cmp(&other.port))
            .then(self.v4.cmp(&other.v4))
    }
}

impl PartialOrd for Endpoint {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        match ip {
            IpAddr::V4(a) => Endpoint {
                addr: a.to_ipv6_mapped().octets(),
                port,
                v4: true,
            },
            IpAddr::V6(a) => Endpoint {
                addr: a.octets(),
                port,
                v4: false,
            },
        }
    }

    pub fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.addr);
        if self.v4 {
            let o = v6.octets();
            IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
        } else {
            IpAddr::V6(v6)
        }
    }
}

/// Canonical key: the lower endpoint first, so both directions map to one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub lo: Endpoint,
    pub hi: Endpoint,
    /// IP protocol number (6, 17, 1 or 58).
    pub proto: u8,
}

/// Five words into the hasher (the derived impl makes a call per field and per slice length).
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let word = |a: &[u8; 16], half: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&a[half * 8..half * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        h.write_u64(word(&self.lo.addr, 0));
        h.write_u64(word(&self.lo.addr, 1));
        h.write_u64(word(&self.hi.addr, 0));
        h.write_u64(word(&self.hi.addr, 1));
        h.write_u64(
            u64::from(self.lo.port) << 48
                | u64::from(self.hi.port) << 32
                | u64::from(self.proto) << 16
                | u64::from(self.lo.v4) << 8
                | u64::from(self.hi.v4),
        );
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether `src` is the key's `lo` side.
    pub fn of(proto: u8, src: Endpoint, dst: Endpoint) -> (FlowKey, bool) {
        if src <= dst {
            (
                FlowKey {
                    lo: src,
                    hi: dst,
                    proto,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    lo: dst,
                    hi: src,
                    proto,
                },
                false,
            )
        }
    }
}
