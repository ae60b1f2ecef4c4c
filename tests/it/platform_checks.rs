//! Platform check kinds against real servers on 127.0.0.1: fixture Fly and
//! Supabase APIs, the suite's throwaway PostgreSQL (real SCRAM password
//! checks, TLS) and Redis, fake wire servers for the answers those cannot give, and rcgen certificates behind rustls.

use crate::support;
use crate::support::api::check::FailureClass;
use crate::support::free_port as closed_port;
use crate::support::probe::{probe, spec, MapScope};
use crate::support::services;

// ---------------------------------------------------------------- fly-app

use support::fly::{DEPLOY_TOKEN as FM2_TOKEN, PERSONAL_TOKEN as FO1_TOKEN, READONLY_TOKEN};

fn fly_spec(app: &str, expect: &str) -> crate::support::api::check::CheckSpec {
    spec("fly-app", &format!("app = \"{app}\"\n[expect]\n{expect}\n"))
}

fn fly_scope(url: &str, token: &str) -> MapScope {
    MapScope::new()
        .secret("FLY_API_TOKEN", token)
        .env("FLY_API_BASE_URL", url)
}

#[tokio::test]
async fn fly_all_started_passes_with_machine_summary() {
    let fly = support::fly::start().await;
    let check = fly_spec("hotdash-chatwoot", "process_groups = [\"web\", \"worker\"]\nimage = \"deployment-01J0ABC\"\nrelease_version = \"7\"\nregions = [\"ord\"]");
    let got = probe(&check, &fly_scope(&fly.url, FM2_TOKEN)).await;
    assert!(got.passed(), "{}", got.reason());
    // The destroyed machine is not counted.
    assert_eq!(got.detail("machines_total"), 2);
    assert_eq!(got.detail("machines_started"), 2);
    let machines = got.detail("machines").as_array().unwrap();
    assert_eq!(machines[0]["group"], "web");
    assert_eq!(machines[0]["checks"][0]["status"], "passing");
    let roles: Vec<&str> = got.blobs.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["fly.app", "fly.machines"]);
    assert!(
        String::from_utf8_lossy(&got.blobs[1].1).contains("148e0003"),
        "raw response kept whole"
    );
    got.assert_no_canary("canaryAAA");
    got.assert_no_canary("canaryBBB");
}

/// Raw tokens, as minted: macaroons (`fm2_`, `fm1r_`) must go out as
/// `FlyV1 <token>` and anything else as `Bearer <token>`; the fixture accepts
/// only those exact headers, so a wrong choice fails the probe.
#[tokio::test]
async fn fly_authorization_scheme_follows_token_type() {
    let fly = support::fly::start().await;
    let check = fly_spec("hotdash-chatwoot", "");
    for (token, header) in [
        (FM2_TOKEN, "FlyV1 fm2_canaryAAA,fm2_canaryBBB"),
        (READONLY_TOKEN, "FlyV1 fm1r_canaryREADONLY"),
        (FO1_TOKEN, "Bearer fo1_canaryPERSONAL"),
    ] {
        let got = probe(&check, &fly_scope(&fly.url, token)).await;
        assert!(got.passed(), "{token}: {}", got.reason());
        let last = fly.seen.lock().unwrap().authorizations.last().cloned();
        assert_eq!(last.as_deref(), Some(header), "{token}");
    }
    // A token pasted with the scheme `fly tokens create` prints (or with
    // Fly's documented `Bearer` in front of that) is sent with one scheme.
    for pasted in [
        "FlyV1 fm2_canaryAAA,fm2_canaryBBB",
        "Bearer FlyV1 fm2_canaryAAA,fm2_canaryBBB",
    ] {
        let got = probe(&check, &fly_scope(&fly.url, pasted)).await;
        assert!(got.passed(), "{pasted}: {}", got.reason());
    }
    // The fixture really refuses the wrong scheme for a right token.
    let client = crate::support::http_client();
    for wrong in [
        "Bearer fm2_canaryAAA,fm2_canaryBBB",
        "FlyV1 fo1_canaryPERSONAL",
        "FlyV1 fm2_canaryAAA, fm2_canaryBBB",
    ] {
        let status = client
            .get(format!("{}/v1/apps/hotdash-chatwoot", fly.url))
            .header("authorization", wrong)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{wrong}");
    }
}

#[tokio::test]
async fn fly_app_path_keeps_unreserved_characters() {
    let fly = support::fly::start().await;
    let check = fly_spec("hotdash-chatwoot", "process_groups = [\"web\", \"worker\"]");
    let got = probe(&check, &fly_scope(&fly.url, FO1_TOKEN)).await;
    assert!(got.passed(), "{}", got.reason());
    let seen = fly.seen.lock().unwrap();
    assert_eq!(
        seen.raw_paths,
        [
            "/v1/apps/hotdash-chatwoot",
            "/v1/apps/hotdash-chatwoot/machines"
        ]
    );
}

