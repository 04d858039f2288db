//! The terminal table and the Markdown report of a hand-built `Report`: every line fits 100
//! columns, colour only when asked, problems listed first, every verdict shown, nothing from
//! the data can reach the terminal as a control sequence, and Markdown tables cannot be split
//! by a `|` in the data.

use exflow::report::model::*;
use exflow::report::{live_view, markdown, table};
use std::collections::BTreeMap;

const T0: f64 = 1_714_557_600.25; // 2024-05-01 10:00:00.25 UTC

fn zone(zone: &'static str) -> Side {
    Side {
        zone,
        role: None,
        address: None,
        via: None,
    }
}

fn host(zone: &'static str, role: &'static str, address: &str) -> Side {
    Side {
        zone,
        role: Some(role),
        address: Some(address.to_string()),
        via: None,
    }
}

fn ms(p50: f64, p90: f64, p99: f64, max: f64) -> Percentiles {
    Percentiles { p50, p90, p99, max }
}

/// An entry with every count zero; tests fill in what they need with struct update.
fn entry(role: &str, proto: &'static str, port: u16, src: Side, dst: Side) -> FlowEntry {
    FlowEntry {
        role: role.to_string(),
        purpose: format!("{role} purpose"),
        proto,
        port,
        ports: port.to_string(),
        src,
        dst,
        attempts: 0,
        established: 0,
        dropped: 0,
        refused: 0,
        rejected: 0,
        reset_midstream: 0,
        syn_retries: 0,
        one_sided: 0,
        ignored_resets: 0,
        mail_sessions: 0,
        mail_refused: 0,
        services: vec![],
        handshake_ms: None,
        verdict: Verdict::NotSeen,
        answered_by: None,
        icmp: Vec::new(),
        detail: String::new(),
        family: None,
        out_of_view: false,
        via: None,
        died_at: None,
        cannot_show: vec![],
        fix: None,
    }
}

const MBX4: &str = "192.0.2.10";
const MBX6: &str = "2001:db8:200::10";

