//! Writing a bundle: the main type here is [`BundleWriter`], which owns one
//! run's folder: header, hash-chained journal, blobs ([`BlobStore`]),
//! reports, and finally the seal.
//!
//! Order matters for crash safety: the header is durable before record 0
//! chains to it; a blob is durable before the record that references it; the
//! seal is written only after the journal is synced, so a crash leaves at
//! most one torn final line and no seal, which `verify` reports as an
//! incomplete (not tampered) bundle.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::file_syncer::FileSyncer;
use super::redact::{Redacted, Redactor};
use super::seal::{
    list_files, sha256_files, sha256_hex, sync_dir, sync_file_system, write_durable,
    write_renamed_with, write_synced_renamed, Seal, SealPredicate, Subject,
    BLOBS_SYNCED_IN_BATCHES, BLOB_DIR, HEADER_FILE, JOURNAL_FILE, SEAL_FILE, SEAL_PREDICATE_TYPE,
    STATEMENT_TYPE,
};
use super::sign::{SealSigner, SIGNATURE_FILE};
use super::syncer::{sync_journal, JournalWriter, Reserve, UnsyncedBlobs};
use crate::core::record::{Event, Header, MissingEvidence, RunVerdict, FORMAT_VERSION};
use crate::core::{BlobRef, BlobSink};

/// When journal appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `sync_data` after every record (runs).
    EveryRecord,
    /// Buffered; flushed and synced every N records and at the end (large sweeps).
    Batched(u32),
}

/// Buffered journal bytes are written out past this size even between syncs,
/// so a huge batch never sits in memory.
const MAX_BUFFERED: usize = 1 << 20;

/// Batched mode: a record appended this long after the last sync is synced
/// with its group at once, so slow checks do not leave a group unsynced
/// for long (group commit bounded by count and by time).
const MAX_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Room reserved when the bundle opens, released just before the closing
/// records (`evidence.error`, `run.end`), the reports and the seal are
/// written, so that they still fit when a blob filled the disk. 512 KiB
/// holds them for runs of a few hundred steps; a larger run's reports may
/// not fit, and that write then fails with exit 3 like any other.
pub const RESERVE_BYTES: u64 = 512 * 1024;

/// The reserve's name: temporary, so a crashed run's leftover only warns.
const RESERVE_FILE: &str = ".tmp-reserve";

/// An open bundle being written by one run.
pub struct BundleWriter {
    dir: PathBuf,
    /// Set while blobs are written and not yet synced (a batched journal's:
    /// see [`BlobStore`]); every sync of the journal goes through
    /// [`sync_journal`], which syncs them first.
    unsynced_blobs: UnsyncedBlobs,
    /// Holds the exclusive `flock` on the bundle directory while open.
    _lock: File,
    header: Header,
    redactor: Arc<Redactor>,
    sync: SyncPolicy,
    journal: File,
    /// SHA-256 of every byte written to the journal so far, when records
    /// are synced one by one (batches are hashed by their [`JournalWriter`]):
    /// the seal lists the journal's digest without reading the file back
    /// (the journal is created empty and only ever appended to, by this
    /// writer).
    journal_sha: Sha256,
    /// Lines not yet written (batched mode).
    pending: Vec<u8>,
    pending_records: u32,
    /// When the journal was last synced (batched mode).
    last_sync: Instant,
    /// Hashes, writes and syncs each batch in the background (batched mode).
    journal_writer: Option<JournalWriter>,
    /// Syncs the copied files in the background ([`Self::copied`]).
    file_syncer: FileSyncer,
    /// SHA-256 (hex) of the files copied in by a [`CopyJob`], by relative
    /// name, taken as they were written: the seal lists them without
    /// reading them back.
    copied_digests: HashMap<String, String>,
    /// Scratch buffers reused for every record.
    line: Vec<u8>,
    event_json: Vec<u8>,
    /// Each record's `t`, formatted without redoing the calendar for every
    /// record of the same second.
    clock: RecordClock,
    /// Next seq, which is also the number of records written.
    seq: u64,
    /// `sha256:<hex>` of the last line (of the header before record 0).
    head: String,
    started: Instant,
    last_mono: Option<u64>,
    blobs: Arc<BlobStore>,
    run_end: Option<(RunVerdict, BTreeMap<String, u32>)>,
    /// The reserved room, until released.
    reserve: Reserve,
    /// Set once the journal is synced for good (seal) so Drop does nothing.
    finished: bool,
    /// Signs `seal.json` into `seal.json.sig` when set.
    signer: Option<Arc<SealSigner>>,
}

