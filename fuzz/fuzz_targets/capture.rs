//! Arbitrary bytes as a whole capture file (pcap, pcapng, gzip- or zstd-compressed: the
//! magic decides) through the file source and the full pipeline: `read_files`, the `Engine`
//! (decode, dedup, flow table, aggregation), inference of the site, `finalize` against the
//! inferred site and against a sample site file, the report, and its three renderings.
//!
//! `read_files` takes paths, so each input is written to one temp file per process
//! (in /dev/shm when there is one).

#![no_main]

use exflow::classify::catalogue::Catalogue;
use exflow::classify::site::Site;
use exflow::flow::FlowConfig;
use exflow::pipeline::Engine;
use exflow::report::{build, markdown, table};
use exflow::source::file::read_files;
use exflow::source::Frame;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

mod common;

/// A site file from the samples, to classify against besides the inferred site.
fn sample_site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let text = include_str!("../../samples/exchange-healthy.site.toml");
        match Site::from_toml(text, "exchange-healthy.site.toml") {
            Ok(s) => s,
            Err(e) => panic!("the sample site file does not parse: {e}"),
        }
    })
}

fn render_all(report: &exflow::report::model::Report) {
    for color in [false, true] {
        let text = table::render(
            report,
            &table::TableOptions {
                color,
                ..table::TableOptions::default()
            },
        );
        if !color {
            assert!(!text.contains('\x1b'), "ESC in an uncoloured table");
        }
    }
    let md = markdown::render(report);
    assert!(!md.contains('\x1b'), "ESC in the Markdown report");
    let json = match serde_json::to_string(report) {
        Ok(j) => j,
        Err(e) => panic!("the report does not serialise: {e}"),
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
        panic!("the JSON report does not parse back: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let path = common::temp_path("capture");
    if std::fs::write(path, data).is_err() {
        return;
    }
    let Ok(cat) = Catalogue::embedded() else {
        panic!("the embedded catalogue does not load");
    };
    let cfg = FlowConfig {
        max_flows: 64,
        ..FlowConfig::default()
    };
    let Ok(mut engine) = Engine::new(cfg, None) else {
        return;
    };
    let files = [path.to_string()];
    let summary = match read_files(&files, None, &mut |f: &Frame<'_>| {
        assert_eq!(f.caplen as usize, f.bytes.len(), "caplen != captured bytes");
        assert!(f.wire_len >= f.caplen, "wire length below captured length");
        engine.frame(f)
    }) {
        Ok(s) => s,
        Err(_) => return,
    };
    let frames = summary.frames;
    let Ok((outcome, agg, _)) = engine.finish(summary) else {
        return;
    };
    assert_eq!(outcome.source.frames, frames);
    for site in [None, Some(sample_site())] {
        let report = build::conclude(&outcome, &agg, site, None, cat);
        assert_eq!(report.capture.packets, frames);
        render_all(&report);
    }
});
