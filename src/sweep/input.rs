//! What a sweep reads: files and folders of check definitions
//! (`checks/*.toml`), narrowed by `--only` and `--shard`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::run::{SweepCheck, SweepPlan};
use super::select::{glob_matches, Shard};
use crate::runbook::load::load_check_file;
use crate::runbook::model::{CheckFile, SecretsConfig};
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
    pub files: Vec<CheckFile>,
    /// SHA-256 hex over the sorted `<path> <sha256>` lines of the files.
    pub digest: String,
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
pub fn load_input(paths: &[PathBuf]) -> Result<SweepInput, InputError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    for path in input_files(paths)? {
        let source = std::fs::read_to_string(&path).map_err(|source| InputError::Io {
            path: path.display().to_string(),
            source,
        })?;
        lines.push(format!(
            "{} {}",
            path.display(),
            hex::encode(Sha256::digest(source.as_bytes()))
        ));
        match load_check_file(&path, &source) {
            Ok(file) => files.push(file),
            Err(LoadError::Invalid { rendered, .. }) => problems.push(rendered),
            Err(other) => problems.push(other.to_string()),
        }
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for file in &files {
        for step in &file.checks {
            if let Some(first) = seen.insert(&step.id, &file.path) {
                problems.push(format!(
                    "error: check id `{}` appears in {} and {}; ids must be unique across a sweep",
                    step.id,
                    first.display(),
                    file.path.display()
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(InputError::Invalid(problems.join("\n")));
    }
    lines.sort();
    Ok(SweepInput {
        digest: hex::encode(Sha256::digest(lines.join("\n").as_bytes())),
        files,
    })
}

/// Narrows the input to a plan: `only` globs select checks (with what they
/// depend on); `shard` keeps one stable part. The checks move from `input`
/// into the plan (a sweep may hold 100,000 of them: no copies); the input keeps
/// its paths and sources for the bundle. A check and the checks it depends
/// on always share a shard, so blocking still works when a sweep is split.
pub fn plan(
    input: &mut SweepInput,
    only: &[String],
    shard: Option<Shard>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(SweepPlan, Vec<String>), InputError> {
    let total = input.files.iter().map(|f| f.checks.len()).sum();
    let mut all: Vec<SweepCheck> = Vec::with_capacity(total);
    let mut vars: Vec<BTreeMap<String, String>> = Vec::new();
    let mut notify = Vec::new();
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
        for step in std::mem::take(&mut file.checks) {
            all.push(SweepCheck {
                step,
                vars: file_index,
            });
        }
    }
    let by_id: HashMap<&str, &SweepCheck> = all.iter().map(|c| (c.step.id.as_str(), c)).collect();

    let mut keep: HashSet<String> = if only.is_empty() {
        all.iter().map(|c| c.step.id.clone()).collect()
    } else {
        let mut selected = HashSet::new();
        let mut pending: Vec<&str> = all
            .iter()
            .filter(|c| only.iter().any(|g| glob_matches(g, &c.step.id)))
            .map(|c| c.step.id.as_str())
            .collect();
        if pending.is_empty() {
            return Err(InputError::Invalid(format!(
                "--only {}: matches no check",
                only.join(" ")
            )));
        }
        while let Some(id) = pending.pop() {
            if selected.insert(id.to_string()) {
                if let Some(check) = by_id.get(id) {
                    pending.extend(check.step.depends_on.iter().map(String::as_str));
                }
            }
        }
        selected
    };
    if let Some(shard) = shard {
        let keys = shard_keys(&all);
        keep.retain(|id| shard.contains(keys.get(id.as_str()).copied().unwrap_or(id)));
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
    let checks = all
        .into_iter()
        .filter(|c| keep.contains(&c.step.id))
        .collect();
    Ok((
        SweepPlan {
            checks,
            vars,
            notify,
            secrets,
        },
        names,
    ))
}

/// The id each check is sharded by: the smallest id of its dependency
/// component (checks linked by `depends_on`, in either direction). Sharding by
/// the component, not by the check's own roots, keeps a check that depends on
/// two roots in the same shard as both of them (and as its dependants).
fn shard_keys(all: &[SweepCheck]) -> HashMap<&str, &str> {
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let index: HashMap<&str, usize> = all
        .iter()
        .enumerate()
        .map(|(i, c)| (c.step.id.as_str(), i))
        .collect();
    let mut parent: Vec<usize> = (0..all.len()).collect();
    for (i, check) in all.iter().enumerate() {
        for dep in &check.step.depends_on {
            if let Some(&j) = index.get(dep.as_str()) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut smallest: HashMap<usize, &str> = HashMap::new();
    for (i, check) in all.iter().enumerate() {
        let root = find(&mut parent, i);
        let id = check.step.id.as_str();
        smallest
            .entry(root)
            .and_modify(|s| *s = (*s).min(id))
            .or_insert(id);
    }
    all.iter()
        .enumerate()
        .map(|(i, check)| (check.step.id.as_str(), smallest[&find(&mut parent, i)]))
        .collect()
}
