//! The seal (`seal.json`, an in-toto Statement v1 listing every file of the
//! bundle) and the file-system helpers the writer and `verify` share:
//! digests, crash-safe writes, listing a bundle's files.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::record::{BundleKind, RunVerdict, SourceRef};

/// The seal's file name, at the bundle's top level.
pub const SEAL_FILE: &str = "seal.json";
/// The header's file name.
pub const HEADER_FILE: &str = "runproof.json";
/// The journal's file name.
pub const JOURNAL_FILE: &str = "events.jsonl";
/// Where blobs live: `blobs/sha256/<hex>`.
pub const BLOB_DIR: &str = "blobs/sha256";
/// in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Our predicate type.
pub const SEAL_PREDICATE_TYPE: &str = "https://runproof.dev/seal/v1";
/// Prefix of temporary files; they never survive a successful write.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// `seal.json`: an in-toto Statement v1. Unknown fields are ignored when
/// reading (the in-toto monotonic principle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// Every file of the bundle except `seal.json`, sorted by name.
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: SealPredicate,
}

/// One sealed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Path relative to the bundle, `/`-separated.
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// The SHA-256 hex, if listed.
    pub fn sha256(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// What the seal asserts about the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealPredicate {
    pub run_id: String,
    pub kind: BundleKind,
    pub source: SourceRef,
    /// Number of journal records.
    pub records: u64,
    /// `sha256:<hex>` of the last journal line (the header's digest when the
    /// journal is empty): the anchor that makes deleting from the end visible.
    pub head: String,
    pub started_at: String,
    pub finished_at: String,
    /// From the `run.end` record, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<RunVerdict>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u32>,
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>` of bytes.
pub fn sha256_ref(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// SHA-256 hex and size of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// [`sha256_file`] of each of `names` under `dir`, in their order, on up
/// to one thread per core, each taking the next file not yet taken. A
/// sweep's seal hashes its input copies, JUnit and Markdown (30 MB at
/// 100,000 checks in one file) with the other cores idle.
pub fn sha256_files(dir: &Path, names: &[&str]) -> Vec<io::Result<(String, u64)>> {
    crate::core::parallel::each_on_threads(names.len(), |i| sha256_file(&dir.join(names[i])))
}

/// Every non-directory entry under `dir`, as sorted `/`-separated relative
/// paths. Symlinks are listed, not followed.
pub fn list_files(dir: &Path) -> io::Result<Vec<String>> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        for entry in fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.file_type()?.is_dir() {
                walk(root, &child, out)?;
            } else {
                out.push(child);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// fsync a directory, so a rename or create inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Everything written so far on `file`'s file system, data and names, to
/// disk in one call (`syncfs`): a sweep's blobs since the last journal
/// sync, instead of two syncs for each in turn. Linux only; elsewhere blobs
/// are synced as they are written ([`BLOBS_SYNCED_IN_BATCHES`]).
pub(crate) fn sync_file_system(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs on a descriptor we own; no memory is passed.
        if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.sync_all()
    }
}

/// Whether a batched journal's blobs are written unsynced and synced with
/// the file system before the journal's next sync ([`sync_file_system`]).
pub(crate) const BLOBS_SYNCED_IN_BATCHES: bool = cfg!(target_os = "linux");

/// Writes `bytes` to `path` crash-safely: a temporary file in the same
/// directory, `sync_all`, `rename`, then fsync the directory. Readers see
/// either nothing or the whole file.
pub(crate) fn write_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_durable_with(path, |file| file.write_all(bytes))
}

/// [`write_durable`] of what `write` writes to the temporary file (a
/// stream): on any error the temporary file is removed and `path` is left
/// as it was.
pub(crate) fn write_durable_with(
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> io::Result<()> {
    write_whole_with(path, write, Synced::FileAndFolder)
}

/// [`write_durable`] short of the folder's sync: the file is on disk, and
/// its name is once the caller syncs the folder, which it does before it
/// relies on it (one sync for the names of several new files).
pub(crate) fn write_synced_renamed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_whole_with(path, |file| file.write_all(bytes), Synced::File)
}

/// [`write_durable_with`] short of the syncs: readers still see nothing or
/// the whole file, and the caller syncs the file and its folder before it
/// relies on them being on disk ([`super::file_syncer`]).
pub(crate) fn write_renamed_with(
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> io::Result<()> {
    write_whole_with(path, write, Synced::Nothing)
}

/// What [`write_whole_with`] syncs.
#[derive(Clone, Copy, PartialEq)]
enum Synced {
    Nothing,
    File,
    FileAndFolder,
}

fn write_whole_with(
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> io::Result<()>,
    synced: Synced,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(
        "{TEMP_PREFIX}{file_name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        write(&mut file)?;
        if synced != Synced::Nothing {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&temp, path)?;
        if synced == Synced::FileAndFolder {
            sync_dir(parent)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
