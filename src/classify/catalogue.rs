//! The Exchange port catalogue: which flows Exchange needs, as data.
//!
//! The knowledge lives in `exchange.toml` beside this file (read its header for what every
//! field means and how to add a role). It is compiled in with `include_str!`, parsed once on
//! first use, and checked by [`Catalogue::from_toml`]: a role without a source, a duplicate
//! id, a tcp/udp role without ports or a `community` flag that contradicts the cited seeds is
//! an error, not a silent default. tests/catalogue.rs proves the embedded file passes those
//! checks and covers every port of every seed.
//!
//! Nothing here is on the per-packet path: classification looks roles up once per closed
//! connection, and the lookups are linear scans over a few dozen roles.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

pub use crate::decode::Proto;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The catalogue file, as compiled into the binary.
pub const EMBEDDED_TOML: &str = include_str!("exchange.toml");

/// The catalogue format this code reads (`version` at the top of the file).
pub const FORMAT_VERSION: u32 = 1;

/// The whole catalogue: the documents cited and the roles, in file order.
///
/// Only [`Catalogue::from_toml`] (and [`Catalogue::embedded`]) make one, so every
/// `Catalogue` has passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    version: u32,
    seeds: Vec<Seed>,
    roles: Vec<Role>,
    services: Vec<Service>,
    signs: Signs,
}

/// The file's shape, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    version: u32,
    seed: Vec<Seed>,
    role: Vec<Role>,
    #[serde(default)]
    service: Vec<Service>,
    #[serde(default)]
    signs: Signs,
}

/// Exchange's own signs in a server's answers (`[signs]` in `exchange.toml`): site
/// inference counts them for a host it takes for an Exchange server. Each text is compared
/// without case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signs {
    /// Text Exchange's SMTP greeting carries (`Microsoft ESMTP MAIL Service`).
    #[serde(default)]
    pub smtp_banner: Vec<String>,
    /// Prefixes of the HTTP `Server` header of the web server Exchange runs in (IIS).
    #[serde(default)]
    pub http_server: Vec<String>,
    /// Names of HTTP response headers only Exchange sends (`X-FEServer`, `X-OWA-Version`).
    #[serde(default)]
    pub http_headers: Vec<String>,
    /// The lowest and highest TTL of a Windows host's packets as they arrive (Windows starts
    /// at 128; the lowest is one above Linux's 64).
    #[serde(default)]
    pub windows_ttl: Option<[u8; 2]>,
    /// Where the texts come from.
    #[serde(default)]
    pub note: String,
}

impl Signs {
    /// The first of `list` that `text` contains (`prefix`: that it starts with), without case.
    fn find<'a>(list: &'a [String], text: &[u8], prefix: bool) -> Option<&'a str> {
        list.iter()
            .find(|w| {
                let w = w.as_bytes();
                if prefix {
                    text.get(..w.len())
                        .is_some_and(|t| t.eq_ignore_ascii_case(w))
                } else {
                    !w.is_empty() && text.windows(w.len()).any(|t| t.eq_ignore_ascii_case(w))
                }
            })
            .map(String::as_str)
    }

    /// The sign an SMTP greeting's text carries.
    pub fn of_banner(&self, banner: &[u8]) -> Option<&str> {
        Signs::find(&self.smtp_banner, banner, false)
    }

    /// The sign an HTTP `Server` header carries.
    pub fn of_server(&self, server: &[u8]) -> Option<&str> {
        Signs::find(&self.http_server, server, true)
    }

    /// Exchange's header names among `names` (comma-joined, as the payload look keeps them).
    pub fn of_headers<'a>(&'a self, names: &[u8]) -> Vec<&'a str> {
        self.http_headers
            .iter()
            .filter(|h| {
                names
                    .split(|&c| c == b',')
                    .any(|n| n.eq_ignore_ascii_case(h.as_bytes()))
            })
            .map(String::as_str)
            .collect()
    }

    /// A TTL as a Windows host's packets arrive with it.
    pub fn windows(&self, ttl: u8) -> bool {
        self.windows_ttl
            .is_some_and(|[lo, hi]| (lo..=hi).contains(&ttl))
    }
}

/// An Exchange service (virtual directory) as HTTP paths and TLS server names tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The name reports and JSON use (`owa`, `autodiscover`, ...).
    pub name: String,
    /// Path prefixes, compared without case, each a whole path segment (`/owa` matches
    /// `/owa`, `/owa/` and `/OWA/auth.owa`, not `/owafoo`).
    pub paths: Vec<String>,
    /// Server-name prefixes (SNI, Host), compared without case (`autodiscover.`).
    #[serde(default)]
    pub names: Vec<String>,
    pub sources: Vec<Source>,
}

