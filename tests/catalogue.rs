//! The embedded Exchange port catalogue (src/classify/exchange.toml): it parses, every role
//! is sourced, every port of every seed is covered by a role citing that seed, and
//! `exflow ports` renders it within 100 columns and as JSON that reads back.

use exflow::classify::catalogue::{Catalogue, DefaultState, Profile, Proto, Role};
use exflow::report::port_catalogue::{render_json, render_table, PortsDocument, TABLE_WIDTH};

use Proto::{Tcp, Udp};

fn catalogue() -> &'static Catalogue {
    match Catalogue::embedded() {
        Ok(cat) => cat,
        Err(e) => panic!("the embedded catalogue must parse and validate: {e}"),
    }
}

fn role(id: &str) -> &'static Role {
    catalogue()
        .role(id)
        .unwrap_or_else(|| panic!("no role '{id}' in the catalogue"))
}

/// Every (seed, protocol, port) that the seeds' port tables and lists name, written by hand
/// from reading ../shared/seeds/. Where a seed gives no protocol, the protocol the catalogue
/// assumes (and says so in a note) is used. Dynamic RPC ("above 1024") is checked apart.
const SEED_PORTS: &[(&str, Proto, u16)] = &[
    // 000: alitajran.com, three tables (firewall rules, clients, mail flow).
    ("000", Tcp, 443),
    ("000", Tcp, 25),
    ("000", Tcp, 80),
    ("000", Tcp, 143),
    ("000", Tcp, 993),
    ("000", Tcp, 110),
    ("000", Tcp, 995),
    ("000", Tcp, 587),
    // 001: Microsoft, clients and services.
    ("001", Tcp, 443),
    ("001", Tcp, 80),
    ("001", Tcp, 143),
    ("001", Tcp, 993),
    ("001", Tcp, 110),
    ("001", Tcp, 995),
    ("001", Tcp, 587),
    // 001: mail flow without and with Edge.
    ("001", Tcp, 25),
    ("001", Udp, 53),
    ("001", Tcp, 53),
    ("001", Tcp, 50636),
    // 001: open proxy server detection (sender reputation).
    ("001", Tcp, 1081),
    ("001", Tcp, 1080),
    ("001", Tcp, 23),
    ("001", Tcp, 6588),
    ("001", Tcp, 3128),
    ("001", Tcp, 80),
    // 002: Richard May (Exchange 2010).
    ("002", Tcp, 110),
    ("002", Tcp, 995),
    ("002", Tcp, 143),
    ("002", Tcp, 993),
    ("002", Tcp, 5075),
    ("002", Tcp, 5076),
    ("002", Tcp, 5077),
    ("002", Tcp, 808),
    // 003: community guide (no protocols given; all TCP).
    ("003", Tcp, 80),
    ("003", Tcp, 443),
    ("003", Tcp, 25),
    ("003", Tcp, 587),
    ("003", Tcp, 143),
    ("003", Tcp, 993),
    ("003", Tcp, 110),
    ("003", Tcp, 995),
    ("003", Tcp, 389),
    ("003", Tcp, 636),
    // 004: theguler, first list.
    ("004", Tcp, 25),
    ("004", Tcp, 26),
    ("004", Tcp, 110),
    ("004", Tcp, 995),
    ("004", Tcp, 143),
    ("004", Tcp, 993),
    ("004", Tcp, 80),
    ("004", Tcp, 443),
    ("004", Tcp, 389),
    ("004", Udp, 389),
    ("004", Tcp, 3268),
    ("004", Tcp, 119),
    ("004", Tcp, 563),
    ("004", Tcp, 135),
    ("004", Tcp, 53),
    ("004", Udp, 53),
    ("004", Tcp, 102),
    ("004", Tcp, 88),
    ("004", Udp, 88),
    // 004: the IPsec paragraph (IP protocols 50 and 51 are checked below).
    ("004", Udp, 500),
    // 004: second table (no protocols given; TCP unless the first list said otherwise;
    // 3343 is checked on both transports).
    ("004", Tcp, 587),
    ("004", Tcp, 3343),
    ("004", Udp, 3343),
    ("004", Tcp, 5060),
    ("004", Tcp, 5061),
    ("004", Tcp, 5062),
    ("004", Tcp, 5075),
    ("004", Tcp, 5076),
    ("004", Tcp, 50636),
    ("004", Tcp, 64327),
];

#[test]
fn embedded_catalogue_parses_and_validates() {
    let cat = catalogue();
    assert_eq!(cat.version(), 1);
    assert_eq!(cat.seeds().len(), 5, "seeds 000..004");
    assert!(cat.roles().len() >= 40, "only {} roles", cat.roles().len());
}

