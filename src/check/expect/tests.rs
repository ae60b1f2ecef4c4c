//! Pass, fail and the exact message of every predicate.

use serde_json::{json, Value};

use super::predicate::tests::node;
use super::*;

struct Captures;

impl Scope for Captures {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn secret(&self, _: &str) -> Option<String> {
        None
    }
    fn env(&self, _: &str) -> Option<String> {
        None
    }
    fn capture(&self, step: &str, name: &str) -> Option<String> {
        match (step, name) {
            ("create", "loc") => Some("/items/3".into()),
            ("create", "id") => Some("3".into()),
            _ => None,
        }
    }
}

/// Checks `expect = <src>` against `actual` (`None`: absent), label `JSON $.x`.
fn run(src: &str, actual: Option<Value>) -> Result<(), String> {
    let (_, n) = node(src);
    let expected = Expected::from_node(&n);
    assert!(expected.problems().is_empty(), "{:?}", expected.problems());
    expected.check("JSON $.x", &Actual::owned(actual), &Captures)
}

fn pass(src: &str, actual: Value) {
    assert_eq!(run(src, Some(actual.clone())), Ok(()), "{src} on {actual}");
}

fn fail(src: &str, actual: Option<Value>, message: &str) {
    assert_eq!(run(src, actual).unwrap_err(), message, "{src}");
}

#[test]
fn literal_and_eq() {
    pass("3", json!(3));
    pass("3", json!(3.0));
    pass("{ eq = \"ok\" }", json!("ok"));
    pass("{ eq = { a = [1, 2] } }", json!({"a": [1, 2]}));
    fail("3", Some(json!(4)), "JSON $.x: actual 4, expected 3");
    fail(
        "{ eq = \"ok\" }",
        Some(json!("down")),
        "JSON $.x: actual \"down\", expected \"ok\"",
    );
    fail("3", None, "JSON $.x: actual absent, expected 3");
}

#[test]
fn ne() {
    pass("{ ne = 0 }", json!(1));
    fail(
        "{ ne = 0 }",
        Some(json!(0)),
        "JSON $.x: actual 0, expected != 0",
    );
}

#[test]
fn orderings() {
    pass("{ gt = 0 }", json!(3));
    pass("{ ge = 3 }", json!(3));
    pass("{ lt = 3.5 }", json!(3));
    pass("{ le = 3 }", json!(3));
    pass("{ ge = 200, lt = 300 }", json!(204));
    pass(
        "{ gt = \"2025-01-01T00:00:00Z\" }",
        json!("2026-12-05T23:00:00Z"),
    );
    fail(
        "{ gt = 5 }",
        Some(json!(3)),
        "JSON $.x: actual 3, expected > 5",
    );
    fail(
        "{ ge = 5 }",
        Some(json!(3)),
        "JSON $.x: actual 3, expected >= 5",
    );
    fail(
        "{ lt = 3 }",
        Some(json!(3)),
        "JSON $.x: actual 3, expected < 3",
    );
    fail(
        "{ le = 2 }",
        Some(json!(3)),
        "JSON $.x: actual 3, expected <= 2",
    );
    fail(
        "{ ge = 200, lt = 300 }",
        Some(json!(404)),
        "JSON $.x: actual 404, expected < 300",
    );
    fail(
        "{ gt = 0 }",
        Some(json!("3")),
        "JSON $.x: actual \"3\" (string), expected > 0",
    );
}

