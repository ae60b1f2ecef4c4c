//! Name resolution for every check kind: one hickory resolver per run — the
//! system configuration (/etc/resolv.conf and /etc/hosts) or a chosen DNS
//! server (`--resolver`, `RUNPROOF_RESOLVER`, a step's `resolver`) — used by
//! the HTTP clients and by every kind that opens its own connection.
//!
//! IP literals never reach the resolver.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use serde::{Deserialize, Deserializer};
use tokio::net::TcpStream;

/// The address of a DNS server to ask instead of the system's (`IP:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolverAddr(pub SocketAddr);

impl FromStr for ResolverAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.trim().parse::<SocketAddr>().map(ResolverAddr).map_err(|_| {
            format!("`{text}` is not a DNS server address: expected IP:port, e.g. 127.0.0.1:53 or [::1]:53")
        })
    }
}

impl fmt::Display for ResolverAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl schemars::JsonSchema for ResolverAddr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ResolverAddr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A DNS server to ask instead of the run's resolver: IP:port, e.g. 127.0.0.1:53 or [::1]:53.",
            "type": "string"
        })
    }
}

impl<'de> Deserialize<'de> for ResolverAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a name could not be resolved. Never carries anything but the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN): waiting does not create it.
    #[error("{name} does not exist (NXDOMAIN)")]
    NxDomain { name: String },
    /// The name exists but has no record of the type asked for.
    #[error("{name} has no {record_type} record")]
    NoRecords { name: String, record_type: String },
    /// Not a name a DNS query can carry.
    #[error("`{name}` is not a valid host name: {reason}")]
    InvalidName { name: String, reason: String },
    /// Any other failure (server unreachable, refused, timed out…).
    #[error("resolving {name} via {server} failed: {reason}")]
    Failed {
        name: String,
        server: String,
        reason: String,
    },
}

impl ResolveError {
    /// The failure class: a name that does not exist (or has no records of
    /// the asked type) is `dns`, and never retried; a malformed name is the
    /// runbook's problem (`config`); a resolver that does not answer is a
    /// `timeout`, which a retry may cure.
    pub fn class(&self) -> super::FailureClass {
        match self {
            ResolveError::NxDomain { .. } | ResolveError::NoRecords { .. } => {
                super::FailureClass::Dns
            }
            ResolveError::InvalidName { .. } => super::FailureClass::Config,
            ResolveError::Failed { .. } => super::FailureClass::Timeout,
        }
    }

    /// Why retrying cannot help, when it cannot: the name does not exist
    /// (NXDOMAIN — the typed DNS failure class attaches here), or is malformed.
    pub fn no_retry(&self) -> Option<&'static str> {
        match self {
            ResolveError::NxDomain { .. } => {
                Some("the name does not exist (NXDOMAIN); retrying cannot create it")
            }
            ResolveError::InvalidName { .. } => Some("the host name is malformed"),
            ResolveError::NoRecords { .. } | ResolveError::Failed { .. } => None,
        }
    }

    /// An attempt that failed for this reason: classed, and permanent when
    /// waiting cannot help.
    pub fn failure(&self, reason: String) -> super::Observation {
        match self.no_retry() {
            Some(why) => super::Observation::fail_permanent(self.class(), reason, why),
            None => super::Observation::fail(self.class(), reason),
        }
    }

    /// The resolver's error inside another error's source chain (reqwest
    /// wraps what [`Resolver`] returned to it).
    pub fn in_chain<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ResolveError> {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<ResolveError>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

/// One answer of a typed lookup, in presentation form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `A`, `AAAA`, `CNAME`, `MX`, `TXT`, `CAA`, …
    pub record_type: String,
    /// The record's data as text: an address, a name (without the final
    /// dot), `10 mail.example.com` for MX, the joined strings for TXT,
    /// `0 issue "letsencrypt.org"` for CAA.
    pub value: String,
}

/// A shared resolver (cheap to clone). Asks either the system's configured
/// servers (with /etc/hosts first) or exactly one chosen server over UDP,
/// falling back to TCP for truncated answers.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    /// Who answers, for reasons: `system` or the chosen `IP:port`.
    server: String,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("server", &self.server)
            .finish()
    }
}

