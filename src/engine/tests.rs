//! The run loop's decisions — retry, escalate, halt, block, skip, interrupt —
//! driven by a scripted probe into an in-memory journal, on tokio's paused
//! clock so that backoff and timeouts take no real time.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use super::*;
use crate::check::{Clients, Observation, ProbeContext};
use crate::core::record::{AttemptVerdict, Event, RunVerdict, StepVerdict};
use crate::core::{BlobRef, BlobSink, FailureClass};
use crate::runbook::model::Step;
use crate::runbook::{load_runbook_str, Runbook, SecretStore};

/// What the scripted probe does on one attempt.
#[derive(Debug, Clone, Copy)]
enum Act {
    Pass,
    Fail(FailureClass),
    /// Never answers: the attempt's timeout ends it.
    Hang,
}

/// Plays each step's script, one act per attempt (the last act repeats), and
/// counts the attempts it was asked for.
#[derive(Default)]
struct ScriptedProbe {
    scripts: HashMap<String, Vec<Act>>,
    calls: Mutex<HashMap<String, u32>>,
    /// What each step's last attempt was told: `ProbeContext::read_only`.
    read_only: Mutex<HashMap<String, bool>>,
    /// Cancelled when the given step's attempt starts (a signal mid-attempt).
    cancel_on: Option<(String, Cancel)>,
}

impl ScriptedProbe {
    fn with(mut self, step: &str, acts: &[Act]) -> Self {
        self.scripts.insert(step.to_string(), acts.to_vec());
        self
    }

    fn calls(&self, step: &str) -> u32 {
        self.calls.lock().unwrap().get(step).copied().unwrap_or(0)
    }
}

impl Probe for ScriptedProbe {
    async fn probe(&self, step: &Step, ctx: &ProbeContext<'_>) -> Observation {
        self.read_only
            .lock()
            .unwrap()
            .insert(step.id.clone(), ctx.read_only);
        let attempt = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(step.id.clone()).or_insert(0);
            *n += 1;
            *n as usize
        };
        if let Some((id, cancel)) = &self.cancel_on {
            if id == &step.id {
                cancel.cancel();
                std::future::pending::<()>().await;
            }
        }
        let script = self.scripts.get(&step.id).map(Vec::as_slice).unwrap_or(&[]);
        let act = script
            .get(attempt - 1)
            .or(script.last())
            .copied()
            .unwrap_or(Act::Pass);
        match act {
            Act::Pass => Observation::pass(),
            Act::Fail(class) => Observation::fail(class, format!("scripted {class}")),
            Act::Hang => std::future::pending().await,
        }
    }
}

/// The journal, in memory.
#[derive(Default)]
struct MemJournal(Vec<Event>);

impl Emit for MemJournal {
    fn emit(&mut self, event: Event) -> io::Result<u64> {
        self.0.push(event);
        Ok(self.0.len() as u64 - 1)
    }
}

impl MemJournal {
    fn step_end(&self, id: &str) -> (StepVerdict, u32, Option<String>) {
        self.0
            .iter()
            .find_map(|e| match e {
                Event::StepEnd {
                    step,
                    verdict,
                    attempts,
                    reason,
                    ..
                } if step == id => Some((*verdict, *attempts, reason.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no step.end for {id}"))
    }

    fn attempt_classes(&self, id: &str) -> Vec<(AttemptVerdict, Option<FailureClass>)> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Event::AttemptEnd {
                    step,
                    verdict,
                    failure,
                    ..
                } if step == id => Some((*verdict, failure.map(|f| f.class))),
                _ => None,
            })
            .collect()
    }

    fn backoffs(&self, id: &str) -> usize {
        self.0
            .iter()
            .filter(|e| matches!(e, Event::Backoff { step, .. } if step == id))
            .count()
    }

    fn escalations(&self) -> Vec<&crate::core::record::Escalation> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Event::Escalation(x) => Some(x),
                _ => None,
            })
            .collect()
    }
}

struct NoBlobs;

