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

use super::document::{self, Section};
use super::layout::*;
use super::model::{Flood, FlowEntry, Report, Scan};
use super::terminal::*;
use super::words::*;
use std::cmp::Ordering;

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
    let mut sections: Vec<Vec<String>> = vec![header_lines(report, &p, width)];
    for section in document::sections(report) {
        let mut lines = title(section.title(), &p, width);
        if let Some(intro) = section.intro(report) {
            lines.extend(wrap(&intro, "  ", 2, width));
        }
        lines.extend(match section {
            Section::Expected if report.expected.is_empty() => vec![],
            Section::Expected => flow_table(&report.expected, &p, width),
            Section::Findings => findings_lines(report, width),
            Section::Unexpected => unexpected_table(report, &p, width),
            Section::Unsupported => flow_table(&report.unsupported_restrictions, &p, width),
            Section::Scans => scans_table(&report.scans, &p, width),
            Section::Floods => floods_table(&report.floods, &p, width),
            Section::Latency => latency_table(report, &p, width),
            Section::Capture => capture_lines(report, width),
            Section::Topology => topology_lines(report, width),
            Section::Warnings => warning_lines(report, &p, width),
        });
        if let Some(more) = section.left_out(report) {
            lines.extend(wrap(&more, "  ", 2, width));
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

/// The table of expected flows (and of unsupported restrictions, which have the same shape).
fn flow_table(entries: &[FlowEntry], p: &Painter, width: usize) -> Vec<String> {
    let sorted = sorted_entries(entries);
    let t = flow_table_of(&sorted);
    let any_failure = sorted.iter().any(|e| failures_compact(e) != "-");
    let failed_shown = t.layout(width).0.get(5).copied().unwrap_or(false);
    let mut lines = t.render(p, width);
    if let Some(folded) = super::words::out_of_view_line(entries) {
        for line in wrap(&folded, "  ", 2, width) {
            lines.push(p.paint(&line, Style::Dim));
        }
    }
    if any_failure && failed_shown {
        lines.extend(failure_legend(p, width));
    }
    lines
}

/// The line under a flow table that says what the failure column's words mean.
/// Broken between its entries, not inside one.
fn failure_legend(p: &Painter, width: usize) -> Vec<String> {
    let entries = [
        "drop = SYNs unanswered",
        "ref = refused by RST",
        "rej = ICMP unreachable",
        "rst = reset mid-stream",
    ];
    let mut lines: Vec<String> = vec![];
    let mut cur = String::new();
    for entry in entries {
        if !cur.is_empty() && text_width(&cur) + text_width(" · ") + text_width(entry) > width {
            lines.push(std::mem::take(&mut cur));
        }
        cur.push_str(if cur.is_empty() { "  " } else { " · " });
        cur.push_str(entry);
    }
    lines.push(cur);
    lines
        .into_iter()
        .map(|line| p.paint(&line, Style::Dim))
        .collect()
}

/// The flow table of these entries, in this order: a row each, with its detail sentence and
/// its fix under a failed one.
fn flow_table_of(entries: &[&FlowEntry]) -> Table {
    let mut t = Table::new(vec![
        Col::left("role").shrink(8),
        Col::left("port").shrink(6),
        Col::left("from → to").shrink(16).note_when_cut(),
        Col::left("verdict"),
        Col::right("att/est").hide(3),
        Col::left("failed").shrink(6).hide(2),
        Col::right("p50 ms").hide(1),
    ]);
    for e in entries {
        let mut row =
            Row::new(vec![
                Cell::plain(sanitize(&e.role)),
                Cell::plain(port_label(e)),
                Cell::plain(format!("{} → {}", side_label(&e.src), side_label(&e.dst)))
                    .or(format!("{} → {}", side_short(&e.src), side_short(&e.dst))),
                Cell::styled(
                    super::words::verdict_label(e.verdict).to_string(),
                    verdict_style(e.verdict),
                ),
                Cell::plain(format!("{}/{}", e.attempts, e.established)),
                Cell::plain(failures_compact(e)),
                Cell::plain(
                    e.handshake_ms
                        .map_or_else(|| "-".to_string(), |h| ms_figure(h.p50)),
                ),
            ]);
        if let Some(note) = entry_note(e) {
            row.notes.push(Note::plain(note));
        }
        if let Some(line) = super::words::services_line(&e.services) {
            row.notes
                .push(Note::labelled(BY_SERVICE, Style::Plain, line));
        }
        if let Some(fix) = &e.fix {
            row.notes
                .push(Note::labelled("fix:", Style::Bold, fix_line(fix)));
        }
        t.rows.push(row);
    }
    t
}

/// Expected flows (or unsupported restrictions) as the report's table draws them at `width`:
/// in its order (problems first), each row with the entry it shows.
pub(crate) fn flow_rows<'a>(
    entries: &'a [FlowEntry],
    p: &Painter,
    width: usize,
) -> (Vec<&'a FlowEntry>, Drawn) {
    let sorted = sorted_entries(entries);
    let drawn = flow_table_of(&sorted).draw(p, width);
    (sorted, drawn)
}

/// The unexpected flows as the report's table draws them at `width`.
pub(crate) fn unexpected_rows(r: &Report, p: &Painter, width: usize) -> Drawn {
    unexpected_table_of(r).draw(p, width)
}

fn unexpected_table(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    unexpected_table_of(r).render(p, width)
}

fn unexpected_table_of(r: &Report) -> Table {
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
            row.notes.push(Note::plain(sanitize(&u.detail)));
        }
        if let Some(line) = super::words::services_line(&u.services) {
            row.notes
                .push(Note::labelled(BY_SERVICE, Style::Plain, line));
        }
        row.notes.push(Note::labelled(
            "example:",
            Style::Plain,
            example_text(&u.example),
        ));
        t.rows.push(row);
    }
    t
}

