//! The classifier against real errors made on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A server that runs `serve` on every connection it accepts.
async fn server<F, Fut>(serve: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    port
}

/// Accepts, reads, and never answers.
async fn silent_server() -> u16 {
    server(|mut stream| async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

/// Reads a request, answers `reply`, closes.
async fn answering_server(reply: &'static [u8]) -> u16 {
    server(move |mut stream| async move {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        let _ = stream.write_all(reply).await;
        let _ = stream.shutdown().await;
    })
    .await
}

/// A client with the HTTP clients' TLS setup and a short timeout.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::check::support::tls::http_client_config(true))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

async fn reqwest_error(url: &str) -> reqwest::Error {
    client()
        .get(url)
        .send()
        .await
        .expect_err("the request must fail")
}

#[tokio::test]
async fn a_refused_port_is_refused() {
    let port = closed_port();
    let err = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_err();
    assert_eq!(io(&err), FailureClass::Refused);
    let err = reqwest_error(&format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(reqwest(&err), FailureClass::Refused, "{err:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let port = silent_server().await;
    let err = reqwest_error(&format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(reqwest(&err), FailureClass::Timeout, "{err:?}");
}

#[tokio::test]
async fn tls_against_a_plain_tcp_server_is_tls() {
    let port = answering_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    let err = reqwest_error(&format!("https://127.0.0.1:{port}/")).await;
    assert_eq!(reqwest(&err), FailureClass::Tls, "{err:?}");

    // The same through tokio-rustls directly, as the tls/postgres/redis kinds do.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // No trust anchors: the handshake fails before any certificate matters.
    let roots = rustls::RootCertStore::empty();
    let config =
        rustls::ClientConfig::builder_with_provider(crate::check::support::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let err = connector.connect(name, stream).await.unwrap_err();
    assert_eq!(io(&err), FailureClass::Tls, "{err:?}");
}

#[tokio::test]
async fn a_reply_that_is_not_http_is_protocol() {
    let port = answering_server(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let err = reqwest_error(&format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(reqwest(&err), FailureClass::Protocol, "{err:?}");
}

#[tokio::test]
async fn a_body_cut_short_is_protocol() {
    let port =
        answering_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly a few bytes").await;
    let response = client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    let err = response.bytes().await.unwrap_err();
    assert_eq!(reqwest(&err), FailureClass::Protocol, "{err:?}");
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_dns_through_reqwest() {
    /// Answers every name NXDOMAIN, as the run's hickory resolver does for a
    /// name that does not exist, without asking any DNS server.
    struct NxDomain;
    impl reqwest::dns::Resolve for NxDomain {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let name = name.as_str().to_string();
            Box::pin(async move {
                Err(Box::new(ResolveError::NxDomain { name }) as Box<dyn Error + Send + Sync>)
            })
        }
    }
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::check::support::tls::http_client_config(true))
        .dns_resolver(Arc::new(NxDomain))
        .build()
        .unwrap();
    let err = client
        .get("http://unresolvable.test/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(reqwest(&err), FailureClass::Dns, "{err:?}");
}

#[tokio::test]
async fn a_bad_url_is_config() {
    let err = client().get("http://[::1").send().await.unwrap_err();
    assert_eq!(reqwest(&err), FailureClass::Config, "{err:?}");
}

#[test]
fn local_file_errors_are_config() {
    let dir = tempfile::tempdir().unwrap();
    let err = std::fs::read(dir.path().join("missing.pem")).unwrap_err();
    assert_eq!(io(&err), FailureClass::Config);
}

async fn pg_error(config: &str) -> tokio_postgres::Error {
    let config: tokio_postgres::Config = config.parse().unwrap();
    match tokio::time::timeout(
        Duration::from_secs(5),
        config.connect(tokio_postgres::NoTls),
    )
    .await
    .expect("the connection attempt must end")
    {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
                .simple_query("SELEC 1")
                .await
                .expect_err("the query is invalid")
        }
        Err(err) => err,
    }
}

#[tokio::test]
async fn postgres_errors_classify_by_sqlstate_and_kind() {
    let port = closed_port();
    let err = pg_error(&format!("host=127.0.0.1 port={port} user=postgres")).await;
    assert_eq!(postgres(&err), FailureClass::Refused, "{err:?}");

    // A TCP server that answers the SSLRequest with 'N' (no TLS).
    let no_tls = server(|mut stream| async move {
        let mut request = [0u8; 8];
        if stream.read_exact(&mut request).await.is_ok() {
            let _ = stream.write_all(b"N").await;
        }
    })
    .await;
    let err = pg_error(&format!(
        "host=127.0.0.1 port={no_tls} user=postgres sslmode=require"
    ))
    .await;
    assert_eq!(postgres(&err), FailureClass::Tls, "{err:?}");

    // The machine's PostgreSQL trusts loopback; skip quietly where it is absent.
    if tokio::net::TcpStream::connect("127.0.0.1:5432")
        .await
        .is_err()
    {
        eprintln!("no PostgreSQL on 127.0.0.1:5432; skipping SQLSTATE cases");
        return;
    }
    let err = pg_error("host=127.0.0.1 user=postgres dbname=runproof_no_such_db").await;
    assert_eq!(postgres(&err), FailureClass::NotFound, "{err:?}");
    let err = pg_error("host=127.0.0.1 user=runproof_no_such_role dbname=postgres").await;
    assert_eq!(postgres(&err), FailureClass::Auth, "{err:?}");
    let err = pg_error("host=127.0.0.1 user=postgres dbname=postgres").await;
    assert_eq!(postgres(&err), FailureClass::Config, "{err:?}");
}
