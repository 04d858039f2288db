//! `decode`: a [`Frame`] to the few values the flow table needs, as a small `Copy` [`Packet`].
//!
//! Parsing borrows the frame's bytes (etherparse slices plus a few lines of our own for the
//! link layers etherparse has no slicer for) and never allocates. Anything that stops decoding
//! is an [`AnomalyKind`], counted by the caller; no input can make `decode` panic.

pub mod anomaly;

pub use anomaly::{AnomalyCounts, AnomalyKind};

use crate::source::Frame;
use std::net::IpAddr;

/// TCP control bits, as in the header's flags byte (CWR ECE URG ACK PSH RST SYN FIN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// Payload length from the IP header's length fields (not from what was captured).
    pub payload_len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram {
    pub sport: u16,
    pub dport: u16,
    /// Payload length from the IP/UDP length fields.
    pub payload_len: u32,
}

/// The IP and transport header an ICMP error quotes: the packet that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpQuote {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the quoted packet (6 TCP, 17 UDP, ...).
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// Sequence number of a quoted TCP segment, when the quote reaches it.
    pub tcp_seq: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMessage {
    /// true for ICMPv6.
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// Echo identifier for echo request/reply (used as a port, the way Zeek keys ICMP).
    pub echo_id: Option<u16>,
    /// Bytes after the 8-byte ICMP header, from the IP length fields.
    pub payload_len: u32,
    /// For destination unreachable, time exceeded, packet too big and parameter problem:
    /// the quoted packet, when its headers were present and parsed.
    pub quote: Option<IcmpQuote>,
}

impl IcmpMessage {
    /// An error message (unreachable, time exceeded, ...) rather than an informational one.
    pub fn is_error(&self) -> bool {
        if self.v6 {
            self.icmp_type < 128
        } else {
            matches!(self.icmp_type, 3 | 4 | 5 | 11 | 12)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpSegment),
    Udp(UdpDatagram),
    Icmp(IcmpMessage),
    /// Another IP protocol (ESP, GRE, ...): counted, not tracked as a connection.
    Other { proto: u8 },
}

/// What the flow table needs of one IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP total length as declared by the header(s): IPv4 total length, or IPv6 40 + payload
    /// length (jumbo payload length where the hop-by-hop option gives one). Zeek's *_ip_bytes.
    pub ip_len: u32,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    pub transport: Transport,
    /// The frame was cut by the snap length after the headers decoded here.
    pub truncated: bool,
}

/// Decodes one frame. `Err` says why the frame carries no usable IP packet for the flow table
/// (non-IP frames are [`AnomalyKind::NotIp`], which the report lists apart from real anomalies).
pub fn decode(frame: &Frame<'_>) -> Result<Packet, AnomalyKind> {
    let _ = frame;
    Err(AnomalyKind::UnsupportedLinkType)
}
