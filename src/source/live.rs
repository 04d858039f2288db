//! Live capture (`exflow live`): libpcap through the `pcap` crate, on a thread of its own.
//!
//! Capture and analysis are decoupled so that a slow report never makes the kernel drop
//! packets:
//!
//! ```text
//!  capture thread                                  analyzer (the calling thread)
//!  pcap dispatch → --write → Batch ──sync_channel(QUEUE_BATCHES)──→ Engine::frame, reports
//!                              ↑                                         │
//!                              └──────── empty batches (recycled) ───────┘
//! ```
//!
//! The capture thread copies each packet into the [`Batch`] it is filling (one contiguous
//! byte buffer plus a small header per packet) and hands the batch over when it is full, or
//! when its oldest packet has waited [`MAX_BATCH_AGE`]. The analyzer gives every batch back
//! once it has fed its frames to the engine, so in the steady state no buffer is allocated:
//! the pool grows only while the analyzer is behind, and never past what the queue can hold.
//! When the queue is full the capture thread does not wait: it drops the batch and counts
//! its packets (`queue` drops). Every packet lost anywhere is counted: by the kernel (the
//! capture buffer was full: libpcap's `ps_drop`), by the interface or its driver
//! (`ps_ifdrop`), and by the full queue.
//!
//! The capture is non-blocking and, by default, not in immediate mode: on Linux that is
//! TPACKET_V3, whose ring packs packets densely in blocks (handed over when full or after
//! 10 ms), so a 64 MiB buffer holds hundreds of thousands of small packets. Immediate mode
//! (`--immediate`) means TPACKET_V2, one fixed slot per packet sized for the largest packet
//! the interface may deliver: with GRO on, 64 KiB slots, ~1000 packets in the same buffer.
//! Measured on a veth with offloads on (the default): TPACKET_V2 dropped packets from
//! 150 kpps, TPACKET_V3 none at 558 kpps, the most two tcpreplays could send on 2 cores.

use super::outputs::{self, RecordWriter, WriteFailure};
use super::{Frame, FrameSink, LinkType};
use crate::error::Error;
use crate::time::Timestamp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default snap length: every header of every packet (and the payload of most), like
/// tcpdump's default.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Default kernel capture buffer, in MiB: room for bursts while the capture thread sleeps.
pub const DEFAULT_BUFFER_MIB: u32 = 64;
/// Most packets in one batch.
pub const BATCH_PACKETS: usize = 512;
/// A batch is handed over once it holds this many bytes of packet data.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Batches the queue between the capture thread and the analyzer holds (with
/// [`BATCH_BYTES`], up to 64 MiB of packets: as much as the default kernel buffer).
pub const QUEUE_BATCHES: usize = 256;
/// A batch is handed over at the latest this long after its first packet was captured, so
/// that a quiet link's packets still reach the report (and a busy link's batches are full).
pub const MAX_BATCH_AGE: Duration = Duration::from_millis(20);
/// libpcap's read timeout, which on Linux (TPACKET_V3) is how long the kernel may hold a
/// partly filled block of packets before handing it over.
pub const BLOCK_TIMEOUT_MS: i32 = 10;
/// How long the capture thread sleeps when the kernel has nothing for it. The capture is
/// non-blocking: libpcap's read timeout cannot be relied on to wake a quiet capture (libpcap
/// 1.10 on Linux keeps polling when it expires), and the thread must look at the batch's
/// age and the stop flag. At 1 Mpps a millisecond is ~1000 packets: the kernel buffer holds
/// far more.
const IDLE_SLEEP: Duration = Duration::from_millis(1);
/// How often the capture thread reads libpcap's drop counters.
const STATS_EVERY: Duration = Duration::from_millis(250);
/// How often `--write` is flushed to disk while capturing.
const WRITE_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// After the stop, how long the capture thread keeps reading what the kernel had already
/// captured.
const DRAIN_FOR: Duration = Duration::from_millis(500);

