//! decode_frames tests: hand-built frames (inner packets from etherparse's `PacketBuilder`,
//! link layers by hand, a few vectors copied from the shared captures with `tcpdump -xx`)
//! through `decode`, and frames cut at every length or made of random bytes, which must never
//! make it panic.

use etherparse::PacketBuilder;
use exflow::decode::{
    decode, AnomalyKind, IcmpMessage, IcmpQuote, Packet, TcpFlags, TcpSegment, Transport,
    UdpDatagram,
};
use exflow::source::{Frame, LinkType};
use exflow::time::Timestamp;
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------------------------
// helpers

fn ok<T, E: Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

/// Decodes `bytes` as a whole frame (captured length = wire length).
fn dec(link: LinkType, bytes: &[u8]) -> Result<Packet, AnomalyKind> {
    dec_cut(link, bytes, bytes.len())
}

/// Decodes `bytes` as the captured part of a frame `wire_len` bytes long.
fn dec_cut(link: LinkType, bytes: &[u8], wire_len: usize) -> Result<Packet, AnomalyKind> {
    let frame = Frame {
        ts: Timestamp::default(),
        link,
        caplen: ok(u32::try_from(bytes.len())),
        wire_len: ok(u32::try_from(wire_len)),
        iface: 0,
        interfaces: 1,
        bytes,
    };
    decode(&frame)
}

fn packet(link: LinkType, bytes: &[u8]) -> Packet {
    ok(dec(link, bytes))
}

fn tcp(p: &Packet) -> TcpSegment {
    match p.transport {
        Transport::Tcp(t) => t,
        other => panic!("not TCP: {other:?}"),
    }
}

fn udp(p: &Packet) -> UdpDatagram {
    match p.transport {
        Transport::Udp(u) => u,
        other => panic!("not UDP: {other:?}"),
    }
}

fn icmp(p: &Packet) -> IcmpMessage {
    match p.transport {
        Transport::Icmp(i) => i,
        other => panic!("not ICMP: {other:?}"),
    }
}

/// Bytes from `tcpdump -xx`-style hex (whitespace ignored).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex digit {c}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0);
    digits.chunks(2).map(|d| d[0] << 4 | d[1]).collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [192, 0, 2, 25];
const ROUTER: [u8; 4] = [198, 51, 100, 1];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25,
];
const ROUTER6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe,
];

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

/// IPv4 TCP SYN 10.0.0.1:40000 → 192.0.2.25:443, seq 1000, ttl 64, identification 0x1234.
fn ipv4_syn() -> Vec<u8> {
    let mut v = vec![];
    ok(PacketBuilder::ipv4(CLIENT, SERVER, 64)
        .tcp(40000, 443, 1000, 64240)
        .syn()
        .write(&mut v, &[]));
    v[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    v
}

/// IPv4 TCP data segment with `n` payload bytes, ACK|PSH|ECE|CWR.
fn ipv4_data(n: usize) -> Vec<u8> {
    let mut v = vec![];
    ok(PacketBuilder::ipv4(CLIENT, SERVER, 64)
        .tcp(40000, 443, 1001, 512)
        .ack(777)
        .psh()
        .ece()
        .cwr()
        .write(&mut v, &vec![0x61; n]));
    v
}

fn ipv4_udp(n: usize) -> Vec<u8> {
    let mut v = vec![];
    ok(PacketBuilder::ipv4(CLIENT, SERVER, 64)
        .udp(5353, 53)
        .write(&mut v, &vec![0x62; n]));
    v
}

fn ipv6_syn() -> Vec<u8> {
    let mut v = vec![];
    ok(PacketBuilder::ipv6(CLIENT6, SERVER6, 60)
        .tcp(40000, 443, 1000, 64240)
        .syn()
        .write(&mut v, &[]));
    v
}

fn ipv6_data(n: usize) -> Vec<u8> {
    let mut v = vec![];
    ok(PacketBuilder::ipv6(CLIENT6, SERVER6, 60)
        .tcp(40000, 443, 5, 512)
        .ack(9)
        .write(&mut v, &vec![0x63; n]));
    v
}

const ETH_ADDRS: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];

/// Ethernet header with `ethertype`, then `rest`.
fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
    cat(&[&ETH_ADDRS, &ethertype.to_be_bytes(), rest])
}

/// A VLAN tag (TCI, then the inner ethertype).
fn tag(vid: u16, inner: u16) -> Vec<u8> {
    cat(&[&vid.to_be_bytes(), &inner.to_be_bytes()])
}

fn assert_syn(p: &Packet) {
    assert_eq!(p.src, v4(CLIENT));
    assert_eq!(p.dst, v4(SERVER));
    assert_eq!(p.ip_len, 40);
    assert_eq!(p.ttl, 64);
    assert_eq!(p.ip_id, 0x1234);
    assert!(!p.truncated);
    let t = tcp(p);
    assert_eq!((t.sport, t.dport, t.seq, t.ack), (40000, 443, 1000, 0));
    assert_eq!(t.flags, TcpFlags(TcpFlags::SYN));
    assert_eq!(t.window, 64240);
    assert_eq!(t.payload_len, 0);
}

// ---------------------------------------------------------------------------------------------
// link layers

#[test]
fn ethernet_ipv4_tcp() {
    let p = packet(LinkType::ETHERNET, &eth(0x0800, &ipv4_syn()));
    assert_syn(&p);

    let p = packet(LinkType::ETHERNET, &eth(0x0800, &ipv4_data(100)));
    assert_eq!(p.ip_len, 140);
    let t = tcp(&p);
    // CWR ECE . ACK PSH . . .
    assert_eq!(t.flags.0, 0x80 | 0x40 | TcpFlags::ACK | TcpFlags::PSH);
    assert!(t.flags.ack() && !t.flags.syn() && !t.flags.fin() && !t.flags.rst());
    assert_eq!(
        (t.seq, t.ack, t.window, t.payload_len),
        (1001, 777, 512, 100)
    );
}

#[test]
fn vlan_8021q() {
    let f = eth(0x8100, &cat(&[&tag(100, 0x0800), &ipv4_syn()]));
    assert_syn(&packet(LinkType::ETHERNET, &f));
}

