//! The shape of the host and of every library crate beside it, checked on their source: no file imports
//! in a circle, no folder imports in a circle (at each level, the sibling modules of a folder depend one
//! way: `tracking → uncertainty → train → tracking` is a circle even when no single file closes it), and
//! no host file is longer than a reader can hold (500 lines). A file's imports are the paths it names —
//! `crate::…`, `super::…`, `l2l_host::…` and its own child modules — resolved to the deepest module
//! file they reach; tests inside a file (`#[cfg(test)]` and after) are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines as rustfmt writes them (120 columns): the limit was 400 while lines ran to any width, and
/// formatting the same code at 120 columns made the longest files 402–480 lines.
const MAX_LINES: usize = 500;

/// A source file and the module path it defines (`lib::train::config`, `bin::cli::jobs`).
struct SourceFile {
    module: Vec<String>,
    text: String,
    lines: usize,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading host/src") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of `file` below `src`: `lib.rs` is the library, `main.rs` and `cli/` the binary.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative: Vec<String> = file
        .strip_prefix(src)
        .unwrap()
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let crate_name = if relative[0] == "main" || relative[0] == "cli" {
        "bin"
    } else {
        "lib"
    };
    let mut module = vec![crate_name.to_string()];
    module.extend(relative.into_iter().filter(|c| c != "lib" && c != "main" && c != "mod"));
    module
}

/// Source without comments, string literals and the trailing test module.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut code = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut in_string = false;
        let mut previous = ' ';
        for c in line.chars() {
            if c == '"' && previous != '\\' {
                in_string = !in_string;
            } else if !in_string {
                code.push(c);
            }
            previous = c;
        }
        code.push('\n');
    }
    code
}

/// Every path the code names that starts with `crate`, `super`, `self`, `l2l_host` or one of
/// `children`, with `use` groups (`a::{b, c::d}`) expanded.
fn named_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if starts_word && (chars[i].is_alphabetic() || chars[i] == '_') {
            let (path, end) = read_path(&chars, i);
            i = end;
            let first = path.first().map(|p| p[0].as_str()).unwrap_or("");
            if ["crate", "super", "self", "l2l_host"].contains(&first) || children.contains(first) {
                // a lone `crate` or `super` is a visibility (`pub(crate)`), not a path
                paths.extend(path.into_iter().filter(|p| p.len() > 1));
            }
        } else {
            i += 1;
        }
    }
    paths
}

/// Reads `a::b::{c, d::e}` from `start`; returns the expanded paths and where it ended.
fn read_path(chars: &[char], start: usize) -> (Vec<Vec<String>>, usize) {
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        let begin = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        segments.push(chars[begin..i].iter().collect::<String>());
        if i + 2 < chars.len() && chars[i] == ':' && chars[i + 1] == ':' {
            i += 2;
            if chars[i] == '{' {
                let mut expanded = Vec::new();
                i += 1;
                loop {
                    while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                        i += 1;
                    }
                    if i >= chars.len() || chars[i] == '}' {
                        return (expanded, i + 1);
                    }
                    let (inner, end) = read_path(chars, i);
                    for tail in inner {
                        let mut path = segments.clone();
                        if tail != ["self"] {
                            path.extend(tail);
                        }
                        expanded.push(path);
                    }
                    i = end;
                }
            }
            if chars[i] == '*' {
                segments.push("*".into());
                return (vec![segments], i + 1);
            }
            if !(chars[i].is_alphabetic() || chars[i] == '_') {
                return (vec![segments], i);
            }
        } else {
            return (vec![segments], i);
        }
    }
}

/// The deepest module file a path from `module` reaches.
fn resolve(module: &[String], path: &[String], files: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut current: Vec<String> = match path[0].as_str() {
        "crate" => vec![module[0].clone()],
        "l2l_host" => vec!["lib".into()],
        "self" => module.to_vec(),
        "super" => module.to_vec(),
        _ => module.to_vec(),
    };
    let mut rest = path;
    if path[0] != "super" && path[0] != "crate" && path[0] != "l2l_host" && path[0] != "self" {
        // a child module named by itself
    } else {
        rest = &path[1..];
        if path[0] == "super" {
            current.pop();
        }
    }
    for segment in rest {
        if segment == "super" {
            current.pop();
            continue;
        }
        let mut next = current.clone();
        next.push(segment.clone());
        if files.contains(&next) {
            current = next;
        } else {
            break;
        }
    }
    Some(current)
}

