//! Times parse and check of a synthetic spec:
//! `cargo run --release -p choreo-compiler --example time_check -- 100000 [parse|check]`.
use choreo_compiler::testing::synthetic_spec;

// The allocator choreoc uses, so the figures are choreoc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use choreo_compiler::{check, SourceFile};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let what = args.next().unwrap_or_else(|| "both".into());
    let text = synthetic_spec(n);
    let bytes = text.len();
    let file = SourceFile::new("s.choreo", text);
    if what != "check" {
        let t = Instant::now();
        let parsed = choreo_compiler::syntax::parse(&file);
        println!("parse {:?} ({})", t.elapsed(), parsed.is_ok());
    }
    if what != "parse" {
        let t = Instant::now();
        let report = check(&file);
        println!(
            "{n} reactions, {bytes} bytes: parse+check {:?}, {} diagnostics",
            t.elapsed(),
            report.diagnostics.len()
        );
    }
}
