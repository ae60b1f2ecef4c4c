//! Round-trip tests for the evidence layer: write a realistic bundle with
//! [`BundleWriter`], then verify it as written and after each kind of damage.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Map;

use super::read::read_bundle;
use super::redact::Redactor;
use super::seal::{list_files, sha256_hex};
use super::verify::{verify_bundle, Verdict, VerifyOptions, VerifyReport};
use super::writer::{BundleWriter, SyncPolicy};
use crate::core::record::{
    AttemptSummary, AttemptVerdict, BundleKind, EarlierPass, Escalation, Event, Header,
    PlannedBackoff, PlannedStep, ResumedFrom, RunVerdict, SourceRef, StateChange, StepVerdict,
};
use crate::core::{BlobRef, BlobSink, FailureClass, FailureRecord};

const CANARY: &str = "canary-7f3e9a-T0KEN";

/// A redactor that knows [`CANARY`] as the secret `API_TOKEN`.
fn canary_redactor() -> Arc<Redactor> {
    Arc::new(Redactor::new(&[(
        "API_TOKEN".to_string(),
        CANARY.to_string(),
    )]))
}

/// How to deviate from the well-formed run.
#[derive(Default, Clone, Copy)]
struct Scenario {
    interrupted: bool,
    omit_escalation: bool,
    attempt_over_of: bool,
    unsealed: bool,
    /// Write the api step's `probe` record after its attempt has ended.
    probe_after_attempt: bool,
    /// The api step's backoff delay, in place of 200 ms (max is 1000 ms).
    backoff_delay_ms: Option<u64>,
    /// Write `notify` records (after db's `step.end`): for this step, with
    /// `delivered` and `status`.
    notify: Option<(&'static str, bool, Option<u16>)>,
    /// The bundle is a sweep's, and the `notify` record reports this change.
    sweep_change: Option<StateChange>,
}

fn header(kind: BundleKind, redactor: &Redactor) -> Header {
    Header {
        format: "runproof-bundle".to_string(),
        v: 1,
        kind,
        run_id: uuid::Uuid::now_v7().to_string(),
        nonce: sha256_hex(uuid::Uuid::new_v4().as_bytes())[..32].to_string(),
        source: SourceRef {
            name: "deploy-api".to_string(),
            path: "runbooks/deploy-api.toml".to_string(),
            sha256: sha256_hex(b"[runbook]\nname = \"deploy-api\"\n"),
            copy: None,
        },
        runproof_version: "0.1.0".to_string(),
        host: "ci-runner".to_string(),
        operator: "qa".to_string(),
        started_at: format!("{:.3}", jiff::Timestamp::now()),
        secrets: vec!["API_TOKEN".to_string()],
        redaction: redactor.classes(),
        operator_source: None,
        renderer: None,
        vars: Default::default(),
        vars_overridden: Vec::new(),
        signing_key: None,
        resumed_from: None,
        shard: None,
    }
}

/// A run's bundle under `root`, each record synced.
fn run_writer(root: &Path, redactor: Arc<Redactor>) -> BundleWriter {
    BundleWriter::create(
        root,
        header(BundleKind::Run, &redactor),
        redactor,
        SyncPolicy::EveryRecord,
    )
    .unwrap()
}

/// `run.end` with `verdict`, the steps per verdict in `counts`, and
/// `duration_ms`.
fn run_end(verdict: RunVerdict, counts: &[(&str, u32)], duration_ms: f64) -> Event {
    Event::RunEnd {
        verdict,
        counts: counts.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        duration_ms,
        reason: None,
    }
}

/// `run.start` of a run that plans `steps` (each as [`planned`]).
fn run_start(steps: &[&str]) -> Event {
    Event::RunStart {
        planned: None,
        steps: steps.iter().map(|id| planned(id)).collect(),
        on_escalate: "continue".to_string(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    }
}

fn planned(id: &str) -> PlannedStep {
    PlannedStep {
        id: id.to_string(),
        kind: "http".to_string(),
        max_attempts: 3,
        timeout_ms: 10_000,
        depends_on: Vec::new(),
        mutating: false,
        backoff: Some(PlannedBackoff {
            initial_ms: 100,
            max_ms: 1_000,
            jitter: true,
        }),
        tags: Vec::new(),
    }
}

fn step_start(step: &str) -> Event {
    Event::StepStart {
        step: step.to_string(),
        kind: "http".to_string(),
        title: None,
        target: "GET https://api.example/{{path}}".to_string(),
        rendered: None,
        max_attempts: 3,
        timeout_ms: 10_000,
    }
}

fn attempt_start(step: &str, attempt: u32) -> Event {
    Event::AttemptStart {
        step: step.to_string(),
        attempt,
        of: 3,
    }
}

fn attempt_end(step: &str, attempt: u32, verdict: AttemptVerdict, blobs: Vec<BlobRef>) -> Event {
    Event::AttemptEnd {
        step: step.to_string(),
        attempt,
        of: 3,
        verdict,
        duration_ms: 12.5,
        reason: (verdict != AttemptVerdict::Pass).then(|| "status 503, want 200".to_string()),
        failure: (verdict != AttemptVerdict::Pass).then_some(FailureRecord {
            class: FailureClass::Expectation,
        }),
        no_retry: None,
        detail: Map::new(),
        blobs,
    }
}

fn backoff(step: &str, after_attempt: u32) -> Event {
    Event::Backoff {
        step: step.to_string(),
        after_attempt,
        delay_ms: 200,
    }
}

fn step_end(step: &str, verdict: StepVerdict, attempts: u32) -> Event {
    Event::StepEnd {
        step: step.to_string(),
        verdict,
        attempts,
        duration_ms: 40.0,
        reason: None,
        earlier: None,
    }
}

/// Writes the reference run: `health` passes, `api` passes on attempt 3
/// after backoffs, `db` escalates after 3 attempts; a blob, reports, seal.
fn write_bundle(root: &Path, s: Scenario) -> PathBuf {
    let redactor = canary_redactor();
    let mut w = BundleWriter::create(
        root,
        header(
            if s.sweep_change.is_some() {
                BundleKind::Sweep
            } else {
                BundleKind::Run
            },
            &redactor,
        ),
        redactor,
        SyncPolicy::EveryRecord,
    )
    .expect("create bundle");
    w.append(&run_start(&["health", "api", "db"])).unwrap();

    let body = format!("{{\"ok\":true,\"echo\":\"Bearer {CANARY}\"}}");
    let blob = w
        .blobs()
        .put("response.body", body.as_bytes(), false)
        .unwrap();
    w.append(&step_start("health")).unwrap();
    w.append(&attempt_start("health", 1)).unwrap();
    w.append(&attempt_end("health", 1, AttemptVerdict::Pass, vec![blob]))
        .unwrap();
    w.append(&step_end("health", StepVerdict::Pass, 1)).unwrap();

    w.append(&step_start("api")).unwrap();
    w.append(&attempt_start("api", 1)).unwrap();
    let probe_blob = w
        .blobs()
        .put("unsigned.response.body", b"accepted", false)
        .unwrap();
    let probe = Event::Probe {
        step: "api".to_string(),
        attempt: 1,
        probe: "unsigned".to_string(),
        detail: Map::from_iter([("status".to_string(), serde_json::json!(200))]),
        blobs: vec![probe_blob],
    };
    if !s.probe_after_attempt {
        w.append(&probe).unwrap();
    }
    w.append(&attempt_end("api", 1, AttemptVerdict::Fail, vec![]))
        .unwrap();
    if s.probe_after_attempt {
        w.append(&probe).unwrap();
    }
    w.append(&match s.backoff_delay_ms {
        Some(delay_ms) => Event::Backoff {
            step: "api".to_string(),
            after_attempt: 1,
            delay_ms,
        },
        None => backoff("api", 1),
    })
    .unwrap();
    w.append(&attempt_start("api", 2)).unwrap();
    if s.interrupted {
        w.append(&attempt_end("api", 2, AttemptVerdict::Interrupted, vec![]))
            .unwrap();
        w.append(&step_end("api", StepVerdict::Interrupted, 2))
            .unwrap();
        w.append(&run_end(
            RunVerdict::Interrupted,
            &[("pass", 1), ("interrupted", 1)],
            100.0,
        ))
        .unwrap();
    } else {
        w.append(&attempt_end("api", 2, AttemptVerdict::Timeout, vec![]))
            .unwrap();
        w.append(&backoff("api", 2)).unwrap();
        w.append(&attempt_start("api", 3)).unwrap();
        w.append(&attempt_end("api", 3, AttemptVerdict::Pass, vec![]))
            .unwrap();
        w.append(&step_end("api", StepVerdict::Pass, 3)).unwrap();

        w.append(&step_start("db")).unwrap();
        let mut summaries = Vec::new();
        let attempts = if s.attempt_over_of { 4 } else { 3 };
        for attempt in 1..=attempts {
            if attempt > 1 {
                w.append(&backoff("db", attempt - 1)).unwrap();
            }
            w.append(&attempt_start("db", attempt)).unwrap();
            let seq = w
                .append(&attempt_end("db", attempt, AttemptVerdict::Fail, vec![]))
                .unwrap();
            summaries.push(AttemptSummary {
                attempt,
                verdict: AttemptVerdict::Fail,
                reason: "connection refused".to_string(),
                class: Some(FailureClass::Refused),
                seq,
            });
        }
        if !s.omit_escalation {
            w.append(&Event::Escalation(Escalation {
                step: "db".to_string(),
                owner: Some("platform-team".to_string()),
                attempts: summaries,
                last_reason: "connection refused".to_string(),
                hint: Some("check the database's security group".to_string()),
                retries_skipped: None,
                evidence: Vec::new(),
                collected: Vec::new(),
            }))
            .unwrap();
        }
        w.append(&step_end("db", StepVerdict::Escalated, attempts))
            .unwrap();
        if let Some((step, delivered, status)) = s.notify {
            w.append(&Event::Notify {
                step: step.to_string(),
                change: s.sweep_change,
                target: "pagerduty".to_string(),
                attempt: 1,
                of: 3,
                delivered,
                status,
                error: (!delivered).then(|| "the receiver answered HTTP 500".to_string()),
                duration_ms: 3.5,
            })
            .unwrap();
        }
        w.append(&run_end(
            RunVerdict::Escalated,
            &[("pass", 2), ("escalated", 1)],
            900.0,
        ))
        .unwrap();
    }
    w.write_file("runbook.toml", b"[runbook]\nname = \"deploy-api\"\n")
        .unwrap();
    w.write_file(
        "summary.md",
        format!("# deploy-api\n\ntoken seen: {CANARY}\n").as_bytes(),
    )
    .unwrap();
    if s.unsealed {
        let dir = w.dir().to_path_buf();
        drop(w);
        dir
    } else {
        w.seal().unwrap()
    }
}

fn verify(dir: &Path) -> VerifyReport {
    verify_bundle(dir, &VerifyOptions::default())
}

/// Verifies `dir` and fails with the report's text unless it is VERIFIED.
fn assert_verified(dir: &Path) -> VerifyReport {
    let report = verify(dir);
    assert_eq!(
        report.verdict,
        Verdict::Verified,
        "{}",
        report.render_text()
    );
    report
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for name in list_files(from).unwrap() {
        let target = to.join(&name);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(from.join(&name), target).unwrap();
    }
}

fn journal_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_journal(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(dir.join("events.jsonl"), text).unwrap();
}

fn assert_invalid_naming(report: &VerifyReport, file: &str, what: &str) {
    assert_eq!(
        report.verdict,
        Verdict::Invalid,
        "{what}: {}",
        report.render_text()
    );
    assert!(!report.is_valid());
    assert!(
        report.problems.iter().any(|p| p.file == file),
        "{what}: no problem names {file}:\n{}",
        report.render_text()
    );
}

#[test]
fn fresh_bundle_verifies() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(root.path(), Scenario::default());
    let report = assert_verified(&dir);
    assert!(report.is_valid());
    assert!(report.problems.is_empty());
    assert_eq!(report.records, 28);
    assert_eq!(report.run_verdict, Some(RunVerdict::Escalated));
    let text = report.render_text();
    assert!(text.starts_with("VERIFIED: run "), "{text}");
    assert!(text.contains("journal.chain"));
    let json = report.to_json();
    assert_eq!(json["verdict"]["verdict"], "verified");
    assert_eq!(json["valid"], true);

    // Layout: <root>/<name>/<stamp>-<run id>/ and the files we expect.
    assert_eq!(dir.parent().unwrap(), root.path().join("deploy-api"));
    let leaf = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        leaf.len() > 17 && leaf.as_bytes()[8] == b'T' && leaf.as_bytes()[15] == b'Z',
        "{leaf}"
    );
    let files = list_files(&dir).unwrap();
    for f in [
        "events.jsonl",
        "runproof.json",
        "runbook.toml",
        "seal.json",
        "summary.md",
    ] {
        assert!(files.contains(&f.to_string()), "{f} missing from {files:?}");
    }
    assert_eq!(
        files
            .iter()
            .filter(|f| f.starts_with("blobs/sha256/"))
            .count(),
        2
    );
}

