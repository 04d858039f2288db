//! Fitting text to a terminal's width: columns measured in terminal cells (East Asian wide
//! characters count two), cutting with "…", wrapping under an indent, label/value lines.

use super::terminal::{sanitize, RESET};

/// Terminal columns of one character: two for East Asian wide and emoji ranges, else one
/// (zero-width characters count one, which only over-estimates).
pub(crate) fn char_width(c: char) -> usize {
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
pub(crate) fn text_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Columns of a line that may hold this module's SGR codes (`ESC [ … m`).
pub(crate) fn visible_width(s: &str) -> usize {
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
pub(crate) fn truncate(s: &str, width: usize) -> (String, bool) {
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
pub(crate) fn truncate_left(s: &str, width: usize) -> String {
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
pub(crate) fn clip_line(line: &str, width: usize, color: bool) -> String {
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
pub(crate) fn wrap(text: &str, first: &str, indent: usize, width: usize) -> Vec<String> {
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
pub(crate) fn split_at_width(s: &str, width: usize) -> (String, String) {
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

pub(crate) const KV_INDENT: usize = 2;
pub(crate) const KV_LABEL: usize = 14;

/// "  label         value", the value wrapped under itself.
pub(crate) fn kv(label: &str, value: &str, width: usize) -> Vec<String> {
    let first = format!("{:KV_INDENT$}{label:<KV_LABEL$}", "");
    wrap(value, &first, KV_INDENT + KV_LABEL, width)
}

/// A labelled list packed onto at most `max_lines` lines; items too long for a line are cut
/// from the left; what does not fit is counted ("+180 more").
pub(crate) fn kv_items(
    label: &str,
    items: &[String],
    max_lines: usize,
    width: usize,
) -> Vec<String> {
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
pub(crate) fn files_short(files: &[String], budget: usize) -> String {
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
