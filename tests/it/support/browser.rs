//! Headless Chromium for the HTML report tests: dump a page's DOM after its
//! scripts ran, or take a screenshot. A missing browser fails the test
//! (scripts/test.sh installs Debian's `chromium`); it never skips.
//!
//! `--dump-dom` needs script and does not lay a page out narrower than
//! 500 px, so tests frame the page under test in a page of their own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Chromium binary on PATH.
pub fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(path) = which(name) {
            return path;
        }
    }
    panic!("chromium is not installed: the HTML report tests need it (scripts/test.sh installs Debian's `chromium`)");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}

/// How a page is opened.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub width: u32,
    pub height: u32,
    pub dark: bool,
}

fn command(profile: &Path, view: View) -> Command {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
            // A test page reads the document of the report it frames.
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", view.width, view.height));
    if view.dark {
        command.arg("--force-dark-mode");
    }
    command
}

/// The serialized DOM of `page` after its scripts ran.
pub fn dump_dom(page: &Path, view: View) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let output = command(profile.path(), view)
        .arg("--dump-dom")
        .arg(url(page))
        .output()
        .expect("start chromium");
    assert!(
        output.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("DOM is UTF-8")
}

/// Takes a screenshot of `page` into `png`; returns its width and height.
pub fn screenshot(page: &Path, view: View, png: &Path) -> (u32, u32) {
    let profile = tempfile::tempdir().expect("profile dir");
    let output = command(profile.path(), view)
        .arg(format!("--screenshot={}", png.display()))
        .arg(url(page))
        .output()
        .expect("start chromium");
    assert!(
        output.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(png).expect("screenshot written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    // IHDR: width and height, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (width, height)
}

fn url(page: &Path) -> String {
    format!(
        "file://{}",
        page.canonicalize().expect("page exists").display()
    )
}

/// The text of the first element `<tag id="id">…</tag>` in a dumped DOM,
/// with the serializer's entities undone.
pub fn element_text(dom: &str, tag: &str, id: &str) -> Option<String> {
    let open = format!("<{tag} id=\"{id}\">");
    let start = dom.find(&open)? + open.len();
    let end = start + dom[start..].find(&format!("</{tag}>"))?;
    Some(
        dom[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&nbsp;", "\u{a0}")
            .replace("&amp;", "&"),
    )
}
