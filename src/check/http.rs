//! `http`: one request; status, headers, body, JSON and latency expectations;
//! captures from the JSON body for later steps.
//!
//! Response bodies are read up to [`BODY_CAP`] and no further, so a huge or
//! endless response costs bounded memory; the cap is recorded.

use std::collections::BTreeMap;

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::expect::capture::{capture_all, CaptureInput, CaptureSpec};
use super::expect::{
    literal_regex_problem, template_refused, Actual, Expected, JsonExpect, Operand, StatusExpect,
};
use super::json::JsonTemplate;
use super::resolve::ResolverAddr;
use super::support::plain_url::PlainUrl;
use super::support::{errors, h1, http, latency};
use super::{Failure, FailureClass, Observation, ProbeContext};
use crate::core::duration::HumanDuration;
use crate::core::template::{Scope, Template};

/// The most of a response body that is read, kept and checked.
pub const BODY_CAP: usize = http::BODY_CAP;

/// `check = "http"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// The HTTP method (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// The URL to request; may hold placeholders.
    pub url: Template,
    /// Request headers; values may hold placeholders (`Bearer {{secret:TOKEN}}`).
    /// A table in TOML, kept sorted by name in a vector sized to fit: a
    /// one-entry `BTreeMap` allocates a node of about 1 KB, and a sweep holds
    /// one per check.
    #[serde(default, deserialize_with = "sorted_headers")]
    #[schemars(with = "BTreeMap<String, Template>")]
    pub headers: Vec<(String, Template)>,
    /// A text body.
    #[serde(default)]
    pub body: Option<Template>,
    /// A JSON body, written as a TOML table; strings may hold placeholders.
    #[serde(default)]
    pub json: Option<JsonTemplate>,
    /// TLS certificate verification; turning it off is recorded in evidence.
    #[serde(default = "default_true")]
    pub verify_tls: bool,
    /// What the response must hold (default: any 2xx status).
    #[serde(default)]
    pub expect: HttpExpect,
    /// Values for later steps as `{{steps.<id>.<name>}}`: `name = "json.path"`
    /// or `name = { header = "location" }` (see `expect::capture`).
    #[serde(default)]
    pub capture: BTreeMap<String, CaptureSpec>,
}

/// Request headers read as a table, sorted by name (as the map was),
/// straight into a vector: a map would allocate a node of about 1 KB for
/// each check's one or two headers, twice per check in a streamed sweep.
fn sorted_headers<'de, D>(deserializer: D) -> Result<Vec<(String, Template)>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Headers;
    impl<'de> serde::de::Visitor<'de> for Headers {
        type Value = Vec<(String, Template)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // What a map says, so the messages stay as they were.
            f.write_str("a map")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut headers = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
            while let Some(entry) = map.next_entry::<String, Template>()? {
                headers.push(entry);
            }
            // Names are unique: TOML refuses a repeated key (and checks are
            // read from TOML only).
            headers.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Ok(headers)
        }
    }
    deserializer.deserialize_map(Headers)
}

fn default_method() -> String {
    "GET".to_string()
}

fn default_true() -> bool {
    true
}

/// `expect` for `http`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// One status, a list, or a predicate table (default: any 2xx).
    #[serde(default)]
    pub status: Option<StatusExpect>,
    /// Text the body must contain (templates allowed).
    #[serde(default)]
    pub body_contains: Option<Template>,
    /// A regex the body must match (templates allowed).
    #[serde(default)]
    pub body_regex: Option<Template>,
    /// JSON path → expected value or predicate table.
    #[serde(default)]
    pub json: JsonExpect,
    /// JSON paths that must exist.
    #[serde(default)]
    pub json_exists: Vec<String>,
    /// Header name → expected value or predicate table.
    #[serde(default)]
    pub headers: BTreeMap<String, Expected>,
    /// Header names that must be present.
    #[serde(default)]
    pub headers_present: Vec<String>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

/// A value or a list of values: `status = 200` or `status = [200, 202]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// Every value, one or many.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

impl<T: PartialEq> OneOrMany<T> {
    /// Whether `value` is the one or among the many.
    pub fn contains(&self, value: &T) -> bool {
        match self {
            OneOrMany::One(one) => one == value,
            OneOrMany::Many(many) => many.contains(value),
        }
    }
}

