//! `runproof report`: verify the bundles named, bring them together and
//! write the reports asked for. Printing and exit codes only; the work is in
//! `session::report` (verify, merge) and `report::{merged, html}` (render).

use std::path::Path;

use super::args::ReportArgs;
use super::CliError;
use crate::cli::exit::ExitStatus;
use crate::evidence::{AllowedSigners, VerifyOptions};
use crate::report::merged;
use crate::session::report::{load_bundle_set, ReportError};
use crate::sweep::baseline::write_atomically;

pub fn report(args: ReportArgs) -> Result<ExitStatus, CliError> {
    let allowed_signers = match &args.allowed_signers {
        Some(path) => {
            let signers = AllowedSigners::load(path)
                .map_err(|e| CliError::invalid(format!("--allowed-signers {e}")))?;
            for skipped in &signers.skipped {
                eprintln!("runproof: warning: --allowed-signers {skipped}");
            }
            Some(signers)
        }
        None => None,
    };
    let options = VerifyOptions {
        allowed_signers,
        ..VerifyOptions::default()
    };
    let paths: Vec<&Path> = args.bundles.iter().map(|p| p.as_path()).collect();
    let set = load_bundle_set(&paths, &options, args.allow_invalid).map_err(|e| match e {
        ReportError::Invalid { .. } => CliError {
            status: ExitStatus::VerifyFailed,
            message: e.to_string(),
        },
        ReportError::Unreadable(_) => CliError {
            status: ExitStatus::VerifyFailed,
            message: e.to_string(),
        },
        ReportError::NotABundle(_) | ReportError::Merge(_) => CliError::invalid(e.to_string()),
    })?;

    // On stderr, so that the Markdown on stdout stays clean for a pipe.
    for source in &set.sources {
        eprintln!(
            "{}: {} · run {} · seal head {} · {}",
            source.path,
            source.verify.verdict.label(),
            source.bundle.header.run_id,
            source.seal_head(),
            source.signer_text()
        );
    }
    let write = |flag: &str, path: &Path, text: &str| -> Result<(), CliError> {
        write_atomically(path, text.as_bytes())
            .map_err(|e| CliError::internal(format!("{flag} {}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
        Ok(())
    };
    if let Some(path) = &args.html {
        write("--html", path, &crate::report::html::render(&set))?;
    }
    if let Some(path) = &args.junit {
        write("--junit", path, &merged::junit(&set))?;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&merged::json(&set)).unwrap_or_default() + "\n";
        write("--json", path, &text)?;
    }
    if let Some(path) = &args.markdown {
        write("--markdown", path, &merged::markdown(&set))?;
    }
    if let Some(path) = &args.prometheus {
        write("--prometheus", path, &merged::prometheus(&set))?;
    }
    let any_output = args.html.is_some()
        || args.junit.is_some()
        || args.json.is_some()
        || args.markdown.is_some()
        || args.prometheus.is_some();
    if !any_output {
        out!("{}", merged::markdown(&set).trim_end());
    }
    Ok(if set.all_valid() {
        ExitStatus::Success
    } else {
        ExitStatus::VerifyFailed
    })
}
