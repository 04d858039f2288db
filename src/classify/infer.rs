//! The site, inferred from behaviour when no site file is given (PRODUCT.md, "The site"):
//! hosts that accept connections on the catalogue's Exchange client and mail ports are
//! Exchange servers; an Edge is one reached on EdgeSync (50636) or that takes mail from the
//! internet and relays it to another Exchange server; the hosts Exchange servers send DNS
//! queries to are DNS servers; those they reach on 88, 389, 636 or 3268 are domain
//! controllers; private and ULA ranges are internal, every other address is internet.
//! Every fact comes with the reason it was inferred.
//!
//! # Bounds
//! Inference names at most [`MAX_INFERRED_HOSTS`] hosts of each role (Mailbox, Edge, DNS,
//! domain controller): a capture of answered handshakes to a hundred thousand hosts would
//! otherwise make each of them an Exchange server, and the report's expected flows between
//! them grow with the square of their number. Past the bound the hosts with the most
//! conversations are named; the others are counted, with their conversations, in a
//! [`Reason::TooMany`] that the report shows: their flows are classified as those of unnamed
//! hosts (a site file names them all). The hosts found not to be Exchange servers are listed
//! up to the same bound, the rest counted ([`Reason::MoreNotExchange`]).

use super::catalogue::{Catalogue, HostRole, Place, Profile, Proto, Signs, Zone};
use super::rules::ConvKey;
use super::site::{Cidr, Site};
use crate::flow::payload::Text;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// The most hosts inference names per role; see the module documentation.
/// A destination tried only by failed attempts is named only with at least this share (1/N)
/// of all such attempts (the capture of an outage).
const TRIED_SHARE: u64 = 32;

pub const MAX_INFERRED_HOSTS: usize = 128;

/// A source that reached this many servers on one client port is browsing.
pub const BROWSING_SERVERS: usize = 3;

/// What inference reads of one conversation (scanners' probes and floods already left out).
#[derive(Clone, Debug)]
pub struct Conversation {
    pub key: ConvKey,
    pub attempts: u64,
    pub established: u64,
    pub one_sided: u64,
    /// The responder's TTL as its answers arrived (an answered handshake's).
    pub resp_ttl: Option<u8>,
    /// What the responder's first answers said of its software (the payload look's), where
    /// it said anything.
    pub answers: Option<Box<Answers>>,
    /// The catalogue service a TLS server name of this conversation named by its name
    /// (`autodiscover.` names Autodiscover), if any did.
    pub sni_service: Option<&'static str>,
}

/// What a server's answers in one conversation said of its software: the first SMTP greeting,
/// and the first HTTP response's `Server` header and `X-` header names, as the payload look
/// kept them (raw, bounded). Read against the catalogue's [`Signs`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answers {
    pub smtp_banner: Text<64>,
    pub http_server: Text<24>,
    pub http_headers: Text<48>,
}

/// Exchange's own signs a host showed (the catalogue's [`Signs`] it matched), with the port of
/// a conversation that showed each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignsSeen {
    /// The SMTP greeting's sign, and the port.
    pub banner: Option<(u16, String)>,
    /// The HTTP Server header's sign, and the port.
    pub server: Option<(u16, String)>,
    /// Exchange's HTTP header names, and the port of the first response that carried one.
    pub headers: Option<(u16, Vec<String>)>,
    /// A Windows TTL its answers arrived with.
    pub windows_ttl: Option<u8>,
    /// A catalogue service its clients named in a TLS server name (`autodiscover.`), and the
    /// port.
    pub sni_service: Option<(u16, String)>,
}

impl SignsSeen {
    pub fn is_empty(&self) -> bool {
        self.banner.is_none()
            && self.server.is_none()
            && self.headers.is_none()
            && self.windows_ttl.is_none()
            && self.sni_service.is_none()
    }

    /// Signs only Exchange shows (not Windows' or IIS's alone).
    pub fn exchange_specific(&self) -> bool {
        self.banner.is_some() || self.headers.is_some() || self.sni_service.is_some()
    }

