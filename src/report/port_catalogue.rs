//! `exflow ports`: the port catalogue printed for a person (a fixed-width table that fits 100
//! columns) or for a script (pretty JSON with stable field names).
//!
//! Both renderings are pure functions of the catalogue; the caller prints them.

use serde::{Deserialize, Serialize};

use crate::classify::catalogue::{Catalogue, Profile, Role, Seed};

/// The widest line [`render_table`] produces, in characters.
pub const TABLE_WIDTH: usize = 100;

/// The version of the JSON document [`render_json`] writes.
pub const PORTS_SCHEMA_VERSION: u32 = 1;

/// The JSON document of `exflow ports --format json`.
///
/// Field names are stable: scripts may rely on them; new fields may be added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortsDocument {
    /// [`PORTS_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The profile the roles were filtered by; `null` for all roles.
    pub profile: Option<Profile>,
    /// The documents the roles cite.
    pub seeds: Vec<Seed>,
    /// The roles, in catalogue order, with every field of `exchange.toml` (absent optional
    /// fields as `null`, absent flags as `false`).
    pub roles: Vec<Role>,
}

impl PortsDocument {
    /// The document for `cat`, keeping only the roles of `profile` if one is given.
    pub fn new(cat: &Catalogue, profile: Option<Profile>) -> PortsDocument {
        PortsDocument {
            schema_version: PORTS_SCHEMA_VERSION,
            profile,
            seeds: cat.seeds().to_vec(),
            roles: selected(cat, profile).cloned().collect(),
        }
    }
}

/// The catalogue as pretty-printed JSON (a [`PortsDocument`]).
pub fn render_json(cat: &Catalogue, profile: Option<Profile>) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(&PortsDocument::new(cat, profile))?;
    text.push('\n');
    Ok(text)
}

/// Column widths of the table, in characters. With one space between columns and at most
/// four flags, the widest line is 99 characters.
const COLUMNS: [(&str, usize); 6] = [
    ("ROLE", 21),
    ("PROTO PORTS", 15),
    ("FROM → TO", 27),
    ("DEFAULT", 8),
    ("SEEDS", 19),
    ("FLAG", 4),
];

/// Indent of the purpose and disagreement lines under a row.
const INDENT: &str = "    ";

/// The catalogue as a table a person reads, every line at most [`TABLE_WIDTH`] characters.
///
/// One row per role (cells wrap inside their column), then an indented line with the purpose
/// and the `[services]` key that switches it, then, where seeds disagree, the disagreement.
/// A legend of the flags and the list of seeds end the table.
pub fn render_table(cat: &Catalogue, profile: Option<Profile>) -> String {
    let roles: Vec<&Role> = selected(cat, profile).collect();
    let mut lines = Vec::new();
    lines.push(match profile {
        Some(p) => format!(
            "Exchange port catalogue, profile {p}: {} roles",
            roles.len()
        ),
        None => format!(
            "Exchange port catalogue, all profiles: {} roles",
            roles.len()
        ),
    });
    lines.push(String::new());
    let headers = COLUMNS.map(|(name, _)| name.to_string());
    push_row(&mut lines, &headers);
    lines.push("-".repeat(TABLE_WIDTH - 1));

    for role in roles {
        push_row(&mut lines, &row_cells(role));
        let mut about = role.purpose.clone();
        if let Some(service) = &role.service {
            about.push_str(&format!(". Switch: [services] {service}"));
        }
        if profile.is_none() {
            if let [only] = role.profiles.as_slice() {
                about.push_str(&format!(". Profile {only} only"));
            }
        }
        push_indented(&mut lines, INDENT, INDENT, &about);
        if let Some(text) = &role.disagreement {
            push_indented(
                &mut lines,
                &format!("{INDENT}! "),
                &format!("{INDENT}  "),
                text,
            );
        }
    }

    lines.push(String::new());
    let legend = "Flags: C = stated only by community articles; ! = the seeds disagree (explained \
                  under the role); I = internal only, must never answer the internet; U = \
                  Microsoft does not support restricting it. Notes: exflow ports --format json.";
    push_indented(&mut lines, "", "       ", legend);
    lines.push("Seeds (../shared/seeds/):".to_string());
    for seed in cat.seeds() {
        let kind = if seed.community {
            "community"
        } else {
            "Microsoft"
        };
        let first = format!("  {}  {kind:<9}  ", seed.id);
        let rest = " ".repeat(first.chars().count());
        push_indented(&mut lines, &first, &rest, &seed.title);
    }

    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The roles shown for `profile` (all of them without one).
fn selected(cat: &Catalogue, profile: Option<Profile>) -> impl Iterator<Item = &Role> + '_ {
    cat.roles()
        .iter()
        .filter(move |r| profile.is_none_or(|p| r.in_profile(p)))
}

