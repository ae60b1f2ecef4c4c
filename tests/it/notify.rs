//! `[notify]`: an escalation, redacted, reaches a Slack-shaped webhook, a
//! signed generic JSON webhook and a PagerDuty Events API v2 stand-in on
//! 127.0.0.1; every delivery attempt is a `notify` record; a failing
//! receiver is retried with backoff and a dead one recorded, and neither
//! changes the step's verdict or the run's exit code.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::canary::assert_absent;
use crate::support::{
    bundle_path, describe, events, free_port, http_client, records, runproof, verdict, verify,
    Workspace,
};

const CANARY: &str = "notifyCanary-7c21e9d4-token";
const SIGNING_SECRET: &str = "whsec-notify-3f9a0c1b";
const ROUTING_KEY: &str = "pd-routing-key-81b2c4d6e8";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Default)]
struct ReceiverState {
    requests: Mutex<Vec<Received>>,
    /// Statuses to answer per path before the default (200; 202 for PagerDuty).
    script: Mutex<HashMap<String, VecDeque<u16>>>,
    /// Signatures already accepted on `/hook`: a second one is a replay.
    seen: Mutex<HashSet<String>>,
}

/// A receiver on 127.0.0.1 for all three shapes: `/slack`, `/hook`
/// (checks the signature and rejects stale or replayed deliveries) and
/// `/v2/enqueue` (PagerDuty, 202).
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let state = Arc::new(ReceiverState::default());
        let app = Router::new().fallback(receive).with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            state,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn script(&self, path: &str, statuses: &[u16]) {
        self.state
            .script
            .lock()
            .unwrap()
            .insert(path.to_string(), statuses.iter().copied().collect());
    }

    fn requests(&self, path: &str) -> Vec<Received> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn hmac_hex(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// What a receiver of the documented scheme does: recompute
/// `sha256=<hex HMAC-SHA256("<timestamp>.<raw body>")>`, refuse a timestamp
/// older than five minutes, and refuse a signature it has already seen.
fn check_signature(state: &ReceiverState, headers: &HeaderMap, body: &[u8]) -> u16 {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (
        header("x-runproof-timestamp"),
        header("x-runproof-signature"),
    ) else {
        return 401;
    };
    if signature != format!("sha256={}", hmac_hex(SIGNING_SECRET, timestamp, body)) {
        return 401;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    match timestamp.parse::<i64>() {
        Ok(t) if (now - t).abs() <= 300 => {}
        _ => return 408,
    }
    if !state.seen.lock().unwrap().insert(signature.to_string()) {
        return 409;
    }
    200
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_string();
    if path == "/hang" {
        // A receiver that takes the request and never answers.
        state.requests.lock().unwrap().push(Received {
            path,
            headers,
            body: body.to_vec(),
            answered: 0,
        });
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        return StatusCode::OK;
    }
    let scripted = state
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let answered = match scripted {
        Some(status) => status,
        None if path == "/hook" => check_signature(&state, &headers, &body),
        None if path == "/v2/enqueue" => 202,
        None => 200,
    };
    state.requests.lock().unwrap().push(Received {
        path,
        headers,
        body: body.to_vec(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

/// A runbook with a passing step and a failing `command` step whose output
/// (hence its reason) and collected log carry the canary.
fn runbook(notify: &str) -> String {
    format!(
        r#"[runbook]
name = "notify-test"
owner = "oncall-team"

[secrets]
required = ["API_TOKEN", "HOOK_SECRET", "PD_ROUTING_KEY"]

[defaults]
retries = 1
backoff = {{ initial = "10ms", max = "20ms", jitter = false }}
timeout = "5s"

{notify}

[[step]]
id = "healthy"
check = "command"
argv = ["true"]

[[step]]
id = "migrate"
check = "command"
argv = ["sh", "-c", "echo migration failed: token=$TOKEN >&2; exit 3"]
env = {{ TOKEN = "{{{{secret:API_TOKEN}}}}" }}
hint = "check the database password"
collect = [{{ argv = ["sh", "-c", "echo boot log line; echo log token=$TOKEN"], env = {{ TOKEN = "{{{{secret:API_TOKEN}}}}" }} }}]
"#
    )
}

fn run(ws: &Workspace, text: &str) -> std::process::Output {
    let path = ws.write("runbook.toml", text);
    ws.run_with_env(
        &path,
        &[],
        &[
            ("API_TOKEN", CANARY),
            ("HOOK_SECRET", SIGNING_SECRET),
            ("PD_ROUTING_KEY", ROUTING_KEY),
        ],
    )
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("a JSON body")
}

#[test]
fn an_escalation_reaches_slack_a_signed_webhook_and_pagerduty_redacted() {
    let receiver = Receiver::start();
    let ws = Workspace::new();
    let notify = format!(
        r#"[notify]
[notify.slack]
url = "{slack}"
[notify.webhook]
url = "{hook}"
secret = "{{{{secret:HOOK_SECRET}}}}"
[notify.pagerduty]
routing_key = "{{{{secret:PD_ROUTING_KEY}}}}"
url = "{pd}"
"#,
        slack = receiver.url("/slack"),
        hook = receiver.url("/hook"),
        pd = receiver.url("/v2/enqueue"),
    );
    let output = run(&ws, &runbook(&notify));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    let run_id = events[0]["run"].as_str().unwrap().to_string();
    assert_eq!(verdict(&events, "migrate"), "escalated");
    assert_eq!(verdict(&events, "healthy"), "pass");

    // Nothing leaks: not the canary, in any form, in any body or header.
    let all = receiver.state.requests.lock().unwrap().clone();
    assert_eq!(all.len(), 3, "{all:?}");
    for r in &all {
        assert_absent(&r.body, CANARY, &format!("{} body", r.path));
        let headers = format!("{:?}", r.headers);
        assert_absent(headers.as_bytes(), CANARY, &format!("{} headers", r.path));
    }

    // Slack: one mrkdwn text naming step, owner, reasons, hint, bundle, logs.
    let slack = &receiver.requests("/slack")[0];
    assert_eq!(slack.answered, 200);
    let text = json(&slack.body)["text"].as_str().unwrap().to_string();
    for needle in [
        "migrate",
        "notify-test",
        "oncall-team",
        "attempt 1:",
        "attempt 2:",
        "migration failed",
        "check the database password",
        "boot log line",
        &bundle.display().to_string(),
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    assert!(text.contains("[REDACTED"), "the canary is masked: {text}");

    // Generic webhook: accepted by a receiver that checks the documented
    // signature; the same request again is refused as a replay.
    let hook = &receiver.requests("/hook")[0];
    assert_eq!(hook.answered, 200, "the signature verifies");
    let timestamp = hook.headers["x-runproof-timestamp"].to_str().unwrap();
    let signature = hook.headers["x-runproof-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        format!("sha256={}", hmac_hex(SIGNING_SECRET, timestamp, &hook.body))
    );
    let body = json(&hook.body);
    assert_eq!(body["event"], "escalation");
    assert_eq!(body["run_id"], run_id.as_str());
    assert_eq!(body["step"], "migrate");
    assert_eq!(body["owner"], "oncall-team");
    assert_eq!(body["hint"], "check the database password");
    assert_eq!(body["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(body["bundle"], bundle.display().to_string().as_str());
    assert!(
        body["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["excerpt"].as_str().unwrap().contains("boot log line")),
        "{body}"
    );
    let replay = tokio::runtime::Runtime::new().unwrap().block_on(async {
        http_client()
            .post(receiver.url("/hook"))
            .header("X-Runproof-Timestamp", timestamp)
            .header("X-Runproof-Signature", signature)
            .body(hook.body.clone())
            .send()
            .await
            .expect("replay")
            .status()
            .as_u16()
    });
    assert_eq!(replay, 409, "a replayed delivery is refused");
    let stale = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let old = "1600000000";
        http_client()
            .post(receiver.url("/hook"))
            .header("X-Runproof-Timestamp", old)
            .header(
                "X-Runproof-Signature",
                format!("sha256={}", hmac_hex(SIGNING_SECRET, old, &hook.body)),
            )
            .body(hook.body.clone())
            .send()
            .await
            .expect("stale")
            .status()
            .as_u16()
    });
    assert_eq!(stale, 408, "an old timestamp is refused");

    // PagerDuty: a trigger with the routing key and a run+step dedup key.
    let pd = &receiver.requests("/v2/enqueue")[0];
    assert_eq!(pd.answered, 202);
    let event = json(&pd.body);
    assert_eq!(event["routing_key"], ROUTING_KEY);
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(
        event["dedup_key"],
        format!("runproof:{run_id}:migrate").as_str()
    );
    assert!(event["payload"]["summary"]
        .as_str()
        .unwrap()
        .contains("migrate"));
    assert_eq!(event["payload"]["severity"], "error");

    // The journal: one delivered attempt per target, after the step's end
    // and before run.end; the routing key and signing secret never in it.
    let notes = records(&events, "notify", Some("migrate"));
    let mut targets: Vec<&str> = notes
        .iter()
        .map(|n| n["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(targets, ["pagerduty", "slack", "webhook"], "{notes:?}");
    assert!(notes.iter().all(|n| n["delivered"] == true), "{notes:?}");
    let seq_of = |e: &Value| e["seq"].as_u64().unwrap();
    let step_end = seq_of(records(&events, "step.end", Some("migrate"))[0]);
    let run_end = seq_of(records(&events, "run.end", None)[0]);
    assert!(notes
        .iter()
        .all(|n| seq_of(n) > step_end && seq_of(n) < run_end));
    let journal = std::fs::read(bundle.join("events.jsonl")).unwrap();
    assert_absent(&journal, ROUTING_KEY, "journal");
    assert_absent(&journal, SIGNING_SECRET, "journal");
    assert_absent(&journal, CANARY, "journal");
    let verified = verify(&bundle, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
}

#[test]
fn a_failing_receiver_is_retried_with_the_same_dedup_key_and_the_verdict_stands() {
    let receiver = Receiver::start();
    receiver.script("/v2/enqueue", &[500, 500]);
    let ws = Workspace::new();
    let notify = format!(
        r#"[notify]
retries = 2
[notify.pagerduty]
routing_key = "{{{{secret:PD_ROUTING_KEY}}}}"
url = "{pd}"
"#,
        pd = receiver.url("/v2/enqueue"),
    );
    let output = run(&ws, &runbook(&notify));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    assert_eq!(verdict(&events, "migrate"), "escalated");
    assert_eq!(verdict(&events, "healthy"), "pass");
    assert_eq!(records(&events, "run.end", None)[0]["verdict"], "escalated");

    let sent = receiver.requests("/v2/enqueue");
    let answers: Vec<u16> = sent.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [500, 500, 202]);
    let keys: HashSet<String> = sent
        .iter()
        .map(|r| json(&r.body)["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "a re-sent event keeps its dedup key: {keys:?}"
    );

    let notes = records(&events, "notify", Some("migrate"));
    let summary: Vec<(u64, u64, bool, u64)> = notes
        .iter()
        .map(|n| {
            (
                n["attempt"].as_u64().unwrap(),
                n["of"].as_u64().unwrap(),
                n["delivered"].as_bool().unwrap(),
                n["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, 3, false, 500), (2, 3, false, 500), (3, 3, true, 202)]
    );
    assert!(notes[0]["error"].as_str().unwrap().contains("HTTP 500"));
    // The operator sees each attempt on the terminal.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "migrate: notify pagerduty: attempt 1/3 failed: the receiver answered HTTP 500"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("migrate: notify pagerduty: sent (HTTP 202)"),
        "{stdout}"
    );
    // Backoff between attempts: the second try came at least 500 ms later.
    let t = |n: &Value| n["mono_ns"].as_u64().unwrap();
    assert!(t(notes[1]) - t(notes[0]) >= 500_000_000, "{notes:?}");
    let verified = verify(&bundle, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
}

#[test]
fn a_dead_receiver_is_a_recorded_failure_and_the_run_keeps_its_exit_code() {
    let ws = Workspace::new();
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let notify = format!(
        r#"[notify]
retries = 1
timeout = "2s"
[notify.webhook]
url = "{dead}"
secret = "{{{{secret:HOOK_SECRET}}}}"
"#
    );
    let started = std::time::Instant::now();
    let output = run(&ws, &runbook(&notify));
    assert!(
        started.elapsed().as_secs() < 30,
        "a dead receiver is not waited on"
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    assert_eq!(verdict(&events, "migrate"), "escalated");
    let notes = records(&events, "notify", Some("migrate"));
    assert_eq!(notes.len(), 2, "{notes:?}");
    for note in &notes {
        assert_eq!(note["target"], "webhook");
        assert_eq!(note["delivered"], false);
        assert!(note.get("status").is_none(), "{note}");
        assert!(!note["error"].as_str().unwrap().is_empty(), "{note}");
    }
    assert_eq!(events.last().unwrap()["type"], "run.end");
    let verified = verify(&bundle, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));

    // A receiver that never answers is cut off by the per-request timeout.
    let hanging = Receiver::start();
    let notify = format!(
        "[notify]\nretries = 0\ntimeout = \"1s\"\n[notify.slack]\nurl = \"{}\"\n",
        hanging.url("/hang")
    );
    let started = std::time::Instant::now();
    let output = run(&ws, &runbook(&notify));
    assert!(
        started.elapsed().as_secs() < 20,
        "the timeout bounds the wait"
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let hang_events = events_of(&output);
    let notes = records(&hang_events, "notify", Some("migrate"));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["delivered"], false);
    assert!(
        notes[0]["error"].as_str().unwrap().contains("timed out"),
        "{notes:?}"
    );
    let ms = notes[0]["duration_ms"].as_f64().unwrap();
    assert!((900.0..5000.0).contains(&ms), "{ms}");

    // A passing run notifies nobody and exits 0.
    let receiver = Receiver::start();
    let passing = ws.write(
        "passing.toml",
        &format!(
            "[runbook]\nname = \"quiet\"\n\n[notify.slack]\nurl = \"{}\"\n\n[[step]]\nid = \"ok\"\ncheck = \"command\"\nargv = [\"true\"]\n",
            receiver.url("/slack")
        ),
    );
    let output = ws.run(&passing, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(receiver.requests("/slack").is_empty());
    assert!(records(&events_of(&output), "notify", None).is_empty());
}

fn events_of(output: &std::process::Output) -> Vec<Value> {
    events(&bundle_path(output))
}

#[test]
fn lint_knows_the_notify_keys_with_did_you_mean() {
    let ws = Workspace::new();
    let path = ws.write(
        "bad.toml",
        "[runbook]\nname = \"x\"\n\n[secrets]\nrequired = [\"PD\"]\n\n[notify]\nretires = 2\n[notify.pagerduty]\nrouting_key = \"{{secret:PD}}\"\nseverty = \"error\"\n\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let output = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown key `retires`"), "{stderr}");
    assert!(stderr.contains("retries"), "{stderr}");
    assert!(stderr.contains("unknown key `severty`"), "{stderr}");
    assert!(stderr.contains("did you mean `severity`?"), "{stderr}");
    assert!(stderr.contains("bad.toml:11:"), "{stderr}");

    let undeclared = ws.write(
        "undeclared.toml",
        "[runbook]\nname = \"x\"\n\n[notify.slack]\nurl = \"{{secret:SLACK_URL}}\"\n\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let output = runproof().arg("lint").arg(&undeclared).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("secret `SLACK_URL` is not declared"),
        "{stderr}"
    );
}

#[test]
fn a_signal_during_a_delivery_ends_it_at_once_and_the_bundle_verifies() {
    let hanging = Receiver::start();
    let ws = Workspace::new();
    let notify = format!(
        "[notify]\nretries = 2\ntimeout = \"60s\"\n[notify.slack]\nurl = \"{}\"\n",
        hanging.url("/hang")
    );
    let path = ws.write("runbook.toml", &runbook(&notify));
    let child = runproof()
        .arg("run")
        .arg(&path)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .env("API_TOKEN", CANARY)
        .env("HOOK_SECRET", SIGNING_SECRET)
        .env("PD_ROUTING_KEY", ROUTING_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn runproof");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while hanging.requests("/hang").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no delivery arrived");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let signalled = std::time::Instant::now();
    // SAFETY: kill(2) on the pid of our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let output = child.wait_with_output().expect("wait");
    assert!(
        signalled.elapsed().as_secs() < 10,
        "the run did not wait out the 60s request timeout"
    );
    let events = events_of(&output);
    let notes = records(&events, "notify", Some("migrate"));
    assert_eq!(notes.len(), 1, "no retry after a signal: {notes:?}");
    assert_eq!(notes[0]["delivered"], false);
    assert_eq!(
        notes[0]["error"], "interrupted before the receiver answered",
        "{notes:?}"
    );
    assert_eq!(verdict(&events, "migrate"), "escalated");
    assert_eq!(hanging.requests("/hang").len(), 1);
    let verified = verify(&bundle_path(&output), &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    assert_eq!(output.status.code(), Some(130), "{}", describe(&output));
}

/// A check file whose `api` check passes only while `flag` exists (its
/// failure reason carries the canary), with a `steady` check beside it.
fn watched_checks(notify: &str, flag: &std::path::Path) -> String {
    format!(
        r#"[secrets]
required = ["API_TOKEN", "HOOK_SECRET", "PD_ROUTING_KEY"]

[defaults]
retries = 0
timeout = "5s"

{notify}

[[check]]
id = "api"
check = "command"
argv = ["sh", "-c", "test -f \"$FLAG\" || {{ echo down token=$TOKEN >&2; exit 1; }}"]
env = {{ FLAG = "{flag}", TOKEN = "{{{{secret:API_TOKEN}}}}" }}

[[check]]
id = "steady"
check = "command"
argv = ["true"]
"#,
        flag = flag.display()
    )
}

fn hook_and_pagerduty(receiver: &Receiver) -> String {
    format!(
        r#"[notify]
retries = 0
[notify.webhook]
url = "{hook}"
secret = "{{{{secret:HOOK_SECRET}}}}"
[notify.pagerduty]
routing_key = "{{{{secret:PD_ROUTING_KEY}}}}"
url = "{pd}"
"#,
        hook = receiver.url("/hook"),
        pd = receiver.url("/v2/enqueue"),
    )
}

const SECRETS: [(&str, &str); 3] = [
    ("API_TOKEN", CANARY),
    ("HOOK_SECRET", SIGNING_SECRET),
    ("PD_ROUTING_KEY", ROUTING_KEY),
];

/// Polls until `receiver` got `n` requests on `path` (or panics after 40 s).
fn wait_requests(receiver: &Receiver, path: &str, n: usize) -> Vec<Received> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let got = receiver.requests(path);
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: {} of {n} requests within 40 s: {got:?}",
            got.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sweep_watch_notifies_a_check_failing_then_recovered_once_each() {
    use crate::sweep::{bundles, Watch};
    let receiver = Receiver::start();
    let ws = Workspace::new();
    let flag = ws.path().join("api-is-up");
    let file = ws.write(
        "checks.toml",
        &watched_checks(&hook_and_pagerduty(&receiver), &flag),
    );
    let mut watch =
        Watch::start_with_env(&ws, &file, &["--watch", "1s", "--name", "edge"], &SECRETS);
    // Round 1: `api` fails: one "failing" notification on each target.
    watch.wait_rounds(1, std::time::Duration::from_secs(40));
    wait_requests(&receiver, "/v2/enqueue", 1);
    std::fs::write(&flag, "up").unwrap();
    // A later round sees it pass: one "recovered", resolving the same incident.
    wait_requests(&receiver, "/v2/enqueue", 2);
    // Another round with nothing new to say, then stop.
    let seen = watch.rounds_seen();
    watch.wait_rounds(seen + 1, std::time::Duration::from_secs(40));
    watch.interrupt();
    let (code, lines, stderr) = watch.finish(std::time::Duration::from_secs(30));
    assert_eq!(code, Some(130), "{lines:?}\n{stderr}");
    let noted: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("; notified: "))
        .collect();
    assert_eq!(
        noted.len(),
        2,
        "the failing round and the recovered one: {lines:?}"
    );
    assert!(
        noted
            .iter()
            .all(|l| l.contains("notified: 1 change of state, 2 deliveries;")),
        "{noted:?}"
    );

    let pagerduty = receiver.requests("/v2/enqueue");
    let pd: Vec<Value> = pagerduty.iter().map(|r| json(&r.body)).collect();
    assert_eq!(
        pd.len(),
        2,
        "one trigger, one resolve, no repeats: {pagerduty:?}"
    );
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[1]["event_action"], "resolve");
    assert_eq!(pd[0]["dedup_key"], "runproof:sweep:edge:api");
    assert_eq!(
        pd[1]["dedup_key"], pd[0]["dedup_key"],
        "the recovery resolves the incident its failure opened"
    );
    assert_eq!(pd[0]["routing_key"], ROUTING_KEY);
    assert_eq!(pd[0]["payload"]["component"], "api");
    let summary = pd[0]["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("api") && summary.contains("down token="),
        "{summary}"
    );
    assert!(summary.contains("[REDACTED"), "{summary}");

    let hooks = receiver.requests("/hook");
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert!(
        hooks.iter().all(|h| h.answered == 200),
        "signed and fresh: {hooks:?}"
    );
    let delivered: Vec<Value> = hooks.iter().map(|h| json(&h.body)).collect();
    assert_eq!(delivered[0]["event"], "check.failing");
    assert_eq!(delivered[1]["event"], "check.recovered");
    assert!(
        delivered
            .iter()
            .all(|e| e["check"] == "api" && e["sweep"] == "edge"),
        "{delivered:?}"
    );
    assert!(delivered[0]["failing_since"].is_null(), "{delivered:?}");
    assert!(
        delivered[1]["failing_since"].is_string(),
        "a recovery says since when: {delivered:?}"
    );

    for r in receiver.state.requests.lock().unwrap().iter() {
        assert_absent(&r.body, CANARY, &format!("{} body", r.path));
    }
    // Each round's bundle verifies; the two with notifications record every
    // delivery attempt with the change it reported.
    let mut changes = Vec::new();
    for bundle in bundles(&ws, "edge") {
        let verified = verify(&bundle, &[]);
        assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
        for record in events(&bundle).iter().filter(|e| e["type"] == "notify") {
            changes.push((
                record["step"].as_str().unwrap().to_string(),
                record["change"].as_str().unwrap().to_string(),
                record["target"].as_str().unwrap().to_string(),
                record["delivered"].as_bool().unwrap(),
            ));
        }
        for file in crate::support::files_under(&bundle) {
            assert_absent(
                &std::fs::read(&file).unwrap(),
                CANARY,
                &file.display().to_string(),
            );
        }
    }
    assert_eq!(
        changes,
        [
            ("api", "failing", "webhook", true),
            ("api", "failing", "pagerduty", true),
            ("api", "recovered", "webhook", true),
            ("api", "recovered", "pagerduty", true),
        ]
        .map(|(s, c, t, d)| (s.to_string(), c.to_string(), t.to_string(), d))
    );
}

#[test]
fn a_round_with_many_failures_sends_twenty_then_one_digest() {
    let receiver = Receiver::start();
    let ws = Workspace::new();
    let checks: String = (1..=23)
        .map(|i| {
            format!("[[check]]\nid = \"down-{i:02}\"\ncheck = \"command\"\nargv = [\"false\"]\n\n")
        })
        .collect();
    let file = ws.write(
        "many.toml",
        &format!(
            "[secrets]\nrequired = [\"HOOK_SECRET\"]\n\n[defaults]\nretries = 0\n\n[notify]\n[notify.webhook]\nurl = \"{}\"\nsecret = \"{{{{secret:HOOK_SECRET}}}}\"\n\n{checks}",
            receiver.url("/hook")
        ),
    );
    let output = runproof()
        .env("HOOK_SECRET", SIGNING_SECRET)
        .arg("sweep")
        .arg(&file)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .output()
        .expect("run sweep");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("notified: 23 changes of state, 21 deliveries\n"),
        "{stdout}"
    );
    let hooks = receiver.requests("/hook");
    assert_eq!(hooks.len(), 21, "20 one by one, then one digest");
    let bodies: Vec<Value> = hooks.iter().map(|h| json(&h.body)).collect();
    let mut named: Vec<&str> = bodies[..20]
        .iter()
        .map(|b| b["check"].as_str().unwrap())
        .collect();
    named.sort();
    assert_eq!(
        named,
        (1..=20).map(|i| format!("down-{i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(bodies[20]["check"], "*");
    assert_eq!(bodies[20]["event"], "check.failing");
    assert_eq!(
        bodies[20]["reason"],
        "3 more checks changed state: 3 failing (down-21, down-22, down-23)"
    );
    let bundle = crate::sweep::bundles(&ws, "sweep").pop().expect("a bundle");
    let verified = verify(&bundle, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
}

#[test]
fn a_restarted_watch_announces_the_recovery_of_a_check_failing_when_it_stopped() {
    use crate::sweep::Watch;
    let receiver = Receiver::start();
    let ws = Workspace::new();
    let flag = ws.path().join("api-is-up");
    let file = ws.write(
        "checks.toml",
        &watched_checks(&hook_and_pagerduty(&receiver), &flag),
    );
    let args = ["--watch", "1s", "--name", "edge"];
    // The first watch sees `api` fail, says so, and is stopped.
    let mut first = Watch::start_with_env(&ws, &file, &args, &SECRETS);
    first.wait_rounds(1, std::time::Duration::from_secs(40));
    wait_requests(&receiver, "/v2/enqueue", 1);
    first.interrupt();
    first.finish(std::time::Duration::from_secs(30));
    // `api` comes back while nothing watches; a new watch's first round
    // resolves the incident the first watch opened.
    std::fs::write(&flag, "up").unwrap();
    let mut second = Watch::start_with_env(&ws, &file, &args, &SECRETS);
    second.wait_rounds(1, std::time::Duration::from_secs(40));
    second.interrupt();
    second.finish(std::time::Duration::from_secs(30));

    let pd: Vec<Value> = receiver
        .requests("/v2/enqueue")
        .iter()
        .map(|r| json(&r.body))
        .collect();
    let actions: Vec<(&str, &str)> = pd
        .iter()
        .map(|e| {
            (
                e["event_action"].as_str().unwrap(),
                e["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("trigger", "runproof:sweep:edge:api"),
            ("resolve", "runproof:sweep:edge:api")
        ]
    );
    let hooks: Vec<Value> = receiver
        .requests("/hook")
        .iter()
        .map(|h| json(&h.body))
        .collect();
    assert_eq!(hooks[1]["event"], "check.recovered");
    // The failure began in the first watch's round.
    let first_round = std::path::Path::new(hooks[0]["bundle"].as_str().unwrap());
    let header: Value =
        serde_json::from_slice(&std::fs::read(first_round.join("runproof.json")).unwrap()).unwrap();
    assert_eq!(hooks[1]["failing_since"], header["started_at"], "{hooks:?}");
}
