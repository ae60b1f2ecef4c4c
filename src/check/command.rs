//! `command`: a local, non-interactive command with exit-code and output
//! expectations.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Observation, ProbeContext};
use crate::runbook::template::Template;

/// `check = "command"`: exactly one of `argv` or `shell`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// Program and arguments, run without a shell.
    #[serde(default)]
    pub argv: Option<Vec<Template>>,
    /// A `sh -c` script.
    #[serde(default)]
    pub shell: Option<Template>,
    /// Working directory (relative to where runproof runs).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Extra environment; pass secrets here, never in argv (argv shows in `ps`).
    #[serde(default)]
    pub env: BTreeMap<String, Template>,
    /// Pass the whole environment of runproof instead of a minimal one.
    #[serde(default)]
    pub inherit_env: bool,
    #[serde(default)]
    pub expect: CommandExpect,
}

/// `expect` for `command`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandExpect {
    /// Accepted exit codes (default 0).
    #[serde(default)]
    pub exit_code: Option<super::http::OneOrMany<i32>>,
    #[serde(default)]
    pub stdout_contains: Option<String>,
    #[serde(default)]
    pub stdout_regex: Option<String>,
    #[serde(default)]
    pub stderr_contains: Option<String>,
    #[serde(default)]
    pub stderr_regex: Option<String>,
}

impl CommandCheck {
    pub(super) fn target(&self) -> String {
        match (&self.argv, &self.shell) {
            (Some(argv), _) => argv.iter().map(Template::raw).collect::<Vec<_>>().join(" "),
            (None, Some(shell)) => format!("sh -c {}", shell.raw()),
            (None, None) => String::new(),
        }
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        Vec::new()
    }

    pub(super) async fn probe(&self, _ctx: &ProbeContext<'_>) -> Observation {
        Observation::fail("not implemented yet")
    }
}
