//! A `[[check]]` section in the plain shape read without toml's parser:
//! one `key = value` a line, values that are strings without escapes,
//! decimal integers, booleans, and single-line arrays and inline tables of
//! these. Nearly every check of a large sweep file is written so (generated
//! files are), and toml's lexer, parser and tree builder cost about 18,000
//! instructions for a 190-byte check, which a streamed sweep pays twice.
//!
//! The tree built is the one toml builds ([`DeTable::parse`]), spans
//! included, so everything after (the step's keys, its kind's serde
//! deserialization, templates and their spans) is unchanged; anything
//! outside the plain shape (escapes, multi-line values, dotted or quoted
//! keys, floats, dates, a repeated key, a stray byte…) gives `None`, and
//! the caller parses the section with toml, which also reports what is
//! wrong. Tested against toml on generated sections.

use std::borrow::Cow;
use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// The section `text` (`[[check]]` and its lines) as toml would parse it,
/// when it is in the plain shape.
pub fn parse(text: &str) -> Option<DeTable<'_>> {
    const HEADER: &str = "[[check]]";
    let mut cursor = Cursor::after_check_header(text)?;
    let mut table = DeTable::new();
    while cursor.at_next_entry() {
        let (key, value) = cursor.key_value()?;
        cursor.end_of_entry()?;
        insert_new(&mut table, key, value)?;
    }
    let header = 0..HEADER.len();
    let mut checks = DeArray::new();
    checks.push(Spanned::new(header.clone(), DeValue::Table(table)));
    let mut root = DeTable::new();
    let key = Spanned::new(2..HEADER.len() - 2, Cow::Borrowed("check"));
    root.insert(key, Spanned::new(header, DeValue::Array(checks)));
    Some(root)
}

/// Inserts `key`, which must be new (toml refuses a repeated key).
fn insert_new<'i>(
    table: &mut DeTable<'i>,
    key: Spanned<Cow<'i, str>>,
    value: Spanned<DeValue<'i>>,
) -> Option<()> {
    if table.contains_key(key.get_ref().as_ref()) {
        return None;
    }
    table.insert(key, value);
    Some(())
}

/// Arrays and inline tables nested deeper than this are not plain: a
/// hostile file of a million `[` must not exhaust the stack (toml has a
/// limit of its own, and reports it).
const MAX_DEPTH: usize = 8;

/// Where the reading stands in the section's text. Its lexing (keys,
/// strings, integers, lines, lists) is shared with the readers that take a
/// section of a known kind straight into its step (`plain_http`).
pub(super) struct Cursor<'i> {
    text: &'i str,
    at: usize,
    /// Arrays and inline tables open around it.
    depth: usize,
}

impl<'i> Cursor<'i> {
    /// A cursor after the `[[check]]` header's line of `text`; `None` when
    /// the section does not start so.
    pub(super) fn after_check_header(text: &'i str) -> Option<Self> {
        const HEADER: &str = "[[check]]";
        if !text.starts_with(HEADER) {
            return None;
        }
        let mut cursor = Cursor {
            text,
            at: HEADER.len(),
            depth: 0,
        };
        cursor.end_of_line()?;
        Some(cursor)
    }

    /// Past blank and comment lines: whether an entry's line remains.
    pub(super) fn at_next_entry(&mut self) -> bool {
        loop {
            if self.done() {
                return false;
            }
            self.skip_blanks();
            if self.end_of_line().is_none() {
                return true;
            }
        }
    }

    /// After an entry's value: blanks, an optional comment, the line's end.
    pub(super) fn end_of_entry(&mut self) -> Option<()> {
        self.skip_blanks();
        self.end_of_line()
    }

    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Spaces and tabs.
    fn skip_blanks(&mut self) {
        self.at += self.text.as_bytes()[self.at..]
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
    }

    /// An optional comment, then the line's end (or the text's): `None`,
    /// having moved nowhere, when something else stands here.
    fn end_of_line(&mut self) -> Option<()> {
        let start = self.at;
        self.skip_blanks();
        if self.peek() == Some(b'#') {
            // A comment holds no control character but tab.
            while let Some(byte) = self.peek() {
                if byte == b'\n' || byte == b'\r' {
                    break;
                }
                if is_control(byte) {
                    self.at = start;
                    return None;
                }
                self.at += 1;
            }
        }
        let rest = &self.text.as_bytes()[self.at..];
        let newline = match rest {
            [] => 0,
            [b'\n', ..] => 1,
            [b'\r', b'\n', ..] => 2,
            _ => {
                self.at = start;
                return None;
            }
        };
        self.at += newline;
        Some(())
    }

