//! Which flow of the site a conversation is: an expected flow of a catalogue role, traffic
//! that must never be restricted (Exchange ↔ Exchange / DC / Lync), something unexpected, or
//! none of Exchange's business. The rules read the catalogue and the site; they decide, they
//! do not word (the report does).

use super::catalogue::{Catalogue, HostRole, Place, Proto, Role, Zone};
use super::site::Site;
use crate::flow::{ConnRecord, SimOpen};
use std::net::IpAddr;

/// A conversation: every connection from one address to one service of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvKey {
    pub proto: Proto,
    pub orig: IpAddr,
    pub resp: IpAddr,
    pub port: u16,
}

impl ConvKey {
    /// A finished connection's conversation: its originator to its responder's port, except
    /// for the connection a crossing SYN began (a simultaneous open), which belongs to the
    /// first SYN's sender (its responder here). The report's rows and the `--flows` lines'
    /// `role` orient connections this one way.
    pub fn of(r: &ConnRecord) -> ConvKey {
        if r.sim_open == SimOpen::Crossing {
            ConvKey {
                proto: r.proto,
                orig: r.resp.ip(),
                resp: r.orig.ip(),
                port: r.orig.port(),
            }
        } else {
            ConvKey {
                proto: r.proto,
                orig: r.orig.ip(),
                resp: r.resp.ip(),
                port: r.resp.port(),
            }
        }
    }
}

/// One side of a flow: a zone, and where a concrete host is meant, its role and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Side {
    pub zone: Zone,
    pub role: Option<HostRole>,
    pub address: Option<IpAddr>,
}

impl Side {
    /// A whole zone.
    pub fn zone(zone: Zone) -> Side {
        Side {
            zone,
            role: None,
            address: None,
        }
    }
}

/// Why a conversation is unexpected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnexpectedReason {
    /// A catalogue role's service the site switched off (or that is off by default).
    DisabledService,
    /// An internal-only service of an Exchange host reached from the internet.
    InternalOnlyExposed,
    /// A flow of the other site profile.
    NotInProfile,
    /// A port no Exchange role uses, to or from an Exchange host.
    UnknownPort,
    /// An Exchange port, from a source none of its roles expects there (SMTP from an
    /// internal client to a mailbox that takes internet mail only).
    UnexpectedSource,
    /// An Exchange port, to a destination the site file does not name for it (DNS to a
    /// resolver the site file does not list).
    UndeclaredDestination,
}

impl UnexpectedReason {
    /// The name in the JSON report (`reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            UnexpectedReason::DisabledService => "disabled-service",
            UnexpectedReason::InternalOnlyExposed => "internal-only-exposed",
            UnexpectedReason::NotInProfile => "not-in-profile",
            UnexpectedReason::UnknownPort => "unknown-port",
            UnexpectedReason::UnexpectedSource => "unexpected-source",
            UnexpectedReason::UndeclaredDestination => "undeclared-destination",
        }
    }
}

/// What a conversation is to the site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// An expected flow of the site: catalogue role index and sides.
    Expected(usize, Side, Side),
    /// Traffic Microsoft says must never be restricted (Exchange ↔ Exchange / DC / Lync).
    Unrestricted(usize, Side, Side),
    Unexpected {
        reason: UnexpectedReason,
        /// The catalogue role index that names this port, if any.
        role: Option<usize>,
        src: Side,
        dst: Side,
    },
    /// Not Exchange's business.
    Unrelated,
}

/// Which flow of the site a conversation is.
pub fn classify(k: &ConvKey, site: &Site, cat: &Catalogue) -> Class {
    let roles = cat.roles();
    let mut candidate: Option<(usize, Side, Side)> = None;
    for (i, role) in roles.iter().enumerate() {
        if role.unrestricted {
            continue;
        }
        if let Some((s, d)) = role_match(role, k, site) {
            if site.expects(role) {
                return Class::Expected(i, s, d);
            }
            candidate.get_or_insert((i, s, d));
        }
    }
    let exchange_involved = site.is_exchange(k.orig) || site.is_exchange(k.resp);
    let from_internet = site.zone_of(k.orig) == Zone::Internet;
    // An internal-only service of an Exchange host reached from the internet.
    if from_internet && site.is_exchange(k.resp) {
        if let Some(i) = roles
            .iter()
            .position(|r| r.internal_only && r.matches(k.proto, k.port))
        {
            return Class::Unexpected {
                reason: UnexpectedReason::InternalOnlyExposed,
                role: Some(i),
                src: plain_side(k.orig, site),
                dst: plain_side(k.resp, site),
            };
        }
    }
    if let Some((i, s, d)) = candidate {
        let reason = if !roles[i].in_profile(site.profile) {
            UnexpectedReason::NotInProfile
        } else {
            UnexpectedReason::DisabledService
        };
        return Class::Unexpected {
            reason,
            role: Some(i),
            src: s,
            dst: d,
        };
    }
    if let Some((i, s, d)) = unrestricted_role(k, site, cat) {
        return Class::Unrestricted(i, s, d);
    }
    if exchange_involved {
        // A port Exchange's roles use, between places none of them joins: say which end is
        // unexpected rather than "no Exchange role uses this port".
        let port_roles: Vec<usize> = roles
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.unrestricted && r.matches(k.proto, k.port))
            .map(|(i, _)| i)
            .collect();
        let reason = match port_roles.first() {
            None => UnexpectedReason::UnknownPort,
            Some(_) => {
                let source_fits = port_roles
                    .iter()
                    .any(|&j| find_place(&roles[j].src, k.orig, site).is_some());
                if source_fits {
                    UnexpectedReason::UndeclaredDestination
                } else {
                    UnexpectedReason::UnexpectedSource
                }
            }
        };
        return Class::Unexpected {
            reason,
            role: port_roles.first().copied(),
            src: plain_side(k.orig, site),
            dst: plain_side(k.resp, site),
        };
    }
    Class::Unrelated
}

