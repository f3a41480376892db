//! Example service (placeholder until the runtime and code generator land).
fn main() {}
