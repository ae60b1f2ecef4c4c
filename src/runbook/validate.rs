//! Rules that span steps: unique ids, `depends_on` targets and cycles, every
//! template reference resolving at load time, the kind's own checks; and the
//! expiry warning. The main function here is [`validate_steps`].

use crate::check::command::CommandCheck;
use crate::check::expect::condition::Conditions;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

// Per-check ids: hashbrown's own hasher, seeded per process, not SipHash.
use foldhash::{HashMap, HashMapExt};

use super::model::{Backoff, Defaults, RetryPolicy, Runbook, SecretsConfig, Step};
use crate::check::CheckSpec;
use crate::core::diagnostics::{did_you_mean, Diagnostic};
use crate::core::template::{Reference, Template};

/// One `[[step]]` as read, before cross-step validation.
#[derive(Debug, Clone)]
pub(crate) struct RawStep {
    /// What the file calls it: "step" (runbooks) or "check" (check files).
    pub noun: &'static str,
    /// The `[[step]]` header.
    pub header: Range<usize>,
    /// 1-based line of the header.
    pub line: usize,
    pub id: Option<(String, Range<usize>)>,
    pub title: Option<String>,
    /// The kind name and the span of its value.
    pub check: Option<(String, Range<usize>)>,
    /// `None` when the kind part had errors (already reported).
    pub spec: Option<Box<CheckSpec>>,
    /// Every template in the kind's parameters that holds a placeholder
    /// (see [`RawStep::placeholder_templates`]).
    pub templates: Vec<Template>,
    /// Whether the kind's templates are checked where they are, in `spec`,
    /// rather than copied into `templates` (`plain_http`'s steps: a copy
    /// a check, in each pass over a sweep's file, only to be checked and
    /// dropped).
    pub templates_in_spec: bool,
    pub depends_on: Vec<(String, Range<usize>)>,
    pub retries: Option<u32>,
    pub timeout: Option<Duration>,
    pub backoff: Option<Backoff>,
    pub mutating: bool,
    pub hint: Option<String>,
    /// Who this step escalates to, instead of the runbook's owner.
    pub owner: Option<String>,
    /// Read-only commands run after the last failed attempt.
    pub collect: Vec<CommandCheck>,
    /// Conditions under which the step runs.
    pub when: Conditions,
    pub tags: Vec<String>,
    /// String values of the kind's keys, to point at names like the `secret`
    /// check's `name`.
    pub string_values: Vec<(String, Range<usize>)>,
    pub policy: RetryPolicy,
}

impl RawStep {
    /// Moves the spans read from a section parsed on its own (`offset` bytes
    /// into the file) to the file's. Templates already have the file's spans
    /// (see [`crate::core::template::with_span_offset`]).
    pub(crate) fn shift_spans(&mut self, offset: usize) {
        if offset == 0 {
            return;
        }
        let shift = |span: &mut Range<usize>| *span = span.start + offset..span.end + offset;
        shift(&mut self.header);
        for (_, span) in self.id.iter_mut().chain(self.check.iter_mut()) {
            shift(span);
        }
        for (_, span) in self
            .depends_on
            .iter_mut()
            .chain(self.string_values.iter_mut())
        {
            shift(span);
        }
    }

    /// The kind's templates that hold placeholders, in the order the general
    /// path collects them: `templates`, or the spec's own.
    pub(crate) fn placeholder_templates(&self) -> impl Iterator<Item = &Template> {
        let in_spec = match self.spec.as_deref() {
            Some(CheckSpec::Http(http)) if self.templates_in_spec => Some(http),
            _ => None,
        };
        self.templates.iter().chain(
            in_spec
                .into_iter()
                .flat_map(|http| http.placeholder_templates()),
        )
    }

    pub(crate) fn new(header: Range<usize>, line: usize, noun: &'static str) -> Self {
        let defaults = Defaults::default();
        RawStep {
            noun,
            header,
            line,
            id: None,
            title: None,
            check: None,
            spec: None,
            templates: Vec::new(),
            templates_in_spec: false,
            depends_on: Vec::new(),
            retries: None,
            timeout: None,
            backoff: None,
            mutating: false,
            hint: None,
            owner: None,
            collect: Vec::new(),
            when: Conditions::default(),
            tags: Vec::new(),
            string_values: Vec::new(),
            policy: RetryPolicy {
                retries: defaults.retries,
                backoff: defaults.backoff,
                timeout: defaults.timeout,
            },
        }
    }

