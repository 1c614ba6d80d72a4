//! The module layering, checked from the source: the floors ARCHITECTURE.md draws hold, so a
//! change that names a module above its own, closes a circle, lets a framework into the domain
//! or writes Discord markup below the fronts fails here, in `cargo test`, with the file and
//! line.
//!
//! Floors, from the ground up: `model`, `duration`, `suggest`, `check`, `secret` (the ground
//! floor: vocabulary and leaf tools, naming only each other); `access`, `apikey`, `resilience`,
//! `chart` (which names only the ground floor: the service feeds it); `config`; `audit`,
//! `metrics`, `logging`; `store`, `notion`, `retool`; `monitor`, `alerts`, `sync`, `actions`,
//! `doctor`; `service`;
//! the fronts `discord`, `http`, `cli`, `app`. Arrows point down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The fronts: nothing below them may name them.
const FRONTS: &[&str] = &["discord", "http", "cli", "app", "main"];
/// Modules the store sits below.
const ABOVE_STORE: &[&str] = &[
    "alerts", "monitor", "service", "sync", "actions", "doctor", "notion", "retool",
];
/// Modules the config sits below.
const ABOVE_CONFIG: &[&str] = &["monitor", "store", "alerts", "service", "audit", "metrics"];
/// Modules on the ground floor: they name none of the crate's other modules except each other.
const GROUND: &[&str] = &["model", "duration", "suggest", "check", "secret"];
/// Modules on the second floor that name only the ground floor: the chart renderer is fed its
/// figures by the service, and reads neither the store nor the config.
const ON_GROUND_ONLY: &[&str] = &["chart"];
/// Where Discord markup must not be written.
const NO_MARKUP: &[&str] = &[
    "service", "alerts", "store", "actions", "retool", "chart", "doctor",
];

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

/// The code of a file without its comments and without its unit tests (which may use
/// anything), line by line, each with its number.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = Vec::new();
    let mut in_block = false;
    for (index, line) in text.lines().enumerate() {
        let mut code = String::new();
        let mut rest = line;
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                let block = rest.find("/*");
                match (line_comment, block) {
                    (Some(l), Some(b)) if b < l => {
                        code.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (Some(l), _) => {
                        code.push_str(&rest[..l]);
                        break;
                    }
                    (None, Some(b)) => {
                        code.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (None, None) => {
                        code.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push((index + 1, code));
    }
    out
}

/// `src/store/alerts.rs` → `store`; `src/service/mod.rs` → `service`; `src/model.rs` → `model`.
fn top_module(src: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    let first = first.to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// Every `crate::module` a line names, and where.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        } else if let Some(list) = after.strip_prefix('{') {
            // `use crate::{a, b::c};`
            let inside = list.split('}').next().unwrap_or_default();
            for part in inside.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
        rest = after;
    }
    out
}

/// Discord markup: role and user mentions, timestamps, and the emoji the fronts use.
fn has_markup(line: &str) -> bool {
    const EMOJI: &[char] = &[
        '\u{2705}',
        '\u{274c}',
        '\u{23f0}',
        '\u{1F534}',
        '\u{1F7E1}',
        '\u{1F7E2}',
        '\u{26a0}',
        '\u{1F515}',
        '\u{1F514}',
        '\u{1F7E0}',
        '\u{26aa}',
        '\u{23f8}',
        '\u{26d4}',
        '\u{1F4A5}',
    ];
    line.contains("<@") || line.contains("<t:") || line.contains(EMOJI)
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}

#[test]
fn modules_keep_their_floors() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for path in &files {
        let module = top_module(&src, path);
        let shown = path.strip_prefix(&src).unwrap().display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        for (number, line) in code_lines(&text) {
            let at = format!("src/{shown}:{number}");
            for named in crate_paths(&line) {
                if named == module || named == "self" {
                    continue;
                }
                graph
                    .entry(module.clone())
                    .or_default()
                    .insert(named.clone());
                let front = FRONTS.contains(&named.as_str());
                if front && !FRONTS.contains(&module.as_str()) {
                    problems.push(format!("{at}: {module} names the front {named}"));
                }
                if module == "store" && ABOVE_STORE.contains(&named.as_str()) {
                    problems.push(format!("{at}: store names {named}, a module above it"));
                }
                if module == "config" && ABOVE_CONFIG.contains(&named.as_str()) {
                    problems.push(format!("{at}: config names {named}, a module above it"));
                }
                if ON_GROUND_ONLY.contains(&module.as_str()) && !GROUND.contains(&named.as_str()) {
                    problems.push(format!(
                        "{at}: {module} may name only the ground floor but names {named}"
                    ));
                }
                if GROUND.contains(&module.as_str()) && !GROUND.contains(&named.as_str()) {
                    problems.push(format!(
                        "{at}: {module} is on the ground floor but names {named}"
                    ));
                }
            }
            let frameworks = [
                ("serenity", "discord"),
                ("poise", "discord"),
                ("axum", "http"),
            ];
            for (framework, home) in frameworks {
                let uses = line.contains(&format!("{framework}::"))
                    || line.trim_start().starts_with(&format!("use {framework}"));
                if uses && module != home && module != "main" {
                    problems.push(format!("{at}: {framework} outside src/{home}/"));
                }
            }
            if NO_MARKUP.contains(&module.as_str()) && has_markup(&line) {
                problems.push(format!("{at}: Discord markup in {module}: {}", line.trim()));
            }
        }
    }
    for circle in circles(&graph) {
        problems.push(format!("a circle between modules: {}", circle.join(", ")));
    }
    assert!(
        problems.is_empty(),
        "{} layering problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_must_refuse() {
    // The parts of the check on lines that break each rule, so a check that stops seeing them
    // fails here.
    assert_eq!(
        crate_paths("use crate::{model::State, store::Store};"),
        ["model", "store"]
    );
    assert_eq!(crate_paths("let x = crate::alerts::human(d);"), ["alerts"]);
    assert!(has_markup(r#"format!("<@&{}> now holds", role)"#));
    assert!(has_markup("\"\u{2705} Resolved\""));
    assert!(!has_markup("\"resolved after 12m\""));
    let lines = code_lines("let a = 1; // crate::discord\n/* crate::http */ let b = 2;");
    assert_eq!(lines[0].1.trim(), "let a = 1;");
    assert_eq!(lines[1].1.trim(), "let b = 2;");
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circles(&graph), [vec!["a".to_string(), "b".to_string()]]);
}
