//! `fly-app`: a Fly.io app's machines, read from the Machines API — app
//! exists, machines started overall and per process group, none failed,
//! health checks passing, regions, image and release.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{json, Value};

use super::resolve::ResolverAddr;
use super::support::{errors, http};
use super::{FailureClass, Observation, ProbeContext};
use crate::core::numeric::Numeric;
use crate::core::template::Template;

/// The public Machines API.
pub const DEFAULT_API_URL: &str = "https://api.machines.dev";
/// Environment variable that overrides [`DEFAULT_API_URL`] (e.g. `http://_api.internal:4280`).
pub const API_URL_ENV: &str = "FLY_API_BASE_URL";
/// Largest response body read, kept as evidence and parsed.
const BODY_CAP: usize = http::BODY_CAP;

/// `check = "fly-app"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlyAppCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// The app's name.
    pub app: Template,
    /// API token: a deploy/org token (`FlyV1 fm2_…`) or a personal token.
    #[serde(default = "default_token")]
    pub token: Template,
    /// Machines API base URL (default: `$FLY_API_BASE_URL`, else `https://api.machines.dev`).
    #[serde(default)]
    pub api_url: Option<Template>,
    /// Count destroyed and destroying machines too.
    #[serde(default)]
    pub include_destroyed: bool,
    /// What the app's machines must look like.
    #[serde(default)]
    pub expect: FlyExpect,
}

fn default_token() -> Template {
    Template::parse("{{secret:FLY_API_TOKEN}}").expect("a valid placeholder")
}

fn default_true() -> bool {
    true
}

/// `expect` for `fly-app`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlyExpect {
    /// The app must exist (default); `false` expects it to be gone.
    #[serde(default = "default_true")]
    pub app_exists: bool,
    /// At least this many machines `started`, across groups (default 1 when
    /// `process_groups` is not given).
    #[serde(default)]
    pub min_started: Option<Numeric<u32>>,
    /// `["web", "worker"]` (each needs one started machine) or
    /// `{ web = 2, worker = 1 }` (minimum started per group).
    #[serde(default)]
    pub process_groups: Option<ProcessGroups>,
    /// No machine may be in `failed` (default true).
    #[serde(default = "default_true")]
    pub no_failed: bool,
    /// Health checks of started machines (default `"passing"`).
    #[serde(default)]
    pub checks: ChecksPolicy,
    /// Every counted machine must be in one of these regions.
    #[serde(default)]
    pub regions: Vec<Template>,
    /// A substring every counted machine's image reference or digest must
    /// contain; may be a template (`"{{steps.deploy.image}}"`).
    #[serde(default)]
    pub image: Option<Template>,
    /// The release version (`fly_release_version`) every counted machine must
    /// run; may be a template (`"{{steps.release.version}}"`).
    #[serde(default)]
    pub release_version: Option<Template>,
    /// Names (never values) of secrets the app must have, read from
    /// `GET /v1/apps/{app}/secrets`: `secrets = ["SECRET_KEY_BASE", "DATABASE_URL"]`.
    #[serde(default)]
    pub secrets: Vec<Template>,
    /// The size of every counted machine of a process group:
    /// `guest = { web = { memory_mb = { ge = 1024 }, cpus = 2 }, worker = { cpu_kind = "shared" } }`
    /// (literals or predicate tables, on `config.guest`).
    #[serde(default)]
    pub guest: BTreeMap<String, GuestExpect>,
    /// Predicates on `{ "app": <app>, "machines": [<machine>, ...] }` as the
    /// Machines API returns them: `"$.machines[*].state" = { all = "started" }`.
    #[serde(default)]
    pub json: super::expect::JsonExpect,
}

/// What the machines of one process group must be sized as.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestExpect {
    /// `config.guest.memory_mb`.
    #[serde(default)]
    pub memory_mb: Option<super::expect::Expected>,
    /// `config.guest.cpus`.
    #[serde(default)]
    pub cpus: Option<super::expect::Expected>,
    /// `config.guest.cpu_kind` (`shared`, `performance`).
    #[serde(default)]
    pub cpu_kind: Option<super::expect::Expected>,
}

