//! The bodies sent for an escalation: Slack's `text`, the generic signed JSON
//! and a PagerDuty Events API v2 `trigger`, all built from a [`Notice`]
//! (the journal's redacted escalation), never from unredacted state.

use serde_json::{json, Value};

use super::Notice;

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

/// The PagerDuty Events API v2 `trigger` event. `dedup_key` is the run id
/// and step, so a re-sent event updates the same incident.
pub fn pagerduty(notice: &Notice, routing_key: &str, severity: &str) -> Value {
    let e = &notice.escalation;
    let mut summary = format!(
        "runproof: step {} of runbook {} escalated: {}",
        e.step, notice.runbook, e.last_reason
    );
    // PagerDuty refuses summaries over 1024 characters.
    if summary.chars().count() > 1000 {
        summary = summary.chars().take(1000).collect::<String>() + "…";
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(notice),
        "payload": {
            "summary": summary,
            "source": notice.host,
            "severity": severity,
            "component": e.step,
            "group": notice.runbook,
            "custom_details": generic(notice),
        },
    })
}

/// `runproof:<run id>:<step>`: stable for one run's step.
pub fn dedup_key(notice: &Notice) -> String {
    format!("runproof:{}:{}", notice.run_id, notice.escalation.step)
}
