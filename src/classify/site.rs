//! The site: the network around the Exchange servers, as a TOML file the admin writes (or as
//! exflow infers it from the capture when there is none).
//!
//! A site file says which networks are internal and which are the perimeter (everything else
//! is the internet), which hosts play which part (mailbox, edge, dns, dc, client) and under
//! which public addresses they are reached (NAT), the profile (`mailbox`: Mailbox servers
//! carry internet mail; `edge`: an Edge Transport server in the perimeter does), and which
//! catalogue services are switched on or off. `exflow init` prints [`template()`], a commented
//! file to start from.
//!
//! # The format is a contract
//! The keys of "Site file, version 1" in PRODUCT.md (`profile`, `internal`, `perimeter`,
//! `[[host]]` with `role`, `addresses`, `nat`, and the `[services]` table) are written by
//! scripts and tests: keys may be added, never renamed. Unknown keys are an error, so a typo
//! (`adresses`) is caught instead of silently ignored; the message lists the keys this version
//! knows. A new key is added by teaching [`Site::from_toml`] about it (and `KNOWN_*` below).
//!
//! Every problem with a site file is an [`Error::Input`] naming the file, with `line N: ` (and
//! `, column C` for TOML syntax errors) in front of the reason; exflow exits with 2.
//!
//! # Addresses
//! Networks are [`Cidr`]s, IPv4 or IPv6. A bare address is a /32 or /128. Host bits are
//! accepted and cleared (`198.51.100.10/24` is `198.51.100.0/24`): admins paste what `ip addr`
//! or `ipconfig` shows. IPv4 addresses never match IPv6 networks or the reverse, except that an
//! IPv4-mapped IPv6 address (`::ffff:198.51.100.10`) is the IPv4 address it maps, everywhere
//! (networks, host addresses and lookups).
//!
//! # Lookups
//! [`Site::zone_of`], [`Site::host_of`] and the others are called once per connection, never
//! per packet, and allocate nothing. They go by index, so classification is linear in the
//! conversations however many hosts and networks a site names (a site inferred from a capture
//! of many servers included): host addresses and NAT addresses are keys of a hash map, and
//! networks are held in a [`PrefixTable`] (one hash set per prefix length, searched longest
//! prefix first). The index is kept by the methods that change a site (`add_*`), which is why
//! the networks and hosts are read through [`Site::internal`], [`Site::perimeter`] and
//! [`Site::hosts`] rather than public fields.
//!
//! # Bounds
//! A site file is read up to [`MAX_SITE_FILE_BYTES`] (16 MiB, far beyond any real site);
//! a longer one is refused with an error, so `--site /dev/zero` stops at once. Parsing is
//! linear in the file's size. Messages quote at most [`MAX_QUOTED_CHARS`] characters of a
//! value, then `…`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Serialize, Serializer};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::catalogue::{Catalogue, DefaultState, HostRole, Profile, Role, Zone};
use crate::error::Error;

/// The longest site file exflow reads: 16 MiB. A real site file is a few kilobytes; this
/// allows some hundred thousand hosts and keeps a wrong `--site` (a device, a capture) from
/// filling memory.
pub const MAX_SITE_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Messages about a site file quote at most this many characters of a value, then `…`.
pub const MAX_QUOTED_CHARS: usize = 80;

/// A value from the input as messages quote it: at most [`MAX_QUOTED_CHARS`] characters, then
/// `…` if there was more; double quotes and backslashes escaped (control characters are
/// escaped where the message is printed).
pub fn excerpt(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The top-level keys of a version 1 site file.
const KNOWN_KEYS: [&str; 5] = ["profile", "internal", "perimeter", "host", "services"];
/// The keys of a `[[host]]` table.
const KNOWN_HOST_KEYS: [&str; 3] = ["role", "addresses", "nat"];
/// The host roles a site file may name (`exchange` and `lync` are catalogue-only).
const SITE_ROLES: [HostRole; 5] = [
    HostRole::Mailbox,
    HostRole::Edge,
    HostRole::Dns,
    HostRole::Dc,
    HostRole::Client,
];

// ---------------------------------------------------------------------------------------------
// Cidr

/// An IPv4 or IPv6 network: an address and a prefix length, host bits cleared.
///
/// Parsed from `"192.0.2.0/24"`, `"2001:db8:200::/64"` or a bare address (a /32 or /128).
/// Displayed as `network/prefix`, always with the prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address; an IPv4 address in the low 32 bits.
    bits: u128,
    prefix: u8,
    v4: bool,
}

/// An address as (bits, is IPv4), IPv4-mapped IPv6 addresses as IPv4.
fn ip_key(ip: IpAddr) -> (u128, bool) {
    match ip.to_canonical() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), true),
        IpAddr::V6(a) => (u128::from(a), false),
    }
}

