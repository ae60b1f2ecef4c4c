//! The `allowed_signers` file QA passes to `verify --allowed-signers`: the
//! format of `ssh-keygen -Y verify -f` (`principals [options] keytype key
//! [comment]`, see ssh-keygen(1) "ALLOWED SIGNERS"), so one file serves both
//! tools. Honoured options: `namespaces=`, `valid-after=`, `valid-before=`;
//! `cert-authority` lines are skipped (runproof signatures are plain keys).

use std::path::Path;

use ssh_key::{HashAlg, PublicKey};

/// One usable line of an allowed-signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// The principals pattern list as written (`deploy-ci@example,*@qa`).
    pub principals: String,
    pub key: PublicKey,
    /// `namespaces="…"`: the signature namespaces this key may sign.
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<jiff::Timestamp>,
    pub valid_before: Option<jiff::Timestamp>,
    /// 1-based line in the file.
    pub line: usize,
}

impl AllowedSigner {
    /// `SHA256:…` of the key.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// True if the line names `identity` (ssh pattern-list rules: `*`, `?`,
    /// and `!` to exclude).
    pub fn names(&self, identity: &str) -> bool {
        match_pattern_list(identity, &self.principals)
    }

    /// True if the line lets its key sign in `namespace` at `now`.
    pub fn allows(&self, namespace: &str, now: jiff::Timestamp) -> bool {
        let namespace_ok = self.namespaces.as_ref().is_none_or(|list| {
            list.iter()
                .any(|pattern| match_pattern_list(namespace, pattern))
        });
        namespace_ok
            && self.valid_after.is_none_or(|t| now >= t)
            && self.valid_before.is_none_or(|t| now <= t)
    }
}

/// A parsed allowed-signers file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub signers: Vec<AllowedSigner>,
    /// Lines skipped, with why (certificate authorities).
    pub skipped: Vec<String>,
}

/// A line that cannot be read, located.
#[derive(Debug, thiserror::Error)]
pub enum SignersError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
}

impl AllowedSigners {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<AllowedSigners, SignersError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        AllowedSigners::parse(&text).map_err(|(line, message)| SignersError::Line {
            path: path.display().to_string(),
            line,
            message,
        })
    }

    /// Parses the file's text; an error names the 1-based line.
    pub fn parse(text: &str) -> Result<AllowedSigners, (usize, String)> {
        let mut out = AllowedSigners::default();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (principals, rest) = take_token(line);
            let principals = unquote(principals);
            if principals.is_empty() || rest.is_empty() {
                return Err((line_no, "expected: principals [options] keytype key".into()));
            }
            let (key, options) = match PublicKey::from_openssh(rest) {
                Ok(key) => (key, ""),
                Err(_) => {
                    let (options, key_text) = take_token(rest);
                    let key = PublicKey::from_openssh(key_text)
                        .map_err(|e| (line_no, format!("not a public key: {e}")))?;
                    (key, options)
                }
            };
            let mut signer = AllowedSigner {
                principals,
                key,
                namespaces: None,
                valid_after: None,
                valid_before: None,
                line: line_no,
            };
            let mut skip = None;
            for option in split_options(options) {
                let (name, value) = match option.split_once('=') {
                    Some((n, v)) => (n.to_ascii_lowercase(), Some(unquote(v))),
                    None => (option.to_ascii_lowercase(), None),
                };
                match (name.as_str(), value) {
                    ("cert-authority", None) => {
                        skip = Some(format!(
                            "line {line_no}: cert-authority keys are not supported"
                        ))
                    }
                    ("namespaces", Some(v)) => {
                        signer.namespaces = Some(v.split(',').map(str::to_string).collect())
                    }
                    ("valid-after", Some(v)) => signer.valid_after = Some(parse_time(line_no, &v)?),
                    ("valid-before", Some(v)) => {
                        signer.valid_before = Some(parse_time(line_no, &v)?)
                    }
                    (other, _) => return Err((line_no, format!("unknown option {other:?}"))),
                }
            }
            match skip {
                Some(why) => out.skipped.push(why),
                None => out.signers.push(signer),
            }
        }
        Ok(out)
    }
}

