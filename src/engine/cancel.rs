//! Cancellation: a flag the run loop and every attempt wait on. The CLI sets
//! it on the first SIGINT/SIGTERM (the attempt in flight is recorded as
//! interrupted and the bundle is sealed); the engine never touches signals or
//! the process itself. A sweep that must stop for a reason of its own (a
//! check file changed under it) cancels a [`Cancel::child`], never the CLI's
//! flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

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
    /// The children's flags ([`Cancel::child`]), cancelled with this one.
    /// Handed down when cancelled, so that a waiter waits on its own flag
    /// alone: every attempt of a sweep waits, and waiting on each ancestor
    /// too cost a registration and an allocation per ancestor per attempt.
    children: Mutex<Vec<Weak<Inner>>>,
}

impl Cancel {
    /// A flag that is not cancelled.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// A flag cancelled with this one, or on its own: stopping it leaves
    /// this one as it is.
    pub fn child(&self) -> Cancel {
        let child = Cancel::new();
        {
            let mut children = self.children();
            children.retain(|c| c.strong_count() > 0);
            children.push(Arc::downgrade(&child.inner));
        }
        // Listed after a cancel took the list: cancelled here instead.
        if self.is_cancelled() {
            child.cancel();
        }
        child
    }

    /// Cancels, with every child; everything waiting in
    /// [`Cancel::cancelled`] wakes up.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
        let children = std::mem::take(&mut *self.children());
        for child in children.iter().filter_map(Weak::upgrade) {
            Cancel { inner: child }.cancel();
        }
    }

    /// Whether [`Cancel::cancel`] was called (on this flag or an ancestor).
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

    fn children(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Inner>>> {
        self.inner
            .children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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

    #[tokio::test]
    async fn a_grandchild_made_before_or_after_the_cancel_is_cancelled_and_dropped_ones_are_let_go()
    {
        let root = Cancel::new();
        let child = root.child();
        let grandchild = child.child();
        // Children dropped before the cancel are let go as new ones come.
        for _ in 0..100 {
            drop(child.child());
        }
        assert!(child.children().len() <= 2, "{}", child.children().len());
        let waiting = tokio::spawn({
            let grandchild = grandchild.clone();
            async move { grandchild.cancelled().await }
        });
        tokio::task::yield_now().await;
        root.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the grandchild wakes when the root is cancelled")
            .unwrap();
        assert!(child.is_cancelled() && grandchild.is_cancelled());
        // Made after the cancel: cancelled from the start.
        let late = child.child();
        assert!(late.is_cancelled());
        late.cancelled().await;
    }

    #[test]
    fn children_cancelled_while_being_made_are_never_missed() {
        for _ in 0..200 {
            let root = Cancel::new();
            let made = std::thread::scope(|scope| {
                let maker = scope.spawn(|| (0..50).map(|_| root.child()).collect::<Vec<_>>());
                root.cancel();
                maker.join().unwrap()
            });
            assert!(made.iter().all(Cancel::is_cancelled));
        }
    }
}
