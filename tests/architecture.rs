//! Dependency direction, checked on the source text (see `src/lib.rs`):
//! `server` -> `proto`, `hub`, `store`; `proto` uses `hub`'s vocabulary;
//! `hub` and `proto` are sans-I/O (no mio, no SQL); `hub`, `proto` and
//! `store` never import `server`.
//!
//! Every `.rs` file under `src/hub`, `src/proto` and `src/store` is read,
//! its comments and string/char literals are blanked out, and every path in
//! what is left (`use` trees expanded, `super::`/`self::` resolved against
//! the file's module and its inline `mod x { ... }` blocks) is checked.
//! Test code counts too: a `#[cfg(test)]` import is still an import.
//!
//! `hub` names no `store`: the hub defines its persistence port
//! (`hub::port`) and the store implements it. Two edges are pinned file by
//! file below (`KNOWN_*`): each test fails if its set of files grows, and
//! also if it shrinks, so the list stays exact.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Crates that do I/O: never named by the sans-I/O parts.
const IO_CRATES: &[&str] = &[
    "mio",
    "rusqlite",
    "socket2",
    "signal_hook",
    "signal_hook_mio",
];

/// Known exception, test code only: the hub's tests render events with the
/// line protocol to compare them as text.
const KNOWN_HUB_TO_PROTO: &[&str] = &["src/hub/tests.rs"];

/// By design (`src/lib.rs`: "`proto` uses `hub`'s vocabulary types"): the
/// codecs parse into `Command`s and render `Event`s, and the HTTP router
/// checks room names. These are exactly the proto files that name
/// `crate::hub` today.
const KNOWN_PROTO_TO_HUB: &[&str] = &[
    "src/proto/http/route.rs",
    "src/proto/json.rs",
    "src/proto/json/tests.rs",
    "src/proto/line.rs",
    "src/proto/line/tests.rs",
];

/// What of the hub `proto` may name: its vocabulary, never its machinery
/// (`Hub`, sessions, members, the nick generator, rate limits).
const HUB_VOCABULARY: &[&str] = &[
    "command",
    "error",
    "event",
    "image",
    "names",
    "DEFAULT_HISTORY_PAGE",
    "MAX_HISTORY_PAGE",
];

#[test]
fn hub_names_no_io_crate_no_server_and_no_store() {
    let files = scan("hub");
    let mut bad = Vec::new();
    for f in &files {
        bad.extend(f.uses_of_crates(IO_CRATES));
        bad.extend(f.uses_of_module("server"));
        bad.extend(f.uses_of_module("store"));
    }
    assert!(
        bad.is_empty(),
        "hub must not import these:\n{}",
        bad.join("\n")
    );
}

/// What of the hub `store` may name: the vocabulary (a search's `Query`
/// among it) and the port, never the machinery.
const STORE_MAY_NAME: &[&str] = &["command", "event", "image", "names", "port", "search"];

#[test]
fn store_names_only_the_hubs_vocabulary_and_port() {
    assert_names_of_hub_only("store", STORE_MAY_NAME);
}