    /// Builds the step's policy: its own overrides over `defaults`.
    pub(crate) fn apply_defaults(&mut self, defaults: &Defaults) {
        self.policy = RetryPolicy {
            retries: self.retries.unwrap_or(defaults.retries),
            backoff: self.backoff.unwrap_or(defaults.backoff),
            timeout: self.timeout.unwrap_or(defaults.timeout),
        };
    }

    fn label(&self) -> String {
        match &self.id {
            Some((id, _)) => format!("{} `{id}`", self.noun),
            None => format!("the {} on line {}", self.noun, self.line),
        }
    }

    fn id(&self) -> Option<&str> {
        self.id.as_ref().map(|(id, _)| id.as_str())
    }
}

/// Checks everything that involves more than one step or table, adds the
/// implicit dependencies of capture references, and returns the steps (only
/// meaningful when no diagnostic was added anywhere).
pub(crate) fn validate_steps(
    source: &str,
    steps: &mut [RawStep],
    var_names: &BTreeSet<String>,
    secrets: Option<&SecretsConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Step> {
    let index = check_ids(steps, diagnostics);
    for i in 0..steps.len() {
        check_templates(
            source,
            steps,
            i,
            &index,
            var_names,
            secrets,
            env,
            diagnostics,
        );
        let step = &steps[i];
        if let Some(spec) = &step.spec {
            let anchor = step
                .check
                .as_ref()
                .map_or(step.header.clone(), |(_, s)| s.clone());
            for name in spec.named_secrets() {
                if let Some(secrets) = secrets.filter(|s| !s.declared().any(|d| d == name)) {
                    let span = step
                        .string_values
                        .iter()
                        .find(|(value, _)| value == name)
                        .map_or(anchor.clone(), |(_, span)| span.clone());
                    diagnostics.push(undeclared_secret(name, span, secrets));
                }
            }
            if let CheckSpec::Command(command) = &**spec {
                let is_secret_capture = |source: &str, name: &str| {
                    index
                        .get(source)
                        .and_then(|&j| steps[j].spec.as_ref())
                        .is_some_and(|s| s.secret_capture_names().contains(&name))
                };
                for (template, reference) in command.secrets_on_command_line(&is_secret_capture) {
                    let span = reference_span(source, template, reference);
                    diagnostics.push(secret_on_command_line(reference, span));
                }
            }
            for (message, span) in spec.validate() {
                let span = if span.is_empty() && span.start == 0 {
                    anchor.clone()
                } else {
                    span
                };
                diagnostics.push(Diagnostic::new(message, span));
            }
        }
    }
    check_dependencies(steps, &index, diagnostics);

    // Sized once (see `parse_steps`). The raw steps are not read after
    // this, so what they hold moves (not copies) into the steps.
    let mut valid = Vec::with_capacity(steps.len());
    valid.extend(steps.iter_mut().filter_map(|raw| {
        if raw.id.is_none() || raw.spec.is_none() {
            return None;
        }
        // Before the spec moves: its templates may be the ones to read.
        let uses_captures_of = capture_sources(raw.placeholder_templates());
        Some(Step {
            id: raw.id.take()?.0,
            title: raw.title.take(),
            check: raw.spec.take()?,
            depends_on: raw.depends_on.drain(..).map(|(d, _)| d).collect(),
            policy: raw.policy,
            mutating: raw.mutating,
            hint: raw.hint.take(),
            owner: raw.owner.take(),
            collect: std::mem::take(&mut raw.collect),
            when: std::mem::take(&mut raw.when),
            tags: std::mem::take(&mut raw.tags),
            uses_captures_of,
            line: raw.line,
            // Set by the loader, which knows the file.
            base_dir: PathBuf::new(),
        })
    }));
    valid
}

/// The steps whose captures `templates` use, each once, in order.
fn capture_sources<'t>(templates: impl Iterator<Item = &'t Template>) -> Vec<String> {
    let mut sources: Vec<String> = Vec::new();
    for template in templates {
        for reference in template.references() {
            if let Reference::Capture { step, .. } = reference {
                if !sources.contains(step) {
                    sources.push(step.clone());
                }
            }
        }
    }
    sources
}

