//! [`Spooled`]: a report written as checks finish, in constant memory.
//!
//! A report's head often states what is known only at the end (JUnit's
//! totals, a Markdown headline, the failures listed first), so each piece
//! goes to a spool file beside the target as it comes, and
//! [`Spooled::finish`] writes the target in one pass: the head, the spools,
//! the tail. Every piece is redacted once, whole, before it reaches any file
//! (the bundle's [`Redactor`]: secrets never reach a disk, not even a spool).
//!
//! A target is either replaced atomically (temp file, fsync, rename: readers
//! such as node_exporter see the old file or the new one) or appended to
//! (`--markdown` into `$GITHUB_STEP_SUMMARY`). Spools start with `.tmp-`, as
//! the bundle's own temp files do, and are removed when done or dropped.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::evidence::Redactor;

/// How the finished report reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Temp file, fsync, rename over the target.
    Replace,
    /// [`Mode::Replace`] without the syncs, for a target whose owner syncs
    /// it later with others (a bundle's own reports: its seal syncs them
    /// beside its other files, instead of two syncs each in turn first).
    ReplaceUnsynced,
    /// Appended to the target (created if missing).
    Append,
}

/// One part of the finished file.
pub enum Part<'a> {
    /// Text known at the end (redacted on the way out).
    Text(&'a str),
    /// Everything written to spool section `n`, in order.
    Section(usize),
}

/// One target and its spool files (one per section).
struct Output {
    target: PathBuf,
    mode: Mode,
    spools: Vec<(PathBuf, BufWriter<File>)>,
    /// The first write that failed: the target is not written, and the
    /// error is returned by [`Spooled::finish`] (the other targets go on).
    failed: Option<io::Error>,
}

/// A report streamed to one or more targets with the same content.
pub struct Spooled {
    redactor: Arc<Redactor>,
    outputs: Vec<Output>,
    sections: usize,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `.tmp-<name>-<pid>-<n><suffix>` beside `target`.
fn temp_beside(target: &Path, suffix: &str) -> PathBuf {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(
        ".tmp-{name}-{}-{}{suffix}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Spooled {
    /// A report of `sections` spooled sections, redacted by `redactor`.
    pub fn new(redactor: Arc<Redactor>, sections: usize) -> Spooled {
        Spooled {
            redactor,
            outputs: Vec::new(),
            sections,
        }
    }

    /// Adds a target; its spools are created now, beside it (so a folder
    /// that cannot be written fails before the sweep, not after).
    pub fn add_target(&mut self, target: &Path, mode: Mode) -> io::Result<()> {
        let mut spools = Vec::with_capacity(self.sections);
        for n in 0..self.sections {
            let path = temp_beside(target, &format!(".spool{n}"));
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path);
            match file {
                Ok(file) => spools.push((path, BufWriter::with_capacity(64 * 1024, file))),
                Err(err) => {
                    for (path, _) in spools {
                        let _ = fs::remove_file(path);
                    }
                    return Err(err);
                }
            }
        }
        self.outputs.push(Output {
            target: target.to_path_buf(),
            mode,
            spools,
            failed: None,
        });
        Ok(())
    }

    /// Whether there is any target.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Appends `text` (whole: a testcase, a table row) to `section` of every
    /// target, redacted first. A target whose spool cannot be written is
    /// given up (see [`Spooled::finish`]); the others go on.
    pub fn write(&mut self, section: usize, text: &str) {
        if self.outputs.is_empty() {
            return;
        }
        let redacted = self.redactor.redact(text);
        for output in &mut self.outputs {
            if output.failed.is_none() {
                if let Err(err) = output.spools[section].1.write_all(redacted.as_bytes()) {
                    output.failed = Some(err);
                }
            }
        }
    }

    /// Writes every target from `parts`, then removes the spools. Returns
    /// the targets that could not be written, with why.
    pub fn finish(mut self, parts: &[Part]) -> Vec<(PathBuf, io::Error)> {
        let outputs = std::mem::take(&mut self.outputs);
        let mut errors = Vec::new();
        for mut output in outputs {
            let target = output.target.clone();
            let result = match output.failed.take() {
                Some(err) => {
                    remove_spools(&mut output);
                    Err(err)
                }
                None => self.finish_one(output, parts),
            };
            if let Err(err) = result {
                errors.push((target, err));
            }
        }
        errors
    }

    fn finish_one(&self, mut output: Output, parts: &[Part]) -> io::Result<()> {
        for (_, spool) in &mut output.spools {
            spool.flush()?;
        }
        let result = (|| match output.mode {
            Mode::Replace | Mode::ReplaceUnsynced => {
                let synced = output.mode == Mode::Replace;
                let temp = temp_beside(&output.target, "");
                let written = self
                    .assemble(&temp, false, synced, &mut output, parts)
                    .and_then(|()| fs::rename(&temp, &output.target));
                if written.is_err() {
                    let _ = fs::remove_file(&temp);
                }
                written?;
                if !synced {
                    return Ok(());
                }
                if let Some(dir) = output.target.parent() {
                    let dir = if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir
                    };
                    if let Ok(dir) = File::open(dir) {
                        let _ = dir.sync_all();
                    }
                }
                Ok(())
            }
            Mode::Append => {
                let target = output.target.clone();
                self.assemble(&target, true, true, &mut output, parts)
            }
        })();
        remove_spools(&mut output);
        result
    }