impl BlobSink for NoBlobs {
    fn put(&self, role: &str, bytes: &[u8], truncated: bool) -> io::Result<BlobRef> {
        Ok(BlobRef {
            role: role.to_string(),
            digest: format!("sha256:{}", bytes.len()),
            size: bytes.len() as u64,
            truncated,
        })
    }
}

/// A runbook of `http` steps (the probe is scripted, so nothing is contacted)
/// with the built-in default policy unless `extra` says otherwise.
fn runbook(header_extra: &str, steps: &str) -> Runbook {
    let source =
        format!("[runbook]\nname = \"engine-test\"\nowner = \"ops\"\n{header_extra}\n{steps}");
    load_runbook_str(Path::new("engine-test.toml"), &source)
        .unwrap_or_else(|e| panic!("test runbook does not load: {e:?}"))
}

fn http_step(id: &str, extra: &str) -> String {
    format!(
        "[[step]]\nid = \"{id}\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:9/{id}\"\n{extra}\n"
    )
}

async fn drive(
    runbook: &Runbook,
    probe: &ScriptedProbe,
    cancel: &Cancel,
    options: &RunOptions,
) -> (RunOutcome, MemJournal) {
    let clients = Clients::new();
    let runner = StepRunner {
        probe,
        clients: &clients,
        blobs: &NoBlobs,
        cancel,
        run_id: "test-run",
        owner: runbook.meta.owner.as_deref(),
        mutations: options.mutations.clone(),
        compact: false,
    };
    let mut journal = MemJournal::default();
    let outcome = drive_runbook(
        runbook,
        &SecretStore::default(),
        &runner,
        &mut journal,
        options,
    )
    .await
    .unwrap();
    (outcome, journal)
}

#[tokio::test(start_paused = true)]
async fn the_default_policy_is_two_retries_with_backoff_then_escalation() {
    let book = runbook("", &http_step("web", ""));
    let probe = ScriptedProbe::default().with("web", &[Act::Fail(FailureClass::Refused)]);
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    assert_eq!(probe.calls("web"), 3, "one attempt and two retries");
    assert_eq!(journal.backoffs("web"), 2);
    assert_eq!(journal.step_end("web").0, StepVerdict::Escalated);
    assert_eq!(outcome.verdict, RunVerdict::Escalated);
    let escalations = journal.escalations();
    assert_eq!(escalations.len(), 1);
    assert_eq!(escalations[0].owner.as_deref(), Some("ops"));
    assert_eq!(escalations[0].attempts.len(), 3);
    assert!(escalations[0]
        .attempts
        .iter()
        .all(|a| a.class == Some(FailureClass::Refused)));
}

#[tokio::test(start_paused = true)]
async fn a_step_that_passes_on_its_third_attempt_passes_without_escalation() {
    let book = runbook("", &http_step("web", ""));
    let probe = ScriptedProbe::default().with(
        "web",
        &[
            Act::Fail(FailureClass::Timeout),
            Act::Fail(FailureClass::Refused),
            Act::Pass,
        ],
    );
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    assert_eq!(journal.step_end("web"), (StepVerdict::Pass, 3, None));
    assert_eq!(
        journal.attempt_classes("web"),
        [
            (AttemptVerdict::Fail, Some(FailureClass::Timeout)),
            (AttemptVerdict::Fail, Some(FailureClass::Refused)),
            (AttemptVerdict::Pass, None),
        ]
    );
    assert!(journal.escalations().is_empty());
    assert_eq!(outcome.verdict, RunVerdict::Pass);
}

