//! The per-step model of a run, folded from its events. `run`, `show`, the
//! bundle's reports and `--json` all render this one model.

use std::collections::HashMap;

use serde::Serialize;

use crate::core::record::{AttemptVerdict, Escalation, Event, RunVerdict, StepVerdict};
use crate::core::FailureClass;
use crate::engine::RunObserver;
use crate::evidence::Redacted;

/// A run (or sweep) as reports see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub name: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<RunVerdict>,
    pub duration_ms: f64,
    /// Journal records seen.
    pub records: u64,
    pub steps: Vec<StepSummary>,
}

/// One step's story.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepSummary {
    pub id: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `None` while running, or in a bundle cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<StepVerdict>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub duration_ms: f64,
    /// The step's end reason, or the last failed attempt's (`class: message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The class of the failure that ended the step, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    /// Every attempt that did not pass.
    pub failed_attempts: Vec<FailedAttempt>,
    /// Latency of each attempt, in order (for percentiles).
    pub attempt_durations_ms: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Boxed: most steps have none, and a sweep holds one summary per check.
    pub escalation: Option<Box<Escalation>>,
    /// First and last journal seq of this step.
    pub seq_range: (u64, u64),
}

/// An attempt that failed, timed out or was interrupted.
#[derive(Debug, Clone, Serialize)]
pub struct FailedAttempt {
    pub attempt: u32,
    pub verdict: AttemptVerdict,
    /// The failure's class (absent in bundles written before classes existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    /// `class: message`, e.g. `timeout: timed out after 2s`.
    pub reason: String,
    pub duration_ms: f64,
    pub seq: u64,
}

impl RunSummary {
    /// The summary with one step per check. With `sweep --samples K` the
    /// journal holds steps `ID#1`…`ID#K`; JUnit wants one testcase per check,
    /// so the samples fold into the first one that did not pass (else the
    /// last), keeping every sample's failed attempts (JUnit `flakyFailure`s).
    /// Checks keep the order of their first sample (the plan's).
    pub fn per_check(self) -> RunSummary {
        // One sample per check: the journal's steps are the checks already.
        if !self.steps.iter().any(|s| s.id.contains('#')) {
            return self;
        }
        let mut order: Vec<&str> = Vec::new();
        let mut by_check: HashMap<&str, Vec<&StepSummary>> = HashMap::new();
        for step in &self.steps {
            let id = crate::core::record::check_of_step(&step.id).0;
            let samples = by_check.entry(id).or_default();
            if samples.is_empty() {
                order.push(id);
            }
            samples.push(step);
        }
        let steps = order
            .iter()
            .filter_map(|id| fold_samples(id, &by_check[id]))
            .collect();
        RunSummary { steps, ..self }
    }
}

/// One check's samples (`ID#1`…`ID#K`) as one step: the first sample that
/// did not pass (else the last), with the time of all and every sample's
/// failed attempts. `None` without samples.
pub fn fold_samples(id: &str, samples: &[&StepSummary]) -> Option<StepSummary> {
    let decisive = samples
        .iter()
        .find(|s| s.verdict != Some(StepVerdict::Pass))
        .or(samples.last())?;
    let mut step = (*decisive).clone();
    step.id = id.to_string();
    step.duration_ms = samples.iter().map(|s| s.duration_ms).sum();
    step.failed_attempts = samples
        .iter()
        .flat_map(|s| s.failed_attempts.iter().cloned())
        .collect();
    Some(step)
}

impl StepSummary {
    /// "pass", "pass after 2 retries", "escalated", … for tables.
    pub fn verdict_label(&self) -> String {
        match self.verdict {
            Some(StepVerdict::Pass) if self.attempts > 1 => {
                let retries = self.attempts - 1;
                format!(
                    "pass after {retries} {}",
                    if retries == 1 { "retry" } else { "retries" }
                )
            }
            Some(verdict) => verdict.as_str().to_string(),
            None => "unfinished".to_string(),
        }
    }
}

/// Folds events into a [`RunSummary`].
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    summary: RunSummary,
    /// Step id → position in `summary.steps`: a sweep sends tens of thousands
    /// of steps through here, four events each.
    index: HashMap<String, usize>,
}

