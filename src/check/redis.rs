//! `redis`: `PING` → `PONG` on a `redis://` or `rediss://` URL, with the
//! password from a secret, and optional `INFO` field expectations.
//!
//! The few commands needed (AUTH, SELECT, PING, INFO) are spoken in RESP
//! directly: it keeps AUTH failures, refusals and TLS errors distinguishable
//! and shares the rustls setup of the other checks.

use std::collections::BTreeMap;
use std::time::Instant;

use rustls::pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::resolve::ResolverAddr;
use super::support::tls::{connector_config, rustls_error, VerifyMode};
use super::support::{classify, latency};
use super::tls::connect_tcp;
use super::{scrub, FailureClass, Observation, ProbeContext};
use crate::core::duration::{format_duration, HumanDuration};
use crate::core::template::Template;

/// `check = "redis"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
    pub url: Template,
    /// The password, when it is not in the URL.
    #[serde(default)]
    pub password: Option<Template>,
    /// PEM CA file for `rediss://` (default: the system store), relative to
    /// the runbook's folder.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Verify the server certificate for `rediss://` (default true).
    #[serde(default = "default_true")]
    pub verify_tls: bool,
    /// What the server must answer.
    #[serde(default)]
    pub expect: RedisExpect,
}

fn default_true() -> bool {
    true
}

/// `expect` for `redis`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisExpect {
    /// `INFO` field → expected value, e.g. `{ role = "master" }`.
    #[serde(default)]
    pub info: BTreeMap<String, String>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A parsed `redis://` URL.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    db: Option<u32>,
}

impl RedisCheck {
    pub(super) fn target(&self) -> String {
        format!("redis {}", self.url.raw())
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let raw = self.url.raw();
        if !raw.starts_with("{{") && !raw.starts_with("redis://") && !raw.starts_with("rediss://") {
            return vec![(
                "`url` must start with redis:// or rediss://".to_string(),
                self.url.span(),
            )];
        }
        Vec::new()
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let url = match ctx.render(&self.url) {
            Ok(url) => url,
            Err(obs) => return obs,
        };
        let explicit_password = match &self.password {
            Some(template) => match ctx.render(template) {
                Ok(password) => Some(password),
                Err(obs) => return obs,
            },
            None => None,
        };
        let mut target = match parse_url(&url) {
            Ok(target) => target,
            Err(why) => {
                return Observation::fail_permanent(
                    FailureClass::Config,
                    scrub(&why, &[url.as_str()]),
                    "the URL does not change by waiting",
                )
            }
        };
        if explicit_password.is_some() {
            target.password = explicit_password;
        }
        let mut owned_secrets = vec![url.clone()];
        if let Some(password) = &target.password {
            owned_secrets.push(password.clone());
        }
        let secrets: Vec<&str> = owned_secrets.iter().map(String::as_str).collect();
        let started = Instant::now();
        let conversation = tokio::time::timeout(ctx.timeout, self.converse(&target, ctx)).await;
        let latency = started.elapsed();
        let obs = match conversation {
            Ok(obs) => obs,
            Err(_) => Observation::fail(
                FailureClass::Timeout,
                format!(
                    "no answer from {}:{} within {}",
                    target.host,
                    target.port,
                    format_duration(ctx.timeout)
                ),
            ),
        };
        let slow = latency::exceeded(
            "the conversation (connect, AUTH, PING, INFO)",
            latency,
            self.expect.max_latency.as_ref(),
        );
        let mut obs = match (&obs.outcome, slow) {
            (super::Outcome::Pass, Some(slow)) => Observation {
                outcome: super::Outcome::Fail(super::Failure::new(FailureClass::Expectation, slow)),
                ..obs
            },
            _ => obs,
        };
        if let super::Outcome::Fail(failure) = &mut obs.outcome {
            failure.message = scrub(&failure.message, &secrets);
        }
        obs.with_detail("host", target.host.clone())
            .with_detail("port", target.port)
            .with_detail("tls", target.tls)
            .with_detail("latency_ms", latency.as_millis() as u64)
    }

