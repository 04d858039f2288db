//! What reaches a terminal: data strings made harmless (`sanitize`: control characters,
//! bidirectional and line-breaking invisibles become visible escapes), and this module's own
//! colour codes, the only escape sequences the output may hold (besides the live view's, in
//! `live_view.rs`, that switch screens and draw it in place).

use super::model::Verdict;
use std::fmt::Write as _;

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

/// Whether `sanitize` escapes `c`: control characters (C0, DEL, C1) and the invisible
/// characters that reorder text (bidi marks, embeddings, overrides and isolates, the Arabic
/// letter mark) or break lines.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{061c}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// `exflow live --list-interfaces`: the rows (a header first) as aligned columns, every cell
/// sanitised (an interface name or description is whatever the system holds).
pub fn interface_table(rows: &[[String; 4]]) -> String {
    let rows: Vec<[String; 4]> = rows
        .iter()
        .map(|r| [0, 1, 2, 3].map(|i| sanitize(&r[i])))
        .collect();
    let mut widths = [0usize; 3];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
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

pub(crate) const RESET: &str = "\x1b[0m";

pub(crate) fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Ok => Style::Green,
        Verdict::Blocked | Verdict::Refused | Verdict::Rejected | Verdict::Cut => Style::Red,
        Verdict::Flaky => Style::Yellow,
        Verdict::NotSeen => Style::Dim,
        Verdict::OneSided => Style::Magenta,
    }
}

pub(crate) struct Painter {
    pub(crate) color: bool,
}

impl Painter {
    /// `text` (already sanitised) in `style`, when colour is on.
    pub(crate) fn paint(&self, text: &str, style: Style) -> String {
        if !self.color || style == Style::Plain || text.is_empty() {
            text.to_string()
        } else {
            format!("{}{text}{RESET}", style.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_and_descriptions_are_escaped() {
        let rows = vec![
            ["INTERFACE", "FLAGS", "ADDRESSES", "DESCRIPTION"].map(String::from),
            [
                "ev\u{1b}]0;pwned\u{7}il\u{202e}0",
                "up",
                "-",
                "desc\u{9b}2J\nnext",
            ]
            .map(String::from),
        ];
        let out = interface_table(&rows);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(
            !out.chars().any(|c| c != '\n' && needs_escape(c)),
            "{out:?}"
        );
        assert!(out.contains("ev\\x1b]0;pwned\\x07il\\u{202e}0"), "{out}");
        assert!(out.contains("desc\\x9b2J\\x0anext"), "{out}");
    }
}
