//! Link layers: from the start of a frame to the start of its IP header.
//!
//! etherparse 0.21 has no slicer for most of these (SLL2, NULL/LOOP, MPLS, PPPoE, radiotap,
//! 802.11), and its `LinuxSllHeaderSlice` rejects every ARPHRD type but five (loopback, tun,
//! PPP, ... captures on Linux's "any" device would all fail), so the few fixed-offset reads
//! live here. Every read goes through `get`, so no input can index out of bounds.

use super::AnomalyKind;
use crate::source::LinkType;

/// What the link layer says follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Net {
    /// An IPv4 packet (ethertype 0x0800, AF_INET, PPP 0x0021, ...).
    V4,
    /// An IPv6 packet.
    V6,
    /// Raw IP: the version nibble says which.
    RawIp,
    /// The payload of an MPLS label stack: IPv4 or IPv6 guessed from the version nibble,
    /// anything else (an Ethernet pseudowire, ...) is not IP.
    Mpls,
}

/// Encapsulations (VLAN tags, PPPoE, LLC/SNAP, ...) followed before giving up: each consumes
/// bytes, so this only bounds the work on a frame made of nothing but VLAN tags.
const MAX_ENCAPSULATIONS: usize = 16;

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_VLAN: u16 = 0x8100;
const ETH_P_QINQ: u16 = 0x88a8;
const ETH_P_QINQ_OLD1: u16 = 0x9100;
const ETH_P_QINQ_OLD2: u16 = 0x9200;
const ETH_P_QINQ_OLD3: u16 = 0x9300;
const ETH_P_MPLS_UC: u16 = 0x8847;
const ETH_P_MPLS_MC: u16 = 0x8848;
const ETH_P_PPPOE_SESSION: u16 = 0x8864;
/// Largest value of an 802.3 length field (smaller "ethertypes" are lengths, LLC follows).
const ETH_MAX_LEN: u16 = 1500;

/// Linux SLL/SLL2 protocol value for an 802.2 LLC frame.
const LINUX_SLL_P_802_2: u16 = 0x0004;
const ARPHRD_NETLINK: u16 = 824;
/// Frame Relay: the protocol field is not an ethertype.
const ARPHRD_FRAD: u16 = 770;
const ARPHRD_IEEE80211: u16 = 801;
const ARPHRD_IEEE80211_RADIOTAP: u16 = 803;

/// Reads a big-endian u16 at `at`.
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    be16(b, at).map(u16::swap_bytes)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The error for a link-layer header that is too short.
fn short(cut: bool) -> AnomalyKind {
    super::short(cut, AnomalyKind::BadLinkHeader)
}

/// Finds the IP header in `b`: what follows and its offset (`<= b.len()`).
/// `cut`: the frame was cut by the snap length (a too-short header is then `SnaplenCut`).
pub(crate) fn locate(link: LinkType, b: &[u8], cut: bool) -> Result<(Net, usize), AnomalyKind> {
    match link.0 {
        1 => {
            let et = be16(b, 12).ok_or(short(cut))?;
            ethertype(b, 14, et, cut)
        }
        113 => {
            // packet type (2), ARPHRD type (2), address length (2), address (8), protocol (2)
            let arphrd = be16(b, 2).ok_or(short(cut))?;
            let proto = be16(b, 14).ok_or(short(cut))?;
            linux_cooked(b, 16, arphrd, proto, cut)
        }
        276 => {
            // protocol (2), reserved (2), ifindex (4), ARPHRD type (2), packet type (1),
            // address length (1), address (8)
            if b.len() < 20 {
                return Err(short(cut));
            }
            let proto = be16(b, 0).ok_or(short(cut))?;
            let arphrd = be16(b, 8).ok_or(short(cut))?;
            linux_cooked(b, 20, arphrd, proto, cut)
        }
        0 => {
            // BSD loopback: the address family in the capturing host's byte order.
            let le = le32(b, 0).ok_or(short(cut))?;
            match address_family(le).or_else(|| address_family(le.swap_bytes())) {
                Some(net) => Ok((net, 4)),
                None => Err(AnomalyKind::NotIp),
            }
        }
        108 => {
            // OpenBSD loopback: the address family in network byte order.
            let le = le32(b, 0).ok_or(short(cut))?;
            match address_family(le.swap_bytes()) {
                Some(net) => Ok((net, 4)),
                None => Err(AnomalyKind::NotIp),
            }
        }
        12 | 14 | 101 => Ok((Net::RawIp, 0)),
        228 => Ok((Net::V4, 0)),
        229 => Ok((Net::V6, 0)),
        105 => wlan(b, 0, false, cut),
        127 => radiotap(b, 0, cut),
        9 => ppp(b, 0, cut),
        50 => match b.first() {
            // Cisco HDLC (unicast 0x0f, broadcast 0x8f), which libpcap lets share this type:
            // address, control, then an ethertype.
            Some(0x0f | 0x8f) => cisco_hdlc(b, cut),
            _ => ppp(b, 0, cut),
        },
        104 => cisco_hdlc(b, cut),
        _ => Err(AnomalyKind::UnsupportedLinkType),
    }
}

