//! `flow`: the connection table. One entry per bidirectional 5-tuple, updated in place by
//! every packet; a [`ConnRecord`] is handed to a [`Sink`] when a connection ends (closed,
//! idle, reused, evicted, or still open at the end of the capture).
//!
//! TCP follows Zeek's state machine ([`tcp`]); UDP and ICMP follow Zeek's simpler rules. ICMP
//! errors that quote a tracked connection's packet are attached to that connection.
//!
//! Nothing here allocates per packet: a new connection inserts one entry into a table
//! reserved up front; records are built only when a connection ends.

pub mod dedup;
pub mod history;
pub mod import;
pub mod key;
pub mod nat;
pub mod payload;
pub mod record;
pub mod reorder;
pub mod tcp;
pub mod zeek_ports;

pub use key::{Endpoint, FlowKey};
pub use record::{
    iface_bit, AfterGap, ConnRecord, DirStats, EndReason, IcmpError, IdleGap, Side, SimOpen,
};
pub use tcp::ConnState;

use crate::decode::proto::{self, Proto};
use crate::decode::{Packet, Transport};
use crate::time::{Duration, Timestamp};
use history::{History, Mark};
use record::ICMP_KEPT;
use std::collections::HashMap;

/// The index's hasher: foldhash, seeded per process (a flow key is five words; SipHash cost a
/// tenth of the run, and a fixed unkeyed hash would let a crafted capture collide keys).
type Index = HashMap<FlowKey, u32, foldhash::fast::RandomState>;
use tcp::{EpState, TcpConn};

/// Timeouts and limits. The defaults are Exchange-aware (see PRODUCT.md, "Flow tracking").
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    /// An established TCP connection is kept through this much silence. ActiveSync Direct
    /// Push and MAPI/HTTP idle up to 30 minutes by design; Zeek's 5 minutes would split them.
    pub tcp_idle: Duration,
    /// A TCP attempt nobody answered is kept this long after its last SYN, so that every
    /// retransmission of one attempt lands in one connection (Linux retries for ~2 min).
    pub tcp_attempt_idle: Duration,
    /// A closed or reset connection is removed this long after it closed (Zeek's
    /// `tcp_close_delay` / `tcp_reset_delay`, 5 s): late ACKs and RSTs still attach to it.
    pub tcp_close_delay: Duration,
    /// UDP idle timeout (Zeek's `udp_inactivity_timeout`, 1 min).
    pub udp_idle: Duration,
    /// ICMP idle timeout (Zeek's `icmp_inactivity_timeout`, 1 min).
    pub icmp_idle: Duration,
    /// Hard cap on concurrent connections; past it the quietest are evicted (and counted).
    /// A tracked connection costs under 750 bytes (see the `memory` test; the slab never
    /// grows past the cap), so the default 100,000 bounds the table near 70 MiB.
    pub max_flows: usize,
    /// Packets are put back in time order within this window (a capture of several
    /// interfaces is written in bursts per interface; see [`reorder`]).
    pub reorder_window: Duration,
    /// Mixed into every connection's uid (the run's key): a random number by default in the
    /// command, so two runs or two sensors never share a uid; fixed (`--seed`) for
    /// reproducible output. 0 gives the uids of the connection numbers alone.
    pub uid_key: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_idle: Duration::from_secs(3600),
            tcp_attempt_idle: Duration::from_secs(120),
            tcp_close_delay: Duration::from_secs(5),
            udp_idle: Duration::from_secs(60),
            icmp_idle: Duration::from_secs(60),
            max_flows: 100_000,
            reorder_window: reorder::DEFAULT_WINDOW,
            uid_key: 0,
        }
    }
}

/// Receives every finished connection.
pub trait Sink {
    fn conn(&mut self, rec: &ConnRecord);
}

impl<F: FnMut(&ConnRecord)> Sink for F {
    fn conn(&mut self, rec: &ConnRecord) {
        self(rec)
    }
}

/// Counters of the table itself, for the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowStats {
    pub connections: u64,
    pub evicted: u64,
    pub peak_flows: usize,
    /// ICMP errors attached to a tracked connection.
    pub icmp_attached: u64,
    /// ICMP errors whose quoted packet matched no tracked connection.
    pub icmp_unmatched: u64,
    /// Packets of IP protocols exflow does not track (ESP, GRE, ...).
    pub other_proto_pkts: u64,
}

// Most connections are TCP, so boxing the TCP state would only add a pointer chase.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
enum Kind {
    Tcp(TcpConn),
    Udp,
    Icmp,
}

#[derive(Clone, Debug)]
struct Flow {
    orig: Endpoint,
    resp: Endpoint,
    proto: u8,
    uid: u64,
    first_ts: Timestamp,
    /// Zeek's `LastTime`: not moved once both sides closed.
    last_time: Timestamp,
    /// Last packet of any kind (for idle timeouts).
    last_seen: Timestamp,
    /// Set when the connection closed completely: removed at this time.
    delete_at: Option<Timestamp>,
    /// Zeek's attempt timer: 5 s after the originator's first SYN, a connection whose
    /// responder was never heard is ended.
    /// [`NO_DEADLINE`] until set (a sentinel rather than an `Option`: 8 bytes less per
    /// tracked connection).
    attempt_deadline: Timestamp,
    /// The originator sent something other than a SYN (an ACK, data, FIN, RST).
    orig_beyond_syn: bool,
    kind: Kind,
    history: History,
    stats: [DirStats; 2],
    /// Saturating at 65,535.
    syn_retries: u16,
    last_syn_ts: Option<Timestamp>,
    /// The first SYN-ACK's time; [`NO_TIME`] until one is seen (a sentinel rather than an
    /// `Option`: 8 bytes less per tracked connection, which its payload look's pointer took).
    synack_ts: Timestamp,
    rtt_syn_synack: Option<Duration>,
    rtt_synack_ack: Option<Duration>,
    rst_by: Option<(Side, u8)>,
    /// The first RST's interfaces (see [`ConnRecord::rst_ifaces`]), and its time in
    /// microseconds after the connection's first packet (saturating).
    rst_ifaces: u32,
    rst_at_us: u32,
    /// RSTs kept out of `rst_by` as spoofed or ignored (saturating): outside their receiver's
    /// window, or followed by data or a FIN from their receiver (see [`ConnRecord::ignored_rsts`]).
    ignored_rsts: u16,
    /// Half of a simultaneous open ([`SimOpen`]).
    sim_open: SimOpen,
    icmp: [Option<IcmpError>; ICMP_KEPT],
    /// Saturating at 65,535 (a 16-bit count keeps a tracked connection within its budget).
    icmp_count: u16,
    /// The NAT pair a packet of it was translated by ([`Packet::nat`]; 0: none).
    via: u8,
    /// The established connection's longest quiet gap and what came after it, in one word
    /// (4 bytes keep a tracked connection within its budget): the gap in milliseconds in the
    /// low 27 bits (saturating at 37 hours), what came after it (`IDLE_*`) in the next 3, the
    /// packets its breaker sent after it while no reply came in the top 2 (saturating at 3).
    /// See [`idle_update`].
    idle: u32,
    /// The payload look, from the connection's first payload byte ([`payload`]).
    look: Option<Box<payload::Look>>,
}

/// No SYN-ACK seen yet ([`Flow::synack_ts`]).
const NO_TIME: Timestamp = Timestamp(i64::MIN);

