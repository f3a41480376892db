// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::codegen;
use std::str::FromStr;

fn compiler_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn checked(path: &str) -> crate::CheckedSpec {
    let text = std::fs::read_to_string(compiler_dir().join(path)).unwrap();
    let (spec, _) = crate::check(&SourceFile::new(path, text))
        .into_checked()
        .unwrap();
    spec
}

fn tokens(source: &str) -> TokenStream {
    TokenStream::from_str(source).unwrap()
}

/// The items of an expansion.
fn items(expansion: TokenStream) -> Vec<syn::Item> {
    syn::parse2::<syn::File>(expansion).unwrap().items
}

/// The message of every `compile_error!` of an expansion.
fn errors(expansion: TokenStream) -> Vec<String> {
    items(expansion)
        .into_iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m) if m.mac.path.segments.last().unwrap().ident == "compile_error" => {
                Some(syn::parse2::<syn::LitStr>(m.mac.tokens).unwrap().value())
            }
            _ => None,
        })
        .collect()
}

/// The first span of the only `compile_error!` of an expansion, as a byte
/// range of the parsed input.
fn error_start(expansion: TokenStream) -> Range<usize> {
    expansion.into_iter().next().unwrap().span().byte_range()
}

use std::ops::Range;

const EXAMPLES: [&str; 2] = [
    "../examples/ecommerce/ecommerce.choreo",
    "../examples/drone-delivery/drone-delivery.choreo",
];

#[test]
fn the_file_form_expands_to_the_generated_module_and_tracks_the_file() {
    for path in EXAMPLES {
        let input = quote!(file = #path);
        let mut items = items(expand_in(input, Some(compiler_dir())));
        let tracked = items.remove(0);
        let resolved = compiler_dir().join(path).display().to_string();
        let expected_tracking = format!(
            "const _ : & str = :: core :: include_str ! ({:?}) ;",
            resolved
        );
        assert_eq!(quote!(#tracked).to_string(), expected_tracking);
        assert_eq!(
            quote!(#(#items)*).to_string(),
            codegen::module(&checked(path)).to_string(),
            "{path}"
        );
    }
}

#[test]
fn an_inline_spec_expands_to_the_same_module_as_the_file() {
    for path in EXAMPLES {
        let text = std::fs::read_to_string(compiler_dir().join(path)).unwrap();
        let expansion = expand_in(tokens(&text), None);
        assert_eq!(
            expansion.to_string(),
            codegen::module(&checked(path)).to_string(),
            "{path}"
        );
    }
}

#[test]
fn fields_and_variants_may_be_separated_by_newlines_or_commas() {
    let newlines = "
        choreography Shop {
            key order_id: uuid
            type Address {
                street: string
                city: string
            }
            enum Carrier {
                Drone
                Truck
            }
            @http(POST \"/orders\")
            command PlaceOrder {
                ship_to: Address
                carrier: Carrier
            }
            @terminal event OrderPlaced { }
            participant Orders {
                @retry(max = 3, backoff = 200ms)
                on PlaceOrder -> OrderPlaced
            }
        }";
    let commas = "choreography Shop { key order_id: uuid
        type Address { street: string, city: string, }
        enum Carrier { Drone, Truck }
        @http(POST \"/orders\") command PlaceOrder { ship_to: Address, carrier: Carrier }
        @terminal event OrderPlaced { }
        participant Orders { @retry(max = 3, backoff = 200ms) on PlaceOrder -> OrderPlaced } }";
    let from_newlines = expand_in(tokens(newlines), None).to_string();
    assert!(from_newlines.starts_with("pub mod shop"), "{from_newlines}");
    assert_eq!(from_newlines, expand_in(tokens(commas), None).to_string());
}

#[test]
fn fields_on_one_line_without_commas_are_an_error_inline_too() {
    let input = "choreography Shop { key id: uuid
        command Go { a: u32 b: u32 } }";
    let expansion = expand_in(tokens(input), None);
    let messages = errors(expansion.clone());
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].starts_with("error[E0001]: expected `,` or a newline"),
        "{}",
        messages[0]
    );
    let at = input.find("b: u32").unwrap();
    assert_eq!(error_start(expansion), at..at + 1);
}

#[test]
fn an_inline_error_points_at_its_token_with_the_code_and_the_help() {
    let input = "choreography Shop {
        key id: uuid
        command PlaceOrder { }
        @terminal event OrderPlaced { }
        participant Orders { on PlaceOrder -> OrderPlacd }
    }";
    let expansion = expand_in(tokens(input), None);
    let messages = errors(expansion.clone());
    assert_eq!(
        messages,
        ["error[E0101]: unknown event `OrderPlacd`\n  no event of this name\n  = help: did you mean `OrderPlaced`?"]
    );
    let at = input.find("OrderPlacd").unwrap();
    assert_eq!(error_start(expansion), at..at + "OrderPlacd".len());
}

#[test]
fn secondary_places_are_named_by_line_and_column() {
    let input = "choreography Shop {
        key id: uuid
        command Go { }
        event A { }
        event B { }
        participant P {
            on Go -> A
            on A -> B
            on B -> A
        }
    }";
    let messages = errors(expand_in(tokens(input), None));
    let cycle = messages.iter().find(|m| m.contains("E0200")).unwrap();
    assert!(cycle.contains("\n  line 8, column 13: "), "{cycle}");
}