/// A Mailbox site seen from the firewall: every verdict, two unexpected flows, one
/// unsupported restriction, a scan, latency rows, IPv6 hosts.
fn site_report() -> Report {
    let expected = vec![
        FlowEntry {
            attempts: 1,
            verdict: Verdict::NotSeen,
            ..entry(
                "imap4s",
                "tcp",
                993,
                zone("internet"),
                host("internal", "mailbox", MBX4),
            )
        },
        FlowEntry {
            attempts: 120,
            established: 120,
            handshake_ms: Some(ms(12.4, 30.1, 88.0, 240.7)),
            verdict: Verdict::Ok,
            detail: "120 connections established.".into(),
            ..entry(
                "https-client",
                "tcp",
                443,
                zone("internet"),
                host("internal", "mailbox", MBX6),
            )
        },
        FlowEntry {
            attempts: 6,
            dropped: 6,
            syn_retries: 18,
            verdict: Verdict::Blocked,
            detail: "6 connection attempts from the internet to 192.0.2.10 port 25 got no \
                     answer: the SYNs are silently dropped before they reach the server."
                .into(),
            ..entry(
                "smtp-inbound",
                "tcp",
                25,
                zone("internet"),
                host("internal", "mailbox", MBX4),
            )
        },
        FlowEntry {
            attempts: 40,
            established: 40,
            handshake_ms: Some(ms(0.412, 0.9, 1.7, 2.2)),
            verdict: Verdict::Ok,
            ..entry(
                "https-client",
                "tcp",
                443,
                zone("internal"),
                host("internal", "mailbox", MBX4),
            )
        },
        FlowEntry {
            attempts: 4,
            refused: 4,
            answered_by: Some(exflow::report::model::AnsweredBy::Middlebox),
            verdict: Verdict::Refused,
            detail: "Refused 4 times by a RST from something in between (TTL 254; the \
                     server answers with 128)."
                .into(),
            ..entry(
                "smtp-submission",
                "tcp",
                587,
                zone("internal"),
                host("internal", "mailbox", MBX4),
            )
        },
        FlowEntry {
            attempts: 2,
            rejected: 2,
            icmp: vec!["3/13 admin-prohibited".into()],
            verdict: Verdict::Rejected,
            detail: "Rejected by ICMP destination unreachable from 192.0.2.1.".into(),
            ..entry(
                "http-client",
                "tcp",
                80,
                zone("internet"),
                host("internal", "mailbox", MBX4),
            )
        },
        FlowEntry {
            attempts: 10,
            established: 7,
            dropped: 3,
            handshake_ms: Some(ms(35.2, 80.4, 150.0, 151.3)),
            verdict: Verdict::Flaky,
            detail: "7 of 10 connections established (70%); 3 got no answer.".into(),
            ..entry(
                "smtp-outbound",
                "tcp",
                25,
                host("internal", "mailbox", MBX4),
                zone("internet"),
            )
        },
        FlowEntry {
            attempts: 5,
            established: 5,
            reset_midstream: 2,
            answered_by: Some(exflow::report::model::AnsweredBy::Middlebox),
            handshake_ms: Some(ms(14.0, 20.0, 22.0, 22.5)),
            verdict: Verdict::Cut,
            detail: "2 of 5 established connections were reset mid-stream by something in \
                     between (TTL 62 where the client shows 117)."
                .into(),
            ..entry(
                "https-client",
                "tcp",
                443,
                zone("internet"),
                host("internal", "mailbox", MBX4),
            )
        },
        FlowEntry {
            attempts: 14,
            one_sided: 14,
            ignored_resets: 0,
            mail_sessions: 0,
            mail_refused: 0,
            services: vec![],
            verdict: Verdict::OneSided,
            detail: "Only the queries were captured (asymmetric mirror): no verdict can be \
                     trusted."
                .into(),
            ..entry(
                "dns-udp",
                "udp",
                53,
                host("internal", "mailbox", MBX6),
                host("internal", "dns", "2001:db8:200::53"),
            )
        },
        FlowEntry {
            verdict: Verdict::NotSeen,
            ..entry(
                "dns-tcp",
                "tcp",
                53,
                host("internal", "mailbox", MBX4),
                host("internal", "dns", "192.0.2.53"),
            )
        },
    ];
    let unexpected = vec![
        Unexpected {
            proto: "tcp",
            port: 110,
            src: host("internet", "client", "198.51.100.23"),
            dst: host("internal", "mailbox", MBX4),
            attempts: 3,
            established: 3,
            reason: "disabled-service",
            likely: false,
            verdict: Verdict::Ok,
            role: Some("pop3".into()),
            first_ts: T0 + 61.0,
            example: Example {
                orig_h: "198.51.100.23".into(),
                orig_p: 51234,
                resp_h: MBX4.into(),
                resp_p: 110,
                conn_state: "SF",
                history: "ShADadfF".into(),
            },
            detail: "POP3 is disabled by default, yet 3 connections from the internet were \
                     established."
                .into(),
            services: vec![],
        },
        Unexpected {
            proto: "tcp",
            port: 389,
            src: Side {
                zone: "internet",
                role: None,
                address: Some("2001:db8:ffff:1234:5678:9abc:def0:1".into()),
                via: None,
            },
            dst: host("internal", "mailbox", MBX6),
            attempts: 1,
            established: 0,
            reason: "internal-only-exposed",
            likely: false,
            verdict: Verdict::Ok,
            role: Some("ldap".into()),
            first_ts: T0 + 300.5,
            example: Example {
                orig_h: "2001:db8:ffff:1234:5678:9abc:def0:1".into(),
                orig_p: 40001,
                resp_h: MBX6.into(),
                resp_p: 389,
                conn_state: "S0",
                history: "S".into(),
            },
            detail: "LDAP is internal-only but was tried from the internet.".into(),
            services: vec![],
        },
    ];
    let unsupported = vec![FlowEntry {
        ports: "1-65535".into(),
        attempts: 5,
        dropped: 5,
        verdict: Verdict::Blocked,
        detail: "Traffic between Exchange and a domain controller is dropped; Microsoft does \
                 not support restricting it."
            .into(),
        ..entry(
            "exchange-dc-tcp",
            "tcp",
            49672,
            host("internal", "mailbox", MBX4),
            host("internal", "dc", "192.0.2.5"),
        )
    }];
    let mut anomalies = BTreeMap::new();
    anomalies.insert("snaplen_cut".to_string(), 12);
    anomalies.insert("ip_fragment".to_string(), 3);
    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "exflow",
            version: "0.1.0",
        },
        capture: CaptureFacts {
            files: vec![
                "/var/captures/exch01-firewall-2024-05-01.pcapng".into(),
                "exch01-b.pcap".into(),
            ],
            packets: 182_345,
            bytes: 145_678_901,
            first_ts: Some(T0),
            last_ts: Some(T0 + 912.65),
            link_types: vec!["EN10MB".into()],
            anomalies,
            tunnels: BTreeMap::new(),
            evicted_flows: 0,
            kernel_drops: None,
            connections: 4321,
            duplicate_packets: 17,
            read_warnings: vec!["exch01-b.pcap: capture cut off inside a record".into()],
            interfaces: vec![],
            reordered: 0,
            max_step_back_ms: 0.0,
            interface_drops: None,
            queue_drops: None,
            filter: None,
            vlan_tagged: 0,
        },
        topology: Topology {
            inferred: true,
            profile: "mailbox",
            hosts: vec![
                TopologyHost {
                    address: MBX4.into(),
                    role: "mailbox",
                },
                TopologyHost {
                    address: MBX6.into(),
                    role: "mailbox",
                },
                TopologyHost {
                    address: "192.0.2.5".into(),
                    role: "dc",
                },
                TopologyHost {
                    address: "2001:db8:200::53".into(),
                    role: "dns",
                },
            ],
            internal: vec!["192.0.2.0/24".into(), "2001:db8:200::/64".into()],
            perimeter: vec![],
            reasons: vec![
                "192.0.2.10 and 2001:db8:200::10 accept connections on 443 and 25: Exchange \
                 Mailbox servers."
                    .into(),
                "192.0.2.5 is reached on 88 and 389 by a Mailbox server: domain controller.".into(),
            ],
            site_file: None,
        },
        expected,
        unexpected,
        unsupported_restrictions: unsupported,
        scans: vec![Scan {
            source: "203.0.113.66".into(),
            targets: vec![MBX4.into(), "192.0.2.11".into(), "192.0.2.12".into()],
            ports_probed: 1000,
            open: vec![25, 80, 443, 587, 993, 995, 3389, 5985, 8080, 8443, 50636],
            closed: 985,
            filtered: 4,
            first_ts: T0 + 400.0,
            last_ts: T0 + 420.0,
        }],
        floods: vec![Flood {
            target: MBX4.into(),
            proto: "tcp",
            port: 443,
            sources: 250_000,
            attempts: 250_000,
            first_ts: T0 + 500.0,
            last_ts: T0 + 560.0,
        }],
        latency: vec![
            RoleLatency {
                role: "https-client".into(),
                connections: 165,
                syn_synack_ms: ms(12.4, 30.1, 88.0, 240.7),
            },
            RoleLatency {
                role: "smtp-outbound".into(),
                connections: 7,
                syn_synack_ms: ms(35.2, 80.4, 150.0, 1234.5),
            },
        ],
        warnings: vec![
            "12 connections were already open when the capture started; they are left out \
             of the verdicts."
                .into(),
        ],
        interim: None,
        left_out: Default::default(),
        inputs: vec![],
        findings: vec![],
    }
}

