//! What a sweep reads: files and folders of check definitions
//! (`checks/*.toml`), validated, narrowed by `--only` and `--shard` into a
//! [`SweepPlan`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::plan::{
    hold_max_checks, open_validated, FileIndex, HeldChunk, PlanFile, Selection, SweepPlan,
};
use super::select::Shard;
use crate::core::repeats::{id_hash, repeated_id_hashes};
use crate::runbook::load::{load_check_file, CheckChunks, ChunkedFile, ReadOnce};
use crate::runbook::model::{CheckFile, SecretsConfig, Step};
use crate::runbook::{LoadError, SecretStore};

/// Why a sweep's input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The loaded input before selection.
pub struct SweepInput {
    /// Every file, validated, without its checks (see
    /// [`SweepInput::checks`]). When the input is too large to hold (see
    /// [`hold_max_checks`]), each file's `source` is dropped once validated
    /// and [`SweepInput::indexes`] stands for its checks.
    pub files: Vec<CheckFile>,
    /// Each file's checks when they are held, in the chunks they were
    /// validated in (moved, never copied into one vector: 10,000 held checks
    /// are 3 MB of steps, and each copy touched that much new memory on the
    /// path to the first check); empty when they are not held.
    pub checks: Vec<Vec<Vec<Step>>>,
    /// Each file's ids and dependencies.
    pub indexes: Vec<FileIndex>,
    /// SHA-256 hex of each file's bytes.
    pub hashes: Vec<String>,
    /// Whether `files` hold their checks and sources.
    pub held: bool,
    /// The most checks held at once while loading (0 when the input was
    /// streamed from the start).
    pub peak_held: usize,
    /// What reading each file in chunks learnt of it ([`CheckChunks`]; it
    /// is read again the same way), `None` for a file read whole.
    pub chunked: Vec<Option<ChunkedFile>>,
    /// SHA-256 hex over the sorted `<path> <sha256>` lines of the files.
    pub digest: String,
}

impl SweepInput {
    /// The bytes of file `i` as they were validated: held, or read again
    /// from the file as a stream that fails at its end when the file changed
    /// since (see [`open_validated`]).
    pub fn reader(&self, i: usize) -> std::io::Result<Box<dyn std::io::Read + '_>> {
        let file = &self.files[i];
        if self.held && self.chunked[i].is_none() {
            return Ok(Box::new(file.source.as_bytes()));
        }
        Ok(Box::new(open_validated(&file.path, &self.hashes[i])?))
    }
}

/// Every `.toml` file named, or inside a named folder (not recursive), sorted.
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        let io = |source| InputError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(InputError::Invalid(format!(
                    "{}: no .toml check files in this folder",
                    path.display()
                )));
            }
            files.extend(found);
        } else {
            std::fs::metadata(path).map_err(io)?;
            files.push(path.clone());
        }
    }
    // `checks/ checks/api.toml` names one file twice: sweep it once, rather
    // than failing on every id it holds being "duplicated".
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(file.canonicalize().unwrap_or_else(|_| file.clone())));
    Ok(files)
}

/// Loads every file; all diagnostics of all files are reported together.
/// Holds the checks when there are at most [`hold_max_checks`] of them.
pub fn load_input(paths: &[PathBuf]) -> Result<SweepInput, InputError> {
    load_input_holding(paths, hold_max_checks())
}

/// Above this many bytes of input in all, the `[[check]]` headers are
/// counted before anything is loaded (see [`count_check_headers`]): an input
/// that will not be held is streamed from its first check, instead of being
/// held until the bound is passed (20,000 checks held then dropped). Below
/// it, the count costs more than it saves.
const ESTIMATE_MIN_BYTES: u64 = 1024 * 1024;

/// [`load_input`], holding at most `hold_max` checks.
pub fn load_input_holding(paths: &[PathBuf], hold_max: usize) -> Result<SweepInput, InputError> {
    load_input_estimating(paths, hold_max, ESTIMATE_MIN_BYTES)
}

