//! The verdict of a flow from its counts (PRODUCT.md, "Verdicts") and who answered. Pure
//! functions, tested on their own; the report words them.

use super::rows::{DiedAt, PathFacts, Place, Stopped};
use crate::flow::iface_bit;
use serde::Serialize;

/// The verdict of an expected flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Established, no failures.
    Ok,
    /// Nothing established; SYNs unanswered.
    Blocked,
    /// Nothing established; answered by a RST.
    Refused,
    /// Nothing established; answered by an ICMP unreachable.
    Rejected,
    /// Some established, some failed.
    Flaky,
    /// Established, then reset mid-stream by something in between.
    Cut,
    /// No attempt in the capture.
    NotSeen,
    /// Only one direction visible: no verdict can be trusted.
    OneSided,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 8] = [
        Verdict::Ok,
        Verdict::Blocked,
        Verdict::Refused,
        Verdict::Rejected,
        Verdict::Flaky,
        Verdict::Cut,
        Verdict::NotSeen,
        Verdict::OneSided,
    ];

    /// The name in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Blocked => "blocked",
            Verdict::Refused => "refused",
            Verdict::Rejected => "rejected",
            Verdict::Flaky => "flaky",
            Verdict::Cut => "cut",
            Verdict::NotSeen => "not_seen",
            Verdict::OneSided => "one_sided",
        }
    }

    /// Whether this verdict means the flow failed (for `--fail-on failed`).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Verdict::Blocked | Verdict::Refused | Verdict::Rejected | Verdict::Flaky | Verdict::Cut
        )
    }
}

/// Who answered a refusal or reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    /// The RST's TTL is the server's usual.
    Server,
    /// The RST's TTL differs from the server's usual: a device in between.
    Middlebox,
    /// No answered handshake to compare the TTL with.
    Unknown,
}

impl AnsweredBy {
    /// The name in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Server => "server",
            AnsweredBy::Middlebox => "middlebox",
            AnsweredBy::Unknown => "unknown",
        }
    }
}

/// p50/p90/p99/max, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What the connections of one flow added up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub attempts: u64,
    pub established: u64,
    pub dropped: u64,
    pub refused: u64,
    pub rejected: u64,
    pub reset_by_middlebox: u64,
    pub reset_by_endpoint: u64,
    pub reset_unknown: u64,
    pub syn_retries: u64,
    pub one_sided: u64,
    /// RSTs taken for spoofed or ignored: outside their receiver's window, or followed by
    /// data or a FIN from their receiver. Never a reset mid-stream.
    pub ignored_resets: u64,
    /// Established connections with a completed handshake and data both ways.
    pub confirmed: u64,
}

impl Counts {
    /// Adds another flow's counts.
    pub fn merge(&mut self, o: &Counts) {
        self.attempts += o.attempts;
        self.established += o.established;
        self.dropped += o.dropped;
        self.refused += o.refused;
        self.rejected += o.rejected;
        self.reset_by_middlebox += o.reset_by_middlebox;
        self.reset_by_endpoint += o.reset_by_endpoint;
        self.reset_unknown += o.reset_unknown;
        self.syn_retries += o.syn_retries;
        self.one_sided += o.one_sided;
        self.ignored_resets += o.ignored_resets;
        self.confirmed += o.confirmed;
    }

    /// Attempts that failed outright (dropped, refused, rejected).
    pub fn failed(&self) -> u64 {
        self.dropped + self.refused + self.rejected
    }
}

/// The verdict, in this order of evidence:
/// no attempt → not seen; mostly one direction captured → one-sided; nothing established →
/// refused / rejected / blocked by what answered most; some established and some failed →
/// flaky; established but reset by a device in between → cut; else ok.
pub fn decide(c: &Counts) -> Verdict {
    if c.attempts == 0 {
        return Verdict::NotSeen;
    }
    if c.one_sided > 0 && c.one_sided * 2 >= c.attempts {
        return Verdict::OneSided;
    }
    if c.established == 0 {
        if c.refused > 0 && c.refused >= c.rejected && c.refused >= c.dropped {
            return Verdict::Refused;
        }
        if c.rejected > 0 && c.rejected >= c.dropped {
            return Verdict::Rejected;
        }
        return Verdict::Blocked;
    }
    if c.failed() > 0 {
        return Verdict::Flaky;
    }
    if c.reset_by_middlebox > 0 {
        return Verdict::Cut;
    }
    Verdict::Ok
}

