//! The layer table of `src/lib.rs`, enforced on every file under `src/`: a module imports only
//! modules on layers below its own (never a peer on its line, never one above), and the files
//! of one folder do not import each other in a circle. `main.rs` and `cli` may import
//! anything. Imports are `use` trees (braces included), inline `crate::`/`super::`/`self::`
//! paths anywhere in code, and paths through a file's own child modules; comments, doc
//! comments and string and character literals are not code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn the_source_follows_the_layer_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let violations = check(&src).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        violations.is_empty(),
        "{} violation(s) of the layer table in src/lib.rs:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn the_checker_catches_each_kind_of_import_and_ignores_comments_and_strings() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files: &[(&str, &str)] = &[
        (
            "lib.rs",
            "//! A crate.\n//!\n//! # Layers\n//!\n//! ```text\n//! cli\n//! top\n//! mid, peer\n\
             //! low\n//! ```\n\npub mod cli;\npub mod low;\npub mod mid;\npub mod peer;\n\
             pub mod top;\npub use low::Base;\n",
        ),
        (
            "main.rs",
            "use vouch::low;\nfn main() { vouch::cli::run(); }\n",
        ),
        (
            "cli.rs",
            "use crate::top::Top;\npub fn run() { crate::low::f(); }\n",
        ),
        (
            "top.rs",
            "use crate::{low::Base, cli::run};\n\
             // use crate::cli::run;\n\
             /* crate::cli::run() /* nested */ crate::cli */\n\
             /// Calls `crate::cli::run`.\n\
             pub fn go() -> &'static str { let _q = '\"'; \"crate::cli::run() super::cli\" }\n\
             pub fn raw() -> &'static str { r#\"use crate::cli::run; \"# }\n\
             pub struct Top(crate::mid::Mid);\n",
        ),
        ("peer.rs", "pub fn p() {\n    let _ = crate::mid::Mid;\n}\n"),
        (
            "low.rs",
            "pub struct Base;\npub fn f() {}\n\
             pub fn g() -> crate::top::Top {\n    todo!()\n}\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::Base as B;\n}\n",
        ),
        (
            "mid/mod.rs",
            "pub mod a;\npub mod b;\npub use b::B;\npub struct Mid;\nuse crate::Base;\n\
             pub fn m() {\n    a::g();\n}\n",
        ),
        (
            "mid/a.rs",
            "use super::{Mid, B};\nuse super::super::top::Top;\npub fn g() {}\n",
        ),
        (
            "mid/b.rs",
            "pub struct B;\npub fn h() {\n    super::a::g();\n}\n",
        ),
    ];
    for (name, text) in files {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let violations = check(&src).unwrap();
    let shown = violations.join("\n");
    let expected = [
        // A braced import of a module above.
        "src/top.rs:1: `crate::cli::run`: top imports cli, a layer above it",
        // An inline `crate::` path to a peer.
        "src/peer.rs:2: `crate::mid::Mid`: peer imports mid, a peer on its layer (mid, peer)",
        // An inline path in a signature, upward.
        "src/low.rs:3: `crate::top::Top`: low imports top, a layer above it",
        // `use super::super::`, upward.
        "src/mid/a.rs:2: `super::super::top::Top`: mid imports top, a layer above it",
        // A circle between the files of one folder, one side through mod.rs's re-export
        // (mod.rs itself, which dispatches to a and is used by it, is no part of it).
        "circle between the files of src/mid/: a -> b -> a",
        "src/mid/a.rs:1: `super::B`",
        "src/mid/b.rs:3: `super::a::g`",
    ];
    for line in expected {
        assert!(shown.contains(line), "missing {line:?} in:\n{shown}");
    }
    assert_eq!(
        violations.len(),
        5,
        "exactly the planted violations, nothing from comments, strings, main.rs, cli or the \
         crate root's re-export (crate::Base is low, below mid):\n{shown}"
    );

    // A top-level module missing from the table is a violation too.
    std::fs::write(src.join("stray.rs"), "").unwrap();
    let shown = check(&src).unwrap().join("\n");
    assert!(
        shown.contains("src/stray.rs: module stray is not in the layer table"),
        "{shown}"
    );
}

