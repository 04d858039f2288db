//! The site, inferred from behaviour when no site file is given (PRODUCT.md, "The site"):
//! hosts that accept connections on the catalogue's Exchange client and mail ports are
//! Exchange servers; an Edge is one reached on EdgeSync (50636) or that takes mail from the
//! internet and relays it to another Exchange server; the hosts Exchange servers send DNS
//! queries to are DNS servers; those they reach on 88, 389, 636 or 3268 are domain
//! controllers; private and ULA ranges are internal, every other address is internet.
//! Every fact comes with the reason it was inferred.

use super::catalogue::{Catalogue, HostRole, Place, Profile, Proto};
use super::rules::ConvKey;
use super::site::{Cidr, Site};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// What inference reads of one conversation (scanners' probes and floods already left out).
#[derive(Clone, Copy, Debug)]
pub struct Conversation {
    pub key: ConvKey,
    pub attempts: u64,
    pub established: u64,
    pub one_sided: u64,
}

/// Private (RFC 1918) and unique-local (RFC 4193) ranges: the internal zone of an inferred
/// site.
pub const PRIVATE: [&str; 4] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

const EDGESYNC: u16 = 50636;
const SMTP: u16 = 25;
const DNS: u16 = 53;
const DC_PORTS: [u16; 4] = [88, 389, 636, 3268];

/// What was inferred: the site and why.
pub struct Inferred {
    pub site: Site,
    pub reasons: Vec<String>,
}

/// Ports an Exchange server serves to clients (not SMTP), from the catalogue: TCP roles whose
/// destination is a Mailbox server and whose source is the internet or clients.
fn client_ports(cat: &Catalogue) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for r in cat.roles() {
        let to_mailbox = r.dst.contains(&Place::Host(HostRole::Mailbox));
        let from_clients = r.src.iter().any(|p| {
            matches!(
                p,
                Place::Host(HostRole::Client) | Place::Zone(super::catalogue::Zone::Internet)
            )
        });
        if r.proto == Proto::Tcp
            && to_mailbox
            && from_clients
            && !r.internal_only
            && !r.unrestricted
        {
            for p in &r.ports {
                if p.first() == p.last() && p.first() != SMTP {
                    out.insert(p.first());
                }
            }
        }
    }
    out
}

