//! Suricata's eve.json: `flow` events become connection records; every other event type
//! (alert, dns, tls, netflow, stats, …) is skipped and counted.
//!
//! A flow event carries the 5-tuple (`src_*` is the side that opened the flow: the
//! originator), `flow.start`/`flow.end`, packets and bytes each way (`pkts_toserver`, …:
//! whole packets, so they go to `*_ip_bytes`; the payload sizes are unknown and left 0), and
//! for TCP the flags each side sent OR'ed together (`tcp.tcp_flags_ts` to the server,
//! `tcp.tcp_flags_tc` to the client, hex). The order of the flags is lost, so the history and
//! conn_state are rebuilt from which flags each side sent at all:
//!
//! | flags seen | history letters | conn_state |
//! | --- | --- | --- |
//! | SYN from the client, nothing from the server | `S` | S0 |
//! | SYN from the client, RST (no SYN) from the server | `Sr` | REJ |
//! | SYN from the client, RST from the client, no answer | `SR` | RSTOS0 |
//! | SYN both ways (the server's is a SYN-ACK) | `Sh`, `A` if the client ACKed, `D`/`d` for PSH | S1 |
//! | … and FIN both ways | … `Ff` | SF |
//! | … and FIN from one side only | … `F` or `f` | S2 (client) / S3 (server) |
//! | … and RST from the client / the server / both | … `R` / `r` / `Rr` | RSTO / RSTR / RSTO (both: the first cannot be told; the client's is assumed) |
//! | no SYN from the client | the letters of the flags seen | OTH |
//!
//! PSH stands for data (`D`/`d`): a segment with payload and no PSH is not seen as data.
//! No TTL and no handshake times: a refusal cannot say by whom. UDP: SF when both sides sent,
//! S0 when only the client did, SHR when only the server did. `flow_id` is kept as the uid
//! (`E` and the number).

use super::{blank, finish, proto, Malformed};
use crate::flow::history::History;
use crate::flow::{ConnRecord, ConnState, Endpoint, Side};
use crate::time::Timestamp;
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    event_type: &'a str,
    flow_id: Option<u64>,
    src_ip: Option<IpAddr>,
    src_port: Option<u16>,
    dest_ip: Option<IpAddr>,
    dest_port: Option<u16>,
    #[serde(borrow)]
    proto: Option<&'a str>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    #[serde(borrow)]
    timestamp: Option<&'a str>,
    flow: Option<Flow<'a>>,
    #[serde(borrow)]
    tcp: Option<Tcp<'a>>,
}

#[derive(Deserialize)]
struct Flow<'a> {
    pkts_toserver: Option<u64>,
    pkts_toclient: Option<u64>,
    bytes_toserver: Option<u64>,
    bytes_toclient: Option<u64>,
    #[serde(borrow)]
    start: Option<&'a str>,
    #[serde(borrow)]
    end: Option<&'a str>,
}

#[derive(Deserialize)]
struct Tcp<'a> {
    #[serde(borrow)]
    tcp_flags: Option<&'a str>,
    #[serde(borrow)]
    tcp_flags_ts: Option<&'a str>,
    #[serde(borrow)]
    tcp_flags_tc: Option<&'a str>,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn flags(s: Option<&str>) -> Result<u8, Malformed> {
    match s {
        None => Ok(0),
        Some(s) => u8::from_str_radix(s, 16).map_err(|_| Malformed),
    }
}

/// An ISO 8601 time as Suricata (and Zeek's `json_timestamps`) write it:
/// `2017-04-07T22:24:37.251547+0100`, `…Z`, `…+01:00`, or no offset (UTC).
pub fn iso8601(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        for (k, c) in digits.bytes().take(9).enumerate() {
            nanos += i64::from(c - b'0') * 10i64.pow(8 - k as u32);
        }
    }
    let offset = match &s[i..] {
        "" | "Z" => 0,
        rest => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let hh: i64 = digits[..2].parse().ok()?;
            let mm: i64 = digits[2..].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    // Days from civil (H. Hinnant), the inverse of `time::civil_from_days`.
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(Timestamp::from_secs_nanos(secs, nanos))
}

