//! Reading a bundle back for `runproof show` and reports. The main type here
//! is [`Bundle`]. Reading is lenient where `verify` is strict: it checks
//! nothing beyond parsing, and a torn final line (a crash mid-append) is
//! skipped. Run `verify_bundle` to learn whether the contents can be trusted.

use std::fs;
use std::path::{Path, PathBuf};

use super::redact::Redacted;
use super::seal::{Seal, HEADER_FILE, JOURNAL_FILE, SEAL_FILE};
use crate::core::record::{Event, Header, Record};

/// A bundle's parsed contents.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub header: Header,
    pub records: Vec<Record>,
    /// `None` while the run is going on, or after a crash.
    pub seal: Option<Seal>,
    /// Whether the journal ended in a partial line (skipped).
    pub torn_tail: bool,
}

impl Bundle {
    /// The journal's events with their seq, as reports take them: a journal
    /// holds only redacted records, so these are [`Redacted`].
    pub fn events(&self) -> impl Iterator<Item = (u64, Redacted<Event>)> + '_ {
        self.records
            .iter()
            .map(|record| (record.seq, Redacted::assume(record.event.clone())))
    }

    /// The journal's events with their seq and monotonic time since the run
    /// started (nanoseconds), for timelines.
    pub fn timed_events(&self) -> impl Iterator<Item = (u64, u64, Redacted<Event>)> + '_ {
        self.records.iter().map(|record| {
            (
                record.seq,
                record.mono_ns,
                Redacted::assume(record.event.clone()),
            )
        })
    }

    /// Up to `cap` bytes of the blob `sha256:<hex>` (blobs are redacted
    /// before they are written) and whether the file holds more. `None` when
    /// the digest is malformed or the file cannot be read.
    pub fn blob_excerpt(&self, digest: &str, cap: u64) -> Option<(Vec<u8>, bool)> {
        use std::io::Read as _;
        let hex = digest.strip_prefix("sha256:")?;
        // A journal names the file: never let it point outside the blob folder.
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let file = fs::File::open(self.dir.join("blobs/sha256").join(hex)).ok()?;
        let mut bytes = Vec::new();
        file.take(cap + 1).read_to_end(&mut bytes).ok()?;
        let more = bytes.len() as u64 > cap;
        bytes.truncate(cap as usize);
        Some((bytes, more))
    }
}

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a runproof header: {message}")]
    Header { path: PathBuf, message: String },
    #[error("{path}:{line}: not a journal record: {message}")]
    Record {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: not a runproof seal: {message}")]
    Seal { path: PathBuf, message: String },
}

/// Reads the header, every complete journal record and the seal if present.
pub fn read_bundle(dir: &Path) -> Result<Bundle, ReadError> {
    let BundleHead { header, seal } = read_head(dir)?;
    let journal = fs::read(dir.join(JOURNAL_FILE)).map_err(|source| ReadError::Io {
        path: dir.join(JOURNAL_FILE),
        source,
    })?;
    let (lines, tail) = split_lines(&journal);
    let mut records = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let record: Record = serde_json::from_slice(line).map_err(|e| ReadError::Record {
            path: dir.join(JOURNAL_FILE),
            line: index as u64 + 1,
            message: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(Bundle {
        dir: dir.to_path_buf(),
        header,
        records,
        seal,
        torn_tail: tail.is_some(),
    })
}

/// A bundle's header and seal, without its journal: read the records one at
/// a time with [`read_records`].
#[derive(Debug, Clone)]
pub struct BundleHead {
    pub header: Header,
    pub seal: Option<Seal>,
}

/// Reads the header and the seal if present, as [`read_bundle`] does.
pub fn read_head(dir: &Path) -> Result<BundleHead, ReadError> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).map_err(|source| ReadError::Io { path, source })
    };
    let header_bytes = read(HEADER_FILE)?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| ReadError::Header {
        path: dir.join(HEADER_FILE),
        message: e.to_string(),
    })?;
    let seal_path = dir.join(SEAL_FILE);
    let seal = if seal_path.exists() {
        let bytes = read(SEAL_FILE)?;
        Some(serde_json::from_slice(&bytes).map_err(|e| ReadError::Seal {
            path: seal_path,
            message: e.to_string(),
        })?)
    } else {
        None
    };
    Ok(BundleHead { header, seal })
}

/// Hands every complete journal record to `each`, in order, holding one line
/// at a time; a torn final line is skipped, as [`read_bundle`] skips it.
pub fn read_records(dir: &Path, mut each: impl FnMut(Record)) -> Result<(), ReadError> {
    let path = dir.join(JOURNAL_FILE);
    let io = |source| ReadError::Io {
        path: path.clone(),
        source,
    };
    let file = fs::File::open(&path).map_err(io)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        line += 1;
        match read_capped_line(&mut reader, &mut buf, MAX_LINE).map_err(io)? {
            CappedLine::Eof | CappedLine::Torn => return Ok(()),
            CappedLine::TooLong => {
                return Err(ReadError::Record {
                    path,
                    line,
                    message: format!("longer than {MAX_LINE} bytes"),
                })
            }
            CappedLine::Line => {
                let record = serde_json::from_slice(&buf).map_err(|e| ReadError::Record {
                    path: path.clone(),
                    line,
                    message: e.to_string(),
                })?;
                each(record);
                if buf.capacity() > 1 << 20 {
                    buf = Vec::new();
                }
            }
        }
    }
}

/// Splits a journal into complete lines (without their LF) and the bytes
/// after the last LF, if any (a torn tail).
pub(crate) fn split_lines(journal: &[u8]) -> (Vec<&[u8]>, Option<&[u8]>) {
    let mut lines: Vec<&[u8]> = journal.split(|&b| b == b'\n').collect();
    // `split` yields one piece after the last LF: empty when the journal
    // ends cleanly, the torn bytes otherwise.
    let last = lines.pop().filter(|tail| !tail.is_empty());
    (lines, last)
}

/// The longest journal or report line read into memory (1 GiB). A bundle is
/// untrusted input: a line without an end must cost at most this much. Old
/// sweep bundles list every check in `run.start` (about 130 MB for a million
/// checks), so the cap is far above any honest line.
pub(crate) const MAX_LINE: usize = 1 << 30;

/// One line read by [`read_capped_line`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CappedLine {
    /// No more bytes.
    Eof,
    /// A complete line, now in the buffer without its LF.
    Line,
    /// Bytes after the last LF (a torn tail), now in the buffer.
    Torn,
    /// A line longer than the cap: the buffer holds its first `cap + 1`
    /// bytes; the rest of it is still unread.
    TooLong,
}

/// Reads one LF-terminated line into `buf` (cleared first), at most `cap`
/// bytes of it: a line without an end never costs more than the cap.
pub(crate) fn read_capped_line(
    reader: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<CappedLine> {
    use std::io::{BufRead as _, Read as _};
    buf.clear();
    reader.take(cap as u64 + 1).read_until(b'\n', buf)?;
    Ok(match buf.last() {
        None => CappedLine::Eof,
        Some(b'\n') => {
            buf.pop();
            CappedLine::Line
        }
        Some(_) if buf.len() > cap => CappedLine::TooLong,
        Some(_) => CappedLine::Torn,
    })
}
