//! The terminal report (`--format table`): what an Exchange or network admin reads on one
//! screen. Sections, in order: a header line, expected flows (problems first), unexpected
//! flows, unsupported restrictions, port scans, handshake latency per role, capture facts,
//! the topology used, and warnings.
//!
//! Two promises, both checked by `tests/render.rs`:
//! - **No line is wider than [`TableOptions::width`]** (measured in terminal columns; East
//!   Asian wide characters count two). Columns shrink and their text ends in "…"; detail
//!   sentences wrap onto indented lines; any line still too long is cut with "…".
//! - **Nothing from the data can drive the terminal.** Every string that may come from
//!   packets, file names or a site file goes through `sanitize`: control characters (C0,
//!   DEL, C1 — ESC and CSI above all) and the invisible bidirectional / line-separator
//!   characters become visible escapes (`\x1b`, `\x9b`, `\u{202e}`). The only escape
//!   sequences in the output are this module's own SGR colour codes, and only when
//!   [`TableOptions::color`] is set.
//!
//! The small formatting helpers (times, durations, byte counts, flow sides, the problem-first
//! order) are shared with `markdown.rs`, so both formats say the same thing.

use super::model::{Example, Flood, FlowEntry, Report, Scan, Side, Unexpected, Verdict};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The width used when none is known (a pipe, or `width: 0`).
pub const DEFAULT_WIDTH: usize = 100;

/// How the terminal report is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// Colour verdicts and headings with ANSI SGR codes (for a terminal, never for a pipe).
    pub color: bool,
    /// The terminal's width in columns; no line of the report is wider. 0 means
    /// [`DEFAULT_WIDTH`].
    pub width: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            color: false,
            width: DEFAULT_WIDTH,
        }
    }
}

