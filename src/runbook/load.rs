//! Reading a runbook: TOML with spans → validated [`Runbook`]. The main
//! function here is [`load_runbook`]; it reports every problem at once as
//! rendered [`Diagnostic`]s.
//!
//! Each table and each `[[step]]` is handled on its own, so that errors in
//! several places all show up in one run; cross-step rules (ids, dependencies,
//! templates) live in [`super::validate`]. A large check file is read one
//! top-level table at a time (split by [`sections`]).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::model::{CheckFile, Defaults, NotifyConfig, Runbook, RunbookMeta, SecretsConfig, Step};
use super::raw::{
    as_table, deserialize_collecting, deserialize_value, is_list_of_tables, Node, Place,
};
use super::secrets::SecretStore;
use super::sections;
use super::step::{check_retries, check_timeout, parse_backoff, parse_steps};
pub use super::step::{MAX_RETRIES, STEP_KEYS};
use super::validate::{self, RawStep};
use crate::core::diagnostics::line_starts;
use crate::core::diagnostics::{
    closest, did_you_mean, mask_values, render_diagnostics, Diagnostic,
};
use crate::core::duration::HumanDuration;
use crate::core::template::with_span_offset;

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

const TOP_LEVEL: &[&str] = &["runbook", "secrets", "vars", "defaults", "notify", "step"];
const CHECKS_TOP_LEVEL: &[&str] = &["secrets", "vars", "defaults", "notify", "check"];
const RUNBOOK_KEYS: &[&str] = &[
    "name",
    "owner",
    "description",
    "last_reviewed",
    "expires",
    "on_escalate",
];

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
    let parsed = parse_document(source, env, Document::Runbook)
        .map_err(|diagnostics| invalid(Document::Runbook, path, source, diagnostics, env))?;
    let meta = parsed
        .meta
        .ok_or_else(|| invalid(Document::Runbook, path, source, Vec::new(), env))?;
    Ok(Runbook {
        path: path.to_path_buf(),
        source: source.to_string(),
        meta,
        secrets: parsed.secrets,
        vars: parsed.vars,
        defaults: parsed.defaults,
        steps: anchored(parsed.steps, path),
        notify: parsed.notify,
    })
}

/// Loads a sweep's check file: `[[check]]` entries with the same keys, kinds,
/// templates, `[secrets]`, `[vars]` and `[defaults]` as a runbook (plus
/// `tags`), and no `[runbook]` table.
pub fn load_check_file(path: &Path, source: &str) -> Result<CheckFile, LoadError> {
    load_check_file_with_env(path, source, &|name| std::env::var(name).ok())
}

/// Like [`load_check_file`], with environment lookups going through `env`.
pub fn load_check_file_with_env(
    path: &Path,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CheckFile, LoadError> {
    let by_section = (source.len() >= SECTIONED_MIN_BYTES)
        .then(|| parse_checks_by_section(source, env))
        .flatten();
    let parsed = match by_section {
        Some(parsed) => parsed,
        None => parse_document(source, env, Document::Checks)
            .map_err(|diagnostics| invalid(Document::Checks, path, source, diagnostics, env))?,
    };
    Ok(CheckFile {
        path: path.to_path_buf(),
        source: source.to_string(),
        secrets: parsed.secrets,
        vars: parsed.vars,
        defaults: parsed.defaults,
        notify: parsed.notify,
        checks: anchored(parsed.steps, path),
    })
}

/// Gives each step the folder of `path`, which its relative paths are taken
/// from (like `env_files`).
fn anchored(mut steps: Vec<Step>, path: &Path) -> Vec<Step> {
    let base = path.parent().unwrap_or(Path::new(""));
    for step in &mut steps {
        step.base_dir = base.to_path_buf();
    }
    steps
}

/// Whether `source` is a check file (a sweep's input: `[[check]]` and no
/// `[runbook]` or `[[step]]`) rather than a runbook. Text that is not valid
/// TOML counts as a check file when a line starts with `[[check]]`, so that
/// its syntax error is reported under the right name.
pub fn is_check_file(source: &str) -> bool {
    // A large file is judged by its headers, without its whole TOML tree (see
    // [`SECTIONED_MIN_BYTES`]); one with `[runbook]` is read whole as before.
    if source.len() >= SECTIONED_MIN_BYTES {
        if let Some(sections) = sections::split(source) {
            if !sections.iter().any(|s| s.name == "runbook") {
                return sections.iter().any(|s| s.name == "check");
            }
        }
    }
    match DeTable::parse(source) {
        Ok(root) => {
            let root = root.get_ref();
            root.contains_key("check")
                && !root.contains_key("runbook")
                && !root.contains_key("step")
        }
        Err(_) => source
            .lines()
            .any(|line| line.trim_start().starts_with("[[check]]")),
    }
}

fn invalid(
    document: Document,
    path: &Path,
    source: &str,
    diagnostics: Vec<Diagnostic>,
    env: &dyn Fn(&str) -> Option<String>,
) -> LoadError {
    let noun = match document {
        Document::Runbook => "runbook",
        Document::Checks => "check file",
    };
    let rendered = render_diagnostics(noun, &path.display().to_string(), source, &diagnostics);
    // A secret pasted inline would be printed with the line it is on.
    let rendered = mask_values(&rendered, &declared_secret_values(path, source, env));
    LoadError::Invalid {
        diagnostics,
        rendered,
    }
}

/// The values (6 bytes or longer) of the secrets `source` declares, read
/// like a run reads them (env files, then the environment). Best effort: a
/// document whose `[secrets]` does not parse declares none.
fn declared_secret_values(
    path: &Path,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let Ok(table) = source.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(Ok(config)) = table
        .get("secrets")
        .cloned()
        .map(|s| s.try_into::<SecretsConfig>())
    else {
        return Vec::new();
    };
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    SecretStore::load(&config, base, env)
        .map(|store| {
            store
                .pairs()
                .into_iter()
                .map(|(_, value)| value)
                .filter(|value| value.len() >= crate::evidence::redact::MIN_SECRET_LEN)
                .collect()
        })
        .unwrap_or_default()
}

/// The two kinds of file that hold checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Document {
    /// `[runbook]` and `[[step]]`.
    Runbook,
    /// `[[check]]` (a sweep's input); no `[runbook]`.
    Checks,
}

