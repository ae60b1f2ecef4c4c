//! Typed failures: every failed attempt says *what kind* of failure it was
//! ([`FailureClass`]), chosen from error types where there is one, so that
//! retry decisions, reports and QA can group by it without reading prose.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of failure an attempt met. The journal writes it in snake case
/// (`"not_found"`), as does `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The name does not resolve (NXDOMAIN, no records of the asked type).
    Dns,
    /// Nothing listens: the connection was refused or reset at once.
    Refused,
    /// No answer in time (connect, read, or the attempt's own timeout).
    Timeout,
    /// TLS could not be established: handshake, certificate, protocol.
    Tls,
    /// Credentials were refused (401/403, wrong password, WRONGPASS).
    Auth,
    /// What was asked for does not exist (404, unknown database or app).
    NotFound,
    /// The peer answered, but not in the protocol expected (bad HTTP, bad
    /// RESP, oversized or malformed data).
    Protocol,
    /// The peer answered properly, but not what the runbook expects.
    Expectation,
    /// The peer accepted something it must reject (a forged delivery).
    Security,
    /// The step cannot run as written: a missing secret or value, a bad URL,
    /// an unreadable local file.
    Config,
    /// A local I/O or process failure (a command that could not start).
    Io,
    /// The run was interrupted by a signal.
    Interrupted,
}

impl FailureClass {
    /// Every class, in documentation order.
    pub const ALL: [FailureClass; 12] = [
        FailureClass::Dns,
        FailureClass::Refused,
        FailureClass::Timeout,
        FailureClass::Tls,
        FailureClass::Auth,
        FailureClass::NotFound,
        FailureClass::Protocol,
        FailureClass::Expectation,
        FailureClass::Security,
        FailureClass::Config,
        FailureClass::Io,
        FailureClass::Interrupted,
    ];

    /// The name as written in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Dns => "dns",
            FailureClass::Refused => "refused",
            FailureClass::Timeout => "timeout",
            FailureClass::Tls => "tls",
            FailureClass::Auth => "auth",
            FailureClass::NotFound => "not_found",
            FailureClass::Protocol => "protocol",
            FailureClass::Expectation => "expectation",
            FailureClass::Security => "security",
            FailureClass::Config => "config",
            FailureClass::Io => "io",
            FailureClass::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    /// Readable and specific: what was expected and what was seen.
    pub message: String,
    /// `Some(why)` when the check itself knows retrying cannot help, beyond
    /// what the class says (the engine decides the rest from the class).
    pub permanent: Option<String>,
}

impl Failure {
    /// A failure whose retry follows from its class.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
            permanent: None,
        }
    }

    /// A failure the check knows waiting cannot fix, with the reason.
    pub fn permanent(
        class: FailureClass,
        message: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Failure {
            class,
            message: message.into(),
            permanent: Some(why.into()),
        }
    }
}

impl fmt::Display for Failure {
    /// `timeout: no answer within 2s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// The failure part of an `attempt.end` record: `"failure": {"class": "timeout"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub class: FailureClass,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_serialize_as_documented() {
        let names: Vec<String> = FailureClass::ALL
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "dns",
                "refused",
                "timeout",
                "tls",
                "auth",
                "not_found",
                "protocol",
                "expectation",
                "security",
                "config",
                "io",
                "interrupted"
            ]
        );
        for class in FailureClass::ALL {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        }
    }

    #[test]
    fn a_failure_reads_class_first() {
        let failure = Failure::new(FailureClass::Timeout, "no answer within 2s");
        assert_eq!(failure.to_string(), "timeout: no answer within 2s");
    }
}