/// Renders the report for a terminal. Ends with a newline.
pub fn render(report: &Report, opts: &TableOptions) -> String {
    let width = if opts.width == 0 {
        DEFAULT_WIDTH
    } else {
        opts.width
    };
    let p = Painter { color: opts.color };
    let mut sections: Vec<Vec<String>> = vec![
        header_lines(report, &p, width),
        expected_section(report, &p, width),
    ];
    if !report.unexpected.is_empty() {
        sections.push(unexpected_section(report, &p, width));
    }
    if !report.unsupported_restrictions.is_empty() {
        let mut lines = title(
            "Unsupported restrictions (traffic Microsoft does not support restricting)",
            &p,
            width,
        );
        lines.extend(flow_table(&report.unsupported_restrictions, &p, width));
        sections.push(lines);
    }
    if !report.scans.is_empty() {
        sections.push(scans_section(&report.scans, &p, width));
    }
    if !report.floods.is_empty() {
        sections.push(floods_section(&report.floods, &p, width));
    }
    if !report.latency.is_empty() {
        sections.push(latency_section(report, &p, width));
    }
    sections.push(capture_section(report, &p, width));
    sections.push(topology_section(report, &p, width));
    if !report.warnings.is_empty() {
        let mut lines = Vec::new();
        for w in &report.warnings {
            lines.extend(wrap(
                &sanitize(w),
                &format!("{} ", p.paint("warning:", Style::Yellow)),
                "warning:".len() + 1,
                width,
            ));
        }
        sections.push(lines);
    }

    let mut out = String::new();
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for line in section {
            out.push_str(&clip_line(line, width, opts.color));
            out.push('\n');
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Sections

/// "exflow 0.1.0 · capture.pcap · 12 expected flows: 8 ok, …" on one line when it fits;
/// else the files on the first line and the summary wrapped under it.
fn header_lines(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let lead = format!("{} {}", sanitize(r.tool.name), sanitize(r.tool.version));
    let atoms = summary_atoms(r);
    let atom_w = |a: &Atom| a.iter().map(|(t, _)| text_width(t)).sum::<usize>();
    let paint_atom = |a: &Atom| a.iter().map(|(t, s)| p.paint(t, *s)).collect::<String>();
    let summary_w = atoms.iter().map(atom_w).sum::<usize>() + atoms.len().saturating_sub(1);
    let lead_w = text_width(&lead);
    let sep = " · ";
    let sep_w = text_width(sep);
    let one_line_budget = width.saturating_sub(lead_w + summary_w + 2 * sep_w);
    if one_line_budget >= 16 {
        let files = files_short(&r.capture.files, one_line_budget);
        let summary: Vec<String> = atoms.iter().map(paint_atom).collect();
        return vec![format!(
            "{}{sep}{files}{sep}{}",
            p.paint(&lead, Style::Bold),
            summary.join(" ")
        )];
    }
    let budget = width.saturating_sub(lead_w + sep_w).max(8);
    let files = files_short(&r.capture.files, budget);
    let mut lines = vec![format!("{}{sep}{files}", p.paint(&lead, Style::Bold))];
    // The summary, broken between atoms; continuation lines indented by two.
    let mut cur = String::new();
    let mut cur_w = 0;
    for atom in &atoms {
        let w = atom_w(atom);
        if !cur.trim().is_empty() {
            if cur_w + 1 + w > width {
                lines.push(std::mem::replace(&mut cur, "  ".to_string()));
                cur_w = 2;
            } else {
                cur.push(' ');
                cur_w += 1;
            }
        }
        cur.push_str(&paint_atom(atom));
        cur_w += w;
    }
    if !cur.trim().is_empty() {
        lines.push(cur);
    }
    lines
}

/// Styled pieces printed together; a line may break between two atoms.
type Atom = Vec<(String, Style)>;

/// "12 expected flows: 8 ok, 1 blocked, 2 not seen · 3 unexpected", as atoms.
fn summary_atoms(r: &Report) -> Vec<Atom> {
    let plain = |t: String| vec![(t, Style::Plain)];
    let mut atoms = Vec::new();
    let n = r.expected.len();
    if n == 0 {
        atoms.push(plain("no expected flows".to_string()));
    } else {
        atoms.push(plain(format!("{n} expected flow{}:", plural(n))));
        let counts = verdict_counts(&r.expected);
        let last = counts.len().saturating_sub(1);
        for (i, (v, count)) in counts.into_iter().enumerate() {
            let mut atom = vec![(format!("{count} {}", v.label()), verdict_style(v))];
            if i < last {
                atom.push((",".to_string(), Style::Plain));
            }
            atoms.push(atom);
        }
    }
    atoms.push(plain(format!("· {} unexpected", r.unexpected.len())));
    let u = r.unsupported_restrictions.len();
    if u > 0 {
        atoms.push(vec![
            ("· ".to_string(), Style::Plain),
            (
                format!("{u} unsupported restriction{}", plural(u)),
                Style::Red,
            ),
        ]);
    }
    let s = r.scans.len();
    if s > 0 {
        atoms.push(plain(format!("· {s} port scan{}", plural(s))));
    }
    let f = r.floods.len();
    if f > 0 {
        atoms.push(plain(format!("· {f} SYN flood{}", plural(f))));
    }
    atoms
}

fn expected_section(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let mut lines = title("Expected flows", p, width);
    if r.expected.is_empty() {
        let text = if has_exchange_server(r) {
            format!(
                "No expected flows for the {} profile.",
                sanitize(r.topology.profile)
            )
        } else {
            "No Exchange server found in this capture: no host accepted connections on \
             Exchange client or mail ports, so there are no expected flows to check."
                .to_string()
        };
        lines.extend(wrap(&text, "  ", 2, width));
        return lines;
    }
    lines.extend(flow_table(&r.expected, p, width));
    lines
}

/// The table of expected flows (and of unsupported restrictions, which have the same shape).
fn flow_table(entries: &[FlowEntry], p: &Painter, width: usize) -> Vec<String> {
    let mut t = Table::new(vec![
        Col::left("role").shrink(8),
        Col::left("port").shrink(6),
        Col::left("from → to").shrink(16).note_when_cut(),
        Col::left("verdict"),
        Col::right("att/est").hide(3),
        Col::left("failed").shrink(6).hide(2),
        Col::right("p50 ms").hide(1),
    ]);
    let mut any_failure = false;
    for e in sorted_entries(entries) {
        let failures = failures_compact(e);
        any_failure |= failures != "-";
        let mut row =
            Row::new(vec![
                Cell::plain(sanitize(&e.role)),
                Cell::plain(port_label(e)),
                Cell::plain(format!("{} → {}", side_label(&e.src), side_label(&e.dst)))
                    .or(format!("{} → {}", side_short(&e.src), side_short(&e.dst))),
                Cell::styled(e.verdict.label().to_string(), verdict_style(e.verdict)),
                Cell::plain(format!("{}/{}", e.attempts, e.established)),
                Cell::plain(failures),
                Cell::plain(
                    e.handshake_ms
                        .map_or_else(|| "-".to_string(), |h| fmt_ms(h.p50)),
                ),
            ]);
        if let Some(note) = entry_note(e) {
            row.notes.push(note);
        }
        t.rows.push(row);
    }
    let failed_shown = t.layout(width).0.get(5).copied().unwrap_or(false);
    let mut lines = t.render(p, width);
    if any_failure && failed_shown {
        let legend = "drop = SYNs unanswered · ref = refused by RST · rej = ICMP unreachable \
                      · rst = reset mid-stream";
        for line in wrap(legend, "  ", 2, width) {
            lines.push(p.paint(&line, Style::Dim));
        }
    }
    lines
}

fn unexpected_section(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let mut lines = title(
        "Unexpected (traffic to or from Exchange that no enabled role explains)",
        p,
        width,
    );
    let one_day = same_utc_day(r.capture.first_ts, r.capture.last_ts);
    let mut t = Table::new(vec![
        Col::left("port").shrink(6),
        Col::left("src → dst").shrink(16).note_when_cut(),
        Col::left("reason").shrink(10),
        Col::right("att/est").hide(2),
        Col::left("first seen").hide(1),
    ]);
    for u in &r.unexpected {
        let mut row =
            Row::new(vec![
                Cell::plain(proto_port(u.proto, &u.port.to_string(), u.port)),
                Cell::plain(format!("{} → {}", side_label(&u.src), side_label(&u.dst)))
                    .or(format!("{} → {}", side_short(&u.src), side_short(&u.dst))),
                Cell::styled(reason_label(u), Style::Yellow).or(sanitize(u.reason)),
                Cell::plain(format!("{}/{}", u.attempts, u.established)),
                Cell::plain(utc_short(u.first_ts, one_day)),
            ]);
        if !u.detail.is_empty() {
            row.notes.push(sanitize(&u.detail));
        }
        row.notes
            .push(format!("example: {}", example_text(&u.example)));
        t.rows.push(row);
    }
    lines.extend(t.render(p, width));
    lines
}

fn scans_section(scans: &[Scan], p: &Painter, width: usize) -> Vec<String> {
    let mut lines = title("Port scans (kept out of the verdicts)", p, width);
    let mut t = Table::new(vec![
        Col::left("source").shrink(12),
        Col::left("targets").shrink(10),
        Col::right("ports"),
        Col::left("open").shrink(8),
        Col::right("closed").hide(2),
        Col::right("filtered").hide(1),
    ]);
    for s in scans {
        let targets = match s.targets.as_slice() {
            [] => "-".to_string(),
            [one] => sanitize(one),
            [first, rest @ ..] => format!("{} +{}", sanitize(first), rest.len()),
        };
        let mut row = Row::new(vec![
            Cell::plain(sanitize(&s.source)),
            Cell::plain(targets),
            Cell::plain(s.ports_probed.to_string()),
            Cell::styled(open_ports(&s.open, 8), Style::Yellow),
            Cell::plain(s.closed.to_string()),
            Cell::plain(s.filtered.to_string()),
        ]);
        if s.targets.len() > 1 {
            let items: Vec<String> = s.targets.iter().map(|t| sanitize(t)).collect();
            row.notes.push(format!("targets: {}", items.join(", ")));
        }
        t.rows.push(row);
    }
    lines.extend(t.render(p, width));
    lines
}

fn floods_section(floods: &[Flood], p: &Painter, width: usize) -> Vec<String> {
    let mut lines = title("SYN floods (kept out of the verdicts)", p, width);
    let mut t = Table::new(vec![
        Col::left("target").shrink(12),
        Col::left("port"),
        Col::right("sources"),
        Col::right("SYNs"),
        Col::left("first seen").hide(1),
    ]);
    for f in floods {
        t.rows.push(Row::new(vec![
            Cell::plain(sanitize(&f.target)),
            Cell::plain(format!("{}/{}", f.port, f.proto)),
            Cell::plain(f.sources.to_string()),
            Cell::plain(f.attempts.to_string()),
            Cell::plain(utc(f.first_ts)),
        ]));
    }
    lines.extend(t.render(p, width));
    lines
}

fn latency_section(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let mut lines = title("Handshake latency per role (SYN → SYN-ACK, ms)", p, width);
    let mut t = Table::new(vec![
        Col::left("role").shrink(8),
        Col::right("conns"),
        Col::right("p50"),
        Col::right("p90").hide(1),
        Col::right("p99").hide(2),
        Col::right("max"),
    ]);
    for l in &r.latency {
        let h = &l.syn_synack_ms;
        t.rows.push(Row::new(vec![
            Cell::plain(sanitize(&l.role)),
            Cell::plain(l.connections.to_string()),
            Cell::plain(fmt_ms(h.p50)),
            Cell::plain(fmt_ms(h.p90)),
            Cell::plain(fmt_ms(h.p99)),
            Cell::plain(fmt_ms(h.max)),
        ]));
    }
    lines.extend(t.render(p, width));
    lines
}

fn capture_section(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let c = &r.capture;
    let mut lines = title("Capture", p, width);
    let files: Vec<String> = c.files.iter().map(|f| sanitize(f)).collect();
    if files.is_empty() {
        lines.extend(kv("files", "-", width));
    } else {
        lines.extend(kv_items("files", &files, 3, width));
    }
    lines.extend(kv("packets", &c.packets.to_string(), width));
    lines.extend(kv("bytes", &bytes_label(c.bytes), width));
    lines.extend(kv("time span", &time_span(c.first_ts, c.last_ts), width));
    lines.extend(kv("connections", &c.connections.to_string(), width));
    let links: Vec<String> = c.link_types.iter().map(|l| sanitize(l)).collect();
    lines.extend(kv(
        "link types",
        &if links.is_empty() {
            "-".to_string()
        } else {
            links.join(", ")
        },
        width,
    ));
    if !c.tunnels.is_empty() {
        lines.extend(kv("tunnels", &tunnels_label(r), width));
    }
    lines.extend(kv("anomalies", &anomalies_label(r), width));
    lines.extend(kv("evicted flows", &c.evicted_flows.to_string(), width));
    lines.extend(kv("duplicates", &c.duplicate_packets.to_string(), width));
    if let Some(d) = c.kernel_drops {
        lines.extend(kv("kernel drops", &d.to_string(), width));
    }
    for w in &c.read_warnings {
        lines.extend(kv("read warning", &sanitize(w), width));
    }
    lines
}

fn topology_section(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let t = &r.topology;
    let mut lines = title("Topology", p, width);
    lines.extend(kv("source", &topology_source(r), width));
    lines.extend(kv("profile", &sanitize(t.profile), width));
    let hosts: Vec<String> = t
        .hosts
        .iter()
        .map(|h| format!("{} {}", sanitize(&h.address), sanitize(h.role)))
        .collect();
    if hosts.is_empty() {
        lines.extend(kv("hosts", "none", width));
    } else {
        lines.extend(kv_items("hosts", &hosts, 4, width));
    }
    for (label, nets) in [("internal", &t.internal), ("perimeter", &t.perimeter)] {
        let nets: Vec<String> = nets.iter().map(|n| sanitize(n)).collect();
        if nets.is_empty() {
            lines.extend(kv(label, "-", width));
        } else {
            lines.extend(kv_items(label, &nets, 3, width));
        }
    }
    if t.inferred {
        for (i, reason) in t.reasons.iter().enumerate() {
            let label = if i == 0 { "why" } else { "" };
            let first = format!("{:KV_INDENT$}{label:<KV_LABEL$}- ", "");
            lines.extend(wrap(
                &sanitize(reason),
                &first,
                KV_INDENT + KV_LABEL + 2,
                width,
            ));
        }
    }
    lines
}

/// A section title in bold, wrapped.
fn title(text: &str, p: &Painter, width: usize) -> Vec<String> {
    wrap(text, "", 2, width)
        .into_iter()
        .map(|l| p.paint(&l, Style::Bold))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Helpers shared with markdown.rs

/// Makes a string from the data safe to print: control characters (C0, DEL, C1) and the
/// invisible characters that reorder or break lines become visible escapes (`\x1b`,
/// `\u{202e}`). Backslashes are left as they are (Windows paths stay readable).
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if needs_escape(c) {
            let n = u32::from(c);
            if n < 0x100 {
                let _ = write!(out, "\\x{n:02x}");
            } else {
                let _ = write!(out, "\\u{{{n:x}}}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// The order verdicts are counted in the summary line.
const SUMMARY_ORDER: [Verdict; 8] = [
    Verdict::Ok,
    Verdict::Blocked,
    Verdict::Refused,
    Verdict::Rejected,
    Verdict::Flaky,
    Verdict::Cut,
    Verdict::OneSided,
    Verdict::NotSeen,
];

/// How many entries have each verdict, in summary order, leaving out zeros.
pub(crate) fn verdict_counts(entries: &[FlowEntry]) -> Vec<(Verdict, usize)> {
    SUMMARY_ORDER
        .iter()
        .map(|&v| (v, entries.iter().filter(|e| e.verdict == v).count()))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// The summary as plain text, e.g. "12 expected flows: 8 ok, 1 blocked · 3 unexpected".
pub(crate) fn summary_text(r: &Report) -> String {
    let atoms: Vec<String> = summary_atoms(r)
        .into_iter()
        .map(|a| a.into_iter().map(|(t, _)| t).collect())
        .collect();
    atoms.join(" ")
}

/// 0 for problems (blocked, refused, rejected, cut, flaky, one-sided), 1 for ok, 2 for not
/// seen: the order expected flows are listed in.
fn verdict_group(v: Verdict) -> u8 {
    match v {
        Verdict::Ok => 1,
        Verdict::NotSeen => 2,
        Verdict::Blocked
        | Verdict::Refused
        | Verdict::Rejected
        | Verdict::Cut
        | Verdict::Flaky
        | Verdict::OneSided => 0,
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum AddrKey {
    None,
    Ip(IpAddr),
    Text(String),
}

fn addr_key(side: &Side) -> AddrKey {
    match side.address.as_deref() {
        None => AddrKey::None,
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) => AddrKey::Ip(ip),
            Err(_) => AddrKey::Text(a.to_string()),
        },
    }
}

/// Problems first, then ok, then not seen; within a group by role, then destination and
/// source address (numerically for IP addresses); otherwise in the order given.
pub(crate) fn sorted_entries(entries: &[FlowEntry]) -> Vec<&FlowEntry> {
    let mut keyed: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                (
                    verdict_group(e.verdict),
                    e.role.as_str(),
                    addr_key(&e.dst),
                    addr_key(&e.src),
                ),
                e,
            )
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, e)| e).collect()
}

/// One side of a flow: "internet", "mailbox 192.0.2.10", "internal 10.1.2.3". Sanitised.
pub(crate) fn side_label(s: &Side) -> String {
    match (s.role, s.address.as_deref()) {
        (Some(role), Some(addr)) => format!("{} {}", sanitize(role), sanitize(addr)),
        (None, Some(addr)) => format!("{} {}", sanitize(s.zone), sanitize(addr)),
        (Some(role), None) => sanitize(role),
        (None, None) => sanitize(s.zone),
    }
}

/// One side as briefly as it can be told: the address alone when there is one, else the
/// zone or role. Sanitised.
fn side_short(s: &Side) -> String {
    match (s.role, s.address.as_deref()) {
        (_, Some(addr)) => sanitize(addr),
        (Some(role), None) => sanitize(role),
        (None, None) => sanitize(s.zone),
    }
}

/// "443/tcp", "5075-5077/tcp", "esp" (IP protocols without ports).
pub(crate) fn proto_port(proto: &str, ports: &str, port: u16) -> String {
    let proto = sanitize(proto);
    if port == 0 && proto != "tcp" && proto != "udp" {
        proto
    } else {
        format!("{}/{proto}", sanitize(ports))
    }
}

/// The port column of an expected entry: the role's port list when it has several (not the
/// whole range "1-65535" of the must-not-restrict roles: the port actually seen then).
pub(crate) fn port_label(e: &FlowEntry) -> String {
    let ports = e.ports.trim();
    if ports.is_empty() || ports == "1-65535" || ports == "0-65535" {
        proto_port(e.proto, &e.port.to_string(), e.port)
    } else {
        proto_port(e.proto, ports, e.port)
    }
}

/// "4 drop 1 rst": the failure counts that are not zero, or "-".
fn failures_compact(e: &FlowEntry) -> String {
    let parts: Vec<String> = [
        (e.dropped, "drop"),
        (e.refused, "ref"),
        (e.rejected, "rej"),
        (e.reset_midstream, "rst"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| format!("{n} {w}"))
    .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" ")
    }
}

/// "4 dropped, 2 refused (by middlebox), 1 rejected (ICMP 3/13 admin-prohibited)": the
/// failure counts in words, or "-". Sanitised.
pub(crate) fn failures_words(e: &FlowEntry) -> String {
    let mut parts = Vec::new();
    if e.dropped > 0 {
        parts.push(format!("{} dropped", e.dropped));
    }
    if e.refused > 0 {
        match e.answered_by {
            Some(by) => parts.push(format!("{} refused (by {})", e.refused, sanitize(by))),
            None => parts.push(format!("{} refused", e.refused)),
        }
    }
    if e.rejected > 0 {
        let icmp: Vec<String> = e.icmp.iter().map(|c| sanitize(c)).collect();
        if icmp.is_empty() {
            parts.push(format!("{} rejected", e.rejected));
        } else {
            parts.push(format!(
                "{} rejected (ICMP {})",
                e.rejected,
                icmp.join(", ")
            ));
        }
    }
    if e.reset_midstream > 0 {
        parts.push(format!("{} reset mid-stream", e.reset_midstream));
    }
    if e.one_sided > 0 {
        parts.push(format!("{} one-sided", e.one_sided));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// The detail sentence of a problem entry (None for ok and not seen, and when empty).
/// Sanitised.
pub(crate) fn entry_detail(e: &FlowEntry) -> Option<String> {
    if matches!(e.verdict, Verdict::Ok | Verdict::NotSeen) || e.detail.trim().is_empty() {
        return None;
    }
    Some(sanitize(e.detail.trim()))
}

/// The indented line under a problem row: the entry's detail sentence, plus who answered and
/// the ICMP codes when the sentence does not already say so (the compact failure column does
/// not). None for ok and not seen.
fn entry_note(e: &FlowEntry) -> Option<String> {
    if matches!(e.verdict, Verdict::Ok | Verdict::NotSeen) {
        return None;
    }
    let mut note = sanitize(e.detail.trim());
    let mut extra = Vec::new();
    if let Some(by) = e.answered_by {
        if !note.contains(by) {
            extra.push(format!("answered by {}", sanitize(by)));
        }
    }
    let icmp: Vec<String> = e
        .icmp
        .iter()
        .filter(|c| !e.detail.contains(c.as_str()))
        .map(|c| sanitize(c))
        .collect();
    if !icmp.is_empty() {
        extra.push(format!("ICMP {}", icmp.join(", ")));
    }
    if !extra.is_empty() {
        if !note.is_empty() {
            note.push(' ');
        }
        let _ = write!(note, "({})", extra.join("; "));
    }
    if note.is_empty() {
        None
    } else {
        Some(note)
    }
}

/// "disabled-service (pop3)". Sanitised.
pub(crate) fn reason_label(u: &Unexpected) -> String {
    match &u.role {
        Some(role) => format!("{} ({})", sanitize(u.reason), sanitize(role)),
        None => sanitize(u.reason),
    }
}

/// "198.51.100.7:51234 → [2001:db8::10]:110 S0 S". Sanitised.
pub(crate) fn example_text(x: &Example) -> String {
    let history = if x.history.is_empty() {
        "-".to_string()
    } else {
        sanitize(&x.history)
    };
    format!(
        "{} → {} {} {history}",
        endpoint(&x.orig_h, x.orig_p),
        endpoint(&x.resp_h, x.resp_p),
        sanitize(x.conn_state),
    )
}

/// "192.0.2.1:25", "[2001:db8::1]:25".
fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{}]:{port}", sanitize(addr))
    } else {
        format!("{}:{port}", sanitize(addr))
    }
}

/// "25, 80, 443 +12": at most `max` ports, then how many more.
pub(crate) fn open_ports(open: &[u16], max: usize) -> String {
    if open.is_empty() {
        return "-".to_string();
    }
    let shown: Vec<String> = open.iter().take(max).map(|p| p.to_string()).collect();
    let mut s = shown.join(", ");
    if open.len() > max {
        let _ = write!(s, " +{}", open.len() - max);
    }
    s
}

/// Whether the topology names a Mailbox or Edge server.
pub(crate) fn has_exchange_server(r: &Report) -> bool {
    r.topology
        .hosts
        .iter()
        .any(|h| h.role == "mailbox" || h.role == "edge")
}

/// "from site file site.toml" or "inferred from traffic". Sanitised.
pub(crate) fn topology_source(r: &Report) -> String {
    match (&r.topology.site_file, r.topology.inferred) {
        (Some(f), false) => format!("from site file {}", sanitize(f)),
        (Some(f), true) => format!("site file {}, completed from traffic", sanitize(f)),
        (None, true) => "inferred from traffic".to_string(),
        (None, false) => "given".to_string(),
    }
}

/// "geneve 6, vxlan 10": the tunnel headers opened, by kind. Sanitised.
pub(crate) fn tunnels_label(r: &Report) -> String {
    let parts: Vec<String> = r
        .capture
        .tunnels
        .iter()
        .map(|(k, n)| format!("{} {n}", sanitize(k)))
        .collect();
    parts.join(", ")
}

/// "snaplen_cut 3, bad_ip 1" or "none". Sanitised.
pub(crate) fn anomalies_label(r: &Report) -> String {
    let parts: Vec<String> = r
        .capture
        .anomalies
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{} {n}", sanitize(k)))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// Milliseconds with three significant digits ("0.234", "1.23", "12.3", "123", "1234");
/// "-" for a value that is not a finite number.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "-".to_string();
    }
    let a = ms.abs();
    if a >= 100.0 {
        format!("{ms:.0}")
    } else if a >= 10.0 {
        format!("{ms:.1}")
    } else if a >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// "1.2 MiB (1234567 bytes)".
pub(crate) fn bytes_label(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit} ({n} bytes)")
}

/// Seconds since the epoch → (days since the epoch, second of the day), or None when the
/// value is not a time between the years 1 and 9999.
fn split_ts(ts: f64) -> Option<(i64, i64)> {
    if !ts.is_finite() || !(-62_135_596_800.0..253_402_300_800.0).contains(&ts) {
        return None;
    }
    let secs = ts.floor() as i64;
    Some((secs.div_euclid(86_400), secs.rem_euclid(86_400)))
}

fn hms(sod: i64) -> String {
    format!("{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60)
}

/// "2024-05-01 10:00:00" (UTC), or the raw number when it is not a plausible time.
pub(crate) fn utc(ts: f64) -> String {
    match split_ts(ts) {
        Some((days, sod)) => {
            let (y, m, d) = crate::time::civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02} {}", hms(sod))
        }
        None if ts.is_finite() => format!("{ts:.3}"),
        None => "-".to_string(),
    }
}

/// "10:00:00" when the whole capture is within one UTC day, else "05-01 10:00:00".
fn utc_short(ts: f64, one_day: bool) -> String {
    match split_ts(ts) {
        Some((_, sod)) if one_day => hms(sod),
        Some((days, sod)) => {
            let (_, m, d) = crate::time::civil_from_days(days);
            format!("{m:02}-{d:02} {}", hms(sod))
        }
        None => utc(ts),
    }
}

fn same_utc_day(a: Option<f64>, b: Option<f64>) -> bool {
    match (a.and_then(split_ts), b.and_then(split_ts)) {
        (Some((da, _)), Some((db, _))) => da == db,
        _ => false,
    }
}

/// "5m 12s", "1h 02m 03s", "0.532s", "2d 3h 04m".
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_string();
    }
    if secs < 1.0 {
        return format!("{secs:.3}s");
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// "2024-05-01 10:00:00 → 10:05:12 UTC (5m 12s)", or "-" when nothing was read.
pub(crate) fn time_span(first: Option<f64>, last: Option<f64>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => {
            let end = if same_utc_day(first, last) {
                split_ts(b).map_or_else(|| utc(b), |(_, sod)| hms(sod))
            } else {
                utc(b)
            };
            format!("{} → {end} UTC ({})", utc(a), duration(b - a))
        }
        (Some(a), None) | (None, Some(a)) => format!("{} UTC", utc(a)),
        (None, None) => "-".to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

// ------------------------------------------------------------------------------------------
// Colours

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Plain,
    Bold,
    Dim,
    Green,
    Red,
    Yellow,
    Magenta,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Green => "\x1b[32m",
            Style::Red => "\x1b[31m",
            Style::Yellow => "\x1b[33m",
            Style::Magenta => "\x1b[35m",
        }
    }
}

