//! `runproof verify`: recompute the chain, digests and semantics of a bundle
//! offline. The main type here is [`VerifyReport`], produced by
//! [`verify_bundle`]: a verdict, the named checks with pass/fail, and the
//! problems naming the file and line (and seq) that failed.
//!
//! Verify never trusts anything inside the bundle to tell it what to check:
//! the files present on disk are compared with the seal, the seal with the
//! journal, the journal with the header.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};
use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::read::split_lines;
use super::record::{
    AttemptVerdict, BundleKind, Event, Header, Record, RunVerdict, StepVerdict, FORMAT_VERSION,
};
use super::redact::Redactor;
use super::scan::{scan_files, SecretFinding};
use super::seal::{
    list_files, sha256_file, sha256_ref, Seal, BLOB_DIR, HEADER_FILE, JOURNAL_FILE, SEAL_FILE,
    SEAL_PREDICATE_TYPE, STATEMENT_TYPE, TEMP_PREFIX,
};

/// What QA asks verify to check beyond integrity.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// `(name, value)` secrets to scan every file for, with their encodings.
    pub scan_secrets: Vec<(String, String)>,
    /// Also look for credential shapes (JWTs, auth headers, URL passwords,
    /// `AKIA…` keys) that no value list would catch.
    pub scan_patterns: bool,
}

/// The overall outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Sealed; every check passed.
    Verified,
    /// Sealed; every check passed; the run was interrupted (SIGINT/SIGTERM)
    /// and the bundle records it up to that point.
    VerifiedInterrupted,
    /// No seal (crashed or still running): the chain is valid through
    /// `valid_through_seq` (`None`: no complete record); truncation of the
    /// end cannot be ruled out.
    Incomplete { valid_through_seq: Option<u64> },
    /// Tampered, truncated, or inconsistent.
    Invalid,
    /// Integrity holds, but secret values were found in the files.
    SecretsFound,
}

impl Verdict {
    /// The upper-case label printed first.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Verified => "VERIFIED",
            Verdict::VerifiedInterrupted => "VERIFIED (interrupted)",
            Verdict::Incomplete { .. } => "INCOMPLETE",
            Verdict::Invalid => "INVALID",
            Verdict::SecretsFound => "SECRETS FOUND",
        }
    }
}

/// How one named check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Not applicable (e.g. seal checks on an unsealed bundle).
    Skip,
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    pub detail: String,
}

/// One thing that failed, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The check it belongs to.
    pub check: &'static str,
    /// Path relative to the bundle.
    pub file: String,
    /// 1-based line, for the journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub message: String,
}

impl Problem {
    /// `events.jsonl:5 (seq 4)`-style location.
    pub fn location(&self) -> String {
        let mut out = self.file.clone();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
        }
        if let Some(seq) = self.seq {
            out.push_str(&format!(" (seq {seq})"));
        }
        out
    }
}

/// The verdict and its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub verdict: Verdict,
    pub run_id: Option<String>,
    pub kind: Option<BundleKind>,
    /// Complete journal records.
    pub records: u64,
    pub sealed: bool,
    /// The run's verdict from `run.end`, if recorded.
    pub run_verdict: Option<RunVerdict>,
    pub checks: Vec<Check>,
    pub problems: Vec<Problem>,
    pub secrets: Vec<SecretFinding>,
    /// Worth a look, not failures (orphan blobs, wall clock going backwards…).
    pub warnings: Vec<String>,
}

// Check names, in the order they are reported.
const HEADER: &str = "header";
const LINES: &str = "journal.lines";
const RECORDS: &str = "journal.records";
const SEQ: &str = "journal.seq";
const CHAIN: &str = "journal.chain";
const RUN_ID: &str = "journal.run_id";
const MONO: &str = "journal.mono_ns";
const STEPS: &str = "steps";
const ATTEMPTS: &str = "attempts";
const ESCALATIONS: &str = "escalations";
const COMPLETE: &str = "completeness";
const BLOBS: &str = "blobs";
const SEAL: &str = "seal";
const SUBJECTS: &str = "seal.subjects";
const UNLISTED: &str = "seal.unlisted";
const SECRETS: &str = "secrets";
const CHECK_ORDER: &[&str] = &[
    HEADER,
    LINES,
    RECORDS,
    SEQ,
    CHAIN,
    RUN_ID,
    MONO,
    STEPS,
    ATTEMPTS,
    ESCALATIONS,
    COMPLETE,
    BLOBS,
    SEAL,
    SUBJECTS,
    UNLISTED,
    SECRETS,
];

