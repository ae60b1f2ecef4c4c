//! Reports cannot lie: `summary.md` and `junit.xml` of a bundle must agree
//! with its journal. This needs both the journal reader (`evidence`) and the
//! renderers (`report`), so it lives here, above both; `runproof verify`
//! calls [`audit_reports`] after [`crate::evidence::verify_bundle`].
//!
//! Two levels: what the reports *state* — each step's verdict, attempt count,
//! escalation, and the totals — is always compared; when the bundle was
//! written by this very renderer version (`renderer` in the header), the
//! reports are also regenerated from the journal and compared byte for byte.
//! A newer runproof thus never calls an honest older bundle INVALID.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use regex::Regex;

use crate::core::record::{check_of_step, BundleKind, Event, Record, StepVerdict};
use crate::evidence::read::{read_capped_line, CappedLine, MAX_LINE};
use crate::evidence::verify::REPORTS;
use crate::evidence::{read_bundle, read_head, read_records, Problem, Redactor, VerifyReport};
use crate::report::{self, RunSummary, StepSummary, SummaryBuilder};

const SUMMARY: &str = "summary.md";
const JUNIT: &str = "junit.xml";

/// Compares the bundle's reports with its journal and records the result as
/// the `reports` check of `report` (a failure makes it INVALID).
pub fn audit_reports(report: &mut VerifyReport) {
    let dir = report.dir.clone();
    let Ok(head) = read_head(&dir) else {
        // verify_bundle has already said why the bundle cannot be read.
        report.skip_check(REPORTS, "the bundle cannot be read");
        return;
    };
    let header = &head.header;
    if header.kind == BundleKind::Listen {
        report.skip_check(REPORTS, "a listener writes no reports");
        return;
    }
    let present = |name: &str| dir.join(name).is_file();
    if !present(SUMMARY) && !present(JUNIT) {
        if head.seal.is_some() {
            report.set_check(
                REPORTS,
                String::new(),
                vec![problem(SUMMARY, "a sealed bundle without its reports")],
            );
        } else {
            report.skip_check(REPORTS, "no reports yet (unfinished run)");
        }
        return;
    }
    if header.kind == BundleKind::Sweep {
        // A sweep's journal may hold a million records: fold it one record
        // at a time into what JUnit states per check, and stream JUnit.
        // First into order-free sums (memory that does not grow with the
        // checks); only when they disagree with JUnit, or the sweep took
        // samples, is the journal read again into a map of every check, to
        // say exactly what differs.
        let mut problems = Vec::new();
        let mut compared = Vec::new();
        let mut summed = SweepCases::summing();
        if read_records(&dir, |record| summed.observe(&record)).is_err() {
            report.skip_check(REPORTS, "the bundle cannot be read");
            return;
        }
        let junit = match compare_junit_sums(summed, &dir, &mut problems) {
            Some(compared) => compared,
            None => {
                problems.clear();
                let mut cases = SweepCases::default();
                if read_records(&dir, |record| cases.observe(&record)).is_err() {
                    report.skip_check(REPORTS, "the bundle cannot be read");
                    return;
                }
                compare_junit(cases.finish(), &dir, header.kind, &mut problems)
            }
        };
        if junit {
            compared.push(JUNIT);
        }
        if is_text(&dir, SUMMARY, &mut problems) {
            compared.push(SUMMARY);
        }
        report.set_check(
            REPORTS,
            format!(
                "{} state the journal's verdicts, attempts and totals",
                compared.join(" and ")
            ),
            problems,
        );
        return;
    }
    let Ok(bundle) = read_bundle(&dir) else {
        report.skip_check(REPORTS, "the bundle cannot be read");
        return;
    };
    let header = &bundle.header;
    let mut builder = SummaryBuilder::new(&header.run_id, &header.source.name, &header.started_at);
    for (seq, event) in bundle.events() {
        crate::engine::RunObserver::observe(&mut builder, seq, &event);
    }
    let summary = builder.finish();

    let mut problems = Vec::new();
    let mut compared = Vec::new();
    if compare_junit(
        journal_cases(&summary, header.kind),
        &dir,
        header.kind,
        &mut problems,
    ) {
        compared.push(JUNIT);
    }
    if let Some(markdown) = read(&dir, SUMMARY, &mut problems) {
        if header.kind == BundleKind::Run {
            compare_markdown(&summary, &markdown, &mut problems);
        }
        compared.push(SUMMARY);
    }
    let same_renderer = header.renderer.as_deref() == Some(report::RENDERER_VERSION)
        && header.kind == BundleKind::Run;
    let how = if same_renderer && problems.is_empty() {
        // Structural redaction rules only: the journal's events are already
        // redacted, and the reports went through the same rules on write.
        let redactor = Redactor::new(&[]);
        let context = super::run::report_context(header);
        let regenerated = [
            (SUMMARY, report::markdown::render_run(&summary, &context)),
            (JUNIT, report::junit::render(&summary)),
        ];
        for (name, text) in regenerated {
            let Ok(written) = std::fs::read(dir.join(name)) else {
                continue;
            };
            let expected = redactor.redact(&text);
            if written != expected.as_bytes() {
                problems.push(problem(
                    name,
                    format!(
                        "differs from the report regenerated from the journal (renderer {}), first at line {}",
                        report::RENDERER_VERSION,
                        first_difference(&written, expected.as_bytes())
                    ),
                ));
            }
        }
        "regenerated from the journal and identical"
    } else {
        "state the journal's verdicts, attempts and totals"
    };
    report.set_check(
        REPORTS,
        format!("{} {how}", compared.join(" and ")),
        problems,
    );
}

