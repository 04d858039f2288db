//! The allow rules a site's Exchange needs, as typed values: computed once here from the port
//! catalogue and the site (and, with a report, from its failed flows), rendered by one file per
//! firewall syntax beside this one.
//!
//! A rule is one role (or the never-restrict allow-all) from one side to another, in one
//! address family. A side is a zone, the internal clients or a host; its addresses in that
//! family are the zone's networks (the internet: everything outside the internal and
//! perimeter networks, or any address when the site names none), the internal networks, or
//! the host's own addresses. A family is left out where a side has no address in it; a rule
//! with no concrete side (zone to zone) is never made.

use std::net::IpAddr;

use serde::Deserialize;

use crate::classify::catalogue::{
    Catalogue, HostRole, Place, PortRange, Profile, Proto, Role, Zone,
};
use crate::classify::site::{Cidr, Host, Site};
use crate::report::model::{self, FlowEntry};

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// "IPv4" or "IPv6".
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn of_cidr(c: Cidr) -> Family {
        if c.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    fn of_ip(ip: IpAddr) -> Family {
        Family::of_cidr(Cidr::host(ip))
    }
}

/// The addresses one side of a rule matches, in the rule's family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addrs {
    /// Any address: the internet of a site that names no network in this family.
    Any,
    /// One of these networks or hosts (never empty).
    In(Vec<Cidr>),
    /// Any address outside these networks (never empty): the internet, i.e. neither
    /// internal nor perimeter.
    NotIn(Vec<Cidr>),
}

/// What one side of a rule stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Party {
    /// A whole zone (the internet, the internal or perimeter networks).
    Zone(Zone),
    /// The internal clients: the internal networks and the hosts the site names as clients.
    Clients,
    /// One host, by its first address; `role` is None for an address the site does not name
    /// (from a report made against another site).
    Host {
        role: Option<HostRole>,
        address: IpAddr,
    },
    /// Every host of a role (the allow-all between Exchange servers and domain controllers).
    Hosts(HostRole),
}

/// One side of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    /// The zone the side is in (the internal clients are internal).
    pub zone: Zone,
    pub party: Party,
    pub addrs: Addrs,
}

impl End {
    /// What the side is, in a few words ("the internet", "mailbox 198.51.100.10").
    pub fn label(&self) -> String {
        match &self.party {
            Party::Zone(Zone::Internet) => "the internet".into(),
            Party::Zone(z) => format!("the {} networks", z.name()),
            Party::Clients => "internal clients".into(),
            Party::Host {
                role: Some(r),
                address,
            } => format!("{} {address}", r.name()),
            Party::Host {
                role: None,
                address,
            } => format!("host {address}"),
            Party::Hosts(HostRole::Dc) => "the domain controllers".into(),
            Party::Hosts(HostRole::Mailbox) => "the Exchange (Mailbox) servers".into(),
            Party::Hosts(r) => format!("every {} host", r.name()),
        }
    }

    /// Whether the side is one of the site's Exchange servers (mailbox or edge).
    pub fn is_exchange(&self) -> bool {
        match self.party {
            Party::Host { role: Some(r), .. } | Party::Hosts(r) => HostRole::Exchange.covers(r),
            _ => false,
        }
    }
}

/// What a rule lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    /// A catalogue role's protocol and destination ports (no ports for an IP protocol).
    Ports { proto: Proto, ports: Vec<PortRange> },
    /// Every protocol and port: Exchange ↔ Exchange and Exchange ↔ domain controllers.
    All,
}

/// A seed document a rule cites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRef {
    pub id: String,
    pub title: String,
}

/// One allow rule, in one address family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    /// The catalogue roles the rule serves; the first names it.
    pub roles: Vec<String>,
    /// What the role is for (one line, from the catalogue).
    pub purpose: String,
    /// The seed the comment names: the first Microsoft document the role cites, else its
    /// first seed.
    pub seed: SeedRef,
    /// The other seeds the role cites (ids).
    pub other_seeds: Vec<String>,
    pub service: Service,
    pub src: End,
    pub dst: End,
    /// Public addresses the internet reaches the destination host at (DNAT): the rule
    /// matches the translated, internal address, as a forward chain sees it.
    pub dnat: Vec<IpAddr>,
    /// The allow-all Microsoft requires (never restrict this traffic).
    pub unrestricted: bool,
}

