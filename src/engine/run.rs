//! Running a runbook: one step at a time in file order, each attempt under
//! the step's timeout, retries with backoff, escalation when the last attempt
//! fails, and blocked or skipped steps recorded with their reason.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cancel::Cancel;
use super::notify::{Message, Notice, Notifier};
use super::retry::{backoff_schedule, no_retry_reason};
use super::scope::RunScope;
use super::RunObserver;
use crate::check::confirm::{ConfirmCheck, Confirmation, Confirmer};
use crate::check::resolve::ResolverAddr;
use crate::check::{BlobSink, CheckSpec, Clients, Observation, Outcome, ProbeContext};
use crate::core::record::Collected;
use crate::core::record::{
    AttemptSummary, AttemptVerdict, EarlierPass, Escalation, Event, PlannedStep, ResumedFrom,
    RunVerdict, StepVerdict,
};
use crate::core::template::Scope;
use crate::core::{FailureClass, FailureRecord};
use crate::evidence::BundleWriter;
use crate::runbook::model::{OnEscalate, Runbook, Step};
use crate::runbook::SecretStore;

/// Which mutating steps may run (`--allow-mutations[=TAG,...]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mutations {
    /// None: a read-only run (the default).
    #[default]
    Forbidden,
    /// Every mutating step.
    All,
    /// Only mutating steps carrying one of these tags.
    Tagged(Vec<String>),
}

impl Mutations {
    /// Whether `step` may change things: every step with `--allow-mutations`,
    /// only the steps carrying an allowed tag with `--allow-mutations=TAG`,
    /// none in a read-only run. Decides [`ProbeContext::read_only`].
    pub fn permits(&self, step: &Step) -> bool {
        match self {
            Mutations::Forbidden => false,
            Mutations::All => true,
            Mutations::Tagged(tags) => step.tags.iter().any(|t| tags.contains(t)),
        }
    }

    /// Why `step` may not run, when it is mutating and not allowed.
    fn refusal(&self, step: &Step) -> Option<String> {
        if !step.mutating {
            return None;
        }
        match self {
            Mutations::All => None,
            Mutations::Forbidden => {
                Some("mutating step: pass --allow-mutations to run it".to_string())
            }
            Mutations::Tagged(tags) if step.tags.iter().any(|t| tags.contains(t)) => None,
            Mutations::Tagged(tags) => Some(format!(
                "mutating step without an allowed tag (--allow-mutations={})",
                tags.join(",")
            )),
        }
    }
}

/// Choices the operator makes on the command line.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Which steps marked `mutating = true` run.
    pub mutations: Mutations,
    /// Who answers `confirm` steps; without one, they end unconfirmed.
    pub confirmer: Option<Arc<dyn Confirmer>>,
    /// Run only these steps (and the steps they depend on).
    pub only: Vec<String>,
    /// The DNS server for every host name (`--resolver`); the system's when `None`.
    pub resolver: Option<ResolverAddr>,
    /// `--resume BUNDLE`: steps that passed in the earlier run are recorded
    /// as passed earlier instead of running again.
    pub resume: Option<Resume>,
}

/// What a resumed run takes from the earlier one (`run --resume BUNDLE`),
/// read from a bundle that verified and ran the same runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The earlier run, for the new bundle's header.
    pub from: ResumedFrom,
    /// Step id -> where the step passed in the earlier journal.
    pub passed: HashMap<String, EarlierPass>,
}

impl Resume {
    /// The earlier pass to record for `step` instead of running it, if any.
    /// A read-only step that captures values runs again: captured values are
    /// never recorded in a bundle, and its dependents may need them.
    pub fn earlier_pass(&self, step: &Step) -> Option<&EarlierPass> {
        let rerun = !step.mutating && !step.check.capture_names().is_empty();
        self.passed.get(&step.id).filter(|_| !rerun)
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("mutations", &self.mutations)
            .field("confirmer", &self.confirmer.is_some())
            .field("only", &self.only)
            .field("resume", &self.resume.as_ref().map(|r| &r.from.run_id))
            .finish()
    }
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub verdict: RunVerdict,
    /// Steps per verdict.
    pub counts: BTreeMap<String, u32>,
    /// Of the passed steps, those that passed in the resumed run and were
    /// not run again.
    pub passed_earlier: u32,
}

