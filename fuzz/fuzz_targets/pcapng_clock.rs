//! pcapng interface and timestamp options: the input is read as a script that builds a
//! well-formed pcapng file (sections, interface descriptions with arbitrary link types,
//! `if_tsresol`, `if_tsoffset` and `if_name`, packet blocks with arbitrary 64-bit timestamps
//! on arbitrary interface ids, simple packet blocks), so that the fuzzer spends its time on
//! the values rather than on framing. The file goes through `read_files` (with and without a
//! `--filter`) and the flow table; checked: no panic, every frame's time within
//! `[0, clock::MAX_NS]`, at most `MAX_INTERFACES` interfaces, the frames counted.

#![no_main]

use exflow::decode::{decode_into, Layers, Packet};
use exflow::flow::{ConnRecord, FlowConfig, FlowTable};
use exflow::source::clock::MAX_NS;
use exflow::source::file::{read_files, MAX_INTERFACES};
use exflow::source::filter::Filter;
use exflow::source::Frame;
use libfuzzer_sys::fuzz_target;

mod common;

/// Reads the script's bytes in order (zeros past the end).
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

fn block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&len.to_le_bytes());
}

fn shb(out: &mut Vec<u8>) {
    let mut body = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    body.extend_from_slice(&[1, 0, 0, 0]);
    body.extend_from_slice(&[0xff; 8]);
    block(out, 0x0A0D_0D0A, &body);
}

/// A TCP SYN or SYN-ACK on Ethernet between documentation addresses.
fn frame(n: u8, back: bool) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    let (a, b) = ([192, 0, 2, 1], [198, 51, 100, 1 + (n & 7)]);
    let (src, dst) = if back { (b, a) } else { (a, b) };
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    let (sp, dp) = if back {
        (443u16, 40000u16)
    } else {
        (40000, 443)
    };
    f[34..36].copy_from_slice(&sp.to_be_bytes());
    f[36..38].copy_from_slice(&dp.to_be_bytes());
    f[46] = 0x50;
    f[47] = if back { 0x12 } else { 0x02 };
    f
}

/// The pcapng file the script describes.
fn build(data: &[u8]) -> Vec<u8> {
    let mut s = Script(data);
    let mut out = Vec::new();
    shb(&mut out);
    let mut steps = 0;
    let mut many = 0;
    while !s.done() && steps < 4096 {
        steps += 1;
        match s.byte() % 8 {
            0 => shb(&mut out),
            1 | 2 => {
                // An interface: link type, then options chosen by a mask.
                let link = if s.byte() & 1 == 0 { 1 } else { s.u16() };
                let mut body = link.to_le_bytes().to_vec();
                body.extend_from_slice(&[0, 0]);
                body.extend_from_slice(&s.u32().to_le_bytes()[..]);
                let mask = s.byte();
                let mut any = false;
                if mask & 1 != 0 {
                    body.extend_from_slice(&[9, 0, 1, 0, s.byte(), 0, 0, 0]);
                    any = true;
                }
                if mask & 2 != 0 {
                    body.extend_from_slice(&[14, 0, 8, 0]);
                    body.extend_from_slice(&s.u64().to_le_bytes());
                    any = true;
                }
                if mask & 4 != 0 {
                    let len = usize::from(s.byte() % 80);
                    body.extend_from_slice(&[2, 0, len as u8, 0]);
                    let start = body.len();
                    for _ in 0..len {
                        body.push(s.byte());
                    }
                    body.resize(start + len.div_ceil(4) * 4, 0);
                    any = true;
                }
                if mask & 8 != 0 {
                    // Many interfaces at once (past the per-section bound of 1,024), at most
                    // 4,096 per input: 65,535 per step made files of hundreds of MB, whose
                    // reading (0.98 s) timed libFuzzer out under load.
                    let n = usize::from(s.u16() % 2048).min(4096 - many);
                    many += n;
                    if any {
                        body.extend_from_slice(&[0, 0, 0, 0]);
                    }
                    for _ in 0..n {
                        block(&mut out, 1, &body);
                    }
                    continue;
                }
                if any {
                    body.extend_from_slice(&[0, 0, 0, 0]);
                }
                block(&mut out, 1, &body);
            }
            3 => {
                let data = frame(s.byte(), false);
                let mut body = data.len().to_le_bytes()[..4].to_vec();
                body.extend_from_slice(&data);
                block(&mut out, 3, &body);
            }
            _ => {
                // A packet: interface id (usually small), timestamp (often near a base).
                let sel = s.byte();
                let if_id = if sel & 0x80 != 0 {
                    s.u32()
                } else {
                    u32::from(sel & 7)
                };
                let ts = match s.byte() % 4 {
                    0 => s.u64(),
                    1 => 1_700_000_000_000_000u64.wrapping_add(u64::from(s.u32())),
                    2 => 1_700_000_000_000_000u64.wrapping_sub(u64::from(s.u32())),
                    _ => u64::from(s.u16()),
                };
                let data = frame(s.byte(), sel & 0x40 != 0);
                let mut body = Vec::new();
                for v in [if_id, (ts >> 32) as u32, ts as u32, data.len() as u32, 54] {
                    body.extend_from_slice(&v.to_le_bytes());
                }
                body.extend_from_slice(&data);
                block(&mut out, 6, &body);
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let bytes = build(data);
    let path = common::temp_path("pcapng-clock");
    if std::fs::write(path, &bytes).is_err() {
        return;
    }
    let paths = [path.to_string()];
    let mut table = FlowTable::new(FlowConfig::default());
    let mut layers = Layers::default();
    let mut sink = |r: &ConnRecord| common::check_record(r);
    let mut handed = 0u64;
    let stats = read_files(&paths, None, &mut |f: &Frame<'_>| {
        handed += 1;
        assert!(
            (0..=MAX_NS).contains(&f.ts.0),
            "frame time {} out of range",
            f.ts.0
        );
        let mut pkt = Packet::EMPTY;
        if decode_into(f, &mut pkt, &mut layers).is_ok() {
            table.observe(f.ts, &pkt, &mut sink);
        }
    });
    if let Ok(stats) = stats {
        assert_eq!(stats.frames, handed);
        assert!(stats.interfaces.len() <= MAX_INTERFACES);
    }
    table.finish(&mut sink);
    if let Ok(mut filter) = Filter::new("tcp port 443") {
        let _ = read_files(&paths, Some(&mut filter), &mut |f: &Frame<'_>| {
            assert!((0..=MAX_NS).contains(&f.ts.0));
        });
    }
});
