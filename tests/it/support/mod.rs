//! Everything the integration tests share: the real `runproof` binary, a
//! local HTTP server on 127.0.0.1 with scripted behaviours, workspaces and
//! bundle readers, the one fast retry policy, and (in the submodules) the
//! fixture servers, the throwaway PostgreSQL and Redis, in-process probing
//! and the canary search.
#![allow(dead_code)]

pub mod api;
pub mod browser;
pub mod canary;
pub mod chatwoot;
pub mod chatwoot_api;
pub mod dns;
pub mod fly;
pub mod hostile;
pub mod pgwire;
pub mod probe;
pub mod resp;
pub mod services;
pub mod supabase;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The retry policy of every test runbook that does not test policies: two
/// retries with short, jitter-free backoff so a failing step costs ~70 ms.
/// It is six lines long, leading newline included (diagnostic tests count).
pub const FAST: &str = r#"
[defaults]
retries = 2
backoff = { initial = "20ms", max = "50ms", jitter = false }
timeout = "3s"
"#;

/// A loopback port that was free a moment ago (nothing listens on it now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1")
        .local_addr()
        .expect("local addr")
        .port()
}

/// The binary under test.
pub fn runproof() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runproof"));
    command.env_remove("RUNPROOF_LOG");
    command
}

/// A local HTTP server with scripted endpoints; it lives as long as the value.
pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Default)]
struct ServerState {
    /// Calls per `/flaky/{key}` key.
    calls: Mutex<HashMap<String, usize>>,
    /// Requests in flight right now, and the most seen at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Authorization headers received, for leak tests.
    seen_auth: Mutex<Vec<String>>,
    /// Calls per `/latency/{key}` and `/hang/{key}` key.
    hits: Mutex<HashMap<String, usize>>,
    /// What `/delay` sleeps, in milliseconds (settable while serving).
    delay_ms: AtomicU64,
}

/// `/latency/{key}` sleeps these milliseconds on its 1st, 2nd, … call per key
/// (then starts over): a known distribution — min 10, p50 50, p95/p99/max 100
/// (nearest rank over 10 samples) — served out of order on purpose.
pub const LATENCY_SEQUENCE_MS: [u64; 10] = [40, 10, 90, 30, 70, 100, 20, 60, 50, 80];

impl TestServer {
    /// Starts the server on a free port of 127.0.0.1.
    ///
    /// Endpoints: `/ok` (200 "ok"), `/status/{code}`, `/flaky/{key}/{failures}`
    /// (fails that many times per key, then 200), `/hang` (never answers within
    /// a test's patience), `/slow/{ms}`, `/json` (a JSON document),
    /// `POST /items` (201 {"id": 42}), `/items/{id}`, `/auth` (200 with a
    /// Bearer token, else 401), `/latency/{key}` (sleeps per
    /// [`LATENCY_SEQUENCE_MS`]), `/hang/{key}` (counts, then hangs), `/delay`
    /// (sleeps [`TestServer::set_delay_ms`]).
    pub fn start() -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime");
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .route("/ok", get(|| async { "ok" }))
            // A body of its own for each key, as a time or a counter makes it.
            .route("/echo/{key}", get(|UrlPath(key): UrlPath<String>| async move {
                format!("ok {key}")
            }))
            .route("/status/{code}", get(|UrlPath(code): UrlPath<u16>| async move {
                (StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT), format!("status {code}"))
            }))
            .route("/flaky/{key}/{failures}", get(flaky))
            .route("/hang", get(|| async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                "late"
            }))
            .route("/slow/{ms}", get(slow))
            .route("/json", get(|| async {
                Json(json!({"version": "4.1.0", "data_services": "ok", "queue_services": "ok", "items": [{"id": 1}, {"id": 2}]}))
            }))
            .route("/items", post(|Json(body): Json<Value>| async move {
                (StatusCode::CREATED, Json(json!({"id": 42, "name": body["name"]})))
            }))
            .route("/items/{id}", get(|UrlPath(id): UrlPath<u32>| async move {
                if id == 42 {
                    (StatusCode::OK, Json(json!({"id": 42, "name": "widget"})))
                } else {
                    (StatusCode::NOT_FOUND, Json(json!({"error": "no such item"})))
                }
            }))
            .route("/auth", get(auth))
            .route("/latency/{key}", get(latency))
            .route("/hang/{key}", get(hang_counted))
            .route("/delay", get(|State(state): State<Arc<ServerState>>| async move {
                tokio::time::sleep(Duration::from_millis(state.delay_ms.load(Ordering::SeqCst))).await;
                "ok"
            }))
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            addr,
            state,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many times `/flaky/{key}/..` was called.
    pub fn calls(&self, key: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Most requests seen in flight at once on `/slow`.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Authorization headers received on `/auth`.
    pub fn seen_auth(&self) -> Vec<String> {
        self.state.seen_auth.lock().unwrap().clone()
    }

    /// How many times `/latency/{key}` or `/hang/{key}` was called.
    pub fn hits(&self, key: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Sets what `/delay` sleeps from now on.
    pub fn set_delay_ms(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }
}

fn hit(state: &ServerState, key: String) -> usize {
    let mut hits = state.hits.lock().unwrap();
    let entry = hits.entry(key).or_insert(0);
    *entry += 1;
    *entry
}

async fn latency(
    State(state): State<Arc<ServerState>>,
    UrlPath(key): UrlPath<String>,
) -> &'static str {
    let call = hit(&state, key);
    let ms = LATENCY_SEQUENCE_MS[(call - 1) % LATENCY_SEQUENCE_MS.len()];
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "ok"
}