/// A PPP header at `off` (RFC 1661), with or without RFC 1662's HDLC-like address and control
/// bytes (0xff 0x03) before it, the protocol field one byte long when compressed (RFC 1661
/// section 6.5: an odd first byte): what follows and the offset after the header.
pub(crate) fn ppp(b: &[u8], mut off: usize, cut: bool) -> Result<(Net, usize), AnomalyKind> {
    if be16(b, off) == Some(0xff03) {
        off += 2;
    }
    let first = *b.get(off).ok_or(short(cut))?;
    let (proto, len) = if first & 0x01 != 0 {
        (u16::from(first), 1)
    } else {
        (be16(b, off).ok_or(short(cut))?, 2)
    };
    off += len;
    match proto {
        0x0021 => at(b, off, Net::V4, cut),
        0x0057 => at(b, off, Net::V6, cut),
        0x0281 | 0x0283 => mpls(b, off, cut),
        _ => Err(AnomalyKind::NotIp),
    }
}

/// A Cisco HDLC frame: address (1), control (1), ethertype (2).
fn cisco_hdlc(b: &[u8], cut: bool) -> Result<(Net, usize), AnomalyKind> {
    let et = be16(b, 2).ok_or(short(cut))?;
    ethertype(b, 4, et, cut)
}

/// The link types `decode` understands (libpcap `LINKTYPE_*` numbers); keep in step with the
/// `match` above (a unit test checks it).
pub const SUPPORTED: &[u32] = &[
    0, 1, 9, 12, 14, 50, 101, 104, 105, 108, 113, 127, 228, 229, 276,
];

/// Whether frames of this link type can be decoded at all.
pub fn supports(link: LinkType) -> bool {
    SUPPORTED.contains(&link.0)
}

/// BSD `AF_INET` is 2 everywhere; `AF_INET6` is 24 (NetBSD, OpenBSD), 28 (FreeBSD) or 30
/// (macOS).
fn address_family(af: u32) -> Option<Net> {
    match af {
        2 => Some(Net::V4),
        24 | 28 | 30 => Some(Net::V6),
        _ => None,
    }
}

/// The rest of a Linux cooked (SLL or SLL2) frame, whose header ends at `off`.
fn linux_cooked(
    b: &[u8],
    off: usize,
    arphrd: u16,
    proto: u16,
    cut: bool,
) -> Result<(Net, usize), AnomalyKind> {
    if b.len() < off {
        return Err(short(cut));
    }
    match arphrd {
        ARPHRD_NETLINK | ARPHRD_FRAD => Err(AnomalyKind::NotIp),
        ARPHRD_IEEE80211 => wlan(b, off, false, cut),
        ARPHRD_IEEE80211_RADIOTAP => radiotap(b, off, cut),
        // Everything else (Ethernet, loopback, tun, PPP, IP-in-GRE, ...) carries an ethertype
        // or one of Linux's small protocol numbers.
        _ if proto > ETH_MAX_LEN => ethertype(b, off, proto, cut),
        _ if proto == LINUX_SLL_P_802_2 => llc(b, off, cut),
        _ => Err(AnomalyKind::NotIp),
    }
}