/// Every violation of the layer table in the crate whose source is `src`, one message each.
fn check(src: &Path) -> Result<Vec<String>, String> {
    let lib = std::fs::read_to_string(src.join("lib.rs"))
        .map_err(|e| format!("{}/lib.rs: {e}", src.display()))?;
    let layers = layer_table(&lib)?;
    let files = source_files(src)?;
    let modules: BTreeMap<&[String], usize> = files
        .iter()
        .enumerate()
        .map(|(index, file)| (file.module.as_slice(), index))
        .collect();
    let mut violations = Vec::new();
    let tops: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.module.first().map(String::as_str))
        .collect();
    for top in &tops {
        if !layers.contains_key(*top) {
            let file = files
                .iter()
                .find(|f| f.module.first().is_some_and(|m| m == top))
                .expect("a top-level module has a file");
            violations.push(format!(
                "{}: module {top} is not in the layer table",
                file.shown
            ));
        }
    }

    // Edges between the files of one top-level module: (from, to) -> the imports.
    let mut edges: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    for (index, file) in files.iter().enumerate() {
        let Some(top) = file.module.first() else {
            continue; // the crate root declares the modules and re-exports
        };
        for import in &file.imports {
            let Some(to) = import
                .resolved
                .as_ref()
                .and_then(|target| locate(&files, &modules, target))
            else {
                continue;
            };
            let Some(target_top) = files[to].module.first() else {
                continue;
            };
            let shown = format!(
                "{}:{}: `{}`",
                file.shown,
                import.line,
                import.path.join("::")
            );
            if target_top == top {
                if to != index {
                    edges.entry((index, to)).or_default().push(shown);
                }
            } else if top != "cli" {
                let (Some(&from_layer), Some(&to_layer)) =
                    (layers.get(top.as_str()), layers.get(target_top.as_str()))
                else {
                    continue; // reported above
                };
                if to_layer == from_layer {
                    let peers: Vec<&str> = layers
                        .iter()
                        .filter(|(_, &l)| l == from_layer)
                        .map(|(name, _)| *name)
                        .collect();
                    violations.push(format!(
                        "{shown}: {top} imports {target_top}, a peer on its layer ({})",
                        peers.join(", ")
                    ));
                } else if to_layer < from_layer {
                    violations.push(format!(
                        "{shown}: {top} imports {target_top}, a layer above it"
                    ));
                }
            }
        }
    }
    violations.extend(folder_circles(&files, &edges));
    Ok(violations)
}

/// The file that defines what the module path `target` names: the deepest file module it
/// lies in, and on through that file's own `use` declarations when the item is imported
/// there (`super::Thing` that a folder's `mod.rs` re-exports from one of its files).
fn locate(
    files: &[SourceFile],
    modules: &BTreeMap<&[String], usize>,
    target: &[String],
) -> Option<usize> {
    let mut target = target.to_vec();
    for _ in 0..16 {
        let (len, file) = (0..=target.len())
            .rev()
            .find_map(|len| Some((len, *modules.get(&target[..len])?)))?;
        let reexported = target.get(len).and_then(|item| {
            files[file]
                .imports
                .iter()
                .filter(|import| !import.inline_module && import.in_use)
                .find(|import| import.path.last() == Some(item))
                .and_then(|import| import.resolved.clone())
        });
        match reexported {
            Some(path) if path != target[..=len] => {
                target = path
                    .into_iter()
                    .chain(target[len + 1..].iter().cloned())
                    .collect();
            }
            _ => return Some(file),
        }
    }
    None
}

/// The layer table: the fenced `text` block under the `# Layers` heading of lib.rs's doc
/// comment, one layer a line, top first, peers separated by commas. Module -> its line.
fn layer_table(lib: &str) -> Result<BTreeMap<&str, usize>, String> {
    let docs: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(str::trim)
        .collect();
    let heading = docs
        .iter()
        .position(|line| *line == "# Layers")
        .ok_or("src/lib.rs has no `# Layers` section in its doc comment")?;
    let start = heading
        + docs[heading..]
            .iter()
            .position(|line| *line == "```text")
            .ok_or("the `# Layers` section of src/lib.rs has no ```text block")?
        + 1;
    let mut table = BTreeMap::new();
    for (layer, line) in docs[start..].iter().enumerate() {
        if *line == "```" {
            return if table.is_empty() {
                Err("the layer table in src/lib.rs is empty".to_string())
            } else {
                Ok(table)
            };
        }
        for name in line.split(',').map(str::trim) {
            if table.insert(name, layer).is_some() {
                return Err(format!("{name} is on two layers of src/lib.rs's table"));
            }
        }
    }
    Err("the layer table in src/lib.rs is not closed by ```".to_string())
}

