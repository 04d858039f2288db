//! IPv4 and IPv6 (with extension headers): addresses, lengths, and where the transport header
//! starts.
//!
//! Lengths come from the headers, never from what was captured: `ip_len` is what the packet
//! declares, `payload` is the captured part of the transport bytes (Ethernet padding after
//! the packet excluded), `payload_len` their declared length.

use super::link::Net;
use super::{short, AnomalyKind};
use etherparse::err::{ip_auth, ipv4, ipv6, ipv6_exts};
use etherparse::{
    ip_number, IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6ExtensionsSlice,
    Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const IPV6_HEADER_LEN: usize = 40;
/// The hop-by-hop option carrying a Jumbo Payload length (RFC 2675).
const OPT_JUMBO: u8 = 0xc2;
const OPT_PAD1: u8 = 0;

/// One IP header, decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ip<'a> {
    /// The source and destination addresses as the header holds them: 8 bytes (IPv4) or 32
    /// (IPv6). Bytes, not `IpAddr`s: see [`Ip::addrs`].
    pub addrs: &'a [u8],
    pub ttl: u8,
    pub ip_id: u16,
    /// Length of the whole packet as its header(s) declare it.
    pub ip_len: usize,
    /// The upper-layer protocol, after any extension headers.
    pub proto: u8,
    /// Captured bytes of the upper-layer packet, no further than `ip_len`.
    pub payload: &'a [u8],
    /// Declared length of the upper-layer packet.
    pub payload_len: usize,
    /// The snap length cut this packet: a header missing from `payload` is `SnaplenCut`.
    pub cut: bool,
}

impl Ip<'_> {
    /// Writes the source and destination addresses where they go. Straight from the header's
    /// bytes to their destination: an `IpAddr` built in one place and copied to another is
    /// read back with wide loads right after the narrow stores that built it, and the CPU
    /// stalls on such loads (store forwarding fails when a load spans several stores).
    #[inline]
    pub fn addrs(&self, src: &mut IpAddr, dst: &mut IpAddr) {
        if let Some((s, d)) = self.addrs.split_first_chunk::<4>() {
            if let Ok(d) = <[u8; 4]>::try_from(d) {
                *src = IpAddr::V4(Ipv4Addr::from(*s));
                *dst = IpAddr::V4(Ipv4Addr::from(d));
                return;
            }
        }
        if let Some((s, d)) = self.addrs.split_first_chunk::<16>() {
            if let Ok(d) = <[u8; 16]>::try_from(d) {
                *src = IpAddr::V6(Ipv6Addr::from(*s));
                *dst = IpAddr::V6(Ipv6Addr::from(d));
            }
        }
    }
}

/// Decodes the IP header at the start of `b`. `wire_avail`: bytes from there to the end of
/// the frame on the wire; `cut`: the frame was cut by the snap length.
pub(crate) fn parse(
    net: Net,
    b: &[u8],
    wire_avail: usize,
    cut: bool,
) -> Result<Ip<'_>, AnomalyKind> {
    let version = b.first().map(|v| v >> 4);
    match (net, version) {
        (Net::V4, _) | (Net::RawIp | Net::Mpls, Some(4)) => ipv4(b, wire_avail, cut),
        (Net::V6, _) | (Net::RawIp | Net::Mpls, Some(6)) => ipv6(b, wire_avail, cut),
        (_, None) if cut => Err(AnomalyKind::SnaplenCut),
        (Net::RawIp, _) => Err(AnomalyKind::UnsupportedIpVersion),
        // An empty MPLS payload is a broken frame; anything else below the labels that is
        // not IP (an Ethernet pseudowire, ...) is not ours.
        (Net::Mpls, None) => Err(AnomalyKind::BadLinkHeader),
        (Net::Mpls, Some(_)) => Err(AnomalyKind::NotIp),
    }
}

