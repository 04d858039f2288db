//! The sentences a person reads, written from the typed values the earlier stages decide:
//! a verdict's detail, why a flow is unexpected, what an ICMP error means. Every renderer
//! (table, Markdown, JSON's `detail` fields) takes its words from here.

use super::model::{
    CaptureFacts, Example, FilterFact, Fix, FlowEntry, Report, ServiceEntry, Side, Unexpected,
};
use super::terminal::{sanitize, verdict_style, Style};
use crate::aggregate::rows::{DiedAt, Place, Rejection, Stopped};
use crate::aggregate::verdict::{AnsweredBy, Counts, Percentiles, Verdict};
use crate::classify::catalogue::HostRole;
use crate::classify::infer::{self, EdgeEvidence, MailboxEvidence, NotExchange, Reason};
use crate::classify::rules::UnexpectedReason;
use crate::flow::reorder::ReorderStats;
use crate::source::live::Drops;
use std::fmt::Write as _;
use std::net::IpAddr;

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
        "{}{}/{} {} from {}{}",
        if r.v6 { "icmp6 " } else { "" },
        r.icmp_type,
        r.code,
        super::jsonl::icmp_meaning(r.v6, r.icmp_type, r.code),
        r.from,
        if r.by_address {
            " (a separate ICMP record, matched to the attempts by time and addresses)"
        } else {
            ""
        }
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
        UnexpectedReason::UnexpectedSource => {
            "an Exchange port, from a source none of its roles expects (such as SMTP from an \
             internal client)"
        }
        UnexpectedReason::UndeclaredDestination => {
            "an Exchange port, to a host the site file does not name for it (such as DNS to a \
             resolver it does not list)"
        }
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
        "{attempts} connection(s), {established} established: {}{}.",
        unexpected_why(reason),
        role.map(|r| format!(" (role {r})")).unwrap_or_default()
    )
}

fn place(s: &Side) -> String {
    let mut p = match (&s.address, s.role) {
        (Some(a), Some(r)) => format!("{r} {a}"),
        (Some(a), None) => a.clone(),
        (None, Some(r)) => format!("{} {r}s", s.zone),
        (None, None) => format!("the {}", s.zone),
    };
    if let Some(v) = &s.via {
        p.push_str(&format!(" (via NAT address {v})"));
    }
    p
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a row's verdict sentence is made of (an expected flow's or an unexpected one's).
pub struct VerdictFacts<'a> {
    pub verdict: Verdict,
    pub counts: &'a Counts,
    pub src: &'a Side,
    pub dst: &'a Side,
    pub port: u16,
    pub answered_by: Option<AnsweredBy>,
    pub refusal: Option<(u8, Option<u8>)>,
    pub refused_without_ttl: u64,
    pub icmp: &'a [String],
    pub handshake: Option<Percentiles>,
    pub died: Option<DiedAt>,
}

/// One sentence a person reads, and a second on RSTs taken for spoofed or ignored.
pub fn detail(f: &VerdictFacts<'_>) -> String {
    let mut s = verdict_sentence(f);
    if f.counts.ignored_resets > 0 {
        s.push(' ');
        s.push_str(&ignored_resets(f.counts.ignored_resets));
    }
    s
}

/// The sentence on RSTs taken for spoofed or ignored.
fn ignored_resets(n: u64) -> String {
    format!(
        "{} (outside the receiver's window, or the receiver went on sending data or a FIN): \
         not counted as resets.",
        plural(
            n,
            "suspected spoofed or ignored reset",
            "suspected spoofed or ignored resets"
        )
    )
}