/// Fails unless every path the files under `src/<dir>` name in the hub
/// starts with one of `allowed` (`crate::hub::<allowed>::...`).
fn assert_names_of_hub_only(dir: &str, allowed: &[&str]) {
    let mut bad = Vec::new();
    for f in &scan(dir) {
        for u in &f.uses {
            if u.path.first().map(String::as_str) == Some("hub") {
                let item = u.path.get(1).map(String::as_str).unwrap_or("");
                if !allowed.contains(&item) {
                    bad.push(format!(
                        "{}:{}: crate::{}",
                        f.rel,
                        u.line,
                        u.path.join("::")
                    ));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{dir} may name only hub::{{{}}}:\n{}",
        allowed.join(", "),
        bad.join("\n")
    );
}

#[test]
fn hub_files_naming_proto_are_exactly_the_known_ones() {
    assert_pinned(&scan("hub"), "proto", KNOWN_HUB_TO_PROTO, "hub -> proto");
}

#[test]
fn proto_names_no_io_crate_no_server_and_no_store() {
    let files = scan("proto");
    let mut bad = Vec::new();
    for f in &files {
        bad.extend(f.uses_of_crates(IO_CRATES));
        bad.extend(f.uses_of_module("server"));
        bad.extend(f.uses_of_module("store"));
    }
    assert!(
        bad.is_empty(),
        "proto must not import these:\n{}",
        bad.join("\n")
    );
}

#[test]
fn proto_files_naming_hub_are_exactly_the_known_ones() {
    assert_pinned(&scan("proto"), "hub", KNOWN_PROTO_TO_HUB, "proto -> hub");
}

#[test]
fn proto_names_only_the_hubs_vocabulary() {
    assert_names_of_hub_only("proto", HUB_VOCABULARY);
}

#[test]
fn store_names_no_server_and_no_event_loop() {
    let files = scan("store");
    let io: Vec<&str> = IO_CRATES
        .iter()
        .copied()
        .filter(|c| *c != "rusqlite")
        .collect();
    let mut bad = Vec::new();
    for f in &files {
        bad.extend(f.uses_of_crates(&io));
        bad.extend(f.uses_of_module("server"));
    }
    assert!(
        bad.is_empty(),
        "store must not import these:\n{}",
        bad.join("\n")
    );
}

/// The scanner itself: what it must see and what it must not.
#[test]
fn scanner_sees_paths_and_ignores_comments_and_strings() {
    let src = r##"
        //! mio is named in a doc comment, crate::server too.
        use crate::{hub::names::Nick, store::{self, Store}};
        use super::super::server::Conn;
        /* crate::server in a /* nested */ block comment */
        fn f<'a>(x: &'a str) -> char {
            let _ = "crate::server in a string";
            let _ = r#"mio::Token in a "raw" string"#;
            let _ = <T as mio::event::Source>::register;
            let _ = ::rusqlite::Connection::open;
            let _ = '"'; let _ = '\''; let _ = b'x';
            crate::store::MemStore::new();
            'x'
        }
        mod inner {
            use super::super::proto::line;
        }
        use self::deep::thing;
    "##;
    let f = SourceFile::parse("src/hub/sample.rs", src);
    let got: Vec<String> = f
        .uses
        .iter()
        .map(|u| format!("{}:{}", u.line, u.path.join("::")))
        .collect();
    assert_eq!(
        got,
        [
            "3:hub::names::Nick",
            "3:store",
            "3:store::Store",
            "4:server::Conn",
            "9:mio::event::Source",
            "10:rusqlite::Connection::open",
            "12:store::MemStore::new",
            "16:hub::proto::line",
            "18:hub::sample::deep::thing",
        ]
    );
    assert_eq!(f.uses_of_crates(&["mio"]).len(), 1);
    assert_eq!(f.uses_of_crates(&["rusqlite"]).len(), 1);
    assert_eq!(f.uses_of_module("server").len(), 1);
    assert_eq!(f.uses_of_module("store").len(), 3);
    // `super::super` from inside `mod inner` of src/hub/sample.rs is `crate::hub`.
    assert!(f.uses_of_module("proto").is_empty());
}

// ---------------------------------------------------------------------------
// The scanner
// ---------------------------------------------------------------------------

/// A path found in a file. Relative paths are resolved to the crate root
/// when they start with `crate`, `super` or `self` (so `path[0]` is then a
/// top-level module such as `hub`); otherwise they are kept as written, and
/// `path[0]` is an extern crate, a prelude name or something in scope.
struct Use {
    line: usize,
    path: Vec<String>,
    resolved: bool,
}

struct SourceFile {
    rel: String,
    uses: Vec<Use>,
}

impl SourceFile {
    fn parse(rel: &str, src: &str) -> SourceFile {
        let module = module_of(rel);
        let tokens = tokenize(&blank_comments_and_literals(src));
        SourceFile {
            rel: rel.to_string(),
            uses: collect_paths(&tokens, &module),
        }
    }

    /// Uses of any of these extern crates: `mio::x`, `use mio;`, `::mio::x`.
    fn uses_of_crates(&self, crates: &[&str]) -> Vec<String> {
        self.uses
            .iter()
            .filter(|u| !u.resolved && crates.contains(&u.path[0].as_str()))
            .map(|u| format!("{}:{}: {}", self.rel, u.line, u.path.join("::")))
            .collect()
    }

    /// Uses of `crate::MODULE` (however spelled: `super::`, `use crate::{...}`).
    fn uses_of_module(&self, module: &str) -> Vec<String> {
        self.uses
            .iter()
            .filter(|u| u.resolved && u.path[0] == module)
            .map(|u| format!("{}:{}: crate::{}", self.rel, u.line, u.path.join("::")))
            .collect()
    }
}

/// Every `.rs` file under `src/DIR`, parsed.
fn scan(dir: &str) -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src").join(dir), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no sources under src/{dir}");
    files
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(root).expect("under the manifest dir");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let src = std::fs::read_to_string(p).expect("read source");
            SourceFile::parse(&rel, &src)
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files naming `crate::TARGET` must be exactly `known`.
fn assert_pinned(files: &[SourceFile], target: &str, known: &[&str], edge: &str) {
    let found: BTreeSet<&str> = files
        .iter()
        .filter(|f| !f.uses_of_module(target).is_empty())
        .map(|f| f.rel.as_str())
        .collect();
    let known: BTreeSet<&str> = known.iter().copied().collect();
    let new: Vec<String> = files
        .iter()
        .filter(|f| !known.contains(f.rel.as_str()))
        .flat_map(|f| f.uses_of_module(target))
        .collect();
    let gone: Vec<&&str> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "{edge} is a known exception for {known:?} only; new uses:\n{}",
        new.join("\n")
    );
    assert!(
        gone.is_empty(),
        "{edge}: {gone:?} no longer name crate::{target}; take them off the list"
    );
}

