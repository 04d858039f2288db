//! The single loop: `source → decode → flow`, and the finished connections on to the report
//! sinks. The same loop serves files and (later) live capture; only the source differs.

use crate::aggregate::stats::InputFacts;
use crate::aggregate::stats::{ConnCounts, RunStats};
use crate::aggregate::Aggregator;
use crate::classify::catalogue::Catalogue;
use crate::classify::rules::{classify, Class, ConvKey};
use crate::classify::site::Site;
use crate::decode::{self, Layers, Packet};
use crate::error::Error;
use crate::flow::dedup::{Dedup, Seen};
use crate::flow::import::{self, merge::SensorMerge};
use crate::flow::nat::NatMap;
use crate::flow::payload::Gate;
use crate::flow::reorder::{self, Reorder};
use crate::flow::{ConnRecord, FlowConfig, FlowTable, Sink};
use crate::report::jsonl;
use crate::report::progress::Progress;
use crate::report::words;
use crate::source::file::{open_decompressed, read_files, sniff, Sniffed, SourceStats};
use crate::source::filter::Filter;
use crate::source::live::{Control, Drops, Live, LiveOptions};
pub use crate::source::outputs::WriteFailure;
use crate::source::outputs::{self, RecordWriter};
use crate::source::privileges::{self, Dropped, Target};
use crate::source::{Frame, FrameSink};
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

/// What to analyse and where to write connections.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Captures and files of connection records, told apart by content.
    pub files: Vec<String>,
    /// `--input KIND`: every file is of this kind (`None`: each by its content).
    pub input: Option<InputKind>,
    pub filter: Option<String>,
    /// `--flows`: a path, or `-` for standard output.
    pub flows: Option<String>,
    pub flow: FlowConfig,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// The site's NAT addresses (public, the host's own): the legs they join.
    pub nat: Vec<(IpAddr, IpAddr)>,
    /// The site file's site, for the `role` of the `--flows` lines (`None`: no site file,
    /// and every line's `role` is `null`).
    pub roles: Option<Roles>,
}

/// What a `--flows` line's `role` is classified against: the site file's site (with the
/// profile `--profile` gave) and the catalogue. Without a site file there is none: the site
/// is inferred only from the whole input, after the last line was written.
#[derive(Clone, Debug)]
pub struct Roles {
    pub site: Site,
    pub catalogue: &'static Catalogue,
}

impl Roles {
    /// The catalogue role id of a finished connection: its conversation classified as the
    /// report classifies it ([`classify`]). An expected flow or traffic that must never be
    /// restricted gives its role; unexpected traffic the role that names its port, if any;
    /// anything none of Exchange's business, `None`. Once per connection, never per packet
    /// (an allocation only for unexpected traffic on an Exchange host).
    pub fn of(&self, r: &ConnRecord) -> Option<&'static str> {
        self.name(self.index(&ConvKey::of(r)))
    }

    /// The catalogue index of a conversation's role.
    fn index(&self, k: &ConvKey) -> Option<usize> {
        match classify(k, &self.site, self.catalogue) {
            Class::Expected(i, ..) | Class::Unrestricted(i, ..) => Some(i),
            Class::Unexpected { role, .. } => role,
            Class::Unrelated => None,
        }
    }

    fn name(&self, i: Option<usize>) -> Option<&'static str> {
        let roles: &'static [crate::classify::catalogue::Role] = self.catalogue.roles();
        roles.get(i?).map(|role| role.id.as_str())
    }
}

/// Conversations whose role is known already, at most this many (emptied when full: a scan's
/// probes are each a conversation of their own).
const ROLE_CACHE: usize = 1 << 14;

/// [`Roles`] with the conversations classified already: most connections repeat one (a
/// client's next connection to the same service), and a lookup costs a fraction of a
/// classification. The answer is the same: a conversation's role depends on its key alone.
struct RoleCache {
    roles: Roles,
    known: std::collections::HashMap<ConvKey, Option<usize>, foldhash::fast::RandomState>,
}

impl RoleCache {
    fn new(roles: Roles) -> RoleCache {
        RoleCache {
            roles,
            known: Default::default(),
        }
    }

    fn of(&mut self, r: &ConnRecord) -> Option<&'static str> {
        let k = ConvKey::of(r);
        let i = match self.known.get(&k) {
            Some(&i) => i,
            None => {
                let i = self.roles.index(&k);
                if self.known.len() >= ROLE_CACHE {
                    self.known.clear();
                }
                self.known.insert(k, i);
                i
            }
        };
        self.roles.name(i)
    }
}

/// A kind of input file, as `--input` forces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// pcap or pcapng (which one is read from the file).
    Capture,
    Records(import::Kind),
}