impl BundleWriter {
    /// Creates `<artifacts>/<name>/<UTC timestamp>-<run id>/`, locks it and
    /// writes the header. `header.run_id` decides the folder name; the leaf
    /// is created with `create_dir`, so an existing folder is never reused.
    pub fn create(
        artifacts: &Path,
        header: Header,
        redactor: Arc<Redactor>,
        sync: SyncPolicy,
    ) -> io::Result<Self> {
        check_folder_name("source name", &header.source.name)?;
        check_folder_name("run id", &header.run_id)?;
        let parent = artifacts.join(&header.source.name);
        fs::create_dir_all(&parent)?;
        let dir = parent.join(bundle_leaf(&header));
        fs::create_dir(&dir)?;
        sync_dir(&parent)?;

        let lock = File::open(&dir)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(io::Error::last_os_error());
        }

        let mut header_bytes = serde_json::to_vec_pretty(&header)
            .map_err(|e| io::Error::other(format!("header: {e}")))?;
        header_bytes.push(b'\n');
        let header_bytes = redactor.redact_bytes(&header_bytes).into_owned();
        // The header's, the journal's and the reserve's names are synced
        // together, with the folder, below: one sync instead of four on the
        // way to the first record (the empty journal's own entry is on
        // disk with the folder's, and its first batch is synced as it is
        // written; the reserve only holds room).
        write_synced_renamed(&dir.join(HEADER_FILE), &header_bytes)?;
        let head = format!("sha256:{}", sha256_hex(&header_bytes));

