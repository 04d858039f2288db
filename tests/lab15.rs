//! Issue 15's lab samples (samples/make-samples.sh: esmtp-inspection, smtp-refusals,
//! idle-timeout-drop, idle-timeout-reset, tls-by-name, payload-healthy, tls-handshake-failed,
//! mail-starttls).
//! Each capture reads
//! without an anomaly, its port-level verdicts are the expected report's (`report.rs` checks
//! them for every sample; here the healthy one must be all ok with nothing unexpected), its
//! truth files (`X.expect-findings.json`, `X.expect-services.json`) are well formed and agree
//! with the capture's expect lines, and, through the binary, exflow reports every finding of
//! the truth (kind, port, sides, by, count, and code, command, text, sni, alert and passing
//! names where the truth gives them) and no finding the truth does not list. Every finding kind
//! has a lab sample whose truth lists it without `optional`.

use crate::util::{exflow, json_report, root, stderr};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;

const SAMPLES: &[&str] = &[
    "esmtp-inspection",
    "smtp-refusals",
    "idle-timeout-drop",
    "idle-timeout-reset",
    "tls-by-name",
    "payload-healthy",
    "tls-handshake-failed",
    "mail-starttls",
];
/// Where no finding may appear.
const HEALTHY: &[&str] = &["payload-healthy"];
/// PRODUCT.md's finding kinds.
const KINDS: &[&str] = &[
    "smtp_banner_masked",
    "starttls_stripped",
    "smtp_commands_masked",
    "smtp_rejected",
    "tls_handshake_failed",
    "tls_blocked_by_name",
    "idle_timeout_kill",
];
/// PRODUCT.md's service names.
const SERVICES: &[&str] = &[
    "autodiscover",
    "owa",
    "ecp",
    "ews",
    "mapi",
    "activesync",
    "rpc",
    "oab",
    "powershell",
    "other",
];

fn json(path: &str) -> Value {
    let p = root().join(path);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn expect_lines(name: &str) -> Vec<Value> {
    let p = root().join(format!("samples/{name}.expect.jsonl"));
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("expect line is JSON"))
        .collect()
}

/// The JSON report of `samples/<capture>` with `samples/<site>`.
fn sample_report(capture: &str, site: &str) -> Value {
    let site = root().join("samples").join(site);
    json_report(&root().join("samples").join(capture), Some(site.as_path()))
}

fn report(name: &str) -> Value {
    sample_report(&format!("{name}.pcap"), &format!("{name}.site.toml"))
}

