//! Replaying the journal per step id: every started attempt and step ended,
//! attempts within policy, verdicts consistent with the last attempt, an
//! escalation record exactly where a step escalated. Sweeps interleave the
//! records of different steps, so nothing here assumes steps run in order.

use super::*;

/// Per-step state while replaying the journal.
#[derive(Default)]
struct StepState {
    /// `max_attempts` announced in `run.start`.
    planned: Option<u32>,
    /// The backoff policy announced in `run.start` (absent in old bundles).
    backoff: Option<PlannedBackoff>,
    /// Seq of `step.start`.
    started: Option<u64>,
    /// `max_attempts` from `step.start`.
    max_attempts: Option<u32>,
    /// (attempt, line, seq) of the attempt in flight.
    open_attempt: Option<(u32, u64, u64)>,
    /// Number of the last started attempt.
    last_attempt: u32,
    last_verdict: Option<AttemptVerdict>,
    /// attempt -> seq of its `attempt.end`.
    attempt_ends: BTreeMap<u32, u64>,
    escalation: Option<u64>,
    ended: Option<StepVerdict>,
    /// The step passed in the run this one resumed, and did not run here:
    /// its captured values are not available to its dependents.
    passed_earlier: bool,
}

impl Verifier {
    /// Replays the journal per step id (sweeps interleave steps). Returns the
    /// run.end verdict and counts, if any.
    pub(super) fn check_semantics(
        &mut self,
        records: &[(u64, Record)],
        header: Option<&Header>,
        sealed: bool,
    ) -> Option<(RunVerdict, BTreeMap<String, u32>)> {
        let mut steps: BTreeMap<String, StepState> = BTreeMap::new();
        // step -> its depends_on, from run.start; (line, seq, step) of every
        // step.end that says blocked.
        let mut depends: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut blocked: Vec<(u64, u64, String)> = Vec::new();
        let mut planned: Vec<String> = Vec::new();
        let mut run_start_seen = false;
        // `run.start`'s total of steps announced there and in `plan` records.
        let mut announced_total: Option<u64> = None;
        let mut run_end: Option<(RunVerdict, BTreeMap<String, u32>)> = None;
        let mut verdict_counts: BTreeMap<&'static str, u32> = BTreeMap::new();
        let mut escalations = 0u32;
        let mut attempts_total = 0u32;
        let mut passed_earlier = 0u32;

        for (line, record) in records {
            let (line, seq) = (*line, record.seq);
            let at = Some(seq);
            if run_end.is_some() {
                self.journal_problem(
                    STEPS,
                    line,
                    at,
                    format!("{} after run.end", record.event.type_name()),
                );
            }
            // A sweep's change notification names a check (`ID`, its samples
            // are steps `ID#k`) or a digest (`*`): checked on its own below.
            let names_a_check = matches!(
                record.event,
                Event::Notify {
                    change: Some(_),
                    ..
                }
            );
            if let Some(step) = record.event.step().filter(|_| !names_a_check) {
                if run_start_seen && steps.get(step).is_none_or(|s| s.planned.is_none()) {
                    self.journal_problem(
                        STEPS,
                        line,
                        at,
                        format!("step {step:?} was not announced in run.start or a plan record before it"),
                    );
                }
            }
            match &record.event {
                Event::RunStart {
                    steps: plan,
                    planned: total,
                    ..
                } => {
                    if run_start_seen {
                        self.journal_problem(STEPS, line, at, "second run.start");
                    } else if seq != 0 {
                        self.journal_problem(STEPS, line, at, "run.start is not the first record");
                    }
                    run_start_seen = true;
                    announced_total = *total;
                    for p in plan {
                        if let Some(issue) = announce(&mut steps, p) {
                            self.journal_problem(STEPS, line, at, issue);
                        }
                        planned.push(p.id.clone());
                        depends.insert(p.id.clone(), p.depends_on.clone());
                    }
                }
                Event::Plan { steps: plan } => {
                    if !run_start_seen || announced_total.is_none() {
                        self.journal_problem(
                            STEPS,
                            line,
                            at,
                            "plan record without a run.start that announces a total",
                        );
                    }
                    for p in plan {
                        if let Some(issue) = announce(&mut steps, p) {
                            self.journal_problem(STEPS, line, at, issue);
                        }
                        planned.push(p.id.clone());
                        depends.insert(p.id.clone(), p.depends_on.clone());
                    }
                }
                Event::StepStart {
                    step, max_attempts, ..
                } => {
                    let state = steps.entry(step.clone()).or_default();
                    if state.started.is_some() {
                        self.journal_problem(
                            STEPS,
                            line,
                            at,
                            format!("step {step:?} started twice"),
                        );
                    } else if state.ended.is_some() {
                        self.journal_problem(
                            STEPS,
                            line,
                            at,
                            format!("step {step:?} started after its step.end"),
                        );
                    }
                    if let Some(planned) = state.planned {
                        if planned != *max_attempts {
                            self.journal_problem(
                                ATTEMPTS,
                                line,
                                at,
                                format!("step {step:?}: max_attempts {max_attempts} differs from run.start's {planned}"),
                            );
                        }
                    }
                    state.started = Some(seq);
                    state.max_attempts = Some(*max_attempts);
                }
                Event::StepPass {
                    step, max_attempts, ..
                } => {
                    // step.start + attempt 1 + a passing attempt.end +
                    // step.end, held to the same rules as the long form.
                    attempts_total += 1;
                    *verdict_counts
                        .entry(StepVerdict::Pass.as_str())
                        .or_default() += 1;
                    let state = steps.entry(step.clone()).or_default();
                    let mut issues = Vec::new();
                    if state.started.is_some() || state.last_attempt > 0 {
                        issues.push("step.pass for a step that already started".to_string());
                    } else if state.ended.is_some() {
                        issues.push("step.pass after its step.end".to_string());
                    }
                    if state.escalation.is_some() {
                        issues.push("step.pass for a step with an escalation record".to_string());
                    }
                    if let Some(planned) = state.planned {
                        if planned != *max_attempts {
                            issues.push(format!(
                                "max_attempts {max_attempts} differs from run.start's {planned}"
                            ));
                        }
                    }
                    issues.extend(policy_issues(state, 1, *max_attempts));
                    for issue in issues {
                        self.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                    }
                    state.started = Some(seq);
                    state.max_attempts = Some(*max_attempts);
                    state.last_attempt = 1;
                    state.last_verdict = Some(AttemptVerdict::Pass);
                    state.attempt_ends.insert(1, seq);
                    state.ended = Some(StepVerdict::Pass);
                }
                Event::AttemptStart { step, attempt, of } => {
                    attempts_total += 1;
                    let state = steps.entry(step.clone()).or_default();
                    let mut issues = Vec::new();
                    if state.started.is_none() {
                        issues.push("attempt.start before step.start".to_string());
                    }
                    if state.ended.is_some() {
                        issues.push("attempt.start after step.end".to_string());
                    }
                    if let Some((open, _, open_seq)) = state.open_attempt {
                        issues.push(format!("attempt {attempt} started while attempt {open} (seq {open_seq}) has not ended"));
                    }
                    if *attempt != state.last_attempt + 1 {
                        issues.push(format!(
                            "attempt {attempt} where {} was expected",
                            state.last_attempt + 1
                        ));
                    }
                    issues.extend(policy_issues(state, *attempt, *of));
                    for issue in issues {
                        self.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                    }
                    state.open_attempt = Some((*attempt, line, seq));
                    state.last_attempt = *attempt;
                }
                Event::AttemptEnd {
                    step,
                    attempt,
                    of,
                    verdict,
                    ..
                } => {
                    let state = steps.entry(step.clone()).or_default();
                    let mut issues = Vec::new();
                    match state.open_attempt {
                        Some((open, _, _)) if open == *attempt => {}
                        Some((open, _, _)) => {
                            issues.push(format!("attempt.end for {attempt} while {open} is open"))
                        }
                        None => {
                            issues.push(format!("attempt.end for {attempt} without attempt.start"))
                        }
                    }
                    issues.extend(policy_issues(state, *attempt, *of));
                    for issue in issues {
                        self.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                    }
                    state.open_attempt = None;
                    state.last_verdict = Some(*verdict);
                    state.attempt_ends.insert(*attempt, seq);
                }
                Event::Probe { step, attempt, .. } => {
                    let state = steps.entry(step.clone()).or_default();
                    let issue = match state.open_attempt {
                        Some((open, _, _)) if open == *attempt => None,
                        Some((open, _, _)) => {
                            Some(format!("probe for attempt {attempt} while {open} is open"))
                        }
                        None => Some(format!("probe for attempt {attempt} outside an attempt")),
                    };
                    if let Some(issue) = issue {
                        self.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                    }
                }
                Event::Backoff {
                    step,
                    after_attempt,
                    delay_ms,
                } => {
                    let state = steps.entry(step.clone()).or_default();
                    let issue = if state.started.is_none() || state.ended.is_some() {
                        Some("backoff outside the step".to_string())
                    } else if state.open_attempt.is_some() {
                        Some("backoff while an attempt is open".to_string())
                    } else if *after_attempt != state.last_attempt {
                        Some(format!(
                            "backoff after attempt {after_attempt}, but the last attempt was {}",
                            state.last_attempt
                        ))
                    } else if state.last_verdict == Some(AttemptVerdict::Pass) {
                        Some("backoff after a passing attempt".to_string())
                    } else {
                        state
                            .backoff
                            .and_then(|policy| backoff_issue(&policy, *delay_ms))
                    };
                    if let Some(issue) = issue {
                        self.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                    }
                }
                Event::Escalation(e) => {
                    escalations += 1;
                    let state = steps.entry(e.step.clone()).or_default();
                    let mut issues = Vec::new();
                    if state.started.is_none() {
                        issues.push("escalation for a step that never started".to_string());
                    }
                    if state.ended.is_some() {
                        issues.push("escalation after step.end".to_string());
                    }
                    if state.escalation.is_some() {
                        issues.push("second escalation".to_string());
                    }
                    if state.open_attempt.is_some() {
                        issues.push("escalation while an attempt is open".to_string());
                    }
                    match state.last_verdict {
                        None => issues.push("escalation without any attempt".to_string()),
                        Some(AttemptVerdict::Pass) => {
                            issues.push("escalation although the last attempt passed".to_string())
                        }
                        Some(_) => {}
                    }
                    for a in &e.attempts {
                        if state.attempt_ends.get(&a.attempt) != Some(&a.seq) {
                            issues.push(format!(
                                "lists attempt {} at seq {}, which is not that attempt's end",
                                a.attempt, a.seq
                            ));
                        }
                    }
                    for issue in issues {
                        self.journal_problem(
                            ESCALATIONS,
                            line,
                            at,
                            format!("step {:?}: {issue}", e.step),
                        );
                    }
                    state.escalation = Some(seq);
                }
                Event::StepEnd {
                    step,
                    verdict,
                    attempts,
                    earlier,
                    ..
                } => {
                    *verdict_counts.entry(verdict.as_str()).or_default() += 1;
                    if *verdict == StepVerdict::Blocked {
                        blocked.push((line, seq, step.clone()));
                    }
                    let state = steps.entry(step.clone()).or_default();
                    state.passed_earlier = earlier.is_some();
                    let mut step_issues = Vec::new();
                    let mut escalation_issues = Vec::new();
                    if state.ended.is_some() {
                        step_issues.push("step ended twice".to_string());
                    }
                    if let Some((open, open_line, _)) = state.open_attempt {
                        self.journal_problem(
                            ATTEMPTS,
                            line,
                            at,
                            format!("step {step:?}: step.end while attempt {open} (line {open_line}) has no attempt.end"),
                        );
                    }
                    if *attempts != state.last_attempt {
                        step_issues.push(format!(
                            "step.end says {attempts} attempts, the journal has {}",
                            state.last_attempt
                        ));
                    }
                    let last_passed = state.last_verdict == Some(AttemptVerdict::Pass);
                    if let Some(earlier) = earlier {
                        passed_earlier += 1;
                        step_issues.extend(earlier_issues(
                            earlier,
                            *verdict,
                            state,
                            header.and_then(|h| h.resumed_from.as_ref()),
                        ));
                    }
                    match verdict {
                        // Passed in the resumed run: checked above.
                        StepVerdict::Pass if earlier.is_some() => {}
                        StepVerdict::Pass if !last_passed => step_issues
                            .push("verdict pass, but the last attempt did not pass".to_string()),
                        StepVerdict::Pass => {}
                        other if last_passed => step_issues.push(format!(
                            "the last attempt passed, but the verdict is {}",
                            other.as_str()
                        )),
                        StepVerdict::Escalated if state.last_verdict.is_none() => {
                            step_issues.push("escalated without any attempt".to_string())
                        }
                        StepVerdict::Blocked | StepVerdict::Skipped if state.last_attempt > 0 => {
                            step_issues.push(format!("{} step has attempts", verdict.as_str()))
                        }
                        _ => {}
                    }
                    if matches!(verdict, StepVerdict::Pass | StepVerdict::Escalated)
                        && state.started.is_none()
                        && earlier.is_none()
                    {
                        step_issues.push("step.end without step.start".to_string());
                    }
                    match (verdict, state.escalation) {
                        (StepVerdict::Escalated, None) => escalation_issues
                            .push("escalated, but there is no escalation record".to_string()),
                        (v, Some(eseq)) if *v != StepVerdict::Escalated => {
                            escalation_issues.push(format!(
                                "escalation record (seq {eseq}) but the verdict is {}",
                                v.as_str()
                            ))
                        }
                        _ => {}
                    }
                    for issue in step_issues {
                        self.journal_problem(STEPS, line, at, format!("step {step:?}: {issue}"));
                    }
                    for issue in escalation_issues {
                        self.journal_problem(
                            ESCALATIONS,
                            line,
                            at,
                            format!("step {step:?}: {issue}"),
                        );
                    }
                    state.ended = Some(*verdict);
                }
                Event::EvidenceError { missing } => {
                    // Not tampering: the run said itself what it lost.
                    for m in missing {
                        self.warnings.push(format!(
                            "evidence missing: {} ({}, {} bytes) could not be written: {} (record seq {seq})",
                            m.path, m.role, m.size, m.cause
                        ));
                    }
                }
                Event::Notify {
                    step,
                    change,
                    attempt,
                    of,
                    delivered,
                    status,
                    ..
                } => {
                    let mut issues = Vec::new();
                    let is_sweep = header.is_some_and(|h| h.kind == BundleKind::Sweep);
                    match change {
                        None if steps.get(step).is_none_or(|s| s.escalation.is_none()) => {
                            issues.push("notification for a step that did not escalate".to_string())
                        }
                        None => {}
                        Some(_) if !is_sweep => issues.push(
                            "a change-of-state notification outside a sweep bundle".to_string(),
                        ),
                        // A digest of a round's many changes names no one check.
                        Some(_) if step == "*" => {}
                        Some(change) => {
                            // The check's steps: `ID`, or `ID#1`… with `--samples`.
                            // (`#` sorts before every id character: they follow `ID`.)
                            let samples: Vec<&StepState> = steps
                                .range::<str, _>((
                                    std::ops::Bound::Included(step.as_str()),
                                    std::ops::Bound::Unbounded,
                                ))
                                .take_while(|(id, _)| check_of_step(id).0 == step)
                                .map(|(_, s)| s)
                                .collect();
                            let escalated = samples.iter().any(|s| s.escalation.is_some());
                            let passed = samples.iter().any(|s| s.ended == Some(StepVerdict::Pass));
                            match change {
                                StateChange::Failing if !escalated => issues.push(
                                    "\"failing\" notification for a check that did not escalate"
                                        .to_string(),
                                ),
                                StateChange::Recovered if escalated || !passed => issues.push(
                                    "\"recovered\" notification for a check that did not pass"
                                        .to_string(),
                                ),
                                _ => {}
                            }
                        }
                    }
                    if *attempt == 0 || attempt > of {
                        issues.push(format!("notify attempt {attempt} of {of}"));
                    }
                    if *delivered && !status.is_some_and(|s| (200..300).contains(&s)) {
                        issues.push(format!("notify marked delivered with status {status:?}"));
                    }
                    for issue in issues {
                        self.journal_problem(
                            ESCALATIONS,
                            line,
                            at,
                            format!("step {step:?}: {issue}"),
                        );
                    }
                }
                Event::Delivery { verdict, .. } => {
                    if verdict != "accepted" && verdict != "rejected" {
                        self.journal_problem(
                            STEPS,
                            line,
                            at,
                            format!("delivery verdict {verdict:?} is not accepted/rejected"),
                        );
                    }
                }
                Event::RunEnd {
                    verdict, counts, ..
                } => {
                    if run_end.is_some() {
                        self.journal_problem(STEPS, line, at, "second run.end");
                    } else {
                        // In a run, counts are step verdicts; compare those
                        // we know. A sweep counts per check (over samples,
                        // with its own verdicts), so there is nothing to match.
                        let known: Vec<&str> = [
                            StepVerdict::Pass,
                            StepVerdict::Escalated,
                            StepVerdict::Blocked,
                            StepVerdict::Skipped,
                            StepVerdict::Interrupted,
                            StepVerdict::Unconfirmed,
                        ]
                        .iter()
                        .map(|v| v.as_str())
                        .collect();
                        let is_run = header.is_none_or(|h| h.kind == BundleKind::Run);
                        if is_run && counts.keys().any(|k| known.contains(&k.as_str())) {
                            for name in known {
                                let claimed = counts.get(name).copied().unwrap_or(0);
                                let seen = verdict_counts.get(name).copied().unwrap_or(0);
                                if claimed != seen {
                                    self.journal_problem(
                                        STEPS,
                                        line,
                                        at,
                                        format!("run.end counts {claimed} {name} steps, the journal has {seen}"),
                                    );
                                }
                            }
                        }
                        run_end = Some((*verdict, counts.clone()));
                    }
                }
            }
        }

        // Obligations that hold once the run has ended.
        let ended = sealed || run_end.is_some();
        let last_line = records.last().map(|(l, _)| *l).unwrap_or(0);
        if ended {
            for (id, state) in &steps {
                if let Some((attempt, line, seq)) = state.open_attempt {
                    self.journal_problem(
                        ATTEMPTS,
                        line,
                        Some(seq),
                        format!("step {id:?}: attempt {attempt} never ended"),
                    );
                }
                if let (Some(seq), None) = (state.started, state.ended) {
                    self.journal_problem(
                        COMPLETE,
                        seq + 1,
                        Some(seq),
                        format!("step {id:?} started but has no step.end"),
                    );
                }
            }
        }
        if sealed {
            let interrupted = matches!(run_end, Some((RunVerdict::Interrupted, _)));
            let kind = header.map(|h| h.kind);
            if !run_start_seen && kind == Some(BundleKind::Run) {
                self.problem(
                    COMPLETE,
                    JOURNAL_FILE,
                    None,
                    "sealed run without a run.start record",
                );
            }
            if run_start_seen && run_end.is_none() {
                self.journal_problem(
                    COMPLETE,
                    last_line,
                    None,
                    "sealed bundle without a run.end record",
                );
            }
            if let Some(total) = announced_total {
                // An interrupted sweep stops announcing the checks it will
                // not reach; it may name fewer, never more.
                let short_but_interrupted = interrupted && (planned.len() as u64) < total;
                if total != planned.len() as u64 && !short_but_interrupted {
                    self.journal_problem(
                        COMPLETE,
                        last_line,
                        None,
                        format!(
                            "run.start announces {total} steps; run.start and the plan records name {}",
                            planned.len()
                        ),
                    );
                }
            }
            for id in &planned {
                let state = &steps[id];
                // An interrupted run stops before later steps start; those
                // need no step.end. Started ones were reported above.
                if state.ended.is_none() && state.started.is_none() && !interrupted {
                    self.journal_problem(
                        COMPLETE,
                        last_line,
                        None,
                        format!("planned step {id:?} has no step.end in a sealed bundle"),
                    );
                }
            }
        } else {
            self.skipped.insert(
                COMPLETE,
                "unsealed: later records may be missing".to_string(),
            );
        }

        // A step is blocked only by a dependency that did not pass: one
        // whose dependencies all passed here was made to look blocked. (A
        // dependency that passed in the resumed run may block: the values it
        // captured there are not available.)
        for (line, seq, step) in blocked {
            let Some(deps) = depends.get(&step) else {
                continue;
            };
            let passed = |d: &String| {
                steps
                    .get(d)
                    .is_some_and(|s| s.ended == Some(StepVerdict::Pass) && !s.passed_earlier)
            };
            if deps.iter().all(passed) {
                let why = if deps.is_empty() {
                    "it depends on no step".to_string()
                } else {
                    format!("every step it depends on passed ({})", deps.join(", "))
                };
                self.journal_problem(
                    STEPS,
                    line,
                    Some(seq),
                    format!("step {step:?} is recorded as blocked, but {why}"),
                );
            }
        }

        let counts: Vec<String> = verdict_counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let resumed = match header.and_then(|h| h.resumed_from.as_ref()) {
            Some(from) => format!(
                "; {passed_earlier} passed earlier in run {} (not run again)",
                from.run_id
            ),
            None => String::new(),
        };
        self.details.insert(
            STEPS,
            format!(
                "{} planned, {} ended ({}){resumed}",
                planned.len(),
                verdict_counts.values().sum::<u32>(),
                counts.join(", ")
            ),
        );
        self.details.insert(
            ATTEMPTS,
            format!(
                "{attempts_total} attempt{}, each started and ended within policy",
                if attempts_total == 1 { "" } else { "s" }
            ),
        );
        self.details.insert(
            ESCALATIONS,
            format!(
                "{escalations} escalation record{}, one per escalated step",
                if escalations == 1 { "" } else { "s" }
            ),
        );
        self.details.insert(
            COMPLETE,
            "every planned step ended; run.end present".to_string(),
        );
        run_end
    }
}

