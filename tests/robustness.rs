//! robustness tests: hostile and broken input (issue 7).
//!
//! - A corruption sweep over every sample capture, through the binary: bytes flipped, files cut
//!   at random offsets, record lengths larger than the file, snap lengths of 0 and 2^32−1, and
//!   pcapng copies of the samples with a block of a bad length. exflow must exit 0 or 2 (never
//!   a panic, never a signal), within a time bound, and a cut file must still give the report
//!   of every record before the cut.
//! - The same mutations, thousands of them, in-process through `read_files`, the `Engine` and
//!   the report (a panic fails the test: nothing is caught).
//! - A flow-table stress: far more distinct flows than the table's cap, with legitimate
//!   connections interleaved, whose records must come out as they do without the flood.
//! - Output safety: file names and site-file text full of terminal control sequences never
//!   reach the terminal raw, and the JSON report stays valid.
//!
//! Random choices come from a fixed-seed xorshift generator: every run tries the same variants.

use crate::util;
use exflow::classify::catalogue::Catalogue;
use exflow::decode::{Packet, TcpFlags};
use exflow::flow::{ConnRecord, ConnState, EndReason, FlowConfig, FlowTable};
use exflow::pipeline::Engine;
use exflow::report::{build, markdown, table};
use exflow::source::file::read_files;
use exflow::source::Frame;
use exflow::time::Timestamp;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers

/// xorshift64*: a fixed-seed generator, no crate needed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// The sample captures (all legacy pcap).
fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(util::root().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no sample captures");
    v
}

/// A legacy pcap file split into its records.
struct Pcap {
    bytes: Vec<u8>,
    big_endian: bool,
    /// (offset of the record header, captured length) of every record.
    records: Vec<(usize, usize)>,
}

impl Pcap {
    fn parse(bytes: Vec<u8>) -> Pcap {
        let big_endian = match bytes[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
            _ => panic!("not a legacy pcap"),
        };
        let mut records = vec![];
        let mut off = 24;
        while off + 16 <= bytes.len() {
            let caplen = u32_at(&bytes, off + 8, big_endian) as usize;
            assert!(
                off + 16 + caplen <= bytes.len(),
                "sample cut inside a record"
            );
            records.push((off, caplen));
            off += 16 + caplen;
        }
        assert_eq!(off, bytes.len(), "trailing bytes in a sample");
        Pcap {
            bytes,
            big_endian,
            records,
        }
    }

    fn link(&self) -> u32 {
        u32_at(&self.bytes, 20, self.big_endian)
    }

    /// Records wholly inside the first `len` bytes.
    fn complete_before(&self, len: usize) -> usize {
        self.records
            .iter()
            .filter(|&&(off, cap)| off + 16 + cap <= len)
            .count()
    }

    /// Whether `len` falls on a record boundary (or the end of the file header).
    fn is_boundary(&self, len: usize) -> bool {
        len == 24 || self.records.iter().any(|&(off, cap)| off + 16 + cap == len)
    }

    fn set_u32(bytes: &mut [u8], at: usize, v: u32, big_endian: bool) {
        let b = if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        bytes[at..at + 4].copy_from_slice(&b);
    }

    /// The same capture as pcapng (one section, one interface, one EPB per record), in the
    /// given byte order, and the offset of every EPB.
    fn to_pcapng(&self, big_endian: bool) -> (Vec<u8>, Vec<usize>) {
        fn block(out: &mut Vec<u8>, btype: u32, body: &[u8], be: bool) {
            let pad = (4 - body.len() % 4) % 4;
            let len = (12 + body.len() + pad) as u32;
            let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            out.extend_from_slice(&w(btype));
            out.extend_from_slice(&w(len));
            out.extend_from_slice(body);
            out.extend(std::iter::repeat_n(0u8, pad));
            out.extend_from_slice(&w(len));
        }
        let be = big_endian;
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = vec![];
        let mut shb = w32(0x1A2B_3C4D).to_vec();
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&[0xff; 8]); // section length unknown
        block(&mut out, 0x0A0D_0D0A, &shb, be);
        let mut idb = w16(self.link() as u16).to_vec();
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w32(262_144));
        block(&mut out, 1, &idb, be);
        let mut epbs = vec![];
        for &(off, cap) in &self.records {
            let h = &self.bytes[off..off + 16];
            let sec = u64::from(u32_at(h, 0, self.big_endian));
            let usec = u64::from(u32_at(h, 4, self.big_endian));
            let wire = u32_at(h, 12, self.big_endian);
            let t = sec * 1_000_000 + usec;
            let mut epb = w32(0).to_vec();
            epb.extend_from_slice(&w32((t >> 32) as u32));
            epb.extend_from_slice(&w32(t as u32));
            epb.extend_from_slice(&w32(cap as u32));
            epb.extend_from_slice(&w32(wire));
            epb.extend_from_slice(&self.bytes[off + 16..off + 16 + cap]);
            epbs.push(out.len());
            block(&mut out, 6, &epb, be);
        }
        (out, epbs)
    }
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// What a variant must give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Exit 0 or 2; with 0, a valid JSON report.
    Survive,
    /// Exit 0 with a report of exactly this many packets (what came before the damage).
    Packets(u64),
    /// As `Packets`, and a read warning (the file ended inside a record or block).
    PacketsWarned(u64),
}