#[tokio::test]
async fn fly_json_predicates_see_the_machines_as_the_api_returns_them() {
    let fly = support::fly::start().await;
    let scope = fly_scope(&fly.url, FO1_TOKEN);
    let pass = fly_spec(
        "hotdash-chatwoot",
        "json = { \"$.machines[*].state\" = { all = \"started\", len = 2 } }",
    );
    let got = probe(&pass, &scope).await;
    assert!(got.passed(), "{}", got.reason());
    let fail = fly_spec(
        "stopped-worker",
        "json = { \"$.machines[*].state\" = { all = \"started\" } }",
    );
    let got = probe(&fail, &scope).await;
    assert_eq!(
        got.reason(),
        "Fly API JSON $.machines[*].state: element $['machines'][1]['state']: actual \"stopped\", expected \"started\""
    );
}

#[tokio::test]
async fn fly_stopped_worker_names_the_group() {
    let fly = support::fly::start().await;
    let check = fly_spec("stopped-worker", "process_groups = [\"web\", \"worker\"]");
    let got = probe(&check, &fly_scope(&fly.url, FO1_TOKEN)).await;
    assert_eq!(got.reason(), "worker: 0 of 1 started (stopped)");
    assert_eq!(got.class(), Some(FailureClass::Expectation));
    assert!(!got.permanent());
}

#[tokio::test]
async fn fly_group_counts_table() {
    let fly = support::fly::start().await;
    let check = fly_spec(
        "hotdash-chatwoot",
        "process_groups = { web = 2, worker = 1 }",
    );
    let got = probe(&check, &fly_scope(&fly.url, FO1_TOKEN)).await;
    assert_eq!(got.reason(), "web: 1 of 1 started, 2 required");
}

#[tokio::test]
async fn fly_critical_check_names_check_and_machine() {
    let fly = support::fly::start().await;
    let check = fly_spec("critical-check", "");
    let got = probe(&check, &fly_scope(&fly.url, FO1_TOKEN)).await;
    assert!(
        got.reason()
            .starts_with("check servicecheck-00-http-3000 on 148e0001 is critical: Get"),
        "{}",
        got.reason()
    );
    let relaxed = fly_spec("critical-check", "checks = \"ignore\"");
    assert!(probe(&relaxed, &fly_scope(&fly.url, FO1_TOKEN))
        .await
        .passed());
}

#[tokio::test]
async fn fly_failed_machine_fails() {
    let fly = support::fly::start().await;
    let got = probe(
        &fly_spec("failed-machine", ""),
        &fly_scope(&fly.url, FO1_TOKEN),
    )
    .await;
    assert_eq!(got.reason(), "machine 148e0002 (worker) is failed");
}

#[tokio::test]
async fn fly_starting_machine_passes_on_third_poll() {
    let fly = support::fly::start().await;
    let check = fly_spec("slow-start", "process_groups = [\"web\", \"worker\"]");
    let scope = fly_scope(&fly.url, FO1_TOKEN);
    for _ in 0..2 {
        let got = probe(&check, &scope).await;
        assert_eq!(got.reason(), "web: 0 of 1 started (starting)");
        assert!(!got.permanent(), "a transient state must be retried");
    }
    let third = probe(&check, &scope).await;
    assert!(third.passed(), "{}", third.reason());
}

#[tokio::test]
async fn fly_unknown_app_is_permanent_404() {
    let fly = support::fly::start().await;
    let got = probe(&fly_spec("nope-app", ""), &fly_scope(&fly.url, FO1_TOKEN)).await;
    assert_eq!(got.reason(), "app nope-app not found (404): app not found");
    assert_eq!(got.class(), Some(FailureClass::NotFound));
    assert!(got.permanent());
    let gone = fly_spec("nope-app", "app_exists = false");
    assert!(probe(&gone, &fly_scope(&fly.url, FO1_TOKEN)).await.passed());
}

#[tokio::test]
async fn fly_bad_token_is_permanent_401_without_the_token() {
    let fly = support::fly::start().await;
    let got = probe(
        &fly_spec("hotdash-chatwoot", ""),
        &fly_scope(&fly.url, "fm2_canaryWRONG"),
    )
    .await;
    assert_eq!(got.reason(), "token rejected (401): invalid token");
    assert_eq!(got.class(), Some(FailureClass::Auth));
    assert!(got.permanent());
    got.assert_no_canary("canaryWRONG");
    let forbidden = probe(
        &fly_spec("other-org-app", ""),
        &fly_scope(&fly.url, FO1_TOKEN),
    )
    .await;
    assert_eq!(
        forbidden.reason(),
        "token may not access app other-org-app (403): unauthorized"
    );
    assert_eq!(forbidden.class(), Some(FailureClass::Auth));
    assert!(forbidden.permanent());
}