impl SummaryBuilder {
    /// A builder for the run `run_id` of `name`.
    pub fn new(run_id: &str, name: &str, started_at: &str) -> Self {
        SummaryBuilder {
            summary: RunSummary {
                run_id: run_id.to_string(),
                name: name.to_string(),
                started_at: started_at.to_string(),
                ..RunSummary::default()
            },
            index: HashMap::new(),
        }
    }

    /// Makes room for `steps` steps up front. A sweep announces its plan
    /// without passing it through here, and a vector grown by doubling would
    /// hold up to twice the room tens of thousands of checks need.
    pub fn reserve_steps(&mut self, steps: usize) {
        self.summary.steps.reserve_exact(steps);
        self.index.reserve(steps);
    }

    /// The summary so far.
    pub fn summary(&self) -> &RunSummary {
        &self.summary
    }

    /// The finished summary.
    pub fn finish(self) -> RunSummary {
        self.summary
    }

    fn step_mut(&mut self, id: &str, seq: u64) -> &mut StepSummary {
        let steps = &mut self.summary.steps;
        let index = match self.index.get(id) {
            Some(&index) => index,
            None => {
                steps.push(StepSummary {
                    id: id.to_string(),
                    seq_range: (seq, seq),
                    ..StepSummary::default()
                });
                self.index.insert(id.to_string(), steps.len() - 1);
                steps.len() - 1
            }
        };
        let step = &mut steps[index];
        step.seq_range.1 = seq;
        step
    }
}

impl RunObserver for SummaryBuilder {
    fn observe(&mut self, seq: u64, event: &Redacted<Event>) {
        let event: &Event = event;
        self.summary.records = seq + 1;
        match event {
            Event::RunStart { steps, .. } | Event::Plan { steps } => {
                self.summary.steps.reserve_exact(steps.len());
                self.index.reserve(steps.len());
                for planned in steps {
                    let step = self.step_mut(&planned.id, seq);
                    step.kind = planned.kind.clone();
                    step.max_attempts = planned.max_attempts;
                }
            }
            Event::RunEnd {
                verdict,
                duration_ms,
                ..
            } => {
                self.summary.verdict = Some(*verdict);
                self.summary.duration_ms = *duration_ms;
            }
            event => {
                if let Some(id) = step_of(event) {
                    let step = self.step_mut(id, seq);
                    fold_step(step, seq, event);
                }
            }
        }
    }
}

/// The steps of a sweep that are still running, folded from their events:
/// [`StepFolds::take_check`] hands a check's summary out when it ends and
/// forgets it. Unlike [`SummaryBuilder`], which keeps every step of a run,
/// this holds only the checks in flight (at most the concurrency).
#[derive(Debug, Default)]
pub struct StepFolds {
    steps: foldhash::HashMap<String, StepSummary>,
}

impl StepFolds {
    /// Folds one event (events of no step are ignored).
    pub fn observe(&mut self, seq: u64, event: &Event) {
        let Some(id) = step_of(event) else {
            return;
        };
        let step = match self.steps.get_mut(id) {
            Some(step) => step,
            None => self.steps.entry(id.to_string()).or_insert(StepSummary {
                id: id.to_string(),
                seq_range: (seq, seq),
                ..StepSummary::default()
            }),
        };
        step.seq_range.1 = seq;
        fold_step(step, seq, event);
    }

    /// The finished check `id`, its `samples` steps (`ID#1`…`ID#K` when
    /// `samples` > 1) folded into one as [`RunSummary::per_check`] does;
    /// `None` when no event of it was seen.
    pub fn take_check(&mut self, id: &str, samples: u32) -> Option<StepSummary> {
        if samples <= 1 {
            return self.steps.remove(id);
        }
        let taken: Vec<StepSummary> = (1..=samples)
            .filter_map(|k| {
                self.steps
                    .remove(&crate::core::record::sample_step_id(id, k))
            })
            .collect();
        let refs: Vec<&StepSummary> = taken.iter().collect();
        fold_samples(id, &refs)
    }

