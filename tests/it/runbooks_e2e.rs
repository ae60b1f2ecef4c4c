//! Runbooks using the platform and webhook check kinds, run end to end by the
//! real `runproof run` binary against servers on 127.0.0.1 only: the Fly
//! Machines API fixture, the throwaway PostgreSQL and Redis, fake wire servers,
//! an rcgen TLS server, a stand-in Chatwoot and webhook receivers. Each test
//! asserts the exit code, per-step verdicts and attempt counts from the
//! journal, that secrets appear nowhere, and that `runproof verify` accepts
//! every bundle.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::chatwoot;
use crate::support::*;

/// The Fly deploy token of the fixture: two macaroon parts, both canaries.
const FLY_TOKEN: &str = crate::support::fly::DEPLOY_TOKEN;
/// The one `Authorization` header the Fly fixture accepts for [`FLY_TOKEN`].
const FLY_AUTHORIZATION: &str = "FlyV1 fm2_canaryAAA,fm2_canaryBBB";
/// Password sent to the servers; it must never be printed or stored.
const PG_CANARY: &str = crate::support::services::PG_PASSWORD;
/// The Chatwoot webhook secret.
const WEBHOOK_CANARY: &str = "whCanary-e2e-90b1";
/// The Chatwoot API access token the stand-in accepts.
const CHATWOOT_API_TOKEN: &str = "cwApiCanary-e2e-33aa";

// ------------------------------------------------------------------ helpers

/// A runtime owning the fixture servers; they live as long as the value.
struct Fixtures {
    runtime: tokio::runtime::Runtime,
}

impl Fixtures {
    fn new() -> Fixtures {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fixture runtime");
        Fixtures { runtime }
    }

    /// Starts a server (or anything async) on the fixture runtime.
    fn start<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

fn header(name: &str, on_escalate: &str, secrets: &[&str]) -> String {
    let required: Vec<String> = secrets.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[runbook]\nname = \"{name}\"\nowner = \"platform-oncall\"\non_escalate = \"{on_escalate}\"\n\n[secrets]\nrequired = [{}]\n{FAST}\n",
        required.join(", ")
    )
}

/// Events of the run's bundle, after checking `runproof verify` accepts it.
fn verified_events(output: &Output) -> (std::path::PathBuf, Vec<Value>) {
    let bundle = bundle_path(output);
    let verified = verify(&bundle, &[]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "verify {}: {}",
        bundle.display(),
        describe(&verified)
    );
    let events = events(&bundle);
    (bundle, events)
}

fn attempts<'a>(events: &'a [Value], step: &str) -> Vec<&'a Value> {
    records(events, "attempt.end", Some(step))
}

fn attempt_verdicts(events: &[Value], step: &str) -> Vec<String> {
    attempts(events, step)
        .iter()
        .map(|a| a["verdict"].as_str().unwrap().to_string())
        .collect()
}

fn escalation<'a>(events: &'a [Value], step: &str) -> &'a Value {
    let found = records(events, "escalation", Some(step));
    assert_eq!(found.len(), 1, "one escalation for {step}: {found:?}");
    found[0]
}

