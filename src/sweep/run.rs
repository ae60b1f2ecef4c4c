//! Running a sweep: every selected check concurrently (bounded), each under
//! the same retry policy and evidence as a runbook step, in dependency levels
//! so that the children of a failed check are reported blocked, not failed.
//!
//! The concurrent core ([`Workers`]): one thread per core, each a
//! single-threaded runtime running `buffer_unordered(its share of the
//! concurrency)` over checks pulled from one shared source, for the
//! independent checks and then for each dependency level. All checks share
//! one journal ([`super::journal`]): appends are short and synchronous, and
//! what the reports make of them never keeps a sweep thread waiting.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::Either;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use super::baseline::Baseline;
use super::journal::{Emitter, SharedJournal, ThreadJournal};
use super::prefetch::Prefetch;
use super::stats::LatencyStats;
use super::tally::SweepTally;
use crate::check::resolve::ResolverAddr;
use crate::check::Clients;
use crate::core::record::{sample_step_id, Event, PlannedStep, RunVerdict, StepVerdict};
use crate::engine::{Cancel, CheckProbe, Mutations, RunObserver, RunScope, StepRunner};
use crate::evidence::BundleWriter;
use crate::runbook::model::Step;

use super::plan::InputChanged;
pub use super::plan::{SweepCheck, SweepPlan};

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
    /// Why the sweep stopped before its end when no signal stopped it: a
    /// check file that changed while it was read again ([`InputChanged`]'s
    /// text). The round then ends as an interrupted one, saying so in
    /// `run.end`.
    #[serde(skip)]
    pub stopped: Option<String>,
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
pub trait SweepSink: RunObserver + Send {
    /// One check finished; its steps' events have all been observed.
    /// `listed` says whether [`SweepTally`] keeps it in detail (see
    /// [`SweepTally::add`]). An `Err` ends the sweep (a bundle write failed).
    fn check_done(&mut self, check: &CheckReport, listed: bool) -> io::Result<()>;
}

/// Runs the sweep into `bundle`, short of `run.end` ([`record_end`]). `sink`
/// sees every event after the journal, and each check as it finishes.
///
/// A check file found changed as it is read again ends the sweep as
/// `cancel` would, its reason in [`SweepReport::stopped`]: the bundle must
/// still end and verify. Any other error is returned.
///
/// `beside` runs on a thread of its own while the first checks run (the
/// session copies the input into the bundle so); the checks that depend on
/// others start once it is done.
pub async fn run_sweep(
    plan: &SweepPlan,
    options: &SweepOptions,
    bundle: &mut BundleWriter,
    sink: &mut dyn SweepSink,
    cancel: &Cancel,
    beside: Option<&(dyn Fn() + Sync)>,
) -> io::Result<SweepReport> {
    let started = Instant::now();
    let started_at = format!("{:.3}", jiff::Timestamp::now());
    let blobs = bundle.blobs();
    let run_id = bundle.run_id().to_string();
    let samples = options.samples.max(1);
    // Cancelled with `cancel`, or on its own when a file changed: the
    // caller's flag stays the operator's.
    let sweep_cancel = cancel.child();
    let cancel = &sweep_cancel;
    // The steps are announced in `plan` records as the sweep reaches them:
    // `run.start` gives only their number.
    bundle.append(&Event::RunStart {
        steps: Vec::new(),
        planned: Some(plan.len as u64 * u64::from(samples)),
        on_escalate: "continue".into(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    })?;

    let progress = options.progress.as_deref();
    if let Some(progress) = progress {
        progress.start(plan.len as u64);
    }

    // Only the verdicts of checks that others depend on are kept.
    let depended: HashSet<String> = plan
        .files
        .iter()
        .flat_map(|f| f.depends.iter())
        .flat_map(|(_, deps)| deps.iter().cloned())
        .collect();
    let journal = SharedJournal::new(bundle, sink, depended);
    let workers = Workers {
        threads: sweep_threads(options.concurrency),
        plan,
        options,
        samples,
        journal: &journal,
        blobs: blobs.as_ref(),
        cancel,
        run_id: &run_id,
    };

    // First the checks that depend on no other check of the plan, streamed
    // file by file; the others are set aside, then run in dependency levels
    // so that the children of a failed check are reported blocked.
    // A streamed plan's next batches are read and validated on a thread of
    // their own while the sweep's threads probe the current ones.
    let prefetch = Prefetch::new(PREFETCH_BATCHES);
    let streamed = plan.held.is_none();
    let batches: Batches<'_> = if streamed {
        Box::new(std::iter::from_fn(|| prefetch.pop()))
    } else {
        plan.batches()
    };
    let announcer = Mutex::new(Announcer::new(plan, batches, &journal, samples, cancel));
    let no_verdicts = HashMap::new();
    let feed = || {
        // Closed however the reading ends (a panic too): a sweep thread
        // waiting for the next batch must not wait for ever.
        let _closed = prefetch.closed_on_drop();
        for batch in plan.batches() {
            if !prefetch.push(batch) {
                return;
            }
        }
    };
    let stop = || prefetch.stop();
    let feeder = streamed.then_some(Feeder {
        feed: &feed,
        stop: &stop,
    });
    workers.run(&announcer, &no_verdicts, feeder, beside)?;
    let (dependants, stopped) = {
        let announcer = announcer.into_inner().unwrap_or_else(|p| p.into_inner());
        (announcer.dependants, announcer.changed)
    };
    for level in dependency_levels(dependants) {
        for chunk in level.chunks(PLAN_CHUNK) {
            announce(&journal, chunk.iter(), samples)?;
        }
        // The level's checks read the verdicts of the levels before it.
        let snapshot = journal.verdicts();
        let source = Mutex::new(level.into_iter().map(Ok));
        workers.run(&source, &snapshot, None, None)?;
    }
    let tally = journal.into_tally();
    if let Some(progress) = progress {
        progress.finish();
    }

    let mut counts = tally.counts();
    // Checks an interruption kept from being read at all.
    let not_reached = (plan.len as u64).saturating_sub(tally.total());
    if not_reached > 0 {
        *counts
            .entry(CheckVerdict::Interrupted.as_str().to_string())
            .or_insert(0) += not_reached as u32;
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
        counts,
        latency: tally.latency(),
        tally,
        notifications: None,
        stopped: stopped.map(|e| e.to_string()),
    })
}

