//! Puts packets back in time order before the flow table. A capture taken on several
//! interfaces at once is not in time order: dumpcap (and Wireshark) write each interface's
//! packets in bursts, up to hundreds of milliseconds apart, and several files given together
//! may overlap. Each interface's own packets are in order, so the packets are merged per
//! interface (a k-way merge): the earliest waiting packet goes on once every other interface
//! has either a later packet waiting or has already delivered one at least as late, or once
//! it is older than the newest packet by the window (an interface that fell silent does not
//! hold the others back longer than that).
//!
//! A capture of one interface passes straight through (nothing is held, nothing copied).
//! Memory: at most `max_held` packets wait (about 120 bytes each; 262,144 by default, ~32
//! MiB); past that the earliest goes on at once, counted. Packets that step back in time
//! are counted, with the largest step; one that arrives after a later packet already went
//! on (it stepped back by more than the window) goes on at once, out of order, counted.

use crate::decode::Packet;
use crate::time::{Duration, Timestamp};
use std::collections::VecDeque;

/// The default window: steps back of dumpcap's bursts are up to a few hundred ms.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
/// The default bound on packets held (~32 MiB).
pub const DEFAULT_MAX_HELD: usize = 1 << 18;

/// What reordering counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// The window packets were put back in order within.
    pub window: Duration,
    /// Packets whose time was before an earlier-read packet's (they stepped back).
    pub stepped_back: u64,
    /// The largest step back.
    pub max_step_back: Duration,
    /// Packets that stepped back by more than the window: analysed out of order.
    pub late: u64,
    /// Packets sent on early because `max_held` packets were waiting.
    pub forced: u64,
}

#[derive(Default)]
struct Stream {
    queue: VecDeque<(Timestamp, Packet)>,
    /// The latest time this interface delivered: its later packets are at least this late.
    frontier: Option<Timestamp>,
}

/// The reorder buffer.
pub struct Reorder {
    window: Duration,
    max_held: usize,
    streams: Vec<Stream>,
    held: usize,
    /// The latest time read.
    newest: Option<Timestamp>,
    /// The time of the last packet sent on.
    last_out: Timestamp,
    pub stats: ReorderStats,
}

impl Reorder {
    pub fn new(window: Duration, max_held: usize) -> Reorder {
        Reorder {
            window,
            max_held: max_held.max(1),
            streams: Vec::new(),
            held: 0,
            newest: None,
            last_out: Timestamp(i64::MIN),
            stats: ReorderStats {
                window,
                ..ReorderStats::default()
            },
        }
    }

    /// Packets waiting.
    pub fn held(&self) -> usize {
        self.held
    }

    /// One packet read; `out` gets every packet that may go on now, in time order.
    #[inline]
    pub fn push(&mut self, ts: Timestamp, pkt: &Packet, out: &mut impl FnMut(Timestamp, &Packet)) {
        match self.newest {
            Some(n) if ts < n => {
                self.stats.stepped_back += 1;
                let step = n.since(ts);
                if step > self.stats.max_step_back {
                    self.stats.max_step_back = step;
                }
            }
            _ => self.newest = Some(ts),
        }
        let s = usize::from(pkt.iface);
        let n = s.max(usize::from(pkt.interfaces).saturating_sub(1)) + 1;
        if n > self.streams.len() {
            self.streams.resize_with(n, Stream::default);
        }
        if ts < self.last_out {
            // Too late to put in its place: a later packet already went on.
            self.stats.late += 1;
            out(ts, pkt);
            return;
        }
        // The common case: one interface, nothing waiting.
        if self.streams.len() == 1 && self.held == 0 {
            self.streams[0].frontier = Some(ts);
            self.last_out = ts;
            out(ts, pkt);
            return;
        }
        let stream = &mut self.streams[s];
        match stream.frontier {
            Some(f) if ts < f => {
                // Out of order within its own interface (rare): into its place.
                let at = stream.queue.partition_point(|(t, _)| *t <= ts);
                stream.queue.insert(at, (ts, *pkt));
            }
            _ => {
                stream.frontier = Some(ts);
                stream.queue.push_back((ts, *pkt));
            }
        }
        self.held += 1;
        self.drain(out, false);
    }

    /// Sends on every waiting packet (the end of the input).
    pub fn flush(&mut self, out: &mut impl FnMut(Timestamp, &Packet)) {
        self.drain(out, true);
    }

