//! A finished connection: owned, built once per connection when it ends, never per packet.

use super::history::History;
use super::key::Endpoint;
use super::tcp::ConnState;
use crate::decode::Proto;
use crate::time::{Duration, Timestamp};
use std::net::IpAddr;

/// Which side of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Orig,
    Resp,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Orig => "orig",
            Side::Resp => "resp",
        }
    }
}

/// Why the connection's record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Closed by FIN/RST and the close delay passed.
    Closed,
    /// Idle longer than its timeout.
    Idle,
    /// A new connection reused the 5-tuple.
    Reused,
    /// The table was full.
    Evicted,
    /// Still open at the end of the capture.
    EndOfCapture,
    /// Still open: a snapshot for a periodic live report.
    Open,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::Idle => "idle",
            EndReason::Reused => "reused",
            EndReason::Evicted => "evicted",
            EndReason::EndOfCapture => "end_of_capture",
            EndReason::Open => "open",
        }
    }
}

/// A simultaneous open (RFC 9293 3.5: both sides send a SYN, then each answers the other's
/// with a SYN-ACK), which Zeek logs as two connections: the second SYN, from the first one's
/// responder with another sequence number, is a reuse of the 5-tuple (`IsReuse`). The
/// records keep Zeek's split; exflow's verdicts read the pair as one connection of the first
/// SYN's sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SimOpen {
    #[default]
    No,
    /// The first SYN's connection, ended by its responder's crossing SYN: its attempt goes on
    /// in the next one.
    Superseded,
    /// The connection the crossing SYN began: its originator is the first SYN's responder.
    Crossing,
}

/// What came after a connection's longest quiet gap ([`IdleGap`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AfterGap {
    /// No gap was measured (not established, or a record read from a log).
    #[default]
    None,
    /// The other side answered with a packet that was not a RST: the gap survived.
    Answered,
    /// A RST whose TTL is not its claimed sender's usual one: a device in between.
    ResetInBetween,
    /// A RST with its sender's usual TTL: the endpoint itself closed it.
    ResetByPeer,
    /// The side that broke the silence sent again and again (retransmissions) and the
    /// connection ended with no reply.
    Unanswered,
    /// No reply yet, and too few packets after the gap to call them retransmissions.
    Pending,
}

impl AfterGap {
    /// Every value, for reading a name back.
    pub const ALL: [AfterGap; 6] = [
        AfterGap::None,
        AfterGap::Answered,
        AfterGap::ResetInBetween,
        AfterGap::ResetByPeer,
        AfterGap::Unanswered,
        AfterGap::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AfterGap::None => "none",
            AfterGap::Answered => "answered",
            AfterGap::ResetInBetween => "reset_in_between",
            AfterGap::ResetByPeer => "reset_by_peer",
            AfterGap::Unanswered => "unanswered",
            AfterGap::Pending => "pending",
        }
    }
}

/// Gaps shorter than this are neither shown (`idle_max_s`) nor read as evidence of an idle
/// timeout: a busy connection's pauses between requests.
pub const IDLE_MIN_MS: u32 = 5_000;

/// An established TCP connection's longest quiet gap (between consecutive packets, either
/// direction) and what came after it: what `idle_timeout_kill` reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleGap {
    /// Milliseconds (saturating); 0 when none was measured.
    pub max_ms: u32,
    pub after: AfterGap,
}

impl IdleGap {
    /// Worth showing and reading: a measured gap of at least [`IDLE_MIN_MS`].
    pub fn meaningful(&self) -> bool {
        self.after != AfterGap::None && self.max_ms >= IDLE_MIN_MS
    }
}

/// An ICMP error that quoted one of this connection's packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    pub ts: Timestamp,
    /// Who sent the ICMP error (the server, or a router/firewall on the way).
    pub from: IpAddr,
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    pub ttl: u8,
    /// Attached by time and addresses (a log's separate ICMP record), not by the packet the
    /// error quoted.
    pub by_address: bool,
}

/// The first ICMP error is kept per connection (the rest are counted): it is what a
/// firewall's rejection looks like, and a slot costs 40 bytes in every tracked flow.
pub const ICMP_KEPT: usize = 1;

/// Traffic counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    pub pkts: u64,
    pub ip_bytes: u64,
    /// Payload bytes as summed from packets (not from sequence numbers).
    pub payload_bytes: u64,
    /// TTL / hop limit of the first packet of this direction.
    pub first_ttl: Option<u8>,
    /// The capture interfaces this direction's packets were seen on, copies included (bit i:
    /// interface i modulo 32, see [`iface_bit`]); 0 for a record read from a log.
    pub ifaces: u32,
    /// The interface of this direction's first packet: where, of the capture's vantage
    /// points, its packets showed up first (the firewall's ingress, in a firewall's capture).
    pub first_iface: u16,
}

/// The bit of interface `iface` in an interface set (interfaces past 31 share bits: a
/// firewall's capture has a handful; 32 bits keep a tracked connection within its budget).
#[inline]
pub fn iface_bit(iface: u16) -> u32 {
    1u32 << (iface & 31)
}

