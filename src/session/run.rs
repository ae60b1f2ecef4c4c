//! `runproof run` as a session: open a `run` bundle for a runbook, drive the
//! engine with the caller's observer beside the summary builder, write
//! `summary.md` and `junit.xml`, seal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::SessionError;
use crate::core::record::{BundleKind, Header, MissingEvidence, ResumedFrom, SourceRef};
use crate::engine::{run_runbook, Cancel, RunObserver, RunOptions, RunOutcome};
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};
use crate::report::{self, RunSummary, SummaryBuilder};
use crate::runbook::{Runbook, SecretStore};

/// An open `run` bundle, with the runbook already copied in.
pub struct RunSession<'a> {
    runbook: &'a Runbook,
    bundle: BundleWriter,
    started_at: String,
}

/// What a sealed run leaves behind.
pub struct RunReport {
    pub outcome: RunOutcome,
    pub summary: RunSummary,
    /// The sealed bundle's folder.
    pub bundle: PathBuf,
    /// Evidence that could not be written (recorded in `evidence.error`):
    /// the run is then runproof's failure, whatever its verdict.
    pub missing_evidence: Vec<MissingEvidence>,
}

impl<'a> RunSession<'a> {
    /// Creates the bundle under `artifacts` and copies the runbook into it.
    pub fn open(
        runbook: &'a Runbook,
        redactor: Arc<Redactor>,
        artifacts: &Path,
    ) -> Result<Self, SessionError> {
        Self::open_resumed(runbook, redactor, artifacts, None)
    }

    /// [`RunSession::open`] for a run that continues an earlier one: the
    /// header records which (`resumed_from`).
    pub fn open_resumed(
        runbook: &'a Runbook,
        redactor: Arc<Redactor>,
        artifacts: &Path,
        resumed_from: Option<ResumedFrom>,
    ) -> Result<Self, SessionError> {
        let mut header = new_header(runbook, &redactor);
        header.resumed_from = resumed_from;
        let started_at = header.started_at.clone();
        let mut bundle = BundleWriter::create(artifacts, header, redactor, SyncPolicy::EveryRecord)
            .map_err(|source| SessionError::Create {
                dir: artifacts.to_path_buf(),
                source,
            })?;
        bundle
            .write_file("runbook.toml", runbook.source.as_bytes())
            .map_err(SessionError::Write)?;
        Ok(RunSession {
            runbook,
            bundle,
            started_at,
        })
    }

    /// The bundle's folder.
    pub fn dir(&self) -> &Path {
        self.bundle.dir()
    }

    /// Runs the runbook (`observer` sees every event after the journal has
    /// it), writes the bundle's reports and seals it.
    pub async fn drive(
        mut self,
        secrets: &SecretStore,
        observer: &mut dyn RunObserver,
        cancel: &Cancel,
        options: &RunOptions,
    ) -> Result<RunReport, SessionError> {
        let runbook = self.runbook;
        let mut summary =
            SummaryBuilder::new(self.bundle.run_id(), &runbook.meta.name, &self.started_at);
        let outcome = {
            let mut observers: Vec<&mut dyn RunObserver> = vec![observer, &mut summary];
            run_runbook(
                runbook,
                secrets,
                &mut self.bundle,
                &mut observers,
                cancel,
                options,
            )
            .await
            .map_err(SessionError::Write)?
        };
        let summary = summary.finish();
        let bundle_dir = self.bundle.dir().to_path_buf();
        let bundle_name = bundle_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.bundle
            .write_file(
                "summary.md",
                report::markdown::render(&summary, &bundle_name).as_bytes(),
            )
            .map_err(SessionError::Write)?;
        self.bundle
            .write_file("junit.xml", report::junit::render(&summary).as_bytes())
            .map_err(SessionError::Write)?;
        let missing_evidence = self.bundle.missing_evidence();
        self.bundle.seal().map_err(SessionError::Write)?;
        Ok(RunReport {
            outcome,
            summary,
            bundle: bundle_dir,
            missing_evidence,
        })
    }
}

/// What a run bundle's header says about its runbook: name, path and the
/// SHA-256 of its bytes (what `--resume` compares).
pub fn source_ref(runbook: &Runbook) -> SourceRef {
    SourceRef {
        name: runbook.meta.name.clone(),
        path: runbook.path.display().to_string(),
        sha256: hex::encode(Sha256::digest(runbook.source.as_bytes())),
    }
}

fn new_header(runbook: &Runbook, redactor: &Redactor) -> Header {
    let source = source_ref(runbook);
    let secrets = runbook.secrets.declared().map(str::to_string).collect();
    Header::new(BundleKind::Run, source, secrets, redactor.classes())
}
