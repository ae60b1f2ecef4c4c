//! `runproof report --html`: one self-contained page (no network, no external
//! script, font or stylesheet) a QA reviewer reads: the verify verdict and
//! signer first, each run as a timeline, each step with its target,
//! attempts, failure class, probe answers and blobs inline; for sweeps, the
//! latency distribution and the failing and slowest checks first.
//!
//! Everything that matters is plain HTML and CSS (it reads the same with
//! JavaScript off); the script only filters. Every text from a bundle goes
//! through [`esc`]; blobs are redacted on disk and capped here.
//!
//! - [`timeline`]: attempts, backoffs and escalations on a time axis;
//! - [`steps`]: one card per step, and the sweep's check table and latency plot.

mod steps;
mod timeline;

use std::fmt::Write as _;

use super::bundle_set::{BundleSet, SourceBundle, Suite};
use crate::core::record::{BundleKind, RunVerdict};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Renders the whole page.
pub fn render(set: &BundleSet) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = match set.suites.first() {
        Some(suite) => format!("runproof report · {}", suite.summary.name),
        None => "runproof report".to_string(),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    header(&mut out, set);
    out.push_str(
        "<div id=\"tools\" class=\"tools\" hidden>\
         <label>Filter steps <input id=\"filter\" type=\"search\" placeholder=\"step id, reason…\"></label> \
         <label><input id=\"problems\" type=\"checkbox\"> only problems</label></div>\n",
    );
    out.push_str("<main>\n");
    let mut budget = steps::BlobBudget::new();
    for (n, suite) in set.suites.iter().enumerate() {
        suite_section(&mut out, set, suite, n, &mut budget);
    }
    out.push_str("</main>\n");
    let _ = writeln!(
        out,
        "<footer><p>Made by runproof {} from the bundles' journals. Check a bundle \
         yourself with <code>runproof verify BUNDLE --allowed-signers FILE</code>.</p></footer>",
        env!("CARGO_PKG_VERSION")
    );
    let _ = write!(out, "<script>\n{JS}</script>\n</body>\n</html>\n");
    out
}

/// The verdict, the run verdict and every source bundle with its signer.
fn header(out: &mut String, set: &BundleSet) {
    let valid = set.all_valid();
    let (class, word) = if valid {
        ("ok", "VERIFIED")
    } else {
        ("invalid", "INVALID")
    };
    let _ = writeln!(out, "<header id=\"verdict\" class=\"verdict {class}\">");
    if !valid {
        out.push_str(
            "<p class=\"banner\" role=\"alert\"><strong>INVALID</strong> — a bundle below did not \
             verify: its contents may have been changed. Do not rely on this report.</p>\n",
        );
    }
    let (run_class, run_word) = run_verdict_words(set.verdict());
    let _ = writeln!(
        out,
        "<h1><span class=\"badge {class}\" id=\"verify-verdict\">{word}</span> \
         <span class=\"badge {run_class}\" id=\"run-verdict\">{run_word}</span> {}</h1>",
        esc(set
            .suites
            .first()
            .map(|s| s.summary.name.as_str())
            .unwrap_or("runproof report"))
    );
    out.push_str("<ul class=\"sources\">\n");
    for source in &set.sources {
        source_item(out, source);
    }
    out.push_str("</ul>\n</header>\n");
}

fn source_item(out: &mut String, source: &SourceBundle) {
    let header = &source.bundle.header;
    let kind = match header.kind {
        BundleKind::Run => "run",
        BundleKind::Sweep => "sweep",
        BundleKind::Listen => "listen",
    };
    let shard = header
        .shard
        .as_ref()
        .map(|s| format!(" · shard {s}"))
        .unwrap_or_default();
    let verdict_class = if source.is_valid() { "ok" } else { "invalid" };
    let signer_class = match &source.verify.signer {
        Some(signer) if signer.trusted => "ok",
        _ => "warn",
    };
    let _ = writeln!(
        out,
        "<li class=\"source\"><span class=\"badge {verdict_class}\">{}</span> \
         <code class=\"path\">{}</code> <span class=\"muted\">{kind}{shard} · started {} by {}</span>\
         <dl class=\"facts\"><dt>Run id</dt><dd><code>{}</code></dd>\
         <dt>Seal head</dt><dd><code>{}</code></dd>\
         <dt>Signer</dt><dd class=\"signer {signer_class}\">{}</dd></dl>",
        esc(source.verify.verdict.label()),
        esc(&source.path),
        esc(&header.started_at),
        esc(&header.operator),
        esc(&header.run_id),
        esc(source.seal_head()),
        esc(&source.signer_text()),
    );
    if !source.verify.problems.is_empty() {
        out.push_str("<ul class=\"problems\">");
        for problem in source.verify.problems.iter().take(10) {
            let _ = write!(
                out,
                "<li>{}: {}</li>",
                esc(&problem.location()),
                esc(&problem.message)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>\n");
}

fn run_verdict_words(verdict: Option<RunVerdict>) -> (&'static str, &'static str) {
    match verdict {
        Some(RunVerdict::Pass) => ("ok", "PASSED"),
        Some(RunVerdict::Escalated) => ("bad", "FAILED"),
        Some(RunVerdict::Halted) => ("bad", "HALTED"),
        Some(RunVerdict::Interrupted) => ("warn", "INTERRUPTED"),
        Some(RunVerdict::Unconfirmed) => ("warn", "UNCONFIRMED"),
        None => ("warn", "UNFINISHED"),
    }
}

fn suite_section(
    out: &mut String,
    set: &BundleSet,
    suite: &Suite,
    n: usize,
    budget: &mut steps::BlobBudget,
) {
    let summary = &suite.summary;
    let (class, word) = run_verdict_words(summary.verdict);
    let what = match (suite.kind, suite.shards) {
        (BundleKind::Sweep, Some(count)) => format!("sweep, {count} shards merged"),
        (BundleKind::Sweep, None) => "sweep".to_string(),
        (BundleKind::Listen, _) => "webhook listener".to_string(),
        (BundleKind::Run, _) => "run".to_string(),
    };
    let _ = writeln!(
        out,
        "<section class=\"suite\" id=\"suite-{n}\">\n<h2>{} <span class=\"badge {class}\">{word}</span></h2>\n\
         <p class=\"muted\">{what} · {} steps · {} · started {}</p>",
        esc(&summary.name),
        summary.steps.len(),
        super::table::format_ms(summary.duration_ms),
        esc(&summary.started_at)
    );
    let index = steps::StepRecords::gather(set, suite);
    if suite.kind == BundleKind::Sweep {
        steps::latency_plot(out, summary);
        steps::check_table(out, summary);
    }
    for &source in &suite.sources {
        timeline::render(out, &set.sources[source], suite.sources.len() > 1);
    }
    steps::step_cards(out, suite, &index, budget);
    out.push_str("</section>\n");
}

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than line breaks and tabs have no
            // business in a page (and some are not allowed in HTML).
            c if c.is_control() && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\"\u{1}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{FFFD}"
        );
    }
}
