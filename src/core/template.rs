//! Templates in runbook strings: `{{name}}` for vars, `{{secret:NAME}}`,
//! `{{env:NAME}}` and `{{steps.ID.NAME}}` for values captured by earlier steps.
//!
//! A [`Template`] keeps its raw text: evidence records the template, never the
//! expansion, so secret values only ever exist in memory.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a `{{...}}` placeholder refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `{{name}}`: a value from `[vars]`.
    Var(String),
    /// `{{secret:NAME}}`: a secret declared in `[secrets]`.
    Secret(String),
    /// `{{env:NAME}}`: a non-secret environment variable.
    Env(String),
    /// `{{steps.ID.NAME}}`: a value captured by an earlier step.
    Capture { step: String, name: String },
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Var(name) => write!(f, "{{{{{name}}}}}"),
            Reference::Secret(name) => write!(f, "{{{{secret:{name}}}}}"),
            Reference::Env(name) => write!(f, "{{{{env:{name}}}}}"),
            Reference::Capture { step, name } => write!(f, "{{{{steps.{step}.{name}}}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text between placeholders: a range of the raw text (no copy).
    Literal(Range<usize>),
    Ref(Reference),
}

/// A runbook string that may contain placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    span: Range<usize>,
    /// Empty when the text has no placeholder (most do not): the raw text
    /// is then the whole template, and parsing it allocates nothing more.
    parts: Vec<Part>,
}

/// Where template values come from when a step runs.
pub trait Scope {
    /// A `[vars]` value.
    fn var(&self, name: &str) -> Option<String>;
    /// A secret value, read only to build the request; never recorded.
    fn secret(&self, name: &str) -> Option<String>;
    /// A non-secret environment variable.
    fn env(&self, name: &str) -> Option<String>;
    /// A value captured by an earlier step.
    fn capture(&self, step: &str, name: &str) -> Option<String>;
}

/// A placeholder that had no value when the template was rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reference} has no value{}", why_missing(.reference))]
pub struct RenderError {
    /// The placeholder without a value.
    pub reference: Reference,
}

fn why_missing(reference: &Reference) -> &'static str {
    match reference {
        Reference::Secret(_) => " (the secret is not set in the environment or env files)",
        Reference::Capture { .. } => " (the step did not capture it)",
        Reference::Env(_) => " (the environment variable is not set)",
        Reference::Var(_) => "",
    }
}

impl Template {
    /// Parses raw text; `span` is where it stands in the runbook (for diagnostics).
    pub fn parse(raw: &str) -> Result<Self, String> {
        Template::parse_owned(raw.to_string())
    }