/// No attempt deadline set ([`Flow::attempt_deadline`]).
const NO_DEADLINE: Timestamp = Timestamp(i64::MAX);

impl Flow {
    fn new(orig: Endpoint, resp: Endpoint, proto: u8, uid: u64, ts: Timestamp) -> Flow {
        let kind = match proto {
            proto::TCP => Kind::Tcp(TcpConn::default()),
            proto::UDP => Kind::Udp,
            _ => Kind::Icmp,
        };
        Flow {
            orig,
            resp,
            proto,
            uid,
            first_ts: ts,
            last_time: ts,
            last_seen: ts,
            delete_at: None,
            attempt_deadline: NO_DEADLINE,
            orig_beyond_syn: false,
            kind,
            history: History::default(),
            stats: [DirStats::default(); 2],
            syn_retries: 0,
            last_syn_ts: None,
            synack_ts: NO_TIME,
            rtt_syn_synack: None,
            rtt_synack_ack: None,
            rst_by: None,
            rst_ifaces: 0,
            rst_at_us: 0,
            ignored_rsts: 0,
            sim_open: SimOpen::No,
            via: 0,
            idle: IDLE_NONE,
            icmp: [None; ICMP_KEPT],
            icmp_count: 0,
            look: None,
        }
    }

    /// Swaps originator and responder (Zeek's `Connection::FlipRoles`, with the packet and
    /// byte counters swapped too, as zeek/zeek#5047 fixed).
    fn flip_endpoints(&mut self) {
        std::mem::swap(&mut self.orig, &mut self.resp);
        self.stats.swap(0, 1);
        if let Some(l) = &mut self.look {
            l.flip();
        }
        if let Some((s, ttl)) = self.rst_by {
            let s = if s == Side::Orig {
                Side::Resp
            } else {
                Side::Orig
            };
            self.rst_by = Some((s, ttl));
        }
    }

    /// When this flow should be removed if nothing more arrives.
    fn expires_at(&self, cfg: &FlowConfig) -> Timestamp {
        match &self.kind {
            Kind::Tcp(c) => {
                if let Some(t) = self.delete_at {
                    return t;
                }
                let (o, r) = (c.orig(), c.resp());
                // One side closed, the other reset or silent: Zeek's ExpireTimer removes it
                // after `tcp_connection_linger` (5 s) of quiet.
                if (o.did_close || r.did_close)
                    && (o.state == EpState::Reset
                        || r.state == EpState::Reset
                        || o.state == EpState::Inactive
                        || r.state == EpState::Inactive)
                {
                    return self.last_seen.plus(cfg.tcp_close_delay);
                }
                let attempt = matches!(o.state, EpState::SynSent | EpState::SynAckSent)
                    && r.state == EpState::Inactive;
                // Zeek's AttemptTimer (`TCPSessionAdapter::AttemptTimer`) ends such a
                // connection 5 s after the SYN. exflow follows it only once the originator
                // went beyond SYNs (a capture that sees one direction: "SAD" then "DAF"
                // rows, like Zeek); an attempt of SYNs alone is kept together through its
                // retransmissions instead (Zeek logs each late retransmission as a new
                // connection, zeek/zeek#394).
                if attempt && self.orig_beyond_syn {
                    if let Some(t) = Some(self.attempt_deadline).filter(|&t| t != NO_DEADLINE) {
                        return t.min(self.last_seen.plus(cfg.tcp_attempt_idle));
                    }
                }
                if attempt {
                    self.last_seen.plus(cfg.tcp_attempt_idle)
                } else {
                    self.last_seen.plus(cfg.tcp_idle)
                }
            }
            Kind::Udp => self.last_seen.plus(cfg.udp_idle),
            Kind::Icmp => self.last_seen.plus(cfg.icmp_idle),
        }
    }

    /// The longest quiet gap and what came after it, as the record shows it.
    fn idle_gap(&self, end: EndReason) -> IdleGap {
        let after = match idle_state(self.idle) {
            IDLE_ANSWERED => AfterGap::Answered,
            IDLE_RESET_BETWEEN => AfterGap::ResetInBetween,
            IDLE_RESET_PEER => AfterGap::ResetByPeer,
            IDLE_PENDING_ORIG | IDLE_PENDING_RESP
                if end != EndReason::Open && self.idle >> 30 >= IDLE_RETRANSMITTED =>
            {
                AfterGap::Unanswered
            }
            IDLE_PENDING_ORIG | IDLE_PENDING_RESP => AfterGap::Pending,
            _ => AfterGap::None,
        };
        IdleGap {
            max_ms: if after == AfterGap::None {
                0
            } else {
                self.idle & IDLE_MS
            },
            after,
        }
    }

    /// The connection's record; `uid_key` is the run's [`FlowConfig::uid_key`].
    fn record(&self, end: EndReason, nat: &nat::NatMap, uid_key: u64) -> ConnRecord {
        let (orig_bytes, resp_bytes, conn_state, missed) = match &self.kind {
            Kind::Tcp(c) => (
                c.orig().size(c.resp().state),
                c.resp().size(c.orig().state),
                tcp::conn_state(c, &self.history),
                c.orig().missed_bytes.saturating_add(c.resp().missed_bytes),
            ),
            Kind::Udp => {
                let (o, r) = (self.stats[0].pkts > 0, self.stats[1].pkts > 0);
                let st = match (o, r) {
                    (true, true) => ConnState::SF,
                    (true, false) => ConnState::S0,
                    (false, true) => ConnState::SHR,
                    (false, false) => ConnState::OTH,
                };
                (
                    self.stats[0].payload_bytes,
                    self.stats[1].payload_bytes,
                    st,
                    0,
                )
            }
            Kind::Icmp => (
                self.stats[0].payload_bytes,
                self.stats[1].payload_bytes,
                ConnState::OTH,
                0,
            ),
        };
        ConnRecord {
            ts: self.first_ts,
            uid: self.uid ^ uid_key,
            input_uid: None,
            orig: self.orig,
            resp: self.resp,
            proto: Proto::from_number(self.proto),
            duration: self.last_time.since(self.first_ts),
            orig_bytes,
            resp_bytes,
            conn_state,
            missed_bytes: missed,
            history: self.history,
            orig_stats: self.stats[0],
            resp_stats: self.stats[1],
            syn_retries: u32::from(self.syn_retries),
            rtt_syn_synack: self.rtt_syn_synack,
            rtt_synack_ack: self.rtt_synack_ack,
            rst_by: self.rst_by.map(|(s, t)| (s, Some(t))),
            rst_ifaces: self.rst_ifaces,
            ignored_rsts: u32::from(self.ignored_rsts),
            sim_open: self.sim_open,
            via: nat.public(self.via),
            icmp: self.icmp,
            icmp_count: u32::from(self.icmp_count),
            end,
            idle: self.idle_gap(end),
            look: self.look.as_ref().and_then(|l| l.facts()).map(Box::new),
        }
    }
}

