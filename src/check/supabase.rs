//! `supabase`: a Supabase project's HTTP services answer — `GET
//! /auth/v1/health` and/or a REST table probe — with the `apikey` header, and
//! the gateway's documented 401 bodies turned into readable reasons.

use serde::Deserialize;
use serde_json::Value;

use super::resolve::ResolverAddr;
use super::support::{errors, http, latency};
use super::{scrub, FailureClass, Observation, ProbeContext};
use crate::core::duration::HumanDuration;
use crate::core::template::Template;
use crate::core::BlobRef;

/// Largest response body kept as evidence.
const BODY_CAP: usize = 64 * 1024;

/// `check = "supabase"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupabaseCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// The project URL, `https://<ref>.supabase.co`.
    pub url: Template,
    /// Sent as the `apikey` header on every request.
    #[serde(default = "default_apikey")]
    pub apikey: Template,
    /// `Authorization: Bearer` value — only a legacy `anon`/`service_role`
    /// JWT or a user JWT; never an `sb_…` key.
    #[serde(default)]
    pub bearer: Option<Template>,
    /// Probe `GET /auth/v1/health` (default true).
    #[serde(default = "default_true")]
    pub auth_health: bool,
    /// Probe `GET /rest/v1/<table>?select=<select>&limit=1`.
    #[serde(default)]
    pub table: Option<String>,
    /// The column the REST probe selects (default `id`).
    #[serde(default = "default_select")]
    pub select: String,
    /// What the project's answers must hold.
    #[serde(default)]
    pub expect: SupabaseExpect,
}

fn default_apikey() -> Template {
    Template::parse("{{secret:SUPABASE_ANON_KEY}}").expect("a valid placeholder")
}

fn default_true() -> bool {
    true
}

fn default_select() -> String {
    "id".to_string()
}

/// `expect` for `supabase`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupabaseExpect {
    /// Each request must answer within this.
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

