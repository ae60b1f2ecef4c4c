//! Cancellation: the first SIGINT/SIGTERM cancels the run gracefully (the
//! attempt in flight is recorded as interrupted and the bundle is sealed); a
//! second one aborts the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::exit::ExitStatus;

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

    /// Listens for SIGINT and SIGTERM: the first cancels this flag, the second
    /// exits the process with code 130 without waiting for anything.
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let cancel = self.clone();
        tokio::spawn(async move {
            let mut received = 0;
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                received += 1;
                if received == 1 {
                    eprintln!("runproof: interrupted; recording the attempt in flight and sealing the bundle (press Ctrl-C again to abort)");
                    cancel.cancel();
                } else {
                    eprintln!("runproof: aborted; the journal is valid up to its last record, but the bundle is not sealed");
                    std::process::exit(ExitStatus::Interrupted.code().into());
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_waiters_and_stays_cancelled() {
        let cancel = Cancel::new();
        let waiter = {
            let cancel = cancel.clone();
            tokio::spawn(async move { cancel.cancelled().await })
        };
        tokio::task::yield_now().await;
        assert!(!cancel.is_cancelled());
        cancel.cancel();
        waiter.await.unwrap();
        // Already cancelled: resolves immediately.
        cancel.cancelled().await;
        assert!(cancel.is_cancelled());
    }
}
