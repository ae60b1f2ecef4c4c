//! The sweep's plan: which checks run (`--only`, `--shard`) and where their
//! steps come from. A small sweep holds its checks; a large one keeps only
//! each file's ids and dependencies and reads each file again as the sweep
//! reaches it, so that memory does not grow with the number of checks.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::input::process_env;
use super::select::{glob_matches, Shard};
use crate::runbook::load::{load_check_file, CheckChunks, ChunkedFile, ReadWhole};
use crate::runbook::model::{NotifyConfig, Step};
use crate::runbook::SecretStore;

/// Above this many checks in all, a sweep streams its checks from the files
/// instead of holding them (about 3 KB each when held). Below it, one load is
/// cheaper than two. `RUNPROOF_SWEEP_HOLD` sets another bound (0 streams
/// every sweep).
pub const HOLD_MAX_CHECKS: usize = 20_000;

/// The bound in effect: [`HOLD_MAX_CHECKS`] unless `RUNPROOF_SWEEP_HOLD`
/// says otherwise.
pub fn hold_max_checks() -> usize {
    std::env::var("RUNPROOF_SWEEP_HOLD")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(HOLD_MAX_CHECKS)
}

/// Checks per batch when a streamed sweep reads a file again in chunks
/// (pass 1 validates 1,000 at a time): the reader's chunk, the batches it
/// reads ahead and the one being announced are all the checks held at once
/// (a held check is about 1 KB, its TOML section's tree more while it is
/// read).
pub const SWEEP_CHUNK_CHECKS: usize = 250;

/// One check to sweep: its step borrowed from a held plan, or owned when
/// read again from its file.
#[derive(Debug, Clone)]
pub struct SweepCheck<'p> {
    pub step: Cow<'p, Step>,
    /// Index into [`SweepPlan::vars`]: the `[vars]` of the file it came from.
    pub vars: usize,
}

/// Held checks of one file, as pass 1 validated them: a chunk's vector,
/// moved into the plan and never copied (see [`SweepPlan::held`]).
#[derive(Debug, Clone)]
pub struct HeldChunk {
    pub steps: Vec<Step>,
    /// Index into [`SweepPlan::vars`], as [`SweepCheck::vars`].
    pub vars: usize,
}

/// What a sweep remembers of one check file without holding its checks.
#[derive(Debug, Clone, Default)]
pub struct FileIndex {
    /// Every check id of the file, in file order, each ended by `\n` (ids
    /// cannot hold one): one allocation per file instead of one per check.
    pub ids: String,
    /// The checks that depend on others: (id, `depends_on`).
    pub depends: Vec<(String, Vec<String>)>,
}

impl FileIndex {
    /// The index of `steps`.
    pub fn of(steps: &[Step]) -> FileIndex {
        let mut index = FileIndex {
            ids: String::with_capacity(steps.iter().map(|s| s.id.len() + 1).sum()),
            depends: Vec::new(),
        };
        index.add(steps);
        index
    }

    /// Adds `steps` (the next of the file).
    pub fn add(&mut self, steps: &[Step]) {
        let index = self;
        for step in steps {
            index.ids.push_str(&step.id);
            index.ids.push('\n');
            if !step.depends_on.is_empty() {
                index
                    .depends
                    .push((step.id.clone(), step.depends_on.clone()));
            }
        }
    }

    /// How many ids the file has.
    pub fn len(&self) -> usize {
        memchr::memchr_iter(b'\n', self.ids.as_bytes()).count()
    }

    /// Whether the file has no id.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The file's check ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> + Clone {
        self.ids.split_terminator('\n')
    }
}

/// Which checks of the input run: `--only` with what the selected checks
/// depend on, then `--shard`. Decided per id, so that streamed checks can be
/// selected as they are read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    only: Vec<String>,
    /// Checks pulled in by `--only` because a selected check depends on them.
    required: HashSet<String>,
    shard: Option<Shard>,
    /// Checks linked by `depends_on` are sharded by the smallest id of their
    /// component; every other check by its own id.
    shard_keys: HashMap<String, String>,
}

impl Selection {
    /// The selection over `files`; an error when `--only` matches nothing.
    pub fn new(files: &[FileIndex], only: &[String], shard: Option<Shard>) -> Result<Self, String> {
        let depends: HashMap<&str, &[String]> = files
            .iter()
            .flat_map(|f| f.depends.iter())
            .map(|(id, deps)| (id.as_str(), deps.as_slice()))
            .collect();
        let mut selection = Selection {
            only: only.to_vec(),
            shard,
            ..Selection::default()
        };
        // What `id` depends on directly.
        let deps_of = |id: &str| {
            depends
                .get(id)
                .into_iter()
                .flat_map(|d| d.iter())
                .map(String::as_str)
        };
        if !only.is_empty() {
            let mut matched = false;
            let mut pending: Vec<&str> = Vec::new();
            for id in files.iter().flat_map(FileIndex::ids) {
                if only.iter().any(|g| glob_matches(g, id)) {
                    matched = true;
                    pending.extend(deps_of(id));
                }
            }
            if !matched {
                return Err(format!("--only {}: matches no check", only.join(" ")));
            }
            while let Some(id) = pending.pop() {
                if selection.required.insert(id.to_string()) {
                    pending.extend(deps_of(id));
                }
            }
        }
        if shard.is_some() {
            selection.shard_keys = shard_keys(&depends);
        }
        Ok(selection)
    }

