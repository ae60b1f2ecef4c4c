//! The redactor's structural rules for values under a key, matched by hand
//! from each separator rather than by a regex: credentials in query strings
//! (`?token=…`), credential headers (`Authorization: Bearer …`,
//! `"x-api-key": "…"`, `Cookie = "…"`), credentials under TOML or INI keys
//! (`token = "…"`, `env = { DB_PASSWORD = '…' }`) and credentials under JSON
//! keys (`"password": "…"`). The DSN rule (`password=…`) stays a regex: its
//! literal finds its few candidates faster than a look at every `=` would.
//!
//! Each rule's regex (kept in the tests, as the reference each matcher is
//! held to on fixed and random texts) cost most where it matched least:
//! without a literal to start from (the credential-key one begins at any
//! space, `{`, `,`, `.` or `"`), or with names matched case-insensitively,
//! their engines ran an automaton over every byte or searched backwards from
//! each candidate word, and a check file copied into a bundle has several per
//! check (`{{secret:BENCH_TOKEN}}` holds `secret` and `TOKEN`; the header
//! rule matches each template `Bearer {{secret:…}}`, then kept). A `:` or
//! `=` is rarer than the bytes those engines looked at, and the key before it
//! is told from its last three bytes. At 10,000 checks in one file
//! (instructions a check, less SHA-256): the credential-key rule cost 4,700
//! as a regex and costs 1,700 here; the query, header and JSON rules by hand
//! took a sweep from 90,800 to 85,000.
//!
//! Bytes, not characters: a value holding bytes that are not UTF-8 is
//! matched too (the regexes, in Unicode mode, stopped at them and left the
//! value as it was), and names, spaces and word boundaries are ASCII, as
//! header names, query keys and TOML's bare keys are.

use std::ops::Range;

/// How the name of a key holding a credential ends (`token`,
/// `DB_PASSWORD`, `routing_key`), ASCII case-insensitively.
pub(super) const KEY_ENDINGS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "routing_key",
    "private_key",
    "secret_key",
    "access_key",
];

/// The last three bytes of every one of [`KEY_ENDINGS`], lower case.
const KEY_TAILS: [&[u8]; 5] = [b"ord", b"swd", b"ret", b"ken", b"key"];

/// Header names whose values are credentials.
pub(super) const HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "apikey",
    "api-key",
    "api_access_token",
    "x-auth-token",
    "private-token",
];

/// The last three bytes of every one of [`HEADERS`], lower case.
const HEADER_TAILS: [&[u8]; 4] = [b"ion", b"kie", b"key", b"ken"];

/// Query keys whose values are credentials (`?token=…`, `&sig=…`).
pub(super) const QUERY_KEYS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "key",
    "apikey",
    "api_key",
    "sig",
    "signature",
    "secret",
    "password",
    "x-amz-signature",
    "x-amz-security-token",
];

/// The last three bytes of every one of [`QUERY_KEYS`], lower case.
const QUERY_TAILS: [&[u8]; 6] = [b"ken", b"ret", b"key", b"sig", b"ure", b"ord"];

/// JSON keys whose string values are credentials (`"password": "…"`).
pub(super) const JSON_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
];

/// The last three bytes of every one of [`JSON_KEYS`], lower case.
const JSON_TAILS: [&[u8]; 5] = [b"ord", b"swd", b"ret", b"ken", b"key"];

/// Schemes a credential header's value may start with, before the value.
const SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "token",
    "flyv1",
    "digest",
    "negotiate",
    "bot",
    "apikey",
];

