//! Zeek's TCP connection state machine, per endpoint.
//!
//! Read first: Zeek's `src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc` (`Process`,
//! `init_endpoint`, `init_peer`, `update_history`, `update_last_seq`, the `Update*State`
//! functions, `IsReuse`), `src/analyzer/protocol/tcp/TCP_Endpoint.{h,cc}` (`Size`,
//! `CheckHistory`), `TCP_Reassembler.cc` (content gaps), and the digest in
//! `../shared/ZEEK-CONN.md`. Each function below names the Zeek function it follows. RFC 9293
//! for TCP itself.
//!
//! Sequence numbers are kept both as the raw 32-bit value and "unwrapped" relative to the
//! endpoint's initial sequence number (an `i64`), which replaces Zeek's wrap counters.

use super::history::{History, Mark, Scaled};
use crate::decode::{TcpFlags, TcpSegment};

/// Zeek's `EndpointState` (`TCP_Endpoint.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EpState {
    /// Nothing seen from this side.
    #[default]
    Inactive,
    /// SYN seen, no ACK.
    SynSent,
    /// SYN-ACK seen without an initial SYN.
    SynAckSent,
    /// Data seen without a SYN.
    Partial,
    Established,
    /// FIN seen.
    Closed,
    /// RST seen.
    Reset,
}

impl EpState {
    fn inactive_or_partial(self) -> bool {
        matches!(self, EpState::Inactive | EpState::Partial)
    }
}

/// How far past what the sender was seen to send a RST's sequence number may be and still be
/// taken as real (a receive window: 256 KiB, four times TCP's unscaled maximum). Past it a
/// RST is a blind guess its receiver ignores (RFC 5961 §3).
pub const RST_WINDOW: i64 = 1 << 18;

/// Zeek's "TOO_LARGE_SEQ_DELTA".
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// What the flow table keeps of one direction's segments to find content gaps: the next
/// byte expected in order and a few out-of-order blocks (a stand-in for Zeek's reassembler,
/// which keeps the bytes; we only need the ranges).
#[derive(Clone, Copy, Debug)]
pub struct Ranges {
    next: i64,
    blocks: [(i64, i64); 2],
    nblocks: u8,
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges {
            next: 1,
            blocks: [(0, 0); 2],
            nblocks: 0,
        }
    }
}

impl Ranges {
    fn absorb(&mut self) {
        let mut changed = true;
        while changed {
            changed = false;
            let mut i = 0;
            while i < self.nblocks as usize {
                let (s, e) = self.blocks[i];
                if s <= self.next {
                    self.next = self.next.max(e);
                    self.remove(i);
                    changed = true;
                } else {
                    i += 1;
                }
            }
        }
    }

    fn remove(&mut self, i: usize) {
        let n = self.nblocks as usize;
        self.blocks.copy_within(i + 1..n, i);
        self.nblocks -= 1;
    }

    /// Bytes `[seq, seq+len)` were seen.
    fn data(&mut self, seq: i64, len: i64) {
        let end = seq + len;
        if end <= self.next {
            return;
        }
        if seq <= self.next {
            self.next = end;
            self.absorb();
        } else if (self.nblocks as usize) < self.blocks.len() {
            self.blocks[self.nblocks as usize] = (seq, end);
            self.nblocks += 1;
        } else {
            // Out of room: widen the nearest block (we only lose precision on gap sizes).
            let b = &mut self.blocks[0];
            b.0 = b.0.min(seq);
            b.1 = b.1.max(end);
        }
    }

    /// The peer acknowledged everything below `upto`: returns how many bytes below it were
    /// never seen, and moves past them (Zeek's `TrimToSeq` / `Undelivered`).
    fn ack(&mut self, upto: i64) -> i64 {
        if upto <= self.next {
            return 0;
        }
        let mut covered = 0;
        for &(s, e) in &self.blocks[..self.nblocks as usize] {
            let s = s.max(self.next);
            let e = e.min(upto);
            if e > s {
                covered += e - s;
            }
        }
        let missing = (upto - self.next - covered).max(0);
        self.next = upto;
        let mut i = 0;
        while i < self.nblocks as usize {
            if self.blocks[i].1 <= self.next {
                self.remove(i);
            } else {
                i += 1;
            }
        }
        self.absorb();
        missing
    }
}

