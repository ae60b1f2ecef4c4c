//! Runbooks: the TOML model, loading with compiler-style diagnostics,
//! templates, durations and secret sources.

pub mod diagnostics;
pub mod duration;
pub mod load;
pub mod model;
pub mod secrets;
pub mod template;

pub use load::{load_runbook, load_runbook_str, LoadError};
pub use model::{Runbook, Step};
pub use secrets::SecretStore;
