//! `command`: a local, non-interactive command with exit-code and output
//! expectations.
//!
//! The command runs in a session of its own (no controlling terminal), with
//! stdin closed and pagers disabled, so nothing can wait for a person. It is
//! judged by its exit status as soon as it exits: background descendants
//! that keep its stdout or stderr open get [`PIPE_GRACE`] to finish writing,
//! then the output is cut off (recorded as `output_cut_off`). When the
//! attempt ends for any reason — done, timed out, interrupted — its process
//! group and every descendant, even one that left the group with `setsid`,
//! is killed ([`super::reaper`]).

use std::collections::BTreeMap;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::expect::capture::{capture_all, CaptureInput, CaptureSpec};
use super::expect::{literal_regex_problem, Operand};
use super::reaper::{self, StepProcesses};
use super::{FailureClass, Observation, ProbeContext};
use crate::core::template::{Reference, Scope, Template, Templates};

/// `check = "command"`: exactly one of `argv` or `shell`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// Program and arguments, run without a shell.
    #[serde(default)]
    pub argv: Option<Vec<Template>>,
    /// A `sh -c` script.
    #[serde(default)]
    pub shell: Option<Template>,
    /// Working directory, relative to the runbook's folder.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Extra environment; pass secrets here, never in argv (argv shows in `ps`).
    #[serde(default)]
    pub env: BTreeMap<String, Template>,
    /// Pass the whole environment of runproof instead of a minimal one.
    #[serde(default)]
    pub inherit_env: bool,
    /// Written to the command's standard input through a pipe, then closed
    /// (`fly secrets import` reads `NAME=value` lines there): secrets reach
    /// the command without entering any process's argv. Never recorded.
    #[serde(default)]
    pub stdin: Option<Template>,
    /// Exit codes that retrying cannot change; the default, 126 and 127, are
    /// the shell's "cannot execute" and "command not found".
    #[serde(default)]
    pub permanent_exit_codes: Option<Vec<i32>>,
    /// Values taken from stdout for later steps (`{{steps.ID.NAME}}`): a
    /// JSON path, `{ json = "$.x" }` or `{ regex = "v(\\d+)" }`, optionally
    /// with `secret = true`.
    #[serde(default)]
    pub capture: BTreeMap<String, CaptureSpec>,
    /// `secret_in_argv = "accept-risk"`: the tool takes a secret only on its
    /// command line, and the runbook's author accepts that every local user
    /// can read it there. Without it, `{{secret:...}}` in `argv`/`shell` is
    /// a load error. Recorded in every attempt's evidence.
    #[serde(default)]
    pub secret_in_argv: Option<SecretInArgv>,
    /// What must hold for the check to pass (default: exit code 0).
    #[serde(default)]
    pub expect: CommandExpect,
}

/// Exit codes that mean "retrying cannot help" unless a step says otherwise.
const DEFAULT_PERMANENT_EXIT_CODES: [i32; 2] = [126, 127];
/// The one value of `secret_in_argv`: spelled out so that nobody opts in
/// by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum SecretInArgv {
    #[serde(rename = "accept-risk")]
    AcceptRisk,
}

/// `expect` for `command`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandExpect {
    /// Accepted exit codes (default 0).
    #[serde(default)]
    pub exit_code: Option<super::http::OneOrMany<i32>>,
    /// Text stdout must contain (templates allowed).
    #[serde(default)]
    pub stdout_contains: Option<Template>,
    /// A regex, or a list of regexes that must all match (templates allowed).
    #[serde(default)]
    pub stdout_regex: Option<Templates>,
    /// Text stderr must contain (templates allowed).
    #[serde(default)]
    pub stderr_contains: Option<Template>,
    /// A regex, or a list of regexes that must all match (templates allowed).
    #[serde(default)]
    pub stderr_regex: Option<Templates>,
    /// stdout parsed as JSON: path → expected value or predicate table.
    #[serde(default)]
    pub json: super::expect::JsonExpect,
}

impl CommandCheck {
    /// The command as written; `step.start` records it, with the accepted
    /// risk when the step opted in to a secret on the command line.
    pub fn target(&self) -> String {
        let command = match (&self.argv, &self.shell) {
            (Some(argv), _) => argv.iter().map(Template::raw).collect::<Vec<_>>().join(" "),
            (None, Some(shell)) => format!("sh -c {}", shell.raw()),
            (None, None) => String::new(),
        };
        // Where it ran is part of what ran.
        let command = match &self.cwd {
            Some(cwd) => format!("{command} (cwd {cwd})"),
            None => command,
        };
        match self.secret_in_argv {
            Some(SecretInArgv::AcceptRisk) => {
                format!("{command} (secret_in_argv = \"accept-risk\")")
            }
            None => command,
        }
    }

