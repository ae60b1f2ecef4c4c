//! A large check file read from disk a chunk of checks at a time
//! ([`CheckChunks`]): neither the file's text nor all its checks are ever
//! held, so a sweep of one file of a million checks runs in the memory of a
//! thousand.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use sha2::{Digest, Sha256};

use super::{
    anchored, check_notify_references, parse_section, Document, Reader, SECTIONED_MIN_BYTES,
};
use crate::core::repeats::{id_hash, repeated_hashes};
use crate::core::template::with_span_offset;
use crate::runbook::model::{CheckFile, Step};
use crate::runbook::sections::{Line, Splitter};
use crate::runbook::step::parse_steps;
use crate::runbook::validate;

/// Checks per chunk of [`CheckChunks`].
pub const CHUNK_CHECKS: usize = 1_000;

/// Bytes read from the file at a time.
const READ_BUFFER: usize = 64 * 1024;

/// A large valid check file read a chunk of checks at a time, so that a
/// sweep never holds every check of it, nor its text: [`CheckChunks::open`]
/// reads the file once, line by line, splitting it into sections (the rules
/// of [`crate::runbook::sections::split`]), reading its other tables
/// (`[secrets]`, `[vars]`, `[defaults]`, `[notify]`, wherever they stand)
/// and hashing it; then each call of [`CheckChunks::next_chunk`] reads the
/// next [`CHUNK_CHECKS`] check sections from the file, in order, and parses,
/// validates and builds them. A sweep's first pass reads most files once
/// instead ([`CheckChunks::read_once`]: tables first, then chunks, in the
/// same read), and reads them again later with [`CheckChunks::resume`].
///
/// Only for files whose checks stand alone: `open` gives `None` for a small
/// file or one the section splitter is unsure of, and a chunk fails for any
/// diagnostic, a `depends_on`, or a capture reference (rules that span
/// checks). The caller then reads the file whole, which reports every
/// problem where it is: this path never says anything of its own. Ids
/// repeated in two chunks are the caller's to find (see
/// [`CheckChunks::ids_unique`]).
///
/// The chunks are read from the file as it is when they are reached: the
/// chunk pass hashes what it reads, and the last chunk is refused
/// ([`ReadWhole::Changed`]) when the file's SHA-256 is not the one `open`
/// computed. A change is so detected at the end of the file at the latest;
/// the chunks handed out before came from the changed file.
pub struct CheckChunks {
    /// The tables other than checks (shared with [`ChunkedFile`]).
    reader: Arc<Reader>,
    env: EnvLookup,
    /// SHA-256 hex of the file as `open` read it.
    sha256: String,
    /// Its check sections, counted by `open`.
    checks: usize,
    /// The chunk pass, opened at the first chunk.
    pass: Option<ChunkPass>,
    /// The file to read the checks from.
    path: std::path::PathBuf,
    /// Check sections per chunk ([`CHUNK_CHECKS`] unless set).
    chunk_checks: usize,
    done: bool,
    /// The file's size and time when it was opened.
    stamp: FileStamp,
}

/// What [`CheckChunks::open`] learnt of a file, kept to read its chunks
/// again ([`CheckChunks::resume`]) without reading the whole file first
/// once more: its tables other than checks, its hash, its check count, and
/// its size and modification time, which a file edited since no longer has.
#[derive(Clone)]
pub struct ChunkedFile {
    reader: Arc<Reader>,
    sha256: String,
    checks: usize,
    stamp: FileStamp,
}

impl std::fmt::Debug for ChunkedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedFile")
            .field("sha256", &self.sha256)
            .field("checks", &self.checks)
            .field("stamp", &self.stamp)
            .finish()
    }
}

/// A file's size and modification time, as `stat` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// How a chunked read looks up `{{env:NAME}}` (owned: chunks outlive the
/// caller's closure).
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A chunk of a [`CheckChunks`] could not be read on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadWhole {
    /// Something only the whole-file reader judges (a diagnostic, a
    /// dependency, a capture): read the file whole instead.
    Unusual,
    /// The file is no longer what `open` read (its hash, its sections, its
    /// encoding, or it cannot be read).
    Changed,
}

/// How [`CheckChunks::read_once`] ended.
pub enum ReadOnce {
    /// Every chunk was handed out: what the read learnt of the file.
    Read(Box<CheckChunks>),
    /// A table other than checks follows a check: read the tables first
    /// ([`CheckChunks::open_from`]), then the chunks.
    TwoPasses,
    /// Not for chunks (small and linking its checks, no check, not UTF-8, a
    /// problem anywhere): read the file whole, which reports it.
    Whole,
}

