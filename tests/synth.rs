//! The capture synthesizer (`examples/synth.rs`, compiled into this test through `#[path]`)
//! against exflow: at a small size, the report's counts summed over each role's expected
//! entries must equal what the synthesizer says it generated, exactly.

#[path = "../examples/synth.rs"]
#[allow(dead_code)]
mod generator;

use crate::util::{exflow, stderr, stdout, tmp_path};
use exflow::aggregate::stats::RunStats;
use exflow::aggregate::Aggregator;
use exflow::classify::catalogue::Catalogue;
use exflow::flow::FlowConfig;
use exflow::pipeline::{self, Engine, Options};
use exflow::report::build;
use exflow::source::file::read_files;
use exflow::source::Frame;
use generator::{Config, Truth};
use serde_json::Value;
use std::io::BufWriter;

/// The report's count names and the truth's.
const FIELDS: [&str; 8] = [
    "attempts",
    "established",
    "dropped",
    "refused",
    "rejected",
    "reset_midstream",
    "one_sided",
    "syn_retries",
];

fn truth_fields(c: &generator::Counts) -> [u64; 8] {
    [
        c.attempts,
        c.established,
        c.dropped,
        c.refused,
        c.rejected,
        c.reset,
        c.one_sided,
        c.syn_retries,
    ]
}