/// What to capture, and how.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub interface: String,
    /// A BPF expression, applied by the kernel.
    pub filter: Option<String>,
    pub snaplen: u32,
    pub promisc: bool,
    /// The kernel capture buffer, in bytes.
    pub buffer_size: u32,
    /// `--write`: a pcap file every captured packet is written to.
    pub write: Option<String>,
    /// libpcap's immediate mode: every packet handed over at once. Off by default: on
    /// Linux it means TPACKET_V2, whose ring has one slot per packet sized for the largest
    /// packet the interface can deliver (64 KiB when it aggregates with GRO/LRO), so the
    /// buffer then holds ~1000 packets instead of tens of thousands. Without it (TPACKET_V3)
    /// packets are packed in blocks, handed over when full or after [`BLOCK_TIMEOUT_MS`].
    pub immediate: bool,
}

impl LiveOptions {
    pub fn new(interface: &str) -> LiveOptions {
        LiveOptions {
            interface: interface.to_string(),
            filter: None,
            snaplen: DEFAULT_SNAPLEN,
            promisc: true,
            buffer_size: DEFAULT_BUFFER_MIB * 1024 * 1024,
            write: None,
            immediate: false,
        }
    }
}

/// How big a batch may grow before it is handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub packets: usize,
    pub bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            packets: BATCH_PACKETS,
            bytes: BATCH_BYTES,
        }
    }
}

/// Where one packet sits in a [`Batch`].
#[derive(Clone, Copy, Debug)]
struct Slot {
    ts: Timestamp,
    start: usize,
    caplen: u32,
    wire_len: u32,
}

/// Packets captured together: their bytes back to back in one buffer, and where each is.
/// Batches are reused: [`Batch::clear`] keeps both buffers' capacity.
#[derive(Debug)]
pub struct Batch {
    link: LinkType,
    data: Vec<u8>,
    slots: Vec<Slot>,
}

impl Default for Batch {
    /// An empty batch that has allocated nothing.
    fn default() -> Self {
        Batch {
            link: LinkType::ETHERNET,
            data: Vec::new(),
            slots: Vec::new(),
        }
    }
}

impl Batch {
    /// A batch with room for `limits` (allocated once, here).
    pub fn with_limits(limits: BatchLimits) -> Batch {
        Batch {
            link: LinkType::ETHERNET,
            data: Vec::with_capacity(limits.bytes),
            slots: Vec::with_capacity(limits.packets),
        }
    }

    /// Adds a packet. Grows the buffers only if the batch was not made big enough for it.
    pub fn push(&mut self, link: LinkType, ts: Timestamp, wire_len: u32, bytes: &[u8]) {
        if self.slots.is_empty() {
            self.link = link;
        }
        self.slots.push(Slot {
            ts,
            start: self.data.len(),
            caplen: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            wire_len,
        });
        self.data.extend_from_slice(bytes);
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes of packet data in the batch.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Whether `more` bytes fit without growing the data buffer.
    fn fits(&self, more: usize) -> bool {
        self.data.len() + more <= self.data.capacity() && self.slots.len() < self.slots.capacity()
    }

    fn is_full(&self, limits: BatchLimits) -> bool {
        self.slots.len() >= limits.packets || self.data.len() >= limits.bytes
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.slots.clear();
    }

    /// The address of the data buffer and its capacity: the same pair again means the same
    /// buffer was reused (for tests).
    pub fn buffer_id(&self) -> (usize, usize) {
        (self.data.as_ptr() as usize, self.data.capacity())
    }

    /// The packets, as frames borrowed from the batch.
    pub fn frames(&self) -> impl Iterator<Item = Frame<'_>> + '_ {
        self.slots.iter().map(move |s| {
            let end = s.start + s.caplen as usize;
            Frame {
                ts: s.ts,
                link: self.link,
                caplen: s.caplen,
                wire_len: s.wire_len,
                iface: 0,
                interfaces: 1,
                bytes: self.data.get(s.start..end).unwrap_or(&[]),
            }
        })
    }
}

/// Packets lost during a live capture, by where they were lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Dropped by the kernel: the capture buffer was full (libpcap's `ps_drop`).
    pub kernel: u64,
    /// Dropped by the interface or its driver (libpcap's `ps_ifdrop`).
    pub interface: u64,
    /// Captured, then dropped because the analyzer's queue was full.
    pub queue: u64,
}

impl Drops {
    pub fn total(&self) -> u64 {
        self.kernel + self.interface + self.queue
    }
}

/// The drop counters, shared between the capture thread and the analyzer.
#[derive(Debug, Default)]
pub struct DropCounters {
    kernel: AtomicU64,
    interface: AtomicU64,
    queue: AtomicU64,
    /// Batches dropped whole because the queue was full.
    queue_batches: AtomicU64,
}