/// Ids must be unique and usable in `{{steps.ID.NAME}}`. Returns each id's
/// first step.
fn check_ids(steps: &[RawStep], diagnostics: &mut Vec<Diagnostic>) -> HashMap<String, usize> {
    // Sized once: a chunk of a sweep holds 1,000 steps.
    let mut index: HashMap<String, usize> = HashMap::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let Some((id, span)) = &step.id else { continue };
        let noun = step.noun;
        let valid = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            diagnostics.push(
                Diagnostic::new(format!("{noun} id `{id}` is not a valid id"), span.clone())
                    .with_help(
                        "use letters, digits, `_` and `-` only (ids appear in `{{steps.ID.NAME}}`)",
                    ),
            );
        }
        match index.get(id) {
            Some(&first) => diagnostics.push(
                Diagnostic::new(format!("duplicate {noun} id `{id}`"), span.clone()).with_help(
                    format!("first used by the {noun} on line {}", steps[first].line),
                ),
            ),
            None => {
                index.insert(id.clone(), i);
            }
        }
    }
    index
}

/// `{{secret:...}}` in a command's `argv`/`shell`: readable by every local
/// user while the command runs.
fn secret_on_command_line(reference: &Reference, span: Range<usize>) -> Diagnostic {
    Diagnostic::new(
        format!("{reference} on the command line: every local user can read a process's arguments (`ps`, /proc/PID/cmdline) and audit logs keep them"),
        span,
    )
    .with_help(
        "pass it in `env` (`env = { TOKEN = \"{{secret:NAME}}\" }`, then read `$TOKEN` in the script, or a tool's own variable), or on stdin where the tool reads it there; if the tool accepts it only as an argument, add `secret_in_argv = \"accept-risk\"` to the step (recorded in the evidence)",
    )
}

fn undeclared_secret(name: &str, span: Range<usize>, secrets: &SecretsConfig) -> Diagnostic {
    Diagnostic::new(
        format!("secret `{name}` is not declared in [secrets]"),
        span,
    )
    .with_optional_help(did_you_mean(name, secrets.declared()).or_else(|| {
        Some(format!(
            "add \"{name}\" to `required` or `optional` in [secrets]"
        ))
    }))
}

#[allow(clippy::too_many_arguments)]
fn check_templates(
    source: &str,
    steps: &mut [RawStep],
    i: usize,
    index: &HashMap<String, usize>,
    var_names: &BTreeSet<String>,
    secrets: Option<&SecretsConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut implicit = Vec::new();
    let step = &steps[i];
    for template in step.placeholder_templates() {
        for reference in template.references() {
            let span = reference_span(source, template, reference);
            match reference {
                Reference::Var(name) => {
                    if !var_names.contains(name) {
                        diagnostics.push(
                            Diagnostic::new(
                                format!("unknown variable `{reference}` in {}", step.label()),
                                span,
                            )
                            .with_optional_help(
                                did_you_mean(name, var_names.iter().map(String::as_str))
                                    .or_else(|| Some(format!("define `{name}` in [vars]"))),
                            ),
                        );
                    }
                }
                Reference::Secret(name) => {
                    if let Some(secrets) = secrets.filter(|s| !s.declared().any(|d| d == name)) {
                        diagnostics.push(undeclared_secret(name, span, secrets));
                    }
                }
                Reference::Env(name) => {
                    if env(name).is_none() {
                        diagnostics.push(
                            Diagnostic::new(format!("environment variable `{name}` is not set"), span)
                                .with_help("`{{env:NAME}}` must resolve when the runbook loads; set it, or use [vars]"),
                        );
                    }
                }
                Reference::Capture {
                    step: source_id,
                    name,
                } => {
                    match check_capture(steps, i, index, source_id, name, reference, span.clone()) {
                        Ok(true) => implicit.push((source_id.clone(), span)),
                        Ok(false) => {}
                        Err(diagnostic) => diagnostics.push(diagnostic),
                    }
                }
            }
        }
    }
    // A step that uses a capture cannot run unless the capturing step passed.
    let step = &mut steps[i];
    for (dep, span) in implicit {
        if !step.depends_on.iter().any(|(d, _)| *d == dep) {
            step.depends_on.push((dep, span));
        }
    }
}

