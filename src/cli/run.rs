//! `runproof run`, `lint` and `plan`: load a runbook, then run it into a
//! bundle, only validate it, or show what would run.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::{LintArgs, PlanArgs, RunArgs};
use super::confirm::CliConfirmer;
use super::CliError;
use crate::check::CheckSpec;
use crate::cli::exit::ExitStatus;
use crate::core::duration::format_duration;
use crate::core::record::RunVerdict;
use crate::core::template::Template;
use crate::engine::{Cancel, Mutations, RunOptions, RunScope};
use crate::evidence::Redactor;
use crate::report::paint::Paint;
use crate::report::{self, TerminalReporter};
use crate::runbook::model::CheckFile;
use crate::runbook::{
    expiry_warning, is_check_file, load_check_file, load_runbook, LoadError, Runbook, SecretStore,
    Step,
};
use crate::session::run::{RunReport, RunSession};
use crate::session::Provenance;

/// Looks up environment values; the demo injects its own token through it.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What a finished run leaves behind.
pub struct Finished {
    pub status: ExitStatus,
    pub bundle: PathBuf,
}

pub async fn run(args: RunArgs) -> Result<ExitStatus, CliError> {
    let mut runbook = load(&args.runbook)?;
    apply_vars(&mut runbook, &args.vars)?;
    warn_literal_notify_credentials(runbook.notify.as_deref(), &runbook.path);
    if let Some(warning) = expiry_warning(&runbook, jiff::ZonedDateTime::now().date()) {
        if args.strict {
            return Err(CliError::invalid(format!(
                "{warning} (refused by --strict)"
            )));
        }
        super::style::eprint_diagnostics(&format!("runproof: warning: {warning}"));
    }
    let options = RunOptions {
        mutations: mutations(args.allow_mutations.as_ref())?,
        confirmer: Some(Arc::new(CliConfirmer::new(
            &args.confirm,
            super::confirm::operator_name(),
        ))),
        only: args.only.clone(),
        resolver: args.resolver,
        resume: match &args.resume {
            Some(dir) => Some(
                crate::session::resume::load_resume(dir, &runbook)
                    .map_err(|e| CliError::invalid(e.to_string()))?,
            ),
            None => None,
        },
    };
    for (id, _) in &args.confirm {
        let is_confirm = runbook
            .steps
            .iter()
            .any(|s| &s.id == id && s.check.kind() == "confirm");
        if !is_confirm {
            return Err(CliError::invalid(format!(
                "--confirm {id}: no `confirm` step with that id in {}",
                args.runbook.display()
            )));
        }
    }
    for id in &options.only {
        if !runbook.steps.iter().any(|s| &s.id == id) {
            return Err(CliError::invalid(format!(
                "--only {id}: no step with that id in {}",
                args.runbook.display()
            )));
        }
    }
    let overridden = args.vars.iter().map(|(k, _)| k.clone()).collect();
    let provenance = super::provenance::resolve(&args.provenance, overridden)?;
    let env = |name: &str| std::env::var(name).ok();
    let finished = execute(
        &runbook,
        &options,
        &env,
        &args.artifacts,
        args.json,
        &provenance,
    )
    .await?;
    Ok(finished.status)
}

/// The run's last line: the verdict and what each step came to, e.g.
/// `passed: 3 passed, 12 skipped` or `escalated: 1 escalated, 2 blocked, 4 passed`;
/// a resumed run says how many passed earlier (`5 passed (2 earlier, not run again)`).
/// Verdict words are coloured when `paint` is on.
fn closing_line(outcome: &crate::engine::RunOutcome, paint: Paint) -> String {
    let count = |verdict: &str| outcome.counts.get(verdict).copied().unwrap_or(0);
    let parts: Vec<String> = [
        ("escalated", "escalated"),
        ("blocked", "blocked"),
        ("unconfirmed", "unconfirmed"),
        ("interrupted", "interrupted"),
        ("pass", "passed"),
        ("skipped", "skipped"),
    ]
    .iter()
    .filter(|(key, _)| count(key) > 0)
    .map(|(key, label)| {
        let earlier = if *key == "pass" && outcome.passed_earlier > 0 {
            format!(" ({} earlier, not run again)", outcome.passed_earlier)
        } else {
            String::new()
        };
        format!("{} {}{earlier}", count(key), paint.verdict(label))
    })
    .collect();
    let counts = parts.join(", ");
    match outcome.verdict {
        RunVerdict::Pass => format!("{}: {counts}", paint.verdict("passed")),
        RunVerdict::Unconfirmed => format!(
            "{}: {counts}; confirm with --confirm ID (or --confirm ID=\"note\"), or run on a terminal to answer",
            paint.verdict("unconfirmed")
        ),
        RunVerdict::Escalated if count("escalated") == 0 => {
            format!(
                "{}: {counts} (see the steps marked blocked)",
                paint.verdict("blocked")
            )
        }
        RunVerdict::Escalated => {
            format!(
                "{}: {counts} (see the steps marked escalated/blocked)",
                paint.verdict("escalated")
            )
        }
        RunVerdict::Halted => {
            format!(
                "{} after an escalation (on_escalate = \"halt\"): {counts}",
                paint.verdict("halted")
            )
        }
        RunVerdict::Interrupted => {
            format!(
                "{}; the bundle is sealed as interrupted: {counts}",
                paint.verdict("interrupted")
            )
        }
    }
}