/// Runs every step of `runbook`, recording each event in `bundle` before
/// `observer` sees it. An `Err` means the evidence could not be written.
pub async fn run_runbook(
    runbook: &Runbook,
    secrets: &SecretStore,
    bundle: &mut BundleWriter,
    observer: &mut dyn RunObserver,
    cancel: &Cancel,
    options: &RunOptions,
) -> io::Result<RunOutcome> {
    let clients = Clients::with_resolver(options.resolver);
    let blobs = bundle.blobs();
    let run_id = bundle.run_id().to_string();
    let runner = StepRunner {
        probe: &CheckProbe,
        clients: &clients,
        blobs: blobs.as_ref(),
        cancel,
        run_id: &run_id,
        owner: runbook.meta.owner.as_deref(),
        mutations: options.mutations.clone(),
        compact: false,
    };
    let mut journal = Journal {
        bundle,
        observer,
        notice: None,
    };
    drive_runbook(runbook, secrets, &runner, &mut journal, options).await
}

/// The run loop itself, for any probe and any journal: what [`run_runbook`]
/// does once the bundle is open (and what the engine's unit tests drive with
/// a scripted probe and an in-memory journal).
pub async fn drive_runbook<P: Probe>(
    runbook: &Runbook,
    secrets: &SecretStore,
    runner: &StepRunner<'_, P>,
    journal: &mut dyn Emit,
    options: &RunOptions,
) -> io::Result<RunOutcome> {
    let cancel = runner.cancel;
    let started = Instant::now();
    let selected = select_steps(runbook, &options.only);

    journal.emit(Event::RunStart {
        planned: None,
        steps: runbook.steps.iter().map(planned_step).collect(),
        on_escalate: match runbook.meta.on_escalate {
            OnEscalate::Continue => "continue".into(),
            OnEscalate::Halt => "halt".into(),
        },
        allow_mutations: options.mutations != Mutations::Forbidden,
        mutation_tags: match &options.mutations {
            Mutations::Tagged(tags) => tags.clone(),
            _ => Vec::new(),
        },
        only: options.only.clone(),
    })?;

    let mut scope = RunScope::new(&runbook.vars, secrets);
    let notifier = match &runbook.notify {
        Some(config) => Some(Notifier::new(config).map_err(io::Error::other)?),
        None => None,
    };
    let mut verdicts: HashMap<&str, StepVerdict> = HashMap::new();
    let mut halted_by: Option<&str> = None;
    let mut interrupted = false;
    // Steps passed earlier and not run again whose captured values this run
    // therefore lacks, with the earlier run's id.
    let mut without_captures: HashMap<&str, &str> = HashMap::new();
    let mut passed_earlier = 0;

    for step in &runbook.steps {
        // A signal between two steps stops the run before the next one starts.
        interrupted |= cancel.is_cancelled();
        let earlier = options.resume.as_ref().and_then(|r| r.earlier_pass(step));
        if let (Some(earlier), false) = (earlier, interrupted) {
            journal.emit(Event::StepEnd {
                step: step.id.clone(),
                verdict: StepVerdict::Pass,
                attempts: 0,
                duration_ms: 0.0,
                reason: Some(format!(
                    "passed earlier in run {} (its step.end, seq {}); not run again",
                    earlier.run_id, earlier.seq
                )),
                earlier: Some(earlier.clone()),
            })?;
            verdicts.insert(&step.id, StepVerdict::Pass);
            passed_earlier += 1;
            if !step.check.capture_names().is_empty() {
                without_captures.insert(&step.id, &earlier.run_id);
            }
            continue;
        }
        let not_run = if interrupted {
            Some((
                StepVerdict::Skipped,
                "not run: the run was interrupted".to_string(),
            ))
        } else if let Some(halt) = halted_by {
            Some((
                StepVerdict::Skipped,
                format!(
                    "not run: the run halted after `{halt}` escalated (on_escalate = \"halt\")"
                ),
            ))
        } else if !selected.contains(step.id.as_str()) {
            Some((StepVerdict::Skipped, "not selected by --only".to_string()))
        } else if let Some(reason) = options.mutations.refusal(step) {
            Some((StepVerdict::Skipped, reason))
        } else if let Some(verdict) = dependency_verdict(step, &verdicts) {
            Some(verdict)
        } else if let Some(reason) = captures_unavailable(step, &without_captures) {
            Some((StepVerdict::Blocked, reason))
        } else {
            step.when
                .unmet(&scope)
                .map(|why| (StepVerdict::Skipped, format!("not run: {why}")))
        };
        if let Some((verdict, reason)) = not_run {
            journal.emit(Event::StepEnd {
                step: step.id.clone(),
                verdict,
                attempts: 0,
                duration_ms: 0.0,
                reason: Some(reason),
                earlier: None,
            })?;
            verdicts.insert(&step.id, verdict);
            continue;
        }

        let result = match &*step.check {
            CheckSpec::Confirm(confirm) => {
                ask_person(step, confirm, &scope, runner, journal, options).await?
            }
            _ => runner.run_step(step, &scope, journal).await?,
        };
        for (name, value) in result.captures {
            scope.record_capture(&step.id, &name, value);
        }
        let verdict = result.verdict;
        verdicts.insert(&step.id, verdict);
        if let Some(notice) = journal.take_notice() {
            // After the step's own records: a notification never changes
            // its verdict, and a dead receiver costs bounded time.
            if let Some(notifier) = &notifier {
                notifier
                    .deliver(&Message::escalation(&notice), &scope, journal, cancel)
                    .await?;
                // A signal that cut a delivery short interrupts the run, even
                // after its last step.
                interrupted |= cancel.is_cancelled();
            }
        }
        match verdict {
            StepVerdict::Interrupted => interrupted = true,
            StepVerdict::Escalated if runbook.meta.on_escalate == OnEscalate::Halt => {
                halted_by = Some(&step.id)
            }
            _ => {}
        }
    }

    let mut counts = BTreeMap::new();
    for verdict in verdicts.values() {
        *counts.entry(verdict.as_str().to_string()).or_insert(0) += 1;
    }
    let verdict = if interrupted {
        RunVerdict::Interrupted
    } else if halted_by.is_some() {
        RunVerdict::Halted
    } else if verdicts.values().any(|v| *v == StepVerdict::Escalated) {
        RunVerdict::Escalated
    } else if verdicts.values().any(|v| *v == StepVerdict::Unconfirmed) {
        // Steps blocked behind an unconfirmed one wait for the same person.
        RunVerdict::Unconfirmed
    } else if verdicts.values().any(|v| *v == StepVerdict::Blocked) {
        RunVerdict::Escalated
    } else {
        RunVerdict::Pass
    };
    journal.emit(Event::RunEnd {
        verdict,
        counts: counts.clone(),
        duration_ms: millis(started.elapsed()),
        reason: None,
    })?;
    Ok(RunOutcome {
        verdict,
        counts,
        passed_earlier,
    })
}

