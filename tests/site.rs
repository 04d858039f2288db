//! The site file (src/classify/site.rs): version 1 parses with PRODUCT.md's key names, networks
//! and hosts decide zones (perimeter over internal, NAT addresses in their host's zone),
//! `[services]` switches override the catalogue's defaults, every mistake is an input error
//! (exit 2) with its line number, and the `exflow init` template parses back.

use std::net::IpAddr;

use exflow::classify::catalogue::{Catalogue, HostRole, Profile, Role, Zone};
use exflow::classify::site::*;
use exflow::error::Error;

use crate::util::tmp_path;

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("test address {s:?} must parse"))
}

fn cidr(s: &str) -> Cidr {
    s.parse()
        .unwrap_or_else(|e| panic!("test network {s:?} must parse: {e}"))
}

fn parse(text: &str) -> Site {
    Site::from_toml(text, "site.toml").unwrap_or_else(|e| panic!("must parse: {e}\n{text}"))
}

fn role(id: &str) -> &'static Role {
    let cat: &'static Catalogue = match Catalogue::embedded() {
        Ok(c) => c,
        Err(e) => panic!("embedded catalogue: {e}"),
    };
    cat.role(id)
        .unwrap_or_else(|| panic!("no role {id} in the catalogue"))
}

/// The problem of an input error about `site.toml`; panics on success or another error kind.
fn problem(text: &str) -> String {
    match Site::from_toml(text, "site.toml") {
        Ok(site) => panic!("must fail: {text}\nparsed as {site:?}"),
        Err(Error::Input { file, problem }) => {
            assert_eq!(file, "site.toml");
            problem
        }
        Err(other) => panic!("must be an input error (exit 2), got {other:?}"),
    }
}

/// Asserts the error is on `line` and mentions every one of `words`.
fn assert_problem(text: &str, line: usize, words: &[&str]) {
    let p = problem(text);
    let prefix = format!("line {line}");
    assert!(
        p.starts_with(&format!("{prefix}:")) || p.starts_with(&format!("{prefix}, column")),
        "expected the error on line {line}, got: {p}"
    );
    for w in words {
        assert!(p.contains(w), "expected {w:?} in: {p}");
    }
}

const FULL: &str = r#"# a site with every key
profile = "edge"
internal = ["198.51.100.0/24", "2001:db8:200::/64"]
perimeter = ["192.0.2.128/26", "2001:db8:300::/64"]

[[host]]
role = "mailbox"
addresses = ["198.51.100.10", "2001:db8:200::10"]
nat = ["203.0.113.25"]

[[host]]
role = "edge"
addresses = ["192.0.2.140", "2001:db8:300::140"]
nat = ["203.0.113.26", "2001:db8:ffff::26"]

[[host]]
role = "dns"
addresses = ["198.51.100.53"]

[[host]]
role = "dc"
addresses = ["198.51.100.20"]

[[host]]
role = "client"
addresses = ["198.51.100.200"]

[services]
imap4 = true
http = false
"#;

#[test]
fn parses_a_full_example() {
    let site = parse(FULL);
    assert_eq!(site.profile, Profile::Edge);
    assert_eq!(site.source, SiteSource::File("site.toml".into()));
    assert!(!site.is_inferred());
    assert_eq!(site.file(), Some("site.toml"));
    assert_eq!(
        site.internal(),
        vec![cidr("198.51.100.0/24"), cidr("2001:db8:200::/64")]
    );
    assert_eq!(
        site.internal_strings(),
        vec!["198.51.100.0/24", "2001:db8:200::/64"]
    );
    assert_eq!(
        site.perimeter_strings(),
        vec!["192.0.2.128/26", "2001:db8:300::/64"]
    );
    let roles: Vec<HostRole> = site.hosts().iter().map(|h| h.role).collect();
    assert_eq!(
        roles,
        [
            HostRole::Mailbox,
            HostRole::Edge,
            HostRole::Dns,
            HostRole::Dc,
            HostRole::Client
        ]
    );
    assert_eq!(
        site.hosts()[0].addresses,
        [ip("198.51.100.10"), ip("2001:db8:200::10")]
    );
    assert_eq!(site.hosts()[0].nat, [ip("203.0.113.25")]);
    assert_eq!(
        site.hosts()[1].nat,
        [ip("203.0.113.26"), ip("2001:db8:ffff::26")]
    );
    assert!(site.hosts()[2].nat.is_empty());
    assert_eq!(site.services.get("imap4"), Some(&true));
    assert_eq!(site.services.get("http"), Some(&false));
    assert_eq!(site.services.len(), 2);
}

#[test]
fn profile_defaults_to_mailbox_and_an_empty_file_is_an_empty_site() {
    let site = parse("");
    assert_eq!(site.profile, Profile::Mailbox);
    assert!(site.hosts().is_empty() && site.internal().is_empty() && site.services.is_empty());
    assert_eq!(site.zone_of(ip("198.51.100.10")), Zone::Internet);
    let site = parse("internal = [\"10.0.0.0/8\"]\n");
    assert_eq!(site.profile, Profile::Mailbox);
}

