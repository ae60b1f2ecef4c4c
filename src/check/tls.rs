//! `tls`: a TLS handshake to host:port with SNI — chain validity, days left,
//! and the certificate's subject, issuer, SANs and expiry.
//!
//! The rustls client setup it shares with `postgres`, `redis` and the HTTP
//! clients lives in [`super::support::tls`]; the handshake reason texts live here.

use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::CertificateError;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use super::resolve::{ConnectError, ResolveError, ResolverAddr};
use super::support::tls::{client_config, Verifier, VerifyMode};
use super::support::{self, classify};
use super::{FailureClass, Observation, ProbeContext};
use crate::core::duration::{format_duration, HumanDuration};
use crate::core::numeric::Numeric;
use crate::core::template::Template;

/// `check = "tls"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// Host to connect to (a name or an address).
    pub host: Template,
    /// The port (default 443): a number, or a template such as `"{{port}}"`.
    #[serde(default = "default_port")]
    pub port: Numeric<u16>,
    /// SNI and the name the certificate must be valid for (default: `host`).
    #[serde(default)]
    pub server_name: Option<Template>,
    /// PEM file with the CA certificates to trust instead of the system store,
    /// relative to the runbook's folder.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// What the certificate must hold.
    #[serde(default)]
    pub expect: TlsExpect,
}

fn default_port() -> Numeric<u16> {
    Numeric::Literal(443)
}

fn default_true() -> bool {
    true
}

/// `expect` for `tls`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsExpect {
    /// The chain must verify and match the name (default true); `false` only
    /// records the certificate.
    #[serde(default = "default_true")]
    pub valid: bool,
    /// Fail when the certificate expires sooner than this many days.
    #[serde(default)]
    pub min_days_left: Option<Numeric<u32>>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

impl Default for TlsExpect {
    fn default() -> Self {
        TlsExpect {
            valid: true,
            min_days_left: None,
            max_latency: None,
        }
    }
}