fn problem(file: &str, message: impl Into<String>) -> Problem {
    Problem {
        check: REPORTS,
        file: file.to_string(),
        line: None,
        seq: None,
        message: message.into(),
    }
}

fn read(dir: &Path, name: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => {
                problems.push(problem(name, "not UTF-8"));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            problems.push(problem(name, format!("cannot read: {e}")));
            None
        }
    }
}

/// Whether the report `name` is there and UTF-8, as [`read`] decides it, a
/// line at a time (a sweep's `summary.md` of a million checks is large).
fn is_text(dir: &Path, name: &str, problems: &mut Vec<Problem>) -> bool {
    let file = match std::fs::File::open(dir.join(name)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(e) => {
            problems.push(problem(name, format!("cannot read: {e}")));
            return false;
        }
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    loop {
        match read_capped_line(&mut reader, &mut buf, MAX_LINE) {
            Err(e) => {
                problems.push(problem(name, format!("cannot read: {e}")));
                return false;
            }
            Ok(CappedLine::Eof) => return true,
            Ok(CappedLine::TooLong) => {
                problems.push(problem(name, format!("a line over {MAX_LINE} bytes")));
                return false;
            }
            Ok(CappedLine::Line | CappedLine::Torn) => {
                if std::str::from_utf8(&buf).is_err() {
                    problems.push(problem(name, "not UTF-8"));
                    return false;
                }
            }
        }
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    a[..at].iter().filter(|&&c| c == b'\n').count() + 1
}

/// What a report can say about a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stated {
    Pass,
    Escalated,
    /// Blocked or skipped: JUnit cannot tell them apart.
    NotRun,
    Interrupted,
    /// A sweep check that passed every attempt but regressed on latency.
    Regressed,
    /// A `confirm` step nobody confirmed.
    Unconfirmed,
}

fn stated(verdict: Option<StepVerdict>) -> Stated {
    match verdict {
        Some(StepVerdict::Pass) => Stated::Pass,
        Some(StepVerdict::Escalated) => Stated::Escalated,
        Some(StepVerdict::Blocked | StepVerdict::Skipped) => Stated::NotRun,
        Some(StepVerdict::Interrupted) | None => Stated::Interrupted,
        Some(StepVerdict::Unconfirmed) => Stated::Unconfirmed,
    }
}

/// The journal's steps as JUnit lists them: a sweep's samples (`ID#k`) fold
/// into one testcase per check, decided by the first sample that did not pass.
fn journal_cases(summary: &RunSummary, kind: BundleKind) -> BTreeMap<String, (Stated, u32)> {
    let mut cases: BTreeMap<String, Vec<&StepSummary>> = BTreeMap::new();
    for step in &summary.steps {
        let id = match kind {
            BundleKind::Sweep => crate::core::record::check_of_step(&step.id).0,
            _ => step.id.as_str(),
        };
        cases.entry(id.to_string()).or_default().push(step);
    }
    cases
        .into_iter()
        .map(|(id, samples)| {
            let decisive = samples
                .iter()
                .find(|s| s.verdict != Some(StepVerdict::Pass))
                .or(samples.last())
                .expect("at least one sample");
            (id, (stated(decisive.verdict), decisive.attempts))
        })
        .collect()
}

/// A sweep's journal folded per check as [`journal_cases`] folds its
/// summary, one record at a time: a sample that has not ended is held with
/// its position; an ended one only moves its check's decisive sample.
#[derive(Default)]
struct SweepCases {
    /// Steps seen so far, in order of their first record.
    seen: u64,
    /// Steps seen and not ended: (position, attempts so far).
    pending: HashMap<String, (u64, u32)>,
    /// Per check: the first (by position) sample that did not pass, and the
    /// last sample, each as (position, stated, attempts). When summing, only
    /// the checks that took samples (`ID#k`).
    checks: BTreeMap<String, Decisive>,
    /// When set, a check of one step (no samples) is added to these sums
    /// as it ends instead of being kept in `checks`.
    sums: Option<(CaseHasher, CaseSums)>,
}

/// A keyed 128-bit hash of a testcase (its name and what it states), under
/// keys chosen at random per process: a bundle cannot be crafted so that two
/// different sets of testcases add up to the same sum.
struct CaseHasher(std::hash::RandomState, std::hash::RandomState);

impl CaseHasher {
    fn new() -> Self {
        CaseHasher(std::hash::RandomState::new(), std::hash::RandomState::new())
    }

    fn hash(&self, name: &str, state: Stated) -> u128 {
        use std::hash::BuildHasher;
        // JUnit may say "regressed" of a check whose attempts all passed
        // (see `compare_junit`): both count as a pass here.
        let state = match state {
            Stated::Regressed => Stated::Pass,
            other => other,
        } as u8;
        let a = self.0.hash_one((name, state));
        let b = self.1.hash_one((name, state));
        (u128::from(a) << 64) | u128::from(b)
    }
}

/// Testcases added up without being kept: how many, the sum of their
/// hashes (equal sums mean the same testcases, in any order), and the
/// counts the JUnit totals are checked against.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct CaseSums {
    count: u64,
    sum: u128,
    failing: u32,
    interrupted: u32,
    not_run: u32,
}

