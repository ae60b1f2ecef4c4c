//! Telling a placeholder (`changeme`, `<token>`, `xxx`, `TODO`) from a real
//! secret value: used by the `secret` check and by secret loading.

/// Why `value` looks like a placeholder rather than a real secret, if it
/// does. Case-insensitive; the reason names the rule that matched.
pub fn placeholder_reason(value: &str) -> Option<&'static str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Some("it is empty");
    }
    let lower = trimmed.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next()?;
    if chars.all(|c| c == first) {
        return Some("every character is the same");
    }
    if lower.starts_with('<') && lower.ends_with('>') {
        return Some("it is a `<...>` placeholder");
    }
    if lower.starts_with("${") && lower.ends_with('}') {
        return Some("it is an unexpanded `${...}` reference");
    }
    if lower.starts_with("{{") && lower.ends_with("}}") {
        return Some("it is an unexpanded `{{...}}` template");
    }
    // Separators vary (`change-me`, `CHANGE_ME`, `change me`): compare without them.
    let squashed: String = lower
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    if ["changeme", "changethis", "replaceme"]
        .iter()
        .any(|w| squashed.contains(w))
    {
        return Some("it contains `changeme`-style filler");
    }
    if squashed.contains("placeholder") {
        return Some("it contains `placeholder`");
    }
    if squashed.contains("example") {
        return Some("it contains `example`");
    }
    if lower.starts_with("xxx")
        || lower.ends_with("xxx")
        || (lower.contains('x')
            && lower
                .chars()
                .all(|c| c == 'x' || !c.is_ascii_alphanumeric()))
    {
        return Some("it is `xxx` filler");
    }
    if lower.starts_with("your-") || lower.starts_with("your_") || lower.starts_with("your ") {
        return Some("it reads like an instruction (`your-...`), not a value");
    }
    if lower.ends_with("_here") || lower.ends_with("-here") || lower.ends_with(" here") {
        return Some("it reads like an instruction (`..._here`), not a value");
    }
    let word_start = |word: &str| {
        lower
            .strip_prefix(word)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
    };
    if ["todo", "tbd", "fixme", "tba"]
        .iter()
        .any(|w| word_start(w))
    {
        return Some("it is a to-do marker (`TODO`, `TBD`, `FIXME`)");
    }
    const DUMMIES: &[&str] = &[
        "secret",
        "password",
        "passw0rd",
        "pass",
        "dummy",
        "test",
        "testing",
        "sample",
        "fake",
        "none",
        "null",
        "nil",
        "undefined",
        "empty",
        "default",
        "redacted",
        "token",
        "apikey",
        "key",
        "insertkey",
        "setme",
        "123",
        "1234",
        "12345",
        "123456",
        "12345678",
        "abc",
        "abc123",
        "qwerty",
        "letmein",
        "admin",
        "foo",
        "bar",
        "foobar",
        "demo",
    ];
    if DUMMIES.contains(&squashed.as_str()) {
        return Some("it is a common dummy value (`secret`, `password`, `test`, `dummy`, ...)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised_with_the_rule_that_matched() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("aaaaaaaa", "same"),
            ("********", "same"),
            ("<your token>", "`<...>`"),
            ("${FLY_API_TOKEN}", "`${...}`"),
            ("{{secret:X}}", "`{{...}}`"),
            ("changeme", "changeme"),
            ("Change-Me", "changeme"),
            ("CHANGE_ME_PLEASE", "changeme"),
            ("replace_me", "changeme"),
            ("PLACEHOLDER", "placeholder"),
            ("sk-example-123", "example"),
            ("xxx", "same"),
            ("xxxx-xxxx-xxxx", "xxx"),
            ("sk_live_xxx", "xxx"),
            ("your-api-token", "instruction"),
            ("put_token_here", "instruction"),
            ("TODO", "to-do"),
            ("todo: fill in", "to-do"),
            ("TBD", "to-do"),
            ("secret", "dummy"),
            ("Password", "dummy"),
            ("dummy", "dummy"),
            ("test", "dummy"),
            ("123456", "dummy"),
        ];
        for (value, rule) in cases {
            let reason =
                placeholder_reason(value).unwrap_or_else(|| panic!("{value:?} not flagged"));
            assert!(reason.contains(rule), "{value:?}: {reason}");
        }
    }

    #[test]
    fn real_looking_values_pass() {
        for value in [
            "fo1_8pQ2xR7vNmL0aZ3kYw9bTcHs",
            "sk_live_51HxYz2eZvKYlo2C",
            "postgres://app:Zx81qPl0@db.internal:5432/app",
            "todoist-3f9a8b7c", // starts with "todo" but is one word
            "testosterone-9f8e7d",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        ] {
            assert_eq!(placeholder_reason(value), None, "{value}");
        }
    }
}
