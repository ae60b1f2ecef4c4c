//! The capture grammar, one for every kind: `NAME = "json.path"` (a dotted or
//! `$` path), or a table with one source, `json = PATH`, `header = NAME`,
//! `status = true` or `regex = PATTERN` (group 1 when the pattern has groups,
//! else the whole match; `group = N` or `group = "name"` picks another), plus
//! `secret = true` to redact the value wherever it would be written.

use std::ops::Range;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_spanned::Spanned;

use super::path::{Path, Selection};
use super::predicate::Problem;
use super::raw::RawValue;
use crate::core::diagnostics::did_you_mean;

/// The keys of a capture table.
pub const CAPTURE_KEYS: &[&str] = &["json", "header", "status", "regex", "group", "secret"];

/// Where a captured value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A path into the JSON body or stdout.
    Json(Path),
    /// A response header (case-insensitive).
    Header(String),
    /// The HTTP status code.
    Status,
    /// A regex on the body or stdout.
    Regex { re: regex::Regex, group: Group },
}

/// Which regex group a capture takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    /// Group 1 if the pattern has one, else the whole match.
    Default,
    Index(usize),
    Name(String),
}

/// A parsed capture.
#[derive(Debug, Clone)]
pub struct Capture {
    pub source: Source,
    /// Register the value with the redactor before anything is written.
    pub secret: bool,
}

/// Looks a header up by (lower-case) name.
pub type HeaderLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What a capture reads from.
pub struct CaptureInput<'a> {
    /// The body or stdout, as read.
    pub text: &'a [u8],
    /// The same, parsed as JSON (when it is JSON).
    pub json: Option<&'a Value>,
    /// A header's value by name, for checks that have headers.
    pub header: Option<HeaderLookup<'a>>,
    /// The status, for checks that have one.
    pub status: Option<u16>,
    /// What `text` is, for messages: "the response body", "stdout".
    pub what: &'a str,
}

/// A capture entry as written: parsed at load, problems reported by `validate`.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    parsed: Result<Capture, Vec<Problem>>,
}

impl CaptureSpec {
    /// The capture, when it parsed.
    pub fn capture(&self) -> Option<&Capture> {
        self.parsed.as_ref().ok()
    }

    /// Whether the value comes from a response header.
    pub fn reads_header(&self) -> bool {
        self.capture()
            .is_some_and(|c| matches!(c.source, Source::Header(_)))
    }

    /// Whether the value is a secret.
    pub fn secret(&self) -> bool {
        self.capture().is_some_and(|c| c.secret)
    }

    /// Load-time problems, with spans.
    pub fn problems(&self) -> Vec<Problem> {
        self.parsed.clone().err().unwrap_or_default()
    }

    /// Whether the capture reads the JSON document.
    pub fn needs_json(&self) -> bool {
        matches!(self.capture().map(|c| &c.source), Some(Source::Json(_)))
    }

