//! Snapshots of what the binary prints for every sample: the JSON report, the terminal table
//! (no colour) and Markdown, each with the sample's site file and without one (inferred
//! topology), and the `--flows` lines. They pin the output while the code behind it moves:
//! a change of output must be a deliberate one, made by regenerating them
//! (`UPDATE_SNAPSHOTS=1 cargo test snapshots`) and reading the diff.

use crate::util::{exflow, root, stderr, stdout};
use std::fs;
use std::path::Path;

/// The outputs pinned per sample: (file suffix, arguments after the capture).
const VARIANTS: &[(&str, &[&str])] = &[
    ("site.json", &["--format", "json", "--site", "{site}"]),
    (
        "site.table",
        &["--format", "table", "--color", "never", "--site", "{site}"],
    ),
    ("site.md", &["--format", "md", "--site", "{site}"]),
    ("inferred.json", &["--format", "json"]),
    ("inferred.table", &["--format", "table", "--color", "never"]),
    ("inferred.md", &["--format", "md"]),
    // uids are random per run unless seeded; seed 0 gives the uids of the connection numbers.
    (
        "flows.jsonl",
        &["--flows", "-", "--site", "{site}", "--seed", "0"],
    ),
];

fn samples() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".pcap").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_sample_prints_what_its_snapshots_say() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let dir = root().join("tests/snapshots");
    fs::create_dir_all(&dir).unwrap();
    let mut failures = vec![];
    let mut checked = 0;
    for name in samples() {
        let pcap = format!("samples/{name}.pcap");
        let site = format!("samples/{name}.site.toml");
        // The outage captures (issue 14) have no site file by design (a BPF-filtered capture
        // of the failed port, read as it comes): only their inferred outputs are pinned.
        let has_site = Path::new(&root().join(&site)).is_file();
        assert!(has_site || name.starts_with("outage-"), "{site} missing");
        for (suffix, args) in VARIANTS {
            if !has_site && args.contains(&"{site}") {
                continue;
            }
            let mut argv = vec!["analyze", pcap.as_str()];
            argv.extend(
                args.iter()
                    .map(|a| if *a == "{site}" { site.as_str() } else { a }),
            );
            let o = run_in_root(&argv);
            assert!(
                o.status.code().is_some_and(|c| c == 0 || c == 1),
                "{argv:?}: {}",
                stderr(&o)
            );
            let got = stdout(&o);
            let file = dir.join(format!("{name}.{suffix}"));
            if update {
                fs::write(&file, &got).unwrap();
                continue;
            }
            let want = fs::read_to_string(&file).unwrap_or_default();
            checked += 1;
            if want != got {
                failures.push(format!(
                    "{}: differs from `exflow {}`{}",
                    file.display(),
                    argv.join(" "),
                    first_difference(&want, &got)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} snapshots differ (UPDATE_SNAPSHOTS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        update || checked >= 7 * 16,
        "only {checked} snapshots checked"
    );
}

/// Runs the binary from the crate root, so that the file names it prints are the same on
/// every machine.
fn run_in_root(argv: &[&str]) -> std::process::Output {
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        cwd,
        root(),
        "cargo runs integration tests in the crate root"
    );
    exflow(argv)
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("\n  line {}:\n  - {w}\n  + {g}", i + 1);
        }
    }
    format!(
        "\n  {} lines expected, {} printed",
        want.lines().count(),
        got.lines().count()
    )
}