/// The values after `separators` (ascending), left to right as a regex's
/// `find_iter` finds its matches: at each separator with a key before it
/// (`key_before`, told where the last match ended) and a value after it
/// (`value_after`, from the byte after the separator). A match ends
/// `closing` bytes after its value (its closing quote, if it has one); the
/// next starts no earlier.
fn values_at<'a>(
    bytes: &'a [u8],
    mut separators: impl Iterator<Item = usize> + 'a,
    key_before: impl Fn(&[u8], usize, usize) -> bool + 'a,
    mut value_after: impl FnMut(&[u8], usize) -> Option<Range<usize>> + 'a,
    closing: usize,
) -> impl Iterator<Item = Range<usize>> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || loop {
        let at = separators.next()?;
        // The key first: most separators follow other keys, and it is told
        // in a few bytes where the value would be read to its end.
        if at < from || !key_before(bytes, at, from) {
            continue;
        }
        let Some(value) = value_after(bytes, at + 1) else {
            continue;
        };
        from = value.end + closing;
        return Some(value);
    })
}

/// The ranges of the values to consider, left to right, as the reference
/// regex's `find_iter` finds its matches: each is a non-empty quoted string
/// after `=` (spaces around it allowed, a basic string's opening quote
/// possibly JSON-escaped as `\"`), under a key ending in one of
/// [`KEY_ENDINGS`], the key at the text's start or after a space, `{`, `,`,
/// `.` or `"` that no earlier match took.
pub(super) fn credential_values(bytes: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut unclosed_to = 0;
    // The match ends after the closing quote.
    values_at(
        bytes,
        memchr::memchr_iter(b'=', bytes),
        key_before,
        move |bytes: &[u8], at| value_after(bytes, at, &mut unclosed_to),
        1,
    )
}

/// Whether a credential's key ends before `eq` (`"?` and spaces between),
/// starting at the text's start or after a byte that starts a match at or
/// after `from`.
fn key_before(bytes: &[u8], eq: usize, from: usize) -> bool {
    let end = key_end(bytes, eq);
    if !tail_is(bytes, end, &KEY_TAILS) {
        return false;
    }
    let mut start = end;
    while start > 0 && is_key_byte(bytes[start - 1]) {
        start -= 1;
    }
    let key = &bytes[start..end];
    let ends_right = KEY_ENDINGS.iter().any(|ending| ends_with(key, ending));
    if !ends_right {
        return false;
    }
    may_start(bytes, start, from, |b| {
        matches!(b, b'{' | b',' | b'.' | b'"')
    })
}

/// Where a key before `separator` ends: before the spaces, and a `"` that
/// may close a quoted key, in front of the separator.
fn key_end(bytes: &[u8], separator: usize) -> usize {
    let end = skip_spaces_back(bytes, separator);
    match end.checked_sub(1) {
        Some(quote) if bytes[quote] == b'"' => quote,
        _ => end,
    }
}

/// Whether a match may start before a key at `start`: at the text's start
/// while nothing has matched, or at the byte before the key, a space or one
/// that `opens` a match, which no earlier match took (none before `from`).
fn may_start(bytes: &[u8], start: usize, from: usize, opens: impl Fn(u8) -> bool) -> bool {
    match start.checked_sub(1) {
        None => from == 0,
        Some(before) => before >= from && (opens(bytes[before]) || is_space(bytes[before])),
    }
}

/// The ranges of the values to consider, left to right, as the reference
/// regex's `find_iter` finds its matches: after one of [`HEADERS`] at a word
/// boundary, then `"`, spaces, `:` or `=`, spaces and `"` as they come, and
/// one of [`SCHEMES`] with spaces after it if one is there, the rest of the
/// line up to a `"` or `\`, starting with a byte that is none of those nor a
/// space.
pub(super) fn header_values(bytes: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let separators = memchr::memchr2_iter(b':', b'=', bytes);
    values_at(bytes, separators, header_before, header_value_after, 0)
}

/// Whether one of [`HEADERS`] ends before the separator at `at` (`"?` and
/// spaces between), at a word boundary at or after `from`. Where two names
/// end there (`authorization`, `proxy-authorization`), the value after the
/// separator is the same whichever the match starts with.
fn header_before(bytes: &[u8], at: usize, from: usize) -> bool {
    let end = key_end(bytes, at);
    if !tail_is(bytes, end, &HEADER_TAILS) {
        return false;
    }
    HEADERS.iter().any(|name| {
        let Some(start) = end.checked_sub(name.len()) else {
            return false;
        };
        start >= from
            && bytes[start..end].eq_ignore_ascii_case(name.as_bytes())
            && (start == 0 || !is_word_byte(bytes[start - 1]))
    })
}