    /// The captured text. JSON strings are taken as they are, other JSON
    /// values as JSON text (a list path gives a JSON array).
    pub fn extract(&self, input: &CaptureInput<'_>) -> Result<String, String> {
        let capture = self.capture().ok_or("the capture is invalid")?;
        match &capture.source {
            Source::Json(path) => {
                let doc = input
                    .json
                    .ok_or_else(|| format!("{} is not JSON", input.what))?;
                let value = match path.select(doc) {
                    Selection::One(Some(Value::Null)) | Selection::One(None) => {
                        return Err(format!("no value at JSON path `{path}`"))
                    }
                    Selection::One(Some(value)) => value.clone(),
                    Selection::Many(nodes) => {
                        Value::Array(nodes.into_iter().map(|(_, v)| v.clone()).collect())
                    }
                };
                Ok(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
            }
            Source::Header(name) => {
                let header = input
                    .header
                    .ok_or_else(|| format!("{} has no headers", input.what))?;
                header(name).ok_or_else(|| format!("no header `{name}` in the response"))
            }
            Source::Status => input
                .status
                .map(|s| s.to_string())
                .ok_or_else(|| "this check has no status".to_string()),
            Source::Regex { re, group } => {
                let text = String::from_utf8_lossy(input.text);
                let caps = re
                    .captures(&text)
                    .ok_or_else(|| format!("{} does not match /{}/", input.what, re.as_str()))?;
                let m = match group {
                    Group::Default if re.captures_len() > 1 => caps.get(1),
                    Group::Default => caps.get(0),
                    Group::Index(i) => caps.get(*i),
                    Group::Name(name) => caps.name(name),
                };
                m.map(|m| m.as_str().to_string()).ok_or_else(|| {
                    format!(
                        "the group of /{}/ did not take part in the match",
                        re.as_str()
                    )
                })
            }
        }
    }
}

fn parse(node: &Spanned<RawValue>) -> Result<Capture, Vec<Problem>> {
    let mut problems = Vec::new();
    let problem = |message: String, span: Range<usize>| Problem {
        message,
        span,
        help: None,
    };
    let entries = match node.get_ref() {
        RawValue::String(path) => {
            return Path::parse(path)
                .map(|path| Capture {
                    source: Source::Json(path),
                    secret: false,
                })
                .map_err(|err| vec![problem(err, node.span())]);
        }
        RawValue::Table(entries) => entries,
        other => {
            return Err(vec![problem(
                format!(
                    "a capture is a JSON path (a string) or a table such as `{{ header = \"location\" }}`, not {}",
                    other.type_name()
                ),
                node.span(),
            )])
        }
    };
    let mut sources: Vec<(Source, Range<usize>)> = Vec::new();
    let mut secret = false;
    let mut group = Group::Default;
    let mut group_span = None;
    for (key, value) in entries {
        let span = value.span();
        let name = key.get_ref().as_str();
        match (name, value.get_ref()) {
            ("json", RawValue::String(p)) => match Path::parse(p) {
                Ok(path) => sources.push((Source::Json(path), key.span())),
                Err(err) => problems.push(problem(err, span)),
            },
            ("header", RawValue::String(h)) => {
                sources.push((Source::Header(h.to_ascii_lowercase()), key.span()))
            }
            ("status", RawValue::Bool(true)) => sources.push((Source::Status, key.span())),
            ("regex", RawValue::String(p)) => match regex::Regex::new(p) {
                Ok(re) => sources.push((
                    Source::Regex {
                        re,
                        group: Group::Default,
                    },
                    key.span(),
                )),
                Err(err) => problems.push(problem(
                    format!(
                        "invalid regex in capture: {}",
                        err.to_string().lines().last().unwrap_or_default().trim()
                    ),
                    span,
                )),
            },
            ("group", RawValue::Integer(i)) if *i >= 0 => {
                group = Group::Index(*i as usize);
                group_span = Some(span);
            }
            ("group", RawValue::String(g)) => {
                group = Group::Name(g.clone());
                group_span = Some(span);
            }
            ("secret", RawValue::Bool(b)) => secret = *b,
            ("json" | "header" | "regex", other) => problems.push(problem(
                format!("`{name}` takes a string, not {}", other.type_name()),
                span,
            )),
            ("status", _) => problems.push(problem("`status` takes `true`".into(), span)),
            ("group", other) => problems.push(problem(
                format!(
                    "`group` takes a group number or name, not {}",
                    other.type_name()
                ),
                span,
            )),
            ("secret", other) => problems.push(problem(
                format!(
                    "`secret` takes `true` or `false`, not {}",
                    other.type_name()
                ),
                span,
            )),
            (other, _) => problems.push(Problem {
                message: format!("unknown key `{other}` in capture"),
                span: key.span(),
                help: did_you_mean(other, CAPTURE_KEYS.iter().copied())
                    .or_else(|| Some("use one of `json`, `header`, `status`, `regex`".into())),
            }),
        }
    }
    if sources.len() > 1 {
        problems.push(problem(
            "a capture takes one source: `json`, `header`, `status` or `regex`".into(),
            sources[1].1.clone(),
        ));
    }
    let source = match sources.into_iter().next() {
        Some((Source::Regex { re, .. }, _)) => {
            let valid = match &group {
                Group::Default => true,
                Group::Index(i) => *i < re.captures_len(),
                Group::Name(n) => re.capture_names().any(|c| c == Some(n.as_str())),
            };
            if !valid {
                problems.push(problem(
                    format!("the regex /{}/ has no such group", re.as_str()),
                    group_span.clone().unwrap_or(node.span()),
                ));
            }
            Some(Source::Regex { re, group })
        }
        Some((source, _)) => {
            if let Some(span) = group_span {
                problems.push(problem("`group` goes with `regex`".into(), span));
            }
            Some(source)
        }
        None => {
            if problems.is_empty() {
                problems.push(problem(
                    "a capture table needs a source: `json`, `header`, `status` or `regex`".into(),
                    node.span(),
                ));
            }
            None
        }
    };
    match source {
        Some(source) if problems.is_empty() => Ok(Capture { source, secret }),
        _ => Err(problems),
    }
}

impl<'de> Deserialize<'de> for CaptureSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let node = Spanned::<RawValue>::deserialize(deserializer)?;
        let parsed = parse(&node);
        if let Err(problems) = &parsed {
            super::report(problems);
        }
        Ok(CaptureSpec { parsed })
    }
}