#[test]
fn qinq_8021ad_and_old_9100() {
    for outer in [0x88a8u16, 0x9100, 0x8100] {
        let f = eth(
            outer,
            &cat(&[&tag(13, 0x8100), &tag(10, 0x0800), &ipv4_syn()]),
        );
        assert_syn(&packet(LinkType::ETHERNET, &f));
    }
}

#[test]
fn qinq_capture_frame() {
    // zeek/q-in-q.pcap frame 1: vlan 13, vlan 10, UDP 47808 → 47808, 18 bytes, in a 68-byte
    // frame (46-byte IP packet).
    let f = hex("ffff ffff ffff 00c0 e401 2ced 8100 000d
        8100 000a 0800 4500 002e 4796 0000 4011
        749e ac13 3325 ac13 333f bac0 bac0 001a
        b9da 810b 0012 0120 ffff 00ff 1008 0a1b
        591a 1b59");
    let p = packet(LinkType::ETHERNET, &f);
    assert_eq!(p.src, v4([172, 19, 51, 37]));
    assert_eq!(p.dst, v4([172, 19, 51, 63]));
    assert_eq!((p.ip_len, p.ip_id), (46, 0x4796));
    let u = udp(&p);
    assert_eq!((u.sport, u.dport, u.payload_len), (47808, 47808, 18));
}

fn mpls_label(label: u32, bottom: bool) -> [u8; 4] {
    (label << 12 | u32::from(bottom) << 8 | 64).to_be_bytes()
}

#[test]
fn mpls_two_labels() {
    let f = eth(
        0x8847,
        &cat(&[&mpls_label(16, false), &mpls_label(17, true), &ipv4_syn()]),
    );
    assert_syn(&packet(LinkType::ETHERNET, &f));

    let f = eth(
        0x8848,
        &cat(&[&mpls_label(16, false), &mpls_label(17, true), &ipv6_syn()]),
    );
    let p = packet(LinkType::ETHERNET, &f);
    assert_eq!((p.src, p.ip_len, p.ttl), (v6(CLIENT6), 60, 60));

    // Below the labels, something that is not IP (an Ethernet pseudowire control word).
    let f = eth(
        0x8847,
        &cat(&[
            &mpls_label(16, true),
            &[0, 0, 0, 0],
            &eth(0x0800, &ipv4_syn()),
        ]),
    );
    assert_eq!(dec(LinkType::ETHERNET, &f), Err(AnomalyKind::NotIp));
}

#[test]
fn mpls_inside_vlan() {
    let f = eth(
        0x8100,
        &cat(&[&tag(7, 0x8847), &mpls_label(16, true), &ipv4_syn()]),
    );
    assert_syn(&packet(LinkType::ETHERNET, &f));
}

fn pppoe(ppp_proto: u16, ip: &[u8]) -> Vec<u8> {
    let len = ok(u16::try_from(ip.len() + 2));
    cat(&[
        &[0x11, 0x00, 0x0f, 0x07],
        &len.to_be_bytes(),
        &ppp_proto.to_be_bytes(),
        ip,
    ])
}

#[test]
fn pppoe_over_qinq() {
    // zeek/pppoe-over-qinq.pcap frame 1: vlan 3704, vlan 2474, PPPoE session 0xf07, IPv4 SYN.
    let f = hex("0000 0000 0001 0000 0000 0000 8100 0e78
        8100 09aa 8864 1100 0f07 0042 0021 4500
        0040 0000 4000 3f06 35b3 0101 0101 0202
        0202 4faa 01bb d7a8 4155 0000 0000 b002
        ffff eced 0000 0204 05a0 0103 0306 0101
        080a 012d d88c 0000 0000 0402 0000");
    let p = packet(LinkType::ETHERNET, &f);
    assert_eq!((p.src, p.dst), (v4([1, 1, 1, 1]), v4([2, 2, 2, 2])));
    assert_eq!((p.ip_len, p.ttl), (64, 63));
    let t = tcp(&p);
    assert_eq!((t.sport, t.dport, t.seq), (20394, 443, 3618128213));
    assert_eq!(
        (t.flags.0, t.window, t.payload_len),
        (TcpFlags::SYN, 65535, 0)
    );

    // Built by hand, IPv4 and IPv6, with 802.1ad outside.
    let f = eth(
        0x88a8,
        &cat(&[
            &tag(3704, 0x8100),
            &tag(2474, 0x8864),
            &pppoe(0x0021, &ipv4_syn()),
        ]),
    );
    assert_syn(&packet(LinkType::ETHERNET, &f));
    let f = eth(
        0x88a8,
        &cat(&[
            &tag(3704, 0x8100),
            &tag(2474, 0x8864),
            &pppoe(0x0057, &ipv6_syn()),
        ]),
    );
    assert_eq!(packet(LinkType::ETHERNET, &f).src, v6(CLIENT6));
    // PPP control protocols (LCP) are not IP.
    let f = eth(0x8864, &pppoe(0xc021, &[1, 1, 0, 4]));
    assert_eq!(dec(LinkType::ETHERNET, &f), Err(AnomalyKind::NotIp));
    // PPPoE discovery is not IP either.
    assert_eq!(
        dec(LinkType::ETHERNET, &eth(0x8863, &[0x11, 0x09, 0, 0, 0, 0])),
        Err(AnomalyKind::NotIp)
    );
}

#[test]
fn llc_snap_in_8023_frame() {
    let ip = ipv4_syn();
    let len = ok(u16::try_from(ip.len() + 8));
    let f = eth(len, &cat(&[&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00], &ip]));
    assert_syn(&packet(LinkType::ETHERNET, &f));
    // Spanning tree (LLC 42 42 03) is not IP.
    let f = eth(38, &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
    assert_eq!(dec(LinkType::ETHERNET, &f), Err(AnomalyKind::NotIp));
}

/// A Linux SLL header: packet type, ARPHRD type, address, protocol.
fn sll(arphrd: u16, proto: u16) -> Vec<u8> {
    cat(&[
        &[0, 4],
        &arphrd.to_be_bytes(),
        &[0, 6, 0x34, 0xe6, 0xd7, 0x12, 0x1e, 0xb1, 0, 0],
        &proto.to_be_bytes(),
    ])
}

fn sll2(arphrd: u16, proto: u16) -> Vec<u8> {
    cat(&[
        &proto.to_be_bytes(),
        &[0, 0, 0, 0, 0, 2],
        &arphrd.to_be_bytes(),
        &[4, 6, 0xfa, 0x37, 0xdc, 0x8d, 0xaf, 0xab, 0, 0],
    ])
}

#[test]
fn linux_sll() {
    // zeek/tls_irc-starttls.pcap frame 1.
    let f = hex("0004 0001 0006 34e6 d712 1eb1 0000 0800
        4500 003c 9cc4 4000 4006 247c cb8f a82f
        b912 4caa d753 1a0b 435b 2faf 0000 0000
        a002 7210 79aa 0000 0204 05b4 0402 080a
        0033 b36b 0000 0000 0103 0307");
    let p = packet(LinkType::LINUX_SLL, &f);
    assert_eq!(
        (p.src, p.dst),
        (v4([203, 143, 168, 47]), v4([185, 18, 76, 170]))
    );
    let t = tcp(&p);
    assert_eq!(
        (t.sport, t.dport, t.seq, t.flags.0),
        (55123, 6667, 1130049455, 2)
    );

    // Loopback (772), tun (ARPHRD_NONE 0xfffe) and PPP (512) all carry an ethertype.
    for arphrd in [1u16, 772, 0xfffe, 512, 778] {
        assert_syn(&packet(
            LinkType::LINUX_SLL,
            &cat(&[&sll(arphrd, 0x0800), &ipv4_syn()]),
        ));
    }
    // A VLAN tag libpcap put back in front of the payload.
    let f = cat(&[&sll(1, 0x8100), &tag(5, 0x0800), &ipv4_syn()]);
    assert_syn(&packet(LinkType::LINUX_SLL, &f));
    // Netlink and CAN are not IP.
    let f = cat(&[&sll(824, 0x0000), &[0; 16]]);
    assert_eq!(dec(LinkType::LINUX_SLL, &f), Err(AnomalyKind::NotIp));
    let f = cat(&[&sll(280, 0x000c), &[0; 16]]);
    assert_eq!(dec(LinkType::LINUX_SLL, &f), Err(AnomalyKind::NotIp));
    // ARP.
    let f = cat(&[&sll(1, 0x0806), &[0; 28]]);
    assert_eq!(dec(LinkType::LINUX_SLL, &f), Err(AnomalyKind::NotIp));
}

#[test]
fn linux_sll2() {
    // zeek/tls_openjdk-25.0.2-zeek.org.pcap frame 1.
    let f = hex("0800 0000 0000 0002 0001 0406 fa37 dc8d
        afab 0000 4500 003c 7ba7 4000 4006 afcf
        c0a8 4006 c000 4e96 d712 01bb 3a10 e02e
        0000 0000 a002 faf0 3488 0000 0204 05b4
        0402 080a 9c3b 79f9 0000 0000 0103 0307");
    let p = packet(LinkType::LINUX_SLL2, &f);
    assert_eq!(
        (p.src, p.dst),
        (v4([192, 168, 64, 6]), v4([192, 0, 78, 150]))
    );
    let t = tcp(&p);
    assert_eq!((t.sport, t.dport, t.seq), (55058, 443, 974184494));

    assert_syn(&packet(
        LinkType::LINUX_SLL2,
        &cat(&[&sll2(772, 0x0800), &ipv4_syn()]),
    ));
    let p = packet(LinkType::LINUX_SLL2, &cat(&[&sll2(1, 0x86dd), &ipv6_syn()]));
    assert_eq!(p.dst, v6(SERVER6));
    let f = cat(&[&sll2(1, 0x8100), &tag(5, 0x0800), &ipv4_syn()]);
    assert_syn(&packet(LinkType::LINUX_SLL2, &f));
    // The 20-byte header cut short.
    assert_eq!(
        dec(LinkType::LINUX_SLL2, &sll2(1, 0x0800)[..19]),
        Err(AnomalyKind::BadLinkHeader)
    );
}

#[test]
fn bsd_null_both_byte_orders() {
    for af in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        assert_syn(&packet(LinkType::NULL, &cat(&[&af, &ipv4_syn()])));
    }
    for af in [24u32, 28, 30] {
        for b in [af.to_le_bytes(), af.to_be_bytes()] {
            let p = packet(LinkType::NULL, &cat(&[&b, &ipv6_syn()]));
            assert_eq!(p.src, v6(CLIENT6));
        }
    }
    // AF_APPLETALK.
    let f = cat(&[&16u32.to_le_bytes(), &ipv4_syn()]);
    assert_eq!(dec(LinkType::NULL, &f), Err(AnomalyKind::NotIp));
}

#[test]
fn openbsd_loop() {
    assert_syn(&packet(
        LinkType::LOOP,
        &cat(&[&2u32.to_be_bytes(), &ipv4_syn()]),
    ));
    let p = packet(LinkType::LOOP, &cat(&[&24u32.to_be_bytes(), &ipv6_syn()]));
    assert_eq!(p.dst, v6(SERVER6));
    // LOOP is network byte order only.
    let f = cat(&[&2u32.to_le_bytes(), &ipv4_syn()]);
    assert_eq!(dec(LinkType::LOOP, &f), Err(AnomalyKind::NotIp));
}

#[test]
fn raw_ipv4_and_ipv6() {
    for link in [LinkType::RAW, LinkType(12), LinkType(14), LinkType::IPV4] {
        assert_syn(&packet(link, &ipv4_syn()));
    }
    for link in [LinkType::RAW, LinkType(12), LinkType(14), LinkType::IPV6] {
        let p = packet(link, &ipv6_data(10));
        assert_eq!(
            (p.src, p.dst, p.ip_len, p.ttl, p.ip_id),
            (v6(CLIENT6), v6(SERVER6), 70, 60, 0)
        );
        let t = tcp(&p);
        assert_eq!((t.seq, t.ack, t.payload_len), (5, 9, 10));
    }
    // The link type says which version: a v6 packet on LINKTYPE_IPV4 is a bad header.
    assert_eq!(
        dec(LinkType::IPV4, &ipv6_syn()),
        Err(AnomalyKind::BadIpv4Header)
    );
    assert_eq!(
        dec(LinkType::IPV6, &ipv4_syn()),
        Err(AnomalyKind::BadIpv6Header)
    );
    let mut f = ipv4_syn();
    f[0] = 0x55;
    assert_eq!(
        dec(LinkType::RAW, &f),
        Err(AnomalyKind::UnsupportedIpVersion)
    );
    assert_eq!(
        dec(LinkType::RAW, &[]),
        Err(AnomalyKind::UnsupportedIpVersion)
    );
    assert_eq!(
        dec(LinkType(147), &f),
        Err(AnomalyKind::UnsupportedLinkType)
    );
}

// ---------------------------------------------------------------------------------------------
// 802.11

/// A radiotap header with TSFT and flags.
fn radiotap(flags: u8) -> Vec<u8> {
    let mut h = vec![0, 0, 17, 0, 0x03, 0, 0, 0];
    h.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    h.push(flags);
    h
}

const LLC_IPV4: [u8; 8] = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];

/// An 802.11 data frame header: `subtype`, flags byte, 4-address, QoS control.
fn wlan_hdr(subtype: u8, fc1: u8, qos_ctl: u8) -> Vec<u8> {
    let mut h = vec![0x08 | subtype << 4, fc1, 0x2c, 0x00];
    h.extend_from_slice(&[0x11; 18]); // 3 addresses
    h.extend_from_slice(&[0x10, 0x00]); // sequence control
    if fc1 & 0x03 == 0x03 {
        h.extend_from_slice(&[0x22; 6]);
    }
    if subtype & 0x08 != 0 {
        h.extend_from_slice(&[qos_ctl, 0]);
        if fc1 & 0x80 != 0 {
            h.extend_from_slice(&[0; 4]);
        }
    }
    h
}

#[test]
fn radiotap_qos_data_capture_frame() {
    // zeek/radiotap.pcap frame 1: radiotap (48 bytes, FCS at end), QoS data, LLC/SNAP, IPv4
    // UDP 61738 → 53.
    let f = hex("0000 3000 6b08 1c00 e161 5656 0000 0000
        1000 a415 4001 b6a3 014e 3497 4001 0100
        a415 6c22 1f01 0700 0100 0000 0000 0000
        8801 2c00 8a15 149b 5ae0 9072 4097 b6f5
        442b 03aa ab8d 1000 0600 aaaa 0300 0000
        0800 4500 003f d68d 0000 4011 aea2 ac11
        9c4c d043 dcdc f12a 0035 002b c5df a72f
        0100 0001 0000 0000 0000 0763 6170 7469
        7665 0561 7070 6c65 0363 6f6d 0000 0100
        0103 12c6 a7");
    let p = packet(LinkType::IEEE802_11_RADIOTAP, &f);
    assert_eq!(
        (p.src, p.dst),
        (v4([172, 17, 156, 76]), v4([208, 67, 220, 220]))
    );
    assert_eq!((p.ip_len, p.ttl, p.ip_id), (63, 64, 0xd68d));
    let u = udp(&p);
    // The FCS after the packet does not count.
    assert_eq!((u.sport, u.dport, u.payload_len), (61738, 53, 35));
}

#[test]
fn radiotap_80211_variants() {
    let ip = ipv4_syn();
    let rt = radiotap(0);
    // Plain data, QoS data, 4-address QoS data with HT control.
    for (subtype, fc1) in [(0u8, 0x01u8), (8, 0x02), (8, 0x03 | 0x80), (0, 0x03 | 0x80)] {
        let f = cat(&[&rt, &wlan_hdr(subtype, fc1, 0), &LLC_IPV4, &ip]);
        assert_syn(&packet(LinkType::IEEE802_11_RADIOTAP, &f));
        // The same without radiotap.
        let f = cat(&[&wlan_hdr(subtype, fc1, 0), &LLC_IPV4, &ip]);
        assert_syn(&packet(LinkType::IEEE802_11, &f));
    }
    // Data padding: the 26-byte QoS header padded to 28.
    let f = cat(&[
        &radiotap(0x20),
        &wlan_hdr(8, 0x01, 0),
        &[0, 0],
        &LLC_IPV4,
        &ip,
    ]);
    assert_syn(&packet(LinkType::IEEE802_11_RADIOTAP, &f));
    // Bad FCS.
    let f = cat(&[&radiotap(0x40), &wlan_hdr(8, 0x01, 0), &LLC_IPV4, &ip]);
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &f),
        Err(AnomalyKind::BadFcs)
    );
    // Protected.
    let f = cat(&[&rt, &wlan_hdr(8, 0x41, 0), &[0; 8], &ip]);
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &f),
        Err(AnomalyKind::WlanProtected)
    );
    // A-MSDU.
    let f = cat(&[&rt, &wlan_hdr(8, 0x01, 0x80), &[0; 14], &LLC_IPV4, &ip]);
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &f),
        Err(AnomalyKind::WlanAmsdu)
    );
    // QoS Null (no body), a beacon (management), an ACK (control).
    let f = cat(&[&rt, &wlan_hdr(12, 0x01, 0)]);
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &f),
        Err(AnomalyKind::NotIp)
    );
    let f = cat(&[&rt, &[0x80, 0], &[0; 40]]);
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &f),
        Err(AnomalyKind::NotIp)
    );
    let f = cat(&[&rt, &[0xd4, 0], &[0; 8]]);
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &f),
        Err(AnomalyKind::NotIp)
    );
    // EAPOL inside a data frame.
    let f = cat(&[
        &rt,
        &wlan_hdr(8, 0x01, 0),
        &[0xaa, 0xaa, 3, 0, 0, 0, 0x88, 0x8e],
        &[0; 20],
    ]);
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &f),
        Err(AnomalyKind::NotIp)
    );
    // Radiotap length past the frame.
    assert_eq!(
        dec(LinkType::IEEE802_11_RADIOTAP, &[0, 0, 64, 0, 0, 0, 0, 0]),
        Err(AnomalyKind::BadLinkHeader)
    );
    // 802.11 in Linux cooked capture (ARPHRD_IEEE80211_RADIOTAP).
    let f = cat(&[
        &sll(803, 0x0003),
        &rt,
        &wlan_hdr(8, 0x01, 0),
        &LLC_IPV4,
        &ip,
    ]);
    assert_syn(&packet(LinkType::LINUX_SLL, &f));
}

