//! The bundle's data formats: the `runproof.json` header and the journal
//! records of `events.jsonl`. Both the writer and `verify` use these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::{BlobRef, FailureClass, FailureRecord};

/// Bundle format version, in the header and in every record.
pub const FORMAT_VERSION: u32 = 1;

/// `runproof.json`: written first; record 0 chains to its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always `"runproof-bundle"`.
    pub format: String,
    pub v: u32,
    /// What produced the bundle.
    pub kind: BundleKind,
    /// UUIDv7.
    pub run_id: String,
    /// 128 random bits, hex: makes every bundle's chain unique.
    pub nonce: String,
    /// The runbook (or sweep input) this run executed.
    pub source: SourceRef,
    pub runproof_version: String,
    pub host: String,
    /// Who ran it: `--operator`, `RUNPROOF_OPERATOR`, the git identity or
    /// the user name (see `operator_source`).
    pub operator: String,
    /// Where `operator` came from: `--operator`, `RUNPROOF_OPERATOR`, `git`,
    /// `USER` (absent in bundles written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_source: Option<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// Names, never values, of the secrets this run could use.
    pub secrets: Vec<String>,
    /// Redaction classes applied before anything was written.
    pub redaction: Vec<String>,
    /// Version of the report renderers that wrote `summary.md` and
    /// `junit.xml`: when it is the verifier's own, `verify` regenerates the
    /// reports and compares them byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renderer: Option<String>,
    /// Every `[vars]` value the run used (after `--var`), redacted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// The vars of `vars` set by `--var` rather than the runbook.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars_overridden: Vec<String>,
    /// `SHA256:…` fingerprint of the key that signs the seal, when signed.
    /// A claim for `show`: `verify` trusts only `--allowed-signers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// `run --resume BUNDLE`: the earlier run this one continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<ResumedFrom>,
    /// `sweep --shard k/n`: the part of the sweep this bundle ran. `report`
    /// merges the shards of one sweep (same `source.sha256`) back together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRef>,
}

/// The part of a sharded sweep a bundle ran (`--shard index/count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    /// 1-based.
    pub index: u32,
    pub count: u32,
    /// `--only` globs the sweep was narrowed by before it was split: shards
    /// of different selections do not add up to one sweep.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
}

impl std::fmt::Display for ShardRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The earlier bundle a resumed run continues (`run --resume BUNDLE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumedFrom {
    /// The earlier run's `run_id`.
    pub run_id: String,
    /// Its seal's `head`: `sha256:<hex>` of its last journal line.
    pub seal_head: String,
    /// The bundle folder as given on the command line.
    pub path: String,
}

/// A step that passed in the earlier run and was not run again: the link
/// recorded in its `step.end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierPass {
    /// The earlier run's `run_id` (the header's `resumed_from.run_id`).
    pub run_id: String,
    /// The earlier seal's `head` (the header's `resumed_from.seal_head`).
    pub seal_head: String,
    /// Seq of the step's passing `step.end` in the earlier journal.
    pub seq: u64,
}

impl Header {
    /// A header for a new bundle: fresh UUIDv7 run id and 128-bit nonce, this
    /// host, the operator (`$USER`) and the current time.
    pub fn new(
        kind: BundleKind,
        source: SourceRef,
        secrets: Vec<String>,
        redaction: Vec<String>,
    ) -> Header {
        Header {
            format: "runproof-bundle".into(),
            v: FORMAT_VERSION,
            kind,
            run_id: uuid::Uuid::now_v7().to_string(),
            nonce: hex::encode(uuid::Uuid::new_v4().as_bytes()),
            source,
            runproof_version: env!("CARGO_PKG_VERSION").into(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            operator: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
            operator_source: None,
            started_at: format!("{:.3}", jiff::Timestamp::now()),
            secrets,
            redaction,
            renderer: None,
            vars: BTreeMap::new(),
            vars_overridden: Vec::new(),
            signing_key: None,
            resumed_from: None,
            shard: None,
        }
    }
}

/// What kind of activity a bundle records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleKind {
    Run,
    Sweep,
    Listen,
}

/// The input a bundle's run executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The runbook's `name` (or the sweep's).
    pub name: String,
    /// Path as given on the command line.
    pub path: String,
    /// SHA-256 hex of the file's bytes *as written* (for a sweep: of the
    /// sorted list of `<path> <sha256>` lines of its check files).
    pub sha256: String,
    /// The redacted copy kept in the bundle (`runbook.toml`) and its SHA-256,
    /// which differs from `sha256` when redaction changed a byte (absent in
    /// older bundles and for sweeps and listeners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyRef>,
}

