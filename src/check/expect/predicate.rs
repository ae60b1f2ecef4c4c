//! The predicate language of expectations: a literal means equality; a TOML
//! table is always a predicate table, all of whose entries must hold. Parsed
//! from a spanned TOML value at load time, so that an unknown predicate or a
//! mistyped operand is a diagnostic at its exact position.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_spanned::Spanned;

use super::raw::{Node, RawValue};
use crate::core::diagnostics::did_you_mean;
use crate::core::template::Template;

/// Every predicate's name, as written in a predicate table.
pub const PREDICATES: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "exists",
    "empty",
    "type",
    "len",
    "any_of",
    "not",
    "all",
    "any",
];

/// The JSON types `type = "..."` names.
pub const TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// A load-time problem: message, span, and help shown after the caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub span: Range<usize>,
    pub help: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>, span: Range<usize>) -> Self {
        Problem {
            message: message.into(),
            span,
            help: None,
        }
    }

    fn help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// An operand: a literal, or a string with placeholders rendered when the
/// expectation is checked (`{{steps.create.loc}}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    Template(Template),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Literal(value) => f.write_str(&crate::check::json::short(value)),
            Operand::Template(t) => write!(f, "{:?}", t.raw()),
        }
    }
}

/// An ordering comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Order {
    /// `>`, `>=`, `<`, `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Order::Gt => ">",
            Order::Ge => ">=",
            Order::Lt => "<",
            Order::Le => "<=",
        }
    }

    /// Whether `ordering` (actual compared with the operand) satisfies it.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Order::Gt => ordering == Greater,
            Order::Ge => ordering != Less,
            Order::Lt => ordering == Less,
            Order::Le => ordering != Greater,
        }
    }
}

/// A text predicate on strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    StartsWith,
    EndsWith,
}

/// A parsed expectation.
#[derive(Debug, Clone)]
pub enum Predicate {
    /// A predicate table: every entry must hold.
    And(Vec<Predicate>),
    Eq(Operand),
    Ne(Operand),
    Compare(Order, Operand),
    /// Substring of a string, element of an array, key of an object.
    Contains(Operand),
    Text(TextOp, Operand),
    Matches(regex::Regex),
    Exists(bool),
    Empty(bool),
    Type(String),
    /// The length of a string (characters), array or object.
    Len(Box<Predicate>),
    AnyOf(Vec<Operand>),
    Not(Box<Predicate>),
    /// Every element of a list (a list path's selection, or an array).
    All(Box<Predicate>),
    /// At least one element.
    Any(Box<Predicate>),
}

impl fmt::Display for Predicate {
    /// What the predicate expects, in words: `> 5`, `contains "json"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::And(parts) => {
                let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join(" and "))
            }
            Predicate::Eq(v) => write!(f, "{v}"),
            Predicate::Ne(v) => write!(f, "!= {v}"),
            Predicate::Compare(order, v) => write!(f, "{} {v}", order.symbol()),
            Predicate::Contains(v) => write!(f, "contains {v}"),
            Predicate::Text(TextOp::StartsWith, v) => write!(f, "starts with {v}"),
            Predicate::Text(TextOp::EndsWith, v) => write!(f, "ends with {v}"),
            Predicate::Matches(re) => write!(f, "matches /{}/", re.as_str()),
            Predicate::Exists(true) => f.write_str("to exist"),
            Predicate::Exists(false) => f.write_str("absent"),
            Predicate::Empty(true) => f.write_str("empty"),
            Predicate::Empty(false) => f.write_str("not empty"),
            Predicate::Type(t) => write!(f, "type {t}"),
            Predicate::Len(inner) => write!(f, "length {inner}"),
            Predicate::AnyOf(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "one of {}", items.join(", "))
            }
            Predicate::Not(inner) => match inner.as_ref() {
                Predicate::And(parts) if parts.len() > 1 => write!(f, "not ({inner})"),
                _ => write!(f, "not {inner}"),
            },
            Predicate::All(inner) => write!(f, "every element {inner}"),
            Predicate::Any(inner) => write!(f, "some element {inner}"),
        }
    }
}

