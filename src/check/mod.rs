//! Check kinds: one file per kind, one [`CheckSpec`] variant, one match arm.
//!
//! A check's `probe` makes exactly one attempt and returns an [`Observation`]:
//! a failing service is an [`Outcome::Fail`] with a reason, never an `Err`.
//! Retries, timeouts, escalation and evidence belong to the engine alone.

pub mod command;
pub mod confirm;
pub mod dns;
pub mod expect;
pub mod fly;
pub mod http;
pub mod json;
pub mod postgres;
pub mod reaper;
pub mod redis;
pub mod resolve;
pub mod secret;
pub mod supabase;
pub mod support;
pub mod tcp;
pub mod tls;
pub mod url_path;
pub mod webhook;
pub mod webhook_delivery;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::core::numeric::Numeric;
use crate::core::template::{RenderError, Scope, Template};
pub use crate::core::{BlobRef, BlobSink, Failure, FailureClass};
use resolve::{Resolver, ResolverAddr};

/// Every check kind's name, as written in `check = "..."`.
pub const KINDS: &[&str] = &[
    "http",
    "secret",
    "command",
    "fly-app",
    "postgres",
    "supabase",
    "redis",
    "tcp",
    "dns",
    "tls",
    "webhook",
    "webhook-delivery",
    "confirm",
];

/// A check's configuration: the kind plus its parameters and expectations.
#[derive(Debug, Clone)]
pub enum CheckSpec {
    Http(http::HttpCheck),
    Secret(secret::SecretCheck),
    Command(command::CommandCheck),
    Webhook(webhook::WebhookCheck),
    WebhookDelivery(webhook_delivery::WebhookDeliveryCheck),
    FlyApp(fly::FlyAppCheck),
    Postgres(postgres::PostgresCheck),
    Supabase(supabase::SupabaseCheck),
    Redis(redis::RedisCheck),
    Tcp(tcp::TcpCheck),
    Dns(dns::DnsCheck),
    Tls(tls::TlsCheck),
    Confirm(confirm::ConfirmCheck),
}

