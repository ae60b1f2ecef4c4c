//! The live terminal view of a run: a spinner while a step runs (only on a
//! TTY), and one line per notable event. Every line passes through the
//! redactor: this is the only writer of run output to the terminal.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::paint::Paint;
use super::summary::failure_text;
use super::table::format_ms;
use crate::core::record::{AttemptVerdict, Event, StepVerdict};
use crate::engine::RunObserver;
use crate::evidence::Redacted;
use crate::evidence::Redactor;

/// Prints run events as they happen.
pub struct TerminalReporter {
    redactor: Arc<Redactor>,
    out: Box<dyn Write + Send>,
    spinner: Option<ProgressBar>,
    total: usize,
    done: usize,
    paint: Paint,
}

impl TerminalReporter {
    /// Writes lines to `out`; with `spinner`, a progress spinner is drawn on
    /// stderr (the caller decides: only when both streams are terminals).
    pub fn new(redactor: Arc<Redactor>, out: Box<dyn Write + Send>, spinner: bool) -> Self {
        let spinner = spinner.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        TerminalReporter {
            redactor,
            out,
            spinner,
            total: 0,
            done: 0,
            paint: Paint::default(),
        }
    }

    /// Colours verdict words (only for a terminal that wants colour).
    pub fn with_paint(mut self, paint: Paint) -> Self {
        self.paint = paint;
        self
    }

    /// Prints one line (redacted) without tearing the spinner.
    pub fn line(&mut self, text: &str) {
        let text = self.redactor.redact(text);
        match &self.spinner {
            Some(bar) => bar.println(text.as_ref()),
            None => {
                let _ = writeln!(self.out, "{text}");
            }
        }
    }

    /// Removes the spinner before the final table is printed.
    pub fn finish(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        let _ = self.out.flush();
    }
}