/// A file read line by line, numbered, every byte hashed.
///
/// Read a block at a time into one buffer, each line handed out from it
/// where it lies and each block hashed whole: the first pass of a
/// 100,000-check file goes through its 19 MB before anything else can
/// start.
struct Lines {
    file: File,
    /// SHA-256 of every byte read so far (at the end: of the file).
    hasher: Sha256,
    /// Bytes read, the next line starting at `start`.
    buffer: Vec<u8>,
    start: usize,
    /// Where the search for the next line end resumes (after a refill,
    /// the bytes before it hold none).
    searched: usize,
    /// `buffer[..valid]` is UTF-8: each block is checked once as it is
    /// read, not each line as it is handed out (a check's seven short lines
    /// cost about 800 instructions that way, in each pass over the file).
    valid: usize,
    /// Whether the file has no more bytes.
    ended: bool,
    /// Byte offset and 1-based number of the line just read.
    offset: usize,
    number: usize,
    /// Where the next line starts.
    next_offset: usize,
    next_number: usize,
}

impl Lines {
    fn open(path: &Path) -> io::Result<Lines> {
        Ok(Lines {
            file: File::open(path)?,
            hasher: Sha256::new(),
            buffer: Vec::with_capacity(READ_BUFFER),
            start: 0,
            searched: 0,
            valid: 0,
            ended: false,
            offset: 0,
            number: 1,
            next_offset: 0,
            next_number: 1,
        })
    }

    /// The next line (with its line ending) with its offset and line
    /// number, `Ok(None)` at the end, `Err(InvalidData)` when it is not
    /// UTF-8.
    fn next(&mut self) -> io::Result<Option<(&str, usize, usize)>> {
        let end = loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buffer[self.searched..]) {
                break self.searched + at + 1;
            }
            if self.ended {
                if self.start == self.buffer.len() {
                    return Ok(None);
                }
                break self.buffer.len();
            }
            self.refill()?;
        };
        if end > self.valid {
            // The line holds the first byte that is not UTF-8 (or a
            // character the file's end cut short).
            let error = std::str::from_utf8(&self.buffer[self.start..end])
                .err()
                .map_or_else(|| "not UTF-8".to_string(), |e| e.to_string());
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        let line = &self.buffer[self.start..end];
        self.start = end;
        self.searched = end;
        self.offset = self.next_offset;
        self.number = self.next_number;
        self.next_offset += line.len();
        self.next_number += usize::from(line.last() == Some(&b'\n'));
        // SAFETY: `line` lies within `buffer[..valid]`, which `refill`
        // checked is UTF-8, and it starts and ends at a line's bounds:
        // after a `\n` (ASCII, never inside a character) or at the
        // buffer's start, and before one or at the end of the valid bytes.
        let line = unsafe { std::str::from_utf8_unchecked(line) };
        Ok(Some((line, self.offset, self.number)))
    }

    /// Moves the line begun to the front and reads the next block after it.
    fn refill(&mut self) -> io::Result<()> {
        self.buffer.drain(..self.start);
        // Every line handed out was valid: `start <= valid`.
        self.valid -= self.start;
        self.start = 0;
        let kept = self.buffer.len();
        self.searched = kept;
        self.buffer.resize(kept + READ_BUFFER, 0);
        let read = loop {
            match io::Read::read(&mut self.file, &mut self.buffer[kept..]) {
                Ok(read) => break read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buffer.truncate(kept);
                    return Err(e);
                }
            }
        };
        self.buffer.truncate(kept + read);
        self.hasher.update(&self.buffer[kept..]);
        self.ended = read == 0;
        // From the last valid byte: a character the previous block cut
        // short is whole now (or never will be, at the end or before a byte
        // that is not UTF-8: `valid` then stays before it).
        self.valid += match std::str::from_utf8(&self.buffer[self.valid..]) {
            Ok(text) => text.len(),
            Err(error) => error.valid_up_to(),
        };
        Ok(())
    }

    /// SHA-256 hex of every byte read: of the whole file once
    /// [`Lines::next`] gave `Ok(None)`.
    fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

/// The second read of the file, which hands out the check sections.
struct ChunkPass {
    lines: Lines,
    splitter: Splitter,
    /// Whether the lines read belong to a check section.
    in_check: bool,
    /// The header line of the first check of the next chunk (read to find
    /// where this chunk ends): its text, offset and line number.
    pending: Option<(String, usize, usize)>,
    /// The chunk's sections' text, one after the other (reused).
    text: String,
    /// Per check section: its range in `text`, its offset in the file and
    /// the line of its header.
    sections: Vec<(Range<usize>, usize, usize)>,
    /// Whether the file's tables other than checks were read before this
    /// pass ([`CheckChunks::tables`]), so that one may follow a check. In
    /// the one read of [`CheckChunks::read_once`] they were not: its checks
    /// are built with the tables above them, and a table below a check
    /// stops the pass ([`ChunkPass::late_table`]).
    tables_known: bool,
    /// Whether a table other than checks followed a check, with
    /// `tables_known` false.
    late_table: bool,
    /// Check sections handed out so far.
    handed: usize,
    /// Whether a line that [`may_link`] checks ends the pass (a small
    /// file's one read: such a file is read whole at once, not after a
    /// chunk that fails on the link).
    refuse_links: bool,
}

