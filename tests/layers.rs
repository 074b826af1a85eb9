//! The crate's layers, checked from the code: every file of `src/` imports (with `use
//! crate::…`, `use super::…`, or a path written inline) only files of its own layer or of the
//! layers below it, the files of one layer import each other without a circle, a file imports
//! its siblings by their own file rather than through the folder's `mod.rs`, and a `mod.rs`
//! (like `lib.rs`) only declares modules and re-exports. A failure names the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first: each folder (or file) of `src/` may import only those before it.
const LAYERS: [&str; 11] = [
    "sync", "wire", "tools", "child", "mux", "session", "upstream", "servers", "http", "serve",
    "front",
];

#[test]
fn each_layer_imports_only_the_layers_below_it_and_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_tree(&src);
    assert!(
        files.len() > 40,
        "expected the whole crate under {}, found {} files",
        src.display(),
        files.len()
    );
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "the layers do not hold:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_an_upward_import_a_circle_a_detour_and_code_in_a_mod_rs() {
    let files: BTreeMap<String, String> = [
        ("lib.rs", "pub mod wire;\npub mod child;\n"),
        ("wire/mod.rs", "pub mod a;\npub mod b;\npub use a::Thing;\n"),
        ("wire/a.rs", "use super::b::Other;\npub struct Thing;\n"),
        (
            "wire/b.rs",
            "//! b\nuse super::a::Thing;\nuse crate::child::Child;\npub struct Other;\n",
        ),
        (
            "child/mod.rs",
            "pub mod run;\npub struct Child;\n",
        ),
        (
            "child/run.rs",
            "use super::Child;\nfn f() { crate::wire::a::Thing; }\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
    ]
    .into_iter()
    .map(|(path, text)| (path.to_owned(), text.to_owned()))
    .collect();
    let problems = check(&files).join("\n");
    assert!(
        problems.contains("wire/b.rs:3: imports crate::child::Child, in layer child, above wire"),
        "{problems}"
    );
    assert!(
        problems.contains("a circle: wire/a.rs:1 -> wire/b.rs:2 -> wire/a.rs"),
        "{problems}"
    );
    assert!(
        problems.contains("child/run.rs:1: imports super::Child through child/mod.rs"),
        "{problems}"
    );
    assert!(
        problems.contains("child/mod.rs:2: a mod.rs only declares modules and re-exports"),
        "{problems}"
    );
    // Down a layer is fine; `super` inside a test module is the file itself.
    assert!(!problems.contains("child/run.rs:2"), "{problems}");
    assert!(!problems.contains("child/run.rs:5"), "{problems}");
}

/// Every `.rs` file under `root`, by its path relative to it (with `/`).
fn read_tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, files: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, root, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy();
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                files.insert(relative.replace('\\', "/"), text);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

/// One import: the line it is on, the path as written, and the file it reaches.
#[derive(Debug, Clone)]
struct Import {
    line: usize,
    path: String,
    target: String,
}

/// Every violation of the rules, one line each.
fn check(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, Vec<Import>> = BTreeMap::new();
    for (file, text) in files {
        if file == "main.rs" {
            // The binary uses the library by its name, like any other user of it.
            continue;
        }
        if is_module_root(file) {
            for (line, code) in code_lines(text) {
                let item = code.trim_start();
                let declares = item.is_empty()
                    || item.starts_with("pub mod ")
                    || item.starts_with("mod ")
                    || item.starts_with("pub use ")
                    || item.starts_with('#')
                    || item.starts_with('}')
                    || !starts_an_item(item);
                if !declares {
                    problems.push(format!(
                        "{file}:{line}: a mod.rs only declares modules and re-exports; move \
                         `{}` into a file of its own",
                        item.chars().take(40).collect::<String>()
                    ));
                }
            }
        }
        let layer = layer_of(file);
        for import in imports(file, text, files) {
            let target_layer = layer_of(&import.target);
            match (rank(&layer), rank(&target_layer)) {
                (Some(from), Some(to)) if to > from => problems.push(format!(
                    "{file}:{}: imports {}, in layer {target_layer}, above {layer}",
                    import.line, import.path
                )),
                _ => {}
            }
            if target_layer == layer && is_module_root(&import.target) && !is_module_root(file) {
                let folder = parent_folder(file);
                if parent_folder(&import.target) == folder
                    || folder.starts_with(&parent_folder(&import.target))
                {
                    problems.push(format!(
                        "{file}:{}: imports {} through {}; import it from its own file",
                        import.line, import.path, import.target
                    ));
                    continue;
                }
            }
            if import.target != *file {
                edges.entry(file.clone()).or_default().push(import);
            }
        }
    }
    problems.extend(circles(&edges));
    problems
}

