//! Numbers that may be written as templates: `port = 5432` or
//! `port = "{{port}}"`, converted when the step runs (a rendered value that
//! is not a number fails the attempt, naming the key and the template).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::template::{Scope, Template};

/// A number, or a template that renders to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Numeric<T> {
    /// Written as a number (or a string holding one, `"5432"`).
    Literal(T),
    /// Written with placeholders; converted when the step runs.
    Template(Template),
}

impl<T: Copy + FromStr + fmt::Display> Numeric<T> {
    /// The number, when it was written as one.
    pub fn literal(&self) -> Option<T> {
        match self {
            Numeric::Literal(n) => Some(*n),
            Numeric::Template(_) => None,
        }
    }

    /// The number: rendered and converted for a template. The error is a
    /// sentence for the attempt's reason (it names the template, never the
    /// rendered text when the template holds a secret).
    pub fn render(&self, key: &str, scope: &dyn Scope) -> Result<T, String> {
        let template = match self {
            Numeric::Literal(n) => return Ok(*n),
            Numeric::Template(template) => template,
        };
        let text = template.render(scope).map_err(|err| err.to_string())?;
        text.trim().parse::<T>().map_err(|_| {
            let shown = if template.uses_secret() {
                "[a secret]".to_string()
            } else {
                format!("`{text}`")
            };
            format!(
                "`{key} = \"{}\"` rendered to {shown}, which is not a valid {key}",
                template.raw()
            )
        })
    }
}

impl<T: fmt::Display> fmt::Display for Numeric<T> {
    /// As written: the number, or the template's raw text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Numeric::Literal(n) => n.fmt(f),
            Numeric::Template(template) => f.write_str(template.raw()),
        }
    }
}

/// What the runbook wrote: a number or a string.
enum Written {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Written;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a template such as \"{{port}}\"")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Written, E> {
                Ok(Written::Number(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Written, E> {
                i64::try_from(n)
                    .map(Written::Number)
                    .map_err(|_| E::custom(format!("{n} is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Written, E> {
                Ok(Written::Text(text.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl<'de, T> Deserialize<'de> for Numeric<T>
where
    T: TryFrom<i64> + FromStr + fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_spanned::Spanned::<Written>::deserialize(deserializer)?;
        let span = spanned.span();
        let out_of_range =
            |n: &dyn fmt::Display| serde::de::Error::custom(format!("{n} is out of range"));
        match spanned.into_inner() {
            Written::Number(n) => T::try_from(n).map(Numeric::Literal).map_err(|_| out_of_range(&n)),
            Written::Text(text) if text.contains("{{") => {
                Template::parse_at(&text, span).map(Numeric::Template).map_err(serde::de::Error::custom)
            }
            Written::Text(text) => text.trim().parse::<T>().map(Numeric::Literal).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a number (write it bare, or a template such as \"{{{{port}}}}\")"
                ))
            }),
        }
    }
}

impl<T> schemars::JsonSchema for Numeric<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NumberOrTemplate".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number, or a template that renders to one: \"{{port}}\".",
            "anyOf": [{ "type": "integer" }, { "type": "string" }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars;

    impl Scope for Vars {
        fn var(&self, name: &str) -> Option<String> {
            match name {
                "port" => Some("5432".into()),
                "bad" => Some("http".into()),
                _ => None,
            }
        }
        fn secret(&self, _: &str) -> Option<String> {
            Some("s3cr3t-value".into())
        }
        fn env(&self, _: &str) -> Option<String> {
            None
        }
        fn capture(&self, _: &str, _: &str) -> Option<String> {
            None
        }
    }

    #[derive(Deserialize)]
    struct Step {
        port: Numeric<u16>,
    }

    fn parse(text: &str) -> Result<Numeric<u16>, String> {
        toml::from_str::<Step>(text)
            .map(|s| s.port)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn numbers_and_templates_deserialize_and_render() {
        assert_eq!(parse("port = 443").unwrap(), Numeric::Literal(443));
        assert_eq!(parse("port = \"443\"").unwrap(), Numeric::Literal(443));
        let templated = parse("port = \"{{port}}\"").unwrap();
        assert_eq!(templated.literal(), None);
        assert_eq!(templated.to_string(), "{{port}}");
        assert_eq!(templated.render("port", &Vars), Ok(5432));
    }

    #[test]
    fn what_is_not_a_number_is_named() {
        assert!(parse("port = 70000").unwrap_err().contains("out of range"));
        let err = parse("port = true").unwrap_err();
        assert!(err.contains("a number or a template"), "{err}");
        let err = parse("port = true").unwrap_err();
        assert!(err.contains("a number or a template"), "{err}");
        assert!(parse("port = \"http\"")
            .unwrap_err()
            .contains("`http` is not a number"));
        let err = parse("port = \"{{bad}}\"")
            .unwrap()
            .render("port", &Vars)
            .unwrap_err();
        assert_eq!(
            err,
            "`port = \"{{bad}}\"` rendered to `http`, which is not a valid port"
        );
        // A secret's value is never shown.
        let err = parse("port = \"{{secret:P}}\"")
            .unwrap()
            .render("port", &Vars)
            .unwrap_err();
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