#[test]
fn every_role_has_a_unique_id_a_source_and_a_port_or_ip_protocol() {
    let cat = catalogue();
    let mut ids: Vec<&str> = cat.roles().iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "duplicate role ids");
    for r in cat.roles() {
        assert!(!r.sources.is_empty(), "{} has no source", r.id);
        for s in &r.sources {
            assert!(
                cat.seed(&s.seed).is_some(),
                "{} cites unknown seed {}",
                r.id,
                s.seed
            );
            assert!(!s.claim.trim().is_empty(), "{} has an empty claim", r.id);
        }
        match r.proto {
            Proto::Tcp | Proto::Udp => assert!(!r.ports.is_empty(), "{} has no port", r.id),
            Proto::Ip(n) => assert!(r.ports.is_empty() && n != 6 && n != 17, "{}", r.id),
        }
        assert!(
            !r.src.is_empty() && !r.dst.is_empty() && !r.profiles.is_empty(),
            "{}",
            r.id
        );
    }
}

#[test]
fn community_flag_matches_the_cited_seeds() {
    let cat = catalogue();
    for r in cat.roles() {
        let only_community = r
            .sources
            .iter()
            .all(|s| cat.seed(&s.seed).is_some_and(|seed| seed.community));
        assert_eq!(r.community, only_community, "{}", r.id);
    }
    assert!(!role("https-client").community);
    assert!(role("ldap").community && role("ssl-smtp-26").community);
}

#[test]
fn every_port_of_every_seed_is_covered_by_a_role_citing_that_seed() {
    let cat = catalogue();
    let missing: Vec<String> = SEED_PORTS
        .iter()
        .filter(|(seed, proto, port)| !cat.roles_for(*proto, *port).any(|r| r.cites(seed)))
        .map(|(seed, proto, port)| format!("seed {seed}: {proto} {port}"))
        .collect();
    assert!(missing.is_empty(), "not covered: {missing:?}");
}

#[test]
fn ipsec_protocols_and_dynamic_rpc_are_covered() {
    let cat = catalogue();
    for n in [50, 51] {
        let roles: Vec<&str> = cat
            .roles_for(Proto::Ip(n), 0)
            .filter(|r| r.cites("004"))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(roles.len(), 1, "IP protocol {n}: {roles:?}");
    }
    // Seeds 002 and 004: dynamic RPC "above 1024"; recorded as Windows' 49152-65535 with the
    // difference stated.
    let rpc = role("rpc-dynamic");
    assert!(rpc.cites("002") && rpc.cites("004"));
    assert!(rpc.matches_port(49152) && rpc.matches_port(65535) && !rpc.matches_port(1025));
    assert!(rpc
        .disagreement
        .as_deref()
        .is_some_and(|d| d.contains("1024")));
}

#[test]
fn the_5075_to_5077_disagreement_is_recorded_with_both_sides() {
    let r = role("disputed-5075-5077");
    assert!(r.cites("002") && r.cites("004"));
    assert!((5075..=5077).all(|p| r.matches_port(p)));
    let text = r.disagreement.as_deref().unwrap_or_default();
    assert!(
        text.contains("OWA") && text.contains("Skype for Business"),
        "{text}"
    );
    let table = render_table(catalogue(), None);
    assert!(table.contains("! Seed 002 says OWA"), "{table}");
}

#[test]
fn disabled_by_default_roles_match_microsoft() {
    for id in ["imap4", "imap4s", "pop3", "pop3s"] {
        assert_eq!(role(id).default, DefaultState::Disabled, "{id}");
    }
    assert_eq!(role("imap4s").service.as_deref(), Some("imap4"));
    assert_eq!(role("https-client").default, DefaultState::Enabled);
    assert_eq!(role("open-proxy-socks").default, DefaultState::Optional);
}

#[test]
fn lookups_by_port_return_every_candidate_role() {
    let cat = catalogue();
    let ids =
        |proto, port| -> Vec<&str> { cat.roles_for(proto, port).map(|r| r.id.as_str()).collect() };
    let smtp = ids(Tcp, 25);
    for id in [
        "smtp-inbound",
        "smtp-outbound",
        "edge-smtp-inbound",
        "edge-to-mailbox-smtp",
        "mailbox-to-edge-smtp",
        "edge-smtp-outbound",
    ] {
        assert!(smtp.contains(&id), "{id} missing from {smtp:?}");
    }
    assert!(ids(Udp, 53).contains(&"dns-udp") && !ids(Udp, 53).contains(&"dns-tcp"));
    assert!(!ids(Tcp, 50636).contains(&"ldaps"));
    assert!(ids(Tcp, 50636).contains(&"edgesync"));
}

#[test]
fn profile_filtering_keeps_edge_roles_out_of_the_mailbox_profile() {
    let cat = catalogue();
    let mailbox: Vec<&str> = cat
        .for_profile(Profile::Mailbox)
        .map(|r| r.id.as_str())
        .collect();
    let edge: Vec<&str> = cat
        .for_profile(Profile::Edge)
        .map(|r| r.id.as_str())
        .collect();
    for id in [
        "edgesync",
        "edge-smtp-inbound",
        "mailbox-to-edge-smtp",
        "open-proxy-socks",
    ] {
        assert!(!mailbox.contains(&id) && edge.contains(&id), "{id}");
    }
    for id in ["smtp-inbound", "smtp-outbound"] {
        assert!(mailbox.contains(&id) && !edge.contains(&id), "{id}");
    }
    for id in ["https-client", "ldap", "rpc-dynamic"] {
        assert!(mailbox.contains(&id) && edge.contains(&id), "{id}");
    }

    let table = render_table(cat, Some(Profile::Mailbox));
    assert!(!table.contains("edgesync"), "{table}");
    assert!(table.contains("smtp-inbound"));
    let json = render_json(cat, Some(Profile::Mailbox)).unwrap();
    let doc: PortsDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(doc.profile, Some(Profile::Mailbox));
    assert!(doc.roles.iter().all(|r| r.in_profile(Profile::Mailbox)));
    assert_eq!(doc.roles.len(), mailbox.len());
}

