//! Sessions: one per command that owns an evidence bundle. A session opens
//! the bundle, drives the engine (or the webhook receiver), writes the
//! bundle's reports and seals it; the CLI above it only parses, prints and
//! maps the result to an exit code.
//!
//! - [`run`]: `runproof run`: a runbook into a `run` bundle.
//! - [`resume`]: `run --resume`: the earlier bundle a run continues.
//! - [`sweep`]: one round of `runproof sweep` into a `sweep` bundle.
//! - [`sweep_sink`]: where a round's checks go as they finish (its reports).
//! - [`alerts`]: a sweep's changes of state, sent to `[notify]`.
//! - [`audit`]: `verify`'s check that a bundle's reports agree with its journal.
//! - [`report`]: `runproof report`: verify bundles and bring them together.
//! - [`listen`]: `runproof webhook listen` into a `listen` bundle.

pub mod alerts;
pub mod audit;
pub mod listen;
pub mod report;
pub mod resume;
pub mod run;
pub mod sweep;
pub mod sweep_sink;

use std::path::PathBuf;
use std::sync::Arc;

use crate::core::record::Header;
use crate::evidence::{BundleWriter, SealSigner};

/// What the command line says about who ran a session and who vouches for
/// its evidence: recorded in the header, and the seal signed.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The operator's name and where it came from (`--operator`,
    /// `RUNPROOF_OPERATOR`, `git`, `USER`); `None` keeps the header's default.
    pub operator: Option<(String, String)>,
    /// Signs `seal.json` (`--sign-key`).
    pub signer: Option<Arc<SealSigner>>,
    /// The `[vars]` set by `--var`.
    pub overridden_vars: Vec<String>,
    /// `run --resume BUNDLE`: the earlier run this one continues.
    pub resumed_from: Option<crate::core::record::ResumedFrom>,
}

impl Provenance {
    /// Writes the operator and signing key into a new bundle's header.
    pub(crate) fn stamp(&self, header: &mut Header) {
        if let Some((name, source)) = &self.operator {
            header.operator = name.clone();
            header.operator_source = Some(source.clone());
        }
        header.signing_key = self.signer.as_ref().map(|s| s.fingerprint());
    }

    /// Hands the signer to the bundle, which signs its seal.
    pub(crate) fn arm(&self, bundle: &mut BundleWriter) {
        bundle.set_signer(self.signer.clone());
    }
}

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
    /// A check file changed while a sweep that streams its checks ran.
    #[error("{0}")]
    InputChanged(std::io::Error),
    /// A check file changed while a sweep read it again: the round stopped
    /// there and its bundle was sealed as interrupted.
    #[error("{reason}; the round stopped there, its bundle sealed as interrupted: {}", .bundle.display())]
    StoppedByInput { bundle: PathBuf, reason: String },
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