#[test]
fn cidr_parses_displays_and_matches() {
    assert_eq!(cidr("192.0.2.0/24").to_string(), "192.0.2.0/24");
    assert_eq!(cidr("2001:db8:200::/64").to_string(), "2001:db8:200::/64");
    // A bare address is a single host.
    assert_eq!(cidr("192.0.2.7").to_string(), "192.0.2.7/32");
    assert_eq!(cidr("2001:db8::7").to_string(), "2001:db8::7/128");
    assert_eq!(cidr("192.0.2.7"), Cidr::host(ip("192.0.2.7")));
    // Host bits are accepted and cleared (what `ip addr` shows).
    assert_eq!(cidr("198.51.100.10/24"), cidr("198.51.100.0/24"));
    assert_eq!(cidr("2001:db8:200::10/64").to_string(), "2001:db8:200::/64");
    assert_eq!(cidr("198.51.100.10/24").network(), ip("198.51.100.0"));
    assert_eq!(cidr("198.51.100.10/24").prefix(), 24);
    assert!(cidr("198.51.100.10/24").is_ipv4());
    assert!(!cidr("2001:db8::/32").is_ipv4());
    // An IPv4-mapped network is the IPv4 network.
    assert_eq!(cidr("::ffff:192.0.2.0/120"), cidr("192.0.2.0/24"));
    assert_eq!(Cidr::new(ip("10.1.2.3"), 8), Some(cidr("10.0.0.0/8")));
    assert_eq!(Cidr::new(ip("10.1.2.3"), 33), None);

    let net = cidr("192.0.2.128/26");
    assert!(net.contains(ip("192.0.2.128")));
    assert!(net.contains(ip("192.0.2.191")));
    assert!(!net.contains(ip("192.0.2.192")));
    assert!(!net.contains(ip("192.0.2.127")));
    assert!(net.contains(ip("::ffff:192.0.2.140")));

    let v6 = cidr("2001:db8:200::/64");
    assert!(v6.contains(ip("2001:db8:200::ffff")));
    assert!(!v6.contains(ip("2001:db8:201::1")));

    // The whole of each family, and never the other family.
    let all4 = cidr("0.0.0.0/0");
    let all6 = cidr("::/0");
    assert!(all4.contains(ip("203.0.113.1")));
    assert!(!all4.contains(ip("2001:db8::1")));
    assert!(all6.contains(ip("2001:db8::1")));
    assert!(!all6.contains(ip("203.0.113.1")));
    assert!(!all6.contains(ip("::ffff:203.0.113.1")));
    assert!(!cidr("::/96").contains(ip("0.0.0.1")));

    for bad in [
        "192.0.2.300/24",
        "192.0.2.0/33",
        "2001:db8::/129",
        "192.0.2.0/",
        "/24",
        "192.0.2.0/+24",
        "192.0.2.0/24/1",
        "example.com",
        "",
    ] {
        let e = bad
            .parse::<Cidr>()
            .expect_err(&format!("{bad:?} must not parse"));
        assert_eq!(e, format!("\"{bad}\" is not an address or network"));
    }
}

#[test]
fn zone_of_internal_perimeter_internet() {
    let site = parse(FULL);
    assert_eq!(site.zone_of(ip("198.51.100.99")), Zone::Internal);
    assert_eq!(site.zone_of(ip("2001:db8:200::99")), Zone::Internal);
    assert_eq!(site.zone_of(ip("192.0.2.150")), Zone::Perimeter);
    assert_eq!(site.zone_of(ip("2001:db8:300::1")), Zone::Perimeter);
    assert_eq!(site.zone_of(ip("192.0.2.10")), Zone::Internet);
    assert_eq!(site.zone_of(ip("203.0.113.99")), Zone::Internet);
    assert_eq!(site.zone_of(ip("2001:db8:201::1")), Zone::Internet);
    // IPv4-mapped IPv6 is the IPv4 address.
    assert_eq!(site.zone_of(ip("::ffff:198.51.100.99")), Zone::Internal);
}

#[test]
fn zone_of_overlap_perimeter_wins() {
    // PRODUCT.md's own example: the perimeter /26 sits inside the internal /24.
    let site = parse(
        r#"internal = ["192.0.2.0/24", "2001:db8:200::/64"]
perimeter = ["192.0.2.128/26"]
"#,
    );
    assert_eq!(site.zone_of(ip("192.0.2.10")), Zone::Internal);
    assert_eq!(site.zone_of(ip("192.0.2.130")), Zone::Perimeter);
    assert_eq!(site.zone_of(ip("192.0.2.200")), Zone::Internal);
}

#[test]
fn zone_of_nat_address_is_its_hosts_zone() {
    let site = parse(FULL);
    // 203.0.113.25 is the mailbox server's public address: internal, like the server.
    assert_eq!(site.zone_of(ip("203.0.113.25")), Zone::Internal);
    // The Edge's public addresses are in the perimeter, like the Edge.
    assert_eq!(site.zone_of(ip("203.0.113.26")), Zone::Perimeter);
    assert_eq!(site.zone_of(ip("2001:db8:ffff::26")), Zone::Perimeter);
}

