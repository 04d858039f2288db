//! The reading thread's side of the payload look: which TCP segments' payload is worth
//! copying to the tracking thread (whose flow table decides what to read of it). A segment
//! is copied when it lies within the first [`BUDGET`] bytes of its direction's stream, as
//! known from the SYN (or SYN-ACK) of that direction, remembered in a direct-mapped table of
//! [`SLOTS`] entries (8 bytes each, 64 KiB, allocated once: small enough to stay in the
//! cache while the capture's bytes stream past; the 1 MiB table it replaced missed it on
//! most segments with payload and cost the reading thread about 4 % of a run). A payload-less segment costs a
//! length check; a SYN a hash and a store; a segment with payload a hash and a load.
//!
//! A stream that opens with a TLS handshake record is copied only up to the end of that
//! record and one more record header and 2-byte body (an alert): all the look reads of TLS
//! is the ClientHello or the ServerHello and an alert right after; the rest of the 2 KiB
//! (certificates, encrypted records) was copied to be skipped, 3/4 of what the reading
//! thread copied on an HTTPS site (the 1M-packet synthetic capture: 0.181 → 0.168 s). Two
//! directions that share a slot overwrite each other: the later one's look goes on, the
//! earlier one's stops (its segments are no longer copied), which only a capture with many
//! connections opening at once makes likely.

use super::BUDGET;
use crate::decode::{Packet, Transport};
use std::net::IpAddr;

/// Entries of the table (a power of two).
pub const SLOTS: usize = 1 << 13;

pub struct Gate {
    /// Per slot: the direction's tag (20 bits of its hash, never 0; 0: empty) above the
    /// number of its stream's first bytes to copy (12 bits, at most [`BUDGET`]), and the
    /// stream's first sequence number.
    slots: Vec<(u32, u32)>,
    /// One bit per slot: set while the slot's direction may still want bytes (from its SYN
    /// until a segment reaches its end). 1 KiB, which stays in the L1 cache: most segments
    /// with payload are past their stream's first bytes and stop at a clear bit without
    /// touching the slots, whose loads missed the cache on most of them (2.5 % of a run's
    /// samples, the reading thread's largest cost after the kernel's copy and the decoder).
    live: Vec<u64>,
}

/// Bits of a slot's first word that hold the bytes to copy.
const LIMIT_BITS: u32 = 12;
const LIMIT_MASK: u32 = (1 << LIMIT_BITS) - 1;
const _: () = assert!(BUDGET <= LIMIT_MASK);

/// Bytes of a direction's stream to copy, from its first segment: a TLS handshake record
/// (`16 03 0v` and a length) up to its end and an alert record after it; anything else
/// [`BUDGET`].
#[inline]
fn limit(first: &[u8]) -> u32 {
    match first {
        [0x16, 0x03, v, hi, lo, ..] if *v <= 4 => {
            (5 + u32::from(u16::from_be_bytes([*hi, *lo])) + 7).min(BUDGET)
        }
        _ => BUDGET,
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            slots: vec![(0, 0); SLOTS],
            live: vec![0; SLOTS / 64],
        }
    }
}

/// An address folded to 64 bits for [`Gate::hash`].
#[inline]
fn fold(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(v) => u64::from(u32::from(v)),
        IpAddr::V6(v) => {
            let x = u128::from(v);
            (x as u64) ^ ((x >> 64) as u64).rotate_left(29)
        }
    }
}

impl Gate {
    /// A multiply-xorshift mix of the direction's addresses and ports (not keyed: a crafted
    /// capture that makes directions share slots only stops their looks, never more).
    #[inline]
    fn hash(&self, p: &Packet, sport: u16, dport: u16) -> u64 {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let ports = (u64::from(sport) << 16) | u64::from(dport);
        let mut h = fold(p.src).wrapping_mul(K) ^ fold(p.dst).rotate_left(32);
        h = (h ^ ports).wrapping_mul(K);
        h ^ (h >> 29)
    }