/// The value after a header's separator, from `at`: spaces, a `"`, a scheme
/// with spaces after it where the value starts after them, then the value.
fn header_value_after(bytes: &[u8], at: usize) -> Option<Range<usize>> {
    let mut i = skip_spaces(bytes, at);
    if bytes.get(i) == Some(&b'"') {
        i += 1;
    }
    let after_scheme = SCHEMES.iter().find_map(|scheme| {
        let end = i + scheme.len();
        let word = bytes.get(i..end)?;
        if !word.eq_ignore_ascii_case(scheme.as_bytes()) {
            return None;
        }
        let value = skip_spaces(bytes, end);
        (value > end && bytes.get(value).is_some_and(|&b| starts_header_value(b))).then_some(value)
    });
    let start = after_scheme.unwrap_or(i);
    if !bytes.get(start).is_some_and(|&b| starts_header_value(b)) {
        return None;
    }
    let len = bytes[start..]
        .iter()
        .position(|&b| matches!(b, b'\r' | b'\n' | b'"' | b'\\'))
        .unwrap_or(bytes.len() - start);
    Some(start..start + len)
}

/// A header value's first byte: not a space, `"` or `\`.
fn starts_header_value(b: u8) -> bool {
    !is_space(b) && b != b'"' && b != b'\\'
}

/// Where the spaces before `end` start.
fn skip_spaces_back(bytes: &[u8], mut end: usize) -> usize {
    while end > 0 && is_space(bytes[end - 1]) {
        end -= 1;
    }
    end
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    i
}

/// Whether `key` ends in `ending`, ASCII case-insensitively.
fn ends_with(key: &[u8], ending: &str) -> bool {
    key.len() >= ending.len()
        && key[key.len() - ending.len()..].eq_ignore_ascii_case(ending.as_bytes())
}

/// A byte of a word, as an ASCII regex's `\b` reads it.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The ranges of the values to consider, left to right, as the reference
/// regex's `find_iter` finds its matches: the bytes after `=` up to `&`, `#`,
/// a space, a quote or `\\` (at least one), under one of [`QUERY_KEYS`] at
/// the text's start or after `?`, `&`, `;`, a space or `"` that no earlier
/// match took.
pub(super) fn query_values(bytes: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let equals = memchr::memchr_iter(b'=', bytes);
    values_at(bytes, equals, query_key_before, query_value_after, 0)
}

/// A query value from `at`: up to `&`, `#`, a space, a quote or `\\`, not
/// empty.
fn query_value_after(bytes: &[u8], at: usize) -> Option<Range<usize>> {
    let len = bytes[at..]
        .iter()
        .position(|&b| matches!(b, b'&' | b'#' | b'"' | b'\'' | b'\\') || is_space(b))
        .unwrap_or(bytes.len() - at);
    (len > 0).then_some(at..at + len)
}

/// Whether one of [`QUERY_KEYS`] ends right before `eq`, at the text's
/// start or after a byte that starts a match at or after `from`.
fn query_key_before(bytes: &[u8], eq: usize, from: usize) -> bool {
    if !tail_is(bytes, eq, &QUERY_TAILS) {
        return false;
    }
    QUERY_KEYS.iter().any(|key| {
        let Some(start) = eq.checked_sub(key.len()) else {
            return false;
        };
        bytes[start..eq].eq_ignore_ascii_case(key.as_bytes())
            && may_start(bytes, start, from, |b| {
                matches!(b, b'?' | b'&' | b';' | b'"')
            })
    })
}

/// The ranges of the values to consider, left to right, as the reference
/// regex's `find_iter` finds its matches: a non-empty JSON string (escapes
/// kept whole) after `:` and spaces, under one of [`JSON_KEYS`] quoted
/// (`"token"`), with spaces before the `:`.
pub(super) fn json_values(bytes: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let colons = memchr::memchr_iter(b':', bytes);
    // The match ends after the closing quote.
    values_at(bytes, colons, json_key_before, json_string_after, 1)
}

