//! Bundles brought back together for `runproof report`. The main type here is
//! [`BundleSet`]: every source bundle with its verify verdict and signer, and
//! the suites reports are made of — one per run bundle, one per sweep, where
//! the shards of a sweep (`sweep --shard k/n`) merge back into one suite.
//!
//! Shards merge only when they ran the same check files (the header's input
//! digest) and cover shards 1..n exactly once; anything else is refused with
//! the shard that is missing, doubled or foreign. Everything here comes from
//! the journals: reports are never taken from a bundle's own report files.

use std::collections::BTreeMap;

use crate::core::record::{BundleKind, RunVerdict, ShardRef};
use crate::evidence::{Bundle, VerifyReport};
use crate::report::{RunSummary, SummaryBuilder};

/// One bundle named on the command line, read and verified.
#[derive(Debug)]
pub struct SourceBundle {
    /// The folder as given.
    pub path: String,
    pub bundle: Bundle,
    pub verify: VerifyReport,
    /// Whether the signature was checked against `--allowed-signers`.
    pub trust_list: bool,
}

impl SourceBundle {
    /// The bundle's run, one step per check (sweep samples folded).
    pub fn summary(&self) -> RunSummary {
        let header = &self.bundle.header;
        let mut builder =
            SummaryBuilder::new(&header.run_id, &header.source.name, &header.started_at);
        for (seq, event) in self.bundle.events() {
            crate::engine::RunObserver::observe(&mut builder, seq, &event);
        }
        builder.finish().per_check()
    }

    /// Who signed the seal, as the report states it: a signer QA trusts only
    /// with `--allowed-signers`; otherwise the key is named and the report
    /// says it was not checked against a trust list.
    pub fn signer_text(&self) -> String {
        let signed = self
            .bundle
            .dir
            .join(crate::evidence::SIGNATURE_FILE)
            .exists();
        match (&self.verify.signer, self.trust_list) {
            (Some(signer), _) if signer.trusted => format!(
                "signed by {} ({}), an allowed signer",
                signer.principals.join(", "),
                signer.fingerprint
            ),
            (Some(signer), _) => format!(
                "signed by key {}; signature not checked against a trust list (pass --allowed-signers)",
                signer.fingerprint
            ),
            (None, _) if !signed => "not signed".to_string(),
            (None, true) => "signature NOT by an allowed signer (see the verify problems)".into(),
            (None, false) => "signature does not verify (see the verify problems)".into(),
        }
    }

    /// `sha256:<hex>` of the journal's last line, as verify computed it.
    pub fn seal_head(&self) -> &str {
        self.verify.head.as_deref().unwrap_or("")
    }

    /// Whether verify found the bundle sound (a report of an invalid one
    /// carries an INVALID banner).
    pub fn is_valid(&self) -> bool {
        self.verify.is_valid()
    }
}

/// One suite of the report: a run, a sweep, or the merged shards of a sweep.
#[derive(Debug)]
pub struct Suite {
    /// Indexes into [`BundleSet::sources`], in shard order.
    pub sources: Vec<usize>,
    pub kind: BundleKind,
    /// One step per check, shards concatenated in shard order.
    pub summary: RunSummary,
    /// `Some(n)` when `n` shards were merged.
    pub shards: Option<u32>,
}

/// Every source bundle and the suites made of them.
#[derive(Debug)]
pub struct BundleSet {
    pub sources: Vec<SourceBundle>,
    pub suites: Vec<Suite>,
}

impl BundleSet {
    /// Whether every source verified.
    pub fn all_valid(&self) -> bool {
        self.sources.iter().all(SourceBundle::is_valid)
    }

    /// The worst run verdict of all suites (`None`: a suite never finished).
    pub fn verdict(&self) -> Option<RunVerdict> {
        let mut worst = Some(RunVerdict::Pass);
        for suite in &self.suites {
            worst = match (worst, suite.summary.verdict) {
                (None, _) | (_, None) => None,
                (Some(a), Some(b)) => Some(if severity(b) > severity(a) { b } else { a }),
            };
        }
        worst
    }

    /// The sources of a suite.
    pub fn sources_of<'a>(&'a self, suite: &'a Suite) -> impl Iterator<Item = &'a SourceBundle> {
        suite.sources.iter().map(|&i| &self.sources[i])
    }
}

fn severity(verdict: RunVerdict) -> u8 {
    match verdict {
        RunVerdict::Pass => 0,
        RunVerdict::Unconfirmed => 1,
        RunVerdict::Escalated => 2,
        RunVerdict::Halted => 3,
        RunVerdict::Interrupted => 4,
    }
}

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("shard {shard} of sweep {name:?} is missing (given: {given})")]
    Missing {
        name: String,
        shard: ShardRef,
        given: String,
    },
    #[error("shard {shard} is given twice: {first} and {second}")]
    Twice {
        shard: ShardRef,
        first: String,
        second: String,
    },
    #[error(
        "{path}: shard {shard} is foreign to the shards of {first}: {why}; \
         only shards of one sweep (the same check files, split the same way) merge"
    )]
    Foreign {
        path: String,
        shard: ShardRef,
        first: String,
        why: String,
    },
}