    /// Each `{{secret:...}}` of `argv` or `shell`, and each capture that
    /// `is_secret_capture(step, name)` says is a secret (with its template),
    /// unless the step accepts the risk: a process's arguments are readable
    /// by every local user (`ps`, `/proc/PID/cmdline`) and land in audit logs.
    pub(crate) fn secrets_on_command_line(
        &self,
        is_secret_capture: &dyn Fn(&str, &str) -> bool,
    ) -> Vec<(&Template, &Reference)> {
        if self.secret_in_argv.is_some() {
            return Vec::new();
        }
        self.argv
            .iter()
            .flatten()
            .chain(self.shell.as_ref())
            .flat_map(|t| {
                t.references()
                    .filter(|r| match r {
                        Reference::Secret(_) => true,
                        Reference::Capture { step, name } => is_secret_capture(step, name),
                        _ => false,
                    })
                    .map(move |r| (t, r))
            })
            .collect()
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
        for (key, patterns) in [
            ("stdout_regex", &e.stdout_regex),
            ("stderr_regex", &e.stderr_regex),
        ] {
            for pattern in patterns.iter().flat_map(Templates::as_slice) {
                if let Some(problem) = literal_regex_problem(&format!("expect.{key}"), pattern) {
                    problems.push((problem, pattern.span()));
                }
            }
        }
        problems
    }

    /// Runs the command once, as a probe does: used for a step's `collect`
    /// diagnostics, whose expectations are only "it ran".
    pub async fn run(&self, ctx: &ProbeContext<'_>) -> Observation {
        self.probe(ctx).await
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
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
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
        // Set last, so a runbook's `env` cannot unmark the attempt's processes.
        let marker = reaper::new_marker();
        command.env(reaper::ATTEMPT_ENV, &marker);
        if let Some(cwd) = &self.cwd {
            // Relative to the runbook's folder, like `env_files`.
            let dir = ctx.path(cwd);
            // Checked here: spawn would blame the program for a missing folder.
            if !dir.is_dir() {
                return Err(Observation::fail_permanent(
                    FailureClass::Config,
                    format!(
                        "cwd `{cwd}` ({}) is not a folder; a relative cwd is taken from the runbook's folder",
                        dir.display()
                    ),
                    "a missing folder does not appear by waiting",
                ));
            }
            command.current_dir(dir);
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
        let processes = StepProcesses::new(child.id(), marker);
        let stdin_bytes = match (&self.stdin, child.stdin.take()) {
            (Some(template), Some(mut pipe)) => {
                let text = ctx.render(template)?;
                // A command that exits without reading its input closes the
                // pipe: that is its business, not a failed attempt.
                let _ = pipe.write_all(text.as_bytes()).await;
                drop(pipe);
                Some(text.len())
            }
            _ => None,
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stdout = tokio::spawn(read_capped(child.stdout.take(), stopped.clone()));
        let stderr = tokio::spawn(read_capped(child.stderr.take(), stopped));
        let status = child.wait().await.map_err(|err| {
            Observation::fail(
                FailureClass::Io,
                format!("waiting for the command failed: {err}"),
            )
        })?;
        let elapsed = started.elapsed();
        // The command is judged by its exit status from here on. Background
        // descendants may still hold the pipes open: give them a short grace
        // to finish writing, then kill every process of the attempt so the
        // readers see EOF; cut the output off if something still holds it.
        let mut readers = Box::pin(async { (stdout.await, stderr.await) });
        let mut cut_off = false;
        let mut killed = 0;
        let (stdout, stderr) = match tokio::time::timeout(PIPE_GRACE, &mut readers).await {
            Ok(done) => done,
            Err(_) => {
                cut_off = true;
                killed += processes.kill_all();
                match tokio::time::timeout(DRAIN, &mut readers).await {
                    Ok(done) => done,
                    Err(_) => {
                        let _ = stop.send(true);
                        readers.await
                    }
                }
            }
        };
        // Descendants that do not hold the pipes (`setsid cmd >/dev/null &`)
        // must not outlive the step either.
        killed += processes.kill_all();
        let (stdout, stdout_truncated) = stdout.unwrap_or_default();
        let (stderr, stderr_truncated) = stderr.unwrap_or_default();

        let mut observation = Observation::pass()
            .with_detail("command", self.target())
            .with_detail("duration_ms", elapsed.as_secs_f64() * 1000.0);
        if let Some(bytes) = stdin_bytes {
            observation = observation.with_detail("stdin_bytes", bytes);
        }
        let stdout_json = serde_json::from_slice::<serde_json::Value>(&stdout).ok();
        // Captures first: a secret one must be registered with the redactor
        // before stdout is stored.
        let input = CaptureInput {
            text: &stdout,
            json: stdout_json.as_ref(),
            header: None,
            status: None,
            what: "stdout",
        };
        let capture_error =
            capture_all(&self.capture, &input, ctx.blobs, &mut observation.captures);
        if self.secret_in_argv.is_some() {
            observation = observation.with_detail("secret_in_argv", "accept-risk");
        }
        if cut_off {
            observation = observation.with_detail("output_cut_off", true);
        }
        if killed > 0 {
            observation = observation.with_detail("descendants_killed", killed as u64);
        }
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
                // A failed write is also kept by the bundle (evidence.error,
                // exit 3); the attempt says which stream it lost.
                match ctx.blobs.put(role, bytes, truncated) {
                    Ok(blob) => observation.blobs.push(blob),
                    Err(err) => {
                        observation =
                            observation.with_detail(&format!("{role}_blob_error"), err.to_string())
                    }
                }
            }
        }

        let mut failures = self.unmet_expectations(status, &stdout, &stderr, ctx.scope);
        if !self.expect.json.is_empty() {
            match &stdout_json {
                Some(doc) => failures.extend(self.expect.json.unmet("stdout JSON", doc, ctx.scope)),
                None => failures.push("stdout is not JSON".to_string()),
            }
        }
        failures.extend(capture_error);
        if !self.capture.is_empty() && failures.is_empty() {
            let names: Vec<serde_json::Value> =
                self.capture.keys().map(|k| k.as_str().into()).collect();
            observation = observation.with_detail("captured", names);
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
            observation.captures.clear();
            let permanent = self
                .permanent_exit_codes
                .as_deref()
                .unwrap_or(&DEFAULT_PERMANENT_EXIT_CODES);
            observation.outcome = super::Outcome::Fail(match status.code() {
                Some(code) if permanent.contains(&code) => super::Failure::permanent(
                    super::FailureClass::Expectation,
                    reason,
                    format!("exit code {code} is one that retrying cannot change (permanent_exit_codes)"),
                ),
                _ => super::Failure::new(super::FailureClass::Expectation, reason),
            });
        }
        Ok(observation)
    }