impl Default for FlyExpect {
    fn default() -> Self {
        FlyExpect {
            app_exists: true,
            min_started: None,
            process_groups: None,
            guest: BTreeMap::new(),
            secrets: Vec::new(),
            no_failed: true,
            checks: ChecksPolicy::default(),
            regions: Vec::new(),
            image: None,
            release_version: None,
            json: super::expect::JsonExpect::default(),
        }
    }
}

/// Process groups and how many started machines each needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ProcessGroups {
    /// Each listed group needs at least one started machine.
    List(Vec<String>),
    /// Group → minimum started machines.
    Counts(BTreeMap<String, u32>),
}

impl ProcessGroups {
    fn required(&self) -> Vec<(String, u32)> {
        match self {
            ProcessGroups::List(groups) => groups.iter().map(|g| (g.clone(), 1)).collect(),
            ProcessGroups::Counts(counts) => counts.iter().map(|(g, n)| (g.clone(), *n)).collect(),
        }
    }
}

/// Which health-check statuses count as healthy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChecksPolicy {
    /// Every check `passing`.
    #[default]
    Passing,
    /// `passing` or `warning`.
    PassingOrWarning,
    /// Health checks are not looked at.
    Ignore,
}

impl FlyAppCheck {
    pub(super) fn target(&self) -> String {
        format!("fly app {}", self.app.raw())
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        if let Some(api_url) = &self.api_url {
            if api_url.references().next().is_none() && url::Url::parse(api_url.raw()).is_err() {
                problems.push((
                    format!("`api_url` `{}` is not a URL", api_url.raw()),
                    api_url.span(),
                ));
            }
        }
        if matches!(&self.expect.process_groups, Some(ProcessGroups::List(groups)) if groups.is_empty())
        {
            problems.push((
                "`expect.process_groups` is empty".to_string(),
                self.app.span(),
            ));
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let app = match ctx.render(&self.app) {
            Ok(app) => app,
            Err(obs) => return obs,
        };
        let token = match ctx.render(&self.token) {
            Ok(token) => token,
            Err(obs) => return obs,
        };
        // Rendered before any request: a missing capture fails at once.
        let mut wanted = Wanted::default();
        for (templates, slot) in [
            (&self.expect.regions, &mut wanted.regions),
            (&self.expect.secrets, &mut wanted.secrets),
        ] {
            for template in templates {
                match ctx.render(template) {
                    Ok(value) => slot.push(value),
                    Err(obs) => return obs,
                }
            }
        }
        if let Some(min) = &self.expect.min_started {
            match ctx.number("expect.min_started", min) {
                Ok(min) => wanted.min_started = Some(min),
                Err(obs) => return obs,
            }
        }
        for (template, slot) in [
            (&self.expect.image, &mut wanted.image),
            (&self.expect.release_version, &mut wanted.release_version),
        ] {
            if let Some(template) = template {
                match ctx.render(template) {
                    Ok(value) => *slot = Some(value),
                    Err(obs) => return obs,
                }
            }
        }
        let base = match &self.api_url {
            Some(url) => match ctx.render(url) {
                Ok(url) => url,
                Err(obs) => return obs,
            },
            None => ctx
                .scope
                .env(API_URL_ENV)
                .or_else(|| std::env::var(API_URL_ENV).ok())
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| DEFAULT_API_URL.to_string()),
        };
        let base = base.trim_end_matches('/').to_string();
        let auth = authorization_header(&token);
        let secrets = token_parts(&token);
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let api = Api {
            ctx,
            base: &base,
            auth: &auth,
            secrets: &secrets,
            resolver: self.resolver,
        };

        let mut blobs = Vec::new();
        let app_path = format!("/v1/apps/{}", encode(&app));
        let app_info = match api.get(&app_path).await {
            Err(obs) => return obs,
            Ok(body) => {
                blobs.extend(api.keep("fly.app", &body));
                match body.status {
                    200 => serde_json::from_slice::<Value>(&body.bytes).unwrap_or(Value::Null),
                    404 if !self.expect.app_exists => {
                        return with_blobs(
                            Observation::pass().with_detail("app_exists", false),
                            blobs,
                        );
                    }
                    status => return with_blobs(api.error(status, &body.bytes, &app), blobs),
                }
            }
        };
        if !self.expect.app_exists {
            return with_blobs(
                Observation::fail(
                    FailureClass::Expectation,
                    format!("app {app} still exists (expected it to be gone)"),
                ),
                blobs,
            );
        }
        let machines_path = format!("{app_path}/machines");
        let machines = match api.get(&machines_path).await {
            Err(obs) => return with_blobs(obs, blobs),
            Ok(body) => {
                blobs.extend(api.keep("fly.machines", &body));
                if body.status != 200 {
                    return with_blobs(api.error(body.status, &body.bytes, &app), blobs);
                }
                // Kept as JSON for `expect.json`, and read through serde types.
                let parsed = serde_json::from_slice::<Vec<Value>>(&body.bytes).and_then(|list| {
                    let typed = list
                        .iter()
                        .map(ApiMachine::deserialize)
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((list, typed))
                });
                match parsed {
                    Ok(machines) => machines,
                    Err(err) => {
                        return with_blobs(
                            Observation::fail(
                                FailureClass::Protocol,
                                format!(
                                "machine list of {app} is not a JSON array of machines: {err}{}",
                                if body.truncated {
                                    " (the response passed the 1 MiB body cap)"
                                } else {
                                    ""
                                }
                            ),
                            ),
                            blobs,
                        )
                    }
                }
            }
        };
        let (listed, typed) = machines;
        let counted = |m: &Machine| {
            self.include_destroyed || !matches!(m.state.as_str(), "destroyed" | "destroying")
        };
        let machines: Vec<(Machine, Value)> = typed
            .into_iter()
            .map(Machine::from_api)
            .zip(listed)
            .filter(|(m, _)| counted(m))
            .collect();
        let doc = (!self.expect.json.is_empty()).then(|| {
            let listed: Vec<&Value> = machines.iter().map(|(_, json)| json).collect();
            json!({ "app": app_info, "machines": listed })
        });
        let machines: Vec<Machine> = machines.into_iter().map(|(m, _)| m).collect();
        let mut failures = self.evaluate(&machines, &wanted);
        failures.extend(self.unmet_guest(&machines, ctx.scope));
        let mut secret_names = None;
        if !self.expect.secrets.is_empty() {
            let secrets_path = format!("{app_path}/secrets");
            match api.get(&secrets_path).await {
                Err(obs) => return with_blobs(obs, blobs),
                // The answer holds names and digests, never values; still,
                // only the names are kept (no blob of it is stored).
                Ok(body) if body.status == 200 => {
                    let names = secret_names_of(&body.bytes);
                    let missing: Vec<&str> = wanted
                        .secrets
                        .iter()
                        .filter(|want| !names.contains(want))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        failures.push(format!(
                            "secret{} not set on the app: {}",
                            if missing.len() == 1 { "" } else { "s" },
                            missing.join(", ")
                        ));
                    }
                    secret_names = Some(names);
                }
                Ok(body) => return with_blobs(api.error(body.status, &body.bytes, &app), blobs),
            }
        }
        if let Some(doc) = &doc {
            failures.extend(self.expect.json.unmet("Fly API JSON", doc, ctx.scope));
        }
        let app_info = ApiApp::deserialize(&app_info).unwrap_or_default();
        let obs = if failures.is_empty() {
            Observation::pass()
        } else {
            Observation::fail(FailureClass::Expectation, failures.join("; "))
        };
        let started = machines.iter().filter(|m| m.state == "started").count();
        let obs = match secret_names {
            Some(names) => obs.with_detail("secret_names", names),
            None => obs,
        };
        let obs = obs
            .with_detail("app", app_info.name.unwrap_or(app))
            .with_detail(
                "app_status",
                app_info.status.map_or(Value::Null, Value::from),
            )
            .with_detail("machines_started", started as u64)
            .with_detail("machines_total", machines.len() as u64)
            .with_detail(
                "machines",
                machines.iter().map(Machine::summary).collect::<Vec<_>>(),
            );
        with_blobs(obs, blobs)
    }

    /// `expect.guest`: every counted machine of each named group has the size
    /// asked for; a group with no machine is a failure too.
    fn unmet_guest(
        &self,
        machines: &[Machine],
        scope: &dyn crate::core::template::Scope,
    ) -> Vec<String> {
        use super::expect::Actual;
        let mut failures = Vec::new();
        for (group, want) in &self.expect.guest {
            let members: Vec<&Machine> = machines
                .iter()
                .filter(|m| m.group.as_deref() == Some(group.as_str()))
                .collect();
            if members.is_empty() {
                failures.push(format!("{group}: no machines to check the size of"));
            }
            for m in members {
                let fields = [
                    (
                        "memory_mb",
                        &want.memory_mb,
                        m.guest.memory_mb.map(Value::from),
                    ),
                    ("cpus", &want.cpus, m.guest.cpus.map(Value::from)),
                    (
                        "cpu_kind",
                        &want.cpu_kind,
                        m.guest.cpu_kind.clone().map(Value::from),
                    ),
                ];
                for (field, expected, actual) in fields {
                    let Some(expected) = expected else { continue };
                    let label = format!("{group} machine {} guest.{field}", m.id);
                    if let Err(message) = expected.check(&label, &Actual::owned(actual), scope) {
                        failures.push(message);
                    }
                }
            }
        }
        failures
    }

    /// Every unmet expectation, as readable reasons, in a stable order.
    fn evaluate(&self, machines: &[Machine], wanted: &Wanted) -> Vec<String> {
        let expect = &self.expect;
        let mut failures = Vec::new();
        if expect.no_failed {
            for m in machines
                .iter()
                .filter(|m| matches!(m.state.as_str(), "failed" | "launch_failed"))
            {
                failures.push(format!(
                    "machine {} ({}) is {}",
                    m.id,
                    m.group_label(),
                    m.state
                ));
            }
        }
        let min_started = wanted.min_started.or(if expect.process_groups.is_none() {
            Some(1)
        } else {
            None
        });
        if let Some(min) = min_started {
            let started = machines.iter().filter(|m| m.state == "started").count();
            if (started as u64) < u64::from(min) {
                failures.push(format!(
                    "{started} of {} machines started, {min} required{}",
                    machines.len(),
                    not_started_states(machines.iter())
                ));
            }
        }
        if let Some(groups) = &expect.process_groups {
            for (group, min) in groups.required() {
                let members: Vec<&Machine> = machines
                    .iter()
                    .filter(|m| m.group.as_deref() == Some(&group))
                    .collect();
                let started = members.iter().filter(|m| m.state == "started").count();
                if members.is_empty() {
                    failures.push(format!("{group}: no machines in this process group"));
                } else if (started as u64) < u64::from(min) {
                    let need = if min == 1 {
                        String::new()
                    } else {
                        format!(", {min} required")
                    };
                    failures.push(format!(
                        "{group}: {started} of {} started{need}{}",
                        members.len(),
                        not_started_states(members.iter().copied())
                    ));
                }
            }
        }
        if expect.checks != ChecksPolicy::Ignore {
            for m in machines.iter().filter(|m| m.state == "started") {
                for check in &m.checks {
                    let healthy = check.status == "passing"
                        || (expect.checks == ChecksPolicy::PassingOrWarning
                            && check.status == "warning");
                    if !healthy {
                        let mut reason =
                            format!("check {} on {} is {}", check.name, m.id, check.status);
                        let output = check.output.trim();
                        if !output.is_empty() {
                            let _ = write!(reason, ": {}", shorten(output, 200));
                        }
                        failures.push(reason);
                    }
                }
            }
        }
        if !wanted.regions.is_empty() {
            for m in machines
                .iter()
                .filter(|m| !wanted.regions.contains(&m.region))
            {
                failures.push(format!(
                    "machine {} is in {}, not in {}",
                    m.id,
                    m.region,
                    wanted.regions.join(", ")
                ));
            }
        }
        if let Some(image) = &wanted.image {
            for m in machines
                .iter()
                .filter(|m| !m.image.contains(image.as_str()) && !m.digest.contains(image.as_str()))
            {
                failures.push(format!(
                    "machine {} runs {}, expected {image}",
                    m.id, m.image
                ));
            }
        }
        if let Some(version) = &wanted.release_version {
            for m in machines
                .iter()
                .filter(|m| m.release_version.as_deref() != Some(version.as_str()))
            {
                failures.push(format!(
                    "machine {} is at release {}, expected {version}",
                    m.id,
                    m.release_version.as_deref().unwrap_or("(unknown)")
                ));
            }
        }
        failures
    }
}

