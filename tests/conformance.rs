//! Conformance with Zeek: every capture in ../shared/captures that has Zeek's conn.log
//! answer (`expected/<file>.conn.json`) is analysed by the binary, and `conn_state` and
//! `history` are compared connection by connection (matching rules: captures/README.md).

use crate::util::{flows_of, shared_captures};
use serde_json::Value;
use std::fs;

/// The folders of ../shared/captures whose captures have answers in `expected/`.
const CAPTURE_DIRS: [&str; 3] = ["zeek", "tcpdump", "tunnels"];

/// The captures in `tunnels/`, each with a ": " after it (as disagreements begin).
fn tunnel_capture_names(dir: &std::path::Path) -> Vec<String> {
    fs::read_dir(dir.join("tunnels"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| format!("{}: ", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

struct Tally {
    /// Connections whose packet and byte counts (orig/resp pkts, ip_bytes, bytes) all agree.
    counts_total: usize,
    counts_ok: usize,
    state_total: usize,
    state_ok: usize,
    hist_total: usize,
    hist_ok: usize,
    disagreements: Vec<String>,
}

fn key(v: &Value) -> Option<(String, String, u64, String, u64)> {
    Some((
        v.get("proto")?.as_str()?.to_string(),
        v.get("id.orig_h")?.as_str()?.to_string(),
        v.get("id.orig_p")?.as_u64()?,
        v.get("id.resp_h")?.as_str()?.to_string(),
        v.get("id.resp_p")?.as_u64()?,
    ))
}

fn ts(v: &Value) -> f64 {
    v.get("ts").and_then(Value::as_f64).unwrap_or(0.0)
}

fn compare(file: &str, exp: &Value, got: Option<&Value>, t: &mut Tally, note: &str) {
    let s_exp = exp.get("conn_state").and_then(Value::as_str);
    let h_exp = exp.get("history").and_then(Value::as_str);
    let s_got = got
        .and_then(|g| g.get("conn_state"))
        .and_then(Value::as_str);
    let h_got = got.and_then(|g| g.get("history")).and_then(Value::as_str);
    let id = key(exp)
        .map(|k| format!("{} {}:{} > {}:{}", k.0, k.1, k.2, k.3, k.4))
        .unwrap_or_else(|| "(no id)".into());
    if let Some(s) = s_exp {
        t.state_total += 1;
        if Some(s) == s_got {
            t.state_ok += 1;
        } else {
            t.disagreements.push(format!(
                "{file}: {id}: conn_state zeek {s} exflow {s_got:?} {note}"
            ));
        }
    }
    const COUNTS: [&str; 6] = [
        "orig_pkts",
        "resp_pkts",
        "orig_ip_bytes",
        "resp_ip_bytes",
        "orig_bytes",
        "resp_bytes",
    ];
    if exp.get("orig_pkts").is_some_and(|v| !v.is_null()) {
        t.counts_total += 1;
        let differ: Vec<String> = COUNTS
            .iter()
            .filter(|k| exp.get(**k).is_some_and(|v| !v.is_null()))
            .filter(|k| got.and_then(|g| g.get(**k)) != exp.get(**k))
            .map(|k| {
                format!(
                    "{k} zeek {} exflow {}",
                    exp[*k],
                    got.map_or(&Value::Null, |g| &g[*k])
                )
            })
            .collect();
        if differ.is_empty() {
            t.counts_ok += 1;
        } else {
            t.disagreements
                .push(format!("{file}: {id}: counts: {}", differ.join(", ")));
        }
    }
    if let Some(h) = h_exp {
        t.hist_total += 1;
        if Some(h) == h_got {
            t.hist_ok += 1;
        } else {
            t.disagreements.push(format!(
                "{file}: {id}: history zeek {h} exflow {h_got:?} {note}"
            ));
        }
    }
}

#[test]
fn conn_state_and_history_agree_with_zeek() {
    let Some(dir) = shared_captures("conn_state_and_history_agree_with_zeek") else {
        return;
    };
    let mut t = Tally {
        counts_total: 0,
        counts_ok: 0,
        state_total: 0,
        state_ok: 0,
        hist_total: 0,
        hist_ok: 0,
        disagreements: vec![],
    };
    let mut files = 0;
    let mut per_capture = vec![];
    let mut names: Vec<_> = fs::read_dir(dir.join("expected"))
        .expect("expected/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".conn.json"))
        .collect();
    names.sort();
    for name in names {
        let capture = name.trim_end_matches(".conn.json");
        let path = CAPTURE_DIRS
            .iter()
            .map(|d| dir.join(d).join(capture))
            .find(|p| p.exists());
        let Some(path) = path else {
            continue;
        };
        files += 1;
        let expected: Vec<Value> =
            serde_json::from_str(&fs::read_to_string(dir.join("expected").join(&name)).unwrap())
                .unwrap();
        let (out, got) = flows_of(&[&path], &[]);
        assert!(
            out.status.success(),
            "{capture}: exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut got: Vec<Value> = got
            .into_iter()
            .filter(|g| matches!(g["proto"].as_str(), Some("tcp" | "udp" | "icmp")))
            .collect();
        let before = t.disagreements.len();
        // Zeek's connections, and exflow's that Zeek does not have.
        let mut conns = expected.len();
        if expected.iter().all(|e| key(e).is_some()) {
            for e in &expected {
                let k = key(e).unwrap();
                // Same tuple, nearest start time where it repeats.
                let pos = got
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| key(g).as_ref() == Some(&k))
                    .min_by(|a, b| {
                        let da = (ts(a.1) - ts(e)).abs();
                        let db = (ts(b.1) - ts(e)).abs();
                        da.total_cmp(&db)
                    })
                    .map(|(i, _)| i);
                match pos {
                    Some(i) => {
                        let g = got.remove(i);
                        compare(capture, e, Some(&g), &mut t, "");
                    }
                    None => {
                        let swapped = (k.0.clone(), k.3.clone(), k.4, k.1.clone(), k.2);
                        let flipped = got.iter().any(|g| key(g) == Some(swapped.clone()));
                        let note = if flipped {
                            "(direction disagrees: exflow has originator and responder swapped)"
                        } else {
                            "(connection missing)"
                        };
                        compare(capture, e, None, &mut t, note);
                    }
                }
            }
            // Connections Zeek did not log: each is a disagreement on both counts.
            conns += got.len();
            for g in &got {
                t.state_total += 1;
                t.hist_total += 1;
                t.disagreements.push(format!(
                    "{capture}: {:?}: exflow has a connection Zeek does not ({} {})",
                    key(g),
                    g["conn_state"],
                    g["history"]
                ));
            }
        } else {
            // Baselines with only history/conn_state (all TCP captures): compare the TCP
            // connections in time order; where the baseline names a service (smtp.pcap
            // lists only its SMTP connections), only connections to that service's port.
            got.retain(|g| g["proto"] == "tcp");
            got.sort_by(|a, b| ts(a).total_cmp(&ts(b)));
            for e in &expected {
                let port = match e.get("service").and_then(Value::as_str) {
                    Some("smtp") => Some(25),
                    Some("http") => Some(80),
                    Some("ssl") => Some(443),
                    _ => None,
                };
                let pos = got
                    .iter()
                    .position(|g| port.is_none() || g["id.resp_p"].as_u64() == port);
                let g = pos.map(|i| got.remove(i));
                compare(capture, e, g.as_ref(), &mut t, "(matched by order)");
            }
        }
        // Connections with a disagreement of any kind: each line starts "capture: connection: ".
        let bad: std::collections::HashSet<Vec<&str>> = t.disagreements[before..]
            .iter()
            .map(|d| d.splitn(3, ": ").take(2).collect())
            .collect();
        per_capture.push(format!(
            "{capture}: {}/{conns} connections agree",
            conns.saturating_sub(bad.len())
        ));
    }
    let sp = 100.0 * t.state_ok as f64 / t.state_total.max(1) as f64;
    let hp = 100.0 * t.hist_ok as f64 / t.hist_total.max(1) as f64;
    let cp = 100.0 * t.counts_ok as f64 / t.counts_total.max(1) as f64;
    println!(
        "zeek conformance: {files} captures; conn_state {}/{} ({sp:.1}%), history {}/{} ({hp:.1}%), packet and byte counts {}/{} ({cp:.1}%)",
        t.state_ok, t.state_total, t.hist_ok, t.hist_total, t.counts_ok, t.counts_total
    );
    for c in &per_capture {
        println!("  {c}");
    }
    for d in &t.disagreements {
        println!("  disagreement: {d}");
    }
    assert!(files >= 20, "expected the Zeek captures, found {files}");
    // The tunnel captures agree in full.
    let tunnelled: Vec<&String> = t
        .disagreements
        .iter()
        .filter(|d| tunnel_capture_names(&dir).iter().any(|n| d.starts_with(n)))
        .collect();
    assert!(
        tunnelled.is_empty(),
        "tunnel captures disagree: {tunnelled:?}"
    );
    assert!(sp >= 98.0, "conn_state agreement {sp:.1}% < 98%");
    assert!(hp >= 95.0, "history agreement {hp:.1}% < 95%");
}

/// tshark's view of every TCP/UDP stream (expected/<file>.tshark.json) as a second opinion,
/// for the captures Zeek has no answer for too: the packets each stream carried, in total
/// (tshark may merge a re-used 5-tuple into one stream that Zeek and exflow split, so the
/// connections of one 5-tuple are summed, with the ICMP errors that quote them).
#[test]
fn packet_counts_agree_with_tshark() {
    let Some(dir) = shared_captures("packet_counts_agree_with_tshark") else {
        return;
    };
    let mut names: Vec<_> = fs::read_dir(dir.join("expected"))
        .expect("expected/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tshark.json"))
        .collect();
    names.sort();
    let (mut total, mut ok, mut files) = (0, 0, 0);
    let mut bad = vec![];
    for name in names {
        let capture = name.trim_end_matches(".tshark.json");
        let Some(path) = CAPTURE_DIRS
            .iter()
            .map(|d| dir.join(d).join(capture))
            .find(|p| p.exists())
        else {
            continue;
        };
        files += 1;
        let streams: Vec<Value> =
            serde_json::from_str(&fs::read_to_string(dir.join("expected").join(&name)).unwrap())
                .unwrap();
        let (out, got) = flows_of(&[&path], &[]);
        assert!(out.status.success(), "{capture}");
        for st in &streams {
            let ends = |h: &str, p: &str| {
                (
                    st[h].as_str().unwrap_or("").to_string(),
                    st[p].as_u64().unwrap_or(0),
                )
            };
            let (a, b) = (ends("orig_h", "orig_p"), ends("resp_h", "resp_p"));
            let proto = st["proto"].as_str().unwrap_or("");
            let want =
                st["orig_pkts"].as_u64().unwrap_or(0) + st["resp_pkts"].as_u64().unwrap_or(0);
            let ends_of = |g: &Value| {
                (
                    (
                        g["id.orig_h"].as_str().unwrap_or("").to_string(),
                        g["id.orig_p"].as_u64().unwrap_or(0),
                    ),
                    (
                        g["id.resp_h"].as_str().unwrap_or("").to_string(),
                        g["id.resp_p"].as_u64().unwrap_or(0),
                    ),
                )
            };
            let same = |g: &&Value| {
                let (o, r) = ends_of(g);
                (o == a && r == b) || (o == b && r == a)
            };
            // tshark's fields for a VXLAN or Geneve frame hold the innermost IP addresses
            // with the outer UDP ports (the last `ip.src`, the only `udp.srcport`): where no
            // connection has the stream's addresses, a tunnel capture's stream is the one
            // connection with its ports (the outer UDP flow that carried the tunnel).
            let by_ports = |g: &&Value| {
                let (o, r) = ends_of(g);
                (o.1 == a.1 && r.1 == b.1) || (o.1 == b.1 && r.1 == a.1)
            };
            let of_proto = || got.iter().filter(|g| g["proto"] == proto);
            let tunnel_capture = path.parent().is_some_and(|p| p.ends_with("tunnels"));
            let matched: Vec<&Value> = match of_proto().filter(same).collect::<Vec<_>>() {
                m if m.is_empty() && tunnel_capture && of_proto().filter(by_ports).count() == 1 => {
                    of_proto().filter(by_ports).collect()
                }
                m => m,
            };
            let have: u64 = matched
                .iter()
                // tshark counts ICMP errors quoting the stream's packets into the stream.
                .map(|g| {
                    ["orig_pkts", "resp_pkts", "icmp_count"]
                        .iter()
                        .map(|k| g[*k].as_u64().unwrap_or(0))
                        .sum::<u64>()
                })
                .sum();
            total += 1;
            if have == want {
                ok += 1;
            } else {
                bad.push(format!(
                    "{capture}: {proto} {a:?} {b:?}: tshark {want} packets, exflow {have}"
                ));
            }
        }
    }
    let pct = 100.0 * ok as f64 / total.max(1) as f64;
    println!("tshark packet counts: {files} captures, {ok}/{total} streams agree ({pct:.1}%)");
    for b in &bad {
        println!("  disagreement: {b}");
    }
    assert!(files >= 30, "expected the tshark answers, found {files}");
    let tunnelled: Vec<&String> = bad
        .iter()
        .filter(|d| tunnel_capture_names(&dir).iter().any(|n| d.starts_with(n)))
        .collect();
    assert!(
        tunnelled.is_empty(),
        "tunnel captures disagree: {tunnelled:?}"
    );
    assert!(pct >= 95.0, "packet counts agree on {pct:.1}% of streams");
}

/// Every third-party capture goes through the binary without an input error or warning.
#[test]
fn every_shared_capture_analyses_cleanly() {
    let Some(dir) = shared_captures("every_shared_capture_analyses_cleanly") else {
        return;
    };
    let mut n = 0;
    for sub in ["zeek", "tcpdump", "tunnels", "pcapng-generator"] {
        let mut files: Vec<_> = fs::read_dir(dir.join(sub))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let o = crate::util::exflow(&["analyze", f.to_str().unwrap()]);
            let mut err = String::from_utf8_lossy(&o.stderr).into_owned();
            // Captures stitched from traces taken years apart (Zeek's modbus, smtp and ssh
            // half-duplex tests) or with times stepping back weeks (tcpdump's kday4): their
            // clock jumps are real, and told (issue 18).
            let jumps = [
                (
                    "zeek/modbus_modbus-and-non-modbus-p502.pcap",
                    "1 forward, 0 back",
                ),
                ("zeek/smtp.pcap", "1 forward, 0 back"),
                (
                    "zeek/ssh_ssh.client-side-half-duplex.pcap",
                    "1 forward, 0 back",
                ),
                (
                    "zeek/ssh_ssh.server-side-half-duplex.pcap",
                    "1 forward, 0 back",
                ),
                ("tcpdump/kday4.pcap", "0 forward, 2 back"),
            ];
            if let Some((_, counts)) = jumps.iter().find(|(name, _)| f.ends_with(name)) {
                assert!(
                    err.starts_with("exflow: warning: the capture clock jumped")
                        && err.contains(counts)
                        && err.lines().count() == 1,
                    "{}: {err}",
                    f.display()
                );
                err.clear();
            }
            assert!(
                o.status.success() && err.is_empty(),
                "{}: {:?} {err}",
                f.display(),
                o.status
            );
            n += 1;
        }
    }
    println!("{n} shared captures analysed without error");
    assert!(n >= 40);
}

/// The JSON report of each tunnel capture counts the tunnel headers opened, by kind.
#[test]
fn tunnel_captures_report_their_tunnels() {
    let Some(dir) = shared_captures("tunnel_captures_report_their_tunnels") else {
        return;
    };
    for (capture, kind, n) in [
        ("erspanII.pcap", "erspan_ii", 4),
        ("tunnels_geneve.pcap", "geneve", 6),
        ("tunnels_gre-sample.pcap", "gre", 40),
        ("tunnels_vxlan.pcap", "vxlan", 10),
    ] {
        let path = dir.join("tunnels").join(capture);
        let o = crate::util::exflow(&["analyze", path.to_str().unwrap(), "--format", "json"]);
        assert!(o.status.success(), "{capture}");
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        let tunnels = &report["capture"]["tunnels"];
        assert_eq!(tunnels, &serde_json::json!({ kind: n }), "{capture}");
    }
}