/// The connection table: the flows in a slab (`slots`, reused through `free`), found through
/// a hash index of their keys. The slab never grows past `max_flows`; when it is full, a
/// clock hand walks it to pick the connection to evict, so eviction costs a bounded scan
/// whatever the table holds (a SYN flood stays linear).
pub struct FlowTable {
    cfg: FlowConfig,
    index: Index,
    slots: Vec<Option<Flow>>,
    /// Per slot, when the flow expires and what eviction compares (see [`eviction_rank`]),
    /// kept apart so that the periodic sweep and choosing a victim read a few dense cache
    /// lines instead of the flows themselves.
    meta: Vec<Meta>,
    /// Empty slots, reused last-freed first.
    free: Vec<u32>,
    /// Where the next eviction scan starts.
    hand: usize,
    /// The last packet's connection and its slot: the next packet is often of the same
    /// connection (a burst of segments), found without hashing its key. Forgotten when that
    /// slot is freed.
    last: Option<(FlowKey, u32)>,
    next_uid: u64,
    /// The packet being observed is an exact duplicate ([`FlowTable::observe_duplicate`]).
    duplicate: bool,
    now: Timestamp,
    /// When the table last looked for expired connections (`i64::MIN`: never). The next
    /// sweep is [`SWEEP_EVERY`] after it, compared as an elapsed time so that it never
    /// saturates: a clock at `i64::MAX` sweeps once, not at every packet.
    last_sweep: Timestamp,
    stats: FlowStats,
    /// The site's NAT addresses, for the `via` of joined connections.
    nat: nat::NatMap,
}

/// What eviction compares, lowest evicted first: attempts nobody answered before
/// connections with an answer, then the longest quiet.
fn eviction_rank(f: &Flow) -> u64 {
    let answered = match &f.kind {
        Kind::Tcp(c) => c.resp().state != EpState::Inactive,
        _ => f.stats[1].pkts > 0,
    };
    // Nanoseconds since 1970 fit in 63 bits until the year 2262; earlier times count as 0.
    let quiet_since = u64::try_from(f.last_seen.0).unwrap_or(0) & !(1 << 63);
    u64::from(answered) << 63 | quiet_since
}

/// The rank of an empty slot (no flow's rank reaches it).
const FREE: u64 = u64::MAX;

/// What the table keeps of a slot's flow outside it (up to date after every packet).
#[derive(Clone, Copy, Debug)]
struct Meta {
    /// [`eviction_rank`], or [`FREE`].
    rank: u64,
    /// [`Flow::expires_at`] (never, for an empty slot).
    expires: Timestamp,
}

const EMPTY: Meta = Meta {
    rank: FREE,
    expires: Timestamp(i64::MAX),
};

impl Meta {
    /// What the table keeps of `f` for the sweep and for eviction.
    #[inline]
    fn of(f: &Flow, cfg: &FlowConfig) -> Meta {
        Meta {
            rank: eviction_rank(f),
            expires: f.expires_at(cfg),
        }
    }
}

/// Slots looked at to choose one connection to evict.
const EVICTION_SAMPLE: usize = 64;

/// Zeek's `tcp_attempt_delay`.
const ATTEMPT_DELAY: Duration = Duration::from_secs(5);

fn conn_orig_state(f: &Flow) -> EpState {
    match &f.kind {
        Kind::Tcp(c) => c.orig().state,
        _ => EpState::Inactive,
    }
}

