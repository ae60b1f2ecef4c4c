//! `confirm` steps through the real binary: without a terminal and without
//! `--confirm` the step ends unconfirmed at once (exit 1, nobody paged, the
//! run says how to confirm); `--confirm ID="note"` records who confirmed and
//! the note; a `--confirm` naming no confirmation step is a usage error.

use crate::support::{bundle_path, describe, events, records, verify, TestServer, Workspace};

fn runbook(ws: &Workspace, server: &TestServer) -> std::path::PathBuf {
    ws.write(
        "cutover.toml",
        &format!(
            r#"[runbook]
name = "cutover"
owner = "deploy"

[[step]]
id = "admin-token"
check = "confirm"
prompt = "Sign in as super admin and create the API token"

[[step]]
id = "health"
check = "http"
url = "{}/ok"
depends_on = ["admin-token"]
"#,
            server.url()
        ),
    )
}

#[test]
fn an_unanswered_confirmation_ends_the_run_unconfirmed_and_says_how() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = runbook(&ws, &server);
    let output = ws.run_with_env(&path, &[], &[("RUNPROOF_OPERATOR", "dana")]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("unconfirmed: 1 blocked, 1 unconfirmed"),
        "{stdout}"
    );
    assert!(stdout.contains("--confirm"), "{stdout}");
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    assert!(
        records(&events, "escalation", None).is_empty(),
        "nobody is paged"
    );
    let ends = records(&events, "step.end", Some("admin-token"));
    assert_eq!(ends[0]["verdict"], "unconfirmed");
    assert_eq!(
        records(&events, "step.end", Some("health"))[0]["verdict"],
        "blocked"
    );
    assert!(verify(&bundle, &[]).status.success(), "the bundle verifies");
}

#[test]
fn confirm_flag_records_who_confirmed_and_the_note() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = runbook(&ws, &server);
    let output = ws.run_with_env(
        &path,
        &["--confirm", "admin-token=\"created, stored in vault\""],
        &[("RUNPROOF_OPERATOR", "dana")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let attempt = &records(&events, "attempt.end", Some("admin-token"))[0];
    assert_eq!(attempt["verdict"], "pass");
    assert_eq!(attempt["detail"]["confirmed_by"], "dana");
    assert_eq!(attempt["detail"]["via"], "--confirm");
    assert_eq!(attempt["detail"]["note"], "created, stored in vault");
    assert!(attempt["detail"]["answered_at"].is_string());
    assert_eq!(
        records(&events, "step.end", Some("health"))[0]["verdict"],
        "pass"
    );
}

#[test]
fn confirm_must_name_a_confirmation_step() {
    let server = TestServer::start();
    let ws = Workspace::new();
    let path = runbook(&ws, &server);
    let output = ws.run(&path, &["--confirm", "health"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no `confirm` step"));
}