    /// Adds what one conversation with this host as its responder showed.
    fn add(&mut self, signs: &Signs, c: &Conversation) {
        let port = c.key.port;
        if let Some(a) = &c.answers {
            if self.banner.is_none() {
                self.banner = signs
                    .of_banner(a.smtp_banner.bytes())
                    .map(|s| (port, s.to_string()));
            }
            if self.server.is_none() {
                self.server = signs
                    .of_server(a.http_server.bytes())
                    .map(|s| (port, s.to_string()));
            }
            let names = signs.of_headers(a.http_headers.bytes());
            match &mut self.headers {
                Some((_, seen)) => {
                    for n in names {
                        if !seen.iter().any(|x| x == n) {
                            seen.push(n.to_string());
                        }
                    }
                }
                None if !names.is_empty() => {
                    self.headers = Some((port, names.iter().map(|n| n.to_string()).collect()));
                }
                None => {}
            }
        }
        if self.windows_ttl.is_none() {
            self.windows_ttl = c.resp_ttl.filter(|&t| signs.windows(t));
        }
        if self.sni_service.is_none() {
            self.sni_service = c.sni_service.map(|s| (port, s.to_string()));
        }
    }
}

/// Private (RFC 1918) and unique-local (RFC 4193) ranges: the internal zone of an inferred
/// site.
pub const PRIVATE: [&str; 4] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

/// The ports inference reads, all from the catalogue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InferencePorts {
    /// What an Exchange server serves to clients, SMTP aside (TCP roles from the internet or
    /// clients to a Mailbox server).
    pub client: BTreeSet<u16>,
    /// Internet mail (TCP roles from the internet alone to a Mailbox or Edge server).
    pub mail: BTreeSet<u16>,
    /// EdgeSync: Mailbox to Edge, mail aside.
    pub edgesync: BTreeSet<u16>,
    /// What Exchange servers ask DNS servers on.
    pub dns: BTreeSet<u16>,
    /// What Exchange servers reach domain controllers on (roles to domain controllers alone).
    pub dc: BTreeSet<u16>,
}

impl InferencePorts {
    /// The single ports of the catalogue's roles, by the places they join (ranges, such as the
    /// any-port roles between Exchange servers, say nothing about a host).
    pub fn of(cat: &Catalogue) -> InferencePorts {
        let only = |places: &[Place], p: Place| places.iter().all(|x| *x == p);
        let has = |places: &[Place], p: Place| places.contains(&p);
        let internet = Place::Zone(Zone::Internet);
        let (mailbox, edge) = (Place::Host(HostRole::Mailbox), Place::Host(HostRole::Edge));
        let mut out = InferencePorts::default();
        for r in cat.roles() {
            let ports = r
                .ports
                .iter()
                .filter(|p| p.first() == p.last())
                .map(|p| p.first());
            let tcp = r.proto == Proto::Tcp;
            if tcp && only(&r.src, internet) && (has(&r.dst, mailbox) || has(&r.dst, edge)) {
                out.mail.extend(ports);
            } else if tcp
                && has(&r.dst, mailbox)
                && (has(&r.src, internet) || has(&r.src, Place::Host(HostRole::Client)))
                && !r.internal_only
                && !r.unrestricted
            {
                out.client.extend(ports);
            } else if tcp && has(&r.src, mailbox) && has(&r.dst, edge) {
                out.edgesync.extend(ports);
            } else if has(&r.dst, Place::Host(HostRole::Dns)) {
                out.dns.extend(ports);
            } else if only(&r.dst, Place::Host(HostRole::Dc)) {
                out.dc.extend(ports);
            }
        }
        for m in &out.mail {
            out.client.remove(m);
            out.edgesync.remove(m);
        }
        out
    }
}

