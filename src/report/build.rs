//! From what the run found to the [`Report`]: [`conclude`] runs inference (without a site
//! file), classification and aggregation once, and this module writes the typed results
//! into the report model, words included.

use super::model::{
    self, CaptureFacts, Example, FilterFact, FlowEntry, Input, InterfaceFact, Report, RoleLatency,
    Scan, Tool, Topology, TopologyHost, Unexpected, LIST_MAX, SCHEMA_VERSION,
};
use super::words;
use crate::aggregate::rows::{self, Finalized, FlowRow, UnexpectedRow};
use crate::aggregate::services::ServiceCount;
use crate::aggregate::stats::RunStats;
use crate::aggregate::{Aggregator, MAX_GROUPS};
use crate::classify::catalogue::{Catalogue, Profile, Proto, Role};
use crate::classify::infer;
use crate::classify::rules::{Side, UnexpectedReason};
use crate::classify::site::{Site, SiteSource};
use std::collections::BTreeMap;

/// The report of a run: the site given, or the one the conversations show (with the reasons),
/// with `profile` (the command line's) over either; every conversation classified against
/// it and summed into verdicts. The one place the sequence infer → classify → aggregate →
/// report is written.
pub fn conclude(
    stats: &RunStats,
    agg: &Aggregator,
    given: Option<&Site>,
    profile: Option<Profile>,
    cat: &Catalogue,
) -> Report {
    conclude_with_site(stats, agg, given, profile, cat).0
}

/// [`conclude`], also returning the site the report was judged against (the one given or
/// inferred, with the profile applied): the HTML report draws its hosts and writes each
/// failed flow's fix from it.
pub fn conclude_with_site(
    stats: &RunStats,
    agg: &Aggregator,
    given: Option<&Site>,
    profile: Option<Profile>,
    cat: &Catalogue,
) -> (Report, Site) {
    let (mut site, reasons) = match given {
        Some(site) => (site.clone(), vec![]),
        None => {
            let inferred = infer::infer(&agg.conversations(), cat);
            let reasons = inferred.reasons.iter().map(words::inference_reason);
            (inferred.site, reasons.collect())
        }
    };
    if let Some(p) = profile {
        site.profile = p;
    }
    let fin = agg.finalize(&site, cat);
    let report = report(stats, &site, &reasons, fin, cat);
    (report, site)
}

/// The capture facts of a run.
pub fn capture_facts(o: &RunStats) -> CaptureFacts {
    let f = &o.source;
    let mut anomalies = std::collections::BTreeMap::new();
    for (k, n) in o.anomalies.iter() {
        anomalies.insert(k.name().to_string(), n);
    }
    if o.payload_truncated > 0 {
        anomalies.insert("payload_cut_by_snaplen".to_string(), o.payload_truncated);
    }
    let c = &f.clock;
    for (name, n) in [
        ("timestamp_out_of_range", c.out_of_range),
        ("timestamp_offset_ignored", c.offset_ignored),
        ("timestamp_zero", c.zero),
        ("timestamp_backward", c.backward),
        ("clock_jump_forward", c.jumps_forward),
        ("clock_jump_back", c.jumps_back),
        ("frame_on_ignored_interface", f.frames_on_ignored_interfaces),
        ("link_type_not_filterable", f.unfilterable),
    ] {
        if n > 0 {
            anomalies.insert(name.to_string(), n);
        }
    }
    CaptureFacts {
        files: f.files.clone(),
        packets: f
            .frames
            .saturating_sub(f.filtered_out)
            .saturating_sub(f.unfilterable),
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
        kernel_drops: o.live_drops.map(|d| d.kernel),
        connections: o.conns.total(),
        duplicate_packets: o.duplicates,
        read_warnings: f.warnings.clone(),
        interfaces: f
            .interfaces
            .iter()
            .enumerate()
            .map(|(id, i)| InterfaceFact {
                id: u16::try_from(id).unwrap_or(u16::MAX),
                name: i.name.clone(),
                link_type: i.link.to_string(),
                packets: i.packets,
            })
            .collect(),
        reordered: o.reorder.stepped_back,
        max_step_back_ms: o.reorder.max_step_back.as_millis_f64(),
        interface_drops: o.live_drops.map(|d| d.interface),
        queue_drops: o.live_drops.map(|d| d.queue),
        filter: f.filter.as_ref().map(|expr| FilterFact {
            expression: expr.clone(),
            matched: f
                .frames
                .saturating_sub(f.filtered_out)
                .saturating_sub(f.unfilterable),
            of: f.frames,
        }),
        vlan_tagged: f.vlan_tagged,
    }
}

