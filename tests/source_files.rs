//! source_files tests: the file source (pcap, pcapng, compressed, several files, damaged files)
//! and the BPF filter, on captures built byte by byte here, plus every shared capture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use exflow::error::Error;
use exflow::source::file::{read_files, SourceStats};
use exflow::source::filter::Filter;
use exflow::source::{Frame, LinkType};
use exflow::time::Timestamp;
use std::io::Write;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A frame as handed to the callback, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    ts: i64,
    link: LinkType,
    caplen: u32,
    wire_len: u32,
    bytes: Vec<u8>,
}

fn read_with(
    paths: &[String],
    filter: Option<&mut Filter>,
) -> Result<(SourceStats, Vec<Got>), Error> {
    let mut got = Vec::new();
    let summary = read_files(paths, filter, &mut |f: &Frame<'_>| {
        assert_eq!(f.caplen as usize, f.bytes.len());
        got.push(Got {
            ts: f.ts.0,
            link: f.link,
            caplen: f.caplen,
            wire_len: f.wire_len,
            bytes: f.bytes.to_vec(),
        })
    })?;
    Ok((summary, got))
}

fn read(paths: &[String]) -> (SourceStats, Vec<Got>) {
    read_with(paths, None).unwrap_or_else(|e| panic!("reading {paths:?}: {e}"))
}

fn read_err(paths: &[String]) -> (String, String) {
    match read_with(paths, None) {
        Err(Error::Input { file, problem }) => (file, problem),
        Err(e) => panic!("expected an input error, got {e}"),
        Ok((s, _)) => panic!("expected an error, read {s:?}"),
    }
}

/// A fresh, empty directory for one test.
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("source_files")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

fn put16(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

const SEC: i64 = 1_000_000_000;

/// A record of a legacy pcap: seconds, fraction (µs or ns), data, wire length.
type Record<'a> = (u32, u32, &'a [u8], u32);

/// A legacy pcap file. `magic` as a number (`0xa1b2c3d4` µs, `0xa1b23c4d` ns, `0xa1b2cd34`
/// modified), written in the chosen byte order.
fn pcap(magic: u32, be: bool, link: u32, records: &[Record<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, magic, be);
    put16(&mut out, 2, be);
    put16(&mut out, 4, be);
    put32(&mut out, 0, be); // thiszone
    put32(&mut out, 0, be); // sigfigs
    put32(&mut out, 65535, be); // snaplen
    put32(&mut out, link, be);
    for &(sec, frac, data, wire) in records {
        put32(&mut out, sec, be);
        put32(&mut out, frac, be);
        put32(&mut out, data.len() as u32, be);
        put32(&mut out, wire, be);
        if magic == 0xa1b2_cd34 {
            out.extend_from_slice(&[0u8; 8]); // ifindex, protocol, pkt_type, pad
        }
        out.extend_from_slice(data);
    }
    out
}

