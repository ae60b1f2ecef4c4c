//! Argument definitions: every subcommand and flag, with its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use super::provenance::ProvenanceArgs;
use crate::check::resolve::ResolverAddr;

/// Runbooks as declarative checks, run under a retry policy, leaving sealed
/// evidence that `runproof verify` checks offline.
#[derive(Debug, Parser)]
#[command(name = "runproof", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 all passed / bundle valid, 1 a step escalated or was blocked, \
2 invalid runbook or usage, 3 runproof itself failed, 4 verification failed, 130 interrupted."
)]
pub struct Cli {
    /// When to colour output: `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colour when writing to a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour (even into a pipe).
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a runbook and write its evidence bundle.
    Run(RunArgs),
    /// Validate runbooks and check files without running anything.
    Lint(LintArgs),
    /// Show every resolved step and its policy (secrets masked); runs nothing.
    Plan(PlanArgs),
    /// Check an evidence bundle offline: chain, digests, completeness, policy.
    Verify(VerifyArgs),
    /// Show a bundle's run as a table, for QA.
    Show(ShowArgs),
    /// Verify bundles, then render them as one HTML, JUnit, JSON, Markdown
    /// or Prometheus report (the shards of a sweep merge back into one).
    Report(ReportArgs),
    /// Sweep many checks concurrently, with latency figures and metrics.
    Sweep(SweepArgs),
    /// Sign, verify and receive Chatwoot webhooks.
    Webhook(WebhookArgs),
    /// Run the built-in demo against local targets, then verify its bundle.
    Demo(DemoArgs),
    /// Scaffold a commented runbook and check file to start from.
    Init(InitArgs),
    /// Print the JSON Schema of runbooks and check files (for editors).
    Schema(SchemaArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the manual page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create the files in (created when missing).
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook (TOML).
    pub runbook: PathBuf,
    /// Where bundles are written: <DIR>/<runbook name>/<timestamp>-<run id>/.
    #[arg(long, default_value = "artifacts", value_name = "DIR")]
    pub artifacts: PathBuf,
    /// Run steps marked `mutating = true`; `=TAG,...` runs only those with
    /// one of these tags (e.g. `--allow-mutations=qa-writes`).
    #[arg(long, value_name = "TAGS", num_args = 0..=1, require_equals = true)]
    pub allow_mutations: Option<Option<String>>,
    /// Refuse to run an expired runbook.
    #[arg(long)]
    pub strict: bool,
    /// Confirm a `confirm` step that a person has done, optionally with a
    /// note (`--confirm admin-token="created by ops"`); repeatable.
    #[arg(long, value_name = "ID[=NOTE]", value_parser = super::confirm::parse_confirm)]
    pub confirm: Vec<(String, Option<String>)>,
    /// Run only this step (and what it depends on); repeatable.
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Override a `[vars]` value; repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
    /// Continue a halted or escalated run: steps that passed in this earlier
    /// bundle (which must verify and have run the same runbook) are recorded
    /// as passed earlier, not run again; the rest run as usual.
    #[arg(long, value_name = "BUNDLE")]
    pub resume: Option<PathBuf>,
    /// Print the run as one JSON document on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Resolve host names with this DNS server (IP:port, over UDP and TCP)
    /// instead of the system configuration.
    #[arg(long, env = "RUNPROOF_RESOLVER", value_name = "IP:PORT")]
    pub resolver: Option<ResolverAddr>,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Runbooks or check files to validate (a file with `[[check]]` is linted as a check file).
    #[arg(required = true, value_name = "FILE")]
    pub runbooks: Vec<PathBuf>,
    /// Treat warnings (an expired runbook) as errors, as `run --strict` does.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook or check file (TOML).
    #[arg(value_name = "FILE")]
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

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Print the Chatwoot signature headers for a body (or a curl command that signs at run time).
    Sign(WebhookSignArgs),
    /// Check a received delivery's signature and timestamp.
    Verify(WebhookVerifyArgs),
    /// Receive deliveries, verify them, answer 200/401 and record each as evidence.
    Listen(WebhookListenArgs),
}

#[derive(Debug, Args)]
pub struct WebhookSignArgs {
    /// Environment variable holding the webhook secret (never passed on the command line).
    #[arg(long, value_name = "NAME")]
    pub secret_env: String,
    /// Unix seconds to sign with (default: now).
    #[arg(long, value_name = "T")]
    pub timestamp: Option<String>,
    /// X-Chatwoot-Delivery id (default: a new UUID).
    #[arg(long, value_name = "ID")]
    pub delivery: Option<String>,
    /// Print a shell command that POSTs the body to URL, signing when it runs.
    #[arg(long, value_name = "URL")]
    pub curl: Option<String>,
    /// The raw body, byte for byte.
    pub body_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct WebhookVerifyArgs {
    /// Environment variable holding the webhook secret.
    #[arg(long, value_name = "NAME")]
    pub secret_env: String,
    /// The X-Chatwoot-Signature value received.
    #[arg(long, value_name = "S")]
    pub signature: Option<String>,
    /// The X-Chatwoot-Timestamp value received.
    #[arg(long, value_name = "T")]
    pub timestamp: Option<String>,
    /// Replay window.
    #[arg(long, default_value = "300s", value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: std::time::Duration,
    /// Verify as if the time were T (Unix seconds), e.g. for a captured delivery.
    #[arg(long, value_name = "T")]
    pub now: Option<i64>,
    /// The raw body, byte for byte.
    pub body_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct WebhookListenArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub addr: std::net::SocketAddr,
    /// Environment variable holding the webhook secret.
    #[arg(long, value_name = "NAME")]
    pub secret_env: String,
    /// Where the listener's bundle is written: <DIR>/webhook-listener/<timestamp>-<run id>/.
    #[arg(long, alias = "out", default_value = "artifacts", value_name = "DIR")]
    pub artifacts: PathBuf,
    /// Replay window.
    #[arg(long, default_value = "300s", value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: std::time::Duration,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Check files, or folders of them (`checks/`).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Checks in flight at once (default: 8 per CPU, at least 16).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Run each check K times and report latency percentiles.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub samples: u32,
    /// Repeat the sweep every DURATION until Ctrl-C; each round is its own bundle.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub watch: Option<std::time::Duration>,
    /// With --watch: keep the newest N round bundles of this sweep, deleting
    /// older ones (a day at 60 s is 1,440 bundles).
    #[arg(long, value_name = "N", default_value_t = 1440, requires = "watch")]
    pub keep: usize,
    /// Run shard k of n (stable by check id; a check stays with what it depends on).
    #[arg(long, value_name = "k/n")]
    pub shard: Option<String>,
    /// Run only checks whose id matches GLOB (and what they depend on); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Where bundles are written: <DIR>/<name>/<timestamp>-<run id>/.
    #[arg(long, default_value = "artifacts", value_name = "DIR")]
    pub artifacts: PathBuf,
    /// Override a `[vars]` value in every check file that declares it; repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
    /// Names the sweep (and its bundle folder).
    #[arg(long, default_value = "sweep", value_name = "NAME")]
    pub name: String,
    /// Print one JSON document on stdout (one per round with --watch).
    #[arg(long)]
    pub json: bool,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the Prometheus textfile here (atomically; rewritten every round).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Append a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Compare latency with a saved baseline.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: a p95 above FACTOR × the baseline's is a regression.
    #[arg(long, default_value_t = 1.5, value_name = "FACTOR")]
    pub regression_factor: f64,
    /// Save this sweep's latency figures as a baseline.
    #[arg(long, value_name = "FILE")]
    pub save_baseline: Option<PathBuf>,
    /// Resolve host names with this DNS server (IP:port, over UDP and TCP)
    /// instead of the system configuration.
    #[arg(long, env = "RUNPROOF_RESOLVER", value_name = "IP:PORT")]
    pub resolver: Option<ResolverAddr>,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also scan every file for the value of environment variable NAME (and
    /// its encodings); repeatable.
    #[arg(long = "scan-secrets-from-env", value_name = "NAME")]
    pub scan_secrets_from_env: Vec<String>,
    /// Require seal.json.sig to be a valid signature by a key listed in FILE
    /// (ssh-keygen's allowed_signers format); names the signer.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// With --allowed-signers: the key must be listed for this principal.
    #[arg(long, value_name = "ID", requires = "allowed_signers")]
    pub identity: Option<String>,
    /// Require the bundle to have run exactly this runbook file.
    #[arg(long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    /// Require the journal to end at this head (sha256:<hex>, from the run's
    /// checkpoint line or the seal QA was given out of band).
    #[arg(long, value_name = "sha256:HEX", value_parser = parse_head)]
    pub expect_head: Option<String>,
    /// Treat credential-shaped strings found in the bundle as SECRETS FOUND
    /// (exit 4) instead of warnings.
    #[arg(long)]
    pub strict: bool,
}

fn parse_head(text: &str) -> Result<String, String> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
    } else {
        Err(format!("`{text}` is not sha256:<64 hex digits>"))
    }
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// Print the run as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The bundle folders: one run, several runs, or every shard of a sweep.
    #[arg(required = true, value_name = "BUNDLE")]
    pub bundles: Vec<PathBuf>,
    /// Write a self-contained HTML report (no network, works without JavaScript).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write one JUnit XML file with every test case.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write one JSON document: sources, verify verdicts, signers, runs.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a Markdown summary (printed to stdout when no output is named).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write a Prometheus textfile (node_exporter textfile collector).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Check each seal's signature against the keys in FILE (ssh-keygen's
    /// allowed_signers format): the report then names a signer QA trusts.
    /// Without it the report says the signature was not checked against a
    /// trust list.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// Render bundles that do not verify, under a visible INVALID banner
    /// (the exit status is still 4).
    #[arg(long)]
    pub allow_invalid: bool,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::core::duration::HumanDuration::parse(text).map(|d| d.0)
}