#[test]
fn http_true_adds_the_ingress_as_the_build_script_does() {
    let path = EXAMPLES[1];
    for (flag, http) in [(quote!(true), true), (quote!(false), false)] {
        let mut items = items(expand_in(
            quote!(file = #path, http = #flag,),
            Some(compiler_dir()),
        ));
        items.remove(0);
        assert_eq!(
            quote!(#(#items)*).to_string(),
            codegen::module_with(&checked(path), codegen::Options { http }).to_string()
        );
        assert_eq!(
            quote!(#(#items)*).to_string().contains("pub mod http"),
            http
        );
    }
}

#[test]
fn an_error_without_a_token_falls_back_to_the_call_site() {
    // Only a doc comment: the parser wants `choreography` after it.
    let messages = errors(expand_in(tokens("/// Nothing else."), None));
    assert_eq!(messages.len(), 1);
    assert!(messages[0].starts_with("error[E0001]"), "{}", messages[0]);
}

#[test]
fn a_file_with_errors_is_one_error_with_the_rendered_diagnostics() {
    let path = "../tests/cases/invalid/E0201_unhandled.choreo";
    let mut items = items(expand_in(quote!(file = #path), Some(compiler_dir())));
    // The file is tracked even so, for the rebuild once it is fixed.
    let tracked = items.remove(0);
    assert!(quote!(#tracked).to_string().contains("include_str"));
    let messages = errors(quote!(#(#items)*));
    assert_eq!(messages.len(), 1);
    let text = std::fs::read_to_string(compiler_dir().join(path)).unwrap();
    let file = SourceFile::new(path, text);
    let report = crate::check(&file);
    assert_eq!(
        messages[0],
        crate::builder::errors_message(&file, &report.diagnostics).trim_end()
    );
    assert!(messages[0].starts_with(&format!(
        "the choreo spec `{path}` has 2 errors:\n\nerror[E0201]"
    )));
    assert!(
        messages[0].contains(&format!("┌─ {path}:6:11")),
        "{}",
        messages[0]
    );
}

#[test]
fn a_missing_file_is_an_error_naming_the_resolved_path() {
    let expansion = expand_in(quote!(file = "specs/missing.choreo"), Some(compiler_dir()));
    let messages = errors(expansion);
    let resolved = compiler_dir().join("specs/missing.choreo");
    assert!(
        messages[0].starts_with(&format!(
            "cannot read the choreo spec `{}`: ",
            resolved.display()
        )),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("relative to the directory of the crate's Cargo.toml"));
    let absolute = errors(expand_in(
        quote!(file = "/nonexistent/x.choreo"),
        Some(compiler_dir()),
    ));
    assert!(absolute[0].starts_with("cannot read the choreo spec `/nonexistent/x.choreo`: "));
    assert!(!absolute[0].contains("relative"));
    let without_dir = errors(expand_in(quote!(file = "specs/missing.choreo"), None));
    assert!(without_dir[0].contains("CARGO_MANIFEST_DIR is not set"));
}

#[test]
fn other_arguments_are_explained() {
    for (input, expected) in [
        ("", "`choreo!` takes a spec"),
        (
            "path = \"x.choreo\"",
            "unknown argument `path`: `choreo!` takes",
        ),
        ("\"x.choreo\"", "a path is given as `file = \"x.choreo\"`"),
        ("file = ", "expected the spec's path as a string literal"),
        ("file = 5", "expected the spec's path as a string literal"),
        ("file = x", "expected the spec's path as a string literal"),
        ("file = \"x\" y", "unexpected tokens after `file = …`"),
        ("http = true", "the spec's file is missing"),
        (
            "file = \"x\", http = yes",
            "expected `http = true` or `http = false`",
        ),
        (
            "file = \"x\", http = \"true\"",
            "expected `http = true` or `http = false`",
        ),
        (
            "file = \"x\", http = true, http = false",
            "`http` is given twice",
        ),
        (
            "file = \"x\", 5",
            "expected an argument such as `http = true`",
        ),
        ("file = \"x\", colour = true", "unknown argument `colour`"),
    ] {
        let messages = errors(expand_in(tokens(input), None));
        assert_eq!(messages.len(), 1, "{input}");
        assert!(
            messages[0].starts_with(expected),
            "{input}: {}",
            messages[0]
        );
    }
    // A trailing comma is fine.
    let messages = errors(expand_in(tokens("file = \"nowhere\","), None));
    assert!(messages[0].starts_with("cannot resolve `nowhere`"));
}

#[test]
fn tokens_without_positions_still_expand_and_point_at_tokens() {
    // As rustc before 1.88 gives them: no line or column in any span.
    let spec = quote! {
        choreography Shop {
            key order_id: uuid
            type Address { street: string city: string }
            @http(POST "/orders")
            command PlaceOrder { ship_to: Address }
            @terminal event OrderPlaced { }
            participant Orders { @retry(max = 3, backoff = 200ms) on PlaceOrder -> OrderPlaced }
        }
    };
    assert!(expand_in(spec, None)
        .to_string()
        .starts_with("pub mod shop"));
    let cycle = quote! {
        choreography Shop {
            key id: uuid
            command Go { }
            event A { }
            event B { }
            participant P { on Go -> A on A -> B on B -> A }
        }
    };
    let messages = errors(expand_in(cycle, None));
    let cycle = messages.iter().find(|m| m.contains("E0200")).unwrap();
    assert!(
        cycle.contains("\n  and: `P` reacts to `A` with `B`"),
        "{cycle}"
    );
}