#[tokio::test]
async fn fly_api_url_in_step_wins_and_unreachable_api_is_retryable() {
    let port = closed_port();
    let check = spec(
        "fly-app",
        &format!("app = \"x\"\napi_url = \"http://127.0.0.1:{port}\""),
    );
    let got = probe(&check, &MapScope::new().secret("FLY_API_TOKEN", FO1_TOKEN)).await;
    assert!(
        got.reason()
            .starts_with("Machines API GET /v1/apps/x: cannot connect"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Refused));
    assert!(!got.permanent());
}

#[tokio::test]
async fn fly_missing_token_is_permanent() {
    let got = probe(&fly_spec("x", ""), &MapScope::new()).await;
    assert_eq!(got.class(), Some(FailureClass::Config));
    assert!(
        got.reason().contains("{{secret:FLY_API_TOKEN}}"),
        "{}",
        got.reason()
    );
    assert!(got.permanent());
}

#[tokio::test]
async fn fly_huge_response_is_capped_and_recorded_as_truncated() {
    let server = support::hostile::huge_body_server().await;
    let got = probe(&fly_spec("x", ""), &fly_scope(&server.url, FO1_TOKEN)).await;
    assert_eq!(
        got.class(),
        Some(FailureClass::Protocol),
        "{}",
        got.reason()
    );
    assert!(
        got.reason().contains("passed the 1 MiB body cap"),
        "{}",
        got.reason()
    );
    assert_capped(&got, 1024 * 1024, 2);
    assert_stopped_reading(&server).await;
}

/// The client hung up long before the 64 MiB were sent: it did not read them.
async fn assert_stopped_reading(server: &support::hostile::HugeBody) {
    for written in server.written_by(2).await {
        assert!(
            written < support::hostile::HUGE_BODY / 2,
            "{written} bytes were taken"
        );
    }
}

/// Every stored body is within `cap`, and `count` of them say they were cut.
fn assert_capped(got: &support::probe::Probed, cap: usize, count: usize) {
    assert_eq!(got.blobs.len(), count, "blobs stored");
    for (role, bytes) in &got.blobs {
        assert!(bytes.len() <= cap, "{role}: {} bytes", bytes.len());
        assert!(!bytes.is_empty(), "{role} is empty");
    }
    let truncated = got.obs.blobs.iter().filter(|b| b.truncated).count();
    assert_eq!(truncated, count, "{:?}", got.obs.blobs);
}

// ---------------------------------------------------------------- postgres

/// The throwaway server's real password, which must never be echoed.
const PG_CANARY: &str = services::PG_PASSWORD;

/// `127.0.0.1:PORT` of the throwaway PostgreSQL.
fn pg_addr() -> String {
    services::postgres().addr()
}

fn pg(_dsn: &str, extra: &str) -> crate::support::api::check::CheckSpec {
    spec(
        "postgres",
        &format!("dsn = \"{{{{secret:DATABASE_URL}}}}\"\n{extra}\n"),
    )
}

fn pg_scope(dsn: &str) -> MapScope {
    MapScope::new().secret("DATABASE_URL", dsn)
}

#[tokio::test]
async fn postgres_select_one_passes() {
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@{}/postgres?sslmode=disable",
        pg_addr()
    );
    let check = pg(
        &dsn,
        "[expect]\nvalue = \"1\"\nrows = 1\nserver_version_min = \"9.6\"\nmax_latency = \"5s\"",
    );
    let got = probe(&check, &pg_scope(&dsn)).await;
    assert!(got.passed(), "{}", got.reason());
    assert_eq!(got.detail("tls"), false);
    assert_eq!(got.detail("value"), "1");
    assert!(got
        .detail("server_version")
        .as_str()
        .unwrap()
        .chars()
        .next()
        .unwrap()
        .is_ascii_digit());
    got.assert_no_canary(PG_CANARY);
}

#[tokio::test]
async fn postgres_key_value_dsn_and_wrong_value() {
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres password='{PG_CANARY}' dbname=postgres sslmode=disable",
        services::postgres().port
    );
    let check = pg(&dsn, "query = \"select 2\"\n[expect]\nvalue = \"1\"");
    let got = probe(&check, &pg_scope(&dsn)).await;
    assert_eq!(got.reason(), "query returned \"2\", expected \"1\"");
    assert_eq!(got.class(), Some(FailureClass::Expectation));
    got.assert_no_canary(PG_CANARY);
}

