//! `summary.md`: the run for people — a table of steps, then each escalation
//! with its attempts, last reason and hint. Also suitable for a CI job summary.

use super::summary::failure_text;
use std::fmt::Write as _;

use super::summary::RunSummary;
use super::table::format_ms;
use crate::core::record::{RunVerdict, StepVerdict};
use crate::sweep::run::{CheckReport, SweepReport};

/// Renders the summary as GitHub-flavoured Markdown.
pub fn render(summary: &RunSummary, bundle_name: &str) -> String {
    render_run(
        summary,
        &ReportContext {
            bundle: bundle_name.to_string(),
            ..ReportContext::default()
        },
    )
}

/// What `summary.md` says about the bundle beyond the run's events; all of
/// it is in the bundle's header, so `verify` can regenerate the report.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// The bundle's path relative to the artifacts folder
    /// (`<name>/<timestamp>-<run id>`).
    pub bundle: String,
    /// Who ran it.
    pub operator: Option<String>,
    /// `SHA256:…` of the key that signs the seal.
    pub signing_key: Option<String>,
}

/// Renders a run's `summary.md`, ending with the command that verifies the
/// bundle from the artifacts folder.
pub fn render_run(summary: &RunSummary, context: &ReportContext) -> String {
    let bundle_name = context.bundle.as_str();
    let mut out = String::new();
    let escalated = count(summary, StepVerdict::Escalated);
    let blocked = count(summary, StepVerdict::Blocked);
    let headline = match summary.verdict {
        Some(RunVerdict::Pass) => "PASSED".to_string(),
        Some(RunVerdict::Escalated) => format!("FAILED ({escalated} escalated, {blocked} blocked)"),
        Some(RunVerdict::Halted) => format!("HALTED ({escalated} escalated)"),
        Some(RunVerdict::Interrupted) => "INTERRUPTED".to_string(),
        Some(RunVerdict::Unconfirmed) => format!(
            "UNCONFIRMED ({} waiting for a person)",
            count(summary, StepVerdict::Unconfirmed)
        ),
        None => "UNFINISHED".to_string(),
    };
    let _ = writeln!(out, "### runproof · {} · {headline}\n", cell(&summary.name));
    let _ = writeln!(
        out,
        "Run `{}`, started {}.\n",
        summary.run_id, summary.started_at
    );
    out.push_str("| # | Step | Kind | Verdict | Attempts | Time |\n");
    out.push_str("|---|------|------|---------|---------:|-----:|\n");
    for (i, step) in summary.steps.iter().enumerate() {
        let verdict = match step.verdict {
            Some(StepVerdict::Escalated) => "**escalated**".to_string(),
            _ => step.verdict_label(),
        };
        let attempts = if step.attempts == 0 {
            "-".to_string()
        } else {
            format!("{}/{}", step.attempts, step.max_attempts)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            cell(&step.id),
            cell(&step.kind),
            verdict,
            attempts,
            format_ms(step.duration_ms)
        );
    }

    let not_run: Vec<_> = summary
        .steps
        .iter()
        .filter(|s| matches!(s.verdict, Some(StepVerdict::Blocked | StepVerdict::Skipped)))
        .collect();
    if !not_run.is_empty() {
        out.push_str("\n**Not run**\n\n");
        for step in not_run {
            let _ = writeln!(
                out,
                "- `{}` ({}): {}",
                step.id,
                step.verdict_label(),
                cell(step.reason.as_deref().unwrap_or(""))
            );
        }
    }

    for step in summary.steps.iter().filter(|s| s.escalation.is_some()) {
        let escalation = step.escalation.as_ref().expect("filtered");
        let _ = writeln!(
            out,
            "\n<details open><summary>{} — escalated</summary>\n",
            cell(&step.id)
        );
        if let Some(owner) = &escalation.owner {
            let _ = writeln!(out, "- **Owner:** {}", cell(owner));
        }
        let last_class = escalation.attempts.last().and_then(|a| a.class);
        let _ = writeln!(
            out,
            "- **Last reason:** {}",
            cell(&failure_text(last_class, &escalation.last_reason))
        );
        if let Some(hint) = &escalation.hint {
            let _ = writeln!(out, "- **Hint:** {}", cell(hint));
        }
        if let Some(why) = &escalation.retries_skipped {
            let _ = writeln!(out, "- **Retries skipped:** {}", cell(why));
        }
        for collected in &escalation.collected {
            let outcome = match (&collected.exit_code, &collected.error) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(error)) => error.clone(),
                (None, None) => "no exit code".to_string(),
            };
            let blobs: Vec<String> = collected
                .blobs
                .iter()
                .map(|b| format!("`{}` ({} bytes)", b.digest, b.size))
                .collect();
            let _ = writeln!(
                out,
                "- **Collected:** `{}` ({}){}",
                cell(&collected.command).replace('`', "'"),
                cell(&outcome),
                if blobs.is_empty() {
                    String::new()
                } else {
                    format!(": {}", blobs.join(", "))
                }
            );
        }
        out.push_str("\n```text\n");
        for attempt in &escalation.attempts {
            let _ = writeln!(
                out,
                "attempt {}/{} (seq {}): {}",
                attempt.attempt,
                step.max_attempts,
                attempt.seq,
                failure_text(attempt.class, &attempt.reason).replace("```", "'''")
            );
        }
        out.push_str("```\n</details>\n");
    }
    let mut facts = vec![
        format!("Bundle `{bundle_name}`"),
        format!("{} records", summary.records),
    ];
    if let Some(operator) = &context.operator {
        facts.push(format!("run by {}", cell(operator)));
    }
    if let Some(key) = &context.signing_key {
        facts.push(format!("seal signed by `{key}`"));
    }
    let _ = writeln!(out, "\n{}", facts.join(" · "));
    let _ = writeln!(
        out,
        "\nVerify it from the artifacts folder:\n\n```sh\nrunproof verify {bundle_name}\n```"
    );
    out
}

