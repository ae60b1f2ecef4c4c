//! JSON Schema of what expectations and captures accept, for `runproof
//! schema`: these types deserialize by hand (with spans and collected
//! problems), so their schemas are written here, from the same name lists
//! ([`PREDICATES`], [`TYPES`], [`CAPTURE_KEYS`]) the parsers use.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::capture::{CaptureSpec, CAPTURE_KEYS};
use super::predicate::{Expected, PREDICATES, TYPES};
use super::{JsonExpect, StatusExpect};

/// The description and operand schema of each predicate; a name missing
/// here fails the test below, so the list cannot fall behind [`PREDICATES`].
fn predicate_property(name: &str, expected: &Value, table: &Value) -> Option<Value> {
    let any = json!({});
    let ordered = json!({ "type": ["number", "string"] });
    let (description, schema) = match name {
        "eq" => ("equals the operand (a literal means the same)", any),
        "ne" => ("does not equal the operand", any),
        "gt" => (
            "is greater than (numbers by value, strings in order)",
            ordered,
        ),
        "ge" => ("is greater than or equal to", ordered),
        "lt" => ("is less than", ordered),
        "le" => ("is less than or equal to", ordered),
        "contains" => (
            "string: has the substring; array: has the element; object: has the key",
            any,
        ),
        "starts_with" => ("the string starts with it", json!({ "type": "string" })),
        "ends_with" => ("the string ends with it", json!({ "type": "string" })),
        "matches" => (
            "matches the regular expression",
            json!({ "type": "string" }),
        ),
        "exists" => (
            "is there (true) or absent (false)",
            json!({ "type": "boolean" }),
        ),
        "empty" => (
            "string, array or object is empty (true) or not (false)",
            json!({ "type": "boolean" }),
        ),
        "type" => ("is of this JSON type", json!({ "enum": TYPES })),
        "len" => (
            "has this length, or a length meeting a predicate table",
            json!({ "anyOf": [{ "type": "integer", "minimum": 0 }, table] }),
        ),
        "any_of" => ("equals one of these literals", json!({ "type": "array" })),
        "not" => ("fails the inner predicate", expected.clone()),
        "all" => (
            "every element meets it (true of an empty list)",
            expected.clone(),
        ),
        "any" => ("some element meets it", expected.clone()),
        _ => return None,
    };
    let mut schema = schema;
    if let Some(object) = schema.as_object_mut() {
        object.insert("description".into(), description.into());
    }
    Some(schema)
}

impl JsonSchema for Expected {
    fn schema_name() -> Cow<'static, str> {
        "Expected".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table_ref = json!({ "$ref": format!("{}PredicateTable", defs_path(generator)) });
        let expected_ref = json!({ "$ref": format!("{}Expected", defs_path(generator)) });
        let mut properties = Map::new();
        for name in PREDICATES {
            if let Some(schema) = predicate_property(name, &expected_ref, &table_ref) {
                properties.insert((*name).to_string(), schema);
            }
        }
        generator.definitions_mut().insert(
            "PredicateTable".into(),
            json!({
                "description": "A predicate table: every predicate in it must hold.",
                "type": "object",
                "properties": properties,
                "additionalProperties": false,
                "minProperties": 1,
            }),
        );
        json_schema!({
            "description": "A literal the value must equal, or a predicate table such as `{ ge = 200, lt = 300 }`.",
            "anyOf": [
                { "type": ["string", "number", "boolean", "array"] },
                table_ref,
            ]
        })
    }
}

/// Where the generator keeps definitions (`#/$defs/` for draft 2020-12).
fn defs_path(generator: &SchemaGenerator) -> String {
    format!("#{}/", generator.settings().definitions_path)
}

impl JsonSchema for JsonExpect {
    fn schema_name() -> Cow<'static, str> {
        "JsonExpect".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let expected = generator.subschema_for::<Expected>();
        json_schema!({
            "description": "JSON path (`data.id`, `$.items[*].id`) → a literal or a predicate table.",
            "type": "object",
            "additionalProperties": expected,
        })
    }
}

impl JsonSchema for StatusExpect {
    fn schema_name() -> Cow<'static, str> {
        "StatusExpect".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = json!({ "$ref": format!("{}PredicateTable", defs_path(generator)) });
        // Make sure the predicate table is defined.
        generator.subschema_for::<Expected>();
        json_schema!({
            "description": "An HTTP status, a list of them (any one), or a predicate table (default: any 2xx).",
            "anyOf": [
                { "type": "integer", "minimum": 100, "maximum": 599 },
                { "type": "array", "items": { "type": "integer", "minimum": 100, "maximum": 599 } },
                table,
            ]
        })
    }
}

impl JsonSchema for CaptureSpec {
    fn schema_name() -> Cow<'static, str> {
        "CaptureSpec".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut properties = Map::new();
        for key in CAPTURE_KEYS {
            let schema = match *key {
                "json" => json!({ "type": "string", "description": "a JSON path into the body" }),
                "header" => {
                    json!({ "type": "string", "description": "a response header (case-insensitive)" })
                }
                "status" => json!({ "const": true, "description": "the HTTP status code" }),
                "regex" => {
                    json!({ "type": "string", "description": "group 1 of the first match in the body (the whole match without a group)" })
                }
                "group" => {
                    json!({ "type": ["integer", "string"], "description": "with `regex`: the group to take, by number or name" })
                }
                "secret" => {
                    json!({ "type": "boolean", "description": "treat the captured value as a secret: redacted everywhere" })
                }
                _ => json!({}),
            };
            properties.insert((*key).to_string(), schema);
        }
        json_schema!({
            "description": "A JSON path into the body, or a table naming the source.",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": properties,
                    "additionalProperties": false,
                    "minProperties": 1,
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_predicate_is_described() {
        let (e, t) = (json!({}), json!({}));
        for name in PREDICATES {
            assert!(predicate_property(name, &e, &t).is_some(), "{name}");
        }
    }
}
