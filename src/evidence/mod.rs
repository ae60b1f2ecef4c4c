//! Evidence bundles: the hash-chained journal, content-addressed blobs, the
//! seal, offline verification, and the redaction every sink goes through.
//!
//! Layout of a bundle (`<artifacts>/<name>/<UTC timestamp>-<run id>/`):
//! `runproof.json` (header), `events.jsonl` (chained records), `blobs/sha256/<hex>`,
//! `runbook.toml` (copy of the input), `summary.md`, `junit.xml`, `seal.json` (last).
//!
//! - [`record`]: the header and journal record formats (shared with the engine);
//! - [`writer`]: [`BundleWriter`] and [`BlobStore`], the only code that writes a bundle;
//! - `event_json`: journal events as JSON (a sweep's `step.pass` written field by field);
//! - [`seal`]: the in-toto seal and the digest/crash-safe-write helpers;
//! - [`signers`]: [`AllowedSigners`], the `allowed_signers` file `verify` checks a signature against;
//! - [`sign`]: [`SealSigner`], the SSHSIG signature of the seal (`seal.json.sig`);
//! - [`read`]: [`read_bundle`], for `show` and reports;
//! - [`verify`]: [`verify_bundle`], offline verification;
//! - [`scan`]: the secret scan behind `verify --scan-secrets-from-env`, and the
//!   credential-shape warnings (`--strict`);
//! - [`redact`]: [`Redactor`], in front of every sink;
//! - `keyed`: the redactor's rules for values under a key (credential
//!   headers, `token = "…"` in TOML), matched by hand;
//! - [`redact_stream`]: a stream redacted a window at a time, as if whole
//!   (the copies of large sweep inputs);
//! - `syncer`: the batched journal's `fdatasync`, on a thread of its own;
//! - `file_syncer`: the copied inputs' `fsync`s, on a thread of their own.

mod event_json;
mod file_syncer;
mod keyed;
pub mod read;
pub mod redact;
pub mod redact_stream;
pub mod scan;
pub mod seal;
pub mod sign;
pub mod signers;
mod syncer;
pub mod verify;
pub mod writer;

#[cfg(test)]
mod tests;

pub use crate::core::record::{Event, Header, Record};
pub use read::{read_bundle, read_head, read_records, Bundle, BundleHead, ReadError};
pub use redact::{is_sensitive_header, redact_url, Redacted, Redactor};
pub use scan::SecretFinding;
pub use seal::{Seal, SealPredicate, Subject};
pub use sign::{SealSigner, SignError, SIGNATURE_FILE, SIGNATURE_NAMESPACE};
pub use signers::{AllowedSigner, AllowedSigners, SignersError};
pub use verify::{
    check_bundle_path, verify_bundle, Check, CheckStatus, NotABundle, Problem, RunbookFile,
    SignerInfo, Verdict, VerifyOptions, VerifyReport,
};
pub use writer::{
    bundle_label, BlobStore, BundleWriter, CopyJob, EventPreparer, PreparedEvent, SyncPolicy,
};
