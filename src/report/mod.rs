//! `report`: what the user reads. The capture summary (terminal) and the per-connection JSON
//! lines of `--flows`.

pub mod jsonl;
pub mod summary;
