//! The one integration-test binary (ripgrep's layout): every module is a group of tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod alloc;

mod catalogue;
mod cli;
mod closes;
mod conformance;
mod decode_frames;
mod findings;
mod flow_props;
mod flows_role;
mod hostile_input;
mod html;
mod idle;
mod junit;
mod lab15;
mod layout;
mod live;
mod messages;
mod outputs;
mod records;
mod render;
mod report;
mod robustness;
mod roundtrip;
mod rules;
mod samples;
mod scans;
mod site;
mod snapshots;
mod source_files;
mod spoof;
mod synth;
mod terminal;
