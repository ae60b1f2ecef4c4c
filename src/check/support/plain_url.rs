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
    /// says nothing of whether it is valid).
    pub fn parse(text: &'a str) -> Option<PlainUrl<'a>> {
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("http://") {
            ("http", rest)
        } else {
            ("https", text.strip_prefix("https://")?)
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(authority_end);
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(plain_port(port)?)),
            None => (authority, None),
        };
        if !plain_host(host) {
            return None;
        }
        // `url` writes an empty path as `/` (not a query without a path:
        // that would not be a slice of `text`).
        let target = if target.is_empty() { "/" } else { target };
        let default_port = if scheme == "http" { 80 } else { 443 };
        if port == Some(default_port) || !plain_target(target) {
            return None;
        }
        Some(PlainUrl {
            scheme,
            host,
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
fn plain_port(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 5 || bytes[0] == b'0' {
        return None;
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.parse().ok()
}

/// Labels of `a-z`, `0-9` and `-`, none empty, none an IDNA (`xn--`) label;
/// when the last is a number (which makes `url` read the host as IPv4), four
/// canonical decimal octets.
fn plain_host(host: &str) -> bool {
    let mut labels = 0;
    let mut last = "";
    for label in host.split('.') {
        let bytes = label.as_bytes();
        if bytes.is_empty()
            || bytes.starts_with(b"xn--")
            || !bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    let numeric = |label: &str| label.bytes().all(|b| b.is_ascii_digit());
    if labels == 0 || !numeric(last) {
        // `0x…` as the last label would be read as a hexadecimal number.
        return labels > 0 && !last.starts_with("0x");
    }
    labels == 4
        && host.split('.').all(|octet| {
            numeric(octet)
                && (octet == "0" || !octet.starts_with('0'))
                && octet.parse::<u8>().is_ok()
        })
}

/// A path that starts with `/` (or nothing before a query), then a query:
/// characters that `url` neither escapes nor reinterprets, and no `.` or `..`
/// segment (which it would resolve).
fn plain_target(target: &str) -> bool {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if !path.starts_with('/') {
        return false;
    }
    let path_ok = path.bytes().all(plain_path_byte)
        && path
            .split('/')
            .all(|segment| segment != "." && segment != "..");
    path_ok
        && query.is_none_or(|query| {
            query
                .bytes()
                .all(|b| b != b'\'' && (b == b'?' || plain_path_byte(b)))
        })
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