/// A pcapng file built block by block; `be` is the byte order of the current section.
#[derive(Default)]
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        put32(&mut self.out, block_type, self.be);
        put32(&mut self.out, len, self.be);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        put32(&mut self.out, len, self.be);
        self
    }

    fn options(&self, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        if opts.is_empty() {
            return out;
        }
        for (code, value) in opts {
            put16(&mut out, *code, self.be);
            put16(&mut out, value.len() as u16, self.be);
            out.extend_from_slice(value);
            out.resize(out.len().div_ceil(4) * 4, 0);
        }
        out.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        out
    }

    fn shb(&mut self, be: bool) -> &mut Self {
        self.be = be;
        let mut body = Vec::new();
        put32(&mut body, 0x1A2B_3C4D, be);
        put16(&mut body, 1, be);
        put16(&mut body, 0, be);
        body.extend_from_slice(&[0xff; 8]); // section length: unknown
        self.block(0x0A0D_0D0A, &body)
    }

    fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        put16(&mut body, link, self.be);
        put16(&mut body, 0, self.be);
        put32(&mut body, snaplen, self.be);
        body.extend(self.options(opts));
        self.block(1, &body)
    }

    fn epb(&mut self, if_id: u32, ts: u64, data: &[u8], wire: u32) -> &mut Self {
        let mut body = Vec::new();
        put32(&mut body, if_id, self.be);
        put32(&mut body, (ts >> 32) as u32, self.be);
        put32(&mut body, ts as u32, self.be);
        put32(&mut body, data.len() as u32, self.be);
        put32(&mut body, wire, self.be);
        body.extend_from_slice(data);
        body.resize(body.len().div_ceil(4) * 4, 0);
        // An option, as dumpcap writes (epb_flags: inbound), to exercise option skipping.
        body.extend(self.options(&[(2, &[1, 0, 0, 0])]));
        self.block(6, &body)
    }

    fn spb(&mut self, data: &[u8], wire: u32) -> &mut Self {
        let mut body = Vec::new();
        put32(&mut body, wire, self.be);
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// The obsolete Packet Block.
    fn pb(&mut self, if_id: u16, ts: u64, data: &[u8], wire: u32) -> &mut Self {
        let mut body = Vec::new();
        put16(&mut body, if_id, self.be);
        put16(&mut body, 0, self.be); // drops
        put32(&mut body, (ts >> 32) as u32, self.be);
        put32(&mut body, ts as u32, self.be);
        put32(&mut body, data.len() as u32, self.be);
        put32(&mut body, wire, self.be);
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

/// An Ethernet/IPv4 frame from 10.0.0.1:40000 to 10.0.0.2:`dport`, TCP (6) or UDP (17).
fn ip_frame(proto: u8, dport: u16) -> Vec<u8> {
    let l4 = if proto == 6 { 20 } else { 8 };
    let mut f = vec![0u8; 34 + l4];
    f[0..6].copy_from_slice(&[0, 1, 2, 3, 4, 5]);
    f[6..12].copy_from_slice(&[0, 1, 2, 3, 4, 6]);
    f[12] = 0x08; // IPv4
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        f[46] = 0x50;
        f[47] = 0x02; // SYN
    } else {
        f[38..40].copy_from_slice(&8u16.to_be_bytes());
    }
    f
}

/// Three pcap records (one cut by the snap length) used by several tests.
const A: &[u8] = b"frame-A, 16 byte";
const B: &[u8] = b"frame-B";
const C: &[u8] = b"frame-C: the third one";

fn three_records() -> Vec<Record<'static>> {
    vec![
        (1_700_000_000, 123_456, A, 16),
        (1_700_000_001, 0, B, 1514),
        (1_700_000_001, 999_999, C, 22),
    ]
}

// ---------------------------------------------------------------------------------------------
// Legacy pcap

#[test]
fn pcap_little_endian_microseconds() {
    let dir = test_dir("pcap_le_us");
    let f = write(
        &dir,
        "le.pcap",
        &pcap(0xa1b2_c3d4, false, 1, &three_records()),
    );
    let (s, got) = read(std::slice::from_ref(&f));
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].ts, 1_700_000_000 * SEC + 123_456_000);
    assert_eq!(got[1].ts, 1_700_000_001 * SEC);
    assert_eq!(got[2].ts, 1_700_000_001 * SEC + 999_999_000);
    assert_eq!(got[0].bytes, A);
    assert_eq!((got[1].caplen, got[1].wire_len), (7, 1514));
    assert_eq!(got[2].bytes, C);
    assert!(got.iter().all(|g| g.link == LinkType::ETHERNET));
    assert_eq!(s.files, vec![f]);
    assert_eq!(s.frames, 3);
    assert_eq!(s.filtered_out, 0);
    assert_eq!(s.bytes, (A.len() + B.len() + C.len()) as u64);
    assert_eq!(
        s.first_ts,
        Some(Timestamp(1_700_000_000 * SEC + 123_456_000))
    );
    assert_eq!(
        s.last_ts,
        Some(Timestamp(1_700_000_001 * SEC + 999_999_000))
    );
    assert_eq!(s.link_types, vec![LinkType::ETHERNET]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn pcap_big_endian_microseconds() {
    let dir = test_dir("pcap_be_us");
    let f = write(
        &dir,
        "be.pcap",
        &pcap(0xa1b2_c3d4, true, 101, &three_records()),
    );
    let (s, got) = read(&[f]);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].ts, 1_700_000_000 * SEC + 123_456_000);
    assert_eq!(got[2].ts, 1_700_000_001 * SEC + 999_999_000);
    assert_eq!((got[1].bytes.as_slice(), got[1].wire_len), (B, 1514));
    assert_eq!(s.link_types, vec![LinkType::RAW]);
}

