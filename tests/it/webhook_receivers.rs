//! The `webhook` and `webhook-delivery` checks and the delivery listener,
//! against real HTTP servers on 127.0.0.1 (random ports).

use std::time::Duration;

use crate::support::api::check::{CheckSpec, Clients, Failure, FailureClass, Observation, Outcome};
use crate::support::api::webhook::sign;
use crate::support::api::webhook::{listen_command, ListenArgs};
use crate::support::api::webhook::{sample_body, SampleEvent, SampleParams};
use crate::support::api::webhook::{Listener, ListenerConfig};
use crate::support::free_port;
use crate::support::probe::{self as support, context, MapScope, MemoryBlobs};

const CANARY: &str = "canary-Wh00k-secret-7d1e";

fn spec(kind: &str, toml_text: &str) -> CheckSpec {
    // The document deserializer keeps spans, which templates record.
    let de = toml::Deserializer::parse(toml_text).unwrap();
    CheckSpec::deserialize_kind(kind, de).unwrap().unwrap()
}

/// Everything a probe produced, as text: for canary checks.
fn observation_text(obs: &Observation, blobs: &MemoryBlobs) -> String {
    let probes: Vec<_> = obs
        .probes
        .iter()
        .map(|p| serde_json::Value::Object(p.detail.clone()))
        .collect();
    format!(
        "{:?}\n{}\n{probes:?}\n{}",
        obs.outcome,
        serde_json::Value::Object(obs.detail.clone()),
        blobs.all_text()
    )
}

fn reason(obs: &Observation) -> &str {
    match &obs.outcome {
        Outcome::Pass => "",
        Outcome::Fail(failure) => &failure.message,
    }
}

fn webhook_spec(addr: std::net::SocketAddr, expect: &str) -> CheckSpec {
    spec(
        "webhook",
        &format!(
            r#"
url = "http://{addr}/webhooks/chatwoot"
secret = "{{{{secret:CW}}}}"
expect = {{ {expect} }}
"#
        ),
    )
}

#[tokio::test]
async fn webhook_check_passes_against_a_verifying_receiver() {
    let mut receiver = Listener::bind("127.0.0.1:0".parse().unwrap(), ListenerConfig::new(CANARY))
        .await
        .unwrap();
    let check = webhook_spec(
        receiver.local_addr(),
        r#"status = [200, 202], max_latency = "5s", rejects_unsigned = true, rejects_bad_signature = true, rejects_stale = true"#,
    );
    assert_eq!(check.kind(), "webhook");
    assert!(check.validate().is_empty(), "{:?}", check.validate());
    let scope = MapScope::with_secret("CW", CANARY);
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(5)))
        .await;
    assert!(obs.passed(), "{:?}", obs.outcome);

    // Each probe is its own record, with its own response body.
    let statuses: Vec<(String, u64)> = obs
        .probes
        .iter()
        .map(|p| (p.name.clone(), p.detail["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("signed".into(), 200),
            ("unsigned".into(), 401),
            ("bad_signature".into(), 401),
            ("stale".into(), 401)
        ]
    );
    assert_eq!(
        blobs.roles(),
        [
            "response.body",
            "unsigned.response.body",
            "bad_signature.response.body",
            "stale.response.body"
        ]
    );
    assert!(obs.probes.iter().all(|p| p.blobs.len() == 1));
    assert_eq!(
        obs.detail["probes"],
        serde_json::json!(["signed", "unsigned", "bad_signature", "stale"])
    );

    // The receiver saw a real sample with the run's marker, then three rejections.
    let signed = receiver.next_delivery().await.unwrap();
    assert!(signed.accepted);
    assert_eq!(signed.event.as_deref(), Some("message_created"));
    assert!(String::from_utf8_lossy(&signed.body)
        .contains(&format!("runproof probe {}", support::RUN_ID)));
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let d = receiver.next_delivery().await.unwrap();
        assert!(!d.accepted);
        reasons.push(d.reason.unwrap());
    }
    assert!(
        reasons[0].contains("missing X-Chatwoot-Signature"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("wrong signature"), "{reasons:?}");
    assert!(reasons[2].contains("stale timestamp"), "{reasons:?}");

    assert!(!observation_text(&obs, &blobs).contains(CANARY));
}