fn verdict_sentence(f: &VerdictFacts<'_>) -> String {
    let &VerdictFacts {
        verdict: v,
        counts: c,
        src,
        dst,
        port,
        answered_by,
        refusal,
        refused_without_ttl,
        icmp,
        handshake,
        died,
    } = f;
    // Where the capture's interfaces showed who sent a RST, the sentence says so rather than
    // reading TTLs (they differ from one interface to the next).
    let by_interfaces = |how: Stopped| died.filter(|d| d.how == how).map(|d| d.place);
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
            let who = match (by_interfaces(Stopped::Refused), answered_by, refusal) {
                (Some(Place::Firewall), _, _) => "by the firewall itself".to_string(),
                (Some(Place::BeyondFirewall), _, _) => {
                    "from the server's side of the firewall".to_string()
                }
                (None, a, r) => refused_by(a, r, refused_without_ttl),
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
            "{} of {} established {route} reset mid-stream by a device in between{}.",
            c.reset_by_middlebox,
            plural(c.established, "connection", "connections"),
            if by_interfaces(Stopped::Cut).is_some() {
                ""
            } else {
                " (the RST's TTL differs from the TTL its claimed sender shows)"
            },
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

/// Who refused, by the RST's TTL against the server's usual.
fn refused_by(
    answered_by: Option<AnsweredBy>,
    refusal: Option<(u8, Option<u8>)>,
    refused_without_ttl: u64,
) -> String {
    match (answered_by, refusal) {
        (Some(AnsweredBy::Server), Some((ttl, _))) => {
            format!("by the server itself (the RST's TTL {ttl} is the server's usual)")
        }
        (Some(AnsweredBy::Middlebox), Some((ttl, Some(usual)))) => format!(
            "by a device in between (the RST's TTL {ttl} differs from the server's usual \
             {usual})"
        ),
        (_, None) if refused_without_ttl > 0 => "(the connection records carry no TTL, so they \
             do not say whether the server or a device in between sent it)"
            .to_string(),
        _ => "by the server's address (no answered handshake to compare its TTL with)".to_string(),
    }
}

/// The JSON name of where a flow died.
pub fn place_name(p: Place) -> &'static str {
    match p {
        Place::Firewall => "firewall",
        Place::BeyondFirewall => "beyond_firewall",
    }
}

/// A failed flow's detail with where it died: the interfaces that show it, or why the capture
/// cannot tell. `died` carries the names of the interfaces it names.
pub fn with_place(
    mut detail: String,
    v: Verdict,
    died: Option<(DiedAt, String, String)>,
    interfaces: usize,
    dst: &Side,
) -> String {
    if !v.is_failure() {
        return detail;
    }
    let toward = match &dst.address {
        Some(a) => format!(" toward {a}"),
        None => String::new(),
    };
    let sentence = match died {
        Some((d, entered, out)) => match (d.place, d.how) {
            (Place::Firewall, Stopped::Dropped) => format!(
                "SYNs entered on {entered} and never left on {out}: the firewall dropped them."
            ),
            (Place::Firewall, Stopped::Rejected) => format!(
                "SYNs entered on {entered} and never left on {out}: the firewall rejected them."
            ),
            (Place::Firewall, Stopped::Refused) => format!(
                "The RST appeared on {entered} and never crossed from {out}, where the server's \
                 packets come from: the firewall answered for the server."
            ),
            (Place::Firewall, Stopped::Cut) => format!(
                "The RSTs appeared on {entered} and never crossed from {out}, where the claimed \
                 sender's packets come from: the firewall cut the connections."
            ),
            (Place::BeyondFirewall, Stopped::Refused) => format!(
                "SYNs entered on {entered} and left on {out}{toward}; the RST came back from the \
                 server's side ({out}) and crossed the firewall: beyond the firewall — the \
                 server's own firewall, or nothing listens on the port."
            ),
            (Place::BeyondFirewall, Stopped::Rejected) => {
                format!("SYNs entered on {entered}, left on {out}{toward} and were rejected beyond the \
                 firewall.")
            }
            (Place::BeyondFirewall, _) => format!(
                "SYNs entered on {entered}, left on {out}{toward} and got no answer: beyond the \
                 firewall — the server's own firewall, or the service is down."
            ),
        },
        None if interfaces >= 2 => "Where it died: the capture's interfaces cannot tell (the \
                 destination's side of the firewall was not seen)."
            .to_string(),
        None => "One vantage point: the capture cannot tell whether the firewall or something \
                 beyond it stopped them."
            .to_string(),
    };
    detail.push(' ');
    detail.push_str(&sentence);
    detail
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
                MailboxEvidence::Tried(ports, attempts, sources) => {
                    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
                    return format!(
                        "{h} is likely the Exchange server this capture was taken for: no host \
                         answered as one, and {} from {} tried it on Exchange port(s) {} \
                         (a capture of failed attempts; a site file makes it certain)",
                        plural(*attempts, "connection", "connections"),
                        plural(*sources as u64, "source", "sources"),
                        ports.join(", ")
                    );
                }
            };
            format!("{h} is a Mailbox server: it {why}")
        }
        Reason::Signs(h, seen) => {
            let mut parts: Vec<String> = vec![];
            if let Some((port, sign)) = &seen.banner {
                parts.push(format!("its SMTP greeting on {port} says \"{sign}\""));
            }
            if let Some((port, names)) = &seen.headers {
                parts.push(format!(
                    "its HTTP responses on {port} carry {}",
                    names.join(", ")
                ));
            }
            if let Some((port, sign)) = &seen.server {
                parts.push(format!("its HTTP Server header on {port} names {sign}"));
            }
            if let Some((port, service)) = &seen.sni_service {
                parts.push(format!(
                    "its clients ask for its {service} service by server name (TLS on {port})"
                ));
            }
            if let Some(ttl) = seen.windows_ttl {
                parts.push(format!("its answers arrive with a Windows TTL ({ttl})"));
            }
            if seen.exchange_specific() {
                format!("{h} shows Exchange's own signs: {}", parts.join("; "))
            } else {
                // IIS and Windows' TTL are Windows', not Exchange's alone.
                format!(
                    "{h} looks like a Windows server, as Exchange servers are (no proof of \
                     Exchange): {}",
                    parts.join("; ")
                )
            }
        }
        Reason::NotExchange(h, why) => match why {
            NotExchange::MailDestination(sender) => format!(
                "{h} is not an Exchange server: {sender}, itself reached on the mail port from \
                 elsewhere, sends mail to it (a destination of the site's mail)"
            ),
            NotExchange::Browsed(client, port, others) => format!(
                "{h} is not an Exchange server: {client} reached it and {others} other servers \
                 on port {port} (a client browsing, not clients of one server)"
            ),
        },
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
        Reason::TooMany(role, hosts, conversations) => format!(
            "{hosts} more {} like {} but {} not named: exflow names at most {} per role when \
             it infers the site (those with the most conversations); {} with them are \
             classified as those of unnamed hosts (a site file names them all)",
            if *hosts == 1 {
                "host looked"
            } else {
                "hosts looked"
            },
            match role {
                HostRole::Mailbox => "Mailbox servers",
                HostRole::Edge => "Edge Transport servers",
                HostRole::Dns => "DNS servers",
                HostRole::Dc => "domain controllers",
                _ => "servers",
            },
            if *hosts == 1 { "is" } else { "are" },
            infer::MAX_INFERRED_HOSTS,
            plural(*conversations, "conversation", "conversations"),
        ),
        Reason::MoreNotExchange(hosts) => format!(
            "… and {hosts} more {} not taken for Exchange servers",
            if *hosts == 1 { "host" } else { "hosts" }
        ),
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

/// One line for the report when anything was lost; None when nothing was.
pub fn live_drops_warning(d: &Drops) -> Option<String> {
    if d.total() == 0 {
        return None;
    }
    Some(format!(
        "live capture lost {} packets: {} dropped by the kernel (capture buffer full: \
         try --buffer-size), {} by the interface or its driver, {} by exflow's queue \
         (analysis fell behind); verdicts may miss attempts",
        d.total(),
        d.kernel,
        d.interface,
        d.queue
    ))
}

/// The warning for an output that could not be written whole (`--write`, `--flows`: a full
/// disk): what was written and what was not.
pub fn write_failure_warning(f: &crate::source::outputs::WriteFailure) -> String {
    format!(
        "{} {}: write failed ({}): {} {unit} written, {} {unit} not written; the file is \
         incomplete (exit code 3)",
        f.option,
        f.file,
        f.error,
        f.written,
        f.not_written,
        unit = f.unit
    )
}

// Phrases every text format shares: sides, ports, failures, times, sizes.

/// The order verdicts are counted in the summary line.
pub(crate) const SUMMARY_ORDER: [Verdict; 8] = [
    Verdict::Ok,
    Verdict::Blocked,
    Verdict::Refused,
    Verdict::Rejected,
    Verdict::Flaky,
    Verdict::Cut,
    Verdict::OneSided,
    Verdict::NotSeen,
];

