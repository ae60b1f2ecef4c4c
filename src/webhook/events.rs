//! Built-in sample deliveries shaped as Chatwoot 4.x sends them (keys in
//! Chatwoot's order, compact Rails-style JSON). The main type here is
//! [`SampleEvent`]; [`sample_body`] renders one.
//!
//! Every sample carries the marker `runproof probe <run id>` (see
//! [`probe_marker`]) in its message content, so a receiver can tell probes
//! from real traffic. Output is deterministic for given [`SampleParams`].

use std::fmt;
use std::str::FromStr;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{json, Value};

/// An event runproof can produce a sample of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SampleEvent {
    #[default]
    MessageCreated,
    ConversationCreated,
    ConversationStatusChanged,
    ConversationUpdated,
}

/// Every sample event's name, as written in `event = "..."`.
pub const EVENT_NAMES: &[&str] = &[
    "message_created",
    "conversation_created",
    "conversation_status_changed",
    "conversation_updated",
];

/// Every event a Chatwoot webhook can subscribe to (`app/models/webhook.rb`).
pub const CHATWOOT_EVENTS: &[&str] = &[
    "conversation_status_changed",
    "conversation_updated",
    "conversation_created",
    "contact_created",
    "contact_updated",
    "message_created",
    "message_updated",
    "webwidget_triggered",
    "inbox_created",
    "inbox_updated",
    "conversation_typing_on",
    "conversation_typing_off",
];

impl SampleEvent {
    /// The name Chatwoot puts in the payload's `event` key.
    pub fn as_str(self) -> &'static str {
        match self {
            SampleEvent::MessageCreated => "message_created",
            SampleEvent::ConversationCreated => "conversation_created",
            SampleEvent::ConversationStatusChanged => "conversation_status_changed",
            SampleEvent::ConversationUpdated => "conversation_updated",
        }
    }
}

impl fmt::Display for SampleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SampleEvent {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "message_created" => SampleEvent::MessageCreated,
            "conversation_created" => SampleEvent::ConversationCreated,
            "conversation_status_changed" => SampleEvent::ConversationStatusChanged,
            "conversation_updated" => SampleEvent::ConversationUpdated,
            other => {
                return Err(format!(
                    "unknown webhook event `{other}`; runproof has samples of {}",
                    EVENT_NAMES.join(", ")
                ))
            }
        })
    }
}

/// The text that marks a delivery as a runproof probe of run `run_id`.
pub fn probe_marker(run_id: &str) -> String {
    format!("runproof probe {run_id}")
}

/// What varies between samples: the run (for the marker), the time and the ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleParams {
    pub run_id: String,
    /// When the event "happened": `created_at` of the message.
    pub at: jiff::Timestamp,
    pub account_id: u64,
    pub inbox_id: u64,
    pub contact_id: u64,
    /// The conversation's display id (what Chatwoot calls `id` in payloads).
    pub conversation_id: u64,
    pub message_id: u64,
}

impl SampleParams {
    /// Default ids (all 1) for run `run_id` at time `at`.
    pub fn new(run_id: impl Into<String>, at: jiff::Timestamp) -> Self {
        SampleParams {
            run_id: run_id.into(),
            at,
            account_id: 1,
            inbox_id: 1,
            contact_id: 1,
            conversation_id: 1,
            message_id: 1,
        }
    }
}

/// The raw body Chatwoot would POST for `event`.
pub fn sample_body(event: SampleEvent, params: &SampleParams) -> Vec<u8> {
    let node = match event {
        SampleEvent::MessageCreated => message_created(params),
        SampleEvent::ConversationCreated => conversation_event(params, event, None),
        SampleEvent::ConversationStatusChanged => conversation_event(
            params,
            event,
            Some(json!([{"status": {"previous_value": "open", "current_value": "resolved"}}])),
        ),
        SampleEvent::ConversationUpdated => conversation_event(
            params,
            event,
            Some(json!([{"custom_attributes": {
                "previous_value": {},
                "current_value": {"runproof_probe": params.run_id},
            }}])),
        ),
    };
    let text = serde_json::to_string(&node).expect("sample events serialize");
    rails_escape(&text).into_bytes()
}

