//! `--format junit`: parsed back with a strict XML parser on every sample; the counts of
//! tests, failures and skipped equal the report's; strings that XML forbids are replaced;
//! `--fail-on` still decides the exit code.

use crate::util::{exflow, root, stderr, stdout, tmp_path};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "{v:?}");
    v
}

fn run(pcap: &Path, site: Option<&Path>, format: &str) -> std::process::Output {
    let mut args = vec![
        "analyze".to_owned(),
        pcap.to_string_lossy().into(),
        "--format".into(),
        format.into(),
    ];
    if let Some(s) = site {
        args.push("--site".into());
        args.push(s.to_string_lossy().into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    exflow(&argv)
}

const FAILED: [&str; 6] = [
    "blocked",
    "refused",
    "rejected",
    "flaky",
    "cut",
    "one_sided",
];

/// (tests, failures, skipped) from the JSON report.
fn expected_counts(r: &Value) -> (usize, usize, usize) {
    let list = |k: &str| r[k].as_array().map_or(0, Vec::len);
    let expected = r["expected"].as_array().unwrap();
    let verdict = |e: &Value| e["verdict"].as_str().unwrap().to_owned();
    let failed = expected
        .iter()
        .filter(|e| FAILED.contains(&verdict(e).as_str()))
        .count();
    let skipped = expected.iter().filter(|e| verdict(e) == "not_seen").count();
    let others =
        list("unexpected") + list("unsupported_restrictions") + list("scans") + list("floods");
    (expected.len() + others, failed + others, skipped)
}

#[test]
fn junit_counts_equal_the_reports_on_every_sample() {
    let mut failures_seen = 0;
    for pcap in samples() {
        let site = pcap.with_extension("site.toml");
        // The outage captures have no site file, by design.
        let given = site.is_file().then_some(site.as_path());
        for site in [given, None] {
            let json = run(&pcap, site, "json");
            assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
            let report: Value = serde_json::from_slice(&json.stdout).unwrap();
            let o = run(&pcap, site, "junit");
            assert_eq!(o.status.code(), Some(0), "{pcap:?}: {}", stderr(&o));
            let xml = stdout(&o);
            let doc = roxmltree::Document::parse(&xml)
                .unwrap_or_else(|e| panic!("{pcap:?}: not XML: {e}\n{xml}"));
            let suites: Vec<_> = doc
                .descendants()
                .filter(|n| n.has_tag_name("testsuite"))
                .collect();
            // The flows, then the findings.
            assert_eq!(suites.len(), 2, "{xml}");
            let suite = suites[0];
            let cases: Vec<_> = suite
                .children()
                .filter(|n| n.has_tag_name("testcase"))
                .collect();
            let has = |n: &roxmltree::Node, tag: &str| n.children().any(|c| c.has_tag_name(tag));
            let failures = cases.iter().filter(|c| has(c, "failure")).count();
            let skipped = cases.iter().filter(|c| has(c, "skipped")).count();
            let want = expected_counts(&report);
            assert_eq!((cases.len(), failures, skipped), want, "{pcap:?}\n{xml}");
            for (attr, n) in [("tests", want.0), ("failures", want.1), ("skipped", want.2)] {
                assert_eq!(suite.attribute(attr), Some(n.to_string().as_str()), "{xml}");
            }
            // Expected flows first, in the report's order, classname = role; a failure's
            // message is the detail sentence.
            for (e, c) in report["expected"].as_array().unwrap().iter().zip(&cases) {
                assert_eq!(c.attribute("classname"), e["role"].as_str(), "{xml}");
                let name = c.attribute("name").unwrap();
                let port = e["port"].as_u64().unwrap().to_string();
                assert!(name.contains(" → ") && name.contains(&port), "{name}");
                if let Some(f) = c.children().find(|n| n.has_tag_name("failure")) {
                    assert_eq!(f.attribute("message"), e["detail"].as_str(), "{xml}");
                    failures_seen += 1;
                }
            }
            // A failed case per finding, in the report's order: type = kind, message =
            // the detail sentence.
            let findings = report["findings"].as_array().cloned().unwrap_or_default();
            let (fsuite, fcases) = findings_suite(&doc);
            assert_eq!(fcases.len(), findings.len(), "{pcap:?}\n{xml}");
            let n = findings.len().to_string();
            for attr in ["tests", "failures"] {
                assert_eq!(fsuite.attribute(attr), Some(n.as_str()), "{xml}");
            }
            for (f, c) in findings.iter().zip(&fcases) {
                let failure = c.children().find(|n| n.has_tag_name("failure")).unwrap();
                assert_eq!(failure.attribute("type"), f["kind"].as_str(), "{xml}");
                assert_eq!(failure.attribute("message"), f["detail"].as_str(), "{xml}");
                assert_eq!(c.attribute("classname"), Some("findings"), "{xml}");
            }
            // The document's totals are both suites'.
            let root = doc.root_element();
            let total = want.0 + findings.len();
            assert_eq!(root.attribute("tests"), Some(total.to_string().as_str()));
            let failed = want.1 + findings.len();
            assert_eq!(
                root.attribute("failures"),
                Some(failed.to_string().as_str())
            );
        }
    }
    assert!(failures_seen > 5, "the samples have failed flows");
}

/// The `findings` suite and its test cases.
fn findings_suite<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> (roxmltree::Node<'a, 'i>, Vec<roxmltree::Node<'a, 'i>>) {
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("findings"))
        .expect("a findings suite");
    let cases = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    (suite, cases)
}

/// The failed finding cases' kinds (`type` of the failure).
fn failed_finding_kinds(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
    let (_, cases) = findings_suite(&doc);
    cases
        .iter()
        .filter_map(|c| c.children().find(|n| n.has_tag_name("failure")))
        .map(|f| f.attribute("type").unwrap().to_owned())
        .collect()
}

#[test]
fn esmtp_inspection_findings_fail_in_junit_and_a_healthy_capture_has_none() {
    // The truth is the lab script's: what its ESMTP-inspecting proxy did on port 25.
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("samples/esmtp-inspection.expect-findings.json"))
            .unwrap(),
    )
    .unwrap();
    let kinds: Vec<&str> = truth
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"starttls_stripped"), "{kinds:?}");
    let pcap = root().join("samples/esmtp-inspection.pcap");
    let site = root().join("samples/esmtp-inspection.site.toml");
    let o = run(&pcap, Some(&site), "junit");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let xml = stdout(&o);
    let failed = failed_finding_kinds(&xml);
    for k in &kinds {
        assert!(
            failed.iter().any(|f| f == k),
            "{k} not failed: {failed:?}\n{xml}"
        );
    }
    // The name says the kind and the flow: port 25 to the mailbox.
    assert!(
        xml.contains("name=\"starttls_stripped: internet → mailbox 198.51.100.10 25/tcp\""),
        "{xml}"
    );

    // payload-healthy: the script's truth lists no finding; none fails, with the site file
    // or without.
    let none: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("samples/payload-healthy.expect-findings.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(none, serde_json::json!([]));
    let pcap = root().join("samples/payload-healthy.pcap");
    let site = root().join("samples/payload-healthy.site.toml");
    for site in [Some(site.as_path()), None] {
        let o = run(&pcap, site, "junit");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let xml = stdout(&o);
        assert_eq!(failed_finding_kinds(&xml), Vec::<String>::new(), "{xml}");
    }
}

