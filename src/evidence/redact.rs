//! The one redaction layer in front of every sink: secret values and their
//! encodings, plus structural rules (URL userinfo, DSN passwords, auth headers).
//!
//! The main type here is [`Redactor`]. It holds one Aho-Corasick automaton
//! (leftmost-longest, on bytes) over every encoded form of every registered
//! value, searched with a packed SIMD searcher (Teddy) where one can be
//! built, and a handful of regexes for secrets whose value we do not know
//! (a password in a URL someone typed, an `Authorization` header echoed back).
//! Redaction happens before hashing, so the digests in a bundle cover the
//! redacted bytes.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use regex::bytes::Regex;

use super::keyed;

/// Values shorter than this are not used as patterns: they would match
/// ordinary text all over the bundle. Structural rules still apply to them.
pub const MIN_SECRET_LEN: usize = 6;

/// Encoded forms shorter than this are dropped (a 4-character base64 group
/// of a short secret would match random text).
const MIN_FORM_LEN: usize = 6;

/// The replacement for a structurally detected secret whose name is unknown.
const REDACTED: &[u8] = b"[REDACTED]";

/// RFC 3986 unreserved characters stay; everything else is escaped.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What Python's `urllib.parse.quote` leaves alone by default (`safe='/'`).
const PATH_SAFE: &AsciiSet = &STRICT.remove(b'/');

/// The UTF-8 bytes of [`crate::core::cut::ELLIPSIS`], the mark every cut ends with.
const ELLIPSIS: &[u8] = "\u{2026}".as_bytes();

/// What JavaScript's `encodeURIComponent` leaves alone.
const URI_COMPONENT: &AsciiSet = &STRICT
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');

/// Substrings (ASCII case-insensitive) without which no structural rule can
/// match: the fast path skips the regexes when none occurs. URL userinfo is
/// triggered by `@`, not `://`: nearly every journal line holds a URL, few
/// hold a password in one.
const TRIGGERS: &[&str] = &[
    "@",
    "password",
    "passwd",
    "token",
    "key",
    "sig",
    "secret",
    "authoriz",
    "cookie",
    // Webhook URLs whose path is the credential (see [`WEBHOOK_URL`]).
    "hooks.slack.com/",
    "/api/webhooks/",
];

/// A Slack incoming webhook's or workflow's URL, or a Discord webhook's:
/// whoever has the URL can post, so its path after the fixed prefix is a
/// credential (`value`) however it was written (a `[notify.slack]` URL
/// pasted as it is rather than as `{{secret:SLACK_WEBHOOK_URL}}`). Shared
/// with `verify`'s scan, so both find the same.
pub(super) const WEBHOOK_URL: &str = r"(?i)\b(?:hooks\.slack\.com/(?:services|workflows|triggers)|discord(?:app)?\.com/api/webhooks)/(?P<value>[a-z0-9_\-]+(?:/[a-z0-9_\-]+)*)";

/// [`WEBHOOK_URL`], compiled once for the redaction rule and for
/// [`holds_webhook_credential`].
static WEBHOOK_URL_REGEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(WEBHOOK_URL).expect("valid structural regex"));

/// Whether `text` holds a webhook URL whose path is a credential
/// ([`WEBHOOK_URL`]): a `[notify.slack]` URL written as it is.
pub fn holds_webhook_credential(text: &str) -> bool {
    WEBHOOK_URL_REGEX.is_match(text.as_bytes())
}

/// Whether a header's value must never be recorded (`Authorization`,
/// `Cookie`, `X-Api-Key`, …). Case-insensitive.
pub fn is_sensitive_header(name: &str) -> bool {
    keyed::HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name.trim()))
}

/// A URL safe to record: the userinfo password and sensitive query values
/// replaced by `[REDACTED]`. Text that is not a URL gets the same structural
/// rules as any other text.
pub fn redact_url(url: &str) -> String {
    Redactor::default().redact(url).into_owned()
}

/// The redactor runproof's own log lines go through: structural rules (URL
/// passwords, credential headers) until a session registers its redactor.
static LOG_REDACTOR: std::sync::RwLock<Option<std::sync::Arc<Redactor>>> =
    std::sync::RwLock::new(None);

/// From now on, log lines are redacted with `redactor` (the session's own).
pub fn set_log_redactor(redactor: std::sync::Arc<Redactor>) {
    if let Ok(mut slot) = LOG_REDACTOR.write() {
        *slot = Some(redactor);
    }
}

/// The redactor for log lines.
pub fn log_redactor() -> std::sync::Arc<Redactor> {
    LOG_REDACTOR
        .read()
        .ok()
        .and_then(|slot| slot.clone())
        .unwrap_or_default()
}

/// A value that went through the journal's redactor: the only form in which
/// observers, reports and logs receive events. Only the evidence module can
/// make one (when it writes or reads a journal record), so a renderer cannot
/// be handed unredacted data by mistake.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Marks `value` as redacted. Callers must have redacted it (or read it
    /// from a journal, which holds only redacted records).
    pub(in crate::evidence) fn assume(value: T) -> Self {
        Redacted(value)
    }

    /// The redacted value itself.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Redacted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Replaces registered secret values (and their encodings) with
/// `[REDACTED:NAME]`, and structurally recognisable credentials with
/// `[REDACTED]`.
#[derive(Clone, Default)]
pub struct Redactor {
    /// `None` when no value is long enough to be a pattern.
    automaton: Option<AhoCorasick>,
    /// The same patterns in the same order, searched with Teddy when it
    /// could be built (x86_64 or aarch64, at most 64 forms). The
    /// automaton's own prefilter is chosen from the patterns' bytes: for a
    /// random token it can pick two "rare" bytes that are digits, which the
    /// journal is full of, and a sweep then cost 36,000–85,000 more
    /// instructions a check than with another token.
    packed: Option<Arc<aho_corasick::packed::Searcher>>,
    /// Per pattern: index into `names`, and whether a match widens to the
    /// surrounding base64 token.
    patterns: Vec<(usize, bool)>,
    /// Per pattern: its bytes (to recognise a prefix left at a cut point).
    forms: Arc<Vec<Vec<u8>>>,
    /// Patterns by their first [`MIN_SECRET_LEN`] bytes, so that a cut
    /// point costs one lookup per candidate start, not one per pattern.
    heads: Arc<HashMap<[u8; MIN_SECRET_LEN], Vec<usize>>>,
    /// The longest pattern's length.
    longest_form: usize,
    /// Registered names, in registration order.
    names: Vec<String>,
    /// Names whose values were too short to be patterns.
    weak: Vec<String>,
    /// Values registered while the run goes on (secret captures), shared by
    /// every clone, so that the journal, the blob store and the terminal all
    /// redact a value from the moment it is registered.
    runtime: Arc<RwLock<Runtime>>,
    /// Whether `runtime` holds any value: read on every redaction, where
    /// taking the lock would make the sweep's threads trade its cache line
    /// (four redactions a check); almost no run learns a secret.
    learnt: Arc<AtomicBool>,
}

/// Secrets learnt at run time and the redactor built from them.
#[derive(Default)]
struct Runtime {
    pairs: Vec<(String, String)>,
    redactor: Option<Box<Redactor>>,
}

/// Never prints values (the automaton's debug output would).
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("names", &self.names)
            .field("patterns", &self.patterns.len())
            .field("weak", &self.weak)
            .finish()
    }
}

/// One match of a registered value in some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueMatch {
    pub start: usize,
    pub end: usize,
    /// Index into the registered names.
    pub name: usize,
}