/// Who answered a refusal or reset: the server when the RST's TTL matches the server's usual
/// TTL, a middlebox when it differs, unknown without a reference.
pub fn answered_by(
    v: Verdict,
    c: &Counts,
    refusal: Option<(u8, Option<u8>)>,
    died_at: Option<DiedAt>,
) -> Option<AnsweredBy> {
    // Where the capture's interfaces show who sent the RST, they win over the TTLs (which
    // differ from one interface to the next).
    if let Some(d) = died_at.filter(|d| d.how == Stopped::Refused) {
        return Some(match d.place {
            Place::Firewall => AnsweredBy::Middlebox,
            Place::BeyondFirewall => AnsweredBy::Server,
        });
    }
    match v {
        Verdict::Refused | Verdict::Flaky if c.refused > 0 => Some(match refusal {
            Some((rst, Some(usual))) if rst == usual => AnsweredBy::Server,
            Some((_, Some(_))) => AnsweredBy::Middlebox,
            _ => AnsweredBy::Unknown,
        }),
        Verdict::Cut => Some(AnsweredBy::Middlebox),
        _ => None,
    }
}

/// Where a failed flow died, from what the capture's interfaces saw (see [`PathFacts`]):
///
/// - dropped or rejected attempts whose SYNs were seen on two interfaces or more crossed the
///   firewall: beyond it; seen on one interface only while the destination's traffic shows
///   up on another: the firewall stopped them;
/// - a refusing RST seen where the destination's packets enter (its side of the firewall)
///   came from beyond; seen only elsewhere: the firewall answered;
/// - a mid-stream RST that never crossed from its claimed sender's side: the firewall.
///
/// `None` where the interfaces cannot tell (one vantage point, or the destination's side was
/// never seen).
pub fn died_at(
    v: Verdict,
    c: &Counts,
    path: &PathFacts,
    server_ingress: Option<u16>,
    server_seen: u32,
) -> Option<DiedAt> {
    let how = match v {
        Verdict::Blocked => Stopped::Dropped,
        Verdict::Refused => Stopped::Refused,
        Verdict::Rejected => Stopped::Rejected,
        Verdict::Cut => Stopped::Cut,
        Verdict::Flaky if c.dropped > 0 => Stopped::Dropped,
        Verdict::Flaky if c.refused > 0 => Stopped::Refused,
        Verdict::Flaky if c.rejected > 0 => Stopped::Rejected,
        _ => return None,
    };
    let lowest = |set: u32| u16::try_from(set.trailing_zeros()).ok().filter(|&i| i < 32);
    let syn_first = path.syn_first.or_else(|| lowest(path.syn_ifaces));
    // The destination's side: where its packets enter, else any interface it was seen on
    // other than the given one.
    let toward = |not: u32| server_ingress.or_else(|| lowest(server_seen & !not));
    match how {
        Stopped::Cut => {
            let entered = lowest(path.cut_rst)?;
            Some(DiedAt {
                place: Place::Firewall,
                how,
                entered,
                // Where the RST's claimed sender's packets come from: the server's side, or
                // the client's when the firewall reset the server in the client's name.
                toward: path.cut_from.or(server_ingress).unwrap_or(entered),
            })
        }
        Stopped::Refused if path.refused_rst != 0 && server_ingress.is_some() => {
            let ingress = server_ingress?;
            let from_server = path.refused_rst & iface_bit(ingress) != 0;
            Some(DiedAt {
                place: if from_server {
                    Place::BeyondFirewall
                } else {
                    Place::Firewall
                },
                how,
                entered: if from_server {
                    syn_first.unwrap_or(ingress)
                } else {
                    lowest(path.refused_rst)?
                },
                toward: ingress,
            })
        }
        _ => {
            let entered = syn_first?;
            if path.syn_ifaces.count_ones() >= 2 {
                let other = path.syn_ifaces & !iface_bit(entered);
                Some(DiedAt {
                    place: Place::BeyondFirewall,
                    how,
                    entered,
                    toward: server_ingress
                        .filter(|&i| i != entered)
                        .or_else(|| lowest(other))?,
                })
            } else if server_seen & !path.syn_ifaces != 0 {
                Some(DiedAt {
                    place: Place::Firewall,
                    how,
                    entered,
                    toward: toward(path.syn_ifaces)?,
                })
            } else {
                None
            }
        }
    }
}

pub use super::latency::percentiles;

#[cfg(test)]
mod tests {
    use super::*;

    fn c(attempts: u64, established: u64) -> Counts {
        Counts {
            attempts,
            established,
            ..Counts::default()
        }
    }

