//! Verdicts that resist blind spoofing (issue 18, finding 6, and the simultaneous open and
//! SPAN duplicates of finding 8): a few forged packets from someone who cannot see the
//! traffic must not flip a row's verdict or the `--fail-on` gate. Each test builds its capture
//! here and runs the binary on it.

use crate::closes::SITE;
use crate::util::{exflow, stderr, stdout, tmp_path, Host, TinyPcap, ACK, FIN, PSH, RST, SYN};
use serde_json::Value;

const T0: u64 = 1_700_000_000_000_000;

fn client(port: u16) -> Host {
    Host {
        ip: [203, 0, 113, 5],
        port,
        ttl: 52,
    }
}

fn mbx(port: u16) -> Host {
    Host {
        ip: [192, 0, 2, 10],
        port,
        ttl: 128,
    }
}

/// What a blind spoofer sends as: the address of `h`, its own TTL.
fn forged(h: Host) -> Host {
    Host { ttl: 61, ..h }
}

/// Runs `exflow analyze` on `p` with the mailbox site: the JSON report, the table, and the
/// exit code of a run with `extra` arguments (the table's).
fn analyze(p: &TinyPcap, extra: &[&str]) -> (Value, String, Option<i32>) {
    let cap = tmp_path("spoof.pcap");
    std::fs::write(&cap, p.bytes()).unwrap();
    let site = tmp_path("spoof.site.toml");
    std::fs::write(&site, SITE).unwrap();
    let (c, s) = (cap.to_str().unwrap(), site.to_str().unwrap());
    let o = exflow(&["analyze", c, "--site", s, "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut args = vec![
        "analyze", c, "--site", s, "--format", "table", "--color", "never",
    ];
    args.extend_from_slice(extra);
    let o = exflow(&args);
    let _ = (std::fs::remove_file(&cap), std::fs::remove_file(&site));
    (rep, stdout(&o), o.status.code())
}

/// The expected row of `role` from the internet.
fn row(rep: &Value, role: &str) -> Value {
    rep["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == role && e["src"]["zone"] == "internet")
        .cloned()
        .unwrap_or_else(|| panic!("no {role} row: {:#}", rep["expected"]))
}

/// An SMTP session client:`cport` → mailbox:25 from `t0`, closed by FINs; `mid` adds packets
/// after the banner given (the server's next sequence number, the client's).
fn smtp(p: &mut TinyPcap, t0: u64, cport: u16, mid: impl Fn(&mut TinyPcap, u64, u32, u32)) {
    let (c, s) = (client(cport), mbx(25));
    let (mut cs, mut ss) = (1000u32, 5000u32);
    p.tcp(t0, c, s, SYN, cs, 0, b"");
    cs += 1;
    p.tcp(t0 + 1_000, s, c, SYN | ACK, ss, cs, b"");
    ss += 1;
    p.tcp(t0 + 2_000, c, s, ACK, cs, ss, b"");
    let banner = b"220 mx.example ESMTP\r\n";
    p.tcp(t0 + 3_000, s, c, PSH | ACK, ss, cs, banner);
    ss += banner.len() as u32;
    mid(p, t0 + 3_500, ss, cs);
    let quit = b"QUIT\r\n";
    p.tcp(t0 + 4_000, c, s, PSH | ACK, cs, ss, quit);
    cs += quit.len() as u32;
    let bye = b"221 2.0.0 Bye\r\n";
    p.tcp(t0 + 5_000, s, c, PSH | ACK, ss, cs, bye);
    ss += bye.len() as u32;
    p.tcp(t0 + 6_000, s, c, FIN | ACK, ss, cs, b"");
    p.tcp(t0 + 7_000, c, s, FIN | ACK, cs, ss + 1, b"");
    p.tcp(t0 + 8_000, s, c, ACK, ss + 1, cs + 1, b"");
}

#[test]
fn one_blind_out_of_window_rst_per_connection_is_not_a_cut() {
    // Four sessions, each with one RST in the server's name far outside the client's window
    // (the client ignores it, RFC 5961, and the session goes on), and one with a RST inside
    // the window that the server's side then ignores (more data and a FIN follow from it).
    let mut p = TinyPcap::new(None);
    for i in 0..4u16 {
        smtp(
            &mut p,
            T0 + u64::from(i) * 1_000_000,
            40_000 + i,
            |p, t, ss, cs| {
                let blind = ss.wrapping_add(0x4000_0000 + u32::from(i) * 77_777);
                p.tcp(
                    t,
                    forged(mbx(25)),
                    client(40_000 + i),
                    RST | ACK,
                    blind,
                    cs,
                    b"",
                );
            },
        );
    }
    smtp(&mut p, T0 + 5_000_000, 40_010, |p, t, ss, cs| {
        p.tcp(t, forged(mbx(25)), client(40_010), RST | ACK, ss, cs, b"");
    });
    let (rep, table, _) = analyze(&p, &[]);
    let r = row(&rep, "smtp-inbound");
    assert_eq!(r["established"], 5, "{r:#}");
    assert_eq!(r["reset_midstream"], 0, "{r:#}");
    assert_eq!(r["verdict"], "ok", "{r:#}");
    assert_eq!(r["ignored_resets"], 5, "{r:#}");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains("5 suspected spoofed or ignored resets"),
        "{detail}"
    );
    assert!(table.contains("suspected spoofed or ignored"), "{table}");
    // Zeek's view is kept: each connection's conn_state is still a reset's.
    let flows = tmp_path("spoof.jsonl");
    let cap = tmp_path("spoof.pcap");
    std::fs::write(&cap, p.bytes()).unwrap();
    let o = exflow(&[
        "analyze",
        cap.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&flows).unwrap();
    assert_eq!(text.matches("\"conn_state\":\"RSTR\"").count(), 5, "{text}");
}

#[test]
fn lone_syn_acks_do_not_make_a_blocked_row_one_sided() {
    let mut p = TinyPcap::new(None);
    // Three real attempts to HTTPS, each SYN retransmitted twice, never answered.
    for i in 0..3u64 {
        for k in 0..3u64 {
            p.tcp(
                T0 + i * 10_000_000 + k * 1_000_000,
                client(50_000 + i as u16),
                mbx(443),
                SYN,
                7_000 + i as u32,
                0,
                b"",
            );
        }
    }
    // Ten SYN-ACKs in the server's name answering no SYN.
    for i in 0..10u32 {
        p.tcp(
            T0 + 40_000_000 + u64::from(i) * 1_000,
            forged(mbx(443)),
            client(51_000 + i as u16),
            SYN | ACK,
            900 + i,
            1234,
            b"",
        );
    }
    let (rep, table, code) = analyze(&p, &["--fail-on", "blocked,failed"]);
    let r = row(&rep, "https-client");
    assert_eq!(r["verdict"], "blocked", "{r:#}");
    // The SYN-ACKs are no attempts of this flow.
    assert_eq!(
        (&r["attempts"], &r["dropped"]),
        (&3.into(), &3.into()),
        "{r:#}"
    );
    assert_ne!(
        code,
        Some(0),
        "--fail-on blocked,failed must fail:\n{table}"
    );
}

#[test]
fn spoofed_probes_from_a_clients_address_do_not_hide_its_blocked_attempts() {
    let mut p = TinyPcap::new(None);
    // The client's real attempts to HTTPS: dropped, each SYN retransmitted.
    for i in 0..3u64 {
        for k in 0..3u64 {
            p.tcp(
                T0 + i * 10_000_000 + k * 1_000_000,
                client(50_000 + i as u16),
                mbx(443),
                SYN,
                7_000 + i as u32,
                0,
                b"",
            );
        }
    }
    // Eleven probes in its name to other ports, refused.
    for i in 0..11u16 {
        let port = 1_000 + i;
        let t = T0 + 40_000_000 + u64::from(i) * 1_000;
        p.tcp(t, forged(client(61_000)), mbx(port), SYN, 77, 0, b"");
        p.tcp(t + 100, mbx(port), client(61_000), RST | ACK, 0, 78, b"");
    }
    let (rep, table, code) = analyze(&p, &["--fail-on", "blocked,failed"]);
    let r = row(&rep, "https-client");
    assert_eq!(r["verdict"], "blocked", "{r:#}");
    assert_eq!(r["attempts"], 3, "{r:#}");
    assert_ne!(
        code,
        Some(0),
        "--fail-on blocked,failed must fail:\n{table}"
    );
}

#[test]
fn three_packets_do_not_prove_a_disabled_pop3_in_use() {
    // SYN, SYN-ACK, ACK to POP3 (disabled for this site), nothing else: likely, not proven.
    let mut p = TinyPcap::new(None);
    let (c, s) = (client(45_000), mbx(110));
    p.tcp(T0, c, s, SYN, 1, 0, b"");
    p.tcp(T0 + 100, forged(s), c, SYN | ACK, 500, 2, b"");
    p.tcp(T0 + 200, c, s, ACK, 2, 501, b"");
    let (rep, table, _) = analyze(&p, &[]);
    let u = rep["unexpected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["port"] == 110)
        .cloned()
        .unwrap_or_else(|| panic!("no 110 entry: {:#}", rep["unexpected"]));
    assert_eq!(u["reason"], "disabled-service", "{u:#}");
    assert_eq!(u["likely"], true, "{u:#}");
    let line = table
        .lines()
        .find(|l| l.contains("110/tcp"))
        .unwrap_or_else(|| panic!("no 110 row:\n{table}"));
    assert!(line.contains("likely"), "{line}");

    // A real POP3 session (handshake, the server's banner, the client's command): proven.
    let mut p = TinyPcap::new(None);
    p.tcp(T0, c, s, SYN, 1, 0, b"");
    p.tcp(T0 + 100, s, c, SYN | ACK, 500, 2, b"");
    p.tcp(T0 + 200, c, s, ACK, 2, 501, b"");
    p.tcp(T0 + 300, s, c, PSH | ACK, 501, 2, b"+OK\r\n");
    p.tcp(T0 + 400, c, s, PSH | ACK, 2, 506, b"QUIT\r\n");
    let (rep, table, _) = analyze(&p, &[]);
    let u = rep["unexpected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["port"] == 110)
        .cloned()
        .unwrap();
    assert!(u.get("likely").is_none(), "{u:#}");
    let line = table.lines().find(|l| l.contains("110/tcp")).unwrap();
    assert!(!line.contains("likely"), "{line}");
}

#[test]
fn simultaneous_open_is_established() {
    // Both sides send a SYN, then each answers the other's with a SYN-ACK (RFC 9293 3.5).
    let mut p = TinyPcap::new(None);
    for i in 0..2u64 {
        let t = T0 + i * 1_000_000;
        let (c, s) = (client(50_000 + i as u16), mbx(443));
        p.tcp(t, c, s, SYN, 100, 0, b"");
        p.tcp(t + 10, s, c, SYN, 500, 0, b"");
        p.tcp(t + 100, c, s, SYN | ACK, 100, 501, b"");
        p.tcp(t + 110, s, c, SYN | ACK, 500, 101, b"");
        p.tcp(t + 200, c, s, PSH | ACK, 101, 501, b"hello");
        p.tcp(t + 300, s, c, PSH | ACK, 501, 106, b"world");
        p.tcp(t + 400, c, s, FIN | ACK, 106, 506, b"");
        p.tcp(t + 500, s, c, FIN | ACK, 506, 107, b"");
        p.tcp(t + 600, c, s, ACK, 107, 507, b"");
    }
    let (rep, _, code) = analyze(&p, &["--fail-on", "blocked,failed"]);
    let r = row(&rep, "https-client");
    assert_eq!(r["verdict"], "ok", "{r:#}");
    assert_eq!(r["established"], 2, "{r:#}");
    assert_eq!(code, Some(0));
}

/// A segment: microseconds after the connection's start, from, to, flags, seq, ack, payload.
type Seg = (u64, Host, Host, u8, u32, u32, &'static [u8]);

#[test]
fn exact_span_duplicates_are_counted_and_are_no_retransmissions() {
    // Every packet twice, identical (a SPAN session that sees both directions twice), 3 µs
    // apart.
    let mut once = TinyPcap::new(None);
    let mut twice = TinyPcap::new(None);
    for i in 0..3u64 {
        let t = T0 + i * 1_000_000;
        let (c, s) = (client(50_000 + i as u16), mbx(443));
        let pkts: [Seg; 8] = [
            (0, c, s, SYN, 1, 0, b""),
            (100, s, c, SYN | ACK, 500, 2, b""),
            (200, c, s, ACK, 2, 501, b""),
            (300, c, s, PSH | ACK, 2, 501, b"hello"),
            (400, s, c, PSH | ACK, 501, 7, b"world"),
            (500, c, s, FIN | ACK, 7, 506, b""),
            (600, s, c, FIN | ACK, 506, 8, b""),
            (700, c, s, ACK, 8, 507, b""),
        ];
        for (dt, a, b, f, sq, ak, pl) in pkts {
            once.tcp(t + dt, a, b, f, sq, ak, pl);
            twice.tcp(t + dt, a, b, f, sq, ak, pl);
            twice.tcp(t + dt + 3, a, b, f, sq, ak, pl);
        }
    }
    let (rep1, _, _) = analyze(&once, &[]);
    let (rep2, table, _) = analyze(&twice, &[]);
    let (r1, r2) = (row(&rep1, "https-client"), row(&rep2, "https-client"));
    assert_eq!(r2["verdict"], "ok", "{r2:#}");
    assert_eq!(r2["syn_retries"], 0, "{r2:#}");
    assert_eq!(r2["detail"], r1["detail"]);
    let warned = |rep: &Value| {
        rep["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("exact duplicate packets"))
    };
    assert!(!warned(&rep1), "{:#}", rep1["warnings"]);
    assert!(warned(&rep2), "{:#}", rep2["warnings"]);
    assert!(
        rep2["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("24 exact duplicate packets")),
        "{:#}",
        rep2["warnings"]
    );
    assert!(table.contains("24 exact duplicate packets"), "{table}");
}
