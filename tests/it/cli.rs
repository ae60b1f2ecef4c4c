//! The command line end to end through the real binary: `lint` diagnostics
//! and the example runbooks, `plan` masking secrets, `demo`, `show`, missing
//! secrets and `--strict`, and `webhook sign|verify|listen` with the
//! documented Chatwoot vector (the secret only ever in the environment).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const SECRET_ENV: &str = "RUNPROOF_TEST_WEBHOOK_SECRET";
const VECTOR_SECRET: &str = "test-secret";
const VECTOR_TS: &str = "1767225600";
const VECTOR1_SIG: &str = "sha256=cf62c6eaca6aa8e853e03afd79c9a1cd206b7b191da2f16342a1bf0ebcea61b3";
const VECTOR1_BODY_ONLY_SIG: &str =
    "sha256=0cd10b6d64f8086c894f89d3d8f8ad95181c8de95174307cd6a32c84fbefaf1a";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vector1() -> PathBuf {
    repo().join("tests/fixtures/chatwoot/vector1_body.json")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

// --------------------------------------------------------------------- lint

#[test]
fn lint_of_a_malformed_runbook_is_exit_2_with_located_diagnostics() {
    let ws = Workspace::new();
    let path = ws.write(
        "bad.toml",
        "[runbook]\nname = \"bad\"\n\n[[step]]\nid = \"a\"\ncheck = \"htp\"\nurl = \"http://127.0.0.1/\"\n\n\
         [[step]]\nid = \"b\"\ncheck = \"command\"\nargv = [\"true\"]\nretires = 3\ntimeout = \"soon\"\n",
    );
    let output = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = stderr_of(&output);
    let shown = path.display().to_string();
    // Every error at once, each located and underlined.
    for (line, col, caret, message) in [
        (6, 9, "^^^^^", "did you mean `http`?"),
        (13, 1, "^^^^^^^", "did you mean `retries`?"),
        (14, 11, "^^^^^^", ""),
    ] {
        assert!(
            stderr.contains(&format!("{shown}:{line}:{col}")),
            "missing {shown}:{line}:{col}\n{stderr}"
        );
        let caret_line = stderr
            .lines()
            .skip_while(|l| !l.contains(&format!("{shown}:{line}:{col}")))
            .find(|l| l.trim_start().starts_with('|') && l.contains('^'))
            .unwrap_or_else(|| panic!("no caret line after {line}:{col}\n{stderr}"));
        assert!(caret_line.contains(caret), "{caret_line}");
        assert!(caret_line.contains(message), "{caret_line}");
        // The caret sits under the column named.
        let bar = caret_line.find('|').unwrap();
        assert_eq!(caret_line.find('^').unwrap() - bar - 1, col, "{caret_line}");
    }
    assert!(stderr.contains("3 errors"), "{stderr}");
    assert!(stdout_of(&output).is_empty(), "{}", describe(&output));

    // Broken TOML is also located.
    let path = ws.write("broken.toml", "[runbook\nname = \"x\"\n");
    let output = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains(&format!("{}:1:9", path.display())),
        "{}",
        describe(&output)
    );

    // A good and a bad file together: still exit 2, the good one reported ok.
    let good = ws.write("good.toml", "[runbook]\nname = \"good\"\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n");
    let output = runproof()
        .arg("lint")
        .arg(&good)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stdout_of(&output).contains("ok:"), "{}", describe(&output));
}

#[test]
fn every_example_runbook_lints() {
    let dir = repo().join("runbooks");
    let mut runbooks: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    runbooks.sort();
    for shipped in [
        "demo.toml",
        "chatwoot-fly.toml",
        "chatwoot-fly-deploy.toml",
        "chatwoot-api-flow.toml",
    ] {
        assert!(
            runbooks.iter().any(|p| p.ends_with(shipped)),
            "{shipped} missing: {runbooks:?}"
        );
    }
    for runbook in &runbooks {
        let text = std::fs::read_to_string(runbook).unwrap();
        let mut command = runproof();
        command.current_dir(repo()).arg("lint").arg(runbook);
        // `{{env:NAME}}` references must resolve at load time.
        for name in text
            .split("{{env:")
            .skip(1)
            .filter_map(|rest| rest.split("}}").next())
        {
            command.env(name.trim(), "example-value");
        }
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}: {}",
            runbook.display(),
            describe(&output)
        );
        assert!(stdout_of(&output).contains("ok:"), "{}", describe(&output));
    }
}