/// How many entries have each verdict, in summary order, leaving out zeros.
pub(crate) fn verdict_counts(entries: &[FlowEntry]) -> Vec<(Verdict, usize)> {
    SUMMARY_ORDER
        .iter()
        .map(|&v| (v, entries.iter().filter(|e| e.verdict == v).count()))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// The summary as plain text, e.g. "12 expected flows: 8 ok, 1 blocked · 3 unexpected".
pub(crate) fn summary_text(r: &Report) -> String {
    let atoms: Vec<String> = summary_atoms(r)
        .into_iter()
        .map(|a| a.into_iter().map(|(t, _)| t).collect())
        .collect();
    atoms.join(" ")
}

/// 0 for problems (blocked, refused, rejected, cut, flaky, one-sided), 1 for ok, 2 for not
/// seen: the order expected flows are listed in.
pub(crate) fn verdict_group(v: Verdict) -> u8 {
    match v {
        Verdict::Ok => 1,
        Verdict::NotSeen => 2,
        Verdict::Blocked
        | Verdict::Refused
        | Verdict::Rejected
        | Verdict::Cut
        | Verdict::Flaky
        | Verdict::OneSided => 0,
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AddrKey {
    None,
    Ip(IpAddr),
    Text(String),
}

pub(crate) fn addr_key(side: &Side) -> AddrKey {
    match side.address.as_deref() {
        None => AddrKey::None,
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) => AddrKey::Ip(ip),
            Err(_) => AddrKey::Text(a.to_string()),
        },
    }
}

/// The one line that stands for the flows this capture point cannot see (folded out of the
/// tables), if there are any.
pub(crate) fn out_of_view_line(entries: &[FlowEntry]) -> Option<String> {
    let folded: Vec<&FlowEntry> = entries.iter().filter(|e| e.out_of_view).collect();
    if folded.is_empty() {
        return None;
    }
    let mut from: Vec<String> = folded.iter().map(|e| place(&e.src)).collect();
    from.sort();
    from.dedup();
    Some(format!(
        "{} not seen from {}: the capture shows no traffic from there at all (a capture point \
         that cannot see them, such as the internet edge for internal clients); no evidence \
         either way.",
        plural(folded.len() as u64, "flow", "flows"),
        sanitize(&from.join(", "))
    ))
}

/// Problems first, then ok, then not seen; within a group by role, then destination and
/// source address (numerically for IP addresses); otherwise in the order given. Flows the
/// capture point cannot see are left out ([`out_of_view_line`] stands for them).
pub(crate) fn sorted_entries(entries: &[FlowEntry]) -> Vec<&FlowEntry> {
    let mut keyed: Vec<_> = entries
        .iter()
        .filter(|e| !e.out_of_view)
        .map(|e| {
            (
                (
                    verdict_group(e.verdict),
                    e.role.as_str(),
                    addr_key(&e.dst),
                    addr_key(&e.src),
                ),
                e,
            )
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, e)| e).collect()
}

/// One side of a flow: "internet", "mailbox 192.0.2.10", "internal 10.1.2.3". Sanitised.
pub(crate) fn side_label(s: &Side) -> String {
    let label = match (s.role, s.address.as_deref()) {
        (Some(role), Some(addr)) => format!("{} {}", sanitize(role), sanitize(addr)),
        (None, Some(addr)) => format!("{} {}", sanitize(s.zone), sanitize(addr)),
        (Some(role), None) => sanitize(role),
        (None, None) => sanitize(s.zone),
    };
    match &s.via {
        Some(v) => format!("{label} via {}", sanitize(v)),
        None => label,
    }
}

/// One side as briefly as it can be told: the address alone when there is one, else the
/// zone or role. Sanitised.
pub(crate) fn side_short(s: &Side) -> String {
    match (s.role, s.address.as_deref()) {
        (_, Some(addr)) => sanitize(addr),
        (Some(role), None) => sanitize(role),
        (None, None) => sanitize(s.zone),
    }
}

/// "443/tcp", "5075-5077/tcp", "esp" (IP protocols without ports).
pub(crate) fn proto_port(proto: &str, ports: &str, port: u16) -> String {
    let proto = sanitize(proto);
    if port == 0 && proto != "tcp" && proto != "udp" {
        proto
    } else {
        format!("{}/{proto}", sanitize(ports))
    }
}

/// The port column of an expected entry: the role's port list when it has several (not the
/// whole range "1-65535" of the must-not-restrict roles: the port actually seen then).
pub(crate) fn port_label(e: &FlowEntry) -> String {
    let ports = e.ports.trim();
    if ports.is_empty() || ports == "1-65535" || ports == "0-65535" {
        proto_port(e.proto, &e.port.to_string(), e.port)
    } else {
        proto_port(e.proto, ports, e.port)
    }
}

/// "4 drop 1 rst": the failure counts that are not zero, or "-".
pub(crate) fn failures_compact(e: &FlowEntry) -> String {
    let parts: Vec<String> = [
        (e.dropped, "drop"),
        (e.refused, "ref"),
        (e.rejected, "rej"),
        (e.reset_midstream, "rst"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| format!("{n} {w}"))
    .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" ")
    }
}

/// "4 dropped, 2 refused (by middlebox), 1 rejected (ICMP 3/13 admin-prohibited)": the
/// failure counts in words, or "-". Sanitised.
pub(crate) fn failures_words(e: &FlowEntry) -> String {
    let mut parts = Vec::new();
    if e.dropped > 0 {
        parts.push(format!("{} dropped", e.dropped));
    }
    if e.refused > 0 {
        match e.answered_by {
            Some(by) => parts.push(format!("{} refused (by {})", e.refused, by.as_str())),
            None => parts.push(format!("{} refused", e.refused)),
        }
    }
    if e.rejected > 0 {
        let icmp: Vec<String> = e.icmp.iter().map(|c| sanitize(c)).collect();
        if icmp.is_empty() {
            parts.push(format!("{} rejected", e.rejected));
        } else {
            parts.push(format!(
                "{} rejected (ICMP {})",
                e.rejected,
                icmp.join(", ")
            ));
        }
    }
    if e.reset_midstream > 0 {
        parts.push(format!("{} reset mid-stream", e.reset_midstream));
    }
    if e.one_sided > 0 {
        parts.push(format!("{} one-sided", e.one_sided));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// A row's connections by Exchange service, when the services fared differently (one
/// with every connection through, another with none or only some): "autodiscover 0/5
/// established, owa 12/12". None when they all fared alike (nothing a port-level verdict
/// hides) or there are fewer than two. Where one name has both kinds of evidence, each says
/// which ("autodiscover (sni)"). Sanitised.
pub(crate) fn services_line(services: &[ServiceEntry]) -> Option<String> {
    /// 0: none through, 1: some, 2: all.
    fn fared(s: &ServiceEntry) -> u8 {
        if s.established == 0 {
            0
        } else if s.established < s.attempts {
            1
        } else {
            2
        }
    }
    let first = fared(services.first()?);
    if services.iter().all(|s| fared(s) == first) {
        return None;
    }
    let parts: Vec<String> = services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let twice = services.iter().filter(|o| o.name == s.name).count() > 1;
            let name = if twice {
                format!("{} ({})", s.name, s.evidence)
            } else {
                s.name.to_string()
            };
            let tail = if i == 0 { " established" } else { "" };
            sanitize(&format!("{name} {}/{}{tail}", s.established, s.attempts))
        })
        .collect();
    Some(parts.join(", "))
}

