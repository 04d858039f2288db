//! Copies of one packet from a capture taken on several interfaces at once (dumpcap with
//! several `-i`, `tcpdump -i any` on a firewall, or a mirror of both of its ports): the same
//! IP packet appears once per interface within microseconds, with the TTL lowered by the
//! forwarding hop. Such copies are recognised by their headers (addresses, IP ID, ports,
//! sequence and acknowledgment numbers, flags, window, lengths — everything but the TTL)
//! within a short window, and counted once:
//!
//! - on another interface than the copies seen so far (the capture names each packet's
//!   interface: pcapng, SLL/SLL2), whatever the TTLs and whichever copy comes first;
//! - on the same interface (a capture that cannot tell interfaces apart: a mirror of two
//!   ports, `-i any` in a pcap without interface indexes) only with a lower TTL than the
//!   first copy.
//!
//! A packet seen again on an interface that already had it is a new packet (a firewall's
//! burst of identical forged RSTs, duplicate ACKs, an IPv6 retransmission), as is one on the
//! same interface with the same TTL. Known limit: NAT'd copies (other addresses) are not
//! recognised and count twice.
//!
//! The copy is handed on as such (`FlowTable::observe_copy`), so what each interface saw is
//! kept per connection.
//!
//! An exact duplicate — the same packet on the same interface with the same TTL and IP ID,
//! within [`EXACT_WINDOW`] (a SPAN session that mirrors both ports of a conversation, so each
//! packet is seen twice) — is told apart and counted ([`Dedup::exact`]) but still handed to
//! the flow table as a packet ([`Seen::Exact`]): Zeek counts it (packets, history), so the
//! Zeek-facing fields keep it, and only exflow's own facts skip it (a SYN seen twice is no
//! SYN retransmission). Not taken for one: RSTs (a firewall's burst of identical forged RSTs)
//! and IPv6 or IP-ID-0 packets without payload or SYN/FIN (duplicate ACKs look identical
//! there).
//!
//! A fixed table of recent fingerprints: no allocation per packet; a collision only makes a
//! copy slip through (counted twice), never drops a distinct packet.

use super::record::iface_bit;
use crate::decode::{Packet, Transport};
use crate::time::{Duration, Timestamp};
use std::net::IpAddr;

/// 4,096 slots of 24 bytes: 96 KiB, small enough to stay in the core's cache (a larger table
/// missed the cache on most packets once the capture's bytes streamed through it). At
/// 1,000,000 packets/s a fingerprint lasts about 4 ms, well past the microseconds between
/// copies.
const SLOTS: usize = 1 << 12;

/// Copies arrive within this time of the original.
pub const WINDOW: Duration = Duration::from_millis(10);

/// An exact duplicate arrives within this time of the original: a switch's mirror copies
/// within microseconds, where a TCP stack's own retransmission waits at least an RTO (200 ms
/// and more; a tail-loss probe 10 ms and more).
pub const EXACT_WINDOW: Duration = Duration::from_millis(1);

/// What [`Dedup::check`] made of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A packet not seen before.
    New,
    /// Another interface's (or the forwarded, lower-TTL) copy of a packet just counted.
    Copy,
    /// The same packet again on the same interface, identical (see the module's text).
    Exact,
}

/// A recent packet: its fingerprint (the TTL of its first copy in the low byte), time, and
/// the interfaces it was seen on.
#[derive(Clone, Copy)]
struct Slot {
    fp: u64,
    ts: i64,
    seen: u32,
}

pub struct Dedup {
    slots: Box<[Slot]>,
    pub duplicates: u64,
    /// Exact duplicates seen ([`Seen::Exact`]).
    pub exact: u64,
}

impl Default for Dedup {
    fn default() -> Self {
        let empty = Slot {
            fp: 0,
            ts: i64::MIN,
            seen: 0,
        };
        Dedup {
            slots: vec![empty; SLOTS].into_boxed_slice(),
            duplicates: 0,
            exact: 0,
        }
    }
}

fn addr_bits(a: IpAddr) -> (u64, u64) {
    match a {
        IpAddr::V4(v) => (u64::from(u32::from(v)), 4),
        IpAddr::V6(v) => {
            let x = u128::from(v);
            ((x >> 64) as u64, x as u64)
        }
    }
}