/// What an operand may be, by predicate, for the parser.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A value's predicate.
    Value,
    /// Inside `len`: comparisons are with integers.
    Length,
}

/// Parses an expectation: a literal (equality) or a predicate table.
pub fn parse(node: &Node) -> Result<Predicate, Vec<Problem>> {
    let mut problems = Vec::new();
    let predicate = parse_node(node, Context::Value, &mut problems);
    if problems.is_empty() {
        Ok(predicate)
    } else {
        Err(problems)
    }
}

fn parse_node(node: &Node, context: Context, problems: &mut Vec<Problem>) -> Predicate {
    match node.get_ref() {
        RawValue::Table(entries) => {
            if entries.is_empty() {
                problems.push(
                    Problem::new("empty predicate table", node.span()).help(Some(
                        "a table is a predicate table: to compare with an empty object write `eq = {}`"
                            .into(),
                    )),
                );
            }
            Predicate::And(
                entries
                    .iter()
                    .map(|(key, value)| parse_entry(key, value, context, problems))
                    .collect(),
            )
        }
        _ => {
            let operand = operand(node, problems);
            if context == Context::Length {
                expect_length(node, problems);
            }
            Predicate::Eq(operand)
        }
    }
}

fn parse_entry(
    key: &Spanned<String>,
    value: &Node,
    context: Context,
    problems: &mut Vec<Problem>,
) -> Predicate {
    let name = key.get_ref().as_str();
    let span = value.span();
    let wrong = |what: &str, problems: &mut Vec<Problem>| {
        problems.push(Problem::new(
            format!("`{name}` takes {what}, not {}", value.get_ref().type_name()),
            span.clone(),
        ));
    };
    match name {
        "eq" | "ne" => {
            if context == Context::Length {
                expect_length(value, problems);
            }
            let operand = operand(value, problems);
            if name == "eq" {
                Predicate::Eq(operand)
            } else {
                Predicate::Ne(operand)
            }
        }
        "gt" | "ge" | "lt" | "le" => {
            let order = match name {
                "gt" => Order::Gt,
                "ge" => Order::Ge,
                "lt" => Order::Lt,
                _ => Order::Le,
            };
            match (value.get_ref(), context) {
                (_, Context::Length) => {}
                (RawValue::Integer(_) | RawValue::Float(_), _) => {}
                (RawValue::String(s), _) => {
                    if !s.contains("{{") && !s.chars().any(|c| c.is_ascii_digit()) {
                        problems.push(Problem::new(
                            format!(
                                "`{name}` takes a number (or ordered text such as a timestamp), not {s:?}"
                            ),
                            span.clone(),
                        ));
                    }
                }
                _ => wrong("a number or a string", problems),
            }
            if context == Context::Length {
                expect_length(value, problems);
            }
            Predicate::Compare(order, operand(value, problems))
        }
        "contains" => {
            if matches!(value.get_ref(), RawValue::Table(_)) {
                wrong("a string or another literal", problems);
            }
            Predicate::Contains(operand(value, problems))
        }
        "starts_with" | "ends_with" => {
            if !matches!(value.get_ref(), RawValue::String(_)) {
                wrong("a string", problems);
            }
            let op = if name == "starts_with" {
                TextOp::StartsWith
            } else {
                TextOp::EndsWith
            };
            Predicate::Text(op, operand(value, problems))
        }
        "matches" => match value.get_ref() {
            RawValue::String(pattern) => match regex::Regex::new(pattern) {
                Ok(re) => Predicate::Matches(re),
                Err(err) => {
                    problems.push(Problem::new(
                        format!("invalid regex in `matches`: {}", one_line(&err.to_string())),
                        span,
                    ));
                    Predicate::And(Vec::new())
                }
            },
            _ => {
                wrong("a regex (a string)", problems);
                Predicate::And(Vec::new())
            }
        },
        "exists" | "empty" => match value.get_ref() {
            RawValue::Bool(b) if name == "exists" => Predicate::Exists(*b),
            RawValue::Bool(b) => Predicate::Empty(*b),
            _ => {
                wrong("`true` or `false`", problems);
                Predicate::And(Vec::new())
            }
        },
        "type" => match value.get_ref() {
            RawValue::String(t) if TYPES.contains(&t.as_str()) => Predicate::Type(t.clone()),
            RawValue::String(t) => {
                problems.push(
                    Problem::new(format!("unknown type `{t}`"), span).help(
                        did_you_mean(t, TYPES.iter().copied())
                            .or_else(|| Some(format!("types: {}", TYPES.join(", ")))),
                    ),
                );
                Predicate::And(Vec::new())
            }
            _ => {
                wrong("a type name (a string)", problems);
                Predicate::And(Vec::new())
            }
        },
        "len" => match value.get_ref() {
            RawValue::Integer(_) | RawValue::Table(_) => {
                Predicate::Len(Box::new(parse_node(value, Context::Length, problems)))
            }
            _ => {
                wrong("a non-negative integer or a predicate table", problems);
                Predicate::And(Vec::new())
            }
        },
        "any_of" => match value.get_ref() {
            RawValue::Array(items) if !items.is_empty() => {
                Predicate::AnyOf(items.iter().map(|i| operand(i, problems)).collect())
            }
            RawValue::Array(_) => {
                problems.push(Problem::new("`any_of` is empty: nothing could match", span));
                Predicate::And(Vec::new())
            }
            _ => {
                wrong("an array of values", problems);
                Predicate::And(Vec::new())
            }
        },
        "not" => Predicate::Not(Box::new(parse_node(value, context, problems))),
        "all" => Predicate::All(Box::new(parse_node(value, Context::Value, problems))),
        "any" => Predicate::Any(Box::new(parse_node(value, Context::Value, problems))),
        other => {
            let help = did_you_mean(other, PREDICATES.iter().copied()).unwrap_or_else(|| {
                "a table is a predicate table; to compare a whole object write `eq = { ... }`"
                    .to_string()
            });
            problems.push(
                Problem::new(format!("unknown predicate `{other}`"), key.span()).help(Some(help)),
            );
            Predicate::And(Vec::new())
        }
    }
}

