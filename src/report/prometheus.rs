//! Prometheus text exposition (format 0.0.4) for node_exporter's textfile
//! collector. Labels are `check`, `kind` and labels derived from `key=value`
//! (or `key:value`) tags — never URLs, run ids or error text, which would
//! explode cardinality and could carry secrets. No sample timestamps: the
//! textfile collector rejects files that have them.

use std::fmt::Write as _;

/// One check's figures.
#[derive(Debug, Clone)]
pub struct CheckMetrics {
    pub id: String,
    pub kind: String,
    pub tags: Vec<String>,
    /// `None` when the check was blocked (no success sample is written, so an
    /// alert on `runproof_check_success == 0` fires once for the root cause).
    pub success: Option<bool>,
    /// Median latency over samples, seconds.
    pub duration_seconds: Option<f64>,
    /// Attempts used (1 = no retry).
    pub attempts: u32,
    /// Whether the p95 regressed against the baseline.
    pub regressed: bool,
}

/// The families of per-check samples: name and help.
const FAMILIES: [(&str, &str); 5] = [
    (
        "runproof_check_success",
        "1 if the check passed (also after retries), 0 if it failed; absent when blocked.",
    ),
    (
        "runproof_check_blocked",
        "1 if the check was not run because a check it depends on failed.",
    ),
    (
        "runproof_check_duration_seconds",
        "Median latency of the check's samples (the attempt that decided each sample).",
    ),
    (
        "runproof_check_attempts",
        "Attempts the check used (1 = no retry).",
    ),
    (
        "runproof_check_latency_regressed",
        "1 if the check's p95 latency grew beyond the baseline factor.",
    ),
];

/// Appends `c`'s sample of family `f` (an index into [`FAMILIES`]), if it has one.
fn family_sample(out: &mut String, f: usize, c: &CheckMetrics) {
    let name = FAMILIES[f].0;
    let value = match f {
        0 => c.success.map(|success| if success { 1.0 } else { 0.0 }),
        1 => Some(if c.success.is_none() { 1.0 } else { 0.0 }),
        2 => c.duration_seconds,
        3 => (c.attempts > 0).then(|| f64::from(c.attempts)),
        _ => c.success.map(|_| if c.regressed { 1.0 } else { 0.0 }),
    };
    if let Some(value) = value {
        sample(out, name, c, value);
    }
}

/// The family of the sweep's end time, the file's last lines.
fn timestamp_family(finished_unix: f64) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "runproof_sweep_last_timestamp_seconds",
        "Unix time the sweep finished.",
    );
    let _ = writeln!(
        out,
        "runproof_sweep_last_timestamp_seconds {finished_unix:.3}"
    );
    out
}

/// Renders the whole textfile.
pub fn render(checks: &[CheckMetrics], finished_unix: f64) -> String {
    let mut out = String::new();
    for (f, (name, help)) in FAMILIES.iter().enumerate() {
        family(&mut out, name, help);
        for c in checks {
            family_sample(&mut out, f, c);
        }
    }
    out.push_str(&timestamp_family(finished_unix));
    out
}

/// A sweep's `--prometheus` textfile, written as checks finish: each family
/// is spooled on its own (the format wants a family's samples together),
/// and the file is replaced atomically at the end.
pub struct PrometheusStream {
    spooled: super::spool::Spooled,
    line: String,
}

impl PrometheusStream {
    /// A stream into a [`Spooled`](super::spool::Spooled) of
    /// [`PrometheusStream::SECTIONS`] sections.
    pub fn new(spooled: super::spool::Spooled) -> PrometheusStream {
        PrometheusStream {
            spooled,
            line: String::new(),
        }
    }

    /// Sections the spool needs: one per family.
    pub const SECTIONS: usize = FAMILIES.len();

    /// One check's samples.
    pub fn check(&mut self, c: &CheckMetrics) {
        for f in 0..FAMILIES.len() {
            self.line.clear();
            family_sample(&mut self.line, f, c);
            if !self.line.is_empty() {
                self.spooled.write(f, &self.line);
            }
        }
    }