    fn drain(&mut self, out: &mut impl FnMut(Timestamp, &Packet), all: bool) {
        while self.held > 0 {
            // The earliest waiting packet.
            let mut best: Option<(usize, Timestamp)> = None;
            for (i, st) in self.streams.iter().enumerate() {
                if let Some((t, _)) = st.queue.front() {
                    if best.is_none_or(|(_, b)| *t < b) {
                        best = Some((i, *t));
                    }
                }
            }
            let Some((i, t)) = best else { break };
            let newest = self.newest.unwrap_or(t);
            let forced = self.held > self.max_held;
            let safe = all
                || forced
                || newest.since(t) >= self.window
                || self
                    .streams
                    .iter()
                    .all(|st| !st.queue.is_empty() || st.frontier.is_some_and(|f| f >= t));
            if !safe {
                break;
            }
            if forced {
                self.stats.forced += 1;
            }
            let Some((t, p)) = self.streams[i].queue.pop_front() else {
                break;
            };
            self.held -= 1;
            self.last_out = self.last_out.max(t);
            out(t, &p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn p(iface: u16, id: u16) -> Packet {
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        Packet {
            iface,
            interfaces: 2,
            ip_id: id,
            ..Packet::tcp(a, 1, a, 2, 0x10, 0, 0, 0)
        }
    }

    fn run(r: &mut Reorder, input: &[(i64, u16)]) -> Vec<i64> {
        let mut out = vec![];
        for (i, (t, iface)) in input.iter().enumerate() {
            r.push(Timestamp(*t), &p(*iface, i as u16), &mut |t, _| {
                out.push(t.0)
            });
        }
        r.flush(&mut |t, _| out.push(t.0));
        out
    }

    const MS: i64 = 1_000_000;

    #[test]
    fn two_interfaces_written_in_bursts_come_out_in_time_order() {
        let mut r = Reorder::new(DEFAULT_WINDOW, DEFAULT_MAX_HELD);
        // Interface 0's burst (0..=40 ms), then interface 1's burst (5..=45 ms), then more.
        let mut input: Vec<(i64, u16)> = (0..5).map(|i| (i * 10 * MS, 0)).collect();
        input.extend((0..5).map(|i| ((i * 10 + 5) * MS, 1)));
        input.extend((5..8).map(|i| (i * 10 * MS, 0)));
        input.extend((5..8).map(|i| ((i * 10 + 5) * MS, 1)));
        let out = run(&mut r, &input);
        let mut sorted = out.clone();
        sorted.sort();
        assert_eq!(out, sorted);
        assert_eq!(out.len(), input.len());
        assert_eq!(r.stats.stepped_back, 4 + 2);
        assert_eq!(r.stats.max_step_back, Duration(35 * MS));
        assert_eq!(r.stats.late, 0);
    }

    #[test]
    fn one_interface_passes_straight_through() {
        let mut r = Reorder::new(DEFAULT_WINDOW, DEFAULT_MAX_HELD);
        let mut out = vec![];
        for t in [1, 2, 3] {
            let one = Packet {
                interfaces: 1,
                ..p(0, 0)
            };
            r.push(Timestamp(t), &one, &mut |t, _| out.push(t.0));
            assert_eq!(r.held(), 0);
        }
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn a_step_back_beyond_the_window_is_late_and_counted() {
        let mut r = Reorder::new(Duration(100 * MS), DEFAULT_MAX_HELD);
        let out = run(
            &mut r,
            &[(0, 0), (500 * MS, 1), (1000 * MS, 1), (10 * MS, 0)],
        );
        assert_eq!(out.len(), 4);
        assert_eq!(r.stats.late, 1, "{out:?}");
        assert_eq!(r.stats.max_step_back, Duration(990 * MS));
    }

    #[test]
    fn a_silent_interface_holds_the_others_back_no_longer_than_the_window() {
        let mut r = Reorder::new(Duration(100 * MS), DEFAULT_MAX_HELD);
        let mut out = vec![];
        r.push(Timestamp(0), &p(0, 0), &mut |t, _| out.push(t.0));
        for i in 1..=30 {
            r.push(Timestamp(i * 10 * MS), &p(1, 0), &mut |t, _| out.push(t.0));
        }
        // Interface 0 said nothing after time 0: what is older than 100 ms went on.
        assert!(r.held() <= 11, "{}", r.held());
        assert!(out.len() >= 20);
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Reorder::new(Duration::from_secs(3600), 8);
        let mut n = 0;
        r.push(Timestamp(0), &p(0, 0), &mut |_, _| n += 1);
        for i in 1..100 {
            r.push(Timestamp(i), &p(1, 0), &mut |_, _| n += 1);
            assert!(r.held() <= 9);
        }
        assert!(r.stats.forced > 0);
        r.flush(&mut |_, _| n += 1);
        assert_eq!(n, 100);
    }
}
