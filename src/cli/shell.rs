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
    let mut page = title_first(&String::from_utf8_lossy(&buffer));
    page.push_str(&commands_section(&Cli::command()));
    write_stdout(page.as_bytes())
}

/// A `COMMANDS` section: each subcommand (and each of its own subcommands)
/// with its usage, description and options, so that one page documents every
/// flag, as `git help` pages do for their options.
fn commands_section(cli: &clap::Command) -> String {
    let mut out = String::from(".SH COMMANDS\n");
    let mut stack: Vec<(String, &clap::Command)> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .map(|c| (format!("runproof {}", c.get_name()), c))
        .collect();
    stack.reverse();
    while let Some((path, command)) = stack.pop() {
        out.push_str(&format!(".SS \"{}\"\n", roff_escape(&path)));
        let mut usage = command.clone().bin_name(path.clone());
        let usage = usage.render_usage().to_string();
        let usage = usage.trim_start_matches("Usage:").trim();
        out.push_str(&format!("\\fB{}\\fR\n.PP\n", roff_escape(usage)));
        if let Some(about) = command.get_long_about().or(command.get_about()) {
            out.push_str(&format!("{}\n", roff_escape(&about.to_string())));
        }
        for arg in command.get_arguments() {
            if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version" | "color") {
                continue;
            }
            let mut names = Vec::new();
            if let Some(short) = arg.get_short() {
                names.push(format!("-{short}"));
            }
            if let Some(long) = arg.get_long() {
                names.push(format!("--{long}"));
            }
            let value = arg
                .get_value_names()
                .map(|v| {
                    v.iter()
                        .map(|n| format!("<{n}>"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let head = if names.is_empty() {
                value
            } else if arg.get_action().takes_values() {
                format!("{} {value}", names.join(", "))
            } else {
                names.join(", ")
            };
            out.push_str(&format!(".TP\n\\fB{}\\fR\n", roff_escape(head.trim())));
            if let Some(help) = arg.get_long_help().or(arg.get_help()) {
                out.push_str(&format!("{}\n", roff_escape(&help.to_string())));
            }
        }
        let children: Vec<_> = command
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
            .map(|c| (format!("{path} {}", c.get_name()), c))
            .collect();
        stack.extend(children.into_iter().rev());
    }
    out
}

/// Text as roff: backslashes and hyphens escaped, no line starting with a
/// control character.
fn roff_escape(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .lines()
        .map(|line| {
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
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