impl Redactor {
    /// Registers `(name, value)` pairs: every value, the values derived from
    /// it (comma-separated parts, lines, URL/DSN passwords, the token after
    /// `Bearer `/`FlyV1 `) and each one's encodings. Empty values are ignored;
    /// values shorter than [`MIN_SECRET_LEN`] bytes are listed by
    /// [`Redactor::weak_secrets`] instead of becoming patterns.
    pub fn new(secrets: &[(String, String)]) -> Self {
        let mut names: Vec<String> = Vec::new();
        let mut weak = Vec::new();
        // (form, name index, widen) — a BTreeSet dedups identical forms.
        let mut forms: BTreeSet<(Vec<u8>, usize, bool)> = BTreeSet::new();
        for (name, value) in secrets {
            if value.is_empty() {
                continue;
            }
            let index = match names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    names.push(name.clone());
                    names.len() - 1
                }
            };
            if value.trim().len() < MIN_SECRET_LEN {
                if !weak.contains(name) {
                    weak.push(name.clone());
                }
                continue;
            }
            for derived in derived_values(value) {
                for (form, widen) in encoded_forms(derived.as_bytes()) {
                    if form.len() >= MIN_FORM_LEN {
                        forms.insert((form, index, widen));
                    }
                }
            }
        }
        // The same bytes registered under two names keep the first name.
        let mut seen = BTreeSet::new();
        let mut pattern_bytes = Vec::new();
        let mut patterns = Vec::new();
        for (form, index, widen) in forms {
            if seen.insert(form.clone()) {
                pattern_bytes.push(form);
                patterns.push((index, widen));
            }
        }
        let automaton = if pattern_bytes.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&pattern_bytes)
                .ok()
        };
        let packed = automaton
            .as_ref()
            .and_then(|_| {
                aho_corasick::packed::Config::new()
                    .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
                    .builder()
                    .extend(&pattern_bytes)
                    .build()
            })
            .map(Arc::new);
        let mut heads: HashMap<[u8; MIN_SECRET_LEN], Vec<usize>> = HashMap::new();
        for (i, form) in pattern_bytes.iter().enumerate() {
            // Only a form longer than the head can leave a proper prefix.
            if let Some(head) = form
                .get(..MIN_SECRET_LEN)
                .filter(|_| form.len() > MIN_SECRET_LEN)
            {
                let mut key = [0u8; MIN_SECRET_LEN];
                key.copy_from_slice(head);
                heads.entry(key).or_default().push(i);
            }
        }
        let longest_form = pattern_bytes.iter().map(Vec::len).max().unwrap_or(0);
        Redactor {
            automaton,
            packed,
            patterns,
            forms: Arc::new(pattern_bytes),
            heads: Arc::new(heads),
            longest_form,
            names,
            weak,
            runtime: Arc::default(),
            learnt: Arc::default(),
        }
    }

    /// Registers a secret found at run time (a `secret = true` capture):
    /// from now on it is redacted, with its derived values and encodings,
    /// by this redactor and every clone of it, as `[REDACTED:NAME]`.
    pub fn register(&self, name: &str, value: &str) {
        if value.trim().len() < MIN_SECRET_LEN {
            // Too short to match safely; structural rules still apply.
            return;
        }
        let mut runtime = self.runtime.write().unwrap_or_else(|e| e.into_inner());
        runtime.pairs.push((name.to_string(), value.to_string()));
        let redactor = Redactor::new(&runtime.pairs);
        runtime.redactor = Some(Box::new(redactor));
        // Under the lock: a reader that sees the flag finds the redactor.
        self.learnt.store(true, Ordering::Release);
    }

    /// Redacts text. Returns the input unchanged (borrowed, no allocation)
    /// when nothing matches.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Patterns and replacements are whole UTF-8 sequences, so the
            // result is UTF-8; the lossy path is only a guard.
            Cow::Owned(bytes) => match String::from_utf8(bytes) {
                Ok(s) => Cow::Owned(s),
                Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
            },
        }
    }

    /// Redacts bytes (bodies, command output); binary content is fine.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        self.redact_cut(bytes, false)
    }

    /// Redacts bytes that were cut at their end (a body or output stored
    /// with `truncated = true`): a secret's prefix of [`MIN_SECRET_LEN`]+
    /// bytes at the very end is masked too.
    pub fn redact_truncated_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        self.redact_cut(bytes, true)
    }

    fn redact_cut<'a>(&self, bytes: &'a [u8], cut_at_end: bool) -> Cow<'a, [u8]> {
        let valued = self.redact_values(bytes, cut_at_end);
        let valued = if !self.learnt.load(Ordering::Acquire) {
            valued
        } else {
            let runtime = self.runtime.read().unwrap_or_else(|e| e.into_inner());
            match (&runtime.redactor, valued) {
                (None, valued) => valued,
                (Some(learnt), Cow::Borrowed(b)) => learnt.redact_values(b, cut_at_end),
                (Some(learnt), Cow::Owned(b)) => {
                    Cow::Owned(learnt.redact_values(&b, cut_at_end).into_owned())
                }
            }
        };
        match valued {
            Cow::Borrowed(b) => redact_structural(b),
            Cow::Owned(b) => match redact_structural(&b) {
                Cow::Borrowed(_) => Cow::Owned(b),
                Cow::Owned(o) => Cow::Owned(o),
            },
        }
    }

    /// Redaction classes applied, for the header.
    pub fn classes(&self) -> Vec<String> {
        let mut classes = Vec::new();
        if self.automaton.is_some() {
            classes.extend(
                [
                    "raw",
                    "percent",
                    "form",
                    "json",
                    "base64",
                    "base64url",
                    "hex",
                    "derived",
                    "json-html-escapes",
                    "percent-path",
                    "html-entities",
                    "line-wrapped",
                    "cut-prefix",
                ]
                .map(String::from),
            );
        }
        classes.extend(
            [
                "url-userinfo",
                "query-keys",
                "dsn-password",
                "auth-headers",
                "credential-keys",
                "json-keys",
            ]
            .map(String::from),
        );
        classes
    }

    /// Names whose values are shorter than [`MIN_SECRET_LEN`] bytes and so
    /// are not matched by value (only the structural rules protect them).
    pub fn weak_secrets(&self) -> Vec<String> {
        self.weak.clone()
    }

    /// Registered names (weak ones included), in registration order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Every match of a registered value's form, widened like redaction does.
    pub(crate) fn find_values(&self, bytes: &[u8]) -> Vec<ValueMatch> {
        self.find_values_with(bytes, true)
    }

    /// [`Redactor::find_values`], with the packed searcher when `packed`
    /// and there is one, else the automaton: the same leftmost-longest
    /// matches either way.
    fn find_values_with(&self, bytes: &[u8], packed: bool) -> Vec<ValueMatch> {
        let Some(ac) = &self.automaton else {
            return Vec::new();
        };
        let mut out: Vec<ValueMatch> = Vec::new();
        let mut add = |m: aho_corasick::Match| {
            let (name, widen) = self.patterns[m.pattern().as_usize()];
            let (mut start, mut end) = (m.start(), m.end());
            if widen {
                while start > 0 && is_base64_byte(bytes[start - 1]) {
                    start -= 1;
                }
                while end < bytes.len() && (is_base64_byte(bytes[end]) || bytes[end] == b'=') {
                    end += 1;
                }
            }
            // A widened match may swallow the next ones; merge them.
            if let Some(last) = out.last_mut() {
                if start < last.end {
                    last.end = last.end.max(end);
                    return;
                }
            }
            out.push(ValueMatch { start, end, name });
        };
        match self.packed.as_deref().filter(|_| packed) {
            Some(searcher) => searcher.find_iter(bytes).for_each(&mut add),
            None => ac.find_iter(bytes).for_each(&mut add),
        }
        out
    }

    /// The length of the longest byte form searched for (0: none).
    pub(crate) fn longest_form(&self) -> usize {
        self.longest_form
    }

    /// The name of a match from [`Redactor::find_values`].
    pub(crate) fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The value rules in order: whole forms, forms split by line breaks,
    /// prefixes left at cut points.
    fn redact_values<'a>(&self, bytes: &'a [u8], cut_at_end: bool) -> Cow<'a, [u8]> {
        if self.automaton.is_none() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Cow::Borrowed(bytes);
        let matches = self.find_values(&out);
        let found = !matches.is_empty();
        if found {
            out = Cow::Owned(
                self.replace(&out, matches.into_iter().map(|m| (m.start, m.end, m.name))),
            );
        }
        // Text in which no form occurs holds a wrapped one only across a
        // line break with text on both sides: a report row, which ends in
        // its only break, is searched once, not twice.
        if found || has_inner_break(bytes) {
            if let Some(changed) = self.redact_wrapped(&out) {
                out = Cow::Owned(changed);
            }
        }
        if let Some(changed) = self.mask_cut_prefixes(&out, cut_at_end) {
            out = Cow::Owned(changed);
        }
        out
    }

    /// `bytes` with each `(start, end, name)` range (ascending, disjoint)
    /// replaced by `[REDACTED:NAME]`.
    fn replace(
        &self,
        bytes: &[u8],
        ranges: impl Iterator<Item = (usize, usize, usize)>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for (start, end, name) in ranges {
            if start < at {
                continue;
            }
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(b"[REDACTED:");
            out.extend_from_slice(self.names[name].as_bytes());
            out.push(b']');
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        out
    }

    /// A value split across lines (a server wrapping at 76 columns, MIME
    /// base64, a PEM-style fold): the automaton runs once more over the
    /// bytes with every CR and LF removed (and the two-byte JSON escapes
    /// `\r`, `\n`, which is how a line break looks inside a journal
    /// record), and each match is mapped back onto the original bytes.
    /// Text without line breaks skips this pass.
    fn redact_wrapped(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let (joined, shifts) = join_lines(bytes)?;
        let original = |at: usize| {
            let k = shifts.partition_point(|&(pos, _)| pos <= at);
            at + if k == 0 { 0 } else { shifts[k - 1].1 }
        };
        let matches = self.find_values(&joined);
        if matches.is_empty() {
            return None;
        }
        let ranges = matches
            .iter()
            .map(|m| (original(m.start), original(m.end - 1) + 1, m.name));
        Some(self.replace(bytes, ranges))
    }

    /// A secret cut in half at a cut point: a prefix of [`MIN_SECRET_LEN`]+
    /// bytes of any registered form right before `…` (the mark every cut in
    /// runproof ends with) or, for truncated blobs, at the very end.
    fn mask_cut_prefixes(&self, bytes: &[u8], cut_at_end: bool) -> Option<Vec<u8>> {
        // Built once: a searcher built per call costs more than searching
        // a short record.
        static CUT_MARK: LazyLock<memchr::memmem::Finder<'static>> =
            LazyLock::new(|| memchr::memmem::Finder::new(ELLIPSIS));
        let mut cuts: Vec<usize> = CUT_MARK.find_iter(bytes).collect();
        if cut_at_end {
            // A lossy UTF-8 decoding of a cut body ends in U+FFFD.
            let end = bytes
                .strip_suffix("\u{FFFD}".as_bytes())
                .unwrap_or(bytes)
                .len();
            cuts.push(end);
        }
        let mut ranges = Vec::new();
        for at in cuts {
            if let Some((len, name)) = self.longest_prefix_before(bytes, at) {
                ranges.push((at - len, at, name));
            }
        }
        if ranges.is_empty() {
            return None;
        }
        Some(self.replace(bytes, ranges.into_iter()))
    }

    /// The longest proper prefix (at least [`MIN_SECRET_LEN`] bytes) of a
    /// registered form that ends at `at`, with its name.
    fn longest_prefix_before(&self, bytes: &[u8], at: usize) -> Option<(usize, usize)> {
        if at < MIN_SECRET_LEN {
            return None;
        }
        // The earliest start that matches is the longest prefix.
        let earliest = at.saturating_sub(self.longest_form.saturating_sub(1));
        for start in earliest..=at - MIN_SECRET_LEN {
            let Ok(head) = <[u8; MIN_SECRET_LEN]>::try_from(&bytes[start..start + MIN_SECRET_LEN])
            else {
                continue;
            };
            let Some(candidates) = self.heads.get(&head) else {
                continue;
            };
            let len = at - start;
            for &i in candidates {
                let form = &self.forms[i];
                if form.len() > len && form[..len] == bytes[start..at] {
                    return Some((len, self.patterns[i].0));
                }
            }
        }
        None
    }
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// The value itself and the secrets hidden inside it.
fn derived_values(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let add = |s: &str, out: &mut Vec<String>| {
        if s.len() >= MIN_SECRET_LEN && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    add(value, &mut out);
    let trimmed = value.trim().trim_matches(|c| c == '"' || c == '\'');
    add(trimmed, &mut out);
    // Each line of a multi-line value (PEM keys, env blobs) on its own.
    for line in trimmed.lines() {
        add(line.trim_end_matches('\r').trim(), &mut out);
    }
    let mut candidates = vec![trimmed.to_string()];
    for prefix in ["FlyV1 ", "Bearer ", "Basic ", "Token "] {
        let head = trimmed
            .get(..prefix.len())
            .filter(|h| h.eq_ignore_ascii_case(prefix));
        if let (Some(_), Some(rest)) = (head, trimmed.get(prefix.len()..)) {
            let rest = rest.trim();
            add(rest, &mut out);
            candidates.push(rest.to_string());
        }
    }
    // Fly's composite tokens: each comma-separated macaroon is a secret.
    for candidate in &candidates {
        if candidate.contains(',') {
            for part in candidate.split(',') {
                add(part.trim(), &mut out);
            }
        }
    }
    // The password of a URL or DSN value, and the user:password pair (what
    // Basic auth base64-encodes).
    if trimmed.contains("://") {
        if let Ok(url) = url::Url::parse(trimmed) {
            if let Some(password) = url.password() {
                add(password, &mut out);
                let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
                add(&decoded, &mut out);
                let user = percent_encoding::percent_decode_str(url.username()).decode_utf8_lossy();
                add(&format!("{user}:{decoded}"), &mut out);
            }
        }
    }
    for password in dsn_passwords(trimmed) {
        add(&password, &mut out);
    }
    out
}

/// `password=...` values of a key/value DSN (`host=h password='p q'`).
fn dsn_passwords(value: &str) -> Vec<String> {
    static DSN: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"(?i)(?:^|[\s;&?])password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s;&'"]+))"#)
            .expect("valid regex")
    });
    DSN.captures_iter(value)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str().replace("\\'", "'").replace("\\\\", "\\"))
        .collect()
}