    async fn converse(&self, target: &Target, ctx: &ProbeContext<'_>) -> Observation {
        let tcp = match connect_tcp(&target.host, target.port, ctx, self.resolver).await {
            Ok(tcp) => tcp,
            Err(obs) => return obs,
        };
        let stream: Box<dyn Io> = if target.tls {
            let mode = if self.verify_tls {
                VerifyMode::Full
            } else {
                VerifyMode::None
            };
            let ca_file = self
                .ca_file
                .as_ref()
                .map(|f| ctx.path(f).to_string_lossy().into_owned());
            let tls_config = match connector_config(mode, ca_file.as_deref()) {
                Ok(config) => config,
                Err(why) => {
                    return Observation::fail_permanent(
                        FailureClass::Config,
                        why,
                        "the CA file does not change by waiting",
                    )
                }
            };
            let Ok(name) = ServerName::try_from(target.host.clone()) else {
                return Observation::fail_permanent(
                    FailureClass::Config,
                    format!("`{}` is not a valid TLS server name", target.host),
                    "the URL does not change by waiting",
                );
            };
            let connector = tokio_rustls::TlsConnector::from(tls_config);
            match connector.connect(name, tcp).await {
                Ok(tls) => Box::new(tls),
                Err(err) => {
                    let reason = match rustls_error(&err) {
                        Some(tls) => super::tls::describe_handshake_error(tls, &target.host),
                        None => format!("TLS handshake failed: {err}"),
                    };
                    return Observation::fail(
                        classify::io(&err),
                        format!("{reason} ({}:{})", target.host, target.port),
                    );
                }
            }
        } else {
            Box::new(tcp)
        };
        let mut conn = Conn(BufReader::new(stream));

        if let Some(password) = &target.password {
            let mut args = vec!["AUTH"];
            if let Some(user) = &target.username {
                args.push(user);
            }
            args.push(password);
            match conn.call(&args).await {
                Ok(Reply::Simple(_)) => {}
                Ok(Reply::Error(err)) => {
                    return Observation::fail_permanent(
                        FailureClass::Auth,
                        format!("AUTH rejected: {err}"),
                        "the password is wrong; waiting will not change it",
                    )
                }
                Ok(other) => {
                    return Observation::fail(
                        FailureClass::Protocol,
                        format!("unexpected AUTH reply: {}", other.describe()),
                    )
                }
                Err(err) => {
                    return Observation::fail(
                        classify::io(&err),
                        format!("connection lost during AUTH: {err}"),
                    )
                }
            }
        }
        if let Some(db) = target.db {
            let db = db.to_string();
            match conn.call(&["SELECT", &db]).await {
                Ok(Reply::Simple(_)) => {}
                Ok(Reply::Error(err)) => {
                    return Observation::fail_permanent(
                        FailureClass::Config,
                        format!("SELECT {db} failed: {err}"),
                        "the database index is invalid",
                    )
                }
                Ok(other) => {
                    return Observation::fail(
                        FailureClass::Protocol,
                        format!("unexpected SELECT reply: {}", other.describe()),
                    )
                }
                Err(err) => {
                    return Observation::fail(
                        classify::io(&err),
                        format!("connection lost during SELECT: {err}"),
                    )
                }
            }
        }
        match conn.call(&["PING"]).await {
            Ok(Reply::Simple(pong)) if pong == "PONG" => {}
            Ok(Reply::Error(err)) if err.starts_with("NOAUTH") => {
                return Observation::fail_permanent(
                    FailureClass::Auth,
                    format!("server requires a password ({err})"),
                    "no password is configured for this check",
                )
            }
            Ok(Reply::Error(err)) => {
                return Observation::fail(FailureClass::Expectation, format!("PING failed: {err}"))
            }
            Ok(other) => {
                return Observation::fail(
                    FailureClass::Protocol,
                    format!("PING answered {}, expected PONG", other.describe()),
                )
            }
            Err(err) => {
                return Observation::fail(
                    classify::io(&err),
                    format!("connection lost during PING: {err}"),
                )
            }
        }
        let section = if self.expect.info.is_empty() {
            "server"
        } else {
            "everything"
        };
        let info = match conn.call(&["INFO", section]).await {
            Ok(Reply::Bulk(text)) => parse_info(&text),
            Ok(Reply::Error(err)) if !self.expect.info.is_empty() => {
                return Observation::fail(FailureClass::Expectation, format!("INFO failed: {err}"))
            }
            Err(err) if !self.expect.info.is_empty() => {
                return Observation::fail(
                    classify::io(&err),
                    format!("connection lost during INFO: {err}"),
                )
            }
            _ => BTreeMap::new(),
        };
        let mut failures = Vec::new();
        for (field, expected) in &self.expect.info {
            match info.get(field) {
                Some(value) if value == expected => {}
                Some(value) => {
                    failures.push(format!("INFO {field} is {value:?}, expected {expected:?}"))
                }
                None => failures.push(format!("INFO has no field {field}")),
            }
        }
        let obs = if failures.is_empty() {
            Observation::pass()
        } else {
            Observation::fail(FailureClass::Expectation, failures.join("; "))
        };
        let mut obs = obs;
        for field in ["redis_version", "role", "redis_mode"] {
            if let Some(value) = info.get(field) {
                obs = obs.with_detail(field, value.clone());
            }
        }
        for field in self.expect.info.keys() {
            if let Some(value) = info.get(field) {
                obs = obs.with_detail(&format!("info.{field}"), value.clone());
            }
        }
        obs
    }
}