/// How often (in capture time) the table looks for expired connections.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        // Grows past this (rarely: only when more connections are open at once than ever before).
        let reserve = cfg.max_flows.min(4096);
        FlowTable {
            cfg,
            index: Index::with_capacity_and_hasher(reserve, Default::default()),
            slots: Vec::with_capacity(reserve),
            meta: Vec::with_capacity(reserve),
            free: Vec::with_capacity(reserve),
            hand: 0,
            last: None,
            next_uid: 0,
            duplicate: false,
            now: Timestamp::ZERO,
            last_sweep: Timestamp(i64::MIN),
            stats: FlowStats::default(),
            nat: nat::NatMap::default(),
        }
    }

    /// The NAT pairs packets are translated by before they reach the table (the same map
    /// the pipeline applies), to name each joined connection's public address.
    pub fn set_nat(&mut self, nat: nat::NatMap) {
        self.nat = nat;
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Records what eviction needs to know of the flow in slot `i` after it changed.
    fn ranked(&mut self, i: usize) {
        if let (Some(Some(f)), Some(m)) = (self.slots.get(i), self.meta.get_mut(i)) {
            *m = Meta::of(f, &self.cfg);
        }
    }

    fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        let &i = self.index.get(key)?;
        self.slots.get_mut(i as usize)?.as_mut()
    }

    /// Takes the flow out of slot `i` (its key is derived from it) and frees the slot.
    fn take(&mut self, i: usize) -> Option<Flow> {
        let f = self.slots.get_mut(i)?.take()?;
        if let Some(m) = self.meta.get_mut(i) {
            *m = EMPTY;
        }
        let (key, _) = FlowKey::of(f.proto, f.orig, f.resp);
        self.index.remove(&key);
        if self.last.is_some_and(|(_, s)| s == i as u32) {
            self.last = None;
        }
        self.free.push(i as u32);
        Some(f)
    }

    fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        let &i = self.index.get(key)?;
        self.take(i as usize)
    }

    /// Stores a new flow (the caller made room) and returns its slot: reuses a free slot,
    /// else appends one, growing the slab at most to `max_flows`.
    fn insert(&mut self, key: FlowKey, flow: Flow) -> usize {
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                if self.slots.len() == self.slots.capacity() {
                    let len = self.slots.len();
                    let more = len
                        .max(4096)
                        .min(self.cfg.max_flows.saturating_sub(len))
                        .max(1);
                    self.slots.reserve_exact(more);
                    self.meta.reserve_exact(more);
                    // The free list never holds more than the slab: no growth on the way.
                    self.free
                        .reserve_exact(self.slots.capacity().saturating_sub(self.free.len()));
                }
                self.slots.push(None);
                self.meta.push(EMPTY);
                self.slots.len() - 1
            }
        };
        self.index.insert(key, i as u32);
        self.slots[i] = Some(flow);
        i
    }

    /// An exact duplicate of the packet just observed ([`dedup::Seen::Exact`]): counted as
    /// Zeek counts it (packets, bytes, history), but no SYN retransmission of exflow's.
    pub fn observe_duplicate(&mut self, ts: Timestamp, pkt: &Packet, sink: &mut impl Sink) {
        self.duplicate = true;
        self.observe(ts, pkt, sink);
        self.duplicate = false;
    }

    /// Updates the table with one packet seen at `ts`.
    pub fn observe(&mut self, ts: Timestamp, pkt: &Packet, sink: &mut impl Sink) {
        self.observe_with(ts, pkt, &[], sink);
    }

    /// [`FlowTable::observe`] with the packet's captured TCP payload (or its first bytes, as
    /// many as [`payload::Gate`] let through): read by the connection's payload look.
    #[inline]
    pub fn observe_with(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        payload: &[u8],
        sink: &mut impl Sink,
    ) {
        if ts > self.now {
            self.now = ts;
        }
        if self.now.since(self.last_sweep) >= SWEEP_EVERY {
            self.expire(self.now, sink);
            self.last_sweep = self.now;
        }
        match pkt.transport {
            Transport::Tcp(seg) => {
                let src = Endpoint::new(pkt.src, seg.sport);
                let dst = Endpoint::new(pkt.dst, seg.dport);
                self.tcp(ts, pkt, src, dst, payload, sink);
            }
            Transport::Udp(d) => {
                let src = Endpoint::new(pkt.src, d.sport);
                let dst = Endpoint::new(pkt.dst, d.dport);
                self.udp(ts, pkt, src, dst, d.payload_len, sink);
            }
            Transport::Icmp(m) => self.icmp(ts, pkt, &m, sink),
            Transport::Other { .. } => {
                self.stats.other_proto_pkts += 1;
            }
        }
    }

    /// Finds the packet's connection and hands it to `update` with whether `src` is the
    /// originator: one hash lookup for a packet of a live connection (the hot path). A
    /// connection that expired, or that `reuse` says the packet replaces, is ended first; a
    /// missing one is created (originator chosen by `orig_is_src`).
    #[allow(clippy::too_many_arguments)]
    fn lookup(
        &mut self,
        ts: Timestamp,
        proto: u8,
        src: Endpoint,
        dst: Endpoint,
        reuse: impl Fn(&Flow) -> bool,
        orig_is_src: impl Fn() -> bool,
        sink: &mut impl Sink,
        update: impl FnOnce(&mut Flow, bool),
    ) {
        let (key, _) = FlowKey::of(proto, src, dst);
        let mut end = None;
        let found = match self.last {
            Some((k, i)) if k == key => Some(i as usize),
            _ => {
                let found = self.index.get(&key).map(|&i| i as usize);
                if let Some(i) = found {
                    self.last = Some((key, i as u32));
                }
                found
            }
        };
        let meta = found.and_then(|i| self.meta.get_mut(i));
        let slot = found.and_then(|i| self.slots.get_mut(i));
        if let (Some(m), Some(Some(f))) = (meta, slot) {
            if ts >= m.expires {
                end = Some(if f.delete_at.is_some() {
                    EndReason::Closed
                } else {
                    EndReason::Idle
                });
            } else if reuse(f) {
                end = Some(EndReason::Reused);
            } else {
                let is_orig = f.orig == src;
                update(f, is_orig);
                // `ranked`, with the flow and its meta already in hand.
                *m = Meta::of(f, &self.cfg);
                return;
            }
        }
        if let Some(reason) = end {
            if let Some(old) = self.remove(&key) {
                sink.conn(&old.record(reason, &self.nat, self.cfg.uid_key));
            }
        }
        if self.index.len() >= self.cfg.max_flows {
            self.make_room(sink);
        }
        let o = orig_is_src();
        let (orig, resp) = if o { (src, dst) } else { (dst, src) };
        let uid = self.next_uid;
        self.next_uid += 1;
        self.stats.connections += 1;
        let mut flow = Flow::new(orig, resp, proto, uid, ts);
        if !o && proto != 1 && proto != 58 {
            // Zeek flips the roles of a new connection through `FlipRoles`, which marks
            // the history with '^' (e.g. a lone SYN-ACK from port 80 logs as "^h").
            flow.history.push(b'^');
        }
        let i = self.insert(key, flow);
        self.last = Some((key, i as u32));
        if let Some(Some(f)) = self.slots.get_mut(i) {
            update(f, o);
        }
        self.ranked(i);
        self.stats.peak_flows = self.stats.peak_flows.max(self.index.len());
    }

    fn tcp(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        src: Endpoint,
        dst: Endpoint,
        payload: &[u8],
        sink: &mut impl Sink,
    ) {
        let Transport::Tcp(seg) = pkt.transport else {
            return;
        };
        let flags = seg.flags;
        let close_delay = self.cfg.tcp_close_delay;
        let duplicate = self.duplicate;
        // A simultaneous open: the responder's own SYN crossing the originator's pending one.
        // Zeek takes it for a reuse and starts a new connection (so does the table); both
        // halves are marked for exflow's verdicts. One more lookup, for pure SYNs only.
        let mut crossing = false;
        if flags.pure_syn() {
            let (key, _) = FlowKey::of(6, src, dst);
            if let Some(f) = self.get_mut(&key) {
                if let Kind::Tcp(c) = &f.kind {
                    if f.resp == src
                        && c.orig().state == EpState::SynSent
                        && c.resp().state == EpState::Inactive
                        && c.is_reuse(flags, seg.seq)
                    {
                        f.sim_open = SimOpen::Superseded;
                        crossing = true;
                    }
                }
            }
        }
        self.lookup(
            ts,
            6,
            src,
            dst,
            |f| match &f.kind {
                Kind::Tcp(c) => c.is_reuse(flags, seg.seq),
                _ => false,
            },
            || {
                // Zeek's TCPAnalyzer::WantConnection: a pure SYN's sender is the originator;
                // otherwise guess the server by its port.
                if flags.pure_syn() {
                    return true;
                }
                if zeek_ports::likely_tcp_server_port(src.port()) {
                    if zeek_ports::likely_tcp_server_port(dst.port()) {
                        flags.syn() || src.port() >= dst.port()
                    } else {
                        false
                    }
                } else {
                    true
                }
            },
            sink,
            |f, is_orig| {
                if crossing && f.sim_open == SimOpen::No {
                    f.sim_open = SimOpen::Crossing;
                }
                tcp_update(f, is_orig, ts, pkt, &seg, close_delay, duplicate);
                if !payload.is_empty() {
                    look(f, src, &seg, payload);
                }
            },
        );
    }

    fn udp(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        src: Endpoint,
        dst: Endpoint,
        payload_len: u32,
        sink: &mut impl Sink,
    ) {
        self.lookup(
            ts,
            17,
            src,
            dst,
            |_| false,
            // Zeek's UDP rule: flip if the source is a likely server port and the
            // destination is not.
            || {
                !zeek_ports::likely_udp_server_port(src.port())
                    || zeek_ports::likely_udp_server_port(dst.port())
            },
            sink,
            |f, is_orig| {
                let d = if is_orig { 0 } else { 1 };
                if payload_len > 0 {
                    f.history.check(Mark::Data, b'D', is_orig);
                }
                count(&mut f.stats[d], pkt, payload_len);
                f.via = f.via.max(pkt.nat);
                f.last_time = ts;
                f.last_seen = ts;
            },
        );
    }

    fn icmp(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        m: &crate::decode::IcmpMessage,
        sink: &mut impl Sink,
    ) {
        // Attach an error to the connection whose packet it quotes.
        if m.is_error() {
            if let Some(q) = m.quote {
                let qsrc = Endpoint::new(q.src, q.sport);
                let qdst = Endpoint::new(q.dst, q.dport);
                let (qkey, _) = FlowKey::of(q.proto, qsrc, qdst);
                if let Some(f) = self.get_mut(&qkey) {
                    let e = IcmpError {
                        by_address: false,
                        ts,
                        from: pkt.src,
                        v6: m.v6,
                        icmp_type: m.icmp_type,
                        code: m.code,
                        ttl: pkt.ttl,
                    };
                    if let Some(slot) = f.icmp.iter_mut().find(|s| s.is_none()) {
                        *slot = Some(e);
                    }
                    f.icmp_count = f.icmp_count.saturating_add(1);
                    self.stats.icmp_attached += 1;
                } else {
                    self.stats.icmp_unmatched += 1;
                }
            } else {
                self.stats.icmp_unmatched += 1;
            }
        }
        // The ICMP message is also a "connection" of its own, keyed as Zeek keys it:
        // orig_p = type, resp_p = the counterpart type (echo) or the code (errors).
        let counterpart = icmp_counterpart(m.v6, m.icmp_type).unwrap_or(m.code as u16);
        let src = Endpoint::new(pkt.src, m.icmp_type as u16);
        let dst = Endpoint::new(pkt.dst, counterpart);
        let proto = if m.v6 { 58 } else { 1 };
        let request = icmp_is_request(m.v6, m.icmp_type);
        self.lookup(
            ts,
            proto,
            src,
            dst,
            |_| false,
            || request || !is_reply(m),
            sink,
            |f, is_orig| {
                let d = if is_orig { 0 } else { 1 };
                count(&mut f.stats[d], pkt, m.payload_len);
                f.last_time = ts;
                f.last_seen = ts;
            },
        );
    }

    /// A copy of a packet already counted ([`crate::flow::dedup`]), seen on another
    /// interface: adds that interface to what its connection's direction (and, for a copy of
    /// the connection's first RST, that RST) was seen on. Counts nothing else and creates no
    /// connection (the hot path of a multi-interface capture: one hash lookup).
    pub fn observe_copy(&mut self, ts: Timestamp, pkt: &Packet) {
        let (proto, src, dst, rst) = match pkt.transport {
            Transport::Tcp(seg) => (
                6,
                Endpoint::new(pkt.src, seg.sport),
                Endpoint::new(pkt.dst, seg.dport),
                seg.flags.rst(),
            ),
            Transport::Udp(d) => (
                17,
                Endpoint::new(pkt.src, d.sport),
                Endpoint::new(pkt.dst, d.dport),
                false,
            ),
            Transport::Icmp(_) | Transport::Other { .. } => return,
        };
        let (key, _) = FlowKey::of(proto, src, dst);
        let Some(f) = self.get_mut(&key) else {
            return;
        };
        let is_orig = f.orig == src;
        f.via = f.via.max(pkt.nat);
        let bit = iface_bit(pkt.iface);
        f.stats[usize::from(!is_orig)].ifaces |= bit;
        if let Some((side, _)) = f.rst_by {
            if rst
                && (side == Side::Orig) == is_orig
                && micros_after(f.first_ts, ts).abs_diff(f.rst_at_us)
                    <= (dedup::WINDOW.0 / 1000) as u32
            {
                f.rst_ifaces |= bit;
            }
        }
    }

    /// Ends every connection whose timeout passed by `now`.
    pub fn expire(&mut self, now: Timestamp, sink: &mut impl Sink) {
        for i in 0..self.meta.len() {
            if now < self.meta[i].expires {
                continue;
            }
            if let Some(f) = self.take(i) {
                let reason = if f.delete_at.is_some() {
                    EndReason::Closed
                } else {
                    EndReason::Idle
                };
                sink.conn(&f.record(reason, &self.nat, self.cfg.uid_key));
            }
        }
    }

    /// Frees one slot when the table is full: the connection that has been quiet longest
    /// among the next [`EVICTION_SAMPLE`] the clock hand passes, preferring attempts nobody
    /// answered. No pass over the whole table here: the periodic sweep already ended whatever
    /// expired, and a pass per new connection would make a flood quadratic.
    fn make_room(&mut self, sink: &mut impl Sink) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        let mut victim: Option<(usize, u64)> = None;
        let mut seen = 0;
        let mut pos = self.hand % n;
        for _ in 0..n {
            let i = pos;
            pos = if pos + 1 == n { 0 } else { pos + 1 };
            let r = self.meta[i].rank;
            if r == FREE {
                continue;
            }
            if victim.is_none_or(|(_, v)| r < v) {
                victim = Some((i, r));
            }
            seen += 1;
            if seen == EVICTION_SAMPLE {
                break;
            }
        }
        self.hand = pos;
        if let Some((i, _)) = victim {
            if let Some(f) = self.take(i) {
                self.stats.evicted += 1;
                sink.conn(&f.record(EndReason::Evicted, &self.nat, self.cfg.uid_key));
            }
        }
    }

    /// Hands every open connection to `sink` as it stands, without ending it (live reports).
    pub fn snapshot(&self, sink: &mut impl Sink) {
        for f in self.slots.iter().flatten() {
            sink.conn(&f.record(EndReason::Open, &self.nat, self.cfg.uid_key));
        }
    }

    /// Ends every remaining connection (end of capture), oldest first.
    pub fn finish(&mut self, sink: &mut impl Sink) {
        let mut rest: Vec<(Timestamp, u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (f.first_ts, f.uid, i)))
            .collect();
        rest.sort_unstable();
        for (_, _, i) in rest {
            let Some(f) = self.slots[i].take() else {
                continue;
            };
            let reason = if f.delete_at.is_some_and(|t| self.now >= t) {
                EndReason::Closed
            } else {
                EndReason::EndOfCapture
            };
            sink.conn(&f.record(reason, &self.nat, self.cfg.uid_key));
        }
        self.index.clear();
        self.last = None;
        self.free.clear();
        self.slots.clear();
        self.meta.clear();
    }
}

