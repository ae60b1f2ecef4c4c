//! Rendering a [`VerifyReport`]: the one-line verdict, the tables of checks,
//! problems and secret findings, and the JSON form.

use super::*;

impl VerifyReport {
    /// True for [`Verdict::Verified`] and [`Verdict::VerifiedInterrupted`].
    pub fn is_valid(&self) -> bool {
        matches!(
            self.verdict,
            Verdict::Verified | Verdict::VerifiedInterrupted
        )
    }

    /// Sets the result of a check made outside `evidence` (the reports'
    /// agreement with the journal, which needs the renderers): `problems`
    /// fail it and make the verdict INVALID; none pass it with `detail`.
    pub fn set_check(&mut self, name: &'static str, detail: String, problems: Vec<Problem>) {
        let (status, detail) = match problems.first() {
            Some(first) => (
                CheckStatus::Fail,
                match problems.len() {
                    1 => format!("{}: {}", first.location(), first.message),
                    n => format!("{}: {} (+{} more)", first.location(), first.message, n - 1),
                },
            ),
            None => (CheckStatus::Pass, detail),
        };
        match self.checks.iter_mut().find(|c| c.name == name) {
            Some(check) => {
                check.status = status;
                check.detail = detail;
            }
            None => self.checks.push(Check {
                name,
                status,
                detail,
            }),
        }
        if !problems.is_empty() {
            self.problems.extend(problems);
            self.verdict = Verdict::Invalid;
        }
    }

    /// Marks a check made outside `evidence` as not applicable, saying why.
    pub fn skip_check(&mut self, name: &'static str, why: impl Into<String>) {
        let why = why.into();
        match self.checks.iter_mut().find(|c| c.name == name) {
            Some(check) => {
                check.status = CheckStatus::Skip;
                check.detail = why;
            }
            None => self.checks.push(Check {
                name,
                status: CheckStatus::Skip,
                detail: why,
            }),
        }
    }

    /// The one-line verdict.
    pub fn summary_line(&self) -> String {
        let run = self.run_id.as_deref().unwrap_or("?");
        match &self.verdict {
            Verdict::Verified => format!(
                "VERIFIED: run {run}, {} records, sealed{}",
                self.records,
                self.signed_by()
            ),
            Verdict::VerifiedInterrupted => format!(
                "VERIFIED (interrupted): run {run}, {} records, sealed{}; the run was interrupted and is recorded up to that point",
                self.records,
                self.signed_by()
            ),
            Verdict::Incomplete { valid_through_seq } => match valid_through_seq {
                Some(seq) => format!(
                    "INCOMPLETE: run {run} has no seal (unfinished or crashed); journal valid through seq {seq}; truncation cannot be ruled out"
                ),
                None => format!("INCOMPLETE: run {run} has no seal and no complete record"),
            },
            Verdict::Invalid => {
                let first = self.problems.first();
                let more = self.problems.len().saturating_sub(1);
                match first {
                    Some(p) if more > 0 => {
                        format!("INVALID: {}: {} (and {more} more problems)", p.location(), p.message)
                    }
                    Some(p) => format!("INVALID: {}: {}", p.location(), p.message),
                    None => "INVALID".to_string(),
                }
            }
            Verdict::SecretsFound => {
                let files: BTreeSet<&str> = self.secrets.iter().map(|s| s.file.as_str()).collect();
                format!(
                    "SECRETS FOUND: {} matches in {} files; rotate those secrets (a sealed bundle cannot be cleaned)",
                    self.secrets.len(),
                    files.len()
                )
            }
        }
    }

    /// `, signed by ID (SHA256:…)`, or what is known of an unchecked key.
    fn signed_by(&self) -> String {
        match &self.signer {
            Some(s) if s.trusted => {
                format!(
                    ", signed by {} ({})",
                    s.principals.join(", "),
                    s.fingerprint
                )
            }
            Some(s) => format!(
                ", signed by key {} (not checked: pass --allowed-signers)",
                s.fingerprint
            ),
            None => ", unsigned".to_string(),
        }
    }

    /// The verdict line, then tables of checks, problems and secret findings.
    pub fn render_text(&self) -> String {
        #[derive(Tabled)]
        struct CheckRow<'a> {
            #[tabled(rename = "check")]
            name: &'a str,
            #[tabled(rename = "result")]
            status: &'a str,
            detail: &'a str,
        }
        #[derive(Tabled)]
        struct ProblemRow<'a> {
            #[tabled(rename = "where")]
            location: String,
            check: &'a str,
            problem: &'a str,
        }
        let mut out = self.summary_line();
        out.push('\n');
        let rows = self.checks.iter().map(|c| CheckRow {
            name: c.name,
            status: match c.status {
                CheckStatus::Pass => "ok",
                CheckStatus::Fail => "FAIL",
                CheckStatus::Skip => "-",
            },
            detail: &c.detail,
        });
        out.push_str(&Table::new(rows).with(Style::sharp()).to_string());
        out.push('\n');
        if !self.problems.is_empty() {
            let rows = self.problems.iter().map(|p| ProblemRow {
                location: p.location(),
                check: p.check,
                problem: &p.message,
            });
            out.push_str(&Table::new(rows).with(Style::sharp()).to_string());
            out.push('\n');
        }
        if !self.secrets.is_empty() {
            push_findings(&mut out, &self.secrets);
        }
        if !self.credential_warnings.is_empty() {
            out.push_str("warning: credential-shaped strings in the bundle (rotate them if real; --strict fails on them):\n");
            push_findings(&mut out, &self.credential_warnings);
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        out
    }

    /// The whole report as JSON (`verify --json`).
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut value {
            map.insert("valid".to_string(), Value::Bool(self.is_valid()));
            map.insert("summary".to_string(), Value::String(self.summary_line()));
        }
        value
    }
}

#[derive(Tabled)]
struct SecretRow<'a> {
    file: &'a str,
    line: u64,
    offset: u64,
    #[tabled(rename = "secret (masked)")]
    preview: &'a str,
}

/// A table of secret findings (file, line, offset, masked preview).
fn push_findings(out: &mut String, findings: &[SecretFinding]) {
    let rows = findings.iter().map(|s| SecretRow {
        file: &s.file,
        line: s.line,
        offset: s.offset,
        preview: &s.preview,
    });
    out.push_str(&Table::new(rows).with(Style::sharp()).to_string());
    out.push('\n');
}