/// The six cells of a role's row.
fn row_cells(role: &Role) -> [String; 6] {
    let ports = if role.proto.has_ports() {
        let list: Vec<String> = role.ports.iter().map(ToString::to_string).collect();
        format!("{} {}", role.proto, list.join(", "))
    } else {
        format!("ip proto {}", role.proto.number())
    };
    let places = |list: &[crate::classify::catalogue::Place]| {
        list.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    };
    let arrow = if role.both_ways { "↔" } else { "→" };
    let route = format!("{} {arrow} {}", places(&role.src), places(&role.dst));
    let mut seeds = role.seed_ids();
    seeds.sort_unstable();
    let mut flags = String::new();
    for (on, flag) in [
        (role.community, 'C'),
        (role.disagreement.is_some(), '!'),
        (role.internal_only, 'I'),
        (role.unrestricted, 'U'),
    ] {
        if on {
            flags.push(flag);
        }
    }
    [
        role.id.clone(),
        ports,
        route,
        role.default.to_string(),
        seeds.join(" "),
        flags,
    ]
}

/// Appends one table row: each cell wrapped to its column, the row as tall as its tallest cell.
fn push_row(lines: &mut Vec<String>, cells: &[String; 6]) {
    let wrapped: Vec<Vec<String>> = cells
        .iter()
        .zip(COLUMNS)
        .map(|(cell, (_, width))| wrap(cell, width))
        .collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..height {
        let mut line = String::new();
        for (cell, (_, width)) in wrapped.iter().zip(COLUMNS) {
            let part = cell.get(i).map(String::as_str).unwrap_or("");
            line.push_str(part);
            let pad = (width + 1).saturating_sub(part.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        lines.push(line.trim_end().to_string());
    }
}

/// Appends `text` wrapped to the table width: the first line after `first`, the rest after
/// `rest` (both counted in the width).
fn push_indented(lines: &mut Vec<String>, first: &str, rest: &str, text: &str) {
    let first_width = TABLE_WIDTH.saturating_sub(first.chars().count());
    let rest_width = TABLE_WIDTH.saturating_sub(rest.chars().count());
    // Wrap to the narrower of the two, so that every line fits whichever prefix it gets.
    for (i, part) in wrap(text, first_width.min(rest_width))
        .into_iter()
        .enumerate()
    {
        let prefix = if i == 0 { first } else { rest };
        lines.push(format!("{prefix}{part}"));
    }
}

/// Greedy word wrap to `width` characters; a word longer than the width is cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if line_len > 0 {
                lines.push(std::mem::take(&mut line));
                line_len = 0;
            }
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
        }
        let needed = if line_len == 0 {
            word.len()
        } else {
            line_len + 1 + word.len()
        };
        if needed > width {
            lines.push(std::mem::take(&mut line));
            line_len = 0;
        }
        if line_len > 0 {
            line.push(' ');
            line_len += 1;
        }
        line.extend(word.iter());
        line_len += word.len();
    }
    if line_len > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_words_and_cuts_only_overlong_ones() {
        assert_eq!(
            wrap("internet, client → mailbox", 12),
            ["internet,", "client →", "mailbox"]
        );
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert!(wrap("one two three four five six", 9)
            .iter()
            .all(|l| l.chars().count() <= 9));
    }
}
