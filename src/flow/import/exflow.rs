//! exflow's own `--flows` lines (see `report::jsonl` for their shape): everything exflow
//! knew about the connection comes back, TTLs, handshake times, RST side and ICMP errors
//! included, so a report from them is the report from the packets. The uid is kept.

use super::zeek::JsonTime;
use super::{conn_state, proto, secs, span, Malformed};
use crate::flow::history::History;
use crate::flow::{ConnRecord, EndReason, Endpoint, IcmpError, Side};
use crate::time::{Duration, Timestamp};
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize)]
struct Line<'a> {
    ts: Option<JsonTime>,
    uid: Option<String>,
    #[serde(rename = "id.orig_h")]
    orig_h: IpAddr,
    #[serde(rename = "id.orig_p")]
    orig_p: u16,
    #[serde(rename = "id.resp_h")]
    resp_h: IpAddr,
    #[serde(rename = "id.resp_p")]
    resp_p: u16,
    #[serde(borrow)]
    proto: &'a str,
    duration: Option<f64>,
    orig_bytes: Option<u64>,
    resp_bytes: Option<u64>,
    #[serde(borrow)]
    conn_state: &'a str,
    missed_bytes: Option<u64>,
    #[serde(borrow)]
    history: &'a str,
    orig_pkts: Option<u64>,
    orig_ip_bytes: Option<u64>,
    resp_pkts: Option<u64>,
    resp_ip_bytes: Option<u64>,
    syn_retries: Option<u32>,
    rtt: Option<Rtt>,
    rst_by: Option<RstBy<'a>>,
    ttls: Option<Ttls>,
    #[serde(default)]
    icmp: Vec<Icmp>,
    icmp_count: Option<u32>,
    #[serde(borrow)]
    end: Option<&'a str>,
    idle_max_s: Option<f64>,
    #[serde(borrow)]
    idle_after: Option<&'a str>,
}

#[derive(Deserialize)]
struct Rtt {
    syn_synack_ms: Option<f64>,
    synack_ack_ms: Option<f64>,
}

#[derive(Deserialize)]
struct RstBy<'a> {
    side: &'a str,
    ttl: Option<u8>,
}

#[derive(Deserialize)]
struct Ttls {
    orig: Option<u8>,
    resp: Option<u8>,
}

#[derive(Deserialize)]
struct Icmp {
    ts: f64,
    from: IpAddr,
    #[serde(rename = "type")]
    icmp_type: u8,
    code: u8,
    ttl: u8,
    matched: Option<String>,
}

fn ms(v: Option<f64>) -> Result<Option<Duration>, Malformed> {
    v.map(|ms| span(ms / 1000.0).ok_or(Malformed)).transpose()
}

/// One `--flows` line.
pub fn line(line: &[u8]) -> Result<ConnRecord, Malformed> {
    let l: Line<'_> = serde_json::from_slice(line).map_err(|_| Malformed)?;
    let proto = proto(l.proto, l.orig_h.is_ipv6()).ok_or(Malformed)?;
    let mut r = super::blank(
        Endpoint::new(l.orig_h, l.orig_p),
        Endpoint::new(l.resp_h, l.resp_p),
        proto,
    );
    r.ts = match &l.ts {
        Some(t) => t.get()?.unwrap_or(Timestamp::ZERO),
        None => Timestamp::ZERO,
    };
    r.input_uid = l.uid.map(String::into_boxed_str);
    if let Some(d) = l.duration {
        r.duration = span(d).ok_or(Malformed)?;
    }
    r.orig_bytes = l.orig_bytes.unwrap_or(0);
    r.resp_bytes = l.resp_bytes.unwrap_or(0);
    r.conn_state = conn_state(l.conn_state).ok_or(Malformed)?;
    r.missed_bytes = l.missed_bytes.unwrap_or(0);
    if !l
        .history
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'^')
    {
        return Err(Malformed);
    }
    let mut history = History::default();
    history.set(l.history);
    r.history = history;
    r.orig_stats.pkts = l.orig_pkts.unwrap_or(0);
    r.orig_stats.ip_bytes = l.orig_ip_bytes.unwrap_or(0);
    r.resp_stats.pkts = l.resp_pkts.unwrap_or(0);
    r.resp_stats.ip_bytes = l.resp_ip_bytes.unwrap_or(0);
    if let Some(t) = l.ttls {
        r.orig_stats.first_ttl = t.orig;
        r.resp_stats.first_ttl = t.resp;
    }
    if let (Some(g), Some(a)) = (l.idle_max_s, l.idle_after) {
        let after = crate::flow::AfterGap::ALL
            .into_iter()
            .find(|x| x.as_str() == a)
            .ok_or(Malformed)?;
        let g = span(g).ok_or(Malformed)?;
        r.idle = crate::flow::IdleGap {
            max_ms: u32::try_from(g.0 / 1_000_000).unwrap_or(u32::MAX),
            after,
        };
    }
    r.syn_retries = l.syn_retries.unwrap_or(0);
    if let Some(rtt) = l.rtt {
        r.rtt_syn_synack = ms(rtt.syn_synack_ms)?;
        r.rtt_synack_ack = ms(rtt.synack_ack_ms)?;
    }
    r.rst_by = match l.rst_by {
        Some(RstBy { side: "orig", ttl }) => Some((Side::Orig, ttl)),
        Some(RstBy { side: "resp", ttl }) => Some((Side::Resp, ttl)),
        Some(_) => return Err(Malformed),
        None => None,
    };
    for (slot, e) in r.icmp.iter_mut().zip(&l.icmp) {
        *slot = Some(IcmpError {
            ts: secs(e.ts).ok_or(Malformed)?,
            from: e.from,
            v6: l.orig_h.is_ipv6(),
            icmp_type: e.icmp_type,
            code: e.code,
            ttl: e.ttl,
            by_address: e.matched.is_some(),
        });
    }
    r.icmp_count = l.icmp_count.unwrap_or(l.icmp.len() as u32);
    r.end = match l.end.unwrap_or("closed") {
        "closed" => EndReason::Closed,
        "idle" => EndReason::Idle,
        "reused" => EndReason::Reused,
        "evicted" => EndReason::Evicted,
        "end_of_capture" => EndReason::EndOfCapture,
        "open" => EndReason::Open,
        _ => return Err(Malformed),
    };
    Ok(r)
}