    /// `key = value`.
    fn key_value(&mut self) -> Option<(Spanned<Cow<'i, str>>, Spanned<DeValue<'i>>)> {
        let (span, key) = self.key_and_equals()?;
        let value = self.value()?;
        Some((Spanned::new(span, Cow::Borrowed(key)), value))
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// A bare key (`A-Z a-z 0-9 _ -`, then neither `.`, a dotted key, nor
    /// a quote): its span and text.
    fn bare_key(&mut self) -> Option<(Range<usize>, &'i str)> {
        let start = self.at;
        // A table, not a chain of ranges: every key of every check of a
        // large file goes through here, twice in a streamed sweep.
        self.at += self.text.as_bytes()[start..]
            .iter()
            .take_while(|&&b| BARE_KEY[usize::from(b)])
            .count();
        if self.at == start || !matches!(self.peek(), Some(b' ' | b'\t' | b'=')) {
            self.at = start;
            return None;
        }
        Some((start..self.at, &self.text[start..self.at]))
    }

    /// A bare key, then `=` between blanks: where its value starts.
    pub(super) fn key_and_equals(&mut self) -> Option<(Range<usize>, &'i str)> {
        let key = self.bare_key()?;
        self.skip_blanks();
        self.expect(b'=')?;
        self.skip_blanks();
        Some(key)
    }

    fn value(&mut self) -> Option<Spanned<DeValue<'i>>> {
        match self.peek()? {
            b'"' => self.string(b'"'),
            b'\'' => self.string(b'\''),
            b'{' | b'[' if self.depth >= MAX_DEPTH => None,
            b'{' => self.nested(Self::inline_table),
            b'[' => self.nested(Self::array),
            b't' | b'f' => self.boolean(),
            b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// `read` one level deeper.
    fn nested(
        &mut self,
        read: fn(&mut Self) -> Option<Spanned<DeValue<'i>>>,
    ) -> Option<Spanned<DeValue<'i>>> {
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    /// A one-line string without escapes: `"…"` with no `\`, or `'…'`;
    /// neither a multi-line one (`"""`, `'''`).
    fn string(&mut self, quote: u8) -> Option<Spanned<DeValue<'i>>> {
        let (span, text) = self.string_text(quote)?;
        Some(Spanned::new(span, DeValue::String(Cow::Borrowed(text))))
    }

    /// A string of [`Cursor::string`]'s shape at the cursor, quoted either
    /// way: its span (quotes included, as toml's) and its text.
    pub(super) fn any_string_text(&mut self) -> Option<(Range<usize>, &'i str)> {
        match self.peek()? {
            quote @ (b'"' | b'\'') => self.string_text(quote),
            _ => None,
        }
    }

    /// [`Cursor::string`]'s span and text.
    fn string_text(&mut self, quote: u8) -> Option<(Range<usize>, &'i str)> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let body = start + 1;
        let len = memchr::memchr(quote, &bytes[body..])?;
        let content = &bytes[body..body + len];
        if len == 0 && bytes.get(body + 1) == Some(&quote) {
            return None; // `"""` or `'''`
        }
        // Folded rather than stopped at the first: the loop vectorises, and
        // almost no string holds either.
        let escapes = quote == b'"';
        if content.iter().fold(false, |bad, &b| {
            bad | is_control(b) | (escapes & (b == b'\\'))
        }) {
            return None;
        }
        self.at = body + len + 1;
        Some((start..self.at, &self.text[body..body + len]))
    }

    /// `true` or `false`, ended as a value is.
    fn boolean(&mut self) -> Option<Spanned<DeValue<'i>>> {
        let rest = &self.text[self.at..];
        let (value, len) = if rest.starts_with("true") {
            (true, 4)
        } else if rest.starts_with("false") {
            (false, 5)
        } else {
            return None;
        };
        let start = self.at;
        self.at += len;
        self.value_ends()?;
        Some(Spanned::new(start..self.at, DeValue::Boolean(value)))
    }

