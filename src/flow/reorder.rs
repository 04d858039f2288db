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
//! Memory: at most `max_held` packets wait (about 130 bytes each; 262,144 by default, ~34
//! MiB); past that the earliest goes on at once, counted. Packets that step back in time
//! are counted, with the largest step; one that arrives after a later packet already went
//! on (it stepped back by more than the window) goes on at once, out of order, counted.
//!
//! A held packet keeps the payload bytes the payload look wants (`flow::payload`'s gate: a
//! connection's first bytes each way, at most `payload::BUDGET` per packet, none for nearly
//! every packet) in a byte ring allocated once with the buffer: [`STORE_PER_PACKET`] bytes per
//! packet of `max_held` (4 MiB by default; a few hundred bytes of excerpts wait at a time on a
//! dumpcap file). Excerpts are written in arrival order and freed as their packets go on, in
//! any order; the ring's space behind the oldest excerpt still held comes back once it goes. A
//! packet whose excerpt finds the ring full goes on without it, counted (`payload_dropped`).

use crate::decode::Packet;
use crate::time::{Duration, Timestamp};
use std::collections::VecDeque;

/// The default window: steps back of dumpcap's bursts are up to a few hundred ms.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
/// The default bound on packets held (~34 MiB with their queue entries).
pub const DEFAULT_MAX_HELD: usize = 1 << 18;
/// Bytes of the payload store per packet of the bound (4 MiB by default): far more than the
/// excerpts held at a time need (only a connection's first bytes each way have any).
pub const STORE_PER_PACKET: usize = 16;

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
    /// Held packets whose payload excerpt found the store full: they went on without it
    /// (the payload look missed those bytes).
    pub payload_dropped: u64,
}

/// Where a held packet's payload excerpt is in the store (`len` 0: none).
#[derive(Clone, Copy, Debug, Default)]
struct Excerpt {
    at: u32,
    len: u32,
}

/// A byte ring for the held packets' payload excerpts, allocated once. Each excerpt is
/// written after a 4-byte header (its length, and whether it was freed); a header marking the
/// end of the written part sends the reader back to the start. Excerpts are freed in any order;
/// the oldest live one (`tail`) moves past every freed one behind it.
struct Store {
    buf: Vec<u8>,
    /// Where the next excerpt is written.
    head: usize,
    /// The oldest excerpt not yet reclaimed.
    tail: usize,
    /// Bytes in use between `tail` and `head` (headers, freed excerpts and the end skipped).
    used: usize,
    /// The part in use wraps round the end (`head` is before `tail`).
    wrapped: bool,
}

const HEADER: usize = 4;
const LIVE: u8 = 0;
const FREED: u8 = 1;
const WRAP: u8 = 2;

impl Store {
    fn new(bytes: usize) -> Store {
        Store {
            buf: vec![0; bytes.min(u32::MAX as usize)],
            head: 0,
            tail: 0,
            used: 0,
            wrapped: false,
        }
    }

    /// Copies `data` in; `None` when it does not fit.
    fn put(&mut self, data: &[u8]) -> Option<Excerpt> {
        if data.len() > usize::from(u16::MAX) {
            return None;
        }
        let need = HEADER + data.len();
        let cap = self.buf.len();
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
            self.wrapped = false;
        }
        if !self.wrapped && cap - self.head < need {
            // Not at the end: from the start, if the oldest excerpt leaves room there.
            if need > self.tail {
                return None;
            }
            if cap - self.head >= HEADER {
                self.buf[self.head + 2] = WRAP;
            }
            self.used += cap - self.head;
            self.head = 0;
            self.wrapped = true;
        }
        let room = if self.wrapped {
            self.tail - self.head
        } else {
            cap - self.head
        };
        if need > room {
            return None;
        }
        let at = self.head;
        let len = data.len() as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_le_bytes());
        self.buf[at + 2] = LIVE;
        self.buf[at + HEADER..at + need].copy_from_slice(data);
        self.head += need;
        self.used += need;
        Some(Excerpt {
            at: (at + HEADER) as u32,
            len: data.len() as u32,
        })
    }

    fn get(&self, e: Excerpt) -> &[u8] {
        let at = e.at as usize;
        self.buf.get(at..at + e.len as usize).unwrap_or_default()
    }

    /// Gives an excerpt's bytes back (after its packet went on).
    fn free(&mut self, e: Excerpt) {
        if e.len == 0 {
            return;
        }
        self.buf[e.at as usize - HEADER + 2] = FREED;
        let cap = self.buf.len();
        while self.used > 0 {
            if cap - self.tail < HEADER || self.buf[self.tail + 2] == WRAP {
                self.used -= cap - self.tail;
                self.tail = 0;
                self.wrapped = false;
                continue;
            }
            if self.buf[self.tail + 2] != FREED {
                break;
            }
            let len = usize::from(u16::from_le_bytes([
                self.buf[self.tail],
                self.buf[self.tail + 1],
            ]));
            self.used -= HEADER + len;
            self.tail += HEADER + len;
        }
    }
}