impl HttpCheck {
    /// The check that `method` (when written), `url`, `headers` (sorted by
    /// name) and `expect` describe, every other key at the default its
    /// deserialization gives: for readers that take plain sections without
    /// toml's tree (`runbook::load::plain_http`).
    pub fn plain(
        method: Option<String>,
        url: Template,
        headers: Vec<(String, Template)>,
        expect: HttpExpect,
    ) -> Self {
        HttpCheck {
            resolver: None,
            method: method.unwrap_or_else(default_method),
            url,
            headers,
            body: None,
            json: None,
            verify_tls: default_true(),
            expect,
            capture: BTreeMap::new(),
        }
    }

    /// Its templates that hold placeholders, in the order the general path
    /// collects them as it reads a check (`expect`'s `body_contains`,
    /// `headers` by name, then `url`), for a check made by [`HttpCheck::plain`]:
    /// validated where they are (`RawStep::templates_in_spec`).
    pub(crate) fn placeholder_templates(&self) -> impl Iterator<Item = &Template> {
        self.expect
            .body_contains
            .iter()
            .chain(self.headers.iter().map(|(_, template)| template))
            .chain(std::iter::once(&self.url))
            .filter(|template| template.references().next().is_some())
    }

    pub(super) fn target(&self) -> String {
        // Built by hand: `format!` costs more than the two copies (once per
        // attempt of every check of a sweep).
        let url = self.url.raw();
        let mut target = String::with_capacity(self.method.len() + 1 + url.len());
        target.push_str(&self.method);
        target.push(' ');
        target.push_str(url);
        target
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        if reqwest::Method::from_bytes(self.method.as_bytes()).is_err()
            || !self.method.chars().all(|c| c.is_ascii_uppercase())
        {
            problems.push((
                format!(
                    "invalid HTTP method `{}`: use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS",
                    self.method
                ),
                self.url.span(),
            ));
        }
        if let Some(problem) = literal_url_problem(&self.url) {
            problems.push((problem, self.url.span()));
        }
        if self.body.is_some() && self.json.is_some() {
            problems.push((
                "give either `body` or `json`, not both".into(),
                self.url.span(),
            ));
        }
        for (key, texts) in [
            ("expect.json_exists", &self.expect.json_exists),
            ("expect.headers_present", &self.expect.headers_present),
        ] {
            problems.extend(
                texts
                    .iter()
                    .filter_map(|text| template_refused(key, text))
                    .map(|problem| (problem, self.url.span())),
            );
        }
        if let Some(pattern) = &self.expect.body_regex {
            if let Some(problem) = literal_regex_problem("expect.body_regex", pattern) {
                problems.push((problem, pattern.span()));
            }
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        match self.attempt(ctx).await {
            Ok(observation) | Err(observation) => observation,
        }
    }

    async fn attempt(&self, ctx: &ProbeContext<'_>) -> Result<Observation, Observation> {
        // A URL without placeholders is read as written: no rendered copy.
        let rendered;
        let url_text = if self.url.references().next().is_none() {
            self.url.raw()
        } else {
            rendered = ctx.render(&self.url)?;
            rendered.as_str()
        };
        // The plain shape is taken apart without `url`'s parse (see
        // `plain_url`); any other URL is parsed, and refused when invalid.
        let invalid = |err: url::ParseError| {
            Observation::fail_permanent(
                FailureClass::Config,
                format!("invalid URL `{}`: {err}", self.url.raw()),
                "the URL will not become valid by waiting",
            )
        };
        let target = match PlainUrl::parse(url_text) {
            Some(plain) => Target::Plain(plain),
            None => Target::Parsed(reqwest::Url::parse(url_text).map_err(invalid)?),
        };
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            Observation::fail_permanent(
                FailureClass::Config,
                format!("invalid HTTP method `{}`", self.method),
                "invalid configuration",
            )
        })?;