const RESET: &str = "\x1b[0m";

fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Ok => Style::Green,
        Verdict::Blocked | Verdict::Refused | Verdict::Rejected | Verdict::Cut => Style::Red,
        Verdict::Flaky => Style::Yellow,
        Verdict::NotSeen => Style::Dim,
        Verdict::OneSided => Style::Magenta,
    }
}

struct Painter {
    color: bool,
}

impl Painter {
    /// `text` (already sanitised) in `style`, when colour is on.
    fn paint(&self, text: &str, style: Style) -> String {
        if !self.color || style == Style::Plain || text.is_empty() {
            text.to_string()
        } else {
            format!("{}{text}{RESET}", style.code())
        }
    }
}

// ------------------------------------------------------------------------------------------
// Widths, truncation, wrapping

/// Terminal columns of one character: two for East Asian wide and emoji ranges, else one
/// (zero-width characters count one, which only over-estimates).
fn char_width(c: char) -> usize {
    match u32::from(c) {
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// Columns of a string without escape sequences.
fn text_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Columns of a line that may hold this module's SGR codes (`ESC [ … m`).
fn visible_width(s: &str) -> usize {
    let mut w = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            w += char_width(c);
        }
    }
    w
}

/// `s` cut to `width` columns, ending in "…" when cut; and whether it was cut.
fn truncate(s: &str, width: usize) -> (String, bool) {
    if text_width(s) <= width {
        return (s.to_string(), false);
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    (out, true)
}

/// `s` cut from the left to `width` columns ("…/dir/file.pcap"): for paths, whose end says
/// the most.
fn truncate_left(s: &str, width: usize) -> String {
    if text_width(s) <= width {
        return s.to_string();
    }
    let mut tail: Vec<char> = Vec::new();
    let mut w = 0;
    for c in s.chars().rev() {
        let cw = char_width(c);
        if w + cw + 1 > width {
            break;
        }
        tail.push(c);
        w += cw;
    }
    let mut out = String::from(if width > 0 { "…" } else { "" });
    out.extend(tail.iter().rev());
    out
}

/// A finished line cut to `width` visible columns, keeping SGR codes whole; a cut line ends
/// in "…" (and a colour reset when colour is on).
fn clip_line(line: &str, width: usize, color: bool) -> String {
    if visible_width(line) <= width {
        return line.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            let mut seq = String::from(c);
            for c in chars.by_ref() {
                seq.push(c);
                if c == 'm' {
                    break;
                }
            }
            if color {
                out.push_str(&seq);
            }
            continue;
        }
        let cw = char_width(c);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    if color {
        out.push_str(RESET);
    }
    out
}

/// Word-wraps `text` (sanitised, no escapes) to `width` columns: the first line starts with
/// `first` (which may be coloured), the others with `indent` spaces. Words longer than a line
/// are split.
fn wrap(text: &str, first: &str, indent: usize, width: usize) -> Vec<String> {
    let first_w = visible_width(first);
    let mut lines = Vec::new();
    let mut cur = first.to_string();
    let mut cur_w = 0; // text columns on the current line
    let mut avail = width.saturating_sub(first_w).max(1);
    let cont = " ".repeat(indent);
    let cont_avail = width.saturating_sub(indent).max(1);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word = word.to_string();
        loop {
            let ww = text_width(&word);
            let need = if cur_w == 0 { ww } else { cur_w + 1 + ww };
            if need <= avail {
                if cur_w > 0 {
                    cur.push(' ');
                }
                cur.push_str(&word);
                cur_w = need;
                break;
            }
            if cur_w > 0 {
                lines.push(std::mem::replace(&mut cur, cont.clone()));
                cur_w = 0;
                avail = cont_avail;
                continue;
            }
            // A word longer than a whole line: split it.
            let (head, rest) = split_at_width(&word, avail);
            cur.push_str(&head);
            lines.push(std::mem::replace(&mut cur, cont.clone()));
            avail = cont_avail;
            if rest.is_empty() {
                break;
            }
            word = rest;
        }
    }
    if cur_w > 0 || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The first `width` columns of `s` (at least one character) and the rest.
fn split_at_width(s: &str, width: usize) -> (String, String) {
    let mut w = 0;
    let mut idx = s.len();
    for (i, c) in s.char_indices() {
        let cw = char_width(c);
        if i > 0 && w + cw > width {
            idx = i;
            break;
        }
        w += cw;
    }
    (s[..idx].to_string(), s[idx..].to_string())
}

const KV_INDENT: usize = 2;
const KV_LABEL: usize = 14;

/// "  label         value", the value wrapped under itself.
fn kv(label: &str, value: &str, width: usize) -> Vec<String> {
    let first = format!("{:KV_INDENT$}{label:<KV_LABEL$}", "");
    wrap(value, &first, KV_INDENT + KV_LABEL, width)
}

/// A labelled list packed onto at most `max_lines` lines; items too long for a line are cut
/// from the left; what does not fit is counted ("+180 more").
fn kv_items(label: &str, items: &[String], max_lines: usize, width: usize) -> Vec<String> {
    let indent = KV_INDENT + KV_LABEL;
    let avail = width.saturating_sub(indent).max(8);
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut cur_w = 0;
    for item in items {
        let item = truncate_left(item, avail.saturating_sub(1));
        let iw = text_width(&item);
        let need = if cur.is_empty() { iw } else { cur_w + 2 + iw };
        // Every line but the last ends in ",".
        if !cur.is_empty() && need + 1 > avail {
            lines.push(std::mem::take(&mut cur));
            cur_w = iw;
        } else {
            cur_w = need;
        }
        cur.push(item);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines.max(1));
        let shown: usize = lines.iter().map(Vec::len).sum();
        let mut remaining = items.len() - shown;
        if let Some(last) = lines.last_mut() {
            loop {
                let text = format!("{} +{remaining} more", last.join(", "));
                if text_width(&text) <= avail || last.len() <= 1 {
                    break;
                }
                last.pop();
                remaining += 1;
            }
            let more = format!("+{remaining} more");
            if let Some(item) = last.last_mut() {
                item.push(' ');
                item.push_str(&more);
            }
        }
    }
    let n = lines.len();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, items)| {
            let lead = if i == 0 { label } else { "" };
            let comma = if i + 1 < n { "," } else { "" };
            format!(
                "{:KV_INDENT$}{lead:<KV_LABEL$}{}{comma}",
                "",
                items.join(", ")
            )
        })
        .collect()
}