#[test]
fn zone_of_host_addresses_no_network_lists() {
    let site = parse(
        r#"internal = ["10.0.0.0/8"]

[[host]]
role = "mailbox"
addresses = ["192.168.1.52"]
nat = ["73.122.35.127"]

[[host]]
role = "edge"
addresses = ["172.16.0.5"]
nat = ["73.122.35.128"]

[[host]]
role = "dns"
addresses = ["192.168.1.1"]

[[host]]
role = "dc"
addresses = ["192.168.1.2", "10.0.0.2"]

[[host]]
role = "client"
addresses = ["192.168.1.100"]
"#,
    );
    assert_eq!(site.zone_of(ip("192.168.1.52")), Zone::Internal);
    assert_eq!(site.zone_of(ip("73.122.35.127")), Zone::Internal);
    assert_eq!(site.zone_of(ip("172.16.0.5")), Zone::Perimeter);
    assert_eq!(site.zone_of(ip("73.122.35.128")), Zone::Perimeter);
    assert_eq!(site.zone_of(ip("192.168.1.1")), Zone::Internal);
    assert_eq!(site.zone_of(ip("192.168.1.2")), Zone::Internal);
    assert_eq!(site.zone_of(ip("192.168.1.100")), Zone::Internet);
    assert_eq!(site.zone_of(ip("192.168.1.3")), Zone::Internet);
    let dc = site.host_of(ip("10.0.0.2")).map(|h| site.host_zone(h));
    assert_eq!(dc, Some(Zone::Internal));
}

#[test]
fn host_of_matches_own_and_nat_addresses() {
    let site = parse(FULL);
    let mailbox = site.host_of(ip("203.0.113.25"));
    assert_eq!(mailbox.map(|h| h.role), Some(HostRole::Mailbox));
    assert_eq!(mailbox, site.host_of(ip("198.51.100.10")));
    assert_eq!(mailbox, site.host_of(ip("2001:db8:200::10")));
    assert_eq!(mailbox, site.host_of(ip("::ffff:198.51.100.10")));
    assert_eq!(site.role_of(ip("2001:db8:ffff::26")), Some(HostRole::Edge));
    assert_eq!(site.role_of(ip("198.51.100.53")), Some(HostRole::Dns));
    assert_eq!(site.role_of(ip("198.51.100.20")), Some(HostRole::Dc));
    assert_eq!(site.role_of(ip("198.51.100.11")), None);
    assert!(site.host_of(ip("203.0.113.99")).is_none());

    assert!(site.is_exchange(ip("198.51.100.10")));
    assert!(site.is_exchange(ip("203.0.113.26")));
    assert!(!site.is_exchange(ip("198.51.100.53")));
    assert!(!site.is_exchange(ip("203.0.113.99")));

    let exchange: Vec<HostRole> = site
        .hosts_with(HostRole::Exchange)
        .map(|h| h.role)
        .collect();
    assert_eq!(exchange, [HostRole::Mailbox, HostRole::Edge]);
    assert_eq!(site.hosts_with(HostRole::Dc).count(), 1);
    assert_eq!(site.hosts_with(HostRole::Lync).count(), 0);
}

#[test]
fn service_switches_override_defaults() {
    let site = parse(FULL);
    // imap4 is disabled by default; the site switches it on (both imap4 roles).
    assert!(site.service_enabled(role("imap4")));
    assert!(site.service_enabled(role("imap4s")));
    // http is enabled by default; the site switches it off.
    assert!(!site.service_enabled(role("http-client")));
    // Not switched: the catalogue's default.
    assert!(!site.service_enabled(role("pop3")));
    assert!(site.service_enabled(role("smtp-submission")));
    assert!(site.service_enabled(role("https-client")));
    assert!(
        !site.service_enabled(role("ipsec-esp")),
        "optional is not on"
    );

    // A site without switches: defaults only.
    let plain = parse("");
    assert!(!plain.service_enabled(role("imap4")));
    assert!(plain.service_enabled(role("http-client")));

    // expects = in the profile and switched on.
    assert!(site.expects(role("imap4")));
    assert!(!site.expects(role("http-client")));
    assert!(site.expects(role("edge-smtp-inbound")));
    assert!(
        !site.expects(role("smtp-inbound")),
        "edge profile: not direct"
    );
    assert!(plain.expects(role("smtp-inbound")));
    assert!(!plain.expects(role("edge-smtp-inbound")));
}

#[test]
fn builders_make_an_inferred_site() {
    let mut site = Site::new(Profile::Mailbox);
    assert!(site.is_inferred());
    assert_eq!(site.source, SiteSource::Inferred);
    assert_eq!(site.file(), None);
    site.add_internal(cidr("10.0.0.0/8"))
        .add_internal(cidr("10.0.0.0/8"))
        .add_perimeter(cidr("10.9.0.0/16"))
        .add_host(HostRole::Mailbox, ip("10.0.0.5"))
        .add_host(HostRole::Dns, ip("10.0.0.5")) // already a mailbox: ignored
        .add_host(HostRole::Dc, ip("::ffff:10.0.0.6"))
        .add_address(ip("10.0.0.5"), ip("fd00::5"))
        .add_nat(ip("10.0.0.5"), ip("73.122.35.127"))
        .set_service("imap4", true);
    assert_eq!(site.internal_strings(), ["10.0.0.0/8"]);
    assert_eq!(site.perimeter_strings(), ["10.9.0.0/16"]);
    assert_eq!(site.hosts().len(), 2);
    assert_eq!(site.role_of(ip("10.0.0.5")), Some(HostRole::Mailbox));
    assert_eq!(site.role_of(ip("fd00::5")), Some(HostRole::Mailbox));
    assert_eq!(site.role_of(ip("73.122.35.127")), Some(HostRole::Mailbox));
    assert_eq!(
        site.hosts()[1].addresses,
        [ip("10.0.0.6")],
        "stored as IPv4"
    );
    assert_eq!(site.role_of(ip("10.0.0.6")), Some(HostRole::Dc));
    assert_eq!(site.zone_of(ip("73.122.35.127")), Zone::Internal);
    assert_eq!(site.zone_of(ip("10.9.1.1")), Zone::Perimeter);
    assert!(site.service_enabled(role("imap4")));
}