#[test]
fn secrets_are_redacted_everywhere() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(root.path(), Scenario::default());
    for name in list_files(&dir).unwrap() {
        let bytes = fs::read(dir.join(&name)).unwrap();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "canary in {name}"
        );
    }
    let summary = fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("[REDACTED:API_TOKEN]"), "{summary}");
    // And the scan, with the canary and patterns, agrees.
    let options = VerifyOptions {
        scan_secrets: vec![("API_TOKEN".to_string(), CANARY.to_string())],
        ..Default::default()
    };
    let report = verify_bundle(&dir, &options);
    assert_eq!(
        report.verdict,
        Verdict::Verified,
        "{}",
        report.render_text()
    );
}

#[test]
fn one_changed_byte_in_any_file_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(root.path(), Scenario::default());
    let files = list_files(&dir).unwrap();
    assert!(files.len() >= 6);
    for name in &files {
        let len = fs::metadata(dir.join(name)).unwrap().len() as usize;
        for offset in [0, len / 2, len - 1] {
            let copy = root.path().join("tampered");
            let _ = fs::remove_dir_all(&copy);
            copy_dir(&dir, &copy);
            let mut bytes = fs::read(copy.join(name)).unwrap();
            bytes[offset] ^= 0x01;
            fs::write(copy.join(name), bytes).unwrap();
            let report = verify(&copy);
            assert_invalid_naming(&report, name, &format!("byte {offset} of {name}"));
        }
    }
}

#[test]
fn deleted_file_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(root.path(), Scenario::default());
    for name in list_files(&dir).unwrap() {
        let copy = root.path().join("deleted");
        let _ = fs::remove_dir_all(&copy);
        copy_dir(&dir, &copy);
        fs::remove_file(copy.join(&name)).unwrap();
        let report = verify(&copy);
        if name == "seal.json" {
            // Without its seal a bundle is indistinguishable from a crashed
            // run: never valid, reported as incomplete.
            assert!(
                matches!(report.verdict, Verdict::Incomplete { .. }),
                "{}",
                report.render_text()
            );
            assert!(!report.is_valid());
        } else {
            assert_invalid_naming(&report, &name, &format!("deleted {name}"));
        }
    }
}

