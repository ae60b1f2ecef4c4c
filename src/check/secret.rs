//! `secret`: a named secret is present, non-empty, not a placeholder, and
//! optionally long enough and shaped right.

use serde::Deserialize;

use super::{FailureClass, Observation, ProbeContext};
use crate::core::placeholder::placeholder_reason;

/// `check = "secret"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
        match &self.pattern {
            Some(pattern) => match regex::Regex::new(pattern) {
                Ok(_) => Vec::new(),
                Err(err) => vec![(
                    format!("invalid `pattern` for secret {}: {err}", self.name),
                    0..0,
                )],
            },
            None => Vec::new(),
        }
    }

    /// Every failure here is permanent: a secret does not change while a run
    /// waits, so retrying would only delay the escalation.
    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        const WHY: &str = "the secret's value does not change while the run waits";
        let name = &self.name;
        let Some(value) = ctx.scope.secret(name) else {
            return Observation::fail_permanent(
                FailureClass::Config,
                format!("secret {name} is not set (looked in the environment and the runbook's env files)"),
                WHY,
            );
        };
        if value.trim().is_empty() {
            return Observation::fail_permanent(
                FailureClass::Config,
                format!("secret {name} is empty"),
                WHY,
            );
        }
        if let Some(rule) = placeholder_reason(&value) {
            return Observation::fail_permanent(
                FailureClass::Config,
                format!("secret {name} looks like a placeholder ({rule})"),
                WHY,
            );
        }
        let length = value.chars().count();
        if let Some(min) = self.min_length {
            if length < min {
                return Observation::fail_permanent(
                    FailureClass::Expectation,
                    format!("secret {name} is {length} characters long, want at least {min}"),
                    WHY,
                );
            }
        }
        if let Some(pattern) = &self.pattern {
            let anchored = format!("^(?:{pattern})$");
            match regex::Regex::new(&anchored) {
                Ok(re) if re.is_match(&value) => {}
                Ok(_) => {
                    return Observation::fail_permanent(
                        FailureClass::Expectation,
                        format!("secret {name} does not match the pattern /{pattern}/"),
                        WHY,
                    )
                }
                Err(err) => {
                    return Observation::fail_permanent(
                        FailureClass::Config,
                        format!("invalid pattern /{pattern}/: {err}"),
                        WHY,
                    )
                }
            }
        }
        Observation::pass()
            .with_detail("secret", name.clone())
            .with_detail("present", true)
    }
}
