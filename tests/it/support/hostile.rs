//! Hostile servers on 127.0.0.1: answers no client should trust to be small
//! or well-formed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// 64 MiB: far past every kind's body cap.
pub const HUGE_BODY: usize = 64 * 1024 * 1024;

/// A server that answers every request `200 OK` with a [`HUGE_BODY`]-byte
/// JSON-looking body, and notes how much of it each connection took.
pub struct HugeBody {
    pub url: String,
    /// Bytes of body written per finished connection: far below
    /// [`HUGE_BODY`] when the client stopped reading at its cap.
    pub written: Arc<Mutex<Vec<usize>>>,
}

impl HugeBody {
    /// Waits until `connections` connections have ended; their byte counts.
    pub async fn written_by(&self, connections: usize) -> Vec<usize> {
        for _ in 0..200 {
            let written = self.written.lock().unwrap().clone();
            if written.len() >= connections {
                return written;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("only {:?} connections ended", self.written.lock().unwrap());
    }
}

pub async fn huge_body_server() -> HugeBody {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let written = Arc::new(Mutex::new(Vec::new()));
    let log = written.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let sent = send_huge_body(stream).await;
                log.lock().unwrap().push(sent);
            });
        }
    });
    HugeBody {
        url: format!("http://127.0.0.1:{port}"),
        written,
    }
}

/// Answers one request; returns how many body bytes were written before the
/// client went away (or all of them).
async fn send_huge_body(mut stream: TcpStream) -> usize {
    // Read the request head (and whatever body came with it) before answering.
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return 0,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUGE_BODY}\r\n\r\n["
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let piece = vec![b' '; 64 * 1024];
    let mut sent = 1;
    while sent < HUGE_BODY {
        let n = piece.len().min(HUGE_BODY - sent);
        if stream.write_all(&piece[..n]).await.is_err() {
            return sent;
        }
        sent += n;
    }
    sent
}
