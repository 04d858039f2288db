//! `aggregate`: from finished connections to the report's flows. Connections are folded into
//! groups as they end (originator address × responder address × protocol × port), which keeps
//! memory proportional to distinct conversations, not connections. When the capture ends,
//! the groups are classified against the site (given, or inferred from the same groups) and
//! summed into expected flows, unexpected flows, unsupported restrictions and scans, each
//! with its verdict.

pub mod evidence;
pub mod findings;
pub mod stats;
pub mod verdict;

pub mod rows;

use crate::classify::catalogue::{Catalogue, Proto};
use crate::classify::infer::Conversation;
use crate::classify::rules::{
    classify, same_place, sides_of, unrestricted_role, Class, ConvKey, Side, UnexpectedReason,
};
use crate::classify::site::Site;
use crate::flow::history::History;
use crate::flow::{ConnRecord, ConnState, Sink};
use crate::time::Timestamp;
use evidence::{Evidence, Failure};
use rows::{
    Example, Finalized, Flood, FlowRow, PathFacts, Rejection, RoleLatency, Scan, UnexpectedRow,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use verdict::Counts;

/// Conversations are keyed as the classification rules read them.
pub type GroupKey = ConvKey;

/// What the connections of one conversation added up to.
#[derive(Clone, Debug)]
pub struct Group {
    /// Distinct sources summed into this group (1, or more for an overflow group).
    pub sources: u64,
    /// An overflow group: conversations past [`MAX_GROUPS`] from many sources, keyed by a
    /// stand-in source address (see `fold_source`), never read as one host's traffic.
    pub folded: bool,
    /// The source of the earliest connection (the real one, also in a folded group).
    pub example_orig_h: IpAddr,
    pub first_ts: Timestamp,
    /// End of the latest connection.
    pub last_ts: Timestamp,
    pub example_orig_p: u16,
    pub example_state: ConnState,
    pub example_history: History,
    pub conns: u64,
    pub counts: Counts,
    pub probes: u64,
    /// TTL of the first RST that refused an attempt.
    pub refused_ttl: Option<u8>,
    /// Refusals whose record carries no TTL (conn.log, EVE): who sent the RST is unknown.
    pub refused_no_ttl: u64,
    /// The first few distinct ICMP rejections.
    pub icmp: Vec<Rejection>,
    /// SYN → SYN-ACK times, microseconds.
    pub handshake_us: Vec<u32>,
    /// The responder's usual TTL, from an answered handshake.
    pub resp_ttl: Option<u8>,
    /// Interfaces the originator's and the responder's packets were seen on.
    pub seen: [u32; 2],
    /// Where the originator's and the responder's packets showed up first, from a connection
    /// whose packets crossed interfaces (the host's side of the firewall).
    pub ingress: [Option<u16>; 2],
    /// What the interfaces saw of the failed attempts.
    pub path: PathFacts,
    /// The NAT address a translated connection was joined by (its public side).
    pub via: Option<IpAddr>,
}

impl Group {
    fn new(r: &ConnRecord) -> Group {
        Group {
            sources: 1,
            folded: false,
            example_orig_h: r.orig.ip(),
            first_ts: r.ts,
            last_ts: r.ts.plus(r.duration),
            example_orig_p: r.orig.port(),
            example_state: r.conn_state,
            example_history: r.history,
            conns: 0,
            counts: Counts::default(),
            probes: 0,
            refused_ttl: None,
            refused_no_ttl: 0,
            icmp: vec![],
            handshake_us: vec![],
            resp_ttl: None,
            seen: [0; 2],
            ingress: [None; 2],
            path: PathFacts::default(),
            via: r.via,
        }
    }

    fn add(&mut self, r: &ConnRecord, o: &Evidence) {
        if r.ts < self.first_ts {
            self.first_ts = r.ts;
            self.example_orig_h = r.orig.ip();
            self.example_orig_p = r.orig.port();
            self.example_state = r.conn_state;
            self.example_history = r.history;
        }
        self.last_ts = self.last_ts.max(r.ts.plus(r.duration));
        self.conns += 1;
        let c = &mut self.counts;
        c.attempts += o.attempt as u64;
        c.established += o.established as u64;
        c.one_sided += o.one_sided as u64;
        c.syn_retries += o.syn_retries as u64;
        self.probes += o.probe as u64;
        if self.resp_ttl.is_none() {
            self.resp_ttl = o.resp_ttl;
        }
        for (i, d) in [&r.orig_stats, &r.resp_stats].into_iter().enumerate() {
            self.seen[i] |= d.ifaces;
            if d.ifaces.count_ones() >= 2 && self.ingress[i].is_none() {
                self.ingress[i] = Some(d.first_iface);
            }
        }
        if self.via.is_none() {
            self.via = r.via;
        }
        if o.failure.is_some() && r.orig_stats.ifaces != 0 {
            self.path.syn_ifaces |= r.orig_stats.ifaces;
            self.path.syn_first.get_or_insert(r.orig_stats.first_iface);
        }
        if matches!(o.failure, Some(Failure::Refused { .. })) {
            self.path.refused_rst |= r.rst_ifaces;
        }
        if let Some(reset) = o.reset {
            if reset.by_interfaces() == Some(true) {
                self.path.cut_rst |= reset.rst_ifaces;
            }
        }
        match o.failure {
            Some(Failure::Dropped) => self.counts.dropped += 1,
            Some(Failure::Refused { rst_ttl }) => {
                self.counts.refused += 1;
                match rst_ttl {
                    Some(t) => {
                        self.refused_ttl.get_or_insert(t);
                    }
                    None => self.refused_no_ttl += 1,
                }
            }
            Some(Failure::Rejected {
                v6,
                icmp_type,
                code,
                from,
                by_address,
            }) => {
                self.counts.rejected += 1;
                let e = Rejection {
                    v6,
                    icmp_type,
                    code,
                    from,
                    by_address,
                };
                if self.icmp.len() < 4 && !self.icmp.contains(&e) {
                    self.icmp.push(e);
                }
            }
            None => {}
        }
        if let Some(reset) = o.reset {
            match reset.by_middlebox() {
                Some(true) => self.counts.reset_by_middlebox += 1,
                Some(false) => self.counts.reset_by_endpoint += 1,
                None => self.counts.reset_unknown += 1,
            }
        }
        if let Some(us) = o.handshake_us {
            self.handshake_us.push(us);
        }
    }

    /// Every connection of the group looks like a scanner's probe.
    pub fn all_probes(&self) -> bool {
        self.probes == self.conns
    }

    /// Only single SYNs that got no answer at all and were never retransmitted: a flooding
    /// (or spoofed) source. Refused or ICMP-rejected attempts are real answers to real
    /// clients (who do not retry after a RST), so they never count as flood.
    pub fn flood_like(&self) -> bool {
        self.all_probes()
            && self.counts.established == 0
            && self.counts.syn_retries == 0
            && self.counts.dropped == self.conns
    }

    fn failures(&self) -> u64 {
        self.counts.failed() + self.counts.reset_by_middlebox
    }
}

/// Collects finished connections (a [`Sink`]).
///
/// Memory is bounded: past [`MAX_GROUPS`] conversations, a conversation from a source not yet
/// seen is summed into one group per destination service whose source is the unspecified
/// address (read as "the internet"; flood-like single SYNs and the rest apart), counting how
/// many conversations were folded in.
#[derive(Clone, Debug)]
pub struct Aggregator {
    groups: HashMap<GroupKey, Group>,
    max_groups: usize,
    /// Conversations folded into the per-service overflow groups.
    pub folded: u64,
    /// What the payload looks of the connections showed, per conversation.
    looks: findings::Looks,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::with_max_groups(MAX_GROUPS)
    }
}

