//! The contract between generated code and the runtime: generated code
//! names no crate but `::std`, `::core` and `::choreo_runtime::codegen`
//! (`runtime/src/codegen.rs`), the one module of the runtime that promises
//! generated code anything. A runtime refactor that keeps that module then
//! cannot break generated code; one that needs another path fails here.
//!
//! The generated code of every corpus spec (with the HTTP ingress, a
//! superset of the code without it) is parsed with syn and every path in
//! it checked: paths in types, expressions, patterns and `use` items, and
//! those inside attributes (`#[derive(…)]`, serde's `crate = "…"`) and
//! macro calls (`::std::format!(…)`), which syn keeps as tokens. The
//! choreoc-owned files of a scaffold name the runtime through the same
//! module.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::codegen::{self, CrateSource, Options};
use choreo_compiler::{check, scaffold, SourceFile};
use proc_macro2::{Spacing, TokenStream, TokenTree};
use std::path::{Path, PathBuf};
use syn::punctuated::Punctuated;
use syn::visit::Visit;

/// The module generated code may name.
const CONTRACT: &[&str] = &["choreo_runtime", "codegen"];

/// Crates generated code could reach without a leading `::`: a path that
/// starts with one of them bypasses the contract.
const CRATES: &[&str] = &[
    "choreo_runtime",
    "choreo_macros",
    "serde",
    "serde_json",
    "axum",
    "tokio",
    "futures",
    "uuid",
    "jiff",
    "rust_decimal",
    "tracing",
    "async_trait",
    "bytes",
    "tower",
    "tower_http",
];

/// Keywords, which start no path (`self`, `super`, `crate` and `Self` do).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "dyn", "else", "enum", "extern",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "type", "unsafe", "use", "where", "while",
];

/// Why a path breaks the contract, if it does. `leading`: the path starts
/// with `::`, so its first segment is a crate.
fn offence(leading: bool, segments: &[String]) -> Option<String> {
    let text = format!("{}{}", if leading { "::" } else { "" }, segments.join("::"));
    let first = segments.first().map(String::as_str).unwrap_or_default();
    let in_contract = segments.len() >= 2 && segments[..2] == CONTRACT[..];
    if leading {
        (!(first == "std" || first == "core" || in_contract)).then_some(text)
    } else {
        (segments.len() >= 2 && CRATES.contains(&first) && !in_contract).then_some(text)
    }
}

/// Every path of a file that breaks the contract.
#[derive(Default)]
struct Checker {
    offenders: Vec<String>,
}

impl Checker {
    fn check(&mut self, leading: bool, segments: &[String]) {
        if let Some(text) = offence(leading, segments) {
            self.offenders.push(text);
        }
    }

    fn check_path(&mut self, path: &syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.check(path.leading_colon.is_some(), &segments);
    }

