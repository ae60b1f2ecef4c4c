//! `postgres`: a real Postgres wire connection from a DSN secret, `sslmode`
//! honoured over rustls, one check query over the simple query protocol, and
//! classified failure reasons (DNS, refused, TLS, 28P01, 3D000, Supavisor's
//! `Tenant or user not found`…).
//!
//! The simple protocol is deliberate: Supabase's transaction pooler (port
//! 6543) does not support prepared statements, which the extended protocol
//! would create.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::SimpleQueryMessage;

use super::expect::Operand;
use super::resolve::ResolverAddr;
use super::support::tls::{connector_config, VerifyMode};
use super::tls::{describe_connect_error, is_dns_failure};
use super::{scrub, support, FailureClass, Observation, ProbeContext};
use crate::core::duration::{format_duration, HumanDuration};
use crate::core::numeric::Numeric;
use crate::core::template::Template;

/// `check = "postgres"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// `postgres://user:pass@host:port/db?sslmode=require` or
    /// `host=… user=… password=… dbname=… sslmode=…`; usually a secret.
    pub dsn: Template,
    /// Overrides the DSN's `sslmode` (default: the DSN's, else `prefer`).
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    /// PEM CA file for `verify-ca`/`verify-full` (default: the DSN's
    /// `sslrootcert`, else the system store); relative to the runbook's folder.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The check query, sent with the simple query protocol.
    #[serde(default = "default_query")]
    pub query: Template,
    /// What the query's answer must hold.
    #[serde(default)]
    pub expect: PostgresExpect,
}

fn default_query() -> Template {
    Template::literal("select 1")
}

/// libpq's `sslmode` values (`allow` is treated as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// `expect` for `postgres`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresExpect {
    /// The first column of the first row, as text (templates allowed).
    #[serde(default)]
    pub value: Option<Template>,
    /// The number of rows returned.
    #[serde(default)]
    pub rows: Option<Numeric<usize>>,
    /// Lowest acceptable server version, e.g. `"15"` or `"15.4"`.
    #[serde(default)]
    pub server_version_min: Option<String>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
    /// `true`: the session must be encrypted; `false`: it must not be.
    #[serde(default)]
    pub tls: Option<bool>,
}

