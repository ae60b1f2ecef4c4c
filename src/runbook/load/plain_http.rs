//! A `[[check]]` of kind `http` in the plain shape, read straight into its
//! step without toml's tree or serde: the shape of generated sweep files
//! (`id`, `check = "http"`, `url`, `method`, `headers = { … }`, `expect = {
//! status = …, body_contains = … }`, `title`, `hint`, `owner`, `tags`,
//! `retries`, `timeout`).
//!
//! Why: the general path builds the section's tree (about 7,900
//! instructions) and then deserializes the step and its kind from it
//! (about 12,700), and a streamed sweep reads every check twice.
//!
//! It gives exactly the [`RawStep`] the general path gives (`parse_section`
//! then `parse_steps`), or `None`: anything else (another key or kind, a
//! repeated key, a status, `retries` or `timeout` out of bounds, a template
//! that does not parse, a `{` in the method…) goes through the general
//! path, which also reports what is wrong. So validation (ids, URLs, methods, templates,
//! secrets) stays where it is, after either path. Tested against the
//! general path on generated sections.

use std::ops::Range;

use super::plain_check::Cursor;
use crate::check::expect::StatusExpect;
use crate::check::http::{HttpCheck, HttpExpect};
use crate::check::CheckSpec;
use crate::core::duration::HumanDuration;
use crate::core::template::{with_span_offset, Template};
use crate::runbook::step::MAX_RETRIES;
use crate::runbook::validate::RawStep;

/// The step of section `text` (which starts `offset` bytes into its file,
/// its header on line `line`), when it is a plain `http` check: pushed on
/// `steps` and read in place there (a step is 480 bytes, each move a
/// copy); `false`, with `steps` as it was, otherwise.
pub(super) fn push_raw_step(
    text: &str,
    offset: usize,
    line: usize,
    steps: &mut Vec<RawStep>,
) -> bool {
    const HEADER: Range<usize> = 0.."[[check]]".len();
    steps.push(RawStep::new(HEADER, line, "check"));
    let step = steps.last_mut().expect("just pushed");
    // As `parse_steps` reads a section: templates take the file's spans as
    // they are made, the step's own spans are shifted after.
    if with_span_offset(offset, || read(text, step)).is_none() {
        steps.pop();
        return false;
    }
    step.shift_spans(offset);
    true
}

/// [`push_raw_step`] for a step of its own.
#[cfg(test)]
fn raw_step(text: &str, offset: usize, line: usize) -> Option<RawStep> {
    let mut steps = Vec::new();
    push_raw_step(text, offset, line, &mut steps).then(|| steps.pop().expect("pushed"))
}

/// Keys of the step; a key read twice is not plain (toml refuses it).
#[derive(Default)]
struct Seen(u16);

impl Seen {
    fn first(&mut self, key: Key) -> Option<()> {
        let bit = 1 << key as u16;
        (self.0 & bit == 0).then(|| self.0 |= bit)
    }
}

#[derive(Clone, Copy)]
enum Key {
    Id,
    Title,
    Check,
    Url,
    Method,
    Headers,
    Expect,
    Hint,
    Owner,
    Tags,
    Retries,
    Timeout,
}