/// Threads a sweep runs on unless `RUNPROOF_SWEEP_THREADS` says otherwise:
/// one per core, at most [`MAX_SWEEP_THREADS`].
const MAX_SWEEP_THREADS: usize = 4;

/// One thread per core, at most [`MAX_SWEEP_THREADS`]: the threads of a
/// sweep, and of its first pass over the input.
pub fn threads_per_machine() -> usize {
    crate::core::parallel::cores().min(MAX_SWEEP_THREADS)
}

/// How many threads sweep with `concurrency` checks in flight in all: one
/// per core (at most [`MAX_SWEEP_THREADS`]), never more than checks in
/// flight; `RUNPROOF_SWEEP_THREADS` sets the number (benchmarks, tests).
fn sweep_threads(concurrency: usize) -> usize {
    let wanted = std::env::var("RUNPROOF_SWEEP_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(threads_per_machine);
    wanted.min(concurrency.max(1))
}

/// Batches a streamed sweep reads ahead: each [`SWEEP_CHUNK_CHECKS`] checks
/// of a file read in chunks (else one file read whole), so 1,000 checks
/// ahead, as many as one batch of a file of 1,000 read whole.
///
/// [`SWEEP_CHUNK_CHECKS`]: super::plan::SWEEP_CHUNK_CHECKS
const PREFETCH_BATCHES: usize = 4;

/// A producer run beside the sweep's threads ([`Workers::run`]): `feed`
/// on a thread of its own, `stop` once the sweep's threads are done, so
/// that a `feed` waiting to hand over more returns.
struct Feeder<'f> {
    feed: &'f (dyn Fn() + Sync),
    stop: &'f (dyn Fn() + Sync),
}

/// The sweep's threads. Each runs its own single-threaded runtime with its
/// own clients (connection pools) and its share of the concurrency, pulling
/// checks from one shared source: a probe, its connection task and its
/// timers stay on one thread (cross-thread wake-ups per request cost more
/// than they bought on one multi-threaded runtime), while the cores share
/// the checks. The journal is one ([`SharedJournal`]).
struct Workers<'w, 'a> {
    threads: usize,
    plan: &'w SweepPlan,
    options: &'w SweepOptions,
    samples: u32,
    journal: &'w SharedJournal<'a>,
    blobs: &'w dyn crate::core::BlobSink,
    cancel: &'w Cancel,
    run_id: &'w str,
}

