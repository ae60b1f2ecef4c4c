//! The shipped `runbooks/chatwoot-api-flow.toml`, unchanged, run end to end
//! by the real binary against a Chatwoot Application API stand-in on
//! 127.0.0.1 (`support::chatwoot_api`, which delivers each created message
//! as a signed webhook) and an agent webhook receiver: read-only, with
//! `--allow-mutations=qa-writes`, with `--var staging=true`, and against an
//! agent that accepts forged deliveries. The API token and webhook secret are
//! canaries that must appear nowhere.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::support::api::webhook::{Listener, ListenerConfig};
use crate::support::canary::assert_nowhere;
use crate::support::chatwoot_api::{self, Seen, AGENT_ID, CONTACT_ID, FIRST_CONVERSATION};
use crate::support::*;

/// The Chatwoot API access token (24+ characters, as Chatwoot's are).
const API_TOKEN: &str = "cwApiCanary-flow-5c1d93e7a0b4";
const WEBHOOK_SECRET: &str = "whCanary-flow-71e2c0";
const MARKER: &str = "runproof qa probe";

const MUTATING: [&str; 5] = [
    "create-conversation",
    "private-note",
    "public-reply",
    "assign",
    "delivered",
];

fn shipped_runbook() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runbooks/chatwoot-api-flow.toml")
}

/// The agent's webhook endpoint for the forged-delivery probes.
enum Agent {
    /// Verifies Chatwoot's signature (runproof's own listener).
    Verifying,
    /// Answers 200 to anything.
    AcceptsEverything,
}

/// One run of the shipped runbook against fresh stand-ins.
struct FlowRun {
    output: Output,
    seen: Seen,
    bundle: PathBuf,
    events: Vec<Value>,
    _ws: Workspace,
}

fn run_flow(agent: Agent, extra: &[&str]) -> FlowRun {
    run_flow_with_token(agent, API_TOKEN, extra)
}