/// Why a host was taken for a Mailbox server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailboxEvidence {
    /// It accepted connections on these client ports.
    AcceptedClientPorts(BTreeSet<u16>),
    /// It connects to EdgeSync (the port) on this Edge.
    ConnectsToEdgeSync(u16, IpAddr),
    /// It receives mail (on the port) relayed by this Edge.
    ReceivesMailFromEdge(u16, IpAddr),
    /// It receives mail (on the port) from this host.
    ReceivesMail(u16, IpAddr),
    /// Nothing in the capture shows an Exchange server answering, but connections to it on
    /// these Exchange ports were tried (this many attempts, from this many sources): the
    /// destination an outage capture was taken for. The weakest evidence: "likely".
    Tried(BTreeSet<u16>, u64, usize),
}

/// Why a host that looked like a server was not taken for an Exchange server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotExchange {
    /// This host, itself reached on the mail port from elsewhere, sends mail to it: a
    /// destination the site's mail goes to (a partner or internet MTA).
    MailDestination(IpAddr),
    /// This host reached it and this many other servers on the port: a client browsing,
    /// not clients of one Exchange server.
    Browsed(IpAddr, u16, usize),
}

/// Why a host was taken for an Edge Transport server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EdgeEvidence {
    /// It is reached on EdgeSync (the port) by this Mailbox server.
    ReachedOnEdgeSync(u16, IpAddr),
    /// It takes mail from the internet and relays it to this Exchange server.
    RelaysInternetMail(IpAddr),
}

/// One inferred fact and its evidence (the report words it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The internal zone: these private and unique-local ranges; everything else is internet.
    Internal(&'static [&'static str]),
    Mailbox(IpAddr, MailboxEvidence),
    Edge(IpAddr, EdgeEvidence),
    /// Exchange's own signs a host taken for an Exchange server showed (they make the
    /// inference surer; they never name a host alone: a partner's Exchange shows them too).
    Signs(IpAddr, SignsSeen),
    /// A DNS server, and the Exchange server that queries it.
    Dns(IpAddr, IpAddr),
    /// A domain controller, the Exchange server that reaches it and the port.
    Dc(IpAddr, IpAddr, u16),
    /// A host that looked like a server, and why it is not taken for an Exchange server.
    NotExchange(IpAddr, NotExchange),
    /// The profile, and whether an Edge was seen.
    Profile(Profile, bool),
    /// More hosts than [`MAX_INFERRED_HOSTS`] looked like servers of this role: this many
    /// were left unnamed (those with the fewest conversations), and this many conversations
    /// had one of them at an end.
    TooMany(HostRole, usize, u64),
    /// This many more hosts were found not to be Exchange servers than the reasons list.
    MoreNotExchange(usize),
}

/// The hosts of one role inference may name: all of them up to [`MAX_INFERRED_HOSTS`], else
/// those with the most conversations (then the lowest addresses), and what was left out: how
/// many hosts and how many conversations had one of them at an end.
fn bounded<T>(
    found: BTreeMap<IpAddr, T>,
    groups: &[(&ConvKey, &Conversation)],
) -> (BTreeMap<IpAddr, T>, Option<(usize, u64)>) {
    if found.len() <= MAX_INFERRED_HOSTS {
        return (found, None);
    }
    let mut weight: HashMap<IpAddr, u64> = found.keys().map(|h| (*h, 0)).collect();
    for (k, _) in groups {
        for end in [k.orig, k.resp] {
            if let Some(w) = weight.get_mut(&end) {
                *w += 1;
            }
        }
    }
    let mut order: Vec<(u64, IpAddr)> = weight.iter().map(|(h, w)| (*w, *h)).collect();
    order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left: HashSet<IpAddr> = order[MAX_INFERRED_HOSTS..]
        .iter()
        .map(|(_, h)| *h)
        .collect();
    let conversations = groups
        .iter()
        .filter(|(k, _)| left.contains(&k.orig) || left.contains(&k.resp))
        .count() as u64;
    let kept = found
        .into_iter()
        .filter(|(h, _)| !left.contains(h))
        .collect();
    (kept, Some((left.len(), conversations)))
}

/// What was inferred: the site and why.
pub struct Inferred {
    pub site: Site,
    pub reasons: Vec<Reason>,
}

