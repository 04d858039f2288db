//! Capture timestamps checked before anything uses them: a writer that got `if_tsresol` or
//! `if_tsoffset` wrong, a packet stamped `0xFFFFFFFFFFFFFFFF`, a clock stepped by years in the
//! middle of a capture. Every later stage takes time from the packets, so one such stamp would
//! otherwise decide what every connection after it looks like.
//!
//! The rules, per file and pcapng section (a new file or section starts afresh: rotated files
//! may lie days apart, and `cat a.pcapng b.pcapng` is one file of two sections):
//! - **Range**: a timestamp must lie in `[0, MAX_NS]` (1970 to early 2116; a legacy pcap's
//!   32-bit seconds end in 2106). One outside it (or that does not fit in 64 bits at all) is
//!   **out of range**: the frame gets the time of the frame before it on its interface (of the
//!   file, for the first frame of an interface), counted. A pcapng `if_tsoffset` that takes an
//!   otherwise good timestamp out of range is ignored for that frame, counted apart.
//! - **Zero**: a timestamp of exactly 0 (the epoch) is counted; when an earlier frame gave a
//!   time, the frame gets that time instead (a zero stamp is a writer's placeholder).
//! - **Jumps**: a frame more than [`JUMP_FORWARD`] (30 days) later or more than [`JUMP_BACK`]
//!   (24 hours) earlier than the frame before it on its interface is a clock jump, counted,
//!   with the largest. The jump is taken out: that frame gets the previous frame's time and the
//!   interface's later frames are shifted by the same amount, so connections open across the
//!   jump are neither split (a forward jump would idle them all out) nor frozen (a backward
//!   one would stop expiry until time caught up). A single stray stamp is two jumps, out and
//!   back; the jump back restores the times as written, so the rest of the capture is
//!   untouched. Forward, the bound is wide because real captures do fall silent for days
//!   (one of Zeek's test captures, for four); backward, time never goes back a day. The cost: a real silence longer than
//!   30 days inside one file is shortened to nothing (its connections then end at the end of
//!   the capture rather than by their idle timeout). An interface's first frame is not
//!   compared with the other interfaces' (their clocks may differ; the reorder buffer deals
//!   with it).
//! - **Backward**: a frame earlier than the frame before it on its interface by less than a
//!   jump is counted (an anomaly, no warning: NIC queues do it); its time is kept (the reorder buffer puts it back in its place).
//!
//! Nothing is allocated per frame: one small state per interface, made when the interface is
//! described.

use crate::time::{Duration, Timestamp};

/// The latest timestamp accepted: 2^62 ns after the epoch (2116-02-20).
pub const MAX_NS: i64 = 1 << 62;

/// A step forward in time between two frames of one interface larger than this is a clock
/// jump.
pub const JUMP_FORWARD: Duration = Duration::from_secs(30 * 24 * 3600);

/// A step back in time between two frames of one interface larger than this is a clock jump.
pub const JUMP_BACK: Duration = Duration::from_secs(24 * 3600);

/// What the timestamps of a capture's frames looked like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockStats {
    /// Frames whose timestamp was outside `[0, MAX_NS]`; they took the previous frame's time.
    pub out_of_range: u64,
    /// Frames whose interface's `if_tsoffset` took their time out of range: read without it.
    pub offset_ignored: u64,
    /// Frames stamped exactly 0.
    pub zero: u64,
    /// Frames earlier than the one before them on their interface (by less than a jump).
    pub backward: u64,
    /// Clock jumps forward, taken out.
    pub jumps_forward: u64,
    /// Clock jumps backward, taken out.
    pub jumps_back: u64,
    /// The largest jump either way.
    pub largest_jump: Duration,
}

