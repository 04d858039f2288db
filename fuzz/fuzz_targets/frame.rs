//! Arbitrary bytes as frames of every supported link type, through `decode_into` (tunnels
//! opened: a tunnel's UDP carriers are fed too) and a flow table; every finished connection
//! is checked. (The multi-interface dedup in front of the
//! table is left to the `capture` target: its 16,384-slot table would cost more to set up per
//! input than the rest.)
//!
//! Input layout (see README.md; `make-seeds.py` writes seeds in it):
//! - byte 0: the link type, an index into the link types `exflow::decode::supports`;
//! - then frames, each `[dt] [cut] [len lo] [len hi] [len bytes]` (the last frame takes what
//!   is left when `len` runs past the end). `dt` moves the clock by `dt³` milliseconds (up to
//!   ~4.6 h, past every idle timeout; 255 moves it one second back); `cut` > 0 says the frame
//!   was `cut` bytes longer on the wire (a snap-length cut).

#![no_main]

mod common;

use exflow::decode::{decode_into, supports, Layers, Packet, Transport};
use exflow::flow::{ConnRecord, FlowConfig, FlowTable};
use exflow::source::{Frame, LinkType};
use exflow::time::{Duration, Timestamp};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn links() -> &'static [LinkType] {
    static LINKS: OnceLock<Vec<LinkType>> = OnceLock::new();
    LINKS.get_or_init(|| {
        (0..=1024u32)
            .map(LinkType)
            .filter(|&l| supports(l))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let links = links();
    let link = links[usize::from(sel) % links.len()];
    // A small table, so that eviction is reached too; short timeouts so expiry is.
    let cfg = FlowConfig {
        max_flows: 8,
        tcp_idle: Duration::from_secs(300),
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(cfg);
    let mut fed = 0u64;
    let mut counted = 0u64;
    let mut sink = |r: &ConnRecord| {
        common::check_record(r);
        if r.look.is_some() {
            // The facts print as JSON, bounded, whatever the bytes were.
            let mut with = Vec::new();
            exflow::report::jsonl::write_record(&mut with, r, None).expect("written");
            let mut bare = r.clone();
            bare.look = None;
            let mut without = Vec::new();
            exflow::report::jsonl::write_record(&mut without, &bare, None).expect("written");
            assert!(with.len() - without.len() < 4096, "look facts unbounded");
            let _: serde_json::Value = serde_json::from_slice(&with).expect("a JSON line");
        }
        counted += r.orig_stats.pkts + r.resp_stats.pkts;
    };
    let mut layers = Layers::default();
    let mut ts = Timestamp(1_700_000_000_000_000_000);
    while rest.len() >= 4 {
        let (dt, cut) = (rest[0], rest[1]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let body = &rest[4..];
        let bytes = &body[..len.min(body.len())];
        rest = &body[bytes.len()..];
        ts = if dt == 255 {
            Timestamp(ts.0 - 1_000_000_000)
        } else {
            ts.plus(Duration(i64::from(dt).pow(3) * 1_000_000))
        };
        let caplen = bytes.len() as u32;
        let frame = Frame {
            ts,
            link,
            caplen,
            wire_len: caplen + u32::from(cut),
            iface: 0,
            interfaces: 1,
            bytes,
        };
        let mut pkt = Packet::EMPTY;
        if decode_into(&frame, &mut pkt, &mut layers).is_err() {
            continue;
        }
        assert!(
            pkt.truncated || cut == 0,
            "a cut frame not marked truncated"
        );
        assert!(layers.carriers().len() <= layers.tunnels().len());
        // A tunnel's UDP carriers go to the table before the packet inside, as in the pipeline;
        // the packet with its TCP payload, for the payload look's parsers (SMTP, TLS, HTTP).
        let payload = layers.tcp_payload(bytes);
        for (i, p) in layers.carriers().iter().chain([&pkt]).enumerate() {
            if !matches!(p.transport, Transport::Other { .. }) {
                fed += 1;
            }
            let last = i == layers.carriers().len();
            table.observe_with(ts, p, if last { payload } else { &[] }, &mut sink);
            assert!(table.len() <= cfg.max_flows, "table over its cap");
        }
    }
    table.finish(&mut sink);
    assert!(table.is_empty());
    assert_eq!(
        counted, fed,
        "packets in records != packets fed to the table"
    );
});
