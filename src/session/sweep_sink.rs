//! [`RoundSink`]: where a sweep round's checks go as they finish — the
//! bundle's `junit.xml` and `summary.md`, the operator's `--junit`,
//! `--markdown`, `--prometheus` and `--save-baseline` files, `[notify]`'s
//! states and the CLI's `--json` stream. Nothing here keeps a check once it
//! has been written: the files are spooled ([`crate::report::spool`]) and
//! written whole at the end of the round.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::alerts::CheckStates;
use super::sweep::SweepRound;
use crate::core::record::Event;
use crate::engine::RunObserver;
use crate::evidence::{Redacted, Redactor};
use crate::report::junit::JunitStream;
use crate::report::markdown::MarkdownStream;
use crate::report::prometheus::{self, PrometheusStream};
use crate::report::spool::{Mode, Part, Spooled};
use crate::report::StepFolds;
use crate::sweep::run::{CheckReport, CheckVerdict, SweepReport, SweepSink};

/// Told of a round as it goes: the CLI's `--json` on stdout. It handles its
/// own write errors (a closed stdout must not stop the sweep's evidence).
pub trait RoundListener: Send {
    /// The round's bundle was created (`bundle` as the CLI shows it).
    fn begin(&mut self, bundle: &str);
    /// One check finished (redacted, like the journal).
    fn check(&mut self, check: &CheckReport);
}

/// The round's reports inside its bundle: written unsynced, then synced by
/// the seal with the bundle's other files ([`crate::evidence::BundleWriter::sync_later`]).
pub const BUNDLE_JUNIT: &str = "junit.xml";
pub const BUNDLE_SUMMARY: &str = "summary.md";

/// A file the operator asked for that could not be written.
pub(super) struct OutputError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The round's [`SweepSink`].
pub(super) struct RoundSink<'a, 'l> {
    folds: StepFolds,
    samples: u32,
    junit: JunitStream,
    markdown: MarkdownStream,
    prometheus: Option<PrometheusStream>,
    baseline: Option<BaselineStream>,
    states: Option<&'a mut CheckStates>,
    listener: Option<&'a mut (dyn RoundListener + 'l)>,
    /// The operator's files, by path: what to call them in an error.
    operator_files: Vec<(PathBuf, &'static str)>,
    /// Operator files that failed already (reported after the seal).
    errors: Vec<OutputError>,
}