impl CaseSums {
    fn add(&mut self, hasher: &CaseHasher, name: &str, state: Stated) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(hasher.hash(name, state));
        match state {
            Stated::Escalated | Stated::Regressed | Stated::Unconfirmed => self.failing += 1,
            Stated::Interrupted => self.interrupted += 1,
            Stated::NotRun => self.not_run += 1,
            Stated::Pass => {}
        }
    }
}

#[derive(Default)]
struct Decisive {
    failed: Option<(u64, Stated, u32)>,
    last: Option<(u64, Stated, u32)>,
}

impl SweepCases {
    fn observe(&mut self, record: &Record) {
        match &record.event {
            Event::RunStart { steps, .. } | Event::Plan { steps } => {
                for planned in steps {
                    self.pending_mut(&planned.id);
                }
            }
            Event::StepStart { step, .. } => {
                self.pending_mut(step);
            }
            Event::Escalation(e) => {
                self.pending_mut(&e.step);
            }
            Event::AttemptEnd { step, attempt, .. } => self.pending_mut(step).1 = *attempt,
            Event::StepPass { step, .. } => self.end(step, Some(StepVerdict::Pass), 1),
            Event::StepEnd {
                step,
                verdict,
                attempts,
                ..
            } => self.end(step, Some(*verdict), *attempts),
            _ => {}
        }
    }

    fn pending_mut(&mut self, step: &str) -> &mut (u64, u32) {
        if !self.pending.contains_key(step) {
            self.pending.insert(step.to_string(), (self.seen, 0));
            self.seen += 1;
        }
        self.pending.get_mut(step).expect("just inserted")
    }

    /// Folds into sums where it can (see [`compare_junit_sums`]).
    fn summing() -> Self {
        SweepCases {
            sums: Some((CaseHasher::new(), CaseSums::default())),
            ..SweepCases::default()
        }
    }

    fn end(&mut self, step: &str, verdict: Option<StepVerdict>, attempts: u32) {
        let (position, _) = *self.pending_mut(step);
        self.pending.remove(step);
        self.fold(step, position, stated(verdict), attempts);
    }

    fn fold(&mut self, step: &str, position: u64, state: Stated, attempts: u32) {
        if let (Some((hasher, sums)), (check, None)) = (&mut self.sums, check_of_step(step)) {
            // A check of one step that ended: what JUnit must state of it is
            // known now. (A step that ends twice adds twice: the sums then
            // disagree unless JUnit lists it twice too, and the journal's
            // replay reports a step that ends twice in any case.)
            sums.add(hasher, check, state);
            return;
        }
        let check = check_of_step(step).0;
        let decisive = match self.checks.get_mut(check) {
            Some(decisive) => decisive,
            None => self.checks.entry(check.to_string()).or_default(),
        };
        let sample = Some((position, state, attempts));
        if state != Stated::Pass && decisive.failed.is_none_or(|(p, _, _)| position < p) {
            decisive.failed = sample;
        }
        if decisive.last.is_none_or(|(p, _, _)| position > p) {
            decisive.last = sample;
        }
    }

