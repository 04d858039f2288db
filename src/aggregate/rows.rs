//! What aggregation concludes, as typed values: the rows of the report before any word of
//! it is written (the report turns them into sentences and tables).

use super::verdict::{AnsweredBy, Counts, Percentiles, Verdict};
use crate::classify::catalogue::Proto;
use crate::classify::rules::{Side, UnexpectedReason};
use crate::flow::history::History;
use crate::flow::ConnState;
use crate::time::Timestamp;
use std::net::IpAddr;

/// An ICMP unreachable that rejected an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// The address the ICMP error came from.
    pub from: IpAddr,
    /// Matched to the attempt by time and addresses (a log's separate ICMP record).
    pub by_address: bool,
}

/// Where a failed flow's packets stopped, as a capture on several interfaces shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// They entered the firewall and never left toward the destination, or the firewall
    /// answered for the destination.
    Firewall,
    /// They left the firewall toward the destination and got no answer, or the destination's
    /// side answered (its own host firewall, the service down).
    BeyondFirewall,
}

/// What stopped them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    Dropped,
    Refused,
    Rejected,
    Cut,
}

/// Where a failed flow died, with the two interfaces that show it: `entered` is where the
/// attempts (for a refusal or a cut: the RST) showed up, `toward` the destination's side (for
/// a cut: the side the RST's claimed sender's packets come from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiedAt {
    pub place: Place,
    pub how: Stopped,
    pub entered: u16,
    pub toward: u16,
}

/// What the capture's interfaces saw of a flow's failed attempts (all zero with one
/// interface, or from logs), summed over its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathFacts {
    /// Interfaces the failed attempts' SYNs were seen on, and where the first showed up.
    pub syn_ifaces: u32,
    pub syn_first: Option<u16>,
    /// Interfaces the RSTs that refused attempts were seen on.
    pub refused_rst: u32,
    /// Interfaces of mid-stream RSTs that the interfaces show were made in between, and the
    /// interface the first one's claimed sender's packets entered by (the client's side when
    /// the firewall reset the server in the client's name).
    pub cut_rst: u32,
    pub cut_from: Option<u16>,
}

impl PathFacts {
    pub fn merge(&mut self, o: &PathFacts) {
        self.syn_ifaces |= o.syn_ifaces;
        if self.syn_first.is_none() {
            self.syn_first = o.syn_first;
        }
        self.refused_rst |= o.refused_rst;
        self.cut_rst |= o.cut_rst;
        if self.cut_from.is_none() {
            self.cut_from = o.cut_from;
        }
    }
}

/// An expected flow (or an unsupported restriction) with the counts behind its verdict.
#[derive(Clone, Debug)]
pub struct FlowRow {
    /// The catalogue role's index.
    pub role: usize,
    /// The role's first port, or the port the restriction was seen on.
    pub port: u16,
    pub src: Side,
    pub dst: Side,
    pub counts: Counts,
    /// SYN → SYN-ACK over the established connections.
    pub handshake: Option<Percentiles>,
    pub verdict: Verdict,
    pub answered_by: Option<AnsweredBy>,
    /// (the RST's TTL, the server's usual TTL) of a refusal.
    pub refusal: Option<(u8, Option<u8>)>,
    /// Refusals whose records carry no TTL (conn.log, EVE): who sent the RST is unknown.
    pub refused_without_ttl: u64,
    /// The first few distinct ICMP rejections.
    pub rejections: Vec<Rejection>,
    /// Where it died, when the capture's interfaces tell (`None`: one vantage point, or
    /// they cannot tell).
    pub died_at: Option<DiedAt>,
    /// The public (NAT) address the flow's host was reached by, or sent from, and whether
    /// that host is the source (else the destination).
    pub via: Option<(IpAddr, bool)>,
    /// Not seen, from a place the capture shows no traffic from at all: a flow this capture
    /// point cannot see (folded in the report; `--fail-on not-seen` ignores it).
    pub out_of_view: bool,
    /// SMTP sessions whose mail (MAIL, RCPT, DATA, the message) got a reply, and of those,
    /// the ones the server refused (`findings`).
    pub mail_replied: u64,
    pub mail_refused: u64,
    /// The connections by Exchange service, where the TLS server name or the HTTP request
    /// tells ([`super::services`]): most attempts first. Empty when none told.
    pub services: Vec<super::services::ServiceCount>,
}

/// An example connection of an unexpected flow.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    pub conn_state: ConnState,
    pub history: History,
}

/// Traffic to or from Exchange hosts that no enabled role explains.
#[derive(Clone, Debug)]
pub struct UnexpectedRow {
    pub proto: Proto,
    pub port: u16,
    pub src: Side,
    pub dst: Side,
    pub attempts: u64,
    pub established: u64,
    pub reason: UnexpectedReason,
    /// The catalogue role's index that names this port, if any.
    pub role: Option<usize>,
    /// What happened to it, as an expected flow's row says (verdict, counts, who answered).
    pub outcome: FlowRow,
    pub first_ts: Timestamp,
    pub example: Example,
}

/// A port scan: a source whose probe-only conversations reach many ports.
#[derive(Clone, Debug)]
pub struct Scan {
    pub source: IpAddr,
    pub targets: Vec<IpAddr>,
    pub ports_probed: u64,
    /// Ports that answered SYN-ACK.
    pub open: Vec<u16>,
    /// Ports that answered RST.
    pub closed: u64,
    /// Ports that did not answer (or answered ICMP).
    pub filtered: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
}

/// A SYN flood: many sources sending single unanswered SYNs to one service.
#[derive(Clone, Debug)]
pub struct Flood {
    pub target: IpAddr,
    pub proto: Proto,
    pub port: u16,
    /// Distinct sources (at least: past the aggregator's cap, sources are summed).
    pub sources: u64,
    pub attempts: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
}

/// Handshake latency of one role, over every established connection of it.
#[derive(Clone, Debug)]
pub struct RoleLatency {
    /// The catalogue role's index.
    pub role: usize,
    pub connections: u64,
    pub syn_synack: Percentiles,
}

/// Everything aggregation concludes, before the capture facts and topology are added.
#[derive(Clone, Debug, Default)]
pub struct Finalized {
    pub expected: Vec<FlowRow>,
    pub unexpected: Vec<UnexpectedRow>,
    pub unsupported_restrictions: Vec<FlowRow>,
    pub scans: Vec<Scan>,
    pub floods: Vec<Flood>,
    pub latency: Vec<RoleLatency>,
    /// Conversations whose destination (or port too) was folded past the aggregator's caps.
    pub fold: super::FoldCounts,
    /// Exchange-level findings from the payload look, worst first.
    pub findings: Vec<super::findings::Finding>,
}
