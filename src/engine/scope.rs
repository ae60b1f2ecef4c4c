//! Template values while a run executes: vars, secrets, environment and the
//! values captured by steps that already passed.

use std::collections::{BTreeMap, HashMap};

use crate::core::template::Scope;
use crate::runbook::SecretStore;

/// The [`Scope`] of one run.
pub struct RunScope<'a> {
    vars: &'a BTreeMap<String, String>,
    secrets: &'a SecretStore,
    captures: HashMap<(String, String), String>,
}

impl<'a> RunScope<'a> {
    /// A scope with no captures yet.
    pub fn new(vars: &'a BTreeMap<String, String>, secrets: &'a SecretStore) -> Self {
        RunScope {
            vars,
            secrets,
            captures: HashMap::new(),
        }
    }

    /// Records a value captured by `step`.
    pub fn record_capture(&mut self, step: &str, name: &str, value: String) {
        self.captures
            .insert((step.to_string(), name.to_string()), value);
    }
}

impl Scope for RunScope<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).map(str::to_string)
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn capture(&self, step: &str, name: &str) -> Option<String> {
        self.captures
            .get(&(step.to_string(), name.to_string()))
            .cloned()
    }
}