/// One TCP segment of a connection: Zeek's state machine plus exflow's own facts.
/// Feeds a segment's payload to its connection's look (see [`payload`]): allocated at the
/// first byte of either direction's stream (offset 0) of a connection whose start was seen,
/// and dropped at once when those bytes are no protocol looked into; so a connection
/// allocates at most once per direction (again only for a retransmitted first segment of a
/// connection whose look was dropped), never per packet, and carries no flag for it.
#[inline(never)]
fn look(f: &mut Flow, src: Endpoint, seg: &crate::decode::TcpSegment, data: &[u8]) {
    let Kind::Tcp(c) = &f.kind else {
        return;
    };
    let d = usize::from(f.orig != src);
    let ep = if d == 0 { c.orig() } else { c.resp() };
    let off = seg.seq.wrapping_sub(ep.start_seq()).wrapping_sub(1);
    let complete = data.len() >= seg.payload_len as usize
        || off.saturating_add(data.len() as u32) >= payload::BUDGET;
    let look = match &mut f.look {
        Some(l) if l.finished() => return,
        Some(l) => l,
        None => {
            let h = &f.history;
            let syn_seen = [b'S', b's', b'H', b'h'].iter().any(|&c| h.contains(c));
            if !syn_seen || off != 0 {
                return;
            }
            f.look.insert(Box::default())
        }
    };
    look.feed(d, off, data, complete);
    if look.finished() && look.facts().is_none() {
        f.look = None;
    }
}

