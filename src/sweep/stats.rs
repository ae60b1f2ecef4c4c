//! Latency figures: a check's samples (min, p50, p95, p99, max, exact), and
//! [`LatencyHistogram`], the constant-size sketch a whole sweep keeps instead
//! of every check's figures.

use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds (nearest-rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub samples: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyStats {
    /// Figures for `values`; `None` when there are none.
    pub fn from_samples(values: &[f64]) -> Option<LatencyStats> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(LatencyStats {
            samples: sorted.len(),
            min_ms: sorted[0],
            p50_ms: percentile(&sorted, 50.0),
            p95_ms: percentile(&sorted, 95.0),
            p99_ms: percentile(&sorted, 99.0),
            max_ms: sorted[sorted.len() - 1],
        })
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at
/// least `p` percent of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sub-buckets per power of two: 2^7 = 128, so a bucket is at most 1/128 of
/// its lower bound wide and the midpoint is within 1/256 (0.4%) of any value
/// in it.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

/// An HDR-style log-bucketed histogram of latencies (nanosecond resolution):
/// values below 256 ns have a bucket each, larger ones 128 buckets per power
/// of two. Percentiles are within 0.4% of the exact nearest-rank figure (see
/// the test), min and max are exact, and the memory does not grow with the
/// number of values: at most 7,424 counters (58 KiB), grown on demand to
/// the largest value seen (about 28 KiB for latencies up to a minute).
///
/// Written here rather than taken from the `hdrhistogram` crate: a sweep
/// needs record + percentile only, in about sixty lines.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    count: u64,
    min_ns: u64,
    max_ns: u64,
}

impl LatencyHistogram {
    /// Counts one latency in milliseconds (negative or NaN counts as 0).
    pub fn record_ms(&mut self, ms: f64) {
        let ns = (ms * 1e6).round().max(0.0) as u64;
        let index = bucket_of(ns);
        if self.counts.len() <= index {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
        if self.count == 0 || ns < self.min_ns {
            self.min_ns = ns;
        }
        self.max_ns = self.max_ns.max(ns);
        self.count += 1;
    }

    /// Values counted.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Nearest-rank percentile in milliseconds: the midpoint of the bucket
    /// holding the value of that rank, kept within the exact min and max.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let rank = rank.min(self.count);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_range(index);
                let mid = low + width / 2;
                return Some(mid.clamp(self.min_ns, self.max_ns) as f64 / 1e6);
            }
        }
        Some(self.max_ns as f64 / 1e6)
    }

    /// The figures of every value counted, like [`LatencyStats::from_samples`].
    pub fn stats(&self) -> Option<LatencyStats> {
        Some(LatencyStats {
            samples: self.count as usize,
            min_ms: self.min_ns as f64 / 1e6,
            p50_ms: self.percentile_ms(50.0)?,
            p95_ms: self.percentile_ms(95.0)?,
            p99_ms: self.percentile_ms(99.0)?,
            max_ms: self.max_ns as f64 / 1e6,
        })
    }
}

/// The bucket of a value: exact below `2 * SUB`, then `SUB` per octave.
fn bucket_of(ns: u64) -> usize {
    if ns < 2 * SUB {
        return ns as usize;
    }
    let msb = 63 - ns.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = ns >> shift; // in SUB..2*SUB
    (2 * SUB + u64::from(shift - 1) * SUB + (sub - SUB)) as usize
}

/// A bucket's lower bound and width.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < 2 * SUB {
        return (index, 1);
    }
    let shift = (index - 2 * SUB) / SUB + 1;
    let sub = (index - 2 * SUB) % SUB + SUB;
    (sub << shift, 1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_within_half_a_percent_of_exact_ones() {
        // A latency-like spread over five decades, in a fixed pseudo-random order.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut values = Vec::new();
        let mut histogram = LatencyHistogram::default();
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            let ms = 0.05 * 10f64.powf(unit * 5.0);
            values.push(ms);
            histogram.record_ms(ms);
        }
        values.sort_by(f64::total_cmp);
        for p in [1.0, 10.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
            let exact = percentile(&values, p);
            let sketch = histogram.percentile_ms(p).unwrap();
            // 1/256 of the value, plus the nanosecond the values are rounded to.
            let bound = exact / 256.0 + 1e-6;
            assert!(
                (sketch - exact).abs() <= bound,
                "p{p}: sketch {sketch} exact {exact} (bound {bound})"
            );
        }
        let stats = histogram.stats().unwrap();
        assert_eq!(stats.samples, 100_000);
        assert!((stats.min_ms - values[0]).abs() <= 1e-6);
        assert!((stats.max_ms - values[values.len() - 1]).abs() <= 1e-6);
        // Bounded whatever is counted: 256 exact buckets + 56 octaves of 128.
        assert!(histogram.counts.len() <= bucket_of(u64::MAX) + 1);
        assert_eq!(bucket_of(u64::MAX) + 1, 256 + 56 * 128);
    }

    #[test]
    fn histogram_buckets_round_trip_and_small_values_are_exact() {
        for ns in [0u64, 1, 255, 256, 257, 511, 512, 1_000_000, u64::MAX / 2] {
            let (low, width) = bucket_range(bucket_of(ns));
            assert!(low <= ns && ns - low < width, "{ns}: {low}+{width}");
        }
        let mut h = LatencyHistogram::default();
        assert!(h.stats().is_none());
        h.record_ms(0.0002);
        assert_eq!(h.percentile_ms(50.0), Some(0.0002));
    }

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let stats = LatencyStats::from_samples(&values).unwrap();
        assert_eq!(
            (
                stats.min_ms,
                stats.p50_ms,
                stats.p95_ms,
                stats.p99_ms,
                stats.max_ms
            ),
            (1.0, 50.0, 95.0, 99.0, 100.0)
        );
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let stats = LatencyStats::from_samples(&[12.5]).unwrap();
        assert_eq!((stats.p50_ms, stats.p99_ms), (12.5, 12.5));
        assert!(LatencyStats::from_samples(&[]).is_none());
    }

    #[test]
    fn order_of_samples_does_not_matter() {
        let a = LatencyStats::from_samples(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((a.min_ms, a.p50_ms, a.max_ms), (1.0, 3.0, 5.0));
    }
}