    /// Whether the check `id` runs in this sweep.
    pub fn keeps(&self, id: &str) -> bool {
        let selected = self.only.is_empty()
            || self.required.contains(id)
            || self.only.iter().any(|g| glob_matches(g, id));
        selected
            && self.shard.is_none_or(|shard| {
                shard.contains(self.shard_keys.get(id).map_or(id, String::as_str))
            })
    }
}

/// The id each linked check is sharded by: the smallest id of its dependency
/// component (checks linked by `depends_on`, in either direction). Sharding by
/// the component, not by the check's own roots, keeps a check that depends on
/// two roots in the same shard as both of them (and as its dependants).
fn shard_keys(depends: &HashMap<&str, &[String]>) -> HashMap<String, String> {
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    fn number<'a>(
        id: &'a str,
        index: &mut HashMap<&'a str, usize>,
        ids: &mut Vec<&'a str>,
    ) -> usize {
        *index.entry(id).or_insert_with(|| {
            ids.push(id);
            ids.len() - 1
        })
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut ids: Vec<&str> = Vec::new();
    // Sorted: the same components and keys whatever the hash order.
    let mut edges: Vec<(&str, &[String])> = depends.iter().map(|(k, v)| (*k, *v)).collect();
    edges.sort_unstable_by_key(|(id, _)| *id);
    let mut links = Vec::new();
    for (id, deps) in edges {
        let i = number(id, &mut index, &mut ids);
        for dep in deps {
            links.push((i, number(dep, &mut index, &mut ids)));
        }
    }
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    for (i, j) in links {
        let (a, b) = (find(&mut parent, i), find(&mut parent, j));
        parent[a.max(b)] = a.min(b);
    }
    let mut smallest: HashMap<usize, &str> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let root = find(&mut parent, i);
        smallest
            .entry(root)
            .and_modify(|s| *s = (*s).min(id))
            .or_insert(id);
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), smallest[&find(&mut parent, i)].to_string()))
        .collect()
}

/// Batches of checks read from a file.
type Batches<'p> = Box<dyn Iterator<Item = io::Result<Vec<SweepCheck<'p>>>> + Send + 'p>;

/// A check file that changed (or vanished) after the sweep validated it:
/// the sweep stops rather than run checks nobody validated.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputChanged(pub String);

impl InputChanged {
    /// Whether `error` is one.
    pub fn is(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|e| e.is::<InputChanged>())
    }

    /// "`path`: `why`; the sweep validated it when it started (run it again)"
    pub fn error(path: &Path, why: &str) -> io::Error {
        io::Error::other(InputChanged(format!(
            "{}: {why}; the sweep validated it when it started (run it again)",
            path.display()
        )))
    }
}

/// Why a file whose SHA-256 is no longer the validated one is refused.
pub(crate) const CHANGED: &str = "changed during the sweep";

/// The text of a check file, read again: an [`InputChanged`] error when it
/// cannot be read or its SHA-256 is no longer `sha256` (hex).
pub fn read_validated(path: &Path, sha256: &str) -> io::Result<String> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| InputChanged::error(path, &format!("cannot be read again: {e}")))?;
    if hex::encode(Sha256::digest(source.as_bytes())) != sha256 {
        return Err(InputChanged::error(path, CHANGED));
    }
    Ok(source)
}

/// A check file opened again to be read as a stream: at its end, an
/// [`InputChanged`] error instead of the end when its SHA-256 is no longer
/// `sha256` (what was read before came from a changed file: whoever reads
/// it must not keep it).
pub fn open_validated(path: &Path, sha256: &str) -> io::Result<impl io::Read + use<>> {
    let file = std::fs::File::open(path)
        .map_err(|e| InputChanged::error(path, &format!("cannot be read again: {e}")))?;
    Ok(ValidatedReader {
        file,
        hasher: Sha256::new(),
        sha256: sha256.to_string(),
        path: path.to_path_buf(),
    })
}

/// See [`open_validated`].
struct ValidatedReader {
    file: std::fs::File,
    hasher: Sha256,
    sha256: String,
    path: PathBuf,
}

