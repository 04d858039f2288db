//! BPF `--filter`: compiled by libpcap (through the `pcap` crate) for each link type met, and
//! applied to frames from files as well as live.
//!
//! libpcap compiles the expression; the program then runs here, in a small classic-BPF
//! interpreter (the same semantics as libpcap's `bpf_filter()`), for one reason: the `pcap`
//! crate's `BpfProgram::filter(&[u8])` hands libpcap the captured length as the wire length
//! too, so `len`, `greater` and `less` would see the snap length instead of the frame's real
//! length in a capture cut by `-s`. The interpreter is given both lengths. The instructions are
//! read once per link type from the compiled program; should that ever fail, the frame is run
//! through `BpfProgram::filter` instead (correct except for those three primitives).
//!
//! Nothing is allocated per frame: one program per link type, compiled the first time the link
//! type is met, kept in a short `Vec`.

use super::{Frame, LinkType};
use crate::error::Error;
use std::collections::HashMap;
use std::fmt;

/// A `--filter` expression, compiled for every link type it has met.
pub struct Filter {
    expr: String,
    /// One compiled program per link type met, Ethernet first.
    programs: Vec<(LinkType, Program)>,
    /// Where each link type's program is in `programs` (`None`: libpcap cannot compile the
    /// expression for it), so that a capture of thousands of link types is not scanned per
    /// frame, nor compiled again for a link type that failed.
    index: HashMap<LinkType, Option<usize>>,
    /// Index in `programs` of the one used last (frames come in runs of one link type).
    last: usize,
}

/// A program compiled by libpcap for one link type.
struct Program {
    /// libpcap's compiled program (kept for its instructions and as the fallback).
    bpf: pcap::BpfProgram,
    /// The same instructions, decoded for [`run`]; `None` if they could not be read.
    insns: Option<Vec<Insn>>,
}

