//! ICMP errors in logs: Zeek's conn.log and Suricata's eve.json write an ICMP unreachable as a
//! connection of its own (`icmp`, the error's sender as originator, the type and code as
//! ports), never saying which attempt it answered. exflow's own lines say so (`icmp[]`, from
//! the packet the error quoted) and are left as they are.
//!
//! For the logs, a simple version: an ICMP unreachable (type 3, ICMPv6 type 1) is attached to
//! an unanswered attempt (TCP S0, UDP with no answer) whose originator is the error's
//! destination, preferring one whose responder sent the error, within [`WINDOW`] of the
//! attempt (a blanked time matches any). Attached errors are marked (`by_address`: the report
//! says the match was by time and addresses) and no longer counted as ICMP connections of
//! their own; the rest pass through unchanged.
//!
//! Bounded: at most [`HELD`] attempts and [`HELD`] errors wait for a partner, each for
//! [`WINDOW`] past the newest time seen in the file (logs write a connection when it ends, so
//! an attempt and its error arrive in either order, up to a few timeouts apart).

use crate::decode::Proto;
use crate::flow::{ConnRecord, ConnState, IcmpError};
use crate::time::{Duration, Timestamp};
use std::collections::VecDeque;

/// How far apart an attempt and its error may be (and how long either waits).
pub const WINDOW: Duration = Duration::from_secs(120);
/// Records held at most, of each kind.
pub const HELD: usize = 4096;

/// Pairs a log's ICMP errors with the attempts they answered (see the module doc).
#[derive(Default)]
pub struct Attach {
    attempts: VecDeque<ConnRecord>,
    errors: VecDeque<ConnRecord>,
    newest: Timestamp,
    /// ICMP error records attached to an attempt.
    pub attached: u64,
}

fn is_error(r: &ConnRecord) -> bool {
    match r.proto {
        Proto::Ip(1) => r.orig.port() == 3,
        Proto::Ip(58) => r.orig.port() == 1,
        _ => false,
    }
}

fn unanswered(r: &ConnRecord) -> bool {
    r.resp_stats.pkts == 0
        && r.orig_stats.pkts > 0
        && match r.proto {
            Proto::Tcp => r.conn_state == ConnState::S0,
            Proto::Udp => true,
            Proto::Ip(_) => false,
        }
}

/// How well `err` fits `attempt`: `None` not at all, `Some(1)` by the client's address and
/// time, `Some(2)` the server itself sent it too.
fn fit(attempt: &ConnRecord, err: &ConnRecord) -> Option<u8> {
    if attempt.orig.ip() != err.resp.ip() || attempt.orig.v4() != err.orig.v4() {
        return None;
    }
    let known = attempt.ts != Timestamp::ZERO && err.ts != Timestamp::ZERO;
    let end = attempt.ts.plus(attempt.duration).plus(WINDOW);
    if known && (err.ts < Timestamp(attempt.ts.0.saturating_sub(1_000_000_000)) || err.ts > end) {
        return None;
    }
    Some(if attempt.resp.ip() == err.orig.ip() {
        2
    } else {
        1
    })
}

fn attach(attempt: &mut ConnRecord, err: &ConnRecord) {
    attempt.icmp_count = attempt.icmp_count.saturating_add(1);
    if attempt.icmp[0].is_none() {
        attempt.icmp[0] = Some(IcmpError {
            ts: err.ts,
            from: err.orig.ip(),
            v6: err.proto == Proto::Ip(58),
            icmp_type: err.orig.port() as u8,
            code: err.resp.port() as u8,
            ttl: 0,
            by_address: true,
        });
    }
}

impl Attach {
    /// One record of the file: handed on now, or held for a partner.
    pub fn push(&mut self, r: ConnRecord, out: &mut dyn FnMut(ConnRecord)) {
        self.newest = self.newest.max(r.ts.plus(r.duration));
        if is_error(&r) {
            let best = self
                .attempts
                .iter_mut()
                .filter_map(|a| fit(a, &r).map(|f| (f, a)))
                .max_by_key(|(f, _)| *f);
            match best {
                Some((_, a)) => {
                    attach(a, &r);
                    self.attached += 1;
                }
                None => self.errors.push_back(r),
            }
        } else if unanswered(&r) {
            let mut a = r;
            let mut i = 0;
            while i < self.errors.len() {
                if fit(&a, &self.errors[i]).is_some() {
                    if let Some(e) = self.errors.remove(i) {
                        attach(&mut a, &e);
                        self.attached += 1;
                    }
                } else {
                    i += 1;
                }
            }
            self.attempts.push_back(a);
        } else {
            out(r);
        }
        self.expire(out);
    }

    /// Hands on what waited longer than [`WINDOW`] past the newest time, or beyond [`HELD`].
    fn expire(&mut self, out: &mut dyn FnMut(ConnRecord)) {
        let limit = Timestamp(self.newest.0.saturating_sub(2 * WINDOW.0));
        for q in [&mut self.attempts, &mut self.errors] {
            while let Some(front) = q.front() {
                let old = front.ts != Timestamp::ZERO && front.ts.plus(front.duration) < limit;
                if !(old || q.len() > HELD) {
                    break;
                }
                if let Some(r) = q.pop_front() {
                    out(r);
                }
            }
        }
    }

    /// The end of the file: everything held is handed on.
    pub fn finish(&mut self, out: &mut dyn FnMut(ConnRecord)) {
        for r in self.attempts.drain(..).chain(self.errors.drain(..)) {
            out(r);
        }
    }
}