/// One eve.json line: a record (a `flow` event), `None` (another event type), or malformed.
pub fn line(line: &[u8]) -> Result<Option<ConnRecord>, Malformed> {
    let e: Event<'_> = serde_json::from_slice(line).map_err(|_| Malformed)?;
    if e.event_type != "flow" {
        return Ok(None);
    }
    let (Some(src), Some(dst), Some(p), Some(flow)) = (e.src_ip, e.dest_ip, e.proto, e.flow) else {
        return Err(Malformed);
    };
    let proto = proto(p, src.is_ipv6()).ok_or(Malformed)?;
    let (sp, dp) = if proto.has_ports() {
        (e.src_port.ok_or(Malformed)?, e.dest_port.ok_or(Malformed)?)
    } else {
        (
            u16::from(e.icmp_type.unwrap_or(0)),
            u16::from(e.icmp_code.unwrap_or(0)),
        )
    };
    let mut r = blank(Endpoint::new(src, sp), Endpoint::new(dst, dp), proto);
    let time = |t: Option<&str>| t.map(|t| iso8601(t).ok_or(Malformed)).transpose();
    let start = time(flow.start)?.or(time(e.timestamp)?);
    let end = time(flow.end)?;
    r.ts = start.unwrap_or(Timestamp::ZERO);
    if let (Some(s), Some(t)) = (start, end) {
        r.duration = t.since(s);
    }
    r.input_uid = e.flow_id.map(|id| format!("E{id}").into_boxed_str());
    r.orig_stats.pkts = flow.pkts_toserver.unwrap_or(0);
    r.resp_stats.pkts = flow.pkts_toclient.unwrap_or(0);
    r.orig_stats.ip_bytes = flow.bytes_toserver.unwrap_or(0);
    r.resp_stats.ip_bytes = flow.bytes_toclient.unwrap_or(0);
    let (op, rp) = (r.orig_stats.pkts > 0, r.resp_stats.pkts > 0);
    if proto == crate::decode::Proto::Tcp {
        let tcp = e.tcp.unwrap_or(Tcp {
            tcp_flags: None,
            tcp_flags_ts: None,
            tcp_flags_tc: None,
        });
        let (mut ts, mut tc) = (flags(tcp.tcp_flags_ts)?, flags(tcp.tcp_flags_tc)?);
        if tcp.tcp_flags_ts.is_none() && tcp.tcp_flags_tc.is_none() {
            // Only the flags of both directions together: give them to the sides that sent.
            let all = flags(tcp.tcp_flags)?;
            ts = if op { all } else { 0 };
            tc = if rp {
                all & !SYN | if all & SYN != 0 && op { SYN } else { 0 }
            } else {
                0
            };
        }
        let (state, history) = tcp_state(ts, tc, op, rp);
        r.conn_state = state;
        r.history = history;
    } else {
        r.conn_state = match (op, rp) {
            (true, true) => ConnState::SF,
            (true, false) => ConnState::S0,
            (false, true) => ConnState::SHR,
            (false, false) => ConnState::OTH,
        };
        let mut h = History::default();
        if op {
            h.push(b'D');
        }
        if rp {
            h.push(b'd');
        }
        r.history = h;
    }
    let mut r = finish(r);
    // Both sides reset: which was first is lost; the state says the client's.
    if r.conn_state == ConnState::RSTO {
        r.rst_by = Some((Side::Orig, None));
    }
    Ok(Some(r))
}

/// conn_state and history from the flags each side sent (see the module's table).
fn tcp_state(ts: u8, tc: u8, op: bool, rp: bool) -> (ConnState, History) {
    let mut h = History::default();
    let on = |f: u8, bit: u8| f & bit != 0;
    let syn = on(ts, SYN);
    let synack = on(tc, SYN);
    if syn {
        h.push(b'S');
    }
    if synack {
        h.push(b'h');
    }
    if on(ts, ACK) && (synack || !syn) {
        h.push(b'A');
    }
    if on(ts, PSH) {
        h.push(b'D');
    }
    if on(tc, ACK) && !synack && !on(tc, RST) {
        h.push(b'a');
    }
    if on(tc, PSH) {
        h.push(b'd');
    }
    if on(ts, FIN) {
        h.push(b'F');
    }
    if on(tc, FIN) {
        h.push(b'f');
    }
    if on(ts, RST) {
        h.push(b'R');
    }
    if on(tc, RST) {
        h.push(b'r');
    }
    let state = if !syn {
        ConnState::OTH
    } else if !synack {
        match (on(ts, RST), on(tc, RST), rp || tc != 0) {
            (_, true, _) => ConnState::REJ,
            (true, false, _) => ConnState::RSTOS0,
            (false, false, false) => ConnState::S0,
            (false, false, true) => ConnState::OTH,
        }
    } else if on(ts, RST) {
        ConnState::RSTO
    } else if on(tc, RST) {
        ConnState::RSTR
    } else {
        match (on(ts, FIN), on(tc, FIN)) {
            (true, true) => ConnState::SF,
            (true, false) => ConnState::S2,
            (false, true) => ConnState::S3,
            (false, false) => ConnState::S1,
        }
    };
    let _ = op;
    (state, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(
            iso8601("1970-01-01T00:00:01.5+0000"),
            Some(Timestamp(1_500_000_000))
        );
        assert_eq!(iso8601("1970-01-01T01:00:00+0100"), Some(Timestamp(0)));
        assert_eq!(iso8601("1970-01-01T00:00:00Z"), Some(Timestamp(0)));
        assert_eq!(
            iso8601("2015-10-20T11:24:10.230829-0600"),
            Some(Timestamp(1_445_361_850_230_829_000))
        );
        assert_eq!(iso8601("2015-13-20T11:24:10"), None);
        assert_eq!(iso8601("garbage"), None);
    }

    #[test]
    fn flags_to_states() {
        let s = |ts, tc, rp| tcp_state(ts, tc, true, rp);
        assert_eq!(s(SYN, 0, false).0, ConnState::S0);
        assert_eq!(s(SYN, RST | ACK, true).0, ConnState::REJ);
        let (st, h) = s(SYN | ACK | PSH | FIN, SYN | ACK | PSH | FIN, true);
        assert_eq!((st, h.as_str()), (ConnState::SF, "ShADdFf"));
        assert_eq!(s(SYN | ACK, SYN | ACK | RST, true).0, ConnState::RSTR);
        assert_eq!(s(ACK | PSH, ACK | PSH, true).0, ConnState::OTH);
    }
}