#[derive(Default)]
struct Stream {
    queue: VecDeque<(Timestamp, Packet, Excerpt)>,
    /// The latest time this interface delivered: its later packets are at least this late.
    frontier: Option<Timestamp>,
}

/// The reorder buffer.
pub struct Reorder {
    window: Duration,
    max_held: usize,
    streams: Vec<Stream>,
    store: Store,
    held: usize,
    /// The latest time read.
    newest: Option<Timestamp>,
    /// The time of the last packet sent on.
    last_out: Timestamp,
    pub stats: ReorderStats,
}

impl Reorder {
    pub fn new(window: Duration, max_held: usize) -> Reorder {
        Reorder::with_store(
            window,
            max_held,
            max_held.max(1).saturating_mul(STORE_PER_PACKET),
        )
    }

    /// With a payload store of `store_bytes` bytes (allocated here, once).
    pub fn with_store(window: Duration, max_held: usize, store_bytes: usize) -> Reorder {
        Reorder {
            window,
            max_held: max_held.max(1),
            streams: Vec::new(),
            store: Store::new(store_bytes),
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

    /// One packet read with its payload excerpt (empty: none); `out` gets every packet that
    /// may go on now, in time order, each with its excerpt.
    #[inline]
    pub fn push(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        payload: &[u8],
        out: &mut impl FnMut(Timestamp, &Packet, &[u8]),
    ) {
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
            out(ts, pkt, payload);
            return;
        }
        // The common case: one interface, nothing waiting.
        if self.streams.len() == 1 && self.held == 0 {
            self.streams[0].frontier = Some(ts);
            self.last_out = ts;
            out(ts, pkt, payload);
            return;
        }
        let excerpt = if payload.is_empty() {
            Excerpt::default()
        } else if let Some(e) = self.store.put(payload) {
            e
        } else {
            self.stats.payload_dropped += 1;
            Excerpt::default()
        };
        let stream = &mut self.streams[s];
        match stream.frontier {
            Some(f) if ts < f => {
                // Out of order within its own interface (rare): into its place.
                let at = stream.queue.partition_point(|(t, _, _)| *t <= ts);
                stream.queue.insert(at, (ts, *pkt, excerpt));
            }
            _ => {
                stream.frontier = Some(ts);
                stream.queue.push_back((ts, *pkt, excerpt));
            }
        }
        self.held += 1;
        self.drain(out, false);
    }

    /// Sends on every waiting packet (the end of the input).
    pub fn flush(&mut self, out: &mut impl FnMut(Timestamp, &Packet, &[u8])) {
        self.drain(out, true);
    }

    fn drain(&mut self, out: &mut impl FnMut(Timestamp, &Packet, &[u8]), all: bool) {
        while self.held > 0 {
            // The earliest waiting packet.
            let mut best: Option<(usize, Timestamp)> = None;
            for (i, st) in self.streams.iter().enumerate() {
                if let Some((t, _, _)) = st.queue.front() {
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
            let Some((t, p, e)) = self.streams[i].queue.pop_front() else {
                break;
            };
            self.held -= 1;
            self.last_out = self.last_out.max(t);
            out(t, &p, self.store.get(e));
            self.store.free(e);
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
            r.push(Timestamp(*t), &p(*iface, i as u16), &[], &mut |t, _, _| {
                out.push(t.0)
            });
        }
        r.flush(&mut |t, _, _| out.push(t.0));
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
            r.push(Timestamp(t), &one, &[], &mut |t, _, _| out.push(t.0));
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
        r.push(Timestamp(0), &p(0, 0), &[], &mut |t, _, _| out.push(t.0));
        for i in 1..=30 {
            r.push(Timestamp(i * 10 * MS), &p(1, 0), &[], &mut |t, _, _| {
                out.push(t.0)
            });
        }
        // Interface 0 said nothing after time 0: what is older than 100 ms went on.
        assert!(r.held() <= 11, "{}", r.held());
        assert!(out.len() >= 20);
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Reorder::new(Duration::from_secs(3600), 8);
        let mut n = 0;
        r.push(Timestamp(0), &p(0, 0), &[], &mut |_, _, _| n += 1);
        for i in 1..100 {
            r.push(Timestamp(i), &p(1, 0), &[], &mut |_, _, _| n += 1);
            assert!(r.held() <= 9);
        }
        assert!(r.stats.forced > 0);
        r.flush(&mut |_, _, _| n += 1);
        assert_eq!(n, 100);
    }

    /// Pushes (time, interface, payload) and returns what came out: (time, ip_id, payload).
    fn run_payload(r: &mut Reorder, input: &[(i64, u16, &[u8])]) -> Vec<(i64, u16, Vec<u8>)> {
        let mut out = vec![];
        for (i, (t, iface, data)) in input.iter().enumerate() {
            r.push(Timestamp(*t), &p(*iface, i as u16), data, &mut |t, p, d| {
                out.push((t.0, p.ip_id, d.to_vec()))
            });
        }
        r.flush(&mut |t, p, d| out.push((t.0, p.ip_id, d.to_vec())));
        out
    }

    #[test]
    fn held_packets_keep_their_payload_across_reordering() {
        let mut r = Reorder::new(DEFAULT_WINDOW, DEFAULT_MAX_HELD);
        // Interface 0's burst, then interface 1's (earlier copies and answers): SMTP banner,
        // EHLO, a ClientHello-sized excerpt, empty ACKs between.
        let hello = [0x16u8; 517];
        let input: Vec<(i64, u16, &[u8])> = vec![
            (10 * MS, 0, b"220 mail.example.test ESMTP\r\n"),
            (20 * MS, 0, b""),
            (30 * MS, 0, &hello),
            (5 * MS, 1, b"EHLO mta.example.net\r\n"),
            (15 * MS, 1, b""),
            (25 * MS, 1, b"250-STARTTLS\r\n"),
            (40 * MS, 0, b"QUIT\r\n"),
            (45 * MS, 1, b"221 bye\r\n"),
        ];
        let out = run_payload(&mut r, &input);
        assert_eq!(out.len(), input.len());
        let times: Vec<i64> = out.iter().map(|o| o.0).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "time order");
        for (t, id, data) in &out {
            let (it, _, want) = input[usize::from(*id)];
            assert_eq!(*t, it);
            assert_eq!(data.as_slice(), want, "packet {id} at {t}");
        }
        assert!(r.stats.stepped_back > 0);
        assert_eq!(r.stats.payload_dropped, 0);
        // Everything went on: the store is empty again and its space all free.
        assert_eq!(r.store.used, 0);
    }

    #[test]
    fn the_store_wraps_round_and_frees_out_of_order() {
        let mut s = Store::new(64);
        let a = s.put(&[1; 20]).unwrap();
        let b = s.put(&[2; 20]).unwrap();
        assert!(s.put(&[3; 20]).is_none(), "48 of 64 bytes used, 24 wanted");
        // b goes first: nothing comes back until a goes too.
        s.free(b);
        assert_eq!(s.used, 48);
        assert_eq!(s.get(a), &[1; 20]);
        s.free(a);
        assert_eq!(s.used, 0);
        let c = s.put(&[4; 30]).unwrap();
        let d = s.put(&[5; 20]).unwrap();
        s.free(c);
        // 34 bytes free at the start, 6 at the end: d's successor wraps round.
        let e = s.put(&[6; 25]).unwrap();
        assert_eq!(e.at as usize, HEADER);
        assert_eq!(s.get(d), &[5; 20]);
        assert_eq!(s.get(e), &[6; 25]);
        s.free(d);
        s.free(e);
        assert_eq!(s.used, 0);
    }

    #[test]
    fn a_full_store_sends_the_packet_on_without_payload_counted() {
        // Room for two 40-byte excerpts (and their headers), not three.
        let mut r = Reorder::with_store(Duration::from_secs(3600), DEFAULT_MAX_HELD, 90);
        let big = [7u8; 40];
        let input: Vec<(i64, u16, &[u8])> = vec![
            (0, 0, &big),
            (MS, 0, &big),
            (2 * MS, 0, &big),
            (3 * MS, 0, b"small"),
        ];
        // Interface 1 says nothing until the end: interface 0's packets all wait.
        let mut all = input.clone();
        all.push((4 * MS, 1, b""));
        let out = run_payload(&mut r, &all);
        assert_eq!(out.len(), all.len(), "every packet went on");
        let sizes: Vec<usize> = out.iter().map(|o| o.2.len()).collect();
        assert_eq!(sizes, [40, 40, 0, 0, 0]);
        assert_eq!(r.stats.payload_dropped, 2);
        assert_eq!(r.store.used, 0);
        // Once they went on, the store takes excerpts again.
        let out = run_payload(&mut r, &[(10 * MS, 1, &big), (11 * MS, 0, &big)]);
        assert_eq!(out.iter().map(|o| o.2.len()).collect::<Vec<_>>(), [40, 40]);
        assert_eq!(r.stats.payload_dropped, 2);
    }
}