/// The files for the header line, within `budget` columns: all of them, or the first one
/// (cut from the left) and how many more.
fn files_short(files: &[String], budget: usize) -> String {
    let files: Vec<String> = files.iter().map(|f| sanitize(f)).collect();
    match files.as_slice() {
        [] => "no files".to_string(),
        [one] => truncate_left(one, budget),
        [first, rest @ ..] => {
            let all = files.join(", ");
            if text_width(&all) <= budget {
                return all;
            }
            let more = format!(" +{} more", rest.len());
            let room = budget.saturating_sub(text_width(&more)).max(4);
            format!("{}{more}", truncate_left(first, room))
        }
    }
}

// ------------------------------------------------------------------------------------------
// A table that fits its width

const TABLE_INDENT: usize = 2;
const COL_GAP: usize = 2;
const NOTE_INDENT: usize = 6;
/// Columns an endpoint column ("from → to") gets before other columns are hidden for it:
/// enough for "mailbox 192.0.2.10 → internet".
const KEY_COMFORT: usize = 30;

struct Col {
    head: &'static str,
    right: bool,
    /// The narrowest this column may shrink to; None: it never shrinks.
    min: Option<usize>,
    /// When a cell of this column is cut, print it whole on a note line under the row.
    note_when_cut: bool,
    /// Whether the column may be left out when the table cannot fit otherwise; the lowest
    /// rank goes first.
    hide_rank: Option<u8>,
}

