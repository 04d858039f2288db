//! exflow: from packets alone, which Exchange flows a firewall lets through, drops, refuses or
//! resets.
//!
//! One pipeline, the same for files and live capture:
//! `source` (frames borrowed from the reader) → `decode` (a small `Copy` [`decode::Packet`]) →
//! `flow` (a Zeek-compatible state machine per connection; a [`flow::ConnRecord`] when a
//! connection ends) → `report`.
//!
//! Hot-path rules: from a frame to a flow update nothing is allocated and nothing is
//! formatted; a flow allocates once, when it is created (its slot in the table).

#![forbid(unsafe_code)]
// No unwrap() or expect() outside tests: nothing reachable from capture bytes, records, a site
// file or the command line may panic on a missing value (clippy -D warnings in CI holds it).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod aggregate;
pub mod classify;
pub mod decode;
pub mod error;
pub mod flow;
pub mod pipeline;
pub mod report;
pub mod source;
pub mod time;
