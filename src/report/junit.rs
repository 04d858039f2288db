//! The report as JUnit XML for CI (`--format junit`): a `<testsuite>` of the flows, with a
//! `<testcase>` per expected flow (classname = the role, name = "src → dst port/proto"; a
//! failed or one-sided verdict is a `<failure>` whose message is the detail sentence, not
//! seen is `<skipped/>`), per unexpected flow, per unsupported restriction, per scan and per
//! SYN flood (each a failure); then a `<testsuite name="findings">` with a failed
//! `<testcase>` per finding (classname `findings`, the failure's type its kind, its message
//! the finding's detail sentence), empty when there is none, so that a CI job sees an ESMTP
//! inspection or an idle-timeout kill even where every port opened. `--fail-on` still
//! decides the exit code; build servers read the counts.
//!
//! Every string from the data is escaped for XML: `& < > " '` as entities, and the
//! characters XML 1.0 forbids (control characters other than tab, newline and carriage
//! return, U+FFFE, U+FFFF) and the invisible ones that reorder or hide text (bidi marks,
//! embeddings, overrides, isolates: a server name or an SMTP reply from the wire may carry
//! them) replaced by a visible `\xNN` / `\u{NNNN}`; in attributes, tab and line ends are
//! written as character references so they survive attribute normalisation.

use super::model::{Finding, FlowEntry, Report, Side, Verdict};
use std::fmt::Write as _;

/// One test case, before it is written.
struct Case {
    classname: String,
    name: String,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Skipped(String),
    Failed {
        kind: String,
        message: String,
        text: String,
    },
}

/// The counts of both suites together: (tests, failures, skipped).
pub fn counts(report: &Report) -> (usize, usize, usize) {
    let (t, f, s) = suite_counts(&cases(report));
    let (ft, ff, fs) = suite_counts(&finding_cases(report));
    (t + ft, f + ff, s + fs)
}

/// The counts of one suite's cases: (tests, failures, skipped).
fn suite_counts(cases: &[Case]) -> (usize, usize, usize) {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .count();
    (cases.len(), failures, skipped)
}

/// Whether an expected flow's verdict is a JUnit failure: the failed verdicts and one-sided
/// (no verdict could be trusted).
pub fn is_failure(v: Verdict) -> bool {
    v.is_failure() || v == Verdict::OneSided
}

/// Renders the report as a JUnit XML document. Ends with a newline.
pub fn render(report: &Report) -> String {
    let cases = cases(report);
    let findings = finding_cases(report);
    let (all, all_failures, all_skipped) = counts(report);
    let (tests, failures, skipped) = suite_counts(&cases);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"exflow\" tests=\"{all}\" failures=\"{all_failures}\" errors=\"0\" \
         skipped=\"{all_skipped}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"{skipped}\">",
        attr(&suite_name(report))
    );
    out.push_str("    <properties>\n");
    let mut props: Vec<(&str, String)> = vec![
        ("exflow.version", report.tool.version.to_string()),
        ("profile", report.topology.profile.to_string()),
        (
            "topology",
            if report.topology.inferred {
                "inferred".into()
            } else {
                "site file".into()
            },
        ),
        ("packets", report.capture.packets.to_string()),
    ];
    if let Some(site) = &report.topology.site_file {
        props.push(("site", site.clone()));
    }
    for f in &report.capture.files {
        props.push(("capture", f.clone()));
    }
    for (name, value) in props {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            attr(name),
            attr(&value)
        );
    }
    out.push_str("    </properties>\n");
    write_cases(&mut out, &cases);
    out.push_str("  </testsuite>\n");
    let (tests, failures, skipped) = suite_counts(&findings);
    let _ = writeln!(
        out,
        "  <testsuite name=\"findings\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"{skipped}\">"
    );
    write_cases(&mut out, &findings);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Each case as a `<testcase>` element, indented for its suite.
fn write_cases(out: &mut String, cases: &[Case]) {
    for c in cases {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            attr(&c.classname),
            attr(&c.name)
        );
        match &c.outcome {
            Outcome::Passed => {
                let _ = writeln!(out, "{head}/>");
            }
            Outcome::Skipped(message) => {
                let _ = writeln!(
                    out,
                    "{head}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                    attr(message)
                );
            }
            Outcome::Failed {
                kind,
                message,
                text,
            } => {
                let _ = writeln!(
                    out,
                    "{head}>\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                    attr(kind),
                    attr(message),
                    text_node(text)
                );
            }
        }
    }
}