impl PostgresCheck {
    pub(super) fn target(&self) -> String {
        format!("postgres {}", self.dsn.raw())
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        if let Some(min) = &self.expect.server_version_min {
            if let Some(problem) = super::expect::template_refused("expect.server_version_min", min)
            {
                problems.push((problem, self.dsn.span()));
            } else if parse_version(min).is_none() {
                problems.push((
                    format!("`expect.server_version_min` `{min}` is not a version like \"15\" or \"15.4\""),
                    self.dsn.span(),
                ));
            }
        }
        let raw = self.dsn.raw();
        let literal_password = raw.contains("password=")
            || url::Url::parse(raw).is_ok_and(|url| url.password().is_some());
        if !self.dsn.uses_secret() && literal_password {
            problems.push((
                "the DSN holds a literal password: use `{{secret:NAME}}`".to_string(),
                self.dsn.span(),
            ));
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let dsn = match ctx.render(&self.dsn) {
            Ok(dsn) => dsn,
            Err(obs) => return obs,
        };
        let query = match ctx.render(&self.query) {
            Ok(query) => query,
            Err(obs) => return obs,
        };
        let split = split_tls_options(&dsn);
        let mut secrets = vec![dsn.clone(), split.dsn.clone()];
        let config = tokio_postgres::Config::from_str(&split.dsn);
        if let Ok(config) = &config {
            if let Some(password) = config.get_password() {
                let password = String::from_utf8_lossy(password).into_owned();
                secrets.push(
                    percent_encoding::utf8_percent_encode(
                        &password,
                        percent_encoding::NON_ALPHANUMERIC,
                    )
                    .to_string(),
                );
                secrets.push(password);
            }
        }
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let mut config = match config {
            Ok(config) => config,
            Err(err) => {
                return Observation::fail_permanent(
                    FailureClass::Config,
                    scrub(
                        &format!("the DSN is not valid: {}", support::errors::render(&err)),
                        &secrets,
                    ),
                    "the connection string does not change by waiting",
                )
            }
        };
        let mode = match self.sslmode {
            Some(mode) => mode,
            None => match split.sslmode.as_deref().map(|m| (m, SslMode::parse(m))) {
                None => SslMode::Prefer,
                Some((_, Some(mode))) => mode,
                Some((other, None)) => {
                    return Observation::fail_permanent(
                        FailureClass::Config,
                        format!("sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"),
                        "the connection string does not change by waiting",
                    )
                }
            },
        };
        // The runbook's `ca_file` is taken from the runbook's folder; a DSN's
        // `sslrootcert` from the working directory, as libpq does.
        let ca_file = self
            .ca_file
            .as_ref()
            .map(|f| ctx.path(f).to_string_lossy().into_owned())
            .or(split.sslrootcert.filter(|f| f != "system"));
        let verify = match mode {
            SslMode::Disable | SslMode::Prefer => VerifyMode::None,
            // libpq: `require` with a root certificate file behaves like `verify-ca`.
            SslMode::Require if ca_file.is_some() => VerifyMode::Chain,
            SslMode::Require => VerifyMode::None,
            SslMode::VerifyCa => VerifyMode::Chain,
            SslMode::VerifyFull => VerifyMode::Full,
        };
        let tls_config = match connector_config(verify, ca_file.as_deref()) {
            Ok(config) => config,
            Err(why) => {
                return Observation::fail_permanent(
                    FailureClass::Config,
                    why,
                    "the CA file does not change by waiting",
                )
            }
        };
        config.ssl_mode(match mode {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        });
        config.connect_timeout(ctx.timeout);
        if config.get_application_name().is_none() {
            config.application_name("runproof");
        }
        let endpoint = Endpoint::of(&config);
        let tls_used = Arc::new(AtomicBool::new(false));
        let connector = MakeRustls {
            config: tls_config,
            used: tls_used.clone(),
        };
        let describe = |obs: Observation| {
            obs.with_detail("host", endpoint.host.clone())
                .with_detail("port", endpoint.port)
                .with_detail("database", endpoint.database.clone())
                .with_detail("user", endpoint.user.clone())
                .with_detail("sslmode", mode.as_str())
        };

        let started = Instant::now();
        let connected = tokio::time::timeout(ctx.timeout, async {
            match named_host(&config) {
                // A host name: resolved by the run's resolver, and the
                // connection handed to the driver, which keeps the name for
                // TLS (SNI, verify-full).
                Some((host, port)) => {
                    let stream = super::tls::connect_tcp(&host, port, ctx, self.resolver)
                        .await
                        .map_err(Connect::Tcp)?;
                    let mut make = connector.clone();
                    let tls =
                        <MakeRustls as MakeTlsConnect<tokio::net::TcpStream>>::make_tls_connect(
                            &mut make, &host,
                        )
                        .map_err(|err| {
                            Connect::Tcp(Observation::fail_permanent(
                                FailureClass::Config,
                                format!("`{host}` cannot be a TLS server name: {err}"),
                                "the connection string does not change by waiting",
                            ))
                        })?;
                    let (client, connection) = config
                        .connect_raw(stream, tls)
                        .await
                        .map_err(Connect::Driver)?;
                    Ok((client, tokio::spawn(connection)))
                }
                // IP addresses, several hosts, Unix sockets: the driver connects.
                None => {
                    let (client, connection) =
                        config.connect(connector).await.map_err(Connect::Driver)?;
                    Ok((client, tokio::spawn(connection)))
                }
            }
        })
        .await;
        let (client, driver) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(Connect::Driver(err))) => {
                return describe(classify(&err, &endpoint, mode, &secrets))
            }
            Ok(Err(Connect::Tcp(obs))) => return describe(scrub_outcome(obs, &secrets)),
            Err(_) => {
                return describe(Observation::fail(
                    FailureClass::Timeout,
                    format!(
                        "timed out connecting to {}:{} after {}",
                        endpoint.host,
                        endpoint.port,
                        format_duration(ctx.timeout)
                    ),
                ))
            }
        };
        let connect_latency = started.elapsed();
        let tls = tls_used.load(Ordering::SeqCst);
        // The connection (`driver`) does the I/O; it ends when the client is dropped.
        let remaining = ctx
            .timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let queried = tokio::time::timeout(remaining, async {
            let version = client.simple_query("show server_version").await?;
            let result = client.simple_query(&query).await?;
            Ok::<_, tokio_postgres::Error>((version, result))
        })
        .await;
        let latency = started.elapsed();
        drop(client);
        let _ = driver.await;
        let base = |obs: Observation| {
            describe(obs)
                .with_detail("tls", tls)
                .with_detail("connect_ms", connect_latency.as_millis() as u64)
                .with_detail("latency_ms", latency.as_millis() as u64)
        };
        let (version, result) = match queried {
            Ok(Ok(pair)) => pair,
            Ok(Err(err)) => return base(classify(&err, &endpoint, mode, &secrets)),
            Err(_) => {
                return base(Observation::fail(
                    FailureClass::Timeout,
                    format!(
                        "query did not finish within {}",
                        format_duration(ctx.timeout)
                    ),
                ))
            }
        };
        let server_version = first_value(&version).unwrap_or_default();
        let rows = result
            .iter()
            .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
            .count();
        let value = first_value(&result);