/// The most conversations kept apart (a group costs about 200 bytes).
pub const MAX_GROUPS: usize = 100_000;

/// A service reached by at least this many sources that each sent one unanswered SYN (no
/// retransmission: spoofed or flooding sources never retry, real clients do) is flooded.
pub const FLOOD_MIN_SOURCES: u64 = 100;

impl Sink for Aggregator {
    fn conn(&mut self, r: &ConnRecord) {
        if !r.proto.has_ports() {
            return;
        }
        let mut key = GroupKey {
            proto: r.proto,
            orig: r.orig.ip(),
            resp: r.resp.ip(),
            port: r.resp.port(),
        };
        let o = Evidence::of(r);
        let mut folded = false;
        if self.groups.len() >= self.max_groups && !self.groups.contains_key(&key) {
            // Flood-like single SYNs and everything else are folded apart, so that a flood
            // folded in never hides (or is hidden by) real clients.
            let flood_like = o.probe
                && !o.established
                && o.syn_retries == 0
                && o.failure == Some(Failure::Dropped);
            key.orig = fold_source(key.resp, flood_like);
            self.folded += 1;
            folded = true;
        }
        let g = self.groups.entry(key).or_insert_with(|| {
            let mut g = Group::new(r);
            if folded {
                g.sources = 0;
                g.folded = true;
            }
            g
        });
        if folded {
            g.sources += 1;
        }
        g.add(r, &o);
        self.looks.add(&key, r);
    }
}