// ---------------------------------------------------------------------------------------------
// IP

/// Inserts IPv6 extension headers (each given with a placeholder next-header byte) after the
/// fixed header of `pkt`, chaining next headers and fixing the payload length.
fn with_v6_exts(pkt: &[u8], exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let (fixed, upper) = pkt.split_at(40);
    let mut out = fixed.to_vec();
    let upper_proto = fixed[6];
    let mut next = upper_proto;
    let mut chain = vec![];
    for (kind, body) in exts.iter().rev() {
        let mut h = body.clone();
        h[0] = next;
        chain.insert(0, h);
        next = *kind;
    }
    out[6] = next;
    for h in &chain {
        out.extend_from_slice(h);
    }
    out.extend_from_slice(upper);
    let payload = ok(u16::try_from(out.len() - 40));
    out[4..6].copy_from_slice(&payload.to_be_bytes());
    out
}

#[test]
fn ipv6_hop_by_hop_and_destination_options() {
    let hbh = vec![0, 0, 1, 4, 0, 0, 0, 0]; // PadN
    let dst = vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // 16 bytes, PadN
    let pkt = with_v6_exts(&ipv6_data(100), &[(0, hbh.clone()), (60, dst.clone())]);
    let p = packet(LinkType::ETHERNET, &eth(0x86dd, &pkt));
    assert_eq!(p.ip_len, 40 + 8 + 16 + 20 + 100);
    assert_eq!((p.src, p.dst, p.ttl), (v6(CLIENT6), v6(SERVER6), 60));
    let t = tcp(&p);
    assert_eq!((t.sport, t.dport, t.payload_len), (40000, 443, 100));

    // Routing header and a first fragment (offset 0, more fragments) decode too.
    let rh = vec![0, 0, 0, 0, 0, 0, 0, 0];
    let frag = vec![0, 0, 0, 1, 0, 0, 0, 42];
    let pkt = with_v6_exts(&ipv6_data(30), &[(0, hbh), (43, rh), (44, frag), (60, dst)]);
    let p = packet(LinkType::RAW, &pkt);
    assert_eq!(tcp(&p).payload_len, 30);

    // A hop-by-hop header that is not first is malformed.
    let pkt = with_v6_exts(&ipv6_syn(), &[(60, vec![0; 8]), (0, vec![0; 8])]);
    assert_eq!(dec(LinkType::RAW, &pkt), Err(AnomalyKind::BadIpv6Header));
    // An extension header running past the payload length.
    let mut pkt = with_v6_exts(&ipv6_syn(), &[(60, vec![0, 8, 0, 0, 0, 0, 0, 0])]);
    pkt.extend_from_slice(&[0; 64]);
    assert_eq!(dec(LinkType::RAW, &pkt), Err(AnomalyKind::BadIpv6Header));
}

