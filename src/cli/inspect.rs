//! `runproof verify` and `runproof show`: what QA runs on a bundle.

use super::args::{ShowArgs, VerifyArgs};
use super::CliError;
use crate::cli::exit::ExitStatus;
use crate::core::record::{Event, Record};
use crate::engine::RunObserver;
use crate::evidence::{
    check_bundle_path, read_bundle, verify_bundle, AllowedSigners, RunbookFile, VerifyOptions,
};
use crate::report::{self, SummaryBuilder};

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
    // A path that is no bundle at all is a usage error, not an invalid bundle.
    check_bundle_path(&args.bundle).map_err(|e| CliError::invalid(e.to_string()))?;
    let allowed_signers = match &args.allowed_signers {
        Some(path) => Some(
            AllowedSigners::load(path)
                .map_err(|e| CliError::invalid(format!("--allowed-signers {e}")))?,
        ),
        None => None,
    };
    if let Some(signers) = &allowed_signers {
        for skipped in &signers.skipped {
            eprintln!("runproof: warning: --allowed-signers {skipped}");
        }
    }
    let runbook = match &args.runbook {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| CliError::invalid(format!("--runbook {}: {e}", path.display())))?;
            Some(RunbookFile {
                path: path.display().to_string(),
                sha256: crate::evidence::seal::sha256_hex(&bytes),
            })
        }
        None => None,
    };
    let options = VerifyOptions {
        scan_secrets,
        allowed_signers,
        identity: args.identity.clone(),
        runbook,
        expect_head: args.expect_head.clone(),
        strict_secrets: args.strict,
    };
    let mut report = verify_bundle(&args.bundle, &options);
    crate::session::audit::audit_reports(&mut report);
    if args.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        );
    } else {
        // The verdict word (VERIFIED, INCOMPLETE, INVALID…) in its colour.
        let text = report.render_text();
        let end = text
            .find(|c: char| !c.is_ascii_uppercase() && c != '_')
            .unwrap_or(0);
        let paint = super::style::stdout();
        out!("{}{}", paint.verdict(&text[..end]), &text[end..]);
    }
    Ok(if report.is_valid() {
        ExitStatus::Success
    } else {
        ExitStatus::VerifyFailed
    })
}