        // Rendered once, for whichever client sends them.
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            headers.push((name.as_str(), ctx.render(value)?));
        }
        let mut body = None;
        if let Some(text) = &self.body {
            body = Some(Bytes::from(ctx.render(text)?));
        } else if let Some(json) = &self.json {
            let value = json.render(ctx.scope).map_err(|err| {
                Observation::fail_permanent(
                    FailureClass::Config,
                    err.to_string(),
                    "a missing value does not appear by waiting",
                )
            })?;
            headers.push(("content-type", "application/json".to_string()));
            body = Some(Bytes::from(value.to_string()));
        }

        let lean_body = body.clone().unwrap_or_default();
        let lean = match &target {
            Target::Plain(plain) => h1::LeanRequest::plain(&method, *plain, &headers, lean_body),
            Target::Parsed(url) => h1::LeanRequest::new(&method, url, &headers, lean_body),
        };
        let lean = lean.map(|request| {
            if self.reads_response_headers() {
                request
            } else {
                request.without_response_headers()
            }
        });
        let fetched = if let Some(lean) = lean {
            let resolver = ctx.clients.resolver(self.resolver);
            h1::fetch(&resolver, lean, BODY_CAP)
                .await
                .map_err(|err| lean_failure(&err, self.url.raw()))?
        } else {
            let mut request = ctx
                .clients
                .http(self.verify_tls, self.resolver)?
                .request(method, target.into_url(url_text).map_err(invalid)?);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            http::fetch(request, BODY_CAP)
                .await
                .map_err(|err| match err.status {
                    None => send_failure(&err.error, self.url.raw()),
                    Some(status) => Observation::fail(
                        err.class(),
                        format!(
                            "HTTP {status}, then the body broke off: {}",
                            describe_send_error(&err.error, self.url.raw())
                        ),
                    ),
                })?
        };
        let http::Fetched {
            status,
            headers,
            body,
            truncated,
            time_to_headers,
            latency,
        } = fetched;

        let mut observation = Observation::pass()
            .with_detail("method", self.method.clone())
            .with_detail("url", self.url.raw().to_string())
            .with_detail("status", status)
            .with_detail("latency_ms", millis(latency))
            .with_detail("time_to_headers_ms", millis(time_to_headers))
            .with_detail("body_bytes", body.len());
        if truncated {
            observation = observation.with_detail("body_cap_bytes", BODY_CAP);
        }
        if !self.verify_tls {
            observation = observation.with_detail(
                "tls_verification",
                "disabled by the runbook (verify_tls = false)",
            );
        }
        // Captures first: a secret one is registered with the redactor before
        // the body that holds it is stored or any record is written.
        // Parsed only when something reads it (a capture or a JSON
        // expectation): most checks look at the status and the text.
        let wants_json = !self.capture.is_empty()
            || !self.expect.json.is_empty()
            || !self.expect.json_exists.is_empty();
        let doc = if wants_json {
            serde_json::from_slice::<Value>(&body).ok()
        } else {
            None
        };
        let header_value = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap_or("<binary>").to_string())
        };
        let input = CaptureInput {
            text: &body,
            json: doc.as_ref(),
            header: Some(&header_value),
            status: Some(status),
            what: "the response body",
        };
        let capture_error =
            capture_all(&self.capture, &input, ctx.blobs, &mut observation.captures);
        if !body.is_empty() {
            match ctx.blobs.put("response.body", &body, truncated) {
                Ok(blob) => observation.blobs.push(blob),
                Err(err) => {
                    observation = observation.with_detail("blob_error", err.to_string());
                }
            }
        }

        let failures =
            self.unmet_expectations(status, &headers, &body, latency, doc.as_ref(), ctx.scope);
        if let Some(reason) = failures.first() {
            let reason = if failures.len() > 1 {
                format!(
                    "{reason} (and {} more: {})",
                    failures.len() - 1,
                    failures[1..].join("; ")
                )
            } else {
                reason.clone()
            };
            let rejected = matches!(status, 401 | 403) && !self.status_expected(status, ctx.scope);
            observation.outcome = super::Outcome::Fail(if rejected {
                Failure::permanent(
                    FailureClass::Auth,
                    reason,
                    format!("HTTP {status}: the server rejected the credentials; retrying will not change them"),
                )
            } else {
                Failure::new(FailureClass::Expectation, reason)
            });
            return Ok(observation);
        }

        if let Some(reason) = capture_error {
            observation.captures.clear();
            observation.outcome =
                super::Outcome::Fail(Failure::new(FailureClass::Expectation, reason));
            return Ok(observation);
        }
        if !self.capture.is_empty() {
            let names: Vec<Value> = self
                .capture
                .keys()
                .map(|k| Value::from(k.as_str()))
                .collect();
            observation = observation.with_detail("captured", names);
        }
        Ok(observation)
    }

    fn status_expected(&self, status: u16, scope: &dyn Scope) -> bool {
        match &self.expect.status {
            Some(expected) => expected.accepts(status, scope),
            None => (200..300).contains(&status),
        }
    }

    /// Whether an expectation or a capture looks at the response headers.
    fn reads_response_headers(&self) -> bool {
        !self.expect.headers.is_empty()
            || !self.expect.headers_present.is_empty()
            || self.capture.values().any(CaptureSpec::reads_header)
    }

    /// Every expectation the response does not meet, most important first.
    fn unmet_expectations(
        &self,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        latency: Duration,
        parsed_json: Option<&Value>,
        scope: &dyn Scope,
    ) -> Vec<String> {
        let expect = &self.expect;
        let mut failures = Vec::new();
        match &expect.status {
            Some(expected) => failures.extend(expected.unmet(status, scope)),
            None if !(200..300).contains(&status) => {
                failures.push(format!("HTTP {status}, want 2xx"))
            }
            None => {}
        }
        let text = String::from_utf8_lossy(body);
        if let Some(needle) = &expect.body_contains {
            match Operand::render("expect.body_contains", needle, scope) {
                Ok(needle) if text.contains(needle.value.as_str()) => {}
                Ok(needle) => failures.push(format!("body does not contain {:?}", needle.shown)),
                Err(err) => failures.push(err),
            }
        }
        if let Some(pattern) = &expect.body_regex {
            match Operand::regex("expect.body_regex", pattern, scope) {
                Ok((re, _)) if re.is_match(&text) => {}
                Ok((_, shown)) => failures.push(format!("body does not match /{shown}/")),
                Err(err) => failures.push(err),
            }
        }
        if !expect.json.is_empty() || !expect.json_exists.is_empty() {
            match parsed_json {
                None => failures.push("body is not JSON".to_string()),
                Some(doc) => {
                    failures.extend(expect.json.unmet("JSON", doc, scope));
                    for path in &expect.json_exists {
                        if super::json::lookup(doc, path).is_none() {
                            failures.push(format!("JSON `{path}` is missing"));
                        }
                    }
                }
            }
        }
        for name in &expect.headers_present {
            if !headers.contains_key(name.as_str()) {
                failures.push(format!("header `{name}` is missing"));
            }
        }
        for (name, wanted) in &expect.headers {
            let actual = headers
                .get(name.as_str())
                .map(|v| Value::String(v.to_str().unwrap_or("<binary>").to_string()));
            if let Err(message) =
                wanted.check(&format!("header {name}"), &Actual::owned(actual), scope)
            {
                failures.push(message);
            }
        }
        failures.extend(latency::exceeded(
            "the request",
            latency,
            expect.max_latency.as_ref(),
        ));
        failures
    }
}

