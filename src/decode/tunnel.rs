//! Tunnels that carry mirror feeds: GRE (RFC 2784/2890, and PPTP's enhanced GRE), ERSPAN
//! types I, II and III inside GRE, VXLAN (UDP 4789) and Geneve (UDP 6081).
//!
//! Each opener reads one tunnel header and says what follows it and where; the loop in
//! [`super::decode_into`] decodes the inner packet as it decoded the outer one. As in Zeek's
//! GRE analyzer (`src/packet_analysis/protocol/gre/GRE.cc`): ERSPAN type I is protocol 0x88BE
//! without the GRE sequence bit (no ERSPAN header), type II the same with it (an 8-byte
//! header); type III (0x22EB) has a 12-byte header and an 8-byte platform-specific subheader
//! when its last bit (O) is set; a GRE header with the routing bit or an undefined flag set,
//! or a version other than 0 or 1, is malformed. VXLAN and Geneve are recognised by the UDP
//! destination port, as Zeek forwards a UDP payload by the connection's responder port.

use super::link::{self, Net};
use super::{short, AnomalyKind, Transport};
use crate::source::LinkType;

/// Tunnel layers opened in one frame before giving up (Zeek's `Tunnel::max_depth` is 4 too):
/// a deeper frame is [`AnomalyKind::TunnelTooDeep`].
pub const MAX_DEPTH: usize = 4;

pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;

const IP_PROTO_GRE: u8 = 47;

/// A kind of tunnel header that was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// GRE carrying IP, Ethernet (transparent Ethernet bridging) or PPP (PPTP).
    Gre,
    /// ERSPAN type I: GRE protocol 0x88BE without a sequence number, no ERSPAN header.
    ErspanI,
    /// ERSPAN type II: GRE protocol 0x88BE with a sequence number, an 8-byte ERSPAN header.
    ErspanII,
    /// ERSPAN type III: GRE protocol 0x22EB.
    ErspanIII,
    Vxlan,
    Geneve,
}

impl TunnelKind {
    pub const ALL: [TunnelKind; 6] = [
        TunnelKind::Gre,
        TunnelKind::ErspanI,
        TunnelKind::ErspanII,
        TunnelKind::ErspanIII,
        TunnelKind::Vxlan,
        TunnelKind::Geneve,
    ];

    /// The stable name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::ErspanI => "erspan_i",
            TunnelKind::ErspanII => "erspan_ii",
            TunnelKind::ErspanIII => "erspan_iii",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Tunnel headers opened, per [`TunnelKind`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelCounts([u64; TunnelKind::ALL.len()]);

impl TunnelCounts {
    pub fn add(&mut self, kind: TunnelKind) {
        let c = &mut self.0[kind.index()];
        *c = c.saturating_add(1);
    }
    pub fn get(&self, kind: TunnelKind) -> u64 {
        self.0[kind.index()]
    }
    /// Non-zero counters, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (TunnelKind, u64)> + '_ {
        TunnelKind::ALL
            .iter()
            .map(|&k| (k, self.get(k)))
            .filter(|&(_, n)| n > 0)
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }
}

/// What follows a tunnel header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inner {
    /// An Ethernet frame (VXLAN, Geneve 0x6558, GRE 0x6558, ERSPAN).
    Ethernet,
    /// A network-layer packet.
    Net(Net),
}

/// An opened tunnel header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Opened {
    pub kind: TunnelKind,
    pub inner: Inner,
    /// Length of the tunnel header(s) before the inner frame.
    pub header_len: usize,
}