/// Groups `sources` into suites: every unsharded bundle is a suite of its
/// own; the sharded ones must be the complete set of shards of one sweep and
/// become one suite (placed where the first shard was named).
pub fn merge(sources: Vec<SourceBundle>) -> Result<BundleSet, MergeError> {
    let sharded: Vec<(usize, &ShardRef)> = sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.bundle.header.shard.as_ref().map(|shard| (i, shard)))
        .collect();
    let mut suites = Vec::new();
    let mut shard_suite: Option<Suite> = None;
    if let Some(&(first, first_shard)) = sharded.first() {
        let reference = &sources[first].bundle.header;
        let mut by_index: BTreeMap<u32, usize> = BTreeMap::new();
        for &(i, shard) in &sharded {
            let header = &sources[i].bundle.header;
            let why = if header.source.sha256 != reference.source.sha256 {
                Some(format!(
                    "it ran other check files (input digest {}, not {})",
                    short(&header.source.sha256),
                    short(&reference.source.sha256)
                ))
            } else if shard.count != first_shard.count {
                Some(format!(
                    "the sweep was split {} ways, not {}",
                    shard.count, first_shard.count
                ))
            } else if shard.only != first_shard.only {
                Some(format!(
                    "it ran another selection (--only {}, not {})",
                    only_text(&shard.only),
                    only_text(&first_shard.only)
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(MergeError::Foreign {
                    path: sources[i].path.clone(),
                    shard: shard.clone(),
                    first: sources[first].path.clone(),
                    why,
                });
            }
            if let Some(&earlier) = by_index.get(&shard.index) {
                return Err(MergeError::Twice {
                    shard: shard.clone(),
                    first: sources[earlier].path.clone(),
                    second: sources[i].path.clone(),
                });
            }
            by_index.insert(shard.index, i);
        }
        if let Some(missing) = (1..=first_shard.count).find(|k| !by_index.contains_key(k)) {
            let given: Vec<String> = by_index
                .keys()
                .map(|k| format!("{k}/{}", first_shard.count))
                .collect();
            return Err(MergeError::Missing {
                name: reference.source.name.clone(),
                shard: ShardRef {
                    index: missing,
                    count: first_shard.count,
                    only: first_shard.only.clone(),
                },
                given: given.join(", "),
            });
        }
        let order: Vec<usize> = by_index.into_values().collect();
        let summaries: Vec<RunSummary> = order.iter().map(|&i| sources[i].summary()).collect();
        shard_suite = Some(Suite {
            summary: merge_summaries(summaries),
            kind: BundleKind::Sweep,
            sources: order,
            shards: Some(first_shard.count),
        });
    }
    for (i, source) in sources.iter().enumerate() {
        match source.bundle.header.shard {
            None => suites.push(Suite {
                sources: vec![i],
                kind: source.bundle.header.kind,
                summary: source.summary(),
                shards: None,
            }),
            Some(_) => {
                if let Some(suite) = shard_suite.take() {
                    suites.push(suite);
                }
            }
        }
    }
    Ok(BundleSet { sources, suites })
}

/// The shards' summaries as one sweep: checks in shard order, the longest
/// shard's duration (shards run side by side), the worst verdict.
fn merge_summaries(summaries: Vec<RunSummary>) -> RunSummary {
    let mut merged = RunSummary::default();
    let mut run_ids = Vec::new();
    let mut verdict = Some(RunVerdict::Pass);
    for (n, summary) in summaries.into_iter().enumerate() {
        if n == 0 || summary.started_at < merged.started_at {
            merged.started_at = summary.started_at.clone();
        }
        merged.name = summary.name.clone();
        merged.duration_ms = merged.duration_ms.max(summary.duration_ms);
        merged.records += summary.records;
        verdict = match (verdict, summary.verdict) {
            (None, _) | (_, None) => None,
            (Some(a), Some(b)) => Some(if severity(b) > severity(a) { b } else { a }),
        };
        run_ids.push(summary.run_id);
        merged.steps.extend(summary.steps);
    }
    merged.run_id = run_ids.join(",");
    merged.verdict = verdict;
    merged
}

fn only_text(only: &[String]) -> String {
    if only.is_empty() {
        "(all checks)".to_string()
    } else {
        only.join(",")
    }
}

/// The first 12 hex digits of a digest, enough to tell inputs apart.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