fn count(summary: &RunSummary, verdict: StepVerdict) -> usize {
    summary
        .steps
        .iter()
        .filter(|s| s.verdict == Some(verdict))
        .count()
}

/// Escapes text for a table cell or inline use.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_cell(&mut out, text);
    out
}

/// Appends `text` as a table cell, escaped as it is written: `|` would end
/// the cell, `<` open markup, a newline end the row (it becomes a space).
fn push_cell(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['|', '<', '\n']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'|' => "\\|",
            b'<' => "&lt;",
            _ => " ",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// A sweep's `summary.md` (and `--markdown`, for a CI job summary:
/// `>> $GITHUB_STEP_SUMMARY`), written as checks finish: one table, with the
/// checks that did not pass plainly first (failures first, then by id; the
/// first [`LISTED_MAX`](crate::sweep::tally::LISTED_MAX) of them, kept by the
/// tally), then every other check in the order it finished.
pub struct MarkdownStream {
    spooled: super::spool::Spooled,
    row: String,
}

const SWEEP_TABLE_HEAD: &str = "| Check | Kind | Verdict | Attempts | p50 | p95 | Reason |\n\
                                |-------|------|---------|---------:|----:|----:|--------|\n";

impl MarkdownStream {
    /// A stream into `spooled`'s targets (one section).
    pub fn new(spooled: super::spool::Spooled) -> MarkdownStream {
        MarkdownStream {
            spooled,
            row: String::new(),
        }
    }

    /// One finished check; a `listed` one is written at the end, in the
    /// tally's list, instead.
    pub fn check(&mut self, check: &CheckReport, listed: bool) {
        if listed {
            return;
        }
        self.row.clear();
        sweep_row(&mut self.row, check);
        self.spooled.write(0, &self.row);
    }

    /// Writes the files: headline, the listed checks, the streamed rows, the
    /// note on checks not listed first, the run line.
    pub fn finish(
        self,
        report: &SweepReport,
        name: &str,
        bundle: &str,
    ) -> Vec<(std::path::PathBuf, std::io::Error)> {
        use super::spool::Part;
        let tally = &report.tally;
        let (healthy, total) = (tally.healthy(), tally.total());
        let status = if healthy == total { "PASSED" } else { "FAILED" };
        let mut head = String::new();
        let _ = writeln!(
            head,
            "### runproof sweep · {} · {status} ({healthy}/{total} healthy)\n",
            cell(name)
        );
        head.push_str(SWEEP_TABLE_HEAD);
        for check in tally.not_passing() {
            sweep_row(&mut head, check);
        }
        let mut tail = String::new();
        if tally.unlisted() > 0 {
            let _ = writeln!(
                tail,
                "\nThe first {} checks that did not pass are listed first; {} more are among the others, in the order they finished.",
                tally.not_passing().len(),
                tally.unlisted()
            );
        }
        let _ = writeln!(
            tail,
            "\nRun `{}` · bundle `{}`\n",
            report.run_id,
            cell(bundle)
        );
        self.spooled
            .finish(&[Part::Text(&head), Part::Section(0), Part::Text(&tail)])
    }
}

/// One check's row of the sweep table, pushed piece by piece: one per
/// check of a sweep, where `write!` cost 3,000 instructions a row.
fn sweep_row(out: &mut String, c: &CheckReport) {
    use super::table::Latency;
    let latency = |out: &mut String, ms: Option<f64>| match ms {
        Some(ms) => Latency(ms).push_to(out),
        None => out.push('-'),
    };
    out.push_str("| ");
    push_cell(out, &c.id);
    out.push_str(" | ");
    push_cell(out, c.kind);
    out.push_str(" | ");
    if c.verdict.healthy() {
        out.push_str(c.verdict.as_str());
    } else {
        out.push_str("**");
        out.push_str(c.verdict.as_str());
        out.push_str("**");
    }
    out.push_str(" | ");
    crate::core::decimal::push_integer(out, u64::from(c.attempts_total));
    out.push_str(" | ");
    latency(out, c.latency.as_ref().map(|l| l.p50_ms));
    out.push_str(" | ");
    latency(out, c.latency.as_ref().map(|l| l.p95_ms));
    out.push_str(" | ");
    push_cell(out, c.reason.as_deref().unwrap_or(""));
    out.push_str(" |\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::run::CheckVerdict;
    use crate::sweep::stats::LatencyStats;

    /// The row as it was written with `write!` before [`sweep_row`] pushed
    /// its pieces.
    fn sweep_row_formatted(c: &CheckReport) -> String {
        use super::super::table::Latency;
        use std::fmt::Write;
        let latency = |ms: Option<f64>| ms.map_or("-".to_string(), |ms| format!("{}", Latency(ms)));
        let verdict = if c.verdict.healthy() {
            c.verdict.as_str().to_string()
        } else {
            format!("**{}**", c.verdict.as_str())
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| {} | {} | {verdict} | {} | {} | {} | {} |",
            cell(&c.id),
            cell(c.kind),
            c.attempts_total,
            latency(c.latency.as_ref().map(|l| l.p50_ms)),
            latency(c.latency.as_ref().map(|l| l.p95_ms)),
            cell(c.reason.as_deref().unwrap_or(""))
        );
        out
    }

    #[test]
    fn sweep_rows_are_written_as_the_formatter_wrote_them() {
        let verdicts = [
            CheckVerdict::Pass,
            CheckVerdict::Flaky,
            CheckVerdict::Fail,
            CheckVerdict::Regressed,
            CheckVerdict::Blocked,
            CheckVerdict::Interrupted,
        ];
        let latencies = [
            0.0,
            0.004_5,
            0.125,
            1.005,
            9.995,
            9.999_9,
            12.25,
            999.95,
            1500.0,
            86_400_000.0,
        ];
        let mut rows = 0;
        for (i, verdict) in verdicts.into_iter().enumerate() {
            for (j, &p50) in latencies.iter().enumerate() {
                let p95 = latencies[(i + j) % latencies.len()];
                let report = CheckReport {
                    id: ["api", "a|b<c\nd", "checkout-ünïcode"][j % 3].to_string(),
                    kind: "http",
                    verdict,
                    attempts_total: (i * j) as u32,
                    latency: (j % 4 != 3).then_some(LatencyStats {
                        samples: 1,
                        min_ms: p50,
                        p50_ms: p50,
                        p95_ms: p95,
                        p99_ms: p95,
                        max_ms: p95,
                    }),
                    reason: (j % 2 == 1).then(|| "status 503 | want <200>\nretry".to_string()),
                    ..CheckReport::default()
                };
                let mut row = String::new();
                sweep_row(&mut row, &report);
                assert_eq!(row, sweep_row_formatted(&report));
                rows += 1;
            }
        }
        assert_eq!(rows, 60);
    }
}
