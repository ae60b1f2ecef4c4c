//! A scripted HTTP/1.1 server on 127.0.0.1 for the lean path's tests: it
//! reads each request head on a connection and lets the test answer it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A running server: its port and how many connections it accepted.
pub struct Served {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
}

/// Serves every connection: reads a request head (up to its blank line),
/// then hands the stream and the head to `answer`, which gives the stream
/// back to read the next request on it, or `None` to close it.
pub async fn serve<F, Fut>(answer: F) -> Served
where
    F: Fn(TcpStream, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<TcpStream>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                        continue;
                    };
                    let head: Vec<u8> = pending.drain(..end + 4).collect();
                    match answer(stream, head).await {
                        Some(kept) => stream = kept,
                        None => return,
                    }
                }
            });
        }
    });
    Served { port, connections }
}