/// Inside `len`: the operand must be a non-negative integer.
fn expect_length(node: &Node, problems: &mut Vec<Problem>) {
    match node.get_ref() {
        RawValue::Integer(n) if *n >= 0 => {}
        RawValue::Table(_) => {}
        other => problems.push(Problem::new(
            format!(
                "a length is a non-negative integer, not {}",
                match other {
                    RawValue::Integer(_) => "a negative integer",
                    other => other.type_name(),
                }
            ),
            node.span(),
        )),
    }
}

fn operand(node: &Node, problems: &mut Vec<Problem>) -> Operand {
    match node.get_ref() {
        RawValue::String(s) if s.contains("{{") => match Template::parse_at(s, node.span()) {
            Ok(t) => Operand::Template(t),
            Err(err) => {
                problems.push(Problem::new(err, node.span()));
                Operand::Literal(Value::Null)
            }
        },
        _ => Operand::Literal(to_json(node.get_ref())),
    }
}

/// A TOML literal as JSON.
pub fn to_json(value: &RawValue) -> Value {
    match value {
        RawValue::String(s) => Value::String(s.clone()),
        RawValue::Integer(i) => Value::from(*i),
        RawValue::Float(f) => Value::from(*f),
        RawValue::Bool(b) => Value::Bool(*b),
        RawValue::Array(items) => {
            Value::Array(items.iter().map(|i| to_json(i.get_ref())).collect())
        }
        RawValue::Table(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.get_ref().clone(), to_json(v.get_ref())))
                .collect(),
        ),
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An expectation as written in a runbook: parsed when the runbook is
/// deserialized, its problems reported by the check's `validate`.
#[derive(Debug, Clone)]
pub struct Expected {
    span: Range<usize>,
    parsed: Result<Predicate, Vec<Problem>>,
}

