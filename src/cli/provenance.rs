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

/// git's `user.name` and `user.email` (the values that win, as `git config
/// --get` gives them), from one `git config` process; `None` for each one
/// not set or when git cannot tell.
fn ask_git_user() -> [Option<String>; 2] {
    let output = Command::new("git")
        .args(["config", "-z", "--get-regexp", r"^user\.(name|email)$"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            git_user_from(&String::from_utf8_lossy(&output.stdout))
        }
        _ => [None, None],
    }
}

/// [`ask_git_user`]'s answer read from `git config -z --get-regexp`'s
/// output: entries ended by NUL, each its key, a newline and its value (a
/// key set without a value has no newline). The last entry of a key wins,
/// as with `git config --get`.
fn git_user_from(listed: &str) -> [Option<String>; 2] {
    let mut user = [None, None];
    for entry in listed.split('\0') {
        let Some((key, value)) = entry.split_once('\n') else {
            continue;
        };
        let slot = match key {
            "user.name" => 0,
            "user.email" => 1,
            _ => continue,
        };
        let value = value.trim();
        user[slot] = (!value.is_empty()).then(|| value.to_string());
    }
    user
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
    // Both asked of one git: a process start is a few ms on an idle
    // machine, and tens of ms while the input's validation keeps every
    // core busy (a sweep waits for the operator before its bundle starts).
    let git = ask_git_user();
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

#[cfg(test)]
mod tests {
    use super::git_user_from;

    #[test]
    fn git_users_last_values_win_and_empty_or_valueless_ones_do_not_count() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            git_user_from("user.name\nDana Ops\0user.email\ndana@example.test\0"),
            [some("Dana Ops"), some("dana@example.test")]
        );
        // System, global, then local: the last one of each key wins.
        assert_eq!(
            git_user_from("user.name\nA\0user.email\na@x\0user.name\n B \0"),
            [some("B"), some("a@x")]
        );
        assert_eq!(
            git_user_from("user.name\nA\0user.name\n\0user.email\0"),
            [None, None]
        );
        // A value with a newline in it keeps it; other keys are not ours.
        assert_eq!(
            git_user_from("user.name\nA\nB\0user.namex\nC\0"),
            [some("A\nB"), None]
        );
        assert_eq!(git_user_from(""), [None, None]);
    }
}