fn plain(r: &Report) -> String {
    table::render(
        r,
        &table::TableOptions {
            color: false,
            width: 100,
        },
    )
}

fn coloured(r: &Report) -> String {
    table::render(
        r,
        &table::TableOptions {
            color: true,
            width: 100,
        },
    )
}

/// Removes the renderer's SGR sequences (`ESC [ digits;… m`), panicking on any other escape.
fn strip_sgr(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        assert_eq!(chars.next(), Some('['), "ESC not starting a CSI in {s:?}");
        loop {
            match chars.next() {
                Some('m') => break,
                Some(d) if d.is_ascii_digit() || d == ';' => {}
                other => panic!("escape sequence other than SGR: {other:?} in {s:?}"),
            }
        }
    }
    out
}

fn assert_fits(out: &str, width: usize) {
    for line in out.lines() {
        let visible = strip_sgr(line);
        assert!(
            visible.chars().count() <= width,
            "line of {} chars > {width}:\n{visible}",
            visible.chars().count()
        );
    }
}

/// The data rows of the "Expected flows" table (after its column header line), without
/// the indented detail lines.
fn expected_rows(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| *l != "Expected flows")
        .skip(2)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter(|l| !l.trim_start().starts_with("drop = "))
        .map(str::to_string)
        .collect()
}

fn verdict_of(row: &str) -> &'static str {
    [
        "not seen",
        "one-sided",
        "blocked",
        "refused",
        "rejected",
        "flaky",
        "cut",
        "ok",
    ]
    .into_iter()
    .find(|v| row.contains(&format!("  {v}  ")))
    .unwrap_or_else(|| panic!("no verdict in row {row:?}"))
}

#[test]
fn table_lines_fit_the_width_with_and_without_colour() {
    let r = site_report();
    assert_fits(&plain(&r), 100);
    assert_fits(&coloured(&r), 100);
    for width in [60, 80, 120] {
        let out = table::render(&r, &table::TableOptions { color: true, width });
        assert_fits(&out, width);
    }
    // At 80 columns the p50 and failure columns give way to the endpoints.
    let out = table::render(
        &r,
        &table::TableOptions {
            color: false,
            width: 80,
        },
    );
    assert!(out.contains(
        "  smtp-inbound     25/tcp   internet → mailbox 192.0.2.10     blocked        6/0\n"
    ));
}

#[test]
fn width_zero_means_the_default() {
    let r = site_report();
    let out = table::render(
        &r,
        &table::TableOptions {
            color: false,
            width: 0,
        },
    );
    assert_eq!(out, plain(&r));
    assert_eq!(table::TableOptions::default().width, 100);
}

#[test]
fn colour_codes_only_when_asked() {
    let r = site_report();
    let p = plain(&r);
    assert!(!p.contains('\x1b'), "escape in plain output");
    let c = coloured(&r);
    assert!(c.contains("\x1b[32mok\x1b[0m"), "ok is green");
    assert!(c.contains("\x1b[31mblocked\x1b[0m"), "blocked is red");
    assert!(c.contains("\x1b[31mrefused\x1b[0m"));
    assert!(c.contains("\x1b[31mrejected\x1b[0m"));
    assert!(c.contains("\x1b[31mcut\x1b[0m"));
    assert!(c.contains("\x1b[33mflaky\x1b[0m"), "flaky is yellow");
    assert!(c.contains("\x1b[2mnot seen\x1b[0m"), "not seen is dim");
    assert!(
        c.contains("\x1b[35mone-sided\x1b[0m"),
        "one-sided is magenta"
    );
    // Same text once the colours are removed.
    assert_eq!(strip_sgr(&c), p);
}

#[test]
fn problems_come_before_ok_before_not_seen() {
    let out = plain(&site_report());
    let rows = expected_rows(&out);
    assert_eq!(rows.len(), 10, "{rows:#?}");
    let groups: Vec<u8> = rows
        .iter()
        .map(|r| match verdict_of(r) {
            "ok" => 1,
            "not seen" => 2,
            _ => 0,
        })
        .collect();
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(groups, sorted, "{rows:#?}");
    // Within a group: by role, then address (192.0.2.10 before 2001:db8:200::10).
    let ok: Vec<&String> = rows.iter().filter(|r| verdict_of(r) == "ok").collect();
    assert!(ok[0].contains(MBX4) && ok[1].contains(MBX6), "{ok:#?}");
    let problems: Vec<&str> = rows
        .iter()
        .filter(|r| !matches!(verdict_of(r), "ok" | "not seen"))
        .map(|r| r.split_whitespace().next().unwrap_or(""))
        .collect();
    let mut by_role = problems.clone();
    by_role.sort();
    assert_eq!(problems, by_role);
}