impl DropCounters {
    pub fn get(&self) -> Drops {
        Drops {
            kernel: self.kernel.load(Ordering::Relaxed),
            interface: self.interface.load(Ordering::Relaxed),
            queue: self.queue.load(Ordering::Relaxed),
        }
    }

    /// Batches dropped because the queue was full.
    pub fn queue_batches(&self) -> u64 {
        self.queue_batches.load(Ordering::Relaxed)
    }
}

/// The capture thread's end of the queue: fills batches and hands them over.
pub struct Producer {
    tx: SyncSender<Batch>,
    free: Receiver<Batch>,
    current: Batch,
    /// When the current batch got its first packet.
    started: Option<Instant>,
    limits: BatchLimits,
    counters: Arc<DropCounters>,
    /// Batches allocated so far (the pool only grows while the analyzer is behind).
    allocated: usize,
}

/// The analyzer hung up: nothing more can be handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnected;

impl Producer {
    /// Adds a packet to the current batch, handing the batch over first if the packet does
    /// not fit, and after if the batch is then full.
    pub fn push(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        wire_len: u32,
        bytes: &[u8],
    ) -> Result<(), Disconnected> {
        if !self.current.is_empty() && !self.current.fits(bytes.len()) {
            self.flush()?;
        }
        if self.current.is_empty() {
            self.started = Some(Instant::now());
        }
        self.current.push(link, ts, wire_len, bytes);
        if self.current.is_full(self.limits) {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the current batch over if its first packet is older than `age`.
    pub fn flush_if_older(&mut self, age: Duration) -> Result<(), Disconnected> {
        match self.started {
            Some(t) if t.elapsed() >= age => self.flush(),
            _ => Ok(()),
        }
    }

    /// Hands the current batch over without waiting. When the queue is full the batch is
    /// dropped, its packets counted, and its buffer kept for the next packets.
    pub fn flush(&mut self) -> Result<(), Disconnected> {
        if self.current.is_empty() {
            return Ok(());
        }
        self.started = None;
        // An empty `Batch::default()` allocates nothing; it is replaced at once.
        let batch = std::mem::take(&mut self.current);
        match self.tx.try_send(batch) {
            Ok(()) => {
                self.current = self.free_batch();
                Ok(())
            }
            Err(TrySendError::Full(mut batch)) => {
                self.counters
                    .queue
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.counters.queue_batches.fetch_add(1, Ordering::Relaxed);
                batch.clear();
                self.current = batch;
                Ok(())
            }
            Err(TrySendError::Disconnected(mut batch)) => {
                batch.clear();
                self.current = batch;
                Err(Disconnected)
            }
        }
    }

    /// Hands the last batch over, waiting for room in the queue (the analyzer is draining
    /// it), and hangs up.
    pub fn finish(mut self) {
        if !self.current.is_empty() {
            let batch = std::mem::take(&mut self.current);
            let _ = self.tx.send(batch);
        }
    }

    /// A recycled batch, or a new one while the pool is still growing.
    fn free_batch(&mut self) -> Batch {
        match self.free.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => {
                self.allocated += 1;
                Batch::with_limits(self.limits)
            }
        }
    }

    /// Batches allocated so far.
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// Packets in the batch being filled.
    pub fn pending(&self) -> usize {
        self.current.len()
    }
}

/// The analyzer's end of the queue.
pub struct Consumer {
    rx: Receiver<Batch>,
    free: SyncSender<Batch>,
}

impl Consumer {
    /// The next batch, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Batch, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// The next batch if one is waiting.
    pub fn try_recv(&self) -> Option<Batch> {
        self.rx.try_recv().ok()
    }

