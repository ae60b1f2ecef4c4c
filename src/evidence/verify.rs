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

use super::read::{read_capped_line, CappedLine, MAX_LINE};
use super::redact::Redactor;
use super::scan::{scan_files, SecretFinding};
use super::seal::{
    list_files, sha256_file, sha256_ref, Seal, BLOB_DIR, HEADER_FILE, JOURNAL_FILE, SEAL_FILE,
    SEAL_PREDICATE_TYPE, STATEMENT_TYPE, TEMP_PREFIX,
};
use super::sign::{SIGNATURE_FILE, SIGNATURE_NAMESPACE};
use super::signers::AllowedSigners;
use crate::core::record::{
    check_of_step, AttemptVerdict, BundleKind, EarlierPass, Event, Header, PlannedBackoff, Record,
    ResumedFrom, RunVerdict, StateChange, StepVerdict, FORMAT_VERSION,
};

mod files;
use files::short;
mod qa;
mod render;
mod semantics;

/// What QA asks verify to check beyond integrity.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// `(name, value)` secrets to scan every file for, with their encodings.
    /// When non-empty, the scan also looks for credential shapes no value
    /// list would catch (unredacted auth headers and URL passwords, JWTs,
    /// private keys, `AKIA…`/`ghp_…`/`fm2_…` tokens).
    pub scan_secrets: Vec<(String, String)>,
    /// `--allowed-signers`: the seal must carry a valid signature by one of
    /// these keys (in namespace `runproof-seal`).
    pub allowed_signers: Option<AllowedSigners>,
    /// `--identity`: ...and the key must be listed for this principal.
    pub identity: Option<String>,
    /// `--runbook FILE`: the bundle must have run exactly this file.
    pub runbook: Option<RunbookFile>,
    /// `--expect-head`: the chain must end at this `sha256:<hex>`.
    pub expect_head: Option<String>,
    /// `--strict`: credential-shaped strings found without known values make
    /// the verdict SECRETS FOUND instead of warnings.
    pub strict_secrets: bool,
}

/// A runbook QA holds, to compare with the one a bundle ran.
#[derive(Debug, Clone)]
pub struct RunbookFile {
    /// As given on the command line, for messages.
    pub path: String,
    /// SHA-256 hex of its bytes.
    pub sha256: String,
}

/// Who signed the seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignerInfo {
    /// The principals of the allowed-signers line that holds the key (empty
    /// when no `--allowed-signers` was given: then the key is only named).
    pub principals: Vec<String>,
    /// `SHA256:…` of the signing key.
    pub fingerprint: String,
    /// True when the key was found in `--allowed-signers`.
    pub trusted: bool,
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
    /// Credential-shaped strings found by pattern (a JWT, a private-key
    /// block, `password=…`, `SECRET_KEY_BASE=<hex>`…), reported as warnings;
    /// under `--strict` they are in `secrets` instead.
    pub credential_warnings: Vec<SecretFinding>,
    /// The seal's signer, when `seal.json.sig` verified.
    pub signer: Option<SignerInfo>,
    /// `sha256:<hex>` of the journal's last line (the header's digest when
    /// the journal is empty): the chain's head.
    pub head: Option<String>,
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
const SIGNATURE: &str = "seal.signature";
const HEAD: &str = "head";
const RUNBOOK: &str = "runbook";
/// The reports' agreement with the journal: checked above this module (the
/// renderers live above `evidence`), reported under this name.
pub const REPORTS: &str = "reports";
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
    SIGNATURE,
    HEAD,
    RUNBOOK,
    REPORTS,
    SECRETS,
];

/// Problems kept per check; the rest are counted.
const MAX_PROBLEMS_PER_CHECK: usize = 25;

