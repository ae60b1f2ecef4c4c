//! The lean HTTP/1.1 path for plain `http://` requests: each request
//! written whole and its response read on the calling task
//! ([`super::h1_response`]), over the run's resolver, with one pool of idle
//! keep-alive connections per thread.
//!
//! Why not reqwest for these: a sweep check's request through reqwest costs
//! about twice its request through hyper alone (14–15 µs against 8–9 µs of
//! CPU on the benchmark machine): reqwest parses the URL again, runs each
//! request through its redirect and retry services and checks connections
//! out of a pool shared behind locks. Why not hyper's connection API either:
//! it drives each connection on a task of its own, so every request crosses
//! tasks twice (a channel to the connection, a oneshot back), and it builds
//! a header map for the request that is written out at once. https, HTTP/2
//! and proxies stay with reqwest ([`LeanRequest::new`] says which requests
//! may come here).

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::classify;
use super::h1_response::{Connection, Reading};
use super::http::Fetched;
use super::plain_url::PlainUrl;
use crate::check::resolve::{ConnectError, ResolveError, Resolver};
use crate::core::FailureClass;

/// How long a connection may sit idle in the pool before it is closed (as
/// the reqwest clients' `pool_idle_timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The most idle connections a thread keeps to one host: far above any
/// sweep's concurrency, a bound on file descriptors all the same.
const IDLE_PER_HOST: usize = 1024;

/// A request ready for the lean path, and where it goes.
pub struct LeanRequest<'a> {
    /// The host as the URL has it (`[::1]` for IPv6).
    host: &'a str,
    port: u16,
    /// The request line, headers and body, as they go on the wire.
    wire: Vec<u8>,
    /// How its response is read.
    reading: Reading,
    /// Whether the method may be sent again when a kept-alive connection
    /// turns out closed before any answer (RFC 9110, 9.2.2).
    idempotent: bool,
}

impl<'a> LeanRequest<'a> {
    /// The request, when the lean path takes it: a plain `http` URL, no
    /// proxy configured in the environment (reqwest honours `HTTP_PROXY` and
    /// `ALL_PROXY`; proxied requests stay with it), and headers that can go
    /// on the wire as they are. `None` sends the request through reqwest,
    /// which reports anything malformed in its own words.
    pub fn new(
        method: &http::Method,
        url: &'a url::Url,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Option<Self> {
        if url.scheme() != "http" {
            return None;
        }
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        Self::build(method, (host, port, url.port()), &target, headers, &body)
    }

    /// [`LeanRequest::new`] for a URL in the plain shape, read without the
    /// `url` crate's parse.
    pub fn plain(
        method: &http::Method,
        url: PlainUrl<'a>,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Option<Self> {
        if url.scheme != "http" {
            return None;
        }
        let at = (url.host, url.port_or_default(), url.port);
        Self::build(method, at, url.target, headers, &body)
    }

    /// The request to `target` (path and query) at `host`: `(host, port to
    /// connect to, port as the URL writes it)`. Written as hyper wrote it:
    /// header names in lower case, the step's headers first, then what
    /// reqwest's clients add when the step does not set them.
    fn build(
        method: &http::Method,
        (host, port, written_port): (&'a str, u16, Option<u16>),
        target: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Option<Self> {
        if proxy_configured() {
            return None;
        }
        // The target as hyper's URI type takes it: anything else is
        // reqwest's to refuse in its words.
        let target: http::uri::PathAndQuery = target.parse().ok()?;
        let has = |wanted: &str| {
            headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(wanted))
        };
        // A framing the step sets itself is reqwest's to honour.
        if has("content-length") || has("transfer-encoding") {
            return None;
        }
        let mut wire = Vec::with_capacity(
            128 + target.as_str().len()
                + headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 4)
                    .sum::<usize>()
                + body.len(),
        );
        wire.extend_from_slice(method.as_str().as_bytes());
        wire.push(b' ');
        wire.extend_from_slice(target.as_str().as_bytes());
        wire.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            if !is_token(name.as_bytes()) || !is_field_value(value.as_bytes()) {
                return None;
            }
            header_line(&mut wire, name, value.as_bytes());
        }
        if !has("host") {
            wire.extend_from_slice(b"host: ");
            wire.extend_from_slice(host.as_bytes());
            if let Some(port) = written_port {
                wire.push(b':');
                wire.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
            }
            wire.extend_from_slice(b"\r\n");
        }
        if !has("user-agent") {
            header_line(&mut wire, "user-agent", super::http::USER_AGENT.as_bytes());
        }
        if !has("accept") {
            header_line(&mut wire, "accept", b"*/*");
        }
        // As hyper frames a body of known length; an empty one gets no
        // header at all.
        if !body.is_empty() {
            header_line(
                &mut wire,
                "content-length",
                itoa::Buffer::new().format(body.len()).as_bytes(),
            );
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(body);
        Some(LeanRequest {
            host,
            port,
            wire,
            reading: Reading {
                head_only: *method == http::Method::HEAD,
                keep_headers: true,
            },
            idempotent: method.is_idempotent(),
        })
    }