/// Whether the transport just decoded carries a tunnel, and if so its header (its length
/// counted from the start of the IP payload). `payload`: the captured IP payload (the
/// transport header included), `payload_len` its declared length.
/// `Ok(None)`: not a tunnel exflow opens (a GRE protocol type it does not know included: the
/// packet stays what it was, a GRE packet).
#[inline]
pub(crate) fn open(
    transport: &Transport,
    payload: &[u8],
    payload_len: usize,
    cut: bool,
) -> Result<Option<Opened>, AnomalyKind> {
    match *transport {
        Transport::Other {
            proto: IP_PROTO_GRE,
        } => gre(payload, cut),
        Transport::Udp(u) if u.dport == VXLAN_PORT || u.dport == GENEVE_PORT => {
            const UDP_HEADER: usize = 8;
            let body = payload.get(UDP_HEADER..).unwrap_or_default();
            let body_len = payload_len.saturating_sub(UDP_HEADER);
            let opened = if u.dport == VXLAN_PORT {
                vxlan(body, body_len, cut)?
            } else {
                geneve(body, body_len, cut)?
            };
            Ok(Some(Opened {
                header_len: opened.header_len + UDP_HEADER,
                ..opened
            }))
        }
        _ => Ok(None),
    }
}

/// Whether a packet of IP protocol `proto` whose IP payload starts `payload` may carry a
/// tunnel: GRE, or UDP to the VXLAN or Geneve port. The hot path's one check, from values it
/// has at hand (not from the transport just written, which would be read back at once).
#[inline(always)]
pub(crate) fn may_carry(proto: u8, payload: &[u8]) -> bool {
    const UDP: u8 = 17;
    proto == IP_PROTO_GRE
        || (proto == UDP && matches!(be16(payload, 2), Some(VXLAN_PORT | GENEVE_PORT)))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// The error for a tunnel header that is too short.
fn too_short(cut: bool) -> AnomalyKind {
    short(cut, AnomalyKind::BadTunnelHeader)
}

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
/// Strict source route, recursion control and the first undefined flags (RFC 1701's, that
/// RFC 2784 reserved): Zeek drops a GRE packet with any of the four low ones set.
const GRE_UNDEFINED: u16 = 0x0078;
/// PPTP's acknowledgement number (enhanced GRE, RFC 2637).
const GRE_ACK: u16 = 0x0080;

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_TEB: u16 = 0x6558;
const ETH_P_ERSPAN: u16 = 0x88be;
const ETH_P_ERSPAN3: u16 = 0x22eb;
const ETH_P_PPP: u16 = 0x880b;

const ERSPAN2_HEADER: usize = 8;
const ERSPAN3_HEADER: usize = 12;
const ERSPAN3_SUBHEADER: usize = 8;

/// A GRE header at the start of `b`.
fn gre(b: &[u8], cut: bool) -> Result<Option<Opened>, AnomalyKind> {
    let flags = be16(b, 0).ok_or(too_short(cut))?;
    let proto = be16(b, 2).ok_or(too_short(cut))?;
    let version = flags & 0x0007;
    if version > 1 || flags & (GRE_ROUTING | GRE_UNDEFINED) != 0 {
        return Err(AnomalyKind::BadTunnelHeader);
    }
    let mut len = 4;
    for bit in [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE, GRE_ACK] {
        if flags & bit != 0 {
            len += 4;
        }
    }
    let need = |n: usize| {
        if b.len() < n {
            Err(too_short(cut))
        } else {
            Ok(())
        }
    };
    need(len)?;
    let opened = |kind, inner, header_len| {
        Ok(Some(Opened {
            kind,
            inner,
            header_len,
        }))
    };
    if version == 1 {
        // Enhanced GRE (PPTP): always PPP.
        if proto != ETH_P_PPP {
            return Err(AnomalyKind::BadTunnelHeader);
        }
        let (net, n) = link::ppp(b, len, cut)?;
        return opened(TunnelKind::Gre, Inner::Net(net), n);
    }
    match proto {
        ETH_P_IPV4 => opened(TunnelKind::Gre, Inner::Net(Net::V4), len),
        ETH_P_IPV6 => opened(TunnelKind::Gre, Inner::Net(Net::V6), len),
        ETH_P_TEB => opened(TunnelKind::Gre, Inner::Ethernet, len),
        ETH_P_ERSPAN if flags & GRE_SEQUENCE != 0 => {
            need(len + ERSPAN2_HEADER)?;
            opened(TunnelKind::ErspanII, Inner::Ethernet, len + ERSPAN2_HEADER)
        }
        ETH_P_ERSPAN => opened(TunnelKind::ErspanI, Inner::Ethernet, len),
        ETH_P_ERSPAN3 => {
            need(len + ERSPAN3_HEADER)?;
            let last = b[len + ERSPAN3_HEADER - 1];
            let mut n = len + ERSPAN3_HEADER;
            if last & 0x01 != 0 {
                // The O bit: a platform-specific subheader follows.
                n += ERSPAN3_SUBHEADER;
            }
            need(n)?;
            opened(TunnelKind::ErspanIII, Inner::Ethernet, n)
        }
        _ => Ok(None),
    }
}

const VXLAN_HEADER: usize = 8;

/// A VXLAN header (flags, reserved, VNI, reserved) at the start of `b`, the UDP payload,
/// `len` bytes long as declared. Its flags are not checked (Zeek does not either).
fn vxlan(b: &[u8], len: usize, cut: bool) -> Result<Opened, AnomalyKind> {
    if len < VXLAN_HEADER {
        return Err(AnomalyKind::BadTunnelHeader);
    }
    if b.len() < VXLAN_HEADER {
        return Err(too_short(cut));
    }
    Ok(Opened {
        kind: TunnelKind::Vxlan,
        inner: Inner::Ethernet,
        header_len: VXLAN_HEADER,
    })
}

const GENEVE_HEADER: usize = 8;

/// A Geneve header (RFC 8926: version and options length, flags, protocol type, VNI, then
/// the options) at the start of `b`, the UDP payload, `len` bytes long as declared.
fn geneve(b: &[u8], len: usize, cut: bool) -> Result<Opened, AnomalyKind> {
    if len < GENEVE_HEADER {
        return Err(AnomalyKind::BadTunnelHeader);
    }
    let first = *b.first().ok_or(too_short(cut))?;
    if first >> 6 != 0 {
        return Err(AnomalyKind::BadTunnelHeader);
    }
    let header_len = GENEVE_HEADER + usize::from(first & 0x3f) * 4;
    if len < header_len {
        return Err(AnomalyKind::BadTunnelHeader);
    }
    if b.len() < header_len {
        return Err(too_short(cut));
    }
    let inner = match be16(b, 2).ok_or(too_short(cut))? {
        ETH_P_TEB => Inner::Ethernet,
        ETH_P_IPV4 => Inner::Net(Net::V4),
        ETH_P_IPV6 => Inner::Net(Net::V6),
        _ => return Err(AnomalyKind::NotIp),
    };
    Ok(Opened {
        kind: TunnelKind::Geneve,
        inner,
        header_len,
    })
}

/// Finds the inner IP header of a tunnel's payload `b`: what follows and its offset.
#[inline]
pub(crate) fn locate(inner: Inner, b: &[u8], cut: bool) -> Result<(Net, usize), AnomalyKind> {
    match inner {
        Inner::Ethernet => link::locate(LinkType::ETHERNET, b, cut),
        Inner::Net(net) => Ok((net, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(b: &[u8]) -> Result<Option<Opened>, AnomalyKind> {
        gre(b, false)
    }

    fn o(kind: TunnelKind, inner: Inner, header_len: usize) -> Result<Option<Opened>, AnomalyKind> {
        Ok(Some(Opened {
            kind,
            inner,
            header_len,
        }))
    }

    #[test]
    fn gre_optional_fields() {
        assert_eq!(
            g(&[0, 0, 0x08, 0x00]),
            o(TunnelKind::Gre, Inner::Net(Net::V4), 4)
        );
        // C, K and S: 4 + 12.
        let mut b = vec![0xb0, 0, 0x86, 0xdd];
        b.resize(16, 0);
        assert_eq!(g(&b), o(TunnelKind::Gre, Inner::Net(Net::V6), 16));
        assert_eq!(g(&b[..15]), Err(AnomalyKind::BadTunnelHeader));
        assert_eq!(gre(&b[..15], true), Err(AnomalyKind::SnaplenCut));
        assert_eq!(
            g(&[0x20, 0, 0x65, 0x58, 0, 0, 0, 1])
                .unwrap()
                .unwrap()
                .inner,
            Inner::Ethernet
        );
    }

    #[test]
    fn gre_malformed_and_unknown() {
        assert_eq!(g(&[]), Err(AnomalyKind::BadTunnelHeader));
        assert_eq!(g(&[0, 0, 8]), Err(AnomalyKind::BadTunnelHeader));
        // Routing bit, an undefined flag, version 2.
        assert_eq!(
            g(&[0x40, 0, 8, 0, 0, 0, 0, 0]),
            Err(AnomalyKind::BadTunnelHeader)
        );
        assert_eq!(g(&[0x00, 0x08, 8, 0]), Err(AnomalyKind::BadTunnelHeader));
        assert_eq!(g(&[0x00, 0x02, 8, 0]), Err(AnomalyKind::BadTunnelHeader));
        // Unknown protocol types (MPLS, WCCP, keepalive 0) are not opened.
        assert_eq!(g(&[0, 0, 0x88, 0x47]), Ok(None));
        assert_eq!(g(&[0, 0, 0x88, 0x3e]), Ok(None));
        assert_eq!(g(&[0, 0, 0, 0]), Ok(None));
    }

    #[test]
    fn gre_erspan_types() {
        // Type I: no sequence number, no ERSPAN header.
        assert_eq!(
            g(&[0, 0, 0x88, 0xbe]),
            o(TunnelKind::ErspanI, Inner::Ethernet, 4)
        );
        // Type II: sequence number, 8-byte header.
        let b = [0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(g(&b), o(TunnelKind::ErspanII, Inner::Ethernet, 16));
        assert_eq!(g(&b[..15]), Err(AnomalyKind::BadTunnelHeader));
        // Type III without and with the platform-specific subheader.
        let mut b = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
        b.extend([0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(g(&b), o(TunnelKind::ErspanIII, Inner::Ethernet, 20));
        assert_eq!(g(&b[..19]), Err(AnomalyKind::BadTunnelHeader));
        b[19] = 0x01;
        assert_eq!(g(&b), Err(AnomalyKind::BadTunnelHeader));
        b.resize(28, 0);
        assert_eq!(g(&b), o(TunnelKind::ErspanIII, Inner::Ethernet, 28));
    }

    #[test]
    fn gre_pptp() {
        // Version 1, K and S bits, protocol 0x880b, then PPP with address and control bytes.
        let mut b = vec![0x30, 0x01, 0x88, 0x0b, 0, 4, 0, 0, 0, 0, 0, 1];
        b.extend([0xff, 0x03, 0x00, 0x21]);
        assert_eq!(g(&b), o(TunnelKind::Gre, Inner::Net(Net::V4), 16));
        // Compressed: no address/control, a one-byte protocol.
        b.truncate(12);
        b.push(0x57);
        assert_eq!(g(&b), o(TunnelKind::Gre, Inner::Net(Net::V6), 13));
        b[2] = 0x08;
        assert_eq!(g(&b), Err(AnomalyKind::BadTunnelHeader));
    }

    #[test]
    fn vxlan_and_geneve_headers() {
        let h = [0x08, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(vxlan(&h, 8, false).unwrap().header_len, 8);
        assert_eq!(vxlan(&h[..7], 7, false), Err(AnomalyKind::BadTunnelHeader));
        assert_eq!(vxlan(&h[..7], 20, true), Err(AnomalyKind::SnaplenCut));
        // Geneve with 8 bytes of options, inner Ethernet; IPv4; an unknown protocol.
        let mut h = vec![0x02, 0, 0x65, 0x58, 0, 0, 1, 0];
        h.extend([0u8; 8]);
        let ok = geneve(&h, 16, false).unwrap();
        assert_eq!((ok.header_len, ok.inner), (16, Inner::Ethernet));
        assert_eq!(
            geneve(&h[..12], 12, false),
            Err(AnomalyKind::BadTunnelHeader)
        );
        assert_eq!(geneve(&h[..12], 40, true), Err(AnomalyKind::SnaplenCut));
        h[2..4].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(geneve(&h, 16, false).unwrap().inner, Inner::Net(Net::V4));
        h[2..4].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(geneve(&h, 16, false), Err(AnomalyKind::NotIp));
        // Version 1.
        h[0] = 0x40;
        assert_eq!(geneve(&h, 16, false), Err(AnomalyKind::BadTunnelHeader));
        assert_eq!(geneve(&[], 0, false), Err(AnomalyKind::BadTunnelHeader));
    }

    #[test]
    fn counts() {
        let mut c = TunnelCounts::default();
        assert!(c.is_empty());
        c.add(TunnelKind::Vxlan);
        c.add(TunnelKind::Gre);
        c.add(TunnelKind::Vxlan);
        let v: Vec<_> = c.iter().collect();
        assert_eq!(v, [(TunnelKind::Gre, 1), (TunnelKind::Vxlan, 2)]);
        for (i, k) in TunnelKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}

/// Whole frames with tunnels in them, built from bytes, through `decode_into`.
#[cfg(test)]
mod frames {
    use super::TunnelKind::{self, *};
    use crate::decode::{decode_into, AnomalyKind, Layers, Packet, Transport};
    use crate::source::{Frame, LinkType};
    use crate::time::Timestamp;
    use std::net::{IpAddr, Ipv4Addr};

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + payload.len()).unwrap();
        let mut b = vec![0x45, 0, 0, 0, 0, 7, 0, 0, 64, proto, 0, 0];
        b[2..4].copy_from_slice(&total.to_be_bytes());
        b.extend(src);
        b.extend(dst);
        b.extend(payload);
        b
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![];
        b.extend(sport.to_be_bytes());
        b.extend(dport.to_be_bytes());
        b.extend(u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
        b.extend([0, 0]);
        b.extend(payload);
        b
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        b.extend(ethertype.to_be_bytes());
        b.extend(payload);
        b
    }

    /// A TCP SYN from 10.0.0.1:40000 to 10.0.0.2:443 in IPv4.
    fn syn() -> Vec<u8> {
        let mut tcp = vec![0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02];
        tcp.extend([0xff, 0xff, 0, 0, 0, 0]);
        ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp)
    }

    fn gre(flags: u16, proto: u16, extra: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut b = vec![];
        b.extend(flags.to_be_bytes());
        b.extend(proto.to_be_bytes());
        b.extend(extra);
        b.extend(payload);
        b
    }

    /// An Ethernet frame from 192.0.2.1 to 192.0.2.2 carrying `proto` with `payload`.
    fn outer(proto: u8, payload: &[u8]) -> Vec<u8> {
        eth(
            0x0800,
            &ipv4(proto, [192, 0, 2, 1], [192, 0, 2, 2], payload),
        )
    }

    fn vxlan(payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        h.extend(payload);
        outer(17, &udp(51000, 4789, &h))
    }

    fn run(bytes: &[u8], wire: usize) -> (Result<Packet, AnomalyKind>, Layers) {
        let frame = Frame {
            ts: Timestamp::ZERO,
            link: LinkType::ETHERNET,
            caplen: u32::try_from(bytes.len()).unwrap(),
            wire_len: u32::try_from(wire).unwrap(),
            iface: 0,
            interfaces: 1,
            bytes,
        };
        let mut p = Packet::EMPTY;
        let mut layers = Layers::default();
        let r = decode_into(&frame, &mut p, &mut layers).map(|()| p);
        (r, layers)
    }

    fn dec(bytes: &[u8]) -> (Packet, Layers) {
        let (r, l) = run(bytes, bytes.len());
        (r.expect("decodes"), l)
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn assert_inner_syn(p: &Packet) {
        assert_eq!((p.src, p.dst), (v4([10, 0, 0, 1]), v4([10, 0, 0, 2])));
        assert_eq!(p.ip_len, 40);
        assert!(!p.truncated);
        match p.transport {
            Transport::Tcp(t) => assert_eq!((t.sport, t.dport, t.flags.0), (40000, 443, 2)),
            other => panic!("not TCP: {other:?}"),
        }
    }

    /// Every tunnel kind around the same SYN: the inner packet, the tunnels, the carriers.
    fn cases() -> Vec<(&'static str, Vec<u8>, Vec<TunnelKind>, usize)> {
        let inner_eth = eth(0x0800, &syn());
        let mut erspan3 = vec![0u8; 12];
        erspan3[11] = 0x01;
        erspan3.extend([0u8; 8]);
        erspan3.extend(&inner_eth);
        let mut geneve = vec![0x01, 0, 0x65, 0x58, 0, 0, 7, 0, 1, 2, 3, 4];
        geneve.extend(&inner_eth);
        let mut geneve_ip = vec![0x00, 0, 0x08, 0x00, 0, 0, 7, 0];
        geneve_ip.extend(syn());
        vec![
            (
                "gre ipv4",
                outer(47, &gre(0, 0x0800, &[], &syn())),
                vec![Gre],
                0,
            ),
            (
                "gre key+seq ipv4",
                outer(47, &gre(0x3000, 0x0800, &[0, 0, 0, 9, 0, 0, 0, 1], &syn())),
                vec![Gre],
                0,
            ),
            (
                "gre teb",
                outer(47, &gre(0x8000, 0x6558, &[0; 4], &inner_eth)),
                vec![Gre],
                0,
            ),
            (
                "erspan i",
                outer(47, &gre(0, 0x88be, &[], &inner_eth)),
                vec![ErspanI],
                0,
            ),
            (
                "erspan ii",
                outer(
                    47,
                    &gre(
                        0x1000,
                        0x88be,
                        &[0, 0, 0, 5, 0x10, 0, 0, 1, 0, 0, 0, 0],
                        &inner_eth,
                    ),
                ),
                vec![ErspanII],
                0,
            ),
            (
                "erspan iii with subheader",
                outer(47, &gre(0x1000, 0x22eb, &[0, 0, 0, 5], &erspan3)),
                vec![ErspanIII],
                0,
            ),
            ("vxlan", vxlan(&inner_eth), vec![Vxlan], 1),
            (
                "geneve eth",
                outer(17, &udp(0, 6081, &geneve)),
                vec![Geneve],
                1,
            ),
            (
                "geneve ipv4",
                outer(17, &udp(1, 6081, &geneve_ip)),
                vec![Geneve],
                1,
            ),
            (
                "vxlan in gre",
                outer(47, &gre(0, 0x0800, &[], &vxlan(&inner_eth)[14..])),
                vec![Gre, Vxlan],
                1,
            ),
        ]
    }

    #[test]
    fn every_tunnel_kind_gives_the_inner_packet() {
        for (name, bytes, kinds, carriers) in cases() {
            let (p, l) = dec(&bytes);
            assert_inner_syn(&p);
            assert_eq!(l.tunnels(), &kinds[..], "{name}");
            assert_eq!(l.carriers().len(), carriers, "{name}");
            assert_eq!(l.inner_error(), None, "{name}");
            for c in l.carriers() {
                match c.transport {
                    Transport::Udp(u) => assert!(u.dport == 4789 || u.dport == 6081, "{name}"),
                    other => panic!("{name}: carrier {other:?}"),
                }
            }
        }
    }

    #[test]
    fn every_truncation_decodes_or_errs_without_panicking() {
        for (name, bytes, _, _) in cases() {
            for n in 0..bytes.len() {
                // Cut by the snap length, and short on the wire too.
                let (r, l) = run(&bytes[..n], bytes.len());
                if let Ok(p) = r {
                    assert!(p.truncated, "{name} cut at {n}");
                }
                assert!(l.carriers().len() <= l.tunnels().len());
                let _ = run(&bytes[..n], n);
            }
        }
    }

    #[test]
    fn vxlan_carrying_arp_is_its_udp_packet() {
        let bytes = vxlan(&eth(0x0806, &[0u8; 28]));
        let (p, l) = dec(&bytes);
        match p.transport {
            Transport::Udp(u) => assert_eq!(u.dport, 4789),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.src, v4([192, 0, 2, 1]));
        assert_eq!(l.tunnels(), &[Vxlan]);
        assert!(l.carriers().is_empty());
        assert_eq!(l.inner_error(), Some(AnomalyKind::NotIp));
    }

    #[test]
    fn malformed_tunnel_headers_leave_the_outer_packet() {
        // A VXLAN header cut short: the UDP packet stands, the header is counted as bad.
        let bytes = outer(17, &udp(51000, 4789, &[0x08, 0, 0]));
        let (p, l) = dec(&bytes);
        assert!(matches!(p.transport, Transport::Udp(_)));
        assert!(l.tunnels().is_empty());
        assert_eq!(l.inner_error(), Some(AnomalyKind::BadTunnelHeader));
        // A GRE header with the routing bit: the GRE packet stands.
        let bytes = outer(47, &gre(0x4000, 0x0800, &[0; 4], &syn()));
        let (p, l) = dec(&bytes);
        assert_eq!(p.transport, Transport::Other { proto: 47 });
        assert_eq!(l.inner_error(), Some(AnomalyKind::BadTunnelHeader));
        // An unknown GRE protocol (MPLS): not opened, no anomaly, as before tunnels.
        let bytes = outer(47, &gre(0, 0x8847, &[], &[0, 0, 1, 64]));
        let (p, l) = dec(&bytes);
        assert_eq!(p.transport, Transport::Other { proto: 47 });
        assert!(l.tunnels().is_empty());
        assert_eq!(l.inner_error(), None);
        // A GRE tunnel whose inner IPv4 header is broken.
        let mut bad = syn();
        bad[0] = 0x41;
        let bytes = outer(47, &gre(0, 0x0800, &[], &bad));
        let (p, l) = dec(&bytes);
        assert_eq!(p.transport, Transport::Other { proto: 47 });
        assert_eq!(l.tunnels(), &[Gre]);
        assert_eq!(l.inner_error(), Some(AnomalyKind::BadIpv4Header));
    }

    #[test]
    fn a_nesting_bomb_stops_at_the_depth_limit() {
        // GRE in GRE, 10 deep: the 4th GRE packet is the frame's packet.
        let mut ip = syn();
        for _ in 0..10 {
            ip = ipv4(
                47,
                [192, 0, 2, 1],
                [192, 0, 2, 2],
                &gre(0, 0x0800, &[], &ip),
            );
        }
        let (p, l) = dec(&eth(0x0800, &ip));
        assert_eq!(p.transport, Transport::Other { proto: 47 });
        assert_eq!(l.tunnels(), &[Gre; super::MAX_DEPTH]);
        assert_eq!(l.inner_error(), Some(AnomalyKind::TunnelTooDeep));
        // VXLAN in VXLAN, 10 deep: 4 carriers, and the 5th UDP packet.
        let mut frame = eth(0x0800, &syn());
        for _ in 0..10 {
            frame = vxlan(&frame);
        }
        let (p, l) = dec(&frame);
        assert!(matches!(p.transport, Transport::Udp(_)));
        assert_eq!(l.tunnels(), &[Vxlan; super::MAX_DEPTH]);
        assert_eq!(l.carriers().len(), super::MAX_DEPTH);
        assert_eq!(l.inner_error(), Some(AnomalyKind::TunnelTooDeep));
        // Exactly at the limit: the inner packet.
        let mut frame = eth(0x0800, &syn());
        for _ in 0..super::MAX_DEPTH {
            frame = vxlan(&frame);
        }
        let (p, l) = dec(&frame);
        assert_inner_syn(&p);
        assert_eq!(l.carriers().len(), super::MAX_DEPTH);
        assert_eq!(l.inner_error(), None);
    }

    #[test]
    fn layers_are_cleared_between_frames() {
        let mut layers = Layers::default();
        let mut p = Packet::EMPTY;
        for (bytes, tunnels) in [(vxlan(&eth(0x0800, &syn())), 1), (eth(0x0800, &syn()), 0)] {
            let frame = Frame {
                ts: Timestamp::ZERO,
                link: LinkType::ETHERNET,
                caplen: u32::try_from(bytes.len()).unwrap(),
                wire_len: u32::try_from(bytes.len()).unwrap(),
                iface: 0,
                interfaces: 1,
                bytes: &bytes,
            };
            decode_into(&frame, &mut p, &mut layers).unwrap();
            assert_eq!(layers.tunnels().len(), tunnels);
            assert_eq!(layers.carriers().len(), tunnels);
        }
    }
}
