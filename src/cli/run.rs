//! `runproof run`, `lint` and `plan`: load a runbook, then run it into a
//! bundle, only validate it, or show what would run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::args::{LintArgs, PlanArgs, RunArgs};
use super::CliError;
use crate::engine::{run_runbook, Cancel, RunObserver, RunOptions, RunScope};
use crate::evidence::record::{BundleKind, Header, RunVerdict, SourceRef};
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};
use crate::exit::ExitStatus;
use crate::report::{self, SummaryBuilder, TerminalReporter};
use crate::runbook::duration::format_duration;
use crate::runbook::template::Template;
use crate::runbook::{expiry_warning, load_runbook, LoadError, Runbook, SecretStore};

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
    if let Some(warning) = expiry_warning(&runbook, jiff::ZonedDateTime::now().date()) {
        if args.strict {
            return Err(CliError::invalid(format!(
                "{warning} (refused by --strict)"
            )));
        }
        eprintln!("runproof: warning: {warning}");
    }
    let options = RunOptions {
        allow_mutations: args.allow_mutations,
        only: args.only.clone(),
        resolver: args.resolver,
    };
    for id in &options.only {
        if !runbook.steps.iter().any(|s| &s.id == id) {
            return Err(CliError::invalid(format!(
                "--only {id}: no step with that id in {}",
                args.runbook.display()
            )));
        }
    }
    let env = |name: &str| std::env::var(name).ok();
    let finished = execute(&runbook, &options, &env, &args.artifacts, args.json).await?;
    Ok(finished.status)
}

/// Runs a loaded runbook into a new bundle under `artifacts`, printing
/// progress, the table and the bundle path (or JSON).
pub async fn execute(
    runbook: &Runbook,
    options: &RunOptions,
    env: EnvLookup<'_>,
    artifacts: &Path,
    json: bool,
) -> Result<Finished, CliError> {
    let base_dir = runbook.path.parent().unwrap_or(Path::new("."));
    let secrets = SecretStore::load(&runbook.secrets, base_dir, env)
        .map_err(|e| CliError::invalid(e.to_string()))?;
    for file in secrets.missing_files() {
        eprintln!("runproof: warning: env file {file} does not exist; reading secrets from the environment only");
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
    for name in redactor.weak_secrets() {
        eprintln!(
            "runproof: warning: secret {name} is too short to be redacted by value; only structural rules (URLs, headers, DSNs) protect it"
        );
    }

    let header = new_header(runbook, &redactor);
    let started_at = header.started_at.clone();
    let mut bundle =
        BundleWriter::create(artifacts, header, redactor.clone(), SyncPolicy::EveryRecord)
            .map_err(|e| {
                CliError::internal(format!(
                    "cannot create the evidence bundle under {}: {e}",
                    artifacts.display()
                ))
            })?;
    let write_failed =
        |e: std::io::Error| CliError::internal(format!("cannot write the evidence bundle: {e}"));
    bundle
        .write_file("runbook.toml", runbook.source.as_bytes())
        .map_err(write_failed)?;

    let cancel = Cancel::new();
    cancel
        .install_signal_handlers()
        .map_err(|e| CliError::internal(format!("cannot install signal handlers: {e}")))?;
    let mut terminal = TerminalReporter::new(redactor.clone(), json);
    terminal.line(&format!(
        "runproof: running {} ({} steps), evidence in {}",
        runbook.meta.name,
        runbook.steps.len(),
        bundle.dir().display()
    ));
    let mut summary = SummaryBuilder::new(bundle.run_id(), &runbook.meta.name, &started_at);
    let outcome = {
        let mut observers: Vec<&mut dyn RunObserver> = vec![&mut terminal, &mut summary];
        run_runbook(
            runbook,
            &secrets,
            &mut bundle,
            &mut observers,
            &cancel,
            options,
        )
        .await
    };
    terminal.finish();
    let outcome = outcome.map_err(write_failed)?;
    let summary = summary.finish();

    let bundle_dir = bundle.dir().to_path_buf();
    let bundle_name = bundle_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    bundle
        .write_file(
            "summary.md",
            report::markdown::render(&summary, &bundle_name).as_bytes(),
        )
        .map_err(write_failed)?;
    bundle
        .write_file("junit.xml", report::junit::render(&summary).as_bytes())
        .map_err(write_failed)?;
    bundle.seal().map_err(write_failed)?;

    let status = match outcome.verdict {
        RunVerdict::Pass => ExitStatus::Success,
        RunVerdict::Escalated | RunVerdict::Halted => ExitStatus::Escalated,
        RunVerdict::Interrupted => ExitStatus::Interrupted,
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        let document = serde_json::json!({
            "bundle": bundle_dir.display().to_string(),
            "exit_code": status.code(),
            "run": summary,
        });
        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
        let _ = writeln!(stdout, "{}", redactor.redact(&text));
    } else {
        let table = report::table::render_steps(&summary);
        let verdict = match outcome.verdict {
            RunVerdict::Pass => "all steps passed".to_string(),
            RunVerdict::Escalated => {
                "escalated: see the steps marked escalated/blocked".to_string()
            }
            RunVerdict::Halted => "halted after an escalation (on_escalate = \"halt\")".to_string(),
            RunVerdict::Interrupted => {
                "interrupted; the bundle is sealed as interrupted".to_string()
            }
        };
        let _ = writeln!(
            stdout,
            "\n{}\n{}: {verdict}",
            redactor.redact(&table),
            runbook.meta.name
        );
        let _ = writeln!(stdout, "bundle: {}", bundle_dir.display());
    }
    Ok(Finished {
        status,
        bundle: bundle_dir,
    })
}

fn new_header(runbook: &Runbook, redactor: &Redactor) -> Header {
    let source = SourceRef {
        name: runbook.meta.name.clone(),
        path: runbook.path.display().to_string(),
        sha256: hex::encode(Sha256::digest(runbook.source.as_bytes())),
    };
    let secrets = runbook.secrets.declared().map(str::to_string).collect();
    Header::new(BundleKind::Run, source, secrets, redactor.classes())
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

pub fn lint(args: LintArgs) -> Result<ExitStatus, CliError> {
    let mut failed = Vec::new();
    for path in &args.runbooks {
        match load(path) {
            Ok(runbook) => out!("ok: {} ({} steps)", path.display(), runbook.steps.len()),
            Err(err) => {
                eprintln!("{}", err.message);
                failed.push(path.display().to_string());
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        Err(CliError::invalid(format!(
            "invalid runbook: {}",
            failed.join(", ")
        )))
    }
}

pub fn plan(args: PlanArgs) -> Result<ExitStatus, CliError> {
    let mut runbook = load(&args.runbook)?;
    apply_vars(&mut runbook, &args.vars)?;
    // Secrets are never read for a plan: placeholders stay masked.
    let no_secrets = SecretStore::default();
    let scope = RunScope::new(&runbook.vars, &no_secrets);
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
    for (i, step) in runbook.steps.iter().enumerate() {
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
        out!(
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
        );
        if !step.depends_on.is_empty() {
            out!("   after:   {}", step.depends_on.join(", "));
        }
        if let Some(hint) = &step.hint {
            out!("   hint:    {hint}");
        }
    }
    Ok(ExitStatus::Success)
}
