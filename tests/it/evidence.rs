//! The evidence guarantees end to end, through the real binary against real
//! servers on 127.0.0.1: `verify` accepts fresh bundles and rejects every kind
//! of tampering (naming the file and line), interrupted and killed runs verify
//! as interrupted or incomplete rather than tampered, canary secrets never
//! reach the terminal or any byte of a bundle, and concurrent runs never share
//! a bundle.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// A runbook whose bundle has every kind of file: a pass, a pass after a
/// retry, an escalation, and command output (blobs).
fn varied_runbook(base: &str) -> String {
    format!(
        r#"[runbook]
name = "varied"
owner = "qa"
{FAST}
[[step]]
id = "health"
check = "http"
url = "{base}/json"
expect = {{ status = 200, json = {{ data_services = "ok" }} }}

[[step]]
id = "warm"
check = "http"
url = "{base}/flaky/warm/1"

[[step]]
id = "down"
check = "http"
url = "{base}/status/503"
retries = 1
hint = "look at the upstream"

[[step]]
id = "shell"
check = "command"
argv = ["sh", "-c", "echo hello from the shell; echo oops >&2"]
expect = {{ stdout_contains = "hello" }}
"#
    )
}

/// Runs the varied runbook once and returns its (valid) bundle.
fn fresh_bundle(ws: &Workspace, server: &TestServer) -> PathBuf {
    let path = ws.write("varied.toml", &varied_runbook(&server.url()));
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    bundle_path(&output)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh copy of `bundle` under `scratch/name`.
fn copy_of(bundle: &Path, scratch: &Path, name: &str) -> PathBuf {
    let copy = scratch.join(name);
    copy_dir(bundle, &copy);
    assert_eq!(
        verify(&copy, &[]).status.code(),
        Some(0),
        "the untouched copy must verify"
    );
    copy
}

/// Asserts `verify` rejects the bundle with exit 4 and an INVALID first line
/// that, with the rest of the output, contains every one of `needles`.
fn assert_rejected(bundle: &Path, needles: &[&str], what: &str) -> String {
    let output = verify(bundle, &[]);
    let out = text(&output);
    assert_eq!(
        output.status.code(),
        Some(4),
        "{what}: verify must fail\n{}",
        describe(&output)
    );
    assert!(
        out.starts_with("INVALID"),
        "{what}: first line must say INVALID\n{out}"
    );
    for needle in needles {
        assert!(
            out.contains(needle),
            "{what}: output must mention {needle:?}\n{out}"
        );
    }
    out
}

fn journal_lines(bundle: &Path) -> Vec<String> {
    std::fs::read_to_string(bundle.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_journal(bundle: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(bundle.join("events.jsonl"), text).unwrap();
}

/// The journal's line (1-based) holding seq `seq`.
fn line_of_type(bundle: &Path, kind: &str) -> usize {
    journal_lines(bundle)
        .iter()
        .position(|l| serde_json::from_str::<Value>(l).unwrap()["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} record"))
        + 1
}

// ------------------------------------------------------------ fresh bundles

#[test]
fn verify_accepts_a_fresh_bundle_in_text_and_json() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let bundle = fresh_bundle(&ws, &server);

    let output = verify(&bundle, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout.lines().next().unwrap_or("");
    assert!(first.starts_with("VERIFIED"), "first line: {first}");
    assert!(!first.contains("interrupted"), "{first}");

    let output = verify(&bundle, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc: Value =
        serde_json::from_slice(&output.stdout).expect("verify --json prints one JSON document");
    assert_eq!(doc["valid"], true, "{doc}");
    assert_eq!(doc["verdict"]["verdict"], "verified", "{doc}");
    assert_eq!(doc["sealed"], true);
    assert_eq!(doc["run_verdict"], "escalated");
    assert_eq!(
        doc["records"].as_u64().unwrap() as usize,
        journal_lines(&bundle).len()
    );
    assert!(doc["problems"].as_array().unwrap().is_empty(), "{doc}");

    // The JSON form of a rejection says so too.
    let copy = copy_of(&bundle, ws.path(), "json-tampered");
    std::fs::write(copy.join("summary.md"), "# all green, honest\n").unwrap();
    let output = verify(&copy, &["--json"]);
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("JSON even when invalid");
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["verdict"]["verdict"], "invalid");
    assert!(
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["file"] == "summary.md"),
        "{doc}"
    );
}

// ---------------------------------------------------------------- tampering

#[test]
fn one_byte_changed_in_any_file_is_rejected_naming_the_file() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let bundle = fresh_bundle(&ws, &server);
    let files = files_under(&bundle);
    assert!(
        files.iter().any(|f| f.starts_with(bundle.join("blobs"))),
        "the bundle should hold blobs to tamper with: {files:?}"
    );
    assert!(files.len() >= 8, "{files:?}");

    for (i, file) in files.iter().enumerate() {
        let relative = file
            .strip_prefix(&bundle)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let copy = copy_of(&bundle, ws.path(), &format!("flip-{i}"));
        let target = copy.join(&relative);
        let mut bytes = std::fs::read(&target).unwrap();
        assert!(!bytes.is_empty(), "{relative} is empty");
        let mut at = bytes.len() / 2;
        if bytes[at] == b'\n' {
            at += 1;
        }
        bytes[at] ^= 0x01;
        std::fs::write(&target, &bytes).unwrap();

        let out = assert_rejected(
            &copy,
            &[&relative],
            &format!("byte {at} of {relative} flipped"),
        );
        if relative == "events.jsonl" {
            // The changed line is named: either it no longer parses, or the
            // next line's `prev` no longer matches it.
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            assert!(
                out.contains(&format!("events.jsonl:{line}"))
                    || out.contains(&format!("digest of line {line}")),
                "the flipped journal line {line} must be named\n{out}"
            );
        }
    }
}

#[test]
fn deleted_and_added_files_are_rejected() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let bundle = fresh_bundle(&ws, &server);

    for (i, file) in files_under(&bundle).iter().enumerate() {
        let relative = file
            .strip_prefix(&bundle)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let copy = copy_of(&bundle, ws.path(), &format!("rm-{i}"));
        std::fs::remove_file(copy.join(&relative)).unwrap();
        if relative == "seal.json" {
            // Without its seal a bundle cannot be told from a run that crashed
            // before sealing: rejected as incomplete, not accepted.
            let output = verify(&copy, &[]);
            let out = text(&output);
            assert_eq!(output.status.code(), Some(4), "seal.json deleted\n{out}");
            assert!(
                out.starts_with("INCOMPLETE") && out.contains("seal.json"),
                "{out}"
            );
            continue;
        }
        assert_rejected(&copy, &[&relative], &format!("{relative} deleted"));
    }

    let copy = copy_of(&bundle, ws.path(), "add-top");
    std::fs::write(copy.join("notes.txt"), "added after the seal\n").unwrap();
    assert_rejected(
        &copy,
        &["notes.txt", "not listed in the seal"],
        "file added at the top level",
    );

    // A well-formed blob name that the seal does not list.
    let copy = copy_of(&bundle, ws.path(), "add-blob");
    let content = b"an extra blob";
    let name = sha256_hex(content);
    std::fs::write(copy.join("blobs/sha256").join(&name), content).unwrap();
    assert_rejected(&copy, &[&format!("blobs/sha256/{name}")], "blob added");

    let copy = copy_of(&bundle, ws.path(), "add-dir");
    std::fs::create_dir_all(copy.join("blobs/extra")).unwrap();
    std::fs::write(copy.join("blobs/extra/x"), "x").unwrap();
    assert_rejected(
        &copy,
        &["blobs/extra/x"],
        "file added in a new folder under blobs/",
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn journal_line_removed_reordered_or_truncated_is_rejected_at_its_line() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let bundle = fresh_bundle(&ws, &server);
    let lines = journal_lines(&bundle);
    assert!(lines.len() > 10);

    // Removed: every line in turn, the first and last included.
    for removed in 0..lines.len() {
        let copy = copy_of(&bundle, ws.path(), &format!("del-{removed}"));
        let mut edited = lines.clone();
        edited.remove(removed);
        write_journal(&copy, &edited);
        let line = removed + 1;
        let out = assert_rejected(
            &copy,
            &["events.jsonl"],
            &format!("journal line {line} removed"),
        );
        if line < lines.len() {
            assert!(
                out.contains(&format!("events.jsonl:{line}")),
                "removed line {line} must be named\n{out}"
            );
        }
    }

    // Two adjacent lines swapped.
    for first in [1, line_of_type(&bundle, "escalation") - 1, lines.len() - 2] {
        let copy = copy_of(&bundle, ws.path(), &format!("swap-{first}"));
        let mut edited = lines.clone();
        edited.swap(first - 1, first);
        write_journal(&copy, &edited);
        assert_rejected(
            &copy,
            &[&format!("events.jsonl:{first}")],
            &format!("journal lines {first} and {} swapped", first + 1),
        );
    }

    // Truncated in the middle of a line: the last, and one further up.
    let full = std::fs::read(bundle.join("events.jsonl")).unwrap();
    for keep_lines in [lines.len() - 1, lines.len() / 2] {
        let copy = copy_of(&bundle, ws.path(), &format!("trunc-{keep_lines}"));
        let prefix: usize = lines[..keep_lines].iter().map(|l| l.len() + 1).sum();
        let cut = prefix + lines[keep_lines].len() / 2;
        std::fs::write(copy.join("events.jsonl"), &full[..cut]).unwrap();
        let out = assert_rejected(
            &copy,
            &[&format!("events.jsonl:{}", keep_lines + 1)],
            "journal truncated mid-line",
        );
        assert!(
            out.contains("truncated") || out.contains("partial"),
            "{out}"
        );
    }
}

#[test]
fn rewriting_the_journal_consistently_is_caught_by_the_seal() {
    // A forger who recomputes every `prev` still cannot match the seal's head.
    let server = TestServer::start();
    let ws = Workspace::new();
    let bundle = fresh_bundle(&ws, &server);
    let copy = copy_of(&bundle, ws.path(), "forged");
    let lines = journal_lines(&copy);
    let header = std::fs::read(copy.join("runproof.json")).unwrap();
    let mut prev = format!("sha256:{}", sha256_hex(&header));
    let mut forged = Vec::new();
    for line in &lines {
        let mut record: Value = serde_json::from_str(line).unwrap();
        record["prev"] = Value::String(prev.clone());
        if record["type"] == "step.end" && record["step"] == "down" {
            record["reason"] = Value::String("all good".into());
        }
        let text = serde_json::to_string(&record).unwrap();
        prev = format!("sha256:{}", sha256_hex(format!("{text}\n").as_bytes()));
        forged.push(text);
    }
    write_journal(&copy, &forged);
    assert_rejected(
        &copy,
        &["events.jsonl"],
        "journal rewritten with a consistent chain",
    );
}

// ------------------------------------------------------ interrupted and killed

/// A `runproof run` in the background, its output drained by threads so a
/// full pipe can never stall it.
struct Running {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr_lines: mpsc::Receiver<String>,
    /// Stderr lines already taken from the channel.
    stderr_seen: Vec<String>,
}

impl Running {
    /// Waits up to `limit` for a stderr line containing `needle`.
    fn wait_for_stderr(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.stderr_seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {limit:?}; got:\n{}",
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }
}

/// Spawns `runproof run` with piped output.
fn spawn_run(ws: &Workspace, runbook: &Path) -> Running {
    let mut child = runproof()
        .arg("run")
        .arg(runbook)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runproof");
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let err = child.stderr.take().unwrap();
    let (tx, stderr_lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        stdout,
        stderr_lines,
        stderr_seen: Vec::new(),
    }
}

/// Waits until the only bundle under `artifacts/<name>` has an
/// `attempt.start` record for `step`, and returns that bundle.
fn wait_for_attempt(ws: &Workspace, name: &str, step: &str, run: &mut Running) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    let needle = format!("\"type\":\"attempt.start\",\"step\":\"{step}\"");
    loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            panic!("runproof exited early with {status}");
        }
        let dir = ws.artifacts().join(name);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let journal =
                    std::fs::read_to_string(entry.path().join("events.jsonl")).unwrap_or_default();
                if journal.contains(&needle) {
                    return entry.path();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no attempt.start for {step} within 60s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(run: &Running, signal: i32) {
    let pid = run.child.id();
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Waits for the run to exit within `limit`; returns its exit code, stdout,
/// stderr and how long it took.
fn wait_within(mut run: Running, limit: Duration) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            let stdout = run.stdout.join().unwrap();
            run.stderr_seen.extend(run.stderr_lines.iter());
            return (
                status.code(),
                stdout,
                run.stderr_seen.join("\n"),
                started.elapsed(),
            );
        }
        if started.elapsed() > limit {
            let _ = run.child.kill();
            let _ = run.child.wait();
            panic!("runproof did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigint_mid_attempt_seals_an_interrupted_bundle_that_verifies() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "hang.toml",
        &format!(
            "[runbook]\nname = \"hang\"\n[defaults]\nretries = 2\ntimeout = \"120s\"\n\
             [[step]]\nid = \"first\"\ncheck = \"http\"\nurl = \"{base}/ok\"\n\
             [[step]]\nid = \"stuck\"\ncheck = \"http\"\nurl = \"{base}/hang\"\n\
             [[step]]\nid = \"later\"\ncheck = \"http\"\nurl = \"{base}/ok\"\n",
            base = server.url()
        ),
    );
    let mut child = spawn_run(&ws, &path);
    let bundle = wait_for_attempt(&ws, "hang", "stuck", &mut child);
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, libc::SIGINT);
    // The attempt's 120 s timeout is not waited for: its verdict below is
    // `interrupted`, not `timeout`.
    let (code, stdout, stderr, _) = wait_within(child, Duration::from_secs(60));
    assert_eq!(code, Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stdout.contains(&format!("bundle: {}", bundle.display())),
        "{stdout}"
    );

    let events = events(&bundle);
    let attempts = records(&events, "attempt.end", Some("stuck"));
    assert_eq!(
        attempts.len(),
        1,
        "one attempt in flight, no retry after the signal"
    );
    assert_eq!(attempts[0]["verdict"], "interrupted", "{}", attempts[0]);
    assert_eq!(verdict(&events, "stuck"), "interrupted");
    assert_eq!(verdict(&events, "first"), "pass");
    assert_eq!(verdict(&events, "later"), "skipped");
    assert!(records(&events, "attempt.start", Some("later")).is_empty());
    let last = events.last().unwrap();
    assert_eq!(last["type"], "run.end");
    assert_eq!(last["verdict"], "interrupted");
    assert!(bundle.join("seal.json").is_file());

    let output = verify(&bundle, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let first = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    assert!(
        first.starts_with("VERIFIED") && first.contains("interrupted"),
        "{first}"
    );
    let doc: Value = serde_json::from_slice(&verify(&bundle, &["--json"]).stdout).unwrap();
    assert_eq!(doc["verdict"]["verdict"], "verified_interrupted", "{doc}");
}

/// A runbook whose second step hangs, followed by `tail` quick steps.
fn long_tail_runbook(name: &str, tail: usize) -> String {
    let mut text = format!(
        "[runbook]\nname = \"{name}\"\n[defaults]\nretries = 0\ntimeout = \"120s\"\n\
         [[step]]\nid = \"first\"\ncheck = \"command\"\nargv = [\"true\"]\n\
         [[step]]\nid = \"stuck\"\ncheck = \"command\"\nargv = [\"sleep\", \"120\"]\n"
    );
    for i in 0..tail {
        text.push_str(&format!(
            "[[step]]\nid = \"tail-{i}\"\ncheck = \"command\"\nargv = [\"true\"]\n"
        ));
    }
    text
}

/// `runproof verify` on an unsealed bundle: exit 4, INCOMPLETE (not
/// INVALID), the chain valid up to its last record.
fn assert_incomplete(bundle: &Path) {
    assert!(
        !bundle.join("seal.json").exists(),
        "the bundle must not be sealed"
    );
    let output = verify(bundle, &["--json"]);
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["verdict"]["verdict"], "incomplete", "{doc}");
    assert_eq!(doc["sealed"], false);
    let complete = journal_lines(bundle).len() as u64;
    assert_eq!(doc["records"].as_u64(), Some(complete), "{doc}");
    assert_eq!(
        doc["verdict"]["valid_through_seq"].as_u64(),
        Some(complete - 1),
        "{doc}"
    );
    for check in doc["checks"].as_array().unwrap() {
        if [
            "journal.chain",
            "journal.seq",
            "journal.records",
            "header",
            "blobs",
        ]
        .contains(&check["name"].as_str().unwrap())
        {
            assert_eq!(
                check["status"], "pass",
                "an unsealed bundle is incomplete, not tampered: {check}"
            );
        }
    }
    let text_out = verify(bundle, &[]);
    let stdout = String::from_utf8_lossy(&text_out.stdout);
    assert!(stdout.starts_with("INCOMPLETE"), "{stdout}");
    assert!(!stdout.contains("INVALID"), "{stdout}");
}

