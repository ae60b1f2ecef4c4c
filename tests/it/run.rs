//! `runproof run` end to end: the real binary against a real HTTP server on
//! 127.0.0.1 — retries, escalation, halt/continue, blocking, timeouts,
//! process-group kills, captures, mutations and exit codes.

use std::time::{Duration, Instant};

use crate::support::*;

fn runbook(name: &str, body: &str) -> String {
    format!("[runbook]\nname = \"{name}\"\nowner = \"sre-oncall\"\n{FAST}\n{body}")
}

#[test]
fn passing_runbook_exits_0_with_one_attempt_per_step() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "pass.toml",
        &runbook(
            "pass",
            &format!(
                r#"
[[step]]
id = "health"
check = "http"
url = "{base}/json"
expect = {{ status = 200, json = {{ data_services = "ok" }}, json_exists = ["items[1].id"] }}

[[step]]
id = "shell"
check = "command"
argv = ["sh", "-c", "echo hello"]
expect = {{ stdout_contains = "hello" }}
"#,
                base = server.url()
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    assert_eq!(verdict(&events, "health"), "pass");
    assert_eq!(verdict(&events, "shell"), "pass");
    assert_eq!(records(&events, "attempt.end", Some("health")).len(), 1);
    assert_eq!(events.last().unwrap()["type"], "run.end");
    assert_eq!(events.last().unwrap()["verdict"], "pass");
    for file in [
        "runproof.json",
        "events.jsonl",
        "summary.md",
        "junit.xml",
        "seal.json",
        "runbook.toml",
    ] {
        assert!(
            bundle.join(file).is_file(),
            "{file} missing in {}",
            bundle.display()
        );
    }
}

#[test]
fn step_passing_on_third_attempt_records_three_attempts_and_two_backoffs() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "flaky.toml",
        &runbook(
            "flaky",
            &format!(
                "[[step]]\nid = \"warm\"\ncheck = \"http\"\nurl = \"{}/flaky/warm/2\"\n",
                server.url()
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let attempts = records(&events, "attempt.end", Some("warm"));
    let verdicts: Vec<&str> = attempts
        .iter()
        .map(|a| a["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["fail", "fail", "pass"]);
    assert_eq!(attempts[0]["reason"], "HTTP 503, want 2xx");
    assert_eq!(records(&events, "backoff", Some("warm")).len(), 2);
    assert_eq!(verdict(&events, "warm"), "pass");
    assert_eq!(server.calls("warm"), 3);
    assert!(records(&events, "escalation", None).is_empty());
    let junit = std::fs::read_to_string(bundle_path(&output).join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<flakyFailure").count(), 2, "{junit}");
}

/// `max_latency` fails an answer slower than allowed. Deterministic: the
/// server sleeps 400 ms, so no machine can answer within 100 ms.
#[test]
fn answer_slower_than_max_latency_fails_naming_both() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "latency.toml",
        &runbook(
            "latency",
            &format!(
                "[[step]]\nid = \"slow\"\ncheck = \"http\"\nurl = \"{}/slow/400\"\nretries = 0\n\
                 expect = {{ status = 200, max_latency = \"100ms\" }}\n",
                server.url()
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let attempts = records(&events, "attempt.end", Some("slow"));
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["verdict"], "fail", "{}", attempts[0]);
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the request took ")
            && reason.ends_with("ms, more than max_latency 100ms"),
        "{reason}"
    );
}

/// No `[defaults]`, no step policy: the built-in default of two retries
/// applies (README: `retries = 2`, backoff from 1 s doubling, jitter on), so a
/// step that always fails reaches the server exactly three times, with two
/// backoff records in between.
#[test]
fn built_in_default_is_two_retries_with_backoff() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "defaults.toml",
        &format!(
            "[runbook]\nname = \"defaults\"\nowner = \"sre-oncall\"\n\n\
             [[step]]\nid = \"down\"\ncheck = \"http\"\nurl = \"{}/flaky/down/1000\"\n",
            server.url()
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(server.calls("down"), 3, "one attempt and two retries");
    let events = events(&bundle_path(&output));
    assert_eq!(records(&events, "attempt.end", Some("down")).len(), 3);
    let backoffs = records(&events, "backoff", Some("down"));
    let after: Vec<u64> = backoffs
        .iter()
        .map(|b| b["after_attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(after, [1, 2], "{backoffs:?}");
    // Doubling from 1 s; jitter adds at most one base delay.
    for (backoff, base) in backoffs.iter().zip([1000, 2000]) {
        let delay = backoff["delay_ms"].as_u64().unwrap();
        assert!(
            (base..=2 * base).contains(&delay),
            "delay {delay} ms, base {base} ms: {backoff}"
        );
    }
    assert_eq!(verdict(&events, "down"), "escalated");
    assert_eq!(records(&events, "escalation", Some("down")).len(), 1);
}

#[test]
fn step_failing_every_attempt_escalates_after_exactly_three() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "down.toml",
        &runbook(
            "down",
            &format!(
                "[[step]]\nid = \"payments\"\ncheck = \"http\"\nurl = \"{}/flaky/payments/99\"\nhint = \"check the provider status page\"\n",
                server.url()
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    assert_eq!(records(&events, "attempt.end", Some("payments")).len(), 3);
    assert_eq!(server.calls("payments"), 3);
    let escalations = records(&events, "escalation", Some("payments"));
    assert_eq!(escalations.len(), 1);
    let escalation = escalations[0];
    assert_eq!(escalation["owner"], "sre-oncall");
    assert_eq!(escalation["hint"], "check the provider status page");
    assert_eq!(escalation["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(escalation["last_reason"], "HTTP 503, want 2xx");
    assert_eq!(verdict(&events, "payments"), "escalated");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ESCALATED payments after 3 attempt(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hint:  check the provider status page"),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(bundle_path(&output).join("summary.md")).unwrap();
    assert!(
        summary.contains("**Hint:** check the provider status page"),
        "{summary}"
    );
}

#[test]
fn credentials_rejected_do_not_burn_retries() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "auth.toml",
        &runbook(
            "auth",
            &format!(
                "[[step]]\nid = \"api\"\ncheck = \"http\"\nurl = \"{}/status/401\"\n",
                server.url()
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let attempts = records(&events, "attempt.end", Some("api"));
    assert_eq!(attempts.len(), 1, "a 401 must not be retried");
    assert!(attempts[0]["no_retry"]
        .as_str()
        .unwrap()
        .contains("rejected the credentials"));
    let escalation = records(&events, "escalation", Some("api"))[0];
    assert!(escalation["retries_skipped"].is_string());
}

fn two_failing_steps(on_escalate: &str, base: &str) -> String {
    format!(
        r#"[runbook]
name = "policy-{on_escalate}"
on_escalate = "{on_escalate}"
{FAST}
[[step]]
id = "first"
check = "http"
url = "{base}/status/500"

[[step]]
id = "second"
check = "http"
url = "{base}/ok"
"#
    )
}

#[test]
fn halt_stops_after_an_escalation_and_continue_goes_on() {
    let server = TestServer::start();
    let ws = Workspace::new();

    let halt = ws.write("halt.toml", &two_failing_steps("halt", &server.url()));
    let output = ws.run(&halt, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    assert_eq!(verdict(&events, "first"), "escalated");
    assert_eq!(verdict(&events, "second"), "skipped");
    assert!(records(&events, "step.start", Some("second")).is_empty());
    assert_eq!(events.last().unwrap()["verdict"], "halted");

    let cont = ws.write(
        "continue.toml",
        &two_failing_steps("continue", &server.url()),
    );
    let output = ws.run(&cont, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events_of(&output);
    assert_eq!(verdict(&events, "first"), "escalated");
    assert_eq!(verdict(&events, "second"), "pass");
    assert_eq!(events.last().unwrap()["verdict"], "escalated");
}

#[test]
fn dependents_of_an_escalated_step_are_blocked_transitively() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let path = ws.write(
        "blocked.toml",
        &runbook(
            "blocked",
            &format!(
                r#"
[[step]]
id = "gateway"
check = "http"
url = "{base}/status/502"
retries = 0

[[step]]
id = "api"
check = "http"
url = "{base}/ok"
depends_on = ["gateway"]

[[step]]
id = "ui"
check = "http"
url = "{base}/ok"
depends_on = ["api"]

[[step]]
id = "independent"
check = "http"
url = "{base}/ok"
"#
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    assert_eq!(verdict(&events, "gateway"), "escalated");
    assert_eq!(verdict(&events, "api"), "blocked");
    assert_eq!(verdict(&events, "ui"), "blocked");
    assert_eq!(verdict(&events, "independent"), "pass");
    let api_end = records(&events, "step.end", Some("api"))[0];
    assert!(
        api_end["reason"]
            .as_str()
            .unwrap()
            .contains("`gateway` (escalated)"),
        "{api_end}"
    );
    assert!(records(&events, "attempt.start", Some("api")).is_empty());
}

#[test]
fn hanging_server_is_bounded_by_the_attempt_timeout() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "hang.toml",
        &format!(
            "[runbook]\nname = \"hang\"\n[defaults]\nretries = 1\ntimeout = \"300ms\"\nbackoff = {{ initial = \"10ms\", max = \"10ms\", jitter = false }}\n[[step]]\nid = \"stuck\"\ncheck = \"http\"\nurl = \"{}/hang\"\n",
            server.url()
        ),
    );
    // The server would hold each request for 10 minutes: only the timeout
    // can end these attempts (an answer would make them pass).
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let attempts = records(&events, "attempt.end", Some("stuck"));
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        assert_eq!(attempt["verdict"], "timeout");
        assert_eq!(attempt["reason"], "timed out after 300ms");
        assert!(
            attempt["duration_ms"].as_f64().unwrap() >= 300.0,
            "{attempt}"
        );
    }
}

#[test]
fn command_outliving_its_timeout_is_killed_with_its_children() {
    let ws = Workspace::new();
    let pid_file = ws.path().join("child.pid");
    let path = ws.write(
        "kill.toml",
        &format!(
            r#"[runbook]
name = "kill"
[defaults]
retries = 0
timeout = "500ms"

[[step]]
id = "sleeper"
check = "command"
shell = "sleep 60 & echo $! > '{}'; wait"
"#,
            pid_file.display()
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    assert_eq!(
        records(&events, "attempt.end", Some("sleeper"))[0]["verdict"],
        "timeout"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The background `sleep 60` must be gone (or a zombie awaiting its reaper).
    let mut alive = true;
    for _ in 0..50 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = status
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if status.is_empty() || state == "Z" {
            alive = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !alive,
        "child {pid} of the timed-out command is still running"
    );
}

#[test]
fn captures_chain_two_http_steps() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let path = ws.write(
        "capture.toml",
        &runbook(
            "capture",
            &format!(
                r#"
[[step]]
id = "create"
check = "http"
method = "POST"
url = "{base}/items"
json = {{ name = "widget" }}
expect = {{ status = 201 }}
capture = {{ item_id = "id" }}

[[step]]
id = "fetch"
check = "http"
url = "{base}/items/{{{{steps.create.item_id}}}}"
expect = {{ status = 200, json = {{ name = "widget", id = 42 }} }}
"#
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    assert_eq!(verdict(&events, "fetch"), "pass");
    // Evidence records the template, not the expansion.
    let fetch_start = records(&events, "step.start", Some("fetch"))[0];
    assert_eq!(
        fetch_start["target"],
        format!("GET {base}/items/{{{{steps.create.item_id}}}}")
    );
}

#[test]
fn mutating_steps_run_only_with_allow_mutations() {
    let ws = Workspace::new();
    let marker = ws.path().join("mutated");
    let path = ws.write(
        "mutate.toml",
        &format!(
            "[runbook]\nname = \"mutate\"\n[[step]]\nid = \"deploy\"\ncheck = \"command\"\nmutating = true\nargv = [\"touch\", \"{}\"]\n",
            marker.display()
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    assert_eq!(verdict(&events, "deploy"), "skipped");
    assert!(records(&events, "step.end", Some("deploy"))[0]["reason"]
        .as_str()
        .unwrap()
        .contains("--allow-mutations"));
    assert!(!marker.exists());

    let output = ws.run(&path, &["--allow-mutations"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(verdict(&events_of(&output), "deploy"), "pass");
    assert!(marker.exists());
}

fn events_of(output: &std::process::Output) -> Vec<serde_json::Value> {
    events(&bundle_path(output))
}

#[test]
fn only_runs_the_selected_step_and_its_dependencies() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let path = ws.write(
        "only.toml",
        &runbook(
            "only",
            &format!(
                "[[step]]\nid = \"a\"\ncheck = \"http\"\nurl = \"{base}/ok\"\n[[step]]\nid = \"b\"\ncheck = \"http\"\nurl = \"{base}/ok\"\ndepends_on = [\"a\"]\n[[step]]\nid = \"c\"\ncheck = \"http\"\nurl = \"{base}/ok\"\n"
            ),
        ),
    );
    let output = ws.run(&path, &["--only", "b"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = events_of(&output);
    assert_eq!(verdict(&events, "a"), "pass");
    assert_eq!(verdict(&events, "b"), "pass");
    assert_eq!(verdict(&events, "c"), "skipped");

    let output = ws.run(&path, &["--only", "nope"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

#[test]
fn two_runs_never_share_a_bundle() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "twice.toml",
        &runbook(
            "twice",
            &format!(
                "[[step]]\nid = \"a\"\ncheck = \"http\"\nurl = \"{}/ok\"\n",
                server.url()
            ),
        ),
    );
    let first = bundle_path(&ws.run(&path, &[]));
    let second = bundle_path(&ws.run(&path, &[]));
    assert_ne!(first, second);
    assert!(
        first.starts_with(ws.artifacts().join("twice")),
        "{}",
        first.display()
    );
}

#[test]
fn unwritable_artifacts_folder_is_exit_3() {
    let ws = Workspace::new();
    let blocker = ws.path().join("not-a-dir");
    std::fs::write(&blocker, "a file where the artifacts folder should be").unwrap();
    let path = ws.write(
        "x.toml",
        "[runbook]\nname = \"x\"\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let output = runproof()
        .args(["run"])
        .arg(&path)
        .arg("--artifacts")
        .arg(&blocker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot create the evidence bundle"));
}

/// Command lines of running processes (zombies have none) holding `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{}: {cmdline}", name.to_string_lossy()));
            }
        }
    }
    found
}

/// A command whose background child calls `setsid` and keeps stdout open is
/// judged by its exit status at once (not "timed out"), and no process of
/// the step outlives the run.
#[test]
fn command_with_a_setsid_child_holding_stdout_passes_promptly_and_leaves_no_process() {
    let ws = Workspace::new();
    // A marker unique to this test run, in both processes' command lines.
    // The parent sleeps briefly so that its children have left its process
    // group (`setsid`) before it exits.
    let marker = format!("3{}.5", std::process::id());
    let path = ws.write(
        "setsid.toml",
        &runbook(
            "setsid",
            &format!(
                r#"
[[step]]
id = "daemonizes"
check = "command"
shell = "setsid sh -c 'sleep {marker}; echo never' & setsid sleep {marker} >/dev/null 2>&1 & sleep 0.3; echo started"
timeout = "10s"
expect = {{ stdout_contains = "started" }}
"#
            ),
        ),
    );
    let begun = Instant::now();
    let output = ws.run(&path, &[]);
    let took = begun.elapsed();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    let attempts = records(&events, "attempt.end", Some("daemonizes"));
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["verdict"], "pass", "{:?}", attempts[0]);
    assert_eq!(attempts[0]["detail"]["output_cut_off"], true);
    assert!(
        attempts[0]["detail"]["descendants_killed"]
            .as_u64()
            .unwrap()
            >= 2
    );
    // Give a SIGKILLed process the moment it needs to leave /proc.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut left = processes_with(&marker);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = processes_with(&marker);
    }
    assert!(left.is_empty(), "processes outlived the run: {left:?}");
}

/// Disk full while writing a blob: exit 3 naming the path and the cause;
/// the closing records and the seal still fit (the reserve), the bundle
/// verifies and its evidence.error record says what is missing.
#[test]
fn disk_full_while_writing_a_blob_exits_3_and_the_bundle_says_what_is_missing() {
    let ws = Workspace::new();
    let artifacts = ws.artifacts();
    let _tmpfs = SmallTmpfs::mount(&artifacts, "2m");
    // Leave about 1.2 MiB: room for the bundle and its 512 KiB reserve.
    let filler = free_bytes(&artifacts) - 1200 * 1024;
    std::fs::write(artifacts.join("filler"), vec![b'f'; filler as usize]).unwrap();
    // The command fills the disk to the last byte, then prints 1 MiB: the
    // blob cannot be written, and the closing records and the seal only fit
    // in the reserve.
    let hog = artifacts.join("hog");
    let path = ws.write(
        "full.toml",
        &runbook(
            "full",
            &format!(
                r#"
[[step]]
id = "loud"
check = "command"
shell = "cat /dev/zero > '{hog}' 2>/dev/null; yes 0123456789abcdef | head -c 1100000"
retries = 0
"#,
                hog = hog.display()
            ),
        ),
    );
    let output = ws.run(&path, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    // All that is free now is what the released 512 KiB reserve left over.
    assert!(free_bytes(&artifacts) < 512 * 1024, "the disk was full");
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    let errors = records(&events, "evidence.error", None);
    assert_eq!(errors.len(), 1, "{events:?}");
    let missing = &errors[0]["missing"][0];
    assert_eq!(missing["role"], "stdout");
    assert_eq!(missing["size"], 1_048_576);
    let missing_path = missing["path"].as_str().unwrap();
    assert!(missing_path.starts_with("blobs/sha256/"), "{missing_path}");
    assert!(
        missing["cause"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{missing}"
    );
    assert!(
        stderr.contains(&bundle.join(missing_path).display().to_string())
            && stderr.contains("No space left on device"),
        "{stderr}"
    );
    let attempt = records(&events, "attempt.end", Some("loud"))[0];
    assert!(
        attempt["detail"]["stdout_blob_error"].is_string(),
        "{attempt}"
    );
    assert_eq!(events.last().unwrap()["type"], "run.end");
    assert!(bundle.join("seal.json").is_file(), "sealed");
    assert!(!bundle.join(".tmp-reserve").exists(), "reserve released");
    let verified = verify(&bundle, &[]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    assert!(
        report.contains("evidence missing") && report.contains(missing_path),
        "{report}"
    );
}
