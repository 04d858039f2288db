//! `--flows OUT.jsonl`: one JSON object per connection, written when the connection ends.
//! Zeek's conn.log field names where Zeek has the field; exflow's own fields after them.

use crate::flow::{ConnRecord, IcmpError, Side};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;

#[derive(Serialize)]
struct Line<'a> {
    /// First packet, seconds since the epoch.
    ts: f64,
    uid: &'a str,
    #[serde(rename = "id.orig_h")]
    orig_h: Addr,
    #[serde(rename = "id.orig_p")]
    orig_p: u16,
    #[serde(rename = "id.resp_h")]
    resp_h: Addr,
    #[serde(rename = "id.resp_p")]
    resp_p: u16,
    proto: &'static str,
    /// Zeek fills this from payload inspection; exflow does not inspect payload.
    service: Option<&'static str>,
    duration: f64,
    orig_bytes: u64,
    resp_bytes: u64,
    conn_state: &'static str,
    missed_bytes: u64,
    history: &'a str,
    orig_pkts: u64,
    orig_ip_bytes: u64,
    resp_pkts: u64,
    resp_ip_bytes: u64,
    /// exflow: SYNs the originator sent again before an answer.
    syn_retries: u32,
    /// exflow: handshake round trips in milliseconds.
    rtt: Rtt,
    /// exflow: who sent the first RST and that packet's TTL.
    rst_by: Option<RstBy>,
    /// exflow: TTL / hop limit each side normally shows (its first packet).
    ttls: Ttls,
    /// exflow: ICMP errors that quoted this connection's packets.
    icmp: IcmpList<'a>,
    /// exflow: how many ICMP errors quoted this connection (the list keeps the first few).
    icmp_count: u32,
    /// exflow: why the record was written (closed, idle, reused, evicted, end_of_capture).
    end: &'static str,
}

#[derive(Serialize)]
struct Rtt {
    syn_synack_ms: Option<f64>,
    synack_ack_ms: Option<f64>,
}

#[derive(Serialize)]
struct RstBy {
    side: &'static str,
    ttl: u8,
}

#[derive(Serialize)]
struct Ttls {
    orig: Option<u8>,
    resp: Option<u8>,
}

#[derive(Serialize)]
struct Icmp {
    ts: f64,
    from: Addr,
    #[serde(rename = "type")]
    icmp_type: u8,
    code: u8,
    ttl: u8,
    /// "admin-prohibited", "port-unreachable", ... for the common ones.
    meaning: &'static str,
}

/// A short name for an ICMP error type/code.
/// An address written as text straight into the JSON (no `String` per line).
struct Addr(IpAddr);

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// The ICMP errors kept with a connection, as a JSON list (no `Vec` per line).
struct IcmpList<'a>(&'a [Option<IcmpError>]);

impl Serialize for IcmpList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.iter().flatten().count()))?;
        for e in self.0.iter().flatten() {
            seq.serialize_element(&Icmp {
                ts: e.ts.as_secs_f64(),
                from: Addr(e.from),
                icmp_type: e.icmp_type,
                code: e.code,
                ttl: e.ttl,
                meaning: icmp_meaning(e.v6, e.icmp_type, e.code),
            })?;
        }
        seq.end()
    }
}

pub fn icmp_meaning(v6: bool, t: u8, code: u8) -> &'static str {
    if v6 {
        match (t, code) {
            (1, 0) => "no-route",
            (1, 1) => "admin-prohibited",
            (1, 3) => "address-unreachable",
            (1, 4) => "port-unreachable",
            (1, 5) => "source-policy-failed",
            (1, 6) => "reject-route",
            (1, _) => "unreachable",
            (2, _) => "packet-too-big",
            (3, _) => "time-exceeded",
            (4, _) => "parameter-problem",
            _ => "other",
        }
    } else {
        match (t, code) {
            (3, 0) => "net-unreachable",
            (3, 1) => "host-unreachable",
            (3, 2) => "protocol-unreachable",
            (3, 3) => "port-unreachable",
            (3, 4) => "fragmentation-needed",
            (3, 9) => "net-admin-prohibited",
            (3, 10) => "host-admin-prohibited",
            (3, 13) => "admin-prohibited",
            (3, _) => "unreachable",
            (11, _) => "time-exceeded",
            (4, _) => "source-quench",
            (5, _) => "redirect",
            (12, _) => "parameter-problem",
            _ => "other",
        }
    }
}

fn ms(d: Option<crate::time::Duration>) -> Option<f64> {
    d.map(|d| (d.as_millis_f64() * 1000.0).round() / 1000.0)
}

/// Writes one record as a JSON line.
pub fn write_record(w: &mut impl Write, r: &ConnRecord) -> std::io::Result<()> {
    let uid = r.uid_bytes();
    let line = Line {
        ts: r.ts.as_secs_f64(),
        uid: std::str::from_utf8(&uid).unwrap_or_default(),
        orig_h: Addr(r.orig.ip()),
        orig_p: r.orig.port,
        resp_h: Addr(r.resp.ip()),
        resp_p: r.resp.port,
        proto: r.proto_name(),
        service: None,
        duration: r.duration.as_secs_f64(),
        orig_bytes: r.orig_bytes,
        resp_bytes: r.resp_bytes,
        conn_state: r.conn_state.as_str(),
        missed_bytes: r.missed_bytes,
        history: r.history.as_str(),
        orig_pkts: r.orig_stats.pkts,
        orig_ip_bytes: r.orig_stats.ip_bytes,
        resp_pkts: r.resp_stats.pkts,
        resp_ip_bytes: r.resp_stats.ip_bytes,
        syn_retries: r.syn_retries,
        rtt: Rtt {
            syn_synack_ms: ms(r.rtt_syn_synack),
            synack_ack_ms: ms(r.rtt_synack_ack),
        },
        rst_by: r.rst_by.map(|(s, ttl)| RstBy {
            side: match s {
                Side::Orig => "orig",
                Side::Resp => "resp",
            },
            ttl,
        }),
        ttls: Ttls {
            orig: r.orig_stats.first_ttl,
            resp: r.resp_stats.first_ttl,
        },
        icmp: IcmpList(&r.icmp),
        icmp_count: r.icmp_count,
        end: r.end.as_str(),
    };
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")
}