    /// Gives a batch back to the capture thread for reuse.
    pub fn recycle(&self, batch: Batch) {
        // The return queue has room for every batch there can be; if the capture thread has
        // gone, the batch is simply freed.
        let _ = self.free.try_send(batch);
    }
}

/// A queue of `queue` batches between a producer and a consumer, with the return queue for
/// empty batches.
pub fn handoff(
    limits: BatchLimits,
    queue: usize,
    counters: Arc<DropCounters>,
) -> (Producer, Consumer) {
    let queue = queue.max(1);
    let (tx, rx) = mpsc::sync_channel(queue);
    // Batches in circulation: the queue's, the one being filled, the one being analysed.
    let (free_tx, free_rx) = mpsc::sync_channel(queue + 2);
    let producer = Producer {
        tx,
        free: free_rx,
        current: Batch::with_limits(limits),
        started: None,
        limits,
        counters,
        allocated: 1,
    };
    (producer, Consumer { rx, free: free_tx })
}

/// Accumulates one of libpcap's 32-bit counters into 64 bits across wrap-arounds.
#[derive(Clone, Copy, Debug, Default)]
struct Counter32 {
    last: u32,
    total: u64,
}

impl Counter32 {
    fn update(&mut self, now: u32) -> u64 {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.total
    }
}

/// The LINKTYPE_ value for a DLT_ value libpcap reports (the reverse of the mapping in
/// `filter.rs`): they are equal except raw IP, DLT 12 (14 on OpenBSD) = LINKTYPE_RAW 101.
pub fn linktype_of_dlt(dlt: i32) -> LinkType {
    match dlt {
        12 | 14 => LinkType::RAW,
        d => LinkType(u32::try_from(d).unwrap_or(u32::MAX)),
    }
}

/// libpcap's own text for an error from the `pcap` crate.
fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg.clone(),
        pcap::Error::InvalidInputString => "contains a NUL character".into(),
        other => other.to_string(),
    }
}

fn is_permission_problem(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("permission") || m.contains("not permitted")
}

const PERMISSION_HINT: &str = "capturing needs root, or the capabilities: \
     sudo setcap cap_net_raw,cap_net_admin=eip $(which exflow)";

/// The names of the interfaces libpcap can capture on, or None if it cannot list them.
fn interface_names() -> Option<Vec<String>> {
    pcap::Device::list()
        .ok()
        .map(|l| l.into_iter().map(|d| d.name).collect())
}

