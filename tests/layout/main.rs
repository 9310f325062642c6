//! The modules of the library (every `.rs` file under `src/` but `src/main.rs`) import each
//! other without a circle.
//!
//! Each file is parsed with `syn` and every path in it that names an item of the crate is
//! resolved to the longest prefix that is a module of the file list: `use` trees (groups,
//! renames, globs, `self`/`super`/`crate` and names of the module's own children), and every
//! other path of two segments or more in expressions, types, patterns, macro invocations and
//! attribute arguments that starts with `crate::`, `self::`, `super::` or a child module's
//! name. There is no name resolution beyond that: `use crate::x::y;` then `y::Z` counts as the
//! `use` alone. A parent's `mod child;` is not an edge (declaring is not importing); its
//! `pub use child::X` is. `pub(super)` and `pub(in …)` are not edges. Items under
//! `#[cfg(test)]` are skipped: test code is not part of the layout.
//!
//! The rule checked on that graph, two ways:
//! - **files:** no circle among the files, where a file's use of its own ancestors (a child
//!   using `super::Thing` of its directory's `mod.rs`) is not counted: a directory's files
//!   are one module split in parts, and its `mod.rs` their shared ground;
//! - **levels:** at every level of the tree, the siblings (each with everything under it)
//!   import each other without a circle: an edge `a::x → b::y` counts as `a → b` among the
//!   children of their common parent. This catches a circle through a `mod.rs`, such as
//!   `ledger (mod.rs) → pipeline → ledger::store`, that the first way does not count.
//!
//! `cargo test --test layout -- --nocapture` also prints the whole module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::Visit;

/// Who depends on whom: module → module it uses → the paths that make the edge.
#[derive(Debug, Default)]
struct Graph {
    modules: BTreeSet<String>,
    edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Graph {
    fn targets(&self, module: &str) -> impl Iterator<Item = &String> {
        self.edges.get(module).into_iter().flat_map(|to| to.keys())
    }

    fn evidence(&self, from: &str, to: &str) -> Vec<&String> {
        self.edges
            .get(from)
            .and_then(|tos| tos.get(to))
            .map(|paths| paths.iter().collect())
            .unwrap_or_default()
    }
}

/// Builds the graph from `(module path, source text)` pairs, e.g. `("crate::a::b", "use …")`.
fn build_graph<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Graph, String> {
    let sources: Vec<(&str, &str)> = sources.into_iter().collect();
    let mut graph = Graph {
        modules: sources.iter().map(|(m, _)| (*m).to_owned()).collect(),
        ..Graph::default()
    };
    for (module, text) in &sources {
        let file = syn::parse_file(text).map_err(|e| format!("{module}: does not parse: {e}"))?;
        let mut collector = Collector {
            modules: &graph.modules,
            file_module: module,
            scope: module.split("::").map(str::to_owned).collect(),
            found: Vec::new(),
        };
        collector.visit_file(&file);
        let found = collector.found;
        let from = graph.edges.entry((*module).to_owned()).or_default();
        for (to, path) in found {
            from.entry(to).or_default().insert(path);
        }
    }
    Ok(graph)
}

/// Walks one file and gathers `(target module, path as written)` for every path into the crate.
struct Collector<'a> {
    modules: &'a BTreeSet<String>,
    file_module: &'a str,
    /// The module the visitor is in: the file's, or an inline `mod x { … }` inside it.
    scope: Vec<String>,
    found: Vec<(String, String)>,
}