        let mut failures = Vec::new();
        if let Some(expected) = &self.expect.value {
            match Operand::render("expect.value", expected, ctx.scope) {
                Ok(expected) if value.as_deref() == Some(expected.value.as_str()) => {}
                Ok(expected) => failures.push(format!(
                    "query returned {}, expected {:?}",
                    value
                        .as_deref()
                        .map_or("no value".to_string(), |v| format!("{:?}", shorten(v))),
                    expected.shown
                )),
                Err(err) => failures.push(err),
            }
        }
        if let Some(expected) = &self.expect.rows {
            match expected.render("expect.rows", ctx.scope) {
                Ok(expected) if rows == expected => {}
                Ok(expected) => {
                    failures.push(format!("query returned {rows} rows, expected {expected}"))
                }
                Err(why) => failures.push(why),
            }
        }
        if let Some(min) = &self.expect.server_version_min {
            match (parse_version(&server_version), parse_version(min)) {
                (Some(have), Some(need)) if have < need => failures.push(format!(
                    "server version {server_version} is older than {min}"
                )),
                (None, _) => failures.push(format!(
                    "server version `{server_version}` cannot be compared with {min}"
                )),
                _ => {}
            }
        }
        failures.extend(support::latency::exceeded(
            "connect and query",
            latency,
            self.expect.max_latency.as_ref(),
        ));
        match self.expect.tls {
            Some(true) if !tls => failures.push(format!(
                "session is not encrypted (sslmode={})",
                mode.as_str()
            )),
            Some(false) if tls => {
                failures.push("session is encrypted, expected plain text".to_string())
            }
            _ => {}
        }
        let obs = if failures.is_empty() {
            Observation::pass()
        } else {
            Observation::fail(
                FailureClass::Expectation,
                scrub(&failures.join("; "), &secrets),
            )
        };
        let mut obs = base(obs)
            .with_detail("server_version", server_version)
            .with_detail("rows", rows as u64);
        if let Some(value) = value {
            obs = obs.with_detail("value", scrub(&shorten(&value), &secrets));
        }
        obs
    }
}

/// Why connecting failed: the driver's error, or an attempt already described
/// (name lookup, TCP).
enum Connect {
    Driver(tokio_postgres::Error),
    Tcp(Observation),
}

/// The single TCP host and port of `config` when the host is a name (not an
/// address) and no `hostaddr` is given: the case this check resolves itself.
fn named_host(config: &tokio_postgres::Config) -> Option<(String, u16)> {
    let [tokio_postgres::config::Host::Tcp(host)] = config.get_hosts() else {
        return None;
    };
    if !config.get_hostaddrs().is_empty() || super::resolve::ip_literal(host).is_some() {
        return None;
    }
    let port = match config.get_ports() {
        [] => 5432,
        [port] => *port,
        _ => return None,
    };
    Some((host.clone(), port))
}

