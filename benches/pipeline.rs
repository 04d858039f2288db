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
                if dedup.is_copy(ts, p) {
                    table.observe_copy(ts, p);
                } else {
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

    // The same with a site file: each finished connection's `role` classified for its
    // `--flows` line (on the writing thread in `analyze`; here on the one thread).
    roles(&frames, &files, n, reps, &shift);

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

    records();
}

/// `--flows` lines' `role`: the engine with the samples' site (exchange-healthy's), and the
/// classification alone per finished connection (time and allocations per connection).
fn roles(frames: &[Owned], files: &[String], n: u64, reps: i64, shift: &dyn Fn(u32, i64) -> i64) {
    let site_file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/exchange-healthy.site.toml"
    );
    let (Ok(site), Ok(catalogue)) = (
        exflow::classify::site::Site::load(std::path::Path::new(site_file)),
        exflow::classify::catalogue::Catalogue::embedded(),
    ) else {
        eprintln!("bench: cannot read {site_file}");
        return;
    };
    let roles = pipeline::Roles { site, catalogue };
    let Ok(mut engine) = Engine::new(FlowConfig::default(), Some("/dev/null")) else {
        return;
    };
    engine.set_roles(Some(roles.clone()));
    let _ = stage("engine, --site roles", n, |round| {
        for rep in 0..reps {
            let s = shift(round, rep);
            for f in frames {
                engine.frame(&frame(f, s));
            }
        }
    });
    black_box(engine.finish(SourceStats::default()).ok());

    // Every finished connection of the samples, classified many times over.
    let mut records = vec![];
    let mut engine_free = FlowTable::new(FlowConfig::default());
    let mut sink = |r: &ConnRecord| records.push(r.clone());
    for f in frames {
        if let Ok(p) = decode(&frame(f, 0)) {
            engine_free.observe(f.ts, &p, &mut sink);
        }
    }
    engine_free.finish(&mut sink);
    if records.is_empty() {
        return;
    }
    let times = (1_000_000 / records.len()).max(1);
    let calls = (records.len() * times) as f64;
    let _ = roles.of(&records[0]);
    let before = ALLOCS.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut named = 0u64;
    for _ in 0..times {
        for r in &records {
            named += u64::from(black_box(roles.of(black_box(r))).is_some());
        }
    }
    let took = start.elapsed().as_secs_f64();
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!(
        "{:<22} {:>12.0} ns/connection  {:>8.4} allocations/connection   ({} connections of {} files, {:.0}% with a role)",
        "role (classify)",
        took * 1e9 / calls,
        allocs as f64 / calls,
        records.len(),
        files.len(),
        named as f64 * 100.0 / calls
    );
}

/// Connection records: the readers over generated logs held in memory (Zeek conn.log TSV and
/// JSON lines, eve.json flow events, exflow's own lines), each record into the aggregator.
fn records() {
    use exflow::aggregate::Aggregator;
    use exflow::flow::import::{self, Kind};
    use exflow::flow::Sink;
    const N: u64 = 200_000;
    let states = [
        ("SF", "ShADadFf", 10, 8, "1b", "1b"),
        ("S0", "S", 3, 0, "02", "00"),
        ("REJ", "Sr", 1, 1, "02", "14"),
        ("RSTR", "ShADadr", 6, 5, "1a", "1e"),
    ];
    let mut tsv = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
         #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t\
         orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t\
         orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n",
    );
    let (mut json, mut eve) = (String::new(), String::new());
    for i in 0..N {
        let (st, h, op, rp, fts, ftc) = states[(i % 37 % 4) as usize];
        let t = 1_700_000_000.0 + i as f64 * 0.0005;
        let (a, b, port) = (
            i >> 8 & 255,
            i & 255,
            [25, 443, 80, 587, 993][(i % 5) as usize],
        );
        tsv.push_str(&format!(
            "{t:.6}\tC{i:017}\t203.0.{a}.{b}\t{}\t192.0.2.10\t{port}\ttcp\t-\t1.5\t100\t2000\t\
             {st}\tF\tT\t0\t{h}\t{op}\t{}\t{rp}\t{}\t-\n",
            1024 + i % 60000,
            op * 60,
            rp * 60
        ));
        json.push_str(&format!(
            "{{\"ts\":{t:.6},\"uid\":\"C{i:017}\",\"id.orig_h\":\"203.0.{a}.{b}\",\"id.orig_p\":{},\
             \"id.resp_h\":\"192.0.2.10\",\"id.resp_p\":{port},\"proto\":\"tcp\",\"duration\":1.5,\
             \"orig_bytes\":100,\"resp_bytes\":2000,\"conn_state\":\"{st}\",\"history\":\"{h}\",\
             \"orig_pkts\":{op},\"resp_pkts\":{rp}}}\n",
            1024 + i % 60000
        ));
        eve.push_str(&format!(
            "{{\"timestamp\":\"2023-11-14T22:13:20.000000+0000\",\"flow_id\":{i},\"event_type\":\"flow\",\
             \"src_ip\":\"203.0.{a}.{b}\",\"src_port\":{},\"dest_ip\":\"192.0.2.10\",\"dest_port\":{port},\
             \"proto\":\"TCP\",\"flow\":{{\"pkts_toserver\":{op},\"pkts_toclient\":{rp},\
             \"bytes_toserver\":600,\"bytes_toclient\":480,\"start\":\"2023-11-14T22:13:20.000000+0000\",\
             \"end\":\"2023-11-14T22:13:21.500000+0000\",\"age\":1,\"state\":\"closed\",\
             \"reason\":\"timeout\",\"alerted\":false}},\"tcp\":{{\"tcp_flags\":\"1f\",\
             \"tcp_flags_ts\":\"{fts}\",\"tcp_flags_tc\":\"{ftc}\"}}}}\n",
            1024 + i % 60000
        ));
    }
    let mut lines = Vec::new();
    let _ = import::read(Kind::Zeek, tsv.as_bytes(), &mut |r| {
        let _ = exflow::report::jsonl::write_record(&mut lines, &r, None);
    });
    for (name, kind, text) in [
        ("conn.log TSV", Kind::Zeek, tsv.as_bytes()),
        ("conn.log JSON", Kind::Zeek, json.as_bytes()),
        ("eve.json flow", Kind::Eve, eve.as_bytes()),
        ("exflow --flows", Kind::Exflow, &lines[..]),
    ] {
        let mb = text.len() as f64 / 1e6;
        let n = stage_records(name, N, mb, || {
            let mut agg = Aggregator::default();
            let (stats, _) = import::read(kind, text, &mut |r| agg.conn(&r));
            black_box(agg);
            stats.records
        });
        assert_eq!(n, N, "{name}");
    }
}

/// Like [`stage`], in records per second and MB per second.
fn stage_records(name: &str, n: u64, mb: f64, mut round: impl FnMut() -> u64) -> u64 {
    const ROUNDS: u32 = 5;
    let got = round();
    let mut secs = vec![];
    for _ in 0..ROUNDS {
        let t = Instant::now();
        black_box(round());
        secs.push(t.elapsed().as_secs_f64());
    }
    let s = median(secs);
    println!(
        "{name:<22} {:>12.0} records/s   {:>8.1} MB/s   ({n} records a round, median of {ROUNDS})",
        n as f64 / s,
        mb / s
    );
    got
}