fn scans_table(scans: &[Scan], p: &Painter, width: usize) -> Vec<String> {
    let mut lines = vec![];
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
            row.notes
                .push(Note::labelled("targets:", Style::Plain, items.join(", ")));
        }
        t.rows.push(row);
    }
    lines.extend(t.render(p, width));
    lines
}

fn floods_table(floods: &[Flood], p: &Painter, width: usize) -> Vec<String> {
    let mut lines = vec![];
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

fn latency_table(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let mut lines = vec![];
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
            Cell::plain(ms_figure(h.p50)),
            Cell::plain(ms_figure(h.p90)),
            Cell::plain(ms_figure(h.p99)),
            Cell::plain(ms_figure(h.max)),
        ]));
    }
    lines.extend(t.render(p, width));
    lines
}

fn capture_lines(r: &Report, width: usize) -> Vec<String> {
    let c = &r.capture;
    let mut lines = vec![];
    let files: Vec<String> = c.files.iter().map(|f| sanitize(f)).collect();
    if files.is_empty() {
        lines.extend(kv("files", "-", width));
    } else {
        lines.extend(kv_items("files", &files, 3, width));
    }
    lines.extend(kv("packets", &c.packets.to_string(), width));
    if let Some(f) = &c.filter {
        lines.extend(kv("filter", &filter_label(f), width));
    }
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
    lines.extend(kv("anomalies", &anomalies_label(r), width));
    lines.extend(kv("evicted flows", &c.evicted_flows.to_string(), width));
    lines.extend(kv("duplicates", &c.duplicate_packets.to_string(), width));
    if !c.tunnels.is_empty() {
        lines.extend(kv("tunnels", &tunnels_label(r), width));
    }
    if c.interfaces.len() > 1 {
        lines.extend(kv("interfaces", &interfaces_label(c), width));
    }
    if c.reordered > 0 {
        lines.extend(kv(
            "reordered",
            &reordered_label(c.reordered, c.max_step_back_ms),
            width,
        ));
    }
    if let Some(d) = c.kernel_drops {
        lines.extend(kv("kernel drops", &d.to_string(), width));
    }
    for w in &c.read_warnings {
        lines.extend(kv("read warning", &sanitize(w), width));
    }
    lines
}