/// Sources that probed at least this many distinct ports with nothing but probes are
/// scanners.
const SCAN_MIN_PORTS: usize = 10;

impl Aggregator {
    /// An aggregator that keeps at most `max_groups` conversations apart.
    pub fn with_max_groups(max_groups: usize) -> Aggregator {
        Aggregator {
            groups: HashMap::new(),
            max_groups,
            folded: 0,
            looks: findings::Looks::default(),
        }
    }

    pub fn groups(&self) -> impl Iterator<Item = (&GroupKey, &Group)> {
        self.groups.iter()
    }

    /// Port scans: sources whose probe-only conversations reach many distinct ports.
    pub fn scans(&self) -> Vec<Scan> {
        let mut by_source: BTreeMap<IpAddr, Vec<(&GroupKey, &Group)>> = BTreeMap::new();
        for (k, g) in &self.groups {
            // A folded group's source is a stand-in for many: never a scanner.
            if k.proto == Proto::Tcp && g.all_probes() && !g.folded {
                by_source.entry(k.orig).or_default().push((k, g));
            }
        }
        let mut out = vec![];
        for (src, groups) in by_source {
            let ports: BTreeSet<u16> = groups.iter().map(|(k, _)| k.port).collect();
            if ports.len() < SCAN_MIN_PORTS {
                continue;
            }
            let targets: BTreeSet<IpAddr> = groups.iter().map(|(k, _)| k.resp).collect();
            let mut open = BTreeSet::new();
            let (mut closed, mut filtered) = (0, 0);
            for (k, g) in &groups {
                if g.counts.established > 0 {
                    open.insert(k.port);
                } else if g.counts.refused > 0 {
                    closed += 1;
                } else {
                    filtered += 1;
                }
            }
            let first = groups
                .iter()
                .map(|(_, g)| g.first_ts)
                .min()
                .unwrap_or_default();
            let last = groups
                .iter()
                .map(|(_, g)| g.last_ts)
                .max()
                .unwrap_or_default();
            out.push(Scan {
                source: src,
                targets: targets.into_iter().collect(),
                ports_probed: ports.len() as u64,
                open: open.into_iter().collect(),
                closed,
                filtered,
                first_ts: first,
                last_ts: last,
            });
        }
        out
    }

    /// SYN floods: services that many sources reached with single unanswered SYNs.
    pub fn floods(&self) -> Vec<Flood> {
        /// Sources, SYNs, first and last time of the flood SYNs to one service.
        struct Acc(u64, u64, Timestamp, Timestamp);
        let mut by_target: BTreeMap<(IpAddr, u16), Acc> = BTreeMap::new();
        for (k, g) in &self.groups {
            if k.proto == Proto::Tcp && g.flood_like() {
                let e = by_target
                    .entry((k.resp, k.port))
                    .or_insert(Acc(0, 0, g.first_ts, g.last_ts));
                e.0 += g.sources;
                e.1 += g.counts.attempts;
                e.2 = e.2.min(g.first_ts);
                e.3 = e.3.max(g.last_ts);
            }
        }
        by_target
            .into_iter()
            .filter(|(_, a)| a.0 >= FLOOD_MIN_SOURCES)
            .map(
                |((target, port), Acc(sources, attempts, first, last))| Flood {
                    target,
                    proto: Proto::Tcp,
                    port,
                    sources,
                    attempts,
                    first_ts: first,
                    last_ts: last,
                },
            )
            .collect()
    }

