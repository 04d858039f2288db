//! One connection seen by two sensors counts once.
//!
//! Every input is a sensor (all the packet captures together are one: they are one capture
//! in order). A record is a copy when a record of another sensor had the same protocol and
//! endpoints (either way round) and a time span that overlaps its own, each widened by
//! [`TOLERANCE`] for the sensors' clocks. The first one seen is kept and the copy dropped
//! (counted); their evidence is not combined.
//!
//! Bounded: the spans of the last [`KEPT`] records are remembered (a map by 5-tuple plus a
//! queue in arrival order; ~100 bytes a record, ~25 MiB in all). A copy arriving after more
//! than [`KEPT`] other records is not recognised and counts twice; [`SensorMerge::forgotten`]
//! counts the spans forgotten, so a report can say when that could have happened.

use crate::flow::{ConnRecord, Endpoint};
use crate::time::{Duration, Timestamp};
use std::collections::{HashMap, VecDeque};

/// Clock difference allowed between two sensors.
pub const TOLERANCE: Duration = Duration::from_secs(2);
/// Records whose spans are remembered.
pub const KEPT: usize = 1 << 18;

type Key = (u8, Endpoint, Endpoint);

#[derive(Clone, Copy, Debug)]
struct Span {
    start: Timestamp,
    end: Timestamp,
    sensor: u16,
}

/// The cross-sensor copy detector.
#[derive(Debug, Default)]
pub struct SensorMerge {
    spans: HashMap<Key, Vec<Span>, foldhash::fast::RandomState>,
    order: VecDeque<Key>,
    /// Records dropped as another sensor's copy.
    pub duplicates: u64,
    /// Spans forgotten to stay within [`KEPT`].
    pub forgotten: u64,
}

fn key(r: &ConnRecord) -> Key {
    let (a, b) = if r.orig <= r.resp {
        (r.orig, r.resp)
    } else {
        (r.resp, r.orig)
    };
    (r.proto.number(), a, b)
}

impl SensorMerge {
    /// Whether `r`, from `sensor`, is a copy of a connection another sensor gave already;
    /// if not, it is remembered.
    pub fn is_copy(&mut self, r: &ConnRecord, sensor: u16) -> bool {
        let k = key(r);
        let start = Timestamp(r.ts.0.saturating_sub(TOLERANCE.0));
        let end = r.ts.plus(r.duration).plus(TOLERANCE);
        let spans = self.spans.entry(k).or_default();
        if spans
            .iter()
            .any(|s| s.sensor != sensor && s.start <= end && start <= s.end)
        {
            self.duplicates += 1;
            return true;
        }
        spans.push(Span { start, end, sensor });
        self.order.push_back(k);
        if self.order.len() > KEPT {
            if let Some(old) = self.order.pop_front() {
                if let Some(v) = self.spans.get_mut(&old) {
                    if !v.is_empty() {
                        v.remove(0);
                    }
                    if v.is_empty() {
                        self.spans.remove(&old);
                    }
                }
                self.forgotten += 1;
            }
        }
        false
    }
}