/// A document a role cites: one of the seed files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Three digits, the seed file's number ("000", "001", ...).
    pub id: String,
    /// The seed's file name.
    pub file: String,
    /// The document's title.
    pub title: String,
    /// True for community articles, false for Microsoft's own documentation.
    pub community: bool,
}

/// One kind of flow Exchange needs (or that a seed claims it needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Stable kebab-case name, used by reports, JSON and site files.
    pub id: String,
    /// One line a person reads.
    pub purpose: String,
    /// Transport, or the IP protocol number for roles without ports.
    pub proto: Proto,
    /// Destination ports; empty exactly when `proto` is an IP protocol number.
    #[serde(default)]
    pub ports: Vec<PortRange>,
    /// Where connections come from: zones and/or host roles (any of them).
    pub src: Vec<Place>,
    /// Where connections go to: zones and/or host roles (any of them).
    pub dst: Vec<Place>,
    /// The role also matches with `src` and `dst` swapped.
    #[serde(default)]
    pub both_ways: bool,
    /// The site profiles that expect this role.
    pub profiles: Vec<Profile>,
    /// Whether the role is expected to work, off, or either.
    pub default: DefaultState,
    /// The `[services]` key of the site file that switches the role, if any.
    #[serde(default)]
    pub service: Option<String>,
    /// The port must never be reachable from the internet.
    #[serde(default)]
    pub internal_only: bool,
    /// Microsoft does not support restricting this traffic (seed 001's ground rules).
    #[serde(default)]
    pub unrestricted: bool,
    /// Only community articles state this role.
    #[serde(default)]
    pub community: bool,
    /// Where each claim comes from; never empty.
    pub sources: Vec<Source>,
    /// Context, interpretation, caveats.
    #[serde(default)]
    pub note: Option<String>,
    /// Where the seeds disagree, every side stated.
    #[serde(default)]
    pub disagreement: Option<String>,
}

/// One claim and the seed that makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The seed's id ("000".."004").
    pub seed: String,
    /// A short quote or paraphrase of what the seed claims.
    pub claim: String,
}

/// A site profile: how mail reaches the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Mailbox servers only; they send and receive internet mail themselves.
    Mailbox,
    /// A subscribed Edge Transport server in the perimeter carries internet mail.
    Edge,
}

impl Profile {
    /// Every profile, in the order reports list them.
    pub const ALL: [Profile; 2] = [Profile::Mailbox, Profile::Edge];

    /// The name used in site files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Mailbox => "mailbox",
            Profile::Edge => "edge",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile '{s}' (expected mailbox or edge)"))
    }
}

/// A role's state when the site file does not switch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultState {
    /// Expected to work; a failure is a finding.
    Enabled,
    /// Off unless switched on; traffic seen on it is unexpected.
    Disabled,
    /// May or may not be in use; seen or not seen are both fine.
    Optional,
}

impl DefaultState {
    /// The name used in the catalogue file and in reports.
    pub fn name(self) -> &'static str {
        match self {
            DefaultState::Enabled => "enabled",
            DefaultState::Disabled => "disabled",
            DefaultState::Optional => "optional",
        }
    }
}

impl fmt::Display for DefaultState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A network zone of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    /// Every address that is neither internal nor perimeter.
    Internet,
    /// The organisation's internal networks.
    Internal,
    /// The perimeter network (DMZ), where an Edge lives.
    Perimeter,
}

impl Zone {
    /// Every zone.
    pub const ALL: [Zone; 3] = [Zone::Internet, Zone::Internal, Zone::Perimeter];

    /// The name used in the catalogue and site files.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Internet => "internet",
            Zone::Internal => "internal",
            Zone::Perimeter => "perimeter",
        }
    }
}

/// What a host is, as far as the catalogue is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    /// A mail client (Outlook, a phone, a browser, a POP/IMAP client).
    Client,
    /// An Exchange Mailbox server (with its Client Access services).
    Mailbox,
    /// An Exchange Edge Transport server.
    Edge,
    /// A DNS server.
    Dns,
    /// An Active Directory domain controller.
    Dc,
    /// Any Exchange server: Mailbox or Edge. Only the catalogue uses it, as a wildcard.
    Exchange,
    /// A Lync or Skype for Business server.
    Lync,
}