/// Where the check connects, for reasons and evidence (never the password).
struct Endpoint {
    host: String,
    port: u16,
    database: String,
    user: String,
}

impl Endpoint {
    fn of(config: &tokio_postgres::Config) -> Self {
        let host = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let user = config.get_user().unwrap_or("").to_string();
        Endpoint {
            host: if host.is_empty() {
                "localhost".to_string()
            } else {
                host
            },
            port: config.get_ports().first().copied().unwrap_or(5432),
            database: config.get_dbname().unwrap_or(&user).to_string(),
            user,
        }
    }
}

/// Turns a driver error into a classified, scrubbed observation.
fn classify(
    err: &tokio_postgres::Error,
    at: &Endpoint,
    mode: SslMode,
    secrets: &[&str],
) -> Observation {
    let class = support::classify::postgres(err);
    let permanent = |reason: String, why: &str| {
        Observation::fail_permanent(class, scrub(&reason, secrets), why)
    };
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        let message = db.message();
        let obs = match db.code() {
            c if *c == SqlState::INVALID_PASSWORD => permanent(
                format!("authentication failed for user {} (28P01): {message}", at.user),
                "the password is wrong; waiting will not change it",
            ),
            c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => permanent(
                format!("login rejected for user {} (28000): {message}", at.user),
                "the server refuses this user or client",
            ),
            c if *c == SqlState::INVALID_CATALOG_NAME => permanent(
                format!("database {} does not exist (3D000)", at.database),
                "the database name is wrong or it was never created",
            ),
            c if *c == SqlState::INTERNAL_ERROR && message.contains("Tenant or user not found") => permanent(
                format!(
                    "pooler answered `Tenant or user not found` (XX000): through the Supabase pooler the user must be \
                     `postgres.<project-ref>` (got `{}`) and the host must be the project's pooler",
                    at.user
                ),
                "the pooler does not know this user; fix the connection string",
            ),
            c if *c == SqlState::SYNTAX_ERROR => permanent(
                format!("query error ({code}): {message}"),
                "the query is invalid",
            ),
            c if *c == SqlState::CANNOT_CONNECT_NOW => Observation::fail(
                class,
                format!("server is not accepting connections yet ({code}): {message}"),
            ),
            _ => Observation::fail(class, format!("server error ({code}): {message}")),
        };
        return scrub_outcome(obs.with_detail("sqlstate", code), secrets);
    }
    let chain = support::errors::chain(err);
    let top = err.to_string();
    let reason = if let Some(io) = chain.iter().find_map(|e| e.downcast_ref::<io::Error>()) {
        if let Some(tls) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            tls_reason(tls, at)
        } else if top.contains("TLS") {
            format!("TLS handshake with {}:{} failed: {io}", at.host, at.port)
        } else {
            describe_connect_error(io, &at.host, at.port)
        }
    } else if let Some(tls) = chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
        tls_reason(tls, at)
    } else if chain
        .iter()
        .any(|e| e.to_string().contains("server does not support TLS"))
    {
        return permanent(
            format!(
                "TLS required (sslmode={}) but {}:{} does not offer it",
                mode.as_str(),
                at.host,
                at.port
            ),
            "the server's TLS setting does not change by waiting",
        );
    } else if top.starts_with("timeout") {
        format!("timed out connecting to {}:{}", at.host, at.port)
    } else if top.starts_with("authentication error") {
        return permanent(
            format!(
                "authentication failed for user {}: {}",
                at.user,
                support::errors::render(err)
            ),
            "the credentials are missing or unusable",
        );
    } else if is_dns_failure(&support::errors::render(err)) {
        format!("DNS lookup failed for {}", at.host)
    } else {
        format!(
            "connection to {}:{} failed: {}",
            at.host,
            at.port,
            support::errors::render(err)
        )
    };
    Observation::fail(class, scrub(&reason, secrets))
}

fn tls_reason(err: &rustls::Error, at: &Endpoint) -> String {
    format!(
        "{} ({}:{})",
        super::tls::describe_handshake_error(err, &at.host),
        at.host,
        at.port
    )
}

