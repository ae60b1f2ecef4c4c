//! Shared helpers for the platform check tests: a map-backed scope, an
//! in-memory blob sink, a probe runner, and canary assertions. The fixture
//! servers (all on 127.0.0.1) live in the submodules.

#![allow(dead_code)]

pub mod fly;
pub mod hostile;
pub mod pgwire;
pub mod resp;
pub mod supabase;
pub mod tls;

use runproof::core::FailureClass;
use runproof::engine::retry::no_retry_reason;
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use runproof::check::{BlobRef, BlobSink, CheckSpec, Clients, Observation, Outcome, ProbeContext};
use runproof::core::template::Scope;
use sha2::{Digest, Sha256};

/// Template values for a test.
#[derive(Default)]
pub struct MapScope {
    pub vars: HashMap<String, String>,
    pub secrets: HashMap<String, String>,
    pub env: HashMap<String, String>,
}

impl MapScope {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.to_string(), value.to_string());
        self
    }

    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }
}

impl Scope for MapScope {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned()
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn capture(&self, _step: &str, _name: &str) -> Option<String> {
        None
    }
}

/// Keeps blobs in memory so tests can look inside them.
#[derive(Default)]
pub struct MemBlobs(pub Mutex<Vec<(String, Vec<u8>)>>);

impl BlobSink for MemBlobs {
    fn put(&self, role: &str, bytes: &[u8], truncated: bool) -> io::Result<BlobRef> {
        self.0
            .lock()
            .unwrap()
            .push((role.to_string(), bytes.to_vec()));
        Ok(BlobRef {
            role: role.to_string(),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            size: bytes.len() as u64,
            truncated,
        })
    }
}

/// Parses a step's parameters (TOML, without `check = …`) into a spec.
pub fn spec(kind: &str, toml_text: &str) -> CheckSpec {
    let de = toml::de::Deserializer::parse(toml_text).expect("valid TOML");
    CheckSpec::deserialize_kind(kind, de)
        .unwrap_or_else(|err| panic!("{kind} spec does not deserialize: {err}"))
        .unwrap_or_else(|| panic!("unknown kind {kind}"))
}

/// The result of one probe, with everything it stored.
pub struct Probed {
    pub kind: &'static str,
    pub obs: Observation,
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl Probed {
    pub fn reason(&self) -> &str {
        match &self.obs.outcome {
            Outcome::Pass => "",
            Outcome::Fail(failure) => &failure.message,
        }
    }

    /// The failure's class, when the attempt failed.
    pub fn class(&self) -> Option<FailureClass> {
        match &self.obs.outcome {
            Outcome::Pass => None,
            Outcome::Fail(failure) => Some(failure.class),
        }
    }

    /// Whether the engine would skip the remaining retries after this attempt.
    pub fn permanent(&self) -> bool {
        match &self.obs.outcome {
            Outcome::Pass => false,
            Outcome::Fail(failure) => no_retry_reason(self.kind, failure).is_some(),
        }
    }

    pub fn passed(&self) -> bool {
        self.obs.passed()
    }

    pub fn detail(&self, key: &str) -> &serde_json::Value {
        self.obs.detail.get(key).unwrap_or(&serde_json::Value::Null)
    }

    /// Fails the test if `canary` appears in the reason, the details or any blob.
    pub fn assert_no_canary(&self, canary: &str) {
        assert!(
            !self.reason().contains(canary),
            "canary in reason: {}",
            self.reason()
        );
        let detail = serde_json::to_string(&self.obs.detail).unwrap();
        assert!(!detail.contains(canary), "canary in detail: {detail}");
        for (role, bytes) in &self.blobs {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains(canary), "canary in blob {role}: {text}");
        }
    }
}

/// Runs one attempt of `spec` with `scope`, a 5 s timeout and fresh blobs.
pub async fn probe(spec: &CheckSpec, scope: &MapScope) -> Probed {
    probe_with_timeout(spec, scope, Duration::from_secs(5)).await
}

pub async fn probe_with_timeout(spec: &CheckSpec, scope: &MapScope, timeout: Duration) -> Probed {
    let blobs = MemBlobs::default();
    let clients = Clients::new().expect("clients");
    let ctx = ProbeContext {
        scope,
        blobs: &blobs,
        clients: &clients,
        timeout,
        run_id: "test-run",
        attempt: 1,
    };
    let obs = spec.probe(&ctx).await;
    let blobs = blobs.0.into_inner().unwrap();
    Probed {
        kind: spec.kind(),
        obs,
        blobs,
    }
}

/// A loopback port nothing listens on: bind, note the port, close.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
