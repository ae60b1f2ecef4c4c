//! The delivery receiver: an axum server that verifies each Chatwoot delivery,
//! deduplicates on `X-Chatwoot-Delivery`, limits body size, and hands every
//! delivery (accepted or not) to its owner as a [`Delivery`]. The main type
//! here is [`Listener`]; the `listen` session records what it hands over.
//!
//! Answers: `200` valid; `401` bad, missing or stale signature; `409` a
//! delivery id already accepted (a replay: Chatwoot's own retries reuse the id,
//! but only after a failed attempt, and never on a 409); `405` not a POST;
//! `413` body over the limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::signature::{self, DEFAULT_MAX_AGE};
use super::{HEADER_DELIVERY, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::core::record::Event;
use crate::core::{BlobRef, BlobSink};

/// Default body limit: Chatwoot payloads are a few KiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// How the receiver judges deliveries. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ListenerConfig {
    secret: Vec<u8>,
    /// The replay window.
    pub max_age: Duration,
    /// Larger bodies are answered 413.
    pub max_body: usize,
}

impl ListenerConfig {
    /// A configuration with the default window (300 s) and body limit (1 MiB).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        ListenerConfig {
            secret: secret.into(),
            max_age: DEFAULT_MAX_AGE,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl std::fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("secret", &"[REDACTED]")
            .field("max_age", &self.max_age)
            .field("max_body", &self.max_body)
            .finish()
    }
}

/// One request the receiver answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub delivery_id: Option<String>,
    /// Whether it was answered 200.
    pub accepted: bool,
    /// The status the receiver answered.
    pub status: u16,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub method: String,
    pub path: String,
    /// The payload's `event`.
    pub event: Option<String>,
    /// The conversation's display id.
    pub conversation_id: Option<u64>,
    /// The message id (message events only).
    pub message_id: Option<u64>,
    pub received_at: jiff::Timestamp,
    /// Receipt minus the payload's `created_at`.
    pub latency_ms_since_created_at: Option<i64>,
    /// Receipt minus `X-Chatwoot-Timestamp` (whole seconds, so ±1 s).
    pub latency_ms_since_timestamp: Option<i64>,
    /// The raw body (empty when it was over the limit).
    pub body: Vec<u8>,
    /// Whether the body was over the limit and dropped.
    pub body_truncated: bool,
}

impl Delivery {
    /// `accepted` or `rejected`, as in the journal.
    pub fn verdict(&self) -> &'static str {
        if self.accepted {
            "accepted"
        } else {
            "rejected"
        }
    }

    /// Whether this is an accepted delivery of `event` whose body contains `contains`.
    pub fn matches(&self, event: &str, contains: Option<&str>) -> bool {
        self.accepted
            && self.event.as_deref() == Some(event)
            && contains.is_none_or(|marker| body_contains(&self.body, marker))
    }

    /// Facts for the evidence record.
    pub fn detail(&self) -> Map<String, Value> {
        let mut detail = Map::new();
        detail.insert("method".into(), json!(self.method));
        detail.insert("path".into(), json!(self.path));
        detail.insert(
            "received_at".into(),
            json!(super::events::iso_millis(self.received_at)),
        );
        let optional = [
            ("event", self.event.clone().map(Value::from)),
            ("conversation_id", self.conversation_id.map(Value::from)),
            ("message_id", self.message_id.map(Value::from)),
            (
                "latency_ms_since_created_at",
                self.latency_ms_since_created_at.map(Value::from),
            ),
            (
                "latency_ms_since_timestamp",
                self.latency_ms_since_timestamp.map(Value::from),
            ),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                detail.insert(key.into(), value);
            }
        }
        detail.insert("body_bytes".into(), json!(self.body.len()));
        detail
    }

    /// The journal record for this delivery, with its stored body.
    pub fn to_event(&self, blobs: Vec<BlobRef>) -> Event {
        Event::Delivery {
            delivery_id: self.delivery_id.clone(),
            verdict: self.verdict().to_string(),
            status: self.status,
            reason: self.reason.clone(),
            detail: self.detail(),
            blobs,
        }
    }

    /// Stores the body through `sink` (nothing for an empty body).
    pub fn store_body(&self, sink: &dyn BlobSink) -> std::io::Result<Vec<BlobRef>> {
        if self.body.is_empty() && !self.body_truncated {
            return Ok(Vec::new());
        }
        Ok(vec![sink.put(
            "request.body",
            &self.body,
            self.body_truncated,
        )?])
    }
}