impl Workers<'_, '_> {
    /// Runs every check `source` hands out, each seeing `verdicts`, and
    /// hands each report to the journal's sink. Blocks until all have
    /// finished, or the first error (from the source, a journal write or
    /// the sink) stops the threads taking new checks; that error is
    /// returned. `beside` runs on a thread of its own meanwhile, and is
    /// waited for.
    fn run<'p, I>(
        &self,
        source: &Mutex<I>,
        verdicts: &HashMap<String, CheckVerdict>,
        feeder: Option<Feeder<'_>>,
        beside: Option<&(dyn Fn() + Sync)>,
    ) -> io::Result<()>
    where
        I: Iterator<Item = io::Result<Placed<'p>>> + Send,
    {
        let failure: Mutex<Option<io::Error>> = Mutex::new(None);
        let stopped = std::sync::atomic::AtomicBool::new(false);
        let concurrency = self.options.concurrency.max(1);
        // At least 1 and at most `concurrency` ([`sweep_threads`]).
        let threads = self.threads;
        tracing::debug!("sweeping on {threads} thread(s), {concurrency} checks in flight in all");
        let fail = |error: io::Error| {
            stopped.store(true, std::sync::atomic::Ordering::SeqCst);
            failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(error);
        };
        let work = |share: usize| {
            let outcome = self.run_thread(share, source, verdicts, &stopped);
            if let Err(error) = outcome {
                fail(error);
            }
        };
        let spawn_all = || {
            std::thread::scope(|scope| {
                // `beside` first: a reader started before a failed spawn
                // would wait for ever to hand over its next batch.
                let sides = [
                    ("sweep-beside", beside),
                    ("sweep-reader", feeder.as_ref().map(|f| f.feed)),
                ];
                for (name, job) in sides {
                    let Some(job) = job else { continue };
                    let spawned = std::thread::Builder::new()
                        .name(name.into())
                        .spawn_scoped(scope, job);
                    if let Err(error) = spawned {
                        fail(error);
                        return;
                    }
                }
                let mut handles = Vec::with_capacity(threads);
                for i in 0..threads {
                    // The concurrency split as evenly as it goes.
                    let share = concurrency / threads + usize::from(i < concurrency % threads);
                    let work = &work;
                    let spawned = std::thread::Builder::new()
                        .name(format!("sweep-{i}"))
                        .spawn_scoped(scope, move || work(share));
                    match spawned {
                        Ok(handle) => handles.push(handle),
                        Err(error) => {
                            fail(error);
                            break;
                        }
                    }
                }
                let panics: Vec<_> = handles.into_iter().filter_map(|h| h.join().err()).collect();
                // The sweep's threads are done: a reader still waiting to
                // hand over a batch stops (the scope then joins it).
                if let Some(feeder) = &feeder {
                    (feeder.stop)();
                }
                if let Some(panic) = panics.into_iter().next() {
                    std::panic::resume_unwind(panic);
                }
            })
        };
        // The calling runtime's other tasks (the signal handler) move to its
        // other threads while this one waits for the sweep's.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(spawn_all)
            }
            _ => spawn_all(),
        }
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// One thread: its runtime and clients, and up to `share` checks in
    /// flight until the source runs dry or `stopped` is set.
    fn run_thread<'p, I>(
        &self,
        share: usize,
        source: &Mutex<I>,
        verdicts: &HashMap<String, CheckVerdict>,
        stopped: &std::sync::atomic::AtomicBool,
    ) -> io::Result<()>
    where
        I: Iterator<Item = io::Result<Placed<'p>>> + Send,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let clients = Clients::with_resolver(self.options.resolver);
        // The thread's own flag, cancelled with the sweep's: its attempts
        // wait on it without meeting the other threads' at a shared lock.
        let cancel = self.cancel.child();
        let runner = StepRunner {
            probe: &CheckProbe,
            clients: &clients,
            blobs: self.blobs,
            cancel: &cancel,
            run_id: self.run_id,
            owner: None,
            // A sweep changes nothing: its `webhook` checks send only rejection probes.
            mutations: Mutations::Forbidden,
            // One record per first-attempt pass: a sweep's common case.
            compact: true,
        };
        let next = std::iter::from_fn(|| {
            if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            source.lock().unwrap_or_else(|p| p.into_inner()).next()
        });
        let journal = ThreadJournal::new(self.journal);
        let progress = self.options.progress.as_deref();
        let swept = runtime.block_on(async {
            let runs = stream::iter(next).map(|check| {
                let (runner, journal) = (&runner, &journal);
                match check {
                    // Boxed as it is made: unboxed, the check's future was
                    // copied whole from the stream into the set in flight
                    // (about 350 instructions a check more than the box
                    // costs). The check is moved into it once: unwrapped
                    // inside, it was held twice (336 bytes each).
                    Ok(check) => Either::Left(Box::pin(async move {
                        sweep_one(
                            self.plan,
                            &check,
                            self.samples,
                            runner,
                            journal,
                            verdicts,
                            self.options,
                        )
                        .await
                    })),
                    Err(error) => Either::Right(std::future::ready(Err(error))),
                }
            });
            let mut finished = runs.buffer_unordered(share.max(1));
            while let Some(result) = finished.next().await {
                let report = result?;
                if let Some(progress) = progress {
                    progress.check_done(&report);
                }
                journal.check_done(report)?;
            }
            Ok(())
        });
        // What this thread held back goes to the sink however it ended.
        let flushed = journal.flush();
        swept.and(flushed)
    }
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
        reason: report
            .stopped
            .as_ref()
            .map(|why| format!("stopped: input file {why}")),
    })?;
    observer.observe(seq, &event);
    Ok(())
}

