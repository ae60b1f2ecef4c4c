//! Secret values: the process environment and dotenv files. Values live in
//! memory only. STUB.

use std::collections::BTreeMap;

/// Secret values by name, for the declared names that were found.
#[derive(Debug, Clone, Default)]
pub struct SecretStore {
    values: BTreeMap<String, String>,
}

/// Why secrets could not be read. STUB.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretsError(String);

impl SecretStore {
    /// Reads the declared secrets. STUB: environment only.
    pub fn load(
        config: &super::model::SecretsConfig,
        _base_dir: &std::path::Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SecretStore, SecretsError> {
        let values = config
            .declared()
            .filter_map(|name| env(name).map(|v| (name.to_string(), v)))
            .collect();
        Ok(SecretStore { values })
    }

    /// This store with `other`'s values added (`other` wins on a clash).
    pub fn merged(mut self, other: SecretStore) -> SecretStore {
        self.values.extend(other.values);
        self
    }

    /// Required secrets that were not found.
    pub fn missing_required(&self) -> Vec<String> {
        Vec::new()
    }

    /// A secret's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `(name, value)` pairs, for the redactor.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Why a value looks like a placeholder rather than a real secret. STUB.
pub fn placeholder_reason(value: &str) -> Option<&'static str> {
    let lower = value.to_lowercase();
    if ["changeme", "todo", "placeholder"].contains(&lower.as_str()) {
        return Some("a well-known placeholder word");
    }
    None
}