#[test]
fn every_verdict_word_appears() {
    let r = site_report();
    for out in [plain(&r), markdown::render(&r)] {
        for v in [
            Verdict::Ok,
            Verdict::Blocked,
            Verdict::Refused,
            Verdict::Rejected,
            Verdict::Flaky,
            Verdict::Cut,
            Verdict::NotSeen,
            Verdict::OneSided,
        ] {
            assert!(
                out.contains(exflow::report::words::verdict_label(v)),
                "{} missing",
                exflow::report::words::verdict_label(v)
            );
        }
    }
}

#[test]
fn sections_come_in_order() {
    let out = plain(&site_report());
    let at = |title: &str| {
        out.lines()
            .position(|l| l.starts_with(title))
            .unwrap_or_else(|| panic!("no section {title:?}"))
    };
    let order = [
        at("Expected flows"),
        at("Unexpected"),
        at("Unsupported restrictions"),
        at("Port scans"),
        at("Handshake latency per role"),
        at("Capture"),
        at("Topology"),
        at("warning:"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

#[test]
fn key_lines_read_as_expected() {
    let out = plain(&site_report());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "exflow 0.1.0 · /var/captures/exch01-firewall-2024-05-01.pcapng, exch01-b.pcap"
    );
    assert_eq!(
        lines[1],
        "10 expected flows: 2 ok, 1 blocked, 1 refused, 1 rejected, 1 flaky, 1 cut, 1 one-sided, \
         2 not seen"
    );
    assert_eq!(
        lines[2],
        "  · 2 unexpected · 1 unsupported restriction · 1 port scan · 1 SYN flood"
    );
    let has = |needle: &str| {
        assert!(
            lines.iter().any(|l| l.trim_end() == needle),
            "no line {needle:?} in\n{out}"
        )
    };
    has("  role             port     from → to                             verdict    att/est  failed  p50 ms");
    has("  smtp-inbound     25/tcp   internet → mailbox 192.0.2.10         blocked        6/0  6 drop       -");
    has("      6 connection attempts from the internet to 192.0.2.10 port 25 got no answer: the SYNs are");
    has("  smtp-submission  587/tcp  internal → mailbox 192.0.2.10         refused        4/0  4 ref        -");
    // A sentence under a row hangs: its later lines two further in.
    has("        (answered by middlebox)");
    has("      Rejected by ICMP destination unreachable from 192.0.2.1. (ICMP 3/13 admin-prohibited)");
    has("  https-client     443/tcp  internet → mailbox 2001:db8:200::10   ok         120/120  -         12.4");
    // Both IPv6 sides do not fit with their roles: the addresses are kept, the roles dropped.
    has("  dns-udp          53/udp   2001:db8:200::10 → 2001:db8:200::53   one-sided     14/0  -            -");
    has("  110/tcp  client 198.51.100.23 → mailbox 192.0.2.10      disabled-service           3/3  10:01:01");
    // Cut in the table, told whole under the row.
    has("      internet 2001:db8:ffff:1234:5678:9abc:def0:1 → mailbox 2001:db8:200::10");
    has("      example: [2001:db8:ffff:1234:5678:9abc:def0:1]:40001 → [2001:db8:200::10]:389 S0 S");
    has("  exchange-dc-tcp  49672/tcp  mailbox 192.0.2.10 → dc 192.0.2.5  blocked      5/0  5 drop       -");
    has("  203.0.113.66  192.0.2.10 +2   1000  25, 80, 443, 587, 993, 995, 3389, 5985 +3     985         4");
    has("  smtp-outbound      7  35.2  80.4   150  1234");
    has("  bytes         138.9 MiB (145678901 bytes)");
    has("  time span     2024-05-01 10:00:00 → 10:15:12 UTC (15m 13s)");
    has("  anomalies     ip_fragment 3, snaplen_cut 12");
    has("  source        inferred from traffic");
    has("  hosts         192.0.2.10 mailbox, 2001:db8:200::10 mailbox, 192.0.2.5 dc, 2001:db8:200::53 dns");
    has("warning: 12 connections were already open when the capture started; they are left out of the");
    has("         verdicts.");
}

#[test]
fn control_characters_in_the_data_are_escaped() {
    let mut r = site_report();
    r.capture.files[0] = "evil\x1b[2J\u{9b}31m.pcap".into();
    r.expected[2].detail = "dropped \x1b]0;pwned\x07 here\r\n\u{202e}gnp.exe".into();
    r.unexpected[0].example.history = "Sh\x1b[1A\u{9b}2K".into();
    r.topology.hosts[0].address = "192.0.2.10\x1b[31m".into();
    r.warnings.push("\x1b[?1049h alternate screen".into());
    r.capture.anomalies.insert("bad\u{85}kind".into(), 1);
    for out in [plain(&r), coloured(&r), markdown::render(&r)] {
        // Only SGR sequences (and only the renderer's) may appear: strip_sgr panics on any
        // other escape, including the data's "ESC ] 0;" and "ESC [ ? 1049 h".
        let text = strip_sgr(&out);
        assert!(!text.contains('\x1b'));
        for bad in ['\u{9b}', '\u{7}', '\r', '\u{85}', '\u{202e}'] {
            assert!(!out.contains(bad), "raw {bad:?} in output");
        }
        assert!(
            text.contains("x1b[2J") || text.contains(r"x1b\[2J"),
            "the escape is shown, not obeyed"
        );
        assert!(text.contains("x9b31m"));
        assert!(text.contains("u{202e}"));
    }
    let md = markdown::render(&r);
    assert!(md.contains(r"evil\\x1b\[2J\\x9b31m.pcap"), "{md}");
    let p = plain(&r);
    assert!(p.contains("evil\\x1b[2J\\x9b31m.pcap"));
    assert!(p.contains("dropped \\x1b]0;pwned\\x07 here\\x0d\\x0a\\u{202e}gnp.exe"));
    assert!(p.contains("warning: \\x1b[?1049h alternate screen"));
    // The coloured output holds the data's escapes as text, and the renderer's own codes.
    let c = coloured(&r);
    assert!(!c.contains("\x1b[2J") && !c.contains("\x1b]0;") && c.contains("\x1b[31m"));
    assert_fits(&c, 100);
}

#[test]
fn zero_entries_say_no_exchange_server() {
    let mut r = site_report();
    r.expected.clear();
    r.unexpected.clear();
    r.unsupported_restrictions.clear();
    r.scans.clear();
    r.latency.clear();
    r.warnings.clear();
    r.topology
        .hosts
        .retain(|h| h.role != "mailbox" && h.role != "edge");
    let out = plain(&r);
    assert!(
        out.contains("No Exchange server found in this capture"),
        "{out}"
    );
    assert!(out.contains("no expected flows · 0 unexpected"), "{out}");
    for absent in [
        "Unexpected",
        "Unsupported",
        "Port scans",
        "Handshake latency",
        "warning:",
    ] {
        assert!(!out.contains(absent), "{absent} shown for nothing:\n{out}");
    }
    assert!(out.contains("\nCapture\n") && out.contains("\nTopology\n"));
    assert_fits(&out, 100);
    let md = markdown::render(&r);
    assert!(md.contains("No Exchange server found in this capture"));
    assert!(!md.contains("## Unexpected"));

    // With an Exchange server but nothing expected (an odd profile), say that instead.
    let mut r = site_report();
    r.expected.clear();
    assert!(plain(&r).contains("No expected flows for the mailbox profile."));
}

#[test]
fn long_addresses_and_long_file_lists_still_fit() {
    let mut r = site_report();
    r.capture.files = (0..300)
        .map(|i| format!("/srv/captures/exchange/rotated/tcpdump-C100-exch01-{i:04}.pcap.zst"))
        .collect();
    let long = "2001:db8:200:ffff:ffff:ffff:ffff:fff0";
    r.expected[1].src = host("internet", "client", long);
    r.expected[1].dst = host("internal", "mailbox", long);
    r.expected[2].role = "a-role-name-that-goes-on-and-on-and-on-and-on".into();
    r.topology.reasons.push("x".repeat(250));
    let out = plain(&r);
    assert_fits(&out, 100);
    let files: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("  files"))
        .take_while(|l| l.starts_with("  files") || l.starts_with("                "))
        .collect();
    assert_eq!(files.len(), 3, "{files:#?}");
    assert!(files[2].contains(" more"), "{files:#?}");
    // The header names the first file and how many more.
    assert!(out.lines().next().is_some_and(|l| l.contains("+299 more")));
    // A cut "from → to" is repeated whole under its row.
    assert!(out.contains(&format!("      client {long} → mailbox {long}")));
    // Narrow terminals too.
    for width in [40, 50, 72] {
        assert_fits(
            &table::render(&r, &table::TableOptions { color: true, width }),
            width,
        );
    }
}

#[test]
fn missing_handshake_times_are_dashes() {
    let r = site_report();
    let out = plain(&r);
    let blocked = expected_rows(&out)
        .into_iter()
        .find(|l| l.contains("smtp-inbound"))
        .unwrap();
    assert!(blocked.ends_with(" -"), "{blocked}");
    let no_nan = |out: &str| {
        out.split_whitespace()
            .all(|w| !w.contains("NaN") && !w.ends_with("inf"))
    };
    assert!(no_nan(&out));
    let mut r = site_report();
    r.latency[0].syn_synack_ms.p99 = f64::NAN;
    r.capture.first_ts = None;
    r.capture.last_ts = None;
    let out = plain(&r);
    assert!(no_nan(&out), "{out}");
    assert!(
        out.contains("  https-client     165  12.4  30.1    -   241"),
        "{out}"
    );
    assert!(out.contains("  time span     -"));
}

#[test]
fn tunnels_line_only_when_tunnels_were_opened() {
    let mut r = site_report();
    let none = (plain(&r), markdown::render(&r));
    assert!(!none.0.contains("tunnels"), "{}", none.0);
    assert!(!none.1.contains("Tunnels"), "{}", none.1);
    r.capture.tunnels.insert("vxlan".into(), 10);
    r.capture.tunnels.insert("erspan_ii".into(), 4);
    let out = plain(&r);
    assert!(
        out.lines()
            .any(|l| l.trim_end() == "  tunnels       erspan_ii 4, vxlan 10"),
        "{out}"
    );
    let md = markdown::render(&r);
    assert!(
        md.lines()
            .any(|l| l == "- **Tunnels:** erspan\\_ii 4, vxlan 10"
                || l == "- **Tunnels:** erspan_ii 4, vxlan 10"),
        "{md}"
    );
}

#[test]
fn markdown_has_tables_bold_verdicts_and_escapes_pipes() {
    let mut r = site_report();
    r.capture.files[1] = "a|b`c`.pcap".into();
    r.expected[2].detail = "dropped | by `fw01` <script>".into();
    let md = markdown::render(&r);
    assert!(!md.contains('\x1b'));
    for heading in [
        "# exflow report",
        "## Expected flows",
        "## Unexpected flows",
        "## Unsupported restrictions",
        "## Port scans",
        "## Handshake latency per role",
        "## Capture",
        "## Topology",
        "## Warnings",
    ] {
        assert!(md.lines().any(|l| l == heading), "no {heading:?}\n{md}");
    }
    assert!(md.contains(
        "| Role | Port | From | To | Verdict | Attempts/established | Failures | Handshake p50 ms | Detail |"
    ));
    assert!(md.contains("| https-client | 443/tcp | internet | mailbox 2001:db8:200::10 | **ok** | 120/120 | - | 12.4 | - |"));
    assert!(md.contains("**blocked**") && md.contains("**not seen**"));
    assert!(md.contains("a\\|b\\`c\\`.pcap"), "{md}");
    assert!(
        md.contains("dropped \\| by \\`fw01\\` \\<script\\>"),
        "{md}"
    );
    assert!(md.contains("2 rejected (ICMP 3/13 admin-prohibited)"));
    assert!(md.contains("4 refused (by middlebox)"));
    assert_md_tables_intact(&md);
}

/// Every table row has as many unescaped pipes as its table's header.
fn assert_md_tables_intact(md: &str) {
    let mut cols = 0;
    for line in md.lines() {
        if !line.starts_with('|') {
            cols = 0;
            continue;
        }
        let pipes = unescaped_pipes(line);
        if cols == 0 {
            cols = pipes;
        }
        assert_eq!(pipes, cols, "row with a different cell count: {line}");
    }
}

fn unescaped_pipes(line: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => n += 1,
            _ => escaped = false,
        }
    }
    n
}

