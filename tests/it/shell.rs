//! The shell and editor conveniences through the real binary: completion
//! scripts, the manual page, `--color`, `init`, `schema`, check files in
//! `lint`/`plan`, `sweep --var` and `webhook listen --artifacts`.

use std::path::PathBuf;
use std::process::Output;

use crate::support::*;

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
    // Every command has its own subsection with its options.
    for command in [
        "run",
        "lint",
        "plan",
        "sweep",
        "verify",
        "init",
        "schema",
        "webhook listen",
    ] {
        assert!(
            page.contains(&format!(".SS \"runproof {command}\"")),
            "no section for {command}"
        );
    }
    for flag in [
        "\\-\\-allow\\-mutations",
        "\\-\\-shard",
        "\\-\\-secret\\-env",
        "\\-\\-force",
    ] {
        assert!(page.contains(flag), "no {flag} in the page");
    }
    // man itself renders it without complaint.
    let ws = Workspace::new();
    let path = ws.write("runproof.1", &page);
    let rendered = std::process::Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANWIDTH", "80")
        .output();
    if let Ok(rendered) = rendered {
        // `man` is missing from minimal images; where it exists, it must
        // render every command's options.
        if rendered.status.success() {
            // Bold and underline come as overstrikes (`X\bX`): drop them.
            let mut text = String::new();
            for c in stdout_of(&rendered).chars() {
                if c == '\u{8}' {
                    text.pop();
                } else {
                    text.push(c);
                }
            }
            let text = text.replace('\u{2010}', "-");
            assert!(text.contains("runproof webhook listen"), "{text}");
            assert!(text.contains("--allow-mutations"), "{text}");
        }
    }
}

