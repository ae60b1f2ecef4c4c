//! `runproof run --resume BUNDLE`: steps that passed in a verified earlier
//! bundle of the same runbook are recorded as passed earlier and not run
//! again (the server on 127.0.0.1 counts every hit); read-only steps that
//! capture values run again; steps needing captures of a mutating step that
//! is not run again are blocked; bundles that do not verify, ran another
//! runbook or are not runs are refused with exit 2.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

/// Six steps: `health`, a mutating `deploy`, a `signoff` confirmation, a
/// read-only `version` that
/// captures the call number, `migrate` that fails its first three calls
/// (three attempts: it escalates the first time, and the run halts), and
/// `check` that uses `version`'s capture in its URL.
fn deployment(base: &str) -> String {
    format!(
        r#"[runbook]
name = "deploy"
owner = "sre-oncall"
on_escalate = "halt"
{FAST}
[[step]]
id = "health"
check = "http"
url = "{base}/flaky/health/0"

[[step]]
id = "deploy"
check = "http"
mutating = true
url = "{base}/flaky/deploy/0"

[[step]]
id = "signoff"
check = "confirm"
prompt = "Is the deploy announced?"

[[step]]
id = "version"
check = "http"
url = "{base}/flaky/version/0"
capture = {{ n = {{ regex = 'call (\d+)' }} }}

[[step]]
id = "migrate"
check = "http"
url = "{base}/flaky/migrate/3"

[[step]]
id = "check"
check = "http"
url = "{base}/flaky/check-{{{{steps.version.n}}}}/0"
depends_on = ["migrate"]
"#
    )
}

fn header(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("runproof.json")).unwrap()).unwrap()
}

fn seal_head(bundle: &Path) -> String {
    let seal: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("seal.json")).unwrap()).unwrap();
    seal["predicate"]["head"].as_str().unwrap().to_string()
}

/// The seq of a step's `step.end` in a journal.
fn end_seq(events: &[Value], step: &str) -> u64 {
    records(events, "step.end", Some(step))[0]["seq"]
        .as_u64()
        .unwrap()
}

fn bundles_under(dir: &Path) -> usize {
    files_under(dir)
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "runproof.json"))
        .count()
}

#[test]
fn resume_records_earlier_passes_and_runs_the_rest() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write("deploy.toml", &deployment(&server.url()));

    let first = ws.run(&path, &["--allow-mutations", "--confirm", "signoff"]);
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    let earlier = bundle_path(&first);
    let earlier_events = events(&earlier);
    assert_eq!(verdict(&earlier_events, "migrate"), "escalated");
    assert_eq!(verdict(&earlier_events, "check"), "skipped");
    assert_eq!(
        (
            server.calls("health"),
            server.calls("deploy"),
            server.calls("version"),
            server.calls("migrate")
        ),
        (1, 1, 1, 3)
    );

    let second = ws.run(
        &path,
        &["--allow-mutations", "--resume", earlier.to_str().unwrap()],
    );
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("resuming run"), "{stdout}");
    assert!(stdout.contains("passed earlier in run"), "{stdout}");
    assert!(
        stdout.contains("passed: 6 passed (3 earlier, not run again)"),
        "{stdout}"
    );

    // Not run again, the mutating one above all: the server saw no second hit.
    assert_eq!(server.calls("health"), 1);
    assert_eq!(server.calls("deploy"), 1);
    // The read-only capturing step ran again, and its value flowed on.
    assert_eq!(server.calls("version"), 2);
    assert_eq!(server.calls("migrate"), 4);
    assert_eq!(server.calls("check-2"), 1);

    let resumed = bundle_path(&second);
    assert_ne!(resumed, earlier);
    let run_id = header(&earlier)["run_id"].as_str().unwrap().to_string();
    let head = seal_head(&earlier);
    let resumed_from = &header(&resumed)["resumed_from"];
    assert_eq!(resumed_from["run_id"], run_id.as_str());
    assert_eq!(resumed_from["seal_head"], head.as_str());

    let events = events(&resumed);
    // The confirmation was given earlier: no second --confirm is needed.
    for step in ["health", "deploy", "signoff"] {
        let end = records(&events, "step.end", Some(step))[0];
        assert_eq!(end["verdict"], "pass", "{end}");
        assert_eq!(end["attempts"], 0, "{end}");
        assert_eq!(end["earlier"]["run_id"], run_id.as_str(), "{end}");
        assert_eq!(end["earlier"]["seal_head"], head.as_str(), "{end}");
        assert_eq!(
            end["earlier"]["seq"],
            end_seq(&earlier_events, step),
            "{end}"
        );
        assert!(records(&events, "step.start", Some(step)).is_empty());
    }
    for step in ["version", "migrate", "check"] {
        assert_eq!(verdict(&events, step), "pass", "{step}");
        assert_eq!(records(&events, "step.start", Some(step)).len(), 1);
        assert!(records(&events, "step.end", Some(step))[0]
            .get("earlier")
            .is_none());
    }

    let verified = verify(&resumed, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(text.contains("3 passed earlier in run"), "{text}");
}

