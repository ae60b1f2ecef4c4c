//! Group commit off the hot path: a batched journal's records are hashed,
//! written and synced on a thread of their own ([`JournalWriter`]), so the
//! thread that appends them (a sweep's, holding the journal's lock) only
//! hands over a buffer, and the records after a batch are appended (and the
//! sweep's probes go on) while the batch goes to disk.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Batches handed over and not yet written before [`JournalWriter::write`]
/// waits: the memory held back stays at a few batches (a batch is at most
/// the writer's buffer, 1 MiB), and a disk slower than the sweep slows the
/// sweep instead of filling memory.
const MAX_QUEUED: usize = 2;

/// The room a bundle reserves for its closing records, shared by the
/// writer (which gives it up before `run.end`) and whichever thread writes
/// the journal (which gives it up when the disk is full).
pub type Reserve = Arc<Mutex<Option<PathBuf>>>;

/// Set when a blob was written unsynced since the journal's last sync
/// (see [`super::writer::BlobStore`]): the next sync first syncs the file
/// system, so that no record is on disk before a blob it names.
pub type UnsyncedBlobs = Arc<AtomicBool>;

/// Syncs the journal `file`, and first the blobs written since its last
/// sync when there are some.
pub fn sync_journal(file: &File, blobs: &AtomicBool) -> io::Result<()> {
    if blobs.swap(false, Ordering::AcqRel) {
        if let Err(error) = super::seal::sync_file_system(file) {
            // Still unsynced: the next sync tries again.
            blobs.store(true, Ordering::Release);
            return Err(error);
        }
    }
    file.sync_data()
}

/// Writes one journal's batches in order on its own thread: each batch is
/// added to the journal's SHA-256, appended, and synced when asked. The
/// first error is kept and handed to the next caller, so a failed write or
/// sync is never lost; nothing is written after it, so the journal never
/// holds a gap.
pub struct JournalWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Sha256>>,
}

struct Shared {
    state: Mutex<State>,
    /// The thread waits here for work; callers wait here for room and for
    /// the queue to drain.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Batches to write, oldest first, each with whether a sync follows it.
    queue: VecDeque<(Vec<u8>, bool)>,
    /// Emptied buffers, handed back for the next batches.
    spare: Vec<Vec<u8>>,
    /// The thread is writing or syncing a batch taken off the queue.
    busy: bool,
    /// The first error, until handed out.
    error: Option<io::Error>,
    /// What the first error said, kept: every later call fails too.
    failed: Option<String>,
    stop: bool,
}