fn is_module_root(file: &str) -> bool {
    file == "lib.rs" || file.ends_with("/mod.rs")
}

/// Whether a line of code opens an item a `mod.rs` must not hold.
fn starts_an_item(item: &str) -> bool {
    let item = item
        .strip_prefix("pub(crate) ")
        .or_else(|| item.strip_prefix("pub(super) "))
        .or_else(|| item.strip_prefix("pub "))
        .unwrap_or(item);
    let item = item
        .strip_prefix("async ")
        .or_else(|| item.strip_prefix("unsafe "))
        .unwrap_or(item);
    [
        "fn ",
        "struct ",
        "enum ",
        "impl",
        "trait ",
        "const ",
        "static ",
        "type ",
        "use ",
        "macro_rules!",
    ]
    .iter()
    .any(|keyword| item.starts_with(keyword))
}

/// The folder a file is in, relative to `src/` (`""` for the crate root's files).
fn parent_folder(file: &str) -> String {
    file.rsplit_once('/')
        .map_or(String::new(), |(folder, _)| folder.to_owned())
}

/// The layer of a file: its top folder, or its own name for a file at the root.
fn layer_of(file: &str) -> String {
    let top = file.split('/').next().unwrap_or(file);
    top.trim_end_matches(".rs").to_owned()
}

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|known| *known == layer)
}

/// The lines of `text` that are code: comments dropped, each with its line number.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let code = match line.find("//") {
                // A `//` inside a string (a URL) is not a comment; such lines carry no paths.
                Some(at) if !line[..at].contains('"') => &line[..at],
                _ => line,
            };
            (!code.trim().is_empty()).then(|| (n + 1, code.to_owned()))
        })
        .collect()
}

/// The files `file` imports: its `use` trees and the `crate::`/`super::` paths written inline.
fn imports(file: &str, text: &str, files: &BTreeMap<String, String>) -> Vec<Import> {
    let mut found = Vec::new();
    let lines = code_lines(text);
    // `super` inside `mod tests { … }` is the file itself.
    let mut test_module_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < lines.len() {
        let (line, code) = &lines[i];
        let in_tests = test_module_depth.is_some();
        if code.trim_start().starts_with("mod tests") && code.contains('{') {
            test_module_depth = Some(depth);
        }
        let trimmed = code.trim_start();
        let statement = trimmed
            .strip_prefix("pub use ")
            .or_else(|| trimmed.strip_prefix("pub(crate) use "))
            .or_else(|| trimmed.strip_prefix("use "));
        if let Some(start) = statement {
            // A use statement, perhaps over several lines.
            let mut tree = start.to_owned();
            let mut end = i;
            while !tree.contains(';') && end + 1 < lines.len() {
                end += 1;
                tree.push_str(&lines[end].1);
            }
            // `a as b` keeps its `a`; spaces go.
            let tree = tree.split(';').next().unwrap_or("");
            let tree = tree.replace(" as ", "#").replace(char::is_whitespace, "");
            for path in expand(&tree) {
                if in_tests && path.starts_with("super") {
                    continue;
                }
                if let Some(target) = resolve(file, &path, files) {
                    found.push(Import {
                        line: *line,
                        path,
                        target,
                    });
                }
            }
            i = end + 1;
            continue;
        }
        for path in inline_paths(code) {
            if in_tests && path.starts_with("super") {
                continue;
            }
            if let Some(target) = resolve(file, &path, files) {
                found.push(Import {
                    line: *line,
                    path,
                    target,
                });
            }
        }
        depth += code.matches('{').count();
        depth = depth.saturating_sub(code.matches('}').count());
        if test_module_depth.is_some_and(|at| depth <= at) && code.contains('}') {
            test_module_depth = None;
        }
        i += 1;
    }
    found
}

