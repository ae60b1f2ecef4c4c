//! A stand-in for Chatwoot's Application API on loopback: exactly the routes
//! `runbooks/chatwoot-api-flow.toml` uses (profile, create conversation, get
//! conversation, create message, assign), in Chatwoot's documented shapes
//! (docs: shared reference platforms.md C1), checking `api_access_token` the
//! way Chatwoot does. Each created message is then delivered as a signed
//! `message_created` webhook (C2), as Chatwoot's job queue does; a delivery
//! nobody receives is dropped, as Chatwoot's account webhooks drop it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The one account, inbox, contact and agent the stand-in knows.
pub const ACCOUNT_ID: u64 = 1;
pub const INBOX_ID: u64 = 3;
pub const CONTACT_ID: u64 = 208;
pub const AGENT_ID: u64 = 12;
/// The display id of the first conversation created.
pub const FIRST_CONVERSATION: u64 = 57;

/// What the stand-in saw and what it holds.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// Every request, `METHOD /path`, in order (unauthorized ones too).
    pub requests: Vec<String>,
    /// Requests refused for a missing or wrong `api_access_token`.
    pub unauthorized: usize,
    /// Conversations created, by display id.
    pub conversations: Vec<u64>,
    /// Messages created through the messages API: (conversation, content, private).
    pub messages: Vec<(u64, String, bool)>,
    /// Assignments made: (conversation, assignee id).
    pub assignments: Vec<(u64, u64)>,
    /// Webhook deliveries sent and the receiver's status (None: not received).
    pub deliveries: Vec<Option<u16>>,
}

/// A running stand-in; it lives as long as the runtime it was started on.
pub struct ChatwootApi {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
}

impl ChatwootApi {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of what was seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Api {
    token: &'static str,
    secret: &'static str,
    webhook: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    /// The conversations created so far.
    state: Arc<Mutex<Vec<Conversation>>>,
}

#[derive(Clone)]
struct Conversation {
    id: u64,
    assignee: Option<u64>,
    messages: Vec<Value>,
    created_at: i64,
}

type Reply = (StatusCode, Json<Value>);

/// Starts the stand-in. `token` is the only accepted `api_access_token`;
/// every created message is delivered, signed with `secret`, to
/// `http://{webhook}/chatwoot`.
pub async fn start(token: &'static str, secret: &'static str, webhook: SocketAddr) -> ChatwootApi {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let api = Api {
        token,
        secret,
        webhook,
        seen: seen.clone(),
        state: Arc::default(),
    };
    let app = Router::new()
        .route("/api/v1/profile", get(profile))
        .route(
            "/api/v1/accounts/{account}/conversations",
            post(create_conversation),
        )
        .route(
            "/api/v1/accounts/{account}/conversations/{id}",
            get(conversation),
        )
        .route(
            "/api/v1/accounts/{account}/conversations/{id}/messages",
            post(create_message),
        )
        .route(
            "/api/v1/accounts/{account}/conversations/{id}/assignments",
            post(assign),
        )
        .layer(middleware::from_fn_with_state(
            api.clone(),
            log_and_authorize,
        ))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    ChatwootApi { addr, seen }
}

/// Records the request, then answers Chatwoot's 401s: devise's when the
/// header is missing, `Invalid Access Token` when it is wrong.
async fn log_and_authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let line = format!("{} {}", request.method(), request.uri().path());
    api.seen.lock().unwrap().requests.push(line);
    let refusal = match request.headers().get("api_access_token") {
        None => Some(json!({"errors": ["You need to sign in or sign up before continuing."]})),
        Some(value) if value.as_bytes() != api.token.as_bytes() => {
            Some(json!({"error": "Invalid Access Token"}))
        }
        Some(_) => None,
    };
    if let Some(body) = refusal {
        api.seen.lock().unwrap().unauthorized += 1;
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    next.run(request).await
}

fn not_found() -> Reply {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "Resource could not be found"})),
    )
}

fn unprocessable(message: &str, attribute: &str) -> Reply {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"message": message, "attributes": [attribute]})),
    )
}