/// `--allow-mutations` (every mutating step) or `--allow-mutations=TAG,...`.
fn mutations(flag: Option<&Option<String>>) -> Result<Mutations, CliError> {
    Ok(match flag {
        None => Mutations::Forbidden,
        Some(None) => Mutations::All,
        Some(Some(list)) => {
            let tags: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            if tags.is_empty() {
                return Err(CliError::invalid(
                    "--allow-mutations=: name at least one tag, or give the flag without `=` to allow every mutating step",
                ));
            }
            Mutations::Tagged(tags)
        }
    })
}

/// Runs a loaded runbook into a new bundle under `artifacts`, printing
/// progress, the table and the bundle path (or JSON).
pub async fn execute(
    runbook: &Runbook,
    options: &RunOptions,
    env: EnvLookup<'_>,
    artifacts: &Path,
    json: bool,
    provenance: &Provenance,
) -> Result<Finished, CliError> {
    let base_dir = runbook.path.parent().unwrap_or(Path::new("."));
    let secrets = SecretStore::load(&runbook.secrets, base_dir, env)
        .map_err(|e| CliError::invalid(e.to_string()))?;
    for file in secrets.missing_files() {
        super::style::eprint_diagnostics(&format!(
            "runproof: warning: env file {file} does not exist; reading secrets from the environment only"
        ));
    }
    let missing = secrets.missing_required();
    if !missing.is_empty() {
        return Err(CliError::invalid(format!(
            "missing required secret{}: {} (set {} in the environment or an env file listed in [secrets])",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
        )));
    }
    let redactor = Arc::new(Redactor::new(&secrets.pairs()));
    crate::evidence::redact::set_log_redactor(redactor.clone());
    for name in redactor.weak_secrets() {
        super::style::eprint_diagnostics(&format!(
            "runproof: warning: secret {name} is too short to be redacted by value; only structural rules (URLs, headers, DSNs) protect it"
        ));
    }

    let mut provenance = provenance.clone();
    provenance.resumed_from = options.resume.as_ref().map(|r| r.from.clone());
    let session = RunSession::open(runbook, redactor.clone(), artifacts, &provenance)
        .map_err(|e| CliError::internal(e.to_string()))?;
    let cancel = Cancel::new();
    super::signals::install_signal_handlers(&cancel)
        .map_err(|e| CliError::internal(format!("cannot install signal handlers: {e}")))?;
    // With `--json`, stdout is reserved for the document: progress goes to stderr.
    let (out, is_tty): (Box<dyn std::io::Write + Send>, bool) = if json {
        (Box::new(std::io::stderr()), std::io::stderr().is_terminal())
    } else {
        (Box::new(std::io::stdout()), std::io::stdout().is_terminal())
    };
    let spinner = is_tty && std::io::stderr().is_terminal();
    let paint = if json {
        super::style::stderr()
    } else {
        super::style::stdout()
    };
    let mut terminal = TerminalReporter::new(redactor.clone(), out, spinner).with_paint(paint);
    terminal.line(&format!(
        "runproof: running {} ({} steps), evidence in {}",
        runbook.meta.name,
        runbook.steps.len(),
        session.dir().display()
    ));
    if let Some(resume) = &options.resume {
        terminal.line(&format!(
            "runproof: resuming run {} ({}): {} step(s) passed there and are not run again",
            resume.from.run_id,
            resume.from.path,
            runbook
                .steps
                .iter()
                .filter(|s| resume.earlier_pass(s).is_some())
                .count()
        ));
    }
    let report = session
        .drive(&secrets, &mut terminal, &cancel, options)
        .await;
    terminal.finish();
    let RunReport {
        outcome,
        summary,
        bundle: bundle_dir,
        head,
        missing_evidence,
    } = report.map_err(|e| CliError::internal(e.to_string()))?;

    let mut status = match outcome.verdict {
        RunVerdict::Pass => ExitStatus::Success,
        RunVerdict::Escalated | RunVerdict::Halted | RunVerdict::Unconfirmed => {
            ExitStatus::Escalated
        }
        RunVerdict::Interrupted => ExitStatus::Interrupted,
    };
    // Evidence that could not be written is runproof's own failure (exit 3),
    // whatever the steps did: the bundle says what is missing.
    if !missing_evidence.is_empty() {
        status = ExitStatus::Internal;
        for missing in &missing_evidence {
            eprintln!(
                "runproof: error: evidence not written: {}: {} ({} of {} bytes; listed in the bundle's evidence.error record)",
                bundle_dir.join(&missing.path).display(),
                missing.cause,
                missing.role,
                missing.size
            );
        }
    }
    let mut stdout = std::io::stdout().lock();
    if json {
        let mut document = serde_json::json!({
            "bundle": bundle_dir.display().to_string(),
            "head": head,
            "exit_code": status.code(),
            "run": summary,
        });
        if let Some(resume) = &options.resume {
            document["resumed_from"] = serde_json::json!(resume.from);
        }
        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
        let _ = writeln!(stdout, "{}", redactor.redact(&text));
    } else {
        let paint = super::style::stdout();
        let table = paint.table_column(&report::table::render_steps(&summary), 3);
        let verdict = closing_line(&outcome, paint);
        let _ = writeln!(
            stdout,
            "\n{}\n{}: {verdict}",
            redactor.redact(&table),
            runbook.meta.name
        );
        // The head, for the CI log: QA checks the bundle against it later
        // with `verify --expect-head`.
        let _ = writeln!(stdout, "head: {head}");
        let _ = writeln!(stdout, "bundle: {}", bundle_dir.display());
    }
    Ok(Finished {
        status,
        bundle: bundle_dir,
    })
}

