//! Snapshots of the generated code for the example specs and for a spec
//! full of keyword and prelude names; the output is deterministic.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::{check, codegen, SourceFile};
use std::path::Path;

fn generated(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&full).unwrap();
    let (spec, _) = check(&SourceFile::new(path, text)).into_checked().unwrap();
    codegen::source(&spec)
}

#[test]
fn generated_code_snapshots() {
    for (name, path) in [
        ("ecommerce", "examples/ecommerce/ecommerce.choreo"),
        (
            "drone_delivery",
            "examples/drone-delivery/drone-delivery.choreo",
        ),
        ("brief_example", "tests/cases/valid/brief_example.choreo"),
        ("keywords", "tests/specs/keywords.choreo"),
    ] {
        let source = generated(path);
        assert_eq!(
            source,
            generated(path),
            "{name}: output must be deterministic"
        );
        insta::with_settings!({ snapshot_path => "snapshots/codegen", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, source);
        });
    }
}

/// The HTTP ingress (`choreoc generate --http`): of keyed and unkeyed
/// routes with a `uuid` key (drone delivery), and of a `u64` key that the
/// client must give (in the path or the key header).
#[test]
fn generated_http_ingress_snapshots() {
    for (name, path) in [
        (
            "drone_delivery_http",
            "examples/drone-delivery/drone-delivery.choreo",
        ),
        (
            "numeric_key_http",
            "tests/cases/valid/E0103_near_http_paths.choreo",
        ),
    ] {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        let text = std::fs::read_to_string(&full).unwrap();
        let (spec, _) = check(&SourceFile::new(path, text)).into_checked().unwrap();
        let source = codegen::source_with(&spec, codegen::Options { http: true });
        syn::parse_file(&source).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The ingress alone: the rest is in the snapshots above.
        let ingress = &source[source.find("pub mod http").unwrap()..];
        insta::with_settings!({ snapshot_path => "snapshots/codegen", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, ingress);
        });
    }
}

#[test]
fn generated_code_parses_as_rust() {
    for path in [
        "examples/ecommerce/ecommerce.choreo",
        "examples/drone-delivery/drone-delivery.choreo",
        "tests/specs/keywords.choreo",
    ] {
        syn::parse_file(&generated(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// `codegen::wire_names`, which tools that watch a deployment use, names
/// every message and reaction as the generated code does.
#[test]
fn wire_names_are_the_generated_codes() {
    for path in [
        "examples/ecommerce/ecommerce.choreo",
        "examples/drone-delivery/drone-delivery.choreo",
        "tests/cases/valid/brief_example.choreo",
        "tests/specs/keywords.choreo",
    ] {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        let text = std::fs::read_to_string(&full).unwrap();
        let (spec, _) = check(&SourceFile::new(path, text)).into_checked().unwrap();
        let source = codegen::source(&spec);
        // Line breaks depend on the lengths of the names.
        let flat: String = source.split_whitespace().collect();
        let names = codegen::wire_names(&spec);
        assert_eq!(names.types.len(), spec.messages.len());
        assert_eq!(names.reactions.len(), spec.reactions.len());
        for ty in &names.types {
            let constant = format!("const TYPE: &'static str = {ty:?};");
            assert!(source.contains(&constant), "{path}: no `{constant}`");
        }
        for (r, name) in spec.reactions.iter().zip(&names.reactions) {
            let participant = &spec.participant(r.participant).name.text;
            let registered = format!(".reaction({participant:?},{name:?},");
            assert!(
                flat.contains(&registered),
                "{path}: reaction `{name}` of `{participant}` is not in the generated topology"
            );
        }
    }
}