#[test]
fn added_file_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(root.path(), Scenario::default());
    let content = b"planted";
    let blob = format!("blobs/sha256/{}", sha256_hex(content));
    for name in ["extra.txt", blob.as_str(), "reports/junit.xml"] {
        let copy = root.path().join("added");
        let _ = fs::remove_dir_all(&copy);
        copy_dir(&dir, &copy);
        fs::create_dir_all(copy.join(name).parent().unwrap()).unwrap();
        fs::write(copy.join(name), content).unwrap();
        let report = verify(&copy);
        assert_invalid_naming(&report, name, &format!("added {name}"));
        let problem = report.problems.iter().find(|p| p.file == name).unwrap();
        assert_eq!(problem.check, "seal.unlisted");
    }
}

#[test]
fn removed_swapped_and_truncated_journal_lines_are_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(root.path(), Scenario::default());
    let lines = journal_lines(&dir);

    // A line removed from the middle: line 5 now holds seq 5.
    let copy = root.path().join("removed");
    copy_dir(&dir, &copy);
    let mut removed = lines.clone();
    removed.remove(4);
    write_journal(&copy, &removed);
    let report = verify(&copy);
    assert_invalid_naming(&report, "events.jsonl", "line removed");
    assert!(report.problems.iter().any(|p| p.file == "events.jsonl"
        && p.line == Some(5)
        && p.seq == Some(5)
        && p.check == "journal.seq"));
    assert!(report
        .problems
        .iter()
        .any(|p| p.line == Some(5) && p.check == "journal.chain"));

    // The last line removed: only the seal can tell.
    let copy = root.path().join("removed-last");
    copy_dir(&dir, &copy);
    write_journal(&copy, &lines[..lines.len() - 1]);
    let report = verify(&copy);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(report
        .problems
        .iter()
        .any(|p| p.file == "seal.json" && p.message.contains("records")));

    // Two lines swapped.
    let copy = root.path().join("swapped");
    copy_dir(&dir, &copy);
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    write_journal(&copy, &swapped);
    let report = verify(&copy);
    assert_invalid_naming(&report, "events.jsonl", "lines swapped");
    assert!(report
        .problems
        .iter()
        .any(|p| p.line == Some(3) && p.seq == Some(3) && p.check == "journal.seq"));

    // Truncated mid-line in a sealed bundle.
    let copy = root.path().join("truncated");
    copy_dir(&dir, &copy);
    let bytes = fs::read(copy.join("events.jsonl")).unwrap();
    fs::write(copy.join("events.jsonl"), &bytes[..bytes.len() - 20]).unwrap();
    let report = verify(&copy);
    assert_invalid_naming(&report, "events.jsonl", "truncated");
    assert!(report
        .problems
        .iter()
        .any(|p| p.check == "journal.lines" && p.line == Some(lines.len() as u64)));
}

#[test]
fn unsealed_bundle_with_torn_tail_is_incomplete() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(
        root.path(),
        Scenario {
            unsealed: true,
            ..Scenario::default()
        },
    );
    assert!(!dir.join("seal.json").exists());
    let report = verify(&dir);
    assert_eq!(
        report.verdict,
        Verdict::Incomplete {
            valid_through_seq: Some(27)
        },
        "{}",
        report.render_text()
    );

    // A crash mid-append leaves a partial line.
    let mut bytes = fs::read(dir.join("events.jsonl")).unwrap();
    bytes.extend_from_slice(b"{\"v\":1,\"seq\":28,\"prev\":\"sha256:");
    fs::write(dir.join("events.jsonl"), &bytes).unwrap();
    let report = verify(&dir);
    assert_eq!(
        report.verdict,
        Verdict::Incomplete {
            valid_through_seq: Some(27)
        },
        "{}",
        report.render_text()
    );
    assert!(!report.is_valid());
    assert!(report.render_text().starts_with("INCOMPLETE"));
    assert!(report.warnings.iter().any(|w| w.contains("torn")));

    // Read back for `show`: the torn line is skipped.
    let bundle = read_bundle(&dir).unwrap();
    assert_eq!(bundle.records.len(), 28);
    assert!(bundle.torn_tail);
    assert!(bundle.seal.is_none());

    // Tampering in an unsealed bundle is still tampering.
    let mut lines = journal_lines(&dir);
    lines.pop();
    lines[3] = lines[3].replace("\"attempt\":1", "\"attempt\":2");
    write_journal(&dir, &lines);
    let report = verify(&dir);
    assert_invalid_naming(&report, "events.jsonl", "unsealed tamper");
}

#[test]
fn interrupted_run_verifies_as_interrupted() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(
        root.path(),
        Scenario {
            interrupted: true,
            ..Scenario::default()
        },
    );
    let report = verify(&dir);
    assert_eq!(
        report.verdict,
        Verdict::VerifiedInterrupted,
        "{}",
        report.render_text()
    );
    assert!(report.is_valid());
    assert!(report.render_text().starts_with("VERIFIED (interrupted)"));
}

#[test]
fn escalation_record_missing_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(
        root.path(),
        Scenario {
            omit_escalation: true,
            ..Scenario::default()
        },
    );
    let report = verify(&dir);
    assert_invalid_naming(&report, "events.jsonl", "no escalation");
    let problem = report
        .problems
        .iter()
        .find(|p| p.check == "escalations")
        .expect("escalation problem");
    // The db step.end is the second-to-last record.
    assert_eq!(problem.seq, Some(report.records - 2));
    assert_eq!(problem.line, Some(report.records - 1));
    assert!(problem.message.contains("\"db\""), "{}", problem.message);
}

#[test]
fn attempt_above_of_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(
        root.path(),
        Scenario {
            attempt_over_of: true,
            ..Scenario::default()
        },
    );
    let report = verify(&dir);
    assert_invalid_naming(&report, "events.jsonl", "attempt 4 of 3");
    assert!(
        report.problems.iter().any(|p| p.check == "attempts"
            && p.seq.is_some()
            && p.message.contains("exceeds of=3")),
        "{}",
        report.render_text()
    );
}

#[test]
fn backoff_delay_above_the_planned_max_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let at_max = write_bundle(
        root.path(),
        Scenario {
            backoff_delay_ms: Some(1_000),
            ..Scenario::default()
        },
    );
    assert!(
        verify(&at_max).is_valid(),
        "{}",
        verify(&at_max).render_text()
    );
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(
        root.path(),
        Scenario {
            backoff_delay_ms: Some(1_001),
            ..Scenario::default()
        },
    );
    let report = verify(&dir);
    assert_invalid_naming(
        &report,
        "events.jsonl",
        "1001 ms exceeds the step's max of 1000 ms",
    );
}

#[test]
fn probe_record_outside_its_attempt_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_bundle(
        root.path(),
        Scenario {
            probe_after_attempt: true,
            ..Scenario::default()
        },
    );
    let report = verify(&dir);
    assert_invalid_naming(
        &report,
        "events.jsonl",
        "probe for attempt 1 outside an attempt",
    );
}

#[test]
fn notify_records_of_an_escalated_step_verify() {
    let root = tempfile::tempdir().unwrap();
    for case in [
        ("db", false, Some(500)),
        ("db", true, Some(202)),
        ("db", false, None),
    ] {
        let dir = write_bundle(
            root.path(),
            Scenario {
                notify: Some(case),
                ..Scenario::default()
            },
        );
        let report = verify(&dir);
        assert_eq!(
            report.verdict,
            Verdict::Verified,
            "{case:?}: {}",
            report.render_text()
        );
    }
}

