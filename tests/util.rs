//! Helpers shared by the integration tests: running the binary, temp paths, ../shared.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test that cannot run here says so and returns; under `CI=true` it fails instead, since CI
/// is set up to run everything (root, network namespaces, `../shared` beside the clone).
pub fn skip(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: cannot run under CI=true: {why}");
    }
    println!("{test}: skipped: {why}");
}

/// `../shared/captures`, or None (after [`skip`]) when it is absent.
pub fn shared_captures(test: &str) -> Option<PathBuf> {
    let p = root().join("../shared/captures");
    if p.is_dir() {
        Some(p)
    } else {
        skip(test, "../shared/captures not present");
        None
    }
}

/// A fresh path in the system temp dir (the file is not created).
pub fn tmp_path(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("exflow-tests-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{}-{name}", N.fetch_add(1, Ordering::Relaxed)))
}

/// Runs the `exflow` binary.
pub fn exflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(args)
        .output()
        .expect("run exflow")
}

/// Runs `exflow analyze FILE... --flows TMP` and returns the JSON lines.
pub fn flows_of(files: &[&Path], extra: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let out = tmp_path("flows.jsonl");
    let out_s = out.to_string_lossy().to_string();
    let mut args: Vec<String> = vec!["analyze".into()];
    args.extend(files.iter().map(|p| p.to_string_lossy().to_string()));
    args.push("--flows".into());
    args.push(out_s.clone());
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = exflow(&argv);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect();
    (o, lines)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether the tests run as root (nft -c and iptables-restore --test need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The sample site files (`samples/*.site.toml`), sorted.
pub fn sample_sites() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .expect("samples/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".site.toml"))
        .collect();
    v.sort();
    v
}