impl Cidr {
    /// The network of `addr` with `prefix` bits; host bits are cleared. `None` if `prefix` is
    /// longer than the address (32 for IPv4, 128 for IPv6). An IPv4-mapped IPv6 network with a
    /// prefix of at least 96 becomes the IPv4 network it maps.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let (bits, v4, prefix) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), true, prefix),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) if prefix >= 96 => (u128::from(u32::from(m)), true, prefix - 96),
                _ => (u128::from(a), false, prefix),
            },
        };
        let width = if v4 { 32 } else { 128 };
        if prefix > width {
            return None;
        }
        let mask = u128::MAX
            .checked_shl(u32::from(width - prefix))
            .unwrap_or(0);
        Some(Cidr {
            bits: bits & mask,
            prefix,
            v4,
        })
    }

    /// The network holding only `addr` (a /32 or /128).
    pub fn host(addr: IpAddr) -> Cidr {
        let (bits, v4) = ip_key(addr);
        Cidr {
            bits,
            prefix: if v4 { 32 } else { 128 },
            v4,
        }
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> IpAddr {
        if self.v4 {
            // The low 32 bits hold the address; the high bits are zero by construction.
            IpAddr::V4(Ipv4Addr::from(self.bits as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.bits))
        }
    }

    /// The prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Whether this is an IPv4 network.
    pub fn is_ipv4(self) -> bool {
        self.v4
    }

    /// Whether `ip` is in the network. IPv4 addresses are never in IPv6 networks or the
    /// reverse; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(self, ip: IpAddr) -> bool {
        let (bits, v4) = ip_key(ip);
        if v4 != self.v4 {
            return false;
        }
        let width: u8 = if v4 { 32 } else { 128 };
        (bits ^ self.bits)
            .checked_shr(u32::from(width - self.prefix))
            .unwrap_or(0)
            == 0
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses `address/prefix` or a bare address. The error reads
    /// `"…" is not an address or network`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("\"{}\" is not an address or network", excerpt(s));
        let t = s.trim();
        match t.split_once('/') {
            None => t.parse::<IpAddr>().map(Cidr::host).map_err(|_| bad()),
            Some((addr, prefix)) => {
                let addr = addr.parse::<IpAddr>().map_err(|_| bad())?;
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let prefix = prefix.parse::<u8>().map_err(|_| bad())?;
                Cidr::new(addr, prefix).ok_or_else(bad)
            }
        }
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

// ---------------------------------------------------------------------------------------------
// PrefixTable

/// A set of networks searched by address: one hash set of networks per prefix length in use,
/// tried longest prefix first, so a lookup costs at most one hash probe per distinct prefix
/// length (33 for IPv4, 129 for IPv6), however many networks the table holds.
#[derive(Clone, Default)]
pub struct PrefixTable {
    nets: HashSet<Cidr>,
    /// The prefix lengths in use, longest first, per family.
    v4_lengths: Vec<u8>,
    v6_lengths: Vec<u8>,
}

impl PrefixTable {
    /// An empty table.
    pub fn new() -> PrefixTable {
        PrefixTable::default()
    }

    /// Adds a network; false if it was there already.
    pub fn insert(&mut self, cidr: Cidr) -> bool {
        if !self.nets.insert(cidr) {
            return false;
        }
        let lengths = if cidr.v4 {
            &mut self.v4_lengths
        } else {
            &mut self.v6_lengths
        };
        if let Err(at) = lengths.binary_search_by(|l| cidr.prefix.cmp(l)) {
            lengths.insert(at, cidr.prefix);
        }
        true
    }

    /// Whether the network itself is in the table.
    pub fn has(&self, cidr: Cidr) -> bool {
        self.nets.contains(&cidr)
    }

    /// How many networks the table holds.
    pub fn len(&self) -> usize {
        self.nets.len()
    }

    /// Whether the table holds no network.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The longest network of the table that holds `ip` (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn longest_match(&self, ip: IpAddr) -> Option<Cidr> {
        if self.nets.is_empty() {
            return None;
        }
        let (bits, v4) = ip_key(ip);
        let (lengths, width) = if v4 {
            (&self.v4_lengths, 32u8)
        } else {
            (&self.v6_lengths, 128u8)
        };
        lengths.iter().find_map(|&prefix| {
            let mask = u128::MAX
                .checked_shl(u32::from(width - prefix))
                .unwrap_or(0);
            let c = Cidr {
                bits: bits & mask,
                prefix,
                v4,
            };
            self.nets.contains(&c).then_some(c)
        })
    }

    /// Whether some network of the table holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.longest_match(ip).is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Site

/// A host the site names: its role, its own addresses and the public addresses that NAT to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// What the host is. Site files name mailbox, edge, dns, dc or client.
    pub role: HostRole,
    /// The host's own addresses; never empty in a parsed site.
    pub addresses: Vec<IpAddr>,
    /// Public addresses that reach this host through NAT (may be empty).
    pub nat: Vec<IpAddr>,
}

