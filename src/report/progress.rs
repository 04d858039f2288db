//! The progress bar on stderr while files are read (only when stderr is a terminal and
//! `--quiet` is not given): bytes of the total, packets per second, connections open.
//! Updated every few thousand frames, so the hot path pays one counter test per frame.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::Cell;

/// Frames between two updates of the bar.
const EVERY: u64 = 8192;

pub struct Progress {
    bar: ProgressBar,
    bytes: Cell<u64>,
}

impl Progress {
    /// A bar over the total size of the regular files given (a spinner for stdin/pipes).
    pub fn new(files: &[String]) -> Progress {
        let total: u64 = files
            .iter()
            .filter(|f| f.as_str() != "-")
            .filter_map(|f| std::fs::metadata(f).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        let bar = if total > 0 {
            ProgressBar::new(total)
        } else {
            ProgressBar::new_spinner()
        };
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Progress {
            bar,
            bytes: Cell::new(0),
        }
    }

    /// One frame read (its captured length); updates the bar every 8192 frames.
    pub fn frame(&self, n: u64, caplen: u32, open_flows: usize) {
        // Record header (16 bytes in pcap) plus the captured bytes: close to the file size.
        self.bytes.set(self.bytes.get() + 16 + u64::from(caplen));
        if n % EVERY == 0 {
            self.bar.set_position(self.bytes.get());
            let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
            self.bar.set_message(format!(
                "{:.0} packets/s, {} connections open",
                n as f64 / secs,
                open_flows
            ));
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
