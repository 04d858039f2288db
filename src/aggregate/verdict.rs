//! The verdict of a flow from its counts (PRODUCT.md, "Verdicts"), who answered, and the
//! sentence a person reads. Pure functions, tested on their own.

use crate::report::model::{Percentiles, Side, Verdict};
use hdrhistogram::Histogram;

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

/// Who answered a refusal or reset: "server" when the RST's TTL matches the server's usual
/// TTL, "middlebox" when it differs, "unknown" without a reference.
pub fn answered_by(
    v: Verdict,
    c: &Counts,
    refusal: Option<(u8, Option<u8>)>,
) -> Option<&'static str> {
    match v {
        Verdict::Refused | Verdict::Flaky if c.refused > 0 => Some(match refusal {
            Some((rst, Some(usual))) if rst == usual => "server",
            Some((_, Some(_))) => "middlebox",
            _ => "unknown",
        }),
        Verdict::Cut => Some("middlebox"),
        _ => None,
    }
}

fn place(s: &Side) -> String {
    match (&s.address, s.role) {
        (Some(a), Some(r)) => format!("{r} {a}"),
        (Some(a), None) => a.clone(),
        (None, Some(r)) => format!("{} {r}s", s.zone),
        (None, None) => format!("the {}", s.zone),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One sentence a person reads.
#[allow(clippy::too_many_arguments)]
pub fn detail(
    v: Verdict,
    c: &Counts,
    src: &Side,
    dst: &Side,
    port: u16,
    answered_by: Option<&str>,
    refusal: Option<(u8, Option<u8>)>,
    icmp: &[String],
    handshake: Option<Percentiles>,
) -> String {
    let route = format!("from {} to {} port {port}", place(src), place(dst));
    let attempts = plural(c.attempts, "attempt", "attempts");
    match v {
        Verdict::NotSeen => format!("No attempt {route} in the capture: no evidence either way."),
        Verdict::OneSided => format!(
            "{} of {attempts} {route} show only one direction (asymmetric mirror or a one-way \
             capture filter): no verdict can be trusted.",
            c.one_sided
        ),
        Verdict::Blocked => format!(
            "{attempts} {route}, no answer to any SYN ({}): silently dropped, most likely by a \
             firewall.",
            plural(c.syn_retries, "retransmission", "retransmissions")
        ),
        Verdict::Refused => {
            let who = match (answered_by, refusal) {
                (Some("server"), Some((ttl, _))) => {
                    format!("by the server itself (the RST's TTL {ttl} is the server's usual)")
                }
                (Some("middlebox"), Some((ttl, Some(usual)))) => format!(
                    "by a device in between (the RST's TTL {ttl} differs from the server's \
                     usual {usual})"
                ),
                _ => "by the server's address (no answered handshake to compare its TTL with)"
                    .to_string(),
            };
            format!("{attempts} {route} refused with a TCP reset {who}.")
        }
        Verdict::Rejected => format!(
            "{attempts} {route} rejected with ICMP {}.",
            if icmp.is_empty() {
                "unreachable".to_string()
            } else {
                icmp.join(", ")
            }
        ),
        Verdict::Flaky => {
            let pct = 100.0 * c.failed() as f64 / c.attempts.max(1) as f64;
            format!(
                "{} of {attempts} {route} failed ({pct:.0}%): {} dropped, {} refused, {} \
                 rejected; {} established.",
                c.failed(),
                c.dropped,
                c.refused,
                c.rejected,
                c.established
            )
        }
        Verdict::Cut => format!(
            "{} of {} established {route} reset mid-stream by a device in between (the \
             RST's TTL differs from the TTL its claimed sender shows).",
            c.reset_by_middlebox,
            plural(c.established, "connection", "connections"),
        ),
        Verdict::Ok => {
            let mut s = format!(
                "{} established {route}",
                plural(c.established, "connection", "connections")
            );
            if let Some(h) = handshake {
                s.push_str(&format!(", handshake p50 {}", fmt_ms(h.p50)));
            }
            let resets = c.reset_by_endpoint + c.reset_unknown;
            if resets > 0 {
                s.push_str(&format!(
                    "; {resets} reset by an endpoint (not the firewall)"
                ));
            }
            s.push('.');
            s
        }
    }
}

/// A latency for people: three significant digits, never "0.0".
pub fn fmt_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.3} ms", ms)
    } else if ms < 100.0 {
        format!("{:.1} ms", ms)
    } else {
        format!("{:.0} ms", ms)
    }
}

/// p50/p90/p99/max in milliseconds of microsecond samples (hdrhistogram, 3 significant
/// digits, 1 µs .. 1 hour).
pub fn percentiles(us: &[u32]) -> Percentiles {
    // Bounded by the largest sample rather than the hour: the same buckets (they follow from
    // the lowest value and the digits), without allocating, zeroing and scanning the ones no
    // sample reaches (an hour's worth was most of the report's time).
    let top = us
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .clamp(2, 3_600_000_000);
    let mut h = match Histogram::<u64>::new_with_bounds(1, u64::from(top), 3) {
        Ok(h) => h,
        Err(_) => {
            return Percentiles {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            }
        }
    };
    for &v in us {
        h.saturating_record(u64::from(v.max(1)));
    }
    let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
    Percentiles {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

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
            answered_by(Verdict::Refused, &r, Some((64, Some(64)))),
            Some("server")
        );
        assert_eq!(
            answered_by(Verdict::Refused, &r, Some((64, Some(63)))),
            Some("middlebox")
        );
        assert_eq!(
            answered_by(Verdict::Refused, &r, Some((64, None))),
            Some("unknown")
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