impl Host {
    /// A host with these addresses and no NAT address (IPv4-mapped addresses become IPv4).
    pub fn new(role: HostRole, addresses: impl IntoIterator<Item = IpAddr>) -> Host {
        Host {
            role,
            addresses: addresses.into_iter().map(|a| a.to_canonical()).collect(),
            nat: Vec::new(),
        }
    }

    /// Whether `ip` is one of the host's own addresses.
    pub fn has_address(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.addresses.iter().any(|a| a.to_canonical() == ip)
    }

    /// Whether `ip` is one of the host's NAT (public) addresses.
    pub fn has_nat(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nat.iter().any(|a| a.to_canonical() == ip)
    }

    /// Whether `ip` reaches this host: one of its addresses or NAT addresses.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.has_address(ip) || self.has_nat(ip)
    }
}

/// Where a [`Site`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteSource {
    /// Read from a site file (the path as the user gave it).
    File(String),
    /// Built in code: inferred from the capture (or made by a test).
    Inferred,
}

/// The topology exflow judges flows against. See the module documentation.
///
/// The networks and hosts are private so that the lookup index stays true to them: read them
/// with [`Site::internal`], [`Site::perimeter`] and [`Site::hosts`], change them with the
/// `add_*` methods. [`Site::from_toml`] is the only constructor that validates (no host
/// without an address, no address in two hosts, only known services); the `add_*` methods
/// keep an address to one host too (the first role given wins).
#[derive(Debug, Clone)]
pub struct Site {
    /// How mail reaches the internet.
    pub profile: Profile,
    /// Internal networks.
    internal: Vec<Cidr>,
    /// Perimeter (DMZ) networks; they win over internal networks where both match.
    perimeter: Vec<Cidr>,
    /// The hosts named, in file order.
    hosts: Vec<Host>,
    /// `[services]` switches: catalogue service name → on/off. Absent = the role's default.
    pub services: BTreeMap<String, bool>,
    /// A file or inference.
    pub source: SiteSource,
    index: Index,
}

impl PartialEq for Site {
    fn eq(&self, other: &Site) -> bool {
        self.profile == other.profile
            && self.internal == other.internal
            && self.perimeter == other.perimeter
            && self.hosts == other.hosts
            && self.services == other.services
            && self.source == other.source
    }
}

impl Eq for Site {}

/// The lookup index of a [`Site`]: every host address and NAT address (canonical) → the
/// host's position and whether it is a NAT address; the networks as prefix tables; each
/// host's zone, computed on first use after a change.
#[derive(Clone, Default)]
struct Index {
    addresses: HashMap<IpAddr, (usize, bool)>,
    internal: PrefixTable,
    perimeter: PrefixTable,
    host_zones: OnceLock<Vec<Zone>>,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Index({} addresses)", self.addresses.len())
    }
}

/// The zone of a host's own address that no network lists.
fn default_zone(role: HostRole) -> Zone {
    match role {
        HostRole::Edge => Zone::Perimeter,
        HostRole::Client => Zone::Internet,
        HostRole::Mailbox | HostRole::Dns | HostRole::Dc | HostRole::Exchange | HostRole::Lync => {
            Zone::Internal
        }
    }
}

impl Site {
    /// An empty site built in code ([`SiteSource::Inferred`]): no networks, no hosts, no
    /// service switches. Every address is the internet until networks or hosts are added.
    pub fn new(profile: Profile) -> Site {
        Site {
            profile,
            internal: Vec::new(),
            perimeter: Vec::new(),
            hosts: Vec::new(),
            services: BTreeMap::new(),
            source: SiteSource::Inferred,
            index: Index::default(),
        }
    }

