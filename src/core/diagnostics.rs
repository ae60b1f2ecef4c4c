//! Compiler-style diagnostics for runbooks: the main type here is
//! [`Diagnostic`]; [`render_diagnostics`] prints them like rustc or hurl do
//! (`--> file:line:column`, the offending line, a caret, "did you mean").

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// One problem in a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, e.g. "unknown key `retires` in step `health`".
    pub message: String,
    /// Byte range in the source.
    pub span: Range<usize>,
    /// Shown after the caret, e.g. "did you mean `retries`?"
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without help text.
    pub fn new(message: impl Into<String>, span: Range<usize>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            help: None,
        }
    }

    /// Adds help text (shown after the caret).
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds help text when there is some.
    pub fn with_optional_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// The closest candidate to `word`, as "did you mean `x`?", when one is close
/// enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|best| format!("did you mean `{best}`?"))
}

/// The candidate closest to `word` by Jaro-Winkler similarity, if similar enough.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        // 0.8 accepts one or two typos in short keys (`retires`, `htp`) but not
        // unrelated words; ties keep the first candidate, which is the order given.
        .filter(|(score, _)| *score >= 0.8)
        .fold(None, |best: Option<(f64, &str)>, (score, c)| match best {
            Some((best_score, _)) if best_score >= score => best,
            _ => Some((score, c)),
        })
        .map(|(_, c)| c)
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Byte offsets where each line starts, for many line lookups in one file
/// (a check file may hold 100,000 checks: scanning from the top for each
/// would be quadratic).
pub fn line_starts(source: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// The 1-based line of `offset`, given [`line_starts`] of the same source.
pub fn line_of(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|&start| start <= offset).max(1)
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Renders every diagnostic, sorted by position, followed by a count line
/// naming the file as `noun` ("runbook", "check file"). `path` is shown
/// exactly as given.
pub fn render_diagnostics(
    noun: &str,
    path: &str,
    source: &str,
    diagnostics: &[Diagnostic],
) -> String {
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| (d.span.start, d.span.end));
    let mut out = String::new();
    for diagnostic in &sorted {
        render_one(&mut out, path, source, diagnostic);
        out.push('\n');
    }
    let count = sorted.len();
    let _ = writeln!(
        out,
        "error: {noun} {path} has {count} error{}",
        if count == 1 { "" } else { "s" }
    );
    out
}

fn render_one(out: &mut String, path: &str, source: &str, diagnostic: &Diagnostic) {
    let start = floor_char_boundary(source, diagnostic.span.start.min(source.len()));
    let (line, column) = line_col(source, start);
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[start..]
        .find('\n')
        .map_or(source.len(), |i| start + i);
    let text = source[line_start..line_end].trim_end_matches('\r');
    // Underline to the end of the span, or of the line when the span goes on.
    let end = floor_char_boundary(
        source,
        diagnostic.span.end.clamp(start, line_end.max(start)),
    );
    let end = end.min(line_start + text.len()).max(start);
    let pad = source[line_start..start]
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect::<String>();
    let carets = "^".repeat(source[start..end].chars().count().max(1));
    let gutter = " ".repeat(line.to_string().len());

    // A value pasted inline is masked character for character, so that the
    // caret still points at the right column.
    let text = mask_inline_secrets(text);
    let message = mask_inline_secrets(&diagnostic.message);
    let _ = writeln!(out, "error: {message}");
    let _ = writeln!(out, "{gutter}--> {path}:{line}:{column}");
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{line} | {text}");
    match &diagnostic.help {
        Some(help) => {
            let _ = writeln!(out, "{gutter} | {pad}{carets} {help}");
        }
        None => {
            let _ = writeln!(out, "{gutter} | {pad}{carets}");
        }
    }
}

/// `text` with every occurrence of each value replaced by as many `*` as it
/// has characters (longest value first, so a value containing another is
/// masked whole).
pub fn mask_values(text: &str, values: &[String]) -> String {
    let mut values: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for value in values {
        if out.contains(value.as_str()) {
            let mask: String = std::iter::repeat_n(MASK, value.chars().count()).collect();
            out = out.replace(value.as_str(), &mask);
        }
    }
    out
}

/// Characters of a masked value.
const MASK: char = '*';