/// One source file: where it is, the module it is, and what it imports.
struct SourceFile {
    /// `src/drift/run.rs`, as messages show it.
    shown: String,
    /// The directory holding it, relative to `src`.
    folder: PathBuf,
    /// The module path below the crate root (`["drift", "run"]`; empty for lib.rs).
    module: Vec<String>,
    imports: Vec<Import>,
}

struct Import {
    line: usize,
    /// As written (use trees expanded).
    path: Vec<String>,
    /// The absolute module path it names below the crate root, when it names one of the
    /// crate's own (not an external crate or a local item).
    resolved: Option<Vec<String>>,
    /// Part of a `use` declaration (not an inline path).
    in_use: bool,
    /// Inside an inline `mod … { }` block (`mod tests`).
    inline_module: bool,
}

/// Every `.rs` file under `src` except `main.rs` (the binary, which may use anything).
fn source_files(src: &Path) -> Result<Vec<SourceFile>, String> {
    let mut paths = Vec::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let relative = path
            .strip_prefix(src)
            .expect("found under src")
            .to_path_buf();
        if relative == Path::new("main.rs") {
            continue;
        }
        let mut module: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        if relative == Path::new("lib.rs") || module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let imports = imports(&tokens(&blank_non_code(&text)), &module);
        files.push(SourceFile {
            shown: format!("src/{}", relative.display()),
            folder: relative.parent().unwrap_or(Path::new("")).to_path_buf(),
            module,
            imports,
        });
    }
    Ok(files)
}

/// Circles between the files of one folder. In folder F every file below F stands for the
/// file or subfolder directly in F it belongs to, so a circle through a subfolder is found in
/// the folder above it. The folder's own module (`mod.rs`, or `formats/pickle.rs` for
/// `formats/pickle/`) declares, re-exports and dispatches to its files and is left out:
/// an item it re-exports counts as the file that defines it.
fn folder_circles(
    files: &[SourceFile],
    edges: &BTreeMap<(usize, usize), Vec<String>>,
) -> Vec<String> {
    let folders: BTreeSet<&Path> = files
        .iter()
        .filter(|f| f.module.len() > 1 || f.shown.ends_with("/mod.rs"))
        .map(|f| f.folder.as_path())
        .collect();
    let mut circles = Vec::new();
    for folder in folders {
        let depth = folder.iter().count();
        // The node of a file in this folder: its module path cut below the folder's depth.
        let node = |file: &SourceFile| -> Option<Vec<String>> {
            let inside = file.module.len() >= depth
                && file.module[..depth]
                    .iter()
                    .map(String::as_str)
                    .eq(folder.iter().map(|p| p.to_str().unwrap_or_default()));
            (inside && file.module.len() > depth).then(|| file.module[..depth + 1].to_vec())
        };
        let mut graph: BTreeMap<Vec<String>, BTreeMap<Vec<String>, Vec<String>>> = BTreeMap::new();
        for (&(from, to), shown) in edges {
            if let (Some(a), Some(b)) = (node(&files[from]), node(&files[to])) {
                if a != b {
                    graph
                        .entry(a)
                        .or_default()
                        .entry(b)
                        .or_default()
                        .extend(shown.iter().cloned());
                }
            }
        }
        for component in strongly_connected(&graph) {
            let name = |node: &Vec<String>| node[depth].clone();
            let cycle = cycle_through(&graph, &component);
            let mut message = format!(
                "circle between the files of src/{}/: {}",
                folder.display(),
                cycle.iter().map(name).collect::<Vec<_>>().join(" -> ")
            );
            if component.len() + 1 > cycle.len() {
                let all: Vec<String> = component.iter().map(name).collect();
                message.push_str(&format!(" (one of the circles joining {})", all.join(", ")));
            }
            for pair in cycle.windows(2) {
                for shown in &graph[&pair[0]][&pair[1]] {
                    message.push_str("\n    ");
                    message.push_str(shown);
                }
            }
            circles.push(message);
        }
    }
    circles
}