/// Loads a runbook, turning diagnostics into an exit-2 error.
pub fn load(path: &Path) -> Result<Runbook, CliError> {
    load_runbook(path).map_err(|err| match err {
        LoadError::Invalid { rendered, .. } => CliError::invalid(rendered),
        other => CliError::invalid(other.to_string()),
    })
}

/// Applies `--var KEY=VALUE` overrides; unknown keys are an error.
pub fn apply_vars(runbook: &mut Runbook, vars: &[(String, String)]) -> Result<(), CliError> {
    for (key, value) in vars {
        match runbook.vars.get_mut(key) {
            Some(slot) => *slot = value.clone(),
            None => {
                return Err(CliError::invalid(format!(
                    "--var {key}: the runbook has no var `{key}` in [vars]"
                )))
            }
        }
    }
    Ok(())
}

/// A file given to `lint` or `plan`: a runbook, or a sweep's check file
/// (recognised by its `[[check]]` entries).
enum Loaded {
    Runbook(Runbook),
    Checks(CheckFile),
}

/// Loads `path` as a runbook or as a check file, whichever it is.
fn load_any(path: &Path) -> Result<Loaded, CliError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| CliError::invalid(format!("cannot read {}: {e}", path.display())))?;
    if !is_check_file(&source) {
        return load(path).map(Loaded::Runbook);
    }
    load_check_file(path, &source)
        .map(Loaded::Checks)
        .map_err(|err| match err {
            LoadError::Invalid { rendered, .. } => CliError::invalid(rendered),
            other => CliError::invalid(other.to_string()),
        })
}

/// Warns of each `[notify]` credential the file at `path` writes as it is
/// (the value is never printed).
pub(super) fn warn_literal_notify_credentials(
    notify: Option<&crate::runbook::model::NotifyConfig>,
    path: &Path,
) {
    for warning in notify
        .map(|n| n.literal_credential_warnings(path))
        .unwrap_or_default()
    {
        super::style::eprint_diagnostics(&format!("runproof: warning: {warning}"));
    }
}