/// `expect.min_started`, `regions`, `secrets`, `image` and
/// `release_version`, rendered for one attempt.
#[derive(Debug, Default)]
struct Wanted {
    min_started: Option<u32>,
    regions: Vec<String>,
    /// Secret names (never values).
    secrets: Vec<String>,
    image: Option<String>,
    release_version: Option<String>,
}

/// The `Authorization` value for a token, following fly-go: any scheme
/// already present is stripped (repeatedly, case-insensitively), then
/// macaroons (`fm1r_`, `fm1a_`, `fm2_`) get `FlyV1` and everything else `Bearer`.
pub fn authorization_header(token: &str) -> String {
    let token = strip_scheme(token);
    if ["fm1r_", "fm1a_", "fm2_"]
        .iter()
        .any(|p| token.starts_with(p))
    {
        format!("FlyV1 {token}")
    } else {
        format!("Bearer {token}")
    }
}

fn strip_scheme(token: &str) -> &str {
    let mut token = token.trim();
    loop {
        let lower = token.get(..6).map(str::to_ascii_lowercase);
        let stripped = match lower.as_deref() {
            Some("bearer") if token[6..].starts_with(' ') => &token[7..],
            Some("flyv1 ") => &token[6..],
            _ => return token,
        };
        token = stripped.trim_start();
    }
}

