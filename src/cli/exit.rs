//! The process exit codes runproof documents, in one place.

use crate::webhook::WebhookError;

/// Every way the `runproof` process can end, with its documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Every step passed (or the bundle verified).
    Success,
    /// A step escalated or was blocked.
    Escalated,
    /// The runbook or the command line is invalid.
    InvalidInput,
    /// runproof itself failed (for example, it could not write the bundle).
    Internal,
    /// `runproof verify` found the bundle invalid.
    VerifyFailed,
    /// The run was interrupted by SIGINT or SIGTERM.
    Interrupted,
}

impl ExitStatus {
    /// The numeric code given to the operating system.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Escalated => 1,
            ExitStatus::InvalidInput => 2,
            ExitStatus::Internal => 3,
            ExitStatus::VerifyFailed => 4,
            ExitStatus::Interrupted => 130,
        }
    }
}

/// The documented exit status for each webhook subcommand error.
impl From<&WebhookError> for ExitStatus {
    fn from(err: &WebhookError) -> Self {
        match err {
            WebhookError::Invalid(_) => ExitStatus::Escalated,
            WebhookError::Bind { .. } | WebhookError::Evidence(_) => ExitStatus::Internal,
            _ => ExitStatus::InvalidInput,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // README's exit-code table is checked against these codes and the real
    // binary by the integration test `cli::exit_codes_are_those_of_the_readme_table`.
    #[test]
    fn codes_are_stable() {
        let codes: Vec<u8> = [
            ExitStatus::Success,
            ExitStatus::Escalated,
            ExitStatus::InvalidInput,
            ExitStatus::Internal,
            ExitStatus::VerifyFailed,
            ExitStatus::Interrupted,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 130]);
    }
}