pub fn lint(args: LintArgs) -> Result<ExitStatus, CliError> {
    let mut failed = Vec::new();
    for path in &args.runbooks {
        match load_any(path) {
            Ok(Loaded::Runbook(runbook)) => {
                // The same expiry rule as `run`: a warning, an error with --strict.
                if let Some(warning) = expiry_warning(&runbook, jiff::ZonedDateTime::now().date()) {
                    if args.strict {
                        eprintln!("runproof: error: {warning} (refused by --strict)");
                        failed.push(path.display().to_string());
                        continue;
                    }
                    eprintln!("runproof: warning: {warning}");
                }
                warn_literal_notify_credentials(runbook.notify.as_deref(), path);
                out!("ok: {} ({} steps)", path.display(), runbook.steps.len())
            }
            Ok(Loaded::Checks(file)) => {
                warn_literal_notify_credentials(file.notify.as_deref(), path);
                out!(
                    "ok: {} (check file, {} checks)",
                    path.display(),
                    file.checks.len()
                )
            }
            Err(err) => {
                super::style::eprint_diagnostics(&err.message);
                failed.push(path.display().to_string());
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        Err(CliError::invalid(format!(
            "invalid file{}: {}",
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        )))
    }
}

pub fn plan(args: PlanArgs) -> Result<ExitStatus, CliError> {
    let runbook = match load_any(&args.runbook)? {
        Loaded::Runbook(runbook) => runbook,
        Loaded::Checks(mut file) => {
            apply_check_vars(std::slice::from_mut(&mut file), &args.vars)?;
            out!("check file: {}", file.path.display());
            let declared: Vec<&str> = file.secrets.declared().collect();
            if !declared.is_empty() {
                out!("secrets: {}", declared.join(", "));
            }
            print_steps(&file.checks, &file.vars);
            return Ok(ExitStatus::Success);
        }
    };
    let mut runbook = runbook;
    apply_vars(&mut runbook, &args.vars)?;
    let meta = &runbook.meta;
    out!("runbook: {} ({})", meta.name, runbook.path.display());
    if let Some(warning) = expiry_warning(&runbook, jiff::ZonedDateTime::now().date()) {
        out!("warning: {warning}");
    }
    if let Some(owner) = &meta.owner {
        out!("owner: {owner}");
    }
    out!(
        "on_escalate: {}",
        match meta.on_escalate {
            crate::runbook::model::OnEscalate::Continue => "continue",
            crate::runbook::model::OnEscalate::Halt => "halt",
        }
    );
    let declared: Vec<&str> = runbook.secrets.declared().collect();
    if !declared.is_empty() {
        out!("secrets: {}", declared.join(", "));
    }
    print_steps(&runbook.steps, &runbook.vars);
    Ok(ExitStatus::Success)
}

/// Applies `--var KEY=VALUE` to every check file that declares the key; a key
/// no file declares is an error (a typo would otherwise change nothing).
pub fn apply_check_vars(
    files: &mut [CheckFile],
    vars: &[(String, String)],
) -> Result<(), CliError> {
    for (key, value) in vars {
        let mut used = false;
        for file in files.iter_mut() {
            if let Some(slot) = file.vars.get_mut(key) {
                *slot = value.clone();
                used = true;
            }
        }
        if !used {
            return Err(CliError::invalid(format!(
                "--var {key}: no check file has a var `{key}` in [vars]"
            )));
        }
    }
    Ok(())
}

/// The numbered steps (or checks) of a plan, targets rendered with secrets
/// masked.
fn print_steps(steps: &[Step], vars: &std::collections::BTreeMap<String, String>) {
    // Secrets are never read for a plan: placeholders stay masked.
    let no_secrets = SecretStore::default();
    let scope = RunScope::new(vars, &no_secrets);
    for (i, step) in steps.iter().enumerate() {
        let target = Template::parse(&step.check.target())
            .map(|t| t.render_masked(&scope))
            .unwrap_or_else(|_| step.check.target());
        out!(
            "\n{}. {} [{}]{}",
            i + 1,
            step.id,
            step.check.kind(),
            if step.mutating { " (mutating)" } else { "" }
        );
        if let Some(title) = &step.title {
            out!("   {title}");
        }
        out!("   target:  {target}");
        let policy = &step.policy;
        // The engine's rule (engine::retry): some kinds never retry.
        match crate::engine::retry::kind_no_retry_reason(step.check.kind()) {
            Some(why) => out!(
                "   policy:  1 attempt, never retried ({why}), timeout {}",
                format_duration(policy.timeout)
            ),
            None => out!(
                "   policy:  {} attempt(s), timeout {} each, backoff {}..{}{}",
                policy.max_attempts(),
                format_duration(policy.timeout),
                policy.backoff.initial,
                policy.backoff.max,
                if policy.backoff.jitter {
                    " with jitter"
                } else {
                    ""
                }
            ),
        }
        if !step.depends_on.is_empty() {
            out!("   after:   {}", step.depends_on.join(", "));
        }
        if !step.tags.is_empty() {
            out!("   tags:    {}", step.tags.join(", "));
        }
        // What a read-only run sends, so nobody learns it from the receiver.
        match &*step.check {
            CheckSpec::Webhook(_) => out!(
                "   sends:   the signed delivery only with --allow-mutations (an allowed tag); read-only, only the rejection probes"
            ),
            CheckSpec::WebhookDelivery(d) if d.trigger.is_some() && !d.retrigger => {
                out!("   sends:   the trigger once; a retry waits again for the delivery")
            }
            _ => {}
        }
        if let Some(hint) = &step.hint {
            out!("   hint:    {hint}");
        }
    }
}