/// Problems kept per check; the rest are counted.
const MAX_PROBLEMS_PER_CHECK: usize = 25;

impl VerifyReport {
    /// True for [`Verdict::Verified`] and [`Verdict::VerifiedInterrupted`].
    pub fn is_valid(&self) -> bool {
        matches!(
            self.verdict,
            Verdict::Verified | Verdict::VerifiedInterrupted
        )
    }

    /// The one-line verdict.
    pub fn summary_line(&self) -> String {
        let run = self.run_id.as_deref().unwrap_or("?");
        match &self.verdict {
            Verdict::Verified => format!("VERIFIED: run {run}, {} records, sealed", self.records),
            Verdict::VerifiedInterrupted => format!(
                "VERIFIED (interrupted): run {run}, {} records, sealed; the run was interrupted and is recorded up to that point",
                self.records
            ),
            Verdict::Incomplete { valid_through_seq } => match valid_through_seq {
                Some(seq) => format!(
                    "INCOMPLETE: run {run} has no seal (unfinished or crashed); journal valid through seq {seq}; truncation cannot be ruled out"
                ),
                None => format!("INCOMPLETE: run {run} has no seal and no complete record"),
            },
            Verdict::Invalid => {
                let first = self.problems.first();
                let more = self.problems.len().saturating_sub(1);
                match first {
                    Some(p) if more > 0 => {
                        format!("INVALID: {}: {} (and {more} more problems)", p.location(), p.message)
                    }
                    Some(p) => format!("INVALID: {}: {}", p.location(), p.message),
                    None => "INVALID".to_string(),
                }
            }
            Verdict::SecretsFound => {
                let files: BTreeSet<&str> = self.secrets.iter().map(|s| s.file.as_str()).collect();
                format!(
                    "SECRETS FOUND: {} matches in {} files; rotate those secrets (a sealed bundle cannot be cleaned)",
                    self.secrets.len(),
                    files.len()
                )
            }
        }
    }

    /// The verdict line, then tables of checks, problems and secret findings.
    pub fn render_text(&self) -> String {
        #[derive(Tabled)]
        struct CheckRow<'a> {
            #[tabled(rename = "check")]
            name: &'a str,
            #[tabled(rename = "result")]
            status: &'a str,
            detail: &'a str,
        }
        #[derive(Tabled)]
        struct ProblemRow<'a> {
            #[tabled(rename = "where")]
            location: String,
            check: &'a str,
            problem: &'a str,
        }
        #[derive(Tabled)]
        struct SecretRow<'a> {
            file: &'a str,
            line: u64,
            offset: u64,
            #[tabled(rename = "secret (masked)")]
            preview: &'a str,
        }
        let mut out = self.summary_line();
        out.push('\n');
        let rows = self.checks.iter().map(|c| CheckRow {
            name: c.name,
            status: match c.status {
                CheckStatus::Pass => "ok",
                CheckStatus::Fail => "FAIL",
                CheckStatus::Skip => "-",
            },
            detail: &c.detail,
        });
        out.push_str(&Table::new(rows).with(Style::sharp()).to_string());
        out.push('\n');
        if !self.problems.is_empty() {
            let rows = self.problems.iter().map(|p| ProblemRow {
                location: p.location(),
                check: p.check,
                problem: &p.message,
            });
            out.push_str(&Table::new(rows).with(Style::sharp()).to_string());
            out.push('\n');
        }
        if !self.secrets.is_empty() {
            let rows = self.secrets.iter().map(|s| SecretRow {
                file: &s.file,
                line: s.line,
                offset: s.offset,
                preview: &s.preview,
            });
            out.push_str(&Table::new(rows).with(Style::sharp()).to_string());
            out.push('\n');
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        out
    }

    /// The whole report as JSON (`verify --json`).
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut value {
            map.insert("valid".to_string(), Value::Bool(self.is_valid()));
            map.insert("summary".to_string(), Value::String(self.summary_line()));
        }
        value
    }
}

