//! The sentences a person reads, written from the typed values the earlier stages decide:
//! a verdict's detail, why a flow is unexpected, what an ICMP error means. Every renderer
//! (table, Markdown, JSON's `detail` fields) takes its words from here.

use super::model::Side;
use crate::aggregate::rows::Rejection;
use crate::aggregate::verdict::{AnsweredBy, Counts, Percentiles, Verdict};
use crate::classify::infer::{EdgeEvidence, MailboxEvidence, Reason};
use crate::classify::rules::UnexpectedReason;

/// The words a person reads for a verdict ("not seen", "one-sided").
pub fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::NotSeen => "not seen",
        Verdict::OneSided => "one-sided",
        v => v.as_str(),
    }
}

/// An ICMP rejection: "3/13 admin-prohibited from 203.0.113.1" (ICMPv6 prefixed "icmp6 ").
pub fn rejection(r: &Rejection) -> String {
    format!(
        "{}{}/{} {} from {}",
        if r.v6 { "icmp6 " } else { "" },
        r.icmp_type,
        r.code,
        super::jsonl::icmp_meaning(r.v6, r.icmp_type, r.code),
        r.from
    )
}

/// Why a flow is unexpected, in a few words.
pub fn unexpected_why(reason: UnexpectedReason) -> &'static str {
    match reason {
        UnexpectedReason::DisabledService => "the service is switched off for this site",
        UnexpectedReason::InternalOnlyExposed => {
            "an internal-only service reached from the internet"
        }
        UnexpectedReason::NotInProfile => "a flow of the other site profile",
        UnexpectedReason::UnknownPort => "no Exchange role uses this port",
    }
}

/// The detail sentence of an unexpected flow.
pub fn unexpected_detail(
    attempts: u64,
    established: u64,
    reason: UnexpectedReason,
    role: Option<&str>,
) -> String {
    format!(
        "{attempts} connection(s), {established} established: {}{}",
        unexpected_why(reason),
        role.map(|r| format!(" (role {r})")).unwrap_or_default()
    )
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
    answered_by: Option<AnsweredBy>,
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
                (Some(AnsweredBy::Server), Some((ttl, _))) => {
                    format!("by the server itself (the RST's TTL {ttl} is the server's usual)")
                }
                (Some(AnsweredBy::Middlebox), Some((ttl, Some(usual)))) => format!(
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
                s.push_str(&format!(", handshake p50 {}", ms_with_unit(h.p50)));
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

/// A latency in a sentence: three significant digits and the unit, never "0.0".
pub fn ms_with_unit(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.3} ms", ms)
    } else if ms < 100.0 {
        format!("{:.1} ms", ms)
    } else {
        format!("{:.0} ms", ms)
    }
}

/// Why inference took a host for what it is, as the topology section lists it.
pub fn inference_reason(r: &Reason) -> String {
    match r {
        Reason::Internal(ranges) => format!(
            "internal: the private and unique-local ranges {}; every other address is internet",
            ranges.join(", ")
        ),
        Reason::Mailbox(h, why) => {
            let why = match why {
                MailboxEvidence::AcceptedClientPorts(ports) => {
                    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
                    format!(
                        "accepted connections on Exchange client port(s) {}",
                        ports.join(", ")
                    )
                }
                MailboxEvidence::ConnectsToEdgeSync(port, edge) => {
                    format!("connects to EdgeSync ({port}) on {edge}")
                }
                MailboxEvidence::ReceivesMailFromEdge(port, edge) => {
                    format!("receives mail (SMTP {port}) relayed by the Edge {edge}")
                }
                MailboxEvidence::ReceivesMail(port, from) => {
                    format!("receives mail (SMTP {port}) from {from}")
                }
            };
            format!("{h} is a Mailbox server: it {why}")
        }
        Reason::Edge(h, why) => {
            let why = match why {
                EdgeEvidence::ReachedOnEdgeSync(port, by) => {
                    format!("reached on EdgeSync ({port}) by {by}")
                }
                EdgeEvidence::RelaysInternetMail(to) => {
                    format!("takes mail from the internet and relays it to {to}")
                }
            };
            format!("{h} is an Edge Transport server: it is {why}")
        }
        Reason::Dns(h, from) => {
            format!("{h} is a DNS server: the Exchange server {from} queries it")
        }
        Reason::Dc(h, from, port) => {
            format!("{h} is a domain controller: the Exchange server {from} reaches it on {port}")
        }
        Reason::Profile(profile, edge_seen) => format!(
            "profile {}: {}",
            profile.name(),
            if *edge_seen {
                "an Edge Transport server carries internet mail"
            } else {
                "no Edge Transport server seen"
            }
        ),
    }
}
