//! Runbook loading end to end: every file in `tests/runbooks/invalid/` must
//! fail with exactly the diagnostics in its `.expected` golden file, and every
//! file in `tests/runbooks/valid/` must load.
//!
//! A missing golden file fails the test. `UPDATE_GOLDEN=1 cargo test runbook`
//! (re)writes the golden files and still fails, naming what it wrote: review
//! the diff by eye, then run again without it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::api::check::CheckSpec;
use crate::support::api::runbook::{load_runbook_str_with_env, LoadError, Runbook};

/// The only environment these tests see: loading must not depend on the
/// machine's environment.
fn fixed_env(name: &str) -> Option<String> {
    match name {
        "REGION" => Some("ord".to_string()),
        _ => None,
    }
}

fn fixtures(dir: &str) -> Vec<PathBuf> {
    // Relative paths, so the golden files show `tests/runbooks/...` whatever
    // the checkout's location.
    let dir = Path::new("tests/runbooks").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Result<Runbook, LoadError> {
    let source = std::fs::read_to_string(path).unwrap();
    load_runbook_str_with_env(path, &source, &fixed_env)
}

#[test]
fn invalid_runbooks_match_golden_diagnostics() {
    let update = std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1");
    let files = fixtures("invalid");
    assert!(
        files.len() >= 15,
        "expected the invalid fixtures, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let rendered = match load(path) {
            Ok(_) => {
                failures.push(format!("{}: loaded, but it is invalid", path.display()));
                continue;
            }
            Err(LoadError::Invalid {
                diagnostics,
                rendered,
            }) => {
                assert!(
                    !diagnostics.is_empty(),
                    "{}: no diagnostics",
                    path.display()
                );
                rendered
            }
            Err(other) => panic!("{}: {other}", path.display()),
        };
        let golden = path.with_extension("expected");
        let expected = std::fs::read_to_string(&golden).ok();
        if update {
            if expected.as_deref() != Some(rendered.as_str()) {
                std::fs::write(&golden, &rendered).unwrap();
                failures.push(format!(
                    "{}: written (UPDATE_GOLDEN=1); review it, then rerun without UPDATE_GOLDEN",
                    golden.display()
                ));
            }
            continue;
        }
        let Some(expected) = expected else {
            failures.push(format!(
                "{}: missing golden file (UPDATE_GOLDEN=1 writes it)",
                golden.display()
            ));
            continue;
        };
        if expected != rendered {
            failures.push(format!(
                "{}: diagnostics differ\n--- expected\n{expected}\n--- actual\n{rendered}",
                path.display()
            ));
        }
    }
    if update {
        failures.push("UPDATE_GOLDEN=1 never passes: rerun without it".to_string());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The same fixtures through the real binary: `runproof lint` exits 2 and
/// prints exactly the golden diagnostics on stderr.
#[test]
fn lint_exits_2_with_the_golden_diagnostics() {
    let mut failures = Vec::new();
    for path in fixtures("invalid") {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_runproof"))
            .arg("lint")
            .arg(&path)
            .env_clear()
            .env("REGION", "ord")
            .output()
            .expect("run runproof lint");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let golden_path = path.with_extension("expected");
        let golden = match std::fs::read_to_string(&golden_path) {
            Ok(text) if !text.trim().is_empty() => text,
            Ok(_) => {
                failures.push(format!("{}: empty golden file", golden_path.display()));
                continue;
            }
            Err(err) => {
                failures.push(format!(
                    "{}: missing golden file ({err})",
                    golden_path.display()
                ));
                continue;
            }
        };
        if output.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit {:?}, want 2",
                path.display(),
                output.status.code()
            ));
        } else if !stderr.starts_with(&golden) {
            failures.push(format!(
                "{}: stderr differs from the golden file\n--- expected (prefix)\n{golden}\n--- stderr\n{stderr}",
                path.display()
            ));
        }
        if !output.stdout.is_empty() {
            failures.push(format!(
                "{}: diagnostics belong on stderr, not stdout",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn invalid_runbook_with_many_errors_reports_them_all() {
    let path = Path::new("tests/runbooks/invalid/many-errors.toml");
    let Err(LoadError::Invalid {
        diagnostics,
        rendered,
    }) = load(path)
    else {
        panic!("many-errors.toml must be invalid");
    };
    assert!(diagnostics.len() >= 10, "{rendered}");
    assert!(
        rendered.ends_with(&format!("has {} errors\n", diagnostics.len())),
        "{rendered}"
    );
    // Sorted by position in the file.
    let lines: Vec<usize> = rendered
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--> "))
        .map(|loc| loc.rsplit(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn valid_runbooks_load() {
    let files = fixtures("valid");
    assert!(!files.is_empty());
    for path in files {
        if let Err(err) = load(&path) {
            panic!("{}:\n{err}", path.display());
        }
    }
}

#[test]
fn valid_runbook_fields_policies_and_capture_dependencies() {
    let runbook = load(Path::new("tests/runbooks/valid/api-flow.toml")).unwrap();
    assert_eq!(runbook.meta.name, "api-flow");
    assert_eq!(
        runbook.meta.on_escalate,
        crate::support::api::runbook::OnEscalate::Halt
    );
    assert_eq!(runbook.defaults.retries, 3);
    assert_eq!(runbook.defaults.timeout, Duration::from_secs(5));
    assert_eq!(runbook.secrets.required, vec!["API_TOKEN".to_string()]);
    // env files stay as written; the secret store resolves them.
    assert_eq!(
        runbook.secrets.env_files,
        vec![PathBuf::from("secrets.env")]
    );
    assert_eq!(runbook.vars["base"], "http://127.0.0.1:8080");

    let ids: Vec<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["token", "create", "fetch", "cleanup"]);
    let [token, create, fetch, cleanup] = &runbook.steps[..] else {
        unreachable!()
    };

    // Defaults apply…
    assert_eq!(token.policy.retries, 3);
    assert_eq!(token.policy.max_attempts(), 4);
    assert_eq!(token.policy.timeout, Duration::from_secs(5));
    assert_eq!(token.policy.backoff.initial.0, Duration::from_millis(250));
    assert!(!token.policy.backoff.jitter);
    assert_eq!(token.title.as_deref(), Some("API token is set"));
    assert_eq!(token.line, 23);
    assert!(matches!(*token.check, CheckSpec::Secret(_)));

    // …steps override them…
    assert_eq!(fetch.policy.retries, 0);
    assert_eq!(fetch.policy.timeout, Duration::from_secs(90));
    assert_eq!(cleanup.policy.backoff.max.0, Duration::from_secs(1));
    // (a partial backoff table takes the serde defaults for the rest)
    assert!(cleanup.policy.backoff.jitter);

    // …and capture users depend on the capturing step, after explicit deps.
    assert_eq!(
        fetch.depends_on,
        vec!["token".to_string(), "create".to_string()]
    );
    assert_eq!(cleanup.depends_on, vec!["create".to_string()]);
    assert!(create.depends_on.is_empty());
    assert!(create.mutating);
    assert_eq!(create.hint.as_deref(), Some("check the notes service logs"));
    assert_eq!(create.check.capture_names(), vec!["note_id"]);
    // Templates stay unexpanded.
    assert_eq!(create.check.target(), "POST {{base}}/notes");
}

#[test]
fn runbook_expiry_warning_counts_days() {
    let runbook = load(Path::new("tests/runbooks/valid/api-flow.toml")).unwrap();
    let date = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
    assert_eq!(
        crate::support::api::runbook::expiry_warning(&runbook, date("2025-10-25")),
        None
    );
    assert_eq!(
        crate::support::api::runbook::expiry_warning(&runbook, date("2025-11-25")).as_deref(),
        Some("runbook expired on 2025-10-25 (31 days ago); review it and bump `expires`")
    );
    assert_eq!(
        crate::support::api::runbook::expiry_warning(&runbook, date("2025-10-26")).as_deref(),
        Some("runbook expired on 2025-10-25 (1 day ago); review it and bump `expires`")
    );
    let minimal = load(Path::new("tests/runbooks/valid/minimal.toml")).unwrap();
    assert_eq!(
        crate::support::api::runbook::expiry_warning(&minimal, date("2099-01-01")),
        None
    );
}

#[test]
fn runbook_path_is_shown_as_given() {
    let source = "[runbook]\nname = 'x'\n[[step]]\nid = 'a'\ncheck = 'nope'\n";
    let Err(LoadError::Invalid { rendered, .. }) =
        load_runbook_str_with_env(Path::new("./some/dir/../rb.toml"), source, &fixed_env)
    else {
        panic!("must be invalid")
    };
    assert!(
        rendered.contains("--> ./some/dir/../rb.toml:5:9"),
        "{rendered}"
    );
}