    /// Is this conversation a scanner's probe or part of a flood (kept out of verdicts)?
    pub fn is_scan_probe(noise: &Noise, k: &GroupKey, g: &Group) -> bool {
        (noise.scanners.contains(&k.orig) && g.all_probes())
            || (noise.flooded.contains(&(k.resp, k.port)) && g.flood_like())
    }

    /// The scanners and flooded services of this capture.
    pub fn noise(&self) -> Noise {
        Noise {
            scanners: self.scans().iter().map(|s| s.source).collect(),
            flooded: self.floods().iter().map(|f| (f.target, f.port)).collect(),
        }
    }

    /// Classifies every conversation against the site and sums it into the report's lists.
    pub fn finalize(&self, site: &Site, cat: &Catalogue) -> Finalized {
        let scans = self.scans();
        let floods = self.floods();
        let noise = self.noise();
        let mut expected: BTreeMap<(usize, Side, Side), Acc> = BTreeMap::new();
        // Every flow the site expects, seen or not.
        for (i, role) in cat.roles().iter().enumerate() {
            if role.unrestricted || !site.expects(role) {
                continue;
            }
            for s in sides_of(role.src.as_slice(), site) {
                for d in sides_of(role.dst.as_slice(), site) {
                    if s.address.is_some() && s.address == d.address {
                        continue;
                    }
                    expected.entry((i, s, d)).or_default();
                }
            }
        }
        // Usual TTL of every host that answered a handshake; where each host's packets were
        // seen, and on which side of the firewall it is.
        let mut hosts = Hosts::default();
        for (k, g) in &self.groups {
            if let Some(t) = g.resp_ttl {
                hosts.ttl.entry(k.resp).or_insert(t);
            }
            let both = g.seen[0] | g.seen[1];
            for (i, addr) in [k.orig, k.resp].into_iter().enumerate() {
                if both != 0 {
                    *hosts.seen.entry(addr).or_default() |= both;
                }
                if let Some(at) = g.ingress[i] {
                    hosts.ingress.entry(addr).or_insert(at);
                }
            }
        }
        // Where traffic came from, as the site places it: what the capture point can see.
        let mut sources = Sources::default();
        for k in self.groups.keys() {
            sources.saw(k.orig, site);
            sources.host(k.resp, site);
        }
        let mut unexpected: BTreeMap<(Proto, u16, Side, Side, UnexpectedReason), UnexpAcc> =
            BTreeMap::new();
        let mut unsupported: BTreeMap<(usize, Side, Side, u16), Acc> = BTreeMap::new();
        let mut latency: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        let mut keys: Vec<&GroupKey> = self.groups.keys().collect();
        keys.sort();
        for k in keys {
            let g = &self.groups[k];
            if Self::is_scan_probe(&noise, k, g) {
                continue;
            }
            // A NAT address the conversation used (the public side of a translated host).
            let via = [k.orig, k.resp]
                .into_iter()
                .find(|&a| site.host_of(a).is_some_and(|h| h.has_nat(a)))
                .or(g.via);
            match classify(k, site, cat) {
                Class::Expected(i, s, d) => {
                    let acc = expected.entry((i, s, d)).or_default();
                    acc.add(k, g);
                    if acc.via.is_none() {
                        // On the side of the host the NAT address stands for.
                        let owner = |side: &Side| {
                            side.address.zip(via).is_some_and(|(a, v)| {
                                site.host_of(a)
                                    .is_some_and(|h| h.has_address(a) && h.has_nat(v))
                            })
                        };
                        acc.via = via.map(|v| (v, owner(&s) || !owner(&d)));
                    }
                    latency.entry(i).or_default().extend(&g.handshake_us);
                    if site.is_exchange(k.orig) && site.is_exchange(k.resp) && g.failures() > 0 {
                        // Exchange ↔ Exchange must never be restricted.
                        if let Some((ui, us, ud)) = unrestricted_role(k, site, cat) {
                            unsupported
                                .entry((ui, us, ud, k.port))
                                .or_default()
                                .add(k, g);
                        }
                    }
                }
                Class::Unrestricted(i, s, d) => {
                    if g.failures() > 0 {
                        unsupported.entry((i, s, d, k.port)).or_default().add(k, g);
                    }
                }
                Class::Unexpected {
                    reason,
                    role,
                    src,
                    dst,
                } => {
                    let acc = unexpected
                        .entry((k.proto, k.port, src, dst, reason))
                        .or_insert_with(|| UnexpAcc {
                            role,
                            attempts: 0,
                            established: 0,
                            flow: Acc::default(),
                            first_ts: g.first_ts,
                            example: (
                                *k,
                                g.example_orig_h,
                                g.example_orig_p,
                                g.example_state,
                                g.example_history,
                            ),
                        });
                    acc.attempts += g.counts.attempts.max(g.conns);
                    acc.established += g.counts.established;
                    acc.flow.add(k, g);
                    if g.first_ts < acc.first_ts {
                        acc.first_ts = g.first_ts;
                        acc.example = (
                            *k,
                            g.example_orig_h,
                            g.example_orig_p,
                            g.example_state,
                            g.example_history,
                        );
                    }
                }
                Class::Unrelated => {}
            }
        }
        let expected: Vec<FlowRow> = expected
            .into_iter()
            .map(|((i, s, d), acc)| acc.row(cat, i, s, d, None, &hosts))
            .collect();
        // A dual-stack host's flow is a row per address family tried; the row of its first
        // address stays only while no family was tried.
        let tried: Vec<(usize, Side, Side)> = expected
            .iter()
            .filter(|r| r.verdict != verdict::Verdict::NotSeen)
            .map(|r| (r.role, r.src, r.dst))
            .collect();
        let expected = expected
            .into_iter()
            .filter(|r| {
                r.verdict != verdict::Verdict::NotSeen
                    || !tried.iter().any(|(i, s, d)| {
                        *i == r.role
                            && (*s, *d) != (r.src, r.dst)
                            && same_place(s, &r.src, site)
                            && same_place(d, &r.dst, site)
                    })
            })
            .map(|mut r| {
                r.out_of_view = r.verdict == verdict::Verdict::NotSeen && !sources.covers(&r.src);
                r
            })
            .collect();
        let unsupported_restrictions = unsupported
            .into_iter()
            .map(|((i, s, d, port), acc)| acc.row(cat, i, s, d, Some(port), &hosts))
            .collect();
        let unexpected = unexpected
            .into_iter()
            .map(|((proto, port, src, dst, reason), a)| {
                a.row(proto, port, src, dst, reason, &hosts)
            })
            .collect();
        let latency = latency
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(role, v)| RoleLatency {
                role,
                connections: v.len() as u64,
                syn_synack: verdict::percentiles(&v),
            })
            .collect();
        let mut fin = Finalized {
            expected,
            unexpected,
            unsupported_restrictions,
            scans,
            floods,
            latency,
            findings: Vec::new(),
        };
        self.looks.apply(site, cat, &mut fin);
        fin
    }

    /// What inference reads of each conversation, scanners' probes and floods left out.
    pub fn conversations(&self) -> Vec<Conversation> {
        let noise = self.noise();
        let mut out: Vec<Conversation> = self
            .groups
            .iter()
            .filter(|(k, g)| !Self::is_scan_probe(&noise, k, g))
            .map(|(k, g)| Conversation {
                key: *k,
                attempts: g.counts.attempts,
                established: g.counts.established,
                one_sided: g.counts.one_sided,
            })
            .collect();
        out.sort_by_key(|c| c.key);
        out
    }
}