/// Where the engine sends events: the journal first, then observers.
pub trait Emit {
    /// Records `event` and returns its journal seq.
    fn emit(&mut self, event: Event) -> io::Result<u64>;

    /// The notice of the last escalation recorded, built from its redacted
    /// record, once (`None` for a journal that keeps no bundle).
    fn take_notice(&mut self) -> Option<Notice> {
        None
    }
}

/// Appends to the journal, then tells the observer.
struct Journal<'a> {
    bundle: &'a mut BundleWriter,
    observer: &'a mut dyn RunObserver,
    /// The last escalation, for `[notify]`.
    notice: Option<Notice>,
}

impl Emit for Journal<'_> {
    fn emit(&mut self, event: Event) -> io::Result<u64> {
        let (seq, event) = self.bundle.record(event)?;
        if let Some(notice) = Notice::from_record(&event, self.bundle) {
            self.notice = Some(notice);
        }
        self.observer.observe(seq, &event);
        Ok(seq)
    }

    fn take_notice(&mut self) -> Option<Notice> {
        self.notice.take()
    }
}

/// A `confirm` step: one "attempt" that asks the run's confirmer (off the
/// async threads, since a person may take minutes, and with no attempt
/// timeout) and records who answered, how and when. Nobody to ask ends the
/// step as unconfirmed at once: not an escalation, nobody is paged.
async fn ask_person<P: Probe>(
    step: &Step,
    confirm: &ConfirmCheck,
    scope: &dyn Scope,
    runner: &StepRunner<'_, P>,
    journal: &mut dyn Emit,
    options: &RunOptions,
) -> io::Result<StepResult> {
    let started = Instant::now();
    let prompt = match confirm.prompt.render(scope) {
        Ok(prompt) => prompt,
        Err(err) => err.to_string(),
    };
    // A person has no attempt timeout.
    journal.emit(step_start(step, scope, 1, 0))?;
    journal.emit(Event::AttemptStart {
        step: step.id.clone(),
        attempt: 1,
        of: 1,
    })?;
    let answer = match options.confirmer.clone() {
        None => Confirmation::Unanswered,
        Some(confirmer) => {
            let (id, text) = (step.id.clone(), prompt.clone());
            let asking = tokio::task::spawn_blocking(move || confirmer.confirm(&id, &text));
            tokio::select! {
                answer = asking => answer.unwrap_or(Confirmation::Unanswered),
                _ = runner.cancel.cancelled() => {
                    let duration_ms = millis(started.elapsed());
                    journal.emit(Event::AttemptEnd {
                        step: step.id.clone(),
                        attempt: 1,
                        of: 1,
                        verdict: AttemptVerdict::Interrupted,
                        duration_ms,
                        reason: Some("interrupted while waiting for a confirmation".into()),
                        failure: Some(FailureRecord { class: FailureClass::Interrupted }),
                        no_retry: None,
                        detail: Default::default(),
                        blobs: Vec::new(),
                    })?;
                    return finish_person(step, journal, StepVerdict::Interrupted, Some("interrupted while waiting for a confirmation".into()), started);
                }
            }
        }
    };
    let mut detail = serde_json::Map::new();
    detail.insert("prompt".into(), prompt.into());
    detail.insert(
        "answered_at".into(),
        format!("{:.3}", jiff::Timestamp::now()).into(),
    );
    let (verdict, reason) = match &answer {
        Confirmation::Confirmed { by, via, note } => {
            detail.insert("confirmed_by".into(), by.clone().into());
            detail.insert("via".into(), (*via).into());
            if let Some(note) = note {
                detail.insert("note".into(), note.clone().into());
            }
            (StepVerdict::Pass, None)
        }
        Confirmation::Declined { by } => {
            detail.insert("declined_by".into(), by.clone().into());
            detail.insert("via".into(), "terminal".into());
            (
                StepVerdict::Unconfirmed,
                Some(format!("declined by {by} on the terminal")),
            )
        }
        Confirmation::Unanswered => (
            StepVerdict::Unconfirmed,
            Some(format!(
                "not confirmed: nobody was asked (not a terminal); pass --confirm {} once it is done",
                step.id
            )),
        ),
    };
    journal.emit(Event::AttemptEnd {
        step: step.id.clone(),
        attempt: 1,
        of: 1,
        verdict: if verdict == StepVerdict::Pass {
            AttemptVerdict::Pass
        } else {
            AttemptVerdict::Fail
        },
        duration_ms: millis(started.elapsed()),
        reason: reason.clone(),
        failure: None,
        no_retry: None,
        detail,
        blobs: Vec::new(),
    })?;
    finish_person(step, journal, verdict, reason, started)
}

