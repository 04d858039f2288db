//! The single loop: `source → decode → flow`, and the finished connections on to the report
//! sinks. The same loop serves files and (later) live capture; only the source differs.

use crate::aggregate::Aggregator;
use crate::decode::{self, AnomalyCounts, AnomalyKind, Layers, Packet, TunnelCounts};
use crate::error::Error;
use crate::flow::dedup::Dedup;
use crate::flow::{ConnRecord, ConnState, FlowConfig, FlowStats, FlowTable, Sink};
use crate::report::jsonl;
use crate::report::progress::Progress;
use crate::source::file::{read_files, FileSummary};
use crate::source::filter::Filter;
use crate::source::Frame;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// What to analyse and where to write connections.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub files: Vec<String>,
    pub filter: Option<String>,
    /// `--flows`: a path, or `-` for standard output.
    pub flows: Option<String>,
    pub flow: FlowConfig,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Connections counted by protocol and state.
#[derive(Clone, Debug, Default)]
pub struct ConnCounts {
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    /// Indexed like [`ConnState::ALL`].
    pub by_state: [u64; 13],
}

impl ConnCounts {
    fn add(&mut self, r: &ConnRecord) {
        match r.proto {
            6 => self.tcp += 1,
            17 => self.udp += 1,
            _ => self.icmp += 1,
        }
        if r.proto == 6 || r.proto == 17 {
            if let Some(i) = ConnState::ALL.iter().position(|&s| s == r.conn_state) {
                self.by_state[i] += 1;
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.tcp + self.udp + self.icmp
    }
}

/// Everything the run found, for the summary.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub files: FileSummary,
    /// Frames that decoded to an IP packet.
    pub ip_packets: u64,
    /// Frames that gave no packet, by kind; and the insides of tunnels that gave none (the
    /// tunnel's own packet was used).
    pub anomalies: AnomalyCounts,
    /// Tunnel headers opened, by kind.
    pub tunnels: TunnelCounts,
    /// IP packets whose payload was cut by the snap length (headers intact; still used).
    pub payload_truncated: u64,
    pub flow: FlowStats,
    pub conns: ConnCounts,
    /// Packets dropped as copies of one just seen (a capture on several interfaces).
    pub duplicates: u64,
    /// Conversations folded into per-service groups past the aggregator's cap.
    pub folded: u64,
}

/// The `--flows` writer, the counters and the aggregator, as one sink.
struct Collector {
    counts: ConnCounts,
    agg: Aggregator,
    out: Option<(String, BufWriter<Box<dyn Write + Send>>)>,
    write_error: Option<(String, io::Error)>,
}

impl Sink for Collector {
    fn conn(&mut self, rec: &ConnRecord) {
        self.counts.add(rec);
        self.agg.conn(rec);
        if self.write_error.is_some() {
            return;
        }
        if let Some((name, w)) = &mut self.out {
            if let Err(e) = jsonl::write_record(w, rec) {
                self.write_error = Some((name.clone(), e));
            }
        }
    }
}

fn open_output(path: &str) -> Result<Box<dyn Write + Send>, Error> {
    if path == "-" {
        return Ok(Box::new(io::stdout()));
    }
    File::create(path)
        .map(|f| Box::new(f) as Box<dyn Write + Send>)
        .map_err(|e| Error::Output {
            file: path.to_string(),
            problem: format!("cannot create: {e}"),
        })
}

/// The first half of the pipeline: counts every frame and decodes it. Runs where the frames
/// are read.
#[derive(Default)]
pub struct Front {
    /// Frames fed: number, captured bytes, time span and link types (live capture's facts,
    /// where no file reader counts them).
    pub seen: FileSummary,
    /// IP packets, truncated payloads and anomalies (the rest of [`Outcome`] is the tracker's).
    outcome: Outcome,
    /// The tunnel layers of the frame decoded last.
    layers: Layers,
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
                self.outcome.ip_packets += 1;
                if out.truncated {
                    self.outcome.payload_truncated += 1;
                }
                if !self.layers.is_plain() {
                    self.tunnelled();
                }
                true
            }
            Err(kind) => {
                self.outcome.anomalies.add(kind);
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
            self.outcome.tunnels.add(k);
        }
        if let Some(e) = self.layers.inner_error() {
            self.outcome.anomalies.add(e);
        }
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
    dedup: Dedup,
    sink: S,
}

impl<S: Sink> Tracker<S> {
    /// Ends every open connection (the end of the input) into the sink, and returns the parts.
    fn end(self) -> (FlowTable, Dedup, S) {
        let Tracker {
            mut table,
            dedup,
            mut sink,
        } = self;
        table.finish(&mut sink);
        (table, dedup, sink)
    }