/// Conversations to keep out of the verdicts: scanners' probes and flood SYNs.
pub struct Noise {
    pub scanners: BTreeSet<IpAddr>,
    pub flooded: BTreeSet<(IpAddr, u16)>,
}

/// The stand-in source of folded conversations: the unspecified address (0.0.0.0, ::) for
/// flood-like single SYNs, 0.0.0.1 / ::2 for the rest. Neither is in any site's networks, so
/// both read as the internet.
fn fold_source(like: IpAddr, flood_like: bool) -> IpAddr {
    match (like, flood_like) {
        (IpAddr::V4(_), true) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        (IpAddr::V4(_), false) => IpAddr::V4(std::net::Ipv4Addr::new(0, 0, 0, 1)),
        (IpAddr::V6(_), true) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        (IpAddr::V6(_), false) => IpAddr::V6(std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2)),
    }
}

/// The places conversations came from (the site's zones, host roles and addresses): a flow
/// from a place that sent nothing at all is one the capture point cannot see (internal
/// clients, on a capture at the internet edge), not one that was tried and failed.
#[derive(Default)]
struct Sources {
    zones: BTreeSet<crate::classify::catalogue::Zone>,
    /// Internal hosts the site does not name (what the "client" place stands for) or names
    /// as clients.
    clients: bool,
    addresses: BTreeSet<IpAddr>,
}

