//! The shipped `runbooks/chatwoot-fly-deploy.toml`, run end to end by the
//! real binary against stand-ins on 127.0.0.1 only: a fake `fly` CLI first on
//! `PATH` (it records its argv and stdin and prints what flyctl prints), the
//! Fly Machines API fixture, a stand-in Chatwoot health document, and the
//! suite's throwaway PostgreSQL and Redis. Read-only, with
//! `--allow-mutations=deploy`, with a stopped worker and with a wrong
//! database password.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::services::{postgres_url, redis_with_password, PG_PASSWORD, REDIS_PASSWORD};
use crate::support::*;

/// The Fly token of the fixture (two macaroon parts, both canaries).
const FLY_TOKEN: &str = crate::support::fly::DEPLOY_TOKEN;
/// Only the deploy writes it; it must reach `fly secrets import`'s stdin only.
const SECRET_KEY_BASE: &str = "skbCanary-deploy-5e0f11";

/// The `fly` subcommands that change something.
const MUTATING: &[&str] = &[
    "apps create",
    "redis create",
    "secrets import",
    "deploy",
    "db:chatwoot_prepare",
    "scale count",
];

fn runbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/chatwoot-fly-deploy.toml")
}

/// A fake flyctl in `dir/bin/fly`: appends each argv (tab-separated, one
/// line) to `dir/argv.log` and `fly secrets import`'s stdin to
/// `dir/stdin.log`, and prints what flyctl prints for the subcommands the
/// runbook uses; Redis URLs are `redis_url`.
fn fake_fly(dir: &Path, redis_url: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let argv_log = dir.join("argv.log");
    let stdin_log = dir.join("stdin.log");
    let script = format!(
        r#"#!/bin/sh
printf '%s\t' "$@" >> '{argv}'
printf '\n' >> '{argv}'
app=""; cmd=""; prev=""
for a in "$@"; do
  [ "$prev" = "--app" ] && app="$a"
  [ "$prev" = "-C" ] && cmd="$a"
  prev="$a"
done
case "$1" in
apps) echo "New app created: $3" ;;
redis)
  case "$2" in
  create)
    echo "Your Upstash Redis database hotdash-chatwoot-redis is ready."
    echo "Apps in the personal org can connect to Redis at {redis}"
    echo "If you have redis-cli installed, use fly redis connect to get a Redis console." ;;
  status)
    printf 'Redis\n  ID             = 4Zj2wQvXy\n  Name           = %s\n  Plan           = Pay-as-you-go\n  Primary Region = ord\n  Eviction       = Enabled\n  Private URL    = {redis}\n' "$3" ;;
  esac ;;
secrets)
  case "$2" in
  import)
    cat >> '{stdin}'
    echo "Secrets have been staged, but not set on VMs. Deploy or update machines in this app for the secrets to take effect." ;;
  list)
    echo '[{{"Name":"DATABASE_URL","Digest":"3c1a0f","CreatedAt":"2026-01-01T00:00:00Z"}},{{"Name":"REDIS_URL","Digest":"9b2e44","CreatedAt":"2026-01-01T00:00:00Z"}},{{"Name":"SECRET_KEY_BASE","Digest":"77d0aa","CreatedAt":"2026-01-01T00:00:00Z"}}]' ;;
  esac ;;
status) echo "{{\"ID\":\"$app\",\"Name\":\"$app\",\"Status\":\"deployed\",\"Deployed\":true,\"Hostname\":\"$app.fly.dev\",\"Version\":7}}" ;;
deploy)
  echo "==> Verifying app config"
  echo "--> Verified app config"
  echo "Visit your newly deployed app at https://$app.fly.dev/" ;;
releases) echo '[{{"ID":"Abc123","Version":7,"Stable":true,"InProgress":false,"Reason":"","Description":"Release","Status":"complete","DeploymentStatus":"successful","User":{{"Email":"ops@example.com"}},"CreatedAt":"2026-01-01T00:05:00Z","ImageRef":"registry.fly.io/hotdash-chatwoot:deployment-01J0ABC"}},{{"ID":"Abc122","Version":6,"Status":"complete"}}]' ;;
ssh)
  echo "Connecting to fdaa:0:18:a7b:196:e274:9ce1:2... complete"
  case "$cmd" in
  *db:chatwoot_prepare*) echo "Database chatwoot_production exists: migrating" ;;
  *db:migrate:status*)
    printf '\ndatabase: chatwoot_production\n\n Status   Migration ID    Migration Name\n--------------------------------------------------\n   up     20231211010807  Add cached labels list\n   up     20240102123456  Add sla policies\n' ;;
  *) echo "unknown command: $cmd" >&2; exit 1 ;;
  esac ;;
scale) echo "App '$app' is going to be scaled according to this plan:"; echo "  +1 machines for group 'web'"; echo "  +1 machines for group 'worker'" ;;
logs)
  echo "2026-01-01T00:05:31Z app[148e0002] ord [info] Sidekiq 7.2.4 starting"
  echo "2026-01-01T00:05:40Z app[148e0002] ord [info] worker: Main child exited normally with code: 1" ;;