/// The site the conversations show, and why.
pub fn infer(conversations: &[Conversation], cat: &Catalogue) -> Inferred {
    let groups: Vec<(&ConvKey, &Conversation)> =
        conversations.iter().map(|c| (&c.key, c)).collect();
    let ports = InferencePorts::of(cat);
    let mut reasons = vec![];

    // Browsing: one source that reached many servers on the same client port is a user's
    // browser (or a crawler), and the servers it reached are the web's, not Exchange
    // servers — unless other sources reached them too.
    let mut reached: BTreeMap<(IpAddr, u16), BTreeSet<IpAddr>> = BTreeMap::new();
    let mut clients_of: BTreeMap<IpAddr, BTreeSet<IpAddr>> = BTreeMap::new();
    for (k, g) in &groups {
        if k.proto == Proto::Tcp && ports.client.contains(&k.port) && g.established > 0 {
            reached.entry((k.orig, k.port)).or_default().insert(k.resp);
            clients_of.entry(k.resp).or_default().insert(k.orig);
        }
    }
    let mut browsed: BTreeMap<IpAddr, NotExchange> = BTreeMap::new();
    for ((client, port), servers) in &reached {
        if servers.len() >= BROWSING_SERVERS {
            for s in servers {
                if clients_of.get(s).is_none_or(|c| c.len() < 2) {
                    browsed.entry(*s).or_insert(NotExchange::Browsed(
                        *client,
                        *port,
                        servers.len() - 1,
                    ));
                }
            }
        }
    }
    // Hosts that accepted client-port connections: Mailbox servers.
    let mut accepted: BTreeMap<IpAddr, BTreeSet<u16>> = BTreeMap::new();
    let mut smtp_from: BTreeMap<IpAddr, BTreeSet<(IpAddr, u16)>> = BTreeMap::new();
    // Who tried to reach whom on the mail port, answered or not.
    let mut smtp_tried: BTreeMap<IpAddr, BTreeSet<IpAddr>> = BTreeMap::new();
    for (k, g) in &groups {
        if k.proto == Proto::Tcp && ports.mail.contains(&k.port) && g.attempts > 0 {
            smtp_tried.entry(k.resp).or_default().insert(k.orig);
        }
        // A handshake answered, or a one-sided view of a connection that went on (the
        // client ACKing and sending data means the server accepted it).
        if k.proto == Proto::Tcp && (g.established > 0 || g.one_sided > 0) {
            if ports.client.contains(&k.port) && !browsed.contains_key(&k.resp) {
                accepted.entry(k.resp).or_default().insert(k.port);
            }
            if ports.mail.contains(&k.port) {
                smtp_from
                    .entry(k.resp)
                    .or_default()
                    .insert((k.orig, k.port));
            }
        }
    }
    let mut mailbox: BTreeMap<IpAddr, MailboxEvidence> = accepted
        .iter()
        .map(|(h, ports)| (*h, MailboxEvidence::AcceptedClientPorts(ports.clone())))
        .collect();
    let mut edge: BTreeMap<IpAddr, EdgeEvidence> = BTreeMap::new();
    // EdgeSync: the target is an Edge, the source a Mailbox server (attempts count: a
    // blocked EdgeSync still names both ends).
    for (k, g) in &groups {
        if k.proto == Proto::Tcp && ports.edgesync.contains(&k.port) && g.attempts > 0 {
            edge.entry(k.resp)
                .or_insert(EdgeEvidence::ReachedOnEdgeSync(k.port, k.orig));
            mailbox
                .entry(k.orig)
                .or_insert(MailboxEvidence::ConnectsToEdgeSync(k.port, k.resp));
        }
    }
    for h in edge.keys() {
        mailbox.remove(h);
    }
    // A host that sends mail and is itself reached on the mail port by others is the site's
    // mail server; where it sends its mail is a destination, not an Exchange server (a
    // partner or internet MTA), unless that destination also takes mail from elsewhere.
    let mut not_exchange: BTreeMap<IpAddr, NotExchange> = browsed;
    for (host, sources) in &smtp_tried {
        let senders_here: Vec<&IpAddr> = sources
            .iter()
            .filter(|s| {
                smtp_tried
                    .get(s)
                    .is_some_and(|theirs| theirs.iter().any(|t| t != host))
            })
            .collect();
        if let Some(s) = senders_here.first() {
            if senders_here.len() == sources.len() && !mailbox.contains_key(host) {
                not_exchange
                    .entry(*host)
                    .or_insert(NotExchange::MailDestination(**s));
            }
        }
    }
    // Hosts that only took SMTP: an Exchange server if mail reached it from outside the
    // Exchange servers (an inbound mail host), or from an Edge (the Edge's relay target);
    // a host that only ever took mail from Exchange servers is an external mail server.
    for (host, sources) in &smtp_from {
        if mailbox.contains_key(host) || edge.contains_key(host) || not_exchange.contains_key(host)
        {
            continue;
        }
        let from_edge = sources.iter().find(|(s, _)| edge.contains_key(s));
        let from_outside = sources
            .iter()
            .find(|(s, _)| !mailbox.contains_key(s) && !edge.contains_key(s));
        if let Some((e, port)) = from_edge {
            mailbox.insert(*host, MailboxEvidence::ReceivesMailFromEdge(*port, *e));
        } else if let Some((s, port)) = from_outside {
            mailbox.insert(*host, MailboxEvidence::ReceivesMail(*port, *s));
        }
    }
    // An Exchange server that takes internet mail and relays it on to another Exchange
    // server on 25 is an Edge.
    let relays: Vec<(IpAddr, IpAddr)> = groups
        .iter()
        .filter(|(k, g)| k.proto == Proto::Tcp && ports.mail.contains(&k.port) && g.attempts > 0)
        .filter(|(k, _)| mailbox.contains_key(&k.orig) && mailbox.contains_key(&k.resp))
        .map(|(k, _)| (k.orig, k.resp))
        .collect();
    for (from, to) in relays {
        let takes_outside_mail = smtp_from.get(&from).is_some_and(|s| {
            s.iter()
                .any(|(x, _)| !mailbox.contains_key(x) && !edge.contains_key(x))
        });
        let serves_clients = accepted.contains_key(&from);
        if takes_outside_mail && !serves_clients {
            mailbox.remove(&from);
            edge.insert(from, EdgeEvidence::RelaysInternetMail(to));
        }
    }
    // Nothing answered as an Exchange server: a capture of failed attempts (an outage, often
    // filtered to the failing port). The destinations tried on Exchange's ports are the
    // servers the capture was taken for.
    if mailbox.is_empty() && edge.is_empty() {
        let mut tried: BTreeMap<IpAddr, (BTreeSet<u16>, u64, BTreeSet<IpAddr>)> = BTreeMap::new();
        for (k, g) in &groups {
            let exchange_port = ports.client.contains(&k.port) || ports.mail.contains(&k.port);
            if k.proto == Proto::Tcp
                && exchange_port
                && g.attempts > 0
                && !not_exchange.contains_key(&k.resp)
            {
                let t = tried.entry(k.resp).or_default();
                t.0.insert(k.port);
                t.1 += g.attempts;
                t.2.insert(k.orig);
            }
        }
        // Only destinations that stand out: an outage capture's attempts go to the few
        // servers it was taken for, while a flood or scan of an address space spreads them
        // thinly over thousands (2,000,000 SYNs to random hosts made 128 one-attempt
        // "mailboxes", each "blocked"). At least 1/TRIED_SHARE of the attempts each.
        let total: u64 = tried.values().map(|t| t.1).sum();
        for (h, (ports, attempts, sources)) in tried {
            if attempts.saturating_mul(TRIED_SHARE) >= total {
                mailbox.insert(h, MailboxEvidence::Tried(ports, attempts, sources.len()));
            }
        }
    }
    let (mailbox, mailbox_left) = bounded(mailbox, &groups);
    let (edge, edge_left) = bounded(edge, &groups);
    let exchange: BTreeSet<IpAddr> = mailbox.keys().chain(edge.keys()).copied().collect();
    let mut signs: BTreeMap<IpAddr, SignsSeen> = BTreeMap::new();
    for (k, c) in &groups {
        if exchange.contains(&k.resp) && k.proto == Proto::Tcp {
            signs.entry(k.resp).or_default().add(cat.signs(), c);
        }
    }
    let mut dns: BTreeMap<IpAddr, IpAddr> = BTreeMap::new();
    let mut dc: BTreeMap<IpAddr, (IpAddr, u16)> = BTreeMap::new();
    for (k, _) in &groups {
        if !exchange.contains(&k.orig) || exchange.contains(&k.resp) {
            continue;
        }
        if ports.dns.contains(&k.port) {
            dns.entry(k.resp).or_insert(k.orig);
        } else if ports.dc.contains(&k.port) {
            dc.entry(k.resp).or_insert((k.orig, k.port));
        }
    }
    let (dns, dns_left) = bounded(dns, &groups);
    let (dc, dc_left) = bounded(dc, &groups);
    let profile = if edge.is_empty() {
        Profile::Mailbox
    } else {
        Profile::Edge
    };
    let mut site = Site::new(profile);
    for c in PRIVATE {
        if let Ok(cidr) = c.parse::<Cidr>() {
            site.add_internal(cidr);
        }
    }
    reasons.push(Reason::Internal(&PRIVATE));
    let too_many = |role: HostRole, left: Option<(usize, u64)>| {
        left.map(|(hosts, conversations)| Reason::TooMany(role, hosts, conversations))
    };
    let mut signs_of = |h: IpAddr| {
        signs
            .remove(&h)
            .filter(|s| !s.is_empty())
            .map(|s| Reason::Signs(h, s))
    };
    for (h, why) in mailbox {
        site.add_host(HostRole::Mailbox, h);
        reasons.push(Reason::Mailbox(h, why));
        reasons.extend(signs_of(h));
    }
    reasons.extend(too_many(HostRole::Mailbox, mailbox_left));
    for (h, why) in edge {
        site.add_host(HostRole::Edge, h);
        reasons.push(Reason::Edge(h, why));
        reasons.extend(signs_of(h));
    }
    reasons.extend(too_many(HostRole::Edge, edge_left));
    for (h, from) in dns {
        site.add_host(HostRole::Dns, h);
        reasons.push(Reason::Dns(h, from));
    }
    reasons.extend(too_many(HostRole::Dns, dns_left));
    for (h, (from, port)) in dc {
        site.add_host(HostRole::Dc, h);
        reasons.push(Reason::Dc(h, from, port));
    }
    reasons.extend(too_many(HostRole::Dc, dc_left));
    let (mut listed, mut not_listed) = (0, 0);
    for (h, why) in not_exchange {
        if !exchange.contains(&h) {
            if listed < MAX_INFERRED_HOSTS {
                reasons.push(Reason::NotExchange(h, why));
                listed += 1;
            } else {
                not_listed += 1;
            }
        }
    }
    if not_listed > 0 {
        reasons.push(Reason::MoreNotExchange(not_listed));
    }
    reasons.push(Reason::Profile(profile, profile == Profile::Edge));
    Inferred { site, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_inference_reads_come_from_the_catalogue() {
        let p = InferencePorts::of(Catalogue::embedded().unwrap());
        let set = |v: &[u16]| v.iter().copied().collect::<BTreeSet<u16>>();
        assert_eq!(p.mail, set(&[25]));
        assert_eq!(p.edgesync, set(&[50636]));
        assert_eq!(p.dns, set(&[53]));
        assert_eq!(p.dc, set(&[88, 389, 636, 3268]));
        assert!(p.client.contains(&443) && p.client.contains(&587));
        assert!(!p.client.contains(&25));
    }

    fn conv(
        orig: &str,
        resp: &str,
        port: u16,
        ttl: Option<u8>,
        a: Option<Answers>,
    ) -> Conversation {
        Conversation {
            key: ConvKey {
                proto: Proto::Tcp,
                orig: orig.parse().unwrap(),
                resp: resp.parse().unwrap(),
                port,
            },
            attempts: 1,
            established: 1,
            one_sided: 0,
            resp_ttl: ttl,
            answers: a.map(Box::new),
            sni_service: None,
        }
    }

    fn text<const N: usize>(s: &str) -> Text<N> {
        let mut t = Text::default();
        t.set(s.as_bytes());
        t
    }

    #[test]
    fn exchange_s_own_signs_are_said_of_the_hosts_taken_for_exchange_servers_only() {
        let cat = Catalogue::embedded().unwrap();
        let exchange = Answers {
            smtp_banner: text("mx.example.test Microsoft ESMTP MAIL Service ready at Mon"),
            ..Answers::default()
        };
        let web = Answers {
            http_server: text("Microsoft-IIS/10.0"),
            http_headers: text("X-CalculatedBETarget,x-owa-version,X-Other"),
            ..Answers::default()
        };
        let convs = vec![
            // 198.51.100.10: a Mailbox (client ports), Exchange's greeting and headers, a
            // Windows TTL.
            conv(
                "203.0.113.5",
                "198.51.100.10",
                25,
                Some(118),
                Some(exchange),
            ),
            conv("203.0.113.5", "198.51.100.10", 443, Some(118), Some(web)),
            conv("203.0.113.6", "198.51.100.10", 587, Some(118), None),
            // 198.51.100.20: a Mailbox with Linux's TTL and a greeting that names no Exchange.
            conv("203.0.113.5", "198.51.100.20", 443, Some(63), None),
            conv(
                "203.0.113.7",
                "198.51.100.20",
                25,
                Some(63),
                Some(Answers {
                    smtp_banner: text("mx2 ESMTP Postfix"),
                    ..Answers::default()
                }),
            ),
            // 192.0.2.99: the site's mail goes to it (a partner's Exchange): no sign said.
            conv("198.51.100.10", "192.0.2.99", 25, Some(110), Some(exchange)),
        ];
        // Its clients named Autodiscover in their ClientHellos on 443.
        let mut convs = convs;
        convs[1].sni_service = Some("autodiscover");
        let inf = infer(&convs, cat);
        let signs: Vec<&Reason> = inf
            .reasons
            .iter()
            .filter(|r| matches!(r, Reason::Signs(..)))
            .collect();
        let want = SignsSeen {
            banner: Some((25, "Microsoft ESMTP MAIL Service".into())),
            server: Some((443, "Microsoft-IIS".into())),
            headers: Some((
                443,
                vec!["X-OWA-Version".into(), "X-CalculatedBETarget".into()],
            )),
            windows_ttl: Some(118),
            sni_service: Some((443, "autodiscover".into())),
        };
        assert_eq!(
            signs,
            [&Reason::Signs("198.51.100.10".parse().unwrap(), want)],
            "{:?}",
            inf.reasons
        );
    }

    #[test]
    fn the_catalogue_s_signs_match_without_case_and_whole_header_names() {
        let s = Catalogue::embedded().unwrap().signs();
        assert_eq!(
            s.of_banner(b"x MICROSOFT esmtp mail service ready"),
            Some("Microsoft ESMTP MAIL Service")
        );
        assert_eq!(s.of_banner(b"mx ESMTP Postfix"), None);
        assert_eq!(s.of_server(b"microsoft-iis/8.5"), Some("Microsoft-IIS"));
        assert_eq!(s.of_server(b"nginx (Microsoft-IIS)"), None, "a prefix");
        assert_eq!(
            s.of_headers(b"X-FEServerX,X-Powered-By"),
            Vec::<&str>::new()
        );
        assert_eq!(s.of_headers(b"x-feserver"), vec!["X-FEServer"]);
        assert!(s.windows(128) && s.windows(65) && !s.windows(64) && !s.windows(129));
    }
}
