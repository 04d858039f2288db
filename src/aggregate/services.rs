//! Exchange services per row: the connections of HTTPS and HTTP rows split by the Exchange
//! service their TLS server name (SNI) or HTTP request (path, else Host) names, with how
//! many of each went through. Facts only; the sentences are the report's.
//!
//! Which name or path means which service is data (`[[service]]` in `exchange.toml`, read
//! through [`Catalogue::service_of_name`] and [`Catalogue::service_of_path`]). A connection
//! whose name or path names no service counts as [`OTHER`]; one with no server name and no
//! HTTP request (or no look at all: connection records) is in no service.
//!
//! # Memory
//! Per conversation that carried such a connection, one small entry per (service, evidence)
//! pair seen: at most twice the catalogue's services plus two (a fixed set, 20 with the
//! embedded catalogue), whatever the number of connections. Nothing is kept per connection.

use super::rows::Finalized;
use super::GroupKey;
use crate::classify::catalogue::Catalogue;
use crate::classify::rules::{classify, Class};
use crate::classify::site::Site;
use crate::flow::payload::{Facts, HttpFacts};
use crate::flow::ConnRecord;

/// The name of the service a name or path that names no Exchange service counts as.
pub const OTHER: &str = "other";

/// What told the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceEvidence {
    /// The TLS ClientHello's server name.
    Sni,
    /// The HTTP request's path (or, where the path names none, its Host header).
    Http,
}

impl ServiceEvidence {
    /// The name in the JSON report (PRODUCT.md).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceEvidence::Sni => "sni",
            ServiceEvidence::Http => "http",
        }
    }
}

/// The connections of one service (by one kind of evidence) in a conversation or row.
///
/// `established` is the service's own exchange, not the TCP handshake: for `sni`, the
/// handshake completed (a ServerHello came back); for `http`, the request got a status line.
/// A firewall that filters by server name lets the TCP handshake through and resets the
/// ClientHello, which only this count shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceCount {
    /// A catalogue service's name, or [`OTHER`].
    pub name: &'static str,
    pub evidence: ServiceEvidence,
    pub attempts: u64,
    pub established: u64,
}

/// Adds `n` into `list` (one entry per name and evidence).
fn merge(list: &mut Vec<ServiceCount>, n: &ServiceCount) {
    match list
        .iter_mut()
        .find(|c| c.name == n.name && c.evidence == n.evidence)
    {
        Some(c) => {
            c.attempts += n.attempts;
            c.established += n.established;
        }
        None => list.push(*n),
    }
}

/// Most attempts first, then by name (and evidence): the report's order.
pub fn sort(list: &mut [ServiceCount]) {
    list.sort_by(|a, b| {
        b.attempts
            .cmp(&a.attempts)
            .then(a.name.cmp(b.name))
            .then(a.evidence.cmp(&b.evidence))
    });
}

/// The service a finished connection's look names in `cat` (the catalogue the aggregator
/// was given), by what, and whether it went through; `None` when it has no server name and
/// no HTTP request. No allocation: names are borrowed from `cat`; a name or path that names
/// none of its services is [`OTHER`], never the wire's own text.
pub fn of<'c>(r: &ConnRecord, cat: &'c Catalogue) -> Option<(&'c str, ServiceEvidence, bool)> {
    let look = r.look.as_deref()?;
    match look {
        Facts::Tls(t) if !t.sni.is_empty() => {
            let name = std::str::from_utf8(t.sni.bytes())
                .ok()
                .and_then(|n| cat.service_of_name(n));
            Some((name.unwrap_or(OTHER), ServiceEvidence::Sni, t.server_hello))
        }
        Facts::Http(h) if !h.path.is_empty() || !h.host.is_empty() => Some((
            of_http(h, cat).unwrap_or(OTHER),
            ServiceEvidence::Http,
            h.status != 0,
        )),
        _ => None,
    }
}

/// The catalogue service an HTTP request names: by its path, else by its Host header
/// (`None` when neither names one; the report counts such a request as [`OTHER`], the
/// `--flows` line's `http.service` is null).
pub fn of_http<'c>(h: &HttpFacts, cat: &'c Catalogue) -> Option<&'c str> {
    std::str::from_utf8(h.path.bytes())
        .ok()
        .and_then(|p| cat.service_of_path(p))
        .or_else(|| {
            std::str::from_utf8(h.host.bytes())
                .ok()
                .and_then(|n| cat.service_of_name(n))
        })
}