/// Odd multipliers, one per word of the fingerprint (64-bit golden ratio and friends).
const K: [u64; 6] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0xD6E8_FEB8_6659_FD93,
    0xFF51_AFD7_ED55_8CCD,
    0xC4CE_B9FE_1A85_EC53,
];

/// A fingerprint of the packet without its TTL: six words, each multiplied by its own odd
/// constant (independent multiplications the CPU runs side by side, where a chain of mixes
/// waited on each other), summed, then avalanched (MurmurHash3's finalizer).
pub fn fingerprint(p: &Packet) -> u64 {
    let (a1, a2) = addr_bits(p.src);
    let (b1, b2) = addr_bits(p.dst);
    let (t1, t2, t3) = match p.transport {
        Transport::Tcp(t) => (
            6 << 56 | u64::from(t.sport) << 16 | u64::from(t.dport),
            u64::from(t.seq) << 32 | u64::from(t.ack),
            u64::from(t.flags.0) << 48 | u64::from(t.window) << 32 | u64::from(t.payload_len),
        ),
        Transport::Udp(u) => (
            17 << 56 | u64::from(u.sport) << 16 | u64::from(u.dport),
            u64::from(u.payload_len),
            0,
        ),
        Transport::Icmp(m) => (
            1 << 56 | u64::from(m.icmp_type) << 8 | u64::from(m.code),
            u64::from(m.payload_len) << 16 | u64::from(m.echo_id.unwrap_or(0)),
            0,
        ),
        Transport::Other { proto } => (u64::from(proto), 0, 0),
    };
    let ip = u64::from(p.ip_id) << 32 | u64::from(p.ip_len);
    let mut h = (a1 ^ b2.rotate_left(32))
        .wrapping_mul(K[0])
        .wrapping_add((a2 ^ b1.rotate_left(32)).wrapping_mul(K[1]))
        .wrapping_add((ip ^ t3.rotate_left(16)).wrapping_mul(K[2]))
        .wrapping_add(t1.wrapping_mul(K[3]))
        .wrapping_add(t2.wrapping_mul(K[4]))
        .wrapping_add((a1 ^ b1).wrapping_mul(K[5]));
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// Whether an identical packet within [`EXACT_WINDOW`] can be taken for an exact duplicate:
/// not a RST, and distinct from its neighbours by more than its sequence numbers (an IPv4 ID,
/// payload, a SYN or FIN).
fn exact_candidate(p: &Packet) -> bool {
    match p.transport {
        Transport::Tcp(t) => {
            !t.flags.rst()
                && (t.payload_len > 0
                    || t.flags.syn()
                    || t.flags.fin()
                    || (p.ip_id != 0 && p.src.is_ipv4()))
        }
        Transport::Udp(_) => p.ip_id != 0 && p.src.is_ipv4(),
        _ => false,
    }
}

impl Dedup {
    /// True if `p` is a copy of a packet seen within [`WINDOW`] (and counts it).
    pub fn is_copy(&mut self, ts: Timestamp, p: &Packet) -> bool {
        self.check(ts, p) == Seen::Copy
    }

    /// What `p` is: new, another interface's copy, or an exact duplicate (each counted).
    pub fn check(&mut self, ts: Timestamp, p: &Packet) -> Seen {
        let fp = fingerprint(p) & !0xff;
        let slot = &mut self.slots[(fp >> 8) as usize & (SLOTS - 1)];
        let bit = iface_bit(p.iface);
        if slot.fp & !0xff == fp && ts.0.abs_diff(slot.ts) <= WINDOW.0.unsigned_abs() {
            if slot.seen & bit == 0 {
                // Another interface's copy, before or after the others.
                slot.seen |= bit;
                self.duplicates += 1;
                return Seen::Copy;
            }
            if ts.0 >= slot.ts && p.ttl < (slot.fp & 0xff) as u8 {
                // The same interface: the forwarded copy, later and with a lower TTL, in a
                // capture that does not name interfaces.
                self.duplicates += 1;
                return Seen::Copy;
            }
            if p.ttl == (slot.fp & 0xff) as u8
                && ts.0 >= slot.ts
                && ts.0.abs_diff(slot.ts) <= EXACT_WINDOW.0.unsigned_abs()
                && exact_candidate(p)
            {
                // The same packet again, identical: kept as the original's time, so a third
                // copy pairs with it too.
                self.exact += 1;
                return Seen::Exact;
            }
        }
        *slot = Slot {
            fp: fp | u64::from(p.ttl),
            ts: ts.0,
            seen: bit,
        };
        Seen::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use std::net::Ipv4Addr;

    fn pkt(ttl: u8, ip_id: u16) -> Packet {
        Packet {
            ip_len: 60,
            ttl,
            ip_id,
            ..Packet::tcp(
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
                40000,
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
                443,
                TcpFlags::SYN,
                1,
                0,
                0,
            )
        }
    }

    #[test]
    fn the_forwarded_copy_is_dropped_and_counted() {
        let mut d = Dedup::default();
        assert!(!d.is_copy(Timestamp(1_000_000), &pkt(64, 7)));
        assert!(d.is_copy(Timestamp(1_020_000), &pkt(63, 7)));
        assert_eq!(d.duplicates, 1);
    }

    #[test]
    fn identical_packets_with_the_same_ttl_are_all_kept() {
        // A firewall answering every in-flight ACK with the same forged RST.
        let mut d = Dedup::default();
        assert!(!d.is_copy(Timestamp(0), &pkt(64, 0)));
        assert!(!d.is_copy(Timestamp(1_000), &pkt(64, 0)));
        assert_eq!(d.duplicates, 0);
    }

    fn on(mut p: Packet, iface: u16) -> Packet {
        p.iface = iface;
        p.interfaces = 2;
        p
    }

    #[test]
    fn copies_on_other_interfaces_pair_whichever_comes_first() {
        let mut d = Dedup::default();
        // The lower-TTL copy first (dumpcap wrote that interface's burst first), then the
        // original: still one packet.
        assert!(!d.is_copy(Timestamp(1_000_000), &on(pkt(63, 7), 1)));
        assert!(d.is_copy(Timestamp(990_000), &on(pkt(64, 7), 0)));
        // A bridge keeps the TTL: paired by interface all the same.
        assert!(!d.is_copy(Timestamp(2_000_000), &on(pkt(64, 9), 0)));
        assert!(d.is_copy(Timestamp(2_000_100), &on(pkt(64, 9), 1)));
        assert_eq!(d.duplicates, 2);
    }

    #[test]
    fn the_same_packet_again_on_an_interface_that_had_it_is_a_new_packet() {
        // Duplicate ACKs (same headers): each one once per interface.
        let mut d = Dedup::default();
        assert!(!d.is_copy(Timestamp(0), &on(pkt(64, 3), 0)));
        assert!(d.is_copy(Timestamp(100), &on(pkt(63, 3), 1)));
        assert!(!d.is_copy(Timestamp(200), &on(pkt(64, 3), 0)));
        assert!(d.is_copy(Timestamp(300), &on(pkt(63, 3), 1)));
        assert_eq!(d.duplicates, 2);
    }

    #[test]
    fn exact_duplicates_are_told_apart_and_still_handed_on() {
        let mut d = Dedup::default();
        assert_eq!(d.check(Timestamp(0), &pkt(64, 7)), Seen::New);
        assert_eq!(d.check(Timestamp(3_000), &pkt(64, 7)), Seen::Exact);
        assert_eq!(d.check(Timestamp(6_000), &pkt(64, 7)), Seen::Exact);
        // Past the window, or with another IP ID: a packet of its own.
        assert_eq!(d.check(Timestamp(10_000_000), &pkt(64, 7)), Seen::New);
        assert_eq!(d.check(Timestamp(10_001_000), &pkt(64, 8)), Seen::New);
        assert_eq!((d.exact, d.duplicates), (2, 0));
    }

    #[test]
    fn a_retransmission_is_not_a_copy() {
        let mut d = Dedup::default();
        assert!(!d.is_copy(Timestamp(0), &pkt(64, 7)));
        // Same headers but a new IP ID, or a second later: both real packets.
        assert!(!d.is_copy(Timestamp(1_000), &pkt(64, 8)));
        assert!(!d.is_copy(Timestamp(1_000_000_000), &pkt(64, 8)));
    }
}
