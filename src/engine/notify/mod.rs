//! Notifications (`[notify]`): a run's escalations and a sweep's changes of
//! state, as the journal redacted them, sent to Slack, a signed JSON webhook
//! and/or PagerDuty, every delivery attempt recorded as a `notify` record. A
//! failed notification is retried with backoff and recorded; it never
//! changes a verdict.

pub mod payload;

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cancel::Cancel;
use super::run::Emit;
use crate::check::support::{errors, http, tls};
use crate::core::record::{Escalation, Event, StateChange};
use crate::core::template::{Scope, Template};
use crate::evidence::{BundleWriter, Redacted};
use crate::runbook::model::NotifyConfig;

/// PagerDuty's Events API v2 endpoint, unless `url` overrides it.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The most of each collected log that goes into a notification (its tail).
const EXCERPT_BYTES: usize = 1500;

/// The first retry's delay; each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// What a notification says about one escalation: only redacted content.
#[derive(Debug, Clone)]
pub struct Notice {
    pub run_id: String,
    pub runbook: String,
    pub host: String,
    /// The bundle's folder, as the operator will open it.
    pub bundle: String,
    /// The `escalation` record as the journal holds it.
    pub escalation: Escalation,
    /// The tail of each log the step's `collect` commands gathered.
    pub logs: Vec<LogExcerpt>,
}

/// The tail of one collected output.
#[derive(Debug, Clone)]
pub struct LogExcerpt {
    pub command: String,
    /// `stdout` or `stderr`.
    pub role: String,
    pub excerpt: String,
}

impl Notice {
    /// The notice for a journal record, when it is an escalation: the
    /// record is the redacted one, and log excerpts are read back from the
    /// bundle's (redacted) blobs and passed through the redactor again.
    pub fn from_record(event: &Redacted<Event>, bundle: &BundleWriter) -> Option<Notice> {
        let Event::Escalation(escalation) = &**event else {
            return None;
        };
        let logs = escalation
            .collected
            .iter()
            .flat_map(|c| c.blobs.iter().map(move |b| (c, b)))
            .filter_map(|(collected, blob)| {
                let excerpt = read_tail(bundle.dir(), &blob.digest)?;
                let role = blob.role.rsplit(": ").next().unwrap_or(&blob.role);
                Some(LogExcerpt {
                    command: collected.command.clone(),
                    role: role.to_string(),
                    excerpt: bundle.redact(&excerpt).into_inner(),
                })
            })
            .collect();
        let header = bundle.header();
        Some(Notice {
            run_id: header.run_id.clone(),
            runbook: header.source.name.clone(),
            host: header.host.clone(),
            bundle: bundle.dir().display().to_string(),
            escalation: escalation.clone(),
            logs,
        })
    }
}

/// The tail of a stored blob, as text.
fn read_tail(dir: &Path, digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = std::fs::read(dir.join("blobs").join("sha256").join(hex)).ok()?;
    let mut start = bytes.len().saturating_sub(EXCERPT_BYTES);
    // Start on a character boundary.
    while start < bytes.len() && (bytes[start] & 0xC0) == 0x80 {
        start += 1;
    }
    let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
    Some(if start > 0 {
        format!("…{text}")
    } else {
        text
    })
}

/// What one notification says, as each target wants it; built only from
/// redacted content ([`Notice`] for a run, [`payload::CheckChange`] for a sweep).
#[derive(Debug, Clone)]
pub struct Message {
    /// The step or check it is about: the `notify` record's `step`.
    pub subject: String,
    /// A sweep's change of state; `None` for a run's escalation.
    pub change: Option<StateChange>,
    pub generic: Value,
    pub slack: Value,
    pub pagerduty: payload::PagerDutyEvent,
}

impl Message {
    /// The notification of a run's escalation.
    pub fn escalation(notice: &Notice) -> Message {
        Message {
            subject: notice.escalation.step.clone(),
            change: None,
            generic: payload::generic(notice),
            slack: payload::slack(notice),
            pagerduty: payload::pagerduty(notice),
        }
    }

    /// The notification of a sweep check's change of state.
    pub fn check_change(change: &payload::CheckChange) -> Message {
        Message {
            subject: change.check.clone(),
            change: Some(change.change),
            generic: payload::change_generic(change),
            slack: payload::change_slack(change),
            pagerduty: payload::change_pagerduty(change),
        }
    }
}

/// Sends notifications to the `[notify]` targets.
pub struct Notifier<'a> {
    config: &'a NotifyConfig,
    client: reqwest::Client,
}

/// One target, its body and how to sign it, ready to send.
struct Delivery {
    target: &'static str,
    url: String,
    body: Vec<u8>,
    /// The webhook's signing secret.
    signing: Option<String>,
}

