//! The bodies sent: Slack's `text`, the generic signed JSON and a PagerDuty
//! Events API v2 event, for a run's escalation (built from a [`Notice`], the
//! journal's redacted escalation) or a sweep check's change of state (a
//! [`CheckChange`]), never from unredacted state.

use serde_json::{json, Value};

use super::Notice;
use crate::core::record::StateChange;

/// The generic JSON body (also PagerDuty's `custom_details`).
pub fn generic(notice: &Notice) -> Value {
    let e = &notice.escalation;
    json!({
        "event": "escalation",
        "run_id": notice.run_id,
        "runbook": notice.runbook,
        "host": notice.host,
        "step": e.step,
        "owner": e.owner,
        "attempts": e.attempts.iter().map(|a| json!({
            "attempt": a.attempt,
            "verdict": a.verdict,
            "reason": a.reason,
        })).collect::<Vec<_>>(),
        "last_reason": e.last_reason,
        "hint": e.hint,
        "retries_skipped": e.retries_skipped,
        "bundle": notice.bundle,
        "logs": notice.logs.iter().map(|l| json!({
            "command": l.command,
            "role": l.role,
            "excerpt": l.excerpt,
        })).collect::<Vec<_>>(),
    })
}

/// A Slack incoming-webhook message: one `text` in Slack's mrkdwn.
pub fn slack(notice: &Notice) -> Value {
    let e = &notice.escalation;
    let mut text = format!(
        ":rotating_light: *runproof: `{}` escalated* in runbook `{}`",
        e.step, notice.runbook
    );
    if let Some(owner) = &e.owner {
        text.push_str(&format!(" (owner: {owner})"));
    }
    text.push('\n');
    for a in &e.attempts {
        text.push_str(&format!("• attempt {}: {}\n", a.attempt, a.reason));
    }
    if let Some(hint) = &e.hint {
        text.push_str(&format!("*Hint:* {hint}\n"));
    }
    text.push_str(&format!(
        "*Bundle:* `{}` (run {})\n",
        notice.bundle, notice.run_id
    ));
    for l in &notice.logs {
        text.push_str(&format!(
            "*{} ({})*\n```{}```\n",
            l.command, l.role, l.excerpt
        ));
    }
    json!({ "text": text })
}

/// A PagerDuty Events API v2 event, short of the routing key and severity
/// (which come from `[notify.pagerduty]`).
#[derive(Debug, Clone)]
pub struct PagerDutyEvent {
    /// `trigger` or `resolve`.
    pub action: &'static str,
    /// The same key triggers and resolves one incident.
    pub dedup_key: String,
    pub summary: String,
    pub source: String,
    pub component: String,
    pub group: String,
    pub custom_details: Value,
}

impl PagerDutyEvent {
    /// The request body. A `resolve` carries no payload: PagerDuty needs only
    /// the routing and dedup keys.
    pub fn body(&self, routing_key: &str, severity: &str) -> Value {
        if self.action == "resolve" {
            return json!({
                "routing_key": routing_key,
                "event_action": "resolve",
                "dedup_key": self.dedup_key,
            });
        }
        json!({
            "routing_key": routing_key,
            "event_action": self.action,
            "dedup_key": self.dedup_key,
            "payload": {
                "summary": capped_summary(&self.summary),
                "source": self.source,
                "severity": severity,
                "component": self.component,
                "group": self.group,
                "custom_details": self.custom_details,
            },
        })
    }
}

/// PagerDuty refuses summaries over 1024 characters.
fn capped_summary(summary: &str) -> String {
    if summary.chars().count() > 1000 {
        summary.chars().take(1000).collect::<String>() + "…"
    } else {
        summary.to_string()
    }
}

/// The PagerDuty `trigger` of a run's escalation. `dedup_key` is the run id
/// and step, so a re-sent event updates the same incident.
pub fn pagerduty(notice: &Notice) -> PagerDutyEvent {
    let e = &notice.escalation;
    PagerDutyEvent {
        action: "trigger",
        dedup_key: dedup_key(notice),
        summary: format!(
            "runproof: step {} of runbook {} escalated: {}",
            e.step, notice.runbook, e.last_reason
        ),
        source: notice.host.clone(),
        component: e.step.clone(),
        group: notice.runbook.clone(),
        custom_details: generic(notice),
    }
}