#[tokio::test]
async fn webhook_check_names_each_probe_an_accept_all_endpoint_accepted() {
    let addr = crate::support::chatwoot::accept_everything().await;
    let check = webhook_spec(
        addr,
        "rejects_unsigned = true, rejects_bad_signature = true, rejects_stale = true",
    );
    let scope = MapScope::with_secret("CW", CANARY);
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(5)))
        .await;
    let Outcome::Fail(Failure {
        message: reason,
        permanent,
        class,
    }) = &obs.outcome
    else {
        panic!("an accept-all endpoint must fail: {:?}", obs.detail)
    };
    assert!(permanent.is_some());
    assert_eq!(*class, FailureClass::Security);
    assert!(
        reason.contains("SECURITY: the endpoint accepted an unsigned delivery"),
        "{reason}"
    );
    assert!(reason.contains("probe `unsigned`"), "{reason}");
    assert!(reason.contains("probe `bad_signature`"), "{reason}");
    assert!(reason.contains("probe `stale`"), "{reason}");
    assert_eq!(obs.detail["security_findings"].as_array().unwrap().len(), 3);
    assert!(!observation_text(&obs, &blobs).contains(CANARY));

    // Only the unsigned probe asked for: only it is named.
    let check = webhook_spec(addr, "rejects_unsigned = true");
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(5)))
        .await;
    assert!(reason_of(&obs).contains("probe `unsigned`"));
    assert!(!reason_of(&obs).contains("bad_signature"));

    // Without rejects_* expectations the same endpoint passes.
    let check = webhook_spec(addr, "status = 200");
    assert!(check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(5)))
        .await
        .passed());
}

fn reason_of(obs: &Observation) -> String {
    reason(obs).to_string()
}

#[tokio::test]
async fn webhook_check_against_a_down_endpoint_fails_with_a_reason() {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let check = webhook_spec(addr, "rejects_unsigned = true");
    let scope = MapScope::with_secret("CW", CANARY);
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(3)))
        .await;
    let Outcome::Fail(Failure {
        message: reason,
        permanent,
        class,
    }) = &obs.outcome
    else {
        panic!("must fail")
    };
    assert_eq!(*class, FailureClass::Refused);
    assert!(
        permanent.is_none(),
        "a down endpoint may come back: retryable"
    );
    assert!(reason.contains("connection failed"), "{reason}");
    assert!(reason.contains("/webhooks/chatwoot"), "{reason}");
    // The rejection probes are not sent to an endpoint that does not answer.
    assert_eq!(obs.probes.len(), 1);
    assert!(!observation_text(&obs, &blobs).contains(CANARY));
}

#[tokio::test]
async fn webhook_check_wrong_secret_fails_with_a_hint() {
    let receiver = Listener::bind(
        "127.0.0.1:0".parse().unwrap(),
        ListenerConfig::new("the-real-secret"),
    )
    .await
    .unwrap();
    let check = webhook_spec(receiver.local_addr(), "");
    let scope = MapScope::with_secret("CW", CANARY);
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(3)))
        .await;
    let reason = reason_of(&obs);
    assert!(
        reason.contains("got status 401, expected a 2xx"),
        "{reason}"
    );
    assert!(reason.contains("wrong secret"), "{reason}");
    assert!(
        matches!(&obs.outcome, Outcome::Fail(f) if f.class == FailureClass::Auth),
        "{:?}",
        obs.outcome
    );
    // The receiver's answer (its reason) is kept as a blob.
    assert!(
        blobs.all_text().contains("wrong signature"),
        "{}",
        blobs.all_text()
    );
}

#[tokio::test]
async fn webhook_check_caps_a_huge_response_body() {
    let server = crate::support::hostile::huge_body_server().await;
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    // The unsigned probe is accepted too: a security finding, with both bodies cut.
    let check = webhook_spec(addr, "rejects_unsigned = true");
    let scope = MapScope::with_secret("CW", CANARY);
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(10)))
        .await;
    assert!(
        matches!(&obs.outcome, Outcome::Fail(f) if f.class == FailureClass::Security),
        "{:?}",
        obs.outcome
    );
    let stored = blobs.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 2, "{:?}", blobs.roles());
    for (role, bytes) in stored.iter() {
        assert!(
            !bytes.is_empty() && bytes.len() <= 64 * 1024,
            "{role}: {}",
            bytes.len()
        );
    }
    for probe in &obs.probes {
        assert!(
            probe.blobs.iter().all(|b| b.truncated),
            "{}: {:?}",
            probe.name,
            probe.blobs
        );
    }
    // The client hung up long before the 64 MiB were sent: it did not read them.
    for written in server.written_by(2).await {
        assert!(
            written < crate::support::hostile::HUGE_BODY / 2,
            "{written} bytes were taken"
        );
    }
}

