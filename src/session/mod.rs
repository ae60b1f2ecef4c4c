//! Sessions: one per command that owns an evidence bundle. A session opens
//! the bundle, drives the engine (or the webhook receiver), writes the
//! bundle's reports and seals it; the CLI above it only parses, prints and
//! maps the result to an exit code.
//!
//! - [`run`]: `runproof run`: a runbook into a `run` bundle.
//! - [`resume`]: `run --resume`: the earlier bundle a run continues.
//! - [`sweep`]: one round of `runproof sweep` into a `sweep` bundle.
//! - [`listen`]: `runproof webhook listen` into a `listen` bundle.

pub mod listen;
pub mod resume;
pub mod run;
pub mod sweep;

use std::path::PathBuf;

/// Why a session could not keep its evidence: runproof's own failure, never
/// the checked service's.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot create the evidence bundle under {}: {source}", .dir.display())]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the evidence bundle: {0}")]
    Write(std::io::Error),
    #[error("cannot write {what} {}: {source}", .path.display())]
    Output {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bundle is sealed, but evidence in it could not be written; its
    /// `evidence.error` record lists the same.
    #[error("{}", missing_message(.bundle, .missing))]
    MissingEvidence {
        bundle: PathBuf,
        missing: Vec<crate::core::record::MissingEvidence>,
    },
}

/// One line per missing blob: the full path and the cause.
fn missing_message(
    bundle: &std::path::Path,
    missing: &[crate::core::record::MissingEvidence],
) -> String {
    missing
        .iter()
        .map(|m| {
            format!(
                "evidence not written: {}: {} ({} of {} bytes; listed in the bundle's evidence.error record)",
                bundle.join(&m.path).display(),
                m.cause,
                m.role,
                m.size
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
