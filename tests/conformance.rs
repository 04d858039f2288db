//! Conformance with Zeek: every capture in ../shared/captures that has Zeek's conn.log
//! answer (`expected/<file>.conn.json`) is analysed by the binary, and `conn_state` and
//! `history` are compared connection by connection (matching rules: captures/README.md).

use crate::util::{flows_of, shared_captures};
use serde_json::Value;
use std::fs;

struct Tally {
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
        state_total: 0,
        state_ok: 0,
        hist_total: 0,
        hist_ok: 0,
        disagreements: vec![],
    };
    let mut files = 0;
    let mut names: Vec<_> = fs::read_dir(dir.join("expected"))
        .expect("expected/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".conn.json"))
        .collect();
    names.sort();
    for name in names {
        let capture = name.trim_end_matches(".conn.json");
        let path = ["zeek", "tcpdump"]
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
            .filter(|g| matches!(g["proto"].as_str(), Some("tcp" | "udp")))
            .collect();
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
        } else {
            // Baselines with only history/conn_state: compare in time order.
            got.sort_by(|a, b| ts(a).total_cmp(&ts(b)));
            for (i, e) in expected.iter().enumerate() {
                compare(capture, e, got.get(i), &mut t, "(matched by order)");
            }
        }
    }
    let sp = 100.0 * t.state_ok as f64 / t.state_total.max(1) as f64;
    let hp = 100.0 * t.hist_ok as f64 / t.hist_total.max(1) as f64;
    println!(
        "zeek conformance: {files} captures; conn_state {}/{} ({sp:.1}%), history {}/{} ({hp:.1}%)",
        t.state_ok, t.state_total, t.hist_ok, t.hist_total
    );
    for d in &t.disagreements {
        println!("  disagreement: {d}");
    }
    assert!(files >= 20, "expected the Zeek captures, found {files}");
    assert!(sp >= 98.0, "conn_state agreement {sp:.1}% < 98%");
    assert!(hp >= 95.0, "history agreement {hp:.1}% < 95%");
}
