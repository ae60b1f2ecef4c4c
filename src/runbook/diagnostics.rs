//! Compiler-style diagnostics for runbooks: `file:line:column`, the line, a
//! caret, and "did you mean". STUB.

use std::ops::Range;

/// One problem in a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Byte range in the source.
    pub span: Range<usize>,
    /// e.g. "did you mean `retries`?"
    pub help: Option<String>,
}