#[test]
fn table_fits_100_columns_and_shows_flags_and_sources() {
    let cat = catalogue();
    for profile in [None, Some(Profile::Mailbox), Some(Profile::Edge)] {
        let table = render_table(cat, profile);
        for line in table.lines() {
            assert!(
                line.chars().count() <= TABLE_WIDTH,
                "{} columns: {line:?}",
                line.chars().count()
            );
        }
        for r in cat
            .roles()
            .iter()
            .filter(|r| profile.is_none_or(|p| r.in_profile(p)))
        {
            assert!(
                table.lines().any(|l| l.starts_with(&format!("{} ", r.id))),
                "{} has no row",
                r.id
            );
        }
    }
    let table = render_table(cat, None);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("disputed-5075-5077").contains("002 004"));
    assert!(row("disputed-5075-5077").trim_end().ends_with("C!"));
    assert!(row("ldap").trim_end().ends_with("CIU"));
    assert!(row("https-client").contains("000 001 003 004"));
    assert!(table.contains("Flags: C = stated only by community articles"));
}

#[test]
fn json_round_trips_with_stable_field_names() {
    let cat = catalogue();
    let json = render_json(cat, None).unwrap();
    let doc: PortsDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(doc, PortsDocument::new(cat, None));
    assert_eq!(doc.roles.as_slice(), cat.roles());

    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert!(value["profile"].is_null());
    let first = &value["roles"][0];
    for field in [
        "id",
        "purpose",
        "proto",
        "ports",
        "src",
        "dst",
        "both_ways",
        "profiles",
        "default",
        "service",
        "internal_only",
        "unrestricted",
        "community",
        "sources",
        "note",
        "disagreement",
    ] {
        assert!(first.get(field).is_some(), "field {field} missing: {first}");
    }
    let disputed = value["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "disputed-5075-5077")
        .unwrap();
    assert_eq!(disputed["ports"], serde_json::json!(["5075-5077"]));
    assert_eq!(disputed["proto"], "tcp");
    let esp = value["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "ipsec-esp")
        .unwrap();
    assert_eq!(esp["proto"], 50);
}

#[test]
fn bad_catalogues_are_rejected_with_the_role_named() {
    let seed =
        "version = 1\n[[seed]]\nid = \"001\"\nfile = \"f\"\ntitle = \"t\"\ncommunity = false\n";
    let role = |extra: &str| {
        format!(
            "{seed}[[role]]\nid = \"x\"\npurpose = \"p\"\nproto = \"tcp\"\nsrc = [\"internet\"]\n\
             dst = [\"mailbox\"]\nprofiles = [\"mailbox\"]\ndefault = \"enabled\"\n{extra}"
        )
    };
    let ok = role("ports = [25]\nsources = [{ seed = \"001\", claim = \"c\" }]\n");
    assert!(
        Catalogue::from_toml(&ok).is_ok(),
        "{:?}",
        Catalogue::from_toml(&ok).err()
    );

    let cases = [
        ("ports = [25]\nsources = []\n", "sources"),
        (
            "sources = [{ seed = \"001\", claim = \"c\" }]\n",
            "needs ports",
        ),
        (
            "ports = [25]\nsources = [{ seed = \"009\", claim = \"c\" }]\n",
            "unknown seed",
        ),
        (
            "ports = [25]\ncommunity = true\nsources = [{ seed = \"001\", claim = \"c\" }]\n",
            "community",
        ),
        (
            "ports = [25]\ninternal_only = true\nsources = [{ seed = \"001\", claim = \"c\" }]\n",
            "internet",
        ),
    ];
    for (extra, expected) in cases {
        let err = Catalogue::from_toml(&role(extra)).unwrap_err().to_string();
        assert!(err.contains("role 'x'") && err.contains(expected), "{err}");
    }
    for (extra, expected) in [
        (
            "ports = [\"26-25\"]\nsources = [{ seed = \"001\", claim = \"c\" }]\n",
            "range",
        ),
        (
            "ports = [25]\nsurce = 1\nsources = [{ seed = \"001\", claim = \"c\" }]\n",
            "surce",
        ),
    ] {
        let err = Catalogue::from_toml(&role(extra)).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    let dup = format!(
        "{ok}{}",
        &role("ports = [25]\nsources = [{ seed = \"001\", claim = \"c\" }]\n")[seed.len()..]
    );
    let err = Catalogue::from_toml(&dup).unwrap_err().to_string();
    assert!(err.contains("duplicate"), "{err}");
}