impl Resolver {
    /// The system configuration: /etc/resolv.conf's servers, search list and
    /// options, with /etc/hosts consulted first (so `localhost` and local
    /// aliases keep working). Without a readable resolv.conf the resolver
    /// still answers from /etc/hosts, and every other name fails with a reason.
    pub fn system() -> Self {
        let (config, options) = match hickory_resolver::system_conf::read_system_conf() {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(
                    "cannot read the system DNS configuration: {err}; only /etc/hosts answers"
                );
                (
                    ResolverConfig::from_name_servers(Vec::new()),
                    ResolverOpts::default(),
                )
            }
        };
        let mut options = options;
        options.use_hosts_file = ResolveHosts::Always;
        Resolver::build(config, options, "the system resolver".to_string())
    }

    /// Exactly `server`, over UDP and TCP; /etc/hosts is not read, so every
    /// answer comes from that server.
    pub fn with_server(server: ResolverAddr) -> Self {
        let mut name_server = NameServerConfig::udp_and_tcp(server.0.ip());
        for connection in &mut name_server.connections {
            connection.port = server.0.port();
        }
        let config = ResolverConfig::from_name_servers(vec![name_server]);
        let mut options = ResolverOpts::default();
        options.use_hosts_file = ResolveHosts::Never;
        Resolver::build(config, options, server.to_string())
    }

    fn build(config: ResolverConfig, mut options: ResolverOpts, server: String) -> Self {
        // A check looks again on every attempt: an answer cached from the
        // previous attempt would hide the change the retry waits for.
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        // Give up within one attempt's timeout rather than hickory's 2×5 s.
        options.timeout = Duration::from_secs(3);
        options.attempts = 1;
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = options;
        let inner = builder
            .build()
            // Without TLS/DNSSEC features building cannot fail; keep a clear
            // message should that ever change.
            .expect("a plain UDP/TCP resolver always builds");
        Resolver { inner, server }
    }

    /// Who answers: `the system resolver` or the chosen `IP:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The addresses of `host` (IPv6 and IPv4). IP literals (also `[v6]`)
    /// are returned as they are, without a query.
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![ip]);
        }
        check_name(host)?;
        match self.inner.lookup_ip(host).await {
            Ok(lookup) => {
                let addrs: Vec<IpAddr> = lookup.iter().collect();
                if addrs.is_empty() {
                    Err(ResolveError::NoRecords {
                        name: host.to_string(),
                        record_type: "A or AAAA".to_string(),
                    })
                } else {
                    Ok(addrs)
                }
            }
            Err(err) => Err(self.error(host, "A or AAAA", &err)),
        }
    }

    /// The answers of type `record_type` for `name` (CNAME chains followed:
    /// only records of the asked type are returned, except for CNAME itself).
    pub async fn lookup(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<Answer>, ResolveError> {
        check_name(name)?;
        match self.inner.lookup(name, record_type).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter(|record| record.record_type() == record_type)
                .map(|record| Answer {
                    record_type: record.record_type().to_string(),
                    value: present(&record.data),
                })
                .collect()),
            Err(err) => Err(self.error(name, &record_type.to_string(), &err)),
        }
    }

    /// Resolves `host` and connects to the first of its addresses that
    /// accepts, in the resolver's order.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let addrs = self.lookup_ip(host).await.map_err(ConnectError::Resolve)?;
        let mut last = None;
        for ip in addrs {
            match TcpStream::connect(SocketAddr::new(ip, port)).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last = Some(err),
            }
        }
        Err(ConnectError::Io(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address to connect to")
        })))
    }

    fn error(&self, name: &str, record_type: &str, err: &NetError) -> ResolveError {
        // NXDOMAIN: the one answer that says the name itself is missing. The
        // typed failure class for DNS attaches here.
        if err.is_nx_domain() {
            return ResolveError::NxDomain {
                name: name.to_string(),
            };
        }
        if err.is_no_records_found() {
            return ResolveError::NoRecords {
                name: name.to_string(),
                record_type: record_type.to_string(),
            };
        }
        ResolveError::Failed {
            name: name.to_string(),
            server: self.server.clone(),
            reason: err.to_string(),
        }
    }
}