/// Why a path given to `verify` is not a bundle at all: a usage error, not
/// an invalid bundle.
#[derive(Debug, thiserror::Error)]
pub enum NotABundle {
    #[error("{0}: no such bundle (the path does not exist)")]
    Missing(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a bundle folder (it is not a directory)")]
    NotADirectory(PathBuf),
    #[error("{0}: not a bundle folder (it holds no {HEADER_FILE}, {JOURNAL_FILE} or {SEAL_FILE})")]
    NoBundleFiles(PathBuf),
}

/// Checks that `dir` is a bundle folder before [`verify_bundle`] judges it:
/// it exists, is a directory and holds at least one of the header, the
/// journal or the seal. A folder with some but not all of them is a bundle
/// that `verify` reports as invalid or incomplete; one with none of them was
/// never a bundle.
pub fn check_bundle_path(dir: &Path) -> Result<(), NotABundle> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NotABundle::Missing(dir.to_path_buf()))
        }
        Err(source) => {
            return Err(NotABundle::Unreadable {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_dir() {
        return Err(NotABundle::NotADirectory(dir.to_path_buf()));
    }
    let any = [HEADER_FILE, JOURNAL_FILE, SEAL_FILE]
        .iter()
        .any(|name| fs::symlink_metadata(dir.join(name)).is_ok());
    if any {
        Ok(())
    } else {
        Err(NotABundle::NoBundleFiles(dir.to_path_buf()))
    }
}

/// Verifies the bundle in `dir`. Never panics and never fails: every
/// problem, including unreadable files, is part of the report.
pub fn verify_bundle(dir: &Path, options: &VerifyOptions) -> VerifyReport {
    Verifier::new(dir).run(options)
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

        // 3 and 4. Journal integrity and semantics, one line at a time: a
        // journal of a million records is never held in memory.
        let problems_before = self.problems.len();
        let warnings_before = self.warnings.len();
        let mut chain = Chain::new(header_digest.clone());
        let mut replay = semantics::Replay::new(header.as_ref());
        let mut blob_refs = files::BlobRefs::default();
        let mut last_t: Option<String> = None;
        let mut torn: Option<(u64, u64)> = None;
        match fs::File::open(self.dir.join(JOURNAL_FILE)) {
            Err(e) => self.problem(LINES, JOURNAL_FILE, None, format!("cannot read: {e}")),
            Ok(file) => {
                let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
                let mut buf = Vec::new();
                loop {
                    let line_no = chain.lines + 1;
                    let read = match read_capped_line(&mut reader, &mut buf, MAX_LINE) {
                        Ok(read) => read,
                        Err(e) => {
                            self.journal_problem(LINES, line_no, None, format!("cannot read: {e}"));
                            break;
                        }
                    };
                    match read {
                        CappedLine::Eof => break,
                        CappedLine::Torn => {
                            torn = Some((line_no, buf.len() as u64));
                            break;
                        }
                        CappedLine::TooLong => match finish_long_line(&mut reader, &buf) {
                            Ok((digest, size, true)) => {
                                self.journal_problem(
                                    RECORDS,
                                    line_no,
                                    None,
                                    format!("a line of {size} bytes, over the {MAX_LINE}-byte cap: not read as a record"),
                                );
                                chain.skip(digest);
                            }
                            Ok((_, size, false)) => {
                                torn = Some((line_no, size));
                                break;
                            }
                            Err(e) => {
                                self.journal_problem(
                                    LINES,
                                    line_no,
                                    None,
                                    format!("cannot read: {e}"),
                                );
                                break;
                            }
                        },
                        CappedLine::Line => {
                            if let Some(record) = chain.line(&mut self, &buf, header.as_ref()) {
                                replay.record(&mut self, line_no, &record);
                                blob_refs.record(&mut self, line_no, &record);
                                last_t = Some(record.t);
                            }
                            // An old sweep's run.start is one line of every
                            // check: do not keep its room for the rest.
                            if buf.capacity() > 1 << 20 {
                                buf = Vec::new();
                            }
                        }
                    }
                }
            }
        }
        if let Some((line, size)) = torn {
            if sealed {
                self.journal_problem(
                    LINES,
                    line,
                    None,
                    format!("journal ends in a partial line ({size} bytes without LF) in a sealed bundle: truncated"),
                );
                // Reported first, as before the lines it follows were read.
                if let Some(p) = self.problems.pop() {
                    if p.check == LINES {
                        self.problems.insert(problems_before, p);
                    } else {
                        self.problems.push(p);
                    }
                }
            } else {
                self.warnings.insert(
                    warnings_before,
                    format!("{JOURNAL_FILE}:{line}: torn final line ({size} bytes) ignored: the run crashed mid-append"),
                );
            }
        }
        chain.finish(&mut self);
        let lines = chain.lines;
        let records = chain.records;
        let head = chain.prev.clone();
        let run_end_record = replay.finish(&mut self, sealed);
        let run_end = run_end_record.as_ref().map(|(v, _)| *v);
        // Problems in the order of the checks that found them (the journal's
        // own, then the steps', then the blobs'), as when they ran one after
        // the other over a journal held in memory.
        self.problems[problems_before..].sort_by_key(|p| phase(p.check));

        // 5. Files on disk.
        let files = match list_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                self.problem(UNLISTED, ".", None, format!("cannot list the bundle: {e}"));
                Vec::new()
            }
        };
        self.check_blobs(blob_refs, &files, sealed);

        // 6. Seal.
        if let Some(seal) = &seal {
            self.check_seal(
                seal,
                &files,
                header.as_ref(),
                lines,
                head.as_deref(),
                run_end,
            );
            self.check_seal_claims(
                seal,
                header.as_ref(),
                run_end_record.as_ref().map(|(_, c)| c),
                last_t.as_deref(),
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

        self.skipped.insert(
            REPORTS,
            "not checked here (runproof verify checks them)".to_string(),
        );

        // 6b. What QA brought: keys, the expected head, the runbook.
        let signer = self.check_signature(sealed, header.as_ref(), options);
        self.check_head(sealed, head.as_deref(), options);
        self.check_runbook(header.as_ref(), options);

        // 7. Secrets.
        let mut secrets = Vec::new();
        let mut credential_warnings = Vec::new();
        if options.scan_secrets.is_empty() {
            // Without values to look for, credential shapes are still worth
            // a look: a `set -x` trace or an env dump in a command's output.
            let (found, errors) = scan_files(&self.dir, &files, &Redactor::new(&[]), true);
            for error in errors {
                self.warnings.push(format!("cannot scan {error}"));
            }
            if options.strict_secrets {
                self.details.insert(
                    SECRETS,
                    format!(
                        "{} files scanned for credential patterns (--strict): {} matches",
                        files.len(),
                        found.len()
                    ),
                );
                secrets = found;
            } else {
                self.skipped.insert(
                    SECRETS,
                    format!(
                        "{} credential-shaped strings (warnings below; --strict fails on them)",
                        found.len()
                    ),
                );
                credential_warnings = found;
            }
        } else {
            let redactor = Redactor::new(&options.scan_secrets);
            for weak in redactor.weak_secrets() {
                self.warnings.push(format!(
                    "secret {weak} is shorter than {} bytes: not scanned for",
                    super::redact::MIN_SECRET_LEN
                ));
            }
            let (found, errors) = scan_files(&self.dir, &files, &redactor, true);
            for error in errors {
                self.problem(SECRETS, ".", None, format!("cannot scan {error}"));
            }
            self.details.insert(
                SECRETS,
                format!(
                    "{} files scanned for {} secrets{}: {} matches",
                    files.len(),
                    redactor.names().len(),
                    " and credential patterns",
                    found.len()
                ),
            );
            secrets = found;
        }

        let mut report = self.finish(header, sealed, records, run_end, secrets);
        report.signer = signer;
        report.head = head;
        report.credential_warnings = credential_warnings;
        report
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
            credential_warnings: Vec::new(),
            signer: None,
            head: None,
        }
    }
}