#[test]
fn notify_for_a_step_that_did_not_escalate_or_delivered_without_2xx_is_invalid() {
    for (case, what) in [
        (("api", true, Some(202)), "did not escalate"),
        (("db", true, Some(500)), "delivered with status"),
        (("db", true, None), "delivered with status"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let dir = write_bundle(
            root.path(),
            Scenario {
                notify: Some(case),
                ..Scenario::default()
            },
        );
        let report = verify(&dir);
        assert_invalid_naming(&report, "events.jsonl", &format!("{case:?}"));
        assert!(
            report.render_text().contains(what),
            "{case:?}: {}",
            report.render_text()
        );
    }
}

#[test]
fn a_sweeps_change_notifications_must_match_the_checks_outcome() {
    // In the scenario `api` passes after retries and `db` escalates.
    for (check, change, valid) in [
        ("db", StateChange::Failing, true),
        ("api", StateChange::Recovered, true),
        ("*", StateChange::Failing, true),
        ("db", StateChange::Recovered, false),
        ("api", StateChange::Failing, false),
        ("gone", StateChange::Recovered, false),
    ] {
        let root = tempfile::tempdir().unwrap();
        let dir = write_bundle(
            root.path(),
            Scenario {
                notify: Some((check, true, Some(202))),
                sweep_change: Some(change),
                ..Scenario::default()
            },
        );
        let report = verify(&dir);
        let what = format!("{check} {change:?}");
        if valid {
            assert_eq!(
                report.verdict,
                Verdict::Verified,
                "{what}: {}",
                report.render_text()
            );
        } else {
            assert_invalid_naming(&report, "events.jsonl", &what);
            assert!(
                report
                    .render_text()
                    .contains(&format!("\"{}\" notification", change.as_str())),
                "{what}: {}",
                report.render_text()
            );
        }
    }
}

#[test]
fn secret_scan_finds_planted_canary_without_printing_it() {
    let root = tempfile::tempdir().unwrap();
    // A writer that does not know the canary: it leaks.
    let leak = "leaked-Pr0d-Secret-42";
    let redactor = Arc::new(Redactor::default());
    let mut w = run_writer(root.path(), redactor);
    w.append(&Event::RunStart {
        planned: None,
        steps: Vec::new(),
        on_escalate: "continue".to_string(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    })
    .unwrap();
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("user:{leak}"));
    w.blobs()
        .put("stdout", format!("Basic {encoded}\n").as_bytes(), false)
        .unwrap();
    w.append(&run_end(RunVerdict::Pass, &[], 1.0)).unwrap();
    w.write_file(
        "summary.md",
        format!("line one\nfound {leak} here\n").as_bytes(),
    )
    .unwrap();
    let dir = w.seal().unwrap();

    assert_eq!(verify(&dir).verdict, Verdict::Verified);
    let options = VerifyOptions {
        scan_secrets: vec![("PROD_SECRET".to_string(), leak.to_string())],
        ..Default::default()
    };
    let report = verify_bundle(&dir, &options);
    assert_eq!(
        report.verdict,
        Verdict::SecretsFound,
        "{}",
        report.render_text()
    );
    assert!(!report.is_valid());
    let in_summary = report
        .secrets
        .iter()
        .find(|s| s.file == "summary.md")
        .expect("summary finding");
    assert_eq!(in_summary.line, 2);
    assert!(in_summary.preview.starts_with("PROD"));
    assert!(
        report
            .secrets
            .iter()
            .any(|s| s.file.starts_with("blobs/sha256/")),
        "base64 form not found"
    );
    let text = report.render_text();
    let json = report.to_json().to_string();
    for out in [&text, &json] {
        assert!(!out.contains(leak));
        assert!(!out.contains(&encoded));
        assert!(!out.contains("PROD_SECRET"), "the name is masked too");
    }
    assert!(text.starts_with("SECRETS FOUND"));
}

#[test]
fn sweep_with_interleaved_steps_and_listen_deliveries_verify() {
    let root = tempfile::tempdir().unwrap();
    let redactor = Arc::new(Redactor::default());
    let mut w = BundleWriter::create(
        root.path(),
        header(BundleKind::Sweep, &redactor),
        redactor.clone(),
        SyncPolicy::Batched(4),
    )
    .unwrap();
    w.append(&run_start(&["a", "b"])).unwrap();
    for e in [
        step_start("a"),
        step_start("b"),
        attempt_start("a", 1),
        attempt_start("b", 1),
        attempt_end("b", 1, AttemptVerdict::Pass, vec![]),
        step_end("b", StepVerdict::Pass, 1),
        attempt_end("a", 1, AttemptVerdict::Fail, vec![]),
        backoff("a", 1),
        attempt_start("a", 2),
        attempt_end("a", 2, AttemptVerdict::Pass, vec![]),
        step_end("a", StepVerdict::Pass, 2),
        // Sweeps count per check with their own verdicts.
        run_end(RunVerdict::Pass, &[("pass", 1), ("regressed", 1)], 5.0),
    ] {
        w.append(&e).unwrap();
    }
    let dir = w.seal().unwrap();
    assert_verified(&dir);

    let mut w = BundleWriter::create(
        root.path(),
        header(BundleKind::Listen, &redactor),
        redactor,
        SyncPolicy::EveryRecord,
    )
    .unwrap();
    let body = w
        .blobs()
        .put("request.body", b"{\"event\":\"message_created\"}", false)
        .unwrap();
    w.append(&Event::Delivery {
        delivery_id: Some("d-1".to_string()),
        verdict: "accepted".to_string(),
        status: 200,
        reason: None,
        detail: Map::new(),
        blobs: vec![body],
    })
    .unwrap();
    let dir = w.seal().unwrap();
    assert_verified(&dir);
}

#[test]
fn batched_writer_chains_twenty_thousand_records() {
    let root = tempfile::tempdir().unwrap();
    let redactor = canary_redactor();
    let mut h = header(BundleKind::Sweep, &redactor);
    h.source.name = "sweep".to_string();
    let mut w = BundleWriter::create(root.path(), h, redactor, SyncPolicy::Batched(1000)).unwrap();
    let n = 20_000u32;
    let steps: Vec<PlannedStep> = (0..n / 4).map(|i| planned(&format!("check-{i}"))).collect();
    w.append(&Event::RunStart {
        planned: None,
        steps,
        on_escalate: "continue".to_string(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    })
    .unwrap();
    for i in 0..n / 4 {
        let id = format!("check-{i}");
        w.append(&step_start(&id)).unwrap();
        w.append(&attempt_start(&id, 1)).unwrap();
        w.append(&attempt_end(&id, 1, AttemptVerdict::Pass, vec![]))
            .unwrap();
        w.append(&step_end(&id, StepVerdict::Pass, 1)).unwrap();
    }
    // Speed is not asserted here (a shared CI machine makes any floor flaky);
    // bench/sweep.sh measures whole sweeps, bundle writing included.
    assert_eq!(w.records(), u64::from(n) + 1);
    w.append(&run_end(RunVerdict::Pass, &[("pass", n / 4)], 1.0))
        .unwrap();
    let head = w.head().to_string();
    let dir = w.seal().unwrap();
    assert_verified(&dir);
    let bundle = read_bundle(&dir).unwrap();
    assert_eq!(bundle.seal.unwrap().predicate.head, head);
}

#[test]
fn blob_store_dedups_under_concurrency() {
    let root = tempfile::tempdir().unwrap();
    let redactor = canary_redactor();
    let w = run_writer(root.path(), redactor);
    let store = w.blobs();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let same = store
                    .put("stdout", format!("shared {CANARY}").as_bytes(), false)
                    .unwrap();
                let own = store
                    .put("stdout", format!("own {i}").as_bytes(), true)
                    .unwrap();
                (same, own)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|(same, _)| same == &results[0].0));
    assert!(results.iter().all(|(_, own)| own.truncated));
    let blobs: Vec<String> = list_files(w.dir())
        .unwrap()
        .into_iter()
        .filter(|f| f.starts_with("blobs/"))
        .collect();
    assert_eq!(blobs.len(), 9, "{blobs:?}");
    let shared = fs::read(
        w.dir()
            .join(format!("blobs/sha256/{}", &results[0].0.digest[7..])),
    )
    .unwrap();
    assert_eq!(shared, b"shared [REDACTED:API_TOKEN]");
    assert_eq!(results[0].0.size, shared.len() as u64);
}