#[test]
fn webhook_check_validation() {
    let bad = spec(
        "webhook",
        "url = \"ftp://x/\"\nsecret = \"literal\"\nevent = \"message_updated\"\n",
    );
    let problems: Vec<String> = bad.validate().into_iter().map(|(m, _)| m).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("http or https"));
    assert!(problems[1].contains("unknown webhook event `message_updated`"));
    assert!(problems[2].contains("{{secret:NAME}}"));
    let templated = spec(
        "webhook",
        "url = \"{{base}}/hook\"\nsecret = \"{{secret:CW}}\"\nevent = \"conversation_updated\"\n",
    );
    assert!(templated.validate().is_empty());
    assert_eq!(
        templated.target(),
        "POST {{base}}/hook (conversation_updated)"
    );
    assert!(
        crate::support::api::check::KINDS.contains(&"webhook")
            && crate::support::api::check::KINDS.contains(&"webhook-delivery")
    );
}

// ---------------------------------------------------------------- listener

struct Post {
    body: Vec<u8>,
    signature: Option<String>,
    timestamp: Option<String>,
    delivery: Option<String>,
}

impl Post {
    fn signed(secret: &str, body: Vec<u8>, timestamp: i64) -> Post {
        let ts = timestamp.to_string();
        Post {
            signature: Some(sign(secret.as_bytes(), &ts, &body)),
            timestamp: Some(ts),
            delivery: Some(uuid::Uuid::new_v4().to_string()),
            body,
        }
    }

