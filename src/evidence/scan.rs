//! `verify --scan-secrets`: look through every byte of every file of a
//! bundle for known secret values (in every encoding the redactor knows) and,
//! optionally, for credential-shaped text that no value list would catch.
//! Findings name the file, line and offset, never the matched bytes.

use std::fs;
use std::path::Path;
use std::sync::LazyLock;

use regex::bytes::Regex;
use serde::Serialize;

use super::redact::Redactor;

/// One place a secret was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretFinding {
    /// Path relative to the bundle.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Masked: the first 4 characters of the secret's name (or detector's),
    /// and the match's length. Never the match itself.
    pub preview: String,
}

/// Credential shapes, for scans without known values. `value` is the part
/// that must not be there in clear.
fn detectors() -> &'static [(&'static str, Regex)] {
    static DETECTORS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
        let credential_key_pattern = format!(
            r#"(?i)(?:^|[\s{{,."])[a-z0-9_\-]*(?:{})"?\s*=\s*\\?["'](?P<value>[^"'\r\n\\]+)"#,
            super::keyed::KEY_ENDINGS.join("|")
        );
        [
            ("url-userinfo", r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*:(?P<value>[^\s@/?#]+)@"),
            ("webhook-url", super::redact::WEBHOOK_URL),
            (
                "auth-header",
                r#"(?i)\b(?:proxy-)?authorization"?\s*[:=]\s*"?(?:(?:basic|bearer|token|flyv1)\s+)?(?P<value>[^\s"\\][^\r\n"\\]*)"#,
            ),
            ("dsn-password", r#"(?i)\bpassword\s*=\s*(?P<value>[^\s&;'"\\]+)"#),
            // A TOML or INI key (`token = "…"`, `DB_PASSWORD = '…'`).
            ("credential-key", credential_key_pattern.as_str()),
            // A Rails/Phoenix key base echoed by `set -x` or an env dump.
            (
                "secret-key-base",
                r#"(?i)\bSECRET_KEY_BASE['"]?\s*[=:]\s*['"]?(?P<value>[0-9a-f]{64,})"#,
            ),
            ("fly-token", r"(?P<value>\b(?:fm2|fm1r|fm1a|fo1)_[A-Za-z0-9+/=_\-]{16,})"),
            ("github-token", r"(?P<value>\b(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,})"),
            ("aws-access-key", r"(?P<value>\bAKIA[0-9A-Z]{16}\b)"),
            ("jwt", r"(?P<value>\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"),
            ("private-key", r"(?P<value>-----BEGIN [A-Z ]*PRIVATE KEY-----)"),
        ]
        .into_iter()
        .map(|(name, pattern)| (name, Regex::new(pattern).expect("valid detector")))
        .collect()
    });
    &DETECTORS
}

fn mask(name: &str, len: usize) -> String {
    let head: String = name.chars().take(4).collect();
    format!("{head}… ({len} bytes)")
}

/// New bytes scanned at a time, in whole lines: a bundle's journal of a
/// million records is far too large to hold at once. (Tiny under test, so
/// that every scan in the tests crosses windows.)
const WINDOW: usize = if cfg!(test) { 64 } else { 4 << 20 };
/// A window grows to end at a line end, up to this much; a longer line is
/// cut (the credential patterns do not span lines, but a match across such a
/// cut could be missed).
const MAX_WINDOW: usize = if cfg!(test) { 1 << 16 } else { 64 << 20 };

/// Scans `files` (relative to `dir`). Unreadable files come back as errors.
pub(crate) fn scan_files(
    dir: &Path,
    files: &[String],
    redactor: &Redactor,
    patterns: bool,
) -> (Vec<SecretFinding>, Vec<String>) {
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        if let Err(e) = scan_file(dir, file, redactor, patterns, &mut findings) {
            errors.push(format!("{file}: {e}"));
        }
    }
    (findings, errors)
}

/// Scans one file window by window. Each window is whole lines and starts
/// with the last bytes of the one before, as many as a value may have before
/// its last byte, so a value across windows is found; a match lying wholly
/// in those repeated bytes was reported with the window before.
fn scan_file(
    dir: &Path,
    file: &str,
    redactor: &Redactor,
    patterns: bool,
    findings: &mut Vec<SecretFinding>,
) -> std::io::Result<()> {
    use std::io::Read as _;
    let mut reader = fs::File::open(dir.join(file))?;
    let carry = redactor.longest_form().saturating_sub(1);
    // `buf` holds the repeated bytes, then the new ones; `base` is the file
    // offset of its first byte and `line` that byte's line.
    let mut buf: Vec<u8> = Vec::new();
    let (mut base, mut line) = (0u64, 1u64);
    let mut reported = 0usize;
    let mut eof = false;
    loop {
        let mut searched = reported;
        let end = loop {
            while !eof && buf.len() < searched + WINDOW {
                // Read into the vector's spare room as the bytes come, not
                // into a window zeroed first: 4 MiB zeroed (and its pages
                // touched, then given back) for each blob of a few bytes
                // took a bundle of 10,000 blobs 24 s to verify.
                let want = (searched + WINDOW - buf.len()) as u64;
                let n = reader.by_ref().take(want).read_to_end(&mut buf)?;
                eof = (n as u64) < want;
            }
            if eof {
                break buf.len();
            }
            if let Some(at) = buf[searched..].iter().rposition(|&b| b == b'\n') {
                break searched + at + 1;
            }
            if buf.len() - reported >= MAX_WINDOW {
                break buf.len();
            }
            searched = buf.len();
        };
        let window = &buf[..end];
        let mut hits: Vec<(usize, usize, String)> = redactor
            .find_values(window)
            .into_iter()
            .map(|m| (m.start, m.end - m.start, redactor.name(m.name).to_string()))
            .collect();
        if patterns {
            for (name, regex) in detectors() {
                for caps in regex.captures_iter(window) {
                    let Some(value) = caps.name("value") else {
                        continue;
                    };
                    let v = value.as_bytes();
                    if v.starts_with(b"[REDACTED") || v.windows(2).any(|w| w == b"{{") {
                        continue;
                    }
                    hits.push((value.start(), v.len(), (*name).to_string()));
                }
            }
        }
        hits.retain(|(start, len, _)| start + len > reported);
        hits.sort();
        let mut at_line = line;
        let mut counted = 0usize;
        for (offset, len, name) in hits {
            at_line += count_lines(&window[counted..offset]);
            counted = offset;
            findings.push(SecretFinding {
                file: file.to_string(),
                line: at_line,
                offset: base + offset as u64,
                preview: mask(&name, len),
            });
        }
        if eof && end == buf.len() {
            return Ok(());
        }
        let drop = end.saturating_sub(carry);
        line += count_lines(&buf[..drop]);
        base += drop as u64;
        buf.drain(..drop);
        reported = end - drop;
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Credentials pasted into TOML (a check file copied into a bundle by a
    /// build that did not redact them) are found; the same keys redacted,
    /// templated or merely starting with a credential's word are not.
    #[test]
    fn credential_keys_in_toml_are_found_and_redacted_or_templated_ones_are_not() {
        let leaky = "[[check]]\nid = \"a\"\n\
                     headers = { Authorization = \"Bearer l1teral-bearer-value\" }\n\
                     token = \"FlyV1 l1teral-fly\"\n\
                     env = { DB_PASSWORD = 'l1teral-db-pass' }\n";
        let clean = "[[check]]\nid = \"a\"\n\
                     headers = { Authorization = \"Bearer [REDACTED]\" }\n\
                     token = \"{{secret:FLY_API_TOKEN}}\"\n\
                     env = { DB_PASSWORD = '[REDACTED]' }\n\
                     token_url = \"https://h/oauth\"\nsecret_in_argv = \"accept-risk\"\n";
        assert_eq!(
            pattern_findings(leaky, clean),
            [
                ("leaky.toml".to_string(), 3, "auth… (20 bytes)".to_string()),
                ("leaky.toml".to_string(), 4, "cred… (17 bytes)".to_string()),
                ("leaky.toml".to_string(), 5, "cred… (15 bytes)".to_string()),
            ]
        );
    }

    /// The pattern findings of a scan of two files, `leaky.toml` and
    /// `clean.toml`, sorted, as (file, line, preview); no preview may show
    /// a value (each test's values hold `l1teral`).
    fn pattern_findings(leaky: &str, clean: &str) -> Vec<(String, u64, String)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leaky.toml"), leaky).unwrap();
        std::fs::write(dir.path().join("clean.toml"), clean).unwrap();
        let files = ["leaky.toml".to_string(), "clean.toml".to_string()];
        let (found, errors) = scan_files(dir.path(), &files, &Redactor::new(&[]), true);
        assert!(errors.is_empty(), "{errors:?}");
        let mut seen: Vec<(String, u64, String)> = found
            .into_iter()
            .inspect(|f| assert!(!f.preview.contains("l1teral"), "{f:?}"))
            .map(|f| (f.file, f.line, f.preview))
            .collect();
        seen.sort();
        seen
    }

    #[test]
    fn webhook_urls_are_found_and_redacted_or_templated_ones_are_not() {
        let leaky = "[notify.slack]\n\
                     url = \"https://hooks.slack.com/services/T01/B02/l1teralSlackPath\"\n\
                     other = \"https://discord.com/api/webhooks/12/l1teral-discord\"\n";
        let clean = "[notify.slack]\n\
                     url = \"https://hooks.slack.com/services/[REDACTED]\"\n\
                     templated = \"{{secret:SLACK_WEBHOOK_URL}}\"\n\
                     api = \"https://slack.com/api/chat.postMessage\"\n";
        assert_eq!(
            pattern_findings(leaky, clean),
            [
                ("leaky.toml".to_string(), 2, "webh… (24 bytes)".to_string()),
                ("leaky.toml".to_string(), 3, "webh… (18 bytes)".to_string()),
            ]
        );
    }
}
