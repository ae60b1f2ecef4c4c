//! `--operator` and `--sign-key`: who ran a session and which key signs its
//! seal, resolved once for `run`, `sweep` and `webhook listen`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::evidence::SealSigner;
use crate::session::Provenance;

/// The flags every bundle-writing command shares.
#[derive(Debug, Clone, Default, Args)]
pub struct ProvenanceArgs {
    /// Who runs this, as recorded in the bundle (default: $RUNPROOF_OPERATOR,
    /// else git's user.name <user.email>, else the user name).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Sign seal.json with this OpenSSH ed25519 key (SSHSIG, namespace
    /// runproof-seal) into seal.json.sig: a private key file, or a .pub whose
    /// private half is in ssh-agent. Default: $RUNPROOF_SIGN_KEY.
    #[arg(long, value_name = "PATH")]
    pub sign_key: Option<PathBuf>,
}

/// Resolves the operator and loads the signing key (before anything runs, so
/// a bad key fails the command at once, exit 2).
pub fn resolve(
    args: &ProvenanceArgs,
    overridden_vars: Vec<String>,
) -> Result<Provenance, CliError> {
    let sign_key = args.sign_key.clone().or_else(|| {
        std::env::var_os("RUNPROOF_SIGN_KEY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let agent = std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from);
    let signer = match sign_key {
        Some(path) => Some(Arc::new(
            SealSigner::load(&path, agent.as_deref())
                .map_err(|e| CliError::invalid(e.to_string()))?,
        )),
        None => None,
    };
    Ok(Provenance {
        operator: Some(operator(args.operator.as_deref())),
        signer,
        overridden_vars,
        resumed_from: None,
    })
}

/// The operator's name and where it came from.
fn operator(flag: Option<&str>) -> (String, String) {
    let clean = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    if let Some(name) = flag.and_then(clean) {
        return (name, "--operator".into());
    }
    if let Some(name) = std::env::var("RUNPROOF_OPERATOR")
        .ok()
        .as_deref()
        .and_then(clean)
    {
        return (name, "RUNPROOF_OPERATOR".into());
    }
    // Both asked at once: each is a process start (a few ms).
    let ask_git = |key: &str| {
        Command::new("git")
            .args(["config", "--get", key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    };
    let answer = |child: Option<std::process::Child>| {
        child
            .and_then(|child| child.wait_with_output().ok())
            .filter(|o| o.status.success())
            .and_then(|o| clean(&String::from_utf8_lossy(&o.stdout)))
    };
    let (name, email) = (ask_git("user.name"), ask_git("user.email"));
    let git = [answer(name), answer(email)];
    match git {
        [Some(name), Some(email)] => return (format!("{name} <{email}>"), "git".into()),
        [Some(name), None] => return (name, "git".into()),
        [None, Some(email)] => return (email, "git".into()),
        [None, None] => {}
    }
    for var in ["USER", "LOGNAME"] {
        if let Some(name) = std::env::var(var).ok().as_deref().and_then(clean) {
            return (name, var.into());
        }
    }
    ("unknown".into(), "none".into())
}