// --------------------------------------------------------------------- plan

#[test]
fn plan_masks_secrets_and_shows_each_policy() {
    let ws = Workspace::new();
    let value = "plan-canary-5e1f9a3c7b";
    let path = ws.write(
        "plan.toml",
        r#"[runbook]
name = "plan"
[secrets]
required = ["API_TOKEN"]
[defaults]
retries = 2
timeout = "4s"
backoff = { initial = "100ms", max = "2s", jitter = false }

[[step]]
id = "api"
check = "http"
url = "http://127.0.0.1:9/items?key={{secret:API_TOKEN}}"
headers = { Authorization = "Bearer {{secret:API_TOKEN}}" }
retries = 4
timeout = "3s"

[[step]]
id = "deploy"
check = "command"
shell = "echo $T"
env = { T = "{{secret:API_TOKEN}}" }
mutating = true
"#,
    );
    let output = runproof()
        .arg("plan")
        .arg(&path)
        .env("API_TOKEN", value)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let all = format!("{}{}", stdout_of(&output), stderr_of(&output));
    assert!(
        !all.contains(value),
        "plan printed the secret value:\n{all}"
    );
    assert!(!all.contains("5e1f9a3c7b"), "{all}");
    let stdout = stdout_of(&output);
    assert!(stdout.contains("{{secret:API_TOKEN}}"), "{stdout}");
    assert!(stdout.contains("1. api [http]"), "{stdout}");
    assert!(
        stdout.contains("2. deploy [command] (mutating)"),
        "{stdout}"
    );
    let policies: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("policy:"))
        .collect();
    assert_eq!(policies.len(), 2, "{stdout}");
    assert!(
        policies[0].contains("5 attempt(s)") && policies[0].contains("timeout 3s"),
        "{}",
        policies[0]
    );
    assert!(
        policies[1].contains("3 attempt(s)") && policies[1].contains("timeout 4s"),
        "{}",
        policies[1]
    );
    assert!(policies[1].contains("100ms"), "{}", policies[1]);

    // Nothing ran, nothing was written.
    assert!(!ws.artifacts().exists());
    assert!(!repo().join("artifacts/plan").exists());
}

// ------------------------------------------------------- secrets and strict

#[test]
fn missing_required_secret_is_exit_2_naming_it_before_any_step() {
    let ws = Workspace::new();
    let marker = ws.path().join("ran");
    let present = "present-canary-0b8d6f2a94";
    let path = ws.write(
        "secrets.toml",
        &format!(
            "[runbook]\nname = \"secrets\"\n[secrets]\nrequired = [\"PRESENT_TOKEN\", \"ABSENT_TOKEN\"]\n\
             [[step]]\nid = \"touch\"\ncheck = \"command\"\nargv = [\"touch\", \"{}\"]\n",
            marker.display()
        ),
    );
    let output = runproof()
        .arg("run")
        .arg(&path)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .env("PRESENT_TOKEN", present)
        .env_remove("ABSENT_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("ABSENT_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("PRESENT_TOKEN"),
        "only the missing one is named: {stderr}"
    );
    let all = format!("{}{stderr}", stdout_of(&output));
    assert!(!all.contains(present), "{all}");
    assert!(!marker.exists(), "no step may run");
    assert!(
        !ws.artifacts().exists(),
        "no bundle for a run that never started"
    );
}

