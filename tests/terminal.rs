//! The terminal table at a terminal's width and the fix of every failed flow, on the samples:
//! at 80 columns no line is longer and every verdict row is still there; every failed row of
//! the table and of the Markdown report names its fix, the same rules `exflow rules --report`
//! prints for the report.

use crate::util::{exflow, sample_sites, stderr, stdout, tmp_path};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

const FAILED: [&str; 5] = ["blocked", "refused", "rejected", "flaky", "cut"];

/// Every sample capture with its site file: (capture, site).
fn samples() -> Vec<(PathBuf, PathBuf)> {
    let mut out = vec![];
    for site in sample_sites() {
        let name = site.to_string_lossy().to_string();
        let stem = name.strip_suffix(".site.toml").unwrap();
        for ext in ["pcap", "pcapng"] {
            let capture = PathBuf::from(format!("{stem}.{ext}"));
            if capture.is_file() {
                out.push((capture, site.clone()));
            }
        }
    }
    assert!(
        out.len() >= 30,
        "only {} samples with a site file",
        out.len()
    );
    out
}

fn run_ok(args: &[&str]) -> String {
    let o = exflow(args);
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 1),
        "{args:?}: {}",
        stderr(&o)
    );
    stdout(&o)
}

fn json_report(capture: &str, site: &str) -> Value {
    let text = run_ok(&["analyze", capture, "--site", site, "--format", "json"]);
    serde_json::from_str(&text).unwrap()
}

fn table(capture: &str, site: &str, width: &str) -> String {
    run_ok(&[
        "analyze", capture, "--site", site, "--color", "never", "--width", width,
    ])
}

/// The lines of a section of the table: from its title to the blank line after it.
fn section<'a>(out: &'a str, title: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

/// The data rows of a flow table section (indented by two; the column header, the notes
/// under rows and the legend left out), each with the note lines under it.
fn rows_with_notes<'a>(out: &'a str, title: &str) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut rows: Vec<(&str, Vec<&str>)> = vec![];
    let lines = section(out, title);
    let head = lines
        .iter()
        .position(|l| l.starts_with("  role ") && l.contains("verdict"))
        .map_or(lines.len(), |i| i + 1);
    for line in lines.into_iter().skip(head) {
        if line.starts_with("  drop = ") {
            break; // the legend, last
        }
        if folded_count(line).is_some() {
            break; // the line standing for the flows the capture point cannot see
        }
        if line.starts_with("   ") {
            if let Some(last) = rows.last_mut() {
                last.1.push(line);
            }
        } else {
            rows.push((line, vec![]));
        }
    }
    rows
}

/// The number of flows the capture point cannot see, from the line that folds them.
fn folded_count(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("  ")?;
    let (n, tail) = rest.split_once(' ')?;
    (tail.starts_with("flow") && tail.contains(" not seen from "))
        .then(|| n.parse().ok())
        .flatten()
}

fn verdict_of(row: &str) -> &'static str {
    [
        "not seen",
        "one-sided",
        "blocked",
        "refused",
        "rejected",
        "flaky",
        "cut",
        "ok",
    ]
    .into_iter()
    .find(|v| row.contains(&format!("  {v}")))
    .unwrap_or_else(|| panic!("no verdict in row {row:?}"))
}