/// A step's `step.start`, with its target as written and as checked: vars,
/// env and captures filled in, secrets left as `{{secret:NAME}}` (the
/// journal's redaction is a second line of defence, not the first).
fn step_start(step: &Step, scope: &dyn Scope, max_attempts: u32, timeout_ms: u64) -> Event {
    let target = step.check.target();
    // Text without a placeholder renders as itself: no parse needed (most
    // of a sweep's targets are plain URLs).
    let rendered = if target.contains("{{") {
        crate::core::template::Template::parse(&target)
            .ok()
            .map(|t| t.render_masked(scope))
    } else {
        Some(target.clone())
    };
    Event::StepStart {
        step: step.id.clone(),
        kind: step.check.kind().to_string(),
        title: step.title.clone(),
        target,
        rendered,
        max_attempts,
        timeout_ms,
    }
}

fn finish_person(
    step: &Step,
    journal: &mut dyn Emit,
    verdict: StepVerdict,
    reason: Option<String>,
    started: Instant,
) -> io::Result<StepResult> {
    let duration_ms = millis(started.elapsed());
    journal.emit(Event::StepEnd {
        step: step.id.clone(),
        verdict,
        attempts: 1,
        duration_ms,
        reason: reason.clone(),
        earlier: None,
    })?;
    Ok(StepResult {
        verdict,
        captures: Vec::new(),
        attempt_durations_ms: vec![duration_ms],
        reason,
    })
}

