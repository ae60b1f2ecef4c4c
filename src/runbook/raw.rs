//! The spanned TOML tree (`toml::de::DeTable`) and how pieces of it are
//! deserialized so that *every* problem becomes a [`Diagnostic`] with a span.
//!
//! serde stops at the first error. [`deserialize_collecting`] keeps going: it
//! reports the error, removes the offending key from its copy of the tree and
//! tries again, so that three misspelt keys in one table give three errors.

use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use crate::core::diagnostics::{did_you_mean, Diagnostic};
use crate::core::template::{collect_templates, Template};

/// A value of the parsed document with its byte span.
pub(crate) type Node<'i> = Spanned<DeValue<'i>>;

/// The table inside a node, if it is one.
pub(crate) fn as_table<'a, 'i>(node: &'a Node<'i>) -> Option<&'a DeTable<'i>> {
    node.get_ref().as_table()
}

/// `[[x]]` headers (or an inline list of tables, which means the same).
pub(crate) fn is_list_of_tables(array: &toml::de::DeArray<'_>) -> bool {
    !array.is_empty() && array.iter().all(|item| item.get_ref().is_table())
}

/// Where a table sits, for messages: `step `health``, `[runbook]`.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// e.g. "step `health`" or "[defaults]".
    pub label: String,
    /// Where "missing key" errors of the table itself point.
    pub anchor: Range<usize>,
    /// Keys handled outside the deserialized type, offered as suggestions too
    /// (a step's common keys when its kind's part is deserialized).
    pub extra_keys: &'static [&'static str],
}

impl Place {
    fn describe(&self, path: &[String]) -> String {
        if path.is_empty() {
            self.label.clone()
        } else {
            format!("`{}` of {}", path.join("."), self.label)
        }
    }
}

/// Deserializes `node` with `deserialize`, reporting every problem it can
/// find into `diagnostics`. Returns the value and the templates it contains
/// only when there was no problem at all.
pub(crate) fn deserialize_collecting<'i, T>(
    node: Node<'i>,
    place: &Place,
    diagnostics: &mut Vec<Diagnostic>,
    deserialize: impl Fn(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
) -> Option<(T, Vec<Template>)> {
    // Expectations and captures report their problems (with exact spans)
    // aside; those of the last round are the ones still in the table.
    let mut problems = Vec::new();
    let result = collecting_rounds(node, place, diagnostics, &mut problems, deserialize);
    diagnostics.extend(
        problems
            .into_iter()
            .map(|p| Diagnostic::new(p.message, p.span).with_optional_help(p.help)),
    );
    result
}

/// [`deserialize_collecting`] for a node the caller can build again: the
/// first round consumes `node` (no copy of the tree), and only when it finds
/// a problem is `rebuild` called, for the rounds that report every problem.
/// A sweep parses each of its checks this way, twice.
pub(crate) fn deserialize_collecting_rebuilt<'i, T>(
    node: Node<'i>,
    rebuild: impl FnOnce() -> Node<'i>,
    place: &Place,
    diagnostics: &mut Vec<Diagnostic>,
    deserialize: impl Fn(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
) -> Option<(T, Vec<Template>)> {
    let ((result, templates), problems) = crate::check::expect::collect_problems(|| {
        collect_templates(|| deserialize(ValueDeserializer::from(node)))
    });
    match result {
        Ok(value) if problems.is_empty() => Some((value, templates)),
        _ => deserialize_collecting(rebuild(), place, diagnostics, deserialize),
    }
}