fn topology_lines(r: &Report, width: usize) -> Vec<String> {
    let t = &r.topology;
    let mut lines = vec![];
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

fn warning_lines(r: &Report, p: &Painter, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for w in &r.warnings {
        lines.extend(wrap(
            &sanitize(w),
            &format!("{} ", p.paint("warning:", Style::Yellow)),
            "warning:".len() + 1,
            width,
        ));
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
// A table that fits its width

const TABLE_INDENT: usize = 2;
const COL_GAP: usize = 2;
const NOTE_INDENT: usize = 6;
/// How much further a note's second and later lines are indented.
const NOTE_HANG: usize = 2;
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
    notes: Vec<Note>,
}

/// A sentence under a row: wrapped at word boundaries, its lines after the first indented
/// further (under the text after the label, or by [`NOTE_HANG`] without one).
struct Note {
    /// "fix:", "example:"; empty for none.
    label: &'static str,
    label_style: Style,
    text: String,
}

impl Note {
    fn plain(text: String) -> Self {
        Note {
            label: "",
            label_style: Style::Plain,
            text,
        }
    }
    fn labelled(label: &'static str, label_style: Style, text: String) -> Self {
        Note {
            label,
            label_style,
            text,
        }
    }
    fn lines(&self, p: &Painter, width: usize) -> Vec<String> {
        let lead = " ".repeat(NOTE_INDENT);
        if self.label.is_empty() {
            wrap(&self.text, &lead, NOTE_INDENT + NOTE_HANG, width)
        } else {
            let first = format!("{lead}{} ", p.paint(self.label, self.label_style));
            wrap(
                &self.text,
                &first,
                NOTE_INDENT + text_width(self.label) + 1,
                width,
            )
        }
    }
}

/// A table row as drawn: its line, and the lines of each note under it.
pub(crate) struct RowLines {
    pub(crate) main: String,
    pub(crate) notes: Vec<Vec<String>>,
    /// Which of `notes` is the "by service:" one, if any.
    pub(crate) services: Option<usize>,
}

/// The label of the note that splits a row's connections by Exchange service.
const BY_SERVICE: &str = "by service:";

/// A table as drawn: its heading line and its rows.
pub(crate) struct Drawn {
    pub(crate) head: String,
    pub(crate) rows: Vec<RowLines>,
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
        let drawn = self.draw(p, width);
        let mut lines = vec![drawn.head];
        for row in drawn.rows {
            lines.push(row.main);
            lines.extend(row.notes.into_iter().flatten());
        }
        lines
    }

    fn draw(&self, p: &Painter, width: usize) -> Drawn {
        let (shown, widths) = self.layout(width);
        let heads: Vec<Cell> = self
            .cols
            .iter()
            .map(|c| Cell::styled(c.head.to_string(), Style::Dim))
            .collect();
        let head = self.line(&heads, &shown, &widths, p).0;
        let mut rows = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            let (main, cut) = self.line(&row.cells, &shown, &widths, p);
            let mut notes = Vec::new();
            for ((col, cell), was_cut) in self.cols.iter().zip(row.cells.iter()).zip(cut) {
                if col.note_when_cut && was_cut {
                    notes.push(Note::plain(cell.text.clone()).lines(p, width));
                }
            }
            let mut services = None;
            for note in &row.notes {
                if note.label == BY_SERVICE {
                    services = Some(notes.len());
                }
                notes.push(note.lines(p, width));
            }
            rows.push(RowLines {
                main,
                notes,
                services,
            });
        }
        Drawn { head, rows }
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

/// Each finding as a wrapped paragraph: kind, count, who, the sentence, an example.
fn findings_lines(r: &Report, width: usize) -> Vec<String> {
    let mut out = vec![];
    for f in &r.findings {
        let text = format!(
            "{} ×{} (by {}): {} Example: {}.",
            f.kind,
            f.count,
            f.by,
            f.detail,
            crate::report::words::example_text(&f.example)
        );
        out.extend(super::layout::wrap(
            &super::terminal::sanitize(&text),
            "  ",
            2,
            width,
        ));
    }
    out
}