#[test]
fn clap_help_follows_the_color_flag() {
    let plain = runproof().arg("--help").output().unwrap();
    assert!(
        !stdout_of(&plain).contains('\u{1b}'),
        "{}",
        describe(&plain)
    );
    let coloured = runproof()
        .args(["--color", "always", "--help"])
        .output()
        .unwrap();
    assert!(
        stdout_of(&coloured).contains('\u{1b}'),
        "{}",
        describe(&coloured)
    );
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
    // verify's verdict too.
    let bundle = walk(&ws.artifacts())
        .into_iter()
        .find(|f| f.ends_with("seal.json"))
        .and_then(|f| f.parent().map(PathBuf::from))
        .expect("a sealed bundle");
    let verify = runproof()
        .args(["--color", "always", "verify"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
    assert!(
        stdout_of(&verify).starts_with(&format!("{ESC}1m{ESC}32mVERIFIED{ESC}0m:")),
        "{}",
        describe(&verify)
    );
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

// ------------------------------------------------------------------ schema

fn schema_validator() -> jsonschema::Validator {
    let output = runproof().arg("schema").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::draft202012::new(&schema).expect("the schema is itself valid")
}

/// TOML as an editor sees it for validation: dates become strings.
fn toml_to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => J::from(f),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => J::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

fn errors(validator: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    let value: toml::Value = toml::from_str(toml_text).expect("valid TOML");
    let instance = toml_to_json(value);
    validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_shipped_runbook_and_check_file_validates_against_the_schema() {
    let validator = schema_validator();
    let mut files = Vec::new();
    for dir in ["runbooks", "checks", "src/cli/init"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let problems = errors(&validator, &text);
        assert!(problems.is_empty(), "{}: {problems:#?}", path.display());
    }
}

#[test]
fn the_schema_rejects_typos_unknown_kinds_and_mixed_files() {
    let validator = schema_validator();
    let runbook = "[runbook]\nname = \"x\"\n[[step]]\nid = \"a\"\ncheck = \"http\"\nurl = \"http://127.0.0.1/\"\n";
    assert!(errors(&validator, runbook).is_empty());
    for (what, text) in [
        ("a misspelt step key", format!("{runbook}retires = 2\n")),
        ("a key of another kind", format!("{runbook}argv = [\"true\"]\n")),
        ("a misspelt expect key", format!("{runbook}expect = {{ stauts = 200 }}\n")),
        ("an unknown predicate", format!("{runbook}expect = {{ json = {{ a = {{ greater = 1 }} }} }}\n")),
        ("a bad duration", format!("{runbook}timeout = \"soon\"\n")),
        ("too many retries", format!("{runbook}retries = 11\n")),
        (
            "an unknown kind",
            "[runbook]\nname = \"x\"\n[[step]]\nid = \"a\"\ncheck = \"htp\"\n".to_string(),
        ),
        (
            "a misspelt [runbook] key",
            "[runbook]\nnmae = \"x\"\n[[step]]\nid = \"a\"\ncheck = \"tcp\"\nhost = \"h\"\nport = 1\n".to_string(),
        ),
        ("a missing required kind key", "[runbook]\nname = \"x\"\n[[step]]\nid = \"a\"\ncheck = \"http\"\n".to_string()),
        (
            "[runbook] in a check file",
            "[runbook]\nname = \"x\"\n[[check]]\nid = \"a\"\ncheck = \"tcp\"\nhost = \"h\"\nport = 1\n".to_string(),
        ),
        ("a misspelt top-level table", format!("{runbook}[default]\nretries = 1\n")),
    ] {
        let problems = errors(&validator, &text);
        assert!(!problems.is_empty(), "{what} passed the schema:\n{text}");
        // The loader agrees: what the schema rejects, lint rejects.
        let ws = Workspace::new();
        let path = ws.write("x.toml", &text);
        let lint = runproof().arg("lint").arg(&path).output().unwrap();
        assert_eq!(lint.status.code(), Some(2), "{what}: {}", describe(&lint));
    }
}

#[test]
fn the_schema_describes_keys_and_enumerates_kinds_for_editors() {
    let output = runproof().arg("schema").output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let step = &schema["$defs"]["Step"];
    let kinds = step["properties"]["check"]["enum"].as_array().unwrap();
    assert!(kinds.iter().any(|k| k == "http") && kinds.iter().any(|k| k == "webhook-delivery"));
    // Each kind is one closed table holding the common keys too, so that a
    // misspelt key fails even in validators without `unevaluatedProperties`.
    let http = &schema["$defs"]["HttpCheck"];
    assert_eq!(http["additionalProperties"], false);
    assert_eq!(http["properties"]["check"]["const"], "http");
    assert!(http["properties"]["retries"]["description"].is_string());
    assert!(http["properties"]["url"].is_object());
    assert_eq!(step["oneOf"].as_array().unwrap().len(), kinds.len());
    let predicates = &schema["$defs"]["PredicateTable"]["properties"];
    for name in ["eq", "ge", "matches", "len", "any_of", "all"] {
        assert!(predicates[name]["description"].is_string(), "{name}");
    }
    assert!(schema["$defs"]["HttpCheck"]["properties"]["verify_tls"]["description"].is_string());
    // Every common key of a step is described (a key added to the loader
    // without a schema entry would show up here).
    for (key, value) in http["properties"].as_object().unwrap() {
        assert!(
            value["description"].is_string()
                || value["$ref"].is_string()
                || value["anyOf"].is_array(),
            "{key}: {value}"
        );
    }
    for key in [
        "id",
        "title",
        "depends_on",
        "retries",
        "timeout",
        "backoff",
        "mutating",
        "hint",
        "owner",
        "tags",
    ] {
        assert!(http["properties"][key]["description"].is_string(), "{key}");
    }
}

// -------------------------------------------------------------------- init

#[test]
fn init_scaffolds_files_that_lint_clean_and_refuses_to_overwrite() {
    let ws = Workspace::new();
    let dir = ws.path().join("new-service");
    let output = runproof().arg("init").arg(&dir).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    for name in ["runbook.toml", "checks.toml", "runproof.schema.json"] {
        assert!(dir.join(name).is_file(), "{name} not created");
    }
    let runbook = std::fs::read_to_string(dir.join("runbook.toml")).unwrap();
    assert!(runbook.starts_with("#:schema ./runproof.schema.json"));
    // Commented: the main keys are explained where they are used.
    for key in [
        "on_escalate",
        "retries",
        "depends_on",
        "expect",
        "capture",
        "hint",
    ] {
        assert!(
            runbook
                .lines()
                .any(|l| l.starts_with('#') && l.contains(key)),
            "no comment explains {key}"
        );
    }
    let lint = runproof()
        .arg("lint")
        .arg(dir.join("runbook.toml"))
        .arg(dir.join("checks.toml"))
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", describe(&lint));
    assert!(
        stdout_of(&lint).contains("check file"),
        "{}",
        describe(&lint)
    );
    let plan = runproof()
        .arg("plan")
        .arg(dir.join("runbook.toml"))
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", describe(&plan));
    // The written schema is the one `runproof schema` prints.
    let printed = runproof().arg("schema").output().unwrap();
    assert_eq!(
        std::fs::read(dir.join("runproof.schema.json")).unwrap(),
        printed.stdout
    );
    // A second init refuses and changes nothing; --force overwrites.
    std::fs::write(dir.join("runbook.toml"), "# mine\n").unwrap();
    let again = runproof().arg("init").arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", describe(&again));
    assert!(
        stderr_of(&again).contains("--force"),
        "{}",
        describe(&again)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("runbook.toml")).unwrap(),
        "# mine\n"
    );
    let forced = runproof()
        .args(["init", "--force"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0), "{}", describe(&forced));
    assert_eq!(
        std::fs::read_to_string(dir.join("runbook.toml")).unwrap(),
        runbook
    );
}

#[test]
fn a_sweep_shows_progress_on_a_terminal_and_none_in_a_pipe() {
    let ws = Workspace::new();
    // A refused port with one retry: the check takes over a second (its
    // backoff), so the bar is drawn while it runs.
    let file = ws.write(
        "progress.toml",
        "[[check]]\nid = \"closed\"\ncheck = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\nretries = 1\n",
    );
    let args = format!(
        "sweep '{}' --artifacts '{}'",
        file.display(),
        ws.path().join("artifacts").display()
    );
    let shown = on_a_terminal(&args, None);
    assert!(shown.contains("1 failing"), "{shown:?}");
    assert!(shown.contains("ETA"), "{shown:?}");
    let piped = runproof()
        .args(["sweep"])
        .arg(&file)
        .arg("--artifacts")
        .arg(ws.path().join("artifacts"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&piped.stdout),
        String::from_utf8_lossy(&piped.stderr)
    );
    assert!(!text.contains("ETA"), "{text:?}");
}
