//! Steps as a reviewer reads them: a card per step (target, verdict, each
//! attempt with its failure class and reason, probe answers, blobs inline),
//! and for sweeps a latency distribution and a table of checks with the
//! failing and slowest first.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::esc;
use crate::core::record::{check_of_step, AttemptVerdict, Event, StepVerdict};
use crate::core::BlobRef;
use crate::report::bundle_set::{BundleSet, SourceBundle, Suite};
use crate::report::table::format_ms;
use crate::report::{RunSummary, StepSummary};

/// Bytes of one blob shown inline.
const BLOB_CAP: u64 = 16 * 1024;
/// Bytes of blobs on one page: a sweep of failing checks must not make a
/// page no browser opens.
const PAGE_BLOB_CAP: u64 = 4 * 1024 * 1024;
/// Beyond this many steps (a sweep), only steps that did not pass get a card.
const MAX_CARDS_ALL: usize = 200;
/// Rows of the check table.
const MAX_TABLE_ROWS: usize = 1000;

/// What is left of the page's blob allowance.
pub struct BlobBudget(u64);

impl BlobBudget {
    pub fn new() -> Self {
        BlobBudget(PAGE_BLOB_CAP)
    }
}

/// One attempt as the journal tells it.
struct AttemptView {
    /// `ID#k` for a sweep sample, else the step id.
    step: String,
    attempt: u32,
    of: u32,
    verdict: AttemptVerdict,
    duration_ms: f64,
    reason: Option<String>,
    class: Option<String>,
    no_retry: Option<String>,
    blobs: Vec<BlobRef>,
    probes: Vec<String>,
}

/// Per step (check id, samples folded): its target and attempts, and the
/// source bundle that holds its blobs.
#[derive(Default)]
pub struct StepRecords<'a> {
    steps: HashMap<String, StepView<'a>>,
}

struct StepView<'a> {
    source: &'a SourceBundle,
    target: Option<String>,
    attempts: Vec<AttemptView>,
}

impl<'a> StepRecords<'a> {
    /// Reads the journals of the suite's sources.
    pub fn gather(set: &'a BundleSet, suite: &Suite) -> Self {
        let mut steps: HashMap<String, StepView<'a>> = HashMap::new();
        for source in suite.sources.iter().map(|&i| &set.sources[i]) {
            for (_, event) in source.bundle.events() {
                let step_id = match &*event {
                    Event::StepStart { step, .. }
                    | Event::StepPass { step, .. }
                    | Event::AttemptEnd { step, .. }
                    | Event::Probe { step, .. } => step.clone(),
                    _ => continue,
                };
                let check = check_of_step(&step_id).0.to_string();
                let view = steps.entry(check).or_insert_with(|| StepView {
                    source,
                    target: None,
                    attempts: Vec::new(),
                });
                match event.into_inner() {
                    Event::StepStart {
                        target, rendered, ..
                    } => view.target = Some(rendered.unwrap_or(target)),
                    // A sweep's first-attempt pass, in one record.
                    Event::StepPass {
                        target,
                        rendered,
                        max_attempts,
                        duration_ms,
                        blobs,
                        ..
                    } => {
                        view.target = Some(rendered.unwrap_or(target));
                        view.attempts.push(AttemptView {
                            step: step_id,
                            attempt: 1,
                            of: max_attempts,
                            verdict: AttemptVerdict::Pass,
                            duration_ms,
                            reason: None,
                            class: None,
                            no_retry: None,
                            blobs,
                            probes: Vec::new(),
                        });
                    }
                    Event::AttemptEnd {
                        attempt,
                        of,
                        verdict,
                        duration_ms,
                        reason,
                        failure,
                        no_retry,
                        blobs,
                        ..
                    } => {
                        let probes = view
                            .attempts
                            .iter_mut()
                            .rev()
                            .find(|a| a.step == step_id && a.attempt == attempt && a.of == 0)
                            .map(|pending| std::mem::take(&mut pending.probes))
                            .unwrap_or_default();
                        view.attempts
                            .retain(|a| !(a.step == step_id && a.attempt == attempt && a.of == 0));
                        view.attempts.push(AttemptView {
                            step: step_id,
                            attempt,
                            of,
                            verdict,
                            duration_ms,
                            reason,
                            class: failure.map(|f| f.class.to_string()),
                            no_retry,
                            blobs,
                            probes,
                        });
                    }
                    Event::Probe {
                        attempt,
                        probe,
                        detail,
                        ..
                    } => {
                        // Probes come before their attempt's end: park them
                        // on a placeholder (`of == 0`) the end replaces.
                        let line = probe_line(&probe, &detail);
                        match view
                            .attempts
                            .iter_mut()
                            .rev()
                            .find(|a| a.step == step_id && a.attempt == attempt && a.of == 0)
                        {
                            Some(pending) => pending.probes.push(line),
                            None => view.attempts.push(AttemptView {
                                step: step_id,
                                attempt,
                                of: 0,
                                verdict: AttemptVerdict::Interrupted,
                                duration_ms: 0.0,
                                reason: None,
                                class: None,
                                no_retry: None,
                                blobs: Vec::new(),
                                probes: vec![line],
                            }),
                        }
                    }
                    _ => {}
                }
            }
        }
        StepRecords { steps }
    }
}

