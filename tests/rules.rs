//! `exflow rules`: the nftables output loads with `nft -c -f`, the iptables outputs with
//! `iptables-restore --test` / `ip6tables-restore --test`, `--report` gives exactly the rules
//! of the failed flows, no rule ever denies (Exchange ↔ Exchange and Exchange ↔ DC get an
//! allow-all), and strings from the command line or a report cannot break out of a comment.

use crate::util::{exflow, is_root, root, sample_sites, stderr, stdout, tmp_path};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A site with everything: two mailboxes (one dual-stack), an Edge with NAT, a DC, DNS,
/// named clients, overlapping internal networks, IPv6 perimeter, switched-on services.
const RICH_SITE: &str = r#"
profile = "edge"
internal = ["198.51.100.0/24", "10.0.0.0/8", "10.1.0.0/16", "2001:db8:200::/64"]
perimeter = ["192.0.2.128/26", "2001:db8:300::/64"]
[[host]]
role = "mailbox"
addresses = ["198.51.100.10", "2001:db8:200::10"]
nat = ["203.0.113.80"]
[[host]]
role = "mailbox"
addresses = ["198.51.100.11"]
[[host]]
role = "edge"
addresses = ["192.0.2.130", "2001:db8:300::130"]
nat = ["203.0.113.25"]
[[host]]
role = "dc"
addresses = ["198.51.100.20", "2001:db8:200::20"]
[[host]]
role = "dns"
addresses = ["198.51.100.53"]
[[host]]
role = "client"
addresses = ["10.1.2.3", "172.16.0.5"]
[services]
imap4 = true
pop3 = true
ipsec = true
ports-5075-5077 = true
x400 = true
"#;

/// The same with the mailbox profile (mail straight from the Mailbox servers).
fn rich_sites() -> Vec<PathBuf> {
    let edge = tmp_path("rich-edge.site.toml");
    std::fs::write(&edge, RICH_SITE).unwrap();
    let mailbox = tmp_path("rich-mailbox.site.toml");
    std::fs::write(
        &mailbox,
        RICH_SITE.replace("\"edge\"\ninternal", "\"mailbox\"\ninternal"),
    )
    .unwrap();
    vec![edge, mailbox]
}

fn all_sites() -> Vec<PathBuf> {
    let mut v = sample_sites();
    assert!(v.len() >= 10, "samples: {v:?}");
    v.extend(rich_sites());
    v
}

/// `exflow rules` output, asserting success.
fn rules(site: &Path, format: &str, report: Option<&Path>) -> String {
    let mut args = vec![
        "rules".to_owned(),
        "--site".into(),
        site.to_string_lossy().into(),
        "--format".into(),
        format.into(),
    ];
    if let Some(r) = report {
        args.push("--report".into());
        args.push(r.to_string_lossy().into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = exflow(&argv);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// Runs a checker on a file holding `text`; panics with its output when it fails.
fn check_with(cmd: &str, args: &[&str], text: &str, what: &str) {
    let f = tmp_path("rules.out");
    std::fs::write(&f, text).unwrap();
    let o = Command::new(cmd)
        .args(args)
        .arg(&f)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd} {args:?} rejects the rules of {what}: {}{}\n{text}",
        stderr(&o),
        stdout(&o)
    );
}

/// Whether a checker can run here (root, and the command installed).
fn can_check(test: &str, cmd: &str) -> bool {
    if !is_root() {
        println!("{test}: skipped: {cmd} needs root");
        return false;
    }
    if Command::new(cmd).arg("--version").output().is_err() {
        println!("{test}: skipped: {cmd} is not installed");
        return false;
    }
    true
}

#[test]
fn rules_nft_of_every_site_loads_with_nft_check() {
    if !can_check("rules_nft", "nft") {
        return;
    }
    for site in all_sites() {
        let text = rules(&site, "nft", None);
        assert!(text.contains("table inet exflow {"), "{text}");
        check_with("nft", &["-c", "-f"], &text, &site.display().to_string());
    }
}

#[test]
fn rules_iptables_of_every_site_loads_with_restore_test() {
    if !can_check("rules_iptables", "iptables-restore") {
        return;
    }
    for site in all_sites() {
        let v4 = rules(&site, "iptables", None);
        check_with(
            "iptables-restore",
            &["--test"],
            &v4,
            &site.display().to_string(),
        );
        let v6 = rules(&site, "ip6tables", None);
        check_with(
            "ip6tables-restore",
            &["--test"],
            &v6,
            &site.display().to_string(),
        );
    }
}

/// The rule lines of an output (comments and blank lines left out).
fn rule_lines(text: &str, comment: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(comment))
        .map(str::to_owned)
        .collect()
}

