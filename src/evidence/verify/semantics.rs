//! Replaying the journal per step id: every started attempt and step ended,
//! attempts within policy, verdicts consistent with the last attempt, an
//! escalation record exactly where a step escalated. Sweeps interleave the
//! records of different steps, so nothing here assumes steps run in order.
//!
//! The replay sees one record at a time ([`Replay::record`]) and keeps full
//! state only for steps that have not ended: a step that ends cleanly drops to
//! a 40-byte residue keyed by a hash of its id (what later records and the
//! end-of-journal checks still ask about it), so a million-check journal is
//! replayed in memory that does not grow with its records.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::*;

/// Per-step state while replaying the journal.
#[derive(Default)]
struct StepState {
    /// `max_attempts` announced in `run.start`.
    planned: Option<u32>,
    /// The backoff policy announced in `run.start` (absent in old bundles).
    backoff: Option<PlannedBackoff>,
    /// Its `depends_on`, when announced.
    depends: Option<Vec<String>>,
    /// Position of its first announcement among all announcements.
    announced_at: Option<u64>,
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
    /// Rebuilt from an ended step's residue by a record after its end (a
    /// damaged journal): its attempt ends and dependencies are gone.
    revived: bool,
}

/// What the checks ask about a step that may have ended.
#[derive(Clone, Copy)]
struct Brief {
    planned: Option<u32>,
    escalated: bool,
    ended: Option<StepVerdict>,
    passed_earlier: bool,
}

impl StepState {
    fn brief(&self) -> Brief {
        Brief {
            planned: self.planned,
            escalated: self.escalation.is_some(),
            ended: self.ended,
            passed_earlier: self.passed_earlier,
        }
    }
}

/// What is kept of a step after its `step.end`: everything a later record
/// of the same step (a damaged journal) or the end-of-journal checks read,
/// but not its attempts or dependencies. 24 bytes, 40 with its key; 16 in
/// all for a step whose residue is the common one (see [`EndedSteps`]).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Residue {
    planned: u32,
    max_attempts: u32,
    last_attempt: u32,
    escalation: u64,
    verdict: StepVerdict,
    last_verdict: Option<AttemptVerdict>,
    /// `HAS_*` bits.
    flags: u8,
}

const HAS_PLANNED: u8 = 1;
const HAS_MAX_ATTEMPTS: u8 = 2;
const HAS_STARTED: u8 = 4;
const HAS_ESCALATION: u8 = 8;
const PASSED_EARLIER: u8 = 16;

impl Residue {
    fn of(state: &StepState, verdict: StepVerdict) -> Residue {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        Residue {
            planned: state.planned.unwrap_or(0),
            max_attempts: state.max_attempts.unwrap_or(0),
            last_attempt: state.last_attempt,
            escalation: state.escalation.unwrap_or(0),
            verdict,
            last_verdict: state.last_verdict,
            flags: flag(state.planned.is_some(), HAS_PLANNED)
                | flag(state.max_attempts.is_some(), HAS_MAX_ATTEMPTS)
                | flag(state.started.is_some(), HAS_STARTED)
                | flag(state.escalation.is_some(), HAS_ESCALATION)
                | flag(state.passed_earlier, PASSED_EARLIER),
        }
    }

    fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    fn brief(&self) -> Brief {
        Brief {
            planned: self.has(HAS_PLANNED).then_some(self.planned),
            escalated: self.has(HAS_ESCALATION),
            ended: Some(self.verdict),
            passed_earlier: self.has(PASSED_EARLIER),
        }
    }

    /// The state a record after the step's end continues from.
    fn revive(&self) -> StepState {
        StepState {
            planned: self.has(HAS_PLANNED).then_some(self.planned),
            max_attempts: self.has(HAS_MAX_ATTEMPTS).then_some(self.max_attempts),
            // Its seq only locates a step that never ended.
            started: self.has(HAS_STARTED).then_some(0),
            last_attempt: self.last_attempt,
            last_verdict: self.last_verdict,
            escalation: self.has(HAS_ESCALATION).then_some(self.escalation),
            ended: Some(self.verdict),
            passed_earlier: self.has(PASSED_EARLIER),
            revived: true,
            ..StepState::default()
        }
    }
}

/// A 128-bit digest of a step id under keys chosen at random per process: a
/// journal cannot be crafted to make two of its ids collide.
type IdHash = [u64; 2];