/// Why opening `iface` failed, in one line.
fn open_error(iface: &str, e: &pcap::Error) -> Error {
    let msg = pcap_message(e);
    if let Some(names) = interface_names() {
        if !names.iter().any(|n| n == iface) {
            return Error::Usage(format!(
                "no interface named '{iface}'; interfaces that exist: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    if is_permission_problem(&msg) {
        return Error::Usage(format!(
            "cannot capture on interface '{iface}': permission denied ({msg}); {PERMISSION_HINT}"
        ));
    }
    Error::Usage(format!("cannot capture on interface '{iface}': {msg}"))
}

/// Bytes of `--write` records gathered before they are written.
const WRITE_BUFFER: usize = 1 << 16;

/// `--write`: a pcap file as libpcap writes one (microsecond timestamps, the host's byte
/// order), written here rather than by libpcap's `pcap_dump`, which cannot tell a failed write
/// (a full disk) from a good one: every packet is counted, written or not.
struct PcapOut {
    path: String,
    w: RecordWriter<std::fs::File>,
}

impl PcapOut {
    /// Opens `path` by the outputs' rules ([`outputs::create`]) and puts the file header in
    /// the buffer.
    fn create(path: &str, snaplen: u32, link: LinkType) -> Result<PcapOut, Error> {
        let file = outputs::create("--write", path)?;
        let mut w = RecordWriter::new(file, WRITE_BUFFER);
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
        header[4..6].copy_from_slice(&2u16.to_ne_bytes());
        header[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone and sigfigs: 0.
        header[16..20].copy_from_slice(&snaplen.to_ne_bytes());
        header[20..24].copy_from_slice(&link.0.to_ne_bytes());
        w.preamble(&header);
        Ok(PcapOut {
            path: path.to_string(),
            w,
        })
    }

    /// One packet's record (its header as libpcap gave it, and the bytes captured).
    #[inline]
    fn packet(&mut self, h: &pcap::PacketHeader, data: &[u8]) {
        // time_t and suseconds_t are i64 here but narrower on some targets; the file's fields
        // are 32 bits, as libpcap writes them.
        #[allow(clippy::unnecessary_cast)]
        let (sec, usec) = (h.ts.tv_sec as i64 as u32, h.ts.tv_usec as i64 as u32);
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let _ = self.w.record(|buf| {
            for v in [sec, usec, caplen, h.len] {
                buf.extend_from_slice(&v.to_ne_bytes());
            }
            buf.extend_from_slice(data);
            Ok(())
        });
    }

    /// Ends the file: how it failed, if it did.
    fn finish(self) -> Option<WriteFailure> {
        let counts = self.w.finish();
        counts.error.map(|e| WriteFailure {
            option: "--write",
            file: self.path,
            unit: "packets",
            written: counts.written,
            not_written: counts.not_written,
            error: e.to_string(),
        })
    }
}

/// An opened capture, not yet reading.
pub struct Live {
    cap: pcap::Capture<pcap::Active>,
    save: Option<PcapOut>,
    link: LinkType,
    interface: String,
}

/// How a live run ended.
#[derive(Clone, Debug, Default)]
pub struct LiveEnd {
    pub drops: Drops,
    /// The capture stopped on its own because of this error (e.g. the interface went away).
    pub capture_error: Option<String>,
    /// `--write` could not be written whole (a full disk): the packets written and not.
    pub write_failure: Option<WriteFailure>,
    /// Batches dropped whole because the queue was full.
    pub queue_batches: u64,
    /// Batches the capture thread allocated (the pool; steady state allocates none).
    pub batches_allocated: usize,
}

/// When to stop and when to report.
pub struct Control<'a> {
    /// Set (by a signal handler) to stop the capture.
    pub stop: &'a AtomicBool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Call the tick callback this often.
    pub interval: Option<Duration>,
}

impl Live {
    /// Opens the interface (promiscuous unless told, non-blocking, the given snap length,
    /// buffer and immediate mode),
    /// applies the filter, and opens `--write`. Errors are one line each: an interface that
    /// does not exist (listing those that do), no permission, a filter libpcap rejects.
    pub fn open(opts: &LiveOptions) -> Result<Live, Error> {
        let iface = opts.interface.as_str();
        let snaplen = i32::try_from(opts.snaplen.max(64)).unwrap_or(i32::MAX);
        let buffer = i32::try_from(opts.buffer_size).unwrap_or(i32::MAX);
        let inactive = pcap::Capture::from_device(iface).map_err(|e| open_error(iface, &e))?;
        let mut cap = inactive
            .promisc(opts.promisc)
            .snaplen(snaplen)
            .buffer_size(buffer)
            .immediate_mode(opts.immediate)
            .timeout(BLOCK_TIMEOUT_MS)
            .open()
            .and_then(|c| c.setnonblock())
            .map_err(|e| open_error(iface, &e))?;
        if let Some(expr) = &opts.filter {
            cap.filter(expr, true).map_err(|e| {
                Error::Usage(format!("invalid --filter '{expr}': {}", pcap_message(&e)))
            })?;
        }
        let link = linktype_of_dlt(cap.get_datalink().0);
        let save = match &opts.write {
            Some(path) => Some(PcapOut::create(
                path,
                u32::try_from(snaplen).unwrap_or(DEFAULT_SNAPLEN),
                link,
            )?),
            None => None,
        };
        Ok(Live {
            cap,
            save,
            link,
            interface: iface.to_string(),
        })
    }

    /// The capture's link type.
    pub fn link(&self) -> LinkType {
        self.link
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Captures until `control.stop` is set or `control.duration` has passed, handing every
    /// packet to `sink` and calling its `tick` every `control.interval` with the drops so
    /// far. Returns once every packet captured before the stop has been handed over and
    /// `--write` is flushed. An error from `tick` stops the capture and is returned.
    pub fn run(self, sink: &mut dyn FrameSink, control: &Control<'_>) -> Result<LiveEnd, Error> {
        let counters = Arc::new(DropCounters::default());
        let (producer, consumer) =
            handoff(BatchLimits::default(), QUEUE_BATCHES, Arc::clone(&counters));
        let halt = AtomicBool::new(false);
        let Live {
            cap, save, link, ..
        } = self;
        let stop_capture = || halt.store(true, Ordering::SeqCst);
        std::thread::scope(|scope| {
            let capture = std::thread::Builder::new()
                .name("exflow-capture".into())
                .spawn_scoped(scope, || {
                    capture_loop(cap, save, link, producer, &halt, &counters)
                })
                .map_err(|e| Error::Usage(format!("cannot start the capture thread: {e}")))?;
            let analysed = analyze_loop(sink, &consumer, control, &stop_capture, &counters);
            // Whatever ended the analysis, the capture ends too. (After a normal end the
            // capture thread has already hung up; after an error, hanging up here keeps its
            // last hand-over from waiting for room in the queue.)
            stop_capture();
            drop(consumer);
            let end = capture
                .join()
                .map_err(|_| Error::Usage("the capture thread panicked".into()))?;
            analysed?;
            Ok(LiveEnd {
                drops: counters.get(),
                queue_batches: counters.queue_batches(),
                ..end
            })
        })
    }
}

/// The analyzer: hands batches to the sink until the capture thread hangs up.
fn analyze_loop(
    sink: &mut dyn FrameSink,
    consumer: &Consumer,
    control: &Control<'_>,
    stop_capture: &dyn Fn(),
    counters: &DropCounters,
) -> Result<(), Error> {
    let start = Instant::now();
    let deadline = control.duration.and_then(|d| start.checked_add(d));
    let interval = control.interval.filter(|i| !i.is_zero());
    let mut next_tick = interval.and_then(|i| start.checked_add(i));
    let mut stopping = false;
    loop {
        let now = Instant::now();
        if !stopping && (control.stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| now >= d))
        {
            stop_capture();
            stopping = true;
        }
        let mut wait = Duration::from_millis(100);
        if !stopping {
            for t in [next_tick, deadline].into_iter().flatten() {
                wait = wait.min(t.saturating_duration_since(now));
            }
        }
        match consumer.recv_timeout(wait) {
            Ok(batch) => {
                for frame in batch.frames() {
                    sink.frame(&frame);
                }
                consumer.recycle(batch);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        if let (Some(t), Some(i)) = (next_tick, interval) {
            if !stopping && Instant::now() >= t {
                sink.tick(counters.get())?;
                // Skip ticks missed while reporting took longer than the interval.
                let now = Instant::now();
                let mut next = t.checked_add(i);
                while let Some(n) = next.filter(|n| *n <= now) {
                    next = n.checked_add(i);
                }
                next_tick = next;
            }
        }
    }
}

/// The capture thread: reads packets, writes them to `--write`, hands them over in batches.
/// The capture is non-blocking; when the kernel has nothing, the thread sleeps
/// [`IDLE_SLEEP`].
fn capture_loop(
    mut cap: pcap::Capture<pcap::Active>,
    mut save: Option<PcapOut>,
    link: LinkType,
    mut producer: Producer,
    halt: &AtomicBool,
    counters: &DropCounters,
) -> LiveEnd {
    const READ_AT_MOST: usize = 4 * BATCH_PACKETS;
    let mut end = LiveEnd::default();
    let mut kernel = Counter32::default();
    let mut interface = Counter32::default();
    let mut last_stats = Instant::now();
    let mut last_flush = Instant::now();
    let mut hung_up = false;
    let mut stats = |cap: &mut pcap::Capture<pcap::Active>| {
        if let Ok(s) = cap.stats() {
            counters
                .kernel
                .store(kernel.update(s.dropped), Ordering::Relaxed);
            counters
                .interface
                .store(interface.update(s.if_dropped), Ordering::Relaxed);
        }
    };
    while !halt.load(Ordering::SeqCst) && !hung_up {
        let read = read(
            &mut cap,
            &mut save,
            link,
            READ_AT_MOST,
            &mut producer,
            &mut hung_up,
        );
        match read {
            Ok(n) => {
                hung_up |= producer.flush_if_older(MAX_BATCH_AGE).is_err();
                if n == 0 {
                    std::thread::sleep(IDLE_SLEEP);
                }
            }
            Err(pcap::Error::TimeoutExpired) => std::thread::sleep(IDLE_SLEEP),
            Err(e) => {
                end.capture_error = Some(pcap_message(&e));
                break;
            }
        }
        if last_stats.elapsed() >= STATS_EVERY {
            stats(&mut cap);
            last_stats = Instant::now();
        }
        if last_flush.elapsed() >= WRITE_FLUSH_EVERY {
            if let Some(out) = save.as_mut() {
                out.w.flush();
            }
            last_flush = Instant::now();
        }
    }
    // What the kernel captured before the stop is still in its ring: read that too.
    let drain_start = Instant::now();
    while end.capture_error.is_none() && !hung_up && drain_start.elapsed() < DRAIN_FOR {
        match read(
            &mut cap,
            &mut save,
            link,
            READ_AT_MOST,
            &mut producer,
            &mut hung_up,
        ) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    stats(&mut cap);
    end.batches_allocated = producer.allocated();
    producer.finish();
    end.write_failure = save.and_then(PcapOut::finish);
    end
}

/// Reads what libpcap has (at most a few batches' worth), writing each packet to `--write`
/// and handing it to the producer. `hung_up` is set if the analyzer has gone.
fn read(
    cap: &mut pcap::Capture<pcap::Active>,
    save: &mut Option<PcapOut>,
    link: LinkType,
    at_most: usize,
    producer: &mut Producer,
    hung_up: &mut bool,
) -> Result<usize, pcap::Error> {
    cap.dispatch(Some(at_most), |packet| {
        if let Some(out) = save.as_mut() {
            out.packet(packet.header, packet.data);
        }
        let h = packet.header;
        // time_t and suseconds_t are i64 here but narrower on some targets.
        #[allow(clippy::unnecessary_cast)]
        let ts = Timestamp::from_secs_nanos(
            h.ts.tv_sec as i64,
            (h.ts.tv_usec as i64).saturating_mul(1000),
        );
        if producer.push(link, ts, h.len, packet.data).is_err() {
            *hung_up = true;
        }
    })
}

/// The interfaces libpcap can capture on, as rows of text: name, flags, addresses,
/// description, after a header row. The names and descriptions are the system's, raw: the
/// report escapes them where it prints them.
pub fn list_interfaces() -> Result<Vec<[String; 4]>, Error> {
    let devices = pcap::Device::list()
        .map_err(|e| Error::Usage(format!("cannot list interfaces: {}", pcap_message(&e))))?;
    let mut rows: Vec<[String; 4]> = vec![[
        "INTERFACE".into(),
        "FLAGS".into(),
        "ADDRESSES".into(),
        "DESCRIPTION".into(),
    ]];
    for d in devices {
        let mut flags = vec![];
        if d.flags.is_up() {
            flags.push("up");
        }
        if d.flags.is_running() {
            flags.push("running");
        }
        if d.flags.is_loopback() {
            flags.push("loopback");
        }
        if d.flags.is_wireless() {
            flags.push("wireless");
        }
        let addrs: Vec<String> = d
            .addresses
            .iter()
            .map(|a| match a.netmask.and_then(prefix_len) {
                Some(p) => format!("{}/{p}", a.addr),
                None => a.addr.to_string(),
            })
            .collect();
        rows.push([
            d.name,
            if flags.is_empty() {
                "-".into()
            } else {
                flags.join(",")
            },
            if addrs.is_empty() {
                "-".into()
            } else {
                addrs.join(" ")
            },
            d.desc.unwrap_or_else(|| "-".into()),
        ]);
    }
    Ok(rows)
}

/// The prefix length of a contiguous netmask.
fn prefix_len(mask: std::net::IpAddr) -> Option<u32> {
    let (ones, bits, zeros) = match mask {
        std::net::IpAddr::V4(m) => {
            let v = u32::from(m);
            (v.count_ones(), 32, v.trailing_zeros())
        }
        std::net::IpAddr::V6(m) => {
            let v = u128::from(m);
            (v.count_ones(), 128, v.trailing_zeros())
        }
    };
    (ones + zeros == bits).then_some(ones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter32_survives_wraparound() {
        let mut c = Counter32::default();
        assert_eq!(c.update(10), 10);
        assert_eq!(c.update(u32::MAX), u64::from(u32::MAX));
        assert_eq!(c.update(4), u64::from(u32::MAX) + 5);
    }

    #[test]
    fn raw_dlt_is_linktype_raw() {
        assert_eq!(linktype_of_dlt(12), LinkType::RAW);
        assert_eq!(linktype_of_dlt(1), LinkType::ETHERNET);
        assert_eq!(linktype_of_dlt(276), LinkType::LINUX_SLL2);
    }

    #[test]
    fn prefix_lengths() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        assert_eq!(
            prefix_len(IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0))),
            Some(24)
        );
        assert_eq!(prefix_len(IpAddr::V4(Ipv4Addr::new(255, 0, 255, 0))), None);
        assert_eq!(
            prefix_len(IpAddr::V6(Ipv6Addr::new(
                0xffff, 0xffff, 0xffff, 0xffff, 0, 0, 0, 0
            ))),
            Some(64)
        );
    }
}