fn host_files() -> BTreeMap<Vec<String>, SourceFile> {
    crate_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// The source files of the crate whose `src` folder is `src`.
fn crate_files(src: &Path) -> BTreeMap<Vec<String>, SourceFile> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("reading a source file");
            let module = module_of(src, path);
            (
                module.clone(),
                SourceFile {
                    module,
                    lines: text.lines().count(),
                    text,
                },
            )
        })
        .collect()
}

/// Edges: file → the files whose items it names.
fn import_graph(files: &BTreeMap<Vec<String>, SourceFile>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let known: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    files
        .values()
        .map(|file| {
            let code = code_of(&file.text);
            let children: BTreeSet<String> = known
                .iter()
                .filter(|k| k.len() == file.module.len() + 1 && k.starts_with(&file.module))
                .map(|k| k.last().unwrap().clone())
                .collect();
            let targets = named_paths(&code, &children)
                .iter()
                .filter_map(|path| resolve(&file.module, path, &known))
                .filter(|target| *target != file.module && known.contains(target))
                .collect();
            (file.module.clone(), targets)
        })
        .collect()
}

/// The graph between sibling modules that `graph` (between files) implies: a file of `a::x::…` naming
/// a file of `a::y::…` is an edge `a::x → a::y` at the level where their paths part; a module using its
/// own children (or a child its parent) is no edge between siblings.
fn folder_graph(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut folders: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, targets) in graph {
        for to in targets {
            let shared = from.iter().zip(to).take_while(|(a, b)| a == b).count();
            if shared < from.len() && shared < to.len() {
                folders
                    .entry(from[..=shared].to_vec())
                    .or_default()
                    .insert(to[..=shared].to_vec());
            }
        }
    }
    folders
}

/// The `src` folders of the workspace's library crates besides the host: the plugin API and `crates/*`.
fn library_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut sources = vec![root.join("plugin-api/src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("reading crates/")
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    crates.sort();
    sources.extend(crates);
    sources
}

/// Panics naming the first file-level or folder-level circle of `files`' imports.
fn assert_no_circle(what: &str, files: &BTreeMap<Vec<String>, SourceFile>) {
    let graph = import_graph(files);
    for (level, graph) in [("file", graph.clone()), ("folder", folder_graph(&graph))] {
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "{what}: {level}-level import circle: {}",
                cycle.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" → ")
            );
        }
    }
}

/// A cycle in the graph, if any, as the files along it.
fn find_cycle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn no_file_of_the_host_imports_in_a_circle() {
    let files = host_files();
    let graph = import_graph(&files);
    // the checker itself sees what matters: the training engine names the job context and the config loader
    assert!(graph[&vec!["lib".to_string(), "train".to_string()]].contains(&vec![
        "lib".to_string(),
        "train".to_string(),
        "context".to_string()
    ]));
    assert!(graph[&vec!["lib".to_string(), "run".to_string()]].contains(&vec!["lib".to_string(), "config".to_string()]));
    assert_no_circle("host", &files);
}

#[test]
fn no_library_crate_imports_in_a_circle() {
    let sources = library_sources();
    assert!(sources.len() >= 4, "{sources:?}");
    for src in sources {
        assert_no_circle(&src.display().to_string(), &crate_files(&src));
    }
}

#[test]
fn a_circle_between_folders_is_found_when_no_file_closes_one() {
    let module = |path: &str| -> Vec<String> { path.split("::").map(String::from).collect() };
    let graph = BTreeMap::from([
        (module("lib::x::a"), BTreeSet::from([module("lib::y::b")])),
        (module("lib::y::c"), BTreeSet::from([module("lib::x::d")])),
        (module("lib::x"), BTreeSet::from([module("lib::x::a")])),
    ]);
    assert!(find_cycle(&graph).is_none(), "no file closes a circle");
    let cycle = find_cycle(&folder_graph(&graph)).expect("x → y → x between folders");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
    let one_way = BTreeMap::from([(module("lib::x::a"), BTreeSet::from([module("lib::y::b")]))]);
    assert!(find_cycle(&folder_graph(&one_way)).is_none());
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let a = vec!["lib".to_string(), "a".to_string()];
    let b = vec!["lib".to_string(), "b".to_string()];
    let graph = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    assert!(find_cycle(&graph).is_some());
    let graph = BTreeMap::from([(a.clone(), BTreeSet::from([b.clone()])), (b, BTreeSet::new())]);
    assert!(find_cycle(&graph).is_none());
}

#[test]
fn no_file_of_the_host_is_longer_than_a_reader_can_hold() {
    let long: Vec<String> = host_files()
        .values()
        .filter(|f| f.lines > MAX_LINES)
        .map(|f| format!("{} ({} lines)", f.module.join("::"), f.lines))
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {}", long.join(", "));
}
