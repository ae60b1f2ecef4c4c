//! The sweep's progress bar on a terminal (indicatif): checks done, failures
//! so far, rate and ETA, on stderr, cleared when the round ends. The CLI
//! hands it to the sweep only when a person is watching a terminal.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::sweep::run::{CheckReport, CheckVerdict, SweepProgress};

/// A bar per round, drawn on stderr.
pub struct TerminalProgress {
    bar: ProgressBar,
    failing: AtomicU64,
}

impl TerminalProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} checks, {msg}, {per_sec}, ETA {eta} ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        TerminalProgress {
            bar,
            failing: AtomicU64::new(0),
        }
    }
}

impl SweepProgress for TerminalProgress {
    fn start(&self, checks: u64) {
        self.failing.store(0, Ordering::Relaxed);
        self.bar.reset();
        self.bar.set_length(checks);
        self.bar.set_message("0 failing");
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }

    fn check_done(&self, report: &CheckReport) {
        // A regression passed: it is reported, but it is not a failure.
        if !report.verdict.healthy() && report.verdict != CheckVerdict::Regressed {
            let n = self.failing.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar.set_message(format!("{n} failing"));
        }
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for TerminalProgress {
    /// A round that ended on an error still leaves a clean terminal.
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