impl Expected {
    /// Parses a spanned node.
    pub fn from_node(node: &Node) -> Self {
        Expected {
            span: crate::core::template::file_span(node.span()),
            parsed: parse(node),
        }
    }

    /// The predicate, when it parsed.
    pub fn predicate(&self) -> Option<&Predicate> {
        self.parsed.as_ref().ok()
    }

    /// Where it stands in the runbook.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Load-time problems, empty when it parsed.
    pub fn problems(&self) -> Vec<Problem> {
        // Not `self.parsed.clone().err()`: that copied the whole predicate
        // to drop it, for every expectation a file states.
        match &self.parsed {
            Ok(_) => Vec::new(),
            Err(problems) => problems.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Expected {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let node = Spanned::<RawValue>::deserialize(deserializer)?;
        let expected = Expected::from_node(&node);
        super::report(&expected.problems());
        Ok(expected)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses `expect = <src>` and returns the node of its value.
    pub(crate) fn node(src: &str) -> (String, Node) {
        #[derive(Deserialize)]
        struct Doc {
            expect: Node,
        }
        let text = format!("expect = {src}\n");
        let doc: Doc = toml::from_str(&text).unwrap();
        (text, doc.expect)
    }

    fn problems(src: &str) -> Vec<(String, String, Option<String>)> {
        let (text, n) = node(src);
        parse(&n)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.message, text[p.span].to_string(), p.help))
            .collect()
    }

    #[test]
    fn literals_are_equality_and_tables_are_predicates() {
        let (_, n) = node("3");
        assert_eq!(parse(&n).unwrap().to_string(), "3");
        let (_, n) = node("{ ge = 200, lt = 300 }");
        assert_eq!(parse(&n).unwrap().to_string(), ">= 200 and < 300");
        let (_, n) = node("{ eq = { a = 1 } }");
        assert_eq!(parse(&n).unwrap().to_string(), "{\"a\":1}");
    }

    #[test]
    fn unknown_predicates_suggest_the_closest() {
        assert_eq!(
            problems("{ gtt = 0 }"),
            [(
                "unknown predicate `gtt`".to_string(),
                "gtt".to_string(),
                Some("did you mean `gt`?".to_string())
            )]
        );
        let p = problems("{ a = 1 }");
        assert_eq!(p[0].0, "unknown predicate `a`");
        assert!(p[0].2.as_deref().unwrap().contains("eq = { ... }"), "{p:?}");
    }

    #[test]
    fn mistyped_operands_point_at_the_operand() {
        assert_eq!(
            problems("{ gt = \"abc\" }"),
            [(
                "`gt` takes a number (or ordered text such as a timestamp), not \"abc\"".into(),
                "\"abc\"".into(),
                None
            )]
        );
        assert_eq!(
            problems("{ len = \"x\" }")[0].0,
            "`len` takes a non-negative integer or a predicate table, not a string"
        );
        assert_eq!(
            problems("{ len = { gt = \"x\" } }")[0].0,
            "a length is a non-negative integer, not a string"
        );
        assert!(problems("{ matches = \"(\" }")[0]
            .0
            .starts_with("invalid regex in `matches`"));
        assert_eq!(
            problems("{ exists = 1 }")[0].0,
            "`exists` takes `true` or `false`, not an integer"
        );
        assert_eq!(
            problems("{ type = \"numbr\" }")[0].2.as_deref(),
            Some("did you mean `number`?")
        );
        assert_eq!(
            problems("{ any_of = [] }")[0].0,
            "`any_of` is empty: nothing could match"
        );
        assert_eq!(problems("{}")[0].0, "empty predicate table");
        assert_eq!(
            problems("{ starts_with = 1 }")[0].0,
            "`starts_with` takes a string, not an integer"
        );
    }

    #[test]
    fn ordered_strings_are_allowed() {
        assert!(problems("{ gt = \"2025-01-01T00:00:00Z\" }").is_empty());
        assert!(problems("{ le = \"{{steps.a.b}}\" }").is_empty());
    }
}
