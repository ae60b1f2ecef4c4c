//! Paths into JSON documents: a path starting with `$` is RFC 9535 JSONPath
//! (through `serde_json_path`); any other path is the dotted syntax
//! (`data.items[0].id`). The path's syntax, never the data, decides whether it
//! selects one value or a list: a wildcard, filter, slice, union or
//! descendant segment makes a list.

use std::fmt;

use serde_json::Value;
use serde_json_path::JsonPath;

/// A parsed path.
#[derive(Debug, Clone)]
pub struct Path {
    raw: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Dotted,
    JsonPath { path: Box<JsonPath>, list: bool },
}

/// What a path selected.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection<'v> {
    /// A singular path: the value, or `None` when nothing is there.
    One(Option<&'v Value>),
    /// A list path: every value selected, with its normalized location
    /// (`$['items'][2]['id']`), in document order.
    Many(Vec<(String, &'v Value)>),
}

impl Path {
    /// Parses `raw`; a `$` path that is not valid JSONPath is an error that
    /// says where.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with('$') {
            let path = JsonPath::parse(raw).map_err(|err| {
                format!(
                    "invalid JSONPath `{raw}` at character {}: {}",
                    err.position(),
                    err.message()
                )
            })?;
            return Ok(Path {
                raw: raw.to_string(),
                kind: Kind::JsonPath {
                    path: Box::new(path),
                    list: selects_list(raw),
                },
            });
        }
        if raw.trim().is_empty() {
            return Err("empty JSON path".to_string());
        }
        Ok(Path {
            raw: raw.to_string(),
            kind: Kind::Dotted,
        })
    }

    /// The path as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the path selects a list (decided by its syntax).
    pub fn is_list(&self) -> bool {
        matches!(self.kind, Kind::JsonPath { list: true, .. })
    }

    /// Selects from `doc`.
    pub fn select<'v>(&self, doc: &'v Value) -> Selection<'v> {
        match &self.kind {
            Kind::Dotted => Selection::One(crate::check::json::lookup(doc, &self.raw)),
            Kind::JsonPath { path, list: false } => Selection::One(path.query(doc).first()),
            Kind::JsonPath { path, list: true } => Selection::Many(
                path.query_located(doc)
                    .into_iter()
                    .map(|node| (node.location().to_string(), node.node()))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Whether a (valid) JSONPath can select more than one node: a wildcard
/// (`*`), a descendant segment (`..`), or a bracket holding a filter (`?`),
/// a slice (`:`) or a union (`,`). Text inside quotes does not count.
fn selects_list(raw: &str) -> bool {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut previous = '\0';
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            previous = c;
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '*' => return true,
            '.' if previous == '.' && depth == 0 => return true,
            '?' | ':' | ',' if depth > 0 => return true,
            _ => {}
        }
        previous = c;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn syntax_decides_one_or_many() {
        for one in ["$.a", "$.items[-1].id", "$['a.b']", "$['x*y']", "$.a[0]"] {
            assert!(!Path::parse(one).unwrap().is_list(), "{one}");
        }
        for many in [
            "$.items[*].id",
            "$..id",
            "$.items[?@.state == 'stopped']",
            "$.items[0:2]",
            "$.items[0,1]",
            "$.*",
        ] {
            assert!(Path::parse(many).unwrap().is_list(), "{many}");
        }
    }

    #[test]
    fn selects_with_locations() {
        let doc = json!({"items": [{"id": 1}, {"id": 2}]});
        let p = Path::parse("$.items[*].id").unwrap();
        assert_eq!(
            p.select(&doc),
            Selection::Many(vec![
                ("$['items'][0]['id']".to_string(), &json!(1)),
                ("$['items'][1]['id']".to_string(), &json!(2)),
            ])
        );
        let last = Path::parse("$.items[-1].id").unwrap();
        assert_eq!(last.select(&doc), Selection::One(Some(&json!(2))));
        let dotted = Path::parse("items[0].id").unwrap();
        assert_eq!(dotted.select(&doc), Selection::One(Some(&json!(1))));
        assert_eq!(
            Path::parse("$.nope").unwrap().select(&doc),
            Selection::One(None)
        );
    }

    #[test]
    fn invalid_jsonpath_says_where() {
        let err = Path::parse("$.items[?").unwrap_err();
        assert!(
            err.starts_with("invalid JSONPath `$.items[?` at character"),
            "{err}"
        );
    }
}