/// One service of a row in full, for the HTML evidence: its name, what told it and how
/// many of its connections went through, in the words of that evidence ("autodiscover, by
/// TLS server name: 0 of 2 handshakes completed"; "owa, by HTTP request: 3 of 3
/// answered"). Sanitised.
pub(crate) fn service_words(s: &ServiceEntry) -> String {
    let (by, through) = match s.evidence {
        "sni" => ("TLS server name", "handshake"),
        "http" => ("HTTP request", "request"),
        other => (other, "connection"),
    };
    let done = match s.evidence {
        "sni" => "completed",
        "http" => "answered",
        _ => "established",
    };
    sanitize(&format!(
        "{}, by {by}: {} of {} {through}{} {done}",
        s.name,
        s.established,
        s.attempts,
        plural_s(s.attempts as usize),
    ))
}

/// The detail sentence of a problem entry (None for ok and not seen, and when empty).
/// Sanitised.
pub(crate) fn entry_detail(e: &FlowEntry) -> Option<String> {
    if matches!(e.verdict, Verdict::Ok | Verdict::NotSeen) || e.detail.trim().is_empty() {
        return None;
    }
    Some(sanitize(e.detail.trim()))
}

/// A failed flow's fix on one line: the commands that add its allow rules ("nft insert rule
/// inet filter forward … accept", several joined by "; " as a shell runs them), or the words of
/// what to allow when the site gives no address to write a rule with. Sanitised.
pub(crate) fn fix_line(fix: &Fix) -> String {
    if fix.nft.is_empty() {
        sanitize(&fix.words)
    } else {
        sanitize(&fix.nft.join("; "))
    }
}

/// The indented line under a problem row: the entry's detail sentence, plus who answered and
/// the ICMP codes when the sentence does not already say so (the compact failure column does
/// not). None for ok and not seen.
pub(crate) fn entry_note(e: &FlowEntry) -> Option<String> {
    if e.verdict == Verdict::Ok && e.ignored_resets > 0 {
        return Some(ignored_resets(e.ignored_resets));
    }
    if matches!(e.verdict, Verdict::Ok | Verdict::NotSeen) {
        return None;
    }
    let mut note = sanitize(e.detail.trim());
    let mut extra = Vec::new();
    if let Some(by) = e.answered_by {
        if !note.contains(by.as_str()) {
            extra.push(format!("answered by {}", by.as_str()));
        }
    }
    let icmp: Vec<String> = e
        .icmp
        .iter()
        .filter(|c| !e.detail.contains(c.as_str()))
        .map(|c| sanitize(c))
        .collect();
    if !icmp.is_empty() {
        extra.push(format!("ICMP {}", icmp.join(", ")));
    }
    if !extra.is_empty() {
        if !note.is_empty() {
            note.push(' ');
        }
        let _ = write!(note, "({})", extra.join("; "));
    }
    if note.is_empty() {
        None
    } else {
        Some(note)
    }
}

/// "disabled-service (pop3)", with ", likely" where a few packets decide it. Sanitised.
pub(crate) fn reason_label(u: &Unexpected) -> String {
    let mut s = match &u.role {
        Some(role) => format!("{} ({})", sanitize(u.reason), sanitize(role)),
        None => sanitize(u.reason),
    };
    if u.likely {
        s.push_str(", likely");
    }
    s
}

/// The warning on exact duplicate packets.
pub fn exact_duplicates(n: u64) -> String {
    format!(
        "{} (a SPAN seeing both directions twice?): counted as packets, as Zeek does, but not \
         as retransmissions.",
        plural(n, "exact duplicate packet", "exact duplicate packets")
    )
}

/// Appended to a disabled service's detail when only a few packets show it in use.
pub const LIKELY_IN_USE: &str = " Likely, not proven: no connection completed a handshake and \
    carried data both ways, and the few packets seen are ones a spoofer can send.";

/// "198.51.100.7:51234 → [2001:db8::10]:110 S0 S". Sanitised.
pub(crate) fn example_text(x: &Example) -> String {
    let history = if x.history.is_empty() {
        "-".to_string()
    } else {
        sanitize(&x.history)
    };
    format!(
        "{} → {} {} {history}",
        endpoint(&x.orig_h, x.orig_p),
        endpoint(&x.resp_h, x.resp_p),
        sanitize(x.conn_state),
    )
}

/// "192.0.2.1:25", "[2001:db8::1]:25".
pub(crate) fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{}]:{port}", sanitize(addr))
    } else {
        format!("{}:{port}", sanitize(addr))
    }
}

/// "25, 80, 443 +12": at most `max` ports, then how many more.
pub(crate) fn open_ports(open: &[u16], max: usize) -> String {
    if open.is_empty() {
        return "-".to_string();
    }
    let shown: Vec<String> = open.iter().take(max).map(|p| p.to_string()).collect();
    let mut s = shown.join(", ");
    if open.len() > max {
        let _ = write!(s, " +{}", open.len() - max);
    }
    s
}

/// "from site file site.toml" or "inferred from traffic". Sanitised.
pub(crate) fn topology_source(r: &Report) -> String {
    match (&r.topology.site_file, r.topology.inferred) {
        (Some(f), false) => format!("from site file {}", sanitize(f)),
        (Some(f), true) => format!("site file {}, completed from traffic", sanitize(f)),
        (None, true) => "inferred from traffic".to_string(),
        (None, false) => "given".to_string(),
    }
}