/// [`load_input_holding`], counting headers first above `estimate_min_bytes`.
fn load_input_estimating(
    paths: &[PathBuf],
    hold_max: usize,
    estimate_min_bytes: u64,
) -> Result<SweepInput, InputError> {
    let mut input = SweepInput {
        files: Vec::new(),
        checks: Vec::new(),
        indexes: Vec::new(),
        hashes: Vec::new(),
        held: true,
        peak_held: 0,
        chunked: Vec::new(),
        digest: String::new(),
    };
    let mut problems = Vec::new();
    let mut total = 0;
    let files = input_files(paths)?;
    // Only a memory strategy: the switch below still streams an input whose
    // real count passes the bound, whatever the estimate said.
    // A bound of 0 streams every sweep: no count needed.
    if hold_max == 0 || estimated_checks(&files, estimate_min_bytes, hold_max)? > hold_max {
        input.held = false;
    }
    // Files are validated on several threads (the sweep has not started:
    // the other cores are idle), then taken in order.
    let hold = input.held;
    for (path, loaded) in files.iter().zip(load_files(&files, hold)) {
        let loaded = match loaded {
            Loaded::File(loaded) => loaded,
            Loaded::Problem(problem) => {
                problems.push(problem);
                continue;
            }
            Loaded::Unreadable(source) => {
                return Err(InputError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let LoadedFile {
            mut file,
            mut checks,
            index,
            sha256,
            chunked,
        } = *loaded;
        total += index.len();
        input.indexes.push(index);
        input.hashes.push(sha256);
        input.chunked.push(chunked);
        if input.held && total > hold_max {
            input.held = false;
            input.files.iter_mut().for_each(drop_source);
            input.checks.iter_mut().for_each(Vec::clear);
        }
        if !input.held {
            drop_source(&mut file);
            checks.clear();
        } else {
            input.peak_held = total;
        }
        input.files.push(file);
        input.checks.push(checks);
    }
    problems.extend(duplicate_ids(&input));
    if !problems.is_empty() {
        return Err(InputError::Invalid(problems.join("\n")));
    }
    let mut lines: Vec<String> = input
        .files
        .iter()
        .zip(&input.hashes)
        .map(|(file, sha256)| format!("{} {sha256}", file.path.display()))
        .collect();
    lines.sort();
    input.digest = hex::encode(Sha256::digest(lines.join("\n").as_bytes()));
    Ok(input)
}

/// One input file, validated.
enum Loaded {
    File(Box<LoadedFile>),
    /// Its diagnostics, rendered.
    Problem(String),
    Unreadable(std::io::Error),
}

struct LoadedFile {
    /// The file, its checks taken out into `checks`.
    file: CheckFile,
    /// Its checks in chunks, only when `hold` was asked for.
    checks: Vec<Vec<Step>>,
    index: FileIndex,
    sha256: String,
    /// What the chunked read learnt, `None` when read whole.
    chunked: Option<ChunkedFile>,
}

/// Validates every file of `files`, on up to one thread per core (at most
/// four), each taking the next file not yet taken; the results in file
/// order. Each file keeps its checks only when `hold`.
fn load_files(files: &[PathBuf], hold: bool) -> Vec<Loaded> {
    let threads = super::run::threads_per_machine().min(files.len());
    if threads <= 1 {
        // One file: its chunks are parsed on the threads instead.
        let chunk_threads = super::run::threads_per_machine();
        return files
            .iter()
            .map(|path| load_file(path, hold, chunk_threads))
            .collect();
    }
    let loaded = crate::core::parallel::each_on_up_to(threads, files.len(), |i| {
        load_file(&files[i], hold, 1)
    });
    release_freed_memory();
    loaded
}

/// Gives back to the system what the loading threads freed: the sweep's
/// threads would not reuse that memory (57 MB against 41 MB peak at 100,000
/// checks in files of 1,000, measured with glibc's malloc).
fn release_freed_memory() {
    crate::core::alloc::release_freed_memory();
}

/// Validates one file: chunk by chunk when its checks stand alone ([`CheckChunks`], reading it from
/// disk without ever holding its text; its chunks parsed on `chunk_threads`
/// threads), else read whole.
fn load_file(path: &Path, hold: bool, chunk_threads: usize) -> Loaded {
    if let Some(loaded) = load_in_chunks(path, hold, chunk_threads) {
        return Loaded::File(Box::new(loaded));
    }
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(error) => return Loaded::Unreadable(error),
    };
    let sha256 = hex::encode(Sha256::digest(source.as_bytes()));
    match load_check_file(path, &source) {
        Ok(mut file) => {
            let index = FileIndex::of(&file.checks);
            let steps = std::mem::take(&mut file.checks);
            let checks = if hold { vec![steps] } else { Vec::new() };
            if !hold {
                drop_source(&mut file);
            }
            Loaded::File(Box::new(LoadedFile {
                file,
                checks,
                index,
                sha256,
                chunked: None,
            }))
        }
        Err(LoadError::Invalid { rendered, .. }) => Loaded::Problem(rendered),
        Err(other) => Loaded::Problem(other.to_string()),
    }
}

/// A file validated chunk by chunk ([`CheckChunks`], from disk, the chunks
/// parsed on `threads` threads), keeping its checks only when `hold`; `None`
/// when the file is to be read whole instead (unusual,
/// checks that depend on others, an id used twice, any problem, changed
/// while it was read). Every sweep tries every file this way, and so a
/// streamed sweep's second pass reads it in small chunks too (see
/// [`super::plan::SWEEP_CHUNK_CHECKS`]).
fn load_in_chunks(path: &Path, hold: bool, threads: usize) -> Option<LoadedFile> {
    // Files of any size: a chunk's plain `http` checks are read straight
    // into their steps (`plain_http`), which costs less than the one parse
    // of a file read whole, held or not.
    // One read when the file's tables come before its checks (the common
    // case); two when one follows a check.
    let mut collected = Collected::default();
    let expected = std::cell::Cell::new(0);
    // Each id's hash is computed on the chunk's thread, beside its parse:
    // on the thread that waits for the last chunk, only their sort is left.
    let keep = |steps: Vec<Step>| {
        let hashes = steps.iter().map(|s| id_hash(&s.id)).collect();
        (FileIndex::of(&steps), hashes, hold.then_some(steps))
    };
    let chunks = match CheckChunks::read_once(
        path,
        process_env(),
        threads,
        keep,
        |checks| expected.set(checks),
        |kept| collected.add(kept, expected.get()),
    ) {
        Ok(ReadOnce::Read(chunks)) => *chunks,
        Ok(ReadOnce::TwoPasses) => {
            let mut chunks = CheckChunks::open_from(path, process_env(), 0).ok()??;
            collected = Collected::default();
            let expected = chunks.checks();
            chunks
                .each_chunk_on_threads(path, threads, keep, |kept| collected.add(kept, expected))
                .ok()?;
            chunks
        }
        Ok(ReadOnce::Whole) | Err(_) => return None,
    };
    let Collected {
        mut index,
        mut id_hashes,
        checks,
    } = collected;
    if !CheckChunks::ids_unique_among(index.ids(), &mut id_hashes) {
        // The whole-file reader judges it (and names both places).
        return None;
    }
    tracing::debug!(
        "{}: validated in chunks of {} checks",
        path.display(),
        crate::runbook::load::CHUNK_CHECKS
    );
    let file = chunks.file(path);
    index.ids.shrink_to_fit();
    Some(LoadedFile {
        file,
        checks,
        index,
        sha256: chunks.sha256().to_string(),
        chunked: Some(chunks.learnt()),
    })
}

/// What the first pass keeps of a file's chunks, in file order: their ids
/// and dependencies, and their checks when they are held (each chunk's
/// thread drops them otherwise), chunk by chunk.
#[derive(Default)]
struct Collected {
    index: FileIndex,
    /// Each id's [`id_hash`], in file order.
    id_hashes: Vec<u32>,
    checks: Vec<Vec<Step>>,
}

impl Collected {
    /// The next chunk; the file holds about `expected` checks.
    fn add(
        &mut self,
        (ids, hashes, steps): (FileIndex, Vec<u32>, Option<Vec<Step>>),
        expected: usize,
    ) {
        if self.id_hashes.is_empty() {
            self.id_hashes.reserve(expected + expected / 50);
        }
        self.id_hashes.extend_from_slice(&hashes);
        let index = &mut self.index;
        if index.is_empty() && !ids.is_empty() {
            // Sized once from the first chunk and the expected count: a
            // string grown by doubling would peak at twice its size (and
            // three times, copied) at a million ids. A fiftieth over, as
            // the count may be an estimate.
            let per_id = ids.ids.len() / ids.len();
            index.ids.reserve((per_id + 1) * (expected + expected / 50));
        }
        index.ids.push_str(&ids.ids);
        index.depends.extend(ids.depends);
        if let Some(steps) = steps {
            // The chunk's own vector, moved: appending its steps to one
            // vector for the file touched 2.6 MB of new memory at 10,000.
            self.checks.push(steps);
        }
    }
}

/// How many checks `files` hold at most, by their `[[check]]` header lines
/// (a header inside a multi-line string counts too: an upper bound, never
/// parsed); 0 when they hold at most `min_bytes` in all. The count stops
/// once it passes `bound`: only whether the input passes it matters, and
/// a million checks would otherwise be counted to learn that 20,001 are
/// too many.
fn estimated_checks(files: &[PathBuf], min_bytes: u64, bound: usize) -> Result<usize, InputError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InputError::Io { path, source }
    };
    let mut bytes = 0;
    for path in files {
        bytes += std::fs::metadata(path).map_err(io(path))?.len();
    }
    if bytes <= min_bytes {
        return Ok(0);
    }
    let mut count = 0;
    for path in files {
        let file = std::fs::File::open(path).map_err(io(path))?;
        count += count_check_headers(file, bound - count).map_err(io(path))?;
        if count > bound {
            break;
        }
    }
    Ok(count)
}

