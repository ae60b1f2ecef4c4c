//! A stand-in Chatwoot on loopback (health document, the messages API that
//! triggers a signed `message_created` delivery, as Chatwoot's job queue
//! does) and an insecure webhook receiver that accepts anything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A stand-in Chatwoot: `GET /api` answers the health document Chatwoot
/// serves; `POST /api/v1/accounts/1/conversations/57/messages` (with the
/// `api_access_token` given as `api_token`) answers 200 and, when `webhook` is given, then
/// delivers a signed `message_created` with the posted content there, the
/// way Chatwoot's job queue does.
pub async fn stand_in(
    webhook: Option<SocketAddr>,
    secret: &'static str,
    api_token: &'static str,
) -> SocketAddr {
    serve(webhook, secret, api_token, None, Arc::default()).await
}

/// Like [`stand_in`], but each accepted message is delivered `delay` later
/// (a slow job queue; a delivery nobody receives is dropped), and the
/// messages API counts its calls in the returned counter.
pub async fn slow_stand_in(
    webhook: SocketAddr,
    secret: &'static str,
    api_token: &'static str,
    delay: Duration,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = serve(Some(webhook), secret, api_token, Some(delay), calls.clone()).await;
    (addr, calls)
}

async fn serve(
    webhook: Option<SocketAddr>,
    secret: &'static str,
    api_token: &'static str,
    delay: Option<Duration>,
    calls: Arc<AtomicUsize>,
) -> SocketAddr {
    let app = Router::new()
        .route(
            "/api",
            get(|| async {
                Json(json!({
                    "version": "4.1.0",
                    "timestamp": "2026-01-01 00:05:30",
                    "queue_services": "ok",
                    "data_services": "ok"
                }))
            }),
        )
        .route(
            "/api/v1/accounts/1/conversations/57/messages",
            post(move |headers: HeaderMap, body: String| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if headers.get("api_access_token").map(|v| v.as_bytes())
                    != Some(api_token.as_bytes())
                {
                    return (
                        StatusCode::UNAUTHORIZED,
                        Json(json!({"error": "Invalid Access Token"})),
                    );
                }
                let content = serde_json::from_str::<Value>(&body).unwrap()["content"]
                    .as_str()
                    .unwrap()
                    .to_string();
                match (webhook, delay) {
                    (Some(webhook), None) => {
                        tokio::spawn(deliver(webhook, secret, content));
                    }
                    (Some(webhook), Some(delay)) => {
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = send(webhook, secret, content).await;
                        });
                    }
                    (None, _) => {}
                }
                (
                    StatusCode::OK,
                    Json(json!({"id": 9100, "conversation_id": 57})),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Posts a Chatwoot-signed `message_created` carrying `content` to `webhook`.
pub async fn deliver(webhook: SocketAddr, secret: &str, content: String) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = send(webhook, secret, content).await;
    assert!(sent.is_ok(), "delivery to {webhook}: {sent:?}");
}

/// Sends one signed `message_created` carrying `content` to `webhook`.
async fn send(
    webhook: SocketAddr,
    secret: &str,
    content: String,
) -> Result<reqwest::Response, reqwest::Error> {
    let now = jiff::Timestamp::now();
    let body = json!({
        "event": "message_created",
        "id": 9100,
        "content": content,
        "created_at": crate::support::api::webhook::iso_millis(now),
        "message_type": "outgoing",
        "private": false,
        "account": {"id": 1, "name": "Acme"},
        "conversation": {"id": 57}
    })
    .to_string();
    let timestamp = now.as_second().to_string();
    let signature =
        crate::support::api::webhook::sign(secret.as_bytes(), &timestamp, body.as_bytes());
    super::http_client()
        .post(format!("http://{webhook}/chatwoot"))
        .header("Content-Type", "application/json")
        .header("X-Chatwoot-Signature", signature)
        .header("X-Chatwoot-Timestamp", timestamp)
        .header("X-Chatwoot-Delivery", uuid::Uuid::new_v4().to_string())
        .body(body)
        .send()
        .await
}

/// A webhook endpoint that answers 200 to anything: the insecure receiver.
pub async fn accept_everything() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(|| async { (StatusCode::OK, "thanks") });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
