//! Shared by the fuzz targets: invariants every finished connection must hold.

#![allow(dead_code)]

use exflow::flow::{ConnRecord, ConnState};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The one temp file per process a target writes its inputs to (`read_files` takes paths), in
/// /dev/shm when there is one.
pub fn temp_path(target: &str) -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let dir = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("exflow-fuzz-{target}-{}", std::process::id()))
            .to_string_lossy()
            .into_owned()
    })
}

/// Zeek's history letters (and `^`, its flip mark): all exflow may emit.
pub const HISTORY_LETTERS: &str = "^sShHaAdDfFrRcCgGtTwWiIqQ";

/// Checks one record; panics (a crash for libFuzzer) when an invariant fails.
pub fn check_record(r: &ConnRecord) {
    assert!(
        ConnState::ALL.contains(&r.conn_state),
        "conn_state {:?} not one of the 13",
        r.conn_state
    );
    let h = r.history.as_str();
    assert!(
        h.chars().all(|c| HISTORY_LETTERS.contains(c)),
        "history {h:?} has a letter Zeek does not use"
    );
    assert!(
        matches!(r.proto.number(), 1 | 6 | 17 | 58),
        "record of protocol {}",
        r.proto
    );
}
