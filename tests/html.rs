//! `--format html` on every sample with a site file: one self-contained document (no script,
//! no `src`/`href` to anything but `#` anchors or `data:`), one arrow per expected flow with
//! its verdict's class (as many as the JSON report has), one dashed arrow per unexpected
//! flow, and under every failed row the rule `exflow rules --report` writes for it. Then the
//! same documents rendered by headless Chromium: the DOM it builds has the arrows, and a
//! screenshot per sample is left in `target/html-shots/` for people to look at. And a
//! hand-built report whose strings try to break out of the HTML.

use crate::util::{exflow, root, sample_sites, skip, stderr, stdout, tmp_path};
use exflow::classify::catalogue::{Catalogue, HostRole};
use exflow::classify::site::Site;
use exflow::report::html;
use exflow::report::model::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERDICTS: [&str; 8] = [
    "ok",
    "blocked",
    "refused",
    "rejected",
    "flaky",
    "cut",
    "not_seen",
    "one_sided",
];

const FAILED: [&str; 5] = ["blocked", "refused", "rejected", "flaky", "cut"];

/// Every sample capture that has a site file: (name, capture, site).
fn samples() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for site in sample_sites() {
        let s = site.to_string_lossy().to_string();
        let stem = s.strip_suffix(".site.toml").unwrap().to_string();
        let capture = [".pcap", ".pcapng"]
            .iter()
            .map(|ext| PathBuf::from(format!("{stem}{ext}")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no capture beside {s}"));
        let name = Path::new(&stem)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        out.push((name, capture, site));
    }
    assert!(out.len() >= 20, "{out:?}");
    out
}

fn analyze(capture: &Path, site: &Path, format: &str) -> String {
    let o = exflow(&[
        "analyze",
        &capture.to_string_lossy(),
        "--site",
        &site.to_string_lossy(),
        "--format",
        format,
    ]);
    assert_eq!(o.status.code(), Some(0), "{capture:?}: {}", stderr(&o));
    stdout(&o)
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of every `src=` and `href=` attribute in the document's tags (text cannot hold
/// a raw `<`, so every `<` opens a tag, and attribute values cannot hold a raw `>`).
fn references(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in doc.split('<').skip(1) {
        let tag = piece.split('>').next().unwrap_or("");
        let lower = tag.to_ascii_lowercase();
        for attr in ["src=", "href="] {
            let mut from = 0;
            while let Some(i) = lower[from..].find(attr) {
                let at = from + i;
                from = at + attr.len();
                if !tag[..at].ends_with(char::is_whitespace) {
                    continue;
                }
                let rest = &tag[from..];
                let value = match rest.chars().next() {
                    Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
                    _ => rest.split(char::is_whitespace).next().unwrap_or(""),
                };
                out.push(value.to_string());
            }
        }
    }
    out
}

#[test]
fn the_reference_finder_sees_what_would_load() {
    let doc = "<p>src=text</p><img alt=x src=\"http://a/b.png\"><a class='k' href='#x'>a</a>\
               <link\nhref=//c/d.css>";
    assert_eq!(references(doc), ["http://a/b.png", "#x", "//c/d.css"]);
}

/// What every HTML report must be: one document that needs nothing from anywhere.
fn assert_self_contained(name: &str, doc: &str) {
    assert!(doc.starts_with("<!DOCTYPE html>"), "{name}");
    assert!(doc.trim_end().ends_with("</html>"), "{name}");
    let lower = doc.to_ascii_lowercase();
    for bad in [
        "<script",
        "javascript:",
        "@import",
        "url(",
        "<link",
        "<iframe",
        "<object",
    ] {
        assert!(!lower.contains(bad), "{name}: has {bad}");
    }
    for r in references(doc) {
        assert!(
            r.starts_with('#') || r.starts_with("data:"),
            "{name}: refers to {r:?}"
        );
    }
}

/// The arrow groups of a document (or of the DOM Chromium built from it), by class.
fn arrows(doc: &str, class: &str) -> usize {
    count(doc, &format!("<g class=\"{class}\""))
}

#[test]
fn html_of_every_sample_is_self_contained_with_an_arrow_per_flow_and_a_fix_per_failure() {
    let mut failed_seen = 0;
    let mut unexpected_seen = 0;
    let mut died_seen = 0;
    for (name, capture, site) in samples() {
        let json = analyze(&capture, &site, "json");
        let report: Value = serde_json::from_str(&json).unwrap();
        let doc = analyze(&capture, &site, "html");
        assert_self_contained(&name, &doc);

        let expected = report["expected"].as_array().unwrap();
        assert_eq!(
            count(&doc, "<g class=\"flow verdict-"),
            expected.len(),
            "{name}: one arrow per expected flow"
        );
        assert!(
            expected.is_empty() || references(&doc).iter().any(|r| r.starts_with("#flow-")),
            "{name}: the arrows link to their rows"
        );
        for v in VERDICTS {
            let n = expected.iter().filter(|e| e["verdict"] == v).count();
            let class = format!("flow verdict-{}", v.replace('_', "-"));
            assert_eq!(arrows(&doc, &class), n, "{name}: arrows of {v}");
        }
        let unexpected = report["unexpected"].as_array().unwrap().len();
        assert_eq!(arrows(&doc, "flow unexpected"), unexpected, "{name}");
        // Where a failed flow died, marked on its arrow when the report knows it.
        for place in ["firewall", "beyond_firewall"] {
            let n = expected.iter().filter(|e| e["died_at"] == place).count();
            let mark = format!("<g class=\"died died-{}\"", place.replace('_', "-"));
            assert_eq!(count(&doc, &mark), n, "{name}: died at {place}");
            died_seen += n;
        }
        unexpected_seen += unexpected;
        let restrictions = report["unsupported_restrictions"].as_array().unwrap();
        assert_eq!(
            count(&doc, "<g class=\"flow restriction verdict-"),
            restrictions.len(),
            "{name}"
        );

        // Every failed row names its fix: the rule `exflow rules --report` writes for it.
        // (No firewall rule for a flow that died beyond the firewall.)
        let failed = expected
            .iter()
            .filter(|e| FAILED.contains(&e["verdict"].as_str().unwrap()))
            .filter(|e| e["died_at"] != "beyond_firewall")
            .count()
            + restrictions.len();
        assert_eq!(count(&doc, "<tr class=\"fix\">"), failed, "{name}");
        // A flow that died beyond the firewall says so instead: nothing to allow on it.
        let beyond = expected
            .iter()
            .filter(|e| FAILED.contains(&e["verdict"].as_str().unwrap()))
            .filter(|e| e["died_at"] == "beyond_firewall")
            .count();
        assert_eq!(count(&doc, "<tr class=\"fix-words\">"), beyond, "{name}");
        assert_eq!(
            count(&doc, "Fix: nothing to allow on the firewall"),
            2 * beyond,
            "{name}"
        );
        if failed == 0 {
            continue;
        }
        failed_seen += failed;
        let report_file = tmp_path("report.json");
        std::fs::write(&report_file, &json).unwrap();
        let o = exflow(&[
            "rules",
            "--site",
            &site.to_string_lossy(),
            "--report",
            &report_file.to_string_lossy(),
        ]);
        let _ = std::fs::remove_file(&report_file);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let nft = stdout(&o);
        for row in doc.split("<tr class=\"fix\">").skip(1) {
            let row = row.split("</tr>").next().unwrap();
            let code = row
                .split("<code")
                .nth(1)
                .and_then(|c| c.split_once('>'))
                .map(|(_, c)| c.split("</code>").next().unwrap())
                .unwrap_or_else(|| panic!("{name}: a fix row without a rule: {row}"));
            let rule = unescape(code);
            assert!(rule.contains(" accept comment \"exflow "), "{name}: {rule}");
            assert!(
                nft.lines().any(|l| l.trim() == rule),
                "{name}: the fix {rule:?} is not a rule of exflow rules --report:\n{nft}"
            );
        }
    }
    assert!(failed_seen >= 10, "the samples have failed flows");
    assert!(unexpected_seen >= 1, "the samples have unexpected flows");
    assert!(
        died_seen >= 10,
        "the firewall's captures say where flows died"
    );
}

/// Two services whose name and evidence carry `evil` (the report takes both as they come).
fn hostile_services(evil: &'static str) -> Vec<ServiceEntry> {
    vec![
        ServiceEntry {
            name: evil,
            evidence: "sni",
            attempts: 2,
            established: 0,
        },
        ServiceEntry {
            name: "owa",
            evidence: evil,
            attempts: 1,
            established: 1,
        },
    ]
}

/// A report whose every string tries to end an attribute, open a tag or load something.
#[test]
fn html_escapes_every_string_from_the_capture_and_the_site() {
    let evil = "\"><script>alert(1)</script><img src=http://x/y.png>'&\u{1b}[31m";
    let side = |zone: &'static str, role: Option<&'static str>, address: Option<&str>| Side {
        zone,
        role,
        address: address.map(str::to_string),
        via: address.map(str::to_string),
    };
    let entry = FlowEntry {
        role: "smtp-inbound".into(),
        purpose: evil.into(),
        proto: "tcp",
        port: 25,
        ports: "25".into(),
        src: side("internet", None, None),
        dst: side("internal", Some("mailbox"), Some(evil)),
        attempts: 3,
        established: 0,
        dropped: 3,
        refused: 0,
        rejected: 0,
        reset_midstream: 0,
        syn_retries: 6,
        one_sided: 0,
        ignored_resets: 0,
        mail_sessions: 0,
        mail_refused: 0,
        services: hostile_services(evil),
        handshake_ms: None,
        verdict: Verdict::Blocked,
        answered_by: None,
        icmp: vec![evil.into()],
        detail: evil.into(),
        family: Some("ipv4"),
        via: Some(Via { nat: evil.into() }),
        died_at: Some("firewall"),
        out_of_view: false,
        cannot_show: vec![],
        fix: None,
    };
    let report = Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "exflow",
            version: "0",
        },
        capture: CaptureFacts {
            files: vec![evil.into()],
            read_warnings: vec![evil.into()],
            ..CaptureFacts::default()
        },
        topology: Topology {
            inferred: true,
            profile: "mailbox",
            hosts: vec![TopologyHost {
                address: evil.into(),
                role: "mailbox",
            }],
            internal: vec![evil.into()],
            perimeter: vec![],
            reasons: vec![evil.into()],
            site_file: Some(evil.into()),
        },
        expected: vec![entry],
        unexpected: vec![Unexpected {
            proto: "tcp",
            port: 110,
            src: side("internet", None, Some(evil)),
            dst: side("internal", Some("mailbox"), Some(evil)),
            attempts: 1,
            established: 1,
            reason: "disabled-service",
            likely: false,
            verdict: Verdict::Ok,
            role: Some(evil.into()),
            first_ts: 0.0,
            example: Example {
                orig_h: evil.into(),
                orig_p: 1,
                resp_h: evil.into(),
                resp_p: 110,
                conn_state: "SF",
                history: evil.into(),
            },
            detail: evil.into(),
            services: hostile_services(evil),
        }],
        unsupported_restrictions: vec![],
        scans: vec![Scan {
            source: evil.into(),
            targets: vec![evil.into()],
            ports_probed: 100,
            open: vec![],
            closed: 100,
            filtered: 0,
            first_ts: 0.0,
            last_ts: 1.0,
        }],
        floods: vec![],
        latency: vec![],
        warnings: vec![evil.into()],
        interim: None,
        left_out: Default::default(),
        inputs: vec![],
        findings: vec![],
    };
    let cat = Catalogue::embedded().unwrap();
    let mut site = Site::new(exflow::classify::catalogue::Profile::Mailbox);
    site.add_host(HostRole::Mailbox, "198.51.100.10".parse().unwrap());
    let doc = html::render(&report, &site, cat);
    assert_self_contained("evil", &doc);
    for raw in ["<script", "<img", "\u{1b}"] {
        assert!(!doc.contains(raw), "{raw:?} reached the document");
    }
    assert!(doc.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img"));
    assert!(doc.contains("\\x1b[31m"), "control characters made visible");
    // The blocked flow still has its arrow and a fix line (which says why no rule can be
    // written for an address that is not one).
    assert_eq!(arrows(&doc, "flow verdict-blocked"), 1);
    assert_eq!(arrows(&doc, "flow unexpected"), 1);
    assert_eq!(count(&doc, "<tr class=\"fix\">"), 1);
    assert!(doc.contains("no allow rule can be written"), "{doc}");
    // The services: a "by service:" line in the expected and the unexpected row (they fared
    // differently), and the evidence lists each in full, escaped like the rest.
    assert_eq!(count(&doc, "by service: "), 2, "{doc}");
    assert!(
        doc.contains("<dt>By service</dt><dd>&quot;&gt;&lt;script&gt;"),
        "{doc}"
    );
    assert!(
        doc.contains(", by TLS server name: 0 of 2 handshakes completed<br>owa, by &quot;&gt;"),
        "{doc}"
    );
}

/// A browser, when one is installed: Debian's `chromium` (CI installs it).
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn run_chromium(browser: &Path, profile: &Path, args: &[String]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn chromium_renders_every_sample_with_its_arrows_and_leaves_a_screenshot() {
    let test = "chromium_renders_every_sample_with_its_arrows_and_leaves_a_screenshot";
    let Some(browser) = chromium() else {
        skip(test, "chromium is not installed (Debian package chromium)");
        return;
    };
    let shots = root().join("target/html-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tmp_path("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    for (name, capture, site) in samples() {
        let json = analyze(&capture, &site, "json");
        let report: Value = serde_json::from_str(&json).unwrap();
        let expected = report["expected"].as_array().unwrap();
        let doc = analyze(&capture, &site, "html");
        let page = shots.join(format!("{name}.html"));
        std::fs::write(&page, &doc).unwrap();
        let url = format!("file://{}", page.display());

        // One run: the DOM on standard output, the screenshot to its file.
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        let run = run_chromium(
            &browser,
            &profile,
            &[
                "--dump-dom".into(),
                format!("--screenshot={}", png.display()),
                "--window-size=1280,1600".into(),
                url,
            ],
        );
        assert!(run.status.success(), "{name}: {}", stderr(&run));
        let dom = stdout(&run);
        assert!(dom.contains("<svg"), "{name}: no drawing in the DOM");
        assert_eq!(
            count(&dom, "<g class=\"flow verdict-"),
            expected.len(),
            "{name}: the DOM's arrows"
        );
        for v in VERDICTS {
            let n = expected.iter().filter(|e| e["verdict"] == v).count();
            let class = format!("flow verdict-{}", v.replace('_', "-"));
            assert_eq!(arrows(&dom, &class), n, "{name}: the DOM's arrows of {v}");
        }
        assert!(
            !dom.to_ascii_lowercase().contains("<script"),
            "{name}: a script in the DOM"
        );
        let died = expected.iter().filter(|e| !e["died_at"].is_null()).count();
        assert_eq!(
            count(&dom, "<g class=\"died died-"),
            died,
            "{name}: died marks"
        );
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "{name}: no screenshot at {png:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&profile);
}

/// `live --format html` prints one document, the final report, however often the interval
/// would have refreshed a table.
#[test]
fn live_html_is_one_document_with_the_final_report() {
    if !crate::util::is_root() {
        skip(
            "live_html_is_one_document_with_the_final_report",
            "not root",
        );
        return;
    }
    let o = exflow(&[
        "live",
        "-i",
        "lo",
        "--duration",
        "2s",
        "--interval",
        "300ms",
        "--format",
        "html",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = stdout(&o);
    assert!(doc.starts_with("<!DOCTYPE html>"), "{doc}");
    assert_eq!(count(&doc, "<!DOCTYPE html>"), 1, "one document");
    assert!(doc.contains("final report (live)"), "{doc}");
    assert!(!doc.contains("interim"), "no interim report");
    assert_self_contained("live", &doc);
}
