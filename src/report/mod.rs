//! `report`: what the user reads. The capture summary (terminal) and the per-connection JSON
//! lines of `--flows`.

pub mod build;
pub mod gate;
pub mod jsonl;
pub mod markdown;
pub mod model;
pub mod progress;
pub mod summary;
pub mod table;
pub mod words;
