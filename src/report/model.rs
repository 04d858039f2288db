//! The Exchange verdict report as data: what every output format renders. Field names follow
//! PRODUCT.md "JSON report, schema 1" exactly; fields may be added, never renamed or dropped.

pub use crate::aggregate::verdict::{AnsweredBy, Percentiles, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;

/// The most entries a list of the report keeps (unexpected flows, unsupported restrictions,
/// scans, floods, warnings, topology hosts): the ones with the most attempts (sources,
/// ports) stay; how many were left out is in [`Report::left_out`] and printed as "… and N
/// more" by every format. Expected flows, which the exit gate reads, are never cut.
pub const LIST_MAX: usize = 200;

/// Bumped only when a field is renamed or removed (never, by policy).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub capture: CaptureFacts,
    pub topology: Topology,
    /// One entry per expected flow (role × source × destination) of the site's profile.
    pub expected: Vec<FlowEntry>,
    /// Traffic to or from Exchange hosts that no enabled role explains.
    pub unexpected: Vec<Unexpected>,
    /// Drops or resets on internal Exchange ↔ Exchange / Exchange ↔ DC traffic, which
    /// Microsoft does not support restricting.
    pub unsupported_restrictions: Vec<FlowEntry>,
    /// Port scans found in the capture; their probes are kept out of the verdicts.
    pub scans: Vec<Scan>,
    /// SYN floods: many sources sending single unanswered SYNs to one service; kept out of
    /// the verdicts like scans.
    pub floods: Vec<Flood>,
    /// Handshake latency per role, over every established connection of that role.
    pub latency: Vec<RoleLatency>,
    /// Plain-language warnings about how far the report can be trusted.
    pub warnings: Vec<String>,
    /// Entries left out of a list past [`LIST_MAX`], by the list's field name
    /// (`unexpected`, `unsupported_restrictions`, `scans`, `floods`, `warnings`,
    /// `topology.hosts`); left out when every list is whole.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<&'static str, u64>,
    /// Live capture only: whether this is an interim report (false for the final one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interim: Option<bool>,
    /// The input files and their kinds, when any held connection records (left out for
    /// packets alone, whose reports stay as they were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    /// What the first bytes of connections showed the firewall (or the server) did: an ESMTP
    /// inspection, refused mail, failed TLS handshakes; worst first. Left out when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// A finding (PRODUCT.md, "Exchange-level signs").
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// smtp_banner_masked | starttls_stripped | smtp_commands_masked | smtp_rejected |
    /// tls_handshake_failed | tls_blocked_by_name | idle_timeout_kill
    pub kind: &'static str,
    pub proto: &'static str,
    pub port: u16,
    pub src: Side,
    pub dst: Side,
    /// Connections that showed it.
    pub count: u64,
    /// firewall | server | unknown
    pub by: &'static str,
    /// What happened and what to change (wire text in it is escaped where printed).
    pub detail: String,
    pub example: Example,
    /// tls kinds: the server name the client asked for (raw; escaped where printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// tls_handshake_failed: the alert that ended the handshake, and who sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<TlsAlert>,
    /// smtp_rejected: the reply code and text, and the command refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'static str>,
    /// smtp_banner_masked: the greeting as it arrived (raw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// tls_blocked_by_name: the names whose handshakes with the same server and port
    /// completed (raw; escaped where printed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub passing_sni: Vec<String>,
    /// idle_timeout_kill: the longest quiet gap that survived (seconds; 0 when none did),
    /// the estimated timeout (a common default when exactly one lies between the bounds,
    /// else the shortest killed gap, rounded up), the shortest killed gap, and the counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_s_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_s_killed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_snapped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gaps_survived: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gaps_reset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gaps_unanswered: Option<u64>,
    /// idle_timeout_kill: of the `gaps_unanswered` connections, those whose client then
    /// opened a new connection to the same server address and port (within 10 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gaps_reconnected: Option<u64>,
}

/// A TLS alert: who sent it (server | client), its level (1 warning, 2 fatal) and
/// description (RFC 8446's registry: 48 unknown_ca, 70 protocol_version, ...).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TlsAlert {
    pub from: &'static str,
    pub level: u8,
    pub description: u8,
}

