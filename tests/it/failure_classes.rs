//! Typed failures end to end (issue 8's acceptance runbook): four steps that
//! fail in four different ways record four different classes in their
//! `attempt.end` records — a name that does not exist (`dns`, asked of the
//! DNS fixture on 127.0.0.1, never the machine's resolver), a closed port
//! (`refused`), a server that never answers (`timeout`) and a 503 where 200
//! is expected (`expectation`) — and only the retryable ones are retried.

use serde_json::Value;

use crate::support::dns::DnsFixture;
use crate::support::{bundle_path, describe, events, records, verify, TestServer, Workspace};

fn classes(events: &[Value], step: &str) -> Vec<String> {
    records(events, "attempt.end", Some(step))
        .iter()
        .map(|r| r["failure"]["class"].as_str().unwrap_or("none").to_string())
        .collect()
}

#[test]
fn four_failing_steps_record_four_classes() {
    let fixture = DnsFixture::start();
    let server = TestServer::start();
    let closed = crate::support::free_port();
    let ws = Workspace::new();
    let runbook = ws.write(
        "classes.toml",
        &format!(
            r#"[runbook]
name = "failure-classes"
owner = "qa"

[defaults]
retries = 1
backoff = {{ initial = "10ms", max = "20ms" }}
timeout = "1s"

[[step]]
id = "unresolvable"
check = "http"
url = "http://nowhere.invalid/hc"

[[step]]
id = "unknown-name"
check = "http"
url = "http://missing.runproof.test:{port}/hc"

[[step]]
id = "refused"
check = "http"
url = "http://127.0.0.1:{closed}/hc"

[[step]]
id = "silent"
check = "http"
url = "http://{addr}/hang"

[[step]]
id = "unavailable"
check = "http"
url = "http://{addr}/status/503"
expect = {{ status = 200 }}
"#,
            port = server.addr.port(),
            addr = server.addr,
        ),
    );
    let output = ws.run_with_env(&runbook, &[], &[("RUNPROOF_RESOLVER", &fixture.resolver())]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let events = events(&bundle);

    // Names that do not exist: class dns, one attempt, never retried.
    assert_eq!(classes(&events, "unresolvable"), ["dns"]);
    assert_eq!(classes(&events, "unknown-name"), ["dns"]);
    assert!(
        fixture.queries_for("missing.runproof.test") >= 1,
        "the fixture was asked"
    );
    // The others are worth a retry: two attempts each.
    assert_eq!(classes(&events, "refused"), ["refused", "refused"]);
    assert_eq!(classes(&events, "silent"), ["timeout", "timeout"]);
    assert_eq!(
        classes(&events, "unavailable"),
        ["expectation", "expectation"]
    );

    // Escalations carry the class of every attempt.
    for escalation in records(&events, "escalation", None) {
        for attempt in escalation["attempts"].as_array().unwrap() {
            assert!(attempt["class"].is_string(), "{escalation}");
        }
    }
    // The terminal and the reports lead with the class.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("timeout: "), "{stdout}");
    let junit = std::fs::read_to_string(bundle.join("junit.xml")).unwrap();
    assert!(junit.contains("refused: "), "{junit}");
    assert!(junit.contains("expectation: "), "{junit}");
    assert!(verify(&bundle, &[]).status.success());
}
