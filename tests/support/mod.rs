//! Test helpers shared by the webhook tests: a map-backed [`Scope`], an
//! in-memory [`BlobSink`], and a [`ProbeContext`] built from them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use runproof::check::{BlobRef, BlobSink, Clients, ProbeContext};
use runproof::runbook::template::Scope;

/// Template values from maps.
#[derive(Default)]
pub struct MapScope {
    pub vars: HashMap<String, String>,
    pub secrets: HashMap<String, String>,
}

impl MapScope {
    pub fn with_secret(name: &str, value: &str) -> Self {
        let mut scope = MapScope::default();
        scope.secrets.insert(name.to_string(), value.to_string());
        scope
    }
}

impl Scope for MapScope {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned()
    }
    fn env(&self, _name: &str) -> Option<String> {
        None
    }
    fn capture(&self, _step: &str, _name: &str) -> Option<String> {
        None
    }
}

/// Blobs kept in memory, in the order stored.
#[derive(Default)]
pub struct MemoryBlobs {
    pub stored: Mutex<Vec<(String, Vec<u8>)>>,
}

impl MemoryBlobs {
    /// Every stored blob's bytes, concatenated, as lossy text (for canary checks).
    pub fn all_text(&self) -> String {
        self.stored
            .lock()
            .unwrap()
            .iter()
            .map(|(role, bytes)| format!("{role}: {}\n", String::from_utf8_lossy(bytes)))
            .collect()
    }

    pub fn roles(&self) -> Vec<String> {
        self.stored
            .lock()
            .unwrap()
            .iter()
            .map(|(role, _)| role.clone())
            .collect()
    }
}

impl BlobSink for MemoryBlobs {
    fn put(&self, role: &str, bytes: &[u8], truncated: bool) -> io::Result<BlobRef> {
        use sha2::Digest;
        self.stored
            .lock()
            .unwrap()
            .push((role.to_string(), bytes.to_vec()));
        Ok(BlobRef {
            role: role.to_string(),
            digest: format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))),
            size: bytes.len() as u64,
            truncated,
        })
    }
}

pub const RUN_ID: &str = "0190aaaa-0000-7000-8000-00000000feed";

/// A context over `scope` and `blobs` with the given per-attempt timeout.
pub fn context<'a>(
    scope: &'a MapScope,
    blobs: &'a MemoryBlobs,
    clients: &'a Clients,
    timeout: Duration,
) -> ProbeContext<'a> {
    ProbeContext {
        scope,
        blobs,
        clients,
        timeout,
        run_id: RUN_ID,
        attempt: 1,
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain reqwest client for driving fixtures. reqwest is built without a
/// process-wide TLS provider, so `reqwest::Client::new()` would panic; the
/// fixtures speak plain HTTP, so an empty root store is enough.
pub fn http_client() -> reqwest::Client {
    // ring, as runproof itself uses (deprecated upstream only for lacking
    // post-quantum key exchange).
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("a plain HTTP client builds")
}
