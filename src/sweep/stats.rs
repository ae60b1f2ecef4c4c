//! Latency figures for a check's samples: min, p50, p95, p99, max.

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

#[cfg(test)]
mod tests {
    use super::*;

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
