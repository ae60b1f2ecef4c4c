//! `command`: a local, non-interactive command with exit-code and output
//! expectations.
//!
//! The command runs in a session of its own (no controlling terminal), with
//! stdin closed and pagers disabled, so nothing can wait for a person. When
//! the attempt ends for any reason — done, timed out, interrupted — its whole
//! process group is killed, children included.

use std::collections::BTreeMap;

use std::process::Stdio;
use std::time::Instant;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{FailureClass, Observation, ProbeContext};
use crate::core::template::Template;

/// `check = "command"`: exactly one of `argv` or `shell`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// Program and arguments, run without a shell.
    #[serde(default)]
    pub argv: Option<Vec<Template>>,
    /// A `sh -c` script.
    #[serde(default)]
    pub shell: Option<Template>,
    /// Working directory (relative to where runproof runs).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Extra environment; pass secrets here, never in argv (argv shows in `ps`).
    #[serde(default)]
    pub env: BTreeMap<String, Template>,
    /// Pass the whole environment of runproof instead of a minimal one.
    #[serde(default)]
    pub inherit_env: bool,
    #[serde(default)]
    pub expect: CommandExpect,
}

/// `expect` for `command`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandExpect {
    /// Accepted exit codes (default 0).
    #[serde(default)]
    pub exit_code: Option<super::http::OneOrMany<i32>>,
    #[serde(default)]
    pub stdout_contains: Option<String>,
    #[serde(default)]
    pub stdout_regex: Option<String>,
    #[serde(default)]
    pub stderr_contains: Option<String>,
    #[serde(default)]
    pub stderr_regex: Option<String>,
    /// stdout parsed as JSON: path → expected value or predicate table.
    #[serde(default)]
    pub json: super::expect::JsonExpect,
}

impl CommandCheck {
    pub(super) fn target(&self) -> String {
        let command = match (&self.argv, &self.shell) {
            (Some(argv), _) => argv.iter().map(Template::raw).collect::<Vec<_>>().join(" "),
            (None, Some(shell)) => format!("sh -c {}", shell.raw()),
            (None, None) => String::new(),
        };
        // Where it ran is part of what ran.
        match &self.cwd {
            Some(cwd) => format!("{command} (cwd {cwd})"),
            None => command,
        }
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        match (&self.argv, &self.shell) {
            (Some(_), Some(shell)) => problems.push((
                "give either `argv` or `shell`, not both".to_string(),
                shell.span(),
            )),
            (None, None) => problems.push((
                "a command step needs `argv` (a list) or `shell` (a string)".to_string(),
                0..0,
            )),
            (Some(argv), None) if argv.is_empty() => {
                problems.push(("`argv` is empty".to_string(), 0..0))
            }
            _ => {}
        }
        let e = &self.expect;
        for (key, pattern) in [
            ("stdout_regex", &e.stdout_regex),
            ("stderr_regex", &e.stderr_regex),
        ] {
            if let Some(Err(err)) = pattern.as_deref().map(regex::Regex::new) {
                problems.push((format!("invalid regex in expect.{key}: {err}"), 0..0));
            }
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        match self.attempt(ctx).await {
            Ok(observation) | Err(observation) => observation,
        }
    }

    async fn attempt(&self, ctx: &ProbeContext<'_>) -> Result<Observation, Observation> {
        let argv: Vec<String> = match (&self.argv, &self.shell) {
            (Some(argv), _) => argv
                .iter()
                .map(|a| ctx.render(a))
                .collect::<Result<_, _>>()?,
            (None, Some(shell)) => vec!["sh".into(), "-c".into(), ctx.render(shell)?],
            (None, None) => {
                return Err(Observation::fail_permanent(
                    FailureClass::Config,
                    "no command given",
                    "invalid configuration",
                ))
            }
        };
        let Some((program, args)) = argv.split_first() else {
            return Err(Observation::fail_permanent(
                FailureClass::Config,
                "`argv` is empty",
                "invalid configuration",
            ));
        };

        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if !self.inherit_env {
            command.env_clear();
            for key in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"] {
                if let Ok(value) = std::env::var(key) {
                    command.env(key, value);
                }
            }
        }
        command
            .env("PAGER", "cat")
            .env("GIT_PAGER", "cat")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("TERM", "dumb");
        for (key, value) in &self.env {
            command.env(key, ctx.render(value)?);
        }
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        // SAFETY: setsid is async-signal-safe and runs in the forked child
        // before exec. A new session means no controlling terminal (nothing can
        // prompt) and a process group we can kill as a whole.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }

        let started = Instant::now();
        let mut child = command.spawn().map_err(|err| {
            // Whatever the io kind (missing, not executable), a command that
            // cannot start is a local process failure.
            Observation::fail_permanent(
                FailureClass::Io,
                format!("cannot start `{program}`: {err}"),
                "the program is missing or not executable",
            )
        })?;
        let _group = child.id().map(ProcessGroup);
        let stdout = tokio::spawn(read_capped(child.stdout.take()));
        let stderr = tokio::spawn(read_capped(child.stderr.take()));
        let status = child.wait().await.map_err(|err| {
            Observation::fail(
                FailureClass::Io,
                format!("waiting for the command failed: {err}"),
            )
        })?;
        // Background children may still hold the pipes open: end the group so
        // the readers see EOF.
        drop(_group);
        let (stdout, stdout_truncated) = stdout.await.unwrap_or_default();
        let (stderr, stderr_truncated) = stderr.await.unwrap_or_default();
        let elapsed = started.elapsed();

        let mut observation = Observation::pass()
            .with_detail("command", self.target())
            .with_detail("duration_ms", elapsed.as_secs_f64() * 1000.0);
        match status.code() {
            Some(code) => observation = observation.with_detail("exit_code", code),
            None => {
                use std::os::unix::process::ExitStatusExt;
                observation =
                    observation.with_detail("signal", status.signal().unwrap_or_default());
            }
        }
        for (role, bytes, truncated) in [
            ("stdout", &stdout, stdout_truncated),
            ("stderr", &stderr, stderr_truncated),
        ] {
            if !bytes.is_empty() {
                if let Ok(blob) = ctx.blobs.put(role, bytes, truncated) {
                    observation.blobs.push(blob);
                }
            }
        }

        let mut failures = self.unmet_expectations(status, &stdout, &stderr);
        if !self.expect.json.is_empty() {
            match serde_json::from_slice::<serde_json::Value>(&stdout) {
                Ok(doc) => failures.extend(self.expect.json.unmet("stdout JSON", &doc, ctx.scope)),
                Err(err) => failures.push(format!("stdout is not JSON: {err}")),
            }
        }
        if let Some(first) = failures.first() {
            let mut reason = first.clone();
            if failures.len() > 1 {
                reason.push_str(&format!(
                    " (and {} more: {})",
                    failures.len() - 1,
                    failures[1..].join("; ")
                ));
            }
            let tail = last_line(&stderr).or_else(|| last_line(&stdout));
            if let Some(tail) = tail {
                reason.push_str(&format!("; last output: {tail}"));
            }
            observation.outcome = super::Outcome::Fail(super::Failure::new(
                super::FailureClass::Expectation,
                reason,
            ));
        }
        Ok(observation)
    }

