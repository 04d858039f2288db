//! The short capture summary `exflow analyze` prints without a report format: packets,
//! connections per `conn_state`, and decode anomalies by kind.

use crate::aggregate::stats::RunStats;
use crate::decode::AnomalyKind;
use crate::flow::ConnState;
use std::fmt::Write as _;

/// Renders the summary as plain text lines.
pub fn render(o: &RunStats) -> String {
    let mut s = String::new();
    let f = &o.source;
    let files: Vec<String> = f
        .files
        .iter()
        .map(|n| super::terminal::sanitize(n))
        .collect();
    let _ = writeln!(s, "files        {}", files.join(", "));
    let links: Vec<String> = f.link_types.iter().map(|l| l.to_string()).collect();
    let _ = writeln!(
        s,
        "link types   {}",
        if links.is_empty() {
            "-".to_string()
        } else {
            links.join(", ")
        }
    );
    let handed = f.frames.saturating_sub(f.filtered_out);
    let mut pk = format!("{} read", f.frames);
    if f.filtered_out > 0 {
        let _ = write!(pk, ", {} dropped by the filter", f.filtered_out);
    }
    let _ = write!(pk, ", {} IP", o.ip_packets);
    let not_ip = o.anomalies.get(AnomalyKind::NotIp);
    if not_ip > 0 {
        let _ = write!(pk, ", {not_ip} not IP");
    }
    let _ = writeln!(s, "packets      {pk}");
    let _ = handed;
    let _ = writeln!(s, "bytes        {}", f.bytes);
    if let (Some(a), Some(b)) = (f.first_ts, f.last_ts) {
        let _ = writeln!(
            s,
            "time span    {a} .. {b} ({:.3} s)",
            b.since(a).as_secs_f64()
        );
    }
    let c = &o.conns;
    let _ = writeln!(
        s,
        "connections  {} (tcp {}, udp {}, icmp {})",
        c.total(),
        c.tcp,
        c.udp,
        c.icmp
    );
    let states: Vec<String> = ConnState::ALL
        .iter()
        .zip(c.by_state.iter())
        .filter(|(_, &n)| n > 0)
        .map(|(st, n)| format!("{} {n}", st.as_str()))
        .collect();
    let _ = writeln!(
        s,
        "conn_state   {}",
        if states.is_empty() {
            "-".to_string()
        } else {
            states.join(", ")
        }
    );
    if !o.tunnels.is_empty() {
        let t: Vec<String> = o
            .tunnels
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        let _ = writeln!(s, "tunnels      {}", t.join(", "));
    }
    let mut anomalies: Vec<String> = o
        .anomalies
        .iter()
        .filter(|(k, _)| *k != AnomalyKind::NotIp)
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    if o.payload_truncated > 0 {
        anomalies.push(format!("payload_cut_by_snaplen {}", o.payload_truncated));
    }
    let _ = writeln!(
        s,
        "anomalies    {}",
        if anomalies.is_empty() {
            "none".to_string()
        } else {
            anomalies.join(", ")
        }
    );
    let fl = &o.flow;
    let _ = writeln!(
        s,
        "flow table   peak {} concurrent, {} evicted",
        fl.peak_flows, fl.evicted
    );
    if fl.icmp_attached > 0 || fl.icmp_unmatched > 0 {
        let _ = writeln!(
            s,
            "icmp errors  {} attached to a connection, {} matched none",
            fl.icmp_attached, fl.icmp_unmatched
        );
    }
    s
}