#[tokio::test]
async fn postgres_missing_database_is_3d000() {
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@{}/runproof_no_such_db?sslmode=disable",
        pg_addr()
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    assert_eq!(
        got.reason(),
        "database runproof_no_such_db does not exist (3D000)"
    );
    assert_eq!(got.class(), Some(FailureClass::NotFound));
    assert!(got.permanent());
    got.assert_no_canary(PG_CANARY);
}

#[tokio::test]
async fn postgres_refused_port() {
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@127.0.0.1:{}/postgres?sslmode=disable",
        closed_port()
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    assert!(
        got.reason().starts_with("connection refused by 127.0.0.1:"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Refused));
    assert!(!got.permanent());
    got.assert_no_canary(PG_CANARY);
}

#[tokio::test]
async fn postgres_require_against_tls_server_is_encrypted() {
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@{}/postgres?sslmode=require",
        pg_addr()
    );
    let got = probe(&pg(&dsn, "[expect]\ntls = true"), &pg_scope(&dsn)).await;
    assert!(got.passed(), "{}", got.reason());
    assert_eq!(got.detail("tls"), true);
    assert_eq!(got.detail("sslmode"), "require");
}

#[tokio::test]
async fn postgres_verify_full_rejects_snakeoil_certificate() {
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@{}/postgres?sslmode=verify-full",
        pg_addr()
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    // The throwaway server's certificate is self-signed: no trusted root issued it.
    let reason = got.reason();
    assert!(
        reason.starts_with("certificate is not valid for 127.0.0.1")
            || reason.starts_with("certificate is not trusted (unknown issuer)"),
        "{reason}"
    );
    assert!(reason.ends_with(&format!("({})", pg_addr())), "{reason}");
    // Waiting may see a renewed certificate, so this is retryable.
    assert_eq!(got.class(), Some(FailureClass::Tls));
    assert!(!got.permanent());
    got.assert_no_canary(PG_CANARY);
}

#[tokio::test]
async fn postgres_require_against_server_without_tls() {
    let fake = support::pgwire::start(support::pgwire::Behaviour::NoTls).await;
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@127.0.0.1:{}/postgres?sslmode=require",
        fake.port
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    assert_eq!(
        got.reason(),
        format!(
            "TLS required (sslmode=require) but 127.0.0.1:{} does not offer it",
            fake.port
        )
    );
    assert_eq!(got.class(), Some(FailureClass::Tls));
    assert!(got.permanent());
}

#[tokio::test]
async fn postgres_wrong_password_is_28p01_and_never_echoed() {
    let fake = support::pgwire::start(support::pgwire::Behaviour::WrongPassword).await;
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@127.0.0.1:{}/postgres?sslmode=disable",
        fake.port
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    assert_eq!(
        got.reason(),
        "authentication failed for user postgres (28P01): password authentication failed for user \"postgres\""
    );
    assert!(got.permanent());
    assert_eq!(got.detail("sqlstate"), "28P01");
    assert_eq!(got.class(), Some(FailureClass::Auth));
    // The password did go over the wire (so the test exercised it) but nowhere else.
    assert!(String::from_utf8_lossy(&fake.received.lock().unwrap()).contains(PG_CANARY));
    got.assert_no_canary(PG_CANARY);
}

/// The throwaway server checks passwords with SCRAM: a wrong one meets a real
/// 28P01, and the right one (the other tests) really had to be right.
#[tokio::test]
async fn postgres_real_server_rejects_a_wrong_password_with_28p01() {
    for sslmode in ["disable", "require"] {
        let dsn = format!(
            "postgres://postgres:wrong-{PG_CANARY}@{}/postgres?sslmode={sslmode}",
            pg_addr()
        );
        let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
        assert_eq!(
            got.reason(),
            "authentication failed for user postgres (28P01): password authentication failed for user \"postgres\"",
            "sslmode={sslmode}"
        );
        assert!(got.permanent());
        assert_eq!(got.detail("sqlstate"), "28P01");
        got.assert_no_canary(PG_CANARY);
    }
    // The same DSN with the right password passes: the failure above is the password's.
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@{}/postgres?sslmode=require",
        pg_addr()
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    assert!(got.passed(), "{}", got.reason());
}

#[tokio::test]
async fn postgres_supavisor_tenant_not_found() {
    let fake = support::pgwire::start(support::pgwire::Behaviour::TenantNotFound).await;
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@127.0.0.1:{}/postgres",
        fake.port
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    assert!(
        got.reason().contains("Tenant or user not found"),
        "{}",
        got.reason()
    );
    assert!(
        got.reason().contains("postgres.<project-ref>"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Auth));
    assert!(got.permanent());
    got.assert_no_canary(PG_CANARY);
}

#[tokio::test]
async fn postgres_query_error_reports_sqlstate() {
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@{}/postgres?sslmode=disable",
        pg_addr()
    );
    let got = probe(
        &pg(&dsn, "query = \"select * from runproof_missing_table\""),
        &pg_scope(&dsn),
    )
    .await;
    assert!(
        got.reason().starts_with("server error (42P01)"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::NotFound));
}

