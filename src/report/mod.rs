//! `report`: what the user reads. The capture summary (terminal) and the per-connection JSON
//! lines of `--flows`.

pub mod build;
pub mod document;
pub mod gate;
pub mod html;
pub mod jsonl;
pub mod junit;
pub mod layout;
pub mod live_view;
pub mod markdown;
pub mod model;
pub mod port_catalogue;
pub mod progress;
pub mod rules;
pub mod site_file;
pub mod summary;
pub mod table;
pub mod terminal;
pub mod words;
