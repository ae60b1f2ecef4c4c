//! `runproof report` as a session: verify each bundle named (the same
//! checks as `runproof verify`, including the reports' agreement with the
//! journal), read it, and bring the bundles together into a [`BundleSet`]
//! the renderers take. A bundle that does not verify is refused with the
//! reason unless the caller allows it (it then renders under an INVALID
//! banner).

use std::path::Path;

use crate::evidence::{check_bundle_path, read_bundle, verify_bundle, VerifyOptions};
use crate::report::bundle_set::{merge, BundleSet, MergeError, SourceBundle};

/// Why no report can be made of the bundles given.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The path is no bundle at all (a usage error).
    #[error(transparent)]
    NotABundle(#[from] crate::evidence::NotABundle),
    /// The bundle did not verify and invalid bundles are not allowed.
    #[error(
        "{path}: {verdict}: {reasons}\n(pass --allow-invalid to render it under an INVALID banner)"
    )]
    Invalid {
        path: String,
        verdict: &'static str,
        reasons: String,
    },
    /// The bundle cannot even be parsed.
    #[error("{0}")]
    Unreadable(#[from] crate::evidence::ReadError),
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// Verifies and reads every bundle in `paths`, then merges them.
pub fn load_bundle_set(
    paths: &[&Path],
    options: &VerifyOptions,
    allow_invalid: bool,
) -> Result<BundleSet, ReportError> {
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        check_bundle_path(path)?;
        let mut verify = verify_bundle(path, options);
        super::audit::audit_reports(&mut verify);
        if !verify.is_valid() && !allow_invalid {
            let reasons: Vec<String> = verify
                .problems
                .iter()
                .take(5)
                .map(|p| format!("{}: {}", p.location(), p.message))
                .chain(
                    verify
                        .secrets
                        .iter()
                        .take(3)
                        .map(|s| format!("{}:{}: a secret ({})", s.file, s.line, s.preview)),
                )
                .collect();
            return Err(ReportError::Invalid {
                path: path.display().to_string(),
                verdict: verify.verdict.label(),
                reasons: if reasons.is_empty() {
                    "the bundle did not verify".into()
                } else {
                    reasons.join("; ")
                },
            });
        }
        let bundle = read_bundle(path)?;
        sources.push(SourceBundle {
            path: path.display().to_string(),
            bundle,
            verify,
            trust_list: options.allowed_signers.is_some(),
        });
    }
    Ok(merge(sources)?)
}
