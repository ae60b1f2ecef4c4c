//! A fake Redis (RESP) server that refuses every password.

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