/// Every part of a (possibly comma-separated) token, for scrubbing.
fn token_parts(token: &str) -> Vec<String> {
    let stripped = strip_scheme(token);
    let mut parts = vec![token.to_string(), stripped.to_string()];
    parts.extend(stripped.split(',').map(|p| p.trim().to_string()));
    parts
}

fn encode(segment: &str) -> String {
    super::url_path::encode_segment(segment)
}

fn with_blobs(mut obs: Observation, blobs: Vec<crate::core::BlobRef>) -> Observation {
    obs.blobs.extend(blobs);
    obs
}

/// ` (stopped, starting)`: the states of machines that are not started.
fn not_started_states<'a>(machines: impl Iterator<Item = &'a Machine>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in machines.filter(|m| m.state != "started") {
        *counts.entry(m.state.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        return String::new();
    }
    let states: Vec<String> = counts
        .iter()
        .map(|(state, n)| {
            if *n == 1 {
                state.to_string()
            } else {
                format!("{n} {state}")
            }
        })
        .collect();
    format!(" ({})", states.join(", "))
}

fn shorten(text: &str, max: usize) -> String {
    crate::core::cut::cut_line(text, max)
}

/// A Machines API response, its body read up to [`BODY_CAP`].
struct Body {
    status: u16,
    bytes: Vec<u8>,
    truncated: bool,
}

