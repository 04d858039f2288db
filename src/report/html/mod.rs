//! The report as one self-contained HTML file (`--format html`): to open offline, attach to
//! a ticket and print. The site is drawn first (an inline SVG, `diagram.rs`): the zones as
//! bands, the firewall between them, the hosts as boxes, one arrow per flow coloured by its
//! verdict. Then the sections of every format, in the document's order
//! (`report::document::sections`), with the evidence of each failed flow and the one rule
//! that fixes it (from the rules generator, `report::rules`, as `exflow rules --report`
//! picks it).
//!
//! Nothing in the file asks for anything: no script, no font, image, style sheet or link
//! to any address (the only links are `#` anchors inside the page), and a Content Security
//! Policy that forbids every fetch besides. Every string from the data (capture, site file)
//! is sanitised like the terminal's (control characters become visible escapes), then
//! escaped for HTML (`& < > " '`), in text and in attributes alike.

mod diagram;

use super::document::{self, Section};
use super::model::{FlowEntry, Report, ServiceEntry, Side, Unexpected, Verdict};
use super::rules::nft;
use super::rules::plan::{self, FailedFlow, Rule, SideRef};
use super::rules::{describe, one_line};
use super::terminal::sanitize;
use super::words::{
    anomalies_label, bytes_label, entry_note, example_text, failures_words, interfaces_label,
    ms_figure, open_ports, port_label, proto_port, reason_label, reordered_label, service_words,
    services_line, side_label, sorted_entries, summary_text, time_span, topology_source,
    tunnels_label, utc, verdict_label,
};
use super::words::{dash_if_empty, files_inline, list_limited};
use crate::classify::catalogue::Catalogue;
use crate::classify::site::Site;
use std::fmt::Write as _;

/// How many files, targets or networks are listed before "and N more".
const LIST_MAX: usize = 20;

/// Text that is already sanitised, escaped for HTML text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text from the data: sanitised, then escaped for HTML.
pub(crate) fn h(s: &str) -> String {
    esc(&sanitize(s))
}

/// The CSS class of a verdict: "verdict-ok", "verdict-not-seen", "verdict-one-sided".
pub fn verdict_class(v: Verdict) -> String {
    format!("verdict-{}", v.as_str().replace('_', "-"))
}

/// Whether a verdict means the flow failed (a rule may fix it): blocked, refused, rejected,
/// flaky, cut — the verdicts `exflow rules --report` fixes.
/// The fix of a failed flow that no firewall rule fixes (it died beyond the firewall), in the
/// words the table and Markdown give it.
fn words_only_fix(e: &FlowEntry) -> Option<String> {
    e.fix
        .as_ref()
        .filter(|f| f.nft.is_empty() && failed(e.verdict))
        .map(|f| f.words.clone())
}

fn failed(v: Verdict) -> bool {
    plan::FAILED_VERDICTS.contains(&v.as_str())
}

/// What kind of flow a numbered row is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Expected,
    /// An unsupported restriction (Exchange ↔ Exchange or DC traffic dropped or reset).
    Restriction,
}

/// An expected flow or an unsupported restriction, numbered as the diagram and the tables
/// show it, with the rules that fix it when it failed.
struct Numbered<'a> {
    /// "3" for an expected flow, "R1" for a restriction.
    id: String,
    kind: Kind,
    entry: &'a FlowEntry,
    /// The rules that fix it (failed flows and restrictions only); the error says why none
    /// can be written.
    fix: Option<Result<Vec<Rule>, String>>,
}

impl Numbered<'_> {
    fn anchor(&self) -> String {
        format!("flow-{}", self.id)
    }

    fn evidence_anchor(&self) -> String {
        format!("evidence-{}", self.id)
    }
}

fn side_ref(s: &Side) -> SideRef {
    SideRef {
        zone: s.zone.to_string(),
        role: s.role.map(str::to_string),
        address: s.address.clone(),
    }
}

/// The rules that fix one failed flow, as `exflow rules --report` computes them for it.
fn fix_rules(e: &FlowEntry, kind: Kind, site: &Site, cat: &Catalogue) -> Result<Vec<Rule>, String> {
    let flow = FailedFlow {
        role: e.role.clone(),
        verdict: e.verdict.as_str().to_string(),
        src: side_ref(&e.src),
        dst: side_ref(&e.dst),
        unsupported: kind == Kind::Restriction,
    };
    plan::plan_fixes(cat, site, "", &[flow]).map(|p| p.rules)
}