/// Every encoded form of one value, with whether a match should widen to the
/// whole base64 token around it.
fn encoded_forms(value: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut forms: Vec<(Vec<u8>, bool)> = vec![(value.to_vec(), false)];
    if let Ok(text) = std::str::from_utf8(value) {
        let strict = utf8_percent_encode(text, STRICT).to_string();
        forms.push((lower_percent_hex(&strict).into_bytes(), false));
        forms.push((strict.into_bytes(), false));
        let path = utf8_percent_encode(text, PATH_SAFE).to_string();
        forms.push((lower_percent_hex(&path).into_bytes(), false));
        forms.push((path.into_bytes(), false));
        let component = utf8_percent_encode(text, URI_COMPONENT).to_string();
        forms.push((lower_percent_hex(&component).into_bytes(), false));
        forms.push((component.into_bytes(), false));
        let form: String = url::form_urlencoded::byte_serialize(value).collect();
        forms.push((lower_percent_hex(&form).into_bytes(), false));
        forms.push((form.into_bytes(), false));
        // How the url crate writes a password into userinfo.
        if let Ok(mut url) = url::Url::parse("http://u@h/") {
            if url.set_password(Some(text)).is_ok() {
                if let Some(p) = url.password() {
                    forms.push((p.as_bytes().to_vec(), false));
                }
            }
        }
        for json in json_escapes(text) {
            forms.push((json.into_bytes(), false));
        }
        for html in entity_escapes(text) {
            forms.push((html.into_bytes(), false));
        }
    }
    // base64 of the whole value (padded and not), and of its whole 3-byte
    // groups from offsets 0, 1 and 2: when the secret sits inside a longer
    // encoded payload, one of the three alignments appears verbatim.
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push((engine.encode(value).into_bytes(), true));
    }
    for offset in 0..3 {
        if value.len() <= offset {
            break;
        }
        let rest = &value[offset..];
        let whole = &rest[..rest.len() / 3 * 3];
        if whole.is_empty() {
            continue;
        }
        forms.push((STANDARD_NO_PAD.encode(whole).into_bytes(), true));
        forms.push((URL_SAFE_NO_PAD.encode(whole).into_bytes(), true));
    }
    let hex = hex::encode(value);
    forms.push((hex.to_ascii_uppercase().into_bytes(), false));
    forms.push((hex.into_bytes(), false));
    forms
}

fn lower_percent_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hex_left = 0;
    for c in s.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            if c == '%' {
                hex_left = 2;
            }
            out.push(c);
        }
    }
    out
}

