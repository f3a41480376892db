//! Generates the ecommerce module, with its HTTP ingress, from the spec.

fn main() -> Result<(), choreo_compiler::build::BuildError> {
    choreo_compiler::build::Builder::new()
        .http(true)
        .compile("ecommerce.choreo")
        .map(|_| ())
}
