//! Redacting a stream (a large input file copied into a bundle) a window at
//! a time, with the bytes [`Redactor::redact_bytes`] gives for the whole.
//!
//! A window ends after a newline, and only where redacting the window and
//! the text read after it separately gives what redacting them together
//! does: a cut inside a secret (one that holds a newline, a value wrapped
//! across lines, a quoted `password='…'` spanning lines) changes the result
//! and is refused, and an earlier line end is tried, or more is read. The
//! text after the cut (at least the margin) is carried into the next window,
//! so every match shorter than the margin lies whole inside the text a cut
//! is judged on.

use std::borrow::Cow;
use std::io::{self, Read, Write};

use super::redact::Redactor;

/// Bytes redacted at a time (a window grows past it only when no cut is
/// found, e.g. a file of one long line).
pub const WINDOW: usize = 1 << 20;

/// Line ends tried, from the last one before the margin backwards, before
/// reading more.
const CUTS_TRIED: usize = 16;

/// Copies `reader` to `out`, redacted, a [`WINDOW`] at a time.
pub fn redact_stream(
    redactor: &Redactor,
    reader: impl Read,
    out: &mut impl Write,
) -> io::Result<()> {
    // The margin after a cut holds any value form (four times over, for
    // encodings widened around it) and any realistic structural match.
    let margin = (WINDOW / 4).max(4 * redactor.longest_form());
    redact_stream_with(redactor, reader, out, WINDOW, margin)
}

/// [`redact_stream`] with windows of `window` bytes judged with `margin`
/// bytes of what follows them.
pub(crate) fn redact_stream_with(
    redactor: &Redactor,
    mut reader: impl Read,
    out: &mut impl Write,
    window: usize,
    margin: usize,
) -> io::Result<()> {
    let window = window.max(1);
    let mut buffer: Vec<u8> = Vec::with_capacity(window + margin);
    let mut want = window + margin;
    loop {
        let ended = fill(&mut reader, &mut buffer, want)?;
        if ended {
            return out.write_all(&redactor.redact_bytes(&buffer));
        }
        match safe_cut(redactor, &buffer, margin) {
            Some((cut, redacted)) => {
                out.write_all(&redacted)?;
                buffer.drain(..cut);
                want = window + margin;
            }
            // No line end to cut at yet: read on.
            None => want = buffer.len() + window,
        }
    }
}

/// Bytes asked of the reader at a time. The room a read goes into is
/// zeroed first, so asking for the whole window would zero 1.25 MB for a
/// file of 200 KB (a sweep's input in files of 1,000 checks): 2,400
/// instructions a check, twice over.
const READ_STEP: usize = 64 * 1024;