/// Ended steps' residues. New ones go to a small hash map; every
/// `MERGE_EVERY` of them are merged into vectors sorted by hash. Most
/// steps of a large journal end alike (a sweep's checks that passed on their
/// first attempt under one policy): the first residue seen is kept once as
/// `common`, and a step whose residue equals it costs only its 16-byte key;
/// any other costs 40 bytes. A hash map of a million entries would round up
/// to two million buckets.
struct EndedSteps {
    keys: (std::hash::RandomState, std::hash::RandomState),
    recent: HashMap<IdHash, Residue>,
    sorted: Vec<(IdHash, Residue)>,
    common: Option<Residue>,
    /// Steps whose residue is `common`, sorted; never also in `sorted`.
    sorted_common: Vec<IdHash>,
}

// Small under test, so that the tests' journals go through many merges.
const MERGE_EVERY: usize = if cfg!(test) { 256 } else { 1 << 16 };

impl EndedSteps {
    fn new() -> Self {
        EndedSteps {
            keys: (std::hash::RandomState::new(), std::hash::RandomState::new()),
            recent: HashMap::new(),
            sorted: Vec::new(),
            common: None,
            sorted_common: Vec::new(),
        }
    }

    fn hash(&self, id: &str) -> IdHash {
        [self.keys.0.hash_one(id), self.keys.1.hash_one(id)]
    }

    fn get(&self, id: &str) -> Option<&Residue> {
        self.get_hashed(&self.hash(id))
    }

    fn get_hashed(&self, key: &IdHash) -> Option<&Residue> {
        self.recent
            .get(key)
            .or_else(|| {
                self.sorted
                    .binary_search_by(|(k, _)| k.cmp(key))
                    .ok()
                    .map(|i| &self.sorted[i].1)
            })
            .or_else(|| {
                self.sorted_common
                    .binary_search(key)
                    .ok()
                    .and(self.common.as_ref())
            })
    }

    fn insert(&mut self, id: &str, residue: Residue) {
        let key = self.hash(id);
        self.recent.insert(key, residue);
        if self.recent.len() >= MERGE_EVERY {
            self.merge();
        }
    }

    /// Moves `recent` into the sorted vectors, in place: no second copy of
    /// either.
    fn merge(&mut self) {
        let mut batch: Vec<(IdHash, Residue)> = Vec::new();
        let mut batch_common: Vec<IdHash> = Vec::new();
        if self.common.is_none() {
            self.common = most_frequent(self.recent.values());
        }
        for (key, residue) in std::mem::take(&mut self.recent) {
            let common = *self.common.get_or_insert(residue);
            // A step that ended again (a damaged journal): its new residue
            // replaces the old one, wherever that was.
            if let Ok(i) = self.sorted.binary_search_by(|(k, _)| k.cmp(&key)) {
                self.sorted[i].1 = residue;
                continue;
            }
            if let Ok(i) = self.sorted_common.binary_search(&key) {
                if residue == common {
                    continue;
                }
                self.sorted_common.remove(i);
            }
            if residue == common {
                batch_common.push(key);
            } else {
                batch.push((key, residue));
            }
        }
        batch.sort_unstable_by_key(|a| a.0);
        batch_common.sort_unstable();
        merge_sorted(&mut self.sorted, &batch, |e| e.0);
        merge_sorted(&mut self.sorted_common, &batch_common, |k| *k);
    }
}

/// The residue most of `residues` share, among the first few kinds seen
/// (a journal's first batch: its later steps end the same way).
fn most_frequent<'a>(residues: impl Iterator<Item = &'a Residue>) -> Option<Residue> {
    let mut kinds: Vec<(Residue, usize)> = Vec::new();
    for residue in residues {
        if let Some((_, count)) = kinds.iter_mut().find(|(kind, _)| kind == residue) {
            *count += 1;
        } else if kinds.len() < 16 {
            kinds.push((*residue, 1));
        }
    }
    kinds
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map(|(kind, _)| kind)
}