    /// Writes `parts` into `path` (appending or creating it), and syncs it
    /// when `sync`.
    fn assemble(
        &self,
        path: &Path,
        append: bool,
        sync: bool,
        output: &mut Output,
        parts: &[Part],
    ) -> io::Result<()> {
        let file = if append {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?
        } else {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?
        };
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        for part in parts {
            match part {
                Part::Text(text) => out.write_all(self.redactor.redact(text).as_bytes())?,
                Part::Section(n) => {
                    let spool = output.spools[*n].1.get_mut();
                    io::Seek::rewind(spool)?;
                    io::copy(spool, &mut out)?;
                }
            }
        }
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        if sync {
            file.sync_all()?;
        }
        Ok(())
    }
}

fn remove_spools(output: &mut Output) {
    for (path, _) in output.spools.drain(..) {
        let _ = fs::remove_file(path);
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // A sweep that failed or was dropped leaves no spool behind.
        for output in &mut self.outputs {
            remove_spools(output);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_head_sections_and_tail_redacted_and_leaves_no_spool() {
        let dir = tempfile::tempdir().unwrap();
        let redactor = Arc::new(Redactor::new(&[(
            "TOKEN".to_string(),
            "hunter2-canary-value".to_string(),
        )]));
        let replaced = dir.path().join("report.txt");
        let unsynced = dir.path().join("bundle-report.txt");
        let appended = dir.path().join("append.md");
        std::fs::write(&replaced, "old\n").unwrap();
        std::fs::write(&unsynced, "old\n").unwrap();
        std::fs::write(&appended, "before\n").unwrap();
        let mut spooled = Spooled::new(redactor, 2);
        spooled.add_target(&replaced, Mode::Replace).unwrap();
        spooled
            .add_target(&unsynced, Mode::ReplaceUnsynced)
            .unwrap();
        spooled.add_target(&appended, Mode::Append).unwrap();
        spooled.write(1, "b1 hunter2-canary-value\n");
        spooled.write(0, "a1\n");
        spooled.write(1, "b2\n");
        let errors = spooled.finish(&[
            Part::Text("head\n"),
            Part::Section(0),
            Part::Text("mid\n"),
            Part::Section(1),
            Part::Text("tail hunter2-canary-value\n"),
        ]);
        assert!(errors.is_empty());
        let text = std::fs::read_to_string(&replaced).unwrap();
        assert!(text.starts_with("head\na1\nmid\nb1 "), "{text}");
        assert!(text.contains("b2\ntail "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        // Left for its owner to sync, the same file.
        assert_eq!(std::fs::read_to_string(&unsynced).unwrap(), text);
        let appended = std::fs::read_to_string(&appended).unwrap();
        assert!(appended.starts_with("before\nhead\n"), "{appended}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 3, "spools and temp files are gone");
    }
}
