//! The text outputs of `runproof report` over a [`BundleSet`]: one JUnit
//! file, one JSON document, one Markdown summary and one Prometheus textfile
//! for all the bundles given. Each reuses the renderer a bundle's own reports
//! come from (`junit`, `markdown`, `prometheus`, the summary's JSON).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::bundle_set::{BundleSet, SourceBundle};
use super::markdown::{render_run, ReportContext};
use super::prometheus::{self, CheckMetrics};
use crate::core::record::StepVerdict;

/// One JUnit document: a `<testsuite>` per suite (merged shards are one).
pub fn junit(set: &BundleSet) -> String {
    let none = HashMap::new();
    let suites: Vec<_> = set.suites.iter().map(|s| (&s.summary, &none)).collect();
    super::junit::render_suites(&suites)
}

/// The sources and suites as one JSON document.
pub fn json(set: &BundleSet) -> Value {
    json!({
        "valid": set.all_valid(),
        "verdict": set.verdict(),
        "sources": set.sources.iter().map(source_json).collect::<Vec<_>>(),
        "suites": set.suites.iter().map(|suite| json!({
            "kind": suite.kind,
            "shards": suite.shards,
            "sources": set.sources_of(suite).map(|s| s.path.as_str()).collect::<Vec<_>>(),
            "run": suite.summary,
        })).collect::<Vec<_>>(),
    })
}

fn source_json(source: &SourceBundle) -> Value {
    let header = &source.bundle.header;
    json!({
        "path": source.path,
        "run_id": header.run_id,
        "kind": header.kind,
        "name": header.source.name,
        "input_sha256": header.source.sha256,
        "shard": header.shard.as_ref().map(|s| s.to_string()),
        "started_at": header.started_at,
        "operator": header.operator,
        "verify": source.verify.verdict.label(),
        "problems": source.verify.problems.iter().map(|p| format!("{}: {}", p.location(), p.message)).collect::<Vec<_>>(),
        "seal_head": source.verify.head,
        "signer": source.verify.signer,
        "signer_text": source.signer_text(),
        "signature_checked_against_trust_list": source.trust_list,
    })
}

/// A Markdown summary: the sources table, then each suite as `summary.md`
/// renders a run.
pub fn markdown(set: &BundleSet) -> String {
    let mut out = String::new();
    if !set.all_valid() {
        out.push_str(
            "> **INVALID** — at least one bundle did not verify; do not trust this report.\n\n",
        );
    }
    let _ = writeln!(
        out,
        "## runproof report · {} bundle{}\n",
        set.sources.len(),
        if set.sources.len() == 1 { "" } else { "s" }
    );
    out.push_str("| Bundle | Run id | Shard | Verify | Seal head | Signer |\n");
    out.push_str("|--------|--------|-------|--------|-----------|--------|\n");
    for source in &set.sources {
        let header = &source.bundle.header;
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | `{}` | {} |",
            source.path.replace('`', "'"),
            header.run_id,
            header
                .shard
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            source.verify.verdict.label(),
            source.seal_head(),
            source.signer_text().replace('|', "\\|")
        );
    }
    for suite in &set.suites {
        let first = &set.sources[suite.sources[0]];
        let context = ReportContext {
            bundle: set
                .sources_of(suite)
                .map(|s| s.path.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            operator: Some(first.bundle.header.operator.clone()),
            signing_key: None,
        };
        out.push('\n');
        out.push_str(&render_run(&suite.summary, &context));
    }
    out
}

/// A Prometheus textfile with one series per check id; when several runs
/// hold the same id, the latest run's figures stand.
pub fn prometheus(set: &BundleSet) -> String {
    let mut latest: BTreeMap<&str, (&str, CheckMetrics)> = BTreeMap::new();
    let mut finished_unix = 0f64;
    for suite in &set.suites {
        let summary = &suite.summary;
        // Tags as `run.start` announced them (samples `ID#k` share the check's).
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for source in set.sources_of(suite) {
            // `run.start` and the `plan` records announce the steps.
            for (_, event) in source.bundle.events() {
                use crate::core::record::Event;
                let (Event::RunStart { steps, .. } | Event::Plan { steps }) = &*event else {
                    continue;
                };
                for planned in steps.iter().filter(|p| !p.tags.is_empty()) {
                    let check = crate::core::record::check_of_step(&planned.id).0;
                    tags.insert(check.to_string(), planned.tags.clone());
                }
            }
        }
        let started = summary
            .started_at
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond() as f64 / 1000.0)
            .unwrap_or(0.0);
        finished_unix = finished_unix.max(started + summary.duration_ms / 1000.0);
        for step in &summary.steps {
            let metrics = CheckMetrics {
                id: step.id.clone(),
                kind: step.kind.clone(),
                tags: tags.get(&step.id).cloned().unwrap_or_default(),
                success: match step.verdict {
                    Some(StepVerdict::Blocked | StepVerdict::Skipped) => None,
                    verdict => Some(verdict == Some(StepVerdict::Pass)),
                },
                duration_seconds: median(&step.attempt_durations_ms).map(|ms| ms / 1000.0),
                attempts: step.attempts,
                regressed: false,
            };
            let newer = latest
                .get(step.id.as_str())
                .is_none_or(|(at, _)| *at <= summary.started_at.as_str());
            if newer {
                latest.insert(&step.id, (&summary.started_at, metrics));
            }
        }
    }
    let checks: Vec<CheckMetrics> = latest.into_values().map(|(_, m)| m).collect();
    prometheus::render(&checks, finished_unix)
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted[sorted.len() / 2])
}
