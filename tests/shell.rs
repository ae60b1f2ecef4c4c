//! The shell and editor conveniences through the real binary: completion
//! scripts, the manual page, `--color`, `init`, `schema`, check files in
//! `lint`/`plan`, `sweep --var` and `webhook listen --artifacts`.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

// -------------------------------------------------------------- completions

#[test]
fn bash_completion_script_parses_and_knows_the_commands() {
    let output = runproof().args(["completions", "bash"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let script = stdout_of(&output);
    for word in ["sweep", "lint", "--artifacts", "--color", "completions"] {
        assert!(script.contains(word), "no {word} in the script");
    }
    let ws = Workspace::new();
    let path = ws.write("runproof.bash", &script);
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(check.status.success(), "bash -n: {}", stderr_of(&check));
    // Sourcing it registers the completion function.
    let sourced = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p runproof",
            path.display()
        ))
        .output()
        .unwrap();
    assert!(
        stdout_of(&sourced).contains("runproof"),
        "{}",
        stderr_of(&sourced)
    );
}

#[test]
fn every_shell_gets_a_completion_script() {
    for (shell, marker) in [
        ("zsh", "#compdef runproof"),
        ("fish", "complete -c runproof"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[runproof]"),
    ] {
        let output = runproof().args(["completions", shell]).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            describe(&output)
        );
        assert!(
            stdout_of(&output).contains(marker),
            "{shell}: no `{marker}` in the script"
        );
    }
    let output = runproof().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

#[test]
fn man_prints_a_roff_page_with_every_command() {
    let output = runproof().arg("man").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let page = stdout_of(&output);
    assert!(page.starts_with(".TH"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains(".SH NAME"), "no NAME section");
    for command in ["run", "lint", "sweep", "verify", "init", "schema"] {
        assert!(
            page.contains(&format!("runproof\\-{command}")) || page.contains(command),
            "no {command} in the page"
        );
    }
}

// ------------------------------------------------------------ webhook listen

#[test]
fn webhook_listen_documents_artifacts_and_keeps_out_as_a_hidden_alias() {
    let help = runproof()
        .args(["webhook", "listen", "--help"])
        .output()
        .unwrap();
    let text = stdout_of(&help);
    assert!(text.contains("--artifacts <DIR>"), "{text}");
    assert!(!text.contains("--out"), "{text}");
    // The old spelling still parses: the listener fails only on the missing
    // secret, after the arguments were accepted.
    for flag in ["--out", "--artifacts"] {
        let ws = Workspace::new();
        let output = runproof()
            .args(["webhook", "listen", "--addr", "127.0.0.1:0"])
            .args(["--secret-env", "RUNPROOF_TEST_UNSET_SECRET", flag])
            .arg(ws.artifacts())
            .env_remove("RUNPROOF_TEST_UNSET_SECRET")
            .output()
            .unwrap();
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("RUNPROOF_TEST_UNSET_SECRET")
                && !stderr.contains("unexpected argument"),
            "{flag}: {}",
            describe(&output)
        );
    }
}

// ------------------------------------------------- check files: lint, plan

const BAD_CHECKS: &str =
    "[[check]]\nid = \"a\"\ncheck = \"command\"\nargv = [\"true\"]\nretires = 2\n\n\
[[check]]\nid = \"b\"\ncheck = \"command\"\nargv = [\"true\"]\ndepends_on = [\"nope\"]\n";

#[test]
fn lint_accepts_check_files_and_runbooks_together() {
    let output = runproof()
        .arg("lint")
        .arg(repo().join("checks/example.toml"))
        .arg(repo().join("runbooks/demo.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("example.toml (check file, 4 checks)"),
        "{stdout}"
    );
    assert!(stdout.contains("demo.toml (9 steps)"), "{stdout}");
}

#[test]
fn check_file_diagnostics_say_check_not_step() {
    let ws = Workspace::new();
    let path = ws.write("bad.toml", BAD_CHECKS);
    let output = runproof().arg("lint").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("unknown key `retires` in check `a`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `retries`?"), "{stderr}");
    assert!(
        stderr.contains("check `b` depends on unknown check `nope`"),
        "{stderr}"
    );
    assert!(stderr.contains(":5:1"), "{stderr}");
    assert!(stderr.contains("check file"), "{stderr}");
    assert!(!stderr.contains("step"), "{stderr}");
    assert!(!stderr.contains("unknown table"), "{stderr}");
    // The same through sweep.
    let output = runproof().arg("sweep").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        !stderr_of(&output).contains("step"),
        "{}",
        describe(&output)
    );
}

