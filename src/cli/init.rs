//! `runproof init [DIR]`: writes a commented starter runbook, a check file
//! and the JSON Schema they point editors at. The templates are plain files
//! (`init/*.toml`) so that a test can lint exactly what is shipped.

use std::path::Path;

use super::args::InitArgs;
use super::CliError;
use crate::cli::exit::ExitStatus;

/// The starter runbook: one step of each common kind, every key explained.
const RUNBOOK: &str = include_str!("init/runbook.toml");
/// The starter check file for `runproof sweep`.
const CHECKS: &str = include_str!("init/checks.toml");

pub fn init(args: InitArgs) -> Result<ExitStatus, CliError> {
    let schema = super::schema::schema_text()?;
    let files = [
        ("runbook.toml", RUNBOOK),
        ("checks.toml", CHECKS),
        ("runproof.schema.json", schema.as_str()),
    ];
    let dir = &args.dir;
    // Refuse before writing anything: a half-written scaffold helps nobody.
    if !args.force {
        let existing: Vec<String> = files
            .iter()
            .map(|(name, _)| dir.join(name))
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(CliError::invalid(format!(
                "{} already exist{}; pass --force to overwrite",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            )));
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::invalid(format!("cannot create {}: {e}", dir.display())))?;
    for (name, text) in files {
        write(&dir.join(name), text)?;
        out!("created {}", dir.join(name).display());
    }
    let shown = |name: &str| dir.join(name).display().to_string();
    out!(
        "\nnext: edit the addresses in both files, then\n  runproof lint {runbook} {checks}\n  runproof plan {runbook}\n  runproof run {runbook}\n  runproof sweep {checks}",
        runbook = shown("runbook.toml"),
        checks = shown("checks.toml"),
    );
    Ok(ExitStatus::Success)
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text)
        .map_err(|e| CliError::invalid(format!("cannot write {}: {e}", path.display())))
}