/// The module a file is: `src/hub/mod.rs` -> `[hub]`, `src/proto/json/tests.rs`
/// -> `[proto, json, tests]`.
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The source with comments and the insides of string and char literals
/// replaced by spaces (newlines kept, so line numbers still hold).
fn blank_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
                out.push(' ');
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !prev_ident
            && (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r')))
            && raw_string_hashes(&c, i).is_some()
        {
            // r"..", r#".."#, br#".."#
            let start = if c[i] == 'b' { i + 2 } else { i + 1 };
            let hashes = raw_string_hashes(&c, i).unwrap_or(0);
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            out.push_str(&" ".repeat(start + hashes + 1 - i));
            i = start + hashes + 1;
            while i < c.len() && !c[i..].starts_with(&close) {
                blank(&mut out, c[i]);
                i += 1;
            }
            out.push_str(&" ".repeat(close.len()));
            i += close.len();
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' && (c.get(i + 1) == Some(&'\\') || c.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime has no closing quote.
            out.push(' ');
            i += 1;
            if c.get(i) == Some(&'\\') {
                // The backslash and the escaped char, which may be a quote.
                out.push_str("  ");
                i += 2;
            }
            while i < c.len() && c[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// For a raw string starting at `i` (`r` or `br`), its number of `#`s.
fn raw_string_hashes(c: &[char], i: usize) -> Option<usize> {
    let mut j = if c[i] == 'b' { i + 2 } else { i + 1 };
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some(hashes)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other(char),
}

fn tokenize(code: &str) -> Vec<(usize, Tok)> {
    let c: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            toks.push((line, Tok::Ident(c[start..i].iter().collect())));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            toks.push((line, Tok::PathSep));
            i += 2;
        } else {
            let t = match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '*' => Tok::Ident("*".into()),
                _ => Tok::Other(ch),
            };
            toks.push((line, t));
            i += 1;
        }
    }
    toks
}