/// The topology section: the site used, and why when it was inferred.
pub fn topology(site: &Site, reasons: &[String]) -> Topology {
    let mut hosts = vec![];
    for h in site.hosts() {
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

/// A side as the report writes it.
fn side(s: &Side) -> model::Side {
    model::Side {
        zone: s.zone.name(),
        role: s.role.map(|r| r.name()),
        address: s.address.map(|a| a.to_string()),
        via: None,
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Ip(_) => "ip",
    }
}

fn ports_text(role: &Role) -> String {
    role.ports
        .iter()
        .map(|p| {
            if p.first() == p.last() {
                p.first().to_string()
            } else {
                format!("{}-{}", p.first(), p.last())
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The names of the capture's interfaces (its id where it has none), for sentences.
fn iface_names(o: &RunStats) -> Vec<String> {
    o.source
        .interfaces
        .iter()
        .enumerate()
        .map(|(id, i)| i.name.clone().unwrap_or_else(|| format!("interface {id}")))
        .collect()
}

fn flow_entry(row: FlowRow, cat: &Catalogue, ifaces: &[String]) -> FlowEntry {
    let role = &cat.roles()[row.role];
    let (mut src, mut dst) = (side(&row.src), side(&row.dst));
    // The NAT address goes with the host side it translates (the destination of inbound
    // flows, the source of outbound ones).
    if let Some((v, on_src)) = row.via {
        let host = if on_src { &mut src } else { &mut dst };
        host.via = Some(v.to_string());
    }
    let family = row
        .dst
        .address
        .or(row.src.address)
        .map(|a| if a.is_ipv4() { "ipv4" } else { "ipv6" });
    let icmp: Vec<String> = row.rejections.iter().map(words::rejection).collect();
    let c = &row.counts;
    // Sessions that opened but whose mail the server refused are what the row is about;
    // otherwise the verdict's own sentence.
    let detail = if row.mail_refused > 0 {
        words::mail_refused(row.mail_refused, row.mail_replied, &src, &dst, row.port)
    } else {
        words::detail(&words::VerdictFacts {
            verdict: row.verdict,
            counts: c,
            src: &src,
            dst: &dst,
            port: row.port,
            answered_by: row.answered_by,
            refusal: row.refusal,
            refused_without_ttl: row.refused_without_ttl,
            icmp: &icmp,
            handshake: row.handshake,
            died: row.died_at,
        })
    };
    let name = |i: u16| {
        ifaces
            .get(usize::from(i))
            .cloned()
            .unwrap_or_else(|| format!("interface {i}"))
    };
    let detail = words::with_place(
        detail,
        row.verdict,
        row.died_at.map(|d| (d, name(d.entered), name(d.toward))),
        ifaces.len(),
        &dst,
    );
    FlowEntry {
        role: role.id.clone(),
        purpose: role.purpose.clone(),
        proto: proto_name(role.proto),
        port: row.port,
        ports: ports_text(role),
        src,
        dst,
        attempts: c.attempts,
        established: c.established,
        dropped: c.dropped,
        refused: c.refused,
        rejected: c.rejected,
        reset_midstream: c.reset_by_middlebox + c.reset_by_endpoint + c.reset_unknown,
        syn_retries: c.syn_retries,
        one_sided: c.one_sided,
        ignored_resets: c.ignored_resets,
        mail_sessions: row.mail_replied,
        mail_refused: row.mail_refused,
        services: service_entries(&row.services),
        handshake_ms: row.handshake,
        verdict: row.verdict,
        answered_by: row.answered_by,
        icmp,
        detail,
        family,
        out_of_view: row.out_of_view,
        via: row.via.map(|(v, _)| model::Via { nat: v.to_string() }),
        died_at: row.died_at.map(|d| words::place_name(d.place)),
        cannot_show: if row.refused_without_ttl > 0 && row.refusal.is_none() {
            vec!["who_refused"]
        } else {
            vec![]
        },
        fix: None,
    }
}

/// Flow rows in the report's order: catalogue role, then source and destination as written.
fn flow_entries(rows: Vec<FlowRow>, cat: &Catalogue, ifaces: &[String]) -> Vec<FlowEntry> {
    let mut keyed: Vec<_> = rows
        .into_iter()
        .map(|r| ((r.role, side(&r.src), side(&r.dst), r.port), r))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed
        .into_iter()
        .map(|(_, r)| flow_entry(r, cat, ifaces))
        .collect()
}

fn unexpected_entries(rows: Vec<UnexpectedRow>, cat: &Catalogue) -> Vec<Unexpected> {
    let mut keyed: Vec<_> = rows
        .into_iter()
        .map(|u| {
            (
                (
                    u.proto,
                    u.port,
                    side(&u.src),
                    side(&u.dst),
                    u.reason.as_str(),
                ),
                u,
            )
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed
        .into_iter()
        .map(|(_, u)| {
            let role = u.role.map(|i| cat.roles()[i].id.clone());
            // What happened to it, in the verdicts' words.
            let o = &u.outcome;
            let icmp: Vec<String> = o.rejections.iter().map(words::rejection).collect();
            let outcome = words::detail(&words::VerdictFacts {
                verdict: o.verdict,
                counts: &o.counts,
                src: &side(&u.src),
                dst: &side(&u.dst),
                port: u.port,
                answered_by: o.answered_by,
                refusal: o.refusal,
                refused_without_ttl: o.refused_without_ttl,
                icmp: &icmp,
                handshake: o.handshake,
                died: o.died_at,
            });
            let likely = u.reason == UnexpectedReason::DisabledService
                && u.established > 0
                && o.counts.confirmed == 0;
            Unexpected {
                likely,
                verdict: o.verdict,
                proto: u.proto.zeek_name(),
                port: u.port,
                src: side(&u.src),
                dst: side(&u.dst),
                attempts: u.attempts,
                established: u.established,
                reason: u.reason.as_str(),
                detail: format!(
                    "{}{} {outcome}",
                    words::unexpected_detail(u.attempts, u.established, u.reason, role.as_deref(),),
                    if likely { words::LIKELY_IN_USE } else { "" },
                ),
                role,
                first_ts: u.first_ts.as_secs_f64(),
                example: example(&u.example),
                services: service_entries(&o.services),
            }
        })
        .collect()
}

/// A row's services as the report lists them (the aggregator's order).
fn service_entries(list: &[ServiceCount]) -> Vec<model::ServiceEntry> {
    list.iter()
        .map(|c| model::ServiceEntry {
            name: c.name,
            evidence: c.evidence.as_str(),
            attempts: c.attempts,
            established: c.established,
        })
        .collect()
}

fn example(x: &rows::Example) -> Example {
    Example {
        orig_h: x.orig_h.to_string(),
        orig_p: x.orig_p,
        resp_h: x.resp_h.to_string(),
        resp_p: x.resp_p,
        conn_state: x.conn_state.as_str(),
        history: x.history.as_str().to_string(),
    }
}

fn finding(f: &crate::aggregate::findings::Finding) -> model::Finding {
    let (src, dst) = (side(&f.src), side(&f.dst));
    model::Finding {
        kind: f.kind.as_str(),
        proto: "tcp",
        port: f.port,
        detail: words::finding(f, &src, &dst),
        src,
        dst,
        count: f.count,
        by: f.by.as_str(),
        example: example(&f.example),
        sni: f.sni.clone(),
        alert: f.alert.map(|(resp, level, description)| model::TlsAlert {
            from: if resp { "server" } else { "client" },
            level,
            description,
        }),
        code: f.rejection.as_ref().map(|r| r.1),
        text: f.rejection.as_ref().map(|r| r.2.clone()),
        command: f.rejection.as_ref().map(|r| r.0.as_str()),
        banner: f.banner.clone(),
        passing_sni: f.passing_sni.clone(),
        idle_s_min: f.idle.map(|e| e.idle_s_min()),
        timeout_s: f.idle.map(|e| e.timeout_s()),
        idle_s_killed: f.idle.map(|e| e.idle_s_killed()),
        timeout_snapped: f.idle.map(|e| e.snapped_s().is_some()),
        gaps_survived: f.idle.map(|e| e.survived),
        gaps_reset: f.idle.map(|e| e.killed_reset),
        gaps_unanswered: f.idle.map(|e| e.killed_unanswered),
        gaps_reconnected: f.idle.map(|e| e.reconnected),
    }
}

fn scan(s: &rows::Scan) -> Scan {
    Scan {
        source: s.source.to_string(),
        targets: s.targets.iter().map(|t| t.to_string()).collect(),
        ports_probed: s.ports_probed,
        open: s.open.clone(),
        closed: s.closed,
        filtered: s.filtered,
        first_ts: s.first_ts.as_secs_f64(),
        last_ts: s.last_ts.as_secs_f64(),
    }
}

fn flood(f: &rows::Flood) -> model::Flood {
    model::Flood {
        target: f.target.to_string(),
        proto: f.proto.zeek_name(),
        port: f.port,
        sources: f.sources,
        attempts: f.attempts,
        first_ts: f.first_ts.as_secs_f64(),
        last_ts: f.last_ts.as_secs_f64(),
    }
}

/// The whole report.
pub fn report(
    o: &RunStats,
    site: &Site,
    reasons: &[String],
    fin: Finalized,
    cat: &Catalogue,
) -> Report {
    let ifaces = iface_names(o);
    let mut expected = flow_entries(fin.expected, cat, &ifaces);
    let mut unsupported = flow_entries(fin.unsupported_restrictions, cat, &ifaces);
    for (list, is_unsupported) in [(&mut expected, false), (&mut unsupported, true)] {
        for e in list.iter_mut() {
            e.fix = super::rules::fix(cat, site, e, is_unsupported);
        }
    }
    let capture = capture_facts(o);
    let mut warnings = vec![];
    let has_exchange = site.hosts().iter().any(|h| h.role.is_exchange());
    if !has_exchange {
        warnings.push(words::no_exchange_server(
            &capture,
            site.source != SiteSource::Inferred,
        ));
    }
    if let Some(w) = words::filter_matched_nothing(&capture) {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    let one_sided = expected
        .iter()
        .filter(|e| e.verdict == model::Verdict::OneSided)
        .count();
    if one_sided > 0 {
        warnings.push(format!(
            "{one_sided} flow(s) were seen in one direction only: the capture point (a mirror \
             port or a filter) misses the other direction, so those verdicts cannot be trusted."
        ));
    }
    if o.exact_duplicates > 0 {
        warnings.push(words::exact_duplicates(o.exact_duplicates));
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
            o.folded, MAX_GROUPS
        ));
    }
    if fin.fold.destinations + fin.fold.ports > 0 {
        let mut w = format!(
            "{} of them went to destinations past the first {} seen (a flood or scan of an \
             address space) and were summed by zone per port",
            fin.fold.destinations + fin.fold.ports,
            MAX_GROUPS
        );
        if fin.fold.ports > 0 {
            w.push_str(&format!(
                "; {} of those, past {} groups, by zone alone (as port 0)",
                fin.fold.ports,
                MAX_GROUPS + MAX_GROUPS / 8
            ));
        }
        w.push('.');
        warnings.push(w);
    }
    for f in &fin.floods {
        warnings.push(format!(
            "SYN flood against {} port {}: {} sources sent {} single unanswered SYNs; they are \
             kept out of the verdicts.",
            f.target, f.port, f.sources, f.attempts
        ));
    }
    if let Some(w) = words::reorder_warning(&o.reorder) {
        warnings.push(w);
    }
    warnings.extend(words::source_warnings(&o.source));
    for w in &o.source.warnings {
        warnings.push(w.clone());
    }
    if o.sensor_copies > 0 {
        warnings.push(format!(
            "{} seen by more than one input (sensor) counted once",
            if o.sensor_copies == 1 {
                "1 connection".to_string()
            } else {
                format!("{} connections", o.sensor_copies)
            }
        ));
    }
    if o.sensor_forgotten > 0 {
        warnings.push(format!(
            "the merge of several inputs forgot {} older connections to stay bounded: a \
             connection two sensors logged far apart in their files may count twice",
            o.sensor_forgotten
        ));
    }
    let latency = fin
        .latency
        .iter()
        .map(|l| RoleLatency {
            role: cat.roles()[l.role].id.clone(),
            connections: l.connections,
            syn_synack_ms: l.syn_synack,
        })
        .collect();
    let findings = fin.findings.iter().map(finding).collect();
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        findings,
        tool: Tool {
            name: "exflow",
            version: env!("CARGO_PKG_VERSION"),
        },
        capture,
        topology: topology(site, reasons),
        expected,
        unexpected: unexpected_entries(fin.unexpected, cat),
        unsupported_restrictions: unsupported,
        scans: fin.scans.iter().map(scan).collect(),
        floods: fin.floods.iter().map(flood).collect(),
        latency,
        warnings,
        interim: None,
        left_out: BTreeMap::new(),
        inputs: o
            .inputs
            .iter()
            .map(|i| Input {
                file: i.file.clone(),
                kind: i.kind,
                records: i.records.as_ref().map(|s| s.records),
                malformed_lines: i.records.as_ref().map(|s| s.malformed),
                other_events: i
                    .records
                    .as_ref()
                    .filter(|_| i.kind == "eve")
                    .map(|s| s.other_events),
                icmp_attached: i
                    .records
                    .as_ref()
                    .map(|s| s.icmp_attached)
                    .filter(|n| *n > 0),
            })
            .collect(),
    };
    cut_lists(&mut r);
    r
}

/// Cuts every list but the expected flows to [`LIST_MAX`] entries, keeping the largest (in
/// their order), and counts what was left out.
fn cut_lists(r: &mut Report) {
    let mut left = BTreeMap::new();
    let mut note = |list: &'static str, n: u64| {
        if n > 0 {
            left.insert(list, n);
        }
    };
    note("unexpected", cut(&mut r.unexpected, |u| u.attempts));
    note(
        "unsupported_restrictions",
        cut(&mut r.unsupported_restrictions, |e| e.attempts),
    );
    note("scans", cut(&mut r.scans, |s| s.ports_probed));
    note("floods", cut(&mut r.floods, |f| f.sources));
    note("findings", cut(&mut r.findings, |f| f.count));
    note("warnings", cut(&mut r.warnings, |_| 0));
    note("topology.hosts", cut(&mut r.topology.hosts, |_| 0));
    r.left_out = left;
}

/// Keeps the [`LIST_MAX`] entries of the largest weight (the earlier on ties), in the list's
/// order; returns how many were left out.
fn cut<T>(list: &mut Vec<T>, weight: impl Fn(&T) -> u64) -> u64 {
    if list.len() <= LIST_MAX {
        return 0;
    }
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(weight(&list[i])), i));
    let mut keep = vec![false; list.len()];
    for &i in &order[..LIST_MAX] {
        keep[i] = true;
    }
    let n = list.len() - LIST_MAX;
    let mut kept = keep.into_iter();
    list.retain(|_| kept.next().unwrap_or(false));
    n as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::catalogue::HostRole;
    use crate::decode::{Packet, TcpFlags};
    use crate::flow::{FlowConfig, FlowTable};
    use crate::time::Timestamp;
    use std::net::{IpAddr, Ipv4Addr};

    /// Issue 18, finding 5: a flood to random destinations made a 48 MB JSON report (65,528
    /// unexpected entries) and a 202,370-line table. 600 unexpected flows (a source each, a
    /// port each) give lists of at most LIST_MAX entries in every format, each saying how
    /// many were left out.
    #[test]
    fn the_printed_lists_are_bounded_and_say_how_many_were_left_out() {
        let mbx = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
        let mut site = Site::new(Profile::Mailbox);
        site.add_host(HostRole::Mailbox, mbx);
        let mut table = FlowTable::new(FlowConfig::default());
        let mut agg = Aggregator::default();
        let n = 600u16;
        for i in 0..n {
            let net = [[203, 0, 113], [192, 0, 2], [198, 51, 100]][usize::from(i / 200)];
            let src = IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], (i % 200) as u8 + 20));
            let syn = Packet {
                ttl: 60,
                ..Packet::tcp(src, 40_000, mbx, 3_000 + i, TcpFlags::SYN, 1, 0, 0)
            };
            table.observe(Timestamp(i64::from(i) * 1_000), &syn, &mut agg);
        }
        table.finish(&mut agg);
        let cat = Catalogue::embedded().unwrap();
        let (r, site) = conclude_with_site(&RunStats::default(), &agg, Some(&site), None, cat);
        let left = r.left_out.get("unexpected").copied().unwrap_or(0);
        assert_eq!(r.unexpected.len(), LIST_MAX);
        assert_eq!(
            r.unexpected.len() as u64 + left,
            u64::from(n),
            "{:?}",
            r.left_out
        );
        let more = format!("… and {left} more unexpected flows");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(&format!("\"left_out\":{{\"unexpected\":{left}}}")));
        let text = super::super::table::render(&r, &Default::default());
        let md = super::super::markdown::render(&r);
        let html = super::super::html::render(&r, &site, cat);
        for (name, out) in [("table", &text), ("markdown", &md), ("html", &html)] {
            assert!(out.contains(&more), "{name} does not say '{more}'");
        }
        // The summary counts the whole list.
        assert!(text.contains(&format!("{n} unexpected")), "{text}");
    }

    #[test]
    fn a_cut_keeps_the_largest_in_order() {
        let mut v: Vec<u64> = (0..(LIST_MAX as u64 + 10)).collect();
        v.reverse();
        v.push(1_000);
        assert_eq!(cut(&mut v, |x| *x), 11);
        assert_eq!(v.len(), LIST_MAX);
        assert_eq!(v.last(), Some(&1_000));
        assert!(v.windows(2).take(LIST_MAX - 2).all(|w| w[0] > w[1]));
    }
}
