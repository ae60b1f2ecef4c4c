//! The lean HTTP/1.1 path for plain `http://` requests: hyper's connection
//! API over the run's resolver, with one pool of idle keep-alive connections
//! per thread.
//!
//! Why not reqwest for these: a sweep check's request through reqwest costs
//! about twice its request through hyper alone (14–15 µs against 8–9 µs of
//! CPU on the benchmark machine): reqwest parses the URL again, runs each
//! request through its redirect and retry services and checks connections
//! out of a pool shared behind locks. https, HTTP/2 and proxies stay with
//! reqwest ([`LeanRequest::new`] says which requests may come here).

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};

use super::classify;
use super::http::{CappedBody, Fetched};
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
    message: http::Request<Full<Bytes>>,
}

impl<'a> LeanRequest<'a> {
    /// The request, when the lean path takes it: a plain `http` URL, no
    /// proxy configured in the environment (reqwest honours `HTTP_PROXY` and
    /// `ALL_PROXY`; proxied requests stay with it), and headers hyper takes
    /// as they are. `None` sends the request through reqwest, which reports
    /// anything malformed in its own words.
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
        Self::build(method, (host, port, url.port()), &target, headers, body)
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
        Self::build(method, at, url.target, headers, body)
    }

    /// The request to `target` (path and query) at `host`: `(host, port to
    /// connect to, port as the URL writes it)`.
    fn build(
        method: &http::Method,
        (host, port, written_port): (&'a str, u16, Option<u16>),
        target: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Option<Self> {
        use http::header::{HeaderName, HeaderValue, ACCEPT, HOST, USER_AGENT};
        if proxy_configured() {
            return None;
        }
        let mut message = http::Request::new(Full::new(body));
        *message.method_mut() = method.clone();
        *message.uri_mut() = target.parse().ok()?;
        let map = message.headers_mut();
        map.reserve(headers.len() + 3);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            let value = HeaderValue::from_str(value).ok()?;
            map.append(name, value);
        }
        // What reqwest's clients add when the step does not set them; the
        // port only when the URL names one.
        if !map.contains_key(HOST) {
            let host_header = match written_port {
                Some(port) => HeaderValue::from_str(&format!("{host}:{port}")),
                None => HeaderValue::from_str(host),
            };
            map.insert(HOST, host_header.ok()?);
        }
        map.entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(super::http::USER_AGENT));
        map.entry(ACCEPT).or_insert(HeaderValue::from_static("*/*"));
        Some(LeanRequest {
            host,
            port,
            message,
        })
    }
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
    /// The HTTP exchange failed: hyper's verdict.
    Http(hyper::Error),
}

impl fmt::Display for LeanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeanError::Resolve(_) => f.write_str("dns error"),
            LeanError::Connect(_) => f.write_str("tcp connect error"),
            LeanError::Http(_) => f.write_str("http error"),
        }
    }
}

impl StdError for LeanError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            LeanError::Resolve(err) => Some(err),
            LeanError::Connect(err) => Some(err),
            LeanError::Http(err) => Some(err),
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
            LeanError::Http(err) => err
                .source()
                .and_then(classify::chain)
                .unwrap_or_else(|| classify::hyper(err)),
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
        matches!(self, LeanError::Http(err) if err.is_incomplete_message() || err.is_closed() || err.is_canceled())
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
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

thread_local! {
    /// This thread's idle connections, by resolver, host and port. Per
    /// thread: a sweep thread's connections are driven by its own runtime,
    /// and no lock is taken per request.
    static POOL: RefCell<foldhash::HashMap<String, Vec<Idle>>> = RefCell::new(foldhash::HashMap::default());
}

/// The pool's key: which resolver found the host, and where it is.
fn pool_key(resolver: &Resolver, host: &str, port: u16) -> String {
    let server = resolver.server();
    let mut key = String::with_capacity(server.len() + host.len() + 8);
    key.push_str(server);
    key.push(' ');
    key.push_str(host);
    key.push(':');
    key.push_str(&port.to_string());
    key
}

/// An idle connection to `key` that is still open, if any.
fn checkout(key: &str) -> Option<SendRequest<Full<Bytes>>> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(key)?;
        while let Some(entry) = idle.pop() {
            if entry.since.elapsed() < IDLE_TIMEOUT && entry.sender.is_ready() {
                return Some(entry.sender);
            }
        }
        None
    })
}

/// Puts a connection whose exchange is over back for the next request.
fn checkin(key: String, sender: SendRequest<Full<Bytes>>) {
    if sender.is_closed() {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.entry(key).or_default();
        if idle.len() < IDLE_PER_HOST {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    });
}

/// A new connection to `host:port` through `resolver`, its driver spawned
/// on the current runtime.
async fn connect(
    resolver: &Resolver,
    host: &str,
    port: u16,
) -> Result<SendRequest<Full<Bytes>>, LeanError> {
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
    let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(LeanError::Http)?;
    // The connection's own errors reach the request that was on it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
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
        mut message,
    } = request;
    let key = pool_key(resolver, host, port);
    let mut pooled = checkout(&key);
    let (mut sender, response) = loop {
        let reused = pooled.is_some();
        let mut sender = match pooled.take() {
            Some(sender) => sender,
            // Boxed: a new connection is the rare case, and its future
            // (name resolution, connect, handshake) would otherwise make
            // every request's future as large, moved by value at each step.
            None => Box::pin(connect(resolver, host, port))
                .await
                .map_err(|err| failed(None, err))?,
        };
        match sender.try_send_request(message).await {
            Ok(response) => break (sender, response),
            Err(mut err) => match err.take_message() {
                // An idle connection the server had closed, found before a
                // byte of the request went out: sent again on a new one,
                // as reqwest's pool does. A fresh connection's failure is
                // the answer.
                Some(unsent) if reused => {
                    message = unsent;
                    pooled = checkout(&key);
                }
                _ => return Err(failed(None, LeanError::Http(err.into_error()))),
            },
        }
    };
    let time_to_headers = started.elapsed();
    let status = response.status().as_u16();
    let (mut parts, mut incoming) = response.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let mut body = CappedBody::new(http_body::Body::size_hint(&incoming).exact(), cap);
    loop {
        match incoming.frame().await {
            Some(Ok(frame)) => {
                let Ok(chunk) = frame.into_data() else {
                    continue; // trailers
                };
                if !body.push(&chunk) {
                    break;
                }
            }
            None => break,
            Some(Err(err)) => return Err(failed(Some(status), LeanError::Http(err))),
        }
    }
    // Timed before the connection is handed back: that is not the request's.
    let fetched = body.finish(status, headers, time_to_headers, started);
    if fetched.truncated {
        // The rest is never read: the connection closes with the sender.
        drop(sender);
    } else if sender.ready().await.is_ok() {
        checkin(key, sender);
    }
    Ok(fetched)
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
