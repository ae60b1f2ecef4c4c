//! Chatwoot webhooks: signing and verification, sample events, the delivery
//! receiver, and the logic behind `runproof webhook sign|verify|listen`.
//!
//! - [`signature`]: `sha256=HMAC(secret, "<timestamp>.<raw body>")`, constant-time verification.
//! - [`events`]: built-in sample deliveries in Chatwoot's shape, marked as probes.
//! - [`listener`]: the axum receiver shared by `webhook listen` and the `webhook-delivery` check.
//! - [`command`]: the subcommands as library functions; the CLI layer only parses and prints.

pub mod command;
pub mod events;
pub mod listener;
pub mod signature;

pub use command::{sign_command, verify_command, SignArgs, VerifyArgs};
pub use listener::{Listener, ListenerConfig};
pub use signature::{sign, verify, SignatureError};

use std::path::PathBuf;

/// `X-Chatwoot-Signature`: `sha256=<64 lowercase hex>`.
pub const HEADER_SIGNATURE: &str = "X-Chatwoot-Signature";
/// `X-Chatwoot-Timestamp`: Unix seconds at send time.
pub const HEADER_TIMESTAMP: &str = "X-Chatwoot-Timestamp";
/// `X-Chatwoot-Delivery`: a UUID per delivery, reused by retries.
pub const HEADER_DELIVERY: &str = "X-Chatwoot-Delivery";

/// Why a webhook subcommand could not do its job. Messages never contain the secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The delivery does not verify (`webhook verify`): exit 1.
    #[error("invalid: {0}")]
    Invalid(#[from] SignatureError),
    #[error("environment variable {name} is not set: export the webhook secret there (runproof reads it only from the environment)")]
    SecretUnset { name: String },
    #[error("environment variable {name} is empty: it must hold the webhook secret")]
    SecretEmpty { name: String },
    #[error("`{name}` is not a usable environment variable name (letters, digits and `_`, not starting with a digit)")]
    BadEnvName { name: String },
    #[error("cannot read body file {}: {source}", .path.display())]
    ReadBody {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid --timestamp {value:?}: expected Unix seconds")]
    BadTimestamp { value: String },
    #[error("invalid --delivery {value:?}: expected a single-line id such as a UUID")]
    BadDelivery { value: String },
    #[error("invalid --curl URL {value:?}: {why}")]
    BadUrl { value: String, why: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot write the evidence bundle: {0}")]
    Evidence(std::io::Error),
}

/// Reads the secret from environment variable `name` through `lookup`
/// (the process environment in the CLI; a map in tests).
pub fn secret_from_env(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WebhookError> {
    check_env_name(name)?;
    match lookup(name) {
        None => Err(WebhookError::SecretUnset {
            name: name.to_string(),
        }),
        Some(value) if value.is_empty() => Err(WebhookError::SecretEmpty {
            name: name.to_string(),
        }),
        Some(value) => Ok(value),
    }
}

/// The process environment, as a lookup for [`secret_from_env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Environment variable names end up in printed shell commands: only plain ones.
fn check_env_name(name: &str) -> Result<(), WebhookError> {
    let ok = !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(WebhookError::BadEnvName {
            name: name.to_string(),
        })
    }
}