/// An input file: its kind and, for records, what was read from it.
#[derive(Clone, Debug, Serialize)]
pub struct Input {
    pub file: String,
    /// pcap, pcapng, zeek, eve or exflow.
    pub kind: &'static str,
    /// Connection records read (record kinds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed_lines: Option<u64>,
    /// eve.json: events of other types, skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_events: Option<u64>,
    /// ICMP error records attached to the attempts they answered, by time and addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_attached: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureFacts {
    pub files: Vec<String>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub link_types: Vec<String>,
    /// Decode anomalies by kind (non-IP frames are listed as `not_ip`).
    pub anomalies: BTreeMap<String, u64>,
    /// Tunnel headers opened (GRE, ERSPAN, VXLAN, Geneve) by kind; left out when none were.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tunnels: BTreeMap<String, u64>,
    pub evicted_flows: u64,
    /// Packets the kernel dropped (live capture only; null for files).
    pub kernel_drops: Option<u64>,
    /// Connections tracked.
    pub connections: u64,
    /// Packets seen twice (a capture taken on several interfaces at once), not counted again.
    pub duplicate_packets: u64,
    /// Warnings from reading the files (e.g. a capture cut off in a record).
    pub read_warnings: Vec<String>,
    /// The capture interfaces (a pcap file is one; every pcapng interface is one).
    pub interfaces: Vec<InterfaceFact>,
    /// Packets that stepped back in time and were put back in order.
    pub reordered: u64,
    /// The largest step back in time, in milliseconds.
    pub max_step_back_ms: f64,
    /// Live capture only: packets the interface dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_drops: Option<u64>,
    /// Live capture only: packets dropped because the analyzer's queue was full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_drops: Option<u64>,
    /// `--filter` on files: the expression and how many of the packets read it let through
    /// (left out without a filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterFact>,
    /// Ethernet frames with an 802.1Q / 802.1ad VLAN tag, counted before the filter (left out
    /// when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub vlan_tagged: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What `--filter` did: `matched` of the `of` packets read passed it.
#[derive(Clone, Debug, Serialize)]
pub struct FilterFact {
    pub expression: String,
    pub matched: u64,
    pub of: u64,
}

/// A capture interface.
#[derive(Clone, Debug, Serialize)]
pub struct InterfaceFact {
    pub id: u16,
    /// Its name (pcapng `if_name`), when the capture gives one.
    pub name: Option<String>,
    pub link_type: String,
    pub packets: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Topology {
    pub inferred: bool,
    pub profile: &'static str,
    pub hosts: Vec<TopologyHost>,
    pub internal: Vec<String>,
    pub perimeter: Vec<String>,
    /// Why each inferred fact was inferred (empty for a site file).
    pub reasons: Vec<String>,
    /// The site file, when one was given.
    pub site_file: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopologyHost {
    pub address: String,
    pub role: &'static str,
}

/// One side of a flow: a zone, and where a concrete host is meant, its role and address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Side {
    pub zone: &'static str,
    pub role: Option<&'static str>,
    pub address: Option<String>,
    /// The public (NAT) address the host was reached by or sent from; left out when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// How a flow's host was reached other than by its own address.
#[derive(Clone, Debug, Serialize)]
pub struct Via {
    pub nat: String,
}

/// An expected flow (or an unsupported restriction) with the counts behind its verdict.
#[derive(Clone, Debug, Serialize)]
pub struct FlowEntry {
    pub role: String,
    pub purpose: String,
    pub proto: &'static str,
    pub port: u16,
    /// All ports of the role when it has more than one (e.g. 5075-5077), as text.
    pub ports: String,
    pub src: Side,
    pub dst: Side,
    pub attempts: u64,
    pub established: u64,
    pub dropped: u64,
    pub refused: u64,
    pub rejected: u64,
    pub reset_midstream: u64,
    pub syn_retries: u64,
    /// Connections where only one direction was captured.
    pub one_sided: u64,
    /// RSTs taken for spoofed or ignored (outside their receiver's window, or followed by
    /// data or a FIN from their receiver): never a reset mid-stream. Absent when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub ignored_resets: u64,
    /// Mail rows whose mail the server refused, from the payload look: the SMTP sessions that
    /// got replies to their mail commands, and of those, the ones whose mail was refused
    /// (4xx/5xx to MAIL, RCPT or DATA, and no message accepted). Both absent when none was.
    #[serde(skip_serializing_if = "is_zero")]
    pub mail_sessions: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub mail_refused: u64,
    /// The row's connections by Exchange service, where the TLS server name (`sni`) or the
    /// HTTP request's path or Host (`http`) tells: most attempts first, then by name. A name
    /// or path that names no Exchange service counts as `other`. `established` is the
    /// service's own exchange (TLS: a ServerHello came back; HTTP: a status line came back),
    /// not the TCP handshake. Absent (never an empty list) when no connection of the row
    /// carried a server name or an HTTP request (ports other than HTTP(S), connection
    /// records without payload facts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEntry>,
    pub handshake_ms: Option<Percentiles>,
    pub verdict: Verdict,
    /// Who answered a refusal or reset: "server", "middlebox" (by TTL), or "unknown".
    pub answered_by: Option<AnsweredBy>,
    /// ICMP codes seen for rejections, e.g. "3/13 admin-prohibited".
    pub icmp: Vec<String>,
    pub detail: String,
    /// The address family the flow's host address is of ("ipv4", "ipv6"; null between
    /// zones).
    pub family: Option<&'static str>,
    /// The NAT address the flow went through, if any.
    pub via: Option<Via>,
    /// Not seen, from a place the capture shows no traffic from at all (internal clients, on
    /// a capture at the internet edge): folded into one line in the table and Markdown, and
    /// ignored by `--fail-on not-seen`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub out_of_view: bool,
    /// Where a failed flow died: "firewall" or "beyond_firewall" when the capture's interfaces
    /// show it, null otherwise (one vantage point: the capture cannot tell).
    pub died_at: Option<&'static str>,
    /// What this verdict's evidence cannot show (from connection records without TTLs:
    /// `who_refused`). Left out when empty (always, for packets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cannot_show: Vec<&'static str>,
    /// For a failed flow (blocked, refused, rejected, flaky, cut; every unsupported
    /// restriction): the allow rule that fixes it, as `exflow rules --report` picks it. Not in
    /// the JSON report (`exflow rules --report` computes the same from it).
    #[serde(skip)]
    pub fix: Option<Fix>,
}

/// The fix of a failed flow: what to allow, in words, and the nftables commands that allow it
/// (from the rules generator, `report::rules`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    /// "allow tcp/25 from the internet to mailbox 198.51.100.10".
    pub words: String,
    /// One `nft insert rule inet filter forward … accept` command per rule (one per address
    /// family, and per direction for an allow-all); empty when the site gives the generator
    /// no address to write a rule with.
    pub nft: Vec<String>,
}

/// An example connection of an unexpected flow, with Zeek's field names.
#[derive(Clone, Debug, Serialize)]
pub struct Example {
    #[serde(rename = "id.orig_h")]
    pub orig_h: String,
    #[serde(rename = "id.orig_p")]
    pub orig_p: u16,
    #[serde(rename = "id.resp_h")]
    pub resp_h: String,
    #[serde(rename = "id.resp_p")]
    pub resp_p: u16,
    pub conn_state: &'static str,
    pub history: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Unexpected {
    pub proto: &'static str,
    pub port: u16,
    pub src: Side,
    pub dst: Side,
    pub attempts: u64,
    pub established: u64,
    /// disabled-service | internal-only-exposed | not-in-profile | unknown-port |
    /// unexpected-source | undeclared-destination
    pub reason: &'static str,
    /// A disabled service seen established only by a few packets (no completed handshake
    /// with data both ways, which a blind spoofer cannot fake): likely in use, not proven.
    /// Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub likely: bool,
    /// What happened to it, as an expected flow's verdict (refused, blocked, …).
    pub verdict: Verdict,
    /// The catalogue role that names this port, if any.
    pub role: Option<String>,
    pub first_ts: f64,
    pub example: Example,
    pub detail: String,
    /// Its connections by Exchange service, as [`FlowEntry::services`]; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEntry>,
}

/// The connections of one Exchange service in a row (see [`FlowEntry::services`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceEntry {
    /// autodiscover | owa | ecp | ews | mapi | activesync | rpc | oab | powershell | other
    pub name: &'static str,
    /// sni | http
    pub evidence: &'static str,
    pub attempts: u64,
    pub established: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Scan {
    pub source: String,
    pub targets: Vec<String>,
    pub ports_probed: u64,
    /// Ports that answered SYN-ACK.
    pub open: Vec<u16>,
    /// Ports that answered RST.
    pub closed: u64,
    /// Ports that did not answer (or answered ICMP).
    pub filtered: u64,
    pub first_ts: f64,
    pub last_ts: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Flood {
    /// The flooded host and port.
    pub target: String,
    pub proto: &'static str,
    pub port: u16,
    /// Distinct sources that sent only single unanswered SYNs (at least; past the
    /// aggregator's cap, sources are summed).
    pub sources: u64,
    /// SYNs (connection attempts) from those sources.
    pub attempts: u64,
    pub first_ts: f64,
    pub last_ts: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RoleLatency {
    pub role: String,
    pub connections: u64,
    /// SYN → SYN-ACK, as seen at the capture point.
    pub syn_synack_ms: Percentiles,
}
