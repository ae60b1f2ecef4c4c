//! A sweep's notifications: the checks whose state changed since the previous
//! round (`--watch`; in a first round, and in a sweep without `--watch`,
//! every failing check is a change), each sent to the `[notify]` of the file
//! it came from and recorded in the round's journal.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use crate::core::record::{check_of_step, Event, StateChange};
use crate::engine::notify::payload::{CheckChange, DIGEST_SUBJECT};
use crate::engine::notify::{Message, Notifier};
use crate::engine::{Cancel, Emit, RunScope};
use crate::evidence::{read_bundle, BundleWriter};
use crate::sweep::run::{CheckReport, CheckVerdict, Notifications, SweepPlan};

/// The most changes one file's `[notify]` is sent one by one in a round; the
/// rest go out as one digest (a network outage that fails 10,000 checks
/// should page once, not 10,000 times, and not hold up the next round).
pub const MAX_CHANGES_PER_ROUND: usize = 20;

/// Which checks were failing after the last round, and since when. A round
/// tells it of each check as it finishes ([`CheckStates::observe`]); it keeps
/// only the failing checks and the round's changes, never every check.
#[derive(Debug, Default)]
pub struct CheckStates {
    failing: HashMap<String, String>,
    /// The current round's changes, in the order checks finished.
    changes: Vec<Change>,
    /// When the current round started (a new failure's `failing_since`).
    round_started_at: String,
    /// Checks that were failing when an earlier watch of this sweep stopped
    /// (its newest sealed round), until this watch's first round: one that
    /// passes then is announced as recovered; one that still fails is
    /// announced again (a receiver may have missed it; PagerDuty dedups).
    inherited: HashMap<String, String>,
}

impl CheckStates {
    /// States that continue the newest sealed round in `rounds` (the
    /// sweep's bundle folder), if there is one that can be read.
    pub fn continuing(rounds: &Path) -> CheckStates {
        let mut states = CheckStates::default();
        let newest = super::sweep::sealed_rounds(rounds)
            .ok()
            .and_then(|mut rounds| rounds.pop());
        let Some(bundle) = newest.and_then(|dir| read_bundle(&dir).ok()) else {
            return states;
        };
        for (_, event) in bundle.events() {
            if let Event::Escalation(escalation) = &*event {
                let check = check_of_step(&escalation.step).0;
                states
                    .inherited
                    .insert(check.to_string(), bundle.header.started_at.clone());
            }
        }
        states
    }

    /// A round that started at `started_at` begins.
    pub fn begin_round(&mut self, started_at: &str) {
        self.changes.clear();
        self.round_started_at = started_at.to_string();
    }

    /// One of the round's checks finished: records the change it brings, if
    /// any, and moves its state on. A blocked or interrupted check says
    /// nothing about its own health, so it keeps the state it had.
    pub fn observe(&mut self, check: &CheckReport) {
        let inherited = self.inherited.remove(&check.id);
        let change = match check.verdict {
            CheckVerdict::Fail => {
                if self.failing.contains_key(&check.id) {
                    return;
                }
                let since = inherited.unwrap_or_else(|| self.round_started_at.clone());
                self.failing.insert(check.id.clone(), since);
                StateChange::Failing
            }
            CheckVerdict::Pass | CheckVerdict::Flaky | CheckVerdict::Regressed => {
                // Recovered: the failure is forgotten, and when it began is
                // told with the recovery.
                let Some(since) = inherited.or_else(|| self.failing.remove(&check.id)) else {
                    return;
                };
                self.failing.remove(&check.id);
                self.changes
                    .push(Change::of(check, StateChange::Recovered, Some(since)));
                return;
            }
            // Says nothing of its own health: an inherited failure waits.
            CheckVerdict::Blocked | CheckVerdict::Interrupted => {
                if let Some(since) = inherited {
                    self.failing.insert(check.id.clone(), since);
                }
                return;
            }
        };
        self.changes.push(Change::of(check, change, None));
    }

    /// Ends the round: its changes. Checks inherited from an earlier watch
    /// that this round did not run are forgotten (as they always were).
    /// The round's changes, by file and check id: the same order (and the
    /// same 20 sent one by one) whatever order the sweep's threads finished
    /// the checks in.
    fn end_round(&mut self) -> Vec<Change> {
        self.inherited.clear();
        let mut changes = std::mem::take(&mut self.changes);
        changes.sort_by(|a, b| (a.file, &a.id).cmp(&(b.file, &b.id)));
        changes
    }
}

/// Whether any check file has a `[notify]`: only then does a round track
/// states ([`CheckStates::observe`]) and call [`notify_changes`].
pub fn wants_notify(plan: &SweepPlan) -> bool {
    plan.notify.iter().any(Option::is_some)
}