/// Rails' `to_json` escapes these for HTML safety; inside JSON they can only
/// occur in strings, so replacing them in the serialized text is exact.
fn rails_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            other => out.push(other),
        }
    }
    out
}

/// `2026-01-01T00:00:00.000Z`, as Rails renders times in webhook payloads.
pub fn iso_millis(at: jiff::Timestamp) -> String {
    let ms = at.as_millisecond();
    let truncated = jiff::Timestamp::from_millisecond(ms).unwrap_or(at);
    format!(
        "{}.{:03}Z",
        truncated.strftime("%Y-%m-%dT%H:%M:%S"),
        ms.rem_euclid(1000)
    )
}

/// A JSON value whose object keys keep the order they were written in
/// (serde_json's own map sorts them unless its `preserve_order` is on).
enum Node {
    Leaf(Value),
    Object(Vec<(&'static str, Node)>),
    Array(Vec<Node>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Leaf(value) => value.serialize(serializer),
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

fn leaf(value: impl Into<Value>) -> Node {
    Node::Leaf(value.into())
}

fn empty() -> Node {
    Node::Leaf(json!({}))
}

fn account(p: &SampleParams) -> Node {
    Node::Object(vec![("id", leaf(p.account_id)), ("name", leaf("runproof"))])
}

/// The contact as 4.x puts it in a message's `sender`.
fn contact(p: &SampleParams, with_account: bool, legacy_type: bool) -> Node {
    let mut fields = Vec::new();
    if with_account {
        fields.push(("account", account(p)));
    }
    fields.extend([
        ("additional_attributes", empty()),
        ("avatar", leaf("")),
        ("custom_attributes", empty()),
        ("email", leaf(Value::Null)),
        ("id", leaf(p.contact_id)),
        ("identifier", leaf(Value::Null)),
        ("name", leaf("runproof probe")),
        ("phone_number", leaf(Value::Null)),
        ("thumbnail", leaf("")),
        ("blocked", leaf(false)),
    ]);
    if legacy_type {
        // Inside the conversation push payload the contact still carries `type`.
        fields.retain(|(key, _)| *key != "avatar");
        fields.push(("type", leaf("contact")));
    }
    Node::Object(fields)
}

/// The conversation push payload (times as Unix integers).
fn conversation(p: &SampleParams, status: &str) -> Node {
    let unix = p.at.as_second();
    let iso = iso_millis(p.at);
    let marker = probe_marker(&p.run_id);
    let message = Node::Object(vec![
        ("id", leaf(p.message_id)),
        ("content", leaf(marker)),
        ("account_id", leaf(p.account_id)),
        ("inbox_id", leaf(p.inbox_id)),
        ("conversation_id", leaf(p.conversation_id)),
        ("message_type", leaf(0)),
        ("created_at", leaf(unix)),
        ("updated_at", leaf(iso.clone())),
        ("private", leaf(false)),
        ("status", leaf("sent")),
        ("source_id", leaf(Value::Null)),
        ("content_type", leaf("text")),
        ("content_attributes", empty()),
        ("sender_type", leaf("Contact")),
        ("sender_id", leaf(p.contact_id)),
        ("external_source_ids", empty()),
        ("additional_attributes", empty()),
        ("sender", contact(p, false, true)),
    ]);
    Node::Object(vec![
        ("additional_attributes", empty()),
        ("can_reply", leaf(true)),
        ("channel", leaf("Channel::Api")),
        (
            "contact_inbox",
            Node::Object(vec![
                ("id", leaf(p.contact_id)),
                ("contact_id", leaf(p.contact_id)),
                ("inbox_id", leaf(p.inbox_id)),
                ("source_id", leaf(format!("runproof-{}", p.run_id))),
                ("created_at", leaf(iso.clone())),
                ("updated_at", leaf(iso)),
                ("hmac_verified", leaf(false)),
            ]),
        ),
        ("id", leaf(p.conversation_id)),
        ("inbox_id", leaf(p.inbox_id)),
        ("messages", Node::Array(vec![message])),
        ("labels", leaf(json!([]))),
        (
            "meta",
            Node::Object(vec![
                ("sender", contact(p, false, true)),
                ("assignee", leaf(Value::Null)),
                ("team", leaf(Value::Null)),
                ("hmac_verified", leaf(false)),
            ]),
        ),
        ("status", leaf(status)),
        ("custom_attributes", empty()),
        ("snoozed_until", leaf(Value::Null)),
        ("unread_count", leaf(1)),
        ("first_reply_created_at", leaf(Value::Null)),
        ("priority", leaf(Value::Null)),
        ("waiting_since", leaf(unix)),
        ("agent_last_seen_at", leaf(0)),
        ("contact_last_seen_at", leaf(0)),
        ("last_activity_at", leaf(unix)),
        ("timestamp", leaf(unix)),
        ("created_at", leaf(unix)),
    ])
}

fn message_created(p: &SampleParams) -> Node {
    Node::Object(vec![
        ("account", account(p)),
        ("additional_attributes", empty()),
        ("content_attributes", empty()),
        ("content_type", leaf("text")),
        ("content", leaf(probe_marker(&p.run_id))),
        ("conversation", conversation(p, "open")),
        ("created_at", leaf(iso_millis(p.at))),
        ("id", leaf(p.message_id)),
        (
            "inbox",
            Node::Object(vec![("id", leaf(p.inbox_id)), ("name", leaf("runproof"))]),
        ),
        ("message_type", leaf("incoming")),
        ("private", leaf(false)),
        ("sender", contact(p, true, false)),
        ("source_id", leaf(Value::Null)),
        ("event", leaf("message_created")),
    ])
}

/// Conversation events: the push payload, then `event`, then (for changes)
/// `changed_attributes`, as `WebhookListener` merges them.
fn conversation_event(p: &SampleParams, event: SampleEvent, changed: Option<Value>) -> Node {
    let status = match event {
        SampleEvent::ConversationStatusChanged => "resolved",
        _ => "open",
    };
    let Node::Object(mut fields) = conversation(p, status) else {
        unreachable!("conversation() builds an object")
    };
    fields.push(("event", leaf(event.as_str())));
    if let Some(changed) = changed {
        fields.push(("changed_attributes", leaf(changed)));
    }
    Node::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SampleParams {
        SampleParams::new(
            "0190aaaa-0000-7000-8000-000000000001",
            "2026-01-01T00:00:00.042Z".parse().unwrap(),
        )
    }

    #[test]
    fn message_created_keeps_chatwoot_key_order() {
        let body = String::from_utf8(sample_body(SampleEvent::MessageCreated, &params())).unwrap();
        assert!(body.starts_with(r#"{"account":{"id":1,"name":"runproof"},"additional_attributes":{},"content_attributes":{},"content_type":"text","content":"runproof probe 0190aaaa-0000-7000-8000-000000000001","conversation":{"additional_attributes":{}"#), "{body}");
        assert!(body.ends_with(r#""created_at":"2026-01-01T00:00:00.042Z","id":1,"inbox":{"id":1,"name":"runproof"},"message_type":"incoming","private":false,"sender":{"account":{"id":1,"name":"runproof"},"additional_attributes":{},"avatar":"","custom_attributes":{},"email":null,"id":1,"identifier":null,"name":"runproof probe","phone_number":null,"thumbnail":"","blocked":false},"source_id":null,"event":"message_created"}"#), "{body}");
        assert_eq!(
            body,
            String::from_utf8(sample_body(SampleEvent::MessageCreated, &params())).unwrap()
        );
    }

    #[test]
    fn every_event_parses_back_with_its_name_and_marker() {
        for name in EVENT_NAMES {
            let event: SampleEvent = name.parse().unwrap();
            let body = sample_body(event, &params());
            let value: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(value["event"], *name);
            assert!(String::from_utf8(body)
                .unwrap()
                .contains("runproof probe 0190aaaa"));
        }
        assert!("message_updated"
            .parse::<SampleEvent>()
            .unwrap_err()
            .contains("message_created"));
    }

    #[test]
    fn rails_escapes_html_characters() {
        let mut p = params();
        p.run_id = "<a&b>".to_string();
        let body = String::from_utf8(sample_body(SampleEvent::MessageCreated, &p)).unwrap();
        assert!(
            body.contains(r#""content":"runproof probe \u003ca\u0026b\u003e""#),
            "{body}"
        );
    }
}