/// Prints a bundle's run as QA reads it: the header, a table of steps (or
/// checks), escalations with their attempts and hints. It does not verify;
/// `runproof verify` does.
pub fn show(args: ShowArgs) -> Result<ExitStatus, CliError> {
    let bundle = read_bundle(&args.bundle).map_err(|e| CliError::invalid(e.to_string()))?;
    let header = &bundle.header;
    let mut builder = SummaryBuilder::new(&header.run_id, &header.source.name, &header.started_at);
    for (seq, event) in bundle.events() {
        builder.observe(seq, &event);
    }
    let summary = builder.finish();
    if args.json {
        let document = serde_json::json!({
            "bundle": args.bundle.display().to_string(),
            "header": header,
            "sealed": bundle.seal.is_some(),
            "run": summary,
            // The records themselves: tools want fields, not the text line.
            "probes": bundle
                .records
                .iter()
                .filter(|r| matches!(r.event, Event::Probe { .. }))
                .map(|r| &r.event)
                .collect::<Vec<_>>(),
        });
        out!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
        return Ok(ExitStatus::Success);
    }
    let kind = serde_json::to_value(header.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    out!(
        "{kind} {} of {} ({})",
        header.run_id,
        header.source.name,
        header.source.path
    );
    out!(
        "started {} on {} by {}, runproof {}",
        header.started_at,
        header.host,
        header.operator,
        header.runproof_version
    );
    let state = match (&bundle.seal, summary.verdict) {
        (Some(_), Some(verdict)) => format!(
            "sealed, run verdict: {}",
            serde_json::to_value(verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ),
        (Some(_), None) => "sealed".to_string(),
        (None, _) => "NOT sealed (the run crashed or is still running)".to_string(),
    };
    out!("{} records, {state}", summary.records);
    match (
        &header.signing_key,
        bundle.dir.join(crate::evidence::SIGNATURE_FILE).exists(),
    ) {
        (Some(key), true) => {
            out!("seal signed by key {key} (check it: runproof verify --allowed-signers FILE)")
        }
        (_, true) => out!("seal signed (check it: runproof verify --allowed-signers FILE)"),
        (Some(key), false) => out!("seal NOT signed, though the header names key {key}"),
        (None, false) => out!("seal not signed"),
    }
    if !header.vars.is_empty() {
        let vars: Vec<String> = header
            .vars
            .iter()
            .map(|(k, v)| {
                let mark = if header.vars_overridden.contains(k) {
                    " (--var)"
                } else {
                    ""
                };
                format!("{k}={v}{mark}")
            })
            .collect();
        out!("vars: {}", vars.join(", "));
    }
    out!("");
    out!(
        "{}",
        super::style::stdout().table_column(&report::table::render_steps(&summary), 3)
    );
    // What each step actually checked: vars filled in, secrets masked.
    for record in &bundle.records {
        if let Event::StepStart {
            step,
            target,
            rendered,
            ..
        }
        | Event::StepPass {
            step,
            target,
            rendered,
            ..
        } = &record.event
        {
            out!(
                "target of {step}: {}",
                rendered.as_deref().unwrap_or(target)
            );
        }
    }
    for (step, attempt, line) in probe_lines(&bundle.records) {
        out!("probes of {step}, attempt {attempt}: {line}");
    }
    for step in summary.steps.iter().filter(|s| s.escalation.is_some()) {
        let escalation = step.escalation.as_ref().expect("filtered");
        out!("\nescalated: {}", step.id);
        if let Some(owner) = &escalation.owner {
            out!("  owner: {owner}");
        }
        for attempt in &escalation.attempts {
            out!(
                "  attempt {}/{} (seq {}): {}",
                attempt.attempt,
                step.max_attempts,
                attempt.seq,
                attempt.reason
            );
        }
        if let Some(why) = &escalation.retries_skipped {
            out!("  retries skipped: {why}");
        }
        if let Some(hint) = &escalation.hint {
            out!("  hint: {hint}");
        }
    }
    // What the failed attempts saw, by role, with an excerpt of each blob
    // (blobs are redacted before they are written).
    for (step, lines) in failed_evidence(&bundle) {
        out!("\nevidence of the failed attempts of {step}:");
        for line in lines {
            out!("{line}");
        }
    }
    out!(
        "\ncheck integrity with: runproof verify {}",
        args.bundle.display()
    );
    Ok(ExitStatus::Success)
}

/// Lines per step whose failed attempts stored blobs: each attempt's reason,
/// then every blob it stored, named by role, with the first lines of its content.
fn failed_evidence(bundle: &crate::evidence::Bundle) -> Vec<(String, Vec<String>)> {
    const EXCERPT_BYTES: usize = 400;
    const EXCERPT_LINES: usize = 6;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for record in &bundle.records {
        let Event::AttemptEnd {
            step,
            attempt,
            of,
            verdict,
            reason,
            blobs,
            ..
        } = &record.event
        else {
            continue;
        };
        // Reasons alone are in the table and the escalation already.
        if *verdict == crate::core::record::AttemptVerdict::Pass || blobs.is_empty() {
            continue;
        }
        let mut lines = vec![format!(
            "  attempt {attempt}/{of} (seq {}): {}",
            record.seq,
            reason.as_deref().unwrap_or("failed")
        )];
        for blob in blobs {
            let hex = blob.digest.trim_start_matches("sha256:");
            let path = format!("blobs/sha256/{hex}");
            lines.push(format!(
                "    {}: {path} ({} bytes{})",
                role_label(&blob.role),
                blob.size,
                if blob.truncated { ", truncated" } else { "" }
            ));
            match std::fs::read(bundle.dir.join(&path)) {
                Ok(bytes) if bytes.contains(&0) => lines.push("      | (binary)".into()),
                Ok(bytes) => {
                    let cut = &bytes[..bytes.len().min(EXCERPT_BYTES)];
                    let text = String::from_utf8_lossy(cut);
                    for line in text.lines().take(EXCERPT_LINES) {
                        lines.push(format!("      | {line}"));
                    }
                    if bytes.len() > EXCERPT_BYTES || text.lines().count() > EXCERPT_LINES {
                        lines.push("      | …".into());
                    }
                }
                Err(e) => lines.push(format!("      | (cannot read: {e})")),
            }
        }
        match out.iter_mut().find(|(s, _)| s == step) {
            Some((_, existing)) => existing.extend(lines),
            None => out.push((step.clone(), lines)),
        }
    }
    out
}

/// `response.body` → `response body`; `stdout` stays; a collector's output
/// (`collect.fly_logs`) → `collected: fly logs`.
fn role_label(role: &str) -> String {
    let spaced = |s: &str| s.replace(['.', '_'], " ");
    match role
        .strip_prefix("collect.")
        .or_else(|| role.strip_prefix("collected."))
    {
        Some(rest) => format!("collected: {}", spaced(rest)),
        None => spaced(role),
    }
}

/// One line per attempt that sent several requests (a `webhook` step's
/// signed delivery and rejection probes): `signed 200 (3.1 ms), unsigned 401, …`.
/// QA reads here that forged deliveries were refused.
fn probe_lines(records: &[Record]) -> Vec<(String, u32, String)> {
    let mut lines: Vec<(String, u32, String)> = Vec::new();
    for record in records {
        let Event::Probe {
            step,
            attempt,
            probe,
            detail,
            ..
        } = &record.event
        else {
            continue;
        };
        let entry = format!("{probe} {}", crate::report::summary::probe_outcome(detail));
        // Sweeps interleave checks: look the attempt up rather than assume
        // its probes are adjacent.
        match lines
            .iter_mut()
            .rev()
            .find(|(s, a, _)| s == step && a == attempt)
        {
            Some((_, _, line)) => {
                line.push_str(", ");
                line.push_str(&entry);
            }
            _ => lines.push((step.clone(), *attempt, entry)),
        }
    }
    lines
}