/// One direction of a TCP connection (Zeek's `TCP_Endpoint`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpEndpoint {
    pub state: EpState,
    pub prev_state: EpState,
    start_seq: u32,
    last_seq: u32,
    /// `last_seq` relative to `start_seq`, unwrapped.
    last_rel: i64,
    ack_seq: u32,
    ack_rel: i64,
    pub did_close: bool,
    pub fin_cnt: u32,
    pub rst_cnt: u32,
    fin_rel: i64,
    hist_last_syn: i64,
    hist_last_fin: i64,
    hist_last_rst: i64,
    rxmt: Scaled,
    win0: Scaled,
    gap: Scaled,
    ranges: Ranges,
    /// Sum of the content gaps Zeek would report (its `missed_bytes`).
    pub missed_bytes: u64,
}

impl TcpEndpoint {
    fn set_state(&mut self, s: EpState) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    fn init_seqs(&mut self, start: u32, ack: u32, last: u32) {
        self.start_seq = start;
        self.ack_seq = ack;
        self.ack_rel = seq_delta(ack, start) as i64;
        self.last_seq = last;
        self.last_rel = seq_delta(last, start) as i64;
    }

    fn update_last_seq_raw(&mut self, s: u32) {
        self.last_rel += seq_delta(s, self.last_seq) as i64;
        self.last_seq = s;
    }

    /// `seq` relative to this endpoint's start, unwrapped around `reference`
    /// (Zeek's `get_relative_seq`).
    fn relative(&self, seq: u32, reference: u32, reference_rel: i64) -> i64 {
        reference_rel + seq_delta(seq, reference) as i64
    }

    fn no_data_acked(&self) -> bool {
        self.ack_rel == 0 || self.ack_rel == 1
    }

    /// The peer acknowledged everything this endpoint sent so far (its highest ACK is at or
    /// past the end of this endpoint's highest segment).
    pub fn all_acked(&self) -> bool {
        seq_delta(self.ack_seq, self.last_seq) >= 0
    }

    /// The sequence number before the stream's first byte (the SYN's; one before the first
    /// segment seen when the SYN was not).
    pub fn start_seq(&self) -> u32 {
        self.start_seq
    }

    /// Payload bytes from sequence numbers (Zeek's `TCP_Endpoint::Size`).
    pub fn size(&self, peer_state: EpState) -> u64 {
        if self.prev_state == EpState::SynSent
            && self.state == EpState::Reset
            && peer_state == EpState::Inactive
            && !self.no_data_acked()
        {
            return 0;
        }
        // Don't count the SYN's sequence octet, nor the FIN's.
        let mut size = (self.last_rel.max(self.ack_rel).max(0) as u64).saturating_sub(1);
        if self.fin_cnt > 0 {
            size = size.saturating_sub(1);
        }
        size
    }
}

/// Connection-level TCP state: both endpoints, indexed 0 = originator, 1 = responder.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConn {
    pub ep: [TcpEndpoint; 2],
    /// Zeek's `is_partial`.
    is_partial: bool,
    /// Zeek's `first_packet_seen` bits (1 orig, 2 resp).
    first_packet_seen: u8,
}

/// What processing one segment did, for the flow table.
#[derive(Clone, Copy, Debug, Default)]
pub struct SegmentOutcome {
    /// The roles were flipped while processing (the sender's side changed).
    pub flipped: bool,
    /// The connection closed completely with this segment (Zeek's `close_complete`): it is
    /// removed after the close delay.
    pub close_complete: bool,
}

fn idx(is_orig: bool) -> (usize, usize) {
    if is_orig {
        (0, 1)
    } else {
        (1, 0)
    }
}

impl TcpConn {
    pub fn orig(&self) -> &TcpEndpoint {
        &self.ep[0]
    }
    pub fn resp(&self) -> &TcpEndpoint {
        &self.ep[1]
    }

    /// Zeek's `Connection::FlipRoles` as far as TCP state goes.
    pub fn flip(&mut self, history: &mut History) {
        self.ep.swap(0, 1);
        let f = self.first_packet_seen;
        self.first_packet_seen = ((f & 1) << 1) | ((f & 2) >> 1);
        self.is_partial = false;
        history.flip_seen();
    }