/// A file of the bundle with the SHA-256 it was written with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRef {
    /// Path relative to the bundle.
    pub path: String,
    pub sha256: String,
}

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    /// Contiguous from 0.
    pub seq: u64,
    /// `sha256:<hex>` of the previous line's bytes (without the LF); for
    /// record 0, of `runproof.json`.
    pub prev: String,
    /// The header's `run_id`.
    pub run: String,
    /// Wall-clock RFC 3339 UTC with milliseconds.
    pub t: String,
    /// Nanoseconds since the run started, from a monotonic clock.
    pub mono_ns: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened. The engine emits these; the journal chains them; reports
/// and `verify` read them back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "run.start")]
    RunStart {
        /// Every step the run knows of, with its policy, in file order; or,
        /// when `planned` is given, the first of them (the rest follow in
        /// `plan` records).
        steps: Vec<PlannedStep>,
        /// How many steps the run announces in all, here and in `plan`
        /// records. Given by sweeps, which announce their checks in chunks so
        /// that no record grows with the number of checks; absent when
        /// `steps` is the whole plan (runbook runs, older bundles).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned: Option<u64>,
        on_escalate: String,
        #[serde(default)]
        allow_mutations: bool,
        /// `--allow-mutations=TAG,...`: only mutating steps with these tags ran.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mutation_tags: Vec<String>,
        /// `--only` filter, when given.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        only: Vec<String>,
    },
    /// More of the plan announced in `run.start`: the next steps, each
    /// announced before its first record. A sweep writes one per chunk of
    /// checks as it reaches them.
    #[serde(rename = "plan")]
    Plan { steps: Vec<PlannedStep> },
    #[serde(rename = "step.start")]
    StepStart {
        step: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// The target as written (templates unexpanded).
        target: String,
        /// The target with every var filled in and secrets masked: what was
        /// actually checked (absent in older bundles).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rendered: Option<String>,
        max_attempts: u32,
        timeout_ms: u64,
    },
    #[serde(rename = "attempt.start")]
    AttemptStart { step: String, attempt: u32, of: u32 },
    /// A step that passed on its first attempt, in one record: it stands for
    /// `step.start`, `attempt.start` (1 of `max_attempts`), a passing
    /// `attempt.end` and `step.end` (pass, 1 attempt), and `verify` checks it
    /// under the same policy. Written by sweeps only (a runbook run keeps the
    /// four records, so a crash mid-step shows the step as started); a first
    /// attempt that fails, is interrupted or sends several probes is written
    /// in the long form.
    #[serde(rename = "step.pass")]
    StepPass {
        step: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// The target as written (templates unexpanded).
        target: String,
        /// The target as checked, secrets masked; absent when it is
        /// `target` itself (nothing to fill in).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rendered: Option<String>,
        max_attempts: u32,
        timeout_ms: u64,
        /// The attempt's duration.
        duration_ms: f64,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        detail: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blobs: Vec<BlobRef>,
    },
    #[serde(rename = "attempt.end")]
    AttemptEnd {
        step: String,
        attempt: u32,
        of: u32,
        verdict: AttemptVerdict,
        duration_ms: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The failure's class, when the attempt did not pass.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<FailureRecord>,
        /// Why the remaining retries were skipped, when they were.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_retry: Option<String>,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        detail: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blobs: Vec<BlobRef>,
    },
    /// One request of an attempt that sends several (a `webhook` step's
    /// signed delivery and its rejection probes), written before the
    /// attempt's `attempt.end`.
    #[serde(rename = "probe")]
    Probe {
        step: String,
        attempt: u32,
        /// `signed`, `unsigned`, `bad_signature`, `stale`.
        probe: String,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        detail: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blobs: Vec<BlobRef>,
    },
    #[serde(rename = "backoff")]
    Backoff {
        step: String,
        after_attempt: u32,
        delay_ms: u64,
    },
    #[serde(rename = "escalation")]
    Escalation(Escalation),
    #[serde(rename = "step.end")]
    StepEnd {
        step: String,
        verdict: StepVerdict,
        attempts: u32,
        duration_ms: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Set when the step passed in the run this one resumes and was not
        /// run again (verdict `pass`, 0 attempts, no `step.start`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        earlier: Option<EarlierPass>,
    },
    /// A webhook delivery received by `runproof webhook listen` (or a
    /// `webhook-delivery` step): verdict, ids and latency, body as a blob.
    #[serde(rename = "delivery")]
    Delivery {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_id: Option<String>,
        /// `accepted` or `rejected`.
        verdict: String,
        /// The HTTP status the receiver answered.
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        detail: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blobs: Vec<BlobRef>,
    },
    /// One delivery attempt of a notification (`[notify]`): in a run, of a
    /// step's escalation, written after its `step.end`; in a sweep, of a
    /// check's change of state (`change`). Always before `run.end`. A failed
    /// notification never changes a verdict.
    #[serde(rename = "notify")]
    Notify {
        /// The escalated step, or the sweep's check, it is about.
        step: String,
        /// In a sweep: `failing` or `recovered`, the change it reports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<StateChange>,
        /// `slack`, `webhook` or `pagerduty`.
        target: String,
        /// 1-based, of `of`.
        attempt: u32,
        of: u32,
        /// Whether the receiver accepted it (a 2xx answer).
        delivered: bool,
        /// The HTTP status the receiver answered, when it answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Why the attempt failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        duration_ms: f64,
    },
    /// Evidence that could not be written (a blob on a full disk): what is
    /// missing and why. Written just before `run.end`, once per run that
    /// lost any; such a run ends with exit 3.
    #[serde(rename = "evidence.error")]
    EvidenceError { missing: Vec<MissingEvidence> },
    #[serde(rename = "run.end")]
    RunEnd {
        verdict: RunVerdict,
        /// Steps per verdict.
        counts: BTreeMap<String, u32>,
        duration_ms: f64,
        /// Why the run stopped before its end when no signal stopped it (a
        /// sweep whose check file changed under it); absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Event {
    /// The record type, as written in `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::RunStart { .. } => "run.start",
            Event::Plan { .. } => "plan",
            Event::StepStart { .. } => "step.start",
            Event::AttemptStart { .. } => "attempt.start",
            Event::StepPass { .. } => "step.pass",
            Event::AttemptEnd { .. } => "attempt.end",
            Event::Probe { .. } => "probe",
            Event::Backoff { .. } => "backoff",
            Event::Escalation(_) => "escalation",
            Event::StepEnd { .. } => "step.end",
            Event::Delivery { .. } => "delivery",
            Event::Notify { .. } => "notify",
            Event::EvidenceError { .. } => "evidence.error",
            Event::RunEnd { .. } => "run.end",
        }
    }

    /// The step the event belongs to, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::StepStart { step, .. }
            | Event::AttemptStart { step, .. }
            | Event::StepPass { step, .. }
            | Event::AttemptEnd { step, .. }
            | Event::Probe { step, .. }
            | Event::Backoff { step, .. }
            | Event::StepEnd { step, .. }
            | Event::Notify { step, .. } => Some(step),
            Event::Escalation(e) => Some(&e.step),
            Event::RunStart { .. }
            | Event::Plan { .. }
            | Event::RunEnd { .. }
            | Event::Delivery { .. }
            | Event::EvidenceError { .. } => None,
        }
    }
}