/// Merges `batch` (sorted by `key`) into `sorted` in place, from the back:
/// the largest of both goes last.
fn merge_sorted<T: Copy>(sorted: &mut Vec<T>, batch: &[T], key: impl Fn(&T) -> IdHash) {
    let Some(&filler) = batch.first() else {
        return;
    };
    let old = sorted.len();
    sorted.resize(old + batch.len(), filler);
    let (mut i, mut j, mut out) = (old, batch.len(), old + batch.len());
    while j > 0 {
        out -= 1;
        if i > 0 && key(&sorted[i - 1]) > key(&batch[j - 1]) {
            sorted[out] = sorted[i - 1];
            i -= 1;
        } else {
            sorted[out] = batch[j - 1];
            j -= 1;
        }
    }
}

/// Outcome bits of a sweep check over its samples (`ID#k`), kept apart from
/// the samples so a notification can ask about them all at once.
const MARK_ESCALATED: u8 = 1;
const MARK_PASSED: u8 = 2;

/// Every step the replay knows: full state until it ends, a residue after.
struct Steps {
    /// Boxed: an old sweep's run.start makes every step active at once.
    active: HashMap<String, Box<StepState>>,
    ended: EndedSteps,
    /// Check id hash -> `MARK_*` bits of its samples.
    checks: HashMap<IdHash, u8>,
}

impl Steps {
    fn new() -> Self {
        Steps {
            active: HashMap::new(),
            ended: EndedSteps::new(),
            checks: HashMap::new(),
        }
    }

    /// The step's state, revived from its residue or new if need be.
    fn state_mut(&mut self, id: &str) -> &mut StepState {
        if !self.active.contains_key(id) {
            let state = match self.ended.get(id) {
                Some(residue) => residue.revive(),
                None => StepState::default(),
            };
            self.active.insert(id.to_string(), Box::new(state));
        }
        self.active.get_mut(id).expect("just inserted")
    }

    fn brief(&self, id: &str) -> Option<Brief> {
        match self.active.get(id) {
            Some(state) => Some(state.brief()),
            None => self.ended.get(id).map(Residue::brief),
        }
    }

    /// After a step's end: keep only its residue, unless an attempt is still
    /// open (the end-of-journal checks report it with its line).
    fn settle(&mut self, id: &str) {
        let Some(state) = self.active.get(id) else {
            return;
        };
        let Some(verdict) = state.ended else {
            return;
        };
        let residue = state
            .open_attempt
            .is_none()
            .then(|| Residue::of(state, verdict));
        if verdict == StepVerdict::Pass {
            self.mark_check(id, MARK_PASSED);
        }
        if let Some(residue) = residue {
            self.active.remove(id);
            self.ended.insert(id, residue);
        }
    }

    /// Notes an outcome of a sample step (`ID#k`) for its check `ID`.
    fn mark_check(&mut self, id: &str, mark: u8) {
        if let (check, Some(_)) = check_of_step(id) {
            let key = self.ended.hash(check);
            *self.checks.entry(key).or_default() |= mark;
        }
    }

    /// Whether any step of the check `ID` (`ID` itself, or its samples
    /// `ID#k`) escalated, and whether any passed.
    fn check_outcome(&self, check: &str) -> (bool, bool) {
        let own = self.brief(check);
        let marks = self
            .checks
            .get(&self.ended.hash(check))
            .copied()
            .unwrap_or(0);
        (
            own.is_some_and(|s| s.escalated) || marks & MARK_ESCALATED != 0,
            own.is_some_and(|s| s.ended == Some(StepVerdict::Pass)) || marks & MARK_PASSED != 0,
        )
    }
}

/// The replay between records.
pub(super) struct Replay<'h> {
    header: Option<&'h Header>,
    steps: Steps,
    /// (line, seq, step, its depends_on) of every step.end that says blocked.
    blocked: Vec<(u64, u64, String, Option<Vec<String>>)>,
    /// Announcements so far (run.start and plan records, repeats included).
    planned: u64,
    /// (position, step) of announcements of a step already announced.
    repeated: Vec<(u64, String)>,
    run_start_seen: bool,
    /// `run.start`'s total of steps announced there and in `plan` records.
    announced_total: Option<u64>,
    run_end: Option<(RunVerdict, BTreeMap<String, u32>)>,
    verdict_counts: BTreeMap<&'static str, u32>,
    escalations: u32,
    attempts_total: u32,
    passed_earlier: u32,
    /// Line of the last record seen.
    last_line: u64,
    /// Reported after the journal's own warnings.
    warnings: Vec<String>,
}

