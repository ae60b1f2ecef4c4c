//! Secrets never leave runproof (issue 9): a canary planted as a secret is
//! searched, in every encoding, in every output of a run and of a sweep
//! (stdout, stderr with `RUNPROOF_LOG=trace`, every bundle file, the JUnit,
//! Markdown, Prometheus and JSON outputs), while a local server echoes it
//! back in the forms real servers use and the run cuts it at every cut
//! point. Also: secrets in `argv` are a lint error, `lint` masks values
//! pasted inline, the `webhook sign --curl` snippet never puts the key in
//! any process's argv, and `tokio_postgres` trace logs are redacted.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::services::{postgres, PG_PASSWORD};
use crate::support::*;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The planted secret: starts with 8 characters no encoder changes (so a
/// cut prefix is the same in every encoding), then every character an
/// encoder treats specially, and is long enough for its base64 to wrap.
const CANARY: &str =
    "Kq7Zr2Wm&<tag>\"q\"/path+v=1'Z9-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP";

/// The first characters of the canary: what a cut inside it would show.
const PREFIX: &str = "Kq7Zr2W";

/// What Python's `urllib.parse.quote` leaves alone (`safe='/'`).
const PATH_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Every encoding of `secret` a leak could take, by label.
fn forms(secret: &str) -> Vec<(String, Vec<u8>)> {
    let bytes = secret.as_bytes();
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("raw".into(), bytes.to_vec()),
        ("hex".into(), hex::encode(bytes).into_bytes()),
        ("HEX".into(), hex::encode_upper(bytes).into_bytes()),
    ];
    for offset in 0..3 {
        let rest = &bytes[offset..];
        let whole = &rest[..rest.len() / 3 * 3];
        out.push((
            format!("base64@{offset}"),
            STANDARD_NO_PAD.encode(whole).into_bytes(),
        ));
        out.push((
            format!("base64url@{offset}"),
            URL_SAFE_NO_PAD.encode(whole).into_bytes(),
        ));
    }
    out.push((
        "percent".into(),
        utf8_percent_encode(secret, NON_ALPHANUMERIC)
            .to_string()
            .into_bytes(),
    ));
    out.push((
        "percent-path".into(),
        utf8_percent_encode(secret, PATH_SAFE)
            .to_string()
            .into_bytes(),
    ));
    out.push((
        "form".into(),
        url::form_urlencoded::byte_serialize(bytes)
            .collect::<String>()
            .into_bytes(),
    ));
    let json = serde_json::to_string(secret).unwrap();
    out.push(("json".into(), json.as_bytes()[1..json.len() - 1].to_vec()));
    out.push(("json-go".into(), go_json(secret).into_bytes()));
    out.push(("html".into(), html_named(secret).into_bytes()));
    out.push((
        "html-decimal".into(),
        entities(secret, |c| format!("&#{};", c as u32)).into_bytes(),
    ));
    out.push((
        "html-hex".into(),
        entities(secret, |c| format!("&#x{:x};", c as u32)).into_bytes(),
    ));
    out
}