#[test]
fn create_refuses_unsafe_names_and_reuse() {
    let root = tempfile::tempdir().unwrap();
    let redactor = Arc::new(Redactor::default());
    for bad in ["", "..", "../up", "a/b", ".hidden", "sp ace"] {
        let mut h = header(BundleKind::Run, &redactor);
        h.source.name = bad.to_string();
        assert!(
            BundleWriter::create(root.path(), h, redactor.clone(), SyncPolicy::EveryRecord)
                .is_err(),
            "{bad:?} accepted"
        );
    }
    let h = header(BundleKind::Run, &redactor);
    let first = BundleWriter::create(
        root.path(),
        h.clone(),
        redactor.clone(),
        SyncPolicy::EveryRecord,
    )
    .unwrap();
    let second = BundleWriter::create(root.path(), h, redactor.clone(), SyncPolicy::EveryRecord);
    assert!(second.is_err(), "two runs shared a bundle");
    let mut w = first;
    assert!(w.write_file("../escape.md", b"x").is_err());
    assert!(w.write_file("seal.json", b"x").is_err());
    assert!(w.write_file("events.jsonl", b"x").is_err());
    w.write_file("reports/junit.xml", b"<testsuites/>").unwrap();
    assert_eq!(w.records(), 0);
    let header_digest = format!(
        "sha256:{}",
        sha256_hex(&fs::read(w.dir().join("runproof.json")).unwrap())
    );
    assert_eq!(w.head(), header_digest);
    let seq = w
        .append(&Event::RunStart {
            planned: None,
            steps: Vec::new(),
            on_escalate: "halt".to_string(),
            allow_mutations: false,
            mutation_tags: Vec::new(),
            only: Vec::new(),
        })
        .unwrap();
    assert_eq!(seq, 0);
    let bundle = read_bundle(w.dir()).unwrap();
    assert_eq!(bundle.records[0].prev, header_digest);
    assert!(w.checkpoint().contains("seq=0"));
}

/// A resumed run: `health` passed in the earlier run (a `step.end` pass
/// with 0 attempts and `link`, unless `health_ran`), `db` passes now.
fn write_resumed(
    root: &Path,
    resumed_from: Option<ResumedFrom>,
    link: Option<EarlierPass>,
    health_ran: bool,
) -> PathBuf {
    let redactor = Arc::new(Redactor::new(&[]));
    let mut header = header(BundleKind::Run, &redactor);
    header.resumed_from = resumed_from;
    let mut w = BundleWriter::create(root, header, redactor, SyncPolicy::EveryRecord).unwrap();
    w.append(&run_start(&["health", "db"])).unwrap();
    let mut attempts = 0;
    if health_ran {
        w.append(&step_start("health")).unwrap();
        w.append(&attempt_start("health", 1)).unwrap();
        w.append(&attempt_end("health", 1, AttemptVerdict::Pass, vec![]))
            .unwrap();
        attempts = 1;
    }
    w.append(&Event::StepEnd {
        step: "health".to_string(),
        verdict: StepVerdict::Pass,
        attempts,
        duration_ms: 0.0,
        reason: Some("passed earlier".to_string()),
        earlier: link,
    })
    .unwrap();
    w.append(&step_start("db")).unwrap();
    w.append(&attempt_start("db", 1)).unwrap();
    w.append(&attempt_end("db", 1, AttemptVerdict::Pass, vec![]))
        .unwrap();
    w.append(&step_end("db", StepVerdict::Pass, 1)).unwrap();
    w.append(&run_end(RunVerdict::Pass, &[("pass", 2)], 10.0))
        .unwrap();
    w.seal().unwrap()
}

fn earlier_run() -> (ResumedFrom, EarlierPass) {
    let from = ResumedFrom {
        run_id: "01a248bf-7c4b-712d-8846-040dcf78436c".to_string(),
        seal_head: format!("sha256:{}", sha256_hex(b"earlier head")),
        path: "artifacts/deploy-api/earlier".to_string(),
    };
    let link = EarlierPass {
        run_id: from.run_id.clone(),
        seal_head: from.seal_head.clone(),
        seq: 4,
    };
    (from, link)
}

fn steps_problems(report: &VerifyReport) -> Vec<String> {
    report
        .problems
        .iter()
        .filter(|p| p.check == "steps")
        .map(|p| p.message.clone())
        .collect()
}

#[test]
fn a_pass_linked_to_the_resumed_run_verifies_without_attempts() {
    let root = tempfile::tempdir().unwrap();
    let (from, link) = earlier_run();
    let dir = write_resumed(root.path(), Some(from), Some(link), false);
    let report = assert_verified(&dir);
    let text = report.render_text();
    assert!(
        text.contains("1 passed earlier in run 01a248bf-7c4b"),
        "{text}"
    );
}

#[test]
fn an_earlier_link_must_match_the_header_and_stand_for_a_step_not_run() {
    let (from, link) = earlier_run();
    let cases: Vec<(Option<ResumedFrom>, Option<EarlierPass>, bool, &str)> = vec![
        (None, Some(link.clone()), false, "the header resumes no run"),
        (
            Some(from.clone()),
            Some(EarlierPass {
                seal_head: format!("sha256:{}", sha256_hex(b"another head")),
                ..link.clone()
            }),
            false,
            "but the header resumes run",
        ),
        (
            Some(from.clone()),
            Some(link.clone()),
            true,
            "passed earlier, but it ran again in this run",
        ),
        // Without a link, a pass needs a passing attempt, resumed or not.
        (
            Some(from.clone()),
            None,
            false,
            "verdict pass, but the last attempt did not pass",
        ),
    ];
    for (resumed_from, link, ran, message) in cases {
        let root = tempfile::tempdir().unwrap();
        let dir = write_resumed(root.path(), resumed_from, link, ran);
        let report = verify(&dir);
        assert_invalid_naming(&report, "events.jsonl", message);
        let problems = steps_problems(&report);
        assert!(
            problems.iter().any(|p| p.contains(message)),
            "{message}: {problems:?}"
        );
    }
}

fn step_pass(step: &str, max_attempts: u32) -> Event {
    Event::StepPass {
        step: step.to_string(),
        kind: "http".to_string(),
        title: None,
        target: "GET http://127.0.0.1/{{path}}".to_string(),
        rendered: Some("GET http://127.0.0.1/u/1".to_string()),
        max_attempts,
        timeout_ms: 10_000,
        duration_ms: 1.25,
        detail: Map::from_iter([("status".to_string(), serde_json::json!(200))]),
        blobs: Vec::new(),
    }
}

/// A sweep as `sweep` writes it: `check-0` … passing on their first attempt
/// as one `step.pass` each, `slow` passing on its second attempt in the long
/// form; batched (group-committed) journal. Unsealed when `seal` is false.
fn write_compact_sweep(root: &Path, checks: u32, seal: bool) -> PathBuf {
    let redactor = canary_redactor();
    let mut h = header(BundleKind::Sweep, &redactor);
    h.source.name = "sweep".to_string();
    let mut w = BundleWriter::create(root, h, redactor, SyncPolicy::Batched(8)).unwrap();
    let mut steps: Vec<PlannedStep> = (0..checks)
        .map(|i| planned(&format!("check-{i}")))
        .collect();
    steps.push(planned("slow"));
    w.append(&Event::RunStart {
        planned: None,
        steps,
        on_escalate: "continue".to_string(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    })
    .unwrap();
    w.append(&step_start("slow")).unwrap();
    w.append(&attempt_start("slow", 1)).unwrap();
    for i in 0..checks {
        w.append(&step_pass(&format!("check-{i}"), 3)).unwrap();
    }
    w.append(&attempt_end("slow", 1, AttemptVerdict::Fail, vec![]))
        .unwrap();
    w.append(&backoff("slow", 1)).unwrap();
    w.append(&attempt_start("slow", 2)).unwrap();
    w.append(&attempt_end("slow", 2, AttemptVerdict::Pass, vec![]))
        .unwrap();
    w.append(&step_end("slow", StepVerdict::Pass, 2)).unwrap();
    if !seal {
        // Dropped unsealed: buffered records still reach the disk.
        let dir = w.dir().to_path_buf();
        drop(w);
        return dir;
    }
    w.append(&run_end(
        RunVerdict::Pass,
        &[("pass", checks), ("flaky", 1)],
        1.0,
    ))
    .unwrap();
    w.seal().unwrap()
}

#[test]
fn a_sweep_with_compact_step_pass_records_verifies() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_compact_sweep(root.path(), 20, true);
    let report = assert_verified(&dir);
    let text = report.render_text();
    assert!(text.contains("22 attempts"), "{text}");
}

