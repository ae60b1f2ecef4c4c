//! Cancellation: a flag the run loop and every attempt wait on. The CLI sets
//! it on the first SIGINT/SIGTERM (the attempt in flight is recorded as
//! interrupted and the bundle is sealed); the engine never touches signals or
//! the process itself. A sweep that must stop for a reason of its own (a
//! check file changed under it) cancels a [`Cancel::child`], never the CLI's
//! flag.

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
    /// Cancelling it cancels this one too ([`Cancel::child`]).
    parent: Option<Cancel>,
}

impl Cancel {
    /// A flag that is not cancelled.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// A flag cancelled with this one, or on its own: stopping it leaves
    /// this one as it is.
    pub fn child(&self) -> Cancel {
        Cancel {
            inner: Arc::new(Inner {
                parent: Some(self.clone()),
                ..Inner::default()
            }),
        }
    }

    /// Cancels; everything waiting in [`Cancel::cancelled`] wakes up.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
            || self.inner.parent.as_ref().is_some_and(Cancel::is_cancelled)
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
            match &self.inner.parent {
                Some(parent) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = Box::pin(parent.cancelled()) => return,
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_is_cancelled_with_its_parent_but_not_the_other_way() {
        let parent = Cancel::new();
        let child = parent.child();
        child.cancel();
        assert!(child.is_cancelled() && !parent.is_cancelled());
        child.cancelled().await;

        let child = parent.child();
        let waiting = tokio::spawn({
            let child = child.clone();
            async move { child.cancelled().await }
        });
        tokio::task::yield_now().await;
        parent.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the child wakes when its parent is cancelled")
            .unwrap();
        assert!(child.is_cancelled());
    }
}
