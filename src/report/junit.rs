//! `junit.xml`: one testcase per step (Jenkins/Surefire dialect). Steps that
//! passed after retries carry `flakyFailure` elements; escalated steps are
//! failures, and so are sweep checks that passed but regressed against a
//! latency baseline; blocked and skipped steps are skipped.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::summary::{RunSummary, StepSummary};
use crate::core::record::StepVerdict;

/// Renders the summary as JUnit XML.
pub fn render(summary: &RunSummary) -> String {
    render_with_regressions(summary, &HashMap::new())
}

/// Renders a sweep's summary: `regressions` maps a check id to why its
/// latency regressed against the baseline. Such a check passed every attempt
/// in the journal, yet fails the sweep (exit 1), so it is a failure here too
/// and CI shows the same verdict as the exit code.
pub fn render_with_regressions(summary: &RunSummary, regressions: &HashMap<&str, &str>) -> String {
    render_suites(&[(summary, regressions)])
}

/// One JUnit document with a `<testsuite>` per summary (`runproof report`
/// over several bundles); the `<testsuites>` totals add them up.
pub fn render_suites(suites: &[(&RunSummary, &HashMap<&str, &str>)]) -> String {
    let mut total = Counts::default();
    let mut bodies = Vec::with_capacity(suites.len());
    for (summary, regressions) in suites {
        let counts = Counts::of(summary, regressions);
        total.add(&counts);
        bodies.push(render_suite(summary, regressions, &counts));
    }
    let mut out = document_head(&total);
    for body in bodies {
        out.push_str(&body);
    }
    out.push_str(DOCUMENT_TAIL);
    out
}

/// The XML declaration and `<testsuites>` with the totals.
fn document_head(total: &Counts) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"runproof\" {}>\n",
        total.attributes()
    )
}

const DOCUMENT_TAIL: &str = "</testsuites>\n";

/// A suite's testcase totals and time.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    seconds: f64,
}

impl Counts {
    fn of(summary: &RunSummary, regressions: &HashMap<&str, &str>) -> Counts {
        let mut counts = Counts {
            seconds: summary.duration_ms / 1000.0,
            ..Counts::default()
        };
        for step in &summary.steps {
            counts.add_case(step, regressions.contains_key(step.id.as_str()));
        }
        counts
    }

    /// Counts one testcase (`regressed`: its check regressed on latency).
    fn add_case(&mut self, step: &StepSummary, regressed: bool) {
        self.tests += 1;
        match step.verdict {
            Some(StepVerdict::Escalated | StepVerdict::Unconfirmed) => self.failures += 1,
            Some(StepVerdict::Pass) if regressed => self.failures += 1,
            Some(StepVerdict::Interrupted) | None => self.errors += 1,
            Some(StepVerdict::Blocked | StepVerdict::Skipped) => self.skipped += 1,
            Some(StepVerdict::Pass) => {}
        }
    }

    fn add(&mut self, other: &Counts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.seconds += other.seconds;
    }

    fn attributes(&self) -> String {
        let Counts {
            tests,
            failures,
            errors,
            skipped,
            seconds,
        } = self;
        format!(
            r#"tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{seconds:.3}""#
        )
    }
}

fn render_suite(
    summary: &RunSummary,
    regressions: &HashMap<&str, &str>,
    counts: &Counts,
) -> String {
    let name = xml(&summary.name);
    let mut out = suite_head(&name, &summary.run_id, &summary.started_at, counts);
    for step in &summary.steps {
        write_testcase(
            &mut out,
            &name,
            step,
            regressions.get(step.id.as_str()).copied(),
        );
    }
    out.push_str(SUITE_TAIL);
    out
}

const SUITE_TAIL: &str = "  </testsuite>\n";

/// `<testsuite …>` and its properties; `name` is escaped already.
fn suite_head(name: &str, run_id: &str, started_at: &str, counts: &Counts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"  <testsuite name="{name}" {} timestamp="{}">"#,
        counts.attributes(),
        xml(started_at)
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"runproof.run_id\" value=\"{}\"/>\n    </properties>",
        xml(run_id)
    );
    out
}

