//! End to end, in the namespace lab (issue 16): the firewall of the inbound-25-dropped and
//! submission-refused samples, the same clients before and after exflow's `rules --report`
//! fix, and the verdicts of a fresh capture each time (root, `ip`, nftables, python3; tcpdump,
//! or `exflow live --write` where it is missing or `EXFLOW_TEST_CAPTURE=exflow`; skipped with a
//! printed reason otherwise).
//!
//! The lab is `live.rs`'s (documentation addresses only, no default routes):
//!
//! ```text
//!  <p>c (client)                 <p>f (firewall, ip_forward=1)                 <p>s (server)
//!  203.0.113.10/24 [c0]---[fwc] 203.0.113.1   198.51.100.1 [fws]---[s0] 198.51.100.10/24
//!                           ^ the capture
//! ```
//! with its servers (443, 25, 587: a greeting line, then read until the client closes) and its
//! client (443, 587, 25, each bounded by 3 s). The firewall is the scenario's as
//! `samples/make-samples.sh` writes it (`firewall "$rule" "$SITE_ALLOW"`: a `table ip exf`
//! whose forward chain has policy drop, the scenario's rule first, then the site's allows),
//! with the lab's interface names.
//!
//! Each scenario goes through three captures:
//! 1. the scenario's firewall: the flow fails (blocked / refused), 443 is ok;
//! 2. the generated `table inet exflow` loaded as written (`nft -f`) beside the firewall's own
//!    table: nothing changes. nftables runs every base chain of the hook and an accept in one
//!    table does not undo a drop in another, as the file's header says;
//! 3. that table deleted, and its statements put in the firewall's own forward chain before its
//!    drop, as the header tells the admin to (`insert rule ip exf forward …`, in the file's
//!    order): the flow is ok, and so is everything else the client tries.

use crate::live::{
    have, ok, run, signal, verdict, wait_bounded, wait_for_line, Lab, SERVER, TIMEOUT_START,
};
use crate::util::{exflow, root, stderr, stdout, tmp_path};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The site allows of make-samples.sh's `SITE_ALLOW`, with the lab's interface names.
const SITE_ALLOW: &str = "        iifname \"fwc\" ip daddr 198.51.100.10 tcp dport { 25, 80, 443, 587 } ct state new accept
        iifname \"fws\" ip saddr 198.51.100.10 tcp dport 25 ct state new accept
        iifname \"fws\" ip saddr 198.51.100.10 ip daddr 203.0.113.53 udp dport 53 accept";

/// One sample's firewall and what it breaks.
struct Scenario {
    /// The sample (its site file is `samples/<name>.site.toml`).
    name: &'static str,
    /// The scenario's rule, as make-samples.sh writes it (`exf-fwc` there, `fwc` here).
    rule: &'static str,
    /// The port it breaks and the verdict it gets.
    port: u64,
    failed: &'static str,
    /// What the client sees with the scenario's firewall.
    seen: &'static str,
}

const INBOUND_25_DROPPED: Scenario = Scenario {
    name: "inbound-25-dropped",
    rule: "iifname \"fwc\" ip daddr 198.51.100.10 tcp dport 25 drop",
    port: 25,
    failed: "blocked",
    seen: "443:ok 587:ok 25:timeout",
};

const SUBMISSION_REFUSED: Scenario = Scenario {
    name: "submission-refused",
    rule: "iifname \"fwc\" ip daddr 198.51.100.10 tcp dport 587 reject with tcp reset",
    port: 587,
    failed: "refused",
    seen: "443:ok 587:refused 25:ok",
};

/// What the client sees once every port is let through.
const ALL_OK: &str = "443:ok 587:ok 25:ok";

/// Runs `nft` in the firewall namespace (bounded), asserting success.
fn nft(lab: &Lab, args: &[&str]) {
    let f = lab.ns('f');
    let mut argv = vec!["ip", "netns", "exec", f.as_str(), "nft"];
    argv.extend_from_slice(args);
    ok(&argv);
}

/// Writes `text` to a fresh temp file the lab removes, and returns its path.
fn lab_file(lab: &mut Lab, name: &str, text: &str) -> PathBuf {
    let path = tmp_path(name);
    std::fs::write(&path, text).unwrap();
    lab.files.push(path.clone());
    path
}

/// The scenario's firewall, as make-samples.sh's `firewall "        $rule" "$SITE_ALLOW"`.
fn scenario_firewall(lab: &mut Lab, s: &Scenario) {
    let text = format!(
        "flush ruleset
table ip exf {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        {}
        ct state established,related accept
{SITE_ALLOW}
    }}
}}
",
        s.rule
    );
    let path = lab_file(lab, "scenario.nft", &text);
    nft(lab, &["-f", &path.to_string_lossy()]);
}

