//! Evidence blobs as the rest of the crate sees them: a [`BlobSink`] that
//! stores bytes (the bundle implements it) and the [`BlobRef`] a record keeps.

use std::io;

use serde::{Deserialize, Serialize};

/// Where probes put bodies and output: redacted, content-addressed, durable
/// before the record that references them.
pub trait BlobSink: Send + Sync {
    /// Stores `bytes` (already capped by the caller) and returns its reference.
    fn put(&self, role: &str, bytes: &[u8], truncated: bool) -> io::Result<BlobRef>;

    /// Makes `value`, found while the run goes on (a `secret = true`
    /// capture), a secret named `name` for this sink's redaction and every
    /// other sink sharing its redactor: call it before anything holding the
    /// value is stored or recorded. Sinks without redaction ignore it.
    fn register_secret(&self, name: &str, value: &str) {
        let _ = (name, value);
    }
}

/// A stored blob, as referenced from an `attempt.end` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// What it is: `response.body`, `stdout`, `stderr`, …
    pub role: String,
    /// `sha256:<hex>` of the stored (redacted) bytes; the file is `blobs/sha256/<hex>`.
    pub digest: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Whether the original was longer than the cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}
