//! Secret values: the process environment and dotenv files. Values live in
//! memory only. STUB.

use std::collections::BTreeMap;

/// Secret values by name, for the declared names that were found.
#[derive(Debug, Clone, Default)]
pub struct SecretStore {
    values: BTreeMap<String, String>,
}

impl SecretStore {
    /// A secret's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `(name, value)` pairs, for the redactor.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