impl CheckSpec {
    /// Deserializes the parameters of the kind named `kind` (the step's other
    /// keys). Returns `Ok(None)` when no such kind exists.
    pub fn deserialize_kind<'de, D>(kind: &str, de: D) -> Result<Option<Self>, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        Ok(Some(match kind {
            "http" => CheckSpec::Http(http::HttpCheck::deserialize(de)?),
            "secret" => CheckSpec::Secret(secret::SecretCheck::deserialize(de)?),
            "command" => CheckSpec::Command(command::CommandCheck::deserialize(de)?),
            "webhook" => CheckSpec::Webhook(webhook::WebhookCheck::deserialize(de)?),
            "webhook-delivery" => {
                CheckSpec::WebhookDelivery(webhook_delivery::WebhookDeliveryCheck::deserialize(de)?)
            }
            "fly-app" => CheckSpec::FlyApp(fly::FlyAppCheck::deserialize(de)?),
            "postgres" => CheckSpec::Postgres(postgres::PostgresCheck::deserialize(de)?),
            "supabase" => CheckSpec::Supabase(supabase::SupabaseCheck::deserialize(de)?),
            "redis" => CheckSpec::Redis(redis::RedisCheck::deserialize(de)?),
            "tcp" => CheckSpec::Tcp(tcp::TcpCheck::deserialize(de)?),
            "dns" => CheckSpec::Dns(dns::DnsCheck::deserialize(de)?),
            "tls" => CheckSpec::Tls(tls::TlsCheck::deserialize(de)?),
            "confirm" => CheckSpec::Confirm(confirm::ConfirmCheck::deserialize(de)?),
            _ => return Ok(None),
        }))
    }

    /// The JSON Schema of the parameters of the kind named `kind` (a `$ref`
    /// into the generator's definitions), from the same types
    /// [`CheckSpec::deserialize_kind`] reads; `None` when no such kind exists.
    pub fn kind_schema(
        kind: &str,
        generator: &mut schemars::SchemaGenerator,
    ) -> Option<schemars::Schema> {
        Some(match kind {
            "http" => generator.subschema_for::<http::HttpCheck>(),
            "secret" => generator.subschema_for::<secret::SecretCheck>(),
            "command" => generator.subschema_for::<command::CommandCheck>(),
            "webhook" => generator.subschema_for::<webhook::WebhookCheck>(),
            "webhook-delivery" => {
                generator.subschema_for::<webhook_delivery::WebhookDeliveryCheck>()
            }
            "fly-app" => generator.subschema_for::<fly::FlyAppCheck>(),
            "postgres" => generator.subschema_for::<postgres::PostgresCheck>(),
            "supabase" => generator.subschema_for::<supabase::SupabaseCheck>(),
            "redis" => generator.subschema_for::<redis::RedisCheck>(),
            "tcp" => generator.subschema_for::<tcp::TcpCheck>(),
            "dns" => generator.subschema_for::<dns::DnsCheck>(),
            "tls" => generator.subschema_for::<tls::TlsCheck>(),
            "confirm" => generator.subschema_for::<confirm::ConfirmCheck>(),
            _ => return None,
        })
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => "http",
            CheckSpec::Secret(_) => "secret",
            CheckSpec::Command(_) => "command",
            CheckSpec::Webhook(_) => "webhook",
            CheckSpec::WebhookDelivery(_) => "webhook-delivery",
            CheckSpec::FlyApp(_) => "fly-app",
            CheckSpec::Postgres(_) => "postgres",
            CheckSpec::Supabase(_) => "supabase",
            CheckSpec::Redis(_) => "redis",
            CheckSpec::Tcp(_) => "tcp",
            CheckSpec::Dns(_) => "dns",
            CheckSpec::Tls(_) => "tls",
            CheckSpec::Confirm(_) => "confirm",
        }
    }

    /// What the check targets, as written in the runbook (templates unexpanded):
    /// safe to print and record.
    pub fn target(&self) -> String {
        match self {
            CheckSpec::Http(c) => c.target(),
            CheckSpec::Secret(c) => c.target(),
            CheckSpec::Command(c) => c.target(),
            CheckSpec::Webhook(c) => c.target(),
            CheckSpec::WebhookDelivery(c) => c.target(),
            CheckSpec::FlyApp(c) => c.target(),
            CheckSpec::Postgres(c) => c.target(),
            CheckSpec::Supabase(c) => c.target(),
            CheckSpec::Redis(c) => c.target(),
            CheckSpec::Tcp(c) => c.target(),
            CheckSpec::Dns(c) => c.target(),
            CheckSpec::Tls(c) => c.target(),
            CheckSpec::Confirm(c) => c.target(),
        }
    }

    /// Whether the kind named `kind` names secrets in its parameters (what
    /// [`CheckSpec::named_secrets`] returns): the loader then keeps their
    /// places, to point at an undeclared one.
    pub fn kind_names_secrets(kind: &str) -> bool {
        kind == "secret"
    }

    /// Secrets named outside templates (e.g. the `secret` check's `name`).
    pub fn named_secrets(&self) -> Vec<&str> {
        match self {
            CheckSpec::Secret(c) => vec![c.name.as_str()],
            _ => Vec::new(),
        }
    }

    /// Capture names this check defines with `secret = true`.
    pub fn secret_capture_names(&self) -> Vec<&str> {
        match self {
            CheckSpec::Http(c) => c
                .capture
                .iter()
                .filter(|(_, spec)| spec.secret())
                .map(|(name, _)| name.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Capture names this check defines, for `{{steps.<id>.<name>}}`.
    pub fn capture_names(&self) -> Vec<&str> {
        match self {
            CheckSpec::Http(c) => c.capture.keys().map(String::as_str).collect(),
            CheckSpec::Command(c) => c.capture.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Load-time checks a kind makes beyond its types (URL syntax, regexes…),
    /// as `(message, span)` pairs; rendered as diagnostics by the loader.
    pub fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        match self {
            CheckSpec::Http(c) => c.validate(),
            CheckSpec::Secret(c) => c.validate(),
            CheckSpec::Command(c) => c.validate(),
            CheckSpec::Webhook(c) => c.validate(),
            CheckSpec::WebhookDelivery(c) => c.validate(),
            CheckSpec::FlyApp(c) => c.validate(),
            CheckSpec::Postgres(c) => c.validate(),
            CheckSpec::Supabase(c) => c.validate(),
            CheckSpec::Redis(c) => c.validate(),
            CheckSpec::Tcp(c) => c.validate(),
            CheckSpec::Dns(c) => c.validate(),
            CheckSpec::Tls(c) => c.validate(),
            CheckSpec::Confirm(c) => c.validate(),
        }
    }

    /// Makes one attempt.
    pub fn probe<'a>(
        &'a self,
        ctx: &'a ProbeContext<'_>,
    ) -> Pin<Box<dyn Future<Output = Observation> + 'a>> {
        // Each kind boxed on its own: one future for every kind would be as
        // large as the largest (about 6 KB), and an `http` attempt would
        // copy all of it into its box.
        match self {
            CheckSpec::Http(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Secret(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Command(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Webhook(c) => Box::pin(c.probe(ctx)),
            CheckSpec::WebhookDelivery(c) => Box::pin(c.probe(ctx)),
            CheckSpec::FlyApp(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Postgres(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Supabase(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Redis(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Tcp(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Dns(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Tls(c) => Box::pin(c.probe(ctx)),
            CheckSpec::Confirm(c) => Box::pin(c.probe(ctx)),
        }
    }
}

/// Shared state a probe may use. Cheap to build per attempt.
pub struct ProbeContext<'a> {
    /// Resolves templates.
    pub scope: &'a dyn Scope,
    /// Stores redacted evidence bodies.
    pub blobs: &'a dyn BlobSink,
    /// Clients reused across attempts and checks.
    pub clients: &'a Clients,
    /// The per-attempt timeout (the engine enforces it; checks may use it for
    /// their own connect timeouts).
    pub timeout: Duration,
    /// The run's id, for markers that let receivers tell probes from traffic.
    pub run_id: &'a str,
    /// 1-based attempt number (0 for a step's `collect` commands).
    pub attempt: u32,
    /// The step's id: the key of what a kind keeps across the attempts of
    /// one step (the `webhook-delivery` receiver and its trigger).
    pub step: &'a str,
    /// Whether this step may not change anything: a run without
    /// `--allow-mutations` (or whose tags do not cover the step), and every
    /// sweep. The `webhook` check then sends only its rejection probes.
    pub read_only: bool,
    /// The folder relative paths (`cwd`, `body_file`, `ca_file`) are taken
    /// from: the runbook's (or check file's); empty means the working directory.
    pub base_dir: &'a Path,
}

impl ProbeContext<'_> {
    /// `path` taken from the runbook's folder when it is relative.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        if path.is_relative() && !self.base_dir.as_os_str().is_empty() {
            self.base_dir.join(path)
        } else {
            path.to_path_buf()
        }
    }

    /// Renders a template, turning a missing value into a non-retryable failure.
    pub fn render(&self, template: &Template) -> Result<String, Observation> {
        template.render(self.scope).map_err(|err: RenderError| {
            Observation::fail_permanent(
                FailureClass::Config,
                err.to_string(),
                "a missing value does not appear by waiting",
            )
        })
    }

    /// A number that may be a template (`min_started = "{{replicas}}"`): a
    /// rendered value that is not a number fails the attempt for good.
    pub fn number<T>(&self, key: &str, value: &Numeric<T>) -> Result<T, Observation>
    where
        T: Copy + std::str::FromStr + std::fmt::Display,
    {
        value.render(key, self.scope).map_err(|why| {
            Observation::fail_permanent(
                FailureClass::Config,
                why,
                "the runbook or its vars must change",
            )
        })
    }
}

/// Connection pools and resolvers shared by every probe of a run or sweep.
pub struct Clients {
    /// The run's resolver and its HTTP clients.
    default: Pool,
    /// Pools for steps that name their own `resolver`, built on first use.
    chosen: Mutex<HashMap<ResolverAddr, Arc<Pool>>>,
    /// `webhook-delivery` receivers kept between the attempts of a step.
    pub(crate) waiting: webhook_delivery::Waiting,
}

/// One resolver and the two HTTP clients that resolve through it.
pub struct Pool {
    resolver: Resolver,
    /// The resolver the step named (`None`: the run's), for messages.
    server: Option<ResolverAddr>,
    /// The clients, each built on first use: building one loads and parses
    /// the system's root certificates (about 5 ms), and a sweep's plain
    /// `http://` checks never use them (see `support::h1`). Its error as text:
    /// every later step gets the same failure.
    http_verified: OnceLock<Result<reqwest::Client, String>>,
    http_unverified: OnceLock<Result<reqwest::Client, String>>,
}

impl Pool {
    fn new(resolver: Resolver, server: Option<ResolverAddr>) -> Self {
        Pool {
            resolver,
            server,
            http_verified: OnceLock::new(),
            http_unverified: OnceLock::new(),
        }
    }

    /// The HTTP client; `verify = false` only when the runbook opts out. The
    /// error is a finished failed attempt.
    fn http(&self, verify: bool) -> Result<reqwest::Client, Observation> {
        let client = if verify {
            &self.http_verified
        } else {
            &self.http_unverified
        };
        let built = client.get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(crate::check::support::http::USER_AGENT)
                // rustls on ring with the system roots, as the `tls` check uses.
                .tls_backend_preconfigured(support::tls::http_client_config(verify))
                // Host names go through the run's resolver, like every other kind.
                .dns_resolver(self.resolver.clone())
                // Redirects are an observation, not something to follow silently.
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .map_err(|err| err.to_string())
        });
        built.clone().map_err(|err| {
            let resolver = self
                .server
                .map(|server| format!(" for resolver {server}"))
                .unwrap_or_default();
            Observation::fail_permanent(
                FailureClass::Config,
                format!("cannot build an HTTP client{resolver}: {err}"),
                "the client setup does not change by waiting",
            )
        })
    }
}

impl Clients {
    /// The pools on the system resolver.
    pub fn new() -> Self {
        Clients::with_resolver(None)
    }

    /// The pools on `server` (`--resolver`), or on the system resolver when
    /// `None`. Their HTTP clients are built when first used.
    pub fn with_resolver(server: Option<ResolverAddr>) -> Self {
        let resolver = match server {
            Some(server) => Resolver::with_server(server),
            None => Resolver::system(),
        };
        Clients {
            default: Pool::new(resolver, server),
            chosen: Mutex::new(HashMap::new()),
            waiting: webhook_delivery::Waiting::default(),
        }
    }

    /// Drops what the step `step` kept between its attempts (a
    /// `webhook-delivery` receiver frees its port). The engine calls it when
    /// the step ends.
    pub fn end_step(&self, step: &str) {
        self.waiting.end(step);
    }

    /// The pool of a step's own resolver, made on first use.
    fn pool(&self, server: ResolverAddr) -> Arc<Pool> {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        chosen
            .entry(server)
            .or_insert_with(|| Arc::new(Pool::new(Resolver::with_server(server), Some(server))))
            .clone()
    }

    /// The resolver for a step: its own `resolver` when set, else the run's.
    /// Borrowed, not cloned: a clone copies the resolver's configuration and
    /// the handles of its name servers and cache, and a sweep asks once per
    /// attempt.
    pub fn resolver(&self, step: Option<ResolverAddr>) -> StepResolver<'_> {
        match step {
            None => StepResolver::Run(&self.default.resolver),
            Some(server) => StepResolver::Chosen(self.pool(server)),
        }
    }

    /// The HTTP client; `verify_tls = false` only when the runbook opts out.
    /// `step` is the step's own `resolver`, if any. The error is a finished
    /// failed attempt.
    pub fn http(
        &self,
        verify_tls: bool,
        step: Option<ResolverAddr>,
    ) -> Result<reqwest::Client, Observation> {
        match step {
            None => self.default.http(verify_tls),
            Some(server) => self.pool(server).http(verify_tls),
        }
    }
}

/// A step's resolver ([`Clients::resolver`]): the run's, or the one the
/// step chose, kept alive with its pool.
pub enum StepResolver<'c> {
    Run(&'c Resolver),
    Chosen(Arc<Pool>),
}

impl std::ops::Deref for StepResolver<'_> {
    type Target = Resolver;

    fn deref(&self) -> &Resolver {
        match self {
            StepResolver::Run(resolver) => resolver,
            StepResolver::Chosen(pool) => &pool.resolver,
        }
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new()
    }
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct Observation {
    pub outcome: Outcome,
    /// Facts for the evidence record (status, latency, versions…). No secrets.
    pub detail: Map<String, Value>,
    /// Bodies and output stored for this attempt.
    pub blobs: Vec<BlobRef>,
    /// Values captured for later steps.
    pub captures: Vec<(String, String)>,
    /// Requests of this attempt that deserve their own evidence record (the
    /// webhook check's rejection probes), in the order they were sent.
    pub probes: Vec<ProbeRecord>,
}

/// One request of a multi-request attempt, journaled as a `probe` record.
#[derive(Debug, Clone)]
pub struct ProbeRecord {
    /// Which probe: `signed`, `unsigned`, `bad_signature`, `stale`.
    pub name: String,
    /// What was sent and what came back. No secrets.
    pub detail: Map<String, Value>,
    /// The response body, when there was one.
    pub blobs: Vec<BlobRef>,
}

/// Pass or fail, with the typed failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(Failure),
}

impl Observation {
    /// A passing attempt.
    pub fn pass() -> Self {
        Observation {
            outcome: Outcome::Pass,
            detail: Map::new(),
            blobs: Vec::new(),
            captures: Vec::new(),
            probes: Vec::new(),
        }
    }

    /// A failed attempt; whether it is retried follows from its class.
    pub fn fail(class: FailureClass, reason: impl Into<String>) -> Self {
        Observation::failed(Failure::new(class, reason))
    }

    /// A failed attempt that waiting cannot fix; the engine skips the
    /// remaining retries and says why.
    pub fn fail_permanent(
        class: FailureClass,
        reason: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Observation::failed(Failure::permanent(class, reason, why))
    }

    /// A failed attempt.
    pub fn failed(failure: Failure) -> Self {
        Observation {
            outcome: Outcome::Fail(failure),
            ..Observation::pass()
        }
    }

    /// Adds a fact to the evidence record.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    /// Whether the attempt passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

/// Replaces every occurrence of each secret in `text` with `[redacted]`.
///
/// Driver and server error texts can echo what they were given (a DSN, a URL
/// with a password); checks pass their reasons through this before recording
/// them. Secrets shorter than 4 bytes are skipped, since they would mangle
/// ordinary words without protecting anything.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
    // Longest first, so a DSN is removed whole before its password is looked for.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep of plain `http://` checks never asks for a reqwest client, so
    /// none is built (nor the system's root certificates read); one asked
    /// for is built once and then shared.
    #[test]
    fn http_clients_are_built_on_first_use_and_then_shared() {
        let clients = Clients::new();
        let pool = &clients.default;
        assert!(pool.http_verified.get().is_none());
        assert!(pool.http_unverified.get().is_none());
        clients
            .http(false, None)
            .expect("a client without verification");
        assert!(pool.http_verified.get().is_none());
        assert!(matches!(pool.http_unverified.get(), Some(Ok(_))));

        let server: ResolverAddr = "127.0.0.1:53".parse().unwrap();
        let _ = clients.resolver(Some(server));
        let chosen = clients.pool(server);
        assert!(chosen.http_verified.get().is_none());
        assert!(Arc::ptr_eq(&chosen, &clients.pool(server)));
    }
}
