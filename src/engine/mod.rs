//! The run loop: steps in file order, attempts under a retry policy, backoff,
//! timeouts, escalation, blocked dependents and cancellation.
//!
//! The engine emits [`Event`]s; the journal records them first, then the
//! [`RunObserver`] (the terminal reporter, the summary builder) sees them.

pub mod cancel;
pub mod notify;
pub mod retry;
pub mod run;
pub mod scope;

#[cfg(test)]
mod tests;

pub use cancel::Cancel;
pub use run::{
    drive_runbook, run_runbook, CheckProbe, Emit, Mutations, Probe, Resume, RunOptions, RunOutcome,
    StepResult, StepRunner,
};
pub use scope::RunScope;

use crate::core::record::Event;
use crate::evidence::Redacted;

/// Something that follows a run as it happens (progress, summaries). It sees
/// only what the journal wrote: redacted events.
pub trait RunObserver {
    /// Called after `event` was appended to the journal as record `seq`.
    fn observe(&mut self, seq: u64, event: &Redacted<Event>);
}

/// Fans one event out to several observers.
impl RunObserver for Vec<&mut dyn RunObserver> {
    fn observe(&mut self, seq: u64, event: &Redacted<Event>) {
        for observer in self.iter_mut() {
            observer.observe(seq, event);
        }
    }
}
