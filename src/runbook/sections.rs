//! Splitting a check file's text at its top-level table headers, so that a
//! large file can be parsed one table (one `[[check]]`) at a time: all of it
//! in memory ([`split`]) or line by line as it is read ([`Splitter`]). The split
//! is conservative: anything it is not sure about gives `None`, and the
//! caller parses the file whole.

use std::collections::BTreeSet;
use std::ops::Range;

/// One top-level table: its name and where its text stands (from its header
/// to the next section's header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section<'a> {
    pub name: &'a str,
    pub range: Range<usize>,
}

/// The sections of `source`: each `[[check]]` (with its `[check.…]`
/// sub-tables) and each other top-level `[name]` (with its `[name.…]`
/// sub-tables). `None` when the file has key/values before the first header,
/// another array of tables, a table written twice, a quoted or spaced header,
/// or an unterminated string or array: the whole-file parser judges those.
pub(crate) fn split(source: &str) -> Option<Vec<Section<'_>>> {
    let mut sections: Vec<Section<'_>> = Vec::new();
    let mut splitter = Splitter::default();
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        if let Line::Header(name) = splitter.line(line)? {
            if let Some(last) = sections.last_mut() {
                last.range.end = start;
            }
            sections.push(Section {
                name,
                range: start..source.len(),
            });
        }
    }
    splitter.finish()?;
    Some(sections)
}

/// What one line of a file is to [`Splitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line<'l> {
    /// The header of a new section, named: the section starts at this line.
    Header(&'l str),
    /// Part of the current section (or blank before the first).
    Body,
}

/// [`split`] one line at a time, for a file read as a stream: the same
/// rules, fed the lines in order (each with its line ending).
#[derive(Default)]
pub(crate) struct Splitter {
    values: ValueScanner,
    /// The tables other than `check` seen so far (each may be written once).
    tables: BTreeSet<String>,
    /// The name of the current section (`None` before the first header).
    current: Option<String>,
}

impl Splitter {
    /// The next line; `None` when the file cannot be split safely (the
    /// splitter is then of no further use).
    pub(crate) fn line<'l>(&mut self, line: &'l str) -> Option<Line<'l>> {
        if self.values.inside() {
            self.values.scan(line)?;
            return Some(Line::Body);
        }
        let trimmed = line.trim_start();
        if !trimmed.starts_with('[') {
            let blank = trimmed.is_empty() || trimmed.starts_with('#');
            if self.current.is_none() && !blank {
                return None;
            }
            self.values.scan(line)?;
            return Some(Line::Body);
        }
        let header = Header::read(trimmed)?;
        if header.dotted && self.current.as_deref() == Some(header.name) {
            // `[check.expect]`, `[notify.slack]`: part of the table above.
            return Some(Line::Body);
        }
        let new_section = match (header.array, header.name) {
            (true, "check") if !header.dotted => true,
            (false, name) if name != "check" => self.tables.insert(name.to_string()),
            _ => false,
        };
        if !new_section {
            return None;
        }
        if self.current.as_deref() != Some(header.name) {
            self.current = Some(header.name.to_string());
        }
        Some(Line::Header(header.name))
    }

    /// After the last line: `None` when the file ends inside a value.
    pub(crate) fn finish(&self) -> Option<()> {
        (!self.values.inside()).then_some(())
    }
}

/// A table header line: `[name]`, `[name.sub]`, `[[name]]`, `[[name.sub]]`
/// with bare keys only, optionally followed by a comment.
struct Header<'a> {
    array: bool,
    /// The first key of the path.
    name: &'a str,
    dotted: bool,
}

impl<'a> Header<'a> {
    fn read(line: &'a str) -> Option<Self> {
        let (array, rest) = match line.strip_prefix("[[") {
            Some(rest) => (true, rest),
            None => (false, line.strip_prefix('[')?),
        };
        let close = if array { "]]" } else { "]" };
        let end = rest.find(']')?;
        let (path, after) = rest.split_at(end);
        let after = after.strip_prefix(close)?.trim_start();
        if !(after.is_empty() || after.starts_with('#')) {
            return None;
        }
        let bare = |key: &str| {
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !path.split('.').all(bare) {
            return None;
        }
        let (name, dotted) = match path.split_once('.') {
            Some((name, _)) => (name, true),
            None => (path, false),
        };
        Some(Header {
            array,
            name,
            dotted,
        })
    }
}

/// Whether the text read so far ends inside a value that spans lines (a
/// multi-line string, an array): a line there that looks like a header is not
/// one.
#[derive(Default)]
struct ValueScanner {
    string: Option<Quote>,
    /// Open `[` and `{` outside strings.
    depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Quote {
    Basic,
    Literal,
    MultiBasic,
    MultiLiteral,
}

impl ValueScanner {
    fn inside(&self) -> bool {
        self.depth > 0 || self.string.is_some()
    }