    /// Leaves the response's headers out of the result when nothing reads
    /// them (no expectation or capture names one): building their map cost
    /// about 2,700 instructions a check.
    pub fn without_response_headers(mut self) -> Self {
        self.reading.keep_headers = false;
        self
    }
}

/// `name: value` and its line end, the name in lower case.
fn header_line(wire: &mut Vec<u8>, name: &str, value: &[u8]) {
    wire.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
    wire.extend_from_slice(b": ");
    wire.extend_from_slice(value);
    wire.extend_from_slice(b"\r\n");
}

/// A header name: one or more token characters (RFC 9110, 5.6.2).
fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value as the `http` crate takes it: no control character but
/// tab (so no line break can smuggle a header in).
fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// Whether any proxy variable reqwest reads for `http://` URLs is set.
fn proxy_configured() -> bool {
    static CONFIGURED: OnceLock<bool> = OnceLock::new();
    *CONFIGURED.get_or_init(|| {
        ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
    })
}

/// Why a lean request failed, by stage: each stage's error keeps its type,
/// so [`classify`] decides the class as it does for reqwest's causes.
#[derive(Debug)]
pub enum LeanError {
    /// The host name did not resolve.
    Resolve(ResolveError),
    /// No connection (refused, unreachable…).
    Connect(std::io::Error),
    /// The socket failed during the exchange (reset, broken pipe…).
    Io(std::io::Error),
    /// The server closed the connection before the response was complete:
    /// before its head, or `in_body`.
    Closed { in_body: bool },
    /// What the server sent is not an HTTP/1.1 response.
    Malformed(String),
}

impl fmt::Display for LeanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeanError::Resolve(_) => f.write_str("dns error"),
            LeanError::Connect(_) => f.write_str("tcp connect error"),
            LeanError::Io(_) => f.write_str("http error"),
            LeanError::Closed { in_body: false } => {
                f.write_str("http error: connection closed before message completed")
            }
            LeanError::Closed { in_body: true } => {
                f.write_str("http error: end of file before message completed")
            }
            LeanError::Malformed(what) => write!(f, "http error: {what}"),
        }
    }
}

impl StdError for LeanError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            LeanError::Resolve(err) => Some(err),
            LeanError::Connect(err) | LeanError::Io(err) => Some(err),
            LeanError::Closed { .. } | LeanError::Malformed(_) => None,
        }
    }
}

impl LeanError {
    /// The failure's class, from the stage and the error's types.
    pub fn class(&self) -> FailureClass {
        match self {
            LeanError::Resolve(err) => err.class(),
            LeanError::Connect(err) => match classify::io(err) {
                // A socket error of no telling kind while connecting is
                // still no connection.
                FailureClass::Io => FailureClass::Refused,
                class => class,
            },
            LeanError::Io(err) => classify::io(err),
            // As hyper's incomplete messages and parse errors are classed.
            LeanError::Closed { .. } | LeanError::Malformed(_) => FailureClass::Protocol,
        }
    }

    /// The resolver's error, when the name did not resolve.
    pub fn resolve_error(&self) -> Option<&ResolveError> {
        match self {
            LeanError::Resolve(err) => Some(err),
            _ => None,
        }
    }

    /// Whether the connection was refused.
    pub fn is_refused(&self) -> bool {
        matches!(self, LeanError::Connect(err) if err.kind() == std::io::ErrorKind::ConnectionRefused)
    }

    /// Whether no connection was made.
    pub fn is_connect(&self) -> bool {
        matches!(self, LeanError::Resolve(_) | LeanError::Connect(_))
    }

    /// Whether the peer closed the connection before the exchange was over.
    pub fn is_closed(&self) -> bool {
        matches!(self, LeanError::Closed { .. })
    }
}

/// Why a lean call failed: before a response, or while its body was read.
#[derive(Debug)]
pub struct LeanFetchError {
    /// The status, when the headers had arrived before the failure.
    pub status: Option<u16>,
    pub error: LeanError,
    /// From sending to the failure.
    pub latency: Duration,
}