fn tcp_update(
    f: &mut Flow,
    is_orig: bool,
    ts: Timestamp,
    pkt: &Packet,
    seg: &crate::decode::TcpSegment,
    close_delay: Duration,
    duplicate: bool,
) {
    let flags = seg.flags;
    let Kind::Tcp(conn) = &mut f.kind else {
        return;
    };
    let was = (conn.orig().state, conn.resp().state);
    // Zeek moves LastTime before the state machine runs, unless both sides had closed.
    let both_closed_before = conn.both_closed();
    // A quiet gap after either side's FIN is a half-closed connection's, not an idle one's.
    let closed_before = conn.orig().did_close || conn.resp().did_close;
    // Judged before the state machine moves the sender's sequence numbers.
    let rst_credible = !flags.rst() || conn.rst_in_window(is_orig, seg.seq);
    let out = conn.process(&mut f.history, is_orig, seg, !pkt.truncated);
    let mut is_orig = is_orig;
    if out.flipped {
        f.flip_endpoints();
        is_orig = !is_orig;
    }
    if is_orig && !flags.pure_syn() {
        f.orig_beyond_syn = true;
    }
    if is_orig
        && f.attempt_deadline == NO_DEADLINE
        && was.0 == EpState::Inactive
        && conn_orig_state(f) == EpState::SynSent
    {
        f.attempt_deadline = ts.plus(ATTEMPT_DELAY);
    }
    // exflow's own handshake facts.
    if flags.pure_syn() && is_orig && !duplicate {
        if f.last_syn_ts.is_some() && f.synack_ts == NO_TIME {
            f.syn_retries = f.syn_retries.saturating_add(1);
        }
        f.last_syn_ts = Some(ts);
    }
    if flags.syn() && flags.ack() && !is_orig && f.synack_ts == NO_TIME {
        f.synack_ts = ts;
        if let Some(s) = f.last_syn_ts {
            f.rtt_syn_synack = Some(ts.since(s));
        }
    }
    if flags.ack() && !flags.syn() && is_orig && f.rtt_synack_ack.is_none() {
        if let Some(s) = Some(f.synack_ts).filter(|&t| t != NO_TIME) {
            f.rtt_synack_ack = Some(ts.since(s));
        }
    }
    // exflow's own reading of RSTs (Zeek's state machine above took them all): a RST outside
    // its receiver's window is a blind guess the receiver ignores (RFC 5961), and one whose
    // receiver goes on sending data or a FIN did not end the connection (ignored, or never
    // reached it). Either is counted apart and is not the connection's RST. Data from the
    // RST's claimed sender after it says nothing: a firewall's forged RST leaves the real
    // sender's late segments coming.
    let side = if is_orig { Side::Orig } else { Side::Resp };
    if flags.rst() && !rst_credible {
        f.ignored_rsts = f.ignored_rsts.saturating_add(1);
    } else if flags.rst() && f.rst_by.is_none() {
        f.rst_by = Some((side, pkt.ttl));
        f.rst_ifaces = iface_bit(pkt.iface);
        f.rst_at_us = micros_after(f.first_ts, ts);
    } else if !flags.rst()
        && (seg.payload_len > 0 || flags.fin())
        && f.rst_by.is_some_and(|(s, _)| s != side)
    {
        f.rst_by = None;
        f.rst_ifaces = 0;
        f.rst_at_us = 0;
        f.ignored_rsts = f.ignored_rsts.saturating_add(1);
    }
    if !duplicate {
        idle_update(f, is_orig, ts, flags.rst(), pkt, closed_before);
    }
    let d = if is_orig { 0 } else { 1 };
    count(&mut f.stats[d], pkt, seg.payload_len);
    f.via = f.via.max(pkt.nat);
    if !both_closed_before {
        f.last_time = ts;
    }
    f.last_seen = ts;
    if out.close_complete {
        let at = f.last_time.plus(close_delay);
        f.delete_at = Some(f.delete_at.map_or(at, |d| d.min(at)));
    }
}

/// [`Flow::idle`]: no gap measured yet; the gap's breaker (originator, responder)
/// waits for a reply; answered; reset by a device in between (a TTL not its claimed
/// sender's); reset by the endpoint itself.
const IDLE_NONE: u32 = 0;
const IDLE_PENDING_ORIG: u32 = 1;
const IDLE_PENDING_RESP: u32 = 2;
const IDLE_ANSWERED: u32 = 3;
const IDLE_RESET_BETWEEN: u32 = 4;
const IDLE_RESET_PEER: u32 = 5;
/// The gap's bits in [`Flow::idle`].
const IDLE_MS: u32 = (1 << 27) - 1;

/// What came after the gap ([`Flow::idle`]'s bits 27 to 29).
#[inline]
fn idle_state(idle: u32) -> u32 {
    idle >> 27 & 7
}

/// Packets the breaker of a gap sends with no reply before they count as retransmissions
/// (the first one and at least two more; the count saturates here).
const IDLE_RETRANSMITTED: u32 = 3;

/// The idle-gap reading of one packet of an established TCP connection, before
/// `last_seen` moves: a subtraction and a compare. A gap of at least
/// [`record::IDLE_MIN_MS`] longer than the longest so far
/// becomes the connection's, and waits for the other side: a non-RST packet that
/// acknowledges what the breaker sent answers it, a RST resets it (a device in between when
/// it was seen on another interface than its claimed sender's packets entered by, in a
/// capture on several interfaces that saw them cross, else when its TTL is not that side's
/// usual one). While it waits, the breaker's own packets (retransmissions) only count, so a
/// retransmission backoff never takes the place of the quiet gap that came before it; a
/// packet of the other side that does not acknowledge the breaker's data (it never reached
/// that side: a firewall's capture sees it enter and be dropped) answers nothing. No gap
/// starts once either side sent a FIN (`closed`): a half-closed connection's silence, and a
/// FIN the gone peer never answers, say nothing of a device's timeout.
#[inline]
fn idle_update(f: &mut Flow, is_orig: bool, ts: Timestamp, rst: bool, pkt: &Packet, closed: bool) {
    let d = usize::from(!is_orig);
    let (ttl, iface) = (pkt.ttl, pkt.iface);
    let reset = |f: &Flow| {
        let s = &f.stats[d];
        let between = if s.ifaces.count_ones() >= 2 {
            iface != s.first_iface
        } else {
            s.first_ttl.is_some_and(|t| t != ttl)
        };
        if between {
            IDLE_RESET_BETWEEN
        } else {
            IDLE_RESET_PEER
        }
    };
    let from = if is_orig {
        IDLE_PENDING_ORIG
    } else {
        IDLE_PENDING_RESP
    };
    let ms = f.idle & IDLE_MS;
    match idle_state(f.idle) {
        a if a == from => {
            if f.idle >> 30 < IDLE_RETRANSMITTED {
                f.idle += 1 << 30;
            }
            return;
        }
        b @ (IDLE_PENDING_ORIG | IDLE_PENDING_RESP) => {
            let after = if rst {
                reset(f)
            } else {
                let acked = match &f.kind {
                    Kind::Tcp(c) => c.ep[usize::from(b == IDLE_PENDING_RESP)].all_acked(),
                    _ => true,
                };
                if !acked {
                    return;
                }
                IDLE_ANSWERED
            };
            f.idle = ms | after << 27;
            return;
        }
        _ => {}
    }
    if closed || f.synack_ts == NO_TIME || f.stats[0].pkts == 0 || f.stats[1].pkts == 0 {
        return;
    }
    let gap_ms = u32::try_from(ts.0.saturating_sub(f.last_seen.0).max(0) / 1_000_000)
        .unwrap_or(u32::MAX)
        .min(IDLE_MS);
    if gap_ms >= record::IDLE_MIN_MS && gap_ms > ms {
        f.idle = gap_ms
            | if rst {
                reset(f) << 27
            } else {
                from << 27 | 1 << 30
            };
    }
}

/// Microseconds from `start` to `t`, saturating (0 before it, `u32::MAX` past 71 minutes).
fn micros_after(start: Timestamp, t: Timestamp) -> u32 {
    u32::try_from(t.0.saturating_sub(start.0).max(0) / 1000).unwrap_or(u32::MAX)
}