impl ClockStats {
    /// Whether anything was found.
    pub fn any(&self) -> bool {
        *self != ClockStats::default()
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Lane {
    /// The time given to the interface's previous frame.
    last: Option<i64>,
    /// Added to the interface's timestamps: the jumps taken out so far.
    shift: i128,
    /// `shift` before the last jump: a jump that brings the clock back to where it was before
    /// the previous one restores it exactly (a stray stamp leaves no trace on the rest).
    before: i128,
}

/// The checks of one file's timestamps.
#[derive(Debug, Default)]
pub struct ClockGuard {
    lanes: Vec<Lane>,
    /// The time given to the file's previous frame.
    last: Option<i64>,
    pub stats: ClockStats,
}

impl ClockGuard {
    /// A new file or pcapng section: what came before says nothing of its times (the counts
    /// are kept).
    pub fn new_file(&mut self) {
        self.last = None;
        self.lanes.clear();
    }

    /// The time given to the file's last frame.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// Makes room for interface `iface` (called when it is described: not per frame).
    pub fn reserve(&mut self, iface: u16) {
        let n = usize::from(iface) + 1;
        if self.lanes.len() < n {
            self.lanes.resize(n, Lane::default());
        }
    }

    /// The time to give a frame on `iface` stamped `raw` nanoseconds (as written, unbounded)
    /// or, when the interface's `if_tsoffset` takes it out of range, `without_offset`.
    #[inline]
    pub fn admit(&mut self, iface: u16, raw: i128, without_offset: Option<i128>) -> Timestamp {
        // Nearly every frame: in range, not zero, on a described interface whose clock has not
        // jumped, and no earlier than its last frame by less than a jump. Checked with 64-bit
        // arithmetic, without the 128-bit bookkeeping below (the reading thread's hot path).
        if let Some(lane) = self.lanes.get_mut(usize::from(iface)) {
            if let (Some(r), 0, Ok(t)) = (lane.last, lane.shift, i64::try_from(raw)) {
                // Both in [0, MAX_NS]: the difference cannot overflow.
                if t > 0 && t <= MAX_NS && (0..=JUMP_FORWARD.0).contains(&(t - r)) {
                    lane.last = Some(t);
                    self.last = Some(t);
                    return Timestamp(t);
                }
            }
        }
        self.admit_slow(iface, raw, without_offset)
    }

    /// [`ClockGuard::admit`] for the frames its fast path does not take.
    #[inline(never)]
    fn admit_slow(&mut self, iface: u16, raw: i128, without_offset: Option<i128>) -> Timestamp {
        if usize::from(iface) >= self.lanes.len() {
            // Every interface is reserved when described; a stray id shares the last lane.
            if self.lanes.is_empty() {
                self.lanes.push(Lane::default());
            }
        }
        let li = usize::from(iface).min(self.lanes.len() - 1);
        let in_range = |t: i128| (0..=i128::from(MAX_NS)).contains(&t);
        let mut raw = raw;
        if !in_range(raw) {
            if let Some(w) = without_offset.filter(|w| in_range(*w)) {
                self.stats.offset_ignored += 1;
                raw = w;
            }
        }
        let fallback = self.lanes[li].last.or(self.last);
        let t = if !in_range(raw) {
            self.stats.out_of_range += 1;
            fallback.unwrap_or(0)
        } else if raw == 0 {
            self.stats.zero += 1;
            fallback.unwrap_or(0)
        } else {
            let lane = &mut self.lanes[li];
            let mut adj = raw + lane.shift;
            if let Some(r) = lane.last {
                let r = i128::from(r);
                let step = adj - r;
                let (forward, back) = (i128::from(JUMP_FORWARD.0), i128::from(JUMP_BACK.0));
                if step > forward || step < -back {
                    if step > 0 {
                        self.stats.jumps_forward += 1;
                    } else {
                        self.stats.jumps_back += 1;
                    }
                    let size = i64::try_from(step.unsigned_abs()).unwrap_or(i64::MAX);
                    if size > self.stats.largest_jump.0 {
                        self.stats.largest_jump = Duration(size);
                    }
                    let undone = raw + lane.before;
                    if (-back..=forward).contains(&(undone - r)) {
                        lane.shift = lane.before;
                        adj = undone;
                    } else {
                        lane.before = lane.shift;
                        lane.shift -= step;
                        adj = r;
                    }
                } else if step < 0 {
                    self.stats.backward += 1;
                }
            }
            // The shift keeps times near the reference, which is in range; clamp all the same.
            i64::try_from(adj.clamp(0, i128::from(MAX_NS))).unwrap_or(MAX_NS)
        };
        self.lanes[li].last = Some(t);
        self.last = Some(t);
        Timestamp(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;
    const T0: i128 = 1_700_000_000 * S;

    #[test]
    fn a_stray_stamp_is_two_jumps_and_leaves_the_rest_alone() {
        let mut g = ClockGuard::default();
        g.reserve(0);
        assert_eq!(g.admit(0, T0, None).0 as i128, T0);
        // +10 years, then back to normal.
        assert_eq!(g.admit(0, T0 + 315_360_000 * S, None).0 as i128, T0);
        assert_eq!(g.admit(0, T0 + 2 * S, None).0 as i128, T0 + 2 * S);
        assert_eq!(g.admit(0, T0 + 3 * S, None).0 as i128, T0 + 3 * S);
        assert_eq!(g.stats.jumps_forward, 1);
        assert_eq!(g.stats.jumps_back, 1);
    }

    #[test]
    fn a_lasting_jump_is_taken_out() {
        let mut g = ClockGuard::default();
        g.reserve(0);
        g.admit(0, T0, None);
        let y10 = 315_360_000 * S;
        assert_eq!(g.admit(0, T0 + y10 + S, None).0 as i128, T0);
        assert_eq!(g.admit(0, T0 + y10 + 3 * S, None).0 as i128, T0 + 2 * S);
        assert_eq!(g.stats.jumps_forward, 1);
        assert_eq!(g.stats.jumps_back, 0);
    }

    #[test]
    fn out_of_range_zero_and_backward_are_counted() {
        let mut g = ClockGuard::default();
        g.reserve(0);
        g.admit(0, T0, None);
        assert_eq!(g.admit(0, u64::MAX as i128 * 1000, None).0 as i128, T0);
        assert_eq!(g.admit(0, 0, None).0 as i128, T0);
        assert_eq!(g.admit(0, T0 - S, None).0 as i128, T0 - S);
        assert_eq!(g.admit(0, -5, Some(T0)).0 as i128, T0);
        assert_eq!(g.stats.out_of_range, 1);
        assert_eq!(g.stats.zero, 1);
        assert_eq!(g.stats.backward, 1);
        assert_eq!(g.stats.offset_ignored, 1);
    }
}