/// The journal's integrity, checked line by line: each line parses, seq
/// counts up, prev chains to the line before (line 1 to the header), the run
/// id is the header's, mono_ns increases.
struct Chain {
    /// `sha256:<hex>` of the last line (the header's digest before line 1).
    prev: Option<String>,
    /// Complete lines so far.
    lines: u64,
    /// Records that parsed.
    records: u64,
    last_mono: Option<u64>,
    last_t: Option<jiff::Timestamp>,
    warned_clock: bool,
    // After a gap, expectations resync to the seq found, so one removed
    // line is one problem, not one per following line.
    expected_seq: u64,
}

impl Chain {
    fn new(header_digest: Option<String>) -> Self {
        Chain {
            prev: header_digest,
            lines: 0,
            records: 0,
            last_mono: None,
            last_t: None,
            warned_clock: false,
            expected_seq: 0,
        }
    }

    /// Checks the next complete line; returns its record if it parses.
    fn line(&mut self, v: &mut Verifier, line: &[u8], header: Option<&Header>) -> Option<Record> {
        let index = self.lines;
        let line_no = index + 1;
        self.lines += 1;
        let mut parsed = None;
        let digest = sha256_ref(line);
        match serde_json::from_slice::<Record>(line) {
            Err(e) => {
                v.journal_problem(RECORDS, line_no, None, format!("not a journal record: {e}"));
                self.expected_seq += 1;
            }
            Ok(record) => {
                let at = Some(record.seq);
                if record.v != FORMAT_VERSION {
                    v.journal_problem(
                        RECORDS,
                        line_no,
                        at,
                        format!("unknown record version {}", record.v),
                    );
                }
                if record.seq != self.expected_seq {
                    v.journal_problem(
                        SEQ,
                        line_no,
                        at,
                        format!(
                            "seq {} where {} was expected (a record removed, added or moved)",
                            record.seq, self.expected_seq
                        ),
                    );
                }
                self.expected_seq = record.seq.saturating_add(1);
                match &self.prev {
                    Some(p) if *p == record.prev => {}
                    Some(_) if index == 0 => {
                        v.journal_problem(
                            CHAIN,
                            line_no,
                            at,
                            "prev does not match the digest of runproof.json",
                        );
                    }
                    Some(_) => v.journal_problem(
                        CHAIN,
                        line_no,
                        at,
                        format!("prev does not match the digest of line {index}"),
                    ),
                    None => {}
                }
                if let Some(h) = header {
                    if record.run != h.run_id {
                        v.journal_problem(
                            RUN_ID,
                            line_no,
                            at,
                            "run differs from the header's run_id",
                        );
                    }
                }
                if let Some(last) = self.last_mono {
                    if record.mono_ns <= last {
                        v.journal_problem(
                            MONO,
                            line_no,
                            at,
                            format!("mono_ns {} not after {last}", record.mono_ns),
                        );
                    }
                }
                self.last_mono = Some(record.mono_ns);
                match record.t.parse::<jiff::Timestamp>() {
                    Ok(t) => {
                        if self.last_t.is_some_and(|last| t < last) && !self.warned_clock {
                            self.warned_clock = true;
                            v.warnings
                                .push(format!("{JOURNAL_FILE}:{line_no}: wall clock went backwards (t is self-asserted)"));
                        }
                        self.last_t = Some(t);
                    }
                    Err(_) => {
                        v.journal_problem(RECORDS, line_no, at, "t is not an RFC 3339 timestamp")
                    }
                }
                parsed = Some(record);
            }
        }
        self.prev = Some(digest);
        if parsed.is_some() {
            self.records += 1;
        }
        parsed
    }