impl<'a> Notifier<'a> {
    /// A notifier with its own client: the per-request timeout, no redirects.
    pub fn new(config: &'a NotifyConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(crate::check::support::http::USER_AGENT)
            .tls_backend_preconfigured(tls::http_client_config(true))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout.0)
            .timeout(config.timeout.0)
            .build()?;
        Ok(Notifier { config, client })
    }

    /// Sends `message` to every target, one after another, recording each
    /// attempt in `journal`. Only an evidence write failure is an `Err`.
    pub async fn deliver(
        &self,
        message: &Message,
        scope: &dyn Scope,
        journal: &mut dyn Emit,
        cancel: &Cancel,
    ) -> io::Result<()> {
        let step = message.subject.clone();
        let change = message.change;
        for planned in self.plan(message, scope) {
            let delivery = match planned {
                Ok(delivery) => delivery,
                Err((target, error)) => {
                    journal.emit(Event::Notify {
                        step: step.clone(),
                        change,
                        target: target.into(),
                        attempt: 1,
                        of: 1,
                        delivered: false,
                        status: None,
                        error: Some(error),
                        duration_ms: 0.0,
                    })?;
                    continue;
                }
            };
            let of = self.config.retries + 1;
            let mut delay = FIRST_BACKOFF;
            for attempt in 1..=of {
                let started = Instant::now();
                // A signal ends the run promptly, not after the request's timeout.
                let (status, error) = tokio::select! {
                    sent = self.send(&delivery) => sent,
                    _ = cancel.cancelled() => {
                        (None, Some("interrupted before the receiver answered".to_string()))
                    }
                };
                let delivered = error.is_none();
                journal.emit(Event::Notify {
                    step: step.clone(),
                    change,
                    target: delivery.target.into(),
                    attempt,
                    of,
                    delivered,
                    status,
                    error,
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                })?;
                if delivered || attempt == of || cancel.is_cancelled() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => break,
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
        Ok(())
    }

    /// Each configured target's request, or why it cannot be built.
    fn plan(
        &self,
        message: &Message,
        scope: &dyn Scope,
    ) -> Vec<Result<Delivery, (&'static str, String)>> {
        let render = |target: &'static str, what: &str, t: &Template| {
            t.render(scope)
                .map_err(|err| (target, format!("cannot render `{what}`: {err}")))
        };
        let json = |value: Value| serde_json::to_vec(&value).unwrap_or_default();
        let mut planned = Vec::new();
        if let Some(slack) = &self.config.slack {
            planned.push(render("slack", "url", &slack.url).map(|url| Delivery {
                target: "slack",
                url,
                body: json(message.slack.clone()),
                signing: None,
            }));
        }
        if let Some(hook) = &self.config.webhook {
            planned.push(render("webhook", "url", &hook.url).and_then(|url| {
                let secret = render("webhook", "secret", &hook.secret)?;
                Ok(Delivery {
                    target: "webhook",
                    url,
                    body: json(message.generic.clone()),
                    signing: Some(secret),
                })
            }));
        }
        if let Some(pd) = &self.config.pagerduty {
            planned.push(
                render("pagerduty", "routing_key", &pd.routing_key).and_then(|key| {
                    let url = match &pd.url {
                        Some(url) => render("pagerduty", "url", url)?,
                        None => PAGERDUTY_URL.to_string(),
                    };
                    let severity = pd.severity.as_str();
                    Ok(Delivery {
                        target: "pagerduty",
                        url,
                        body: json(message.pagerduty.body(&key, severity)),
                        signing: None,
                    })
                }),
            );
        }
        planned
    }

    /// One request: the status when it answered, and why it failed when it
    /// did not answer 2xx. Errors never carry the URL (a Slack URL is a secret).
    async fn send(&self, delivery: &Delivery) -> (Option<u16>, Option<String>) {
        let mut request = self
            .client
            .post(&delivery.url)
            .header("content-type", "application/json")
            .body(delivery.body.clone());
        if let Some(secret) = &delivery.signing {
            let timestamp = jiff::Timestamp::now().as_second().to_string();
            let signature = sign(secret.as_bytes(), &timestamp, &delivery.body);
            request = request
                .header("X-Runproof-Timestamp", timestamp)
                .header("X-Runproof-Signature", signature);
        }
        match http::fetch(request, 64 * 1024).await {
            Ok(fetched) if (200..300).contains(&fetched.status) => (Some(fetched.status), None),
            Ok(fetched) => (
                Some(fetched.status),
                Some(format!("the receiver answered HTTP {}", fetched.status)),
            ),
            Err(err) => (err.status, Some(errors::render(&err.error.without_url()))),
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the Chatwoot scheme.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let chatwoot = crate::webhook::signature::sign(secret, timestamp, body);
    let hex = chatwoot
        .strip_prefix("sha256=")
        .unwrap_or(chatwoot.as_str());
    format!("sha256={hex}")
}