/// "snaplen_cut 3, bad_ip 1" or "none". Sanitised.
pub(crate) fn anomalies_label(r: &Report) -> String {
    let parts: Vec<String> = r
        .capture
        .anomalies
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{} {n}", sanitize(k)))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// Milliseconds with three significant digits ("0.234", "1.23", "12.3", "123", "1234");
/// "-" for a value that is not a finite number.
pub(crate) fn ms_figure(ms: f64) -> String {
    if !ms.is_finite() {
        return "-".to_string();
    }
    let a = ms.abs();
    if a >= 100.0 {
        format!("{ms:.0}")
    } else if a >= 10.0 {
        format!("{ms:.1}")
    } else if a >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// "1.2 MiB (1234567 bytes)".
pub(crate) fn bytes_label(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit} ({n} bytes)")
}

/// Seconds since the epoch → (days since the epoch, second of the day), or None when the
/// value is not a time between the years 1 and 9999.
pub(crate) fn split_ts(ts: f64) -> Option<(i64, i64)> {
    if !ts.is_finite() || !(-62_135_596_800.0..253_402_300_800.0).contains(&ts) {
        return None;
    }
    let secs = ts.floor() as i64;
    Some((secs.div_euclid(86_400), secs.rem_euclid(86_400)))
}

pub(crate) fn hms(sod: i64) -> String {
    format!("{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60)
}

/// "2024-05-01 10:00:00" (UTC), or the raw number when it is not a plausible time.
pub(crate) fn utc(ts: f64) -> String {
    match split_ts(ts) {
        Some((days, sod)) => {
            let (y, m, d) = crate::time::civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02} {}", hms(sod))
        }
        None if ts.is_finite() => format!("{ts:.3}"),
        None => "-".to_string(),
    }
}

/// "2024-05-01T10:00:00Z" (RFC 3339, UTC), or the raw number when it is not a plausible time.
pub fn utc_rfc3339(ts: f64) -> String {
    match split_ts(ts) {
        Some(_) => format!("{}Z", utc(ts).replacen(' ', "T", 1)),
        None => utc(ts),
    }
}

/// "10:00:00" when the whole capture is within one UTC day, else "05-01 10:00:00".
pub(crate) fn utc_short(ts: f64, one_day: bool) -> String {
    match split_ts(ts) {
        Some((_, sod)) if one_day => hms(sod),
        Some((days, sod)) => {
            let (_, m, d) = crate::time::civil_from_days(days);
            format!("{m:02}-{d:02} {}", hms(sod))
        }
        None => utc(ts),
    }
}

pub(crate) fn same_utc_day(a: Option<f64>, b: Option<f64>) -> bool {
    match (a.and_then(split_ts), b.and_then(split_ts)) {
        (Some((da, _)), Some((db, _))) => da == db,
        _ => false,
    }
}

/// "5m 12s", "1h 02m 03s", "0.532s", "2d 3h 04m".
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_string();
    }
    if secs < 1.0 {
        return format!("{secs:.3}s");
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// "2024-05-01 10:00:00 → 10:05:12 UTC (5m 12s)", or "-" when nothing was read.
pub(crate) fn time_span(first: Option<f64>, last: Option<f64>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => {
            let end = if same_utc_day(first, last) {
                split_ts(b).map_or_else(|| utc(b), |(_, sod)| hms(sod))
            } else {
                utc(b)
            };
            format!("{} → {end} UTC ({})", utc(a), duration(b - a))
        }
        (Some(a), None) | (None, Some(a)) => format!("{} UTC", utc(a)),
        (None, None) => "-".to_string(),
    }
}

pub(crate) fn plural_s(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Styled pieces printed together; a line may break between two atoms.
pub(crate) type Atom = Vec<(String, Style)>;

/// "12 expected flows: 8 ok, 1 blocked, 2 not seen · 3 unexpected", as atoms.
pub(crate) fn summary_atoms(r: &Report) -> Vec<Atom> {
    let plain = |t: String| vec![(t, Style::Plain)];
    let mut atoms = Vec::new();
    let n = r.expected.len();
    if n == 0 {
        atoms.push(plain("no expected flows".to_string()));
    } else {
        atoms.push(plain(format!("{n} expected flow{}:", plural_s(n))));
        let counts = verdict_counts(&r.expected);
        let last = counts.len().saturating_sub(1);
        for (i, (v, count)) in counts.into_iter().enumerate() {
            let mut atom = vec![(
                format!("{count} {}", super::words::verdict_label(v)),
                verdict_style(v),
            )];
            if i < last {
                atom.push((",".to_string(), Style::Plain));
            }
            atoms.push(atom);
        }
    }
    let whole =
        |list: &str, shown: usize| shown + r.left_out.get(list).copied().unwrap_or(0) as usize;
    atoms.push(plain(format!(
        "· {} unexpected",
        whole("unexpected", r.unexpected.len())
    )));
    let u = whole("unsupported_restrictions", r.unsupported_restrictions.len());
    if u > 0 {
        atoms.push(vec![
            ("· ".to_string(), Style::Plain),
            (
                format!("{u} unsupported restriction{}", plural_s(u)),
                Style::Red,
            ),
        ]);
    }
    let s = whole("scans", r.scans.len());
    if s > 0 {
        atoms.push(plain(format!("· {s} port scan{}", plural_s(s))));
    }
    let f = whole("floods", r.floods.len());
    if f > 0 {
        atoms.push(plain(format!("· {f} SYN flood{}", plural_s(f))));
    }
    atoms
}

/// "geneve 6, vxlan 10": the tunnel headers opened, by kind. Sanitised.
pub(crate) fn tunnels_label(r: &Report) -> String {
    let parts: Vec<String> = r
        .capture
        .tunnels
        .iter()
        .map(|(k, n)| format!("{} {n}", sanitize(k)))
        .collect();
    parts.join(", ")
}

/// Why there are no expected flows when no Exchange server is known: the site file names
/// none, the `--filter` let no packet through (with the VLAN hint), or the capture shows none.
pub fn no_exchange_server(c: &CaptureFacts, site_file: bool) -> String {
    if site_file {
        "The site file names no Exchange server (no host with role mailbox or edge): there are \
         no expected flows to judge."
            .to_string()
    } else if let Some(s) = filter_matched_nothing(c) {
        s
    } else {
        "No Exchange server found in this capture: no host accepted connections on Exchange's \
         client or mail ports, so there are no expected flows to judge."
            .to_string()
    }
}

/// When `--filter` let none of the packets read through: the sentence that says so, with the
/// hint to write `vlan and (…)` when the capture's frames carry VLAN tags the filter does not
/// look past. Sanitised.
pub fn filter_matched_nothing(c: &CaptureFacts) -> Option<String> {
    let f = c.filter.as_ref()?;
    if f.matched > 0 || f.of == 0 {
        return None;
    }
    let expr = sanitize(&f.expression);
    let mut s = format!(
        "The filter '{expr}' matched 0 of {} packets: there was nothing to analyse.",
        f.of
    );
    if c.vlan_tagged > 0 && !mentions_vlan(&f.expression) {
        let _ = write!(
            s,
            " {} of them carry an 802.1Q VLAN tag, which a filter does not look past unless it \
             says so: write 'vlan and ({expr})'.",
            if c.vlan_tagged >= f.of {
                "All".to_string()
            } else {
                c.vlan_tagged.to_string()
            }
        );
    }
    Some(s)
}

/// Whether a BPF expression uses the `vlan` primitive.
fn mentions_vlan(expr: &str) -> bool {
    expr.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "vlan")
}