/// Whether the body holds `marker`, either verbatim or inside a JSON string
/// (where Rails may have escaped `<`, `>`, `&`).
fn body_contains(body: &[u8], marker: &str) -> bool {
    if body
        .windows(marker.len().max(1))
        .any(|w| w == marker.as_bytes())
    {
        return true;
    }
    fn walk(value: &Value, marker: &str) -> bool {
        match value {
            Value::String(s) => s.contains(marker),
            Value::Array(items) => items.iter().any(|v| walk(v, marker)),
            Value::Object(map) => map.values().any(|v| walk(v, marker)),
            _ => false,
        }
    }
    serde_json::from_slice::<Value>(body).is_ok_and(|v| walk(&v, marker))
}

/// What [`Listener::wait_for`] saw.
#[derive(Debug, Clone, Default)]
pub struct WaitResult {
    /// The first matching delivery, if one arrived in time.
    pub matched: Option<Delivery>,
    /// Every other delivery received meanwhile, in order.
    pub others: Vec<Delivery>,
}

impl WaitResult {
    /// Why nothing matched, for a failure reason.
    pub fn explain_miss(&self, event: &str, contains: Option<&str>, waited: Duration) -> String {
        let wanted = match contains {
            Some(marker) => format!("a valid `{event}` delivery containing {marker:?}"),
            None => format!("a valid `{event}` delivery"),
        };
        let waited = crate::core::duration::format_duration(waited);
        if self.others.is_empty() {
            return format!("no delivery arrived within {waited} (waiting for {wanted})");
        }
        let rejected: Vec<String> = self
            .others
            .iter()
            .filter(|d| !d.accepted)
            .map(|d| {
                format!(
                    "{} ({})",
                    d.status,
                    d.reason.as_deref().unwrap_or("rejected")
                )
            })
            .collect();
        let accepted: Vec<String> = self
            .others
            .iter()
            .filter(|d| d.accepted)
            .map(|d| d.event.clone().unwrap_or_else(|| "no event".to_string()))
            .collect();
        let mut reason = format!("no {wanted} within {waited}");
        if !rejected.is_empty() {
            reason.push_str(&format!(
                "; {} invalid deliveries: {}",
                rejected.len(),
                rejected.join("; ")
            ));
        }
        if !accepted.is_empty() {
            reason.push_str(&format!(
                "; {} valid deliveries of other events or without the marker: {}",
                accepted.len(),
                accepted.join(", ")
            ));
        }
        reason
    }
}

/// A running receiver. Dropping it stops the server (the port is freed).
pub struct Listener {
    addr: SocketAddr,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    config: ListenerConfig,
    /// Accepted delivery ids and when they were first accepted.
    seen: Mutex<HashMap<String, jiff::Timestamp>>,
    deliveries: mpsc::UnboundedSender<Delivery>,
}