/// The `--flows` writer, the counters and the aggregator, as one sink.
struct Collector {
    counts: ConnCounts,
    agg: Aggregator,
    /// `--flows`: its path and writer.
    out: Option<(String, RecordWriter<Box<dyn Write + Send>>)>,
    /// With connection records among the inputs: drops a connection another sensor gave
    /// already. `None` for packets alone.
    merge: Option<SensorMerge>,
    /// The sensor the records come from now (0: the packet captures).
    sensor: u16,
    /// The site file's site, for the `--flows` lines' `role`.
    roles: Option<RoleCache>,
}

impl Sink for Collector {
    fn conn(&mut self, rec: &ConnRecord) {
        if let Some(m) = &mut self.merge {
            // Held for another sensor's copy; what leaves the window goes on.
            if let Some(done) = m.add(rec, self.sensor) {
                self.emit(&done);
            }
            return;
        }
        self.emit(rec);
    }
}

impl Collector {
    /// Ends the merge: the connections it still holds go on, in the order they came.
    fn end_merge(&mut self) -> Option<SensorMerge> {
        let mut m = self.merge.take()?;
        for rec in m.drain() {
            self.emit(&rec);
        }
        Some(m)
    }

    /// A connection, merged if there were several sensors, to `--flows`, the counters and
    /// the aggregator.
    fn emit(&mut self, rec: &ConnRecord) {
        self.counts.add(rec);
        self.agg.conn(rec);
        if let Some((_, w)) = &mut self.out {
            // Writing into the writer's buffer cannot fail; a failed write to the file is
            // counted by the writer.
            let role = self.roles.as_mut().and_then(|roles| roles.of(rec));
            let _ = w.record(|buf| jsonl::write_record(buf, rec, role));
        }
    }
}

fn open_output(path: &str) -> Result<Box<dyn Write + Send>, Error> {
    if path == "-" {
        return Ok(Box::new(io::stdout()));
    }
    outputs::create("--flows", path).map(|f| Box::new(f) as Box<dyn Write + Send>)
}

/// Bytes of `--flows` lines gathered before they are written.
const FLOWS_BUFFER: usize = 1 << 16;

/// The first half of the pipeline: counts every frame and decodes it. Runs where the frames
/// are read.
#[derive(Default)]
pub struct Front {
    /// Frames fed: number, captured bytes, time span and link types (live capture's facts,
    /// where no file reader counts them).
    pub seen: SourceStats,
    /// IP packets, truncated payloads and anomalies (the rest of [`RunStats`] is the tracker's).
    stats: RunStats,
    /// The tunnel layers of the frame decoded last.
    layers: Layers,
    /// Which TCP payloads are copied for the payload look (`flow::payload`).
    gate: Gate,
}

impl Front {
    /// Counts a frame: number, bytes, time span, link types (live capture's facts; a file
    /// reader counts its own).
    pub fn count(&mut self, frame: &Frame<'_>) {
        self.seen.saw(frame);
        self.seen.bytes += u64::from(frame.caplen);
    }

    /// Decodes a frame: the packet, or `None` (an anomaly, counted).
    pub fn decode(&mut self, frame: &Frame<'_>) -> Option<Packet> {
        let mut pkt = Packet::EMPTY;
        self.decode_into(frame, &mut pkt).then_some(pkt)
    }

    /// Decodes a frame into `out`: false if it is an anomaly (counted; `out` is then garbage).
    /// A tunnelled frame's carriers ([`Front::carriers`]) go to the flow table before `out`.
    #[inline]
    pub fn decode_into(&mut self, frame: &Frame<'_>, out: &mut Packet) -> bool {
        match decode::decode_into(frame, out, &mut self.layers) {
            Ok(()) => {
                self.stats.ip_packets += 1;
                if out.truncated {
                    self.stats.payload_truncated += 1;
                }
                if !self.layers.is_plain() {
                    self.tunnelled();
                }
                true
            }
            Err(kind) => {
                self.stats.anomalies.add(kind);
                false
            }
        }
    }
}

impl Front {
    /// Counts the tunnels of the frame decoded last (out of `decode_into`'s way).
    #[inline(never)]
    fn tunnelled(&mut self) {
        for &k in self.layers.tunnels() {
            self.stats.tunnels.add(k);
        }
        if let Some(e) = self.layers.inner_error() {
            self.stats.anomalies.add(e);
        }
    }

    /// The part of the last decoded frame's TCP payload the payload look wants: within the
    /// first `flow::payload::BUDGET` bytes of its direction (empty for nearly every packet
    /// of a long connection, and at once for a packet without payload).
    #[inline]
    pub fn payload<'a>(&mut self, frame: &Frame<'a>, pkt: &Packet) -> &'a [u8] {
        let p = self.layers.tcp_payload(frame.bytes);
        let n = self.gate.wanted(pkt, p);
        p.get(..n).unwrap_or_default()
    }

    /// The UDP packets that carried the last decoded frame's tunnels (VXLAN, Geneve): Zeek
    /// tracks each as a connection, so they go to the flow table too, before the frame's packet.
    pub fn carriers(&self) -> &[Packet] {
        self.layers.carriers()
    }
}