/// Where a request goes: a plain URL taken apart, or any other parsed.
enum Target<'u> {
    Plain(PlainUrl<'u>),
    Parsed(reqwest::Url),
}

impl Target<'_> {
    /// The URL for reqwest (which a plain `https` URL, say, still takes):
    /// `text`, the plain URL's text, parsed only now.
    fn into_url(self, text: &str) -> Result<reqwest::Url, url::ParseError> {
        match self {
            Target::Plain(_) => reqwest::Url::parse(text),
            Target::Parsed(url) => Ok(url),
        }
    }
}

/// A load-time problem with a URL that has no placeholders.
fn literal_url_problem(url: &Template) -> Option<String> {
    if url.references().next().is_some() || PlainUrl::parse(url.raw()).is_some() {
        return None;
    }
    match reqwest::Url::parse(url.raw()) {
        Err(err) => Some(format!("invalid URL `{}`: {err}", url.raw())),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => Some(format!(
            "URL `{}` must start with http:// or https://",
            url.raw()
        )),
        Ok(_) => None,
    }
}

/// A failed request as the attempt's failure: permanent when the host name
/// does not exist (NXDOMAIN; the DNS failure class attaches here).
fn send_failure(err: &reqwest::Error, url_template: &str) -> Observation {
    super::resolve::request_failure(describe_send_error(err, url_template), err)
}

