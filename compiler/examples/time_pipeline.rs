//! Times parse and check of a deep synthetic pipeline:
//! `cargo run --release -p choreo-compiler --example time_pipeline -- 100000`.
use choreo_compiler::testing::synthetic_pipeline;
use choreo_compiler::{check, SourceFile};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let file = SourceFile::new("p.choreo", synthetic_pipeline(n));
    let t = Instant::now();
    let report = check(&file);
    println!(
        "pipeline of {n} reactions, {} bytes: parse+check {:?}, {} diagnostics",
        file.text().len(),
        t.elapsed(),
        report.diagnostics.len()
    );
}