fn last_reason(events: &[Value], step: &str) -> String {
    escalation(events, step)["last_reason"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Fails if any canary is in the run's stdout or stderr or in any file under `dir`.
fn assert_nowhere(output: &Output, dir: &Path, canaries: &[&str]) {
    assert!(
        !files_under(dir).is_empty(),
        "nothing under {}",
        dir.display()
    );
    crate::support::canary::assert_nowhere(output, dir, canaries);
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------- stand-in Chatwoot

// ------------------------------------------------------ 1. Chatwoot on Fly

#[test]
fn chatwoot_on_fly_runbook_passes_every_step_once() {
    use crate::support::tls::{ca, days_from_now, leaf, serve};
    let fixtures = Fixtures::new();
    let fly = fixtures.start(crate::support::fly::start());
    let supabase = fixtures.start(crate::support::supabase::start());
    let chatwoot = fixtures.start(chatwoot::stand_in(None, WEBHOOK_CANARY, CHATWOOT_API_TOKEN));
    let test_ca = ca();
    let tls_port = fixtures.start(serve(leaf(
        &test_ca,
        &["localhost"],
        days_from_now(-1),
        days_from_now(90),
    )));

    let ws = Workspace::new();
    let ca_file = ws.write("edge-ca.pem", &test_ca.pem);
    let runbook = format!(
        r#"{header}
[vars]
app = "hotdash-chatwoot"
base = "http://{chatwoot}"
project_url = "{supabase}"

[[step]]
id = "fly-token"
title = "Fly API token is set"
check = "secret"
name = "FLY_API_TOKEN"
min_length = 20

[[step]]
id = "fly-app"
title = "web and worker machines are started and healthy"
check = "fly-app"
app = "{{{{app}}}}"
token = "{{{{secret:FLY_API_TOKEN}}}}"
expect = {{ process_groups = ["web", "worker"], checks = "passing", no_failed = true, regions = ["ord"], image = "deployment-01J0ABC", release_version = "7" }}
depends_on = ["fly-token"]

[[step]]
id = "edge-tcp"
title = "the edge port accepts connections"
check = "tcp"
host = "127.0.0.1"
port = {tls_port}
expect = {{ max_latency = "3s" }}

[[step]]
id = "edge-tls"
title = "the edge certificate is valid for another 14 days"
check = "tls"
host = "127.0.0.1"
port = {tls_port}
server_name = "localhost"
ca_file = "{ca_file}"
expect = {{ min_days_left = 14 }}

[[step]]
id = "dns"
title = "the app's name resolves"
check = "dns"
name = "localhost"
expect = {{ addresses = ["127.0.0.1"] }}

[[step]]
id = "health"
title = "Chatwoot reports its database and queue healthy"
check = "http"
url = "{{{{base}}}}/api"
expect = {{ status = 200, max_latency = "3s", json = {{ "data_services" = "ok", "queue_services" = "ok" }} }}
depends_on = ["fly-app"]

[[step]]
id = "supabase-db"
title = "Postgres answers over TLS"
check = "postgres"
dsn = "{{{{secret:DATABASE_URL}}}}"
sslmode = "require"
query = "select 1"
expect = {{ value = "1", rows = 1, tls = true, server_version_min = "11", max_latency = "3s" }}

[[step]]
id = "supabase-http"
title = "Supabase Auth is up and a table is readable"
check = "supabase"
url = "{{{{project_url}}}}"
apikey = "{{{{secret:SUPABASE_ANON_KEY}}}}"
table = "accounts"

[[step]]
id = "redis"
title = "Redis answers PING as a primary"
check = "redis"
url = "{{{{secret:REDIS_URL}}}}"
expect = {{ info = {{ role = "master" }}, max_latency = "3s" }}
"#,
        header = header(
            "chatwoot-fly-e2e",
            "continue",
            &[
                "FLY_API_TOKEN",
                "DATABASE_URL",
                "REDIS_URL",
                "SUPABASE_ANON_KEY"
            ]
        ),
        supabase = supabase.url,
        ca_file = ca_file.display(),
    );
    let path = ws.write("chatwoot-fly.toml", &runbook);
    let dsn = crate::support::services::postgres_url("postgres", "");
    let redis_url = format!("redis://{}/0", crate::support::services::redis().addr());
    let output = ws.run_with_env(
        &path,
        &[],
        &[
            ("FLY_API_TOKEN", FLY_TOKEN),
            ("FLY_API_BASE_URL", &fly.url),
            ("DATABASE_URL", &dsn),
            ("REDIS_URL", &redis_url),
            (
                "SUPABASE_ANON_KEY",
                crate::support::supabase::PUBLISHABLE_KEY,
            ),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    let steps = [
        "fly-token",
        "fly-app",
        "edge-tcp",
        "edge-tls",
        "dns",
        "health",
        "supabase-db",
        "supabase-http",
        "redis",
    ];
    for step in steps {
        assert_eq!(
            verdict(&events, step),
            "pass",
            "{step}: {}",
            describe(&output)
        );
        assert_eq!(attempt_verdicts(&events, step), ["pass"], "{step}");
    }
    assert_eq!(events.last().unwrap()["verdict"], "pass");
    assert!(records(&events, "escalation", None).is_empty());

    // What each attempt observed is in the journal.
    let fly_detail = &attempts(&events, "fly-app")[0]["detail"];
    assert_eq!(fly_detail["machines_started"], 2, "{fly_detail}");
    assert_eq!(
        fly_detail["machines_total"], 2,
        "the destroyed machine is not counted"
    );
    let pg_detail = &attempts(&events, "supabase-db")[0]["detail"];
    assert_eq!(pg_detail["tls"], true, "{pg_detail}");
    let tls_detail = &attempts(&events, "edge-tls")[0]["detail"];
    assert_eq!(
        tls_detail["certificate"]["sans"][0], "localhost",
        "{tls_detail}"
    );

    // The deploy token went out in FlyV1 form, and the Fly fixture's raw
    // machine list is kept as a blob.
    let seen = fly.seen.lock().unwrap();
    assert!(!seen.authorizations.is_empty());
    assert!(
        seen.authorizations.iter().all(|a| a == FLY_AUTHORIZATION),
        "{:?}",
        seen.authorizations
    );
    let blobs: Vec<&str> = attempts(&events, "fly-app")[0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["role"].as_str().unwrap())
        .collect();
    assert_eq!(blobs, ["fly.app", "fly.machines"]);

    assert_nowhere(
        &output,
        &bundle,
        &["canaryAAA", "canaryBBB", PG_CANARY, "canaryPUB456"],
    );
}

// ------------------------------------------------------------ 2. fly-app

fn fly_step(id: &str, app: &str, api_url: &str, token: &str, expect: &str) -> String {
    format!(
        r#"
[[step]]
id = "{id}"
check = "fly-app"
app = "{app}"
api_url = "{api_url}"
token = "{{{{secret:{token}}}}}"
expect = {{ {expect} }}
hint = "fly status --app {app}"
"#
    )
}

#[test]
fn fly_machine_starting_passes_on_the_third_attempt() {
    let fixtures = Fixtures::new();
    let fly = fixtures.start(crate::support::fly::start());
    let ws = Workspace::new();
    let path = ws.write(
        "slow.toml",
        &format!(
            "{}{}",
            header("fly-slow-start", "halt", &["FLY_API_TOKEN"]),
            fly_step(
                "fly-app",
                "slow-start",
                &fly.url,
                "FLY_API_TOKEN",
                "process_groups = [\"web\", \"worker\"]"
            )
        ),
    );
    let output = ws.run_with_env(&path, &[], &[("FLY_API_TOKEN", FLY_TOKEN)]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    assert_eq!(
        attempt_verdicts(&events, "fly-app"),
        ["fail", "fail", "pass"]
    );
    for failed in &attempts(&events, "fly-app")[..2] {
        assert_eq!(failed["reason"], "web: 0 of 1 started (starting)");
        assert!(
            failed.get("no_retry").is_none(),
            "a transient state is retried: {failed}"
        );
    }
    assert_eq!(records(&events, "backoff", Some("fly-app")).len(), 2);
    assert_eq!(verdict(&events, "fly-app"), "pass");
    assert_eq!(fly.seen.lock().unwrap().polls["slow-start"], 3);
    assert_nowhere(&output, &bundle, &["canaryAAA", "canaryBBB"]);
}

/// "The release I just deployed is the one running": `release_version` and
/// `image` take captured values.
#[test]
fn fly_release_version_and_image_take_captures() {
    let fixtures = Fixtures::new();
    let fly = fixtures.start(crate::support::fly::start());
    let ws = Workspace::new();
    let deploy = r#"
[[step]]
id = "deploy"
check = "command"
argv = ["echo", "release v7 image deployment-01J0ABC"]
capture = { version = { regex = "release v(\\d+)" }, image = { regex = "image (\\S+)" } }
"#;
    let path = ws.write(
        "release.toml",
        &format!(
            "{}{deploy}{}{}",
            header("fly-release", "continue", &["FLY_API_TOKEN"]),
            fly_step(
                "running",
                "hotdash-chatwoot",
                &fly.url,
                "FLY_API_TOKEN",
                "release_version = \"{{steps.deploy.version}}\", image = \"{{steps.deploy.image}}\""
            ),
            fly_step(
                "stale",
                "hotdash-chatwoot",
                &fly.url,
                "FLY_API_TOKEN",
                "release_version = \"{{steps.deploy.version}}0\""
            )
        )
        .replace("retries = 2", "retries = 0"),
    );
    let output = ws.run_with_env(&path, &[], &[("FLY_API_TOKEN", FLY_TOKEN)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (_, events) = verified_events(&output);
    assert_eq!(verdict(&events, "deploy"), "pass");
    assert_eq!(verdict(&events, "running"), "pass", "{}", describe(&output));
    assert_eq!(verdict(&events, "stale"), "escalated");
    let reason = last_reason(&events, "stale");
    assert!(reason.contains("expected 70"), "{reason}");
    // The capture made the step depend on `deploy`.
    let plan = &records(&events, "run.start", None)[0]["steps"];
    let running = plan
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "running")
        .unwrap();
    assert_eq!(running["depends_on"], serde_json::json!(["deploy"]));
}

#[test]
fn fly_stopped_worker_escalates_after_three_attempts_naming_the_group() {
    let fixtures = Fixtures::new();
    let fly = fixtures.start(crate::support::fly::start());
    let ws = Workspace::new();
    let path = ws.write(
        "stopped.toml",
        &format!(
            "{}{}",
            header("fly-stopped-worker", "halt", &["FLY_API_TOKEN"]),
            fly_step(
                "fly-app",
                "stopped-worker",
                &fly.url,
                "FLY_API_TOKEN",
                "process_groups = [\"web\", \"worker\"]"
            )
        ),
    );
    let output = ws.run_with_env(&path, &[], &[("FLY_API_TOKEN", FLY_TOKEN)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    assert_eq!(
        attempt_verdicts(&events, "fly-app"),
        ["fail", "fail", "fail"]
    );
    assert_eq!(verdict(&events, "fly-app"), "escalated");
    let escalated = escalation(&events, "fly-app");
    assert_eq!(escalated["last_reason"], "worker: 0 of 1 started (stopped)");
    assert_eq!(escalated["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(escalated["owner"], "platform-oncall");
    assert_eq!(escalated["hint"], "fly status --app stopped-worker");
    assert!(escalated.get("retries_skipped").is_none(), "{escalated}");
    assert_eq!(fly.seen.lock().unwrap().polls["stopped-worker"], 3);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ESCALATED fly-app after 3 attempt(s)"),
        "{stdout}"
    );
    assert_nowhere(&output, &bundle, &["canaryAAA", "canaryBBB"]);
}

#[test]
fn fly_unknown_app_and_bad_token_escalate_after_one_attempt() {
    let fixtures = Fixtures::new();
    let fly = fixtures.start(crate::support::fly::start());
    let ws = Workspace::new();
    let path = ws.write(
        "permanent.toml",
        &format!(
            "{}{}{}",
            header(
                "fly-permanent",
                "continue",
                &["FLY_API_TOKEN", "FLY_STALE_TOKEN"]
            ),
            fly_step("unknown-app", "nope-app", &fly.url, "FLY_API_TOKEN", ""),
            fly_step(
                "bad-token",
                "hotdash-chatwoot",
                &fly.url,
                "FLY_STALE_TOKEN",
                ""
            )
        ),
    );
    let output = ws.run_with_env(
        &path,
        &[],
        &[
            ("FLY_API_TOKEN", FLY_TOKEN),
            ("FLY_STALE_TOKEN", "fm2_canaryWRONG"),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    for (step, reason) in [
        ("unknown-app", "app nope-app not found (404): app not found"),
        ("bad-token", "token rejected (401): invalid token"),
    ] {
        let tries = attempts(&events, step);
        assert_eq!(
            tries.len(),
            1,
            "{step}: a permanent failure must not burn retries"
        );
        assert_eq!(tries[0]["reason"], reason, "{step}");
        assert!(tries[0]["no_retry"].is_string(), "{step}: {}", tries[0]);
        assert!(records(&events, "backoff", Some(step)).is_empty(), "{step}");
        assert_eq!(verdict(&events, step), "escalated");
        let escalated = escalation(&events, step);
        assert_eq!(escalated["last_reason"], reason);
        assert!(escalated["retries_skipped"].is_string(), "{escalated}");
    }
    // Exactly one app read per step: nothing was retried behind the journal's back.
    assert_eq!(fly.seen.lock().unwrap().authorizations.len(), 2);
    assert_nowhere(&output, &bundle, &["canaryAAA", "canaryBBB", "canaryWRONG"]);
}

// ----------------------------------------------------------- 3. postgres

#[test]
fn postgres_wrong_password_escalates_once_without_leaking_it() {
    use crate::support::pgwire::{start, Behaviour};
    let fixtures = Fixtures::new();
    let fake = fixtures.start(start(Behaviour::WrongPassword));
    let ws = Workspace::new();
    let path = ws.write(
        "pg.toml",
        &format!(
            r#"{}
[[step]]
id = "supabase-db"
check = "postgres"
dsn = "{{{{secret:DATABASE_URL}}}}"
expect = {{ value = "1" }}
hint = "reset the database password in the Supabase dashboard"
"#,
            header("pg-wrong-password", "halt", &["DATABASE_URL"])
        ),
    );
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@127.0.0.1:{}/postgres?sslmode=disable",
        fake.port
    );
    let output = ws.run_with_env(&path, &[], &[("DATABASE_URL", &dsn)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    let tries = attempts(&events, "supabase-db");
    assert_eq!(tries.len(), 1, "a rejected password must not be retried");
    assert!(tries[0]["no_retry"].is_string(), "{}", tries[0]);
    assert_eq!(tries[0]["detail"]["sqlstate"], "28P01");
    assert_eq!(verdict(&events, "supabase-db"), "escalated");
    let reason = last_reason(&events, "supabase-db");
    assert!(
        reason.starts_with("authentication failed for user postgres (28P01)"),
        "{reason}"
    );
    assert!(escalation(&events, "supabase-db")["retries_skipped"].is_string());
    // The password did reach the server, so its absence below means something.
    assert!(String::from_utf8_lossy(&fake.received.lock().unwrap()).contains(PG_CANARY));
    assert_nowhere(&output, &bundle, &[PG_CANARY]);
}

/// The same through the real throwaway PostgreSQL, whose SCRAM check (over
/// TLS) rejects the password: one attempt, 28P01, the password nowhere.
#[test]
fn postgres_real_server_rejects_a_wrong_password_once_without_leaking_it() {
    let wrong_password = "wrongPw-e2e-91c7";
    let ws = Workspace::new();
    let path = ws.write(
        "pg.toml",
        &format!(
            r#"{}
[[step]]
id = "db"
check = "postgres"
dsn = "{{{{secret:DATABASE_URL}}}}"
sslmode = "require"
expect = {{ value = "1" }}
"#,
            header("pg-real-wrong-password", "halt", &["DATABASE_URL"])
        ),
    );
    let dsn = format!(
        "postgres://postgres:{wrong_password}@{}/postgres",
        crate::support::services::postgres().addr()
    );
    let output = ws.run_with_env(&path, &[], &[("DATABASE_URL", &dsn)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    let tries = attempts(&events, "db");
    assert_eq!(tries.len(), 1, "a rejected password must not be retried");
    assert_eq!(tries[0]["detail"]["sqlstate"], "28P01", "{}", tries[0]);
    assert_eq!(
        last_reason(&events, "db"),
        "authentication failed for user postgres (28P01): password authentication failed for user \"postgres\""
    );
    assert_nowhere(&output, &bundle, &[wrong_password, PG_CANARY]);
}

// ------------------------------------------------------------ 4. webhook

fn webhook_step(id: &str, url: &str) -> String {
    format!(
        r#"
[[step]]
id = "{id}"
check = "webhook"
url = "{url}"
secret = "{{{{secret:CHATWOOT_WEBHOOK_SECRET}}}}"
expect = {{ status = 200, max_latency = "3s", rejects_unsigned = true, rejects_bad_signature = true, rejects_stale = true }}
"#
    )
}

/// `runproof webhook listen` as the verifying receiver; stopped with SIGINT.
struct ListenProcess {
    child: Option<Child>,
    port: u16,
}

impl ListenProcess {
    fn start(ws: &Workspace) -> ListenProcess {
        let port = free_port();
        let child = runproof()
            .args(["webhook", "listen", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--secret-env", "CHATWOOT_WEBHOOK_SECRET", "--out"])
            .arg(ws.path().join("listener"))
            .env("CHATWOOT_WEBHOOK_SECRET", WEBHOOK_CANARY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start runproof webhook listen");
        let process = ListenProcess {
            child: Some(child),
            port,
        };
        wait_for_port(port);
        process
    }

    /// Interrupts the listener (as Ctrl-C would) and returns its output.
    fn stop(mut self) -> Output {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let signalled = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        assert!(signalled.is_ok_and(|s| s.success()), "kill -INT {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the listener did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for ListenProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn webhook_step_passes_against_a_verifying_receiver() {
    let ws = Workspace::new();
    let receiver = ListenProcess::start(&ws);
    let path = ws.write(
        "webhook.toml",
        &format!(
            "{}{}{}",
            header("webhook-verifying", "halt", &["CHATWOOT_WEBHOOK_SECRET"]),
            webhook_step(
                "webhook",
                &format!("http://127.0.0.1:{}/webhooks/chatwoot", receiver.port)
            ),
            // The signed delivery reaches the receiver's logic: a change.
            "mutating = true\n",
        ),
    );
    let output = ws.run_with_env(
        &path,
        &["--allow-mutations"],
        &[("CHATWOOT_WEBHOOK_SECRET", WEBHOOK_CANARY)],
    );
    let listened = receiver.stop();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    assert_eq!(attempt_verdicts(&events, "webhook"), ["pass"]);
    assert_eq!(verdict(&events, "webhook"), "pass");
    // One `probe` record per request, each before the attempt's end.
    let attempt_end_seq = attempts(&events, "webhook")[0]["seq"].as_u64().unwrap();
    let probe_records = records(&events, "probe", Some("webhook"));
    assert!(probe_records
        .iter()
        .all(|p| p["attempt"] == 1 && p["seq"].as_u64().unwrap() < attempt_end_seq));
    assert!(probe_records.iter().all(|p| p["blobs"][0]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:")));
    let probes: Vec<(String, u64)> = probe_records
        .iter()
        .map(|p| {
            (
                p["probe"].as_str().unwrap().to_string(),
                p["detail"]["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        probes,
        [
            ("signed".to_string(), 200),
            ("unsigned".to_string(), 401),
            ("bad_signature".to_string(), 401),
            ("stale".to_string(), 401)
        ]
    );
    // `show` gives QA the same facts in one line.
    let shown = runproof().arg("show").arg(&bundle).output().unwrap();
    assert_eq!(shown.status.code(), Some(0), "{}", describe(&shown));
    let shown_text = String::from_utf8_lossy(&shown.stdout);
    let probe_line = shown_text
        .lines()
        .find(|l| l.starts_with("probes of webhook, attempt 1: "))
        .unwrap_or_else(|| panic!("no probe line in show:\n{shown_text}"));
    let statuses: Vec<&str> = probe_line
        .split(": ")
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|p| p.split(" (").next().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "signed 200",
            "unsigned 401",
            "bad_signature 401",
            "stale 401"
        ]
    );
    // ...and so does the HTML report, with each probe's answer.
    let html = bundle.with_extension("html");
    let reported = runproof()
        .arg("report")
        .arg(&bundle)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(reported.status.code(), Some(0), "{}", describe(&reported));
    let page = std::fs::read_to_string(&html).unwrap();
    for answer in [
        "<li>signed: 200 (",
        "<li>unsigned: 401",
        "<li>bad_signature: 401",
        "<li>stale: 401",
    ] {
        assert!(page.contains(answer), "the report shows {answer}");
    }

    // The receiver saw one genuine delivery and three forgeries, and sealed
    // its own bundle on interrupt.
    assert_eq!(listened.status.code(), Some(0), "{}", describe(&listened));
    let listen_stdout = String::from_utf8_lossy(&listened.stdout);
    assert!(
        listen_stdout.contains("listener stopped: 1 accepted, 3 rejected"),
        "{listen_stdout}"
    );
    let listen_bundle = bundle_path(&listened);
    let verified = verify(&listen_bundle, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    assert_eq!(
        records(&crate::support::events(&listen_bundle), "delivery", None).len(),
        4
    );

    assert_nowhere(&output, &bundle, &[WEBHOOK_CANARY]);
    assert_nowhere(&listened, &listen_bundle, &[WEBHOOK_CANARY]);
}

#[test]
fn webhook_step_in_a_read_only_run_sends_only_the_rejection_probes() {
    let ws = Workspace::new();
    let receiver = ListenProcess::start(&ws);
    let url = format!("http://127.0.0.1:{}/webhooks/chatwoot", receiver.port);
    let path = ws.write(
        "webhook-ro.toml",
        &format!(
            r#"{header}{asked}
[[step]]
id = "none-asked"
check = "webhook"
url = "{url}"
secret = "{{{{secret:CHATWOOT_WEBHOOK_SECRET}}}}"
expect = {{ status = 200 }}
"#,
            header = header(
                "webhook-read-only",
                "continue",
                &["CHATWOOT_WEBHOOK_SECRET"]
            ),
            asked = webhook_step("asked", &url),
        ),
    );
    let output = ws.run_with_env(&path, &[], &[("CHATWOOT_WEBHOOK_SECRET", WEBHOOK_CANARY)]);
    let listened = receiver.stop();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    for step in ["asked", "none-asked"] {
        assert_eq!(verdict(&events, step), "pass", "{step}");
        // The signed delivery is recorded as not sent, and why.
        let probes = records(&events, "probe", Some(step));
        let names: Vec<&str> = probes
            .iter()
            .map(|p| p["probe"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["signed", "unsigned", "bad_signature", "stale"],
            "{step}"
        );
        assert_eq!(probes[0]["detail"]["sent"], false, "{step}");
        assert!(probes[0]["detail"].get("status").is_none(), "{step}");
        assert!(
            probes[0]["detail"]["not_sent"]
                .as_str()
                .unwrap()
                .contains("does not allow this step to change things"),
            "{step}"
        );
        assert!(
            probes[1..].iter().all(|p| p["detail"]["status"] == 401),
            "{step}"
        );
        let detail = &attempts(&events, step)[0]["detail"];
        assert_eq!(
            detail["probes"],
            serde_json::json!(["unsigned", "bad_signature", "stale"]),
            "{step}"
        );
        assert!(
            detail["signed_delivery"]
                .as_str()
                .unwrap()
                .starts_with("not sent"),
            "{detail}"
        );
    }
    // The operator reads it on the terminal and in `show`.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("asked: attempt 1: signed delivery not sent: the run does not allow this step to change things"),
        "{stdout}"
    );
    let shown = runproof().arg("show").arg(&bundle).output().unwrap();
    let shown_text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown_text
            .contains("probes of asked, attempt 1: signed not sent (the run does not allow this step to change things), unsigned 401"),
        "{shown_text}"
    );

    // Counted at the receiver: six forgeries, nothing that reached its logic.
    let listen_stdout = String::from_utf8_lossy(&listened.stdout);
    assert!(
        listen_stdout.contains("listener stopped: 0 accepted, 6 rejected"),
        "{listen_stdout}"
    );
    let listen_events = crate::support::events(&bundle_path(&listened));
    let deliveries = records(&listen_events, "delivery", None);
    assert_eq!(deliveries.len(), 6);
    assert!(deliveries.iter().all(|d| d["verdict"] == "rejected"));
    assert_nowhere(&output, &bundle, &[WEBHOOK_CANARY]);
}

#[test]
fn webhook_step_escalates_on_an_accept_all_receiver_and_a_dead_port() {
    let fixtures = Fixtures::new();
    let insecure = fixtures.start(chatwoot::accept_everything());
    let dead = free_port();
    let ws = Workspace::new();
    let path = ws.write(
        "webhook-bad.toml",
        &format!(
            "{}{}{}",
            header("webhook-bad", "continue", &["CHATWOOT_WEBHOOK_SECRET"]),
            webhook_step(
                "accept-all",
                &format!("http://{insecure}/webhooks/chatwoot")
            ),
            webhook_step(
                "dead",
                &format!("http://127.0.0.1:{dead}/webhooks/chatwoot")
            )
        ),
    );
    let output = ws.run_with_env(&path, &[], &[("CHATWOOT_WEBHOOK_SECRET", WEBHOOK_CANARY)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);

    // Accepting forgeries is a finding, not a blip: one attempt, every probe named.
    assert_eq!(attempt_verdicts(&events, "accept-all"), ["fail"]);
    assert_eq!(verdict(&events, "accept-all"), "escalated");
    let reason = last_reason(&events, "accept-all");
    assert!(reason.contains("SECURITY"), "{reason}");
    for probe in ["probe `unsigned`", "probe `bad_signature`", "probe `stale`"] {
        assert!(reason.contains(probe), "{probe} not named: {reason}");
    }
    assert!(escalation(&events, "accept-all")["retries_skipped"].is_string());

    // A dead endpoint may come back: all three attempts are spent.
    assert_eq!(attempt_verdicts(&events, "dead"), ["fail", "fail", "fail"]);
    assert_eq!(verdict(&events, "dead"), "escalated");
    let reason = last_reason(&events, "dead");
    assert!(reason.contains("connection failed"), "{reason}");
    assert!(escalation(&events, "dead").get("retries_skipped").is_none());

    assert_nowhere(&output, &bundle, &[WEBHOOK_CANARY]);
}

fn delivery_runbook(chatwoot: SocketAddr, listen_port: u16, timeout: &str) -> String {
    format!(
        r#"{header}
[vars]
marker = "runproof-e2e-7781"

[[step]]
id = "delivered"
title = "a message posted through the Chatwoot API arrives at the webhook"
check = "webhook-delivery"
listen = "127.0.0.1:{listen_port}"
secret = "{{{{secret:CHATWOOT_WEBHOOK_SECRET}}}}"
event = "message_created"
contains = "hello {{{{marker}}}}"
timeout = "{timeout}"
retries = 0

[step.trigger]
url = "http://{chatwoot}/api/v1/accounts/1/conversations/57/messages"
headers = {{ api_access_token = "{{{{secret:CHATWOOT_API_TOKEN}}}}" }}
body = '{{"content":"hello {{{{marker}}}}","message_type":"outgoing"}}'
"#,
        header = header(
            "webhook-delivery",
            "halt",
            &["CHATWOOT_WEBHOOK_SECRET", "CHATWOOT_API_TOKEN"]
        )
    )
}

const DELIVERY_ENV: &[(&str, &str)] = &[
    ("CHATWOOT_WEBHOOK_SECRET", WEBHOOK_CANARY),
    ("CHATWOOT_API_TOKEN", CHATWOOT_API_TOKEN),
];

#[test]
fn webhook_delivery_step_passes_when_the_triggered_message_arrives() {
    let fixtures = Fixtures::new();
    let listen_port = free_port();
    let chatwoot = fixtures.start(chatwoot::stand_in(
        Some(format!("127.0.0.1:{listen_port}").parse().unwrap()),
        WEBHOOK_CANARY,
        CHATWOOT_API_TOKEN,
    ));
    let ws = Workspace::new();
    let path = ws.write(
        "delivery.toml",
        &delivery_runbook(chatwoot, listen_port, "3s"),
    );
    let output = ws.run_with_env(&path, &[], DELIVERY_ENV);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    assert_eq!(attempt_verdicts(&events, "delivered"), ["pass"]);
    assert_eq!(verdict(&events, "delivered"), "pass");
    let detail = &attempts(&events, "delivered")[0]["detail"];
    assert_eq!(detail["event"], "message_created", "{detail}");
    assert_eq!(detail["message_id"], 9100, "{detail}");
    assert_eq!(detail["conversation_id"], 57, "{detail}");
    assert_eq!(detail["trigger_status"], 200, "{detail}");
    assert!(
        detail["latency_ms_since_created_at"].as_i64().unwrap() >= 0,
        "{detail}"
    );
    assert_nowhere(&output, &bundle, &[WEBHOOK_CANARY, CHATWOOT_API_TOKEN]);
}

#[test]
fn webhook_delivery_step_escalates_after_its_timeout_when_nothing_arrives() {
    let fixtures = Fixtures::new();
    // Chatwoot accepts the message but never delivers the webhook.
    let chatwoot = fixtures.start(chatwoot::stand_in(None, WEBHOOK_CANARY, CHATWOOT_API_TOKEN));
    let ws = Workspace::new();
    let path = ws.write(
        "silent.toml",
        &delivery_runbook(chatwoot, free_port(), "800ms"),
    );
    let started = Instant::now();
    let output = ws.run_with_env(&path, &[], DELIVERY_ENV);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    assert_eq!(attempt_verdicts(&events, "delivered"), ["fail"]);
    assert_eq!(verdict(&events, "delivered"), "escalated");
    let reason = last_reason(&events, "delivered");
    assert!(reason.starts_with("no delivery arrived within"), "{reason}");
    assert!(reason.contains("message_created"), "{reason}");
    let duration_ms = attempts(&events, "delivered")[0]["duration_ms"]
        .as_f64()
        .unwrap();
    assert!(
        duration_ms >= 600.0,
        "the step waited {duration_ms} ms, not its timeout"
    );
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert_eq!(
        attempts(&events, "delivered")[0]["detail"]["trigger_status"],
        200
    );
    assert_nowhere(&output, &bundle, &[WEBHOOK_CANARY, CHATWOOT_API_TOKEN]);
}

/// A delivery that arrives only after the first attempt gave up waiting (in
/// the backoff before the second): `retrigger` says whether the retry posts
/// the message again.
fn late_delivery_run(retrigger: bool) -> (Workspace, Output, usize) {
    let fixtures = Fixtures::new();
    let listen_port = free_port();
    let (chatwoot, calls) = fixtures.start(chatwoot::slow_stand_in(
        format!("127.0.0.1:{listen_port}").parse().unwrap(),
        WEBHOOK_CANARY,
        CHATWOOT_API_TOKEN,
        Duration::from_millis(1500),
    ));
    let ws = Workspace::new();
    // Attempt 1 gives up after its 800 ms; the delivery comes at ~1.5 s,
    // during the 1 s backoff (700 ms of slack for a loaded machine); attempt
    // 2 starts at ~1.8 s and finds it queued.
    let runbook = delivery_runbook(chatwoot, listen_port, "800ms").replace(
        "retries = 0\n",
        &format!(
            "retries = 1\nbackoff = {{ initial = \"1s\", max = \"1s\", jitter = false }}\nretrigger = {retrigger}\n"
        ),
    );
    let path = ws.write("late.toml", &runbook);
    let output = ws.run_with_env(&path, &[], DELIVERY_ENV);
    let calls = calls.load(std::sync::atomic::Ordering::SeqCst);
    (ws, output, calls)
}

#[test]
fn webhook_delivery_retry_waits_again_without_firing_the_trigger_twice() {
    let (_ws, output, trigger_calls) = late_delivery_run(false);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    assert_eq!(attempt_verdicts(&events, "delivered"), ["fail", "pass"]);
    assert_eq!(trigger_calls, 1, "the retry posted the message again");
    let first = &attempts(&events, "delivered")[0]["detail"];
    assert_eq!(first["trigger"], "sent in attempt 1", "{first}");
    let second = &attempts(&events, "delivered")[1]["detail"];
    assert_eq!(second["trigger_status"], 200, "{second}");
    assert!(
        second["trigger"]
            .as_str()
            .unwrap()
            .contains("accepted in attempt 1 (200); not sent again"),
        "{second}"
    );
    // Latency from the trigger, in milliseconds: the delivery came ~1.5 s
    // after the message was posted, not after attempt 2 began.
    let latency = second["latency_ms_since_trigger"].as_i64().unwrap();
    assert!((1450..6000).contains(&latency), "{second}");
    assert_eq!(second["message_id"], 9100, "{second}");
    assert_nowhere(&output, &bundle, &[WEBHOOK_CANARY, CHATWOOT_API_TOKEN]);
}

#[test]
fn webhook_delivery_retrigger_fires_the_trigger_on_every_attempt() {
    let (_ws, output, trigger_calls) = late_delivery_run(true);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (_, events) = verified_events(&output);
    assert_eq!(attempt_verdicts(&events, "delivered"), ["fail", "pass"]);
    assert_eq!(trigger_calls, 2);
    let second = &attempts(&events, "delivered")[1]["detail"];
    assert_eq!(second["trigger"], "sent in attempt 2", "{second}");
}

/// `cwd`, `body_file` and `ca_file` written relative to the runbook's folder
/// work when runproof runs from somewhere else.
#[test]
fn relative_paths_are_taken_from_the_runbooks_folder() {
    use crate::support::tls::{ca, days_from_now, leaf, serve};
    let fixtures = Fixtures::new();
    let test_ca = ca();
    let tls_port = fixtures.start(serve(leaf(
        &test_ca,
        &["localhost"],
        days_from_now(-1),
        days_from_now(90),
    )));
    let ws = Workspace::new();
    let receiver = ListenProcess::start(&ws);
    let book_dir = ws.path().join("book");
    std::fs::create_dir_all(book_dir.join("data")).unwrap();
    std::fs::write(book_dir.join("data/note.txt"), "read-through-cwd-6194\n").unwrap();
    std::fs::write(
        book_dir.join("delivery.json"),
        r#"{"event":"message_created","id":1,"content":"from-body-file-6194"}"#,
    )
    .unwrap();
    std::fs::write(book_dir.join("edge-ca.pem"), &test_ca.pem).unwrap();
    let elsewhere = ws.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let runbook = format!(
        r#"{header}
[[step]]
id = "note"
check = "command"
argv = ["cat", "note.txt"]
cwd = "data"
expect = {{ exit_code = 0, stdout_regex = "read-through-cwd-6194" }}

[[step]]
id = "body"
check = "webhook"
url = "http://127.0.0.1:{port}/webhooks/chatwoot"
secret = "{{{{secret:CHATWOOT_WEBHOOK_SECRET}}}}"
body_file = "delivery.json"
expect = {{ status = 200 }}

[[step]]
id = "edge-tls"
check = "tls"
host = "127.0.0.1"
port = {tls_port}
server_name = "localhost"
ca_file = "edge-ca.pem"
"#,
        header = header("relative-paths", "continue", &["CHATWOOT_WEBHOOK_SECRET"]),
        port = receiver.port,
    );
    std::fs::write(book_dir.join("book.toml"), runbook).unwrap();
    let output = runproof()
        .current_dir(&elsewhere)
        .arg("run")
        .arg(book_dir.join("book.toml"))
        .arg("--artifacts")
        .arg(ws.artifacts())
        .arg("--allow-mutations")
        .env("CHATWOOT_WEBHOOK_SECRET", WEBHOOK_CANARY)
        .output()
        .unwrap();
    let listened = receiver.stop();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    for step in ["note", "body", "edge-tls"] {
        assert_eq!(attempt_verdicts(&events, step), ["pass"], "{step}");
    }
    // The receiver got the file's bytes as the signed delivery.
    let listen_stdout = String::from_utf8_lossy(&listened.stdout);
    assert!(
        listen_stdout.contains("listener stopped: 1 accepted, 0 rejected"),
        "{listen_stdout}"
    );
    let signed = &records(&events, "probe", Some("body"))[0];
    let expected = std::fs::read(book_dir.join("delivery.json")).unwrap();
    assert_eq!(
        signed["detail"]["request"]["body_sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&expected)),
        "{signed}"
    );
    assert_nowhere(&output, &bundle, &[WEBHOOK_CANARY]);
}

/// `port` and `listen` written as templates are rendered when the step runs;
/// a port var that is not a number fails once, naming key and template.
#[test]
fn port_and_listen_take_templates() {
    let fixtures = Fixtures::new();
    let listen_port = free_port();
    let chatwoot = fixtures.start(chatwoot::stand_in(
        Some(format!("127.0.0.1:{listen_port}").parse().unwrap()),
        WEBHOOK_CANARY,
        CHATWOOT_API_TOKEN,
    ));
    let runbook = delivery_runbook(chatwoot, listen_port, "3s")
        .replace(
            &format!("listen = \"127.0.0.1:{listen_port}\""),
            "listen = \"{{listen}}\"",
        )
        .replace(
            "[vars]\n",
            &format!(
                "[vars]\nlisten = \"127.0.0.1:{listen_port}\"\nport = \"{}\"\nword = \"https\"\n",
                chatwoot.port()
            ),
        )
        .replace("on_escalate = \"halt\"", "on_escalate = \"continue\"");
    assert!(runbook.contains("listen = \"{{listen}}\""), "{runbook}");
    let runbook = format!(
        r#"{runbook}
[[step]]
id = "tcp"
check = "tcp"
host = "127.0.0.1"
port = "{{{{port}}}}"

[[step]]
id = "bad-port"
check = "tcp"
host = "127.0.0.1"
port = "{{{{word}}}}"
"#
    );
    let ws = Workspace::new();
    let path = ws.write("templated.toml", &runbook);
    let lint = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", describe(&lint));
    let output = ws.run_with_env(&path, &[], DELIVERY_ENV);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (_, events) = verified_events(&output);
    assert_eq!(verdict(&events, "delivered"), "pass");
    let detail = &attempts(&events, "delivered")[0]["detail"];
    assert_eq!(
        detail["listen"],
        format!("127.0.0.1:{listen_port}"),
        "{detail}"
    );
    assert_eq!(verdict(&events, "tcp"), "pass");
    assert_eq!(
        attempts(&events, "tcp")[0]["detail"]["peer"],
        chatwoot.to_string()
    );
    assert_eq!(attempt_verdicts(&events, "bad-port"), ["fail"]);
    assert_eq!(
        last_reason(&events, "bad-port"),
        "`port = \"{{word}}\"` rendered to `https`, which is not a valid port"
    );
}

// ------------------------------------------------------ 5. example runbook

#[test]
fn example_chatwoot_fly_runbook_lints_and_plans_without_secrets() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/chatwoot-fly.toml");
    let env = [
        ("FLY_API_TOKEN", "FlyV1 fm2_lintCanary1"),
        (
            "DATABASE_URL",
            "postgres://postgres.ref:lintCanary2@127.0.0.1:6543/postgres",
        ),
        ("REDIS_URL", "redis://:lintCanary3@127.0.0.1:6379"),
        ("SUPABASE_ANON_KEY", "sb_publishable_lintCanary4"),
        ("CHATWOOT_WEBHOOK_SECRET", "lintCanary5"),
    ];
    for command in ["lint", "plan"] {
        let output = runproof()
            .arg(command)
            .arg(example)
            .envs(env)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{command}: {}",
            describe(&output)
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !text.contains("lintCanary"),
            "{command} printed a secret: {text}"
        );
        if command == "lint" {
            assert!(
                text.starts_with("ok: ") && text.contains("(8 steps)"),
                "{text}"
            );
        } else {
            for step in [
                "fly-app",
                "edge-tls",
                "health",
                "supabase-db",
                "redis",
                "agent-webhook",
            ] {
                assert!(text.contains(step), "{step} missing from the plan: {text}");
            }
            // The plan says what a read-only run sends to the agent.
            assert!(
                text.contains("sends:   the signed delivery only with --allow-mutations"),
                "{text}"
            );
        }
    }
}
