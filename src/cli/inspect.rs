//! `runproof verify` and `runproof show`: what QA runs on a bundle.

use super::args::{ShowArgs, VerifyArgs};
use super::CliError;
use crate::evidence::{verify_bundle, VerifyOptions};
use crate::exit::ExitStatus;

pub fn verify(args: VerifyArgs) -> Result<ExitStatus, CliError> {
    let mut scan_secrets = Vec::new();
    for name in &args.scan_secrets_from_env {
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => scan_secrets.push((name.clone(), value)),
            _ => {
                return Err(CliError::invalid(format!(
                    "--scan-secrets-from-env {name}: the environment variable is not set"
                )))
            }
        }
    }
    let report = verify_bundle(&args.bundle, &VerifyOptions { scan_secrets });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        );
    } else {
        println!("{}", report.render_text());
    }
    Ok(if report.is_valid() {
        ExitStatus::Success
    } else {
        ExitStatus::VerifyFailed
    })
}

pub fn show(args: ShowArgs) -> Result<ExitStatus, CliError> {
    let _ = args;
    Err(CliError::internal("show: not yet available"))
}
