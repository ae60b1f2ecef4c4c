//! Redacting a stream (a large input file copied into a bundle) a window at
//! a time, with the bytes [`Redactor::redact_bytes`] gives for the whole.
//!
//! A window ends after a newline, and only where the text after the cut (at
//! least the margin), redacted alone, gives the end of what the window and
//! that text give redacted together: what comes before it is then the
//! window's part of the whole text's redaction. A cut where a match of the
//! text together reaches across it (a secret holding a newline, a value
//! wrapped across lines, a quoted `password='…'` spanning lines) changes the
//! end and is refused, and an earlier line end is tried, or more is read.
//! The text after the cut is carried into the next window, so every match
//! shorter than the margin lies whole inside the text a cut is judged on.

use std::borrow::Cow;
use std::io::{self, Read, Write};

use super::redact::Redactor;

/// Bytes redacted at a time (a window grows past it only when no cut is
/// found, e.g. a file of one long line). Each window is redacted with the
/// margin after it, and the margin once more on its own to judge the cut:
/// 1.25 times the text in all with these sizes (1.5 times with windows of
/// 1 MiB, at 2,600 instructions a check of a sweep's input). An input
/// smaller than a window and its margin (a file of up to some 10,000
/// checks) is redacted once. Larger windows cost more memory than they
/// save work: the redaction of a window holds copies of it.
pub const WINDOW: usize = 2 << 20;

/// Bytes after a cut judged with it: any value form (four times over, for
/// encodings widened around it) and any realistic structural match fit in
/// it. A match longer than this could be cut (see [`safe_cut`]).
const MARGIN: usize = 256 << 10;

/// Line ends tried, from the last one before the margin backwards, before
/// reading more.
const CUTS_TRIED: usize = 16;

/// Copies `reader` to `out`, redacted, a [`WINDOW`] at a time.
pub fn redact_stream(
    redactor: &Redactor,
    reader: impl Read,
    out: &mut impl Write,
) -> io::Result<()> {
    let margin = MARGIN.max(4 * redactor.longest_form());
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
/// the text after it, redacted alone, is how `buffer`'s redaction ends; with
/// what comes before that (borrowed when nothing in it was redacted, as in
/// most windows: no copy).
///
/// Why that is enough: let `B` be the buffer, `R` the redaction, `T` the
/// text after the cut and `M` whatever the stream holds after `B`. Reading
/// `M` changes only the last margin's worth of `R(B)` and of `R(T)`, and in
/// the same way, since both have at least the margin before those bytes (the
/// assumption the margin stands for: no match is longer). So when
/// `R(B) = X + R(T)`, then `R(B + M) = X + R(T + M)`: `X` is written and `T`
/// carried. Redacting the text before the cut on its own as well (as this
/// did until it was measured) would prove no more, and cost a window's
/// redaction again: an input in one file was redacted 1.8 to 2.5 times over.
///
/// Both are redacted on this thread. On a second thread each, the whole
/// buffer's redaction (2.25 MiB) ran beside the text after the cut (256
/// KiB), saving a tenth of the copy's wall time; but each window's thread
/// was a new one, its copies of the window went to whichever malloc arena
/// it was given, and their freed pages stayed in each: 35-37 MB peak at
/// 100,000 checks in one file, 32-33 MB on one thread.
fn safe_cut<'a>(
    redactor: &Redactor,
    buffer: &'a [u8],
    margin: usize,
) -> Option<(usize, Cow<'a, [u8]>)> {
    let last = buffer.len().checked_sub(margin)?;
    let first = memchr::memrchr(b'\n', &buffer[..last])? + 1;
    let whole = redactor.redact_bytes(buffer);
    let rest = redactor.redact_bytes(&buffer[first..]);
    if whole.ends_with(&rest) {
        return Some((first, before(whole, rest.len())));
    }
    // A secret or a structural match spans that line end: earlier ones.
    let mut before_cut = first - 1;
    for _ in 1..CUTS_TRIED {
        let cut = memchr::memrchr(b'\n', &buffer[..before_cut])? + 1;
        let rest = redactor.redact_bytes(&buffer[cut..]);
        if whole.ends_with(&rest) {
            return Some((cut, before(whole, rest.len())));
        }
        before_cut = cut - 1;
    }
    None
}