/// A small deterministic generator (xorshift), so the stress test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A string of control characters, wide characters, spaces, pipes and long words.
    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "\x1b[2J",
            "\u{9b}",
            "\x07",
            "\r\n",
            "\t",
            "\u{7f}",
            "\u{202e}",
            "東京",
            "🙂",
            " ",
            "|",
            "`",
            "2001:db8:200:ffff:ffff:ffff:ffff:fff0",
            "a",
            "mailbox",
            "…",
            "é",
            "\u{301}",
            "averyveryveryverylongwordwithoutanyspacesatallinthemiddleofit",
        ];
        let n = self.below(12);
        (0..n).map(|_| PIECES[self.below(PIECES.len())]).collect()
    }
}

#[test]
fn any_width_and_any_data_never_overflow_or_leak_escapes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut r = site_report();
        r.capture.files = (0..rng.below(6)).map(|_| rng.text()).collect();
        for e in r
            .expected
            .iter_mut()
            .chain(r.unsupported_restrictions.iter_mut())
        {
            e.role = rng.text();
            e.detail = rng.text();
            e.src.address = Some(rng.text());
            e.icmp = vec![rng.text()];
        }
        for u in &mut r.unexpected {
            u.detail = rng.text();
            u.example.history = rng.text();
            u.example.orig_h = rng.text();
        }
        for h in &mut r.topology.hosts {
            h.address = rng.text();
        }
        r.topology.reasons = vec![rng.text(), rng.text()];
        r.topology.site_file = Some(rng.text());
        r.capture.read_warnings = vec![rng.text()];
        r.warnings = vec![rng.text()];
        r.scans[0].targets = (0..rng.below(5)).map(|_| rng.text()).collect();
        let width = 1 + rng.below(160);
        let color = round % 2 == 0;
        let out = table::render(&r, &table::TableOptions { color, width });
        assert_fits(&out, width);
        let visible = strip_sgr(&out);
        assert!(
            !visible.chars().any(|c| c.is_control() && c != '\n'),
            "{visible:?}"
        );
        let md = markdown::render(&r);
        assert!(!md.chars().any(|c| c.is_control() && c != '\n'));
        assert_md_tables_intact(&md);
    }
}

