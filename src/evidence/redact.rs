//! The one redaction layer in front of every sink: secret values and their
//! encodings, plus structural rules (URL userinfo, DSN passwords, auth headers).

use std::borrow::Cow;

/// Replaces registered secret values (and their encodings) with `[REDACTED:NAME]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// Registers `(name, value)` pairs. STUB: raw values only.
    pub fn new(secrets: &[(String, String)]) -> Self {
        Redactor {
            secrets: secrets.iter().filter(|(_, v)| !v.is_empty()).cloned().collect(),
        }
    }

    /// Redacts text.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (name, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), &format!("[REDACTED:{name}]")));
            }
        }
        out
    }

    /// Redacts bytes (lossy for invalid UTF-8 in this stub).
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        match std::str::from_utf8(bytes) {
            Ok(text) => match self.redact(text) {
                Cow::Borrowed(_) => Cow::Borrowed(bytes),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            },
            Err(_) => Cow::Borrowed(bytes),
        }
    }

    /// Redaction classes applied, for the header.
    pub fn classes(&self) -> Vec<String> {
        vec!["raw".to_string()]
    }
}
