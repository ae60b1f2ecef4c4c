//! A fixture Supabase gateway on loopback with the documented 401 bodies
//! (reference: platforms.md §B2).

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The key that works everywhere (a secret key).
pub const SECRET_KEY: &str = "sb_secret_canaryGOOD123";
/// A publishable key: fine for tables, refused on `admin_only`.
pub const PUBLISHABLE_KEY: &str = "sb_publishable_canaryPUB456";

pub struct SupabaseFixture {
    pub url: String,
    /// `Authorization` headers received (there should be none for sb_ keys).
    pub authorizations: Arc<Mutex<Vec<String>>>,
}

pub async fn start() -> SupabaseFixture {
    let authorizations = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/auth/v1/health", get(health))
        .route("/rest/v1/{table}", get(table))
        .with_state(authorizations.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    SupabaseFixture {
        url,
        authorizations,
    }
}

fn key_problem(
    headers: &HeaderMap,
    log: &Mutex<Vec<String>>,
) -> Result<String, (StatusCode, Json<Value>)> {
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        log.lock().unwrap().push(auth.to_string());
    }
    let key = headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match key {
        "" => Err((
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"message": "No API key found in request", "hint": "No `apikey` request header or url param was found."}),
            ),
        )),
        SECRET_KEY | PUBLISHABLE_KEY => Ok(key.to_string()),
        k if k.starts_with("sb_") => Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Invalid API key", "hint": "Double check your API key."})),
        )),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."}),
            ),
        )),
    }
}

async fn health(
    State(log): State<Arc<Mutex<Vec<String>>>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    match key_problem(&headers, &log) {
        Ok(_) => (
            StatusCode::OK,
            Json(
                json!({"version": "v2.170.0", "name": "GoTrue", "description": "GoTrue is a user registration and authentication API"}),
            ),
        ),
        Err(rejected) => rejected,
    }
}

async fn table(
    State(log): State<Arc<Mutex<Vec<String>>>>,
    Path(table): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let key = match key_problem(&headers, &log) {
        Ok(key) => key,
        Err(rejected) => return rejected,
    };
    match table.as_str() {
        "admin_only" if key == PUBLISHABLE_KEY => (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"message": "Secret API key required", "hint": "Use a secret key for this endpoint."}),
            ),
        ),
        "accounts" | "admin_only" => (StatusCode::OK, Json(json!([{"id": 1}]))),
        _ => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"code": "PGRST205", "message": format!("Could not find the table 'public.{table}' in the schema cache")}),
            ),
        ),
    }
}
