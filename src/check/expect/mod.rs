//! The assertion language of `expect`: wherever an expected value is written
//! it is a literal (equality) or a predicate table ([`predicate`]), checked by
//! [`eval`] against values that [`path`] selects from JSON; [`capture`] is the
//! one grammar of `capture` entries.

pub mod capture;
pub mod condition;
pub mod eval;
pub mod path;
pub mod predicate;
pub mod raw;
mod schema;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_spanned::Spanned;

pub use eval::{Actual, Failure};
pub use path::Path;
pub use predicate::{Expected, Predicate, Problem};

use crate::core::template::{Scope, Template};

/// A text an expectation compares with (`body_contains =
/// "{{steps.create.id}}"`), rendered for one attempt.
#[derive(Debug, Clone)]
pub struct Operand {
    pub value: String,
    /// How a failure message shows it: the value, with secrets kept as
    /// `{{secret:NAME}}`.
    pub shown: String,
}

impl Operand {
    /// The operand's value; the error names the key (`expect.body_contains:
    /// no value for {{steps.create.id}}`).
    pub fn render(key: &str, template: &Template, scope: &dyn Scope) -> Result<Operand, String> {
        let value = template
            .render(scope)
            .map_err(|err| format!("`{key}`: {err}"))?;
        let shown = if template.references().next().is_none() {
            value.clone()
        } else {
            template.render_masked(scope)
        };
        Ok(Operand { value, shown })
    }

    /// A regex operand, compiled after rendering; the error says which key
    /// and why (a template can render to an invalid pattern).
    pub fn regex(
        key: &str,
        template: &Template,
        scope: &dyn Scope,
    ) -> Result<(regex::Regex, String), String> {
        let operand = Operand::render(key, template, scope)?;
        regex::Regex::new(&operand.value)
            .map(|re| (re, operand.shown.clone()))
            .map_err(|err| format!("invalid regex in `{key}` /{}/: {err}", operand.shown))
    }
}

/// `Some(problem)` when a key that compares its text as written holds a
/// placeholder (it would never be rendered).
pub fn template_refused(key: &str, text: &str) -> Option<String> {
    Template::parse(text)
        .is_ok_and(|t| t.references().next().is_some())
        .then(|| format!("`{key}` cannot take a template (`{text}` would be compared as written)"))
}

/// A regex written without placeholders is checked when the file is loaded;
/// one with placeholders when it is rendered.
pub fn literal_regex_problem(key: &str, template: &Template) -> Option<String> {
    if template.references().next().is_some() {
        return None;
    }
    regex::Regex::new(template.raw())
        .err()
        .map(|err| format!("invalid regex in {key}: {err}"))
}

impl Expected {
    /// Checks the expectation against `actual`; the message starts with `label`.
    pub fn check(&self, label: &str, actual: &Actual<'_>, scope: &dyn Scope) -> Result<(), String> {
        match self.predicate() {
            Some(predicate) => eval::check(predicate, actual, scope).map_err(|f| {
                // The label names what was checked (a path, a condition's
                // template) and stays as written; the rest gets values.
                let message = f.message(label);
                match message.strip_prefix(label) {
                    Some(rest) => format!("{label}{}", with_values(rest.to_string(), scope)),
                    None => with_values(message, scope),
                }
            }),
            None => Err(format!("{label}: the expectation is invalid")),
        }
    }
}

/// A failure message with the values its template operands had: the
/// comparison used `1`, so the reason says `1`, not `{{account_id}}`.
/// Secrets stay `{{secret:NAME}}`; a captured secret's value is registered
/// with the journal's redactor before any reason holding it is written.
fn with_values(message: String, scope: &dyn Scope) -> String {
    if !message.contains("{{") {
        return message;
    }
    match crate::core::template::Template::parse(&message) {
        Ok(template) => template.render_masked(scope),
        Err(_) => message,
    }
}

/// `json = { PATH = EXPECTED, ... }`: expectations on paths of a JSON
/// document, checked in the order the TOML reader gives (by path).
#[derive(Debug, Clone, Default)]
pub struct JsonExpect {
    entries: Vec<JsonEntry>,
}

#[derive(Debug, Clone)]
struct JsonEntry {
    key: Spanned<String>,
    path: Result<Path, String>,
    expected: Expected,
}

impl JsonExpect {
    /// Whether there is no expectation.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Load-time problems: invalid paths and predicates, with spans.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for entry in &self.entries {
            if let Err(err) = &entry.path {
                out.push(Problem {
                    message: err.clone(),
                    span: entry.key.span(),
                    help: None,
                });
            }
            out.extend(entry.expected.problems());
        }
        out
    }

    /// Every unmet expectation's message; `prefix` names the document
    /// (`JSON`, `stdout JSON`).
    pub fn unmet(&self, prefix: &str, doc: &Value, scope: &dyn Scope) -> Vec<String> {
        let mut failures = Vec::new();
        for entry in &self.entries {
            let label = format!("{prefix} {}", entry.key.get_ref());
            let Ok(path) = &entry.path else {
                failures.push(format!("{label}: the path is invalid"));
                continue;
            };
            let actual = Actual::selection(path.select(doc));
            if let Err(message) = entry.expected.check(&label, &actual, scope) {
                failures.push(message);
            }
        }
        failures
    }
}

