//! The validated runbook: what the engine runs. [`super::load`] builds it from TOML.

use crate::check::command::CommandCheck;
use crate::check::expect::condition::Conditions;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::CheckSpec;
use crate::core::duration::HumanDuration;
use crate::core::template::{Reference, Template};

/// A loaded, validated runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// Where it was read from.
    pub path: PathBuf,
    /// The exact bytes read (hashed into the evidence header).
    pub source: String,
    /// `[runbook]`.
    pub meta: RunbookMeta,
    /// `[secrets]` as written: `env_files` stay relative to the runbook's
    /// folder; [`super::SecretStore::load`] (or `for_runbook`) resolves them.
    pub secrets: SecretsConfig,
    /// `[vars]`.
    pub vars: BTreeMap<String, String>,
    /// `[defaults]`.
    pub defaults: Defaults,
    /// `[[step]]`, in file order.
    pub steps: Vec<Step>,
    /// `[notify]`: where escalations are sent; `None` when absent (boxed:
    /// most runbooks have none).
    pub notify: Option<Box<NotifyConfig>>,
}

/// `[notify]`: each escalation, redacted, sent to a Slack incoming webhook,
/// a signed JSON webhook and/or PagerDuty Events API v2.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Retries of a failed delivery (with backoff), per target; default 2.
    #[serde(default = "default_notify_retries")]
    pub retries: u32,
    /// Per-request timeout; default `5s`.
    #[serde(default = "default_notify_timeout")]
    pub timeout: HumanDuration,
    /// A Slack incoming webhook.
    #[serde(default)]
    pub slack: Option<SlackTarget>,
    /// A generic JSON webhook, signed with `X-Runproof-Signature`.
    #[serde(default)]
    pub webhook: Option<WebhookTarget>,
    /// PagerDuty Events API v2.
    #[serde(default)]
    pub pagerduty: Option<PagerDutyTarget>,
}

impl NotifyConfig {
    /// The credentials of this `[notify]` written as they are instead of
    /// as `{{secret:NAME}}`, each as the key that holds it and the name its
    /// secret usually has. A Slack URL counts only when it is one (a test's
    /// receiver on 127.0.0.1 is not a credential).
    pub fn literal_credentials(&self) -> Vec<(&'static str, &'static str)> {
        let templated = |t: &Template| t.references().any(|r| matches!(r, Reference::Secret(_)));
        let mut found = Vec::new();
        if let Some(slack) = &self.slack {
            if !templated(&slack.url)
                && crate::evidence::redact::holds_webhook_credential(slack.url.raw())
            {
                found.push(("[notify.slack] url", "SLACK_WEBHOOK_URL"));
            }
        }
        if let Some(webhook) = &self.webhook {
            if !templated(&webhook.secret) {
                found.push(("[notify.webhook] secret", "RUNPROOF_NOTIFY_SECRET"));
            }
        }
        if let Some(pagerduty) = &self.pagerduty {
            if !templated(&pagerduty.routing_key) {
                found.push(("[notify.pagerduty] routing_key", "PD_ROUTING_KEY"));
            }
        }
        found
    }

    /// [`Self::literal_credentials`] as warnings about the file at `path`
    /// (which never quote the value).
    pub fn literal_credential_warnings(&self, path: &std::path::Path) -> Vec<String> {
        self.literal_credentials()
            .into_iter()
            .map(|(key, name)| {
                format!(
                    "{}: {key} is a credential written as it is; the bundle masks it, but the file holds it: write \"{{{{secret:{name}}}}}\" and declare {name} in [secrets]",
                    path.display()
                )
            })
            .collect()
    }
}

fn default_notify_retries() -> u32 {
    2
}

fn default_notify_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// `[notify.slack]`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackTarget {
    /// The incoming webhook URL (a secret: `{{secret:SLACK_WEBHOOK_URL}}`).
    pub url: Template,
}

/// `[notify.webhook]`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// Where the JSON is POSTed.
    pub url: Template,
    /// The HMAC-SHA256 signing secret (`{{secret:NAME}}`).
    pub secret: Template,
}

