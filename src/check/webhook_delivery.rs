//! `webhook-delivery`: run the delivery receiver and pass when a valid
//! Chatwoot delivery of the expected event (optionally containing a marker)
//! arrives in time. An optional `trigger` request is sent once the receiver is
//! up — e.g. posting a message through the Chatwoot API — so the delivery it
//! causes cannot arrive before anyone listens. The receiver and the trigger's
//! outcome are kept between the attempts of a step ([`Waiting`]): a retry
//! waits again for the same delivery instead of posting a second message.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::resolve::ResolverAddr;
use super::support::http;
use super::webhook::render_secret;
use super::{FailureClass, Observation, ProbeContext};
use crate::core::duration::HumanDuration;
use crate::core::template::Template;
use crate::webhook::events::CHATWOOT_EVENTS;
use crate::webhook::listener::{Listener, ListenerConfig};

/// `check = "webhook-delivery"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookDeliveryCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// Where to receive: `127.0.0.1:8787`, or `0.0.0.0:8787` for a remote
    /// Chatwoot; a template such as `"{{listen}}"` is read when the step runs.
    pub listen: Template,
    /// The webhook secret: `"{{secret:NAME}}"`.
    pub secret: Template,
    /// The event to wait for (default `message_created`).
    #[serde(default = "default_event")]
    pub event: String,
    /// Text the delivery's body must contain (e.g. the content a trigger posted).
    #[serde(default)]
    pub contains: Option<Template>,
    /// The replay window (default 300 s).
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
    /// A request sent once the receiver is listening.
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// Send the trigger again on every retry (default false: a retry keeps
    /// the receiver and waits again for what the accepted trigger caused).
    #[serde(default)]
    pub retrigger: bool,
}

/// Receivers kept between the attempts of a step, by step id: a retry
/// finds the listener still bound (deliveries that arrived meanwhile are
/// queued) and knows whether the trigger was already accepted.
#[derive(Default)]
pub struct Waiting {
    steps: Mutex<foldhash::HashMap<String, Arc<tokio::sync::Mutex<Option<Kept>>>>>,
}

impl Waiting {
    /// The step's slot, created empty on first use.
    fn slot(&self, step: &str) -> Arc<tokio::sync::Mutex<Option<Kept>>> {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        steps.entry(step.to_string()).or_default().clone()
    }

    /// Forgets the step's receiver; dropping it frees the port.
    pub(crate) fn end(&self, step: &str) {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        steps.remove(step);
    }
}

/// One step's receiver and what its trigger did.
struct Kept {
    listener: Listener,
    triggered: Option<Triggered>,
}

/// An accepted trigger.
#[derive(Clone, Copy)]
struct Triggered {
    status: u16,
    attempt: u32,
    at: jiff::Timestamp,
}

fn default_event() -> String {
    "message_created".to_string()
}

fn default_post() -> String {
    "POST".to_string()
}

fn default_true() -> bool {
    true
}

/// `trigger = { url = "...", headers = {...}, body = "..." }`: must answer 2xx.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    #[serde(default = "default_post")]
    pub method: String,
    pub url: Template,
    /// Recorded by name only (they often hold `api_access_token`).
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// Sent as `application/json` unless `headers` set a Content-Type.
    #[serde(default)]
    pub body: Option<Template>,
    #[serde(default = "default_true")]
    pub verify_tls: bool,
}