/// One request context against the Machines API.
struct Api<'a, 'c> {
    ctx: &'a ProbeContext<'c>,
    base: &'a str,
    auth: &'a str,
    secrets: &'a [&'a str],
    resolver: Option<ResolverAddr>,
}

impl Api<'_, '_> {
    /// GETs `path`, reading at most [`BODY_CAP`] of the body.
    async fn get(&self, path: &str) -> Result<Body, Observation> {
        let url = format!("{}{path}", self.base);
        let request = self
            .ctx
            .clients
            .http(true, self.resolver)?
            .get(&url)
            .header("Authorization", self.auth)
            .header("Accept", "application/json")
            .timeout(self.ctx.timeout);
        match http::fetch(request, BODY_CAP).await {
            Ok(fetched) => Ok(Body {
                status: fetched.status,
                bytes: fetched.body,
                truncated: fetched.truncated,
            }),
            Err(err) if err.status.is_some() => Err(Observation::fail(
                err.class(),
                format!(
                    "Machines API GET {path}: reading the response failed: {}",
                    super::scrub(&errors::render(&err.error), self.secrets)
                ),
            )),
            Err(err) => {
                let what = if err.error.is_timeout() {
                    "timed out"
                } else if err.error.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                let chain = errors::render(&err.error);
                Err(super::resolve::request_failure(
                    super::scrub(
                        &format!("Machines API GET {path}: {what} ({chain})"),
                        self.secrets,
                    ),
                    &err.error,
                ))
            }
        }
    }

