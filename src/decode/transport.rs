//! TCP, UDP, ICMP and ICMPv6 headers, with payload lengths from the IP length fields.
//!
//! TCP and ICMP headers are read by hand from their fixed part: etherparse's
//! `TcpHeaderSlice` wants the options too (exflow needs only the first 20 bytes, so a SYN
//! whose options a 54-byte snap length cut still counts), and its `Icmpv4Slice` rejects a
//! timestamp message that is not exactly 20 bytes long, `Icmpv6Slice` one longer than 65535
//! bytes (a jumbogram). The quoted packet of an ICMP error goes through etherparse's lax
//! `LaxIpSlice`, made for headers whose payload was cut.

use super::{
    short, AnomalyKind, IcmpMessage, IcmpQuote, TcpFlags, TcpSegment, Transport, UdpDatagram,
};
use etherparse::{ip_number, LaxIpSlice, UdpHeaderSlice};

const TCP_MIN_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
const ICMP_HEADER: usize = 8;

fn be16(b: &[u8; 2]) -> u16 {
    u16::from_be_bytes(*b)
}

fn be32(b: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*b)
}

/// Splits `N` bytes off the front of `b`.
fn take<const N: usize>(b: &[u8]) -> Option<(&[u8; N], &[u8])> {
    b.split_first_chunk::<N>()
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Decodes the transport header of protocol `proto` from `payload` (its captured bytes),
/// `payload_len` bytes long according to the IP header, into `out`. `cut`: the snap length
/// cut the IP packet, so a header missing from `payload` is `SnaplenCut` rather than
/// malformed.
///
/// Written in place rather than returned: a returned `Transport` is copied whole, its
/// unused tail included, with wide loads of bytes just stored a few at a time, on which the
/// CPU stalls (see `decode::decode_into`).
#[inline]
pub(crate) fn parse(
    proto: u8,
    payload: &[u8],
    payload_len: usize,
    cut: bool,
    out: &mut Transport,
) -> Result<(), AnomalyKind> {
    *out = match proto {
        super::proto::TCP => Transport::Tcp(tcp(payload, payload_len, cut)?),
        super::proto::UDP => Transport::Udp(udp(payload, payload_len, cut)?),
        super::proto::ICMP => Transport::Icmp(icmp(payload, payload_len, cut, false)?),
        super::proto::ICMPV6 => Transport::Icmp(icmp(payload, payload_len, cut, true)?),
        proto => Transport::Other { proto },
    };
    Ok(())
}

fn tcp(b: &[u8], payload_len: usize, cut: bool) -> Result<TcpSegment, AnomalyKind> {
    const BAD: AnomalyKind = AnomalyKind::BadTcpHeader;
    if payload_len < TCP_MIN_HEADER {
        return Err(BAD);
    }
    let (h, _) = take::<TCP_MIN_HEADER>(b).ok_or(short(cut, BAD))?;
    let data_offset = usize::from(h[12] >> 4) * 4;
    if data_offset < TCP_MIN_HEADER || data_offset > payload_len {
        return Err(BAD);
    }
    Ok(TcpSegment {
        sport: be16(&[h[0], h[1]]),
        dport: be16(&[h[2], h[3]]),
        seq: be32(&[h[4], h[5], h[6], h[7]]),
        ack: be32(&[h[8], h[9], h[10], h[11]]),
        flags: TcpFlags(h[13]),
        window: be16(&[h[14], h[15]]),
        payload_len: len32(payload_len - data_offset),
    })
}

fn udp(b: &[u8], payload_len: usize, cut: bool) -> Result<UdpDatagram, AnomalyKind> {
    const BAD: AnomalyKind = AnomalyKind::BadUdpHeader;
    if payload_len < UDP_HEADER {
        return Err(BAD);
    }
    // The UDP length field is ignored: the IP length is the one exflow trusts (it is 0 in a
    // jumbogram, and wrong in some offloaded packets).
    let h = UdpHeaderSlice::from_slice(b).map_err(|_| short(cut, BAD))?;
    Ok(UdpDatagram {
        sport: h.source_port(),
        dport: h.destination_port(),
        payload_len: len32(payload_len - UDP_HEADER),
    })
}

fn icmp(b: &[u8], payload_len: usize, cut: bool, v6: bool) -> Result<IcmpMessage, AnomalyKind> {
    const BAD: AnomalyKind = AnomalyKind::BadIcmpHeader;
    if payload_len < ICMP_HEADER {
        return Err(BAD);
    }
    let (h, body) = take::<ICMP_HEADER>(b).ok_or(short(cut, BAD))?;
    let (icmp_type, code) = (h[0], h[1]);
    let echo = if v6 {
        matches!(icmp_type, 128 | 129)
    } else {
        matches!(icmp_type, 0 | 8)
    };
    let mut m = IcmpMessage {
        v6,
        icmp_type,
        code,
        echo_id: echo.then(|| be16(&[h[4], h[5]])),
        payload_len: len32(payload_len - ICMP_HEADER),
        quote: None,
    };
    // Every error message quotes the offending packet right after the 8-byte header
    // (v4: unreachable, source quench, redirect, time exceeded, parameter problem; v6:
    // unreachable, packet too big, time exceeded, parameter problem).
    let quotes = if v6 {
        matches!(icmp_type, 1..=4)
    } else {
        matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
    };
    if quotes {
        m.quote = quote(body);
    }
    Ok(m)
}

/// The packet an ICMP error quotes: usually its IP header and the first 8 bytes of its
/// transport header, sometimes less. `None` unless the IP header and 4 bytes after it are
/// there, and for a quoted non-first fragment (whose first bytes are not a header).
///
/// `sport`/`dport`: the ports for TCP, UDP, SCTP, DCCP and UDP-Lite; the type and code for a
/// quoted ICMP or ICMPv6 message; 0 and 0 for other protocols.
fn quote(b: &[u8]) -> Option<IcmpQuote> {
    let (ip, stop) = LaxIpSlice::from_slice(b).ok()?;
    if stop.is_some() {
        return None;
    }
    let later_fragment = match &ip {
        LaxIpSlice::Ipv4(v4) => v4.header().fragments_offset().value() != 0,
        LaxIpSlice::Ipv6(v6) => {
            super::ip::later_fragment(v6.header().next_header(), v6.extensions().slice())
        }
    };
    if later_fragment {
        return None;
    }
    let proto = ip.payload_ip_number();
    let (head, rest) = take::<4>(ip.payload().payload)?;
    let (sport, dport) = match proto {
        ip_number::TCP
        | ip_number::UDP
        | ip_number::SCTP
        | ip_number::DCCP
        | ip_number::UDP_LITE => (be16(&[head[0], head[1]]), be16(&[head[2], head[3]])),
        ip_number::ICMP | ip_number::IPV6_ICMP => (u16::from(head[0]), u16::from(head[1])),
        _ => (0, 0),
    };
    let tcp_seq = match proto {
        ip_number::TCP => take::<4>(rest).map(|(s, _)| be32(s)),
        _ => None,
    };
    Some(IcmpQuote {
        src: ip.source_addr(),
        dst: ip.destination_addr(),
        proto: proto.0,
        sport,
        dport,
        tcp_seq,
    })
}
