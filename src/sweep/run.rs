//! Running a sweep: every selected check concurrently (bounded), each under
//! the same retry policy and evidence as a runbook step, in dependency levels
//! so that the children of a failed check are reported blocked, not failed.
//!
//! The concurrent core: for each dependency level,
//! `stream::iter(checks).map(run_check).buffer_unordered(concurrency)`.
//! All checks share one journal; appends are short and synchronous.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use super::baseline::Baseline;
use super::stats::LatencyStats;
use super::tally::SweepTally;
use crate::check::resolve::ResolverAddr;
use crate::check::Clients;
use crate::core::record::{Event, PlannedStep, RunVerdict, StepVerdict};
use crate::engine::{Cancel, CheckProbe, Emit, Mutations, RunObserver, RunScope, StepRunner};
use crate::evidence::BundleWriter;
use crate::runbook::model::{NotifyConfig, Step};
use crate::runbook::SecretStore;

/// One check to sweep.
#[derive(Debug, Clone)]
pub struct SweepCheck {
    pub step: Step,
    /// Index into [`SweepPlan::vars`]: the `[vars]` of the file it came from.
    pub vars: usize,
}

/// Everything a sweep runs, after loading, `--only` and `--shard`.
#[derive(Debug, Clone, Default)]
pub struct SweepPlan {
    pub checks: Vec<SweepCheck>,
    pub vars: Vec<BTreeMap<String, String>>,
    /// Each file's `[notify]`, by the same index as [`SweepPlan::vars`].
    pub notify: Vec<Option<Box<NotifyConfig>>>,
    pub secrets: SecretStore,
}

/// How to sweep.
#[derive(Clone)]
pub struct SweepOptions {
    pub concurrency: usize,
    /// Runs of each check (each under the full retry policy).
    pub samples: u32,
    pub baseline: Option<(Baseline, f64)>,
    /// The DNS server for every host name (`--resolver`); the system's when `None`.
    pub resolver: Option<ResolverAddr>,
    /// Told of each finished check (the CLI draws a bar on a terminal).
    pub progress: Option<Arc<dyn SweepProgress>>,
}

impl std::fmt::Debug for SweepOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepOptions")
            .field("concurrency", &self.concurrency)
            .field("samples", &self.samples)
            .field("baseline", &self.baseline)
            .field("resolver", &self.resolver)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Someone following a sweep as it goes (a progress bar). Called from the
/// sweep's task as checks finish: keep it cheap, it is on the hot path.
pub trait SweepProgress: Send + Sync {
    /// A round of `checks` checks starts.
    fn start(&self, checks: u64);
    /// One check finished (`report` is redacted, like the journal).
    fn check_done(&self, report: &CheckReport);
    /// The round is over (interrupted or not).
    fn finish(&self);
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum CheckVerdict {
    /// Failed every attempt of a sample (escalated).
    Fail,
    /// Passed, but its p95 latency grew beyond the baseline factor.
    Regressed,
    /// Not run: a check it depends on did not pass.
    Blocked,
    /// The sweep was interrupted before or while it ran.
    Interrupted,
    /// Passed, but only after retries.
    Flaky,
    #[default]
    Pass,
}

impl CheckVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Fail => "fail",
            CheckVerdict::Regressed => "regressed",
            CheckVerdict::Blocked => "blocked",
            CheckVerdict::Interrupted => "interrupted",
            CheckVerdict::Flaky => "flaky",
            CheckVerdict::Pass => "pass",
        }
    }

    /// Whether the check counts as healthy (exit code 0).
    pub fn healthy(self) -> bool {
        matches!(self, CheckVerdict::Pass | CheckVerdict::Flaky)
    }
}

/// One check's result, as reports show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub id: String,
    /// Index into [`SweepPlan::vars`] and [`SweepPlan::notify`]: the file
    /// the check came from.
    #[serde(skip)]
    pub file: usize,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub verdict: CheckVerdict,
    /// Attempts of the last sample (1 = no retry).
    pub attempts: u32,
    /// Attempts over all samples.
    pub attempts_total: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_p95_ms: Option<f64>,
    /// With `--samples K`: how many samples ran and how many of them failed
    /// (every sample is taken, even after a failed one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleCounts>,
}

