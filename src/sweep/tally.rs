//! [`SweepTally`]: what a sweep keeps of its checks once each has been
//! handed to the reports: counts per verdict, a latency sketch, the slowest
//! passes and the first checks that did not pass. Its size does not grow
//! with the number of checks (every check is in the streamed reports).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::run::{CheckReport, CheckVerdict};
use super::stats::{LatencyHistogram, LatencyStats};

/// Checks that did not pass plainly (fail, regressed, blocked, interrupted,
/// flaky) kept in detail; the rest are counted. 1,000 rows is as much as a
/// person reads, and more than a terminal shows.
pub const LISTED_MAX: usize = 1_000;
/// Slowest passing checks kept (by p95).
pub const SLOWEST_MAX: usize = 10;
/// Up to this many checks, every one is kept (a small sweep's table lists
/// them all, as it always did).
pub const ALL_MAX: usize = 100;

/// A sweep's checks, folded as they finish.
#[derive(Debug, Clone, Default)]
pub struct SweepTally {
    total: u64,
    counts: BTreeMap<CheckVerdict, u64>,
    /// Each check's median latency (its only latency with one sample).
    latency: LatencyHistogram,
    /// The highest p95 of any check.
    worst_p95_ms: Option<f64>,
    /// The first [`LISTED_MAX`] checks that did not pass plainly, in the
    /// order they finished.
    listed: Vec<CheckReport>,
    /// Checks that did not pass plainly beyond [`LISTED_MAX`].
    unlisted: u64,
    /// The slowest passes: a min-heap on p95 of at most [`SLOWEST_MAX`].
    slowest: BinaryHeap<Reverse<ByP95>>,
    /// Every check while there are at most [`ALL_MAX`]; `None` past that.
    all: Option<Vec<CheckReport>>,
}

/// A check ordered by its p95 (then id, so ties are stable).
#[derive(Debug, Clone)]
struct ByP95(f64, CheckReport);

impl PartialEq for ByP95 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for ByP95 {}
impl PartialOrd for ByP95 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByP95 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The smaller id ranks higher: it is kept on a tie, as a sort by
        // (p95 descending, id) would show it first.
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.id.cmp(&self.1.id))
    }
}

/// Failures first, then by id: the order people read checks in.
pub fn display_order(a: &CheckReport, b: &CheckReport) -> std::cmp::Ordering {
    a.verdict.cmp(&b.verdict).then_with(|| a.id.cmp(&b.id))
}

impl SweepTally {
    /// Counts one finished check. Returns whether it is listed in detail
    /// (one that did not pass plainly, among the first [`LISTED_MAX`]):
    /// a report that shows the listed checks first need not repeat them.
    pub fn add(&mut self, check: &CheckReport) -> bool {
        self.total += 1;
        *self.counts.entry(check.verdict).or_insert(0) += 1;
        if let Some(latency) = check.latency {
            self.latency.record_ms(latency.p50_ms);
            self.worst_p95_ms = Some(self.worst_p95_ms.unwrap_or(0.0).max(latency.p95_ms));
        }
        match &mut self.all {
            Some(all) if all.len() < ALL_MAX => all.push(check.clone()),
            Some(_) => self.all = None,
            None if self.total == 1 => self.all = Some(vec![check.clone()]),
            None => {}
        }
        if check.verdict != CheckVerdict::Pass {
            if self.listed.len() < LISTED_MAX {
                self.listed.push(check.clone());
                return true;
            }
            self.unlisted += 1;
            return false;
        }
        let p95 = check.latency.map_or(0.0, |l| l.p95_ms);
        let slower = self
            .slowest
            .peek()
            .is_none_or(|Reverse(least)| least.0 < p95);
        if self.slowest.len() < SLOWEST_MAX || slower {
            self.slowest.push(Reverse(ByP95(p95, check.clone())));
            if self.slowest.len() > SLOWEST_MAX {
                self.slowest.pop();
            }
        }
        false
    }