/// Follows ethertypes from `et`, whose payload starts at `off`, down to an IP header.
fn ethertype(
    b: &[u8],
    mut off: usize,
    mut et: u16,
    cut: bool,
) -> Result<(Net, usize), AnomalyKind> {
    for _ in 0..MAX_ENCAPSULATIONS {
        match et {
            ETH_P_IPV4 => return at(b, off, Net::V4, cut),
            ETH_P_IPV6 => return at(b, off, Net::V6, cut),
            ETH_P_VLAN | ETH_P_QINQ | ETH_P_QINQ_OLD1 | ETH_P_QINQ_OLD2 | ETH_P_QINQ_OLD3 => {
                // TCI (2), then the inner ethertype.
                et = be16(b, off + 2).ok_or(short(cut))?;
                off += 4;
            }
            ETH_P_MPLS_UC | ETH_P_MPLS_MC => return mpls(b, off, cut),
            ETH_P_PPPOE_SESSION => {
                // version/type (0x11), code (0 for session data), session id (2), length (2),
                // then the PPP protocol (2).
                let ver_type = *b.get(off).ok_or(short(cut))?;
                let ppp = be16(b, off + 6).ok_or(short(cut))?;
                if ver_type != 0x11 {
                    return Err(AnomalyKind::BadLinkHeader);
                }
                off += 8;
                match ppp {
                    0x0021 => return at(b, off, Net::V4, cut),
                    0x0057 => return at(b, off, Net::V6, cut),
                    0x0281 | 0x0283 => return mpls(b, off, cut),
                    _ => return Err(AnomalyKind::NotIp),
                }
            }
            0..=ETH_MAX_LEN => {
                // An 802.3 length: an LLC header follows.
                let (e, o) = snap(b, off, cut)?;
                et = e;
                off = o;
            }
            _ => return Err(AnomalyKind::NotIp),
        }
    }
    Err(AnomalyKind::BadLinkHeader)
}

/// `Ok((net, off))` when `off` is within the frame (an empty IP header is the IP decoder's
/// to judge).
fn at(b: &[u8], off: usize, net: Net, cut: bool) -> Result<(Net, usize), AnomalyKind> {
    if off <= b.len() {
        Ok((net, off))
    } else {
        Err(short(cut))
    }
}

/// An MPLS label stack at `off`: labels (4 bytes each) down to the bottom-of-stack bit.
fn mpls(b: &[u8], mut off: usize, cut: bool) -> Result<(Net, usize), AnomalyKind> {
    loop {
        let label = b.get(off..off + 4).ok_or(short(cut))?;
        off += 4;
        if label[2] & 0x01 != 0 {
            return Ok((Net::Mpls, off));
        }
    }
}

/// An 802.2 LLC header at `off`: only SNAP with an ethertype leads to IP.
fn llc(b: &[u8], off: usize, cut: bool) -> Result<(Net, usize), AnomalyKind> {
    let (et, off) = snap(b, off, cut)?;
    ethertype(b, off, et, cut)
}

/// Reads an LLC/SNAP header (AA AA 03, OUI 00-00-00 or 00-00-F8, ethertype): the ethertype and
/// the offset after it. Any other LLC frame (STP, NetBIOS, ...) is not IP.
fn snap(b: &[u8], off: usize, cut: bool) -> Result<(u16, usize), AnomalyKind> {
    let h = b.get(off..off + 8).ok_or(short(cut))?;
    match h {
        [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00 | 0xf8, t0, t1] => {
            Ok((u16::from_be_bytes([*t0, *t1]), off + 8))
        }
        _ => Err(AnomalyKind::NotIp),
    }
}

/// Radiotap "flags" field bits.
const RADIOTAP_F_DATAPAD: u8 = 0x20;
const RADIOTAP_F_BADFCS: u8 = 0x40;