#[test]
fn loads_from_a_file_and_names_it_in_errors() {
    let path = tmp_path("site.toml");
    std::fs::write(&path, FULL).unwrap();
    let site = Site::load(&path).unwrap();
    assert_eq!(site.file(), Some(path.display().to_string().as_str()));
    assert_eq!(site.hosts().len(), 5);

    let missing = tmp_path("missing.toml");
    match Site::load(&missing) {
        Err(Error::Input { file, problem }) => {
            assert_eq!(file, missing.display().to_string());
            assert!(problem.contains("cannot read"), "{problem}");
        }
        other => panic!("must be an input error: {other:?}"),
    }

    std::fs::write(&path, "profile = \"mailbx\"\n").unwrap();
    let e = Site::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: line 1: unknown profile \"mailbx\" (expected mailbox or edge)",
            path.display()
        )
    );
}

// ---- errors: every one an input error (exit 2) naming the line ----

#[test]
fn error_bad_network_names_line_and_key() {
    let text = "# site\n\n\nprofile = \"mailbox\"\n\n# networks\ninternal = [\"198.51.100.0/24\", \"192.0.2.300/24\"]\n";
    assert_eq!(
        problem(text),
        "line 7: \"192.0.2.300/24\" is not an address or network (in internal)"
    );
    // The line of the element, in a list written over several lines.
    let text = "perimeter = [\n  \"192.0.2.128/26\",\n  \"192.0.2.128/99\",\n]\n";
    assert_eq!(
        problem(text),
        "line 3: \"192.0.2.128/99\" is not an address or network (in perimeter)"
    );
}

#[test]
fn error_unknown_profile() {
    let text = "# my site\n\nprofile = \"mailbx\"\n";
    assert_eq!(
        problem(text),
        "line 3: unknown profile \"mailbx\" (expected mailbox or edge)"
    );
    assert_problem("profile = 1\n", 1, &["profile must be a string"]);
}

#[test]
fn error_host_role_not_a_site_role() {
    let text = r#"profile = "mailbox"
internal = ["198.51.100.0/24"]

[[host]]
role = "mailbox"
addresses = ["198.51.100.10"]

[[host]]
role = "dns"
addresses = ["198.51.100.53"]

[[host]]
role = "exchange"
addresses = ["198.51.100.11"]
"#;
    assert_eq!(
        problem(text),
        "line 13: host role \"exchange\" is not one of mailbox, edge, dns, dc, client"
    );
    assert_problem(
        "[[host]]\nrole = \"lync\"\naddresses = [\"10.0.0.1\"]\n",
        2,
        &["\"lync\"", "mailbox, edge, dns, dc, client"],
    );
}

#[test]
fn error_unknown_keys_list_the_known_ones() {
    assert_problem(
        "profile = \"mailbox\"\ninternals = [\"10.0.0.0/8\"]\n",
        2,
        &[
            "unknown key \"internals\"",
            "profile, internal, perimeter, host, services",
        ],
    );
    assert_problem(
        "internal = [\"10.0.0.0/8\"]\n\n[[hosts]]\nrole = \"dc\"\n",
        3,
        &["unknown key \"hosts\""],
    );
    assert_problem(
        "[[host]]\nrole = \"dc\"\nadresses = [\"10.0.0.1\"]\n",
        3,
        &[
            "unknown key \"adresses\" in [[host]]",
            "role, addresses, nat",
        ],
    );
}

#[test]
fn error_host_needs_a_role_and_an_address() {
    let text = "internal = [\"10.0.0.0/8\"]\n\n[[host]]\nrole = \"dc\"\naddresses = [\"10.0.0.2\"]\n\n[[host]]\nrole = \"mailbox\"\n";
    assert_problem(text, 7, &["mailbox host has no address", "at least one"]);
    let text = "[[host]]\nrole = \"mailbox\"\naddresses = []\nnat = [\"203.0.113.1\"]\n";
    assert_problem(text, 1, &["at least one"]);
    let text = "[[host]]\naddresses = [\"10.0.0.1\"]\n";
    assert_problem(text, 1, &["no role", "mailbox, edge, dns, dc, client"]);
    let text = "[[host]]\nrole = \"dc\"\naddresses = [\"10.0.0.0/8\"]\n";
    assert_problem(text, 3, &["\"10.0.0.0/8\" is not an address", "dc host"]);
    let text = "[[host]]\nrole = \"dc\"\naddresses = \"10.0.0.1\"\n";
    assert_problem(text, 3, &["addresses must be a list of strings"]);
    let text = "[host]\nrole = \"dc\"\naddresses = [\"10.0.0.1\"]\n";
    assert_problem(text, 1, &["[[host]]"]);
}