/// JSON string-body escapings of `text`: serde's, with `\/`, with every
/// non-ASCII character as `\uXXXX` (both hex cases), and escaped twice (a
/// JSON document stored inside a JSON string).
fn json_escapes(text: &str) -> Vec<String> {
    let Ok(quoted) = serde_json::to_string(text) else {
        return Vec::new();
    };
    let plain = quoted[1..quoted.len() - 1].to_string();
    let mut out = vec![plain.replace('/', "\\/")];
    if !text.is_ascii() {
        let (mut lower, mut upper) = (String::new(), String::new());
        for c in plain.chars() {
            if c.is_ascii() {
                lower.push(c);
                upper.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    lower.push_str(&format!("\\u{unit:04x}"));
                    upper.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
        out.push(lower);
        out.push(upper);
    }
    if let Ok(twice) = serde_json::to_string(&plain) {
        out.push(twice[1..twice.len() - 1].to_string());
    }
    // Go's encoding/json escapes `<`, `>`, `&` as `\u003c`…; PHP's
    // JSON_HEX_* flags also `'` and `"`, in upper-case hex.
    if text.contains(['<', '>', '&', '\'', '"']) {
        let hex_escape = |chars: &[char], upper: bool| {
            let mut escaped = String::with_capacity(plain.len() + 16);
            let mut rest = plain.as_str();
            while let Some(c) = rest.chars().next() {
                if c == '\\' {
                    // Keep serde's own two-character escapes intact, except
                    // an escaped quote when quotes are hex-escaped too.
                    let pair: String = rest.chars().take(2).collect();
                    if pair == "\\\"" && chars.contains(&'"') {
                        escaped.push_str("\\u0022");
                    } else {
                        escaped.push_str(&pair);
                    }
                    rest = &rest[pair.len()..];
                    continue;
                }
                if chars.contains(&c) && upper {
                    escaped.push_str(&format!("\\u{:04X}", c as u32));
                } else if chars.contains(&c) {
                    escaped.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    escaped.push(c);
                }
                rest = &rest[c.len_utf8()..];
            }
            escaped
        };
        out.push(hex_escape(&['<', '>', '&'], false));
        out.push(hex_escape(&['<', '>', '&'], true));
        out.push(hex_escape(&['<', '>', '&', '\'', '"'], true));
    }
    out.push(plain);
    out
}

/// XML/HTML entity escapings of `text`, one consistent style each: named
/// entities with the usual choices for quotes (`&quot;`/`&#34;`,
/// `&#39;`/`&apos;`/`&#x27;`, or quotes left alone as in XML text), and
/// numeric references in decimal and in either hex case.
fn entity_escapes(text: &str) -> Vec<String> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Vec::new();
    }
    let escape = |entity: &dyn Fn(char) -> Option<String>| {
        let mut out = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            match entity(c) {
                Some(e) => out.push_str(&e),
                None => out.push(c),
            }
        }
        out
    };
    let named = |quot: &'static str, apos: &'static str| {
        move |c: char| match c {
            '&' => Some("&amp;".to_string()),
            '<' => Some("&lt;".to_string()),
            '>' => Some("&gt;".to_string()),
            '"' => Some(quot.to_string()),
            '\'' => Some(apos.to_string()),
            _ => None,
        }
    };
    let special = |c: char| matches!(c, '&' | '<' | '>' | '"' | '\'');
    let mut out = Vec::new();
    for (quot, apos) in [
        ("&quot;", "&#39;"),
        ("&quot;", "&apos;"),
        ("&quot;", "&#x27;"),
        ("&#34;", "&#39;"),
        ("\"", "'"),
    ] {
        out.push(escape(&named(quot, apos)));
    }
    out.push(escape(&|c| special(c).then(|| format!("&#{};", c as u32))));
    out.push(escape(&|c| {
        special(c).then(|| format!("&#x{:x};", c as u32))
    }));
    out.push(escape(&|c| {
        special(c).then(|| format!("&#x{:X};", c as u32))
    }));
    out
}

/// Whether `bytes` has a line break (as [`join_lines`] removes them) that is
/// neither at its start nor at its end: with the breaks at either end taken
/// off, one is left.
fn has_inner_break(bytes: &[u8]) -> bool {
    let mut inner = bytes;
    while let [b'\r' | b'\n', rest @ ..] | [b'\\', b'r' | b'n', rest @ ..] = inner {
        inner = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] | [rest @ .., b'\\', b'r' | b'n'] = inner {
        inner = rest;
    }
    // A backslash at the inner text's end is not a break: the letter after
    // it, if any, went with the breaks taken off the end.
    memchr::memchr3_iter(b'\n', b'\r', b'\\', inner).any(|at| break_at(inner, at).is_some())
}

/// The length of the line break at `at`, as [`join_lines`] removes them: a
/// CR or LF (1), or a backslash before `r` or `n` (2, how JSON writes one).
fn break_at(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'\r' | b'\n' => Some(1),
        b'\\' if matches!(bytes.get(at + 1), Some(b'r' | b'n')) => Some(2),
        _ => None,
    }
}

/// Text with its line breaks removed, and where they were (see [`join_lines`]).
type Joined = (Vec<u8>, Vec<(usize, usize)>);

/// `bytes` with every CR and LF removed, and every two-byte escape `\r` or
/// `\n` (a backslash and a letter, as JSON writes a line break), and where:
/// one `(index in the joined bytes, bytes removed before it in total)` per
/// run of removed bytes. `None` when there is nothing to remove.
///
/// Every report row and input file has line breaks, so this runs on most
/// text the redactor sees: the runs between breaks are found with `memchr`
/// and copied whole, not a byte at a time.
fn join_lines(bytes: &[u8]) -> Option<Joined> {
    let mut joined = Vec::new();
    let mut shifts: Vec<(usize, usize)> = Vec::new();
    let mut removed = 0;
    let mut from = 0;
    // A backslash not before `r` or `n` is kept; the letter after one that
    // is never comes up here (it is not searched for).
    for at in memchr::memchr3_iter(b'\n', b'\r', b'\\', bytes) {
        let Some(skip) = break_at(bytes, at) else {
            continue;
        };
        if joined.capacity() == 0 {
            joined.reserve(bytes.len());
        }
        joined.extend_from_slice(&bytes[from..at]);
        removed += skip;
        from = at + skip;
        match shifts.last_mut() {
            Some(last) if last.0 == joined.len() => last.1 = removed,
            _ => shifts.push((joined.len(), removed)),
        }
    }
    if shifts.is_empty() {
        return None;
    }
    joined.extend_from_slice(&bytes[from..]);
    Some((joined, shifts))
}

