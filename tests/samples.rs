//! The project's own captures (samples/, made by samples/make-samples.sh in network
//! namespaces with real servers, clients and a firewall): each `X.pcap` has `X.expect.jsonl`,
//! one line per TCP/UDP connection it must contain, derived from what the script did.
//! Connections are matched on (proto, orig address, resp address, resp port) as a multiset;
//! a line with `"many": true` and a list of ports stands for every connection to those ports
//! (a scanner's probes).

use crate::util::{flows_of, root};
use serde_json::Value;
use std::fs;

fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or(&Value::Null)
}

fn match_key(v: &Value) -> (String, String, String, u64) {
    (
        field(v, "proto").as_str().unwrap_or("").to_string(),
        field(v, "id.orig_h").as_str().unwrap_or("").to_string(),
        field(v, "id.resp_h").as_str().unwrap_or("").to_string(),
        field(v, "id.resp_p").as_u64().unwrap_or(0),
    )
}

/// Does connection `g` satisfy expectation `e`? Returns the first unmet point.
fn check(e: &Value, g: &Value) -> Result<(), String> {
    let want = field(e, "conn_state").as_str().unwrap_or("");
    let got = field(g, "conn_state").as_str().unwrap_or("");
    if want != got {
        return Err(format!("conn_state {got}, expected {want}"));
    }
    if let Some(h) = e.get("history").and_then(Value::as_str) {
        let got = field(g, "history").as_str().unwrap_or("");
        if h != got {
            return Err(format!("history {got}, expected {h}"));
        }
    }
    if let Some(icmp) = e.get("icmp") {
        let found = field(g, "icmp").as_array().is_some_and(|a| {
            a.iter()
                .any(|i| i["type"] == icmp["type"] && i["code"] == icmp["code"])
        });
        if !found {
            return Err(format!("no attached ICMP error {icmp}"));
        }
    }
    if let Some(side) = e.get("rst_from").and_then(Value::as_str) {
        let got = g["rst_by"]["side"].as_str().unwrap_or("none");
        if got != side {
            return Err(format!("first RST from {got}, expected {side}"));
        }
    }
    if let Some(n) = e.get("min_syn_retries").and_then(Value::as_u64) {
        let got = field(g, "syn_retries").as_u64().unwrap_or(0);
        if got < n {
            return Err(format!("syn_retries {got}, expected at least {n}"));
        }
    }
    for k in ["orig_pkts", "resp_pkts"] {
        if let Some(n) = e.get(k).and_then(Value::as_u64) {
            let got = field(g, k).as_u64().unwrap_or(0);
            if got != n {
                return Err(format!("{k} {got}, expected {n}"));
            }
        }
    }
    // The server's own TTL, where this connection carries the server's packets (a refused
    // attempt carries only the firewall's RST).
    let answered = field(g, "history").as_str().unwrap_or("").contains('h');
    if let Some(ttl) = e
        .get("server_ttl")
        .and_then(Value::as_u64)
        .filter(|_| answered)
    {
        let got = g["ttls"]["resp"].as_u64().unwrap_or(0);
        if got != ttl {
            return Err(format!("server TTL {got}, expected {ttl}"));
        }
    }
    if let Some(ttl) = e.get("rst_ttl").and_then(Value::as_u64) {
        let got = g["rst_by"]["ttl"].as_u64().unwrap_or(0);
        if got != ttl {
            return Err(format!("RST TTL {got}, expected {ttl}"));
        }
    }
    Ok(())
}

#[test]
fn every_sample_gives_its_expected_connections() {
    let dir = root().join("samples");
    let mut pcaps: Vec<_> = fs::read_dir(&dir)
        .expect("samples/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    pcaps.sort();
    let mut checked = 0;
    let mut failures = vec![];
    for pcap in &pcaps {
        let name = pcap.file_name().unwrap().to_string_lossy().to_string();
        let expect_path = pcap.with_extension("expect.jsonl");
        let Ok(text) = fs::read_to_string(&expect_path) else {
            continue;
        };
        let expected: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("expect line is JSON"))
            .collect();
        let (out, got) = flows_of(&[pcap.as_path()], &[]);
        assert!(out.status.success(), "{name}: exit {:?}", out.status);
        let mut got: Vec<Value> = got
            .into_iter()
            .filter(|g| matches!(g["proto"].as_str(), Some("tcp" | "udp")))
            .collect();
        for e in &expected {
            // A line for many connections (a scanner's probes): every listed port has at
            // least one connection, and all of them match.
            if e.get("many").and_then(Value::as_bool) == Some(true) {
                for port in e["id.resp_p"].as_array().cloned().unwrap_or_default() {
                    let mut one = e.clone();
                    one["id.resp_p"] = port.clone();
                    let k = match_key(&one);
                    let before = got.len();
                    let mut bad = None;
                    got.retain(|g| {
                        if match_key(g) != k {
                            return true;
                        }
                        if let Err(why) = check(&one, g) {
                            bad.get_or_insert(why);
                        }
                        false
                    });
                    if got.len() == before {
                        failures.push(format!("{name}: no connection {k:?} ({})", field(e, "why")));
                    } else if let Some(why) = bad {
                        failures.push(format!("{name}: {k:?}: {why} ({})", field(e, "why")));
                    }
                }
                continue;
            }
            let k = match_key(e);
            let candidates: Vec<usize> = got
                .iter()
                .enumerate()
                .filter(|(_, g)| match_key(g) == k)
                .map(|(i, _)| i)
                .collect();
            if candidates.is_empty() {
                failures.push(format!("{name}: no connection {k:?} ({})", field(e, "why")));
                continue;
            }
            match candidates.iter().find(|&&i| check(e, &got[i]).is_ok()) {
                Some(&i) => {
                    got.remove(i);
                }
                None => {
                    let why = check(e, &got[candidates[0]]).unwrap_err();
                    failures.push(format!("{name}: {k:?}: {why} ({})", field(e, "why")));
                    got.remove(candidates[0]);
                }
            }
        }
        for g in &got {
            // The UDP flow that carries a VXLAN or Geneve mirror feed is a connection of its own
            // (Zeek logs it too); the expect lines list the mirrored connections inside it.
            let (proto, _, _, port) = match_key(g);
            if name.starts_with("mirror-") && proto == "udp" && (port == 4789 || port == 6081) {
                continue;
            }
            failures.push(format!(
                "{name}: unexpected connection {:?} {}",
                match_key(g),
                g["conn_state"]
            ));
        }
        checked += 1;
    }
    println!("samples: {checked} captures checked");
    assert!(
        checked >= 5,
        "expected at least 5 samples with expectations, found {checked}"
    );
    assert!(
        failures.is_empty(),
        "sample mismatches:\n{}",
        failures.join("\n")
    );
}
