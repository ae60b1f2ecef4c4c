use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;

use super::super::test_server::serve;
use super::*;

/// How a test server answers each request on a connection.
#[derive(Clone, Copy)]
enum Answer {
    /// `200 ok`, keeping the connection open.
    KeepAlive,
    /// `200 ok`, then the server closes the connection.
    ThenClose,
    /// A `len`-byte body, written in 64 KiB pieces.
    Big(usize),
    /// Headers announcing 100 bytes, 10 of them, then the connection closes.
    BrokenOff,
}

/// A server on 127.0.0.1 that counts its connections and keeps every
/// request head it was sent.
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn server(answer: Answer) -> Server {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let kept = heads.clone();
    let served = serve(move |mut stream, head| {
        kept.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&head).into_owned());
        async move {
            let written = match answer {
                Answer::KeepAlive => stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .is_ok(),
                Answer::ThenClose => {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    false
                }
                Answer::Big(len) => {
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                    let mut ok = stream.write_all(head.as_bytes()).await.is_ok();
                    let piece = vec![b'x'; 64 * 1024];
                    let mut sent = 0;
                    while ok && sent < len {
                        let n = piece.len().min(len - sent);
                        ok = stream.write_all(&piece[..n]).await.is_ok();
                        sent += n;
                    }
                    ok
                }
                Answer::BrokenOff => {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                        .await;
                    false
                }
            };
            written.then_some(stream)
        }
    })
    .await;
    Server {
        port: served.port,
        connections: served.connections,
        heads,
    }
}

fn url(port: u16, path: &str) -> url::Url {
    url::Url::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap()
}

async fn get(
    url: &url::Url,
    headers: &[(&str, String)],
    cap: usize,
) -> Result<Fetched, LeanFetchError> {
    let request = LeanRequest::new(&http::Method::GET, url, headers, Bytes::new())
        .expect("a plain http URL takes the lean path");
    fetch(&Resolver::system(), request, cap).await
}

#[tokio::test]
async fn one_connection_serves_request_after_request() {
    let server = server(Answer::KeepAlive).await;
    for i in 0..5 {
        let got = get(&url(server.port, &format!("/u/{i}?q=1")), &[], 1000)
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body, b"ok");
        assert!(!got.truncated);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    let heads = server.heads.lock().unwrap();
    assert_eq!(heads.len(), 5);
    let first = heads[0].to_lowercase();
    assert!(first.starts_with("get /u/0?q=1 http/1.1\r\n"), "{first}");
    assert!(
        first.contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", server.port)),
        "{first}"
    );
    assert!(first.contains("\r\nuser-agent: runproof/"), "{first}");
    assert!(first.contains("\r\naccept: */*\r\n"), "{first}");
}

#[tokio::test]
async fn the_steps_own_headers_are_sent_and_replace_the_defaults() {
    let server = server(Answer::KeepAlive).await;
    let headers = [
        ("authorization", "Bearer a&b<c".to_string()),
        ("user-agent", "probe/1".to_string()),
    ];
    get(&url(server.port, "/"), &headers, 1000).await.unwrap();
    let head = server.heads.lock().unwrap()[0].to_lowercase();
    assert!(
        head.contains("\r\nauthorization: bearer a&b<c\r\n"),
        "{head}"
    );
    assert_eq!(head.matches("user-agent:").count(), 1, "{head}");
    assert!(head.contains("\r\nuser-agent: probe/1\r\n"), "{head}");
}

#[tokio::test]
async fn a_connection_the_server_closed_is_not_used_again() {
    let server = server(Answer::ThenClose).await;
    for _ in 0..3 {
        let got = get(&url(server.port, "/"), &[], 1000).await.unwrap();
        assert_eq!(got.body, b"ok");
        // Let the connection's driver see the close before the next request.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn reads_at_most_the_cap_and_closes_the_rest() {
    let server = server(Answer::Big(8 * 1024 * 1024)).await;
    let got = get(&url(server.port, "/"), &[], 100_000).await.unwrap();
    assert_eq!(got.body.len(), 100_000);
    assert!(got.truncated);
    // A connection with unread body left is never pooled.
    get(&url(server.port, "/"), &[], 100_000).await.unwrap();
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_that_breaks_off_keeps_its_status() {
    let server = server(Answer::BrokenOff).await;
    let err = get(&url(server.port, "/"), &[], 1000).await.unwrap_err();
    assert_eq!(err.status, Some(200));
    assert_eq!(err.error.class(), FailureClass::Protocol);
    let text = crate::check::support::errors::render(&err.error);
    assert!(text.contains("end of file"), "{text}");
}

#[tokio::test]
async fn a_refused_port_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = get(&url(port, "/"), &[], 10).await.unwrap_err();
    assert_eq!(err.status, None);
    assert_eq!(err.error.class(), FailureClass::Refused);
    assert!(err.error.is_refused());
    assert!(
        crate::check::support::errors::render(&err.error).starts_with("tcp connect error: "),
        "{}",
        crate::check::support::errors::render(&err.error)
    );
}

#[test]
fn https_and_malformed_headers_are_left_to_reqwest() {
    let get = |url: &str, headers: &[(&str, String)]| {
        LeanRequest::new(
            &http::Method::GET,
            &url::Url::parse(url).unwrap(),
            headers,
            Bytes::new(),
        )
        .is_some()
    };
    assert!(get("http://127.0.0.1:1/", &[]));
    assert!(get("http://[::1]/x?y", &[]));
    assert!(!get("https://127.0.0.1:1/", &[]));
    assert!(!get("http://127.0.0.1:1/", &[("x", "a\nb".to_string())]));
    assert!(!get(
        "http://127.0.0.1:1/",
        &[("bad name", "v".to_string())]
    ));
}

/// How many idle connections this thread's pool holds, by key.
fn pooled() -> std::collections::BTreeMap<String, usize> {
    POOL.with(|pool| {
        let pool = pool.borrow();
        pool.idle
            .iter()
            .map(|(key, idle)| (key.clone(), idle.len()))
            .collect()
    })
}

#[tokio::test]
async fn idle_connections_the_servers_closed_are_dropped_though_their_hosts_are_not_asked_again() {
    // Three hosts answer once and close; none is asked again.
    let mut closed = Vec::new();
    for _ in 0..3 {
        let server = server(Answer::ThenClose).await;
        get(&url(server.port, "/"), &[], 1000).await.unwrap();
        closed.push(server.port);
    }
    // The runtime sees the closes while it waits.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dead_keys = |pool: &std::collections::BTreeMap<String, usize>| {
        closed
            .iter()
            .filter(|port| pool.keys().any(|key| key.ends_with(&format!(":{port}"))))
            .count()
    };
    assert_eq!(
        dead_keys(&pooled()),
        3,
        "each answer left its connection pooled"
    );
    // Requests to a fourth host sweep the whole pool now and then.
    let alive = server(Answer::KeepAlive).await;
    for _ in 0..SWEEP_EVERY {
        get(&url(alive.port, "/"), &[], 1000).await.unwrap();
    }
    let pool = pooled();
    assert_eq!(dead_keys(&pool), 0, "{pool:?}");
    assert_eq!(pool.values().sum::<usize>(), 1, "{pool:?}");
    assert_eq!(alive.connections.load(Ordering::SeqCst), 1);
}
