//! The layering rule, checked on the sources: a top-level module refers only to modules of a
//! lower layer, and no two files refer to each other, directly or round a longer loop. A
//! file's references to its own ancestors (`super::Result` from a child) are not edges: a
//! child lives inside its parent, and that is where Rust lets it see private items.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module and its layer; a module may use only modules of a lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("engine", 0),
    ("learn", 0),
    ("remote", 0),
    ("vectors", 0),
    ("formats", 1),
    ("rules", 1),
    ("tasks", 1),
    ("store", 2),
    ("quality", 3),
    ("export", 3),
    ("jobs", 3),
    ("app", 4),
    ("web", 5),
];

type ModPath = Vec<String>;

/// The module a source file is, from its path under `src/`: `a/b.rs` and `a/b/mod.rs` are
/// `a::b`.
fn module_of(rel: &Path) -> ModPath {
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The text with `//` comments removed, so a path named in prose is not a reference.
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path after `crate::` or `super::` in `code`, `use` groups expanded, as written
/// relative to `me`.
fn references(me: &[String], code: &str) -> Vec<ModPath> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let base = if !boundary {
            None
        } else if rest.starts_with("crate::") {
            Some(Vec::new())
        } else if rest.starts_with("super::") {
            // `expand` reads the `super` itself.
            Some(me.to_vec())
        } else {
            None
        };
        match base {
            Some(base) => {
                let start = if rest.starts_with("crate::") { 7 } else { 0 };
                let used = expand(base, &rest[start..], &mut out);
                i += start + used.max(1);
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// Reads one path (or `{group}`) from `text` onto `prefix`, pushing every full path; returns
/// the bytes read.
fn expand(mut prefix: ModPath, text: &str, out: &mut Vec<ModPath>) -> usize {
    let mut i = 0;
    loop {
        let rest = &text[i..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = 0;
            let mut item_start = 0;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let item = group[item_start..k].trim();
                        if item == "self" {
                            out.push(prefix.clone());
                        } else if !item.is_empty() && item != "*" {
                            expand(prefix.clone(), item, out);
                        }
                        item_start = k + 1;
                        if c == '}' {
                            end = k + 1;
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            return i + 1 + end;
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            out.push(prefix);
            return i;
        }
        i += ident.len();
        match ident.as_str() {
            "super" => {
                prefix.pop();
            }
            "self" => {}
            _ => prefix.push(ident),
        }
        if text[i..].starts_with("::") {
            i += 2;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

/// The file-level graph: module -> modules it refers to (the longest known prefix of each
/// path), leaving out itself and its ancestors.
fn graph(sources: &BTreeMap<ModPath, String>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut edges = BTreeMap::new();
    for (me, source) in sources {
        let mut to = BTreeSet::new();
        for path in references(me, &code_of(source)) {
            let target = (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|p| sources.contains_key(p));
            if let Some(t) = target {
                if !me.starts_with(&t) {
                    to.insert(t);
                }
            }
        }
        edges.insert(me.clone(), to);
    }
    edges
}

/// Every reference from a top-level module to one not below it, as "from -> to".
fn upward(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<String> {
    let layer = |m: &ModPath| {
        let top = m.first()?;
        LAYERS.iter().find(|(n, _)| n == top).map(|&(_, l)| l)
    };
    let mut bad = Vec::new();
    for (from, tos) in edges {
        for to in tos {
            if from.first() == to.first() || from.is_empty() {
                continue;
            }
            match (layer(from), layer(to)) {
                (Some(a), Some(b)) if b < a => {}
                _ => bad.push(format!("{} -> {}", from.join("::"), to.join("::"))),
            }
        }
    }
    bad
}

/// One loop in the graph, if there is one, as the modules round it.
fn a_cycle(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    // 0: unvisited, 1: on the current path, 2: done.
    fn visit(
        m: &ModPath,
        edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        state: &mut BTreeMap<ModPath, u8>,
        path: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        state.insert(m.clone(), 1);
        path.push(m.clone());
        for next in edges.get(m).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == next).unwrap_or(0);
                    return Some(path[from..].to_vec());
                }
                0 => {
                    if let Some(c) = visit(next, edges, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if state.get(m).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(m, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's sources (the command line, `main.rs` and `cli/`, is the binary on top).
    fn library() -> BTreeMap<ModPath, String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = BTreeMap::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable") {
                let path = entry.expect("a directory entry").path();
                let rel = path.strip_prefix(&src).expect("under src").to_path_buf();
                // This file names paths in its own test cases.
                if rel.starts_with("cli")
                    || rel == Path::new("main.rs")
                    || rel == Path::new("layers.rs")
                {
                    continue;
                }
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("a source file");
                    out.insert(module_of(&rel), text);
                }
            }
        }
        out
    }

    fn fake(files: &[(&str, &str)]) -> BTreeMap<ModPath, String> {
        files
            .iter()
            .map(|(m, s)| (m.split("::").map(String::from).collect(), s.to_string()))
            .collect()
    }

    #[test]
    fn the_library_is_layered_and_has_no_file_cycles() {
        let sources = library();
        assert!(sources.len() > 50, "only {} modules found", sources.len());
        for (name, _) in LAYERS {
            assert!(
                sources.contains_key(&vec![name.to_string()]),
                "{name} is in LAYERS but not in src"
            );
        }
        for top in sources.keys().filter_map(|m| m.first()) {
            assert!(
                LAYERS.iter().any(|(n, _)| n == top),
                "src/{top} has no layer in LAYERS"
            );
        }
        let edges = graph(&sources);
        assert_eq!(
            upward(&edges),
            Vec::<String>::new(),
            "references not downwards"
        );
        let cycle = a_cycle(&edges).map(|c| {
            c.iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(" -> ")
        });
        assert_eq!(cycle, None, "files that import each other");
    }

    #[test]
    fn groups_super_and_comments_are_read() {
        let me: ModPath = vec!["store".into(), "items".into()];
        let refs = references(
            &me,
            "use super::{annotations::{self, Annotation}, review};\nlet x = crate::domain::Span { };",
        );
        let names: Vec<String> = refs.iter().map(|r| r.join("::")).collect();
        assert_eq!(
            names,
            [
                "store::annotations",
                "store::annotations::Annotation",
                "store::review",
                "domain::Span"
            ]
        );
        assert!(references(&me, &code_of("// see crate::web::api")).is_empty());
    }

    #[test]
    fn a_loop_between_two_files_and_an_upward_use_are_caught() {
        let sources = fake(&[
            ("store", ""),
            ("store::a", "use super::b::X;"),
            ("store::b", "use crate::store::a::Y;"),
            ("domain", "use crate::store::a::Y;"),
        ]);
        let edges = graph(&sources);
        assert_eq!(a_cycle(&edges).map(|c| c.len()), Some(2), "{edges:?}");
        assert_eq!(upward(&edges), ["domain -> store::a"]);
        // A child using its parent is no edge.
        let nested = fake(&[
            ("store", "use crate::store::a::f;"),
            ("store::a", "use super::Result;"),
        ]);
        assert_eq!(a_cycle(&graph(&nested)), None);
    }
}
