//! `/docs` works on a machine without internet: headless Chromium renders
//! the page from this server alone (the script is embedded in the binary,
//! and the page's content security policy allows no other origin) and the
//! rendered page lists the API's operations, read from `/openapi.json`.

use std::path::Path;
use std::process::Command;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The page's text, without markup, styles or scripts.
fn text_of(html: &str) -> String {
    let mut html = html.to_owned();
    for (open, close) in [("<style", "</style>"), ("<script", "</script>")] {
        while let Some(start) = html.find(open) {
            let end = html[start..]
                .find(close)
                .map(|e| start + e + close.len())
                .unwrap_or(html.len());
            html.replace_range(start..end, " ");
        }
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_docs_page_renders_offline_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).remove(0);
    let server = Server::start(&db, dir.path(), &[]);

    // The page and its script come from this server, under a policy that
    // allows nothing else.
    let (status, content_type, page) = server.get_text("/docs", None);
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let (status, content_type, script) = server.get_text("/docs/scalar-api-reference.js", None);
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/javascript"),
        "{content_type}"
    );
    assert!(
        script.len() > 1_000_000,
        "the embedded script is {} bytes",
        script.len()
    );

    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "notice: {CHROMIUM} is absent (apt-get install chromium; .ci/run installs it); \
             the /docs rendering test is skipped"
        );
        return;
    }
    let profile = dir.path().join("chromium-profile");
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(server.url("/docs"))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text_of(&String::from_utf8_lossy(&out.stdout));
    // Rendered from the OpenAPI document: its description, every tag, and
    // the operations of the group the page opens with.
    let (_, document) = server.get("/openapi.json", None);
    let description = document["info"]["description"].as_str().unwrap();
    assert!(
        text.contains(description),
        "{}",
        &text[..text.len().min(2_000)]
    );
    let mut tags = std::collections::BTreeSet::new();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push(format!("{method} {path}"));
            for tag in operation["tags"].as_array().into_iter().flatten() {
                tags.insert(tag.as_str().unwrap().to_owned());
            }
        }
    }
    for tag in &tags {
        assert!(
            text.contains(&format!("Group - {tag}")),
            "no group {tag:?}: {text}"
        );
    }
    let shown = operations
        .iter()
        .filter(|op| text.contains(op.as_str()))
        .count();
    assert!(
        shown >= 3,
        "the rendered /docs shows {shown} of the {} operations: {}",
        operations.len(),
        &text[..text.len().min(2_000)]
    );
}
