//! The hot path allocates nothing: decode and flow update over every frame of every sample
//! (and of the shared tunnel captures: tunnels opened, their carriers fed) are run under a
//! counting allocator (a count, not a timing).

#![allow(unsafe_code)] // the counting allocator only; the library forbids unsafe code

use crate::util::{root, shared_captures};
use exflow::decode::{decode_into, Layers, Packet};
use exflow::flow::{ConnRecord, FlowConfig, FlowTable};
use exflow::source::file::read_files;
use exflow::source::{Frame, LinkType};
use exflow::time::Timestamp;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(|c| c.get())
}

struct Owned {
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
    bytes: Vec<u8>,
}

#[test]
fn decode_and_flow_update_allocate_nothing_per_packet() {
    let mut samples: Vec<_> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    samples.sort();
    assert!(!samples.is_empty());
    // Tunnelled frames too (GRE, ERSPAN, VXLAN, Geneve), when the shared captures are here.
    if let Some(dir) = shared_captures("decode_and_flow_update_allocate_nothing_per_packet") {
        let mut tunnels: Vec<_> = std::fs::read_dir(dir.join("tunnels"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        tunnels.sort();
        samples.extend(tunnels);
    }
    let mut frames = vec![];
    read_files(&samples, None, &mut |f: &Frame<'_>| {
        frames.push(Owned {
            ts: f.ts,
            link: f.link,
            wire_len: f.wire_len,
            bytes: f.bytes.to_vec(),
        })
    })
    .unwrap();
    assert!(frames.len() > 100);

    let mut table = FlowTable::new(FlowConfig::default());
    let mut ended = 0u64;
    let mut sink = |_: &ConnRecord| ended += 1;
    let mut layers = Layers::default();
    let mut pkt = Packet::EMPTY;
    let before = allocations();
    for f in &frames {
        let frame = Frame {
            ts: f.ts,
            link: f.link,
            caplen: f.bytes.len() as u32,
            wire_len: f.wire_len,
            iface: 0,
            interfaces: 1,
            bytes: &f.bytes,
        };
        if decode_into(&frame, &mut pkt, &mut layers).is_ok() {
            for c in layers.carriers() {
                table.observe(frame.ts, c, &mut sink);
            }
            table.observe(frame.ts, &pkt, &mut sink);
        }
    }
    let during = allocations() - before;
    println!(
        "{} frames, {during} allocations, {ended} connections ended on the way",
        frames.len()
    );
    assert_eq!(during, 0, "the hot path allocated");
}

/// With the payload look fed (each TCP segment's captured payload, as the pipeline's gate
/// lets it through), allocations are per connection that carries a look, never per packet:
/// its look (one box) and, when it ends, its facts in the record (one box).
#[test]
fn the_payload_look_allocates_per_connection_not_per_packet() {
    let mut samples: Vec<_> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    samples.sort();
    let mut frames = vec![];
    read_files(&samples, None, &mut |f: &Frame<'_>| {
        frames.push(Owned {
            ts: f.ts,
            link: f.link,
            wire_len: f.wire_len,
            bytes: f.bytes.to_vec(),
        })
    })
    .unwrap();
    let mut table = FlowTable::new(FlowConfig::default());
    let mut looked = 0u64;
    let mut sink = |r: &ConnRecord| looked += u64::from(r.look.is_some());
    let mut layers = Layers::default();
    let mut gate = exflow::flow::payload::Gate::default();
    let mut pkt = Packet::EMPTY;
    let mut with_payload = 0u64;
    let before = allocations();
    for f in &frames {
        let frame = Frame {
            ts: f.ts,
            link: f.link,
            caplen: f.bytes.len() as u32,
            wire_len: f.wire_len,
            iface: 0,
            interfaces: 1,
            bytes: &f.bytes,
        };
        if decode_into(&frame, &mut pkt, &mut layers).is_ok() {
            for c in layers.carriers() {
                table.observe(frame.ts, c, &mut sink);
            }
            let p = layers.tcp_payload(&f.bytes);
            let n = gate.wanted(&pkt, p);
            with_payload += u64::from(n > 0);
            table.observe_with(frame.ts, &pkt, &p[..n], &mut sink);
        }
    }
    table.finish(&mut sink);
    let during = allocations() - before;
    let conns = table.stats().connections;
    println!(
        "{} frames ({with_payload} with payload looked at), {conns} connections, {looked} with facts, {during} allocations",
        frames.len()
    );
    assert!(looked > 0, "the samples carry SMTP, TLS and HTTP");
    assert!(
        during <= 2 * conns,
        "{during} allocations for {conns} connections"
    );
    assert!(during < with_payload, "allocated per packet");
}
