//! The bidirectional flow key: the same key for both directions of a connection.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address and port, compact and `Copy` (24 bytes): three words, each written whole.
///
/// The address is kept as the 128-bit number it spells, in two halves, IPv4 as IPv4-mapped
/// IPv6 (`::ffff:a.b.c.d`); the port and family share the third word. Endpoints are built,
/// copied and compared for every packet: as a `[u8; 16]` address beside a `u16` and a
/// `bool`, they were assembled on the stack a byte or two at a time and then read back as
/// words, and the CPU stalled on every such read (store forwarding fails when a load spans
/// several smaller stores): a fifth of the tracking thread's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    hi: u64,
    lo: u64,
    /// The port in bits 1..17, bit 0 set for IPv4.
    tail: u64,
}

/// Address (as a number), then port, then family: the order of the words.
impl Ord for Endpoint {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.hi, self.lo, self.tail).cmp(&(other.hi, other.lo, other.tail))
    }
}

impl PartialOrd for Endpoint {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// `::ffff:0:0/96`, the prefix of IPv4-mapped addresses, in the lower half.
const V4_MAPPED: u64 = 0xffff_0000_0000;

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        let port = u64::from(port) << 1;
        match ip {
            IpAddr::V4(a) => Endpoint {
                hi: 0,
                lo: V4_MAPPED | u64::from(u32::from(a)),
                tail: port | 1,
            },
            IpAddr::V6(a) => {
                let x = u128::from(a);
                Endpoint {
                    hi: (x >> 64) as u64,
                    lo: x as u64,
                    tail: port,
                }
            }
        }
    }

    pub fn port(&self) -> u16 {
        (self.tail >> 1) as u16
    }

    /// An IPv4 address (IPv6 otherwise).
    pub fn v4(&self) -> bool {
        self.tail & 1 == 1
    }

    pub fn ip(&self) -> IpAddr {
        if self.v4() {
            IpAddr::V4(Ipv4Addr::from(self.lo as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(
                u128::from(self.hi) << 64 | u128::from(self.lo),
            ))
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

/// Four address words and one of ports, families and protocol into the hasher (the derived
/// impl makes a call per field).
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.lo.hi);
        h.write_u64(self.lo.lo);
        h.write_u64(self.hi.hi);
        h.write_u64(self.hi.lo);
        h.write_u64(self.lo.tail << 32 | self.hi.tail << 8 | u64::from(self.proto));
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
