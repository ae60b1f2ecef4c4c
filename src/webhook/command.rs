//! `runproof webhook sign` and `runproof webhook verify` as library functions:
//! plain argument structs in, the text to print out. The CLI layer parses
//! flags into [`SignArgs`] / [`VerifyArgs`] and maps errors to exit codes.

use std::path::PathBuf;
use std::time::Duration;

use super::signature::{self, DEFAULT_MAX_AGE};
use super::{
    process_env, secret_from_env, WebhookError, HEADER_DELIVERY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use crate::core::duration::format_duration;

/// `runproof webhook sign --secret-env NAME [--timestamp T] [--delivery ID] [--curl URL] BODY_FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignArgs {
    /// The environment variable holding the secret.
    pub secret_env: String,
    /// Unix seconds; default: now.
    pub timestamp: Option<String>,
    /// `X-Chatwoot-Delivery`; default: a fresh UUIDv4.
    pub delivery: Option<String>,
    /// Print a shell command that POSTs the file to this URL, signing at run time.
    pub curl: Option<String>,
    pub body_file: PathBuf,
}

/// `runproof webhook verify --secret-env NAME --signature S --timestamp T [--max-age 300s] [--now T] BODY_FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyArgs {
    pub secret_env: String,
    /// The `X-Chatwoot-Signature` value received (`None` when it was absent).
    pub signature: Option<String>,
    /// The `X-Chatwoot-Timestamp` value received.
    pub timestamp: Option<String>,
    /// The replay window (default 300 s).
    pub max_age: Duration,
    /// Unix seconds to verify against instead of the clock (to check old captures).
    pub now: Option<i64>,
    pub body_file: PathBuf,
}

impl VerifyArgs {
    /// Arguments with the default replay window and the real clock.
    pub fn new(secret_env: impl Into<String>, body_file: impl Into<PathBuf>) -> Self {
        VerifyArgs {
            secret_env: secret_env.into(),
            signature: None,
            timestamp: None,
            max_age: DEFAULT_MAX_AGE,
            now: None,
            body_file: body_file.into(),
        }
    }
}

/// Signs with the secret from the process environment; returns the text to print.
pub fn sign_command(args: &SignArgs) -> Result<String, WebhookError> {
    sign_command_with(args, &process_env, jiff::Timestamp::now().as_second())
}

/// [`sign_command`] with an injectable environment and clock.
///
/// Without `--curl`: the three headers, one per line. With `--curl URL`: a
/// POSIX shell snippet that reads the secret from `$NAME` when it runs, so the
/// secret is never part of the printed text (nor of shell history).
pub fn sign_command_with(
    args: &SignArgs,
    lookup: &dyn Fn(&str) -> Option<String>,
    now_unix: i64,
) -> Result<String, WebhookError> {
    if let Some(value) = &args.timestamp {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 18 {
            return Err(WebhookError::BadTimestamp {
                value: value.clone(),
            });
        }
    }
    if let Some(value) = &args.delivery {
        if value.is_empty() || value.chars().any(|c| c.is_control() || c == '\'') {
            return Err(WebhookError::BadDelivery {
                value: value.clone(),
            });
        }
    }
    if let Some(url) = &args.curl {
        super::check_env_name(&args.secret_env)?;
        return curl_command(args, url);
    }
    let secret = secret_from_env(&args.secret_env, lookup)?;
    let body = read_body(&args.body_file)?;
    let timestamp = args
        .timestamp
        .clone()
        .unwrap_or_else(|| now_unix.to_string());
    let delivery = args
        .delivery
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let signature = signature::sign(secret.as_bytes(), &timestamp, &body);
    Ok(format!(
        "{HEADER_SIGNATURE}: {signature}\n{HEADER_TIMESTAMP}: {timestamp}\n{HEADER_DELIVERY}: {delivery}\n"
    ))
}

