//! Per-stage throughput over the samples held in memory: decode only, and decode + flow
//! update (the hot path). Plain timing loop, median of several rounds; run with
//! `cargo bench`. Allocation counts are checked by `tests/alloc.rs` (a count, not a timing).

use exflow::decode::decode;
use exflow::flow::{ConnRecord, FlowConfig, FlowTable};
use exflow::source::file::read_files;
use exflow::source::{Frame, LinkType};
use exflow::time::Timestamp;
use std::hint::black_box;
use std::time::Instant;

struct Owned {
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
    bytes: Vec<u8>,
}

fn frame(f: &Owned) -> Frame<'_> {
    Frame {
        ts: f.ts,
        link: f.link,
        caplen: f.bytes.len() as u32,
        wire_len: f.wire_len,
        bytes: &f.bytes,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
                .map(|p| p.to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut frames = vec![];
    if let Err(e) = read_files(&files, None, &mut |f: &Frame<'_>| {
        frames.push(Owned {
            ts: f.ts,
            link: f.link,
            wire_len: f.wire_len,
            bytes: f.bytes.to_vec(),
        })
    }) {
        eprintln!("bench: cannot read samples: {e}");
        return;
    }
    if frames.is_empty() {
        eprintln!("bench: no samples");
        return;
    }
    // Repeat the frames so one round is long enough to time.
    let reps = (200_000 / frames.len()).max(1);
    let n = frames.len() * reps;

    let mut decode_rates = vec![];
    let mut pipeline_rates = vec![];
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..reps {
            for f in &frames {
                let _ = black_box(decode(&frame(f)));
            }
        }
        decode_rates.push(n as f64 / t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut ended = 0u64;
        let mut sink = |_: &ConnRecord| ended += 1;
        for _ in 0..reps {
            // A fresh table each repetition: the same connections again, as new flows.
            let mut table = FlowTable::new(FlowConfig::default());
            for f in &frames {
                let fr = frame(f);
                if let Ok(p) = decode(&fr) {
                    table.observe(fr.ts, &p, &mut sink);
                }
            }
            table.finish(&mut sink);
        }
        black_box(ended);
        pipeline_rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "decode:               {:>12.0} packets/s (median of 7, {n} packets a round)",
        median(decode_rates)
    );
    println!(
        "decode + flow update: {:>12.0} packets/s (median of 7)",
        median(pipeline_rates)
    );
}