impl HostRole {
    /// Every host role.
    pub const ALL: [HostRole; 7] = [
        HostRole::Client,
        HostRole::Mailbox,
        HostRole::Edge,
        HostRole::Dns,
        HostRole::Dc,
        HostRole::Exchange,
        HostRole::Lync,
    ];

    /// The name used in the catalogue and site files.
    pub fn name(self) -> &'static str {
        match self {
            HostRole::Client => "client",
            HostRole::Mailbox => "mailbox",
            HostRole::Edge => "edge",
            HostRole::Dns => "dns",
            HostRole::Dc => "dc",
            HostRole::Exchange => "exchange",
            HostRole::Lync => "lync",
        }
    }

    /// Whether this is an Exchange server's role (Mailbox or Edge): the one definition.
    pub fn is_exchange(self) -> bool {
        matches!(self, HostRole::Mailbox | HostRole::Edge)
    }

    /// Whether a catalogue entry naming `self` covers a host known to be `actual`:
    /// equal roles, or `exchange` covering a Mailbox or Edge server.
    pub fn covers(self, actual: HostRole) -> bool {
        self == actual || (self == HostRole::Exchange && actual.is_exchange())
    }
}

/// One end of a role's flow: a whole zone or a kind of host.
///
/// Written in the catalogue as a bare name (`"internet"`, `"mailbox"`); zone and host-role
/// names do not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    /// Any address in the zone.
    Zone(Zone),
    /// Any host with the role.
    Host(HostRole),
}

impl Place {
    /// The name used in the catalogue.
    pub fn name(self) -> &'static str {
        match self {
            Place::Zone(z) => z.name(),
            Place::Host(h) => h.name(),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Place {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(z) = Zone::ALL.into_iter().find(|z| z.name() == s) {
            return Ok(Place::Zone(z));
        }
        if let Some(h) = HostRole::ALL.into_iter().find(|h| h.name() == s) {
            return Ok(Place::Host(h));
        }
        Err(format!(
            "unknown place '{s}' (expected a zone: internet, internal, perimeter; or a host \
             role: client, mailbox, edge, dns, dc, exchange, lync)"
        ))
    }
}

impl Serialize for Place {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Place {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PlaceVisitor;
        impl Visitor<'_> for PlaceVisitor {
            type Value = Place;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a zone or host role name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Place, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(PlaceVisitor)
    }
}

/// An inclusive range of ports; a single port is a range of one.
///
/// Written as a number (`443`) or a string (`"5075-5077"`, `"443"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// A range from `first` to `last` inclusive; `None` if `first > last` or `first` is 0.
    pub fn new(first: u16, last: u16) -> Option<PortRange> {
        (first != 0 && first <= last).then_some(PortRange { first, last })
    }

    /// A single port; `None` for port 0.
    pub fn single(port: u16) -> Option<PortRange> {
        PortRange::new(port, port)
    }

    /// The lowest port.
    pub fn first(self) -> u16 {
        self.first
    }

    /// The highest port.
    pub fn last(self) -> u16 {
        self.last
    }

    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("'{p}' is not a port number (1-65535)"))
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        PortRange::new(first, last).ok_or_else(|| {
            format!("bad port range '{s}' (ports are 1-65535, the first no higher than the last)")
        })
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.first == self.last {
            serializer.serialize_u16(self.first)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RangeVisitor;
        impl Visitor<'_> for RangeVisitor {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1-65535) or a range such as \"5075-5077\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRange, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                u16::try_from(v)
                    .ok()
                    .and_then(PortRange::single)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                u16::try_from(v)
                    .ok()
                    .and_then(PortRange::single)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        deserializer.deserialize_any(RangeVisitor)
    }
}

/// Why a catalogue could not be used.
#[derive(Debug)]
pub enum CatalogueError {
    /// The text is not TOML of the catalogue's shape.
    Parse(toml::de::Error),
    /// The text parsed but breaks a rule (the `what` names the role or seed).
    Invalid { what: String, problem: String },
}

impl CatalogueError {
    fn invalid(what: impl Into<String>, problem: impl Into<String>) -> Self {
        CatalogueError::Invalid {
            what: what.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogueError::Parse(e) => write!(f, "port catalogue: {e}"),
            CatalogueError::Invalid { what, problem } => {
                write!(f, "port catalogue: {what}: {problem}")
            }
        }
    }
}

