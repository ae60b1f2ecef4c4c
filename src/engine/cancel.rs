//! Cancellation: a flag the run loop and every attempt wait on. The CLI sets
//! it on the first SIGINT/SIGTERM (the attempt in flight is recorded as
//! interrupted and the bundle is sealed); the engine never touches signals or
//! the process itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A cancellation flag that async code can wait on.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// A flag that is not cancelled.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Cancels; everything waiting in [`Cancel::cancelled`] wakes up.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled (at once if already cancelled).
    pub async fn cancelled(&self) {
        loop {
            // Register interest before checking the flag, so a cancel between
            // the check and the await is not missed.
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}