/// An idle keep-alive connection.
struct Idle {
    connection: Connection,
    since: Instant,
}

/// This thread's idle connections, by resolver, host and port.
#[derive(Default)]
struct Pool {
    idle: foldhash::HashMap<String, Vec<Idle>>,
    /// Check-ins since the whole pool was last swept ([`SWEEP_EVERY`]).
    checkins: usize,
}

/// Every this many check-ins, every idle connection of the thread is looked
/// at, and those the server closed or that idled too long are dropped. No
/// task watches an idle connection (hyper's connection task did), so one
/// the server closed would otherwise keep its descriptor, half-closed, until
/// its host is asked again, which in a sweep of many hosts may be never.
const SWEEP_EVERY: usize = 1024;

thread_local! {
    /// This thread's idle connections. Per thread: no lock is taken per
    /// request.
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

impl Pool {
    /// Drops every idle connection that is closed or too old.
    fn sweep(&mut self) {
        self.idle.retain(|_, idle| {
            idle.retain(|entry| entry.usable());
            !idle.is_empty()
        });
    }
}

impl Idle {
    /// Whether the connection may serve another request.
    fn usable(&self) -> bool {
        self.since.elapsed() < IDLE_TIMEOUT && self.connection.looks_open()
    }
}

/// The pool's key: which resolver found the host, and where it is.
fn pool_key(resolver: &Resolver, host: &str, port: u16) -> String {
    let server = resolver.server();
    let mut key = String::with_capacity(server.len() + host.len() + 8);
    key.push_str(server);
    key.push(' ');
    key.push_str(host);
    key.push(':');
    key.push_str(itoa::Buffer::new().format(port));
    key
}

/// An idle connection to `key` that still looks open, if any.
fn checkout(key: &str) -> Option<Connection> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.idle.get_mut(key)?;
        while let Some(entry) = idle.pop() {
            if entry.usable() {
                return Some(entry.connection);
            }
        }
        None
    })
}

/// Puts a connection whose exchange is over back for the next request.
fn checkin(key: String, connection: Connection) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.checkins += 1;
        if pool.checkins >= SWEEP_EVERY {
            pool.checkins = 0;
            pool.sweep();
        }
        let idle = pool.idle.entry(key).or_default();
        if idle.len() < IDLE_PER_HOST {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    });
}

/// A new connection to `host:port` through `resolver`.
async fn connect(resolver: &Resolver, host: &str, port: u16) -> Result<Connection, LeanError> {
    let stream = resolver
        .connect_tcp(host, port)
        .await
        .map_err(|err| match err {
            ConnectError::Resolve(err) => LeanError::Resolve(err),
            ConnectError::Io(err) => LeanError::Connect(err),
        })?;
    // As reqwest does: a check's request is one small write, not worth
    // Nagle's wait for an acknowledgement.
    let _ = stream.set_nodelay(true);
    Ok(Connection::new(stream))
}

/// Sends `request` through `resolver` and reads at most `cap` bytes of the
/// body, as [`super::http::fetch`] does for reqwest.
pub async fn fetch(
    resolver: &Resolver,
    request: LeanRequest<'_>,
    cap: usize,
) -> Result<Fetched, LeanFetchError> {
    let started = Instant::now();
    let failed = |status, error| LeanFetchError {
        status,
        error,
        latency: started.elapsed(),
    };
    let LeanRequest {
        host,
        port,
        wire,
        reading,
        idempotent,
    } = request;
    let key = pool_key(resolver, host, port);
    let mut pooled = checkout(&key);
    loop {
        let reused = pooled.is_some();
        let mut connection = match pooled.take() {
            Some(connection) => connection,
            // Boxed: a new connection is the rare case, and its future
            // (name resolution, connect) would otherwise make every
            // request's future as large, moved by value at each step.
            None => Box::pin(connect(resolver, host, port))
                .await
                .map_err(|err| failed(None, err))?,
        };
        match connection.exchange(&wire, reading, cap, started).await {
            Ok((fetched, reusable)) => {
                // A connection with body left unread (the cap), or that
                // the server is closing, is dropped here: closed.
                if reusable {
                    checkin(key, connection);
                }
                return Ok(fetched);
            }
            // A kept-alive connection the server had closed, found as the
            // request went out: sent again on another, as reqwest's pool
            // does when nothing went out, and as browsers do for methods
            // that may be repeated when nothing came back. A fresh
            // connection's failure is the answer.
            Err(err) if reused && (err.unsent || (err.nothing_received && idempotent)) => {
                pooled = checkout(&key);
            }
            Err(err) => return Err(failed(err.status, err.error)),
        }
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