/// Why a request failed, in words, without the expanded URL (its query string
/// may carry a token; reqwest's own message would include it).
fn describe_send_error(err: &reqwest::Error, url_template: &str) -> String {
    // The causes only: reqwest's own text carries the expanded URL.
    let detail = errors::render_causes(err);
    let lower = detail.to_lowercase();
    let kind = if err.is_timeout() {
        "timed out"
    } else if lower.contains("connection refused") {
        "connection refused"
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        "DNS lookup failed"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "TLS handshake failed"
    } else if err.is_connect() {
        "could not connect"
    } else if lower.contains("connection closed") || lower.contains("reset") {
        "connection closed by the server"
    } else {
        "request failed"
    };
    let detail = redact_urls(&detail);
    if detail.is_empty() {
        format!("{kind}: {url_template}")
    } else {
        format!("{kind} ({url_template}): {detail}")
    }
}

/// A failed lean request as the attempt's failure, in the words and
/// classes [`send_failure`] gives reqwest's.
fn lean_failure(err: &h1::LeanFetchError, url_template: &str) -> Observation {
    let reason = describe_lean_error(&err.error, url_template);
    match (err.status, err.error.resolve_error()) {
        (Some(status), _) => Observation::fail(
            err.error.class(),
            format!("HTTP {status}, then the body broke off: {reason}"),
        ),
        (None, Some(resolve)) => resolve.failure(reason),
        (None, None) => Observation::fail(err.error.class(), reason),
    }
}

/// Why a lean request failed, in words, as [`describe_send_error`] puts it.
fn describe_lean_error(err: &h1::LeanError, url_template: &str) -> String {
    let kind = match err.class() {
        FailureClass::Timeout => "timed out",
        _ if err.resolve_error().is_some() => "DNS lookup failed",
        _ if err.is_refused() => "connection refused",
        _ if err.is_connect() => "could not connect",
        _ if err.is_closed() => "connection closed by the server",
        _ => "request failed",
    };
    let detail = redact_urls(&errors::render(err));
    format!("{kind} ({url_template}): {detail}")
}

/// Drops query strings from any URL-looking text in an error chain.
fn redact_urls(text: &str) -> String {
    text.split(' ')
        .map(|word| match (word.contains("://"), word.find('?')) {
            (true, Some(q)) => format!("{}?[query removed]", &word[..q]),
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_come_sorted_by_name_with_their_templates() {
        let check: HttpCheck = toml::from_str(
            r#"
url = "http://127.0.0.1/"
headers = { x-b = "2", Authorization = "Bearer {{secret:T}}", a = "1" }
"#,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = check
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.raw()))
            .collect();
        assert_eq!(
            got,
            [
                ("Authorization", "Bearer {{secret:T}}"),
                ("a", "1"),
                ("x-b", "2")
            ]
        );
        assert!(check.headers[0].1.uses_secret());
    }

    #[test]
    fn response_headers_are_kept_only_when_an_expectation_or_capture_reads_them() {
        let reads = |extra: &str| {
            toml::from_str::<HttpCheck>(&format!("url = \"http://127.0.0.1/\"\n{extra}\n"))
                .unwrap()
                .reads_response_headers()
        };
        assert!(!reads(""));
        assert!(!reads("expect = { status = 200, body_contains = \"ok\" }"));
        assert!(!reads("capture = { id = { json = \"$.id\" } }"));
        assert!(reads("expect = { headers = { x-id = \"7\" } }"));
        assert!(reads("expect = { headers_present = [\"etag\"] }"));
        assert!(reads("capture = { loc = { header = \"Location\" } }"));
    }

    #[test]
    fn headers_that_are_not_a_table_are_refused_as_a_map_would_be() {
        let error = toml::from_str::<HttpCheck>("url = \"http://a/\"\nheaders = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("invalid type: string \"x\", expected a map"),
            "{error}"
        );
    }
}