#[test]
fn strict_refuses_an_expired_runbook() {
    let ws = Workspace::new();
    let path = ws.write(
        "old.toml",
        "[runbook]\nname = \"old\"\nexpires = 2020-01-01\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let output = ws.run(&path, &["--strict"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains("expired on 2020-01-01"),
        "{}",
        describe(&output)
    );
    assert!(!ws.artifacts().exists());

    // Without --strict it is a warning and the run goes ahead.
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains("expired"),
        "{}",
        describe(&output)
    );

    // Not expired: --strict is happy.
    let fresh = ws.write(
        "fresh.toml",
        "[runbook]\nname = \"fresh\"\nexpires = 2999-01-01\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let output = ws.run(&fresh, &["--strict"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

/// `lint` warns of an expired runbook as `run` does; `--strict` refuses it.
#[test]
fn lint_warns_of_an_expired_runbook_and_strict_refuses_it() {
    let ws = Workspace::new();
    let old = ws.write(
        "old.toml",
        "[runbook]\nname = \"old\"\nexpires = 2020-01-01\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let fresh = ws.write(
        "fresh.toml",
        "[runbook]\nname = \"fresh\"\nexpires = 2999-01-01\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let lint = |extra: &[&str], path: &std::path::Path| {
        runproof()
            .arg("lint")
            .args(extra)
            .arg(path)
            .output()
            .unwrap()
    };
    let output = lint(&[], &old);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains("warning")
            && stderr_of(&output).contains("expired on 2020-01-01"),
        "{}",
        describe(&output)
    );
    let output = lint(&["--strict"], &old);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains("expired on 2020-01-01"),
        "{}",
        describe(&output)
    );
    let output = lint(&["--strict"], &fresh);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        !stderr_of(&output).contains("expired"),
        "{}",
        describe(&output)
    );
}

/// `plan` says what the engine will do: a `secret` step is never retried.
#[test]
fn plan_says_a_secret_step_is_never_retried() {
    let ws = Workspace::new();
    let path = ws.write(
        "plan.toml",
        r#"[runbook]
name = "plan"
[secrets]
required = ["API_TOKEN"]
[defaults]
retries = 2

[[step]]
id = "token"
check = "secret"
name = "API_TOKEN"

[[step]]
id = "api"
check = "http"
url = "http://127.0.0.1:9/"
"#,
    );
    let output = runproof().arg("plan").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let token = stdout.split("2. api").next().unwrap();
    assert!(token.contains("1. token [secret]"), "{stdout}");
    assert!(token.contains("1 attempt, never retried"), "{stdout}");
    assert!(!token.contains("3 attempt(s)"), "{stdout}");
    let api = stdout.split("2. api").nth(1).unwrap();
    assert!(api.contains("3 attempt(s)"), "{stdout}");
}

// ---------------------------------------------------------------- demo, show

#[test]
fn demo_runs_in_an_empty_folder_and_its_bundle_verifies() {
    let cwd = tempfile::tempdir().unwrap();
    let output = runproof()
        .arg("demo")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("VERIFIED"),
        "the demo verifies its own bundle:\n{stdout}"
    );
    let bundle = cwd.path().join(bundle_path(&output));
    assert!(
        bundle.starts_with(cwd.path().join("artifacts/demo")),
        "{}",
        bundle.display()
    );

    // And so does an independent verify.
    let output = verify(&bundle, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = events(&bundle);
    // The demo shows every verdict.
    let verdicts: Vec<String> = records(&events, "step.end", None)
        .iter()
        .map(|r| r["verdict"].as_str().unwrap().to_string())
        .collect();
    for expected in ["pass", "escalated", "blocked", "skipped"] {
        assert!(
            verdicts.iter().any(|v| v == expected),
            "no {expected} step in the demo: {verdicts:?}"
        );
    }
    assert!(
        records(&events, "attempt.end", None)
            .iter()
            .any(|a| a["attempt"].as_u64() == Some(3) && a["verdict"] == "pass"),
        "the demo should show a pass after retries"
    );
}

