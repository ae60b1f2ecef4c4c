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
        [
            ("url-userinfo", r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*:(?P<value>[^\s@/?#]+)@"),
            (
                "auth-header",
                r#"(?i)\b(?:proxy-)?authorization"?\s*:\s*"?(?:(?:basic|bearer|token|flyv1)\s+)?(?P<value>[^\s"\\][^\r\n"\\]*)"#,
            ),
            ("dsn-password", r#"(?i)\bpassword\s*=\s*(?P<value>[^\s&;'"\\]+)"#),
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
        let bytes = match fs::read(dir.join(file)) {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("{file}: {e}"));
                continue;
            }
        };
        let mut hits: Vec<(usize, usize, String)> = redactor
            .find_values(&bytes)
            .into_iter()
            .map(|m| (m.start, m.end - m.start, redactor.name(m.name).to_string()))
            .collect();
        if patterns {
            for (name, regex) in detectors() {
                for caps in regex.captures_iter(&bytes) {
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
        hits.sort();
        let mut line = 1u64;
        let mut counted = 0usize;
        for (offset, len, name) in hits {
            line += bytes[counted..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            counted = offset;
            findings.push(SecretFinding {
                file: file.clone(),
                line,
                offset: offset as u64,
                preview: mask(&name, len),
            });
        }
    }
    (findings, errors)
}
