//! Reports derived from run events — never from the engine's internals:
//! [`summary`] folds events into a per-step model; the other modules render it.

pub mod junit;
pub mod markdown;
pub mod paint;
pub mod prometheus;
pub mod summary;
pub mod table;
pub mod terminal;

pub use summary::{RunSummary, StepSummary, SummaryBuilder};

#[cfg(test)]
mod tests;
pub use terminal::TerminalReporter;