fn ipv4(b: &[u8], wire_avail: usize, cut: bool) -> Result<Ip<'_>, AnomalyKind> {
    const BAD: AnomalyKind = AnomalyKind::BadIpv4Header;
    let h = Ipv4HeaderSlice::from_slice(b).map_err(|e| match e {
        ipv4::HeaderSliceError::Len(_) => short(cut, BAD),
        ipv4::HeaderSliceError::Content(_) => BAD,
    })?;
    let hlen = h.slice().len();
    let total = usize::from(h.total_len());
    let ip_len = if total == 0 {
        // Segmentation offload: a packet captured on the sending host before the NIC split
        // it may carry a total length of 0. Its real length is what the wire length says.
        b.len().max(wire_avail)
    } else if total < hlen {
        return Err(BAD);
    } else {
        total
    };
    if h.fragments_offset().value() != 0 {
        return Err(AnomalyKind::IpFragment);
    }
    let cut = cut && b.len() < ip_len;
    let mut payload = b.get(hlen..ip_len.min(b.len())).unwrap_or_default();
    let mut payload_len = ip_len - hlen;
    let mut proto = h.protocol();
    if proto == ip_number::AUTH {
        let ah = IpAuthHeaderSlice::from_slice(payload).map_err(|e| match e {
            ip_auth::HeaderSliceError::Len(_) => short(cut, BAD),
            ip_auth::HeaderSliceError::Content(_) => BAD,
        })?;
        let n = ah.slice().len();
        payload = payload.get(n..).unwrap_or_default();
        payload_len = payload_len.saturating_sub(n);
        proto = ah.next_header();
    }
    Ok(Ip {
        addrs: h.slice().get(12..20).unwrap_or_default(),
        ttl: h.ttl(),
        ip_id: h.identification(),
        ip_len,
        proto: proto.0,
        payload,
        payload_len,
        cut,
    })
}

fn ipv6(b: &[u8], wire_avail: usize, cut: bool) -> Result<Ip<'_>, AnomalyKind> {
    const BAD: AnomalyKind = AnomalyKind::BadIpv6Header;
    let h = Ipv6HeaderSlice::from_slice(b).map_err(|e| match e {
        ipv6::HeaderSliceError::Len(_) => short(cut, BAD),
        ipv6::HeaderSliceError::Content(_) => BAD,
    })?;
    let next = h.next_header();
    let ip_len = match h.payload_length() {
        0 => match jumbo_payload_len(b) {
            Some(j) => IPV6_HEADER_LEN.saturating_add(j),
            None if next == ip_number::IPV6_NO_NEXT_HEADER => IPV6_HEADER_LEN,
            // Segmentation offload ("BIG TCP" without its hop-by-hop header, as Linux
            // hands it to the capture since 6.x): the wire length is the only length.
            None => b.len().max(wire_avail),
        },
        n => IPV6_HEADER_LEN + usize::from(n),
    };
    let cut = cut && b.len() < ip_len;
    let rest = b
        .get(IPV6_HEADER_LEN..ip_len.min(b.len()))
        .unwrap_or_default();
    let (exts, proto, payload, stop) = Ipv6ExtensionsSlice::from_slice_lax(next, rest);
    // A later fragment first: the bytes after its fragment header are data, not headers, so
    // an "error" parsing them means nothing.
    if later_fragment(next, exts.slice()) {
        return Err(AnomalyKind::IpFragment);
    }
    if let Some((e, _)) = stop {
        return Err(match e {
            ipv6_exts::HeaderSliceError::Len(_) => short(cut, BAD),
            ipv6_exts::HeaderSliceError::Content(_) => BAD,
        });
    }
    Ok(Ip {
        addrs: h.slice().get(8..40).unwrap_or_default(),
        ttl: h.hop_limit(),
        ip_id: 0,
        ip_len,
        proto: proto.0,
        payload,
        payload_len: ip_len.saturating_sub(IPV6_HEADER_LEN + exts.slice().len()),
        cut,
    })
}

