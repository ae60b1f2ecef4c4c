use super::*;
use crate::core::diagnostics::Diagnostic;
use crate::runbook::step::parse_steps;

/// What the general path makes of section `text` (as `read_checks` reads
/// it): the steps and the problems.
fn general(text: &str, offset: usize, line: usize) -> Option<(Vec<RawStep>, Vec<Diagnostic>)> {
    let root = super::super::parse_section(text, "check")?;
    let (key, node) = root.iter().next()?;
    let mut diagnostics = Vec::new();
    let mut steps = with_span_offset(offset, || {
        parse_steps(&[0], offset, key.span(), node, "check", &mut diagnostics)
    });
    for step in &mut steps {
        step.line = line;
    }
    Some((steps, diagnostics))
}

/// Whether `text` is read by the plain path; when it is, its step must be
/// the general path's, which must find nothing wrong.
fn agrees_with_the_general_path(text: &str, offset: usize, line: usize) -> bool {
    let Some(mut plain) = raw_step(text, offset, line) else {
        return false;
    };
    // Its templates are validated where they are: the same ones, in the
    // same order, as the general path's copies.
    assert!(plain.templates_in_spec && plain.templates.is_empty());
    plain.templates = plain.placeholder_templates().cloned().collect();
    plain.templates_in_spec = false;
    let (steps, diagnostics) = general(text, offset, line)
        .unwrap_or_else(|| panic!("plain, but the general path cannot parse it: {text:?}"));
    assert!(
        diagnostics.is_empty(),
        "plain, but the general path finds {diagnostics:?} in {text:?}"
    );
    assert_eq!(steps.len(), 1, "{text:?}");
    assert_eq!(
        format!("{plain:#?}"),
        format!("{:#?}", steps[0]),
        "{text:?}"
    );
    true
}

#[test]
fn the_checks_sweep_files_hold_are_read_as_the_general_path_reads_them() {
    for text in [
        "[[check]]\nid = \"c0000001\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:18090/u/1\"\nheaders = { Authorization = \"Bearer {{secret:BENCH_TOKEN}}\" }\nexpect = { status = 200, body_contains = \"ok\" }\n\n",
        "[[check]]\r\nid = 'api'\r\ncheck = 'http'\r\nurl = 'http://{{host}}:8080/health'\r\nmethod = \"POST\"\r\n",
        "[[check]]  # the API\nid = \"api\" # why\ncheck = \"http\"\nurl = \"https://example.test/\"\ntags = [\"team=core\", 'critical']\ntitle = 'API'\nhint = \"restart it\"\nowner = 'ops'\nexpect = {}\nheaders = { b = 'x', A = \"{{secret:T}}\", a = '{{env:E}}' }\n# end\n",
    ] {
        for (offset, line) in [(0, 1), (4_096, 200)] {
            assert!(
                agrees_with_the_general_path(text, offset, line),
                "not plain: {text:?}"
            );
        }
    }
}

#[test]
fn what_the_general_path_reads_otherwise_or_refuses_is_not_plain() {
    let base = "[[check]]\nid = 'a'\ncheck = 'http'\nurl = 'http://h/'\n";
    for extra in [
        "retries = 11\n",
        "timeout = '0s'\n",
        "retries = 1\nretries = 2\n",
        "id = 'b'\n",
        "url = 'http://h/2'\n",
        "expect = { status = 99 }\n",
        "expect = { status = 1000 }\n",
        "expect = { status = [200] }\n",
        "expect = { status = 200, status = 201 }\n",
        "expect = { body_regex = 'x' }\n",
        "headers = { a = 1 }\n",
        "headers = { a = 'x', a = 'y' }\n",
        "headers = 'x'\n",
        "method = '{{m}}'\n",
        "tags = 'x'\n",
        "verify_tls = false\n",
        "depends_on = ['b']\n",
        "body = 'x'\n",
    ] {
        let text = format!("{base}{extra}");
        assert!(raw_step(&text, 0, 1).is_none(), "plain: {text:?}");
    }
    for text in [
        "[[check]]\nid = 'a'\ncheck = 'tcp'\nhost = 'h'\nport = 1\n",
        "[[check]]\ncheck = 'http'\nurl = 'http://h/'\n",
        "[[check]]\nid = 'a'\nurl = 'http://h/'\n",
        "[[check]]\nid = 'a'\ncheck = 'http'\n",
        "[[check]]\nid = 'a'\ncheck = 'http'\nurl = 'http://h/{{'\n",
        "[[check]]\nid = 7\ncheck = 'http'\nurl = 'http://h/'\n",
        "[check]\nid = 'a'\ncheck = 'http'\nurl = 'http://h/'\n",
    ] {
        assert!(raw_step(text, 0, 1).is_none(), "plain: {text:?}");
    }
}