    /// Reads and parses a site file. An unreadable file is an [`Error::Input`] too, and so is
    /// one longer than [`MAX_SITE_FILE_BYTES`] (read no further than that) or not UTF-8.
    pub fn load(path: &Path) -> Result<Site, Error> {
        let file = path.display().to_string();
        let cannot = |e: std::io::Error| {
            Error::input(file.clone(), format!("cannot read the site file: {e}"))
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SITE_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(cannot)?;
        if bytes.len() as u64 > MAX_SITE_FILE_BYTES {
            return Err(Error::input(
                file,
                format!(
                    "the site file is longer than {} MiB, the most exflow reads (a site file \
                     is a few kilobytes of TOML: is this the right file?)",
                    MAX_SITE_FILE_BYTES / (1024 * 1024)
                ),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Error::input(
                file.clone(),
                format!("line {line}: the site file is not UTF-8 text"),
            )
        })?;
        Site::from_toml(&text, &file)
    }

    /// Parses a version 1 site file; `file` names it in errors and in [`Site::source`].
    ///
    /// Every problem is an [`Error::Input`] whose `problem` starts with `line N: `.
    pub fn from_toml(text: &str, file: &str) -> Result<Site, Error> {
        let catalogue = Catalogue::embedded().map_err(|e| {
            Error::input(file, format!("the built-in port catalogue is broken: {e}"))
        })?;
        let services = switchable_services(catalogue);
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut parser = Parser {
            text,
            file,
            services,
            line_starts,
            seen: HashMap::new(),
        };
        parser.parse()
    }

    /// The internal networks, in the order given.
    pub fn internal(&self) -> &[Cidr] {
        &self.internal
    }

    /// The perimeter networks, in the order given.
    pub fn perimeter(&self) -> &[Cidr] {
        &self.perimeter
    }

    /// The hosts named, in file (or inference) order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Adds an internal network.
    pub fn add_internal(&mut self, cidr: Cidr) -> &mut Self {
        if self.index.internal.insert(cidr) {
            self.internal.push(cidr);
            self.index.host_zones = OnceLock::new();
        }
        self
    }

    /// Adds a perimeter network.
    pub fn add_perimeter(&mut self, cidr: Cidr) -> &mut Self {
        if self.index.perimeter.insert(cidr) {
            self.perimeter.push(cidr);
            self.index.host_zones = OnceLock::new();
        }
        self
    }

    /// Adds a host with one address. If a host already owns `addr` (as an address or a NAT
    /// address) nothing changes: the first role given for an address wins.
    pub fn add_host(&mut self, role: HostRole, addr: IpAddr) -> &mut Self {
        let addr = addr.to_canonical();
        if !self.index.addresses.contains_key(&addr) {
            self.index.addresses.insert(addr, (self.hosts.len(), false));
            self.hosts.push(Host::new(role, [addr]));
            self.index.host_zones = OnceLock::new();
        }
        self
    }

    /// Adds `extra` as another address of the host that owns `addr`. Nothing changes if no
    /// host owns `addr` or some host already owns `extra`.
    pub fn add_address(&mut self, addr: IpAddr, extra: IpAddr) -> &mut Self {
        self.add_to_host(addr, extra, false)
    }

    /// Adds `public` as a NAT address of the host that owns `addr`. Nothing changes if no
    /// host owns `addr` or some host already owns `public`.
    pub fn add_nat(&mut self, addr: IpAddr, public: IpAddr) -> &mut Self {
        self.add_to_host(addr, public, true)
    }

    fn add_to_host(&mut self, addr: IpAddr, new: IpAddr, nat: bool) -> &mut Self {
        let new = new.to_canonical();
        if self.index.addresses.contains_key(&new) {
            return self;
        }
        if let Some(&(i, _)) = self.index.addresses.get(&addr.to_canonical()) {
            let h = &mut self.hosts[i];
            if nat {
                h.nat.push(new);
            } else {
                h.addresses.push(new);
            }
            self.index.addresses.insert(new, (i, nat));
            self.index.host_zones = OnceLock::new();
        }
        self
    }

    /// Rebuilds the index from the networks and hosts (after the parser set them whole). The
    /// first host to list an address owns it.
    fn reindex(&mut self) {
        let mut index = Index::default();
        for &c in &self.internal {
            index.internal.insert(c);
        }
        for &c in &self.perimeter {
            index.perimeter.insert(c);
        }
        for (i, h) in self.hosts.iter().enumerate() {
            for (list, nat) in [(&h.addresses, false), (&h.nat, true)] {
                for a in list {
                    index.addresses.entry(a.to_canonical()).or_insert((i, nat));
                }
            }
        }
        self.index = index;
    }

    /// Switches a catalogue service on or off (not checked against the catalogue).
    pub fn set_service(&mut self, service: &str, on: bool) -> &mut Self {
        self.services.insert(service.to_owned(), on);
        self
    }

    /// Whether the site was inferred (built in code) rather than read from a file.
    pub fn is_inferred(&self) -> bool {
        self.source == SiteSource::Inferred
    }

    /// The site file's path, if it came from one.
    pub fn file(&self) -> Option<&str> {
        match &self.source {
            SiteSource::File(f) => Some(f),
            SiteSource::Inferred => None,
        }
    }

    /// The zone an address is in, the networks' zone only (no host rules).
    fn network_zone(&self, ip: IpAddr) -> Option<Zone> {
        if self.index.perimeter.contains(ip) {
            Some(Zone::Perimeter)
        } else if self.index.internal.contains(ip) {
            Some(Zone::Internal)
        } else {
            None
        }
    }

    /// The zone of a host, computed from its addresses.
    fn compute_host_zone(&self, host: &Host) -> Zone {
        host.addresses
            .iter()
            .find_map(|a| self.network_zone(*a))
            .unwrap_or_else(|| default_zone(host.role))
    }

    /// The zone of the host at position `i`, from the cache (filled for every host at once).
    fn host_zone_at(&self, i: usize) -> Zone {
        let zones = self.index.host_zones.get_or_init(|| {
            self.hosts
                .iter()
                .map(|h| self.compute_host_zone(h))
                .collect()
        });
        zones
            .get(i)
            .copied()
            .unwrap_or_else(|| self.compute_host_zone(&self.hosts[i]))
    }

    /// The position of a host of this site (by identity), if it is one.
    fn position(&self, host: &Host) -> Option<usize> {
        let first = host.addresses.first().or(host.nat.first())?;
        let &(i, _) = self.index.addresses.get(&first.to_canonical())?;
        std::ptr::eq(&self.hosts[i], host).then_some(i)
    }

    /// The zone a host is in: that of the first of its addresses a network lists, else the
    /// default for its role (mailbox, dns, dc: internal; edge: perimeter; client: internet).
    pub fn host_zone(&self, host: &Host) -> Zone {
        match self.position(host) {
            Some(i) => self.host_zone_at(i),
            None => self.compute_host_zone(host),
        }
    }

    /// The zone of an address, in this order:
    /// 1. a NAT address is in its host's zone ([`Site::host_zone`]);
    /// 2. an address in a perimeter network is perimeter, else one in an internal network is
    ///    internal (the perimeter is usually the more specific where both match);
    /// 3. a host's own address no network lists: mailbox, dns and dc hosts are internal, edge
    ///    hosts perimeter, clients internet;
    /// 4. everything else is the internet.
    pub fn zone_of(&self, ip: IpAddr) -> Zone {
        let owner = self.index.addresses.get(&ip.to_canonical()).copied();
        if let Some((i, true)) = owner {
            return self.host_zone_at(i);
        }
        if let Some(z) = self.network_zone(ip) {
            return z;
        }
        match owner {
            Some((i, _)) => default_zone(self.hosts[i].role),
            None => Zone::Internet,
        }
    }

    /// Every NAT address with the host's own address of the same family it stands for
    /// (public, own): the legs of a translated connection that the flow table joins.
    pub fn nat_pairs(&self) -> Vec<(IpAddr, IpAddr)> {
        let mut out = vec![];
        for h in &self.hosts {
            for &public in &h.nat {
                let own = h
                    .addresses
                    .iter()
                    .find(|a| a.is_ipv4() == public.is_ipv4())
                    .or(h.addresses.first());
                if let Some(&own) = own {
                    out.push((public, own));
                }
            }
        }
        out
    }

    /// The host an address belongs to, by its own addresses or its NAT addresses.
    pub fn host_of(&self, ip: IpAddr) -> Option<&Host> {
        self.index
            .addresses
            .get(&ip.to_canonical())
            .and_then(|&(i, _)| self.hosts.get(i))
    }

    /// The role of the host an address belongs to.
    pub fn role_of(&self, ip: IpAddr) -> Option<HostRole> {
        self.host_of(ip).map(|h| h.role)
    }

    /// The hosts with a role; [`HostRole::Exchange`] means mailbox and edge hosts.
    pub fn hosts_with(&self, role: HostRole) -> impl Iterator<Item = &Host> + '_ {
        self.hosts.iter().filter(move |h| role.covers(h.role))
    }

    /// Whether the address belongs to an Exchange server (a mailbox or edge host).
    pub fn is_exchange(&self, ip: IpAddr) -> bool {
        self.role_of(ip).is_some_and(HostRole::is_exchange)
    }

    /// Whether a catalogue role's service is on: the site's `[services]` switch for the
    /// role's `service` if there is one, else the role's default (`enabled` is on; `disabled`
    /// and `optional` are off).
    pub fn service_enabled(&self, role: &Role) -> bool {
        match role.service.as_deref().and_then(|s| self.services.get(s)) {
            Some(&on) => on,
            None => role.default == DefaultState::Enabled,
        }
    }

    /// Whether the site expects the role to work: the role is in the site's profile and its
    /// service is on.
    pub fn expects(&self, role: &Role) -> bool {
        role.in_profile(self.profile) && self.service_enabled(role)
    }

    /// The internal networks as strings, for reports.
    pub fn internal_strings(&self) -> Vec<String> {
        self.internal.iter().map(Cidr::to_string).collect()
    }

    /// The perimeter networks as strings, for reports.
    pub fn perimeter_strings(&self) -> Vec<String> {
        self.perimeter.iter().map(Cidr::to_string).collect()
    }
}

/// The `[services]` keys the catalogue knows: every role's `service`, in catalogue order,
/// without repeats.
pub fn switchable_services(catalogue: &Catalogue) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for role in catalogue.roles() {
        if let Some(s) = role.service.as_deref() {
            if !names.contains(&s) {
                names.push(s);
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parsing state: the text (for line numbers), the file name (for errors), the services the
/// catalogue knows, where each line starts (so that a line number is a binary search, not a
/// count from the top) and every host address seen so far with its line and host role.
struct Parser<'a> {
    text: &'a str,
    file: &'a str,
    services: Vec<&'a str>,
    line_starts: Vec<usize>,
    seen: HashMap<IpAddr, (usize, HostRole)>,
}

type Entry<'i> = (
    &'i Spanned<toml::de::DeString<'i>>,
    &'i Spanned<DeValue<'i>>,
);

/// A table's entries in file order (the map itself may be sorted by key).
fn entries<'i>(table: &'i DeTable<'i>) -> Vec<Entry<'i>> {
    let mut v: Vec<Entry<'i>> = table.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut s = String::new();
    for (i, n) in names.into_iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n.as_ref());
    }
    s
}