    /// Writes the file: each family's header and samples, then the end time.
    pub fn finish(self, finished_unix: f64) -> Vec<(std::path::PathBuf, std::io::Error)> {
        use super::spool::Part;
        let headers: Vec<String> = FAMILIES
            .iter()
            .map(|(name, help)| {
                let mut out = String::new();
                family(&mut out, name, help);
                out
            })
            .collect();
        let end = timestamp_family(finished_unix);
        let mut parts = Vec::new();
        for (f, header) in headers.iter().enumerate() {
            parts.push(Part::Text(header));
            parts.push(Part::Section(f));
        }
        parts.push(Part::Text(&end));
        self.spooled.finish(&parts)
    }
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, check: &CheckMetrics, value: f64) {
    let _ = writeln!(out, "{name}{{{}}} {}", labels(check), number(value));
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// `check="…",kind="…"` plus tag-derived labels, sorted, deduplicated.
pub fn labels(check: &CheckMetrics) -> String {
    let mut pairs = vec![
        ("check".to_string(), check.id.clone()),
        ("kind".to_string(), check.kind.clone()),
    ];
    let mut derived: Vec<(String, String)> = check
        .tags
        .iter()
        .filter_map(|tag| {
            let (key, value) = tag.split_once('=').or_else(|| tag.split_once(':'))?;
            let key = label_name(key)?;
            // A tag like `dashboard=https://…` must not smuggle a URL into a label.
            (!matches!(key.as_str(), "check" | "kind" | "job" | "instance")
                && !key.starts_with("__")
                && !value.contains("://"))
            .then(|| (key, value.trim().to_string()))
        })
        .collect();
    derived.sort();
    derived.dedup_by(|a, b| a.0 == b.0);
    pairs.extend(derived);
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A valid label name from a tag key (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn label_name(key: &str) -> Option<String> {
    let name: String = key
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    match name.chars().next() {
        None => None,
        Some(c) if c.is_ascii_digit() => Some(format!("_{name}")),
        Some(_) => Some(name),
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, success: Option<bool>, tags: &[&str]) -> CheckMetrics {
        CheckMetrics {
            id: id.into(),
            kind: "http".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            success,
            duration_seconds: success.map(|_| 0.0125),
            attempts: if success.is_some() { 2 } else { 0 },
            regressed: false,
        }
    }

    #[test]
    fn renders_families_and_tag_labels() {
        let text = render(
            &[
                check("api", Some(true), &["team=payments", "critical", "tier:1"]),
                check("ui", None, &[]),
            ],
            1795599641.87,
        );
        assert!(text.contains("runproof_check_success{check=\"api\",kind=\"http\",team=\"payments\",tier=\"1\"} 1\n"), "{text}");
        assert!(text.contains("runproof_check_duration_seconds{check=\"api\",kind=\"http\",team=\"payments\",tier=\"1\"} 0.0125\n"), "{text}");
        assert!(
            text.contains("runproof_check_blocked{check=\"ui\",kind=\"http\"} 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("runproof_check_success{check=\"ui\""),
            "blocked checks have no success sample"
        );
        assert!(text.contains("runproof_sweep_last_timestamp_seconds 1795599641.870\n"));
        assert!(!text.contains("critical"), "bare tags are not labels");
    }

    #[test]
    fn escapes_values_and_sanitizes_names() {
        let c = check(
            "a\"b",
            Some(false),
            &["Team Name=x\\y", "check=hijack", "9lives=yes"],
        );
        let l = labels(&c);
        assert_eq!(
            l,
            r#"check="a\"b",kind="http",_9lives="yes",team_name="x\\y""#
        );
        let url = check(
            "api",
            Some(true),
            &["dashboard=https://grafana.example/d/1", "team=web"],
        );
        assert_eq!(labels(&url), r#"check="api",kind="http",team="web""#);
    }
}