/// Every path in the token stream: `a::b::c`, `use` trees expanded, with
/// `crate`/`super`/`self` resolved against the enclosing module.
fn collect_paths(toks: &[(usize, Tok)], file_module: &[String]) -> Vec<Use> {
    let ident = |i: usize| match toks.get(i) {
        Some((_, Tok::Ident(s))) => Some(s.as_str()),
        _ => None,
    };
    let mut uses = Vec::new();
    // Inline modules: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let (line, tok) = &toks[i];
        let back = |n: usize| i.checked_sub(n).and_then(ident);
        let after_use = back(1) == Some("use");
        let starts_path = match tok {
            // `::x` at the start of a path, not `<T as X>::x` or `f::<T>::x`.
            Tok::PathSep => ident(i + 1).is_some() && (i == 0 || toks[i - 1].1 != Tok::Other('>')),
            Tok::Ident(s) => {
                toks.get(i + 1).map(|t| &t.1) == Some(&Tok::PathSep)
                    || (after_use && s != "*")
                    || (back(1) == Some("crate") && back(2) == Some("extern"))
            }
            Tok::Open => after_use,
            _ => false,
        };
        if starts_path {
            let absolute = *tok == Tok::PathSep;
            let from = if absolute { i + 1 } else { i };
            let (trees, next) = parse_tree(toks, from);
            let mut module: Vec<String> = file_module.to_vec();
            module.extend(inline.iter().map(|(n, _)| n.clone()));
            for path in trees {
                uses.push(resolve(*line, path, &module, absolute));
            }
            i = next;
            continue;
        }
        match tok {
            Tok::Ident(s) if s == "mod" => {
                if let (Some(name), Some((_, Tok::Open))) = (ident(i + 1), toks.get(i + 2)) {
                    depth += 1;
                    inline.push((name.to_string(), depth));
                    i += 3;
                    continue;
                }
            }
            Tok::Open => depth += 1,
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    uses
}

/// A path or `use` tree starting at `i`: its expanded paths and the index
/// just past it.
fn parse_tree(toks: &[(usize, Tok)], mut i: usize) -> (Vec<Vec<String>>, usize) {
    match toks.get(i).map(|t| &t.1) {
        Some(Tok::Open) => {
            i += 1;
            let mut all = Vec::new();
            loop {
                match toks.get(i).map(|t| &t.1) {
                    None => return (all, i),
                    Some(Tok::Close) => return (all, i + 1),
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::Ident(_) | Tok::Open) => {
                        let (trees, next) = parse_tree(toks, i);
                        all.extend(trees);
                        // Skip `as name` and anything else up to `,` or `}`.
                        i = next;
                        while let Some((_, t)) = toks.get(i) {
                            if matches!(t, Tok::Comma | Tok::Close) {
                                break;
                            }
                            i += 1;
                        }
                    }
                    Some(_) => i += 1,
                }
            }
        }
        Some(Tok::Ident(s)) => {
            let head = s.clone();
            if toks.get(i + 1).map(|t| &t.1) == Some(&Tok::PathSep)
                && matches!(
                    toks.get(i + 2).map(|t| &t.1),
                    Some(Tok::Ident(_) | Tok::Open)
                )
            {
                let (tails, next) = parse_tree(toks, i + 2);
                let paths = tails
                    .into_iter()
                    .map(|t| std::iter::once(head.clone()).chain(t).collect())
                    .collect();
                (paths, next)
            } else {
                (vec![vec![head]], i + 1)
            }
        }
        _ => (Vec::new(), i + 1),
    }
}

fn resolve(line: usize, path: Vec<String>, module: &[String], absolute: bool) -> Use {
    if absolute {
        return Use {
            line,
            path,
            resolved: false,
        };
    }
    let mut base: Vec<String> = match path[0].as_str() {
        "crate" => Vec::new(),
        "super" | "self" => module.to_vec(),
        _ => {
            return Use {
                line,
                path,
                resolved: false,
            }
        }
    };
    let mut rest = &path[..];
    if rest[0] == "crate" {
        rest = &rest[1..];
    } else {
        if rest[0] == "self" {
            rest = &rest[1..];
        }
        while rest.first().map(String::as_str) == Some("super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    if base.is_empty() {
        // `use crate::{...}` at the root of a tree, or `super` to the root.
        base.push(String::new());
    }
    Use {
        line,
        path: base,
        resolved: true,
    }
}