    /// True once either side closed (Zeek's `IsClosed`).
    pub fn is_closed(&self) -> bool {
        self.ep[0].did_close || self.ep[1].did_close
    }

    pub fn both_closed(&self) -> bool {
        self.ep[0].did_close && self.ep[1].did_close
    }

    /// Whether a RST from the originator (`is_orig`, else the responder) with sequence
    /// number `seq` lands where its receiver would act on it (RFC 5961 §3, RFC 9293 3.10.7.4):
    /// from what the receiver acknowledged of the sender up to what the sender was seen to
    /// send, plus [`RST_WINDOW`]. A blind RST (a guess at the sequence number) almost never
    /// does, and the real endpoint ignores it. True while the sender's sequence numbers are
    /// unknown (it sent nothing yet: a RST refusing a SYN). exflow's verdicts read this;
    /// Zeek's state machine (and so `conn_state` and `history`) does not.
    pub fn rst_in_window(&self, is_orig: bool, seq: u32) -> bool {
        let (e, _) = idx(is_orig);
        let ep = &self.ep[e];
        if ep.state == EpState::Inactive {
            return true;
        }
        let (mut lo, mut hi) = (ep.ack_seq, ep.last_seq);
        if seq_delta(hi, lo) < 0 {
            std::mem::swap(&mut lo, &mut hi);
        }
        let d = i64::from(seq_delta(seq, lo));
        (0..=i64::from(seq_delta(hi, lo)) + RST_WINDOW).contains(&d)
    }

    /// Zeek's `IsReuse`: does a SYN for this 5-tuple start a new connection?
    pub fn is_reuse(&self, flags: TcpFlags, seq: u32) -> bool {
        if !flags.syn() {
            return false;
        }
        let mut conn_orig = &self.ep[0];
        if flags.ack() {
            if self.ep[0].state != EpState::Inactive {
                return false;
            }
            conn_orig = &self.ep[1];
        }
        if !self.is_closed() {
            if seq == conn_orig.start_seq {
                return false;
            }
            if !flags.ack()
                && conn_orig.state == EpState::SynAckSent
                && self.ep[1].state == EpState::Inactive
                && seq == self.ep[1].start_seq
            {
                return false;
            }
        }
        true
    }

    fn set_partial_status(&mut self, flags: TcpFlags, is_orig: bool) {
        if is_orig {
            if self.first_packet_seen & 1 == 0 {
                self.is_partial = !flags.syn() || flags.ack();
            }
        } else if self.first_packet_seen & 2 == 0 && !self.is_partial {
            self.is_partial = !flags.syn();
        }
    }