impl Col {
    fn left(head: &'static str) -> Self {
        Col {
            head,
            right: false,
            min: None,
            note_when_cut: false,
            hide_rank: None,
        }
    }
    fn right(head: &'static str) -> Self {
        Col {
            right: true,
            ..Col::left(head)
        }
    }
    fn shrink(self, min: usize) -> Self {
        Col {
            min: Some(min),
            ..self
        }
    }
    fn note_when_cut(self) -> Self {
        Col {
            note_when_cut: true,
            ..self
        }
    }
    fn hide(self, rank: u8) -> Self {
        Col {
            hide_rank: Some(rank),
            ..self
        }
    }
}

struct Cell {
    text: String,
    /// A shorter way to say the same, used when `text` does not fit its column.
    alt: Option<String>,
    style: Style,
}

impl Cell {
    fn plain(text: String) -> Self {
        Cell::styled(text, Style::Plain)
    }
    fn styled(text: String, style: Style) -> Self {
        Cell {
            text,
            alt: None,
            style,
        }
    }
    fn or(self, alt: String) -> Self {
        Cell {
            alt: Some(alt),
            ..self
        }
    }
    /// The narrowest this cell can be without cutting anything.
    fn short_width(&self) -> usize {
        let w = text_width(&self.text);
        self.alt.as_deref().map_or(w, |a| w.min(text_width(a)))
    }
    /// The text to print in `width` columns, and whether it had to be cut.
    fn fit(&self, width: usize) -> (String, bool) {
        if text_width(&self.text) <= width {
            return (self.text.clone(), false);
        }
        match self.alt.as_deref() {
            Some(alt) if text_width(alt) <= width => (alt.to_string(), false),
            Some(alt) => (truncate(alt, width).0, true),
            None => truncate(&self.text, width),
        }
    }
}