fn report_of(sample: &str) -> (PathBuf, PathBuf) {
    let dir = root().join("samples");
    let site = dir.join(format!("{sample}.site.toml"));
    let pcap = dir.join(format!("{sample}.pcap"));
    let o = exflow(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--site",
        site.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = tmp_path(&format!("{sample}.json"));
    std::fs::write(&report, &o.stdout).unwrap();
    (site, report)
}

#[test]
fn rules_report_gives_exactly_the_fixes_of_the_failed_flows() {
    let cases = [
        (
            "submission-refused",
            "ip saddr != 198.51.100.0/24 ip daddr 198.51.100.10 tcp dport 587 accept \
             comment \"exflow smtp-submission seed 001\"",
            "-A EXFLOW-FROM-INTERNET -d 198.51.100.10/32 -p tcp --dport 587 -m comment \
             --comment \"exflow smtp-submission seed 001\" -j ACCEPT",
        ),
        (
            "inbound-25-dropped",
            "ip saddr != 198.51.100.0/24 ip daddr 198.51.100.10 tcp dport 25 accept \
             comment \"exflow smtp-inbound seed 001\"",
            "-A EXFLOW-FROM-INTERNET -d 198.51.100.10/32 -p tcp --dport 25 -m comment \
             --comment \"exflow smtp-inbound seed 001\" -j ACCEPT",
        ),
    ];
    for (sample, nft_rule, ipt_rule) in cases {
        let (site, report) = report_of(sample);
        let nft = rules(&site, "nft", Some(&report));
        let lines = rule_lines(&nft, "#");
        let body: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.contains(" accept comment \"exflow ") && !l.starts_with("ct state"))
            .collect();
        assert_eq!(body, [nft_rule], "{sample}:\n{nft}");
        assert!(nft.contains("failed flow(s) of the report"), "{nft}");
        let ipt = rules(&site, "iptables", Some(&report));
        let accepts: Vec<String> = rule_lines(&ipt, "#")
            .into_iter()
            .filter(|l| l.ends_with("-j ACCEPT") && !l.contains("ESTABLISHED"))
            .collect();
        assert_eq!(accepts, [ipt_rule], "{sample}:\n{ipt}");
        // The same rule is in the site's whole rule set.
        let all = rules(&site, "nft", None);
        assert!(all.contains(nft_rule), "{all}");
        if is_root() {
            check_with("nft", &["-c", "-f"], &nft, sample);
        }
    }
    // A healthy report asks for nothing.
    let (site, _) = report_of("submission-refused");
    let healthy = report_of("exchange-healthy").1;
    let text = rules(&site, "nft", Some(&healthy));
    assert!(!text.contains(" tcp dport "), "{text}");
}

