//! `runproof sweep`: load check files, then run one round (or one per
//! `--watch` interval), each into its own sealed bundle, and write the
//! requested outputs.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use super::args::SweepArgs;
use super::CliError;
use crate::engine::Cancel;
use crate::evidence::record::{BundleKind, Header, RunVerdict, SourceRef, StepVerdict};
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};
use crate::exit::ExitStatus;
use crate::report::{self, prometheus, RunSummary, StepSummary, SummaryBuilder};
use crate::sweep::baseline::{write_atomically, Baseline};
use crate::sweep::input::{load_input, plan, InputError, SweepInput};
use crate::sweep::run::{run_sweep, SweepOptions, SweepPlan, SweepReport};
use crate::sweep::select::Shard;

/// Journal records between syncs in a sweep: an interrupted sweep verifies up
/// to its last synced record, without paying an fsync per check.
const SYNC_EVERY: u32 = 512;

pub async fn sweep(args: SweepArgs) -> Result<ExitStatus, CliError> {
    let shard = args
        .shard
        .as_deref()
        .map(Shard::parse)
        .transpose()
        .map_err(CliError::invalid)?;
    if args.samples == 0 {
        return Err(CliError::invalid("--samples must be at least 1"));
    }
    if args.regression_factor <= 1.0 {
        return Err(CliError::invalid("--regression-factor must be above 1.0"));
    }
    let input_error = |e: InputError| CliError::invalid(e.to_string());
    let mut input = load_input(&args.paths).map_err(input_error)?;
    let env = |name: &str| std::env::var(name).ok();
    let (plan, secret_names) = plan(&mut input, &args.only, shard, &env).map_err(input_error)?;
    let baseline = match &args.baseline {
        Some(path) => Some((
            Baseline::load(path)
                .map_err(|e| CliError::invalid(format!("--baseline {}: {e}", path.display())))?,
            args.regression_factor,
        )),
        None => None,
    };
    let options = SweepOptions {
        concurrency: args.concurrency.unwrap_or_else(default_concurrency),
        samples: args.samples,
        baseline,
        resolver: args.resolver,
    };
    let redactor = Arc::new(Redactor::new(&plan.secrets.pairs()));
    let cancel = Cancel::new();
    cancel
        .install_signal_handlers()
        .map_err(|e| CliError::internal(format!("cannot install signal handlers: {e}")))?;

    let mut round = 0u64;
    loop {
        round += 1;
        let (report, bundle) = sweep_once(
            &args,
            &input,
            &plan,
            &secret_names,
            &options,
            &redactor,
            &cancel,
        )
        .await?;
        let status = exit_status(&report);
        if args.watch.is_some() {
            print_round_line(&args, round, &report, &bundle, &redactor);
        } else {
            print_report(&args, &report, &bundle, &redactor);
        }
        let Some(interval) = args.watch else {
            return Ok(status);
        };
        if report.verdict == RunVerdict::Interrupted {
            return Ok(ExitStatus::Interrupted);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return Ok(ExitStatus::Interrupted),
        }
    }
}

/// One round: a bundle, the sweep, the bundle's reports, the seal, then the
/// files the operator asked for.
async fn sweep_once(
    args: &SweepArgs,
    input: &SweepInput,
    plan: &SweepPlan,
    secret_names: &[String],
    options: &SweepOptions,
    redactor: &Arc<Redactor>,
    cancel: &Cancel,
) -> Result<(SweepReport, String), CliError> {
    let source = SourceRef {
        name: args.name.clone(),
        path: args
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        sha256: input.digest.clone(),
    };
    let header = Header::new(
        BundleKind::Sweep,
        source,
        secret_names.to_vec(),
        redactor.classes(),
    );
    let started_at = header.started_at.clone();
    let mut bundle = BundleWriter::create(
        &args.artifacts,
        header,
        redactor.clone(),
        SyncPolicy::Batched(SYNC_EVERY),
    )
    .map_err(|e| {
        CliError::internal(format!(
            "cannot create the evidence bundle under {}: {e}",
            args.artifacts.display()
        ))
    })?;
    let write_failed =
        |e: std::io::Error| CliError::internal(format!("cannot write the evidence bundle: {e}"));
    for (i, file) in input.files.iter().enumerate() {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bundle
            .write_file(&format!("inputs/{i:03}-{name}"), file.source.as_bytes())
            .map_err(write_failed)?;
    }
    let mut summary = SummaryBuilder::new(bundle.run_id(), &args.name, &started_at);
    summary.reserve_steps(plan.checks.len() * args.samples.max(1) as usize);
    let report = run_sweep(plan, options, &mut bundle, &mut summary, cancel)
        .await
        .map_err(write_failed)?;
    let summary = summary.finish();
    let bundle_dir = bundle.dir().to_path_buf();
    let bundle_label = bundle_dir.display().to_string();
    let markdown = report::markdown::render_sweep(&report, &args.name, &bundle_label);
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
    let junit = report::junit::render_with_regressions(&per_check(summary, &report), &regressions);
    bundle
        .write_file("summary.md", markdown.as_bytes())
        .map_err(write_failed)?;
    bundle
        .write_file("junit.xml", junit.as_bytes())
        .map_err(write_failed)?;
    bundle.seal().map_err(write_failed)?;

    let output_failed = |what: &str, path: &Path, e: std::io::Error| {
        CliError::internal(format!("cannot write {what} {}: {e}", path.display()))
    };
    if let Some(path) = &args.junit {
        write_atomically(path, redactor.redact(&junit).as_bytes())
            .map_err(|e| output_failed("--junit", path, e))?;
    }
    if let Some(path) = &args.prometheus {
        let text = prometheus::render(
            &metrics(&report),
            jiff::Timestamp::now().as_millisecond() as f64 / 1000.0,
        );
        write_atomically(path, redactor.redact(&text).as_bytes())
            .map_err(|e| output_failed("--prometheus", path, e))?;
    }
    if let Some(path) = &args.markdown {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| output_failed("--markdown", path, e))?;
        file.write_all(redactor.redact(&markdown).as_bytes())
            .map_err(|e| output_failed("--markdown", path, e))?;
    }
    if let Some(path) = &args.save_baseline {
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
    Ok((report, bundle_label))
}