    /// Reads one line (with its line ending); `None` on what it cannot
    /// follow (a one-line string that does not end on its line, a stray
    /// closing bracket). Jumps from one byte that matters to the next: the
    /// first pass of a 100,000-check file reads 19 MB with nothing else to
    /// do, and most of a check's bytes are inside strings.
    fn scan(&mut self, line: &str) -> Option<()> {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let Some(quote) = self.string else {
                let Some(skip) = bytes[i..]
                    .iter()
                    .position(|&b| OPENS_OR_CLOSES[usize::from(b)])
                else {
                    break;
                };
                i += skip;
                let rest = &bytes[i..];
                match rest[0] {
                    b'#' => break,
                    b'"' if rest.starts_with(b"\"\"\"") => {
                        self.string = Some(Quote::MultiBasic);
                        i += 3;
                    }
                    b'\'' if rest.starts_with(b"'''") => {
                        self.string = Some(Quote::MultiLiteral);
                        i += 3;
                    }
                    b'"' => {
                        self.string = Some(Quote::Basic);
                        i += 1;
                    }
                    b'\'' => {
                        self.string = Some(Quote::Literal);
                        i += 1;
                    }
                    b'[' | b'{' => {
                        self.depth += 1;
                        i += 1;
                    }
                    _ => {
                        // `]` or `}`.
                        self.depth = self.depth.checked_sub(1)?;
                        i += 1;
                    }
                }
                continue;
            };
            let rest = &bytes[i..];
            let stop = match quote {
                Quote::Basic => memchr::memchr3(b'\\', b'"', b'\n', rest),
                Quote::MultiBasic => memchr::memchr2(b'\\', b'"', rest),
                Quote::Literal => memchr::memchr2(b'\'', b'\n', rest),
                Quote::MultiLiteral => memchr::memchr(b'\'', rest),
            };
            let Some(skip) = stop else { break };
            i += skip;
            let rest = &bytes[i..];
            match (quote, rest[0]) {
                (Quote::Basic | Quote::MultiBasic, b'\\') => i += 2,
                (Quote::Basic, b'"') | (Quote::Literal, b'\'') => {
                    self.string = None;
                    i += 1;
                }
                (Quote::Basic | Quote::Literal, _) => return None, // a line end
                (Quote::MultiBasic, b'"') if rest.starts_with(b"\"\"\"") => {
                    self.string = None;
                    i += closing_quotes(rest, b'"');
                }
                (Quote::MultiLiteral, b'\'') if rest.starts_with(b"'''") => {
                    self.string = None;
                    i += closing_quotes(rest, b'\'');
                }
                _ => i += 1,
            }
        }
        match self.string {
            Some(Quote::Basic | Quote::Literal) => None,
            _ => Some(()),
        }
    }
}

/// The bytes that matter outside strings: a comment, quotes, brackets.
const OPENS_OR_CLOSES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 7 {
        table[b"#\"'[]{}"[i] as usize] = true;
        i += 1;
    }
    table
};