struct Variant {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

/// The damaged variants of one sample.
fn variants_of(path: &Path, rng: &mut Rng) -> Vec<Variant> {
    let stem = path.file_stem().unwrap().to_string_lossy().to_string();
    let pcap = Pcap::parse(std::fs::read(path).unwrap());
    let all = pcap.records.len() as u64;
    let len = pcap.bytes.len();
    let be = pcap.big_endian;
    let mut out = vec![];
    let mut add = |name: String, bytes: Vec<u8>, expect: Expect| {
        out.push(Variant {
            name: format!("{stem}: {name}"),
            bytes,
            expect,
        })
    };

    // Random bytes flipped: 1, 4 or 32 of them, anywhere (the header too).
    for n in [1usize, 1, 4, 4, 32, 32] {
        let mut b = pcap.bytes.clone();
        let mut at = vec![];
        for _ in 0..n {
            let i = rng.below(len);
            b[i] ^= rng.byte() | 1;
            at.push(i);
        }
        add(format!("{n} bytes flipped at {at:?}"), b, Expect::Survive);
    }
    // Cut at random offsets: inside the file header (an error), then after the first record.
    let cut = rng.below(24);
    add(
        format!("cut at {cut} (in the file header)"),
        pcap.bytes[..cut].to_vec(),
        Expect::Survive,
    );
    let first_end = pcap.records[0].0 + 16 + pcap.records[0].1;
    for _ in 0..5 {
        let cut = first_end + rng.below(len - first_end);
        let n = pcap.complete_before(cut) as u64;
        let expect = if pcap.is_boundary(cut) {
            Expect::Packets(n)
        } else {
            Expect::PacketsWarned(n)
        };
        add(format!("cut at {cut}"), pcap.bytes[..cut].to_vec(), expect);
    }
    // A record's captured length larger than the file: reading stops before it.
    for big in [
        len as u32 + 1 + rng.below(1000) as u32,
        0x7fff_ffff,
        u32::MAX,
    ] {
        let i = rng.below(pcap.records.len());
        let mut b = pcap.bytes.clone();
        Pcap::set_u32(&mut b, pcap.records[i].0 + 8, big, be);
        add(
            format!("record {i} claims {big} captured bytes"),
            b,
            Expect::PacketsWarned(i as u64),
        );
    }
    // A record's original length larger than the file: a snap-length cut, nothing lost.
    {
        let i = rng.below(pcap.records.len());
        let mut b = pcap.bytes.clone();
        Pcap::set_u32(&mut b, pcap.records[i].0 + 12, u32::MAX, be);
        add(
            format!("record {i} claims {} bytes on the wire", u32::MAX),
            b,
            Expect::Packets(all),
        );
    }
    // Snap lengths 0 and 2^32-1 in the file header: advisory, nothing lost.
    for snap in [0, u32::MAX] {
        let mut b = pcap.bytes.clone();
        Pcap::set_u32(&mut b, 16, snap, be);
        add(format!("snap length {snap}"), b, Expect::Packets(all));
    }
    // The sample as pcapng (both byte orders), then with one block of a bad length.
    for big_endian in [false, true] {
        let order = if big_endian { "big" } else { "little" };
        let (ng, epbs) = pcap.to_pcapng(big_endian);
        add(
            format!("as {order}-endian pcapng"),
            ng.clone(),
            Expect::Packets(all),
        );
        let i = rng.below(epbs.len());
        let at = epbs[i];
        let blen = u32_at(&ng, at + 4, big_endian);
        let bad: [(&str, u32); 5] = [
            ("not a multiple of 4", blen + 1),
            ("below 12", 8),
            ("past the end of the file", (ng.len() as u32 + 4096) & !3),
            ("of 2^32-4", 0xffff_fffc),
            ("not its trailing length", blen + 4),
        ];
        let (what, v) = bad[rng.below(bad.len())];
        let mut b = ng.clone();
        Pcap::set_u32(&mut b, at + 4, v, big_endian);
        add(
            format!("{order}-endian pcapng, packet block {i} of a length {what} ({v})"),
            b,
            Expect::PacketsWarned(i as u64),
        );
        // The section header or the interface description with a bad length.
        let which = rng.below(2);
        let at = if which == 0 { 0 } else { 28 };
        let mut b = ng.clone();
        Pcap::set_u32(&mut b, at + 4, bad[rng.below(bad.len())].1, big_endian);
        add(
            format!(
                "{order}-endian pcapng, {} of a bad length",
                ["section header", "interface description"][which]
            ),
            b,
            Expect::Survive,
        );
    }
    out
}

/// How one run of the binary ended.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    elapsed: Duration,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `exflow ARGS`, killing it after `limit`.
fn run_with_timeout(args: &[&str], limit: Duration) -> Run {
    use std::os::unix::process::ExitStatusExt;
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
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Run {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        elapsed: start.elapsed(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// A run's verdict: `Err` says what was wrong.
fn judge(v: &Variant, r: &Run) -> Result<(), String> {
    let err = String::from_utf8_lossy(&r.stderr);
    if r.timed_out {
        return Err(format!("hang: killed after {:?}", r.elapsed));
    }
    if let Some(sig) = r.signal {
        return Err(format!("killed by signal {sig}; stderr: {err}"));
    }
    match r.code {
        Some(0) | Some(2) => {}
        Some(c) => return Err(format!("exit {c}; stderr: {err}")),
        None => return Err("no exit code".into()),
    }
    if r.code == Some(2) && !err.starts_with("exflow: ") {
        return Err(format!("exit 2 without an error message: {err:?}"));
    }
    let report = if r.code == Some(0) {
        match serde_json::from_slice::<serde_json::Value>(&r.stdout) {
            Ok(j) => Some(j),
            Err(e) => return Err(format!("stdout is not a JSON report: {e}")),
        }
    } else {
        None
    };
    let want = match v.expect {
        Expect::Survive => return Ok(()),
        Expect::Packets(n) | Expect::PacketsWarned(n) => n,
    };
    let Some(j) = report else {
        return Err(format!(
            "exit {:?}, expected a report; stderr: {err}",
            r.code
        ));
    };
    let packets = j["capture"]["packets"].as_u64();
    if packets != Some(want) {
        return Err(format!("report of {packets:?} packets, expected {want}"));
    }
    let warned = j["capture"]["read_warnings"]
        .as_array()
        .is_some_and(|w| !w.is_empty());
    if v.expect == Expect::PacketsWarned(want) && !warned {
        return Err("no read warning for a damaged file".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The corruption sweep, through the binary

/// How long one run may take before it counts as a hang (a debug build on a busy machine
/// reads a sample in well under a second).
const HANG: Duration = Duration::from_secs(10);

#[test]
fn corruption_sweep_through_the_binary_never_panics_hangs_or_loses_what_came_before() {
    let start = Instant::now();
    let mut rng = Rng::new(0x7e57_c0de_0000_0007);
    let mut variants: Vec<Variant> = vec![];
    for s in samples() {
        variants.extend(variants_of(&s, &mut rng));
    }
    // The shared pcapng-generator captures (other writers' pcapng): flips and cuts.
    if let Some(dir) = util::shared_captures("corruption sweep (pcapng-generator)") {
        let dir = dir.join("pcapng-generator");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            let b = std::fs::read(&f).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            for n in [1usize, 8] {
                let mut m = b.clone();
                for _ in 0..n {
                    let i = rng.below(m.len());
                    m[i] ^= rng.byte() | 1;
                }
                variants.push(Variant {
                    name: format!("{name}: {n} bytes flipped"),
                    bytes: m,
                    expect: Expect::Survive,
                });
            }
            for _ in 0..3 {
                let cut = rng.below(b.len());
                variants.push(Variant {
                    name: format!("{name}: cut at {cut}"),
                    bytes: b[..cut].to_vec(),
                    expect: Expect::Survive,
                });
            }
        }
    }

    let dir = util::tmp_path("sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = vec![];
    let mut slowest = Duration::ZERO;
    let mut exits = [0usize; 2];
    for (i, v) in variants.iter().enumerate() {
        let path = dir.join(format!("{i}.cap"));
        std::fs::write(&path, &v.bytes).unwrap();
        let p = path.to_string_lossy().to_string();
        let r = run_with_timeout(&["analyze", &p, "--format", "json"], HANG);
        slowest = slowest.max(r.elapsed);
        if let Err(why) = judge(v, &r) {
            failures.push(format!("{} ({}): {why}", v.name, path.display()));
        } else {
            exits[usize::from(r.code == Some(2))] += 1;
            let _ = std::fs::remove_file(&path);
        }
    }
    println!(
        "corruption sweep: {} variants through the binary in {:.1?} (slowest run {:.2?}); \
         {} exit 0, {} exit 2",
        variants.len(),
        start.elapsed(),
        slowest,
        exits[0],
        exits[1]
    );
    assert!(
        failures.is_empty(),
        "{} of {} variants failed (inputs kept):\n{}",
        failures.len(),
        variants.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir(&dir);
}

// ---------------------------------------------------------------------------------------------
// The same, thousands of times, in-process

/// One capture file through everything `exflow analyze` does, in-process: read, decode,
/// flows, inference, finalize, the report and its three renderings. A panic anywhere fails the
/// test. Returns the packets in the report, `None` when the file was refused.
fn analyze_in_process(path: &str) -> Option<u64> {
    let cat = Catalogue::embedded().unwrap();
    let cfg = FlowConfig {
        max_flows: 256,
        ..FlowConfig::default()
    };
    let mut engine = Engine::new(cfg, None).unwrap();
    let summary = read_files(&[path.to_string()], None, &mut |f: &Frame<'_>| {
        assert_eq!(f.caplen as usize, f.bytes.len());
        assert!(f.wire_len >= f.caplen);
        engine.frame(f);
    })
    .ok()?;
    let (outcome, agg, _) = engine.finish(summary).unwrap();
    let report = build::conclude(&outcome, &agg, None, None, cat);
    let text = table::render(&report, &table::TableOptions::default());
    assert!(!text.contains('\x1b'));
    let md = markdown::render(&report);
    assert!(!md.contains('\x1b'));
    let json = serde_json::to_string(&report).unwrap();
    serde_json::from_str::<serde_json::Value>(&json).unwrap();
    Some(report.capture.packets)
}

/// A random mutation of `b`: flips, a cut, a length field overwritten, bytes inserted or
/// removed, or a run of records repeated.
fn mutate(b: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = b.to_vec();
    for _ in 0..1 + rng.below(3) {
        if m.is_empty() {
            break;
        }
        match rng.below(6) {
            0 => {
                for _ in 0..1 + rng.below(16) {
                    let i = rng.below(m.len());
                    m[i] ^= rng.byte() | 1;
                }
            }
            1 => m.truncate(rng.below(m.len())),
            2 => {
                // An interesting 32-bit value at a random offset (often a length field).
                let vals = [
                    0u32,
                    1,
                    3,
                    12,
                    0xffff,
                    0x7fff_ffff,
                    u32::MAX,
                    m.len() as u32,
                ];
                let v = vals[rng.below(vals.len())];
                let i = rng.below(m.len().saturating_sub(4).max(1));
                if i + 4 <= m.len() {
                    m[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            3 => {
                let i = rng.below(m.len());
                let n = 1 + rng.below(64);
                let junk: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                m.splice(i..i, junk);
            }
            4 => {
                let i = rng.below(m.len());
                let n = (1 + rng.below(64)).min(m.len() - i);
                m.drain(i..i + n);
            }
            _ => {
                let i = rng.below(m.len());
                let n = (1 + rng.below(2048)).min(m.len() - i);
                let copy = m[i..i + n].to_vec();
                let j = rng.below(m.len());
                m.splice(j..j, copy);
            }
        }
    }
    m
}

/// A frame of Ethernet, IPv4 from 192.0.2.1 to 192.0.2.2, UDP 51000 → `dport`, `payload`.
fn udp_frame(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = u16::try_from(28 + payload.len()).unwrap();
    f.extend([
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f.extend(51000u16.to_be_bytes());
    f.extend(dport.to_be_bytes());
    f.extend((total - 20).to_be_bytes());
    f.extend([0, 0]);
    f.extend(payload);
    f
}

/// Broken and hostile tunnels through the engine: the carrying UDP flow is still a
/// connection (as in Zeek), and what went wrong inside is counted by kind.
#[test]
fn broken_and_nested_tunnels_count_their_anomalies_and_keep_the_carrier() {
    let mut bomb = udp_frame(53, &[0; 12]);
    for _ in 0..8 {
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vxlan.extend(&bomb);
        bomb = udp_frame(4789, &vxlan);
    }
    let frames = [
        // A VXLAN header cut short.
        udp_frame(4789, &[0x08, 0, 0]),
        // A Geneve header of version 1.
        udp_frame(
            6081,
            &[0x40, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        // VXLAN carrying ARP.
        udp_frame(4789, &{
            let mut v = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
            v.extend([2, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 4, 0x08, 0x06]);
            v.extend([0; 28]);
            v
        }),
        // VXLAN in VXLAN, 8 deep.
        bomb,
    ];
    let mut engine = Engine::new(FlowConfig::default(), None).unwrap();
    for (i, f) in frames.iter().enumerate() {
        engine.frame(&Frame {
            ts: Timestamp(1_700_000_000_000_000_000 + i as i64 * 1_000_000),
            link: exflow::source::LinkType::ETHERNET,
            caplen: f.len() as u32,
            wire_len: f.len() as u32,
            iface: 0,
            interfaces: 1,
            bytes: f,
        });
    }
    let (o, _, _) = engine.finish(Default::default()).unwrap();
    use exflow::decode::{AnomalyKind, TunnelKind};
    assert_eq!(o.anomalies.get(AnomalyKind::BadTunnelHeader), 2);
    assert_eq!(o.anomalies.get(AnomalyKind::NotIp), 1);
    assert_eq!(o.anomalies.get(AnomalyKind::TunnelTooDeep), 1);
    assert_eq!(o.tunnels.get(TunnelKind::Vxlan), 1 + 4);
    assert_eq!(o.tunnels.get(TunnelKind::Geneve), 0);
    assert_eq!(o.ip_packets, 4);
    // Every UDP datagram, the bomb's five levels included, goes 192.0.2.1:51000 → 192.0.2.2
    // port 4789 or 6081: two connections in all.
    assert_eq!(o.conns.udp, 2);
}

#[test]
fn thousands_of_mutated_captures_in_process_never_panic() {
    let start = Instant::now();
    let mut rng = Rng::new(0x5eed_0000_0000_0707);
    // Small originals keep a debug build fast: the samples' first records, and their pcapng.
    let mut originals: Vec<Vec<u8>> = vec![];
    for s in samples() {
        let pcap = Pcap::parse(std::fs::read(&s).unwrap());
        let end = pcap
            .records
            .get(12)
            .map_or(pcap.bytes.len(), |&(off, _)| off);
        let short = Pcap::parse(pcap.bytes[..end].to_vec());
        originals.push(short.to_pcapng(rng.below(2) == 1).0);
        originals.push(short.bytes);
    }
    // Tunnelled frames (ERSPAN, GRE, VXLAN, Geneve), when the shared captures are here.
    if let Some(dir) = util::shared_captures("thousands_of_mutated_captures_in_process") {
        let mut tunnels: Vec<PathBuf> = std::fs::read_dir(dir.join("tunnels"))
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        tunnels.sort();
        for t in tunnels {
            originals.push(std::fs::read(t).unwrap());
        }
    }
    let path = util::tmp_path("mutated.cap");
    let p = path.to_string_lossy().to_string();
    let (mut tried, mut read) = (0u64, 0u64);
    // Bounded in time as well as in count, so a slow machine still finishes.
    let budget = Duration::from_secs(12);
    'outer: for round in 0..100 {
        for o in &originals {
            let m = mutate(o, &mut rng);
            std::fs::write(&path, &m).unwrap();
            tried += 1;
            if analyze_in_process(&p).is_some() {
                read += 1;
            }
            if round >= 10 && start.elapsed() > budget {
                break 'outer;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    println!(
        "in-process sweep: {tried} mutated captures ({read} read, the rest refused) in {:.1?}",
        start.elapsed()
    );
    assert!(tried >= 320);
}

// ---------------------------------------------------------------------------------------------
// Flow-table stress

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

const SERVER: u32 = 0xC000_0219; // 192.0.2.25
const CLIENT: u32 = 0xC633_6407; // 198.51.100.7

/// One complete HTTPS connection: handshake, a request, a response, a clean close.
fn legit_connection(sport: u16) -> Vec<Packet> {
    let (c, s) = (v4(CLIENT), v4(SERVER));
    const S: u8 = TcpFlags::SYN;
    const A: u8 = TcpFlags::ACK;
    const SA: u8 = S | A;
    const PA: u8 = TcpFlags::PSH | A;
    const FA: u8 = TcpFlags::FIN | A;
    vec![
        Packet::tcp(c, sport, s, 443, S, 1000, 0, 0),
        Packet::tcp(s, 443, c, sport, SA, 5000, 1001, 0),
        Packet::tcp(c, sport, s, 443, A, 1001, 5001, 0),
        Packet::tcp(c, sport, s, 443, PA, 1001, 5001, 517),
        Packet::tcp(s, 443, c, sport, A, 5001, 1518, 0),
        Packet::tcp(s, 443, c, sport, PA, 5001, 1518, 1400),
        Packet::tcp(c, sport, s, 443, A, 1518, 6401, 0),
        Packet::tcp(c, sport, s, 443, FA, 1518, 6401, 0),
        Packet::tcp(s, 443, c, sport, FA, 6401, 1519, 0),
        Packet::tcp(c, sport, s, 443, A, 1519, 6402, 0),
    ]
}

/// What matters of a legitimate connection's record for its verdict.
fn essentials(r: &ConnRecord) -> (u16, ConnState, String, u64, u64, u64, u64) {
    (
        r.orig.port(),
        r.conn_state,
        r.history.as_str().to_string(),
        r.orig_stats.pkts,
        r.resp_stats.pkts,
        r.orig_bytes,
        r.resp_bytes,
    )
}

/// Floods a table capped at `cap` with `flood` SYNs from distinct sources (50,000 a second)
/// while `legit` complete connections run to the server; checks the cap after every packet,
/// the eviction count, and that the legitimate connections' records are the ones they get
/// without the flood. Fails, rather than hangs, past `budget`.
fn stress(flood: u32, cap: usize, legit: u16, budget: Duration) {
    let start = Instant::now();
    let cfg = FlowConfig {
        max_flows: cap,
        ..FlowConfig::default()
    };
    let t0 = 1_700_000_000_000_000_000i64;
    let is_legit = |r: &ConnRecord| r.resp.ip() == v4(SERVER) && r.orig.ip() == v4(CLIENT);

    // Alone.
    let mut alone = vec![];
    {
        let mut t = FlowTable::new(cfg);
        let mut sink = |r: &ConnRecord| alone.push(essentials(r));
        for k in 0..legit {
            for (j, p) in legit_connection(50_000 + k).iter().enumerate() {
                t.observe(
                    Timestamp(t0 + i64::from(k) * 1_000_000_000 + j as i64),
                    p,
                    &mut sink,
                );
            }
        }
        t.finish(&mut sink);
    }
    alone.sort();
    assert_eq!(alone.len(), usize::from(legit));
    assert!(alone.iter().all(|e| e.1 == ConnState::SF), "{alone:?}");

    // In the flood: connection k starts after flood SYN k*flood/legit + 1000; its SYN and
    // SYN-ACK are adjacent (a handshake faster than two flood packets), its other packets 10
    // flood packets apart.
    let mut t = FlowTable::new(cfg);
    let mut in_flood = vec![];
    let mut records = 0u64;
    let mut evicted_legit = 0;
    let mut sink = |r: &ConnRecord| {
        records += 1;
        if is_legit(r) {
            if r.end == EndReason::Evicted {
                evicted_legit += 1;
            }
            in_flood.push(essentials(r));
        }
    };
    let conns: Vec<Vec<Packet>> = (0..legit).map(|k| legit_connection(50_000 + k)).collect();
    let spacing = flood / u32::from(legit.max(1));
    let mut peak = 0;
    for i in 0..flood {
        let ts = Timestamp(t0 + i64::from(i) * 20_000);
        let src = v4(0x0a00_0000 + i); // 10.0.0.0 upwards: every SYN its own source
        let p = Packet::tcp(
            src,
            1024 + (i % 60_000) as u16,
            v4(SERVER),
            (i % 1024) as u16 + 1,
            TcpFlags::SYN,
            i,
            0,
            0,
        );
        t.observe(ts, &p, &mut sink);
        assert!(t.len() <= cap, "table at {} past its cap {cap}", t.len());
        peak = peak.max(t.len());
        let k = i / spacing.max(1);
        let into = i % spacing.max(1);
        if k < u32::from(legit) && into >= 1000 && (into - 1000) % 10 == 0 {
            let j = ((into - 1000) / 10) as usize;
            let conn = &conns[k as usize];
            if j + 1 < conn.len() {
                let pkts: &[Packet] = if j == 0 {
                    &conn[0..2]
                } else {
                    &conn[j + 1..j + 2]
                };
                for (n, p) in pkts.iter().enumerate() {
                    t.observe(Timestamp(ts.0 + 1 + n as i64), p, &mut sink);
                    assert!(t.len() <= cap);
                }
            }
        }
        if i % 1_000 == 0 && start.elapsed() > budget {
            panic!(
                "too slow: {i} of {flood} flows in {:.1?} ({} evicted so far; cap {cap})",
                start.elapsed(),
                t.stats().evicted
            );
        }
    }
    let stats = t.stats();
    t.finish(&mut sink);
    in_flood.sort();
    println!(
        "flow-table stress: {flood} flood flows + {legit} connections, cap {cap}: peak {peak}, \
         {} evicted, {records} records, in {:.1?}",
        stats.evicted,
        start.elapsed()
    );
    assert_eq!(peak, cap);
    assert_eq!(stats.connections, u64::from(flood) + u64::from(legit));
    assert_eq!(records, stats.connections);
    // Everything beyond the cap was evicted: flood attempts expire only after 120 s, and the
    // flood lasts flood/50,000 s; only the legitimate connections free their slots by closing.
    assert!(
        stats.evicted >= u64::from(flood) - cap as u64,
        "{} evicted, expected at least {}",
        stats.evicted,
        u64::from(flood) - cap as u64
    );
    assert_eq!(evicted_legit, 0, "a legitimate connection was evicted");
    assert_eq!(
        in_flood, alone,
        "the flood changed the legitimate connections"
    );
}

/// The flow-table stress under heavy eviction: 300,000 distinct flows (2,000,000 in release)
/// through a table of 200, where nearly every new flow evicts one.
#[test]
fn a_flood_of_distinct_flows_stays_inside_a_small_cap_and_spares_legitimate_connections() {
    let flood = if cfg!(debug_assertions) {
        300_000
    } else {
        2_000_000
    };
    stress(flood, 200, 20, Duration::from_secs(120));
}

/// The figure: millions of distinct flows (2,000,000 in release, 300,000 in a debug
/// build) through a table of 100,000. Regression test of a hang: `FlowTable::make_room` ran a
/// whole-table `expire()` before every eviction, O(max_flows) per new flow once the table was
/// full (2-5 ms each at 100,000 in release), so such a flood took hours.
#[test]
fn a_syn_flood_past_a_100k_cap_does_not_scan_the_whole_table_per_eviction() {
    let flood = if cfg!(debug_assertions) {
        300_000
    } else {
        2_000_000
    };
    stress(flood, 100_000, 20, Duration::from_secs(120));
}

// ---------------------------------------------------------------------------------------------
// Output safety

/// Terminal control that must never come from the data: ESC sequences other than exflow's own
/// SGR colours, C1 controls (CSI U+009B, OSC U+009D...), BEL, backspace, carriage return, and
/// the invisible bidirectional overrides.
fn raw_control(text: &str, colour_allowed: bool) -> Option<String> {
    const OWN: [&str; 7] = [
        "\x1b[1m", "\x1b[2m", "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[35m", "\x1b[0m",
    ];
    for (i, c) in text.char_indices() {
        let bad = match c {
            '\x1b' => !(colour_allowed && OWN.iter().any(|o| text[i..].starts_with(o))),
            '\n' | '\t' => false,
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' => true,
            _ => false,
        };
        if bad {
            let end = text[i..]
                .char_indices()
                .nth(24)
                .map_or(text.len(), |(j, _)| i + j);
            return Some(format!("{c:?} at byte {i}: {:?}", &text[i..end]));
        }
    }
    None
}

/// A file name made to drive a terminal: clear the screen, set the title, move the cursor,
/// a C1 CSI, a right-to-left override, a carriage return.
const EVIL: &str = "evil\x1b[2J\x1b]0;pwned\x07\x1b[1;1H\u{9b}31m\u{202e}gpj\rX";

#[test]
fn control_characters_in_file_names_never_reach_the_terminal_raw_and_json_stays_valid() {
    let dir = util::tmp_path("evil");
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join(format!("{EVIL}.pcap"));
    std::fs::copy(util::root().join("samples/exchange-healthy.pcap"), &capture).unwrap();
    let site = dir.join(format!("{EVIL}.site.toml"));
    std::fs::copy(
        util::root().join("samples/exchange-healthy.site.toml"),
        &site,
    )
    .unwrap();
    // A second capture cut inside a record, so that a read warning (naming the file) is in
    // the report too.
    let cut = dir.join(format!("{EVIL}-cut.pcap"));
    let b = std::fs::read(&capture).unwrap();
    std::fs::write(&cut, &b[..b.len() - 7]).unwrap();
    let (cap_s, cut_s, site_s) = (
        capture.to_string_lossy().to_string(),
        cut.to_string_lossy().to_string(),
        site.to_string_lossy().to_string(),
    );

    for with_site in [false, true] {
        let mut base = vec!["analyze", &cap_s, &cut_s];
        if with_site {
            base.extend(["--site", &site_s]);
        }
        for (format, colour) in [("table", "never"), ("table", "always"), ("md", "never")] {
            let mut args = base.clone();
            args.extend(["--format", format, "--color", colour]);
            let o = util::exflow(&args);
            assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
            let out = util::stdout(&o);
            assert!(
                out.contains("evil") && out.contains("x1b"),
                "the file name is not shown escaped ({format}, site {with_site}):\n{out}"
            );
            if let Some(bad) = raw_control(&out, colour == "always") {
                panic!("raw control in --format {format} --color {colour}: {bad}\n{out}");
            }
        }
        let mut args = base.clone();
        args.extend(["--format", "json"]);
        let o = util::exflow(&args);
        assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
        let files = j["capture"]["files"].as_array().unwrap();
        assert_eq!(
            files[0].as_str(),
            Some(cap_s.as_str()),
            "JSON keeps the name"
        );
        if with_site {
            assert_eq!(j["topology"]["site_file"].as_str(), Some(site_s.as_str()));
        }
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains('\x1b'),
            "raw ESC in the JSON text"
        );
    }
}

/// The short summary (`--format summary`) names the files too. Regression test: with
/// `exflow analyze "$(printf 'x\033[2J.pcap')" --format summary` its `files` line printed the
/// ESC raw.
#[test]
fn the_summary_format_escapes_control_characters_in_file_names() {
    let dir = util::tmp_path("evil-summary");
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join(format!("{EVIL}.pcap"));
    std::fs::copy(util::root().join("samples/rst-refused.pcap"), &capture).unwrap();
    let c = capture.to_string_lossy().to_string();
    let o = util::exflow(&["analyze", &c, "--format", "summary"]);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let out = util::stdout(&o);
    if let Some(bad) = raw_control(&out, false) {
        panic!("raw control in --format summary: {bad}\n{out}");
    }
}

/// Runs each case (`analyze ARGS... --format json`) and lists the raw control characters
/// found on stderr.
fn raw_control_on_stderr(cases: &[Vec<String>]) -> Vec<String> {
    let mut found = vec![];
    for case in cases {
        let mut args = vec!["analyze"];
        args.extend(case.iter().map(|a| a.as_str()));
        args.extend(["--format", "json"]);
        let o = util::exflow(&args);
        assert!(matches!(o.status.code(), Some(0) | Some(2)));
        let err = util::stderr(&o);
        assert!(!err.is_empty(), "no message for {case:?}");
        if let Some(bad) = raw_control(&err, false) {
            found.push(format!("{case:?}: {bad}"));
        }
    }
    found
}

/// Error messages on stderr go to the terminal too: a site file's text quoted in them must not
/// drive it. Regression test: for a site file holding `profile = "\u001b[2J"` (a TOML escape)
/// the error quoted the value with the ESC raw.
#[test]
fn control_characters_in_site_files_never_reach_stderr_raw() {
    let dir = util::tmp_path("evil-site");
    std::fs::create_dir_all(&dir).unwrap();
    let capture = util::root().join("samples/rst-refused.pcap");
    let mut cases = vec![];
    for (name, text) in [
        ("bad-key", "\"\\u001b[2Jkey\" = 1\n"),
        (
            "bad-role",
            "[[host]]\nrole = \"mail\\u001b]0;pwned\\u0007box\"\naddresses = [\"192.0.2.1\"]\n",
        ),
        (
            "bad-address",
            "[[host]]\nrole = \"mailbox\"\naddresses = [\"\\u001b[2J\\u009b1m\"]\n",
        ),
        ("bad-service", "[services]\n\"\\u009b2J\\u202e\" = true\n"),
        ("bad-profile", "profile = \"\\u001b[31medge\"\n"),
        ("bad-network", "internal = [\"10.0.0.0/8\\r\\u001b[2K\"]\n"),
        ("raw-escape", "profile = \"mailbox\"\n\u{1b}[2J = 1\n"),
    ] {
        let site = dir.join(format!("{name}.site.toml"));
        std::fs::write(&site, text).unwrap();
        cases.push(vec![
            capture.to_string_lossy().to_string(),
            "--site".into(),
            site.to_string_lossy().to_string(),
        ]);
    }
    let found = raw_control_on_stderr(&cases);
    assert!(
        found.is_empty(),
        "raw control characters on stderr:\n{}",
        found.join("\n")
    );
}

/// Error and warning messages on stderr name files: a capture's file name must not drive the
/// terminal either. Regression test: `exflow analyze "$(printf 'x\033[2J.pcap')"` (a missing
/// file) printed the ESC raw in its error.
#[test]
fn control_characters_in_file_names_never_reach_stderr_raw() {
    let dir = util::tmp_path("evil-stderr");
    std::fs::create_dir_all(&dir).unwrap();
    // A capture cut inside a record (a warning naming it), a missing file, a non-capture.
    let cut = dir.join(format!("{EVIL}.pcap"));
    let b = std::fs::read(util::root().join("samples/rst-refused.pcap")).unwrap();
    std::fs::write(&cut, &b[..b.len() - 7]).unwrap();
    let missing = dir.join(format!("{EVIL}-missing.pcap"));
    let text = dir.join(format!("{EVIL}.txt"));
    std::fs::write(&text, "not a capture").unwrap();
    let s = |p: &PathBuf| p.to_string_lossy().to_string();
    let found = raw_control_on_stderr(&[vec![s(&cut)], vec![s(&missing)], vec![s(&text)]]);
    assert!(
        found.is_empty(),
        "raw control characters on stderr:\n{}",
        found.join("\n")
    );
}