impl Sources {
    /// A conversation's originator: its zone, whether it is a client, the host.
    fn saw(&mut self, ip: IpAddr, site: &Site) {
        let zone = site.zone_of(ip);
        self.zones.insert(zone);
        match site.role_of(ip) {
            Some(crate::classify::catalogue::HostRole::Client) => self.clients = true,
            None if zone != crate::classify::catalogue::Zone::Internet => self.clients = true,
            _ => {}
        }
        self.host(ip, site);
    }

    /// A host seen at all (originating or answering): the capture point sees its traffic.
    fn host(&mut self, ip: IpAddr, site: &Site) {
        if let Some(h) = site.host_of(ip) {
            self.addresses.extend(h.addresses.iter().copied());
        }
        self.addresses.insert(ip);
    }

    /// Whether the capture shows anything at all from this side.
    fn covers(&self, s: &Side) -> bool {
        match (s.address, s.role) {
            (Some(a), _) => self.addresses.contains(&a),
            (None, Some(crate::classify::catalogue::HostRole::Client)) => self.clients,
            _ => self.zones.contains(&s.zone),
        }
    }
}

/// What the whole capture says about each host: its usual TTL, the interfaces its traffic
/// was seen on, and where its packets show up first.
#[derive(Default)]
struct Hosts {
    ttl: HashMap<IpAddr, u8>,
    seen: HashMap<IpAddr, u32>,
    ingress: HashMap<IpAddr, u16>,
}

/// Counts summed over the conversations of one expected flow.
#[derive(Default)]
struct Acc {
    path: PathFacts,
    /// The NAT address, and whether it stands for the source's host (else the destination's).
    via: Option<(IpAddr, bool)>,
    counts: Counts,
    handshake_us: Vec<u32>,
    /// (RST TTL, the server's usual TTL) of a refusal.
    refusal_ttls: Option<(u8, Option<u8>)>,
    refused_without_ttl: u64,
    icmp: Vec<Rejection>,
    servers: BTreeSet<IpAddr>,
}

impl Acc {
    fn add(&mut self, k: &GroupKey, g: &Group) {
        self.counts.merge(&g.counts);
        self.handshake_us.extend(&g.handshake_us);
        self.refused_without_ttl += g.refused_no_ttl;
        self.path.merge(&g.path);
        if self.refusal_ttls.is_none() {
            if let Some(t) = g.refused_ttl {
                self.refusal_ttls = Some((t, g.resp_ttl));
            }
        }
        for e in &g.icmp {
            if self.icmp.len() < 4 && !self.icmp.contains(e) {
                self.icmp.push(*e);
            }
        }
        self.servers.insert(k.resp);
    }