    fn unmet_expectations(
        &self,
        status: std::process::ExitStatus,
        stdout: &[u8],
        stderr: &[u8],
    ) -> Vec<String> {
        let e = &self.expect;
        let mut failures = Vec::new();
        match status.code() {
            Some(code) => {
                let ok = match &e.exit_code {
                    Some(expected) => expected.contains(&code),
                    None => code == 0,
                };
                if !ok {
                    let wanted = match &e.exit_code {
                        Some(super::http::OneOrMany::One(c)) => c.to_string(),
                        Some(super::http::OneOrMany::Many(list)) => list
                            .iter()
                            .map(i32::to_string)
                            .collect::<Vec<_>>()
                            .join(" or "),
                        None => "0".into(),
                    };
                    failures.push(format!("exit code {code}, want {wanted}"));
                }
            }
            None => {
                use std::os::unix::process::ExitStatusExt;
                failures.push(format!(
                    "killed by signal {}",
                    status.signal().unwrap_or_default()
                ));
            }
        }
        let streams = [
            ("stdout", stdout, &e.stdout_contains, &e.stdout_regex),
            ("stderr", stderr, &e.stderr_contains, &e.stderr_regex),
        ];
        for (name, bytes, contains, pattern) in streams {
            let text = String::from_utf8_lossy(bytes);
            if let Some(needle) = contains {
                if !text.contains(needle.as_str()) {
                    failures.push(format!("{name} does not contain {needle:?}"));
                }
            }
            if let Some(pattern) = pattern {
                match regex::Regex::new(pattern) {
                    Ok(re) if re.is_match(&text) => {}
                    Ok(_) => failures.push(format!("{name} does not match /{pattern}/")),
                    Err(err) => failures.push(format!("invalid regex /{pattern}/: {err}")),
                }
            }
        }
        failures
    }
}

/// Output kept per stream; the rest is read and dropped so the child never
/// blocks on a full pipe.
const OUTPUT_CAP: usize = 1024 * 1024;

async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let Some(mut stream) = stream else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP - kept.len();
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    let line: String = line.chars().take(200).collect();
    Some(line)
}

/// Kills the command's whole process group when dropped — on success, on
/// timeout (the engine drops the attempt's future) and on interruption.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // child leads (setsid made its pgid equal its pid).
        unsafe {
            libc::kill(-(self.0 as libc::pid_t), libc::SIGKILL);
        }
    }
}