/// Sends the round's changes (told to `states` as checks finished) to each
/// file's `[notify]`, recording every delivery attempt in `bundle`; `None`
/// when no file has a `[notify]`. Only an evidence write failure is an `Err`.
pub async fn notify_changes(
    states: &mut CheckStates,
    sweep: &str,
    plan: &SweepPlan,
    bundle: &mut BundleWriter,
    cancel: &Cancel,
) -> io::Result<Option<Notifications>> {
    if !wants_notify(plan) {
        return Ok(None);
    }
    let changes = states.end_round();
    let mut outcome = Notifications {
        changes: changes.len(),
        ..Notifications::default()
    };
    if changes.is_empty() {
        // The common round: nothing to look up, nothing to send.
        return Ok(Some(outcome));
    }
    // Per file: each change.
    let mut by_file: Vec<Vec<Change>> = vec![Vec::new(); plan.notify.len()];
    for change in changes {
        if let Some(list) = by_file.get_mut(change.file) {
            list.push(change);
        }
    }
    let header = bundle.header().clone();
    let bundle_label = bundle.dir().display().to_string();
    let base = |check: &str, change: StateChange| CheckChange {
        sweep: sweep.to_string(),
        check: check.to_string(),
        kind: String::new(),
        change,
        reason: None,
        attempts: 0,
        failing_since: None,
        run_id: header.run_id.clone(),
        bundle: bundle_label.clone(),
        host: header.host.clone(),
    };
    for (file, changes) in by_file.iter().enumerate() {
        let Some(config) = plan.notify.get(file).and_then(|n| n.as_deref()) else {
            continue;
        };
        if changes.is_empty() || cancel.is_cancelled() {
            continue;
        }
        let notifier = Notifier::new(config).map_err(io::Error::other)?;
        let scope = RunScope::new(&plan.vars[file], &plan.secrets);
        let mut journal = Journal(bundle, &mut outcome);
        let (one_by_one, rest) = changes.split_at(changes.len().min(MAX_CHANGES_PER_ROUND));
        for c in one_by_one {
            let message = Message::check_change(&CheckChange {
                kind: c.kind.to_string(),
                // Redacted when the sweep recorded it; once more costs little.
                reason: c
                    .reason
                    .as_deref()
                    .map(|r| journal.0.redact(r).into_inner()),
                attempts: c.attempts,
                failing_since: c.since.clone(),
                ..base(&c.id, c.change)
            });
            notifier
                .deliver(&message, &scope, &mut journal, cancel)
                .await?;
            if cancel.is_cancelled() {
                return Ok(Some(outcome));
            }
        }
        if !rest.is_empty() {
            let message = Message::check_change(&CheckChange {
                reason: Some(digest_text(rest)),
                ..base(DIGEST_SUBJECT, digest_change(rest))
            });
            notifier
                .deliver(&message, &scope, &mut journal, cancel)
                .await?;
        }
    }
    Ok(Some(outcome))
}

/// One check's change in a round: what a notification says of it.
#[derive(Debug, Clone)]
struct Change {
    id: String,
    kind: &'static str,
    reason: Option<String>,
    attempts: u32,
    /// The file the check came from (whose `[notify]` is told).
    file: usize,
    change: StateChange,
    /// When a recovered check's failure began.
    since: Option<String>,
}

impl Change {
    fn of(check: &CheckReport, change: StateChange, since: Option<String>) -> Change {
        Change {
            id: check.id.clone(),
            kind: check.kind,
            reason: check.reason.clone(),
            attempts: check.attempts,
            file: check.file,
            change,
            since,
        }
    }
}

/// A digest is a failure when any of its changes is (it may page); a
/// recovery only when all are.
fn digest_change(changes: &[Change]) -> StateChange {
    if changes.iter().any(|c| c.change == StateChange::Failing) {
        StateChange::Failing
    } else {
        StateChange::Recovered
    }
}

/// `23 more checks changed state: 20 failing (a, b, c, …), 3 recovered (x, y, z)`.
fn digest_text(changes: &[Change]) -> String {
    const NAMED: usize = 10;
    let part = |wanted: StateChange| {
        let ids: Vec<&str> = changes
            .iter()
            .filter(|c| c.change == wanted)
            .map(|c| c.id.as_str())
            .collect();
        if ids.is_empty() {
            return None;
        }
        let mut named = ids[..ids.len().min(NAMED)].join(", ");
        if ids.len() > NAMED {
            named.push_str(", …");
        }
        Some(format!("{} {} ({named})", ids.len(), wanted.as_str()))
    };
    let parts: Vec<String> = [StateChange::Failing, StateChange::Recovered]
        .into_iter()
        .filter_map(part)
        .collect();
    format!(
        "{} more check{} changed state: {}",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// Appends to the round's journal (a sweep's notifications come after its
/// checks, on one task: no lock needed), counting how deliveries ended.
struct Journal<'b>(&'b mut BundleWriter, &'b mut Notifications);

impl Emit for Journal<'_> {
    fn emit(&mut self, event: Event) -> io::Result<u64> {
        if let Event::Notify {
            delivered,
            attempt,
            of,
            ..
        } = &event
        {
            if *delivered {
                self.1.delivered += 1;
            } else if attempt == of {
                self.1.undelivered += 1;
            }
        }
        self.0.record(event).map(|(seq, _)| seq)
    }
}