impl SupabaseCheck {
    pub(super) fn target(&self) -> String {
        let mut parts = Vec::new();
        if self.auth_health {
            parts.push("auth/v1/health".to_string());
        }
        if let Some(table) = &self.table {
            parts.push(format!("rest/v1/{table}"));
        }
        format!("supabase {} ({})", self.url.raw(), parts.join(", "))
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        if !self.auth_health && self.table.is_none() {
            problems.push((
                "nothing to probe: keep `auth_health = true` or name a `table`".to_string(),
                self.url.span(),
            ));
        }
        if let Some(bearer) = &self.bearer {
            if bearer.raw().trim_start().starts_with("sb_") {
                problems.push((
                    "`sb_…` keys are not JWTs and must not be sent as Bearer; use `apikey` only"
                        .to_string(),
                    bearer.span(),
                ));
            }
        }
        if self.url.references().next().is_none() && url::Url::parse(self.url.raw()).is_err() {
            problems.push((
                format!("`url` `{}` is not a URL", self.url.raw()),
                self.url.span(),
            ));
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let base = match ctx.render(&self.url) {
            Ok(url) => url.trim_end_matches('/').to_string(),
            Err(obs) => return obs,
        };
        let apikey = match ctx.render(&self.apikey) {
            Ok(key) => key,
            Err(obs) => return obs,
        };
        let bearer = match &self.bearer {
            Some(template) => match ctx.render(template) {
                Ok(token) => Some(token),
                Err(obs) => return obs,
            },
            None => None,
        };
        let mut secrets = vec![apikey.as_str()];
        if let Some(token) = &bearer {
            if token.starts_with("sb_") {
                return Observation::fail_permanent(
                    FailureClass::Config,
                    "the Bearer value is an `sb_…` key, which is not a JWT; send it as `apikey` only",
                    "the runbook's configuration does not change by waiting",
                );
            }
            secrets.push(token);
        }
        let mut probes: Vec<(&str, String)> = Vec::new();
        if self.auth_health {
            probes.push(("auth health", "/auth/v1/health".to_string()));
        }
        if let Some(table) = &self.table {
            let encode = super::url_path::encode_segment;
            probes.push((
                "rest",
                format!(
                    "/rest/v1/{}?select={}&limit=1",
                    encode(table),
                    encode(&self.select)
                ),
            ));
        }

        let mut blobs: Vec<BlobRef> = Vec::new();
        let mut failures = Vec::new();
        let mut permanent = None;
        // The attempt's class is the first failure's.
        let mut class = None;
        let mut obs_detail = serde_json::Map::new();
        let client = match ctx.clients.http(true, self.resolver) {
            Ok(client) => client,
            Err(obs) => return obs,
        };
        for (label, path) in probes {
            let mut request = client
                .get(format!("{base}{path}"))
                .header("apikey", &apikey)
                .header("Accept", "application/json")
                .timeout(ctx.timeout);
            if let Some(token) = &bearer {
                request = request.bearer_auth(token);
            }
            let fetched = match http::fetch(request, BODY_CAP).await {
                Ok(fetched) => fetched,
                Err(err) => {
                    let what = if err.error.is_timeout() {
                        "timed out"
                    } else if err.status.is_some() {
                        "the response broke off"
                    } else {
                        "cannot connect"
                    };
                    class.get_or_insert(err.class());
                    failures.push(scrub(
                        &format!("{label}: {what} ({})", errors::render(&err.error)),
                        &secrets,
                    ));
                    // NXDOMAIN is permanent; the DNS failure class attaches here.
                    if let Some(why) = super::resolve::no_retry_of(&err.error) {
                        permanent = Some(why);
                    }
                    continue;
                }
            };
            let status = fetched.status;
            let body = fetched.body;
            let latency = fetched.latency;
            let kept = scrub(&String::from_utf8_lossy(&body), &secrets);
            let role = if label == "rest" {
                "supabase.rest"
            } else {
                "supabase.auth_health"
            };
            if let Ok(blob) = ctx.blobs.put(role, kept.as_bytes(), fetched.truncated) {
                blobs.push(blob);
            }
            let key = if label == "rest" {
                "rest"
            } else {
                "auth_health"
            };
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut facts = serde_json::Map::new();
            facts.insert("status".into(), status.into());
            facts.insert("latency_ms".into(), (latency.as_millis() as u64).into());
            if key == "auth_health" {
                if let Some(version) = json.get("version").and_then(Value::as_str) {
                    facts.insert("version".into(), version.into());
                }
            }
            obs_detail.insert(key.into(), facts.into());
            match status {
                200..=299 => {}
                401 => {
                    class.get_or_insert(FailureClass::Auth);
                    failures.push(format!("{label}: {} (401)", reason_401(&json)));
                    permanent = Some("the gateway rejected the API key; a different key is needed");
                }
                403 => {
                    class.get_or_insert(FailureClass::Auth);
                    failures.push(format!(
                        "{label}: forbidden (403){}",
                        message_suffix(&json, &secrets)
                    ));
                    permanent = Some("the key lacks permission for this route");
                }
                404 => {
                    class.get_or_insert(FailureClass::NotFound);
                    failures.push(format!(
                        "{label}: {path} not found (404){}",
                        message_suffix(&json, &secrets)
                    ));
                    permanent = Some("the route or table does not exist");
                }
                _ => {
                    class.get_or_insert(FailureClass::Expectation);
                    failures.push(format!(
                        "{label}: status {status}{}",
                        message_suffix(&json, &secrets)
                    ))
                }
            }
            if (200..300).contains(&status) {
                if let Some(slow) =
                    latency::exceeded(label, latency, self.expect.max_latency.as_ref())
                {
                    class.get_or_insert(FailureClass::Expectation);
                    failures.push(slow);
                }
            }
        }
        let class = class.unwrap_or(FailureClass::Expectation);
        let mut obs = match (failures.is_empty(), permanent) {
            (true, _) => Observation::pass(),
            (false, Some(why)) => {
                Observation::fail_permanent(class, scrub(&failures.join("; "), &secrets), why)
            }
            (false, None) => Observation::fail(class, scrub(&failures.join("; "), &secrets)),
        };
        obs.detail.extend(obs_detail);
        obs.blobs = blobs;
        obs
    }
}

/// The gateway's 401 bodies, in words.
fn reason_401(json: &Value) -> String {
    let message = json.get("message").and_then(Value::as_str).unwrap_or("");
    let hint = json.get("hint").and_then(Value::as_str).unwrap_or("");
    if message.starts_with("No API key") {
        "no API key was sent".to_string()
    } else if message.starts_with("Secret API key required") {
        "secret key required: this route does not accept a publishable/anon key".to_string()
    } else if message.starts_with("Invalid API key") && hint.starts_with("Only the service_role") {
        "invalid API key: only the service_role/secret key may use this endpoint".to_string()
    } else if message.starts_with("Invalid API key") {
        "invalid API key".to_string()
    } else if message.is_empty() {
        "unauthorized".to_string()
    } else {
        format!("unauthorized: {message}")
    }
}

fn message_suffix(json: &Value, secrets: &[&str]) -> String {
    match json
        .get("message")
        .or_else(|| json.get("msg"))
        .and_then(Value::as_str)
    {
        Some(message) => format!(": {}", scrub(message, secrets)),
        None => String::new(),
    }
}
