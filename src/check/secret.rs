//! `secret`: a named secret is present, non-empty, not a placeholder, and
//! optionally long enough and shaped right.

use serde::Deserialize;

use super::{Observation, ProbeContext};

/// `check = "secret"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretCheck {
    /// The secret's name, as declared in `[secrets]`.
    pub name: String,
    /// Shortest acceptable value, in characters.
    #[serde(default)]
    pub min_length: Option<usize>,
    /// A regex the whole value must match.
    #[serde(default)]
    pub pattern: Option<String>,
}

impl SecretCheck {
    pub(super) fn target(&self) -> String {
        format!("secret {}", self.name)
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        Vec::new()
    }

    pub(super) async fn probe(&self, _ctx: &ProbeContext<'_>) -> Observation {
        Observation::fail("not implemented yet")
    }
}