impl std::error::Error for CatalogueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CatalogueError::Parse(e) => Some(e),
            CatalogueError::Invalid { .. } => None,
        }
    }
}

impl Catalogue {
    /// The catalogue compiled into exflow, parsed and validated on first use.
    ///
    /// An error here is a bug in `exchange.toml`; tests/catalogue.rs fails first.
    pub fn embedded() -> Result<&'static Catalogue, &'static CatalogueError> {
        static EMBEDDED: OnceLock<Result<Catalogue, CatalogueError>> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| Catalogue::from_toml(EMBEDDED_TOML))
            .as_ref()
    }

    /// Parses a catalogue in the format of `exchange.toml` and validates it.
    pub fn from_toml(text: &str) -> Result<Catalogue, CatalogueError> {
        let file: CatalogueFile = toml::from_str(text).map_err(CatalogueError::Parse)?;
        let catalogue = Catalogue {
            version: file.version,
            seeds: file.seed,
            roles: file.role,
            services: file.service,
            signs: file.signs,
        };
        catalogue.validate()?;
        Ok(catalogue)
    }

    /// The format version the file declares.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The documents the roles cite.
    pub fn seeds(&self) -> &[Seed] {
        &self.seeds
    }

    /// Every role, in file order.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The Exchange services HTTP paths and server names tell.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Exchange's own signs in a server's answers.
    pub fn signs(&self) -> &Signs {
        &self.signs
    }

    /// The service an HTTP request path names (query and fragment ignored).
    pub fn service_of_path(&self, path: &str) -> Option<&str> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        self.services.iter().find_map(|s| {
            s.paths
                .iter()
                .any(|p| {
                    path.len() >= p.len()
                        && path.is_char_boundary(p.len())
                        && path[..p.len()].eq_ignore_ascii_case(p)
                        && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
                })
                .then_some(s.name.as_str())
        })
    }

    /// The service a server name (SNI or Host) names by its first label.
    pub fn service_of_name(&self, name: &str) -> Option<&str> {
        self.services.iter().find_map(|s| {
            s.names
                .iter()
                .any(|p| {
                    name.len() >= p.len()
                        && name.is_char_boundary(p.len())
                        && name[..p.len()].eq_ignore_ascii_case(p)
                })
                .then_some(s.name.as_str())
        })
    }

    /// The seed with this id.
    pub fn seed(&self, id: &str) -> Option<&Seed> {
        self.seeds.iter().find(|s| s.id == id)
    }

    /// The role with this id.
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// The roles a connection to `port` over `proto` may belong to, whatever its endpoints.
    /// For an IP protocol without ports (`Proto::Ip`), `port` is ignored.
    pub fn roles_for(&self, proto: Proto, port: u16) -> impl Iterator<Item = &Role> + '_ {
        self.roles.iter().filter(move |r| r.matches(proto, port))
    }

    /// The roles a site with this profile expects (or may see), in file order.
    pub fn for_profile(&self, profile: Profile) -> impl Iterator<Item = &Role> + '_ {
        self.roles.iter().filter(move |r| r.in_profile(profile))
    }

    /// Checks the rules the file header promises. Called by [`Catalogue::from_toml`].
    fn validate(&self) -> Result<(), CatalogueError> {
        if self.version != FORMAT_VERSION {
            return Err(CatalogueError::invalid(
                "version",
                format!("is {}, this exflow reads {FORMAT_VERSION}", self.version),
            ));
        }
        for (i, seed) in self.seeds.iter().enumerate() {
            let what = format!("seed '{}'", seed.id);
            if seed.id.len() != 3 || !seed.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CatalogueError::invalid(what, "id must be three digits"));
            }
            if self.seeds[..i].iter().any(|s| s.id == seed.id) {
                return Err(CatalogueError::invalid(what, "duplicate id"));
            }
            if seed.title.trim().is_empty() || seed.file.trim().is_empty() {
                return Err(CatalogueError::invalid(what, "file and title are required"));
            }
        }
        for (i, role) in self.roles.iter().enumerate() {
            if self.roles[..i].iter().any(|r| r.id == role.id) {
                return Err(CatalogueError::invalid(
                    format!("role '{}'", role.id),
                    "duplicate id",
                ));
            }
            self.validate_role(role).map_err(|problem| {
                CatalogueError::invalid(format!("role '{}'", role.id), problem)
            })?;
        }
        Ok(())
    }

    fn validate_role(&self, role: &Role) -> Result<(), String> {
        if !is_kebab_case(&role.id) {
            return Err("id must be kebab-case (a-z, 0-9, single dashes)".into());
        }
        if role.purpose.trim().is_empty() || role.purpose.contains('\n') {
            return Err("purpose must be one non-empty line".into());
        }
        match role.proto {
            Proto::Ip(6) | Proto::Ip(17) => {
                return Err("write IP protocols 6 and 17 as \"tcp\" and \"udp\"".into())
            }
            Proto::Tcp | Proto::Udp if role.ports.is_empty() => {
                return Err(format!("a {} role needs ports", role.proto))
            }
            Proto::Ip(n) if !role.ports.is_empty() => {
                return Err(format!("IP protocol {n} has no ports; remove `ports`"))
            }
            _ => {}
        }
        if role.src.is_empty() || role.dst.is_empty() {
            return Err("src and dst must each name at least one zone or host role".into());
        }
        if role.profiles.is_empty() {
            return Err("profiles must name at least one profile".into());
        }
        if role.sources.is_empty() {
            return Err("sources must cite at least one seed".into());
        }
        let mut all_community = true;
        for source in &role.sources {
            let seed = self
                .seed(&source.seed)
                .ok_or_else(|| format!("cites unknown seed '{}'", source.seed))?;
            if source.claim.trim().is_empty() {
                return Err(format!("the claim from seed {} is empty", source.seed));
            }
            all_community &= seed.community;
        }
        if role.community != all_community {
            return Err(format!(
                "community = {} but the cited seeds say {}",
                role.community, all_community
            ));
        }
        let internet = Place::Zone(Zone::Internet);
        let from_internet =
            role.src.contains(&internet) || (role.both_ways && role.dst.contains(&internet));
        if role.internal_only && from_internet {
            return Err("internal_only role cannot have the internet as a source".into());
        }
        if let Some(service) = &role.service {
            if !is_kebab_case(service) {
                return Err("service must be kebab-case".into());
            }
        }
        for (name, text) in [("note", &role.note), ("disagreement", &role.disagreement)] {
            if text.as_ref().is_some_and(|t| t.trim().is_empty()) {
                return Err(format!("{name} is empty; omit it instead"));
            }
        }
        Ok(())
    }
}

