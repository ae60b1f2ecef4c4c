//! The assertion language end to end: a runbook using every predicate and
//! every capture source against a local JSON endpoint on 127.0.0.1 passes;
//! the same predicates made to fail escalate with actual-vs-expected reasons;
//! a `secret = true` capture never reaches the bundle or the terminal; lint
//! rejects unknown predicates and mistyped operands at file:line:column.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::support::*;

/// The secret the login endpoint hands out: it must never be written.
const CANARY: &str = "canary-7f3a9c21e4b8d6-session";

/// A JSON API on 127.0.0.1: `/machines` (a fleet), `POST /login` (201, a
/// `location` header and a session reference), `/whoami` (200 only with the
/// right `x-session` header).
struct Api {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

fn start_api() -> Api {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/machines",
            get(|| async {
                (
                    [("x-request-id", "req-123")],
                    Json(json!({
                        "count": 3,
                        "name": "fleet-a",
                        "version": "v12.3",
                        "created": "2026-01-02T03:04:05Z",
                        "tags": [],
                        "owner": null,
                        "ratio": 0.5,
                        "items": [
                            {"id": 1, "state": "started"},
                            {"id": 2, "state": "stopped"},
                            {"id": 3, "state": "started"}
                        ]
                    })),
                )
            }),
        )
        .route(
            "/login",
            post(|| async {
                (
                    StatusCode::CREATED,
                    [("location", "/sessions/77")],
                    Json(json!({"session_ref": CANARY, "build": "server v7"})),
                )
            }),
        )
        .route(
            "/whoami",
            get(|headers: HeaderMap| async move {
                let session = headers
                    .get("x-session")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if session == CANARY {
                    (
                        StatusCode::OK,
                        Json(json!({"session_path": "/sessions/77", "code": 201, "major": 7})),
                    )
                } else {
                    (StatusCode::FORBIDDEN, Json(json!({"error": "bad session"})))
                }
            }),
        );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Api {
        url,
        _runtime: runtime,
    }
}

const HEAD: &str = r#"[runbook]
name = "assertions"
owner = "sre"
on_escalate = "continue"

[defaults]
retries = 0
timeout = "5s"
"#;

/// Every predicate, every capture source, passing.
fn passing_runbook(base: &str) -> String {
    format!(
        r#"{HEAD}
[[step]]
id = "issue-example"
check = "http"
url = "{base}/machines"
expect = {{ status = {{ ge = 200, lt = 300 }}, json = {{ count = {{ gt = 0 }}, "$.items[?@.state == 'stopped']" = {{ len = 1 }}, "$.items[*].id" = {{ all = {{ gt = 0 }} }}, "$.items[-1].id" = 3, missing = {{ exists = false }} }}, headers = {{ "content-type" = {{ contains = "json" }} }} }}

[[step]]
id = "every-predicate"
check = "http"
url = "{base}/machines"

[step.expect]
status = {{ eq = 200, ne = 500, any_of = [200, 204], matches = '^2\d\d$' }}
headers = {{ "content-type" = {{ starts_with = "application/", ends_with = "json" }}, "x-request-id" = "req-123", "x-nope" = {{ exists = false }} }}

[step.expect.json]
count = {{ eq = 3, ne = 4, gt = 2, ge = 3, lt = 4, le = 3, type = "integer" }}
name = {{ contains = "fleet", starts_with = "fle", ends_with = "-a", matches = '^[a-z]+-[a-z]$', len = 7, type = "string", not = {{ empty = true }} }}
"$.created" = {{ gt = "2025-12-31T00:00:00Z", lt = "2027-01-01T00:00:00Z" }}
tags = {{ empty = true, type = "array", len = 0 }}
owner = {{ type = "null", exists = true }}
ratio = {{ type = "number", gt = 0.25, not = {{ type = "integer" }} }}
items = {{ len = {{ ge = 3, le = 3 }}, all = {{ type = "object" }}, not = {{ empty = true }} }}
"$.items[*].state" = {{ any = "stopped", all = {{ any_of = ["started", "stopped"] }}, contains = "started", len = 3 }}
"$.items[0].state" = {{ not = {{ any_of = ["stopped", "failed"] }} }}
"$..nope" = {{ exists = false, empty = true }}
"$.items[0:2].id" = [1, 2]
"items[1]" = {{ eq = {{ id = 2, state = "stopped" }} }}

[[step]]
id = "login"
check = "http"
method = "POST"
url = "{base}/login"
expect = {{ status = 201 }}
capture = {{ loc = {{ header = "location" }}, code = {{ status = true }}, session = {{ json = "$.session_ref", secret = true }}, major = {{ regex = 'server v(\d+)' }}, build = "build" }}

[[step]]
id = "use-captures"
check = "http"
url = "{base}/whoami"
headers = {{ x-session = "{{{{steps.login.session}}}}" }}
expect = {{ status = 200, json = {{ session_path = {{ eq = "{{{{steps.login.loc}}}}" }}, code = "{{{{steps.login.code}}}}", major = {{ ge = "{{{{steps.login.major}}}}" }}, "$.session_path" = {{ ends_with = "77", not = {{ eq = "{{{{steps.login.build}}}}" }} }} }} }}

[[step]]
id = "stdout-json"
check = "command"
argv = ["printf", '{{"n": 3, "xs": [1, 2]}}']
expect = {{ json = {{ n = {{ gt = 2 }}, "$.xs[*]" = {{ all = {{ le = 2 }}, len = 2 }} }} }}
"#
    )
}