impl WebhookDeliveryCheck {
    pub(super) fn target(&self) -> String {
        format!("receive {} on {}", self.event, self.listen.raw())
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        // A template is checked once rendered, when the step runs.
        if self.listen.references().next().is_none()
            && self.listen.raw().parse::<SocketAddr>().is_err()
        {
            problems.push((
                format!("webhook-delivery listen must be an IP address and port such as `127.0.0.1:8787`, not `{}`", self.listen.raw()),
                self.listen.span(),
            ));
        }
        if !CHATWOOT_EVENTS.contains(&self.event.as_str()) {
            problems.push((
                format!(
                    "unknown Chatwoot event `{}`; webhooks can subscribe to {}",
                    self.event,
                    CHATWOOT_EVENTS.join(", ")
                ),
                0..0,
            ));
        }
        if !self.secret.uses_secret() {
            problems.push((
                "webhook secret must come from `{{secret:NAME}}`, not be written into the runbook"
                    .to_string(),
                self.secret.span(),
            ));
        }
        if let Some(trigger) = &self.trigger {
            if reqwest::Method::from_bytes(trigger.method.as_bytes()).is_err() {
                problems.push((format!("invalid trigger method `{}`", trigger.method), 0..0));
            }
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let listen = match ctx.render(&self.listen) {
            Ok(listen) => listen,
            Err(obs) => return obs,
        };
        let Ok(addr) = listen.trim().parse::<SocketAddr>() else {
            let shown = if self.listen.uses_secret() {
                String::new()
            } else {
                format!(" (`{listen}`)")
            };
            return Observation::fail_permanent(
                FailureClass::Config,
                format!(
                    "listen = `{}`{shown} is not an IP address and port such as `127.0.0.1:8787`",
                    self.listen.raw()
                ),
                "the runbook or its vars must change",
            );
        };
        let secret = match render_secret(ctx, &self.secret) {
            Ok(secret) => secret,
            Err(obs) => return obs,
        };
        let contains = match self.contains.as_ref().map(|t| ctx.render(t)).transpose() {
            Ok(contains) => contains,
            Err(obs) => return obs,
        };
        // The previous attempt's receiver, unless this is the step's first
        // attempt (a new sample of a sweep starts afresh too).
        let slot = ctx.clients.waiting.slot(ctx.step);
        let mut kept = slot.lock().await;
        if ctx.attempt <= 1 {
            if let Some(mut old) = kept.take() {
                old.listener.stop().await;
            }
        }
        let started = tokio::time::Instant::now();
        let kept = match &mut *kept {
            Some(kept) => kept,
            empty => {
                let mut config = ListenerConfig::new(secret.into_bytes());
                if let Some(max_age) = self.max_age {
                    config.max_age = max_age.0;
                }
                match Listener::bind(addr, config).await {
                    Ok(listener) => empty.insert(Kept {
                        listener,
                        triggered: None,
                    }),
                    Err(err) => {
                        return Observation::fail(
                            FailureClass::Io,
                            format!("cannot listen on {addr}: {err}"),
                        )
                    }
                }
            }
        };
        let mut observation_detail =
            vec![("listen", json!(kept.listener.local_addr().to_string()))];

        if let Some(trigger) = &self.trigger {
            match kept.triggered {
                Some(earlier) if !self.retrigger => {
                    observation_detail.push(("trigger_status", json!(earlier.status)));
                    observation_detail.push((
                        "trigger",
                        json!(format!(
                            "accepted in attempt {} ({}); not sent again (retrigger = false)",
                            earlier.attempt, earlier.status
                        )),
                    ));
                }
                _ => {
                    let at = jiff::Timestamp::now();
                    match send_trigger(trigger, ctx, self.resolver).await {
                        Ok(status) => {
                            kept.triggered = Some(Triggered {
                                status,
                                attempt: ctx.attempt,
                                at,
                            });
                            observation_detail.push(("trigger_status", json!(status)));
                            observation_detail.push((
                                "trigger",
                                json!(format!("sent in attempt {}", ctx.attempt)),
                            ));
                        }
                        // The receiver stays for the retry, which sends the
                        // trigger again: this one was not accepted.
                        Err(obs) => return obs,
                    }
                }
            }
        }

        // Answer a little before the engine's own timeout, so the reason is
        // ours ("no delivery…") rather than a bare timeout.
        let margin = (ctx.timeout / 10).min(Duration::from_secs(1));
        let wait = ctx
            .timeout
            .saturating_sub(margin)
            .saturating_sub(started.elapsed());
        let result = kept
            .listener
            .wait_for(&self.event, contains.as_deref(), wait)
            .await;
        let triggered = kept.triggered;
        if result.matched.is_some() {
            kept.listener.stop().await;
        }

        let mut observation = match &result.matched {
            Some(delivery) => {
                let mut obs = Observation::pass();
                for (key, value) in delivery.detail() {
                    obs.detail.insert(key, value);
                }
                if let Some(id) = &delivery.delivery_id {
                    obs = obs.with_detail("delivery_id", id.clone());
                }
                // Measured from the trigger's send, in milliseconds: the
                // signature timestamp has one-second resolution.
                if let Some(triggered) = triggered {
                    let since = delivery.received_at.duration_since(triggered.at);
                    obs = obs.with_detail(
                        "latency_ms_since_trigger",
                        since.as_millis_f64().max(0.0).round() as i64,
                    );
                }
                match delivery.store_body(ctx.blobs) {
                    Ok(blobs) => obs.blobs = blobs,
                    Err(err) => obs = obs.with_detail("body_blob_error", err.to_string()),
                }
                obs
            }
            None => Observation::fail(
                FailureClass::Expectation,
                result.explain_miss(&self.event, contains.as_deref(), wait),
            ),
        };
        for (key, value) in observation_detail {
            observation = observation.with_detail(key, value);
        }
        let mut others = Vec::new();
        for d in &result.others {
            let mut entry = json!({
                "delivery_id": d.delivery_id,
                "verdict": d.verdict(),
                "status": d.status,
                "reason": d.reason,
                "event": d.event,
            });
            // Keep what was sent: an invalid delivery's body is the evidence of why.
            if !d.body.is_empty() {
                match ctx
                    .blobs
                    .put("other.request.body", &d.body, d.body_truncated)
                {
                    Ok(blob) => {
                        entry["body"] = json!(blob.digest);
                        observation.blobs.push(blob);
                    }
                    Err(err) => entry["body_error"] = json!(err.to_string()),
                }
            }
            others.push(entry);
        }
        if !others.is_empty() {
            observation = observation.with_detail("other_deliveries", Value::Array(others));
        }
        observation
    }
}

/// Sends the trigger; a failure is the attempt's failure.
async fn send_trigger(
    trigger: &Trigger,
    ctx: &ProbeContext<'_>,
    resolver: Option<ResolverAddr>,
) -> Result<u16, Observation> {
    let url = ctx.render(&trigger.url)?;
    let method = reqwest::Method::from_bytes(trigger.method.as_bytes()).map_err(|_| {
        Observation::fail_permanent(
            FailureClass::Config,
            format!("invalid trigger method `{}`", trigger.method),
            "the runbook must change",
        )
    })?;
    let mut request = ctx
        .clients
        .http(trigger.verify_tls, resolver)?
        .request(method, url)
        .timeout(ctx.timeout);
    let mut has_content_type = false;
    for (name, value) in &trigger.headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        request = request.header(name.as_str(), ctx.render(value)?);
    }
    if let Some(body) = &trigger.body {
        if !has_content_type {
            request = request.header("Content-Type", "application/json");
        }
        request = request.body(ctx.render(body)?);
    }
    let what = format!("trigger {} {}", trigger.method, trigger.url.raw());
    // The trigger's answer is only its status; the capped read keeps a
    // hostile or endless body from costing memory.
    match http::fetch(request, TRIGGER_BODY_CAP).await {
        Ok(fetched) if (200..300).contains(&fetched.status) => Ok(fetched.status),
        Ok(fetched) => Err(Observation::fail(
            match fetched.status {
                401 | 403 => FailureClass::Auth,
                404 => FailureClass::NotFound,
                _ => FailureClass::Expectation,
            },
            format!("{what} answered {}", fetched.status),
        )
        .with_detail("trigger_status", fetched.status)),
        // Accepted, then the body broke off: the trigger was still accepted.
        Err(err) if err.status.is_some_and(|s| (200..300).contains(&s)) => {
            Ok(err.status.unwrap_or_default())
        }
        // NXDOMAIN is permanent (class `dns`); other errors by their type.
        Err(err) => {
            let no_retry = super::resolve::no_retry_of(&err.error);
            let class = err.class();
            let reason = format!("{what}: {}", super::webhook::describe_error(err.error));
            Err(match no_retry {
                Some(why) => Observation::fail_permanent(class, reason, why),
                None => Observation::fail(class, reason),
            })
        }
    }
}

/// The most of a trigger's response body that is read (and then dropped).
const TRIGGER_BODY_CAP: usize = 64 * 1024;
