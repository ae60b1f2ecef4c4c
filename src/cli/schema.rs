//! `runproof schema`: prints the JSON Schema of runbooks and check files.

use super::args::SchemaArgs;
use super::CliError;
use crate::cli::exit::ExitStatus;

pub fn schema(_args: SchemaArgs) -> Result<ExitStatus, CliError> {
    Err(CliError::internal("not yet"))
}
