//! The steps of a run as a terminal table (tabled), for `run` and `show`.

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::summary::RunSummary;

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "#")]
    index: usize,
    step: String,
    kind: String,
    verdict: String,
    attempts: String,
    time: String,
    reason: String,
}

/// Renders one row per step, in runbook order.
pub fn render_steps(summary: &RunSummary) -> String {
    let rows = summary.steps.iter().enumerate().map(|(i, step)| Row {
        index: i + 1,
        step: step.id.clone(),
        kind: step.kind.clone(),
        verdict: step.verdict_label(),
        attempts: if step.attempts == 0 {
            "-".into()
        } else {
            format!("{}/{}", step.attempts, step.max_attempts)
        },
        time: format_ms(step.duration_ms),
        reason: step
            .reason
            .as_deref()
            .map(|r| shorten(r, 70))
            .unwrap_or_default(),
    });
    Table::new(rows).with(Style::sharp()).to_string()
}

/// `0.21s`, `12.60s`, `1m02s`.
pub fn format_ms(ms: f64) -> String {
    if ms <= 0.0 {
        return "-".into();
    }
    if ms < 1000.0 {
        return format!("{ms:.0}ms");
    }
    let secs = ms / 1000.0;
    if secs < 60.0 {
        format!("{secs:.2}s")
    } else {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    }
}

/// The first line of text, cut to `max` characters and marked with `…`
/// (through [`crate::core::cut`], the crate's one cut rule).
pub fn shorten(text: &str, max: usize) -> String {
    crate::core::cut::cut_line(text, max)
}

#[derive(Tabled)]
struct CheckRow {
    check: String,
    kind: String,
    verdict: String,
    attempts: String,
    p50: String,
    p95: String,
    reason: String,
}

/// Up to this many checks, the sweep table lists every one.
const TABLE_ALL: usize = 100;
/// Past [`TABLE_ALL`]: at most this many checks that did not pass plainly
/// (fail, regressed, blocked, interrupted, flaky), then the slowest passes.
const TABLE_NOT_PASSING: usize = 50;
const TABLE_SLOWEST: usize = 10;

/// One row per check of a sweep, failures first. A large sweep shows its
/// failures (up to 50) and its 10 slowest passing checks by p95, then one
/// line counting the rest: a terminal cannot show 100,000 rows, and every
/// check is in the bundle's `summary.md`, JUnit and `--json`.
pub fn render_checks(report: &crate::sweep::run::SweepReport) -> String {
    use crate::sweep::run::CheckVerdict;
    let sorted = report.sorted_for_display();
    if sorted.len() <= TABLE_ALL {
        return check_table(sorted);
    }
    let (passing, mut shown): (Vec<_>, Vec<_>) = sorted
        .into_iter()
        .partition(|c| c.verdict == CheckVerdict::Pass);
    let not_passing = shown.len();
    shown.truncate(TABLE_NOT_PASSING);
    let p95 = |c: &&crate::sweep::run::CheckReport| c.latency.map_or(0.0, |l| l.p95_ms);
    let mut slowest = passing.clone();
    let k = TABLE_SLOWEST.min(slowest.len());
    if k > 0 && k < slowest.len() {
        slowest.select_nth_unstable_by(k - 1, |a, b| p95(b).total_cmp(&p95(a)));
    }
    slowest.truncate(k);
    slowest.sort_by(|a, b| p95(b).total_cmp(&p95(a)).then_with(|| a.id.cmp(&b.id)));
    let hidden = report.checks.len() - shown.len() - slowest.len();
    shown.extend(slowest);
    let mut text = check_table(shown);
    text.push_str(&format!(
        "\n… {hidden} more checks not shown ({} passing, {} not passing); every check is in the bundle's summary.md and junit.xml",
        passing.len().saturating_sub(k),
        not_passing - not_passing.min(TABLE_NOT_PASSING),
    ));
    text
}

fn check_table(checks: Vec<&crate::sweep::run::CheckReport>) -> String {
    let rows = checks.into_iter().map(|c| CheckRow {
        check: c.id.clone(),
        kind: c.kind.to_string(),
        verdict: c.verdict.as_str().to_string(),
        attempts: if c.attempts_total == 0 {
            "-".into()
        } else {
            c.attempts_total.to_string()
        },
        p50: c
            .latency
            .map(|l| format_latency(l.p50_ms))
            .unwrap_or_else(|| "-".into()),
        p95: c
            .latency
            .map(|l| format_latency(l.p95_ms))
            .unwrap_or_else(|| "-".into()),
        reason: c
            .reason
            .as_deref()
            .map(|r| shorten(r, 60))
            .unwrap_or_default(),
    });
    Table::new(rows).with(Style::sharp()).to_string()
}

/// `0.42ms`, `12.3ms`, `1.20s`.
pub fn format_latency(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}
