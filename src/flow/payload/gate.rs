//! The reading thread's side of the payload look: which TCP segments' payload is worth
//! copying to the tracking thread (whose flow table decides what to read of it). A segment
//! is copied when it lies within the first [`BUDGET`] bytes of its direction's stream, as
//! known from the SYN (or SYN-ACK) of that direction, remembered in a direct-mapped table of
//! [`SLOTS`] entries (8 bytes each, 64 KiB, allocated once: small enough to stay in the
//! cache while the capture's bytes stream past; the 1 MiB table it replaced missed it on
//! most segments with payload and cost the reading thread about 4 % of a run). A payload-less segment costs a
//! length check; a SYN a hash and a store; a segment with payload a hash and a load. Two
//! directions that share a slot overwrite each other: the later one's look goes on, the
//! earlier one's stops (its segments are no longer copied), which only a capture with many
//! connections opening at once makes likely.

use super::BUDGET;
use crate::decode::{Packet, Transport};
use std::net::IpAddr;

/// Entries of the table (a power of two).
pub const SLOTS: usize = 1 << 13;

pub struct Gate {
    /// Per slot: the direction's tag (the upper half of its hash, never 0; 0: empty) and the
    /// stream's first sequence number.
    slots: Vec<(u32, u32)>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            slots: vec![(0, 0); SLOTS],
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
        self.slow(p, seg, payload.len())
    }

    #[inline(never)]
    fn slow(&mut self, p: &Packet, seg: crate::decode::TcpSegment, len: usize) -> usize {
        let h = self.hash(p, seg.sport, seg.dport);
        let i = (h as usize) & (SLOTS - 1);
        let h = ((h >> 32) as u32) | 1;
        let Some(slot) = self.slots.get_mut(i) else {
            return 0;
        };
        if seg.flags.syn() {
            *slot = (h, seg.seq.wrapping_add(1));
            return 0;
        }
        if slot.0 != h {
            return 0;
        }
        let off = seg.seq.wrapping_sub(slot.1);
        if off >= BUDGET {
            return 0;
        }
        len.min((BUDGET - off) as usize)
    }
}