impl io::Read for ValidatedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buf)?;
        if read == 0 && !buf.is_empty() {
            if hex::encode(self.hasher.clone().finalize()) != self.sha256 {
                return Err(InputChanged::error(&self.path, CHANGED));
            }
        } else {
            self.hasher.update(&buf[..read]);
        }
        Ok(read)
    }
}

/// A check file a streamed plan reads again.
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub path: PathBuf,
    /// SHA-256 hex of the bytes that were validated: a file changed since is
    /// refused rather than swept unvalidated.
    pub sha256: String,
    /// Read in chunks of checks ([`CheckChunks`]), not whole: what the
    /// first read learnt of the file, so that it is not read whole first
    /// again.
    pub chunked: Option<ChunkedFile>,
    /// The file's checks that depend on others: (id, `depends_on`). Its ids
    /// are not kept: the sweep reads them again with the checks.
    pub depends: Vec<(String, Vec<String>)>,
}

/// Everything a sweep runs, after loading, `--only` and `--shard`.
#[derive(Debug, Clone, Default)]
pub struct SweepPlan {
    /// The checks, when the sweep is small enough to hold them (see
    /// [`HOLD_MAX_CHECKS`]), in the chunks pass 1 validated them in, file by
    /// file; `None` when they are read from [`Self::files`] as the sweep
    /// goes.
    pub held: Option<Vec<HeldChunk>>,
    /// Every input file, by the same index as [`SweepPlan::vars`].
    pub files: Vec<PlanFile>,
    pub selection: Selection,
    /// How many checks run.
    pub len: usize,
    pub vars: Vec<BTreeMap<String, String>>,
    /// Each file's `[notify]`, by the same index as [`SweepPlan::vars`].
    pub notify: Vec<Option<Box<NotifyConfig>>>,
    pub secrets: SecretStore,
}

impl SweepPlan {
    /// The checks that run, file by file in order, each file's as one batch:
    /// the held ones, or each file read again and validated as it is
    /// reached. An error when a file can no longer be read or has changed.
    pub fn batches(&self) -> Box<dyn Iterator<Item = io::Result<Vec<SweepCheck<'_>>>> + Send + '_> {
        if let Some(held) = &self.held {
            // A batch per chunk: each batch's vector is freed before the
            // next is made, instead of one of 10,000 checks.
            return Box::new(held.iter().map(|chunk| {
                Ok(chunk
                    .steps
                    .iter()
                    .map(|step| SweepCheck {
                        step: Cow::Borrowed(step),
                        vars: chunk.vars,
                    })
                    .collect())
            }));
        }
        Box::new(
            self.files
                .iter()
                .enumerate()
                .flat_map(move |(file_index, file)| self.read_file(file_index, file)),
        )
    }