#[tokio::test(start_paused = true)]
async fn classes_that_cannot_heal_are_not_retried() {
    for class in [
        FailureClass::Auth,
        FailureClass::NotFound,
        FailureClass::Dns,
        FailureClass::Config,
        FailureClass::Security,
    ] {
        let book = runbook("", &http_step("web", ""));
        let probe = ScriptedProbe::default().with("web", &[Act::Fail(class)]);
        let (_, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
        assert_eq!(probe.calls("web"), 1, "{class} must not be retried");
        assert_eq!(journal.backoffs("web"), 0, "{class}");
        let escalation = journal.escalations()[0];
        assert!(escalation.retries_skipped.is_some(), "{class}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_times_out_with_class_timeout() {
    let book = runbook("", &http_step("web", "retries = 1\ntimeout = \"2s\""));
    let probe = ScriptedProbe::default().with("web", &[Act::Hang]);
    let (_, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    assert_eq!(
        journal.attempt_classes("web"),
        [
            (AttemptVerdict::Timeout, Some(FailureClass::Timeout)),
            (AttemptVerdict::Timeout, Some(FailureClass::Timeout)),
        ]
    );
    let (verdict, attempts, reason) = journal.step_end("web");
    assert_eq!((verdict, attempts), (StepVerdict::Escalated, 2));
    assert_eq!(reason.as_deref(), Some("timed out after 2s"));
}

#[tokio::test(start_paused = true)]
async fn dependents_of_an_escalated_step_are_blocked_and_others_still_run() {
    let steps = [
        http_step("db", "retries = 0"),
        http_step("app", "depends_on = [\"db\"]"),
        http_step("cdn", ""),
    ]
    .concat();
    let book = runbook("", &steps);
    let probe = ScriptedProbe::default().with("db", &[Act::Fail(FailureClass::Auth)]);
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    let (verdict, attempts, reason) = journal.step_end("app");
    assert_eq!((verdict, attempts), (StepVerdict::Blocked, 0));
    assert!(reason.unwrap().contains("`db` (escalated)"));
    assert_eq!(probe.calls("app"), 0);
    assert_eq!(journal.step_end("cdn").0, StepVerdict::Pass);
    assert_eq!(outcome.verdict, RunVerdict::Escalated);
    assert_eq!(outcome.counts.get("blocked"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn halt_skips_every_later_step() {
    let steps = [http_step("first", "retries = 0"), http_step("second", "")].concat();
    let book = runbook("on_escalate = \"halt\"", &steps);
    let probe = ScriptedProbe::default().with("first", &[Act::Fail(FailureClass::Expectation)]);
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    assert_eq!(outcome.verdict, RunVerdict::Halted);
    let (verdict, _, reason) = journal.step_end("second");
    assert_eq!(verdict, StepVerdict::Skipped);
    assert!(reason.unwrap().contains("halted after `first` escalated"));
    assert_eq!(probe.calls("second"), 0);
}

#[tokio::test(start_paused = true)]
async fn mutating_steps_are_skipped_unless_allowed() {
    let book = runbook("", &http_step("deploy", "mutating = true"));
    let probe = ScriptedProbe::default();
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    assert_eq!(journal.step_end("deploy").0, StepVerdict::Skipped);
    assert_eq!(probe.calls("deploy"), 0);
    assert_eq!(outcome.verdict, RunVerdict::Pass);

    let allowed = RunOptions {
        mutations: Mutations::All,
        ..RunOptions::default()
    };
    let (_, journal) = drive(&book, &probe, &Cancel::new(), &allowed).await;
    assert_eq!(journal.step_end("deploy").0, StepVerdict::Pass);
    assert_eq!(probe.calls("deploy"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_signal_during_an_attempt_records_it_as_interrupted_and_stops_the_run() {
    let steps = [http_step("slow", ""), http_step("next", "")].concat();
    let book = runbook("", &steps);
    let cancel = Cancel::new();
    let probe = ScriptedProbe {
        cancel_on: Some(("slow".to_string(), cancel.clone())),
        ..ScriptedProbe::default()
    };
    let (outcome, journal) = drive(&book, &probe, &cancel, &RunOptions::default()).await;
    assert_eq!(
        journal.attempt_classes("slow"),
        [(AttemptVerdict::Interrupted, Some(FailureClass::Interrupted))]
    );
    assert_eq!(journal.step_end("slow").0, StepVerdict::Interrupted);
    assert_eq!(journal.step_end("next").0, StepVerdict::Skipped);
    assert_eq!(probe.calls("next"), 0);
    assert_eq!(outcome.verdict, RunVerdict::Interrupted);
    // Nothing is retried after a signal.
    assert_eq!(journal.backoffs("slow"), 0);
}

#[tokio::test(start_paused = true)]
async fn dependents_of_a_skipped_mutating_step_are_skipped_and_the_run_passes() {
    let steps = [
        http_step("check", ""),
        http_step("deploy", "mutating = true\ndepends_on = [\"check\"]"),
        http_step("verify", "depends_on = [\"deploy\"]"),
    ]
    .concat();
    let book = runbook("", &steps);
    let probe = ScriptedProbe::default();
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    let (verdict, attempts, reason) = journal.step_end("verify");
    assert_eq!((verdict, attempts), (StepVerdict::Skipped, 0));
    assert_eq!(
        reason.as_deref(),
        Some("not run: depends on `deploy` (skipped)")
    );
    assert_eq!(outcome.verdict, RunVerdict::Pass);
    assert_eq!(outcome.counts.get("skipped"), Some(&2));
    assert_eq!(outcome.counts.get("blocked"), None);
}

#[tokio::test(start_paused = true)]
async fn tagged_mutations_run_only_the_steps_with_an_allowed_tag() {
    let steps = [
        http_step("deploy", "mutating = true\ntags = [\"deploy\"]"),
        http_step("note", "mutating = true\ntags = [\"qa-writes\"]"),
    ]
    .concat();
    let book = runbook("", &steps);
    let probe = ScriptedProbe::default();
    let options = RunOptions {
        mutations: Mutations::Tagged(vec!["qa-writes".to_string()]),
        ..RunOptions::default()
    };
    let (_, journal) = drive(&book, &probe, &Cancel::new(), &options).await;
    assert_eq!(journal.step_end("note").0, StepVerdict::Pass);
    let (verdict, _, reason) = journal.step_end("deploy");
    assert_eq!(verdict, StepVerdict::Skipped);
    assert!(reason.unwrap().contains("--allow-mutations=qa-writes"));
    assert_eq!(probe.calls("deploy"), 0);
    let Event::RunStart {
        allow_mutations,
        mutation_tags,
        ..
    } = &journal.0[0]
    else {
        panic!("run.start first")
    };
    assert!(allow_mutations);
    assert_eq!(mutation_tags, &["qa-writes"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_dependency_blocks_even_when_another_was_skipped() {
    let steps = [
        http_step("db", "retries = 0"),
        http_step("deploy", "mutating = true"),
        http_step("app", "depends_on = [\"db\", \"deploy\"]"),
    ]
    .concat();
    let book = runbook("", &steps);
    let probe = ScriptedProbe::default().with("db", &[Act::Fail(FailureClass::Refused)]);
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    let (verdict, _, reason) = journal.step_end("app");
    assert_eq!(verdict, StepVerdict::Blocked);
    assert_eq!(
        reason.as_deref(),
        Some("depends on `db` (escalated), `deploy` (skipped)")
    );
    assert_eq!(outcome.verdict, RunVerdict::Escalated);
}

/// Answers every confirmation the same way.
struct FixedConfirmer(crate::check::confirm::Confirmation);

impl crate::check::confirm::Confirmer for FixedConfirmer {
    fn confirm(&self, _step: &str, _prompt: &str) -> crate::check::confirm::Confirmation {
        self.0.clone()
    }
}

fn confirm_steps() -> String {
    "[[step]]\nid = \"token\"\ncheck = \"confirm\"\nprompt = \"create the API token\"\n".to_string()
        + &http_step("api", "depends_on = [\"token\"]")
}

#[tokio::test(start_paused = true)]
async fn a_confirmation_records_who_confirmed_and_lets_dependents_run() {
    use crate::check::confirm::Confirmation;
    let book = runbook("", &confirm_steps());
    let probe = ScriptedProbe::default();
    let options = RunOptions {
        confirmer: Some(std::sync::Arc::new(FixedConfirmer(
            Confirmation::Confirmed {
                by: "dana".into(),
                via: "--confirm",
                note: Some("token in vault".into()),
            },
        ))),
        ..RunOptions::default()
    };
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &options).await;
    assert_eq!(journal.step_end("token").0, StepVerdict::Pass);
    let detail = journal
        .0
        .iter()
        .find_map(|e| match e {
            Event::AttemptEnd { step, detail, .. } if step == "token" => Some(detail.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(detail["confirmed_by"], "dana");
    assert_eq!(detail["via"], "--confirm");
    assert_eq!(detail["note"], "token in vault");
    assert_eq!(detail["prompt"], "create the API token");
    assert_eq!(journal.step_end("api").0, StepVerdict::Pass);
    assert_eq!(probe.calls("token"), 0, "a confirmation is never probed");
    assert_eq!(outcome.verdict, RunVerdict::Pass);
}

#[tokio::test(start_paused = true)]
async fn nobody_to_ask_is_unconfirmed_not_escalated_and_blocks_dependents() {
    let book = runbook("", &confirm_steps());
    let probe = ScriptedProbe::default();
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    let (verdict, attempts, reason) = journal.step_end("token");
    assert_eq!((verdict, attempts), (StepVerdict::Unconfirmed, 1));
    assert!(reason.unwrap().contains("--confirm token"));
    assert!(journal.escalations().is_empty(), "nobody is paged");
    assert_eq!(journal.step_end("api").0, StepVerdict::Blocked);
    assert_eq!(outcome.verdict, RunVerdict::Unconfirmed);
}

#[tokio::test(start_paused = true)]
async fn a_step_owner_replaces_the_runbook_owner_in_its_escalation() {
    let book = runbook("", &http_step("db", "retries = 0\nowner = \"dba-oncall\""));
    let probe = ScriptedProbe::default().with("db", &[Act::Fail(FailureClass::Refused)]);
    let (_, journal) = drive(&book, &probe, &Cancel::new(), &RunOptions::default()).await;
    assert_eq!(
        journal.escalations()[0].owner.as_deref(),
        Some("dba-oncall")
    );
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_records_earlier_passes_reruns_read_only_captures_and_blocks_unrun_ones() {
    let capture = "capture = { v = { header = \"x-v\" } }";
    let steps = [
        http_step("deploy", &format!("mutating = true\n{capture}")),
        http_step("probe", capture),
        http_step("plain", ""),
        "[[step]]\nid = \"use-deploy\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:9/{{steps.deploy.v}}\"\n".to_string(),
        "[[step]]\nid = \"use-probe\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:9/{{steps.probe.v}}\"\n".to_string(),
    ]
    .concat();
    let book = runbook("", &steps);
    let from = crate::core::record::ResumedFrom {
        run_id: "earlier-run".to_string(),
        seal_head: "sha256:abc".to_string(),
        path: "artifacts/earlier".to_string(),
    };
    let link = |seq| crate::core::record::EarlierPass {
        run_id: from.run_id.clone(),
        seal_head: from.seal_head.clone(),
        seq,
    };
    let options = RunOptions {
        resume: Some(Resume {
            from: from.clone(),
            passed: HashMap::from([
                ("deploy".to_string(), link(4)),
                ("probe".to_string(), link(8)),
                ("plain".to_string(), link(12)),
            ]),
        }),
        ..RunOptions::default()
    };
    let probe = ScriptedProbe::default();
    let (outcome, journal) = drive(&book, &probe, &Cancel::new(), &options).await;

    // Passed earlier: not run again (the mutating one even without
    // --allow-mutations), recorded with the link.
    for (id, seq) in [("deploy", 4), ("plain", 12)] {
        assert_eq!(probe.calls(id), 0, "{id}");
        let end = journal
            .0
            .iter()
            .find_map(|e| match e {
                Event::StepEnd {
                    step,
                    verdict,
                    attempts,
                    earlier,
                    ..
                } if step == id => Some((*verdict, *attempts, earlier.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(end, (StepVerdict::Pass, 0, Some(link(seq))), "{id}");
    }
    // A read-only step that captures runs again for its values.
    assert_eq!(probe.calls("probe"), 1);
    assert_eq!(journal.step_end("use-probe").0, StepVerdict::Pass);
    // The mutating step's captures are not available: its user is blocked.
    let (verdict, attempts, reason) = journal.step_end("use-deploy");
    assert_eq!((verdict, attempts), (StepVerdict::Blocked, 0));
    let reason = reason.unwrap();
    assert!(
        reason.contains("`deploy` (passed earlier in run earlier-run)")
            && reason.contains("not available"),
        "{reason}"
    );
    assert_eq!(probe.calls("use-deploy"), 0);
    assert_eq!(outcome.passed_earlier, 2);
    assert_eq!(outcome.verdict, RunVerdict::Escalated);
}

#[tokio::test(start_paused = true)]
async fn probes_are_read_only_unless_the_run_allows_the_step_to_change_things() {
    let book = runbook(
        "",
        &format!(
            "{}{}",
            http_step("plain", ""),
            http_step("qa", "tags = [\"qa-writes\"]")
        ),
    );
    for (mutations, plain, qa) in [
        (Mutations::Forbidden, true, true),
        (Mutations::All, false, false),
        (Mutations::Tagged(vec!["qa-writes".into()]), true, false),
        (Mutations::Tagged(vec!["deploy".into()]), true, true),
    ] {
        let probe = ScriptedProbe::default();
        let options = RunOptions {
            mutations: mutations.clone(),
            ..RunOptions::default()
        };
        drive(&book, &probe, &Cancel::new(), &options).await;
        let seen = probe.read_only.lock().unwrap().clone();
        assert_eq!(seen["plain"], plain, "{mutations:?}");
        assert_eq!(seen["qa"], qa, "{mutations:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_compact_runner_writes_a_first_attempt_pass_as_one_record_and_anything_else_in_full() {
    let book = runbook(
        "",
        &format!("{}{}", http_step("ok", ""), http_step("flap", "")),
    );
    let probe =
        ScriptedProbe::default().with("flap", &[Act::Fail(FailureClass::Refused), Act::Pass]);
    let clients = Clients::new();
    let cancel = Cancel::new();
    let runner = StepRunner {
        probe: &probe,
        clients: &clients,
        blobs: &NoBlobs,
        cancel: &cancel,
        run_id: "test-run",
        owner: None,
        mutations: Mutations::Forbidden,
        compact: true,
    };
    let vars = std::collections::BTreeMap::new();
    let secrets = SecretStore::default();
    let scope = RunScope::new(&vars, &secrets);
    let mut journal = MemJournal::default();
    for step in &book.steps {
        let result = runner.run_step(step, &scope, &mut journal).await.unwrap();
        assert_eq!(result.verdict, StepVerdict::Pass);
    }
    let types: Vec<(&str, &str)> = journal
        .0
        .iter()
        .map(|e| (e.type_name(), e.step().unwrap_or("")))
        .collect();
    assert_eq!(
        types,
        [
            ("step.pass", "ok"),
            ("step.start", "flap"),
            ("attempt.start", "flap"),
            ("attempt.end", "flap"),
            ("backoff", "flap"),
            ("attempt.start", "flap"),
            ("attempt.end", "flap"),
            ("step.end", "flap"),
        ]
    );
    let Event::StepPass {
        max_attempts,
        target,
        rendered,
        ..
    } = &journal.0[0]
    else {
        unreachable!()
    };
    assert_eq!(*max_attempts, 3, "the default policy, as step.start has it");
    assert_eq!(target, "GET http://127.0.0.1:9/ok");
    assert_eq!(rendered, &None, "equal to the target");
}