impl ChunkPass {
    /// The file at `path` opened for a chunk pass from its start.
    fn open(path: &Path) -> Result<ChunkPass, ReadWhole> {
        Ok(ChunkPass {
            lines: Lines::open(path).map_err(|_| ReadWhole::Changed)?,
            splitter: Splitter::default(),
            in_check: false,
            pending: None,
            text: String::new(),
            sections: Vec::new(),
            tables_known: true,
            late_table: false,
            handed: 0,
            refuse_links: false,
        })
    }

    fn start_check(&mut self, line: &str, offset: usize, number: usize) {
        self.handed += 1;
        self.close_section();
        let start = self.text.len();
        self.text.push_str(line);
        self.sections.push((start..start, offset, number));
        self.in_check = true;
    }

    /// Ends the current check section where the text stands.
    fn close_section(&mut self) {
        if let Some(last) = self.sections.last_mut().filter(|_| self.in_check) {
            last.0.end = self.text.len();
        }
        self.in_check = false;
    }

    /// Reads the next `chunk_checks` check sections into `text`; whether
    /// the file ended.
    fn fill(&mut self, chunk_checks: usize) -> Result<bool, ReadWhole> {
        self.text.clear();
        self.sections.clear();
        self.in_check = false;
        if let Some((line, offset, number)) = self.pending.take() {
            self.start_check(&line, offset, number);
        }
        loop {
            let (line, offset, number) = match self.lines.next() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.close_section();
                    self.splitter.finish().ok_or(ReadWhole::Changed)?;
                    return Ok(true);
                }
                Err(_) => return Err(ReadWhole::Changed),
            };
            if self.refuse_links && may_link(line) {
                return Err(ReadWhole::Unusual);
            }
            match self.splitter.line(line).ok_or(ReadWhole::Changed)? {
                Line::Header("check") if self.sections.len() == chunk_checks => {
                    self.pending = Some((line.to_string(), offset, number));
                    self.close_section();
                    return Ok(false);
                }
                Line::Header("check") => {
                    // `line` borrows the reader: copied before it is reused.
                    let line = line.to_string();
                    self.start_check(&line, offset, number);
                }
                Line::Header(_) if !self.tables_known => {
                    self.late_table = true;
                    return Err(ReadWhole::Unusual);
                }
                Line::Header(_) => self.close_section(),
                Line::Body if self.in_check => self.text.push_str(line),
                Line::Body => {}
            }
        }
    }
}

/// The tables of a check file other than its checks (`[secrets]`,
/// `[vars]`, `[defaults]`, `[notify]`), read from its lines as they come:
/// each table is parsed once it ends, so only one table's text is held.
struct Tables {
    reader: Reader,
    diagnostics: Vec<crate::core::diagnostics::Diagnostic>,
    /// The table being read: its name, text and offset.
    table: Option<(String, String, usize)>,
}

impl Default for Tables {
    fn default() -> Tables {
        Tables {
            reader: Reader::new(Document::Checks),
            diagnostics: Vec::new(),
            table: None,
        }
    }
}

impl Tables {
    /// Takes line `line` (at `offset`), which the splitter found to be
    /// `kind`; `None` when the file is not for chunks (a table that does
    /// not parse alone, a runbook's table).
    fn line(&mut self, kind: Line<'_>, line: &str, offset: usize) -> Option<()> {
        match kind {
            Line::Header(name) => {
                self.read_table()?;
                match name {
                    "check" => {}
                    "runbook" | "step" => return None,
                    _ => self.table = Some((name.to_string(), line.to_string(), offset)),
                }
            }
            Line::Body => {
                if let Some((_, text, _)) = &mut self.table {
                    text.push_str(line);
                }
            }
        }
        Some(())
    }

    /// Parses the table read so far, if any.
    fn read_table(&mut self) -> Option<()> {
        let Some((name, text, offset)) = self.table.take() else {
            return Some(());
        };
        let root = parse_section(&text, &name)?;
        let (key, node) = root.iter().next()?;
        let (reader, diagnostics) = (&mut self.reader, &mut self.diagnostics);
        with_span_offset(offset, || {
            reader.table(key, node, &[0], offset, diagnostics)
        });
        Some(())
    }

    /// The tables, once every one has been read; `None` when any has a
    /// problem (the whole-file reader reports it).
    fn finish(mut self) -> Option<Reader> {
        self.read_table()?;
        let reader = self.reader;
        if reader.secrets_known {
            check_notify_references(
                &reader.notify_templates,
                &reader.tables.secrets,
                &reader.var_names,
                &mut self.diagnostics,
            );
        }
        self.diagnostics.is_empty().then_some(reader)
    }
}