impl<'h> Replay<'h> {
    pub(super) fn new(header: Option<&'h Header>) -> Self {
        Replay {
            header,
            steps: Steps::new(),
            blocked: Vec::new(),
            planned: 0,
            repeated: Vec::new(),
            run_start_seen: false,
            announced_total: None,
            run_end: None,
            verdict_counts: BTreeMap::new(),
            escalations: 0,
            attempts_total: 0,
            passed_earlier: 0,
            last_line: 0,
            warnings: Vec::new(),
        }
    }

    /// The steps a `run.start` or `plan` record announces.
    fn announce_all(
        &mut self,
        v: &mut Verifier,
        line: u64,
        at: Option<u64>,
        plan: &[crate::core::record::PlannedStep],
    ) {
        for p in plan {
            let position = self.planned;
            self.planned += 1;
            let state = self.steps.state_mut(&p.id);
            if let Some(issue) = announce(state, p) {
                v.journal_problem(STEPS, line, at, issue);
            }
            match state.announced_at {
                None => state.announced_at = Some(position),
                Some(_) => self.repeated.push((position, p.id.clone())),
            }
            state.depends = Some(p.depends_on.clone());
        }
    }

    /// Checks one record against the steps so far.
    pub(super) fn record(&mut self, v: &mut Verifier, line: u64, record: &Record) {
        self.last_line = line;
        let seq = record.seq;
        let at = Some(seq);
        if self.run_end.is_some() {
            v.journal_problem(
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
            if self.run_start_seen && self.steps.brief(step).is_none_or(|s| s.planned.is_none()) {
                v.journal_problem(
                    STEPS,
                    line,
                    at,
                    format!(
                        "step {step:?} was not announced in run.start or a plan record before it"
                    ),
                );
            }
        }
        match &record.event {
            Event::RunStart {
                steps: plan,
                planned: total,
                ..
            } => {
                if self.run_start_seen {
                    v.journal_problem(STEPS, line, at, "second run.start");
                } else if seq != 0 {
                    v.journal_problem(STEPS, line, at, "run.start is not the first record");
                }
                self.run_start_seen = true;
                self.announced_total = *total;
                self.announce_all(v, line, at, plan);
            }
            Event::Plan { steps: plan } => {
                if !self.run_start_seen || self.announced_total.is_none() {
                    v.journal_problem(
                        STEPS,
                        line,
                        at,
                        "plan record without a run.start that announces a total",
                    );
                }
                self.announce_all(v, line, at, plan);
            }
            Event::StepStart {
                step, max_attempts, ..
            } => {
                let state = self.steps.state_mut(step);
                if state.started.is_some() {
                    v.journal_problem(STEPS, line, at, format!("step {step:?} started twice"));
                } else if state.ended.is_some() {
                    v.journal_problem(
                        STEPS,
                        line,
                        at,
                        format!("step {step:?} started after its step.end"),
                    );
                }
                if let Some(planned) = state.planned {
                    if planned != *max_attempts {
                        v.journal_problem(
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
                self.attempts_total += 1;
                *self
                    .verdict_counts
                    .entry(StepVerdict::Pass.as_str())
                    .or_default() += 1;
                let state = self.steps.state_mut(step);
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
                    v.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                }
                state.started = Some(seq);
                state.max_attempts = Some(*max_attempts);
                state.last_attempt = 1;
                state.last_verdict = Some(AttemptVerdict::Pass);
                state.attempt_ends.insert(1, seq);
                state.ended = Some(StepVerdict::Pass);
                self.steps.settle(step);
            }
            Event::AttemptStart { step, attempt, of } => {
                self.attempts_total += 1;
                let state = self.steps.state_mut(step);
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
                    v.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
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
                let state = self.steps.state_mut(step);
                let mut issues = Vec::new();
                match state.open_attempt {
                    Some((open, _, _)) if open == *attempt => {}
                    Some((open, _, _)) => {
                        issues.push(format!("attempt.end for {attempt} while {open} is open"))
                    }
                    None => issues.push(format!("attempt.end for {attempt} without attempt.start")),
                }
                issues.extend(policy_issues(state, *attempt, *of));
                for issue in issues {
                    v.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                }
                state.open_attempt = None;
                state.last_verdict = Some(*verdict);
                state.attempt_ends.insert(*attempt, seq);
            }
            Event::Probe { step, attempt, .. } => {
                let state = self.steps.state_mut(step);
                let issue = match state.open_attempt {
                    Some((open, _, _)) if open == *attempt => None,
                    Some((open, _, _)) => {
                        Some(format!("probe for attempt {attempt} while {open} is open"))
                    }
                    None => Some(format!("probe for attempt {attempt} outside an attempt")),
                };
                if let Some(issue) = issue {
                    v.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                }
            }
            Event::Backoff {
                step,
                after_attempt,
                delay_ms,
            } => {
                let state = self.steps.state_mut(step);
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
                    v.journal_problem(ATTEMPTS, line, at, format!("step {step:?}: {issue}"));
                }
            }
            Event::Escalation(e) => {
                self.escalations += 1;
                let state = self.steps.state_mut(&e.step);
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
                    // A step revived after its end no longer has its attempt
                    // ends: "escalation after step.end" says enough.
                    if !state.revived && state.attempt_ends.get(&a.attempt) != Some(&a.seq) {
                        issues.push(format!(
                            "lists attempt {} at seq {}, which is not that attempt's end",
                            a.attempt, a.seq
                        ));
                    }
                }
                for issue in issues {
                    v.journal_problem(ESCALATIONS, line, at, format!("step {:?}: {issue}", e.step));
                }
                state.escalation = Some(seq);
                self.steps.mark_check(&e.step, MARK_ESCALATED);
            }
            Event::StepEnd {
                step,
                verdict,
                attempts,
                earlier,
                ..
            } => {
                *self.verdict_counts.entry(verdict.as_str()).or_default() += 1;
                let state = self.steps.state_mut(step);
                if *verdict == StepVerdict::Blocked {
                    self.blocked
                        .push((line, seq, step.clone(), state.depends.clone()));
                }
                state.passed_earlier = earlier.is_some();
                let mut step_issues = Vec::new();
                let mut escalation_issues = Vec::new();
                if state.ended.is_some() {
                    step_issues.push("step ended twice".to_string());
                }
                if let Some((open, open_line, _)) = state.open_attempt {
                    v.journal_problem(
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
                    self.passed_earlier += 1;
                    step_issues.extend(earlier_issues(
                        earlier,
                        *verdict,
                        state,
                        self.header.and_then(|h| h.resumed_from.as_ref()),
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
                    v.journal_problem(STEPS, line, at, format!("step {step:?}: {issue}"));
                }
                for issue in escalation_issues {
                    v.journal_problem(ESCALATIONS, line, at, format!("step {step:?}: {issue}"));
                }
                state.ended = Some(*verdict);
                self.steps.settle(step);
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
                let is_sweep = self.header.is_some_and(|h| h.kind == BundleKind::Sweep);
                match change {
                    None if self.steps.brief(step).is_none_or(|s| !s.escalated) => {
                        issues.push("notification for a step that did not escalate".to_string())
                    }
                    None => {}
                    Some(_) if !is_sweep => issues
                        .push("a change-of-state notification outside a sweep bundle".to_string()),
                    // A digest of a round's many changes names no one check.
                    Some(_) if step == "*" => {}
                    Some(change) => {
                        // The check's steps: `ID`, or `ID#1`… with `--samples`.
                        let (escalated, passed) = self.steps.check_outcome(step);
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
                    v.journal_problem(ESCALATIONS, line, at, format!("step {step:?}: {issue}"));
                }
            }
            Event::Delivery { verdict, .. } => {
                if verdict != "accepted" && verdict != "rejected" {
                    v.journal_problem(
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
                if self.run_end.is_some() {
                    v.journal_problem(STEPS, line, at, "second run.end");
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
                    let is_run = self.header.is_none_or(|h| h.kind == BundleKind::Run);
                    if is_run && counts.keys().any(|k| known.contains(&k.as_str())) {
                        for name in known {
                            let claimed = counts.get(name).copied().unwrap_or(0);
                            let seen = self.verdict_counts.get(name).copied().unwrap_or(0);
                            if claimed != seen {
                                v.journal_problem(
                                    STEPS,
                                    line,
                                    at,
                                    format!("run.end counts {claimed} {name} steps, the journal has {seen}"),
                                );
                            }
                        }
                    }
                    self.run_end = Some((*verdict, counts.clone()));
                }
            }
        }
    }

    /// The obligations that hold once the run has ended, and the details.
    /// Returns the run.end verdict and counts, if any.
    pub(super) fn finish(
        self,
        v: &mut Verifier,
        sealed: bool,
    ) -> Option<(RunVerdict, BTreeMap<String, u32>)> {
        let Replay {
            header,
            steps,
            blocked,
            planned,
            repeated,
            run_start_seen,
            announced_total,
            run_end,
            verdict_counts,
            escalations,
            attempts_total,
            passed_earlier,
            last_line,
            warnings,
        } = self;
        v.warnings.extend(warnings);
        // Only steps that never ended cleanly are still active: the others
        // have nothing left to report here.
        let mut active: Vec<(&String, &StepState)> =
            steps.active.iter().map(|(id, s)| (id, &**s)).collect();
        active.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let ended = sealed || run_end.is_some();
        if ended {
            for &(id, state) in &active {
                if let Some((attempt, line, seq)) = state.open_attempt {
                    v.journal_problem(
                        ATTEMPTS,
                        line,
                        Some(seq),
                        format!("step {id:?}: attempt {attempt} never ended"),
                    );
                }
                if let (Some(seq), None) = (state.started, state.ended) {
                    v.journal_problem(
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
                v.problem(
                    COMPLETE,
                    JOURNAL_FILE,
                    None,
                    "sealed run without a run.start record",
                );
            }
            if run_start_seen && run_end.is_none() {
                v.journal_problem(
                    COMPLETE,
                    last_line,
                    None,
                    "sealed bundle without a run.end record",
                );
            }
            if let Some(total) = announced_total {
                // An interrupted sweep stops announcing the checks it will
                // not reach; it may name fewer, never more.
                let short_but_interrupted = interrupted && planned < total;
                if total != planned && !short_but_interrupted {
                    v.journal_problem(
                        COMPLETE,
                        last_line,
                        None,
                        format!(
                            "run.start announces {total} steps; run.start and the plan records name {planned}"
                        ),
                    );
                }
            }
            // Every announcement of a step that never started nor ended, in
            // the order they were made.
            let mut unended: Vec<(u64, &str)> = active
                .iter()
                .filter_map(|&(id, s)| s.announced_at.map(|at| (at, id.as_str())))
                .chain(repeated.iter().map(|(at, id)| (*at, id.as_str())))
                .filter(|&(_, id)| {
                    steps
                        .active
                        .get(id)
                        .is_some_and(|s| s.ended.is_none() && s.started.is_none())
                })
                .collect();
            unended.sort_unstable();
            // An interrupted run stops before later steps start; those need
            // no step.end. Started ones were reported above.
            if !interrupted {
                for (_, id) in unended {
                    v.journal_problem(
                        COMPLETE,
                        last_line,
                        None,
                        format!("planned step {id:?} has no step.end in a sealed bundle"),
                    );
                }
            }
        } else {
            v.skipped.insert(
                COMPLETE,
                "unsealed: later records may be missing".to_string(),
            );
        }

        // A step is blocked only by a dependency that did not pass: one
        // whose dependencies all passed here was made to look blocked. (A
        // dependency that passed in the resumed run may block: the values it
        // captured there are not available.)
        for (line, seq, step, deps) in blocked {
            let Some(deps) = deps else {
                continue;
            };
            let passed = |d: &String| {
                steps
                    .brief(d)
                    .is_some_and(|s| s.ended == Some(StepVerdict::Pass) && !s.passed_earlier)
            };
            if deps.iter().all(passed) {
                let why = if deps.is_empty() {
                    "it depends on no step".to_string()
                } else {
                    format!("every step it depends on passed ({})", deps.join(", "))
                };
                v.journal_problem(
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
        v.details.insert(
            STEPS,
            format!(
                "{planned} planned, {} ended ({}){resumed}",
                verdict_counts.values().sum::<u32>(),
                counts.join(", ")
            ),
        );
        v.details.insert(
            ATTEMPTS,
            format!(
                "{attempts_total} attempt{}, each started and ended within policy",
                if attempts_total == 1 { "" } else { "s" }
            ),
        );
        v.details.insert(
            ESCALATIONS,
            format!(
                "{escalations} escalation record{}, one per escalated step",
                if escalations == 1 { "" } else { "s" }
            ),
        );
        v.details.insert(
            COMPLETE,
            "every planned step ended; run.end present".to_string(),
        );
        run_end
    }
}

/// Records a step announced by `run.start` or a `plan` record; what is wrong
/// with announcing it there, if anything.
fn announce(state: &mut StepState, p: &crate::core::record::PlannedStep) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn residue(last_attempt: u32) -> Residue {
        let state = StepState {
            planned: Some(3),
            started: Some(1),
            last_attempt,
            ..StepState::default()
        };
        Residue::of(&state, StepVerdict::Pass)
    }

    #[test]
    fn ended_steps_are_found_across_merges_and_the_latest_end_wins() {
        let mut ended = EndedSteps::new();
        let n = MERGE_EVERY as u32 * 5 + 7;
        for i in 0..n {
            ended.insert(&format!("s{i}"), residue(i));
        }
        assert!(!ended.sorted.is_empty(), "merged at least once");
        assert!(ended.sorted.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        for i in 0..n {
            let found = ended.get(&format!("s{i}")).map(|r| r.last_attempt);
            assert_eq!(found, Some(i), "s{i}");
        }
        assert!(ended.get("s-never").is_none());
        // A step that ends again (a damaged journal) replaces its entry,
        // merged or not.
        ended.insert("s0", residue(1000));
        assert_eq!(ended.get("s0").map(|r| r.last_attempt), Some(1000));
        for i in 0..MERGE_EVERY as u32 {
            ended.insert(&format!("t{i}"), residue(i));
        }
        assert_eq!(ended.get("s0").map(|r| r.last_attempt), Some(1000));
        assert_eq!(
            ended.sorted.len() + ended.sorted_common.len() + ended.recent.len(),
            n as usize + MERGE_EVERY
        );
    }

    #[test]
    fn steps_that_end_alike_keep_only_their_keys() {
        let mut ended = EndedSteps::new();
        let n = MERGE_EVERY as u32 * 4 + 3;
        // Most end alike; every tenth differently, the first among them.
        let of = |i: u32| residue(if i.is_multiple_of(10) { 2 } else { 1 });
        for i in 0..n {
            ended.insert(&format!("s{i}"), of(i));
        }
        ended.merge();
        assert!(ended.sorted_common.len() > ended.sorted.len() * 5);
        assert!(
            ended.sorted_common.windows(2).all(|w| w[0] < w[1]),
            "sorted"
        );
        for i in 0..n {
            let found = ended.get(&format!("s{i}")).map(|r| r.last_attempt);
            assert_eq!(found, Some(of(i).last_attempt), "s{i}");
        }
        // Ending again moves a step between the two kinds, both ways.
        ended.insert("s1", residue(7));
        ended.insert("s10", residue(1));
        ended.merge();
        assert_eq!(ended.get("s1").map(|r| r.last_attempt), Some(7));
        assert_eq!(ended.get("s10").map(|r| r.last_attempt), Some(1));
        assert_eq!(
            ended.sorted.len() + ended.sorted_common.len(),
            n as usize,
            "each step once"
        );
        assert!(ended.get("s-never").is_none());
    }

    #[test]
    fn a_residue_is_forty_bytes_with_its_key() {
        assert_eq!(std::mem::size_of::<(IdHash, Residue)>(), 40);
    }

    #[test]
    fn a_revived_step_keeps_what_later_records_are_checked_against() {
        let state = StepState {
            planned: Some(3),
            max_attempts: Some(3),
            started: Some(7),
            last_attempt: 2,
            last_verdict: Some(AttemptVerdict::Fail),
            escalation: Some(9),
            ended: Some(StepVerdict::Escalated),
            ..StepState::default()
        };
        let revived = Residue::of(&state, StepVerdict::Escalated).revive();
        assert_eq!(revived.planned, Some(3));
        assert_eq!(revived.max_attempts, Some(3));
        assert!(revived.started.is_some());
        assert_eq!(revived.last_attempt, 2);
        assert_eq!(revived.last_verdict, Some(AttemptVerdict::Fail));
        assert_eq!(revived.escalation, Some(9));
        assert_eq!(revived.ended, Some(StepVerdict::Escalated));
        assert!(revived.revived && !revived.passed_earlier);
    }
}
