//! `runproof run --resume BUNDLE`: reading the earlier run a new one
//! continues. The earlier bundle must verify, be a `run` bundle and have run
//! the same runbook (byte for byte); what it yields is the steps that passed
//! there, each with the link the new journal records for it.

use std::collections::HashMap;
use std::path::Path;

use crate::core::record::{BundleKind, EarlierPass, Event, ResumedFrom, StepVerdict};
use crate::engine::Resume;
use crate::evidence::{check_bundle_path, read_bundle, verify_bundle, Verdict, VerifyOptions};
use crate::runbook::Runbook;

/// Why an earlier bundle cannot be resumed from (a usage error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("--resume {path}: {message}")]
    Refused { path: String, message: String },
}

/// Reads and checks the bundle at `dir` for resuming `runbook`.
pub fn load_resume(dir: &Path, runbook: &Runbook) -> Result<Resume, ResumeError> {
    let shown = dir.display().to_string();
    let refuse = |message: String| ResumeError::Refused {
        path: shown.clone(),
        message,
    };
    check_bundle_path(dir).map_err(|e| refuse(e.to_string()))?;
    let report = verify_bundle(dir, &VerifyOptions::default());
    match &report.verdict {
        Verdict::Verified | Verdict::VerifiedInterrupted => {}
        Verdict::Incomplete { .. } => {
            return Err(refuse(
                "the bundle is not sealed (its run crashed or is still going on): only a sealed bundle that verifies can be resumed from".into(),
            ))
        }
        other => {
            let first = report
                .problems
                .first()
                .map(|p| format!(": {}: {}", p.location(), p.message))
                .unwrap_or_default();
            return Err(refuse(format!(
                "the bundle does not verify ({}){first}; see `runproof verify {shown}`",
                other.label()
            )));
        }
    }
    let bundle = read_bundle(dir).map_err(|e| refuse(e.to_string()))?;
    let header = &bundle.header;
    if header.kind != BundleKind::Run {
        let kind = match header.kind {
            BundleKind::Sweep => "sweep",
            BundleKind::Listen => "webhook listen",
            BundleKind::Run => "run",
        };
        return Err(refuse(format!(
            "it is a {kind} bundle: only a `runproof run` bundle can be resumed from"
        )));
    }
    let expected = super::run::source_ref(runbook);
    if header.source.sha256 != expected.sha256 {
        return Err(refuse(format!(
            "it ran a different runbook: `{}` ({}, sha256 {}), not {} (sha256 {}); a run resumes only the same runbook, byte for byte",
            header.source.name,
            header.source.path,
            short(&header.source.sha256),
            runbook.path.display(),
            short(&expected.sha256),
        )));
    }
    let seal_head = bundle
        .seal
        .as_ref()
        .map(|s| s.predicate.head.clone())
        .ok_or_else(|| refuse("the bundle has no seal".into()))?;
    let mut passed = HashMap::new();
    for record in &bundle.records {
        if let Event::StepEnd {
            step,
            verdict: StepVerdict::Pass,
            ..
        } = &record.event
        {
            passed.insert(
                step.clone(),
                EarlierPass {
                    run_id: header.run_id.clone(),
                    seal_head: seal_head.clone(),
                    seq: record.seq,
                },
            );
        }
    }
    Ok(Resume {
        from: ResumedFrom {
            run_id: header.run_id.clone(),
            seal_head,
            path: shown.clone(),
        },
        passed,
    })
}

/// The first 12 hex digits of a digest, enough to tell two apart.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