#[test]
fn error_same_address_in_two_hosts() {
    let text = r#"[[host]]
role = "mailbox"
addresses = ["198.51.100.10"]
nat = ["203.0.113.25"]

[[host]]
role = "edge"
addresses = ["192.0.2.140"]
nat = ["203.0.113.25"]
"#;
    assert_eq!(
        problem(text),
        "line 9: address 203.0.113.25 is listed twice: here and for the mailbox host on line 4"
    );
    // The same address written two ways (IPv4 and IPv4-mapped IPv6) is the same address.
    let text = "[[host]]\nrole = \"dc\"\naddresses = [\"10.0.0.1\"]\n[[host]]\nrole = \"dns\"\naddresses = [\"::ffff:10.0.0.1\"]\n";
    assert_problem(text, 6, &["10.0.0.1 is listed twice", "dc host on line 3"]);
}

#[test]
fn error_unknown_or_non_boolean_service() {
    let text = "profile = \"mailbox\"\n\n[services]\nimap4 = true\nimap = true\n";
    assert_problem(
        text,
        5,
        &[
            "unknown service \"imap\" in [services]",
            "http",
            "imap4",
            "pop3",
            "smtp-submission",
        ],
    );
    assert_problem(
        "[services]\npop3 = \"yes\"\n",
        2,
        &["pop3 must be true or false"],
    );
    assert_problem("services = 1\n", 1, &["services must be a table"]);
}

#[test]
fn error_toml_syntax_has_line_and_column() {
    let p = problem("profile = \"mailbox\"\ninternal = [\"10.0.0.0/8\"\n\n[[host]]\n");
    assert!(p.starts_with("line "), "{p}");
    assert!(p.contains("column"), "{p}");
    let p = problem("profile = \"mailbox\"\nprofile = \"edge\"\n");
    assert!(p.starts_with("line 2, column 1: "), "{p}");
    assert!(p.contains("duplicate key"), "{p}");
}

#[test]
fn error_display_is_file_colon_problem() {
    let e = Site::from_toml("profile = \"mailbx\"\n", "topo/site.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "topo/site.toml: line 1: unknown profile \"mailbx\" (expected mailbox or edge)"
    );
}

// ---- the `exflow init` template ----

#[test]
fn template_parses_and_yields_its_hosts() {
    let text = template();
    let site = parse(&text);
    assert_eq!(site.profile, Profile::Mailbox);
    assert_eq!(
        site.internal_strings(),
        ["198.51.100.0/24", "2001:db8:200::/64"]
    );
    assert_eq!(site.perimeter_strings(), ["192.0.2.128/26"]);
    let roles: Vec<HostRole> = site.hosts().iter().map(|h| h.role).collect();
    assert_eq!(roles, [HostRole::Mailbox, HostRole::Dns, HostRole::Dc]);
    let mailbox = &site.hosts()[0];
    assert_eq!(
        mailbox.addresses,
        [ip("198.51.100.10"), ip("2001:db8:200::10")]
    );
    assert_eq!(mailbox.nat, [ip("203.0.113.25")]);
    assert_eq!(site.zone_of(ip("203.0.113.25")), Zone::Internal);
    assert!(site.services.is_empty(), "every switch is commented out");
    assert!(text.lines().all(|l| l.len() <= 100), "fits 100 columns");
    // Every key of the format is explained.
    for key in [
        "profile",
        "internal",
        "perimeter",
        "[[host]]",
        "role",
        "addresses",
        "nat",
        "[services]",
    ] {
        assert!(text.contains(key), "template must mention {key}");
    }
}

#[test]
fn template_lists_every_service_and_switching_them_all_parses() {
    let text = template();
    let cat = match Catalogue::embedded() {
        Ok(c) => c,
        Err(e) => panic!("embedded catalogue: {e}"),
    };
    let services = switchable_services(cat);
    assert!(services.contains(&"imap4") && services.contains(&"http"));
    for s in &services {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("# {s} "))),
            "template must list service {s}"
        );
    }
    // Uncomment every service line: each flips its service away from the default.
    let mut in_services = false;
    let mut uncommented = String::new();
    for line in text.lines() {
        if line == "[services]" {
            in_services = true;
        }
        match line.strip_prefix("# ") {
            Some(rest) if in_services => uncommented.push_str(rest),
            _ => uncommented.push_str(line),
        }
        uncommented.push('\n');
    }
    let site = parse(&uncommented);
    assert_eq!(site.services.len(), services.len());
    assert!(site.service_enabled(role("imap4")));
    assert!(site.service_enabled(role("pop3")));
    assert!(!site.service_enabled(role("http-client")));
    assert!(!site.service_enabled(role("smtp-submission")));
}

// ---- issue 18: lookups by index, bounded inference, a bounded site file ----

use exflow::classify::infer::{self, Conversation, Reason, MAX_INFERRED_HOSTS};
use exflow::classify::rules::{classify, ConvKey};
use std::time::{Duration, Instant};

/// A deterministic stream of pseudo-random numbers (an LCG: generators in test code only).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