#[test]
fn show_prints_each_step_with_its_verdict() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let path = ws.write(
        "show.toml",
        &format!(
            "[runbook]\nname = \"show\"\nowner = \"qa-team\"\n[defaults]\nretries = 1\nbackoff = {{ initial = \"10ms\", max = \"10ms\", jitter = false }}\n\
             [[step]]\nid = \"alpha\"\ncheck = \"http\"\nurl = \"{base}/ok\"\n\
             [[step]]\nid = \"bravo\"\ncheck = \"http\"\nurl = \"{base}/status/502\"\nhint = \"restart the gateway\"\n\
             [[step]]\nid = \"charlie\"\ncheck = \"http\"\nurl = \"{base}/ok\"\ndepends_on = [\"bravo\"]\n"
        ),
    );
    let run = ws.run(&path, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let bundle = bundle_path(&run);
    let output = runproof().arg("show").arg(&bundle).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = stdout_of(&output);
    for (step, verdict) in [
        ("alpha", "pass"),
        ("bravo", "escalated"),
        ("charlie", "blocked"),
    ] {
        let row = stdout
            .lines()
            .find(|l| l.contains(&format!(" {step} ")))
            .unwrap_or_else(|| panic!("no row for {step}\n{stdout}"));
        assert!(row.contains(verdict), "{step} should be {verdict}: {row}");
    }
    assert!(stdout.contains("restart the gateway"), "{stdout}");
    assert!(stdout.contains("qa-team"), "{stdout}");

    let output = runproof()
        .arg("show")
        .arg(&bundle)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("show --json is JSON");
    let text = doc.to_string();
    assert!(
        text.contains("alpha") && text.contains("escalated") && text.contains("blocked"),
        "{doc}"
    );

    let output = runproof()
        .arg("show")
        .arg(ws.path().join("no-such-bundle"))
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0), "{}", describe(&output));
}

// ------------------------------------------------------------------ webhooks

fn webhook(args: &[&str], secret: Option<&str>) -> Output {
    let mut command = runproof();
    command.arg("webhook").args(args).env_remove(SECRET_ENV);
    if let Some(secret) = secret {
        command.env(SECRET_ENV, secret);
    }
    command.output().unwrap()
}

#[test]
fn webhook_sign_and_verify_match_the_documented_vector() {
    let body = vector1();
    let body = body.to_str().unwrap();
    let output = webhook(
        &[
            "sign",
            "--secret-env",
            SECRET_ENV,
            "--timestamp",
            VECTOR_TS,
            "--delivery",
            "d-1",
            body,
        ],
        Some(VECTOR_SECRET),
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains(&format!("X-Chatwoot-Signature: {VECTOR1_SIG}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("X-Chatwoot-Timestamp: {VECTOR_TS}")),
        "{stdout}"
    );
    assert!(!stdout.contains(VECTOR_SECRET), "{stdout}");

    let verify = |signature: &str| {
        webhook(
            &[
                "verify",
                "--secret-env",
                SECRET_ENV,
                "--signature",
                signature,
                "--timestamp",
                VECTOR_TS,
                "--now",
                VECTOR_TS,
                body,
            ],
            Some(VECTOR_SECRET),
        )
    };
    let output = verify(VECTOR1_SIG);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let mut wrong = VECTOR1_SIG.to_string();
    wrong.replace_range(wrong.len() - 1.., "0");
    let output = verify(&wrong);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains("wrong signature"),
        "{}",
        describe(&output)
    );

    let output = verify(VECTOR1_BODY_ONLY_SIG);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains("without the timestamp prefix"),
        "{}",
        describe(&output)
    );

    // Stale: the same delivery checked an hour later.
    let output = webhook(
        &[
            "verify",
            "--secret-env",
            SECRET_ENV,
            "--signature",
            VECTOR1_SIG,
            "--timestamp",
            VECTOR_TS,
            "--now",
            "1767229200",
            body,
        ],
        Some(VECTOR_SECRET),
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));

    // The secret comes only from the environment.
    let output = webhook(&["sign", "--secret-env", SECRET_ENV, body], None);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        stderr_of(&output).contains(SECRET_ENV),
        "{}",
        describe(&output)
    );
    let output = webhook(
        &["sign", "--secret", VECTOR_SECRET, body],
        Some(VECTOR_SECRET),
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "no --secret flag exists: {}",
        describe(&output)
    );
}

/// POSTs `body` with `headers` over HTTP/1.1 and returns the status code.
fn post(port: u16, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST /webhooks/chatwoot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {response:?}"))
}