/// `runproof:<run id>:<step>`: stable for one run's step.
pub fn dedup_key(notice: &Notice) -> String {
    format!("runproof:{}:{}", notice.run_id, notice.escalation.step)
}

/// The `check` of a digest: the changes of a round beyond the ones sent one
/// by one (never a check id: ids cannot contain `*`).
pub const DIGEST_SUBJECT: &str = "*";

/// A sweep check that changed state in a round, with redacted text only.
#[derive(Debug, Clone)]
pub struct CheckChange {
    /// The sweep's name (`--name`).
    pub sweep: String,
    pub check: String,
    pub kind: String,
    pub change: StateChange,
    /// Why it failed (for `failing`), as the journal redacted it.
    pub reason: Option<String>,
    /// Attempts of the round's last sample.
    pub attempts: u32,
    /// When the failing state began (the round that first saw it), for `recovered`.
    pub failing_since: Option<String>,
    /// The round's run id and bundle folder.
    pub run_id: String,
    pub bundle: String,
    pub host: String,
}

/// `runproof:sweep:<sweep name>:<check>`: the same in every round, so a
/// recovery resolves the incident its failure opened.
pub fn change_dedup_key(change: &CheckChange) -> String {
    format!("runproof:sweep:{}:{}", change.sweep, change.check)
}

/// The generic JSON body of a change (also PagerDuty's `custom_details`).
pub fn change_generic(change: &CheckChange) -> Value {
    json!({
        "event": format!("check.{}", change.change.as_str()),
        "sweep": change.sweep,
        "check": change.check,
        "kind": change.kind,
        "reason": change.reason,
        "attempts": change.attempts,
        "failing_since": change.failing_since,
        "run_id": change.run_id,
        "host": change.host,
        "bundle": change.bundle,
    })
}

/// A Slack message for a change.
pub fn change_slack(change: &CheckChange) -> Value {
    let text = match change.change {
        _ if change.check == DIGEST_SUBJECT => format!(
            "{} *runproof: {}* in sweep `{}`\n*Bundle:* `{}` (run {})",
            match change.change {
                StateChange::Failing => ":rotating_light:",
                StateChange::Recovered => ":white_check_mark:",
            },
            change.reason.as_deref().unwrap_or("more checks changed state"),
            change.sweep,
            change.bundle,
            change.run_id,
        ),
        StateChange::Failing => format!(
            ":rotating_light: *runproof: check `{}` is failing* in sweep `{}` ({} attempt{}): {}\n*Bundle:* `{}` (run {})",
            change.check,
            change.sweep,
            change.attempts,
            if change.attempts == 1 { "" } else { "s" },
            change.reason.as_deref().unwrap_or("failed"),
            change.bundle,
            change.run_id,
        ),
        StateChange::Recovered => format!(
            ":white_check_mark: *runproof: check `{}` recovered* in sweep `{}`{}\n*Bundle:* `{}` (run {})",
            change.check,
            change.sweep,
            change
                .failing_since
                .as_deref()
                .map(|since| format!(" (failing since {since})"))
                .unwrap_or_default(),
            change.bundle,
            change.run_id,
        ),
    };
    json!({ "text": text })
}

/// PagerDuty: a failing check triggers, its recovery resolves the same incident.
pub fn change_pagerduty(change: &CheckChange) -> PagerDutyEvent {
    let (action, summary) = match change.change {
        StateChange::Failing => (
            "trigger",
            format!(
                "runproof: check {} of sweep {} is failing: {}",
                change.check,
                change.sweep,
                change.reason.as_deref().unwrap_or("failed")
            ),
        ),
        StateChange::Recovered => (
            "resolve",
            format!(
                "runproof: check {} of sweep {} recovered",
                change.check, change.sweep
            ),
        ),
    };
    PagerDutyEvent {
        action,
        dedup_key: change_dedup_key(change),
        summary,
        source: change.host.clone(),
        component: change.check.clone(),
        group: change.sweep.clone(),
        custom_details: change_generic(change),
    }
}
