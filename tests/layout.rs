//! The stages import only earlier stages: `source → decode → flow → classify → aggregate →
//! report`, with `pipeline` on top and `time` and `error` beneath everything. Read from the
//! `crate::` paths of every file of every stage's folder (a `use` line or a path in code).

use crate::util::root;
use std::fs;
use std::path::Path;

/// The stages in the order the data flows; a stage may use itself and those before it.
const STAGES: [&str; 7] = [
    "source",
    "decode",
    "flow",
    "classify",
    "aggregate",
    "report",
    "pipeline",
];
/// Used by every stage.
const BENEATH: [&str; 2] = ["time", "error"];

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module names a source text reaches through `crate::`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = vec![];
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn no_stage_imports_a_later_stage() {
    let src = root().join("src");
    let mut wrong = vec![];
    let mut checked = 0;
    for (rank, stage) in STAGES.iter().enumerate() {
        let mut paths = vec![];
        let folder = src.join(stage);
        if folder.is_dir() {
            files(&folder, &mut paths);
        }
        let file = src.join(format!("{stage}.rs"));
        if file.is_file() {
            paths.push(file);
        }
        assert!(!paths.is_empty(), "stage {stage} has no source");
        for p in paths {
            let text = fs::read_to_string(&p).unwrap();
            for name in crate_paths(&text) {
                checked += 1;
                if BENEATH.contains(&name.as_str()) {
                    continue;
                }
                match STAGES.iter().position(|s| *s == name) {
                    Some(r) if r <= rank => {}
                    Some(_) => wrong.push(format!(
                        "{} ({stage}) uses crate::{name}, a later stage",
                        p.strip_prefix(root()).unwrap().display()
                    )),
                    None => wrong.push(format!(
                        "{} ({stage}) uses crate::{name}, which is no stage: add it to STAGES",
                        p.strip_prefix(root()).unwrap().display()
                    )),
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} crate:: paths found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_a_later_stage() {
    let paths = crate_paths("use crate::report::model;\nlet x = crate::aggregate::MAX_GROUPS;");
    assert_eq!(paths, ["report", "aggregate"]);
}