#[test]
fn payload_samples_read_without_anomalies() {
    let mut problems = vec![];
    for name in SAMPLES {
        let rep = report(name);
        let anomalies = rep["capture"]["anomalies"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let counted: Vec<_> = anomalies
            .iter()
            .filter(|(_, n)| n.as_u64().unwrap_or(1) > 0)
            .collect();
        if !counted.is_empty() {
            problems.push(format!("{name}: anomalies {counted:?}"));
        }
        let packets = rep["capture"]["packets"].as_u64().unwrap_or(0);
        if packets == 0 {
            problems.push(format!("{name}: no packets"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_healthy_payload_sample_is_all_ok() {
    for name in HEALTHY {
        let rep = report(name);
        let seen: Vec<&Value> = rep["expected"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["verdict"] != "not_seen")
            .collect();
        let mut roles: Vec<&str> = seen.iter().filter_map(|e| e["role"].as_str()).collect();
        roles.sort();
        assert_eq!(
            roles,
            [
                "http-client",
                "https-client",
                "smtp-inbound",
                "smtp-submission"
            ],
            "{name}"
        );
        for e in &seen {
            assert_eq!(e["verdict"], "ok", "{name}: {}", e["detail"]);
        }
        assert_eq!(rep["unexpected"], serde_json::json!([]), "{name}");
        let truth = json(&format!("samples/{name}.expect-findings.json"));
        assert_eq!(
            truth,
            serde_json::json!([]),
            "{name}: a healthy sample with findings"
        );
    }
}

/// Connections of the expect lines per (destination address, port).
fn connections(name: &str) -> BTreeMap<(String, u64), usize> {
    let mut m = BTreeMap::new();
    for e in expect_lines(name) {
        let key = (
            e["id.resp_h"].as_str().unwrap_or("").to_string(),
            e["id.resp_p"].as_u64().unwrap_or(0),
        );
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

fn check_finding(name: &str, f: &Value, conns: &BTreeMap<(String, u64), usize>) -> Vec<String> {
    let mut p = vec![];
    let kind = f["kind"].as_str().unwrap_or("");
    if !KINDS.contains(&kind) {
        p.push(format!("{name}: unknown kind {kind:?}"));
    }
    if f["proto"] != "tcp" {
        p.push(format!("{name}: {kind}: proto {}", f["proto"]));
    }
    if !matches!(
        f["by"].as_str(),
        Some("firewall" | "server" | "client" | "unknown")
    ) {
        p.push(format!("{name}: {kind}: by {}", f["by"]));
    }
    if f["src"]["zone"].as_str().is_none() || f["dst"]["zone"].as_str().is_none() {
        p.push(format!("{name}: {kind}: sides without a zone"));
    }
    let port = f["port"].as_u64().unwrap_or(0);
    let dst = f["dst"]["address"].as_str().unwrap_or("").to_string();
    let n = conns.get(&(dst.clone(), port)).copied().unwrap_or(0);
    let count = f["count"].as_u64().unwrap_or(0);
    if count == 0 || count as usize > n {
        p.push(format!(
            "{name}: {kind}: count {count}, the capture has {n} connections to {dst}:{port}"
        ));
    }
    if f["why"].as_str().is_none_or(str::is_empty) {
        p.push(format!("{name}: {kind}: no why"));
    }
    match kind {
        "smtp_rejected" => {
            let code = f["code"].as_u64().unwrap_or(0);
            if !(400..600).contains(&code) || f["text"].as_str().is_none_or(str::is_empty) {
                p.push(format!(
                    "{name}: smtp_rejected without a 4xx/5xx code and text"
                ));
            }
        }
        "tls_blocked_by_name" | "tls_handshake_failed"
            if f["sni"].as_str().is_none_or(str::is_empty) =>
        {
            p.push(format!("{name}: {kind} without an sni"));
        }
        "idle_timeout_kill" => {
            let num = |k: &str| f[k].as_f64().unwrap_or(f64::NAN);
            let (t, lo, hi) = (num("timeout_s"), num("timeout_s_min"), num("timeout_s_max"));
            if !(lo < t && t < hi) {
                p.push(format!("{name}: idle timeout {t} not inside ({lo}, {hi})"));
            }
            let gaps = |k: &str| -> Vec<f64> {
                f[k].as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default()
            };
            let (survived, killed) = (gaps("survived_gaps_s"), gaps("killed_gaps_s"));
            if survived.iter().any(|&g| g >= t) || killed.iter().any(|&g| g <= t) {
                p.push(format!(
                    "{name}: gaps survived {survived:?} / killed {killed:?} against a timeout of {t}"
                ));
            }
            if killed.len() as u64 != count {
                p.push(format!("{name}: count {count}, killed gaps {killed:?}"));
            }
            // Kills followed by the client's new connection: only silent ones, at most all.
            if let Some(r) = f.get("reconnected") {
                if f["after_gap"] != "dropped" || r.as_u64().is_none_or(|r| r > count) {
                    p.push(format!(
                        "{name}: reconnected {r} of {count} ({})",
                        f["after_gap"]
                    ));
                }
            }
            let seen = gaps("conntrack_seen_s");
            if seen.is_empty() || seen.iter().any(|&s| s > t) {
                p.push(format!(
                    "{name}: conntrack's entries {seen:?} do not show the {t}-s timeout"
                ));
            }
        }
        _ => {}
    }
    p
}

#[test]
fn payload_truth_files_are_well_formed_and_fit_the_captures() {
    let mut problems = vec![];
    let mut kinds_seen = vec![];
    for name in SAMPLES {
        let conns = connections(name);
        let findings = json(&format!("samples/{name}.expect-findings.json"));
        let findings = findings.as_array().expect("a list of findings");
        if findings.is_empty() != HEALTHY.contains(name) {
            problems.push(format!("{name}: {} findings", findings.len()));
        }
        for f in findings {
            problems.extend(check_finding(name, f, &conns));
            if f["optional"] != true {
                kinds_seen.push(f["kind"].as_str().unwrap_or("").to_string());
            }
        }
        let path = root().join(format!("samples/{name}.expect-services.json"));
        if !path.exists() {
            continue;
        }
        let services = json(&format!("samples/{name}.expect-services.json"));
        let mut per_port: BTreeMap<u64, usize> = BTreeMap::new();
        for s in services.as_array().expect("a list of services") {
            let svc = s["service"].as_str().unwrap_or("");
            if !SERVICES.contains(&svc) {
                problems.push(format!("{name}: service {svc:?}"));
            }
            let port = s["port"].as_u64().unwrap_or(0);
            *per_port.entry(port).or_insert(0) += 1;
            match s["evidence"].as_str() {
                Some("http") => {
                    let status = s["status"].as_u64().unwrap_or(0);
                    if port != 80
                        || !s["path"].as_str().is_some_and(|p| p.starts_with('/'))
                        || !(100..600).contains(&status)
                    {
                        problems.push(format!("{name}: HTTP service line {s}"));
                    }
                }
                Some("sni") => {
                    if port != 443 || s["sni"].as_str().is_none_or(str::is_empty) {
                        problems.push(format!("{name}: SNI service line {s}"));
                    }
                }
                e => problems.push(format!("{name}: evidence {e:?}")),
            }
        }
        // Every HTTP connection of the capture is a request to a virtual directory; a service
        // line by SNI stands for one 443 connection at most.
        let http: usize = conns
            .iter()
            .filter(|((_, p), _)| *p == 80)
            .map(|(_, n)| n)
            .sum();
        if per_port.get(&80).copied().unwrap_or(0) != http {
            problems.push(format!(
                "{name}: {:?} HTTP service lines, {http} connections to port 80",
                per_port.get(&80)
            ));
        }
        let https: usize = conns
            .iter()
            .filter(|((_, p), _)| *p == 443)
            .map(|(_, n)| n)
            .sum();
        if per_port.get(&443).copied().unwrap_or(0) > https {
            problems.push(format!(
                "{name}: more SNI service lines than 443 connections"
            ));
        }
    }
    // Every finding kind has a lab sample that must show it (not an optional companion).
    for k in KINDS {
        if !kinds_seen.iter().any(|s| s == k) {
            problems.push(format!("no sample's truth has a non-optional {k} finding"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What makes two findings the same one: kind, port, the sides (zone, role, address), the
/// reply code (smtp_rejected), the server name (TLS kinds) and the alert that ended a failed
/// handshake (its sender and description).
fn finding_key(f: &Value) -> String {
    let side = |s: &Value| format!("{}/{}/{}", s["zone"], s["role"], s["address"]);
    format!(
        "{} port {} {} -> {} code {} sni {} alert {}/{}",
        f["kind"].as_str().unwrap_or("?"),
        f["port"],
        side(&f["src"]),
        side(&f["dst"]),
        f["code"].as_u64().unwrap_or(0),
        f["sni"].as_str().unwrap_or(""),
        f["alert"]["from"].as_str().unwrap_or("-"),
        f["alert"]["description"].as_u64().unwrap_or(0),
    )
}

/// A report's finding against the truth entries with its key (their counts summed: a report
/// may group several entries of one kind and flow).
fn compare(name: &str, got: &Value, truth: &[&Value]) -> Vec<String> {
    let mut p = vec![];
    let key = finding_key(got);
    let count: u64 = truth.iter().map(|t| t["count"].as_u64().unwrap_or(0)).sum();
    if got["count"].as_u64() != Some(count) {
        p.push(format!(
            "{name}: {key}: count {} where the truth has {count}",
            got["count"]
        ));
    }
    for t in truth {
        if got["by"] != t["by"] {
            p.push(format!(
                "{name}: {key}: by {} where the truth has {}",
                got["by"], t["by"]
            ));
        }
        if let Some(want) = t.get("alert") {
            for k in ["from", "level", "description"] {
                if got["alert"][k] != want[k] {
                    p.push(format!(
                        "{name}: {key}: alert {k} {} where the truth has {}",
                        got["alert"][k], want[k]
                    ));
                }
            }
        }
        if t.get("command").is_some() && got["command"] != t["command"] {
            p.push(format!(
                "{name}: {key}: command {} where the truth has {}",
                got["command"], t["command"]
            ));
        }
        // The reply text is bounded (the payload look keeps its first 80 bytes): the report's
        // must be the truth's, or its start when the truth's is longer.
        if let Some(want) = t["text"].as_str() {
            let have = got["text"].as_str().unwrap_or("");
            if !want.starts_with(have) || have.len() < want.len().min(64) {
                p.push(format!(
                    "{name}: {key}: text {have:?} where the truth has {want:?}"
                ));
            }
        }
        if let Some(want) = t["passing_sni"].as_array() {
            let mut want: Vec<&str> = want.iter().filter_map(Value::as_str).collect();
            let mut have: Vec<&str> = got["passing_sni"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            want.sort();
            have.sort();
            if want != have {
                p.push(format!(
                    "{name}: {key}: names that passed {have:?}, truth {want:?}"
                ));
            }
        }
    }
    if got["detail"].as_str().is_none_or(str::is_empty) {
        p.push(format!("{name}: {key}: no sentence"));
    }
    p
}

/// A report's findings against a truth file: every finding the truth lists (optional ones
/// aside) and none it does not, each as [`compare`] says. Returns how many were compared.
fn check_findings(name: &str, rep: &Value, truth: &Value, problems: &mut Vec<String>) -> usize {
    let mut checked = 0;
    let got = rep["findings"].as_array().cloned().unwrap_or_default();
    let truth = truth.as_array().expect("a list of findings");
    let mut wanted: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for t in truth {
        wanted.entry(finding_key(t)).or_default().push(t);
    }
    let mut matched = vec![];
    for f in &got {
        let key = finding_key(f);
        match wanted.get(&key) {
            Some(truth) => {
                problems.extend(compare(name, f, truth));
                matched.push(key);
                checked += 1;
            }
            None => problems.push(format!(
                "{name}: a finding the truth does not list: {key}, count {}: {}",
                f["count"], f["detail"]
            )),
        }
    }
    for (key, truth) in &wanted {
        let optional = truth.iter().all(|t| t["optional"] == true);
        if !optional && !matched.contains(key) {
            problems.push(format!("{name}: missing finding {key}"));
        }
    }
    checked
}

#[test]
fn payload_samples_give_exactly_their_truths_findings() {
    let mut problems = vec![];
    let mut checked = 0;
    for name in SAMPLES {
        let truth = json(&format!("samples/{name}.expect-findings.json"));
        checked += check_findings(name, &report(name), &truth, &mut problems);
    }
    assert!(checked > 0, "no finding compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The samples also captured with dumpcap on the firewall's two legs (`X.fw2.pcapng`, as
/// dumpcap wrote it: not in time order, every forwarded packet twice), with the findings truth
/// of the run that took it (`X.fw2.expect-findings.json`).
const FW2_SAMPLES: &[&str] = &[
    "esmtp-inspection",
    "idle-timeout-drop",
    "idle-timeout-reset",
    "tls-by-name",
    "payload-healthy",
];

fn fw2_report(name: &str) -> Value {
    sample_report(
        &format!("{name}.fw2.pcapng"),
        &format!("{name}.fw2.site.toml"),
    )
}

/// (role, source zone, destination address) → verdict of a report's expected flows.
fn verdicts(rep: &Value) -> BTreeMap<(String, String, String), String> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    rep["expected"]
        .as_array()
        .expect("expected flows")
        .iter()
        .map(|e| {
            (
                (s(&e["role"]), s(&e["src"]["zone"]), s(&e["dst"]["address"])),
                s(&e["verdict"]),
            )
        })
        .collect()
}

/// The firewall's own two-interface capture gives what the single-interface capture gives:
/// every finding of its run's truth (kinds, counts, codes, names), none other, the payload
/// look's excerpts carried through the reorder buffer (a packet the buffer held back used to
/// lose them), and the same verdicts as the single-interface capture's report.
#[test]
fn two_interface_payload_captures_give_the_same_findings_and_verdicts() {
    let mut problems = vec![];
    let mut checked = 0;
    for name in FW2_SAMPLES {
        let rep = fw2_report(name);
        let fw2 = format!("{name}.fw2");
        let truth = json(&format!("samples/{name}.fw2.expect-findings.json"));
        checked += check_findings(&fw2, &rep, &truth, &mut problems);
        // The truth of both runs: the same findings with the same counts, besides those of
        // a leg only the two-interface capture holds ("view": "fw2").
        let kinds = |t: &Value| -> Vec<(String, u64)> {
            let mut k: Vec<(String, u64)> = t
                .as_array()
                .expect("a list of findings")
                .iter()
                .filter(|f| f["view"] != "fw2")
                .map(|f| (finding_key(f), f["count"].as_u64().unwrap_or(0)))
                .collect();
            k.sort();
            k
        };
        let single = json(&format!("samples/{name}.expect-findings.json"));
        if kinds(&truth) != kinds(&single) {
            problems.push(format!(
                "{fw2}: truth {:?} differs from the single-interface run's {:?}",
                kinds(&truth),
                kinds(&single)
            ));
        }
        if rep["capture"]["duplicate_packets"].as_u64().unwrap_or(0) == 0 {
            problems.push(format!("{fw2}: no copies paired: not a two-leg capture?"));
        }
        if rep["capture"]["reordered"].as_u64().unwrap_or(0) == 0 {
            problems.push(format!("{fw2}: nothing put back in time order"));
        }
        let (one, two) = (verdicts(&report(name)), verdicts(&rep));
        if one != two {
            problems.push(format!(
                "{fw2}: verdicts {two:?}, the single-interface capture's {one:?}"
            ));
        }
    }
    if checked == 0 {
        problems.push("no finding compared".to_string());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// smtp-refusals: Postfix answered the mail commands of all three sessions and refused the mail
/// of two (an unknown recipient, 550; a deferred sender, 450; the script's swaks exit codes and
/// Postfix's log): the smtp-inbound row says so in `mail_sessions` / `mail_refused`, and is
/// flaky; a healthy sample's mail row carries no `mail_refused`.
#[test]
fn refused_mail_is_counted_on_the_mail_row() {
    let row = |name: &str| -> Value {
        report(name)["expected"]
            .as_array()
            .expect("expected flows")
            .iter()
            .find(|e| e["role"] == "smtp-inbound")
            .cloned()
            .unwrap_or_else(|| panic!("{name}: no smtp-inbound row"))
    };
    let r = row("smtp-refusals");
    assert_eq!(r["mail_sessions"], 3, "{r}");
    assert_eq!(r["mail_refused"], 2, "{r}");
    assert_eq!(r["verdict"], "flaky", "{r}");
    let h = row("payload-healthy");
    assert!(h.get("mail_refused").is_none(), "{h}");
    assert_eq!(h["verdict"], "ok", "{h}");
}

/// The services a row should list, from the script's truth: its `service_seen` lines
/// (`X.expect-services.json`: one per connection whose SNI or path names a service, with
/// whether it went through) and, on 443, every other connection of the script as `other`:
/// each of them is a curl by name (`--resolve NAME:443`), so it carries an SNI, one naming
/// no service (`mail.example.test`); it went through when its expect line says the
/// connection closed normally (SF: curl exit 0, the handshake completed). Keyed by (port,
/// name, evidence): (attempts, established).
fn truth_services(name: &str) -> BTreeMap<(u64, String, String), (u64, u64)> {
    let mut want: BTreeMap<(u64, String, String), (u64, u64)> = BTreeMap::new();
    let services = json(&format!("samples/{name}.expect-services.json"));
    let (mut sni_lines, mut sni_through) = (0, 0);
    for s in services.as_array().expect("a list of services") {
        let port = s["port"].as_u64().unwrap_or(0);
        let evidence = s["evidence"].as_str().unwrap_or("").to_string();
        let through = s["established"] == true;
        if evidence == "sni" {
            sni_lines += 1;
            sni_through += u64::from(through);
        }
        let e = want
            .entry((
                port,
                s["service"].as_str().unwrap_or("").to_string(),
                evidence,
            ))
            .or_default();
        e.0 += 1;
        e.1 += u64::from(through);
    }
    let https: Vec<Value> = expect_lines(name)
        .into_iter()
        .filter(|e| e["id.resp_p"] == 443)
        .collect();
    let sf = https.iter().filter(|e| e["conn_state"] == "SF").count() as u64;
    let other = https.len() as u64 - sni_lines;
    if other > 0 {
        want.insert(
            (443, "other".into(), "sni".into()),
            (other, sf - sni_through),
        );
    }
    want
}

/// tls-by-name: the firewall resets the ClientHellos naming autodiscover.example.test (two
/// curl attempts, exit 35) and lets mail.example.test through (curl exit 0); HTTP on 80 went
/// to every virtual directory. Through the binary, the 443 row's `services` has autodiscover
/// by SNI with 0 established of the script's attempts and the other name established, the 80
/// row every virtual directory the script requested, by `http`; the terminal table says so
/// on a "by service:" line. payload-healthy's rows list its services too, all through, and
/// its table has no such line.
#[test]
fn https_and_http_rows_split_by_exchange_service() {
    for name in ["tls-by-name", "payload-healthy"] {
        let want = truth_services(name);
        let rep = report(name);
        let mut got: BTreeMap<(u64, String, String), (u64, u64)> = BTreeMap::new();
        for e in rep["expected"].as_array().expect("expected flows") {
            let Some(list) = e.get("services") else {
                continue;
            };
            let list = list.as_array().expect("services is a list");
            assert!(!list.is_empty(), "{name}: an empty services list: {e}");
            // Most attempts first, then by name.
            let order: Vec<(i64, &str)> = list
                .iter()
                .map(|s| {
                    (
                        -s["attempts"].as_i64().unwrap_or(0),
                        s["name"].as_str().unwrap_or(""),
                    )
                })
                .collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "{name}: services order: {e}");
            let port = e["port"].as_u64().unwrap_or(0);
            for s in list {
                let n = s["name"].as_str().unwrap_or("");
                assert!(SERVICES.contains(&n), "{name}: service {n:?}");
                let k = (
                    port,
                    n.to_string(),
                    s["evidence"].as_str().unwrap_or("").into(),
                );
                let g = got.entry(k).or_default();
                g.0 += s["attempts"].as_u64().unwrap_or(0);
                g.1 += s["established"].as_u64().unwrap_or(0);
            }
        }
        assert_eq!(got, want, "{name}: services by port, name and evidence");
        let as_format = |format: &str| {
            let o = exflow(&[
                "analyze",
                &format!("samples/{name}.pcap"),
                "--site",
                &format!("samples/{name}.site.toml"),
                "--format",
                format,
            ]);
            String::from_utf8_lossy(&o.stdout).to_string()
        };
        let table = as_format("table");
        assert_eq!(
            table.contains("by service:"),
            name == "tls-by-name",
            "{name}:\n{table}"
        );
        // Every view's "by service" line names catalogue services (or "other") only: never
        // the server names or hosts of the wire.
        let md = as_format("md");
        let html = as_format("html");
        for (format, text, marker) in [
            ("table", &table, "by service: "),
            ("md", &md, "y service: "),
            ("html", &html, "by service: "),
        ] {
            for line in text.lines().filter(|l| l.contains(marker)) {
                let list = line.split(marker).nth(1).unwrap_or_default();
                let list = list.split(['<', '|']).next().unwrap_or_default();
                for part in list.trim_end_matches(['.', ' ']).split(", ") {
                    let svc = part.split(' ').next().unwrap_or_default();
                    assert!(
                        SERVICES.contains(&svc),
                        "{name} {format}: {svc:?} in {line:?}"
                    );
                }
            }
            assert_eq!(
                text.contains(marker),
                name == "tls-by-name",
                "{name} {format}:\n{text}"
            );
        }
        // The HTML evidence of the failed 443 row lists its services in full.
        if name == "tls-by-name" {
            let (a, e) = want[&(443, "autodiscover".into(), "sni".into())];
            let full = format!("autodiscover, by TLS server name: {e} of {a} handshakes completed");
            assert!(html.contains(&full), "{full:?} not in\n{html}");
            assert!(
                html.contains("<dt>By service</dt>"),
                "no services in the evidence:\n{html}"
            );
        }
    }
    // The script's own numbers, spelt out: two autodiscover attempts reset, the other name
    // through, the nine virtual directories of HTTP_VDIRS each once by HTTP.
    let want = truth_services("tls-by-name");
    let autodiscover_attempts = expect_lines("tls-by-name")
        .iter()
        .filter(|e| e["id.resp_p"] == 443 && e["client_exit"] == 35)
        .count() as u64;
    assert!(autodiscover_attempts > 0);
    assert_eq!(
        want.get(&(443, "autodiscover".into(), "sni".into())),
        Some(&(autodiscover_attempts, 0))
    );
    assert!(want
        .get(&(443, "other".into(), "sni".into()))
        .is_some_and(|&(a, e)| a > 0 && e == a));
    let vdirs: Vec<&String> = want
        .keys()
        .filter(|(p, _, ev)| *p == 80 && ev == "http")
        .map(|(_, n, _)| n)
        .collect();
    assert_eq!(vdirs.len(), SERVICES.len() - 1, "{vdirs:?}");
}

/// tls-handshake-failed: no firewall rule is involved (it only allows 443), so nothing but
/// failed handshakes may be reported: the server's protocol_version alert (70) to the two
/// clients limited to TLS 1.2 after nginx was reloaded with TLS 1.3 only (curl exit 35,
/// openssl s_client exit 1), and the client's unknown_ca alert (48) from the curl that did not
/// trust the self-signed certificate (exit 60), by the client, not the server or a firewall;
/// the handshake the same curl completed with -k is no finding, and the name is not
/// "blocked": it failed for reasons of the endpoints', with alerts.
#[test]
fn failed_handshakes_are_told_by_who_ended_them() {
    let rep = report("tls-handshake-failed");
    let got = rep["findings"].as_array().cloned().unwrap_or_default();
    let mut seen: Vec<(String, String, u64, u64)> = got
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or("").to_string(),
                f["by"].as_str().unwrap_or("").to_string(),
                f["alert"]["description"].as_u64().unwrap_or(0),
                f["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    seen.sort();
    let want = |by: &str, alert: u64, n: u64| {
        ("tls_handshake_failed".to_string(), by.to_string(), alert, n)
    };
    assert_eq!(
        seen,
        [want("client", 48, 1), want("server", 70, 2)],
        "{got:?}"
    );
}

/// The handshake after STARTTLS (issue 15's "TLS ... after STARTTLS"): every session the
/// script ran with `swaks --tls` that exited 0 (its transcript said "TLS started") has a
/// `--flows` line with `smtp.starttls` and `tls.established`; a `swaks --tls` that failed
/// before STARTTLS (exit 29: not advertised through the inspection) has no `tls`.
#[test]
fn starttls_sessions_carry_their_tls_handshake_on_their_flows_lines() {
    let mut checked = 0;
    for name in ["esmtp-inspection", "payload-healthy"] {
        let pcap = root().join("samples").join(format!("{name}.pcap"));
        let (o, lines) = crate::util::flows_of(&[pcap.as_path()], &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        for e in expect_lines(name) {
            let why = e["why"].as_str().unwrap_or_default();
            let Some(rest) = why.strip_prefix("swaks --tls --port ") else {
                continue;
            };
            let ok = rest.contains(" exit 0") && why.contains("TLS started");
            let failed = e["client_exit"].as_u64().is_some_and(|c| c != 0);
            assert!(ok || failed, "{name}: what did swaks do? {why}");
            let mine: Vec<&Value> = lines
                .iter()
                .filter(|l| {
                    l["id.orig_h"] == e["id.orig_h"]
                        && l["id.resp_h"] == e["id.resp_h"]
                        && l["id.resp_p"] == e["id.resp_p"]
                        && l["conn_state"] == e["conn_state"]
                        && l.get("smtp").is_some()
                })
                .collect();
            assert!(!mine.is_empty(), "{name}: no smtp --flows line for {why}");
            for l in mine {
                if ok {
                    assert_eq!(l["smtp"]["starttls"], true, "{name}: {l}");
                    assert_eq!(l["tls"]["client_hello"], true, "{name}: {l}");
                    assert_eq!(l["tls"]["established"], true, "{name}: {l}");
                    assert!(l["tls"]["alert"].is_null(), "{name}: {l}");
                } else {
                    assert!(l.get("tls").is_none(), "{name}: {l}");
                }
                checked += 1;
            }
        }
    }
    // esmtp-inspection: 587 and the failed one on 25; payload-healthy: 25 and 587.
    assert!(checked >= 4, "{checked} sessions checked");
}

/// What the lab script set up to answer as Exchange does, read from samples/make-samples.sh
/// itself (the truth is the script's configuration, not the capture): Postfix's
/// `smtpd_banner`, the headers its nginx adds in IIS's stead (`IIS_HEADERS`), and the
/// virtual directories nginx redirects (`HTTP_VDIRS` lines with 301/302, to
/// `https://$MAIL_NAME<path>`).
struct LabAnswers {
    banner: String,
    headers: Vec<String>,
    redirects: Vec<(String, String)>,
}

fn lab_answers() -> LabAnswers {
    let script = fs::read_to_string(root().join("samples/make-samples.sh")).expect("script");
    let value = |prefix: &str| {
        script
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in make-samples.sh"))
            .trim()
            .to_string()
    };
    let banner = value("smtpd_banner = ").replace("\\$myhostname ", "");
    let headers = value("IIS_HEADERS=")
        .split("add_header ")
        .skip(1)
        .filter_map(|h| h.split_whitespace().next().map(str::to_string))
        .collect();
    let mail = value("MAIL_NAME=")
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let start = script.find("HTTP_VDIRS=(").expect("HTTP_VDIRS");
    let end = start + script[start..].find("\n)").expect("HTTP_VDIRS end");
    let redirects = script[start..end]
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut w = l.trim().trim_matches('"').split_whitespace();
            let (path, status) = (w.next()?, w.next()?);
            matches!(status, "301" | "302")
                .then(|| (path.to_string(), format!("https://{mail}{path}")))
        })
        .collect();
    LabAnswers {
        banner,
        headers,
        redirects,
    }
}

/// Without a site file, inference names the lab's mailbox and says it shows Exchange's signs:
/// its SMTP greeting carries the text of Postfix's `smtpd_banner` that the catalogue's
/// `[signs]` lists, and its HTTP responses the Exchange header among the ones nginx adds
/// (X-FEServer), not the common X-Powered-By. On `--flows`, every HTTP response keeps its
/// `Server`, its redirect's `Location` (the start of the script's target: Outlook's
/// Autodiscover redirect on 80 among them) and its X- header names.
#[test]
fn inference_reads_exchange_s_own_signs_and_flows_keep_the_redirects() {
    let lab = lab_answers();
    assert!(
        lab.banner.contains("Microsoft ESMTP MAIL Service"),
        "{}",
        lab.banner
    );
    assert!(
        lab.headers.iter().any(|h| h == "X-FEServer"),
        "{:?}",
        lab.headers
    );
    assert!(
        lab.redirects
            .iter()
            .any(|(p, _)| p.contains("autodiscover")),
        "{:?}",
        lab.redirects
    );
    for (name, smtp) in [("payload-healthy", true), ("tls-by-name", false)] {
        let pcap = format!("samples/{name}.pcap");
        let rep = json_report(&root().join(&pcap), None);
        let reasons: Vec<&str> = rep["topology"]["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let signs: Vec<&&str> = reasons
            .iter()
            .filter(|r| r.starts_with("198.51.100.10 shows Exchange's own signs: "))
            .collect();
        assert_eq!(signs.len(), 1, "{name}: {reasons:?}");
        let line = signs[0];
        assert_eq!(
            line.contains("its SMTP greeting on 25 says \"Microsoft ESMTP MAIL Service\""),
            smtp,
            "{name}: {line}"
        );
        assert!(line.contains("carry X-FEServer"), "{name}: {line}");
        assert!(!line.contains("X-Powered-By"), "{name}: {line}");
        // The script's curls that named autodiscover.<domain> in their ClientHello (its
        // services truth): the autodiscover. server name is a sign too.
        let asked = json(&format!("samples/{name}.expect-services.json"))
            .as_array()
            .expect("a list of services")
            .iter()
            .any(|e| e["evidence"] == "sni" && e["service"] == "autodiscover");
        assert_eq!(
            line.contains(
                "its clients ask for its autodiscover service by server name (TLS on 443)"
            ),
            asked,
            "{name}: {line}"
        );
        let (o, lines) = crate::util::flows_of(&[root().join(&pcap).as_path()], &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let mut redirects = 0;
        for l in lines.iter().filter(|l| l["id.resp_p"] == 80) {
            let h = &l["http"];
            assert_eq!(h["server"], "nginx", "{name}: {l}");
            let xh: Vec<&str> = h["x_headers"]
                .as_array()
                .expect("x_headers")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(xh, ["X-FEServer"], "{name}: {l}");
            let path = h["path"].as_str().unwrap_or_default();
            match lab.redirects.iter().find(|(p, _)| p == path) {
                Some((_, target)) => {
                    let got = h["location"].as_str().expect("a location");
                    assert!(
                        !got.is_empty() && target.starts_with(got),
                        "{name}: {got} vs {target}"
                    );
                    redirects += 1;
                }
                None => assert!(h["location"].is_null(), "{name}: {l}"),
            }
        }
        if name == "tls-by-name" {
            assert_eq!(
                redirects,
                lab.redirects.len(),
                "{name}: every redirect seen"
            );
        }
    }
}

/// mail-starttls: dovecot's IMAP 143 and POP3 110 with STARTTLS (STLS), IMAPS 993, POP3S 995.
/// Every session the script ran with curl has a `--flows` line with a `tls` object (the
/// handshake after STARTTLS on 143 and 110, as on 993 and 995): established for the curls
/// that exited 0, aborted by the client's unknown_ca alert (48) for the one that exited 60
/// (it did not trust the certificate); and the report's only finding is that one, by the
/// client, on 143: the four healthy sessions give none.
#[test]
fn imap_and_pop3_starttls_sessions_carry_their_tls_handshake() {
    let name = "mail-starttls";
    let pcap = root().join("samples").join(format!("{name}.pcap"));
    let (o, lines) = crate::util::flows_of(&[pcap.as_path()], &[]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    let mut by_port: BTreeMap<u64, Vec<bool>> = BTreeMap::new();
    let mut checked = 0;
    for e in expect_lines(name) {
        let why = e["why"].as_str().unwrap_or_default();
        assert!(why.starts_with("curl "), "{name}: what ran? {why}");
        let exit = e["client_exit"].as_u64().unwrap_or(0);
        let port = e["id.resp_p"].as_u64().unwrap();
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| {
                l["id.resp_p"] == e["id.resp_p"]
                    && l["id.orig_h"] == e["id.orig_h"]
                    && l["conn_state"] == e["conn_state"]
                    && (l["tls"]["established"] == true) == (exit == 0)
            })
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "{name}: one --flows line for {why}: {lines:?}"
        );
        let t = &mine[0]["tls"];
        assert_eq!(t["client_hello"], true, "{t}");
        assert_eq!(t["sni"], "mail.example.test", "{t}");
        if exit == 0 {
            assert!(t["alert"].is_null(), "{t}");
        } else {
            assert_eq!(exit, 60, "{why}");
            assert_eq!(t["alert"]["by"], "orig", "{t}");
            assert_eq!(t["alert"]["description"], 48, "{t}");
        }
        // No object of their own for IMAP and POP3 (PRODUCT.md names none).
        assert!(mine[0].get("smtp").is_none() && mine[0].get("imap").is_none());
        by_port.entry(port).or_default().push(exit == 0);
        checked += 1;
    }
    assert_eq!(checked, 5, "{by_port:?}");
    assert_eq!(
        by_port.keys().copied().collect::<Vec<_>>(),
        [110, 143, 993, 995]
    );
    for site in [true, false] {
        let pcap = format!("samples/{name}.pcap");
        let site_file = format!("samples/{name}.site.toml");
        let mut argv = vec!["analyze", pcap.as_str(), "--format", "json"];
        if site {
            argv.extend(["--site", site_file.as_str()]);
        }
        let o = exflow(&argv);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
        let got: Vec<(String, u64, String, u64)> = rep["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["kind"].as_str().unwrap_or("").to_string(),
                    f["port"].as_u64().unwrap_or(0),
                    f["by"].as_str().unwrap_or("").to_string(),
                    f["count"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            got,
            [(
                "tls_handshake_failed".to_string(),
                143,
                "client".to_string(),
                1
            )],
            "{name}, site file {site}"
        );
    }
}
