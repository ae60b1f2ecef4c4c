//! `runproof sweep`: load check files, then run one round (or one per
//! `--watch` interval), each into its own sealed bundle, and write the
//! requested outputs.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;

use super::args::SweepArgs;
use super::CliError;
use crate::cli::exit::ExitStatus;
use crate::core::record::RunVerdict;
use crate::engine::Cancel;
use crate::evidence::Redactor;
use crate::report;
use crate::report::paint::Paint;
use crate::session::alerts::CheckStates;
use crate::session::sweep::{prune_rounds, sweep_round, SweepRound};
use crate::session::sweep_sink::RoundListener;
use crate::session::SessionError;
use crate::sweep::baseline::Baseline;
use crate::sweep::input::{load_input, plan, InputError};
use crate::sweep::run::{CheckReport, SweepOptions, SweepReport};
use crate::sweep::select::Shard;

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
    if let Some(interval) = args.watch {
        if interval < MIN_WATCH_INTERVAL {
            return Err(CliError::invalid(format!(
                "--watch {}: the interval must be at least 1s (each round writes a bundle)",
                humantime_like(interval)
            )));
        }
    }
    // Who runs this (git is asked: two process starts) and the signing
    // key, found while the input is read; the redactor's rules are built
    // there too, off the path to the first check.
    let provenance = {
        let args = args.provenance.clone();
        std::thread::spawn(move || {
            crate::evidence::redact::compile_rules();
            super::provenance::resolve(&args, Vec::new())
        })
    };
    let input_error = |e: InputError| CliError::invalid(e.to_string());
    let mut input = load_input(&args.paths).map_err(input_error)?;
    super::run::apply_check_vars(&mut input.files, &args.vars)?;
    for file in &input.files {
        super::run::warn_literal_notify_credentials(file.notify.as_deref(), &file.path);
    }
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
        // A bar only for a person watching: not into a pipe or a file.
        progress: (!args.json
            && std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal())
        .then(|| Arc::new(super::progress::TerminalProgress::new()) as _),
    };
    let redactor = Arc::new(Redactor::new(&plan.secrets.pairs()));
    crate::evidence::redact::set_log_redactor(redactor.clone());
    let provenance = provenance
        .join()
        .map_err(|_| CliError::internal("resolving the operator panicked".to_string()))??;
    let cancel = Cancel::new();
    super::signals::install_signal_handlers(&cancel)
        .map_err(|e| CliError::internal(format!("cannot install signal handlers: {e}")))?;

    let mut round = 0u64;
    // Which checks were failing, across rounds: `[notify]` hears of changes.
    // A watch carries on from where an earlier watch of this sweep stopped.
    let mut states = if args.watch.is_some() && plan.notify.iter().any(Option::is_some) {
        CheckStates::continuing(&args.artifacts.join(&args.name))
    } else {
        CheckStates::default()
    };
    loop {
        round += 1;
        let round_config = SweepRound {
            name: &args.name,
            paths: &args.paths,
            artifacts: &args.artifacts,
            samples: args.samples,
            junit: args.junit.as_deref(),
            prometheus: args.prometheus.as_deref(),
            markdown: args.markdown.as_deref(),
            save_baseline: args.save_baseline.as_deref(),
            provenance: &provenance,
            secret_names: &secret_names,
            shard,
            only: &args.only,
        };
        // `--json`: the document goes out as checks finish (one line per
        // round with `--watch`).
        let mut json = args
            .json
            .then(|| JsonStream::new(&args.name, args.watch.map(|_| round), redactor.clone()));
        let round_result = sweep_round(
            &round_config,
            &input,
            &plan,
            &options,
            &redactor,
            &mut states,
            json.as_mut().map(|j| j as &mut dyn RoundListener),
            &cancel,
        )
        .await;
        let (report, bundle) = match round_result {
            Ok(round) => round,
            Err(e) => {
                // `--json` still ends as one whole document, saying why.
                if let Some(json) = json {
                    let _ = json.fail(&e.to_string());
                }
                return Err(match e {
                    SessionError::InputChanged(_) | SessionError::StoppedByInput { .. } => {
                        CliError::invalid(e.to_string())
                    }
                    e => CliError::internal(e.to_string()),
                });
            }
        };
        let status = exit_status(&report);
        let Some(interval) = args.watch else {
            match json {
                Some(json) => {
                    let _ = json.finish(&report);
                }
                None => print_report(&args, &report, &bundle, &redactor),
            }
            // The process exits next, and a held plan is freed with it:
            // freeing 10,000 held checks one by one took 3-4 ms after the
            // bundle was sealed and the report printed.
            std::mem::forget(plan);
            return Ok(status);
        };
        // The round's bundle is sealed by now. A reader that went away
        // (`sweep --watch 1s | head -1`) ends the watch with that round's
        // status: nobody is left to read the next one.
        let printed = match json {
            Some(json) => json.finish(&report),
            None => print_round_line(round, &report, &bundle),
        };
        if printed.is_err() {
            return Ok(status);
        }
        if let Some(rounds) = std::path::Path::new(&bundle).parent() {
            if let Err(e) = prune_rounds(rounds, args.keep.max(1)) {
                eprintln!(
                    "runproof: warning: cannot prune old rounds in {}: {e}",
                    rounds.display()
                );
            }
        }
        if report.verdict == RunVerdict::Interrupted {
            return Ok(ExitStatus::Interrupted);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return Ok(ExitStatus::Interrupted),
            _ = stdout_closed() => return Ok(status),
        }
    }
}