/// Captures on the firewall's client-side leg while the client runs; returns what the client
/// saw and `exflow analyze --site SITE --format json` of the capture.
fn capture_round(lab: &mut Lab, site: &Path, tag: &str) -> (String, Value) {
    let pcap = tmp_path(&format!("{tag}.pcap"));
    lab.files.push(pcap.clone());
    let pcap_s = pcap.to_string_lossy().to_string();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.ns('f')]);
    // tcpdump where it is installed (a capture independent of exflow's), else exflow's own;
    // EXFLOW_TEST_CAPTURE=exflow takes exflow's where tcpdump is present too.
    let own = std::env::var("EXFLOW_TEST_CAPTURE").is_ok_and(|v| v == "exflow");
    let ready = if have("tcpdump") && !own {
        cmd.args([
            "tcpdump", "-i", "fwc", "-n", "-U", "-Z", "root", "-w", &pcap_s,
        ])
        .arg("tcp or udp or icmp");
        "listening on"
    } else {
        cmd.arg(env!("CARGO_BIN_EXE_exflow")).args([
            "live",
            "-i",
            "fwc",
            "--interval",
            "0",
            "--write",
            &pcap_s,
        ]);
        "capturing on fwc"
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    lab.children.push(child);
    let idx = lab.children.len() - 1;
    assert!(
        wait_for_line(err, ready, TIMEOUT_START).is_some(),
        "{tag}: the capture did not start"
    );
    let seen = lab.clients();
    // Late FINs and ACKs land in the capture.
    std::thread::sleep(Duration::from_secs(1));
    let pid = lab.children[idx].id().to_string();
    signal("INT", &pid);
    let status = wait_bounded(&mut lab.children[idx], Duration::from_secs(15));
    assert!(
        status.is_some(),
        "{tag}: the capture did not stop on SIGINT"
    );

    let site_s = site.to_string_lossy().to_string();
    let o = exflow(&["analyze", &pcap_s, "--site", &site_s, "--format", "json"]);
    assert!(o.status.success(), "{tag}: analyze: {}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    (seen, report)
}

/// The statements of the generated table's forward chain, in order: every line inside
/// `chain forward { … }` but its comments and the base chain's `type … policy` line.
fn chain_statements(generated: &str) -> Vec<String> {
    let mut out = vec![];
    let mut inside = false;
    for line in generated.lines().map(str::trim) {
        if line.starts_with("chain forward") {
            inside = true;
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') || line.starts_with("type ") {
            continue;
        }
        if line == "}" {
            break;
        }
        out.push(line.to_string());
    }
    out
}

fn roundtrip(test: &str, s: &Scenario) {
    if let Some(why) = Lab::unavailable() {
        crate::util::skip(test, why);
        return;
    }
    if !have("nft") {
        crate::util::skip(test, "no nft (Debian: nftables)");
        return;
    }
    let Some(mut lab) = Lab::up(test) else { return };
    let site = root().join(format!("samples/{}.site.toml", s.name));
    let site_s = site.to_string_lossy().to_string();
    let verdicts = |r: &Value| -> String {
        [443, 587, 25]
            .iter()
            .map(|&p| format!("{p}:{}", verdict(r, p)))
            .collect::<Vec<_>>()
            .join(" ")
    };

    // 1. The scenario's firewall: the flow fails.
    scenario_firewall(&mut lab, s);
    lab.servers();
    let (seen, before) = capture_round(&mut lab, &site, "before");
    assert_eq!(seen, s.seen, "{}: what the client saw", s.name);
    assert_eq!(verdict(&before, s.port), s.failed, "{}", verdicts(&before));
    assert_eq!(verdict(&before, 443), "ok", "{}", verdicts(&before));

    // The rules that fix the report's failed flows.
    let report = lab_file(&mut lab, "before.report.json", &before.to_string());
    let o = exflow(&[
        "rules",
        "--site",
        &site_s,
        "--report",
        &report.to_string_lossy(),
        "--format",
        "nft",
    ]);
    assert!(o.status.success(), "rules: {}", stderr(&o));
    let generated = stdout(&o);
    println!("{}: exflow rules --report printed:\n{generated}", s.name);
    let statements = chain_statements(&generated);
    let fixes: Vec<&String> = statements
        .iter()
        .filter(|l| !l.starts_with("ct state"))
        .collect();
    assert_eq!(
        fixes.len(),
        1,
        "one rule for the one failed flow: {statements:?}"
    );
    assert!(
        fixes[0].contains(&format!("ip daddr {SERVER} tcp dport {} accept", s.port)),
        "{}",
        fixes[0]
    );
    let rules = lab_file(&mut lab, "exflow.nft", &generated);
    let rules_s = rules.to_string_lossy().to_string();
    nft(&lab, &["-c", "-f", &rules_s]);

    // 2. The generated table as written, beside the firewall's own: its accept does not undo
    // the other table's drop (or reject); nothing changes.
    nft(&lab, &["-f", &rules_s]);
    let (seen, beside) = capture_round(&mut lab, &site, "beside");
    assert_eq!(seen, s.seen, "{}: the table beside the firewall's", s.name);
    assert_eq!(verdict(&beside, s.port), s.failed, "{}", verdicts(&beside));
    nft(&lab, &["delete", "table", "inet", "exflow"]);

    // 3. As the header says: the statements in the firewall's own forward chain, before its
    // drop. `insert` puts a rule at the head of the chain, so the last goes in first.
    let mut text = String::new();
    for st in statements.iter().rev() {
        text.push_str(&format!("insert rule ip exf forward {st}\n"));
    }
    let insert = lab_file(&mut lab, "insert.nft", &text);
    nft(&lab, &["-f", &insert.to_string_lossy()]);
    let f = lab.ns('f');
    let listed = run(&[
        "ip", "netns", "exec", &f, "nft", "list", "chain", "ip", "exf", "forward",
    ]);
    println!("{}: the firewall's chain now:\n{}", s.name, stdout(&listed));
    let (seen, after) = capture_round(&mut lab, &site, "after");
    assert_eq!(
        seen, ALL_OK,
        "{}: what the client saw after the fix",
        s.name
    );
    assert_eq!(verdict(&after, s.port), "ok", "{}", verdicts(&after));
    assert_eq!(verdicts(&after), "443:ok 587:ok 25:ok");
}

#[test]
fn roundtrip_inbound_25_dropped_is_fixed_by_the_report_rules() {
    roundtrip("roundtrip_inbound_25_dropped", &INBOUND_25_DROPPED);
}

#[test]
fn roundtrip_submission_refused_is_fixed_by_the_report_rules() {
    roundtrip("roundtrip_submission_refused", &SUBMISSION_REFUSED);
}
