//! The live view: what `exflow live` shows on a terminal between two reports. One screen,
//! redrawn in place on the terminal's alternate screen (so the scrollback keeps no copy of
//! it; the final report is printed whole on the normal screen after it):
//!
//! - a status line: interface, time elapsed, packets, packets dropped, how to get the final
//!   report;
//! - the verdict summary;
//! - failed flows, then unsupported restrictions, then unexpected flows (their rows first;
//!   then, as room allows, one "by service:" line under each row whose Exchange services
//!   fared differently, then the detail and the fix under each failed row);
//! - the other expected flows as room allows (and their "by service:" lines);
//! - what did not fit, counted on the last line.
//!
//! The same promises as the table's: no line wider than the terminal, and never more lines
//! than it has rows; nothing from the data reaches the terminal as a control sequence (the rows
//! are the table's own, sanitised). The escape sequences that switch screens and move the
//! cursor are this module's.

use super::document::Section;
use super::layout::{clip_line, text_width, wrap};
use super::model::{Report, Verdict};
use super::table::{flow_rows, unexpected_rows, RowLines, TableOptions, DEFAULT_WIDTH};
use super::terminal::{sanitize, Painter, Style};
use super::words::{duration, plural_s, summary_atoms};

/// Switches to the alternate screen and hides the cursor (before the first view).
pub const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Shows the cursor and goes back to the normal screen, as it was (after the last view).
pub const LEAVE: &str = "\x1b[?25h\x1b[?1049l";

/// What the view's status line says besides the report.
pub struct Status<'a> {
    /// The interface captured on.
    pub interface: &'a str,
    /// Time since the capture started.
    pub elapsed: std::time::Duration,
}

/// The view of `report` for a terminal of `opts.width` columns (0: the table's default) and
/// `rows` rows: at most `rows` lines (at least one), none wider than the width.
pub fn render(report: &Report, status: &Status, opts: &TableOptions, rows: usize) -> Vec<String> {
    let width = if opts.width == 0 {
        DEFAULT_WIDTH
    } else {
        opts.width
    };
    let rows = rows.max(1);
    let p = Painter { color: opts.color };
    let mut lines = vec![status_line(report, status, &p, width)];
    lines.extend(summary_lines(report, &p, width));
    if report.expected.is_empty() {
        // Why there is nothing to judge (no Exchange server seen yet, or none in the site).
        if let Some(why) = Section::Expected.intro(report) {
            lines.extend(wrap(&why, "", 0, width).into_iter().take(2));
        }
    }
    lines.push(String::new());

    let (entries, expected) = flow_rows(&report.expected, &p, width);
    let (failed, other): (Vec<_>, Vec<_>) = entries
        .iter()
        .zip(expected.rows)
        .partition(|(e, _)| is_failed(e.verdict));
    let mut parts = vec![
        Part::new(
            "Failed flows",
            &expected.head,
            failed.into_iter().map(|(_, r)| r).collect(),
        ),
        {
            let (_, unsupported) = flow_rows(&report.unsupported_restrictions, &p, width);
            Part::new(
                "Unsupported restrictions",
                &unsupported.head,
                unsupported.rows,
            )
        },
        {
            let unexpected = unexpected_rows(report, &p, width);
            Part::new("Unexpected flows", &unexpected.head, unexpected.rows)
        },
        Part::new(
            "Other expected flows",
            &expected.head,
            other.into_iter().map(|(_, r)| r).collect(),
        ),
    ];

    // Room for the parts: the screen less the lines above and the "more" line at the bottom.
    let mut room = rows.saturating_sub(lines.len() + 1);
    // Failed flows, unsupported restrictions and unexpected flows, their rows in order.
    'first: for part in parts.iter_mut().take(3) {
        while part.shown < part.rows.len() {
            if !part.show_next(&mut room) {
                break 'first;
            }
        }
    }
    // Under those rows, where their services fared differently, the services: one line each.
    for part in parts.iter_mut().take(3) {
        part.show_services(&mut room);
    }
    // The detail and the fix under the failed rows shown.
    for part in parts.iter_mut().take(2) {
        for i in 0..part.shown {
            for n in 0..part.rows[i].notes.len() {
                if part.notes.contains(&(i, n)) {
                    continue;
                }
                let need = part.rows[i].notes[n].len();
                if need <= room {
                    room -= need;
                    part.notes.push((i, n));
                }
            }
        }
    }
    // The other expected flows, then their services.
    if parts.iter().take(3).all(|p| p.shown == p.rows.len()) {
        if let Some(rest) = parts.get_mut(3) {
            while rest.shown < rest.rows.len() && rest.show_next(&mut room) {}
            rest.show_services(&mut room);
        }
    }

    for part in &parts {
        if part.shown == 0 {
            continue;
        }
        lines.push(p.paint(part.title, Style::Bold));
        lines.push(part.head.clone());
        for (i, row) in part.rows.iter().take(part.shown).enumerate() {
            lines.push(row.main.clone());
            for (n, note) in row.notes.iter().enumerate() {
                if !part.notes.contains(&(i, n)) {
                    continue;
                }
                if row.services == Some(n) {
                    lines.push(one_line(note, width, opts.color));
                } else {
                    lines.extend(note.iter().cloned());
                }
            }
        }
    }
    let hidden: usize = parts.iter().map(|p| p.rows.len() - p.shown).sum();
    if hidden > 0 {
        let more = format!(
            "… {hidden} more flow{} not shown: Ctrl-C for the final report",
            plural_s(hidden)
        );
        lines.push(p.paint(&more, Style::Dim));
    }
    lines.truncate(rows);
    lines
        .iter()
        .map(|l| clip_line(l, width, opts.color))
        .collect()
}

