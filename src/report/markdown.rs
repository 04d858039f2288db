//! The report as Markdown for a ticket (`--format md`): the same content as the terminal
//! table (`table.rs`, whose helpers it shares), as headings, GitHub tables and lists, with
//! verdicts in **bold** and no colour codes.
//!
//! Every string from the data is first sanitised like the terminal's (control characters
//! become visible escapes such as `\x1b`), then the characters Markdown gives a meaning to
//! (`\ ` | * _ [ ] < > ~ &`) are backslash-escaped, so a pipe in a file name cannot split a
//! table cell and nothing in the data can add links, HTML or formatting. Text GitHub would
//! link by itself (`@mentions`, e-mail addresses, `www.` and `http://` autolinks) gets an
//! invisible zero width joiner inside it (after the `@`, before the `.` of `www.`, after the
//! `:` of `://`): it reads the same, and links or notifies no one.

use super::document::{self, Section};
use super::model::{Fix, FlowEntry, Report, ServiceEntry};
use super::terminal::sanitize;
use super::words::{
    anomalies_label, bytes_label, entry_detail, example_text, failures_words, filter_label,
    interfaces_label, ms_figure, open_ports, port_label, proto_port, reason_label, reordered_label,
    side_label, sorted_entries, summary_text, time_span, topology_source, tunnels_label, utc,
};
use super::words::{dash_if_empty, files_inline, list_limited};
use std::fmt::Write as _;

/// How many files, targets or open ports are listed before "and N more".
const LIST_MAX: usize = 20;

