//! `idle_timeout_kill`: a device in between that forgets quiet connections. Every established
//! TCP connection carries its longest quiet gap and what came after it
//! ([`crate::flow::IdleGap`]); per service (server address and port) the gaps that survived
//! (answered) give a lower bound of the device's idle timeout, the gaps that were killed (a
//! RST whose TTL is not its claimed sender's, or retransmissions that never got a reply) an
//! upper bound. Facts only; the sentence is the report's (`report::words`).

use super::findings::{example, By, Finding, Kind};
use super::rows::{Example, Finalized};
use super::GroupKey;
use crate::classify::catalogue::Catalogue;
use crate::classify::rules::{classify, Class, Side};
use crate::classify::site::Site;
use crate::flow::{AfterGap, ConnRecord};
use crate::time::Timestamp;
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

/// Per conversation: its connections' gaps.
#[derive(Clone, Debug, Default)]
struct Acc {
    est: Estimate,
    /// The first killed connection.
    example: Option<(Example, Timestamp)>,
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
    /// survivor is no idle timeout.
    pub fn apply(&self, site: &Site, cat: &Catalogue, fin: &mut Finalized) {
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
            let e = out.entry((k.port, k.resp, src, dst)).or_default();
            let (x, y) = (&mut e.0, &a.est);
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

    fn est(survived_s: u32, killed_s: u32) -> Estimate {
        Estimate {
            survived_max_ms: survived_s * 1000,
            killed_min_ms: killed_s * 1000,
            survived: 1,
            killed_reset: 1,
            killed_unanswered: 0,
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