/// How many quotes close a multi-line string at the start of `rest`: three,
/// plus up to two that belong to its content (`""""` ends with one `"`).
fn closing_quotes(rest: &[u8], quote: u8) -> usize {
    3 + rest[3..]
        .iter()
        .take(2)
        .take_while(|&&b| b == quote)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(source: &str) -> Option<Vec<&str>> {
        split(source).map(|sections| sections.iter().map(|s| s.name).collect())
    }

    #[test]
    fn splits_at_top_level_headers_and_keeps_sub_tables() {
        let source = "# c\n[secrets]\nrequired = ['T']\n[[check]]\nid = 'a'\n[check.expect]\nstatus = 200\n[[check]] # b\nid = 'b'\n[defaults]\nretries = 1\n";
        let sections = split(source).unwrap();
        let names: Vec<_> = sections.iter().map(|s| s.name).collect();
        assert_eq!(names, ["secrets", "check", "check", "defaults"]);
        assert_eq!(
            &source[sections[1].range.clone()],
            "[[check]]\nid = 'a'\n[check.expect]\nstatus = 200\n"
        );
        assert_eq!(sections[3].range.end, source.len());
    }

    #[test]
    fn a_header_inside_a_multi_line_string_or_array_is_not_one() {
        let source = "[[check]]\nshell = \"\"\"\n[[check]]\n\"\"\"\nb = '''\n[x]\n'''\nc = [\n[1],\n]\n[[check]]\n";
        assert_eq!(names(source).unwrap(), ["check", "check"]);
        // Escaped quotes and a closing `""""` do not end the string early.
        let source = "[[check]]\na = \"\"\"x\\\"\"\"\n[[check]]\n\"\"\"\"\n[[check]]\n";
        assert_eq!(names(source).unwrap(), ["check", "check"]);
    }

    #[test]
    fn the_splitter_fed_line_by_line_names_each_header_line() {
        use Line::{Body, Header};
        let mut splitter = Splitter::default();
        let lines = [
            "# c\n",
            "[[check]]\n",
            "hint = '''\n",
            "[[check]]\n",
            "'''\n",
            "[check.expect]\n",
            "[vars]\n",
            "[[check]]",
        ];
        let kinds: Vec<_> = lines.iter().map(|l| splitter.line(l)).collect();
        let body = Some(Body);
        assert_eq!(
            kinds,
            [
                body,
                Some(Header("check")),
                body,
                body,
                body,
                body,
                Some(Header("vars")),
                Some(Header("check")),
            ]
        );
        assert_eq!(splitter.finish(), Some(()));
        // A table written twice: the splitter gives up.
        assert_eq!(splitter.line("[vars]\n"), None);
        let mut open = Splitter::default();
        assert_eq!(open.line("[[check]]\n"), Some(Header("check")));
        assert_eq!(open.line("a = \"\"\"\n"), Some(Body));
        assert_eq!(open.finish(), None);
    }

    /// The scanner as first written, a byte at a time: the oracle for the
    /// one that jumps between the bytes that matter.
    fn scan_bytewise(scanner: &mut ValueScanner, line: &str) -> Option<()> {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            match scanner.string {
                Some(Quote::Basic | Quote::MultiBasic) if rest[0] == b'\\' => i += 2,
                Some(Quote::Basic) if rest[0] == b'"' => {
                    scanner.string = None;
                    i += 1;
                }
                Some(Quote::Literal) if rest[0] == b'\'' => {
                    scanner.string = None;
                    i += 1;
                }
                Some(Quote::Basic | Quote::Literal) if rest[0] == b'\n' => return None,
                Some(Quote::MultiBasic) if rest.starts_with(b"\"\"\"") => {
                    scanner.string = None;
                    i += closing_quotes(rest, b'"');
                }
                Some(Quote::MultiLiteral) if rest.starts_with(b"'''") => {
                    scanner.string = None;
                    i += closing_quotes(rest, b'\'');
                }
                Some(_) => i += 1,
                None => match rest[0] {
                    b'#' => break,
                    b'"' if rest.starts_with(b"\"\"\"") => {
                        scanner.string = Some(Quote::MultiBasic);
                        i += 3;
                    }
                    b'\'' if rest.starts_with(b"'''") => {
                        scanner.string = Some(Quote::MultiLiteral);
                        i += 3;
                    }
                    b'"' => {
                        scanner.string = Some(Quote::Basic);
                        i += 1;
                    }
                    b'\'' => {
                        scanner.string = Some(Quote::Literal);
                        i += 1;
                    }
                    b'[' | b'{' => {
                        scanner.depth += 1;
                        i += 1;
                    }
                    b']' | b'}' => {
                        scanner.depth = scanner.depth.checked_sub(1)?;
                        i += 1;
                    }
                    _ => i += 1,
                },
            }
        }
        match scanner.string {
            Some(Quote::Basic | Quote::Literal) => None,
            _ => Some(()),
        }
    }

    #[test]
    fn the_scanner_agrees_with_a_byte_at_a_time_on_generated_lines() {
        // Lines drawn from the bytes that matter, and some that do not.
        let alphabet = b"\"\"\"'''#[]{}\\ ax=";
        let mut seed = 0x2545_f491_u64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let (mut agreed, mut refused) = (0, 0);
        for _ in 0..4_000 {
            let (mut fast, mut slow) = (ValueScanner::default(), ValueScanner::default());
            for _ in 0..1 + next(6) {
                let mut line: String = (0..next(24))
                    .map(|_| char::from(alphabet[next(alphabet.len())]))
                    .collect();
                if next(4) != 0 {
                    line.push('\n');
                }
                let (a, b) = (fast.scan(&line), scan_bytewise(&mut slow, &line));
                assert_eq!(a, b, "{line:?}");
                if a.is_none() {
                    refused += 1;
                    break;
                }
                assert_eq!(
                    (fast.string, fast.depth),
                    (slow.string, slow.depth),
                    "{line:?}"
                );
                agreed += 1;
            }
        }
        // Both outcomes were reached often (the comparison is not empty).
        assert!(agreed > 2_000 && refused > 2_000, "{agreed} {refused}");
    }

    #[test]
    fn anything_unusual_is_left_to_the_whole_file_parser() {
        for source in [
            "a = 1\n[[check]]\n",
            "[[check]]\n[defaults]\n[defaults]\n",
            "[check.x]\n[[check]]\n",
            "[[step]]\n",
            "[ check ]\n",
            "[\"quoted\"]\n",
            "[[check]]\na = \"\"\"\n",
            "[[check]]\na = 'x\n",
            "[[check]]\na = ]\n",
        ] {
            assert_eq!(names(source), None, "{source:?}");
        }
    }
}
