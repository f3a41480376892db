//! `choreoc fmt`: writes a spec in one canonical layout, as gofmt and
//! rustfmt do (the style is described in docs/language.md, "Formatting").
//!
//! The layout comes from the syntax tree; the comments, which the tree
//! does not keep where they were, come from the text. Formatting keeps
//! the meaning: [`format`] parses what it wrote and refuses to return it
//! unless the tree, spans aside, and the comments are what they were.

mod comments;
mod printer;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{SourceFile, Span};
use crate::syntax::{self, ast};

/// The spec in the canonical layout, or the E0001 diagnostics of a spec
/// that does not parse.
pub fn format(file: &SourceFile) -> Result<String, Vec<Diagnostic>> {
    let tree = syntax::parse(file)?;
    let text = file.text();
    let Some((comments, skeleton)) = comments::collect(text) else {
        return Err(vec![internal("its comments could not be read")]);
    };
    let count = comments.len();
    let mut printer = printer::Printer::new(text, &skeleton, comments);
    printer.file(&tree);
    let formatted = printer.finish();
    // The formatter's own check, so that a bug in it shows as an error
    // instead of a spec whose meaning changed.
    let reparsed = syntax::parse(&SourceFile::new(file.name(), formatted.as_str()));
    match reparsed {
        Ok(again) if same_tree(&tree, &again) => {}
        _ => return Err(vec![internal("the result would not mean the same")]),
    }
    if comments::collect(&formatted).map(|(c, _)| c.len()) != Some(count) {
        return Err(vec![internal("the result would lose a comment")]);
    }
    Ok(formatted)
}

/// Whether two syntax trees are equal apart from their spans: the same
/// spec, however laid out.
pub fn same_tree(a: &ast::File, b: &ast::File) -> bool {
    without_spans(a) == without_spans(b)
}

/// The tree's debug form with every span left out. Debug output covers
/// every field, so a field added to the tree later is compared too.
fn without_spans(tree: &ast::File) -> String {
    const SPAN: &str = "Span { start: ";
    let debug = format!("{tree:?}");
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(at) = rest.find(SPAN) {
        out.push_str(&rest[..at]);
        out.push_str("Span");
        let after = &rest[at..];
        rest = after.find('}').map_or("", |close| &after[close + 1..]);
    }
    out.push_str(rest);
    out
}

fn internal(why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E0001,
        Span::default(),
        format!("internal error: the spec cannot be formatted: {why}"),
    )
    .with_help("this is a bug in choreoc; please report it with the spec that caused it")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        format(&SourceFile::new("t.choreo", text)).unwrap()
    }

    #[test]
    fn lays_out_a_compact_spec() {
        let text = "/// Shop.\nchoreography Shop{key id:uuid // the key\n@terminal event Done{a:u32,b:list<string>?}\n\n\n/* p */participant P{@retry(max=3 backoff=2s) on A|B->Done+C|none compensates X}}";
        assert_eq!(
            fmt(text),
            "/// Shop.\nchoreography Shop {\n    key id: uuid // the key\n    @terminal\n    event Done { a: u32, b: list<string>? }\n\n    /* p */\n    participant P {\n        @retry(max = 3, backoff = 2s)\n        on A | B -> Done + C | none compensates X\n    }\n}\n"
        );
    }

    #[test]
    fn spans_do_not_count_in_tree_equality() {
        let parse = |t: &str| syntax::parse(&SourceFile::new("t", t)).unwrap();
        let a = parse("choreography A { key k: u32 }");
        let b = parse("choreography   A {\n key k : u32 }");
        let c = parse("choreography A { key k: u64 }");
        assert!(same_tree(&a, &b));
        assert!(!same_tree(&a, &c));
    }

    #[test]
    fn a_syntax_error_is_its_e0001() {
        let errors = format(&SourceFile::new("t", "choreography {")).unwrap_err();
        assert!(errors.iter().all(|d| d.code == Code::E0001));
    }
}