    /// What a summing fold gathered, once samples that never ended count
    /// as interrupted: its hasher, its sums, and whether any check took
    /// samples (those are not summed). `None` unless it was summing.
    fn finish_sums(mut self) -> Option<(CaseHasher, CaseSums, bool)> {
        self.sums.as_ref()?;
        for (step, (position, attempts)) in std::mem::take(&mut self.pending) {
            self.fold(&step, position, stated(None), attempts);
        }
        let (hasher, sums) = self.sums?;
        Some((hasher, sums, !self.checks.is_empty()))
    }

    /// The journal's checks as JUnit lists them; samples that never ended
    /// count as interrupted.
    fn finish(mut self) -> BTreeMap<String, (Stated, u32)> {
        for (step, (position, attempts)) in std::mem::take(&mut self.pending) {
            self.fold(&step, position, stated(None), attempts);
        }
        self.checks
            .into_iter()
            .filter_map(|(id, d)| {
                let (_, state, attempts) = d.failed.or(d.last)?;
                Some((id, (state, attempts)))
            })
            .collect()
    }
}

/// [`compare_junit`] for a sweep folded into sums, in memory that does not
/// grow with its checks: true when JUnit was compared (the problems found
/// are the totals'), false when there is no JUnit to compare, `None` when
/// the exact comparison must say what differs (the testcases do not add up
/// to the journal's, or the sweep took samples).
fn compare_junit_sums(cases: SweepCases, dir: &Path, problems: &mut Vec<Problem>) -> Option<bool> {
    let (hasher, journal, sampled) = cases.finish_sums()?;
    if sampled {
        return None;
    }
    let mut junit = CaseSums::default();
    let Some(totals) = parse_junit(dir, problems, |name, case| {
        junit.add(&hasher, &name, case.state);
    }) else {
        return Some(false);
    };
    if (junit.count, junit.sum) != (journal.count, journal.sum) {
        return None;
    }
    let expected = [
        journal.count as u32,
        junit.failing,
        journal.interrupted,
        journal.not_run,
    ];
    match totals {
        Some(totals) if totals != expected => problems.push(totals_problem(totals, expected)),
        Some(_) => {}
        None => problems.push(problem(JUNIT, "no <testsuites> totals")),
    }
    Some(true)
}

fn totals_problem([tests, failures, errors, skipped]: [u32; 4], expected: [u32; 4]) -> Problem {
    problem(
        JUNIT,
        format!(
            "totals tests={tests} failures={failures} errors={errors} skipped={skipped}; the journal gives {} {} {} {}",
            expected[0], expected[1], expected[2], expected[3]
        ),
    )
}

/// One `<testcase>` as stated in `junit.xml`.
#[derive(Clone, Copy)]
struct Case {
    state: Stated,
    /// From `passed on attempt N/M` or `escalated after N/M attempts`.
    attempts: Option<u32>,
}