    /// One decoded packet (the hot path: no allocation).
    fn packet(&mut self, ts: crate::time::Timestamp, pkt: &Packet) {
        if !self.dedup.is_copy(ts, pkt) {
            self.table.observe(ts, pkt, &mut self.sink);
        }
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
                BufWriter::with_capacity(1 << 16, open_output(p)?),
            )),
            None => None,
        };
        Ok(Engine {
            front: Front::default(),
            tracker: Tracker {
                table: FlowTable::new(flow),
                dedup: Dedup::default(),
                sink: Collector {
                    counts: ConnCounts::default(),
                    agg: Aggregator::default(),
                    out,
                    write_error: None,
                },
            },
        })
    }

    /// One frame through decode and the flow table (the hot path: no allocation).
    pub fn frame(&mut self, frame: &Frame<'_>) {
        self.front.count(frame);
        if let Some(pkt) = self.front.decode(frame) {
            for carrier in self.front.carriers() {
                self.tracker.packet(frame.ts, carrier);
            }
            self.tracker.packet(frame.ts, &pkt);
        }
    }

    pub fn table(&self) -> &FlowTable {
        &self.tracker.table
    }

    /// What the report would say now: the finished connections plus every open one, as if
    /// the capture ended here (open connections are not ended, nor written to `--flows`).
    pub fn snapshot(&self) -> (Outcome, Aggregator) {
        let t = &self.tracker;
        let mut agg = t.sink.agg.clone();
        let mut counts = t.sink.counts.clone();
        t.table.snapshot(&mut |r: &ConnRecord| {
            counts.add(r);
            agg.conn(r);
        });
        let mut o = self.front.outcome.clone();
        o.conns = counts;
        o.flow = t.table.stats();
        o.duplicates = t.dedup.duplicates;
        o.folded = agg.folded;
        (o, agg)
    }

    /// Ends every open connection, flushes `--flows`, and returns what was found.
    pub fn finish(self, files: FileSummary) -> Result<(Outcome, Aggregator), Error> {
        let Engine { front, tracker } = self;
        let (table, dedup, mut sink) = tracker.end();
        let mut outcome = front.outcome;
        outcome.duplicates = dedup.duplicates;
        outcome.files = files;
        outcome.flow = table.stats();
        if let Some((name, w)) = &mut sink.out {
            if let Err(e) = w.flush() {
                sink.write_error.get_or_insert((name.clone(), e));
            }
        }
        if let Some((file, e)) = sink.write_error {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Err(Error::BrokenPipe);
            }
            return Err(Error::Output {
                file,
                problem: format!("write failed: {e}"),
            });
        }
        outcome.conns = sink.counts;
        outcome.folded = sink.agg.folded;
        Ok((outcome, sink.agg))
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

type Batch = Vec<(crate::time::Timestamp, Packet)>;

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
pub fn analyze(opts: &Options) -> Result<(Outcome, Aggregator), Error> {
    let mut filter = match &opts.filter {
        Some(expr) => Some(Filter::new(expr)?),
        None => None,
    };
    let Engine { mut front, tracker } = Engine::new(opts.flow, opts.flows.as_deref())?;
    let Tracker {
        table,
        dedup,
        sink: collector,
    } = tracker;
    let progress = opts.progress.then(|| Progress::new(&opts.files));
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
                dedup,
                sink: Forward {
                    batch: Vec::with_capacity(RECORDS),
                    full: rec_tx,
                    empty: rec_empty_rx,
                },
            };
            for mut batch in full_rx {
                for (ts, pkt) in &batch {
                    tracker.packet(*ts, pkt);
                }
                open_flows.store(tracker.table.len(), Ordering::Relaxed);
                batch.clear();
                // The reader may be gone already (it sent its last batch).
                let _ = empty_tx.send(batch);
            }
            // End of input: every open connection ends here, as in `Engine::finish`.
            let (table, dedup, mut sink) = tracker.end();
            if !sink.batch.is_empty() {
                sink.send();
            }
            drop(sink);
            let collector = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            Tracker {
                table,
                dedup,
                sink: collector,
            }
        });
        let mut batch: Batch = Vec::with_capacity(BATCH);
        let send = |batch: &mut Batch| {
            let next = empty_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            // Fails only if the tracker thread panicked; its join below reports that.
            let _ = full_tx.send(std::mem::replace(batch, next));
        };
        // The file reader counts frames, bytes and times itself (`FileSummary`).
        let mut frames = 0u64;
        let mut on_frame = |frame: &Frame<'_>| {
            frames += 1;
            // Decoded in place, in the batch (see `decode::decode_into`).
            batch.push((frame.ts, Packet::EMPTY));
            let decoded = match batch.last_mut() {
                Some((_, pkt)) => front.decode_into(frame, pkt),
                None => false,
            };
            if !decoded {
                batch.pop();
            } else if !front.carriers().is_empty() {
                // A tunnel's carriers go first (rare: moved rather than decoded in place).
                if let Some((ts, inner)) = batch.pop() {
                    for carrier in front.carriers() {
                        batch.push((ts, *carrier));
                        if batch.len() == BATCH {
                            send(&mut batch);
                        }
                    }
                    batch.push((ts, inner));
                }
                if batch.len() == BATCH {
                    send(&mut batch);
                }
            } else if batch.len() == BATCH {
                send(&mut batch);
            }
            if let Some(p) = &progress {
                p.frame(frames, frame.caplen, open_flows.load(Ordering::Relaxed));
            }
        };
        let read = read_files(&opts.files, filter.as_mut(), &mut on_frame);
        if !batch.is_empty() {
            send(&mut batch);
        }
        drop(full_tx);
        let tracker = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, tracker)
    });
    let files = read?;
    if let Some(p) = &progress {
        p.finish();
    }
    let unsupported = front
        .outcome
        .anomalies
        .get(AnomalyKind::UnsupportedLinkType);
    if unsupported > 0 && unsupported == files.frames - files.filtered_out {
        // Every frame was of a link type we cannot decode (a pcapng whose interfaces are all
        // of such types; a pcap's header is checked when the file is opened).
        let links: Vec<String> = files
            .link_types
            .iter()
            .map(|l| format!("{l} ({})", l.0))
            .collect();
        return Err(Error::input(
            files.files.join(", "),
            format!("unsupported link type {}", links.join(", ")),
        ));
    }
    Engine { front, tracker }.finish(files)
}