/// Reads until `buffer` holds `want` bytes; whether the reader ended.
fn fill(reader: &mut impl Read, buffer: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    while buffer.len() < want {
        let start = buffer.len();
        buffer.resize(want.min(start + READ_STEP), 0);
        match reader.read(&mut buffer[start..]) {
            Ok(0) => {
                buffer.truncate(start);
                return Ok(true);
            }
            Ok(n) => buffer.truncate(start + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buffer.truncate(start),
            Err(e) => {
                buffer.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(false)
}

/// A cut (after a newline, leaving at least `margin` bytes after it) where
/// redacting `buffer` in two gives what redacting it whole does, with the
/// redacted text before it (borrowed when nothing in it was redacted, as
/// in most windows: no copy).
///
/// The whole buffer is redacted on a second thread while this one redacts
/// the two sides of the first cut tried, which is almost always the one
/// taken: the copy of a large input runs before the sweep starts, with the
/// other cores idle, and this halves its wall time (19 MB: 104 ms → 55 ms).
fn safe_cut<'a>(
    redactor: &Redactor,
    buffer: &'a [u8],
    margin: usize,
) -> Option<(usize, Cow<'a, [u8]>)> {
    let last = buffer.len().checked_sub(margin)?;
    let first = memchr::memrchr(b'\n', &buffer[..last])? + 1;
    let (whole, head, rest) = std::thread::scope(|scope| {
        let whole = scope.spawn(|| redactor.redact_bytes(buffer));
        let head = redactor.redact_bytes(&buffer[..first]);
        let rest = redactor.redact_bytes(&buffer[first..]);
        let whole = whole
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (whole, head, rest)
    });
    if joins_to(&whole, &head, &rest) {
        return Some((first, head));
    }
    // A secret or a structural match spans that line end: earlier ones.
    let mut before = first - 1;
    for _ in 1..CUTS_TRIED {
        let cut = memchr::memrchr(b'\n', &buffer[..before])? + 1;
        let head = redactor.redact_bytes(&buffer[..cut]);
        if joins_to(&whole, &head, &redactor.redact_bytes(&buffer[cut..])) {
            return Some((cut, head));
        }
        before = cut - 1;
    }
    None
}

/// Whether `whole` is `head` followed by `rest`.
fn joins_to(whole: &[u8], head: &[u8], rest: &[u8]) -> bool {
    whole.len() == head.len() + rest.len() && whole.starts_with(head) && whole.ends_with(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret with a newline, `&` and `<` (so its JSON, HTML-entity and
    /// percent forms differ from it), and a plain one.
    fn redactor() -> Redactor {
        Redactor::new(&[
            ("MULTI".to_string(), "can&ary<\nl1ne-S3cr3t".to_string()),
            ("PLAIN".to_string(), "plain-canary-S3cr3t".to_string()),
        ])
    }

    fn streamed(redactor: &Redactor, text: &[u8], window: usize, margin: usize) -> Vec<u8> {
        let mut out = Vec::new();
        redact_stream_with(redactor, text, &mut out, window, margin).unwrap();
        out
    }

    /// Filler lines with `planted` at byte `at` (a line of its own or not).
    fn planted(at: usize, planted: &str) -> Vec<u8> {
        let mut text = Vec::new();
        while text.len() < at {
            text.extend_from_slice(b"url = 'http://127.0.0.1/'\n");
        }
        text.truncate(at);
        text.extend_from_slice(planted.as_bytes());
        while text.len() < at + 600 {
            text.extend_from_slice(b"\nid = 'x'");
        }
        text
    }

    #[test]
    fn secrets_across_window_boundaries_are_redacted_as_in_the_whole_text() {
        let r = redactor();
        let canaries = [
            "can&ary<\nl1ne-S3cr3t",
            "can&amp;ary&lt;\\nl1ne-S3cr3t",
            "can%26ary%3C%0Al1ne-S3cr3t",
            "plain-canary-S3cr3t",
            // Wrapped across lines, as a server folding at some column.
            "plain-can\nary-S3\r\ncr3t",
            "url = 'https://user:hunter2-pass@example.com/'",
            "password='a\nmulti-line\nsecret' rest",
            "password = hunter2-value&next=1",
            "Authorization: Bearer abcdef123456\n",
            "{\"token\": \"json\\nsecret\"}",
            "x?token=abc&sig=def#frag",
        ];
        let window = 64;
        let margin = 96;
        let mut redacted_something = 0;
        for canary in canaries {
            for at in 40..200 {
                // After a space: a structural rule wants a word boundary.
                let text = planted(at, &format!(" {canary}"));
                let whole = r.redact_bytes(&text);
                let out = streamed(&r, &text, window, margin);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&whole),
                    "{canary:?} at {at}"
                );
                if *whole != *text {
                    redacted_something += 1;
                }
            }
        }
        // Every canary was a secret somewhere (the comparison is not empty).
        assert_eq!(redacted_something, canaries.len() * 160);
    }

    #[test]
    fn a_cut_inside_a_multi_line_secret_is_refused() {
        let r = redactor();
        let text = planted(100, "can&ary<\nl1ne-S3cr3t");
        // Cut right after the secret's own newline: each half is redacted
        // as a line of it, not as the whole value.
        let cut = text.iter().position(|&b| b == b'<').unwrap() + 2;
        let mut halves = r.redact_bytes(&text[..cut]).into_owned();
        halves.extend_from_slice(&r.redact_bytes(&text[cut..]));
        let whole = r.redact_bytes(&text);
        assert!(String::from_utf8_lossy(&whole).contains("[REDACTED:MULTI]"));
        assert_ne!(halves, *whole);
        // The judge refuses exactly that cut when it is the only one tried.
        let margin = text.len() - cut;
        let judged = safe_cut(&r, &text[..cut + margin], margin);
        assert!(judged.is_none_or(|(c, _)| c != cut));
    }

    #[test]
    fn large_and_lineless_inputs_come_out_whole() {
        let r = redactor();
        let mut text = Vec::new();
        for n in 0..20_000 {
            text.extend_from_slice(format!("[[check]]\nid = 'c{n}'\n").as_bytes());
            if n % 997 == 0 {
                text.extend_from_slice(b"hint = 'plain-canary-S3cr3t'\n");
            }
        }
        let mut out = Vec::new();
        redact_stream(&r, text.as_slice(), &mut out).unwrap();
        assert_eq!(out, *r.redact_bytes(&text));
        assert!(text.len() > 2 * WINDOW / 8, "{}", text.len());
        let small = streamed(&r, &text, 4096, 512);
        assert_eq!(small, out);
        // No newline at all: one window, read to the end.
        let line = b"x".repeat(5_000);
        assert_eq!(streamed(&r, &line, 64, 64), line);
        assert_eq!(streamed(&r, b"", 64, 64), b"");
    }
}