    /// Steps in flight.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The step an event folds into ([`fold_step`]), if any.
pub fn step_of(event: &Event) -> Option<&str> {
    match event {
        Event::StepStart { step, .. }
        | Event::StepPass { step, .. }
        | Event::AttemptEnd { step, .. }
        | Event::StepEnd { step, .. } => Some(step),
        Event::Escalation(escalation) => Some(&escalation.step),
        _ => None,
    }
}

/// Folds one of a step's events (see [`step_of`]) into its summary `s`;
/// `seq` is the event's journal seq. The caller keeps `s.seq_range.1`.
pub fn fold_step(s: &mut StepSummary, seq: u64, event: &Event) {
    match event {
        Event::StepStart {
            kind,
            title,
            max_attempts,
            ..
        } => {
            s.seq_range.0 = seq;
            s.kind = kind.clone();
            s.title = title.clone();
            s.max_attempts = *max_attempts;
        }
        Event::StepPass {
            kind,
            title,
            max_attempts,
            duration_ms,
            ..
        } => {
            // The four records of a first-attempt pass, folded as one.
            s.seq_range.0 = seq;
            s.kind.clone_from(kind);
            s.title.clone_from(title);
            s.max_attempts = *max_attempts;
            s.attempts = 1;
            s.attempt_durations_ms.push(*duration_ms);
            s.verdict = Some(StepVerdict::Pass);
            s.duration_ms = *duration_ms;
            s.class = None;
            s.reason = None;
        }
        Event::AttemptEnd {
            attempt,
            verdict,
            duration_ms,
            reason,
            failure,
            ..
        } => {
            s.attempts = *attempt;
            s.attempt_durations_ms.push(*duration_ms);
            if *verdict != AttemptVerdict::Pass {
                let class = failure.map(|f| f.class);
                s.failed_attempts.push(FailedAttempt {
                    attempt: *attempt,
                    verdict: *verdict,
                    class,
                    reason: failure_text(class, reason.as_deref().unwrap_or_default()),
                    duration_ms: *duration_ms,
                    seq,
                });
            }
        }
        Event::Escalation(escalation) => {
            s.escalation = Some(Box::new(escalation.clone()));
        }
        Event::StepEnd {
            verdict,
            attempts,
            duration_ms,
            reason,
            ..
        } => {
            s.verdict = Some(*verdict);
            s.attempts = *attempts;
            s.duration_ms = *duration_ms;
            let last_failure = s
                .failed_attempts
                .last()
                .filter(|_| matches!(verdict, StepVerdict::Escalated | StepVerdict::Interrupted));
            s.class = last_failure.and_then(|a| a.class);
            // An escalated step ends for its last attempt's reason: show
            // it with its class; other endings (blocked, skipped) say why.
            s.reason = match (last_failure, *verdict) {
                (Some(attempt), StepVerdict::Escalated) => Some(attempt.reason.clone()),
                (last, _) => reason.clone().or_else(|| last.map(|a| a.reason.clone())),
            };
        }
        _ => {}
    }
}

/// `timeout: timed out after 2s`: a failure as people read it, class first.
pub fn failure_text(class: Option<FailureClass>, message: &str) -> String {
    match class {
        Some(class) => format!("{class}: {message}"),
        None => message.to_string(),
    }
}

/// What a webhook probe's receiver answered, from its `probe` record's
/// detail: `200 (3.1 ms)`, `401`, `no answer: …`, or why it was not sent.
pub fn probe_outcome(detail: &serde_json::Map<String, serde_json::Value>) -> String {
    let outcome = match (detail.get("status"), detail.get("error")) {
        _ if detail.contains_key("not_sent") => {
            "not sent (the run does not allow this step to change things)".to_string()
        }
        (Some(status), _) => status.to_string(),
        (None, Some(serde_json::Value::String(error))) => format!("no answer: {error}"),
        _ => "no answer".to_string(),
    };
    let latency = detail
        .get("latency_ms")
        .and_then(serde_json::Value::as_f64)
        .map(|ms| format!(" ({ms} ms)"))
        .unwrap_or_default();
    format!("{outcome}{latency}")
}