/// Splits off the first whitespace-separated token, honouring `"…"`.
fn take_token(text: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&text[..i], text[i..].trim_start()),
            _ => {}
        }
    }
    (text, "")
}

/// Comma-separated options, commas inside quotes kept.
fn split_options(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

fn unquote(text: &str) -> String {
    text.trim_matches('"').to_string()
}

/// `YYYYMMDD[HHMM[SS]][Z]`, as ssh-keygen writes validity bounds. Without
/// `Z`, ssh-keygen reads local time; runproof reads UTC, and says so in the
/// docs (CI machines run in UTC).
fn parse_time(line: usize, text: &str) -> Result<jiff::Timestamp, (usize, String)> {
    let digits = text.trim_end_matches(['Z', 'z']);
    let bad = || (line, format!("bad time {text:?} (YYYYMMDD[HHMM[SS]][Z])"));
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(Ok(0), |s| s.parse::<i64>());
    let parts = (|| -> Result<_, std::num::ParseIntError> {
        Ok((
            num(0..4)?,
            num(4..6)?,
            num(6..8)?,
            num(8..10)?,
            num(10..12)?,
            num(12..14)?,
        ))
    })()
    .map_err(|_| bad())?;
    let (y, mo, d, h, mi, s) = parts;
    jiff::civil::DateTime::new(y as i16, mo as i8, d as i8, h as i8, mi as i8, s as i8, 0)
        .and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

/// ssh's `match_pattern_list`: a comma-separated list of `*`/`?` patterns,
/// where a matching `!pattern` vetoes the whole list.
pub fn match_pattern_list(text: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(text, negated) {
                return false;
            }
        } else if glob(text, pattern) {
            matched = true;
        }
    }
    matched
}

fn glob(text: &str, pattern: &str) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = (text.chars().collect(), pattern.chars().collect());
    // Iterative wildcard match with one backtrack point for `*`.
    let (mut ti, mut pi, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILt8D57VktyakJ9YUtGOcYh7OKx0x2krt39YzsR/6jS2";

    #[test]
    fn parses_plain_and_optioned_lines() {
        let text = format!(
            "# QA's keys\n\ndeploy-ci@example {KEY} ci\n\"qa@example,*@ops\" namespaces=\"runproof-seal,git\",valid-after=20250101Z {KEY}\n*@ca cert-authority {KEY}\n"
        );
        let signers = AllowedSigners::parse(&text).unwrap();
        assert_eq!(signers.signers.len(), 2);
        assert_eq!(signers.skipped.len(), 1);
        let first = &signers.signers[0];
        assert!(first.names("deploy-ci@example"));
        assert!(!first.names("deploy-ci@example.org"));
        let second = &signers.signers[1];
        assert_eq!(second.line, 4);
        assert!(second.names("alice@ops") && second.names("qa@example"));
        let now = jiff::Timestamp::now();
        assert!(second.allows("runproof-seal", now));
        assert!(!second.allows("file", now));
        assert!(!second.allows("runproof-seal", "2024-06-01T00:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_bad_line_is_located() {
        let err =
            AllowedSigners::parse(&format!("a {KEY}\nb ssh-ed25519 notbase64!\n")).unwrap_err();
        assert_eq!(err.0, 2);
        let err = AllowedSigners::parse(&format!("a bogus=1 {KEY}\n")).unwrap_err();
        assert!(err.1.contains("bogus"), "{err:?}");
    }

    #[test]
    fn patterns_follow_ssh_rules() {
        assert!(match_pattern_list("ci@example", "*@example"));
        assert!(match_pattern_list("ci@example", "x,c?@example"));
        assert!(!match_pattern_list("ci@example", "*@example,!ci@*"));
        assert!(!match_pattern_list("ci@example", "cd@example"));
    }
}
