//! `command` steps that carry a deployment (issue 10): values written to the
//! command's stdin (never to argv, never to the evidence), captures from
//! stdout flowing into later steps (secret ones redacted everywhere), every
//! regex of a `stdout_regex` list, and exit codes that are not retried.

use crate::support::canary::assert_nowhere;
use crate::support::{bundle_path, describe, events, records, Workspace};

const CANARY: &str = "Adm1n-pw-7f3c-CANARY-91d2";

#[test]
fn stdin_captures_and_regex_lists_flow_between_steps() {
    let ws = Workspace::new();
    ws.write("secrets.env", &format!("DB_PASSWORD={CANARY}\n"));
    let runbook = ws.write(
        "deploy.toml",
        r#"[runbook]
name = "command-flow"

[secrets]
env_files = ["secrets.env"]
required = ["DB_PASSWORD"]

[defaults]
retries = 0

[[step]]
id = "import"
check = "command"
argv = ["sh", "-c", "read line; case \"$line\" in DATABASE_PASSWORD=*) echo imported 1 secret;; *) exit 3;; esac"]
stdin = "DATABASE_PASSWORD={{secret:DB_PASSWORD}}\n"
expect = { stdout_regex = ["^imported", "(?m)1 secret$"] }

[[step]]
id = "release"
check = "command"
argv = ["sh", "-c", "printf '{\"version\": 42, \"image\": \"registry.fly.io/app:v42\"}'"]
capture = { version = "version", tag = { regex = ":v(\\d+)" } }

[[step]]
id = "password"
check = "command"
argv = ["sh", "-c", "echo generated password: $GEN"]
env = { GEN = "{{secret:DB_PASSWORD}}" }
capture = { admin = { regex = "password: (\\S+)", secret = true } }

[[step]]
id = "use"
check = "command"
argv = ["sh", "-c", "test \"$V\" = 42 && test \"$T\" = 42 && test \"$P\" = \"$EXPECTED\" && echo ok"]
env = { V = "{{steps.release.version}}", T = "{{steps.release.tag}}", P = "{{steps.password.admin}}", EXPECTED = "{{secret:DB_PASSWORD}}" }
expect = { stdout_contains = "ok" }
"#,
    );
    let output = ws.run(&runbook, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    let import = &records(&events, "attempt.end", Some("import"))[0];
    assert!(import["detail"]["stdin_bytes"].as_u64().unwrap() > 0);
    // The secret went through stdin and a captured value; it is nowhere.
    assert_nowhere(&output, &ws.artifacts(), &[CANARY]);
}

#[test]
fn a_failing_regex_in_the_list_fails_and_listed_exit_codes_are_not_retried() {
    let ws = Workspace::new();
    let runbook = ws.write(
        "codes.toml",
        r#"[runbook]
name = "command-codes"

[defaults]
retries = 2
backoff = { initial = "10ms", max = "20ms" }

[[step]]
id = "regexes"
check = "command"
argv = ["sh", "-c", "echo release v41"]
expect = { stdout_regex = ["^release", "(?m)v42$"] }

[[step]]
id = "missing-program"
check = "command"
argv = ["sh", "-c", "exit 127"]

[[step]]
id = "declared"
check = "command"
argv = ["sh", "-c", "exit 1"]
permanent_exit_codes = [1]

[[step]]
id = "transient"
check = "command"
argv = ["sh", "-c", "exit 1"]
"#,
    );
    let output = ws.run(&runbook, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let attempts = |step: &str| records(&events, "attempt.end", Some(step)).len();
    let regex_reason = records(&events, "attempt.end", Some("regexes"))[0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        regex_reason.contains("does not match /(?m)v42$/"),
        "{regex_reason}"
    );
    assert!(!regex_reason.contains("/^release/"), "{regex_reason}");
    assert_eq!(
        attempts("missing-program"),
        1,
        "127 is permanent by default"
    );
    assert_eq!(attempts("declared"), 1, "listed in permanent_exit_codes");
    assert_eq!(attempts("transient"), 3, "other codes are retried");
}

#[test]
fn when_runs_a_step_only_when_its_conditions_hold() {
    let ws = Workspace::new();
    let runbook = ws.write(
        "when.toml",
        r#"[runbook]
name = "conditions"

[vars]
env_name = "production"

[defaults]
retries = 0

[[step]]
id = "queue"
check = "command"
argv = ["sh", "-c", "echo depth=12"]
capture = { depth = { regex = "depth=(\\d+)" } }

[[step]]
id = "scale"
check = "command"
argv = ["sh", "-c", "echo scaling"]
when = { "{{steps.queue.depth}}" = { gt = 100 } }

[[step]]
id = "shallow"
check = "command"
argv = ["sh", "-c", "echo fine"]
when = { "{{steps.queue.depth}}" = { le = 100 }, "{{env_name}}" = { any_of = ["production", "staging"] } }
"#,
    );
    let output = ws.run(&runbook, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let scale = &records(&events, "step.end", Some("scale"))[0];
    assert_eq!(scale["verdict"], "skipped");
    let reason = scale["reason"].as_str().unwrap();
    assert!(
        reason.contains("condition {{steps.queue.depth}}") && reason.contains("12"),
        "{reason}"
    );
    assert_eq!(
        records(&events, "step.end", Some("shallow"))[0]["verdict"],
        "pass"
    );
    // The captured value made `queue` a dependency of both.
    let start = &records(&events, "run.start", None)[0];
    let planned = start["steps"].as_array().unwrap();
    assert_eq!(planned[1]["depends_on"][0], "queue", "{start}");
}

#[test]
fn lint_knows_the_predicates_of_when() {
    let ws = Workspace::new();
    let runbook = ws.write(
        "bad-when.toml",
        r#"[runbook]
name = "bad-when"

[[step]]
id = "scale"
check = "command"
argv = ["true"]
when = { "{{steps.queue.depth}}" = { gtt = 100 } }

[[step]]
id = "other"
check = "command"
argv = ["true"]
when = { "{{steps.nowhere.depth}}" = { gt = 100 } }
"#,
    );
    let output = crate::support::runproof()
        .arg("lint")
        .arg(&runbook)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown predicate `gtt`"), "{stderr}");
    assert!(stderr.contains("bad-when.toml:8:38"), "{stderr}");
    assert!(stderr.contains("bad-when.toml:14:11"), "{stderr}");
    assert!(
        stderr.contains("nowhere"),
        "an unknown step is named: {stderr}"
    );
}

#[test]
fn a_missing_cwd_is_named_and_not_retried() {
    let ws = Workspace::new();
    let runbook = ws.write(
        "missing-cwd.toml",
        r#"[runbook]
name = "missing-cwd"

[[step]]
id = "in-nowhere"
check = "command"
argv = ["true"]
cwd = "no-such-folder"
retries = 2
"#,
    );
    let output = ws.run(&runbook, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let attempts = records(&events, "attempt.end", Some("in-nowhere"));
    assert_eq!(attempts.len(), 1, "a missing folder is not retried");
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(reason.contains("cwd `no-such-folder`"), "{reason}");
    assert!(reason.contains("is not a folder"), "{reason}");
    // Not blamed on the program.
    assert!(!reason.contains("cannot start"), "{reason}");
}
