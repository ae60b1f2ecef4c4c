//! runproof: deployment runbooks as declarative checks, run under a
//! "two retries, then escalate" policy, leaving a sealed evidence bundle that
//! `runproof verify` checks offline.
//!
//! The modules follow the flow of a run:
//! - [`runbook`]: the TOML file — model, loading, validation, diagnostics, templates, secrets.
//! - [`check`]: one file per check kind; `probe` performs exactly one attempt.
//! - [`engine`]: the run loop — retries, backoff, timeouts, escalation, cancellation.
//! - [`evidence`]: the bundle — journal, blobs, seal, verification, redaction.
//! - [`report`]: consumers of run events — terminal, JUnit, Markdown, JSON.
//! - [`sweep`]: many checks concurrently, with latency figures and metrics.
//! - [`webhook`]: Chatwoot webhook signing, sample events and the delivery receiver.
//! - [`cli`]: argument parsing and the mapping of outcomes to exit codes.

pub mod check;
pub mod cli;
pub mod core;
pub mod engine;
pub mod evidence;
pub mod report;
pub mod runbook;
pub mod session;
pub mod sweep;
pub mod webhook;
