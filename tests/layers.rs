//! The crate's layer map, enforced: every module of `src/` belongs to one layer
//! of the table in `src/lib.rs`'s crate doc, imports (`crate::…` paths in code,
//! test modules included) go only to its own layer or the ones below, and no
//! two modules import each other, directly or in a circle.
//!
//! The table is read from the crate doc itself, so the map a reader sees and
//! the one this test enforces are the same text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `module -> (layer number, layer name)`, from the rows `//! | N | name | `a`, `b` |`.
fn layer_table() -> BTreeMap<String, (u32, String)> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let mut table = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Ok(n) = cells[0].parse::<u32>() else {
            continue;
        };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`').trim_matches(['[', ']']);
            let module = module.trim_matches('`');
            assert!(!module.is_empty(), "an empty module name in layer {n}");
            let prev = table.insert(module.to_string(), (n, cells[1].to_string()));
            assert!(prev.is_none(), "{module} is listed in two layers");
        }
    }
    table
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// The code of a Rust file without comments and string literals (a path in
/// a doc comment or a message is not an import).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if b.get(i + 1) == Some(&b'#') || (b.get(i + 1) == Some(&b'"')) => {
                // A raw string r"…" or r#"…"#, unless `r` ends an identifier.
                let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
                let mut j = i + 1;
                let mut hashes = 0;
                while j < b.len() && b[j] == b'#' {
                    hashes += 1;
                    j += 1;
                }
                if ident_before || b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                j += 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // A char literal ('x', '\n', '\''), or a lifetime ('a): keep lifetimes.
                if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    out.push('\'');
                    i += 1;
                }
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// The top-level modules a piece of code names as `crate::NAME` or inside a
/// `crate::{NAME, NAME::…}` group.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `mycrate::`, not `crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split at depth-0 commas.
            let mut depth = 0;
            let mut name = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !name.is_empty() {
                            found.insert(std::mem::take(&mut name));
                        }
                        at_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && at_start {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                    } else if !name.is_empty() {
                        found.insert(std::mem::take(&mut name));
                        at_start = false;
                    }
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// `module -> modules it names`, over every file of `src/`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        let names = graph.entry(module.clone()).or_default();
        for name in crate_paths(&code) {
            // `crate::Error` and `crate::Result` are lib.rs's re-exports of error's.
            let name = match name.as_str() {
                "Error" | "Result" => "error".to_string(),
                _ => name,
            };
            if name != module {
                names.insert(name);
            }
        }
    }
    graph
}

#[test]
fn every_module_has_a_layer_and_every_layer_a_row() {
    let table = layer_table();
    let layers: BTreeSet<u32> = table.values().map(|(n, _)| *n).collect();
    assert_eq!(
        layers,
        (1..=8).collect(),
        "the crate doc lists layers 1 to 8, each with modules"
    );
    let graph = imports();
    let modules: BTreeSet<&String> = graph.keys().collect();
    let listed: BTreeSet<&String> = table.keys().collect();
    assert_eq!(
        modules, listed,
        "the modules of src/ and the layer table of src/lib.rs differ"
    );
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for m in &modules {
        assert!(
            lib.contains(&format!("pub mod {m};")),
            "{m} is not declared in lib.rs"
        );
    }
}

#[test]
fn modules_import_only_from_their_layer_or_below() {
    let table = layer_table();
    let mut wrong = Vec::new();
    for (module, names) in imports() {
        let (own, own_name) = &table[&module];
        for name in names {
            let Some((theirs, their_name)) = table.get(&name) else {
                wrong.push(format!("{module} names crate::{name}, which has no layer"));
                continue;
            };
            if theirs > own {
                wrong.push(format!(
                    "{module} (layer {own}, {own_name}) imports {name} (layer {theirs}, {their_name})"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layer map:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_imports_itself_through_others() {
    let graph = imports();
    // Depth-first search for a back edge; the cycle is printed when found.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        // A fresh path per root; `done` keeps the search linear.
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_scanner_reads_paths_the_way_rust_does() {
    let code = code_only(
        "use crate::{a, b::{c, d}, e::f};\n// crate::comment\nlet s = \"crate::string\";\n\
         let r = r#\"crate::raw\"#; x = crate::g::h(); mycrate::no; 'c'; fn f<'a>() {}",
    );
    let names: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(names, ["a", "b", "e", "g"]);
}
