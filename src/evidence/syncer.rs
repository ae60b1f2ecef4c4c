//! Group commit off the hot path: a batched journal's `fdatasync` runs on a
//! thread of its own, so the records after a batch are appended (and the
//! sweep's probes go on) while the disk syncs the batch.

use std::fs::File;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Syncs one file in the background whenever asked; the first error is kept
/// and handed to the next caller, so a failed sync is never lost.
pub struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Syncs asked for, and done (each covers every write made before it
    /// was asked for).
    asked: u64,
    done: u64,
    error: Option<io::Error>,
    stop: bool,
}

impl Syncer {
    /// A syncer of `file` (a handle of its own on the journal: syncing it
    /// syncs the file, whatever handle wrote).
    pub fn new(file: File) -> io::Result<Syncer> {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || worker.run(&file))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for a sync of everything written so far and returns at once;
    /// an `Err` when an earlier sync failed.
    pub fn request(&self) -> io::Result<()> {
        let mut state = self.shared.lock();
        if let Some(error) = state.error.take() {
            return Err(error);
        }
        state.asked += 1;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Waits for the syncs asked for so far, stops the thread, and returns
    /// the first error any of them met.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop();
        match self.shared.lock().error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn stop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The thread: one `fdatasync` per wake-up covers every request made
    /// before it started (requests made meanwhile coalesce into the next).
    fn run(&self, file: &File) {
        let mut state = self.lock();
        loop {
            while state.asked == state.done && !state.stop {
                state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.asked == state.done {
                return;
            }
            let target = state.asked;
            drop(state);
            let result = file.sync_data();
            state = self.lock();
            state.done = target;
            if let Err(error) = result {
                state.error.get_or_insert(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn syncs_on_request_and_finishes_after_the_last() {
        let dir = std::env::temp_dir().join(format!("runproof-syncer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal");
        let mut file = File::create(&path).unwrap();
        let syncer = Syncer::new(file.try_clone().unwrap()).unwrap();
        for n in 0..50 {
            writeln!(file, "record {n}").unwrap();
            syncer.request().unwrap();
        }
        syncer.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 50);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_sync_is_reported_to_the_next_caller() {
        // A pipe cannot be synced (EINVAL): the error must come back.
        let (reader, writer) = {
            let mut fds = [0; 2];
            // SAFETY: pipe(2) fills two descriptors we then own.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            use std::os::fd::FromRawFd as _;
            // SAFETY: both descriptors are fresh and owned here.
            unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
        };
        let syncer = Syncer::new(writer).unwrap();
        syncer.request().unwrap();
        let error = syncer.finish().expect_err("syncing a pipe fails");
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL), "{error}");
        drop(reader);
    }
}