        let journal = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(dir.join(JOURNAL_FILE))?;
        let reserve = dir.join(RESERVE_FILE);
        reserve_room(&reserve, RESERVE_BYTES).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: cannot reserve {RESERVE_BYTES} bytes for the closing records: {e}",
                    reserve.display()
                ),
            )
        })?;
        // The folder itself, held open as the bundle's lock.
        lock.sync_all()?;

        // A batched journal's blobs are synced with its batches (see
        // `BlobStore::deferred`); a journal synced at every record has its
        // blobs synced as they are written.
        let unsynced_blobs: UnsyncedBlobs = Arc::new(AtomicBool::new(false));
        let batched = matches!(sync, SyncPolicy::Batched(_));
        let blobs = Arc::new(BlobStore {
            dir: dir.clone(),
            redactor: redactor.clone(),
            known: Mutex::new(foldhash::HashSet::default()),
            missing: Mutex::new(Vec::new()),
            deferred: (batched && BLOBS_SYNCED_IN_BATCHES).then(|| unsynced_blobs.clone()),
            folder_made: AtomicBool::new(false),
        });
        let reserve: Reserve = Arc::new(Mutex::new(Some(reserve)));
        let journal_writer = match sync {
            SyncPolicy::Batched(_) => Some(JournalWriter::new(
                journal.try_clone()?,
                Sha256::new(),
                reserve.clone(),
                unsynced_blobs.clone(),
            )?),
            SyncPolicy::EveryRecord => None,
        };
        Ok(BundleWriter {
            dir,
            unsynced_blobs,
            _lock: lock,
            header,
            redactor,
            sync,
            journal,
            journal_sha: Sha256::new(),
            pending: Vec::new(),
            pending_records: 0,
            last_sync: Instant::now(),
            journal_writer,
            file_syncer: FileSyncer::default(),
            copied_digests: HashMap::new(),
            line: Vec::with_capacity(512),
            event_json: Vec::with_capacity(512),
            clock: RecordClock::default(),
            seq: 0,
            head,
            started: Instant::now(),
            last_mono: None,
            blobs,
            run_end: None,
            reserve,
            finished: false,
            signer: None,
        })
    }

    /// The bundle's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.header.run_id
    }

    /// The header as written (before redaction).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Records appended so far (the next record's seq).
    pub fn records(&self) -> u64 {
        self.seq
    }

    /// Text redacted by the journal's redactor, for a report built beside
    /// the journal (a sweep's per-check reasons): redacted before any
    /// renderer cuts or escapes it.
    pub fn redact(&self, text: &str) -> Redacted<String> {
        Redacted::assume(self.redactor.redact(text).into_owned())
    }

    /// `sha256:<hex>` of the last record's line; the header's digest while
    /// the journal is empty. Print it as a checkpoint to anchor the bundle.
    pub fn head(&self) -> &str {
        &self.head
    }

    /// `seq=<last seq> head=sha256:…`, for CI logs.
    pub fn checkpoint(&self) -> String {
        match self.seq.checked_sub(1) {
            Some(last) => format!("runproof checkpoint seq={last} head={}", self.head),
            None => format!("runproof checkpoint seq=- head={}", self.head),
        }
    }

    /// Appends a record (redacted, chained, synced per policy); returns its seq.
    pub fn append(&mut self, event: &Event) -> io::Result<u64> {
        self.append_line(event)
    }

    /// Appends a record and returns its seq with the event as written: the
    /// redacted form, which is all that observers and reports may see. This
    /// is the one redaction point of a run's events.
    pub fn record(&mut self, event: Event) -> io::Result<(u64, Redacted<Event>)> {
        let prepared = self.preparer().prepare(event)?;
        self.record_prepared(prepared)
    }

    /// What serializes and redacts events for [`Self::record_prepared`] on
    /// any thread: the costly half of a record, done without holding the
    /// writer.
    pub fn preparer(&self) -> EventPreparer {
        EventPreparer {
            redactor: self.redactor.clone(),
        }
    }

    /// Appends an event that [`Self::preparer`] serialized and redacted;
    /// returns its seq with the event as written (see [`Self::record`]).
    pub fn record_prepared(
        &mut self,
        prepared: PreparedEvent,
    ) -> io::Result<(u64, Redacted<Event>)> {
        let seq = self.append_json(&prepared.event, &prepared.json)?;
        Ok((seq, Redacted::assume(prepared.event)))
    }

    /// Evidence that could not be written so far (blobs that failed).
    pub fn missing_evidence(&self) -> Vec<MissingEvidence> {
        self.blobs.missing()
    }

    /// Frees the room reserved at open, for the closing records and seal.
    fn release_reserve(&mut self) {
        release(&self.reserve);
    }

    /// Writes one record line.
    fn append_line(&mut self, event: &Event) -> io::Result<u64> {
        // The scratch buffer is taken, not borrowed: `append_json` may
        // append a record of its own first (`evidence.error`).
        let mut json = std::mem::take(&mut self.event_json);
        let result = serialize_redacted(&self.redactor, event, &mut json)
            .and_then(|_| self.append_json(event, &json));
        self.event_json = json;
        result
    }

    /// Writes one record line around `body`, the event's JSON object as
    /// [`serialize_redacted`] wrote it.
    fn append_json(&mut self, event: &Event, body: &[u8]) -> io::Result<u64> {
        if matches!(event, Event::RunEnd { .. }) {
            // The closing records must fit even on a full disk.
            self.release_reserve();
            let missing = self.blobs.missing();
            if !missing.is_empty() {
                self.append_line(&Event::EvidenceError { missing })?;
            }
        }
        let seq = self.seq;
        let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Strictly increasing even if two records land in the same nanosecond.
        let mono = match self.last_mono {
            Some(last) if elapsed <= last => last + 1,
            _ => elapsed,
        };
        let time = self.clock.format(jiff::Timestamp::now());

        // The envelope by hand: `write!` and serde's string escaping cost
        // some 400 instructions a record, and a sweep writes one a check.
        // The run id needs no escaping: it is a folder name
        // (`check_folder_name`: letters, digits, `.`, `_`, `-`).
        self.line.clear();
        self.line.extend_from_slice(b"{\"v\":");
        push_integer(&mut self.line, u64::from(FORMAT_VERSION));
        self.line.extend_from_slice(b",\"seq\":");
        push_integer(&mut self.line, seq);
        self.line.extend_from_slice(b",\"prev\":\"");
        self.line.extend_from_slice(self.head.as_bytes());
        self.line.extend_from_slice(b"\",\"run\":\"");
        self.line.extend_from_slice(self.header.run_id.as_bytes());
        self.line.extend_from_slice(b"\",\"t\":\"");
        self.line.extend_from_slice(time.as_bytes());
        self.line.extend_from_slice(b"\",\"mono_ns\":");
        push_integer(&mut self.line, mono);
        if body.len() > 2 {
            self.line.push(b',');
            self.line.extend_from_slice(&body[1..]);
        } else {
            self.line.push(b'}');
        }

        let digest = Sha256::digest(&self.line);
        let mut hex = [0u8; 64];
        hex::encode_to_slice(digest, &mut hex).map_err(io::Error::other)?;
        self.head.clear();
        self.head.push_str("sha256:");
        // Hex digits are ASCII.
        self.head
            .push_str(std::str::from_utf8(&hex).map_err(io::Error::other)?);

        match self.sync {
            SyncPolicy::EveryRecord => {
                self.line.push(b'\n');
                // Hashed as handed over: on error the run fails (no seal).
                self.journal_sha.update(&self.line);
                append_to_journal(&mut self.journal, &self.line, &self.reserve)?;
                sync_journal(&self.journal, &self.unsynced_blobs)?;
            }
            SyncPolicy::Batched(n) => {
                self.pending.extend_from_slice(&self.line);
                self.pending.push(b'\n');
                self.pending_records += 1;
                if self.pending_records >= n.max(1) || self.last_sync.elapsed() >= MAX_SYNC_INTERVAL
                {
                    self.commit_group()?;
                } else if self.pending.len() >= MAX_BUFFERED {
                    self.write_pending()?;
                }
            }
        }
        if let Event::RunEnd {
            verdict, counts, ..
        } = event
        {
            self.run_end = Some((*verdict, counts.clone()));
        }
        self.seq += 1;
        self.last_mono = Some(mono);
        Ok(seq)
    }

    /// Hands the buffered records over to be written (not synced): to the
    /// [`JournalWriter`] in batched mode, else written here.
    fn write_pending(&mut self) -> io::Result<()> {
        self.hand_over(false)
    }

    /// Writes the buffered records, and syncs them when `sync`; in batched
    /// mode the [`JournalWriter`] does both on its thread, and this returns
    /// once the buffer is handed over. Each byte is hashed as handed over:
    /// on error the run fails (no seal is written).
    fn hand_over(&mut self, sync: bool) -> io::Result<()> {
        match &self.journal_writer {
            Some(writer) => writer.write(&mut self.pending, sync),
            None => {
                self.journal_sha.update(&self.pending);
                append_to_journal(&mut self.journal, &self.pending, &self.reserve)?;
                self.pending.clear();
                if sync {
                    sync_journal(&self.journal, &self.unsynced_blobs)?;
                }
                Ok(())
            }
        }
    }

    /// Batched mode: hands the group's records over to be written and
    /// synced in the background ([`JournalWriter`]): the appends that
    /// follow do not wait for the disk, and the thread appending (a sweep's,
    /// holding the journal's lock) neither hashes nor writes them. A failed
    /// write or sync fails the next group (or the seal).
    fn commit_group(&mut self) -> io::Result<()> {
        self.hand_over(true)?;
        self.pending_records = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Writes buffered records and syncs the journal; returns once both
    /// are done.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending_records > 0 || !self.pending.is_empty() {
            self.hand_over(true)?;
        } else if self.sync == SyncPolicy::EveryRecord {
            sync_journal(&self.journal, &self.unsynced_blobs)?;
        }
        if let Some(writer) = &self.journal_writer {
            writer.wait()?;
        }
        self.pending_records = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Signs the seal with `signer` (`--sign-key`).
    pub fn set_signer(&mut self, signer: Option<Arc<SealSigner>>) {
        self.signer = signer;
    }

    /// Where probes store bodies and output.
    pub fn blobs(&self) -> Arc<BlobStore> {
        self.blobs.clone()
    }

    /// Writes a derived file (`summary.md`, `junit.xml`, `runbook.toml`,
    /// `reports/…`), redacted and crash-safe. The journal, header, seal and
    /// blobs have their own writers and are refused here.
    pub fn write_file(&mut self, relative: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.derived_path(relative)?;
        if path.parent() != Some(self.dir.as_path()) {
            // The folder made for it is an entry of the bundle's.
            sync_dir(&self.dir)?;
        }
        let redacted = self.redactor.redact_bytes(bytes);
        write_durable(&path, &redacted)
    }

    /// [`BundleWriter::write_file`] of several files read from `open(i)`,
    /// the reader of `relative[i]` (large input files), redacted a window at
    /// a time: the same bytes as redacting each whole, in memory that does
    /// not grow with it (see [`redact_stream`](super::redact_stream)). On up
    /// to one thread per core ([`CopyJob::run`]). The first error (in file
    /// order) is returned once every thread stopped; files copied whole
    /// before it stay, and nothing is synced.
    pub fn write_files_from<R: io::Read>(
        &mut self,
        relative: &[String],
        open: impl FnMut(usize) -> io::Result<R> + Send,
    ) -> io::Result<()> {
        let job = self.copy_job(relative)?;
        job.run(crate::core::parallel::cores(), open)?;
        self.copied(job)
    }

    /// The copies of `relative`, their paths checked and their folders
    /// made, to be made on any thread ([`CopyJob::run`]) while the run goes
    /// on: a sweep copies its input while its first checks run. Hand the
    /// job back to [`BundleWriter::copied`] once it ran.
    pub fn copy_job(&self, relative: &[String]) -> io::Result<CopyJob> {
        let paths = relative
            .iter()
            .map(|r| self.derived_path(r))
            .collect::<io::Result<Vec<PathBuf>>>()?;
        Ok(CopyJob {
            digests: paths.iter().map(|_| OnceLock::new()).collect(),
            relative: relative.to_vec(),
            paths,
            redactor: self.redactor.clone(),
        })
    }

    /// The copies of `job`, made ([`CopyJob::run`] returned `Ok`): synced
    /// together while the run goes on (the seal waits for them), and
    /// listed by the seal with the digests taken as they were written.
    pub fn copied(&mut self, job: CopyJob) -> io::Result<()> {
        for ((relative, path), digest) in job.relative.into_iter().zip(&job.paths).zip(job.digests)
        {
            let digest = digest
                .into_inner()
                .ok_or_else(|| io::Error::other(format!("{relative}: not copied")))?;
            let folder = path.parent().unwrap_or(&self.dir);
            if folder != self.dir {
                self.file_syncer.sync_dir_later(&self.dir);
            }
            self.file_syncer.sync_dir_later(folder);
            self.copied_digests.insert(relative, digest);
        }
        self.file_syncer.sync_all_later(job.paths);
        Ok(())
    }

    /// Files written into the bundle's folder without a sync (`relative`
    /// to it): synced from now on, several at once, and before the seal
    /// lists them, with the folder.
    pub fn sync_later(&mut self, relative: &[&str]) {
        self.file_syncer.sync_dir_later(&self.dir);
        self.file_syncer
            .sync_all_later(relative.iter().map(|name| self.dir.join(name)).collect());
    }

    /// Where the derived file `relative` goes (its folder created): an
    /// error for a path out of the bundle or a name reserved for the
    /// journal, header, seal and blobs.
    fn derived_path(&self, relative: &str) -> io::Result<PathBuf> {
        let invalid =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{relative:?}: {why}"));
        let parts: Vec<&str> = relative.split('/').collect();
        if relative.is_empty()
            || relative.starts_with('/')
            || parts.iter().any(|p| {
                p.is_empty() || *p == "." || *p == ".." || p.starts_with('.') || p.contains('\\')
            })
        {
            return Err(invalid("not a plain relative path"));
        }
        if [
            SEAL_FILE,
            SIGNATURE_FILE,
            HEADER_FILE,
            JOURNAL_FILE,
            "blobs",
        ]
        .contains(&parts[0])
        {
            return Err(invalid("reserved name"));
        }
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            if parent != self.dir {
                fs::create_dir_all(parent)?;
            }
        }
        Ok(path)
    }

    /// Syncs the journal and writes `seal.json` last, listing every other
    /// file with its SHA-256, the record count and the chain head. Returns
    /// the bundle's folder. With a signer, `seal.json.sig` is written first,
    /// so a `seal.json` on disk always has its signature beside it.
    pub fn seal(mut self) -> io::Result<PathBuf> {
        self.release_reserve();
        self.flush()?;
        let journal_digest = hex::encode(
            match self.journal_writer.take() {
                Some(writer) => writer.finish()?,
                None => self.journal_sha.clone(),
            }
            .finalize(),
        );
        self.file_syncer.finish()?;
        // Blobs written since the journal's last sync, before the seal
        // lists them.
        if self.unsynced_blobs.swap(false, Ordering::AcqRel) {
            sync_file_system(&self.journal)?;
        }
        self.journal.sync_all()?;
        let names: Vec<String> = list_files(&self.dir)?
            .into_iter()
            .filter(|name| name != SEAL_FILE && name != SIGNATURE_FILE)
            .collect();
        // The journal's digest, the copies' and the blobs' were kept as
        // they were written (a blob is named by its digest: a sweep whose
        // bodies differ has a blob per check, each read again otherwise);
        // the rest are read.
        let written_blob = |name: &str| {
            let hex = name.strip_prefix(BLOB_DIR)?.strip_prefix('/')?;
            self.blobs.written(hex).then(|| hex.to_string())
        };
        let others: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|name| {
                *name != JOURNAL_FILE
                    && !self.copied_digests.contains_key(*name)
                    && written_blob(name).is_none()
            })
            .collect();
        let mut hashed = sha256_files(&self.dir, &others).into_iter();
        let mut subject = Vec::with_capacity(names.len());
        for name in names {
            let sha = if name == JOURNAL_FILE {
                journal_digest.clone()
            } else if let Some(sha) = self.copied_digests.remove(&name) {
                sha
            } else if let Some(sha) = written_blob(&name) {
                sha
            } else {
                hashed.next().expect("one digest per file")?.0
            };
            subject.push(Subject {
                name,
                digest: BTreeMap::from([("sha256".to_string(), sha)]),
            });
        }
        let (verdict, counts) = match &self.run_end {
            Some((v, c)) => (Some(*v), c.clone()),
            None => (None, BTreeMap::new()),
        };
        let seal = Seal {
            statement_type: STATEMENT_TYPE.to_string(),
            subject,
            predicate_type: SEAL_PREDICATE_TYPE.to_string(),
            predicate: SealPredicate {
                run_id: self.header.run_id.clone(),
                kind: self.header.kind,
                source: self.header.source.clone(),
                records: self.seq,
                head: self.head.clone(),
                started_at: self.header.started_at.clone(),
                finished_at: format!("{:.3}", jiff::Timestamp::now()),
                verdict,
                counts,
            },
        };
        let mut bytes = serde_json::to_vec_pretty(&seal).map_err(io::Error::other)?;
        bytes.push(b'\n');
        // The seal holds names and digests only; redaction here would only
        // ever corrupt a digest, so it is written as is.
        if let Some(signer) = &self.signer {
            let signature = signer.sign(&bytes).map_err(io::Error::other)?;
            write_durable(&self.dir.join(SIGNATURE_FILE), signature.as_bytes())?;
        }
        write_durable(&self.dir.join(SEAL_FILE), &bytes)?;
        self.finished = true;
        Ok(self.dir.clone())
    }
}

