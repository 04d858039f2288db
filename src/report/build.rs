//! Assembles the [`Report`] from what the pipeline found, the site and the aggregated flows.

use super::model::{self, CaptureFacts, Report, Tool, Topology, TopologyHost, SCHEMA_VERSION};
use crate::aggregate::Finalized;
use crate::classify::site::{Site, SiteSource};
use crate::decode::AnomalyKind;
use crate::pipeline::Outcome;

/// The capture facts of a run.
pub fn capture_facts(o: &Outcome) -> CaptureFacts {
    let f = &o.files;
    let mut anomalies = std::collections::BTreeMap::new();
    for (k, n) in o.anomalies.iter() {
        anomalies.insert(k.name().to_string(), n);
    }
    if o.payload_truncated > 0 {
        anomalies.insert("payload_cut_by_snaplen".to_string(), o.payload_truncated);
    }
    let _ = AnomalyKind::NotIp;
    CaptureFacts {
        files: f.files.clone(),
        packets: f.frames.saturating_sub(f.filtered_out),
        bytes: f.bytes,
        first_ts: f.first_ts.map(|t| t.as_secs_f64()),
        last_ts: f.last_ts.map(|t| t.as_secs_f64()),
        link_types: f.link_types.iter().map(|l| l.to_string()).collect(),
        anomalies,
        tunnels: o
            .tunnels
            .iter()
            .map(|(k, n)| (k.name().to_string(), n))
            .collect(),
        evicted_flows: o.flow.evicted,
        kernel_drops: None,
        connections: o.conns.total(),
        duplicate_packets: o.duplicates,
        read_warnings: f.warnings.clone(),
    }
}

/// The topology section: the site used, and why when it was inferred.
pub fn topology(site: &Site, reasons: &[String]) -> Topology {
    let mut hosts = vec![];
    for h in &site.hosts {
        for a in h.addresses.iter().chain(h.nat.iter()) {
            hosts.push(TopologyHost {
                address: a.to_string(),
                role: h.role.name(),
            });
        }
    }
    Topology {
        inferred: site.source == SiteSource::Inferred,
        profile: site.profile.name(),
        hosts,
        internal: site.internal_strings(),
        perimeter: site.perimeter_strings(),
        reasons: reasons.to_vec(),
        site_file: match &site.source {
            SiteSource::File(f) => Some(f.clone()),
            SiteSource::Inferred => None,
        },
    }
}

/// The whole report.
pub fn report(o: &Outcome, site: &Site, reasons: &[String], fin: Finalized) -> Report {
    let mut warnings = vec![];
    let has_exchange = site.hosts.iter().any(|h| {
        matches!(
            h.role,
            crate::classify::catalogue::HostRole::Mailbox
                | crate::classify::catalogue::HostRole::Edge
        )
    });
    if !has_exchange {
        warnings.push(if site.source == SiteSource::Inferred {
            "No Exchange server found in this capture: no host accepted connections on Exchange's \
             client or mail ports, so there are no expected flows to judge."
                .to_string()
        } else {
            "The site file names no mailbox or edge host: there are no expected flows to judge."
                .to_string()
        });
    }
    let one_sided = fin
        .expected
        .iter()
        .filter(|e| e.verdict == model::Verdict::OneSided)
        .count();
    if one_sided > 0 {
        warnings.push(format!(
            "{one_sided} flow(s) were seen in one direction only: the capture point (a mirror \
             port or a filter) misses the other direction, so those verdicts cannot be trusted."
        ));
    }
    if o.flow.evicted > 0 {
        warnings.push(format!(
            "{} connections were evicted because the flow table was full (--max-flows): counts \
             may be split.",
            o.flow.evicted
        ));
    }
    if o.folded > 0 {
        warnings.push(format!(
            "{} conversations past the first {} were summed per destination service and \
             counted as coming from the internet.",
            o.folded,
            crate::aggregate::MAX_GROUPS
        ));
    }
    for f in &fin.floods {
        warnings.push(format!(
            "SYN flood against {} port {}: {} sources sent {} single unanswered SYNs; they are \
             kept out of the verdicts.",
            f.target, f.port, f.sources, f.attempts
        ));
    }
    for w in &o.files.warnings {
        warnings.push(w.clone());
    }
    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "exflow",
            version: env!("CARGO_PKG_VERSION"),
        },
        capture: capture_facts(o),
        topology: topology(site, reasons),
        expected: fin.expected,
        unexpected: fin.unexpected,
        unsupported_restrictions: fin.unsupported_restrictions,
        scans: fin.scans,
        floods: fin.floods,
        latency: fin.latency,
        warnings,
    }
}
