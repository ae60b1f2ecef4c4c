//! Writing a bundle: header, chained journal, blobs, reports, seal. STUB.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{Event, Header};
use super::redact::Redactor;
use crate::check::{BlobRef, BlobSink};

/// When journal appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `sync_data` after every record (runs).
    EveryRecord,
    /// Every N records and at the end (large sweeps).
    Batched(u32),
}

/// An open bundle being written by one run.
pub struct BundleWriter {
    dir: PathBuf,
    run_id: String,
    blobs: Arc<BlobStore>,
}

impl BundleWriter {
    /// Creates `<artifacts>/<name>/<UTC timestamp>-<run id>/`, locks it and
    /// writes the header. `header.run_id` decides the folder name.
    pub fn create(
        artifacts: &Path,
        header: Header,
        redactor: Arc<Redactor>,
        sync: SyncPolicy,
    ) -> io::Result<Self> {
        let _ = (redactor, sync);
        let dir = artifacts.join(&header.source.name).join(&header.run_id);
        std::fs::create_dir_all(&dir)?;
        Ok(BundleWriter {
            blobs: Arc::new(BlobStore { dir: dir.clone() }),
            dir,
            run_id: header.run_id,
        })
    }

    /// The bundle's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Appends a record (redacted, chained, synced per policy); returns its seq.
    pub fn append(&mut self, event: &Event) -> io::Result<u64> {
        let _ = event;
        Ok(0)
    }

    /// Where probes store bodies and output.
    pub fn blobs(&self) -> Arc<BlobStore> {
        self.blobs.clone()
    }

    /// Writes a derived file (report, runbook copy), redacted, crash-safe.
    pub fn write_file(&mut self, relative: &str, bytes: &[u8]) -> io::Result<()> {
        std::fs::write(self.dir.join(relative), bytes)
    }

    /// Syncs the journal and writes `seal.json` listing every file.
    pub fn seal(self) -> io::Result<PathBuf> {
        Ok(self.dir)
    }
}

/// Content-addressed blob storage inside a bundle.
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobSink for BlobStore {
    fn put(&self, role: &str, bytes: &[u8], truncated: bool) -> io::Result<BlobRef> {
        let _ = &self.dir;
        Ok(BlobRef {
            role: role.to_string(),
            digest: String::new(),
            size: bytes.len() as u64,
            truncated,
        })
    }
}