async fn hang_counted(
    State(state): State<Arc<ServerState>>,
    UrlPath(key): UrlPath<String>,
) -> &'static str {
    hit(&state, key);
    tokio::time::sleep(Duration::from_secs(600)).await;
    "late"
}

async fn flaky(
    State(state): State<Arc<ServerState>>,
    UrlPath((key, failures)): UrlPath<(String, usize)>,
) -> (StatusCode, String) {
    let call = {
        let mut calls = state.calls.lock().unwrap();
        let entry = calls.entry(key).or_insert(0);
        *entry += 1;
        *entry
    };
    if call <= failures {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not yet (call {call})"),
        )
    } else {
        (StatusCode::OK, format!("ok on call {call}"))
    }
}

async fn slow(State(state): State<Arc<ServerState>>, UrlPath(ms): UrlPath<u64>) -> &'static str {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

async fn auth(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
) -> (StatusCode, &'static str) {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    state.seen_auth.lock().unwrap().push(value.clone());
    if value.starts_with("Bearer ") && value.len() > 7 {
        (StatusCode::OK, "authorized")
    } else {
        (StatusCode::UNAUTHORIZED, "missing token")
    }
}

/// A temporary folder holding a runbook and the artifacts of its runs.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `runbook.toml` (or another name) and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write runbook");
        path
    }

    pub fn artifacts(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }

    /// `runproof run <runbook> --artifacts <tmp>/artifacts [extra…]`
    pub fn run(&self, runbook: &Path, extra: &[&str]) -> Output {
        self.run_with_env(runbook, extra, &[])
    }

    pub fn run_with_env(&self, runbook: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = runproof();
        command
            .arg("run")
            .arg(runbook)
            .arg("--artifacts")
            .arg(self.artifacts())
            .args(extra);
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("run runproof")
    }
}

/// The bundle path printed on the last `bundle: ` line of a run.
pub fn bundle_path(output: &Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("bundle: "))
        .unwrap_or_else(|| {
            panic!(
                "no bundle line in stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    PathBuf::from(line.trim())
}

/// Every record of a bundle's journal.
pub fn events(bundle: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(bundle.join("events.jsonl")).expect("events.jsonl");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("journal line is JSON"))
        .collect()
}

/// Records of one type (and step, when given).
pub fn records<'a>(events: &'a [Value], kind: &str, step: Option<&str>) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && step.is_none_or(|s| e["step"] == s))
        .collect()
}

/// The `step.end` verdict of a step; `pass` for a sweep's compact
/// `step.pass` record (a pass on the first attempt).
pub fn verdict(events: &[Value], step: &str) -> String {
    if !records(events, "step.pass", Some(step)).is_empty() {
        return "pass".to_string();
    }
    records(events, "step.end", Some(step))
        .first()
        .unwrap_or_else(|| panic!("no step.end for {step}"))["verdict"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Exit code, stdout and stderr for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `runproof verify <bundle>` exit code and output.
pub fn verify(bundle: &Path, extra: &[&str]) -> Output {
    runproof()
        .arg("verify")
        .arg(bundle)
        .args(extra)
        .output()
        .expect("run verify")
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A plain reqwest client for driving fixtures (reqwest has no process-wide
/// TLS provider, so `reqwest::Client::new()` would panic).
pub fn http_client() -> reqwest::Client {
    // ring, as runproof itself uses (deprecated upstream only for lacking
    // post-quantum key exchange).
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("a plain HTTP client builds")
}

/// Copies a bundle folder recursively into `to` (for tampering with a copy).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A size-limited tmpfs mounted for one test, unmounted when dropped.
pub struct SmallTmpfs(std::path::PathBuf);

impl SmallTmpfs {
    /// Mounts a `size` tmpfs at `dir`. Tests run as root in CI; where mount
    /// is not permitted the test fails with the reason, never skips.
    pub fn mount(dir: &std::path::Path, size: &str) -> SmallTmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "this test needs a size-limited tmpfs (run it as root): mount failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        SmallTmpfs(dir.to_path_buf())
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Free bytes of the file system holding `dir`.
pub fn free_bytes(dir: &std::path::Path) -> u64 {
    let output = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .expect("run df");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the free bytes")
}