/// The bytes that draw `lines` over the previous view: cursor home, each line written after
/// its row is erased (erasing after the text would take the last column's character with it
/// on a terminal whose cursor waits there to wrap), the rows below the last one erased with
/// it. The cursor ends on the last line, so a view as tall as the screen never scrolls.
pub fn frame(lines: &[String]) -> String {
    let mut out = String::from("\x1b[H");
    if lines.is_empty() {
        out.push_str("\x1b[J");
    }
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(if i + 1 == lines.len() {
            "\x1b[J"
        } else {
            "\x1b[K"
        });
        out.push_str(line);
    }
    out
}

/// The verdicts the view lists first: those a firewall change may fix.
fn is_failed(v: Verdict) -> bool {
    matches!(
        v,
        Verdict::Blocked | Verdict::Refused | Verdict::Rejected | Verdict::Flaky | Verdict::Cut
    )
}

/// A note as one line at most `width` wide: its wrapped lines joined again, cut with "…"
/// where they do not fit.
fn one_line(note: &[String], width: usize, color: bool) -> String {
    let mut line = String::new();
    for (i, l) in note.iter().enumerate() {
        if i == 0 {
            line.push_str(l.trim_end());
        } else {
            line.push(' ');
            line.push_str(l.trim());
        }
    }
    clip_line(&line, width, color)
}

/// A section of the view: its rows, how many are shown, and which of their notes.
struct Part {
    title: &'static str,
    head: String,
    rows: Vec<RowLines>,
    shown: usize,
    /// (row, note) of the notes shown.
    notes: Vec<(usize, usize)>,
}

impl Part {
    fn new(title: &'static str, head: &str, rows: Vec<RowLines>) -> Self {
        Part {
            title,
            head: head.to_string(),
            rows,
            shown: 0,
            notes: Vec::new(),
        }
    }

    /// Shows the next row if it fits in `room` (with the title and the heading, for the
    /// first); whether it did.
    fn show_next(&mut self, room: &mut usize) -> bool {
        let need = if self.shown == 0 { 3 } else { 1 };
        if need > *room {
            return false;
        }
        *room -= need;
        self.shown += 1;
        true
    }

    /// Shows the services note (one line) of each row shown that has one, as room allows.
    fn show_services(&mut self, room: &mut usize) {
        for (i, row) in self.rows.iter().take(self.shown).enumerate() {
            if let Some(n) = row.services {
                if *room == 0 {
                    return;
                }
                *room -= 1;
                self.notes.push((i, n));
            }
        }
    }
}

/// "exflow live · eth1 · 1m 05s · 1234 packets · 0 dropped · Ctrl-C for the final report",
/// shortened to fit.
fn status_line(report: &Report, status: &Status, p: &Painter, width: usize) -> String {
    let c = &report.capture;
    let dropped =
        c.kernel_drops.unwrap_or(0) + c.interface_drops.unwrap_or(0) + c.queue_drops.unwrap_or(0);
    let secs = status.elapsed.as_secs();
    let elapsed = if secs < 60 {
        format!("{secs}s")
    } else {
        duration(secs as f64)
    };
    let middle = [
        sanitize(status.interface),
        elapsed,
        format!("{} packets", c.packets),
        format!("{dropped} dropped"),
    ];
    for (lead, tail) in [
        (true, "Ctrl-C for the final report"),
        (true, "Ctrl-C: final report"),
        (false, "Ctrl-C: final report"),
    ] {
        let mut atoms: Vec<String> = Vec::new();
        if lead {
            atoms.push("exflow live".to_string());
        }
        atoms.extend(middle.iter().cloned());
        atoms.push(tail.to_string());
        let text = atoms.join(" · ");
        if text_width(&text) <= width || !lead {
            return match text.strip_prefix("exflow live") {
                Some(rest) => format!("{}{rest}", p.paint("exflow live", Style::Bold)),
                None => text,
            };
        }
    }
    String::new()
}

/// The verdict summary, on at most two lines.
fn summary_lines(report: &Report, p: &Painter, width: usize) -> Vec<String> {
    let atoms = summary_atoms(report);
    let plain: Vec<String> = atoms
        .iter()
        .map(|a| a.iter().map(|(t, _)| t.as_str()).collect())
        .collect();
    let text = plain.join(" ");
    if text_width(&text) <= width {
        let painted: Vec<String> = atoms
            .iter()
            .map(|a| a.iter().map(|(t, s)| p.paint(t, *s)).collect())
            .collect();
        return vec![painted.join(" ")];
    }
    let mut lines = wrap(&text, "", 2, width);
    lines.truncate(2);
    lines
}
