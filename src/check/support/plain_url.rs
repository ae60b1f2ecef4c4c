//! Plain `http(s)://host[:port][/path][?query]` URLs read without the `url`
//! crate: the shape nearly every health check writes, taken apart in a few
//! hundred instructions where a full WHATWG parse costs about 6,000 (its
//! host goes through IDNA processing even when it is `127.0.0.1`), and a
//! sweep check's URL was parsed three times (validated by each of a streamed
//! sweep's two passes, then sent).
//!
//! Only a URL that the `url` crate would take exactly as written is plain:
//! anything it would change or might refuse (upper case, percent-escapes,
//! dot segments, user info, IPv6, a non-canonical IPv4 address, a fragment,
//! a default or empty port…) is not, and goes through `url` as before. So a
//! plain URL is always valid, and its parts are what `url` would give
//! (tested against it on generated URLs).

/// A URL in the plain shape (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainUrl<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Lower-case name or dotted IPv4 address, as written.
    pub host: &'a str,
    /// The port as written (never the scheme's default, which is not plain).
    pub port: Option<u16>,
    /// The path (at least `/`) and the query with its `?`, as written.
    pub target: &'a str,
}

impl<'a> PlainUrl<'a> {
    /// `text` taken apart, when it is plain; `None` when it is not (which
    /// says nothing of whether it is valid). One pass over the bytes: this
    /// runs for every check of a sweep three times.
    pub fn parse(text: &'a str) -> Option<PlainUrl<'a>> {
        let bytes = text.as_bytes();
        let (scheme, host_start) = if bytes.starts_with(b"http://") {
            ("http", 7)
        } else if bytes.starts_with(b"https://") {
            ("https", 8)
        } else {
            return None;
        };
        let host_end = plain_host_end(bytes, host_start)?;
        let (port, target_start) = if bytes.get(host_end) == Some(&b':') {
            let port_end = bytes[host_end + 1..]
                .iter()
                .position(|b| matches!(b, b'/' | b'?'))
                .map_or(bytes.len(), |at| host_end + 1 + at);
            (Some(plain_port(&bytes[host_end + 1..port_end])?), port_end)
        } else {
            (None, host_end)
        };
        let default_port = if scheme == "http" { 80 } else { 443 };
        // `url` writes an empty path as `/` (not a query without a path:
        // that would not be a slice of `text`).
        let target = match &text[target_start..] {
            "" => "/",
            target => target,
        };
        if port == Some(default_port) || !plain_target(target.as_bytes()) {
            return None;
        }
        Some(PlainUrl {
            scheme,
            host: &text[host_start..host_end],
            port,
            target,
        })
    }

    /// The port to connect to: the one written, else the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.port
            .unwrap_or(if self.scheme == "http" { 80 } else { 443 })
    }
}

/// Decimal, no leading zero, at most 65,535.
fn plain_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || digits[0] == b'0' {
        return None;
    }
    let mut value: u32 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    u16::try_from(value).ok()
}

/// Where the plain host that starts at `start` ends (at `:`, `/`, `?` or
/// the end), or `None` when it is not plain: labels of `a-z`, `0-9` and
/// `-`, none empty, none an IDNA (`xn--`) label; when the last is a number
/// (which makes `url` read the host as IPv4), four canonical decimal octets.
fn plain_host_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut labels = 0;
    let mut label_start = start;
    // Every label so far a canonical octet (`0`, or 1–255 without a
    // leading zero).
    let mut octets = true;
    let mut at = start;
    loop {
        match bytes.get(at) {
            Some(b'a'..=b'z' | b'0'..=b'9' | b'-') => at += 1,
            end @ (None | Some(b'.' | b':' | b'/' | b'?')) => {
                let label = &bytes[label_start..at];
                if label.is_empty() || label.starts_with(b"xn--") {
                    return None;
                }
                labels += 1;
                let numeric = label.iter().all(u8::is_ascii_digit);
                octets &= numeric
                    && label.len() <= 3
                    && (label == b"0" || label[0] != b'0')
                    && label.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0')) <= 255;
                if end != Some(&b'.') {
                    // `0x…` as the last label would be read as a
                    // hexadecimal number.
                    let plain = if numeric {
                        labels == 4 && octets
                    } else {
                        !label.starts_with(b"0x")
                    };
                    return plain.then_some(at);
                }
                at += 1;
                label_start = at;
            }
            Some(_) => return None,
        }
    }
}

/// A path that starts with `/` (or nothing before a query), then a query:
/// characters that `url` neither escapes nor reinterprets, and no `.` or `..`
/// segment (which it would resolve).
fn plain_target(target: &[u8]) -> bool {
    let path_end = target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len());
    let (path, query) = target.split_at(path_end);
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut segment_start = 1;
    for (at, &b) in path.iter().enumerate().skip(1) {
        if !plain_path_byte(b) {
            return false;
        }
        if b == b'/' {
            if dot_segment(&path[segment_start..at]) {
                return false;
            }
            segment_start = at + 1;
        }
    }
    !dot_segment(&path[segment_start..])
        && query
            .iter()
            .all(|&b| b != b'\'' && (b == b'?' || plain_path_byte(b)))
}

