//! `runproof run` as a session: open a `run` bundle for a runbook, drive the
//! engine with the caller's observer beside the summary builder, write
//! `summary.md` and `junit.xml`, seal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Provenance, SessionError};
use crate::core::record::{BundleKind, CopyRef, Header, MissingEvidence, SourceRef};
use crate::engine::{run_runbook, Cancel, RunObserver, RunOptions, RunOutcome};
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};
use crate::report::{self, RunSummary, SummaryBuilder};
use crate::runbook::{Runbook, SecretStore};

/// The runbook's redacted copy inside a `run` bundle.
pub const RUNBOOK_COPY: &str = "runbook.toml";

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
    /// `sha256:…` of the journal's last line: what `verify --expect-head`
    /// takes, for the CI log to keep out of band.
    pub head: String,
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
        provenance: &Provenance,
    ) -> Result<Self, SessionError> {
        let mut header = new_header(runbook, &redactor);
        provenance.stamp(&mut header);
        header.vars_overridden = provenance.overridden_vars.clone();
        header.resumed_from = provenance.resumed_from.clone();
        let started_at = header.started_at.clone();
        let mut bundle = BundleWriter::create(artifacts, header, redactor, SyncPolicy::EveryRecord)
            .map_err(|source| SessionError::Create {
                dir: artifacts.to_path_buf(),
                source,
            })?;
        provenance.arm(&mut bundle);
        bundle
            .write_file(RUNBOOK_COPY, runbook.source.as_bytes())
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
        let context = report_context(self.bundle.header());
        self.bundle
            .write_file(
                "summary.md",
                report::markdown::render_run(&summary, &context).as_bytes(),
            )
            .map_err(SessionError::Write)?;
        self.bundle
            .write_file("junit.xml", report::junit::render(&summary).as_bytes())
            .map_err(SessionError::Write)?;
        let head = self.bundle.head().to_string();
        let missing_evidence = self.bundle.missing_evidence();
        self.bundle.seal().map_err(SessionError::Write)?;
        Ok(RunReport {
            outcome,
            summary,
            bundle: bundle_dir,
            head,
            missing_evidence,
        })
    }
}

/// What a run bundle's header says about its runbook: name, path and the
/// SHA-256 of its bytes as written (what `--resume` compares).
pub fn source_ref(runbook: &Runbook) -> SourceRef {
    SourceRef {
        name: runbook.meta.name.clone(),
        path: runbook.path.display().to_string(),
        sha256: hex::encode(Sha256::digest(runbook.source.as_bytes())),
        copy: None,
    }
}

fn new_header(runbook: &Runbook, redactor: &Redactor) -> Header {
    // The copy in the bundle is redacted on its way to disk: record both
    // digests, so QA can match the file they hold against either.
    let copy = redactor.redact_bytes(runbook.source.as_bytes());
    let source = SourceRef {
        copy: Some(CopyRef {
            path: RUNBOOK_COPY.to_string(),
            sha256: hex::encode(Sha256::digest(&copy)),
        }),
        ..source_ref(runbook)
    };
    let secrets = runbook.secrets.declared().map(str::to_string).collect();
    let mut header = Header::new(BundleKind::Run, source, secrets, redactor.classes());
    header.vars = runbook.vars.clone();
    header.renderer = Some(report::RENDERER_VERSION.to_string());
    header
}

/// What `summary.md` states beyond the events, all from the header, so that
/// `verify` can regenerate it.
pub fn report_context(header: &Header) -> report::markdown::ReportContext {
    report::markdown::ReportContext {
        bundle: crate::evidence::bundle_label(header),
        operator: Some(header.operator.clone()),
        signing_key: header.signing_key.clone(),
    }
}
