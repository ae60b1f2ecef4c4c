//! Evidence QA can trust, through the real binary against a server on
//! 127.0.0.1: seals signed with `--sign-key` verify with stock `ssh-keygen`
//! and with `verify --allowed-signers`; forged, unsigned and wrongly signed
//! bundles fail it; reports and seal claims that disagree with the journal
//! are INVALID; `--runbook` and `--expect-head` accept the real thing and
//! reject others; the journal and header say what was really checked, by
//! whom.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const FAST: &str = r#"
[defaults]
retries = 2
backoff = { initial = "20ms", max = "50ms", jitter = false }
timeout = "2s"
"#;

/// A pass, a pass after a retry, an escalation and a step blocked by it; the
/// health URL comes from a var so `--var` can point it elsewhere.
fn runbook(base: &str) -> String {
    format!(
        r#"[runbook]
name = "trust"
owner = "qa"
{FAST}
[vars]
public_url = "http://127.0.0.1:9/unused"

[[step]]
id = "health"
check = "http"
url = "{{{{public_url}}}}/json"

[[step]]
id = "warm"
check = "http"
url = "{base}/flaky/trust-warm/1"

[[step]]
id = "down"
check = "http"
url = "{base}/status/503"
retries = 1

[[step]]
id = "after"
check = "http"
url = "{base}/json"
depends_on = ["down"]
"#
    )
}

