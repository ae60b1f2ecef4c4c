//! Secret values: the process environment and dotenv files. The main type
//! here is [`SecretStore`]. Values live in memory only; no error message,
//! `Debug` output or log line ever contains one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::dotenv::parse_dotenv;
use super::model::{Runbook, SecretsConfig};

/// Secret values by name, for the declared names that were found.
#[derive(Clone, Default)]
pub struct SecretStore {
    values: BTreeMap<String, String>,
    required: Vec<String>,
    missing_files: Vec<String>,
}

/// Lists names only: a `{:?}` must never print a secret.
impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why secrets could not be read. Never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read env file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason} (value not shown)")]
    Malformed {
        path: String,
        line: usize,
        reason: &'static str,
    },
}

impl SecretStore {
    /// This store with `other`'s values added (`other` wins on a clash).
    pub fn merged(mut self, other: SecretStore) -> SecretStore {
        self.values.extend(other.values);
        self.required.extend(other.required);
        self.missing_files.extend(other.missing_files);
        self
    }

    /// Reads `config.env_files` (relative paths are taken from `base_dir`,
    /// the runbook's folder; later files override earlier ones), then the
    /// process environment through `env`, which wins over files. Only names
    /// declared in `config` (required or optional) are kept.
    pub fn load(
        config: &SecretsConfig,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SecretStore, SecretsError> {
        let declared: Vec<&str> = config.declared().collect();
        let mut values = BTreeMap::new();
        let mut missing_files = Vec::new();
        for file in &config.env_files {
            let path: PathBuf = base_dir.join(file);
            let shown = path.display().to_string();
            // A listed file that does not exist is not an error: operators
            // often export the secrets instead. Whatever is required and still
            // missing is reported by `missing_required`.
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    missing_files.push(shown);
                    continue;
                }
                Err(source) => {
                    return Err(SecretsError::Io {
                        path: shown,
                        source,
                    })
                }
            };
            let pairs = parse_dotenv(&text).map_err(|err| SecretsError::Malformed {
                path: shown.clone(),
                line: err.line,
                reason: err.reason,
            })?;
            for (key, value) in pairs {
                if declared.contains(&key.as_str()) {
                    values.insert(key, value);
                }
            }
        }
        for name in &declared {
            if let Some(value) = env(name) {
                values.insert(name.to_string(), value);
            }
        }
        Ok(SecretStore {
            values,
            required: config.required.clone(),
            missing_files,
        })
    }

    /// Env files that were listed but do not exist (the CLI warns about them).
    pub fn missing_files(&self) -> &[String] {
        &self.missing_files
    }

    /// [`SecretStore::load`] for a loaded runbook: env files relative to its
    /// folder, the process environment.
    pub fn for_runbook(runbook: &Runbook) -> Result<SecretStore, SecretsError> {
        let base = runbook.path.parent().unwrap_or(Path::new(""));
        SecretStore::load(&runbook.secrets, base, &|name| std::env::var(name).ok())
    }

    /// A store holding exactly `pairs` (tests, in-process demos).
    pub fn from_pairs<I, K, V>(pairs: I) -> SecretStore
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        SecretStore {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            required: Vec::new(),
            missing_files: Vec::new(),
        }
    }

    /// A secret's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `(name, value)` pairs, for the redactor.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Names that have a value.
    pub fn names(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }

    /// Required names without a value; an empty value counts as missing.
    pub fn missing_required(&self) -> Vec<String> {
        self.required
            .iter()
            .filter(|name| self.get(name).is_none_or(str::is_empty))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn write(dir: &Path, name: &str, text: &str) {
        let mut f = std::fs::File::create(dir.join(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn config(files: &[&str], required: &[&str], optional: &[&str]) -> SecretsConfig {
        SecretsConfig {
            env_files: files.iter().map(PathBuf::from).collect(),
            required: required.iter().map(|s| s.to_string()).collect(),
            optional: optional.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn files_then_environment_and_only_declared_names() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.env",
            "TOKEN=from-a\nDB=from-a\nOTHER=not-declared\n",
        );
        write(dir.path(), "b.env", "export DB='from-b'\n");
        let env = |name: &str| (name == "TOKEN").then(|| "from-env".to_string());
        let store = SecretStore::load(
            &config(&["a.env", "b.env"], &["TOKEN", "MISSING"], &["DB"]),
            dir.path(),
            &env,
        )
        .unwrap();
        assert_eq!(store.get("TOKEN"), Some("from-env"));
        assert_eq!(store.get("DB"), Some("from-b"));
        assert_eq!(store.get("OTHER"), None);
        assert_eq!(store.names(), vec!["DB".to_string(), "TOKEN".to_string()]);
        assert_eq!(store.missing_required(), vec!["MISSING".to_string()]);
        assert_eq!(store.pairs().len(), 2);
        let debug = format!("{store:?}");
        assert!(!debug.contains("from-"), "{debug}");
    }

    #[test]
    fn malformed_lines_name_the_file_and_line_but_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "bad.env", "GOOD=1\nTOKEN \"s3cr3t-canary\n");
        let err = SecretStore::load(&config(&["bad.env"], &["TOKEN"], &[]), dir.path(), &|_| {
            None
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad.env:2"), "{text}");
        assert!(!text.contains("s3cr3t-canary"), "{text}");
    }

    #[test]
    fn a_missing_file_is_named_and_the_environment_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::load(&config(&["nope.env"], &["A"], &[]), dir.path(), &|name| {
            (name == "A").then(|| "from-the-environment".to_string())
        })
        .unwrap();
        assert_eq!(store.missing_files().len(), 1);
        assert!(store.missing_files()[0].ends_with("nope.env"));
        assert_eq!(store.get("A"), Some("from-the-environment"));
        assert!(store.missing_required().is_empty());
    }

    #[test]
    fn an_unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where a file is expected: exists, but cannot be read as text.
        std::fs::create_dir(dir.path().join("dir.env")).unwrap();
        let err =
            SecretStore::load(&config(&["dir.env"], &[], &[]), dir.path(), &|_| None).unwrap_err();
        assert!(matches!(err, SecretsError::Io { .. }));
        assert!(err.to_string().contains("dir.env"), "{err}");
    }

    #[test]
    fn empty_required_values_count_as_missing() {
        let store = SecretStore::load(&config(&[], &["A"], &[]), Path::new(""), &|_| {
            Some(String::new())
        })
        .unwrap();
        assert_eq!(store.missing_required(), vec!["A".to_string()]);
    }
}
