//! One `[[step]]`: its common keys (id, check, dependencies, policy
//! overrides) read key by key, the rest handed to the check kind. The main
//! function here is [`parse_steps`]; cross-step rules are in [`super::validate`].

use crate::check::expect::condition::Conditions;
use std::ops::Range;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::model::Backoff;
use super::raw::{
    deserialize_collecting, deserialize_collecting_rebuilt, deserialize_value, is_list_of_tables,
    string_values, table_node, Node, Place,
};
use super::validate::RawStep;
use crate::check::{CheckSpec, KINDS};
use crate::core::diagnostics::{did_you_mean, line_of, Diagnostic};
use crate::core::duration::HumanDuration;

/// Keys every step has, whatever its kind; all other keys belong to the kind.
pub const STEP_KEYS: &[&str] = &[
    "id",
    "title",
    "check",
    "depends_on",
    "retries",
    "timeout",
    "backoff",
    "mutating",
    "hint",
    "owner",
    "tags",
    "collect",
    "when",
];

/// At most this many retries per step: more hides a broken service behind a
/// long wait instead of escalating it.
pub const MAX_RETRIES: u32 = 10;

pub(crate) fn parse_backoff(
    node: &Node<'_>,
    label: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Backoff> {
    let place = Place {
        label: label.to_string(),
        anchor: node.span(),
        extra_keys: &[],
    };
    let (backoff, _) =
        deserialize_collecting(node.clone(), &place, diagnostics, Backoff::deserialize)?;
    let before = diagnostics.len();
    check_backoff(&backoff, Some(node.span()), diagnostics);
    (diagnostics.len() == before).then_some(backoff)
}

pub(crate) fn check_retries(
    retries: u32,
    span: Option<Range<usize>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if retries > MAX_RETRIES {
        diagnostics.push(
            Diagnostic::new(
                format!("`retries` is {retries}, more than the maximum of {MAX_RETRIES}"),
                span.unwrap_or(0..0),
            )
            .with_help("a step that keeps failing should escalate, not wait"),
        );
    }
}

pub(crate) fn check_timeout(
    timeout: std::time::Duration,
    span: Option<Range<usize>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if timeout.is_zero() {
        diagnostics.push(Diagnostic::new(
            "`timeout` must be longer than 0s",
            span.unwrap_or(0..0),
        ));
    }
}

pub(crate) fn check_backoff(
    backoff: &Backoff,
    span: Option<Range<usize>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if backoff.initial > backoff.max {
        diagnostics.push(Diagnostic::new(
            format!(
                "backoff `initial` ({}) is longer than `max` ({})",
                backoff.initial, backoff.max
            ),
            span.unwrap_or(0..0),
        ));
    }
}

/// Reads the `[[step]]` list `node`. Its spans are `offset` bytes short of
/// the file's (a section parsed on its own, or 0); `line_starts` are the
/// whole file's, so the steps' spans and lines are the file's.
pub(crate) fn parse_steps(
    line_starts: &[usize],
    offset: usize,
    key_span: Range<usize>,
    node: &Node<'_>,
    noun: &'static str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<RawStep> {
    let items = match node.get_ref() {
        DeValue::Array(items) if is_list_of_tables(items) => items,
        DeValue::Table(_) => {
            diagnostics.push(
                Diagnostic::new(
                    format!("`[{noun}]` declares a single table, not a list of {noun}s"),
                    key_span,
                )
                .with_help(format!(
                    "write each {noun} under its own `[[{noun}]]` header (double brackets)"
                )),
            );
            return Vec::new();
        }
        _ => {
            diagnostics.push(
                Diagnostic::new(format!("`{noun}` must be a list of tables"), key_span).with_help(
                    format!("write each {noun} under its own `[[{noun}]]` header"),
                ),
            );
            return Vec::new();
        }
    };
    // Sized once: `collect` from `filter_map` would grow by doubling, and a
    // sweep's file may hold 100,000 steps of about 1 KB each.
    let mut steps = Vec::with_capacity(items.len());
    steps.extend(items.iter().filter_map(|item| match item.get_ref() {
        DeValue::Table(table) => {
            let header = item.span();
            let line = line_of(line_starts, header.start + offset);
            let mut step = parse_step(line, header, table, noun, diagnostics);
            step.shift_spans(offset);
            Some(step)
        }
        _ => {
            diagnostics.push(Diagnostic::new(
                format!("each {noun} must be a table"),
                item.span(),
            ));
            None
        }
    }));
    steps
}

/// The entries of a step's table that belong to its kind (every key but
/// [`STEP_KEYS`]), in order.
fn kind_entries<'t, 'i>(
    table: &'t DeTable<'i>,
) -> impl Iterator<Item = (&'t Spanned<DeString<'i>>, &'t Node<'i>)> {
    table
        .iter()
        .filter(|(key, _)| !STEP_KEYS.contains(&key.get_ref().as_ref()))
}

fn parse_step(
    line: usize,
    header: Range<usize>,
    table: &DeTable<'_>,
    noun: &'static str,
    diagnostics: &mut Vec<Diagnostic>,
) -> RawStep {
    let mut step = RawStep::new(header.clone(), line, noun);
    let label = match table.get("id").and_then(|id| id.get_ref().as_str()) {
        Some(id) => format!("{noun} `{id}`"),
        None => format!("the {noun} on line {line}"),
    };

    // Read the common keys one by one, so that one bad value does not hide
    // the next; collect the rest for the kind.
    for (key, value) in table.iter() {
        let span = value.span();
        match key.get_ref().as_ref() {
            "id" => step.id = deserialize_value::<String>(value, diagnostics).map(|id| (id, span)),
            "title" => step.title = deserialize_value(value, diagnostics),
            "check" => {
                step.check = deserialize_value::<String>(value, diagnostics).map(|c| (c, span))
            }
            "depends_on" => {
                if let Some(deps) = deserialize_value::<Vec<Spanned<String>>>(value, diagnostics) {
                    step.depends_on = deps
                        .into_iter()
                        .map(|d| (d.get_ref().clone(), d.span()))
                        .collect();
                }
            }
            "retries" => {
                if let Some(retries) = deserialize_value::<u32>(value, diagnostics) {
                    check_retries(retries, Some(span.clone()), diagnostics);
                    step.retries = Some(retries);
                }
            }
            "timeout" => {
                if let Some(timeout) = deserialize_value::<HumanDuration>(value, diagnostics) {
                    check_timeout(timeout.0, Some(span.clone()), diagnostics);
                    step.timeout = Some(timeout.0);
                }
            }
            "backoff" => {
                step.backoff = parse_backoff(value, &format!("`backoff` of {label}"), diagnostics)
            }
            "mutating" => step.mutating = deserialize_value(value, diagnostics).unwrap_or(false),
            "hint" => step.hint = deserialize_value(value, diagnostics),
            "owner" => step.owner = deserialize_value(value, diagnostics),
            "collect" => step.collect = deserialize_value(value, diagnostics).unwrap_or_default(),
            "when" => {
                let place = Place {
                    label: format!("`when` of {label}"),
                    anchor: span.clone(),
                    extra_keys: &[],
                };
                if let Some((conditions, templates)) = deserialize_collecting(
                    value.clone(),
                    &place,
                    diagnostics,
                    Conditions::deserialize,
                ) {
                    step.when = conditions;
                    // `{{steps.X.Y}}` in a condition makes X a dependency.
                    step.templates.extend(templates);
                }
            }
            "tags" => step.tags = deserialize_value(value, diagnostics).unwrap_or_default(),
            // The kind's keys: copied once below, when the kind is known.
            _ => {}
        }
    }
    if step.id.is_none() && !table.contains_key("id") {
        diagnostics.push(
            Diagnostic::new(format!("{noun} has no `id`"), header.clone()).with_help(format!(
                "add `id = \"...\"`: ids name {noun}s in `depends_on`, templates and the evidence"
            )),
        );
    }
    let Some((kind, kind_span)) = step.check.clone() else {
        if !table.contains_key("check") {
            diagnostics.push(
                Diagnostic::new(format!("{label} has no `check`"), header.clone()).with_help(
                    format!("add `check = \"...\"`, one of: {}", KINDS.join(", ")),
                ),
            );
            // Without a kind its keys cannot be judged, but one that looks
            // like `check` misspelt (`chek`) is why the kind is missing.
            for (key, _) in kind_entries(table) {
                let name: &str = key.get_ref().as_ref();
                if let Some(help) = crate::core::diagnostics::did_you_mean(name, ["check"]) {
                    diagnostics.push(
                        Diagnostic::new(format!("unknown key `{name}` in {label}"), key.span())
                            .with_help(help),
                    );
                }
            }
        }
        return step;
    };
    if !KINDS.contains(&kind.as_str()) {
        diagnostics.push(
            Diagnostic::new(format!("unknown check kind `{kind}`"), kind_span).with_optional_help(
                did_you_mean(&kind, KINDS.iter().copied())
                    .or_else(|| Some(format!("known kinds: {}", KINDS.join(", ")))),
            ),
        );
        return step;
    }

    // The kind's keys, copied once and handed over: the deserializer takes
    // its tree by value, and a sweep reads every check twice.
    let kind_table = || {
        let entries = kind_entries(table).map(|(key, value)| (key.clone(), value.clone()));
        table_node(entries, header.clone())
    };
    if CheckSpec::kind_names_secrets(&kind) {
        step.string_values = string_values(kind_entries(table));
    }
    let place = Place {
        label,
        // "missing key `url`" points at the kind that needs it.
        anchor: kind_span.clone(),
        extra_keys: STEP_KEYS,
    };
    let parsed =
        deserialize_collecting_rebuilt(kind_table(), kind_table, &place, diagnostics, |de| {
            CheckSpec::deserialize_kind(&kind, de)
        });
    match parsed {
        Some((Some(spec), templates)) => {
            untemplated_placeholders(kind_entries(table), &templates, &place.label, diagnostics);
            step.spec = Some(Box::new(spec));
            step.templates.extend(templates);
        }
        Some((None, _)) => diagnostics.push(Diagnostic::new(
            format!("unknown check kind `{kind}`"),
            kind_span,
        )),
        None => {}
    }
    step
}

/// A `{{...}}` in a string the kind reads as plain text (an event name, a
/// file name…) would be used as written: an error at its position. The kind's templates were collected while it was deserialized,
/// so a string that none of them covers does not take placeholders.
fn untemplated_placeholders<'t, 'i: 't>(
    entries: impl Iterator<Item = (&'t Spanned<DeString<'i>>, &'t Node<'i>)>,
    templates: &[crate::core::template::Template],
    label: &str,
    diagnostics: &mut Vec<Diagnostic>,
) {
    // Each string handed to `each` in place: no list per key (a sweep
    // reads every check twice).
    fn strings(value: &Spanned<DeValue<'_>>, each: &mut dyn FnMut(&str, Range<usize>)) {
        match value.get_ref() {
            DeValue::String(text) => each(text.as_ref(), value.span()),
            DeValue::Table(table) => table.values().for_each(|v| strings(v, each)),
            DeValue::Array(array) => array.iter().for_each(|v| strings(v, each)),
            _ => {}
        }
    }
    // Templates' spans are the file's; the table's may be its section's.
    let offset = crate::core::template::span_offset();
    let covered = |span: &Range<usize>| {
        let span = span.start + offset..span.end + offset;
        templates.iter().map(|t| t.span()).any(|t| {
            t.start <= span.start && span.end <= t.end
                || span.start <= t.start && t.end <= span.end && !t.is_empty()
        })
    };
    for (key, value) in entries {
        // `expect` values belong to the assertions work, which renders
        // templates there; until then they compare as written.
        if key.get_ref() == "expect" {
            continue;
        }
        strings(value, &mut |text, span| {
            if text.contains("{{") && text.contains("}}") && !covered(&span) {
                diagnostics.push(
                    Diagnostic::new(
                        format!(
                            "`{}` in {label} does not take templates: `{text}` would be used as written",
                            key.get_ref()
                        ),
                        span,
                    )
                    .with_help("write the value itself, or put the template in a key that renders it (see the check reference)"),
                );
            }
        });
    }
}
