//! A fake Redis (RESP) server that refuses every password.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Answers `AUTH` with `-WRONGPASS`, `PING` with `-NOAUTH`.
pub async fn start_wrongpass() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let Some(command) = read_command(&mut stream).await else {
                        return;
                    };
                    let reply: &[u8] = match command
                        .first()
                        .map(|c| c.to_ascii_uppercase())
                        .as_deref()
                    {
                        Some("AUTH") => {
                            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
                        }
                        _ => b"-NOAUTH Authentication required.\r\n",
                    };
                    if stream.get_mut().write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

async fn read_command<R: tokio::io::AsyncBufRead + Unpin>(stream: &mut R) -> Option<Vec<String>> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
    let count: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::new();
    for _ in 0..count {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        stream.read_exact(&mut buf).await.ok()?;
        buf.truncate(len);
        args.push(String::from_utf8_lossy(&buf).into_owned());
    }
    Some(args)
}

/// What [`start_hostile`] answers `PING` with.
#[derive(Debug, Clone, Copy)]
pub enum Hostile {
    /// `$9223372036854775000`: a bulk length no client can allocate.
    HugeBulkLength,
    /// `-ERR xxxx…` with no end of line, until the client hangs up.
    EndlessErrorLine,
}

/// A server that answers the first command with a hostile reply; returns its port.
pub async fn start_hostile(how: Hostile) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                if read_command(&mut stream).await.is_none() {
                    return;
                }
                let stream = stream.get_mut();
                match how {
                    Hostile::HugeBulkLength => {
                        let _ = stream.write_all(b"$9223372036854775000\r\nabc").await;
                        // Hold the connection open: the client must not wait for the rest.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Hostile::EndlessErrorLine => {
                        let piece = vec![b'x'; 64 * 1024];
                        if stream.write_all(b"-ERR ").await.is_err() {
                            return;
                        }
                        while stream.write_all(&piece).await.is_ok() {}
                    }
                }
            });
        }
    });
    port
}