impl<'a, 'l> RoundSink<'a, 'l> {
    /// Creates the round's spools. A bundle file that cannot be started is
    /// an `Err`; an operator's file is reported after the seal, as before.
    pub fn new(
        round: &SweepRound<'_>,
        bundle_dir: &Path,
        redactor: &Arc<Redactor>,
        states: Option<&'a mut CheckStates>,
        listener: Option<&'a mut (dyn RoundListener + 'l)>,
    ) -> std::io::Result<RoundSink<'a, 'l>> {
        let mut operator_files = Vec::new();
        let mut errors = Vec::new();
        let mut operator = |spooled: &mut Spooled, path: &Path, mode, what| {
            operator_files.push((path.to_path_buf(), what));
            if let Err(source) = spooled.add_target(path, mode) {
                errors.push(OutputError {
                    what,
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut junit = Spooled::new(redactor.clone(), 1);
        junit.add_target(&bundle_dir.join(BUNDLE_JUNIT), Mode::ReplaceUnsynced)?;
        if let Some(path) = round.junit {
            operator(&mut junit, path, Mode::Replace, "--junit");
        }
        let mut markdown = Spooled::new(redactor.clone(), 1);
        markdown.add_target(&bundle_dir.join(BUNDLE_SUMMARY), Mode::ReplaceUnsynced)?;
        if let Some(path) = round.markdown {
            operator(&mut markdown, path, Mode::Append, "--markdown");
        }
        let prometheus = round.prometheus.map(|path| {
            let mut spooled = Spooled::new(redactor.clone(), PrometheusStream::SECTIONS);
            operator(&mut spooled, path, Mode::Replace, "--prometheus");
            PrometheusStream::new(spooled)
        });
        let baseline = round.save_baseline.map(|path| {
            let mut spooled = Spooled::new(redactor.clone(), 1);
            operator(&mut spooled, path, Mode::Replace, "--save-baseline");
            BaselineStream {
                spooled,
                first: true,
                line: String::new(),
            }
        });
        Ok(RoundSink {
            folds: StepFolds::default(),
            samples: round.samples.max(1),
            junit: JunitStream::new(junit, round.name),
            markdown: MarkdownStream::new(markdown),
            prometheus,
            baseline,
            states,
            listener,
            operator_files,
            errors,
        })
    }

    /// Tells the listener the round's bundle.
    pub fn begin(&mut self, bundle: &str) {
        if let Some(listener) = self.listener.as_deref_mut() {
            listener.begin(bundle);
        }
    }

    /// The `[notify]` states, once the checks are over.
    pub fn release_states(&mut self) -> Option<&'a mut CheckStates> {
        self.states.take()
    }

    /// Writes every file of the round. A bundle file that cannot be written
    /// is an `Err`; the operator's files that could not be are returned.
    pub fn finish(
        mut self,
        report: &SweepReport,
        name: &str,
        bundle_label: &str,
    ) -> std::io::Result<Vec<OutputError>> {
        let mut bundle_error = None;
        let mut sort = |failed: Vec<(PathBuf, std::io::Error)>, errors: &mut Vec<OutputError>| {
            for (path, source) in failed {
                match self.operator_files.iter().find(|(p, _)| *p == path) {
                    Some((_, what)) => errors.push(OutputError { what, path, source }),
                    None => {
                        bundle_error.get_or_insert(source);
                    }
                }
            }
        };
        let mut errors = std::mem::take(&mut self.errors);
        sort(
            self.junit
                .finish(&report.run_id, &report.started_at, report.duration_ms),
            &mut errors,
        );
        sort(
            self.markdown.finish(report, name, bundle_label),
            &mut errors,
        );
        if let Some(stream) = self.prometheus {
            let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
            sort(stream.finish(now), &mut errors);
        }
        if let Some(stream) = self.baseline {
            sort(stream.finish(&report.started_at), &mut errors);
        }
        match bundle_error {
            Some(err) => Err(err),
            None => Ok(errors),
        }
    }
}

impl RunObserver for RoundSink<'_, '_> {
    fn observe(&mut self, seq: u64, event: &Redacted<Event>) {
        self.folds.observe(seq, event);
    }
}

impl SweepSink for RoundSink<'_, '_> {
    fn check_done(&mut self, check: &CheckReport, listed: bool) -> std::io::Result<()> {
        if let Some(step) = self.folds.take_check(&check.id, self.samples) {
            let regression = (check.verdict == CheckVerdict::Regressed)
                .then(|| check.reason.as_deref().unwrap_or("latency regressed"));
            self.junit.case(&step, regression);
        }
        self.markdown.check(check, listed);
        if let (Some(stream), Some(metrics)) = (&mut self.prometheus, metrics(check)) {
            stream.check(&metrics);
        }
        if let (Some(stream), Some(latency)) = (&mut self.baseline, &check.latency) {
            stream.check(&check.id, latency);
        }
        if let Some(states) = self.states.as_deref_mut() {
            states.observe(check);
        }
        if let Some(listener) = self.listener.as_deref_mut() {
            listener.check(check);
        }
        Ok(())
    }
}

/// A check's Prometheus figures; `None` for an interrupted check.
fn metrics(c: &CheckReport) -> Option<prometheus::CheckMetrics> {
    (c.verdict != CheckVerdict::Interrupted).then(|| prometheus::CheckMetrics {
        id: c.id.clone(),
        kind: c.kind.to_string(),
        tags: c.tags.clone(),
        success: match c.verdict {
            CheckVerdict::Blocked => None,
            verdict => Some(verdict.healthy() || verdict == CheckVerdict::Regressed),
        },
        duration_seconds: c.latency.map(|l| l.p50_ms / 1000.0),
        attempts: c.attempts,
        regressed: c.verdict == CheckVerdict::Regressed,
    })
}

/// `--save-baseline`: the [`Baseline`](crate::sweep::baseline::Baseline)
/// file, one check per line as checks finish (the checks' order does not
/// matter to `--baseline`, which reads them into a map).
struct BaselineStream {
    spooled: Spooled,
    first: bool,
    line: String,
}

impl BaselineStream {
    fn check(&mut self, id: &str, latency: &crate::sweep::stats::LatencyStats) {
        self.line.clear();
        if !self.first {
            self.line.push_str(",\n");
        }
        self.first = false;
        self.line.push_str("    ");
        self.line
            .push_str(&serde_json::to_string(id).unwrap_or_default());
        self.line.push_str(": ");
        self.line
            .push_str(&serde_json::to_string(latency).unwrap_or_default());
        self.spooled.write(0, &self.line);
    }

    fn finish(self, created_at: &str) -> Vec<(PathBuf, std::io::Error)> {
        let head = format!(
            "{{\n  \"version\": 1,\n  \"created_at\": {},\n  \"checks\": {{\n",
            serde_json::to_string(created_at).unwrap_or_default()
        );
        self.spooled.finish(&[
            Part::Text(&head),
            Part::Section(0),
            Part::Text("\n  }\n}\n"),
        ])
    }
}