/// Runs one check's samples (or records why it cannot run).
async fn sweep_check(
    plan: &SweepPlan,
    check: &SweepCheck<'_>,
    steps: Cow<'_, [Step]>,
    runner: &StepRunner<'_>,
    journal: &ThreadJournal<'_, '_>,
    verdicts: &HashMap<String, CheckVerdict>,
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
        for step in steps.iter() {
            journal.emit(Event::StepEnd {
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
    for step in steps.iter() {
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
                    report.reason = result.reason.map(|r| journal.shared().redact(&r));
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

/// Steps announced per `plan` record.
const PLAN_CHUNK: usize = 1_000;

/// A check of the plan: its step borrowed from a held plan, owned when read
/// again from its file.
type Placed<'p> = SweepCheck<'p>;

/// The plan's checks as the announcer takes them: [`SweepPlan::batches`],
/// or the same batches read ahead on a thread of their own ([`Prefetch`]).
type Batches<'b> = Box<dyn Iterator<Item = io::Result<Vec<Placed<'b>>>> + Send + 'b>;

/// The checks that depend on no other check of the plan, in file order,
/// each announced in a `plan` record (a chunk at a time) before it is
/// handed out; the others are set aside in `dependants`.
struct Announcer<'p, 'j, 'a> {
    plan: &'p SweepPlan,
    batches: Batches<'j>,
    /// The rest of the current batch, not yet announced.
    batch: std::vec::IntoIter<Placed<'j>>,
    /// Announced, not yet handed out.
    ready: std::collections::VecDeque<Placed<'j>>,
    journal: &'j SharedJournal<'a>,
    samples: u32,
    dependants: Vec<Placed<'j>>,
    /// The sweep's own flag ([`Cancel::child`]): cancelled here when a
    /// file changed.
    cancel: &'j Cancel,
    /// The file found changed, which stopped the sweep.
    changed: Option<io::Error>,
}

impl<'p, 'j, 'a> Announcer<'p, 'j, 'a> {
    fn new(
        plan: &'p SweepPlan,
        batches: Batches<'j>,
        journal: &'j SharedJournal<'a>,
        samples: u32,
        cancel: &'j Cancel,
    ) -> Self {
        Announcer {
            plan,
            batches,
            batch: Vec::new().into_iter(),
            ready: std::collections::VecDeque::new(),
            journal,
            samples,
            dependants: Vec::new(),
            cancel,
            changed: None,
        }
    }

    /// Announces the next chunk of checks; false when there are none left.
    /// Once the sweep is interrupted, checks still to be read from a file
    /// are not read at all (a million-check sweep stops at once) and count
    /// as interrupted in `run.end`; checks in memory are still recorded as
    /// not run. A file found changed interrupts the sweep so: the checks
    /// in flight end as interrupted, and the bundle is sealed.
    fn fill(&mut self) -> io::Result<bool> {
        while self.ready.is_empty() {
            if self.batch.len() == 0 {
                if self.cancel.is_cancelled() && self.plan.held.is_none() {
                    return Ok(false);
                }
                match self.batches.next() {
                    Some(Ok(batch)) => self.batch = batch.into_iter(),
                    Some(Err(e)) if InputChanged::is(&e) => {
                        self.changed = Some(e);
                        self.cancel.cancel();
                        return Ok(false);
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Ok(false),
                }
            }
            for check in self.batch.by_ref() {
                let selection = &self.plan.selection;
                if check.step.depends_on.iter().any(|dep| selection.keeps(dep)) {
                    self.dependants.push(check);
                    continue;
                }
                self.ready.push_back(check);
                if self.ready.len() == PLAN_CHUNK {
                    break;
                }
            }
            announce(self.journal, self.ready.iter(), self.samples)?;
        }
        Ok(true)
    }
}

impl<'j> Iterator for Announcer<'_, 'j, '_> {
    type Item = io::Result<Placed<'j>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.fill() {
            Ok(true) => self.ready.pop_front().map(Ok),
            Ok(false) => None,
            // Once: the sweep stops at the first error it is handed.
            Err(e) => {
                self.batches = Box::new(std::iter::empty());
                self.batch = Vec::new().into_iter();
                Some(Err(e))
            }
        }
    }
}

/// Writes a `plan` record announcing the steps of `checks` (each sample of
/// each with `--samples`); nothing for no checks.
fn announce<'c, 'p: 'c>(
    journal: &SharedJournal<'_>,
    checks: impl Iterator<Item = &'c SweepCheck<'p>>,
    samples: u32,
) -> io::Result<()> {
    let mut steps = Vec::with_capacity(checks.size_hint().0 * samples as usize);
    for check in checks {
        let step = &check.step;
        let planned = |id: String| PlannedStep {
            id,
            kind: step.check.kind().to_string(),
            max_attempts: step.policy.max_attempts(),
            timeout_ms: step.policy.timeout.as_millis() as u64,
            depends_on: step.depends_on.clone(),
            mutating: false,
            backoff: Some(step.policy.planned_backoff()),
            tags: step.tags.clone(),
        };
        if samples == 1 {
            steps.push(planned(step.id.clone()));
        } else {
            steps.extend((1..=samples).map(|k| planned(sample_step_id(&step.id, k))));
        }
    }
    if steps.is_empty() {
        return Ok(());
    }
    journal.emit(Event::Plan { steps }).map(|_| ())
}

/// Runs one check: as its own step, or with `--samples K` as `ID#1`…`ID#K`.
///
/// Not async itself: it hands back [`sweep_check`]'s future, so that each
/// check's future is one level (1.7 KB) smaller, and not copied into a
/// future of its own as it is made.
fn sweep_one<'f, 'c, 'r, 's, 'a>(
    plan: &'f SweepPlan,
    check: &'f SweepCheck<'c>,
    samples: u32,
    runner: &'f StepRunner<'r>,
    journal: &'f ThreadJournal<'s, 'a>,
    verdicts: &'f HashMap<String, CheckVerdict>,
    options: &'f SweepOptions,
) -> impl std::future::Future<Output = io::Result<CheckReport>> + use<'f, 'c, 'r, 's, 'a> {
    let steps: Cow<'f, [Step]> = if samples == 1 {
        Cow::Borrowed(std::slice::from_ref(&*check.step))
    } else {
        Cow::Owned(
            (1..=samples)
                .map(|k| {
                    let mut step = Step::clone(&check.step);
                    step.id = sample_step_id(&check.step.id, k);
                    step
                })
                .collect(),
        )
    };
    sweep_check(plan, check, steps, runner, journal, verdicts, options)
}

