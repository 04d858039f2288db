//! Arbitrary bytes (lossily as UTF-8) as a site file through `Site::from_toml`; a site that
//! parses is then used to classify the connections of a sample capture (read once), and the
//! report is built and rendered.

#![no_main]

use exflow::aggregate::stats::RunStats;
use exflow::aggregate::Aggregator;
use exflow::classify::catalogue::Catalogue;
use exflow::classify::site::Site;
use exflow::flow::FlowConfig;
use exflow::pipeline::Engine;
use exflow::report::{build, markdown, table};
use exflow::source::file::read_files;
use exflow::source::Frame;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The connections of samples/exchange-healthy.pcap (read once per process).
fn sample() -> &'static (RunStats, Aggregator) {
    static SAMPLE: OnceLock<(RunStats, Aggregator)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../samples/exchange-healthy.pcap"
        );
        let mut engine = match Engine::new(FlowConfig::default(), None) {
            Ok(e) => e,
            Err(e) => panic!("engine: {e}"),
        };
        let summary = match read_files(&[path.to_string()], None, &mut |f: &Frame<'_>| {
            engine.frame(f)
        }) {
            Ok(s) => s,
            Err(e) => panic!("{path}: {e}"),
        };
        match engine.finish(summary) {
            Ok((stats, agg, _)) => (stats, agg),
            Err(e) => panic!("{path}: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(site) = Site::from_toml(&text, "fuzz.site.toml") else {
        return;
    };
    let Ok(cat) = Catalogue::embedded() else {
        panic!("the embedded catalogue does not load");
    };
    let (outcome, agg) = sample();
    let report = build::conclude(outcome, agg, Some(&site), None, cat);
    let text = table::render(&report, &table::TableOptions::default());
    assert!(!text.contains('\x1b'), "ESC in an uncoloured table");
    let md = markdown::render(&report);
    assert!(!md.contains('\x1b'), "ESC in the Markdown report");
    if let Err(e) = serde_json::to_string(&report) {
        panic!("the report does not serialise: {e}");
    }
});