impl CheckChunks {
    /// Reads the file at `path` once: its tables other than its checks, its
    /// sections and its SHA-256. `Ok(None)` when the file is to be read whole
    /// (small, unusual, not UTF-8, any problem); an error when it cannot be
    /// read.
    pub fn open(path: &Path, env: EnvLookup) -> io::Result<Option<CheckChunks>> {
        Self::open_from(path, env, SECTIONED_MIN_BYTES as u64)
    }

    /// [`CheckChunks::open`] for a file of at least `min_bytes` (0: any
    /// file). A streamed sweep reads even small files in chunks: a file of
    /// 1,000 checks read whole holds a TOML tree of some 7 MB while its
    /// checks are built.
    pub fn open_from(
        path: &Path,
        env: EnvLookup,
        min_bytes: u64,
    ) -> io::Result<Option<CheckChunks>> {
        let metadata = std::fs::metadata(path)?;
        let bytes = metadata.len();
        if bytes < min_bytes {
            return Ok(None);
        }
        // A small file that may link its checks is read whole at once rather
        // than after a chunk that fails on the link (see `may_link`).
        let refuse_links = bytes < SECTIONED_MIN_BYTES as u64;
        let mut lines = Lines::open(path)?;
        let Some((reader, checks)) = Self::tables(&mut lines, refuse_links)? else {
            return Ok(None);
        };
        Ok(Some(CheckChunks {
            reader: Arc::new(reader),
            env,
            sha256: lines.sha256(),
            checks,
            stamp: FileStamp::of(&metadata),
            pass: None,
            path: path.to_path_buf(),
            chunk_checks: CHUNK_CHECKS,
            done: false,
        }))
    }

    /// Reads the file at `path` once, for a sweep's first pass: its tables
    /// as they come, then, from its first check on, its checks a chunk at a
    /// time as [`CheckChunks::each_chunk_on_threads`] does (`keep` and
    /// `each` alike), hashing every byte. `expect` is told, before the
    /// first `each`, about how many checks the file holds (from the share
    /// of the file its first chunk took: a hint for reserving, not a
    /// count).
    ///
    /// [`CheckChunks::open_from`] reads the whole file for its tables
    /// before the first chunk, because `[defaults]` may come last. Most
    /// files put their tables first: this reads them once, and stops
    /// ([`ReadOnce::TwoPasses`]) when a table follows a check. What was
    /// handed to `each` then does not count: the caller starts over.
    pub fn read_once<T: Send>(
        path: &Path,
        env: EnvLookup,
        threads: usize,
        keep: impl Fn(Vec<Step>) -> T + Sync,
        mut expect: impl FnMut(usize),
        each: impl FnMut(T),
    ) -> io::Result<ReadOnce> {
        let metadata = std::fs::metadata(path)?;
        let bytes = metadata.len();
        // As `open_from` with no lower bound: a small file that may link
        // its checks is read whole at once.
        let refuse_links = bytes < SECTIONED_MIN_BYTES as u64;
        let mut lines = Lines::open(path)?;
        let mut splitter = Splitter::default();
        let mut tables = Tables::default();
        let first = loop {
            let (line, offset, number) = match lines.next() {
                Ok(Some(line)) => line,
                // No check at all.
                Ok(None) => return Ok(ReadOnce::Whole),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(ReadOnce::Whole),
                Err(e) => return Err(e),
            };
            if refuse_links && may_link(line) {
                return Ok(ReadOnce::Whole);
            }
            let Some(kind) = splitter.line(line) else {
                return Ok(ReadOnce::Whole);
            };
            if kind == Line::Header("check") {
                break (line.to_string(), offset, number);
            }
            if tables.line(kind, line, offset).is_none() {
                return Ok(ReadOnce::Whole);
            }
        };
        let Some(reader) = tables.finish() else {
            return Ok(ReadOnce::Whole);
        };
        let mut pass = ChunkPass {
            lines,
            splitter,
            in_check: false,
            pending: Some(first),
            text: String::new(),
            sections: Vec::new(),
            tables_known: false,
            late_table: false,
            handed: 0,
            refuse_links,
        };
        let read = chunks_on_threads(
            &mut pass,
            (&reader, &*env, path),
            threads,
            CHUNK_CHECKS,
            |_| true,
            |pass| {
                let read = pass.lines.next_offset.max(1) as u64;
                let share = (pass.handed as u64).saturating_mul(bytes) / read;
                expect(
                    usize::try_from(share)
                        .unwrap_or(usize::MAX)
                        .max(pass.handed),
                );
            },
            keep,
            each,
        );
        if read.is_err() {
            return Ok(if pass.late_table {
                ReadOnce::TwoPasses
            } else {
                ReadOnce::Whole
            });
        }
        Ok(ReadOnce::Read(Box::new(CheckChunks {
            reader: Arc::new(reader),
            env,
            sha256: pass.lines.sha256(),
            checks: pass.handed,
            pass: None,
            path: path.to_path_buf(),
            chunk_checks: CHUNK_CHECKS,
            done: true,
            stamp: FileStamp::of(&metadata),
        })))
    }