impl Drop for BundleWriter {
    /// An unsealed writer (error path, panic) still gets its buffered
    /// records to disk: the bundle then verifies as incomplete.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.flush();
        }
    }
}

/// The bundle's folder name, `<UTC timestamp>-<run id>`, from its header.
pub fn bundle_leaf(header: &Header) -> String {
    let started = header
        .started_at
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|_| jiff::Timestamp::now());
    format!("{}-{}", started.strftime("%Y%m%dT%H%M%SZ"), header.run_id)
}

/// The bundle's path relative to the artifacts folder: `<name>/<leaf>`.
pub fn bundle_label(header: &Header) -> String {
    format!("{}/{}", header.source.name, bundle_leaf(header))
}

/// Writes what `reader` reads to `path`, redacted a window at a time, whole
/// or not at all (renamed into place, not synced); its writeback to disk
/// started as soon as it is written (the seal's `fsync` then finds little
/// left to do). Returns the SHA-256 (hex) of what was written.
fn copy_redacted_hashed(
    redactor: &Redactor,
    path: &Path,
    reader: impl io::Read,
) -> io::Result<String> {
    let mut sha = Sha256::new();
    write_renamed_with(path, |file| {
        let mut out = io::BufWriter::new(Hashing {
            inner: &mut *file,
            sha: &mut sha,
        });
        super::redact_stream::redact_stream(redactor, reader, &mut out)?;
        out.flush()?;
        drop(out);
        start_writeback(file);
        Ok(())
    })?;
    Ok(hex::encode(sha.finalize()))
}

