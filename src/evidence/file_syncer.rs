//! Durability of the bundle's copied files off the run's path: each file
//! written whole (the copies of a sweep's check files) is synced on a thread
//! of its own while the run goes on, the folders they were renamed into once
//! at the end, and the seal waits for all of it before it lists them.
//!
//! Synced one by one before the run, a sweep's 100 check files cost 300
//! `fsync`s on the run's path: 190 ms on the benchmark machine, with the
//! other core idle. A copy is complete (written whole, then renamed) before
//! the run starts either way; only its sync to disk moves.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use super::seal::sync_dir;

/// Syncs the files it is given, in order, on a thread started with the
/// first; [`FileSyncer::finish`] syncs their folders and returns the first
/// error met.
#[derive(Default)]
pub struct FileSyncer {
    worker: Option<(Sender<PathBuf>, JoinHandle<io::Result<()>>)>,
    /// Folders that gained an entry: synced once, after every file.
    dirs: BTreeSet<PathBuf>,
}

impl FileSyncer {
    /// Syncs `file` (renamed into `dir`) soon; the caller goes on at once.
    pub fn sync_later(&mut self, file: PathBuf, dir: &Path) -> io::Result<()> {
        self.dirs.insert(dir.to_path_buf());
        if self.worker.is_none() {
            let (sender, files) = mpsc::channel::<PathBuf>();
            let thread = std::thread::Builder::new()
                .name("file-sync".into())
                .spawn(move || {
                    for file in files {
                        File::open(&file)?.sync_all()?;
                    }
                    Ok(())
                });
            match thread {
                Ok(thread) => self.worker = Some((sender, thread)),
                // No thread to be had: synced here, as before.
                Err(_) => return File::open(&file)?.sync_all(),
            }
        }
        if let Some((sender, _)) = &self.worker {
            if let Err(unsent) = sender.send(file) {
                // The thread has stopped on an error, which `finish` returns.
                drop(unsent);
            }
        }
        Ok(())
    }

    /// A folder that gained an entry (created inside the bundle): synced
    /// with the others at the end.
    pub fn sync_dir_later(&mut self, dir: &Path) {
        self.dirs.insert(dir.to_path_buf());
    }

    /// Waits for every file's sync, then syncs the folders; the first error
    /// met, if any.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some((sender, thread)) = self.worker.take() {
            drop(sender);
            thread
                .join()
                .map_err(|_| io::Error::other("the file sync thread panicked"))??;
        }
        for dir in std::mem::take(&mut self.dirs) {
            sync_dir(&dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "runproof-file-syncer-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn syncs_every_file_given_and_finishes() {
        let dir = scratch("ok");
        let mut syncer = FileSyncer::default();
        for n in 0..20 {
            let path = dir.join(format!("f{n}"));
            std::fs::write(&path, format!("{n}")).unwrap();
            syncer.sync_later(path, &dir).unwrap();
        }
        syncer.finish().unwrap();
        // Nothing left to wait for: a second finish is a no-op.
        syncer.finish().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_cannot_be_synced_fails_the_finish() {
        let dir = scratch("missing");
        let mut syncer = FileSyncer::default();
        syncer.sync_later(dir.join("gone"), &dir).unwrap();
        let err = syncer.finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