#[test]
fn second_sigint_aborts_leaving_an_incomplete_but_untampered_bundle() {
    let ws = Workspace::new();
    let path = ws.write("abort.toml", &long_tail_runbook("abort", 3));
    let mut child = spawn_run(&ws, &path);
    let bundle = wait_for_attempt(&ws, "abort", "stuck", &mut child);
    // Sealing hashes every file of the bundle: a FIFO nobody writes to holds
    // the graceful close before the seal for as long as the test needs, so
    // the second signal cannot lose a race against it.
    let hold = bundle.join("hold.fifo");
    let c_path = std::ffi::CString::new(hold.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    signal(&child, libc::SIGINT);
    // Once the first signal has been taken (two pending signals would merge
    // into one), abort while the graceful close is under way.
    child.wait_for_stderr("interrupted", Duration::from_secs(30));
    signal(&child, libc::SIGINT);
    let (code, stdout, stderr, _) = wait_within(child, Duration::from_secs(60));
    assert_eq!(code, Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("aborted"),
        "the second signal must abort:\n{stderr}"
    );
    assert!(
        !stdout.contains("bundle: "),
        "an aborted run names no sealed bundle:\n{stdout}"
    );
    std::fs::remove_file(&hold).unwrap();
    assert_incomplete(&bundle);
    // Guaranteed: the records that did reach the disk before the abort all
    // tell of the interruption (the attempt in flight ended as interrupted,
    // a run end if any is interrupted), never of a finished or passed run.
    let events = events(&bundle);
    for attempt in records(&events, "attempt.end", Some("stuck")) {
        assert_eq!(attempt["verdict"], "interrupted", "{attempt}");
    }
    for end in records(&events, "run.end", None) {
        assert_eq!(end["verdict"], "interrupted", "{end}");
    }
    assert!(
        records(&events, "attempt.start", Some("tail-0")).is_empty(),
        "no step runs after the first signal"
    );
}

#[test]
fn sigkilled_run_is_incomplete_with_a_valid_chain() {
    let ws = Workspace::new();
    let path = ws.write("killed.toml", &long_tail_runbook("killed", 2));
    let mut child = spawn_run(&ws, &path);
    let bundle = wait_for_attempt(&ws, "killed", "stuck", &mut child);
    signal(&child, libc::SIGKILL);
    let (code, _, _, _) = wait_within(child, Duration::from_secs(10));
    assert_eq!(code, None, "killed by a signal");
    let events = events(&bundle);
    assert_eq!(events.last().unwrap()["type"], "attempt.start");
    assert_incomplete(&bundle);

    // Tampering with an unsealed journal is still tampering, not incompleteness.
    let copy = ws.path().join("killed-edited");
    copy_dir(&bundle, &copy);
    let mut lines = journal_lines(&copy);
    lines.remove(1);
    write_journal(&copy, &lines);
    let output = verify(&copy, &[]);
    assert_eq!(output.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("INVALID"),
        "{}",
        describe(&output)
    );
}

// ------------------------------------------------------------------ secrets

const CANARY_TOKEN: &str = "cnryTok-4f9e2a7b\"c\\d/e+f=g";
const CANARY_QUERY: &str = "cnryQry-81c3d5e7+/x";
const CANARY_PG_PASSWORD: &str = "cnryPg-6a0b2c4d8e";

/// Fails if any canary leaked into `haystack` in any encoding (raw, hex,
/// base64 at every alignment, percent/form/JSON escaping: see
/// `support::canary`), or even the part of it before the first character an
/// encoding would touch.
fn assert_no_canary(haystack: &[u8], place: &str) {
    for canary in [CANARY_TOKEN, CANARY_QUERY, CANARY_PG_PASSWORD] {
        crate::support::canary::assert_absent(haystack, canary, place);
        let prefix: String = canary
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        assert!(
            !haystack
                .windows(prefix.len())
                .any(|w| w == prefix.as_bytes()),
            "the prefix of a canary secret ({prefix:?}) leaked into {place}"
        );
    }
}

fn leaky_runbook(base: &str) -> String {
    format!(
        r#"[runbook]
name = "canary"
owner = "security"
[defaults]
retries = 1
backoff = {{ initial = "20ms", max = "20ms", jitter = false }}
timeout = "3s"

[secrets]
env_files = ["canary.env"]
required = ["CANARY_TOKEN", "CANARY_QUERY", "CANARY_PG_PASSWORD"]

[[step]]
id = "token-present"
check = "secret"
name = "CANARY_TOKEN"
min_length = 16

[[step]]
id = "header"
check = "http"
url = "{base}/auth"
headers = {{ Authorization = "Bearer {{{{secret:CANARY_TOKEN}}}}" }}

[[step]]
id = "query"
check = "http"
url = "{base}/status/500?token={{{{secret:CANARY_QUERY}}}}"

[[step]]
id = "dsn"
check = "postgres"
dsn = "postgres://postgres:{{{{secret:CANARY_PG_PASSWORD}}}}@127.0.0.1:1/db"

[[step]]
id = "echo"
check = "command"
shell = "echo token=$TOKEN; echo token=$TOKEN >&2"
env = {{ TOKEN = "{{{{secret:CANARY_TOKEN}}}}" }}
"#
    )
}

#[test]
fn canary_secrets_never_leak_to_the_terminal_or_the_bundle() {
    let server = TestServer::start();
    let ws = Workspace::new();
    // Two secrets come from an env file, one from the process environment.
    ws.write(
        "canary.env",
        &format!("# canaries\nexport CANARY_QUERY='{CANARY_QUERY}'\nCANARY_PG_PASSWORD=\"{CANARY_PG_PASSWORD}\"\n"),
    );
    let path = ws.write("canary.toml", &leaky_runbook(&server.url()));
    let output = ws.run_with_env(&path, &["--json"], &[("CANARY_TOKEN", CANARY_TOKEN)]);
    // --json prints the run document on stdout, progress on stderr; both
    // must be clean. Run once more without --json for the table output.
    let plain = ws.run_with_env(&path, &[], &[("CANARY_TOKEN", CANARY_TOKEN)]);
    for out in [&output, &plain] {
        assert_eq!(
            out.status.code(),
            Some(1),
            "the query and dsn steps escalate\n{}",
            describe(out)
        );
        assert_no_canary(&out.stdout, "stdout");
        assert_no_canary(&out.stderr, "stderr");
    }

    // The secret was really sent: the leak checks are not vacuous.
    let seen = server.seen_auth();
    assert!(!seen.is_empty(), "the /auth endpoint was never called");
    assert!(
        seen.iter().all(|h| h == &format!("Bearer {CANARY_TOKEN}")),
        "{seen:?}"
    );

    let bundle = bundle_path(&plain);
    let events = events(&bundle);
    assert_eq!(verdict(&events, "token-present"), "pass");
    assert_eq!(verdict(&events, "header"), "pass");
    assert_eq!(verdict(&events, "echo"), "pass");
    assert_eq!(verdict(&events, "query"), "escalated");
    assert_eq!(
        records(&events, "attempt.end", Some("query")).len(),
        2,
        "the query step retried"
    );
    assert_eq!(verdict(&events, "dsn"), "escalated");
    let dsn_reason = records(&events, "attempt.end", Some("dsn"))[0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!dsn_reason.is_empty());

    let mut all = Vec::new();
    for file in files_under(&bundle) {
        let bytes = std::fs::read(&file).unwrap();
        assert_no_canary(&bytes, &file.display().to_string());
        all.extend(bytes);
    }
    // The command's output was captured (redacted), not dropped.
    let all = String::from_utf8_lossy(&all);
    assert!(
        all.contains("token=[REDACTED"),
        "the echoed token should appear redacted in the bundle"
    );
    // The header's template, not its expansion, is the evidence.
    assert!(
        all.contains("{{secret:CANARY_TOKEN}}"),
        "the template should be recorded"
    );
    // Names of the secrets used are recorded, never values.
    let header = std::fs::read_to_string(bundle.join("runproof.json")).unwrap();
    assert!(header.contains("CANARY_TOKEN"), "{header}");

    // verify's own secret scan agrees.
    let scan = runproof()
        .arg("verify")
        .arg(&bundle)
        .args(["--scan-secrets-from-env", "CANARY_TOKEN"])
        .args(["--scan-secrets-from-env", "CANARY_QUERY"])
        .args(["--scan-secrets-from-env", "CANARY_PG_PASSWORD"])
        .env("CANARY_TOKEN", CANARY_TOKEN)
        .env("CANARY_QUERY", CANARY_QUERY)
        .env("CANARY_PG_PASSWORD", CANARY_PG_PASSWORD)
        .output()
        .unwrap();
    assert_eq!(scan.status.code(), Some(0), "{}", describe(&scan));
    assert_no_canary(&scan.stdout, "verify stdout");

    // …and can find one: the same bundle with a canary planted in a blob.
    let planted = ws.path().join("planted");
    copy_dir(&bundle, &planted);
    let blob = files_under(&planted.join("blobs"))
        .into_iter()
        .next()
        .expect("a blob");
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes.extend_from_slice(format!("\nleaked {CANARY_QUERY}\n").as_bytes());
    std::fs::write(&blob, bytes).unwrap();
    let scan = runproof()
        .arg("verify")
        .arg(&planted)
        .args(["--json", "--scan-secrets-from-env", "CANARY_QUERY"])
        .env("CANARY_QUERY", CANARY_QUERY)
        .output()
        .unwrap();
    assert_eq!(scan.status.code(), Some(4), "{}", describe(&scan));
    assert_no_canary(&scan.stdout, "verify stdout (planted)");
    let doc: Value = serde_json::from_slice(&scan.stdout).unwrap();
    let blob_name = blob
        .strip_prefix(&planted)
        .unwrap()
        .to_string_lossy()
        .to_string();
    let findings = doc["secrets"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["file"] == blob_name.as_str()),
        "the planted canary must be found: {doc}"
    );
}

