//! Name resolution end to end through the real `runproof` binary, against
//! the DNS fixture on 127.0.0.1 (never the machine's own resolver): the
//! `dns` kind per record type, NXDOMAIN as one permanent failure, and HTTP,
//! TCP, Postgres and Redis host names resolved by `--resolver`,
//! `RUNPROOF_RESOLVER` or a step's `resolver`.

use crate::support::dns::DnsFixture;
use crate::support::{
    bundle_path, describe, events, records, runproof, verdict, TestServer, Workspace,
};
use hickory_proto::rr::RecordType;

/// Runs `runbook` with `--resolver` pointing at the fixture.
fn run_with_resolver(
    ws: &Workspace,
    fixture: &DnsFixture,
    runbook: &str,
) -> (std::process::Output, Vec<serde_json::Value>) {
    let path = ws.write("runbook.toml", runbook);
    let output = ws.run(&path, &["--resolver", &fixture.resolver()]);
    let events = events(&bundle_path(&output));
    (output, events)
}

const HEADER: &str = r#"[runbook]
name = "dns"
on_escalate = "continue"

[defaults]
retries = 0
timeout = "5s"
"#;

#[test]
fn each_record_type_passes_or_fails_on_its_answers() {
    let fixture = DnsFixture::start();
    let ws = Workspace::new();
    let runbook = format!(
        r#"{HEADER}
[[step]]
id = "a"
check = "dns"
name = "www.runproof.test"
record_type = "A"
expect = {{ addresses = ["127.0.0.1"] }}

[[step]]
id = "aaaa"
check = "dns"
name = "www.runproof.test"
type = "AAAA"
expect = {{ values = ["::1"] }}

[[step]]
id = "cname"
check = "dns"
name = "alias.runproof.test"
record_type = "CNAME"
expect = {{ values = ["WWW.runproof.test."] }}

[[step]]
id = "a-through-cname"
check = "dns"
name = "alias.runproof.test"
record_type = "A"
expect = {{ addresses = ["127.0.0.1"] }}

[[step]]
id = "mx"
check = "dns"
name = "runproof.test"
record_type = "MX"
expect = {{ values = ["10 mail.runproof.test"] }}

[[step]]
id = "txt"
check = "dns"
name = "runproof.test"
record_type = "TXT"
expect = {{ contains = "v=spf1" }}

[[step]]
id = "caa"
check = "dns"
name = "runproof.test"
record_type = "CAA"
expect = {{ values = ['0 issue "letsencrypt.org"'] }}

[[step]]
id = "addresses"
check = "dns"
name = "www.runproof.test"
expect = {{ record_types = ["A", "AAAA"], addresses = ["::1", "127.0.0.1"] }}

[[step]]
id = "wrong-a"
check = "dns"
name = "www.runproof.test"
record_type = "A"
expect = {{ addresses = ["192.0.2.1"] }}

[[step]]
id = "wrong-mx"
check = "dns"
name = "runproof.test"
record_type = "MX"
expect = {{ values = ["10 other.runproof.test"] }}

[[step]]
id = "wrong-txt"
check = "dns"
name = "runproof.test"
record_type = "TXT"
expect = {{ contains = "google-site-verification" }}

[[step]]
id = "wrong-caa"
check = "dns"
name = "runproof.test"
record_type = "CAA"
expect = {{ values = ['0 issue "pki.goog"'] }}

[[step]]
id = "no-aaaa"
check = "dns"
name = "v4.runproof.test"
record_type = "AAAA"

[[step]]
id = "v4-only"
check = "dns"
name = "v4.runproof.test"
expect = {{ record_types = ["AAAA"] }}
"#
    );
    let (output, events) = run_with_resolver(&ws, &fixture, &runbook);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    for step in [
        "a",
        "aaaa",
        "cname",
        "a-through-cname",
        "mx",
        "txt",
        "caa",
        "addresses",
    ] {
        assert_eq!(
            verdict(&events, step),
            "pass",
            "{step}: {}",
            describe(&output)
        );
    }
    let reason = |step: &str| {
        records(&events, "attempt.end", Some(step))[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for (step, want) in [
        ("wrong-a", "www.runproof.test does not resolve to 192.0.2.1 (got 127.0.0.1)"),
        (
            "wrong-mx",
            "runproof.test has no MX answer `10 other.runproof.test` (got 10 mail.runproof.test)",
        ),
        (
            "wrong-txt",
            "no TXT answer of runproof.test contains `google-site-verification` (got v=spf1 -all)",
        ),
        (
            "wrong-caa",
            "runproof.test has no CAA answer `0 issue \"pki.goog\"` (got 0 issue \"letsencrypt.org\")",
        ),
        ("v4-only", "v4.runproof.test has no AAAA answer (got 127.0.0.1)"),
    ] {
        assert_eq!(verdict(&events, step), "escalated", "{step}");
        assert_eq!(reason(step), want, "{step}");
    }
    // A name without the asked type is NODATA, not NXDOMAIN: retryable.
    assert_eq!(verdict(&events, "no-aaaa"), "escalated");
    assert!(
        reason("no-aaaa").contains("has no AAAA record"),
        "{}",
        reason("no-aaaa")
    );
    assert!(records(&events, "attempt.end", Some("no-aaaa"))[0]["no_retry"].is_null());
    // The answers are recorded as evidence.
    let mx = records(&events, "attempt.end", Some("mx"))[0];
    assert_eq!(mx["detail"]["answers"][0], "10 mail.runproof.test");
    assert_eq!(mx["detail"]["resolver"], fixture.resolver());
    // Every query went to the fixture.
    assert!(
        fixture.queries_for("runproof.test") >= 6,
        "{:?}",
        fixture.seen()
    );
}

#[test]
fn nxdomain_is_one_attempt_with_a_clear_reason() {
    let fixture = DnsFixture::start();
    let ws = Workspace::new();
    let runbook = r#"[runbook]
name = "nx"
on_escalate = "continue"

[secrets]
required = ["HOOK_SECRET"]

[defaults]
retries = 3
backoff = { initial = "50ms", max = "50ms" }
timeout = "5s"

[[step]]
id = "txt"
check = "dns"
name = "nothing-here.invalid"
record_type = "TXT"

[[step]]
id = "address"
check = "dns"
name = "gone.runproof.invalid"

[[step]]
id = "tcp"
check = "tcp"
host = "also-gone.invalid"
port = 443

[[step]]
id = "in-zone"
check = "dns"
name = "absent.runproof.test"
record_type = "TXT"

[[step]]
id = "webhook"
check = "webhook"
url = "http://hook.absent.runproof.test:8080/webhooks"
secret = "{{secret:HOOK_SECRET}}"
"#;
    let path = ws.write("runbook.toml", runbook);
    let output = ws.run_with_env(
        &path,
        &["--resolver", &fixture.resolver()],
        &[("HOOK_SECRET", "hook-secret-value")],
    );
    let events = events(&bundle_path(&output));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    for (step, name) in [
        ("txt", "nothing-here.invalid"),
        ("address", "gone.runproof.invalid"),
        ("tcp", "also-gone.invalid"),
        ("in-zone", "absent.runproof.test"),
        ("webhook", "hook.absent.runproof.test"),
    ] {
        let attempts = records(&events, "attempt.end", Some(step));
        assert_eq!(attempts.len(), 1, "{step}: retries must be skipped");
        let reason = attempts[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("{name} does not exist")),
            "{step}: {reason}"
        );
        assert!(reason.contains("NXDOMAIN"), "{step}: {reason}");
        let no_retry = attempts[0]["no_retry"].as_str().unwrap_or_default();
        assert!(no_retry.contains("NXDOMAIN"), "{step}: {no_retry:?}");
        assert!(records(&events, "backoff", Some(step)).is_empty(), "{step}");
    }
    // The fixture's own NXDOMAIN: one query, no retries behind the scenes
    // either. (`.invalid` names never leave the resolver: RFC 6761.)
    assert_eq!(
        fixture.queries_for("absent.runproof.test"),
        1,
        "{:?}",
        fixture.seen()
    );
    assert_eq!(
        fixture.queries_for("nothing-here.invalid"),
        0,
        "{:?}",
        fixture.seen()
    );
}

#[test]
fn http_host_names_resolve_through_the_chosen_server() {
    let fixture = DnsFixture::start();
    let server = TestServer::start();
    let ws = Workspace::new();
    let port = server.addr.port();
    let runbook = format!(
        r#"{HEADER}
[[step]]
id = "health"
check = "http"
url = "http://v4.runproof.test:{port}/ok"
expect = {{ status = 200, body_contains = "ok" }}
"#
    );
    let path = ws.write("runbook.toml", &runbook);

    // RUNPROOF_RESOLVER …
    let output = ws.run_with_env(&path, &[], &[("RUNPROOF_RESOLVER", &fixture.resolver())]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let by_env = fixture.queries_for("v4.runproof.test");
    assert!(
        by_env >= 1,
        "the HTTP client asked someone else: {:?}",
        fixture.seen()
    );

    // … and --resolver.
    let output = ws.run(&path, &["--resolver", &fixture.resolver()]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        fixture.queries_for("v4.runproof.test") > by_env,
        "{:?}",
        fixture.seen()
    );

    // A name the fixture does not know fails as a DNS failure, once.
    let runbook = format!(
        r#"{HEADER}
[[step]]
id = "missing"
check = "http"
url = "http://missing.runproof.invalid:{port}/ok"
retries = 2
"#
    );
    let (output, events) = run_with_resolver(&ws, &fixture, &runbook);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let attempts = records(&events, "attempt.end", Some("missing"));
    assert_eq!(attempts.len(), 1, "NXDOMAIN is not retried");
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("DNS lookup failed"), "{reason}");
    assert!(
        reason.contains("missing.runproof.invalid does not exist"),
        "{reason}"
    );
}

#[test]
fn a_step_resolver_serves_every_kind_that_connects() {
    let fixture = DnsFixture::start();
    let server = TestServer::start();
    let ws = Workspace::new();
    let port = server.addr.port();
    let resolver = fixture.resolver();
    // No --resolver: only the steps' own key points at the fixture.
    let runbook = format!(
        r#"[runbook]
name = "step-resolver"
on_escalate = "continue"

[secrets]
required = ["DATABASE_URL", "REDIS_URL"]

[defaults]
retries = 0
timeout = "5s"

[[step]]
id = "dns"
check = "dns"
name = "www.runproof.test"
resolver = "{resolver}"
expect = {{ addresses = ["127.0.0.1"] }}

[[step]]
id = "http"
check = "http"
url = "http://v4.runproof.test:{port}/ok"
resolver = "{resolver}"

[[step]]
id = "tcp"
check = "tcp"
host = "v4.runproof.test"
port = {port}
resolver = "{resolver}"

[[step]]
id = "postgres"
check = "postgres"
dsn = "{{{{secret:DATABASE_URL}}}}"
resolver = "{resolver}"
query = "select 1"
expect = {{ value = "1" }}

[[step]]
id = "redis"
check = "redis"
url = "{{{{secret:REDIS_URL}}}}"
resolver = "{resolver}"
"#
    );
    let path = ws.write("runbook.toml", &runbook);
    let output = ws.run_with_env(
        &path,
        &[],
        &[
            (
                "DATABASE_URL",
                "postgres://postgres:pgCanary-e2e-5c0d@v4.runproof.test:5432/postgres?sslmode=disable",
            ),
            ("REDIS_URL", "redis://v4.runproof.test:6379/0"),
        ],
    );
    let events = events(&bundle_path(&output));
    for step in ["dns", "http", "tcp", "postgres", "redis"] {
        assert_eq!(
            verdict(&events, step),
            "pass",
            "{step}: {}",
            describe(&output)
        );
    }
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // dns, http, tcp, postgres and redis each asked (A and AAAA for the names).
    assert!(
        fixture.queries_for("v4.runproof.test") >= 4,
        "{:?}",
        fixture.seen()
    );
}

#[test]
fn answers_too_big_for_udp_come_over_tcp() {
    let fixture = DnsFixture::start();
    let ws = Workspace::new();
    let runbook = format!(
        r#"{HEADER}
[[step]]
id = "big"
check = "dns"
name = "big.runproof.test"
record_type = "TXT"
expect = {{ contains = "39xxxx" }}
"#
    );
    let (output, events) = run_with_resolver(&ws, &fixture, &runbook);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(verdict(&events, "big"), "pass");
    let seen = fixture.seen();
    let big = |tcp: bool| {
        seen.iter()
            .filter(|s| {
                s.name == "big.runproof.test" && s.record_type == RecordType::TXT && s.tcp == tcp
            })
            .count()
    };
    assert!(big(false) >= 1 && big(true) >= 1, "{seen:?}");
}

#[test]
fn localhost_still_resolves_with_the_system_resolver() {
    // No resolver given: the system configuration, /etc/hosts first. Only
    // `localhost` is asked for, which never leaves the machine.
    let server = TestServer::start();
    let ws = Workspace::new();
    let port = server.addr.port();
    let runbook = format!(
        r#"{HEADER}
[[step]]
id = "tcp"
check = "tcp"
host = "localhost"
port = {port}

[[step]]
id = "http"
check = "http"
url = "http://localhost:{port}/ok"
"#
    );
    let path = ws.write("runbook.toml", &runbook);
    let output = ws.run_with_env(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

#[test]
fn lint_knows_the_resolver_and_record_type_keys() {
    let ws = Workspace::new();
    let path = ws.write(
        "runbook.toml",
        r#"[runbook]
name = "lint"

[[step]]
id = "bad-resolver"
check = "tcp"
host = "db.internal"
port = 5432
resolver = "10.0.0.2"

[[step]]
id = "bad-type"
check = "dns"
name = "example.org"
record_type = "SRV"

[[step]]
id = "values-without-type"
check = "dns"
name = "example.org"
expect = { values = ["x"] }
"#,
    );
    let output = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected IP:port"), "{stderr}");
    assert!(stderr.contains("SRV"), "{stderr}");
    assert!(stderr.contains("need `record_type`"), "{stderr}");
    assert!(stderr.contains("runbook.toml:9:"), "{stderr}");

    let good = ws.write(
        "good.toml",
        r#"[runbook]
name = "lint"

[[step]]
id = "mx"
check = "dns"
name = "example.org"
resolver = "127.0.0.1:5353"
type = "MX"
expect = { values = ["10 mail.example.org"] }
"#,
    );
    let output = runproof().arg("lint").arg(&good).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

#[test]
fn a_bad_resolver_option_is_a_usage_error() {
    let ws = Workspace::new();
    let path = ws.write(
        "runbook.toml",
        "[runbook]\nname = \"x\"\n\n[[step]]\nid = \"s\"\ncheck = \"tcp\"\nhost = \"localhost\"\nport = 1\n",
    );
    let output = ws.run(&path, &["--resolver", "not-an-address"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected IP:port"),
        "{}",
        describe(&output)
    );
}

#[test]
fn sweep_takes_the_resolver_option_too() {
    let fixture = DnsFixture::start();
    let server = TestServer::start();
    let ws = Workspace::new();
    let port = server.addr.port();
    let file = ws.write(
        "checks.toml",
        &format!(
            r#"[defaults]
retries = 0
timeout = "5s"

[[check]]
id = "api"
check = "http"
url = "http://v4.runproof.test:{port}/ok"

[[check]]
id = "mx"
check = "dns"
name = "runproof.test"
record_type = "MX"
expect = {{ values = ["10 mail.runproof.test"] }}
"#
        ),
    );
    let output = runproof()
        .arg("sweep")
        .arg(&file)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .args(["--resolver", &fixture.resolver()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        fixture.queries_for("v4.runproof.test") >= 1,
        "{:?}",
        fixture.seen()
    );
    assert!(
        fixture.queries_for("runproof.test") >= 1,
        "{:?}",
        fixture.seen()
    );
}
