//! Per-stage throughput and allocations per packet, over the samples held in memory:
//!
//! - `decode`: frame → packet;
//! - `flow update`: decoded packets through the copy filter and the flow table;
//! - `engine`: frame → decode → flow table → aggregator and `--flows` JSON lines (one thread);
//! - `analyze`: `pipeline::analyze` over the sample files given many times (read from the page
//!   cache), the three-thread pipeline `exflow analyze` runs.
//!
//! Plain timing loop, median of several rounds; run with `cargo bench`. Allocations are
//! counted by a counting global allocator over the measured rounds after a warm-up round
//! (steady state) and printed per packet. `tests/alloc.rs` asserts the hot path's zero.

#![allow(unsafe_code)] // the counting allocator only; the library forbids unsafe code

use exflow::decode::{decode, decode_into, Layers, Packet};
use exflow::flow::dedup::Dedup;
use exflow::flow::{ConnRecord, FlowConfig, FlowTable};
use exflow::pipeline::{self, Engine, Options};
use exflow::source::file::{read_files, SourceStats};
use exflow::source::{Frame, LinkType};
use exflow::time::{Duration, Timestamp};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Owned {
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
    bytes: Vec<u8>,
}

fn frame(f: &Owned, shift: i64) -> Frame<'_> {
    Frame {
        ts: Timestamp(f.ts.0 + shift),
        link: f.link,
        caplen: f.bytes.len() as u32,
        wire_len: f.wire_len,
        iface: 0,
        interfaces: 1,
        bytes: &f.bytes,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `round` (which handles `n` packets) once to warm up, then `ROUNDS` times; prints the
/// median rate and the allocations per packet over the measured rounds.
fn stage(name: &str, n: u64, mut round: impl FnMut(u32)) -> u64 {
    const ROUNDS: u32 = 7;
    round(0);
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut rates = vec![];
    for r in 1..=ROUNDS {
        let t = Instant::now();
        round(r);
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!(
        "{name:<22} {:>12.0} packets/s   {:>8.4} allocations/packet   ({n} packets a round, median of {ROUNDS})",
        median(rates),
        allocs as f64 / (n as f64 * f64::from(ROUNDS)),
    );
    allocs / u64::from(ROUNDS)
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
    // Repeat the frames so one round is long enough to time; each repetition an hour later
    // than the one before, so that its connections are new ones (the old ones expire).
    let reps = (200_000 / frames.len()).max(1) as i64;
    let n = frames.len() as u64 * reps as u64;
    let hour = Duration::from_secs(3600).0;
    let shift = |round: u32, rep: i64| (i64::from(round) * reps + rep) * hour;

    // Into one packet and one set of tunnel layers, reused, as the pipeline decodes.
    let mut layers = Layers::default();
    let mut pkt = Packet::EMPTY;
    let _ = stage("decode", n, |_| {
        for _ in 0..reps {
            for f in &frames {
                let _ = black_box(decode_into(&frame(f, 0), &mut pkt, &mut layers));
            }
        }
    });

    let packets: Vec<(Timestamp, Packet)> = frames
        .iter()
        .filter_map(|f| decode(&frame(f, 0)).ok().map(|p| (f.ts, p)))
        .collect();
    let mut table = FlowTable::new(FlowConfig::default());
    let mut dedup = Dedup::default();
    let mut ended = 0u64;
    let _ = stage("flow update", packets.len() as u64 * reps as u64, |round| {
        let mut sink = |_: &ConnRecord| ended += 1;
        for rep in 0..reps {
            let s = shift(round, rep);
            for (ts, p) in &packets {
                let ts = Timestamp(ts.0 + s);
                if !dedup.is_copy(ts, p) {
                    table.observe(ts, p, &mut sink);
                }
            }
        }
    });
    black_box(ended);

    let mut engine = match Engine::new(FlowConfig::default(), Some("/dev/null")) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bench: {e}");
            return;
        }
    };
    let _ = stage("engine (one thread)", n, |round| {
        for rep in 0..reps {
            let s = shift(round, rep);
            for f in &frames {
                engine.frame(&frame(f, s));
            }
        }
    });
    black_box(engine.finish(SourceStats::default()).ok());

    // The sample files given many times over, as `exflow analyze` reads them.
    let times = (200_000 / frames.len()).max(1);
    let opts = Options {
        files: (0..times).flat_map(|_| files.iter().cloned()).collect(),
        flows: Some("/dev/null".into()),
        ..Options::default()
    };
    let per_round = stage("analyze (three threads)", n, |_| {
        black_box(pipeline::analyze(&opts).ok());
    });
    println!(
        "  (analyze opens {} files a round: {:.1} allocations per file opened)",
        opts.files.len(),
        per_round as f64 / opts.files.len() as f64
    );
}
