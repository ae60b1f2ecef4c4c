//! The one way text is shortened for display: every cut ends with
//! [`ELLIPSIS`], which is also how the redactor finds cut points (a secret
//! cut in half right before `…` still has its prefix masked).

/// The mark every cut ends with. The redactor masks a trailing prefix of a
/// secret immediately before it, so a cut never shows a secret's first
/// characters.
pub const ELLIPSIS: char = '…';

/// `text` cut to at most `max` characters (the ellipsis included); unchanged
/// when it fits.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push(ELLIPSIS);
    out
}

/// The first line of `text`, cut to at most `max` characters; the ellipsis
/// also marks that further lines were dropped.
pub fn cut_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.len() == text.len() {
        return cut(line, max);
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push(ELLIPSIS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_end_with_the_ellipsis_and_fit() {
        assert_eq!(cut("abcdef", 6), "abcdef");
        assert_eq!(cut("abcdefg", 6), "abcde…");
        assert_eq!(cut("ééééééé", 3), "éé…");
        assert_eq!(cut_line("ab\ncd", 10), "ab…");
        assert_eq!(cut_line("abc", 10), "abc");
    }
}
