//! `idle_timeout_kill`: a device in between that forgets quiet connections. Every established
//! TCP connection carries its longest quiet gap and what came after it
//! ([`crate::flow::IdleGap`]); per service (server address and port) the gaps that survived
//! (answered) give a lower bound of the device's idle timeout, the gaps that were killed (a
//! RST whose TTL is not its claimed sender's, or retransmissions that never got a reply) an
//! upper bound. Facts only; the sentence is the report's (`report::words`).
//!
//! A connection killed in silence (its packets after the gap never answered) is also checked
//! for what its client did next: a new connection from the same client to the same server
//! address and port, begun after the gap and within [`RECONNECT_WINDOW`] of the killed
//! connection's last packet, is what ActiveSync and Outlook do when a request times out, and
//! the strongest sign the connection was killed, not merely slow (`reconnected`). Records
//! reach the aggregator as connections end (or time out of the flow table, an hour or more
//! after their last packet), so the client's next connection often arrives first: each
//! conversation keeps its connections' start times in a few slots ([`Starts`]) and the
//! killed connections' times ([`KILLS_KEPT`] at most), and `apply` matches them.

use super::findings::{example, By, Finding, Kind};
use super::rows::{Example, Finalized};
use super::GroupKey;
use crate::classify::catalogue::Catalogue;
use crate::classify::rules::{classify, Class, Side};
use crate::classify::site::Site;
use crate::decode::Proto;
use crate::flow::{AfterGap, ConnRecord};
use crate::time::{Duration, Timestamp};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Idle timeouts firewalls ship with or admins commonly set, in seconds (PRODUCT.md): Check
/// Point's and Palo Alto's 3600, Cisco ASA's 3600 (conn) and 1800, Fortinet's 3600 and
/// 900, many NAT routers' 300, 350 (Azure's load balancer 240 by default).
pub const COMMON_TIMEOUTS_S: [u32; 7] = [240, 300, 350, 600, 900, 1800, 3600];

/// What the gaps to one service bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// The longest gap that survived (0 when none did), in milliseconds.
    pub survived_max_ms: u32,
    /// The shortest gap that was killed, in milliseconds.
    pub killed_min_ms: u32,
    /// Connections whose longest gap survived, and those whose longest gap was killed (by a
    /// reset from in between, by silence).
    pub survived: u64,
    pub killed_reset: u64,
    pub killed_unanswered: u64,
    /// Of the connections killed in silence, those whose client opened a new connection to
    /// the same server address and port after the gap, within [`RECONNECT_WINDOW`] of the
    /// killed connection's last packet.
    pub reconnected: u64,
}

impl Estimate {
    /// The one common default that lies in the bracket (longer than every gap that survived,
    /// no longer than the shortest that was killed); none when no default or several do.
    pub fn snapped_s(&self) -> Option<u32> {
        let mut inside = COMMON_TIMEOUTS_S.iter().copied().filter(|&d| {
            let ms = u64::from(d) * 1000;
            ms > u64::from(self.survived_max_ms) && ms <= u64::from(self.killed_min_ms)
        });
        let first = inside.next()?;
        inside.next().is_none().then_some(first)
    }

    /// The estimate: the snapped default, else the bracket's upper end (whole seconds,
    /// rounded up: the timeout is at most this).
    pub fn timeout_s(&self) -> u64 {
        match self.snapped_s() {
            Some(d) => u64::from(d),
            None => u64::from(self.killed_min_ms).div_ceil(1000),
        }
    }

    /// The lower bound in seconds: the longest gap that survived.
    pub fn idle_s_min(&self) -> f64 {
        f64::from(self.survived_max_ms) / 1000.0
    }

    /// The upper bound in seconds: the shortest gap that was killed.
    pub fn idle_s_killed(&self) -> f64 {
        f64::from(self.killed_min_ms) / 1000.0
    }

    pub fn killed(&self) -> u64 {
        self.killed_reset + self.killed_unanswered
    }
}

/// How long after a connection killed in silence ended (its last retransmission) a new
/// connection from its client to the same service still counts as the client's reconnection:
/// 10 minutes. ActiveSync and Outlook reconnect within seconds of giving up; a client that
/// comes back later may have slept or roamed, and says less.
pub const RECONNECT_WINDOW: Duration = Duration::from_secs(600);

/// Connections killed in silence kept per conversation to match with their client's next
/// connection; past these a kill is counted but never read as reconnected.
pub const KILLS_KEPT: usize = 64;