/// The second half: drops multi-interface copies, keeps the flow table, and hands finished
/// connections to the sinks (`--flows`, counters, aggregator), or to a [`Forward`] that
/// passes them to another thread which does.
struct Tracker<S: Sink = Collector> {
    table: FlowTable,
    prep: Prep,
    sink: S,
}

/// What comes between decoding and the flow table: NAT addresses put back to the hosts' own,
/// time order, then copies dropped.
struct Prep {
    nat: NatMap,
    reorder: Reorder,
    dedup: Dedup,
}

impl<S: Sink> Tracker<S> {
    /// Ends every open connection (the end of the input) into the sink, and returns the parts.
    fn end(self) -> (FlowTable, Prep, S) {
        let Tracker {
            mut table,
            mut prep,
            mut sink,
        } = self;
        let Prep { reorder, dedup, .. } = &mut prep;
        reorder.flush(&mut |ts, p, payload| route(&mut table, dedup, ts, p, payload, &mut sink));
        table.finish(&mut sink);
        (table, prep, sink)
    }

    /// One decoded packet (the hot path: no allocation).
    #[inline]
    fn packet(&mut self, ts: crate::time::Timestamp, pkt: &Packet) {
        self.packet_with(ts, pkt, &[]);
    }

    /// One decoded packet with the payload bytes the payload look gets (`Front::payload`).
    /// A packet the reorder buffer holds (a capture of several interfaces) keeps them in the
    /// buffer's payload store until it goes on (or goes on without them, counted, when the
    /// store is full).
    #[inline]
    fn packet_with(&mut self, ts: crate::time::Timestamp, pkt: &Packet, payload: &[u8]) {
        let Tracker { table, prep, sink } = self;
        let Prep {
            nat,
            reorder,
            dedup,
        } = prep;
        let translated;
        let pkt = if nat.is_empty() {
            pkt
        } else {
            let mut p = *pkt;
            nat.apply(&mut p);
            translated = p;
            &translated
        };
        reorder.push(ts, pkt, payload, &mut |ts, p, payload| {
            route(table, dedup, ts, p, payload, sink);
        });
    }
}

/// A packet in time order to the flow table, as the copy filter sees it: another interface's
/// copy, an exact duplicate, or new (with the payload bytes the payload look gets).
#[inline]
fn route<S: Sink>(
    table: &mut FlowTable,
    dedup: &mut Dedup,
    ts: crate::time::Timestamp,
    p: &Packet,
    payload: &[u8],
    sink: &mut S,
) {
    match dedup.check(ts, p) {
        Seen::Copy => table.observe_copy(ts, p),
        Seen::Exact => table.observe_duplicate(ts, p, sink),
        Seen::New => table.observe_with(ts, p, payload, sink),
    }
}

/// The pipeline from a frame on: decode, drop multi-interface copies, the flow table, and the
/// sinks of finished connections. Files and live capture feed it the same way.
pub struct Engine {
    pub front: Front,
    tracker: Tracker,
}

impl Engine {
    /// `flows`: the `--flows` destination (a path, or `-` for standard output).
    pub fn new(flow: FlowConfig, flows: Option<&str>) -> Result<Engine, Error> {
        let out = match flows {
            Some(p) => Some((
                p.to_string(),
                RecordWriter::new(open_output(p)?, FLOWS_BUFFER),
            )),
            None => None,
        };
        Ok(Engine {
            front: Front::default(),
            tracker: Tracker {
                table: FlowTable::new(flow),
                prep: Prep {
                    nat: NatMap::default(),
                    reorder: Reorder::new(flow.reorder_window, reorder::DEFAULT_MAX_HELD),
                    dedup: Dedup::default(),
                },
                sink: Collector {
                    counts: ConnCounts::default(),
                    agg: Aggregator::default(),
                    out,
                    merge: None,
                    sensor: 0,
                    roles: None,
                },
            },
        })
    }

    /// Joins the two legs of connections a NAT translated, by the site's NAT addresses
    /// (public, the host's own).
    pub fn set_nat(&mut self, pairs: &[(IpAddr, IpAddr)]) {
        let nat = NatMap::new(pairs.iter().copied());
        self.tracker.table.set_nat(nat.clone());
        self.tracker.prep.nat = nat;
    }

    /// The site the `--flows` lines' `role` is classified against (`None`: every `role`
    /// is `null`); its catalogue also names the aggregator's Exchange services.
    pub fn set_roles(&mut self, roles: Option<Roles>) {
        if let Some(r) = &roles {
            self.tracker.sink.agg.set_catalogue(r.catalogue);
        }
        self.tracker.sink.roles = roles.map(RoleCache::new);
    }

    /// One frame through decode and the flow table (the hot path: no allocation).
    pub fn frame(&mut self, frame: &Frame<'_>) {
        self.front.count(frame);
        if let Some(pkt) = self.front.decode(frame) {
            for carrier in self.front.carriers() {
                self.tracker.packet(frame.ts, carrier);
            }
            let payload = self.front.payload(frame, &pkt);
            self.tracker.packet_with(frame.ts, &pkt, payload);
        }
    }