    /// Stores a body as evidence; a storage failure is noted, not fatal.
    fn keep(&self, role: &str, body: &Body) -> Option<crate::core::BlobRef> {
        let scrubbed = super::scrub(&String::from_utf8_lossy(&body.bytes), self.secrets);
        self.ctx
            .blobs
            .put(role, scrubbed.as_bytes(), body.truncated)
            .ok()
    }

    /// A non-success status as a reason; 401/403/404 are permanent.
    fn error(&self, status: u16, body: &[u8], app: &str) -> Observation {
        let message = error_message(body);
        let suffix = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        let suffix = super::scrub(&suffix, self.secrets);
        match status {
            401 => Observation::fail_permanent(
                FailureClass::Auth,
                format!("token rejected (401){suffix}"),
                "the Machines API refused the token; a new token is needed",
            ),
            403 => Observation::fail_permanent(
                FailureClass::Auth,
                format!("token may not access app {app} (403){suffix}"),
                "the token lacks permission for this app",
            ),
            404 => Observation::fail_permanent(
                FailureClass::NotFound,
                format!("app {app} not found (404){suffix}"),
                "the app does not exist or the token's organization cannot see it",
            ),
            _ => Observation::fail(
                FailureClass::Expectation,
                format!("Machines API returned {status}{suffix}"),
            ),
        }
        .with_detail("status", status)
    }
}

/// fly-go's rule: `message` if present, else `error`, else the raw text.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(err) => err.message.or(err.error).unwrap_or_default(),
        Err(_) => shorten(String::from_utf8_lossy(body).trim(), 200),
    }
}

