//! A TOML value with the byte span of every node and key, read through serde
//! from the loader's spanned tree, so that predicate and capture problems can
//! point at the exact key or operand that is wrong.

use std::fmt;
use std::ops::Range;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

/// One node of a TOML value, children spanned.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Spanned<RawValue>>),
    /// Entries in the order written.
    Table(Vec<(Spanned<String>, Spanned<RawValue>)>),
}

impl RawValue {
    /// The TOML type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            RawValue::String(_) => "a string",
            RawValue::Integer(_) => "an integer",
            RawValue::Float(_) => "a float",
            RawValue::Bool(_) => "a boolean",
            RawValue::Array(_) => "an array",
            RawValue::Table(_) => "a table",
        }
    }
}

/// A spanned node: what the expectation and capture parsers start from.
pub type Node = Spanned<RawValue>;

/// The span of a node.
pub fn span(node: &Node) -> Range<usize> {
    node.span()
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Integer(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Integer)
            .map_err(|_| E::custom("integer too large"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        // A TOML date-time also arrives as a map, whose key is not spanned:
        // that read fails, and the message says what to write instead.
        let mut entries = Vec::new();
        loop {
            let key = match map.next_key::<Spanned<String>>() {
                Ok(Some(key)) => key,
                Ok(None) => break,
                Err(_) => {
                    return Err(serde::de::Error::custom(
                        "write dates and times in expectations as quoted strings",
                    ))
                }
            };
            let value = map.next_value::<Spanned<RawValue>>()?;
            entries.push((key, value));
        }
        Ok(RawValue::Table(entries))
    }
}
