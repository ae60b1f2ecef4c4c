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

/// One row per check of a sweep, failures first.
pub fn render_checks(report: &crate::sweep::run::SweepReport) -> String {
    let rows = report.sorted_for_display().into_iter().map(|c| CheckRow {
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
