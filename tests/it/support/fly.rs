//! A fixture Fly Machines API on loopback, speaking the documented JSON
//! (reference: platforms.md §A1): get app, list machines, 401/403/404 bodies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// What the fixture saw.
#[derive(Default)]
pub struct Seen {
    /// Every Authorization header received, in order.
    pub authorizations: Vec<String>,
    /// Machine-list polls per app.
    pub polls: HashMap<String, u32>,
    /// Every request path as sent on the wire (before any decoding).
    pub raw_paths: Vec<String>,
}

pub struct FlyFixture {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

/// A deploy token as `fly tokens create deploy` mints it, without the scheme:
/// two macaroons, comma-separated.
pub const DEPLOY_TOKEN: &str = "fm2_canaryAAA,fm2_canaryBBB";
/// A read-only macaroon of the older `fm1r_` form.
pub const READONLY_TOKEN: &str = "fm1r_canaryREADONLY";
/// A personal (OAuth) token: not a macaroon.
pub const PERSONAL_TOKEN: &str = "fo1_canaryPERSONAL";

/// The exact `Authorization` values the fixture accepts — the ones runproof
/// must build (platforms.md §A1: `FlyV1` and the comma-separated parts for
/// macaroons, `Bearer` for anything else). Anything else, including a right
/// token under the wrong scheme or with a doubled scheme, is a 401.
pub const GOOD_AUTHORIZATIONS: &[&str] = &[
    "FlyV1 fm2_canaryAAA,fm2_canaryBBB",
    "FlyV1 fm1r_canaryREADONLY",
    "Bearer fo1_canaryPERSONAL",
];

pub async fn start() -> FlyFixture {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/v1/apps/{app}", get(get_app))
        .route("/v1/apps/{app}/machines", get(list_machines))
        .route("/v1/apps/{app}/secrets", get(list_secrets))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FlyFixture { url, seen }
}

type Reply = (StatusCode, [(&'static str, &'static str); 1], Json<Value>);

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, [("fly-request-id", "01FIXTURE")], Json(body))
}

/// Checks the raw path and the token the way the API would; `None` when
/// the request is accepted. A path that percent-encodes an RFC 3986
/// unreserved character (`%2D` for `-`) names no app: a real router may not
/// decode it, so the fixture answers 404 as for a wrong name.
fn reject(uri: &Uri, headers: &HeaderMap, seen: &Mutex<Seen>) -> Option<Reply> {
    let raw = uri.path().to_string();
    seen.lock().unwrap().raw_paths.push(raw.clone());
    if encodes_unreserved(&raw) {
        return Some(reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("app not found (path {raw} encodes an unreserved character)")}),
        ));
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.lock().unwrap().authorizations.push(auth.clone());
    if GOOD_AUTHORIZATIONS.contains(&auth.as_str()) {
        None
    } else {
        Some(reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid token"}),
        ))
    }
}

async fn get_app(
    State(seen): State<Arc<Mutex<Seen>>>,
    uri: Uri,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Reply {
    if let Some(rejected) = reject(&uri, &headers, &seen) {
        return rejected;
    }
    match app.as_str() {
        "other-org-app" => reply(StatusCode::FORBIDDEN, json!({"error": "unauthorized"})),
        name if machines_for(name, 0).is_some() => reply(
            StatusCode::OK,
            json!({"id": "jlyv9r5d56v18xrg", "name": name, "status": "deployed", "machine_count": 2,
                   "organization": {"name": "Acme", "slug": "acme"}}),
        ),
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "app not found"})),
    }
}