/// `n` answered handshakes, each from a source of its own in 198.18.0.0/15 to a random host
/// of its own in 10.0.0.0/8, on 443: every responder looks like a Mailbox server (no source
/// reaches several, which would make it a browser).
fn handshakes_to_random_hosts(n: u32) -> Vec<Conversation> {
    let mut rng = Lcg(18);
    let mut hosts = std::collections::BTreeSet::new();
    while hosts.len() < n as usize {
        hosts.insert(rng.next() & 0x00ff_ffff | 0x0a00_0000);
    }
    hosts
        .into_iter()
        .zip(0u32..)
        .map(|(h, i)| Conversation {
            key: ConvKey {
                proto: exflow::classify::catalogue::Proto::Tcp,
                orig: IpAddr::from((0xc612_0000 + i).to_be_bytes()),
                resp: IpAddr::from(h.to_be_bytes()),
                port: 443,
            },
            attempts: 1,
            established: 1,
            one_sided: 0,
            resp_ttl: None,
            answers: None,
            sni_service: None,
        })
        .collect()
}

/// Infers the site of `n` handshakes to random hosts and classifies every conversation.
fn infer_and_classify(n: u32) -> (Duration, infer::Inferred) {
    let cat = Catalogue::embedded().unwrap();
    let convs = handshakes_to_random_hosts(n);
    let start = Instant::now();
    let inferred = infer::infer(&convs, cat);
    for c in &convs {
        std::hint::black_box(classify(&c.key, &inferred.site, cat));
    }
    (start.elapsed(), inferred)
}

/// Issue 18, finding 3: "the report is quadratic without a site file". Every lookup scanned
/// every host and inference added a host per responder (200k handshakes: 15.5 s). Now 4× the
/// conversations take about 4× the time (a quadratic cost would be 16×; the bound is
/// generous), and inference names at most MAX_INFERRED_HOSTS Mailbox servers, counting the
/// rest with their conversations.
#[test]
fn the_report_is_quadratic_without_a_site_file() {
    let n = 3_000;
    let (small, _) = infer_and_classify(n);
    let (large, inferred) = infer_and_classify(4 * n);
    assert!(
        large < small * 10 + Duration::from_millis(500),
        "4× the conversations took {large:?} against {small:?}: not linear"
    );
    let mailboxes = inferred
        .site
        .hosts()
        .iter()
        .filter(|h| h.role == HostRole::Mailbox)
        .count();
    assert_eq!(mailboxes, MAX_INFERRED_HOSTS);
    let left = (4 * n) as usize - MAX_INFERRED_HOSTS;
    assert!(
        inferred
            .reasons
            .contains(&Reason::TooMany(HostRole::Mailbox, left, left as u64)),
        "the hosts left unnamed are counted: {:?}",
        inferred.reasons.last()
    );
}

/// Below the bound inference names every host it finds, as before.
#[test]
fn inference_names_every_host_below_the_bound() {
    let (_, inferred) = infer_and_classify(MAX_INFERRED_HOSTS as u32);
    assert_eq!(inferred.site.hosts().len(), MAX_INFERRED_HOSTS);
    assert!(!inferred
        .reasons
        .iter()
        .any(|r| matches!(r, Reason::TooMany(..))));
}

/// The same through the binary: a capture of answered handshakes to random hosts; 4× the
/// handshakes take about 4× the time (before: 10k took 31 s and 20k 230 s in a release
/// build), and the report says how many hosts were left unnamed.
#[test]
fn the_report_is_quadratic_without_a_site_file_end_to_end() {
    use crate::util::{exflow, stdout, Host as End, TinyPcap, ACK, SYN};
    let run = |n: u32| {
        let mut rng = Lcg(7);
        let mut hosts = std::collections::BTreeSet::new();
        while hosts.len() < n as usize {
            hosts.insert(rng.next() & 0x00ff_ffff | 0x0a00_0000);
        }
        let hosts: Vec<u32> = hosts.into_iter().collect();
        let mut pcap = TinyPcap::new(None);
        let t0 = 1_700_000_000_000_000u64;
        for i in 0..n {
            let c = End {
                ip: (0xc612_0000 + i).to_be_bytes(),
                port: 1024 + (rng.next() % 60_000) as u16,
                ttl: 64,
            };
            let s = End {
                ip: hosts[i as usize].to_be_bytes(),
                port: 443,
                ttl: 128,
            };
            let t = t0 + u64::from(i) * 100;
            pcap.tcp(t, c, s, SYN, 1000, 0, &[])
                .tcp(t + 10, s, c, SYN | ACK, 5000, 1001, &[])
                .tcp(t + 20, c, s, ACK, 1001, 5001, &[]);
        }
        let path = tmp_path("handshakes.pcap");
        std::fs::write(&path, pcap.bytes()).unwrap();
        let start = Instant::now();
        let o = exflow(&["analyze", path.to_str().unwrap(), "--format", "json"]);
        let took = start.elapsed();
        let _ = std::fs::remove_file(&path);
        assert!(o.status.success(), "{o:?}");
        (took, stdout(&o))
    };
    let n = 1_000;
    let (small, _) = run(n);
    let (large, report) = run(4 * n);
    assert!(
        large < small * 10 + Duration::from_secs(3),
        "4× the handshakes took {large:?} against {small:?}: not linear"
    );
    let left = 4 * n as usize - MAX_INFERRED_HOSTS;
    assert!(
        report.contains(&format!("{left} more hosts looked like Mailbox servers"))
            && report.contains(&format!("{left} conversations with them")),
        "the report counts the hosts left unnamed"
    );
}