/// A failed flow of a report, as `--report` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedFlow {
    pub role: String,
    pub verdict: String,
    pub src: SideRef,
    pub dst: SideRef,
    /// From `unsupported_restrictions`: a restriction between Exchange servers (or Exchange
    /// and a domain controller), fixed by the allow-all.
    pub unsupported: bool,
}

/// One side of a report's flow, as in the JSON report.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SideRef {
    pub zone: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// Where a plan's rules come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every flow the site expects.
    Site,
    /// Only the fixes of a report's failed flows.
    Fixes { report: String, failed: usize },
}

/// The rules for a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub site_file: Option<String>,
    pub profile: Profile,
    pub scope: Scope,
    pub rules: Vec<Rule>,
}

impl Plan {
    /// Whether some rule is in this family.
    pub fn has(&self, family: Family) -> bool {
        self.rules.iter().any(|r| r.family == family)
    }
}

/// The verdicts that mean a flow failed and a rule may fix it.
pub const FAILED_VERDICTS: [&str; 5] = ["blocked", "refused", "rejected", "flaky", "cut"];

#[derive(Deserialize)]
struct ReportDoc {
    #[serde(default)]
    expected: Vec<EntryDoc>,
    #[serde(default)]
    unsupported_restrictions: Vec<EntryDoc>,
}

#[derive(Deserialize)]
struct EntryDoc {
    role: String,
    verdict: String,
    src: SideRef,
    dst: SideRef,
    #[serde(default)]
    died_at: Option<String>,
}

/// The failed flows of an exflow JSON report (schema 1): expected flows whose verdict is
/// one of [`FAILED_VERDICTS`], and every unsupported restriction.
pub fn failed_flows(json: &str) -> Result<Vec<FailedFlow>, String> {
    let doc: ReportDoc =
        serde_json::from_str(json).map_err(|e| format!("not an exflow JSON report: {e}"))?;
    let mut out = Vec::new();
    for (list, unsupported) in [(doc.expected, false), (doc.unsupported_restrictions, true)] {
        for e in list {
            if needs_fix(&e.verdict, unsupported, e.died_at.as_deref()) {
                out.push(FailedFlow {
                    role: e.role,
                    verdict: e.verdict,
                    src: e.src,
                    dst: e.dst,
                    unsupported,
                });
            }
        }
    }
    Ok(out)
}

/// Whether a flow with this verdict needs a firewall rule: a failed verdict, or any
/// unsupported restriction — not a flow the capture shows died beyond the firewall (the
/// firewall let it through; no rule of its would change anything).
fn needs_fix(verdict: &str, unsupported: bool, died_at: Option<&str>) -> bool {
    unsupported || (FAILED_VERDICTS.contains(&verdict) && died_at != Some(BEYOND))
}

/// `died_at` of a flow that died beyond the firewall.
pub const BEYOND: &str = "beyond_firewall";

impl FailedFlow {
    /// A report entry as `--report` would read it from the JSON report: Some for a failed
    /// flow (or any entry of `unsupported_restrictions`, `unsupported`), None otherwise.
    pub fn of_entry(e: &FlowEntry, unsupported: bool) -> Option<FailedFlow> {
        let verdict = e.verdict.as_str();
        let side = |s: &model::Side| SideRef {
            zone: s.zone.to_owned(),
            role: s.role.map(str::to_owned),
            address: s.address.clone(),
        };
        needs_fix(verdict, unsupported, e.died_at).then(|| FailedFlow {
            role: e.role.clone(),
            verdict: verdict.to_owned(),
            src: side(&e.src),
            dst: side(&e.dst),
            unsupported,
        })
    }
}

