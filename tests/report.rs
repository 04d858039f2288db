//! The verdict report on the samples: for every `samples/X.expect-report.json`, the JSON
//! report of `X.pcap` with its site file `X.site.toml` gives exactly the expected verdicts and
//! unexpected list; without the site file, the inferred topology gives the same verdicts.

use crate::util::{exflow, root, stderr};
use serde_json::Value;
use std::fs;
use std::path::Path;

fn report(pcap: &Path, site: Option<&Path>) -> Value {
    let mut args = vec!["analyze", pcap.to_str().unwrap(), "--format", "json"];
    if let Some(s) = site {
        args.push("--site");
        args.push(s.to_str().unwrap());
    }
    let o = exflow(&args);
    assert!(o.status.success(), "{}: {}", pcap.display(), stderr(&o));
    serde_json::from_slice(&o.stdout).expect("JSON report")
}

/// (role, src zone, src address, dst address) of an expected entry.
fn entry_key(e: &Value) -> (String, String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    (
        s(&e["role"]),
        s(&e["src"]["zone"]),
        s(&e["src"]["address"]),
        s(&e["dst"]["address"]),
    )
}

/// An expectation matches an entry on role, destination address, and the source's zone and
/// address where the expectation gives them.
fn matches(exp: &Value, e: &Value) -> bool {
    let (role, zone, addr, dst) = entry_key(e);
    exp["role"].as_str() == Some(role.as_str())
        && exp["dst"]["address"].as_str().unwrap_or("") == dst
        && exp["src"]["zone"].as_str().is_none_or(|z| z == zone)
        && exp["src"]["address"].as_str().unwrap_or("") == addr
}

/// Without the site file exflow cannot know the address behind a NAT address: an
/// expectation with `via` also matches the entry under that public address.
fn matches_inferred(exp: &Value, e: &Value) -> bool {
    if matches(exp, e) {
        return true;
    }
    let mut public = exp.clone();
    for side in ["src", "dst"] {
        if let Some(v) = exp[side]["via"].as_str() {
            public[side]["address"] = Value::from(v);
        }
    }
    public != *exp && matches(&public, e)
}

/// The expected row's role is off unless a site file switches it on.
fn disabled_by_default(x: &Value) -> bool {
    use exflow::classify::catalogue::{Catalogue, DefaultState};
    let cat = Catalogue::embedded().expect("the embedded catalogue");
    x["role"]
        .as_str()
        .and_then(|r| cat.role(r))
        .is_some_and(|r| r.default == DefaultState::Disabled)
}

fn check_expected(
    name: &str,
    exp: &Value,
    rep: &Value,
    problems: &mut Vec<String>,
    with_site: bool,
) {
    let entries = rep["expected"].as_array().cloned().unwrap_or_default();
    let listed = exp["expected"].as_array().cloned().unwrap_or_default();
    for x in &listed {
        if !with_site && disabled_by_default(x) {
            // Without the site file the catalogue's defaults hold: a service the site file
            // switched on (IMAP4, POP3) is off, its traffic an unexpected disabled-service
            // flow, not this row (mail-starttls).
            let role = x["role"].as_str().unwrap_or_default();
            let shown = rep["unexpected"].as_array().is_some_and(|u| {
                u.iter().any(|e| {
                    e["reason"] == "disabled-service"
                        && e["role"] == role
                        && e["dst"]["address"] == x["dst"]["address"]
                })
            });
            if !shown && x["verdict"] != "not_seen" {
                problems.push(format!(
                    "{name}: {role} (disabled by default) not an unexpected disabled-service flow"
                ));
            }
            continue;
        }
        let found = if with_site {
            entries.iter().find(|e| matches(x, e))
        } else {
            entries.iter().find(|e| matches_inferred(x, e))
        };
        match found {
            None => problems.push(format!("{name}: no expected flow {x}")),
            Some(e) if e["verdict"] != x["verdict"] => problems.push(format!(
                "{name}: {}: verdict {} expected {} ({})",
                x["role"], e["verdict"], x["verdict"], e["detail"]
            )),
            Some(_) => {}
        }
    }
    if with_site {
        for e in &entries {
            if e["verdict"] != "not_seen" && !listed.iter().any(|x| matches(x, e)) {
                problems.push(format!(
                    "{name}: unlisted flow {:?} has verdict {} ({})",
                    entry_key(e),
                    e["verdict"],
                    e["detail"]
                ));
            }
        }
    }
}