impl RunObserver for TerminalReporter {
    fn observe(&mut self, _seq: u64, event: &Redacted<Event>) {
        let event: &Event = event;
        match event {
            Event::RunStart { steps, planned, .. } => {
                self.total = planned.map_or(steps.len(), |n| n as usize);
                if let Some(bar) = &self.spinner {
                    bar.set_length(self.total as u64);
                }
            }
            Event::StepStart {
                step,
                target,
                rendered,
                ..
            } => {
                // What is being checked, vars filled in (secrets stay masked).
                let target = rendered.as_deref().unwrap_or(target);
                if let Some(bar) = &self.spinner {
                    bar.set_message(
                        self.redactor
                            .redact(&format!("{step}: {target}"))
                            .into_owned(),
                    );
                }
            }
            Event::AttemptStart { step, attempt, of } if *attempt > 1 => {
                if let Some(bar) = &self.spinner {
                    bar.set_message(format!("{step}: attempt {attempt}/{of}"));
                }
            }
            Event::AttemptEnd {
                step,
                attempt,
                of,
                verdict,
                reason,
                failure,
                no_retry,
                ..
            } if *verdict != AttemptVerdict::Pass => {
                let what = match verdict {
                    AttemptVerdict::Timeout => "timed out",
                    AttemptVerdict::Interrupted => "interrupted",
                    _ => "failed",
                };
                let reason =
                    failure_text(failure.map(|f| f.class), reason.as_deref().unwrap_or(""));
                self.line(&format!(
                    "  {step}: attempt {attempt}/{of} {what}: {reason}"
                ));
                if let Some(why) = no_retry {
                    self.line(&format!("  {step}: not retrying: {why}"));
                }
            }
            // A request deliberately not sent (the `webhook` check's signed
            // delivery in a read-only run): the PASS line alone would hide it.
            Event::Probe {
                step,
                attempt,
                probe,
                detail,
                ..
            } => {
                if let Some(why) = detail.get("not_sent").and_then(|v| v.as_str()) {
                    self.line(&format!(
                        "  {step}: attempt {attempt}: {probe} delivery {why}"
                    ));
                }
            }
            Event::Backoff { step, delay_ms, .. } => {
                self.line(&format!(
                    "  {step}: retrying in {}",
                    format_ms(*delay_ms as f64)
                ));
            }
            Event::Escalation(escalation) => {
                let last_class = escalation.attempts.last().and_then(|a| a.class);
                self.line(&format!(
                    "{} {} after {} attempt(s): {}",
                    self.paint.verdict("ESCALATED"),
                    escalation.step,
                    escalation.attempts.len(),
                    failure_text(last_class, &escalation.last_reason)
                ));
                if let Some(owner) = &escalation.owner {
                    self.line(&format!("  owner: {owner}"));
                }
                for collected in &escalation.collected {
                    let outcome = match (&collected.exit_code, &collected.error) {
                        (Some(code), _) => format!("exit {code}"),
                        (None, Some(error)) => error.clone(),
                        (None, None) => "no exit code".to_string(),
                    };
                    self.line(&format!(
                        "  collected: {} ({outcome}, {} blob(s))",
                        collected.command,
                        collected.blobs.len()
                    ));
                }
                if let Some(hint) = &escalation.hint {
                    self.line(&format!("  hint:  {hint}"));
                }
            }
            Event::StepEnd {
                step,
                verdict,
                attempts,
                duration_ms,
                reason,
                earlier,
            } => {
                self.done += 1;
                if let Some(bar) = &self.spinner {
                    bar.set_position(self.done as u64);
                }
                let label = match verdict {
                    StepVerdict::Pass => "PASS",
                    StepVerdict::Escalated => "FAIL",
                    StepVerdict::Blocked => "BLOCKED",
                    StepVerdict::Skipped => "SKIP",
                    StepVerdict::Interrupted => "INTERRUPTED",
                    StepVerdict::Unconfirmed => "WAITING",
                };
                let mut text = format!(
                    "{}{} {step}",
                    self.paint.verdict(label),
                    " ".repeat(7usize.saturating_sub(label.len()))
                );
                if *attempts > 0 {
                    text.push_str(&format!(
                        " ({attempts} attempt{}, {})",
                        if *attempts == 1 { "" } else { "s" },
                        format_ms(*duration_ms)
                    ));
                }
                // A step that passed in the resumed run says so.
                if *verdict != StepVerdict::Pass || earlier.is_some() {
                    if let Some(reason) = reason {
                        text.push_str(&format!(": {reason}"));
                    }
                }
                self.line(&text);
            }
            Event::Notify {
                step,
                target,
                attempt,
                of,
                delivered,
                status,
                error,
                ..
            } => {
                let outcome = match (delivered, status, error) {
                    (true, Some(status), _) => format!("sent (HTTP {status})"),
                    (_, _, Some(error)) => format!("attempt {attempt}/{of} failed: {error}"),
                    _ => format!("attempt {attempt}/{of} failed"),
                };
                self.line(&format!("  {step}: notify {target}: {outcome}"));
            }
            _ => {}
        }
    }
}

/// One terminal line for a `delivery` record (`webhook listen`), from the
/// journal's redacted event; `None` for any other record.
pub fn delivery_line(event: &Redacted<Event>) -> Option<String> {
    let Event::Delivery {
        delivery_id,
        verdict,
        status,
        reason,
        detail,
        ..
    } = &**event
    else {
        return None;
    };
    let text = |key: &str| detail.get(key).and_then(|v| v.as_str());
    let number = |key: &str| detail.get(key).and_then(|v| v.as_i64());
    let mut line = format!(
        "{} {status} {verdict} delivery={}",
        text("received_at").unwrap_or("-"),
        delivery_id.as_deref().unwrap_or("-"),
    );
    if let Some(event) = text("event") {
        line.push_str(&format!(" event={event}"));
    }
    if let Some(id) = number("conversation_id") {
        line.push_str(&format!(" conversation={id}"));
    }
    if let Some(id) = number("message_id") {
        line.push_str(&format!(" message={id}"));
    }
    if let Some(ms) = number("latency_ms_since_created_at") {
        line.push_str(&format!(" latency={ms}ms"));
    }
    if let Some(reason) = reason {
        line.push_str(&format!(" reason=\"{reason}\""));
    }
    Some(line)
}
