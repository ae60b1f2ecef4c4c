//! `runproof sweep` end to end: the real binary against local servers on
//! 127.0.0.1 — verdicts (pass/fail/flaky/blocked/regressed), the concurrency
//! bound, latency percentiles, Prometheus/JUnit/Markdown outputs, shards,
//! `--only`, baselines, `--watch` with SIGINT, invalid input and secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// Timing-sensitive sweep tests hold this exclusively; the other sweep tests
/// hold it shared, so their processes do not compete for the CPU with a
/// measurement. (Tests of other modules do not take it; the timing tests
/// assert only lower bounds and a 3× regression factor.)
static CPU: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    CPU.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn check_file(body: &str) -> String {
    format!("{FAST}\n{body}")
}

/// An HTTP check entry.
fn http(id: &str, url: &str, extra: &str) -> String {
    format!("[[check]]\nid = \"{id}\"\ncheck = \"http\"\nurl = \"{url}\"\n{extra}\n")
}

/// `runproof sweep <paths> --artifacts <ws>/artifacts [extra…]`
fn sweep(ws: &Workspace, paths: &[&Path], extra: &[&str]) -> Output {
    sweep_with_env(ws, paths, extra, &[])
}

fn sweep_with_env(ws: &Workspace, paths: &[&Path], extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = runproof();
    command
        .arg("sweep")
        .args(paths)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .args(extra);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run runproof sweep")
}

/// `name` with two checks: `a` on `{base}/ok`, `b` on `{base}/{second}`.
fn two_checks(ws: &Workspace, name: &str, base: &str, second: &str) -> PathBuf {
    let body = [
        http("a", &format!("{base}/ok"), ""),
        http("b", &format!("{base}/{second}"), ""),
    ]
    .concat();
    ws.write(name, &check_file(&body))
}

/// The `--json` document on stdout.
fn json_doc(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            describe(output)
        )
    })
}

