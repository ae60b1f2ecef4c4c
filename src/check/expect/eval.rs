//! Checking a [`Predicate`] against what a check observed, with messages that
//! state the path, the actual value and the expectation:
//! `JSON $.count: actual 3, expected > 5`.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::path::Selection;
use super::predicate::{Operand, Predicate, TextOp};
use crate::check::json::short;
use crate::core::template::Scope;

/// What an expectation is checked against.
#[derive(Debug, Clone)]
pub struct Actual<'v> {
    /// `None`: nothing is there (a missing path or header).
    value: Option<Cow<'v, Value>>,
    /// For a list path: each selected value with its location.
    elements: Option<Vec<(String, &'v Value)>>,
}

impl<'v> Actual<'v> {
    /// One value, or nothing.
    pub fn one(value: Option<&'v Value>) -> Self {
        Actual {
            value: value.map(Cow::Borrowed),
            elements: None,
        }
    }

    /// An owned value (a status code, a header).
    pub fn owned(value: Option<Value>) -> Self {
        Actual {
            value: value.map(Cow::Owned),
            elements: None,
        }
    }

    /// What a path selected.
    pub fn selection(selection: Selection<'v>) -> Self {
        match selection {
            Selection::One(value) => Actual::one(value),
            Selection::Many(nodes) => Actual {
                value: Some(Cow::Owned(Value::Array(
                    nodes.iter().map(|(_, v)| (*v).clone()).collect(),
                ))),
                elements: Some(nodes),
            },
        }
    }
}

/// Why an expectation does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The element of a list that failed (`$['items'][2]['id']`, `[2]`).
    pub element: Option<String>,
    pub actual: String,
    pub expected: String,
}

impl Failure {
    /// The whole message, prefixed with what was checked (`JSON $.count`).
    pub fn message(&self, label: &str) -> String {
        match &self.element {
            Some(element) => format!(
                "{label}: element {element}: actual {}, expected {}",
                self.actual, self.expected
            ),
            None => format!(
                "{label}: actual {}, expected {}",
                self.actual, self.expected
            ),
        }
    }
}