fn collecting_rounds<'i, T>(
    node: Node<'i>,
    place: &Place,
    diagnostics: &mut Vec<Diagnostic>,
    problems: &mut Vec<crate::check::expect::Problem>,
    deserialize: impl Fn(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
) -> Option<(T, Vec<Template>)> {
    let whole = node.span();
    let mut node = node;
    let mut failed = false;
    // Once a value is removed because it was invalid, a "missing field" for it
    // would only repeat that error.
    let mut removed_invalid = false;
    // Bounded: each round removes one key, and a table has finitely many.
    for _ in 0..256 {
        let ((result, templates), round_problems) = crate::check::expect::collect_problems(|| {
            collect_templates(|| deserialize(ValueDeserializer::from(node.clone())))
        });
        *problems = round_problems;
        let err = match result {
            Ok(value) if !failed && problems.is_empty() => return Some((value, templates)),
            Ok(_) => return None,
            Err(err) => err,
        };
        failed = true;
        let span = err.span().unwrap_or_else(|| whole.clone());
        let message = err.message();

        if let Some((field, expected)) = parse_unknown(message, "unknown field `") {
            if let Some(path) = find_path(&node, &span) {
                let parent = &path[..path.len() - 1];
                let mut candidates = expected;
                if parent.is_empty() {
                    candidates.extend(place.extra_keys.iter().map(|k| k.to_string()));
                }
                diagnostics.push(
                    Diagnostic::new(
                        format!("unknown key `{field}` in {}", place.describe(parent)),
                        span.clone(),
                    )
                    .with_optional_help(did_you_mean(
                        &field,
                        candidates.iter().map(String::as_str),
                    )),
                );
                remove_path(&mut node, &path);
                continue;
            }
        }

        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            if !removed_invalid {
                let (anchor, path) = if span == whole {
                    (place.anchor.clone(), Vec::new())
                } else {
                    let path = find_path(&node, &span).unwrap_or_default();
                    (span.clone(), path)
                };
                diagnostics.push(Diagnostic::new(
                    format!("missing key `{field}` in {}", place.describe(&path)),
                    anchor,
                ));
            }
            return None;
        }

        let help = parse_unknown(message, "unknown variant `").and_then(|(variant, expected)| {
            did_you_mean(&variant, expected.iter().map(String::as_str))
        });
        let diagnostic = match (string_at(&node, &span), find_path(&node, &span)) {
            (Some(text), Some(path)) if is_template(text) && !path.is_empty() => {
                template_refused(Some(&path.join(".")), span.clone())
            }
            _ => Diagnostic::new(readable(message), span.clone()).with_optional_help(help),
        };
        diagnostics.push(diagnostic);
        match find_path(&node, &span) {
            Some(path) if !path.is_empty() => {
                remove_path(&mut node, &path);
                removed_invalid = true;
            }
            _ => return None,
        }
    }
    None
}

/// Rewrites serde messages that name Rust types rather than runbook concepts.
fn readable(message: &str) -> String {
    if message.contains("did not match any variant of untagged enum OneOrMany") {
        return "expected one value or a list of values of the right type".to_string();
    }
    let mut text = message
        .replacen("unknown variant `", "unknown value `", 1)
        .replacen("invalid type: map", "invalid type: table", 1)
        .replacen("invalid type: sequence", "invalid type: array", 1);
    // "expected struct HttpExpect" names a Rust type; the reader wrote a table.
    if let Some(at) = text.find(", expected struct ") {
        text.truncate(at);
        text.push_str(", expected a table");
    }
    for (rust, words) in [
        ("expected u8", "expected an integer from 0 to 255"),
        ("expected u16", "expected an integer from 0 to 65535"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
    ] {
        if let Some(stripped) = text.strip_suffix(rust) {
            text = format!("{stripped}{words}");
        }
    }
    text
}

/// Splits serde's "unknown field `a`, expected one of `b`, `c`" (or
/// "expected `b`", or "there are no fields") into `a` and `[b, c]`.
fn parse_unknown(message: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    let name = rest[..end].to_string();
    let expected = rest[end + 1..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name, expected))
}

/// The key path to the entry whose key or value has exactly `span`, looking
/// through nested tables and arrays. An entry holding an array is returned
/// for a span inside that array.
pub(crate) fn find_path(node: &Node<'_>, span: &Range<usize>) -> Option<Vec<String>> {
    match node.get_ref() {
        DeValue::Table(table) => {
            for (key, value) in table.iter() {
                if key.span() == *span || value.span() == *span {
                    return Some(vec![key.get_ref().to_string()]);
                }
                if let Some(mut rest) = find_path(value, span) {
                    rest.insert(0, key.get_ref().to_string());
                    return Some(rest);
                }
            }
            None
        }
        DeValue::Array(array) => array
            .iter()
            .any(|item| item.span() == *span || find_path(item, span).is_some())
            // The caller removes the entry holding the array.
            .then(Vec::new),
        _ => None,
    }
}

/// A placeholder where the key wants a literal number, duration or choice:
/// said as such, rather than "invalid type: string".
fn template_refused(key: Option<&str>, span: Range<usize>) -> Diagnostic {
    let what = key.map_or("this key".to_string(), |key| format!("`{key}`"));
    Diagnostic::new(format!("{what} cannot take a template"), span).with_help(
        "its value is fixed when the file is loaded (a step's retry policy is announced before \
         the run starts); write it literally",
    )
}

/// Whether `text` is a well-formed template with a placeholder (a malformed
/// one keeps the parser's own error).
fn is_template(text: &str) -> bool {
    Template::parse(text).is_ok_and(|t| t.references().next().is_some())
}