    /// Processes one segment from the originator (`is_orig`) or responder: Zeek's
    /// `TCPSessionAdapter::Process`, minus what only matters to protocol analyzers.
    pub fn process(
        &mut self,
        history: &mut History,
        mut is_orig: bool,
        seg: &TcpSegment,
        payload_captured: bool,
    ) -> SegmentOutcome {
        let (flags, base_seq, ack_seq, window, len) =
            (seg.flags, seg.seq, seg.ack, seg.window, seg.payload_len);
        let mut out = SegmentOutcome::default();
        let len_i = len as i64;
        self.set_partial_status(flags, is_orig);

        let mut seg_len = len;
        if flags.syn() {
            seg_len = seg_len.wrapping_add(1);
        }
        if flags.fin() {
            seg_len = seg_len.wrapping_add(1);
        }
        if flags.rst() {
            seg_len = seg_len.wrapping_sub(len);
        }
        let seq_one_past = base_seq.wrapping_add(seg_len);

        // init_endpoint
        {
            let (e, _) = idx(is_orig);
            let ep = &mut self.ep[e];
            match ep.state {
                EpState::Inactive => {
                    if flags.syn() {
                        ep.init_seqs(base_seq, base_seq, seq_one_past);
                    } else {
                        let s = base_seq.wrapping_sub(1);
                        ep.init_seqs(s, s, base_seq);
                    }
                }
                EpState::SynSent | EpState::SynAckSent => {
                    if flags.syn() && base_seq != ep.start_seq {
                        ep.init_seqs(base_seq, base_seq, seq_one_past);
                    }
                }
                EpState::Established | EpState::Partial => {
                    if flags.syn() {
                        ep.init_seqs(base_seq, base_seq, seq_one_past);
                    }
                }
                EpState::Reset => {
                    if flags.syn() && ep.prev_state == EpState::Inactive {
                        ep.init_seqs(base_seq, base_seq, seq_one_past);
                    }
                }
                EpState::Closed => {}
            }
        }

        let (e, _) = idx(is_orig);
        let rel_seq = {
            let ep = &self.ep[e];
            ep.relative(base_seq, ep.last_seq, ep.last_rel)
        };
        let seq_underflow = rel_seq < 0;

        // update_history
        let bits = flags.syn() as u8 + flags.fin() as u8 + flags.rst() as u8;
        if bits > 1 {
            if flags.fin() && flags.rst() {
                history.check(Mark::FinRst, b'I', is_orig);
            } else {
                history.check(Mark::MultiFlag, b'Q', is_orig);
            }
        } else if bits == 1 {
            let ep = &mut self.ep[e];
            if flags.syn() {
                let code = if flags.ack() { b'H' } else { b'S' };
                if history.check(Mark::Syn, code, is_orig) && rel_seq != ep.hist_last_syn {
                    history.add(code, is_orig);
                }
                ep.hist_last_syn = rel_seq;
            }
            if flags.fin() {
                if history.check(Mark::Fin, b'F', is_orig) && rel_seq + len_i != ep.hist_last_fin {
                    history.add(b'F', is_orig);
                }
                ep.hist_last_fin = rel_seq + len_i;
            }
            if flags.rst() {
                if history.check(Mark::Rst, b'R', is_orig) && rel_seq != ep.hist_last_rst {
                    history.add(b'R', is_orig);
                }
                ep.hist_last_rst = rel_seq;
            }
        } else if len > 0 || flags.ack() {
            // A SYN-ACK followed by an ACK or data means the SYN-ACK's sender is the
            // responder: flip and rewrite "H" as "^h" (zeek/zeek#2191, TCP_Endpoint.cc).
            if history.is("H") {
                self.flip(history);
                history.set("^h");
                // The SYN-ACK answered a SYN we did not capture: its sender is an
                // established responder (Zeek logs such a connection S1, not OTH).
                if self.ep[1].state == EpState::SynAckSent {
                    self.ep[1].set_state(EpState::Established);
                }
                is_orig = !is_orig;
                out.flipped = true;
            }
            if len > 0 {
                history.check(Mark::Data, b'D', is_orig);
            } else {
                history.check(Mark::Ack, b'A', is_orig);
            }
        }
        let (e, p) = idx(is_orig);

        // update_window: zero windows.
        if window == 0
            && !flags.rst()
            && self.ep[p].state != EpState::Closed
            && self.ep[e].state != EpState::Reset
            && self.ep[e].win0.hit()
        {
            history.add(b'W', is_orig);
        }

        if flags.fin() {
            let ep = &mut self.ep[e];
            ep.fin_cnt = ep.fin_cnt.saturating_add(1);
            ep.fin_rel = rel_seq + seg_len as i64;
        }
        if flags.rst() {
            let ep = &mut self.ep[e];
            ep.rst_cnt = ep.rst_cnt.saturating_add(1);
        }

        let mut rel_ack = 0i64;
        if flags.ack() {
            let peer = &mut self.ep[p];
            if peer.state == EpState::Inactive {
                rel_ack = 1;
                let s = ack_seq.wrapping_sub(1);
                peer.init_seqs(s, s, s);
            } else {
                let r = peer.relative(ack_seq, peer.ack_seq, peer.ack_rel);
                if r < 0 {
                    rel_ack = 0;
                } else {
                    rel_ack = r;
                    if !flags.rst() {
                        // update_ack_seq
                        let d = seq_delta(ack_seq, peer.ack_seq);
                        if ack_seq == 0 && d > TOO_LARGE_SEQ_DELTA {
                        } else if d > 0 {
                            peer.ack_rel += d as i64;
                            peer.ack_seq = ack_seq;
                        }
                    }
                }
            }
        }

        // update_last_seq
        let delta_last = {
            let ep = &mut self.ep[e];
            let d = seq_delta(seq_one_past, ep.last_seq);
            if (flags.syn() || flags.rst())
                && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&d)
            {
            } else if flags.fin() && ep.last_seq == ep.start_seq.wrapping_add(1) {
                ep.update_last_seq_raw(seq_one_past);
            } else if ep.state == EpState::Reset {
            } else if d > 0 {
                ep.update_last_seq_raw(seq_one_past);
            } else if len > 0 && ep.rxmt.hit() {
                history.add(b'T', is_orig);
            }
            d
        };