fn verdict_words(entries: &Value) -> Vec<String> {
    let mut v: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["out_of_view"] != true)
        .map(|e| e["verdict"].as_str().unwrap().replace('_', " "))
        .map(|v| {
            if v == "one sided" {
                "one-sided".into()
            } else {
                v
            }
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_sample_at_80_columns_fits_and_keeps_every_verdict_row() {
    let mut checked = 0;
    for (capture, site) in samples() {
        let (capture, site) = (capture.to_str().unwrap(), site.to_str().unwrap());
        let report = json_report(capture, site);
        let out = table(capture, site, "80");
        for line in out.lines() {
            let n = line.chars().count();
            assert!(
                n <= 80,
                "{capture}: a line of {n} columns:\n{line}\n\n{out}"
            );
        }
        for (title, key) in [
            ("Expected flows", "expected"),
            ("Unsupported restrictions", "unsupported_restrictions"),
        ] {
            let mut shown: Vec<String> = rows_with_notes(&out, title)
                .iter()
                .map(|(row, _)| verdict_of(row).to_string())
                .collect();
            shown.sort();
            assert_eq!(
                shown,
                verdict_words(&report[key]),
                "{capture}: the {title} rows at 80 columns:\n{out}"
            );
            let folded = section(&out, title)
                .iter()
                .find_map(|l| folded_count(l))
                .unwrap_or(0);
            let out_of_view = report[key]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["out_of_view"] == true)
                .count();
            assert_eq!(folded, out_of_view, "{capture}: folded flows:\n{out}");
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked} samples");
}

#[test]
fn notes_wrap_at_words_with_a_hanging_indent() {
    let capture = "samples/inbound-25-dropped.pcap";
    let out = table(capture, "samples/inbound-25-dropped.site.toml", "80");
    let rows = rows_with_notes(&out, "Expected flows");
    let (_, notes) = rows
        .iter()
        .find(|(row, _)| row.contains("smtp-inbound") && row.contains("blocked"))
        .unwrap_or_else(|| panic!("no blocked smtp-inbound row:\n{out}"));
    assert!(notes.len() >= 3, "detail and fix under the row:\n{out}");
    // The detail sentence: first line at 6, the rest at 8; the fix: the rest under its text.
    assert!(notes[0].starts_with("      1 attempt"), "{out}");
    let fix_at = notes
        .iter()
        .position(|l| l.starts_with("      fix: "))
        .unwrap_or_else(|| panic!("no fix line:\n{out}"));
    for line in &notes[1..fix_at] {
        assert!(
            line.starts_with("        ") && !line.starts_with("         "),
            "{line:?}"
        );
    }
    for line in &notes[fix_at + 1..] {
        assert!(
            line.starts_with("           ") && !line.starts_with("            "),
            "{line:?}"
        );
    }
    // Wrapped at spaces: the words of the notes, joined again, are the sentence's words.
    let sentence: Vec<&str> = notes[..fix_at]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert!(
        sentence.join(" ").ends_with(
            "most likely by a firewall. One vantage point: the capture cannot tell \
                        whether the firewall or something beyond it stopped them."
        ),
        "{sentence:?}"
    );
    let fix: Vec<&str> = notes[fix_at..]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert_eq!(
        fix.join(" "),
        "fix: nft insert rule inet filter forward ip saddr != 198.51.100.0/24 \
         ip daddr 198.51.100.10 tcp dport 25 accept"
    );
}

#[test]
fn columns_are_read_only_on_a_terminal() {
    // Not a terminal: COLUMNS does not change the table; --width does.
    let args = [
        "analyze",
        "samples/inbound-25-dropped.pcap",
        "--site",
        "samples/inbound-25-dropped.site.toml",
        "--color",
        "never",
    ];
    let plain = stdout(&exflow(&args));
    let with_env = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(args)
        .env("COLUMNS", "60")
        .output()
        .unwrap();
    assert_eq!(stdout(&with_env), plain);
    assert!(plain.lines().any(|l| l.chars().count() > 80), "{plain}");
    let mut narrow = args.to_vec();
    narrow.extend(["--width", "80"]);
    let narrow = stdout(&exflow(&narrow));
    assert_ne!(narrow, plain);
    assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
    let o = exflow(&["analyze", "samples/inbound-25-dropped.pcap", "--width", "5"]);
    assert_eq!(o.status.code(), Some(2), "a width under 20 is refused");
}

/// The nft statements `exflow rules --site S --report R` prints, as the commands that add
/// them: "nft insert rule inet filter forward <statement without its comment>".
fn rules_commands(site: &str, report: &Value) -> BTreeSet<String> {
    let path = tmp_path("report.json");
    std::fs::write(&path, report.to_string()).unwrap();
    let o = exflow(&[
        "rules",
        "--site",
        site,
        "--report",
        path.to_str().unwrap(),
        "--format",
        "nft",
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" accept comment ") && !l.starts_with("ct state"))
        .map(|l| {
            let statement = &l[..l.find(" comment ").unwrap()];
            format!("nft insert rule inet filter forward {statement}")
        })
        .collect()
}

/// The Markdown rows of a flow table: (verdict, fix cell).
fn md_rows(md: &str) -> Vec<(String, String)> {
    md.lines()
        .filter(|l| l.starts_with("| ") && l.contains(" | **"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            let verdict = cells[4].trim().trim_matches('*').to_string();
            (verdict, cells.last().unwrap().trim().to_string())
        })
        .collect()
}

/// The inline code spans of a Markdown cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

#[test]
fn every_failed_row_names_the_rules_exflow_rules_prints_for_it() {
    let mut failed_total = 0;
    let mut by_sample = vec![];
    for (capture, site) in samples() {
        let (capture, site) = (capture.to_str().unwrap(), site.to_str().unwrap());
        let report = json_report(capture, site);
        let failed = |key: &str| {
            report[key]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| {
                    key == "unsupported_restrictions"
                        || FAILED.contains(&e["verdict"].as_str().unwrap())
                })
                .count()
        };
        let n_failed = failed("expected") + failed("unsupported_restrictions");
        failed_total += n_failed;

        // The table, at 80 and 100 columns: a fix under every failed row, none under others.
        for width in ["80", "100"] {
            let out = table(capture, site, width);
            for title in ["Expected flows", "Unsupported restrictions"] {
                for (row, notes) in rows_with_notes(&out, title) {
                    let fixes = notes
                        .iter()
                        .filter(|l| l.starts_with("      fix: "))
                        .count();
                    let unsupported = title == "Unsupported restrictions";
                    let want = usize::from(unsupported || FAILED.contains(&verdict_of(row)));
                    assert_eq!(fixes, want, "{capture} at {width}: {row}\n{out}");
                }
            }
        }

        // Markdown: the fix cell of every failed row holds its commands; together they are
        // exactly the rules `exflow rules --report` prints for the report.
        let md = run_ok(&["analyze", capture, "--site", site, "--format", "md"]);
        let mut from_md = BTreeSet::new();
        let rows = md_rows(&md);
        let in_view = |key: &str| {
            report[key]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["out_of_view"] != true)
                .count()
        };
        assert_eq!(
            rows.len(),
            in_view("expected") + in_view("unsupported_restrictions"),
            "{capture}: Markdown rows"
        );
        let mut md_failed = 0;
        for (verdict, fix) in &rows {
            let spans = code_spans(fix);
            if FAILED.contains(&verdict.as_str()) || !spans.is_empty() {
                md_failed += 1;
                // A flow that died beyond the firewall gets words and no rule.
                if fix.starts_with("nothing to allow on the firewall") {
                    assert!(spans.is_empty(), "{capture}: {fix}");
                    continue;
                }
                assert!(
                    fix.starts_with("allow ") && !spans.is_empty(),
                    "{capture}: {verdict} without a fix: {fix}"
                );
                assert!(spans
                    .iter()
                    .all(|s| s.starts_with("nft insert rule inet filter forward ")
                        && s.ends_with(" accept")));
                from_md.extend(spans);
            } else {
                assert_eq!(fix, "-", "{capture}: {verdict}");
            }
        }
        assert_eq!(md_failed, n_failed, "{capture}: failed rows with a fix");
        assert_eq!(
            from_md,
            rules_commands(site, &report),
            "{capture}: the Markdown's fixes and `exflow rules --report`"
        );
        by_sample.push((capture.to_string(), n_failed, from_md));
    }
    assert!(
        failed_total >= 10,
        "only {failed_total} failed flows in the samples"
    );

    // The two the issue names.
    let fixes_of = |name: &str| {
        by_sample
            .iter()
            .find(|(c, _, _)| c.ends_with(&format!("samples/{name}.pcap")))
            .map(|(_, _, f)| f.clone())
            .unwrap_or_else(|| panic!("no sample {name}"))
    };
    assert_eq!(
        fixes_of("inbound-25-dropped"),
        BTreeSet::from([
            "nft insert rule inet filter forward ip saddr != 198.51.100.0/24 \
                         ip daddr 198.51.100.10 tcp dport 25 accept"
                .to_string()
        ])
    );
    let submission = fixes_of("submission-refused");
    assert_eq!(submission.len(), 1, "{submission:?}");
    assert!(
        submission
            .iter()
            .all(|c| c.contains("ip daddr 198.51.100.10 tcp dport 587 accept")),
        "{submission:?}"
    );
}

