//! One round of `runproof sweep` as a session: open a `sweep` bundle with
//! the check files copied in, run the sweep, write the bundle's reports, seal,
//! then write the files the operator asked for (JUnit, Prometheus, Markdown,
//! a latency baseline).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::alerts::{notify_changes, CheckStates};
use super::SessionError;
use crate::core::record::{BundleKind, Header, SourceRef};
use crate::engine::Cancel;
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};
use crate::report::{self, prometheus, SummaryBuilder};
use crate::sweep::baseline::{write_atomically, Baseline};
use crate::sweep::input::SweepInput;
use crate::sweep::run::{record_end, run_sweep, SweepOptions, SweepPlan, SweepReport};

/// Journal records between syncs in a sweep: an interrupted sweep verifies up
/// to its last synced record, without paying an fsync per check.
const SYNC_EVERY: u32 = 512;

/// What one round is asked to produce, besides the sweep itself.
pub struct SweepRound<'a> {
    /// The sweep's name (`--name`).
    pub name: &'a str,
    /// The check files or folders as given.
    pub paths: &'a [PathBuf],
    pub artifacts: &'a Path,
    pub samples: u32,
    pub junit: Option<&'a Path>,
    pub prometheus: Option<&'a Path>,
    pub markdown: Option<&'a Path>,
    pub save_baseline: Option<&'a Path>,
    /// Operator and seal signer.
    pub provenance: &'a super::Provenance,
    /// The secrets the check files declare (named in the header).
    pub secret_names: &'a [String],
    /// `--shard k/n`, recorded in the header so `report` can merge shards.
    pub shard: Option<crate::sweep::select::Shard>,
    /// `--only`, recorded with the shard.
    pub only: &'a [String],
}

/// One round: a bundle, the sweep, the bundle's reports, the seal, then the
/// files the operator asked for.
pub async fn sweep_round(
    args: &SweepRound<'_>,
    input: &SweepInput,
    plan: &SweepPlan,
    options: &SweepOptions,
    redactor: &Arc<Redactor>,
    states: &mut CheckStates,
    cancel: &Cancel,
) -> Result<(SweepReport, String), SessionError> {
    let source = SourceRef {
        name: args.name.to_string(),
        path: args
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        sha256: input.digest.clone(),
        copy: None,
    };
    let mut header = Header::new(
        BundleKind::Sweep,
        source,
        args.secret_names.to_vec(),
        redactor.classes(),
    );
    args.provenance.stamp(&mut header);
    header.shard = args.shard.map(|s| crate::core::record::ShardRef {
        index: s.index,
        count: s.count,
        only: args.only.to_vec(),
    });
    header.renderer = Some(report::RENDERER_VERSION.to_string());
    let started_at = header.started_at.clone();
    let mut bundle = BundleWriter::create(
        args.artifacts,
        header,
        redactor.clone(),
        SyncPolicy::Batched(SYNC_EVERY),
    )
    .map_err(|source| SessionError::Create {
        dir: args.artifacts.to_path_buf(),
        source,
    })?;
    args.provenance.arm(&mut bundle);
    let write_failed = |e: std::io::Error| {
        if crate::sweep::plan::InputChanged::is(&e) {
            SessionError::InputChanged(e)
        } else {
            SessionError::Write(e)
        }
    };
    for (i, file) in input.files.iter().enumerate() {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = input.source(i).map_err(write_failed)?;
        bundle
            .write_file(&format!("inputs/{i:03}-{name}"), source.as_bytes())
            .map_err(write_failed)?;
    }
    let mut summary = SummaryBuilder::new(bundle.run_id(), args.name, &started_at);
    summary.reserve_steps(plan.len * args.samples.max(1) as usize);
    let mut report = run_sweep(plan, options, &mut bundle, &mut summary, cancel)
        .await
        .map_err(write_failed)?;
    report.notifications = notify_changes(states, args.name, plan, &report, &mut bundle, cancel)
        .await
        .map_err(write_failed)?;
    record_end(&report, &mut bundle, &mut summary).map_err(write_failed)?;
    let summary = summary.finish();
    let bundle_dir = bundle.dir().to_path_buf();
    let bundle_label = bundle_dir.display().to_string();
    let markdown = report::markdown::render_sweep(&report, args.name, &bundle_label);
    let regressions: HashMap<&str, &str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == crate::sweep::run::CheckVerdict::Regressed)
        .map(|c| {
            (
                c.id.as_str(),
                c.reason.as_deref().unwrap_or("latency regressed"),
            )
        })
        .collect();
    let junit = report::junit::render_with_regressions(&summary.per_check(), &regressions);
    bundle
        .write_file("summary.md", markdown.as_bytes())
        .map_err(write_failed)?;
    bundle
        .write_file("junit.xml", junit.as_bytes())
        .map_err(write_failed)?;
    let missing = bundle.missing_evidence();
    let bundle_dir = bundle.dir().to_path_buf();
    bundle.seal().map_err(write_failed)?;

    let output_failed =
        |what: &'static str, path: &Path, source: std::io::Error| SessionError::Output {
            what,
            path: path.to_path_buf(),
            source,
        };
    if let Some(path) = args.junit {
        write_atomically(path, redactor.redact(&junit).as_bytes())
            .map_err(|e| output_failed("--junit", path, e))?;
    }
    if let Some(path) = args.prometheus {
        let text = prometheus::render(
            &metrics(&report),
            jiff::Timestamp::now().as_millisecond() as f64 / 1000.0,
        );
        write_atomically(path, redactor.redact(&text).as_bytes())
            .map_err(|e| output_failed("--prometheus", path, e))?;
    }
    if let Some(path) = args.markdown {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| output_failed("--markdown", path, e))?;
        file.write_all(redactor.redact(&markdown).as_bytes())
            .map_err(|e| output_failed("--markdown", path, e))?;
    }
    if let Some(path) = args.save_baseline {
        let baseline = Baseline {
            version: 1,
            created_at: report.started_at.clone(),
            checks: report
                .checks
                .iter()
                .filter_map(|c| c.latency.map(|l| (c.id.clone(), l)))
                .collect(),
        };
        baseline
            .save(path)
            .map_err(|e| output_failed("--save-baseline", path, e))?;
    }
    if !missing.is_empty() {
        // Sealed, outputs written: now report the lost evidence (exit 3).
        return Err(SessionError::MissingEvidence {
            bundle: bundle_dir,
            missing,
        });
    }
    Ok((report, bundle_label))
}