#[test]
fn every_predicate_passes_against_a_local_json_endpoint() {
    let api = start_api();
    let ws = Workspace::new();
    let path = ws.write("pass.toml", &passing_runbook(&api.url));
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let bundle = bundle_path(&output);
    let events = events(&bundle);
    for step in [
        "issue-example",
        "every-predicate",
        "login",
        "use-captures",
        "stdout-json",
    ] {
        assert_eq!(verdict(&events, step), "pass", "{step}");
    }

    // The secret capture was usable (whoami answered 200 only with it) and
    // was written nowhere: not in the journal, blobs, reports, or terminal.
    for file in files_under(&ws.artifacts()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "the secret capture leaked into {}",
            file.display()
        );
    }
    assert!(!String::from_utf8_lossy(&output.stdout).contains(CANARY));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(CANARY));
    // ... and the login body, which held it, was stored redacted.
    let login = records(&events, "attempt.end", Some("login"));
    let digest = login[0]["blobs"][0]["digest"].as_str().unwrap();
    let blob = bundle
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let body = std::fs::read_to_string(blob).unwrap();
    assert!(body.contains("[REDACTED:capture:session]"), "{body}");
}

/// The same predicates, made to fail: every step escalates with the path,
/// the actual value and the expectation.
#[test]
fn failing_predicates_escalate_with_actual_and_expected() {
    let api = start_api();
    let ws = Workspace::new();
    let base = &api.url;
    let cases: &[(&str, &str, &str)] = &[
        ("gt", "json = { count = { gt = 5 } }", "JSON count: actual 3, expected > 5"),
        ("ge-lt", "json = { count = { ge = 4, lt = 9 } }", "JSON count: actual 3, expected >= 4"),
        ("ne", "json = { count = { ne = 3 } }", "JSON count: actual 3, expected != 3"),
        ("le", "json = { count = { le = 2 } }", "JSON count: actual 3, expected <= 2"),
        ("eq-literal", "json = { \"$.items[-1].id\" = 4 }", "JSON $.items[-1].id: actual 3, expected 4"),
        ("status", "status = { lt = 200 }", "HTTP status: actual 200, expected < 200"),
        ("status-list", "status = [201, 204]", "HTTP 200, want 201 or 204"),
        ("header-contains", "headers = { \"content-type\" = { contains = \"xml\" } }", "header content-type: actual \"application/json\", expected contains \"xml\""),
        ("header-absent", "headers = { \"x-nope\" = { exists = true } }", "header x-nope: actual absent, expected to exist"),
        ("starts", "json = { name = { starts_with = \"x\" } }", "JSON name: actual \"fleet-a\", expected starts with \"x\""),
        ("ends", "json = { name = { ends_with = \"x\" } }", "JSON name: actual \"fleet-a\", expected ends with \"x\""),
        ("matches", "json = { version = { matches = '^v\\d+$' } }", "JSON version: actual \"v12.3\", expected matches /^v\\d+$/"),
        ("exists-false", "json = { name = { exists = false } }", "JSON name: actual \"fleet-a\", expected absent"),
        ("exists-true", "json = { missing = { exists = true } }", "JSON missing: actual absent, expected to exist"),
        ("empty", "json = { tags = { empty = false } }", "JSON tags: actual [], expected not empty"),
        ("type", "json = { ratio = { type = \"integer\" } }", "JSON ratio: actual 0.5 (number), expected type integer"),
        ("len", "json = { items = { len = 2 } }", "JSON items: actual length 3 ("),
        ("filter-len", "json = { \"$.items[?@.state == 'stopped']\" = { len = 2 } }", "JSON $.items[?@.state == 'stopped']: actual length 1 ([{\"id\":2,\"state\":\"stopped\"}]), expected length 2"),
        ("any-of", "json = { \"$.items[0].state\" = { any_of = [\"stopped\", \"failed\"] } }", "JSON $.items[0].state: actual \"started\", expected one of \"stopped\", \"failed\""),
        ("not", "json = { name = { not = { contains = \"fleet\" } } }", "JSON name: actual \"fleet-a\", expected not contains \"fleet\""),
        ("all", "json = { \"$.items[*].id\" = { all = { lt = 3 } } }", "JSON $.items[*].id: element $['items'][2]['id']: actual 3, expected < 3"),
        ("any", "json = { \"$.items[*].state\" = { any = \"failed\" } }", "JSON $.items[*].state: actual [\"started\",\"stopped\",\"started\"], expected some element \"failed\""),
        ("list-contains", "json = { \"$.items[*].state\" = { contains = \"failed\" } }", "JSON $.items[*].state: actual [\"started\",\"stopped\",\"started\"], expected contains \"failed\""),
        ("time-order", "json = { created = { gt = \"2026-06-01T00:00:00Z\" } }", "JSON created: actual \"2026-01-02T03:04:05Z\", expected > \"2026-06-01T00:00:00Z\""),
    ];
    let mut source = HEAD.to_string();
    for (id, expect, _) in cases {
        source.push_str(&format!(
            "\n[[step]]\nid = \"{id}\"\ncheck = \"http\"\nurl = \"{base}/machines\"\nexpect = {{ {expect} }}\n"
        ));
    }
    source.push_str(
        "\n[[step]]\nid = \"stdout-json\"\ncheck = \"command\"\nargv = [\"printf\", '{\"n\": 3}']\nexpect = { json = { n = { gt = 5 } } }\n",
    );
    let path = ws.write("fail.toml", &source);
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    let mut all = cases.to_vec();
    all.push(("stdout-json", "", "stdout JSON n: actual 3, expected > 5"));
    for (id, _, reason) in all {
        assert_eq!(verdict(&events, id), "escalated", "{id}");
        let escalation = records(&events, "escalation", Some(id));
        let last = escalation[0]["last_reason"].as_str().unwrap();
        assert!(
            last.starts_with(reason),
            "{id}: reason {last:?} does not start with {reason:?}"
        );
    }
    // The terminal shows the same reasons.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("JSON count: actual 3, expected > 5"),
        "{stdout}"
    );
}

