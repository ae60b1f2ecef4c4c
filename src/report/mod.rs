//! Reports derived from run events — never from the engine's internals:
//! [`summary`] folds events into a per-step model; the other modules render it.
//! [`bundle_set`] brings verified bundles together for `runproof report`;
//! [`merged`] renders them as one JUnit/JSON/Markdown/Prometheus output;
//! [`html`] as one self-contained page.

pub mod bundle_set;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod merged;
pub mod paint;
pub mod prometheus;
pub mod spool;
pub mod summary;
pub mod table;
pub mod terminal;

pub use summary::{RunSummary, StepFolds, StepSummary, SummaryBuilder};

/// Version of the renderers of `summary.md` and `junit.xml`, recorded in a
/// bundle's header. `verify` regenerates a bundle's reports byte for byte only
/// when it matches; bump the revision whenever either output changes.
pub const RENDERER_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "/r1");

#[cfg(test)]
mod tests;
pub use terminal::TerminalReporter;