/// The string written exactly at `span`, if one is.
fn string_at<'a>(node: &'a Node<'_>, span: &Range<usize>) -> Option<&'a str> {
    if node.span() == *span {
        return match node.get_ref() {
            DeValue::String(text) => Some(text.as_ref()),
            _ => None,
        };
    }
    match node.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(_, value)| string_at(value, span)),
        DeValue::Array(array) => array.iter().find_map(|item| string_at(item, span)),
        _ => None,
    }
}

/// Removes the entry at `path` (as returned by [`find_path`]).
pub(crate) fn remove_path(node: &mut Node<'_>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let DeValue::Table(table) = node.get_mut() else {
        return;
    };
    if rest.is_empty() {
        table.remove(first.as_str());
    } else if let Some(child) = table.get_mut(first.as_str()) {
        if matches!(child.get_ref(), DeValue::Table(_)) {
            remove_path(child, rest);
        } else {
            table.remove(first.as_str());
        }
    }
}

/// Deserializes one scalar-ish value; a problem becomes a diagnostic.
pub(crate) fn deserialize_value<'i, T: serde::Deserialize<'i>>(
    node: &Node<'i>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<T> {
    let whole = node.span();
    T::deserialize(ValueDeserializer::from(node.clone()))
        .map_err(|err| {
            let span = err.span().unwrap_or(whole);
            diagnostics.push(match string_at(node, &span) {
                Some(text) if is_template(text) => template_refused(None, span),
                _ => Diagnostic::new(readable(err.message()), span),
            })
        })
        .ok()
}

/// A new table node holding `entries`, spanning `span`.
pub(crate) fn table_node<'i>(
    entries: impl IntoIterator<Item = (Spanned<DeString<'i>>, Node<'i>)>,
    span: Range<usize>,
) -> Node<'i> {
    let mut table = DeTable::new();
    for (key, value) in entries {
        table.insert(key, value);
    }
    Spanned::new(span, DeValue::Table(table))
}

/// Every string value directly among `entries`, with its span.
pub(crate) fn string_values<'t, 'i: 't, K: 't>(
    entries: impl Iterator<Item = (K, &'t Node<'i>)>,
) -> Vec<(String, Range<usize>)> {
    entries
        .filter_map(|(_, v)| v.get_ref().as_str().map(|s| (s.to_string(), v.span())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_serde_unknown_field_messages() {
        assert_eq!(
            parse_unknown(
                "unknown field `retires`, expected one of `a`, `b`",
                "unknown field `"
            ),
            Some(("retires".into(), vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            parse_unknown("unknown field `x`, expected `a`", "unknown field `"),
            Some(("x".into(), vec!["a".into()]))
        );
        assert_eq!(
            parse_unknown("unknown field `x`, there are no fields", "unknown field `"),
            Some(("x".into(), vec![]))
        );
        assert_eq!(parse_unknown("missing field `x`", "unknown field `"), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        status: Option<u16>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        url: String,
        #[serde(default)]
        expect: Option<Inner>,
        #[serde(default)]
        retries: Option<u32>,
    }

    fn run(src: &str) -> (Option<Outer>, Vec<Diagnostic>) {
        let root = DeTable::parse(src).unwrap();
        let span = root.span();
        let node = Spanned::new(span.clone(), DeValue::Table(root.into_inner()));
        let place = Place {
            label: "step `s`".into(),
            anchor: 0..1,
            extra_keys: &["timeout"],
        };
        let mut diags = Vec::new();
        let out = deserialize_collecting(node, &place, &mut diags, Outer::deserialize);
        (out.map(|(v, _)| v), diags)
    }

    use serde::Deserialize as _;

    #[test]
    fn reports_every_unknown_key_including_nested_ones() {
        let src = "url = 'x'\ntimout = 1\nexpect = { stauts = 200 }\n";
        let (value, diags) = run(src);
        assert!(value.is_none());
        let messages: Vec<_> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(
            messages.contains(&"unknown key `timout` in step `s`"),
            "{messages:?}"
        );
        assert!(
            messages.contains(&"unknown key `stauts` in `expect` of step `s`"),
            "{messages:?}"
        );
        let timout = diags.iter().find(|d| d.message.contains("timout")).unwrap();
        assert_eq!(&src[timout.span.clone()], "timout");
        assert_eq!(timout.help.as_deref(), Some("did you mean `timeout`?"));
    }

    #[test]
    fn an_invalid_value_does_not_hide_the_next_problem() {
        let (_, diags) = run("url = 'x'\nretries = 'many'\nbogus = 1\n");
        assert_eq!(diags.len(), 2, "{diags:?}");
    }

    #[test]
    fn a_missing_field_points_at_the_anchor() {
        let (_, diags) = run("retries = 1\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].message, "missing key `url` in step `s`");
        assert_eq!(diags[0].span, 0..1);
    }
}