/// Records a step announced by `run.start` or a `plan` record; what is wrong
/// with announcing it there, if anything.
fn announce(
    steps: &mut BTreeMap<String, StepState>,
    p: &crate::core::record::PlannedStep,
) -> Option<String> {
    let state = steps.entry(p.id.clone()).or_default();
    let issue = if state.planned.is_some() {
        Some(format!("step {:?} planned twice", p.id))
    } else if state.started.is_some() || state.ended.is_some() {
        Some(format!("step {:?} planned after its first record", p.id))
    } else {
        None
    };
    state.planned = Some(p.max_attempts);
    state.backoff = p.backoff;
    issue
}

/// What is wrong with a `step.end` that says the step passed in the run this
/// one resumes: it must be a pass with no attempts in this run, and link to
/// the run (and seal head) the header says was resumed. The earlier bundle
/// itself is not at hand offline; the link names it for whoever has it.
fn earlier_issues(
    earlier: &EarlierPass,
    verdict: StepVerdict,
    state: &StepState,
    resumed_from: Option<&ResumedFrom>,
) -> Vec<String> {
    let mut issues = Vec::new();
    if verdict != StepVerdict::Pass {
        issues.push(format!(
            "links to an earlier pass, but the verdict is {}",
            verdict.as_str()
        ));
    }
    if state.started.is_some() || state.last_attempt > 0 {
        issues.push("passed earlier, but it ran again in this run".to_string());
    }
    match resumed_from {
        None => issues.push(format!(
            "passed earlier in run {}, but the header resumes no run",
            earlier.run_id
        )),
        Some(from) if from.run_id != earlier.run_id || from.seal_head != earlier.seal_head => {
            issues.push(format!(
                "passed earlier in run {} (head {}), but the header resumes run {} (head {})",
                earlier.run_id, earlier.seal_head, from.run_id, from.seal_head
            ))
        }
        Some(_) => {}
    }
    issues
}