#[test]
fn a_tampered_step_pass_record_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_compact_sweep(root.path(), 5, true);
    let mut lines = journal_lines(&dir);
    let i = lines
        .iter()
        .position(|l| l.contains("\"step.pass\"") && l.contains("check-3"))
        .unwrap();
    lines[i] = lines[i].replace("\"duration_ms\":1.25", "\"duration_ms\":0.25");
    write_journal(&dir, &lines);
    assert_invalid_naming(&verify(&dir), "events.jsonl", "tampered step.pass");
}

/// Writes a sealed sweep whose only check is recorded by `records`.
fn sealed_sweep_of(root: &Path, records: &[Event]) -> PathBuf {
    let redactor = Arc::new(Redactor::new(&[]));
    let mut h = header(BundleKind::Sweep, &redactor);
    h.source.name = "sweep".to_string();
    let mut w = BundleWriter::create(root, h, redactor, SyncPolicy::Batched(64)).unwrap();
    w.append(&run_start(&["api"])).unwrap();
    for record in records {
        w.append(record).unwrap();
    }
    w.append(&run_end(RunVerdict::Pass, &[("pass", 1)], 1.0))
        .unwrap();
    w.seal().unwrap()
}

#[test]
fn a_step_pass_record_is_held_to_the_planned_policy() {
    // Well-formed: verified.
    let root = tempfile::tempdir().unwrap();
    let dir = sealed_sweep_of(root.path(), &[step_pass("api", 3)]);
    assert_eq!(verify(&dir).verdict, Verdict::Verified);

    // A policy other than the one planned (here: no retries, where
    // run.start announced three attempts) is a journal problem.
    let root = tempfile::tempdir().unwrap();
    let dir = sealed_sweep_of(root.path(), &[step_pass("api", 1)]);
    let report = verify(&dir);
    assert_invalid_naming(&report, "events.jsonl", "step.pass off policy");
    assert!(
        report.render_text().contains("differs from run.start's 3"),
        "{}",
        report.render_text()
    );

    // A step.pass cannot stand beside the long form of the same step.
    let root = tempfile::tempdir().unwrap();
    let dir = sealed_sweep_of(
        root.path(),
        &[step_pass("api", 3), step_end("api", StepVerdict::Pass, 1)],
    );
    assert_invalid_naming(&verify(&dir), "events.jsonl", "step.pass and step.end");
    let root = tempfile::tempdir().unwrap();
    let dir = sealed_sweep_of(
        root.path(),
        &[
            step_start("api"),
            attempt_start("api", 1),
            attempt_end("api", 1, AttemptVerdict::Fail, vec![]),
            step_pass("api", 3),
        ],
    );
    let report = verify(&dir);
    assert_invalid_naming(&report, "events.jsonl", "step.pass after a failed attempt");
    assert!(
        report.render_text().contains("already started"),
        "{}",
        report.render_text()
    );
}

#[test]
fn a_compact_sweep_journal_cut_mid_group_verifies_up_to_its_last_complete_record() {
    let root = tempfile::tempdir().unwrap();
    // Unsealed, as a crash leaves it: run.start, then 2 + 20 + 5 records.
    let dir = write_compact_sweep(root.path(), 20, false);
    let lines = journal_lines(&dir);
    assert_eq!(lines.len(), 28);
    let report = verify(&dir);
    assert_eq!(
        report.verdict,
        Verdict::Incomplete {
            valid_through_seq: Some(27)
        },
        "{}",
        report.render_text()
    );

    // The group of 8 being committed when the crash came is cut at a record
    // boundary: the journal is valid through the last whole record.
    write_journal(&dir, &lines[..13]);
    let report = verify(&dir);
    assert_eq!(
        report.verdict,
        Verdict::Incomplete {
            valid_through_seq: Some(12)
        },
        "{}",
        report.render_text()
    );

    // ... and mid-record: the torn line is reported, the rest still verifies.
    let mut bytes = fs::read(dir.join("events.jsonl")).unwrap();
    bytes.extend_from_slice(&lines[13].as_bytes()[..lines[13].len() / 2]);
    fs::write(dir.join("events.jsonl"), &bytes).unwrap();
    let report = verify(&dir);
    assert_eq!(
        report.verdict,
        Verdict::Incomplete {
            valid_through_seq: Some(12)
        },
        "{}",
        report.render_text()
    );
    assert!(report.warnings.iter().any(|w| w.contains("torn")));
}

/// One line of a sweep journal announced in chunks: a `plan` record naming
/// these steps, or a `step.pass` of one step.
enum PlanOp<'a> {
    Plan(&'a [&'a str]),
    Pass(&'a str),
}

