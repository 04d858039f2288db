//! hostile_input tests (issue 18): captures built here, byte by byte, from the samples or
//! from scratch, that once hung a run, grew without bound, aborted it, or changed its verdicts
//! silently: timestamps at the edges, clock jumps, unbounded pcapng interfaces, thousands of
//! link types, rotated files given out of order, frames a filter cannot look at, zstd's long
//! windows. Each test is named after its finding; where a hang or growth is the failure, the
//! test measures it itself (against the same run without the hostile part, so that a slow
//! machine does not fail it).
use crate::util::{root, tmp_path};
use exflow::source::file::{read_files, SourceStats, MAX_INTERFACES};
use exflow::source::filter::Filter;
use exflow::source::Frame;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Generators

/// A frame: time in ns since the epoch, bytes, wire length.
#[derive(Clone)]
struct Rec {
    ts: i64,
    data: Vec<u8>,
    wire: u32,
}

/// The link type and records of a little-endian microsecond pcap (the samples).
fn read_pcap(path: &Path) -> (u32, Vec<Rec>) {
    let d = std::fs::read(path).unwrap();
    assert_eq!(&d[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "{}", path.display());
    let u32_at = |i: usize| u32::from_le_bytes(d[i..i + 4].try_into().unwrap());
    let link = u32_at(20);
    let mut at = 24;
    let mut out = vec![];
    while at + 16 <= d.len() {
        let (s, us, cap, wire) = (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12));
        let data = d[at + 16..at + 16 + cap as usize].to_vec();
        out.push(Rec {
            ts: i64::from(s) * 1_000_000_000 + i64::from(us) * 1000,
            data,
            wire,
        });
        at += 16 + cap as usize;
    }
    (link, out)
}

/// A little-endian microsecond pcap.
fn write_pcap(link: u32, recs: &[Rec]) -> Vec<u8> {
    let mut out = vec![];
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, link] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for r in recs {
        let (s, us) = (
            r.ts.div_euclid(1_000_000_000),
            r.ts.rem_euclid(1_000_000_000) / 1000,
        );
        for v in [s as u32, us as u32, r.data.len() as u32, r.wire] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&r.data);
    }
    out
}

/// A little-endian pcapng file, block by block.
#[derive(Default)]
struct Ng {
    out: Vec<u8>,
}

impl Ng {
    fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        self.out.extend_from_slice(&block_type.to_le_bytes());
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&len.to_le_bytes());
        self
    }

    fn shb(&mut self) -> &mut Self {
        let mut body = vec![];
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&[1, 0, 0, 0]);
        body.extend_from_slice(&[0xff; 8]);
        self.block(0x0A0D_0D0A, &body)
    }

    /// An interface: link type, and its `if_tsresol` / `if_tsoffset` when given.
    fn idb(&mut self, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> &mut Self {
        let mut body = vec![];
        body.extend_from_slice(&link.to_le_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&0u32.to_le_bytes());
        let mut opts = false;
        if let Some(r) = tsresol {
            body.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0]);
            opts = true;
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&[14, 0, 8, 0]);
            body.extend_from_slice(&o.to_le_bytes());
            opts = true;
        }
        if opts {
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.block(1, &body)
    }

    fn epb(&mut self, if_id: u32, ts: u64, data: &[u8], wire: u32) -> &mut Self {
        let mut body = vec![];
        for v in [if_id, (ts >> 32) as u32, ts as u32, data.len() as u32, wire] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(data);
        self.block(6, &body)
    }
}

/// Records as a pcapng of one interface with `if_tsoffset` (seconds); each record's time is
/// written in µs less the offset, capped as `stamp` decides.
fn to_pcapng(
    link: u32,
    recs: &[Rec],
    tsoffset: Option<i64>,
    stamp: impl Fn(usize, i64) -> u64,
) -> Vec<u8> {
    let mut ng = Ng::default();
    ng.shb().idb(link as u16, None, tsoffset);
    for (i, r) in recs.iter().enumerate() {
        ng.epb(0, stamp(i, r.ts / 1000), &r.data, r.wire);
    }
    ng.out
}

