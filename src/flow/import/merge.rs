//! One connection seen by two sensors counts once, its evidence combined.
//!
//! Every input is a sensor (all the packet captures together are one: they are one capture
//! in order). A record is a copy when a record of another sensor had the same protocol and
//! endpoints (either way round) and a time span that overlaps its own, each widened by
//! [`TOLERANCE`] for the sensors' clocks. The copy is folded into the record kept (counted
//! in [`SensorMerge::duplicates`]), which then holds what both sensors saw
//! ([`combine`]): a sensor that saw one direction only (a tap on one leg, a capture split
//! by direction) and one that saw the other give one two-sided connection.
//!
//! Combining needs the record until no copy can come any more, so records wait in a window:
//! the last [`KEPT`] records, in arrival order (a map by 5-tuple plus a queue; a record
//! held is ~500 bytes, ~70 MiB in all at most; nothing is held when there is one input). A
//! record leaves the window — to the `--flows` lines, the counters and the aggregator, in
//! the order the records came — when [`KEPT`] newer ones arrived, or at the end
//! ([`SensorMerge::drain`]). A copy arriving after more than [`KEPT`] other records is not
//! recognised and counts twice; [`SensorMerge::forgotten`] counts the records that left the
//! window before the end, so a report can say when that could have happened.

use crate::decode::Proto;
use crate::flow::history::History;
use crate::flow::{ConnRecord, ConnState, Endpoint, Side};
use crate::time::{Duration, Timestamp};
use std::collections::{HashMap, VecDeque};

/// Clock difference allowed between two sensors.
pub const TOLERANCE: Duration = Duration::from_secs(2);
/// Records held for combining.
pub const KEPT: usize = 1 << 17;

type Key = (u8, Endpoint, Endpoint);

/// A record waiting in the window: its span widened by [`TOLERANCE`] and the sensors that
/// gave it (bit `sensor % 64`).
#[derive(Debug)]
struct Held {
    key: Key,
    start: Timestamp,
    end: Timestamp,
    sensors: u64,
    rec: ConnRecord,
}

/// The cross-sensor merge.
#[derive(Debug, Default)]
pub struct SensorMerge {
    /// Per 5-tuple, the sequence numbers of its records in the window.
    index: HashMap<Key, Vec<u64>, foldhash::fast::RandomState>,
    window: VecDeque<Held>,
    /// Sequence number of `window[0]`.
    base: u64,
    /// Records folded into another sensor's record of the same connection.
    pub duplicates: u64,
    /// Records that left the window before the end of the input, to stay within [`KEPT`].
    pub forgotten: u64,
}

fn key(r: &ConnRecord) -> Key {
    let (a, b) = if r.orig <= r.resp {
        (r.orig, r.resp)
    } else {
        (r.resp, r.orig)
    };
    (r.proto.number(), a, b)
}

fn bit(sensor: u16) -> u64 {
    1u64 << (sensor % 64)
}

impl SensorMerge {
    /// Takes `r`, from `sensor`: folded into the record of another sensor it is a copy of,
    /// or held as a record of its own. Returns the record that left the window to make room,
    /// if one did.
    pub fn add(&mut self, r: &ConnRecord, sensor: u16) -> Option<ConnRecord> {
        let k = key(r);
        let start = Timestamp(r.ts.0.saturating_sub(TOLERANCE.0));
        let end = r.ts.plus(r.duration).plus(TOLERANCE);
        if let Some(seqs) = self.index.get(&k) {
            let base = self.base;
            let hit = seqs.iter().copied().find(|&s| {
                let h = &self.window[(s - base) as usize];
                h.sensors & bit(sensor) == 0 && h.start <= end && start <= h.end
            });
            if let Some(s) = hit {
                let h = &mut self.window[(s - base) as usize];
                combine(&mut h.rec, r);
                h.start = h.start.min(start);
                h.end = h.end.max(end);
                h.sensors |= bit(sensor);
                self.duplicates += 1;
                return None;
            }
        }
        let seq = self.base + self.window.len() as u64;
        self.index.entry(k).or_default().push(seq);
        self.window.push_back(Held {
            key: k,
            start,
            end,
            sensors: bit(sensor),
            rec: r.clone(),
        });
        if self.window.len() > KEPT {
            self.forgotten += 1;
            return self.pop();
        }
        None
    }

