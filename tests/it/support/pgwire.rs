//! Tiny fake Postgres-wire servers on loopback, for the answers the throwaway
//! server cannot give: no TLS on offer, a cleartext-password exchange (to see
//! the bytes sent), Supavisor's `Tenant or user not found`.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the fake server answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// `N` to SSLRequest, then hangs up.
    NoTls,
    /// Asks for a cleartext password, then rejects it with 28P01.
    WrongPassword,
    /// Rejects the startup with XX000 `Tenant or user not found`.
    TenantNotFound,
}

pub struct FakePg {
    pub port: u16,
    /// Raw bytes clients sent (to prove what went over the wire).
    pub received: Arc<Mutex<Vec<u8>>>,
}

pub async fn start(behaviour: Behaviour) -> FakePg {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let _ = serve(stream, behaviour, log).await;
            });
        }
    });
    FakePg { port, received }
}

async fn read_startup(stream: &mut TcpStream, log: &Mutex<Vec<u8>>) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u32().await? as usize;
    let mut body = vec![0; len.saturating_sub(4)];
    stream.read_exact(&mut body).await?;
    log.lock().unwrap().extend_from_slice(&body);
    Ok(body)
}

async fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    log: Arc<Mutex<Vec<u8>>>,
) -> std::io::Result<()> {
    let mut startup = read_startup(&mut stream, &log).await?;
    // SSLRequest: code 80877103.
    if startup.len() == 4 && u32::from_be_bytes(startup[..4].try_into().unwrap()) == 80877103 {
        stream.write_all(b"N").await?;
        if matches!(behaviour, Behaviour::NoTls) {
            return Ok(());
        }
        startup = read_startup(&mut stream, &log).await?;
    }
    let _ = startup;
    match behaviour {
        Behaviour::NoTls => {}
        Behaviour::WrongPassword => {
            // AuthenticationCleartextPassword.
            stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
            let tag = stream.read_u8().await?;
            let len = stream.read_u32().await? as usize;
            let mut body = vec![0; len.saturating_sub(4)];
            stream.read_exact(&mut body).await?;
            log.lock().unwrap().push(tag);
            log.lock().unwrap().extend_from_slice(&body);
            stream
                .write_all(&error_response(
                    "28P01",
                    "password authentication failed for user \"postgres\"",
                ))
                .await?;
        }
        Behaviour::TenantNotFound => {
            stream
                .write_all(&error_response("XX000", "Tenant or user not found"))
                .await?;
        }
    }
    stream.flush().await?;
    Ok(())
}

fn error_response(code: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&fields);
    out
}
