//! Generation time of the Rust module for synthetic specs of 1,000 and
//! 10,000 reactions (the spec is checked once, outside the measurement).

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use choreo_compiler::testing::synthetic_spec;

// The allocator choreoc uses, so the figures are choreoc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use choreo_compiler::{check, codegen, SourceFile};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("codegen");
    group.sample_size(10);
    for reactions in [1_000usize, 10_000] {
        let report = check(&SourceFile::new(
            "synthetic.choreo",
            synthetic_spec(reactions),
        ));
        let Ok((spec, _)) = report.into_checked() else {
            panic!("the synthetic spec must check clean");
        };
        group.bench_with_input(BenchmarkId::new("tokens", reactions), &spec, |b, spec| {
            b.iter(|| codegen::module(spec))
        });
        group.bench_with_input(
            BenchmarkId::new("formatted source", reactions),
            &spec,
            |b, spec| b.iter(|| codegen::source(spec)),
        );
    }
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
