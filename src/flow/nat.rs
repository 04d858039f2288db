//! The two legs of a connection that a NAT translated: the site file's `nat` addresses say
//! which public address stands for which host. A packet to or from a public address is
//! tracked under the host's own address (of the same family), so that the outside leg
//! (client ↔ public address) and the inside leg (client ↔ host) are one connection, and their
//! copies pair like any other packet's (`dedup`: same headers once the address is the same;
//! the NAT keeps ports, IP ID, sequence numbers and lengths). The public address is kept as
//! the connection's `via`.
//!
//! Known limit: a NAT that also rewrites ports (a port clash in SNAT, or port forwarding to
//! another port) leaves the legs apart.

use crate::decode::{Packet, Transport};
use std::net::IpAddr;

/// Public address → the host's own address, at most [`MAX_PAIRS`] (a packet carries the
/// pair's number in a byte).
#[derive(Clone, Debug, Default)]
pub struct NatMap {
    pairs: Vec<(IpAddr, IpAddr)>,
}

/// The most NAT addresses joined; past it, the rest are left as they are.
pub const MAX_PAIRS: usize = 255;

impl NatMap {
    /// From (public, host's own address) pairs.
    pub fn new(pairs: impl IntoIterator<Item = (IpAddr, IpAddr)>) -> NatMap {
        NatMap {
            pairs: pairs
                .into_iter()
                .map(|(p, h)| (p.to_canonical(), h.to_canonical()))
                .filter(|(p, h)| p != h)
                .take(MAX_PAIRS)
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The public address of pair `nat` (as [`Packet::nat`] numbers them: 1 for the first).
    pub fn public(&self, nat: u8) -> Option<IpAddr> {
        usize::from(nat)
            .checked_sub(1)
            .and_then(|i| self.pairs.get(i))
            .map(|(p, _)| *p)
    }

    /// Puts the host's own address in place of a public one (source, destination, and the
    /// packet an ICMP error quotes), numbering the pair in [`Packet::nat`]. No allocation.
    #[inline]
    pub fn apply(&self, p: &mut Packet) {
        for (i, &(public, own)) in self.pairs.iter().enumerate() {
            let n = u8::try_from(i + 1).unwrap_or(u8::MAX);
            if p.src == public {
                p.src = own;
                p.nat = n;
            }
            if p.dst == public {
                p.dst = own;
                p.nat = n;
            }
            if let Transport::Icmp(m) = &mut p.transport {
                if let Some(q) = &mut m.quote {
                    if q.src == public {
                        q.src = own;
                    }
                    if q.dst == public {
                        q.dst = own;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    #[test]
    fn both_legs_become_one_five_tuple() {
        let nat = NatMap::new([(
            "203.0.113.80".parse().unwrap(),
            "198.51.100.10".parse().unwrap(),
        )]);
        let client = "203.0.113.10".parse().unwrap();
        let mut outside = Packet::tcp(
            client,
            40000,
            "203.0.113.80".parse().unwrap(),
            443,
            TcpFlags::SYN,
            1,
            0,
            0,
        );
        let inside = Packet::tcp(
            client,
            40000,
            "198.51.100.10".parse().unwrap(),
            443,
            TcpFlags::SYN,
            1,
            0,
            0,
        );
        nat.apply(&mut outside);
        assert_eq!((outside.src, outside.dst), (inside.src, inside.dst));
        assert_eq!(nat.public(outside.nat), "203.0.113.80".parse().ok());
        assert_eq!(inside.nat, 0);
    }
}