/// Asks the kernel to start writing `file`'s dirty pages to disk, without
/// waiting. Only a hint: the `fsync` that makes the file durable comes
/// later, and finds the data already written.
fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    // SAFETY: a descriptor we own; the call reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// A writer that hashes what it writes.
struct Hashing<'a, W> {
    inner: W,
    sha: &'a mut Sha256,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes the reserve file, once.
fn release(reserve: &Reserve) {
    let taken = reserve.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(path) = taken {
        let _ = fs::remove_file(&path);
    }
}

/// Serializes `event` into `json` (cleared first) and redacts it there;
/// says whether redaction changed it. Only the event is redacted: the
/// envelope (seq, prev, run, t, mono_ns) holds no secrets and must not be
/// touched (a hex-looking value could otherwise rewrite a digest and break
/// the chain).
fn serialize_redacted(redactor: &Redactor, event: &Event, json: &mut Vec<u8>) -> io::Result<bool> {
    json.clear();
    super::event_json::write_event(json, event)
        .map_err(|e| io::Error::other(format!("record: {e}")))?;
    let changed = match redactor.redact_bytes(json) {
        Cow::Borrowed(_) => false,
        Cow::Owned(bytes) => {
            *json = bytes;
            true
        }
    };
    if json.first() != Some(&b'{') {
        return Err(io::Error::other(
            "record event did not serialize to an object",
        ));
    }
    Ok(changed)
}

