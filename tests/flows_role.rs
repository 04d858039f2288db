//! `role` on every `--flows` line (issue 15, PRODUCT.md "JSON report, schema 1"): with a
//! site file, the catalogue role of each connection, decided when it ends; without one,
//! `null` on every line (the site is inferred only after the whole input). The truth is the
//! sample's site file, the scenario its script ran (`X.expect.jsonl`, written by
//! samples/make-samples.sh) and the catalogue's definition of each role, never exflow's
//! output.

use crate::closes::SITE;
use crate::util::{
    flows_of, json_report, root, stderr, tmp_path, Host, TinyPcap, ACK, FIN, PSH, SYN,
};
use serde_json::Value;
use std::path::Path;

fn sample(name: &str) -> std::path::PathBuf {
    root().join("samples").join(name)
}

/// The connections the script made (`X.expect.jsonl`): proto, originator, responder, port.
fn scenario(name: &str) -> Vec<(String, String, String, u64)> {
    let text = std::fs::read_to_string(sample(&format!("{name}.expect.jsonl"))).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["proto"].as_str().unwrap().to_owned(),
                v["id.orig_h"].as_str().unwrap().to_owned(),
                v["id.resp_h"].as_str().unwrap().to_owned(),
                v["id.resp_p"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn lines_of(lines: &[Value], c: &(String, String, String, u64)) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| {
            l["proto"] == c.0.as_str()
                && l["id.orig_h"] == c.1.as_str()
                && l["id.resp_h"] == c.2.as_str()
                && l["id.resp_p"] == c.3
        })
        .cloned()
        .collect()
}

/// exchange-healthy's site: the mailbox 198.51.100.10 (internal 198.51.100.0/24), its
/// resolver 203.0.113.53, everything else the internet. The catalogue's roles for what the
/// script did: the internet to the mailbox's 25 is smtp-inbound, 587 smtp-submission, 443
/// https-client, 80 http-client; the mailbox to an internet MTA's 25 smtp-outbound; the
/// mailbox to its resolver's 53/udp dns-udp.
fn healthy_role(c: &(String, String, String, u64)) -> &'static str {
    const MAILBOX: &str = "198.51.100.10";
    match (c.0.as_str(), c.1.as_str(), c.2.as_str(), c.3) {
        ("udp", MAILBOX, "203.0.113.53", 53) => "dns-udp",
        ("tcp", MAILBOX, _, 25) => "smtp-outbound",
        ("tcp", _, MAILBOX, 25) => "smtp-inbound",
        ("tcp", _, MAILBOX, 587) => "smtp-submission",
        ("tcp", _, MAILBOX, 443) => "https-client",
        ("tcp", _, MAILBOX, 80) => "http-client",
        other => panic!("exchange-healthy's script made no {other:?}"),
    }
}