/// A radiotap header at `off`, then the 802.11 frame it describes.
fn radiotap(b: &[u8], off: usize, cut: bool) -> Result<(Net, usize), AnomalyKind> {
    // version (1, 0), pad (1), length (2, little endian), present bitmap(s) (4 each)
    let version = *b.get(off).ok_or(short(cut))?;
    let len = usize::from(le16(b, off + 2).ok_or(short(cut))?);
    if version != 0 || len < 8 {
        return Err(AnomalyKind::BadLinkHeader);
    }
    let hdr = b.get(off..off + len).ok_or(short(cut))?;
    let flags = radiotap_flags(hdr).unwrap_or(0);
    if flags & RADIOTAP_F_BADFCS != 0 {
        return Err(AnomalyKind::BadFcs);
    }
    wlan(b, off + len, flags & RADIOTAP_F_DATAPAD != 0, cut)
}

/// The radiotap "flags" field (field 1, after the 8-byte, 8-aligned TSFT field 0), when
/// present. `hdr` is the whole radiotap header.
fn radiotap_flags(hdr: &[u8]) -> Option<u8> {
    let present = le32(hdr, 4)?;
    // Fields start after the chain of present words (bit 31: another word follows).
    let mut pos = 8;
    let mut word = present;
    while word & 0x8000_0000 != 0 {
        word = le32(hdr, pos)?;
        pos += 4;
    }
    if present & 0x02 == 0 {
        return None;
    }
    if present & 0x01 != 0 {
        // TSFT: u64, aligned to 8 from the start of the radiotap header.
        pos = pos.next_multiple_of(8) + 8;
    }
    hdr.get(pos).copied()
}