    /// Paths written in tokens syn does not parse (macro arguments,
    /// attribute arguments): a run of `ident (:: ident)*`, with or without
    /// a leading `::`.
    fn check_tokens(&mut self, tokens: TokenStream) {
        enum Tok {
            Ident(String),
            Colon2,
            Gt,
            Other,
        }
        let mut flat = Vec::new();
        let mut trees = tokens.into_iter().peekable();
        while let Some(tree) = trees.next() {
            match tree {
                // A keyword before `::` (`as ::x::Y`) starts no path.
                TokenTree::Ident(i) if KEYWORDS.contains(&i.to_string().as_str()) => {
                    flat.push(Tok::Other)
                }
                TokenTree::Ident(i) => flat.push(Tok::Ident(i.to_string())),
                TokenTree::Punct(p) if p.as_char() == ':' && p.spacing() == Spacing::Joint => {
                    if matches!(trees.peek(), Some(TokenTree::Punct(q)) if q.as_char() == ':') {
                        trees.next();
                        flat.push(Tok::Colon2);
                    } else {
                        flat.push(Tok::Other);
                    }
                }
                TokenTree::Punct(p) if p.as_char() == '>' => flat.push(Tok::Gt),
                TokenTree::Group(g) => {
                    self.check_tokens(g.stream());
                    flat.push(Tok::Other);
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => flat.push(Tok::Other),
            }
        }
        let mut i = 0;
        while i < flat.len() {
            // `Vec::<u8>::new`: `::new` continues a path.
            let continues = i > 0 && matches!(flat[i - 1], Tok::Colon2 | Tok::Gt);
            let leading = matches!(flat[i], Tok::Colon2);
            let start = if leading { i + 1 } else { i };
            if continues || !matches!(flat.get(start), Some(Tok::Ident(_))) {
                i += 1;
                continue;
            }
            let mut segments = Vec::new();
            let mut j = start;
            while let Some(Tok::Ident(s)) = flat.get(j) {
                segments.push(s.clone());
                if matches!(flat.get(j + 1), Some(Tok::Colon2)) {
                    j += 2;
                } else {
                    j += 1;
                    break;
                }
            }
            self.check(leading, &segments);
            i = j;
        }
    }

    /// The paths of a `use` tree, each checked from the item's root.
    fn check_use(&mut self, leading: bool, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.check_use(leading, prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.check(leading, prefix);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.check(leading, prefix);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                prefix.push("*".to_string());
                self.check(leading, prefix);
                prefix.pop();
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.check_use(leading, prefix, t);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Checker {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.check_path(path);
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.check_use(item.leading_colon.is_some(), &mut Vec::new(), &item.tree);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.check_tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        if let syn::Meta::List(list) = &attr.meta {
            self.check_tokens(list.tokens.clone());
            if list.path.is_ident("serde") {
                // `crate = "…"` names serde's crate root: it must be the
                // re-export, whatever its spelling.
                let metas = list
                    .parse_args_with(
                        Punctuated::<syn::MetaNameValue, syn::Token![,]>::parse_terminated,
                    )
                    .unwrap_or_default();
                for meta in metas {
                    if !meta.path.is_ident("crate") {
                        continue;
                    }
                    let value = match &meta.value {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => s.value(),
                        other => quote::quote!(#other).to_string(),
                    };
                    let ok = syn::parse_str::<syn::Path>(&value).is_ok_and(|p| {
                        p.leading_colon.is_some()
                            && p.segments.len() > CONTRACT.len()
                            && p.segments.iter().zip(CONTRACT).all(|(s, c)| s.ident == c)
                    });
                    if !ok {
                        self.offenders
                            .push(format!("#[serde(crate = \"{value}\")]"));
                    }
                }
            }
        }
        syn::visit::visit_attribute(self, attr);
    }
}

/// Every path of `source` that breaks the contract, each once, sorted.
fn offenders(source: &str) -> Vec<String> {
    let file = syn::parse_file(source).unwrap_or_else(|e| panic!("does not parse: {e}"));
    let mut checker = Checker::default();
    checker.visit_file(&file);
    checker.offenders.sort();
    checker.offenders.dedup();
    checker.offenders
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The corpus: the valid cases, the examples' specs and the specs of
/// `tests/specs` (as `tests/support/build_crates.rs` lists it, with every
/// spec of `tests/specs`).
fn corpus() -> Vec<PathBuf> {
    let root = repo();
    let mut specs = Vec::new();
    for dir in ["tests/cases/valid", "tests/specs"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "choreo") {
                specs.push(path);
            }
        }
    }
    specs.push(root.join("examples/ecommerce/ecommerce.choreo"));
    specs.push(root.join("examples/drone-delivery/drone-delivery.choreo"));
    specs.sort();
    specs
}

fn checked(path: &Path) -> (choreo_compiler::CheckedSpec, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let (spec, _) = check(&SourceFile::new(path.display().to_string(), text.clone()))
        .into_checked()
        .unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
    (spec, text)
}

#[test]
fn generated_code_names_only_std_core_and_the_contract_module() {
    let mut broken = Vec::new();
    let specs = corpus();
    assert!(specs.len() > 10, "the corpus: {specs:?}");
    for path in &specs {
        let (spec, _) = checked(path);
        let source = codegen::source_with(&spec, Options { http: true });
        let found = offenders(&source);
        if !found.is_empty() {
            broken.push(format!("{}: {}", path.display(), found.join(", ")));
        }
    }
    assert!(
        broken.is_empty(),
        "generated code names crate paths outside `::std`, `::core` and \
         `::choreo_runtime::codegen` (add what it needs to runtime/src/codegen.rs \
         and name it from compiler/src/codegen/runtime.rs):\n{}",
        broken.join("\n")
    );
}

/// The files of a scaffold that choreoc keeps name the runtime through the
/// contract module too; the participant files are the user's, and may use
/// the runtime's public API (as they do for `HandlerError`).
#[test]
fn the_scaffold_files_choreoc_keeps_name_the_runtime_through_the_contract() {
    for path in corpus() {
        let (spec, text) = checked(&path);
        for file in scaffold::files(&spec, &text, &CrateSource::crates_io()).unwrap() {
            if file.user_owned || !file.path.ends_with(".rs") {
                continue;
            }
            let outside: Vec<&str> = file
                .contents
                .match_indices("choreo_runtime::")
                .map(|(at, _)| &file.contents[at..])
                .filter(|rest| !rest.starts_with("choreo_runtime::codegen::"))
                .map(|rest| rest.lines().next().unwrap_or_default())
                .collect();
            assert!(
                outside.is_empty(),
                "{}: {} names the runtime outside its contract: {outside:?}",
                path.display(),
                file.path
            );
        }
    }
}

/// The checker finds what it is meant to: runtime paths outside the
/// contract, bare third-party crates (in paths, `use`, derives, macro
/// arguments and serde's `crate`), and lets `::std`, `::core` and the
/// contract module through.
#[test]
fn the_checker_flags_paths_outside_the_contract() {
    let source = r#"
        use serde::Serialize;
        use ::choreo_runtime::codegen::{Uuid, http::axum};
        pub struct A {
            x: ::choreo_runtime::service::X,
            y: ::choreo_runtime::codegen::Uuid,
            z: ::core::primitive::u8,
            w: super::Key,
        }
        #[derive(::std::clone::Clone, serde::Deserialize, ::choreo_runtime::codegen::serde::Serialize)]
        #[serde(crate = "::choreo_runtime::serde")]
        pub struct B;
        #[derive(::choreo_runtime::codegen::serde::Serialize)]
        #[serde(crate = "::choreo_runtime::codegen::serde", rename_all = "camelCase")]
        pub struct C;
        pub fn f() -> axum::Router {
            let _ = ::std::format!("{} {}", ::tokio::time::Instant::now(), <B as ::choreo_runtime::EventId>::X);
            let _ = ::std::vec![::std::vec::Vec::<u8>::new(), ::choreo_runtime::codegen::Json::Null];
            let _ = <B as ::choreo_runtime::Message>::TYPE;
            ::choreo_runtime::codegen::http::axum::Router::new()
        }
    "#;
    assert_eq!(
        offenders(source),
        [
            "#[serde(crate = \"::choreo_runtime::serde\")]",
            "::choreo_runtime::EventId",
            "::choreo_runtime::Message::TYPE",
            "::choreo_runtime::service::X",
            "::tokio::time::Instant::now",
            "axum::Router",
            "serde::Deserialize",
            "serde::Serialize",
        ]
    );
}
