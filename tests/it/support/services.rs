//! A throwaway PostgreSQL and Redis for the suite, started once per test
//! process on free loopback ports with their own temporary data directories.
//!
//! PostgreSQL checks passwords for real (`scram-sha-256` for every TCP
//! connection) and offers TLS with a self-signed certificate. Redis runs twice:
//! without a password and with `requirepass`. Each server is started under a
//! small `sh` watchdog that stops it (and removes its directory) as soon as the
//! test process is gone, however that process ends: nothing is left running
//! after `cargo test`. As root (CI), PostgreSQL runs as the unprivileged
//! `postgres` user (or `nobody`), because `initdb` refuses to run as root.
//! Nothing of the machine's own servers or configuration is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The `postgres` superuser's password: a canary that must never show up in
/// output or evidence.
pub const PG_PASSWORD: &str = "pgCanary-7f3a9c5d";
/// The password-protected Redis's `requirepass`, also a canary.
pub const REDIS_PASSWORD: &str = "redisCanary-42c1";

/// A running throwaway server on 127.0.0.1.
pub struct Server {
    pub port: u16,
}

impl Server {
    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The PostgreSQL server (user `postgres`, password [`PG_PASSWORD`]).
pub fn postgres() -> &'static Server {
    static PG: LazyLock<Server> =
        LazyLock::new(|| start_postgres().unwrap_or_else(|e| panic!("{e}")));
    &PG
}

/// `postgres://postgres:<password>@127.0.0.1:PORT/<db>?<query>` with the real password.
pub fn postgres_url(db: &str, query: &str) -> String {
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!(
        "postgres://postgres:{PG_PASSWORD}@{}/{db}{query}",
        postgres().addr()
    )
}

/// Redis without a password.
pub fn redis() -> &'static Server {
    static REDIS: LazyLock<Server> =
        LazyLock::new(|| start_redis(None).unwrap_or_else(|e| panic!("{e}")));
    &REDIS
}

/// Redis with `requirepass` [`REDIS_PASSWORD`].
pub fn redis_with_password() -> &'static Server {
    static REDIS: LazyLock<Server> =
        LazyLock::new(|| start_redis(Some(REDIS_PASSWORD)).unwrap_or_else(|e| panic!("{e}")));
    &REDIS
}

/// Why a server could not be started; the message says what to install.
type Failure = String;

fn start_redis(password: Option<&str>) -> Result<Server, Failure> {
    let server = find_program("redis-server", &[]).ok_or(
        "redis-server is not installed (scripts/test.sh installs the redis-server package)",
    )?;
    let dir = workdir("redis")?;
    let port = super::free_port();
    let mut args = vec![
        server.display().to_string(),
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        dir.display().to_string(),
    ];
    if let Some(password) = password {
        args.extend(["--requirepass".into(), password.to_string()]);
    }
    guarded(&args, &dir, "TERM")?;
    wait_until(&dir, "redis-server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    Ok(Server { port })
}

fn start_postgres() -> Result<Server, Failure> {
    let bindir = postgres_bindir().ok_or(
        "PostgreSQL server binaries (initdb, postgres) not found via `pg_config --bindir` or \
         /usr/lib/postgresql/*/bin (scripts/test.sh installs the postgresql package)",
    )?;
    let dir = workdir("postgres")?;
    let data = dir.join("data");
    let sockets = dir.join("sockets");
    for sub in [&data, &sockets] {
        std::fs::create_dir(sub).map_err(|e| format!("create {}: {e}", sub.display()))?;
    }
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, PG_PASSWORD).map_err(|e| format!("write pwfile: {e}"))?;
    let (cert, key) = self_signed();
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, cert).map_err(|e| format!("write cert: {e}"))?;
    std::fs::write(&key_path, key).map_err(|e| format!("write key: {e}"))?;
    set_mode(&key_path, 0o600)?;
    set_mode(&data, 0o700)?;
    let run_as = unprivileged_user()?;
    if let Some((uid, gid)) = run_as {
        for path in [&data, &sockets, &pwfile, &cert_path, &key_path] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
    }
    let as_user = |mut argv: Vec<String>| -> Vec<String> {
        if let Some((uid, gid)) = run_as {
            let mut wrapped = vec![
                "setpriv".to_string(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".to_string(),
                "--".to_string(),
            ];
            wrapped.append(&mut argv);
            wrapped
        } else {
            argv
        }
    };
    let initdb = as_user(vec![
        bindir.join("initdb").display().to_string(),
        "--pgdata".into(),
        data.display().to_string(),
        "--username=postgres".into(),
        format!("--pwfile={}", pwfile.display()),
        "--auth-local=trust".into(),
        "--auth-host=scram-sha-256".into(),
        "--encoding=UTF8".into(),
        "--no-sync".into(),
        "--no-instructions".into(),
    ]);
    let output = Command::new(&initdb[0])
        .args(&initdb[1..])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // Every TCP connection must pass a real SCRAM password check; only the
    // private Unix socket (in our own directory) is trusted.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\n\
         host all all 127.0.0.1/32 scram-sha-256\n",
    )
    .map_err(|e| format!("write pg_hba.conf: {e}"))?;
    let port = super::free_port();
    let server = as_user(vec![
        bindir.join("postgres").display().to_string(),
        "-D".into(),
        data.display().to_string(),
        "-p".into(),
        port.to_string(),
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
        "-c".into(),
        format!("unix_socket_directories={}", sockets.display()),
        "-c".into(),
        "ssl=on".into(),
        "-c".into(),
        format!("ssl_cert_file={}", cert_path.display()),
        "-c".into(),
        format!("ssl_key_file={}", key_path.display()),
        "-c".into(),
        "password_encryption=scram-sha-256".into(),
        "-c".into(),
        "fsync=off".into(),
        "-c".into(),
        "max_connections=60".into(),
    ]);
    guarded(&server, &dir, "INT")?;
    let isready = bindir.join("pg_isready");
    wait_until(&dir, "postgres", || {
        Command::new(&isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })?;
    Ok(Server { port })
}