    async fn send(&self, addr: std::net::SocketAddr) -> (u16, String) {
        let mut request = crate::support::http_client()
            .post(format!("http://{addr}/chatwoot"))
            .header("Content-Type", "application/json")
            .body(self.body.clone());
        for (name, value) in [
            ("X-Chatwoot-Signature", &self.signature),
            ("X-Chatwoot-Timestamp", &self.timestamp),
            ("X-Chatwoot-Delivery", &self.delivery),
        ] {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn sample(created_ago: Duration) -> Vec<u8> {
    let at = jiff::Timestamp::now() - jiff::SignedDuration::try_from(created_ago).unwrap();
    let mut params = SampleParams::new(support::RUN_ID, at);
    params.conversation_id = 57;
    params.message_id = 9042;
    sample_body(SampleEvent::MessageCreated, &params)
}

#[tokio::test]
async fn webhook_listener_accepts_valid_and_rejects_forged_stale_replayed_oversized() {
    let mut config = ListenerConfig::new(CANARY);
    config.max_body = 4096;
    assert!(!format!("{config:?}").contains(CANARY));
    let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let addr = listener.local_addr();

    // Valid, created 1.5 s before it was sent: latency is recorded.
    let valid = Post::signed(CANARY, sample(Duration::from_millis(1500)), now());
    let (status, text) = valid.send(addr).await;
    assert_eq!(status, 200, "{text}");
    let d = listener.next_delivery().await.unwrap();
    assert!(d.accepted && d.reason.is_none());
    assert_eq!(
        (d.event.as_deref(), d.conversation_id, d.message_id),
        (Some("message_created"), Some(57), Some(9042))
    );
    let latency = d.latency_ms_since_created_at.unwrap();
    assert!((1500..10_000).contains(&latency), "{latency}");
    let since_ts = d.latency_ms_since_timestamp.unwrap();
    assert!((-1000..10_000).contains(&since_ts), "{since_ts}");
    let record = serde_json::to_value(d.to_event(Vec::new())).unwrap();
    assert_eq!(record["type"], "delivery");
    assert_eq!(record["verdict"], "accepted");
    assert_eq!(record["detail"]["latency_ms_since_created_at"], latency);

    // Replay of the same delivery id (same signature, still fresh): 409.
    let (status, text) = valid.send(addr).await;
    assert_eq!(status, 409, "{text}");
    let d = listener.next_delivery().await.unwrap();
    assert!(d.reason.unwrap().contains("replayed delivery"));

    let cases: Vec<(&str, Post, u16, &str)> = vec![
        (
            "tampered",
            {
                let mut p = Post::signed(CANARY, sample(Duration::ZERO), now());
                p.body = sample(Duration::from_secs(1));
                p
            },
            401,
            "wrong signature",
        ),
        (
            "wrong secret",
            Post::signed("not-the-secret", sample(Duration::ZERO), now()),
            401,
            "wrong signature",
        ),
        (
            "stale",
            Post::signed(CANARY, sample(Duration::ZERO), now() - 600),
            401,
            "stale timestamp",
        ),
        (
            "future",
            Post::signed(CANARY, sample(Duration::ZERO), now() + 600),
            401,
            "from the future",
        ),
        (
            "unsigned",
            Post {
                signature: None,
                timestamp: None,
                ..Post::signed(CANARY, sample(Duration::ZERO), now())
            },
            401,
            "missing X-Chatwoot-Signature",
        ),
        (
            "body only",
            {
                let body = sample(Duration::ZERO);
                let mut p = Post::signed(CANARY, body.clone(), now());
                p.signature = Some(crate::support::api::webhook::sign_body_only(
                    CANARY.as_bytes(),
                    &body,
                ));
                p
            },
            401,
            "without the timestamp prefix",
        ),
        (
            "oversized",
            Post::signed(CANARY, vec![b' '; 5000], now()),
            413,
            "larger than the 4096-byte limit",
        ),
    ];
    for (name, post, want_status, want_reason) in cases {
        let (status, text) = post.send(addr).await;
        assert_eq!(status, want_status, "{name}: {text}");
        assert!(text.contains(want_reason), "{name}: {text}");
        let d = listener.next_delivery().await.unwrap();
        assert!(!d.accepted, "{name}");
        assert_eq!(d.status, want_status, "{name}");
        assert!(
            d.reason.as_deref().unwrap().contains(want_reason),
            "{name}: {:?}",
            d.reason
        );
        let recorded = format!("{:?} {}", d.reason, serde_json::Value::Object(d.detail()));
        assert!(!recorded.contains(CANARY), "{recorded}");
    }

    // No Content-Length (chunked): the limit still holds while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![b' '; 1000])).collect();
    let response = crate::support::http_client()
        .post(format!("http://{addr}/chatwoot"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let d = listener.next_delivery().await.unwrap();
    assert!(d.body_truncated && d.status == 413);

    // Not a POST: 405, recorded too.
    let response = crate::support::http_client()
        .get(format!("http://{addr}/chatwoot"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(listener.next_delivery().await.unwrap().status, 405);

    // A rejected (forged) delivery does not burn its id: the genuine one still passes.
    let genuine = Post::signed(CANARY, sample(Duration::ZERO), now());
    let forged = Post {
        signature: Some(sign(
            b"forger",
            genuine.timestamp.as_ref().unwrap(),
            &genuine.body,
        )),
        ..Post::signed(CANARY, genuine.body.clone(), now())
    };
    let forged = Post {
        delivery: genuine.delivery.clone(),
        ..forged
    };
    assert_eq!(forged.send(addr).await.0, 401);
    assert_eq!(genuine.send(addr).await.0, 200);
    listener.stop().await;
}

#[tokio::test]
async fn webhook_listen_command_records_every_delivery_and_seals() {
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut args = ListenArgs::new(format!("127.0.0.1:{port}").parse().unwrap(), "CW_SECRET");
    args.artifacts = out.path().to_path_buf();
    let lookup = |name: &str| (name == "CW_SECRET").then(|| CANARY.to_string());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let printed = lines.clone();
    let run = tokio::spawn(async move {
        listen_command(
            &args,
            &lookup,
            async {
                let _ = stop_rx.await;
            },
            move |line: &str| printed.lock().unwrap().push(line.to_string()),
        )
        .await
    });
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Wait for the port to open.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        Post::signed(CANARY, sample(Duration::ZERO), now())
            .send(addr)
            .await
            .0,
        200
    );
    assert_eq!(
        Post::signed("wrong", sample(Duration::ZERO), now())
            .send(addr)
            .await
            .0,
        401
    );
    stop_tx.send(()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((summary.accepted, summary.rejected), (1, 1));
    assert!(summary.bundle.starts_with(out.path()));
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("listening on http://127.0.0.1:{port}")),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(" 200 accepted ") && lines[1].contains("event=message_created"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains(" 401 rejected ") && lines[2].contains("wrong signature"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains(CANARY)));
}

#[tokio::test]
async fn webhook_listen_command_refuses_an_unset_secret() {
    let args = ListenArgs::new("127.0.0.1:0".parse().unwrap(), "CW_SECRET");
    let err = listen_command(&args, &|_| None, async {}, |_: &str| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CW_SECRET is not set"), "{err}");
}

// ------------------------------------------------------- webhook-delivery

fn delivery_spec(port: u16, chatwoot: Option<std::net::SocketAddr>) -> CheckSpec {
    let trigger = match chatwoot {
        Some(addr) => format!(
            r#"
[trigger]
url = "http://{addr}/api/v1/accounts/1/conversations/57/messages"
headers = {{ api_access_token = "{{{{secret:CW_API}}}}" }}
body = '{{"content":"hello {{{{marker}}}}","message_type":"outgoing"}}'
"#
        ),
        None => String::new(),
    };
    spec(
        "webhook-delivery",
        &format!(
            r#"
listen = "127.0.0.1:{port}"
secret = "{{{{secret:CW}}}}"
event = "message_created"
contains = "hello {{{{marker}}}}"
{trigger}"#
        ),
    )
}

fn delivery_scope() -> MapScope {
    let mut scope = MapScope::with_secret("CW", CANARY);
    scope.secrets.insert("CW_API".into(), "tok".into());
    scope.vars.insert("marker".into(), "runproof-e2e-42".into());
    scope
}

#[tokio::test]
async fn webhook_delivery_passes_when_the_triggered_message_arrives() {
    let port = free_port();
    let chatwoot = crate::support::chatwoot::stand_in(
        Some(format!("127.0.0.1:{port}").parse().unwrap()),
        CANARY,
        "tok",
    )
    .await;
    let check = delivery_spec(port, Some(chatwoot));
    assert_eq!(check.kind(), "webhook-delivery");
    assert!(check.validate().is_empty(), "{:?}", check.validate());
    let scope = delivery_scope();
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(5)))
        .await;
    assert!(obs.passed(), "{:?}", obs.outcome);
    assert_eq!(obs.detail["event"], "message_created");
    assert_eq!(obs.detail["message_id"], 9100);
    assert_eq!(obs.detail["conversation_id"], 57);
    assert_eq!(obs.detail["trigger_status"], 200);
    assert!(obs.detail["latency_ms_since_created_at"].as_i64().unwrap() >= 0);
    assert_eq!(blobs.roles(), ["request.body"]);
    assert!(blobs.all_text().contains("hello runproof-e2e-42"));
    assert!(!observation_text(&obs, &blobs).contains(CANARY));
    // The port is free again after the attempt.
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[tokio::test]
async fn webhook_delivery_fails_without_a_delivery_or_with_only_invalid_ones() {
    let scope = delivery_scope();
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();

    // Nothing arrives.
    let check = delivery_spec(free_port(), None);
    let obs = check
        .probe(&context(
            &scope,
            &blobs,
            &clients,
            Duration::from_millis(800),
        ))
        .await;
    let reason = reason_of(&obs);
    assert!(reason.starts_with("no delivery arrived within"), "{reason}");
    assert!(reason.contains("message_created"), "{reason}");

    // Chatwoot signs with another secret: only invalid deliveries, and why.
    let port = free_port();
    let chatwoot = crate::support::chatwoot::stand_in(
        Some(format!("127.0.0.1:{port}").parse().unwrap()),
        "rotated-secret",
        "tok",
    )
    .await;
    let check = delivery_spec(port, Some(chatwoot));
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(2)))
        .await;
    let reason = reason_of(&obs);
    assert!(
        reason.contains("1 invalid deliveries: 401 (wrong signature"),
        "{reason}"
    );
    assert_eq!(obs.detail["other_deliveries"][0]["status"], 401);
    assert!(blobs.roles().contains(&"other.request.body".to_string()));
    assert!(!observation_text(&obs, &blobs).contains(CANARY));

    // The trigger itself fails (bad API token): said so, no waiting.
    let mut scope = delivery_scope();
    scope.secrets.insert("CW_API".into(), "bad".into());
    let port = free_port();
    let chatwoot = crate::support::chatwoot::stand_in(
        Some(format!("127.0.0.1:{port}").parse().unwrap()),
        CANARY,
        "tok",
    )
    .await;
    let check = delivery_spec(port, Some(chatwoot));
    let obs = check
        .probe(&context(&scope, &blobs, &clients, Duration::from_secs(5)))
        .await;
    assert!(
        reason_of(&obs).contains("answered 401"),
        "{}",
        reason_of(&obs)
    );
}