fn numbered<'a>(
    entries: &'a [FlowEntry],
    kind: Kind,
    site: &Site,
    cat: &Catalogue,
) -> Vec<Numbered<'a>> {
    // Every flow gets its row and arrow, those the capture point cannot see too (the table
    // and Markdown fold them into one line; here they come last, faded).
    let mut list = sorted_entries(entries);
    list.extend(entries.iter().filter(|e| e.out_of_view));
    list.into_iter()
        .enumerate()
        .map(|(i, e)| {
            let id = match kind {
                Kind::Expected => (i + 1).to_string(),
                Kind::Restriction => format!("R{}", i + 1),
            };
            // A flow that died beyond the firewall has no firewall rule to fix it.
            let fix = (kind == Kind::Restriction
                || (failed(e.verdict) && e.died_at != Some(crate::report::rules::plan::BEYOND)))
            .then(|| fix_rules(e, kind, site, cat));
            Numbered {
                id,
                kind,
                entry: e,
                fix,
            }
        })
        .collect()
}

/// Renders the report as one HTML document, judged against `site` (the one the report was
/// made with: its hosts are drawn, and the fixes written for it). Ends with a newline.
pub fn render(report: &Report, site: &Site, cat: &Catalogue) -> String {
    let r = report;
    let expected = numbered(&r.expected, Kind::Expected, site, cat);
    let restrictions = numbered(&r.unsupported_restrictions, Kind::Restriction, site, cat);

    let mut out = String::new();
    head(&mut out, r);
    out.push_str("<body>\n<header>\n<h1>exflow report</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} {} · {}{}</p>",
        h(r.tool.name),
        h(r.tool.version),
        files_inline(&r.capture.files, h),
        match r.interim {
            Some(true) => " · interim report (live)",
            Some(false) => " · final report (live)",
            None => "",
        }
    );
    let _ = writeln!(out, "<p class=\"summary\">{}</p>", esc(&summary_text(r)));
    out.push_str("</header>\n");

    site_section(&mut out, r, site, &expected, &restrictions);

    for section in document::sections(r) {
        let _ = writeln!(
            out,
            "<section id=\"{}\">\n<h2>{}</h2>",
            section_id(section),
            esc(section.title())
        );
        if let Some(intro) = section.intro(r) {
            let _ = writeln!(out, "<p class=\"intro\">{}</p>", esc(&intro));
        }
        match section {
            Section::Expected => {
                if !expected.is_empty() {
                    flow_table(&mut out, &expected);
                    evidence(&mut out, r, site, &expected);
                }
            }
            Section::Findings => findings(&mut out, r),
            Section::Unexpected => unexpected(&mut out, r),
            Section::Unsupported => {
                flow_table(&mut out, &restrictions);
                evidence(&mut out, r, site, &restrictions);
            }
            Section::Scans => scans(&mut out, r),
            Section::Floods => floods(&mut out, r),
            Section::Latency => latency(&mut out, r),
            Section::Capture => capture(&mut out, r),
            Section::Topology => topology(&mut out, r),
            Section::Warnings => warnings(&mut out, r),
        }
        if let Some(more) = section.left_out(r) {
            let _ = writeln!(out, "<p class=\"more\">{}</p>", esc(&more));
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn section_id(s: Section) -> &'static str {
    match s {
        Section::Expected => "expected",
        Section::Findings => "findings",
        Section::Unexpected => "unexpected",
        Section::Unsupported => "unsupported",
        Section::Scans => "scans",
        Section::Floods => "floods",
        Section::Latency => "latency",
        Section::Capture => "capture",
        Section::Topology => "topology",
        Section::Warnings => "warnings",
    }
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       margin: 24px auto; max-width: 1400px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p { margin: 6px 0; }
.meta { color: #59636e; }
.summary { font-weight: bold; }
.intro, .note { color: #3d444d; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
table { border-collapse: collapse; margin: 8px 0 12px; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.keep { white-space: nowrap; }
td.detail { min-width: 16em; }
td.verdict { font-weight: bold; white-space: nowrap; }
tr.fix td { border-top: none; background: #fbfbfb; }
tr.fix code { white-space: nowrap; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 6px 0 12px; }
dt { font-weight: bold; }
dd { margin: 0; }
article.evidence { border: 1px solid #d0d7de; border-left-width: 5px; border-radius: 4px;
                   padding: 6px 12px; margin: 10px 0; break-inside: avoid; }
article.evidence h3 { margin: 4px 0 6px; }
figure { margin: 8px 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #3d444d; font-size: 13px; }
.verdict-ok { color: #1a7f37; }
.verdict-blocked { color: #cf222e; }
.verdict-refused { color: #bc4c00; }
.verdict-rejected { color: #8250df; }
.verdict-flaky { color: #9a6700; }
.verdict-cut { color: #bf3989; }
.verdict-one-sided { color: #0969da; }
.verdict-not-seen { color: #6e7781; }
.unexpected { color: #24292f; }
article.evidence.verdict-ok, article.evidence.verdict-blocked, article.evidence.verdict-refused,
article.evidence.verdict-rejected, article.evidence.verdict-flaky, article.evidence.verdict-cut,
article.evidence.verdict-one-sided, article.evidence.verdict-not-seen { border-left-color: currentColor; }
article.evidence > * { color: #1f2328; }
article.evidence > h3 { color: inherit; }
svg text { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; fill: #1f2328; }
svg .band-internet { fill: #eaf2fb; }
svg .band-perimeter { fill: #fdf4e0; }
svg .band-internal { fill: #e9f6ec; }
svg .band-title { font-weight: bold; font-size: 13px; }
svg .band-nets { fill: #59636e; font-size: 11px; }
svg .firewall rect { fill: #3d444d; }
svg .firewall text { fill: #fff; font-weight: bold; font-size: 11px; letter-spacing: 2px; }
svg .host rect { fill: #fff; stroke: #57606a; stroke-width: 1.2; }
svg .host.group rect { fill: #f6f8fa; stroke-dasharray: none; stroke: #8c959f; }
svg .host .role { font-weight: bold; }
svg .lifeline { stroke: #8c959f; stroke-width: 1; stroke-dasharray: 2 3; }
svg .stripe { fill: #000; fill-opacity: 0.035; }
svg .gutter-head { fill: #59636e; font-size: 11px; }
svg .flow { color: #6e7781; }
svg .flow.verdict-ok { color: #1a7f37; }
svg .flow.verdict-blocked { color: #cf222e; }
svg .flow.verdict-refused { color: #bc4c00; }
svg .flow.verdict-rejected { color: #8250df; }
svg .flow.verdict-flaky { color: #9a6700; }
svg .flow.verdict-cut { color: #bf3989; }
svg .flow.verdict-one-sided { color: #0969da; }
svg .flow.verdict-not-seen { color: #8c959f; }
svg .flow.unexpected { color: #24292f; }
svg .flow .shaft { stroke: currentColor; stroke-width: 2.2; fill: none; }
svg .flow.unexpected .shaft { stroke-dasharray: 7 4; }
svg .flow.verdict-not-seen .shaft { stroke-width: 1.4; }
svg .flow .head, svg .flow .origin { fill: currentColor; }
svg .flow .port { font-weight: bold; fill: currentColor; paint-order: stroke; stroke: #fff;
                  stroke-width: 4px; stroke-linejoin: round; }
svg .flow .label { fill: #1f2328; }
svg .flow .verdict { fill: currentColor; font-weight: bold; }
svg .flow .after { opacity: 0.3; }
svg a.out-of-view { opacity: 0.45; }
svg .died circle { fill: #fff; stroke: currentColor; stroke-width: 1.5; }
svg .died path { stroke: currentColor; stroke-width: 2.6; stroke-linecap: round; }
svg .legend .died-item circle { fill: #fff; stroke: #1f2328; stroke-width: 1.5; }
svg .legend .died-item path { stroke: #1f2328; stroke-width: 2.6; stroke-linecap: round; }
svg .legend .shaft { stroke: currentColor; stroke-width: 2.2; }
svg .legend .unexpected .shaft { stroke-dasharray: 7 4; }
svg .legend rect.fw { fill: #3d444d; }
svg .empty { fill: #59636e; font-style: italic; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; }
  tr, article.evidence, figure { break-inside: avoid; }
  tr.fix code { white-space: normal; word-break: break-all; }
  a { color: inherit; text-decoration: none; }
}
"#;

fn head(out: &mut String, r: &Report) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Belt and braces: even a browser that found something to fetch is told not to.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>exflow report · {}</title>",
        files_inline(&r.capture.files, h)
    );
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>");
}

fn site_section(
    out: &mut String,
    r: &Report,
    site: &Site,
    expected: &[Numbered<'_>],
    restrictions: &[Numbered<'_>],
) {
    out.push_str("<section id=\"site\">\n<h2>The site</h2>\n<figure>\n");
    let mut arrows = Vec::new();
    for n in expected.iter().chain(restrictions) {
        let e = n.entry;
        let class = match n.kind {
            Kind::Expected => format!("flow {}", verdict_class(e.verdict)),
            Kind::Restriction => format!("flow restriction {}", verdict_class(e.verdict)),
        };
        let right = match n.kind {
            Kind::Expected if e.out_of_view => {
                format!("{} (out of view)", verdict_label(e.verdict))
            }
            Kind::Expected => verdict_label(e.verdict).to_string(),
            Kind::Restriction => format!("{} (restricted)", verdict_label(e.verdict)),
        };
        let mut tip = format!(
            "{} {}: {} → {}, {}: {}",
            n.id,
            sanitize(&e.role),
            side_label(&e.src),
            side_label(&e.dst),
            port_label(e),
            verdict_label(e.verdict)
        );
        if let Some(note) = entry_note(e) {
            let _ = write!(tip, ". {note}");
        }
        if e.out_of_view {
            let _ = write!(tip, ". {}", out_of_view_note(e));
        }
        arrows.push(diagram::Arrow {
            id: n.id.clone(),
            class,
            src: &e.src,
            dst: &e.dst,
            port: port_label(e),
            left: format!("{} {}", n.id, sanitize(&e.role)),
            right,
            tip,
            href: n.anchor(),
            unexpected: false,
            faded: e.out_of_view,
            died: e.died_at,
        });
    }
    for (i, u) in r.unexpected.iter().enumerate() {
        let id = format!("U{}", i + 1);
        let what = u.role.as_deref().map_or_else(
            || sanitize(u.reason),
            |role| format!("{} ({})", sanitize(role), sanitize(u.reason)),
        );
        arrows.push(diagram::Arrow {
            id: id.clone(),
            class: "flow unexpected".to_string(),
            src: &u.src,
            dst: &u.dst,
            port: proto_port(u.proto, &u.port.to_string(), u.port),
            left: format!(
                "{id} {}",
                u.role
                    .as_deref()
                    .map_or_else(|| sanitize(u.reason), sanitize)
            ),
            right: sanitize(u.reason),
            tip: format!(
                "{id} unexpected {}: {} → {}, {}/{} attempts established. {}",
                what,
                side_label(&u.src),
                side_label(&u.dst),
                u.established,
                u.attempts,
                sanitize(&u.detail)
            ),
            href: format!("flow-{id}"),
            unexpected: true,
            faded: false,
            died: None,
        });
    }
    out.push_str(&diagram::draw(r, site, &arrows));
    out.push_str(
        "<figcaption>One row per flow, numbered as in the tables below: the arrow goes from \
         the side that opens the connection (●) to the one that accepts it, labelled with its \
         port and coloured by its verdict; unexpected flows are dashed. The dark bars are the \
         firewall between the zones; ✕ marks where a failed flow died, when the capture \
         shows it.</figcaption>\n</figure>\n</section>\n",
    );
}

/// The table of expected flows (or of unsupported restrictions), with a fix line under
/// every failed row.
fn flow_table(out: &mut String, rows: &[Numbered<'_>]) {
    out.push_str(
        "<table class=\"flows\">\n<thead><tr><th>#</th><th>Role</th><th>Port</th><th>From</th>\
         <th>To</th><th>Verdict</th><th title=\"attempts/established\">Att./est.</th>\
         <th>Failures</th><th title=\"handshake SYN → SYN-ACK, median\">p50 ms</th><th>Detail</th></tr></thead>\n<tbody>\n",
    );
    for n in rows {
        let e = n.entry;
        let vc = verdict_class(e.verdict);
        let detail = match entry_note(e) {
            Some(d) => Some(esc(&d)),
            None if e.out_of_view => Some(esc(&out_of_view_note(e))),
            None => None,
        };
        let detail = detail_with_services(detail, &e.services);
        let _ = writeln!(
            out,
            "<tr id=\"{}\"><td class=\"num\">{}</td><td class=\"keep\">{}</td>\
             <td class=\"keep\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"verdict {vc}\">{}</td><td class=\"num\">{}/{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"detail\">{}</td></tr>",
            n.anchor(),
            esc(&n.id),
            h(&e.role),
            esc(&port_label(e)),
            esc(&side_label(&e.src)),
            esc(&side_label(&e.dst)),
            verdict_label(e.verdict),
            e.attempts,
            e.established,
            esc(&failures_words(e)),
            e.handshake_ms
                .map_or_else(|| "-".to_string(), |p| ms_figure(p.p50)),
            detail
        );
        if let Some(fix) = &n.fix {
            let _ = writeln!(
                out,
                "<tr class=\"fix\"><td></td><td colspan=\"9\">{}</td></tr>",
                fix_line(fix, &n.evidence_anchor())
            );
        } else if let Some(words) = words_only_fix(e) {
            // No firewall rule (it died beyond the firewall): the report's own words.
            let _ = writeln!(
                out,
                "<tr class=\"fix-words\"><td></td><td colspan=\"9\">Fix: {}</td></tr>",
                esc(&words)
            );
        }
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A detail cell (HTML): the sentence, already escaped, if any, and under it, where the
/// services fared differently, the services line.
fn detail_with_services(detail: Option<String>, services: &[ServiceEntry]) -> String {
    let line = services_line(services).map(|l| esc(&format!("by service: {l}")));
    match (detail, line) {
        (None, None) => "-".to_string(),
        (Some(d), None) => d,
        (None, Some(l)) => l,
        (Some(d), Some(l)) => format!("{d}<br>{l}"),
    }
}

/// Why a flow is not seen when the capture point cannot see where it comes from.
fn out_of_view_note(e: &FlowEntry) -> String {
    format!(
        "Out of view: the capture shows no traffic from {} at all (a capture point that cannot \
         see it, such as the internet edge for internal clients); no evidence either way.",
        side_label(&e.src)
    )
}

/// The one line that names a failed flow's fix: the first rule as nftables writes it (the
/// others, e.g. the IPv6 one, in the evidence).
fn fix_line(fix: &Result<Vec<Rule>, String>, evidence: &str) -> String {
    match fix {
        Ok(rules) => match rules.split_first() {
            Some((first, rest)) => {
                let more = if rest.is_empty() {
                    String::new()
                } else {
                    format!(
                        " <a href=\"#{evidence}\">+{} more rule{}</a>",
                        rest.len(),
                        if rest.len() == 1 { "" } else { "s" }
                    )
                };
                format!(
                    "Fix: <code title=\"{}\">{}</code>{more}",
                    esc(&describe(first)),
                    esc(&nft::statement(first))
                )
            }
            None => "Fix: no allow rule can be written for it: neither side is a host or \
                     network the site names."
                .to_string(),
        },
        Err(e) => format!(
            "Fix: no allow rule can be written for it: {}.",
            esc(&one_line(e))
        ),
    }
}

/// The evidence of every failed (or one-sided) flow: what was seen, who answered, and the
/// rules that fix it.
fn evidence(out: &mut String, r: &Report, site: &Site, rows: &[Numbered<'_>]) {
    let shown: Vec<&Numbered<'_>> = rows
        .iter()
        .filter(|n| {
            n.fix.is_some() || failed(n.entry.verdict) || n.entry.verdict == Verdict::OneSided
        })
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h3>Evidence of each {}</h3>",
        if shown.iter().all(|n| n.kind == Kind::Restriction) {
            "restriction"
        } else {
            "failed flow"
        }
    );
    for n in shown {
        let e = n.entry;
        let vc = verdict_class(e.verdict);
        let _ = writeln!(
            out,
            "<article class=\"evidence {vc}\" id=\"{}\">\n<h3><a href=\"#{}\">{}</a> {} · {} → {} \
             · {}: {}</h3>",
            n.evidence_anchor(),
            n.anchor(),
            esc(&n.id),
            h(&e.role),
            esc(&side_label(&e.src)),
            esc(&side_label(&e.dst)),
            esc(&port_label(e)),
            verdict_label(e.verdict)
        );
        if !e.purpose.trim().is_empty() {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", h(e.purpose.trim()));
        }
        out.push_str("<dl>\n");
        if !e.detail.trim().is_empty() {
            let _ = writeln!(out, "<dt>What was seen</dt><dd>{}</dd>", h(e.detail.trim()));
        }
        let _ = writeln!(
            out,
            "<dt>Connections</dt><dd>{} attempted, {} established</dd>",
            e.attempts, e.established
        );
        let mut first = Vec::new();
        if e.dropped > 0 {
            first.push(format!(
                "{} with every SYN unanswered ({} SYN retransmissions in all)",
                e.dropped, e.syn_retries
            ));
        } else if e.syn_retries > 0 {
            first.push(format!("{} SYN retransmissions", e.syn_retries));
        }
        if e.refused > 0 {
            first.push(format!("{} answered by a RST", e.refused));
        }
        if e.rejected > 0 {
            first.push(format!("{} answered by an ICMP unreachable", e.rejected));
        }
        if e.reset_midstream > 0 {
            first.push(format!(
                "{} established, then reset mid-stream",
                e.reset_midstream
            ));
        }
        if e.one_sided > 0 {
            first.push(format!("{} seen in one direction only", e.one_sided));
        }
        if !first.is_empty() {
            let _ = writeln!(
                out,
                "<dt>First packets</dt><dd>{}</dd>",
                esc(&first.join("; "))
            );
        }
        let answered = match (e.answered_by, e.icmp.is_empty()) {
            (Some(by), _) => Some(match by {
                super::model::AnsweredBy::Server => {
                    "the server (the RST's TTL is the server's usual)".to_string()
                }
                super::model::AnsweredBy::Middlebox => {
                    "a device in between (the RST's TTL is not the server's usual)".to_string()
                }
                super::model::AnsweredBy::Unknown => {
                    "unknown (no answered handshake to compare the RST's TTL with)".to_string()
                }
            }),
            (None, false) => None,
            (None, true) if e.dropped > 0 && e.refused == 0 && e.rejected == 0 => {
                Some(if e.established > 0 {
                    "nobody, for the failed attempts: their SYNs went unanswered".to_string()
                } else {
                    "nobody: the SYNs went unanswered".to_string()
                })
            }
            (None, true) => None,
        };
        if let Some(a) = answered {
            let _ = writeln!(out, "<dt>Who answered</dt><dd>{}</dd>", esc(&a));
        }
        if let Some(place) = e.died_at {
            let _ = writeln!(
                out,
                "<dt>Where it died</dt><dd>{}</dd>",
                match place {
                    "firewall" =>
                        "at the firewall (its interfaces show it going in, not out)".to_string(),
                    "beyond_firewall" => "beyond the firewall (it left the firewall toward \
                                          the server)"
                        .to_string(),
                    other => h(other),
                }
            );
        }
        if !e.icmp.is_empty() {
            let codes: Vec<String> = e.icmp.iter().map(|c| h(c)).collect();
            let _ = writeln!(out, "<dt>ICMP</dt><dd>{}</dd>", codes.join(", "));
        }
        if !e.services.is_empty() {
            let each: Vec<String> = e.services.iter().map(|s| esc(&service_words(s))).collect();
            let _ = writeln!(out, "<dt>By service</dt><dd>{}</dd>", each.join("<br>"));
        }
        if let Some(p) = e.handshake_ms {
            let _ = writeln!(
                out,
                "<dt>Handshake</dt><dd>p50 {} · p90 {} · p99 {} · max {} ms</dd>",
                ms_figure(p.p50),
                ms_figure(p.p90),
                ms_figure(p.p99),
                ms_figure(p.max)
            );
        }
        if !e.cannot_show.is_empty() {
            let what: Vec<String> = e.cannot_show.iter().map(|c| h(c)).collect();
            let _ = writeln!(
                out,
                "<dt>Cannot show</dt><dd>{} (the input records do not carry it)</dd>",
                what.join(", ")
            );
        }
        out.push_str("</dl>\n");
        match &n.fix {
            Some(Ok(rules)) if !rules.is_empty() => {
                let _ = writeln!(
                    out,
                    "<p>The rule{} that fix{} it (nftables; <code>exflow rules --site {} \
                     --report REPORT.json --format iptables|ip6tables|ps1|asa</code> writes \
                     {} for other firewalls):</p>\n<ul>",
                    if rules.len() == 1 { "" } else { "s" },
                    if rules.len() == 1 { "es" } else { "" },
                    site_arg(r, site),
                    if rules.len() == 1 { "it" } else { "them" },
                );
                for rule in rules {
                    let _ = writeln!(
                        out,
                        "<li>{}<br><code>{}</code></li>",
                        esc(&describe(rule)),
                        esc(&nft::statement(rule))
                    );
                }
                out.push_str("</ul>\n");
            }
            Some(fix) => {
                let _ = writeln!(out, "<p>{}</p>", fix_line(fix, &n.evidence_anchor()));
            }
            None => match words_only_fix(e) {
                Some(words) => {
                    let _ = writeln!(out, "<p>Fix: {}</p>", esc(&words));
                }
                None => out.push_str(
                    "<p>No rule fixes this: only one direction of its traffic reached the \
                     capture point, so the capture, not the firewall, has to change (capture \
                     both directions, e.g. on the firewall itself).</p>\n",
                ),
            },
        }
        out.push_str("</article>\n");
    }
}

/// The site file's name for the `exflow rules` hint, or a placeholder when it was inferred.
fn site_arg(r: &Report, site: &Site) -> String {
    match site.file().or(r.topology.site_file.as_deref()) {
        Some(f) => h(f),
        None => "SITE.toml".to_string(),
    }
}

fn unexpected(out: &mut String, r: &Report) {
    out.push_str(
        "<table class=\"unexpected\">\n<thead><tr><th>#</th><th>Port</th><th>Source</th>\
         <th>Destination</th><th>Reason</th><th>Attempts/established</th>\
         <th>First seen (UTC)</th><th>Example</th><th>Detail</th></tr></thead>\n<tbody>\n",
    );
    for (i, u) in r.unexpected.iter().enumerate() {
        unexpected_row(out, i, u);
    }
    out.push_str("</tbody>\n</table>\n");
}

fn unexpected_row(out: &mut String, i: usize, u: &Unexpected) {
    let _ = writeln!(
        out,
        "<tr id=\"flow-U{n}\"><td class=\"num\">U{n}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td class=\"num\">{}/{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
        esc(&proto_port(u.proto, &u.port.to_string(), u.port)),
        esc(&side_label(&u.src)),
        esc(&side_label(&u.dst)),
        esc(&reason_label(u)),
        u.attempts,
        u.established,
        esc(&utc(u.first_ts)),
        esc(&example_text(&u.example)),
        detail_with_services(
            (!u.detail.trim().is_empty()).then(|| h(&u.detail)),
            &u.services
        ),
        n = i + 1,
    );
}

fn scans(out: &mut String, r: &Report) {
    out.push_str(
        "<table>\n<thead><tr><th>Source</th><th>Targets</th><th>Ports probed</th><th>Open</th>\
         <th>Closed</th><th>Filtered</th><th>First seen (UTC)</th></tr></thead>\n<tbody>\n",
    );
    for s in &r.scans {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            h(&s.source),
            dash_if_empty(list_limited(&s.targets, LIST_MAX, h)),
            s.ports_probed,
            esc(&open_ports(&s.open, LIST_MAX)),
            s.closed,
            s.filtered,
            esc(&utc(s.first_ts))
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn floods(out: &mut String, r: &Report) {
    out.push_str(
        "<table>\n<thead><tr><th>Target</th><th>Port</th><th>Sources</th><th>SYNs</th>\
         <th>First seen (UTC)</th><th>Last seen (UTC)</th></tr></thead>\n<tbody>\n",
    );
    for f in &r.floods {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td></tr>",
            h(&f.target),
            f.port,
            h(f.proto),
            f.sources,
            f.attempts,
            esc(&utc(f.first_ts)),
            esc(&utc(f.last_ts))
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn latency(out: &mut String, r: &Report) {
    out.push_str(
        "<table>\n<thead><tr><th>Role</th><th>Connections</th><th>p50</th><th>p90</th>\
         <th>p99</th><th>max</th></tr></thead>\n<tbody>\n",
    );
    for l in &r.latency {
        let p = &l.syn_synack_ms;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            h(&l.role),
            l.connections,
            ms_figure(p.p50),
            ms_figure(p.p90),
            ms_figure(p.p99),
            ms_figure(p.max)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn findings(out: &mut String, r: &Report) {
    out.push_str("<ul class=\"findings\">\n");
    for f in &r.findings {
        let _ = writeln!(
            out,
            "<li><b>{}</b> × {} (by {}): {} <small>e.g. {}</small></li>",
            h(f.kind),
            f.count,
            h(f.by),
            h(&f.detail),
            h(&crate::report::words::example_text(&f.example)),
        );
    }
    out.push_str("</ul>\n");
}

fn warnings(out: &mut String, r: &Report) {
    out.push_str("<ul class=\"warnings\">\n");
    for w in &r.warnings {
        let _ = writeln!(out, "<li>warning: {}</li>", h(w));
    }
    out.push_str("</ul>\n");
}

/// One `<dt>`/`<dd>` pair; `value` is already escaped.
fn fact(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "<dt>{}</dt><dd>{value}</dd>", esc(name));
}

fn capture(out: &mut String, r: &Report) {
    let c = &r.capture;
    out.push_str("<dl>\n");
    fact(
        out,
        "Files",
        &dash_if_empty(list_limited(&c.files, LIST_MAX, h)),
    );
    fact(out, "Packets", &c.packets.to_string());
    fact(out, "Bytes", &esc(&bytes_label(c.bytes)));
    fact(out, "Time span", &esc(&time_span(c.first_ts, c.last_ts)));
    fact(out, "Connections", &c.connections.to_string());
    fact(
        out,
        "Link types",
        &dash_if_empty(list_limited(&c.link_types, LIST_MAX, h)),
    );
    fact(out, "Anomalies", &esc(&anomalies_label(r)));
    fact(out, "Evicted flows", &c.evicted_flows.to_string());
    fact(out, "Duplicate packets", &c.duplicate_packets.to_string());
    if !c.tunnels.is_empty() {
        fact(out, "Tunnels", &esc(&tunnels_label(r)));
    }
    if c.interfaces.len() > 1 {
        fact(out, "Interfaces", &esc(&interfaces_label(c)));
    }
    if c.reordered > 0 {
        fact(
            out,
            "Reordered",
            &esc(&reordered_label(c.reordered, c.max_step_back_ms)),
        );
    }
    if let Some(d) = c.kernel_drops {
        fact(out, "Kernel drops", &d.to_string());
    }
    if let Some(d) = c.interface_drops {
        fact(out, "Interface drops", &d.to_string());
    }
    if let Some(d) = c.queue_drops {
        fact(out, "Queue drops", &d.to_string());
    }
    for w in &c.read_warnings {
        fact(out, "Read warning", &h(w));
    }
    for i in &r.inputs {
        let mut what = h(i.kind);
        if let Some(n) = i.records {
            let _ = write!(what, ", {n} records");
        }
        if let Some(n) = i.malformed_lines.filter(|n| *n > 0) {
            let _ = write!(what, ", {n} malformed lines");
        }
        fact(out, "Input", &format!("{} ({what})", h(&i.file)));
    }
    out.push_str("</dl>\n");
}

fn topology(out: &mut String, r: &Report) {
    let t = &r.topology;
    out.push_str("<dl>\n");
    fact(out, "Source", &esc(&topology_source(r)));
    fact(out, "Profile", &h(t.profile));
    fact(
        out,
        "Internal",
        &dash_if_empty(list_limited(&t.internal, LIST_MAX, h)),
    );
    fact(
        out,
        "Perimeter",
        &dash_if_empty(list_limited(&t.perimeter, LIST_MAX, h)),
    );
    out.push_str("</dl>\n");
    if t.inferred && !t.reasons.is_empty() {
        out.push_str("<p>Why:</p>\n<ul>\n");
        for reason in &t.reasons {
            let _ = writeln!(out, "<li>{}</li>", h(reason));
        }
        out.push_str("</ul>\n");
    }
    if t.hosts.is_empty() {
        out.push_str("<p>No hosts.</p>\n");
    } else {
        out.push_str("<table>\n<thead><tr><th>Address</th><th>Role</th></tr></thead>\n<tbody>\n");
        for host in &t.hosts {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                h(&host.address),
                h(host.role)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
}