    /// What this read learnt of the file, to read it again with
    /// [`CheckChunks::resume`].
    pub fn learnt(&self) -> ChunkedFile {
        ChunkedFile {
            reader: self.reader.clone(),
            sha256: self.sha256.clone(),
            checks: self.checks,
            stamp: self.stamp.clone(),
        }
    }

    /// The file read again in chunks, as `learnt` found it, without the
    /// whole first read of [`CheckChunks::open`]: [`ReadWhole::Changed`] at
    /// once when its size or modification time is no longer the same, and
    /// at the end of the chunks, as always, when its hash is not.
    pub fn resume(
        path: &Path,
        env: EnvLookup,
        learnt: &ChunkedFile,
    ) -> Result<CheckChunks, ReadWhole> {
        let metadata = std::fs::metadata(path).map_err(|_| ReadWhole::Changed)?;
        if FileStamp::of(&metadata) != learnt.stamp {
            return Err(ReadWhole::Changed);
        }
        Ok(CheckChunks {
            reader: learnt.reader.clone(),
            env,
            sha256: learnt.sha256.clone(),
            checks: learnt.checks,
            pass: None,
            path: path.to_path_buf(),
            chunk_checks: CHUNK_CHECKS,
            done: false,
            stamp: learnt.stamp.clone(),
        })
    }

    /// Reads chunks of `checks` check sections (at least 1) from now on.
    pub fn set_chunk_checks(&mut self, checks: usize) {
        self.chunk_checks = checks.max(1);
    }

    /// How many checks the file has (its `[[check]]` sections).
    pub fn checks(&self) -> usize {
        self.checks
    }

    /// SHA-256 hex of the file as [`CheckChunks::open`] read it.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Reads every line: the tables other than checks are parsed as they
    /// end (only one table's text is held at a time), the checks counted.
    /// With `refuse_links`, `None` as soon as a line [`may_link`] checks.
    fn tables(lines: &mut Lines, refuse_links: bool) -> io::Result<Option<(Reader, usize)>> {
        let mut splitter = Splitter::default();
        let mut tables = Tables::default();
        let mut checks = 0usize;
        loop {
            let (line, offset) = match lines.next() {
                Ok(Some((line, offset, _))) => (line, offset),
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(None),
                Err(e) => return Err(e),
            };
            if refuse_links && may_link(line) {
                return Ok(None);
            }
            let Some(kind) = splitter.line(line) else {
                return Ok(None);
            };
            if tables.line(kind, line, offset).is_none() {
                return Ok(None);
            }
            checks += usize::from(kind == Line::Header("check"));
        }
        if splitter.finish().is_none() || checks == 0 {
            return Ok(None);
        }
        Ok(tables.finish().map(|reader| (reader, checks)))
    }

    /// The file's `[secrets]`, `[vars]`, `[defaults]` and `[notify]`, with
    /// no checks (they come in chunks).
    pub fn file(&self, path: &Path) -> CheckFile {
        let tables = &self.reader.tables;
        CheckFile {
            path: path.to_path_buf(),
            source: String::new(),
            secrets: tables.secrets.clone(),
            vars: tables.vars.clone(),
            defaults: tables.defaults,
            notify: tables.notify.clone(),
            checks: Vec::new(),
        }
    }

    /// The next checks, read from the file, built and validated; `None`
    /// after the last.
    pub fn next_chunk(&mut self, path: &Path) -> Option<Result<Vec<Step>, ReadWhole>> {
        if self.done {
            return None;
        }
        let chunk = self.read_chunk();
        if !matches!(chunk, Ok(Some(_))) {
            // Once the end is reached or anything failed, no more chunks.
            self.done = true;
            self.pass = None;
        }
        chunk
            .transpose()
            .map(|steps| steps.map(|s| anchored(s, path)))
    }

    /// Every chunk of the file, each parsed, validated and built on one of
    /// `threads` threads while this one reads the file, then turned into a
    /// `T` there by `keep` (what the caller keeps of it: the checks are
    /// dropped on the thread that built them when it keeps only their ids);
    /// `each` is handed the `T`s in file order. The first chunk that fails
    /// ends it with its error (and so does a file that changed, found at its
    /// end). One thread reads as [`CheckChunks::next_chunk`] does.
    ///
    /// Parsing is most of the work (reading, splitting and hashing the text
    /// about an eighth), and a sweep's first pass has the machine to
    /// itself: one file of 100,000 checks is validated in about half the
    /// time on two cores.
    pub fn each_chunk_on_threads<T: Send>(
        &mut self,
        path: &Path,
        threads: usize,
        keep: impl Fn(Vec<Step>) -> T + Sync,
        mut each: impl FnMut(T),
    ) -> Result<(), ReadWhole> {
        if threads <= 1 || self.done || self.pass.is_some() {
            while let Some(chunk) = self.next_chunk(path) {
                each(keep(chunk?));
            }
            return Ok(());
        }
        self.done = true;
        let mut pass = ChunkPass::open(&self.path)?;
        let sha256 = &self.sha256;
        chunks_on_threads(
            &mut pass,
            (&self.reader, &*self.env, path),
            threads,
            self.chunk_checks,
            |pass| pass.lines.sha256() == *sha256,
            |_| {},
            keep,
            each,
        )
    }