        let do_close =
            self.update_state_machine(history, is_orig, flags, base_seq, len, delta_last, &mut out);
        let (e, p) = idx(is_orig);

        if flags.ack() {
            self.ack_received(history, p, rel_ack);
        }

        self.first_packet_seen |= if is_orig { 1 } else { 2 };

        // Zeek's reassembler only receives payload that was captured in full
        // (`TCP_Endpoint::DataSent`, "truncated_tcp_payload"): with a short snap length, the
        // peer's ACKs then reveal content gaps (G/g), exactly as Zeek logs them.
        if len > 0 && payload_captured && !flags.rst() && !seq_underflow {
            let rel_data_seq = if flags.syn() { rel_seq + 1 } else { rel_seq };
            self.ep[e].ranges.data(rel_data_seq, len_i);
        }

        if do_close {
            let ep_state = self.ep[e].state;
            if !self.ep[e].did_close {
                self.ep[e].did_close = true;
                let peer = &self.ep[p];
                out.close_complete =
                    ep_state == EpState::Reset || peer.did_close || peer.state == EpState::Inactive;
            }
        }
        out
    }

    /// The peer's ACK reached `rel_ack` of endpoint `d`'s data: a content gap if bytes below it
    /// were never seen (Zeek's `TCP_Reassembler::AckReceived` → `Undelivered` → `Gap`).
    fn ack_received(&mut self, history: &mut History, d: usize, rel_ack: i64) {
        let o = 1 - d;
        let mut upto = rel_ack;
        // Don't count the FIN's sequence octet as missing data.
        if self.ep[d].fin_cnt > 0 && upto >= self.ep[d].fin_rel {
            upto = self.ep[d].fin_rel - 1;
        }
        if upto <= 2 && self.is_partial {
            // Partial connection: the faked initial sequence numbers make the first ack look
            // like a one-byte gap; Zeek ignores it.
            let r = &mut self.ep[d].ranges;
            if upto > r.next {
                r.next = upto;
            }
            return;
        }
        let missing = self.ep[d].ranges.ack(upto);
        if missing > 0 {
            let report = established_or_cleanly_closing(&self.ep[d], &self.ep[o])
                && established_or_cleanly_closing(&self.ep[o], &self.ep[d]);
            if report {
                let ep = &mut self.ep[d];
                ep.missed_bytes = ep.missed_bytes.saturating_add(missing as u64);
                if ep.gap.hit() {
                    history.add(b'G', d == 0);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn update_state_machine(
        &mut self,
        history: &mut History,
        is_orig: bool,
        flags: TcpFlags,
        base_seq: u32,
        len: u32,
        _delta_last: i32,
        out: &mut SegmentOutcome,
    ) -> bool {
        let (e, p) = idx(is_orig);
        let mut do_close = false;
        match self.ep[e].state {
            EpState::Inactive => {
                // UpdateInactiveState
                if flags.syn() {
                    if is_orig {
                        let s = if flags.ack() {
                            EpState::SynAckSent
                        } else {
                            EpState::SynSent
                        };
                        self.ep[e].set_state(s);
                    } else {
                        if !flags.ack()
                            && self.ep[p].state == EpState::SynAckSent
                            && base_seq == self.ep[e].start_seq
                        {
                            // SYN/SYN-ACK reversal: flip and establish. After the flip the
                            // sender is the originator.
                            self.flip(history);
                            history.push(b'^');
                            out.flipped = true;
                            // Indices swapped: the sender is now at 0, the peer at 1.
                            self.is_partial = false;
                            self.ep[1].set_state(EpState::Established);
                            self.first_packet_seen |= 1;
                            self.ep[0].set_state(EpState::Established);
                            return false;
                        }
                        if self.ep[p].state == EpState::SynSent {
                            self.ep[p].set_state(EpState::Established);
                        }
                        self.ep[e].set_state(EpState::Established);
                    }
                }
                if flags.fin() {
                    self.ep[e].set_state(EpState::Closed);
                    do_close = true;
                }
                if flags.rst() {
                    self.ep[e].set_state(EpState::Reset);
                    do_close = true;
                }
                if self.ep[e].state == EpState::Inactive {
                    if !is_orig && len == 0 && self.ep[0].state == EpState::SynSent {
                        // An "eccentric" ACK of a SYN before the SYN-ACK: not partial.
                    } else if flags.ack() && self.ep[p].state == EpState::Established {
                        // Missed SYN after a SYN-ACK: establish.
                        self.ep[e].set_state(EpState::Established);
                        self.is_partial = false;
                        self.first_packet_seen |= if is_orig { 1 } else { 2 };
                    } else {
                        self.ep[e].set_state(EpState::Partial);
                    }
                }
            }
            EpState::SynSent | EpState::SynAckSent => {
                // UpdateSYN_SentState
                if flags.fin() {
                    self.ep[e].set_state(EpState::Closed);
                    do_close = true;
                }
                if flags.rst() {
                    self.ep[e].set_state(EpState::Reset);
                    do_close = true;
                }
            }
            EpState::Established | EpState::Partial => {
                // UpdateEstablishedState
                if flags.syn()
                    && self.ep[e].state == EpState::Partial
                    && self.ep[p].state == EpState::Inactive
                    && !flags.ack()
                {
                    self.ep[e].set_state(EpState::SynSent);
                }
                if flags.fin() && !flags.rst() {
                    self.ep[e].set_state(EpState::Closed);
                    if self.ep[p].state == EpState::Reset
                        && self.ep[p].prev_state == EpState::Closed
                    {
                        // The peer sent FIN then RST: that was a normal close.
                        self.ep[p].set_state(EpState::Closed);
                    }
                    do_close = true;
                }
                if flags.rst() {
                    self.ep[e].set_state(EpState::Reset);
                    do_close = true;
                }
            }
            EpState::Closed => {
                // UpdateClosedState: a RST after our FIN counts only if the peer has not
                // closed too.
                if flags.rst() && self.ep[p].state != EpState::Closed {
                    self.ep[e].set_state(EpState::Reset);
                    if !self.ep[e].did_close {
                        do_close = true;
                    }
                }
            }
            EpState::Reset => {}
        }
        do_close
    }
}

fn established_or_cleanly_closing(a: &TcpEndpoint, b: &TcpEndpoint) -> bool {
    a.state == EpState::Established
        || (a.state == EpState::Closed && b.state == EpState::Established)
}

/// Zeek's `conn_state` for TCP (`scripts/base/protocols/conn/main.zeek`, `function
/// conn_state`), evaluated in the same order.
pub fn conn_state(c: &TcpConn, history: &History) -> ConnState {
    let (o, r) = (c.orig(), c.resp());
    let o_inactive = o.state.inactive_or_partial();
    let r_inactive = r.state.inactive_or_partial();
    if r.state == EpState::Reset {
        if matches!(o.state, EpState::SynSent | EpState::SynAckSent)
            || (o.state == EpState::Reset && o.size(r.state) == 0 && r.size(o.state) == 0)
        {
            return ConnState::REJ;
        }
        return if o_inactive {
            ConnState::RSTRH
        } else {
            ConnState::RSTR
        };
    }
    if o.state == EpState::Reset {
        if r_inactive {
            return if history_is_syn_then_rst(history.as_str()) {
                ConnState::RSTOS0
            } else {
                ConnState::OTH
            };
        }
        return ConnState::RSTO;
    }
    if o.state == EpState::Closed && r.state == EpState::Closed {
        return ConnState::SF;
    }
    if o.state == EpState::Closed {
        return if r_inactive {
            ConnState::SH
        } else {
            ConnState::S2
        };
    }
    if r.state == EpState::Closed {
        return if o_inactive {
            ConnState::SHR
        } else {
            ConnState::S3
        };
    }
    if o.state == EpState::SynSent && r.state == EpState::Inactive {
        return ConnState::S0;
    }
    if o.state == EpState::Established && r.state == EpState::Established {
        return ConnState::S1;
    }
    ConnState::OTH
}

/// `/^\^?S[^HAFGIQ]*R.*/`: an originator SYN, then an originator RST with no originator
/// H/A/F/G/I/Q in between (zeek/zeek#1166).
fn history_is_syn_then_rst(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

/// Zeek's connection states (`conn_state` in conn.log).
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Connection established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected.
    REJ,
    /// Established, close attempt by originator seen (no reply from responder).
    S2,
    /// Established, close attempt by responder seen (no reply from originator).
    S3,
    /// Established, originator aborted (sent a RST).
    RSTO,
    /// Responder sent a RST.
    RSTR,
    /// Originator sent a SYN then a RST; no SYN-ACK seen.
    RSTOS0,
    /// Responder sent a SYN-ACK then a RST; no SYN from the (purported) originator.
    RSTRH,
    /// Originator sent a SYN then a FIN; no SYN-ACK.
    SH,
    /// Responder sent a SYN-ACK then a FIN; no SYN from the originator.
    SHR,
    /// No SYN seen, just midstream traffic.
    OTH,
}

impl ConnState {
    pub const ALL: [ConnState; 13] = [
        ConnState::S0,
        ConnState::S1,
        ConnState::SF,
        ConnState::REJ,
        ConnState::S2,
        ConnState::S3,
        ConnState::RSTO,
        ConnState::RSTR,
        ConnState::RSTOS0,
        ConnState::RSTRH,
        ConnState::SH,
        ConnState::SHR,
        ConnState::OTH,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const SYNACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const PSHACK: TcpFlags = TcpFlags(TcpFlags::ACK | TcpFlags::PSH);
    const FINACK: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST);
    const RSTACK: TcpFlags = TcpFlags(TcpFlags::RST | TcpFlags::ACK);

    struct T {
        c: TcpConn,
        h: History,
    }

    impl T {
        fn new() -> Self {
            T {
                c: TcpConn::default(),
                h: History::default(),
            }
        }
        fn seg(
            &mut self,
            is_orig: bool,
            flags: TcpFlags,
            seq: u32,
            ack: u32,
            len: u32,
        ) -> &mut Self {
            let seg = TcpSegment {
                sport: 1,
                dport: 2,
                seq,
                ack,
                flags,
                window: 1000,
                payload_len: len,
            };
            self.c.process(&mut self.h, is_orig, &seg, true);
            self
        }
        fn o(&mut self, f: TcpFlags, seq: u32, ack: u32, len: u32) -> &mut Self {
            self.seg(true, f, seq, ack, len)
        }
        fn r(&mut self, f: TcpFlags, seq: u32, ack: u32, len: u32) -> &mut Self {
            self.seg(false, f, seq, ack, len)
        }
        fn state(&self) -> (&str, &str) {
            (conn_state(&self.c, &self.h).as_str(), self.h.as_str())
        }
    }

    #[test]
    fn full_connection_is_sf_with_zeek_history() {
        let mut t = T::new();
        t.o(SYN, 100, 0, 0)
            .r(SYNACK, 500, 101, 0)
            .o(ACK, 101, 501, 0)
            .o(PSHACK, 101, 501, 10)
            .r(PSHACK, 501, 111, 20)
            .o(FINACK, 111, 521, 0)
            .r(FINACK, 521, 112, 0)
            .o(ACK, 112, 522, 0);
        assert_eq!(t.state(), ("SF", "ShADdFf"));
        assert_eq!(t.c.orig().size(t.c.resp().state), 10);
        assert_eq!(t.c.resp().size(t.c.orig().state), 20);
    }

    #[test]
    fn retransmitted_syns_with_the_same_isn_add_no_letter() {
        let mut t = T::new();
        t.o(SYN, 7, 0, 0).o(SYN, 7, 0, 0).o(SYN, 7, 0, 0);
        assert_eq!(t.state(), ("S0", "S"));
    }

    #[test]
    fn rst_answering_a_syn_is_rej() {
        let mut t = T::new();
        t.o(SYN, 7, 0, 0).r(RSTACK, 0, 8, 0);
        assert_eq!(t.state(), ("REJ", "Sr"));
    }

    #[test]
    fn syn_then_rst_is_rstos0_and_single_rst_is_oth() {
        let mut t = T::new();
        t.o(SYN, 7, 0, 0).o(RST, 8, 0, 0);
        assert_eq!(t.state(), ("RSTOS0", "SR"));
        let mut t = T::new();
        t.o(RST, 8, 0, 0);
        assert_eq!(t.state(), ("OTH", "R"));
    }

    #[test]
    fn syn_ack_first_then_ack_flips_to_caret_h() {
        let mut t = T::new();
        // The SYN-ACK's sender starts as the originator.
        t.o(SYNACK, 500, 101, 0);
        assert_eq!(t.h.as_str(), "H");
        // The other side (responder so far) ACKs: flip.
        t.r(ACK, 101, 501, 0);
        assert_eq!(t.h.as_str(), "^hA");
        assert_eq!(conn_state(&t.c, &t.h), ConnState::S1);
    }

    #[test]
    fn retransmitted_data_gives_t() {
        let mut t = T::new();
        t.o(SYN, 100, 0, 0)
            .r(SYNACK, 500, 101, 0)
            .o(ACK, 101, 501, 0)
            .o(PSHACK, 101, 501, 10)
            .o(PSHACK, 101, 501, 10);
        assert_eq!(t.state(), ("S1", "ShADT"));
    }

    #[test]
    fn acked_but_unseen_data_is_a_gap() {
        let mut t = T::new();
        t.o(SYN, 100, 0, 0)
            .r(SYNACK, 500, 101, 0)
            .o(ACK, 101, 501, 0)
            .o(PSHACK, 111, 501, 10) // bytes 101..111 never seen
            .r(ACK, 501, 121, 0);
        assert_eq!(t.state(), ("S1", "ShADaG"));
        assert_eq!(t.c.orig().missed_bytes, 10);
    }

    #[test]
    fn fin_then_rst_is_still_sf() {
        let mut t = T::new();
        t.o(SYN, 100, 0, 0)
            .r(SYNACK, 500, 101, 0)
            .o(ACK, 101, 501, 0)
            .o(FINACK, 101, 501, 0)
            .r(FINACK, 501, 102, 0)
            .o(RST, 102, 0, 0);
        assert_eq!(t.state().0, "SF");
    }

    #[test]
    fn syn_then_fin_is_sh() {
        let mut t = T::new();
        t.o(SYN, 100, 0, 0).o(FINACK, 101, 0, 0);
        assert_eq!(t.state().0, "SH");
    }

    #[test]
    fn a_rst_far_outside_the_window_is_told_apart() {
        let mut t = T::new();
        t.o(SYN, 100, 0, 0)
            .r(SYNACK, 500, 101, 0)
            .o(ACK, 101, 501, 0)
            .r(PSHACK, 501, 101, 20);
        // The responder's next byte is 521, the originator acked up to 501.
        assert!(t.c.rst_in_window(false, 521));
        assert!(t.c.rst_in_window(false, 501));
        assert!(t.c.rst_in_window(false, 521 + RST_WINDOW as u32));
        assert!(!t.c.rst_in_window(false, 521 + RST_WINDOW as u32 + 1));
        assert!(!t.c.rst_in_window(false, 500));
        assert!(!t.c.rst_in_window(false, 0x8000_0000));
        // Nothing known of a side that sent nothing: a refusal's RST is always taken.
        let mut t = T::new();
        t.o(SYN, 7, 0, 0);
        assert!(t.c.rst_in_window(false, 0));
    }

    #[test]
    fn reuse_needs_a_new_isn_or_a_closed_connection() {
        let mut t = T::new();
        t.o(SYN, 100, 0, 0);
        assert!(!t.c.is_reuse(SYN, 100));
        assert!(t.c.is_reuse(SYN, 999));
        t.r(RSTACK, 0, 101, 0);
        assert!(t.c.is_reuse(SYN, 100));
    }
}