#[test]
fn steps_needing_captures_of_a_mutating_step_not_run_again_are_blocked() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let path = ws.write(
        "create.toml",
        &format!(
            r#"[runbook]
name = "create"
{FAST}
[[step]]
id = "create"
check = "http"
mutating = true
url = "{base}/flaky/create/0"
capture = {{ n = {{ regex = 'call (\d+)' }} }}

[[step]]
id = "gate"
check = "http"
url = "{base}/flaky/gate/3"

[[step]]
id = "use"
check = "http"
url = "{base}/flaky/use-{{{{steps.create.n}}}}/0"
depends_on = ["gate"]
"#
        ),
    );
    let first = ws.run(&path, &["--allow-mutations"]);
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    let earlier = bundle_path(&first);
    assert_eq!(verdict(&events(&earlier), "use"), "blocked");

    // Without --allow-mutations: the mutating step that passed earlier is
    // recorded as passed earlier, not skipped.
    let second = ws.run(&path, &["--resume", earlier.to_str().unwrap(), "--json"]);
    assert_eq!(second.status.code(), Some(1), "{}", describe(&second));
    assert_eq!(server.calls("create"), 1, "the mutating step ran again");
    assert_eq!(server.calls("gate"), 4);
    let doc: Value = serde_json::from_slice(&second.stdout).expect("one JSON document");
    assert_eq!(doc["resumed_from"]["run_id"], header(&earlier)["run_id"]);
    let resumed = std::path::PathBuf::from(doc["bundle"].as_str().unwrap());
    let events = events(&resumed);
    assert_eq!(verdict(&events, "create"), "pass");
    assert!(records(&events, "step.end", Some("create"))[0]["earlier"].is_object());
    assert_eq!(verdict(&events, "gate"), "pass");
    let end = records(&events, "step.end", Some("use"))[0];
    assert_eq!(end["verdict"], "blocked", "{end}");
    let reason = end["reason"].as_str().unwrap();
    assert!(
        reason.contains("`create`") && reason.contains("not available"),
        "{reason}"
    );
    let verified = verify(&resumed, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
}

#[test]
fn resume_refuses_a_bundle_that_does_not_verify_or_match() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write("deploy.toml", &deployment(&server.url()));
    let first = ws.run(&path, &["--allow-mutations"]);
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    let earlier = bundle_path(&first);

    // Another runbook's bundle (it verifies, but ran something else).
    let other = ws.write(
        "other.toml",
        &format!(
            "[runbook]\nname = \"other\"\n[[step]]\nid = \"ok\"\ncheck = \"http\"\nurl = \"{}/ok\"\n",
            server.url()
        ),
    );
    let other_run = ws.run(&other, &[]);
    assert_eq!(other_run.status.code(), Some(0), "{}", describe(&other_run));
    let other_bundle = bundle_path(&other_run);

    // The earlier bundle with one record changed.
    let tampered = ws.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    for file in files_under(&earlier) {
        let to = tampered.join(file.strip_prefix(&earlier).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
    }
    let journal = std::fs::read_to_string(tampered.join("events.jsonl")).unwrap();
    let forged = journal.replacen("\"verdict\":\"escalated\"", "\"verdict\":\"pass\"", 1);
    assert_ne!(journal, forged);
    std::fs::write(tampered.join("events.jsonl"), forged).unwrap();

    // A sweep bundle.
    let checks = ws.write(
        "checks.toml",
        &format!(
            "[[check]]\nid = \"ok\"\ncheck = \"http\"\nurl = \"{}/ok\"\n",
            server.url()
        ),
    );
    let sweep = runproof()
        .arg("sweep")
        .arg(&checks)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .output()
        .unwrap();
    assert_eq!(sweep.status.code(), Some(0), "{}", describe(&sweep));
    let sweep_bundle = bundle_path(&sweep);

    let bundles_before = bundles_under(&ws.artifacts());
    let calls_before = server.calls("health");
    for (bundle, why) in [
        (other_bundle.as_path(), "different runbook"),
        (tampered.as_path(), "does not verify"),
        (sweep_bundle.as_path(), "sweep bundle"),
        (ws.path().join("missing").as_path(), "does not exist"),
    ] {
        let output = ws.run(
            &path,
            &["--allow-mutations", "--resume", bundle.to_str().unwrap()],
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{why}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--resume"), "{why}: {stderr}");
        assert!(stderr.contains(why), "{why}: {stderr}");
    }
    // Nothing ran and no bundle was opened.
    assert_eq!(server.calls("health"), calls_before);
    assert_eq!(bundles_under(&ws.artifacts()), bundles_before);
}