/// Lines whose first non-blank text is `[[check]]` (or `[[ check ]]`), read
/// a window at a time (memory does not grow with the file), until more than
/// `bound` are found.
///
/// Each window is cut after its last whole line and searched for `[[`
/// where it lies: a file has about one a check against seven line ends, so
/// only the few lines that hold one are looked at (line by line, this count
/// cost a 10,000-check sweep some 5.5 million instructions more, serially,
/// before any check was validated).
pub fn count_check_headers(mut reader: impl std::io::Read, bound: usize) -> std::io::Result<usize> {
    const WINDOW: usize = 1 << 20;
    let mut window = vec![0u8; WINDOW];
    // Bytes read and not yet counted: `window[..filled]`, from a line's start.
    let mut filled = 0;
    // Inside a line longer than the window, already judged: skip to its end.
    let mut skipping = false;
    let mut count = 0;
    loop {
        let read = match reader.read(&mut window[filled..]) {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        filled += read;
        let at_end = read == 0;
        let mut text = &window[..filled];
        if skipping {
            match memchr::memchr(b'\n', text) {
                Some(newline) => {
                    text = &text[newline + 1..];
                    skipping = false;
                }
                None => {
                    filled = 0;
                    if at_end {
                        return Ok(count);
                    }
                    continue;
                }
            }
        }
        let whole = match memchr::memrchr(b'\n', text) {
            _ if at_end => text.len(),
            Some(newline) => newline + 1,
            // One line fills the window: judge it by its start, skip the rest.
            None if text.len() == WINDOW => {
                count += usize::from(is_check_header_line(text));
                skipping = true;
                filled = 0;
                continue;
            }
            None => 0,
        };
        count += headers_in_lines(&text[..whole]);
        if at_end || count > bound {
            return Ok(count);
        }
        let (kept, len) = (filled - (text.len() - whole), text.len() - whole);
        window.copy_within(kept..kept + len, 0);
        filled = len;
    }
}

/// Whether `line` (from its start) is a `[[check]]` header.
fn is_check_header_line(line: &[u8]) -> bool {
    let text = line.trim_ascii_start();
    text.starts_with(b"[[check]]") || text.starts_with(b"[[ check ]]")
}

/// [`count_check_headers`] in `text`, whole lines.
fn headers_in_lines(text: &[u8]) -> usize {
    static OPEN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("[["));
    let mut count = 0;
    // Where the line of the last `[[` found starts its text (after its
    // leading blanks), and how far the text was searched for line ends: each
    // byte is looked at a bounded number of times, however many `[[` (or
    // leading blanks) a hostile line holds.
    let (mut text_start, mut searched) = (None, 0);
    for at in OPEN.find_iter(text) {
        if let Some(newline) = memchr::memrchr(b'\n', &text[searched..at]) {
            text_start = Some(searched + newline + 1);
        }
        searched = at;
        // The blanks that open the line, measured once a line.
        let line_start = text_start.get_or_insert(0);
        *line_start += text[*line_start..at]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        count += usize::from(*line_start == at && is_check_header_line(&text[at..]));
    }
    count
}

