//! Reading a runbook: TOML with spans → validated [`Runbook`]. The main
//! function here is [`load_runbook`]; it reports every problem at once as
//! rendered [`Diagnostic`]s.
//!
//! Each table and each `[[step]]` is handled on its own, so that errors in
//! several places all show up in one run; cross-step rules (ids, dependencies,
//! templates) live in [`super::validate`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostics::{closest, did_you_mean, line_col, render_diagnostics, Diagnostic};
use super::duration::HumanDuration;
use super::model::{Backoff, Defaults, Runbook, RunbookMeta, SecretsConfig};
use super::raw::{
    as_table, deserialize_collecting, deserialize_value, string_values, table_node, Node, Place,
};
use super::validate::{self, RawStep};
use crate::check::{CheckSpec, KINDS};

/// Why a runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Rendered diagnostics, all of them.
    #[error("{rendered}")]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        rendered: String,
    },
}

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
];

const TOP_LEVEL: &[&str] = &["runbook", "secrets", "vars", "defaults", "step"];
const RUNBOOK_KEYS: &[&str] = &[
    "name",
    "owner",
    "description",
    "last_reviewed",
    "expires",
    "on_escalate",
];

/// At most this many retries per step: more hides a broken service behind a
/// long wait instead of escalating it.
pub const MAX_RETRIES: u32 = 10;

/// Loads and validates the runbook at `path`, resolving `{{env:NAME}}` from
/// the process environment.
pub fn load_runbook(path: &Path) -> Result<Runbook, LoadError> {
    load_runbook_with_env(path, &|name| std::env::var(name).ok())
}

/// Like [`load_runbook`], with environment lookups going through `env`.
pub fn load_runbook_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Runbook, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_runbook_str_with_env(path, &source, env)
}

/// Loads and validates runbook text; `path` names it in messages (shown as
/// given) and anchors relative `env_files`.
pub fn load_runbook_str(path: &Path, source: &str) -> Result<Runbook, LoadError> {
    load_runbook_str_with_env(path, source, &|name| std::env::var(name).ok())
}