    pub fn table(&self) -> &FlowTable {
        &self.tracker.table
    }

    /// What the report would say now: the finished connections plus every open one, as if
    /// the capture ended here (open connections are not ended, nor written to `--flows`).
    pub fn snapshot(&self) -> (RunStats, Aggregator) {
        let t = &self.tracker;
        let mut agg = t.sink.agg.clone();
        let mut counts = t.sink.counts.clone();
        t.table.snapshot(&mut |r: &ConnRecord| {
            counts.add(r);
            agg.conn(r);
        });
        let mut o = self.front.stats.clone();
        o.conns = counts;
        o.flow = t.table.stats();
        o.duplicates = t.prep.dedup.duplicates;
        o.exact_duplicates = t.prep.dedup.exact;
        o.reorder = t.prep.reorder.stats;
        o.folded = agg.folded;
        (o, agg)
    }

    /// Ends every open connection, flushes `--flows`, and returns what was found, with how
    /// `--flows` failed if a write to it did (a full disk: the run goes on, the lines not
    /// written counted). A closed standard output (`--flows -` into `head`) is
    /// [`Error::BrokenPipe`].
    pub fn finish(
        self,
        files: SourceStats,
    ) -> Result<(RunStats, Aggregator, Option<WriteFailure>), Error> {
        let Engine { front, tracker } = self;
        let (table, prep, mut sink) = tracker.end();
        let mut stats = front.stats;
        stats.duplicates = prep.dedup.duplicates;
        stats.exact_duplicates = prep.dedup.exact;
        stats.reorder = prep.reorder.stats;
        stats.source = files;
        stats.flow = table.stats();
        let mut failure = None;
        if let Some((file, w)) = sink.out.take() {
            let counts = w.finish();
            if let Some(e) = counts.error {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Err(Error::BrokenPipe);
                }
                failure = Some(WriteFailure {
                    option: "--flows",
                    file,
                    unit: "connections",
                    written: counts.written,
                    not_written: counts.not_written,
                    error: e.to_string(),
                });
            }
        }
        stats.conns = sink.counts;
        stats.folded = sink.agg.folded;
        Ok((stats, sink.agg, failure))
    }
}

/// An engine fed by a live source, with what to do at each tick (print an interim report).
pub struct LiveSink<'e, T: FnMut(&Engine, Drops) -> Result<(), Error>> {
    pub engine: &'e mut Engine,
    pub on_tick: T,
}

impl<T: FnMut(&Engine, Drops) -> Result<(), Error>> FrameSink for LiveSink<'_, T> {
    #[inline]
    fn frame(&mut self, frame: &Frame<'_>) {
        self.engine.frame(frame);
    }

    fn tick(&mut self, drops: Drops) -> Result<(), Error> {
        (self.on_tick)(self.engine, drops)
    }
}

impl Engine {
    /// A live capture's facts so far: what the front counted, under the interface's name,
    /// with the packets lost.
    pub fn live_stats(&self, interface: &str, drops: Drops) -> SourceStats {
        SourceStats {
            files: vec![format!("live:{interface}")],
            warnings: crate::report::words::live_drops_warning(&drops)
                .into_iter()
                .collect(),
            ..self.front.seen.clone()
        }
    }
}

/// Finished connections handed from the tracking thread to the writing thread at once.
const RECORDS: usize = 256;

/// A sink that gathers finished connections into batches for the writing thread, which runs
/// the [`Collector`] (`--flows` lines, counters, aggregation: a seventh of the tracking
/// thread's work when it ran there). The records arrive there in the order they were ended.
struct Forward {
    batch: Vec<ConnRecord>,
    full: mpsc::SyncSender<Vec<ConnRecord>>,
    empty: mpsc::Receiver<Vec<ConnRecord>>,
}

impl Forward {
    fn send(&mut self) {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(RECORDS));
        // Fails only if the writing thread panicked; its join reports that.
        let _ = self.full.send(std::mem::replace(&mut self.batch, next));
    }
}

impl Sink for Forward {
    fn conn(&mut self, rec: &ConnRecord) {
        self.batch.push(rec.clone());
        if self.batch.len() == RECORDS {
            self.send();
        }
    }
}

/// Decoded packets handed from the reading thread to the tracking thread at once.
const BATCH: usize = 1024;
/// Batches queued between the threads (the reader waits when the tracker is this far behind):
/// at most 64 × 1,024 packets, ~7 MiB. Deep enough to ride out the moments one thread is held
/// up (a sweep of the flow table, a virtual CPU the host took away for a while) without
/// stalling the other: 4 batches gave a median of 71.7 ms on the 1M-packet capture, 64 gave
/// 64.0 ms (20 interleaved runs each).
const QUEUE: usize = 64;