/// Appends one `<testcase>` to `out`; `name` is the suite's (escaped),
/// `regression` why the check regressed on latency, if it did.
fn write_testcase(out: &mut String, name: &str, step: &StepSummary, regression: Option<&str>) {
    let regression = regression.filter(|_| step.verdict == Some(StepVerdict::Pass));
    // Pushed piece by piece: one per check of a sweep.
    out.push_str(r#"    <testcase classname=""#);
    out.push_str(name);
    out.push_str(r#"" name=""#);
    push_xml(out, &step.id);
    out.push_str(r#"" time=""#);
    crate::core::decimal::push_fixed(out, step.duration_ms / 1000.0, 3);
    out.push('"');
    let max = step.max_attempts;
    let mut body = String::new();
    match step.verdict {
        Some(StepVerdict::Pass) => {
            for failed in &step.failed_attempts {
                let _ = writeln!(
                    body,
                    r#"      <flakyFailure type="{}" message="attempt {}/{max}: {}" time="{:.3}"/>"#,
                    failed
                        .class
                        .map_or(failed_type(failed.verdict), |c| c.as_str()),
                    failed.attempt,
                    xml(&failed.reason),
                    failed.duration_ms / 1000.0
                );
            }
            if let Some(why) = regression {
                let _ = writeln!(
                    body,
                    r#"      <failure type="regressed" message="{}"/>"#,
                    xml(why)
                );
            }
            if step.attempts > 1 {
                let _ = writeln!(
                    body,
                    "      <system-out>passed on attempt {}/{max}; evidence seq {}-{}</system-out>",
                    step.attempts, step.seq_range.0, step.seq_range.1
                );
            }
        }
        Some(StepVerdict::Escalated) => {
            let reason = step.reason.as_deref().unwrap_or("");
            let mut detail = String::new();
            for failed in &step.failed_attempts {
                let _ = writeln!(
                    detail,
                    "attempt {}/{max} (seq {}): {}",
                    failed.attempt, failed.seq, failed.reason
                );
            }
            if let Some(hint) = step.escalation.as_ref().and_then(|e| e.hint.as_ref()) {
                let _ = writeln!(detail, "hint: {hint}");
            }
            let _ = writeln!(
                body,
                r#"      <failure type="escalated" message="escalated after {}/{max} attempts: {}">{}</failure>"#,
                step.attempts,
                xml(reason),
                xml(detail.trim_end())
            );
        }
        Some(StepVerdict::Blocked | StepVerdict::Skipped) => {
            let _ = writeln!(
                body,
                r#"      <skipped message="{}"/>"#,
                xml(step.reason.as_deref().unwrap_or(""))
            );
        }
        Some(StepVerdict::Unconfirmed) => {
            let _ = writeln!(
                body,
                r#"      <failure type="unconfirmed" message="{}"/>"#,
                xml(step.reason.as_deref().unwrap_or("not confirmed"))
            );
        }
        Some(StepVerdict::Interrupted) | None => {
            let _ = writeln!(
                body,
                r#"      <error type="interrupted" message="{}"/>"#,
                xml(step
                    .reason
                    .as_deref()
                    .unwrap_or("the run ended before this step finished"))
            );
        }
    }
    if body.is_empty() {
        out.push_str("/>\n");
    } else {
        let _ = write!(out, ">\n{body}    </testcase>\n");
    }
}

/// A sweep's `junit.xml` (and `--junit`), one testcase per check written as
/// each check finishes: a spooled body, then the document with the totals.
pub struct JunitStream {
    spooled: super::spool::Spooled,
    name: String,
    counts: Counts,
    case: String,
}

impl JunitStream {
    /// A stream for the suite `name` into `spooled`'s targets (one section).
    pub fn new(spooled: super::spool::Spooled, name: &str) -> JunitStream {
        JunitStream {
            spooled,
            name: xml(name),
            counts: Counts::default(),
            case: String::new(),
        }
    }

    /// Writes one check's testcase (its samples folded into `step`).
    pub fn case(&mut self, step: &StepSummary, regression: Option<&str>) {
        self.counts.add_case(step, regression.is_some());
        self.case.clear();
        write_testcase(&mut self.case, &self.name, step, regression);
        self.spooled.write(0, &self.case);
    }

    /// Writes the documents: totals, the testcases, the end.
    pub fn finish(
        mut self,
        run_id: &str,
        started_at: &str,
        duration_ms: f64,
    ) -> Vec<(std::path::PathBuf, std::io::Error)> {
        use super::spool::Part;
        self.counts.seconds = duration_ms / 1000.0;
        let head =
            document_head(&self.counts) + &suite_head(&self.name, run_id, started_at, &self.counts);
        let tail = format!("{SUITE_TAIL}{DOCUMENT_TAIL}");
        self.spooled
            .finish(&[Part::Text(&head), Part::Section(0), Part::Text(&tail)])
    }
}

fn failed_type(verdict: crate::core::record::AttemptVerdict) -> &'static str {
    match verdict {
        crate::core::record::AttemptVerdict::Timeout => "timeout",
        _ => "check_failed",
    }
}

/// Escapes text for XML attributes and content, dropping characters XML 1.0
/// cannot carry.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_xml(&mut out, text);
    out
}

/// Appends `text` escaped as [`xml`] escapes it.
fn push_xml(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(xml("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