#[test]
#[ignore = "prints the sample report; run with --ignored --nocapture to look at it"]
fn print_sample_report() {
    let r = site_report();
    println!("{}", plain(&r));
    println!("{}", markdown::render(&r));
}

fn view(r: &Report, width: usize, rows: usize, color: bool) -> Vec<String> {
    let status = live_view::Status {
        interface: "eth1",
        elapsed: std::time::Duration::from_secs(83),
    };
    live_view::render(r, &status, &table::TableOptions { color, width }, rows)
}

/// The site report as a live one: drops counted, a fix under the blocked row.
fn live_report() -> Report {
    let mut r = site_report();
    r.capture.kernel_drops = Some(3);
    r.capture.interface_drops = Some(1);
    r.capture.queue_drops = Some(0);
    r.interim = Some(true);
    let blocked = r
        .expected
        .iter_mut()
        .find(|e| e.verdict == Verdict::Blocked)
        .unwrap();
    blocked.fix = Some(Fix {
        words: "allow tcp/25 from the internet to mailbox 192.0.2.10".into(),
        nft: vec![
            "nft insert rule inet filter forward ip saddr != 192.0.2.0/24 ip daddr \
                   192.0.2.10 tcp dport 25 accept"
                .into(),
        ],
    });
    r
}

#[test]
fn live_view_fits_every_screen() {
    let r = live_report();
    for (width, rows) in [
        (80, 24),
        (100, 20),
        (80, 12),
        (120, 50),
        (60, 8),
        (20, 3),
        (200, 1),
    ] {
        for color in [false, true] {
            let lines = view(&r, width, rows, color);
            assert!(
                !lines.is_empty() && lines.len() <= rows,
                "{width}x{rows}: {} lines",
                lines.len()
            );
            for line in &lines {
                let visible = strip_sgr(line);
                assert!(
                    visible.chars().count() <= width,
                    "{width}x{rows}: {visible:?}"
                );
            }
            if !color {
                assert!(lines.iter().all(|l| !l.contains('\x1b')));
            }
        }
    }
}