#[test]
fn text() {
    pass("{ contains = \"json\" }", json!("application/json"));
    pass("{ starts_with = \"app\" }", json!("application/json"));
    pass("{ ends_with = \"json\" }", json!("application/json"));
    pass("{ matches = '^v\\d+$' }", json!("v12"));
    pass("{ matches = '^2\\d\\d$' }", json!(204));
    fail(
        "{ contains = \"json\" }",
        Some(json!("text/html")),
        "JSON $.x: actual \"text/html\", expected contains \"json\"",
    );
    fail(
        "{ starts_with = \"app\" }",
        Some(json!("text/html")),
        "JSON $.x: actual \"text/html\", expected starts with \"app\"",
    );
    fail(
        "{ ends_with = \"json\" }",
        Some(json!("text/html")),
        "JSON $.x: actual \"text/html\", expected ends with \"json\"",
    );
    fail(
        "{ matches = '^v\\d+$' }",
        Some(json!("version")),
        "JSON $.x: actual \"version\", expected matches /^v\\d+$/",
    );
    fail(
        "{ contains = \"a\" }",
        Some(json!(1)),
        "JSON $.x: actual 1 (integer), expected contains \"a\"",
    );
}

#[test]
fn contains_on_arrays_and_objects() {
    pass("{ contains = 2 }", json!([1, 2]));
    pass("{ contains = \"id\" }", json!({"id": 1}));
    fail(
        "{ contains = 3 }",
        Some(json!([1, 2])),
        "JSON $.x: actual [1,2], expected contains 3",
    );
}

#[test]
fn exists() {
    pass("{ exists = true }", json!(null));
    assert_eq!(run("{ exists = false }", None), Ok(()));
    fail(
        "{ exists = true }",
        None,
        "JSON $.x: actual absent, expected to exist",
    );
    fail(
        "{ exists = false }",
        Some(json!(1)),
        "JSON $.x: actual 1, expected absent",
    );
}

#[test]
fn empty() {
    pass("{ empty = true }", json!(""));
    pass("{ empty = true }", json!([]));
    pass("{ empty = true }", json!({}));
    pass("{ empty = false }", json!([1]));
    fail(
        "{ empty = true }",
        Some(json!([1])),
        "JSON $.x: actual [1], expected empty",
    );
    fail(
        "{ empty = false }",
        Some(json!("")),
        "JSON $.x: actual \"\", expected not empty",
    );
    fail(
        "{ empty = true }",
        Some(json!(0)),
        "JSON $.x: actual 0 (integer), expected empty",
    );
}

#[test]
fn types() {
    for (t, v) in [
        ("string", json!("a")),
        ("number", json!(1.5)),
        ("number", json!(1)),
        ("integer", json!(1)),
        ("boolean", json!(true)),
        ("array", json!([])),
        ("object", json!({})),
        ("null", json!(null)),
    ] {
        pass(&format!("{{ type = \"{t}\" }}"), v);
    }
    fail(
        "{ type = \"integer\" }",
        Some(json!(1.5)),
        "JSON $.x: actual 1.5 (number), expected type integer",
    );
}

#[test]
fn len() {
    pass("{ len = 3 }", json!([1, 2, 3]));
    pass("{ len = 2 }", json!("é!"));
    pass("{ len = { gt = 0 } }", json!({"a": 1}));
    fail(
        "{ len = 3 }",
        Some(json!([1, 2])),
        "JSON $.x: actual length 2 ([1,2]), expected length 3",
    );
    fail(
        "{ len = { gt = 0 } }",
        Some(json!([])),
        "JSON $.x: actual length 0 ([]), expected length > 0",
    );
    fail(
        "{ len = 1 }",
        Some(json!(7)),
        "JSON $.x: actual 7 (integer, which has no length), expected length 1",
    );
}

#[test]
fn any_of() {
    pass("{ any_of = [\"started\", \"stopped\"] }", json!("stopped"));
    fail(
        "{ any_of = [\"started\", \"stopped\"] }",
        Some(json!("failed")),
        "JSON $.x: actual \"failed\", expected one of \"started\", \"stopped\"",
    );
}

