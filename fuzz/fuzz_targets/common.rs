//! Shared by the fuzz targets: invariants every finished connection must hold.

#![allow(dead_code)]

use exflow::flow::{ConnRecord, ConnState};

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