/// A sealed sweep whose `run.start` announces `total` steps (or none, as a
/// runbook run does) and names none itself; `ops` follow.
fn write_sweep_planned_in_chunks(root: &Path, total: Option<u64>, ops: &[PlanOp<'_>]) -> PathBuf {
    write_sweep_planned_in_chunks_ending(root, total, ops, RunVerdict::Pass)
}

fn write_sweep_planned_in_chunks_ending(
    root: &Path,
    total: Option<u64>,
    ops: &[PlanOp<'_>],
    verdict: RunVerdict,
) -> PathBuf {
    let redactor = Arc::new(Redactor::new(&[]));
    let mut w = BundleWriter::create(
        root,
        header(BundleKind::Sweep, &redactor),
        redactor,
        SyncPolicy::Batched(8),
    )
    .unwrap();
    w.append(&Event::RunStart {
        planned: total,
        steps: Vec::new(),
        on_escalate: "continue".to_string(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    })
    .unwrap();
    let mut passed = 0;
    for op in ops {
        match op {
            PlanOp::Plan(ids) => w.append(&Event::Plan {
                steps: ids.iter().map(|id| planned(id)).collect(),
            }),
            PlanOp::Pass(id) => {
                passed += 1;
                w.append(&step_pass(id, 3))
            }
        }
        .unwrap();
    }
    w.append(&run_end(verdict, &[("pass", passed)], 1.0))
        .unwrap();
    w.seal().unwrap()
}

#[test]
fn an_interrupted_sweep_may_announce_fewer_steps_than_planned_but_a_finished_one_may_not() {
    use PlanOp::{Pass, Plan};
    let root = tempfile::tempdir().unwrap();
    let ops = [Plan(&["a", "b"][..]), Pass("a"), Pass("b")];
    let interrupted = write_sweep_planned_in_chunks_ending(
        &root.path().join("interrupted"),
        Some(1_000),
        &ops,
        RunVerdict::Interrupted,
    );
    let report = verify(&interrupted);
    assert_eq!(
        report.verdict,
        Verdict::VerifiedInterrupted,
        "{}",
        report.render_text()
    );
    let more = [Plan(&["a", "b", "c"][..]), Pass("a"), Pass("b"), Pass("c")];
    let too_many = write_sweep_planned_in_chunks_ending(
        &root.path().join("more"),
        Some(2),
        &more,
        RunVerdict::Interrupted,
    );
    let report = verify(&too_many);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("run.start announces 2 steps")),
        "{}",
        report.render_text()
    );
}

#[test]
fn a_sweep_may_announce_its_steps_in_plan_records_and_each_is_checked() {
    use PlanOp::{Pass, Plan};
    let root = tempfile::tempdir().unwrap();
    let valid = write_sweep_planned_in_chunks(
        &root.path().join("valid"),
        Some(3),
        &[
            Plan(&["a", "b"]),
            Pass("a"),
            Pass("b"),
            Plan(&["c"]),
            Pass("c"),
        ],
    );
    let report = assert_verified(&valid);
    assert!(
        report.render_text().contains("3 planned"),
        "{}",
        report.render_text()
    );

    let cases: [(&str, Option<u64>, &[PlanOp<'_>], &str); 4] = [
        (
            "no-total",
            None,
            &[Plan(&["a"]), Pass("a")],
            "plan record without a run.start that announces a total",
        ),
        (
            "late",
            Some(2),
            &[Plan(&["a"]), Pass("a"), Pass("b"), Plan(&["b"])],
            "step \"b\" planned after its first record",
        ),
        (
            "twice",
            Some(2),
            &[Plan(&["a"]), Pass("a"), Plan(&["a"])],
            "step \"a\" planned twice",
        ),
        (
            "short",
            Some(3),
            &[Plan(&["a", "b"]), Pass("a"), Pass("b")],
            "run.start announces 3 steps; run.start and the plan records name 2",
        ),
    ];
    for (name, total, ops, message) in cases {
        let dir = write_sweep_planned_in_chunks(&root.path().join(name), total, ops);
        let report = verify(&dir);
        assert_invalid_naming(&report, "events.jsonl", message);
        assert!(
            report.problems.iter().any(|p| p.message.contains(message)),
            "{name}: {}",
            report.render_text()
        );
    }
}

/// A sealed sweep of `n` checks `s0`… announced in plan records of 1,000 and
/// passing in order, with `odd` (one attempt allowed) planned first; then
/// `tail` and run.end. Verify replays it one record at a time and keeps only
/// a residue of each ended step: these journals are long enough that the
/// residues are merged many times under test.
fn write_long_sweep(root: &Path, n: u32, tail: &[Event]) -> PathBuf {
    let redactor = Arc::new(Redactor::new(&[]));
    let mut w = BundleWriter::create(
        root,
        header(BundleKind::Sweep, &redactor),
        redactor,
        SyncPolicy::Batched(256),
    )
    .unwrap();
    w.append(&Event::RunStart {
        planned: Some(u64::from(n) + 1),
        steps: Vec::new(),
        on_escalate: "continue".to_string(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    })
    .unwrap();
    let mut odd = planned("odd");
    odd.max_attempts = 1;
    w.append(&Event::Plan { steps: vec![odd] }).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        w.append(&Event::Plan {
            steps: chunk.iter().map(|i| planned(&format!("s{i}"))).collect(),
        })
        .unwrap();
        for i in chunk {
            w.append(&step_pass(&format!("s{i}"), 3)).unwrap();
        }
    }
    for record in tail {
        w.append(record).unwrap();
    }
    w.append(&run_end(RunVerdict::Pass, &[("pass", n)], 1.0))
        .unwrap();
    w.seal().unwrap()
}

fn problems_of(report: &VerifyReport, check: &str) -> Vec<String> {
    report
        .problems
        .iter()
        .filter(|p| p.check == check)
        .map(|p| format!("{}: {}", p.location(), p.message))
        .collect()
}

#[test]
fn a_long_sweep_journal_verifies_and_its_steps_are_counted() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_long_sweep(root.path(), 10_000, &[step_pass("odd", 1)]);
    let report = assert_verified(&dir);
    let text = report.render_text();
    assert!(text.contains("10001 planned, 10001 ended"), "{text}");
}

#[test]
fn a_step_ended_twice_far_apart_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    // s0 passed 10,000 records earlier: its state is long gone, its residue
    // is not.
    let dir = write_long_sweep(
        root.path(),
        10_000,
        &[step_pass("odd", 1), step_end("s0", StepVerdict::Pass, 1)],
    );
    let report = verify(&dir);
    assert_eq!(report.verdict, Verdict::Invalid, "{}", report.render_text());
    let steps = problems_of(&report, "steps");
    assert!(
        steps
            .iter()
            .any(|p| p.contains("step \"s0\": step ended twice")),
        "{steps:?}"
    );
    // The second end is located on the journal's second-to-last line.
    let lines = journal_lines(&dir).len() as u64;
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.line == Some(lines - 1) && p.message.contains("ended twice")),
        "{}",
        report.render_text()
    );

    // And a second step.pass of it, as a replayed record would be.
    let root = tempfile::tempdir().unwrap();
    let dir = write_long_sweep(
        root.path(),
        10_000,
        &[step_pass("odd", 1), step_pass("s17", 3)],
    );
    let attempts = problems_of(&verify(&dir), "attempts");
    assert!(
        attempts
            .iter()
            .any(|p| p.contains("step \"s17\": step.pass for a step that already started")),
        "{attempts:?}"
    );
}

#[test]
fn a_step_pass_off_the_policy_planned_ten_thousand_records_before_is_invalid() {
    let root = tempfile::tempdir().unwrap();
    // `odd` was planned with one attempt before every other step.
    let dir = write_long_sweep(root.path(), 10_000, &[step_pass("odd", 3)]);
    let report = verify(&dir);
    assert_eq!(report.verdict, Verdict::Invalid, "{}", report.render_text());
    let attempts = problems_of(&report, "attempts");
    assert!(
        attempts
            .iter()
            .any(|p| p.contains("step \"odd\": max_attempts 3 differs from run.start's 1")),
        "{attempts:?}"
    );
}

#[test]
fn a_problem_in_the_last_records_of_a_long_journal_is_found() {
    // A step nobody announced, just before run.end.
    let root = tempfile::tempdir().unwrap();
    let dir = write_long_sweep(
        root.path(),
        10_000,
        &[step_pass("odd", 1), step_pass("ghost", 3)],
    );
    let steps = problems_of(&verify(&dir), "steps");
    assert!(
        steps
            .iter()
            .any(|p| p.contains("step \"ghost\" was not announced")),
        "{steps:?}"
    );

    // A planned step that never ran: found only once the journal has ended.
    let root = tempfile::tempdir().unwrap();
    let dir = write_long_sweep(root.path(), 10_000, &[]);
    let report = verify(&dir);
    assert_eq!(
        problems_of(&report, "completeness"),
        vec![format!(
            "events.jsonl:{}: planned step \"odd\" has no step.end in a sealed bundle",
            journal_lines(&dir).len()
        )],
        "{}",
        report.render_text()
    );

    // The last line changed: the seal's head no longer matches.
    let root = tempfile::tempdir().unwrap();
    let dir = write_long_sweep(root.path(), 10_000, &[step_pass("odd", 1)]);
    let mut lines = journal_lines(&dir);
    let last = lines.len() - 1;
    lines[last] = lines[last].replace("\"duration_ms\":1.0", "\"duration_ms\":2.0");
    write_journal(&dir, &lines);
    let report = verify(&dir);
    assert_invalid_naming(&report, "seal.json", "last line changed");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("seal head does not match")),
        "{}",
        report.render_text()
    );
}

