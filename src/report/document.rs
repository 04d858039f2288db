//! The text report as a document: its sections in the order every format shows them, each
//! with its title and the sentence that introduces it. The terminal table, Markdown and HTML
//! take the order and the words from here and differ only in how they draw them.

use super::model::Report;
use super::terminal::sanitize;

/// A section of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Expected,
    Findings,
    Unexpected,
    Unsupported,
    Scans,
    Floods,
    Latency,
    Capture,
    Topology,
    Warnings,
}

/// The sections a report has, in order: expected flows, capture facts and topology always;
/// the others when they have something to show.
pub fn sections(r: &Report) -> Vec<Section> {
    let mut out = vec![Section::Expected];
    for (s, present) in [
        (Section::Findings, !r.findings.is_empty()),
        (Section::Unexpected, !r.unexpected.is_empty()),
        (Section::Unsupported, !r.unsupported_restrictions.is_empty()),
        (Section::Scans, !r.scans.is_empty()),
        (Section::Floods, !r.floods.is_empty()),
        (Section::Latency, !r.latency.is_empty()),
        (Section::Capture, true),
        (Section::Topology, true),
        (Section::Warnings, !r.warnings.is_empty()),
    ] {
        if present {
            out.push(s);
        }
    }
    out
}

impl Section {
    /// The list of the report this section shows that can be cut ([`Report::left_out`]).
    fn list(self) -> Option<&'static str> {
        Some(match self {
            Section::Unexpected => "unexpected",
            Section::Unsupported => "unsupported_restrictions",
            Section::Scans => "scans",
            Section::Floods => "floods",
            Section::Warnings => "warnings",
            Section::Topology => "topology.hosts",
            _ => return None,
        })
    }

    /// "… and N more", under a section whose list was cut (already sanitised).
    pub fn left_out(self, r: &Report) -> Option<String> {
        let n = *r.left_out.get(self.list()?)?;
        let what = match self {
            Section::Unexpected => ("unexpected flow", "unexpected flows"),
            Section::Unsupported => ("restriction", "restrictions"),
            Section::Scans => ("scan", "scans"),
            Section::Floods => ("flood", "floods"),
            Section::Warnings => ("warning", "warnings"),
            _ => ("host address", "host addresses"),
        };
        Some(format!(
            "… and {n} more {} (the report keeps {}; the largest are shown).",
            if n == 1 { what.0 } else { what.1 },
            super::model::LIST_MAX
        ))
    }

    pub fn title(self) -> &'static str {
        match self {
            Section::Expected => "Expected flows",
            Section::Findings => "Findings",
            Section::Unexpected => "Unexpected flows",
            Section::Unsupported => "Unsupported restrictions",
            Section::Scans => "Port scans",
            Section::Floods => "SYN floods",
            Section::Latency => "Handshake latency per role",
            Section::Capture => "Capture",
            Section::Topology => "Topology",
            Section::Warnings => "Warnings",
        }
    }

    /// The sentence under the title, if the section has one (already sanitised).
    pub fn intro(self, r: &Report) -> Option<String> {
        Some(match self {
            Section::Expected if r.expected.is_empty() => {
                if has_exchange_server(r) {
                    format!(
                        "No expected flows for the {} profile.",
                        sanitize(r.topology.profile)
                    )
                } else {
                    super::words::no_exchange_server(&r.capture, r.topology.site_file.is_some())
                }
            }
            Section::Unexpected => {
                "Traffic to or from Exchange that no enabled role explains.".to_string()
            }
            Section::Unsupported => "Drops or resets on traffic Microsoft does not support \
                                     restricting (Exchange ↔ Exchange, Exchange ↔ domain \
                                     controllers, Exchange ↔ Skype/Lync)."
                .to_string(),
            Section::Findings => "What the first bytes of connections show was done to them, \
                                  worst first."
                .to_string(),
            Section::Scans => "Their probes are kept out of the verdicts.".to_string(),
            Section::Floods => "Their SYNs are kept out of the verdicts.".to_string(),
            Section::Latency => "SYN → SYN-ACK as seen at the capture point, in ms.".to_string(),
            _ => return None,
        })
    }
}

/// Whether the topology names a Mailbox or Edge server.
pub fn has_exchange_server(r: &Report) -> bool {
    r.topology
        .hosts
        .iter()
        .any(|h| matches!(h.role, "mailbox" | "edge"))
}