/// One connection as written to `--flows` (Zeek conn.log names plus exflow's own fields).
#[derive(Clone, Debug)]
pub struct ConnRecord {
    /// First packet's time.
    pub ts: Timestamp,
    /// The connection's number in this run XORed with the run's key
    /// ([`crate::flow::FlowConfig::uid_key`]), formatted as a Zeek-style uid: unique within
    /// the run, and across runs whose keys differ.
    pub uid: u64,
    /// The uid the connection had in the log it was read from (Zeek's uid, EVE's flow_id,
    /// exflow's own), kept as it was; `None` for connections tracked from packets.
    pub input_uid: Option<Box<str>>,
    pub orig: Endpoint,
    pub resp: Endpoint,
    pub proto: Proto,
    pub duration: Duration,
    /// Zeek's sizes: from sequence numbers for TCP, summed payload for UDP/ICMP.
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    pub conn_state: ConnState,
    pub missed_bytes: u64,
    pub history: History,
    pub orig_stats: DirStats,
    pub resp_stats: DirStats,
    /// SYNs the originator sent beyond the first before any answer.
    pub syn_retries: u32,
    /// Time from the SYN that was answered to the SYN-ACK.
    pub rtt_syn_synack: Option<Duration>,
    /// Time from the SYN-ACK to the originator's ACK.
    pub rtt_synack_ack: Option<Duration>,
    /// Which side sent the first RST, and that packet's TTL (`None` when the record came
    /// from a log that carries no TTL, such as Zeek's conn.log or Suricata's EVE).
    pub rst_by: Option<(Side, Option<u8>)>,
    /// The interfaces the first RST (that packet and its copies) was seen on; 0 when there
    /// was none or the record came from a log.
    pub rst_ifaces: u32,
    /// RSTs exflow took for spoofed or ignored, and kept out of `rst_by` (not out of Zeek's
    /// `conn_state` and `history`, which count every RST): outside their receiver's window
    /// (a blind guess at the sequence number, RFC 5961), or followed by data or a FIN from
    /// their receiver (which went on as if there had been none). 0 for a record read from a
    /// log.
    pub ignored_rsts: u32,
    /// Half of a simultaneous open ([`SimOpen`]); `No` for a record read from a log.
    pub sim_open: SimOpen,
    /// For a connection whose legs a NAT translated: the public address it used, where the
    /// record shows the host's own.
    pub via: Option<IpAddr>,
    pub icmp: [Option<IcmpError>; ICMP_KEPT],
    pub icmp_count: u32,
    pub end: EndReason,
    /// The longest quiet gap of an established TCP connection and what came after it
    /// (default for UDP, ICMP and records read from logs).
    pub idle: IdleGap,
    /// What the connection's first bytes showed ([`crate::flow::payload`]): SMTP, TLS or
    /// HTTP facts, where seen.
    pub look: Option<Box<crate::flow::payload::Facts>>,
}

impl ConnRecord {
    pub fn proto_name(&self) -> &'static str {
        self.proto.zeek_name()
    }

    /// Zeek-style uid: "C" and 17 base-62 characters, derived deterministically from
    /// [`ConnRecord::uid`].
    pub fn uid_string(&self) -> String {
        String::from_utf8_lossy(&self.uid_bytes()).into_owned()
    }

    /// The uid's 18 ASCII characters, without allocating (see [`ConnRecord::uid_string`]).
    pub fn uid_bytes(&self) -> [u8; 18] {
        // splitmix64 twice for 128 bits of spread.
        let mut x = self.uid.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mix = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let (hi, lo) = (mix(), mix());
        let mut s = [b'C'; 18];
        s[1..].copy_from_slice(&base62(hi, lo));
        s
    }
}

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The lowest 17 base-62 digits of the 128-bit number `hi:lo`, least significant first: long
/// division over 32-bit limbs (64-bit divisions by a constant, where a `u128` would make a
/// 128-bit division per digit).
fn base62(hi: u64, lo: u64) -> [u8; 17] {
    let mut limbs = [(hi >> 32) as u32, hi as u32, (lo >> 32) as u32, lo as u32];
    let mut digits = [0u8; 17];
    for c in &mut digits {
        let mut rem = 0u64;
        for l in &mut limbs {
            let cur = rem << 32 | u64::from(*l);
            *l = (cur / 62) as u32;
            rem = cur % 62;
        }
        *c = ALPHABET[rem as usize];
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_digits_are_those_of_the_128_bit_number() {
        let words = [
            0,
            1,
            61,
            62,
            0x9E37_79B9_7F4A_7C15,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ];
        for hi in words {
            for lo in words {
                let mut v = u128::from(hi) << 64 | u128::from(lo);
                let mut want = [0u8; 17];
                for c in &mut want {
                    *c = ALPHABET[(v % 62) as usize];
                    v /= 62;
                }
                assert_eq!(base62(hi, lo), want, "{hi:#x}:{lo:#x}");
            }
        }
    }
}