/// The summary with one step per check, in plan order. With `--samples K` the
/// journal holds steps `ID#1`…`ID#K`; JUnit wants one testcase per check, so
/// the samples fold into the first one that did not pass (else the last),
/// keeping every sample's failed attempts (JUnit `flakyFailure`s).
fn per_check(summary: RunSummary, report: &SweepReport) -> RunSummary {
    // One sample per check: the journal's steps are the checks already.
    if !summary.steps.iter().any(|s| s.id.contains('#')) {
        return summary;
    }
    let mut by_check: HashMap<&str, Vec<&StepSummary>> = HashMap::new();
    for step in &summary.steps {
        // Check ids cannot contain `#` (letters, digits, `_`, `-`).
        let id = step
            .id
            .split_once('#')
            .map_or(step.id.as_str(), |(id, _)| id);
        by_check.entry(id).or_default().push(step);
    }
    let steps = report
        .checks
        .iter()
        .filter_map(|check| {
            let samples = by_check.get(check.id.as_str())?;
            let decisive = samples
                .iter()
                .find(|s| s.verdict != Some(StepVerdict::Pass))
                .or(samples.last())?;
            let mut step = (*decisive).clone();
            step.id = check.id.clone();
            step.duration_ms = samples.iter().map(|s| s.duration_ms).sum();
            step.failed_attempts = samples
                .iter()
                .flat_map(|s| s.failed_attempts.iter().cloned())
                .collect();
            Some(step)
        })
        .collect();
    RunSummary { steps, ..summary }
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

fn exit_status(report: &SweepReport) -> ExitStatus {
    match report.verdict {
        RunVerdict::Pass => ExitStatus::Success,
        RunVerdict::Interrupted => ExitStatus::Interrupted,
        RunVerdict::Escalated | RunVerdict::Halted => ExitStatus::Escalated,
    }
}

fn print_report(args: &SweepArgs, report: &SweepReport, bundle: &str, redactor: &Redactor) {
    let mut out = std::io::stdout().lock();
    if args.json {
        let document = serde_json::json!({ "name": args.name, "bundle": bundle, "sweep": report });
        let _ = writeln!(
            out,
            "{}",
            redactor.redact(&serde_json::to_string_pretty(&document).unwrap_or_default())
        );
        return;
    }
    let table = report::table::render_checks(report);
    let counts = counts_line(report);
    let _ = writeln!(out, "{}", redactor.redact(&table));
    let _ = writeln!(
        out,
        "{}: {} checks in {:.2}s ({counts})",
        args.name,
        report.checks.len(),
        report.duration_ms / 1000.0
    );
    let _ = writeln!(out, "bundle: {bundle}");
}

/// `--watch`: one compact line per round.
fn print_round_line(
    args: &SweepArgs,
    round: u64,
    report: &SweepReport,
    bundle: &str,
    redactor: &Redactor,
) {
    if args.json {
        let document = serde_json::json!({ "round": round, "name": args.name, "bundle": bundle, "sweep": report });
        out!("{}", redactor.redact(&document.to_string()));
        return;
    }
    let counts = counts_line(report);
    let worst_p95 = report
        .checks
        .iter()
        .filter_map(|c| c.latency.map(|l| l.p95_ms))
        .fold(0.0, f64::max);
    out!(
        "round {round} {}: {counts}; worst p95 {}; bundle {bundle}",
        report.started_at,
        report::table::format_latency(worst_p95)
    );
}

/// Checks are network-bound: several in flight per core.
fn default_concurrency() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    (cores * 8).clamp(16, 128)
}

/// "12 pass, 1 fail, 2 blocked"
fn counts_line(report: &SweepReport) -> String {
    report
        .counts
        .iter()
        .map(|(verdict, n)| format!("{n} {verdict}"))
        .collect::<Vec<_>>()
        .join(", ")
}