impl Filter {
    /// Compiles `expr` (for Ethernet, to report a syntax error at once).
    pub fn new(expr: &str) -> Result<Filter, Error> {
        let program = Program::compile(expr, LinkType::ETHERNET)
            .map_err(|msg| Error::Usage(format!("invalid --filter '{expr}': {msg}")))?;
        Ok(Filter {
            expr: expr.to_string(),
            programs: vec![(LinkType::ETHERNET, program)],
            index: HashMap::from([(LinkType::ETHERNET, Some(0))]),
            last: 0,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// Whether the frame passes. Compiles the expression for a link type the first time it
    /// is met; a link type the expression cannot be compiled for is an error.
    pub fn matches(&mut self, frame: &Frame<'_>) -> Result<bool, Error> {
        let index = self.program_for(frame.link)?;
        let program = &self.programs[index].1;
        Ok(match &program.insns {
            Some(insns) => run(insns, frame.bytes, frame.wire_len) != 0,
            None => program.bpf.filter(frame.bytes),
        })
    }

    /// Whether the frame passes; `None` when the expression cannot be compiled for its link
    /// type (the reader skips and counts such frames). Compiles once per link type.
    #[inline]
    pub fn try_matches(&mut self, frame: &Frame<'_>) -> Option<bool> {
        let index = self.lookup(frame.link)?;
        let program = &self.programs[index].1;
        Some(match &program.insns {
            Some(insns) => run(insns, frame.bytes, frame.wire_len) != 0,
            None => program.bpf.filter(frame.bytes),
        })
    }

    /// Index in `programs` of the program for `link`, compiling it if it is new; `None` if it
    /// cannot be compiled (remembered).
    fn lookup(&mut self, link: LinkType) -> Option<usize> {
        if self
            .programs
            .get(self.last)
            .is_some_and(|(l, _)| *l == link)
        {
            return Some(self.last);
        }
        let index = match self.index.get(&link) {
            Some(known) => *known,
            None => {
                let compiled = Program::compile(&self.expr, link).ok().map(|program| {
                    self.programs.push((link, program));
                    self.programs.len() - 1
                });
                self.index.insert(link, compiled);
                compiled
            }
        };
        if let Some(i) = index {
            self.last = i;
        }
        index
    }

    /// Index in `programs` of the program for `link`, compiling it if it is new; an error
    /// names the link type when libpcap cannot compile the expression for it.
    fn program_for(&mut self, link: LinkType) -> Result<usize, Error> {
        if let Some(i) = self.lookup(link) {
            return Ok(i);
        }
        let msg = Program::compile(&self.expr, link).err().unwrap_or_default();
        Err(Error::Usage(format!(
            "--filter '{}' cannot be applied to link type {link} ({}): {msg}",
            self.expr, link.0
        )))
    }

    /// Runs the frame through libpcap's own `pcap_offline_filter` (which is given the captured
    /// length as the wire length), to check the interpreter against libpcap.
    #[cfg(test)]
    fn matches_libpcap(&mut self, frame: &Frame<'_>) -> Result<bool, Error> {
        let index = self.program_for(frame.link)?;
        Ok(self.programs[index].1.bpf.filter(frame.bytes))
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("expr", &self.expr)
            .field(
                "compiled_for",
                &self.programs.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Program {
    /// Compiles `expr` with libpcap for `link`; the error is libpcap's message.
    fn compile(expr: &str, link: LinkType) -> Result<Program, String> {
        let dlt = i32::try_from(dlt_for(link)).map_err(|_| "unknown link type".to_string())?;
        let dead = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| pcap_message(&e))?;
        let bpf = dead.compile(expr, true).map_err(|e| pcap_message(&e))?;
        let insns = bpf
            .get_instructions()
            .iter()
            .map(|i| Insn::parse(&i.to_string()))
            .collect();
        Ok(Program { bpf, insns })
    }
}

/// libpcap's own text for an error from the `pcap` crate, without the crate's prefix.
fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg.clone(),
        pcap::Error::InvalidInputString => "the expression contains a NUL character".into(),
        other => other.to_string(),
    }
}

/// The DLT value libpcap wants for a `LINKTYPE_` value read from a file. They are the same
/// number except for a few old types; of those, only raw IP (`LINKTYPE_RAW` = 101) is met in
/// practice, and libpcap's `DLT_RAW` is 12 (14 on OpenBSD).
fn dlt_for(link: LinkType) -> u32 {
    match link {
        LinkType::RAW if cfg!(target_os = "openbsd") => 14,
        LinkType::RAW => 12,
        other => other.0,
    }
}

/// One classic BPF instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

impl Insn {
    /// Reads the `pcap` crate's text form of an instruction, `"code jt jf k"` in decimal.
    fn parse(text: &str) -> Option<Insn> {
        let mut fields = text.split_whitespace();
        let insn = Insn {
            code: fields.next()?.parse().ok()?,
            jt: fields.next()?.parse().ok()?,
            jf: fields.next()?.parse().ok()?,
            k: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(insn)
    }
}

/// Runs a classic BPF program over a frame of `pkt.len()` captured bytes and `wire_len` bytes
/// on the wire, as libpcap's `bpf_filter()` does: the return value is the number of bytes to
/// keep, 0 meaning "reject". A load beyond the captured bytes, a division by zero, a jump out
/// of the program or an unknown instruction rejects the frame.
fn run(insns: &[Insn], pkt: &[u8], wire_len: u32) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let Some(&Insn { code, jt, jf, k }) = insns.get(pc) else {
            return 0;
        };
        pc += 1;
        match code {
            // BPF_RET
            0x06 => return k,
            0x16 => return a,
            // BPF_LD: absolute, indirect, length, immediate, scratch memory
            0x20 | 0x28 | 0x30 => match load(pkt, code, Some(k)) {
                Some(v) => a = v,
                None => return 0,
            },
            0x40 | 0x48 | 0x50 => match load(pkt, code, x.checked_add(k)) {
                Some(v) => a = v,
                None => return 0,
            },
            0x80 => a = wire_len,
            0x00 => a = k,
            0x60 => match mem.get(k as usize) {
                Some(&v) => a = v,
                None => return 0,
            },
            // BPF_LDX: immediate, scratch memory, length, 4 * (IP header length)
            0x01 => x = k,
            0x61 => match mem.get(k as usize) {
                Some(&v) => x = v,
                None => return 0,
            },
            0x81 => x = wire_len,
            0xb1 => match pkt.get(k as usize) {
                Some(&b) => x = u32::from(b & 0x0f) << 2,
                None => return 0,
            },
            // BPF_ST, BPF_STX
            0x02 | 0x03 => match mem.get_mut(k as usize) {
                Some(m) => *m = if code == 0x02 { a } else { x },
                None => return 0,
            },
            // BPF_JMP
            0x05 => pc = pc.saturating_add(k as usize),
            0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d => {
                let operand = if code & 0x08 == 0 { k } else { x };
                let taken = match code & 0xf0 {
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    _ => a & operand != 0,
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            // BPF_ALU
            0x84 => a = a.wrapping_neg(),
            c if c & 0x07 == 0x04 => {
                let operand = if c & 0x08 == 0 { k } else { x };
                a = match c & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x30 => match a.checked_div(operand) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.checked_shl(operand).unwrap_or(0),
                    0x70 => a.checked_shr(operand).unwrap_or(0),
                    0x90 => match a.checked_rem(operand) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0xa0 => a ^ operand,
                    _ => return 0,
                };
            }
            // BPF_MISC: TAX, TXA
            0x07 => x = a,
            0x87 => a = x,
            _ => return 0,
        }
    }
}

/// A big-endian load of the size in `code` (word, half-word, byte) at `offset`.
fn load(pkt: &[u8], code: u16, offset: Option<u32>) -> Option<u32> {
    let at = usize::try_from(offset?).ok()?;
    match code & 0x18 {
        0x00 => pkt
            .get(at..at.checked_add(4)?)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        0x08 => pkt
            .get(at..at.checked_add(2)?)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]]))),
        _ => pkt.get(at).map(|&b| u32::from(b)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    /// An Ethernet/IPv4/TCP frame from 10.0.0.1:40000 to 10.0.0.2:`dport`.
    fn tcp_frame(dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12] = 0x08; // EtherType IPv4
        f[14] = 0x45; // IPv4, IHL 5
        f[16..18].copy_from_slice(&40u16.to_be_bytes()); // total length
        f[23] = 6; // TCP
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f[46] = 0x50; // data offset 5
        f
    }

    fn frame(bytes: &[u8], wire_len: u32) -> Frame<'_> {
        Frame {
            ts: Timestamp::ZERO,
            link: LinkType::ETHERNET,
            caplen: bytes.len() as u32,
            wire_len,
            iface: 0,
            interfaces: 1,
            bytes,
        }
    }

    #[test]
    fn instructions_are_read_from_the_compiled_program() {
        let f = Filter::new("tcp port 25").unwrap();
        assert!(f.programs[0]
            .1
            .insns
            .as_ref()
            .is_some_and(|i| !i.is_empty()));
    }

    #[test]
    fn interpreter_agrees_with_libpcap() {
        let exprs = [
            "tcp port 25",
            "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
            "ip[2:2] > 30 and not udp",
            "ip host 10.0.0.2 and (tcp dst port 25 or tcp dst port 587)",
            "ip6 or arp",
            "vlan and tcp",
        ];
        let mut bytes = tcp_frame(25);
        for expr in exprs {
            let mut filter = Filter::new(expr).unwrap();
            for dport in [25u16, 80, 587] {
                bytes[36..38].copy_from_slice(&dport.to_be_bytes());
                for cut in [bytes.len(), 40, 20, 0] {
                    let fr = frame(&bytes[..cut], cut as u32);
                    assert_eq!(
                        filter.matches(&fr).unwrap(),
                        filter.matches_libpcap(&fr).unwrap(),
                        "{expr} dport {dport} cut {cut}"
                    );
                }
            }
        }
    }

    /// Every frame of the shared captures (several link types, VLANs, PPPoE, IPv6...), through
    /// the interpreter and through libpcap: the same answer.
    #[test]
    fn interpreter_agrees_with_libpcap_on_the_shared_captures() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/captures"));
        if !root.is_dir() {
            println!("skipped: ../shared/captures not present");
            return;
        }
        let mut files = Vec::new();
        for sub in ["zeek", "tcpdump", "pcapng-generator"] {
            for entry in std::fs::read_dir(root.join(sub)).unwrap() {
                files.push(entry.unwrap().path().to_string_lossy().into_owned());
            }
        }
        let exprs = [
            "tcp port 25 or tcp port 587",
            "tcp[tcpflags] & tcp-rst != 0",
            "ip6 and tcp",
            "vlan and ip",
            "udp and not port 53",
            "net 192.168.0.0/16 and tcp[13] & 2 != 0",
            "icmp or icmp6",
            "pppoes and tcp",
            "ip[6:2] & 0x1fff != 0",
        ];
        for expr in exprs {
            let mut filter = Filter::new(expr).unwrap();
            let (mut checked, mut passed) = (0u64, 0u64);
            let mut mismatch = None;
            crate::source::file::read_files(&files, None, &mut |f: &Frame<'_>| {
                let Ok(ours) = filter.matches(f) else { return };
                if ours != filter.matches_libpcap(f).unwrap() && mismatch.is_none() {
                    mismatch = Some(format!("{expr}: frame at {} on {}", f.ts.0, f.link));
                }
                checked += 1;
                passed += u64::from(ours);
            })
            .unwrap();
            assert_eq!(mismatch, None);
            println!("{expr}: {passed} of {checked} frames pass");
        }
    }

    #[test]
    fn length_primitives_see_the_wire_length() {
        let bytes = tcp_frame(25);
        let mut filter = Filter::new("greater 1000").unwrap();
        assert!(filter.matches(&frame(&bytes, 1500)).unwrap());
        assert!(!filter.matches(&frame(&bytes, 54)).unwrap());
        let mut filter = Filter::new("len <= 100 and tcp").unwrap();
        assert!(filter.matches(&frame(&bytes, 60)).unwrap());
        assert!(!filter.matches(&frame(&bytes, 1500)).unwrap());
    }

    #[test]
    fn malformed_programs_reject_instead_of_panicking() {
        let jump_out = [Insn {
            code: 0x05,
            jt: 0,
            jf: 0,
            k: u32::MAX,
        }];
        assert_eq!(run(&jump_out, &[], 0), 0);
        let div_zero = [
            Insn {
                code: 0x34,
                jt: 0,
                jf: 0,
                k: 0,
            },
            Insn {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 1,
            },
        ];
        assert_eq!(run(&div_zero, &[], 0), 0);
        let far_load = [Insn {
            code: 0x40,
            jt: 0,
            jf: 0,
            k: u32::MAX,
        }];
        assert_eq!(run(&far_load, &[1, 2, 3, 4], 4), 0);
        let bad_mem = [Insn {
            code: 0x60,
            jt: 0,
            jf: 0,
            k: 16,
        }];
        assert_eq!(run(&bad_mem, &[], 0), 0);
        assert_eq!(Insn::parse("6 0 0 65535 7"), None);
        assert_eq!(
            Insn::parse("6 0 0 65535"),
            Some(Insn {
                code: 6,
                jt: 0,
                jf: 0,
                k: 65535
            })
        );
    }

    #[test]
    fn raw_ip_link_type_compiles() {
        let mut filter = Filter::new("tcp port 25").unwrap();
        let bytes = tcp_frame(25);
        let fr = Frame {
            link: LinkType::RAW,
            ..frame(&bytes[14..], 40)
        };
        assert!(filter.matches(&fr).unwrap());
        assert_eq!(filter.programs.len(), 2);
    }
}