/// A batch of decoded packets, with the payload bytes the payload look gets: `looks` says
/// which packet (its index) has which bytes of `bytes`. Reused: nothing is allocated once a
/// few batches are in circulation.
#[derive(Default)]
struct Batch {
    pkts: Vec<(crate::time::Timestamp, Packet)>,
    looks: Vec<(u32, u32, u32)>,
    bytes: Vec<u8>,
}

/// Payload bytes a batch carries before it is sent on early (its memory bound; the queue's
/// is `QUEUE` times this).
const BATCH_BYTES: usize = 1 << 16;

impl Batch {
    fn new() -> Batch {
        Batch {
            pkts: Vec::with_capacity(BATCH),
            looks: Vec::new(),
            bytes: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.pkts.clear();
        self.looks.clear();
        self.bytes.clear();
    }

    /// Full: to be sent on.
    fn full(&self) -> bool {
        self.pkts.len() == BATCH || self.bytes.len() >= BATCH_BYTES
    }

    /// The last packet's payload excerpt.
    fn look(&mut self, payload: &[u8]) {
        if payload.is_empty() || self.pkts.is_empty() {
            return;
        }
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(payload);
        self.looks
            .push((self.pkts.len() as u32 - 1, at, payload.len() as u32));
    }
}

/// Refuses a capture none of whose link types can be decoded (exit 2, naming the files),
/// rather than reporting an empty capture. One with at least one decodable link type goes on;
/// its other frames are counted as anomalies.
fn check_link_types(files: &SourceStats) -> Result<(), Error> {
    if files.link_types.is_empty() || files.link_types.iter().any(|l| decode::supports(*l)) {
        return Ok(());
    }
    let links: Vec<String> = files
        .link_types
        .iter()
        .map(|l| format!("{l} ({})", l.0))
        .collect();
    Err(Error::input(
        files.files.join(", "),
        format!("unsupported link type {}", links.join(", ")),
    ))
}

/// Runs the whole pipeline over the files: what was found, and the connections folded into
/// conversations for the report.
///
/// Three threads: this one reads, filters and decodes; a second one runs the tracker (copies,
/// flow table), fed batches of decoded packets in capture order over a bounded channel; a
/// third one runs the sinks of finished connections (`--flows`, counters, aggregator), fed
/// batches of records the same way. Emptied batches come back for reuse (no allocation once
/// a few are in circulation). The result is the same as one thread's: the tracker sees the
/// same packets in the same order, the sinks the same connections in the same order. The
/// writing thread is light (a connection's record, for dozens of packets) and runs in the
/// gaps the other two leave.
pub fn analyze(opts: &Options) -> Result<(RunStats, Aggregator, Option<WriteFailure>), Error> {
    let mut filter = match &opts.filter {
        Some(expr) => Some(Filter::new(expr)?),
        None => None,
    };
    let kinds = input_kinds(opts)?;
    let captures: Vec<String> = kinds
        .iter()
        .filter(|(_, k, _)| k.is_none())
        .map(|(f, _, _)| f.clone())
        .collect();
    let records = kinds.iter().any(|(_, k, _)| k.is_some());
    let mut engine = Engine::new(opts.flow, opts.flows.as_deref())?;
    engine.set_nat(&opts.nat);
    engine.set_roles(opts.roles.clone());
    let Engine { mut front, tracker } = engine;
    let Tracker {
        table,
        prep,
        sink: mut collector,
    } = tracker;
    // Several sensors (each file of records is one, the captures together one): merge
    // the connections they share, combining what each saw of them. One alone has nothing to merge with.
    let sensors =
        kinds.iter().filter(|(_, k, _)| k.is_some()).count() + usize::from(!captures.is_empty());
    if sensors > 1 {
        collector.merge = Some(SensorMerge::default());
    }
    let progress = opts.progress.then(|| Progress::new(&captures));
    let open_flows = AtomicUsize::new(0);
    let (read, tracker) = std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(QUEUE);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
        let (rec_tx, rec_rx) = mpsc::sync_channel::<Vec<ConnRecord>>(QUEUE);
        let (rec_empty_tx, rec_empty_rx) = mpsc::channel::<Vec<ConnRecord>>();
        let writer = scope.spawn(move || {
            let mut collector = collector;
            for mut batch in rec_rx {
                for rec in &batch {
                    collector.conn(rec);
                }
                batch.clear();
                // The tracker may be gone already (it sent its last batch).
                let _ = rec_empty_tx.send(batch);
            }
            collector
        });
        let open_flows = &open_flows;
        let worker = scope.spawn(move || {
            let mut tracker = Tracker {
                table,
                prep,
                sink: Forward {
                    batch: Vec::with_capacity(RECORDS),
                    full: rec_tx,
                    empty: rec_empty_rx,
                },
            };
            for mut batch in full_rx {
                let mut looks = batch.looks.iter().peekable();
                for (i, (ts, pkt)) in batch.pkts.iter().enumerate() {
                    match looks.peek() {
                        Some(&&(j, at, n)) if j as usize == i => {
                            looks.next();
                            let bytes = batch
                                .bytes
                                .get(at as usize..(at + n) as usize)
                                .unwrap_or_default();
                            tracker.packet_with(*ts, pkt, bytes);
                        }
                        _ => tracker.packet(*ts, pkt),
                    }
                }
                open_flows.store(tracker.table.len(), Ordering::Relaxed);
                batch.clear();
                // The reader may be gone already (it sent its last batch).
                let _ = empty_tx.send(batch);
            }
            // End of input: every open connection ends here, as in `Engine::finish`.
            let (table, prep, mut sink) = tracker.end();
            if !sink.batch.is_empty() {
                sink.send();
            }
            drop(sink);
            let collector = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            Tracker {
                table,
                prep,
                sink: collector,
            }
        });
        let mut batch = Batch::new();
        let send = |batch: &mut Batch| {
            let next = empty_rx.try_recv().unwrap_or_else(|_| Batch::new());
            // Fails only if the tracker thread panicked; its join below reports that.
            let _ = full_tx.send(std::mem::replace(batch, next));
        };
        // The file reader counts frames, bytes and times itself (`SourceStats`).
        let mut frames = 0u64;
        let mut on_frame = |frame: &Frame<'_>| {
            frames += 1;
            // Decoded in place, in the batch (see `decode::decode_into`).
            batch.pkts.push((frame.ts, Packet::EMPTY));
            let decoded = match batch.pkts.last_mut() {
                Some((_, pkt)) => front.decode_into(frame, pkt),
                None => false,
            };
            if !decoded {
                batch.pkts.pop();
            } else if !front.carriers().is_empty() {
                // A tunnel's carriers go first (rare: moved rather than decoded in place).
                if let Some((ts, inner)) = batch.pkts.pop() {
                    for carrier in front.carriers() {
                        batch.pkts.push((ts, *carrier));
                        if batch.full() {
                            send(&mut batch);
                        }
                    }
                    batch.pkts.push((ts, inner));
                    let payload = front.payload(frame, &inner);
                    batch.look(payload);
                }
                if batch.full() {
                    send(&mut batch);
                }
            } else {
                // By reference: copying the packet just written to the batch back out stalled
                // the reading thread (a wide load of narrower stores to memory not in cache).
                if let Some((_, pkt)) = batch.pkts.last() {
                    let payload = front.payload(frame, pkt);
                    batch.look(payload);
                }
                if batch.full() {
                    send(&mut batch);
                }
            }
            if let Some(p) = &progress {
                p.frame(frames, frame.caplen, open_flows.load(Ordering::Relaxed));
            }
        };
        let read = read_files(&captures, filter.as_mut(), &mut on_frame);
        if !batch.pkts.is_empty() {
            send(&mut batch);
        }
        drop(full_tx);
        let tracker = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, tracker)
    });
    let mut files = read?;
    if let Some(p) = &progress {
        p.finish();
    }
    check_link_types(&files)?;
    let mut tracker = tracker;
    let mut inputs = vec![];
    if records {
        let mut uid = tracker.table.stats().connections;
        let mut read = read_all_records(&kinds, &mut tracker.sink, &mut uid, opts.flow.uid_key)?;
        for (i, (file, kind, name)) in kinds.iter().enumerate() {
            let Some(kind) = kind else {
                inputs.push(InputFacts {
                    file: file.clone(),
                    kind: name,
                    records: None,
                    read_error: None,
                });
                continue;
            };
            let Some((stats, error)) = read[i].take() else {
                continue;
            };
            files.warnings.extend(words::import_warnings(
                file,
                &stats,
                error.as_ref().map(|e| e.to_string()).as_deref(),
            ));
            for t in [stats.first_ts, stats.last_ts].into_iter().flatten() {
                files.first_ts = Some(files.first_ts.map_or(t, |f| f.min(t)));
                files.last_ts = Some(files.last_ts.map_or(t, |l| l.max(t)));
            }
            inputs.push(InputFacts {
                file: file.clone(),
                kind: kind.as_str(),
                records: Some(stats),
                read_error: error.map(|e| e.to_string()),
            });
        }
        files.files = opts.files.clone();
    }
    let merge = tracker.sink.end_merge();
    let (mut stats, agg, failure) = Engine { front, tracker }.finish(files)?;
    stats.inputs = inputs;
    if let Some(m) = merge {
        stats.sensor_copies = m.duplicates;
        stats.sensor_forgotten = m.forgotten;
    }
    Ok((stats, agg, failure))
}