/// The app's secrets: names and digests, never values (as `fly secrets
/// list` shows them). `hotdash-chatwoot` lacks `REDIS_URL`.
async fn list_secrets(
    State(seen): State<Arc<Mutex<Seen>>>,
    uri: Uri,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Reply {
    if let Some(rejected) = reject(&uri, &headers, &seen) {
        return rejected;
    }
    if machines_for(&app, 0).is_none() {
        return reply(StatusCode::NOT_FOUND, json!({"error": "app not found"}));
    }
    reply(
        StatusCode::OK,
        json!({"secrets": [
            {"name": "SECRET_KEY_BASE", "digest": "5b1f0c2a9e", "created_at": "2026-11-20T10:00:00Z"},
            {"name": "DATABASE_URL", "digest": "9c3e7d11aa", "created_at": "2026-11-20T10:00:00Z"},
        ]}),
    )
}

async fn list_machines(
    State(seen): State<Arc<Mutex<Seen>>>,
    uri: Uri,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Reply {
    if let Some(rejected) = reject(&uri, &headers, &seen) {
        return rejected;
    }
    let poll = {
        let mut seen = seen.lock().unwrap();
        let count = seen.polls.entry(app.clone()).or_default();
        *count += 1;
        *count
    };
    match machines_for(&app, poll) {
        Some(machines) => reply(StatusCode::OK, Value::Array(machines)),
        None => reply(StatusCode::NOT_FOUND, json!({"error": "app not found"})),
    }
}

/// Whether `path` holds `%XX` for a letter, digit, `-`, `.`, `_` or `~`.
fn encodes_unreserved(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
    })
}

/// A Machine object shaped like the documented example.
pub fn machine(id: &str, group: &str, state: &str, checks: &[(&str, &str, &str)]) -> Value {
    json!({
        "id": id, "name": format!("{group}-{id}"), "state": state, "region": "ord",
        "image_ref": {"registry": "registry.fly.io", "repository": "hotdash-chatwoot", "tag": "deployment-01J0ABC",
                      "digest": "sha256:5615abcdef", "labels": {"fly.version": "7"}},
        "instance_id": "01J0XYZINSTANCE", "private_ip": "fdaa:0:18:a7b:196:e274:9ce1:2",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:05:26Z",
        "config": {"image": "registry.fly.io/hotdash-chatwoot:deployment-01J0ABC",
                   "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
                   "metadata": {"fly_platform_version": "v2", "fly_process_group": group, "fly_release_id": "Abc123",
                                "fly_release_version": "7", "fly_flyctl_version": "0.3.200"}},
        "events": [{"type": "start", "status": "started", "source": "flyd", "timestamp": 1767225926615u64}],
        "checks": checks.iter().map(|(name, status, output)| json!({
            "name": name, "status": status, "output": output, "updated_at": "2026-01-01T00:05:30.123Z"
        })).collect::<Vec<_>>(),
        "host_status": "ok"
    })
}

const HTTP_CHECK: &str = "servicecheck-00-http-3000";

/// The machines of each fixture app at the `poll`-th list request.
fn machines_for(app: &str, poll: u32) -> Option<Vec<Value>> {
    let ok = [(HTTP_CHECK, "passing", "Success")];
    Some(match app {
        "hotdash-chatwoot" => vec![
            machine("148e0001", "web", "started", &ok),
            machine("148e0002", "worker", "started", &[]),
            machine("148e0003", "worker", "destroyed", &[]),
        ],
        "stopped-worker" => vec![
            machine("148e0001", "web", "started", &ok),
            machine("148e0002", "worker", "stopped", &[]),
        ],
        "critical-check" => vec![
            machine(
                "148e0001",
                "web",
                "started",
                &[(
                    HTTP_CHECK,
                    "critical",
                    "Get \"http://172.19.0.2:3000/api\": connection refused",
                )],
            ),
            machine("148e0002", "worker", "started", &[]),
        ],
        "slow-start" => vec![
            machine(
                "148e0001",
                "web",
                if poll >= 3 { "started" } else { "starting" },
                &ok,
            ),
            machine("148e0002", "worker", "started", &[]),
        ],
        "failed-machine" => vec![
            machine("148e0001", "web", "started", &ok),
            machine("148e0002", "worker", "failed", &[]),
            machine("148e0003", "worker", "started", &[]),
        ],
        _ => return None,
    })
}