#[tokio::test]
async fn postgres_invalid_dsn_does_not_echo_it() {
    let dsn = format!(
        "postgres://postgres:{PG_CANARY}@{}/postgres?bogus_option={PG_CANARY}",
        pg_addr()
    );
    let got = probe(&pg(&dsn, ""), &pg_scope(&dsn)).await;
    assert!(
        got.reason().starts_with("the DSN is not valid"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Config));
    assert!(got.permanent());
    got.assert_no_canary(PG_CANARY);
}

// ---------------------------------------------------------------- redis

/// The password-protected throwaway Redis's password.
const REDIS_CANARY: &str = services::REDIS_PASSWORD;

#[tokio::test]
async fn redis_ping_passes_with_info_expectation() {
    let check = spec(
        "redis",
        &format!(
            "url = \"redis://{}/0\"\n[expect.info]\nrole = \"master\"",
            services::redis().addr()
        ),
    );
    let got = probe(&check, &MapScope::new()).await;
    assert!(got.passed(), "{}", got.reason());
    assert_eq!(got.detail("role"), "master");
    let wrong = spec(
        "redis",
        &format!(
            "url = \"redis://{}\"\n[expect.info]\nrole = \"slave\"",
            services::redis().addr()
        ),
    );
    assert_eq!(
        probe(&wrong, &MapScope::new()).await.reason(),
        "INFO role is \"master\", expected \"slave\""
    );
}

#[tokio::test]
async fn redis_refused_port() {
    let check = spec(
        "redis",
        &format!("url = \"redis://127.0.0.1:{}\"", closed_port()),
    );
    let got = probe(&check, &MapScope::new()).await;
    assert!(
        got.reason().starts_with("connection refused by 127.0.0.1:"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Refused));
    assert!(!got.permanent());
}