    /// A line not read as a record (over the cap): it still links the chain.
    fn skip(&mut self, digest: String) {
        self.lines += 1;
        self.expected_seq += 1;
        self.prev = Some(digest);
    }

    fn finish(&self, v: &mut Verifier) {
        let n = self.lines;
        v.details.insert(LINES, format!("{n} complete lines"));
        v.details
            .insert(RECORDS, format!("{} records parse", self.records));
        v.details
            .insert(SEQ, format!("0..{} contiguous", n.saturating_sub(1)));
        v.details.insert(
            CHAIN,
            "every prev matches; record 0 chains to runproof.json".to_string(),
        );
        v.details
            .insert(RUN_ID, "every record belongs to this run".to_string());
        v.details.insert(MONO, "strictly increasing".to_string());
    }
}

/// The rest of a line over the cap, hashed without holding it: its digest
/// (`sha256:<hex>`), its size, and whether it ended in LF.
fn finish_long_line(
    reader: &mut impl std::io::BufRead,
    head: &[u8],
) -> std::io::Result<(String, u64, bool)> {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(head);
    let mut size = head.len() as u64;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok((String::new(), size, false));
        }
        let (part, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (&chunk[..at], true),
            None => (chunk, false),
        };
        hasher.update(part);
        size += part.len() as u64;
        let used = part.len() + usize::from(ended);
        reader.consume(used);
        if ended {
            return Ok((
                format!("sha256:{}", hex::encode(hasher.finalize())),
                size,
                true,
            ));
        }
    }
}

/// The order checks ran in when the journal was read whole: integrity, then
/// the replay, then the blobs.
fn phase(check: &str) -> u8 {
    match check {
        STEPS | ATTEMPTS | ESCALATIONS | COMPLETE => 1,
        BLOBS => 2,
        _ => 0,
    }
}

fn kind_name(kind: BundleKind) -> &'static str {
    match kind {
        BundleKind::Run => "run",
        BundleKind::Sweep => "sweep",
        BundleKind::Listen => "listen",
    }
}
