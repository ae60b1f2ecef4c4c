//! Snapshot tests of the renderers: one fixed run (a pass, a pass after a
//! retry, an escalation, a blocked and a skipped step), journaled through a
//! real bundle writer so the renderers see exactly what reports see — the
//! redacted events — then rendered as summary.md, junit.xml and the table.
//! A planted secret holding `&`, `<` and `"` must come out redacted, never
//! escaped.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Map;

use super::summary::{RunSummary, SummaryBuilder};
use super::{junit, markdown, table};
use crate::core::record::{
    AttemptSummary, AttemptVerdict, BundleKind, Escalation, Event, Header, PlannedStep, RunVerdict,
    SourceRef, StepVerdict,
};
use crate::core::{FailureClass, FailureRecord};
use crate::engine::RunObserver;
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};

/// A secret with every character XML, HTML and Markdown treat specially.
const CANARY: &str = "s3cr&t<x>\"pw|`1234";

fn planned(id: &str, depends_on: &[&str], mutating: bool) -> PlannedStep {
    PlannedStep {
        id: id.to_string(),
        kind: "http".to_string(),
        max_attempts: 3,
        timeout_ms: 2_000,
        depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
        mutating,
        backoff: None,
        tags: Vec::new(),
    }
}

fn attempt(
    step: &str,
    n: u32,
    verdict: AttemptVerdict,
    failure: Option<(FailureClass, &str)>,
) -> Vec<Event> {
    vec![
        Event::AttemptStart {
            step: step.into(),
            attempt: n,
            of: 3,
        },
        Event::AttemptEnd {
            step: step.into(),
            attempt: n,
            of: 3,
            verdict,
            duration_ms: 100.0 * n as f64,
            reason: failure.map(|(_, r)| r.to_string()),
            failure: failure.map(|(class, _)| FailureRecord { class }),
            no_retry: None,
            detail: Map::new(),
            blobs: Vec::new(),
        },
    ]
}

fn start(step: &str) -> Event {
    Event::StepStart {
        step: step.into(),
        kind: "http".into(),
        title: None,
        target: format!("GET https://example.test/{step}"),
        rendered: None,
        max_attempts: 3,
        timeout_ms: 2_000,
    }
}

fn end(step: &str, verdict: StepVerdict, attempts: u32, reason: Option<&str>) -> Event {
    Event::StepEnd {
        step: step.into(),
        verdict,
        attempts,
        duration_ms: 250.0 * attempts as f64,
        reason: reason.map(str::to_string),
        earlier: None,
    }
}

fn backoff(step: &str, after: u32) -> Event {
    Event::Backoff {
        step: step.into(),
        after_attempt: after,
        delay_ms: 1000 * after as u64,
    }
}

/// The fixture run's events, in journal order.
fn events() -> Vec<Event> {
    let leaked = format!("status 503, want 200; body: token={CANARY}");
    let mut events = vec![Event::RunStart {
        planned: None,
        steps: vec![
            planned("health", &[], false),
            planned("db", &[], false),
            planned("api", &[], false),
            planned("worker", &["api"], false),
            planned("deploy", &[], true),
        ],
        on_escalate: "continue".into(),
        allow_mutations: false,
        mutation_tags: Vec::new(),
        only: Vec::new(),
    }];
    events.push(start("health"));
    events.extend(attempt("health", 1, AttemptVerdict::Pass, None));
    events.push(end("health", StepVerdict::Pass, 1, None));

    events.push(start("db"));
    events.extend(attempt(
        "db",
        1,
        AttemptVerdict::Timeout,
        Some((FailureClass::Timeout, "timed out after 2s")),
    ));
    events.push(backoff("db", 1));
    events.extend(attempt("db", 2, AttemptVerdict::Pass, None));
    events.push(end("db", StepVerdict::Pass, 2, None));

    events.push(start("api"));
    let mut summaries = Vec::new();
    for n in 1..=3u32 {
        let (class, reason) = if n == 1 {
            (
                FailureClass::Refused,
                "connection refused by 10.0.0.1:443".to_string(),
            )
        } else {
            (FailureClass::Expectation, leaked.clone())
        };
        events.extend(attempt(
            "api",
            n,
            AttemptVerdict::Fail,
            Some((class, &reason)),
        ));
        summaries.push(AttemptSummary {
            attempt: n,
            verdict: AttemptVerdict::Fail,
            reason,
            class: Some(class),
            // The record just pushed: seqs count from run.start = 0.
            seq: events.len() as u64 - 1,
        });
        if n < 3 {
            events.push(backoff("api", n));
        }
    }
    events.push(Event::Escalation(Escalation {
        step: "api".into(),
        owner: Some("platform-oncall".into()),
        attempts: summaries,
        last_reason: leaked.clone(),
        hint: Some("check `fly logs` for the web process".into()),
        retries_skipped: None,
        evidence: Vec::new(),
        collected: Vec::new(),
    }));
    events.push(end("api", StepVerdict::Escalated, 3, Some(&leaked)));
    events.push(end(
        "worker",
        StepVerdict::Blocked,
        0,
        Some("depends on `api` (escalated)"),
    ));
    events.push(end(
        "deploy",
        StepVerdict::Skipped,
        0,
        Some("mutating step: pass --allow-mutations to run it"),
    ));
    events.push(Event::RunEnd {
        verdict: RunVerdict::Escalated,
        counts: BTreeMap::from([
            ("blocked".to_string(), 1),
            ("escalated".to_string(), 1),
            ("pass".to_string(), 2),
            ("skipped".to_string(), 1),
        ]),
        duration_ms: 4321.0,
        reason: None,
    });
    events
}