/// A line of a runbook with credential-shaped values masked: the password of
/// a URL (`scheme://user:PASSWORD@`), and a literal value of 8+ characters
/// given to a key named like a credential (`token`, `password`, `secret`,
/// `key`, `dsn`, `authorization`, `credential`…). Templates
/// (`{{secret:NAME}}`) and secret names (`FLY_API_TOKEN`) are left alone:
/// they are what a runbook should hold. Each masked character becomes `*`, so
/// columns do not move.
pub fn mask_inline_secrets(text: &str) -> Cow<'_, str> {
    static RULES: LazyLock<[Regex; 2]> = LazyLock::new(|| {
        [
            Regex::new(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*:(?P<value>[^\s@/?#]+)@")
                .expect("valid regex"),
            Regex::new(
                r#"(?i)[a-z0-9_\-]*(?:token|passw|secret|key|dsn|auth|credential|cookie|private)[a-z0-9_\-]*"?\s*=\s*(?:"(?P<value>[^"\n]{8,})"|'(?P<single>[^'\n]{8,})')"#,
            )
            .expect("valid regex"),
        ]
    });
    let mut out = Cow::Borrowed(text);
    for rule in RULES.iter() {
        let mut ranges = Vec::new();
        for captures in rule.captures_iter(&out) {
            let Some(value) = captures.name("value").or_else(|| captures.name("single")) else {
                continue;
            };
            let v = value.as_str();
            let is_name = v.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && v.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if v.contains("{{") || v.chars().all(|c| c == MASK) || is_name {
                continue;
            }
            ranges.push(value.range());
        }
        if ranges.is_empty() {
            continue;
        }
        let mut masked = String::with_capacity(out.len());
        let mut at = 0;
        for range in ranges {
            masked.push_str(&out[at..range.start]);
            masked.extend(std::iter::repeat_n(
                MASK,
                out[range.clone()].chars().count(),
            ));
            at = range.end;
        }
        masked.push_str(&out[at..]);
        out = Cow::Owned(masked);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_are_masked_in_place() {
        let line = r#"token = "ghp_canary0123456789", url = "postgres://app:pw-canary-1@db/x", name = "FLY_API_TOKEN", ok = "{{secret:X}}""#;
        let masked = mask_inline_secrets(line);
        assert!(!masked.contains("ghp_canary"), "{masked}");
        assert!(!masked.contains("pw-canary-1"), "{masked}");
        assert!(masked.contains("FLY_API_TOKEN") && masked.contains("{{secret:X}}"));
        assert_eq!(masked.chars().count(), line.chars().count());
        let plain = r#"url = "http://127.0.0.1:8080/health", title = "a long harmless title""#;
        assert!(matches!(mask_inline_secrets(plain), Cow::Borrowed(_)));
        // Rendered diagnostics mask the source line, and the caret stays put.
        let source = "[step]\napi_key = \"sk-live-canary-42\"\n";
        let diag = Diagnostic::new("unknown key `api_key`", 7..14);
        let out = render_diagnostics("runbook", "r.toml", source, &[diag]);
        assert!(!out.contains("sk-live-canary-42"), "{out}");
        assert!(out.contains("2 | api_key = \"*****************\""), "{out}");
        assert!(out.contains("  | ^^^^^^^"), "{out}");
    }

    #[test]
    fn line_and_column_are_one_based() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        let starts = line_starts(src);
        for offset in 0..src.len() {
            assert_eq!(
                line_of(&starts, offset),
                line_col(src, offset).0,
                "offset {offset}"
            );
        }
        assert_eq!(line_col(src, 6), (2, 1));
        // `=` after a two-byte character is column 4, not 5.
        assert_eq!(line_col(src, src.find("= 2").unwrap()), (2, 4));
    }

    #[test]
    fn renders_caret_under_span_with_help() {
        let src = "[[step]]\nretires = 3\n";
        let d =
            Diagnostic::new("unknown key `retires`", 9..16).with_help("did you mean `retries`?");
        let out = render_diagnostics("runbook", "x.toml", src, &[d]);
        assert_eq!(
            out,
            "error: unknown key `retires`\n --> x.toml:2:1\n  |\n2 | retires = 3\n  | ^^^^^^^ did you mean `retries`?\n\nerror: runbook x.toml has 1 error\n"
        );
    }

    #[test]
    fn sorts_by_position_and_counts() {
        let src = "a\nb\n";
        let out = render_diagnostics(
            "runbook",
            "f",
            src,
            &[
                Diagnostic::new("second", 2..3),
                Diagnostic::new("first", 0..1),
            ],
        );
        assert!(
            out.find("first").unwrap() < out.find("second").unwrap(),
            "{out}"
        );
        assert!(out.ends_with("has 2 errors\n"), "{out}");
    }

    #[test]
    fn suggests_only_close_candidates() {
        assert_eq!(
            closest("retires", ["id", "retries", "timeout"]),
            Some("retries")
        );
        assert_eq!(closest("htp", ["http", "secret", "command"]), Some("http"));
        assert_eq!(closest("banana", ["http", "secret", "command"]), None);
    }
}
