//! In-process probing for the check-kind tests: a map-backed [`Scope`], an
//! in-memory [`BlobSink`], a [`ProbeContext`] built from them, a one-attempt
//! probe runner and its result with canary assertions.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use crate::support::api::check::{
    no_retry_reason, BlobRef, BlobSink, CheckSpec, Clients, FailureClass, Observation, Outcome,
    ProbeContext,
};
use crate::support::api::runbook::Scope;
use sha2::{Digest, Sha256};

/// Template values from maps.
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

    /// A scope holding one secret.
    pub fn with_secret(name: &str, value: &str) -> Self {
        Self::new().secret(name, value)
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
        self.stored
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
        step: "probe-test",
        read_only: false,
        base_dir: std::path::Path::new(""),
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

    /// Fails the test if `canary` appears, in any encoding
    /// ([`super::canary::find`]), in the reason, the details or any blob.
    pub fn assert_no_canary(&self, canary: &str) {
        let reason = self.reason().as_bytes();
        if let Some(form) = super::canary::find(reason, canary) {
            panic!("canary ({form}) in reason: {}", self.reason());
        }
        let detail = serde_json::to_string(&self.obs.detail).unwrap();
        if let Some(form) = super::canary::find(detail.as_bytes(), canary) {
            panic!("canary ({form}) in detail: {detail}");
        }
        for (role, bytes) in &self.blobs {
            if let Some(form) = super::canary::find(bytes, canary) {
                panic!(
                    "canary ({form}) in blob {role}: {}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }
}

/// Runs one attempt of `spec` with `scope`, a 5 s timeout and fresh blobs.
pub async fn probe(spec: &CheckSpec, scope: &MapScope) -> Probed {
    probe_with_timeout(spec, scope, Duration::from_secs(5)).await
}

pub async fn probe_with_timeout(spec: &CheckSpec, scope: &MapScope, timeout: Duration) -> Probed {
    let blobs = MemoryBlobs::default();
    let clients = Clients::new();
    let obs = spec.probe(&context(scope, &blobs, &clients, timeout)).await;
    let blobs = blobs.stored.into_inner().unwrap();
    Probed {
        kind: spec.kind(),
        obs,
        blobs,
    }
}
