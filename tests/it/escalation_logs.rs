//! "Retry twice, then escalate with logs": a step's `collect` commands run
//! once, after its last failed attempt — never for a step that passes — and
//! their redacted output is stored as blobs named by role in the escalation
//! record, summary.md and the terminal; the bundle still verifies.

use crate::support::canary::assert_nowhere;
use crate::support::{bundle_path, describe, events, records, verify, TestServer, Workspace};

const CANARY: &str = "logCanary-5e8d1f0b-token";

#[test]
fn collected_logs_are_named_in_the_escalation_and_redacted() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let marker = ws.path().join("collected-for-passing-step");
    let runbook = ws.write(
        "logs.toml",
        &format!(
            r#"[runbook]
name = "escalate-with-logs"
owner = "ops"

[secrets]
required = ["API_TOKEN"]

[defaults]
retries = 1
backoff = {{ initial = "10ms", max = "20ms" }}

[[step]]
id = "healthy"
check = "http"
url = "{url}/ok"
collect = [{{ argv = ["touch", "{marker}"] }}]

[[step]]
id = "web"
check = "http"
url = "{url}/status/503"
collect = [
  {{ argv = ["sh", "-c", "echo web log: token=$TOKEN; echo boot failed >&2"], env = {{ TOKEN = "{{{{secret:API_TOKEN}}}}" }} }},
  {{ argv = ["/no/such/diagnostic-tool"] }},
]
"#,
            url = server.url(),
            marker = marker.display(),
        ),
    );
    let output = ws.run_with_env(&runbook, &[], &[("API_TOKEN", CANARY)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(!marker.exists(), "collect runs only after a failed step");
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    let escalation = &records(&events, "escalation", Some("web"))[0];
    let collected = escalation["collected"].as_array().expect("collected");
    assert_eq!(collected.len(), 2, "{escalation}");
    assert_eq!(collected[0]["exit_code"], 0);
    let roles: Vec<&str> = collected[0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["role"].as_str().unwrap())
        .collect();
    assert!(
        roles
            .iter()
            .any(|r| r.starts_with("collected: sh -c") && r.ends_with(": stdout")),
        "{roles:?}"
    );
    assert!(roles.iter().any(|r| r.ends_with(": stderr")), "{roles:?}");
    assert!(
        collected[1]["error"]
            .as_str()
            .unwrap()
            .contains("cannot start"),
        "{escalation}"
    );
    // The blob holds the log line, with the token redacted.
    let digest = collected[0]["blobs"][0]["digest"].as_str().unwrap();
    let blob = std::fs::read_to_string(
        bundle
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert!(blob.contains("web log: token=[REDACTED"), "{blob}");
    let summary = std::fs::read_to_string(bundle.join("summary.md")).unwrap();
    assert!(summary.contains("**Collected:**"), "{summary}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("collected: sh -c"), "{stdout}");
    assert_nowhere(&output, &ws.artifacts(), &[CANARY]);
    assert!(verify(&bundle, &[]).status.success());
}