/// Sections generated from the pieces that matter, in every order: each
/// one read by the plain path must be what the general path makes of it,
/// and enough are read for the test to mean something. Each key's first
/// choices are in the plain shape, the others (taken one time in twelve)
/// are not or are wrong.
#[test]
fn plain_http_steps_agree_with_the_general_path_on_generated_sections() {
    let pieces: [(&[&str], &[&str]); 10] = [
        (
            &["id = \"c1\"", "id = 'c-2'", "id = \"\"", "id=\"a b\""],
            &["id = 7", "id = \"x\\ty\""],
        ),
        (
            &["check = \"http\"", "check = 'http'"],
            &["check = \"tcp\"", "check = 'htp'", ""],
        ),
        (
            &[
                "url = \"http://127.0.0.1:8080/u/1\"",
                "url = 'http://{{host}}/x?q={{env:Q}}'",
                "url = \"{{secret:T}}\"",
                "url = \"ftp://x\"",
                "url=''",
                "url = \"http://x/a}}b\"",
            ],
            &["url = \"http://x/{{\"", "url = \"http://x/{{a b}}\"", ""],
        ),
        (
            &[
                "",
                "method = \"POST\"",
                "method = 'get'",
                "method = \"P{}\"",
            ],
            &["method = \"{{m}}\"", "method = 1"],
        ),
        (
            &[
                "",
                "headers = {}",
                "headers = { Authorization = \"Bearer {{secret:T}}\" }",
                "headers = { b = 'x', A = \"y\", a-b = '{{v}}' }",
                "headers = {a='{{ v }}'}",
                "headers = { z = \"{{secret:A}}\", y = '{{secret:B}}' }",
            ],
            &[
                "headers = { a = 1 }",
                "headers = { a = 'x', a = 'y' }",
                "headers = { \"q\" = 'x' }",
                "headers = { a = '{{' }",
            ],
        ),
        (
            &[
                "",
                "expect = {}",
                "expect = { status = 200 }",
                "expect = { status = 999 }",
                "expect = { status = 100 }",
                "expect = { body_contains = \"ok\" }",
                "expect = { status = 404, body_contains = \"{{var}}\" }",
                "expect = {body_contains='{{secret:T}}',status=201}",
            ],
            &[
                "expect = { status = 99 }",
                "expect = { status = [200] }",
                "expect = { status = 200, status = 201 }",
                "expect = { headers = {} }",
                "expect = { status = 0200 }",
                "expect = { body_contains = '{{' }",
            ],
        ),
        (
            &[
                "",
                "title = 'T'",
                "hint = \"h {{x}}\"",
                "owner = 'o'",
                "tags = [\"a\", 'b']",
                "tags = []",
            ],
            &[
                "backoff = {}",
                "id = 'dup'",
                "tags = [1]",
                "url = 'http://again/'",
            ],
        ),
        (
            &["", "# a comment", "  ", "owner = \"ops\"  # who"],
            &["x = 1"],
        ),
        (
            &["", "retries = 0", "retries = 2", "retries = 10"],
            &[
                "retries = 11",
                "retries = -1",
                "retries = '2'",
                "retries = 4294967296",
            ],
        ),
        (
            &[
                "",
                "timeout = '5s'",
                "timeout = \"1m30s\"",
                "timeout = '250ms'",
            ],
            &[
                "timeout = '0s'",
                "timeout = 5",
                "timeout = '5'",
                "timeout = 'soon'",
            ],
        ),
    ];
    let tails = ["", " ", " # c", "\t"];
    let ends = ["\n", "\r\n"];
    let mut rng = fastrand::Rng::with_seed(12);
    let (mut plain, mut total) = (0, 0);
    for _ in 0..20_000 {
        let mut lines: Vec<&str> = pieces
            .iter()
            .map(|(shaped, other)| {
                let choices = if rng.usize(..12) == 0 { other } else { shaped };
                choices[rng.usize(..choices.len())]
            })
            .filter(|line| !line.is_empty())
            .collect();
        rng.shuffle(&mut lines);
        let end = ends[rng.usize(..ends.len())];
        let mut text = format!("[[check]]{}{end}", tails[rng.usize(..tails.len())]);
        for line in lines {
            text.push_str(line);
            text.push_str(tails[rng.usize(..tails.len())]);
            text.push_str(end);
        }
        if rng.bool() {
            text.push_str(end);
        }
        let offset = rng.usize(..100_000);
        total += 1;
        if agrees_with_the_general_path(&text, offset, 1 + offset / 40) {
            plain += 1;
        }
    }
    assert!(
        plain > total / 5,
        "only {plain} of {total} generated sections are read as plain http checks"
    );
}