/// One piece of evidence that could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingEvidence {
    /// What it was: `stdout`, `response.body`, …
    pub role: String,
    /// Where it should have been, relative to the bundle folder.
    pub path: String,
    /// Its size in bytes (after redaction).
    pub size: u64,
    /// Why the write failed (`No space left on device (os error 28)`).
    pub cause: String,
}

/// A step as announced in `run.start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: String,
    pub kind: String,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mutating: bool,
    /// The backoff policy every `backoff` record of the step must follow
    /// (absent in bundles written before it was recorded: not checked then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<PlannedBackoff>,
    /// The step's or check's `tags` (a sweep's Prometheus labels come from
    /// them, also when `runproof report` rebuilds the metrics from the journal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A step's backoff policy as announced in `run.start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedBackoff {
    /// Delay before the first retry.
    pub initial_ms: u64,
    /// No delay is longer.
    pub max_ms: u64,
    /// Whether delays are randomised (then only the bound is checked).
    pub jitter: bool,
}

/// The record written when a step's last attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub step: String,
    /// The runbook's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Every attempt with its reason and the seq of its `attempt.end` record.
    pub attempts: Vec<AttemptSummary>,
    pub last_reason: String,
    /// The step's `hint`: what the operator should look at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Why retries were cut short, when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_skipped: Option<String>,
    /// Blobs of the attempts, for the operator to open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// What the step's `collect` commands gathered after its last failed
    /// attempt ("check the logs, then escalate with logs").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collected: Vec<Collected>,
}

