//! Chatwoot's webhook signature: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`,
//! and its verification with a replay window. The main functions here are
//! [`sign`] and [`verify`].
//!
//! The raw request bytes are signed; JSON is never re-serialized, because
//! Rails' `to_json` escapes `<`, `>` and `&` and keeps non-ASCII as UTF-8, which
//! no other serializer reproduces byte for byte.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::core::duration::format_duration;

type HmacSha256 = Hmac<Sha256>;

/// The signature header's prefix.
const PREFIX: &str = "sha256=";

/// How far in the future a timestamp may lie before it is refused: clocks of
/// sender and receiver drift, but a signature from minutes ahead is a forgery
/// or a badly wrong clock, and either deserves a clear message.
pub const FUTURE_SKEW: Duration = Duration::from_secs(60);

/// Chatwoot's replay window (PR #13573 asks receivers for about 5 minutes).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// Why a delivery's signature was refused. Messages never contain the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Chatwoot-Signature header (Chatwoot sends it only when the webhook has a secret: v4.11.2+ for account webhooks)")]
    MissingSignature,
    #[error("missing X-Chatwoot-Timestamp header")]
    MissingTimestamp,
    #[error("malformed X-Chatwoot-Signature header: expected `sha256=` followed by 64 hex characters, got {found}")]
    MalformedSignature {
        /// A description of the value's shape (never the value itself).
        found: String,
    },
    #[error("malformed X-Chatwoot-Timestamp header: expected Unix seconds, got {found:?}")]
    MalformedTimestamp {
        /// The header's value, cut to 40 characters.
        found: String,
    },
    #[error("stale timestamp: signed {} ago, beyond the {} replay window", human_age(*.age_secs), format_duration(*.max_age))]
    Stale { age_secs: u64, max_age: Duration },
    #[error("timestamp from the future: {} ahead of this clock (allowed skew {})", human_age(*.ahead_secs), format_duration(FUTURE_SKEW))]
    FromFuture { ahead_secs: u64 },
    #[error("wrong signature{}", if *.body_only_matches { ": the signature matches HMAC(secret, body) without the timestamp prefix; Chatwoot signs \"<timestamp>.<body>\"" } else { " (wrong secret, or the body was changed after signing)" })]
    Mismatch {
        /// The sender signed the body alone (the mistake of chatwoot#13809).
        body_only_matches: bool,
    },
}

/// The `X-Chatwoot-Signature` value for `body` sent at `timestamp`
/// (Unix seconds, as text, exactly as it goes into the header).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// The HMAC of the body alone, in header form: what a sender that forgot the
/// timestamp prefix produces. Used for the hint, and as a negative control.
pub fn sign_body_only(secret: &[u8], body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// A signature's age (or lead) in words, rounded to what a reader needs:
/// `42 seconds`, `6 minutes 40 seconds`, `3 hours 12 minutes`, `1 day 4 hours`,
/// `8 days`. Exact seconds stop mattering once an age is counted in days.
pub fn human_age(secs: u64) -> String {
    use jiff::fmt::friendly::{Designator, Spacing, SpanPrinter};
    use jiff::{SignedDuration, Span, SpanRound, Unit};

    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    let (largest, smallest) = match secs {
        s if s < HOUR => (Unit::Minute, Unit::Second),
        s if s < DAY => (Unit::Hour, Unit::Minute),
        s if s < 2 * DAY => (Unit::Day, Unit::Hour),
        _ => (Unit::Day, Unit::Day),
    };
    let printer = SpanPrinter::new()
        .designator(Designator::Verbose)
        .spacing(Spacing::BetweenUnitsAndDesignators);
    let seconds = i64::try_from(secs).unwrap_or(i64::MAX);
    let rounded = Span::try_from(SignedDuration::from_secs(seconds)).and_then(|span| {
        span.round(
            SpanRound::new()
                .largest(largest)
                .smallest(smallest)
                .days_are_24_hours(),
        )
    });
    match rounded {
        Ok(span) => printer.span_to_string(&span),
        // Beyond jiff's span range (about 19,000 years): still say something true.
        Err(_) => format!("{} days", secs / DAY),
    }
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the error case cannot happen.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// Checks a delivery's headers against its raw body: signature first (in
/// constant time), then the timestamp against `now_unix` and `max_age`.
pub fn verify(
    secret: &[u8],
    signature_header: Option<&str>,
    timestamp_header: Option<&str>,
    body: &[u8],
    now_unix: i64,
    max_age: Duration,
) -> Result<(), SignatureError> {
    let signature = signature_header
        .map(str::trim)
        .ok_or(SignatureError::MissingSignature)?;
    let timestamp_text = timestamp_header
        .map(str::trim)
        .ok_or(SignatureError::MissingTimestamp)?;
    let given = parse_signature(signature)?;
    let timestamp = parse_timestamp(timestamp_text)?;

    let expected = digest(sign(secret, timestamp_text, body));
    if !bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        let body_only = digest(sign_body_only(secret, body));
        return Err(SignatureError::Mismatch {
            body_only_matches: bool::from(given.as_slice().ct_eq(body_only.as_slice())),
        });
    }

    let age = now_unix.saturating_sub(timestamp);
    if age > 0 && age as u64 > max_age.as_secs() {
        return Err(SignatureError::Stale {
            age_secs: age as u64,
            max_age,
        });
    }
    if age < 0 && age.unsigned_abs() > FUTURE_SKEW.as_secs() {
        return Err(SignatureError::FromFuture {
            ahead_secs: age.unsigned_abs(),
        });
    }
    Ok(())
}

fn digest(header: String) -> Vec<u8> {
    hex::decode(&header[PREFIX.len()..]).expect("sign produces hex")
}

/// Decodes `sha256=<64 hex>`; describes, never echoes, a malformed value
/// (someone may have pasted the secret where the signature belongs).
fn parse_signature(value: &str) -> Result<Vec<u8>, SignatureError> {
    let Some(hex_part) = value.strip_prefix(PREFIX) else {
        let found = if value.is_empty() {
            "an empty value".to_string()
        } else {
            format!(
                "{} characters without the `sha256=` prefix",
                value.chars().count()
            )
        };
        return Err(SignatureError::MalformedSignature { found });
    };
    if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        let found = if hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            format!("{} hex characters after `sha256=`", hex_part.len())
        } else {
            "non-hex characters after `sha256=`".to_string()
        };
        return Err(SignatureError::MalformedSignature { found });
    }
    hex::decode(hex_part).map_err(|_| SignatureError::MalformedSignature {
        found: "non-hex characters after `sha256=`".to_string(),
    })
}

fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    let malformed = || SignatureError::MalformedTimestamp {
        found: crate::core::cut::cut(value, 40),
    };
    // Digits only: `+5`, `1e9` or ` 12` would parse elsewhere but are not what
    // Chatwoot sends, and the exact text is part of the signed string.
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    value.parse().map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret";

    #[test]
    fn ages_read_in_the_largest_sensible_unit() {
        assert_eq!(human_age(0), "0 seconds");
        assert_eq!(human_age(1), "1 second");
        assert_eq!(human_age(400), "6 minutes 40 seconds");
        assert_eq!(human_age(3 * 3600 + 12 * 60 + 59), "3 hours 13 minutes");
        assert_eq!(human_age(86_400 + 4 * 3600 + 10), "1 day 4 hours");
        // 8134h2m40s: what the old formatter printed for a long-stale replay.
        assert_eq!(human_age(8134 * 3600 + 2 * 60 + 40), "339 days");
        assert_eq!(human_age(8 * 86_400 + 7_322), "8 days");
    }

    #[test]
    fn stale_and_future_messages_say_how_far() {
        let sig = sign(SECRET, "1000", b"{}");
        let stale = verify(
            SECRET,
            Some(&sig),
            Some("1000"),
            b"{}",
            1000 + 301,
            DEFAULT_MAX_AGE,
        )
        .unwrap_err();
        assert_eq!(
            stale.to_string(),
            "stale timestamp: signed 5 minutes 1 second ago, beyond the 5m replay window"
        );
        let future = verify(
            SECRET,
            Some(&sig),
            Some("1000"),
            b"{}",
            1000 - 61,
            DEFAULT_MAX_AGE,
        )
        .unwrap_err();
        assert_eq!(
            future.to_string(),
            "timestamp from the future: 1 minute 1 second ahead of this clock (allowed skew 1m)"
        );
        assert!(verify(
            SECRET,
            Some(&sig),
            Some("1000"),
            b"{}",
            1000 - 60,
            DEFAULT_MAX_AGE
        )
        .is_ok());
        assert!(verify(
            SECRET,
            Some(&sig),
            Some("1000"),
            b"{}",
            1300,
            DEFAULT_MAX_AGE
        )
        .is_ok());
    }

    #[test]
    fn malformed_signature_is_described_not_echoed() {
        let err = verify(
            SECRET,
            Some("hunter2hunter2"),
            Some("1000"),
            b"",
            1000,
            DEFAULT_MAX_AGE,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(
            err.to_string()
                .contains("14 characters without the `sha256=` prefix"),
            "{err}"
        );
        let short = verify(
            SECRET,
            Some("sha256=abc"),
            Some("1000"),
            b"",
            1000,
            DEFAULT_MAX_AGE,
        )
        .unwrap_err();
        assert!(short.to_string().contains("3 hex characters"), "{short}");
    }
}