struct Row {
    cells: Vec<Cell>,
    /// Sentences printed, wrapped, on indented lines under the row.
    notes: Vec<String>,
}

impl Row {
    fn new(cells: Vec<Cell>) -> Self {
        Row {
            cells,
            notes: Vec::new(),
        }
    }
}

struct Table {
    cols: Vec<Col>,
    rows: Vec<Row>,
}

impl Table {
    fn new(cols: Vec<Col>) -> Self {
        Table {
            cols,
            rows: Vec::new(),
        }
    }

    /// The widest a column's cells (and head) need, with `cell_width` measuring a cell; 0 for
    /// a hidden column.
    fn col_widths(&self, shown: &[bool], cell_width: impl Fn(&Cell) -> usize) -> Vec<usize> {
        self.cols
            .iter()
            .zip(shown)
            .enumerate()
            .map(|(i, (c, &shown))| {
                if !shown {
                    return 0;
                }
                self.rows
                    .iter()
                    .filter_map(|r| r.cells.get(i))
                    .map(&cell_width)
                    .max()
                    .unwrap_or(0)
                    .max(text_width(c.head))
            })
            .collect()
    }

    /// Column widths for the `shown` columns, and the table's total width: each column's
    /// widest cell; then, until the table fits `width`, the shrinkable columns narrowed (the
    /// widest first), first only as far as their shorter texts allow (nothing is cut), then
    /// down to their minimum (texts end in "…").
    fn widths(&self, width: usize, shown: &[bool]) -> (Vec<usize>, usize) {
        let mut widths = self.col_widths(shown, |c| text_width(&c.text));
        let short = self.col_widths(shown, Cell::short_width);
        let n_shown = shown.iter().filter(|&&s| s).count();
        let gaps = COL_GAP * n_shown.saturating_sub(1);
        let mut total = TABLE_INDENT + gaps + widths.iter().sum::<usize>();
        let uncut_floor: Vec<Option<usize>> = self
            .cols
            .iter()
            .zip(&short)
            .map(|(c, &s)| c.min.map(|m| m.max(s)))
            .collect();
        let hard_floor: Vec<Option<usize>> = self.cols.iter().map(|c| c.min).collect();
        for floor in [uncut_floor, hard_floor] {
            while total > width {
                let widest = widths
                    .iter()
                    .zip(&floor)
                    .zip(shown)
                    .enumerate()
                    .filter(|(_, ((&w, f), &s))| s && f.is_some_and(|f| w > f))
                    .max_by(|a, b| match ((a.1).0).0.cmp(((b.1).0).0) {
                        // The leftmost of equals.
                        Ordering::Equal => b.0.cmp(&a.0),
                        o => o,
                    })
                    .map(|(i, _)| i);
                match widest.and_then(|i| widths.get_mut(i)) {
                    Some(w) => {
                        *w -= 1;
                        total -= 1;
                    }
                    None => break,
                }
            }
        }
        (widths, total)
    }