/// What the kind's keys said, as written (spans of the section).
#[derive(Default)]
struct Written<'i> {
    url: Option<(Range<usize>, &'i str)>,
    method: Option<&'i str>,
    headers: Vec<(&'i str, Range<usize>, &'i str)>,
    status: Option<(Range<usize>, i64)>,
    body_contains: Option<(Range<usize>, &'i str)>,
}

/// Reads section `text` into `step` (as new); `None` when it is not plain.
fn read(text: &str, step: &mut RawStep) -> Option<()> {
    let mut cursor = Cursor::after_check_header(text)?;
    let mut seen = Seen::default();
    let mut written = Written::default();
    while cursor.at_next_entry() {
        let (_, key) = cursor.key_and_equals()?;
        match key {
            "id" => {
                seen.first(Key::Id)?;
                let (span, id) = cursor.any_string_text()?;
                step.id = Some((id.to_string(), span));
            }
            "title" => {
                seen.first(Key::Title)?;
                step.title = Some(cursor.any_string_text()?.1.to_string());
            }
            "check" => {
                seen.first(Key::Check)?;
                let (span, kind) = cursor.any_string_text()?;
                if kind != "http" {
                    return None;
                }
                step.check = Some((kind.to_string(), span));
            }
            "url" => {
                seen.first(Key::Url)?;
                written.url = Some(cursor.any_string_text()?);
            }
            "method" => {
                seen.first(Key::Method)?;
                let method = cursor.any_string_text()?.1;
                // A placeholder here is an error the general path reports.
                if method.contains('{') {
                    return None;
                }
                written.method = Some(method);
            }
            "headers" => {
                seen.first(Key::Headers)?;
                read_headers(&mut cursor, &mut written.headers)?;
            }
            "expect" => {
                seen.first(Key::Expect)?;
                read_expect(&mut cursor, &mut written)?;
            }
            "hint" => {
                seen.first(Key::Hint)?;
                step.hint = Some(cursor.any_string_text()?.1.to_string());
            }
            "owner" => {
                seen.first(Key::Owner)?;
                step.owner = Some(cursor.any_string_text()?.1.to_string());
            }
            "retries" => {
                seen.first(Key::Retries)?;
                let retries: u32 = cursor.integer_digits()?.1.parse().ok()?;
                // More is an error the general path reports.
                (retries <= MAX_RETRIES).then_some(())?;
                step.retries = Some(retries);
            }
            "timeout" => {
                seen.first(Key::Timeout)?;
                let timeout = HumanDuration::parse(cursor.any_string_text()?.1).ok()?.0;
                // Zero is an error the general path reports.
                (!timeout.is_zero()).then_some(())?;
                step.timeout = Some(timeout);
            }
            "tags" => {
                seen.first(Key::Tags)?;
                if cursor.peek() != Some(b'[') {
                    return None;
                }
                cursor.list(b']', |cursor| {
                    step.tags.push(cursor.any_string_text()?.1.to_string());
                    Some(())
                })?;
            }
            _ => return None,
        }
        cursor.end_of_entry()?;
    }
    // Without either, the general path reports it.
    step.id.as_ref()?;
    step.check.as_ref()?;
    step.spec = Some(http_check(written)?);
    step.templates_in_spec = true;
    Some(())
}

/// `{ Name = "value", … }`: names bare and unique, values strings.
fn read_headers<'i>(
    cursor: &mut Cursor<'i>,
    headers: &mut Vec<(&'i str, Range<usize>, &'i str)>,
) -> Option<()> {
    if cursor.peek() != Some(b'{') {
        return None;
    }
    cursor.list(b'}', |cursor| {
        let (_, name) = cursor.key_and_equals()?;
        let (span, value) = cursor.any_string_text()?;
        if headers.iter().any(|(seen, ..)| *seen == name) {
            return None;
        }
        headers.push((name, span, value));
        Some(())
    })
}

/// `{ status = code, body_contains = "text" }`, either or both, or `{}`.
fn read_expect<'i>(cursor: &mut Cursor<'i>, written: &mut Written<'i>) -> Option<()> {
    if cursor.peek() != Some(b'{') {
        return None;
    }
    cursor.list(b'}', |cursor| {
        let (_, key) = cursor.key_and_equals()?;
        match key {
            "status" if written.status.is_none() => {
                let (span, digits) = cursor.integer_digits()?;
                let code: i64 = digits.parse().ok()?;
                // Out of range is a problem the general path reports.
                (100..=999).contains(&code).then_some(())?;
                written.status = Some((span, code));
            }
            "body_contains" if written.body_contains.is_none() => {
                written.body_contains = Some(cursor.any_string_text()?);
            }
            _ => return None,
        }
        Some(())
    })
}

/// The kind's part. Its templates with placeholders are validated where
/// they are ([`HttpCheck::placeholder_templates`]), in the order the general
/// path collects them.
fn http_check(written: Written<'_>) -> Option<Box<CheckSpec>> {
    let template = |(span, raw): (Range<usize>, &str)| Template::parse_at(raw, span).ok();
    let body_contains = match written.body_contains {
        Some(body) => Some(template(body)?),
        None => None,
    };
    let mut headers = Vec::with_capacity(written.headers.len());
    let mut written_headers = written.headers;
    written_headers.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (name, span, value) in written_headers {
        headers.push((name.to_string(), template((span, value))?));
    }
    let url = template(written.url?)?;
    // Codes are in range (see `read_expect`): no problem to report.
    let status = written
        .status
        .map(|(span, code)| StatusExpect::code(code, span));
    let expect = HttpExpect {
        status,
        body_contains,
        ..HttpExpect::default()
    };
    let method = written.method.map(str::to_string);
    // Boxed as it is made: the check is 680 bytes, each move a copy.
    let spec = Box::new(CheckSpec::Http(HttpCheck::plain(
        method, url, headers, expect,
    )));
    Some(spec)
}

#[cfg(test)]
#[path = "plain_http_tests.rs"]
mod tests;