fn planned_step(step: &Step) -> PlannedStep {
    let confirm = matches!(*step.check, CheckSpec::Confirm(_));
    PlannedStep {
        id: step.id.clone(),
        kind: step.check.kind().to_string(),
        max_attempts: if confirm {
            1
        } else {
            step.policy.max_attempts()
        },
        timeout_ms: step.policy.timeout.as_millis() as u64,
        depends_on: step.depends_on.clone(),
        mutating: step.mutating,
        backoff: Some(step.policy.planned_backoff()),
        tags: step.tags.clone(),
    }
}

/// The steps `--only` selects, with everything they depend on; all steps when
/// no filter is given.
fn select_steps<'a>(runbook: &'a Runbook, only: &[String]) -> HashSet<&'a str> {
    if only.is_empty() {
        return runbook.steps.iter().map(|s| s.id.as_str()).collect();
    }
    let by_id: HashMap<&str, &Step> = runbook.steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut selected = HashSet::new();
    let mut pending: Vec<&str> = only.iter().map(String::as_str).collect();
    while let Some(id) = pending.pop() {
        if let Some(step) = by_id.get(id) {
            if selected.insert(step.id.as_str()) {
                pending.extend(step.depends_on.iter().map(String::as_str));
            }
        }
    }
    selected
}

/// Whether a step cannot run because of its dependencies: **blocked** when
/// one of them failed (escalated, blocked, interrupted, not run), **skipped**
/// when they only were skipped — a read-only run leaves the steps after a
/// mutating one unrun, which is not a failure of anything.
fn dependency_verdict(
    step: &Step,
    verdicts: &HashMap<&str, StepVerdict>,
) -> Option<(StepVerdict, String)> {
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    for dep in &step.depends_on {
        match verdicts.get(dep.as_str()) {
            Some(StepVerdict::Pass) => {}
            Some(StepVerdict::Skipped) => skipped.push(format!("`{dep}` (skipped)")),
            Some(verdict) => failed.push(format!("`{dep}` ({})", verdict.as_str())),
            None => failed.push(format!("`{dep}` (not run yet)")),
        }
    }
    if !failed.is_empty() {
        failed.extend(skipped);
        Some((
            StepVerdict::Blocked,
            format!("depends on {}", failed.join(", ")),
        ))
    } else if !skipped.is_empty() {
        Some((
            StepVerdict::Skipped,
            format!("not run: depends on {}", skipped.join(", ")),
        ))
    } else {
        None
    }
}

/// Why a step cannot run on resume: it uses values captured by a step that
/// passed in the earlier run and was not run again (a mutating one), and
/// captured values are never recorded in a bundle.
fn captures_unavailable(step: &Step, without_captures: &HashMap<&str, &str>) -> Option<String> {
    let missing: Vec<String> = step
        .uses_captures_of
        .iter()
        .filter_map(|source| {
            without_captures
                .get(source.as_str())
                .map(|run| format!("`{source}` (passed earlier in run {run})"))
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "uses values captured by {}, which is not run again on resume: captured values are not recorded in a bundle, so they are not available; run the runbook without --resume to capture them again",
        missing.join(", ")
    ))
}

