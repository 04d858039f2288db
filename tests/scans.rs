//! A SYN scan whose scanner never answers the SYN-ACKs (no RST back: the scanner's firewall
//! drops them, or it sends from a raw socket its kernel does not know): the ports that answered
//! SYN-ACK are open, those that answered RST closed, the rest filtered; and the probes never
//! count as client traffic (no expected flow gets an attempt from them, no unexpected
//! "established" flow appears) — while a real client's connection beside the scan still does.

use crate::closes::SITE;
use crate::util::{
    exflow, json_report, stderr, stdout, tmp_path, Host, TinyPcap, ACK, FIN, PSH, RST, SYN,
};
use serde_json::Value;

fn scan_capture() -> Vec<u8> {
    let mut p = TinyPcap::new(None);
    let scanner = |port| Host {
        ip: [203, 0, 113, 66],
        port,
        ttl: 40,
    };
    let mbx = |port| Host {
        ip: [192, 0, 2, 10],
        port,
        ttl: 128,
    };
    let open = [25u16, 443, 587];
    let filtered = [3389u16, 5985];
    let mut t = 1_700_000_000_000_000u64;
    let ports: Vec<u16> = (20u16..56).chain([443, 587, 3389, 5985]).collect();
    for port in ports {
        t += 2_000;
        p.tcp(t, scanner(61_000), mbx(port), SYN, 77, 0, b"");
        if open.contains(&port) {
            // SYN-ACK, retransmitted once; the scanner never answers.
            p.tcp(
                t + 100,
                mbx(port),
                scanner(61_000),
                SYN | ACK,
                9_000,
                78,
                b"",
            );
            p.tcp(
                t + 1_000,
                mbx(port),
                scanner(61_000),
                SYN | ACK,
                9_000,
                78,
                b"",
            );
        } else if !filtered.contains(&port) {
            p.tcp(t + 100, mbx(port), scanner(61_000), RST | ACK, 0, 78, b"");
        }
    }
    // A real client beside it: one HTTPS connection, data both ways, closed.
    let c = Host {
        ip: [203, 0, 113, 5],
        port: 50_000,
        ttl: 52,
    };
    let t = t + 3_000_000;
    p.tcp(t, c, mbx(443), SYN, 1, 0, b"");
    p.tcp(t + 100, mbx(443), c, SYN | ACK, 500, 2, b"");
    p.tcp(t + 200, c, mbx(443), ACK, 2, 501, b"");
    p.tcp(t + 300, c, mbx(443), PSH | ACK, 2, 501, b"hello");
    p.tcp(t + 400, mbx(443), c, PSH | ACK, 501, 7, b"world");
    p.tcp(t + 500, c, mbx(443), FIN | ACK, 7, 506, b"");
    p.tcp(t + 600, mbx(443), c, FIN | ACK, 506, 8, b"");
    p.tcp(t + 700, c, mbx(443), ACK, 8, 507, b"");
    p.bytes().to_vec()
}

#[test]
fn a_scanner_that_never_resets_gets_its_open_ports_and_no_client_traffic() {
    let cap = tmp_path("scan.pcap");
    std::fs::write(&cap, scan_capture()).unwrap();
    let site = tmp_path("scan.site.toml");
    std::fs::write(&site, SITE).unwrap();
    let rep = json_report(&cap, Some(site.as_path()));
    let _ = (std::fs::remove_file(&cap), std::fs::remove_file(&site));
    let scans = rep["scans"].as_array().unwrap();
    assert_eq!(scans.len(), 1, "{:#}", rep["scans"]);
    let s = &scans[0];
    assert_eq!(s["source"], "203.0.113.66");
    assert_eq!(s["open"], serde_json::json!([25, 443, 587]), "{s:#}");
    assert_eq!(s["filtered"], 2, "{s:#}");
    // The probes are no one's client traffic: the HTTPS row counts the real client's one
    // connection, SMTP and submission none, and nothing unexpected was "established".
    let row = |role: &str| {
        rep["expected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["role"] == role && e["src"]["zone"] == "internet")
            .cloned()
            .unwrap_or_else(|| panic!("no {role} row"))
    };
    assert_eq!(
        row("https-client")["attempts"],
        1,
        "{:#}",
        row("https-client")
    );
    assert_eq!(row("https-client")["verdict"], "ok");
    for role in ["smtp-inbound", "smtp-submission"] {
        assert_eq!(row(role)["attempts"], 0, "{:#}", row(role));
    }
    assert_eq!(
        rep["unexpected"],
        serde_json::json!([]),
        "{:#}",
        rep["unexpected"]
    );
}

/// A SYN flood to thousands of random hosts (documentation addresses here) is not an outage
/// capture: without a site file, none of its one-attempt destinations is named a mailbox and
/// judged "blocked" (before: every one of them, up to the inference bound).
#[test]
fn a_flood_to_random_hosts_names_no_mailbox_by_its_attempts() {
    let mut p = TinyPcap::new(None);
    let mut t = 1_700_000_000_000_000u64;
    let mut n = 0u32;
    for net in [[192u8, 0, 2], [198, 51, 100], [203, 0, 113]] {
        for last in 1u8..=250 {
            t += 100;
            n += 1;
            let src = Host {
                ip: [198, 51, 100, (n % 200) as u8 + 1],
                port: 40_000 + (n % 20_000) as u16,
                ttl: 50,
            };
            let dst = Host {
                ip: [net[0], net[1], net[2], last],
                port: 443,
                ttl: 64,
            };
            p.tcp(t, src, dst, SYN, n, 0, b"");
        }
    }
    let cap = tmp_path("random-flood.pcap");
    std::fs::write(&cap, p.bytes()).unwrap();
    let o = exflow(&["analyze", cap.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.code() == Some(0), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let named: Vec<&Value> = r["topology"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["role"] == "mailbox")
        .collect();
    assert!(named.is_empty(), "mailboxes named from a flood: {named:?}");
    let blocked = r["expected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["verdict"] == "blocked")
        .count();
    assert_eq!(blocked, 0, "blocked rows from a flood");
    let _ = std::fs::remove_file(cap);
}