    /// A decimal integer without sign, underscores or leading zero, ended as
    /// a value is; toml's own value parser makes it (its integer type has no
    /// public constructor).
    fn integer(&mut self) -> Option<Spanned<DeValue<'i>>> {
        let (span, digits) = self.integer_digits()?;
        let value = DeValue::parse(digits).ok()?.into_inner();
        matches!(value, DeValue::Integer(_)).then(|| Spanned::new(span, value))
    }

    /// [`Cursor::integer`]'s span and digits (at most 18: it fits an
    /// `i64`).
    pub(super) fn integer_digits(&mut self) -> Option<(Range<usize>, &'i str)> {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = &self.text[start..self.at];
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) || digits.len() > 18 {
            self.at = start;
            return None;
        }
        if self.value_ends().is_none() {
            self.at = start;
            return None;
        }
        Some((start..self.at, digits))
    }

    /// What may follow a bare value: a blank, `,`, `}`, `]`, `#` or the
    /// line's end.
    fn value_ends(&self) -> Option<()> {
        match self.peek() {
            None | Some(b' ' | b'\t' | b',' | b'}' | b']' | b'#' | b'\n' | b'\r') => Some(()),
            _ => None,
        }
    }

    /// `{ key = value, … }` on one line, no trailing comma.
    fn inline_table(&mut self) -> Option<Spanned<DeValue<'i>>> {
        let start = self.at;
        let mut table = DeTable::new();
        self.list(b'}', |cursor| {
            let (key, value) = cursor.key_value()?;
            insert_new(&mut table, key, value)
        })?;
        Some(Spanned::new(start..self.at, DeValue::Table(table)))
    }

    /// `[ value, … ]` on one line, no trailing comma.
    fn array(&mut self) -> Option<Spanned<DeValue<'i>>> {
        let start = self.at;
        let mut array = DeArray::new();
        self.list(b']', |cursor| {
            array.push(cursor.value()?);
            Some(())
        })?;
        Some(Spanned::new(start..self.at, DeValue::Array(array)))
    }

    /// The opening byte, then `item`s separated by `,` up to `close`, on
    /// one line, no trailing comma.
    pub(super) fn list(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.at += 1;
        self.skip_blanks();
        if self.expect(close).is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            self.skip_blanks();
            if self.expect(close).is_some() {
                return Some(());
            }
            self.expect(b',')?;
            self.skip_blanks();
        }
    }
}

/// A control character TOML allows in no string or comment (tab aside).
fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