#[test]
fn ipv6_later_fragment() {
    let frag = vec![0, 0, 0x05, 0xa9, 0, 0, 0, 42]; // offset 181*8, more fragments
    let pkt = with_v6_exts(&ipv6_data(30), &[(44, frag)]);
    assert_eq!(dec(LinkType::RAW, &pkt), Err(AnomalyKind::IpFragment));
    // A later fragment whose data after the fragment header looks like a broken extension
    // header is still just a fragment.
    let mut frag = vec![60, 0, 0x05, 0xa8, 0, 0, 0, 42];
    frag.extend_from_slice(&[6, 200, 0, 0]);
    let mut pkt = ipv6_syn()[..40].to_vec();
    pkt[6] = 44;
    pkt[4..6].copy_from_slice(&12u16.to_be_bytes());
    pkt.extend_from_slice(&frag);
    assert_eq!(dec(LinkType::RAW, &pkt), Err(AnomalyKind::IpFragment));
}

#[test]
fn ipv6_jumbo_payload() {
    // tcpdump/bigtcp-ipv6-hbh.pcap: BIG TCP, payload length 0, hop-by-hop jumbo 80040; only
    // the first 96 of its 80094 bytes kept.
    let f = hex("0600 dead beef b8ce f604 8b14 86dd 600a
        31ee 0000 0040 2604 1380 4091 ce00 0000
        0000 0000 000d 2604 1380 4091 ce00 0000
        0000 0000 000b 0600 c204 0001 38a8 a37b
        ab89 2355 b912 95c7 c029 8018 0850 c8eb
        0000 0101 080a 46bd be60 fc8c fa38 6e65");
    let p = ok(dec_cut(LinkType::ETHERNET, &f, 80094));
    assert_eq!(p.ip_len, 80080);
    assert!(p.truncated);
    let t = tcp(&p);
    assert_eq!(
        (t.sport, t.dport, t.seq, t.payload_len),
        (41851, 43913, 592820498, 80000)
    );

    // A whole jumbogram, built by hand.
    let tcp_hdr = &ipv6_syn()[40..];
    let payload = vec![0u8; 70_000];
    let jumbo = ok(u32::try_from(8 + tcp_hdr.len() + payload.len()));
    let mut pkt = ipv6_syn()[..40].to_vec();
    pkt[4..7].copy_from_slice(&[0, 0, 0]);
    pkt.extend_from_slice(&[6, 0, 0xc2, 4]);
    pkt.extend_from_slice(&jumbo.to_be_bytes());
    pkt.extend_from_slice(tcp_hdr);
    pkt.extend_from_slice(&payload);
    let p = packet(LinkType::RAW, &pkt);
    assert_eq!(p.ip_len, 40 + jumbo);
    assert!(!p.truncated);
    assert_eq!(tcp(&p).payload_len, 70_000);

    // Payload length 0 without a jumbo option (BIG TCP as recent Linux captures it): the
    // wire length gives the size.
    let mut pkt = ipv6_data(0);
    pkt.resize(pkt.len() + 70_000, 0x63);
    pkt[4..6].copy_from_slice(&[0, 0]);
    let p = packet(LinkType::RAW, &pkt);
    assert_eq!((p.ip_len, tcp(&p).payload_len), (70_060, 70_000));
}

#[test]
fn ipv4_tso_total_length_zero() {
    let mut pkt = ipv4_data(3000);
    pkt[2..4].copy_from_slice(&[0, 0]);
    let f = eth(0x0800, &pkt);
    let p = packet(LinkType::ETHERNET, &f);
    assert_eq!((p.ip_len, tcp(&p).payload_len), (3040, 3000));
    assert!(!p.truncated);
    // Cut by the snap length: the wire length still gives the size.
    let p = ok(dec_cut(LinkType::ETHERNET, &f[..200], f.len()));
    assert_eq!((p.ip_len, tcp(&p).payload_len), (3040, 3000));
    assert!(p.truncated);
}

#[test]
fn ipv4_options_and_bad_headers() {
    // IHL 6 (one option word): built by hand from a plain SYN.
    let syn = ipv4_syn();
    let mut pkt = syn[..20].to_vec();
    pkt[0] = 0x46;
    pkt[2..4].copy_from_slice(&44u16.to_be_bytes());
    pkt.extend_from_slice(&[1, 1, 1, 0]);
    pkt.extend_from_slice(&syn[20..]);
    let p = packet(LinkType::RAW, &pkt);
    assert_eq!((p.ip_len, tcp(&p).seq), (44, 1000));

    // IHL < 5, and a total length shorter than the header.
    let mut pkt = ipv4_syn();
    pkt[0] = 0x44;
    assert_eq!(dec(LinkType::IPV4, &pkt), Err(AnomalyKind::BadIpv4Header));
    let mut pkt = ipv4_syn();
    pkt[2..4].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(dec(LinkType::IPV4, &pkt), Err(AnomalyKind::BadIpv4Header));
}

#[test]
fn ipv4_later_fragment() {
    let mut pkt = ipv4_data(100);
    // offset 185 (×8 bytes), no more fragments
    pkt[6..8].copy_from_slice(&185u16.to_be_bytes());
    assert_eq!(
        dec(LinkType::ETHERNET, &eth(0x0800, &pkt)),
        Err(AnomalyKind::IpFragment)
    );

    // The first fragment decodes, with lengths from its own header.
    let mut pkt = ipv4_data(1000);
    pkt[6] = 0x20; // more fragments, offset 0
    let p = packet(LinkType::ETHERNET, &eth(0x0800, &pkt));
    assert_eq!((p.ip_len, tcp(&p).payload_len), (1040, 1000));
}

#[test]
fn other_ip_protocols() {
    let mut v = vec![];
    ok(PacketBuilder::ipv4(CLIENT, SERVER, 64).write(&mut v, etherparse::ip_number::GRE, &[0; 24]));
    assert_eq!(
        packet(LinkType::RAW, &v).transport,
        Transport::Other { proto: 47 }
    );
    let mut v = vec![];
    ok(PacketBuilder::ipv6(CLIENT6, SERVER6, 64).write(
        &mut v,
        etherparse::ip_number::IPV6_NO_NEXT_HEADER,
        &[],
    ));
    let p = packet(LinkType::RAW, &v);
    assert_eq!(
        (p.ip_len, p.transport),
        (40, Transport::Other { proto: 59 })
    );
    // ESP after an authentication header.
    let ah = [
        50u8, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut v = vec![];
    ok(PacketBuilder::ipv4(CLIENT, SERVER, 64).write(
        &mut v,
        etherparse::ip_number::AUTHENTICATION_HEADER,
        &cat(&[&ah, &[0; 16]]),
    ));
    assert_eq!(
        packet(LinkType::RAW, &v).transport,
        Transport::Other { proto: 50 }
    );
}

// ---------------------------------------------------------------------------------------------
// transport

#[test]
fn tcp_bad_data_offset() {
    let mut pkt = ipv4_syn();
    pkt[20 + 12] = 0x40; // data offset 4
    assert_eq!(dec(LinkType::RAW, &pkt), Err(AnomalyKind::BadTcpHeader));
    let mut pkt = ipv4_syn();
    pkt[20 + 12] = 0xf0; // 60 bytes, beyond the 20-byte IP payload
    assert_eq!(dec(LinkType::RAW, &pkt), Err(AnomalyKind::BadTcpHeader));
}

#[test]
fn udp_length_from_ip_header() {
    let mut pkt = ipv4_udp(20);
    pkt[24..26].copy_from_slice(&9999u16.to_be_bytes()); // a wrong UDP length field
    let u = udp(&packet(LinkType::RAW, &pkt));
    assert_eq!((u.sport, u.dport, u.payload_len), (5353, 53, 20));
    // An IP payload too short for a UDP header.
    let mut pkt = ipv4_udp(0);
    pkt[2..4].copy_from_slice(&26u16.to_be_bytes());
    assert_eq!(dec(LinkType::RAW, &pkt), Err(AnomalyKind::BadUdpHeader));
}

#[test]
fn icmp_echo_ids() {
    let mut v = vec![];
    ok(PacketBuilder::ipv4(CLIENT, SERVER, 64)
        .icmpv4_echo_request(0xbeef, 1)
        .write(&mut v, &[0; 56]));
    let i = icmp(&packet(LinkType::RAW, &v));
    assert_eq!(
        (i.v6, i.icmp_type, i.code, i.echo_id, i.payload_len),
        (false, 8, 0, Some(0xbeef), 56)
    );
    assert!(!i.is_error() && i.quote.is_none());

    let mut v = vec![];
    ok(PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .icmpv6_echo_reply(0xcafe, 1)
        .write(&mut v, &[0; 8]));
    let i = icmp(&packet(LinkType::RAW, &v));
    assert_eq!(
        (i.v6, i.icmp_type, i.echo_id, i.payload_len),
        (true, 129, Some(0xcafe), 8)
    );
}

/// An ICMPv4 error from the router to the client quoting `quoted` (cut to IP header + 8).
fn icmp4_error(icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut v = vec![];
    ok(PacketBuilder::ipv4(ROUTER, CLIENT, 250)
        .icmpv4_raw(icmp_type, code, [0; 4])
        .write(&mut v, quoted));
    v
}

#[test]
fn icmp_unreachable_quoting_tcp_syn() {
    let syn = ipv4_syn();
    for (icmp_type, code) in [(3u8, 3u8), (3, 13), (11, 0)] {
        let f = eth(0x0800, &icmp4_error(icmp_type, code, &syn[..28]));
        let p = packet(LinkType::ETHERNET, &f);
        assert_eq!((p.src, p.dst, p.ttl), (v4(ROUTER), v4(CLIENT), 250));
        let i = icmp(&p);
        assert_eq!(
            (i.v6, i.icmp_type, i.code, i.echo_id),
            (false, icmp_type, code, None)
        );
        assert!(i.is_error());
        assert_eq!(i.payload_len, 28);
        assert_eq!(
            i.quote,
            Some(IcmpQuote {
                src: v4(CLIENT),
                dst: v4(SERVER),
                proto: 6,
                sport: 40000,
                dport: 443,
                tcp_seq: Some(1000),
            })
        );
    }
    // The whole SYN quoted (RFC 1812 routers quote as much as fits).
    let i = icmp(&packet(LinkType::RAW, &icmp4_error(3, 13, &syn)));
    assert_eq!(
        i.quote.map(|q| (q.sport, q.tcp_seq)),
        Some((40000, Some(1000)))
    );
    // Only the ports quoted: no sequence number.
    let i = icmp(&packet(LinkType::RAW, &icmp4_error(3, 3, &syn[..24])));
    assert_eq!(i.quote.map(|q| (q.dport, q.tcp_seq)), Some((443, None)));
    // Not even the ports: no quote, but the message itself decodes.
    let i = icmp(&packet(LinkType::RAW, &icmp4_error(3, 3, &syn[..22])));
    assert_eq!((i.code, i.quote), (3, None));
    // A quoted UDP datagram.
    let i = icmp(&packet(
        LinkType::RAW,
        &icmp4_error(3, 3, &ipv4_udp(10)[..28]),
    ));
    assert_eq!(
        i.quote.map(|q| (q.proto, q.sport, q.dport, q.tcp_seq)),
        Some((17, 5353, 53, None))
    );
    // An ICMP message too short for its header.
    let mut v = icmp4_error(3, 3, &[]);
    v[2..4].copy_from_slice(&26u16.to_be_bytes());
    assert_eq!(
        dec(LinkType::RAW, &v[..26]),
        Err(AnomalyKind::BadIcmpHeader)
    );
}

#[test]
fn icmpv6_unreachable_quoting_tcp() {
    let syn = ipv6_syn();
    let mut v = vec![];
    ok(PacketBuilder::ipv6(ROUTER6, CLIENT6, 255)
        .icmpv6_raw(1, 1, [0; 4])
        .write(&mut v, &syn[..48]));
    let p = packet(LinkType::ETHERNET, &eth(0x86dd, &v));
    assert_eq!(
        (p.src, p.dst, p.ip_len),
        (v6(ROUTER6), v6(CLIENT6), 40 + 8 + 48)
    );
    let i = icmp(&p);
    assert_eq!((i.v6, i.icmp_type, i.code, i.payload_len), (true, 1, 1, 48));
    assert!(i.is_error());
    assert_eq!(
        i.quote,
        Some(IcmpQuote {
            src: v6(CLIENT6),
            dst: v6(SERVER6),
            proto: 6,
            sport: 40000,
            dport: 443,
            tcp_seq: Some(1000),
        })
    );
    // Packet too big quoting the same, with a hop-by-hop header in the quote.
    let quoted = with_v6_exts(&syn, &[(0, vec![0, 0, 1, 4, 0, 0, 0, 0])]);
    let mut v = vec![];
    ok(PacketBuilder::ipv6(ROUTER6, CLIENT6, 255)
        .icmpv6_raw(2, 0, 1280u32.to_be_bytes())
        .write(&mut v, &quoted[..56]));
    let i = icmp(&packet(LinkType::RAW, &v));
    assert_eq!(
        i.quote.map(|q| (q.proto, q.sport, q.tcp_seq)),
        Some((6, 40000, Some(1000)))
    );
}

// ---------------------------------------------------------------------------------------------
// lengths and truncation

#[test]
fn snaplen_cut_frame() {
    let f = eth(0x0800, &ipv4_data(1000));
    // Cut after the TCP header: the payload length still comes from the IP header.
    let p = ok(dec_cut(LinkType::ETHERNET, &f[..54 + 10], f.len()));
    assert!(p.truncated);
    assert_eq!((p.ip_len, tcp(&p).payload_len), (1040, 1000));
    // Cut inside the TCP header, and inside the IP header.
    assert_eq!(
        dec_cut(LinkType::ETHERNET, &f[..50], f.len()),
        Err(AnomalyKind::SnaplenCut)
    );
    assert_eq!(
        dec_cut(LinkType::ETHERNET, &f[..30], f.len()),
        Err(AnomalyKind::SnaplenCut)
    );
    assert_eq!(
        dec_cut(LinkType::ETHERNET, &f[..10], f.len()),
        Err(AnomalyKind::SnaplenCut)
    );
    // The same bytes, not cut by a snap length, are malformed.
    assert_eq!(
        dec(LinkType::ETHERNET, &f[..50]),
        Err(AnomalyKind::BadTcpHeader)
    );
    assert_eq!(
        dec(LinkType::ETHERNET, &f[..30]),
        Err(AnomalyKind::BadIpv4Header)
    );
    assert_eq!(
        dec(LinkType::ETHERNET, &f[..10]),
        Err(AnomalyKind::BadLinkHeader)
    );
    // An IP length beyond the captured bytes, without a snap-length cut: truncated, lengths
    // from the header.
    let p = packet(LinkType::ETHERNET, &f[..64]);
    assert!(p.truncated);
    assert_eq!(tcp(&p).payload_len, 1000);
    // TCP options cut: the fixed header is enough.
    let mut v = vec![];
    let b = ok(PacketBuilder::ipv4(CLIENT, SERVER, 64)
        .tcp(40000, 443, 1000, 64240)
        .syn()
        .options_raw(&[2, 4, 5, 0xb4, 1, 3, 3, 7]));
    ok(b.write(&mut v, &[]));
    let f = eth(0x0800, &v);
    let p = ok(dec_cut(LinkType::ETHERNET, &f[..54], f.len()));
    assert!(p.truncated);
    assert_eq!((tcp(&p).seq, tcp(&p).payload_len), (1000, 0));
}

#[test]
fn ethernet_padding_not_counted() {
    let mut f = eth(0x0800, &ipv4_udp(4));
    assert_eq!(f.len(), 46);
    f.resize(60, 0);
    let p = packet(LinkType::ETHERNET, &f);
    assert_eq!((p.ip_len, udp(&p).payload_len), (32, 4));
    assert!(!p.truncated);

    let mut f = eth(0x0800, &ipv4_data(0));
    f.resize(60, 0xff);
    let p = packet(LinkType::ETHERNET, &f);
    assert_eq!((p.ip_len, tcp(&p).payload_len), (40, 0));

    let mut f = eth(0x86dd, &ipv6_data(2));
    f.resize(f.len() + 7, 0);
    let p = packet(LinkType::ETHERNET, &f);
    assert_eq!((p.ip_len, tcp(&p).payload_len), (62, 2));
}

#[test]
fn arp_and_lldp_are_not_ip() {
    let arp = hex("0001 0800 0604 0001 00c0 e401 2ced 8002 2ee3 0000 0000 0000 8002 2e94");
    assert_eq!(
        dec(LinkType::ETHERNET, &eth(0x0806, &arp)),
        Err(AnomalyKind::NotIp)
    );
    let f = eth(0x8100, &cat(&[&tag(13, 0x0806), &arp]));
    assert_eq!(dec(LinkType::ETHERNET, &f), Err(AnomalyKind::NotIp));
    assert_eq!(
        dec(LinkType::ETHERNET, &eth(0x88cc, &[0; 30])),
        Err(AnomalyKind::NotIp)
    );
}

// ---------------------------------------------------------------------------------------------
// robustness

/// Frames of every kind the tests above build, with their link types.
fn vectors() -> Vec<(LinkType, Vec<u8>)> {
    let syn = ipv4_syn();
    let rt = radiotap(0x20);
    vec![
        (LinkType::ETHERNET, eth(0x0800, &ipv4_data(20))),
        (
            LinkType::ETHERNET,
            eth(
                0x88a8,
                &cat(&[
                    &tag(1, 0x8100),
                    &tag(2, 0x8864),
                    &pppoe(0x0057, &ipv6_syn()),
                ]),
            ),
        ),
        (
            LinkType::ETHERNET,
            eth(
                0x8847,
                &cat(&[&mpls_label(1, false), &mpls_label(2, true), &syn]),
            ),
        ),
        (
            LinkType::ETHERNET,
            eth(0x0800, &icmp4_error(3, 13, &syn[..28])),
        ),
        (
            LinkType::ETHERNET,
            eth(
                0x86dd,
                &with_v6_exts(
                    &ipv6_data(5),
                    &[(0, vec![0, 0, 0xc2, 4, 0, 1, 0, 0]), (60, vec![0; 8])],
                ),
            ),
        ),
        (
            LinkType::LINUX_SLL,
            cat(&[&sll(1, 0x8100), &tag(5, 0x0800), &ipv4_udp(3)]),
        ),
        (
            LinkType::LINUX_SLL2,
            cat(&[&sll2(772, 0x86dd), &ipv6_syn()]),
        ),
        (LinkType::NULL, cat(&[&30u32.to_le_bytes(), &ipv6_syn()])),
        (LinkType::LOOP, cat(&[&2u32.to_be_bytes(), &syn])),
        (LinkType::RAW, ipv6_data(3)),
        (
            LinkType::IEEE802_11_RADIOTAP,
            cat(&[&rt, &wlan_hdr(8, 0x01, 0), &[0, 0], &LLC_IPV4, &syn]),
        ),
        (
            LinkType::IEEE802_11,
            cat(&[&wlan_hdr(0, 0x02, 0), &LLC_IPV4, &ipv4_udp(1)]),
        ),
    ]
}

#[test]
fn vectors_decode() {
    for (link, f) in vectors() {
        assert!(dec(link, &f).is_ok(), "{link}: {:?}", dec(link, &f));
    }
}

#[test]
fn every_truncation_never_panics() {
    for (link, f) in vectors() {
        for len in 0..=f.len() {
            // Cut by the snap length, and the same bytes as a whole (malformed) frame.
            let cut = dec_cut(link, &f[..len], f.len());
            let whole = dec(link, &f[..len]);
            if len < f.len() {
                if let Ok(p) = cut {
                    assert!(p.truncated, "{link} len {len}");
                }
                assert_ne!(whole, Err(AnomalyKind::SnaplenCut), "{link} len {len}");
            }
        }
    }
}

/// xorshift64*: deterministic pseudo-random bytes without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
}

#[test]
fn random_frames_never_panic() {
    let links = [
        0u32, 1, 12, 14, 101, 105, 108, 113, 127, 228, 229, 276, 9999,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; 512];
    let mut decoded = 0;
    for &l in &links {
        let link = LinkType(l);
        for _ in 0..4000 {
            let len = rng.below(buf.len());
            rng.fill(&mut buf[..len]);
            let wire = len + rng.below(3) * rng.below(2000);
            decoded += usize::from(dec_cut(link, &buf[..len], wire).is_ok());
        }
    }
    // Random bytes rarely make a packet, but mostly they should not all fail the same way:
    // mutate valid vectors too, which reaches the deeper layers.
    for (link, f) in vectors() {
        for _ in 0..3000 {
            let mut g = f.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(g.len());
                g[i] = rng.next() as u8;
            }
            let len = rng.below(g.len() + 1);
            decoded += usize::from(dec_cut(link, &g[..len], g.len()).is_ok());
        }
    }
    assert!(decoded > 0);
}