impl Role {
    /// Whether `port` is one of the role's ports. Always false for a role without ports.
    pub fn matches_port(&self, port: u16) -> bool {
        self.ports.iter().any(|r| r.contains(port))
    }

    /// Whether a flow over `proto` to `port` may belong to this role (endpoints aside).
    /// For an IP protocol without ports, `port` is ignored.
    pub fn matches(&self, proto: Proto, port: u16) -> bool {
        self.proto == proto && (!proto.has_ports() || self.matches_port(port))
    }

    /// Whether sites with this profile expect (or may see) this role.
    pub fn in_profile(&self, profile: Profile) -> bool {
        self.profiles.contains(&profile)
    }

    /// Whether one of the role's sources is the seed `seed` ("000".."004").
    pub fn cites(&self, seed: &str) -> bool {
        self.sources.iter().any(|s| s.seed == seed)
    }

    /// The cited seed ids, in order of first citation, without repeats.
    pub fn seed_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            if !ids.contains(&s.seed.as_str()) {
                ids.push(&s.seed);
            }
        }
        ids
    }
}

/// `a-z`, `0-9` and single dashes, starting and ending with a letter or digit.
fn is_kebab_case(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_reject_nonsense() {
        assert_eq!(
            "5075-5077".parse(),
            Ok(PortRange {
                first: 5075,
                last: 5077
            })
        );
        assert_eq!(
            "443".parse(),
            Ok(PortRange {
                first: 443,
                last: 443
            })
        );
        assert!("5077-5075".parse::<PortRange>().is_err());
        assert!("0".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        assert!("http".parse::<PortRange>().is_err());
    }

    #[test]
    fn exchange_covers_mailbox_and_edge_only() {
        assert!(HostRole::Exchange.covers(HostRole::Edge));
        assert!(HostRole::Exchange.covers(HostRole::Mailbox));
        assert!(!HostRole::Exchange.covers(HostRole::Dc));
        assert!(!HostRole::Mailbox.covers(HostRole::Exchange));
    }

    #[test]
    fn kebab_case() {
        assert!(is_kebab_case("dag-replication-64327"));
        assert!(!is_kebab_case("Smtp"));
        assert!(!is_kebab_case("a--b"));
        assert!(!is_kebab_case("-a"));
    }
}
