//! Times each phase of checking a synthetic spec (for profiling):
//! `cargo run --release -p choreo-compiler --example phases -- 100000`.
use choreo_compiler::testing::synthetic_spec;
use choreo_compiler::{checks, model, syntax, SourceFile};
use std::time::Instant;

// The allocator choreoc uses, so the figures are choreoc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let file = SourceFile::new("s.choreo", synthetic_spec(n));
    let t = Instant::now();
    let Ok(ast) = syntax::parse(&file) else {
        return;
    };
    let parse = t.elapsed();
    let t = Instant::now();
    let (spec, d) = model::build(&ast);
    let build = t.elapsed();
    let t = Instant::now();
    drop(ast);
    let drop_ast = t.elapsed();
    let t = Instant::now();
    let c = checks::run(&spec, d.is_empty());
    let check = t.elapsed();
    println!(
        "{n}: parse {parse:?}, model {build:?}, drop of the syntax tree {drop_ast:?}, checks {check:?} ({} diagnostics)",
        c.len()
    );
}