impl Document {
    /// The key of the list of steps.
    fn list_key(self) -> &'static str {
        match self {
            Document::Runbook => "step",
            Document::Checks => "check",
        }
    }

    fn top_level(self) -> &'static [&'static str] {
        match self {
            Document::Runbook => TOP_LEVEL,
            Document::Checks => CHECKS_TOP_LEVEL,
        }
    }
}

/// What a document holds once read and validated.
struct Parsed {
    meta: Option<RunbookMeta>,
    secrets: SecretsConfig,
    vars: BTreeMap<String, String>,
    defaults: Defaults,
    steps: Vec<Step>,
    notify: Option<Box<NotifyConfig>>,
}

/// Everything [`parse_runbook`] read from the top-level tables.
struct Tables {
    meta: Option<RunbookMeta>,
    secrets: SecretsConfig,
    vars: BTreeMap<String, String>,
    defaults: Defaults,
    steps: Vec<RawStep>,
    notify: Option<Box<NotifyConfig>>,
}

fn parse_document(
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    document: Document,
) -> Result<Parsed, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let root = match DeTable::parse(source) {
        Ok(root) => root.into_inner(),
        Err(err) => return Err(vec![syntax_error(&err)]),
    };
    let line_starts = line_starts(source);
    let mut reader = Reader::new(document);
    for (key, node) in root.iter() {
        reader.table(key, node, &line_starts, 0, &mut diagnostics);
    }
    let has_list = root.contains_key(document.list_key());
    // The parsed TOML tree is not needed past this point: freed before the
    // steps are built, so a file of 100,000 checks does not hold the tree,
    // the raw steps and the steps at once.
    drop(root);
    reader.finish(source, has_list, env, diagnostics)
}

/// Check files at least this large are read section by section
/// ([`parse_checks_by_section`]). toml's spanned tree of a whole file costs
/// many times the file's size (`lint` of a 19 MB file of 100,000 checks
/// peaked at 680 MB read whole, 465 MB by section); below 256 KiB (some
/// 1,500 checks) the tree is a few MB, and small files — every runbook and
/// test fixture — keep the single-parse path exactly as it was.
const SECTIONED_MIN_BYTES: usize = 256 * 1024;

/// One section's text parsed; `None` unless it holds exactly one table,
/// named as its header says.
fn parse_section<'a>(text: &'a str, name: &str) -> Option<DeTable<'a>> {
    if name == "check" {
        if let Some(root) = plain_check::parse(text) {
            return Some(root);
        }
    }
    let root = DeTable::parse(text).ok()?.into_inner();
    let mut entries = root.iter();
    let named = entries
        .next()
        .is_some_and(|(key, _)| key.get_ref().as_ref() == name);
    (named && entries.next().is_none()).then_some(root)
}

