//! Generates the ecommerce module, with its HTTP ingress, from the spec.

fn main() -> Result<(), choreo_compiler::builder::BuildError> {
    choreo_compiler::builder::Builder::new()
        .http(true)
        .compile("ecommerce.choreo")
        .map(|_| ())
}
