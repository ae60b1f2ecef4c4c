//! Canary search: whether a secret shows up in some bytes in any form it could
//! leak in — raw, hex (lower and upper case), base64 at each of the three byte
//! alignments (standard and URL-safe alphabets), percent-encoded,
//! form-encoded or JSON-escaped.

use std::path::Path;

use base64::Engine as _;

/// Every searchable form of `canary`, each with a name for failure messages.
/// Base64 forms keep only the characters fully determined by the canary's
/// own bytes, so they match wherever the canary sits inside a larger encoded
/// value.
pub fn forms(canary: &str) -> Vec<(Vec<u8>, String)> {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let bytes = canary.as_bytes();
    let mut out = vec![
        (bytes.to_vec(), "raw".to_string()),
        (hex::encode(bytes).into_bytes(), "hex".to_string()),
        (
            hex::encode_upper(bytes).into_bytes(),
            "upper-case hex".to_string(),
        ),
        (
            utf8_percent_encode(canary, NON_ALPHANUMERIC)
                .to_string()
                .into_bytes(),
            "percent-encoded".to_string(),
        ),
        (
            url::form_urlencoded::byte_serialize(bytes)
                .collect::<String>()
                .into_bytes(),
            "form-encoded".to_string(),
        ),
    ];
    let json = serde_json::to_string(canary).unwrap();
    out.push((
        json.as_bytes()[1..json.len() - 1].to_vec(),
        "JSON-escaped".to_string(),
    ));
    let engines = [
        ("base64", base64::engine::general_purpose::STANDARD_NO_PAD),
        (
            "URL-safe base64",
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ),
    ];
    for (name, engine) in engines {
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            // Characters mixing bits of the padding bytes or of whatever
            // follows the canary are left out.
            let start = (8 * offset).div_ceil(6);
            let end = 8 * shifted.len() / 6;
            out.push((
                encoded.as_bytes()[start..end].to_vec(),
                format!("{name} at byte offset {offset}"),
            ));
        }
    }
    out.retain(|(form, _)| !form.is_empty());
    out
}

/// The name of the first form of `canary` found in `haystack`, if any.
pub fn find(haystack: &[u8], canary: &str) -> Option<String> {
    forms(canary).into_iter().find_map(|(form, name)| {
        haystack
            .windows(form.len())
            .any(|w| w == form.as_slice())
            .then_some(name)
    })
}

/// Panics naming the place and the form when `canary` is in `haystack`.
pub fn assert_absent(haystack: &[u8], canary: &str, place: &str) {
    if let Some(form) = find(haystack, canary) {
        panic!("the {form} form of a canary secret leaked into {place}");
    }
}

/// Checks stdout, stderr and every file under `dir` (a bundle or an
/// artifacts folder) for every canary in every form.
pub fn assert_nowhere(output: &std::process::Output, dir: &Path, canaries: &[&str]) {
    for canary in canaries {
        assert_absent(&output.stdout, canary, "stdout");
        assert_absent(&output.stderr, canary, "stderr");
        for file in super::files_under(dir) {
            let bytes = std::fs::read(&file).expect("read bundle file");
            assert_absent(&bytes, canary, &file.display().to_string());
        }
    }
}

#[test]
fn forms_find_the_canary_at_every_alignment() {
    let canary = "cnry-Secret/+=42";
    for prefix in ["", "a", "ab", "abc"] {
        let value = format!("{prefix}{canary}!tail");
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ] {
            let encoded = engine.encode(&value);
            assert!(find(encoded.as_bytes(), canary).is_some(), "{encoded}");
        }
        let hex_upper = hex::encode_upper(&value);
        assert!(find(hex_upper.as_bytes(), canary).is_some());
    }
    assert!(find(b"nothing to see here", canary).is_none());
}