/// Takes every capture of a step from `input` into `captures`, in name
/// order. A secret one is registered with the redactor (through `blobs`)
/// before the caller stores anything that holds it. Returns the first
/// capture that failed, as the attempt's reason.
pub fn capture_all(
    specs: &std::collections::BTreeMap<String, CaptureSpec>,
    input: &CaptureInput<'_>,
    blobs: &dyn crate::core::BlobSink,
    captures: &mut Vec<(String, String)>,
) -> Option<String> {
    let mut first_error = None;
    for (name, spec) in specs {
        match spec.extract(input) {
            Ok(value) => {
                if spec.secret() {
                    blobs.register_secret(&format!("capture:{name}"), &value);
                }
                captures.push((name.clone(), value));
            }
            Err(err) => {
                first_error.get_or_insert(format!("cannot capture `{name}`: {err}"));
            }
        }
    }
    first_error
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(src: &str) -> CaptureSpec {
        #[derive(Deserialize)]
        struct Doc {
            c: CaptureSpec,
        }
        toml::from_str::<Doc>(&format!("c = {src}\n")).unwrap().c
    }

    fn extract(src: &str) -> Result<String, String> {
        let doc = json!({"id": 42, "name": "w", "items": [{"id": 1}, {"id": 2}]});
        let header = |name: &str| (name == "location").then(|| "/items/42".to_string());
        spec(src).extract(&CaptureInput {
            text: b"version v12.3 ok",
            json: Some(&doc),
            header: Some(&header),
            status: Some(201),
            what: "the response body",
        })
    }

    #[test]
    fn every_source() {
        assert_eq!(extract("\"name\"").unwrap(), "w");
        assert_eq!(extract("\"$.id\"").unwrap(), "42");
        assert_eq!(extract("{ json = \"$.items[*].id\" }").unwrap(), "[1,2]");
        assert_eq!(extract("{ header = \"Location\" }").unwrap(), "/items/42");
        assert_eq!(extract("{ status = true }").unwrap(), "201");
        assert_eq!(extract("{ regex = 'v(\\d+)' }").unwrap(), "12");
        assert_eq!(extract("{ regex = 'v\\d+' }").unwrap(), "v12");
        assert_eq!(
            extract("{ regex = 'v(?<major>\\d+)\\.(?<minor>\\d+)', group = 'minor' }").unwrap(),
            "3"
        );
        assert!(spec("{ json = 'id', secret = true }").secret());
    }

    #[test]
    fn failures_say_why() {
        assert_eq!(
            extract("\"nope\"").unwrap_err(),
            "no value at JSON path `nope`"
        );
        assert_eq!(
            extract("{ header = 'x-nope' }").unwrap_err(),
            "no header `x-nope` in the response"
        );
        assert_eq!(
            extract("{ regex = 'zzz(\\d)' }").unwrap_err(),
            "the response body does not match /zzz(\\d)/"
        );
    }

    #[test]
    fn problems_are_reported_at_their_key() {
        let messages = |src: &str| -> Vec<String> {
            spec(src)
                .problems()
                .into_iter()
                .map(|p| match p.help {
                    Some(help) => format!("{} ({help})", p.message),
                    None => p.message,
                })
                .collect()
        };
        assert_eq!(
            messages("{ headr = 'x' }"),
            ["unknown key `headr` in capture (did you mean `header`?)"]
        );
        assert_eq!(
            messages("{ json = 'a', header = 'b' }"),
            ["a capture takes one source: `json`, `header`, `status` or `regex`"]
        );
        assert_eq!(messages("{ secret = true }").len(), 1);
        assert!(messages("{ regex = '(' }")[0].starts_with("invalid regex in capture"));
        assert!(messages("'$.items[?'")[0].starts_with("invalid JSONPath"));
        assert_eq!(
            messages("{ regex = 'a', group = 2 }"),
            ["the regex /a/ has no such group"]
        );
    }
}