#[test]
fn plan_lists_the_checks_of_a_check_file_with_secrets_masked() {
    let ws = Workspace::new();
    let path = ws.write(
        "checks.toml",
        "[secrets]\nrequired = [\"TOKEN\"]\n[vars]\nbase = \"http://127.0.0.1:9\"\n\
         [[check]]\nid = \"health\"\ncheck = \"http\"\nurl = \"{{base}}/health?t={{secret:TOKEN}}\"\ntags = [\"team=web\"]\n\
         [[check]]\nid = \"after\"\ncheck = \"command\"\nargv = [\"true\"]\ndepends_on = [\"health\"]\n",
    );
    let output = runproof()
        .arg("plan")
        .arg(&path)
        .args(["--var", "base=http://127.0.0.1:7"])
        .env("TOKEN", "plan-must-not-show-this")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("check file:"), "{stdout}");
    assert!(stdout.contains("1. health [http]"), "{stdout}");
    assert!(stdout.contains("http://127.0.0.1:7/health"), "{stdout}");
    assert!(stdout.contains("2. after [command]"), "{stdout}");
    assert!(stdout.contains("after:   health"), "{stdout}");
    assert!(stdout.contains("tags:    team=web"), "{stdout}");
    assert!(!stdout.contains("plan-must-not-show-this"), "{stdout}");
    let unknown = runproof()
        .arg("plan")
        .arg(&path)
        .args(["--var", "nope=1"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{}", describe(&unknown));
}

#[test]
fn sweep_var_overrides_the_check_files_vars() {
    let server = TestServer::start();
    let ws = Workspace::new();
    // Port 9 on loopback: nothing listens, so without the override it fails.
    let path = ws.write(
        "checks.toml",
        "[vars]\nbase = \"http://127.0.0.1:9\"\n[defaults]\nretries = 0\n\
         [[check]]\nid = \"ok\"\ncheck = \"http\"\nurl = \"{{base}}/ok\"\n",
    );
    let sweep = |vars: &[&str]| {
        let mut command = runproof();
        command
            .arg("sweep")
            .arg(&path)
            .arg("--artifacts")
            .arg(ws.artifacts());
        for var in vars {
            command.args(["--var", var]);
        }
        command.output().unwrap()
    };
    let failed = sweep(&[]);
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let base = format!("base=http://{}", server.addr);
    let passed = sweep(&[&base]);
    assert_eq!(passed.status.code(), Some(0), "{}", describe(&passed));
    assert!(
        stdout_of(&passed).contains("1 pass"),
        "{}",
        describe(&passed)
    );
    let unknown = sweep(&["bsae=x"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", describe(&unknown));
    assert!(
        stderr_of(&unknown).contains("--var bsae"),
        "{}",
        describe(&unknown)
    );
}

// ------------------------------------------------------------------ colour

const ESC: &str = "\u{1b}[";

fn colour_runbook(ws: &Workspace) -> PathBuf {
    ws.write(
        "colour.toml",
        "[runbook]\nname = \"colour\"\n[[step]]\nid = \"ok\"\ncheck = \"command\"\nargv = [\"true\"]\n\
         [[step]]\nid = \"bad\"\ncheck = \"command\"\nargv = [\"false\"]\nretries = 0\n",
    )
}

#[test]
fn color_always_paints_verdicts_and_diagnostics_even_into_a_pipe() {
    let ws = Workspace::new();
    let runbook = colour_runbook(&ws);
    let output = runproof()
        .args(["--color", "always", "run"])
        .arg(&runbook)
        .arg("--artifacts")
        .arg(ws.artifacts())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains(&format!("{ESC}32mpass{ESC}0m")),
        "{stdout:?}"
    );
    assert!(
        stdout.contains(&format!("{ESC}31mescalated{ESC}0m")),
        "{stdout:?}"
    );
    assert!(
        stdout.contains(&format!("{ESC}31mESCALATED{ESC}0m")),
        "{stdout:?}"
    );
    // The files of the bundle never hold escapes.
    for file in walk(&ws.artifacts()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(2).any(|w| w == b"\x1b["),
            "escape in {}",
            file.display()
        );
    }
    let bad = ws.write("bad.toml", BAD_CHECKS);
    let output = runproof()
        .args(["lint", "--color=always"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("{ESC}31merror{ESC}0m")),
        "{stderr:?}"
    );
    assert!(
        stderr.contains(&format!("{ESC}34m-->{ESC}0m")),
        "{stderr:?}"
    );
}

#[test]
fn piped_output_has_no_colour_by_default_or_with_never() {
    let ws = Workspace::new();
    let runbook = colour_runbook(&ws);
    for args in [&["run"][..], &["--color", "never", "run"][..]] {
        let output = runproof()
            .args(args)
            .arg(&runbook)
            .arg("--artifacts")
            .arg(ws.artifacts())
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            !stdout_of(&output).contains('\u{1b}'),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(
            !stderr_of(&output).contains('\u{1b}'),
            "{args:?}: {}",
            describe(&output)
        );
    }
}

/// Runs the binary on a pseudo-terminal (util-linux `script`), so that
/// `--color auto` sees a terminal.
fn on_a_terminal(args: &str, no_color: Option<&str>) -> String {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_runproof"));
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", &command, "/dev/null"])
        .env_remove("RUNPROOF_LOG");
    match no_color {
        Some(value) => script.env("NO_COLOR", value),
        None => script.env_remove("NO_COLOR"),
    };
    script.env("TERM", "xterm-256color");
    let output = script.output().expect("util-linux `script` runs");
    stdout_of(&output)
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let ws = Workspace::new();
    let bad = ws.write("bad.toml", BAD_CHECKS);
    let args = format!("lint '{}'", bad.display());
    let coloured = on_a_terminal(&args, None);
    assert!(coloured.contains("unknown key `retires`"), "{coloured:?}");
    assert!(coloured.contains(&format!("{ESC}31merror")), "{coloured:?}");
    let plain = on_a_terminal(&args, Some("1"));
    assert!(plain.contains("unknown key `retires`"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    // An empty NO_COLOR does not count (no-color.org).
    let empty = on_a_terminal(&args, Some(""));
    assert!(empty.contains(&format!("{ESC}31merror")), "{empty:?}");
    // --color never wins over the terminal.
    let never = on_a_terminal(&format!("--color never {args}"), None);
    assert!(!never.contains('\u{1b}'), "{never:?}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