fn dot_segment(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

/// Unreserved and sub-delimiter characters, `:`, `@` and `/`: what `url`
/// leaves as it is in a path.
fn plain_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `url` makes of `text`, in the parts a plain URL has.
    fn by_url(text: &str) -> Option<(String, String, Option<u16>, u16, String)> {
        let url = url::Url::parse(text).ok()?;
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        Some((
            url.scheme().to_string(),
            url.host_str()?.to_string(),
            url.port(),
            url.port_or_known_default()?,
            target,
        ))
    }

    fn agrees_with_url(text: &str) -> bool {
        let Some(plain) = PlainUrl::parse(text) else {
            return false;
        };
        let expected =
            by_url(text).unwrap_or_else(|| panic!("plain, but `url` refuses it: {text:?}"));
        let got = (
            plain.scheme.to_string(),
            plain.host.to_string(),
            plain.port,
            plain.port_or_default(),
            plain.target.to_string(),
        );
        assert_eq!(got, expected, "{text:?}");
        // Taken as written: `url` changes nothing but an empty path.
        let serialized = url::Url::parse(text).unwrap();
        let written = if text.ends_with(plain.target) {
            text.to_string()
        } else {
            format!("{text}/")
        };
        assert_eq!(serialized.as_str(), written, "{text:?}");
        true
    }

    #[test]
    fn the_urls_health_checks_write_are_plain() {
        for text in [
            "http://127.0.0.1:18090/u/1",
            "http://localhost:8080/healthz",
            "https://example.com/api/v1/health?verbose=1&x=a:b",
            "https://chat.example.io",
            "http://10.0.0.255:65535/",
            "https://my-app.fly.dev/auth/sign_in?redirect=/home",
        ] {
            assert!(agrees_with_url(text), "{text} is not plain");
        }
    }

    #[test]
    fn what_url_would_change_or_refuse_is_not_plain() {
        for text in [
            "HTTP://example.com/",
            "http://Example.com/",
            "http://example.com:80/",
            "https://example.com:443/",
            "http://example.com:/",
            "http://example.com:080/",
            "http://example.com:65536/",
            "http://user:pw@example.com/",
            "http://[::1]:8080/",
            "http://127.1/",
            "http://127.0.0.01/",
            "http://256.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://a.0x10/",
            "http://1.2.3.4.5/",
            "http://xn--nxasmq6b.com/",
            "http://a..b/",
            "http://.a/",
            "http://a./",
            "http://example.com/a/../b",
            "http://example.com/a/./b",
            "http://example.com/%2e%2e/",
            "http://example.com/a b",
            "http://example.com/a#top",
            "http://example.com/a\\b",
            "http://example.com/?q='x'",
            "ftp://example.com/",
            "http:/example.com/",
            " http://example.com/",
            "http://example.com/é",
        ] {
            assert_eq!(PlainUrl::parse(text), None, "{text} is plain");
        }
    }

    /// Generated URLs from the pieces that matter: every one taken as plain
    /// must be what `url` makes of it, and enough are taken for the test to
    /// mean something.
    #[test]
    fn plain_urls_agree_with_the_url_crate_on_generated_urls() {
        let schemes = ["http://", "https://", "HTTP://", "http:/", "http:", "ws://"];
        let hosts = [
            "",
            "a",
            "example.com",
            "a-b.c",
            "-a",
            "a-",
            "A",
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.",
            "a.1",
            "a.b1",
            "1a.b",
            "0x1",
            "a.0x1",
            "a.0X1",
            "x",
            "xn--a",
            "a.xn--b",
            "a_b",
            "1.2.3.256",
            "a..b",
            "[::1]",
            "u@h",
            "u:p@h",
            "h%41",
            "héllo",
        ];
        let ports = [
            "", ":", ":0", ":1", ":80", ":443", ":08", ":8080", ":65535", ":65536", ":x",
        ];
        let paths = [
            "",
            "/",
            "/a",
            "/a/b/",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/.a",
            "/a..",
            "/a%20b",
            "/a b",
            "/~u/!$&'()*+,;=:@",
            "/a\\b",
            "/{x}",
            "/a|b",
            "/\"",
            "/<>",
            "/`",
            "//a",
            "/é",
            "/a\tb",
        ];
        let queries = [
            "", "?", "?a=1", "?a=1&b=2", "?q='x'", "?a b", "?/?:@", "?%41", "?a#f", "#f", "?{}",
        ];
        let mut plain = 0;
        let mut total = 0;
        for scheme in schemes {
            for host in hosts {
                for port in ports {
                    for path in paths {
                        for query in queries {
                            let text = format!("{scheme}{host}{port}{path}{query}");
                            total += 1;
                            if agrees_with_url(&text) {
                                plain += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(
            plain > 2_000,
            "only {plain} of {total} generated URLs are plain"
        );
    }
}