    /// Checks counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Checks with `verdict`.
    pub fn count(&self, verdict: CheckVerdict) -> u64 {
        self.counts.get(&verdict).copied().unwrap_or(0)
    }

    /// Checks that count as healthy (pass, flaky).
    pub fn healthy(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(v, _)| v.healthy())
            .map(|(_, n)| n)
            .sum()
    }

    /// Counts by verdict name, for `run.end` and `--json`.
    pub fn counts(&self) -> BTreeMap<String, u32> {
        self.counts
            .iter()
            .map(|(v, n)| (v.as_str().to_string(), *n as u32))
            .collect()
    }

    /// Percentiles over the checks' median latencies (from the sketch).
    pub fn latency(&self) -> Option<LatencyStats> {
        self.latency.stats()
    }

    /// The highest p95 of any check (exact).
    pub fn worst_p95_ms(&self) -> Option<f64> {
        self.worst_p95_ms
    }

    /// The listed checks that did not pass plainly, failures first.
    pub fn not_passing(&self) -> Vec<&CheckReport> {
        let mut checks: Vec<&CheckReport> = self.listed.iter().collect();
        checks.sort_by(|a, b| display_order(a, b));
        checks
    }

    /// Checks that did not pass plainly but are not listed (past [`LISTED_MAX`]).
    pub fn unlisted(&self) -> u64 {
        self.unlisted
    }

    /// The slowest passes, slowest first.
    pub fn slowest(&self) -> Vec<&CheckReport> {
        let mut checks: Vec<&ByP95> = self.slowest.iter().map(|Reverse(c)| c).collect();
        checks.sort_by(|a, b| b.cmp(a));
        checks.into_iter().map(|c| &c.1).collect()
    }

    /// Every check, failures first, when there are at most [`ALL_MAX`].
    pub fn all(&self) -> Option<Vec<&CheckReport>> {
        let mut checks: Vec<&CheckReport> = self.all.as_ref()?.iter().collect();
        checks.sort_by(|a, b| display_order(a, b));
        Some(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(i: usize, verdict: CheckVerdict) -> CheckReport {
        CheckReport {
            id: format!("c{i:05}"),
            kind: "http",
            verdict,
            latency: LatencyStats::from_samples(&[i as f64]),
            ..CheckReport::default()
        }
    }

    #[test]
    fn keeps_counts_the_slowest_and_the_first_failures_only() {
        let mut tally = SweepTally::default();
        for i in 0..5_000 {
            let verdict = if i % 2 == 0 {
                CheckVerdict::Fail
            } else {
                CheckVerdict::Pass
            };
            let listed = tally.add(&check(i, verdict));
            assert_eq!(listed, verdict == CheckVerdict::Fail && i < 2 * LISTED_MAX);
        }
        assert_eq!(tally.total(), 5_000);
        assert_eq!(tally.count(CheckVerdict::Fail), 2_500);
        assert_eq!(tally.not_passing().len(), LISTED_MAX);
        assert_eq!(tally.unlisted(), 1_500);
        let slowest: Vec<&str> = tally.slowest().iter().map(|c| c.id.as_str()).collect();
        assert_eq!(slowest.len(), SLOWEST_MAX);
        assert_eq!(slowest[0], "c04999");
        assert_eq!(slowest[9], "c04981");
        assert!(tally.all().is_none());
        assert_eq!(tally.worst_p95_ms(), Some(4_999.0));
        assert_eq!(tally.counts()["pass"], 2_500);
    }

    #[test]
    fn a_small_sweep_keeps_every_check() {
        let mut tally = SweepTally::default();
        for i in 0..ALL_MAX {
            tally.add(&check(i, CheckVerdict::Pass));
        }
        assert_eq!(tally.all().map(|a| a.len()), Some(ALL_MAX));
        tally.add(&check(ALL_MAX, CheckVerdict::Pass));
        assert!(tally.all().is_none());
    }
}