#[tokio::test]
async fn redis_wrongpass_is_distinct_and_permanent() {
    let port = support::resp::start_wrongpass().await;
    let check = spec(
        "redis",
        &format!(
            "url = \"redis://127.0.0.1:{port}\"\npassword = \"{{{{secret:REDIS_PASSWORD}}}}\""
        ),
    );
    let got = probe(
        &check,
        &MapScope::new().secret("REDIS_PASSWORD", REDIS_CANARY),
    )
    .await;
    assert_eq!(
        got.reason(),
        "AUTH rejected: WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(got.class(), Some(FailureClass::Auth));
    assert!(got.permanent());
    got.assert_no_canary(REDIS_CANARY);
}

#[tokio::test]
async fn redis_private_server_with_password() {
    let server = services::redis_with_password();
    let url_check = spec("redis", "url = \"{{secret:REDIS_URL}}\"");
    let good = format!("redis://:{REDIS_CANARY}@127.0.0.1:{}", server.port);
    let got = probe(&url_check, &MapScope::new().secret("REDIS_URL", &good)).await;
    assert!(got.passed(), "{}", got.reason());
    got.assert_no_canary(REDIS_CANARY);

    let bad = format!("redis://:wrong-{REDIS_CANARY}@127.0.0.1:{}", server.port);
    let got = probe(&url_check, &MapScope::new().secret("REDIS_URL", &bad)).await;
    assert!(
        got.reason().starts_with("AUTH rejected: WRONGPASS"),
        "{}",
        got.reason()
    );
    got.assert_no_canary(REDIS_CANARY);

    let none = format!("redis://127.0.0.1:{}", server.port);
    let got = probe(&url_check, &MapScope::new().secret("REDIS_URL", &none)).await;
    assert!(
        got.reason()
            .starts_with("server requires a password (NOAUTH"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Auth));
    assert!(got.permanent());
}

#[tokio::test]
async fn redis_hostile_replies_are_protocol_failures_not_crashes() {
    use support::resp::{start_hostile, Hostile};
    for (how, wanted) in [
        (
            Hostile::HugeBulkLength,
            "connection lost during PING: a bulk reply of 9223372036854775000 bytes is over the 4194304-byte cap",
        ),
        (
            Hostile::EndlessErrorLine,
            "connection lost during PING: a reply line ran past 65536 bytes",
        ),
    ] {
        let port = start_hostile(how).await;
        let check = spec("redis", &format!("url = \"redis://127.0.0.1:{port}\""));
        let started = std::time::Instant::now();
        let got = probe(&check, &MapScope::new()).await;
        assert_eq!(got.reason(), wanted, "{how:?}");
        assert_eq!(got.class(), Some(FailureClass::Protocol), "{how:?}");
        // Judged at once, not by the 5 s attempt timeout.
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{how:?}");
    }
}

// ---------------------------------------------------------------- supabase

#[tokio::test]
async fn supabase_health_and_table_pass_without_bearer() {
    use support::supabase::{start, SECRET_KEY};
    let fixture = start().await;
    let check = spec(
        "supabase",
        &format!(
            "url = \"{}\"\napikey = \"{{{{secret:SUPABASE_KEY}}}}\"\ntable = \"accounts\"",
            fixture.url
        ),
    );
    let got = probe(&check, &MapScope::new().secret("SUPABASE_KEY", SECRET_KEY)).await;
    assert!(got.passed(), "{}", got.reason());
    assert_eq!(got.detail("auth_health")["version"], "v2.170.0");
    assert_eq!(got.detail("rest")["status"], 200);
    assert!(
        fixture.authorizations.lock().unwrap().is_empty(),
        "sb_ keys never go in Authorization"
    );
    got.assert_no_canary("canaryGOOD");
}

async fn supabase_reason(key: &str, table: Option<&str>) -> (String, bool) {
    let (reason, permanent, _) = supabase_outcome(key, table).await;
    (reason, permanent)
}

async fn supabase_outcome(key: &str, table: Option<&str>) -> (String, bool, Option<FailureClass>) {
    let fixture = support::supabase::start().await;
    let mut toml_text = format!(
        "url = \"{}\"\napikey = \"{{{{secret:SUPABASE_KEY}}}}\"",
        fixture.url
    );
    if let Some(table) = table {
        toml_text.push_str(&format!("\nauth_health = false\ntable = \"{table}\""));
    }
    let got = probe(
        &spec("supabase", &toml_text),
        &MapScope::new().secret("SUPABASE_KEY", key),
    )
    .await;
    got.assert_no_canary("canary");
    (got.reason().to_string(), got.permanent(), got.class())
}

#[tokio::test]
async fn supabase_401_bodies_become_readable_reasons() {
    use support::supabase::PUBLISHABLE_KEY;
    assert_eq!(
        supabase_reason("", None).await,
        ("auth health: no API key was sent (401)".into(), true)
    );
    assert_eq!(
        supabase_reason("eyJcanaryLEGACY", None).await,
        ("auth health: invalid API key (401)".into(), true)
    );
    assert_eq!(
        supabase_reason("sb_secret_canaryBAD", None).await,
        ("auth health: invalid API key (401)".into(), true)
    );
    assert_eq!(
        supabase_reason(PUBLISHABLE_KEY, Some("admin_only")).await,
        (
            "rest: secret key required: this route does not accept a publishable/anon key (401)"
                .into(),
            true
        )
    );
    assert_eq!(supabase_outcome("", None).await.2, Some(FailureClass::Auth));
    let (missing, permanent, class) = supabase_outcome(PUBLISHABLE_KEY, Some("nope")).await;
    assert_eq!(class, Some(FailureClass::NotFound));
    assert!(
        missing.starts_with("rest: /rest/v1/nope?select=id&limit=1 not found (404)"),
        "{missing}"
    );
    assert!(permanent);
}

#[tokio::test]
async fn supabase_huge_responses_are_capped_and_recorded_as_truncated() {
    let server = support::hostile::huge_body_server().await;
    let url = &server.url;
    let check = spec(
        "supabase",
        &format!("url = \"{url}\"\napikey = \"{{{{secret:SUPABASE_KEY}}}}\"\ntable = \"accounts\""),
    );
    let got = probe(
        &check,
        &MapScope::new().secret("SUPABASE_KEY", "sb_secret_canaryHUGE"),
    )
    .await;
    // Both answered 200: the check passes on status, with the bodies cut.
    assert!(got.passed(), "{}", got.reason());
    assert_capped(&got, 64 * 1024, 2);
    assert_stopped_reading(&server).await;
}

// ---------------------------------------------------------------- tcp / dns

#[tokio::test]
async fn tcp_open_and_refused() {
    let open = spec(
        "tcp",
        &format!("host = \"127.0.0.1\"\nport = {}", services::redis().port),
    );
    assert!(probe(&open, &MapScope::new()).await.passed());
    let closed = spec(
        "tcp",
        &format!("host = \"127.0.0.1\"\nport = {}", closed_port()),
    );
    let got = probe(&closed, &MapScope::new()).await;
    assert!(
        got.reason().starts_with("connection refused by 127.0.0.1:"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Refused));
}

#[tokio::test]
async fn dns_localhost_resolves_to_loopback() {
    let check = spec(
        "dns",
        "name = \"localhost\"\n[expect]\naddresses = [\"127.0.0.1\"]\nrecord_types = [\"A\"]",
    );
    let got = probe(&check, &MapScope::new()).await;
    assert!(got.passed(), "{}", got.reason());
    let wrong = spec(
        "dns",
        "name = \"localhost\"\n[expect]\naddresses = [\"127.0.0.2\"]",
    );
    let got = probe(&wrong, &MapScope::new()).await;
    assert!(
        got.reason()
            .starts_with("localhost does not resolve to 127.0.0.2 (got "),
        "{}",
        got.reason()
    );
}

// ---------------------------------------------------------------- tls

fn ca_file(ca: &support::tls::TestCa) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &ca.pem).unwrap();
    file
}

