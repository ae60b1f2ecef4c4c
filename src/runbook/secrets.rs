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

/// Why `value` looks like a placeholder rather than a real secret, if it
/// does. Case-insensitive; the reason names the rule that matched.
pub fn placeholder_reason(value: &str) -> Option<&'static str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Some("it is empty");
    }
    let lower = trimmed.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next()?;
    if chars.all(|c| c == first) {
        return Some("every character is the same");
    }
    if lower.starts_with('<') && lower.ends_with('>') {
        return Some("it is a `<...>` placeholder");
    }
    if lower.starts_with("${") && lower.ends_with('}') {
        return Some("it is an unexpanded `${...}` reference");
    }
    if lower.starts_with("{{") && lower.ends_with("}}") {
        return Some("it is an unexpanded `{{...}}` template");
    }
    // Separators vary (`change-me`, `CHANGE_ME`, `change me`): compare without them.
    let squashed: String = lower
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    if ["changeme", "changethis", "replaceme"]
        .iter()
        .any(|w| squashed.contains(w))
    {
        return Some("it contains `changeme`-style filler");
    }
    if squashed.contains("placeholder") {
        return Some("it contains `placeholder`");
    }
    if squashed.contains("example") {
        return Some("it contains `example`");
    }
    if lower.starts_with("xxx")
        || lower.ends_with("xxx")
        || (lower.contains('x')
            && lower
                .chars()
                .all(|c| c == 'x' || !c.is_ascii_alphanumeric()))
    {
        return Some("it is `xxx` filler");
    }
    if lower.starts_with("your-") || lower.starts_with("your_") || lower.starts_with("your ") {
        return Some("it reads like an instruction (`your-...`), not a value");
    }
    if lower.ends_with("_here") || lower.ends_with("-here") || lower.ends_with(" here") {
        return Some("it reads like an instruction (`..._here`), not a value");
    }
    let word_start = |word: &str| {
        lower
            .strip_prefix(word)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
    };
    if ["todo", "tbd", "fixme", "tba"]
        .iter()
        .any(|w| word_start(w))
    {
        return Some("it is a to-do marker (`TODO`, `TBD`, `FIXME`)");
    }
    const DUMMIES: &[&str] = &[
        "secret",
        "password",
        "passw0rd",
        "pass",
        "dummy",
        "test",
        "testing",
        "sample",
        "fake",
        "none",
        "null",
        "nil",
        "undefined",
        "empty",
        "default",
        "redacted",
        "token",
        "apikey",
        "key",
        "insertkey",
        "setme",
        "123",
        "1234",
        "12345",
        "123456",
        "12345678",
        "abc",
        "abc123",
        "qwerty",
        "letmein",
        "admin",
        "foo",
        "bar",
        "foobar",
        "demo",
    ];
    if DUMMIES.contains(&squashed.as_str()) {
        return Some("it is a common dummy value (`secret`, `password`, `test`, `dummy`, ...)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn placeholders_are_recognised_with_the_rule_that_matched() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("aaaaaaaa", "same"),
            ("********", "same"),
            ("<your token>", "`<...>`"),
            ("${FLY_API_TOKEN}", "`${...}`"),
            ("{{secret:X}}", "`{{...}}`"),
            ("changeme", "changeme"),
            ("Change-Me", "changeme"),
            ("CHANGE_ME_PLEASE", "changeme"),
            ("replace_me", "changeme"),
            ("PLACEHOLDER", "placeholder"),
            ("sk-example-123", "example"),
            ("xxx", "same"),
            ("xxxx-xxxx-xxxx", "xxx"),
            ("sk_live_xxx", "xxx"),
            ("your-api-token", "instruction"),
            ("put_token_here", "instruction"),
            ("TODO", "to-do"),
            ("todo: fill in", "to-do"),
            ("TBD", "to-do"),
            ("secret", "dummy"),
            ("Password", "dummy"),
            ("dummy", "dummy"),
            ("test", "dummy"),
            ("123456", "dummy"),
        ];
        for (value, rule) in cases {
            let reason =
                placeholder_reason(value).unwrap_or_else(|| panic!("{value:?} not flagged"));
            assert!(reason.contains(rule), "{value:?}: {reason}");
        }
    }

    #[test]
    fn real_looking_values_pass() {
        for value in [
            "fo1_8pQ2xR7vNmL0aZ3kYw9bTcHs",
            "sk_live_51HxYz2eZvKYlo2C",
            "postgres://app:Zx81qPl0@db.internal:5432/app",
            "todoist-3f9a8b7c", // starts with "todo" but is one word
            "testosterone-9f8e7d",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        ] {
            assert_eq!(placeholder_reason(value), None, "{value}");
        }
    }

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
