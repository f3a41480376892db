//! `#[doc]` attributes for generated items, which every emitter writes.

use crate::model::Docs;
use proc_macro2::TokenStream;
use quote::quote;

/// `#[doc]` attributes from a spec's doc comment, or `fallback` when it has
/// none (so every generated public item is documented).
pub(crate) fn docs(docs: &Docs, fallback: &str) -> TokenStream {
    if docs.is_empty() {
        doc_lines(&[fallback.to_string()])
    } else {
        doc_lines(&docs.lines)
    }
}

/// One `#[doc]` attribute per line, each with the leading space rustdoc
/// expects.
pub(crate) fn doc_lines(lines: &[String]) -> TokenStream {
    let attrs = lines.iter().map(|l| {
        let l = format!(" {l}");
        quote!(#[doc = #l])
    });
    quote!(#(#attrs)*)
}
