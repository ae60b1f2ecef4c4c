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

/// Past [`ALL_MAX`](crate::sweep::tally::ALL_MAX) checks: at most this many
/// that did not pass plainly (fail, regressed, blocked, interrupted, flaky),
/// then the tally's slowest passes.
const TABLE_NOT_PASSING: usize = 50;

/// One row per check of a sweep, failures first. A small sweep lists every
/// check; a large one its failures (up to 50) and its 10 slowest passing
/// checks by p95, from the tally, then one line counting the rest: a
/// terminal cannot show 100,000 rows, and every check is in the bundle's
/// `summary.md` and JUnit.
pub fn render_checks(report: &crate::sweep::run::SweepReport) -> String {
    use crate::sweep::run::CheckVerdict;
    let tally = &report.tally;
    if let Some(all) = tally.all() {
        return check_table(all);
    }
    let mut shown = tally.not_passing();
    shown.truncate(TABLE_NOT_PASSING);
    let slowest = tally.slowest();
    let passing = tally.count(CheckVerdict::Pass);
    let not_passing = tally.total() - passing;
    let hidden_passing = passing - slowest.len() as u64;
    let hidden_not_passing = not_passing - shown.len() as u64;
    shown.extend(slowest);
    let mut text = check_table(shown);
    text.push_str(&format!(
        "\n… {} more checks not shown ({hidden_passing} passing, {hidden_not_passing} not passing); every check is in the bundle's summary.md and junit.xml",
        hidden_passing + hidden_not_passing,
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
    Latency(ms).to_string()
}

/// [`format_latency`] written where it goes (a sweep's report rows: no
/// string per figure).
pub struct Latency(pub f64);

impl Latency {
    /// Appends the latency as [`Display`](std::fmt::Display) writes it
    /// (a sweep's Markdown row does, once per check).
    pub fn push_to(&self, out: &mut String) {
        use crate::core::decimal::push_fixed;
        let ms = self.0;
        if ms < 10.0 {
            push_fixed(out, ms, 2);
            out.push_str("ms");
        } else if ms < 1000.0 {
            push_fixed(out, ms, 1);
            out.push_str("ms");
        } else {
            push_fixed(out, ms / 1000.0, 2);
            out.push('s');
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        self.push_to(&mut text);
        f.write_str(&text)
    }
}