/// `{{env:NAME}}` from the process environment, as [`load_check_file`] reads it.
pub(crate) fn process_env() -> crate::runbook::load::EnvLookup {
    Box::new(|name| std::env::var(name).ok())
}

/// Frees what a streamed sweep reads again from the file (its checks are
/// not in it: see [`SweepInput::checks`]).
fn drop_source(file: &mut CheckFile) {
    file.source = String::new();
}

/// "check id `x` appears in a.toml and b.toml" for each id found in two
/// files (each file has checked its own ids). Looks for repeats on 4-byte
/// hashes first ([`repeated_id_hashes`]: 4 MB for a million ids, sorted in
/// place, not a map of strings), then names the few ids whose hash repeats.
fn duplicate_ids(input: &SweepInput) -> Vec<String> {
    if input.indexes.len() < 2 {
        // One file has checked its own ids (4 bytes per check saved).
        return Vec::new();
    }
    let total = input.indexes.iter().map(FileIndex::len).sum();
    let suspects = repeated_id_hashes(input.indexes.iter().flat_map(FileIndex::ids), total);
    if suspects.is_empty() {
        return Vec::new();
    }
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut problems = Vec::new();
    for (file, index) in input.indexes.iter().enumerate() {
        let suspected = |id: &&str| suspects.binary_search(&id_hash(id)).is_ok();
        for id in index.ids().filter(suspected) {
            match first.get(id) {
                Some(&earlier) if earlier != file => problems.push(format!(
                    "error: check id `{id}` appears in {} and {}; ids must be unique across a sweep",
                    input.files[earlier].path.display(),
                    input.files[file].path.display()
                )),
                Some(_) => {}
                None => {
                    first.insert(id, file);
                }
            }
        }
    }
    problems
}