/// The role Microsoft says must never be restricted that a conversation is, with its sides.
pub fn unrestricted_role(k: &ConvKey, site: &Site, cat: &Catalogue) -> Option<(usize, Side, Side)> {
    cat.roles()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.unrestricted)
        .find_map(|(i, r)| role_match(r, k, site).map(|(s, d)| (i, s, d)))
}

/// Every side a list of places stands for in this site (for the expected-flow list).
pub fn sides_of(places: &[Place], site: &Site) -> Vec<Side> {
    let mut out = vec![];
    for &p in places {
        match p {
            Place::Zone(z) => out.push(Side::zone(z)),
            Place::Host(HostRole::Client) => out.push(client_side()),
            Place::Host(r) => {
                for h in site.hosts_with(r) {
                    if let Some(a) = h.addresses.first() {
                        out.push(host_side(*a, site));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The side of a flow a place stands for, given the address that matched it.
fn side_for(place: Place, ip: IpAddr, site: &Site) -> Side {
    match place {
        Place::Zone(z) => Side::zone(z),
        Place::Host(HostRole::Client) => client_side(),
        Place::Host(_) => host_side(ip, site),
    }
}

fn client_side() -> Side {
    Side {
        zone: Zone::Internal,
        role: Some(HostRole::Client),
        address: None,
    }
}

/// A concrete host: its zone, role and the address the traffic used — one of its own (so a
/// dual-stack host's IPv4 and IPv6 traffic are rows of their own), or for a NAT address the
/// host's own address of the same family (the row shows it `via` the public one).
fn host_side(ip: IpAddr, site: &Site) -> Side {
    match site.host_of(ip) {
        Some(h) => Side {
            zone: site.zone_of(ip),
            role: Some(h.role),
            address: Some(if h.has_address(ip) {
                ip.to_canonical()
            } else {
                h.addresses
                    .iter()
                    .find(|a| a.is_ipv4() == ip.to_canonical().is_ipv4())
                    .or(h.addresses.first())
                    .copied()
                    .unwrap_or(ip)
            }),
        },
        None => Side {
            zone: site.zone_of(ip),
            role: None,
            address: Some(ip),
        },
    }
}

/// Whether two sides are the same place, perhaps by another address of the same host (the
/// other address family of a dual-stack host).
pub fn same_place(a: &Side, b: &Side, site: &Site) -> bool {
    if a.zone != b.zone || a.role != b.role {
        return false;
    }
    match (a.address, b.address) {
        (None, None) => true,
        (Some(x), Some(y)) => match (site.host_of(x), site.host_of(y)) {
            (Some(h), Some(g)) => std::ptr::eq(h, g),
            _ => x == y,
        },
        _ => false,
    }
}

/// A host the site names, else its zone.
fn plain_side(ip: IpAddr, site: &Site) -> Side {
    if site.host_of(ip).is_some() {
        host_side(ip, site)
    } else {
        Side::zone(site.zone_of(ip))
    }
}

/// Does a place cover this address in this site?
fn place_matches(place: Place, ip: IpAddr, site: &Site) -> bool {
    match place {
        Place::Zone(z) => site.zone_of(ip) == z,
        // A client is a host the site says is one, any internal host it does not name, or a
        // named host of a role that is no Exchange server: a host's role never restricts the
        // flows it originates (a DNS server's admin opening OWA is an HTTPS client).
        Place::Host(HostRole::Client) => match site.role_of(ip) {
            // (Domain controllers aside: their traffic with Exchange must never be restricted.)
            Some(r) => r == HostRole::Client || !(r.is_exchange() || r == HostRole::Dc),
            None => site.zone_of(ip) != Zone::Internet,
        },
        Place::Host(r) => site.role_of(ip).is_some_and(|a| r.covers(a)),
    }
}

fn find_place(places: &[Place], ip: IpAddr, site: &Site) -> Option<Place> {
    // Prefer a concrete host role over a zone.
    places
        .iter()
        .copied()
        .filter(|p| place_matches(*p, ip, site))
        .max_by_key(|p| matches!(p, Place::Host(r) if *r != HostRole::Client))
}

/// How a role matches a conversation: the places of source and destination, or None.
fn role_match(role: &Role, k: &ConvKey, site: &Site) -> Option<(Side, Side)> {
    if !role.matches(k.proto, k.port) {
        return None;
    }
    if let (Some(s), Some(d)) = (
        find_place(&role.src, k.orig, site),
        find_place(&role.dst, k.resp, site),
    ) {
        return Some((side_for(s, k.orig, site), side_for(d, k.resp, site)));
    }
    if role.both_ways {
        if let (Some(s), Some(d)) = (
            find_place(&role.src, k.resp, site),
            find_place(&role.dst, k.orig, site),
        ) {
            return Some((side_for(d, k.orig, site), side_for(s, k.resp, site)));
        }
    }
    None
}