#[test]
fn live_view_shows_failures_first_and_counts_what_did_not_fit() {
    let r = live_report();
    let lines = view(&r, 80, 24, false);
    let text = lines.join("\n");
    assert_eq!(
        lines[0],
        "exflow live · eth1 · 1m 23s · 182345 packets · 4 dropped · Ctrl-C: final report"
    );
    assert!(lines[1].starts_with("10 expected flows: "), "{text}");
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{text}"))
    };
    // Every failed flow, then the unsupported restriction, then the unexpected flows.
    let failed = at("Failed flows");
    for word in FAILED_WORDS {
        let row = lines
            .iter()
            .position(|l| has_verdict(l, word))
            .unwrap_or_else(|| panic!("no {word} row in\n{text}"));
        assert!(
            row > failed && row < at("Unsupported restrictions"),
            "{text}"
        );
    }
    assert!(
        at("Unsupported restrictions") < at("Unexpected flows"),
        "{text}"
    );
    assert!(at("110/tcp") > at("Unexpected flows"), "{text}");
    // No room for all the rest: the last line counts it.
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("… ")
            && last.ends_with("more flows not shown: Ctrl-C for the final report"),
        "{text}"
    );
    assert!(lines.len() <= 24, "{text}");

    // On a tall screen: everything, the fix and the ok and not-seen rows last.
    let lines = view(&r, 120, 60, false);
    let text = lines.join("\n");
    assert!(
        text.contains("fix: nft insert rule inet filter forward"),
        "{text}"
    );
    let other = lines
        .iter()
        .position(|l| l == "Other expected flows")
        .unwrap_or_else(|| panic!("{text}"));
    for word in ["one-sided", "ok", "not seen"] {
        assert!(
            lines.iter().skip(other).any(|l| has_verdict(l, word)),
            "{word}: {text}"
        );
    }
    assert!(!text.contains("more flow"), "{text}");

    // A short screen keeps the status line and the failures, in that order.
    let lines = view(&r, 80, 8, false);
    assert!(lines[0].starts_with("exflow live · eth1"));
    let failed = lines.iter().position(|l| l == "Failed flows");
    let row = lines
        .iter()
        .position(|l| FAILED_WORDS.iter().any(|w| has_verdict(l, w)));
    assert!(failed.is_some() && row > failed, "{lines:#?}");
}

fn svc(name: &'static str, evidence: &'static str, a: u64, e: u64) -> ServiceEntry {
    ServiceEntry {
        name,
        evidence,
        attempts: a,
        established: e,
    }
}

/// The live report with services: the cut row's autodiscover filtered by name, an unexpected
/// row's split too, an ok row's services all through (no line), and a long split that cannot
/// fit one line.
fn live_report_with_services() -> Report {
    let mut r = live_report();
    let cut = r
        .expected
        .iter_mut()
        .find(|e| e.verdict == Verdict::Cut)
        .unwrap();
    cut.services = vec![svc("autodiscover", "sni", 5, 0), svc("owa", "sni", 12, 12)];
    let ok = r
        .expected
        .iter_mut()
        .find(|e| e.verdict == Verdict::Ok)
        .unwrap();
    ok.services = vec![svc("ews", "http", 4, 4), svc("owa", "http", 2, 2)];
    r.unexpected[0].services = vec![svc("oab", "http", 3, 3), svc("other", "http", 2, 0)];
    let flaky = r
        .expected
        .iter_mut()
        .find(|e| e.verdict == Verdict::Flaky)
        .unwrap();
    flaky.services = [
        "activesync",
        "autodiscover",
        "ecp",
        "ews",
        "mapi",
        "oab",
        "owa",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| svc(n, "sni", 100 + i as u64, (i % 2) as u64 * 100))
    .collect();
    r
}