/// Go's `encoding/json`: `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`.
fn go_json(secret: &str) -> String {
    let json = serde_json::to_string(secret).unwrap();
    json[1..json.len() - 1]
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn html_named(secret: &str) -> String {
    secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn entities(secret: &str, entity: impl Fn(char) -> String) -> String {
    secret
        .chars()
        .map(|c| {
            if matches!(c, '&' | '<' | '>' | '"' | '\'') {
                entity(c)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `bytes` with line breaks removed (raw CR/LF and the JSON escapes `\r`,
/// `\n`): a value wrapped across lines is found there.
fn unwrapped(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' | b'\n' => i += 1,
            b'\\' if matches!(bytes.get(i + 1), Some(b'r' | b'n')) => i += 2,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Panics naming the output and the form when any encoding of the canary,
/// or its prefix (a cut inside it), appears in `bytes`, as written or with
/// line breaks removed.
fn assert_no_canary(label: &str, bytes: &[u8]) {
    let joined = unwrapped(bytes);
    let mut all = forms(CANARY);
    all.push(("prefix".into(), PREFIX.as_bytes().to_vec()));
    for (form, needle) in &all {
        for (how, text) in [("as written", bytes), ("unwrapped", &joined[..])] {
            assert!(
                !contains(text, needle),
                "the canary ({form}) leaked into {label} ({how}):\n{}",
                String::from_utf8_lossy(text)
                    .chars()
                    .take(4000)
                    .collect::<String>()
            );
        }
    }
}

fn assert_outputs_clean(what: &str, output: &Output) {
    assert_no_canary(&format!("{what} stdout"), &output.stdout);
    assert_no_canary(&format!("{what} stderr"), &output.stderr);
}

fn assert_files_clean(dir: &Path) -> usize {
    let files = files_under(dir);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert_no_canary(&file.display().to_string(), &bytes);
    }
    files.len()
}

/// How many bytes before the canary the capped bodies hold: 10 bytes of the
/// canary fit under the 1 MiB cap.
const BEFORE_CAP: usize = 1024 * 1024 - 10;

/// A server echoing the canary the ways real servers do.
struct EchoServer {
    addr: std::net::SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl EchoServer {
    fn start() -> EchoServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mime = {
            let encoded = STANDARD.encode(format!("Subject: hello\r\nToken: {CANARY}\r\n\r\nbody"));
            encoded
                .as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\r\n")
        };
        let echoes = format!(
            "go-json: {}\npython-quote: {}\nhtml: {}\nxml-numeric: {}\nwrapped-lf: {}\n{}\nwrapped-crlf: {}\r\n{}\nmime:\n{mime}\n",
            go_json(CANARY),
            utf8_percent_encode(CANARY, PATH_SAFE),
            html_named(CANARY),
            entities(CANARY, |c| format!("&#{};", c as u32)),
            &CANARY[..30],
            &CANARY[30..],
            &CANARY[..45],
            &CANARY[45..],
        );
        let mismatch = serde_json::json!({ "token": format!("{}{CANARY}", "x".repeat(60)) });
        let big = format!("{}{CANARY} and more", "a".repeat(BEFORE_CAP));
        let app = Router::new()
            .route("/echo", get(move || async move { echoes }))
            .route(
                "/mismatch",
                get(move || async move { axum::Json(mismatch) }),
            )
            .route("/big", get(move || async move { big }));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EchoServer {
            addr,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Steps (or checks) that make the canary reach every cut point and every
/// sink: echoed bodies, a JSON mismatch message (cut at 80), a command's
/// last output (cut at 200), 1 MiB caps of a body and of an output, and
/// reasons that the run and sweep tables cut again.
fn leaky_steps(table: &str, base: &str) -> String {
    format!(
        r#"[[{table}]]
id = "echo"
check = "http"
url = "{base}/echo"
retries = 0
expect = {{ status = 200, body_contains = "go-json" }}

[[{table}]]
id = "mismatch"
check = "http"
url = "{base}/mismatch"
retries = 0
expect = {{ status = 200, json = {{ token = "nope" }} }}

[[{table}]]
id = "big-body"
check = "http"
url = "{base}/big"
retries = 0
expect = {{ status = 200 }}

[[{table}]]
id = "last-output"
check = "command"
shell = '''printf '%0190d%s\n' 0 "$S"; exit 3'''
env = {{ S = "{{{{secret:CANARY}}}}" }}
retries = 0

[[{table}]]
id = "big-output"
check = "command"
shell = '''head -c {BEFORE_CAP} /dev/zero | tr '\0' a; printf '%s' "$S"'''
env = {{ S = "{{{{secret:CANARY}}}}" }}
retries = 0
"#
    )
}

#[test]
fn secrets_canary_never_leaves_a_run_in_any_encoding() {
    let server = EchoServer::start();
    let ws = Workspace::new();
    let runbook = ws.write(
        "runbook.toml",
        &format!(
            "[runbook]\nname = \"leaky\"\n\n[secrets]\nrequired = [\"CANARY\"]\n\n{}",
            leaky_steps("step", &server.url())
        ),
    );
    let output = ws.run_with_env(
        &runbook,
        &[],
        &[("CANARY", CANARY), ("RUNPROOF_LOG", "trace")],
    );
    // The mismatch and the failing command fail the run; it still seals.
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_outputs_clean("run", &output);
    let bundle = bundle_path(&output);
    let files = assert_files_clean(&bundle);
    for name in ["events.jsonl", "summary.md", "junit.xml", "runbook.toml"] {
        assert!(bundle.join(name).exists(), "{name} missing");
    }
    assert!(files >= 8, "only {files} files in the bundle");

    // The canary really reached every cut point: each is masked, not absent.
    let journal = std::fs::read_to_string(bundle.join("events.jsonl")).unwrap();
    assert!(
        journal.contains("[REDACTED:CANARY]\u{2026}"),
        "no masked cut in the journal:\n{journal}"
    );
    let events = events(&bundle);
    // Both capped blobs (a body and an output; the same bytes, so one
    // file) end in the mask where the cap cut the canary.
    for step in ["big-body", "big-output"] {
        let end = records(&events, "attempt.end", Some(step));
        let blob = &end[0]["blobs"][0];
        assert_eq!(blob["truncated"], true, "{blob}");
        let digest = blob["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let bytes = std::fs::read(bundle.join("blobs/sha256").join(digest)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes[BEFORE_CAP - 4..]),
            "aaaa[REDACTED:CANARY]",
            "end of the capped blob of {step}"
        );
    }
    assert!(records(&events, "attempt.end", Some("last-output"))
        .iter()
        .any(|r| r.to_string().contains("[REDACTED:CANARY]")));

    // `verify` scanning for the value agrees.
    let verified = runproof()
        .arg("verify")
        .arg(&bundle)
        .args(["--scan-secrets-from-env", "CANARY"])
        .env("CANARY", CANARY)
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    assert_outputs_clean("verify", &verified);
}

#[test]
fn secrets_canary_never_leaves_a_sweep_in_any_encoding() {
    let server = EchoServer::start();
    let ws = Workspace::new();
    let checks = ws.write(
        "checks.toml",
        &format!(
            "[secrets]\nrequired = [\"CANARY\"]\n\n{}{}",
            leaky_steps("check", &server.url()),
            // The benchmark's shape: a bearer token header, default policy,
            // passing on its first attempt (one compact `step.pass` record).
            format_args!(
                "\n[[check]]\nid = \"bearer\"\ncheck = \"http\"\nurl = \"{}/echo?token={{{{secret:CANARY}}}}\"\n\
                 headers = {{ Authorization = \"Bearer {{{{secret:CANARY}}}}\" }}\n\
                 expect = {{ status = 200, body_contains = \"go-json\" }}\n",
                server.url()
            )
        ),
    );
    let out = |name: &str| ws.path().join(name);
    let output = runproof()
        .arg("sweep")
        .arg(&checks)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .arg("--json")
        .arg("--junit")
        .arg(out("sweep.xml"))
        .arg("--markdown")
        .arg(out("sweep.md"))
        .arg("--prometheus")
        .arg(out("sweep.prom"))
        .env("CANARY", CANARY)
        .env("RUNPROOF_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        describe(&output)
    );
    assert_outputs_clean("sweep", &output);
    for name in ["sweep.xml", "sweep.md", "sweep.prom"] {
        let bytes = std::fs::read(out(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!bytes.is_empty(), "{name} is empty");
        assert_no_canary(name, &bytes);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("mismatch"), "{stdout}");
    let files = assert_files_clean(&ws.artifacts());
    assert!(files >= 6, "only {files} files in the sweep's bundle");
    // The checks that passed on their first attempt went through the
    // compact path (one `step.pass` record, its echoed body as a blob).
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let events = events(Path::new(doc["bundle"].as_str().unwrap()));
    for step in ["echo", "bearer", "big-body"] {
        let pass = records(&events, "step.pass", Some(step));
        assert_eq!(pass.len(), 1, "{step}: {events:?}");
        assert!(records(&events, "attempt.start", Some(step)).is_empty());
    }
    let bearer = records(&events, "step.pass", Some("bearer"))[0];
    // What was checked: the secret as its template (`rendered` is left out
    // when it equals `target`).
    let checked = bearer["rendered"].as_str().or(bearer["target"].as_str());
    assert!(checked.unwrap().contains("{{secret:CANARY}}"), "{bearer}");
    assert!(!records(&events, "step.pass", Some("echo"))[0]["blobs"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// The suite's throwaway PostgreSQL (real password authentication).
const PG_USER: &str = "postgres";

#[test]
fn secrets_tokio_postgres_trace_logs_are_redacted() {
    let server = postgres();
    let ws = Workspace::new();
    let runbook = ws.write(
        "runbook.toml",
        &format!(
            r#"[runbook]
name = "pg-log"

[secrets]
required = ["PG_DSN", "CANARY"]

[[step]]
id = "db"
check = "postgres"
dsn = "{{{{secret:PG_DSN}}}}"
query = "select length('{{{{secret:CANARY}}}}')::text"
retries = 0
expect = {{ value = "{}" }}
"#,
            CANARY.len()
        ),
    );
    // The query carries the canary SQL-quoted: `'` doubled; the DSN carries
    // the server's real password, itself a secret that must not leak.
    let dsn = format!(
        "host=127.0.0.1 port={} user={PG_USER} password='{PG_PASSWORD}' dbname=postgres sslmode=disable",
        server.port
    );
    let sql_canary = CANARY.replace('\'', "''");
    let output = ws.run_with_env(
        &runbook,
        &[],
        &[
            ("PG_DSN", &dsn),
            ("CANARY", &sql_canary),
            ("RUNPROOF_LOG", "trace"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The trace really shows tokio_postgres' query text (redacted).
    assert!(
        stderr.contains("tokio_postgres") && stderr.contains("[REDACTED:CANARY]"),
        "{}",
        describe(&output)
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_outputs_clean("postgres run", &output);
    assert_no_canary("stderr (SQL-quoted form)", &{
        let mut text = output.stderr.clone();
        text.extend_from_slice(&output.stdout);
        text
    });
    for needle in [sql_canary.as_str(), &dsn, PG_PASSWORD] {
        assert!(!stderr.contains(needle), "{needle} in stderr");
    }
    assert_files_clean(&bundle_path(&output));
}

fn lint(ws: &Workspace, source: &str) -> Output {
    let path = ws.write("runbook.toml", source);
    runproof().arg("lint").arg(path).output().unwrap()
}

#[test]
fn secrets_in_argv_are_a_lint_error_unless_the_risk_is_accepted() {
    let ws = Workspace::new();
    let head = "[runbook]\nname = \"argv\"\n\n[secrets]\nrequired = [\"TOKEN\"]\n\n";
    for (line, column, step) in [
        (
            10,
            31,
            "[[step]]\nid = \"push\"\ncheck = \"command\"\nargv = [\"deploy\", \"--token\", \"{{secret:TOKEN}}\"]\n",
        ),
        (
            10,
            34,
            "[[step]]\nid = \"push\"\ncheck = \"command\"\nshell = \"curl -H 'Authorization: {{secret:TOKEN}}' http://127.0.0.1:1/\"\n",
        ),
    ] {
        let output = lint(&ws, &format!("{head}{step}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        assert!(
            stderr.contains("{{secret:TOKEN}} on the command line"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("runbook.toml:{line}:{column}")),
            "{stderr}"
        );
        assert!(stderr.contains("pass it in `env`"), "{stderr}");
        assert!(
            stderr.contains("secret_in_argv = \"accept-risk\""),
            "{stderr}"
        );
    }
    // A capture marked `secret = true` is a secret too; a plain one is not.
    let captures = "[[step]]\nid = \"login\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:1/login\"\ncapture = { token = { json = \"$.token\", secret = true }, user = { json = \"$.user\" } }\n\n";
    let output = lint(
        &ws,
        &format!("{head}{captures}[[step]]\nid = \"push\"\ncheck = \"command\"\nargv = [\"deploy\", \"{{{{steps.login.user}}}}\", \"{{{{steps.login.token}}}}\"]\n"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        stderr.contains("{{steps.login.token}} on the command line"),
        "{stderr}"
    );
    assert!(!stderr.contains("{{steps.login.user}} on"), "{stderr}");
    assert!(stderr.contains("has 1 error"), "{stderr}");
    // In `env` it is fine.
    let output = lint(
        &ws,
        &format!("{head}[[step]]\nid = \"push\"\ncheck = \"command\"\nargv = [\"deploy\"]\nenv = {{ DEPLOY_TOKEN = \"{{{{secret:TOKEN}}}}\" }}\n"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // Any other opt-out value is refused.
    let output = lint(
        &ws,
        &format!("{head}[[step]]\nid = \"push\"\ncheck = \"command\"\nargv = [\"deploy\", \"{{{{secret:TOKEN}}}}\"]\nsecret_in_argv = \"yes\"\n"),
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

#[test]
fn secrets_in_argv_accepted_risk_is_recorded_in_the_evidence() {
    let ws = Workspace::new();
    let runbook = ws.write(
        "runbook.toml",
        "[runbook]\nname = \"argv\"\n\n[secrets]\nrequired = [\"TOKEN\"]\n\n[[step]]\nid = \"legacy\"\ncheck = \"command\"\nargv = [\"sh\", \"-c\", \"test -n \\\"$0\\\"\", \"{{secret:TOKEN}}\"]\nsecret_in_argv = \"accept-risk\"\nretries = 0\n",
    );
    let output = ws.run_with_env(&runbook, &[], &[("TOKEN", CANARY)]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_outputs_clean("run", &output);
    let bundle = bundle_path(&output);
    assert_files_clean(&bundle);
    let events = events(&bundle);
    let start = records(&events, "step.start", Some("legacy"));
    assert!(
        start[0]["target"]
            .as_str()
            .unwrap()
            .ends_with("(secret_in_argv = \"accept-risk\")"),
        "{start:?}"
    );
    let end = records(&events, "attempt.end", Some("legacy"));
    assert!(
        end[0]
            .to_string()
            .contains("\"secret_in_argv\":\"accept-risk\""),
        "{end:?}"
    );
}

#[test]
fn secrets_pasted_inline_are_masked_in_lint_output() {
    let ws = Workspace::new();
    let source = format!(
        "[runbook]\nname = \"inline\"\n\n[[step]]\nid = \"api\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:1/\"\napi_key = \"sk-live-{PREFIX}-0123456789\"\n\n[[step]]\nid = \"db\"\ncheck = \"postgres\"\ndsn = \"postgres://app:{PREFIX}pw@127.0.0.1:1/x\"\nquery = \"select 1\"\nbogus = 1\n"
    );
    let output = lint(&ws, &source);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The diagnostics point at the lines holding the values…
    assert!(stderr.contains("unknown key `api_key`"), "{stderr}");
    assert!(stderr.contains("8 | api_key = \"****"), "{stderr}");
    // …without showing them.
    assert!(!stderr.contains(PREFIX), "{stderr}");
    assert_outputs_clean("lint", &output);

    // A declared secret's known value (from the environment) is masked
    // wherever it was pasted, whatever the key.
    let known = "plain-known-value-4242";
    let path = ws.write(
        "known.toml",
        &format!("[runbook]\nname = \"inline\"\n\n[secrets]\nrequired = [\"KNOWN\"]\n\n[[step]]\nid = \"api\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:1/\"\ntitel = \"uses {known}\"\n"),
    );
    let output = runproof()
        .arg("lint")
        .arg(&path)
        .env("KNOWN", known)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown key `titel`"), "{stderr}");
    assert!(stderr.contains("titel = \"uses ****"), "{stderr}");
    assert!(!stderr.contains(known), "{stderr}");
}

fn tool(name: &str) -> Option<PathBuf> {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Runs the `webhook sign --curl` snippet with `shell` (sh or bash), every
/// external program it may run replaced by a wrapper that logs its argv and
/// runs the real one (`curl` only logs). Returns the logged argv lines.
fn run_snippet(shell: &Path, secret: &str, body: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("argv.log");
    for name in [
        "od", "openssl", "cut", "cat", "wc", "date", "uuidgen", "tr", "head",
    ] {
        let Some(real) = tool(name) else { continue };
        let wrapper = format!(
            "#!{}\nprintf '%s\\n' \"{name} $*\" >> '{}'\nexec '{}' \"$@\"\n",
            shell.display(),
            log.display(),
            real.display()
        );
        write_executable(&bin.join(name), &wrapper);
    }
    write_executable(
        &bin.join("curl"),
        &format!(
            "#!{}\nprintf '%s\\n' \"curl $*\" >> '{}'\n",
            shell.display(),
            log.display()
        ),
    );
    let script = runproof()
        .args(["webhook", "sign", "--secret-env", "CW_SECRET"])
        .args(["--timestamp", "1767225600", "--delivery", "d-1"])
        .args(["--curl", "http://127.0.0.1:9/hooks/chatwoot"])
        .arg(body)
        .env("CW_SECRET", secret)
        .output()
        .unwrap();
    assert_eq!(script.status.code(), Some(0), "{}", describe(&script));
    let script = String::from_utf8(script.stdout).unwrap();
    assert!(!script.contains(secret), "{script}");
    let output = std::process::Command::new(shell)
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", &bin)
        .env("CW_SECRET", secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn secrets_webhook_curl_snippet_never_puts_the_key_in_argv() {
    let Some(_) = tool("openssl") else {
        eprintln!("skipping: openssl not installed");
        return;
    };
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chatwoot");
    let vector1 = fixtures.join("vector1_body.json");
    let body = std::fs::read(&vector1).unwrap();
    let shells: Vec<PathBuf> = ["sh", "bash"].iter().filter_map(|s| tool(s)).collect();
    assert!(!shells.is_empty());
    // The reference vector; a key longer than a SHA-256 block (hashed
    // first); one with non-ASCII, `\`, `%`, quotes and the byte `6` (0x36,
    // which XORs with ipad to NUL).
    let long = format!("{CANARY}{CANARY}");
    let cases = [
        ("test-secret", None),
        (long.as_str(), Some(())),
        ("kéy-6\\6%s'\"$x`-6666", Some(())),
    ];
    for shell in &shells {
        for (secret, _) in &cases {
            let argv = run_snippet(shell, secret, &vector1);
            let expected =
                runproof::webhook::signature::sign(secret.as_bytes(), "1767225600", &body);
            let curl = argv
                .iter()
                .find(|l| l.starts_with("curl "))
                .unwrap_or_else(|| panic!("curl never ran: {argv:?}"));
            assert!(
                curl.contains(&format!("X-Chatwoot-Signature: {expected}")),
                "{} with {secret:?}: {curl}",
                shell.display()
            );
            assert!(
                argv.iter().any(|l| l.starts_with("openssl dgst")),
                "{argv:?}"
            );
            for line in &argv {
                assert!(!line.contains(*secret), "the key is in argv: {line}");
                assert!(!line.contains("-hmac"), "{line}");
                assert!(!line.contains(&hex::encode(secret.as_bytes())), "{line}");
            }
        }
    }
    // The documented Chatwoot vector.
    assert_eq!(
        runproof::webhook::signature::sign(b"test-secret", "1767225600", &body),
        "sha256=cf62c6eaca6aa8e853e03afd79c9a1cd206b7b191da2f16342a1bf0ebcea61b3"
    );
}
