//! `runproof demo`: runs `runbooks/demo.toml` (built into the binary) against
//! a stand-in service that runproof starts on 127.0.0.1, then verifies the
//! bundle it wrote. No credentials, no network.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::args::DemoArgs;
use super::run::{apply_vars, execute};
use super::CliError;
use crate::cli::exit::ExitStatus;
use crate::engine::RunOptions;
use crate::evidence::{verify_bundle, VerifyOptions};
use crate::runbook::load_runbook_str;

/// The demo runbook, as shipped in the repository.
const DEMO_RUNBOOK: &str = include_str!("../../runbooks/demo.toml");
const DEMO_RUNBOOK_PATH: &str = "runbooks/demo.toml";

pub async fn demo(args: DemoArgs) -> Result<ExitStatus, CliError> {
    let token = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let addr = start_stand_in(token.clone()).await.map_err(|e| {
        CliError::internal(format!("cannot start the demo service on 127.0.0.1: {e}"))
    })?;

    let mut runbook = load_runbook_str(Path::new(DEMO_RUNBOOK_PATH), DEMO_RUNBOOK)
        .map_err(|e| CliError::internal(format!("the built-in demo runbook is invalid: {e}")))?;
    apply_vars(
        &mut runbook,
        &[("base".to_string(), format!("http://{addr}"))],
    )?;
    let env = move |name: &str| {
        if name == "DEMO_API_TOKEN" {
            Some(token.clone())
        } else {
            std::env::var(name).ok()
        }
    };
    out!("runproof demo: a stand-in service is listening on http://{addr}");
    out!("runproof demo: running {DEMO_RUNBOOK_PATH}; expect a pass, a pass after retries, an escalation, a blocked and a skipped step\n");

    let finished = execute(
        &runbook,
        &RunOptions::default(),
        &env,
        &args.artifacts,
        false,
        &super::provenance::resolve(&Default::default(), Vec::new())?,
    )
    .await?;
    if finished.status == ExitStatus::Interrupted {
        return Ok(ExitStatus::Interrupted);
    }

    out!(
        "\nrunproof demo: verifying the bundle offline, as QA would (runproof verify {})",
        finished.bundle.display()
    );
    let mut report = verify_bundle(&finished.bundle, &VerifyOptions::default());
    crate::session::audit::audit_reports(&mut report);
    out!("{}", report.render_text());
    if report.is_valid() {
        out!(
            "\nThe escalation above is part of the demo. Open {}/summary.md for the report.",
            finished.bundle.display()
        );
        Ok(ExitStatus::Success)
    } else {
        Ok(ExitStatus::VerifyFailed)
    }
}

struct StandIn {
    token: String,
    flaky_calls: AtomicU32,
}

/// Starts the stand-in service on a free loopback port.
async fn start_stand_in(token: String) -> std::io::Result<SocketAddr> {
    let state = Arc::new(StandIn {
        token,
        flaky_calls: AtomicU32::new(0),
    });
    let app = Router::new()
        .route(
            "/health",
            get(|| async { Json(json!({"status": "ok", "version": "1.4.2"})) }),
        )
        .route("/flaky", get(flaky))
        .route("/api/notes", post(create_note))
        .route("/api/notes/{id}", get(read_note))
        .route(
            "/payments/health",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "payments provider unreachable"})),
                )
            }),
        )
        .route("/checkout", get(|| async { "checkout ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn flaky(State(state): State<Arc<StandIn>>) -> (StatusCode, &'static str) {
    if state.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 {
        (StatusCode::SERVICE_UNAVAILABLE, "cache cold, still loading")
    } else {
        (StatusCode::OK, "cache warm")
    }
}

fn authorized(state: &StandIn, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(state.token.as_str())
}

async fn create_note(
    State(state): State<Arc<StandIn>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&state, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid token"})),
        );
    }
    (
        StatusCode::CREATED,
        Json(json!({"id": 7, "content": body["content"]})),
    )
}

async fn read_note(
    State(state): State<Arc<StandIn>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<u32>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&state, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid token"})),
        );
    }
    if id != 7 {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such note"})),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"id": 7, "content": "runproof demo note"})),
    )
}