/// Makes one attempt of a step: the check kinds in a real run, a scripted
/// stand-in in the engine's tests.
pub trait Probe {
    /// One attempt; a failing service is a failed observation, never a panic.
    fn probe(
        &self,
        step: &Step,
        ctx: &ProbeContext<'_>,
    ) -> impl std::future::Future<Output = Observation>;
}

/// The real probe: the step's check kind.
pub struct CheckProbe;

impl Probe for CheckProbe {
    async fn probe(&self, step: &Step, ctx: &ProbeContext<'_>) -> Observation {
        step.check.probe(ctx).await
    }
}

/// What running a step needs besides the step: shared by runs and sweeps.
pub struct StepRunner<'a, P: Probe = CheckProbe> {
    pub probe: &'a P,
    pub clients: &'a Clients,
    pub blobs: &'a dyn BlobSink,
    pub cancel: &'a Cancel,
    pub run_id: &'a str,
    /// Named in escalation records.
    pub owner: Option<&'a str>,
    /// Which steps may change things (the run's `--allow-mutations`; a sweep
    /// is read-only): sets each attempt's [`ProbeContext::read_only`].
    pub mutations: Mutations,
    /// Write a step that passes on its first attempt as one `step.pass`
    /// record instead of four (sweeps). Its `step.start` and
    /// `attempt.start` are then written only once the first attempt has
    /// ended (in the long form when it did not pass), so a crash during a
    /// first attempt leaves no trace of that step; a runbook run keeps the
    /// long form, where a crash shows the step as started.
    pub compact: bool,
}

/// A finished step.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub verdict: StepVerdict,
    /// Values the passing attempt captured.
    pub captures: Vec<(String, String)>,
    /// Duration of each attempt, in order.
    pub attempt_durations_ms: Vec<f64>,
    /// Why the step did not pass (the last attempt's reason when escalated).
    pub reason: Option<String>,
}