#[test]
fn not() {
    pass("{ not = { contains = \"error\" } }", json!("fine"));
    pass("{ not = 3 }", json!(4));
    fail(
        "{ not = { contains = \"error\" } }",
        Some(json!("an error")),
        "JSON $.x: actual \"an error\", expected not contains \"error\"",
    );
    fail(
        "{ not = { gt = 0, lt = 10 } }",
        Some(json!(5)),
        "JSON $.x: actual 5, expected not (> 0 and < 10)",
    );
}

#[test]
fn all_and_any_on_arrays() {
    pass("{ all = { gt = 0 } }", json!([1, 2]));
    pass("{ any = \"b\" }", json!(["a", "b"]));
    fail(
        "{ all = { gt = 0 } }",
        Some(json!([1, -1])),
        "JSON $.x: element [1]: actual -1, expected > 0",
    );
    fail(
        "{ any = \"c\" }",
        Some(json!(["a", "b"])),
        "JSON $.x: actual [\"a\",\"b\"], expected some element \"c\"",
    );
    fail(
        "{ all = 1 }",
        Some(json!(1)),
        "JSON $.x: actual 1 (integer, not a list), expected every element 1",
    );
}

#[test]
fn templates_compare_with_captured_values() {
    pass("{ eq = \"{{steps.create.loc}}\" }", json!("/items/3"));
    pass("\"{{steps.create.id}}\"", json!(3));
    fail(
        "{ eq = \"{{steps.create.loc}}\" }",
        Some(json!("/items/4")),
        "JSON $.x: actual \"/items/4\", expected \"/items/3\"",
    );
    fail(
        "{ eq = \"{{steps.create.nope}}\" }",
        Some(json!(1)),
        "JSON $.x: actual 1, expected a value for {{steps.create.nope}} has no value (the step did not capture it)",
    );
}

fn json_expect(src: &str) -> JsonExpect {
    #[derive(serde::Deserialize)]
    struct Doc {
        json: JsonExpect,
    }
    toml::from_str::<Doc>(&format!("json = {src}\n"))
        .unwrap()
        .json
}

#[test]
fn list_paths_name_the_failing_element() {
    let doc = json!({"count": 3, "items": [
        {"id": 1, "state": "started"},
        {"id": 2, "state": "stopped"},
        {"id": -3, "state": "started"}
    ]});
    let expect = json_expect(
        "{ count = { gt = 0 }, \"$.items[?@.state == 'stopped']\" = { len = 1 }, \"$.items[-1].id\" = -3, missing = { exists = false }, \"$.items[*].state\" = { any = \"stopped\", all = { any_of = [\"started\", \"stopped\"] } } }",
    );
    assert!(expect.problems().is_empty(), "{:?}", expect.problems());
    assert_eq!(expect.unmet("JSON", &doc, &Captures), Vec::<String>::new());

    let expect = json_expect(
        "{ \"$.items[*].id\" = { all = { gt = 0 } }, \"$.count\" = { gt = 5 }, \"$.items[?@.state == 'gone']\" = { len = { gt = 0 } }, \"$.items\" = { len = 2 } }",
    );
    assert_eq!(
        expect.unmet("JSON", &doc, &Captures),
        [
            "JSON $.count: actual 3, expected > 5",
            "JSON $.items: actual length 3 ([{\"id\":1,\"state\":\"started\"},{\"id\":2,\"state\":\"stopped\"},{\"id\":-3,\"state\":\"starte…), expected length 2",
            "JSON $.items[*].id: element $['items'][2]['id']: actual -3, expected > 0",
            "JSON $.items[?@.state == 'gone']: actual length 0 ([]), expected length > 0",
        ]
    );
    let absent = json_expect("{ \"$..nope\" = { exists = true } }");
    assert_eq!(
        absent.unmet("JSON", &doc, &Captures),
        ["JSON $..nope: actual [], expected to exist"]
    );
}

#[test]
fn invalid_paths_are_load_problems() {
    let expect = json_expect("{ \"$.items[?\" = 1 }");
    let problems = expect.problems();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.starts_with("invalid JSONPath"),
        "{problems:?}"
    );
}
