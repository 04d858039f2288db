//! Exchange-level findings from the payload look, through the binary: an SMTP session through
//! an ESMTP inspection (greeting of asterisks, STARTTLS masked as XXXXXXXA, a command
//! overwritten with XXXX) whose recipient the server refuses with 550, and a TLS ClientHello
//! to 443 answered by a RST whose TTL is not the server's. The truth is what the capture was
//! built with, below; a healthy session of each gives no finding.

use crate::closes::SITE;
use crate::util::{exflow, stderr, stdout, tmp_path, Host, TinyPcap, ACK, FIN, PSH, RST, SYN};
use serde_json::Value;

const C: [u8; 4] = [203, 0, 113, 5];
const S: [u8; 4] = [192, 0, 2, 10];

/// A TCP session `cport` → `sport`, then the turns given (true: from the server), each one
/// segment acknowledged; the client's and server's TTLs 50 and 64. `end_rst_ttl`: a RST "from
/// the server" with this TTL ends it, else nothing does.
fn session(
    p: &mut TinyPcap,
    t0: u64,
    cport: u16,
    sport: u16,
    turns: &[(bool, &[u8])],
    end_rst_ttl: Option<u8>,
) {
    let c = Host {
        ip: C,
        port: cport,
        ttl: 50,
    };
    let s = Host {
        ip: S,
        port: sport,
        ttl: 64,
    };
    let (mut cs, mut ss) = (1000u32, 5000u32);
    let mut t = t0;
    p.tcp(t, c, s, SYN, cs, 0, b"");
    p.tcp(t + 100, s, c, SYN | ACK, ss, cs + 1, b"");
    p.tcp(t + 200, c, s, ACK, cs + 1, ss + 1, b"");
    cs += 1;
    ss += 1;
    t += 1000;
    for (from_server, data) in turns {
        if *from_server {
            p.tcp(t, s, c, PSH | ACK, ss, cs, data);
            ss += data.len() as u32;
            p.tcp(t + 100, c, s, ACK, cs, ss, b"");
        } else {
            p.tcp(t, c, s, PSH | ACK, cs, ss, data);
            cs += data.len() as u32;
            p.tcp(t + 100, s, c, ACK, ss, cs, b"");
        }
        t += 1000;
    }
    if let Some(ttl) = end_rst_ttl {
        let fake = Host { ttl, ..s };
        p.tcp(t, fake, c, RST | ACK, ss, cs, b"");
    }
}

fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[1; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn run(name: &str, p: &TinyPcap) -> (Value, String, Vec<Value>) {
    let pcap = tmp_path(&format!("{name}.pcap"));
    std::fs::write(&pcap, p.bytes()).unwrap();
    let site = tmp_path(&format!("{name}.site.toml"));
    std::fs::write(&site, SITE).unwrap();
    let flows = tmp_path(&format!("{name}.jsonl"));
    let (pcap, site, flows_s) = (
        pcap.to_str().unwrap(),
        site.to_str().unwrap(),
        flows.to_str().unwrap(),
    );
    let o = exflow(&[
        "analyze", pcap, "--site", site, "--format", "json", "--flows", flows_s, "--seed", "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let o = exflow(&["analyze", pcap, "--site", site, "--format", "md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    (report, stdout(&o), lines)
}

fn kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["kind"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_esmtp_inspection_a_refused_recipient_and_a_reset_client_hello_are_found() {
    let mut p = TinyPcap::new(None);
    let t0 = 1_700_000_000_000_000;
    session(
        &mut p,
        t0,
        40_000,
        25,
        &[
            (true, b"220 *****************************\r\n"),
            (false, b"EHLO partner.example\r\n"),
            (
                true,
                b"250-mail.example.com\r\n250-XXXXXXXA\r\n250 SIZE 1000\r\n",
            ),
            (false, b"XXXX\r\n"),
            (true, b"500 5.3.3 Unrecognized command 'XXXX'\r\n"),
            (false, b"MAIL FROM:<a@partner.example>\r\n"),
            (true, b"250 2.1.0 Sender OK\r\n"),
            (false, b"RCPT TO:<nobody@example.com>\r\n"),
            (
                true,
                b"550 5.1.10 RESOLVER.ADR.RecipientNotFound; \x1b[31mnot found\r\n",
            ),
        ],
        None,
    );
    session(
        &mut p,
        t0 + 10_000_000,
        40_001,
        443,
        &[(false, &client_hello("autodiscover.example.com"))],
        Some(120),
    );
    let (report, md, lines) = run("findings-inspected", &p);
    let k = kinds(&report);
    for want in [
        "smtp_rejected",
        "starttls_stripped",
        "tls_handshake_failed",
        "smtp_banner_masked",
        "smtp_commands_masked",
    ] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    let f = |kind: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(f("smtp_rejected")["code"], 550);
    assert_eq!(f("smtp_rejected")["by"], "server");
    assert_eq!(f("smtp_banner_masked")["by"], "firewall");
    assert_eq!(f("tls_handshake_failed")["by"], "firewall");
    assert_eq!(f("tls_handshake_failed")["sni"], "autodiscover.example.com");
    assert_eq!(f("smtp_rejected")["example"]["id.orig_p"], 40_000);
    // The escape in the reply text is shown, not sent to the terminal.
    assert!(!md.contains('\x1b'), "{md}");
    assert!(f("smtp_rejected")["detail"]
        .as_str()
        .unwrap()
        .contains("\\x1b"));
    // The inbound mail row opened but its mail was refused: not ok.
    let row = report["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "smtp-inbound")
        .unwrap();
    assert_eq!(row["verdict"], "rejected", "{row}");
    let smtp = lines.iter().find(|l| l["id.resp_p"] == 25).unwrap();
    assert_eq!(smtp["smtp"]["banner_masked"], true);
    assert_eq!(smtp["smtp"]["starttls_masked"], true);
    assert_eq!(smtp["smtp"]["reply_codes"], serde_json::json!([250, 550]));
    let tls = lines.iter().find(|l| l["id.resp_p"] == 443).unwrap();
    assert_eq!(tls["tls"]["established"], false);
    assert!(md.contains("## Findings"), "{md}");
}

#[test]
fn healthy_sessions_give_no_finding() {
    let mut p = TinyPcap::new(None);
    let t0 = 1_700_000_000_000_000;
    session(
        &mut p,
        t0,
        40_000,
        25,
        &[
            (
                true,
                b"220 mail.example.com Microsoft ESMTP MAIL Service ready\r\n",
            ),
            (false, b"EHLO partner.example\r\n"),
            (
                true,
                b"250-mail.example.com\r\n250-STARTTLS\r\n250 SIZE 1000\r\n",
            ),
            (false, b"MAIL FROM:<a@partner.example>\r\n"),
            (true, b"250 2.1.0 Sender OK\r\n"),
            (false, b"RCPT TO:<b@example.com>\r\n"),
            (true, b"250 2.1.5 Recipient OK\r\n"),
        ],
        None,
    );
    session(
        &mut p,
        t0 + 10_000_000,
        40_001,
        443,
        &[
            (false, &client_hello("mail.example.com")),
            (true, &[0x16, 3, 3, 0, 4, 2, 0, 0, 0]),
        ],
        None,
    );
    let (report, _, lines) = run("findings-healthy", &p);
    assert!(kinds(&report).is_empty(), "{}", report["findings"]);
    let row = report["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "smtp-inbound")
        .unwrap();
    assert_eq!(row["verdict"], "ok", "{row}");
    let tls = lines.iter().find(|l| l["id.resp_p"] == 443).unwrap();
    assert_eq!(tls["tls"]["established"], true);
    assert_eq!(tls["tls"]["sni"], "mail.example.com");
}

/// A firewall filtering by TLS server name: to the same server and port, `mail.example.com`
/// completes its handshake; `autodiscover.example.com` is reset right after its ClientHello
/// by a TTL not the server's, and `owa.example.com` gets silence until the client gives up
/// (its own RST): both are tls_blocked_by_name, by firewall, naming mail.example.com as
/// passing, and neither is also a tls_handshake_failed. `legacy.example.com` is reset with the
/// server's own TTL, and `closed.example.com` gets the server's FIN: the server refused them,
/// tls_handshake_failed, not a block.
#[test]
fn a_name_cut_by_a_device_while_another_passes_is_blocked_by_name() {
    let mut p = TinyPcap::new(None);
    let t0 = 1_700_000_000_000_000;
    let hello_ok = |name: &str| {
        vec![
            (false, client_hello(name)),
            (true, vec![0x16, 3, 3, 0, 4, 2, 0, 0, 0]),
        ]
    };
    let ok = hello_ok("mail.example.com");
    let ok: Vec<(bool, &[u8])> = ok.iter().map(|(s, b)| (*s, b.as_slice())).collect();
    session(&mut p, t0, 41_000, 443, &ok, None);
    let ad = client_hello("autodiscover.example.com");
    session(
        &mut p,
        t0 + 1_000_000,
        41_001,
        443,
        &[(false, &ad)],
        Some(120),
    );
    session(
        &mut p,
        t0 + 2_000_000,
        41_002,
        443,
        &[(false, &ad)],
        Some(120),
    );
    let owa = client_hello("owa.example.com");
    session(&mut p, t0 + 3_000_000, 41_003, 443, &[(false, &owa)], None);
    // The client gives up after the silence: its RST (seq after its ClientHello).
    let c = Host {
        ip: C,
        port: 41_003,
        ttl: 50,
    };
    let s = Host {
        ip: S,
        port: 443,
        ttl: 64,
    };
    p.tcp(
        t0 + 9_000_000,
        c,
        s,
        RST | ACK,
        1001 + owa.len() as u32,
        5001,
        b"",
    );
    let legacy = client_hello("legacy.example.com");
    session(
        &mut p,
        t0 + 10_000_000,
        41_004,
        443,
        &[(false, &legacy)],
        Some(64),
    );
    // A server that closes on a name it does not serve: its FIN, then the client's RST.
    let closed = client_hello("closed.example.com");
    session(
        &mut p,
        t0 + 11_000_000,
        41_005,
        443,
        &[(false, &closed)],
        None,
    );
    let c = Host { port: 41_005, ..c };
    let cs = 1001 + closed.len() as u32;
    p.tcp(t0 + 12_000_000, s, c, FIN | ACK, 5001, cs, b"");
    p.tcp(t0 + 12_000_100, c, s, RST | ACK, cs, 5002, b"");
    let (report, md, _) = run("findings-by-name", &p);
    let all = report["findings"].as_array().unwrap();
    let of = |kind: &str, sni: &str| -> Vec<&Value> {
        all.iter()
            .filter(|f| f["kind"] == kind && f["sni"] == sni)
            .collect()
    };
    let ad = of("tls_blocked_by_name", "autodiscover.example.com");
    assert_eq!(ad.len(), 1, "{all:?}");
    assert_eq!(ad[0]["count"], 2);
    assert_eq!(ad[0]["by"], "firewall");
    assert_eq!(
        ad[0]["passing_sni"],
        serde_json::json!(["mail.example.com"])
    );
    let detail = ad[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"autodiscover.example.com\"") && detail.contains("\"mail.example.com\""),
        "{detail}"
    );
    assert!(detail.contains("filtering policy"), "{detail}");
    let owa = of("tls_blocked_by_name", "owa.example.com");
    assert_eq!(owa.len(), 1, "{all:?}");
    assert_eq!(owa[0]["count"], 1);
    for name in [
        "autodiscover.example.com",
        "owa.example.com",
        "mail.example.com",
    ] {
        assert!(
            of("tls_handshake_failed", name).is_empty(),
            "{name}: {all:?}"
        );
    }
    let legacy = of("tls_handshake_failed", "legacy.example.com");
    assert_eq!(legacy.len(), 1, "{all:?}");
    assert_eq!(legacy[0]["by"], "server");
    assert!(
        of("tls_blocked_by_name", "legacy.example.com").is_empty(),
        "{all:?}"
    );
    assert!(
        of("tls_blocked_by_name", "closed.example.com").is_empty(),
        "{all:?}"
    );
    assert_eq!(
        of("tls_handshake_failed", "closed.example.com").len(),
        1,
        "{all:?}"
    );
    assert!(md.contains("tls\\_blocked\\_by\\_name"), "{md}");
}

/// The TLS handshake after STARTTLS is judged like one on 443 (issue 15): on 25 a server
/// alert (handshake_failure) right after the ClientHello is a tls_handshake_failed by the
/// server; on 587 a RST with a TTL not the server's right after the ClientHello is one by the
/// firewall; a STARTTLS session whose ServerHello came gives none, and no session here is a
/// starttls_stripped (every EHLO reply listed STARTTLS).
#[test]
fn a_starttls_handshake_that_fails_is_a_tls_handshake_failure() {
    let dialogue = |ch: &'static [u8]| -> Vec<(bool, &'static [u8])> {
        vec![
            (true, b"220 mail.example.com ESMTP\r\n"),
            (false, b"EHLO partner.example\r\n"),
            (true, b"250-mail.example.com\r\n250 STARTTLS\r\n"),
            (false, b"STARTTLS\r\n"),
            (true, b"220 2.0.0 SMTP server ready\r\n"),
            (false, ch),
        ]
    };
    let leak = |v: Vec<u8>| -> &'static [u8] { Vec::leak(v) };
    let mut p = TinyPcap::new(None);
    let t0 = 1_700_000_000_000_000;
    let mut alerted = dialogue(leak(client_hello("mail.example.com")));
    alerted.push((true, &[0x15, 3, 3, 0, 2, 2, 40]));
    session(&mut p, t0, 40_000, 25, &alerted, Some(64));
    session(
        &mut p,
        t0 + 10_000_000,
        40_001,
        587,
        &dialogue(leak(client_hello("smtp.example.com"))),
        Some(120),
    );
    let mut healthy = dialogue(leak(client_hello("mail.example.com")));
    healthy.push((true, &[0x16, 3, 3, 0, 4, 2, 0, 0, 0]));
    session(&mut p, t0 + 20_000_000, 40_002, 25, &healthy, Some(64));
    let (report, _, lines) = run("findings-starttls", &p);
    let failed: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "tls_handshake_failed")
        .collect();
    assert_eq!(kinds(&report).len(), failed.len(), "{}", report["findings"]);
    let on = |port: u16| {
        failed
            .iter()
            .find(|f| f["port"] == port)
            .unwrap_or_else(|| panic!("no tls_handshake_failed on {port}: {failed:?}"))
    };
    assert_eq!(on(25)["by"], "server", "{}", on(25));
    assert_eq!(on(25)["count"], 1, "{}", on(25));
    assert_eq!(on(25)["example"]["id.orig_p"], 40_000);
    assert_eq!(on(587)["by"], "firewall", "{}", on(587));
    assert_eq!(on(587)["sni"], "smtp.example.com");
    assert_eq!(failed.len(), 2, "{failed:?}");
    let line = |cport: u16| lines.iter().find(|l| l["id.orig_p"] == cport).unwrap();
    for (cport, established) in [(40_000, false), (40_001, false), (40_002, true)] {
        let l = line(cport);
        assert_eq!(l["smtp"]["starttls"], true, "{l}");
        assert_eq!(l["tls"]["established"], established, "{l}");
    }
    assert_eq!(line(40_000)["tls"]["alert"]["description"], 40);
    assert_eq!(line(40_002)["tls"]["sni"], "mail.example.com");
}