fn tls_spec(
    port: u16,
    ca: &tempfile::NamedTempFile,
    extra: &str,
) -> crate::support::api::check::CheckSpec {
    spec(
        "tls",
        &format!(
            "host = \"127.0.0.1\"\nport = {port}\nserver_name = \"localhost\"\nca_file = \"{}\"\n{extra}",
            ca.path().display()
        ),
    )
}

#[tokio::test]
async fn tls_valid_certificate_reports_facts() {
    use support::tls::{ca, days_from_now, leaf, serve};
    let ca = ca();
    let port = serve(leaf(
        &ca,
        &["localhost"],
        days_from_now(-1),
        days_from_now(90),
    ))
    .await;
    let file = ca_file(&ca);
    let got = probe(
        &tls_spec(port, &file, "[expect]\nmin_days_left = 30"),
        &MapScope::new(),
    )
    .await;
    assert!(got.passed(), "{}", got.reason());
    let cert = got.detail("certificate");
    assert_eq!(cert["sans"][0], "localhost");
    assert!(cert["issuer"]
        .as_str()
        .unwrap()
        .contains("runproof test CA"));
    let days = got.detail("days_left").as_i64().unwrap();
    assert!((88..=90).contains(&days), "{days}");
}

#[tokio::test]
async fn tls_untrusted_without_ca_file() {
    use support::tls::{ca, days_from_now, leaf, serve};
    let ca = ca();
    let port = serve(leaf(
        &ca,
        &["localhost"],
        days_from_now(-1),
        days_from_now(90),
    ))
    .await;
    let check = spec(
        "tls",
        &format!("host = \"127.0.0.1\"\nport = {port}\nserver_name = \"localhost\""),
    );
    let got = probe(&check, &MapScope::new()).await;
    assert_eq!(
        got.reason(),
        "certificate chain is not trusted (issuer CN=runproof test CA)"
    );
    assert_eq!(got.class(), Some(FailureClass::Tls));
}

#[tokio::test]
async fn tls_expired_certificate() {
    use support::tls::{ca, leaf, serve};
    let ca = ca();
    let port = serve(leaf(&ca, &["localhost"], (2020, 1, 1), (2021, 1, 1))).await;
    let file = ca_file(&ca);
    let got = probe(&tls_spec(port, &file, ""), &MapScope::new()).await;
    assert!(
        got.reason()
            .starts_with("certificate expired on 2021-01-01"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Tls));
    assert!(got.detail("days_left").as_i64().unwrap() < 0);
}

#[tokio::test]
async fn tls_expiring_within_min_days_left() {
    use support::tls::{ca, days_from_now, leaf, serve};
    let ca = ca();
    let port = serve(leaf(
        &ca,
        &["localhost"],
        days_from_now(-60),
        days_from_now(5),
    ))
    .await;
    let file = ca_file(&ca);
    let got = probe(
        &tls_spec(port, &file, "[expect]\nmin_days_left = 30"),
        &MapScope::new(),
    )
    .await;
    assert!(
        got.reason().starts_with("certificate expires in "),
        "{}",
        got.reason()
    );
    assert!(
        got.reason().ends_with("at least 30 required"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Expectation));
}

#[tokio::test]
async fn tls_wrong_host_name() {
    use support::tls::{ca, days_from_now, leaf, serve};
    let ca = ca();
    let port = serve(leaf(
        &ca,
        &["other.example"],
        days_from_now(-1),
        days_from_now(90),
    ))
    .await;
    let file = ca_file(&ca);
    let got = probe(&tls_spec(port, &file, ""), &MapScope::new()).await;
    assert_eq!(
        got.reason(),
        "certificate is not valid for localhost (it names other.example)"
    );
    assert_eq!(got.class(), Some(FailureClass::Tls));
}

// ---------------------------------------------------------------- example runbook