fn metrics(report: &SweepReport) -> Vec<prometheus::CheckMetrics> {
    use crate::sweep::run::CheckVerdict;
    report
        .checks
        .iter()
        .filter(|c| c.verdict != CheckVerdict::Interrupted)
        .map(|c| prometheus::CheckMetrics {
            id: c.id.clone(),
            kind: c.kind.to_string(),
            tags: c.tags.clone(),
            success: match c.verdict {
                CheckVerdict::Blocked => None,
                verdict => Some(verdict.healthy() || verdict == CheckVerdict::Regressed),
            },
            duration_seconds: c.latency.map(|l| l.p50_ms / 1000.0),
            attempts: c.attempts,
            regressed: c.verdict == CheckVerdict::Regressed,
        })
        .collect()
}

/// `sweep --watch --keep N`: deletes all but the newest `keep` sealed sweep
/// bundles in `rounds` (one sweep's folder), oldest first by name (bundle
/// folders start with their UTC timestamp). Only folders holding a sweep
/// bundle's `runproof.json` and `seal.json` are touched. Returns how many
/// were deleted.
pub fn prune_rounds(rounds: &Path, keep: usize) -> std::io::Result<usize> {
    let bundles = sealed_rounds(rounds)?;
    let excess = bundles.len().saturating_sub(keep);
    for old in &bundles[..excess] {
        std::fs::remove_dir_all(old)?;
    }
    Ok(excess)
}

/// The sealed sweep bundles in `rounds`, oldest first (their names start
/// with the round's UTC time).
pub fn sealed_rounds(rounds: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(rounds)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| is_sealed_sweep_bundle(path))
        .collect();
    bundles.sort();
    Ok(bundles)
}

fn is_sealed_sweep_bundle(path: &Path) -> bool {
    if !path.join("seal.json").is_file() {
        return false;
    }
    std::fs::read(path.join("runproof.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Header>(&bytes).ok())
        .is_some_and(|header| header.kind == BundleKind::Sweep)
}
