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
        site.internal,
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
    let roles: Vec<HostRole> = site.hosts.iter().map(|h| h.role).collect();
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
        site.hosts[0].addresses,
        [ip("198.51.100.10"), ip("2001:db8:200::10")]
    );
    assert_eq!(site.hosts[0].nat, [ip("203.0.113.25")]);
    assert_eq!(
        site.hosts[1].nat,
        [ip("203.0.113.26"), ip("2001:db8:ffff::26")]
    );
    assert!(site.hosts[2].nat.is_empty());
    assert_eq!(site.services.get("imap4"), Some(&true));
    assert_eq!(site.services.get("http"), Some(&false));
    assert_eq!(site.services.len(), 2);
}

#[test]
fn profile_defaults_to_mailbox_and_an_empty_file_is_an_empty_site() {
    let site = parse("");
    assert_eq!(site.profile, Profile::Mailbox);
    assert!(site.hosts.is_empty() && site.internal.is_empty() && site.services.is_empty());
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
    assert_eq!(site.hosts.len(), 2);
    assert_eq!(site.role_of(ip("10.0.0.5")), Some(HostRole::Mailbox));
    assert_eq!(site.role_of(ip("fd00::5")), Some(HostRole::Mailbox));
    assert_eq!(site.role_of(ip("73.122.35.127")), Some(HostRole::Mailbox));
    assert_eq!(site.hosts[1].addresses, [ip("10.0.0.6")], "stored as IPv4");
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
    assert_eq!(site.hosts.len(), 5);

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
    let roles: Vec<HostRole> = site.hosts.iter().map(|h| h.role).collect();
    assert_eq!(roles, [HostRole::Mailbox, HostRole::Dns, HostRole::Dc]);
    let mailbox = &site.hosts[0];
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
