//! `webhook`: POST a Chatwoot-signed delivery (a built-in sample event or a
//! body file) to an endpoint and assert it is accepted; optionally send
//! unsigned, badly signed and stale deliveries and fail if any is accepted —
//! an endpoint that accepts forgeries is a security finding, named as such.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::OneOrMany;
use super::resolve::ResolverAddr;
use super::support::{classify, errors, http, latency};
use super::{FailureClass, Observation, ProbeContext, ProbeRecord};
use crate::core::duration::HumanDuration;
use crate::core::template::Template;
use crate::webhook::events::{sample_body, SampleEvent, SampleParams};
use crate::webhook::signature::{self, DEFAULT_MAX_AGE};
use crate::webhook::{HEADER_DELIVERY, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// Response bodies kept as evidence, at most.
const BODY_CAP: usize = 64 * 1024;

/// `check = "webhook"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// The endpoint Chatwoot delivers to.
    pub url: Template,
    /// The webhook secret: `"{{secret:NAME}}"`.
    pub secret: Template,
    /// The sample event to send (default `message_created`).
    #[serde(default = "default_event")]
    pub event: String,
    /// Send this file's bytes instead of a sample (read at probe time),
    /// relative to the runbook's folder.
    #[serde(default)]
    pub body_file: Option<PathBuf>,
    /// Extra request headers (e.g. a gateway's auth); recorded by name only.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// The receiver's replay window, for the stale probe (default 300 s).
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
    /// TLS certificate verification (default true).
    #[serde(default = "default_true")]
    pub verify_tls: bool,
    /// What the endpoint must answer to each probe.
    #[serde(default)]
    pub expect: WebhookExpect,
}

fn default_event() -> String {
    SampleEvent::MessageCreated.as_str().to_string()
}

fn default_true() -> bool {
    true
}

/// `expect` for `webhook`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookExpect {
    /// Status of the signed delivery: one or a list (default: any 2xx).
    #[serde(default)]
    pub status: Option<OneOrMany<u16>>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
    /// Also send a delivery without signature headers; it must not get a 2xx.
    #[serde(default)]
    pub rejects_unsigned: bool,
    /// Also send a delivery with a wrong signature; it must not get a 2xx.
    #[serde(default)]
    pub rejects_bad_signature: bool,
    /// Also send a correctly signed delivery older than the window; it must not get a 2xx.
    #[serde(default)]
    pub rejects_stale: bool,
}

/// One of the requests an attempt sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Signed,
    Unsigned,
    BadSignature,
    Stale,
}

impl ProbeKind {
    fn name(self) -> &'static str {
        match self {
            ProbeKind::Signed => "signed",
            ProbeKind::Unsigned => "unsigned",
            ProbeKind::BadSignature => "bad_signature",
            ProbeKind::Stale => "stale",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ProbeKind::Signed => "a correctly signed delivery",
            ProbeKind::Unsigned => "an unsigned delivery (no X-Chatwoot-Signature/-Timestamp)",
            ProbeKind::BadSignature => "a delivery with a wrong signature",
            ProbeKind::Stale => {
                "a correctly signed delivery with a timestamp older than the replay window"
            }
        }
    }
}

/// What one request got back.
struct Sent {
    status: Option<u16>,
    /// Why nothing answered, and its class.
    error: Option<(FailureClass, String)>,
    /// Set when the host name does not exist (NXDOMAIN): retrying cannot help.
    no_retry: Option<&'static str>,
    latency: Duration,
}

/// Why a read-only attempt sent no signed delivery (recorded as the attempt's
/// `signed_delivery` and the `signed` probe's `not_sent`).
pub const NOT_SENT: &str = "not sent: the run does not allow this step to change things (a correctly signed delivery reaches the receiver's real logic); only rejection probes were sent; allow it with --allow-mutations (or a tag of this step with --allow-mutations=TAG)";