/// Whether one of [`JSON_KEYS`], quoted, ends before `colon` (spaces
/// between), its opening quote at or after `from`.
fn json_key_before(bytes: &[u8], colon: usize, from: usize) -> bool {
    let end = skip_spaces_back(bytes, colon);
    if end == 0 || bytes[end - 1] != b'"' {
        return false;
    }
    let end = end - 1;
    if !tail_is(bytes, end, &JSON_TAILS) {
        return false;
    }
    JSON_KEYS.iter().any(|key| {
        let Some(quote) = end.checked_sub(key.len() + 1) else {
            return false;
        };
        quote >= from
            && bytes[quote] == b'"'
            && bytes[quote + 1..end].eq_ignore_ascii_case(key.as_bytes())
    })
}

/// The contents of the JSON string after spaces from `at`: escapes kept
/// whole (a `\\` and the byte after it, but a line's end), raw line ends
/// allowed, not empty; `None` when there is none.
fn json_string_after(bytes: &[u8], at: usize) -> Option<Range<usize>> {
    let start = skip_spaces(bytes, at);
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    let start = start + 1;
    let mut j = start;
    loop {
        match *bytes.get(j)? {
            b'"' => return (j > start).then_some(start..j),
            b'\\' => match *bytes.get(j + 1)? {
                b'\n' => return None,
                _ => j += 2,
            },
            _ => j += 1,
        }
    }
}

/// Whether the three bytes before `end` are one of `tails`, ASCII
/// case-insensitively: most keys are told by them.
fn tail_is(bytes: &[u8], end: usize, tails: &[&[u8]]) -> bool {
    end.checked_sub(3).is_some_and(|start| {
        tails
            .iter()
            .any(|t| bytes[start..end].eq_ignore_ascii_case(t))
    })
}

/// The value of the quoted string after spaces from `at`: a basic string
/// (`"…"`, escapes kept whole, opened as `"` or `\"`) or a literal one
/// (`'…'`), on one line and not empty; `None` when there is none.
///
/// `unclosed_to` keeps each search linear in the text: where the last basic
/// string found unclosed met its line's end. A later one opened before that
/// is unclosed too, so it is not read again. (Every `"` the earlier string's
/// reading passed was escaped, or it would have closed it: so the later
/// string's first byte is one that reading stood on, and from there the two
/// read alike, to the same end. Without this, a line of `token=\"x ` a
/// million bytes long, as a hostile server's body may be, was read once
/// for each of its `=`.)
fn value_after(bytes: &[u8], at: usize, unclosed_to: &mut usize) -> Option<Range<usize>> {
    let i = skip_spaces(bytes, at);
    match bytes.get(i)? {
        b'\'' => {
            let start = i + 1;
            let len = bytes[start..]
                .iter()
                .position(|&b| matches!(b, b'\'' | b'\r' | b'\n'))?;
            (len > 0 && bytes[start + len] == b'\'').then_some(start..start + len)
        }
        quote @ (b'"' | b'\\') => {
            let mut start = i + 1;
            if *quote == b'\\' {
                if bytes.get(start) != Some(&b'"') {
                    return None;
                }
                start += 1;
            }
            // `start - 1` is the opening quote.
            if start - 1 < *unclosed_to {
                return None;
            }
            let mut j = start;
            let unclosed_at = loop {
                match bytes.get(j) {
                    None => break bytes.len(),
                    Some(b'"') => return (j > start).then_some(start..j),
                    Some(b'\r' | b'\n') => break j,
                    // An escape: the byte after it, whatever it is, but a
                    // line's end.
                    Some(b'\\') => match bytes.get(j + 1) {
                        None => break bytes.len(),
                        Some(b'\n') => break j,
                        Some(_) => j += 2,
                    },
                    Some(_) => j += 1,
                }
            };
            *unclosed_to = unclosed_at;
            None
        }
        _ => None,
    }
}