/// Whether the IPv6 extension headers `exts`, the first of type `first`, include a fragment
/// header with a non-zero offset (a later fragment).
///
/// A walk of our own: etherparse's `Ipv6ExtensionSliceIter` trusts the last header's
/// next-header field, so on the headers `Ipv6ExtensionsSlice::from_slice_lax` kept before an
/// error it reads past the end of the slice (undefined behaviour; a failed unsafe precondition
/// in debug builds).
pub(crate) fn later_fragment(first: IpNumber, exts: &[u8]) -> bool {
    let mut next = first;
    let mut rest = exts;
    while let [nh, len, ..] = *rest {
        let len = usize::from(len);
        let size = match next {
            ip_number::IPV6_HOP_BY_HOP | ip_number::IPV6_ROUTE | ip_number::IPV6_DEST_OPTIONS => {
                (len + 1) * 8
            }
            ip_number::AUTH => (len + 2) * 4,
            ip_number::IPV6_FRAG => {
                if let Ok(f) = Ipv6FragmentHeaderSlice::from_slice(rest) {
                    if f.fragment_offset().value() != 0 {
                        return true;
                    }
                }
                8
            }
            _ => return false,
        };
        next = IpNumber(nh);
        rest = rest.get(size..).unwrap_or_default();
    }
    false
}

/// The Jumbo Payload length (RFC 2675) of an IPv6 packet `b` whose payload length is 0, when
/// its first extension header is a captured hop-by-hop header with that option. It counts the
/// bytes after the fixed IPv6 header, extension headers included.
fn jumbo_payload_len(b: &[u8]) -> Option<usize> {
    if b.get(6).copied().map(IpNumber) != Some(ip_number::IPV6_HOP_BY_HOP) {
        return None;
    }
    let hbh_len = (usize::from(*b.get(IPV6_HEADER_LEN + 1)?) + 1) * 8;
    let end = (IPV6_HEADER_LEN + hbh_len).min(b.len());
    let opts = b.get(IPV6_HEADER_LEN + 2..end)?;
    let mut i = 0;
    while let Some(&t) = opts.get(i) {
        if t == OPT_PAD1 {
            i += 1;
            continue;
        }
        let len = usize::from(*opts.get(i + 1)?);
        if t == OPT_JUMBO && len == 4 {
            let v = opts.get(i + 2..i + 6)?;
            let v = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            return usize::try_from(v).ok();
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6_with_hbh(opts: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 40];
        b[0] = 0x60;
        b[6] = 0; // hop-by-hop
        b.push(6);
        b.push(((opts.len() + 2) / 8 - 1) as u8);
        b.extend_from_slice(opts);
        b
    }

    #[test]
    fn jumbo_option_found_after_padding() {
        let b = ipv6_with_hbh(&[0, 1, 0, 0xc2, 4, 0, 1, 0x38, 0xa8, 1, 3, 0, 0, 0]);
        assert_eq!(b.len(), 56);
        assert_eq!(jumbo_payload_len(&b), Some(80040));
    }

    #[test]
    fn later_fragment_walk() {
        let hbh = [44u8, 0, 1, 4, 0, 0, 0, 0];
        let first_frag = [6u8, 0, 0, 1, 0, 0, 0, 9];
        let later_frag = [6u8, 0, 0x05, 0xa8, 0, 0, 0, 9];
        let hop = ip_number::IPV6_HOP_BY_HOP;
        assert!(!later_fragment(hop, &[hbh, first_frag].concat()));
        assert!(later_fragment(hop, &[hbh, later_frag].concat()));
        assert!(later_fragment(ip_number::IPV6_FRAG, &later_frag));
        // A chain whose last next-header names a header that is not there.
        let hbh_to_dst = [60u8, 0, 1, 4, 0, 0, 0, 0];
        assert!(!later_fragment(hop, &hbh_to_dst));
        assert!(!later_fragment(hop, &hbh_to_dst[..1]));
        assert!(!later_fragment(ip_number::TCP, &later_frag));
    }

    #[test]
    fn jumbo_absent_or_cut() {
        let b = ipv6_with_hbh(&[1, 4, 0, 0, 0, 0]);
        assert_eq!(jumbo_payload_len(&b), None);
        let b = ipv6_with_hbh(&[0xc2, 4, 0, 1, 0x38, 0xa8]);
        assert_eq!(jumbo_payload_len(&b[..45]), None);
        assert_eq!(jumbo_payload_len(&b[..40]), None);
        assert_eq!(jumbo_payload_len(&b), Some(80040));
    }
}