/// The signature headers `webhook sign` prints for `body`, signed now.
fn signed_headers(body: &Path, delivery: &str) -> Vec<(String, String)> {
    let output = webhook(
        &[
            "sign",
            "--secret-env",
            SECRET_ENV,
            "--delivery",
            delivery,
            body.to_str().unwrap(),
        ],
        Some(VECTOR_SECRET),
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    stdout_of(&output)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(name, _)| name.starts_with("X-Chatwoot-"))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn webhook_listen_records_deliveries_and_seals_on_sigint() {
    let ws = Workspace::new();
    let port = free_port();
    // The listener signs its seal too (key from RUNPROOF_SIGN_KEY).
    let key = ws.path().join("listen_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "listener", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (scripts/test.sh installs openssh-client)");
    assert!(keygen.success());
    let allowed = ws.path().join("allowed_signers");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(&allowed, format!("listener {public}")).unwrap();
    let mut child = runproof()
        .args([
            "webhook",
            "listen",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--secret-env",
            SECRET_ENV,
            "--artifacts",
        ])
        .arg(ws.artifacts())
        .env(SECRET_ENV, VECTOR_SECRET)
        .env("RUNPROOF_SIGN_KEY", &key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    // Wait for the listener to say it is listening.
    while stdout.read_line(&mut line).unwrap() > 0 {
        lines.push(std::mem::take(&mut line));
        if lines.last().unwrap().starts_with("listening on") {
            break;
        }
    }
    assert!(
        lines.last().is_some_and(|l| l.starts_with("listening on")),
        "{lines:?}"
    );

    let body = vector1();
    let bytes = std::fs::read(&body).unwrap();
    let good = signed_headers(&body, "delivery-good");
    assert_eq!(good.len(), 3, "{good:?}");
    let refs: Vec<(&str, &str)> = good.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(post(port, &refs, &bytes), 200);

    let mut bad = signed_headers(&body, "delivery-bad");
    for (name, value) in bad.iter_mut() {
        if name == "X-Chatwoot-Signature" {
            *value = format!("sha256={}", "0".repeat(64));
        }
    }
    let refs: Vec<(&str, &str)> = bad.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(post(port, &refs, &bytes), 401);

    // SAFETY: kill(2) on the pid of our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let all = format!("{}{rest}", lines.concat());
    // Ctrl-C is how a listener is meant to stop: it seals and exits 0.
    assert_eq!(status.code(), Some(0), "stdout:\n{all}\nstderr:\n{stderr}");
    assert!(all.contains("200 accepted delivery=delivery-good"), "{all}");
    assert!(all.contains("401 rejected delivery=delivery-bad"), "{all}");
    assert!(all.contains("1 accepted, 1 rejected"), "{all}");
    crate::support::canary::assert_absent(all.as_bytes(), VECTOR_SECRET, "stdout");
    crate::support::canary::assert_absent(stderr.as_bytes(), VECTOR_SECRET, "stderr");

    let bundle = PathBuf::from(
        all.lines()
            .rev()
            .find_map(|l| l.strip_prefix("bundle: "))
            .unwrap_or_else(|| panic!("no bundle line:\n{all}"))
            .trim(),
    );
    let output = verify(
        &bundle,
        &[
            "--allowed-signers",
            allowed.to_str().unwrap(),
            "--identity",
            "listener",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("signed by listener"),
        "{}",
        describe(&output)
    );
    let journal = std::fs::read_to_string(bundle.join("events.jsonl")).unwrap();
    assert!(
        journal.contains("delivery-good") && journal.contains("delivery-bad"),
        "{journal}"
    );
    for file in files_under(&bundle) {
        let bytes = std::fs::read(&file).unwrap();
        crate::support::canary::assert_absent(&bytes, VECTOR_SECRET, &file.display().to_string());
    }
}

/// A reader that goes away (`runproof verify … | head`) is not a crash.
#[test]
fn closed_stdout_is_not_a_panic() {
    let ws = Workspace::new();
    let path = ws.write(
        "pipe.toml",
        "[runbook]\nname = \"pipe\"\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\n",
    );
    let bundle = bundle_path(&ws.run(&path, &[]));
    for command in ["verify --json", "show"] {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "\"$0\" {command} \"$1\" | head -c 1 >/dev/null; exit ${{PIPESTATUS[0]}}"
            ))
            .arg(env!("CARGO_BIN_EXE_runproof"))
            .arg(&bundle)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{command}: {stderr}");
    }
}

// ------------------------------------------------------------ exit codes

/// The rows of README.md's "### Exit codes" table: (code, meaning).
fn readme_exit_codes() -> Vec<(i32, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split_once("### Exit codes")
        .expect("README has an Exit codes section")
        .1;
    let rows: Vec<(i32, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            Some((cells[0].parse().ok()?, cells.get(1)?.to_string()))
        })
        .collect();
    assert!(!rows.is_empty(), "no rows in README's exit-code table");
    rows
}

