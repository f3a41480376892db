//! The `choreo!` procedural macro: a thin entry point over `choreo-compiler`,
//! which parses, checks and generates (`choreo_compiler::macro_support`).
//!
//! Use it through `choreo-runtime` with its `macros` feature, as
//! `choreo_runtime::choreo!`: the expansion refers to `::choreo_runtime`, so
//! the crate that invokes it depends on `choreo-runtime` anyway. See
//! `docs/macro.md`.

use proc_macro::TokenStream;

/// Expands a choreography spec into the module `choreoc generate` writes
/// for it: a struct per type, command and event, a trait per participant,
/// the wiring, `Commands` and the test fixtures.
///
/// Inline, the spec as tokens; an error of the spec is a compile error at
/// the token it is about:
///
/// ```ignore
/// choreo_runtime::choreo! {
///     choreography Shop {
///         key order_id: uuid
///         command PlaceOrder { quantity: u32 }
///         @terminal event OrderPlaced { }
///         participant Orders { on PlaceOrder -> OrderPlaced }
///     }
/// }
/// ```
///
/// From a file, its path relative to the crate's `Cargo.toml`; the crate is
/// rebuilt when the file changes, and an error of the spec is reported at
/// the path, as `choreoc check` shows it:
///
/// ```ignore
/// choreo_runtime::choreo!(file = "specs/shop.choreo");
/// ```
///
/// Warnings of the spec do not fail the build and are not shown; run
/// `choreoc check` to see them.
#[proc_macro]
pub fn choreo(input: TokenStream) -> TokenStream {
    choreo_compiler::macro_support::expand(input.into()).into()
}