/// A byte of a bare key as the rule reads it.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `\s` of an ASCII regex: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::bytes::Regex;

    /// The credential-key rule as a regex (ASCII, as the matcher is): what
    /// [`credential_values`] must find.
    fn reference() -> Regex {
        Regex::new(&format!(
            r#"(?i-u)(?:^|[\s{{,."])[a-z0-9_\-]*(?:{})"?\s*=\s*(?:\\?"(?P<value>(?:[^"\\\r\n]|\\.)+)"|'(?P<literal>[^'\r\n]+)')"#,
            KEY_ENDINGS.join("|")
        ))
        .unwrap()
    }

    fn by_reference(regex: &Regex, text: &[u8]) -> Vec<Range<usize>> {
        regex
            .captures_iter(text)
            .map(|c| {
                c.name("value")
                    .or_else(|| c.name("literal"))
                    .unwrap()
                    .range()
            })
            .collect()
    }

    /// The header rule as a regex (ASCII, as the matcher is): what
    /// [`header_values`] must find.
    fn header_reference() -> Regex {
        let names: Vec<String> = HEADERS.iter().map(|h| regex::escape(h)).collect();
        Regex::new(&format!(
            r#"(?i-u)\b(?:{})"?\s*[:=]\s*"?(?:(?:{})\s+)?(?P<value>[^\s"\\][^\r\n"\\]*)"#,
            names.join("|"),
            SCHEMES.join("|")
        ))
        .unwrap()
    }

    fn tails_hold(tails: &[&[u8]], words: &[&str]) {
        for word in words {
            assert!(
                tails.contains(&&word.as_bytes()[word.len() - 3..]),
                "{word}"
            );
        }
    }

    #[test]
    fn every_key_ends_in_a_tail_the_quick_test_lets_through() {
        tails_hold(&KEY_TAILS, KEY_ENDINGS);
        tails_hold(&HEADER_TAILS, HEADERS);
        tails_hold(&QUERY_TAILS, QUERY_KEYS);
        tails_hold(&JSON_TAILS, JSON_KEYS);
    }

    /// The query rule as a regex (ASCII, as the matcher is).
    fn query_reference() -> Regex {
        Regex::new(&format!(
            r#"(?i-u)(?:^|[?&;\s"])(?:{})=(?P<value>[^&#\s"'\\]+)"#,
            QUERY_KEYS.join("|")
        ))
        .unwrap()
    }

    /// The JSON rule as a regex (ASCII, as the matcher is).
    fn json_reference() -> Regex {
        Regex::new(&format!(
            r#"(?i-u)"(?:{})"\s*:\s*"(?P<value>(?:[^"\\]|\\.)+)""#,
            JSON_KEYS.join("|")
        ))
        .unwrap()
    }

    /// `matcher` finds in each of `texts` what `reference` does.
    fn agrees(matcher: impl Fn(&[u8]) -> Vec<Range<usize>>, reference: &Regex, texts: &[&[u8]]) {
        for text in texts {
            assert_eq!(
                matcher(text),
                by_reference(reference, text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// `matcher` finds what `reference` does in 20,000 random texts of
    /// `pieces`, which match often enough for that to mean something.
    fn agrees_on_random_texts(
        matcher: impl Fn(&[u8]) -> Vec<Range<usize>>,
        reference: &Regex,
        pieces: &[&[u8]],
        seed: u64,
    ) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut matched = 0;
        for _ in 0..20_000 {
            let mut text = Vec::new();
            for _ in 0..rng.usize(1..24) {
                text.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
            let expected = by_reference(reference, &text);
            matched += expected.len();
            assert_eq!(
                matcher(&text),
                expected,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
        }
        assert!(matched > 5_000, "{matched}");
    }

    #[test]
    fn the_query_matcher_finds_what_the_reference_regex_finds() {
        let regex = query_reference();
        agrees(
            |t| query_values(t).collect(),
            &regex,
            &[
                b"https://h/p?token=abc&sig=def#frag",
                b"token=a",
                b"xtoken=a ?access_token=b&x-amz-security-token=c;key=d e",
                b"\"api_key=k\" password= sig=&secret=s\ttoken='q'",
                b"?token=a&token=b?token=c",
                b"?KEY=\xff\xfe&Signature=z",
            ],
        );
        agrees_on_random_texts(
            |t| query_values(t).collect(),
            &regex,
            &[
                b"token",
                b"access_",
                b"refresh_token",
                b"key",
                b"api",
                b"_key",
                b"SIG",
                b"signature",
                b"x-amz-",
                b"security-token",
                b"password",
                b"secret",
                b"client_",
                b"=",
                b"?",
                b"&",
                b";",
                b"#",
                b" ",
                b"\n",
                b"\"",
                b"'",
                b"\\",
                b"v4lue",
                b"x",
                b"\xff",
                b"?token=",
                b"&sig=",
                b"\npassword=",
            ],
            3,
        );
    }

    #[test]
    fn the_json_matcher_finds_what_the_reference_regex_finds() {
        let regex = json_reference();
        agrees(
            |t| json_values(t).collect(),
            &regex,
            &[
                b"{\"password\":\"pw\\\"x\",\"a\":1}",
                b"{\"token\" : \"a\nb\", \"Secret\":\"FLY_API_TOKEN\"}",
                b"{\"access_token\":\"\"}{\"apikey\":\"a\\\nb\"}",
                b"{\"xtoken\":\"no\",\"api_key\":\"yes\"}",
                b"\"token\":\"a\"\"token\":\"b\"",
                b"\"passwd\":\"\xff\xfe\"",
            ],
        );
        agrees_on_random_texts(
            |t| json_values(t).collect(),
            &regex,
            &[
                b"\"password\"",
                b"\"token\"",
                b"\"client_secret\"",
                b"\"ApiKey\"",
                b"\"",
                b":",
                b" : ",
                b" ",
                b"\n",
                b"\\",
                b"\\\"",
                b"v4lue",
                b"x",
                b"{",
                b",",
                b"\xff",
                b"token",
                b"\"refresh_token\": \"",
                b"\"secret\":\"",
            ],
            4,
        );
    }

    /// A hostile body: a line of 4 MiB of `token=\"x ` holds 400,000
    /// basic strings, none closed. Each is read once (the search is linear),
    /// so this takes milliseconds; read again from each `=`, it would take
    /// hours. The bound is a watchdog, not a speed target.
    #[test]
    fn a_line_of_unclosed_strings_is_read_once() {
        let mut text = b"token=\\\"x ".repeat(400_000);
        text.extend_from_slice(b"\ntoken = \"after\"\n");
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let found: Vec<_> = credential_values(&text).collect();
            let _ = done.send((found, text.len()));
        });
        let (found, len) = finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the search ends");
        // Only the closed string after the line.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0], len - 7..len - 2);
    }

    #[test]
    fn the_header_matcher_finds_what_the_reference_regex_finds() {
        let regex = header_reference();
        let cases: &[&[u8]] = &[
            b"Authorization: Bearer abc.def\r\nAccept: */*\r\n",
            b"headers = { Authorization = \"Bearer {{secret:T}}\", \"X-Api-Key\" = \"k\" }\n",
            b"{\"authorization\":\"Bearer x\",\"cookie\":\"a=b; c=d\"}",
            b"Proxy-Authorization: Basic dXNlcjpw\nxproxy-authorization: Basic y\n",
            b"ax-api-key: v\nset-cookie: s=1\nmy_cookie: no\n",
            b"Authorization: Bearer\n  next: 1",
            b"Authorization: Bearer \"x\"",
            b"Authorization:   \"Bots x\"",
            b"authorization: token\tflyv1 z",
            b"Cookie:\n\n\"",
            b"Cookie: \\x",
            b"X-Auth-Token = 'quoted' ; private-token:p;api_access_token:t",
            b"authorization:a authorization:b",
            b"authorization:\"a\"authorization:b",
            b"Authorization: \xff\xfe bytes",
            b"apikey=k&x=1 api-key : v",
        ];
        agrees(|t| header_values(t).collect(), &regex, cases);
    }

    #[test]
    fn random_texts_are_matched_as_the_header_reference_matches_them() {
        let regex = header_reference();
        let pieces: &[&[u8]] = &[
            b"authorization",
            b"Proxy-",
            b"proxy-authorization",
            b"COOKIE",
            b"set-",
            b"x-api-key",
            b"apikey",
            b"api-key",
            b"api_access_token",
            b"x-auth-token",
            b"private-token",
            b"x",
            b"_",
            b"-",
            b":",
            b"=",
            b" : ",
            b"\"",
            b"'",
            b"\\",
            b" ",
            b"\t",
            b"\n",
            b"\r\n",
            b"\r",
            b"Bearer",
            b"basic ",
            b"bot",
            b"Bots",
            b"v4lue",
            b"{{secret:T}}",
            b"[REDACTED]",
            b"\xff",
            b";",
            b",",
            b"{",
            b"\nAuthorization: Bearer ",
            b"\"x-api-key\": \"",
            b"Cookie = \"",
        ];
        agrees_on_random_texts(|t| header_values(t).collect(), &regex, pieces, 5);
    }

    #[test]
    fn the_credential_key_matcher_finds_what_the_reference_regex_finds() {
        let regex = reference();
        let cases: &[&[u8]] = &[
            b"token = \"FlyV1 fm2_x\"\n",
            b"token=\"a\"",
            b"x token = \"a\"",
            b"{ DB_PASSWORD = \"p\", \"GITHUB_TOKEN\" = 'q', HOME = \"/r\" }",
            b"a.b.secret = \"s\"",
            b":secret = \"s\"",
            b"token_url = \"https://h\"\nsecret_in_argv = \"accept-risk\"\ntokens = [\"a\"]\nsecret = true\n",
            b"token = \"\"\ntoken = ''\ntoken = \"open\ntoken = 'open\n",
            b"{\"stdout\":\"password = \\\"hunter22x\\\"\\nok\"}",
            b"token = \"pa\\\"ss\" secret = 'x'",
            b"token=\"a\"token=\"b\"",
            b"token=\"a\" token=\"b\"",
            b"token = \"a\\\nb\"",
            b"token = \"a\rb\" secret = 'c\rd'",
            b"routing_key =\n  \"multi-line gap\"",
            b"secret = \"\xff\xfe not utf-8\"",
            b"Secret\t=\x0b'tab'",
            b"==token=='x'",
            b"\"token\" = \"quoted key\"",
            b"token\"\" = \"two quotes\"",
        ];
        agrees(|t| credential_values(t).collect(), &regex, cases);
    }

    /// Random texts of the bytes the rule turns on, compared with the
    /// reference: every shape of key, quote, escape, space and line end.
    #[test]
    fn random_texts_are_matched_as_the_credential_key_reference_matches_them() {
        let regex = reference();
        let pieces: &[&[u8]] = &[
            b"token",
            b"TOKEN",
            b"Password",
            b"passwd",
            b"secret",
            b"api_key",
            b"apikey",
            b"routing_key",
            b"x_",
            b"-",
            b"id",
            b"key",
            b"=",
            b" = ",
            b"\"",
            b"'",
            b"\\",
            b"\\\"",
            b" ",
            b"\t",
            b"\n",
            b"\r\n",
            b"{",
            b",",
            b".",
            b":",
            b"a",
            b"[REDACTED]",
            b"{{secret:T}}",
            b"\xff",
            // Whole shapes, so that matches are common.
            b" token = \"",
            b"\nDB_PASSWORD='",
            b"{ \"GITHUB_TOKEN\" = \\\"",
            b",secret=\"",
            b".api_key =\n'",
            b"v4lue\"",
            b"v4lue'",
            b"v4l\\\"ue\"",
            b"\\\"",
            b"x\r\n\"",
            b"\r",
        ];
        agrees_on_random_texts(|t| credential_values(t).collect(), &regex, pieces, 7);
    }
}