/// Journals the fixture run and folds what the journal handed out.
fn summary() -> RunSummary {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Arc::new(Redactor::new(&[(
        "API_TOKEN".to_string(),
        CANARY.to_string(),
    )]));
    let header = Header::new(
        BundleKind::Run,
        SourceRef {
            name: "fixture".into(),
            path: "fixture.toml".into(),
            copy: None,
            sha256: "0".repeat(64),
        },
        vec!["API_TOKEN".into()],
        redactor.classes(),
    );
    let mut writer =
        BundleWriter::create(dir.path(), header, redactor, SyncPolicy::Batched(64)).unwrap();
    let mut builder = SummaryBuilder::new("run-0001", "fixture", "2026-12-05T10:00:00.000Z");
    for event in events() {
        let (seq, redacted) = writer.record(event).unwrap();
        builder.observe(seq, &redacted);
    }
    builder.finish()
}

fn assert_no_canary(text: &str) {
    for form in [
        CANARY,
        "s3cr&amp;t",
        "s3cr&t",
        "&lt;x&gt;",
        "pw|`1234",
        "pw\\|`1234",
    ] {
        assert!(!text.contains(form), "secret form {form:?} in:\n{text}");
    }
}

#[test]
fn junit_snapshot() {
    let text = junit::render(&summary());
    assert_no_canary(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn summary_markdown_snapshot() {
    let text = markdown::render(&summary(), "2026-12-05T100000Z-run-0001");
    assert_no_canary(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn step_table_snapshot() {
    let text = table::render_steps(&summary());
    assert_no_canary(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn summary_json_carries_failure_classes() {
    let summary = summary();
    let json = serde_json::to_value(&summary).unwrap();
    assert_no_canary(&json.to_string());
    let api = &json["steps"][2];
    assert_eq!(api["id"], "api");
    assert_eq!(api["class"], "expectation");
    assert_eq!(api["failed_attempts"][0]["class"], "refused");
    assert!(api["reason"]
        .as_str()
        .unwrap()
        .starts_with("expectation: status 503, want 200"));
    let db = &json["steps"][1];
    assert_eq!(db["failed_attempts"][0]["class"], "timeout");
    assert_eq!(
        db["failed_attempts"][0]["reason"],
        "timeout: timed out after 2s"
    );
}

#[test]
fn a_step_pass_record_folds_into_one_passing_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Arc::new(Redactor::new(&[]));
    let header = Header::new(
        BundleKind::Sweep,
        SourceRef {
            name: "sweep".into(),
            path: "checks".into(),
            copy: None,
            sha256: "0".repeat(64),
        },
        Vec::new(),
        redactor.classes(),
    );
    let mut writer =
        BundleWriter::create(dir.path(), header, redactor, SyncPolicy::Batched(64)).unwrap();
    let mut builder = SummaryBuilder::new("run", "sweep", "t");
    let events = [
        Event::RunStart {
            planned: None,
            steps: vec![planned("a", &[], false), planned("b", &[], false)],
            on_escalate: "continue".into(),
            allow_mutations: false,
            mutation_tags: Vec::new(),
            only: Vec::new(),
        },
        Event::StepPass {
            step: "a".into(),
            kind: "http".into(),
            title: Some("front page".into()),
            target: "GET https://example.test/a".into(),
            rendered: None,
            max_attempts: 3,
            timeout_ms: 2_000,
            duration_ms: 12.5,
            detail: Map::new(),
            blobs: Vec::new(),
        },
        start("b"),
    ];
    for event in events {
        let (seq, redacted) = writer.record(event).unwrap();
        builder.observe(seq, &redacted);
    }
    let summary = builder.finish();
    let a = &summary.steps[0];
    assert_eq!(a.id, "a");
    assert_eq!(a.verdict, Some(StepVerdict::Pass));
    assert_eq!((a.attempts, a.max_attempts), (1, 3));
    assert_eq!(a.attempt_durations_ms, vec![12.5]);
    assert_eq!(a.duration_ms, 12.5);
    assert_eq!(a.title.as_deref(), Some("front page"));
    assert_eq!(a.seq_range, (1, 1));
    assert_eq!(a.verdict_label(), "pass");
    assert_eq!(summary.steps[1].verdict, None);
}

#[test]
fn a_large_sweep_table_shows_failures_and_the_slowest_passes_then_counts_the_rest() {
    use crate::sweep::run::{CheckReport, CheckVerdict, SweepReport};
    use crate::sweep::stats::LatencyStats;
    use crate::sweep::tally::SweepTally;
    let check = |i: usize, verdict: CheckVerdict| CheckReport {
        id: format!("c{i:04}"),
        kind: "http",
        verdict,
        attempts: 1,
        attempts_total: 1,
        latency: LatencyStats::from_samples(&[i as f64]),
        reason: (verdict == CheckVerdict::Fail).then(|| "status 500, want 200".to_string()),
        ..CheckReport::default()
    };
    let mut checks: Vec<CheckReport> = (0..1000).map(|i| check(i, CheckVerdict::Pass)).collect();
    checks[17] = check(17, CheckVerdict::Fail);
    checks[400] = check(400, CheckVerdict::Flaky);
    let report_of = |checks: &[CheckReport]| {
        let mut tally = SweepTally::default();
        for check in checks {
            tally.add(check);
        }
        SweepReport {
            run_id: "r".into(),
            started_at: "t".into(),
            duration_ms: 1.0,
            verdict: RunVerdict::Escalated,
            counts: BTreeMap::new(),
            latency: None,
            tally,
            notifications: None,
            stopped: None,
        }
    };
    let report = report_of(&checks);
    let text = table::render_checks(&report);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("│ c0")).collect();
    assert_eq!(rows.len(), 12, "{text}");
    assert!(
        rows[0].contains("c0017") && rows[0].contains("fail"),
        "{text}"
    );
    assert!(
        rows[1].contains("c0400") && rows[1].contains("flaky"),
        "{text}"
    );
    // The ten slowest passes, slowest first.
    assert!(
        rows[2].contains("c0999") && rows[11].contains("c0990"),
        "{text}"
    );
    assert!(
        text.ends_with("… 988 more checks not shown (988 passing, 0 not passing); every check is in the bundle's summary.md and junit.xml"),
        "{text}"
    );

    // A small sweep lists every check.
    let small = report_of(&checks[..100]);
    let text = table::render_checks(&small);
    assert_eq!(text.lines().filter(|l| l.contains("│ c0")).count(), 100);
    assert!(!text.contains("not shown"));
}

/// A sweep's `summary.md` stream into `target`, with no secrets.
fn markdown_stream(target: &std::path::Path) -> crate::report::markdown::MarkdownStream {
    use crate::report::spool::{Mode, Spooled};
    let redactor = std::sync::Arc::new(crate::evidence::Redactor::new(&[]));
    let mut spooled = Spooled::new(redactor, 1);
    spooled.add_target(target, Mode::Replace).unwrap();
    crate::report::markdown::MarkdownStream::new(spooled)
}

/// A finished, escalated sweep with `tally`'s counts.
fn escalated_sweep(tally: crate::sweep::tally::SweepTally) -> crate::sweep::run::SweepReport {
    crate::sweep::run::SweepReport {
        run_id: "r".into(),
        started_at: "t".into(),
        duration_ms: 1.0,
        verdict: RunVerdict::Escalated,
        counts: tally.counts(),
        latency: None,
        tally,
        notifications: None,
        stopped: None,
    }
}

/// Issue 12: the streamed `summary.md` lists every check exactly once, also
/// past the tally's list of 1,000 checks that did not pass, and says how
/// many of those follow among the others.
#[test]
fn streamed_sweep_markdown_lists_every_check_once_past_the_listed_cap() {
    use crate::sweep::run::{CheckReport, CheckVerdict};
    use crate::sweep::tally::{SweepTally, LISTED_MAX};
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("summary.md");
    let mut stream = markdown_stream(&target);
    let mut tally = SweepTally::default();
    let total: usize = 1_300;
    for i in 0..total {
        let verdict = if i.is_multiple_of(13) {
            CheckVerdict::Pass
        } else {
            CheckVerdict::Fail
        };
        let check = CheckReport {
            id: format!("c{i:04}"),
            kind: "http",
            verdict,
            ..CheckReport::default()
        };
        let listed = tally.add(&check);
        stream.check(&check, listed);
    }
    let failing = tally.count(CheckVerdict::Fail);
    let report = escalated_sweep(tally);
    assert!(stream.finish(&report, "big", "bundle").is_empty());
    let text = std::fs::read_to_string(&target).unwrap();
    let ids: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| c"))
        .map(|l| &l[2..7])
        .collect();
    assert_eq!(ids.len(), total, "one row per check");
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), total, "no check twice");
    assert!(ids[..LISTED_MAX].iter().all(|id| {
        let i: usize = id[1..].parse().unwrap();
        !i.is_multiple_of(13)
    }));
    assert!(
        text.contains(&format!(
            "The first {LISTED_MAX} checks that did not pass are listed first; {} more are among the others",
            failing - LISTED_MAX as u64
        )),
        "{text}"
    );
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no spool left");
}

#[test]
fn a_sweep_row_escapes_its_cells_and_writes_its_latencies() {
    use crate::sweep::run::{CheckReport, CheckVerdict};
    use crate::sweep::stats::LatencyStats;
    use crate::sweep::tally::SweepTally;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("summary.md");
    let mut stream = markdown_stream(&target);
    let latency = |p50_ms, p95_ms| LatencyStats {
        samples: 1,
        min_ms: p50_ms,
        p50_ms,
        p95_ms,
        p99_ms: p95_ms,
        max_ms: p95_ms,
    };
    let checks = [
        CheckReport {
            id: "a|b<c".into(),
            kind: "http",
            verdict: CheckVerdict::Pass,
            attempts_total: 1,
            latency: Some(latency(0.4249, 12.34)),
            ..CheckReport::default()
        },
        CheckReport {
            id: "down".into(),
            kind: "tcp",
            verdict: CheckVerdict::Fail,
            attempts_total: 3,
            latency: Some(latency(999.96, 1234.5)),
            reason: Some("HTTP 500 | <html>\nline two".into()),
            ..CheckReport::default()
        },
        CheckReport {
            id: "never".into(),
            kind: "dns",
            verdict: CheckVerdict::Blocked,
            ..CheckReport::default()
        },
    ];
    let mut tally = SweepTally::default();
    for check in &checks {
        // The failing rows come first, from the tally; the others stream.
        let listed = tally.add(check);
        stream.check(check, listed);
    }
    let report = escalated_sweep(tally);
    assert!(stream.finish(&report, "rows", "bundle").is_empty());
    let text = std::fs::read_to_string(&target).unwrap();
    for row in [
        "| a\\|b&lt;c | http | pass | 1 | 0.42ms | 12.3ms |  |",
        "| down | tcp | **fail** | 3 | 1000.0ms | 1.23s | HTTP 500 \\| &lt;html> line two |",
        "| never | dns | **blocked** | 0 | - | - |  |",
    ] {
        assert!(text.lines().any(|line| line == row), "{row}\n{text}");
    }
}

/// The streamed JUnit states the same totals and testcases as the
/// whole-document renderer (only the order of testcases may differ).
#[test]
fn streamed_junit_matches_the_whole_document() {
    use crate::report::junit::JunitStream;
    use crate::report::spool::{Mode, Spooled};
    let summary = summary();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("junit.xml");
    let redactor = std::sync::Arc::new(crate::evidence::Redactor::new(&[]));
    let mut spooled = Spooled::new(redactor, 1);
    spooled.add_target(&target, Mode::Replace).unwrap();
    let mut stream = JunitStream::new(spooled, &summary.name);
    for step in &summary.steps {
        stream.case(step, None);
    }
    assert!(stream
        .finish(&summary.run_id, &summary.started_at, summary.duration_ms)
        .is_empty());
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        junit::render(&summary)
    );
}
