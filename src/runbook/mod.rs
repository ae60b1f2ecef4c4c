//! Runbooks: the TOML model, loading with compiler-style diagnostics,
//! templates, durations and secret sources.
//!
//! - [`model`]: the validated [`Runbook`] the engine runs.
//! - [`load`]: TOML with spans → [`Runbook`], or every problem at once.
//! - `step`: one `[[step]]`, common keys and the kind's part.
//! - `raw`: deserializing pieces of the spanned tree, collecting errors.
//! - [`validate`]: cross-step rules (ids, dependencies, templates) and expiry.
//! - [`diagnostics`]: rendering problems like a compiler.
//! - [`template`], [`duration`]: the value types runbooks are written in.
//! - [`secrets`], [`dotenv`]: where secret values come from.

pub mod dotenv;
pub mod load;
pub mod model;
mod raw;
pub mod schema;
pub mod secrets;
mod sections;
mod step;
pub mod validate;

pub use load::{
    is_check_file, load_check_file, load_runbook, load_runbook_str, load_runbook_str_with_env,
    load_runbook_with_env, LoadError,
};
pub use model::{Runbook, Step};
pub use secrets::{SecretStore, SecretsError};
pub use validate::expiry_warning;
