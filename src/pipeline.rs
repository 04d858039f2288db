//! The single loop: `source → decode → flow`, and the finished connections on to the report
//! sinks. The same loop serves files and (later) live capture; only the source differs.

use crate::aggregate::Aggregator;
use crate::decode::{self, AnomalyCounts, AnomalyKind};
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
    /// Frames that gave no packet, by kind.
    pub anomalies: AnomalyCounts,
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
    out: Option<(String, BufWriter<Box<dyn Write>>)>,
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

fn open_output(path: &str) -> Result<Box<dyn Write>, Error> {
    if path == "-" {
        return Ok(Box::new(io::stdout()));
    }
    File::create(path)
        .map(|f| Box::new(f) as Box<dyn Write>)
        .map_err(|e| Error::Output {
            file: path.to_string(),
            problem: format!("cannot create: {e}"),
        })
}

/// The pipeline from a frame on: decode, drop multi-interface copies, the flow table, and the
/// sinks of finished connections. Files and live capture feed it the same way.
pub struct Engine {
    table: FlowTable,
    dedup: Dedup,
    sink: Collector,
    outcome: Outcome,
    /// Frames fed, their captured bytes, time span and link types (for live capture, where
    /// no file reader counts them).
    pub frames: u64,
    pub bytes: u64,
    pub first_ts: Option<crate::time::Timestamp>,
    pub last_ts: Option<crate::time::Timestamp>,
    pub link_types: Vec<crate::source::LinkType>,
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
            table: FlowTable::new(flow),
            dedup: Dedup::default(),
            sink: Collector {
                counts: ConnCounts::default(),
                agg: Aggregator::default(),
                out,
                write_error: None,
            },
            outcome: Outcome::default(),
            frames: 0,
            bytes: 0,
            first_ts: None,
            last_ts: None,
            link_types: vec![],
        })
    }

    /// One frame through decode and the flow table (the hot path: no allocation).
    pub fn frame(&mut self, frame: &Frame<'_>) {
        self.frames += 1;
        self.bytes += u64::from(frame.caplen);
        if self.first_ts.is_none_or(|t| frame.ts < t) {
            self.first_ts = Some(frame.ts);
        }
        if self.last_ts.is_none_or(|t| frame.ts > t) {
            self.last_ts = Some(frame.ts);
        }
        if self.link_types.last() != Some(&frame.link) && !self.link_types.contains(&frame.link) {
            self.link_types.push(frame.link);
        }
        match decode::decode(frame) {
            Ok(pkt) => {
                self.outcome.ip_packets += 1;
                if pkt.truncated {
                    self.outcome.payload_truncated += 1;
                }
                if !self.dedup.is_copy(frame.ts, &pkt) {
                    self.table.observe(frame.ts, &pkt, &mut self.sink);
                }
            }
            Err(kind) => self.outcome.anomalies.add(kind),
        }
    }

    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// What the report would say now: the finished connections plus every open one, as if
    /// the capture ended here (open connections are not ended, nor written to `--flows`).
    pub fn snapshot(&self) -> (Outcome, Aggregator) {
        let mut agg = self.sink.agg.clone();
        let mut counts = self.sink.counts.clone();
        self.table.snapshot(&mut |r: &ConnRecord| {
            counts.add(r);
            agg.conn(r);
        });
        let mut o = self.outcome.clone();
        o.conns = counts;
        o.flow = self.table.stats();
        o.duplicates = self.dedup.duplicates;
        o.folded = agg.folded;
        (o, agg)
    }

    /// Ends every open connection, flushes `--flows`, and returns what was found.
    pub fn finish(mut self, files: FileSummary) -> Result<(Outcome, Aggregator), Error> {
        self.table.finish(&mut self.sink);
        let mut outcome = self.outcome;
        outcome.duplicates = self.dedup.duplicates;
        outcome.files = files;
        outcome.flow = self.table.stats();
        let mut sink = self.sink;
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

/// Runs the whole pipeline over the files: what was found, and the connections folded into
/// conversations for the report.
pub fn analyze(opts: &Options) -> Result<(Outcome, Aggregator), Error> {
    let mut filter = match &opts.filter {
        Some(expr) => Some(Filter::new(expr)?),
        None => None,
    };
    let mut engine = Engine::new(opts.flow, opts.flows.as_deref())?;
    let progress = opts.progress.then(|| Progress::new(&opts.files));
    let mut on_frame = |frame: &Frame<'_>| {
        engine.frame(frame);
        if let Some(p) = &progress {
            p.frame(engine.frames, frame.caplen, engine.table());
        }
    };
    let files = read_files(&opts.files, filter.as_mut(), &mut on_frame)?;
    if let Some(p) = &progress {
        p.finish();
    }
    let unsupported = engine
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
    engine.finish(files)
}