/// `checks.toml` with one `http` check `ok` on `url`, fast policy.
fn one_check(ws: &Workspace, url: &str) -> PathBuf {
    ws.write(
        "checks.toml",
        &format!("{FAST}\n[[check]]\nid = \"ok\"\ncheck = \"http\"\nurl = \"{url}\"\n"),
    )
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `ssh-keygen -t ed25519 -N ''` into `dir/name`; returns the private key path.
fn keygen(dir: &Path, name: &str, comment: &str) -> PathBuf {
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen must be installed (scripts/test.sh installs openssh-client)");
    assert!(status.success());
    key
}

fn public_key(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// An allowed_signers file listing `key` for `principal`.
fn allowed_signers(dir: &Path, name: &str, principal: &str, key: &Path) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{principal} {}\n", public_key(key))).unwrap();
    path
}

/// Runs the trust runbook, signed with `key`, as operator `QA Bot`.
fn signed_run(ws: &Workspace, server: &TestServer, key: &Path) -> (PathBuf, PathBuf) {
    let path = ws.write("trust.toml", &runbook(&server.url()));
    let var = format!("public_url={}", server.url());
    let output = ws.run_with_env(
        &path,
        &["--sign-key", key.to_str().unwrap(), "--var", &var],
        &[("RUNPROOF_OPERATOR", "QA Bot")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    (bundle_path(&output), path)
}

fn verify_text(bundle: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let output = verify(bundle, extra);
    (output.status.code(), text(&output))
}

fn assert_invalid(bundle: &Path, extra: &[&str], needles: &[&str], what: &str) {
    let (code, out) = verify_text(bundle, extra);
    assert_eq!(code, Some(4), "{what}: verify must fail\n{out}");
    assert!(
        out.starts_with("INVALID"),
        "{what}: must say INVALID\n{out}"
    );
    for needle in needles {
        assert!(
            out.contains(needle),
            "{what}: must mention {needle:?}\n{out}"
        );
    }
}

fn copy_of(bundle: &Path, scratch: &Path, name: &str) -> PathBuf {
    let copy = scratch.join(name);
    copy_dir(bundle, &copy);
    copy
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Recomputes every subject digest of `seal.json` (and what `edit` changes
/// in it), as a forger with a text editor and sha256sum would.
fn reseal(bundle: &Path, edit: impl FnOnce(&mut Value)) {
    let mut seal = read_json(&bundle.join("seal.json"));
    for subject in seal["subject"].as_array_mut().unwrap() {
        let name = subject["name"].as_str().unwrap().to_string();
        let bytes = std::fs::read(bundle.join(&name)).unwrap();
        subject["digest"]["sha256"] = Value::String(sha256_hex(&bytes));
    }
    edit(&mut seal);
    let mut bytes = serde_json::to_vec_pretty(&seal).unwrap();
    bytes.push(b'\n');
    std::fs::write(bundle.join("seal.json"), bytes).unwrap();
}

/// Rewrites the journal with `edit` applied to each record (`None` drops
/// it), renumbers and re-chains it, then reseals with matching records,
/// head, verdict and counts: the forgery of issue 11.
fn forge_journal(bundle: &Path, mut edit: impl FnMut(&mut Value) -> bool) {
    let header = std::fs::read(bundle.join("runproof.json")).unwrap();
    let mut prev = format!("sha256:{}", sha256_hex(&header));
    let mut lines = Vec::new();
    let mut run_end = Value::Null;
    let journal = std::fs::read_to_string(bundle.join("events.jsonl")).unwrap();
    for line in journal.lines() {
        let mut record: Value = serde_json::from_str(line).unwrap();
        if !edit(&mut record) {
            continue;
        }
        record["seq"] = Value::from(lines.len() as u64);
        record["prev"] = Value::String(prev.clone());
        if record["type"] == "run.end" {
            run_end = record.clone();
        }
        let text = serde_json::to_string(&record).unwrap();
        prev = format!("sha256:{}", sha256_hex(text.as_bytes()));
        lines.push(text);
    }
    std::fs::write(bundle.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let records = lines.len();
    reseal(bundle, |seal| {
        let p = &mut seal["predicate"];
        p["records"] = Value::from(records as u64);
        p["head"] = Value::String(prev);
        p["verdict"] = run_end["verdict"].clone();
        p["counts"] = run_end["counts"].clone();
    });
}

/// Regenerates `summary.md` and `junit.xml` from the (forged) journal with
/// runproof's own renderers, as a careful forger would.
fn regenerate_reports(bundle: &Path) {
    use runproof::engine::RunObserver as _;
    let read = runproof::evidence::read_bundle(bundle).unwrap();
    let header = &read.header;
    let mut builder = runproof::report::SummaryBuilder::new(
        &header.run_id,
        &header.source.name,
        &header.started_at,
    );
    for (seq, event) in read.events() {
        builder.observe(seq, &event);
    }
    let summary = builder.finish();
    let context = runproof::session::run::report_context(header);
    std::fs::write(
        bundle.join("summary.md"),
        runproof::report::markdown::render_run(&summary, &context),
    )
    .unwrap();
    std::fs::write(
        bundle.join("junit.xml"),
        runproof::report::junit::render(&summary),
    )
    .unwrap();
}

/// Turns the escalated `down` step into a pass after its retries: its last
/// attempt passes, the escalation goes, `after` becomes skipped, run.end
/// says pass. Reports are regenerated and the seal recomputed.
fn forge_pass(bundle: &Path) {
    forge_journal(bundle, |r| {
        let step = r["step"].as_str().unwrap_or("").to_string();
        match (r["type"].as_str().unwrap(), step.as_str()) {
            ("escalation", "down") => return false,
            ("attempt.end", "down") if r["attempt"] == 2 => {
                r["verdict"] = "pass".into();
                r.as_object_mut().unwrap().remove("reason");
                r.as_object_mut().unwrap().remove("failure");
            }
            ("step.end", "down") => {
                r["verdict"] = "pass".into();
                r.as_object_mut().unwrap().remove("reason");
            }
            // Blocked by a step that now passed would give it away.
            ("step.end", "after") => {
                r["verdict"] = "skipped".into();
                r["reason"] = "not selected".into();
            }
            ("run.end", _) => {
                r["verdict"] = "pass".into();
                r["counts"] = serde_json::json!({"pass": 3, "skipped": 1});
            }
            _ => {}
        }
        true
    });
    regenerate_reports(bundle);
    reseal(bundle, |_| {});
}

// ------------------------------------------------------------------ signing

#[test]
fn signed_seal_verifies_with_ssh_keygen_and_allowed_signers_naming_the_signer() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let key = keygen(ws.path(), "ci_key", "deploy-ci@example");
    let (bundle, _) = signed_run(&ws, &server, &key);
    let allowed = allowed_signers(ws.path(), "allowed_signers", "deploy-ci@example", &key);

    // Stock OpenSSH, exactly as the docs tell QA.
    let seal = std::fs::File::open(bundle.join("seal.json")).unwrap();
    let output = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "deploy-ci@example", "-n", "runproof-seal", "-s"])
        .arg(bundle.join("seal.json.sig"))
        .stdin(Stdio::from(seal))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ssh-keygen -Y verify: {}",
        text(&output)
    );

    let fingerprint = {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let allowed = allowed.to_str().unwrap();
    let (code, out) = verify_text(
        &bundle,
        &[
            "--allowed-signers",
            allowed,
            "--identity",
            "deploy-ci@example",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains(&format!("signed by deploy-ci@example ({fingerprint})")),
        "{out}"
    );
    let (code, out) = verify_text(&bundle, &["--allowed-signers", allowed]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signed by deploy-ci@example"), "{out}");

    // The header names the operator from RUNPROOF_OPERATOR and the key.
    let header = read_json(&bundle.join("runproof.json"));
    assert_eq!(header["operator"], "QA Bot");
    assert_eq!(header["operator_source"], "RUNPROOF_OPERATOR");
    assert_eq!(header["signing_key"], fingerprint.as_str());

    // The wrong identity, or someone else's key, is exit 4.
    assert_invalid(
        &bundle,
        &["--allowed-signers", allowed, "--identity", "someone@else"],
        &["seal.signature", "someone@else"],
        "wrong identity",
    );
    let other = keygen(ws.path(), "other_key", "other");
    let others = allowed_signers(ws.path(), "others", "deploy-ci@example", &other);
    assert_invalid(
        &bundle,
        &["--allowed-signers", others.to_str().unwrap()],
        &["not in --allowed-signers"],
        "a key QA does not list",
    );
    // A namespace restriction that excludes runproof-seal is honoured.
    let git_only = ws.path().join("git_only");
    std::fs::write(
        &git_only,
        format!(
            "deploy-ci@example namespaces=\"git\" {}\n",
            public_key(&key)
        ),
    )
    .unwrap();
    assert_invalid(
        &bundle,
        &["--allowed-signers", git_only.to_str().unwrap()],
        &["seal.signature"],
        "key allowed for git only",
    );
}

#[test]
fn unsigned_or_resigned_bundles_fail_allowed_signers() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let key = keygen(ws.path(), "ci_key", "ci");
    let allowed = allowed_signers(ws.path(), "allowed_signers", "ci", &key);
    let allowed = allowed.to_str().unwrap();
    let path = ws.write("trust.toml", &runbook(&server.url()));
    let unsigned = bundle_path(&ws.run(&path, &[]));
    let (code, out) = verify_text(&unsigned, &[]);
    assert_eq!(
        code,
        Some(0),
        "unsigned bundles still verify without --allowed-signers\n{out}"
    );
    assert!(out.lines().next().unwrap().contains("unsigned"), "{out}");
    assert_invalid(
        &unsigned,
        &["--allowed-signers", allowed],
        &["unsigned"],
        "unsigned bundle",
    );

    // The seal edited after signing: the signature no longer verifies,
    // with or without --allowed-signers.
    let (signed, _) = signed_run(&ws, &server, &key);
    let edited = copy_of(&signed, ws.path(), "edited");
    reseal(&edited, |seal| {
        seal["predicate"]["finished_at"] = "2099-01-01T00:00:00.000Z".into()
    });
    assert_invalid(
        &edited,
        &[],
        &["does not verify over seal.json"],
        "seal edited after signing",
    );
    assert_invalid(
        &edited,
        &["--allowed-signers", allowed],
        &["seal.signature"],
        "seal edited after signing",
    );
}

#[test]
fn forged_bundle_of_issue_11_fails_allowed_signers() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let key = keygen(ws.path(), "ci_key", "ci");
    let allowed = allowed_signers(ws.path(), "allowed_signers", "ci", &key);
    let allowed = allowed.to_str().unwrap();
    let (bundle, _) = signed_run(&ws, &server, &key);

    // Journal re-chained, reports regenerated, seal recomputed; the old
    // signature left in place.
    let forged = copy_of(&bundle, ws.path(), "forged");
    forge_pass(&forged);
    assert_invalid(
        &forged,
        &[],
        &["seal.json.sig"],
        "forgery with the old signature",
    );
    assert_invalid(
        &forged,
        &["--allowed-signers", allowed],
        &["seal.signature"],
        "forgery with the old signature",
    );

    // The signature deleted: only a signature requirement catches it —
    // which is what --allowed-signers is for.
    std::fs::remove_file(forged.join("seal.json.sig")).unwrap();
    // The header still names the key the run signed with.
    assert_invalid(
        &forged,
        &[],
        &["the header says the seal was signed by"],
        "forgery, signature removed",
    );
    // Removing that claim too means re-chaining from the header on: then
    // only a signature requirement catches it — which is what
    // --allowed-signers is for.
    let mut header = read_json(&forged.join("runproof.json"));
    header.as_object_mut().unwrap().remove("signing_key");
    let mut bytes = serde_json::to_vec_pretty(&header).unwrap();
    bytes.push(b'\n');
    std::fs::write(forged.join("runproof.json"), bytes).unwrap();
    forge_journal(&forged, |_| true);
    regenerate_reports(&forged);
    reseal(&forged, |_| {});
    let (code, out) = verify_text(&forged, &[]);
    assert_eq!(
        code,
        Some(0),
        "a perfect unsigned forgery verifies as unsigned\n{out}"
    );
    assert!(out.contains("unsigned"), "{out}");
    assert_invalid(
        &forged,
        &["--allowed-signers", allowed],
        &["unsigned"],
        "forgery, signature and claim removed",
    );

    // Re-signed with the forger's own key: not a key QA lists.
    let forger = keygen(ws.path(), "forger", "ci");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "runproof-seal", "-f"])
        .arg(&forger)
        .arg(forged.join("seal.json"))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(forged.join("seal.json.sig").exists());
    assert_eq!(verify(&forged, &[]).status.code(), Some(0));
    assert_invalid(
        &forged,
        &["--allowed-signers", allowed],
        &["not in --allowed-signers"],
        "forgery re-signed",
    );

    // The honest seal re-signed by another key: the header names the
    // run's key, so even a plain verify refuses it.
    let swapped = copy_of(&bundle, ws.path(), "swapped");
    std::fs::remove_file(swapped.join("seal.json.sig")).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "runproof-seal", "-f"])
        .arg(&forger)
        .arg(swapped.join("seal.json"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_invalid(
        &swapped,
        &[],
        &["but the header names"],
        "signature swapped",
    );

    // And with the seal deleted, a signature or an expected head make it
    // INVALID, not merely INCOMPLETE.
    let no_seal = copy_of(&bundle, ws.path(), "no-seal");
    let head = read_json(&bundle.join("seal.json"))["predicate"]["head"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(no_seal.join("seal.json")).unwrap();
    assert_invalid(
        &no_seal,
        &[],
        &["seal was deleted"],
        "seal deleted, signature left",
    );
    std::fs::remove_file(no_seal.join("seal.json.sig")).unwrap();
    let (_, out) = verify_text(&no_seal, &[]);
    assert!(out.starts_with("INCOMPLETE"), "{out}");
    assert_invalid(
        &no_seal,
        &["--expect-head", &head],
        &["must be sealed"],
        "seal deleted, head expected",
    );
    assert_invalid(
        &no_seal,
        &["--allowed-signers", allowed],
        &["seal.signature"],
        "seal deleted, signature required",
    );
}

#[test]
fn sign_key_env_and_ssh_agent_public_key_sign_runs_and_sweeps() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let key = keygen(ws.path(), "agent_key", "agent");
    let allowed = allowed_signers(ws.path(), "allowed_signers", "agent", &key);
    let allowed = allowed.to_str().unwrap();

    // An agent of our own, on a socket in the workspace; killed by its pid.
    let socket = ws.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh-agent");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());
    // The private key is gone: only the agent can sign now.
    std::fs::remove_file(&key).unwrap();
    let pub_key = key.with_extension("pub");
    let path = ws.write("trust.toml", &runbook(&server.url()));
    let socket_env = socket.to_str().unwrap();
    let output = ws.run_with_env(
        &path,
        &[],
        &[
            ("RUNPROOF_SIGN_KEY", pub_key.to_str().unwrap()),
            ("SSH_AUTH_SOCK", socket_env),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let (code, out) = verify_text(
        &bundle,
        &["--allowed-signers", allowed, "--identity", "agent"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signed by agent"), "{out}");

    // A sweep signs its bundle too.
    let checks = one_check(&ws, &format!("{}/json", server.url()));
    let output = runproof()
        .arg("sweep")
        .arg(&checks)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .args(["--sign-key", pub_key.to_str().unwrap(), "--json"])
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let sweep_bundle = PathBuf::from(doc["bundle"].as_str().unwrap());
    assert!(sweep_bundle.join("seal.json.sig").exists());
    let (code, out) = verify_text(&sweep_bundle, &["--allowed-signers", allowed]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signed by agent"), "{out}");

    // A public key the agent does not hold is refused before anything runs.
    let stranger = keygen(ws.path(), "stranger", "x");
    let output = ws.run_with_env(
        &path,
        &[
            "--sign-key",
            stranger.with_extension("pub").to_str().unwrap(),
        ],
        &[("SSH_AUTH_SOCK", socket_env)],
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        text(&output).contains("does not hold"),
        "{}",
        describe(&output)
    );

    agent.kill().unwrap();
    agent.wait().unwrap();
}

// -------------------------------------------------------- reports and seal

#[test]
fn a_sweeps_junit_is_held_to_its_journal_check_by_check() {
    // A sweep's JUnit is compared through order-free sums of its testcases
    // (memory that does not grow with the checks); any disagreement is then
    // named exactly, check by check.
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let mut body = FAST.to_string();
    for (id, path) in [
        ("up-1", "ok"),
        ("up-2", "ok"),
        ("down", "status/500"),
        ("up-3", "ok"),
    ] {
        body.push_str(&format!(
            "\n[[check]]\nid = \"{id}\"\ncheck = \"http\"\nurl = \"{base}/{path}\"\n"
        ));
    }
    body.push_str(&format!(
        "\n[[check]]\nid = \"after-down\"\ncheck = \"http\"\nurl = \"{base}/ok\"\ndepends_on = [\"down\"]\n"
    ));
    let checks = ws.write("checks.toml", &body);
    let output = runproof()
        .arg("sweep")
        .arg(&checks)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let bundle = PathBuf::from(doc["bundle"].as_str().unwrap());
    let (code, out) = verify_text(&bundle, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("junit.xml"), "{out}");
    let junit = std::fs::read_to_string(bundle.join("junit.xml")).unwrap();
    // One testcase's text, from `<testcase` to the next one or the end.
    let case = |id: &str| {
        let named = junit.find(&format!(" name=\"{id}\"")).unwrap();
        let start = junit[..named].rfind("<testcase").unwrap();
        let len = junit[start..]
            .find("\n    <testcase ")
            .or_else(|| junit[start..].find("\n  </testsuite>"))
            .unwrap();
        junit[start..start + len].to_string()
    };
    let edited = |name: &str, edit: &dyn Fn(&str) -> String| {
        let copy = copy_of(&bundle, ws.path(), name);
        let text = edit(&junit);
        assert_ne!(text, junit, "{name}: the edit changes the file");
        std::fs::write(copy.join("junit.xml"), text).unwrap();
        reseal(&copy, |_| {});
        copy
    };

    // The failing check reported as a pass, totals adjusted to match.
    let down = case("down");
    let passed = edited("passed", &|j| {
        j.replace(
            &down,
            "<testcase classname=\"sweep\" name=\"down\" time=\"0.001\"/>",
        )
        .replace("failures=\"1\"", "failures=\"0\"")
    });
    assert_invalid(
        &passed,
        &[],
        &["junit.xml", "\"down\"", "the report says pass"],
        "down passed",
    );
    // A passing check left out, another listed twice, one added.
    let dropped = edited("dropped", &|j| {
        j.replace(&case("up-2"), "")
            .replace("tests=\"5\"", "tests=\"4\"")
    });
    assert_invalid(
        &dropped,
        &[],
        &["\"up-2\" of the journal is missing"],
        "up-2 dropped",
    );
    let twice = edited("twice", &|j| {
        j.replace(
            &case("up-3"),
            &format!("{}\n    {}", case("up-3"), case("up-3")),
        )
    });
    assert_invalid(&twice, &[], &["listed twice"], "up-3 twice");
    let stranger = edited("stranger", &|j| {
        j.replace(&case("up-1"), &case("up-1").replace("up-1", "up-9"))
    });
    assert_invalid(
        &stranger,
        &[],
        &["\"up-9\" is not a step of the journal"],
        "up-9 added",
    );
    // Only the totals changed: the testcases add up, the totals do not.
    let totals = edited("totals", &|j| j.replace("failures=\"1\"", "failures=\"0\""));
    assert_invalid(&totals, &[], &["totals", "failures=0"], "totals");
}

#[test]
fn rewritten_reports_and_seal_claims_are_invalid_without_a_signature() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write("trust.toml", &runbook(&server.url()));
    let var = format!("public_url={}", server.url());
    let bundle = bundle_path(&ws.run(&path, &["--var", &var]));
    let (code, out) = verify_text(&bundle, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("regenerated from the journal and identical"),
        "{out}"
    );

    // junit.xml rewritten to "all passed", its digest fixed in the seal.
    let junit = copy_of(&bundle, ws.path(), "junit");
    let original = std::fs::read_to_string(junit.join("junit.xml")).unwrap();
    let all_passed =
        regex::Regex::new(r"(?s)<testcase ([^>]*?)>\s*<(failure|skipped).*?</testcase>")
            .unwrap()
            .replace_all(&original, "<testcase $1/>")
            .replace("failures=\"1\"", "failures=\"0\"")
            .replace("skipped=\"1\"", "skipped=\"0\"");
    assert_ne!(all_passed, original);
    std::fs::write(junit.join("junit.xml"), all_passed).unwrap();
    reseal(&junit, |_| {});
    assert_invalid(&junit, &[], &["junit.xml", "down"], "junit.xml all passed");

    // summary.md rewritten to PASSED with every step a pass.
    let summary = copy_of(&bundle, ws.path(), "summary");
    let original = std::fs::read_to_string(summary.join("summary.md")).unwrap();
    let passed = original
        .replace("FAILED (1 escalated, 1 blocked)", "PASSED")
        .replace("**escalated**", "pass")
        .replace("| blocked |", "| pass |");
    assert_ne!(passed, original);
    std::fs::write(summary.join("summary.md"), passed).unwrap();
    reseal(&summary, |_| {});
    assert_invalid(
        &summary,
        &[],
        &["summary.md", "down"],
        "summary.md all passed",
    );

    // A subtler edit only the byte comparison sees (same renderer).
    let subtle = copy_of(&bundle, ws.path(), "subtle");
    let original = std::fs::read_to_string(subtle.join("summary.md")).unwrap();
    std::fs::write(
        subtle.join("summary.md"),
        original.replace("trust", "trust (approved)"),
    )
    .unwrap();
    reseal(&subtle, |_| {});
    assert_invalid(
        &subtle,
        &[],
        &["summary.md", "regenerated"],
        "summary.md reworded",
    );

    // Seal counts, times and verdict that the journal contradicts.
    let counts = copy_of(&bundle, ws.path(), "counts");
    reseal(&counts, |seal| {
        seal["predicate"]["counts"] = serde_json::json!({"pass": 4})
    });
    assert_invalid(&counts, &[], &["seal counts"], "seal counts edited");
    let started = copy_of(&bundle, ws.path(), "started");
    reseal(&started, |seal| {
        seal["predicate"]["started_at"] = "2020-01-01T00:00:00.000Z".into()
    });
    assert_invalid(&started, &[], &["started_at"], "seal started_at edited");
    let finished = copy_of(&bundle, ws.path(), "finished");
    reseal(&finished, |seal| {
        seal["predicate"]["finished_at"] = "2020-01-01T00:00:00.000Z".into()
    });
    assert_invalid(&finished, &[], &["finished_at"], "seal finished_at edited");

    // A step recorded as blocked by a dependency that passed.
    let blocked = copy_of(&bundle, ws.path(), "blocked");
    forge_journal(&blocked, |r| {
        if r["type"] == "run.start" {
            for step in r["steps"].as_array_mut().unwrap() {
                if step["id"] == "after" {
                    step["depends_on"] = serde_json::json!(["warm"]);
                }
            }
        }
        true
    });
    regenerate_reports(&blocked);
    reseal(&blocked, |_| {});
    assert_invalid(
        &blocked,
        &[],
        &["\"after\" is recorded as blocked", "warm"],
        "blocked by a passed step",
    );

    // An honest bundle from an older renderer is compared by what its
    // reports state, and verifies.
    let older = copy_of(&bundle, ws.path(), "older");
    let mut header = read_json(&older.join("runproof.json"));
    header.as_object_mut().unwrap().remove("renderer");
    let mut bytes = serde_json::to_vec_pretty(&header).unwrap();
    bytes.push(b'\n');
    std::fs::write(older.join("runproof.json"), bytes).unwrap();
    forge_journal(&older, |_| true);
    let (code, out) = verify_text(&older, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("state the journal's verdicts"), "{out}");
}

// ------------------------------------------------------ what ran, by whom

#[test]
fn runbook_and_expect_head_accept_the_real_ones_and_reject_others() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write("trust.toml", &runbook(&server.url()));
    let output = ws.run(&path, &[]);
    let bundle = bundle_path(&output);
    // The run prints the head for the CI log; the seal holds the same.
    let head = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .expect("a head line")
        .to_string();
    assert_eq!(
        read_json(&bundle.join("seal.json"))["predicate"]["head"],
        head.as_str()
    );

    let (code, out) = verify_text(
        &bundle,
        &["--runbook", path.to_str().unwrap(), "--expect-head", &head],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("is the runbook as written"), "{out}");
    assert!(out.contains("the chain ends at the expected"), "{out}");

    let other = ws.write(
        "other.toml",
        &runbook(&server.url()).replace("retries = 1", "retries = 2"),
    );
    assert_invalid(
        &bundle,
        &["--runbook", other.to_str().unwrap()],
        &["not the runbook this bundle ran"],
        "other runbook",
    );
    let wrong_head = format!("sha256:{}", "ab".repeat(32));
    assert_invalid(
        &bundle,
        &["--expect-head", &wrong_head],
        &["not at the expected"],
        "other head",
    );
    // A head that is not a digest at all is a usage error.
    assert_eq!(
        verify(&bundle, &["--expect-head", "nope"]).status.code(),
        Some(2)
    );

    // Truncating the journal's end and resealing moves the head: caught.
    let cut = copy_of(&bundle, ws.path(), "cut");
    let mut seen_end = false;
    forge_journal(&cut, |r| {
        seen_end |= r["type"] == "run.end";
        !seen_end
    });
    assert_invalid(
        &cut,
        &["--expect-head", &head],
        &["not at the expected"],
        "truncated and resealed",
    );
}

#[test]
fn journal_names_the_url_from_var_and_the_header_every_var() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write("trust.toml", &runbook(&server.url()));
    let var = format!("public_url={}", server.url());
    let output = ws.run_with_env(
        &path,
        &["--var", &var, "--operator", "Jane QA"],
        &[("RUNPROOF_OPERATOR", "ignored")],
    );
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    let start = records(&events, "step.start", Some("health"))[0];
    assert_eq!(start["target"], "GET {{public_url}}/json");
    assert_eq!(start["rendered"], format!("GET {}/json", server.url()));
    assert_eq!(verdict(&events, "health"), "pass");

    let header = read_json(&bundle.join("runproof.json"));
    assert_eq!(header["vars"]["public_url"], server.url().as_str());
    assert_eq!(header["vars_overridden"], serde_json::json!(["public_url"]));
    assert_eq!(header["operator"], "Jane QA");
    assert_eq!(header["operator_source"], "--operator");
    let source = &header["source"];
    assert_eq!(
        source["sha256"],
        sha256_hex(&std::fs::read(&path).unwrap()).as_str()
    );
    assert_eq!(source["copy"]["path"], "runbook.toml");

    // `show` prints the operator and the rendered target.
    let shown = runproof().arg("show").arg(&bundle).output().unwrap();
    let shown = text(&shown);
    assert!(shown.contains("by Jane QA"), "{shown}");
    assert!(
        shown.contains(&format!("public_url={} (--var)", server.url())),
        "{shown}"
    );
    // The escalated step's failed attempts, with their evidence by role.
    assert!(
        shown.contains("evidence of the failed attempts of down:"),
        "{shown}"
    );
    assert!(shown.contains("response body: blobs/sha256/"), "{shown}");
    assert!(shown.contains("| status 503"), "{shown}");
    assert!(shown.contains(&format!("{}/json", server.url())), "{shown}");

    // A command's rendered target names its argv with vars filled in, and
    // where it ran.
    let cmd = ws.write(
        "cmd.toml",
        "[runbook]\nname = \"cmd\"\n[vars]\nwho = \"nobody\"\n[[step]]\nid = \"hi\"\ncheck = \"command\"\nargv = [\"echo\", \"{{who}}\"]\ncwd = \"/\"\n",
    );
    let cmd_bundle = bundle_path(&ws.run(&cmd, &["--var", "who=world"]));
    let cmd_events = crate::support::events(&cmd_bundle);
    let start = records(&cmd_events, "step.start", Some("hi"))[0];
    assert_eq!(start["target"], "echo {{who}} (cwd /)");
    assert_eq!(start["rendered"], "echo world (cwd /)");

    // summary.md ends with a verify command that works from the artifacts folder.
    let summary = std::fs::read_to_string(bundle.join("summary.md")).unwrap();
    let command = summary
        .lines()
        .rev()
        .find(|l| l.starts_with("runproof verify "))
        .expect("a verify command")
        .to_string();
    assert!(summary.trim_end().ends_with("```"), "{summary}");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let output = runproof()
        .args(&args)
        .current_dir(ws.artifacts())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{command}: {}",
        describe(&output)
    );
}

#[test]
fn credential_shaped_output_is_a_warning_and_secrets_found_under_strict() {
    let ws = Workspace::new();
    let key_base = "0123456789abcdef".repeat(5);
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJxYS1ib3QifQ.c2lnbmF0dXJlLWJ5dGVz";
    // A deploy script traced with `set -x` echoes its environment.
    let path = ws.write(
        "leaky.toml",
        &format!(
            r#"[runbook]
name = "leaky"
{FAST}
[[step]]
id = "deploy"
check = "command"
argv = ["sh", "-c", "set -x; SECRET_KEY_BASE={key_base} true; echo token {jwt}; exit 3"]
retries = 0
"#
        ),
    );
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let bundle = bundle_path(&output);

    let (code, out) = verify_text(&bundle, &[]);
    assert_eq!(code, Some(0), "warnings only without --strict\n{out}");
    assert!(out.contains("credential-shaped strings"), "{out}");
    assert!(out.contains("secr…"), "SECRET_KEY_BASE flagged: {out}");
    assert!(out.contains("jwt…"), "JWT flagged: {out}");
    assert!(
        !out.contains(&key_base) && !out.contains(jwt),
        "never the value: {out}"
    );

    let (code, out) = verify_text(&bundle, &["--strict"]);
    assert_eq!(code, Some(4), "{out}");
    assert!(out.starts_with("SECRETS FOUND"), "{out}");

    // A clean bundle has nothing to warn about, even under --strict.
    let clean = ws.write(
        "clean.toml",
        &format!("[runbook]\nname = \"clean\"\n{FAST}\n[[step]]\nid = \"ok\"\ncheck = \"command\"\nargv = [\"true\"]\n"),
    );
    let bundle = bundle_path(&ws.run(&clean, &[]));
    let (code, out) = verify_text(&bundle, &["--strict"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("credential-shaped strings in"), "{out}");
}

#[test]
fn unusable_sign_keys_are_refused_before_anything_runs() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = ws.write("trust.toml", &runbook(&server.url()));
    let keygen_with = |name: &str, args: &[&str]| {
        let key = ws.path().join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-C", "x", "-f"])
            .arg(&key)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success());
        key
    };
    let rsa = keygen_with("rsa", &["-t", "rsa", "-b", "2048", "-N", ""]);
    let ecdsa = keygen_with("ecdsa", &["-t", "ecdsa", "-N", ""]);
    let locked = keygen_with("locked", &["-t", "ed25519", "-N", "a passphrase"]);
    let not_a_key = ws.write("notakey", "hello\n");
    let ed = keygen(ws.path(), "ed", "x");
    type Case<'a> = (PathBuf, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (rsa, "ed25519 keys only", vec![]),
        (ecdsa.with_extension("pub"), "ed25519 keys only", vec![]),
        (locked, "passphrase-protected", vec![]),
        (
            not_a_key,
            "neither an OpenSSH private key nor a public key",
            vec![],
        ),
        (
            ed.with_extension("pub"),
            "SSH_AUTH_SOCK is not set",
            vec![("SSH_AUTH_SOCK", "")],
        ),
        (ws.path().join("missing"), "--sign-key", vec![]),
    ];
    for (key, needle, env) in cases {
        let output = ws.run_with_env(&path, &["--sign-key", key.to_str().unwrap()], &env);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}: {}",
            key.display(),
            describe(&output)
        );
        assert!(
            text(&output).contains(needle),
            "{}: {}",
            key.display(),
            describe(&output)
        );
    }
    assert!(
        !ws.artifacts().exists(),
        "no bundle is started with a bad key"
    );
}

#[test]
fn a_sweep_names_the_operator_from_git_when_nothing_else_does() {
    // No --operator and no RUNPROOF_OPERATOR: git's user.name <user.email>,
    // asked while the input is read.
    let server = TestServer::start();
    let ws = Workspace::new();
    let gitconfig = ws.write(
        "gitconfig",
        "[user]\n\tname = Dana Ops\n\temail = dana@example.test\n",
    );
    let checks = one_check(&ws, &format!("{}/ok", server.url()));
    let output = runproof()
        .arg("sweep")
        .arg(&checks)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .arg("--json")
        .env_remove("RUNPROOF_OPERATOR")
        .env("GIT_CONFIG_GLOBAL", &gitconfig)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let bundle = PathBuf::from(doc["bundle"].as_str().unwrap());
    let header = read_json(&bundle.join("runproof.json"));
    assert_eq!(header["operator"], "Dana Ops <dana@example.test>");
    assert_eq!(header["operator_source"], "git");
}