/// `signed: 200 (3.1 ms)`, `unsigned: 401`, `stale: no answer: …`.
fn probe_line(probe: &str, detail: &serde_json::Map<String, serde_json::Value>) -> String {
    format!("{probe}: {}", crate::report::summary::probe_outcome(detail))
}

fn step_class(verdict: Option<StepVerdict>) -> &'static str {
    match verdict {
        Some(StepVerdict::Pass) => "ok",
        Some(StepVerdict::Escalated | StepVerdict::Unconfirmed) => "bad",
        _ => "warn",
    }
}

/// A card per step (only the problems, for a large sweep).
pub fn step_cards(out: &mut String, suite: &Suite, index: &StepRecords, budget: &mut BlobBudget) {
    let steps = &suite.summary.steps;
    let all = steps.len() <= MAX_CARDS_ALL;
    let shown: Vec<&StepSummary> = steps
        .iter()
        .filter(|s| all || s.verdict != Some(StepVerdict::Pass) || s.attempts > 1)
        .collect();
    out.push_str("<h3 class=\"steps-title\">Steps</h3>\n");
    if !all {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} of {} checks have a card: the others passed on their first attempt (see the table).</p>",
            shown.len(),
            steps.len()
        );
    }
    for step in shown {
        step_card(out, step, index.steps.get(&step.id), budget);
    }
}

fn step_card(
    out: &mut String,
    step: &StepSummary,
    view: Option<&StepView>,
    budget: &mut BlobBudget,
) {
    let class = step_class(step.verdict);
    let problem = if class == "ok" && step.attempts <= 1 {
        ""
    } else {
        " problem"
    };
    let _ = write!(
        out,
        "<article class=\"step{problem}\" data-step=\"{}\"><h4><span class=\"badge {class}\">{}</span> <code>{}</code>",
        esc(&step.id),
        esc(&step.verdict_label()),
        esc(&step.id)
    );
    if let Some(title) = &step.title {
        let _ = write!(out, " <span class=\"muted\">{}</span>", esc(title));
    }
    out.push_str("</h4>\n<dl class=\"facts\">");
    let _ = write!(out, "<dt>Kind</dt><dd>{}</dd>", esc(&step.kind));
    if let Some(target) = view.and_then(|v| v.target.as_ref()) {
        let _ = write!(out, "<dt>Target</dt><dd><code>{}</code></dd>", esc(target));
    }
    let _ = write!(
        out,
        "<dt>Attempts</dt><dd>{}/{} in {}</dd>",
        step.attempts,
        step.max_attempts,
        format_ms(step.duration_ms)
    );
    if let Some(class) = step.class {
        let _ = write!(
            out,
            "<dt>Failure class</dt><dd>{}</dd>",
            esc(class.as_str())
        );
    }
    if let Some(reason) = &step.reason {
        let _ = write!(
            out,
            "<dt>Reason</dt><dd class=\"reason\">{}</dd>",
            esc(reason)
        );
    }
    out.push_str("</dl>\n");
    if let Some(escalation) = &step.escalation {
        out.push_str("<div class=\"escalation\" role=\"note\"><p><strong>Escalated</strong>");
        if let Some(owner) = &escalation.owner {
            let _ = write!(out, " to {}", esc(owner));
        }
        let _ = write!(out, ": {}</p>", esc(&escalation.last_reason));
        if let Some(hint) = &escalation.hint {
            let _ = write!(out, "<p>Hint: {}</p>", esc(hint));
        }
        if let Some(why) = &escalation.retries_skipped {
            let _ = write!(out, "<p>Retries skipped: {}</p>", esc(why));
        }
        for collected in &escalation.collected {
            let _ = write!(
                out,
                "<p>Collected: <code>{}</code>{}</p>",
                esc(&collected.command),
                collected
                    .exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default()
            );
        }
        out.push_str("</div>\n");
    }
    if let Some(view) = view {
        if !view.attempts.is_empty() {
            out.push_str("<ol class=\"attempts\">\n");
            let last = view.attempts.len() - 1;
            for (i, attempt) in view.attempts.iter().enumerate() {
                // The evidence of the attempt that decided a failed step is
                // shown open; the rest is one click away.
                let open = i == last && attempt.verdict != AttemptVerdict::Pass;
                attempt_item(out, view.source, attempt, open, budget);
            }
            out.push_str("</ol>\n");
        }
    }
    out.push_str("</article>\n");
}