fn suite_name(report: &Report) -> String {
    match report.capture.files.as_slice() {
        [] => "exflow".into(),
        [one] => format!("exflow {one}"),
        [first, rest @ ..] => format!("exflow {first} (+{} more)", rest.len()),
    }
}

/// "internet", "mailbox 198.51.100.10", "client" (internal clients), "internal 10.1.2.3".
fn side(s: &Side) -> String {
    match (s.role, s.address.as_deref()) {
        (Some(role), Some(addr)) => format!("{role} {addr}"),
        (None, Some(addr)) => format!("{} {addr}", s.zone),
        (Some("client"), None) => format!("{} clients", s.zone),
        (Some(role), None) => role.to_string(),
        (None, None) => s.zone.to_string(),
    }
}

/// "443/tcp"; a role's port list where it has several ("5075-5077/tcp"), the port seen for
/// the whole-range roles; the protocol alone for IP protocols without ports.
fn port(proto: &str, ports: &str, port: u16) -> String {
    let ports = ports.trim();
    if port == 0 && proto != "tcp" && proto != "udp" {
        proto.to_string()
    } else if ports.is_empty() || ports == "1-65535" || ports == "0-65535" {
        format!("{port}/{proto}")
    } else {
        format!("{ports}/{proto}")
    }
}

fn flow_name(e: &FlowEntry) -> String {
    format!(
        "{} → {} {}",
        side(&e.src),
        side(&e.dst),
        port(e.proto, &e.ports, e.port)
    )
}

/// The numbers behind a verdict, for the failure's text.
fn counts_text(e: &FlowEntry) -> String {
    let mut s = format!(
        "verdict {}: {} attempts, {} established, {} dropped, {} refused, {} rejected, \
         {} reset mid-stream, {} SYN retries, {} one-sided",
        e.verdict.as_str(),
        e.attempts,
        e.established,
        e.dropped,
        e.refused,
        e.rejected,
        e.reset_midstream,
        e.syn_retries,
        e.one_sided
    );
    if let Some(by) = e.answered_by {
        let _ = write!(s, "; answered by {}", by.as_str());
    }
    if !e.icmp.is_empty() {
        let _ = write!(s, "; ICMP {}", e.icmp.join(", "));
    }
    s
}

fn message(detail: &str, fallback: &str) -> String {
    let d = detail.trim();
    if d.is_empty() {
        fallback.to_string()
    } else {
        d.to_string()
    }
}