/// What `runproof lint` prints for a runbook with one bad line.
fn lint(expect: &str) -> (String, String) {
    let ws = Workspace::new();
    let source = format!(
        "{HEAD}\n[[step]]\nid = \"a\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:9/\"\n{expect}\n"
    );
    let path = ws.write("lint.toml", &source);
    let output = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    (source, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// `file:line:column` of the first occurrence of `needle` in `source`.
fn position(source: &str, needle: &str) -> String {
    let at = source.find(needle).unwrap();
    let line = source[..at].matches('\n').count() + 1;
    let column = at - source[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("lint.toml:{line}:{column}")
}

#[test]
fn lint_rejects_an_unknown_predicate_with_did_you_mean() {
    let (source, stderr) = lint("expect = { json = { count = { gtt = 0 } } }");
    assert!(
        stderr.contains("error: unknown predicate `gtt`"),
        "{stderr}"
    );
    assert!(stderr.contains(&position(&source, "gtt")), "{stderr}");
    assert!(stderr.contains("^^^ did you mean `gt`?"), "{stderr}");

    // A table is never compared as a literal: an object needs `eq`.
    let (_, stderr) = lint("expect = { json = { obj = { a = 1 } } }");
    assert!(stderr.contains("error: unknown predicate `a`"), "{stderr}");
    assert!(stderr.contains("write `eq = { ... }`"), "{stderr}");
}

#[test]
fn lint_rejects_mistyped_operands_at_their_position() {
    for (expect, needle, message) in [
        (
            "expect = { json = { count = { gt = \"abc\" } } }",
            "\"abc\"",
            "`gt` takes a number (or ordered text such as a timestamp), not \"abc\"",
        ),
        (
            "expect = { json = { items = { len = \"x\" } } }",
            "\"x\"",
            "`len` takes a non-negative integer or a predicate table, not a string",
        ),
        (
            "expect = { json = { name = { matches = \"(\" } } }",
            "\"(\"",
            "invalid regex in `matches`",
        ),
        (
            "expect = { json = { \"$.items[?\" = 1 } }",
            "\"$.items[?\"",
            "invalid JSONPath `$.items[?` at character",
        ),
        (
            "expect = { json = { name = { type = \"strng\" } } }",
            "\"strng\"",
            "unknown type `strng`",
        ),
        (
            "expect = { status = { ge = true } }",
            "true",
            "`ge` takes a number or a string, not a boolean",
        ),
        (
            "expect = { headers = { a = { exists = \"no\" } } }",
            "\"no\"",
            "`exists` takes `true` or `false`, not a string",
        ),
        (
            "capture = { x = { headr = \"location\" } }",
            "headr",
            "unknown key `headr` in capture",
        ),
        (
            "capture = { x = { regex = \"(\" } }",
            "\"(\"",
            "invalid regex in capture",
        ),
    ] {
        let (source, stderr) = lint(expect);
        assert!(
            stderr.contains(&format!("error: {message}")),
            "{expect}: {stderr}"
        );
        assert!(
            stderr.contains(&position(&source, needle)),
            "{expect}: {stderr}"
        );
    }
}

/// Text and number keys of `expect` take templates: vars, captures and
/// secrets are rendered for each attempt; a failure shows the value compared
/// (a secret stays `{{secret:NAME}}`); a template that renders to no number
/// or an invalid regex fails the attempt with the key named.
#[test]
fn templates_render_in_text_and_number_expectations() {
    const TOKEN: &str = "tmplCanary-5e1d7f93";
    let ws = Workspace::new();
    let dsn = crate::support::services::postgres_url("postgres", "sslmode=disable");
    let source = r#"[runbook]
name = "templated-expect"

[secrets]
required = ["TOKEN", "PG_DSN"]

[vars]
release = "v42"
two = "2"
not_a_number = "two"

[defaults]
retries = 0
timeout = "10s"

[[step]]
id = "release"
check = "command"
argv = ["printf", "release=v42 build=7"]
capture = { build = { regex = 'build=(\d+)' } }

[[step]]
id = "text"
check = "command"
argv = ["sh", "-c", "printf 'release=v42 build=7 token=%s' \"$T\"; printf 'warn v42' >&2"]
env = { T = "{{secret:TOKEN}}" }
depends_on = ["release"]
expect = { stdout_contains = "release={{release}}", stdout_regex = ["build={{steps.release.build}}", "token={{secret:TOKEN}}$"], stderr_contains = "{{release}}" }

[[step]]
id = "rows"
check = "postgres"
dsn = "{{secret:PG_DSN}}"
query = "select x from generate_series(1, 2) as x"
expect = { rows = "{{two}}", value = "1" }

[[step]]
id = "text-fails"
check = "command"
argv = ["printf", "release=v41"]
expect = { stdout_contains = "release={{release}}" }

[[step]]
id = "secret-fails"
check = "command"
argv = ["printf", "nothing here"]
expect = { stdout_contains = "{{secret:TOKEN}}" }

[[step]]
id = "rows-not-a-number"
check = "postgres"
dsn = "{{secret:PG_DSN}}"
query = "select 1"
expect = { rows = "{{not_a_number}}" }

[[step]]
id = "bad-regex"
check = "command"
argv = ["true"]
expect = { stdout_regex = "({{release}}" }
"#;
    let path = ws.write("templated.toml", source);
    let lint = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", describe(&lint));
    let output = ws.run_with_env(&path, &[], &[("TOKEN", TOKEN), ("PG_DSN", &dsn)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    for step in ["release", "text", "rows"] {
        assert_eq!(
            verdict(&events, step),
            "pass",
            "{step}: {}",
            describe(&output)
        );
    }
    let reason = |step: &str| {
        assert_eq!(verdict(&events, step), "escalated", "{step}");
        records(&events, "escalation", Some(step))[0]["last_reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        reason("text-fails").starts_with("stdout does not contain \"release=v42\""),
        "{}",
        reason("text-fails")
    );
    assert!(
        reason("secret-fails").starts_with("stdout does not contain \"{{secret:TOKEN}}\""),
        "{}",
        reason("secret-fails")
    );
    assert!(
        reason("rows-not-a-number")
            .starts_with("`expect.rows = \"{{not_a_number}}\"` rendered to `two`"),
        "{}",
        reason("rows-not-a-number")
    );
    assert!(
        reason("bad-regex").starts_with("invalid regex in `expect.stdout_regex` /(v42/"),
        "{}",
        reason("bad-regex")
    );
    crate::support::canary::assert_nowhere(&output, &ws.artifacts(), &[TOKEN]);
}

/// Keys whose value is fixed at load time refuse a template at its position.
#[test]
fn lint_refuses_a_template_in_a_policy_key() {
    let ws = Workspace::new();
    let source = "[runbook]\nname = \"x\"\n\n[vars]\nn = \"2\"\n\n[[step]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\nretries = \"{{n}}\"\n\n[[step]]\nid = \"b\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:9/\"\nexpect = { json_exists = [\"$.items[{{n}}]\"] }\n";
    let path = ws.write("policy.toml", source);
    let output = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: this key cannot take a template"),
        "{stderr}"
    );
    assert!(stderr.contains("policy.toml:11:11"), "{stderr}");
    assert!(
        stderr.contains("error: `expect.json_exists` cannot take a template (`$.items[{{n}}]` would be compared as written)"),
        "{stderr}"
    );
}
