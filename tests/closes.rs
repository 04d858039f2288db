//! A RST that follows a FIN (from either side) is an abortive close, routine for MTAs: it never
//! counts as `reset_midstream`, never makes a row cut or failed, and the table does not list
//! it under "failed". `conn_state` and `history` stay Zeek's (RSTO / RSTR): only the verdict's
//! evidence reads the order of the FIN and the RST. The same RST without a FIN before it is a
//! reset mid-stream, as before.

use crate::util::{exflow, stderr, stdout, tmp_path, Host, TinyPcap, ACK, FIN, PSH, RST, SYN};
use serde_json::Value;

pub const SITE: &str = "profile = \"mailbox\"\ninternal = [\"192.0.2.0/24\"]\nperimeter = []\n\n\
                        [[host]]\nrole = \"mailbox\"\naddresses = [\"192.0.2.10\"]\n";

/// How an SMTP session from the internet to the mailbox ends, after the server's 221.
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// The server's FIN, then the client's RST (the client's own TTL).
    ServerFinClientRst,
    /// The client's FIN, then a RST from the server's address with another TTL than the
    /// server's packets show (what a firewall's forged RST looks like).
    ClientFinForeignRst,
    /// That RST with no FIN before it: a reset mid-stream by a device in between.
    ForeignRstNoFin,
    /// FIN both ways, no RST.
    Fins,
}

/// An inbound SMTP session 203.0.113.5:`cport` → 192.0.2.10:25 from `t0` (µs).
pub fn session(p: &mut TinyPcap, t0: u64, cport: u16, end: End) {
    let c = Host {
        ip: [203, 0, 113, 5],
        port: cport,
        ttl: 52,
    };
    let s = Host {
        ip: [192, 0, 2, 10],
        port: 25,
        ttl: 128,
    };
    let forged = Host { ttl: 61, ..s };
    let (mut cs, mut ss) = (1000u32, 5000u32);
    p.tcp(t0, c, s, SYN, cs, 0, b"");
    cs += 1;
    p.tcp(t0 + 1_000, s, c, SYN | ACK, ss, cs, b"");
    ss += 1;
    p.tcp(t0 + 2_000, c, s, ACK, cs, ss, b"");
    let banner = b"220 mx.example ESMTP\r\n";
    p.tcp(t0 + 3_000, s, c, PSH | ACK, ss, cs, banner);
    ss += banner.len() as u32;
    let quit = b"QUIT\r\n";
    p.tcp(t0 + 4_000, c, s, PSH | ACK, cs, ss, quit);
    cs += quit.len() as u32;
    let bye = b"221 2.0.0 Bye\r\n";
    p.tcp(t0 + 5_000, s, c, PSH | ACK, ss, cs, bye);
    ss += bye.len() as u32;
    match end {
        End::ServerFinClientRst => {
            p.tcp(t0 + 6_000, s, c, FIN | ACK, ss, cs, b"");
            p.tcp(t0 + 7_000, c, s, RST | ACK, cs, ss + 1, b"");
        }
        End::ClientFinForeignRst => {
            p.tcp(t0 + 6_000, c, s, FIN | ACK, cs, ss, b"");
            p.tcp(t0 + 7_000, forged, c, RST | ACK, ss, cs + 1, b"");
        }
        End::ForeignRstNoFin => {
            p.tcp(t0 + 7_000, forged, c, RST | ACK, ss, cs, b"");
        }
        End::Fins => {
            p.tcp(t0 + 6_000, s, c, FIN | ACK, ss, cs, b"");
            p.tcp(t0 + 7_000, c, s, FIN | ACK, cs, ss + 1, b"");
            p.tcp(t0 + 8_000, s, c, ACK, ss + 1, cs + 1, b"");
        }
    }
}

/// Sessions ending as `ends`, one second apart, from client ports 40000, 40001, ...
fn capture(ends: &[End]) -> std::path::PathBuf {
    let mut p = TinyPcap::new(None);
    for (i, end) in ends.iter().enumerate() {
        session(
            &mut p,
            1_700_000_000_000_000 + i as u64 * 1_000_000,
            40_000 + i as u16,
            *end,
        );
    }
    let path = tmp_path("closes.pcap");
    std::fs::write(&path, p.bytes()).unwrap();
    path
}

/// The smtp-inbound entry of the JSON report, the terminal table and the --flows lines.
fn analyze(ends: &[End]) -> (Value, String, Vec<Value>) {
    let pcap = capture(ends);
    let site = tmp_path("closes.site.toml");
    std::fs::write(&site, SITE).unwrap();
    let flows = tmp_path("closes.jsonl");
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
    let entry = report["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "smtp-inbound")
        .cloned()
        .unwrap_or_else(|| panic!("no smtp-inbound entry: {report}"));
    let lines = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let o = exflow(&[
        "analyze", pcap, "--site", site, "--format", "table", "--color", "never",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (entry, stdout(&o), lines)
}

/// The smtp-inbound row of the table.
fn row(table: &str) -> &str {
    table
        .lines()
        .find(|l| l.contains("smtp-inbound"))
        .unwrap_or_else(|| panic!("no smtp-inbound row:\n{table}"))
}

#[test]
fn a_rst_after_a_fin_is_a_close_not_a_reset_midstream() {
    let (entry, table, flows) = analyze(&[End::ServerFinClientRst, End::ClientFinForeignRst]);
    assert_eq!(entry["attempts"], 2, "{entry}");
    assert_eq!(entry["established"], 2, "{entry}");
    assert_eq!(entry["reset_midstream"], 0, "{entry}");
    assert_eq!(entry["verdict"], "ok", "{entry}");
    let detail = entry["detail"].as_str().unwrap_or("");
    assert!(!detail.contains("reset"), "{detail}");
    // Zeek's conn_state is kept: the client aborted (RSTO), the server's address reset (RSTR).
    let states: Vec<(&str, &str)> = flows
        .iter()
        .map(|l| {
            (
                l["conn_state"].as_str().unwrap(),
                l["history"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("RSTO", "ShAdDfR"), ("RSTR", "ShAdDFr")],
        "{flows:?}"
    );
    // Not listed under "failed", and no legend for a reset that is not there.
    let r = row(&table);
    assert!(r.contains(" ok ") && !r.contains("rst"), "{r}");
    assert!(!table.contains("reset mid-stream"), "{table}");
}

#[test]
fn the_same_rst_without_a_fin_is_still_a_cut() {
    let (entry, table, flows) = analyze(&[End::ForeignRstNoFin, End::Fins]);
    assert_eq!(entry["established"], 2, "{entry}");
    assert_eq!(entry["reset_midstream"], 1, "{entry}");
    assert_eq!(entry["verdict"], "cut", "{entry}");
    assert_eq!(flows[0]["conn_state"], "RSTR", "{flows:?}");
    assert_eq!(flows[1]["conn_state"], "SF", "{flows:?}");
    assert!(row(&table).contains("1 rst"), "{table}");
}