/// The checks set aside because they depend on others, grouped so that
/// every check comes after the checks it depends on (dependencies outside
/// the plan are ignored).
fn dependency_levels(checks: Vec<Placed<'_>>) -> Vec<Vec<Placed<'_>>> {
    let index: HashMap<&str, usize> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| (c.step.id.as_str(), i))
        .collect();
    let mut level = vec![usize::MAX; checks.len()];
    fn depth(
        i: usize,
        checks: &[Placed<'_>],
        index: &HashMap<&str, usize>,
        level: &mut [usize],
        guard: usize,
    ) -> usize {
        if level[i] != usize::MAX {
            return level[i];
        }
        // The loader rejects cycles; the guard only stops a runaway recursion.
        let d = if guard > checks.len() {
            0
        } else {
            checks[i]
                .step
                .depends_on
                .iter()
                .filter_map(|dep| index.get(dep.as_str()))
                .map(|&j| depth(j, checks, index, level, guard + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        level[i] = d;
        d
    }
    for i in 0..checks.len() {
        depth(i, &checks, &index, &mut level, 0);
    }
    drop(index);
    let mut levels: Vec<Vec<Placed<'_>>> = Vec::new();
    for (check, d) in checks.into_iter().zip(level) {
        if levels.len() <= d {
            levels.resize_with(d + 1, Vec::new);
        }
        levels[d].push(check);
    }
    levels
}
