//! One round of `runproof sweep` as a session: open a `sweep` bundle with
//! the check files copied in, run the sweep while its reports stream to
//! their files (the bundle's `junit.xml` and `summary.md`, and the JUnit,
//! Prometheus, Markdown and baseline files the operator asked for: see
//! [`sweep_sink`](super::sweep_sink)), then seal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::alerts::{notify_changes, wants_notify, CheckStates};
use super::sweep_sink::{RoundListener, RoundSink, BUNDLE_JUNIT, BUNDLE_SUMMARY};
use super::SessionError;
use crate::core::record::{BundleKind, Header, SourceRef};
use crate::engine::Cancel;
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};
use crate::report;
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

/// One round: a bundle, the sweep with its reports streamed to their files,
/// the seal. `listener` (the CLI's `--json`) hears of each check as it
/// finishes.
#[allow(clippy::too_many_arguments)]
pub async fn sweep_round(
    args: &SweepRound<'_>,
    input: &SweepInput,
    plan: &SweepPlan,
    options: &SweepOptions,
    redactor: &Arc<Redactor>,
    states: &mut CheckStates,
    listener: Option<&mut dyn RoundListener>,
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
    let copies: Vec<String> = input
        .files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("inputs/{i:03}-{name}")
        })
        .collect();
    // Streamed, redacted a window at a time (a file of a million checks is
    // never held, nor its redacted copy), on a thread of its own while the
    // first checks run.
    let copy = bundle.copy_job(&copies).map_err(SessionError::Write)?;
    let bundle_dir = bundle.dir().to_path_buf();
    let bundle_label = bundle_dir.display().to_string();
    let notify = wants_notify(plan);
    if notify {
        states.begin_round(&started_at);
    }
    let mut sink = RoundSink::new(
        args,
        &bundle_dir,
        redactor,
        notify.then_some(&mut *states),
        listener,
    )
    .map_err(write_failed)?;
    sink.begin(&bundle_label);
    // A file changed since it was validated (e.g. between `--watch` rounds)
    // stops the round as a change found while the sweep reads it again
    // does: the bundle still ends, sealed, and says why.
    let stop_copied = cancel.child();
    let copied = std::sync::Mutex::new(None);
    let copy_input = || {
        let copying = std::time::Instant::now();
        // One thread: the sweep's threads have the other cores.
        let result = copy.run(1, |i| input.reader(i));
        tracing::debug!(
            "{} input file(s) copied in {} ms",
            copies.len(),
            copying.elapsed().as_millis()
        );
        if result.is_err() {
            stop_copied.cancel();
        }
        *copied.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    };
    let swept = run_sweep(
        plan,
        options,
        &mut bundle,
        &mut sink,
        &stop_copied,
        Some(&copy_input),
    )
    .await;
    // As before the copy ran beside the sweep: only a whole copy is synced.
    let changed = match copied.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(Ok(())) => {
            bundle.copied(copy).map_err(SessionError::Write)?;
            None
        }
        Some(Err(e)) if crate::sweep::plan::InputChanged::is(&e) => Some(e.to_string()),
        Some(Err(e)) => return Err(SessionError::Write(e)),
        None => {
            // The sweep stopped before the copy began: its error says why.
            swept.map_err(write_failed)?;
            let why = "the input was not copied into the bundle";
            return Err(SessionError::Write(std::io::Error::other(why)));
        }
    };
    let mut report = swept.map_err(write_failed)?;
    if let Some(reason) = changed {
        report.stopped.get_or_insert(reason);
    }
    // The states go back from the sink to `[notify]`, which sends the
    // round's changes and records them before `run.end`.
    report.notifications = match sink.release_states() {
        Some(states) => notify_changes(states, args.name, plan, &mut bundle, cancel)
            .await
            .map_err(write_failed)?,
        None => None,
    };
    record_end(&report, &mut bundle, &mut sink).map_err(write_failed)?;
    let output_errors = sink
        .finish(&report, args.name, &bundle_label)
        .map_err(write_failed)?;
    // Written whole (an error for either has returned above), not yet synced.
    bundle.sync_later(&[BUNDLE_JUNIT, BUNDLE_SUMMARY]);
    let missing = bundle.missing_evidence();
    bundle.seal().map_err(write_failed)?;
    if let Some(reason) = report.stopped {
        // Sealed as interrupted, like a round stopped by a signal: now say why.
        return Err(SessionError::StoppedByInput {
            bundle: bundle_dir,
            reason,
        });
    }
    if let Some(error) = output_errors.into_iter().next() {
        return Err(SessionError::Output {
            what: error.what,
            path: error.path,
            source: error.source,
        });
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
