//! Dotenv files (`KEY=value`): the parser behind [`super::secrets`]. The main
//! function here is [`parse_dotenv`].
//!
//! Supported: `KEY=value`, `export KEY=value`, spaces around `=`, single
//! quotes (literal), double quotes (`\n`, `\"`, `\\` escapes; may span lines),
//! `#` comments on their own line or after an unquoted value preceded by
//! whitespace, blank lines. Errors name the line and the problem, never the
//! value: these files hold secrets.

/// A malformed line: 1-based line number and what is wrong (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub line: usize,
    pub reason: &'static str,
}

/// Parses dotenv text into `(key, value)` pairs in file order (a key that
/// appears twice keeps both; the later one wins when collected into a map).
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, DotenvError> {
    let mut pairs = Vec::new();
    let mut rest = text;
    let mut line = 1;
    while !rest.is_empty() {
        let (raw_line, after) = split_line(rest);
        let trimmed = raw_line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            rest = after;
            line += 1;
            continue;
        }
        let error = |reason| DotenvError { line, reason };
        let body = raw_line.trim_start();
        let body = match body.strip_prefix("export") {
            Some(tail) if tail.starts_with([' ', '\t']) => tail.trim_start(),
            _ => body,
        };
        let eq = body.find('=').ok_or(error("expected `KEY=value`"))?;
        let key = body[..eq].trim_end();
        let key_ok = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !key_ok {
            return Err(error(
                "invalid key: use letters, digits and `_`, not starting with a digit",
            ));
        }
        // The value may continue past this line when quoted, so parse from the
        // remaining text rather than the line.
        let value_start = text.len() - rest.len() + (raw_line.len() - body.len()) + eq + 1;
        let value_text = text[value_start..].trim_start_matches([' ', '\t']);
        let (value, consumed_lines, remaining) = parse_value(value_text).map_err(error)?;
        pairs.push((key.to_string(), value));
        line += consumed_lines;
        rest = remaining;
    }
    Ok(pairs)
}

/// Splits off one line (without its `\n`), returning the line and the rest.
fn split_line(text: &str) -> (&str, &str) {
    match text.find('\n') {
        Some(i) => (
            text[..i].strip_suffix('\r').unwrap_or(&text[..i]),
            &text[i + 1..],
        ),
        None => (text, ""),
    }
}

/// Parses a value at the start of `text`; returns the value, how many lines
/// it used (at least 1), and the text after its line.
fn parse_value(text: &str) -> Result<(String, usize, &str), &'static str> {
    match text.chars().next() {
        Some(quote @ ('\'' | '"')) => {
            let body = &text[1..];
            let mut value = String::new();
            let mut chars = body.char_indices();
            let close = loop {
                let Some((i, c)) = chars.next() else {
                    return Err("unterminated quoted value");
                };
                match c {
                    c if c == quote => break i,
                    '\\' if quote == '"' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, '\\')) => value.push('\\'),
                        // Unknown escapes stay as written, as most dotenv readers do.
                        Some((_, other)) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => return Err("unterminated quoted value"),
                    },
                    c => value.push(c),
                }
            };
            let after = &body[close + 1..];
            let lines_inside = body[..close].matches('\n').count();
            let (tail, remaining) = split_line(after);
            let tail = tail.trim();
            if !tail.is_empty() && !tail.starts_with('#') {
                return Err("unexpected text after the closing quote");
            }
            Ok((value, lines_inside + 1, remaining))
        }
        _ => {
            let (line, remaining) = split_line(text);
            // `#` starts a comment only after whitespace, so `a#b` stays whole.
            let mut end = line.len();
            let bytes = line.as_bytes();
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
                    end = i;
                    break;
                }
            }
            Ok((line[..end].trim_end().to_string(), 1, remaining))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String)> {
        parse_dotenv(text).unwrap()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn plain_export_and_spaces() {
        assert_eq!(
            parse("A=1\nexport B=two words\n  C = 3  \nexported=4\n"),
            vec![
                pair("A", "1"),
                pair("B", "two words"),
                pair("C", "3"),
                pair("exported", "4")
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(
            parse("# header\n\nA=x # trailing\nB=a#b\n   # indented comment\nC=\n"),
            vec![pair("A", "x"), pair("B", "a#b"), pair("C", "")]
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            parse(r"A='a\nb # not a comment'"),
            vec![pair("A", r"a\nb # not a comment")]
        );
    }

    #[test]
    fn double_quotes_have_escapes_and_may_span_lines() {
        assert_eq!(
            parse("A=\"l1\\nl2 \\\"q\\\" \\\\ \\d\" # c\nB=\"multi\nline\"\nC=3\n"),
            vec![
                pair("A", "l1\nl2 \"q\" \\ \\d"),
                pair("B", "multi\nline"),
                pair("C", "3")
            ]
        );
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            parse("A=1\r\nB='2'\r\n"),
            vec![pair("A", "1"), pair("B", "2")]
        );
    }

    #[test]
    fn errors_name_the_line_not_the_value() {
        let err = parse_dotenv("A=1\n\nthis is not a pair\n").unwrap_err();
        assert_eq!(
            err,
            DotenvError {
                line: 3,
                reason: "expected `KEY=value`"
            }
        );
        assert_eq!(parse_dotenv("A=1\nB=\"open").unwrap_err().line, 2);
        assert_eq!(parse_dotenv("1A=x").unwrap_err().line, 1);
        assert_eq!(
            parse_dotenv("A='x' y").unwrap_err().reason,
            "unexpected text after the closing quote"
        );
        // Lines are counted past multi-line values.
        assert_eq!(parse_dotenv("A=\"1\n2\"\nbad\n").unwrap_err().line, 3);
    }
}
