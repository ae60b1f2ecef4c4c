//! Colour for the terminal only: verdict words, table verdict columns and
//! compiler-style diagnostics (coloured like rustc's). Files (summary.md,
//! junit.xml, the bundle) never pass through here. [`Paint`] is off unless
//! the command line decided the stream is a terminal that wants colour.

use anstyle::{AnsiColor, Style};

const PASS: Style = AnsiColor::Green.on_default().bold();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const STOPPED: Style = AnsiColor::Magenta.on_default().bold();
const NOTE: Style = AnsiColor::Blue.on_default().bold();
const EMPHASIS: Style = Style::new().bold();

/// Whether to colour, and how: a copy per output stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paint {
    enabled: bool,
}

impl Paint {
    /// Colours when `enabled`; otherwise every method returns its text as is.
    pub fn new(enabled: bool) -> Self {
        Paint { enabled }
    }

    /// Whether escapes are written at all.
    pub fn enabled(self) -> bool {
        self.enabled
    }

    /// `text` in `style` (unchanged when colour is off).
    pub fn style(self, text: &str, style: Style) -> String {
        if self.enabled && !text.is_empty() {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    /// A verdict word in its colour: pass green, a pass after retries or a
    /// blocked/skipped check yellow, a failure red, an interruption magenta.
    /// The colour follows the first word, so `pass after 2 retries` and
    /// `PASS` work alike.
    pub fn verdict(self, label: &str) -> String {
        self.style(label, verdict_style(label))
    }

    /// Colours the verdict cell of each row in a rendered table (tabled's
    /// `sharp` style: cells separated by `│`). `column` is 0-based and must
    /// come before any free-text column, whose text could hold a `│`.
    /// Painting after rendering keeps the column widths right.
    pub fn table_column(self, table: &str, column: usize) -> String {
        if !self.enabled {
            return table.to_string();
        }
        let mut out = String::with_capacity(table.len() + 64);
        for (i, line) in table.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let cells: Vec<&str> = line.splitn(column + 3, '│').collect();
            // A row is `│ a │ b │ …`: cell k is at index k + 1. The header
            // row (line 1) and border lines are left alone.
            if i <= 1 || cells.len() < column + 3 {
                out.push_str(line);
                continue;
            }
            let cell = cells[column + 1];
            let word = cell.trim();
            let start = cell.len() - cell.trim_start().len();
            let painted = format!(
                "{}{}{}",
                &cell[..start],
                self.verdict(word),
                &cell[start + word.len()..]
            );
            for (k, part) in cells.iter().enumerate() {
                if k > 0 {
                    out.push('│');
                }
                out.push_str(if k == column + 1 { &painted } else { part });
            }
        }
        if table.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    /// Rendered diagnostics (see `core::diagnostics`) coloured like rustc:
    /// `error` red and the message bold, `-->`, line numbers and `|` blue,
    /// carets and their help red; `warning` yellow.
    pub fn diagnostics(self, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 256);
        for line in text.split_inclusive('\n') {
            let (body, newline) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            out.push_str(&self.diagnostic_line(body));
            out.push_str(newline);
        }
        out
    }

    fn diagnostic_line(self, line: &str) -> String {
        for (label, style) in [("error", FAIL), ("warning", WARN)] {
            // `error: …` and `runproof: error: …`
            for prefix in ["", "runproof: "] {
                if let Some(rest) = line
                    .strip_prefix(prefix)
                    .and_then(|l| l.strip_prefix(label))
                    .and_then(|l| l.strip_prefix(':'))
                {
                    return format!(
                        "{prefix}{}{}",
                        self.style(label, style),
                        self.style(&format!(":{rest}"), EMPHASIS)
                    );
                }
            }
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = &line[indent..];
        if let Some(rest) = trimmed.strip_prefix("-->") {
            return format!("{}{}{rest}", &line[..indent], self.style("-->", NOTE));
        }
        // Gutter lines: `  |`, `12 | text`, `   | ^^^ help`.
        let number_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let after_number = &trimmed[number_end..];
        let gutter_end = if number_end > 0 && after_number.starts_with(" |") {
            indent + number_end + 2
        } else if number_end == 0 && after_number.starts_with('|') {
            indent + 1
        } else {
            return line.to_string();
        };
        let (gutter, rest) = line.split_at(gutter_end);
        if number_end > 0 {
            // The source line itself: shown as written.
            return format!("{}{rest}", self.style(gutter, NOTE));
        }
        // Carets (and the help after them) in red.
        let pad = rest.len() - rest.trim_start().len();
        let marks = &rest[pad..];
        format!(
            "{}{}{}",
            self.style(gutter, NOTE),
            &rest[..pad],
            self.style(marks, FAIL)
        )
    }
}

fn verdict_style(label: &str) -> Style {
    let lower = label.to_ascii_lowercase();
    let first = lower.split_whitespace().next().unwrap_or_default();
    match first {
        "pass" | "passed" | "ok" if lower.contains("after") => WARN,
        "pass" | "passed" | "ok" | "verified" => PASS,
        "blocked" | "skipped" | "skip" | "flaky" | "incomplete" | "unconfirmed" => WARN,
        "interrupted" | "unfinished" => STOPPED,
        _ => FAIL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESC: char = '\u{1b}';

    #[test]
    fn off_means_no_escape_at_all() {
        let paint = Paint::new(false);
        assert_eq!(paint.verdict("pass"), "pass");
        let diags = "error: x\n --> f:1:1\n  |\n1 | a\n  | ^ help\n";
        assert_eq!(paint.diagnostics(diags), diags);
    }

    #[test]
    fn verdicts_get_their_colours() {
        let paint = Paint::new(true);
        assert_eq!(
            paint.verdict("pass"),
            format!("{ESC}[1m{ESC}[32mpass{ESC}[0m")
        );
        assert!(paint.verdict("escalated").contains("[31m"));
        assert!(paint.verdict("FAIL").contains("[31m"));
        assert!(paint.verdict("pass after 1 retry").contains("[33m"));
        assert!(paint.verdict("blocked").contains("[33m"));
        assert!(paint.verdict("interrupted").contains("[35m"));
        assert!(paint.verdict("VERIFIED").contains("[32m"));
        assert!(paint.verdict("INCOMPLETE").contains("[33m"));
        assert!(paint.verdict("INVALID").contains("[31m"));
    }

    #[test]
    fn diagnostics_are_coloured_like_rustc_and_keep_their_text() {
        let text = "error: unknown key `retires`\n --> x.toml:2:1\n  |\n2 | retires = 3\n  | ^^^^^^^ did you mean `retries`?\n\nerror: runbook x.toml has 1 error\n";
        let painted = Paint::new(true).diagnostics(text);
        assert!(
            painted.starts_with(&format!("{ESC}[1m{ESC}[31merror{ESC}[0m")),
            "{painted:?}"
        );
        assert!(
            painted.contains(&format!("{ESC}[1m{ESC}[34m-->{ESC}[0m x.toml:2:1")),
            "{painted:?}"
        );
        assert!(
            painted.contains(&format!("{ESC}[1m{ESC}[31m^^^^^^^ did you mean")),
            "{painted:?}"
        );
        assert!(
            painted.contains(&format!("{ESC}[1m{ESC}[34m2 |{ESC}[0m retires = 3")),
            "{painted:?}"
        );
        // Removing the escapes gives back the plain text exactly.
        let plain = regex::Regex::new("\u{1b}\\[[0-9;]*m")
            .unwrap()
            .replace_all(&painted, "");
        assert_eq!(plain, text);
    }

    #[test]
    fn only_the_verdict_column_of_body_rows_is_painted() {
        let table = "┌───┬──────┬───────────┐\n│ # │ step │ verdict   │\n├───┼──────┼───────────┤\n│ 1 │ a    │ pass      │\n│ 2 │ b    │ escalated │\n└───┴──────┴───────────┘";
        let painted = Paint::new(true).table_column(table, 2);
        let lines: Vec<&str> = painted.lines().collect();
        assert_eq!(lines[1], "│ # │ step │ verdict   │");
        assert!(
            lines[3].contains(&format!("{ESC}[32mpass{ESC}[0m      │")),
            "{painted}"
        );
        assert!(lines[4].contains("[31mescalated"), "{painted}");
        let plain = regex::Regex::new("\u{1b}\\[[0-9;]*m")
            .unwrap()
            .replace_all(&painted, "");
        assert_eq!(plain, table);
    }
}