/// Like [`load_runbook_str`], with environment lookups going through `env`
/// (so tests do not depend on the process environment).
pub fn load_runbook_str_with_env(
    path: &Path,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Runbook, LoadError> {
    let mut diagnostics = Vec::new();
    let runbook = parse_runbook(path, source, env, &mut diagnostics);
    match runbook {
        Some(runbook) if diagnostics.is_empty() => Ok(runbook),
        _ => {
            let rendered = render_diagnostics(&path.display().to_string(), source, &diagnostics);
            Err(LoadError::Invalid {
                diagnostics,
                rendered,
            })
        }
    }
}

/// Everything [`parse_runbook`] read from the top-level tables.
struct Tables {
    meta: Option<RunbookMeta>,
    secrets: SecretsConfig,
    vars: BTreeMap<String, String>,
    defaults: Defaults,
    steps: Vec<RawStep>,
}

fn parse_runbook(
    path: &Path,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Runbook> {
    let root = match DeTable::parse(source) {
        Ok(root) => root.into_inner(),
        Err(err) => {
            diagnostics.push(syntax_error(&err));
            return None;
        }
    };
    let mut tables = Tables {
        meta: None,
        secrets: SecretsConfig::default(),
        vars: BTreeMap::new(),
        defaults: Defaults::default(),
        steps: Vec::new(),
    };
    let mut meta_seen = false;
    // Names written in [vars] and whether [secrets] was readable: references
    // to a var or secret whose declaration already has an error are not
    // reported a second time.
    let mut var_names = std::collections::BTreeSet::new();
    let mut secrets_known = true;
    for (key, node) in root.iter() {
        match key.get_ref().as_ref() {
            "runbook" => {
                meta_seen = true;
                tables.meta = parse_meta(node, diagnostics);
            }
            "secrets" => {
                let place = table_place("[secrets]", node);
                match deserialize_collecting(
                    node.clone(),
                    &place,
                    diagnostics,
                    SecretsConfig::deserialize,
                ) {
                    Some((secrets, _)) => tables.secrets = secrets,
                    None => secrets_known = false,
                }
            }
            "vars" => {
                tables.vars = parse_vars(node, diagnostics);
                if let Some(table) = as_table(node) {
                    var_names.extend(table.iter().map(|(k, _)| k.get_ref().to_string()));
                }
            }
            "defaults" => {
                if let Some(defaults) = parse_defaults(node, diagnostics) {
                    tables.defaults = defaults;
                }
            }
            "step" => tables.steps = parse_steps(source, key.span(), node, diagnostics),
            other => diagnostics.push(unknown_top_level(other, key.span(), node)),
        }
    }
    // Policies are built once `[defaults]` is known, wherever it stands.
    for step in &mut tables.steps {
        step.apply_defaults(&tables.defaults);
    }
    if !meta_seen {
        diagnostics.push(
            Diagnostic::new("missing `[runbook]` table", 0..0).with_help(
                "add `[runbook]` with at least `name = \"...\"` (it names the evidence folder)",
            ),
        );
    }

    let steps = validate::validate_steps(
        source,
        &mut tables.steps,
        &var_names,
        secrets_known.then_some(&tables.secrets),
        env,
        diagnostics,
    );
    let meta = tables.meta?;
    if !diagnostics.is_empty() {
        return None;
    }
    Some(Runbook {
        path: path.to_path_buf(),
        source: source.to_string(),
        meta,
        secrets: tables.secrets,
        vars: tables.vars,
        defaults: tables.defaults,
        steps,
    })
}

fn syntax_error(err: &toml::de::Error) -> Diagnostic {
    let span = err.span().unwrap_or(0..0);
    let message = err.message().trim().replace('\n', "; ");
    Diagnostic::new(format!("invalid TOML: {message}"), span)
}

fn table_place(label: &str, node: &Node<'_>) -> Place {
    Place {
        label: label.to_string(),
        anchor: node.span(),
        extra_keys: &[],
    }
}

/// `[[x]]` headers (or an inline list of tables, which means the same).
fn is_list_of_tables(array: &toml::de::DeArray<'_>) -> bool {
    !array.is_empty() && array.iter().all(|item| item.get_ref().is_table())
}

fn unknown_top_level(name: &str, span: Range<usize>, node: &Node<'_>) -> Diagnostic {
    let written = match node.get_ref() {
        DeValue::Table(_) => format!("table `[{name}]`"),
        DeValue::Array(array) if is_list_of_tables(array) => format!("table `[[{name}]]`"),
        _ => format!("key `{name}`"),
    };
    let diagnostic = Diagnostic::new(format!("unknown {written}"), span);
    if RUNBOOK_KEYS.contains(&name) {
        return diagnostic
            .with_help("this key belongs under `[runbook]`; move it below that header");
    }
    if STEP_KEYS.contains(&name) {
        return diagnostic.with_help("step keys belong under a `[[step]]` header");
    }
    match closest(name, TOP_LEVEL.iter().copied()) {
        Some("step") => diagnostic.with_help("did you mean `[[step]]`?"),
        Some(table) => diagnostic.with_help(format!("did you mean `[{table}]`?")),
        None => {
            diagnostic.with_help("known tables: [runbook], [secrets], [vars], [defaults], [[step]]")
        }
    }
}

fn parse_meta(node: &Node<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<RunbookMeta> {
    let place = table_place("[runbook]", node);
    let parsed =
        deserialize_collecting(node.clone(), &place, diagnostics, RunbookMeta::deserialize);
    // The name and dates are checked on the raw table, so that their errors
    // show even when another key of [runbook] is wrong.
    let Some(table) = as_table(node) else {
        return parsed.map(|(meta, _)| meta);
    };
    let before = diagnostics.len();
    if let Some(name) = table.get("name") {
        if let Some(text) = name.get_ref().as_str() {
            check_runbook_name(text, name.span(), diagnostics);
        }
    }
    for key in ["last_reviewed", "expires"] {
        let Some(value) = table.get(key) else {
            continue;
        };
        if let Some(datetime) = value.get_ref().as_datetime() {
            if datetime.date.is_none() || datetime.time.is_some() {
                diagnostics.push(
                    Diagnostic::new(
                        format!("`{key}` must be a date like 2025-10-25"),
                        value.span(),
                    )
                    .with_help("write a bare date, without time or quotes"),
                );
            }
        }
    }
    let (meta, _) = parsed?;
    (diagnostics.len() == before).then_some(meta)
}

fn check_runbook_name(name: &str, span: Range<usize>, diagnostics: &mut Vec<Diagnostic>) {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || !name.chars().all(safe) || name == "." || name == ".." {
        diagnostics.push(
            Diagnostic::new(
                format!("runbook name `{name}` cannot be used as a folder name"),
                span,
            )
            .with_help("use letters, digits, `.`, `_` and `-` only (it names the evidence folder)"),
        );
    }
}

fn parse_vars(node: &Node<'_>, diagnostics: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let Some(table) = as_table(node) else {
        diagnostics.push(Diagnostic::new(
            "`vars` must be a table of strings",
            node.span(),
        ));
        return vars;
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            diagnostics.push(
                Diagnostic::new(
                    format!("var name `{name}` cannot be used in a template"),
                    key.span(),
                )
                .with_help("use letters, digits, `_` and `-` only"),
            );
            continue;
        }
        match value.get_ref().as_str() {
            Some(text) if text.contains("{{") => diagnostics.push(
                Diagnostic::new(format!("var `{name}` contains a template"), value.span())
                    .with_help("vars are literal strings; templates are not expanded in [vars]"),
            ),
            Some(text) => {
                vars.insert(name, text.to_string());
            }
            None => diagnostics.push(
                Diagnostic::new(format!("var `{name}` must be a string"), value.span())
                    .with_help("vars are literal strings; quote the value"),
            ),
        }
    }
    vars
}

/// `[defaults]`, key by key so that every bad value is reported.
fn parse_defaults(node: &Node<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<Defaults> {
    let Some(table) = as_table(node) else {
        diagnostics.push(Diagnostic::new("`defaults` must be a table", node.span()));
        return None;
    };
    let before = diagnostics.len();
    let mut defaults = Defaults::default();
    for (key, value) in table.iter() {
        let span = value.span();
        match key.get_ref().as_ref() {
            "retries" => {
                if let Some(retries) = deserialize_value::<u32>(value.clone(), diagnostics) {
                    check_retries(retries, Some(span), diagnostics);
                    defaults.retries = retries;
                }
            }
            "timeout" => {
                if let Some(timeout) =
                    deserialize_value::<HumanDuration>(value.clone(), diagnostics)
                {
                    check_timeout(timeout.0, Some(span), diagnostics);
                    defaults.timeout = timeout.0;
                }
            }
            "backoff" => {
                if let Some(backoff) = parse_backoff(value, "`backoff` of [defaults]", diagnostics)
                {
                    defaults.backoff = backoff;
                }
            }
            other => diagnostics.push(
                Diagnostic::new(format!("unknown key `{other}` in [defaults]"), key.span())
                    .with_optional_help(did_you_mean(other, ["retries", "backoff", "timeout"])),
            ),
        }
    }
    (diagnostics.len() == before).then_some(defaults)
}

fn parse_backoff(
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

fn parse_steps(
    source: &str,
    key_span: Range<usize>,
    node: &Node<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<RawStep> {
    let items = match node.get_ref() {
        DeValue::Array(items) if is_list_of_tables(items) => items,
        DeValue::Table(_) => {
            diagnostics.push(
                Diagnostic::new(
                    "`[step]` declares a single table, not a list of steps",
                    key_span,
                )
                .with_help("write each step under its own `[[step]]` header (double brackets)"),
            );
            return Vec::new();
        }
        _ => {
            diagnostics.push(
                Diagnostic::new("`step` must be a list of tables", key_span)
                    .with_help("write each step under its own `[[step]]` header"),
            );
            return Vec::new();
        }
    };
    items
        .iter()
        .filter_map(|item| match item.get_ref() {
            DeValue::Table(table) => Some(parse_step(source, item.span(), table, diagnostics)),
            _ => {
                diagnostics.push(Diagnostic::new("each step must be a table", item.span()));
                None
            }
        })
        .collect()
}

fn parse_step(
    source: &str,
    header: Range<usize>,
    table: &DeTable<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> RawStep {
    let line = line_col(source, header.start).0;
    let mut step = RawStep::new(header.clone(), line);
    let mut kind_entries = Vec::new();
    let label = match table.get("id").and_then(|id| id.get_ref().as_str()) {
        Some(id) => format!("step `{id}`"),
        None => format!("the step on line {line}"),
    };

    // Read the common keys one by one, so that one bad value does not hide
    // the next; collect the rest for the kind.
    for (key, value) in table.iter() {
        let span = value.span();
        let value = value.clone();
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
                step.backoff = parse_backoff(&value, &format!("`backoff` of {label}"), diagnostics)
            }
            "mutating" => step.mutating = deserialize_value(value, diagnostics).unwrap_or(false),
            "hint" => step.hint = deserialize_value(value, diagnostics),
            _ => kind_entries.push((key.clone(), value)),
        }
    }
    if step.id.is_none() && !table.contains_key("id") {
        diagnostics.push(
            Diagnostic::new("step has no `id`", header.clone()).with_help(
                "add `id = \"...\"`: ids name steps in `depends_on`, templates and the evidence",
            ),
        );
    }
    let Some((kind, kind_span)) = step.check.clone() else {
        if !table.contains_key("check") {
            diagnostics.push(
                Diagnostic::new(format!("{label} has no `check`"), header.clone()).with_help(
                    format!("add `check = \"...\"`, one of: {}", KINDS.join(", ")),
                ),
            );
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

    let kind_table = table_node(kind_entries, header.clone());
    if let Some(kind_table) = as_table(&kind_table) {
        step.string_values = string_values(kind_table);
    }
    let place = Place {
        label,
        // "missing key `url`" points at the kind that needs it.
        anchor: kind_span.clone(),
        extra_keys: STEP_KEYS,
    };
    let parsed = deserialize_collecting(kind_table, &place, diagnostics, |de| {
        CheckSpec::deserialize_kind(&kind, de)
    });
    match parsed {
        Some((Some(spec), templates)) => {
            step.spec = Some(spec);
            step.templates = templates;
        }
        Some((None, _)) => diagnostics.push(Diagnostic::new(
            format!("unknown check kind `{kind}`"),
            kind_span,
        )),
        None => {}
    }
    step
}