/// The paths of a use tree: `crate::{a::{b, c}, d}` is `crate::a::b`, `crate::a::c`,
/// `crate::d`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        let path = tree.split('#').next().unwrap_or(tree);
        return vec![path.trim_end_matches("::self").to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let mut level = 0;
    let mut start = 0;
    for (at, c) in inner.char_indices() {
        match c {
            '{' => level += 1,
            '}' => level -= 1,
            ',' if level == 0 => {
                parts.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .flat_map(|part| {
            if part == "self" {
                vec![prefix.trim_end_matches("::").to_owned()]
            } else {
                expand(&format!("{prefix}{part}"))
            }
        })
        .collect()
}

/// `crate::…` and `super::…` paths written in a line of code outside `use`.
fn inline_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().next_back();
            let tail = &rest[at..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                paths.push(tail[..len].trim_end_matches(':').to_owned());
            }
            rest = &tail[len.max(1)..];
        }
    }
    paths
}

/// The file a path reaches from `file`: the deepest module file it names.
fn resolve(file: &str, path: &str, files: &BTreeMap<String, String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    // The module `file` is: `a/b.rs` and `a/b/mod.rs` are `a::b`.
    let mut module: Vec<String> = file
        .trim_end_matches(".rs")
        .trim_end_matches("/mod")
        .split('/')
        .map(str::to_owned)
        .collect();
    if file == "lib.rs" {
        module.clear();
    }
    match segments.first() {
        Some(&"crate") => {
            module.clear();
            segments.remove(0);
        }
        Some(&"super") => {
            while segments.first() == Some(&"super") {
                module.pop();
                segments.remove(0);
            }
        }
        _ => return None,
    }
    let mut reached = module_file(&module, files)?;
    for segment in segments {
        module.push(segment.to_owned());
        match module_file(&module, files) {
            Some(deeper) => reached = deeper,
            None => break,
        }
    }
    Some(reached)
}

/// The file of the module at `path` (`[]` is the crate root), if there is one.
fn module_file(path: &[String], files: &BTreeMap<String, String>) -> Option<String> {
    if path.is_empty() {
        return files.contains_key("lib.rs").then(|| "lib.rs".to_owned());
    }
    let joined = path.join("/");
    [format!("{joined}.rs"), format!("{joined}/mod.rs")]
        .into_iter()
        .find(|candidate| files.contains_key(candidate))
}

/// Every circle in the import graph, each named once by its files and import lines.
fn circles(edges: &BTreeMap<String, Vec<Import>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first from each file, looking for a way back to it.
        let mut stack: Vec<(String, Vec<(String, usize)>)> = vec![(start.clone(), Vec::new())];
        let mut seen = BTreeSet::new();
        while let Some((file, trail)) = stack.pop() {
            for import in edges.get(&file).into_iter().flatten() {
                let mut next = trail.clone();
                next.push((file.clone(), import.line));
                if import.target == *start {
                    found.insert(name_circle(&next));
                } else if seen.insert(import.target.clone()) {
                    stack.push((import.target.clone(), next));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// A circle as `a.rs:3 -> b.rs:7 -> a.rs`, starting from its smallest file name so that each
/// circle is named once.
fn name_circle(trail: &[(String, usize)]) -> String {
    let first = trail
        .iter()
        .enumerate()
        .min_by_key(|(_, (file, _))| file.clone())
        .map_or(0, |(at, _)| at);
    let rotated: Vec<&(String, usize)> = trail[first..].iter().chain(&trail[..first]).collect();
    let mut text = String::from("a circle: ");
    for (file, line) in &rotated {
        text.push_str(&format!("{file}:{line} -> "));
    }
    text.push_str(&rotated[0].0);
    text
}