#[test]
fn junit_escapes_what_xml_forbids_and_fail_on_keeps_the_exit_code() {
    let pcap = root().join("samples/submission-refused.pcap");
    let site = root().join("samples/submission-refused.site.toml");
    // A capture file name with markup, quotes, a control character and a newline.
    let odd = tmp_path("a<b>&\"c'\u{1}\u{1b}[31m\nd.pcap");
    std::fs::copy(&pcap, &odd).unwrap();
    let o = run(&odd, Some(&site), "junit");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let xml = stdout(&o);
    assert!(!xml.contains('\u{1}') && !xml.contains('\u{1b}'), "{xml:?}");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let capture = doc
        .descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("capture"))
        .and_then(|n| n.attribute("value"))
        .unwrap();
    assert!(
        capture.ends_with("a<b>&\"c'\\x01\\x1b[31m\nd.pcap"),
        "{capture:?}"
    );
    // --fail-on decides the exit code, the XML is printed all the same.
    let mut args = vec![
        "analyze",
        pcap.to_str().unwrap(),
        "--site",
        site.to_str().unwrap(),
        "--format",
        "junit",
    ];
    let ok = exflow(&args);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    args.extend(["--fail-on", "failed"]);
    let failed = exflow(&args);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert_eq!(stdout(&failed), stdout(&ok));
    assert!(stdout(&failed).contains("<failure type=\"refused\""));
}