/// `[notify.pagerduty]`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyTarget {
    /// The integration's routing key (`{{secret:PD_ROUTING_KEY}}`).
    pub routing_key: Template,
    /// The Events API endpoint; default `https://events.pagerduty.com/v2/enqueue`.
    #[serde(default)]
    pub url: Option<Template>,
    /// The incident's severity; default `error`.
    #[serde(default)]
    pub severity: Severity,
}

/// A PagerDuty event's severity.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    #[default]
    Error,
    Warning,
    Info,
}

impl Severity {
    /// The lowercase name PagerDuty expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// `[runbook]`: who owns it and how a run reacts to escalation.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookMeta {
    /// Names the bundle folder; letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Who is escalated to.
    #[serde(default)]
    pub owner: Option<String>,
    /// What the runbook checks, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// When the runbook was last reviewed: a bare date, `2026-01-31`.
    #[serde(default)]
    #[schemars(with = "Option<Date>")]
    pub last_reviewed: Option<toml::value::Datetime>,
    /// A bare date, `2027-01-31`; past it runproof warns, and `--strict` refuses to run.
    #[serde(default)]
    #[schemars(with = "Option<Date>")]
    pub expires: Option<toml::value::Datetime>,
    /// After an escalation: `continue` with the other steps, or `halt`.
    #[serde(default)]
    pub on_escalate: OnEscalate,
}

/// A bare TOML date, `2026-01-31` (no quotes).
// Only for the schema: editors check TOML dates as strings in the `date` format.
#[derive(schemars::JsonSchema)]
#[schemars(transparent, extend("format" = "date"))]
#[allow(dead_code)]
struct Date(#[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))] String);

/// What a run does after a step escalates.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnEscalate {
    /// Log the escalation and go on with the steps that do not depend on it.
    #[default]
    Continue,
    /// Stop the run after the escalation.
    Halt,
}

/// `[secrets]`: where secret values come from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Dotenv files (`KEY=value`), relative to the runbook's folder. The
    /// process environment wins over them.
    #[serde(default)]
    pub env_files: Vec<PathBuf>,
    /// Secrets that must be present before any step runs.
    #[serde(default)]
    pub required: Vec<String>,
    /// Secrets that steps may use; a step using a missing one fails.
    #[serde(default)]
    pub optional: Vec<String>,
}

impl SecretsConfig {
    /// Every declared secret name, required first.
    pub fn declared(&self) -> impl Iterator<Item = &str> {
        self.required
            .iter()
            .chain(&self.optional)
            .map(String::as_str)
    }
}

/// `[defaults]`: the retry policy steps inherit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Defaults {
    pub retries: u32,
    pub backoff: Backoff,
    pub timeout: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            retries: 2,
            backoff: Backoff::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Exponential backoff between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Delay before the first retry.
    #[serde(default = "Backoff::default_initial")]
    pub initial: HumanDuration,
    /// Upper bound for any one delay.
    #[serde(default = "Backoff::default_max")]
    pub max: HumanDuration,
    /// Randomise delays so that many runners do not retry in lockstep.
    #[serde(default = "Backoff::default_jitter")]
    pub jitter: bool,
}

impl Backoff {
    fn default_initial() -> HumanDuration {
        HumanDuration(Duration::from_secs(1))
    }
    fn default_max() -> HumanDuration {
        HumanDuration(Duration::from_secs(10))
    }
    fn default_jitter() -> bool {
        true
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Backoff::default_initial(),
            max: Backoff::default_max(),
            jitter: Backoff::default_jitter(),
        }
    }
}

/// The policy one step runs under, after `[defaults]` and step overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `retries + 1` attempts at most).
    pub retries: u32,
    pub backoff: Backoff,
    /// Per attempt.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// The most attempts a step may make.
    pub fn max_attempts(&self) -> u32 {
        self.retries + 1
    }

    /// The backoff part, as recorded in `run.start`.
    pub fn planned_backoff(&self) -> crate::core::record::PlannedBackoff {
        let initial = self.backoff.initial.0;
        crate::core::record::PlannedBackoff {
            initial_ms: initial.as_millis() as u64,
            // The schedule never waits past max (or initial, if larger).
            max_ms: self.backoff.max.0.max(initial).as_millis() as u64,
            jitter: self.backoff.jitter,
        }
    }
}