fn scrub_outcome(mut obs: Observation, secrets: &[&str]) -> Observation {
    if let super::Outcome::Fail(failure) = &mut obs.outcome {
        failure.message = scrub(&failure.message, secrets);
    }
    obs
}

fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
        _ => None,
    })
}

fn shorten(text: &str) -> String {
    crate::core::cut::cut(text, 200)
}

/// `"16.4 (Debian 16.4-1)"` → `[16, 4]`; compares as a version.
fn parse_version(text: &str) -> Option<Vec<u64>> {
    let numeric: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Option<Vec<u64>> = numeric
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect();
    parts.filter(|p| !p.is_empty())
}

/// A DSN with the TLS options the driver does not understand taken out.
#[derive(Debug, PartialEq, Eq)]
struct SplitDsn {
    dsn: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL or key=value DSN: the
/// driver only knows disable/prefer/require, and certificate checks are ours.
fn split_tls_options(dsn: &str) -> SplitDsn {
    let mut out = SplitDsn {
        dsn: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let trimmed = dsn.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let (base, query) = match trimmed.split_once('?') {
            Some((base, query)) => (base, query),
            None => (trimmed, ""),
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned();
            match key {
                "sslmode" => out.sslmode = Some(value),
                "sslrootcert" => out.sslrootcert = Some(value),
                _ => kept.push(pair),
            }
        }
        out.dsn = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return out;
    }
    // key=value form: copy every pair verbatim except the two we handle.
    let bytes = dsn.as_bytes();
    let mut i = 0;
    let mut kept = String::new();
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &dsn[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                let ch = dsn[i..].chars().next().unwrap_or(' ');
                value.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                let ch = dsn[i..].chars().next().unwrap_or(' ');
                value.push(ch);
                i += ch.len_utf8();
            }
        }
        let end = i.min(bytes.len());
        match key {
            "" => {}
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => {
                if !kept.is_empty() {
                    kept.push(' ');
                }
                kept.push_str(&dsn[start..end]);
            }
        }
    }
    out.dsn = kept;
    out
}

/// tokio-postgres's TLS hook over tokio-rustls, noting whether TLS was used.
#[derive(Clone)]
struct MakeRustls {
    config: Arc<ClientConfig>,
    used: Arc<AtomicBool>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name: ServerName::try_from(domain.to_string())?,
            used: self.used.clone(),
        })
    }
}

struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    used: Arc<AtomicBool>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            self.used.store(true, Ordering::SeqCst);
            Ok(RustlsStream(tls))
        })
    }
}

struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // No SCRAM channel binding: tokio-postgres then negotiates without it
        // (its default is `prefer`).
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_dsn_loses_only_tls_options() {
        let split = split_tls_options("postgres://u:p%40ss@h:6543/postgres?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=5");
        assert_eq!(
            split.dsn,
            "postgres://u:p%40ss@h:6543/postgres?connect_timeout=5"
        );
        assert_eq!(split.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(split.sslrootcert.as_deref(), Some("/ca.pem"));
    }

    #[test]
    fn key_value_dsn_keeps_quoted_values() {
        let split = split_tls_options("host=h password='a b\\'c' sslmode = require dbname=x");
        assert_eq!(split.dsn, "host=h password='a b\\'c' dbname=x");
        assert_eq!(split.sslmode.as_deref(), Some("require"));
    }

    #[test]
    fn literal_passwords_are_flagged() {
        let check = |dsn: &str| PostgresCheck {
            resolver: None,
            dsn: Template::parse(dsn).unwrap(),
            sslmode: None,
            ca_file: None,
            query: default_query(),
            expect: PostgresExpect::default(),
        };
        assert_eq!(check("postgres://u:pw@h/db").validate().len(), 1);
        assert_eq!(check("host=h password=pw").validate().len(), 1);
        assert!(check("{{secret:DATABASE_URL}}").validate().is_empty());
        assert!(check("postgres://u@h/db").validate().is_empty());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("9.6.1").unwrap() < parse_version("15").unwrap());
        assert!(
            parse_version("16.4 (Debian 16.4-1.pgdg120+1)").unwrap()
                >= parse_version("16.4").unwrap()
        );
        assert!(parse_version("beta").is_none());
    }
}
