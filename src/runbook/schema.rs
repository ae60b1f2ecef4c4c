//! The JSON Schema (draft 2020-12) of runbooks and check files, for editors
//! (Taplo / Even Better TOML) and CI. Each kind's keys come from the types
//! the loader deserializes ([`CheckSpec::kind_schema`]), `[runbook]` and
//! `[secrets]` from [`super::model`]; the keys the loader reads one by one
//! (a step's common keys, `[defaults]`, `[vars]`) are described here from
//! the same constants ([`STEP_KEYS`], [`KINDS`], [`MAX_RETRIES`]).

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::model::{Backoff, NotifyConfig, RunbookMeta, SecretsConfig};
use super::step::{MAX_RETRIES, STEP_KEYS};
use crate::check::{CheckSpec, KINDS};
use crate::core::duration::HumanDuration;

/// The schema document, as JSON.
pub fn schema() -> Value {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12().into_generator();
    let meta = generator.subschema_for::<RunbookMeta>().to_value();
    let secrets = generator.subschema_for::<SecretsConfig>().to_value();
    let notify = generator.subschema_for::<NotifyConfig>().to_value();
    let backoff = generator.subschema_for::<Backoff>().to_value();
    let duration = generator.subschema_for::<HumanDuration>().to_value();
    let mut kinds = Vec::new();
    for kind in KINDS {
        if let Some(schema) = CheckSpec::kind_schema(kind, &mut generator) {
            kinds.push((*kind, schema.to_value()));
        }
    }
    let mut definitions: Map<String, Value> = generator.take_definitions(true);
    // One closed table per kind: the common keys, `check = "<kind>"` and the
    // kind's own keys, nothing else. A step must match exactly one, so a
    // misspelt key fails in every validator (no reliance on
    // `unevaluatedProperties`), and editors complete the keys of the kind.
    let common = common_keys(&duration, &backoff);
    let mut branches = Vec::new();
    for (kind, reference) in &kinds {
        let Some(name) = def_name(reference) else {
            continue;
        };
        let Some(Value::Object(def)) = definitions.get_mut(name) else {
            continue;
        };
        let properties = def
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a struct's properties are an object");
        for (key, schema) in &common {
            properties.insert(key.clone(), schema.clone());
        }
        properties.insert(
            "check".into(),
            json!({ "description": format!("The check kind: `{kind}`."), "const": kind }),
        );
        let required = def.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(required) = required {
            required.insert(0, json!("check"));
            required.insert(0, json!("id"));
        }
        def.insert("type".into(), json!("object"));
        def.insert("additionalProperties".into(), json!(false));
        branches.push(reference.clone());
    }
    let step = step_schema(&common, branches);
    definitions.insert("Step".into(), step);
    definitions.insert("Defaults".into(), defaults_schema(&duration, &backoff));

    let list = |noun: &str| {
        json!({
            "description": format!("Each `[[{noun}]]`: an id, a `check` kind and that kind's keys."),
            "type": "array",
            "items": { "$ref": "#/$defs/Step" },
        })
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "runproof runbook or check file",
        "description": "A runbook (`[runbook]` and `[[step]]`) or a sweep's check file (`[[check]]`, no `[runbook]`).",
        "type": "object",
        "properties": {
            "runbook": meta,
            "secrets": secrets,
            "vars": {
                "description": "Literal strings for `{{name}}` placeholders; override with `--var name=value`.",
                "type": "object",
                "propertyNames": { "pattern": "^[A-Za-z0-9_-]+$" },
                "additionalProperties": { "type": "string" },
            },
            "defaults": { "$ref": "#/$defs/Defaults" },
            "notify": notify,
            "step": list("step"),
            "check": list("check"),
        },
        "additionalProperties": false,
        "oneOf": [
            {
                "description": "a runbook",
                "required": ["runbook", "step"],
                "properties": { "check": false },
            },
            {
                "description": "a check file",
                "required": ["check"],
                "properties": { "runbook": false, "step": false },
            },
        ],
        "$defs": definitions,
    })
}