/// The services of every conversation (only conversations with one have an entry).
#[derive(Clone, Debug, Default)]
pub struct Services {
    convs: super::FastMap<GroupKey, Vec<ServiceCount>>,
}

impl Services {
    /// The catalogue service a TLS server name of this conversation named (`autodiscover`),
    /// if any did: one of Exchange's own signs for site inference.
    pub fn named_by_sni(&self, key: &GroupKey) -> Option<&'static str> {
        self.convs
            .get(key)?
            .iter()
            .find_map(|c| (c.evidence == ServiceEvidence::Sni && c.name != OTHER).then_some(c.name))
    }

    /// A finished connection, its service named from `cat`, the aggregator's catalogue
    /// (those without a server name or HTTP request cost nothing).
    pub fn add(&mut self, key: &GroupKey, r: &ConnRecord, cat: &'static Catalogue) {
        if let Some((name, evidence, through)) = of(r, cat) {
            let c = ServiceCount {
                name,
                evidence,
                attempts: 1,
                established: u64::from(through),
            };
            merge(self.convs.entry(*key).or_default(), &c);
        }
    }

    /// Sums each conversation's services into its expected or unexpected row, sorted.
    pub fn apply(&self, site: &Site, cat: &Catalogue, fin: &mut Finalized) {
        let mut keys: Vec<&GroupKey> = self.convs.keys().collect();
        keys.sort();
        for k in keys {
            let counts = &self.convs[k];
            let target = match classify(k, site, cat) {
                Class::Expected(i, s, d) => fin
                    .expected
                    .iter_mut()
                    .find(|r| r.role == i && r.src == s && r.dst == d)
                    .map(|r| &mut r.services),
                Class::Unexpected {
                    reason, src, dst, ..
                } => fin
                    .unexpected
                    .iter_mut()
                    .find(|u| {
                        u.proto == k.proto
                            && u.port == k.port
                            && u.src == src
                            && u.dst == dst
                            && u.reason == reason
                    })
                    .map(|u| &mut u.outcome.services),
                Class::Unrestricted(..) | Class::Unrelated => None,
            };
            if let Some(list) = target {
                for c in counts {
                    merge(list, c);
                }
            }
        }
        for r in &mut fin.expected {
            sort(&mut r.services);
        }
        for u in &mut fin.unexpected {
            sort(&mut u.outcome.services);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::catalogue::{HostRole, Profile, EMBEDDED_TOML};
    use crate::decode::Proto;
    use crate::flow::payload::tls::TlsFacts;
    use crate::flow::payload::HttpFacts;
    use crate::flow::{ConnState, Endpoint, Sink};

    /// The embedded catalogue and one service more (Skype for Business' discovery, which
    /// Exchange does not serve), named by a server name and a path.
    fn with_lync() -> &'static Catalogue {
        let text = format!(
            "{EMBEDDED_TOML}\n[[service]]\nname = \"lync\"\npaths = [\"/lync\"]\n\
             names = [\"lyncdiscover.\"]\nsources = [{{ seed = \"001\", claim = \"a test\" }}]\n"
        );
        // A 'static catalogue as the pipeline's are (the embedded one lives for the run).
        Box::leak(Box::new(Catalogue::from_toml(&text).expect("catalogue")))
    }

    /// A connection from the internet to 198.51.100.10:`port` that completed, with `look`.
    fn conn(port: u16, look: Facts) -> ConnRecord {
        let mut r = crate::flow::import::blank(
            Endpoint::new([203, 0, 113, 10].into(), 40000),
            Endpoint::new([198, 51, 100, 10].into(), port),
            Proto::Tcp,
        );
        r.history.set("ShADadFf");
        r.conn_state = ConnState::SF;
        r.orig_stats.pkts = 6;
        r.resp_stats.pkts = 6;
        r.look = Some(Box::new(look));
        r
    }

    fn tls(sni: &str, through: bool) -> Facts {
        let mut t = TlsFacts {
            client_hello: true,
            server_hello: through,
            server_seen: true,
            ..TlsFacts::default()
        };
        t.sni.set(sni.as_bytes());
        Facts::Tls(t)
    }

    fn http(path: &str, host: &str) -> Facts {
        let mut h = HttpFacts {
            status: 200,
            ..HttpFacts::default()
        };
        h.method.set(b"GET");
        h.path.set(path.as_bytes());
        h.host.set(host.as_bytes());
        Facts::Http(h)
    }

    #[test]
    fn the_catalogue_given_names_the_service() {
        let lync = with_lync();
        let embedded = Catalogue::embedded().unwrap();
        let r = conn(443, tls("lyncdiscover.example.test", false));
        assert_eq!(of(&r, lync), Some(("lync", ServiceEvidence::Sni, false)));
        assert_eq!(of(&r, embedded), Some((OTHER, ServiceEvidence::Sni, false)));
        // Both know autodiscover.
        let r = conn(443, tls("Autodiscover.example.test", true));
        assert_eq!(
            of(&r, lync),
            Some(("autodiscover", ServiceEvidence::Sni, true))
        );
        // By path, else by Host.
        let r = conn(80, http("/lync/meet?x=1", "www.example.test"));
        assert_eq!(of(&r, lync), Some(("lync", ServiceEvidence::Http, true)));
        assert_eq!(of(&r, embedded), Some((OTHER, ServiceEvidence::Http, true)));
        let r = conn(80, http("/", "lyncdiscover.example.test"));
        assert_eq!(of(&r, lync), Some(("lync", ServiceEvidence::Http, true)));
        // A name from the wire is never a service's name.
        let r = conn(443, tls("owa\u{1b}[31m<x>.example.test", true));
        assert_eq!(of(&r, lync), Some((OTHER, ServiceEvidence::Sni, true)));
        // Nothing told: no service.
        assert_eq!(of(&conn(443, tls("", true)), lync), None);
        assert_eq!(of(&conn(80, http("", "")), lync), None);
    }

    /// Through the aggregator: the catalogue it was given names its rows' services.
    #[test]
    fn the_aggregator_names_services_from_its_catalogue() {
        let lync = with_lync();
        let mut site = Site::new(Profile::Mailbox);
        site.add_host(HostRole::Mailbox, [198, 51, 100, 10].into());
        let rows = |cat: &'static Catalogue, set: bool| {
            let mut agg = super::super::Aggregator::default();
            if set {
                agg.set_catalogue(cat);
            }
            agg.conn(&conn(443, tls("lyncdiscover.example.test", false)));
            agg.conn(&conn(443, tls("lyncdiscover.example.test", true)));
            agg.conn(&conn(443, tls("autodiscover.example.test", true)));
            let fin = agg.finalize(&site, cat);
            let row = fin
                .expected
                .iter()
                .find(|e| cat.roles()[e.role].id == "https-client" && !e.services.is_empty())
                .expect("the https-client row with services");
            row.services.clone()
        };
        assert_eq!(
            rows(lync, true),
            vec![
                c("lync", ServiceEvidence::Sni, 2, 1),
                c("autodiscover", ServiceEvidence::Sni, 1, 1),
            ]
        );
        // The default, the embedded catalogue, knows no lync.
        assert_eq!(
            rows(lync, false),
            vec![
                c(OTHER, ServiceEvidence::Sni, 2, 1),
                c("autodiscover", ServiceEvidence::Sni, 1, 1),
            ]
        );
    }

    fn c(name: &'static str, evidence: ServiceEvidence, a: u64, e: u64) -> ServiceCount {
        ServiceCount {
            name,
            evidence,
            attempts: a,
            established: e,
        }
    }

    #[test]
    fn one_entry_per_service_and_evidence_summed_and_sorted() {
        let mut list = vec![];
        for _ in 0..1000 {
            merge(&mut list, &c("owa", ServiceEvidence::Sni, 1, 1));
            merge(&mut list, &c("autodiscover", ServiceEvidence::Sni, 1, 0));
        }
        merge(&mut list, &c("autodiscover", ServiceEvidence::Http, 1, 1));
        merge(&mut list, &c(OTHER, ServiceEvidence::Sni, 1000, 3));
        sort(&mut list);
        assert_eq!(
            list,
            vec![
                c("autodiscover", ServiceEvidence::Sni, 1000, 0),
                c(OTHER, ServiceEvidence::Sni, 1000, 3),
                c("owa", ServiceEvidence::Sni, 1000, 1000),
                c("autodiscover", ServiceEvidence::Http, 1, 1),
            ]
        );
    }
}