/// The bytes of a bare key: `A-Z a-z 0-9 _ -`.
const BARE_KEY: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as text, every span and value in it, in toml's key order.
    fn dump(value: &Spanned<DeValue<'_>>) -> String {
        let span = value.span();
        let inner = match value.get_ref() {
            DeValue::String(s) => format!("s{s:?}"),
            DeValue::Integer(i) => format!("i{}r{}", i.as_str(), i.radix()),
            DeValue::Float(f) => format!("f{}", f.as_str()),
            DeValue::Boolean(b) => format!("b{b}"),
            DeValue::Datetime(d) => format!("d{d}"),
            DeValue::Array(items) => {
                let items: Vec<String> = items.iter().map(dump).collect();
                format!("[{}]", items.join(","))
            }
            DeValue::Table(table) => dump_table(table),
        };
        format!("{inner}@{span:?}")
    }

    fn dump_table(table: &DeTable<'_>) -> String {
        let entries: Vec<String> = table
            .iter()
            .map(|(k, v)| format!("{:?}@{:?}={}", k.get_ref(), k.span(), dump(v)))
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    /// Whether `text` is plain; when it is, its tree must be toml's.
    fn agrees_with_toml(text: &str) -> bool {
        let Some(plain) = parse(text) else {
            return false;
        };
        let toml = DeTable::parse(text)
            .unwrap_or_else(|e| panic!("plain, but toml refuses it: {text:?}: {e}"))
            .into_inner();
        assert_eq!(dump_table(&plain), dump_table(&toml), "{text:?}");
        true
    }

    #[test]
    fn the_checks_sweep_files_hold_are_plain() {
        for text in [
            "[[check]]\nid = \"c0000001\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:18090/u/1\"\nheaders = { Authorization = \"Bearer {{secret:BENCH_TOKEN}}\" }\nexpect = { status = 200, body_contains = \"ok\" }\n\n",
            "[[check]]\r\nid = 'db'\r\ncheck = 'tcp'\r\nhost = 'localhost'\r\nport = 5432\r\n",
            "[[check]]  # the API\nid = \"api\" # why\ncheck = \"http\"\ntags = [\"team=core\", \"critical\"]\nretries = 0\nverify_tls = false\n# end\n",
            "[[check]]\nid = \"x\"\nexpect = {}\ntags = []",
        ] {
            assert!(agrees_with_toml(text), "not plain: {text:?}");
        }
    }

    #[test]
    fn what_toml_reads_otherwise_or_refuses_is_not_plain() {
        for text in [
            "[[check]]\nid = \"a\\tb\"\n",
            "[[check]]\nid = \"\"\"x\"\"\"\n",
            "[[check]]\nid = '''x'''\n",
            "[[check]]\nid = \"x\"\nid = \"y\"\n",
            "[[check]]\nexpect.status = 200\n",
            "[[check]]\n\"id\" = \"x\"\n",
            "[[check]]\ntimeout = 1.5\n",
            "[[check]]\nat = 1979-05-27\n",
            "[[check]]\nport = 0x10\n",
            "[[check]]\nport = 1_000\n",
            "[[check]]\nport = 010\n",
            "[[check]]\nport = -1\n",
            "[[check]]\ntags = [\n\"a\"]\n",
            "[[check]]\ntags = [\"a\",]\n",
            "[[check]]\nexpect = { status = 200, }\n",
            "[[check]]\nexpect = { status = 200, status = 201 }\n",
            "[[check]]\nid = \"x\" y\n",
            "[[check]]\nid = truex\n",
            "[[check]]\nid = \"x\"\r",
            "[[check]]\nid = \"a\u{1}b\"\n",
            "[[check]]\n# \u{7f}\n",
            "[[check]]\n[[check]]\n",
            "[[ check ]]\nid = \"x\"\n",
            "[check]\nid = \"x\"\n",
            "[[check]]\nid = \"x\n",
        ] {
            assert!(parse(text).is_none(), "plain: {text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_left_to_toml_without_exhausting_the_stack() {
        let nested = |depth: usize| {
            format!(
                "[[check]]\nx = {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        assert!(agrees_with_toml(&nested(MAX_DEPTH)));
        assert!(parse(&nested(MAX_DEPTH + 1)).is_none());
        // On a thread with a small stack, as the parsing threads have.
        let hostile = nested(1_000_000);
        let outcome = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || parse(&hostile).is_none())
            .unwrap()
            .join();
        assert!(matches!(outcome, Ok(true)));
    }

    /// Sections generated from the pieces that matter: every one taken as
    /// plain must be what toml makes of it, and enough are taken for the
    /// test to mean something.
    #[test]
    fn plain_sections_agree_with_toml_on_generated_sections() {
        let keys = ["id", "a_b", "A-1", "url", "a.b", "\"q\"", "", "é"];
        let values = [
            "\"x\"",
            "\"\"",
            "'lit\\eral'",
            "''",
            "\"a'b\"",
            "'a\"b'",
            "\"{{secret:T}}\"",
            "\"é ü\"",
            "\"a\\\"b\"",
            "\"\"\"m\"\"\"",
            "0",
            "7",
            "200",
            "007",
            "1_0",
            "+1",
            "-1",
            "1.5",
            "1e3",
            "true",
            "false",
            "truth",
            "nan",
            "[]",
            "[1]",
            "[ \"a\" , 'b' ]",
            "[1,]",
            "[[1], [\"a\"]]",
            "{}",
            "{ a = 1 }",
            "{a=1,b=\"x\"}",
            "{ a = { b = true } }",
            "{ a = 1, }",
            "{ a = 1, a = 2 }",
            "{ a.b = 1 }",
            "[{ a = 1 }, {}]",
            "1979-05-27",
        ];
        let tails = ["", " ", "\t# c", " #c", " x", "#\u{1}"];
        let ends = ["\n", "\r\n", "", "\r"];
        let mut plain = 0;
        let mut total = 0;
        for key in keys {
            for value in values {
                for tail in tails {
                    for end in ends {
                        for second in ["", "id = 'second'\n", "\n# note\n"] {
                            let text = format!("[[check]]\n{second}{key} = {value}{tail}{end}");
                            total += 1;
                            if agrees_with_toml(&text) {
                                plain += 1;
                            }
                            let text = format!("[[check]] {tail}{end}{key}={value}{end}{second}");
                            total += 1;
                            if agrees_with_toml(&text) {
                                plain += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(
            plain > 1_000,
            "only {plain} of {total} generated sections are plain"
        );
    }
}