#[test]
fn pcap_nanoseconds_in_both_byte_orders() {
    let dir = test_dir("pcap_ns");
    let records = [
        (1_600_000_000, 1, A, 16),
        (1_600_000_000, 999_999_999, B, 7),
    ];
    for be in [false, true] {
        let f = write(
            &dir,
            &format!("ns-{be}.pcap"),
            &pcap(0xa1b2_3c4d, be, 1, &records),
        );
        let (s, got) = read(&[f]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].ts, 1_600_000_000 * SEC + 1);
        assert_eq!(got[1].ts, 1_600_000_000 * SEC + 999_999_999);
        assert_eq!(got[1].bytes, B);
        assert_eq!(s.first_ts, Some(Timestamp(1_600_000_000 * SEC + 1)));
    }
}

#[test]
fn pcap_modified_kuznetzov_format() {
    let dir = test_dir("pcap_modified");
    let f = write(
        &dir,
        "mod.pcap",
        &pcap(0xa1b2_cd34, false, 1, &three_records()),
    );
    let (_, got) = read(&[f]);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].bytes, A);
    assert_eq!(got[2].bytes, C);
    assert_eq!(got[2].ts, 1_700_000_001 * SEC + 999_999_000);

    let f = write(
        &dir,
        "mod-be.pcap",
        &pcap(0xa1b2_cd34, true, 1, &three_records()),
    );
    let (file, problem) = read_err(std::slice::from_ref(&f));
    assert_eq!(file, f);
    assert!(problem.contains("not supported"), "{problem}");
}

#[test]
fn pcap_link_type_keeps_the_lower_bits_only() {
    let dir = test_dir("pcap_fcs_bits");
    // FCS length 4 in the upper bits (bits 28-31) and the "FCS length present" bit 26.
    let f = write(
        &dir,
        "fcs.pcap",
        &pcap(
            0xa1b2_c3d4,
            false,
            1 | (4 << 28) | (1 << 26),
            &three_records(),
        ),
    );
    let (s, _) = read(&[f]);
    assert_eq!(s.link_types, vec![LinkType::ETHERNET]);
}

// ---------------------------------------------------------------------------------------------
// pcapng

/// Two sections: a little-endian one with an Ethernet interface (µs) and a raw-IP one
/// (`if_tsresol` 9, `if_tsoffset` 100 s), an EPB on each, an SPB, an obsolete PB and blocks to
/// skip; then a big-endian one whose interface 0 is Linux cooked (2^-10 s units) and
/// interface 1 Ethernet (ms, `if_tsoffset` 7 s).
fn two_section_pcapng() -> Vec<u8> {
    let mut ng = Ng::default();
    ng.shb(false)
        .idb(1, 0, &[(2, b"eth0")])
        .idb(101, 262_144, &[(9, &[9]), (14, &100i64.to_le_bytes())])
        .epb(0, 1_700_000_000_000_001, b"s1-if0", 6)
        .epb(1, 5_000_000_001, b"s1-if1-raw", 60)
        .spb(b"s1-spb", 6)
        .block(5, &[0u8; 16]) // an Interface Statistics Block, skipped
        .block(0x4242, b"unknown block") // an unknown block type, skipped
        .pb(0, 1_700_000_002_000_000, b"s1-pb", 5);
    ng.shb(true)
        .idb(113, 0, &[(9, &[0x8a])])
        .idb(1, 0, &[(9, &[3]), (14, &7i64.to_be_bytes())])
        .epb(0, 3 * 1024 + 512, b"s2-if0-sll", 10)
        .epb(1, 42, b"s2-if1", 6);
    ng.bytes()
}