/// A site file of `n` hosts, each with an address and a NAT address.
fn site_of(n: u32) -> String {
    let mut text = String::from("internal = [\"10.0.0.0/8\"]\n");
    for i in 0..n {
        let [_, b, c, d] = (10u32 << 24 | (i + 1)).to_be_bytes();
        let [_, y, z, w] = (100u32 << 24 | (i + 1)).to_be_bytes();
        text.push_str(&format!(
            "[[host]]\nrole = \"client\"\naddresses = [\"10.{b}.{c}.{d}\"]\nnat = [\"100.{y}.{z}.{w}\"]\n"
        ));
    }
    text
}

/// Issue 18, finding 8: "the site file is parsed quadratically" (100k hosts: 66 s): every
/// address counted the lines from the top and was checked against every address before it.
/// 4× the hosts now take about 4× the time, and lookups in the large site find every host.
#[test]
fn the_site_file_is_parsed_quadratically() {
    let time = |n: u32| {
        let text = site_of(n);
        let start = Instant::now();
        let site = parse(&text);
        (start.elapsed(), site)
    };
    let n = 2_000;
    let (small, _) = time(n);
    let (large, site) = time(4 * n);
    assert!(
        large < small * 10 + Duration::from_millis(500),
        "4× the hosts took {large:?} against {small:?}: not linear"
    );
    assert_eq!(site.hosts().len(), 4 * n as usize);
    let last = site.hosts().last().unwrap();
    assert_eq!(site.host_of(ip("100.0.31.64")), Some(last));
    assert_eq!(
        site.zone_of(ip("100.0.31.64")),
        Zone::Internal,
        "its host's zone"
    );
    assert_eq!(site.zone_of(ip("100.0.31.65")), Zone::Internet);
    // A duplicate far down the file is still found, with both lines.
    let dup = format!(
        "{}[[host]]\nrole = \"dns\"\naddresses = [\"10.0.0.1\"]\n",
        site_of(n)
    );
    let p = problem(&dup);
    assert!(p.contains("listed twice") && p.contains("line 4"), "{p}");
}

/// Issue 18, finding 8: "the site file is read whole with no size limit" (`--site /dev/zero`
/// ran until out of memory). It is read up to MAX_SITE_FILE_BYTES, then refused with exit 2.
#[test]
fn the_site_file_is_read_whole_with_no_size_limit() {
    let zero = std::path::Path::new("/dev/zero");
    if !zero.exists() {
        return crate::util::skip("site /dev/zero", "no /dev/zero");
    }
    match Site::load(zero) {
        Err(Error::Input { problem, .. }) => {
            assert!(problem.contains("longer than 16 MiB"), "{problem}")
        }
        other => panic!("must be an input error: {other:?}"),
    }
    // One byte past the limit is refused; the limit itself is read.
    let path = tmp_path("big.site.toml");
    let mut text = vec![b'#'; MAX_SITE_FILE_BYTES as usize + 1];
    text[MAX_SITE_FILE_BYTES as usize - 1] = b'\n';
    std::fs::write(&path, &text).unwrap();
    assert!(Site::load(&path).is_err());
    text.truncate(MAX_SITE_FILE_BYTES as usize);
    std::fs::write(&path, &text).unwrap();
    assert!(
        Site::load(&path).is_ok(),
        "a file of exactly the limit is read"
    );
    let _ = std::fs::remove_file(&path);

    // Through the binary: exit 2, promptly (the child is killed if it runs on).
    let pcap = crate::util::root().join("samples");
    let sample = std::fs::read_dir(&pcap)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "pcap"))
        .expect("a sample capture");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["analyze", sample.to_str().unwrap(), "--site", "/dev/zero"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("exflow --site /dev/zero still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("longer than 16 MiB") && err.len() < 400,
        "{err}"
    );
}