/// Samples taken of one check, and failed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SampleCounts {
    pub taken: u32,
    pub failed: u32,
    /// `failed / taken`.
    pub failure_rate: f64,
}

/// A finished sweep. Each check went to the [`SweepSink`] as it finished;
/// what is left is the [`SweepTally`], whose size does not grow with the
/// number of checks.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub run_id: String,
    pub started_at: String,
    pub duration_ms: f64,
    pub verdict: RunVerdict,
    pub counts: BTreeMap<String, u32>,
    /// Percentiles over the checks' median latencies (a sketch: within 0.4%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyStats>,
    #[serde(skip)]
    pub tally: SweepTally,
    /// What `[notify]` was told of this round's changes of state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

/// A round's notifications (`[notify]` in the check files).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Notifications {
    /// Checks that started failing or recovered.
    pub changes: usize,
    /// Deliveries a receiver accepted.
    pub delivered: usize,
    /// Deliveries that failed their last attempt (each is in the journal).
    pub undelivered: usize,
}

/// Where a sweep's checks go as they finish: the session's streamed
/// reports. It also observes every journal event (after the journal, like
/// any [`RunObserver`]), so a report can fold a check's steps into one entry
/// and hand it out when [`SweepSink::check_done`] says the check is over.
pub trait SweepSink: RunObserver {
    /// One check finished; its steps' events have all been observed.
    /// `listed` says whether [`SweepTally`] keeps it in detail (see
    /// [`SweepTally::add`]). An `Err` ends the sweep (a bundle write failed).
    fn check_done(&mut self, check: &CheckReport, listed: bool) -> io::Result<()>;
}

/// The journal shared by every check of the sweep.
struct SharedJournal<'a> {
    inner: Mutex<(&'a mut BundleWriter, &'a mut dyn SweepSink)>,
}

impl SharedJournal<'_> {
    fn redact(&self, text: &str) -> String {
        let guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.0.redact(text).into_inner()
    }
}

struct Emitter<'s, 'a>(&'s SharedJournal<'a>);

impl Emit for Emitter<'_, '_> {
    fn emit(&mut self, event: Event) -> io::Result<u64> {
        let mut guard = self
            .0
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (bundle, observer) = &mut *guard;
        let (seq, event) = bundle.record(event)?;
        observer.observe(seq, &event);
        Ok(seq)
    }
}