/// Verifies the bundle in `dir`. Never panics and never fails: every
/// problem, including unreadable files, is part of the report.
pub fn verify_bundle(dir: &Path, options: &VerifyOptions) -> VerifyReport {
    Verifier::new(dir).run(options)
}

/// Per-step state while replaying the journal.
#[derive(Default)]
struct StepState {
    /// `max_attempts` announced in `run.start`.
    planned: Option<u32>,
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
}

struct Verifier {
    dir: PathBuf,
    problems: Vec<Problem>,
    overflow: BTreeMap<&'static str, usize>,
    details: HashMap<&'static str, String>,
    skipped: HashMap<&'static str, String>,
    warnings: Vec<String>,
}

impl Verifier {
    fn new(dir: &Path) -> Self {
        Verifier {
            dir: dir.to_path_buf(),
            problems: Vec::new(),
            overflow: BTreeMap::new(),
            details: HashMap::new(),
            skipped: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    fn problem(
        &mut self,
        check: &'static str,
        file: &str,
        at: Option<(u64, u64)>,
        message: impl Into<String>,
    ) {
        if self.problems.iter().filter(|p| p.check == check).count() >= MAX_PROBLEMS_PER_CHECK {
            *self.overflow.entry(check).or_default() += 1;
            return;
        }
        self.problems.push(Problem {
            check,
            file: file.to_string(),
            line: at.map(|(line, _)| line),
            seq: at.map(|(_, seq)| seq),
            message: message.into(),
        });
    }

    fn journal_problem(
        &mut self,
        check: &'static str,
        line: u64,
        seq: Option<u64>,
        message: impl Into<String>,
    ) {
        if self.problems.iter().filter(|p| p.check == check).count() >= MAX_PROBLEMS_PER_CHECK {
            *self.overflow.entry(check).or_default() += 1;
            return;
        }
        self.problems.push(Problem {
            check,
            file: JOURNAL_FILE.to_string(),
            line: Some(line),
            seq,
            message: message.into(),
        });
    }

    fn run(mut self, options: &VerifyOptions) -> VerifyReport {
        // 1. Header.
        let header_bytes = fs::read(self.dir.join(HEADER_FILE));
        let (header, header_digest) = match header_bytes {
            Ok(bytes) => (self.parse_header(&bytes), Some(sha256_ref(&bytes))),
            Err(e) => {
                self.problem(HEADER, HEADER_FILE, None, format!("cannot read: {e}"));
                (None, None)
            }
        };

        // 2. Seal presence decides what a torn tail means.
        let seal_path = self.dir.join(SEAL_FILE);
        let sealed = seal_path.exists();
        let seal = if sealed {
            self.parse_seal(&seal_path)
        } else {
            None
        };

        // 3. Journal integrity.
        let journal = match fs::read(self.dir.join(JOURNAL_FILE)) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.problem(LINES, JOURNAL_FILE, None, format!("cannot read: {e}"));
                Vec::new()
            }
        };
        let (lines, tail) = split_lines(&journal);
        if let Some(tail) = tail {
            let line = lines.len() as u64 + 1;
            if sealed {
                self.journal_problem(
                    LINES,
                    line,
                    None,
                    format!("journal ends in a partial line ({} bytes without LF) in a sealed bundle: truncated", tail.len()),
                );
            } else {
                self.warnings.push(format!(
                    "{JOURNAL_FILE}:{line}: torn final line ({} bytes) ignored: the run crashed mid-append",
                    tail.len()
                ));
            }
        }
        let records = self.check_journal(&lines, header.as_ref(), header_digest.as_deref());
        let head = match lines.last() {
            Some(line) => Some(sha256_ref(line)),
            None => header_digest.clone(),
        };

        // 4. Semantics.
        let run_end = self.check_semantics(&records, header.as_ref(), sealed);

        // 5. Files on disk.
        let files = match list_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                self.problem(UNLISTED, ".", None, format!("cannot list the bundle: {e}"));
                Vec::new()
            }
        };
        self.check_blobs(&records, &files, sealed);

        // 6. Seal.
        if let Some(seal) = &seal {
            self.check_seal(
                seal,
                &files,
                header.as_ref(),
                lines.len() as u64,
                head.as_deref(),
                run_end,
            );
        } else if !sealed {
            let why = "no seal.json: the run is unfinished or crashed".to_string();
            for check in [SEAL, SUBJECTS, UNLISTED] {
                self.skipped.insert(check, why.clone());
            }
            if files.iter().any(|f| {
                f.rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with(TEMP_PREFIX))
            }) {
                self.warnings
                    .push("temporary files left by an interrupted write".to_string());
            }
        }

        // 7. Secrets.
        let mut secrets = Vec::new();
        if options.scan_secrets.is_empty() && !options.scan_patterns {
            self.skipped.insert(SECRETS, "not requested".to_string());
        } else {
            let redactor = Redactor::new(&options.scan_secrets);
            for weak in redactor.weak_secrets() {
                self.warnings.push(format!(
                    "secret {weak} is shorter than {} bytes: not scanned for",
                    super::redact::MIN_SECRET_LEN
                ));
            }
            let (found, errors) = scan_files(&self.dir, &files, &redactor, options.scan_patterns);
            for error in errors {
                self.problem(SECRETS, ".", None, format!("cannot scan {error}"));
            }
            self.details.insert(
                SECRETS,
                format!(
                    "{} files scanned for {} secrets{}: {} matches",
                    files.len(),
                    redactor.names().len(),
                    if options.scan_patterns {
                        " and credential patterns"
                    } else {
                        ""
                    },
                    found.len()
                ),
            );
            secrets = found;
        }

        self.finish(header, sealed, records.len() as u64, run_end, secrets)
    }

    fn parse_header(&mut self, bytes: &[u8]) -> Option<Header> {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                self.problem(HEADER, HEADER_FILE, None, format!("not JSON: {e}"));
                return None;
            }
        };
        if value.get("format").and_then(Value::as_str) != Some("runproof-bundle") {
            self.problem(
                HEADER,
                HEADER_FILE,
                None,
                "format is not \"runproof-bundle\"",
            );
            return None;
        }
        match value.get("v").and_then(Value::as_u64) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            other => {
                self.problem(
                    HEADER,
                    HEADER_FILE,
                    None,
                    format!("unknown format version {other:?}"),
                );
                return None;
            }
        }
        match serde_json::from_value::<Header>(value) {
            Ok(header) => {
                self.details.insert(
                    HEADER,
                    format!(
                        "v{} {} bundle, source {}",
                        header.v,
                        kind_name(header.kind),
                        header.source.name
                    ),
                );
                Some(header)
            }
            Err(e) => {
                self.problem(
                    HEADER,
                    HEADER_FILE,
                    None,
                    format!("missing or invalid fields: {e}"),
                );
                None
            }
        }
    }

    fn parse_seal(&mut self, path: &Path) -> Option<Seal> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.problem(SEAL, SEAL_FILE, None, format!("cannot read: {e}"));
                return None;
            }
        };
        match serde_json::from_slice::<Seal>(&bytes) {
            Ok(seal) => Some(seal),
            Err(e) => {
                self.problem(SEAL, SEAL_FILE, None, format!("not a runproof seal: {e}"));
                None
            }
        }
    }

    /// Parses every line and checks seq, chain, run id and mono_ns.
    /// Returns the parsed records with their 1-based line numbers.
    fn check_journal(
        &mut self,
        lines: &[&[u8]],
        header: Option<&Header>,
        header_digest: Option<&str>,
    ) -> Vec<(u64, Record)> {
        let mut records = Vec::with_capacity(lines.len());
        let mut prev: Option<String> = header_digest.map(str::to_string);
        let mut last_mono: Option<u64> = None;
        let mut last_t: Option<jiff::Timestamp> = None;
        let mut warned_clock = false;
        // After a gap, expectations resync to the seq found, so one removed
        // line is one problem, not one per following line.
        let mut expected_seq = 0u64;
        for (index, line) in lines.iter().enumerate() {
            let line_no = index as u64 + 1;
            let digest = sha256_ref(line);
            match serde_json::from_slice::<Record>(line) {
                Err(e) => {
                    self.journal_problem(
                        RECORDS,
                        line_no,
                        None,
                        format!("not a journal record: {e}"),
                    );
                    expected_seq += 1;
                }
                Ok(record) => {
                    let at = Some(record.seq);
                    if record.v != FORMAT_VERSION {
                        self.journal_problem(
                            RECORDS,
                            line_no,
                            at,
                            format!("unknown record version {}", record.v),
                        );
                    }
                    if record.seq != expected_seq {
                        self.journal_problem(
                            SEQ,
                            line_no,
                            at,
                            format!("seq {} where {expected_seq} was expected (a record removed, added or moved)", record.seq),
                        );
                    }
                    expected_seq = record.seq.saturating_add(1);
                    match &prev {
                        Some(p) if *p == record.prev => {}
                        Some(_) if index == 0 => {
                            self.journal_problem(
                                CHAIN,
                                line_no,
                                at,
                                "prev does not match the digest of runproof.json",
                            );
                        }
                        Some(_) => self.journal_problem(
                            CHAIN,
                            line_no,
                            at,
                            format!("prev does not match the digest of line {index}"),
                        ),
                        None => {}
                    }
                    if let Some(h) = header {
                        if record.run != h.run_id {
                            self.journal_problem(
                                RUN_ID,
                                line_no,
                                at,
                                "run differs from the header's run_id",
                            );
                        }
                    }
                    if let Some(last) = last_mono {
                        if record.mono_ns <= last {
                            self.journal_problem(
                                MONO,
                                line_no,
                                at,
                                format!("mono_ns {} not after {last}", record.mono_ns),
                            );
                        }
                    }
                    last_mono = Some(record.mono_ns);
                    match record.t.parse::<jiff::Timestamp>() {
                        Ok(t) => {
                            if last_t.is_some_and(|last| t < last) && !warned_clock {
                                warned_clock = true;
                                self.warnings
                                    .push(format!("{JOURNAL_FILE}:{line_no}: wall clock went backwards (t is self-asserted)"));
                            }
                            last_t = Some(t);
                        }
                        Err(_) => self.journal_problem(
                            RECORDS,
                            line_no,
                            at,
                            "t is not an RFC 3339 timestamp",
                        ),
                    }
                    records.push((line_no, record));
                }
            }
            prev = Some(digest);
        }
        let n = lines.len();
        self.details.insert(LINES, format!("{n} complete lines"));
        self.details
            .insert(RECORDS, format!("{} records parse", records.len()));
        self.details
            .insert(SEQ, format!("0..{} contiguous", n.saturating_sub(1)));
        self.details.insert(
            CHAIN,
            "every prev matches; record 0 chains to runproof.json".to_string(),
        );
        self.details
            .insert(RUN_ID, "every record belongs to this run".to_string());
        self.details.insert(MONO, "strictly increasing".to_string());
        records
    }

    /// Replays the journal per step id (sweeps interleave steps). Returns the
    /// run.end verdict and counts, if any.
    fn check_semantics(
        &mut self,
        records: &[(u64, Record)],
        header: Option<&Header>,
        sealed: bool,
    ) -> Option<RunVerdict> {
        let mut steps: BTreeMap<String, StepState> = BTreeMap::new();
        let mut planned: Vec<String> = Vec::new();
        let mut run_start_seen = false;
        let mut run_end: Option<(RunVerdict, BTreeMap<String, u32>)> = None;
        let mut verdict_counts: BTreeMap<&'static str, u32> = BTreeMap::new();
        let mut escalations = 0u32;
        let mut attempts_total = 0u32;

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
            if let Some(step) = record.event.step() {
                if run_start_seen && steps.get(step).is_none_or(|s| s.planned.is_none()) {
                    self.journal_problem(
                        STEPS,
                        line,
                        at,
                        format!("step {step:?} was not announced in run.start"),
                    );
                }
            }
            match &record.event {
                Event::RunStart { steps: plan, .. } => {
                    if run_start_seen {
                        self.journal_problem(STEPS, line, at, "second run.start");
                    } else if seq != 0 {
                        self.journal_problem(STEPS, line, at, "run.start is not the first record");
                    }
                    run_start_seen = true;
                    for p in plan {
                        let state = steps.entry(p.id.clone()).or_default();
                        if state.planned.is_some() {
                            self.journal_problem(
                                STEPS,
                                line,
                                at,
                                format!("step {:?} planned twice", p.id),
                            );
                        }
                        state.planned = Some(p.max_attempts);
                        planned.push(p.id.clone());
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
                Event::Backoff {
                    step,
                    after_attempt,
                    ..
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
                        None
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
                    ..
                } => {
                    *verdict_counts.entry(verdict.as_str()).or_default() += 1;
                    let state = steps.entry(step.clone()).or_default();
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
                    match verdict {
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
                        // Counts name step verdicts; compare those we know.
                        let known: Vec<&str> = [
                            StepVerdict::Pass,
                            StepVerdict::Escalated,
                            StepVerdict::Blocked,
                            StepVerdict::Skipped,
                            StepVerdict::Interrupted,
                        ]
                        .iter()
                        .map(|v| v.as_str())
                        .collect();
                        if counts.keys().any(|k| known.contains(&k.as_str())) {
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

        let counts: Vec<String> = verdict_counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        self.details.insert(
            STEPS,
            format!(
                "{} planned, {} ended ({})",
                planned.len(),
                verdict_counts.values().sum::<u32>(),
                counts.join(", ")
            ),
        );
        self.details.insert(
            ATTEMPTS,
            format!("{attempts_total} attempts, each started and ended within policy"),
        );
        self.details.insert(
            ESCALATIONS,
            format!("{escalations} escalation records, one per escalated step"),
        );
        self.details.insert(
            COMPLETE,
            "every planned step ended; run.end present".to_string(),
        );
        run_end.map(|(v, _)| v)
    }

    /// Every referenced blob exists and matches; every file under `blobs/`
    /// is named by its digest.
    fn check_blobs(&mut self, records: &[(u64, Record)], files: &[String], sealed: bool) {
        let mut referenced: BTreeMap<String, (u64, u64, Option<u64>)> = BTreeMap::new();
        for (line, record) in records {
            let refs: Vec<(&str, Option<u64>)> = match &record.event {
                Event::AttemptEnd { blobs, .. } | Event::Delivery { blobs, .. } => blobs
                    .iter()
                    .map(|b| (b.digest.as_str(), Some(b.size)))
                    .collect(),
                Event::Escalation(e) => e
                    .evidence
                    .iter()
                    .filter(|d| d.starts_with("sha256:"))
                    .map(|d| (d.as_str(), None))
                    .collect(),
                _ => Vec::new(),
            };
            for (digest, size) in refs {
                let Some(hex) = digest.strip_prefix("sha256:").filter(|h| is_sha256_hex(h)) else {
                    self.journal_problem(
                        BLOBS,
                        *line,
                        Some(record.seq),
                        format!("blob digest {digest:?} is not sha256:<hex>"),
                    );
                    continue;
                };
                let entry = referenced
                    .entry(hex.to_string())
                    .or_insert((*line, record.seq, size));
                if let (Some(a), Some(b)) = (entry.2, size) {
                    if a != b {
                        self.journal_problem(
                            BLOBS,
                            *line,
                            Some(record.seq),
                            format!("blob {hex} referenced with two sizes"),
                        );
                    }
                }
            }
        }
        let present: BTreeSet<&str> = files
            .iter()
            .filter_map(|f| f.strip_prefix(BLOB_DIR).and_then(|r| r.strip_prefix('/')))
            .collect();
        let mut checked = 0usize;
        for (hex, (line, seq, size)) in &referenced {
            let name = format!("{BLOB_DIR}/{hex}");
            if !present.contains(hex.as_str()) {
                self.journal_problem(
                    BLOBS,
                    *line,
                    Some(*seq),
                    format!("references {name}, which does not exist"),
                );
                continue;
            }
            checked += 1;
            match sha256_file(&self.dir.join(&name)) {
                Err(e) => self.problem(BLOBS, &name, None, format!("cannot read: {e}")),
                Ok((actual, actual_size)) => {
                    if actual != *hex {
                        self.problem(BLOBS, &name, None, format!("content does not match its name (referenced at line {line}, seq {seq})"));
                    }
                    if let Some(size) = size {
                        if *size != actual_size {
                            self.problem(
                                BLOBS,
                                &name,
                                None,
                                format!(
                                    "size {actual_size}, the record at line {line} says {size}"
                                ),
                            );
                        }
                    }
                }
            }
        }
        // Files under blobs/ that nobody references: named by digest?
        for file in files.iter().filter(|f| f.starts_with("blobs/")) {
            let leaf = file.rsplit('/').next().unwrap_or("");
            let hex = file
                .strip_prefix(BLOB_DIR)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or("");
            if referenced.contains_key(hex) {
                continue;
            }
            if leaf.starts_with(TEMP_PREFIX) && !sealed {
                continue;
            }
            if !is_sha256_hex(hex) {
                self.problem(BLOBS, file, None, "not a blob name (blobs/sha256/<hex>)");
                continue;
            }
            match sha256_file(&self.dir.join(file)) {
                Ok((actual, _)) if actual == hex => {
                    self.warnings
                        .push(format!("{file}: stored but not referenced by any record"));
                }
                Ok(_) => self.problem(BLOBS, file, None, "content does not match its name"),
                Err(e) => self.problem(BLOBS, file, None, format!("cannot read: {e}")),
            }
        }
        self.details.insert(
            BLOBS,
            format!(
                "{} referenced, {checked} present and matching",
                referenced.len()
            ),
        );
    }

    fn check_seal(
        &mut self,
        seal: &Seal,
        files: &[String],
        header: Option<&Header>,
        records: u64,
        head: Option<&str>,
        run_end: Option<RunVerdict>,
    ) {
        let p = &seal.predicate;
        if seal.statement_type != STATEMENT_TYPE {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                format!("_type is not {STATEMENT_TYPE}"),
            );
        }
        if seal.predicate_type != SEAL_PREDICATE_TYPE {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                format!("predicateType is not {SEAL_PREDICATE_TYPE}"),
            );
        }
        if p.records != records {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                format!("seal says {} records, the journal has {records}", p.records),
            );
        }
        if head.is_some_and(|h| h != p.head) {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                "seal head does not match the journal's last line",
            );
        }
        if let Some(h) = header {
            if p.run_id != h.run_id {
                self.problem(
                    SEAL,
                    SEAL_FILE,
                    None,
                    "seal run_id differs from the header's",
                );
            }
            if p.source.sha256 != h.source.sha256 {
                self.problem(
                    SEAL,
                    SEAL_FILE,
                    None,
                    "seal source sha256 differs from the header's",
                );
            }
            if p.source.name != h.source.name || p.source.path != h.source.path {
                self.problem(
                    SEAL,
                    SEAL_FILE,
                    None,
                    "seal source differs from the header's",
                );
            }
            if p.kind != h.kind {
                self.problem(SEAL, SEAL_FILE, None, "seal kind differs from the header's");
            }
        }
        if p.verdict != run_end {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                "seal verdict differs from the run.end record",
            );
        }
        self.details.insert(
            SEAL,
            format!("{} records, head {}", p.records, short(&p.head)),
        );

        let on_disk: BTreeSet<&str> = files.iter().map(String::as_str).collect();
        let mut listed: BTreeSet<&str> = BTreeSet::new();
        for subject in &seal.subject {
            let name = subject.name.as_str();
            if !listed.insert(name) {
                self.problem(SUBJECTS, SEAL_FILE, None, format!("{name} listed twice"));
                continue;
            }
            if name == SEAL_FILE
                || name
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
                || name.starts_with('/')
            {
                self.problem(
                    SUBJECTS,
                    SEAL_FILE,
                    None,
                    format!("subject {name:?} is not a bundle file name"),
                );
                continue;
            }
            if !on_disk.contains(name) {
                self.problem(SUBJECTS, name, None, "listed in the seal but missing");
                continue;
            }
            let path = self.dir.join(name);
            if !fs::symlink_metadata(&path)
                .map(|m| m.is_file())
                .unwrap_or(false)
            {
                self.problem(SUBJECTS, name, None, "not a regular file");
                continue;
            }
            match (sha256_file(&path), subject.sha256()) {
                (Ok((actual, _)), Some(expected)) if actual == expected => {}
                (Ok(_), Some(_)) => {
                    self.problem(SUBJECTS, name, None, "SHA-256 differs from the seal")
                }
                (Ok(_), None) => self.problem(
                    SUBJECTS,
                    SEAL_FILE,
                    None,
                    format!("{name} listed without a sha256 digest"),
                ),
                (Err(e), _) => self.problem(SUBJECTS, name, None, format!("cannot read: {e}")),
            }
        }
        self.details.insert(
            SUBJECTS,
            format!(
                "{} files listed, each present with its SHA-256",
                seal.subject.len()
            ),
        );
        for file in files {
            if file != SEAL_FILE && !listed.contains(file.as_str()) {
                self.problem(UNLISTED, file, None, "present but not listed in the seal");
            }
        }
        self.details
            .insert(UNLISTED, "no file outside the seal".to_string());
    }

    fn finish(
        mut self,
        header: Option<Header>,
        sealed: bool,
        records: u64,
        run_verdict: Option<RunVerdict>,
        secrets: Vec<SecretFinding>,
    ) -> VerifyReport {
        for (check, n) in &self.overflow {
            self.warnings
                .push(format!("{n} more {check} problems not shown"));
        }
        let checks = CHECK_ORDER
            .iter()
            .map(|&name| {
                let failures: Vec<&Problem> =
                    self.problems.iter().filter(|p| p.check == name).collect();
                if let Some(first) = failures.first() {
                    let more = failures.len() - 1 + self.overflow.get(name).copied().unwrap_or(0);
                    let detail = if more > 0 {
                        format!("{}: {} (+{more} more)", first.location(), first.message)
                    } else {
                        format!("{}: {}", first.location(), first.message)
                    };
                    Check {
                        name,
                        status: CheckStatus::Fail,
                        detail,
                    }
                } else if name == SECRETS && !secrets.is_empty() {
                    Check {
                        name,
                        status: CheckStatus::Fail,
                        detail: format!("{} matches (masked below)", secrets.len()),
                    }
                } else if let Some(why) = self.skipped.get(name) {
                    Check {
                        name,
                        status: CheckStatus::Skip,
                        detail: why.clone(),
                    }
                } else {
                    Check {
                        name,
                        status: CheckStatus::Pass,
                        detail: self.details.get(name).cloned().unwrap_or_default(),
                    }
                }
            })
            .collect();
        let verdict = if !self.problems.is_empty() {
            Verdict::Invalid
        } else if !secrets.is_empty() {
            Verdict::SecretsFound
        } else if !sealed {
            Verdict::Incomplete {
                valid_through_seq: records.checked_sub(1),
            }
        } else if run_verdict == Some(RunVerdict::Interrupted) {
            Verdict::VerifiedInterrupted
        } else {
            Verdict::Verified
        };
        VerifyReport {
            dir: self.dir,
            verdict,
            run_id: header.as_ref().map(|h| h.run_id.clone()),
            kind: header.as_ref().map(|h| h.kind),
            records,
            sealed,
            run_verdict,
            checks,
            problems: self.problems,
            secrets,
            warnings: self.warnings,
        }
    }
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

fn kind_name(kind: BundleKind) -> &'static str {
    match kind {
        BundleKind::Run => "run",
        BundleKind::Sweep => "sweep",
        BundleKind::Listen => "listen",
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn short(digest: &str) -> String {
    digest.chars().take(7 + 12).collect::<String>() + "…"
}