#[test]
fn live_view_shows_each_split_row_s_services_on_one_line() {
    let r = live_report_with_services();
    for (width, rows) in [(80, 40), (120, 60), (60, 30)] {
        let lines = view(&r, width, rows, false);
        let text = lines.join("\n");
        let notes: Vec<&String> = lines.iter().filter(|l| l.contains("by service:")).collect();
        // The cut row, the flaky row and the unexpected row: not the ok row (all through).
        assert_eq!(notes.len(), 3, "{width}x{rows}:\n{text}");
        for n in &notes {
            assert!(n.chars().count() <= width, "{n:?}");
        }
        let under = |row: &str| {
            let at = lines
                .iter()
                .position(|l| {
                    // A port ("110/tcp") or a verdict.
                    if row.contains('/') {
                        l.contains(row)
                    } else {
                        has_verdict(l, row)
                    }
                })
                .unwrap_or_else(|| panic!("no {row:?} in\n{text}"));
            lines[at + 1..]
                .iter()
                .take_while(|l| l.starts_with("    "))
                .find(|l| l.contains("by service:"))
                .cloned()
        };
        let cut = under("cut").unwrap_or_else(|| panic!("{text}"));
        assert!(
            cut.contains("autodiscover 0/5 established, owa 12/12"),
            "{text}"
        );
        let pop = under("110/tcp").unwrap_or_else(|| panic!("{text}"));
        assert!(pop.contains("oab 3/3 established, other 0/2"), "{text}");
        // Seven services do not fit one line: cut with "…", not wrapped.
        let flaky = under("flaky").unwrap_or_else(|| panic!("{text}"));
        assert!(flaky.ends_with('…'), "{flaky:?}");
        assert!(flaky.contains("activesync 0/100 established"), "{flaky:?}");
    }
    // The services lines come before the detail sentences and the fixes: on the shortest
    // screen that shows all three, there is no room for those.
    let shortest = (3..200)
        .map(|rows| view(&r, 80, rows, false))
        .find(|l| l.iter().filter(|l| l.contains("by service:")).count() == 3)
        .expect("a screen that shows the three services lines");
    let text = shortest.join("\n");
    assert!(
        !text.contains("fix:") && !text.contains("reset mid-stream by something"),
        "{text}"
    );
    for color in [false, true] {
        for line in view(&r, 80, 40, color) {
            assert!(strip_sgr(&line).chars().count() <= 80, "{line:?}");
        }
    }
}

#[test]
fn markdown_shows_services_of_expected_and_unexpected_rows_alike() {
    let r = live_report_with_services();
    let md = markdown::render(&r);
    let row = |start: &str| {
        md.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no row {start:?} in\n{md}"))
            .to_string()
    };
    assert!(
        row("| 110/tcp |").contains("By service: oab 3/3 established, other 0/2."),
        "{md}"
    );
    assert!(
        row("| https-client | 443/tcp | internet |")
            .contains("By service: autodiscover 0/5 established, owa 12/12."),
        "{md}"
    );
    // All through: no line. The unexpected LDAP row has no services.
    assert_eq!(md.matches("y service: ").count(), 3, "{md}");
    assert_md_tables_intact(&md);
}

const FAILED_WORDS: [&str; 5] = ["blocked", "refused", "rejected", "flaky", "cut"];

/// Whether a table row shows this verdict (a column of its own).
fn has_verdict(line: &str, verdict: &str) -> bool {
    line.contains(&format!("  {verdict}  ")) || line.ends_with(&format!("  {verdict}"))
}

#[test]
fn live_view_frames_overwrite_in_place() {
    let lines = vec!["one".to_string(), "two".to_string()];
    assert_eq!(live_view::frame(&lines), "\x1b[H\x1b[Kone\r\n\x1b[Jtwo");
    assert_eq!(live_view::frame(&[]), "\x1b[H\x1b[J");
    assert_eq!(live_view::ENTER, "\x1b[?1049h\x1b[?25l");
    assert_eq!(live_view::LEAVE, "\x1b[?25h\x1b[?1049l");
}

#[test]
fn markdown_defuses_mentions_and_autolinks_in_the_data() {
    let mut r = site_report();
    r.capture.files[1] =
        "@octocat www.example.com http://example.com/x WWW.Example.org a@b.example".into();
    r.expected[2].detail = "ping @admins via https://evil.example \u{85}\u{202e}".into();
    let md = markdown::render(&r);
    let lower = md.to_lowercase();
    // GitHub links `www.` and `scheme://` text, mentions `@name` and links `a@b.c`.
    assert!(!lower.contains("www."), "{md}");
    assert!(!lower.contains("://"), "{md}");
    let at = md.match_indices('@').map(|(i, _)| &md[i + 1..]);
    for rest in at {
        assert!(
            !rest.starts_with(|c: char| c.is_ascii_alphanumeric()),
            "a live @: {rest:.20}"
        );
    }
    // What remains reads the same once the invisible joiner is taken out.
    let read = md.replace('\u{200d}', "");
    assert!(
        read.contains("@octocat www.example.com http://example.com/x"),
        "{read}"
    );
    assert!(
        read.contains("ping @admins via https://evil.example"),
        "{read}"
    );
    // C1 and bidi characters are visible escapes, never raw.
    assert!(!md.contains('\u{85}') && !md.contains('\u{202e}'), "{md:?}");
    assert_md_tables_intact(&md);
}
