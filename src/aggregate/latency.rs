//! Handshake latency kept in bounded memory: each conversation keeps at most
//! [`LATENCY_SAMPLES`] SYN → SYN-ACK times (a reservoir: every sample equally likely to be
//! kept, chosen deterministically), with the count and the exact maximum, so that memory follows
//! conversations, not connections. A flow's percentiles are read from its conversations'
//! reservoirs, each sample weighted by how many connections it stands for; while no reservoir
//! is full they are exactly the percentiles of every sample.

use super::verdict::Percentiles;
use hdrhistogram::Histogram;

/// The most handshake samples a conversation keeps (past it, a reservoir of this size).
pub const LATENCY_SAMPLES: usize = 64;

/// The handshake times of one conversation: all of them up to [`LATENCY_SAMPLES`], past it
/// a uniform sample of that size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Samples recorded.
    n: u64,
    /// The largest sample recorded, microseconds.
    max: u32,
    /// Microseconds; every sample while `n` ≤ [`LATENCY_SAMPLES`].
    samples: Vec<u32>,
}

/// A well-mixed hash of the sample's index (splitmix64), standing for a random draw so that
/// the same capture keeps the same samples.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Latency {
    /// Records one SYN → SYN-ACK time in microseconds.
    pub fn record(&mut self, us: u32) {
        self.n += 1;
        self.max = self.max.max(us);
        if self.samples.len() < LATENCY_SAMPLES {
            self.samples.push(us);
            return;
        }
        // Algorithm R: the n-th sample replaces a kept one with probability LATENCY_SAMPLES / n.
        let j = mix(self.n) % self.n;
        if let Some(slot) = self.samples.get_mut(j as usize) {
            *slot = us;
        }
    }

    /// Samples recorded (not only kept).
    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Samples kept (at most [`LATENCY_SAMPLES`]).
    pub fn kept(&self) -> usize {
        self.samples.len()
    }

    /// Whether every sample recorded is kept.
    fn exact(&self) -> bool {
        self.samples.len() as u64 == self.n
    }
}

/// p50/p90/p99/max in milliseconds over several conversations' samples (hdrhistogram, 3
/// significant digits, 1 µs .. 1 hour). A kept sample of a reservoir stands for
/// `count / kept` connections; when every sample is kept, each counts once.
pub fn percentiles_of<'a>(parts: impl Iterator<Item = &'a Latency> + Clone) -> Percentiles {
    let zero = Percentiles {
        p50: 0.0,
        p90: 0.0,
        p99: 0.0,
        max: 0.0,
    };
    let exact = parts.clone().all(Latency::exact);
    // Bounded by the largest sample rather than the hour: the same buckets (they follow from
    // the lowest value and the digits), without allocating, zeroing and scanning the ones no
    // sample reaches (an hour's worth was most of the report's time).
    let max = parts.clone().map(|l| l.max).max().unwrap_or(0);
    let top = max.clamp(2, 3_600_000_000);
    let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, u64::from(top), 3) else {
        return zero;
    };
    for l in parts {
        if l.samples.is_empty() {
            continue;
        }
        // In units of 1/LATENCY_SAMPLES of a connection when some reservoir is full: a kept
        // sample of a full reservoir weighs its count, one of an exact list LATENCY_SAMPLES.
        let w = if exact {
            1
        } else {
            let w = u128::from(l.n) * LATENCY_SAMPLES as u128 / l.samples.len() as u128;
            u64::try_from(w).unwrap_or(u64::MAX)
        };
        for &v in &l.samples {
            h.saturating_record_n(u64::from(v.max(1)), w);
        }
    }
    if h.is_empty() {
        return zero;
    }
    let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
    Percentiles {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        // The exact maximum, even when its sample was not kept.
        max: ms(h.highest_equivalent(u64::from(max.clamp(1, top)))),
    }
}

/// p50/p90/p99/max in milliseconds of microsecond samples, every one counted.
pub fn percentiles(us: &[u32]) -> Percentiles {
    let l = Latency {
        n: us.len() as u64,
        max: us.iter().copied().max().unwrap_or(0),
        samples: us.to_vec(),
    };
    percentiles_of(std::iter::once(&l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_groups_keep_every_sample_and_match_the_plain_percentiles() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        let all: Vec<u32> = (1..=50).map(|i| i * 997).collect();
        for (i, &v) in all.iter().enumerate() {
            if i % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
        }
        assert_eq!(percentiles_of([&a, &b].into_iter()), percentiles(&all));
    }

    #[test]
    fn a_reservoir_stays_bounded_and_keeps_the_shape() {
        let mut l = Latency::default();
        // 1,000,000 handshakes: 90 % at 1 ms, 10 % at 100 ms (and one at 3 s).
        for i in 0..1_000_000u32 {
            l.record(if i % 10 == 9 { 100_000 } else { 1_000 });
        }
        l.record(3_000_000);
        assert_eq!(l.kept(), LATENCY_SAMPLES);
        assert_eq!(l.count(), 1_000_001);
        let p = percentiles_of(std::iter::once(&l));
        assert!((p.p50 - 1.0).abs() < 0.01, "{p:?}");
        assert!((p.max - 3000.0).abs() < 3.0, "{p:?}");
    }
}