/// The shell snippet for `--curl`. The secret is referenced as `"$NAME"` only.
fn curl_command(args: &SignArgs, url: &str) -> Result<String, WebhookError> {
    let parsed = url::Url::parse(url).map_err(|err| WebhookError::BadUrl {
        value: url.to_string(),
        why: err.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WebhookError::BadUrl {
            value: url.to_string(),
            why: "only http and https URLs can receive webhooks".to_string(),
        });
    }
    // Readable now, so a typo fails here rather than when the snippet runs.
    read_body(&args.body_file)?;
    let name = &args.secret_env;
    let body = shell_quote(&args.body_file.to_string_lossy());
    let timestamp = match &args.timestamp {
        Some(t) => t.clone(),
        None => "$(date +%s)".to_string(),
    };
    let delivery = match &args.delivery {
        Some(d) => shell_quote(d),
        // A fresh id per run of the snippet: a fixed one would be a replay.
        None => "$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen)".to_string(),
    };
    // HMAC-SHA256 from its definition, H((K^opad) || H((K^ipad) || m)),
    // with two plain `openssl dgst` passes: `openssl dgst -hmac KEY` and
    // `openssl mac -macopt key:KEY` take the key only on their command line
    // (OpenSSL 3 has no env: or file: form for MAC keys), where every user
    // of the machine can read it. Here the key's bytes go from the shell
    // (`printf` is a builtin) through a pipe into `od`, and the padded keys
    // are written by the builtin too: no process ever has it in its argv.
    let script = r#"# Signs at run time with the secret in $@NAME@ (never written here, and never an argument of any process): HMAC-SHA256 of "<timestamp>.<body>".
: "${@NAME@:?set @NAME@ to the webhook secret}"
body=@BODY@
ts=@TS@
delivery=@DELIVERY@
_rp_key() { if [ $(( $(printf '%s' "$@NAME@" | wc -c) )) -gt 64 ]; then printf '%s' "$@NAME@" | openssl dgst -sha256 -binary; else printf '%s' "$@NAME@"; fi | od -An -v -tu1; }
_rp_pad() { n=0; for b in $(_rp_key); do printf "\\$(printf '%03o' $((b ^ $1)))"; n=$((n + 1)); done; while [ "$n" -lt 64 ]; do printf "\\$(printf '%03o' "$1")"; n=$((n + 1)); done; }
sig=$( { _rp_pad 92; { _rp_pad 54; printf '%s.' "$ts"; cat -- "$body"; } | openssl dgst -sha256 -binary; } | openssl dgst -sha256 -r | cut -d' ' -f1 )
curl -sS -X POST @URL@ \
  -H 'Content-Type: application/json' -H 'Accept: application/json' \
  -H "@H_TS@: $ts" \
  -H "@H_SIG@: sha256=$sig" \
  -H "@H_DELIVERY@: $delivery" \
  --data-binary @"$body"
"#;
    let url = shell_quote(parsed.as_str());
    // One pass, so that a path or URL containing `@TS@` stays as written.
    let placeholder = regex::Regex::new("@([A-Z_]+)@").expect("valid regex");
    let filled = placeholder.replace_all(script, |c: &regex::Captures<'_>| match &c[1] {
        "NAME" => name.to_string(),
        "BODY" => body.clone(),
        "TS" => timestamp.clone(),
        "DELIVERY" => delivery.clone(),
        "URL" => url.clone(),
        "H_TS" => HEADER_TIMESTAMP.to_string(),
        "H_SIG" => HEADER_SIGNATURE.to_string(),
        "H_DELIVERY" => HEADER_DELIVERY.to_string(),
        _ => c[0].to_string(),
    });
    Ok(filled.into_owned())
}

/// Verifies with the secret from the process environment. `Ok` holds the
/// line to print for a valid delivery; [`WebhookError::Invalid`] the reason it is not.
pub fn verify_command(args: &VerifyArgs) -> Result<String, WebhookError> {
    verify_command_with(args, &process_env, jiff::Timestamp::now().as_second())
}

/// [`verify_command`] with an injectable environment and clock (`--now` wins over `now_unix`).
pub fn verify_command_with(
    args: &VerifyArgs,
    lookup: &dyn Fn(&str) -> Option<String>,
    now_unix: i64,
) -> Result<String, WebhookError> {
    let secret = secret_from_env(&args.secret_env, lookup)?;
    let body = read_body(&args.body_file)?;
    let now = args.now.unwrap_or(now_unix);
    signature::verify(
        secret.as_bytes(),
        args.signature.as_deref(),
        args.timestamp.as_deref(),
        &body,
        now,
        args.max_age,
    )?;
    let age = args
        .timestamp
        .as_deref()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .map(|t| now - t)
        .unwrap_or(0);
    // Within the window the timestamp may also lie up to FUTURE_SKEW ahead.
    let age = if age >= 0 {
        format!("{} old", signature::human_age(age.unsigned_abs()))
    } else {
        format!("{} ahead", signature::human_age(age.unsigned_abs()))
    };
    Ok(format!(
        "valid: signature matches HMAC-SHA256(secret, \"<timestamp>.<body>\") over {} bytes; timestamp {age} (window {})",
        body.len(),
        format_duration(args.max_age)
    ))
}

fn read_body(path: &std::path::Path) -> Result<Vec<u8>, WebhookError> {
    std::fs::read(path).map_err(|source| WebhookError::ReadBody {
        path: path.to_path_buf(),
        source,
    })
}

/// Single-quotes `text` for POSIX shells.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
