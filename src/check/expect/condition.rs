//! `when`: a step runs only when its conditions hold. Each key is a template
//! (a var or a captured value, `"{{steps.queue.depth}}"`), each value a
//! literal or a predicate table, as everywhere in `expect`.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{Actual, Expected};
use crate::core::template::{Scope, Template};

/// `when = { "{{steps.queue.depth}}" = { gt = 100 }, "{{env_name}}" = "staging" }`.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    entries: Vec<(Template, Expected)>,
}

impl Conditions {
    /// Whether there is no condition.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Why the step must not run, when a condition does not hold (or cannot
    /// be evaluated, e.g. its captured value does not exist).
    pub fn unmet(&self, scope: &dyn Scope) -> Option<String> {
        for (key, expected) in &self.entries {
            let label = format!("condition {}", key.raw());
            let text = match key.render(scope) {
                Ok(text) => text,
                Err(err) => return Some(format!("{label} cannot be evaluated: {err}")),
            };
            // `"12"` compares as the number 12, `"true"` as a boolean:
            // rendered templates are text, conditions are about values.
            let value = serde_json::from_str::<Value>(text.trim())
                .ok()
                .filter(|v| v.is_number() || v.is_boolean() || v.is_null())
                .unwrap_or(Value::String(text));
            if let Err(message) = expected.check(&label, &Actual::owned(Some(value)), scope) {
                return Some(message);
            }
        }
        None
    }
}

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionsVisitor;
        impl<'de> Visitor<'de> for ConditionsVisitor {
            type Value = Conditions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of templates and expected values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Conditions, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Template>()? {
                    let expected = map.next_value::<Expected>()?;
                    entries.push((key, expected));
                }
                Ok(Conditions { entries })
            }
        }
        deserializer.deserialize_map(ConditionsVisitor)
    }
}