#[test]
fn a_fix_says_what_to_allow_when_no_rule_can_be_written() {
    use exflow::classify::catalogue::Catalogue;
    use exflow::classify::site::Site;
    use exflow::report::model::{FlowEntry, Side, Verdict};
    use exflow::report::rules;
    let cat = Catalogue::embedded().unwrap();
    let mailbox = "[[host]]\nrole = \"mailbox\"\naddresses = [\"198.51.100.10\"]\n";
    // No internal networks: the internal clients have no address a rule could match.
    let bare = Site::from_toml(&format!("profile = \"mailbox\"\n{mailbox}"), "bare.toml").unwrap();
    let full = Site::from_toml(
        &format!("profile = \"mailbox\"\ninternal = [\"198.51.100.0/24\"]\n{mailbox}"),
        "full.toml",
    )
    .unwrap();
    let mut entry = FlowEntry {
        role: "smtp-submission".into(),
        purpose: String::new(),
        proto: "tcp",
        port: 587,
        ports: "587".into(),
        src: Side {
            zone: "internal",
            role: Some("client"),
            address: None,
            via: None,
        },
        dst: Side {
            zone: "internal",
            role: Some("mailbox"),
            address: Some("198.51.100.10".into()),
            via: None,
        },
        attempts: 2,
        established: 0,
        dropped: 0,
        refused: 2,
        rejected: 0,
        reset_midstream: 0,
        syn_retries: 0,
        one_sided: 0,
        ignored_resets: 0,
        mail_sessions: 0,
        mail_refused: 0,
        services: vec![],
        handshake_ms: None,
        verdict: Verdict::Refused,
        answered_by: None,
        icmp: vec![],
        detail: String::new(),
        family: None,
        out_of_view: false,
        via: None,
        died_at: None,
        cannot_show: vec![],
        fix: None,
    };
    let fix = rules::fix(cat, &bare, &entry, false).expect("a refused flow has a fix");
    assert!(fix.nft.is_empty(), "{fix:?}");
    assert_eq!(
        fix.words,
        "allow tcp/587 from internal clients to mailbox 198.51.100.10 (the site names no \
         address a rule could match: add its networks to the site file)"
    );
    let fix = rules::fix(cat, &full, &entry, false).unwrap();
    assert_eq!(
        fix.nft,
        vec![
            "nft insert rule inet filter forward ip saddr 198.51.100.0/24 ip daddr 198.51.100.10 \
              tcp dport 587 accept"
                .to_string()
        ]
    );
    assert_eq!(
        fix.words,
        "allow tcp/587 from internal clients to mailbox 198.51.100.10"
    );
    // Nothing to fix where nothing failed; an unsupported restriction always has a fix.
    for v in [Verdict::Ok, Verdict::NotSeen, Verdict::OneSided] {
        entry.verdict = v;
        assert_eq!(rules::fix(cat, &full, &entry, false), None, "{v:?}");
    }
    assert!(rules::fix(cat, &full, &entry, true).is_some());
}