    fn read_chunk(&mut self) -> Result<Option<Vec<Step>>, ReadWhole> {
        if self.pass.is_none() {
            self.pass = Some(ChunkPass::open(&self.path)?);
        }
        let pass = self.pass.as_mut().expect("opened above");
        let ended = pass.fill(self.chunk_checks)?;
        if ended && pass.lines.sha256() != self.sha256 {
            return Err(ReadWhole::Changed);
        }
        if pass.sections.is_empty() {
            return Ok(None);
        }
        let pass = self.pass.as_ref().expect("opened above");
        let steps = read_checks(&self.reader, &*self.env, &pass.text, &pass.sections)?;
        if ended {
            // The last chunk: the next call ends.
            self.done = true;
        }
        Ok(Some(steps))
    }

    /// [`CheckChunks::ids_unique_among`], each id's hash computed here.
    #[cfg(test)]
    pub fn ids_unique<'a>(ids: impl Iterator<Item = &'a str> + Clone, count: usize) -> bool {
        let mut hashes: Vec<u32> = Vec::with_capacity(count);
        hashes.extend(ids.clone().map(id_hash));
        Self::ids_unique_among(ids, &mut hashes)
    }

    /// Whether `ids` (every id read from the chunks) has no repeat: looked
    /// for on their 4-byte hashes (`hashes`, each id's [`id_hash`], one per
    /// id, computed by the chunks' threads; left sorted), so a million ids
    /// cost 4 MB, then confirmed on the few ids whose hash is repeated. A
    /// repeat means: read the file whole, which names both places.
    pub fn ids_unique_among<'a>(ids: impl Iterator<Item = &'a str>, hashes: &mut [u32]) -> bool {
        let suspects = repeated_hashes(hashes);
        if suspects.is_empty() {
            return true;
        }
        let mut seen = std::collections::HashSet::new();
        ids.filter(|id| suspects.binary_search(&id_hash(id)).is_ok())
            .all(|id| seen.insert(id))
    }
}

/// What a chunk pass reads with: the file's tables, how `{{env:…}}` is
/// looked up, and the file's path (the checks' base folder).
type PassContext<'c> = (
    &'c Reader,
    &'c (dyn Fn(&str) -> Option<String> + Send + Sync),
    &'c Path,
);

/// Reads `pass` to its end in chunks of `chunk_checks` sections, each
/// parsed, validated and built on one of `threads` threads (on this one
/// when `threads` is 1) and turned into a `T` there by `keep`; `each` is
/// handed the `T`s in file order. `first_filled` sees the pass once its
/// first chunk is read, before anything is handed out. The end of the file
/// is refused ([`ReadWhole::Changed`]) unless `accept_end` accepts it. The
/// first chunk that fails ends the pass with its error.
#[allow(clippy::too_many_arguments)]
fn chunks_on_threads<T: Send>(
    pass: &mut ChunkPass,
    (reader, env, path): PassContext<'_>,
    threads: usize,
    chunk_checks: usize,
    accept_end: impl Fn(&ChunkPass) -> bool,
    mut first_filled: impl FnMut(&ChunkPass),
    keep: impl Fn(Vec<Step>) -> T + Sync,
    mut each: impl FnMut(T),
) -> Result<(), ReadWhole> {
    let mut filled = 0usize;
    // The next chunk's sections, or whether the file ended.
    let mut fill = |pass: &mut ChunkPass| -> Result<bool, ReadWhole> {
        let ended = pass.fill(chunk_checks)?;
        if ended && !accept_end(pass) {
            // The last chunk came from a changed file: refused.
            return Err(ReadWhole::Changed);
        }
        if filled == 0 {
            first_filled(pass);
        }
        filled += 1;
        Ok(ended)
    };
    if threads <= 1 {
        loop {
            let ended = fill(pass)?;
            if !pass.sections.is_empty() {
                let steps = read_checks(reader, env, &pass.text, &pass.sections)?;
                each(keep(anchored(steps, path)));
            }
            if ended {
                return Ok(());
            }
        }
    }
    type Job = (usize, String, Vec<(Range<usize>, usize, usize)>);
    // Bounded: at most a chunk waiting per thread, so the checks held at
    // once stay a few chunks whatever the file's size.
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(threads);
    let queue = std::sync::Mutex::new(queue);
    let (results, finished) = std::sync::mpsc::channel::<(usize, Result<T, ReadWhole>)>();
    let keep = &keep;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let results = results.clone();
            let queue = &queue;
            scope.spawn(move || loop {
                let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((seq, text, sections)) = job else {
                    break;
                };
                let chunk = read_checks(reader, env, &text, &sections)
                    .map(|steps| keep(anchored(steps, path)));
                if results.send((seq, chunk)).is_err() {
                    break;
                }
            });
        }
        drop(results);
        // Read on this thread; hand the results out in order as they come.
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 0;
        let mut failed = None;
        let mut take_ready = |waiting: &mut std::collections::BTreeMap<usize, _>,
                              failed: &mut Option<ReadWhole>| {
            while let Some(chunk) = waiting.remove(&next) {
                next += 1;
                match chunk {
                    Ok(kept) if failed.is_none() => each(kept),
                    Ok(_) => {}
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
        };
        let mut sent = 0;
        loop {
            let ended = match fill(pass) {
                Ok(ended) => ended,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if !pass.sections.is_empty() {
                let job = (
                    sent,
                    std::mem::take(&mut pass.text),
                    std::mem::take(&mut pass.sections),
                );
                if jobs.send(job).is_err() {
                    break;
                }
                sent += 1;
            }
            while let Ok((seq, chunk)) = finished.try_recv() {
                waiting.insert(seq, chunk);
            }
            take_ready(&mut waiting, &mut failed);
            if ended || failed.is_some() {
                break;
            }
        }
        drop(jobs);
        for (seq, chunk) in finished.iter() {
            waiting.insert(seq, chunk);
            take_ready(&mut waiting, &mut failed);
        }
        failed.map_or(Ok(()), Err)
    })
}