impl TlsCheck {
    pub(super) fn target(&self) -> String {
        match &self.server_name {
            Some(name) => format!("{}:{} (SNI {})", self.host.raw(), self.port, name.raw()),
            None => format!("{}:{}", self.host.raw(), self.port),
        }
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        if self.host.raw().contains("://") {
            problems.push((
                "`host` is a host name or address, not a URL (put the port in `port`)".to_string(),
                self.host.span(),
            ));
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let port = match render_port(&self.port, ctx) {
            Ok(port) => port,
            Err(obs) => return obs,
        };
        let host = match ctx.render(&self.host) {
            Ok(host) => host,
            Err(obs) => return obs,
        };
        let name = match &self.server_name {
            Some(name) => match ctx.render(name) {
                Ok(name) => name,
                Err(obs) => return obs,
            },
            None => host.clone(),
        };
        let server_name = match ServerName::try_from(name.clone()) {
            Ok(server_name) => server_name,
            Err(_) => {
                return Observation::fail_permanent(
                    FailureClass::Config,
                    format!("`{name}` is not a valid TLS server name"),
                    "the runbook's server name does not change by waiting",
                )
            }
        };
        let ca_file = self
            .ca_file
            .as_ref()
            .map(|f| ctx.path(f).to_string_lossy().into_owned());
        let verifier = match Verifier::new(VerifyMode::Full, ca_file.as_deref(), true) {
            Ok(verifier) => Arc::new(verifier),
            Err(why) => {
                return Observation::fail_permanent(
                    FailureClass::Config,
                    why,
                    "the CA file does not change by waiting",
                )
            }
        };
        let config = client_config(verifier.clone());
        let started = Instant::now();
        let stream = match connect_tcp(&host, port, ctx, self.resolver).await {
            Ok(stream) => stream,
            Err(obs) => return obs,
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let handshake =
            tokio::time::timeout(ctx.timeout, connector.connect(server_name, stream)).await;
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                return Observation::fail(
                    classify::io(&err),
                    format!("TLS handshake with {host}:{} failed: {err}", port),
                )
            }
            Err(_) => {
                return Observation::fail(
                    FailureClass::Timeout,
                    format!(
                        "TLS handshake with {host}:{} timed out after {}",
                        port,
                        format_duration(ctx.timeout)
                    ),
                )
            }
        };
        let latency = started.elapsed();
        let (_, session) = tls.get_ref();
        let protocol = session
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        let Some(leaf) = session.peer_certificates().and_then(|certs| certs.first()) else {
            return Observation::fail(
                FailureClass::Tls,
                format!("{host}:{} sent no certificate", port),
            );
        };
        let facts = match CertFacts::parse(leaf) {
            Ok(facts) => facts,
            Err(why) => {
                return Observation::fail(
                    FailureClass::Tls,
                    format!("cannot parse the certificate of {host}:{}: {why}", port),
                )
            }
        };
        let now = jiff::Timestamp::now().as_second();
        let days_left = (facts.not_after - now).div_euclid(86_400);
        let mut failures = Vec::new();
        // An invalid certificate makes the attempt `tls`; the other
        // expectations (days left, latency) are `expectation`.
        let mut class = FailureClass::Expectation;
        if self.expect.valid {
            if let Some(err) = verifier.take_error() {
                class = classify::rustls(&err);
                failures.push(describe_cert_error(&err, &name, &facts));
            }
        }
        let min_days_left = match &self.expect.min_days_left {
            Some(min) => match ctx.number("expect.min_days_left", min) {
                Ok(min) => Some(min),
                Err(obs) => return obs,
            },
            None => None,
        };
        if let Some(min) = min_days_left {
            if days_left < i64::from(min) && facts.not_after > now {
                failures.push(format!(
                    "certificate expires in {days_left} days ({}); at least {min} required",
                    facts.not_after_text()
                ));
            } else if facts.not_after <= now && !failures.iter().any(|f| f.contains("expired")) {
                failures.push(format!("certificate expired on {}", facts.not_after_text()));
            }
        }
        failures.extend(support::latency::exceeded(
            "the handshake",
            latency,
            self.expect.max_latency.as_ref(),
        ));
        let mut obs = if failures.is_empty() {
            Observation::pass()
        } else {
            Observation::fail(class, failures.join("; "))
        };
        obs = obs
            .with_detail("server_name", name)
            .with_detail("protocol", protocol)
            .with_detail("latency_ms", latency.as_millis() as u64)
            .with_detail("days_left", days_left)
            .with_detail("certificate", facts.to_json());
        obs
    }
}

/// Connects to host:port within the attempt's timeout, with readable reasons.
/// Names go through the run's resolver, or the step's own `resolver`.
pub(super) async fn connect_tcp(
    host: &str,
    port: u16,
    ctx: &ProbeContext<'_>,
    resolver: Option<ResolverAddr>,
) -> Result<TcpStream, Observation> {
    let resolver = ctx.clients.resolver(resolver);
    match tokio::time::timeout(ctx.timeout, resolver.connect_tcp(host, port)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(ConnectError::Resolve(err))) => Err(resolve_failure(&err)),
        Ok(Err(ConnectError::Io(err))) => Err(Observation::fail(
            classify::io(&err),
            describe_connect_error(&err, host, port),
        )),
        Err(_) => Err(Observation::fail(
            FailureClass::Timeout,
            format!(
                "timed out connecting to {host}:{port} after {}",
                format_duration(ctx.timeout)
            ),
        )),
    }
}

/// A failed name lookup as an attempt's failure. NXDOMAIN (and a malformed
/// name) is permanent: waiting does not create a name.
pub(super) fn resolve_failure(err: &ResolveError) -> Observation {
    let reason = format!("DNS lookup failed: {err}");
    err.failure(reason)
}

/// Turns a connect error into a reason that says which of DNS, refusal or
/// reachability failed.
pub(super) fn describe_connect_error(err: &std::io::Error, host: &str, port: u16) -> String {
    use std::io::ErrorKind;
    let text = err.to_string();
    match err.kind() {
        ErrorKind::ConnectionRefused => format!("connection refused by {host}:{port}"),
        ErrorKind::TimedOut => format!("timed out connecting to {host}:{port}"),
        _ if is_dns_failure(&text) => format!("DNS lookup failed for {host}: {text}"),
        _ => format!("cannot connect to {host}:{port}: {text}"),
    }
}

