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