/// id → check report of a `--json` document.
fn checks_by_id(doc: &Value) -> BTreeMap<String, Value> {
    doc["sweep"]["checks"]
        .as_array()
        .expect("sweep.checks")
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

fn ids(doc: &Value) -> BTreeSet<String> {
    checks_by_id(doc).into_keys().collect()
}

fn assert_verifies(bundle: &Path) {
    let out = verify(bundle, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify {}:\n{}",
        bundle.display(),
        describe(&out)
    );
}

/// No file of the workspace's bundles holds any of `canaries`, and the one
/// copy of the check file under `inputs/` holds `shape` (the credential
/// redacted, the line as it was).
fn assert_input_copy_redacted(ws: &Workspace, canaries: &[&str], shape: &str) {
    let mut copies = 0;
    for path in files_under(&ws.artifacts()) {
        let bytes = std::fs::read(&path).unwrap();
        for canary in canaries {
            crate::support::canary::assert_absent(&bytes, canary, &path.display().to_string());
        }
        if path.to_string_lossy().contains("/inputs/") {
            let copy = String::from_utf8_lossy(&bytes);
            assert!(copy.contains(shape), "the copy keeps its shape: {copy}");
            copies += 1;
        }
    }
    assert_eq!(copies, 1, "the check file was copied into the bundle");
}

/// Every sweep bundle of the workspace verifies with `--strict`, which finds
/// no credential-shaped string left in it.
fn assert_strict_verify_finds_nothing(ws: &Workspace) {
    for bundle in bundles(ws, "sweep") {
        let strict = verify(&bundle, &["--strict"]);
        let text = String::from_utf8_lossy(&strict.stdout);
        assert_eq!(strict.status.code(), Some(0), "{text}{}", describe(&strict));
        assert!(!text.contains("credential-shaped"), "{text}");
    }
}

/// A folder `checks/` in the workspace with the given files.
fn checks_dir(ws: &Workspace, files: &[(&str, String)]) -> PathBuf {
    let dir = ws.path().join("checks");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    dir
}

/// pass, fail, flaky (passes on the 2nd attempt), blocked (depends on fail)
/// and blocked-deep (depends on blocked), over two files.
fn mixed_folder(ws: &Workspace, server: &TestServer) -> PathBuf {
    let base = server.url();
    let core = [
        http("pass", &format!("{base}/ok"), "tags = [\"team=web\"]"),
        http("fail", &format!("{base}/status/500"), ""),
        http("flap", &format!("{base}/flaky/flap/1"), ""),
        http("blocked", &format!("{base}/ok"), "depends_on = [\"fail\"]"),
        http(
            "blocked-deep",
            &format!("{base}/ok"),
            "depends_on = [\"blocked\"]",
        ),
    ]
    .concat();
    let other = http(
        "other",
        &format!("{base}/json"),
        "expect = { json = { data_services = \"ok\" } }",
    );
    checks_dir(
        ws,
        &[
            ("core.toml", check_file(&core)),
            ("other.toml", check_file(&other)),
        ],
    )
}

#[test]
fn mixed_folder_reports_each_verdict_with_attempts_and_a_verifying_bundle() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let dir = mixed_folder(&ws, &server);
    let output = sweep(&ws, &[&dir], &["--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let doc = json_doc(&output);
    let checks = checks_by_id(&doc);
    let got: BTreeMap<&str, (&str, u64)> = checks
        .iter()
        .map(|(id, c)| {
            (
                id.as_str(),
                (
                    c["verdict"].as_str().unwrap(),
                    c["attempts"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let want = BTreeMap::from([
        ("pass", ("pass", 1)),
        ("fail", ("fail", 3)),
        ("flap", ("flaky", 2)),
        ("blocked", ("blocked", 0)),
        ("blocked-deep", ("blocked", 0)),
        ("other", ("pass", 1)),
    ]);
    assert_eq!(got, want, "{}", describe(&output));
    assert_eq!(server.calls("flap"), 2);
    assert!(
        checks["blocked"]["reason"]
            .as_str()
            .unwrap()
            .contains("`fail`"),
        "{:?}",
        checks["blocked"]
    );
    assert!(checks["blocked-deep"]["reason"]
        .as_str()
        .unwrap()
        .contains("`blocked`"));
    assert!(checks["fail"]["reason"].as_str().unwrap().contains("500"));
    assert_eq!(checks["pass"]["tags"], serde_json::json!(["team=web"]));
    assert_eq!(doc["sweep"]["verdict"], "escalated");
    assert_eq!(
        doc["sweep"]["counts"],
        serde_json::json!({"blocked": 2, "fail": 1, "flaky": 1, "pass": 2})
    );

    let bundle = PathBuf::from(doc["bundle"].as_str().expect("bundle in JSON"));
    assert_verifies(&bundle);
    let events = events(&bundle);
    assert_eq!(verdict(&events, "blocked"), "blocked");
    assert_eq!(verdict(&events, "fail"), "escalated");
    assert_eq!(verdict(&events, "flap"), "pass");
    assert_eq!(
        records(&events, "attempt.end", Some("flap")).len(),
        2,
        "each attempt is recorded"
    );
    assert_eq!(records(&events, "attempt.end", Some("fail")).len(), 3);
    assert!(
        records(&events, "attempt.start", Some("blocked")).is_empty(),
        "a blocked check is not run"
    );
    let header: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("runproof.json")).unwrap())
            .unwrap();
    assert_eq!(header["kind"], "sweep", "{header}");
}

#[test]
fn table_lists_failures_first_and_prints_a_verifying_bundle() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let dir = mixed_folder(&ws, &server);
    let output = sweep(&ws, &[&dir], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Row order: the first table line naming each check.
    let row = |id: &str| {
        stdout
            .lines()
            .position(|l| l.split('│').nth(1).is_some_and(|cell| cell.trim() == id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{stdout}"))
    };
    let (fail, blocked, deep, flap, pass, other) = (
        row("fail"),
        row("blocked"),
        row("blocked-deep"),
        row("flap"),
        row("pass"),
        row("other"),
    );
    assert!(
        fail < blocked && blocked < deep,
        "failures, then blocked:\n{stdout}"
    );
    assert!(
        deep < flap && flap < other && other < pass,
        "healthy last, then by id:\n{stdout}"
    );
    assert!(stdout.contains("6 checks"), "{stdout}");
    assert_verifies(&bundle_path(&output));
}

#[test]
fn json_ends_as_one_whole_document_with_the_error_when_the_round_fails_on_exit_3() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let file = two_checks(&ws, "ok.toml", &base, "ok");
    // `--junit` under a regular file: reported once the round is sealed,
    // after every check went out on stdout.
    let blocker = ws.write("not-a-dir", "a file where a folder should be");
    let junit = blocker.join("junit.xml");
    for watch in [false, true] {
        let mut args = vec!["--json", "--junit", junit.to_str().unwrap()];
        let output = if watch {
            args.extend(["--watch", "1s"]);
            let watch = Watch::start(&ws, &file, &args);
            let (code, lines, stderr) = watch.finish(Duration::from_secs(30));
            assert_eq!(code, Some(3), "stdout {lines:?}\nstderr {stderr}");
            assert_eq!(lines.len(), 1, "{lines:?}");
            serde_json::from_str::<Value>(&lines[0]).expect("one JSON line")
        } else {
            let output = sweep(&ws, &[&file], &args);
            assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
            assert!(
                String::from_utf8_lossy(&output.stderr).contains("cannot write --junit"),
                "{}",
                describe(&output)
            );
            json_doc(&output)
        };
        let error = output["error"].as_str().unwrap_or_default();
        assert!(error.contains("cannot write --junit"), "{output}");
        assert_eq!(
            ids(&output),
            ["a", "b"].map(String::from).into(),
            "{output}"
        );
        assert_verifies(Path::new(output["bundle"].as_str().unwrap()));
    }
}

#[test]
fn all_passing_exits_0() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let file = two_checks(&ws, "ok.toml", &base, "json");
    let output = sweep(&ws, &[&file], &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc = json_doc(&output);
    assert_eq!(doc["sweep"]["verdict"], "pass");
    assert!(checks_by_id(&doc)
        .values()
        .all(|c| c["verdict"] == "pass" && c["attempts"] == 1));
    assert_verifies(Path::new(doc["bundle"].as_str().unwrap()));
}

#[test]
fn concurrency_bound_is_respected_and_reached() {
    let _cpu = exclusive();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let body: String = (0..9)
        .map(|i| http(&format!("slow-{i}"), &format!("{base}/slow/250"), ""))
        .collect();
    let file = ws.write("slow.toml", &check_file(&body));
    let started = Instant::now();
    let output = sweep(&ws, &[&file], &["--concurrency", "3", "--json"]);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(ids(&json_doc(&output)).len(), 9);
    assert_eq!(
        server.max_in_flight(),
        3,
        "--concurrency 3 must allow exactly 3 in flight"
    );
    // 9 checks of 250 ms, 3 at a time: at least 3 waves.
    assert!(elapsed >= Duration::from_millis(740), "{elapsed:?}");
}

#[test]
fn samples_report_percentiles_of_a_known_distribution() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let file = ws.write(
        "latency.toml",
        &check_file(&http(
            "lat",
            &format!("{}/latency/lat", server.url()),
            "retries = 0",
        )),
    );
    let output = {
        let _quiet = exclusive();
        sweep(&ws, &[&file], &["--samples", "10", "--json"])
    };
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(server.hits("lat"), 10, "one request per sample");
    let doc = json_doc(&output);
    let checks = checks_by_id(&doc);
    let latency = &checks["lat"]["latency"];
    assert_eq!(latency["samples"], 10, "{latency}");
    assert_eq!(checks["lat"]["attempts_total"], 10);
    let ms = |key: &str| {
        latency[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {latency}"))
    };

    // The figures are nearest-rank percentiles of the latencies the bundle
    // recorded, one attempt per sample.
    let events = events(Path::new(doc["bundle"].as_str().unwrap()));
    let mut recorded: Vec<f64> = (1..=10)
        .map(|k| {
            // A sample that passed on its first attempt is one `step.pass`.
            let attempts = records(&events, "step.pass", Some(&format!("lat#{k}")));
            assert_eq!(attempts.len(), 1, "sample {k}");
            attempts[0]["duration_ms"].as_f64().unwrap()
        })
        .collect();
    recorded.sort_by(f64::total_cmp);
    let close = |a: f64, b: f64| (a - b).abs() < 0.01;
    for (key, rank) in [
        ("min_ms", 1),
        ("p50_ms", 5),
        ("p95_ms", 10),
        ("p99_ms", 10),
        ("max_ms", 10),
    ] {
        assert!(
            close(ms(key), recorded[rank - 1]),
            "{key} = {} but rank {rank} of {recorded:?}",
            ms(key)
        );
    }

    // And they reflect the served distribution, 10, 20, …, 100 ms: measuring
    // adds request overhead but never removes sleep, so each figure is at
    // least its served value. (No upper bound: a loaded machine may add any
    // delay; the exact figures are checked against the journal above.)
    for (key, served) in [
        ("min_ms", 10.0),
        ("p50_ms", 50.0),
        ("p95_ms", 100.0),
        ("p99_ms", 100.0),
        ("max_ms", 100.0),
    ] {
        let got = ms(key);
        assert!(
            got >= served - 1.0,
            "{key} = {got}, served {served}: {latency}"
        );
    }
    assert!(ms("min_ms") <= ms("p50_ms") && ms("p50_ms") <= ms("p95_ms"));
}

/// One parsed line of the Prometheus text format.
#[derive(Debug)]
struct PromSample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A small parser of the text exposition format: `# HELP name text`,
/// `# TYPE name type`, `name{k="v",…} value`. Panics on anything else.
fn parse_prometheus(text: &str) -> (BTreeMap<String, String>, Vec<PromSample>) {
    let mut types = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut samples = Vec::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    assert!(text.ends_with('\n'), "the file ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("HELP without text: {line}"));
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            assert!(helps.insert(name.to_string()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("TYPE without type: {line}"));
            assert!(
                ["gauge", "counter", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice for {name}"
            );
            assert!(
                !samples.iter().any(|s: &PromSample| s.name == name),
                "TYPE after samples of {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "unexpected line: {line:?}"
        );
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("sample without value: {line}"),
        };
        assert!(valid_name(name), "metric name {name:?} in {line}");
        let mut labels = BTreeMap::new();
        let rest = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.chars().peekable();
            loop {
                if chars.peek() == Some(&'}') {
                    chars.next();
                    break;
                }
                let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                assert!(
                    valid_name(&key) && !key.contains(':'),
                    "label name {key:?} in {line}"
                );
                assert_eq!(chars.next(), Some('"'), "label value is quoted in {line}");
                let mut value = String::new();
                loop {
                    match chars
                        .next()
                        .unwrap_or_else(|| panic!("unterminated label value in {line}"))
                    {
                        '\\' => match chars.next() {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw newline in {line}"),
                        c => value.push(c),
                    }
                }
                assert!(
                    labels.insert(key.clone(), value).is_none(),
                    "label {key} twice in {line}"
                );
                match chars.next() {
                    Some(',') => {}
                    Some('}') => break,
                    other => panic!("expected , or }} after a label, got {other:?} in {line}"),
                }
            }
            chars.collect::<String>()
        } else {
            rest.to_string()
        };
        let value_text = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("one space before the value in {line}"));
        assert!(
            !value_text.contains(' '),
            "no timestamps (the textfile collector rejects them): {line}"
        );
        let value: f64 = value_text
            .parse()
            .unwrap_or_else(|_| panic!("value {value_text:?} in {line}"));
        assert!(types.contains_key(name), "sample before its TYPE: {line}");
        assert!(helps.contains(name), "sample without HELP: {line}");
        samples.push(PromSample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (types, samples)
}

#[test]
fn prometheus_textfile_parses_with_only_check_kind_and_tag_labels() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let body = [
        "[secrets]\nrequired = [\"SWEEP_TOKEN\"]\n".to_string(),
        http(
            "web",
            &format!("{base}/auth"),
            "tags = [\"team=web\", \"critical\", \"tier:1\"]\nheaders = { Authorization = \"Bearer {{secret:SWEEP_TOKEN}}\" }",
        ),
        http("down", &format!("{base}/status/503"), "tags = [\"team=payments\"]"),
        http("child", &format!("{base}/ok"), "depends_on = [\"down\"]"),
        "[[check]]\nid = \"port\"\ncheck = \"tcp\"\nhost = \"127.0.0.1\"\n".to_string() + &format!("port = {}\n", server.addr.port()),
    ]
    .concat();
    let file = ws.write("prom.toml", &check_file(&body));
    let textfile_dir = ws.path().join("textfile");
    std::fs::create_dir(&textfile_dir).unwrap();
    let prom = textfile_dir.join("runproof.prom");
    let canary = "sk-canary-prom-5f1e2d";
    let output = sweep_with_env(
        &ws,
        &[&file],
        &["--json", "--prometheus", prom.to_str().unwrap()],
        &[("SWEEP_TOKEN", canary)],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(
        server.seen_auth(),
        [format!("Bearer {canary}")],
        "the secret was really sent"
    );
    let doc = json_doc(&output);
    let run_id = doc["sweep"]["run_id"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&prom).expect("prometheus file");

    for forbidden in [
        "http://",
        "127.0.0.1",
        canary,
        run_id.as_str(),
        "HTTP 503",
        "/status/",
    ] {
        assert!(
            !text.contains(forbidden),
            "{forbidden:?} in the textfile:\n{text}"
        );
    }
    let (types, samples) = parse_prometheus(&text);
    for name in [
        "runproof_check_success",
        "runproof_check_duration_seconds",
        "runproof_check_attempts",
        "runproof_sweep_last_timestamp_seconds",
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some("gauge"),
            "{name}:\n{text}"
        );
        assert!(
            samples.iter().any(|s| s.name == name),
            "no {name} sample:\n{text}"
        );
    }
    assert!(types.keys().all(|n| n.starts_with("runproof_")), "{text}");
    let allowed: BTreeSet<&str> = ["check", "kind", "team", "tier"].into();
    for s in &samples {
        for key in s.labels.keys() {
            assert!(allowed.contains(key.as_str()), "label {key} on {s:?}");
        }
        if s.name != "runproof_sweep_last_timestamp_seconds" {
            assert!(
                s.labels.contains_key("check") && s.labels.contains_key("kind"),
                "{s:?}"
            );
        }
    }
    let success: BTreeMap<&str, f64> = samples
        .iter()
        .filter(|s| s.name == "runproof_check_success")
        .map(|s| (s.labels["check"].as_str(), s.value))
        .collect();
    assert_eq!(
        success,
        BTreeMap::from([("web", 1.0), ("down", 0.0), ("port", 1.0)]),
        "blocked `child` has no success sample:\n{text}"
    );
    let web = samples
        .iter()
        .find(|s| s.name == "runproof_check_success" && s.labels["check"] == "web")
        .unwrap();
    assert_eq!(web.labels["team"], "web");
    assert_eq!(web.labels["tier"], "1");
    assert_eq!(web.labels["kind"], "http");
    let port = samples
        .iter()
        .find(|s| s.name == "runproof_check_success" && s.labels["check"] == "port")
        .unwrap();
    assert_eq!(port.labels["kind"], "tcp");
    let attempts: BTreeMap<&str, f64> = samples
        .iter()
        .filter(|s| s.name == "runproof_check_attempts")
        .map(|s| (s.labels["check"].as_str(), s.value))
        .collect();
    assert_eq!(attempts.get("down"), Some(&3.0), "{text}");
    assert_eq!(attempts.get("web"), Some(&1.0), "{text}");
    let stamp = samples
        .iter()
        .find(|s| s.name == "runproof_sweep_last_timestamp_seconds")
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - stamp.value).abs() < 120.0,
        "timestamp {} vs now {now}",
        stamp.value
    );
    assert!(stamp.labels.is_empty());
    for s in samples
        .iter()
        .filter(|s| s.name == "runproof_check_duration_seconds")
    {
        assert!(s.value > 0.0, "{s:?}");
    }

    // Atomic write: nothing but the file itself is left in the folder.
    let left: Vec<String> = std::fs::read_dir(&textfile_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["runproof.prom"], "temp files left behind");
}

/// Checks that `text` is well-formed XML as far as a JUnit file needs: one
/// declaration, balanced and properly nested elements, quoted attributes
/// without raw `<` or `"`, and only known entities. Returns the element names
/// in document order.
fn well_formed_xml(text: &str) -> Vec<String> {
    fn check_entities(text: &str, context: &str) {
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            let after = &rest[i + 1..];
            let end = after
                .find(';')
                .unwrap_or_else(|| panic!("bare & in {context}: {text}"));
            let entity = &after[..end];
            let known = ["amp", "lt", "gt", "quot", "apos"].contains(&entity)
                || entity
                    .strip_prefix('#')
                    .is_some_and(|n| n.parse::<u32>().is_ok())
                || entity
                    .strip_prefix("#x")
                    .is_some_and(|n| u32::from_str_radix(n, 16).is_ok());
            assert!(known, "unknown entity &{entity}; in {context}");
            rest = &after[end + 1..];
        }
    }
    let body = text
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .expect("XML declaration first");
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        let content = &rest[..open];
        assert!(
            !content.contains('>') || !stack.is_empty(),
            "text outside the root: {content:?}"
        );
        if stack.is_empty() {
            assert!(
                content.trim().is_empty(),
                "text outside the root: {content:?}"
            );
        }
        check_entities(content, "text");
        rest = &rest[open + 1..];
        // Find the tag's end, skipping `>` inside quoted attribute values.
        let mut in_quote = false;
        let close = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quote = !in_quote;
                }
                c == '>' && !in_quote
            })
            .map(|(i, _)| i)
            .expect("unterminated tag");
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> without an open element"));
            assert_eq!(open, name.trim(), "mis-nested </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)),
            "element name {name:?}"
        );
        // Attributes: name="value" pairs, values free of `<` and raw quotes.
        let mut attrs = tag[name_end..].trim();
        let mut seen = BTreeSet::new();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .unwrap_or_else(|| panic!("attribute without value in <{tag}>"));
            let key = attrs[..eq].trim();
            assert!(
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)),
                "attribute {key:?}"
            );
            assert!(
                seen.insert(key.to_string()),
                "attribute {key} twice in <{name}>"
            );
            let value_rest = attrs[eq + 1..]
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("unquoted attribute {key} in <{name}>"));
            let end = value_rest.find('"').expect("unterminated attribute");
            let value = &value_rest[..end];
            assert!(!value.contains('<'), "raw < in attribute {key}");
            check_entities(value, "an attribute");
            attrs = value_rest[end + 1..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
        }
        elements.push(name.to_string());
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    assert!(rest.trim().is_empty(), "trailing text {rest:?}");
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
    elements
}