/// The structural rules, applied to all text whether or not any value is
/// registered.
fn redact_structural(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !has_trigger(bytes) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Cow::Borrowed(bytes);
    for rule in rules() {
        if let Cow::Owned(changed) = rule.apply(&out) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// Whether any of [`TRIGGERS`] occurs in `bytes`, ASCII case-insensitively.
///
/// Every journal record and stored body goes through this, and almost none
/// holds a trigger, so it is the redactor's most common question. An
/// ASCII-case-insensitive Aho-Corasick automaton answers it one byte at a
/// time (it gets no prefilter); this gives the same answer about ten times
/// faster: `@` by `memchr`, and the words by a SIMD (Teddy) search over an
/// ASCII-lower-cased copy, made in fixed chunks that overlap by one byte less
/// than the longest word, so a word that straddles two chunks is whole in
/// one of them. Lower-casing maps only `A`-`Z`, exactly the bytes the
/// case-insensitive automaton folds, so both find the same occurrences.
fn has_trigger(bytes: &[u8]) -> bool {
    /// Bytes lower-cased and searched at a time.
    const CHUNK: usize = 4096;
    static WORDS: LazyLock<Option<aho_corasick::packed::Searcher>> =
        LazyLock::new(|| aho_corasick::packed::Searcher::new(trigger_words().map(str::as_bytes)));
    if memchr::memchr(b'@', bytes).is_some() {
        return true;
    }
    let Some(words) = WORDS.as_ref() else {
        // No packed searcher on this target: the automaton gives the answer.
        return trigger_automaton().is_match(bytes);
    };
    thread_local! {
        /// The lower-cased chunk, reused (a fresh zeroed array per call
        /// would cost more than the search for a short text).
        static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let overlap = trigger_words().map(str::len).max().unwrap_or(1) - 1;
    LOWER.with_borrow_mut(|lower| {
        let mut start = 0;
        loop {
            let end = (start + CHUNK).min(bytes.len());
            lower.clear();
            lower.extend(bytes[start..end].iter().map(u8::to_ascii_lowercase));
            if words.find(lower.as_slice()).is_some() {
                return true;
            }
            if end == bytes.len() {
                return false;
            }
            start = end - overlap;
        }
    })
}

/// Builds the structural rules and the trigger search now instead of at the
/// first redaction: some 10 million instructions (3 ms), which a sweep
/// otherwise spends on the way to its first check (the bundle's header is
/// its first redaction). Once per process, on any thread.
pub fn compile_rules() {
    let _ = rules();
    let _ = has_trigger(b"");
}

/// The triggers other than `@` (which `memchr` finds), all lower case.
fn trigger_words() -> impl Iterator<Item = &'static str> {
    TRIGGERS.iter().copied().filter(|t| *t != "@")
}

/// Every trigger, ASCII case-insensitively, one byte at a time: the
/// reference [`has_trigger`] must agree with (and its fallback).
fn trigger_automaton() -> &'static AhoCorasick {
    static TRIGGER: LazyLock<AhoCorasick> = LazyLock::new(|| {
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(TRIGGERS)
            .expect("valid triggers")
    });
    &TRIGGER
}

/// One structural rule: what it finds, and how its values are kept.
struct Rule {
    finder: Finder,
    /// Leave values shaped like a secret's *name* (`FLY_API_TOKEN`): checks
    /// record which secret they looked at under keys like `"secret"`.
    keep_names: bool,
}

/// How a rule finds the values it may replace.
enum Finder {
    /// A regex whose `value` group is the value.
    Regex(Regex),
    /// Credentials in query strings, found by hand
    /// ([`keyed::query_values`]).
    Query,
    /// Credential headers, found by hand ([`keyed::header_values`]).
    Headers,
    /// Credentials under TOML or INI keys, found by hand
    /// ([`keyed::credential_values`]).
    CredentialKeys,
    /// Credentials under JSON keys, found by hand ([`keyed::json_values`]).
    Json,
}

impl Rule {
    /// `bytes` with each value found replaced, borrowed when no value needed
    /// replacing. Values left as they are (templates, values already
    /// redacted, secret names) copy nothing: an input copied into a bundle
    /// matches the header rule at every check's `Bearer {{secret:…}}`, and a
    /// replacement of each match by itself copied the whole text once per
    /// rule.
    fn apply<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        match &self.finder {
            Finder::Regex(regex) => self.replace(bytes, regex_values(regex, bytes)),
            Finder::Query => self.replace(bytes, keyed::query_values(bytes)),
            Finder::Headers => self.replace(bytes, keyed::header_values(bytes)),
            Finder::CredentialKeys => self.replace(bytes, keyed::credential_values(bytes)),
            Finder::Json => self.replace(bytes, keyed::json_values(bytes)),
        }
    }

    /// `bytes` with those of `values` (ascending, apart) that
    /// [`Self::replaces`] replaced.
    fn replace<'a>(
        &self,
        bytes: &'a [u8],
        values: impl Iterator<Item = std::ops::Range<usize>>,
    ) -> Cow<'a, [u8]> {
        let mut out: Option<Vec<u8>> = None;
        // Bytes before this offset are in `out` already.
        let mut copied = 0;
        for value in values {
            if !self.replaces(&bytes[value.clone()]) {
                continue;
            }
            let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[copied..value.start]);
            out.extend_from_slice(REDACTED);
            copied = value.end;
        }
        match out {
            Some(mut out) => {
                out.extend_from_slice(&bytes[copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(bytes),
        }
    }

    /// Whether a match's `value` is replaced: not when it is redacted
    /// already or a template (evidence records templates, which name
    /// secrets without containing them), nor a secret's name where names
    /// are kept.
    fn replaces(&self, v: &[u8]) -> bool {
        // The DSN rule's value holds its quotes (`'[REDACTED]'`, left by
        // the credential-key rule before it).
        let kept = v.starts_with(b"[REDACTED")
            || v.starts_with(b"'[REDACTED")
            || memchr::memmem::find(v, b"{{").is_some()
            || (self.keep_names && is_secret_name(v));
        !kept
    }
}

/// `FLY_API_TOKEN`-style: an upper-case letter, then upper-case letters,
/// digits and underscores.
fn is_secret_name(v: &[u8]) -> bool {
    v.first().is_some_and(u8::is_ascii_uppercase)
        && v.iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
}

/// The `value` of each match of `regex`.
fn regex_values<'a>(
    regex: &'a Regex,
    bytes: &'a [u8],
) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    regex.find_iter(bytes).filter_map(move |found| {
        // The same match, with its groups: a search from its start finds it
        // again (leftmost-first, with the text before it in view).
        match regex.captures_at(bytes, found.start()) {
            Some(c) => c.name("value").map(|value| value.range()),
            // Not expected; should it happen, the whole match goes.
            None => Some(found.range()),
        }
    })
}