/// Each file with its kind of records, `None` for a capture: `--input` for all, else by
/// content. A file of no known kind is an input error naming it.
/// A file, its kind of records (`None`: a capture) and the kind's name.
type FileKind = (String, Option<import::Kind>, &'static str);

/// Each file with its kind of records (`None` for a capture) and the kind's name (pcap,
/// pcapng, zeek, eve, exflow), from one look at its start (a pipe cannot be looked at twice).
/// `--input` forces the kind; a file of no known kind is an input error naming it.
fn input_kinds(opts: &Options) -> Result<Vec<FileKind>, Error> {
    opts.files
        .iter()
        .map(|f| {
            if let Some(InputKind::Records(k)) = opts.input {
                return Ok((f.clone(), Some(k), k.as_str()));
            }
            match sniff(f)? {
                Sniffed::Pcap => Ok((f.clone(), None, "pcap")),
                Sniffed::PcapNg => Ok((f.clone(), None, "pcapng")),
                // Forced: the capture reader says what is wrong with it.
                Sniffed::Other(_) if opts.input == Some(InputKind::Capture) => {
                    Ok((f.clone(), None, "pcap"))
                }
                Sniffed::Other(head) => match import::detect(&head) {
                    Some(k) => Ok((f.clone(), Some(k), k.as_str())),
                    None => Err(Error::input(
                        if f == "-" { "standard input" } else { f },
                        words::unknown_input(&head),
                    )),
                },
            }
        })
        .collect()
}

/// Streams one file of connection records into the collector, one record at a time.
/// What reading one file of records gave: its counts and the read error that ended it early.
type RecordsRead = (import::ImportStats, Option<io::Error>);

/// Records waiting between a file's reading thread and the merge, per file.
const RECORDS_QUEUED: usize = 4096;

/// Reads every file of records (the `Some` kinds of `kinds`; one sensor each) into `sink`.
/// One file is read straight through. Several are read side by side, one thread each, and
/// handed on in the order their connections ended (a k-way merge by end time, ties by file):
/// the sensors' copies of one connection then reach the cross-sensor merge close together
/// however long the logs are, where reading one file after the other would hold the whole of
/// the first to meet the second. Memory: [`RECORDS_QUEUED`] records per file. The order, and
/// so the uids, do not depend on the threads' timing.
fn read_all_records(
    kinds: &[FileKind],
    sink: &mut Collector,
    uid: &mut u64,
    uid_key: u64,
) -> Result<Vec<Option<RecordsRead>>, Error> {
    let mut out: Vec<Option<RecordsRead>> = kinds.iter().map(|_| None).collect();
    let files: Vec<(usize, &str, import::Kind)> = kinds
        .iter()
        .enumerate()
        .filter_map(|(i, (f, k, _))| k.map(|k| (i, f.as_str(), k)))
        .collect();
    let mut hand_on = |sink: &mut Collector, i: usize, mut rec: ConnRecord| {
        sink.sensor = u16::try_from(i + 1).unwrap_or(u16::MAX);
        *uid += 1;
        rec.uid = *uid ^ uid_key;
        sink.conn(&rec);
    };
    if let [(i, file, kind)] = files[..] {
        let (_, stream) = open_decompressed(file)?;
        let reader = io::BufReader::with_capacity(1 << 18, stream);
        out[i] = Some(import::read(kind, reader, &mut |rec| hand_on(sink, i, rec)));
        return Ok(out);
    }
    std::thread::scope(|scope| -> Result<(), Error> {
        let mut heads: Vec<(usize, mpsc::Receiver<ConnRecord>, Option<ConnRecord>)> = vec![];
        let mut readers = vec![];
        for &(i, file, kind) in &files {
            let (tx, rx) = mpsc::sync_channel::<ConnRecord>(RECORDS_QUEUED);
            readers.push((
                i,
                scope.spawn(move || -> Result<RecordsRead, Error> {
                    // Opened here (a decompressing stream stays on its thread); a file that
                    // cannot be opened ends the run once the others are read.
                    let (_, stream) = open_decompressed(file)?;
                    let reader = io::BufReader::with_capacity(1 << 18, stream);
                    // The merge stops listening only by ending: a failed send ends nothing.
                    Ok(import::read(kind, reader, &mut |rec| {
                        let _ = tx.send(rec);
                    }))
                }),
            ));
            heads.push((i, rx, None));
        }
        loop {
            // Each file's next record (blocking: the order must not depend on timing). A file
            // whose records ran out stays empty: its channel is closed and answers at once.
            for (_, rx, head) in heads.iter_mut() {
                if head.is_none() {
                    *head = rx.recv().ok();
                }
            }
            let next = heads
                .iter()
                .enumerate()
                .filter_map(|(n, (i, _, h))| h.as_ref().map(|r| ((r.ts.plus(r.duration), *i), n)))
                .min()
                .map(|(_, n)| n);
            let Some(n) = next else {
                break;
            };
            let (i, _, head) = &mut heads[n];
            if let Some(rec) = head.take() {
                hand_on(sink, *i, rec);
            }
        }
        for (i, reader) in readers {
            let read = reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            out[i] = Some(read);
        }
        Ok(())
    })?;
    Ok(out)
}

/// What a live run needs besides the capture's own options.
pub struct LiveRun {
    pub capture: LiveOptions,
    pub flow: FlowConfig,
    /// `--flows`: a path, or `-` for standard output.
    pub flows: Option<String>,
    /// Stop after this long.
    pub duration: Option<std::time::Duration>,
    /// Report this often (None: only at the end).
    pub interval: Option<std::time::Duration>,
    /// The site's NAT addresses (public, the host's own): the legs they join.
    pub nat: Vec<(IpAddr, IpAddr)>,
    /// The site file's site, for the `role` of the `--flows` lines (`None`: all `null`).
    pub roles: Option<Roles>,
    /// Written to standard output, when armed, before a second signal ends the process.
    pub abort: Option<AbortOutput>,
    /// As root, the user to run as once the capture and the outputs are open (`None`: keep
    /// root, `--no-drop-privileges`). Not root, the user stays, without capabilities.
    pub run_as: Option<Target>,
}

/// What puts the terminal back when a second Ctrl-C (or SIGTERM) ends `exflow live` at once:
/// `text` is written to standard output first while `armed` is set (the caller sets it while
/// its live view holds the alternate screen).
#[derive(Clone)]
pub struct AbortOutput {
    pub armed: Arc<AtomicBool>,
    pub text: &'static str,
}

/// How a live run ended: what it found (the drops in `stats.live_drops`), and what stopped it
/// early, if anything.
pub struct LiveFinish {
    pub stats: RunStats,
    pub agg: Aggregator,
    /// The capture stopped on its own because of this error (e.g. the interface went away).
    pub capture_error: Option<String>,
    /// `--write` and `--flows` if they could not be written whole (a full disk).
    pub write_failures: Vec<WriteFailure>,
}

/// The flag the first SIGINT or SIGTERM sets (in the handler: the capture stops at once). The
/// handlers also write a byte per signal to a socket that a thread reads, counting them: at
/// the second it ends the process with 130 (SIGINT) or 143 (SIGTERM), after writing `abort`'s
/// text when it is armed. The threads stay for the life of the process, so a second signal
/// during the final report still ends it.
fn stop_on_signals(abort: Option<AbortOutput>) -> Result<Arc<AtomicBool>, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::io::Read as _;
    use std::os::unix::net::UnixStream;
    let err = |e: io::Error| Error::Usage(format!("cannot handle signals: {e}"));
    let signalled = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        signal_hook::flag::register(signal, Arc::clone(&signalled)).map_err(err)?;
        let (mut rx, tx) = UnixStream::pair().map_err(err)?;
        signal_hook::low_level::pipe::register(signal, tx).map_err(err)?;
        let (count, abort) = (Arc::clone(&count), abort.clone());
        std::thread::Builder::new()
            .name("exflow-signal".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                loop {
                    match rx.read(&mut byte) {
                        Ok(1) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        _ => break,
                    }
                    if count.fetch_add(1, Ordering::SeqCst) == 0 {
                        continue;
                    }
                    if let Some(a) = &abort {
                        // The caller arms and disarms under this lock too.
                        let mut out = io::stdout().lock();
                        if a.armed.load(Ordering::SeqCst) {
                            let _ = out.write_all(a.text.as_bytes()).and_then(|_| out.flush());
                        }
                    }
                    std::process::exit(code);
                }
            })
            .map_err(err)?;
    }
    Ok(signalled)
}

