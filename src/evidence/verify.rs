//! `runproof verify`: recompute the chain, digests and semantics of a bundle
//! offline. STUB.

use std::path::Path;

/// What QA asks verify to check beyond integrity.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// `(name, value)` secrets to scan every file for, with their encodings.
    pub scan_secrets: Vec<(String, String)>,
}

/// The verdict and its evidence.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub valid: bool,
}

impl VerifyReport {
    /// Whether the bundle verified. STUB.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// JSON. STUB.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"valid": self.valid})
    }

    /// One-line verdict and a table. STUB.
    pub fn render_text(&self) -> String {
        format!("{}", if self.valid { "VERIFIED" } else { "INVALID" })
    }
}

/// Verifies the bundle in `dir`.
pub fn verify_bundle(dir: &Path, options: &VerifyOptions) -> VerifyReport {
    let _ = (dir, options);
    VerifyReport { valid: false }
}
