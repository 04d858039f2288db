//! flow_props tests: properties of the flow table and its Zeek state machine over arbitrary
//! packet sequences (proptest, which shrinks a failure to a minimal sequence).
//!
//! For any sequence of TCP segments between two endpoints (any flags, odd combinations
//! included; sequence and acknowledgment numbers in order, near or far; any payload length;
//! both directions; time moving on by microseconds or past every timeout), and any sequence of
//! UDP datagrams and ICMP messages (errors quoting the flow, or not):
//! - nothing panics;
//! - every record's `conn_state` is one of Zeek's 13, and one UDP/ICMP can have;
//! - every history is drawn from Zeek's letters and no longer than its buffer;
//! - the counters add up: the packets (and IP bytes) of a 5-tuple's records, however many
//!   reuse made, are the packets fed; one record per connection the table counted.

use exflow::decode::UdpDatagram;
use exflow::decode::{IcmpMessage, IcmpQuote, Packet, TcpFlags, TcpSegment, Transport};
use exflow::flow::{ConnRecord, ConnState, FlowConfig, FlowTable};
use exflow::time::Timestamp;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Zeek's history letters and its flip mark (`scripts/base/protocols/conn/main.zeek`): upper
/// case for the originator, lower for the responder (s: a SYN without ACK from the responder).
const ZEEK_LETTERS: &str = "^sShHaAdDfFrRcCgGtTwWiIqQ";
/// `flow::history`'s inline buffer.
const HISTORY_CAP: usize = 48;

/// 400 cases a property (`PROPTEST_CASES=N` for a deeper search); failures are not
/// persisted into the tree (proptest prints the minimal input).
fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The two endpoints: a client and a server port, reversed, two high ports, the same port
/// on both sides, IPv6, and one endpoint talking to itself (a LAND packet).
fn endpoints() -> impl Strategy<Value = ((IpAddr, u16), (IpAddr, u16))> {
    let a4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25));
    let a6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let b6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x25));
    prop_oneof![
        Just(((a4, 40000), (b4, 443))),
        Just(((b4, 443), (a4, 40000))),
        Just(((a4, 50000), (b4, 60000))),
        Just(((a4, 25), (b4, 25))),
        Just(((a6, 40001), (b6, 587))),
        Just(((a4, 0), (b4, 0))),
        Just(((a4, 443), (a4, 443))),
    ]
}

/// How time moves before a packet: microseconds, milliseconds, or past the close delay (5 s),
/// the attempt idle timeout (120 s), the UDP/ICMP timeouts (60 s) or the TCP idle timeout
/// (1 h); rarely backwards (captures are not always in order).
fn time_step() -> impl Strategy<Value = i64> {
    const MS: i64 = 1_000_000;
    prop_oneof![
        8 => 0i64..2 * MS,
        4 => 0i64..3_000 * MS,
        1 => Just(6_000 * MS),
        1 => Just(61_000 * MS),
        1 => Just(125_000 * MS),
        1 => Just(3_700_000 * MS),
        1 => -2_000 * MS..0i64,
    ]
}

/// A sequence or acknowledgment number: the one expected, near it, or anywhere.
#[derive(Clone, Copy, Debug)]
enum Num {
    Expected,
    Near(i32),
    Far(u32),
    Zero,
}

fn num() -> impl Strategy<Value = Num> {
    prop_oneof![
        6 => Just(Num::Expected),
        3 => (-70_000i32..70_000).prop_map(Num::Near),
        1 => any::<u32>().prop_map(Num::Far),
        1 => Just(Num::Zero),
        1 => prop_oneof![Just(i32::MIN), Just(i32::MAX), Just(1_048_577), Just(-1_048_577)]
            .prop_map(Num::Near),
    ]
}