/// `attempt <= of`, and `of` matches the policy announced for the step.
fn policy_issues(state: &StepState, attempt: u32, of: u32) -> Vec<String> {
    let mut issues = Vec::new();
    if attempt == 0 {
        issues.push("attempt 0 (attempts count from 1)".to_string());
    }
    if attempt > of {
        issues.push(format!("attempt {attempt} exceeds of={of}"));
    }
    if let Some(policy) = state.planned.or(state.max_attempts) {
        if of != policy {
            issues.push(format!(
                "of={of}, but the step's policy allows {policy} attempts"
            ));
        }
    }
    issues
}

/// What is wrong with a recorded delay under the step's policy, if anything:
/// no delay exceeds `max` (jitter included), and none is shorter than the
/// schedule allows (half of `initial` with jitter, `initial` without).
fn backoff_issue(policy: &PlannedBackoff, delay_ms: u64) -> Option<String> {
    let max = policy.max_ms.max(policy.initial_ms);
    let min = if policy.jitter {
        policy.initial_ms / 2
    } else {
        policy.initial_ms
    };
    if delay_ms > max {
        Some(format!(
            "backoff delay {delay_ms} ms exceeds the step's max of {max} ms"
        ))
    } else if delay_ms < min {
        Some(format!(
            "backoff delay {delay_ms} ms is shorter than the step's policy allows ({min} ms)"
        ))
    } else {
        None
    }
}
