//! `runproof completions SHELL` and `runproof man`: both generated from the
//! clap definitions in [`super::args`], so they never drift from the flags.

use std::io::Write as _;

use clap::CommandFactory as _;

use super::args::{Cli, CompletionsArgs};
use super::CliError;
use crate::cli::exit::ExitStatus;

/// Prints the completion script for the chosen shell on stdout.
pub fn completions(args: CompletionsArgs) -> Result<ExitStatus, CliError> {
    let mut command = Cli::command();
    let mut buffer = Vec::new();
    clap_complete::generate(args.shell, &mut command, "runproof", &mut buffer);
    write_stdout(&buffer)
}

/// Prints the manual page (roff) on stdout: `runproof man | man -l -`.
pub fn man() -> Result<ExitStatus, CliError> {
    let mut buffer = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buffer)
        .map_err(|e| CliError::internal(format!("cannot render the manual page: {e}")))?;
    write_stdout(title_first(&String::from_utf8_lossy(&buffer)).as_bytes())
}

/// Moves the `.TH` line to the top: clap_mangen puts its string definitions
/// (`.ie \n(.g .ds Aq …`) first, while `man`, `file` and lintian expect a
/// page to open with its title. The definitions still precede every use.
fn title_first(page: &str) -> String {
    let mut lines: Vec<&str> = page.lines().collect();
    if let Some(at) = lines.iter().position(|l| l.starts_with(".TH ")) {
        let title = lines.remove(at);
        lines.insert(0, title);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn write_stdout(bytes: &[u8]) -> Result<ExitStatus, CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        // A reader that went away (`| head`) is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::internal(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(ExitStatus::Success),
    }
}
