//! Argument definitions: every subcommand and flag, with its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Runbooks as declarative checks, run under a retry policy, leaving sealed
/// evidence that `runproof verify` checks offline.
#[derive(Debug, Parser)]
#[command(name = "runproof", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 all passed / bundle valid, 1 a step escalated or was blocked, \
2 invalid runbook or usage, 3 runproof itself failed, 4 verification failed, 130 interrupted.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a runbook and write its evidence bundle.
    Run(RunArgs),
    /// Validate runbooks without running anything.
    Lint(LintArgs),
    /// Show every resolved step and its policy (secrets masked); runs nothing.
    Plan(PlanArgs),
    /// Run the built-in demo against local targets, then verify its bundle.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook (TOML).
    pub runbook: PathBuf,
    /// Where bundles are written: <DIR>/<runbook name>/<timestamp>-<run id>/.
    #[arg(long, default_value = "artifacts", value_name = "DIR")]
    pub artifacts: PathBuf,
    /// Run steps marked `mutating = true`.
    #[arg(long)]
    pub allow_mutations: bool,
    /// Refuse to run an expired runbook.
    #[arg(long)]
    pub strict: bool,
    /// Run only this step (and what it depends on); repeatable.
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Override a `[vars]` value; repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
    /// Print the run as one JSON document on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Runbooks to validate.
    #[arg(required = true)]
    pub runbooks: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook (TOML).
    pub runbook: PathBuf,
    /// Override a `[vars]` value; repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo's bundle is written.
    #[arg(long, default_value = "artifacts", value_name = "DIR")]
    pub artifacts: PathBuf,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}