impl Listener {
    /// Binds `addr` (port 0 for any free port) and starts serving.
    pub async fn bind(addr: SocketAddr, config: ListenerConfig) -> std::io::Result<Listener> {
        let tcp = tokio::net::TcpListener::bind(addr).await?;
        let addr = tcp.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            seen: Mutex::new(HashMap::new()),
            deliveries: tx,
        });
        let router = Router::new().fallback(receive).with_state(shared);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stop_rx.await;
            };
            if let Err(err) = axum::serve(tcp, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!("webhook listener stopped: {err}");
            }
        });
        Ok(Listener {
            addr,
            deliveries: rx,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next delivery answered, accepted or not; `None` once stopped and drained.
    pub async fn next_delivery(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }

    /// A delivery already answered, without waiting.
    pub fn try_next_delivery(&mut self) -> Option<Delivery> {
        self.deliveries.try_recv().ok()
    }

    /// Waits up to `timeout` for an accepted delivery of `event` (containing
    /// `contains`, when given), collecting everything else seen meanwhile.
    pub async fn wait_for(
        &mut self,
        event: &str,
        contains: Option<&str>,
        timeout: Duration,
    ) -> WaitResult {
        let mut result = WaitResult::default();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.deliveries.recv()).await {
                Ok(Some(delivery)) if delivery.matches(event, contains) => {
                    result.matched = Some(delivery);
                    return result;
                }
                Ok(Some(delivery)) => result.others.push(delivery),
                Ok(None) | Err(_) => return result,
            }
        }
    }

    /// Stops accepting connections and waits (up to 5 s) for in-flight
    /// requests; deliveries already answered stay readable.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let received_at = jiff::Timestamp::now();
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut delivery = Delivery {
        delivery_id: header(HEADER_DELIVERY),
        accepted: false,
        status: 0,
        reason: None,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        event: None,
        conversation_id: None,
        message_id: None,
        received_at,
        latency_ms_since_created_at: None,
        latency_ms_since_timestamp: header(HEADER_TIMESTAMP)
            .and_then(|t| t.trim().parse::<i64>().ok())
            .map(|t| received_at.as_millisecond() - t * 1000),
        body: Vec::new(),
        body_truncated: false,
    };
    let (status, reason) = judge(&shared, &parts.method, &parts.headers, body, &mut delivery).await;
    delivery.status = status.as_u16();
    delivery.accepted = status == StatusCode::OK;
    delivery.reason = reason.clone();
    let answer = match &reason {
        None => json!({"status": "accepted", "delivery": delivery.delivery_id}),
        Some(reason) => json!({"status": "rejected", "error": reason}),
    };
    // The owner may have stopped listening; the answer stands regardless.
    let _ = shared.deliveries.send(delivery);
    (status, axum::Json(answer)).into_response()
}

/// Decides the answer; fills in what the body says along the way.
async fn judge(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
    delivery: &mut Delivery,
) -> (StatusCode, Option<String>) {
    let limit = shared.config.max_body;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(format!("body larger than the {limit}-byte limit")),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        delivery.body_truncated = true;
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            delivery.body_truncated = true;
            return too_large();
        }
    };
    delivery.body = bytes.to_vec();
    describe_payload(delivery);
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            Some(format!("method {method}: Chatwoot POSTs webhooks")),
        );
    }
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(err) = signature::verify(
        &shared.config.secret,
        get(HEADER_SIGNATURE),
        get(HEADER_TIMESTAMP),
        &delivery.body,
        delivery.received_at.as_second(),
        shared.config.max_age,
    ) {
        return (StatusCode::UNAUTHORIZED, Some(err.to_string()));
    }
    if let Some(id) = &delivery.delivery_id {
        let mut seen = shared
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(first) = seen.get(id) {
            return (
                StatusCode::CONFLICT,
                Some(format!(
                    "replayed delivery: id {id} was already accepted at {}",
                    super::events::iso_millis(*first)
                )),
            );
        }
        seen.insert(id.clone(), delivery.received_at);
    }
    (StatusCode::OK, None)
}

/// Reads event, ids and `created_at` from a Chatwoot payload, if it is one.
fn describe_payload(delivery: &mut Delivery) {
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(&delivery.body) else {
        return;
    };
    let event = payload
        .get("event")
        .and_then(Value::as_str)
        .map(str::to_string);
    let is_message = event.as_deref().is_some_and(|e| e.starts_with("message_"));
    if is_message {
        delivery.message_id = payload.get("id").and_then(Value::as_u64);
        delivery.conversation_id = payload
            .get("conversation")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_u64);
    } else if event
        .as_deref()
        .is_some_and(|e| e.starts_with("conversation_"))
    {
        delivery.conversation_id = payload.get("id").and_then(Value::as_u64);
    }
    // Message payloads carry an ISO time of the message; conversation payloads
    // carry the conversation's creation as Unix seconds, which only dates the
    // event for `conversation_created`.
    let created_ms = match payload.get("created_at") {
        Some(Value::String(text)) => text
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
        Some(Value::Number(n)) if event.as_deref() == Some("conversation_created") => {
            n.as_i64().map(|s| s * 1000)
        }
        _ => None,
    };
    delivery.latency_ms_since_created_at =
        created_ms.map(|ms| delivery.received_at.as_millisecond() - ms);
    delivery.event = event;
}