fn count(s: &mut DirStats, pkt: &Packet, payload: u32) {
    s.pkts = s.pkts.saturating_add(1);
    s.ip_bytes = s.ip_bytes.saturating_add(pkt.ip_len as u64);
    s.payload_bytes = s.payload_bytes.saturating_add(payload as u64);
    if s.first_ttl.is_none() {
        s.first_ttl = Some(pkt.ttl);
        s.first_iface = pkt.iface;
    }
    s.ifaces |= iface_bit(pkt.iface);
}

/// The type that answers an informational ICMP type (echo, timestamp, ...).
fn icmp_counterpart(v6: bool, t: u8) -> Option<u16> {
    let pairs: &[(u8, u8)] = if v6 {
        &[(128, 129), (130, 131), (133, 134), (135, 136), (139, 140)]
    } else {
        &[(8, 0), (13, 14), (15, 16), (17, 18), (10, 9)]
    };
    pairs.iter().find_map(|&(a, b)| {
        if a == t {
            Some(b as u16)
        } else if b == t {
            Some(a as u16)
        } else {
            None
        }
    })
}

fn icmp_is_request(v6: bool, t: u8) -> bool {
    if v6 {
        matches!(t, 128 | 130 | 133 | 135 | 139)
    } else {
        matches!(t, 8 | 13 | 15 | 17 | 10)
    }
}

