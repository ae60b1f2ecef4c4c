//! `tls`: a TLS handshake to host:port with SNI — chain validity, days left,
//! and the certificate's subject, issuer, SANs and expiry.
//!
//! Also owns the rustls client setup (ring provider, roots from a CA file or
//! the system store, the `verify-ca`/`require` relaxations) that the
//! `postgres` and `redis` checks share.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use super::{Observation, ProbeContext};
use crate::core::duration::{format_duration, HumanDuration};
use crate::core::template::Template;

/// `check = "tls"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCheck {
    /// Host to connect to (a name or an address).
    pub host: Template,
    /// The port (default 443).
    #[serde(default = "default_port")]
    pub port: u16,
    /// SNI and the name the certificate must be valid for (default: `host`).
    #[serde(default)]
    pub server_name: Option<Template>,
    /// PEM file with the CA certificates to trust instead of the system store.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// What the certificate must hold.
    #[serde(default)]
    pub expect: TlsExpect,
}

fn default_port() -> u16 {
    443
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
    pub min_days_left: Option<u32>,
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
                return Observation::fail_permanent_unclassified(
                    format!("`{name}` is not a valid TLS server name"),
                    "the runbook's server name does not change by waiting",
                )
            }
        };
        let verifier = match Verifier::new(VerifyMode::Full, self.ca_file.as_deref(), true) {
            Ok(verifier) => Arc::new(verifier),
            Err(why) => {
                return Observation::fail_permanent_unclassified(
                    why,
                    "the CA file does not change by waiting",
                )
            }
        };
        let config = client_config(verifier.clone());
        let started = Instant::now();
        let stream = match connect_tcp(&host, self.port, ctx).await {
            Ok(stream) => stream,
            Err(obs) => return obs,
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let handshake =
            tokio::time::timeout(ctx.timeout, connector.connect(server_name, stream)).await;
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                return Observation::fail_unclassified(format!(
                    "TLS handshake with {host}:{} failed: {err}",
                    self.port
                ))
            }
            Err(_) => {
                return Observation::fail_unclassified(format!(
                    "TLS handshake with {host}:{} timed out after {}",
                    self.port,
                    format_duration(ctx.timeout)
                ))
            }
        };
        let latency = started.elapsed();
        let (_, session) = tls.get_ref();
        let protocol = session
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        let Some(leaf) = session.peer_certificates().and_then(|certs| certs.first()) else {
            return Observation::fail_unclassified(format!(
                "{host}:{} sent no certificate",
                self.port
            ));
        };
        let facts = match CertFacts::parse(leaf) {
            Ok(facts) => facts,
            Err(why) => {
                return Observation::fail_unclassified(format!(
                    "cannot parse the certificate of {host}:{}: {why}",
                    self.port
                ))
            }
        };
        let now = jiff::Timestamp::now().as_second();
        let days_left = (facts.not_after - now).div_euclid(86_400);
        let mut failures = Vec::new();
        if self.expect.valid {
            if let Some(err) = verifier.take_error() {
                failures.push(describe_cert_error(&err, &name, &facts));
            }
        }
        if let Some(min) = self.expect.min_days_left {
            if days_left < i64::from(min) && facts.not_after > now {
                failures.push(format!(
                    "certificate expires in {days_left} days ({}); at least {min} required",
                    facts.not_after_text()
                ));
            } else if facts.not_after <= now && !failures.iter().any(|f| f.contains("expired")) {
                failures.push(format!("certificate expired on {}", facts.not_after_text()));
            }
        }
        if let Some(max) = &self.expect.max_latency {
            if latency > max.0 {
                failures.push(format!(
                    "handshake took {}, more than {}",
                    format_duration(latency),
                    format_duration(max.0)
                ));
            }
        }
        let mut obs = if failures.is_empty() {
            Observation::pass()
        } else {
            Observation::fail_unclassified(failures.join("; "))
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
pub(super) async fn connect_tcp(
    host: &str,
    port: u16,
    ctx: &ProbeContext<'_>,
) -> Result<TcpStream, Observation> {
    match tokio::time::timeout(ctx.timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(Observation::fail_unclassified(describe_connect_error(
            &err, host, port,
        ))),
        Err(_) => Err(Observation::fail_unclassified(format!(
            "timed out connecting to {host}:{port} after {}",
            format_duration(ctx.timeout)
        ))),
    }
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

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VerifyMode {
    /// Encrypt only (libpq `require`): any certificate is accepted.
    None,
    /// The chain must lead to a trusted root; the name is not checked (`verify-ca`).
    Chain,
    /// Chain and name (`verify-full`, HTTPS rules).
    Full,
}

/// A certificate verifier that can relax the checks per [`VerifyMode`], or
/// (`record_only`) let the handshake finish and keep the verdict, so the `tls`
/// check can still report an expired certificate's facts.
#[derive(Debug)]
pub(super) struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    record_only: bool,
    seen: Mutex<Option<rustls::Error>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// Builds a verifier; the error is a readable reason (bad CA file, no roots).
    pub(super) fn new(
        mode: VerifyMode,
        ca_file: Option<&str>,
        record_only: bool,
    ) -> Result<Self, String> {
        let chain = match mode {
            VerifyMode::None => None,
            VerifyMode::Chain | VerifyMode::Full => {
                let roots = root_store(ca_file)?;
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|err| format!("cannot build the certificate verifier: {err}"))?;
                Some(verifier)
            }
        };
        Ok(Verifier {
            chain,
            check_name: mode == VerifyMode::Full,
            record_only,
            seen: Mutex::new(None),
            algorithms: provider().signature_verification_algorithms,
        })
    }

    /// The verification error seen during the handshake, if any (record-only mode).
    pub(super) fn take_error(&self) -> Option<rustls::Error> {
        self.seen.lock().ok().and_then(|mut seen| seen.take())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(err) if self.record_only => {
                if let Ok(mut seen) = self.seen.lock() {
                    *seen = Some(err);
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Signatures are always checked: without them "encrypted" would mean
        // nothing even in `require` mode.
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The ring provider, explicitly: reqwest's rustls uses ring too, and naming it
/// avoids depending on a process-wide default provider being installed.
pub(super) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A client config around `verifier` with safe protocol defaults.
pub(super) fn client_config(verifier: Arc<Verifier>) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

/// Trust anchors: the CA file when given, else the system store (loaded once).
fn root_store(ca_file: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|err| format!("cannot read CA file {path}: {err}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| format!("cannot parse CA file {path}: {err}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("CA file {path} holds no usable certificate"));
            }
        }
        None => {
            static SYSTEM: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
            let certs = SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs);
            roots.add_parsable_certificates(certs.iter().cloned());
            if roots.is_empty() {
                return Err(
                    "no trusted root certificates found on this system (set `ca_file`)".to_string(),
                );
            }
        }
    }
    Ok(roots)
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

/// Finds a rustls error inside an I/O error (how tokio-rustls reports them).
pub(super) fn rustls_error(err: &std::io::Error) -> Option<&rustls::Error> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
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
