//! `decode`: a [`Frame`] to the few values the flow table needs, as a small `Copy` [`Packet`].
//!
//! Parsing borrows the frame's bytes (etherparse slices plus a few lines of our own for the
//! link layers etherparse has no slicer for) and never allocates. Anything that stops decoding
//! is an [`AnomalyKind`], counted by the caller.
//!
//! **No input can make [`decode`] panic**: every read of our own is bounds-checked (`get`,
//! fixed-size chunks), every length subtraction is checked first, there is no `unwrap` or
//! `unsafe` here, and the etherparse calls used are only those that check their input (its
//! IPv6 extension-header iterator does not, after a lax parse that stopped on an error: we walk
//! that chain ourselves). The tests feed `decode` every truncation of many frames and thousands
//! of random and mutated ones per link type.
//!
//! # Link layers
//! Ethernet, with any mix of 802.1Q/802.1ad (0x8100, 0x88a8, 0x9100-0x9300) tags, MPLS label
//! stacks (IPv4 or IPv6 guessed from the version nibble below the bottom label), PPPoE
//! sessions (PPP IPv4, IPv6 or MPLS) and 802.3 frames with LLC/SNAP; Linux cooked SLL and SLL2
//! (any ARPHRD type whose protocol field is an ethertype, 802.2 LLC, or 802.11 with or without
//! radiotap); BSD NULL (either byte order) and LOOP; raw IP (RAW, IPV4, IPV6); PPP (PPP, with
//! or without the HDLC-like address and control bytes; PPP_SERIAL, which also carries Cisco
//! HDLC; C_HDLC); 802.11 with or without radiotap (data frames with LLC/SNAP; radiotap's
//! data-pad and bad-FCS flags are honoured).
//!
//! # Tunnels
//! GRE (IPv4, IPv6, transparent Ethernet bridging, PPTP's PPP), ERSPAN types I, II and III in
//! GRE, VXLAN (UDP port 4789) and Geneve (UDP port 6081) are opened, up to
//! [`MAX_TUNNEL_DEPTH`] inside one another, and the packet inside is the frame's packet, as
//! Zeek tracks it; the UDP datagrams that carried VXLAN or Geneve are packets too (Zeek logs
//! their connections), handed over in [`Layers`]. See [`decode_into`] and the [`tunnel`]
//! module. IP-in-IP, Teredo, GTP and other GRE protocol types are not opened: a GRE packet
//! that is not opened is [`Transport::Other`].
//!
//! # Lengths
//! Every length in a [`Packet`] comes from the IP header, never from the captured bytes:
//! Ethernet padding does not count, and a frame cut by the snap length still reports its
//! real payload length, with [`Packet::truncated`] set. Two exceptions, both seen on captures
//! taken on a sending host with segmentation offload: an IPv4 total length of 0, and an IPv6
//! payload length of 0 without a Jumbo Payload option (Linux "BIG TCP"); the packet's length
//! is then the frame's wire length minus its link header. An IPv6 Jumbo Payload option gives
//! the length of a jumbogram.
//!
//! # Errors
//! A header exflow needs that is too short is [`AnomalyKind::SnaplenCut`] when the snap length
//! cut it, else the `Bad…Header` kind of its layer. A non-first fragment is
//! [`AnomalyKind::IpFragment`]; a first fragment decodes, with the fragment's own lengths.
//! A TCP header needs its 20 fixed bytes (not its options), UDP and ICMP their 8.

mod ip;
mod link;
pub mod proto;
mod transport;

pub mod anomaly;
pub mod tunnel;