/// Runs the sweep into `bundle`, short of `run.end` ([`record_end`]). `sink`
/// sees every event after the journal, and each check as it finishes.
pub async fn run_sweep(
    plan: &SweepPlan,
    options: &SweepOptions,
    bundle: &mut BundleWriter,
    sink: &mut dyn SweepSink,
    cancel: &Cancel,
) -> io::Result<SweepReport> {
    let started = Instant::now();
    let started_at = format!("{:.3}", jiff::Timestamp::now());
    let clients = Clients::with_resolver(options.resolver).map_err(io::Error::other)?;
    let blobs = bundle.blobs();
    let run_id = bundle.run_id().to_string();
    let samples = options.samples.max(1);

    // With one sample (the default) each check runs as its own step, with no
    // copy; with K samples each runs K times as `id#1`…`id#K`.
    let sample_copies: Vec<Vec<Step>> = if samples == 1 {
        Vec::new()
    } else {
        plan.checks
            .iter()
            .map(|check| {
                (1..=samples)
                    .map(|k| {
                        let mut step = check.step.clone();
                        step.id = crate::core::record::sample_step_id(&check.step.id, k);
                        step
                    })
                    .collect()
            })
            .collect()
    };
    let steps_of = |index: usize| -> &[Step] {
        match sample_copies.get(index) {
            Some(copies) => copies,
            None => std::slice::from_ref(&plan.checks[index].step),
        }
    };
    bundle.append(&Event::RunStart {
        planned: None,
        steps: (0..plan.checks.len())
            .flat_map(steps_of)
            .map(|s| PlannedStep {
                id: s.id.clone(),
                kind: s.check.kind().to_string(),
                max_attempts: s.policy.max_attempts(),
                timeout_ms: s.policy.timeout.as_millis() as u64,
                depends_on: s.depends_on.clone(),
                mutating: false,
                backoff: Some(s.policy.planned_backoff()),
                tags: s.tags.clone(),
            })
            .collect(),
        on_escalate: "continue".into(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    })?;

    let progress = options.progress.as_deref();
    if let Some(progress) = progress {
        progress.start(plan.checks.len() as u64);
    }

    let journal = SharedJournal {
        inner: Mutex::new((bundle, sink)),
    };
    let runner = StepRunner {
        probe: &CheckProbe,
        clients: &clients,
        blobs: blobs.as_ref(),
        cancel,
        run_id: &run_id,
        owner: None,
        // A sweep changes nothing: its `webhook` checks send only rejection probes.
        mutations: Mutations::Forbidden,
        // One record per first-attempt pass: a sweep's common case.
        compact: true,
    };
    let mut verdicts: HashMap<&str, CheckVerdict> = HashMap::new();
    let mut tally = SweepTally::default();

    for level in dependency_levels(plan) {
        let snapshot = verdicts.clone();
        let runs = level.into_iter().map(|index| {
            let check = &plan.checks[index];
            let steps = steps_of(index);
            let journal = &journal;
            let runner = &runner;
            let snapshot = &snapshot;
            async move {
                let report =
                    sweep_check(plan, check, steps, runner, journal, snapshot, options).await;
                if let (Ok(report), Some(progress)) = (&report, progress) {
                    progress.check_done(report);
                }
                report.map(|r| (index, r))
            }
        });
        // Each report goes to the sink as its check finishes and is then
        // dropped: only the tally stays.
        let mut finished = stream::iter(runs).buffer_unordered(options.concurrency.max(1));
        while let Some(result) = finished.next().await {
            let (index, report) = result?;
            verdicts.insert(&plan.checks[index].step.id, report.verdict);
            let listed = tally.add(&report);
            let mut guard = journal
                .inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            guard.1.check_done(&report, listed)?;
        }
    }
    if let Some(progress) = progress {
        progress.finish();
    }

    let verdict = if cancel.is_cancelled() {
        RunVerdict::Interrupted
    } else if tally.healthy() == tally.total() {
        RunVerdict::Pass
    } else {
        RunVerdict::Escalated
    };
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(SweepReport {
        run_id,
        started_at,
        duration_ms,
        verdict,
        counts: tally.counts(),
        latency: tally.latency(),
        tally,
        notifications: None,
    })
}

/// Ends the sweep's journal with `run.end`, after whatever the session
/// records about the checks' results (notifications).
pub fn record_end(
    report: &SweepReport,
    bundle: &mut BundleWriter,
    observer: &mut dyn RunObserver,
) -> io::Result<()> {
    let (seq, event) = bundle.record(Event::RunEnd {
        verdict: report.verdict,
        counts: report.counts.clone(),
        duration_ms: report.duration_ms,
    })?;
    observer.observe(seq, &event);
    Ok(())
}

/// Runs one check's samples (or records why it cannot run).
async fn sweep_check(
    plan: &SweepPlan,
    check: &SweepCheck,
    steps: &[Step],
    runner: &StepRunner<'_>,
    journal: &SharedJournal<'_>,
    verdicts: &HashMap<&str, CheckVerdict>,
    options: &SweepOptions,
) -> io::Result<CheckReport> {
    let mut report = CheckReport {
        id: check.step.id.clone(),
        file: check.vars,
        kind: check.step.check.kind(),
        tags: check.step.tags.clone(),
        verdict: CheckVerdict::Pass,
        attempts: 0,
        attempts_total: 0,
        latency: None,
        reason: None,
        baseline_p95_ms: None,
        samples: None,
    };
    let failed_deps: Vec<String> = check
        .step
        .depends_on
        .iter()
        .filter_map(|dep| match verdicts.get(dep.as_str()) {
            Some(v) if v.healthy() || *v == CheckVerdict::Regressed => None,
            Some(v) => Some(format!("`{dep}` ({})", v.as_str())),
            // Filtered out of this sweep (--only/--shard): nothing to wait for.
            None => None,
        })
        .collect();
    let not_run = if runner.cancel.is_cancelled() {
        Some((
            StepVerdict::Skipped,
            CheckVerdict::Interrupted,
            "not run: the sweep was interrupted".to_string(),
        ))
    } else if !failed_deps.is_empty() {
        Some((
            StepVerdict::Blocked,
            CheckVerdict::Blocked,
            format!("depends on {}", failed_deps.join(", ")),
        ))
    } else {
        None
    };
    if let Some((step_verdict, verdict, reason)) = not_run {
        for step in steps {
            Emitter(journal).emit(Event::StepEnd {
                step: step.id.clone(),
                verdict: step_verdict,
                attempts: 0,
                duration_ms: 0.0,
                reason: Some(reason.clone()),
                earlier: None,
            })?;
        }
        report.verdict = verdict;
        report.reason = Some(reason);
        return Ok(report);
    }

    let scope = RunScope::new(&plan.vars[check.vars], &plan.secrets);
    let mut latencies = Vec::with_capacity(steps.len());
    let mut retried = false;
    let (mut taken, mut failed) = (0u32, 0u32);
    for step in steps {
        taken += 1;
        let result = runner.run_step(step, &scope, &mut Emitter(journal)).await?;
        let attempts = result.attempt_durations_ms.len() as u32;
        report.attempts = attempts;
        report.attempts_total += attempts;
        match result.verdict {
            StepVerdict::Pass => {
                retried |= attempts > 1;
                if let Some(decisive) = result.attempt_durations_ms.last() {
                    latencies.push(*decisive);
                }
            }
            StepVerdict::Interrupted => {
                report.verdict = CheckVerdict::Interrupted;
                report.reason = Some("interrupted".into());
                break;
            }
            _ => {
                failed += 1;
                if report.verdict != CheckVerdict::Fail {
                    report.verdict = CheckVerdict::Fail;
                    // Redacted now, like the journal's copy: the Markdown,
                    // JUnit and JSON renderers escape it, and escaping first
                    // would hide a secret (`&` → `&amp;`) from the redactor.
                    report.reason = result.reason.map(|r| journal.redact(&r));
                }
                // The other samples are still taken: a failure rate says
                // more than the first failure alone.
            }
        }
    }
    if steps.len() > 1 {
        report.samples = Some(SampleCounts {
            taken,
            failed,
            failure_rate: f64::from(failed) / f64::from(taken.max(1)),
        });
        if failed > 0 {
            if let Some(reason) = &mut report.reason {
                *reason = format!("{failed} of {taken} samples failed; first: {reason}");
            }
        }
    }
    report.latency = LatencyStats::from_samples(&latencies);
    if report.verdict == CheckVerdict::Pass {
        if retried {
            report.verdict = CheckVerdict::Flaky;
        }
        if let (Some((baseline, factor)), Some(latency)) = (&options.baseline, &report.latency) {
            report.baseline_p95_ms = baseline.checks.get(&report.id).map(|b| b.p95_ms);
            if let Some(regression) = baseline.compare(&report.id, latency, *factor) {
                report.verdict = CheckVerdict::Regressed;
                report.reason = Some(regression.describe(*factor));
            }
        }
    }
    Ok(report)
}

/// Check indexes grouped so that every check comes after the checks it
/// depends on (dependencies outside the plan are ignored).
fn dependency_levels(plan: &SweepPlan) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = plan
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| (c.step.id.as_str(), i))
        .collect();
    let mut level = vec![usize::MAX; plan.checks.len()];
    fn depth(
        i: usize,
        plan: &SweepPlan,
        index: &HashMap<&str, usize>,
        level: &mut [usize],
        guard: usize,
    ) -> usize {
        if level[i] != usize::MAX {
            return level[i];
        }
        // The loader rejects cycles; the guard only stops a runaway recursion.
        let d = if guard > plan.checks.len() {
            0
        } else {
            plan.checks[i]
                .step
                .depends_on
                .iter()
                .filter_map(|dep| index.get(dep.as_str()))
                .map(|&j| depth(j, plan, index, level, guard + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        level[i] = d;
        d
    }
    for i in 0..plan.checks.len() {
        depth(i, plan, &index, &mut level, 0);
    }
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for (i, &d) in level.iter().enumerate() {
        if levels.len() <= d {
            levels.resize(d + 1, Vec::new());
        }
        levels[d].push(i);
    }
    levels
}