/// Every platform step of the example runbook deserializes and validates
/// with its kind (the runbook loader itself is tested elsewhere).
#[test]
fn example_runbook_platform_steps_parse() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/chatwoot-fly.toml"
    ))
    .unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let common = [
        "id",
        "title",
        "check",
        "depends_on",
        "hint",
        "retries",
        "timeout",
        "mutating",
    ];
    let mut kinds = Vec::new();
    for step in doc["step"].as_array().unwrap() {
        let mut table = step.as_table().unwrap().clone();
        let kind = table["check"].as_str().unwrap().to_string();
        if ![
            "fly-app", "postgres", "supabase", "redis", "tcp", "dns", "tls",
        ]
        .contains(&kind.as_str())
        {
            continue;
        }
        table.retain(|key, _| !common.contains(&key));
        let check = spec(&kind, &toml::to_string(&table).unwrap());
        assert!(
            check.validate().is_empty(),
            "{kind}: {:?}",
            check.validate()
        );
        kinds.push(kind);
    }
    assert_eq!(kinds, ["fly-app", "tls", "postgres", "supabase", "redis"]);
}

#[test]
fn unknown_keys_are_rejected() {
    for (kind, body) in [
        ("fly-app", "app = \"x\"\nregion = \"ord\""),
        ("postgres", "dsn = \"x\"\nrequire_tls = true"),
        ("redis", "url = \"redis://x\"\n[expect]\npong = true"),
        ("tls", "host = \"x\"\nmin_days_left = 3"),
    ] {
        let de = toml::de::Deserializer::parse(body).unwrap();
        let err = crate::support::api::check::CheckSpec::deserialize_kind(kind, de).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{kind}: {err}");
    }
}

#[tokio::test]
async fn rediss_verifies_the_certificate_before_speaking() {
    use support::tls::{ca, days_from_now, leaf, serve};
    let ca = ca();
    // A TLS server that is not Redis: it greets with "hello" and hangs up.
    let port = serve(leaf(
        &ca,
        &["localhost"],
        days_from_now(-1),
        days_from_now(90),
    ))
    .await;
    let untrusted = spec("redis", &format!("url = \"rediss://localhost:{port}\""));
    let got = probe(&untrusted, &MapScope::new()).await;
    assert_eq!(
        got.reason(),
        format!("certificate is not trusted (unknown issuer) (localhost:{port})")
    );
    assert_eq!(got.class(), Some(FailureClass::Tls));
    let file = ca_file(&ca);
    let trusted = spec(
        "redis",
        &format!(
            "url = \"rediss://localhost:{port}\"\nca_file = \"{}\"",
            file.path().display()
        ),
    );
    let got = probe(&trusted, &MapScope::new()).await;
    assert!(
        got.reason()
            .starts_with("connection lost during PING: not a RESP reply: hello"),
        "{}",
        got.reason()
    );
    assert_eq!(got.class(), Some(FailureClass::Protocol));
    assert_eq!(got.detail("tls"), true);
}

#[tokio::test]
async fn fly_guest_sizes_are_checked_per_process_group() {
    let fly = support::fly::start().await;
    let scope = fly_scope(&fly.url, FO1_TOKEN);
    let pass = fly_spec(
        "hotdash-chatwoot",
        "guest = { web = { memory_mb = { ge = 256 }, cpus = 1, cpu_kind = \"shared\" } }",
    );
    let got = probe(&pass, &scope).await;
    assert!(got.passed(), "{}", got.reason());

    let too_small = fly_spec(
        "hotdash-chatwoot",
        "guest = { web = { memory_mb = { ge = 1024 } }, nowhere = { cpus = 1 } }",
    );
    let got = probe(&too_small, &scope).await;
    let reason = got.reason();
    assert!(
        reason.contains("guest.memory_mb: actual 256, expected >= 1024"),
        "{reason}"
    );
    assert!(
        reason.contains("nowhere: no machines to check the size of"),
        "{reason}"
    );
    assert_eq!(got.class(), Some(FailureClass::Expectation));
}

#[tokio::test]
async fn fly_secret_names_are_checked_never_values() {
    let fly = support::fly::start().await;
    let scope = fly_scope(&fly.url, FO1_TOKEN);
    let present = fly_spec(
        "hotdash-chatwoot",
        "secrets = [\"SECRET_KEY_BASE\", \"DATABASE_URL\"]",
    );
    let got = probe(&present, &scope).await;
    assert!(got.passed(), "{}", got.reason());
    assert_eq!(
        got.detail("secret_names"),
        &serde_json::json!(["SECRET_KEY_BASE", "DATABASE_URL"])
    );
    let missing = fly_spec(
        "hotdash-chatwoot",
        "secrets = [\"SECRET_KEY_BASE\", \"REDIS_URL\"]",
    );
    let got = probe(&missing, &scope).await;
    assert_eq!(got.reason(), "secret not set on the app: REDIS_URL");
    // Digests are the API's answer too: none is kept.
    let detail = serde_json::to_string(&got.obs.detail).unwrap();
    assert!(!detail.contains("5b1f0c2a9e"), "{detail}");
    assert!(got
        .blobs
        .iter()
        .all(|(_, b)| !String::from_utf8_lossy(b).contains("5b1f0c2a9e")));
}
