//! `http`: one request; status, headers, body, JSON and latency expectations;
//! captures from the JSON body for later steps.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Observation, ProbeContext};
use crate::runbook::duration::HumanDuration;
use crate::runbook::template::Template;

/// `check = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: Template,
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// A text body.
    #[serde(default)]
    pub body: Option<Template>,
    /// A JSON body, written as a TOML table; strings may hold placeholders.
    #[serde(default)]
    pub json: Option<toml::Value>,
    /// TLS certificate verification; turning it off is recorded in evidence.
    #[serde(default = "default_true")]
    pub verify_tls: bool,
    #[serde(default)]
    pub expect: HttpExpect,
    /// `name = "json.path"`: values for `{{steps.<id>.<name>}}`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

fn default_method() -> String {
    "GET".to_string()
}

fn default_true() -> bool {
    true
}

/// `expect` for `http`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// One status or a list (default: any 2xx).
    #[serde(default)]
    pub status: Option<OneOrMany<u16>>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub body_regex: Option<String>,
    /// JSON path → expected value.
    #[serde(default)]
    pub json: BTreeMap<String, toml::Value>,
    /// JSON paths that must exist.
    #[serde(default)]
    pub json_exists: Vec<String>,
    /// Header name → expected value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Header names that must be present.
    #[serde(default)]
    pub headers_present: Vec<String>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

/// A value or a list of values: `status = 200` or `status = [200, 202]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: PartialEq> OneOrMany<T> {
    /// Whether `value` is the one or among the many.
    pub fn contains(&self, value: &T) -> bool {
        match self {
            OneOrMany::One(one) => one == value,
            OneOrMany::Many(many) => many.contains(value),
        }
    }
}

impl HttpCheck {
    pub(super) fn target(&self) -> String {
        format!("{} {}", self.method, self.url.raw())
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        Vec::new()
    }

    pub(super) async fn probe(&self, _ctx: &ProbeContext<'_>) -> Observation {
        Observation::fail("not implemented yet")
    }
}