#[test]
fn junit_renders_every_kind_of_case_from_the_model() {
    use exflow::report::junit;
    use exflow::report::model::*;
    let side = |zone, role, address: Option<&str>| Side {
        zone,
        role,
        address: address.map(str::to_owned),
        via: None,
    };
    let entry = |role: &str, verdict, detail: &str| FlowEntry {
        role: role.into(),
        purpose: "p".into(),
        proto: "tcp",
        port: 25,
        ports: "25".into(),
        src: side("internet", None, None),
        dst: side("internal", Some("mailbox"), Some("198.51.100.10")),
        attempts: 1,
        established: 0,
        dropped: 1,
        refused: 0,
        rejected: 0,
        reset_midstream: 0,
        syn_retries: 2,
        one_sided: 0,
        ignored_resets: 0,
        mail_sessions: 0,
        mail_refused: 0,
        services: vec![],
        handshake_ms: None,
        verdict,
        answered_by: None,
        icmp: vec![],
        detail: detail.into(),
        family: None,
        out_of_view: false,
        via: None,
        died_at: None,
        cannot_show: vec![],
        fix: None,
    };
    let example = Example {
        orig_h: "203.0.113.9".into(),
        orig_p: 40000,
        resp_h: "198.51.100.10".into(),
        resp_p: 110,
        conn_state: "SF",
        history: "ShADadFf".into(),
    };
    let report = Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "exflow",
            version: "0",
        },
        capture: CaptureFacts::default(),
        topology: Topology {
            inferred: false,
            profile: "mailbox",
            hosts: vec![],
            internal: vec![],
            perimeter: vec![],
            reasons: vec![],
            site_file: Some("s\u{0}.toml".into()),
        },
        expected: vec![
            entry(
                "smtp-inbound",
                Verdict::Blocked,
                "dropped <all> & \"quiet\"\u{7}\u{fffe}",
            ),
            entry("smtp-inbound", Verdict::Ok, ""),
            entry("smtp-inbound", Verdict::NotSeen, "no attempt"),
            entry("smtp-inbound", Verdict::OneSided, "one direction only"),
        ],
        unexpected: vec![Unexpected {
            proto: "tcp",
            port: 110,
            src: side("internet", None, Some("203.0.113.9")),
            dst: side("internal", Some("mailbox"), Some("198.51.100.10")),
            attempts: 3,
            established: 3,
            reason: "disabled-service",
            likely: false,
            verdict: Verdict::Ok,
            role: Some("pop3".into()),
            first_ts: 0.0,
            example: example.clone(),
            detail: "POP3 is off but answered".into(),
            services: vec![],
        }],
        unsupported_restrictions: vec![entry("exchange-dc-tcp", Verdict::Blocked, "")],
        scans: vec![Scan {
            source: "203.0.113.66".into(),
            targets: vec!["198.51.100.10".into()],
            ports_probed: 100,
            open: vec![25],
            closed: 90,
            filtered: 9,
            first_ts: 0.0,
            last_ts: 1.0,
        }],
        floods: vec![Flood {
            target: "198.51.100.10".into(),
            proto: "tcp",
            port: 443,
            sources: 500,
            attempts: 600,
            first_ts: 0.0,
            last_ts: 1.0,
        }],
        latency: vec![],
        warnings: vec![],
        interim: None,
        left_out: Default::default(),
        inputs: vec![],
        findings: vec![Finding {
            kind: "tls_blocked_by_name",
            proto: "tcp",
            port: 443,
            src: side("internet", None, None),
            dst: side("internal", Some("mailbox"), Some("198.51.100.10")),
            count: 2,
            by: "firewall",
            // A server name from the wire, with markup, a control character and a bidi
            // override in it.
            detail: "reset after a ClientHello for <a&b>\u{1b}\u{202e}moc.evil".into(),
            example,
            sni: Some("a\u{202e}b".into()),
            alert: None,
            code: None,
            text: None,
            command: None,
            banner: None,
            passing_sni: vec!["mail.example.net".into()],
            idle_s_min: None,
            timeout_s: None,
            idle_s_killed: None,
            timeout_snapped: None,
            gaps_survived: None,
            gaps_reset: None,
            gaps_unanswered: None,
            gaps_reconnected: None,
        }],
    };
    assert_eq!(junit::counts(&report), (9, 7, 1));
    let xml = junit::render(&report);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let kinds: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| {
            let outcome = c
                .children()
                .find(|n| n.is_element())
                .map_or("passed", |n| n.tag_name().name());
            (c.attribute("classname").unwrap(), outcome)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("smtp-inbound", "failure"),
            ("smtp-inbound", "passed"),
            ("smtp-inbound", "skipped"),
            ("smtp-inbound", "failure"),
            ("unexpected", "failure"),
            ("exchange-dc-tcp", "failure"),
            ("scan", "failure"),
            ("flood", "failure"),
            ("findings", "failure"),
        ]
    );
    let (findings, fcases) = findings_suite(&doc);
    assert_eq!(fcases.len(), 1);
    assert_eq!(findings.attribute("failures"), Some("1"));
    assert_eq!(doc.root_element().attribute("tests"), Some("9"));
    let f = fcases[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(f.attribute("type"), Some("tls_blocked_by_name"));
    assert_eq!(
        f.attribute("message"),
        Some("reset after a ClientHello for <a&b>\\x1b\\u{202e}moc.evil")
    );
    assert!(
        !xml.contains('\u{202e}') && !xml.contains('\u{1b}'),
        "{xml:?}"
    );
    let text = f.text().unwrap();
    assert!(text.contains("server name: a\\u{202e}b"), "{text}");
    assert!(
        text.contains("names that passed: mail.example.net"),
        "{text}"
    );
    assert_eq!(
        cases[0].attribute("name"),
        Some("internet → mailbox 198.51.100.10 25/tcp")
    );
    let failure = cases[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("dropped <all> & \"quiet\"\\x07\\u{fffe}")
    );
    assert_eq!(failure.attribute("type"), Some("blocked"));
    assert!(xml.contains("s\\x00.toml"), "{xml}");
}
