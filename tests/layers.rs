//! Imports only go down. Every `crate::…` or `super::…` path in a file of
//! `src/` names a part of the crate on a lower line of [`LAYERS`] than the
//! file's own part (or the file's own part), so no chain of imports between
//! files of different parts can come back: a cycle between folders fails
//! here, as does any single upward import. A file's inline unit tests
//! (`#[cfg(test)] mod tests { … }`) are not part of the shape and may use
//! what is above.

use std::{collections::BTreeSet, fs, path::Path};

/// The parts of `src/`, top first: a top-level file or folder of `src/`, or a
/// folder of `src/api/` (`api` itself is its `mod.rs` and top-level files). A
/// part may import only parts on lower lines; parts on one line do not import
/// each other.
const LAYERS: &[&[&str]] = &[
    &["main", "lib", "startup", "telemetry"],
    &["api", "jobs", "client"],
    &[
        "api/release",
        "api/approval",
        "api/board",
        "api/hooks",
        "api/mail",
    ],
    &["api/shared"],
    &["api/pages"],
    &["api/http"],
    &["flow"],
    &["store", "approvers", "azure", "notify", "oidc"],
    &["settings"],
    &["token"],
    &["domain"],
    &["secret", "clock", "metrics", "live"],
];

/// The line of `part` in [`LAYERS`].
fn level(part: &str) -> usize {
    LAYERS
        .iter()
        .position(|line| line.contains(&part))
        .unwrap_or_else(|| panic!("src/{part} is in no line of LAYERS; add it where it belongs"))
}

/// The part that the module at `path` (its names from the crate root) belongs to.
fn part_of(path: &[String]) -> String {
    match path {
        [api, sub, ..] if api == "api" && level_of_api_folder(sub) => format!("api/{sub}"),
        [first, ..] => first.clone(),
        [] => "lib".to_owned(),
    }
}

/// Whether `api/{name}` is a part of its own (a folder of `src/api/`).
fn level_of_api_folder(name: &str) -> bool {
    let part = format!("api/{name}");
    LAYERS.iter().any(|line| line.contains(&part.as_str()))
}

/// The module path of a file under `src/`: `api/release/mod.rs` → `api::release`.
fn module_of(relative: &str) -> Vec<String> {
    let mut path: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(
        path.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        path.pop();
    }
    path
}

/// Every path that starts with `crate::` or `super::` in `text`, resolved from
/// the crate root (`module` is the file's own module path), with the line it
/// is on. A group expands: `crate::{a::X, b::{Y, Z}}` gives `a::X`, `b::Y`, `b::Z`.
fn paths_used(text: &str, module: &[String]) -> Vec<(usize, Vec<String>)> {
    let bytes = text.as_bytes();
    let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let starts_path = at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric()
                || bytes[at - 1] == b'_'
                || bytes[at - 1] == b':');
        let step = rest.chars().next().map_or(1, char::len_utf8);
        let (base, skip) = if !starts_path {
            (None, step)
        } else if rest.starts_with("crate::") {
            (Some(Vec::new()), "crate::".len())
        } else if rest.starts_with("super::") {
            let mut base = module.to_vec();
            let mut skip = 0;
            while rest[skip..].starts_with("super::") {
                base.pop();
                skip += "super::".len();
            }
            (Some(base), skip)
        } else {
            (None, step)
        };
        let Some(base) = base else {
            at += skip;
            continue;
        };
        let mut tree = Vec::new();
        let end = use_tree(text, at + skip, &mut Vec::new(), &mut tree);
        for (offset, names) in tree {
            let mut path = base.clone();
            path.extend(names);
            found.push((line_at(offset), path));
        }
        at = end.max(at + skip);
    }
    found
}

/// Parses the use tree starting at `at` (`a::b`, `a::{b, c::d}` or `{…}`),
/// pushing each leaf path (after `prefix`) with the offset of its last name;
/// returns where the tree ends.
fn use_tree(
    text: &str,
    mut at: usize,
    prefix: &mut Vec<String>,
    into: &mut Vec<(usize, Vec<String>)>,
) -> usize {
    let skip_space = |mut at: usize| {
        while text[at..].starts_with(char::is_whitespace) {
            at += 1;
        }
        at
    };
    at = skip_space(at);
    if text[at..].starts_with('{') {
        at += 1;
        loop {
            at = skip_space(at);
            if text[at..].starts_with('}') {
                return at + 1;
            }
            at = use_tree(text, at, prefix, into);
            at = skip_space(at);
            if text[at..].starts_with(',') {
                at += 1;
            }
        }
    }
    let name: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '*')
        .collect();
    if name.is_empty() {
        return at;
    }
    let start = at;
    at += name.len();
    if text[at..].starts_with("::") {
        prefix.push(name);
        let end = use_tree(text, at + 2, prefix, into);
        prefix.pop();
        return end;
    }
    let mut leaf = prefix.clone();
    if name != "self" && name != "*" {
        leaf.push(name);
    }
    into.push((start, leaf));
    at
}

/// Every `.rs` file under `dir`, as paths relative to `root`.
fn rust_files(root: &Path, dir: &Path, into: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(root, &path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src/");
            into.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Each import in `src/` that does not go down: `src/file:line: part -> part`.
fn upward_imports(src: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(src, src, &mut files);
    let mut upward = BTreeSet::new();
    for file in files {
        let module = module_of(&file);
        let from = part_of(&module);
        let text = fs::read_to_string(src.join(&file)).expect("a readable source file");
        let code = text
            .split("#[cfg(test)]\nmod tests {")
            .next()
            .unwrap_or_default();
        for (line, path) in paths_used(code, &module) {
            let to = part_of(&path);
            if to != from && level(&to) <= level(&from) {
                upward.insert(format!("src/{file}:{line}: {from} -> {to}"));
            }
        }
    }
    upward
}

#[test]
fn every_import_between_parts_of_the_crate_goes_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let upward = upward_imports(&src);
    assert!(
        upward.is_empty(),
        "imports that do not go down LAYERS (tests/layers.rs):\n{}",
        upward.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn upward_imports_are_found_in_groups_in_code_and_through_super() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "domain/policy.rs",
        "use crate::clock::Clock;\nuse super::release::Key;\n",
    );
    write(
        "store/mod.rs",
        "use crate::{\n    domain::{policy::Rule, release::Key},\n    flow::Flow,\n};\n",
    );
    write(
        "flow/mod.rs",
        "use crate::store::Store;\nfn f() { crate::api::x() }\n",
    );
    write(
        "api/http/auth.rs",
        "use super::super::shared::state::AppState;\n",
    );
    write(
        "api/release/mod.rs",
        "use crate::api::{http::auth::Key, shared::lookup};\n",
    );
    let upward: Vec<String> = upward_imports(dir.path()).into_iter().collect();
    assert_eq!(
        upward,
        [
            "src/api/http/auth.rs:1: api/http -> api/shared",
            "src/flow/mod.rs:2: flow -> api",
            "src/store/mod.rs:3: store -> flow",
        ]
    );
}