/// An id as Rails casts it from JSON: a number or a decimal string.
fn id_of(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

fn agent() -> Value {
    json!({
        "id": AGENT_ID, "account_id": ACCOUNT_ID, "availability_status": "online",
        "auto_offline": true, "confirmed": true, "email": "qa-agent@example.com",
        "available_name": "QA Agent", "name": "QA Agent", "role": "agent",
        "thumbnail": "", "custom_role_id": null
    })
}

fn contact() -> Value {
    json!({
        "additional_attributes": {}, "availability_status": "offline",
        "email": "maria@example.com", "id": CONTACT_ID, "name": "Maria Lopez",
        "phone_number": null, "identifier": null, "thumbnail": "",
        "custom_attributes": {}, "last_activity_at": null, "created_at": 1767225588
    })
}

async fn profile(State(api): State<Api>) -> Reply {
    // Chatwoot's profile document carries the token itself.
    (
        StatusCode::OK,
        Json(json!({
            "id": AGENT_ID, "access_token": api.token, "account_id": ACCOUNT_ID,
            "available_name": "QA Agent", "avatar_url": "", "confirmed": true,
            "display_name": null, "message_signature": null, "email": "qa-agent@example.com",
            "hmac_identifier": "", "inviter_id": null, "name": "QA Agent", "provider": "email",
            "pubsub_token": "pst-1", "role": "agent", "ui_settings": {}, "uid": "qa-agent@example.com",
            "type": "User", "custom_attributes": {},
            "accounts": [{"id": ACCOUNT_ID, "name": "Acme Support", "status": "active",
                          "role": "agent", "availability": "online", "availability_status": "online",
                          "auto_offline": true, "custom_role_id": null, "custom_role": null}]
        })),
    )
}

/// Chatwoot's conversation JSON (`_conversation.json.jbuilder`).
fn conversation_json(c: &Conversation) -> Value {
    json!({
        "meta": {
            "sender": contact(), "channel": "Channel::Api",
            "assignee": c.assignee.map(|_| agent()), "team": null, "hmac_verified": false
        },
        "id": c.id, "messages": c.messages.last().cloned().into_iter().collect::<Vec<_>>(),
        "account_id": ACCOUNT_ID, "uuid": uuid::Uuid::new_v4().to_string(),
        "additional_attributes": {}, "agent_last_seen_at": 0, "assignee_last_seen_at": 0,
        "can_reply": true, "contact_last_seen_at": 0, "custom_attributes": {},
        "inbox_id": INBOX_ID, "labels": [], "muted": false, "snoozed_until": null,
        "status": "open", "created_at": c.created_at, "timestamp": c.created_at,
        "first_reply_created_at": null, "unread_count": 0,
        "last_non_activity_message": c.messages.last(), "last_activity_at": c.created_at,
        "priority": null, "waiting_since": 0, "sla_policy_id": null
    })
}

fn message_json(id: u64, conversation: u64, content: &str, private: bool, now: i64) -> Value {
    json!({
        "id": id, "content": content, "inbox_id": INBOX_ID, "echo_id": null,
        "conversation_id": conversation, "message_type": 1, "content_type": "text",
        "content_attributes": {}, "created_at": now, "private": private,
        "sender": {"id": AGENT_ID, "name": "QA Agent", "available_name": "QA Agent",
                   "avatar_url": "", "type": "user", "availability_status": "online", "thumbnail": ""}
    })
}

async fn create_conversation(
    State(api): State<Api>,
    Path(account): Path<u64>,
    body: String,
) -> Reply {
    if account != ACCOUNT_ID {
        return not_found();
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return unprocessable("Invalid JSON", "body");
    };
    if id_of(&body["inbox_id"]) != Some(INBOX_ID) {
        return unprocessable("Inbox must exist", "inbox_id");
    }
    if id_of(&body["contact_id"]) != Some(CONTACT_ID) {
        return unprocessable("Contact must exist", "contact_id");
    }
    let now = jiff::Timestamp::now().as_second();
    let mut state = api.state.lock().unwrap();
    let id = FIRST_CONVERSATION + state.len() as u64;
    let mut c = Conversation {
        id,
        assignee: None,
        messages: Vec::new(),
        created_at: now,
    };
    if let Some(content) = body["message"]["content"].as_str() {
        c.messages
            .push(message_json(9000 + id, id, content, false, now));
    }
    let reply = conversation_json(&c);
    state.push(c);
    api.seen.lock().unwrap().conversations.push(id);
    (StatusCode::OK, Json(reply))
}

async fn conversation(State(api): State<Api>, Path((account, id)): Path<(u64, u64)>) -> Reply {
    let state = api.state.lock().unwrap();
    match state.iter().find(|c| c.id == id) {
        Some(c) if account == ACCOUNT_ID => (StatusCode::OK, Json(conversation_json(c))),
        _ => not_found(),
    }
}

async fn create_message(
    State(api): State<Api>,
    Path((account, id)): Path<(u64, u64)>,
    body: String,
) -> Reply {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return unprocessable("Invalid JSON", "body");
    };
    let content = body["content"].as_str().unwrap_or_default().to_string();
    let private = body["private"].as_bool().unwrap_or(false);
    match body["message_type"].as_str() {
        Some("outgoing") | Some("incoming") | None => {}
        Some(_) => {
            return unprocessable("Message type is not included in the list", "message_type")
        }
    }
    let now = jiff::Timestamp::now().as_second();
    let message = {
        let mut state = api.state.lock().unwrap();
        let Some(c) = state
            .iter_mut()
            .find(|c| c.id == id)
            .filter(|_| account == ACCOUNT_ID)
        else {
            return not_found();
        };
        let message_id = 9100 + c.messages.len() as u64 + 100 * (id - FIRST_CONVERSATION);
        let message = message_json(message_id, id, &content, private, now);
        c.messages.push(message.clone());
        message
    };
    api.seen
        .lock()
        .unwrap()
        .messages
        .push((id, content.clone(), private));
    tokio::spawn(deliver(
        api.clone(),
        id,
        message["id"].as_u64().unwrap(),
        content,
        private,
    ));
    (StatusCode::OK, Json(message))
}

