//! Percent-encoding of one URL path segment (or query value) that platform
//! checks build from names in a runbook: RFC 3986 unreserved characters are
//! kept as they are, so requests and evidence show the real name.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`ALPHA DIGIT - . _ ~`).
/// Encoding an unreserved character is legal but needless, and some servers
/// and proxies treat `%2D` and `-` as different names.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `segment` percent-encoded for use as one path segment.
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::encode_segment;

    #[test]
    fn unreserved_characters_are_never_encoded() {
        assert_eq!(encode_segment("hotdash-chatwoot"), "hotdash-chatwoot");
        assert_eq!(encode_segment("a.b_c~d-9Z"), "a.b_c~d-9Z");
        assert_eq!(encode_segment("a/b c?%"), "a%2Fb%20c%3F%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}