/// The shortest `--watch` interval: each round writes a sealed bundle, and a
/// loop with no pause only fills the disk.
const MIN_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// `1.5s`, `250ms`, `0s`: the interval as the user wrote it, near enough.
fn humantime_like(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Resolves once stdout's reader has gone away (a pipe whose read end is
/// closed polls as POLLERR, a socket as POLLHUP); never for a terminal or a
/// file. Checked between rounds so a closed pipe ends the watch promptly.
async fn stdout_closed() {
    loop {
        let mut fd = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: 0,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd, zero timeout.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        if ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn exit_status(report: &SweepReport) -> ExitStatus {
    match report.verdict {
        RunVerdict::Pass => ExitStatus::Success,
        RunVerdict::Interrupted => ExitStatus::Interrupted,
        RunVerdict::Escalated | RunVerdict::Halted | RunVerdict::Unconfirmed => {
            ExitStatus::Escalated
        }
    }
}

fn print_report(args: &SweepArgs, report: &SweepReport, bundle: &str, redactor: &Redactor) {
    let mut out = std::io::stdout().lock();
    let paint = super::style::stdout();
    let table = paint.table_column(&report::table::render_checks(report), 2);
    let counts = counts_line(report, paint);
    let _ = writeln!(out, "{}", redactor.redact(&table));
    let _ = writeln!(
        out,
        "{}: {} checks in {:.2}s ({counts})",
        args.name,
        report.tally.total(),
        report.duration_ms / 1000.0
    );
    if let Some(line) = notifications_line(report) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "bundle: {bundle}");
}

/// "notified: 2 changes, 4 deliveries; 1 undelivered (see the bundle's
/// notify records)", when the check files have a `[notify]` and something
/// changed.
fn notifications_line(report: &SweepReport) -> Option<String> {
    let n = report.notifications.filter(|n| n.changes > 0)?;
    let mut line = format!(
        "notified: {} change{} of state, {} deliver{}",
        n.changes,
        if n.changes == 1 { "" } else { "s" },
        n.delivered,
        if n.delivered == 1 { "y" } else { "ies" }
    );
    if n.undelivered > 0 {
        line.push_str(&format!(
            "; {} undelivered (see the bundle's notify records)",
            n.undelivered
        ));
    }
    Some(line)
}

/// `--watch`: one compact line per round. An error means stdout is closed.
fn print_round_line(round: u64, report: &SweepReport, bundle: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let counts = counts_line(report, super::style::stdout());
    let worst_p95 = report.tally.worst_p95_ms().unwrap_or(0.0);
    let notified = notifications_line(report)
        .map(|line| format!("; {line}"))
        .unwrap_or_default();
    writeln!(
        out,
        "round {round} {}: {counts}; worst p95 {}{notified}; bundle {bundle}",
        report.started_at,
        report::table::format_latency(worst_p95)
    )?;
    out.flush()
}

/// Checks are network-bound: several in flight per core.
fn default_concurrency() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    (cores * 8).clamp(16, 128)
}

/// "12 pass, 1 fail, 2 blocked" (verdicts coloured on a terminal)
fn counts_line(report: &SweepReport, paint: Paint) -> String {
    report
        .counts
        .iter()
        .map(|(verdict, n)| format!("{n} {}", paint.verdict(&verdict.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--json` on stdout, written as checks finish so that a sweep never holds
/// every check: `{"name", "bundle", "sweep": {"checks": [...], then the
/// sweep's other fields}}`. Pretty-printed for one round; one line per round
/// with `--watch` (then it starts with `"round"`). A round that fails ends
/// its document all the same ([`JsonStream::fail`]): whoever parses stdout
/// gets one whole document, with an `"error"`. Every piece is redacted
/// before it is written. A failed write (stdout closed) stops the stream,
/// never the sweep.
struct JsonStream {
    name: String,
    /// `--watch`: the round, and one compact line.
    round: Option<u64>,
    redactor: Arc<Redactor>,
    out: std::io::BufWriter<std::io::Stdout>,
    checks: u64,
    /// Whether the head (up to `"checks": [`) is out.
    begun: bool,
    failed: Option<std::io::Error>,
}

impl JsonStream {
    fn new(name: &str, round: Option<u64>, redactor: Arc<Redactor>) -> JsonStream {
        JsonStream {
            name: name.to_string(),
            round,
            redactor,
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            checks: 0,
            begun: false,
            failed: None,
        }
    }

    fn pretty(&self) -> bool {
        self.round.is_none()
    }

    fn write(&mut self, text: &str) {
        if self.failed.is_none() {
            if let Err(err) = self.out.write_all(self.redactor.redact(text).as_bytes()) {
                self.failed = Some(err);
            }
        }
    }

    /// Ends a round that failed: the checks written so far, the sweep
    /// closed with no other field, then `"error": message` (the document is
    /// `{"name", "error"}` alone when the round failed before its bundle
    /// was made). An `Err` means stdout is closed.
    fn fail(mut self, message: &str) -> std::io::Result<()> {
        let error = serde_json::Value::from(message);
        let mut text = String::new();
        if !self.begun {
            let name = serde_json::Value::from(self.name.as_str());
            text = match self.round {
                None => format!("{{\n  \"name\": {name},\n  \"error\": {error}\n}}\n"),
                Some(round) => {
                    format!("{{\"round\":{round},\"name\":{name},\"error\":{error}}}\n")
                }
            };
        } else if self.pretty() {
            text.push_str(if self.checks > 0 { "\n    ]" } else { "]" });
            text.push_str(&format!("\n  }},\n  \"error\": {error}\n}}\n"));
        } else {
            text.push_str(&format!("]}},\"error\":{error}}}\n"));
        }
        self.write(&text);
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        self.out.flush()
    }

    /// Ends the document with the sweep's fields (all but its checks, which
    /// are out already) and flushes it; an `Err` means stdout is closed.
    fn finish(mut self, report: &SweepReport) -> std::io::Result<()> {
        let fields = match serde_json::to_value(report) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        let mut text = String::new();
        if self.pretty() {
            text.push_str(if self.checks > 0 { "\n    ]" } else { "]" });
            for (key, value) in &fields {
                let value = serde_json::to_string_pretty(value).unwrap_or_default();
                text.push_str(&format!(
                    ",\n    {}: {}",
                    serde_json::Value::from(key.as_str()),
                    value.replace('\n', "\n    ")
                ));
            }
            text.push_str("\n  }\n}\n");
        } else {
            text.push(']');
            for (key, value) in &fields {
                text.push_str(&format!(
                    ",{}:{value}",
                    serde_json::Value::from(key.as_str())
                ));
            }
            text.push_str("}}\n");
        }
        self.write(&text);
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        self.out.flush()
    }
}

impl RoundListener for JsonStream {
    fn begin(&mut self, bundle: &str) {
        let name = serde_json::Value::from(self.name.as_str());
        let bundle = serde_json::Value::from(bundle);
        let head = match self.round {
            None => format!(
                "{{\n  \"name\": {name},\n  \"bundle\": {bundle},\n  \"sweep\": {{\n    \"checks\": ["
            ),
            Some(round) => format!(
                "{{\"round\":{round},\"name\":{name},\"bundle\":{bundle},\"sweep\":{{\"checks\":["
            ),
        };
        self.write(&head);
        self.begun = true;
    }

    fn check(&mut self, check: &CheckReport) {
        let separator = if self.checks == 0 { "" } else { "," };
        self.checks += 1;
        let text = if self.pretty() {
            let body = serde_json::to_string_pretty(check).unwrap_or_default();
            format!("{separator}\n      {}", body.replace('\n', "\n      "))
        } else {
            format!(
                "{separator}{}",
                serde_json::to_string(check).unwrap_or_default()
            )
        };
        self.write(&text);
    }
}