async fn assign(
    State(api): State<Api>,
    Path((account, id)): Path<(u64, u64)>,
    body: String,
) -> Reply {
    let body = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
    let mut state = api.state.lock().unwrap();
    let Some(c) = state
        .iter_mut()
        .find(|c| c.id == id)
        .filter(|_| account == ACCOUNT_ID)
    else {
        return not_found();
    };
    match id_of(&body["assignee_id"]) {
        Some(AGENT_ID) => {
            c.assignee = Some(AGENT_ID);
            api.seen.lock().unwrap().assignments.push((id, AGENT_ID));
            (StatusCode::OK, Json(agent()))
        }
        Some(_) => not_found(),
        // Neither assignee_id nor team_id: Chatwoot answers `null`.
        None => (StatusCode::OK, Json(Value::Null)),
    }
}

/// Delivers a signed `message_created` (Chatwoot's `Message#webhook_data`
/// shape, `message_type` as a string) shortly after the message was saved.
async fn deliver(api: Api, conversation: u64, message_id: u64, content: String, private: bool) {
    tokio::time::sleep(Duration::from_millis(30)).await;
    let now = jiff::Timestamp::now();
    let body = json!({
        "account": {"id": ACCOUNT_ID, "name": "Acme Support"},
        "additional_attributes": {}, "content_attributes": {}, "content_type": "text",
        "content": content,
        "conversation": {"id": conversation, "inbox_id": INBOX_ID, "status": "open",
                         "channel": "Channel::Api", "can_reply": true, "labels": [],
                         "meta": {"sender": contact(), "assignee": null, "team": null, "hmac_verified": false}},
        "created_at": crate::support::api::webhook::iso_millis(now),
        "id": message_id, "inbox": {"id": INBOX_ID, "name": "Support API"},
        "message_type": "outgoing", "private": private,
        "sender": {"id": AGENT_ID, "name": "QA Agent", "email": "qa-agent@example.com", "type": "user"},
        "source_id": null, "event": "message_created"
    })
    .to_string();
    let timestamp = now.as_second().to_string();
    let signature =
        crate::support::api::webhook::sign(api.secret.as_bytes(), &timestamp, body.as_bytes());
    let sent = super::http_client()
        .post(format!("http://{}/chatwoot", api.webhook))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .header("X-Chatwoot-Signature", signature)
        .header("X-Chatwoot-Timestamp", timestamp)
        .header("X-Chatwoot-Delivery", uuid::Uuid::new_v4().to_string())
        .timeout(Duration::from_secs(5))
        .body(body)
        .send()
        .await;
    let status = sent.ok().map(|r| r.status().as_u16());
    api.seen.lock().unwrap().deliveries.push(status);
}