// ------------------------------------------------------------- concurrency

#[test]
fn concurrent_runs_of_one_runbook_get_their_own_bundles() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write(
        "twins.toml",
        &format!(
            "[runbook]\nname = \"twins\"\n{FAST}\n[[step]]\nid = \"slow\"\ncheck = \"http\"\nurl = \"{}/slow/1500\"\n",
            server.url()
        ),
    );
    let runs: Vec<Running> = (0..3).map(|_| spawn_run(&ws, &path)).collect();
    let mut bundles = Vec::new();
    for run in runs {
        let (code, stdout, stderr, _) = wait_within(run, Duration::from_secs(60));
        assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
        let line = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("bundle: "));
        bundles.push(PathBuf::from(line.expect("a bundle line").trim()));
    }
    assert!(server.max_in_flight() >= 2, "the runs should overlap");
    let mut unique = bundles.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{bundles:?}");
    let run_ids: std::collections::BTreeSet<String> = bundles
        .iter()
        .map(|b| events(b)[0]["run"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(run_ids.len(), 3);
    for bundle in &bundles {
        assert_eq!(
            verify(bundle, &[]).status.code(),
            Some(0),
            "{}",
            bundle.display()
        );
        assert_eq!(records(&events(bundle), "attempt.start", None).len(), 1);
    }
    assert_eq!(
        std::fs::read_dir(ws.artifacts().join("twins"))
            .unwrap()
            .count(),
        3
    );
}

/// A path that is no bundle is a usage error (exit 2) that says so, never
/// an INVALID verdict with a table of "ok" rows.
#[test]
fn verify_of_a_missing_path_or_a_non_bundle_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-bundle");
    let file = tmp.path().join("plain.txt");
    std::fs::write(&file, "not a bundle").unwrap();
    let empty = tmp.path().join("empty-folder");
    std::fs::create_dir(&empty).unwrap();
    for (path, says) in [
        (&missing, "no such bundle"),
        (&file, "not a bundle folder"),
        (&empty, "not a bundle folder"),
    ] {
        let output = verify(path, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{path:?}\n{stdout}{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains(&path.display().to_string()),
            "{path:?}: {stderr}"
        );
        assert!(
            !stdout.contains("INVALID") && !stdout.contains("ok"),
            "{stdout}"
        );
    }
}