#[test]
fn a_journal_line_over_the_cap_or_torn_is_reported_without_holding_it() {
    use super::read::{read_capped_line, CappedLine};
    let text = b"one\ntwo-is-long\nthree";
    let mut reader = std::io::BufReader::new(&text[..]);
    let mut buf = Vec::new();
    let mut read = |cap| {
        let r = read_capped_line(&mut reader, &mut buf, cap).unwrap();
        (r, String::from_utf8_lossy(&buf).into_owned())
    };
    assert_eq!(read(8), (CappedLine::Line, "one".to_string()));
    // Over the cap: the first cap + 1 bytes, the rest left unread.
    assert_eq!(read(8), (CappedLine::TooLong, "two-is-lo".to_string()));
    assert_eq!(read(8), (CappedLine::Line, "ng".to_string()));
    assert_eq!(read(8), (CappedLine::Torn, "three".to_string()));
    assert_eq!(read(8), (CappedLine::Eof, String::new()));
}

#[test]
fn input_copies_made_on_several_threads_are_redacted_whole_and_sealed_with_their_digests() {
    let root = tempfile::tempdir().unwrap();
    let redactor = canary_redactor();
    let h = header(BundleKind::Sweep, &redactor);
    let mut w =
        BundleWriter::create(root.path(), h, redactor.clone(), SyncPolicy::EveryRecord).unwrap();
    // Seven files of different sizes, one larger than a redaction window,
    // each with the canary written into it.
    let sources: Vec<String> = (0..7)
        .map(|i| {
            // The last one over 2 MiB (26 bytes a line, twice over).
            let lines = if i == 6 { 42_000 } else { 1 + i * i * 1_200 };
            let filler = "url = 'http://127.0.0.1/'\n".repeat(lines);
            format!("# file {i}\n{filler}token = '{CANARY}'\n{filler}")
        })
        .collect();
    assert!(sources[6].len() > super::redact_stream::WINDOW);
    let names: Vec<String> = (0..7).map(|i| format!("inputs/{i:03}-f.toml")).collect();
    w.write_files_from(&names, |i| Ok(sources[i].as_bytes()))
        .unwrap();

    // A reader that fails (the file changed) fails the copy; that file is
    // not left, neither whole nor as a temporary.
    let failing = [
        "inputs/bad-0.toml".to_string(),
        "inputs/bad-1.toml".to_string(),
    ];
    let error = w
        .write_files_from(&failing, |i| match i {
            1 => Err(std::io::Error::other("changed since it was validated")),
            _ => Ok("a = 1\n".as_bytes()),
        })
        .unwrap_err();
    assert_eq!(error.to_string(), "changed since it was validated");
    let dir = w.seal().unwrap();
    let listed = list_files(&dir).unwrap();
    assert!(
        !listed
            .iter()
            .any(|n| n.contains("bad-1") || n.contains(".tmp-")),
        "{listed:?}"
    );

    let seal: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("seal.json")).unwrap()).unwrap();
    for (name, source) in names.iter().zip(&sources) {
        let copied = fs::read(dir.join(name)).unwrap();
        assert_eq!(copied, *redactor.redact_bytes(source.as_bytes()), "{name}");
        assert!(!String::from_utf8_lossy(&copied).contains(CANARY), "{name}");
        let sealed = seal["subject"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} is not in the seal"));
        assert_eq!(sealed["digest"]["sha256"], sha256_hex(&copied), "{name}");
    }
    assert_verified(&dir);
}

#[test]
fn a_copy_changed_after_it_was_written_is_sealed_as_written_and_fails_verify() {
    // The seal lists a copy's digest as taken while it was written, not as
    // read back at the end: whatever changes it in between is caught.
    let root = tempfile::tempdir().unwrap();
    let redactor = canary_redactor();
    let h = header(BundleKind::Sweep, &redactor);
    let mut w =
        BundleWriter::create(root.path(), h, redactor.clone(), SyncPolicy::EveryRecord).unwrap();
    let names: Vec<String> = (0..3).map(|i| format!("inputs/{i:03}-f.toml")).collect();
    let sources: Vec<String> = (0..3)
        .map(|i| format!("# file {i}\ntoken = '{CANARY}'\n"))
        .collect();
    let job = w.copy_job(&names).unwrap();
    job.run(2, |i| Ok(sources[i].as_bytes())).unwrap();
    w.copied(job).unwrap();
    let changed = w.dir().join(&names[1]);
    let written = fs::read(&changed).unwrap();
    fs::write(&changed, b"# changed after the copy\n").unwrap();
    let dir = w.seal().unwrap();

    let seal: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("seal.json")).unwrap()).unwrap();
    let sealed = seal["subject"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == names[1].as_str())
        .expect("the changed copy is in the seal");
    assert_eq!(sealed["digest"]["sha256"], sha256_hex(&written));
    let report = verify(&dir);
    assert_invalid_naming(&report, &names[1], "a copy changed before the seal");
}

/// A reader that, before its first byte, waits until `others` readers were
/// opened: it fails if the copies ran one after the other.
struct WaitsForOthers<'a> {
    opened: &'a std::sync::atomic::AtomicUsize,
    others: usize,
    text: &'a [u8],
}

impl std::io::Read for WaitsForOthers<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.opened.load(Ordering::SeqCst) < self.others {
            if std::time::Instant::now() > deadline {
                return Err(std::io::Error::other("the copies ran one at a time"));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::io::Read::read(&mut self.text, buf)
    }
}

#[test]
fn input_copies_run_at_once_on_a_machine_with_two_cores() {
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        return;
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    let root = tempfile::tempdir().unwrap();
    let redactor = Arc::new(Redactor::new(&[]));
    let h = header(BundleKind::Sweep, &redactor);
    let mut w = BundleWriter::create(root.path(), h, redactor, SyncPolicy::EveryRecord).unwrap();
    let opened = AtomicUsize::new(0);
    let names = ["inputs/a.toml".to_string(), "inputs/b.toml".to_string()];
    w.write_files_from(&names, |_| {
        opened.fetch_add(1, Ordering::SeqCst);
        Ok(WaitsForOthers {
            opened: &opened,
            others: 2,
            text: b"a = 1\n",
        })
    })
    .unwrap();
    let dir = w.seal().unwrap();
    for name in names {
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"a = 1\n");
    }
}

/// A sweep's threads serialize and redact their events before they take
/// the writer: what they record is the same journal, redacted and chained.
#[test]
fn events_prepared_on_other_threads_are_recorded_redacted_and_chained() {
    let root = tempfile::tempdir().unwrap();
    let redactor = canary_redactor();
    let mut w = run_writer(root.path(), redactor);
    w.append(&run_start(&["a", "b"])).unwrap();
    let preparer = w.preparer();
    let passing = |step: &str| {
        let mut event = attempt_end(step, 1, AttemptVerdict::Pass, vec![]);
        if let Event::AttemptEnd { detail, .. } = &mut event {
            detail.insert("echo".to_string(), format!("token {CANARY} seen").into());
        }
        event
    };
    let prepared: Vec<_> = std::thread::scope(|scope| {
        ["a", "b"]
            .map(|step| {
                let preparer = preparer.clone();
                let events = [
                    step_start(step),
                    attempt_start(step, 1),
                    passing(step),
                    step_end(step, StepVerdict::Pass, 1),
                ];
                scope.spawn(move || events.map(|e| preparer.prepare(e).unwrap()))
            })
            .map(|thread| thread.join().unwrap())
    })
    .into_iter()
    .flatten()
    .collect();
    for prepared in prepared {
        let (_, event) = w.record_prepared(prepared).unwrap();
        // What observers see is what the journal holds: redacted.
        let text = serde_json::to_string(&*event).unwrap();
        assert!(!text.contains(CANARY), "{text}");
    }
    w.append(&run_end(RunVerdict::Pass, &[("pass", 2)], 5.0))
        .unwrap();
    let dir = w.seal().unwrap();
    assert_verified(&dir);
    let lines = journal_lines(&dir);
    assert_eq!(lines.len(), 10, "{lines:#?}");
    assert!(
        lines[3].contains("token [REDACTED:API_TOKEN] seen"),
        "{}",
        lines[3]
    );
    assert!(lines.iter().all(|line| !line.contains(CANARY)));
}