fn rules() -> &'static [Rule] {
    static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
        vec![
            // scheme://user:password@host. The user name, before the value,
            // may hold anything but `:`, `/`, `@`, `?`, `#` and spaces.
            Rule {
                finder: Finder::Regex(
                    Regex::new(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*:(?P<value>[^\s@/?#]+)@")
                        .expect("valid structural regex"),
                ),
                keep_names: false,
            },
            // https://hooks.slack.com/services/T…/B…/… and Discord's
            Rule {
                finder: Finder::Regex(WEBHOOK_URL_REGEX.clone()),
                keep_names: false,
            },
            // ?token=… &sig=… (query strings and form bodies)
            Rule {
                finder: Finder::Query,
                keep_names: false,
            },
            // Authorization: Bearer <value>, as a header line, a JSON key,
            // or a TOML or INI key (`Authorization = "Bearer <value>"`, as a
            // check file's `headers` table holds it, copied into a bundle).
            Rule {
                finder: Finder::Headers,
                keep_names: false,
            },
            // token = "…", DB_PASSWORD = '…' and friends in TOML or INI (a
            // check file's `token`, a command's `env` table): a quoted string
            // under a key that ends in a credential's word, possibly
            // JSON-escaped (a config echoed into a recorded output).
            Rule {
                finder: Finder::CredentialKeys,
                keep_names: false,
            },
            // key/value DSN: password=secret or password='a secret'
            Rule {
                finder: Finder::Regex(
                    Regex::new(r#"(?i)\bpassword\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|[^\s&;'"\\]+)"#)
                        .expect("valid structural regex"),
                ),
                keep_names: false,
            },
            // "password": "…" and friends in JSON, where checks also record
            // which secret (by name) they looked at.
            Rule {
                finder: Finder::Json,
                keep_names: true,
            },
        ]
    });
    &RULES
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-S3cr3t/+v@lue=1";

    fn redactor() -> Redactor {
        Redactor::new(&[("CANARY".to_string(), CANARY.to_string())])
    }

    #[test]
    fn credential_headers_written_as_toml_keys_are_redacted_and_templates_kept() {
        let r = Redactor::default();
        let text = "[[check]]\nid = \"a\"\nheaders = { Authorization = \"Bearer lit3ral-t0ken-value\", \
                    \"X-Api-Key\" = \"k3y-literal-value\", Accept = \"text/plain\" }\n\
                    [[check]]\nid = \"b\"\nheaders = { Authorization = \"Bearer {{secret:TOKEN}}\" }\n\
                    url = \"https://h/p?token=q-literal-value&x=1\"\n\
                    dsn = \"https://{{secret:USER}}:pl4in-pass@h/\"\n";
        let out = r.redact(text);
        // A template in a URL's user name, before its password, does not
        // keep the password.
        for literal in [
            "lit3ral-t0ken-value",
            "k3y-literal-value",
            "q-literal-value",
            "pl4in-pass",
        ] {
            assert!(!out.contains(literal), "{literal} survived in {out}");
        }
        assert!(
            out.contains("Authorization = \"Bearer [REDACTED]\""),
            "{out}"
        );
        assert!(out.contains("\"X-Api-Key\" = \"[REDACTED]\""), "{out}");
        assert!(out.contains("Accept = \"text/plain\""), "{out}");
        assert!(
            out.contains("Bearer {{secret:TOKEN}}"),
            "templates are kept: {out}"
        );
    }

    /// The fast path skips the rules when no trigger occurs: every key the
    /// credential-key rule reads must hold one.
    #[test]
    fn every_key_matched_by_hand_holds_a_trigger() {
        let keys = [
            keyed::KEY_ENDINGS,
            keyed::HEADERS,
            keyed::QUERY_KEYS,
            keyed::JSON_KEYS,
        ];
        for key in keys.concat() {
            assert!(has_trigger(key.as_bytes()), "{key}");
            assert!(has_trigger(key.to_uppercase().as_bytes()), "{key}");
        }
    }

    #[test]
    fn credential_keys_written_in_toml_are_redacted_and_other_keys_kept() {
        let r = Redactor::default();
        let text = "[[check]]\nid = \"fly\"\ncheck = \"fly_app\"\ntoken = \"FlyV1 fm2_l1teral-fly\"\n\
                    [[check]]\nid = \"redis\"\npassword = 'l1teral redis pass'\n\
                    url = \"redis://127.0.0.1:6379\"\n\
                    [[check]]\nid = \"cmd\"\nargv = [\"true\"]\n\
                    env = { DB_PASSWORD = \"l1teral-db\", \"GITHUB_TOKEN\" = \"l1teral-gh\", HOME = \"/root\" }\n\
                    [notify.pagerduty]\nrouting_key = \"l1teral-routing\"\n\
                    [notify.webhook]\nsecret = \"pa\\\"ss-l1teral\"\nurl = \"{{steps.hook.url}}\"\n\
                    [[check]]\nid = \"templated\"\ntoken = \"{{secret:FLY_API_TOKEN}}\"\n\
                    token_url = \"https://h/oauth\"\nsecret_in_argv = \"accept-risk\"\n\
                    tokens = [\"a\"]\nsecret = true\n";
        let out = r.redact(text);
        for literal in [
            "l1teral-fly",
            "l1teral redis pass",
            "l1teral-db",
            "l1teral-gh",
            "l1teral-routing",
            "ss-l1teral",
        ] {
            assert!(!out.contains(literal), "{literal} survived in {out}");
        }
        // The copy keeps its shape: only the quoted value goes.
        assert!(out.contains("token = \"[REDACTED]\"\n"), "{out}");
        // The quotes stay (the DSN rule, after this one, keeps the value).
        assert!(out.contains("password = '[REDACTED]'\n"), "{out}");
        assert!(out.contains("DB_PASSWORD = \"[REDACTED]\", "), "{out}");
        assert!(out.contains("\"GITHUB_TOKEN\" = \"[REDACTED]\", "), "{out}");
        assert!(out.contains("secret = \"[REDACTED]\"\n"), "{out}");
        // Templates, and keys that only start with a credential's word, stay.
        for kept in [
            "token = \"{{secret:FLY_API_TOKEN}}\"",
            "token_url = \"https://h/oauth\"",
            "secret_in_argv = \"accept-risk\"",
            "tokens = [\"a\"]",
            "secret = true",
            "HOME = \"/root\"",
            "url = \"redis://127.0.0.1:6379\"",
        ] {
            assert!(out.contains(kept), "{kept} changed in {out}");
        }
        // Echoed into a recorded output, the same line is JSON-escaped.
        let echoed = r#"{"stdout":"password = \"hunter22x\"\nok"}"#;
        let out = r.redact(echoed);
        assert!(!out.contains("hunter22x"), "{out}");
    }

    #[test]
    fn the_packed_search_finds_what_the_automaton_finds() {
        // Secrets of the shapes real ones have: a hex token (its forms full
        // of digits, which the journal is full of too), a GitHub-style
        // token, words, and one with the bytes that escape.
        let secrets: Vec<(String, String)> = [
            "bench-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5",
            "correct horse battery staple",
            "s3cr3t&<>\"'=+/x",
        ]
        .iter()
        .enumerate()
        .map(|(i, value)| (format!("T{i}"), value.to_string()))
        .collect();
        let redactor = Redactor::new(&secrets);
        assert!(redactor.packed.is_some(), "Teddy builds on this target");
        let digits = "0123456789".repeat(7);
        let mut texts: Vec<Vec<u8>> = vec![digits.clone().into_bytes(), Vec::new()];
        for form in redactor.forms.iter() {
            let form = String::from_utf8_lossy(form).into_owned();
            let cut = &form[..form.len() - 1];
            texts.extend(
                [
                    form.clone(),
                    format!("{{\"seq\":12,\"t\":\"{form}\",\"sha\":\"{digits}\"}}"),
                    format!("{form}{form}"),
                    format!("{cut}{form}"),
                    format!("{digits}{form}{digits}"),
                    format!("a{cut}\nb {form}="),
                ]
                .map(String::into_bytes),
            );
        }
        for text in &texts {
            let packed = redactor.find_values_with(text, true);
            let automaton = redactor.find_values_with(text, false);
            assert_eq!(packed, automaton, "{:?}", String::from_utf8_lossy(text));
        }
        // Every text but the first two holds a form.
        assert!(texts[2..]
            .iter()
            .all(|text| !redactor.find_values(text).is_empty()));
    }

    #[test]
    fn webhook_urls_whose_path_is_the_credential_are_redacted_wherever_written() {
        let r = Redactor::default();
        let slack = "T0CANARY1/B0CANARY2/zzCanarySlackPath9";
        let text = format!(
            "[notify.slack]\nurl = \"https://hooks.slack.com/services/{slack}\"\n\
             workflow = \"https://HOOKS.Slack.com/workflows/T01/A02/33/w0rkfl0wCanary\"\n\
             discord = \"https://discord.com/api/webhooks/1234/d1scordCanary-x_y\"\n\
             old = \"https://discordapp.com/api/webhooks/99/0ldD1scordCanary\"\n\
             log: POST https://hooks.slack.com/triggers/T9/88/tr1ggerCanary failed\n"
        );
        let out = r.redact(&text);
        for literal in [
            "zzCanarySlackPath9",
            "T0CANARY1",
            "w0rkfl0wCanary",
            "d1scordCanary",
            "0ldD1scordCanary",
            "tr1ggerCanary",
        ] {
            assert!(!out.contains(literal), "{literal} survived in {out}");
        }
        // The host and the kind of hook stay: the reader sees what was hit.
        assert!(
            out.contains("url = \"https://hooks.slack.com/services/[REDACTED]\"\n"),
            "{out}"
        );
        assert!(
            out.contains("https://discord.com/api/webhooks/[REDACTED]\""),
            "{out}"
        );
        assert!(out.contains("/triggers/[REDACTED] failed\n"), "{out}");
        // Echoed into a recorded output, JSON-escaped.
        let echoed =
            format!(r#"{{"stdout":"url = \"https://hooks.slack.com/services/{slack}\"\n"}}"#);
        assert!(!r.redact(&echoed).contains("zzCanarySlackPath9"));
        // Templates, other Slack and Discord URLs, and a redacted URL stay.
        for kept in [
            "url = \"{{secret:SLACK_WEBHOOK_URL}}\"",
            "url = \"https://hooks.slack.com/services/{{secret:SLACK_PATH}}\"",
            "https://slack.com/api/chat.postMessage",
            "https://discord.com/channels/1/2",
            "https://hooks.slack.com/services/[REDACTED]",
        ] {
            assert_eq!(r.redact(kept), kept);
        }
    }

    #[test]
    fn matches_left_as_they_are_copy_nothing_and_a_real_value_among_them_is_replaced() {
        let r = Redactor::default();
        // Every check of an input file: the header rule matches each line,
        // and keeps each template and each value redacted already.
        let templates: String = (0..500)
            .map(|i| {
                format!(
                    "[[check]]\nid = \"c{i}\"\nheaders = {{ Authorization = \"Bearer {{{{secret:TOKEN}}}}\" }}\n\
                     note = \"Authorization: Bearer [REDACTED]\"\n"
                )
            })
            .collect();
        assert!(
            matches!(r.redact(&templates), Cow::Borrowed(_)),
            "nothing to replace: the text itself, not a copy"
        );
        // One literal token among them: replaced, every other byte kept.
        let literal = templates.replacen(
            "Authorization: Bearer [REDACTED]",
            "Authorization: Bearer s3cr3t-literal-value",
            1,
        );
        let out = r.redact(&literal);
        assert!(matches!(out, Cow::Owned(_)));
        assert_eq!(out.as_ref(), templates, "only the value is replaced");
    }

    fn assert_redacted(r: &Redactor, text: &str, form: &str) {
        let out = r.redact(text);
        assert!(!out.contains(form), "{form} survived in {out}");
        assert!(out.contains("[REDACTED"), "no marker in {out}");
    }

    /// [`join_lines`] as it was first written, a byte at a time.
    fn join_lines_bytewise(bytes: &[u8]) -> Option<Joined> {
        let (mut joined, mut shifts, mut removed, mut i) = (Vec::new(), Vec::new(), 0, 0);
        while i < bytes.len() {
            let skip = match bytes[i] {
                b'\r' | b'\n' => 1,
                b'\\' if matches!(bytes.get(i + 1), Some(b'r' | b'n')) => 2,
                b => {
                    joined.push(b);
                    i += 1;
                    continue;
                }
            };
            removed += skip;
            i += skip;
            match shifts.last_mut() {
                Some((at, total)) if *at == joined.len() => *total = removed,
                _ => shifts.push((joined.len(), removed)),
            }
        }
        (!shifts.is_empty()).then_some((joined, shifts))
    }

    #[test]
    fn lines_are_joined_as_a_byte_at_a_time_join_does_and_inner_breaks_are_told_apart() {
        // Every string of up to six bytes over an alphabet of the bytes the
        // join looks at, and some it does not.
        let alphabet = [b'\n', b'\r', b'\\', b'n', b'r', b'x'];
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        let mut checked = 0;
        for _ in 0..6 {
            texts = texts
                .iter()
                .flat_map(|t| {
                    alphabet.iter().map(move |&b| {
                        let mut t = t.clone();
                        t.push(b);
                        t
                    })
                })
                .collect();
            for text in &texts {
                let joined = join_lines(text);
                assert_eq!(joined, join_lines_bytewise(text), "{text:?}");
                // A break with joined text on both sides of it.
                let inner = joined.is_some_and(|(joined, shifts)| {
                    shifts.iter().any(|&(at, _)| at > 0 && at < joined.len())
                });
                assert_eq!(has_inner_break(text), inner, "{text:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, (1..=6).map(|n| 6usize.pow(n)).sum::<usize>());
        let long = b"id = 'a'\r\nurl = \"x\\\\n\\ny\"\n\n".repeat(50);
        assert_eq!(join_lines(&long), join_lines_bytewise(&long));
        assert_eq!(join_lines(b"no breaks \\x here"), None);
    }

    #[test]
    fn redacts_every_encoding() {
        let r = redactor();
        // Written out literally, not computed with the encoders under test.
        let forms = [
            "canary-S3cr3t/+v@lue=1",
            "canary-S3cr3t%2F%2Bv%40lue%3D1",
            "canary-S3cr3t%2f%2bv%40lue%3d1",
            "canary-S3cr3t\\/+v@lue=1",
            "Y2FuYXJ5LVMzY3IzdC8rdkBsdWU9MQ==",
            "Y2FuYXJ5LVMzY3IzdC8rdkBsdWU9MQ",
            "63616e6172792d5333637233742f2b76406c75653d31",
            "63616E6172792D5333637233742F2B76406C75653D31",
        ];
        for form in &forms {
            let text = format!("before {form} after");
            assert_redacted(&r, &text, form);
            assert_eq!(
                r.redact(&text),
                format!("before [REDACTED:CANARY] after"),
                "form {form}"
            );
        }
    }

    #[test]
    fn base64_inside_longer_payload_at_every_offset() {
        let r = redactor();
        for prefix in ["", "a", "ab", "abc", "abcd"] {
            for suffix in ["", "x", "xy", "xyz"] {
                let plain = format!("{prefix}{CANARY}{suffix}");
                for encoded in [STANDARD.encode(&plain), URL_SAFE_NO_PAD.encode(&plain)] {
                    let out = r.redact(&encoded);
                    assert_eq!(
                        out, "[REDACTED:CANARY]",
                        "prefix {prefix:?} suffix {suffix:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn derived_values_are_registered() {
        let r = Redactor::new(&[
            (
                "FLY".to_string(),
                "FlyV1 fm2_partone123,fm2_parttwo456".to_string(),
            ),
            (
                "DB_URL".to_string(),
                "postgres://app:pgS3cretPw@db:5432/x".to_string(),
            ),
            (
                "DSN".to_string(),
                "host=h user=u password='kv pass 77' dbname=d".to_string(),
            ),
            (
                "PEM".to_string(),
                "-----BEGIN KEY-----\nline1secret\nline2secret\n-----END KEY-----".to_string(),
            ),
        ]);
        assert_eq!(r.redact("x fm2_parttwo456 y"), "x [REDACTED:FLY] y");
        assert_eq!(r.redact("auth fm2_partone123"), "auth [REDACTED:FLY]");
        assert_eq!(r.redact("pw pgS3cretPw."), "pw [REDACTED:DB_URL].");
        assert_eq!(r.redact("saw kv pass 77!"), "saw [REDACTED:DSN]!");
        assert_eq!(r.redact("got line2secret"), "got [REDACTED:PEM]");
        let basic = STANDARD.encode("app:pgS3cretPw");
        assert!(!r.redact(&format!("x {basic} y")).contains(&basic));
    }

    #[test]
    fn weak_secrets_are_not_patterns() {
        let r = Redactor::new(&[
            ("PIN".to_string(), "1234".to_string()),
            ("OK".to_string(), "long-enough".to_string()),
        ]);
        assert_eq!(r.weak_secrets(), vec!["PIN".to_string()]);
        assert_eq!(r.redact("pin 1234"), "pin 1234");
        assert_eq!(r.redact("v long-enough"), "v [REDACTED:OK]");
    }

    #[test]
    fn structural_rules() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("postgres://u:p4ss@h:5432/db"),
            "postgres://u:[REDACTED]@h:5432/db"
        );
        assert_eq!(
            r.redact("GET https://h/x?a=1&token=abc123&sig=zz#f"),
            "GET https://h/x?a=1&token=[REDACTED]&sig=[REDACTED]#f"
        );
        assert_eq!(
            r.redact("https://s3/o?X-Amz-Signature=deadbeef&x=1"),
            "https://s3/o?X-Amz-Signature=[REDACTED]&x=1"
        );
        assert_eq!(
            r.redact("host=h password=hunter2 dbname=d"),
            "host=h password=[REDACTED] dbname=d"
        );
        assert_eq!(
            r.redact("Authorization: Bearer abc.def\nnext"),
            "Authorization: Bearer [REDACTED]\nnext"
        );
        assert_eq!(
            r.redact("authorization: FlyV1 fm2_a,fm2_b"),
            "authorization: FlyV1 [REDACTED]"
        );
        assert_eq!(r.redact("Cookie: a=b; c=d"), "Cookie: [REDACTED]");
        assert_eq!(r.redact("set-cookie: s=1"), "set-cookie: [REDACTED]");
        assert_eq!(
            r.redact(r#"{"api_access_token":"xyz","a":1}"#),
            r#"{"api_access_token":"[REDACTED]","a":1}"#
        );
        assert_eq!(
            r.redact(r#"{"password":"pw\"x"}"#),
            r#"{"password":"[REDACTED]"}"#
        );
        // A secret's name is not its value.
        let named = r#"{"present":true,"secret":"DEMO_API_TOKEN"}"#;
        assert_eq!(r.redact(named), named);
        assert_eq!(
            r.redact(r#"{"secret":"s3cr3t-value"}"#),
            r#"{"secret":"[REDACTED]"}"#
        );
        // Templates name secrets without containing them.
        let template = r#"{"authorization":"Bearer {{secret:FLY_API_TOKEN}}"}"#;
        assert_eq!(r.redact(template), template);
        assert_eq!(
            redact_url("https://user:pw@host/p?key=k1"),
            "https://user:[REDACTED]@host/p?key=[REDACTED]"
        );
        assert!(is_sensitive_header("Proxy-Authorization"));
        assert!(is_sensitive_header("x-api-key"));
        assert!(!is_sensitive_header("content-type"));
        // Idempotent.
        let once = r.redact("Authorization: Bearer abc").into_owned();
        assert_eq!(r.redact(&once), once);
    }

    #[test]
    fn fast_path_borrows() {
        let r = redactor();
        let line = r#"{"v":1,"seq":3,"type":"attempt.end","step":"api","verdict":"pass"}"#;
        assert!(matches!(r.redact(line), Cow::Borrowed(_)));
        assert!(matches!(Redactor::default().redact(line), Cow::Borrowed(_)));
        assert!(matches!(
            r.redact_bytes(&[0, 159, 146, 150]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_unicode_escape() {
        let r = Redactor::new(&[("U".to_string(), "pässwörd-ü".to_string())]);
        // Written out literally, not computed with the escaper under test.
        for form in [
            "pässwörd-ü",
            "p\\u00e4ssw\\u00f6rd-\\u00fc",
            "p\\u00E4ssw\\u00F6rd-\\u00FC",
        ] {
            assert_eq!(
                r.redact(&format!("\"{form}\"")),
                "\"[REDACTED:U]\"",
                "{form}"
            );
        }
    }

    #[test]
    fn debug_never_prints_values() {
        let r = redactor();
        assert!(!format!("{r:?}").contains("canary"));
    }

    #[test]
    fn structural_rules_fire_without_a_url_in_the_text() {
        let r = Redactor::new(&[]);
        assert_eq!(
            r.redact(r#"{"passwd":"hunter22"}"#),
            r#"{"passwd":"[REDACTED]"}"#
        );
        assert_eq!(
            r.redact("see postgres://app:pw123456@db:5432/x"),
            "see postgres://app:[REDACTED]@db:5432/x"
        );
        // A URL without credentials takes the fast path untouched.
        let plain = "GET http://127.0.0.1:18080/u/1";
        assert!(matches!(r.redact(plain), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn values_registered_at_run_time_are_redacted_by_every_clone() {
        let r = Arc::new(redactor());
        let copy = (*r).clone();
        let learnt = "runtime-canary-4411";
        assert_eq!(r.redact(learnt), learnt);
        r.register("capture:session", learnt);
        let text = format!("session={learnt} b64={}", STANDARD.encode(learnt));
        for redactor in [&*r, &copy] {
            let out = redactor.redact(&text).into_owned();
            assert!(!out.contains(learnt), "{out}");
            assert!(!out.contains(&STANDARD.encode(learnt)), "{out}");
            assert!(out.contains("[REDACTED:capture:session]"), "{out}");
        }
        // Secrets known from the start still are.
        assert!(!r.redact(CANARY).contains(CANARY));
        // Too short to match safely: ignored rather than mangling text.
        r.register("capture:short", "ab");
        assert_eq!(r.redact("abc"), "abc");
    }

    /// A canary with every character an encoder treats specially, long
    /// enough for its base64 to wrap.
    const SPICY: &str =
        "canary&<tag>\"q\"/path'x+y=z-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH";

    fn spicy() -> Redactor {
        Redactor::new(&[("SPICY".to_string(), SPICY.to_string())])
    }

    #[test]
    fn encodings_a_server_echoes_back() {
        let r = spicy();
        let go_json = serde_json::to_string(SPICY).unwrap();
        let go_json = go_json[1..go_json.len() - 1]
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        let python_quote = utf8_percent_encode(SPICY, PATH_SAFE).to_string();
        let html = SPICY
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        let numeric = SPICY
            .replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        let hex_entities = SPICY
            .replace('&', "&#x26;")
            .replace('<', "&#x3c;")
            .replace('>', "&#x3e;")
            .replace('"', "&#x22;")
            .replace('\'', "&#x27;");
        assert!(python_quote.contains('/'), "{python_quote}");
        for form in [go_json, python_quote, html, numeric, hex_entities] {
            let text = format!("echo: {form} end");
            assert_eq!(r.redact(&text), "echo: [REDACTED:SPICY] end", "{form}");
        }
    }

    #[test]
    fn values_split_across_lines() {
        let r = spicy();
        // Wrapped by a server at a column that falls inside the value.
        for (at, brk) in [(5, "\n"), (20, "\r\n"), (40, "\\n"), (41, "\\r\\n")] {
            let text = format!("x {}{brk}{} y", &SPICY[..at], &SPICY[at..]);
            let out = r.redact(&text).into_owned();
            assert!(!out.contains(&SPICY[..at]), "{at}: {out}");
            assert!(!out.contains(&SPICY[at..]), "{at}: {out}");
            assert!(out.contains("[REDACTED:SPICY]"), "{out}");
            assert!(out.starts_with("x ") && out.ends_with(" y"), "{out}");
        }
        // MIME base64: the payload around the value, wrapped at 76 columns.
        for prefix in ["", "a", "ab"] {
            let encoded = STANDARD.encode(format!("{prefix}Subject: {SPICY}\r\nmore text"));
            let wrapped: Vec<&str> = encoded
                .as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            for brk in ["\r\n", "\n"] {
                let mime = wrapped.join(brk);
                let out = r.redact(&mime).into_owned();
                for line in &wrapped[1..wrapped.len() - 1] {
                    assert!(!out.contains(line), "{line} survived: {out}");
                }
                assert!(out.contains("[REDACTED:SPICY]"), "{out}");
            }
        }
        // Text with line breaks but no secret is untouched.
        let plain = "line one\nline two\r\n";
        assert!(matches!(r.redact(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn a_prefix_at_a_cut_point_is_masked() {
        let r = spicy();
        let json = serde_json::to_string(SPICY).unwrap();
        let json = &json[1..json.len() - 1];
        for len in [6, 7, 30, SPICY.len() - 2] {
            let cut = crate::core::cut::cut(&format!("reason: {SPICY}"), 8 + len + 1);
            assert!(cut.ends_with('…'), "{cut}");
            assert_eq!(r.redact(&cut), "reason: [REDACTED:SPICY]…", "{len}");
            // The same cut inside a journal record (JSON-escaped).
            let record = serde_json::to_string(&cut).unwrap();
            let out = r.redact(&record).into_owned();
            assert!(!out.contains(&json[..6]), "{out}");
            assert!(out.contains("[REDACTED:SPICY]…"), "{out}");
        }
        // Fewer than 6 bytes of the secret is not masked (too common).
        assert_eq!(r.redact("x canar…"), "x canar…");
        // A capped body ends inside the secret: masked at the very end.
        let body = format!("{{\"token\":1,\"v\":\"{}", &SPICY[..20]);
        let out = r.redact_truncated_bytes(body.as_bytes()).into_owned();
        assert_eq!(out, b"{\"token\":1,\"v\":\"[REDACTED:SPICY]");
        // Not truncated: the end is left alone.
        assert_eq!(r.redact_bytes(body.as_bytes()).as_ref(), body.as_bytes());
        // A base64 form cut in the middle.
        let b64 = STANDARD.encode(SPICY);
        let cut = format!("{}…", &b64[..30]);
        assert_eq!(r.redact(&cut), "[REDACTED:SPICY]…");
    }

    /// The chunk size of `has_trigger`'s lower-cased copy.
    const SCAN_CHUNK: usize = 4096;

    /// Text with no trigger in any case: `has_trigger` must say so, and it
    /// is what the tests below hide triggers in.
    fn filler(len: usize) -> Vec<u8> {
        b"{\"step\":\"c0000001\",\"kind\":\"http\",\"digest\":\"sha256:0af3\",\"n\":12} "
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    }

    #[test]
    fn triggers_are_lower_case_ascii() {
        // `has_trigger` lower-cases the text, not the words.
        for t in TRIGGERS {
            assert!(
                t.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()),
                "{t}"
            );
        }
    }

    /// The fast trigger scan finds every trigger, in any case, at every
    /// place around its chunk boundaries (where a word is split between two
    /// lower-cased chunks), and agrees with the automaton it replaces.
    #[test]
    fn trigger_scan_finds_words_split_across_its_chunks() {
        let base = filler(3 * SCAN_CHUNK);
        assert!(!has_trigger(&base));
        assert!(!trigger_automaton().is_match(&base));
        for trigger in TRIGGERS {
            let upper = trigger.to_ascii_uppercase();
            let mixed: String = trigger
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            for word in [trigger.to_string(), upper, mixed] {
                // Across the first boundary, and across the second one
                // (chunks start `overlap` bytes before the previous end).
                let around = [SCAN_CHUNK, 2 * SCAN_CHUNK - 7];
                for boundary in around {
                    for at in boundary - word.len() - 2..boundary + 2 {
                        let mut text = base.clone();
                        text[at..at + word.len()].copy_from_slice(word.as_bytes());
                        assert!(has_trigger(&text), "{word} at {at}");
                        assert!(trigger_automaton().is_match(&text), "{word} at {at}");
                    }
                }
                // At the very end, and in short texts (no SIMD search).
                let mut text = base.clone();
                text.extend_from_slice(word.as_bytes());
                assert!(has_trigger(&text), "{word} at the end");
                assert!(has_trigger(word.as_bytes()), "{word} alone");
                assert!(has_trigger(format!("a{word}").as_bytes()), "a{word}");
            }
        }
    }

    /// Random texts over the triggers' own letters (so near-misses abound):
    /// the fast scan and the automaton always give the same answer.
    #[test]
    fn trigger_scan_agrees_with_the_automaton() {
        let alphabet = b"pasSWORDdtokenKyigcrthuiz@ {}\":x0";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut hits, mut misses) = (0, 0);
        for round in 0..4000 {
            let len = [3, 9, 17, 40, 700, SCAN_CHUNK + 9][round % 6];
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let want = trigger_automaton().is_match(&text);
            assert_eq!(
                has_trigger(&text),
                want,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            if want {
                hits += 1;
            } else {
                misses += 1;
            }
        }
        // Both answers were exercised.
        assert!(hits > 100 && misses > 100, "{hits} hits, {misses} misses");
    }

    /// End to end: credentials whose trigger word straddles the scan's chunk
    /// boundary are still redacted (header, query key with `&`, JSON key),
    /// and so is a registered value holding `&` and `<` placed there.
    #[test]
    fn secrets_across_the_scan_chunk_boundary_are_redacted() {
        let r = Redactor::new(&[("AMP".to_string(), "s3cr&t<value>9".to_string())]);
        let cases = [
            ("Authorization: Bearer tok-VALUE-1234", "tok-VALUE-1234"),
            ("?a=1&token=abc&def=2", "abc"),
            ("{\"password\":\"hunter2hunter\"}", "hunter2hunter"),
            ("see s3cr&t<value>9 here", "s3cr&t<value>9"),
            (
                "see s3cr&amp;t&lt;value&gt;9 here",
                "s3cr&amp;t&lt;value&gt;9",
            ),
        ];
        for (credential, secret) in cases {
            for at in SCAN_CHUNK - credential.len()..SCAN_CHUNK + 2 {
                // A line break before it: the header rule wants a word start.
                let mut text = filler(at - 1);
                text.push(b'\n');
                text.extend_from_slice(credential.as_bytes());
                text.extend(filler(600));
                let out = r.redact_bytes(&text);
                let out = String::from_utf8_lossy(&out);
                assert!(!out.contains(secret), "{credential:?} at {at}");
                assert!(out.contains("[REDACTED"), "{credential:?} at {at}");
            }
        }
    }
}
