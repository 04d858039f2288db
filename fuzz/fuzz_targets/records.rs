//! Arbitrary bytes as a file of connection records, through every reader (Zeek conn.log TSV
//! and JSON lines, Suricata eve.json, exflow's `--flows` lines) and the kind detection; every
//! record read goes on to the aggregator and the cross-sensor merge, and back out as a
//! `--flows` line that must read again. No panic, whatever the bytes.

#![no_main]

use exflow::aggregate::Aggregator;
use exflow::flow::import::{self, merge::SensorMerge, Kind};
use exflow::flow::Sink;
use exflow::report::jsonl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = import::detect(data);
    for kind in [Kind::Zeek, Kind::Eve, Kind::Exflow] {
        let mut agg = Aggregator::default();
        let mut merge = SensorMerge::default();
        let mut n = 0u16;
        let (stats, _) = import::read(kind, data, &mut |rec| {
            n = n.wrapping_add(1);
            // Every other record from a second sensor: copies are folded into the held
            // record (combine), the rest reach the aggregator as they leave the window.
            if let Some(out) = merge.add(&rec, n % 2) {
                agg.conn(&out);
            }
            let mut line = Vec::new();
            jsonl::write_record(&mut line, &rec, (n % 2 == 0).then_some("smtp-inbound"))
                .expect("write to a Vec");
            // exflow's own line reads back (the trailing newline aside).
            let back = import::exflow::line(&line[..line.len() - 1]);
            assert!(back.is_ok(), "{}", String::from_utf8_lossy(&line));
        });
        for rec in merge.drain() {
            agg.conn(&rec);
        }
        assert!(stats.bad_lines.len() <= import::BAD_LINES_KEPT);
    }
});
