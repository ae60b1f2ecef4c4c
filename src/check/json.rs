//! JSON in checks: paths into response bodies (`data.items[0].id`) for
//! expectations and captures, and request bodies written as TOML tables whose
//! strings may hold placeholders.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::core::template::{RenderError, Scope, Template};

/// Looks up `path` in `root`. Paths are dot-separated keys with array
/// indexes as `[0]` or `.0`; a leading `$.` is allowed.
pub fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let path = path.strip_prefix("$.").unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut current = root;
    for segment in split_path(path) {
        current = match current {
            Value::Object(map) => map.get(&segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn split_path(path: &str) -> Vec<String> {
    let normalized = path.replace('[', ".").replace(']', "");
    normalized
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether a JSON value equals a value written in TOML (numbers compare by
/// value, so `3` matches `3.0`).
pub fn matches_toml(actual: &Value, expected: &toml::Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), toml::Value::Integer(e)) => a.as_f64() == Some(*e as f64),
        (Value::Number(a), toml::Value::Float(e)) => a.as_f64() == Some(*e),
        (Value::String(a), toml::Value::String(e)) => a == e,
        (Value::Bool(a), toml::Value::Boolean(e)) => a == e,
        (Value::Array(a), toml::Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(a, e)| matches_toml(a, e))
        }
        (Value::Object(a), toml::Value::Table(e)) => {
            a.len() == e.len()
                && e.iter()
                    .all(|(k, e)| a.get(k).is_some_and(|a| matches_toml(a, e)))
        }
        _ => false,
    }
}

/// Renders a JSON value compactly for messages, cut to a readable length.
pub fn short(value: &Value) -> String {
    crate::core::cut::cut(&value.to_string(), 80)
}

/// A JSON request body whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    Null,
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(Template),
    Array(Vec<JsonTemplate>),
    Object(BTreeMap<String, JsonTemplate>),
}

impl JsonTemplate {
    fn from_toml(value: toml::Value, span: &std::ops::Range<usize>) -> Result<Self, String> {
        Ok(match value {
            toml::Value::String(s) => JsonTemplate::String(Template::parse_at(&s, span.clone())?),
            toml::Value::Integer(i) => JsonTemplate::Integer(i),
            toml::Value::Float(f) => JsonTemplate::Float(f),
            toml::Value::Boolean(b) => JsonTemplate::Bool(b),
            toml::Value::Datetime(d) => JsonTemplate::String(Template::literal(d.to_string())),
            toml::Value::Array(items) => JsonTemplate::Array(
                items
                    .into_iter()
                    .map(|v| JsonTemplate::from_toml(v, span))
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(table) => JsonTemplate::Object(
                table
                    .into_iter()
                    .map(|(k, v)| Ok((k, JsonTemplate::from_toml(v, span)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    /// Expands every string's placeholders; values are JSON-escaped by
    /// construction, so a secret with quotes cannot break the body.
    pub fn render(&self, scope: &dyn Scope) -> Result<Value, RenderError> {
        Ok(match self {
            JsonTemplate::Null => Value::Null,
            JsonTemplate::Bool(b) => Value::Bool(*b),
            JsonTemplate::Integer(i) => Value::from(*i),
            JsonTemplate::Float(f) => Value::from(*f),
            JsonTemplate::String(t) => Value::String(t.render(scope)?),
            JsonTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTemplate::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(scope)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
        })
    }

    /// The body as written, placeholders unexpanded (what evidence records).
    pub fn raw(&self) -> Value {
        match self {
            JsonTemplate::Null => Value::Null,
            JsonTemplate::Bool(b) => Value::Bool(*b),
            JsonTemplate::Integer(i) => Value::from(*i),
            JsonTemplate::Float(f) => Value::from(*f),
            JsonTemplate::String(t) => Value::String(t.raw().to_string()),
            JsonTemplate::Array(items) => {
                Value::Array(items.iter().map(JsonTemplate::raw).collect())
            }
            JsonTemplate::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.raw())).collect())
            }
        }
    }
}

impl schemars::JsonSchema for JsonTemplate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JsonBody".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A JSON body written as TOML; strings may hold placeholders."
        })
    }
}

impl<'de> Deserialize<'de> for JsonTemplate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_spanned::Spanned::<toml::Value>::deserialize(deserializer)?;
        let span = spanned.span();
        JsonTemplate::from_toml(spanned.into_inner(), &span).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_objects_and_arrays() {
        let doc = json!({"data": {"items": [{"id": 7}, {"id": 9}]}, "ok": true});
        assert_eq!(lookup(&doc, "data.items[1].id"), Some(&json!(9)));
        assert_eq!(lookup(&doc, "$.data.items.0.id"), Some(&json!(7)));
        assert_eq!(lookup(&doc, "ok"), Some(&json!(true)));
        assert_eq!(lookup(&doc, "data.items[5].id"), None);
        assert_eq!(lookup(&doc, "data.missing"), None);
    }

    #[test]
    fn toml_values_compare_by_value() {
        assert!(matches_toml(&json!(3), &toml::Value::Integer(3)));
        assert!(matches_toml(&json!(3.0), &toml::Value::Integer(3)));
        assert!(matches_toml(
            &json!("ok"),
            &toml::Value::String("ok".into())
        ));
        assert!(!matches_toml(&json!("3"), &toml::Value::Integer(3)));
    }
}