    fn pop(&mut self) -> Option<ConnRecord> {
        let held = self.window.pop_front()?;
        let seq = self.base;
        self.base += 1;
        if let Some(v) = self.index.get_mut(&held.key) {
            v.retain(|&s| s != seq);
            if v.is_empty() {
                self.index.remove(&held.key);
            }
        }
        Some(held.rec)
    }

    /// At the end of the input: the records still held, in the order they came.
    pub fn drain(&mut self) -> impl Iterator<Item = ConnRecord> + '_ {
        self.index.clear();
        self.base += self.window.len() as u64;
        self.window.drain(..).map(|h| h.rec)
    }
}

/// `r` seen from the other end: originator and responder swapped, with everything that is
/// per side (a sensor that saw only the responder's packets may have taken it for the
/// originator).
fn flipped(r: &ConnRecord) -> ConnRecord {
    let mut f = r.clone();
    std::mem::swap(&mut f.orig, &mut f.resp);
    std::mem::swap(&mut f.orig_bytes, &mut f.resp_bytes);
    std::mem::swap(&mut f.orig_stats, &mut f.resp_stats);
    let mut h = History::default();
    for b in r.history.as_str().bytes() {
        match b {
            b'^' => {}
            b if b.is_ascii_uppercase() => h.push(b.to_ascii_lowercase()),
            b => h.push(b.to_ascii_uppercase()),
        }
    }
    f.history = h;
    f.rst_by = r.rst_by.map(|(side, ttl)| {
        (
            match side {
                Side::Orig => Side::Resp,
                Side::Resp => Side::Orig,
            },
            ttl,
        )
    });
    f
}

/// Where a history letter goes when two sensors' histories are interleaved: the handshake
/// first, then acknowledgements, data, the rest, FINs, RSTs (the order in which a
/// connection's first packets of each kind usually come).
fn rank(c: u8) -> u8 {
    match c.to_ascii_uppercase() {
        b'S' => 0,
        b'H' => 1,
        b'A' => 2,
        b'D' => 3,
        b'F' => 5,
        b'R' => 6,
        _ => 4,
    }
}

/// A letter's place between the other sensor's letters: its [`rank`], then on a tie the
/// originator's first (the responder's first for RSTs when `resp_rst_first`).
fn order(c: u8, resp_rst_first: bool) -> (u8, bool) {
    let r = rank(c);
    let resp = c.is_ascii_lowercase();
    (
        r,
        if r == rank(b'R') && resp_rst_first {
            !resp
        } else {
            resp
        },
    )
}

/// Two sensors' histories as one. A history holding every letter of the other's is the
/// whole story (both sensors saw both directions): it is kept. Otherwise the letters are
/// merged, each history's own order kept, a letter already written not written again, and
/// between the two the letter of lower [`rank`] first (the originator's on a tie): one
/// sensor's `SADF` (the originator's packets) and the other's `^hadf` (the responder's) give
/// `ShAaDdFf`. What comes first
/// across the two sensors is not known from the records; the rank puts a FIN before a RST
/// when one sensor saw each (a close, not a reset mid-stream).
///
/// When each sensor saw one side's RST, which came first is not known either: the
/// originator's, unless `resp_rst_first` (the responder's is the stronger evidence, see
/// [`combine`]).
fn merge_history(a: &History, b: &History, resp_rst_first: bool) -> History {
    let strip = |h: &History| -> Vec<u8> { h.as_str().bytes().filter(|&c| c != b'^').collect() };
    let (x, y) = (strip(a), strip(b));
    if y.iter().all(|c| x.contains(c)) {
        return *a;
    }
    if x.iter().all(|c| y.contains(c)) {
        return *b;
    }
    let mut out: Vec<u8> = Vec::with_capacity(x.len() + y.len());
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        let take_x = match (x.get(i), y.get(j)) {
            (Some(&cx), Some(&cy)) => order(cx, resp_rst_first) <= order(cy, resp_rst_first),
            (Some(_), None) => true,
            _ => false,
        };
        let c = if take_x {
            i += 1;
            x[i - 1]
        } else {
            j += 1;
            y[j - 1]
        };
        // A letter both sensors recorded is one event (unless the sensor that wrote it
        // first wrote it again: a repeated letter of its own history).
        let from_own = if take_x { &x[..i - 1] } else { &y[..j - 1] };
        if out.contains(&c) && !from_own.contains(&c) {
            continue;
        }
        out.push(c);
    }
    let mut h = History::default();
    // A flipped start ('^') only where both sensors saw the responder's packet first (and
    // no originator SYN says who began).
    if !out.contains(&b'S') && a.contains(b'^') && b.contains(b'^') {
        h.push(b'^');
    }
    for c in out {
        h.push(c);
    }
    h.overflowed = a.overflowed || b.overflowed;
    h
}