#[test]
fn rules_never_deny_and_allow_all_between_exchange_servers_and_dcs() {
    let sites = all_sites();
    for site in &sites {
        for (format, comment) in [
            ("nft", "#"),
            ("iptables", "#"),
            ("ip6tables", "#"),
            ("ps1", "#"),
            ("asa", "!"),
        ] {
            let text = rules(site, format, None);
            for l in rule_lines(&text, comment) {
                let lower = l.to_lowercase();
                for word in [" drop", " reject", " deny", "-action block", "-j drop"] {
                    assert!(!lower.contains(word), "{site:?} {format}: {l}");
                }
            }
        }
    }
    // The rich site: Mailbox <-> Mailbox and Mailbox <-> DC are allowed whole, both ways.
    let nft = rules(&sites[sites.len() - 2], "nft", None);
    for line in [
        "ip saddr { 198.51.100.10, 198.51.100.11 } ip daddr { 198.51.100.10, 198.51.100.11 } accept",
        "ip saddr { 198.51.100.10, 198.51.100.11 } ip daddr 198.51.100.20 accept",
        "ip saddr 198.51.100.20 ip daddr { 198.51.100.10, 198.51.100.11 } accept",
        "ip6 saddr 2001:db8:200::10 ip6 daddr 2001:db8:200::20 accept",
        "ip6 saddr 2001:db8:200::20 ip6 daddr 2001:db8:200::10 accept",
    ] {
        assert!(nft.contains(line), "{line}\n{nft}");
    }
    assert!(
        nft.contains("Microsoft does not support restricting"),
        "{nft}"
    );
    // The Edge is not an internal Exchange server: no allow-all to it.
    assert!(!nft.contains("ip daddr 192.0.2.130 accept"), "{nft}");
    // DNAT: the rule matches the internal address, and says so.
    assert!(
        nft.contains("reaches edge 192.0.2.130 at 203.0.113.25")
            && nft.contains("ip daddr 192.0.2.130 tcp dport 25 accept"),
        "{nft}"
    );
    let ps1 = rules(&sites[sites.len() - 2], "ps1", None);
    assert!(
        ps1.contains("-Protocol Any -RemoteAddress '198.51.100.20/32'"),
        "{ps1}"
    );
    let asa = rules(&sites[sites.len() - 2], "asa", None);
    assert!(
        asa.contains(
            "access-list exflow-internal extended permit ip host 198.51.100.10 host 198.51.100.20"
        ),
        "{asa}"
    );
}