/// An event serialized and redacted by an [`EventPreparer`], ready for
/// [`BundleWriter::record_prepared`].
pub struct PreparedEvent {
    /// The event as written: read back from `json` when redaction changed
    /// it.
    event: Event,
    /// Its JSON object, redacted.
    json: Vec<u8>,
}

/// Serializes and redacts events with a bundle's redactor, on any thread
/// ([`BundleWriter::preparer`]). A sweep's threads share one writer: this
/// keeps most of a record's work out of the lock they take turns holding.
#[derive(Clone)]
pub struct EventPreparer {
    redactor: Arc<Redactor>,
}

impl EventPreparer {
    pub fn prepare(&self, event: Event) -> io::Result<PreparedEvent> {
        // About a sweep's passing record, so most never grow; a `plan`
        // record (a sweep announces its checks a thousand at a time, some
        // 130 bytes each) sized for its steps instead of grown by doubling.
        let capacity = match &event {
            Event::Plan { steps } => 1024 + steps.len() * 160,
            _ => 1024,
        };
        let mut json = Vec::with_capacity(capacity);
        let event = if serialize_redacted(&self.redactor, &event, &mut json)? {
            // A value was replaced: what the journal holds is the event now.
            serde_json::from_slice(&json).map_err(|e| {
                io::Error::other(format!("a redacted record is not valid JSON: {e}"))
            })?
        } else {
            event
        };
        Ok(PreparedEvent { event, json })
    }

    /// Text redacted by the bundle's redactor (see [`BundleWriter::redact`]).
    pub fn redact(&self, text: &str) -> Redacted<String> {
        Redacted::assume(self.redactor.redact(text).into_owned())
    }
}

/// Copies into a bundle, redacted ([`BundleWriter::copy_job`]).
pub struct CopyJob {
    /// Each copy's name in the bundle, and its path.
    relative: Vec<String>,
    paths: Vec<PathBuf>,
    redactor: Arc<Redactor>,
    /// Each copy's SHA-256 (hex), set once it is written and renamed.
    digests: Vec<OnceLock<String>>,
}