/// Reads a valid check file one top-level table at a time, so that only one
/// section's TOML tree exists at once. `None` when the file cannot be split
/// safely or has any problem at all: the caller then reads it whole, which
/// reports every problem where it is (this path is an optimisation for valid
/// files only, never a second source of diagnostics).
fn parse_checks_by_section(source: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Parsed> {
    let sections = sections::split(source)?;
    let line_starts = line_starts(source);
    let mut reader = Reader::new(Document::Checks);
    let mut diagnostics = Vec::new();
    let mut has_list = false;
    for section in sections {
        let offset = section.range.start;
        let root = parse_section(&source[section.range.clone()], section.name)?;
        let (key, node) = root.iter().next()?;
        has_list |= section.name == "check";
        with_span_offset(offset, || {
            reader.table(key, node, &line_starts, offset, &mut diagnostics)
        });
        if !diagnostics.is_empty() {
            return None;
        }
    }
    reader.finish(source, has_list, env, diagnostics).ok()
}

mod chunks;
mod plain_check;
mod plain_http;
pub use chunks::{CheckChunks, ChunkedFile, EnvLookup, ReadOnce, ReadWhole, CHUNK_CHECKS};

/// The top-level tables of a document, read one by one, and what they say.
struct Reader {
    document: Document,
    tables: Tables,
    meta_seen: bool,
    /// Names written in [vars] and whether [secrets] was readable: references
    /// to a var or secret whose declaration already has an error are not
    /// reported a second time.
    var_names: std::collections::BTreeSet<String>,
    secrets_known: bool,
    /// Tables written under a misspelt name: "missing" would repeat the error.
    misspelt: std::collections::BTreeSet<&'static str>,
    notify_templates: Vec<crate::core::template::Template>,
}

impl Reader {
    fn new(document: Document) -> Self {
        Reader {
            document,
            tables: Tables {
                meta: None,
                secrets: SecretsConfig::default(),
                vars: BTreeMap::new(),
                defaults: Defaults::default(),
                steps: Vec::new(),
                notify: None,
            },
            meta_seen: false,
            var_names: std::collections::BTreeSet::new(),
            secrets_known: true,
            misspelt: std::collections::BTreeSet::new(),
            notify_templates: Vec::new(),
        }
    }

    /// Reads the top-level entry `key`; its spans are `offset` bytes short
    /// of the file's (0 when the whole file was parsed).
    fn table(
        &mut self,
        key: &toml::Spanned<std::borrow::Cow<'_, str>>,
        node: &Node<'_>,
        line_starts: &[usize],
        offset: usize,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let document = self.document;
        let list_key = document.list_key();
        let tables = &mut self.tables;
        match key.get_ref().as_ref() {
            "runbook" if document == Document::Runbook => {
                self.meta_seen = true;
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
                    None => self.secrets_known = false,
                }
            }
            "vars" => {
                tables.vars = parse_vars(node, diagnostics);
                if let Some(table) = as_table(node) {
                    self.var_names
                        .extend(table.iter().map(|(k, _)| k.get_ref().to_string()));
                }
            }
            "defaults" => {
                if let Some(defaults) = parse_defaults(node, diagnostics) {
                    tables.defaults = defaults;
                }
            }
            "notify" => {
                let place = table_place("[notify]", node);
                if let Some((notify, templates)) = deserialize_collecting(
                    node.clone(),
                    &place,
                    diagnostics,
                    NotifyConfig::deserialize,
                ) {
                    if notify.slack.is_none()
                        && notify.webhook.is_none()
                        && notify.pagerduty.is_none()
                    {
                        diagnostics.push(
                            Diagnostic::new("[notify] names no target", key.span()).with_help(
                                "add `[notify.slack]`, `[notify.webhook]` or `[notify.pagerduty]`",
                            ),
                        );
                    }
                    self.notify_templates = templates;
                    tables.notify = Some(Box::new(notify));
                }
            }
            key_name if key_name == list_key => {
                // One call for a whole file; one per `[[check]]` section.
                let steps =
                    parse_steps(line_starts, offset, key.span(), node, list_key, diagnostics);
                tables.steps.extend(steps);
            }
            other => {
                if let Some(meant) = closest(other, document.top_level().iter().copied()) {
                    self.misspelt.insert(meant);
                }
                diagnostics.push(unknown_top_level(other, key.span(), node, document));
            }
        }
    }

    /// The rules over the whole document, once every table is read.
    fn finish(
        self,
        source: &str,
        has_list: bool,
        env: &dyn Fn(&str) -> Option<String>,
        mut diagnostics: Vec<Diagnostic>,
    ) -> Result<Parsed, Vec<Diagnostic>> {
        let Reader {
            document,
            mut tables,
            meta_seen,
            var_names,
            secrets_known,
            misspelt,
            notify_templates,
        } = self;
        let diagnostics = &mut diagnostics;
        let list_key = document.list_key();
        if secrets_known {
            check_notify_references(&notify_templates, &tables.secrets, &var_names, diagnostics);
        }
        // Policies are built once `[defaults]` is known, wherever it stands.
        for step in &mut tables.steps {
            step.apply_defaults(&tables.defaults);
        }
        if !has_list && !misspelt.contains(list_key) {
            let end = source.trim_end().len();
            let (what, header) = match document {
                Document::Runbook => ("runbook has no steps", "[[step]]"),
                Document::Checks => ("check file has no checks", "[[check]]"),
            };
            diagnostics.push(Diagnostic::new(what, end..end).with_help(format!(
                "add at least one `{header}` with an `id` and a `check`"
            )));
        }
        if document == Document::Runbook && !meta_seen && !misspelt.contains("runbook") {
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
        if !diagnostics.is_empty() || (document == Document::Runbook && tables.meta.is_none()) {
            return Err(std::mem::take(diagnostics));
        }
        Ok(Parsed {
            meta: tables.meta,
            secrets: tables.secrets,
            vars: tables.vars,
            defaults: tables.defaults,
            steps,
            notify: tables.notify,
        })
    }
}

/// `[notify]` templates may name declared secrets, vars and the environment;
/// captures belong to steps, not to the run's notifications.
fn check_notify_references(
    templates: &[crate::core::template::Template],
    secrets: &SecretsConfig,
    var_names: &std::collections::BTreeSet<String>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    use crate::core::template::Reference;
    for template in templates {
        for reference in template.references() {
            let problem = match reference {
                Reference::Secret(name) if !secrets.declared().any(|d| d == name) => {
                    Some(format!("secret `{name}` is not declared in [secrets]"))
                }
                Reference::Var(name) if !var_names.contains(name) => {
                    Some(format!("var `{name}` is not defined in [vars]"))
                }
                Reference::Capture { .. } => Some("[notify] cannot use step captures".to_string()),
                _ => None,
            };
            if let Some(message) = problem {
                diagnostics.push(Diagnostic::new(message, template.span()));
            }
        }
    }
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

fn unknown_top_level(
    name: &str,
    span: Range<usize>,
    node: &Node<'_>,
    document: Document,
) -> Diagnostic {
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
    let list = format!("[[{}]]", document.list_key());
    if document == Document::Checks && name == "runbook" {
        return diagnostic
            .with_help("check files have no [runbook] table; give each `[[check]]` its own keys");
    }
    if STEP_KEYS.contains(&name) {
        return diagnostic.with_help(format!(
            "{} keys belong under a `{list}` header",
            document.list_key()
        ));
    }
    match closest(name, document.top_level().iter().copied()) {
        Some(key) if key == document.list_key() => {
            diagnostic.with_help(format!("did you mean `{list}`?"))
        }
        Some(table) => diagnostic.with_help(format!("did you mean `[{table}]`?")),
        None => diagnostic.with_help(format!(
            "known tables: {}",
            document
                .top_level()
                .iter()
                .map(|t| if *t == document.list_key() {
                    list.clone()
                } else {
                    format!("[{t}]")
                })
                .collect::<Vec<_>>()
                .join(", ")
        )),
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
                if let Some(retries) = deserialize_value::<u32>(value, diagnostics) {
                    check_retries(retries, Some(span), diagnostics);
                    defaults.retries = retries;
                }
            }
            "timeout" => {
                if let Some(timeout) = deserialize_value::<HumanDuration>(value, diagnostics) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckSpec;

    fn load(source: &str) -> Result<Runbook, Vec<Diagnostic>> {
        load_runbook_str_with_env(Path::new("t.toml"), source, &|_| None).map_err(|err| match err {
            LoadError::Invalid { diagnostics, .. } => diagnostics,
            LoadError::Io { .. } => unreachable!("no file is read"),
        })
    }

    fn messages(source: &str) -> Vec<String> {
        let mut diags = load(source).unwrap_err();
        diags.sort_by_key(|d| d.span.start);
        diags.into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn an_empty_file_needs_a_runbook_table_and_steps() {
        assert_eq!(
            messages(""),
            ["runbook has no steps", "missing `[runbook]` table"]
        );
    }

    #[test]
    fn a_missing_name_points_at_the_runbook_header() {
        let diags = load(
            "[runbook]\nowner = 'me'\n[[step]]\nid = 'a'\ncheck = 'command'\nshell = 'true'\n",
        )
        .unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].message, "missing key `name` in [runbook]");
        assert_eq!(diags[0].span, 0..9);
    }

    #[test]
    fn expect_may_be_written_as_a_subtable() {
        let runbook = load(
            "[runbook]\nname = 'x'\n[[step]]\nid = 'a'\ncheck = 'http'\nurl = 'http://127.0.0.1/'\n[step.expect]\nstatus = 204\n",
        )
        .unwrap();
        let CheckSpec::Http(http) = &*runbook.steps[0].check else {
            panic!("http")
        };
        let status = http.expect.status.as_ref().unwrap();
        assert!(status.accepts(204, &crate::check::expect::NoScope));
    }

    #[test]
    fn a_table_where_a_value_belongs_is_named_plainly() {
        let msgs =
            messages("runbook = 'x'\n[[step]]\nid = 'a'\ncheck = 'command'\nshell = 'true'\n");
        assert_eq!(msgs, ["invalid type: string \"x\", expected a table"]);
    }

    #[test]
    fn top_level_step_keys_are_explained() {
        let diags = load("id = 'a'\n[runbook]\nname = 'x'\n[[step]]\nid = 'a'\ncheck = 'command'\nshell = 'true'\n").unwrap_err();
        assert_eq!(diags[0].message, "unknown key `id`");
        assert_eq!(
            diags[0].help.as_deref(),
            Some("step keys belong under a `[[step]]` header")
        );
    }

    #[test]
    fn every_problem_of_a_kind_is_reported_though_its_table_is_read_once() {
        // The kind's table is handed to the deserializer without a copy; a
        // problem makes the loader build it again to find the others.
        let msgs = messages(
            "[runbook]\nname = 'x'\n[secrets]\nrequired = ['A']\n\
             [[step]]\nid = 'a'\ncheck = 'http'\nurl = 'http://127.0.0.1/'\nmethd = 'GET'\nverify_tls = 'no'\nexpect = { staus = 200 }\n\
             [[step]]\nid = 'b'\ncheck = 'secret'\nname = 'B'\n\
             [[step]]\nid = 'c'\ncheck = 'webhook'\nurl = 'http://127.0.0.1/'\nsecret = '{{secret:A}}'\nevent = 'x{{y}}'\n",
        );
        assert_eq!(msgs.len(), 6, "{msgs:?}");
        assert_eq!(msgs[0], "unknown key `methd` in step `a`");
        assert_eq!(msgs[1], "invalid type: string \"no\", expected a boolean");
        assert_eq!(msgs[2], "unknown key `staus` in `expect` of step `a`");
        assert_eq!(msgs[3], "secret `B` is not declared in [secrets]");
        assert!(msgs[4..]
            .iter()
            .any(|m| m.starts_with("unknown webhook event `x{{y}}`")));
        assert!(msgs[4..]
            .iter()
            .any(|m| m.starts_with("`event` in step `c` does not take templates")));
    }

    #[test]
    fn a_capture_dependency_can_close_a_cycle() {
        // `b` uses a capture of `a` (so depends on it); `a` depends on `b`.
        let msgs = messages(
            "[runbook]\nname = 'x'\n\
             [[step]]\nid = 'a'\ncheck = 'http'\nurl = 'http://127.0.0.1/'\ncapture = { v = 'v' }\ndepends_on = ['b']\n\
             [[step]]\nid = 'b'\ncheck = 'http'\nurl = 'http://127.0.0.1/{{steps.a.v}}'\n",
        );
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].starts_with("dependency cycle: `a` → `b` → `a`"),
            "{msgs:?}"
        );
    }

    /// A check file above [`SECTIONED_MIN_BYTES`]: `[secrets]` and `[vars]`
    /// first, checks with sub-tables, dependencies, templates and a
    /// multi-line string holding a `[[check]]` line, `[defaults]` last.
    fn large_check_file(checks: usize) -> String {
        generated_check_file(checks, true)
    }

    /// The same without what spans checks (`depends_on`, captures) when
    /// `linked` is false.
    fn generated_check_file(checks: usize, linked: bool) -> String {
        let mut source = String::from(
            "# generated\n[secrets]\nrequired = ['BENCH_TOKEN']\n\n[vars]\nhost = '127.0.0.1'\n",
        );
        for n in 0..checks {
            source.push_str(&format!(
                "\n[[check]]\nid = 'c{n}'\ncheck = 'http'\nurl = 'http://{{{{host}}}}:18080/u/{n}'\n\
                 headers = {{ Authorization = 'Bearer {{{{secret:BENCH_TOKEN}}}}' }}\ntags = ['n={n}']\n"
            ));
            if linked && n % 5 == 1 {
                source.push_str(&format!("depends_on = ['c{}']\n", n - 1));
            }
            if n % 7 == 2 {
                source.push_str("hint = \"\"\"\n[[check]]\nid = 'not-a-check'\n\"\"\"\n");
            }
            if linked && n % 11 == 4 {
                source.push_str(
                    "capture = { v = 'id' }\nexpect = { status = { ge = 200, lt = 300 }, json = { count = { gt = 0 }, \"$.items[*].id\" = { all = { gt = 0 } } }, headers = { \"content-type\" = { contains = 'json' } } }\n",
                );
            } else if linked && n % 11 == 5 {
                let from = n - 1;
                source.push_str(&format!(
                    "when = {{ \"{{{{steps.c{from}.v}}}}\" = {{ gt = 100 }} }}\njson = {{ a = \"{{{{steps.c{from}.v}}}}\", b = [1, 'x'] }}\n"
                ));
            } else if n % 3 == 0 {
                source.push_str("[check.expect]\nstatus = 200\nbody_contains = 'ok'\n");
            }
        }
        source.push_str("\n[defaults]\nretries = 3\ntimeout = '7s'\n");
        assert!(source.len() > SECTIONED_MIN_BYTES, "{}", source.len());
        source
    }

    #[test]
    fn a_large_check_file_read_by_section_gives_the_same_checks_as_read_whole() {
        let checks = 2_000;
        let source = large_check_file(checks);
        let env = |_: &str| None;
        let by_section = parse_checks_by_section(&source, &env).expect("read by section");
        let whole = parse_document(&source, &env, Document::Checks).expect("read whole");
        assert_eq!(by_section.steps.len(), checks);
        assert_eq!(
            format!("{:?}", by_section.steps),
            format!("{:?}", whole.steps)
        );
        assert_eq!(
            format!("{:?}", by_section.secrets),
            format!("{:?}", whole.secrets)
        );
        assert_eq!(by_section.vars, whole.vars);
        // `[defaults]` written after the checks still applies to them.
        let last = by_section.steps.last().unwrap();
        assert_eq!(last.policy.retries, 3);
        assert_eq!(last.policy.timeout, std::time::Duration::from_secs(7));
        assert_eq!(last.line, whole.steps.last().unwrap().line);
        // The multi-line string kept its `[[check]]` line.
        assert!(by_section.steps[2]
            .hint
            .as_deref()
            .unwrap()
            .contains("[[check]]"));
        // The public entry point takes this path and agrees too.
        let file = load_check_file_with_env(Path::new("t.toml"), &source, &env).unwrap();
        assert_eq!(
            format!("{:?}", file.checks[checks - 1]),
            format!("{last:?}")
        );
        assert!(is_check_file(&source));
    }

    /// A large file whose checks stand alone (no `depends_on`, no
    /// captures), with sub-tables, multi-line strings and `[defaults]` last.
    fn self_contained_check_file(checks: usize) -> String {
        generated_check_file(checks, false)
    }

    /// `source` written to a file of its own.
    fn on_disk(source: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), source).unwrap();
        file
    }

    fn open_chunks(file: &tempfile::NamedTempFile) -> Option<CheckChunks> {
        CheckChunks::open(file.path(), Box::new(|_| None)).unwrap()
    }

    fn all_chunks(source: String) -> Result<Vec<Step>, ReadWhole> {
        let file = on_disk(&source);
        let mut chunks = open_chunks(&file).expect("read in chunks");
        let mut steps = Vec::new();
        let mut sizes = Vec::new();
        while let Some(chunk) = chunks.next_chunk(Path::new("t.toml")) {
            let chunk = chunk?;
            sizes.push(chunk.len());
            steps.extend(chunk);
        }
        assert!(sizes.iter().all(|&n| n <= CHUNK_CHECKS), "{sizes:?}");
        assert!(sizes.len() > 1, "{sizes:?}");
        Ok(steps)
    }

    #[test]
    fn a_large_self_contained_check_file_read_in_chunks_gives_the_same_checks_as_read_whole() {
        let checks = 2_500;
        let source = self_contained_check_file(checks);
        let env = |_: &str| None;
        let whole = load_check_file_with_env(Path::new("t.toml"), &source, &env).unwrap();
        let chunked = all_chunks(source.clone()).unwrap();
        assert_eq!(chunked.len(), checks);
        assert_eq!(format!("{chunked:?}"), format!("{:?}", whole.checks));
        let last = chunked.last().unwrap();
        assert_eq!(
            last.policy.retries, 3,
            "[defaults] after the checks applies"
        );
        assert_eq!(last.line, whole.checks.last().unwrap().line);
        let on_disk = on_disk(&source);
        let chunks = open_chunks(&on_disk).unwrap();
        use sha2::{Digest, Sha256};
        assert_eq!(
            chunks.sha256(),
            hex::encode(Sha256::digest(source.as_bytes()))
        );
        assert_eq!(chunks.checks(), checks);
        let file = chunks.file(Path::new("t.toml"));
        assert_eq!(file.vars, whole.vars);
        assert_eq!(
            format!("{:?}", file.secrets),
            format!("{:?}", whole.secrets)
        );
        assert!(file.checks.is_empty() && file.source.is_empty());
    }

    #[test]
    fn templates_in_chunks_keep_the_spans_of_the_whole_file() {
        // Spans are file offsets: a chunk's templates point where the whole
        // file's do (the chunk's text starts elsewhere in memory).
        let source = self_contained_check_file(2_100);
        let env = |_: &str| None;
        let whole = load_check_file_with_env(Path::new("t.toml"), &source, &env).unwrap();
        let chunked = all_chunks(source).unwrap();
        let url = |step: &Step| match &*step.check {
            crate::check::CheckSpec::Http(http) => format!("{:?}", http.url),
            _ => String::new(),
        };
        for i in [0, 999, 1_000, 2_099] {
            assert_eq!(url(&chunked[i]), url(&whole.checks[i]), "check {i}");
            assert!(url(&chunked[i]).contains(".."), "{}", url(&chunked[i]));
        }
    }

    #[test]
    fn a_file_changed_after_it_was_opened_is_refused_at_its_end_at_the_latest() {
        let source = self_contained_check_file(2_500);
        let file = on_disk(&source);
        let mut chunks = open_chunks(&file).unwrap();
        let first = chunks.next_chunk(Path::new("t.toml")).unwrap().unwrap();
        assert_eq!(first.len(), CHUNK_CHECKS);
        // Same length, same sections, one byte different near the end.
        let changed = source.replace("u/2400'", "u/2401'");
        assert_ne!(changed, source);
        std::fs::write(file.path(), &changed).unwrap();
        let mut results = Vec::new();
        while let Some(chunk) = chunks.next_chunk(Path::new("t.toml")) {
            results.push(chunk.map(|c| c.len()));
        }
        assert_eq!(
            results.last(),
            Some(&Err(ReadWhole::Changed)),
            "{results:?}"
        );
        // Opened again, the file reads in chunks with its new hash.
        let again = open_chunks(&file).unwrap();
        assert_ne!(again.sha256(), chunks.sha256());
    }

    #[test]
    fn a_chunk_is_read_whole_when_checks_depend_on_others_or_anything_is_wrong() {
        // depends_on and captures span checks: not for chunks.
        assert_eq!(
            all_chunks(large_check_file(2_000)).err(),
            Some(ReadWhole::Unusual)
        );
        // A problem deep in the file: the whole-file reader reports it.
        let broken = self_contained_check_file(2_000).replace("id = 'c1500'", "id = 'c 1500'");
        assert_eq!(all_chunks(broken).err(), Some(ReadWhole::Unusual));
        let unknown =
            self_contained_check_file(2_000).replace("[vars]", "[vars]\nx = 1\ny = { z = 1 }");
        assert!(open_chunks(&on_disk(&unknown)).is_none());
        // Not UTF-8, or a section the splitter is unsure of: read whole.
        let mut latin1 = self_contained_check_file(2_000).into_bytes();
        latin1.extend_from_slice(b"# caf\xe9\n");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &latin1).unwrap();
        assert!(open_chunks(&file).is_none());
        let twice = self_contained_check_file(2_000) + "\n[vars]\nz = 'a'\n";
        assert!(open_chunks(&on_disk(&twice)).is_none());
        // Small files are read whole.
        let small = "[[check]]\nid = 'a'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n";
        assert!(open_chunks(&on_disk(small)).is_none());
        // A file that is not there is an error.
        assert!(CheckChunks::open(Path::new("/nonexistent/t.toml"), Box::new(|_| None)).is_err());
        // An id in two chunks is for the caller to find.
        assert!(CheckChunks::ids_unique(["a", "b", "c"].into_iter(), 3));
        assert!(!CheckChunks::ids_unique(["a", "b", "a"].into_iter(), 3));
    }

    /// Every chunk of `source` through [`CheckChunks::each_chunk_on_threads`]:
    /// the checks in the order handed out, or the error.
    fn chunks_on_threads(source: &str, threads: usize) -> Result<Vec<Step>, ReadWhole> {
        let file = on_disk(source);
        let mut chunks = open_chunks(&file).expect("read in chunks");
        let mut steps = Vec::new();
        chunks
            .each_chunk_on_threads(Path::new("t.toml"), threads, |c| c, |c| steps.extend(c))
            .map(|()| steps)
    }

    /// Every chunk of the file at `path` through [`CheckChunks::read_once`]
    /// on `threads` threads: how it ended, the checks handed out, and the
    /// count `expect` was told.
    fn read_once(path: &Path, threads: usize) -> (ReadOnce, Vec<Step>, Option<usize>) {
        let mut steps = Vec::new();
        let expected = std::cell::Cell::new(None);
        let ended = CheckChunks::read_once(
            path,
            Box::new(|_| None),
            threads,
            |c| c,
            |n| expected.set(Some(n)),
            |c| {
                assert!(
                    expected.get().is_some(),
                    "told the count before the first chunk"
                );
                steps.extend(c)
            },
        )
        .unwrap();
        (ended, steps, expected.get())
    }

    #[test]
    fn a_file_whose_tables_come_first_is_read_once_as_two_passes_read_it() {
        // `[defaults]` moved above the checks (the generator puts it last).
        let last = "\n[defaults]\nretries = 3\ntimeout = '7s'\n";
        let source = self_contained_check_file(4_500).replace(last, "\n");
        let source = source.replacen(
            "[vars]",
            "[defaults]\nretries = 3\ntimeout = '7s'\n\n[vars]",
            1,
        );
        let file = on_disk(&source);
        let two_passes = format!("{:?}", all_chunks(source.clone()).unwrap());
        let opened = open_chunks(&file).unwrap();
        for threads in [1, 2, 3] {
            let (ended, steps, expected) = read_once(file.path(), threads);
            let ReadOnce::Read(chunks) = ended else {
                panic!("{threads} threads: not read once");
            };
            assert_eq!(steps.len(), 4_500);
            // Anchored at the file's folder; `all_chunks` reads `t.toml`.
            assert!(steps
                .iter()
                .all(|s| s.base_dir == file.path().parent().unwrap()));
            let steps: Vec<Step> = steps
                .into_iter()
                .map(|s| Step {
                    base_dir: std::path::PathBuf::new(),
                    ..s
                })
                .collect();
            assert!(format!("{steps:?}") == two_passes, "{threads} threads");
            // The defaults above the checks were applied.
            assert!(steps.iter().all(|s| s.policy.max_attempts() == 4));
            // What it learnt is what the two passes learn: hash, count, tables.
            assert_eq!(chunks.sha256(), opened.sha256());
            assert_eq!(chunks.checks(), 4_500);
            assert_eq!(
                format!("{:?}", chunks.file(file.path())),
                format!("{:?}", opened.file(file.path()))
            );
            // The count told is the first chunk's share of the file: within
            // a few percent for checks of about one size.
            let expected = expected.unwrap();
            assert!((4_300..=4_700).contains(&expected), "{expected}");
            // And the file reads again from what it learnt.
            let mut resumed =
                CheckChunks::resume(file.path(), Box::new(|_| None), &chunks.learnt()).unwrap();
            let again: usize = std::iter::from_fn(|| resumed.next_chunk(Path::new("t.toml")))
                .map(|c| c.unwrap().len())
                .sum();
            assert_eq!(again, 4_500);
        }
    }

    #[test]
    fn a_table_below_a_check_asks_for_two_passes_and_problems_for_the_whole_reader() {
        // The generator's `[defaults]` comes last: the checks read so far
        // were built without it.
        let file = on_disk(&self_contained_check_file(2_500));
        assert!(matches!(read_once(file.path(), 2).0, ReadOnce::TwoPasses));
        // A check that does not load, a table that does not, a small file
        // that links its checks, no check at all: read whole.
        let broken = self_contained_check_file(2_500)
            .replace("\n[defaults]\nretries = 3\ntimeout = '7s'\n", "\n")
            .replace("id = 'c1500'", "id = 'c 1500'");
        assert!(matches!(
            read_once(on_disk(&broken).path(), 2).0,
            ReadOnce::Whole
        ));
        let bad_vars =
            "[vars]\nx = { y = 1 }\n\n[[check]]\nid = 'a'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n";
        assert!(matches!(
            read_once(on_disk(bad_vars).path(), 2).0,
            ReadOnce::Whole
        ));
        let linked = "[[check]]\nid = 'a'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n\n\
                      [[check]]\nid = 'b'\ncheck = 'tcp'\nhost = 'h'\nport = 1\ndepends_on = ['a']\n";
        assert!(matches!(
            read_once(on_disk(linked).path(), 2).0,
            ReadOnce::Whole
        ));
        assert!(matches!(
            read_once(on_disk("[vars]\nx = 'y'\n").path(), 1).0,
            ReadOnce::Whole
        ));
        // A small plain file is read once too.
        let small = "[[check]]\nid = 'a'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n";
        let (ended, steps, expected) = read_once(on_disk(small).path(), 2);
        assert!(matches!(ended, ReadOnce::Read(_)));
        assert_eq!((steps.len(), expected), (1, Some(1)));
    }

    #[test]
    fn chunks_parsed_on_several_threads_come_out_as_read_one_by_one() {
        let source = self_contained_check_file(5_500);
        let serial = format!("{:?}", all_chunks(source.clone()).unwrap());
        for threads in [1, 2, 3] {
            let parallel = chunks_on_threads(&source, threads).unwrap();
            assert_eq!(parallel.len(), 5_500);
            assert!(format!("{parallel:?}") == serial, "{threads} threads");
        }
        // A problem in a chunk ends it as it ends the serial read.
        let broken = source.replace("id = 'c4500'", "id = 'c 4500'");
        assert_eq!(
            chunks_on_threads(&broken, 2).err(),
            Some(ReadWhole::Unusual)
        );
        // A file changed after it was opened is refused at its end.
        let file = on_disk(&source);
        let mut chunks = open_chunks(&file).unwrap();
        std::fs::write(file.path(), source.replace("u/5400'", "u/5401'")).unwrap();
        let mut handed = 0;
        let result =
            chunks.each_chunk_on_threads(Path::new("t.toml"), 2, |c| c.len(), |n| handed += n);
        assert_eq!(result, Err(ReadWhole::Changed));
        assert!(handed < 5_500, "{handed}");
    }

    #[test]
    fn a_syntax_error_deep_in_a_large_check_file_points_at_its_line_and_column() {
        let mut source = large_check_file(2_000);
        source.push_str("\n[[check]]\nid = 'late'\ncheck = = 'http'\n");
        let line = source.lines().count();
        let env = |_: &str| None;
        assert!(parse_checks_by_section(&source, &env).is_none());
        let Err(LoadError::Invalid { rendered, .. }) =
            load_check_file_with_env(Path::new("t.toml"), &source, &env)
        else {
            panic!("a syntax error")
        };
        assert!(rendered.contains(&format!("t.toml:{line}:9")), "{rendered}");
        assert!(rendered.contains("invalid TOML"), "{rendered}");
    }

    #[test]
    fn a_problem_in_a_large_check_file_is_reported_as_when_read_whole() {
        let mut source = large_check_file(2_000);
        source.push_str("\n[[check]]\nid = 'c7'\ncheck = 'http'\nurl = 'http://127.0.0.1/'\n");
        let env = |_: &str| None;
        let Err(LoadError::Invalid { diagnostics, .. }) =
            load_check_file_with_env(Path::new("t.toml"), &source, &env)
        else {
            panic!("a duplicate id")
        };
        let Err(whole) = parse_document(&source, &env, Document::Checks) else {
            panic!("a duplicate id")
        };
        assert_eq!(format!("{diagnostics:?}"), format!("{whole:?}"));
    }

    #[test]
    fn errors_in_secrets_do_not_cascade_into_every_reference() {
        let msgs = messages(
            "[runbook]\nname = 'x'\n[secrets]\nrequire = ['T']\n\
             [[step]]\nid = 'a'\ncheck = 'http'\nurl = 'http://127.0.0.1/'\nheaders = { A = '{{secret:T}}' }\n",
        );
        assert_eq!(msgs, ["unknown key `require` in [secrets]"]);
    }
}
