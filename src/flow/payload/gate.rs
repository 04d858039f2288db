//! The reading thread's side of the payload look: which TCP segments' payload is worth
//! copying to the tracking thread (whose flow table decides what to read of it). A segment
//! is copied when it lies within the first [`BUDGET`] bytes of its direction's stream, as
//! known from the SYN (or SYN-ACK) of that direction, remembered in a direct-mapped table of
//! [`SLOTS`] entries (16 bytes each, 1 MiB, allocated once). A payload-less segment costs a
//! length check; a SYN a hash and a store; a segment with payload a hash and a load. Two
//! directions that share a slot overwrite each other: the later one's look goes on, the
//! earlier one's stops (its segments are no longer copied), which only a capture with many
//! connections opening at once makes likely.

use super::BUDGET;
use crate::decode::{Packet, Transport};
use std::hash::{BuildHasher, Hash, Hasher};

/// Entries of the table (a power of two).
pub const SLOTS: usize = 1 << 16;

pub struct Gate {
    /// Per slot: the direction's hash (0: empty) and the stream's first sequence number.
    slots: Vec<(u64, u32)>,
    hasher: foldhash::fast::FixedState,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            slots: vec![(0, 0); SLOTS],
            hasher: foldhash::fast::FixedState::with_seed(0x6578_666c_6f77),
        }
    }
}

impl Gate {
    fn hash(&self, p: &Packet, sport: u16, dport: u16) -> u64 {
        let mut h = self.hasher.build_hasher();
        p.src.hash(&mut h);
        p.dst.hash(&mut h);
        sport.hash(&mut h);
        dport.hash(&mut h);
        h.finish() | 1
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
