//! Evidence bundles: the hash-chained journal, content-addressed blobs, the
//! seal, offline verification, and the redaction every sink goes through.
//!
//! Layout of a bundle (`<artifacts>/<name>/<UTC timestamp>-<run id>/`):
//! `runproof.json` (header), `events.jsonl` (chained records), `blobs/sha256/<hex>`,
//! `runbook.toml` (copy of the input), `summary.md`, `junit.xml`, `seal.json` (last).

pub mod record;
pub mod redact;
pub mod verify;
pub mod writer;

pub use record::{Event, Header, Record};
pub use redact::Redactor;
pub use verify::{verify_bundle, VerifyOptions, VerifyReport};
pub use writer::{BundleWriter, SyncPolicy};
