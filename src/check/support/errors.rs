//! One error-chain renderer: an error and its causes as `a: b: c`, looking
//! inside `io::Error`s, which hide their inner error from `source()`.

use std::error::Error;
use std::io;

/// The error and its causes, outermost first. An `io::Error` wrapping another
/// error (as tokio-rustls and hyper do) yields that inner error next, so its
/// type can be downcast.
pub fn chain<'a>(err: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut chain = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        chain.push(e);
        next = match e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => e.source(),
        };
    }
    chain
}

/// `outer: cause: root cause`, skipping a cause whose text its parent already
/// shows (an `io::Error` displays its inner error).
pub fn render(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(err) {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// [`render`] of the causes only, without the outermost error's own text
/// (for wrappers such as `reqwest::Error`, whose text repeats the URL).
pub fn render_causes(err: &(dyn Error + 'static)) -> String {
    match err.source() {
        Some(cause) => render(cause),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] io::Error);

    #[test]
    fn looks_inside_io_errors_and_skips_repeats() {
        let root = io::Error::new(
            io::ErrorKind::InvalidData,
            Outer(io::ErrorKind::NotFound.into()),
        );
        let text = render(&root);
        assert_eq!(text, "outer: entity not found");
        assert_eq!(chain(&root).len(), 3);
    }
}
