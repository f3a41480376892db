//! Rust names for spec names.
//!
//! Spec names are ASCII identifiers, but some are Rust keywords or cannot be
//! raw identifiers. The rule, documented in `docs/codegen.md`:
//! - a keyword becomes a raw identifier (`match` → `r#match`), which serde
//!   serialises under its plain name;
//! - `self`, `Self`, `super`, `crate` and `_`, which cannot be raw, get a
//!   trailing underscore (`self` → `self_`) and a `#[serde(rename)]`;
//! - std types are always named by full path, so a spec type called
//!   `String`, `Option` or `Box` shadows nothing that generated code uses.

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names that cannot be raw identifiers.
pub(super) const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// The Rust identifier for a spec name, and whether serde needs a rename
/// to keep the spec name on the wire.
pub(crate) fn ident(name: &str) -> (Ident, bool) {
    if NOT_RAW.contains(&name) {
        return (Ident::new(&format!("{name}_"), Span::call_site()), true);
    }
    if KEYWORDS.contains(&name) {
        return (Ident::new_raw(name, Span::call_site()), false);
    }
    (Ident::new(name, Span::call_site()), false)
}

/// Just the identifier.
pub(crate) fn id(name: &str) -> Ident {
    ident(name).0
}

/// snake_case of a spec name, as a Rust identifier (module and method names).
pub(crate) fn snake(name: &str) -> String {
    let s = name.to_snake_case();
    if s.is_empty() {
        "x".to_string()
    } else {
        s
    }
}

/// UpperCamelCase of a phrase, for generated type names.
pub(crate) fn camel(name: &str) -> String {
    let s = name.to_upper_camel_case();
    if s.is_empty() {
        "X".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_unraw_names() {
        assert_eq!(ident("match").0.to_string(), "r#match");
        assert_eq!(
            ident("self"),
            (Ident::new("self_", Span::call_site()), true)
        );
        assert_eq!(ident("Self").0.to_string(), "Self_");
        assert_eq!(ident("String").0.to_string(), "String");
        assert_eq!(snake("DroneScheduler"), "drone_scheduler");
    }
}