fn attempt_item(
    out: &mut String,
    source: &SourceBundle,
    a: &AttemptView,
    open: bool,
    budget: &mut BlobBudget,
) {
    let class = match a.verdict {
        AttemptVerdict::Pass => "ok",
        AttemptVerdict::Fail => "bad",
        _ => "warn",
    };
    let word = match a.verdict {
        AttemptVerdict::Pass => "passed",
        AttemptVerdict::Fail => "failed",
        AttemptVerdict::Timeout => "timed out",
        AttemptVerdict::Interrupted => "interrupted",
    };
    let sample = check_of_step(&a.step)
        .1
        .map(|k| format!("sample {k}, "))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<li class=\"attempt\"><span class=\"badge {class}\">{word}</span> {sample}attempt {}/{} · {}",
        a.attempt,
        a.of,
        format_ms(a.duration_ms)
    );
    if a.verdict != AttemptVerdict::Pass {
        if let Some(reason) = &a.reason {
            let class = a
                .class
                .as_deref()
                .map(|c| format!("{c}: "))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<div class=\"reason\">{}{}</div>",
                esc(&class),
                esc(reason)
            );
        }
    }
    if let Some(why) = &a.no_retry {
        let _ = write!(out, "<div class=\"muted\">No retry: {}</div>", esc(why));
    }
    if !a.probes.is_empty() {
        out.push_str("<ul class=\"probes\">");
        for probe in &a.probes {
            let _ = write!(out, "<li>{}</li>", esc(probe));
        }
        out.push_str("</ul>");
    }
    for blob in &a.blobs {
        blob_block(out, source, blob, open, budget);
    }
    out.push_str("</li>\n");
}

/// A blob inline: redacted on disk, escaped and capped here.
fn blob_block(
    out: &mut String,
    source: &SourceBundle,
    blob: &BlobRef,
    open: bool,
    budget: &mut BlobBudget,
) {
    let role = esc(&blob.role.replace(['.', '_'], " "));
    let cap = BLOB_CAP.min(budget.0);
    let _ = write!(
        out,
        "<details class=\"blob\"{}><summary>{role} <span class=\"muted\">({} bytes{})</span></summary>",
        if open { " open" } else { "" },
        blob.size,
        if blob.truncated { ", cut when recorded" } else { "" }
    );
    match source.bundle.blob_excerpt(&blob.digest, cap) {
        _ if cap == 0 => {
            out.push_str("<p class=\"muted\">(not shown: the page's blob allowance is used up)</p>")
        }
        Some((bytes, _)) if bytes.contains(&0) => {
            out.push_str("<p class=\"muted\">(binary)</p>");
        }
        Some((bytes, more)) => {
            budget.0 -= bytes.len() as u64;
            let text = String::from_utf8_lossy(&bytes);
            let _ = write!(out, "<pre class=\"blob-text\">{}</pre>", esc(&text));
            if more {
                let _ = write!(
                    out,
                    "<p class=\"muted\">… cut at {} KiB here; the whole blob is in the bundle: <code>blobs/sha256/{}</code></p>",
                    cap / 1024,
                    esc(blob.digest.trim_start_matches("sha256:"))
                );
            }
        }
        None => {
            let _ = write!(
                out,
                "<p class=\"muted\">(cannot read {})</p>",
                esc(&blob.digest)
            );
        }
    }
    out.push_str("</details>");
}