    /// Which columns are shown and how wide. Hideable columns are left out (lowest rank
    /// first) while the table does not fit `width`, or while it would squeeze a column whose
    /// cut text is repeated under the row (the flow's endpoints) below a readable width; if
    /// no choice does both, the one that fits with the most room for that column.
    fn layout(&self, width: usize) -> (Vec<bool>, Vec<usize>) {
        let all = vec![true; self.cols.len()];
        let short = self.col_widths(&all, Cell::short_width);
        let mut shown = all;
        let mut last_fit: Option<(Vec<bool>, Vec<usize>)> = None;
        loop {
            let (widths, total) = self.widths(width, &shown);
            let fits = total <= width;
            let roomy = self
                .cols
                .iter()
                .zip(widths.iter().zip(&short))
                .all(|(c, (&w, &s))| !c.note_when_cut || w >= s.min(KEY_COMFORT));
            if fits && roomy {
                return (shown, widths);
            }
            if fits {
                last_fit = Some((shown.clone(), widths.clone()));
            }
            let next = self
                .cols
                .iter()
                .zip(&shown)
                .enumerate()
                .filter(|(_, (c, &s))| s && c.hide_rank.is_some())
                .min_by_key(|(_, (c, _))| c.hide_rank)
                .map(|(i, _)| i);
            match next.and_then(|i| shown.get_mut(i)) {
                Some(s) => *s = false,
                None => return last_fit.unwrap_or((shown, widths)),
            }
        }
    }