/// One diagnostic command run for an escalation, and what it printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    /// The command as written (templates unexpanded).
    pub command: String,
    /// Its exit code, or why it gave none (timed out, could not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its output, named by role: `collected: <command>: stdout`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<BlobRef>,
}

/// One attempt as listed in an escalation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptSummary {
    pub attempt: u32,
    pub verdict: AttemptVerdict,
    pub reason: String,
    /// The failure's class (absent in bundles written before classes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    /// Seq of the `attempt.end` record.
    pub seq: u64,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptVerdict {
    Pass,
    Fail,
    /// The per-attempt timeout elapsed.
    Timeout,
    /// Cancelled by SIGINT/SIGTERM.
    Interrupted,
}

/// A sweep's journal step for sample `k` of a check (`--samples K`):
/// `ID#k`. Check ids cannot contain `#` (letters, digits, `_`, `-`).
pub fn sample_step_id(check: &str, k: u32) -> String {
    format!("{check}#{k}")
}

/// The check a sweep's journal step belongs to, and its sample number when
/// it is one (`ID#k`); a step without a sample is the check itself.
pub fn check_of_step(step: &str) -> (&str, Option<&str>) {
    match step.split_once('#') {
        Some((check, k)) => (check, Some(k)),
        None => (step, None),
    }
}

/// A sweep check's change of state between rounds, as `[notify]` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateChange {
    /// It failed, and had not been failing (or this is the first round).
    Failing,
    /// It passed after failing in an earlier round.
    Recovered,
}

impl StateChange {
    pub fn as_str(self) -> &'static str {
        match self {
            StateChange::Failing => "failing",
            StateChange::Recovered => "recovered",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepVerdict {
    Pass,
    /// Every allowed attempt failed; an escalation record precedes this.
    Escalated,
    /// Not run: a dependency escalated, was blocked or skipped.
    Blocked,
    /// Not run: mutating without `--allow-mutations`, filtered out by
    /// `--only`, or the run halted.
    Skipped,
    /// The run was interrupted during this step.
    Interrupted,
    /// A `confirm` step nobody confirmed: not an escalation (nobody is
    /// paged), but its dependents are blocked and the run does not pass.
    Unconfirmed,
}

impl StepVerdict {
    /// The lowercase name, as in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            StepVerdict::Pass => "pass",
            StepVerdict::Escalated => "escalated",
            StepVerdict::Blocked => "blocked",
            StepVerdict::Skipped => "skipped",
            StepVerdict::Interrupted => "interrupted",
            StepVerdict::Unconfirmed => "unconfirmed",
        }
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunVerdict {
    /// Every step that ran passed (skipped steps aside).
    Pass,
    /// At least one step escalated or was blocked.
    Escalated,
    /// `on_escalate = "halt"` stopped the run.
    Halted,
    /// SIGINT/SIGTERM.
    Interrupted,
    /// Nothing escalated, but a confirmation step was not confirmed.
    Unconfirmed,
}