/// TCP flags: the usual ones, and any byte at all (SYN+FIN+RST, URG, ECE/CWR, nothing...).
fn flags() -> impl Strategy<Value = u8> {
    const S: u8 = TcpFlags::SYN;
    const A: u8 = TcpFlags::ACK;
    const F: u8 = TcpFlags::FIN;
    const R: u8 = TcpFlags::RST;
    const P: u8 = TcpFlags::PSH;
    prop_oneof![
        Just(S),
        Just(S | A),
        Just(A),
        Just(P | A),
        Just(F | A),
        Just(R),
        Just(R | A),
        Just(F),
        any::<u8>(),
    ]
}

fn payload() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => Just(0u32),
        3 => 1u32..1500,
        1 => 1500u32..70_000,
        1 => Just(u32::MAX - 40),
    ]
}

#[derive(Clone, Debug)]
struct TcpStep {
    /// From the first endpoint (else from the second).
    from_a: bool,
    flags: u8,
    seq: Num,
    ack: Num,
    len: u32,
    /// A zero window now and then.
    window: u16,
    dt: i64,
    /// Payload cut by the snap length.
    truncated: bool,
}

fn tcp_step() -> impl Strategy<Value = TcpStep> {
    (
        any::<bool>(),
        flags(),
        num(),
        num(),
        payload(),
        prop_oneof![4 => Just(64240u16), 1 => Just(0u16), 1 => any::<u16>()],
        time_step(),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(from_a, flags, seq, ack, len, window, dt, truncated)| TcpStep {
                from_a,
                flags,
                seq,
                ack,
                len,
                window,
                dt,
                truncated,
            },
        )
}

/// Checks what every record must hold, whatever its protocol.
fn check_record(r: &ConnRecord) -> Result<(), TestCaseError> {
    let h = r.history.as_str();
    prop_assert!(ConnState::ALL.contains(&r.conn_state));
    prop_assert!(
        h.chars().all(|c| ZEEK_LETTERS.contains(c)),
        "history {:?} has a letter Zeek does not use",
        h
    );
    prop_assert!(h.len() <= HISTORY_CAP);
    prop_assert!(r.duration.0 >= 0, "negative duration {:?}", r.duration);
    match r.proto.number() {
        6 => {}
        17 => prop_assert!(matches!(
            r.conn_state,
            ConnState::SF | ConnState::S0 | ConnState::SHR | ConnState::OTH
        )),
        1 | 58 => prop_assert_eq!(r.conn_state, ConnState::OTH),
        p => prop_assert!(false, "record of protocol {}", p),
    }
    Ok(())
}

/// Feeds `pkts` (time step, packet) through a table and returns its records and the table's
/// connection count.
fn run(pkts: &[(i64, Packet)]) -> (Vec<ConnRecord>, u64) {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut recs = vec![];
    let mut sink = |r: &ConnRecord| recs.push(r.clone());
    let mut ts = 1_700_000_000_000_000_000i64;
    for (dt, p) in pkts {
        ts += dt;
        t.observe(Timestamp(ts), p, &mut sink);
    }
    t.finish(&mut sink);
    let n = t.stats().connections;
    (recs, n)
}

/// Checks the records of a run: each valid, one per connection, and the packets and IP bytes
/// of every record summing to those fed.
fn check_run(pkts: &[(i64, Packet)]) -> Result<Vec<ConnRecord>, TestCaseError> {
    let (recs, connections) = run(pkts);
    for r in &recs {
        check_record(r)?;
    }
    prop_assert_eq!(recs.len() as u64, connections);
    let mut uids: Vec<u64> = recs.iter().map(|r| r.uid).collect();
    uids.sort_unstable();
    uids.dedup();
    prop_assert_eq!(uids.len(), recs.len(), "two records share a uid");
    let counted: u64 = recs
        .iter()
        .map(|r| r.orig_stats.pkts + r.resp_stats.pkts)
        .sum();
    prop_assert_eq!(
        counted,
        pkts.len() as u64,
        "packets in records != packets fed"
    );
    let bytes: u64 = recs
        .iter()
        .map(|r| r.orig_stats.ip_bytes + r.resp_stats.ip_bytes)
        .sum();
    let fed: u64 = pkts.iter().map(|(_, p)| u64::from(p.ip_len)).sum();
    prop_assert_eq!(bytes, fed, "IP bytes in records != IP bytes fed");
    Ok(recs)
}