impl Collector<'_> {
    /// Records `segments` (as written) when they lead into another module of the crate.
    fn record(&mut self, segments: &[String], shown: String) {
        let Some(absolute) = self.absolute(segments) else {
            return;
        };
        let target = (1..=absolute.len())
            .rev()
            .map(|n| absolute[..n].join("::"))
            .find(|prefix| self.modules.contains(prefix));
        if let Some(target) = target {
            if target != self.file_module {
                self.found.push((target, shown));
            }
        }
    }

    /// `segments` from the crate root, or `None` for a path that does not start in the crate.
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base = match first.as_str() {
            "crate" => vec!["crate".to_owned()],
            "self" | "super" => self.scope.clone(),
            name => {
                let mut child = self.scope.clone();
                child.push(name.to_owned());
                if !self.modules.contains(&child.join("::")) {
                    return None;
                }
                return Some(self.scope.iter().chain(segments).cloned().collect());
            }
        };
        let mut rest = &segments[1..];
        if first == "super" {
            rest = segments;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            if base.is_empty() {
                return None;
            }
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident),
            syn::UseTree::Glob(_) => {
                let shown = format!("{}::*", prefix.join("::"));
                let segments = prefix.clone();
                self.record(&segments, shown);
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut segments = prefix.to_vec();
        // `use a::{self}` names `a` itself.
        if ident != "self" || segments.is_empty() {
            segments.push(ident.to_string());
        }
        let shown = segments.join("::");
        self.record(&segments, shown);
    }

    /// Paths inside tokens syn leaves unparsed (macro invocations, attribute arguments):
    /// every run `a::b::c` whose first segment starts a crate path.
    fn tokens(&mut self, tokens: &TokenStream) {
        let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
        let is_colon =
            |i: usize| matches!(trees.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':');
        let is_path_sep = |i: usize| {
            matches!(trees.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
                && is_colon(i + 1)
        };
        for (i, tree) in trees.iter().enumerate() {
            match tree {
                TokenTree::Group(group) => self.tokens(&group.stream()),
                TokenTree::Ident(ident) => {
                    let continues = i >= 2 && is_path_sep(i - 2);
                    if continues {
                        continue;
                    }
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    while is_path_sep(j) {
                        let Some(TokenTree::Ident(next)) = trees.get(j + 2) else {
                            break;
                        };
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() >= 2 {
                        let shown = segments.join("::");
                        self.record(&segments, shown);
                    }
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
        }
    }
}

/// `#[cfg(test)]`, exactly.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && matches!(&attr.meta, syn::Meta::List(list) if list.tokens.to_string() == "test")
    })
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::ExternCrate(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::ForeignMod(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::TraitAlias(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Union(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if is_test_only(attrs) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        // `mod child;` declares, it does not import.
        let Some((_, items)) = &item.content else {
            return;
        };
        for attr in &item.attrs {
            self.visit_attribute(attr);
        }
        self.scope.push(item.ident.to_string());
        for inner in items {
            self.visit_item(inner);
        }
        self.scope.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        for attr in &item.attrs {
            self.visit_attribute(attr);
        }
        if item.leading_colon.is_none() {
            self.use_tree(&mut Vec::new(), &item.tree);
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_impl_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast syn::TraitItem) {
        let attrs = match item {
            syn::TraitItem::Const(i) => &i.attrs,
            syn::TraitItem::Fn(i) => &i.attrs,
            syn::TraitItem::Type(i) => &i.attrs,
            syn::TraitItem::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_trait_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_trait_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        // One segment is a local name (`self` the receiver, a variable), never a module use.
        if path.leading_colon.is_none() && path.segments.len() >= 2 {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let shown = segments.join("::");
            self.record(&segments, shown);
        }
        syn::visit::visit_path(self, path);
    }

    // `pub(super)`, `pub(in crate::a)`: who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        syn::visit::visit_macro(self, mac);
        self.tokens(&mac.tokens);
    }

    fn visit_meta_list(&mut self, list: &'ast syn::MetaList) {
        syn::visit::visit_meta_list(self, list);
        self.tokens(&list.tokens);
    }
}

fn is_ancestor(ancestor: &str, module: &str) -> bool {
    ancestor == "crate"
        || module
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// The two graphs the rule is checked on (see the top of this file): the files without
/// edges to their own ancestors, and each edge lifted to the siblings under the common parent.
fn rule_graphs(graph: &Graph) -> (Graph, Graph) {
    let mut files = Graph {
        modules: graph.modules.clone(),
        ..Graph::default()
    };
    let mut levels = Graph::default();
    for (from, tos) in &graph.edges {
        for (to, paths) in tos {
            if is_ancestor(to, from) {
                continue;
            }
            files
                .edges
                .entry(from.clone())
                .or_default()
                .insert(to.clone(), paths.clone());
            if is_ancestor(from, to) {
                continue;
            }
            let a: Vec<&str> = from.split("::").collect();
            let b: Vec<&str> = to.split("::").collect();
            let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            let lifted_from = a[..=common].join("::");
            let lifted_to = b[..=common].join("::");
            levels.modules.insert(lifted_from.clone());
            levels.modules.insert(lifted_to.clone());
            let evidence = levels
                .edges
                .entry(lifted_from)
                .or_default()
                .entry(lifted_to)
                .or_default();
            for path in paths {
                evidence.insert(format!("{from} → {to}: {path}"));
            }
        }
    }
    (files, levels)
}

/// Strongly connected components (Tarjan), each sorted, in no particular order.
fn components(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.targets(v) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                component.sort();
                self.found.push(component);
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in &graph.modules {
        if !tarjan.index.contains_key(v.as_str()) {
            tarjan.visit(v);
        }
    }
    tarjan.found
}

/// The components of more than one module, sorted.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = components(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    found.sort();
    found
}

/// A shortest way round from `start` back to itself inside `component`, `start` first and last.
fn shortest_cycle(graph: &Graph, component: &[String], start: &String) -> Vec<String> {
    let inside: BTreeSet<&String> = component.iter().collect();
    let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.targets(v) {
            if w == start {
                let mut cycle = vec![v.clone()];
                let mut at = v;
                while let Some(prev) = came_from.get(at) {
                    cycle.push((*prev).clone());
                    at = prev;
                }
                cycle.reverse();
                cycle.push(start.clone());
                return cycle;
            }
            if inside.contains(w) && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    Vec::new()
}

/// The shortest circle through each module of a component, each begun at its smallest
/// module, without repeats, shortest first.
fn cycles_of(graph: &Graph, component: &[String]) -> Vec<Vec<String>> {
    let mut cycles: BTreeSet<(usize, Vec<String>)> = BTreeSet::new();
    for start in component {
        let mut cycle = shortest_cycle(graph, component, start);
        if cycle.pop().is_none() {
            continue;
        }
        let smallest = (0..cycle.len()).min_by_key(|&i| &cycle[i]).unwrap_or(0);
        cycle.rotate_left(smallest);
        if let Some(first) = cycle.first().cloned() {
            cycle.push(first);
        }
        cycles.insert((cycle.len(), cycle));
    }
    cycles.into_iter().map(|(_, cycle)| cycle).collect()
}

/// Each component as its circles (chains, every edge with its file and first path), then
/// every edge inside it with all its paths.
fn describe(graph: &Graph, circles: &[Vec<String>], file_of: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    for (n, component) in circles.iter().enumerate() {
        out.push_str(&format!(
            "component {} of {} ({} modules: {})\n  the shortest circle through each of its modules:\n",
            n + 1,
            circles.len(),
            component.len(),
            component.join(", "),
        ));
        for cycle in cycles_of(graph, component) {
            out.push_str(&format!("  {}\n", cycle.join(" → ")));
            for pair in cycle.windows(2) {
                let (from, to) = (&pair[0], &pair[1]);
                let paths = graph.evidence(from, to);
                let more = match paths.len() {
                    0 | 1 => String::new(),
                    n => format!(" (+{} more)", n - 1),
                };
                let first = paths.first().map_or("?", |p| p.as_str());
                out.push_str(&format!(
                    "    {from} → {to} ({}: {first}){more}\n",
                    file_of(from)
                ));
            }
        }
        out.push_str("  every edge inside it:\n");
        for from in component {
            for to in graph.targets(from).filter(|to| component.contains(to)) {
                let paths: Vec<&str> = graph
                    .evidence(from, to)
                    .into_iter()
                    .map(String::as_str)
                    .collect();
                out.push_str(&format!(
                    "    {from} → {to} ({}: {})\n",
                    file_of(from),
                    paths.join(", ")
                ));
            }
        }
    }
    out
}

/// "module → module, module" for every module, sorted.
fn render(graph: &Graph) -> String {
    let mut out = String::new();
    for module in &graph.modules {
        let targets: Vec<&str> = graph.targets(module).map(String::as_str).collect();
        let targets = if targets.is_empty() {
            "(nothing)".to_owned()
        } else {
            targets.join(", ")
        };
        out.push_str(&format!("{module} → {targets}\n"));
    }
    out
}

/// `src/lib.rs` → `crate`, `src/a.rs` and `src/a/mod.rs` → `crate::a`, `src/a/b.rs` → `crate::a::b`.
fn module_of(relative: &Path) -> Option<String> {
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match (parts.is_empty(), stem) {
        (true, "lib") => {}
        (_, "mod") => {}
        _ => parts.push(stem.to_owned()),
    }
    Some(
        std::iter::once("crate".to_owned())
            .chain(parts)
            .collect::<Vec<_>>()
            .join("::"),
    )
}

/// `(module, file as shown, text)` for every `.rs` file under `src/` but `src/main.rs`.
fn read_sources(root: &Path) -> Result<Vec<(String, String, String)>, String> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
        Ok(())
    }
    let src = root.join("src");
    let mut files = Vec::new();
    walk(&src, &mut files)?;
    files.sort();
    let mut sources = Vec::new();
    for path in files {
        let relative = path.strip_prefix(&src).map_err(|e| e.to_string())?;
        if relative == Path::new("main.rs") {
            continue; // the binary crate: its `llm_gateway::` paths are not the library's layout
        }
        let module =
            module_of(relative).ok_or_else(|| format!("{}: no module path", path.display()))?;
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let shown = Path::new("src").join(relative).display().to_string();
        sources.push((module, shown, text));
    }
    Ok(sources)
}

#[test]
fn src_modules_import_each_other_without_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = read_sources(root).unwrap_or_else(|e| panic!("reading src/: {e}"));
    assert!(
        sources.len() > 1,
        "found {} modules under src/",
        sources.len()
    );
    let graph = build_graph(
        sources
            .iter()
            .map(|(m, _, text)| (m.as_str(), text.as_str())),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let files: BTreeMap<&str, &str> = sources
        .iter()
        .map(|(m, f, _)| (m.as_str(), f.as_str()))
        .collect();
    let file_of = |module: &str| {
        files
            .get(module)
            .map_or_else(|| module.to_owned(), |f| (*f).to_owned())
    };

    eprintln!(
        "module graph of src/ ({} modules):\n{}",
        graph.modules.len(),
        render(&graph)
    );

    let (files_graph, levels) = rule_graphs(&graph);
    let mut report = String::new();
    for (name, checked) in [("files", &files_graph), ("levels", &levels)] {
        let found = circles(checked);
        if !found.is_empty() {
            report.push_str(&format!(
                "{} group(s) of modules of src/ that import each other in circles ({name}):\n{}",
                found.len(),
                describe(checked, &found, &file_of)
            ));
        }
    }
    assert!(report.is_empty(), "{report}");
}

/// The rule on a made-up crate: a child using its parent is fine; a circle through a parent's
/// `mod.rs` between two subtrees is found at their level.
#[test]
fn the_rule_allows_a_child_using_its_parent_but_not_a_circle_between_subtrees() {
    let sources = [
        ("crate", "pub mod a; pub mod b;"),
        (
            "crate::a",
            "pub mod x; pub struct A; pub fn f() { x::g(); crate::b::h(); }",
        ),
        ("crate::a::x", "pub fn g() -> super::A { super::A }"),
        ("crate::b", "pub fn h() {} pub fn k() { crate::a::x::g(); }"),
    ];
    let graph = build_graph(sources).unwrap_or_else(|e| panic!("{e}"));
    let (files, levels) = rule_graphs(&graph);
    assert!(
        circles(&graph)
            .iter()
            .any(|c| c.contains(&"crate::a::x".to_string())),
        "the raw graph has the parent/child circle"
    );
    assert!(circles(&files).is_empty(), "{:?}", circles(&files));
    let found = circles(&levels);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(&"crate::a".to_string()) && found[0].contains(&"crate::b".to_string())
    );
}

/// The checker on a made-up crate: every kind of path it must see, the ones it must not,
/// a crate without a circle, and two circles it must find.
#[test]
fn the_checker_sees_each_kind_of_path_and_finds_known_circles() {
    let lib =
        "pub mod a; pub mod b; pub mod c; pub mod d; pub mod e; pub mod error; pub struct Root;";
    let a = r#"
        mod inner;
        pub use inner::Exported;                    // a re-export of a child: an edge
        use crate::{b::{self as bee, Thing}, Root};
        pub(super) fn hidden() {}                   // visibility: no edge
        pub(in crate::e) fn narrow() {}             // visibility: no edge
        #[cfg(test)]
        mod tests { use crate::d::Helper; }         // test code: skipped
        #[cfg(test)]
        fn test_only() { crate::d::helper(); }      // test code: skipped
    "#;
    let inner_open = "pub struct Exported;";
    let inner_closing = "pub struct Exported; fn up() -> super::Local { loop {} }";
    let b = "pub fn f(x: &crate::c::Shape) -> usize { self::g(x) }";
    let c = r#"
        pub fn g() { let _ = format!("{}", super::e::NAME); }
        #[derive(Default)]
        #[serde(bound = "")]
        #[utoipa(body = crate::error::Body)]
        pub struct Shape { self_: std::sync::Arc<u8> }
    "#;
    let d = "use super::*; fn h(s: Self) { let a = self; a.x(); }";
    let e_open = "pub const NAME: &str = \"e\";";
    let e_closing = "pub const NAME: &str = \"e\"; fn back() { crate::a::hidden(); }";
    let error = "pub struct Body;";
    let sources = |inner: &'static str, e: &'static str| {
        vec![
            ("crate", lib),
            ("crate::a", a),
            ("crate::a::inner", inner),
            ("crate::b", b),
            ("crate::c", c),
            ("crate::d", d),
            ("crate::e", e),
            ("crate::error", error),
        ]
    };

    let open = build_graph(sources(inner_open, e_open)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        render(&open),
        "crate → (nothing)\n\
         crate::a → crate, crate::a::inner, crate::b\n\
         crate::a::inner → (nothing)\n\
         crate::b → crate::c\n\
         crate::c → crate::e, crate::error\n\
         crate::d → crate\n\
         crate::e → (nothing)\n\
         crate::error → (nothing)\n"
    );
    assert_eq!(
        open.evidence("crate::a", "crate::b"),
        ["crate::b", "crate::b::Thing"]
    );
    assert_eq!(
        open.evidence("crate::a", "crate::a::inner"),
        ["inner::Exported"]
    );
    assert_eq!(open.evidence("crate::c", "crate::e"), ["super::e::NAME"]);
    assert_eq!(open.evidence("crate::d", "crate"), ["super::*"]);
    assert!(circles(&open).is_empty(), "{:?}", circles(&open));

    let closed = build_graph(sources(inner_open, e_closing)).unwrap_or_else(|e| panic!("{e}"));
    let found = circles(&closed);
    let expected: Vec<String> = ["crate::a", "crate::b", "crate::c", "crate::e"]
        .map(String::from)
        .to_vec();
    assert_eq!(found, vec![expected], "graph:\n{}", render(&closed));
    let text = describe(&closed, &found, &|m: &str| format!("{m}.rs"));
    assert!(
        text.contains("crate::a → crate::b → crate::c → crate::e → crate::a"),
        "{text}"
    );
    assert!(
        text.contains("crate::e → crate::a (crate::e.rs: crate::a::hidden)"),
        "{text}"
    );

    // A child that uses its parent's items, and a parent that re-exports the child's.
    let parent_child =
        build_graph(sources(inner_closing, e_open)).unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<String> = ["crate::a", "crate::a::inner"].map(String::from).to_vec();
    assert_eq!(circles(&parent_child), vec![expected]);
}