type Graph = BTreeMap<Vec<String>, BTreeMap<Vec<String>, Vec<String>>>;

/// The strongly connected components of more than one node (Tarjan's algorithm).
fn strongly_connected(graph: &Graph) -> Vec<BTreeSet<Vec<String>>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<BTreeSet<Vec<String>>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Vec<String>) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        for target in state.graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = BTreeSet::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.insert(member.clone());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.found
}

/// A shortest cycle through the first node of `component`, first node repeated at the end.
fn cycle_through(graph: &Graph, component: &BTreeSet<Vec<String>>) -> Vec<Vec<String>> {
    let start = component.first().expect("a component has nodes");
    let mut came_from: BTreeMap<&Vec<String>, &Vec<String>> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for target in graph[node].keys().filter(|t| component.contains(*t)) {
            if target == start {
                let mut cycle = vec![start.clone()];
                let mut at = node;
                while at != start {
                    cycle.push(at.clone());
                    at = came_from[at];
                }
                cycle.push(start.clone());
                cycle.reverse();
                return cycle;
            }
            if !came_from.contains_key(target) {
                came_from.insert(target, node);
                queue.push_back(target);
            }
        }
    }
    unreachable!("a strongly connected component has a cycle through each node")
}

/// The source with comments (line, block, doc) and string, raw string, byte string and
/// character literals replaced by spaces, line breaks kept so line numbers stay.
fn blank_non_code(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, chars: &[char]| {
        out.extend(chars.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }))
    };
    let at = |i: usize| chars.get(i).copied();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let end = if c == '/' && at(i + 1) == Some('/') {
            (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len())
        } else if c == '/' && at(i + 1) == Some('*') {
            let (mut j, mut depth) = (i + 2, 1);
            while j < chars.len() && depth > 0 {
                if chars[j] == '/' && at(j + 1) == Some('*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && at(j + 1) == Some('/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            j
        } else if !after_ident && (c == 'r' || (c == 'b' && at(i + 1) == Some('r'))) && {
            let mut j = i + if c == 'b' { 2 } else { 1 };
            while at(j) == Some('#') {
                j += 1;
            }
            at(j) == Some('"')
        } {
            let open = i + if c == 'b' { 2 } else { 1 };
            let hashes = (open..).take_while(|&j| at(j) == Some('#')).count();
            let mut j = open + hashes + 1;
            while j < chars.len()
                && !(chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == Some('#')))
            {
                j += 1;
            }
            (j + 1 + hashes).min(chars.len())
        } else if c == '"' || (!after_ident && c == 'b' && at(i + 1) == Some('"')) {
            let mut j = i + if c == 'b' { 2 } else { 1 };
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            (j + 1).min(chars.len())
        } else if c == '\'' && at(i + 1) == Some('\\') {
            ((i + 3)..chars.len())
                .find(|&j| chars[j] == '\'')
                .map_or(chars.len(), |j| j + 1)
        } else if c == '\'' && at(i + 2) == Some('\'') {
            i + 3
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        blank(&mut out, &chars[i..end]);
        i = end;
    }
    out
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Identifiers, `::` and single punctuation characters, each with its line.
fn tokens(code: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Token::Ident(chars[start..i].iter().collect()), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            out.push((Token::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// The imports of a file whose module is `module`: its `use` trees, expanded, and inline
/// paths that start at `crate`, `super`, `self` or one of its own child modules.
fn imports(tokens: &[(Token, usize)], module: &[String]) -> Vec<Import> {
    let ident = |i: usize| match tokens.get(i) {
        Some((Token::Ident(name), _)) => Some(name.as_str()),
        _ => None,
    };
    let punct = |i: usize, c: char| matches!(tokens.get(i), Some((Token::Punct(p), _)) if *p == c);
    let path_sep = |i: usize| matches!(tokens.get(i), Some((Token::PathSep, _)));
    // Child modules backed by files: `mod name;`.
    let children: BTreeSet<&str> = (0..tokens.len())
        .filter(|&i| ident(i) == Some("mod") && punct(i + 2, ';'))
        .filter_map(|i| ident(i + 1))
        .collect();

    let mut found = Vec::new();
    // Inline `mod name { … }` blocks: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(name, _)| name.clone()))
            .collect();
        if ident(i) == Some("mod") && punct(i + 2, '{') {
            depth += 1;
            inline.push((ident(i + 1).unwrap_or_default().to_string(), depth));
            i += 3;
            continue;
        }
        if punct(i, '{') {
            depth += 1;
        } else if punct(i, '}') {
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            depth = depth.saturating_sub(1);
        } else if ident(i) == Some("use") {
            let mut trees = Vec::new();
            i += 1;
            use_tree(tokens, &mut i, Vec::new(), &mut trees);
            while i < tokens.len() && !punct(i, ';') {
                i += 1;
            }
            for (mut path, line) in trees {
                if path.len() > 1 && path.last().is_some_and(|s| s == "self") {
                    path.pop();
                }
                let resolved = resolve(&path, &here, &children);
                found.push(Import {
                    line,
                    path,
                    resolved,
                    in_use: true,
                    inline_module: !inline.is_empty(),
                });
            }
        } else if let Some(first) = ident(i) {
            let starts_path =
                matches!(first, "crate" | "super" | "self") || children.contains(first);
            if starts_path && path_sep(i + 1) && !(i > 0 && path_sep(i - 1)) {
                let line = tokens[i].1;
                let mut path = vec![first.to_string()];
                i += 1;
                while path_sep(i) {
                    match ident(i + 1) {
                        Some(next) => path.push(next.to_string()),
                        None => break,
                    }
                    i += 2;
                }
                let resolved = resolve(&path, &here, &children);
                found.push(Import {
                    line,
                    path,
                    resolved,
                    in_use: false,
                    inline_module: !inline.is_empty(),
                });
                continue;
            }
        }
        i += 1;
    }
    found
}

/// Expands the use tree starting at `tokens[*i]` under `prefix` into its paths, each with
/// the line of its last segment.
fn use_tree(
    tokens: &[(Token, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let mut path = prefix;
    let mut line = tokens.get(*i).map_or(0, |t| t.1);
    while let Some((token, at)) = tokens.get(*i) {
        match token {
            Token::PathSep => *i += 1,
            Token::Ident(name) => {
                path.push(name.clone());
                line = *at;
                *i += 1;
                if !matches!(tokens.get(*i), Some((Token::PathSep, _))) {
                    if matches!(tokens.get(*i), Some((Token::Ident(a), _)) if a == "as") {
                        *i += 2;
                    }
                    out.push((path, line));
                    return;
                }
            }
            Token::Punct('{') => {
                *i += 1;
                while let Some((token, _)) = tokens.get(*i) {
                    match token {
                        Token::Punct('}') => {
                            *i += 1;
                            break;
                        }
                        Token::Punct(',') => *i += 1,
                        _ => {
                            let before = *i;
                            use_tree(tokens, i, path.clone(), out);
                            if *i == before {
                                *i += 1;
                            }
                        }
                    }
                }
                return;
            }
            Token::Punct('*') => {
                *i += 1;
                out.push((path, line));
                return;
            }
            Token::Punct(_) => return,
        }
    }
}

/// The absolute module path (below the crate root) that `path`, written in module `here`,
/// names; `None` for an external crate or a local item.
fn resolve(path: &[String], here: &[String], children: &BTreeSet<&str>) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "super" | "self" => here.to_vec(),
        child if children.contains(child) => here.to_vec(),
        _ => return None,
    };
    let mut rest = path.iter().skip_while(|s| *s == "crate").peekable();
    while let Some(segment) = rest.next_if(|s| *s == "super" || *s == "self") {
        if segment == "super" {
            base.pop()?;
        }
    }
    base.extend(rest.filter(|s| *s != "self").cloned());
    Some(base)
}