/// Slots of connection starts (each [`RECONNECT_WINDOW`] long) kept per conversation: 16
/// cover 160 minutes of a conversation's connections; past them the oldest slot goes (a kill
/// whose record arrives later than that is not read as reconnected).
pub const START_SLOTS: usize = 16;

/// When a TCP conversation's connections began: per slot of [`RECONNECT_WINDOW`] (aligned to
/// the epoch), the earliest and the latest start, at most [`START_SLOTS`] slots. A kill asks
/// whether a connection began in an interval at least [`RECONNECT_WINDOW`] long
/// ([`Starts::any_in`]); a slot's starts span less than that, so its earliest and latest
/// answer exactly: 16 bytes a slot instead of every start (most conversations
/// keep one slot: with the vector's 24, 40 bytes).
#[derive(Clone, Debug, Default)]
pub struct Starts {
    /// (earliest, latest) start in nanoseconds, by slot, oldest first.
    slots: Vec<(i64, i64)>,
}

impl Starts {
    fn slot(ns: i64) -> i64 {
        ns.div_euclid(RECONNECT_WINDOW.0)
    }

    /// A connection that began at `ts`.
    pub fn add(&mut self, ts: Timestamp) {
        let t = ts.0;
        let id = Self::slot(t);
        match self.slots.binary_search_by_key(&id, |s| Self::slot(s.0)) {
            Ok(i) => {
                let s = &mut self.slots[i];
                s.0 = s.0.min(t);
                s.1 = s.1.max(t);
            }
            Err(0) if self.slots.len() >= START_SLOTS => {}
            Err(i) => {
                if self.slots.capacity() == 0 {
                    // One slot is what most conversations ever need.
                    self.slots.reserve_exact(1);
                }
                if self.slots.len() >= START_SLOTS {
                    self.slots.remove(0);
                    self.slots.insert(i - 1, (t, t));
                } else {
                    self.slots.insert(i, (t, t));
                }
            }
        }
    }

    /// Whether a connection began after `after` and no later than `until`; exact (within the
    /// slots kept) when `until - after` is at least [`RECONNECT_WINDOW`]: a slot with a start
    /// inside then has its earliest or its latest inside.
    pub fn any_in(&self, after: Timestamp, until: Timestamp) -> bool {
        let inside = |t: i64| t > after.0 && t <= until.0;
        self.slots.iter().any(|&(lo, hi)| inside(lo) || inside(hi))
    }

    /// Slots kept (for the bound's tests).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Keeps the start of a connection of this conversation when it is TCP.
    pub fn add_record(&mut self, r: &ConnRecord) {
        if r.proto == Proto::Tcp {
            self.add(r.ts);
        }
    }
}

/// A connection killed in silence: its client's next connection must begin after `after`
/// and no later than `until`.
#[derive(Clone, Copy, Debug)]
struct Kill {
    after: Timestamp,
    until: Timestamp,
}

impl Kill {
    /// The gap of `max_ms` lies inside the connection: it began no later than `end - gap` and
    /// ended no earlier than `start + gap`. A new connection counts once it began after both
    /// (after the quiet began, certainly; after it ended, when the quiet began with the
    /// connection, as a long poll's does) and within [`RECONNECT_WINDOW`] of the last packet.
    fn of(r: &ConnRecord) -> Kill {
        let gap = Duration::from_millis(i64::from(r.idle.max_ms));
        let end = r.ts.plus(r.duration);
        Kill {
            after: Timestamp(end.0.saturating_sub(gap.0)).max(r.ts.plus(gap)),
            until: end.plus(RECONNECT_WINDOW),
        }
    }
}

/// Per conversation: its connections' gaps.
#[derive(Clone, Debug, Default)]
struct Acc {
    est: Estimate,
    /// The first killed connection.
    example: Option<(Example, Timestamp)>,
    /// The connections killed in silence, to match with their client's next connection (at
    /// most [`KILLS_KEPT`]).
    kills: Vec<Kill>,
}

/// The gaps of every conversation that had a meaningful one.
#[derive(Clone, Debug, Default)]
pub struct Gaps {
    accs: super::FastMap<GroupKey, Acc>,
}