pub use anomaly::{AnomalyCounts, AnomalyKind};
pub use link::supports;
pub use proto::Proto;
pub use tunnel::{TunnelCounts, TunnelKind, MAX_DEPTH as MAX_TUNNEL_DEPTH};

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
    /// A SYN without ACK: a connection attempt.
    pub fn pure_syn(self) -> bool {
        self.syn() && !self.ack()
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
    /// Source and destination ports of a quoted TCP, UDP, SCTP, DCCP or UDP-Lite packet; the
    /// type and code of a quoted ICMP or ICMPv6 message; 0 for other protocols.
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
    Other {
        proto: u8,
    },
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
    /// Not all of the packet was captured, though the headers decoded here were: the frame
    /// was cut by the snap length (`caplen < wire_len`), or the IP header declares more bytes
    /// than the frame holds. The lengths above still come from the headers.
    pub truncated: bool,
    /// The capture interface it was taken on ([`Frame::iface`]).
    pub iface: u16,
    /// How many interfaces the capture had described by then ([`Frame::interfaces`]).
    pub interfaces: u16,
    /// Set after decoding, by the site's NAT addresses (`flow::nat`): the number of the NAT
    /// pair whose public address this packet's was replaced by the host's own (0: none).
    pub nat: u8,
}

impl Packet {
    /// A placeholder, for [`decode_into`] to fill in.
    pub const EMPTY: Packet = Packet {
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        ip_len: 0,
        ttl: 0,
        ip_id: 0,
        transport: Transport::Other { proto: 0 },
        truncated: false,
        iface: 0,
        interfaces: 1,
        nat: 0,
    };

    /// A TCP packet built from its fields rather than decoded (tests, synthetic input): IP
    /// length 40 + payload, TTL 64, IP ID 0, window 64,240, fully captured.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
        payload_len: u32,
    ) -> Packet {
        Packet {
            src,
            dst,
            ip_len: 40u32.saturating_add(payload_len),
            ttl: 64,
            ip_id: 0,
            transport: Transport::Tcp(TcpSegment {
                sport,
                dport,
                seq,
                ack,
                flags: TcpFlags(flags),
                window: 64_240,
                payload_len,
            }),
            truncated: false,
            iface: 0,
            interfaces: 1,
            nat: 0,
        }
    }
}

/// The tunnel layers of one frame, filled in by [`decode_into`]: the tunnel headers opened,
/// the UDP packets that carried a VXLAN or Geneve tunnel (Zeek tracks each as a connection of
/// its own, besides the inner one), and why the packet inside the innermost tunnel could not
/// be used, if it could not. Reused from frame to frame: filling it allocates nothing.
#[derive(Clone, Debug)]
pub struct Layers {
    kinds: [TunnelKind; MAX_TUNNEL_DEPTH],
    depth: usize,
    carriers: [Packet; MAX_TUNNEL_DEPTH],
    carried: usize,
    inner_error: Option<AnomalyKind>,
    /// The packet of the innermost tunnel opened, for when its inside fails. Kept here
    /// rather than in a local, which would be set up for every frame.
    outer: Packet,
    /// Where the decoded TCP segment's captured payload is in the frame's bytes (start,
    /// end); empty for anything else.
    payload: (u32, u32),
}

impl Default for Layers {
    fn default() -> Self {
        Layers {
            kinds: [TunnelKind::Gre; MAX_TUNNEL_DEPTH],
            depth: 0,
            carriers: [Packet::EMPTY; MAX_TUNNEL_DEPTH],
            carried: 0,
            inner_error: None,
            outer: Packet::EMPTY,
            payload: (0, 0),
        }
    }
}

impl Layers {
    /// No tunnel was opened and none failed: the frame's packet is all there is (the one
    /// check the hot path makes).
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.depth == 0 && self.inner_error.is_none()
    }

    /// The tunnel headers opened, outermost first.
    pub fn tunnels(&self) -> &[TunnelKind] {
        self.kinds.get(..self.depth).unwrap_or_default()
    }

    /// The UDP packets that carried the VXLAN and Geneve tunnels around the frame's packet,
    /// outermost first: packets of their own for the flow table, before the frame's packet.
    pub fn carriers(&self) -> &[Packet] {
        if self.depth == 0 {
            // `carried` is reset only when a tunnel may be there (see `decode_into`).
            return &[];
        }
        self.carriers.get(..self.carried).unwrap_or_default()
    }

    /// The captured payload of the TCP segment decoded last from `bytes` (that frame's
    /// bytes): empty for a segment without payload and for anything not TCP.
    #[inline]
    pub fn tcp_payload<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        let (a, b) = self.payload;
        if a == b {
            return &[];
        }
        bytes.get(a as usize..b as usize).unwrap_or_default()
    }

    /// Why the packet inside the innermost tunnel was not used (the frame's packet is then
    /// the tunnel's own: the UDP datagram or GRE packet that carried it).
    pub fn inner_error(&self) -> Option<AnomalyKind> {
        self.inner_error
    }
}

