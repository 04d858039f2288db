//! What a run counted on the way: frames read, packets decoded, anomalies, the flow table's
//! figures, connections by protocol and state, copies dropped, conversations folded. Each
//! stage fills its part; the report's capture facts are written from it.

use crate::decode::{AnomalyCounts, Proto, TunnelCounts};
use crate::flow::import::ImportStats;
use crate::flow::reorder::ReorderStats;
use crate::flow::{ConnRecord, ConnState, FlowStats};
use crate::source::live::Drops;
use crate::source::SourceStats;

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
    pub fn add(&mut self, r: &ConnRecord) {
        match r.proto {
            Proto::Tcp => self.tcp += 1,
            Proto::Udp => self.udp += 1,
            Proto::Ip(_) => self.icmp += 1,
        }
        if r.proto.has_ports() {
            if let Some(i) = ConnState::ALL.iter().position(|&s| s == r.conn_state) {
                self.by_state[i] += 1;
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.tcp + self.udp + self.icmp
    }
}

/// Everything a run counted, for the capture facts and the summary.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// What the source read: files, frames, bytes, time span, link types, warnings.
    pub source: SourceStats,
    /// Frames that decoded to an IP packet.
    pub ip_packets: u64,
    /// Frames that gave no packet, by kind.
    pub anomalies: AnomalyCounts,
    /// Tunnel headers opened, by kind.
    pub tunnels: TunnelCounts,
    /// IP packets whose payload was cut by the snap length (headers intact; still used).
    pub payload_truncated: u64,
    pub flow: FlowStats,
    pub conns: ConnCounts,
    /// Packets dropped as copies of one just seen (a capture on several interfaces).
    pub duplicates: u64,
    /// Exact duplicates (the same packet twice on one interface, as a SPAN session that
    /// mirrors both ports gives): counted as packets, never as retransmissions.
    pub exact_duplicates: u64,
    /// Packets put back in time order.
    pub reorder: ReorderStats,
    /// Conversations folded into per-service groups past the aggregator's cap.
    pub folded: u64,
    /// Live capture only: packets the kernel, the interface and the analyzer's queue dropped.
    pub live_drops: Option<Drops>,
    /// The input files and their kinds, when any of them held connection records (empty
    /// for packets alone).
    pub inputs: Vec<InputFacts>,
    /// Records dropped as a copy of a connection another input (sensor) gave already.
    pub sensor_copies: u64,
    /// Spans the cross-sensor merge forgot to stay bounded (a copy arriving later than that
    /// may have counted twice).
    pub sensor_forgotten: u64,
}

/// One input file: its kind (pcap, pcapng, zeek, eve, exflow) and, for records, what its
/// reader counted.
#[derive(Clone, Debug)]
pub struct InputFacts {
    pub file: String,
    pub kind: &'static str,
    pub records: Option<ImportStats>,
    /// A read error that ended the file early (decompression failure, cut off).
    pub read_error: Option<String>,
}
