//! One capped HTTP call for every HTTP-speaking kind: send, then read at
//! most a cap of the body as it streams in, so a huge or endless response
//! costs bounded memory whatever the kind. [`CappedBody`] is that cap, for
//! this call and for the lean HTTP/1.1 path ([`super::h1`]) alike.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use super::classify;
use crate::core::FailureClass;

/// What every HTTP request of runproof says it is.
pub const USER_AGENT: &str = concat!("runproof/", env!("CARGO_PKG_VERSION"));

/// The most of a response body any kind reads, keeps and checks.
pub const BODY_CAP: usize = 1024 * 1024;

/// The most a body buffer is sized to up front from an announced length.
const PRESIZE_MAX: usize = 64 * 1024;

/// A response, its body read up to the cap.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: HeaderMap,
    /// At most the cap's worth of the body.
    pub body: Vec<u8>,
    /// Whether the body went on past the cap (the rest was not read).
    pub truncated: bool,
    /// From sending to the response's headers.
    pub time_to_headers: Duration,
    /// From sending to the end of what was read.
    pub latency: Duration,
}

/// Why a call failed: before a response, or while its body was read.
#[derive(Debug)]
pub struct FetchError {
    /// The status, when the headers had arrived before the failure.
    pub status: Option<u16>,
    pub error: reqwest::Error,
    /// From sending to the failure.
    pub latency: Duration,
}

impl FetchError {
    /// The failure's class, from the error's types.
    pub fn class(&self) -> FailureClass {
        classify::reqwest(&self.error)
    }
}

/// A response body read up to a cap, whichever client reads it: the one
/// place a body's size is bounded.
pub struct CappedBody {
    body: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl CappedBody {
    /// An empty body of at most `cap` bytes, sized once when the length is
    /// `announced` instead of grown chunk by chunk (an announced length is
    /// not trusted beyond a modest start).
    pub fn new(announced: Option<u64>, cap: usize) -> Self {
        let presize = usize::try_from(announced.unwrap_or(0))
            .unwrap_or(cap)
            .min(cap)
            .min(PRESIZE_MAX);
        CappedBody {
            body: Vec::with_capacity(presize),
            cap,
            truncated: false,
        }
    }

    /// Adds the next chunk; `false` once the cap is reached (the rest of
    /// the chunk, and of the body, is not kept: stop reading).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.cap - self.body.len();
        if chunk.len() > room {
            self.body.extend_from_slice(&chunk[..room]);
            self.truncated = true;
            return false;
        }
        self.body.extend_from_slice(chunk);
        true
    }

    /// The response, this its body, timed from `started`.
    pub fn finish(
        self,
        status: u16,
        headers: HeaderMap,
        time_to_headers: Duration,
        started: Instant,
    ) -> Fetched {
        Fetched {
            status,
            headers,
            body: self.body,
            truncated: self.truncated,
            time_to_headers,
            latency: started.elapsed(),
        }
    }
}

/// Sends `request` and reads at most `cap` bytes of the body.
pub async fn fetch(request: reqwest::RequestBuilder, cap: usize) -> Result<Fetched, FetchError> {
    let started = Instant::now();
    let mut response = request.send().await.map_err(|error| FetchError {
        status: None,
        error,
        latency: started.elapsed(),
    })?;
    let time_to_headers = started.elapsed();
    let status = response.status().as_u16();
    // Taken, not copied: reading the body does not need them (no content
    // decoding is enabled), and a copy costs allocations per request.
    let headers = std::mem::take(response.headers_mut());
    let mut body = CappedBody::new(response.content_length(), cap);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if !body.push(&chunk) {
                    // Dropping the response closes the connection: the rest
                    // is never read.
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => {
                return Err(FetchError {
                    status: Some(status),
                    error,
                    latency: started.elapsed(),
                })
            }
        }
    }
    Ok(body.finish(status, headers, time_to_headers, started))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client with the HTTP clients' TLS setup (reqwest has no default provider here).
    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(crate::check::support::tls::http_client_config(true))
            .build()
            .unwrap()
    }

    /// Answers one request with a `len`-byte body, written in 64 KiB pieces.
    async fn big_body_server(len: usize) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let piece = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < len {
                let n = piece.len().min(len - sent);
                if stream.write_all(&piece[..n]).await.is_err() {
                    break;
                }
                sent += n;
            }
        });
        port
    }

    #[test]
    fn a_capped_body_keeps_the_cap_and_trusts_no_announced_length() {
        // A hostile length announced up front reserves a modest start only.
        let body = CappedBody::new(Some(u64::MAX), BODY_CAP);
        assert!(body.body.capacity() <= PRESIZE_MAX);
        let mut body = CappedBody::new(None, 10);
        assert!(body.push(b"12345"));
        assert!(!body.push(b"6789abc"));
        let done = |body: CappedBody| {
            let fetched = body.finish(200, HeaderMap::new(), Duration::ZERO, Instant::now());
            (fetched.body, fetched.truncated)
        };
        assert!(!body.push(b"more"));
        assert_eq!(done(body), (b"123456789a".to_vec(), true));
        let mut body = CappedBody::new(Some(4), 4);
        assert!(body.push(b"1234"));
        assert_eq!(done(body), (b"1234".to_vec(), false));
    }

    #[tokio::test]
    async fn reads_at_most_the_cap() {
        let port = big_body_server(8 * 1024 * 1024).await;
        let request = client().get(format!("http://127.0.0.1:{port}/"));
        let got = fetch(request, 100_000).await.unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body.len(), 100_000);
        assert!(got.truncated);
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_whole() {
        let port = big_body_server(1000).await;
        let request = client().get(format!("http://127.0.0.1:{port}/"));
        let got = fetch(request, 1000).await.unwrap();
        assert_eq!(got.body.len(), 1000);
        assert!(!got.truncated);
    }

    #[tokio::test]
    async fn a_refused_port_fails_with_its_class() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let request = client().get(format!("http://127.0.0.1:{port}/"));
        let err = fetch(request, 10).await.unwrap_err();
        assert_eq!(err.status, None);
        assert_eq!(err.class(), FailureClass::Refused);
    }
}