#[test]
fn junit_file_is_well_formed_with_one_testcase_per_check() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let body = [
        http("ok", &format!("{base}/ok"), ""),
        // Markup and quotes in a reason must be escaped.
        http(
            "markup",
            &format!("{base}/ok"),
            "expect = { body_contains = \"<b a=\\\"1\\\">&'x'</b>\" }\nretries = 0",
        ),
        http("flap", &format!("{base}/flaky/junit-flap/1"), ""),
        http("child", &format!("{base}/ok"), "depends_on = [\"markup\"]"),
    ]
    .concat();
    let file = ws.write("junit.toml", &check_file(&body));
    let junit = ws.path().join("out").join("junit.xml");
    std::fs::create_dir_all(junit.parent().unwrap()).unwrap();
    let output = sweep(
        &ws,
        &[&file],
        &["--json", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let checks = ids(&json_doc(&output)).len();
    let text = std::fs::read_to_string(&junit).expect("junit file");
    let elements = well_formed_xml(&text);
    assert_eq!(
        elements.iter().filter(|e| *e == "testcase").count(),
        checks,
        "{text}"
    );
    assert_eq!(
        elements.iter().filter(|e| *e == "failure").count(),
        1,
        "{text}"
    );
    assert_eq!(
        elements.iter().filter(|e| *e == "skipped").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("&lt;b a=") && text.contains("&gt;&amp;&apos;x&apos;&lt;/b&gt;"),
        "the reason, escaped:\n{text}"
    );
    assert_eq!(
        elements.iter().filter(|e| *e == "flakyFailure").count(),
        1,
        "{text}"
    );
    assert!(text.contains(r#"tests="4""#), "{text}");
}

#[test]
fn junit_has_one_testcase_per_check_with_samples() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let file = two_checks(&ws, "samples.toml", &base, "ok");
    let junit = ws.path().join("junit.xml");
    let output = sweep(
        &ws,
        &[&file],
        &["--samples", "3", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let text = std::fs::read_to_string(&junit).unwrap();
    let elements = well_formed_xml(&text);
    assert_eq!(
        elements.iter().filter(|e| *e == "testcase").count(),
        2,
        "one testcase per check, not per sample:\n{text}"
    );
}

#[test]
fn markdown_file_is_appended_each_sweep() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let body = [
        http("a", &format!("{base}/ok"), ""),
        // The reason quotes `a|b`: the pipe must not split the table cell.
        http(
            "b",
            &format!("{base}/ok"),
            "expect = { body_contains = \"a|b\" }\nretries = 0",
        ),
    ]
    .concat();
    let file = ws.write("md.toml", &check_file(&body));
    let summary = ws.path().join("summary.md");
    std::fs::write(&summary, "# CI job\n\n").unwrap();
    for _ in 0..2 {
        let output = sweep(&ws, &[&file], &["--markdown", summary.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    }
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("# CI job\n"),
        "existing content kept:\n{text}"
    );
    assert_eq!(text.matches("### runproof sweep").count(), 2, "{text}");
    assert_eq!(text.matches("FAILED (1/2 healthy)").count(), 2, "{text}");
    // Failures first, and the `|` in a reason does not break the table.
    let (b, a) = (
        text.find("| b |").expect("row b"),
        text.find("| a |").expect("row a"),
    );
    assert!(b < a, "failures first:\n{text}");
    assert!(text.contains("a\\|b"), "escaped pipe:\n{text}");
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells = line.matches('|').count() - line.matches("\\|").count();
        assert_eq!(cells, 8, "7 columns in {line:?}");
    }
}

#[test]
fn shards_are_disjoint_cover_everything_and_keep_dependencies_together() {
    let _cpu = shared();
    use crate::support::api::sweep::Shard;
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    // Two roots in different shards, and a check depending on both: it and
    // both roots must still share one shard.
    let shard_of = |id: &str| {
        (1..=3)
            .find(|&k| Shard { index: k, count: 3 }.contains(id))
            .unwrap()
    };
    let candidates: Vec<String> = (0..50).map(|i| format!("root-{i:02}")).collect();
    let root_a = candidates[0].clone();
    let root_b = candidates
        .iter()
        .find(|id| shard_of(id) != shard_of(&root_a))
        .unwrap()
        .clone();
    let mut body = String::new();
    body += &http(&root_a, &format!("{base}/ok"), "");
    body += &http(&root_b, &format!("{base}/ok"), "");
    body += &http(
        "both",
        &format!("{base}/ok"),
        &format!("depends_on = [\"{root_a}\", \"{root_b}\"]"),
    );
    body += &http("gateway", &format!("{base}/ok"), "");
    body += &http("api", &format!("{base}/ok"), "depends_on = [\"gateway\"]");
    body += &http("api-deep", &format!("{base}/ok"), "depends_on = [\"api\"]");
    let mut all: BTreeSet<String> = [
        root_a.clone(),
        root_b.clone(),
        "both".into(),
        "gateway".into(),
        "api".into(),
        "api-deep".into(),
    ]
    .into();
    for i in 0..12 {
        let id = format!("svc-{i}");
        body += &http(&id, &format!("{base}/ok"), "");
        all.insert(id);
    }
    let deps: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("both", vec![root_a.as_str(), root_b.as_str()]),
        ("api", vec!["gateway"]),
        ("api-deep", vec!["api"]),
    ]);
    let file = ws.write("many.toml", &check_file(&body));

    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut non_empty = 0;
    for k in 1..=3 {
        let output = sweep(&ws, &[&file], &["--shard", &format!("{k}/3"), "--json"]);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        let shard_ids = ids(&json_doc(&output));
        non_empty += usize::from(!shard_ids.is_empty());
        for id in &shard_ids {
            assert!(
                seen.insert(id.clone(), k).is_none(),
                "{id} in shards {} and {k}",
                seen[id]
            );
        }
        for (check, its_deps) in &deps {
            if shard_ids.contains(*check) {
                for dep in its_deps {
                    assert!(
                        shard_ids.contains(*dep),
                        "{check} in shard {k}/3 without its dependency {dep}"
                    );
                }
            }
        }
        // Stable: the same shard twice is the same set.
        let again = ids(&json_doc(&sweep(
            &ws,
            &[&file],
            &["--shard", &format!("{k}/3"), "--json"],
        )));
        assert_eq!(again, shard_ids);
    }
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        all,
        "the shards cover every check"
    );
    assert!(
        non_empty >= 2,
        "18 checks should not all land in one shard: {seen:?}"
    );

    let bad = sweep(&ws, &[&file], &["--shard", "4/3"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

#[test]
fn only_selects_by_glob_with_dependencies() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let body = [
        http("gateway", &format!("{base}/ok"), ""),
        http(
            "api-users",
            &format!("{base}/ok"),
            "depends_on = [\"gateway\"]",
        ),
        http("api-orders", &format!("{base}/ok"), ""),
        http("web", &format!("{base}/ok"), ""),
        http("db-primary", &format!("{base}/ok"), ""),
    ]
    .concat();
    let file = ws.write("only.toml", &check_file(&body));
    let output = sweep(&ws, &[&file], &["--only", "api-*", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let got = ids(&json_doc(&output));
    let want: BTreeSet<String> = ["api-orders", "api-users", "gateway"]
        .map(String::from)
        .into();
    assert_eq!(got, want);

    let output = sweep(
        &ws,
        &[&file],
        &["--only", "web", "--only", "*-primary", "--json"],
    );
    assert_eq!(
        ids(&json_doc(&output)),
        ["db-primary", "web"].map(String::from).into()
    );

    let none = sweep(&ws, &[&file], &["--only", "nothing-*"]);
    assert_eq!(none.status.code(), Some(2), "{}", describe(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("matches no check"),
        "{}",
        describe(&none)
    );
}

/// What the checks of `baseline_flags_a_slower_check_as_regressed` take,
/// then what the slowed one takes: ten times as long.
const BASE_MS: u64 = 300;
const SLOWED_MS: u64 = 3_000;

#[test]
fn baseline_flags_a_slower_check_as_regressed() {
    let _cpu = exclusive();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    // Latencies are set by the server's sleeps, far apart, so that no load
    // on the machine crosses the 3x factor either way: a check as fast as
    // its baseline (300 ms) would need 600 ms of delay to look regressed
    // (a 610 ms stall of a loaded VM did it to a 150 ms baseline), and the
    // slowed one (3,000 ms, a sleep only ever gets longer) would go
    // unflagged only if its baseline had taken 700 ms more than its sleep.
    // The slowed run takes one sample: its sleep is long.
    let body = [
        http(
            "slowing",
            &format!("{base}/delay"),
            "retries = 0\ntimeout = \"10s\"",
        ),
        http("steady", &format!("{base}/slow/{BASE_MS}"), "retries = 0"),
    ]
    .concat();
    let file = ws.write("baseline.toml", &check_file(&body));
    let baseline = ws.path().join("baseline.json");
    server.set_delay_ms(BASE_MS);
    let output = sweep(
        &ws,
        &[&file],
        &[
            "--samples",
            "3",
            "--save-baseline",
            baseline.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).expect("baseline saved")).unwrap();
    let saved_p95 = saved["checks"]["slowing"]["p95_ms"]
        .as_f64()
        .expect("slowing in the baseline");
    assert!(saved_p95 >= BASE_MS as f64, "{saved}");

    // Same server, same speed: no regression.
    let factor = ["--regression-factor", "3"];
    let output = sweep(
        &ws,
        &[&file],
        &[
            &[
                "--samples",
                "3",
                "--baseline",
                baseline.to_str().unwrap(),
                "--json",
            ][..],
            &factor,
        ]
        .concat(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    server.set_delay_ms(SLOWED_MS);
    let junit = ws.path().join("regressed-junit.xml");
    let output = sweep(
        &ws,
        &[&file],
        &[
            &[
                "--samples",
                "1",
                "--baseline",
                baseline.to_str().unwrap(),
                "--json",
                "--junit",
                junit.to_str().unwrap(),
            ][..],
            &factor,
        ]
        .concat(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    // JUnit agrees with the exit code: the regressed check is a failure.
    let junit = std::fs::read_to_string(&junit).expect("junit file");
    assert!(junit.contains(r#"failures="1""#), "{junit}");
    let slowing = junit
        .split("<testcase ")
        .find(|case| case.contains(r#"name="slowing""#))
        .expect("slowing testcase");
    assert!(slowing.contains(r#"<failure type="regressed""#), "{junit}");
    let steady = junit
        .split("<testcase ")
        .find(|case| case.contains(r#"name="steady""#))
        .expect("steady testcase");
    assert!(!steady.contains("<failure"), "{junit}");
    let doc = json_doc(&output);
    let checks = checks_by_id(&doc);
    assert_eq!(
        checks["slowing"]["verdict"],
        "regressed",
        "{}",
        describe(&output)
    );
    assert_eq!(
        checks["slowing"]["baseline_p95_ms"].as_f64(),
        Some(saved_p95)
    );
    assert!(checks["slowing"]["reason"]
        .as_str()
        .unwrap()
        .contains("baseline"));
    assert_eq!(
        checks["steady"]["verdict"], "pass",
        "a check as fast as before is not regressed"
    );
    assert_verifies(Path::new(doc["bundle"].as_str().unwrap()));

    let missing = sweep(
        &ws,
        &[&file],
        &["--baseline", ws.path().join("nope.json").to_str().unwrap()],
    );
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
}

/// A running `runproof sweep --watch`, with its stdout lines as they come.
pub(crate) struct Watch {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    pub(crate) fn start(ws: &Workspace, file: &Path, extra: &[&str]) -> Watch {
        Watch::start_with_env(ws, file, extra, &[])
    }

    pub(crate) fn start_with_env(
        ws: &Workspace,
        file: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Watch {
        let mut child = runproof()
            .envs(env.iter().copied())
            .arg("sweep")
            .arg(file)
            .arg("--artifacts")
            .arg(ws.artifacts())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sweep --watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for `n` round lines (or panics after `patience`).
    pub(crate) fn wait_rounds(&mut self, n: usize, patience: Duration) {
        let deadline = Instant::now() + patience;
        while self.seen.iter().filter(|l| l.starts_with("round ")).count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no {n} rounds within {patience:?}: {:?}", self.seen);
                }
            }
        }
    }

    /// Round lines seen so far.
    pub(crate) fn rounds_seen(&self) -> usize {
        self.seen.iter().filter(|l| l.starts_with("round ")).count()
    }

    pub(crate) fn interrupt(&self) {
        // SAFETY: kill(2) on our own child's pid, with a valid signal.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "kill -INT");
    }

    /// Waits for exit (at most `patience`), then collects the rest of stdout.
    pub(crate) fn finish(mut self, patience: Duration) -> (Option<i32>, Vec<String>, String) {
        let deadline = Instant::now() + patience;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "sweep --watch did not stop within {patience:?} after SIGINT: {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr);
        (status.code(), self.seen, stderr)
    }
}

/// Every bundle folder under `<artifacts>/<name>/`.
pub(crate) fn bundles(ws: &Workspace, name: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(ws.artifacts().join(name))
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn watch_stops_on_sigint_with_every_round_sealed() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let file = two_checks(&ws, "watch.toml", &base, "json");
    let prom = ws.path().join("watch.prom");
    let mut watch = Watch::start(
        &ws,
        &file,
        &["--watch", "1s", "--prometheus", prom.to_str().unwrap()],
    );
    watch.wait_rounds(2, Duration::from_secs(30));
    let rounds_before = watch.rounds_seen();
    watch.interrupt();
    let (code, lines, stderr) = watch.finish(Duration::from_secs(30));
    assert_eq!(code, Some(130), "stdout {lines:?}\nstderr {stderr}");
    let printed: Vec<PathBuf> = lines
        .iter()
        .filter(|l| l.starts_with("round "))
        .map(|l| {
            PathBuf::from(
                l.rsplit_once("bundle ")
                    .expect("bundle on the round line")
                    .1
                    .trim(),
            )
        })
        .collect();
    assert!(printed.len() >= 2, "{lines:?}");
    // It stops instead of starting more rounds: at most the round under way
    // when the signal came is added.
    assert!(
        printed.len() <= rounds_before + 1,
        "{rounds_before} rounds before SIGINT: {lines:?}"
    );
    let on_disk = bundles(&ws, "sweep");
    assert_eq!(
        on_disk.len(),
        printed.len(),
        "one bundle per round: {on_disk:?} vs {lines:?}"
    );
    for bundle in &on_disk {
        assert!(
            bundle.join("seal.json").is_file(),
            "{} not sealed",
            bundle.display()
        );
        assert_verifies(bundle);
    }
    for bundle in &printed {
        assert!(
            on_disk.contains(bundle),
            "{} printed but not on disk",
            bundle.display()
        );
    }
    assert!(prom.is_file(), "the textfile is written each round");
}

#[test]
fn sigint_during_a_hanging_check_seals_the_round_as_interrupted() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let body = [
        http("quick", &format!("{base}/ok"), ""),
        http(
            "stuck",
            &format!("{base}/hang/stuck"),
            "timeout = \"30s\"\nretries = 0",
        ),
        http(
            "after-stuck",
            &format!("{base}/ok"),
            "depends_on = [\"stuck\"]",
        ),
    ]
    .concat();
    let file = ws.write("hang.toml", &check_file(&body));
    let watch = Watch::start(&ws, &file, &["--watch", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.hits("stuck") == 0 {
        assert!(
            Instant::now() < deadline,
            "the hanging check never reached the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    watch.interrupt();
    // The hang is cut short by SIGINT, not ended by its 30 s timeout: the
    // verdict below is `interrupted`.
    let (code, lines, stderr) = watch.finish(Duration::from_secs(60));
    assert_eq!(code, Some(130), "stdout {lines:?}\nstderr {stderr}");
    let on_disk = bundles(&ws, "sweep");
    assert_eq!(on_disk.len(), 1, "{on_disk:?}");
    let bundle = &on_disk[0];
    assert!(bundle.join("seal.json").is_file());
    assert_verifies(bundle);
    let events = events(bundle);
    let end = events.last().unwrap();
    assert_eq!(end["type"], "run.end", "{end}");
    assert_eq!(end["verdict"], "interrupted", "{end}");
    assert_eq!(verdict(&events, "stuck"), "interrupted");
    assert_eq!(verdict(&events, "quick"), "pass");
    assert_ne!(verdict(&events, "after-stuck"), "pass");
    assert!(
        lines.iter().any(|l| l.starts_with("round 1 ")),
        "the interrupted round is reported: {lines:?}"
    );
}

#[test]
fn invalid_check_file_exits_2_with_file_line_col() {
    let _cpu = shared();
    let ws = Workspace::new();
    let good = ws.write(
        "good.toml",
        &check_file(&http("fine", "http://127.0.0.1:9/ok", "")),
    );
    let bad = ws.write(
        "bad.toml",
        &check_file("[[check]]\nid = \"x\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:9/\"\ntimeout = \"10 seconds\"\n"),
    );
    let output = sweep(&ws, &[&good, &bad], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // FAST is 6 lines (leading newline included), then a blank: `timeout` is on line 12, value at column 11.
    let line = check_file("[[check]]\nid = \"x\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:9/\"\ntimeout = \"10 seconds\"\n")
        .lines()
        .position(|l| l.starts_with("timeout = \"10"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("bad.toml:{line}:11")), "{stderr}");
    assert!(stderr.contains("invalid duration"), "{stderr}");
    assert!(
        !ws.artifacts().exists(),
        "nothing runs, no bundle is written"
    );

    let runbook_style = ws.write("runbook.toml", "[runbook]\nname = \"x\"\n\n[[step]]\nid = \"a\"\ncheck = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n");
    let output = sweep(&ws, &[&runbook_style], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("runbook.toml:1:"),
        "{}",
        describe(&output)
    );

    let output = sweep(&ws, &[&ws.path().join("missing.toml")], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

#[test]
fn duplicate_ids_across_files_exit_2() {
    let _cpu = shared();
    let ws = Workspace::new();
    let dir = checks_dir(
        &ws,
        &[
            (
                "a.toml",
                check_file(&http("api", "http://127.0.0.1:9/a", "")),
            ),
            (
                "b.toml",
                check_file(&http("api", "http://127.0.0.1:9/b", "")),
            ),
        ],
    );
    let output = sweep(&ws, &[&dir], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`api`") && stderr.contains("a.toml") && stderr.contains("b.toml"),
        "{stderr}"
    );
    assert!(!ws.artifacts().exists());
}

#[test]
fn the_same_file_named_twice_is_swept_once() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let dir = checks_dir(
        &ws,
        &[(
            "a.toml",
            check_file(&http("api", &format!("{}/ok", server.url()), "")),
        )],
    );
    let file = dir.join("a.toml");
    let output = sweep(&ws, &[&dir, &file], &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(ids(&json_doc(&output)).len(), 1);
}

/// A token written into a check file as it is (not as a `{{secret:…}}`)
/// is sent, but the check file's copy in the bundle, the journal and every
/// report hold it redacted: the header's TOML form (`Authorization =
/// "Bearer …"`) is matched as its `Authorization: Bearer …` form is.
#[test]
fn a_literal_token_in_a_check_files_headers_is_redacted_in_its_copy() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let token = "lit3ral-canary-7c6b5a49";
    let api_key = "k3y-canary-0f1e2d3c";
    let body = http(
        "authed",
        &format!("{base}/auth"),
        &format!(
            "headers = {{ Authorization = \"Bearer {token}\", \"X-Api-Key\" = \"{api_key}\" }}"
        ),
    );
    let file = ws.write("literal.toml", &check_file(&body));
    let output = sweep(&ws, &[&file], &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        server
            .seen_auth()
            .iter()
            .any(|a| a == &format!("Bearer {token}")),
        "the token was really sent"
    );
    assert_input_copy_redacted(
        &ws,
        &[token, api_key],
        "Authorization = \"Bearer [REDACTED]\"",
    );
    crate::support::canary::assert_absent(&output.stdout, token, "stdout");
    for bundle in bundles(&ws, "sweep") {
        assert_verifies(&bundle);
    }
}

/// Credentials written into a check file as TOML values under keys named
/// like credentials (a command's `env`, a Fly check's `token`) are used,
/// but held redacted in the file's copy, and `verify --strict` finds no
/// credential-shaped string left.
#[test]
fn literal_credentials_under_credential_keys_are_redacted_in_the_copy() {
    let _cpu = shared();
    let ws = Workspace::new();
    let password = "l1teral-db-canary-5e4d";
    let token = "l1teral-gh-canary-3c2b";
    // The command proves it got both values without naming them.
    let body = format!(
        "[[check]]\nid = \"env\"\ncheck = \"command\"\n\
         argv = [\"sh\", \"-c\", \"test ${{#DB_PASSWORD}} -eq {} && test ${{#GITHUB_TOKEN}} -eq {}\"]\n\
         env = {{ DB_PASSWORD = \"{password}\", GITHUB_TOKEN = '{token}', LANG = \"C.UTF-8\" }}\n",
        password.len(),
        token.len()
    );
    let file = ws.write("env.toml", &check_file(&body));
    let output = sweep(&ws, &[&file], &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_input_copy_redacted(
        &ws,
        &[password, token],
        "DB_PASSWORD = \"[REDACTED]\", GITHUB_TOKEN = '[REDACTED]', LANG = \"C.UTF-8\"",
    );
    for canary in [password, token] {
        crate::support::canary::assert_absent(&output.stdout, canary, "stdout");
        crate::support::canary::assert_absent(&output.stderr, canary, "stderr");
    }
    assert_strict_verify_finds_nothing(&ws);
}

#[test]
fn a_literal_slack_webhook_url_is_redacted_in_the_copy() {
    let _cpu = shared();
    let ws = Workspace::new();
    // Whoever has a Slack incoming webhook's URL can post to its channel.
    let path = "T0CANARY1/B0CANARY2/zzCanarySlackPath9";
    // The check passes: nothing is delivered (no traffic off this machine).
    let body = format!(
        "[notify.slack]\nurl = \"https://hooks.slack.com/services/{path}\"\n\n\
         [[check]]\nid = \"ok\"\ncheck = \"command\"\nargv = [\"true\"]\n"
    );
    let file = ws.write("notify.toml", &check_file(&body));
    let output = sweep(&ws, &[&file], &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let canaries = ["zzCanarySlackPath9", "T0CANARY1"];
    assert_input_copy_redacted(
        &ws,
        &canaries,
        "url = \"https://hooks.slack.com/services/[REDACTED]\"",
    );
    // The file itself still holds it: the sweep and `lint` say so, without
    // the value.
    let lint = runproof().arg("lint").arg(&file).output().unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", describe(&lint));
    let warning = "[notify.slack] url is a credential written as it is";
    for (said, what) in [(&output, "sweep"), (&lint, "lint")] {
        let stderr = String::from_utf8_lossy(&said.stderr);
        assert!(stderr.contains(warning), "{what}: {stderr}");
        assert!(
            stderr.contains("{{secret:SLACK_WEBHOOK_URL}}"),
            "{what}: {stderr}"
        );
        for canary in canaries {
            crate::support::canary::assert_absent(&said.stdout, canary, what);
            crate::support::canary::assert_absent(&said.stderr, canary, what);
        }
    }
    assert_strict_verify_finds_nothing(&ws);
}

#[test]
fn secret_canary_never_leaks_into_any_output() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let canary = "sk-canary-9d8e7f6a5b4c";
    let body = [
        "[secrets]\nrequired = [\"SWEEP_TOKEN\"]\n".to_string(),
        http("authed", &format!("{base}/auth"), "headers = { Authorization = \"Bearer {{secret:SWEEP_TOKEN}}\" }"),
        // A failing check whose URL carries the secret: reasons and attempt
        // records mention the URL.
        http("leaky-url", &format!("{base}/status/503?token={{{{secret:SWEEP_TOKEN}}}}"), "retries = 1"),
        http("echo", &format!("{base}/auth"), "headers = { Authorization = \"Bearer {{secret:SWEEP_TOKEN}}\" }\nexpect = { body_contains = \"{{secret:SWEEP_TOKEN}}\" }\nretries = 0"),
    ]
    .concat();
    let file = ws.write("secret.toml", &check_file(&body));
    let out_dir = ws.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let (prom, junit, md) = (
        out_dir.join("m.prom"),
        out_dir.join("j.xml"),
        out_dir.join("s.md"),
    );
    let mut outputs = Vec::new();
    for extra in [&["--json"][..], &[][..]] {
        let mut args = vec![
            "--prometheus",
            prom.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let output = sweep_with_env(&ws, &[&file], &args, &[("SWEEP_TOKEN", canary)]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        outputs.push(output);
    }
    assert!(
        server
            .seen_auth()
            .iter()
            .any(|a| a == &format!("Bearer {canary}")),
        "the secret was really sent"
    );
    for output in &outputs {
        crate::support::canary::assert_absent(&output.stdout, canary, "stdout");
        crate::support::canary::assert_absent(&output.stderr, canary, "stderr");
    }
    let mut scanned = 0;
    for path in files_under(ws.path()) {
        if path.starts_with(ws.path().join("secret.toml")) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        crate::support::canary::assert_absent(&bytes, canary, &path.display().to_string());
        scanned += 1;
    }
    assert!(
        scanned >= 10,
        "bundles and outputs were written ({scanned} files)"
    );
    for bundle in bundles(&ws, "sweep") {
        let header: Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("runproof.json")).unwrap())
                .unwrap();
        assert_eq!(
            header["secrets"],
            serde_json::json!(["SWEEP_TOKEN"]),
            "names, once"
        );
        // verify scans every file for the value (and its encodings).
        let out = runproof()
            .arg("verify")
            .arg(&bundle)
            .args(["--scan-secrets-from-env", "SWEEP_TOKEN"])
            .env("SWEEP_TOKEN", canary)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    }

    // Without the secret, nothing runs.
    let output = sweep(&ws, &[&file], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SWEEP_TOKEN"));
}

#[test]
fn example_checks_folder_loads_without_running() {
    let _cpu = shared();
    use crate::support::api::sweep::{input_files, load_input, plan};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("checks");
    let files = input_files(std::slice::from_ref(&dir)).expect("checks/ has .toml files");
    assert!(!files.is_empty());
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let env = |_: &str| Some("example-secret".to_string());
        if let Err(e) = crate::support::api::runbook::load_check_file_with_env(file, &source, &env)
        {
            panic!("{} does not load:\n{e}", file.display());
        }
    }
    let mut input = load_input(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let env = |_: &str| Some("example-secret".to_string());
    let (plan, _) = plan(&mut input, &[], None, &env).unwrap_or_else(|e| panic!("{e}"));
    let checks: Vec<_> = plan
        .held
        .as_deref()
        .expect("a small sweep holds its checks")
        .iter()
        .flat_map(|chunk| &chunk.steps)
        .collect();
    let kinds: BTreeSet<&str> = checks.iter().map(|step| step.check.kind()).collect();
    assert!(kinds.contains("http") && kinds.contains("tcp"), "{kinds:?}");
    assert!(
        checks.iter().any(|step| !step.depends_on.is_empty()),
        "a dependency chain"
    );
    assert!(
        checks
            .iter()
            .any(|step| step.tags.iter().any(|t| t.contains('='))),
        "key=value tags"
    );
}

/// `sweep --watch 1s | head -1`: once the reader is gone the watch ends by
/// itself, promptly, with the last round's status and every bundle sealed.
#[test]
fn watch_ends_when_its_reader_closes_stdout() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let file = ws.write(
        "watch.toml",
        &check_file(&http("a", &format!("{}/ok", server.url()), "")),
    );
    let mut child = runproof()
        .arg("sweep")
        .arg(&file)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .args(["--watch", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sweep --watch");
    // Read one line, as `head -1` does, then close the pipe.
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("round 1 "), "{first:?}");
    drop(reader);
    let closed = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if closed.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sweep --watch still running 10 s after its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr);
    assert_eq!(status.code(), Some(0), "the round passed; stderr {stderr}");
    assert!(
        closed.elapsed() < Duration::from_secs(3),
        "ended {:?} after the pipe closed",
        closed.elapsed()
    );
    let on_disk = bundles(&ws, "sweep");
    assert!(!on_disk.is_empty() && on_disk.len() <= 2, "{on_disk:?}");
    for bundle in &on_disk {
        assert!(
            bundle.join("seal.json").is_file(),
            "{} not sealed",
            bundle.display()
        );
        assert_verifies(bundle);
    }
}

/// A watch interval under one second would loop as fast as it can, writing
/// a bundle per round: a usage error.
#[test]
fn watch_interval_under_one_second_is_rejected() {
    let _cpu = shared();
    let ws = Workspace::new();
    let file = ws.write(
        "watch.toml",
        &check_file(&http("a", "http://127.0.0.1:9/ok", "")),
    );
    for interval in ["0s", "500ms"] {
        let mut child = runproof()
            .arg("sweep")
            .arg(&file)
            .arg("--artifacts")
            .arg(ws.artifacts())
            .args(["--watch", interval])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sweep --watch");
        // Without the check this would loop forever: stop it after 10 s.
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{interval}: {}",
            describe(&output)
        );
        assert!(
            stderr.contains("--watch") && stderr.contains("at least 1s"),
            "{interval}: {stderr}"
        );
        assert!(bundles(&ws, "sweep").is_empty(), "no round ran");
    }
}

#[test]
fn watch_keeps_only_the_newest_rounds() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let file = ws.write(
        "keep.toml",
        &check_file(&http("a", &format!("{}/ok", server.url()), "")),
    );
    let mut child = runproof()
        .arg("sweep")
        .arg(&file)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .args(["--name", "kept", "--watch", "1s", "--keep", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sweep --watch --keep");
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    for round in 1..=4 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with(&format!("round {round} ")), "{line:?}");
    }
    drop(reader);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rounds: Vec<_> = std::fs::read_dir(ws.artifacts().join("kept"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    for round in rounds {
        assert!(verify(&round.path(), &[]).status.success());
    }
}

#[test]
fn every_sample_is_taken_after_a_failed_one_and_the_failure_rate_reported() {
    let server = TestServer::start();
    let ws = Workspace::new();
    // Fails twice, then answers: with no retries, samples 1 and 2 fail.
    let file = ws.write(
        "samples.toml",
        &check_file(&http(
            "shaky",
            &format!("{}/flaky/shaky/2", server.url()),
            "retries = 0",
        )),
    );
    let output = sweep(&ws, &[&file], &["--samples", "5", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let doc = json_doc(&output);
    let checks = checks_by_id(&doc);
    let shaky = &checks["shaky"];
    assert_eq!(shaky["verdict"], "fail", "{shaky}");
    assert_eq!(shaky["samples"]["taken"], 5, "{shaky}");
    assert_eq!(shaky["samples"]["failed"], 2, "{shaky}");
    assert_eq!(shaky["samples"]["failure_rate"], 0.4, "{shaky}");
    assert!(
        shaky["reason"]
            .as_str()
            .unwrap()
            .starts_with("2 of 5 samples failed; first: "),
        "{shaky}"
    );
    // The three passing samples gave latency figures.
    assert_eq!(shaky["latency"]["samples"], 3, "{shaky}");
    let bundle = Path::new(doc["bundle"].as_str().unwrap());
    assert!(verify(bundle, &[]).status.success());
}

/// Issue 12: a sweep's reports are streamed to their files as checks finish
/// (the sweep keeps only a tally). Every streamed file must still list every
/// check exactly once, and none may carry the secret — not the spools either.
/// The disk fills while the journal is being written (a sweep hands its
/// batches of records to the journal's own thread, which hashes, writes and
/// syncs them): the sweep exits 3 naming the cause, leaves no seal, and its
/// bundle verifies as incomplete, its chain valid through its last whole
/// record, never as tampered.
#[test]
fn a_disk_filled_during_the_sweep_exits_3_and_leaves_an_incomplete_untampered_bundle() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let artifacts = ws.artifacts();
    let _tmpfs = SmallTmpfs::mount(&artifacts, "4m");
    let base = server.url();
    // Some 7 MB of journal: more than the disk holds.
    let body: String = (0..15_000)
        .map(|i| http(&format!("c{i:05}"), &format!("{base}/ok"), ""))
        .collect();
    let file = ws.write("full.toml", &check_file(&body));
    let output = sweep(&ws, &[&file], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("No space left on device"),
        "the cause is named: {stderr}"
    );
    let bundles: Vec<PathBuf> = std::fs::read_dir(artifacts.join("sweep"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let bundle = &bundles[0];
    assert!(!bundle.join("seal.json").exists(), "no seal on a full disk");
    let verified = verify(bundle, &["--json"]);
    assert_eq!(verified.status.code(), Some(4), "{}", describe(&verified));
    let doc: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(doc["verdict"]["verdict"], "incomplete", "{doc}");
    let journal = std::fs::read(bundle.join("events.jsonl")).unwrap();
    let whole_lines = journal.iter().filter(|b| **b == b'\n').count() as u64;
    assert!(
        whole_lines > 100,
        "records were written before the disk filled"
    );
    assert!(
        whole_lines < 15_000,
        "the disk filled before the sweep ended"
    );
    assert_eq!(
        doc["verdict"]["valid_through_seq"].as_u64(),
        Some(whole_lines - 1),
        "valid through the last whole record: {doc}"
    );
    for check in doc["checks"].as_array().unwrap() {
        if ["journal.chain", "journal.seq", "header"].contains(&check["name"].as_str().unwrap()) {
            assert_eq!(check["status"], "pass", "incomplete, not tampered: {check}");
        }
    }
}

#[test]
fn streamed_reports_list_every_check_once_and_leak_no_canary() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let canary = "sk-canary-streamed-4e5d6c7b";
    let mut body = String::from("[secrets]\nrequired = [\"SWEEP_TOKEN\"]\n");
    let (passing, failing, blocked) = (180, 30, 10);
    let mut all = BTreeSet::new();
    for i in 0..passing {
        let id = format!("ok-{i:03}");
        body.push_str(&http(
            &id,
            &format!("{base}/ok"),
            "headers = { Authorization = \"Bearer {{secret:SWEEP_TOKEN}}\" }",
        ));
        all.insert(id);
    }
    for i in 0..failing {
        // The secret is in the URL, so in every failure's reason.
        let id = format!("down-{i:03}");
        body.push_str(&http(
            &id,
            &format!("{base}/status/503?token={{{{secret:SWEEP_TOKEN}}}}"),
            "retries = 0",
        ));
        all.insert(id);
    }
    for i in 0..blocked {
        let id = format!("child-{i:03}");
        body.push_str(&http(
            &id,
            &format!("{base}/ok"),
            "depends_on = [\"down-000\"]",
        ));
        all.insert(id);
    }
    let file = ws.write("many.toml", &check_file(&body));
    let out_dir = ws.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let path = |name: &str| out_dir.join(name);
    let output = sweep_with_env(
        &ws,
        &[&file],
        &[
            "--json",
            "--junit",
            path("j.xml").to_str().unwrap(),
            "--markdown",
            path("s.md").to_str().unwrap(),
            "--prometheus",
            path("m.prom").to_str().unwrap(),
            "--save-baseline",
            path("b.json").to_str().unwrap(),
        ],
        &[("SWEEP_TOKEN", canary)],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let total = all.len();

    let doc = json_doc(&output);
    let listed: Vec<&str> = doc["sweep"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), total, "--json lists each check once");
    assert_eq!(
        listed
            .iter()
            .copied()
            .map(String::from)
            .collect::<BTreeSet<_>>(),
        all
    );
    assert_eq!(doc["sweep"]["counts"]["blocked"], blocked);
    assert!(
        doc["sweep"]["latency"]["p95_ms"].as_f64().is_some(),
        "the sketch's percentiles"
    );

    let bundle = bundles(&ws, "sweep").pop().expect("a bundle");
    for junit in [bundle.join("junit.xml"), path("j.xml")] {
        let text = std::fs::read_to_string(&junit).unwrap();
        let names: Vec<String> = text
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix("<testcase classname=\"sweep\" name=\"")
            })
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect();
        assert_eq!(
            names.len(),
            total,
            "{}: one testcase per check",
            junit.display()
        );
        assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), all);
        assert!(
            text.contains(&format!(r#"<testsuites name="runproof" tests="{total}" failures="{failing}" errors="0" skipped="{blocked}""#)),
            "{text}"
        );
    }
    for markdown in [bundle.join("summary.md"), path("s.md")] {
        let text = std::fs::read_to_string(&markdown).unwrap();
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| Check "))
            .map(|l| l[2..].split(" | ").next().unwrap())
            .collect();
        assert_eq!(
            rows.len(),
            total,
            "{}: one row per check\n{text}",
            markdown.display()
        );
        assert_eq!(
            rows.iter()
                .copied()
                .map(String::from)
                .collect::<BTreeSet<_>>(),
            all
        );
        // People read failures first.
        assert!(rows[0].starts_with("down-"), "{text}");
        assert!(
            text.contains(&format!("FAILED ({passing}/{total} healthy)")),
            "{text}"
        );
    }
    let prom = std::fs::read_to_string(path("m.prom")).unwrap();
    let (_, samples) = parse_prometheus(&prom);
    let blocked_samples: BTreeSet<String> = samples
        .iter()
        .filter(|s| s.name == "runproof_check_blocked")
        .map(|s| s.labels["check"].clone())
        .collect();
    assert_eq!(blocked_samples, all, "one blocked sample per check");
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(path("b.json")).unwrap()).unwrap();
    assert_eq!(
        baseline["checks"].as_object().unwrap().len(),
        passing,
        "every passing check has a baseline"
    );

    // No secret anywhere, and no spool or temp file left behind.
    crate::support::canary::assert_absent(&output.stdout, canary, "stdout");
    crate::support::canary::assert_absent(&output.stderr, canary, "stderr");
    for file in files_under(ws.path()) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".tmp-"),
            "left behind: {}",
            file.display()
        );
        let bytes = std::fs::read(&file).unwrap();
        crate::support::canary::assert_absent(&bytes, canary, &file.display().to_string());
    }
    let out = runproof().arg("verify").arg(&bundle).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// Streams every check (`RUNPROOF_SWEEP_HOLD=0`): each file is read again as
/// the sweep reaches it instead of being held.
const STREAMED: [(&str, &str); 1] = [("RUNPROOF_SWEEP_HOLD", "0")];

/// id → (verdict, attempts) of a `--json` document.
fn outcomes(doc: &Value) -> BTreeMap<String, (String, u64)> {
    checks_by_id(doc)
        .into_iter()
        .map(|(id, c)| {
            let verdict = c["verdict"].as_str().unwrap().to_string();
            (id, (verdict, c["attempts"].as_u64().unwrap()))
        })
        .collect()
}

/// A streamed sweep reads the plain checks of a file without toml's parser
/// and the others with it (`runbook/load/plain_check.rs`): within one file,
/// each reaches the server with the values its TOML says, as when held.
#[test]
fn plain_and_other_checks_of_one_streamed_file_send_what_their_toml_says() {
    let _cpu = shared();
    let server = TestServer::start();
    let auth = format!("{}/auth", server.url());
    let body = [
        // Plain: one key a line, no escapes.
        http("plain", &auth, "headers = { Authorization = \"Bearer plain-token\" }"),
        // Read by toml: an escape, a multi-line array, a dotted key.
        http(
            "escaped",
            &auth,
            "headers = { Authorization = \"Bearer \\u0065scaped-token\" }\ntags = [\n  \"team=core\",\n]\nexpect.status = 200",
        ),
        // Plain, with a literal string and a comment.
        http("literal", &auth, "headers = { Authorization = 'Bearer literal-token' } # why"),
    ]
    .concat();
    let ws = Workspace::new();
    let file = ws.write("mixed.toml", &check_file(&body));
    let held = json_doc(&sweep(&ws, &[&file], &["--json"]));
    let streamed = sweep_with_env(&ws, &[&file], &["--json"], &STREAMED);
    assert_eq!(streamed.status.code(), Some(0), "{}", describe(&streamed));
    let streamed = json_doc(&streamed);
    assert_eq!(outcomes(&streamed), outcomes(&held));
    for id in ["plain", "escaped", "literal"] {
        assert_eq!(outcomes(&streamed)[id], ("pass".to_string(), 1), "{id}");
    }
    let mut seen = server.seen_auth();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "Bearer escaped-token",
            "Bearer literal-token",
            "Bearer plain-token"
        ]
    );
    assert_verifies(&PathBuf::from(streamed["bundle"].as_str().unwrap()));
}

#[test]
fn a_streamed_sweep_reports_what_a_held_one_does_and_announces_each_check_before_it_runs() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let dir = mixed_folder(&ws, &server);
    let held = sweep(&ws, &[&dir], &["--json"]);
    // A fresh server: `flap` fails only the first time a server sees it.
    let (server, ws) = (TestServer::start(), Workspace::new());
    let dir = mixed_folder(&ws, &server);
    let streamed = sweep_with_env(&ws, &[&dir], &["--json"], &STREAMED);
    assert_eq!(streamed.status.code(), Some(1), "{}", describe(&streamed));
    let (held, streamed) = (json_doc(&held), json_doc(&streamed));
    assert_eq!(outcomes(&streamed), outcomes(&held));
    assert_eq!(outcomes(&streamed).len(), 6);
    assert_eq!(streamed["sweep"]["counts"], held["sweep"]["counts"]);

    let bundle = PathBuf::from(streamed["bundle"].as_str().unwrap());
    assert_verifies(&bundle);
    let journal = events(&bundle);
    // run.start gives the number; plan records name each step once, before
    // the step's first record.
    assert_eq!(journal[0]["type"], "run.start");
    assert_eq!(journal[0]["planned"], 6, "{}", journal[0]);
    assert_eq!(journal[0]["steps"], serde_json::json!([]));
    let mut announced: BTreeMap<String, usize> = BTreeMap::new();
    for (i, event) in journal.iter().enumerate() {
        if event["type"] == "plan" {
            for step in event["steps"].as_array().unwrap() {
                let id = step["id"].as_str().unwrap().to_string();
                assert!(announced.insert(id, i).is_none(), "announced twice");
            }
        } else if let Some(step) = event["step"].as_str() {
            let at = announced
                .get(step)
                .unwrap_or_else(|| panic!("{step} not announced before {event}"));
            assert!(*at < i);
        }
    }
    assert_eq!(announced.len(), 6, "{announced:?}");
    // Dependants are announced after the checks they depend on ended.
    let first_record = |id: &str| {
        journal
            .iter()
            .position(|e| e["step"] == id && e["type"] != "plan")
            .unwrap()
    };
    assert!(announced["blocked"] > first_record("fail"));
    assert!(announced["blocked-deep"] > first_record("blocked"));

    // With samples: each sample is announced, and the bundle verifies.
    let sampled = sweep_with_env(&ws, &[&dir], &["--json", "--samples", "2"], &STREAMED);
    let sampled = json_doc(&sampled);
    let bundle = PathBuf::from(sampled["bundle"].as_str().unwrap());
    assert_verifies(&bundle);
    assert_eq!(events(&bundle)[0]["planned"], 12);
}

#[test]
fn a_streamed_sweep_reads_small_files_again_in_chunks_of_250_checks() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    // Two small files whose checks stand alone (validated in chunks, read
    // again 250 at a time), and one with a dependency (read whole).
    let standalone = |prefix: &str, checks: usize| {
        let body: String = (0..checks)
            .map(|n| http(&format!("{prefix}{n}"), &format!("{base}/ok"), ""))
            .collect();
        check_file(&body)
    };
    let linked = check_file(
        &(http("root", &format!("{base}/ok"), "")
            + &http("leaf", &format!("{base}/ok"), "depends_on = [\"root\"]")),
    );
    let dir = checks_dir(
        &ws,
        &[
            ("a.toml", standalone("a", 600)),
            ("b.toml", standalone("b", 251)),
            ("c.toml", linked),
        ],
    );
    let env = [STREAMED[0], ("RUNPROOF_LOG", "runproof=debug")];
    let output = sweep_with_env(&ws, &[&dir], &["--json"], &env);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a.toml: validated in chunks"), "{stderr}");
    assert!(stderr.contains("b.toml: validated in chunks"), "{stderr}");
    assert!(!stderr.contains("c.toml: validated in chunks"), "{stderr}");
    let doc = json_doc(&output);
    assert_eq!(ids(&doc).len(), 853);
    let bundle = PathBuf::from(doc["bundle"].as_str().unwrap());
    assert_verifies(&bundle);
    // Each plan record is one batch handed over by the reader: no more than
    // 250 checks (a file of 600 read whole was one batch of 600).
    let plans: Vec<usize> = records(&events(&bundle), "plan", None)
        .iter()
        .map(|p| p["steps"].as_array().unwrap().len())
        .collect();
    assert_eq!(plans, [250, 250, 100, 250, 1, 1, 1], "{plans:?}");
}

#[test]
fn a_streamed_sweep_selects_the_same_checks_with_only_and_shard() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let mut files = Vec::new();
    for f in 0..3 {
        let mut body = String::new();
        body += &http(&format!("gw-{f}"), &format!("{base}/ok"), "");
        body += &http(
            &format!("api-{f}"),
            &format!("{base}/ok"),
            &format!("depends_on = [\"gw-{f}\"]"),
        );
        for i in 0..6 {
            body += &http(&format!("svc-{f}-{i}"), &format!("{base}/ok"), "");
        }
        files.push((format!("f{f}.toml"), check_file(&body)));
    }
    let files: Vec<(&str, String)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let dir = checks_dir(&ws, &files);
    let runs: [&[&str]; 5] = [
        &["--only", "api-*"],
        &["--only", "svc-1-*", "--only", "api-2"],
        &["--shard", "1/3"],
        &["--shard", "2/3"],
        &["--shard", "3/3", "--only", "*-2*"],
    ];
    for args in runs {
        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let held = sweep(&ws, &[&dir], &args);
        let streamed = sweep_with_env(&ws, &[&dir], &args, &STREAMED);
        assert_eq!(
            streamed.status.code(),
            Some(0),
            "{args:?}: {}",
            describe(&streamed)
        );
        let (held, streamed) = (json_doc(&held), json_doc(&streamed));
        assert_eq!(ids(&streamed), ids(&held), "{args:?}");
        let bundle = PathBuf::from(streamed["bundle"].as_str().unwrap());
        assert_verifies(&bundle);
        assert_eq!(events(&bundle)[0]["planned"], ids(&held).len(), "{args:?}");
    }
    // `--only api-*` pulls in what each api check depends on.
    let only = sweep_with_env(&ws, &[&dir], &["--only", "api-*", "--json"], &STREAMED);
    assert_eq!(
        ids(&json_doc(&only)),
        ["api-0", "api-1", "api-2", "gw-0", "gw-1", "gw-2"]
            .map(String::from)
            .into()
    );
}

#[test]
fn a_streamed_sweep_refuses_duplicate_ids_across_files_and_a_file_changed_between_rounds() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let dup = checks_dir(
        &ws,
        &[
            (
                "a.toml",
                check_file(&http("api", "http://127.0.0.1:9/a", "")),
            ),
            (
                "b.toml",
                check_file(&http("api", "http://127.0.0.1:9/b", "")),
            ),
        ],
    );
    let output = sweep_with_env(&ws, &[&dup], &[], &STREAMED);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("check id `api` appears in")
            && stderr.contains("a.toml")
            && stderr.contains("b.toml"),
        "{stderr}"
    );

    let file = ws.write(
        "watched.toml",
        &check_file(&http("a", &format!("{}/ok", server.url()), "")),
    );
    let mut watch = Watch::start_with_env(&ws, &file, &["--watch", "1s"], &STREAMED);
    watch.wait_rounds(1, Duration::from_secs(30));
    // Edited after it was validated: later rounds must not run it unvalidated.
    std::fs::write(
        &file,
        check_file(&http("a", "http://127.0.0.1:9/edited", "")),
    )
    .unwrap();
    let (code, lines, stderr) = watch.finish(Duration::from_secs(30));
    assert_eq!(code, Some(2), "stdout {lines:?}\nstderr {stderr}");
    assert!(
        stderr.contains("watched.toml") && stderr.contains("changed during the sweep"),
        "{stderr}"
    );
}

/// A check file over 256 KiB whose checks stand alone: read in chunks of
/// 1,000 when streamed.
fn large_check_file(server: &TestServer, checks: usize, duplicate: Option<usize>) -> String {
    let base = server.url();
    let mut body = String::new();
    for n in 0..checks {
        let id = match duplicate {
            Some(d) if n == checks - 1 => format!("c{d}"),
            _ => format!("c{n}"),
        };
        body += &http(
            &id,
            &format!("{base}/ok"),
            "expect = { status = 200 }\ntags = [\"team=web\", \"padding=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]",
        );
    }
    let text = check_file(&body);
    assert!(text.len() > 256 * 1024, "{}", text.len());
    text
}

#[test]
fn a_large_file_streamed_in_chunks_runs_every_check_once_and_a_late_duplicate_is_named() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let checks = 2_100;
    let text = large_check_file(&server, checks, None);
    let file = ws.write("large.toml", &text);
    let env = [STREAMED[0], ("RUNPROOF_LOG", "runproof=debug")];
    let output = sweep_with_env(&ws, &[&file], &["--json"], &env);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("large.toml: validated in chunks of 1000 checks"),
        "{}",
        describe(&output)
    );
    let doc = json_doc(&output);
    assert_eq!(ids(&doc).len(), checks);
    let bundle = PathBuf::from(doc["bundle"].as_str().unwrap());
    assert_verifies(&bundle);
    // The input's copy, streamed into the bundle, is the file.
    let copy = std::fs::read_to_string(bundle.join("inputs/000-large.toml")).unwrap();
    assert!(copy == text, "the copy differs from the file");
    let journal = events(&bundle);
    assert_eq!(journal[0]["planned"], checks);
    let plans: Vec<usize> = records(&journal, "plan", None)
        .iter()
        .map(|p| p["steps"].as_array().unwrap().len())
        .collect();
    assert_eq!(plans.iter().sum::<usize>(), checks);
    assert!(plans.iter().all(|&n| n <= 1_000), "{plans:?}");

    // Held (2,100 checks), read in chunks all the same: its copy too.
    let output = sweep(&ws, &[&file], &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let bundle = PathBuf::from(json_doc(&output)["bundle"].as_str().unwrap());
    let copy = std::fs::read_to_string(bundle.join("inputs/000-large.toml")).unwrap();
    assert!(copy == text, "the held copy differs from the file");

    // The same id twice, 2,000 checks apart (in different chunks): the file
    // is then read whole, which names both lines.
    let dup = ws.write("dup.toml", &large_check_file(&server, checks, Some(3)));
    let output = sweep_with_env(&ws, &[&dup], &[], &STREAMED);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("duplicate check id `c3`") && stderr.contains("dup.toml:"),
        "{stderr}"
    );
}

#[test]
fn an_interrupted_streamed_sweep_stops_reading_files_and_counts_the_rest_as_interrupted() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let mut first = http(
        "stuck",
        &format!("{base}/hang/stuck"),
        "timeout = \"30s\"\nretries = 0",
    );
    first += &http("quick", &format!("{base}/ok"), "");
    let later = |f: usize| {
        (0..5)
            .map(|i| http(&format!("later-{f}-{i}"), &format!("{base}/ok"), ""))
            .collect::<String>()
    };
    let dir = checks_dir(
        &ws,
        &[
            ("a.toml", check_file(&first)),
            ("b.toml", check_file(&later(1))),
            ("c.toml", check_file(&later(2))),
        ],
    );
    let watch = Watch::start_with_env(
        &ws,
        &dir,
        &["--watch", "1s", "--concurrency", "1"],
        &STREAMED,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.hits("stuck") == 0 {
        assert!(Instant::now() < deadline, "the hanging check never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    watch.interrupt();
    let (code, lines, stderr) = watch.finish(Duration::from_secs(30));
    assert_eq!(code, Some(130), "stdout {lines:?}\nstderr {stderr}");
    let on_disk = bundles(&ws, "sweep");
    assert_eq!(on_disk.len(), 1, "{on_disk:?}");
    assert_verifies(&on_disk[0]);
    let journal = events(&on_disk[0]);
    assert_eq!(journal[0]["planned"], 12);
    let announced: BTreeSet<String> = records(&journal, "plan", None)
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap().iter())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    // Only the first file was read: the others were never reached.
    assert_eq!(announced, ["quick", "stuck"].map(String::from).into());
    let end = journal.last().unwrap();
    assert_eq!(end["verdict"], "interrupted", "{end}");
    let counts = end["counts"].as_object().unwrap();
    let total: u64 = counts.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, 12, "{end}");
    assert!(counts["interrupted"].as_u64().unwrap() >= 10, "{end}");
}

/// The journal's last record, checked to be a `run.end` of a round that a
/// changed input file stopped, its reason naming `why`.
fn ended_stopped_by<'j>(journal: &'j [Value], why: &str) -> &'j Value {
    let end = journal.last().unwrap();
    assert_eq!(end["type"], "run.end", "{end}");
    assert_eq!(end["verdict"], "interrupted", "{end}");
    let reason = end["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("stopped: input file ") && reason.contains(why),
        "{end}"
    );
    end
}

#[test]
fn a_file_changed_in_the_middle_of_a_streamed_sweep_ends_the_round_interrupted_and_sealed() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    // The first check hangs until its timeout; with one check in flight the
    // sweep reads at most a few chunks of 250 ahead meanwhile, so the file's
    // end is read only after it was changed: found at the end of the file.
    let checks = 2_100;
    let mut body = http(
        "stuck",
        &format!("{base}/hang/stuck"),
        "timeout = \"2s\"\nretries = 0",
    );
    for n in 0..checks {
        body += &http(&format!("c{n}"), &format!("{base}/ok"), "");
    }
    let text = check_file(&body);
    let file = ws.write("big.toml", &text);
    let mut child = runproof()
        .envs(STREAMED)
        .arg("sweep")
        .arg(&file)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .args(["--concurrency", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sweep");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.hits("stuck") == 0 {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the hanging check never ran");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Same length, another target for the last check.
    let last = format!("{base}/ok\"\n\n");
    let at = text.rfind(&last).unwrap();
    let changed = format!("{}{base}/no\"\n\n", &text[..at]);
    assert_eq!(changed.len(), text.len());
    std::fs::write(&file, changed).unwrap();
    let output = child.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let on_disk = bundles(&ws, "sweep");
    assert_eq!(on_disk.len(), 1, "{on_disk:?}");
    let bundle = &on_disk[0];
    assert_verifies(bundle);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("big.toml: changed during the sweep")
            && stderr.contains("sealed as interrupted"),
        "{stderr}"
    );
    // `--json` is one whole document all the same, saying why.
    let doc = json_doc(&output);
    let error = doc["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("big.toml: changed during the sweep"),
        "{doc}"
    );
    assert_eq!(Path::new(doc["bundle"].as_str().unwrap()), bundle);
    let journal = events(bundle);
    let end = ended_stopped_by(&journal, "big.toml: changed during the sweep");
    let counts = end["counts"].as_object().unwrap();
    let total: u64 = counts.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, checks as u64 + 1, "{end}");
    // The last chunk, read from the changed file, never ran.
    assert!(counts["interrupted"].as_u64().unwrap() >= 1, "{end}");
    assert_eq!(counts["fail"], 1, "{end}");
}

#[test]
fn checks_whose_bodies_differ_store_a_blob_each_and_the_bundle_verifies() {
    let _cpu = shared();
    // More checks than a batch of the journal (512 records): the blobs are
    // written unsynced and synced with the batches, and the seal lists each
    // under the digest it was written under.
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let body: String = (0..600)
        .map(|n| http(&format!("c{n}"), &format!("{base}/echo/b{n}"), ""))
        .collect();
    let dir = checks_dir(&ws, &[("checks.toml", check_file(&body))]);
    let output = sweep(&ws, &[&dir], &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let bundle = PathBuf::from(json_doc(&output)["bundle"].as_str().unwrap());
    let stored: BTreeSet<String> = std::fs::read_dir(bundle.join("blobs/sha256"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    let expected: BTreeSet<String> = (0..600).map(|n| format!("ok b{n}")).collect();
    assert_eq!(stored, expected, "a blob for each body, and nothing else");
    let seal: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("seal.json")).unwrap()).unwrap();
    let listed = seal["subject"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|subject| {
            let name = subject["name"].as_str().unwrap();
            name.strip_prefix("blobs/sha256/").is_some()
                && name.strip_prefix("blobs/sha256/") == subject["digest"]["sha256"].as_str()
        })
        .count();
    assert_eq!(listed, 600);
    assert_verifies(&bundle);
}

#[test]
fn a_sweep_on_several_threads_runs_each_check_once_in_one_verifying_chain() {
    let _cpu = shared();
    // The mixed verdicts (with dependants, run level by level) on one thread
    // and on four: the same outcomes.
    let server = TestServer::start();
    let ws = Workspace::new();
    let dir = mixed_folder(&ws, &server);
    let one = sweep_with_env(
        &ws,
        &[&dir],
        &["--json"],
        &[("RUNPROOF_SWEEP_THREADS", "1")],
    );
    let (server, ws) = (TestServer::start(), Workspace::new());
    let dir = mixed_folder(&ws, &server);
    let env = [
        ("RUNPROOF_SWEEP_THREADS", "4"),
        ("RUNPROOF_LOG", "runproof=debug"),
    ];
    let four = sweep_with_env(&ws, &[&dir], &["--json"], &env);
    assert_eq!(four.status.code(), Some(1), "{}", describe(&four));
    let stderr = String::from_utf8_lossy(&four.stderr);
    assert!(
        stderr.contains("sweeping on 4 thread(s)"),
        "the sweep did not run on 4 threads: {stderr}"
    );
    let (one, four) = (json_doc(&one), json_doc(&four));
    assert_eq!(outcomes(&four), outcomes(&one));
    assert_eq!(four["sweep"]["counts"], one["sweep"]["counts"]);
    assert_verifies(Path::new(four["bundle"].as_str().unwrap()));

    // Many checks, streamed from several files, shared by four threads:
    // every check runs once, every step is announced once before its first
    // record, and the journal is one chain that verifies.
    let ws = Workspace::new();
    let base = server.url();
    let files: Vec<(String, String)> = (0..3)
        .map(|f| {
            let body: String = (0..150)
                .map(|n| http(&format!("f{f}-c{n}"), &format!("{base}/ok"), ""))
                .collect();
            (format!("part-{f}.toml"), check_file(&body))
        })
        .collect();
    let files: Vec<(&str, String)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let dir = checks_dir(&ws, &files);
    let env = [
        ("RUNPROOF_SWEEP_THREADS", "4"),
        STREAMED[0],
        ("RUNPROOF_LOG", "runproof=debug"),
    ];
    let output = sweep_with_env(&ws, &[&dir], &["--json", "--concurrency", "16"], &env);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sweeping on 4 thread(s)"));
    let doc = json_doc(&output);
    let outcomes = outcomes(&doc);
    assert_eq!(outcomes.len(), 450);
    assert!(outcomes
        .values()
        .all(|(verdict, attempts)| verdict == "pass" && *attempts == 1));
    let bundle = PathBuf::from(doc["bundle"].as_str().unwrap());
    assert_verifies(&bundle);
    let journal = events(&bundle);
    let mut announced = BTreeSet::new();
    let mut passed = BTreeSet::new();
    for event in &journal {
        if event["type"] == "plan" {
            for step in event["steps"].as_array().unwrap() {
                assert!(announced.insert(step["id"].as_str().unwrap().to_string()));
            }
        } else if let Some(step) = event["step"].as_str() {
            assert!(
                announced.contains(step),
                "{step} not announced before {event}"
            );
            if event["type"] == "step.pass" {
                assert!(passed.insert(step.to_string()), "{step} passed twice");
            }
        }
    }
    assert_eq!(passed.len(), 450);
}

#[test]
fn a_file_changed_between_watch_rounds_ends_the_next_round_interrupted_and_sealed() {
    let _cpu = shared();
    let server = TestServer::start();
    let ws = Workspace::new();
    let base = server.url();
    let file = two_checks(&ws, "watched.toml", &base, "ok");
    let text = std::fs::read_to_string(&file).unwrap();
    // Streamed: the second round copies the file from disk into its bundle,
    // and finds it is no longer the file it validated.
    let mut watch = Watch::start_with_env(&ws, &file, &["--watch", "1s"], &STREAMED);
    watch.wait_rounds(1, Duration::from_secs(20));
    std::fs::write(&file, text.replace("/ok\"", "/no\"")).unwrap();
    let (status, _, stderr) = watch.finish(Duration::from_secs(20));

    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("watched.toml") && stderr.contains("sealed as interrupted"),
        "{stderr}"
    );
    let on_disk = bundles(&ws, "sweep");
    assert_eq!(on_disk.len(), 2, "{on_disk:?}");
    let second = &on_disk[1];
    assert_verifies(second);
    let journal = events(second);
    let end = ended_stopped_by(&journal, "watched.toml: changed during the sweep");
    // Not one check of the changed file ran.
    assert_eq!(end["counts"]["interrupted"], 2, "{end}");
    assert!(
        !journal.iter().any(|e| e["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("step.") || t.starts_with("attempt."))),
        "{journal:?}"
    );
}