/// Whether an I/O error's text is the resolver's (getaddrinfo) rather than the socket's.
pub(super) fn is_dns_failure(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "lookup address",
        "name or service not known",
        "no address associated",
        "nodename nor servname",
        "temporary failure in name resolution",
        "name does not resolve",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Reason text for a certificate verification error.
pub(super) fn describe_cert_error(err: &rustls::Error, name: &str, facts: &CertFacts) -> String {
    match err {
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => {
            format!("certificate expired on {}", facts.not_after_text())
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "certificate is not valid for {name} (it names {})",
            if facts.sans.is_empty() {
                facts.subject.clone()
            } else {
                facts.sans.join(", ")
            }
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            format!("certificate chain is not trusted (issuer {})", facts.issuer)
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "certificate is not valid before {}",
            facts.not_before_text()
        ),
        other => format!("certificate invalid: {other}"),
    }
}

/// Reason text for a certificate error seen by a checked handshake (where
/// the certificate itself is not at hand), as used by `postgres` and `redis`.
pub(super) fn describe_handshake_error(err: &rustls::Error, name: &str) -> String {
    let rustls::Error::InvalidCertificate(cert) = err else {
        return format!("TLS handshake failed: {err}");
    };
    match cert {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet".to_string()
        }
        CertificateError::UnknownIssuer => {
            "certificate is not trusted (unknown issuer)".to_string()
        }
        CertificateError::NotValidForName => format!("certificate is not valid for {name}"),
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| unwrap_debug_name(p)).collect();
            format!(
                "certificate is not valid for {name} (it names {})",
                names.join(", ")
            )
        }
        other => format!("certificate invalid: {other:?}"),
    }
}

/// `DnsName("db.example")` → `db.example`: rustls reports presented names in
/// Debug form.
fn unwrap_debug_name(text: &str) -> String {
    match (text.find("(\""), text.rfind("\")")) {
        (Some(start), Some(end)) if start + 2 <= end => text[start + 2..end].to_string(),
        _ => text.to_string(),
    }
}

/// What evidence keeps about a certificate.
#[derive(Debug, Clone)]
pub(super) struct CertFacts {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

impl CertFacts {
    /// Parses a DER certificate.
    pub(super) fn parse(der: &CertificateDer<'_>) -> Result<Self, String> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) =
            x509_parser::parse_x509_certificate(der.as_ref()).map_err(|err| err.to_string())?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => sans.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => sans.push(ip_text(bytes)),
                    other => sans.push(other.to_string()),
                }
            }
        }
        Ok(CertFacts {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans,
            serial: cert.raw_serial_as_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    fn not_after_text(&self) -> String {
        timestamp_text(self.not_after)
    }

    fn not_before_text(&self) -> String {
        timestamp_text(self.not_before)
    }

    /// The facts as a JSON object for `detail`.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "subject": self.subject,
            "issuer": self.issuer,
            "sans": self.sans,
            "serial": self.serial,
            "not_before": self.not_before_text(),
            "not_after": self.not_after_text(),
        })
    }
}

fn timestamp_text(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|ts| ts.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).expect("4 bytes")).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes")).to_string(),
        _ => hex::encode(bytes),
    }
}

/// A `port` rendered and converted; a value that is not a port fails the
/// attempt for good (waiting does not change it).
pub(super) fn render_port(port: &Numeric<u16>, ctx: &ProbeContext<'_>) -> Result<u16, Observation> {
    match port.render("port", ctx.scope) {
        Ok(0) => Err(Observation::fail_permanent(
            FailureClass::Config,
            format!("`port = \"{port}\"` rendered to 0, which is not a valid port"),
            "the runbook or its vars must change",
        )),
        Ok(port) => Ok(port),
        Err(why) => Err(Observation::fail_permanent(
            FailureClass::Config,
            why,
            "the runbook or its vars must change",
        )),
    }
}
