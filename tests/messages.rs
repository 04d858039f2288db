//! Empty results blame the right thing: a `--filter` that let no packet through says so
//! (with the `vlan and (…)` hint when the capture is VLAN-tagged), a site file without an
//! Exchange server says so, and neither is reported as "No Exchange server found in this
//! capture". The facts behind the sentences are in the JSON report (`capture.filter`,
//! `capture.vlan_tagged`).

use crate::closes::{session, End, SITE};
use crate::util::{exflow, root, stderr, stdout, tmp_path, TinyPcap};
use serde_json::Value;

const NOT_FOUND: &str = "No Exchange server found in this capture";

fn json(args: &[&str]) -> Value {
    let mut argv = args.to_vec();
    argv.extend(["--format", "json"]);
    let o = exflow(&argv);
    assert!(o.status.success(), "{argv:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The terminal table, its words joined by single spaces (a sentence may be wrapped).
fn table(args: &[&str]) -> String {
    let mut argv = args.to_vec();
    argv.extend(["--format", "table", "--color", "never"]);
    let o = exflow(&argv);
    assert!(o.status.success(), "{argv:?}: {}", stderr(&o));
    stdout(&o).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The report's warnings as one text.
fn warnings(r: &Value) -> String {
    r["warnings"].to_string()
}

#[test]
fn a_filter_that_matched_nothing_is_named() {
    let sample = root().join("samples/exchange-healthy.pcap");
    let p = sample.to_str().unwrap();
    let all = json(&["analyze", p])["capture"]["packets"]
        .as_u64()
        .unwrap();
    assert!(all > 0);
    let r = json(&["analyze", p, "--filter", "tcp port 9"]);
    assert_eq!(
        r["capture"]["filter"],
        serde_json::json!({"expression": "tcp port 9", "matched": 0, "of": all})
    );
    let w = warnings(&r);
    let sentence = format!("The filter 'tcp port 9' matched 0 of {all} packets");
    assert!(w.contains(&sentence), "{w}");
    assert!(!w.contains(NOT_FOUND) && !w.contains("vlan"), "{w}");
    assert!(
        r["capture"].get("vlan_tagged").is_none(),
        "{}",
        r["capture"]
    );
    let t = table(&["analyze", p, "--filter", "tcp port 9"]);
    assert!(t.contains(&sentence) && !t.contains(NOT_FOUND), "{t}");
    // The capture section's fact, under the packets line.
    let fact = format!("packets 0 filter 'tcp port 9' matched 0 of {all} packets");
    assert!(t.contains(&fact), "{t}");
    // A filter that matched something is a fact, not a warning.
    let r = json(&["analyze", p, "--filter", "tcp port 25"]);
    let f = &r["capture"]["filter"];
    assert!(f["matched"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["of"], all);
    assert!(!warnings(&r).contains("The filter"), "{}", warnings(&r));
    // Without a filter, no filter fact.
    assert!(json(&["analyze", p])["capture"].get("filter").is_none());
}

#[test]
fn a_vlan_tagged_capture_gets_the_vlan_hint() {
    let mut cap = TinyPcap::new(Some(100));
    session(&mut cap, 1_700_000_000_000_000, 40_000, End::Fins);
    session(&mut cap, 1_700_000_001_000_000, 40_001, End::Fins);
    let pcap = tmp_path("vlan.pcap");
    std::fs::write(&pcap, cap.bytes()).unwrap();
    let site = tmp_path("vlan.site.toml");
    std::fs::write(&site, SITE).unwrap();
    let p = pcap.to_str().unwrap();
    let r = json(&["analyze", p, "--filter", "tcp port 25"]);
    let frames = r["capture"]["filter"]["of"].as_u64().unwrap();
    assert_eq!(frames, 18);
    assert_eq!(r["capture"]["vlan_tagged"], frames);
    let w = warnings(&r);
    assert!(
        w.contains("The filter 'tcp port 25' matched 0 of 18 packets")
            && w.contains("write 'vlan and (tcp port 25)'"),
        "{w}"
    );
    assert!(!w.contains(NOT_FOUND), "{w}");
    let md = {
        let o = exflow(&["analyze", p, "--filter", "tcp port 25", "--format", "md"]);
        stdout(&o)
    };
    assert!(md.contains("vlan and (tcp port 25)"), "{md}");
    // The hint followed: every packet through, and the verdict.
    let s = site.to_str().unwrap();
    let r = json(&[
        "analyze",
        p,
        "--filter",
        "vlan and (tcp port 25)",
        "--site",
        s,
    ]);
    assert_eq!(r["capture"]["filter"]["matched"], 18);
    assert!(!warnings(&r).contains("The filter"), "{}", warnings(&r));
    let smtp = r["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "smtp-inbound")
        .unwrap();
    assert_eq!(smtp["verdict"], "ok", "{smtp}");
    // An expression that already says vlan gets no hint.
    let r = json(&["analyze", p, "--filter", "vlan and tcp port 9"]);
    let w = warnings(&r);
    assert!(
        w.contains("matched 0 of 18") && !w.contains("write 'vlan"),
        "{w}"
    );
}

#[test]
fn a_site_file_without_exchange_servers_says_so() {
    let sample = root().join("samples/exchange-healthy.pcap");
    let site = tmp_path("no-exchange.site.toml");
    std::fs::write(
        &site,
        "profile = \"mailbox\"\ninternal = [\"198.51.100.0/24\"]\nperimeter = []\n\n\
         [[host]]\nrole = \"dns\"\naddresses = [\"198.51.100.53\"]\n",
    )
    .unwrap();
    let args = [
        "analyze",
        sample.to_str().unwrap(),
        "--site",
        site.to_str().unwrap(),
    ];
    let r = json(&args);
    assert!(r["expected"].as_array().unwrap().is_empty());
    let w = warnings(&r);
    assert!(w.contains("The site file names no Exchange server"), "{w}");
    assert!(!w.contains(NOT_FOUND), "{w}");
    let t = table(&args);
    assert!(
        t.contains("The site file names no Exchange server") && !t.contains(NOT_FOUND),
        "{t}"
    );
}