/// An Ethernet/IPv4/TCP frame from 192.0.2.(1 + n / 60000):sport to 198.51.100.7:443 (or
/// back), with `flags`.
fn tcp_frame(n: u32, back: bool, flags: u8) -> Vec<u8> {
    let client = [192, 0, 2, 1 + (n / 60_000) as u8];
    let server = [198, 51, 100, 7];
    let sport = 1024 + (n % 60_000) as u16;
    let (src, dst, sp, dp) = if back {
        (server, client, 443, sport)
    } else {
        (client, server, sport, 443)
    };
    let mut f = vec![0u8; 54];
    f[0..6].copy_from_slice(&[0, 1, 2, 3, 4, 5]);
    f[6..12].copy_from_slice(&[0, 1, 2, 3, 4, 6]);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sp.to_be_bytes());
    f[36..38].copy_from_slice(&dp.to_be_bytes());
    f[38..42].copy_from_slice(&(if back { 5000u32 } else { 1000 }).to_be_bytes());
    f[42..46].copy_from_slice(&(if back { 1001u32 } else { 0 }).to_be_bytes());
    f[46] = 0x50;
    f[47] = flags;
    f[48..50].copy_from_slice(&65535u16.to_be_bytes());
    f
}

/// `n` answered handshakes (SYN, SYN-ACK), 10 µs apart, from `t0` (ns).
fn handshakes(n: u32, t0: i64) -> Vec<Rec> {
    let mut out = vec![];
    for i in 0..n {
        for (k, (back, flags)) in [(false, 0x02), (true, 0x12)].into_iter().enumerate() {
            out.push(Rec {
                ts: t0 + i64::from(i) * 20_000 + k as i64 * 10_000,
                data: tcp_frame(i, back, flags),
                wire: 54,
            });
        }
    }
    out
}

const T0: i64 = 1_700_000_000_000_000_000;
const YEARS_10: i64 = 10 * 365 * 86_400 * 1_000_000_000;

fn sample(name: &str) -> (PathBuf, PathBuf) {
    let s = root().join("samples");
    (
        s.join(format!("{name}.pcap")),
        s.join(format!("{name}.site.toml")),
    )
}