/// Whether a capture reference is valid and adds a dependency (`Ok(true)`),
/// cannot be checked because the source step has other errors (`Ok(false)`),
/// or is wrong.
fn check_capture(
    steps: &[RawStep],
    i: usize,
    index: &HashMap<String, usize>,
    source_id: &str,
    name: &str,
    reference: &Reference,
    span: Range<usize>,
) -> Result<bool, Diagnostic> {
    let noun = steps[i].noun;
    let Some(&j) = index.get(source_id) else {
        let earlier = steps[..i].iter().filter_map(RawStep::id);
        return Err(Diagnostic::new(
            format!("`{reference}` names unknown {noun} `{source_id}`"),
            span,
        )
        .with_optional_help(did_you_mean(source_id, earlier)));
    };
    if j == i {
        return Err(Diagnostic::new(
            format!("`{reference}` uses a capture of its own {noun}"),
            span,
        )
        .with_help(format!("captures are available to later {noun}s only")));
    }
    if j > i {
        return Err(Diagnostic::new(
            format!(
                "`{reference}` uses {noun} `{source_id}`, which comes later (line {})",
                steps[j].line
            ),
            span,
        )
        .with_help(format!(
            "captures come from earlier {noun}s; move `{source_id}` above this {noun}"
        )));
    }
    let Some(spec) = &steps[j].spec else {
        return Ok(false);
    };
    let names = spec.capture_names();
    if names.contains(&name) {
        return Ok(true);
    }
    let help = did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
        if names.is_empty() {
            format!("{noun} `{source_id}` captures nothing")
        } else {
            format!("{noun} `{source_id}` captures: {}", names.join(", "))
        }
    });
    Err(Diagnostic::new(
        format!("{noun} `{source_id}` has no capture `{name}`"),
        span,
    )
    .with_help(help))
}

/// Narrows a template's span to the placeholder itself when the source text
/// shows it verbatim (it does unless escapes were used).
fn reference_span(source: &str, template: &Template, reference: &Reference) -> Range<usize> {
    let span = template.span();
    let Some(text) = source.get(span.clone()) else {
        return span;
    };
    let mut offset = 0;
    while let Some(open) = text[offset..].find("{{") {
        let start = offset + open;
        let Some(close) = text[start..].find("}}") else {
            break;
        };
        let end = start + close + 2;
        if let Ok(one) = Template::parse(&text[start..end]) {
            if one.references().next() == Some(reference) {
                return span.start + start..span.start + end;
            }
        }
        offset = end;
    }
    span
}

fn check_dependencies(
    steps: &[RawStep],
    index: &HashMap<String, usize>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    // edges[i] = (target step, span of the reference that made the edge)
    let mut edges: Vec<Vec<(usize, Range<usize>)>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for (dep, span) in &step.depends_on {
            match index.get(dep) {
                Some(&j) if j == i || step.id() == Some(dep.as_str()) => diagnostics.push(
                    Diagnostic::new(format!("{} depends on itself", step.label()), span.clone())
                        .with_help("remove it from `depends_on`"),
                ),
                Some(&j) => edges[i].push((j, span.clone())),
                None => diagnostics.push(
                    Diagnostic::new(
                        format!("{} depends on unknown {} `{dep}`", step.label(), step.noun),
                        span.clone(),
                    )
                    .with_optional_help(did_you_mean(dep, steps.iter().filter_map(RawStep::id))),
                ),
            }
        }
    }
    let adjacency: Vec<Vec<usize>> = edges
        .iter()
        .map(|e| e.iter().map(|(j, _)| *j).collect())
        .collect();
    for cycle in find_cycles(&adjacency) {
        let (&first, &last) = (
            cycle.first().expect("cycles are never empty"),
            cycle.last().expect("non-empty"),
        );
        let span = edges[last]
            .iter()
            .find(|(j, _)| *j == first)
            .map_or(steps[last].header.clone(), |(_, s)| s.clone());
        let names: Vec<String> = cycle
            .iter()
            .chain(std::iter::once(&first))
            .map(|&k| format!("`{}`", steps[k].id().unwrap_or("?")))
            .collect();
        diagnostics.push(
            Diagnostic::new(
                format!(
                    "dependency cycle: {} (each depends on the next)",
                    names.join(" → ")
                ),
                span,
            )
            .with_help(format!(
                "no {} in a cycle could ever run; remove one of these dependencies",
                steps[first].noun
            )),
        );
    }
}