/// Every rule the site's Exchange needs: the allow-all between Exchange servers and domain
/// controllers first, then one rule per expected role, side pair and family, grouped by zone
/// pair.
pub fn plan(cat: &Catalogue, site: &Site) -> Plan {
    let mut rules = allow_all(cat, site);
    let mut flows: Vec<Rule> = Vec::new();
    for role in cat.roles() {
        if role.unrestricted || !site.expects(role) {
            continue;
        }
        let mut pairs = vec![(role.src.as_slice(), role.dst.as_slice())];
        if role.both_ways {
            pairs.push((role.dst.as_slice(), role.src.as_slice()));
        }
        for (srcs, dsts) in pairs {
            for s in parties(srcs, site) {
                for d in parties(dsts, site) {
                    flows.extend(role_rules(cat, site, role, &s, &d));
                }
            }
        }
    }
    sort_by_zones(&mut flows);
    push_new(&mut rules, flows);
    Plan {
        site_file: site.file().map(str::to_owned),
        profile: site.profile,
        scope: Scope::Site,
        rules,
    }
}

/// The rules that fix a report's failed flows: the role's rule between the flow's two sides
/// (both families of a host), or for an unsupported restriction the allow-all between its
/// two hosts. `report` names the report file in the plan. An unknown role or a side that
/// cannot be read is an error.
pub fn plan_fixes(
    cat: &Catalogue,
    site: &Site,
    report: &str,
    failed: &[FailedFlow],
) -> Result<Plan, String> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut flows: Vec<Rule> = Vec::new();
    for f in failed {
        let role = cat.role(&f.role).ok_or_else(|| {
            format!(
                "the report names role \"{}\", which the port catalogue does not know",
                f.role
            )
        })?;
        let s = party_of(&f.src, site)?;
        let d = party_of(&f.dst, site)?;
        if f.unsupported || role.unrestricted {
            let roles = vec![role.id.clone()];
            for (a, b) in [(&s, &d), (&d, &s)] {
                rules.extend(Family::ALL.into_iter().filter_map(|fam| {
                    all_rule(cat, site, fam, roles.clone(), a.clone(), b.clone())
                }));
            }
        } else {
            flows.extend(role_rules(cat, site, role, &s, &d));
        }
    }
    let mut all = Vec::new();
    push_new(&mut all, rules);
    sort_by_zones(&mut flows);
    push_new(&mut all, flows);
    Ok(Plan {
        site_file: site.file().map(str::to_owned),
        profile: site.profile,
        scope: Scope::Fixes {
            report: report.to_owned(),
            failed: failed.len(),
        },
        rules: all,
    })
}

/// Appends the rules not already there.
fn push_new(rules: &mut Vec<Rule>, new: Vec<Rule>) {
    for r in new {
        if !rules.contains(&r) {
            rules.push(r);
        }
    }
}

fn zone_rank(z: Zone) -> usize {
    Zone::ALL.iter().position(|x| *x == z).unwrap_or(0)
}

/// Groups rules by zone pair (internet first), keeping catalogue order within a pair.
fn sort_by_zones(rules: &mut [Rule]) {
    rules.sort_by_key(|r| (zone_rank(r.src.zone), zone_rank(r.dst.zone)));
}

/// A report's side as a party of this site.
fn party_of(side: &SideRef, site: &Site) -> Result<Party, String> {
    if let Some(a) = &side.address {
        let ip: IpAddr = a
            .parse()
            .map_err(|_| format!("the report's address \"{a}\" is not an address"))?;
        return Ok(match site.host_of(ip) {
            Some(h) => host_party(h, ip),
            None => Party::Host {
                role: None,
                address: ip.to_canonical(),
            },
        });
    }
    if side.role.as_deref() == Some(HostRole::Client.name()) {
        return Ok(Party::Clients);
    }
    Zone::ALL
        .into_iter()
        .find(|z| z.name() == side.zone)
        .map(Party::Zone)
        .ok_or_else(|| format!("the report's zone \"{}\" is not a zone", side.zone))
}

fn host_party(h: &Host, fallback: IpAddr) -> Party {
    Party::Host {
        role: Some(h.role),
        address: h.addresses.first().copied().unwrap_or(fallback),
    }
}