    /// File `file_index` read again: one batch, or one per chunk of checks
    /// for a file read in chunks. A file read whole is refused before its
    /// batch when it changed; a file read in chunks is streamed from disk,
    /// so a change is found when it is opened (its size or modification
    /// time, without reading it whole first again) or, at the latest,
    /// at its end: the error then comes after batches read from the changed
    /// file, and the sweep stops there as for any [`InputChanged`].
    fn read_file<'p>(&'p self, file_index: usize, file: &'p PlanFile) -> Batches<'p> {
        let changed = |why: &str| InputChanged::error(&file.path, why);
        let selected = move |steps: Vec<Step>| -> Vec<SweepCheck<'p>> {
            steps
                .into_iter()
                .filter(|step| self.selection.keeps(&step.id))
                .map(|step| SweepCheck {
                    step: Cow::Owned(step),
                    vars: file_index,
                })
                .collect()
        };
        if let Some(learnt) = &file.chunked {
            // A file edited since (its size or time) is refused here, before
            // any of its checks; any other change at its end (the hash).
            let mut chunks = match CheckChunks::resume(&file.path, process_env(), learnt) {
                Ok(chunks) => chunks,
                Err(_) => return Box::new(std::iter::once(Err(changed(CHANGED)))),
            };
            chunks.set_chunk_checks(SWEEP_CHUNK_CHECKS);
            // Each chunk is read from the file as the sweep reaches it; the
            // last one is refused when the file's hash is no longer the one
            // validated (see `CheckChunks`).
            return Box::new(std::iter::from_fn(move || {
                let chunk = chunks.next_chunk(&file.path)?;
                Some(chunk.map(selected).map_err(|e| match e {
                    ReadWhole::Changed => changed(CHANGED),
                    ReadWhole::Unusual => changed("no longer loads"),
                }))
            }));
        }
        let source = match read_validated(&file.path, &file.sha256) {
            Ok(source) => source,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let batch = load_check_file(&file.path, &source)
            .map(|loaded| selected(loaded.checks))
            .map_err(|_| changed("no longer loads"));
        Box::new(std::iter::once(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(checks: &[(&str, &[&str])]) -> FileIndex {
        FileIndex {
            ids: checks.iter().map(|(id, _)| format!("{id}\n")).collect(),
            depends: checks
                .iter()
                .filter(|(_, deps)| !deps.is_empty())
                .map(|(id, deps)| (id.to_string(), deps.iter().map(|d| d.to_string()).collect()))
                .collect(),
        }
    }

    /// A file of `checks` standalone checks, large enough to be read in
    /// chunks.
    fn chunked_file(checks: usize) -> (tempfile::NamedTempFile, String) {
        let mut text = String::from("[vars]\nhost = '127.0.0.1'\n");
        for n in 0..checks {
            text.push_str(&format!(
                "\n[[check]]\nid = 'c{n}'\ncheck = 'tcp'\nhost = '{{{{host}}}}'\nport = {}\nhint = '{}'\n",
                1 + n % 60_000,
                "padding ".repeat(12)
            ));
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        (file, text)
    }

    fn plan_of(path: &Path, sha256: &str) -> SweepPlan {
        let opened = CheckChunks::open_from(path, process_env(), 0)
            .unwrap()
            .expect("a file of standalone checks reads in chunks");
        assert_eq!(opened.sha256(), sha256);
        SweepPlan {
            files: vec![PlanFile {
                path: path.to_path_buf(),
                sha256: sha256.to_string(),
                chunked: Some(opened.learnt()),
                depends: Vec::new(),
            }],
            vars: vec![BTreeMap::new()],
            ..SweepPlan::default()
        }
    }

    #[test]
    fn a_chunked_file_changed_during_the_sweep_ends_its_batches_with_input_changed() {
        let (file, text) = chunked_file(2_500);
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        let plan = plan_of(file.path(), &sha256);
        // Read again in batches of at most SWEEP_CHUNK_CHECKS: the most
        // checks one hand-over holds.
        let sizes: Vec<usize> = plan.batches().map(|b| b.unwrap().len()).collect();
        assert_eq!(sizes, [SWEEP_CHUNK_CHECKS; 10]);

        // Changed after the first batch was handed out: the end refuses it.
        let mut batches = plan.batches();
        assert_eq!(batches.next().unwrap().unwrap().len(), SWEEP_CHUNK_CHECKS);
        std::fs::write(file.path(), text.replace("port = 2400\n", "port = 2401\n")).unwrap();
        let rest: Vec<_> = batches.collect();
        let last = rest.last().unwrap().as_ref().unwrap_err();
        assert!(InputChanged::is(last), "{last}");
        assert!(last.to_string().contains(CHANGED), "{last}");

        // Changed before it is reached: refused when opened, no batch.
        let errors: Vec<_> = plan.batches().collect();
        assert_eq!(errors.len(), 1);
        assert!(InputChanged::is(errors[0].as_ref().unwrap_err()));
    }

    #[test]
    fn a_validated_stream_fails_at_its_end_when_the_file_changed() {
        use std::io::Read;
        let (file, text) = chunked_file(10);
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        let mut read = String::new();
        open_validated(file.path(), &sha256)
            .unwrap()
            .read_to_string(&mut read)
            .unwrap();
        assert!(read == text);
        std::fs::write(file.path(), text.replace("c9", "c8")).unwrap();
        let error = open_validated(file.path(), &sha256)
            .unwrap()
            .read_to_string(&mut String::new())
            .unwrap_err();
        assert!(InputChanged::is(&error), "{error}");
    }

    #[test]
    fn only_keeps_what_the_selected_checks_depend_on_transitively() {
        let files = [
            index(&[("db", &[]), ("api", &["db"]), ("other", &[])]),
            index(&[("ui", &["api"])]),
        ];
        let selection = Selection::new(&files, &["ui".to_string()], None).unwrap();
        let kept: Vec<&str> = files
            .iter()
            .flat_map(FileIndex::ids)
            .filter(|id| selection.keeps(id))
            .collect();
        assert_eq!(kept, ["db", "api", "ui"]);
        assert!(Selection::new(&files, &["nope*".to_string()], None).is_err());
    }

    #[test]
    fn a_dependency_component_lands_in_one_shard() {
        let files = [index(&[
            ("a", &[]),
            ("b", &[]),
            ("c", &["a", "b"]),
            ("d", &["c"]),
        ])];
        for count in 2..6 {
            let mut owners = Vec::new();
            for k in 1..=count {
                let shard = Shard { index: k, count };
                let selection = Selection::new(&files, &[], Some(shard)).unwrap();
                if selection.keeps("a") {
                    owners.push(k);
                    for id in ["b", "c", "d"] {
                        assert!(selection.keeps(id), "{id} left shard {k}/{count}");
                    }
                }
            }
            assert_eq!(owners.len(), 1, "one shard of {count} holds the component");
        }
    }
}