    fn unmet_expectations(
        &self,
        status: std::process::ExitStatus,
        stdout: &[u8],
        stderr: &[u8],
        scope: &dyn Scope,
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
                match Operand::render(&format!("expect.{name}_contains"), needle, scope) {
                    Ok(needle) if text.contains(needle.value.as_str()) => {}
                    Ok(needle) => {
                        failures.push(format!("{name} does not contain {:?}", needle.shown))
                    }
                    Err(err) => failures.push(err),
                }
            }
            for pattern in pattern.iter().flat_map(Templates::as_slice) {
                match Operand::regex(&format!("expect.{name}_regex"), pattern, scope) {
                    Ok((re, _)) if re.is_match(&text) => {}
                    Ok((_, shown)) => failures.push(format!("{name} does not match /{shown}/")),
                    Err(err) => failures.push(err),
                }
            }
        }
        failures
    }
}

/// Output kept per stream; the rest is read and dropped so the child never
/// blocks on a full pipe.
const OUTPUT_CAP: usize = 1024 * 1024;

/// How long after the command exits its pipes may stay open (a background
/// descendant still writing) before the attempt's processes are killed and
/// the output is cut off. Documented in the README.
pub const PIPE_GRACE: Duration = Duration::from_millis(250);

/// After the kill, how long the readers get to drain what is buffered.
const DRAIN: Duration = Duration::from_millis(100);

/// Reads a stream to its end, keeping [`OUTPUT_CAP`] bytes, or until `stop`
/// turns true (a process that escaped the kill still holds the pipe).
async fn read_capped(
    stream: Option<impl AsyncRead + Unpin>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<u8>, bool) {
    let Some(mut stream) = stream else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = stream.read(&mut buf) => read,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        match read {
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
    Some(crate::core::cut::cut(line, 200))
}