impl<'de> Deserialize<'de> for JsonExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = JsonExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of JSON paths and expected values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonExpect, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let expected = map.next_value::<Expected>()?;
                    let path = Path::parse(key.get_ref());
                    if let Err(err) = &path {
                        report(&[Problem {
                            message: err.clone(),
                            span: key.span(),
                            help: None,
                        }]);
                    }
                    // Kept with the check: the file's span, not its section's.
                    let span = crate::core::template::file_span(key.span());
                    entries.push(JsonEntry {
                        path,
                        key: Spanned::new(span, key.into_inner()),
                        expected,
                    });
                }
                Ok(JsonExpect { entries })
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// `status`: a code, a list of codes (any of them), or a predicate table.
#[derive(Debug, Clone)]
pub struct StatusExpect {
    expected: Expected,
    /// Written as a code or a list of codes: messages keep the short form
    /// `HTTP 500, want 200 or 201`.
    literal: Option<Vec<i64>>,
    problems: Vec<Problem>,
}

impl StatusExpect {
    /// Whether `status` meets the expectation.
    pub fn accepts(&self, status: u16, scope: &dyn Scope) -> bool {
        self.unmet(status, scope).is_none()
    }

    /// Why `status` does not meet the expectation, if it does not.
    pub fn unmet(&self, status: u16, scope: &dyn Scope) -> Option<String> {
        if let Some(codes) = &self.literal {
            if codes.contains(&i64::from(status)) {
                return None;
            }
            let wanted: Vec<String> = codes.iter().map(i64::to_string).collect();
            return Some(format!("HTTP {status}, want {}", wanted.join(" or ")));
        }
        let actual = Actual::owned(Some(Value::from(status)));
        self.expected.check("HTTP status", &actual, scope).err()
    }

    /// Load-time problems, with spans.
    pub fn problems(&self) -> Vec<Problem> {
        self.problems
            .iter()
            .cloned()
            .chain(self.expected.problems())
            .collect()
    }
}

impl StatusExpect {
    /// `status = code` written at `span` (of the text being read, see
    /// [`crate::core::template::with_span_offset`]): what deserializing it
    /// gives, for readers that take plain sections without toml's tree.
    pub fn code(code: i64, span: std::ops::Range<usize>) -> Self {
        StatusExpect::from_node(Spanned::new(span, raw::RawValue::Integer(code)))
    }

    /// The expectation `node` states; its problems are reported (see
    /// `collect_problems`) and kept.
    fn from_node(node: Spanned<raw::RawValue>) -> Self {
        use raw::RawValue;
        let mut problems = Vec::new();
        let code = |item: &Spanned<RawValue>, problems: &mut Vec<Problem>| match item.get_ref() {
            RawValue::Integer(code) if (100..=999).contains(code) => Some(*code),
            _ => {
                problems.push(Problem {
                    message: format!(
                        "`status` takes an HTTP status code (an integer from 100 to 999), a list of them or a predicate table, not {}",
                        predicate::to_json(item.get_ref())
                    ),
                    span: item.span(),
                    help: None,
                });
                None
            }
        };
        let literal = match node.get_ref() {
            RawValue::Table(_) => None,
            RawValue::Array(items) => Some(
                items
                    .iter()
                    .filter_map(|item| code(item, &mut problems))
                    .collect(),
            ),
            _ => code(&node, &mut problems).map(|c| vec![c]),
        };
        let expected = Expected::from_node(&node);
        report(&problems);
        report(&expected.problems());
        StatusExpect {
            expected,
            literal,
            problems,
        }
    }
}

impl<'de> Deserialize<'de> for StatusExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let node = Spanned::<raw::RawValue>::deserialize(deserializer)?;
        Ok(StatusExpect::from_node(node))
    }
}

/// A scope with no values: for expectations without placeholders.
pub struct NoScope;

impl Scope for NoScope {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn secret(&self, _: &str) -> Option<String> {
        None
    }
    fn env(&self, _: &str) -> Option<String> {
        None
    }
    fn capture(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

thread_local! {
    /// Problems found while a step is deserialized: expectations and
    /// captures never fail deserialization (that would lose their inner
    /// spans and hide the step's other errors); they report here instead.
    static PROBLEMS: RefCell<Option<Vec<Problem>>> = const { RefCell::new(None) };
}

/// Runs `f` (a deserialization) and returns every problem it reported.
pub fn collect_problems<T>(f: impl FnOnce() -> T) -> (T, Vec<Problem>) {
    let previous = PROBLEMS.with(|c| c.borrow_mut().replace(Vec::new()));
    let value = f();
    let collected = PROBLEMS.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
    (value, collected.unwrap_or_default())
}

/// Reports load-time problems to the running [`collect_problems`], if any.
pub(crate) fn report(problems: &[Problem]) {
    PROBLEMS.with(|c| {
        if let Some(seen) = c.borrow_mut().as_mut() {
            seen.extend(problems.iter().cloned());
        }
    });
}