/// Checks `predicate` against `actual`; operands' placeholders come from `scope`.
pub fn check(predicate: &Predicate, actual: &Actual<'_>, scope: &dyn Scope) -> Result<(), Failure> {
    let fail = |actual_text: String| Failure {
        element: None,
        actual: actual_text,
        expected: predicate.to_string(),
    };
    match predicate {
        Predicate::And(parts) => {
            for part in parts {
                check(part, actual, scope)?;
            }
            return Ok(());
        }
        Predicate::Exists(want) => {
            let present =
                actual.value.is_some() && actual.elements.as_ref().is_none_or(|e| !e.is_empty());
            return if present == *want {
                Ok(())
            } else {
                Err(fail(describe(actual)))
            };
        }
        Predicate::Not(inner) => {
            return match check(inner, actual, scope) {
                Ok(()) => Err(fail(describe(actual))),
                Err(_) => Ok(()),
            };
        }
        _ => {}
    }
    let Some(value) = actual.value.as_deref() else {
        return Err(fail("absent".to_string()));
    };
    let ok = match predicate {
        Predicate::Eq(operand) => json_eq(value, &resolve(operand, value, scope)?),
        Predicate::Ne(operand) => !json_eq(value, &resolve(operand, value, scope)?),
        Predicate::Compare(order, operand) => {
            let wanted = resolve(operand, value, scope)?;
            match compare(value, &wanted) {
                Some(ordering) => order.holds(ordering),
                None => {
                    return Err(fail(format!("{} ({})", short(value), type_name(value))));
                }
            }
        }
        Predicate::Contains(operand) => {
            let wanted = resolve(operand, value, scope)?;
            match (value, &wanted) {
                (Value::String(s), Value::String(w)) => s.contains(w.as_str()),
                (Value::Array(items), w) => items.iter().any(|i| json_eq(i, w)),
                (Value::Object(map), Value::String(w)) => map.contains_key(w),
                _ => return Err(fail(format!("{} ({})", short(value), type_name(value)))),
            }
        }
        Predicate::Text(op, operand) => {
            let wanted = resolve(operand, value, scope)?;
            match (value, &wanted) {
                (Value::String(s), Value::String(w)) => match op {
                    TextOp::StartsWith => s.starts_with(w.as_str()),
                    TextOp::EndsWith => s.ends_with(w.as_str()),
                },
                _ => return Err(fail(format!("{} ({})", short(value), type_name(value)))),
            }
        }
        Predicate::Matches(re) => match value {
            Value::String(s) => re.is_match(s),
            Value::Number(_) | Value::Bool(_) => re.is_match(&value.to_string()),
            _ => return Err(fail(format!("{} ({})", short(value), type_name(value)))),
        },
        Predicate::Empty(want) => match value {
            Value::String(s) => s.is_empty() == *want,
            Value::Array(a) => a.is_empty() == *want,
            Value::Object(o) => o.is_empty() == *want,
            _ => return Err(fail(format!("{} ({})", short(value), type_name(value)))),
        },
        Predicate::Type(t) => {
            if has_type(value, t) {
                true
            } else {
                return Err(fail(format!("{} ({})", short(value), type_name(value))));
            }
        }
        Predicate::Len(inner) => {
            let Some(len) = length(value) else {
                return Err(fail(format!(
                    "{} ({}, which has no length)",
                    short(value),
                    type_name(value)
                )));
            };
            if check(inner, &Actual::owned(Some(Value::from(len))), scope).is_err() {
                return Err(fail(format!("length {len} ({})", short(value))));
            }
            true
        }
        Predicate::AnyOf(options) => {
            let mut any = false;
            for option in options {
                if json_eq(value, &resolve(option, value, scope)?) {
                    any = true;
                    break;
                }
            }
            any
        }
        Predicate::All(inner) => {
            let Some(elements) = elements(actual, value) else {
                return Err(fail(format!(
                    "{} ({}, not a list)",
                    short(value),
                    type_name(value)
                )));
            };
            for (location, element) in elements {
                if let Err(failure) = check(inner, &Actual::one(Some(element)), scope) {
                    return Err(Failure {
                        element: Some(
                            failure
                                .element
                                .map_or(location.clone(), |inner| format!("{location} {inner}")),
                        ),
                        ..failure
                    });
                }
            }
            true
        }
        Predicate::Any(inner) => {
            let Some(elements) = elements(actual, value) else {
                return Err(fail(format!(
                    "{} ({}, not a list)",
                    short(value),
                    type_name(value)
                )));
            };
            elements
                .iter()
                .any(|(_, e)| check(inner, &Actual::one(Some(e)), scope).is_ok())
        }
        Predicate::And(_) | Predicate::Exists(_) | Predicate::Not(_) => unreachable!("above"),
    };
    if ok {
        Ok(())
    } else {
        Err(fail(short(value)))
    }
}

/// The actual value in words, `absent` when there is none.
fn describe(actual: &Actual<'_>) -> String {
    match actual.value.as_deref() {
        None => "absent".to_string(),
        Some(value) => short(value),
    }
}

/// The elements of a list selection (with their locations), or of an array.
fn elements<'a>(actual: &'a Actual<'_>, value: &'a Value) -> Option<Vec<(String, &'a Value)>> {
    if let Some(elements) = &actual.elements {
        return Some(elements.iter().map(|(l, v)| (l.clone(), *v)).collect());
    }
    match value {
        Value::Array(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("[{i}]"), v))
                .collect(),
        ),
        _ => None,
    }
}

/// An operand's value. A template renders to text; compared with a number,
/// boolean or null, text that parses as JSON is taken as that value, so
/// `id = "{{steps.create.id}}"` matches the number 42.
fn resolve(operand: &Operand, actual: &Value, scope: &dyn Scope) -> Result<Value, Failure> {
    match operand {
        Operand::Literal(value) => Ok(value.clone()),
        Operand::Template(template) => {
            let text = template.render(scope).map_err(|err| Failure {
                element: None,
                actual: short(actual),
                expected: format!("a value for {}", err),
            })?;
            if !actual.is_string() {
                if let Ok(parsed) = serde_json::from_str::<Value>(&text) {
                    if !parsed.is_string() {
                        return Ok(parsed);
                    }
                }
            }
            Ok(Value::String(text))
        }
    }
}

/// Equality of JSON values; numbers compare by value (`3` equals `3.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Numbers by value, strings in byte order (which is time order for RFC 3339
/// timestamps written alike); anything else cannot be ordered.
fn compare(actual: &Value, wanted: &Value) -> Option<Ordering> {
    match (actual, wanted) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
        },
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

fn length(value: &Value) -> Option<usize> {
    match value {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// A value's JSON type, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