impl<'a> Parser<'a> {
    /// The 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_of(offset);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self.text[line_start.min(offset)..offset].chars().count() + 1;
        (line, col)
    }

    /// The 1-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&start| start <= offset)
            .max(1)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.line_of(span.start)
    }

    /// An error about the text at `span`.
    fn err(&self, span: Range<usize>, problem: impl fmt::Display) -> Error {
        Error::input(self.file, format!("line {}: {problem}", self.line(&span)))
    }

    fn toml_error(&self, e: &toml::de::Error) -> Error {
        // The parser's messages may quote the input (a duplicate key's name): bounded too.
        let message = e.message().trim();
        let message = match message.char_indices().nth(4 * MAX_QUOTED_CHARS) {
            Some((at, _)) => format!("{}…", &message[..at]),
            None => message.to_owned(),
        };
        match e.span() {
            Some(span) => {
                let (line, col) = self.line_col(span.start);
                Error::input(self.file, format!("line {line}, column {col}: {message}"))
            }
            None => Error::input(self.file, message.to_owned()),
        }
    }

    fn parse(&mut self) -> Result<Site, Error> {
        let text = self.text;
        let root = DeTable::parse(text).map_err(|e| self.toml_error(&e))?;
        let mut site = Site::new(Profile::Mailbox);
        site.source = SiteSource::File(self.file.to_owned());
        for (key, value) in entries(root.get_ref()) {
            match key.get_ref().as_ref() {
                "profile" => site.profile = self.profile(value)?,
                "internal" => site.internal = self.networks("internal", value)?,
                "perimeter" => site.perimeter = self.networks("perimeter", value)?,
                "host" => site.hosts = self.hosts(value)?,
                "services" => site.services = self.services(value)?,
                other => {
                    return Err(self.err(
                        key.span(),
                        format_args!(
                            "unknown key \"{}\" (a site file's keys are {})",
                            excerpt(other),
                            list(KNOWN_KEYS)
                        ),
                    ))
                }
            }
        }
        site.reindex();
        Ok(site)
    }

    fn profile(&self, value: &Spanned<DeValue<'_>>) -> Result<Profile, Error> {
        let name = value.get_ref().as_str().ok_or_else(|| {
            self.err(
                value.span(),
                "profile must be a string: \"mailbox\" or \"edge\"",
            )
        })?;
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                self.err(
                    value.span(),
                    format_args!(
                        "unknown profile \"{}\" (expected mailbox or edge)",
                        excerpt(name)
                    ),
                )
            })
    }

    /// The strings of an array value, each with its span; `what` names the key in errors.
    fn strings<'v>(
        &self,
        what: &str,
        example: &str,
        value: &'v Spanned<DeValue<'v>>,
    ) -> Result<Vec<(&'v str, Range<usize>)>, Error> {
        let not_list = || {
            self.err(
                value.span(),
                format_args!("{what} must be a list of strings, such as [\"{example}\"]"),
            )
        };
        let array = value.get_ref().as_array().ok_or_else(not_list)?;
        array
            .iter()
            .map(|item| match item.get_ref().as_str() {
                Some(s) => Ok((s, item.span())),
                None => Err(self.err(
                    item.span(),
                    format_args!(
                        "{what} must be a list of strings, such as [\"{example}\"], not a {}",
                        item.get_ref().type_str()
                    ),
                )),
            })
            .collect()
    }

    fn networks(&self, what: &str, value: &Spanned<DeValue<'_>>) -> Result<Vec<Cidr>, Error> {
        let mut out: Vec<Cidr> = Vec::new();
        let mut seen: HashSet<Cidr> = HashSet::new();
        for (s, span) in self.strings(what, "198.51.100.0/24", value)? {
            let cidr: Cidr = s
                .parse()
                .map_err(|e| self.err(span, format_args!("{e} (in {what})")))?;
            if seen.insert(cidr) {
                out.push(cidr);
            }
        }
        Ok(out)
    }

    fn hosts(&mut self, value: &Spanned<DeValue<'_>>) -> Result<Vec<Host>, Error> {
        const NOT_TABLES: &str = "host must be written as [[host]] tables, one per host";
        let array = value
            .get_ref()
            .as_array()
            .ok_or_else(|| self.err(value.span(), NOT_TABLES))?;
        let mut hosts = Vec::with_capacity(array.len());
        for item in array.iter() {
            let table = item
                .get_ref()
                .as_table()
                .ok_or_else(|| self.err(item.span(), NOT_TABLES))?;
            hosts.push(self.host(item.span(), table)?);
        }
        Ok(hosts)
    }

    fn host(&mut self, span: Range<usize>, table: &DeTable<'_>) -> Result<Host, Error> {
        let mut role: Option<HostRole> = None;
        let mut addresses: Vec<(&str, Range<usize>)> = Vec::new();
        let mut nat: Vec<(&str, Range<usize>)> = Vec::new();
        for (key, value) in entries(table) {
            match key.get_ref().as_ref() {
                "role" => role = Some(self.host_role(value)?),
                "addresses" => addresses = self.strings("addresses", "198.51.100.10", value)?,
                "nat" => nat = self.strings("nat", "203.0.113.25", value)?,
                other => {
                    return Err(self.err(
                        key.span(),
                        format_args!(
                            "unknown key \"{}\" in [[host]] (a host's keys are {})",
                            excerpt(other),
                            list(KNOWN_HOST_KEYS)
                        ),
                    ))
                }
            }
        }
        let role = role.ok_or_else(|| {
            self.err(
                span.clone(),
                format_args!(
                    "this [[host]] has no role (role = one of {})",
                    list(SITE_ROLES.map(HostRole::name))
                ),
            )
        })?;
        if addresses.is_empty() {
            return Err(self.err(
                span,
                format_args!(
                    "this {} host has no address; a host needs at least one \
                     (addresses = [\"198.51.100.10\"])",
                    role.name()
                ),
            ));
        }
        let mut host = Host::new(role, []);
        for (s, span) in addresses {
            let ip = self.host_address(s, span, "addresses", role)?;
            host.addresses.push(ip);
        }
        for (s, span) in nat {
            let ip = self.host_address(s, span, "nat", role)?;
            host.nat.push(ip);
        }
        Ok(host)
    }

    fn host_role(&self, value: &Spanned<DeValue<'_>>) -> Result<HostRole, Error> {
        let roles = list(SITE_ROLES.map(HostRole::name));
        let name = value.get_ref().as_str().ok_or_else(|| {
            self.err(
                value.span(),
                format_args!("host role must be a string, one of {roles}"),
            )
        })?;
        SITE_ROLES
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| {
                self.err(
                    value.span(),
                    format_args!("host role \"{}\" is not one of {roles}", excerpt(name)),
                )
            })
    }

    /// One address of a host (`what` is `addresses` or `nat`), checked against every address
    /// seen before.
    fn host_address(
        &mut self,
        s: &str,
        span: Range<usize>,
        what: &str,
        role: HostRole,
    ) -> Result<IpAddr, Error> {
        let ip = s
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| {
                self.err(
                    span.clone(),
                    format_args!(
                        "\"{}\" is not an address (in {what} of a {} host)",
                        excerpt(s),
                        role.name()
                    ),
                )
            })?
            .to_canonical();
        let line = self.line(&span);
        if let Some(&(first, other)) = self.seen.get(&ip) {
            return Err(self.err(
                span,
                format_args!(
                    "address {ip} is listed twice: here and for the {} host on line {first}",
                    other.name()
                ),
            ));
        }
        self.seen.insert(ip, (line, role));
        Ok(ip)
    }

    fn services(&self, value: &Spanned<DeValue<'_>>) -> Result<BTreeMap<String, bool>, Error> {
        let table = value.get_ref().as_table().ok_or_else(|| {
            self.err(
                value.span(),
                "services must be a table: [services] with lines such as imap4 = true",
            )
        })?;
        let mut out = BTreeMap::new();
        for (key, value) in entries(table) {
            let name: &str = key.get_ref().as_ref();
            if !self.services.contains(&name) {
                let mut known = self.services.clone();
                known.sort_unstable();
                return Err(self.err(
                    key.span(),
                    format_args!(
                        "unknown service \"{}\" in [services] (the catalogue's services \
                         are {})",
                        excerpt(name),
                        list(known)
                    ),
                ));
            }
            let on = value.get_ref().as_bool().ok_or_else(|| {
                self.err(
                    value.span(),
                    format_args!("services: {} must be true or false", excerpt(name)),
                )
            })?;
            out.insert(name.to_owned(), on);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Template

/// The head of the template, everything above `[services]`.
const TEMPLATE_HEAD: &str = r#"# exflow site file, version 1: the network around your Exchange servers.
#
# Use it with:  exflow analyze CAPTURE.pcap --site site.toml
# Without a site file exflow infers the topology from the capture and says so in the report.
# Every address below is a documentation address: replace them with yours. A key exflow does
# not know is an error (so a typo is caught); the error lists the keys it knows.

# profile: how mail reaches the internet.
#   "mailbox"  the Mailbox servers send and receive internet mail themselves (default)
#   "edge"     a subscribed Edge Transport server in the perimeter carries internet mail
profile = "mailbox"

# Networks, as "address/prefix" (IPv4 or IPv6; a bare address is a single host).
# internal:  your internal networks.
# perimeter: your perimeter network (DMZ), where an Edge server lives. Where a perimeter
#            network and an internal network overlap, the perimeter wins.
# Every address in neither list is the internet.
internal = ["198.51.100.0/24", "2001:db8:200::/64"]
perimeter = ["192.0.2.128/26"]

# One [[host]] table per server (or client) you want named in the report.
#   role       mailbox | edge | dns | dc | client
#   addresses  the host's own addresses (at least one; IPv4 and IPv6)
#   nat        optional: public addresses that NAT to this host, e.g. the address the
#              internet sends mail to. They count as the host, in the host's zone.
# A host's address that no network above lists is taken as internal (mailbox, dns, dc),
# perimeter (edge) or internet (client). An address may belong to one host only.

[[host]]
role = "mailbox"
addresses = ["198.51.100.10", "2001:db8:200::10"]
nat = ["203.0.113.25"]

[[host]]
role = "dns"
addresses = ["198.51.100.53"]

[[host]]
role = "dc"
addresses = ["198.51.100.20", "2001:db8:200::20"]

# With profile = "edge", name the Edge server too:
# [[host]]
# role = "edge"
# addresses = ["192.0.2.140"]
# nat = ["203.0.113.26"]

# Services: switch catalogue services on (true: exflow expects them to work and reports a
# failure) or off (false: they should be closed; traffic on them is reported as unexpected).
# A service not listed keeps its default; "optional" ones may or may not be in use, and
# exflow expects them only when switched on. `exflow ports` shows every role and its service.
# Each line below sets a service against its default; uncomment it to switch.
"#;

/// The commented site file `exflow init` prints: every key explained, documentation
/// addresses, a mailbox host with a NAT address, a dns and a dc host, and a `[services]`
/// block listing every switchable service of the built-in catalogue with its default.
///
/// It parses with [`Site::from_toml`] (tests/site.rs proves it).
pub fn template() -> String {
    let mut out = String::from(TEMPLATE_HEAD);
    out.push_str("[services]\n");
    let catalogue = match Catalogue::embedded() {
        Ok(c) => c,
        Err(e) => {
            // A broken embedded catalogue is a bug that tests/catalogue.rs catches first.
            let _ = writeln!(out, "# (the built-in port catalogue is broken: {e})");
            return out;
        }
    };
    let names = switchable_services(catalogue);
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for name in names {
        let roles: Vec<&Role> = catalogue
            .roles()
            .iter()
            .filter(|r| r.service.as_deref() == Some(name))
            .collect();
        let first = roles.first().map_or(DefaultState::Disabled, |r| r.default);
        let same = roles.iter().all(|r| r.default == first);
        let (value, default) = match (same, first) {
            (true, DefaultState::Enabled) => (false, "default on"),
            (true, DefaultState::Disabled) => (true, "default off"),
            (true, DefaultState::Optional) => (true, "default optional"),
            (false, _) => (true, "defaults differ"),
        };
        let ids = list(roles.iter().map(|r| r.id.as_str()));
        let _ = writeln!(
            out,
            "# {name:<width$} = {value:<5}  # {default}; roles {ids}"
        );
    }
    out
}