/// Decodes one frame. `Err` says why the frame carries no usable IP packet for the flow table
/// (non-IP frames are [`AnomalyKind::NotIp`], which the report lists apart from real anomalies).
/// A tunnelled frame gives its innermost packet; see [`decode_into`] for the layers around it.
pub fn decode(frame: &Frame<'_>) -> Result<Packet, AnomalyKind> {
    let mut pkt = Packet::EMPTY;
    decode_into(frame, &mut pkt, &mut Layers::default())?;
    Ok(pkt)
}

/// [`decode`] into `out`, field by field (on `Err`, `out` holds a partly written packet), and
/// the tunnel layers around it into `layers`.
///
/// For the hot path, which decodes straight into the batch handed to the tracking thread: a
/// packet built in one place and then copied whole is read back with wide loads right after
/// the narrow stores that built it, and the CPU stalls on each such load (store forwarding
/// fails when a load spans several stores): a tenth of the reading thread's time.
///
/// # Tunnels
/// A GRE packet (ERSPAN included) or a UDP datagram to the VXLAN or Geneve port is opened and
/// the packet inside decoded the same way, down to [`MAX_TUNNEL_DEPTH`] tunnels: `out` is the
/// innermost packet, as Zeek tracks it. A UDP datagram that carried a tunnel is also a
/// connection in Zeek's log, so it goes to [`Layers::carriers`]; a GRE packet is not (it is
/// no TCP, UDP or ICMP). Where the inside of a tunnel fails (a malformed tunnel header, a
/// frame that is not IP, too deep a nesting, ...), `out` is the tunnel's own packet, the
/// innermost one that decoded, and the reason is [`Layers::inner_error`].
///
/// A frame without a tunnel costs a flag and two stores more than before tunnels (about 9
/// instructions of some 240; `valgrind --tool=callgrind` on a 300,000-packet synthetic
/// capture, the whole run 368.0 M → 372.9 M instructions).
#[inline]
pub fn decode_into(
    frame: &Frame<'_>,
    out: &mut Packet,
    layers: &mut Layers,
) -> Result<(), AnomalyKind> {
    layers.depth = 0;
    layers.inner_error = None;
    layers.payload = (0, 0);
    let bytes = frame.bytes;
    let wire_len = usize::try_from(frame.wire_len).unwrap_or(usize::MAX);
    let cut = frame.caplen < frame.wire_len || bytes.len() < wire_len;
    let (mut net, off) = link::locate(frame.link, bytes, cut)?;
    let mut l3 = bytes.get(off..).unwrap_or_default();
    let mut wire_avail = wire_len.saturating_sub(off);
    let mut ip_cut = cut;
    // One pass per IP packet, the frame's and then each tunnel's inner one: every parser has
    // this one call site, so that it stays inlined in the hot path (the first pass).
    loop {
        let ip = match ip::parse(net, l3, wire_avail, ip_cut) {
            Ok(ip) => ip,
            Err(e) => return layers.inside_failed(out, e),
        };
        let tunnelled = tunnel::may_carry(ip.proto, ip.payload);
        if let Err(e) = transport::parse(
            ip.proto,
            ip.payload,
            ip.payload_len,
            ip.cut,
            &mut out.transport,
        ) {
            return layers.inside_failed(out, e);
        }
        ip.addrs(&mut out.src, &mut out.dst);
        out.ip_len = u32::try_from(ip.ip_len).unwrap_or(u32::MAX);
        out.ttl = ip.ttl;
        out.ip_id = ip.ip_id;
        out.truncated = cut || ip.ip_len > l3.len();
        out.iface = frame.iface;
        out.interfaces = frame.interfaces;
        if let Transport::Tcp(seg) = &out.transport {
            if seg.payload_len > 0 {
                layers.payload = payload_span(bytes, ip.payload, seg.payload_len);
            }
        }
        if !tunnelled {
            return Ok(());
        }
        match open_tunnel(out, layers, ip.payload, ip.payload_len, ip.cut) {
            Ok(Some(inner)) => {
                (net, l3, wire_avail, ip_cut) = inner;
            }
            Ok(None) => return Ok(()),
            Err(e) => return layers.inside_failed(out, e),
        }
    }
}