/// The code of every `ExitStatus`; the match is exhaustive, so a new status
/// does not compile until it is added here (and then must be in the README).
fn every_exit_status() -> Vec<i32> {
    use crate::support::api::exit::ExitStatus;
    let all = [
        ExitStatus::Success,
        ExitStatus::Escalated,
        ExitStatus::InvalidInput,
        ExitStatus::Internal,
        ExitStatus::VerifyFailed,
        ExitStatus::Interrupted,
    ];
    for status in all {
        match status {
            ExitStatus::Success
            | ExitStatus::Escalated
            | ExitStatus::InvalidInput
            | ExitStatus::Internal
            | ExitStatus::VerifyFailed
            | ExitStatus::Interrupted => {}
        }
    }
    all.iter().map(|s| i32::from(s.code())).collect()
}

/// README's exit-code table is the oracle: it lists exactly the codes of
/// `ExitStatus`, and the real binary exits with each of them in the situation
/// the README describes.
#[test]
fn exit_codes_are_those_of_the_readme_table() {
    let readme = readme_exit_codes();
    let documented: Vec<i32> = readme.iter().map(|(code, _)| *code).collect();
    assert_eq!(
        documented,
        every_exit_status(),
        "README table vs ExitStatus"
    );

    let server = TestServer::start();
    let ws = Workspace::new();
    let runbook = |name: &str, url: &str| {
        ws.write(
            &format!("{name}.toml"),
            &format!(
                "[runbook]\nname = \"{name}\"\n{FAST}\n[[step]]\nid = \"s\"\ncheck = \"http\"\nurl = \"{url}\"\n"
            ),
        )
    };
    let passing = runbook("passing", &format!("{}/ok", server.url()));
    let failing = runbook("failing", &format!("{}/status/500", server.url()));
    let hanging = runbook("hanging", &format!("{}/hang", server.url()));
    let invalid = ws.write("invalid.toml", "[runbook]\nname = \n");
    let occupied = ws.write("occupied", "a file where the artifacts folder should go");

    let mut observed = Vec::new();
    for (code, meaning) in &readme {
        let output = match code {
            0 => ws.run(&passing, &[]),
            1 => ws.run(&failing, &[]),
            2 => ws.run(&invalid, &[]),
            // The bundle cannot be written: the artifacts folder is a file.
            3 => runproof()
                .arg("run")
                .arg(&passing)
                .arg("--artifacts")
                .arg(occupied.join("below"))
                .output()
                .expect("run runproof"),
            4 => {
                let bundle = bundle_path(&ws.run(&passing, &[]));
                std::fs::remove_file(bundle.join("seal.json")).unwrap();
                verify(&bundle, &[])
            }
            130 => {
                let child = runproof()
                    .arg("run")
                    .arg(&hanging)
                    .arg("--artifacts")
                    .arg(ws.artifacts())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn runproof");
                // The signal handlers are in place once the attempt has begun.
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !std::fs::read_dir(ws.artifacts().join("hanging"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|e| {
                        std::fs::read_to_string(e.path().join("events.jsonl"))
                            .unwrap_or_default()
                            .contains("attempt.start")
                    })
                {
                    assert!(std::time::Instant::now() < deadline, "no attempt began");
                    std::thread::sleep(Duration::from_millis(20));
                }
                // SAFETY: kill(2) on our own child, not yet reaped.
                assert_eq!(
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
                    0
                );
                child.wait_with_output().expect("output")
            }
            other => panic!(
                "README documents exit code {other}, which this test cannot produce: add a case"
            ),
        };
        assert_eq!(
            output.status.code(),
            Some(*code),
            "README: {code} = {meaning}\n{}",
            describe(&output)
        );
        observed.push(*code);
    }
    assert_eq!(observed, documented);
}