    fn render(&self, p: &Painter, width: usize) -> Vec<String> {
        let (shown, widths) = self.layout(width);
        let mut lines = Vec::new();
        let heads: Vec<Cell> = self
            .cols
            .iter()
            .map(|c| Cell::styled(c.head.to_string(), Style::Dim))
            .collect();
        lines.push(self.line(&heads, &shown, &widths, p).0);
        for row in &self.rows {
            let (line, cut) = self.line(&row.cells, &shown, &widths, p);
            lines.push(line);
            for ((col, cell), was_cut) in self.cols.iter().zip(row.cells.iter()).zip(cut) {
                if col.note_when_cut && was_cut {
                    lines.extend(wrap(
                        &cell.text,
                        &" ".repeat(NOTE_INDENT),
                        NOTE_INDENT,
                        width,
                    ));
                }
            }
            for note in &row.notes {
                lines.extend(wrap(note, &" ".repeat(NOTE_INDENT), NOTE_INDENT, width));
            }
        }
        lines
    }

    /// One row, and which of its cells were cut.
    fn line(
        &self,
        cells: &[Cell],
        shown: &[bool],
        widths: &[usize],
        p: &Painter,
    ) -> (String, Vec<bool>) {
        let mut line = " ".repeat(TABLE_INDENT);
        let mut cut = Vec::with_capacity(cells.len());
        let last_shown = shown.iter().rposition(|&s| s).unwrap_or(0);
        for (i, (col, &w)) in self.cols.iter().zip(widths).enumerate() {
            if !shown.get(i).copied().unwrap_or(false) {
                cut.push(false);
                continue;
            }
            let (text, was_cut) = match cells.get(i) {
                Some(cell) => {
                    let (t, c) = cell.fit(w);
                    (p.paint(&t, cell.style), c)
                }
                None => (String::new(), false),
            };
            cut.push(was_cut);
            let pad = " ".repeat(w.saturating_sub(visible_width(&text)));
            let last = i == last_shown;
            if col.right {
                line.push_str(&pad);
                line.push_str(&text);
            } else {
                line.push_str(&text);
                if !last {
                    line.push_str(&pad);
                }
            }
            if !last {
                line.push_str(&" ".repeat(COL_GAP));
            }
        }
        (line.trim_end().to_string(), cut)
    }
}