/// An 802.11 MAC frame at `off`: data frames only, then LLC/SNAP. `datapad`: radiotap says
/// the MAC header is padded to a multiple of 4 bytes.
fn wlan(b: &[u8], off: usize, datapad: bool, cut: bool) -> Result<(Net, usize), AnomalyKind> {
    let fc = b.get(off..off + 2).ok_or(short(cut))?;
    let (fc0, fc1) = (fc[0], fc[1]);
    let (version, ftype, subtype) = (fc0 & 0x03, (fc0 >> 2) & 0x03, fc0 >> 4);
    if version != 0 {
        return Err(AnomalyKind::BadLinkHeader);
    }
    // Management (0), control (1) and extension (3) frames carry no IP; nor do the data
    // subtypes without a body (Null, CF-Ack, CF-Poll, QoS Null, ...: subtype bit 0x4).
    if ftype != 2 || subtype & 0x04 != 0 {
        return Err(AnomalyKind::NotIp);
    }
    if fc1 & 0x40 != 0 {
        return Err(AnomalyKind::WlanProtected);
    }
    let four_addr = fc1 & 0x03 == 0x03;
    let qos = subtype & 0x08 != 0;
    let mut len = 24;
    if four_addr {
        len += 6;
    }
    if qos {
        // QoS control (2); the "order" bit on a QoS frame means an HT control field (4).
        let qos_ctl = *b.get(off + len).ok_or(short(cut))?;
        if qos_ctl & 0x80 != 0 {
            return Err(AnomalyKind::WlanAmsdu);
        }
        len += 2;
        if fc1 & 0x80 != 0 {
            len += 4;
        }
    }
    if datapad {
        len = len.next_multiple_of(4);
    }
    if b.len() < off + len {
        return Err(short(cut));
    }
    llc(b, off + len, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radiotap_flags_after_tsft_and_extended_bitmaps() {
        // present: TSFT | FLAGS | EXT, then a second word with no bits; fields start at 12,
        // TSFT aligned to 16, flags at 24.
        let mut h = vec![0u8, 0, 26, 0, 0x03, 0, 0, 0x80, 0, 0, 0, 0];
        h.resize(24, 0);
        h.push(0x20);
        h.push(0);
        assert_eq!(radiotap_flags(&h), Some(0x20));
        // Without FLAGS.
        let h = [0u8, 0, 8, 0, 0x01, 0, 0, 0];
        assert_eq!(radiotap_flags(&h), None);
        // A present-word chain running off the end.
        let h = [0u8, 0, 8, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(radiotap_flags(&h), None);
    }

    #[test]
    fn address_families() {
        assert_eq!(address_family(2), Some(Net::V4));
        for af in [24, 28, 30] {
            assert_eq!(address_family(af), Some(Net::V6));
        }
        assert_eq!(address_family(23), None);
    }

    #[test]
    fn snap_ouis() {
        let b = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        assert_eq!(snap(&b, 0, false), Ok((0x0800, 8)));
        let b = [0xaa, 0xaa, 0x03, 0, 0, 0xf8, 0x80, 0x9b];
        assert_eq!(snap(&b, 0, false), Ok((0x809b, 8)));
        let b = [0x42, 0x42, 0x03, 0, 0, 0, 0, 0];
        assert_eq!(snap(&b, 0, false), Err(AnomalyKind::NotIp));
        assert_eq!(snap(&b[..5], 0, true), Err(AnomalyKind::SnaplenCut));
        assert_eq!(snap(&b[..5], 0, false), Err(AnomalyKind::BadLinkHeader));
    }

    #[test]
    fn ppp_headers() {
        // With address and control, without, compressed protocol, non-IP, cut.
        assert_eq!(ppp(&[0xff, 0x03, 0x00, 0x21], 0, false), Ok((Net::V4, 4)));
        assert_eq!(ppp(&[0x00, 0x57], 0, false), Ok((Net::V6, 2)));
        assert_eq!(ppp(&[0x21], 0, false), Ok((Net::V4, 1)));
        assert_eq!(
            ppp(&[0xff, 0x03, 0xc0, 0x21], 0, false),
            Err(AnomalyKind::NotIp)
        );
        assert_eq!(
            ppp(&[0xff, 0x03, 0x00], 0, true),
            Err(AnomalyKind::SnaplenCut)
        );
        assert_eq!(
            ppp(&[0xff, 0x03], 0, false),
            Err(AnomalyKind::BadLinkHeader)
        );
        assert_eq!(
            ppp(&[0x02, 0x81, 0, 0, 0x01, 64, 0x45], 0, false),
            Ok((Net::Mpls, 6))
        );
        // Link type 50: PPP in HDLC framing, or Cisco HDLC.
        let b = [0x0f, 0x00, 0x08, 0x00, 0x45];
        assert_eq!(locate(LinkType(50), &b, false), Ok((Net::V4, 4)));
        assert_eq!(locate(LinkType(104), &b, false), Ok((Net::V4, 4)));
        let b = [0xff, 0x03, 0x00, 0x57, 0x60];
        assert_eq!(locate(LinkType(50), &b, false), Ok((Net::V6, 4)));
        assert_eq!(locate(LinkType(9), &b, false), Ok((Net::V6, 4)));
    }

    #[test]
    fn mpls_stack_without_bottom_runs_off_the_end() {
        let b = [0u8; 12];
        assert_eq!(mpls(&b, 0, false), Err(AnomalyKind::BadLinkHeader));
        let b = [0, 0, 0x01, 64, 0x45];
        assert_eq!(mpls(&b, 0, false), Ok((Net::Mpls, 4)));
    }
}

#[cfg(test)]
mod supported_list {
    use super::*;
    use crate::decode::decode;
    use crate::source::Frame;
    use crate::time::Timestamp;

    #[test]
    fn the_supported_list_matches_the_decoder() {
        let bytes = [0u8; 64];
        for n in 0..300u32 {
            let frame = Frame {
                ts: Timestamp::ZERO,
                link: LinkType(n),
                caplen: 64,
                wire_len: 64,
                iface: 0,
                interfaces: 1,
                bytes: &bytes,
            };
            let unsupported = decode(&frame) == Err(AnomalyKind::UnsupportedLinkType);
            assert_eq!(supports(LinkType(n)), !unsupported, "link type {n}");
        }
    }
}
