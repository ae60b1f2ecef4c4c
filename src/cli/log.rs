//! runproof's own diagnostics (`RUNPROOF_LOG=debug`): written to stderr, one
//! event at a time, through the run's redactor — drivers log what they were
//! given (tokio-postgres logs query text, hyper logs URLs), so a log line is
//! one more output a secret could reach. Sessions hand their redactor to
//! [`crate::evidence::redact::set_log_redactor`].

use crate::evidence::redact::log_redactor;
use std::io::{self, Write};

/// Turns logging on when `RUNPROOF_LOG` names a filter.
pub fn init_logging() {
    if let Ok(filter) = std::env::var("RUNPROOF_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(|| RedactedLine(Vec::new()))
            .try_init();
    }
}

/// Collects one formatted event and writes it, redacted, when dropped: the
/// formatter writes an event in several pieces, and a secret may span them.
struct RedactedLine(Vec<u8>);

impl Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let line = log_redactor().redact_bytes(&self.0).into_owned();
        // A closed stderr is no reason to fail the run.
        let _ = io::stderr().lock().write_all(&line);
    }
}