/// Where each failed flow died: as `X.expect-died-at.json` says for a capture on the
/// firewall's interfaces (the value, and the two interfaces named in the sentence); null and
/// "cannot tell" for every failed flow of a capture from one vantage point.
fn check_died_at(name: &str, dir: &Path, rep: &Value, problems: &mut Vec<String>) {
    let entries = rep["expected"].as_array().cloned().unwrap_or_default();
    let truth = dir.join(format!("{name}.expect-died-at.json"));
    if !truth.exists() {
        for e in entries.iter().filter(|e| is_failed(e)) {
            let detail = e["detail"].as_str().unwrap_or("");
            if !e["died_at"].is_null() || !detail.contains("cannot tell") {
                problems.push(format!(
                    "{name}: one vantage point, yet died_at {} ({detail})",
                    e["died_at"]
                ));
            }
        }
        return;
    }
    let want: Value = serde_json::from_str(&fs::read_to_string(&truth).unwrap()).unwrap();
    for x in want.as_array().unwrap() {
        let Some(e) = entries.iter().find(|e| matches(x, e)) else {
            problems.push(format!("{name}: no expected flow for died_at {x}"));
            continue;
        };
        let detail = e["detail"].as_str().unwrap_or("");
        if e["died_at"] != x["died_at"] {
            problems.push(format!(
                "{name}: {}: died_at {} expected {} ({detail})",
                x["role"], e["died_at"], x["died_at"]
            ));
        }
        for leg in ["in", "out"] {
            let iface = x["legs"][leg].as_str().unwrap_or("");
            if !detail.contains(iface) {
                problems.push(format!(
                    "{name}: {}: the sentence does not name {iface}: {detail}",
                    x["role"]
                ));
            }
        }
    }
    for e in entries.iter().filter(|e| is_failed(e)) {
        if !want.as_array().unwrap().iter().any(|x| matches(x, e)) {
            problems.push(format!(
                "{name}: failed flow {:?} has no died_at truth",
                entry_key(e)
            ));
        }
    }
}

/// An expected report that names `exchange_servers` / `not_exchange` (the outage captures):
/// the inferred topology has each of the first as an Exchange host and none of the second.
fn check_inferred_hosts(name: &str, exp: &Value, rep: &Value, problems: &mut Vec<String>) {
    let hosts = rep["topology"]["hosts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let exchange = |a: &str| {
        hosts
            .iter()
            .any(|h| h["address"] == a && matches!(h["role"].as_str(), Some("mailbox" | "edge")))
    };
    for a in exp["exchange_servers"].as_array().into_iter().flatten() {
        let a = a.as_str().unwrap_or("");
        if !exchange(a) {
            problems.push(format!("{name}: {a} not inferred as an Exchange server"));
        }
    }
    for a in exp["not_exchange"].as_array().into_iter().flatten() {
        let a = a.as_str().unwrap_or("");
        if exchange(a) {
            problems.push(format!("{name}: {a} taken for an Exchange server"));
        }
    }
}

fn is_failed(e: &Value) -> bool {
    matches!(
        e["verdict"].as_str(),
        Some("blocked" | "refused" | "rejected" | "flaky" | "cut")
    )
}