/// The Machines API's app object, as far as the check reads it.
#[derive(Debug, Default, Deserialize)]
struct ApiApp {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// The Machines API's error body (fly-go reads `message`, then `error`).
#[derive(Debug, Default, Deserialize)]
struct ApiError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A Machine object, as far as the check reads it; unknown fields are ignored
/// and missing ones are empty.
#[derive(Debug, Default, Deserialize)]
struct ApiMachine {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    config: Option<ApiConfig>,
    #[serde(default)]
    incomplete_config: Option<ApiConfig>,
    #[serde(default)]
    image_ref: Option<ApiImageRef>,
    #[serde(default)]
    checks: Option<Vec<ApiCheck>>,
}

#[derive(Debug, Default, Deserialize)]
struct ApiConfig {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    guest: Option<ApiGuest>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: BTreeMap<String, String>,
}

/// `config.guest`: the machine's size.
#[derive(Debug, Default, Clone, Deserialize)]
struct ApiGuest {
    #[serde(default)]
    cpu_kind: Option<String>,
    #[serde(default)]
    cpus: Option<u64>,
    #[serde(default)]
    memory_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct ApiImageRef {
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct ApiCheck {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    output: Option<String>,
}

/// `null` where a map is expected reads as an empty map (Go's nil maps).
fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// The secret names in an answer of `GET /v1/apps/{app}/secrets`: a list of
/// objects, bare or under `secrets`, each naming its secret in `name` (or
/// `label`, as some API versions call it). Anything else is ignored.
fn secret_names_of(bytes: &[u8]) -> Vec<String> {
    let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let list = match &doc {
        Value::Array(list) => list.as_slice(),
        Value::Object(map) => map
            .get("secrets")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        _ => &[],
    };
    list.iter()
        .filter_map(|s| s.get("name").or_else(|| s.get("label")))
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// What the check needs from a Machine object.
struct Machine {
    id: String,
    name: String,
    state: String,
    region: String,
    group: Option<String>,
    image: String,
    digest: String,
    release_version: Option<String>,
    checks: Vec<HealthCheck>,
    guest: ApiGuest,
}

struct HealthCheck {
    name: String,
    status: String,
    output: String,
}

impl Machine {
    fn from_api(api: ApiMachine) -> Self {
        // `incomplete_config` stands in for `config` when the host is unreachable.
        let config = api.config.or(api.incomplete_config).unwrap_or_default();
        let has_image_ref = api.image_ref.is_some();
        let image_ref = api.image_ref.unwrap_or_default();
        let group = config
            .metadata
            .get("fly_process_group")
            .or_else(|| config.metadata.get("process_group"))
            .cloned();
        let image = match config.image {
            Some(image) if !image.is_empty() => image,
            _ if has_image_ref => format!(
                "{}/{}:{}",
                image_ref.registry.as_deref().unwrap_or(""),
                image_ref.repository.as_deref().unwrap_or(""),
                image_ref.tag.as_deref().unwrap_or("")
            ),
            _ => String::new(),
        };
        let guest = config.guest.clone().unwrap_or_default();
        let release_version = config
            .metadata
            .get("fly_release_version")
            .or_else(|| image_ref.labels.get("fly.version"))
            .cloned();
        let checks = api
            .checks
            .unwrap_or_default()
            .into_iter()
            .map(|c| HealthCheck {
                name: c.name.unwrap_or_default(),
                status: c.status.unwrap_or_default(),
                output: c.output.unwrap_or_default(),
            })
            // fly-go drops these fake compatibility checks too.
            .filter(|c| !c.name.starts_with("bg_deployments_compat"))
            .collect();
        Machine {
            guest,
            id: api.id.unwrap_or_default(),
            name: api.name.unwrap_or_default(),
            state: api.state.unwrap_or_default(),
            region: api.region.unwrap_or_default(),
            group,
            image,
            digest: image_ref.digest.unwrap_or_default(),
            release_version,
            checks,
        }
    }

    fn group_label(&self) -> &str {
        self.group.as_deref().unwrap_or("no group")
    }

    fn summary(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "region": self.region,
            "group": self.group,
            "image": self.image,
            "release_version": self.release_version,
            "checks": self.checks.iter().map(|c| json!({"name": c.name, "status": c.status})).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_scheme_follows_token_form() {
        assert_eq!(
            authorization_header("fm2_abc,fm2_def"),
            "FlyV1 fm2_abc,fm2_def"
        );
        assert_eq!(
            authorization_header("FlyV1 fm2_abc,fm2_def"),
            "FlyV1 fm2_abc,fm2_def"
        );
        assert_eq!(authorization_header("Bearer FlyV1 fm1r_x"), "FlyV1 fm1r_x");
        assert_eq!(authorization_header("bearer  flyv1 fm1a_x"), "FlyV1 fm1a_x");
        assert_eq!(authorization_header("fo1_personal"), "Bearer fo1_personal");
        assert_eq!(
            authorization_header("BEARER fo1_personal"),
            "Bearer fo1_personal"
        );
        // "Bearerish" is a token, not a scheme.
        assert_eq!(authorization_header("Bearerish"), "Bearer Bearerish");
    }

    #[test]
    fn machines_parse_with_serde_and_tolerate_nulls() {
        let machines: Vec<ApiMachine> = serde_json::from_value(json!([
            {"id": "a", "state": "started", "region": "ord",
             "incomplete_config": {"metadata": {"fly_process_group": "web"}},
             "image_ref": {"registry": "registry.fly.io", "repository": "app", "tag": "v1",
                           "digest": "sha256:1", "labels": {"fly.version": "9"}},
             "checks": [{"name": "bg_deployments_compat_x", "status": "passing"},
                        {"name": "http", "status": "critical", "output": "down"}]},
            {"id": "b", "state": "stopped", "config": {"metadata": null}, "checks": null}
        ]))
        .unwrap();
        let machines: Vec<Machine> = machines.into_iter().map(Machine::from_api).collect();
        assert_eq!(machines[0].group.as_deref(), Some("web"));
        assert_eq!(machines[0].image, "registry.fly.io/app:v1");
        assert_eq!(machines[0].release_version.as_deref(), Some("9"));
        assert_eq!(machines[0].checks.len(), 1);
        assert_eq!(machines[0].checks[0].output, "down");
        assert_eq!(machines[1].group_label(), "no group");
        assert!(machines[1].checks.is_empty());
        // A machine whose state is not a string is not the Machines API's JSON.
        assert!(serde_json::from_value::<Vec<ApiMachine>>(json!([{"state": 3}])).is_err());
    }

    #[test]
    fn not_started_states_are_counted() {
        let m = |state: &str| {
            Machine::from_api(serde_json::from_value(json!({"id": "x", "state": state})).unwrap())
        };
        let machines = [m("stopped"), m("stopped"), m("starting"), m("started")];
        assert_eq!(
            not_started_states(machines.iter()),
            " (starting, 2 stopped)"
        );
    }
}