/// Writes the capture and site file, runs `exflow analyze --site --format json` on them.
fn analyze(cfg: &Config) -> (Truth, Value) {
    let pcap = tmp_path("synth.pcap");
    let site = tmp_path("synth.site.toml");
    let file = std::fs::File::create(&pcap).unwrap();
    let truth = generator::generate(cfg, BufWriter::new(file)).unwrap();
    std::fs::write(&site, generator::site_toml(cfg)).unwrap();
    let o = exflow(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--site",
        site.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let _ = std::fs::remove_file(&pcap);
    let _ = std::fs::remove_file(&site);
    assert!(o.status.success(), "exflow failed: {}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    (truth, report)
}

/// Sums of the report's counts over the expected entries of `role`.
fn report_sums(report: &Value, role: &str) -> [u64; 8] {
    let mut s = [0u64; 8];
    for e in report["expected"].as_array().unwrap() {
        if e["role"] == role {
            for (i, f) in FIELDS.iter().enumerate() {
                s[i] += e[f].as_u64().unwrap_or_else(|| panic!("{f} in {e}"));
            }
        }
    }
    s
}

/// Every role's sums equal the truth; nothing unexplained; the capture facts agree.
fn assert_report_matches(truth: &Truth, report: &Value) {
    let mut diffs = vec![];
    for (role, counts) in &truth.roles {
        let want = truth_fields(counts);
        let got = report_sums(report, role);
        for i in 0..FIELDS.len() {
            if want[i] != got[i] {
                diffs.push(format!(
                    "{role}: {} report {} truth {}",
                    FIELDS[i], got[i], want[i]
                ));
            }
        }
    }
    for e in report["expected"].as_array().unwrap() {
        let role = e["role"].as_str().unwrap();
        if truth.role(role).is_none() && e["attempts"].as_u64() != Some(0) {
            diffs.push(format!("{role}: not generated, but the report has {e}"));
        }
    }
    assert!(diffs.is_empty(), "report != truth:\n{}", diffs.join("\n"));
    assert_eq!(
        report["unexpected"],
        serde_json::json!([]),
        "unexpected flows"
    );
    assert_eq!(
        report["unsupported_restrictions"],
        serde_json::json!([]),
        "unsupported restrictions"
    );
    let cap = &report["capture"];
    assert_eq!(cap["packets"].as_u64(), Some(truth.packets));
    assert_eq!(
        cap["bytes"].as_u64(),
        Some(truth.bytes - 24 - 16 * truth.packets)
    );
    assert_eq!(cap["anomalies"], serde_json::json!({}));
    assert_eq!(cap["evicted_flows"].as_u64(), Some(0));
    assert_eq!(cap["duplicate_packets"].as_u64(), Some(0));
    match &truth.scan {
        None => assert_eq!(report["scans"], serde_json::json!([])),
        Some(s) => {
            let scans = report["scans"].as_array().unwrap();
            assert_eq!(scans.len(), 1, "{scans:?}");
            let r = &scans[0];
            assert_eq!(r["source"], s.source.to_string());
            assert_eq!(r["targets"], serde_json::json!([s.target.to_string()]));
            assert_eq!(r["ports_probed"].as_u64(), Some(s.ports_probed));
            assert_eq!(r["open"], serde_json::json!(s.open));
            assert_eq!(r["closed"].as_u64(), Some(s.closed));
            assert_eq!(r["filtered"].as_u64(), Some(s.filtered));
        }
    }
}

#[test]
fn synth_truth_equals_the_report_mailbox_site() {
    let cfg = Config {
        packets: 30_000,
        seed: 11,
        imap_pop: true,
        scan: true,
        ..Config::default()
    };
    let (truth, report) = analyze(&cfg);
    assert_eq!(truth.normal_packets, 30_000);
    // The capture is a troubled site: every kind of outcome is there to be counted.
    let all = truth.roles.iter().fold([0u64; 8], |mut acc, (_, c)| {
        for (a, x) in acc.iter_mut().zip(truth_fields(c)) {
            *a += x;
        }
        acc
    });
    assert!(all.iter().all(|&x| x > 0), "{:?}", truth.roles);
    assert_report_matches(&truth, &report);
}

#[test]
fn synth_truth_equals_the_report_edge_site_nanoseconds() {
    let cfg = Config {
        packets: 20_000,
        seed: 12,
        edge: true,
        nanos: true,
        ..Config::default()
    };
    let (truth, report) = analyze(&cfg);
    assert_eq!(report["topology"]["profile"], "edge");
    assert!(truth.role("edge-smtp-inbound").unwrap().attempts > 0);
    assert_report_matches(&truth, &report);
}

#[test]
fn synth_healthy_site_is_all_ok() {
    let cfg = Config {
        packets: 5_000,
        seed: 13,
        healthy: true,
        ..Config::default()
    };
    let (truth, report) = analyze(&cfg);
    assert_report_matches(&truth, &report);
    for e in report["expected"].as_array().unwrap() {
        let v = e["verdict"].as_str().unwrap();
        assert!(v == "ok" || v == "not_seen", "{e}");
    }
}

#[test]
fn synth_flood_is_named_and_kept_out_of_the_verdicts() {
    let cfg = Config {
        packets: 5_000,
        seed: 14,
        flood: 50_000,
        scan: true,
        ..Config::default()
    };
    let (truth, report) = analyze(&cfg);
    let flood = truth.flood.as_ref().unwrap();
    assert_eq!(truth.flood_syns, 50_000);
    let floods = report["floods"].as_array().unwrap();
    assert_eq!(floods.len(), 1, "{floods:?}");
    let f = &floods[0];
    assert_eq!(f["target"], flood.target.to_string());
    assert_eq!(f["port"].as_u64(), Some(u64::from(flood.port)));
    assert_eq!(f["sources"].as_u64(), Some(flood.sources), "{f}");
    assert_eq!(f["attempts"].as_u64(), Some(flood.attempts), "{f}");
    let warned = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap_or("").contains(&flood.target.to_string()));
    assert!(
        warned,
        "no warning names the target: {}",
        report["warnings"]
    );
    assert_report_matches(&truth, &report);
}

#[test]
fn synth_is_deterministic() {
    let cfg = Config {
        packets: 3_000,
        seed: 15,
        scan: true,
        ..Config::default()
    };
    let mut a = vec![];
    let mut b = vec![];
    let ta = generator::generate(&cfg, &mut a).unwrap();
    generator::generate(&cfg, &mut b).unwrap();
    assert!(a == b, "same seed, different bytes");
    assert_eq!(ta.bytes, a.len() as u64);
    let mut c = vec![];
    generator::generate(&Config { seed: 16, ..cfg }, &mut c).unwrap();
    assert!(a != c, "different seeds, same bytes");
}

/// The report `exflow analyze` would print, from what the pipeline returned (site inferred).
fn report_json(outcome: &RunStats, agg: &Aggregator) -> String {
    let cat = Catalogue::embedded().unwrap();
    let report = build::conclude(outcome, agg, None, None, cat);
    serde_json::to_string(&report).unwrap()
}

/// `pipeline::analyze` runs three threads (reading, tracking, writing), each fed batches by
/// the one before; the one-thread `Engine` does the same work in one loop. Both must give the
/// same `--flows` lines in the same order, the same counts and the same report. 70,000
/// packets: the packet batches (1,024) and the record batches (256) fill and turn over many
/// times, and the last, partial ones must arrive too.
#[test]
fn three_threads_give_what_one_thread_gives() {
    let cfg = Config {
        packets: 70_000,
        seed: 13,
        ..Config::default()
    };
    let pcap = tmp_path("threads.pcap");
    let file = std::fs::File::create(&pcap).unwrap();
    generator::generate(&cfg, BufWriter::new(file)).unwrap();
    let files = vec![pcap.to_str().unwrap().to_string()];
    let (three, one) = (tmp_path("threads-3.jsonl"), tmp_path("threads-1.jsonl"));

    let opts = Options {
        files: files.clone(),
        flows: Some(three.to_str().unwrap().to_string()),
        ..Options::default()
    };
    let (o3, a3, _) = pipeline::analyze(&opts).unwrap();

    let mut engine = Engine::new(FlowConfig::default(), one.to_str()).unwrap();
    let summary = read_files(&files, None, &mut |f: &Frame<'_>| engine.frame(f)).unwrap();
    let (o1, a1, _) = engine.finish(summary).unwrap();

    let (l3, l1) = (
        std::fs::read_to_string(&three).unwrap(),
        std::fs::read_to_string(&one).unwrap(),
    );
    for p in [&pcap, &three, &one] {
        let _ = std::fs::remove_file(p);
    }
    assert!(
        l1.lines().count() > 1_000,
        "{} connections",
        l1.lines().count()
    );
    assert!(
        l3 == l1,
        "--flows lines differ between three threads and one"
    );
    assert_eq!(format!("{o3:?}"), format!("{o1:?}"));
    assert_eq!(report_json(&o3, &a3), report_json(&o1, &a1));
}