impl<P: Probe> StepRunner<'_, P> {
    /// Runs one step's attempts under its policy, writing every event from
    /// `step.start` to `step.end` (with the escalation record when the last
    /// attempt fails).
    pub async fn run_step(
        &self,
        step: &Step,
        scope: &dyn Scope,
        journal: &mut dyn Emit,
    ) -> io::Result<StepResult> {
        let cancel = self.cancel;
        let policy = step.policy;
        let max_attempts = policy.max_attempts();
        let started = Instant::now();
        let opening = step_start(step, scope, max_attempts, policy.timeout.as_millis() as u64);
        // Compact: held back until the first attempt says which form it takes.
        let mut deferred = if self.compact {
            Some(opening)
        } else {
            journal.emit(opening)?;
            None
        };

        let mut delays = backoff_schedule(&policy).into_iter();
        let mut history: Vec<AttemptSummary> = Vec::new();
        let mut evidence: Vec<String> = Vec::new();
        let mut retries_skipped: Option<String> = None;
        let mut durations = Vec::new();
        let finish = |journal: &mut dyn Emit,
                      verdict,
                      attempts,
                      reason: Option<String>,
                      captures,
                      durations: Vec<f64>| {
            // A kept receiver frees its port before the next step.
            self.clients.end_step(&step.id);
            journal.emit(Event::StepEnd {
                step: step.id.clone(),
                verdict,
                attempts,
                duration_ms: millis(started.elapsed()),
                reason: reason.clone(),
                earlier: None,
            })?;
            Ok(StepResult {
                verdict,
                captures,
                attempt_durations_ms: durations,
                reason,
            })
        };

        for attempt in 1..=max_attempts {
            let attempt_start = || Event::AttemptStart {
                step: step.id.clone(),
                attempt,
                of: max_attempts,
            };
            if deferred.is_none() {
                journal.emit(attempt_start())?;
            }
            let attempt_started = Instant::now();
            let (verdict, observation) = self.attempt_once(step, scope, attempt).await;
            let duration_ms = millis(attempt_started.elapsed());
            durations.push(duration_ms);
            if let Some(opening) = deferred.take() {
                if verdict == AttemptVerdict::Pass && observation.probes.is_empty() {
                    return self.finish_compact(step, journal, opening, observation, durations);
                }
                journal.emit(opening)?;
                journal.emit(attempt_start())?;
            }

            let failure = match &observation.outcome {
                Outcome::Pass => None,
                Outcome::Fail(failure) => Some(failure.clone()),
            };
            let reason = failure.as_ref().map(|f| f.message.clone());
            let last_allowed = attempt == max_attempts;
            let no_retry = match (&failure, verdict) {
                (Some(failure), AttemptVerdict::Fail | AttemptVerdict::Timeout)
                    if !last_allowed =>
                {
                    no_retry_reason(step.check.kind(), failure)
                }
                _ => None,
            };
            for probe in observation.probes {
                evidence.extend(probe.blobs.iter().map(|b| b.digest.clone()));
                journal.emit(Event::Probe {
                    step: step.id.clone(),
                    attempt,
                    probe: probe.name,
                    detail: probe.detail,
                    blobs: probe.blobs,
                })?;
            }
            evidence.extend(observation.blobs.iter().map(|b| b.digest.clone()));
            let seq = journal.emit(Event::AttemptEnd {
                step: step.id.clone(),
                attempt,
                of: max_attempts,
                verdict,
                duration_ms,
                reason: reason.clone(),
                failure: failure.as_ref().map(|f| FailureRecord { class: f.class }),
                no_retry: no_retry.clone(),
                detail: observation.detail,
                blobs: observation.blobs,
            })?;

            match verdict {
                AttemptVerdict::Pass => {
                    return finish(
                        journal,
                        StepVerdict::Pass,
                        attempt,
                        None,
                        observation.captures,
                        durations,
                    );
                }
                AttemptVerdict::Interrupted => {
                    return finish(
                        journal,
                        StepVerdict::Interrupted,
                        attempt,
                        Some("interrupted during attempt".into()),
                        Vec::new(),
                        durations,
                    );
                }
                AttemptVerdict::Fail | AttemptVerdict::Timeout => {}
            }

            history.push(AttemptSummary {
                attempt,
                verdict,
                reason: reason.unwrap_or_default(),
                class: failure.map(|f| f.class),
                seq,
            });
            if let Some(why) = no_retry {
                retries_skipped = Some(why);
                break;
            }
            if last_allowed {
                break;
            }
            let delay = delays.next().unwrap_or(Duration::ZERO);
            journal.emit(Event::Backoff {
                step: step.id.clone(),
                after_attempt: attempt,
                delay_ms: delay.as_millis() as u64,
            })?;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => {
                    return finish(
                        journal,
                        StepVerdict::Interrupted,
                        attempt,
                        Some("interrupted while waiting to retry".into()),
                        Vec::new(),
                        durations,
                    );
                }
            }
        }

        let attempts = history.len() as u32;
        let last_reason = history.last().map(|a| a.reason.clone()).unwrap_or_default();
        // Boxed: only an escalated step collects, and its future would
        // otherwise double the size of every step's (moved by value at
        // each level of a sweep's nesting).
        let collected = Box::pin(self.collect(step, scope)).await;
        evidence.extend(
            collected
                .iter()
                .flat_map(|c| c.blobs.iter().map(|b| b.digest.clone())),
        );
        journal.emit(Event::Escalation(Escalation {
            step: step.id.clone(),
            owner: step
                .owner
                .clone()
                .or_else(|| self.owner.map(str::to_string)),
            attempts: history,
            last_reason: last_reason.clone(),
            hint: step.hint.clone(),
            retries_skipped,
            evidence,
            collected,
        }))?;
        finish(
            journal,
            StepVerdict::Escalated,
            attempts,
            Some(last_reason),
            Vec::new(),
            durations,
        )
    }

    /// Writes a first-attempt pass as one `step.pass` record.
    fn finish_compact(
        &self,
        step: &Step,
        journal: &mut dyn Emit,
        opening: Event,
        observation: Observation,
        durations: Vec<f64>,
    ) -> io::Result<StepResult> {
        let Event::StepStart {
            step: id,
            kind,
            title,
            target,
            rendered,
            max_attempts,
            timeout_ms,
        } = opening
        else {
            unreachable!("the opening record is always a step.start")
        };
        self.clients.end_step(&step.id);
        // `rendered` only where it says more than `target` (fewer bytes to
        // write, redact and hash for a sweep's untemplated URLs).
        let rendered = rendered.filter(|r| *r != target);
        journal.emit(Event::StepPass {
            step: id,
            kind,
            title,
            target,
            rendered,
            max_attempts,
            timeout_ms,
            duration_ms: durations.first().copied().unwrap_or_default(),
            detail: observation.detail,
            blobs: observation.blobs,
        })?;
        Ok(StepResult {
            verdict: StepVerdict::Pass,
            captures: observation.captures,
            attempt_durations_ms: durations,
            reason: None,
        })
    }

    /// Runs the step's `collect` commands, each under the step's timeout, and
    /// names their output by role. A command that fails is recorded with why;
    /// it never changes the step's verdict.
    async fn collect(&self, step: &Step, scope: &dyn Scope) -> Vec<Collected> {
        let mut collected = Vec::with_capacity(step.collect.len());
        for command in &step.collect {
            let ctx = self.context(step, scope, 0);
            let written = command.target();
            let run = tokio::time::timeout(step.policy.timeout, command.run(&ctx));
            let (exit_code, error, mut blobs) = tokio::select! {
                _ = self.cancel.cancelled() => (None, Some("interrupted".to_string()), Vec::new()),
                result = run => match result {
                    Ok(observation) => (
                        observation.detail.get("exit_code").and_then(|c| c.as_i64()).map(|c| c as i32),
                        match &observation.outcome {
                            Outcome::Fail(failure) if !observation.detail.contains_key("exit_code") => {
                                Some(failure.message.clone())
                            }
                            _ => None,
                        },
                        observation.blobs,
                    ),
                    Err(_) => (None, Some(format!(
                        "timed out after {}",
                        crate::core::duration::format_duration(step.policy.timeout)
                    )), Vec::new()),
                },
            };
            for blob in &mut blobs {
                blob.role = format!("collected: {written}: {}", blob.role);
            }
            collected.push(Collected {
                command: written,
                exit_code,
                error,
                blobs,
            });
        }
        collected
    }

    /// What a probe of `step` sees in attempt `attempt` (0: `collect`).
    fn context<'s>(
        &'s self,
        step: &'s Step,
        scope: &'s dyn Scope,
        attempt: u32,
    ) -> ProbeContext<'s> {
        ProbeContext {
            scope,
            blobs: self.blobs,
            clients: self.clients,
            timeout: step.policy.timeout,
            run_id: self.run_id,
            attempt,
            step: &step.id,
            read_only: !self.mutations.permits(step),
            base_dir: &step.base_dir,
        }
    }

    /// One attempt under the step's timeout and the run's cancellation.
    async fn attempt_once(
        &self,
        step: &Step,
        scope: &dyn Scope,
        attempt: u32,
    ) -> (AttemptVerdict, Observation) {
        let ctx = self.context(step, scope, attempt);
        // Small: the check's own future is boxed by its kind
        // ([`crate::check::CheckSpec::probe`]).
        let probe = self.probe.probe(step, &ctx);
        // Dropping the probe future on timeout or cancellation is what stops it:
        // sockets close, and the command check kills its process group on drop.
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => (
                AttemptVerdict::Interrupted,
                Observation::fail(FailureClass::Interrupted, "interrupted by signal"),
            ),
            result = tokio::time::timeout(step.policy.timeout, probe) => match result {
                Ok(observation) if observation.passed() => (AttemptVerdict::Pass, observation),
                Ok(observation) => (AttemptVerdict::Fail, observation),
                Err(_) => (
                    AttemptVerdict::Timeout,
                    Observation::fail(FailureClass::Timeout, format!(
                        "timed out after {}",
                        crate::core::duration::format_duration(step.policy.timeout)
                    )),
                ),
            },
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