/// One `[[step]]`.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique within the runbook.
    pub id: String,
    pub title: Option<String>,
    /// The check kind and its parameters.
    /// Boxed: the largest kinds are 700 bytes, and a step is moved from
    /// chunk to plan to batch (a third of the bytes to copy each time).
    pub check: Box<CheckSpec>,
    /// Steps that must pass first; explicit ones plus those whose captures this step uses.
    pub depends_on: Vec<String>,
    pub policy: RetryPolicy,
    /// Changes something (a deploy, a secret): runs only with `--allow-mutations`.
    pub mutating: bool,
    /// What the operator should look at when this step escalates.
    pub hint: Option<String>,
    /// Who this step escalates to; the runbook's `owner` when unset.
    pub owner: Option<String>,
    /// Read-only commands run after the last failed attempt; their output is
    /// stored as blobs and named in the escalation (`collect = [{ argv = [...] }]`).
    pub collect: Vec<CommandCheck>,
    /// The step runs only when these hold (`when = { "{{steps.q.depth}}" = { gt = 100 } }`);
    /// otherwise it is skipped with the reason.
    pub when: Conditions,
    /// Free-form labels (`team=payments`, `critical`); `key=value` tags become
    /// Prometheus labels in sweeps.
    pub tags: Vec<String>,
    /// Steps whose captures this step's templates (and `when`) use, in the
    /// order first used: a resumed run blocks the step when one of them was
    /// not run again.
    pub uses_captures_of: Vec<String>,
    /// 1-based line of the step's `[[step]]` header, for messages.
    pub line: usize,
    /// The folder of the file the step was read from (empty for the working
    /// directory): relative `cwd`, `body_file` and `ca_file` are taken from it.
    pub base_dir: PathBuf,
}

/// A sweep input file: `[[check]]` entries with the same kinds, templating,
/// secrets and retry policy as runbook steps, plus `tags`.
#[derive(Debug, Clone)]
pub struct CheckFile {
    pub path: PathBuf,
    pub source: String,
    pub secrets: SecretsConfig,
    pub vars: BTreeMap<String, String>,
    pub defaults: Defaults,
    /// `[notify]`: where this file's checks' changes of state are sent.
    pub notify: Option<Box<NotifyConfig>>,
    /// Each `[[check]]`, as a step.
    pub checks: Vec<Step>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(toml_text: &str) -> NotifyConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn notify_credentials_written_as_they_are_are_named_without_their_values() {
        let literal = notify(
            "[slack]\nurl = \"https://hooks.slack.com/services/T1/B2/l1teralSlack\"\n\
             [webhook]\nurl = \"https://hooks.example/in\"\nsecret = \"l1teral-hmac\"\n\
             [pagerduty]\nrouting_key = \"l1teral-routing\"\n",
        );
        assert_eq!(
            literal.literal_credentials(),
            [
                ("[notify.slack] url", "SLACK_WEBHOOK_URL"),
                ("[notify.webhook] secret", "RUNPROOF_NOTIFY_SECRET"),
                ("[notify.pagerduty] routing_key", "PD_ROUTING_KEY"),
            ]
        );
        let warnings = literal.literal_credential_warnings(std::path::Path::new("c.toml"));
        assert_eq!(warnings.len(), 3);
        assert!(warnings[0].starts_with("c.toml: [notify.slack] url is a credential"));
        assert!(
            warnings[0].contains("\"{{secret:SLACK_WEBHOOK_URL}}\""),
            "{}",
            warnings[0]
        );
        for warning in &warnings {
            assert!(!warning.contains("l1teral"), "{warning}");
        }
        // Templated, or a Slack URL that is no webhook's (a test receiver).
        let templated = notify(
            "[slack]\nurl = \"http://127.0.0.1:9/slack\"\n\
             [webhook]\nurl = \"https://hooks.example/in\"\nsecret = \"{{secret:HOOK}}\"\n\
             [pagerduty]\nrouting_key = \"{{secret:PD}}\"\n",
        );
        assert!(templated.literal_credentials().is_empty());
        let slack_templated =
            notify("[slack]\nurl = \"https://hooks.slack.com/services/{{secret:SLACK_PATH}}\"\n");
        assert!(slack_templated.literal_credentials().is_empty());
    }
}