/// Issue 18, finding 8: "a 50 MB site value is echoed whole on stderr". Messages quote at most
/// MAX_QUOTED_CHARS characters of a value, then "…", whichever key holds it.
#[test]
fn a_50_mb_site_value_is_echoed_whole_on_stderr() {
    let long = "x".repeat(1_000_000);
    let cases = [
        format!("profile = \"{long}\"\n"),
        format!("internal = [\"{long}\"]\n"),
        format!("[[host]]\nrole = \"{long}\"\naddresses = [\"10.0.0.1\"]\n"),
        format!("[[host]]\nrole = \"dns\"\naddresses = [\"{long}\"]\n"),
        format!("{long} = 1\n"),
        format!("[services]\n{long} = true\n"),
        format!("[services]\nimap4 = \"{long}\"\n"),
        format!("a = 1\na = \"{long}\"\n"),
    ];
    for text in cases {
        let p = problem(&text);
        assert!(p.len() < 1_000, "{} bytes quoted: {}…", p.len(), &p[..200]);
    }
    let p = problem(&format!("profile = \"{long}\"\n"));
    assert!(
        p.contains(&format!("\"{}…\"", "x".repeat(MAX_QUOTED_CHARS))),
        "{p}"
    );
    // A short value is quoted whole, its quotes escaped.
    let p = problem("profile = 'ma\"il'\n");
    assert!(p.contains(r#""ma\"il""#), "{p}");
}

/// The prefix table finds the longest network holding an address, IPv4 and IPv6, and never
/// matches across families (an IPv4-mapped address is its IPv4 address).
#[test]
fn prefix_table_longest_match() {
    let mut t = PrefixTable::new();
    assert_eq!(t.longest_match(ip("10.1.2.3")), None);
    for c in [
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.0/24",
        "0.0.0.0/0",
        "2001:db8::/32",
    ] {
        assert!(t.insert(cidr(c)));
    }
    assert!(
        !t.insert(cidr("10.1.2.9/24")),
        "the same network (host bits cleared)"
    );
    assert_eq!(t.len(), 5);
    assert_eq!(t.longest_match(ip("10.1.2.3")), Some(cidr("10.1.2.0/24")));
    assert_eq!(t.longest_match(ip("10.1.3.3")), Some(cidr("10.1.0.0/16")));
    assert_eq!(t.longest_match(ip("10.2.0.0")), Some(cidr("10.0.0.0/8")));
    assert_eq!(t.longest_match(ip("192.0.2.1")), Some(cidr("0.0.0.0/0")));
    assert_eq!(
        t.longest_match(ip("::ffff:10.1.2.3")),
        Some(cidr("10.1.2.0/24"))
    );
    assert_eq!(
        t.longest_match(ip("2001:db8:1::1")),
        Some(cidr("2001:db8::/32"))
    );
    assert_eq!(t.longest_match(ip("2001:db9::1")), None, "no IPv6 /0");
    assert!(t.insert(cidr("2001:db8:1::5/128")));
    assert_eq!(
        t.longest_match(ip("2001:db8:1::5")),
        Some(cidr("2001:db8:1::5/128"))
    );
    assert!(t.has(cidr("10.1.0.0/16")) && !t.has(cidr("10.1.0.0/17")));
}

/// The index follows the builders: hosts, addresses and NAT addresses added after networks
/// (and networks added after hosts) are found, and the first owner of an address keeps it.
#[test]
fn the_index_follows_every_change() {
    let mut site = Site::new(Profile::Mailbox);
    site.add_host(HostRole::Mailbox, ip("192.0.2.10"));
    assert_eq!(
        site.zone_of(ip("192.0.2.10")),
        Zone::Internal,
        "role default"
    );
    site.add_nat(ip("192.0.2.10"), ip("203.0.113.25"));
    assert_eq!(site.zone_of(ip("203.0.113.25")), Zone::Internal);
    site.add_perimeter(cidr("192.0.2.0/24"));
    assert_eq!(
        site.zone_of(ip("203.0.113.25")),
        Zone::Perimeter,
        "recomputed"
    );
    site.add_address(ip("203.0.113.25"), ip("::ffff:198.51.100.7"));
    assert_eq!(site.host_of(ip("198.51.100.7")), site.hosts().first());
    site.add_host(HostRole::Dns, ip("198.51.100.7"));
    assert_eq!(site.hosts().len(), 1, "the address has an owner");
    assert_eq!(site.role_of(ip("198.51.100.7")), Some(HostRole::Mailbox));
    let copy = site.clone();
    assert_eq!(copy, site);
    assert_eq!(copy.host_zone(&copy.hosts()[0]), Zone::Perimeter);
}

/// Issue 18, finding 3, with a site file: where the capture is seen from was worked out by
/// adding every address of a conversation's host, once per conversation, so a host the site
/// file gives many addresses made the report quadratic. 4× the conversations to a host of 4×
/// the addresses now take about 4× the time.
#[test]
fn the_report_is_quadratic_with_a_host_of_many_addresses() {
    use crate::util::{exflow, Host as End, TinyPcap, ACK, SYN};
    let run = |n: u32| {
        let mut site = String::from("[[host]]\nrole = \"mailbox\"\naddresses = [\"10.0.0.1\"");
        for i in 0..n {
            let [_, b, c, d] = (0x0a01_0000 + i).to_be_bytes();
            site.push_str(&format!(", \"10.{b}.{c}.{d}\""));
        }
        site.push_str("]\n");
        let mut pcap = TinyPcap::new(None);
        let s = End {
            ip: [10, 0, 0, 1],
            port: 443,
            ttl: 128,
        };
        for i in 0..n {
            let c = End {
                ip: (0xc612_0000 + i).to_be_bytes(),
                port: 40_000,
                ttl: 64,
            };
            let t = 1_700_000_000_000_000u64 + u64::from(i) * 100;
            pcap.tcp(t, c, s, SYN, 1000, 0, &[])
                .tcp(t + 10, s, c, SYN | ACK, 5000, 1001, &[])
                .tcp(t + 20, c, s, ACK, 1001, 5001, &[]);
        }
        let (p, sp) = (tmp_path("many.pcap"), tmp_path("many.site.toml"));
        std::fs::write(&p, pcap.bytes()).unwrap();
        std::fs::write(&sp, site).unwrap();
        let start = Instant::now();
        let o = exflow(&[
            "analyze",
            p.to_str().unwrap(),
            "--site",
            sp.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let took = start.elapsed();
        let _ = (std::fs::remove_file(&p), std::fs::remove_file(&sp));
        assert!(o.status.success(), "{o:?}");
        took
    };
    let n = 3_000;
    let small = run(n);
    let large = run(4 * n);
    assert!(
        large < small * 10 + Duration::from_secs(3),
        "4× the conversations and addresses took {large:?} against {small:?}: not linear"
    );
}