/// "'tcp port 25' matched 12 of 1200 packets": the filter's fact for the capture section.
/// Sanitised.
pub fn filter_label(f: &FilterFact) -> String {
    format!(
        "'{}' matched {} of {} packets",
        sanitize(&f.expression),
        f.matched,
        f.of
    )
}

/// A warning when packets could not all be put back in time order.
pub fn reorder_warning(r: &ReorderStats) -> Option<String> {
    let mut parts = vec![];
    if r.late > 0 {
        parts.push(format!(
            "{} packets stepped back in time by more than the reorder window ({} s; the largest \
             step back was {:.3} s) and were analysed out of order: raise --reorder-window",
            r.late,
            r.window.as_secs_f64(),
            r.max_step_back.as_secs_f64()
        ));
    }
    if r.forced > 0 {
        parts.push(format!(
            "{} packets went on before the reorder window had passed (too many waiting)",
            r.forced
        ));
    }
    if r.payload_dropped > 0 {
        parts.push(format!(
            "{} packets waiting to be put back in time order lost their payload excerpt (the \
             reorder buffer's payload store was full): SMTP, TLS and HTTP findings may miss them",
            r.payload_dropped
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Warnings about what reading the files counted: timestamps out of range, zero, backward or
/// jumping (`source::clock`), interfaces past the bound, frames the filter could not look at,
/// files read in another order than given or overlapping in time.
pub fn source_warnings(s: &crate::source::SourceStats) -> Vec<String> {
    use crate::source::clock::{JUMP_BACK, JUMP_FORWARD};
    let mut out = vec![];
    let c = &s.clock;
    let n = |count: u64, one: &str, many: &str| {
        if count == 1 {
            format!("1 {one}")
        } else {
            format!("{count} {many}")
        }
    };
    if c.jumps_forward + c.jumps_back > 0 {
        out.push(format!(
            "the capture clock jumped (more than {} forward or {} back within a file: {} \
             forward, {} back; the largest {}): \
             the jumps were taken out, later packets shifted by them, so connections across a \
             jump are neither split nor kept open by it; times after a jump are not the \
             capture's own",
            duration(JUMP_FORWARD.as_secs_f64()),
            duration(JUMP_BACK.as_secs_f64()),
            c.jumps_forward,
            c.jumps_back,
            duration(c.largest_jump.as_secs_f64())
        ));
    }
    if c.out_of_range > 0 {
        out.push(format!(
            "{} outside 1970 to 2116 (a wrong if_tsresol or a corrupt stamp): each was \
             given the time of the packet before it",
            n(
                c.out_of_range,
                "packet had a timestamp",
                "packets had timestamps"
            )
        ));
    }
    if c.offset_ignored > 0 {
        out.push(format!(
            "{} whose interface's if_tsoffset put them outside 1970 to 2116: read without \
             the offset",
            n(c.offset_ignored, "packet", "packets")
        ));
    }
    if c.zero > 0 {
        out.push(format!(
            "{} stamped 0 (1970-01-01): given the time of the packet before it, when there was \
             one",
            n(c.zero, "packet was", "packets were")
        ));
    }
    // Packets a little earlier than the one before them (`c.backward`) are common (NIC
    // queues, several CPUs): counted in the anomalies, put back in order, no warning.
    if s.ignored_interfaces > 0 {
        out.push(format!(
            "{} past the first {} of a pcapng section were ignored, and the {} on them \
             skipped",
            n(
                s.ignored_interfaces,
                "interface description",
                "interface descriptions"
            ),
            crate::source::file::MAX_INTERFACES,
            n(s.frames_on_ignored_interfaces, "packet", "packets")
        ));
    }
    if s.unfilterable > 0 {
        let links: Vec<String> = s.unfilterable_links.iter().map(|l| l.to_string()).collect();
        out.push(format!(
            "{} of link types the --filter expression cannot be applied to ({}) skipped, not \
             analysed",
            n(s.unfilterable, "packet", "packets"),
            links.join(", ")
        ));
    }
    if s.reordered_files {
        out.push(
            "the files were read in the order of their first packets, not in the order given"
                .to_string(),
        );
    }
    if s.overlapping_files > 0 {
        out.push(format!(
            "{} before the file read before it ended: their packets overlap in time",
            n(s.overlapping_files, "file starts", "files start")
        ));
    }
    out
}

/// "3 packets put back in time order (the largest step back 212.5 ms)", or "none".
pub fn reordered_label(packets: u64, max_step_back_ms: f64) -> String {
    if packets == 0 {
        "none".to_string()
    } else {
        format!(
            "{packets} packets put back in time order (the largest step back {})",
            ms_with_unit(max_step_back_ms)
        )
    }
}

/// "out0 (EN10MB, 120 packets), in0 (EN10MB, 118 packets)". Sanitised.
pub fn interfaces_label(c: &super::model::CaptureFacts) -> String {
    c.interfaces
        .iter()
        .map(|i| {
            format!(
                "{} ({}, {} packets)",
                i.name
                    .as_deref()
                    .map(sanitize)
                    .unwrap_or_else(|| format!("#{}", i.id)),
                sanitize(&i.link_type),
                i.packets
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a file is of no known kind: what its start looked like, and what was looked for.
pub fn unknown_input(head: &[u8]) -> String {
    let start: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let what = if head.is_empty() {
        "it is empty".to_string()
    } else {
        format!("it starts with {}", start.join(" "))
    };
    format!(
        "not a pcap or pcapng capture, nor a file of connection records ({what}): no \
         capture magic, no Zeek conn.log header (#separator / #fields), no JSON line of a \
         conn.log (id.orig_h), eve.json (event_type) or exflow --flows record; --input KIND \
         forces a kind"
    )
}

/// The warnings of one file of connection records: malformed lines (with the first line
/// numbers), blanked times, a read error that ended the file early.
pub fn import_warnings(
    file: &str,
    s: &crate::flow::import::ImportStats,
    read_error: Option<&str>,
) -> Vec<String> {
    let name = if file == "-" { "standard input" } else { file };
    let mut out = vec![];
    if s.malformed > 0 {
        let lines: Vec<String> = s.bad_lines.iter().map(u64::to_string).collect();
        let more = if s.malformed > s.bad_lines.len() as u64 {
            ", …"
        } else {
            ""
        };
        out.push(format!(
            "{name}: {} skipped (line{} {}{more}): not a connection record of this kind",
            plural(s.malformed, "malformed line", "malformed lines"),
            if lines.len() == 1 { "" } else { "s" },
            lines.join(", ")
        ));
    }
    if s.unknown_times > 0 {
        out.push(format!(
            "{name}: {} without a start time (blanked or absent): their times are unknown",
            plural(s.unknown_times, "record", "records")
        ));
    }
    if let Some(e) = read_error {
        out.push(format!(
            "{name}: reading stopped early ({e}); the report covers the records before it"
        ));
    }
    out
}

/// "-" for an empty value in a table or list line.
pub(crate) fn dash_if_empty(s: String) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s
    }
}

/// The first `max` items, each escaped for the format (`escape`), comma-separated, then
/// "and N more".
pub(crate) fn list_limited(
    items: &[String],
    max: usize,
    escape: impl Fn(&str) -> String,
) -> String {
    let shown: Vec<String> = items.iter().take(max).map(|i| escape(i)).collect();
    let mut s = shown.join(", ");
    if items.len() > max {
        let _ = write!(s, " and {} more", items.len() - max);
    }
    s
}

/// The files for the line under a report's title, escaped for the format.
pub(crate) fn files_inline(files: &[String], escape: impl Fn(&str) -> String) -> String {
    match files.len() {
        0 => "no files".to_string(),
        1 => list_limited(files, 1, escape),
        n => format!("{n} files: {}", list_limited(files, 3, escape)),
    }
}

/// Wire text (a greeting, a reply, a server name) for a sentence: control characters as
/// visible escapes (`\x1b`), at most `WIRE_MAX` characters (then `…`), in quotes. Each
/// format escapes the sentence again for itself (Markdown, HTML, JSON).
pub fn wire(s: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == WIRE_MAX {
            out.push('…');
            break;
        }
        if c.is_control() || c == '"' || c == '\\' {
            let _ = write!(out, "\\x{:02x}", u32::from(c).min(0xff));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Wire text kept in a sentence, in characters.
pub const WIRE_MAX: usize = 80;

/// An expected mail-flow row whose sessions opened but whose mail the server refused.
pub fn mail_refused(refused: u64, replied: u64, src: &Side, dst: &Side, port: u16) -> String {
    format!(
        "{} from {} to {} port {port} opened, but the server refused the mail in {} \
         (see the smtp_rejected finding for its reply): the firewall let it through; the \
         server's answer is what to look at.",
        plural(replied, "SMTP session", "SMTP sessions"),
        place(src),
        place(dst),
        if refused >= replied {
            "every one".to_string()
        } else {
            refused.to_string()
        },
    )
}

/// A finding's sentence: what happened and what to change.
pub fn finding(f: &crate::aggregate::findings::Finding, src: &Side, dst: &Side) -> String {
    use crate::aggregate::findings::{Kind, Stripped};
    let route = format!("from {} to {} port {}", place(src), place(dst), f.port);
    let n = plural(f.count, "SMTP session", "SMTP sessions");
    match f.kind {
        Kind::SmtpBannerMasked => format!(
            "{n} {route} got a greeting of asterisks ({}): a device in between rewrites SMTP, \
             as a Cisco ASA's `inspect esmtp` does. Turn the inspection off for this traffic \
             (`no inspect esmtp` in the policy map) or allow the banner through; Exchange \
             needs ESMTP intact.",
            wire(f.banner.as_deref().unwrap_or_default())
        ),
        Kind::StarttlsStripped => match f.stripped {
            Some(Stripped::Masked) => format!(
                "{n} {route}: the server's EHLO reply listed XXXXXXXA where STARTTLS was, so \
                 the mail goes unencrypted or a sender that requires TLS gives up. An ESMTP \
                 inspection (Cisco ASA `inspect esmtp`) masked it: turn the inspection off for \
                 this traffic or allow STARTTLS."
            ),
            _ => format!(
                "{n} {route}: the server's EHLO reply had no STARTTLS, while the same server \
                 offered it on another path: something on this path removed it (an SMTP \
                 inspection). Let ESMTP through unchanged."
            ),
        },
        Kind::SmtpCommandsMasked => format!(
            "{n} {route} carried commands overwritten with X characters (XXXX): an ESMTP \
             inspection (Cisco ASA `inspect esmtp`) blocks commands it does not know. Turn \
             the inspection off for this traffic, or allow the commands Exchange uses \
             (AUTH, BDAT, X-ANONYMOUSTLS, XEXCH50)."
        ),
        Kind::SmtpRejected => {
            let (cmd, code, text) = f
                .rejection
                .as_ref()
                .map(|(c, code, t)| (c.as_str(), *code, t.as_str()))
                .unwrap_or(("command", 0, ""));
            format!(
                "{n} {route} reached the server, which refused {cmd} with {code} {}: not the \
                 firewall; {}",
                wire(text),
                if code < 500 {
                    "a temporary refusal (the sender retries); see why the server defers it."
                } else {
                    "see the server's receive connector, recipient and sender rules."
                }
            )
        }
        Kind::TlsBlockedByName => {
            let mut passing: Vec<String> = f.passing_sni.iter().take(3).map(|n| wire(n)).collect();
            if f.passing_sni.len() > 3 {
                passing.push(format!("{} more", f.passing_sni.len() - 3));
            }
            let name = wire(f.sni.as_deref().unwrap_or_default());
            format!(
                "{} {route} sent a TLS ClientHello for {name} and {} cut right after it by a \
                 device in between (its reset's TTL is not the server's, or it dropped the \
                 connection), while handshakes naming {} with the same server and port completed: \
                 the firewall filters by TLS server name. Allow {name} in the firewall's TLS/URL \
                 filtering policy for this server.",
                plural(f.count, "connection", "connections"),
                if f.count == 1 { "was" } else { "were" },
                passing.join(", "),
            )
        }
        Kind::TlsHandshakeFailed => {
            use crate::aggregate::findings::By;
            let sni = f
                .sni
                .as_deref()
                .map(|s| format!(" for {}", wire(s)))
                .unwrap_or_default();
            let n = plural(f.count, "connection", "connections");
            match (f.alert, f.by) {
                (Some((false, _, d)), By::Client) => format!(
                    "{n} {route} sent a TLS ClientHello{sni}, got the server's hello, and the \
                     client gave up with TLS alert {}: it did not accept what the server sent. \
                     Check the server's certificate (its chain, names and dates) against what \
                     the clients trust, and the TLS versions and ciphers both sides allow.",
                    alert_words(d)
                ),
                (alert, by) => {
                    let who = match (alert, by) {
                        (Some((true, _, d)), _) => {
                            format!("the server answered with TLS alert {}", alert_words(d))
                        }
                        (Some((false, _, d)), _) => {
                            format!("the client gave up with TLS alert {}", alert_words(d))
                        }
                        (None, By::Firewall) => "a device in between reset it (the reset's TTL \
                                                 is not the server's)"
                            .to_string(),
                        (None, By::Server) => "the server reset it".to_string(),
                        _ => "it closed or was reset".to_string(),
                    };
                    format!(
                        "{n} {route} sent a TLS ClientHello{sni} and got no ServerHello: {who}. \
                         Check TLS inspection or server-name filtering on the firewall, and the \
                         server's certificate and TLS settings."
                    )
                }
            }
        }
        Kind::IdleTimeoutKill => idle_kill(f, &route),
    }
}

/// A TLS alert's description as a person looks it up: its number and, for the ones a failed
/// handshake ends with, its name (RFC 8446, section 6; TLS 1.2's as well).
fn alert_words(d: u8) -> String {
    let name = match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return d.to_string(),
    };
    format!("{d} ({name})")
}

/// Seconds as a person reads a timeout: "35 s", "5 min", "1 h".
fn span_words(s: u64) -> String {
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 120 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// `idle_timeout_kill`'s sentence: the bounds, the estimate, Exchange's needs, the fix.
fn idle_kill(f: &crate::aggregate::findings::Finding, route: &str) -> String {
    let Some(e) = f.idle else {
        return String::new();
    };
    let mut how = match (e.killed_reset, e.killed_unanswered) {
        (r, 0) => format!("{r} reset by a device in between: the reset's TTL is not its sender's"),
        (0, u) => format!("{u} whose packets after the gap were never answered"),
        (r, u) => format!("{r} reset by a device in between, {u} never answered"),
    };
    // What the clients did after the silent kills: a new connection to the same service.
    match (e.reconnected, e.killed_unanswered) {
        (0, _) => {}
        (1, 1) => how.push_str("; the client then opened a new connection"),
        (r, u) if r == u => how.push_str("; each client then opened a new connection"),
        (r, _) => how.push_str(&format!(
            "; after {r} of those the client opened a new connection"
        )),
    }
    let survived = if e.survived > 0 {
        format!(
            "the longest quiet gap that survived was {:.1} s ({} answered), ",
            e.idle_s_min(),
            plural(e.survived, "connection", "connections")
        )
    } else {
        String::new()
    };
    let estimate = match e.snapped_s() {
        Some(d) => format!(
            "an idle timeout of about {} ({d} s, a common default)",
            span_words(u64::from(d))
        ),
        None => format!(
            "an idle timeout between {:.0} s and {:.0} s",
            e.idle_s_min(),
            e.idle_s_killed().ceil()
        ),
    };
    let (need, fix) = match e.timeout_s() {
        t if t < 900 => (
            "far shorter than Exchange needs",
            "Raise the firewall's TCP idle (established) timeout for this traffic to 1800 s or more.",
        ),
        t if t < 1800 => (
            "shorter than the 30 minutes Microsoft recommends",
            "Raise the firewall's TCP idle (established) timeout for this traffic to 1800 s or more.",
        ),
        _ => (
            "as long as Microsoft asks, yet longer silences were killed",
            "Raise it above the longest silence the clients keep, or lower ActiveSync's \
             maximum heartbeat interval below it.",
        ),
    };
    format!(
        "{} {route} went quiet and were killed ({how}): {survived}the shortest that was \
         killed {:.1} s, so a device in between (a firewall's connection table) forgets \
         established connections after {estimate}, {need}. ActiveSync Direct Push and \
         MAPI/HTTP hold a connection quiet for up to ~30 minutes between heartbeats; \
         Microsoft asks for an idle timeout of at least 15 minutes, better 30 (KB 905013). \
         {fix}",
        plural(f.count, "connection", "connections"),
        e.idle_s_killed()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::infer::SignsSeen;

    #[test]
    fn only_exchange_s_own_signs_make_a_host_answer_like_exchange() {
        let h: std::net::IpAddr = "198.51.100.10".parse().unwrap();
        let windows = SignsSeen {
            windows_ttl: Some(117),
            server: Some((443, "Microsoft-IIS".into())),
            ..SignsSeen::default()
        };
        let s = inference_reason(&Reason::Signs(h, windows.clone()));
        assert!(
            s.contains("looks like a Windows server") && s.contains("no proof"),
            "{s}"
        );
        assert!(!s.contains("Exchange's own signs"), "{s}");
        let exchange = SignsSeen {
            banner: Some((25, "Microsoft ESMTP MAIL Service".into())),
            ..windows
        };
        let s = inference_reason(&Reason::Signs(h, exchange));
        assert!(
            s.starts_with("198.51.100.10 shows Exchange's own signs: its SMTP greeting on 25"),
            "{s}"
        );
        assert!(
            s.contains("Windows TTL (117)") && s.contains("names Microsoft-IIS"),
            "{s}"
        );
        let named = SignsSeen {
            sni_service: Some((443, "autodiscover".into())),
            ..SignsSeen::default()
        };
        let s = inference_reason(&Reason::Signs(h, named));
        assert!(
            s.ends_with(
                "shows Exchange's own signs: its clients ask for its autodiscover service by \
                 server name (TLS on 443)"
            ),
            "{s}"
        );
    }
}