    /// How many bytes of `payload` (the packet's captured TCP payload) to copy: 0 for a
    /// segment outside its stream's first [`BUDGET`] bytes or of a stream whose start was
    /// not seen. Remembers the start of a stream at its SYN.
    #[inline]
    pub fn wanted(&mut self, p: &Packet, payload: &[u8]) -> usize {
        let Transport::Tcp(seg) = p.transport else {
            return 0;
        };
        if !seg.flags.syn() && payload.is_empty() {
            return 0;
        }
        self.slow(p, seg, payload)
    }

    #[inline(never)]
    fn slow(&mut self, p: &Packet, seg: crate::decode::TcpSegment, payload: &[u8]) -> usize {
        let h = self.hash(p, seg.sport, seg.dport);
        let i = (h as usize) & (SLOTS - 1);
        let tag = (((h >> 32) as u32) | 1) << LIMIT_BITS;
        let (Some(word), Some(slot)) = (self.live.get_mut(i / 64), self.slots.get_mut(i)) else {
            return 0;
        };
        let bit = 1u64 << (i % 64);
        if seg.flags.syn() {
            *slot = (tag | BUDGET, seg.seq.wrapping_add(1));
            *word |= bit;
            return 0;
        }
        if *word & bit == 0 || slot.0 & !LIMIT_MASK != tag {
            return 0;
        }
        let off = seg.seq.wrapping_sub(slot.1);
        if off == 0 {
            slot.0 = tag | limit(payload);
        }
        let end = slot.0 & LIMIT_MASK;
        if off >= end {
            // Past the end (not a stale segment from before the start, whose offset wraps):
            // the direction wants no more.
            if off < 1 << 24 {
                *word &= !bit;
            }
            return 0;
        }
        let n = payload.len().min((end - off) as usize);
        if off as usize + n >= end as usize {
            *word &= !bit;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    fn seg(flags: u8, seq: u32, len: usize) -> Packet {
        let a = "192.0.2.1".parse().unwrap();
        let b = "198.51.100.2".parse().unwrap();
        Packet::tcp(a, 50000, b, 443, flags, seq, 0, len as u32)
    }

    #[test]
    fn copies_the_first_budget_bytes_of_a_stream_seen_from_its_syn() {
        let mut g = Gate::default();
        assert_eq!(g.wanted(&seg(TcpFlags::SYN, 99, 0), &[]), 0);
        let smtp = [b'E'; 1448];
        assert_eq!(g.wanted(&seg(TcpFlags::ACK, 100, 1448), &smtp), 1448);
        assert_eq!(g.wanted(&seg(TcpFlags::ACK, 1548, 1448), &smtp), 600);
        assert_eq!(g.wanted(&seg(TcpFlags::ACK, 2148, 1448), &smtp), 0);
        // Another stream's segment (its SYN not seen): nothing.
        let other = Packet::tcp(
            "192.0.2.9".parse().unwrap(),
            1,
            "198.51.100.2".parse().unwrap(),
            443,
            TcpFlags::ACK,
            100,
            0,
            10,
        );
        assert_eq!(g.wanted(&other, &[0; 10]), 0);
    }

    #[test]
    fn a_tls_stream_is_copied_to_the_end_of_its_first_record_and_an_alert() {
        let mut g = Gate::default();
        g.wanted(&seg(TcpFlags::SYN, 0, 0), &[]);
        // A ClientHello record of 512 bytes body, in a segment of 1448 with more records.
        let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00];
        hello.resize(1448, 0x17);
        assert_eq!(g.wanted(&seg(TcpFlags::ACK, 1, 1448), &hello), 5 + 512 + 7);
        assert_eq!(g.wanted(&seg(TcpFlags::ACK, 1449, 1448), &hello), 0);
        // A record longer than the budget: the budget.
        let mut g = Gate::default();
        g.wanted(&seg(TcpFlags::SYN, 0, 0), &[]);
        let mut big = vec![0x16, 0x03, 0x03, 0x40, 0x00];
        big.resize(1448, 0);
        assert_eq!(g.wanted(&seg(TcpFlags::ACK, 1, 1448), &big), 1448);
        assert_eq!(
            g.wanted(&seg(TcpFlags::ACK, 1449, 1448), &big),
            (BUDGET - 1448) as usize
        );
    }
}