impl JournalWriter {
    /// A writer of `file` (the journal, opened for appending) whose SHA-256
    /// so far is `sha`; `reserve` is given up when the disk is full; each
    /// sync syncs `blobs` first when set ([`sync_journal`]).
    pub fn new(
        file: File,
        sha: Sha256,
        reserve: Reserve,
        blobs: UnsyncedBlobs,
    ) -> io::Result<JournalWriter> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || worker.run(file, sha, &reserve, &blobs))?;
        Ok(JournalWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands `batch` over to be written (and synced when `sync`), leaving
    /// an empty buffer in its place; returns at once unless
    /// [`MAX_QUEUED`] batches are waiting. An `Err` when an earlier write
    /// or sync failed.
    pub fn write(&self, batch: &mut Vec<u8>, sync: bool) -> io::Result<()> {
        let mut state = self.shared.lock();
        while state.queue.len() >= MAX_QUEUED && state.failed.is_none() {
            state = self.shared.wait(state);
        }
        state.failure()?;
        let empty = state.spare.pop().unwrap_or_default();
        state
            .queue
            .push_back((std::mem::replace(batch, empty), sync));
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Waits until every batch handed over so far is written (and synced
    /// where asked); the first error any of them met.
    pub fn wait(&self) -> io::Result<()> {
        let mut state = self.shared.lock();
        while (state.busy || !state.queue.is_empty()) && state.failed.is_none() {
            state = self.shared.wait(state);
        }
        state.failure()
    }

    /// Writes what is still queued, stops the thread, and returns the
    /// journal's SHA-256: of every byte handed over, when all were written.
    pub fn finish(mut self) -> io::Result<Sha256> {
        let sha = self.stop();
        self.shared.lock().failure()?;
        sha.ok_or_else(|| io::Error::other("the journal's writer thread panicked"))
    }

    fn stop(&mut self) -> Option<Sha256> {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        self.thread.take().and_then(|thread| thread.join().ok())
    }
}

impl Drop for JournalWriter {
    /// Whatever was handed over still reaches the journal.
    fn drop(&mut self) {
        self.stop();
    }
}

impl State {
    /// The first error (once), then an error naming it for every later call.
    fn failure(&mut self) -> io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        match &self.failed {
            Some(first) => Err(io::Error::other(format!(
                "an earlier write to the journal failed: {first}"
            ))),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: io::Error) {
        if self.failed.is_none() {
            self.failed = Some(error.to_string());
            self.error = Some(error);
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(
        &self,
        guard: std::sync::MutexGuard<'a, State>,
    ) -> std::sync::MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// The thread: takes each batch in order, hashes and appends it, and
    /// syncs once the batches asking for it are written (batches handed
    /// over meanwhile share the next sync).
    fn run(
        &self,
        mut file: File,
        mut sha: Sha256,
        reserve: &Reserve,
        blobs: &AtomicBool,
    ) -> Sha256 {
        let mut state = self.lock();
        let mut unsynced = false;
        loop {
            let Some((mut batch, sync)) = state.queue.pop_front() else {
                if state.stop {
                    return sha;
                }
                state = self.wait(state);
                continue;
            };
            if state.failed.is_some() {
                // Nothing after a failed write: the journal keeps no gap.
                continue;
            }
            state.busy = true;
            drop(state);
            sha.update(&batch);
            let mut result = super::writer::append_to_journal(&mut file, &batch, reserve);
            unsynced |= sync;
            batch.clear();
            state = self.lock();
            if unsynced && result.is_ok() && state.queue.is_empty() {
                drop(state);
                result = sync_journal(&file, blobs);
                unsynced = false;
                state = self.lock();
            }
            state.busy = false;
            state.spare.push(batch);
            if let Err(error) = result {
                state.fail(error);
            }
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_blobs() -> UnsyncedBlobs {
        Arc::new(AtomicBool::new(false))
    }

    #[test]
    fn blobs_written_since_the_last_sync_are_synced_by_the_next_sync_only() {
        let dir = scratch("blobs");
        let blobs: UnsyncedBlobs = Arc::new(AtomicBool::new(true));
        let writer = JournalWriter::new(
            File::create(dir.join("journal")).unwrap(),
            Sha256::new(),
            Arc::new(Mutex::new(None)),
            blobs.clone(),
        )
        .unwrap();
        // Written without a sync: the blobs stay to be synced.
        writer.write(&mut b"a\n".to_vec(), false).unwrap();
        writer.wait().unwrap();
        assert!(blobs.load(Ordering::Acquire));
        // The sync takes them with the journal.
        writer.write(&mut b"b\n".to_vec(), true).unwrap();
        writer.wait().unwrap();
        assert!(!blobs.load(Ordering::Acquire));
        writer.finish().unwrap();
        assert_eq!(std::fs::read(dir.join("journal")).unwrap(), b"a\nb\n");
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("runproof-syncer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn batches_are_written_in_order_and_hashed_as_written() {
        let dir = scratch("order");
        let path = dir.join("journal");
        let file = File::create(&path).unwrap();
        let mut sha = Sha256::new();
        sha.update(b"already written\n");
        let writer = JournalWriter::new(file, sha, Arc::new(Mutex::new(None)), no_blobs()).unwrap();
        let mut expected = b"already written\n".to_vec();
        let mut batch = Vec::new();
        for n in 0..200 {
            let line = format!("record {n}\n");
            batch.extend_from_slice(line.as_bytes());
            expected.extend_from_slice(line.as_bytes());
            if n % 7 == 0 {
                writer.write(&mut batch, n % 14 == 0).unwrap();
                assert!(batch.is_empty(), "the buffer is taken");
            }
        }
        writer.write(&mut batch, true).unwrap();
        writer.wait().unwrap();
        let digest = writer.finish().unwrap().finalize();
        let mut on_disk = b"already written\n".to_vec();
        on_disk.extend_from_slice(&std::fs::read(&path).unwrap());
        assert_eq!(on_disk, expected, "every batch, in order");
        assert_eq!(
            digest,
            Sha256::digest(&expected),
            "the digest of what was handed over"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_sync_is_reported_and_nothing_is_written_after_it() {
        // A pipe cannot be synced (EINVAL): the error must come back, and
        // the batches after it must not be written.
        let (mut reader, writer_end) = {
            let mut fds = [0; 2];
            // SAFETY: pipe(2) fills two descriptors we then own.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            use std::os::fd::FromRawFd as _;
            // SAFETY: both descriptors are fresh and owned here.
            unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
        };
        let writer = JournalWriter::new(
            writer_end,
            Sha256::new(),
            Arc::new(Mutex::new(None)),
            no_blobs(),
        )
        .unwrap();
        writer.write(&mut b"first\n".to_vec(), true).unwrap();
        let error = writer.wait().expect_err("syncing a pipe fails");
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL), "{error}");
        // Every later call fails too, naming the first error, and what is
        // handed over is not written.
        let later = writer
            .write(&mut b"second\n".to_vec(), false)
            .expect_err("still failed");
        assert!(later.to_string().contains("earlier write"), "{later}");
        assert!(writer.wait().is_err());
        assert!(writer.finish().is_err());
        let mut read = String::new();
        io::Read::read_to_string(&mut reader, &mut read).unwrap();
        assert_eq!(read, "first\n");
    }

    #[test]
    fn dropping_the_writer_still_writes_what_was_handed_over() {
        let dir = scratch("drop");
        let path = dir.join("journal");
        let writer = JournalWriter::new(
            File::create(&path).unwrap(),
            Sha256::new(),
            Arc::new(Mutex::new(None)),
            no_blobs(),
        )
        .unwrap();
        for n in 0..50 {
            writer
                .write(&mut format!("record {n}\n").into_bytes(), false)
                .unwrap();
        }
        drop(writer);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 50);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