#[test]
fn flows_lines_carry_the_sites_role_and_null_without_a_site() {
    let pcap = sample("exchange-healthy.pcap");
    let site = sample("exchange-healthy.site.toml");
    let (o, with) = flows_of(&[&pcap], &["--site", site.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let conns = scenario("exchange-healthy");
    assert!(conns.len() >= 6, "{conns:?}");
    let mut roles = std::collections::BTreeSet::new();
    for c in &conns {
        let got = lines_of(&with, c);
        assert!(!got.is_empty(), "no --flows line for {c:?}");
        for l in got {
            assert_eq!(l["role"], healthy_role(c), "{c:?}: {l}");
        }
        roles.insert(healthy_role(c));
    }
    assert!(roles.contains("smtp-inbound"), "{roles:?}");
    // Every line has the field, whatever it is.
    assert!(with.iter().all(|l| l.get("role").is_some()));

    let (o, without) = flows_of(&[&pcap], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(without.len(), with.len());
    for l in &without {
        assert_eq!(l.get("role"), Some(&Value::Null), "{l}");
    }
}

#[test]
fn unexpected_traffic_carries_the_role_that_names_its_port() {
    // pop-imap-disabled: POP3 and IMAP4 from the internet to a mailbox whose site file leaves
    // them at the profile's default (off): unexpected, still the pop3 and imap4 ports.
    let pcap = sample("pop-imap-disabled.pcap");
    let site = sample("pop-imap-disabled.site.toml");
    let (o, lines) = flows_of(&[&pcap], &["--site", site.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for c in scenario("pop-imap-disabled") {
        let want = match c.3 {
            110 => "pop3",
            143 => "imap4",
            443 => "https-client",
            p => panic!("pop-imap-disabled's script made no connection to {p}"),
        };
        let got = lines_of(&lines, &c);
        assert!(!got.is_empty(), "no --flows line for {c:?}");
        for l in got {
            assert_eq!(l["role"], want, "{c:?}: {l}");
        }
    }
}

/// A Zeek conn.log through `analyze conn.log --flows`: the same roles, by the same site.
#[test]
fn connection_records_get_their_role_too() {
    let log = "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\t\
               proto\tconn_state\thistory\torig_pkts\tresp_pkts\n\
               1700000000.0\tCa1\t203.0.113.9\t40000\t198.51.100.10\t25\ttcp\tSF\tShAdDaFf\t8\t8\n\
               1700000001.0\tCa2\t198.51.100.10\t40001\t203.0.113.25\t25\ttcp\tSF\tShAdDaFf\t8\t8\n\
               1700000002.0\tCa3\t203.0.113.9\t40002\t198.51.100.10\t22\ttcp\tS0\tS\t1\t0\n\
               1700000003.0\tCa4\t203.0.113.9\t40003\t203.0.113.77\t443\ttcp\tSF\tShAdDaFf\t8\t8\n";
    let p = tmp_path("roles.conn.log");
    std::fs::write(&p, log).unwrap();
    let site = sample("exchange-healthy.site.toml");
    let (o, lines) = flows_of(&[&p], &["--site", site.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let role = |uid: &str| {
        lines
            .iter()
            .find(|l| l["uid"] == uid)
            .unwrap_or_else(|| panic!("no line {uid}: {lines:?}"))["role"]
            .clone()
    };
    assert_eq!(role("Ca1"), "smtp-inbound");
    assert_eq!(role("Ca2"), "smtp-outbound");
    // SSH to the mailbox: unexpected, and no Exchange role uses the port.
    assert_eq!(role("Ca3"), Value::Null);
    // Between two internet hosts: none of Exchange's business.
    assert_eq!(role("Ca4"), Value::Null);
    let (o, lines) = flows_of(&[&p], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["role"].is_null()), "{lines:?}");
    let _ = std::fs::remove_file(p);
}

/// exflow's own lines read back with the site give every connection the role it had.
#[test]
fn flows_lines_read_back_keep_their_roles() {
    let pcap = sample("exchange-healthy.pcap");
    let site = sample("exchange-healthy.site.toml");
    let s = site.to_str().unwrap();
    let (_, first) = flows_of(&[&pcap], &["--site", s, "--seed", "1"]);
    let p = tmp_path("roles.flows.jsonl");
    let text: String = first.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, text).unwrap();
    let (o, again) = flows_of(&[Path::new(&p)], &["--site", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(again.len(), first.len());
    for c in scenario("exchange-healthy") {
        for l in lines_of(&again, &c) {
            assert_eq!(l["role"], healthy_role(&c), "{c:?}: {l}");
        }
    }
    let _ = std::fs::remove_file(p);
}

/// A simultaneous open to the mailbox's 25 (both SYNs cross, RFC 9293 3.5): Zeek's split
/// makes two records, the second with the mailbox as its originator; both are the client's
/// inbound SMTP, as the report counts them.
#[test]
fn a_simultaneous_open_has_the_first_syns_role() {
    let client = Host {
        ip: [203, 0, 113, 5],
        port: 50_000,
        ttl: 52,
    };
    let mbx = Host {
        ip: [192, 0, 2, 10],
        port: 25,
        ttl: 128,
    };
    let t = 1_700_000_000_000_000;
    let mut p = TinyPcap::new(None);
    p.tcp(t, client, mbx, SYN, 100, 0, b"");
    p.tcp(t + 10, mbx, client, SYN, 500, 0, b"");
    p.tcp(t + 100, client, mbx, SYN | ACK, 100, 501, b"");
    p.tcp(t + 110, mbx, client, SYN | ACK, 500, 101, b"");
    p.tcp(t + 200, mbx, client, PSH | ACK, 501, 101, b"220 hello\r\n");
    p.tcp(t + 300, client, mbx, PSH | ACK, 101, 512, b"QUIT\r\n");
    p.tcp(t + 400, mbx, client, FIN | ACK, 512, 107, b"");
    p.tcp(t + 500, client, mbx, FIN | ACK, 107, 513, b"");
    p.tcp(t + 600, mbx, client, ACK, 513, 108, b"");
    let cap = tmp_path("simopen.pcap");
    std::fs::write(&cap, p.bytes()).unwrap();
    let site = tmp_path("simopen.site.toml");
    std::fs::write(&site, SITE).unwrap();
    let (o, lines) = flows_of(&[&cap], &["--site", site.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Both halves, one of them begun by the mailbox's SYN.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines.iter().any(|l| l["id.orig_h"] == "192.0.2.10"),
        "{lines:?}"
    );
    for l in &lines {
        assert_eq!(l["role"], "smtp-inbound", "{l}");
    }
    // The report agrees: one inbound SMTP row from the internet, nothing unexpected.
    let rep = json_report(&cap, Some(site.as_path()));
    assert!(
        rep["unexpected"].as_array().is_none_or(Vec::is_empty),
        "{rep:#}"
    );
    let _ = (std::fs::remove_file(cap), std::fs::remove_file(site));
}
