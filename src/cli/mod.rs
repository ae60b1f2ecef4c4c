//! The command line: parses arguments, calls into the library, and maps every
//! result to a documented exit code in one place ([`CliError`] → [`ExitStatus`]).

/// `println!` that ignores a closed stdout (`runproof verify … | head`): the
/// reader went away, which is no reason to panic — or, for `run`, to leave the
/// bundle unsealed.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod args;
mod confirm;
mod demo;
pub mod exit;
mod init;
mod inspect;
mod log;
mod progress;
mod provenance;
mod report;
mod run;
mod schema;
mod shell;
mod signals;
mod style;
mod sweep;
mod webhook;

use std::process::ExitCode;

pub use args::Cli;
use args::Command;

use crate::cli::exit::ExitStatus;

/// An error that ends the command, with the exit status it maps to.
#[derive(Debug)]
pub struct CliError {
    pub status: ExitStatus,
    pub message: String,
}

impl CliError {
    /// Bad input: an invalid runbook, bad arguments, a missing secret (exit 2).
    pub fn invalid(message: impl Into<String>) -> Self {
        CliError {
            status: ExitStatus::InvalidInput,
            message: message.into(),
        }
    }

    /// runproof itself failed, e.g. it could not write evidence (exit 3).
    pub fn internal(message: impl Into<String>) -> Self {
        CliError {
            status: ExitStatus::Internal,
            message: message.into(),
        }
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = parse_args();
    style::init(cli.color);
    log::init_logging();
    // Descendants of a `command` step that daemonize (`setsid … &`) reparent
    // to runproof rather than to init, so the step can find and kill them.
    if let Err(err) = crate::check::reaper::become_subreaper() {
        tracing::debug!("cannot become a child subreaper: {err}");
    }
    // Commands that only print what clap knows need no runtime.
    match cli.command {
        Command::Completions(args) => return finish(shell::completions(args)),
        Command::Man => return finish(shell::man()),
        _ => {}
    }
    // Worker threads, so that a second Ctrl-C aborts at once even while the
    // main task is busy sealing. A sweep runs its checks on threads of its
    // own, each a single-threaded runtime (see `sweep::run`).
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("runproof: error: cannot start the async runtime: {err}");
            return ExitStatus::Internal.into();
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // Probes may leave sockets or timers behind after cancellation; do not
    // let them hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    finish(result)
}

/// Parses the command line; clap's own help and usage errors follow
/// `--color` too (it is read ahead, since clap colours before it parses).
fn parse_args() -> Cli {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut said = None;
    for (i, arg) in args.iter().enumerate() {
        let arg = arg.to_string_lossy();
        if let Some(value) = arg.strip_prefix("--color=") {
            said = Some(value.to_string());
        } else if arg == "--color" {
            said = args.get(i + 1).map(|v| v.to_string_lossy().into_owned());
        } else if arg == "--" {
            break;
        }
    }
    let color = match said.as_deref() {
        Some("never") => clap::ColorChoice::Never,
        Some("always") => clap::ColorChoice::Always,
        _ => clap::ColorChoice::Auto,
    };
    let matches = Cli::command().color(color).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// Prints the error, if any, and maps the result to the exit code.
fn finish(result: Result<ExitStatus, CliError>) -> ExitCode {
    match result {
        Ok(status) => status.into(),
        Err(err) => {
            // Messages are built from runbook text and names, never from
            // secret values. Rendered diagnostics (several lines, each
            // already labelled) are printed as they are.
            if err.message.starts_with("error") || err.message.starts_with("warning") {
                style::eprint_diagnostics(&err.message);
            } else {
                let paint = style::stderr();
                for line in err.message.lines() {
                    eprintln!("{}", paint.diagnostics(&format!("runproof: error: {line}")));
                }
            }
            err.status.into()
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitStatus, CliError> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Lint(args) => run::lint(args),
        Command::Plan(args) => run::plan(args),
        Command::Verify(args) => inspect::verify(args),
        Command::Show(args) => inspect::show(args),
        Command::Report(args) => report::report(args),
        Command::Sweep(args) => sweep::sweep(args).await,
        Command::Webhook(args) => webhook::webhook(args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Init(args) => init::init(args),
        Command::Schema(args) => schema::schema(args),
        Command::Completions(args) => shell::completions(args),
        Command::Man => shell::man(),
    }
}
