//! Answers `confirm` steps for `runproof run`: a `--confirm ID[=NOTE]` given
//! on the command line first, else a yes/no question on the terminal, else
//! nobody (the step ends unconfirmed and the run says how to confirm).

use std::collections::HashMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use crate::check::confirm::{Confirmation, Confirmer};

/// The command line's confirmations and, when there is one, the terminal.
pub struct CliConfirmer {
    /// `--confirm ID` (no note) or `--confirm ID=NOTE`.
    given: HashMap<String, Option<String>>,
    /// Who is answering, for the evidence.
    operator: String,
    /// Whether a person can be asked (stdin and stderr are terminals).
    terminal: bool,
}

impl CliConfirmer {
    pub fn new(given: &[(String, Option<String>)], operator: String) -> Self {
        CliConfirmer {
            given: given.iter().cloned().collect(),
            operator,
            terminal: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }
}

impl Confirmer for CliConfirmer {
    fn confirm(&self, step: &str, prompt: &str) -> Confirmation {
        if let Some(note) = self.given.get(step) {
            return Confirmation::Confirmed {
                by: self.operator.clone(),
                via: "--confirm",
                note: note.clone(),
            };
        }
        if !self.terminal {
            return Confirmation::Unanswered;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "confirm `{step}`: {prompt}\n  done? [y/N] ");
        let _ = stderr.flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return Confirmation::Unanswered;
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Confirmation::Confirmed {
                by: self.operator.clone(),
                via: "terminal",
                note: None,
            },
            _ => Confirmation::Declined {
                by: self.operator.clone(),
            },
        }
    }
}

/// `ID` or `ID=NOTE`, as given to `--confirm`.
pub fn parse_confirm(text: &str) -> Result<(String, Option<String>), String> {
    let (id, note) = match text.split_once('=') {
        Some((id, note)) => (id, Some(note.trim_matches('"').to_string())),
        None => (text, None),
    };
    if id.is_empty() {
        return Err("expected ID or ID=\"note\"".to_string());
    }
    Ok((id.to_string(), note))
}

/// The name recorded for who answered: `RUNPROOF_OPERATOR`, else `$USER`.
pub fn operator_name() -> String {
    ["RUNPROOF_OPERATOR", "USER"]
        .iter()
        .find_map(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}