fn check_two_section_frames(s: &SourceStats, got: &[Got]) {
    let summary: Vec<(i64, LinkType, &[u8])> = got
        .iter()
        .map(|g| (g.ts, g.link, g.bytes.as_slice()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                1_700_000_000 * SEC + 1_000,
                LinkType::ETHERNET,
                &b"s1-if0"[..]
            ),
            (105 * SEC + 1, LinkType::RAW, &b"s1-if1-raw"[..]),
            (105 * SEC + 1, LinkType::ETHERNET, &b"s1-spb"[..]),
            (1_700_000_002 * SEC, LinkType::ETHERNET, &b"s1-pb"[..]),
            (
                3 * SEC + 500_000_000,
                LinkType::LINUX_SLL,
                &b"s2-if0-sll"[..]
            ),
            (7 * SEC + 42_000_000, LinkType::ETHERNET, &b"s2-if1"[..]),
        ]
    );
    assert_eq!(got[1].wire_len, 60);
    assert_eq!(s.frames, 6);
    assert_eq!(
        s.link_types,
        vec![LinkType::ETHERNET, LinkType::RAW, LinkType::LINUX_SLL]
    );
    assert_eq!(s.first_ts, Some(Timestamp(3 * SEC + 500_000_000)));
    assert_eq!(s.last_ts, Some(Timestamp(1_700_000_002 * SEC)));
    assert_eq!(
        s.bytes,
        got.iter().map(|g| g.bytes.len() as u64).sum::<u64>()
    );
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn pcapng_sections_interfaces_and_timestamp_resolutions() {
    let dir = test_dir("pcapng_sections");
    let f = write(&dir, "two-sections.pcapng", &two_section_pcapng());
    let (s, got) = read(&[f]);
    check_two_section_frames(&s, &got);
}

#[test]
fn pcapng_big_endian_first_section() {
    let dir = test_dir("pcapng_be");
    let mut ng = Ng::default();
    ng.shb(true)
        .idb(1, 0, &[(14, &(-10i64).to_be_bytes())])
        .epb(0, 20_000_001, b"be", 2);
    let f = write(&dir, "be.pcapng", &ng.bytes());
    let (_, got) = read(&[f]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ts, 10 * SEC + 1_000);
}