fn unexpected_set(v: &Value, from_report: bool) -> Vec<(String, u64, String, String)> {
    let mut out: Vec<_> = v["unexpected"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let dst = if from_report {
                &u["dst"]["address"]
            } else {
                &u["dst"]
            };
            (
                u["proto"].as_str().unwrap_or("").to_string(),
                u["port"].as_u64().unwrap_or(0),
                dst.as_str().unwrap_or("").to_string(),
                u["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_sample_report_gives_its_expected_verdicts() {
    let dir = root().join("samples");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".expect-report.json"))
        .map(|n| n.trim_end_matches(".expect-report.json").to_string())
        .collect();
    names.sort();
    // The two-interface dumpcap captures (`X.fw2.pcapng`, as dumpcap wrote them: not in time
    // order) are checked like the rest, and where each failed flow died.

    let mut problems = vec![];
    for name in &names {
        let pcap = ["pcap", "pcapng"]
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .find(|p| p.exists())
            .unwrap();
        let site = dir.join(format!("{name}.site.toml"));
        let exp: Value = serde_json::from_str(
            &fs::read_to_string(dir.join(format!("{name}.expect-report.json"))).unwrap(),
        )
        .unwrap();
        // A capture shipped without a site file (an outage capture) is judged by inference
        // alone, as strictly as the others with theirs.
        let site = site.exists().then_some(site);
        let rep = report(&pcap, site.as_deref());
        check_expected(name, &exp, &rep, &mut problems, true);
        check_inferred_hosts(name, &exp, &rep, &mut problems);
        check_died_at(name, &dir, &rep, &mut problems);
        let (want, got) = (unexpected_set(&exp, false), unexpected_set(&rep, true));
        if want != got {
            problems.push(format!(
                "{name}: unexpected list {got:?}, expected {want:?}"
            ));
        }
        let scans: Vec<&str> = rep["scans"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["source"].as_str())
            .collect();
        let want_scans: Vec<&str> = exp["scans"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["source"].as_str()).collect())
            .unwrap_or_default();
        if scans != want_scans {
            problems.push(format!("{name}: scans {scans:?}, expected {want_scans:?}"));
        }
        let dups = rep["capture"]["duplicate_packets"].as_u64().unwrap_or(0) > 0;
        if dups != exp["duplicates"].as_bool().unwrap_or(false) {
            problems.push(format!(
                "{name}: duplicate packets {}",
                rep["capture"]["duplicate_packets"]
            ));
        }
        if site.is_none() {
            continue;
        }
        // Without the site file: the same verdicts, and the report says it inferred them.
        let inferred = report(&pcap, None);
        if inferred["topology"]["inferred"] != true
            || inferred["topology"]["reasons"]
                .as_array()
                .is_none_or(|r| r.is_empty())
        {
            problems.push(format!(
                "{name}: the inferred report does not say what it inferred"
            ));
        }
        check_expected(
            &format!("{name} (inferred)"),
            &exp,
            &inferred,
            &mut problems,
            false,
        );
    }
    println!("report samples: {} checked", names.len());
    assert!(
        names.len() >= 5,
        "expected at least 5 samples with reports, found {}",
        names.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn json_report_has_schema_1_fields() {
    let pcap = root().join("samples/syn-dropped.pcap");
    let rep = report(&pcap, None);
    assert_eq!(rep["schema_version"], 1);
    for k in [
        "tool",
        "capture",
        "topology",
        "expected",
        "unexpected",
        "unsupported_restrictions",
    ] {
        assert!(rep.get(k).is_some(), "missing {k}");
    }
    for k in [
        "files",
        "packets",
        "bytes",
        "first_ts",
        "last_ts",
        "link_types",
        "anomalies",
        "evicted_flows",
        "kernel_drops",
    ] {
        assert!(rep["capture"].get(k).is_some(), "missing capture.{k}");
    }
    let e = &rep["expected"][0];
    for k in [
        "role",
        "purpose",
        "proto",
        "port",
        "src",
        "dst",
        "attempts",
        "established",
        "dropped",
        "refused",
        "rejected",
        "reset_midstream",
        "syn_retries",
        "handshake_ms",
        "verdict",
        "detail",
    ] {
        assert!(e.get(k).is_some(), "missing expected.{k}");
    }
    let blocked = rep["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "smtp-inbound")
        .unwrap();
    assert_eq!(blocked["verdict"], "blocked");
    assert!(blocked["handshake_ms"].is_null());
    assert!(blocked["src"]["address"].is_null() && blocked["dst"]["address"] == "198.51.100.10");
}

#[test]
fn fail_on_sets_exit_1() {
    let pcap = root().join("samples/syn-dropped.pcap");
    let p = pcap.to_str().unwrap();
    let o = exflow(&["analyze", p, "--format", "json", "--fail-on", "blocked"]);
    assert_eq!(o.status.code(), Some(1));
    let o = exflow(&[
        "analyze",
        p,
        "--format",
        "json",
        "--fail-on",
        "refused,unexpected",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = exflow(&["analyze", p, "--format", "json", "--fail-on", "failed"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_capture_without_exchange_says_so() {
    let Some(dir) = crate::util::shared_captures("a_capture_without_exchange_says_so") else {
        return;
    };
    let rep = report(&dir.join("zeek/q-in-q.pcap"), None);
    assert!(rep["expected"].as_array().unwrap().is_empty());
    let w = rep["warnings"].to_string();
    assert!(w.contains("No Exchange server"), "{w}");
}

/// `exflow init --from CAPTURE` writes the inferred site as a site file that parses, names
/// what it inferred and why, and gives, read back with `--site`, the verdicts the inferred
/// topology gave.
#[test]
fn init_from_a_capture_writes_the_inferred_site() {
    let dir = root().join("samples");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    let verdicts = |rep: &Value| {
        let mut v: Vec<(String, String, String, String)> = rep["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let s = |x: &Value| x.as_str().unwrap_or("").to_string();
                (
                    s(&e["role"]),
                    s(&e["src"]["address"]),
                    s(&e["dst"]["address"]),
                    s(&e["verdict"]),
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut problems = vec![];
    for name in &names {
        let pcap = dir.join(name);
        let o = exflow(&["init", "--from", pcap.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(
            text.contains("What exflow inferred, and why:"),
            "{name}:\n{text}"
        );
        let site = crate::util::tmp_path("init-site.toml");
        fs::write(&site, &text).unwrap();
        let with_file = report(&pcap, Some(&site));
        let _ = fs::remove_file(&site);
        let inferred = report(&pcap, None);
        if verdicts(&with_file) != verdicts(&inferred) {
            problems.push(format!(
                "{name}: with the init site file {:?}\n  inferred {:?}",
                verdicts(&with_file),
                verdicts(&inferred)
            ));
        }
    }
    assert!(names.len() >= 20, "{} samples", names.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
