//! Whether the terminal gets colour: `--color auto|always|never`, `NO_COLOR`
//! and whether each stream is a terminal, decided once per process. The
//! painting itself is [`crate::report::paint`].

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use super::args::ColorWhen;
use crate::report::paint::Paint;

static CHOICE: OnceLock<ColorWhen> = OnceLock::new();

/// Records the command line's `--color` (first call wins).
pub fn init(choice: ColorWhen) {
    let _ = CHOICE.set(choice);
}

/// Whether a stream gets colour: `always` and `never` are obeyed as said;
/// `auto` colours a terminal, unless `NO_COLOR` is set to anything non-empty
/// (<https://no-color.org>) or `TERM=dumb`.
fn wanted(is_terminal: bool) -> bool {
    match CHOICE.get().copied().unwrap_or(ColorWhen::Auto) {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            is_terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

/// The painter for stdout.
pub fn stdout() -> Paint {
    Paint::new(wanted(std::io::stdout().is_terminal()))
}

/// The painter for stderr.
pub fn stderr() -> Paint {
    Paint::new(wanted(std::io::stderr().is_terminal()))
}

/// Prints rendered diagnostics (or an error message) on stderr, coloured when
/// stderr wants colour.
pub fn eprint_diagnostics(text: &str) {
    eprintln!("{}", stderr().diagnostics(text.trim_end()));
}