impl Gaps {
    /// A finished connection (those without a gap of at least 5 s cost nothing).
    pub fn add(&mut self, key: &GroupKey, r: &ConnRecord) {
        let g = r.idle;
        if !g.meaningful() {
            return;
        }
        let killed = match g.after {
            AfterGap::Answered => false,
            AfterGap::ResetInBetween | AfterGap::Unanswered => true,
            // The endpoint's own reset (the server's idle timeout, not the firewall's), or
            // nothing known yet.
            _ => return,
        };
        let a = self.accs.entry(*key).or_default();
        if killed {
            if a.est.killed() == 0 || g.max_ms < a.est.killed_min_ms {
                a.est.killed_min_ms = g.max_ms;
            }
            if g.after == AfterGap::ResetInBetween {
                a.est.killed_reset += 1;
            } else {
                a.est.killed_unanswered += 1;
                if a.kills.len() < KILLS_KEPT {
                    a.kills.push(Kill::of(r));
                }
            }
            if a.example.as_ref().is_none_or(|(_, ts)| r.ts < *ts) {
                a.example = Some((example(r), r.ts));
            }
        } else {
            a.est.survived += 1;
            a.est.survived_max_ms = a.est.survived_max_ms.max(g.max_ms);
        }
    }

    /// Adds the `idle_timeout_kill` findings, one per service (server address, port) and
    /// its sides, to `fin.findings` (kept worst first). A service needs a killed gap, and
    /// every killed gap must be longer than every gap that survived: a kill shorter than a
    /// survivor is no idle timeout. `starts` gives a conversation's connection starts (none
    /// for a conversation folded from many sources: no one client's).
    pub fn apply<'a>(
        &self,
        site: &Site,
        cat: &Catalogue,
        starts: impl Fn(&GroupKey) -> Option<&'a Starts>,
        fin: &mut Finalized,
    ) {
        type At = (u16, IpAddr, Side, Side);
        let mut out: BTreeMap<At, (Estimate, Option<(Example, Timestamp)>)> = BTreeMap::new();
        let mut keys: Vec<&GroupKey> = self.accs.keys().collect();
        keys.sort();
        for k in keys {
            let a = &self.accs[k];
            let (src, dst) = match classify(k, site, cat) {
                Class::Expected(_, s, d) => (s, d),
                Class::Unexpected { src, dst, .. } => (src, dst),
                Class::Unrestricted(_, s, d) => (s, d),
                Class::Unrelated => continue,
            };
            let reconnected = starts(k).map_or(0, |s| {
                a.kills
                    .iter()
                    .filter(|kill| s.any_in(kill.after, kill.until))
                    .count() as u64
            });
            let e = out.entry((k.port, k.resp, src, dst)).or_default();
            let (x, y) = (&mut e.0, &a.est);
            x.reconnected += reconnected;
            if y.killed() > 0 && (x.killed() == 0 || y.killed_min_ms < x.killed_min_ms) {
                x.killed_min_ms = y.killed_min_ms;
            }
            x.survived_max_ms = x.survived_max_ms.max(y.survived_max_ms);
            x.survived += y.survived;
            x.killed_reset += y.killed_reset;
            x.killed_unanswered += y.killed_unanswered;
            if let Some((ex, ts)) = a.example {
                if e.1.is_none_or(|(_, t)| ts < t) {
                    e.1 = Some((ex, ts));
                }
            }
        }
        for ((port, _, src, dst), (est, first)) in out {
            let Some((ex, ts)) = first else {
                continue;
            };
            if est.killed() == 0 || est.killed_min_ms <= est.survived_max_ms {
                continue;
            }
            fin.findings.push(Finding {
                kind: Kind::IdleTimeoutKill,
                port,
                src,
                dst,
                count: est.killed(),
                by: By::Firewall,
                example: ex,
                example_ts: ts,
                rejection: None,
                banner: None,
                stripped: None,
                sni: None,
                alert: None,
                passing_sni: Vec::new(),
                idle: Some(est),
            });
        }
        fin.findings
            .sort_by_key(|f| (f.kind, std::cmp::Reverse(f.count)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregator;
    use crate::classify::catalogue::{HostRole, Profile};
    use crate::decode::{Packet, TcpFlags};
    use crate::flow::{FlowConfig, FlowTable, Sink};
    use std::net::Ipv4Addr;

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;
    const PA: u8 = TcpFlags::ACK | TcpFlags::PSH;
    const FA: u8 = TcpFlags::FIN | TcpFlags::ACK;

    fn mbx() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10))
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, last))
    }

    /// A connection from `c:port` to the mailbox's 443 that opens at `t0` s and sends a
    /// request, then is quiet for `gap` s; then either the answer and a close, or (killed)
    /// the client's next request and its retransmissions, never answered.
    fn poll(c: IpAddr, port: u16, t0: i64, gap: i64, killed: bool) -> Vec<(i64, Packet)> {
        let s = mbx();
        let mut p = vec![
            (t0, Packet::tcp(c, port, s, 443, S, 100, 0, 0)),
            (t0, Packet::tcp(s, 443, c, port, SA, 500, 101, 0)),
            (t0, Packet::tcp(c, port, s, 443, PA, 101, 501, 10)),
            (t0, Packet::tcp(s, 443, c, port, A, 501, 111, 0)),
        ];
        let t = t0 + gap;
        if killed {
            let next = Packet::tcp(c, port, s, 443, PA, 111, 501, 10);
            p.extend([(t, next), (t + 1, next), (t + 3, next), (t + 7, next)]);
        } else {
            p.extend([
                (t, Packet::tcp(s, 443, c, port, PA, 501, 111, 20)),
                (t, Packet::tcp(c, port, s, 443, FA, 111, 521, 0)),
                (t, Packet::tcp(s, 443, c, port, FA, 521, 112, 0)),
                (t, Packet::tcp(c, port, s, 443, A, 112, 522, 0)),
            ]);
        }
        p
    }

    /// The records of these packets (in time order), as the flow table finishes them.
    fn records(mut pkts: Vec<(i64, Packet)>) -> Vec<ConnRecord> {
        pkts.sort_by_key(|p| p.0);
        let mut table = FlowTable::new(FlowConfig::default());
        let mut out = vec![];
        let mut sink = |r: &ConnRecord| out.push(r.clone());
        for (t, p) in &pkts {
            table.observe(Timestamp(t * 1_000_000_000), p, &mut sink);
        }
        table.finish(&mut sink);
        out
    }

    /// The idle estimate of the mailbox's 443 when the records reach the aggregator in this
    /// order.
    fn estimate(recs: &[&ConnRecord]) -> Option<Estimate> {
        let mut agg = Aggregator::with_max_groups(1000);
        for r in recs {
            agg.conn(r);
        }
        let mut site = Site::new(Profile::Mailbox);
        site.add_host(HostRole::Mailbox, mbx());
        let fin = agg.finalize(&site, Catalogue::embedded().unwrap());
        let found: Vec<_> = fin.findings.iter().filter_map(|f| f.idle).collect();
        assert!(found.len() <= 1, "{found:?}");
        found.first().copied()
    }

    /// Both arrival orders give the same estimate; returned.
    fn both_orders(recs: &[ConnRecord]) -> Estimate {
        let fwd: Vec<&ConnRecord> = recs.iter().collect();
        let rev: Vec<&ConnRecord> = recs.iter().rev().collect();
        let (a, b) = (estimate(&fwd), estimate(&rev));
        assert_eq!(a, b, "the arrival order changed the estimate");
        a.expect("an idle_timeout_kill finding")
    }

    #[test]
    fn a_new_connection_after_a_silent_kill_is_counted_whichever_record_arrives_first() {
        let c = client(10);
        // Killed at 0..30 s (retransmissions until 37 s); the client's next poll at 38 s.
        let mut pkts = poll(c, 40000, 0, 30, true);
        pkts.extend(poll(c, 40002, 38, 6, false));
        // Another host's packet minutes later moves the table's clock past the closed
        // connection's linger.
        let late = client(99);
        pkts.push((300, Packet::tcp(late, 50000, mbx(), 25, S, 1, 0, 0)));
        let recs: Vec<ConnRecord> = records(pkts)
            .into_iter()
            .filter(|r| r.orig.ip() == c)
            .collect();
        assert_eq!(recs.len(), 2);
        // The new connection closed before the killed one timed out of the table: its record
        // came first, as it does when a killed connection waits for the flow table's timeout.
        assert_eq!(recs[0].orig.port(), 40002, "{recs:?}");
        assert_eq!(recs[1].idle.after, AfterGap::Unanswered);
        let e = both_orders(&recs);
        assert_eq!((e.killed_unanswered, e.reconnected), (1, 1), "{e:?}");
    }

    #[test]
    fn connections_begun_during_the_quiet_too_late_or_by_another_client_are_no_reconnection() {
        let (c, other) = (client(10), client(11));
        // A parallel poll begun during the killed one's quiet (it survives its shorter gap),
        // after the end of the kill less its gap (37 - 30 s): the quiet had begun already.
        let mut pkts = poll(c, 40000, 0, 30, true);
        pkts.extend(poll(c, 40002, 10, 6, false));
        let e = both_orders(&records(pkts));
        assert_eq!((e.killed_unanswered, e.reconnected), (1, 0), "{e:?}");
        // The client's next connection 11 minutes after the kill's last packet (37 s).
        let mut pkts = poll(c, 40000, 0, 30, true);
        pkts.extend(poll(c, 40002, 37 + 660, 1, false));
        let e = both_orders(&records(pkts));
        assert_eq!((e.killed_unanswered, e.reconnected), (1, 0), "{e:?}");
        // Just inside the window: counted.
        let mut pkts = poll(c, 40000, 0, 30, true);
        pkts.extend(poll(c, 40002, 37 + 590, 1, false));
        let e = both_orders(&records(pkts));
        assert_eq!(e.reconnected, 1, "{e:?}");
        // Another client's connection after the kill.
        let mut pkts = poll(c, 40000, 0, 30, true);
        pkts.extend(poll(other, 40002, 38, 1, false));
        let recs = records(pkts);
        let killed: Vec<&ConnRecord> = recs.iter().filter(|r| r.orig.ip() == c).collect();
        let e = estimate(&recs.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!((e.killed_unanswered, e.reconnected), (1, 0), "{e:?}");
        assert_eq!(estimate(&killed).unwrap().reconnected, 0);
    }

    #[test]
    fn two_kills_one_reconnection_counts_each_kill_it_follows() {
        let c = client(10);
        // Two polls killed in silence, begun together as a client's parallel polls; one new
        // connection after both gave up follows both; a third kill whose client never came
        // back (its own window passes with no new connection) is not counted.
        let mut pkts = poll(c, 40000, 0, 30, true);
        pkts.extend(poll(c, 40001, 0, 40, true));
        pkts.extend(poll(c, 40002, 50, 1, false));
        pkts.extend(poll(c, 40003, 2000, 30, true));
        let e = both_orders(&records(pkts));
        assert_eq!((e.killed_unanswered, e.reconnected), (3, 2), "{e:?}");
    }

    #[test]
    fn starts_stay_within_their_slots_and_answer_as_every_start_would() {
        let w = RECONNECT_WINDOW.0;
        let mut st = Starts::default();
        let mut all = vec![];
        // A pseudo-random walk over a day and a half, many starts per slot.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut t: i64 = 1_796_590_000 * 1_000_000_000;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += (x % 30_000_000_000) as i64;
            st.add(Timestamp(t));
            all.push(t);
            assert!(st.len() <= START_SLOTS);
        }
        // Intervals at least a window long, within the slots kept, against every start.
        let kept_from = st.slots[0].0.div_euclid(w) * w;
        for i in 0..2_000i64 {
            let after = kept_from + i * (w / 7) + i * 1_234_567;
            let until = after + w + (i % 5) * 1_000_000_000;
            let want = all.iter().any(|&s| s > after && s <= until);
            assert_eq!(
                st.any_in(Timestamp(after), Timestamp(until)),
                want,
                "({after}, {until}]"
            );
        }
        // Out of order: an older start after the slots filled is dropped; a newer one makes
        // room by dropping the oldest slot.
        let oldest = st.slots[0];
        st.add(Timestamp(kept_from - 5 * w));
        assert_eq!(st.slots[0], oldest);
        st.add(Timestamp(t + 3 * w));
        assert_eq!(st.len(), START_SLOTS);
        assert_ne!(st.slots[0], oldest);
    }

    fn est(survived_s: u32, killed_s: u32) -> Estimate {
        Estimate {
            survived_max_ms: survived_s * 1000,
            killed_min_ms: killed_s * 1000,
            survived: 1,
            killed_reset: 1,
            killed_unanswered: 0,
            reconnected: 0,
        }
    }

    #[test]
    fn one_default_in_the_bracket_is_the_estimate() {
        assert_eq!(est(200, 250).snapped_s(), Some(240));
        assert_eq!(est(200, 310).snapped_s(), None, "240 and 300 both fit");
        assert_eq!(est(250, 310).snapped_s(), Some(300));
        assert_eq!(est(250, 310).timeout_s(), 300);
        assert_eq!(est(1000, 1900).timeout_s(), 1800);
    }

    #[test]
    fn no_default_or_several_leave_the_bracket() {
        assert_eq!(est(12, 35).snapped_s(), None);
        assert_eq!(est(12, 35).timeout_s(), 35);
        assert_eq!(est(100, 700).snapped_s(), None);
        assert_eq!(est(100, 700).timeout_s(), 700);
    }
}