/// Turns steps into segments: sequence numbers follow each side's data from a random initial
/// sequence number unless a step says otherwise.
fn tcp_packets(
    ends: ((IpAddr, u16), (IpAddr, u16)),
    isn: (u32, u32),
    steps: &[TcpStep],
) -> Vec<(i64, Packet)> {
    let mut next = [isn.0, isn.1];
    steps
        .iter()
        .map(|s| {
            let (d, ((src, sport), (dst, dport))) = if s.from_a {
                (0, ends)
            } else {
                (1, (ends.1, ends.0))
            };
            let pick = |n: Num, expected: u32| match n {
                Num::Expected => expected,
                Num::Near(delta) => expected.wrapping_add(delta as u32),
                Num::Far(v) => v,
                Num::Zero => 0,
            };
            let seq = pick(s.seq, next[d]);
            let ack = pick(s.ack, next[1 - d]);
            let f = TcpFlags(s.flags);
            let mut advance = s.len;
            if f.syn() {
                advance = advance.wrapping_add(1);
            }
            if f.fin() {
                advance = advance.wrapping_add(1);
            }
            next[d] = seq.wrapping_add(advance);
            let p = Packet {
                src,
                dst,
                ip_len: 40u32.saturating_add(s.len),
                ttl: if s.from_a { 64 } else { 63 },
                ip_id: 0,
                transport: Transport::Tcp(TcpSegment {
                    sport,
                    dport,
                    seq,
                    ack,
                    flags: f,
                    window: s.window,
                    payload_len: s.len,
                }),
                truncated: s.truncated,
                iface: 0,
                interfaces: 1,
                nat: 0,
            };
            (s.dt, p)
        })
        .collect()
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn any_tcp_segment_sequence_gives_valid_records_whose_counters_add_up(
        ends in endpoints(),
        isn in (any::<u32>(), any::<u32>()),
        steps in prop::collection::vec(tcp_step(), 1..48),
    ) {
        let pkts = tcp_packets(ends, isn, &steps);
        let recs = check_run(&pkts)?;
        prop_assert!(recs.iter().all(|r| r.proto == exflow::decode::Proto::Tcp));
    }

    /// Well-formed handshakes with arbitrary segments after them: the first record of a
    /// completed handshake is never S0 (an attempt) nor OTH (midstream). (REJ stays possible:
    /// Zeek logs a handshake followed by RSTs from both sides and no data as REJ.)
    #[test]
    fn a_completed_handshake_is_never_logged_as_an_attempt(
        ends in endpoints().prop_filter("two distinct endpoints", |(a, b)| a != b),
        isn in (any::<u32>(), any::<u32>()),
        tail in prop::collection::vec(tcp_step(), 0..24),
    ) {
        let mut steps = vec![];
        for (from_a, flags) in [
            (true, TcpFlags::SYN),
            (false, TcpFlags::SYN | TcpFlags::ACK),
            (true, TcpFlags::ACK),
        ] {
            steps.push(TcpStep {
                from_a,
                flags,
                seq: Num::Expected,
                ack: Num::Expected,
                len: 0,
                window: 64240,
                dt: 1_000_000,
                truncated: false,
            });
        }
        steps.extend(tail);
        let pkts = tcp_packets(ends, isn, &steps);
        let recs = check_run(&pkts)?;
        let first = recs.iter().min_by_key(|r| r.uid).unwrap();
        prop_assert!(
            !matches!(first.conn_state, ConnState::S0 | ConnState::OTH),
            "handshake logged {:?} ({})",
            first.conn_state,
            first.history.as_str()
        );
        prop_assert!(first.history.as_str().starts_with("ShA"), "{}", first.history.as_str());
    }
}