/// `exflow live`: opens the interface (calling `opened` with it, for a banner), captures until
/// Ctrl-C, SIGTERM or the duration, calls `on_tick` every interval with what the report would
/// say now, then ends every connection and returns what was found. The first Ctrl-C (or
/// SIGTERM) stops the capture; a second one exits the process at once (130, 143).
pub fn live(
    run: &LiveRun,
    opened: impl FnOnce(&Live, &Dropped),
    mut on_tick: impl FnMut(&RunStats, &Aggregator) -> Result<(), Error>,
) -> Result<LiveFinish, Error> {
    let capture = Live::open(&run.capture)?;
    let mut engine = Engine::new(run.flow, run.flows.as_deref())?;
    engine.set_nat(&run.nat);
    engine.set_roles(run.roles.clone());
    // Everything that needs root is open; no other thread has been started yet.
    let dropped = privileges::drop_privileges(run.run_as.as_ref())?;
    let signalled = stop_on_signals(run.abort.clone())?;
    opened(&capture, &dropped);
    let iface = run.capture.interface.as_str();
    let control = Control {
        stop: &signalled,
        duration: run.duration,
        interval: run.interval,
    };
    let mut sink = LiveSink {
        engine: &mut engine,
        on_tick: |engine: &Engine, drops: Drops| {
            let (mut stats, agg) = engine.snapshot();
            stats.source = engine.live_stats(iface, drops);
            stats.live_drops = Some(drops);
            on_tick(&stats, &agg)
        },
    };
    let end = capture.run(&mut sink, &control)?;
    let files = engine.live_stats(iface, end.drops);
    let (mut stats, agg, flows_failure) = engine.finish(files)?;
    stats.live_drops = Some(end.drops);
    Ok(LiveFinish {
        stats,
        agg,
        capture_error: end.capture_error,
        write_failures: end.write_failure.into_iter().chain(flows_failure).collect(),
    })
}