fn cases(report: &Report) -> Vec<Case> {
    let mut out = Vec::new();
    for e in &report.expected {
        let outcome = if is_failure(e.verdict) {
            Outcome::Failed {
                kind: e.verdict.as_str().into(),
                message: message(&e.detail, super::words::verdict_label(e.verdict)),
                text: format!("{}\n{}", e.purpose, counts_text(e)),
            }
        } else if e.verdict == Verdict::NotSeen {
            Outcome::Skipped(message(&e.detail, "not seen in the capture"))
        } else {
            Outcome::Passed
        };
        out.push(Case {
            classname: e.role.clone(),
            name: flow_name(e),
            outcome,
        });
    }
    for u in &report.unexpected {
        let role = u
            .role
            .as_deref()
            .map_or(String::new(), |r| format!(" ({r})"));
        out.push(Case {
            classname: "unexpected".into(),
            name: format!(
                "{} → {} {}",
                side(&u.src),
                side(&u.dst),
                port(u.proto, "", u.port)
            ),
            outcome: Outcome::Failed {
                kind: format!("unexpected:{}", u.reason),
                message: message(&u.detail, u.reason),
                text: format!(
                    "{}{role}: {} attempts, {} established; example {}:{} → {}:{} {} {}",
                    u.reason,
                    u.attempts,
                    u.established,
                    u.example.orig_h,
                    u.example.orig_p,
                    u.example.resp_h,
                    u.example.resp_p,
                    u.example.conn_state,
                    u.example.history
                ),
            },
        });
    }
    for e in &report.unsupported_restrictions {
        out.push(Case {
            classname: e.role.clone(),
            name: format!("{} (unsupported restriction)", flow_name(e)),
            outcome: Outcome::Failed {
                kind: "unsupported_restriction".into(),
                message: message(
                    &e.detail,
                    "traffic Microsoft does not support restricting was dropped or reset",
                ),
                text: counts_text(e),
            },
        });
    }
    for s in &report.scans {
        out.push(Case {
            classname: "scan".into(),
            name: format!("scan from {}", s.source),
            outcome: Outcome::Failed {
                kind: "scan".into(),
                message: format!(
                    "{} probed {} ports on {} host(s); its probes are kept out of the verdicts",
                    s.source,
                    s.ports_probed,
                    s.targets.len()
                ),
                text: format!(
                    "targets {}; open {:?}; {} closed, {} filtered",
                    s.targets.join(", "),
                    s.open,
                    s.closed,
                    s.filtered
                ),
            },
        });
    }
    for f in &report.floods {
        out.push(Case {
            classname: "flood".into(),
            name: format!("SYN flood on {} {}", f.target, port(f.proto, "", f.port)),
            outcome: Outcome::Failed {
                kind: "flood".into(),
                message: format!(
                    "{} sources sent {} unanswered SYNs to {} port {}; kept out of the verdicts",
                    f.sources, f.attempts, f.target, f.port
                ),
                text: String::new(),
            },
        });
    }
    out
}

/// One failed case per finding, in the report's order (worst first): classname
/// `findings`, named by its kind and flow; the failure's message is the detail sentence,
/// its text the evidence (who, how many, an example connection, the wire facts).
fn finding_cases(report: &Report) -> Vec<Case> {
    report
        .findings
        .iter()
        .map(|f| Case {
            classname: "findings".into(),
            name: format!(
                "{}: {} → {} {}",
                f.kind,
                side(&f.src),
                side(&f.dst),
                port(f.proto, "", f.port)
            ),
            outcome: Outcome::Failed {
                kind: f.kind.into(),
                message: message(&f.detail, f.kind),
                text: finding_text(f),
            },
        })
        .collect()
}

/// A finding's evidence, one fact a line.
fn finding_text(f: &Finding) -> String {
    let e = &f.example;
    let mut s = format!(
        "by {}, {} connection(s); example {}:{} → {}:{} {} {}",
        f.by, f.count, e.orig_h, e.orig_p, e.resp_h, e.resp_p, e.conn_state, e.history
    );
    if let Some(b) = &f.banner {
        let _ = write!(s, "\nbanner: {b}");
    }
    if let (Some(code), Some(cmd)) = (f.code, f.command) {
        let _ = write!(s, "\n{cmd} answered {code}");
        if let Some(t) = &f.text {
            let _ = write!(s, " {t}");
        }
    }
    if let Some(n) = &f.sni {
        let _ = write!(s, "\nserver name: {n}");
    }
    if !f.passing_sni.is_empty() {
        let _ = write!(s, "\nnames that passed: {}", f.passing_sni.join(", "));
    }
    if let Some(t) = f.timeout_s {
        let _ = write!(s, "\nestimated idle timeout: {t} s");
    }
    s
}

/// A character XML 1.0 does not allow, or that is best not written raw: control
/// characters other than tab, newline and carriage return, the non-characters U+FFFE,
/// U+FFFF, and the invisible characters that reorder or hide text (the terminal's
/// `needs_escape` set).
fn forbidden(c: char) -> bool {
    (super::terminal::needs_escape(c) && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c, '\u{fffe}' | '\u{ffff}')
}

fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attr => out.push_str("&quot;"),
            '\'' if in_attr => out.push_str("&apos;"),
            '\t' if in_attr => out.push_str("&#9;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if forbidden(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    let _ = write!(out, "\\x{n:02x}");
                } else {
                    let _ = write!(out, "\\u{{{n:x}}}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A string as an XML attribute value (inside double quotes).
pub fn attr(s: &str) -> String {
    escape(s, true)
}

/// A string as XML character data.
pub fn text_node(s: &str) -> String {
    escape(s, false)
}
