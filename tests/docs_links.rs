//! Every relative link in the user documentation resolves: `README.md`, `data/README.md` and
//! every `docs/*.md`. A link `[text](target)` (or an image `![alt](target)`) whose target is
//! not an absolute URL (`http:`, `https:`, `mailto:`) must name a file or directory that
//! exists, relative to the linking file's directory; a `#anchor` (alone, or after a Markdown
//! target) must name a heading of the target file, slugged as GitHub does. Links inside code
//! (fenced blocks and inline code spans) are not links and are skipped.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// A link as written: the line it is on and its target.
struct Link {
    line: usize,
    target: String,
}

/// The lines of a Markdown file outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        if let Some(c) = marker {
            let run = trimmed.chars().take_while(|x| *x == c).count();
            if run >= 3 {
                match fence {
                    None => {
                        fence = Some((c, run));
                        continue;
                    }
                    Some((open, len))
                        if open == c && run >= len && trimmed[run..].trim().is_empty() =>
                    {
                        fence = None;
                        continue;
                    }
                    _ => {}
                }
            }
        }
        if fence.is_none() {
            out.push((i + 1, line));
        }
    }
    out
}

/// `line` with every inline code span removed (a run of backticks up to the same run).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + run..];
        let closing = "`".repeat(run);
        match after.find(&closing) {
            Some(end) => rest = &after[end + run..],
            None => {
                // An unmatched backtick is literal text.
                out.push_str(&rest[start..start + run]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every inline link `[text](target)` of a Markdown text, outside code.
fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let mut target = after[..end].trim();
            // An optional title: `[text](target "title")`.
            if let Some(space) = target.find(char::is_whitespace) {
                target = &target[..space];
            }
            let target = target.trim_start_matches('<').trim_end_matches('>');
            if rest[..at].contains('[') {
                out.push(Link {
                    line: number,
                    target: target.to_string(),
                });
            }
            rest = &after[end + 1..];
        }
    }
    out
}

/// GitHub's anchor for a heading text: lowercase, every character but letters, digits,
/// `-`, `_` and spaces dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of every ATX heading of a Markdown text (outside code), with GitHub's `-1`,
/// `-2`, … suffixes for repeated headings.
fn anchors(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if level == 0
            || level > 6
            || !(trimmed[level..].starts_with(' ') || trimmed[level..].is_empty())
        {
            continue;
        }
        let mut title = trimmed[level..]
            .trim()
            .trim_end_matches('#')
            .trim()
            .to_string();
        // A link in a heading counts by its text.
        while let (Some(open), Some(mid)) = (title.find('['), title.find("](")) {
            let Some(close) = title[mid..].find(')') else {
                break;
            };
            if open > mid {
                break;
            }
            title = format!(
                "{}{}{}",
                &title[..open],
                &title[open + 1..mid],
                &title[mid + close + 1..]
            );
        }
        let base = slug(&title);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// Every broken link of the Markdown file `file`, as `file:line: message`.
fn broken_links(file: &Path) -> Vec<String> {
    let text =
        fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    for link in links(&text) {
        let target = link.target.as_str();
        let at = format!("{}:{}", file.display(), link.line);
        if target.is_empty() {
            problems.push(format!("{at}: empty link target"));
            continue;
        }
        let lower = target.to_ascii_lowercase();
        if ["http:", "https:", "mailto:"]
            .iter()
            .any(|scheme| lower.starts_with(scheme))
        {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target, None),
        };
        let resolved: PathBuf = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !resolved.exists() {
            problems.push(format!(
                "{at}: `{target}`: no file `{}`",
                resolved.display()
            ));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if resolved.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let target_text = fs::read_to_string(&resolved).unwrap_or_default();
        if !anchors(&target_text).contains(anchor) {
            problems.push(format!(
                "{at}: `{target}`: no heading `#{anchor}` in `{}`",
                resolved.display()
            ));
        }
    }
    problems
}

/// The user documentation: README.md, data/README.md and every docs/*.md.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("data/README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("a docs/ directory")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = documents(root);
    assert!(files.len() > 2, "docs/ holds no Markdown file");
    let problems: Vec<String> = files.iter().flat_map(|file| broken_links(file)).collect();
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let linked: HashSet<PathBuf> = links(&readme)
        .iter()
        .map(|link| root.join(link.target.split('#').next().unwrap_or_default()))
        .collect();
    for file in documents(root)
        .iter()
        .filter(|f| f.parent() == Some(&root.join("docs")))
    {
        assert!(
            linked.contains(file),
            "README.md does not link to {}",
            file.display()
        );
    }
}

#[test]
fn the_checker_finds_broken_files_and_anchors() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("other.md"),
        "# Other page\n\n## Serving speed, bciops vs BentoML\n\n## Formats\n## Formats\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("page.md"),
        "# A page\n\
         [ok](other.md) [ok](other.md#serving-speed-bciops-vs-bentoml) [ok](#a-page) [ok](other.md#formats-1)\n\
         [web](https://example.com/x) [mail](mailto:a@b.c) `[code](nowhere.md)`\n\
         ```\n[fenced](nowhere.md)\n```\n\
         [missing](nowhere.md)\n\
         [bad anchor](other.md#serving)\n\
         [bad local anchor](#no-such-heading)\n",
    )
    .unwrap();
    let problems = broken_links(&dir.path().join("page.md"));
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("nowhere.md") && problems[0].contains(":7:"),
        "{problems:#?}"
    );
    assert!(problems[1].contains("#serving`"), "{problems:#?}");
    assert!(problems[2].contains("#no-such-heading"), "{problems:#?}");
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Tuning: `bciops tune`"), "tuning-bciops-tune");
    assert_eq!(
        slug("Data where it lives (object storage)"),
        "data-where-it-lives-object-storage"
    );
    assert_eq!(slug("Exit codes"), "exit-codes");
    assert_eq!(
        slug("snake_case and kebab-case"),
        "snake_case-and-kebab-case"
    );
    assert_eq!(slug("Train/serve difference"), "trainserve-difference");
}
