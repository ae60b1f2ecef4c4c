//! `runproof report` end to end: the real binary on real bundles. Sweep
//! shards merge back into the unsharded sweep's checks (and missing, doubled
//! or foreign shards are refused); an invalid bundle is refused unless
//! `--allow-invalid`; the HTML report is opened in headless Chromium and
//! checked for what a reviewer must see, with a planted canary redacted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::browser::{dump_dom, element_text, screenshot, View};
use crate::support::*;

/// `runproof report <bundles…> [extra…]`
fn report(bundles: &[&Path], extra: &[&str]) -> Output {
    runproof()
        .arg("report")
        .args(bundles)
        .args(extra)
        .output()
        .expect("run runproof report")
}

/// A check file of `n` command checks; every fifth fails.
fn checks(ws: &Workspace, name: &str, n: usize) -> PathBuf {
    let mut body = String::from(FAST);
    for i in 0..n {
        let program = if i % 5 == 0 { "false" } else { "true" };
        body.push_str(&format!(
            "\n[[check]]\nid = \"{name}-{i}\"\ncheck = \"command\"\nargv = [\"{program}\"]\ntags = [\"team={name}\", \"critical\"]\n"
        ));
    }
    ws.write(&format!("{name}.toml"), &body)
}

/// Runs `sweep FILE [extra…]` and returns its bundle (the newest under `artifacts`).
fn sweep_bundle(ws: &Workspace, file: &Path, artifacts: &str, extra: &[&str]) -> PathBuf {
    let artifacts = ws.path().join(artifacts);
    let output = runproof()
        .arg("sweep")
        .arg(file)
        .arg("--artifacts")
        .arg(&artifacts)
        .args(extra)
        .output()
        .expect("run sweep");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        describe(&output)
    );
    let mut bundles: Vec<PathBuf> = files_under(&artifacts)
        .into_iter()
        .filter(|p| p.ends_with("seal.json"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    bundles.sort();
    bundles.pop().expect("a sealed sweep bundle")
}

/// The `name` attributes of a JUnit file's testcases.
fn testcases(junit: &str) -> Vec<String> {
    junit
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("<testcase "))
        .filter_map(|rest| rest.split("name=\"").nth(1))
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

#[test]
fn merged_junit_of_three_shards_has_exactly_the_checks_of_the_unsharded_sweep() {
    let ws = Workspace::new();
    let file = checks(&ws, "svc", 17);
    let whole = sweep_bundle(&ws, &file, "whole", &[]);
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| {
            sweep_bundle(
                &ws,
                &file,
                &format!("shard{k}"),
                &["--shard", &format!("{k}/3")],
            )
        })
        .collect();
    let out = ws.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (junit, json, prom, md) = (
        out.join("j.xml"),
        out.join("r.json"),
        out.join("m.prom"),
        out.join("s.md"),
    );
    // Named out of order: shards merge in shard order whatever the order given.
    let given: Vec<&Path> = vec![&shards[2], &shards[0], &shards[1]];
    let output = report(
        &given,
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--prometheus",
            prom.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let merged = testcases(&std::fs::read_to_string(&junit).unwrap());
    let whole_junit = std::fs::read_to_string(whole.join("junit.xml")).unwrap();
    let unsharded = testcases(&whole_junit);
    assert_eq!(
        merged.len(),
        17,
        "one testcase per check, none twice: {merged:?}"
    );
    assert_eq!(
        merged.iter().collect::<BTreeSet<_>>(),
        unsharded.iter().collect::<BTreeSet<_>>()
    );
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit_text.contains("tests=\"17\" failures=\"4\""),
        "{junit_text}"
    );

    // Every source listed with run id, seal head and signer.
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let sources = doc["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    for (source, k) in sources.iter().zip(["3/3", "1/3", "2/3"]) {
        assert_eq!(source["shard"], k);
        assert_eq!(source["verify"], "VERIFIED");
        assert!(source["seal_head"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(source["signer_text"], "not signed");
        let header: Value = serde_json::from_slice(
            &std::fs::read(Path::new(source["path"].as_str().unwrap()).join("runproof.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(source["run_id"], header["run_id"]);
    }
    assert_eq!(doc["suites"].as_array().unwrap().len(), 1);
    assert_eq!(doc["suites"][0]["shards"], 3);
    assert_eq!(
        doc["suites"][0]["run"]["steps"].as_array().unwrap().len(),
        17
    );

    let prom_text = std::fs::read_to_string(&prom).unwrap();
    let success: Vec<&str> = prom_text
        .lines()
        .filter(|l| l.starts_with("runproof_check_success{"))
        .collect();
    assert_eq!(success.len(), 17, "{prom_text}");
    // Labels from the checks' tags, as the journal's `run.start` recorded them.
    assert!(
        success.iter().all(|l| l.contains("team=\"svc\"")),
        "{prom_text}"
    );
    assert_eq!(success.iter().filter(|l| l.ends_with(" 0")).count(), 4);
    // The sweep's page at phone width: no horizontal scroll, readable.
    let html = out.join("report.html");
    let output = report(&given, &["--html", html.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // Each passing check's one `step.pass` record is one timeline mark.
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        page.matches("class=\"mark attempt-pass\"").count(),
        13,
        "one mark per passing check"
    );
    let result = probe(&html, false);
    assert!(
        result["scrollWidth"].as_u64().unwrap() <= 390,
        "{}",
        result["scrollWidth"]
    );
    assert!(
        result["contrastFailures"].as_array().unwrap().is_empty(),
        "{result}"
    );
    assert_eq!(
        result["steps"].as_array().unwrap().len(),
        17,
        "a card per check"
    );

    let md_text = std::fs::read_to_string(&md).unwrap();
    for source in &shards {
        let run_id = source.file_name().unwrap().to_str().unwrap();
        let run_id = &run_id[run_id.find('-').unwrap() + 1..];
        assert!(
            md_text.contains(run_id),
            "markdown lists {run_id}:\n{md_text}"
        );
    }
}

#[test]
fn shards_missing_doubled_or_foreign_are_refused_by_name() {
    let ws = Workspace::new();
    let file = checks(&ws, "svc", 6);
    let other = checks(&ws, "other", 6);
    let s1 = sweep_bundle(&ws, &file, "a", &["--shard", "1/2"]);
    let s2 = sweep_bundle(&ws, &file, "b", &["--shard", "2/2"]);
    let foreign = sweep_bundle(&ws, &other, "c", &["--shard", "2/2"]);
    let s1_of_3 = sweep_bundle(&ws, &file, "d", &["--shard", "1/3"]);

    let missing = report(&[&s1], &[]);
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(
        text.contains("shard 2/2 of sweep") && text.contains("is missing"),
        "{text}"
    );

    let twice = report(&[&s1, &s2, &s1], &[]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("shard 1/2 is given twice"));

    let other_files = report(&[&s1, &foreign], &[]);
    assert_eq!(other_files.status.code(), Some(2));
    let text = String::from_utf8_lossy(&other_files.stderr);
    assert!(
        text.contains(&format!("{}: shard 2/2 is foreign", foreign.display()))
            && text.contains("it ran other check files"),
        "{text}"
    );

    let other_split = report(&[&s1, &s1_of_3], &[]);
    assert_eq!(other_split.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other_split.stderr).contains("split 3 ways, not 2"));

    let narrowed = sweep_bundle(&ws, &file, "e", &["--shard", "2/2", "--only", "svc-*"]);
    let other_selection = report(&[&s1, &narrowed], &[]);
    assert_eq!(other_selection.status.code(), Some(2));
    let text = String::from_utf8_lossy(&other_selection.stderr);
    assert!(
        text.contains("another selection (--only svc-*, not (all checks))"),
        "{text}"
    );

    let complete = report(&[&s2, &s1], &[]);
    assert_eq!(complete.status.code(), Some(0), "{}", describe(&complete));
}

#[test]
fn an_invalid_bundle_is_refused_with_its_reason_unless_allowed() {
    let ws = Workspace::new();
    let file = checks(&ws, "svc", 3);
    let good = sweep_bundle(&ws, &file, "a", &[]);
    let bad = ws.path().join("tampered");
    copy_dir(&good, &bad);
    let journal = bad.join("events.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    // A forged journal may carry anything: a hostile step id must render as text.
    let tampered = text
        .replacen("\"verdict\":\"fail\"", "\"verdict\":\"pass\"", 1)
        .replace("\"svc-0\"", "\"<script>alert(1)</script>&x\"");
    std::fs::write(&journal, tampered).unwrap();

    let refused = report(&[&bad], &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("INVALID") && stderr.contains("events.jsonl"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-invalid"), "{stderr}");

    let html = ws.path().join("r.html");
    let allowed = report(
        &[&bad],
        &["--allow-invalid", "--html", html.to_str().unwrap()],
    );
    assert_eq!(allowed.status.code(), Some(4), "{}", describe(&allowed));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<p class=\"banner\" role=\"alert\"><strong>INVALID</strong>"));
    assert!(page.contains("id=\"verify-verdict\">INVALID<"));
    assert!(
        !page.contains("<script>alert(1)"),
        "a step id was rendered as markup"
    );
    assert!(page.contains("<code>&lt;script&gt;alert(1)&lt;/script&gt;&amp;x</code>"));
    assert_eq!(
        page.matches("<script").count(),
        1,
        "the report's own script only"
    );

    // Unsigned: the report says so; signed without --allowed-signers it
    // names the key as not checked against a trust list (see trust.rs for
    // signing; here: the unsigned wording).
    let plain = report(&[&good], &[]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&plain.stdout).contains("| not signed |"));
}

#[test]
fn signed_bundle_names_a_trusted_signer_only_with_allowed_signers() {
    let ws = Workspace::new();
    let key = ws.path().join("key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen must be installed (scripts/test.sh installs openssh-client)");
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = ws.write("allowed_signers", &format!("qa@example {}", public.trim()));
    let file = checks(&ws, "svc", 2);
    let bundle = sweep_bundle(&ws, &file, "a", &["--sign-key", key.to_str().unwrap()]);

    let untrusted = report(&[&bundle], &[]);
    assert_eq!(untrusted.status.code(), Some(0), "{}", describe(&untrusted));
    assert!(String::from_utf8_lossy(&untrusted.stdout)
        .contains("signature not checked against a trust list"));
    let trusted = report(
        &[&bundle],
        &["--allowed-signers", allowed.to_str().unwrap()],
    );
    assert_eq!(trusted.status.code(), Some(0), "{}", describe(&trusted));
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("signed by qa@example (SHA256:"));
}

/// The test's own script, appended to a copy of the report: measures what a
/// reviewer gets and posts it as JSON to the page that frames the report.
const PROBE: &str = r#"<script>
(function () {
  function rgba(text) {
    var m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) { return null; }
    var p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  }
  function lum(c) {
    var f = function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  function over(top, under) {
    var a = top.a;
    return { r: top.r * a + under.r * (1 - a), g: top.g * a + under.g * (1 - a), b: top.b * a + under.b * (1 - a), a: 1 };
  }
  function background(el) {
    var layers = [];
    for (var e = el; e && e.nodeType === 1; e = e.parentElement) {
      var c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) { break; } }
    }
    var bg = { r: 255, g: 255, b: 255, a: 1 };
    for (var i = layers.length - 1; i >= 0; i--) { bg = over(layers[i], bg); }
    return bg;
  }
  var failures = [], min = 21, measured = 0;
  document.querySelectorAll("body *").forEach(function (el) {
    if (el.id === "probe-result" || el.tagName === "SCRIPT" || el.tagName === "STYLE") { return; }
    var own = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
    if (!own || el.getClientRects().length === 0) { return; }
    var bg = background(el);
    var fg = over(rgba(getComputedStyle(el).color), bg);
    var l1 = lum(fg), l2 = lum(bg);
    var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    measured++;
    min = Math.min(min, ratio);
    if (ratio < 4.5 && failures.length < 10) {
      failures.push(el.tagName + "." + el.className + " '" + el.textContent.trim().slice(0, 30) + "' " + ratio.toFixed(2));
    }
  });
  var result = {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    dark: window.matchMedia("(prefers-color-scheme: dark)").matches,
    minContrast: min,
    measured: measured,
    contrastFailures: failures,
    verify: (document.getElementById("verify-verdict") || {}).textContent,
    run: (document.getElementById("run-verdict") || {}).textContent,
    steps: Array.prototype.map.call(document.querySelectorAll("article.step"), function (a) { return a.getAttribute("data-step"); }),
    titles: Array.prototype.map.call(document.querySelectorAll("article.step h4"), function (h) { return h.textContent; }),
    escalations: Array.prototype.map.call(document.querySelectorAll(".escalation[role=note]"), function (e) { return e.textContent; }),
    marks: Array.prototype.map.call(document.querySelectorAll("[data-mark]"), function (m) {
      return { kind: m.getAttribute("data-mark"), t: Number(m.getAttribute("data-t")), step: m.closest("[data-step]").getAttribute("data-step") };
    }),
    blobs: Array.prototype.map.call(document.querySelectorAll("pre.blob-text"), function (p) { return p.textContent; }),
    external: Array.prototype.map.call(document.querySelectorAll("[src],[href],link,iframe,object,embed,img"), function (e) { return e.outerHTML.slice(0, 80); }),
    scripts: document.querySelectorAll("script").length,
    toolsShown: !document.getElementById("tools").hidden,
    main: document.querySelector("main").outerHTML
  };
  parent.postMessage(JSON.stringify(result), "*");
}());
</script>"#;

/// Frames the probed report at `width` px and writes what the probe posts
/// into `<pre id="probe-result">`. (`--dump-dom` does not lay a page out
/// narrower than 500 px; a frame is exactly as wide as it is told.)
fn wrapper(width: u32) -> String {
    format!(
        r#"<!DOCTYPE html><html><body style="margin:0">
<iframe src="probe-report.html" style="width:{width}px;height:2000px;border:0"></iframe>
<script>addEventListener("message", function (e) {{
  var pre = document.createElement("pre"); pre.id = "probe-result"; pre.textContent = e.data;
  document.body.appendChild(pre);
}});</script></body></html>"#
    )
}

const PHONE: View = View {
    width: 390,
    height: 2000,
    dark: false,
};

/// Opens a copy of the report `html` with [`PROBE`] appended, framed 390 px
/// wide, and returns what the probe measured.
fn probe(html: &Path, dark: bool) -> Value {
    let dir = html.parent().unwrap();
    let page = std::fs::read_to_string(html).unwrap();
    std::fs::write(
        dir.join("probe-report.html"),
        page.replace("</body>", &format!("{PROBE}</body>")),
    )
    .unwrap();
    let probe_page = dir.join("probe.html");
    std::fs::write(&probe_page, wrapper(PHONE.width)).unwrap();
    let dom = dump_dom(&probe_page, View { dark, ..PHONE });
    let json = element_text(&dom, "pre", "probe-result")
        .unwrap_or_else(|| panic!("the probe wrote no result:\n{dom}"));
    let result: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(result["dark"], dark, "prefers-color-scheme took effect");
    assert_eq!(result["innerWidth"], PHONE.width);
    result
}

/// Frames `report.html` with scripts disabled (a sandbox without
/// `allow-scripts`) and writes its `<main>` into `<pre id="probe-result">`.
const NO_SCRIPT_WRAPPER: &str = r#"<!DOCTYPE html><html><body>
<iframe id="frame" sandbox="allow-same-origin" src="report.html" style="width:390px;height:2000px;border:0"></iframe>
<script>document.getElementById("frame").addEventListener("load", function () {
  var d = this.contentDocument, pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify({ main: d.querySelector("main").outerHTML, scripted: !d.getElementById("tools").hidden });
  document.body.appendChild(pre);
});</script></body></html>"#;

#[test]
fn html_report_in_chromium_shows_what_a_reviewer_must_see() {
    let ws = Workspace::new();
    let canary = "sk-canary-7Hq2Lr9xW4";
    let flag = ws.path().join("flag");
    let runbook = ws.write(
        "runbook.toml",
        &format!(
            r#"[runbook]
name = "deploy"

[secrets]
required = ["CANARY"]

[defaults]
retries = 2
backoff = {{ initial = "30ms", max = "60ms", jitter = false }}
timeout = "5s"

[[step]]
id = "build"
check = "command"
argv = ["true"]

[[step]]
id = "warm-up"
check = "command"
shell = '''if [ -e {flag} ]; then exit 0; fi; touch {flag}; echo "cold <b>cache</b> & retry"; exit 1'''

[[step]]
id = "health"
title = "<script>alert('title')</script> & co"
check = "command"
shell = '''echo "token=$S <script>alert(1)</script> & done"; exit 3'''
env = {{ S = "{{{{secret:CANARY}}}}" }}
"#,
            flag = flag.display()
        ),
    );
    let run = ws.run_with_env(&runbook, &[], &[("CANARY", canary)]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let bundle = bundle_path(&run);
    let html = ws.path().join("report.html");
    let output = report(&[&bundle], &["--html", html.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let page = std::fs::read_to_string(&html).unwrap();
    crate::support::canary::assert_absent(page.as_bytes(), canary, "the HTML report");
    // Self-contained: nothing to fetch, and a policy that forbids fetching.
    for needle in [" src=\"", " href=\"", "@import", "url("] {
        assert!(!page.contains(needle), "the report references {needle}");
    }
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));

    let journal = events(&bundle);
    let attempts = records(&journal, "attempt.end", None).len();
    let backoffs = records(&journal, "backoff", None).len();
    assert!(
        attempts >= 6 && backoffs >= 3,
        "the run retried: {attempts} attempts, {backoffs} backoffs"
    );

    let phone = PHONE;
    let mut results = Vec::new();
    for dark in [false, true] {
        let result = probe(&html, dark);
        assert!(
            result["scrollWidth"].as_u64().unwrap() <= 390,
            "horizontal scroll at 390 px: {}",
            result["scrollWidth"]
        );
        assert!(result["measured"].as_u64().unwrap() > 50, "{result}");
        assert!(
            result["contrastFailures"].as_array().unwrap().is_empty(),
            "text contrast below 4.5:1 (dark: {dark}): {}",
            result["contrastFailures"]
        );
        results.push(result);
    }
    let result = &results[0];
    let main = result["main"].as_str().unwrap();
    assert_eq!(result["verify"], "VERIFIED");
    assert_eq!(result["run"], "FAILED");
    assert_eq!(
        result["steps"],
        serde_json::json!(["build", "warm-up", "health"])
    );
    assert!(
        result["titles"][2]
            .as_str()
            .unwrap()
            .contains("<script>alert('title')</script> & co"),
        "the hostile title shows as text: {}",
        result["titles"]
    );
    // The report's own script and the probe; none from the bundle.
    // (The probe's frame holds the report.)
    assert_eq!(result["scripts"], 2);
    assert!(
        result["external"].as_array().unwrap().is_empty(),
        "{}",
        result["external"]
    );
    let escalation = result["escalations"][0].as_str().unwrap();
    assert!(
        escalation.contains("Escalated") && escalation.contains("exit code 3"),
        "{escalation}"
    );

    // One mark per attempt and per backoff, in time order; one escalation.
    let marks = result["marks"].as_array().unwrap();
    let count = |kind: &str| marks.iter().filter(|m| m["kind"] == kind).count();
    assert_eq!(count("attempt"), attempts);
    assert_eq!(count("backoff"), backoffs);
    assert_eq!(count("escalation"), 1);
    let times: Vec<f64> = marks.iter().map(|m| m["t"].as_f64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "marks in time order: {times:?}"
    );
    for step in ["warm-up", "health"] {
        let of_step = records(&journal, "backoff", Some(step)).len();
        let marked = marks
            .iter()
            .filter(|m| m["kind"] == "backoff" && m["step"] == step)
            .count();
        assert_eq!(marked, of_step, "backoffs of {step}");
    }

    // Blobs inline, the canary redacted.
    let blobs: Vec<&str> = result["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(
        blobs
            .iter()
            .any(|b| b.contains("cold <b>cache</b> & retry")),
        "{blobs:?}"
    );
    let health = blobs
        .iter()
        .find(|b| b.contains("& done"))
        .expect("the health step's stdout");
    assert!(health.contains("token=[REDACTED"), "{health}");
    crate::support::canary::assert_absent(main.as_bytes(), canary, "the rendered DOM");

    // JavaScript off (a sandboxed frame runs no script): the same content.
    let no_js_page = ws.path().join("no-js.html");
    std::fs::write(&no_js_page, NO_SCRIPT_WRAPPER).unwrap();
    let dom = dump_dom(&no_js_page, phone);
    let no_js: Value = serde_json::from_str(
        &element_text(&dom, "pre", "probe-result").expect("the wrapper read the frame"),
    )
    .unwrap();
    assert_eq!(no_js["scripted"], false, "the frame ran no script");
    assert_eq!(
        no_js["main"].as_str().unwrap(),
        main,
        "the content differs without JavaScript"
    );
    assert!(
        result["toolsShown"].as_bool().unwrap(),
        "the filter shows with JavaScript"
    );

    // Screenshots render (kept when RUNPROOF_REPORT_SCREENSHOTS names a folder).
    let shots = std::env::var_os("RUNPROOF_REPORT_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.path().to_path_buf());
    for (name, view) in [
        ("report-phone-light.png", phone),
        (
            "report-desktop-dark.png",
            View {
                width: 1280,
                height: 1400,
                dark: true,
            },
        ),
    ] {
        let png = shots.join(name);
        let (width, height) = screenshot(&html, view, &png);
        assert_eq!((width, height), (view.width, view.height), "{name}");
        assert!(
            std::fs::metadata(&png).unwrap().len() > 20_000,
            "{name} shows something"
        );
    }
}
