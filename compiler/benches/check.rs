//! Parse + check time of synthetic specs of 1k, 10k and 100k reactions.
//!
//! `cargo bench -p choreo-compiler --bench check` prints criterion's figures;
//! the growth factors between sizes go into `docs/benchmarks.md`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use choreo_compiler::testing::synthetic_spec;

// The allocator choreoc uses, so the figures are choreoc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use choreo_compiler::{check, SourceFile};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn parse_and_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse+check");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for reactions in [1_000usize, 10_000, 100_000] {
        let text = synthetic_spec(reactions);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(reactions), &text, |b, text| {
            b.iter(|| {
                let file = SourceFile::new("synthetic.choreo", text.clone());
                let report = check(&file);
                assert!(!report.has_errors());
                report
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_and_check);
criterion_main!(benches);