    /// The verdict and its evidence, as a row of role 0 (the caller keeps what it needs).
    fn row_verdict(self, port: u16, src: Side, dst: Side, hosts: &Hosts) -> FlowRow {
        self.finish(0, port, src, dst, hosts)
    }

    fn row(
        self,
        cat: &Catalogue,
        role: usize,
        src: Side,
        dst: Side,
        port: Option<u16>,
        hosts: &Hosts,
    ) -> FlowRow {
        let port = port.unwrap_or_else(|| {
            cat.roles()[role]
                .ports
                .first()
                .map(|p| p.first())
                .unwrap_or(0)
        });
        self.finish(role, port, src, dst, hosts)
    }

    fn finish(self, role: usize, port: u16, src: Side, dst: Side, hosts: &Hosts) -> FlowRow {
        // The server's usual TTL: from this flow, else from any answered handshake.
        let refusal = self.refusal_ttls.map(|(rst, usual)| {
            let usual =
                usual.or_else(|| self.servers.iter().find_map(|s| hosts.ttl.get(s).copied()));
            (rst, usual)
        });
        let server_seen = self
            .servers
            .iter()
            .filter_map(|s| hosts.seen.get(s))
            .fold(0, |a, b| a | b);
        let server_ingress = self
            .servers
            .iter()
            .find_map(|s| hosts.ingress.get(s).copied());
        let counts = self.counts;
        let handshake = if self.handshake_us.is_empty() {
            None
        } else {
            Some(verdict::percentiles(&self.handshake_us))
        };
        let v = verdict::decide(&counts);
        let died_at = verdict::died_at(v, &counts, &self.path, server_ingress, server_seen);
        let answered_by = verdict::answered_by(v, &counts, refusal, died_at);
        FlowRow {
            role,
            port,
            src,
            dst,
            counts,
            handshake,
            verdict: v,
            answered_by,
            refusal,
            refused_without_ttl: self.refused_without_ttl,
            rejections: self.icmp,
            died_at,
            via: self.via,
            out_of_view: false,
            mail_replied: 0,
            mail_refused: 0,
        }
    }
}

struct UnexpAcc {
    role: Option<usize>,
    attempts: u64,
    established: u64,
    /// The same sums as an expected flow's, for its verdict.
    flow: Acc,
    first_ts: Timestamp,
    example: (GroupKey, IpAddr, u16, ConnState, History),
}