fn is_reply(m: &crate::decode::IcmpMessage) -> bool {
    icmp_counterpart(m.v6, m.icmp_type).is_some() && !icmp_is_request(m.v6, m.icmp_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{IcmpMessage, IcmpQuote, TcpFlags};
    use std::net::{IpAddr, Ipv4Addr};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;
    const FA: u8 = TcpFlags::FIN | TcpFlags::ACK;

    fn secs(s: i64) -> Timestamp {
        Timestamp(s * 1_000_000_000)
    }

    fn run(cfg: FlowConfig, pkts: &[(i64, Packet)]) -> (Vec<ConnRecord>, FlowStats) {
        let mut t = FlowTable::new(cfg);
        let mut out = vec![];
        let mut sink = |r: &ConnRecord| out.push(r.clone());
        for (ts, p) in pkts {
            t.observe(secs(*ts), p, &mut sink);
        }
        t.finish(&mut sink);
        let st = t.stats();
        (out, st)
    }

    /// A handshake, then silence for `gap` seconds, then a close.
    fn idle_connection(gap: i64) -> Vec<(i64, Packet)> {
        let (c, s) = (ip(1), ip(10));
        vec![
            (0, Packet::tcp(c, 40000, s, 443, S, 100, 0, 0)),
            (0, Packet::tcp(s, 443, c, 40000, SA, 500, 101, 0)),
            (0, Packet::tcp(c, 40000, s, 443, A, 101, 501, 0)),
            (gap, Packet::tcp(c, 40000, s, 443, FA, 101, 501, 0)),
            (gap, Packet::tcp(s, 443, c, 40000, FA, 501, 102, 0)),
            (gap, Packet::tcp(c, 40000, s, 443, A, 102, 502, 0)),
        ]
    }

    #[test]
    fn a_connection_idle_for_30_minutes_stays_one_connection() {
        let (recs, _) = run(FlowConfig::default(), &idle_connection(1800));
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].conn_state, ConnState::SF);
        assert_eq!(recs[0].history.as_str(), "ShAFf");
    }

    #[test]
    fn zeeks_5_minute_timeout_splits_it() {
        let cfg = FlowConfig {
            tcp_idle: Duration::from_secs(300),
            ..FlowConfig::default()
        };
        let (recs, _) = run(cfg, &idle_connection(1800));
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].conn_state, ConnState::S1);
        assert_eq!(recs[0].end, EndReason::Idle);
    }

    #[test]
    fn syn_retransmissions_of_one_attempt_stay_one_connection() {
        let (c, s) = (ip(1), ip(10));
        // Linux: 1, 2, 4, 8, 16, 32 s backoff.
        let pkts: Vec<_> = [0, 1, 3, 7, 15, 31, 63]
            .iter()
            .map(|&t| (t, Packet::tcp(c, 40001, s, 25, S, 7, 0, 0)))
            .collect();
        let (recs, _) = run(FlowConfig::default(), &pkts);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].conn_state, ConnState::S0);
        assert_eq!(recs[0].history.as_str(), "S");
        assert_eq!(recs[0].syn_retries, 6);
        assert_eq!(recs[0].orig_stats.pkts, 7);
    }

    #[test]
    fn the_cap_evicts_and_counts() {
        let cfg = FlowConfig {
            max_flows: 10,
            ..FlowConfig::default()
        };
        let pkts: Vec<_> = (0..100u16)
            .map(|i| (0, Packet::tcp(ip(1), 1000 + i, ip(10), 443, S, 7, 0, 0)))
            .collect();
        let mut t = FlowTable::new(cfg);
        let mut n = 0;
        let mut sink = |_: &ConnRecord| n += 1;
        for (ts, p) in &pkts {
            t.observe(secs(*ts), p, &mut sink);
            assert!(t.len() <= 10);
        }
        assert_eq!(t.stats().evicted, 90);
        t.finish(&mut sink);
        assert_eq!(n, 100);
    }

    #[test]
    fn a_slot_reused_by_another_connection_is_not_taken_for_the_last_one() {
        // One slot: B evicts A into A's slot, then A's next packet must not update B
        // (the table remembers the last packet's slot to skip hashing).
        let cfg = FlowConfig {
            max_flows: 1,
            ..FlowConfig::default()
        };
        let a = Packet::tcp(ip(1), 1000, ip(10), 443, S, 7, 0, 0);
        let b = Packet::tcp(ip(2), 2000, ip(10), 25, S, 9, 0, 0);
        let a_ack = Packet::tcp(ip(1), 1000, ip(10), 443, A, 8, 1, 0);
        let (recs, st) = run(cfg, &[(0, a), (0, a), (1, b), (2, a_ack)]);
        assert_eq!(st.evicted, 2);
        let rows: Vec<_> = recs
            .iter()
            .map(|r| (r.orig.port(), r.orig_stats.pkts, r.end))
            .collect();
        assert_eq!(
            rows,
            vec![
                (1000, 2, EndReason::Evicted),
                (2000, 1, EndReason::Evicted),
                (1000, 1, EndReason::EndOfCapture),
            ]
        );
    }

    #[test]
    fn icmp_admin_prohibited_attaches_to_the_syn_it_quotes() {
        let (c, s, fw) = (ip(1), ip(10), ip(254));
        let icmp = Packet {
            src: fw,
            dst: c,
            ip_len: 56,
            ttl: 63,
            ip_id: 0,
            transport: Transport::Icmp(IcmpMessage {
                v6: false,
                icmp_type: 3,
                code: 13,
                echo_id: None,
                payload_len: 28,
                quote: Some(IcmpQuote {
                    src: c,
                    dst: s,
                    proto: 6,
                    sport: 40002,
                    dport: 443,
                    tcp_seq: Some(7),
                }),
            }),
            truncated: false,
            iface: 0,
            interfaces: 1,
            nat: 0,
        };
        let (recs, st) = run(
            FlowConfig::default(),
            &[(0, Packet::tcp(c, 40002, s, 443, S, 7, 0, 0)), (0, icmp)],
        );
        assert_eq!(st.icmp_attached, 1);
        let conn = recs.iter().find(|r| r.proto == Proto::Tcp).unwrap();
        let e = conn.icmp[0].unwrap();
        assert_eq!((e.icmp_type, e.code, e.from), (3, 13, fw));
        assert_eq!(conn.conn_state, ConnState::S0);
    }

    #[test]
    fn rst_is_attributed_to_its_side_with_its_ttl() {
        let (c, s) = (ip(1), ip(10));
        let mut rst = Packet::tcp(s, 443, c, 40003, TcpFlags::RST | TcpFlags::ACK, 0, 8, 0);
        rst.ttl = 63;
        let (recs, _) = run(
            FlowConfig::default(),
            &[(0, Packet::tcp(c, 40003, s, 443, S, 7, 0, 0)), (0, rst)],
        );
        assert_eq!(recs[0].conn_state, ConnState::REJ);
        assert_eq!(recs[0].rst_by, Some((Side::Resp, Some(63))));
    }

    #[test]
    fn a_lone_syn_ack_from_a_server_port_is_flipped_like_zeek() {
        let (c, s) = (ip(1), ip(10));
        let (recs, _) = run(
            FlowConfig::default(),
            &[(0, Packet::tcp(s, 80, c, 6705, SA, 5, 9, 0))],
        );
        assert_eq!(recs[0].orig.ip(), c);
        assert_eq!(recs[0].history.as_str(), "^h");
        assert_eq!(recs[0].conn_state, ConnState::OTH);
        assert_eq!((recs[0].orig_stats.pkts, recs[0].resp_stats.pkts), (0, 1));
    }

    /// A handshake and a request, `gap` seconds of silence, then `after`.
    fn quiet_then(gap: i64, after: &[(i64, Packet)]) -> AfterGapSeen {
        let (c, s) = (ip(1), ip(10));
        let mut pkts = vec![
            (0, Packet::tcp(c, 40010, s, 443, S, 100, 0, 0)),
            (0, Packet::tcp(s, 443, c, 40010, SA, 500, 101, 0)),
            (0, Packet::tcp(c, 40010, s, 443, A, 101, 501, 10)),
            (0, Packet::tcp(s, 443, c, 40010, A, 501, 111, 0)),
        ];
        pkts.extend(after.iter().map(|(t, p)| (gap + t, *p)));
        let (recs, _) = run(FlowConfig::default(), &pkts);
        (recs[0].idle.max_ms / 1000, recs[0].idle.after)
    }
    type AfterGapSeen = (u32, AfterGap);

    #[test]
    fn the_longest_gap_and_what_came_after_it() {
        let (c, s) = (ip(1), ip(10));
        let data = Packet::tcp(c, 40010, s, 443, A | TcpFlags::PSH, 111, 501, 10);
        let answer = Packet::tcp(s, 443, c, 40010, A, 501, 121, 0);
        let mut forged = Packet::tcp(s, 443, c, 40010, TcpFlags::RST, 501, 0, 0);
        forged.ttl = 63;
        let own = Packet::tcp(s, 443, c, 40010, TcpFlags::RST, 501, 0, 0);
        assert_eq!(
            quiet_then(30, &[(0, data), (0, answer)]),
            (30, AfterGap::Answered)
        );
        assert_eq!(
            quiet_then(30, &[(0, data), (0, forged)]),
            (30, AfterGap::ResetInBetween)
        );
        assert_eq!(
            quiet_then(30, &[(0, data), (0, own)]),
            (30, AfterGap::ResetByPeer)
        );
        // Retransmissions with a growing backoff: the gap stays the quiet one before them.
        assert_eq!(
            quiet_then(30, &[(0, data), (1, data), (3, data), (40, data)]),
            (30, AfterGap::Unanswered)
        );
        // The server's answer after the gap never reached the client (a firewall's capture
        // saw it enter and be dropped): the client's later packets do not acknowledge it, so
        // they answer nothing; the server's retransmissions leave it unanswered.
        let late_answer = Packet::tcp(s, 443, c, 40010, A | TcpFlags::PSH, 501, 111, 20);
        let gives_up = Packet::tcp(c, 40010, s, 443, FA, 111, 501, 0);
        assert_eq!(
            quiet_then(
                30,
                &[
                    (0, late_answer),
                    (1, late_answer),
                    (3, late_answer),
                    (5, gives_up),
                    (7, late_answer)
                ]
            ),
            (30, AfterGap::Unanswered)
        );
        let acks_it = Packet::tcp(c, 40010, s, 443, A, 111, 521, 0);
        assert_eq!(
            quiet_then(30, &[(0, late_answer), (0, acks_it)]),
            (30, AfterGap::Answered)
        );
        // Under 5 s is no gap; after a FIN no gap starts.
        assert_eq!(quiet_then(4, &[(0, data), (0, answer)]).1, AfterGap::None);
        let fin = Packet::tcp(c, 40010, s, 443, FA, 111, 501, 0);
        let fin_ack = Packet::tcp(s, 443, c, 40010, A, 501, 112, 0);
        let late = Packet::tcp(s, 443, c, 40010, FA, 501, 112, 0);
        assert_eq!(
            quiet_then(
                1,
                &[
                    (0, fin),
                    (0, fin_ack),
                    (200, late),
                    (201, late),
                    (203, late)
                ]
            )
            .1,
            AfterGap::None
        );
    }

    #[test]
    fn a_new_syn_after_a_reset_is_a_new_connection() {
        let (c, s) = (ip(1), ip(10));
        let rst = Packet::tcp(s, 110, c, 26242, TcpFlags::RST | TcpFlags::ACK, 0, 8, 0);
        let syn = Packet::tcp(c, 26242, s, 110, S, 7, 0, 0);
        let (recs, st) = run(
            FlowConfig::default(),
            &[(0, syn), (0, rst), (1, syn), (1, rst)],
        );
        assert_eq!(st.connections, 2);
        assert!(recs
            .iter()
            .all(|r| r.conn_state == ConnState::REJ && r.history.as_str() == "Sr"));
    }
}

#[cfg(test)]
mod memory {
    use super::*;

    /// What one tracked connection costs in the table: its slab slot, its [`Meta`], its
    /// place in the free list, and its index bucket (key, slot number) with hashbrown's
    /// control byte, the index keeping at least 1/8 of its buckets free. Documented in the
    /// README and `--max-flows`; a change here is a reviewed change of those figures.
    #[test]
    fn a_tracked_connection_costs_a_bounded_number_of_bytes() {
        let bucket = std::mem::size_of::<(FlowKey, u32)>() + 1;
        let per_entry = std::mem::size_of::<Option<Flow>>()
            + std::mem::size_of::<Meta>()
            + std::mem::size_of::<u32>()
            + bucket * 8 / 7
            + 1;
        println!(
            "slot {} (Flow {}: TcpConn {}, History {}) + meta {} + free 4 + index {} x 8/7 = {per_entry} bytes",
            std::mem::size_of::<Option<Flow>>(),
            std::mem::size_of::<Flow>(),
            std::mem::size_of::<TcpConn>(),
            std::mem::size_of::<History>(),
            std::mem::size_of::<Meta>(),
            bucket,
        );
        assert!(per_entry <= 750, "{per_entry} bytes per connection");
    }
}