/// Every party a list of catalogue places stands for in this site (as the report's
/// expected flows: a zone, the internal clients, each host of a role).
fn parties(places: &[Place], site: &Site) -> Vec<Party> {
    let mut out: Vec<Party> = Vec::new();
    for &p in places {
        let new: Vec<Party> = match p {
            Place::Zone(z) => vec![Party::Zone(z)],
            Place::Host(HostRole::Client) => vec![Party::Clients],
            Place::Host(r) => site
                .hosts_with(r)
                .filter_map(|h| h.addresses.first().map(|a| host_party(h, *a)))
                .collect(),
        };
        for n in new {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// The zone a party is in.
fn zone_of(party: &Party, site: &Site) -> Zone {
    match party {
        Party::Zone(z) => *z,
        Party::Clients => Zone::Internal,
        Party::Host { address, .. } => site.zone_of(*address),
        Party::Hosts(r) => site
            .hosts_with(*r)
            .next()
            .map_or(Zone::Internal, |h| site.host_zone(h)),
    }
}

/// The networks of a family, without one inside another (nftables rejects overlapping
/// intervals in a set).
fn minimal(cidrs: impl IntoIterator<Item = Cidr>, family: Family) -> Vec<Cidr> {
    let all: Vec<Cidr> = cidrs
        .into_iter()
        .filter(|c| Family::of_cidr(*c) == family)
        .collect();
    let mut out: Vec<Cidr> = Vec::new();
    for (i, c) in all.iter().enumerate() {
        let covered = all.iter().enumerate().any(|(j, o)| {
            j != i
                && o.prefix() <= c.prefix()
                && o.contains(c.network())
                && (o.prefix() < c.prefix() || j < i)
        });
        if !covered && !out.contains(c) {
            out.push(*c);
        }
    }
    out
}

fn host_cidrs<'a>(hosts: impl IntoIterator<Item = &'a Host>) -> Vec<Cidr> {
    hosts
        .into_iter()
        .flat_map(|h| h.addresses.iter().map(|a| Cidr::host(*a)))
        .collect()
}

/// The addresses a party has in a family; None where it has none.
fn addrs(party: &Party, site: &Site, family: Family) -> Option<Addrs> {
    let non_empty = |v: Vec<Cidr>| (!v.is_empty()).then_some(Addrs::In(v));
    match party {
        Party::Zone(Zone::Internet) => {
            let nets = minimal(
                site.internal().iter().chain(site.perimeter()).copied(),
                family,
            );
            Some(if nets.is_empty() {
                Addrs::Any
            } else {
                Addrs::NotIn(nets)
            })
        }
        Party::Zone(Zone::Internal) => non_empty(minimal(site.internal().iter().copied(), family)),
        Party::Zone(Zone::Perimeter) => {
            non_empty(minimal(site.perimeter().iter().copied(), family))
        }
        Party::Clients => non_empty(minimal(
            site.internal()
                .iter()
                .copied()
                .chain(host_cidrs(site.hosts_with(HostRole::Client))),
            family,
        )),
        Party::Host { address, .. } => {
            let own = match site.host_of(*address) {
                Some(h) => host_cidrs([h]),
                None => vec![Cidr::host(*address)],
            };
            non_empty(minimal(own, family))
        }
        Party::Hosts(r) => non_empty(minimal(host_cidrs(site.hosts_with(*r)), family)),
    }
}

/// The end of a rule in a family, or None where the party has no address in it.
fn end(party: &Party, site: &Site, family: Family) -> Option<End> {
    Some(End {
        zone: zone_of(party, site),
        party: party.clone(),
        addrs: addrs(party, site, family)?,
    })
}

/// The two ends of a rule in a family: None unless both have addresses in it and one of them
/// is concrete (a list of networks or hosts).
fn ends(s: &Party, d: &Party, site: &Site, family: Family) -> Option<(End, End)> {
    let (se, de) = (end(s, site, family)?, end(d, site, family)?);
    let concrete = |e: &End| matches!(e.addrs, Addrs::In(_));
    (concrete(&se) || concrete(&de)).then_some((se, de))
}

fn seed_of(cat: &Catalogue, role: &Role) -> (SeedRef, Vec<String>) {
    let ids = role.seed_ids();
    let first = ids
        .iter()
        .copied()
        .find(|id| cat.seed(id).is_some_and(|s| !s.community))
        .or_else(|| ids.first().copied())
        .unwrap_or("");
    let title = cat.seed(first).map(|s| s.title.clone()).unwrap_or_default();
    let others = ids
        .iter()
        .filter(|id| **id != first)
        .map(|id| (*id).to_owned())
        .collect();
    (
        SeedRef {
            id: first.to_owned(),
            title,
        },
        others,
    )
}

/// The rules of one catalogue role between two parties, one per family.
fn role_rules(cat: &Catalogue, site: &Site, role: &Role, s: &Party, d: &Party) -> Vec<Rule> {
    if let (Party::Host { address: a, .. }, Party::Host { address: b, .. }) = (s, d) {
        if a == b {
            return vec![];
        }
    }
    let (seed, other_seeds) = seed_of(cat, role);
    let mut out = Vec::new();
    for family in Family::ALL {
        let Some((src, dst)) = ends(s, d, site, family) else {
            continue;
        };
        let dnat = match (&src.party, &dst.party) {
            (Party::Zone(Zone::Internet), Party::Host { address, .. }) => site
                .host_of(*address)
                .map(|h| {
                    h.nat
                        .iter()
                        .copied()
                        .filter(|n| Family::of_ip(*n) == family)
                        .collect()
                })
                .unwrap_or_default(),
            _ => vec![],
        };
        out.push(Rule {
            family,
            roles: vec![role.id.clone()],
            purpose: role.purpose.clone(),
            seed: seed.clone(),
            other_seeds: other_seeds.clone(),
            service: Service::Ports {
                proto: role.proto,
                ports: role.ports.clone(),
            },
            src,
            dst,
            dnat,
            unrestricted: false,
        });
    }
    out
}

/// The allow-all between two parties in a family (for the given unrestricted roles).
fn all_rule(
    cat: &Catalogue,
    site: &Site,
    family: Family,
    roles: Vec<String>,
    s: Party,
    d: Party,
) -> Option<Rule> {
    let (src, dst) = ends(&s, &d, site, family)?;
    if let (Addrs::In(a), Addrs::In(b)) = (&src.addrs, &dst.addrs) {
        // A host to itself never crosses a firewall.
        if !a.iter().any(|x| b.iter().any(|y| x != y)) {
            return None;
        }
    }
    let seed = SeedRef {
        id: "001".into(),
        title: cat.seed("001").map(|s| s.title.clone()).unwrap_or_default(),
    };
    Some(Rule {
        family,
        roles,
        purpose: "Any protocol and port: Microsoft does not support restricting traffic between \
                  internal Exchange servers, or between Exchange and domain controllers"
            .into(),
        seed,
        other_seeds: vec![],
        service: Service::All,
        src,
        dst,
        dnat: vec![],
        unrestricted: true,
    })
}

/// The allow-all rules: for every pair of host roles the catalogue's `unrestricted` roles join
/// (Mailbox ↔ Mailbox, Mailbox ↔ domain controller, both ways where the role says so), every
/// protocol between those hosts, where the site has two different hosts to join.
fn allow_all(cat: &Catalogue, site: &Site) -> Vec<Rule> {
    let mut pairs: Vec<((HostRole, HostRole), Vec<String>)> = Vec::new();
    for role in cat.roles() {
        if !role.unrestricted || !role.in_profile(site.profile) {
            continue;
        }
        let mut add = |a: HostRole, b: HostRole| match pairs.iter_mut().find(|(k, _)| *k == (a, b))
        {
            Some((_, ids)) => {
                if !ids.contains(&role.id) {
                    ids.push(role.id.clone());
                }
            }
            None => pairs.push(((a, b), vec![role.id.clone()])),
        };
        for s in &role.src {
            for d in &role.dst {
                if let (Place::Host(a), Place::Host(b)) = (*s, *d) {
                    add(a, b);
                    if role.both_ways {
                        add(b, a);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((a, b), roles) in pairs {
        let distinct = site
            .hosts_with(a)
            .any(|h| site.hosts_with(b).any(|g| !std::ptr::eq(h, g)));
        if !distinct {
            continue;
        }
        for family in Family::ALL {
            out.extend(all_rule(
                cat,
                site,
                family,
                roles.clone(),
                Party::Hosts(a),
                Party::Hosts(b),
            ));
        }
    }
    out
}