#[derive(Clone, Debug)]
enum Other {
    Udp {
        from_a: bool,
        len: u32,
    },
    Icmp {
        from_a: bool,
        icmp_type: u8,
        code: u8,
        quote: Option<(bool, u8)>,
        len: u32,
    },
}

fn other_step() -> impl Strategy<Value = (i64, Other)> {
    let udp = (any::<bool>(), payload()).prop_map(|(from_a, len)| Other::Udp { from_a, len });
    let icmp_type = prop_oneof![
        Just(0u8),
        Just(3),
        Just(8),
        Just(11),
        Just(13),
        Just(14),
        Just(1),
        Just(128),
        Just(129),
        any::<u8>()
    ];
    let icmp = (
        any::<bool>(),
        icmp_type,
        prop_oneof![Just(0u8), Just(3), Just(13), any::<u8>()],
        prop::option::of((any::<bool>(), prop_oneof![Just(6u8), Just(17), any::<u8>()])),
        0u32..2000,
    )
        .prop_map(|(from_a, icmp_type, code, quote, len)| Other::Icmp {
            from_a,
            icmp_type,
            code,
            quote,
            len,
        });
    (time_step(), prop_oneof![udp, icmp])
}

proptest! {
    #![proptest_config(cases())]

    /// UDP datagrams and ICMP messages (echo, errors quoting the UDP flow or something else,
    /// any type and code) between two endpoints: valid records, counters that add up, and every
    /// ICMP error either attached to a flow or counted as unmatched.
    #[test]
    fn any_udp_and_icmp_sequence_gives_valid_records_whose_counters_add_up(
        ends in endpoints(),
        v6 in any::<bool>(),
        steps in prop::collection::vec(other_step(), 1..48),
    ) {
        let ((a, aport), (b, bport)) = ends;
        let mut errors = 0u64;
        let pkts: Vec<(i64, Packet)> = steps
            .iter()
            .map(|(dt, s)| {
                let p = match *s {
                    Other::Udp { from_a, len } => {
                        let ((src, sport), (dst, dport)) =
                            if from_a { ((a, aport), (b, bport)) } else { ((b, bport), (a, aport)) };
                        Packet {
                            src,
                            dst,
                            ip_len: 28u32.saturating_add(len),
                            ttl: 64,
                            ip_id: 7,
                            transport: Transport::Udp(UdpDatagram { sport, dport, payload_len: len }),
                            truncated: false,
                            iface: 0,
                            interfaces: 1,
                            nat: 0,
                        }
                    }
                    Other::Icmp { from_a, icmp_type, code, quote, len } => {
                        let (src, dst) = if from_a { (a, b) } else { (b, a) };
                        let m = IcmpMessage {
                            v6,
                            icmp_type,
                            code,
                            echo_id: Some(77),
                            payload_len: len,
                            quote: quote.map(|(ours, proto)| IcmpQuote {
                                src: a,
                                dst: b,
                                proto,
                                sport: if ours { aport } else { 1 },
                                dport: if ours { bport } else { 2 },
                                tcp_seq: None,
                            }),
                        };
                        if m.is_error() {
                            errors += 1;
                        }
                        Packet {
                            src,
                            dst,
                            ip_len: 28 + len,
                            ttl: 60,
                            ip_id: 0,
                            transport: Transport::Icmp(m),
                            truncated: false,
                            iface: 0,
                            interfaces: 1,
                            nat: 0,
                        }
                    }
                };
                (*dt, p)
            })
            .collect();
        check_run(&pkts)?;
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ts = 1_700_000_000_000_000_000i64;
        for (dt, p) in &pkts {
            ts += dt;
            t.observe(Timestamp(ts), p, &mut |_: &ConnRecord| {});
        }
        let st = t.stats();
        prop_assert_eq!(st.icmp_attached + st.icmp_unmatched, errors);
    }
}