/// Whether `line` may link checks: a `depends_on` or a capture reference
/// (`{{steps.…}}`), which a chunk refuses ([`ReadWhole::Unusual`]). Text only
/// (in a string or a comment too): a false alarm reads the file whole, as
/// any small file was read before.
fn may_link(line: &str) -> bool {
    // Built once: `memmem::find` builds a searcher per call, which cost
    // more than the search (two a line, every line of pass 1).
    static DEPENDS_ON: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new("depends_on"));
    static STEPS: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new("steps."));
    DEPENDS_ON.find(line.as_bytes()).is_some() || STEPS.find(line.as_bytes()).is_some()
}

/// The checks of one chunk: each section of `text` parsed as the file's
/// (its spans shifted by the section's offset in the file), then validated
/// together.
fn read_checks(
    tables: &Reader,
    env: &dyn Fn(&str) -> Option<String>,
    text: &str,
    sections: &[(Range<usize>, usize, usize)],
) -> Result<Vec<Step>, ReadWhole> {
    let mut diagnostics = Vec::new();
    let mut raw = Vec::with_capacity(sections.len());
    for (range, offset, line) in sections {
        let section = text.get(range.clone()).ok_or(ReadWhole::Unusual)?;
        // Most checks of a large file are plain `http` ones: read straight
        // into their step, the same one the general path below gives.
        if super::plain_http::push_raw_step(section, *offset, *line, &mut raw) {
            continue;
        }
        let root = parse_section(section, "check").ok_or(ReadWhole::Unusual)?;
        let (key, node) = root.iter().next().ok_or(ReadWhole::Unusual)?;
        let offset = *offset;
        let mut steps = with_span_offset(offset, || {
            parse_steps(&[0], offset, key.span(), node, "check", &mut diagnostics)
        });
        for step in &mut steps {
            step.line = *line;
        }
        raw.extend(steps);
    }
    if !diagnostics.is_empty() {
        return Err(ReadWhole::Unusual);
    }
    for step in &mut raw {
        step.apply_defaults(&tables.tables.defaults);
    }
    // The source serves only to narrow the spans of diagnostics, and a chunk
    // with any diagnostic is read whole: no text is given (every span is
    // then out of its range and kept as it is, never sliced).
    let steps = validate::validate_steps(
        "",
        &mut raw,
        &tables.var_names,
        tables.secrets_known.then_some(&tables.tables.secrets),
        env,
        &mut diagnostics,
    );
    let self_contained = steps
        .iter()
        .all(|s| s.depends_on.is_empty() && s.uses_captures_of.is_empty());
    if !diagnostics.is_empty() || !self_contained || steps.len() != raw.len() {
        return Err(ReadWhole::Unusual);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(checks: usize, extra: &str) -> tempfile::NamedTempFile {
        let mut text = String::new();
        for n in 0..checks {
            text.push_str(&format!(
                "[[check]]\nid = 'c{n}'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n{}\n",
                if n == checks - 1 { extra } else { "" }
            ));
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn opens(file: &tempfile::NamedTempFile) -> bool {
        CheckChunks::open_from(file.path(), Box::new(|_| None), 0)
            .unwrap()
            .is_some()
    }

    #[test]
    fn lines_come_whole_numbered_and_hashed_across_blocks() {
        // Short lines, a line longer than a block, a `\r\n`, no final newline.
        let long = "x".repeat(READ_BUFFER * 2 + 17);
        let text = format!("a = 1\n\n{long}\nb = 'é'\r\nlast");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        let mut lines = Lines::open(file.path()).unwrap();
        let mut read = Vec::new();
        while let Some((line, offset, number)) = lines.next().unwrap() {
            assert_eq!(&text[offset..offset + line.len()], line);
            read.push((line.to_string(), number));
        }
        let expected = [
            ("a = 1\n".to_string(), 1),
            ("\n".to_string(), 2),
            (format!("{long}\n"), 3),
            ("b = 'é'\r\n".to_string(), 4),
            ("last".to_string(), 5),
        ];
        assert_eq!(read, expected);
        assert_eq!(lines.next().unwrap(), None);
        assert_eq!(lines.sha256(), hex::encode(Sha256::digest(text.as_bytes())));

        // A character cut in two by the end of a block (checked a block at
        // a time) is whole in its line.
        let straddling = format!(
            "{}é\n{}€\nz",
            "x".repeat(READ_BUFFER - 1),
            "y".repeat(READ_BUFFER - 3)
        );
        std::fs::write(file.path(), &straddling).unwrap();
        let mut lines = Lines::open(file.path()).unwrap();
        let mut read = Vec::new();
        while let Some((line, ..)) = lines.next().unwrap() {
            read.push(line.to_string());
        }
        assert_eq!(read.concat(), straddling);
        assert_eq!(read.len(), 3);

        // A character the file's end cuts short is an error too.
        std::fs::write(file.path(), b"ok\nabc\xc3").unwrap();
        let mut lines = Lines::open(file.path()).unwrap();
        assert_eq!(lines.next().unwrap(), Some(("ok\n", 0, 1)));
        assert_eq!(lines.next().unwrap_err().kind(), io::ErrorKind::InvalidData);

        // A line that is not UTF-8 is an error, the lines before it are not.
        std::fs::write(file.path(), b"ok\n\xff\xfe\n").unwrap();
        let mut lines = Lines::open(file.path()).unwrap();
        assert_eq!(lines.next().unwrap(), Some(("ok\n", 0, 1)));
        let error = lines.next().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_small_file_that_may_link_its_checks_is_left_to_the_whole_reader_at_once() {
        assert!(opens(&file_of(3, "")));
        assert!(!opens(&file_of(3, "depends_on = ['c0']")));
        assert!(!opens(&file_of(3, "hint = '{{steps.c0.x}}'")));
        // A large one is still tried in chunks (its links refuse a chunk).
        let large = file_of(6_000, "depends_on = ['c0']");
        assert!(std::fs::metadata(large.path()).unwrap().len() >= SECTIONED_MIN_BYTES as u64);
        let mut chunks = CheckChunks::open_from(large.path(), Box::new(|_| None), 0)
            .unwrap()
            .expect("large files are tried in chunks");
        let last = std::iter::from_fn(|| chunks.next_chunk(large.path())).last();
        assert!(matches!(last, Some(Err(ReadWhole::Unusual))));
    }

    #[test]
    fn chunks_hold_at_most_the_checks_asked_for() {
        let file = file_of(600, "");
        let mut chunks = CheckChunks::open_from(file.path(), Box::new(|_| None), 0)
            .unwrap()
            .unwrap();
        chunks.set_chunk_checks(250);
        let sizes: Vec<usize> = std::iter::from_fn(|| chunks.next_chunk(file.path()))
            .map(|chunk| chunk.unwrap().len())
            .collect();
        assert_eq!(sizes, [250, 250, 100]);
    }

    #[test]
    fn a_resumed_read_gives_the_same_chunks_and_refuses_an_edited_file() {
        let file = file_of(600, "");
        let ids = |chunks: &mut CheckChunks| -> Vec<String> {
            std::iter::from_fn(|| chunks.next_chunk(file.path()))
                .flat_map(|chunk| chunk.unwrap())
                .map(|step| step.id)
                .collect()
        };
        let mut opened = CheckChunks::open_from(file.path(), Box::new(|_| None), 0)
            .unwrap()
            .unwrap();
        let learnt = opened.learnt();
        let first = ids(&mut opened);
        // Read again as often as asked (a sweep's rounds), the same checks.
        for _ in 0..2 {
            let mut resumed =
                CheckChunks::resume(file.path(), Box::new(|_| None), &learnt).unwrap();
            assert_eq!(resumed.checks(), 600);
            assert_eq!(ids(&mut resumed), first);
        }
        // One more check: refused before a chunk is read.
        let mut text = std::fs::read_to_string(file.path()).unwrap();
        text.push_str("[[check]]\nid = 'late'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n");
        std::fs::write(file.path(), text).unwrap();
        assert!(matches!(
            CheckChunks::resume(file.path(), Box::new(|_| None), &learnt),
            Err(ReadWhole::Changed)
        ));
    }
}