/// `#/$defs/Name` → `Name`.
fn def_name(reference: &Value) -> Option<&str> {
    reference.get("$ref")?.as_str()?.rsplit('/').next()
}

/// The keys every step has, whatever its kind.
fn common_keys(duration: &Value, backoff: &Value) -> Map<String, Value> {
    let mut common = Map::new();
    for key in STEP_KEYS {
        let schema = match *key {
            "id" => json!({
                "description": "Unique id: names the step in `depends_on`, `{{steps.ID.NAME}}` and the evidence.",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]+$",
            }),
            "title" => json!({ "description": "What the step shows, in words.", "type": "string" }),
            "check" => json!({
                "description": "The check kind; the other keys depend on it.",
                "enum": KINDS,
            }),
            "depends_on" => json!({
                "description": "Ids that must pass first; otherwise this one is blocked.",
                "type": "array",
                "items": { "type": "string" },
            }),
            "retries" => json!({
                "description": format!("Retries after the first attempt (0–{MAX_RETRIES}); overrides [defaults]."),
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_RETRIES,
            }),
            "timeout" => with_description(duration, "Per-attempt timeout; overrides [defaults]."),
            "backoff" => {
                with_description(backoff, "Backoff between attempts; overrides [defaults].")
            }
            "mutating" => json!({
                "description": "The step changes something: it runs only with `--allow-mutations`.",
                "type": "boolean",
            }),
            "owner" => json!({
                "description": "Who is escalated to for this step (overrides the runbook's owner).",
                "type": "string",
            }),
            "hint" => json!({
                "description": "Shown in the escalation record: what to look at first.",
                "type": "string",
            }),
            "tags" => json!({
                "description": "Free-form; `key=value` tags become Prometheus labels in sweeps, and `--allow-mutations=TAG` selects mutating steps by them.",
                "type": "array",
                "items": { "type": "string" },
            }),
            "collect" => json!({
                "description": "Read-only commands run after the last failed attempt; their output is stored and named in the escalation (`[{ argv = [\"fly\", \"logs\", \"--no-tail\"] }]`).",
                "type": "array",
                "items": { "type": "object", "description": "The `command` kind's keys: `argv` or `shell`, `env`, `cwd`." },
            }),
            "when" => json!({
                "description": "Run the step only when every entry holds: keys are templates (`\"{{steps.queue.depth}}\"`), values literals or predicate tables.",
                "type": "object",
                "additionalProperties": { "description": "A literal (equality) or a predicate table." },
            }),
            // A key added to STEP_KEYS without a schema here still validates
            // (any value); the test of described keys catches it.
            _ => json!({}),
        };
        common.insert((*key).to_string(), schema);
    }
    common
}

/// A step (or check): exactly one kind's table.
fn step_schema(common: &Map<String, Value>, branches: Vec<Value>) -> Value {
    json!({
        "description": "A step (`[[step]]`) or check (`[[check]]`): `id`, `check` (the kind) and that kind's keys.",
        "type": "object",
        "properties": { "id": common["id"], "check": common["check"] },
        "required": ["id", "check"],
        "oneOf": branches,
    })
}

/// `[defaults]`, read key by key by the loader.
fn defaults_schema(duration: &Value, backoff: &Value) -> Value {
    json!({
        "description": "The retry policy every step inherits.",
        "type": "object",
        "properties": {
            "retries": {
                "description": format!("Retries after the first attempt (0–{MAX_RETRIES}); default 2."),
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_RETRIES,
            },
            "timeout": with_description(duration, "Per-attempt timeout; default 10s."),
            "backoff": with_description(backoff, "Exponential backoff between attempts."),
        },
        "additionalProperties": false,
    })
}

/// `{ "$ref": … }` with a description beside it (allowed in 2020-12).
fn with_description(schema: &Value, description: &str) -> Value {
    let mut schema = schema.clone();
    if let Value::Object(object) = &mut schema {
        object.insert("description".into(), description.into());
    }
    schema
}
