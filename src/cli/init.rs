//! `runproof init [DIR]`: writes a commented starter runbook and check file.

use super::args::InitArgs;
use super::CliError;
use crate::cli::exit::ExitStatus;

pub fn init(_args: InitArgs) -> Result<ExitStatus, CliError> {
    Err(CliError::internal("not yet"))
}