/// Like [`run_flow`], with `token` as the operator's `CHATWOOT_API_TOKEN`.
fn run_flow_with_token(agent: Agent, token: &str, extra: &[&str]) -> FlowRun {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listen_port = free_port();
    let listen: SocketAddr = format!("127.0.0.1:{listen_port}").parse().unwrap();
    let api = runtime.block_on(chatwoot_api::start(API_TOKEN, WEBHOOK_SECRET, listen));
    let (agent_addr, _verifying) = match agent {
        Agent::Verifying => {
            let listener = runtime
                .block_on(Listener::bind(
                    "127.0.0.1:0".parse().unwrap(),
                    ListenerConfig::new(WEBHOOK_SECRET),
                ))
                .unwrap();
            (listener.local_addr(), Some(listener))
        }
        Agent::AcceptsEverything => (
            runtime.block_on(crate::support::chatwoot::accept_everything()),
            None,
        ),
    };
    let vars = [
        format!("chatwoot_url={}", api.url()),
        "account_id=1".to_string(),
        format!("inbox_id={}", chatwoot_api::INBOX_ID),
        format!("contact_id={CONTACT_ID}"),
        format!("agent_id={AGENT_ID}"),
        format!("listen={listen}"),
        format!("agent_webhook_url=http://{agent_addr}/webhooks/chatwoot"),
    ];
    let mut args: Vec<&str> = Vec::new();
    for var in &vars {
        args.extend(["--var", var.as_str()]);
    }
    args.extend_from_slice(extra);
    let ws = Workspace::new();
    let output = ws.run_with_env(
        &shipped_runbook(),
        &args,
        &[
            ("CHATWOOT_API_TOKEN", token),
            ("CHATWOOT_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ],
    );
    let bundle = bundle_path(&output);
    let verified = verify(&bundle, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    let events = events(&bundle);
    // Secrets: not in the terminal, not in any file of the artifacts folder
    // (the profile document Chatwoot returns holds the token itself).
    assert_nowhere(
        &output,
        &ws.artifacts(),
        &[API_TOKEN, token, WEBHOOK_SECRET],
    );
    FlowRun {
        seen: api.seen(),
        output,
        bundle,
        events,
        _ws: ws,
    }
}

fn reason(events: &[Value], step: &str) -> String {
    records(events, "step.end", Some(step))[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn attempt_details<'a>(events: &'a [Value], step: &str) -> Vec<&'a Value> {
    records(events, "attempt.end", Some(step))
        .into_iter()
        .map(|a| &a["detail"])
        .collect()
}

#[test]
fn read_only_run_passes_skips_every_write_and_sends_only_gets() {
    let run = run_flow(Agent::Verifying, &[]);
    let FlowRun {
        output,
        seen,
        events,
        bundle,
        ..
    } = &run;
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    // The profile document (which holds the token) is kept, redacted: the
    // canary check in `run_flow` has something to find.
    let profile = records(events, "attempt.end", Some("profile"));
    let digest = profile[0]["blobs"][0]["digest"].as_str().unwrap();
    let blob = bundle
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let body = std::fs::read_to_string(blob).unwrap();
    assert!(body.contains("\"access_token\""), "{body}");
    assert!(body.contains("REDACTED"), "{body}");
    for step in ["api-token", "profile", "agent-rejects-forgeries"] {
        assert_eq!(
            verdict(events, step),
            "pass",
            "{step}: {}",
            describe(output)
        );
    }
    for step in MUTATING.iter().chain(&["conversation"]) {
        assert_eq!(
            verdict(events, step),
            "skipped",
            "{step}: {}",
            describe(output)
        );
        assert!(
            records(events, "attempt.end", Some(step)).is_empty(),
            "{step} made an attempt"
        );
    }
    assert!(reason(events, "create-conversation").contains("--allow-mutations"));
    // The stand-in saw the profile read and nothing else: no write reached it.
    assert_eq!(seen.requests, ["GET /api/v1/profile"], "{seen:?}");
    assert_eq!(seen.unauthorized, 0);
    assert!(seen.conversations.is_empty() && seen.messages.is_empty());
    // The agent got only the forgeries, and the bundle says so.
    let probe = &attempt_details(events, "agent-rejects-forgeries")[0];
    assert!(probe.to_string().contains("not sent"), "{probe}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("skipped"), "{stdout}");
}

#[test]
fn qa_writes_open_note_assign_and_measure_the_delivery_without_a_public_reply() {
    let run = run_flow(Agent::Verifying, &["--allow-mutations=qa-writes"]);
    let FlowRun {
        output,
        seen,
        events,
        ..
    } = &run;
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    for step in [
        "profile",
        "create-conversation",
        "private-note",
        "conversation",
        "assign",
        "delivered",
        "agent-rejects-forgeries",
    ] {
        assert_eq!(
            verdict(events, step),
            "pass",
            "{step}: {}",
            describe(output)
        );
    }
    assert_eq!(verdict(events, "public-reply"), "skipped");
    let why = reason(events, "public-reply");
    assert!(why.contains("staging"), "{why}");

    let conversation = FIRST_CONVERSATION;
    assert_eq!(seen.conversations, [conversation]);
    assert_eq!(
        seen.messages,
        [
            (conversation, format!("{MARKER}: private note"), true),
            (conversation, format!("{MARKER}: delivery"), true),
        ],
        "no public reply without staging"
    );
    assert_eq!(seen.assignments, [(conversation, AGENT_ID)]);
    assert!(seen.requests.contains(&format!(
        "GET /api/v1/accounts/1/conversations/{conversation}"
    )));
    assert_eq!(seen.unauthorized, 0);

    // The delivery arrived signed, and its latency is measured from the trigger.
    let details = attempt_details(events, "delivered");
    let passed = details.last().unwrap();
    let latency = passed["latency_ms_since_trigger"]
        .as_i64()
        .unwrap_or_else(|| panic!("no latency: {passed}"));
    assert!((0..30_000).contains(&latency), "{passed}");
    assert_eq!(passed["trigger_status"], 200, "{passed}");
    // Only the message the trigger posted (the delivery step was listening).
    assert!(seen.deliveries.contains(&Some(200)), "{seen:?}");
}

#[test]
fn staging_sends_the_public_reply() {
    let run = run_flow(
        Agent::Verifying,
        &["--allow-mutations=qa-writes", "--var", "staging=true"],
    );
    let FlowRun {
        output,
        seen,
        events,
        ..
    } = &run;
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    assert_eq!(
        verdict(events, "public-reply"),
        "pass",
        "{}",
        describe(output)
    );
    assert!(
        seen.messages
            .contains(&(FIRST_CONVERSATION, format!("{MARKER}: public reply"), false)),
        "{seen:?}"
    );
}

#[test]
fn an_agent_accepting_forged_deliveries_escalates_as_security() {
    let run = run_flow(Agent::AcceptsEverything, &[]);
    let FlowRun {
        output,
        events,
        bundle,
        ..
    } = &run;
    assert_eq!(output.status.code(), Some(1), "{}", describe(output));
    assert_eq!(verdict(events, "profile"), "pass");
    assert_eq!(verdict(events, "agent-rejects-forgeries"), "escalated");
    let attempts = records(events, "attempt.end", Some("agent-rejects-forgeries"));
    assert_eq!(attempts.len(), 1, "a security finding is not retried");
    assert_eq!(
        attempts[0]["failure"]["class"], "security",
        "{}",
        attempts[0]
    );
    let escalation = records(events, "escalation", Some("agent-rejects-forgeries"));
    assert_eq!(escalation.len(), 1);
    assert_eq!(escalation[0]["owner"], "agent-service", "{}", escalation[0]);
    let last = escalation[0]["last_reason"].as_str().unwrap();
    assert!(last.contains("unsigned"), "{last}");
    assert!(bundle.exists());
}

#[test]
fn a_wrong_api_token_escalates_at_the_profile_and_blocks_every_write() {
    let wrong = "cwWrongCanary-flow-0d9e44b1";
    let run = run_flow_with_token(Agent::Verifying, wrong, &["--allow-mutations=qa-writes"]);
    let FlowRun {
        output,
        seen,
        events,
        ..
    } = &run;
    assert_eq!(output.status.code(), Some(1), "{}", describe(output));
    assert_eq!(verdict(events, "profile"), "escalated");
    let attempts = records(events, "attempt.end", Some("profile"));
    assert_eq!(attempts.len(), 1, "a rejected token is not retried");
    assert_eq!(attempts[0]["failure"]["class"], "auth", "{}", attempts[0]);
    let escalation = records(events, "escalation", Some("profile"));
    let why = escalation[0]["last_reason"].as_str().unwrap();
    assert!(why.starts_with("HTTP 401, want 200"), "{why}");
    assert!(escalation[0]["hint"]
        .as_str()
        .unwrap()
        .contains("Invalid Access Token"));
    for step in [
        "create-conversation",
        "private-note",
        "conversation",
        "assign",
        "delivered",
    ] {
        assert_eq!(
            verdict(events, step),
            "blocked",
            "{step}: {}",
            describe(output)
        );
    }
    // Chatwoot's own answer to a wrong token, and nothing was written.
    assert_eq!(seen.requests, ["GET /api/v1/profile"], "{seen:?}");
    assert_eq!(seen.unauthorized, 1);
    assert!(seen.conversations.is_empty() && seen.messages.is_empty());
}