/// Latency bucket upper bounds, ms (the last bucket is open).
const BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// A histogram of every attempt's latency, as horizontal bars.
pub fn latency_plot(out: &mut String, summary: &RunSummary) {
    let mut latencies: Vec<f64> = summary
        .steps
        .iter()
        .flat_map(|s| s.attempt_durations_ms.iter().copied())
        .collect();
    if latencies.is_empty() {
        return;
    }
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let mut counts = vec![0usize; BUCKETS.len() + 1];
    for &ms in &latencies {
        let bucket = BUCKETS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(BUCKETS.len());
        counts[bucket] += 1;
    }
    let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
    let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    let max = *counts.iter().max().unwrap_or(&1) as f64;
    let _ = writeln!(
        out,
        "<figure class=\"latency\"><figcaption>Latency of {} attempts · p50 {} · p95 {} · p99 {} · max {}</figcaption><ol class=\"histogram\">",
        latencies.len(),
        format_ms(quantile(0.5)),
        format_ms(quantile(0.95)),
        format_ms(quantile(0.99)),
        format_ms(*latencies.last().unwrap_or(&0.0))
    );
    for (i, &count) in counts.iter().enumerate().take(last + 1).skip(first) {
        let label = match (i.checked_sub(1).map(|p| BUCKETS[p]), BUCKETS.get(i)) {
            (None, Some(hi)) => format!("≤ {}", format_ms(*hi)),
            (Some(lo), Some(hi)) => format!("{}–{}", format_ms(lo), format_ms(*hi)),
            (Some(lo), None) => format!("> {}", format_ms(lo)),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "<li><span class=\"bucket\">{label}</span><span class=\"bar-track\"><span class=\"bar\" style=\"width:{:.2}%\"></span></span><span class=\"count\">{count}</span></li>",
            count as f64 / max * 100.0
        );
    }
    out.push_str("</ol></figure>\n");
}

/// The checks, failing first, then slowest.
pub fn check_table(out: &mut String, summary: &RunSummary) {
    let mut checks: Vec<&StepSummary> = summary.steps.iter().collect();
    checks.sort_by(|a, b| {
        let rank = |s: &StepSummary| match s.verdict {
            Some(StepVerdict::Pass) if s.attempts > 1 => 1,
            Some(StepVerdict::Pass) => 2,
            _ => 0,
        };
        rank(a)
            .cmp(&rank(b))
            .then(b.duration_ms.total_cmp(&a.duration_ms))
    });
    out.push_str(
        "<table class=\"checks\"><caption>Checks, failing and slowest first</caption>\
         <thead><tr><th scope=\"col\">Check</th><th scope=\"col\">Verdict</th><th scope=\"col\">Time</th><th scope=\"col\">Reason</th></tr></thead><tbody>\n",
    );
    for step in checks.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(
            out,
            "<tr data-step=\"{}\"><td><code>{}</code></td><td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td></tr>",
            esc(&step.id),
            esc(&step.id),
            step_class(step.verdict),
            esc(&step.verdict_label()),
            format_ms(step.duration_ms),
            esc(step.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>\n");
    if checks.len() > MAX_TABLE_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} more checks not listed (see the JUnit or JSON report).</p>",
            checks.len() - MAX_TABLE_ROWS
        );
    }
}