/// A fresh directory for one server, readable by the unprivileged user.
fn workdir(name: &str) -> Result<PathBuf, Failure> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("runproof-test-{name}-"))
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        // The watchdog removes it when the test process is gone.
        .keep();
    set_mode(&dir, 0o755)?;
    Ok(dir)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// Starts `argv` under a watchdog shell: when this test process (or the
/// server) is gone, the server gets SIG`signal`, is waited for, and `dir` is
/// removed. The server's output goes to `dir/server.log`.
fn guarded(argv: &[String], dir: &Path, signal: &str) -> Result<(), Failure> {
    const WATCHDOG: &str = r#"
"$@" >>"$RUNPROOF_TEST_DIR/server.log" 2>&1 &
server=$!
while kill -0 "$RUNPROOF_TEST_PARENT" 2>/dev/null && kill -0 "$server" 2>/dev/null; do
  sleep 0.2
done
kill -"$RUNPROOF_TEST_SIGNAL" "$server" 2>/dev/null
wait "$server"
rm -rf "$RUNPROOF_TEST_DIR"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .args(argv)
        .env("RUNPROOF_TEST_DIR", dir)
        .env("RUNPROOF_TEST_PARENT", std::process::id().to_string())
        .env("RUNPROOF_TEST_SIGNAL", signal)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    Ok(())
}

/// Polls `ready` for up to 60 s; on failure the error carries the server log.
fn wait_until(dir: &Path, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    Err(format!(
        "the throwaway {what} did not come up within 60 s; its log:\n{log}"
    ))
}

/// A program from `extra` directories or `PATH`.
fn find_program(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    extra
        .iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The directory holding `initdb`, `postgres` and `pg_isready`: `pg_config
/// --bindir`, else the newest `/usr/lib/postgresql/*/bin` (Debian keeps the
/// server binaries off `PATH`), else `PATH`.
fn postgres_bindir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            candidates.push(PathBuf::from(
                String::from_utf8_lossy(&output.stdout).trim(),
            ));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                Some((version, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev().map(|(_, bin)| bin));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.extend(std::env::split_paths(&path));
    candidates.into_iter().find(|dir| {
        ["initdb", "postgres", "pg_isready"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    })
}

/// As root, the (uid, gid) PostgreSQL runs as: `postgres`, else `nobody`.
fn unprivileged_user() -> Result<Option<(u32, u32)>, Failure> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: a valid C string; the result is read before any other
        // getpw* call could overwrite it (tests start servers under a LazyLock).
        let entry = unsafe { libc::getpwnam(name.as_ptr()) };
        if !entry.is_null() {
            // SAFETY: non-null pointer to a passwd entry.
            let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
            return Ok(Some((uid, gid)));
        }
    }
    Err("running as root and neither a `postgres` nor a `nobody` user exists".into())
}

/// A self-signed certificate for 127.0.0.1/localhost and its key, as PEM.
fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key pair");
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate params");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    (cert.pem(), key.serialize_pem())
}
