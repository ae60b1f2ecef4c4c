//! The lean path's response reading against a server on 127.0.0.1 that
//! answers every request with the same raw bytes: framings, informational
//! responses, and what a hostile or broken server sends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::super::h1::{fetch, LeanFetchError, LeanRequest};
use super::super::http::Fetched;
use super::super::test_server::serve;
use crate::check::resolve::Resolver;
use crate::core::FailureClass;

/// A server answering each request head with `reply`, written in one
/// piece, or byte by byte when `dribble` (every read of the client then
/// sees a fragment); it closes after the reply when `close`.
struct Raw {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn raw(reply: &'static [u8], close: bool, dribble: bool) -> Raw {
    let requests = Arc::new(AtomicUsize::new(0));
    let asked = requests.clone();
    let served = serve(move |mut stream, _head| {
        asked.fetch_add(1, Ordering::SeqCst);
        async move {
            let written = if dribble {
                let mut ok = true;
                for byte in reply {
                    ok = ok && stream.write_all(&[*byte]).await.is_ok();
                    let _ = stream.flush().await;
                    tokio::task::yield_now().await;
                }
                ok
            } else {
                stream.write_all(reply).await.is_ok()
            };
            (written && !close).then_some(stream)
        }
    })
    .await;
    Raw {
        port: served.port,
        connections: served.connections,
        requests,
    }
}

async fn call(port: u16, method: http::Method, cap: usize) -> Result<Fetched, LeanFetchError> {
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let request = LeanRequest::new(&method, &url, &[], Bytes::new()).unwrap();
    fetch(&Resolver::system(), request, cap).await
}

async fn get(port: u16) -> Result<Fetched, LeanFetchError> {
    call(port, http::Method::GET, 1000).await
}

#[tokio::test]
async fn a_chunked_body_is_joined_with_its_extensions_and_trailers_skipped() {
    let reply: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nx-trailer: t\r\n\r\n";
    for dribble in [false, true] {
        let server = raw(reply, false, dribble).await;
        for _ in 0..2 {
            let got = get(server.port).await.unwrap();
            assert_eq!(
                got.body, b"Wikipedia in\r\n\r\nchunks.",
                "dribble {dribble}"
            );
            assert!(!got.truncated);
        }
        // The chunked response ended where its framing says: the
        // connection served the second request too.
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_chunked_body_past_the_cap_is_cut_and_its_connection_dropped() {
    let reply: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
    let server = raw(reply, false, false).await;
    let got = call(server.port, http::Method::GET, 15).await.unwrap();
    assert_eq!(got.body, b"012345678901234");
    assert!(got.truncated);
    get(server.port).await.unwrap();
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn informational_responses_are_skipped_for_the_final_one() {
    let reply: &[u8] =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
        HTTP/1.1 201 Created\r\ncontent-length: 2\r\nx-id: 7\r\n\r\nok";
    let server = raw(reply, false, false).await;
    let got = get(server.port).await.unwrap();
    assert_eq!(got.status, 201);
    assert_eq!(got.body, b"ok");
    assert_eq!(got.headers["x-id"], "7");
    assert!(
        !got.headers.contains_key("link"),
        "the 103's headers are not the response's"
    );
}

#[tokio::test]
async fn responses_without_a_body_end_at_their_head() {
    // HEAD announces a length it does not send; 204 and 304 have no body.
    let head: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n";
    let server = raw(head, false, false).await;
    for _ in 0..2 {
        let got = call(server.port, http::Method::HEAD, 1000).await.unwrap();
        assert_eq!((got.status, got.body.len()), (200, 0));
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    for reply in [
        &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
        &b"HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n"[..],
    ] {
        let server = raw(reply, false, false).await;
        for _ in 0..2 {
            assert!(get(server.port).await.unwrap().body.is_empty());
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_body_without_a_length_runs_to_the_close_and_is_not_reused() {
    let server = raw(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", true, false).await;
    for _ in 0..2 {
        assert_eq!(get(server.port).await.unwrap().body, b"until the end");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_close_and_http_10_are_not_reused() {
    for reply in [
        &b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"[..],
        &b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
    ] {
        // The server keeps the connection open: only the client's reading
        // of the head can tell it not to use it again.
        let server = raw(reply, false, false).await;
        for _ in 0..2 {
            assert_eq!(get(server.port).await.unwrap().body, b"ok");
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    }
    let server = raw(
        b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok",
        false,
        false,
    )
    .await;
    for _ in 0..2 {
        get(server.port).await.unwrap();
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_length_beside_chunked_is_read_as_chunks_and_not_reused() {
    // The request-smuggling shape: the coding wins, the length is ignored,
    // and nothing more is read from that connection.
    let reply: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    let server = raw(reply, false, false).await;
    for _ in 0..2 {
        assert_eq!(get(server.port).await.unwrap().body, b"ok");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bytes_past_the_response_stop_the_connection_being_reused() {
    let reply: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    let server = raw(reply, false, false).await;
    for _ in 0..2 {
        assert_eq!(get(server.port).await.unwrap().body, b"ok");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

/// The class and rendered text of a failed call to a server sending `reply`.
async fn failure(reply: &'static [u8], close: bool) -> (FailureClass, Option<u16>, String) {
    let server = raw(reply, close, false).await;
    let err = tokio::time::timeout(Duration::from_secs(10), get(server.port))
        .await
        .expect("a malformed answer fails at once, it is not waited on")
        .unwrap_err();
    let text = crate::check::support::errors::render(&err.error);
    (err.error.class(), err.status, text)
}

#[tokio::test]
async fn what_is_not_http_fails_as_protocol_with_a_reason() {
    let cases: [(&[u8], bool, &str); 7] = [
        (
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
            false,
            "invalid HTTP response",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
            false,
            "disagree",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            false,
            "invalid content-length",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            false,
            "invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n",
            false,
            "CRLF",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-le",
            true,
            "connection closed before message completed",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
            true,
            "end of file",
        ),
    ];
    for (reply, close, reason) in cases {
        let (class, _, text) = failure(reply, close).await;
        assert_eq!(class, FailureClass::Protocol, "{text}");
        assert!(text.contains(reason), "{reason:?} not in {text:?}");
    }
    // A body that breaks off keeps the status that came before it.
    let (_, status, _) = failure(b"HTTP/1.1 503 x\r\ncontent-length: 9\r\n\r\nab", true).await;
    assert_eq!(status, Some(503));
}

#[tokio::test]
async fn a_head_that_never_ends_is_refused_at_its_bound() {
    // 500 KiB of one header, then nothing: refused at the bound instead of
    // read for ever.
    static HUGE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut reply = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        reply.resize(500 * 1024, b'a');
        reply
    });
    let (class, status, text) = failure(&HUGE, false).await;
    assert_eq!((class, status), (FailureClass::Protocol, None));
    assert!(text.contains("larger than 400 KiB"), "{text}");
    // 500 KiB of `100 Continue`, each a whole head: refused the same way.
    static CONTINUES: std::sync::LazyLock<Vec<u8>> =
        std::sync::LazyLock::new(|| b"HTTP/1.1 100 Continue\r\n\r\n".repeat(500 * 1024 / 25));
    let (class, status, text) = failure(&CONTINUES, false).await;
    assert_eq!((class, status), (FailureClass::Protocol, None));
    assert!(text.contains("informational (1xx) responses"), "{text}");
}

#[tokio::test]
async fn a_kept_alive_connection_the_server_dropped_is_replaced_for_a_get() {
    // The server answers once per connection and closes; the client's
    // next GET may find the pooled connection dead as it writes or reads,
    // and is sent again on a new one rather than failing.
    let server = raw(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        true,
        false,
    )
    .await;
    for _ in 0..5 {
        assert_eq!(get(server.port).await.unwrap().body, b"ok");
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 5);
    assert_eq!(server.connections.load(Ordering::SeqCst), 5);
}

#[test]
fn a_connection_pooled_under_a_runtime_that_has_ended_is_not_used_by_the_next() {
    // The pool is per thread; runtimes come and go on a thread (a watched
    // sweep's rounds, tests). A connection whose runtime has ended fails
    // at its first write and is replaced, never reported as the answer.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0
                        || stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = runtime.block_on(get(port)).unwrap();
        assert_eq!(got.body, b"ok", "round {round}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}