/// Cycles in a dependency graph (`edges[i]` = the steps `i` depends on),
/// each once, as the steps in order: the last depends on the first.
/// Self-dependencies are not cycles here (they are reported on their own).
pub(crate) fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        New,
        OnPath,
        Done,
    }
    fn visit(
        n: usize,
        edges: &[Vec<usize>],
        color: &mut [Color],
        path: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        color[n] = Color::OnPath;
        path.push(n);
        for &m in &edges[n] {
            if m == n {
                continue;
            }
            match color[m] {
                Color::OnPath => {
                    let start = path.iter().position(|&p| p == m).expect("on the path");
                    cycles.push(path[start..].to_vec());
                }
                Color::New => visit(m, edges, color, path, cycles),
                Color::Done => {}
            }
        }
        path.pop();
        color[n] = Color::Done;
    }
    let mut color = vec![Color::New; edges.len()];
    let mut cycles = Vec::new();
    // One path for every walk (each leaves it empty): a sweep's chunk of
    // 1,000 unlinked checks would otherwise allocate one per check.
    let mut path = Vec::new();
    for n in 0..edges.len() {
        if color[n] == Color::New {
            visit(n, edges, &mut color, &mut path, &mut cycles);
        }
    }
    cycles
}

/// A warning when the runbook's `expires` date is before `today`:
/// "runbook expired on 2025-10-25 (31 days ago); review it and bump `expires`".
pub fn expiry_warning(runbook: &Runbook, today: jiff::civil::Date) -> Option<String> {
    let expires = runbook.meta.expires?.date?;
    let date = jiff::civil::Date::new(
        i16::try_from(expires.year).ok()?,
        i8::try_from(expires.month).ok()?,
        i8::try_from(expires.day).ok()?,
    )
    .ok()?;
    if today <= date {
        return None;
    }
    let days = date.until(today).ok()?.get_days();
    let plural = if days == 1 { "" } else { "s" };
    Some(format!(
        "runbook expired on {date} ({days} day{plural} ago); review it and bump `expires`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_no_cycle_in_a_dag() {
        assert!(find_cycles(&[vec![], vec![0], vec![0, 1]]).is_empty());
    }

    #[test]
    fn finds_a_two_step_cycle_once() {
        assert_eq!(find_cycles(&[vec![1], vec![0]]), vec![vec![0, 1]]);
    }

    #[test]
    fn finds_a_long_cycle_behind_a_tail() {
        // 0 → 1 → 2 → 3 → 1
        let cycles = find_cycles(&[vec![1], vec![2], vec![3], vec![1]]);
        assert_eq!(cycles, vec![vec![1, 2, 3]]);
    }

    #[test]
    fn ignores_self_loops() {
        assert!(find_cycles(&[vec![0]]).is_empty());
    }

    #[test]
    fn narrows_spans_to_the_placeholder() {
        let source = r#"url = "https://{{ app }}.fly.dev/{{steps.a.id}}""#;
        let start = source.find('"').unwrap();
        let template: Template = {
            use serde::Deserialize as _;
            let de = toml::de::ValueDeserializer::parse(&source[start..]).unwrap();
            Template::deserialize(de).unwrap()
        };
        // Parsed standalone, the span is relative to the value: shift it.
        let shifted = template.span().start + start..template.span().end + start;
        assert_eq!(&source[shifted], &source[start..]);
        let local = &source[start..];
        let r = Reference::Capture {
            step: "a".into(),
            name: "id".into(),
        };
        let span = reference_span(local, &template, &r);
        assert_eq!(&local[span], "{{steps.a.id}}");
        let span = reference_span(local, &template, &Reference::Var("app".into()));
        assert_eq!(&local[span], "{{ app }}");
    }
}