    /// [`Template::parse`], keeping `raw` itself.
    fn parse_owned(raw: String) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut at = 0;
        while let Some(found) = find_doubled(&raw.as_bytes()[at..], b'{') {
            let open = at + found;
            if open > at {
                parts.push(Part::Literal(at..open));
            }
            let inner = open + 2;
            let close = find_doubled(&raw.as_bytes()[inner..], b'}').ok_or_else(|| {
                format!("unclosed placeholder in `{raw}`: `{{{{` has no matching `}}}}`")
            })? + inner;
            parts.push(Part::Ref(parse_reference(raw[inner..close].trim())?));
            at = close + 2;
        }
        if !parts.is_empty() && at < raw.len() {
            parts.push(Part::Literal(at..raw.len()));
        }
        Ok(Template {
            raw,
            span: 0..0,
            parts,
        })
    }

    /// Parses text that stands at `span` in the runbook and registers it with
    /// the collector, as if it had been deserialized on its own. For strings
    /// nested in values that are deserialized whole (JSON bodies).
    pub fn parse_at(raw: &str, span: Range<usize>) -> Result<Self, String> {
        Template::parse_owned_at(raw.to_string(), span)
    }

    /// [`Template::parse_at`], keeping `raw` itself.
    fn parse_owned_at(raw: String, span: Range<usize>) -> Result<Self, String> {
        let mut template = Template::parse_owned(raw)?;
        template.span = file_span(span);
        register(&template);
        Ok(template)
    }

    /// A template with no placeholders.
    pub fn literal(text: impl Into<String>) -> Self {
        Template {
            raw: text.into(),
            span: 0..0,
            parts: Vec::new(),
        }
    }

    /// The text as written in the runbook — what evidence records.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Byte range in the runbook source (empty when not loaded from a file).
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Every placeholder, in order.
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.parts.iter().filter_map(|part| match part {
            Part::Ref(reference) => Some(reference),
            Part::Literal(_) => None,
        })
    }

    /// Whether any placeholder is a secret.
    pub fn uses_secret(&self) -> bool {
        self.references().any(|r| matches!(r, Reference::Secret(_)))
    }

    /// Expands every placeholder. The result may hold secret values: use it for
    /// the request only, and record [`Template::raw`] instead.
    pub fn render(&self, scope: &dyn Scope) -> Result<String, RenderError> {
        if self.parts.is_empty() {
            return Ok(self.raw.clone());
        }
        let mut out = String::with_capacity(self.raw.len());
        for part in &self.parts {
            match part {
                Part::Literal(range) => out.push_str(&self.raw[range.clone()]),
                Part::Ref(reference) => {
                    let value = match reference {
                        Reference::Var(name) => scope.var(name),
                        Reference::Secret(name) => scope.secret(name),
                        Reference::Env(name) => scope.env(name),
                        Reference::Capture { step, name } => scope.capture(step, name),
                    };
                    match value {
                        Some(value) => out.push_str(&value),
                        None => {
                            return Err(RenderError {
                                reference: reference.clone(),
                            })
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Expands everything but secrets, which stay as `{{secret:NAME}}`: what
    /// `runproof plan` shows.
    pub fn render_masked(&self, scope: &dyn Scope) -> String {
        if self.parts.is_empty() {
            return self.raw.clone();
        }
        let mut out = String::with_capacity(self.raw.len());
        for part in &self.parts {
            match part {
                Part::Literal(range) => out.push_str(&self.raw[range.clone()]),
                Part::Ref(Reference::Secret(name)) => {
                    out.push_str(&format!("{{{{secret:{name}}}}}"))
                }
                Part::Ref(reference) => {
                    let value = match reference {
                        Reference::Var(name) => scope.var(name),
                        Reference::Env(name) => scope.env(name),
                        Reference::Capture { step, name } => scope.capture(step, name),
                        Reference::Secret(_) => None,
                    };
                    out.push_str(&value.unwrap_or_else(|| reference.to_string()));
                }
            }
        }
        out
    }
}

fn parse_reference(inner: &str) -> Result<Reference, String> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let reference = if let Some(name) = inner.strip_prefix("secret:") {
        Reference::Secret(name.trim().to_string())
    } else if let Some(name) = inner.strip_prefix("env:") {
        Reference::Env(name.trim().to_string())
    } else if let Some(path) = inner.strip_prefix("steps.") {
        let (step, name) = path.split_once('.').ok_or_else(|| {
            format!("`{{{{{inner}}}}}` must name a step and a capture: `{{{{steps.<step id>.<capture>}}}}`")
        })?;
        if !valid_name(step) || !valid_name(name) {
            return Err(format!(
                "`{{{{{inner}}}}}` is not a valid capture reference"
            ));
        }
        return Ok(Reference::Capture {
            step: step.to_string(),
            name: name.to_string(),
        });
    } else {
        Reference::Var(inner.to_string())
    };
    let name = match &reference {
        Reference::Var(name) | Reference::Secret(name) | Reference::Env(name) => name,
        Reference::Capture { .. } => unreachable!("returned above"),
    };
    if !valid_name(name) {
        return Err(format!(
            "`{{{{{inner}}}}}` is not a valid placeholder: use {{{{name}}}}, {{{{secret:NAME}}}}, {{{{env:NAME}}}} or {{{{steps.ID.NAME}}}}"
        ));
    }
    Ok(reference)
}

thread_local! {
    /// Templates seen while a step is being deserialized, so the loader can
    /// check every placeholder of a step without each check kind listing its
    /// template fields by hand.
    static COLLECTOR: RefCell<Option<Vec<Template>>> = const { RefCell::new(None) };
    /// Where the text being deserialized starts in its file.
    static SPAN_OFFSET: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` (a deserialization of text that starts `offset` bytes into the
/// file) so that the templates it produces have spans in the whole file: the
/// loader parses a large check file section by section.
pub fn with_span_offset<T>(offset: usize, f: impl FnOnce() -> T) -> T {
    let previous = SPAN_OFFSET.with(|o| o.replace(offset));
    let value = f();
    SPAN_OFFSET.with(|o| o.set(previous));
    value
}

/// The offset [`with_span_offset`] set (0 outside it); spans read from the
/// parsed section are shifted by it to compare with templates' spans.
pub fn span_offset() -> usize {
    SPAN_OFFSET.with(Cell::get)
}

/// `span` of the text being deserialized, as a span of the whole file (see
/// [`with_span_offset`]), for spans a parsed value keeps.
pub fn file_span(span: Range<usize>) -> Range<usize> {
    let offset = span_offset();
    span.start + offset..span.end + offset
}

/// Runs `f` (a deserialization) and returns every [`Template`] with a
/// placeholder that it produced (see `register`).
pub fn collect_templates<T>(f: impl FnOnce() -> T) -> (T, Vec<Template>) {
    let previous = COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new()));
    let value = f();
    let collected = COLLECTOR.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
    (value, collected.unwrap_or_default())
}

/// Where `byte` first appears twice in a row in `text` (`{{`, `}}`).
///
/// `memchr` on the byte, not a `memmem` searcher: a sweep parses four short
/// templates a check (twice when streamed), and picking a `memmem` searcher
/// for each short text cost more than the search.
fn find_doubled(text: &[u8], byte: u8) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = memchr::memchr(byte, &text[from..]) {
        let at = from + found;
        if text.get(at + 1) == Some(&byte) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Only templates with a placeholder are collected: the loader reads the
/// placeholders, and the strings it checks for stray `{{`s are covered by
/// such templates (a string holding `{{` parses into one or fails), so
/// copying the others (most of a sweep's URLs) would be work for nothing.
fn register(template: &Template) {
    if template.parts.is_empty() {
        return;
    }
    COLLECTOR.with(|c| {
        if let Some(seen) = c.borrow_mut().as_mut() {
            seen.push(template.clone());
        }
    });
}

impl schemars::JsonSchema for Template {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Template".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Text that may hold placeholders: {{var}}, {{secret:NAME}}, {{env:NAME}}, {{steps.ID.NAME}}.",
            "type": "string"
        })
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_spanned::Spanned::<String>::deserialize(deserializer)?;
        let span = spanned.span();
        Template::parse_owned_at(spanned.into_inner(), span).map_err(serde::de::Error::custom)
    }
}

/// One template or a list of them: `stdout_regex = "a"` or `["a", "b"]`.
/// (Not an untagged enum: serde buffers those, and the buffer loses the
/// spans that point lint's errors at the right place.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates(pub Vec<Template>);

impl Templates {
    pub fn as_slice(&self) -> &[Template] {
        &self.0
    }
}

impl schemars::JsonSchema for Templates {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Templates".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<Template>();
        schemars::json_schema!({
            "description": "One text, or a list of texts that must all hold.",
            "anyOf": [one.clone(), { "type": "array", "items": one }]
        })
    }
}

impl<'de> Deserialize<'de> for Templates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A single string (its span comes from around it) or a list
        /// (each element deserialized as a spanned [`Template`]).
        enum Written {
            One(String),
            Many(Vec<Template>),
        }
        impl<'de> Deserialize<'de> for Written {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = Written;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string or a list of strings")
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Written, E> {
                        Ok(Written::One(text.to_string()))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Written, A::Error> {
                        let mut all = Vec::new();
                        while let Some(template) = seq.next_element::<Template>()? {
                            all.push(template);
                        }
                        Ok(Written::Many(all))
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }
        let spanned = serde_spanned::Spanned::<Written>::deserialize(deserializer)?;
        let span = spanned.span();
        match spanned.into_inner() {
            Written::One(text) => Template::parse_at(&text, span)
                .map(|t| Templates(vec![t]))
                .map_err(serde::de::Error::custom),
            Written::Many(all) => Ok(Templates(all)),
        }
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapScope(HashMap<&'static str, &'static str>);

    impl Scope for MapScope {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
        fn secret(&self, name: &str) -> Option<String> {
            self.0
                .get(format!("secret:{name}").as_str())
                .map(|v| v.to_string())
        }
        fn env(&self, name: &str) -> Option<String> {
            self.0
                .get(format!("env:{name}").as_str())
                .map(|v| v.to_string())
        }
        fn capture(&self, step: &str, name: &str) -> Option<String> {
            self.0
                .get(format!("{step}.{name}").as_str())
                .map(|v| v.to_string())
        }
    }

    fn scope() -> MapScope {
        MapScope(HashMap::from([
            ("app", "hotdash"),
            ("secret:TOKEN", "s3cr3t-value"),
            ("env:REGION", "ord"),
            ("create.id", "42"),
        ]))
    }

    #[test]
    fn renders_every_reference_kind() {
        let t = Template::parse(
            "https://{{app}}.fly.dev/{{ env:REGION }}/{{steps.create.id}}?t={{secret:TOKEN}}",
        )
        .unwrap();
        assert_eq!(
            t.render(&scope()).unwrap(),
            "https://hotdash.fly.dev/ord/42?t=s3cr3t-value"
        );
        assert_eq!(
            t.render_masked(&scope()),
            "https://hotdash.fly.dev/ord/42?t={{secret:TOKEN}}"
        );
        assert!(t.uses_secret());
    }

    #[test]
    fn missing_values_name_the_placeholder() {
        let t = Template::parse("{{secret:NOPE}}").unwrap();
        let err = t.render(&scope()).unwrap_err();
        assert_eq!(err.reference, Reference::Secret("NOPE".into()));
        assert!(err.to_string().contains("{{secret:NOPE}}"), "{err}");
    }

    #[test]
    fn rejects_malformed_placeholders() {
        assert!(Template::parse("{{app").unwrap_err().contains("unclosed"));
        assert!(Template::parse("{{}}").is_err());
        assert!(Template::parse("{{steps.only}}").is_err());
        assert!(Template::parse("{{a b}}").is_err());
    }

    #[test]
    fn literal_text_round_trips() {
        let t = Template::parse("no placeholders").unwrap();
        assert_eq!(t.references().count(), 0);
        assert_eq!(t.render(&scope()).unwrap(), "no placeholders");
        assert_eq!(t.render_masked(&scope()), "no placeholders");
        assert_eq!(t, Template::literal("no placeholders"));
    }

    #[test]
    fn text_around_and_between_placeholders_is_kept_exactly() {
        for (raw, rendered) in [
            ("{{app}}", "hotdash"),
            ("a{{app}}", "ahotdash"),
            ("{{app}}z", "hotdashz"),
            ("{{app}}{{app}}", "hotdashhotdash"),
            ("é {{app}} ü {{ env:REGION }} }} {", "é hotdash ü ord }} {"),
            ("}}{{app}}", "}}hotdash"),
            ("", ""),
        ] {
            let t = Template::parse(raw).unwrap();
            assert_eq!(t.render(&scope()).unwrap(), rendered, "{raw}");
            assert_eq!(t.raw(), raw);
        }
    }

    #[test]
    fn only_templates_with_a_placeholder_are_collected() {
        let ((), collected) = collect_templates(|| {
            for (raw, at) in [("plain", 0), ("Bearer {{secret:TOKEN}}", 10), ("}}", 40)] {
                Template::parse_at(raw, at..at + raw.len()).unwrap();
            }
        });
        let raws: Vec<&str> = collected.iter().map(Template::raw).collect();
        assert_eq!(raws, ["Bearer {{secret:TOKEN}}"]);
        assert_eq!(collected[0].span(), 10..33);
    }
}
