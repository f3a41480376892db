//! rustc rejects a handler that returns an event its reaction does not
//! declare, and an implementation that forgets a reaction, with errors that
//! point at the user's code.

#[test]
fn generated_traits_reject_what_the_spec_does_not_allow() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
