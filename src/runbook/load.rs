//! Reading a runbook: TOML with spans → validated [`Runbook`]. STUB.

use std::path::Path;

use super::diagnostics::Diagnostic;
use super::model::Runbook;

/// Why a runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Rendered diagnostics, all of them.
    #[error("{rendered}")]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        rendered: String,
    },
}

/// Loads and validates the runbook at `path`.
pub fn load_runbook(path: &Path) -> Result<Runbook, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_runbook_str(path, &source)
}

/// Loads and validates runbook text; `path` names it in messages.
pub fn load_runbook_str(path: &Path, source: &str) -> Result<Runbook, LoadError> {
    let _ = (path, source);
    Err(LoadError::Invalid {
        diagnostics: Vec::new(),
        rendered: "not implemented yet".into(),
    })
}

/// Loads a sweep's check file. STUB until the loader lands.
pub fn load_check_file(path: &Path, source: &str) -> Result<super::model::CheckFile, LoadError> {
    let _ = (path, source);
    Err(LoadError::Invalid {
        diagnostics: Vec::new(),
        rendered: "not implemented yet".into(),
    })
}
