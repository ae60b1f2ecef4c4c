//! `runproof schema`: prints the JSON Schema of runbooks and check files.

use super::args::SchemaArgs;
use super::CliError;
use crate::cli::exit::ExitStatus;

/// The schema as pretty-printed JSON, with a final newline.
pub fn schema_text() -> Result<String, CliError> {
    let mut text = serde_json::to_string_pretty(&crate::runbook::schema::schema())
        .map_err(|e| CliError::internal(format!("cannot render the schema: {e}")))?;
    text.push('\n');
    Ok(text)
}

pub fn schema(_args: SchemaArgs) -> Result<ExitStatus, CliError> {
    let text = schema_text()?;
    out!("{}", text.trim_end());
    Ok(ExitStatus::Success)
}