impl UnexpAcc {
    fn row(
        self,
        proto: Proto,
        port: u16,
        src: Side,
        dst: Side,
        reason: UnexpectedReason,
        hosts: &Hosts,
    ) -> UnexpectedRow {
        let (k, orig_h, orig_p, conn_state, history) = self.example;
        // Its outcome in the verdicts' words: what happened to it, as for an expected flow.
        let outcome = self.flow.row_verdict(port, src, dst, hosts);
        UnexpectedRow {
            proto,
            port,
            src,
            dst,
            attempts: self.attempts,
            established: self.established,
            reason,
            role: self.role,
            outcome,
            first_ts: self.first_ts,
            example: Example {
                orig_h,
                orig_p,
                resp_h: k.resp,
                resp_p: k.port,
                conn_state,
                history,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::catalogue::Profile;
    use crate::decode::{Packet, TcpFlags, Transport};
    use crate::flow::{FlowConfig, FlowTable};
    use std::net::Ipv4Addr;
    use verdict::Verdict;

    fn seg(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
    ) -> Packet {
        Packet {
            ttl: 60,
            ..Packet::tcp(src, sport, dst, dport, flags, seq, ack, 0)
        }
    }

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;

    #[test]
    fn folded_conversations_are_never_read_as_one_scanner_and_keep_a_real_example() {
        let mbx = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
        let mut table = FlowTable::new(FlowConfig::default());
        let mut agg = Aggregator::with_max_groups(5);
        let mut t = 0i64;
        // 40 sources each refused once (SYN, RST) on its own port: probe-only conversations
        // that, folded together, would span 40 ports.
        for i in 0..40u16 {
            let src = IpAddr::V4(Ipv4Addr::new(203, 0, 113, i as u8 + 1));
            let port = 2000 + i;
            table.observe(Timestamp(t), &seg(src, 40000, mbx, port, S, 1, 0), &mut agg);
            table.observe(
                Timestamp(t + 1),
                &seg(mbx, port, src, 40000, TcpFlags::RST | TcpFlags::ACK, 0, 2),
                &mut agg,
            );
            t += 1_000_000;
        }
        table.finish(&mut agg);
        assert!(agg.folded > 0);
        assert!(agg.scans().is_empty(), "{:?}", agg.scans());
        let folded: Vec<_> = agg.groups().filter(|(_, g)| g.folded).collect();
        assert!(!folded.is_empty());
        for (k, g) in folded {
            assert_ne!(
                g.example_orig_h, k.orig,
                "a stand-in address as the example"
            );
            assert!(matches!(g.example_orig_h, IpAddr::V4(a) if a.octets()[..3] == [203, 0, 113]));
        }
    }

    #[test]
    fn a_syn_flood_is_named_and_does_not_make_the_service_flaky() {
        let mbx = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
        let mut table = FlowTable::new(FlowConfig::default());
        // A small cap, so that most flood sources are folded into one group.
        let mut agg = Aggregator::with_max_groups(50);
        let mut t = 0i64;
        // Three real clients complete handshakes to 443.
        for i in 0..3u8 {
            let c = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10 + i));
            table.observe(Timestamp(t), &seg(c, 40000, mbx, 443, S, 1, 0), &mut agg);
            table.observe(
                Timestamp(t + 1),
                &seg(mbx, 443, c, 40000, SA, 9, 2),
                &mut agg,
            );
            table.observe(
                Timestamp(t + 2),
                &seg(c, 40000, mbx, 443, A, 2, 10),
                &mut agg,
            );
            t += 1_000_000;
        }
        // 500 spoofed sources, one SYN each, never answered.
        for i in 0..500u32 {
            let src = if i < 250 {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8))
            } else {
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i - 250) as u8))
            };
            table.observe(
                Timestamp(t),
                &seg(src, 1024 + i as u16, mbx, 443, S, i, 0),
                &mut agg,
            );
            t += 1_000;
        }
        table.finish(&mut agg);
        let floods = agg.floods();
        assert_eq!(floods.len(), 1, "{floods:?}");
        assert_eq!((floods[0].target, floods[0].port), (mbx, 443));
        assert_eq!(floods[0].sources, 500, "{:?}", floods[0]);
        assert!(agg.folded > 400);
        let mut site = Site::new(Profile::Mailbox);
        site.add_host(crate::classify::catalogue::HostRole::Mailbox, mbx);
        let cat = Catalogue::embedded().unwrap();
        let fin = agg.finalize(&site, cat);
        let https = fin
            .expected
            .iter()
            .find(|e| {
                cat.roles()[e.role].id == "https-client"
                    && e.src.zone == crate::classify::catalogue::Zone::Internet
            })
            .unwrap();
        assert_eq!(https.verdict, Verdict::Ok, "{:?}", https.counts);
        assert_eq!(https.counts.attempts, 3);
    }

    #[test]
    fn a_connection_open_before_the_capture_counts_as_established() {
        let mbx = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
        let c = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
        let mut table = FlowTable::new(FlowConfig::default());
        let mut agg = Aggregator::default();
        let mut data = seg(c, 40000, mbx, 443, A | TcpFlags::PSH, 100, 900);
        if let Transport::Tcp(t) = &mut data.transport {
            t.payload_len = 50;
        }
        table.observe(Timestamp(0), &data, &mut agg);
        table.observe(
            Timestamp(10),
            &seg(mbx, 443, c, 40000, A, 900, 150),
            &mut agg,
        );
        table.finish(&mut agg);
        let (_, g) = agg.groups().next().unwrap();
        assert_eq!((g.counts.attempts, g.counts.established), (1, 1));
        assert_eq!(g.counts.one_sided, 0);
    }
}