fn parse_url(url: &str) -> Result<Target, String> {
    let parsed =
        url::Url::parse(url).map_err(|err| format!("the Redis URL is not valid: {err}"))?;
    let tls = match parsed.scheme() {
        "redis" => false,
        "rediss" => true,
        other => {
            return Err(format!(
                "the Redis URL scheme must be redis or rediss, not {other}"
            ))
        }
    };
    let host = parsed
        .host_str()
        .ok_or("the Redis URL has no host")?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let username = Some(decode(parsed.username())).filter(|u| !u.is_empty());
    let password = parsed.password().map(decode);
    let db = match parsed.path().trim_start_matches('/') {
        "" => None,
        n => Some(
            n.parse()
                .map_err(|_| format!("the Redis URL's database `{n}` is not a number"))?,
        ),
    };
    Ok(Target {
        tls,
        host,
        port: parsed.port().unwrap_or(6379),
        username,
        password,
        db,
    })
}

fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A RESP reply, as far as this check cares.
#[derive(Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Bulk(String),
    Nil,
    /// An integer or array reply: never what these commands should get.
    Other(String),
}

impl Reply {
    fn describe(&self) -> String {
        match self {
            Reply::Simple(text) => format!("+{text}"),
            Reply::Error(text) => format!("-{text}"),
            Reply::Bulk(text) => format!("a {}-byte string", text.len()),
            Reply::Nil => "nil".to_string(),
            Reply::Other(line) => crate::core::cut::cut(line, 80),
        }
    }
}

struct Conn(BufReader<Box<dyn Io>>);

impl Conn {
    async fn call(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg.as_bytes());
            frame.extend_from_slice(b"\r\n");
        }
        self.0.get_mut().write_all(&frame).await?;
        self.0.get_mut().flush().await?;
        self.read().await
    }

    async fn read(&mut self) -> std::io::Result<Reply> {
        // A line is read through a limit, so an endless one costs at most the cap.
        let mut raw = Vec::new();
        (&mut self.0)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut raw)
            .await?;
        if raw.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        if !raw.ends_with(b"\n") && raw.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a reply line ran past {MAX_LINE} bytes"),
            ));
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.len().min(1));
        let invalid = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a RESP reply: {line:.80}"),
            )
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" | "*" => Reply::Other(line.to_string()),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| invalid())?;
                if len < 0 {
                    Reply::Nil
                } else if len as u64 > MAX_BULK as u64 {
                    // Checked before allocating: a hostile length must not
                    // reserve memory (or abort on an impossible size).
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a bulk reply of {len} bytes is over the {MAX_BULK}-byte cap"),
                    ));
                } else {
                    let mut body = vec![0; len as usize + 2];
                    self.0.read_exact(&mut body).await?;
                    body.truncate(len as usize);
                    Reply::Bulk(String::from_utf8_lossy(&body).into_owned())
                }
            }
            _ => return Err(invalid()),
        })
    }
}

/// The longest reply line read (status, error, or length line).
const MAX_LINE: usize = 64 * 1024;
/// The largest bulk reply read (`INFO everything` is a few KiB).
const MAX_BULK: usize = 4 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_cut_inside_a_secret_shows_none_of_it() {
        let secret = "redis-canary-0123456789abcdef";
        let described = Reply::Other(format!("{}{secret} tail", "x".repeat(60))).describe();
        assert!(described.ends_with('…'), "{described}");
        assert_eq!(described.chars().count(), 80);
        let redactor =
            crate::evidence::redact::Redactor::new(&[("R".to_string(), secret.to_string())]);
        let shown = redactor.redact(&described);
        assert!(!shown.contains(&secret[..6]), "{shown}");
        assert!(shown.ends_with("[REDACTED:R]…"), "{shown}");
    }

    #[test]
    fn urls_carry_credentials_and_database() {
        let t = parse_url("rediss://default:p%40ss@cache.example:6380/2").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.db),
            ("cache.example", 6380, Some(2))
        );
        assert_eq!(t.username.as_deref(), Some("default"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        let t = parse_url("redis://127.0.0.1").unwrap();
        assert_eq!((t.port, t.db, t.password), (6379, None, None));
        assert!(parse_url("http://x").is_err());
    }
}