    #[test]
    fn verdicts_follow_the_evidence() {
        assert_eq!(decide(&c(0, 0)), Verdict::NotSeen);
        assert_eq!(decide(&c(3, 3)), Verdict::Ok);
        assert_eq!(
            decide(&Counts {
                dropped: 2,
                ..c(2, 0)
            }),
            Verdict::Blocked
        );
        assert_eq!(
            decide(&Counts {
                refused: 2,
                ..c(2, 0)
            }),
            Verdict::Refused
        );
        assert_eq!(
            decide(&Counts {
                rejected: 1,
                ..c(1, 0)
            }),
            Verdict::Rejected
        );
        assert_eq!(
            decide(&Counts {
                dropped: 1,
                ..c(4, 3)
            }),
            Verdict::Flaky
        );
        assert_eq!(
            decide(&Counts {
                reset_by_middlebox: 1,
                ..c(2, 2)
            }),
            Verdict::Cut
        );
        assert_eq!(
            decide(&Counts {
                reset_by_endpoint: 1,
                ..c(2, 2)
            }),
            Verdict::Ok
        );
        assert_eq!(
            decide(&Counts {
                one_sided: 2,
                ..c(2, 0)
            }),
            Verdict::OneSided
        );
    }

    #[test]
    fn ttl_tells_server_from_middlebox() {
        let r = Counts {
            refused: 1,
            ..c(1, 0)
        };
        assert_eq!(
            answered_by(Verdict::Refused, &r, Some((64, Some(64))), None),
            Some(AnsweredBy::Server)
        );
        assert_eq!(
            answered_by(Verdict::Refused, &r, Some((64, Some(63))), None),
            Some(AnsweredBy::Middlebox)
        );
        assert_eq!(
            answered_by(Verdict::Refused, &r, Some((64, None)), None),
            Some(AnsweredBy::Unknown)
        );
    }

    #[test]
    fn interfaces_tell_who_refused_over_the_ttls() {
        let r = Counts {
            refused: 1,
            ..c(1, 0)
        };
        // The firewall's own capture: the RST never crossed from the server's side (interface
        // 1), though its TTL matches what the server shows on that side.
        let path = PathFacts {
            syn_ifaces: 0b01,
            syn_first: Some(0),
            refused_rst: 0b01,
            cut_rst: 0,
            cut_from: None,
        };
        let d = died_at(Verdict::Refused, &r, &path, Some(1), 0b11);
        assert_eq!(
            d.map(|d| (d.place, d.entered, d.toward)),
            Some((Place::Firewall, 0, 1))
        );
        assert_eq!(
            answered_by(Verdict::Refused, &r, Some((64, Some(64))), d),
            Some(AnsweredBy::Middlebox)
        );
        // The RST came from the server's side and crossed.
        let path = PathFacts {
            syn_ifaces: 0b11,
            refused_rst: 0b11,
            ..path
        };
        let d = died_at(Verdict::Refused, &r, &path, Some(1), 0b11);
        assert_eq!(d.map(|d| d.place), Some(Place::BeyondFirewall));
    }

    #[test]
    fn a_cut_names_the_side_its_rsts_claimed_sender_comes_from() {
        let path = |from: Option<u16>| PathFacts {
            cut_rst: 0b10,
            cut_from: from,
            ..PathFacts::default()
        };
        // The firewall reset the server (interface 1) in the client's name: the client's
        // packets enter by interface 0.
        let d = died_at(Verdict::Cut, &c(2, 2), &path(Some(0)), Some(1), 0b11);
        assert_eq!(
            d.map(|d| (d.place, d.entered, d.toward)),
            Some((Place::Firewall, 1, 0))
        );
        // Not known: the server's side.
        let d = died_at(Verdict::Cut, &c(2, 2), &path(None), Some(1), 0b11);
        assert_eq!(d.map(|d| d.toward), Some(1));
    }

    #[test]
    fn dropped_syns_died_where_the_interfaces_stop_seeing_them() {
        let b = Counts {
            dropped: 1,
            ..c(1, 0)
        };
        let path = |syn: u32| PathFacts {
            syn_ifaces: syn,
            syn_first: Some(0),
            ..PathFacts::default()
        };
        // Seen entering only, the server's side seen elsewhere: the firewall.
        let d = died_at(Verdict::Blocked, &b, &path(0b01), None, 0b11);
        assert_eq!(d.map(|d| (d.place, d.toward)), Some((Place::Firewall, 1)));
        // Seen on both sides: beyond.
        let d = died_at(Verdict::Blocked, &b, &path(0b11), None, 0b11);
        assert_eq!(
            d.map(|d| (d.place, d.toward)),
            Some((Place::BeyondFirewall, 1))
        );
        // One vantage point: cannot tell.
        assert_eq!(died_at(Verdict::Blocked, &b, &path(0b01), None, 0b01), None);
        // An ok flow died nowhere.
        assert_eq!(
            died_at(Verdict::Ok, &c(1, 1), &path(0b01), None, 0b11),
            None
        );
    }

    #[test]
    fn percentiles_in_ms() {
        let p = percentiles(&[1000, 2000, 3000, 4000]);
        assert!(
            (p.p50 - 2.0).abs() < 0.01 && (p.max - 4.0).abs() < 0.01,
            "{p:?}"
        );
    }
}