fn put(name: &str, bytes: &[u8]) -> String {
    let p = tmp_path(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs `exflow ARGS`, killed after `limit` (then the test fails); stdout, stderr, time taken.
fn run_bounded(args: &[&str], limit: Duration) -> (Vec<u8>, String, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run exflow");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = err.read_to_end(&mut v);
        v
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let elapsed = start.elapsed();
            let (o, e) = (out_t.join().unwrap(), err_t.join().unwrap());
            let e = String::from_utf8_lossy(&e).into_owned();
            assert!(
                status.code().is_some_and(|c| c == 0 || c == 1),
                "exflow {args:?} ended with {status}: {e}"
            );
            return (o, e, elapsed);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("exflow {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The JSON report of `files` (with the site file, when given) and the time it took.
fn report(files: &[&str], site: Option<&Path>, extra: &[&str]) -> (Value, String, Duration) {
    let mut args = vec!["analyze"];
    args.extend_from_slice(files);
    let site_s;
    if let Some(s) = site {
        site_s = s.to_string_lossy().into_owned();
        args.extend_from_slice(&["--site", &site_s]);
    }
    args.extend_from_slice(&["--format", "json", "--seed", "1"]);
    args.extend_from_slice(extra);
    let (out, err, took) = run_bounded(&args, Duration::from_secs(300));
    let v: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    (v, err, took)
}

/// Each expected flow's role and verdict, and the connections tracked.
fn verdicts(r: &Value) -> (Vec<(String, String)>, u64) {
    let mut v: Vec<(String, String)> = r["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["role"].to_string(), e["verdict"].to_string()))
        .collect();
    v.sort();
    (v, r["capture"]["connections"].as_u64().unwrap())
}

fn anomaly(r: &Value, name: &str) -> u64 {
    r["capture"]["anomalies"][name].as_u64().unwrap_or(0)
}

fn warnings(r: &Value) -> String {
    r["warnings"].to_string()
}

// ---------------------------------------------------------------------------------------------
// Finding 1: timestamps

#[test]
fn one_timestamp_hangs_a_run() {
    // 30,000 connections; the middle packet stamped 0xFFFFFFFFFFFFFFFF µs. Before: the clock
    // saturated, every later packet swept the whole table (15,000 open connections) and ended
    // them all: quadratic, and every connection after it split.
    let recs = handshakes(30_000, T0);
    let mid = recs.len() / 2;
    let link = 1;
    let plain = put(
        "plain.pcapng",
        &to_pcapng(link, &recs, None, |_, us| us as u64),
    );
    let stray = put(
        "stray.pcapng",
        &to_pcapng(link, &recs, None, |i, us| {
            if i == mid {
                u64::MAX
            } else {
                us as u64
            }
        }),
    );
    let (base, _, t_base) = report(&[&plain], None, &[]);
    let (hit, err, t_hit) = report(&[&stray], None, &[]);
    assert!(
        t_hit < t_base * 4 + Duration::from_secs(3),
        "one stray timestamp: {t_hit:?} against {t_base:?} without it"
    );
    assert_eq!(verdicts(&hit), verdicts(&base));
    assert_eq!(
        anomaly(&hit, "timestamp_out_of_range"),
        1,
        "{}",
        hit["capture"]
    );
    assert!(err.contains("outside 1970 to 2116"), "{err}");
    // The capture's span is the real one, not 2^64 µs.
    assert_eq!(hit["capture"]["last_ts"], base["capture"]["last_ts"]);
}

#[test]
fn tsoffset_of_2_62_keeps_the_verdicts() {
    // Before: every packet at i64::MAX, every packet its own connection, "ok" became
    // "one-sided", no warning.
    let (pcap, site) = sample("exchange-healthy");
    let (link, recs) = read_pcap(&pcap);
    let (base, _, _) = report(&[pcap.to_str().unwrap()], Some(&site), &[]);
    let ng = put(
        "offset.pcapng",
        &to_pcapng(link, &recs, Some(1 << 62), |_, us| us as u64),
    );
    let (hit, err, _) = report(&[&ng], Some(&site), &[]);
    assert_eq!(verdicts(&hit), verdicts(&base));
    assert_eq!(
        anomaly(&hit, "timestamp_offset_ignored"),
        recs.len() as u64,
        "{}",
        hit["capture"]
    );
    assert!(err.contains("if_tsoffset"), "{err}");
}

#[test]
fn clock_jump_neither_splits_nor_freezes_connections() {
    let (pcap, site) = sample("exchange-healthy");
    let (link, recs) = read_pcap(&pcap);
    let (base, _, _) = report(&[pcap.to_str().unwrap()], Some(&site), &[]);
    let half = recs.len() / 2;
    // A lasting jump of +10 years halfway: before, every open connection was split in two.
    let jumped: Vec<Rec> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| Rec {
            ts: if i >= half { r.ts + YEARS_10 } else { r.ts },
            ..r.clone()
        })
        .collect();
    let p = put("jump.pcap", &write_pcap(link, &jumped));
    let (hit, _, _) = report(&[&p], Some(&site), &[]);
    assert_eq!(verdicts(&hit), verdicts(&base));
    assert_eq!(anomaly(&hit, "clock_jump_forward"), 1, "{}", hit["capture"]);
    assert!(
        warnings(&hit).contains("clock jumped"),
        "{}",
        hit["warnings"]
    );
    // One packet +10 years, the rest in place: before, the sweeps stopped (the clock stayed
    // 10 years ahead) and the capture spanned 10 years.
    let mut stray = recs.clone();
    stray[half].ts += YEARS_10;
    let p = put("stray-jump.pcap", &write_pcap(link, &stray));
    let (hit, _, _) = report(&[&p], Some(&site), &[]);
    assert_eq!(verdicts(&hit), verdicts(&base));
    assert_eq!(anomaly(&hit, "clock_jump_forward"), 1);
    assert_eq!(anomaly(&hit, "clock_jump_back"), 1);
    assert_eq!(hit["capture"]["last_ts"], base["capture"]["last_ts"]);
}

#[test]
fn clock_jump_does_not_freeze_expiry() {
    // A stray packet 40 days ahead (a jump), then 10 minutes of attempts that each
    // go quiet: they must still end by their idle timeout while the capture goes on, so the
    // table never holds them all (before: the clock stayed ahead and nothing expired).
    let mut recs = vec![];
    // One attempt (a lone SYN, ended after 120 s) every 200 ms for 10 minutes: about 600
    // open at once, 3,000 in all.
    let n = 3_000u32;
    for i in 0..n {
        recs.push(Rec {
            ts: T0 + i64::from(i) * 200_000_000,
            data: tcp_frame(i, false, 0x02),
            wire: 54,
        });
        if i == 1 {
            recs.push(Rec {
                ts: T0 + 40 * 86_400 * 1_000_000_000,
                data: tcp_frame(n + 1, false, 0x02),
                wire: 54,
            });
        }
    }
    let p = put("freeze.pcap", &write_pcap(1, &recs));
    let (hit, _, _) = report(&[&p], None, &["--max-flows", "1000"]);
    assert_eq!(
        hit["capture"]["evicted_flows"], 0,
        "connections were evicted: expiry stopped after the jump ({})",
        hit["capture"]
    );
}

#[test]
fn zero_and_backward_timestamps_are_counted() {
    let (pcap, site) = sample("exchange-healthy");
    let (link, mut recs) = read_pcap(&pcap);
    recs[5].ts = 0;
    let back = recs[7].ts - 3_000_000;
    recs[8].ts = back;
    let p = put("zero.pcap", &write_pcap(link, &recs));
    let (hit, err, _) = report(&[&p], Some(&site), &[]);
    assert_eq!(anomaly(&hit, "timestamp_zero"), 1, "{}", hit["capture"]);
    assert!(
        anomaly(&hit, "timestamp_backward") >= 1,
        "{}",
        hit["capture"]
    );
    assert!(err.contains("stamped 0"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Finding 2: pcapng interfaces

#[test]
fn pcapng_interfaces_are_bounded_per_section() {
    // 200,000 interface descriptions in one section, then packets on the first one and on one
    // past the bound; then a second section. Before: the file was reported corrupt at the
    // 1,025th interface and nothing after it was read (before that: memory grew with them).
    let frame = tcp_frame(1, false, 0x02);
    let mut ng = Ng::default();
    ng.shb();
    for _ in 0..200_000 {
        ng.idb(1, None, None);
    }
    ng.epb(0, (T0 / 1000) as u64, &frame, 54);
    ng.epb(150_000, (T0 / 1000) as u64 + 1, &frame, 54);
    ng.epb(0, (T0 / 1000) as u64 + 2, &frame, 54);
    ng.shb().idb(1, None, None);
    ng.epb(0, (T0 / 1000) as u64 + 3, &frame, 54);
    let p = put(
        "ifaces.pcapng.zst",
        &zstd::encode_all(&ng.out[..], 3).unwrap(),
    );
    let (stats, n) = read(std::slice::from_ref(&p), None);
    assert_eq!(n, 3);
    assert_eq!(stats.ignored_interfaces, 200_000 - MAX_INTERFACES as u64);
    assert_eq!(stats.frames_on_ignored_interfaces, 1);
    assert!(stats.interfaces.len() <= MAX_INTERFACES);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    let (hit, err, _) = report(&[&p], None, &[]);
    assert_eq!(anomaly(&hit, "frame_on_ignored_interface"), 1);
    assert!(
        err.contains("interface descriptions past the first"),
        "{err}"
    );
}

fn read(paths: &[String], filter: Option<&mut Filter>) -> (SourceStats, usize) {
    let mut n = 0;
    let stats = read_files(paths, filter, &mut |_: &Frame<'_>| n += 1).unwrap();
    (stats, n)
}

// ---------------------------------------------------------------------------------------------
// Finding 3: link types

#[test]
fn distinct_link_types_are_looked_up_not_scanned() {
    // 64 sections of 1,024 interfaces, each of its own link type, a frame on each: 65,535
    // link types. Before: a linear scan of the link types seen per frame (~1000x slower than
    // the same frames of one link type).
    let frame = tcp_frame(1, false, 0x02);
    let build = |distinct: bool| {
        let mut ng = Ng::default();
        let mut link = 1u32;
        for _ in 0..64 {
            ng.shb();
            for _ in 0..1024 {
                ng.idb(if distinct { link as u16 } else { 1 }, None, None);
                link += 1;
            }
            for i in 0..1024u32 {
                ng.epb(i, (T0 / 1000) as u64 + u64::from(link), &frame, 54);
            }
        }
        ng.out
    };
    let one = put("one-link.pcapng", &build(false));
    let many = put("many-links.pcapng", &build(true));
    let time = |p: &str| {
        let start = Instant::now();
        let (stats, n) = read(&[p.to_string()], None);
        (start.elapsed(), stats, n)
    };
    let (t_one, _, n_one) = time(&one);
    let (t_many, stats, n_many) = time(&many);
    assert_eq!(n_one, n_many);
    assert_eq!(stats.link_types.len(), 64 * 1024);
    assert!(
        t_many < t_one * 10 + Duration::from_secs(2),
        "65,536 link types: {t_many:?}, one link type: {t_one:?}"
    );
    // The whole run too (decoding and the report list the link types).
    let (_, _, t_run) = report(&[&many], None, &[]);
    let (_, _, t_run_one) = report(&[&one], None, &[]);
    assert!(
        t_run < t_run_one * 10 + Duration::from_secs(5),
        "whole run: {t_run:?} against {t_run_one:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 4: several files in time order

#[test]
fn rotated_files_are_read_in_time_order() {
    // A sample cut into 12 rotated files (x.pcap, x.pcap1, ... x.pcap11), given as a shell
    // glob sorts them: x.pcap x.pcap1 x.pcap10 x.pcap11 x.pcap2 ... Before: read in that
    // order, a false "flaky" or worse, no warning.
    let (pcap, site) = sample("exchange-healthy");
    let (link, recs) = read_pcap(&pcap);
    let (base, _, _) = report(&[pcap.to_str().unwrap()], Some(&site), &[]);
    let dir = tmp_path("rotated");
    std::fs::create_dir_all(&dir).unwrap();
    let per = recs.len().div_ceil(12);
    let mut names = vec![];
    for (i, chunk) in recs.chunks(per).enumerate() {
        let name = if i == 0 {
            "x.pcap".to_string()
        } else {
            format!("x.pcap{i}")
        };
        std::fs::write(dir.join(&name), write_pcap(link, chunk)).unwrap();
        names.push(name);
    }
    names.sort(); // the shell's glob order
    assert_ne!(names[2], "x.pcap2");
    let paths: Vec<String> = names
        .iter()
        .map(|n| dir.join(n).to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (hit, err, _) = report(&args, Some(&site), &[]);
    assert_eq!(verdicts(&hit), verdicts(&base));
    assert_eq!(hit["capture"]["reordered"], 0, "{}", hit["capture"]);
    assert!(err.contains("in the order of their first packets"), "{err}");
    // In time order already: no warning.
    let mut in_order = paths.clone();
    in_order.sort_by_key(|p| {
        let n = p.rsplit("pcap").next().unwrap();
        n.parse::<u32>().unwrap_or(0)
    });
    let args: Vec<&str> = in_order.iter().map(String::as_str).collect();
    let (_, err, _) = report(&args, Some(&site), &[]);
    assert!(!err.contains("order of their first packets"), "{err}");
    // Overlapping files are told.
    let a = put("overlap-a.pcap", &write_pcap(link, &recs[..per * 2]));
    let b = put("overlap-b.pcap", &write_pcap(link, &recs[per..]));
    let (_, err, _) = report(&[&a, &b], Some(&site), &[]);
    assert!(err.contains("overlap in time"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Finding 5: --filter and link types libpcap cannot filter

#[test]
fn filter_skips_frames_of_link_types_it_cannot_filter() {
    // An Ethernet interface and one of a link type libpcap does not know; before, the first
    // frame of the second aborted the run (exit 2).
    let frame = tcp_frame(1, false, 0x02);
    let mut ng = Ng::default();
    ng.shb().idb(1, None, None).idb(65_000, None, None);
    let us = (T0 / 1000) as u64;
    ng.epb(0, us, &frame, 54);
    ng.epb(1, us + 1, &frame, 54);
    ng.epb(1, us + 2, &frame, 54);
    ng.epb(0, us + 3, &tcp_frame(1, true, 0x12), 54);
    let p = put("unfilterable.pcapng", &ng.out);
    let mut filter = Filter::new("tcp port 443").unwrap();
    let (stats, n) = read(std::slice::from_ref(&p), Some(&mut filter));
    assert_eq!(n, 2);
    assert_eq!(stats.unfilterable, 2);
    let (hit, err, _) = report(&[&p], None, &["--filter", "tcp port 443"]);
    assert_eq!(anomaly(&hit, "link_type_not_filterable"), 2);
    assert_eq!(hit["capture"]["packets"], 2);
    assert!(err.contains("cannot be applied to"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Finding 6: zstd --long=31

/// `data` as one zstd frame that declares a 2 GiB window (as `zstd --long=31` writes for a
/// large file), in raw blocks.
fn zstd_window_31(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    out.push(0x00); // no checksum, no content size, not single-segment
    out.push((31 - 10) << 3); // window 2^31
    let chunks: Vec<&[u8]> = data.chunks(128 * 1024).collect();
    for (i, c) in chunks.iter().enumerate() {
        let last = u32::from(i + 1 == chunks.len());
        let header = ((c.len() as u32) << 3) | last; // raw block
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(c);
    }
    out
}

#[test]
fn zstd_long_31_captures_are_read() {
    let (pcap, site) = sample("exchange-healthy");
    let (base, _, _) = report(&[pcap.to_str().unwrap()], Some(&site), &[]);
    let p = put(
        "long.pcap.zst",
        &zstd_window_31(&std::fs::read(&pcap).unwrap()),
    );
    let (hit, _, _) = report(&[&p], Some(&site), &[]);
    assert_eq!(verdicts(&hit), verdicts(&base));
}

#[test]
fn non_utf8_file_names_are_read_and_printed_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let (pcap, _) = sample("exchange-healthy");
    let dir = tmp_path("non-utf8");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(std::ffi::OsStr::from_bytes(b"cap\xff\x1b[31m.pcap"));
    std::fs::copy(&pcap, &path).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .arg("analyze")
        .arg(&path)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = r["capture"]["files"].to_string();
    assert!(files.contains("cap\\\\xff"), "{files}");
    assert!(r["capture"]["packets"].as_u64().unwrap() > 0);
}