/// `redacted` without its last `len` bytes, borrowed if it was.
fn before(redacted: Cow<'_, [u8]>, len: usize) -> Cow<'_, [u8]> {
    let end = redacted.len() - len;
    match redacted {
        Cow::Borrowed(bytes) => Cow::Borrowed(&bytes[..end]),
        Cow::Owned(mut bytes) => {
            bytes.truncate(end);
            Cow::Owned(bytes)
        }
    }
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
    fn a_cut_inside_a_multi_line_secret_writes_none_of_it() {
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
        // Judged at that cut alone, it is taken: the text after it, redacted
        // alone, holds the whole secret's marker. What is written stops
        // before the secret, and the rest's redaction completes the whole
        // text's.
        let margin = text.len() - cut;
        let (at, written) = safe_cut(&r, &text[..cut + margin], margin).expect("a cut");
        let mut joined = written.to_vec();
        joined.extend_from_slice(&r.redact_bytes(&text[at..]));
        assert_eq!(
            String::from_utf8_lossy(&joined),
            String::from_utf8_lossy(&whole)
        );
        assert!(memchr::memmem::find(&written, b"can&ary").is_none());
    }

    /// Random texts of secrets, their pieces and forms, credentials under
    /// keys, quotes and line ends, streamed in small windows: always what
    /// redacting the whole text gives, and never a secret.
    #[test]
    fn random_texts_stream_as_they_redact_whole() {
        let r = redactor();
        let pieces: &[&[u8]] = &[
            b"can&ary<\nl1ne-S3cr3t",
            b"can&ary<",
            b"l1ne-S3cr3t",
            b"plain-canary-S3cr3t",
            b"plain-can\nary-S3cr3t",
            b"plain-canary-",
            b"password='a\nb'",
            b" token = \"",
            b"\nAuthorization: Bearer ",
            b"v4lue\"",
            b"'",
            b"\"",
            b"\n",
            b"\r\n",
            b" ",
            b"id = 'x'\n",
            b"url = 'http://u:p4ss@h/'\n",
        ];
        let mut rng = fastrand::Rng::with_seed(11);
        let mut redacted = 0;
        for _ in 0..400 {
            let mut text = Vec::new();
            while text.len() < rng.usize(200..1200) {
                text.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
            let whole = r.redact_bytes(&text);
            let window = rng.usize(16..200);
            let out = streamed(&r, &text, window, 96);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&whole),
                "window {window}: {:?}",
                String::from_utf8_lossy(&text)
            );
            for secret in ["plain-canary-S3cr3t", "l1ne-S3cr3t"] {
                assert!(memchr::memmem::find(&out, secret.as_bytes()).is_none());
            }
            redacted += usize::from(*whole != *text);
        }
        assert_eq!(redacted, 400);
    }

    #[test]
    fn a_cut_inside_a_quoted_multi_line_password_is_refused() {
        let r = redactor();
        let text = planted(100, " password='a\nmulti-line\nsecret' rest");
        let cut = memchr::memmem::find(&text, b"multi-line").unwrap();
        let whole = r.redact_bytes(&text);
        assert!(String::from_utf8_lossy(&whole).contains("password=[REDACTED] rest"));
        // The text after the cut, redacted alone, keeps `multi-line`: not how
        // the whole text's redaction ends. An earlier line end is taken.
        let margin = text.len() - cut;
        let (at, written) = safe_cut(&r, &text[..cut + margin], margin).expect("an earlier cut");
        assert!(at < cut - "password='a\n".len(), "{at} {cut}");
        assert!(memchr::memmem::find(&written, b"password").is_none());
        let mut joined = written.to_vec();
        joined.extend_from_slice(&r.redact_bytes(&text[at..]));
        assert_eq!(joined, *whole);
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
        assert!(text.len() > MARGIN, "{}", text.len());
        let small = streamed(&r, &text, 4096, 512);
        assert_eq!(small, out);
        // No newline at all: one window, read to the end.
        let line = b"x".repeat(5_000);
        assert_eq!(streamed(&r, &line, 64, 64), line);
        assert_eq!(streamed(&r, b"", 64, 64), b"");
    }
}