*) echo "fake fly: unknown command: $*" >&2; exit 1 ;;
esac
"#,
        argv = argv_log.display(),
        stdin = stdin_log.display(),
        redis = redis_url,
    );
    let fly = bin.join("fly");
    std::fs::write(&fly, script).unwrap();
    std::fs::set_permissions(&fly, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Every `fly` invocation the fake saw, as space-joined argv.
fn invocations(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("argv.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim_end_matches('\t').replace('\t', " "))
        .collect()
}

fn is_mutating(invocation: &str) -> bool {
    MUTATING.iter().any(|m| invocation.contains(m))
}

/// Stand-ins for one run; they live as long as the value.
struct Deployment {
    runtime: tokio::runtime::Runtime,
    ws: Workspace,
    fly_api: String,
    chatwoot: String,
    bin: PathBuf,
    redis_url: String,
}

impl Deployment {
    fn new() -> Deployment {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let fly = runtime.block_on(crate::support::fly::start());
        let chatwoot = runtime.block_on(crate::support::chatwoot::stand_in(
            None,
            "unused-webhook-secret",
            "unused-api-token",
        ));
        let ws = Workspace::new();
        let redis_url = format!("redis://:{REDIS_PASSWORD}@{}", redis_with_password().addr());
        let bin = fake_fly(ws.path(), &redis_url);
        Deployment {
            runtime,
            ws,
            fly_api: fly.url,
            chatwoot: format!("http://{chatwoot}"),
            bin,
            redis_url,
        }
    }

    fn run(&self, app: &str, database_url: &str, extra: &[&str]) -> Output {
        let _keep = &self.runtime;
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let public_url = format!("public_url={}", self.chatwoot);
        let app_var = format!("app={app}");
        let mut args = vec!["--var", &public_url, "--var", &app_var];
        args.extend_from_slice(extra);
        self.ws.run_with_env(
            &runbook(),
            &args,
            &[
                ("PATH", &path),
                ("FLY_API_TOKEN", FLY_TOKEN),
                ("FLY_API_BASE_URL", &self.fly_api),
                ("DATABASE_URL", database_url),
                ("SECRET_KEY_BASE", SECRET_KEY_BASE),
                ("RUNPROOF_OPERATOR", "dana"),
            ],
        )
    }

    fn invocations(&self) -> Vec<String> {
        invocations(self.ws.path())
    }
}

const CONFIRM: &[&str] = &["--confirm", "super-admin", "--confirm", "cutover=\"go\""];

fn verified_events(output: &Output) -> (PathBuf, Vec<Value>) {
    let bundle = bundle_path(output);
    let verified = verify(&bundle, &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    let events = events(&bundle);
    (bundle, events)
}

const READ_ONLY: &[&str] = &[
    "fly-token",
    "app-exists",
    "redis-status",
    "secrets-listed",
    "release",
    "db-migrated",
    "machines",
    "health",
    "database",
    "redis",
    "super-admin",
    "cutover",
];
const DEPLOY: &[&str] = &[
    "create-app",
    "create-redis",
    "import-secrets",
    "deploy",
    "db-prepare",
    "scale",
];

fn canaries(d: &Deployment) -> Vec<String> {
    vec![
        FLY_TOKEN.to_string(),
        "fm2_canaryAAA".to_string(),
        PG_PASSWORD.to_string(),
        REDIS_PASSWORD.to_string(),
        d.redis_url.clone(),
        SECRET_KEY_BASE.to_string(),
    ]
}

fn assert_no_canary(d: &Deployment, output: &Output) {
    let canaries = canaries(d);
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    crate::support::canary::assert_nowhere(output, &d.ws.artifacts(), &canaries);
}

#[test]
fn read_only_run_verifies_the_deployment_and_mutates_nothing() {
    let d = Deployment::new();
    let output = d.run("hotdash-chatwoot", &postgres_url("postgres", ""), CONFIRM);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (_, events) = verified_events(&output);
    for step in READ_ONLY {
        assert_eq!(verdict(&events, step), "pass", "{step}");
    }
    for step in DEPLOY {
        assert_eq!(verdict(&events, step), "skipped", "{step}");
    }
    let seen = d.invocations();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|i| !is_mutating(i)),
        "a read-only run called a mutating fly subcommand: {seen:#?}"
    );
    assert_eq!(
        seen,
        [
            "status --app hotdash-chatwoot --json",
            "redis status hotdash-chatwoot-redis",
            "secrets list --app hotdash-chatwoot --json",
            "releases --app hotdash-chatwoot --json",
            "ssh console --app hotdash-chatwoot -C bundle exec rails db:migrate:status",
        ]
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("12 passed, 6 skipped"), "{stdout}");
    assert_no_canary(&d, &output);
}

#[test]
fn deploy_runs_the_mutations_in_order_with_secrets_on_stdin_only() {
    let d = Deployment::new();
    let mut extra = vec!["--allow-mutations=deploy"];
    extra.extend_from_slice(CONFIRM);
    let output = d.run("hotdash-chatwoot", &postgres_url("postgres", ""), &extra);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let (_, events) = verified_events(&output);
    for step in READ_ONLY.iter().chain(DEPLOY) {
        assert_eq!(verdict(&events, step), "pass", "{step}");
    }
    let seen = d.invocations();
    let mutations: Vec<&str> = seen
        .iter()
        .filter(|i| is_mutating(i))
        .map(String::as_str)
        .collect();
    assert_eq!(
        mutations,
        [
            "apps create hotdash-chatwoot --org personal",
            "redis create --name hotdash-chatwoot-redis --org personal --region ord --no-replicas --enable-eviction",
            "secrets import --app hotdash-chatwoot --stage",
            "deploy --app hotdash-chatwoot --config fly.toml --remote-only",
            "ssh console --app hotdash-chatwoot -C bundle exec rails db:chatwoot_prepare",
            "scale count web=1 worker=1 --app hotdash-chatwoot --yes",
        ]
    );
    // The secrets reached `fly secrets import` on stdin, and no argv.
    let stdin = std::fs::read_to_string(d.ws.path().join("stdin.log")).unwrap();
    let database_url = postgres_url("postgres", "");
    assert_eq!(
        stdin,
        format!(
            "SECRET_KEY_BASE={SECRET_KEY_BASE}\nDATABASE_URL={database_url}\nREDIS_URL={}\n",
            d.redis_url
        )
    );
    let argv_log = std::fs::read_to_string(d.ws.path().join("argv.log")).unwrap();
    for canary in [SECRET_KEY_BASE, PG_PASSWORD, REDIS_PASSWORD, "fm2_canary"] {
        assert!(!argv_log.contains(canary), "{canary} in argv: {argv_log}");
    }
    // The runner recorded the mutation policy in the header.
    let start = &records(&events, "run.start", None)[0];
    assert!(start.to_string().contains("deploy"), "{start}");
    assert_no_canary(&d, &output);
}

#[test]
fn a_stopped_worker_escalates_naming_it_with_the_fly_logs() {
    let d = Deployment::new();
    let output = d.run("stopped-worker", &postgres_url("postgres", ""), CONFIRM);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (bundle, events) = verified_events(&output);
    assert_eq!(verdict(&events, "machines"), "escalated");
    let escalation = &records(&events, "escalation", Some("machines"))[0];
    let reason = escalation["last_reason"].as_str().unwrap();
    assert!(
        reason.contains("worker: 0 of 1 started (stopped)"),
        "{reason}"
    );
    let collected = escalation["collected"].as_array().expect("collected");
    assert_eq!(collected.len(), 1, "{escalation}");
    assert_eq!(collected[0]["exit_code"], 0, "{escalation}");
    let blob = collected[0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["role"].as_str().unwrap().ends_with(": stdout"))
        .expect("stdout blob");
    let digest = blob["digest"].as_str().unwrap();
    let logs = std::fs::read_to_string(
        bundle
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert!(
        logs.contains("Main child exited normally with code: 1"),
        "{logs}"
    );
    assert!(d
        .invocations()
        .contains(&"logs --app stopped-worker --no-tail".to_string()));
    // The deployment halts there: nothing after it ran.
    for step in ["health", "database", "redis", "super-admin", "cutover"] {
        assert_eq!(verdict(&events, step), "skipped", "{step}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("worker"), "{stdout}");
    assert_no_canary(&d, &output);
}

#[test]
fn a_wrong_database_password_escalates_as_auth() {
    let d = Deployment::new();
    let wrong = postgres_url("postgres", "").replace(PG_PASSWORD, "wrongCanary-pw-0c1d");
    let output = d.run("hotdash-chatwoot", &wrong, CONFIRM);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (_, events) = verified_events(&output);
    assert_eq!(verdict(&events, "database"), "escalated");
    let escalation = &records(&events, "escalation", Some("database"))[0];
    assert_eq!(escalation["owner"], "database", "{escalation}");
    let attempts = escalation["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "auth does not burn retries: {escalation}"
    );
    assert_eq!(attempts[0]["class"], "auth", "{escalation}");
    let reason = escalation["last_reason"].as_str().unwrap();
    assert!(reason.contains("authentication failed"), "{reason}");
    for step in ["machines", "health"] {
        assert_eq!(verdict(&events, step), "pass", "{step}");
    }
    let mut canaries = canaries(&d);
    canaries.push("wrongCanary-pw-0c1d".to_string());
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    crate::support::canary::assert_nowhere(&output, &d.ws.artifacts(), &canaries);
}

#[test]
fn plan_shows_every_mutation_tagged_without_any_secret() {
    let output = runproof()
        .arg("plan")
        .arg(runbook())
        .env_remove("FLY_API_TOKEN")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for step in DEPLOY {
        let block = stdout
            .split("\n\n")
            .find(|b| b.contains(&format!(" {step} [command] (mutating)")))
            .unwrap_or_else(|| panic!("{step} not planned as mutating:\n{stdout}"));
        assert!(block.contains("tags:    deploy"), "{block}");
    }
    assert_eq!(
        stdout.matches("(mutating)").count(),
        DEPLOY.len(),
        "{stdout}"
    );
}
