//! The `http` kind's TLS setup (rustls on ring, the system roots, no OpenSSL)
//! against an HTTPS server on 127.0.0.1 whose certificate comes from a test
//! CA that no system trusts: verified requests must refuse it, and
//! `verify_tls = false` must still speak HTTPS to it.

use std::sync::Arc;

use crate::support::tls::{ca, days_from_now, leaf};
use crate::support::{bundle_path, describe, events, records, verdict, Workspace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `ok` over HTTPS (HTTP/1.1, one request per connection) on a free
/// loopback port, for as long as `runtime` lives.
fn serve_https(runtime: &tokio::runtime::Runtime) -> u16 {
    let ca = ca();
    let leaf = leaf(&ca, &["localhost"], days_from_now(-1), days_from_now(30));
    // ring, as runproof itself uses (deprecated upstream only for lacking
    // post-quantum key exchange).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der], leaf.key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[test]
fn https_verifies_against_the_system_roots_unless_told_not_to() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let port = serve_https(&runtime);
    let ws = Workspace::new();
    let runbook = format!(
        r#"[runbook]
name = "https"
on_escalate = "continue"

[defaults]
retries = 0
timeout = "5s"

[[step]]
id = "verified"
check = "http"
url = "https://localhost:{port}/"

[[step]]
id = "unverified"
check = "http"
url = "https://localhost:{port}/"
verify_tls = false
expect = {{ status = 200, body_contains = "ok" }}
"#
    );
    let path = ws.write("runbook.toml", &runbook);
    let output = ws.run(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let events = events(&bundle_path(&output));
    assert_eq!(
        verdict(&events, "unverified"),
        "pass",
        "{}",
        describe(&output)
    );
    assert_eq!(
        verdict(&events, "verified"),
        "escalated",
        "{}",
        describe(&output)
    );
    let reason = records(&events, "attempt.end", Some("verified"))[0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.starts_with("TLS handshake failed"), "{reason}");
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
}