impl WebhookCheck {
    /// The requests of one attempt, in order: the signed delivery and the
    /// rejection probes asked for; read-only, only the rejection probes — all
    /// three when none is asked for, since a correct receiver drops each.
    fn probes(&self, read_only: bool) -> Vec<ProbeKind> {
        let mut probes = Vec::new();
        if !read_only {
            probes.push(ProbeKind::Signed);
        }
        let asked = [
            (self.expect.rejects_unsigned, ProbeKind::Unsigned),
            (self.expect.rejects_bad_signature, ProbeKind::BadSignature),
            (self.expect.rejects_stale, ProbeKind::Stale),
        ];
        let none_asked = asked.iter().all(|(asked, _)| !asked);
        probes.extend(
            asked
                .into_iter()
                .filter(|(asked, _)| *asked || (read_only && none_asked))
                .map(|(_, kind)| kind),
        );
        probes
    }

    pub(super) fn target(&self) -> String {
        match &self.body_file {
            Some(path) => format!("POST {} ({})", self.url.raw(), path.display()),
            None => format!("POST {} ({})", self.url.raw(), self.event),
        }
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        if self.url.references().next().is_none() {
            match url::Url::parse(self.url.raw()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                Ok(url) => problems.push((
                    format!("webhook url must be http or https, not `{}`", url.scheme()),
                    self.url.span(),
                )),
                Err(err) => problems.push((
                    format!("invalid webhook url `{}`: {err}", self.url.raw()),
                    self.url.span(),
                )),
            }
        }
        if let Err(err) = self.event.parse::<SampleEvent>() {
            problems.push((err, 0..0));
        }
        if !self.secret.uses_secret() {
            problems.push((
                "webhook secret must come from `{{secret:NAME}}`, not be written into the runbook"
                    .to_string(),
                self.secret.span(),
            ));
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let url = match ctx.render(&self.url) {
            Ok(url) => url,
            Err(obs) => return obs,
        };
        let secret = match render_secret(ctx, &self.secret) {
            Ok(secret) => secret,
            Err(obs) => return obs,
        };
        let mut extra_headers = Vec::new();
        for (name, value) in &self.headers {
            match ctx.render(value) {
                Ok(value) => extra_headers.push((name.clone(), value)),
                Err(obs) => return obs,
            }
        }
        let now = jiff::Timestamp::now();
        let body = match &self.body_file {
            Some(path) => match std::fs::read(ctx.path(path)) {
                Ok(bytes) => bytes,
                Err(err) => {
                    return Observation::fail_permanent(
                        classify::io(&err),
                        format!("cannot read body_file {}: {err}", path.display()),
                        "a missing file does not appear by waiting",
                    )
                }
            },
            None => match self.event.parse::<SampleEvent>() {
                Ok(event) => sample_body(event, &SampleParams::new(ctx.run_id, now)),
                Err(err) => {
                    return Observation::fail_permanent(
                        FailureClass::Config,
                        err,
                        "the runbook names an unknown event",
                    )
                }
            },
        };

        let max_age = self.max_age.map_or(DEFAULT_MAX_AGE, |d| d.0);
        let probes = self.probes(ctx.read_only);

        let client = match ctx.clients.http(self.verify_tls, self.resolver) {
            Ok(client) => client,
            Err(obs) => return obs,
        };
        let mut records = Vec::new();
        if ctx.read_only {
            // Said where QA reads the probes: the step passed without it.
            let mut detail = serde_json::Map::new();
            detail.insert("sent".into(), json!(false));
            detail.insert("not_sent".into(), json!(NOT_SENT));
            records.push(ProbeRecord {
                name: ProbeKind::Signed.name().to_string(),
                detail,
                blobs: Vec::new(),
            });
        }
        let mut failures = Vec::new();
        // The class of the first failure; a security finding outranks it.
        let mut class = None;
        let mut findings = Vec::new();
        let mut signed_latency = None;
        let mut unresolvable = None;
        for (index, kind) in probes.into_iter().enumerate() {
            let delivery = uuid::Uuid::new_v4().to_string();
            let timestamp = match kind {
                ProbeKind::Stale => now.as_second() - max_age.as_secs() as i64 - 60,
                _ => now.as_second(),
            }
            .to_string();
            let mut headers = vec![(HEADER_DELIVERY.to_string(), delivery.clone())];
            match kind {
                ProbeKind::Unsigned => {}
                ProbeKind::BadSignature => {
                    headers.push((HEADER_TIMESTAMP.to_string(), timestamp.clone()));
                    headers.push((
                        HEADER_SIGNATURE.to_string(),
                        corrupt(&signature::sign(secret.as_bytes(), &timestamp, &body)),
                    ));
                }
                ProbeKind::Signed | ProbeKind::Stale => {
                    headers.push((HEADER_TIMESTAMP.to_string(), timestamp.clone()));
                    headers.push((
                        HEADER_SIGNATURE.to_string(),
                        signature::sign(secret.as_bytes(), &timestamp, &body),
                    ));
                }
            }
            let (sent, response_body) =
                send(&client, &url, &extra_headers, &headers, &body, ctx.timeout).await;
            let mut record = json!({
                "request": {
                    "method": "POST",
                    "url": self.url.raw(),
                    "headers": headers.iter().map(|(n, _)| n.as_str()).chain(extra_headers.iter().map(|(n, _)| n.as_str())).collect::<Vec<_>>(),
                    "delivery_id": delivery,
                    "timestamp": if kind == ProbeKind::Unsigned { Value::Null } else { json!(timestamp) },
                    "body_bytes": body.len(),
                    "body_sha256": hex::encode(Sha256::digest(&body)),
                },
                "latency_ms": (sent.latency.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
            });
            if let Some(status) = sent.status {
                record["status"] = json!(status);
            }
            if let Some((_, error)) = &sent.error {
                record["error"] = json!(error);
            }
            let mut probe_blobs = Vec::new();
            if let Some((bytes, truncated)) = response_body {
                let role = match kind {
                    ProbeKind::Signed => "response.body".to_string(),
                    other => format!("{}.response.body", other.name()),
                };
                match ctx.blobs.put(&role, &bytes, truncated) {
                    Ok(blob) => probe_blobs.push(blob),
                    Err(err) => record["response_body_error"] = json!(err.to_string()),
                }
            }
            let Value::Object(detail) = record else {
                unreachable!("built as an object above")
            };
            records.push(ProbeRecord {
                name: kind.name().to_string(),
                detail,
                blobs: probe_blobs,
            });

            match (kind, sent.status, sent.error) {
                (_, None, Some((error_class, error))) if index == 0 => {
                    // Nothing answered the first request: the others would
                    // say nothing more.
                    class.get_or_insert(error_class);
                    failures.push(format!("POST {}: {error}", self.url.raw()));
                    unresolvable = sent.no_retry;
                    break;
                }
                (ProbeKind::Signed, Some(status), _) => {
                    signed_latency = Some(sent.latency);
                    let ok = match &self.expect.status {
                        Some(expected) => expected.contains(&status),
                        None => (200..300).contains(&status),
                    };
                    if !ok {
                        let wanted = match &self.expect.status {
                            Some(OneOrMany::One(s)) => s.to_string(),
                            Some(OneOrMany::Many(list)) => {
                                format!(
                                    "one of {}",
                                    list.iter()
                                        .map(u16::to_string)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                            None => "a 2xx".to_string(),
                        };
                        let rejected = matches!(status, 401 | 403);
                        class.get_or_insert(if rejected {
                            FailureClass::Auth
                        } else {
                            FailureClass::Expectation
                        });
                        let hint = if rejected {
                            " (the endpoint rejected a correctly signed delivery: wrong secret on either side, or it verifies HMAC(body) without the timestamp prefix)"
                        } else {
                            ""
                        };
                        failures.push(format!(
                            "{} got status {status}, expected {wanted}{hint}",
                            kind.describe()
                        ));
                    }
                }
                (_, Some(status), _) if (200..300).contains(&status) => findings.push(format!(
                    "SECURITY: the endpoint accepted {} with status {status} (probe `{}`)",
                    kind.describe(),
                    kind.name()
                )),
                (_, Some(_), _) => {}
                (_, None, error) => {
                    let (error_class, error) =
                        error.unwrap_or((FailureClass::Protocol, String::new()));
                    class.get_or_insert(error_class);
                    failures.push(format!(
                        "the `{}` probe got no answer: {error}",
                        kind.name(),
                    ))
                }
            }
        }

        if let Some(slow) = signed_latency.and_then(|latency| {
            latency::exceeded(
                "the signed delivery",
                latency,
                self.expect.max_latency.as_ref(),
            )
        }) {
            class.get_or_insert(FailureClass::Expectation);
            failures.push(slow);
        }

        let mut observation = if !findings.is_empty() {
            let mut reasons = findings.clone();
            reasons.extend(failures);
            Observation::fail_permanent(
                FailureClass::Security,
                reasons.join("; "),
                "an endpoint that accepts forged or replayed deliveries does not start rejecting them by waiting",
            )
        } else if let (false, Some(why)) = (failures.is_empty(), unresolvable) {
            // NXDOMAIN is permanent; the DNS failure class attaches here.
            Observation::fail_permanent(
                class.unwrap_or(FailureClass::Dns),
                failures.join("; "),
                why,
            )
        } else if !failures.is_empty() {
            Observation::fail(
                class.unwrap_or(FailureClass::Expectation),
                failures.join("; "),
            )
        } else {
            Observation::pass()
        };
        observation = observation
            .with_detail(
                "event",
                self.body_file
                    .as_ref()
                    .map_or(json!(self.event), |_| Value::Null),
            )
            .with_detail(
                "probes",
                json!(records
                    .iter()
                    .filter(|r| r.detail.get("sent") != Some(&json!(false)))
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()),
            );
        if ctx.read_only {
            observation = observation.with_detail("signed_delivery", NOT_SENT);
        }
        if let Some(latency) = signed_latency {
            observation = observation.with_detail("latency_ms", latency.as_millis() as u64);
        }
        if !findings.is_empty() {
            observation = observation.with_detail("security_findings", json!(findings));
        }
        observation.probes = records;
        observation
    }
}

/// A well-formed signature that is certainly wrong: the last hex digit changed.
/// The webhook secret, rendered; an empty one is a permanent failure (an HMAC
/// with an empty key "works" and would hide the misconfiguration).
pub(super) fn render_secret(
    ctx: &ProbeContext<'_>,
    secret: &Template,
) -> Result<String, Observation> {
    match ctx.render(secret)? {
        value if value.is_empty() => Err(Observation::fail_permanent(
            FailureClass::Config,
            format!("webhook secret `{}` is empty", secret.raw()),
            "an empty secret does not fill itself",
        )),
        value => Ok(value),
    }
}

fn corrupt(signature: &str) -> String {
    let mut chars: Vec<char> = signature.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '0' { '1' } else { '0' };
    }
    chars.into_iter().collect()
}

/// POSTs `body` with Chatwoot's content headers. Errors are described without
/// the URL, which may hold a rendered secret.
async fn send(
    client: &reqwest::Client,
    url: &str,
    extra_headers: &[(String, String)],
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> (Sent, Option<(Vec<u8>, bool)>) {
    let mut request = client
        .post(url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_vec());
    for (name, value) in extra_headers.iter().chain(headers) {
        request = request.header(name.as_str(), value.as_str());
    }
    match http::fetch(request, BODY_CAP).await {
        Ok(fetched) => (
            Sent {
                status: Some(fetched.status),
                error: None,
                no_retry: None,
                latency: fetched.time_to_headers,
            },
            Some((fetched.body, fetched.truncated)),
        ),
        // The status arrived, then the body broke off: the answer still counts.
        Err(err) if err.status.is_some() => (
            Sent {
                status: err.status,
                error: None,
                no_retry: None,
                latency: err.latency,
            },
            None,
        ),
        Err(err) => (
            Sent {
                status: None,
                no_retry: super::resolve::no_retry_of(&err.error),
                error: Some((err.class(), describe_error(err.error))),
                latency: err.latency,
            },
            None,
        ),
    }
}

pub(super) fn describe_error(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match errors::render_causes(&err.without_url()) {
        causes if causes.is_empty() => kind.to_string(),
        causes => format!("{kind}: {causes}"),
    }
}