fn join(ports: &BTreeSet<u16>) -> String {
    ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The site the conversations show, and why.
pub fn infer(conversations: &[Conversation], cat: &Catalogue) -> Inferred {
    let groups: Vec<(&ConvKey, &Conversation)> =
        conversations.iter().map(|c| (&c.key, c)).collect();
    let client = client_ports(cat);
    let mut reasons = vec![];

    // Hosts that accepted client-port connections: Mailbox servers.
    let mut accepted: BTreeMap<IpAddr, BTreeSet<u16>> = BTreeMap::new();
    let mut smtp_from: BTreeMap<IpAddr, BTreeSet<IpAddr>> = BTreeMap::new();
    for (k, g) in &groups {
        // A handshake answered, or a one-sided view of a connection that went on (the
        // client ACKing and sending data means the server accepted it).
        if k.proto == Proto::Tcp && (g.established > 0 || g.one_sided > 0) {
            if client.contains(&k.port) {
                accepted.entry(k.resp).or_default().insert(k.port);
            }
            if k.port == SMTP {
                smtp_from.entry(k.resp).or_default().insert(k.orig);
            }
        }
    }
    let mut mailbox: BTreeMap<IpAddr, String> = accepted
        .iter()
        .map(|(h, ports)| {
            (
                *h,
                format!(
                    "accepted connections on Exchange client port(s) {}",
                    join(ports)
                ),
            )
        })
        .collect();
    let mut edge: BTreeMap<IpAddr, String> = BTreeMap::new();
    // EdgeSync: the target is an Edge, the source a Mailbox server (attempts count: a
    // blocked EdgeSync still names both ends).
    for (k, g) in &groups {
        if k.proto == Proto::Tcp && k.port == EDGESYNC && g.attempts > 0 {
            edge.entry(k.resp)
                .or_insert_with(|| format!("reached on EdgeSync (50636) by {}", k.orig));
            mailbox
                .entry(k.orig)
                .or_insert_with(|| format!("connects to EdgeSync (50636) on {}", k.resp));
        }
    }
    for h in edge.keys() {
        mailbox.remove(h);
    }
    // Hosts that only took SMTP: an Exchange server if mail reached it from outside the
    // Exchange servers (an inbound mail host), or from an Edge (the Edge's relay target);
    // a host that only ever took mail from Exchange servers is an external mail server.
    for (host, sources) in &smtp_from {
        if mailbox.contains_key(host) || edge.contains_key(host) {
            continue;
        }
        let from_edge = sources.iter().find(|s| edge.contains_key(s));
        let from_outside = sources
            .iter()
            .find(|s| !mailbox.contains_key(s) && !edge.contains_key(s));
        if let Some(e) = from_edge {
            mailbox.insert(
                *host,
                format!("receives mail (SMTP 25) relayed by the Edge {e}"),
            );
        } else if let Some(s) = from_outside {
            mailbox.insert(*host, format!("receives mail (SMTP 25) from {s}"));
        }
    }
    // An Exchange server that takes internet mail and relays it on to another Exchange
    // server on 25 is an Edge.
    let relays: Vec<(IpAddr, IpAddr)> = groups
        .iter()
        .filter(|(k, g)| k.proto == Proto::Tcp && k.port == SMTP && g.attempts > 0)
        .filter(|(k, _)| mailbox.contains_key(&k.orig) && mailbox.contains_key(&k.resp))
        .map(|(k, _)| (k.orig, k.resp))
        .collect();
    for (from, to) in relays {
        let takes_outside_mail = smtp_from.get(&from).is_some_and(|s| {
            s.iter()
                .any(|x| !mailbox.contains_key(x) && !edge.contains_key(x))
        });
        let serves_clients = accepted.contains_key(&from);
        if takes_outside_mail && !serves_clients {
            mailbox.remove(&from);
            edge.insert(
                from,
                format!("takes mail from the internet and relays it to {to}"),
            );
        }
    }
    let exchange: BTreeSet<IpAddr> = mailbox.keys().chain(edge.keys()).copied().collect();
    let mut dns: BTreeMap<IpAddr, IpAddr> = BTreeMap::new();
    let mut dc: BTreeMap<IpAddr, (IpAddr, u16)> = BTreeMap::new();
    for (k, _) in &groups {
        if !exchange.contains(&k.orig) || exchange.contains(&k.resp) {
            continue;
        }
        if k.port == DNS {
            dns.entry(k.resp).or_insert(k.orig);
        } else if DC_PORTS.contains(&k.port) {
            dc.entry(k.resp).or_insert((k.orig, k.port));
        }
    }
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
    reasons.push(format!(
        "internal: the private and unique-local ranges {}; every other address is internet",
        PRIVATE.join(", ")
    ));
    for (h, why) in &mailbox {
        site.add_host(HostRole::Mailbox, *h);
        reasons.push(format!("{h} is a Mailbox server: it {why}"));
    }
    for (h, why) in &edge {
        site.add_host(HostRole::Edge, *h);
        reasons.push(format!("{h} is an Edge Transport server: it is {why}"));
    }
    for (h, from) in &dns {
        site.add_host(HostRole::Dns, *h);
        reasons.push(format!(
            "{h} is a DNS server: the Exchange server {from} queries it"
        ));
    }
    for (h, (from, port)) in &dc {
        site.add_host(HostRole::Dc, *h);
        reasons.push(format!(
            "{h} is a domain controller: the Exchange server {from} reaches it on {port}"
        ));
    }
    reasons.push(format!(
        "profile {}: {}",
        profile.name(),
        if edge.is_empty() {
            "no Edge Transport server seen"
        } else {
            "an Edge Transport server carries internet mail"
        }
    ));
    Inferred { site, reasons }
}