#[test]
fn rules_escape_what_comes_from_outside() {
    // A site file whose path holds quotes, a newline and shell syntax.
    let dir = tmp_path("we\"ird'\n$(touch x)\u{2019}dir");
    std::fs::create_dir_all(&dir).unwrap();
    let site = dir.join("site\".toml");
    std::fs::write(&site, RICH_SITE).unwrap();
    for (format, ok) in [
        (
            "nft",
            &["#", "table ", "chain ", "type ", "ct ", "ip ", "ip6 ", "}"][..],
        ),
        (
            "iptables",
            &["#", "*filter", ":EXFLOW", "-I FORWARD", "-A ", "COMMIT"][..],
        ),
        ("ps1", &["#", "New-NetFirewallRule "][..]),
        ("asa", &["!", "access-list "][..]),
    ] {
        let text = rules(&site, format, None);
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(ok.iter().any(|p| l.starts_with(p)), "{format}: {l:?}");
            assert!(l.is_ascii(), "{format}: {l:?}");
        }
        if format == "ps1" {
            for l in text.lines().filter(|l| l.starts_with("New-")) {
                // Every single-quoted string is closed: quotes come in pairs.
                assert_eq!(l.matches('\'').count() % 2, 0, "{l}");
            }
        }
    }
    if is_root() {
        check_with("nft", &["-c", "-f"], &rules(&site, "nft", None), "odd path");
        if can_check("rules_escape", "iptables-restore") {
            let t = rules(&site, "iptables", None);
            check_with("iptables-restore", &["--test"], &t, "odd path");
        }
    }
    // A report whose strings try to break out: refused with one line, nothing printed.
    let site_ok = root().join("samples/submission-refused.site.toml");
    for (role, address) in [
        ("smtp-inbound\"\n}\ntable ip evil {", "198.51.100.10"),
        ("smtp-inbound", "198.51.100.10\" drop"),
    ] {
        let report = tmp_path("evil.json");
        let doc = serde_json::json!({"expected": [{
            "role": role, "verdict": "blocked",
            "src": {"zone": "internet", "role": null, "address": null},
            "dst": {"zone": "internal", "role": "mailbox", "address": address}}]});
        std::fs::write(&report, doc.to_string()).unwrap();
        let o = exflow(&[
            "rules",
            "--site",
            site_ok.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    }
}

#[test]
fn rules_report_on_an_ipv6_site_gives_the_ipv6_rule() {
    let (site, report) = report_of("ipv6-site");
    let nft = rules(&site, "nft", Some(&report));
    let body: Vec<String> = rule_lines(&nft, "#")
        .into_iter()
        .filter(|l| l.contains(" accept comment \"exflow ") && !l.starts_with("ct state"))
        .collect();
    assert_eq!(
        body,
        [
            "ip6 saddr != 2001:db8:200::/64 ip6 daddr 2001:db8:200::10 tcp dport 25 accept \
          comment \"exflow smtp-inbound seed 001\""
        ],
        "{nft}"
    );
    let v4 = rules(&site, "iptables", Some(&report));
    assert!(v4.contains("1 IPv6 rule(s) are not in this file"), "{v4}");
    let v6 = rules(&site, "ip6tables", Some(&report));
    assert!(
        v6.contains("-A EXFLOW-FROM-INTERNET -d 2001:db8:200::10/128 -p tcp --dport 25 "),
        "{v6}"
    );
    if can_check("rules_report_ipv6", "ip6tables-restore") {
        check_with("nft", &["-c", "-f"], &nft, "ipv6-site --report");
        check_with("ip6tables-restore", &["--test"], &v6, "ipv6-site --report");
    }
}

#[test]
fn rules_report_fixes_an_unsupported_restriction_with_the_allow_all() {
    let site = rich_sites().remove(1);
    let report = tmp_path("unsupported.json");
    let doc = serde_json::json!({
        "expected": [{
            "role": "https-client", "verdict": "ok",
            "src": {"zone": "internet", "role": null, "address": null},
            "dst": {"zone": "internal", "role": "mailbox", "address": "198.51.100.10"}}],
        "unsupported_restrictions": [{
            "role": "exchange-dc-tcp", "verdict": "blocked",
            "src": {"zone": "internal", "role": "mailbox", "address": "198.51.100.11"},
            "dst": {"zone": "internal", "role": "dc", "address": "198.51.100.20"}}]});
    std::fs::write(&report, doc.to_string()).unwrap();
    let nft = rules(&site, "nft", Some(&report));
    let body: Vec<String> = rule_lines(&nft, "#")
        .into_iter()
        .filter(|l| l.contains(" accept comment \"exflow ") && !l.starts_with("ct state"))
        .collect();
    assert_eq!(
        body,
        [
            "ip saddr 198.51.100.11 ip daddr 198.51.100.20 accept comment \
             \"exflow exchange-dc-tcp allow-all, never restrict seed 001\"",
            "ip saddr 198.51.100.20 ip daddr 198.51.100.11 accept comment \
             \"exflow exchange-dc-tcp allow-all, never restrict seed 001\"",
        ],
        "{nft}"
    );
}

#[test]
fn rules_plan_joins_every_exchange_server_and_dc_pair_with_an_allow_all() {
    use exflow::classify::catalogue::{Catalogue, HostRole};
    use exflow::classify::site::{Cidr, Site};
    use exflow::report::rules::plan::{plan, Addrs, Service};
    let cat = Catalogue::embedded().unwrap();
    for path in rich_sites() {
        let site = Site::load(&path).unwrap();
        let p = plan(cat, &site);
        let joined = |a: std::net::IpAddr, b: std::net::IpAddr| {
            p.rules.iter().any(|r| {
                let has = |x: &Addrs, ip| matches!(x, Addrs::In(v) if v.contains(&Cidr::host(ip)));
                r.unrestricted
                    && r.service == Service::All
                    && has(&r.src.addrs, a)
                    && has(&r.dst.addrs, b)
            })
        };
        let inner: Vec<_> = site
            .hosts()
            .iter()
            .filter(|h| matches!(h.role, HostRole::Mailbox | HostRole::Dc))
            .collect();
        let mut pairs = 0;
        for a in &inner {
            for b in &inner {
                if std::ptr::eq(*a, *b) || (a.role == HostRole::Dc && b.role == HostRole::Dc) {
                    continue;
                }
                for x in &a.addresses {
                    for y in b.addresses.iter().filter(|y| y.is_ipv4() == x.is_ipv4()) {
                        assert!(joined(*x, *y), "{x} -> {y} in {path:?}");
                        pairs += 1;
                    }
                }
            }
        }
        assert!(pairs >= 6, "{pairs}");
        // The Edge is not an internal Exchange server: restricted like any other host.
        let edge = site
            .hosts()
            .iter()
            .find(|h| h.role == HostRole::Edge)
            .unwrap();
        assert!(!p.rules.iter().any(|r| r.unrestricted
            && matches!(&r.dst.addrs, Addrs::In(v) if v.contains(&Cidr::host(edge.addresses[0])))));
    }
}