/// Renders the report as Markdown. Ends with a newline.
pub fn render(report: &Report) -> String {
    let r = report;
    let mut out = String::new();
    let _ = writeln!(out, "# exflow report\n");
    let _ = writeln!(
        out,
        "{} {} · {}\n",
        md(r.tool.name),
        md(r.tool.version),
        files_inline(&r.capture.files, md)
    );
    let _ = writeln!(out, "**{}**\n", md_escape(&summary_text(r)));

    for section in document::sections(r) {
        let _ = writeln!(out, "## {}\n", section.title());
        if let Some(intro) = section.intro(r) {
            let _ = writeln!(out, "{}\n", md_escape(&intro));
        }
        match section {
            Section::Expected => {
                if !r.expected.is_empty() {
                    flow_table(&mut out, &r.expected);
                }
            }
            Section::Findings => findings(&mut out, r),
            Section::Unexpected => unexpected(&mut out, r),
            Section::Unsupported => flow_table(&mut out, &r.unsupported_restrictions),
            Section::Scans => scans(&mut out, r),
            Section::Floods => floods(&mut out, r),
            Section::Latency => latency(&mut out, r),
            Section::Capture => capture(&mut out, r),
            Section::Topology => topology(&mut out, r),
            Section::Warnings => warnings(&mut out, r),
        }
        if let Some(more) = section.left_out(r) {
            let _ = writeln!(out, "{}\n", md_escape(&more));
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn findings(out: &mut String, r: &Report) {
    table_head(
        out,
        &["Finding", "Port", "Count", "By", "Example", "Detail"],
    );
    for f in &r.findings {
        table_row(
            out,
            &[
                md_escape(f.kind),
                f.port.to_string(),
                f.count.to_string(),
                md_escape(f.by),
                md_escape(&example_text(&f.example)),
                md_escape(&f.detail),
            ],
        );
    }
    out.push('\n');
}

fn unexpected(out: &mut String, r: &Report) {
    table_head(
        out,
        &[
            "Port",
            "Source",
            "Destination",
            "Reason",
            "Attempts/established",
            "First seen (UTC)",
            "Example",
            "Detail",
        ],
    );
    for u in &r.unexpected {
        table_row(
            out,
            &[
                md_escape(&proto_port(u.proto, &u.port.to_string(), u.port)),
                md_escape(&side_label(&u.src)),
                md_escape(&side_label(&u.dst)),
                md_escape(&reason_label(u)),
                format!("{}/{}", u.attempts, u.established),
                md_escape(&utc(u.first_ts)),
                md_escape(&example_text(&u.example)),
                with_services(
                    Some(u.detail.trim())
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                    &u.services,
                ),
            ],
        );
    }
    out.push('\n');
}

fn scans(out: &mut String, r: &Report) {
    table_head(
        out,
        &[
            "Source",
            "Targets",
            "Ports probed",
            "Open",
            "Closed",
            "Filtered",
            "First seen (UTC)",
        ],
    );
    for s in &r.scans {
        table_row(
            out,
            &[
                md(&s.source),
                dash_if_empty(list_limited(&s.targets, LIST_MAX, md)),
                s.ports_probed.to_string(),
                md_escape(&open_ports(&s.open, LIST_MAX)),
                s.closed.to_string(),
                s.filtered.to_string(),
                md_escape(&utc(s.first_ts)),
            ],
        );
    }
    out.push('\n');
}

fn floods(out: &mut String, r: &Report) {
    table_head(
        out,
        &[
            "Target",
            "Port",
            "Sources",
            "SYNs",
            "First seen (UTC)",
            "Last seen (UTC)",
        ],
    );
    for f in &r.floods {
        table_row(
            out,
            &[
                md(&f.target),
                format!("{}/{}", f.port, f.proto),
                f.sources.to_string(),
                f.attempts.to_string(),
                md_escape(&utc(f.first_ts)),
                md_escape(&utc(f.last_ts)),
            ],
        );
    }
    out.push('\n');
}

fn latency(out: &mut String, r: &Report) {
    table_head(out, &["Role", "Connections", "p50", "p90", "p99", "max"]);
    for l in &r.latency {
        let h = &l.syn_synack_ms;
        table_row(
            out,
            &[
                md(&l.role),
                l.connections.to_string(),
                ms_figure(h.p50),
                ms_figure(h.p90),
                ms_figure(h.p99),
                ms_figure(h.max),
            ],
        );
    }
    out.push('\n');
}

fn warnings(out: &mut String, r: &Report) {
    for w in &r.warnings {
        let _ = writeln!(out, "- warning: {}", md(w));
    }
    out.push('\n');
}

fn flow_table(out: &mut String, entries: &[FlowEntry]) {
    table_head(
        out,
        &[
            "Role",
            "Port",
            "From",
            "To",
            "Verdict",
            "Attempts/established",
            "Failures",
            "Handshake p50 ms",
            "Detail",
            "Fix",
        ],
    );
    for e in sorted_entries(entries) {
        table_row(
            out,
            &[
                md(&e.role),
                md_escape(&port_label(e)),
                md_escape(&side_label(&e.src)),
                md_escape(&side_label(&e.dst)),
                format!("**{}**", super::words::verdict_label(e.verdict)),
                format!("{}/{}", e.attempts, e.established),
                md_escape(&failures_words(e)),
                e.handshake_ms
                    .map_or_else(|| "-".to_string(), |h| ms_figure(h.p50)),
                detail_cell(e),
                e.fix.as_ref().map_or_else(|| "-".to_string(), fix_cell),
            ],
        );
    }
    out.push('\n');
    if let Some(folded) = super::words::out_of_view_line(entries) {
        let _ = writeln!(out, "{}\n", md_escape(&folded));
    }
}

/// A failed flow's fix in one cell: what to allow, then the commands that allow it as code.
fn fix_cell(fix: &Fix) -> String {
    let mut cell = md(&fix.words);
    let commands: Vec<String> = fix.nft.iter().map(|c| code(&sanitize(c))).collect();
    if !commands.is_empty() {
        cell.push_str(": ");
        cell.push_str(&commands.join("; "));
    }
    cell
}

/// Sanitised text as inline code, when nothing in it can end the code span or split a table
/// cell; else escaped as plain text.
fn code(s: &str) -> String {
    if s.is_empty() || s.contains(['`', '|', '\\']) {
        md_escape(s)
    } else {
        format!("`{s}`")
    }
}

fn capture(out: &mut String, r: &Report) {
    let c = &r.capture;
    let _ = writeln!(
        out,
        "- **Files:** {}",
        dash_if_empty(list_limited(&c.files, LIST_MAX, md))
    );
    let _ = writeln!(out, "- **Packets:** {}", c.packets);
    if let Some(f) = &c.filter {
        let _ = writeln!(out, "- **Filter:** {}", md_escape(&filter_label(f)));
    }
    let _ = writeln!(out, "- **Bytes:** {}", md_escape(&bytes_label(c.bytes)));
    let _ = writeln!(
        out,
        "- **Time span:** {}",
        md_escape(&time_span(c.first_ts, c.last_ts))
    );
    let _ = writeln!(out, "- **Connections:** {}", c.connections);
    let _ = writeln!(
        out,
        "- **Link types:** {}",
        dash_if_empty(list_limited(&c.link_types, LIST_MAX, md))
    );
    let _ = writeln!(out, "- **Anomalies:** {}", md_escape(&anomalies_label(r)));
    let _ = writeln!(out, "- **Evicted flows:** {}", c.evicted_flows);
    let _ = writeln!(out, "- **Duplicate packets:** {}", c.duplicate_packets);
    if !c.tunnels.is_empty() {
        let _ = writeln!(out, "- **Tunnels:** {}", md_escape(&tunnels_label(r)));
    }
    if c.interfaces.len() > 1 {
        let _ = writeln!(out, "- **Interfaces:** {}", md_escape(&interfaces_label(c)));
    }
    if c.reordered > 0 {
        let _ = writeln!(
            out,
            "- **Reordered:** {}",
            md_escape(&reordered_label(c.reordered, c.max_step_back_ms))
        );
    }
    if let Some(d) = c.kernel_drops {
        let _ = writeln!(out, "- **Kernel drops:** {d}");
    }
    for w in &c.read_warnings {
        let _ = writeln!(out, "- **Read warning:** {}", md(w));
    }
    out.push('\n');
}

fn topology(out: &mut String, r: &Report) {
    let t = &r.topology;
    let _ = writeln!(out, "- **Source:** {}", md_escape(&topology_source(r)));
    let _ = writeln!(out, "- **Profile:** {}", md(t.profile));
    let _ = writeln!(
        out,
        "- **Internal:** {}",
        dash_if_empty(list_limited(&t.internal, LIST_MAX, md))
    );
    let _ = writeln!(
        out,
        "- **Perimeter:** {}",
        dash_if_empty(list_limited(&t.perimeter, LIST_MAX, md))
    );
    if t.inferred && !t.reasons.is_empty() {
        let _ = writeln!(out, "- **Why:**");
        for reason in &t.reasons {
            let _ = writeln!(out, "  - {}", md(reason));
        }
    }
    out.push('\n');
    if t.hosts.is_empty() {
        let _ = writeln!(out, "No hosts.\n");
    } else {
        table_head(out, &["Address", "Role"]);
        for h in &t.hosts {
            table_row(out, &[md(&h.address), md(h.role)]);
        }
        out.push('\n');
    }
}

fn table_head(out: &mut String, heads: &[&str]) {
    let _ = writeln!(out, "| {} |", heads.join(" | "));
    let rule: Vec<&str> = heads.iter().map(|_| "---").collect();
    let _ = writeln!(out, "| {} |", rule.join(" | "));
}

/// One table row; cells are already escaped.
fn table_row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// Data text, sanitised and Markdown-escaped.
fn md(s: &str) -> String {
    md_escape(&sanitize(s))
}

/// The invisible character put inside text GitHub would turn into a link or a mention:
/// U+200D ZERO WIDTH JOINER, which renders as nothing and is not a character an address, a
/// domain or a user name can contain, so the text reads the same but links nowhere.
const DEFUSE: char = '\u{200d}';

/// Text Markdown-escaped: every character Markdown (or GitHub's tables) gives a meaning to
/// gets a backslash, control and invisible characters become visible escapes (as the
/// terminal's `sanitize` makes them; text already sanitised stays as it is), and what GitHub
/// would make a link or a notification gets a [`DEFUSE`] character: after an `@` that a
/// letter or digit follows (an `@mention`, an e-mail address), between `www` and the `.`
/// after it (`www.` autolinks), and between `:` and `//` (`http://` and other URLs).
fn md_escape(s: &str) -> String {
    let s = sanitize(s);
    let mut out = String::with_capacity(s.len() + 8);
    let b = s.as_bytes();
    for (i, c) in s.char_indices() {
        if matches!(
            c,
            '\\' | '`' | '|' | '*' | '_' | '[' | ']' | '<' | '>' | '~' | '&' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
        let next = |k: usize| b.get(i + k).copied().unwrap_or(0);
        let defuse = match c {
            '@' => next(1).is_ascii_alphanumeric(),
            ':' => next(1) == b'/' && next(2) == b'/',
            'w' | 'W' => {
                i >= 2
                    && b.get(i - 2..=i)
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"www"))
                    && next(1) == b'.'
            }
            _ => false,
        };
        if defuse {
            out.push(DEFUSE);
        }
    }
    out
}

/// A flow's detail cell: its problem sentence and, where services fared differently, the
/// services line ("by service: autodiscover 0/5 established, owa 12/12").
fn detail_cell(e: &FlowEntry) -> String {
    with_services(entry_detail(e), &e.services)
}

/// A detail cell: the sentence (if any) and, where services fared differently, the services
/// line.
fn with_services(detail: Option<String>, services: &[ServiceEntry]) -> String {
    let by_service = super::words::services_line(services);
    match (detail, by_service) {
        (None, None) => "-".to_string(),
        (Some(d), None) => md_escape(&d),
        (None, Some(l)) => md_escape(&format!("by service: {l}")),
        (Some(d), Some(l)) => {
            let sep = if d.ends_with('.') { " " } else { "; " };
            md_escape(&format!("{d}{sep}By service: {l}."))
        }
    }
}
