//! `confirm`: a step only a person can complete (sign in as super admin and
//! create the API token; a cut-over sign-off). It is never probed: the engine
//! asks the run's [`Confirmer`] (the CLI: `--confirm ID`, or a yes on the
//! terminal) and records who confirmed, when, how and with what note.

use serde::Deserialize;

use super::{FailureClass, Observation, ProbeContext};
use crate::core::template::Template;

/// `check = "confirm"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmCheck {
    /// What the person must have done, as a question or an instruction.
    pub prompt: Template,
}

impl ConfirmCheck {
    pub(super) fn target(&self) -> String {
        format!("confirm: {}", self.prompt.raw())
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        if self.prompt.raw().trim().is_empty() {
            vec![(
                "`prompt` is empty: say what the person must confirm".to_string(),
                self.prompt.span(),
            )]
        } else {
            Vec::new()
        }
    }

    /// Only reached when a confirmation step is swept: sweeps have nobody to ask.
    pub(super) async fn probe(&self, _ctx: &ProbeContext<'_>) -> Observation {
        Observation::fail_permanent(
            FailureClass::Config,
            "a confirmation step is answered by a person in `runproof run`, not probed",
            "nobody can confirm during a sweep",
        )
    }
}

/// How a person answered a confirmation step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Confirmed, by whom, how (`--confirm` or `terminal`) and with what note.
    Confirmed {
        by: String,
        via: &'static str,
        note: Option<String>,
    },
    /// Answered no on the terminal.
    Declined { by: String },
    /// Nobody could be asked: not on a terminal, and no `--confirm ID`.
    Unanswered,
}

/// Who answers confirmation steps: the CLI (flags, then the terminal).
pub trait Confirmer: Send + Sync {
    /// Asks about step `step` with its rendered `prompt`. May block waiting
    /// for a person: the engine calls it off the async threads.
    fn confirm(&self, step: &str, prompt: &str) -> Confirmation;
}
