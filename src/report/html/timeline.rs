//! A bundle's run on a time axis: one row per step, one mark per attempt
//! (coloured by verdict), per backoff (hatched) and per escalation. Plain
//! HTML boxes positioned in percent of the run, so it fits any width; times
//! come from the journal's monotonic clock (`mono_ns`).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::esc;
use crate::core::record::{AttemptVerdict, Event};
use crate::report::bundle_set::SourceBundle;
use crate::report::table::format_ms;

/// Rows shown at most; beyond, only steps with something to see (a failed
/// attempt, a backoff, an escalation) are kept.
const MAX_ROWS: usize = 80;

#[derive(Debug)]
enum MarkKind {
    Attempt(AttemptVerdict),
    Backoff,
    Escalation,
}

#[derive(Debug)]
struct Mark {
    kind: MarkKind,
    start_ms: f64,
    end_ms: f64,
    label: String,
}

#[derive(Debug, Default)]
struct Row {
    step: String,
    marks: Vec<Mark>,
    eventful: bool,
}

/// Renders the timeline of one source bundle.
pub fn render(out: &mut String, source: &SourceBundle, name_source: bool) {
    let mut rows: Vec<Row> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut starts: HashMap<(String, u32), f64> = HashMap::new();
    let mut end_ms = 0f64;
    for (_, mono_ns, event) in source.bundle.timed_events() {
        let at = mono_ns as f64 / 1e6;
        end_ms = end_ms.max(at);
        let mut row_of = |step: &str| -> usize {
            *index.entry(step.to_string()).or_insert_with(|| {
                rows.push(Row {
                    step: step.to_string(),
                    ..Row::default()
                });
                rows.len() - 1
            })
        };
        match &*event {
            Event::AttemptStart { step, attempt, .. } => {
                row_of(step);
                starts.insert((step.clone(), *attempt), at);
            }
            Event::AttemptEnd {
                step,
                attempt,
                of,
                verdict,
                duration_ms,
                reason,
                ..
            } => {
                let row = row_of(step);
                let start = starts
                    .remove(&(step.clone(), *attempt))
                    .unwrap_or((at - duration_ms).max(0.0));
                let mut label = format!(
                    "{step}: attempt {attempt}/{of} {} in {}",
                    verdict_word(*verdict),
                    format_ms(*duration_ms)
                );
                if let Some(reason) = reason
                    .as_deref()
                    .filter(|_| *verdict != AttemptVerdict::Pass)
                {
                    let _ = write!(label, ": {reason}");
                }
                rows[row].eventful |= *verdict != AttemptVerdict::Pass;
                rows[row].marks.push(Mark {
                    kind: MarkKind::Attempt(*verdict),
                    start_ms: start,
                    end_ms: at,
                    label,
                });
            }
            // A sweep's first-attempt pass: its one attempt ended now.
            Event::StepPass {
                step,
                max_attempts,
                duration_ms,
                ..
            } => {
                let row = row_of(step);
                rows[row].marks.push(Mark {
                    kind: MarkKind::Attempt(AttemptVerdict::Pass),
                    start_ms: (at - duration_ms).max(0.0),
                    end_ms: at,
                    label: format!(
                        "{step}: attempt 1/{max_attempts} {} in {}",
                        verdict_word(AttemptVerdict::Pass),
                        format_ms(*duration_ms)
                    ),
                });
            }
            Event::Backoff {
                step,
                after_attempt,
                delay_ms,
            } => {
                let row = row_of(step);
                rows[row].eventful = true;
                let delay = *delay_ms as f64;
                end_ms = end_ms.max(at + delay);
                rows[row].marks.push(Mark {
                    kind: MarkKind::Backoff,
                    start_ms: at,
                    end_ms: at + delay,
                    label: format!(
                        "{step}: backoff {} after attempt {after_attempt}",
                        format_ms(delay)
                    ),
                });
            }
            Event::Escalation(escalation) => {
                let row = row_of(&escalation.step);
                rows[row].eventful = true;
                rows[row].marks.push(Mark {
                    kind: MarkKind::Escalation,
                    start_ms: at,
                    end_ms: at,
                    label: format!("{}: escalated: {}", escalation.step, escalation.last_reason),
                });
            }
            _ => {}
        }
    }
    rows.retain(|r| !r.marks.is_empty());
    if rows.is_empty() {
        return;
    }
    let total_rows = rows.len();
    if rows.len() > MAX_ROWS {
        rows.retain(|r| r.eventful);
        rows.truncate(MAX_ROWS);
    }
    for row in &mut rows {
        row.marks.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    }
    let span = end_ms.max(1.0);
    let pct = |ms: f64| (ms / span * 100.0).clamp(0.0, 100.0);
    let caption = if name_source {
        format!("Timeline of {}", esc(&source.path))
    } else {
        "Timeline".to_string()
    };
    let _ = writeln!(
        out,
        "<figure class=\"timeline\" aria-label=\"{caption}\"><figcaption>{caption} \
         <span class=\"muted\">({} in all)</span></figcaption>",
        format_ms(span)
    );
    out.push_str(
        "<p class=\"legend\"><span class=\"key attempt-pass\"></span> passed \
         <span class=\"key attempt-fail\"></span> failed \
         <span class=\"key attempt-timeout\"></span> timed out \
         <span class=\"key backoff\"></span> backoff \
         <span class=\"key-escalation\" aria-hidden=\"true\">▲</span> escalation</p>\n",
    );
    out.push_str("<ol class=\"rows\">\n");
    for row in &rows {
        let _ = write!(
            out,
            "<li class=\"row\" data-step=\"{}\"><span class=\"row-label\">{}</span><span class=\"track\">",
            esc(&row.step),
            esc(&row.step)
        );
        for mark in &row.marks {
            let (class, name) = match mark.kind {
                MarkKind::Attempt(verdict) => (
                    match verdict {
                        AttemptVerdict::Pass => "mark attempt-pass",
                        AttemptVerdict::Fail => "mark attempt-fail",
                        AttemptVerdict::Timeout => "mark attempt-timeout",
                        AttemptVerdict::Interrupted => "mark attempt-interrupted",
                    },
                    "attempt",
                ),
                MarkKind::Backoff => ("mark backoff", "backoff"),
                MarkKind::Escalation => ("mark escalation", "escalation"),
            };
            let left = pct(mark.start_ms);
            let width = (pct(mark.end_ms) - left).max(0.0);
            let glyph = if name == "escalation" { "▲" } else { "" };
            let _ = write!(
                out,
                "<span class=\"{class}\" data-mark=\"{name}\" data-t=\"{:.3}\" \
                 style=\"left:{left:.3}%;width:{width:.3}%\" title=\"{}\" role=\"img\" aria-label=\"{}\">{glyph}</span>",
                mark.start_ms,
                esc(&mark.label),
                esc(&mark.label)
            );
        }
        out.push_str("</span></li>\n");
    }
    out.push_str("</ol>\n");
    let _ = writeln!(
        out,
        "<p class=\"axis\"><span>0</span><span>{}</span><span>{}</span></p>",
        format_ms(span / 2.0),
        format_ms(span)
    );
    if rows.len() < total_rows {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} of {total_rows} steps shown: the others passed on their first attempt.</p>",
            rows.len()
        );
    }
    out.push_str("</figure>\n");
}

fn verdict_word(verdict: AttemptVerdict) -> &'static str {
    match verdict {
        AttemptVerdict::Pass => "passed",
        AttemptVerdict::Fail => "failed",
        AttemptVerdict::Timeout => "timed out",
        AttemptVerdict::Interrupted => "interrupted",
    }
}
