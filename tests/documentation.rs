//! The README and the pages under `docs/` link to each other, to screenshots and to
//! files of the repository; a moved or renamed file must not leave a dead link. Each
//! relative link must name an existing file, and a `#fragment` a heading of the page
//! it points to (as GitHub makes anchors of headings). Nothing may point outside the
//! repository.

use std::path::{Path, PathBuf};

/// The pages whose links are checked: the README, BENCHMARKS.md and every `docs/*.md`.
fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages
}

/// The targets of the Markdown links `[text](target)` and images `![alt](target)` in
/// `text`, outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    targets
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of every heading of the Markdown page `text`.
fn anchors(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_in_the_documentation_names_an_existing_file_and_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let mut dead = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let Ok(resolved) = path.canonicalize() else {
                dead.push(format!("{}: {target} (no such file)", page.display()));
                continue;
            };
            if !resolved.starts_with(&root) {
                dead.push(format!(
                    "{}: {target} (outside the repository)",
                    page.display()
                ));
                continue;
            }
            if let Some(fragment) = fragment
                && resolved.extension().is_some_and(|e| e == "md")
            {
                let linked = std::fs::read_to_string(&resolved).unwrap();
                if !anchors(&linked).iter().any(|a| a == fragment) {
                    dead.push(format!("{}: {target} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn the_link_reader_finds_links_images_and_fragments_but_not_code() {
    let text = "See [a](docs/a.md#one-two) and ![b](x.png).\n```\n[c](not.md)\n```\n";
    assert_eq!(link_targets(text), ["docs/a.md#one-two", "x.png"]);
    assert_eq!(
        anchor(" PostgreSQL and replicas"),
        "postgresql-and-replicas"
    );
    assert_eq!(
        anchor(" Release board, and `/mail`"),
        "release-board-and-mail"
    );
}