/// Narrows the input to a plan: `only` globs select checks (with what they
/// depend on); `shard` keeps one stable part (see [`Selection`]). Held checks
/// move from `input` into the plan (no copies); the input keeps its paths
/// and sources for the bundle.
pub fn plan(
    input: &mut SweepInput,
    only: &[String],
    shard: Option<Shard>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(SweepPlan, Vec<String>), InputError> {
    let selection = Selection::new(&input.indexes, only, shard).map_err(InputError::Invalid)?;
    let len = input
        .indexes
        .iter()
        .flat_map(FileIndex::ids)
        .filter(|id| selection.keeps(id))
        .count();
    let mut held = input.held.then(Vec::new);
    let mut vars: Vec<BTreeMap<String, String>> = Vec::new();
    let mut notify = Vec::new();
    let mut files = Vec::new();
    let mut secrets_config = SecretsConfig::default();
    for (file_index, file) in input.files.iter_mut().enumerate() {
        vars.push(file.vars.clone());
        notify.push(file.notify.take());
        for name in &file.secrets.optional {
            if !secrets_config.optional.contains(name) {
                secrets_config.optional.push(name.clone());
            }
        }
        for name in &file.secrets.required {
            if !secrets_config.required.contains(name) {
                secrets_config.required.push(name.clone());
            }
        }
        if let Some(held) = &mut held {
            // Each chunk's vector moves into the plan, narrowed in place.
            for mut steps in std::mem::take(&mut input.checks[file_index]) {
                steps.retain(|step| selection.keeps(&step.id));
                if !steps.is_empty() {
                    held.push(HeldChunk {
                        steps,
                        vars: file_index,
                    });
                }
            }
        }
        files.push(PlanFile {
            path: file.path.clone(),
            sha256: input.hashes[file_index].clone(),
            chunked: input.chunked[file_index].clone(),
            // The ids served the selection and the count above: a streamed
            // sweep no longer needs them (10 MB at a million checks).
            depends: std::mem::take(&mut input.indexes[file_index].depends),
        });
        input.indexes[file_index] = FileIndex::default();
    }

    // Secrets: every file's env files, resolved against that file's folder.
    let mut secrets = SecretStore::default();
    for file in &input.files {
        let base = file.path.parent().unwrap_or(Path::new("."));
        let store = SecretStore::load(&file.secrets, base, env)
            .map_err(|e| InputError::Invalid(e.to_string()))?;
        secrets = secrets.merged(store);
    }
    let missing = secrets_config
        .required
        .iter()
        .filter(|name| secrets.get(name).is_none())
        .cloned()
        .collect::<Vec<_>>();
    if !missing.is_empty() {
        return Err(InputError::Invalid(format!(
            "missing required secret(s): {}",
            missing.join(", ")
        )));
    }
    // A name required by one file and optional in another is listed once
    // (the header used to list every required secret twice).
    let required = secrets_config.required.clone();
    secrets_config
        .optional
        .retain(|name| !required.contains(name));
    let names: Vec<String> = secrets_config.declared().map(str::to_string).collect();
    if held.is_none() {
        // The ids dropped above and what pass 1 freed since its threads
        // ended (the duplicate-id hashes) sit free in the main arena, below
        // what is still used: given back before the sweep's threads grow
        // their own.
        release_freed_memory();
    }
    Ok((
        SweepPlan {
            held,
            files,
            selection,
            len,
            vars,
            notify,
            secrets,
        },
        names,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `files` files of `per` checks each, in a new folder.
    fn folder(files: usize, per: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in 0..files {
            let mut text = String::from("[vars]\nhost = '127.0.0.1'\n");
            for c in 0..per {
                text.push_str(&format!(
                    "\n[[check]]\nid = 'f{f}c{c}'\ncheck = 'tcp'\nhost = '{{{{host}}}}'\nport = {}\n",
                    1000 + c
                ));
            }
            // One header inside a string: counted, never parsed as one.
            text.push_str(&format!("\n[[ check ]]\nid = 'last{f}'\ncheck = 'tcp'\nhost = 'h'\nport = 1\nhint = '''\n[[check]]\n'''\n"));
            std::fs::write(dir.path().join(format!("f{f}.toml")), text).unwrap();
        }
        dir
    }

    #[test]
    fn placeholders_of_plain_http_checks_are_validated_in_chunks_held_or_streamed() {
        // Plain `http` checks keep their templates in their step, checked
        // where they are: an undeclared secret and an unknown variable in
        // the 1,100th and 1,200th checks are found, with their lines.
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("[secrets]\nrequired = ['T']\n[vars]\nhost = 'h'\n");
        for c in 0..1_500 {
            let (header, url) = match c {
                1_099 => ("Bearer {{secret:NOPE}}", "http://{{host}}/"),
                1_199 => ("Bearer {{secret:T}}", "http://{{hots}}/"),
                _ => ("Bearer {{secret:T}}", "http://{{host}}/"),
            };
            text.push_str(&format!(
                "\n[[check]]\nid = 'c{c}'\ncheck = 'http'\nurl = '{url}'\nheaders = {{ Authorization = '{header}' }}\nexpect = {{ status = 200, body_contains = '{{{{host}}}}' }}\n"
            ));
        }
        let path = dir.path().join("checks.toml");
        std::fs::write(&path, &text).unwrap();
        let line_of = |needle: &str| text[..text.find(needle).unwrap()].lines().count();
        for hold in [10_000, 0] {
            let error = load_input_holding(std::slice::from_ref(&path), hold)
                .err()
                .expect("two checks are invalid")
                .to_string();
            assert!(error.contains("secret `NOPE` is not declared"), "{error}");
            assert!(error.contains("unknown variable `{{hots}}`"), "{error}");
            assert!(
                error.contains(&format!("checks.toml:{}", line_of("NOPE"))),
                "{error}"
            );
            assert!(
                error.contains(&format!("checks.toml:{}", line_of("hots"))),
                "{error}"
            );
        }
        // Without them, the same file loads, its placeholders untouched.
        std::fs::write(&path, text.replace("NOPE", "T").replace("hots", "host")).unwrap();
        let input = load_input_holding(std::slice::from_ref(&path), 10_000).unwrap();
        let step = &input.checks[0][1][99];
        let crate::check::CheckSpec::Http(http) = &*step.check else {
            panic!("an http check");
        };
        assert_eq!(http.url.raw(), "http://{{host}}/");
        assert_eq!(step.id, "c1099");
    }

    #[test]
    fn files_validated_on_several_threads_come_back_in_file_order_with_their_problems() {
        let dir = folder(7, 5);
        // Two broken files: their diagnostics come in file order.
        for broken in [2, 5] {
            let path = dir.path().join(format!("f{broken}.toml"));
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, text.replace("port = 1002", "port = 'x'")).unwrap();
        }
        let files = input_files(&[dir.path().to_path_buf()]).unwrap();
        let summary = |loaded: &[Loaded]| -> Vec<String> {
            loaded
                .iter()
                .map(|l| match l {
                    Loaded::File(f) => format!("{} {}", f.sha256, f.index.ids),
                    Loaded::Problem(p) => p.clone(),
                    Loaded::Unreadable(e) => e.to_string(),
                })
                .collect()
        };
        let parallel = load_files(&files, true);
        let one_by_one: Vec<Loaded> = files.iter().map(|p| load_file(p, true, 1)).collect();
        assert_eq!(summary(&parallel), summary(&one_by_one));
        let problems: Vec<usize> = parallel
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l, Loaded::Problem(_)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(problems, [2, 5]);
        let error = load_input_holding(&[dir.path().to_path_buf()], 1_000)
            .err()
            .expect("two files are invalid")
            .to_string();
        let (at2, at5) = (
            error.find("f2.toml").unwrap(),
            error.find("f5.toml").unwrap(),
        );
        assert!(at2 < at5, "{error}");
    }

    #[test]
    fn defaults_below_the_checks_apply_as_defaults_above_them() {
        let checks: String = (0..2_500)
            .map(|c| {
                format!(
                    "\n[[check]]\nid = 'c{c}'\ncheck = 'tcp'\nhost = 'h'\nport = {}\n",
                    1 + c
                )
            })
            .collect();
        let defaults = "\n[defaults]\nretries = 0\ntimeout = '3s'\n";
        let dir = tempfile::tempdir().unwrap();
        let above = dir.path().join("above.toml");
        let below = dir.path().join("below.toml");
        std::fs::write(&above, format!("{defaults}{checks}")).unwrap();
        std::fs::write(&below, format!("{checks}{defaults}")).unwrap();
        for path in [&above, &below] {
            // Read once (tables above) or in two passes (below): the same
            // steps, held, and the same ids and count, streamed.
            let held = load_input_holding(std::slice::from_ref(path), 10_000).unwrap();
            assert!(held.held);
            let steps: Vec<&Step> = held.checks[0].iter().flatten().collect();
            assert_eq!(steps.len(), 2_500, "{}", path.display());
            assert!(
                steps.iter().all(|s| s.policy.max_attempts() == 1
                    && s.policy.timeout == std::time::Duration::from_secs(3)),
                "{}",
                path.display()
            );
            let streamed = load_input_holding(std::slice::from_ref(path), 0).unwrap();
            assert!(!streamed.held && streamed.checks[0].is_empty());
            assert_eq!(ids(&streamed), ids(&held));
            assert!(streamed.chunked[0].is_some(), "read in chunks");
        }
    }

    fn ids(input: &SweepInput) -> Vec<String> {
        input
            .indexes
            .iter()
            .flat_map(|i| i.ids().map(str::to_string))
            .collect()
    }

    #[test]
    fn counting_headers_first_streams_a_large_input_from_its_first_check() {
        let dir = folder(4, 3);
        let paths = [dir.path().to_path_buf()];
        // Held until the bound is passed, as before (no estimate).
        let late = load_input_estimating(&paths, 5, u64::MAX).unwrap();
        // Counted first: never holds a check.
        let early = load_input_estimating(&paths, 5, 0).unwrap();
        assert!(!late.held && !early.held);
        assert!(late.peak_held > 0, "{}", late.peak_held);
        assert_eq!(early.peak_held, 0);
        assert!(early.checks.iter().all(Vec::is_empty));
        assert_eq!(ids(&early), ids(&late));
        assert_eq!(ids(&early).len(), 16);
        assert_eq!(early.hashes, late.hashes);
        assert_eq!(early.digest, late.digest);
        // Under the bound the count changes nothing: held.
        let held = load_input_estimating(&paths, 100, 0).unwrap();
        assert!(held.held);
        assert_eq!(held.peak_held, 16);
        assert_eq!(ids(&held), ids(&late));
    }

    #[test]
    fn an_estimate_under_the_real_count_still_switches_to_streaming() {
        // The estimate is 0 under the size threshold: the real count decides.
        let dir = folder(3, 4);
        let input = load_input_estimating(&[dir.path().to_path_buf()], 6, u64::MAX).unwrap();
        assert!(!input.held);
        assert!(input.checks.iter().all(Vec::is_empty));
    }

    #[test]
    fn small_files_are_validated_in_chunks_held_or_streamed_and_a_streamed_plan_keeps_no_ids() {
        // `folder`'s files end with a header inside a string, which the
        // section splitter leaves to the whole-file reader: the last one is
        // cut off from two of them.
        let dir = folder(3, 4);
        for f in [0, 2] {
            let path = dir.path().join(format!("f{f}.toml"));
            let text = std::fs::read_to_string(&path).unwrap();
            let end = text.find("\n[[ check ]]").unwrap();
            std::fs::write(&path, &text[..end]).unwrap();
        }
        let paths = [dir.path().to_path_buf()];
        // Every file that can be (a few hundred bytes each) is validated in
        // chunks, so that a streamed sweep reads it again in small batches
        // and plain checks skip toml's parse; the other is read whole.
        let mut streamed = load_input_estimating(&paths, 0, u64::MAX).unwrap();
        assert!(!streamed.held);
        let chunked = |input: &SweepInput| -> Vec<bool> {
            input.chunked.iter().map(Option::is_some).collect()
        };
        assert_eq!(chunked(&streamed), [true, false, true]);
        // Held: the same files in chunks, the same checks.
        let held = load_input_estimating(&paths, 100, u64::MAX).unwrap();
        assert!(held.held);
        assert_eq!(chunked(&held), [true, false, true]);
        assert_eq!(ids(&streamed), ids(&held));

        let (plan, _) = plan(&mut streamed, &[], None, &|_| None).unwrap();
        assert_eq!(plan.len, 13);
        // The ids served the selection and the count: none are kept.
        assert!(streamed.indexes.iter().all(FileIndex::is_empty));
        let read: Vec<String> = plan
            .batches()
            .flat_map(|b| b.unwrap())
            .map(|c| c.step.id.clone())
            .collect();
        assert_eq!(read, ids(&held));
    }

    #[test]
    fn a_held_plan_keeps_pass_1s_chunks_narrowed_in_place_and_lends_their_steps_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checks.toml");
        let text: String = (0..2_500)
            .map(|n| format!("[[check]]\nid = 'c{n:04}'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        let paths = [path];
        let shard = Shard::parse("2/3").unwrap();
        let planned = |hold_max| {
            let mut input = load_input_holding(&paths, hold_max).unwrap();
            plan(&mut input, &[], Some(shard), &|_| None).unwrap().0
        };
        let held = planned(10_000);
        let streamed = planned(0);
        // Pass 1's chunks of 1,000 checks, each one's vector moved into the
        // plan and narrowed to the shard where it is.
        let chunks = held.held.as_ref().expect("held");
        assert_eq!(chunks.len(), 3);
        assert!(chunks
            .iter()
            .all(|c| !c.steps.is_empty() && c.steps.len() < 1_000));
        let ids = |plan: &SweepPlan| -> Vec<String> {
            plan.batches()
                .flat_map(|batch| batch.unwrap())
                .map(|check| check.step.id.clone())
                .collect()
        };
        // The same checks, in file order, as a streamed plan of the shard.
        assert_eq!(ids(&held), ids(&streamed));
        assert_eq!(ids(&held).len(), held.len);
        assert!((600..1_100).contains(&held.len), "{}", held.len);
        // A batch per chunk, each step lent by the plan, none copied.
        let batches: Vec<_> = held.batches().map(Result::unwrap).collect();
        assert_eq!(batches.len(), 3);
        assert!(batches
            .iter()
            .flatten()
            .all(|check| matches!(check.step, std::borrow::Cow::Borrowed(_))));
    }

    #[test]
    fn duplicate_ids_across_files_are_named_with_both_files_and_hash_collisions_are_not() {
        let (x, y) = crate::core::repeats::colliding_ids();
        let input_of = |files: &[&[&str]]| SweepInput {
            files: (0..files.len())
                .map(|f| CheckFile {
                    path: PathBuf::from(format!("f{f}.toml")),
                    source: String::new(),
                    secrets: SecretsConfig::default(),
                    vars: BTreeMap::new(),
                    defaults: Default::default(),
                    notify: None,
                    checks: Vec::new(),
                })
                .collect(),
            checks: vec![Vec::new(); files.len()],
            indexes: files
                .iter()
                .map(|ids| FileIndex {
                    ids: ids.iter().map(|id| format!("{id}\n")).collect(),
                    depends: Vec::new(),
                })
                .collect(),
            hashes: Vec::new(),
            held: false,
            peak_held: 0,
            chunked: Vec::new(),
            digest: String::new(),
        };
        // Same 4-byte hash, different ids: no problem.
        assert!(duplicate_ids(&input_of(&[&[&x, "a"], &[&y, "b"]])).is_empty());
        // A real repeat among colliding ones: named once, with both files.
        let problems = duplicate_ids(&input_of(&[&[&x, "a"], &[&y], &["c", &x]]));
        assert_eq!(
            problems,
            [format!(
                "error: check id `{x}` appears in f0.toml and f2.toml; ids must be unique across a sweep"
            )]
        );
        assert!(CheckChunks::ids_unique(
            [x.as_str(), y.as_str()].into_iter(),
            2
        ));
        assert!(!CheckChunks::ids_unique(
            [x.as_str(), "a", x.as_str()].into_iter(),
            3
        ));
    }

    #[test]
    fn check_headers_are_counted_by_line() {
        let text =
            "[[check]]\n  [[ check ]] # x\n[[checks]]\n[check.expect]\nid = '[[check]]'\n[[check]]";
        // `[[checks]]` starts with `[[check` but not `[[check]]`.
        assert_eq!(count_check_headers(text.as_bytes(), usize::MAX).unwrap(), 3);
    }

    /// A reader that hands out at most `step` bytes a read: lines then
    /// straddle the counter's windows anywhere.
    struct Trickle<'a> {
        text: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.text.len());
            buf[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }

    #[test]
    fn check_headers_are_counted_across_windows_as_line_by_line_and_up_to_a_bound() {
        // The old count, a line at a time, is the reference.
        let by_line = |text: &str| {
            text.split_inclusive('\n')
                .filter(|line| {
                    let t = line.trim_ascii_start();
                    t.starts_with("[[check]]") || t.starts_with("[[ check ]]")
                })
                .count()
        };
        let pieces = [
            "[[check]]\n",
            "   [[check]] # c\n",
            "\t[[ check ]]\n",
            "[[checks]]\n",
            "id = '[[check]]'\n",
            &format!("{}[[check]]\n", " ".repeat(40)),
            "[[chec",
            "k]]\n",
            "\n",
            "x = 1\r\n",
        ];
        let mut seed = 7u64;
        for _ in 0..300 {
            let mut text = String::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let want = by_line(&text);
            for step in [1, 2, 3, 5, 11, 64] {
                let reader = Trickle {
                    text: text.as_bytes(),
                    step,
                };
                let counted = count_check_headers(reader, usize::MAX).unwrap();
                assert_eq!(counted, want, "step {step}: {text:?}");
            }
        }
        // Lines longer than the counter's window (1 MiB): one header whose
        // comment runs on, one hostile line of `[[` only (each byte looked
        // back at once at most), then a header after each.
        // And one within the window: 400 KB of blanks, then 150,000 `[[`
        // after a word (the blanks are measured once, not at each `[[`).
        let long = format!(
            "  [[check]] #{}\n[[check]]\n{}\n{}x{}\n[[ check ]]\n",
            "x".repeat(3 << 20),
            "[[".repeat(1 << 20),
            " ".repeat(400_000),
            "[[".repeat(150_000)
        );
        for step in [usize::MAX, 700_001] {
            let reader = Trickle {
                text: long.as_bytes(),
                step,
            };
            assert_eq!(
                count_check_headers(reader, usize::MAX).unwrap(),
                3,
                "step {step}"
            );
        }
        // Stops once past the bound: more than it, not all.
        let many = "[[check]]\n".repeat(1_000);
        let reader = Trickle {
            text: many.as_bytes(),
            step: 100,
        };
        let counted = count_check_headers(reader, 25).unwrap();
        assert!(counted > 25 && counted < 1_000, "{counted}");
    }
}