/// Zeek's `conn_state` of a TCP connection from its history alone (both sensors' flags
/// together; the same reading as Suricata's per-direction flags in `eve.rs`).
fn state_from_history(h: &str, resp_pkts: u64) -> ConnState {
    let has = |c: char| h.contains(c);
    let (syn, synack) = (has('S'), has('h'));
    if !syn {
        ConnState::OTH
    } else if !synack {
        match (has('R'), has('r'), resp_pkts > 0) {
            (_, true, _) => ConnState::REJ,
            (true, false, _) => ConnState::RSTOS0,
            (false, false, false) => ConnState::S0,
            (false, false, true) => ConnState::OTH,
        }
    } else {
        // The first RST decides who aborted.
        match h.find(['R', 'r']).map(|i| &h[i..=i]) {
            Some("R") => ConnState::RSTO,
            Some(_) => ConnState::RSTR,
            None => match (has('F'), has('f')) {
                (true, true) => ConnState::SF,
                (true, false) => ConnState::S2,
                (false, true) => ConnState::S3,
                (false, false) => ConnState::S1,
            },
        }
    }
}

/// Folds `other`, another sensor's record of the same connection, into `kept`:
///
/// - who is the originator: as `kept` has it, unless only `other` saw the originator's SYN
///   (a sensor that saw only the responder may have taken it for the originator);
/// - the time: the earliest start, to the latest end;
/// - per direction, the counters (packets, bytes, first TTL, interfaces) of the sensor that
///   saw more of its packets (two sensors on one path saw the same packets, so they are not
///   added; a sensor that saw none of a direction adds nothing);
/// - the histories merged (`merge_history`) and, for TCP, `conn_state` recomputed from
///   them where the merged history shows the handshake (`S` and `h`) or the refusal (`S`
///   and `r`) that neither sensor saw whole; the first RST's side from the merged history,
///   its TTL from the sensor that saw it; for UDP and ICMP, `SF` once there are packets
///   both ways;
/// - missed bytes: the fewer (what one sensor missed the other may have seen); SYN
///   retries: the more; the handshake's time, ICMP errors, NAT address: the kept record's,
///   or else the other's. The handshake's time comes only from a sensor that saw both the
///   SYN and the SYN-ACK: two sensors' clocks differ by more than a handshake takes.
pub fn combine(kept: &mut ConnRecord, other: &ConnRecord) {
    let o = if other.orig == kept.orig && other.resp == kept.resp {
        other.clone()
    } else if other.history.contains(b'S') && !kept.history.contains(b'S') {
        // The other sensor saw the originator's SYN: its orientation is the one to trust.
        let uid = (kept.uid, kept.input_uid.take());
        *kept = flipped(kept);
        (kept.uid, kept.input_uid) = uid;
        other.clone()
    } else {
        flipped(other)
    };
    let end = kept.ts.plus(kept.duration).max(o.ts.plus(o.duration));
    kept.ts = kept.ts.min(o.ts);
    kept.duration = Duration(end.0 - kept.ts.0);
    if o.orig_stats.pkts > kept.orig_stats.pkts {
        kept.orig_stats = o.orig_stats;
    }
    if o.resp_stats.pkts > kept.resp_stats.pkts {
        kept.resp_stats = o.resp_stats;
    }
    kept.orig_bytes = kept.orig_bytes.max(o.orig_bytes);
    kept.resp_bytes = kept.resp_bytes.max(o.resp_bytes);
    kept.missed_bytes = kept.missed_bytes.min(o.missed_bytes);
    kept.syn_retries = kept.syn_retries.max(o.syn_retries);
    kept.rtt_syn_synack = kept.rtt_syn_synack.or(o.rtt_syn_synack);
    kept.rtt_synack_ack = kept.rtt_synack_ack.or(o.rtt_synack_ack);
    kept.via = kept.via.or(o.via);
    if kept.icmp.iter().all(Option::is_none) {
        kept.icmp = o.icmp;
    }
    kept.icmp_count = kept.icmp_count.max(o.icmp_count);
    if kept.input_uid.is_none() {
        kept.input_uid = o.input_uid.clone();
    }
    // Each sensor saw one side's RST: a RST whose TTL is not its side's usual one (forged
    // on the way, a firewall cutting the connection) is put first, as the evidence to read.
    let rst_ttl = |side: Side| {
        [kept.rst_by, o.rst_by]
            .into_iter()
            .flatten()
            .find(|(s, _)| *s == side)
            .and_then(|(_, t)| t)
    };
    let forged = |side: Side, usual: Option<u8>| matches!((rst_ttl(side), usual), (Some(t), Some(u)) if t != u);
    let resp_rst_first = forged(Side::Resp, kept.resp_stats.first_ttl)
        && !forged(Side::Orig, kept.orig_stats.first_ttl);
    let history = merge_history(&kept.history, &o.history, resp_rst_first);
    if kept.proto == Proto::Tcp && history.as_str() != kept.history.as_str() {
        let h = history.as_str();
        let first_rst = h
            .bytes()
            .find(|&c| c == b'R' || c == b'r')
            .map(|c| match c {
                b'R' => Side::Orig,
                _ => Side::Resp,
            });
        // The RST's TTL and interfaces from the sensor whose record has the RST of that side.
        let has_rst = |r: &ConnRecord| r.rst_by.is_some_and(|(s, _)| Some(s) == first_rst);
        let (ttl, ifaces) = if has_rst(kept) {
            (kept.rst_by.and_then(|(_, t)| t), kept.rst_ifaces)
        } else if has_rst(&o) {
            (o.rst_by.and_then(|(_, t)| t), o.rst_ifaces)
        } else {
            (None, 0)
        };
        kept.rst_by = first_rst.map(|side| (side, ttl));
        kept.rst_ifaces = ifaces;
        if h.contains('S') && (h.contains('h') || h.contains('r')) {
            kept.conn_state = state_from_history(h, kept.resp_stats.pkts);
        }
    } else if kept.proto != Proto::Tcp && kept.orig_stats.pkts > 0 && kept.resp_stats.pkts > 0 {
        // UDP and ICMP: packets both ways is Zeek's SF.
        kept.conn_state = ConnState::SF;
    }
    kept.history = history;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> History {
        let mut h = History::default();
        h.set(s);
        h
    }

    #[test]
    fn one_directions_histories_make_the_connection() {
        assert_eq!(
            merge_history(&h("SADF"), &h("^hadf"), false).as_str(),
            "ShAaDdFf"
        );
        assert_eq!(
            merge_history(&h("^hadf"), &h("SADF"), false).as_str(),
            "ShAaDdFf"
        );
        assert_eq!(merge_history(&h("^d"), &h("^D"), false).as_str(), "^Dd");
        // Each saw one side's RST.
        assert_eq!(
            merge_history(&h("SADR"), &h("^hadr"), false).as_str(),
            "ShAaDdRr"
        );
        assert_eq!(
            merge_history(&h("SADR"), &h("^hadr"), true).as_str(),
            "ShAaDdrR"
        );
        assert_eq!(merge_history(&h("S"), &h("^r"), false).as_str(), "Sr");
        assert_eq!(merge_history(&h("D"), &h("^d"), false).as_str(), "Dd");
        // Both saw both directions: the fuller history as it is.
        assert_eq!(
            merge_history(&h("ShADadfF"), &h("ShADad"), false).as_str(),
            "ShADadfF"
        );
        assert_eq!(
            merge_history(&h("ShAD"), &h("ShADadfF"), false).as_str(),
            "ShADadfF"
        );
    }

    fn rec(orig: &str, resp: &str, history: &str, pkts: (u64, u64)) -> ConnRecord {
        let ep = |s: &str| {
            let (ip, port) = s.rsplit_once(':').unwrap_or((s, "0"));
            Endpoint::new(
                ip.parse().unwrap_or([0, 0, 0, 0].into()),
                port.parse().unwrap_or(0),
            )
        };
        let mut r = super::super::blank(ep(orig), ep(resp), Proto::Tcp);
        r.history = h(history);
        r.orig_stats.pkts = pkts.0;
        r.resp_stats.pkts = pkts.1;
        r.rst_by = super::super::rst_from_history(history);
        r
    }

    #[test]
    fn two_one_sided_records_combine_into_the_connection() {
        let (c, s) = ("203.0.113.10:40000", "198.51.100.10:443");
        // The responder's sensor first, its record oriented right (exflow's '^').
        let mut kept = rec(c, s, "^hadf", (0, 7));
        kept.conn_state = ConnState::SHR;
        combine(&mut kept, &rec(c, s, "SADF", (8, 0)));
        assert_eq!(kept.history.as_str(), "ShAaDdFf");
        assert_eq!(kept.conn_state, ConnState::SF);
        assert_eq!((kept.orig_stats.pkts, kept.resp_stats.pkts), (8, 7));
        // A log that took the responder for the originator: the SYN's sensor says who is who.
        let mut kept = rec(s, c, "DF", (7, 0));
        kept.uid = 42;
        combine(&mut kept, &rec(c, s, "SADF", (8, 0)));
        assert_eq!((kept.orig, kept.uid), (rec(c, s, "", (0, 0)).orig, 42));
        assert_eq!(kept.history.as_str(), "SADdFf");
        assert_eq!((kept.orig_stats.pkts, kept.resp_stats.pkts), (8, 7));
        // A refusal: the SYN on one sensor, the RST on the other.
        let mut kept = rec(c, s, "S", (1, 0));
        kept.conn_state = ConnState::S0;
        combine(&mut kept, &rec(c, s, "^r", (0, 1)));
        assert_eq!(
            (kept.history.as_str(), kept.conn_state),
            ("Sr", ConnState::REJ)
        );
        assert_eq!(kept.rst_by.map(|(s, _)| s), Some(Side::Resp));
    }

    #[test]
    fn states_from_merged_histories() {
        assert_eq!(state_from_history("ShAaDdFf", 5), ConnState::SF);
        assert_eq!(state_from_history("Sr", 1), ConnState::REJ);
        assert_eq!(state_from_history("S", 0), ConnState::S0);
        assert_eq!(state_from_history("ShADadr", 5), ConnState::RSTR);
        assert_eq!(state_from_history("ShADadR", 5), ConnState::RSTO);
        assert_eq!(state_from_history("ShAD", 1), ConnState::S1);
    }

    #[test]
    fn a_held_record_is_small_enough_for_the_window() {
        // KEPT of them (with their index entry and a kept uid) must stay within the ~70 MiB
        // the module's documentation gives.
        let per = std::mem::size_of::<Held>() + 2 * std::mem::size_of::<u64>() + 64;
        assert!(per * KEPT <= 72 << 20, "{per} bytes a record");
    }
}