/// Where a TCP segment's captured payload lies in the frame's `bytes`: `segment` is the
/// segment's captured bytes (a part of `bytes`), `payload_len` its payload's declared length.
#[inline(never)]
fn payload_span(bytes: &[u8], segment: &[u8], payload_len: u32) -> (u32, u32) {
    let header = segment.get(12).map_or(0, |&b| usize::from(b >> 4) * 4);
    let at = (segment.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
    let captured = segment
        .len()
        .saturating_sub(header)
        .min(payload_len as usize);
    let start = at.saturating_add(header);
    match (
        u32::try_from(start),
        u32::try_from(start.saturating_add(captured)),
    ) {
        (Ok(a), Ok(b)) if start.saturating_add(captured) <= bytes.len() => (a, b),
        _ => (0, 0),
    }
}

/// The next IP packet inside a tunnel: what it is, its bytes, its declared extent, and
/// whether the snap length cut it.
type InnerPacket<'a> = (link::Net, &'a [u8], usize, bool);

/// Opens the tunnel that `out`, just decoded, may carry: records it in `layers` (and `out` as
/// the packet that stands if the inside fails, and as a carrier if it is UDP), and finds the
/// inner IP packet in `payload` (the captured IP payload of `out`; `payload_len` its
/// declared length, `cut` whether the snap length cut it). `Ok(None)`: no tunnel after all,
/// or one that cannot be opened (`layers` says why). Out of line: most frames carry none.
#[inline(never)]
fn open_tunnel<'a>(
    out: &Packet,
    layers: &mut Layers,
    payload: &'a [u8],
    payload_len: usize,
    cut: bool,
) -> Result<Option<InnerPacket<'a>>, AnomalyKind> {
    let tunnel = match tunnel::open(&out.transport, payload, payload_len, cut) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(None),
        Err(e) => {
            // A malformed tunnel header: the packet stands as it is.
            layers.inner_error = Some(e);
            return Ok(None);
        }
    };
    if layers.depth == 0 {
        layers.carried = 0;
    }
    let (Some(kind), Some(carrier)) = (
        layers.kinds.get_mut(layers.depth),
        layers.carriers.get_mut(layers.carried),
    ) else {
        layers.inner_error = Some(AnomalyKind::TunnelTooDeep);
        return Ok(None);
    };
    *kind = tunnel.kind;
    layers.depth += 1;
    layers.outer = *out;
    if matches!(out.transport, Transport::Udp(_)) {
        *carrier = *out;
        layers.carried += 1;
    }
    let inner = payload.get(tunnel.header_len..).unwrap_or_default();
    let inner_avail = payload_len.saturating_sub(tunnel.header_len);
    let (net, off) = tunnel::locate(tunnel.inner, inner, cut)?;
    Ok(Some((
        net,
        inner.get(off..).unwrap_or_default(),
        inner_avail.saturating_sub(off),
        cut,
    )))
}

impl Layers {
    /// `e` stopped the decoding of an IP packet: the frame's error if it was the frame's own
    /// packet; else the inside of a tunnel failed, and the tunnel's packet stands (no longer
    /// a carrier if it was one) with `e` as the reason.
    #[inline]
    fn inside_failed(&mut self, out: &mut Packet, e: AnomalyKind) -> Result<(), AnomalyKind> {
        if self.depth == 0 {
            return Err(e);
        }
        *out = self.outer;
        if matches!(out.transport, Transport::Udp(_)) {
            self.carried = self.carried.saturating_sub(1);
        }
        self.inner_error = Some(e);
        Ok(())
    }
}

/// The error for a header that is too short: `SnaplenCut` when the snap length cut it
/// (`cut`), else `bad`, the malformed-header kind of its layer.
fn short(cut: bool, bad: AnomalyKind) -> AnomalyKind {
    if cut {
        AnomalyKind::SnaplenCut
    } else {
        bad
    }
}