impl CopyJob {
    /// Copies each file, `open(i)` giving the reader of the `i`th, on up to
    /// `threads` threads, each taking the next file not yet taken: a
    /// sweep's input in files of 1,000 checks. After a failure the other
    /// threads stop once their current file is done; the first error (in
    /// file order) is returned.
    pub fn run<R: io::Read>(
        &self,
        threads: usize,
        open: impl FnMut(usize) -> io::Result<R> + Send,
    ) -> io::Result<()> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let open = Mutex::new(open);
        let failed = AtomicBool::new(false);
        let copied = crate::core::parallel::each_on_up_to(threads, self.paths.len(), |i| {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            // Opened under the lock, copied outside it (the guard ends here).
            let reader = (open.lock().unwrap_or_else(|p| p.into_inner()))(i);
            let copy = reader
                .and_then(|reader| copy_redacted_hashed(&self.redactor, &self.paths[i], reader));
            match copy {
                Ok(digest) => {
                    let _ = self.digests[i].set(digest);
                    Ok(())
                }
                Err(error) => {
                    failed.store(true, Ordering::Relaxed);
                    Err(error)
                }
            }
        });
        copied.into_iter().collect::<io::Result<Vec<()>>>()?;
        Ok(())
    }
}

/// Appends `bytes` to the journal. When the disk is full (something else
/// filled it), the reserve is given up so the journal can go on and the
/// run still reaches `run.end` and the seal; a line is never left torn by a
/// retry, since the bytes already written are not written again.
pub(super) fn append_to_journal(
    journal: &mut File,
    bytes: &[u8],
    reserve: &Reserve,
) -> io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        match journal.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && is_held(reserve) => {
                release(reserve);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the reserve is still held.
fn is_held(reserve: &Reserve) -> bool {
    reserve.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// Allocates `len` bytes at `path` for real (not a sparse file), so the room
/// is there to give back later.
fn reserve_room(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let result = (|| {
        // SAFETY: posix_fallocate on a descriptor we own; no memory is
        // passed. glibc falls back to writing blocks where the file system
        // lacks fallocate.
        let err = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
        // Not synced: the room is the file system's as soon as it is
        // allocated, and a crash leaves nothing to keep.
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// A record's time as `{:.3}` formats a [`jiff::Timestamp`]
/// (`2026-01-02T03:04:05.678Z`), with the text up to the second kept from
/// the previous record: the calendar arithmetic and formatting run once a
/// second instead of once a record.
#[derive(Default)]
struct RecordClock {
    /// The second the text is for, and the text up to that second.
    second: Option<i64>,
    prefix: String,
    text: String,
}

impl RecordClock {
    fn format(&mut self, now: jiff::Timestamp) -> &str {
        let second = now.as_second();
        let millis = now.subsec_millisecond();
        self.text.clear();
        if second < 0 || millis < 0 {
            // Before 1970 the parts have signs; never the case for `now`.
            let _ = write!(self.text, "{now:.3}");
            return &self.text;
        }
        if self.second != Some(second) {
            self.prefix.clear();
            let whole = jiff::Timestamp::from_second(second).unwrap_or(now);
            let _ = write!(self.prefix, "{whole:.3}");
            // `….000Z` → `…`: the fraction and the zone are written per record.
            self.prefix.truncate(self.prefix.len().saturating_sub(5));
            self.second = Some(second);
        }
        self.text.push_str(&self.prefix);
        let millis = millis as u32;
        self.text.push('.');
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            self.text.push(char::from(b'0' + digit as u8));
        }
        self.text.push('Z');
        &self.text
    }
}

/// Appends `n` in decimal, as JSON writes an integer.
fn push_integer(out: &mut Vec<u8>, n: u64) {
    let mut buffer = [0u8; 20];
    out.extend_from_slice(crate::core::decimal::integer_digits(n, &mut buffer));
}

/// A folder-name component: letters, digits, `.`, `_`, `-`; not `.`/`..`.
fn check_folder_name(what: &str, name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {name:?} is not a safe folder name (letters, digits, '.', '_', '-')"),
        ))
    }
}

/// Content-addressed blob storage inside a bundle. Shared by every probe of
/// a run; `put` takes `&self` and is safe to call concurrently.
pub struct BlobStore {
    dir: PathBuf,
    redactor: Arc<Redactor>,
    /// Digests already written in this bundle.
    known: Mutex<foldhash::HashSet<String>>,
    /// Blobs that could not be written, for the `evidence.error` record.
    missing: Mutex<Vec<MissingEvidence>>,
    /// For a batched journal (a sweep's): blobs are written unsynced, and
    /// this is set; the journal's next sync syncs the file system first
    /// ([`super::syncer::sync_journal`]), so no record is on disk before a
    /// blob it names. A sweep whose checks answer with bodies that differ
    /// (a time, a counter) writes a blob per check: two syncs each in turn
    /// on the sweep's thread took 10,000 checks from 0.2 to 4.5 s. `None`:
    /// each blob is synced as it is written (a run's journal, synced at
    /// every record).
    deferred: Option<UnsyncedBlobs>,
    /// `blobs/sha256/` exists (asked of the file system once, not per blob).
    folder_made: AtomicBool,
}

impl BlobStore {
    /// Whether this store wrote the blob whose digest is `hex` (whole: it
    /// is listed once written), so that its digest is known.
    fn written(&self, hex: &str) -> bool {
        self.known.lock().is_ok_and(|known| known.contains(hex))
    }

    /// Blobs that could not be written so far.
    pub fn missing(&self) -> Vec<MissingEvidence> {
        self.missing.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl BlobSink for BlobStore {
    fn register_secret(&self, name: &str, value: &str) {
        self.redactor.register(name, value);
    }

    fn put(&self, role: &str, bytes: &[u8], truncated: bool) -> io::Result<BlobRef> {
        // A capped body may end inside a secret: its prefix is masked too.
        let redacted = if truncated {
            self.redactor.redact_truncated_bytes(bytes)
        } else {
            self.redactor.redact_bytes(bytes)
        };
        // `sha256:<hex>` written straight into one string (every check of a
        // sweep stores a body).
        let mut digest = String::with_capacity(7 + 64);
        digest.push_str("sha256:");
        let mut hex_digits = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(&redacted), &mut hex_digits)
            .map_err(io::Error::other)?;
        digest.push_str(std::str::from_utf8(&hex_digits).map_err(io::Error::other)?);
        let size = redacted.len() as u64;
        let blob_ref = BlobRef {
            role: role.to_string(),
            digest,
            size,
            truncated,
        };
        let hex = &blob_ref.digest["sha256:".len()..];
        let seen = self.known.lock().map(|k| k.contains(hex)).unwrap_or(false);
        if seen {
            return Ok(blob_ref);
        }
        let dir = self.dir.join(BLOB_DIR);
        let path = dir.join(hex);
        let written = (|| {
            if !self.folder_made.load(Ordering::Acquire) {
                if !dir.is_dir() {
                    fs::create_dir_all(&dir)?;
                    if self.deferred.is_none() {
                        sync_dir(&self.dir.join("blobs"))?;
                        sync_dir(&self.dir)?;
                    }
                }
                self.folder_made.store(true, Ordering::Release);
            }
            // Two tasks storing the same bytes at once both write a temporary
            // file and rename it over the same name: same content, no harm.
            match &self.deferred {
                Some(unsynced) => {
                    write_renamed_with(&path, |file| file.write_all(&redacted))?;
                    // Before the record that names it is handed over.
                    unsynced.store(true, Ordering::Release);
                    Ok(())
                }
                None => write_durable(&path, &redacted),
            }
        })();
        if let Err(err) = written {
            // Lost evidence is runproof's failure: remembered here, recorded
            // before run.end and turned into exit 3 by the session's caller.
            if let Ok(mut missing) = self.missing.lock() {
                missing.push(MissingEvidence {
                    role: role.to_string(),
                    path: format!("{BLOB_DIR}/{hex}"),
                    size,
                    cause: err.to_string(),
                });
            }
            return Err(io::Error::new(
                err.kind(),
                format!("{}: {err}", path.display()),
            ));
        }
        if let Ok(mut known) = self.known.lock() {
            known.insert(hex.to_string());
        }
        Ok(blob_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::RecordClock;

    /// The cached clock writes exactly what `{:.3}` of the timestamp writes,
    /// within a second, across seconds, days and years, and going back.
    #[test]
    fn record_clock_matches_jiff() {
        let mut clock = RecordClock::default();
        let nanos: [i128; 12] = [
            0,
            999_999_999,
            1_000_000_000,
            1_767_225_599_999_000_000, // 2025-12-31T23:59:59.999
            1_767_225_600_000_000_000, // 2026-01-01T00:00:00.000
            1_767_225_600_000_999_999,
            1_767_225_600_001_000_000,
            1_767_225_600_099_500_000,
            1_767_225_600_100_000_000,
            1_767_225_601_500_000_000,
            1_767_225_600_700_000_000, // an earlier second again
            4_102_444_800_123_456_789, // 2100
        ];
        for n in nanos {
            let t = jiff::Timestamp::from_nanosecond(n).unwrap();
            assert_eq!(clock.format(t), format!("{t:.3}"), "at {n} ns");
        }
        let now = jiff::Timestamp::now();
        assert_eq!(clock.format(now), format!("{now:.3}"));
        // Before 1970 the slow path gives the same text as well.
        let old = jiff::Timestamp::from_nanosecond(-1_500_000_000).unwrap();
        assert_eq!(clock.format(old), format!("{old:.3}"));
    }
}