/// Why retrying a failed HTTP request cannot help, when its host name does
/// not exist (NXDOMAIN) or is malformed.
pub(super) fn no_retry_of(err: &reqwest::Error) -> Option<&'static str> {
    ResolveError::in_chain(err).and_then(ResolveError::no_retry)
}

/// `reason` as a failed HTTP attempt: permanent when `err` comes from a host
/// name that does not exist (NXDOMAIN; the DNS failure class attaches here).
pub(super) fn request_failure(reason: String, err: &reqwest::Error) -> super::Observation {
    match ResolveError::in_chain(err) {
        Some(resolve) => resolve.failure(reason),
        None => super::Observation::fail(super::support::classify::reqwest(err), reason),
    }
}

/// Why [`Resolver::connect_tcp`] failed: the name, or the connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Resolve(ResolveError),
    #[error(transparent)]
    Io(std::io::Error),
}

/// reqwest asks here for every host name (it connects to IP literals itself).
impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let addrs = resolver.lookup_ip(name.as_str()).await?;
            // Port 0: reqwest puts the URL's port in.
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Refuses what no DNS query can carry (empty labels, labels over 63 bytes…),
/// before anything is sent.
fn check_name(name: &str) -> Result<(), ResolveError> {
    match hickory_resolver::proto::rr::Name::from_utf8(name) {
        Ok(_) if !name.is_empty() => Ok(()),
        Ok(_) => Err(ResolveError::InvalidName {
            name: name.to_string(),
            reason: "the name is empty".to_string(),
        }),
        Err(err) => Err(ResolveError::InvalidName {
            name: name.to_string(),
            reason: err.to_string(),
        }),
    }
}

/// `host` as an IP address, if it is one (`[::1]` included).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// A record's data in the form people write it, without trailing dots.
fn present(data: &RData) -> String {
    let trim = |name: String| name.trim_end_matches('.').to_string();
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(aaaa) => aaaa.0.to_string(),
        RData::CNAME(cname) => trim(cname.0.to_string()),
        RData::MX(mx) => format!("{} {}", mx.preference, trim(mx.exchange.to_string())),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect(),
        RData::CAA(caa) => format!(
            "{} {} \"{}\"",
            u8::from(caa.issuer_critical) << 7 | caa.reserved_flags,
            caa.tag,
            String::from_utf8_lossy(&caa.value)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_addresses_parse_with_clear_errors() {
        assert_eq!(
            "127.0.0.1:5353".parse::<ResolverAddr>().unwrap().0,
            SocketAddr::from(([127, 0, 0, 1], 5353))
        );
        assert!("[::1]:53".parse::<ResolverAddr>().is_ok());
        let err = "8.8.8.8".parse::<ResolverAddr>().unwrap_err();
        assert!(err.contains("expected IP:port"), "{err}");
        assert!("dns.example:53".parse::<ResolverAddr>().is_err());
    }

    #[tokio::test]
    async fn malformed_names_fail_before_any_query() {
        let resolver = Resolver::with_server("127.0.0.1:9".parse().unwrap());
        let long = format!("{}.example", "x".repeat(64));
        for name in ["", long.as_str(), "a..b"] {
            let err = resolver.lookup_ip(name).await.unwrap_err();
            assert!(
                matches!(err, ResolveError::InvalidName { .. }),
                "{name:?}: {err}"
            );
            assert!(err.no_retry().is_some());
        }
    }

    #[test]
    fn ip_literals_bypass_resolution() {
        assert_eq!(ip_literal("127.0.0.1"), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("localhost"), None);
    }

    #[tokio::test]
    async fn ip_literals_never_reach_the_server() {
        // A server that does not exist: any query would fail.
        let resolver = Resolver::with_server("127.0.0.1:9".parse().unwrap());
        assert_eq!(
            resolver.lookup_ip("10.1.2.3").await.unwrap(),
            vec![IpAddr::from([10, 1, 2, 3])]
        );
    }
}