/// Reads `junit.xml` a line at a time and hands each complete `<testcase>`
/// to `each` (name, case); returns the `<testsuites>` totals, or `None` for
/// the file: absent, unreadable or not UTF-8 (a problem says which).
fn parse_junit(
    dir: &Path,
    problems: &mut Vec<Problem>,
    mut each: impl FnMut(String, Case),
) -> Option<Option<[u32; 4]>> {
    let case_re = Regex::new(r#"(?s)<testcase\b([^>]*?)(/>|>(.*?)</testcase>)"#).expect("valid");
    let name_re = Regex::new(r#"\bname="([^"]*)""#).expect("valid");
    let attempts_re =
        Regex::new(r"(?:passed on attempt|escalated after) (\d+)/\d+").expect("valid");
    let totals_re = Regex::new(
        r#"<testsuites\b[^>]*?\btests="(\d+)"[^>]*?\bfailures="(\d+)"[^>]*?\berrors="(\d+)"[^>]*?\bskipped="(\d+)""#,
    )
    .expect("valid");
    let file = match std::fs::File::open(dir.join(JUNIT)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            problems.push(problem(JUNIT, format!("cannot read: {e}")));
            return None;
        }
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    // Text since the last complete testcase.
    let mut pending = String::new();
    let mut totals = None;
    loop {
        let read = match read_capped_line(&mut reader, &mut buf, MAX_LINE) {
            Ok(read) => read,
            Err(e) => {
                problems.push(problem(JUNIT, format!("cannot read: {e}")));
                return None;
            }
        };
        let ended = match read {
            CappedLine::Eof => break,
            CappedLine::Line => true,
            CappedLine::Torn => false,
            CappedLine::TooLong => {
                problems.push(problem(JUNIT, format!("a line over {MAX_LINE} bytes")));
                return None;
            }
        };
        let Ok(line) = std::str::from_utf8(&buf) else {
            problems.push(problem(JUNIT, "not UTF-8"));
            return None;
        };
        pending.push_str(line);
        if ended {
            pending.push('\n');
        }
        if totals.is_none() {
            totals = totals_re.captures(&pending).and_then(|c| {
                let n = |i: usize| c[i].parse::<u32>().ok();
                Some([n(1)?, n(2)?, n(3)?, n(4)?])
            });
        }
        if !(line.contains("/>") || line.contains("</testcase>")) {
            continue;
        }
        let mut consumed = 0;
        for m in case_re.captures_iter(&pending) {
            consumed = m.get(0).map_or(consumed, |m| m.end());
            let attrs = m.get(1).map_or("", |a| a.as_str());
            let body = m.get(3).map_or("", |b| b.as_str());
            let Some(name) = name_re.captures(attrs).map(|c| unescape(&c[1])) else {
                continue;
            };
            let state = if body.contains("<failure type=\"regressed\"") {
                Stated::Regressed
            } else if body.contains("<failure type=\"unconfirmed\"") {
                Stated::Unconfirmed
            } else if body.contains("<failure") {
                Stated::Escalated
            } else if body.contains("<skipped") {
                Stated::NotRun
            } else if body.contains("<error") {
                Stated::Interrupted
            } else {
                Stated::Pass
            };
            let attempts = attempts_re
                .captures(body)
                .and_then(|c| c[1].parse().ok())
                .or((state == Stated::Pass && !body.contains("passed on attempt")).then_some(1));
            each(name, Case { state, attempts });
        }
        pending.drain(..consumed);
    }
    Some(totals)
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#10;", "\n")
        .replace("&amp;", "&")
}

/// Compares `junit.xml` with the journal's cases; false when there is no
/// JUnit file to compare (absent, or a problem says why it was not read).
fn compare_junit(
    journal: BTreeMap<String, (Stated, u32)>,
    dir: &Path,
    kind: BundleKind,
    problems: &mut Vec<Problem>,
) -> bool {
    // Each journal case with what JUnit says of it (the last testcase of
    // that name); testcases that name no case of the journal, in order.
    let mut joined: BTreeMap<String, (Stated, u32, Option<Case>)> = journal
        .into_iter()
        .map(|(id, (state, attempts))| (id, (state, attempts, None)))
        .collect();
    let mut strangers: Vec<String> = Vec::new();
    let mut stranger_cases: HashMap<String, Case> = HashMap::new();
    let mut listed = 0usize;
    let mut found = Vec::new();
    let Some(totals) = parse_junit(dir, problems, |name, case| {
        listed += 1;
        match joined.get_mut(&name) {
            Some(entry) => entry.2 = Some(case),
            None => {
                strangers.push(name.clone());
                stranger_cases.insert(name, case);
            }
        }
    }) else {
        return false;
    };
    let unique = joined.values().filter(|e| e.2.is_some()).count() + stranger_cases.len();
    if listed != unique {
        found.push(problem(JUNIT, "a testcase is listed twice"));
    }
    for (id, (state, attempts, case)) in &joined {
        let Some(case) = case else {
            found.push(problem(
                JUNIT,
                format!("step {id:?} of the journal is missing"),
            ));
            continue;
        };
        // A regression fails a check whose attempts all passed: only a
        // passing step may be reported as regressed.
        let agrees = case.state == *state
            || (case.state == Stated::Regressed
                && *state == Stated::Pass
                && kind == BundleKind::Sweep);
        if !agrees {
            found.push(problem(
                JUNIT,
                format!(
                    "step {id:?}: the report says {}, the journal {}",
                    describe(case.state),
                    describe(*state)
                ),
            ));
        } else if let Some(n) = case
            .attempts
            // A step that passed in a resumed run has no attempt here; JUnit
            // shows it as a plain pass, which reads as one attempt.
            .filter(|n| *n != (*attempts).max(1))
        {
            if kind == BundleKind::Run {
                found.push(problem(
                    JUNIT,
                    format!("step {id:?}: the report says {n} attempts, the journal {attempts}"),
                ));
            }
        }
    }
    for id in &strangers {
        found.push(problem(
            JUNIT,
            format!("testcase {id:?} is not a step of the journal"),
        ));
    }
    if let Some([tests, failures, errors, skipped]) = totals {
        let failing = |s: &Stated| {
            matches!(
                s,
                Stated::Escalated | Stated::Regressed | Stated::Unconfirmed
            )
        };
        let count_journal =
            |f: &dyn Fn(&Stated) -> bool| joined.values().filter(|(s, _, _)| f(s)).count() as u32;
        let expected = [
            joined.len() as u32,
            (joined
                .values()
                .filter_map(|(_, _, c)| c.as_ref())
                .chain(stranger_cases.values())
                .filter(|c| failing(&c.state))
                .count()) as u32,
            count_journal(&|s| *s == Stated::Interrupted),
            count_journal(&|s| *s == Stated::NotRun),
        ];
        if [tests, failures, errors, skipped] != expected {
            found.push(totals_problem([tests, failures, errors, skipped], expected));
        }
    } else {
        found.push(problem(JUNIT, "no <testsuites> totals"));
    }
    problems.extend(found);
    true
}

fn describe(state: Stated) -> &'static str {
    match state {
        Stated::Pass => "pass",
        Stated::Escalated => "escalated",
        Stated::NotRun => "not run (blocked/skipped)",
        Stated::Interrupted => "interrupted",
        Stated::Regressed => "regressed",
        Stated::Unconfirmed => "unconfirmed",
    }
}

/// `summary.md` of a run: the headline and the step table.
fn compare_markdown(summary: &RunSummary, text: &str, problems: &mut Vec<Problem>) {
    let row_re =
        Regex::new(r"^\| (\d+) \| (.*?) \| [^|]* \| (.*?) \| ([^|]*) \| [^|]* \|$").expect("valid");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(c) = row_re.captures(line) {
            rows.push((
                c[2].replace("\\|", "|").replace("&lt;", "<"),
                c[3].trim_matches('*').to_string(),
                c[4].trim().to_string(),
            ));
        }
    }
    if rows.len() != summary.steps.len() {
        problems.push(problem(
            SUMMARY,
            format!(
                "lists {} steps, the journal {}",
                rows.len(),
                summary.steps.len()
            ),
        ));
    }
    for step in &summary.steps {
        let Some((_, verdict, attempts)) = rows.iter().find(|(id, _, _)| *id == step.id) else {
            problems.push(problem(
                SUMMARY,
                format!("step {:?} of the journal is missing", step.id),
            ));
            continue;
        };
        let expected_attempts = if step.attempts == 0 {
            "-".to_string()
        } else {
            format!("{}/{}", step.attempts, step.max_attempts)
        };
        if *verdict != step.verdict_label() {
            problems.push(problem(
                SUMMARY,
                format!(
                    "step {:?}: the report says {verdict}, the journal {}",
                    step.id,
                    step.verdict_label()
                ),
            ));
        } else if *attempts != expected_attempts {
            problems.push(problem(
                SUMMARY,
                format!(
                    "step {:?}: the report says {attempts} attempts, the journal {expected_attempts}",
                    step.id
                ),
            ));
        }
        let escalated_in_report = text.contains(&format!(
            "{} — escalated",
            step.id.replace('|', "\\|").replace('<', "&lt;")
        ));
        if escalated_in_report != step.escalation.is_some() {
            problems.push(problem(
                SUMMARY,
                format!(
                    "step {:?}: the report {} an escalation, the journal {}",
                    step.id,
                    if escalated_in_report {
                        "shows"
                    } else {
                        "omits"
                    },
                    if step.escalation.is_some() {
                        "has one"
                    } else {
                        "has none"
                    }
                ),
            ));
        }
    }
    let headline = text.lines().next().unwrap_or("");
    let claims_pass = headline.ends_with("· PASSED");
    let passed = summary.verdict == Some(crate::core::record::RunVerdict::Pass);
    if claims_pass != passed {
        problems.push(problem(
            SUMMARY,
            format!(
                "headline {:?} does not match the run's verdict ({})",
                headline,
                summary
                    .verdict
                    .map(|v| format!("{v:?}").to_lowercase())
                    .unwrap_or_else(|| "unfinished".into())
            ),
        ));
    }
}