#[test]
fn pcapng_spb_takes_the_snap_length_of_interface_0() {
    let dir = test_dir("pcapng_spb_snap");
    let mut ng = Ng::default();
    ng.shb(false).idb(1, 4, &[]).spb(b"abcdefgh", 100);
    let f = write(&dir, "spb.pcapng", &ng.bytes());
    let (s, got) = read(&[f]);
    assert_eq!(
        (got[0].bytes.as_slice(), got[0].wire_len),
        (&b"abcd"[..], 100)
    );
    assert_eq!(got[0].ts, 0, "no timestamp seen before: 0");
    assert!(s.warnings.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Compression, several files, standard input

#[test]
fn gzip_and_zstd_copies_read_the_same() {
    let dir = test_dir("compressed");
    let ng = two_section_pcapng();
    let pc = pcap(0xa1b2_3c4d, true, 1, &three_records());
    let (_, plain_pcap) = read(&[write(&dir, "plain.pcap", &pc)]);
    // Two gzip members one after the other, as `cat a.gz b.gz` makes.
    let mut two_members = gzip(&ng[..100]);
    two_members.extend(gzip(&ng[100..]));
    for (name, bytes) in [
        ("ng.pcapng.gz", gzip(&ng)),
        ("ng.pcapng.zst", zstd(&ng)),
        ("ng-members.pcapng.gz", two_members),
    ] {
        let (s, got) = read(&[write(&dir, name, &bytes)]);
        check_two_section_frames(&s, &got);
    }
    for (name, bytes) in [("pc.pcap.gz", gzip(&pc)), ("pc.pcap.zst", zstd(&pc))] {
        let (_, got) = read(&[write(&dir, name, &bytes)]);
        assert_eq!(got, plain_pcap, "{name}");
    }
}

/// Several files are read in the order of their first packets (issue 18: rotated files given
/// by a shell glob), not the order given: here 3.pcap (5 s), 2.pcapng.zst (1.7e9 s + 1 µs),
/// 1.pcap (1.7e9 s + 0.123 s).
#[test]
fn several_files_are_read_as_one_capture_in_order() {
    let dir = test_dir("several");
    let first = write(
        &dir,
        "1.pcap",
        &pcap(0xa1b2_c3d4, false, 1, &three_records()[..2]),
    );
    let second = write(&dir, "2.pcapng.zst", &zstd(&two_section_pcapng()));
    let third = write(
        &dir,
        "3.pcap",
        &pcap(0xa1b2_c3d4, true, 101, &[(5, 5, C, 22)]),
    );
    let paths = vec![first, second, third];
    let (s, got) = read(&paths);
    assert_eq!(s.files, paths);
    assert!(s.reordered_files);
    assert_eq!(s.frames, 2 + 6 + 1);
    assert_eq!(got.len(), 9);
    assert_eq!(got[0].bytes, C);
    assert_eq!(got[0].ts, 5 * SEC + 5_000);
    assert_eq!(got[1].bytes, b"s1-if0");
    assert_eq!(got[7].bytes, A);
    assert_eq!(got[8].bytes, B);
    assert_eq!(
        s.link_types,
        vec![LinkType::RAW, LinkType::ETHERNET, LinkType::LINUX_SLL]
    );
    assert_eq!(s.first_ts, Some(Timestamp(3 * SEC + 500_000_000)));
    assert_eq!(s.last_ts, Some(Timestamp(1_700_000_002 * SEC)));
}

#[test]
fn stdin_dash_reads_standard_input() {
    // The child: this same test, run by the parent below with a capture on standard input.
    if std::env::var_os("EXFLOW_TEST_STDIN_CHILD").is_some() {
        let (s, got) = read(&["-".to_string()]);
        println!(
            "stdin-frames={} first={:?}",
            got.len(),
            s.first_ts.map(|t| t.0)
        );
        return;
    }
    let dir = test_dir("stdin");
    let file = write(&dir, "in.pcapng.gz", &gzip(&two_section_pcapng()));
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "source_files::stdin_dash_reads_standard_input",
            "--exact",
            "--nocapture",
        ])
        .env("EXFLOW_TEST_STDIN_CHILD", "1")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("stdin-frames=6 first=Some(3500000000)"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors and damaged files

#[test]
fn not_a_capture_is_an_error_naming_the_file() {
    let dir = test_dir("not_capture");
    let f = write(&dir, "notes.txt", b"hello, this is not a capture\n");
    let (file, problem) = read_err(std::slice::from_ref(&f));
    assert_eq!(file, f);
    assert!(
        problem.contains("not a pcap or pcapng capture"),
        "{problem}"
    );
    assert!(problem.contains("68 65 6c 6c"), "{problem}");
    let g = write(
        &dir,
        "notes.txt.gz",
        &gzip(b"hello, this is not a capture\n"),
    );
    let (file, problem) = read_err(std::slice::from_ref(&g));
    assert_eq!(file, g);
    assert!(
        problem.contains("not a pcap or pcapng capture (gzip-compressed)"),
        "{problem}"
    );
}

#[test]
fn missing_file_is_an_error_before_any_frame() {
    let dir = test_dir("missing");
    let good = write(
        &dir,
        "good.pcap",
        &pcap(0xa1b2_c3d4, false, 1, &three_records()),
    );
    let missing = dir.join("nope.pcap").to_string_lossy().into_owned();
    let mut frames = 0;
    let result = read_files(&[good, missing.clone()], None, &mut |_: &Frame<'_>| {
        frames += 1
    });
    match result {
        Err(Error::Input { file, problem }) => {
            assert_eq!(file, missing);
            assert!(problem.contains("No such file or directory"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        frames, 0,
        "the missing file is found before reading the first"
    );
}

#[test]
fn directory_is_an_error() {
    let dir = test_dir("directory");
    let path = dir.to_string_lossy().into_owned();
    let (file, problem) = read_err(std::slice::from_ref(&path));
    assert_eq!(file, path);
    assert!(
        problem.contains("cannot read") && problem.contains("directory"),
        "{problem}"
    );
}

/// A named pipe, as `exflow <(zcat x.pcap.gz)` gives: read once, its first bytes not lost to
/// the early check of the files.
#[cfg(unix)]
#[test]
fn named_pipe_is_read_once() {
    let dir = test_dir("fifo");
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        println!("skipped: mkfifo not available");
        return;
    }
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let bytes = pcap(0xa1b2_c3d4, false, 1, &three_records());
            std::fs::OpenOptions::new()
                .write(true)
                .open(fifo)
                .unwrap()
                .write_all(&bytes)
                .unwrap();
        })
    };
    let (s, got) = read(&[fifo.to_string_lossy().into_owned()]);
    writer.join().unwrap();
    assert_eq!(got.len(), 3);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn empty_file_is_an_error() {
    let dir = test_dir("empty");
    let f = write(&dir, "empty.pcap", b"");
    let (file, problem) = read_err(std::slice::from_ref(&f));
    assert_eq!(file, f);
    assert!(problem.contains("empty file"), "{problem}");
    let (_, problem) = read_err(&[write(&dir, "empty.pcap.zst", &zstd(b""))]);
    assert!(
        problem.contains("empty file (zstd-compressed)"),
        "{problem}"
    );
}

#[test]
fn file_header_cut_off_is_an_error() {
    let dir = test_dir("header_cut");
    let full = pcap(0xa1b2_c3d4, false, 1, &[]);
    let (_, problem) = read_err(&[write(&dir, "h.pcap", &full[..10])]);
    assert!(problem.contains("cut off"), "{problem}");
    let ng = two_section_pcapng();
    let (_, problem) = read_err(&[write(&dir, "h.pcapng", &ng[..20])]);
    assert!(problem.contains("pcapng"), "{problem}");
}

#[test]
fn truncated_file_keeps_the_frames_before_the_cut_and_goes_on() {
    let dir = test_dir("truncated");
    let full = pcap(0xa1b2_c3d4, false, 1, &three_records());
    let cut_at = full.len() - 5; // inside the third record's data
    let cut = write(&dir, "cut.pcap", &full[..cut_at]);
    let next = write(&dir, "next.pcap", &full);
    let (s, got) = read(&[cut.clone(), next]);
    assert_eq!(got.len(), 2 + 3);
    assert_eq!(s.frames, 5);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    let third_record = 24 + (16 + A.len()) + (16 + B.len());
    let w = &s.warnings[0];
    assert!(w.starts_with(&format!("{cut}: ")), "{w}");
    assert!(
        w.contains(&format!(
            "cut off in a record at byte offset {third_record}"
        )),
        "{w}"
    );
    assert!(w.contains("before it"), "{w}");

    // Cut inside a record header too.
    let (s, got) = read(&[write(&dir, "cut2.pcap", &full[..third_record + 3])]);
    assert_eq!((got.len(), s.warnings.len()), (2, 1));
}

#[test]
fn truncated_pcapng_and_compressed_files_warn() {
    let dir = test_dir("truncated_ng");
    let ng = two_section_pcapng();
    let (s, got) = read(&[write(&dir, "cut.pcapng", &ng[..ng.len() - 10])]);
    assert_eq!(got.len(), 5);
    assert!(
        s.warnings[0].contains("cut off in a block at byte offset"),
        "{:?}",
        s.warnings
    );

    // Compressed copies of a larger capture (pseudo-random data, so that it stays large
    // compressed), cut in the middle of the compressed data.
    let mut ng = Ng::default();
    ng.shb(false).idb(1, 0, &[]);
    let mut state = 0x1234_5678u32;
    for i in 0..2000u64 {
        let data: Vec<u8> = (0..200)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        ng.epb(0, i, &data, 200);
    }
    let big = ng.bytes();
    for (name, packed) in [
        ("cut.pcapng.gz", gzip(&big)),
        ("cut.pcapng.zst", zstd(&big)),
    ] {
        let path = write(&dir, name, &packed[..packed.len() / 2]);
        let (s, got) = read(std::slice::from_ref(&path));
        assert!(got.len() > 100 && got.len() < 2000, "{name}: {}", got.len());
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        let w = &s.warnings[0];
        assert!(w.starts_with(&format!("{path}: ")), "{w}");
        assert!(
            w.contains("decompressed data") && w.contains("before it"),
            "{w}"
        );
        println!("{w}");
    }
}

#[test]
fn corrupt_lengths_stop_the_file_with_a_warning() {
    let dir = test_dir("corrupt");
    // A pcap record claiming 4 GiB.
    let mut bad = pcap(0xa1b2_c3d4, false, 1, &three_records()[..1]);
    bad.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0xff, 0xff, 0xff, 0x10, 0, 0, 0,
    ]);
    bad.extend_from_slice(&[0u8; 64]);
    let (s, got) = read(&[write(&dir, "huge.pcap", &bad)]);
    assert_eq!(got.len(), 1);
    assert!(
        s.warnings[0].contains("4294967280 captured bytes"),
        "{:?}",
        s.warnings
    );

    // pcapng blocks: a length not a multiple of 4, a zero length, lengths that differ.
    let mut ng = Ng::default();
    ng.shb(false).idb(1, 0, &[]).epb(0, 1, b"ok", 2);
    let good = ng.bytes();
    for (name, tail) in [
        (
            "odd.pcapng",
            [6u8, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0, 0],
        ),
        (
            "zero.pcapng",
            [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "differ.pcapng",
            [6, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0],
        ),
        (
            "huge.pcapng",
            [6, 0, 0, 0, 0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
    ] {
        let mut bytes = good.clone();
        bytes.extend_from_slice(&tail);
        let (s, got) = read(&[write(&dir, name, &bytes)]);
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(s.warnings.len(), 1, "{name}");
        assert!(
            s.warnings[0].contains("stopped reading this file"),
            "{:?}",
            s.warnings
        );
    }

    // A packet on an interface the section does not describe, and an EPB too short.
    let mut ng = Ng::default();
    ng.shb(false)
        .idb(1, 0, &[])
        .epb(0, 1, b"ok", 2)
        .epb(3, 2, b"no", 2);
    let (s, got) = read(&[write(&dir, "no-iface.pcapng", &ng.bytes())]);
    assert_eq!(got.len(), 1);
    assert!(s.warnings[0].contains("interface 3"), "{:?}", s.warnings);
    let mut ng = Ng::default();
    ng.shb(false).idb(1, 0, &[]).block(6, &[0u8; 8]);
    let (s, _) = read(&[write(&dir, "short-epb.pcapng", &ng.bytes())]);
    assert!(
        s.warnings[0].contains("impossible length 20"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn packet_block_claiming_more_than_it_holds_is_cut_to_the_block() {
    let dir = test_dir("caplen_over_block");
    let mut ng = Ng::default();
    ng.shb(false).idb(1, 0, &[]).epb(0, 1, b"12345678", 8);
    let mut bytes = ng.bytes();
    // caplen of that EPB (offset 20 in the block) set to 1000; the options follow the data.
    let epb_start = bytes.len() - (32 + 8 + 12);
    bytes[epb_start + 20..epb_start + 24].copy_from_slice(&1000u32.to_le_bytes());
    ng.out = bytes;
    ng.epb(0, 2, b"next", 4);
    let (s, got) = read(&[write(&dir, "over.pcapng", &ng.bytes())]);
    assert_eq!(got.len(), 2);
    // Cut to the block: the data, its padding and the options.
    assert_eq!(got[0].caplen, 8 + 12);
    assert_eq!(&got[0].bytes[..8], b"12345678");
    assert_eq!(got[1].bytes, b"next");
    assert_eq!(s.warnings.len(), 1);
    assert!(
        s.warnings[0].contains("1 packet block(s) claimed more"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn records_larger_than_the_buffer_grow_it() {
    let dir = test_dir("big_records");
    let big = vec![0xabu8; 700_000];
    let (s, got) = read(&[write(
        &dir,
        "big.pcap",
        &pcap(
            0xa1b2_c3d4,
            false,
            1,
            &[(1, 0, A, 16), (2, 0, &big, 700_000), (3, 0, B, 7)],
        ),
    )]);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].bytes, big);
    assert!(s.warnings.is_empty());

    let comment = vec![b'x'; 600_000];
    let mut ng = Ng::default();
    ng.shb(false).idb(1, 0, &[(1, &comment[..60_000])]);
    ng.block(0x0bad, &comment)
        .epb(0, 1, &big, 700_000)
        .epb(0, 2, b"after", 5);
    let bytes = ng.bytes();
    let (s, got) = read(&[write(&dir, "big.pcapng.gz", &gzip(&bytes))]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].bytes, big);
    assert_eq!(got[1].bytes, b"after");
    assert!(s.warnings.is_empty());
}

#[test]
fn damaged_captures_never_panic_nor_hang() {
    // Random damage (bytes changed, lengths set to huge values, cuts) to small captures of
    // every kind: each read must end, with frames, a warning or an error.
    let dir = test_dir("damaged");
    let seeds = [
        two_section_pcapng(),
        pcap(0xa1b2_c3d4, true, 1, &three_records()),
        pcap(0xa1b2_3c4d, false, 101, &three_records()),
        pcap(0xa1b2_cd34, false, 1, &three_records()),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let mut filter = Filter::new("tcp or udp").unwrap();
    for round in 0..1500 {
        let mut b = seeds[random(seeds.len())].clone();
        for _ in 0..1 + random(3) {
            let at = random(b.len());
            match random(3) {
                0 => b[at] = random(256) as u8,
                1 => b.truncate(at.max(1)),
                _ => {
                    for (i, v) in [0xf0u8, 0xff, 0xff, 0x7f].into_iter().enumerate() {
                        if let Some(x) = b.get_mut(at + i) {
                            *x = v;
                        }
                    }
                }
            }
        }
        if round % 3 == 0 {
            b = gzip(&b);
        }
        let path = write(&dir, "damaged", &b);
        let _ = read_with(&[path], (round % 2 == 0).then_some(&mut filter));
    }
}

// ---------------------------------------------------------------------------------------------
// Filter

#[test]
fn filter_accepts_tcp_25_and_rejects_udp() {
    let mut filter = Filter::new("tcp port 25").unwrap();
    assert_eq!(filter.expr(), "tcp port 25");
    let tcp = ip_frame(6, 25);
    let udp = ip_frame(17, 25);
    fn frame(bytes: &[u8]) -> Frame<'_> {
        Frame {
            ts: Timestamp::ZERO,
            link: LinkType::ETHERNET,
            caplen: bytes.len() as u32,
            wire_len: bytes.len() as u32,
            iface: 0,
            interfaces: 1,
            bytes,
        }
    }
    assert!(filter.matches(&frame(&tcp)).unwrap());
    assert!(!filter.matches(&frame(&udp)).unwrap());
    // The same IP packet on a raw-IP link: compiled for that link type on first use.
    let raw = Frame {
        link: LinkType::RAW,
        ..frame(&tcp[14..])
    };
    assert!(filter.matches(&raw).unwrap());
}

#[test]
fn bad_filter_expression_is_a_usage_error_naming_it() {
    match Filter::new("tcp port smtpx and") {
        Err(Error::Usage(msg)) => {
            assert!(
                msg.contains("invalid --filter 'tcp port smtpx and'"),
                "{msg}"
            );
            assert!(
                msg.len() > "invalid --filter 'tcp port smtpx and': ".len(),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn read_files_applies_the_filter() {
    let dir = test_dir("filtered");
    let (tcp, udp) = (ip_frame(6, 25), ip_frame(17, 53));
    let records = [
        (1, 0, &tcp[..], 54),
        (2, 0, &udp[..], 42),
        (3, 0, &tcp[..], 54),
    ];
    let f = write(&dir, "mixed.pcap", &pcap(0xa1b2_c3d4, false, 1, &records));
    let mut filter = Filter::new("tcp").unwrap();
    let (s, got) = read_with(&[f], Some(&mut filter)).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((s.frames, s.filtered_out), (3, 1));
    assert_eq!(s.bytes, 2 * tcp.len() as u64);
    assert_eq!(
        (s.first_ts, s.last_ts),
        (Some(Timestamp(SEC)), Some(Timestamp(3 * SEC)))
    );
}

// ---------------------------------------------------------------------------------------------
// Shared captures

#[test]
fn every_shared_capture_reads_without_error() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/captures"));
    if !root.is_dir() {
        crate::util::skip(
            "every_shared_capture_reads_without_error",
            "../shared/captures not present",
        );
        return;
    }
    let mut files = Vec::new();
    for sub in ["zeek", "tcpdump", "pcapng-generator"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    assert!(!files.is_empty());
    for file in &files {
        let (s, _) = read(std::slice::from_ref(file));
        println!(
            "{file}: {} frames, link types {:?}, warnings {:?}",
            s.frames, s.link_types, s.warnings
        );
        assert!(s.frames > 0, "{file}");
    }
    // All of them as one capture.
    let (s, _) = read(&files);
    assert_eq!(s.files.len(), files.len());
}
