//! Generates the test fixtures' modules from their specs with the
//! build-script entry point users call (`choreo_compiler::builder`), so that
//! the workspace's own build compiles, lints and tests generated code.

fn main() -> Result<(), choreo_compiler::builder::BuildError> {
    // The examples with their HTTP ingress, as the example services use them.
    for spec in [
        "../examples/ecommerce/ecommerce.choreo",
        "../examples/drone-delivery/drone-delivery.choreo",
        // A key the client gives: the ingress's other way to key a route.
        "specs/tickets.choreo",
    ] {
        choreo_compiler::builder::Builder::new()
            .http(true)
            .compile(spec)?;
    }
    choreo_compiler::builder::compile("specs/keywords.choreo")?;
    Ok(())
}
