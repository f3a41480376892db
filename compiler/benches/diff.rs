//! `choreoc diff` at 10k and 100k reactions: the comparison of two checked
//! specs, beside the check of one of them, measured in the same run.
//!
//! `cargo bench -p choreo-compiler --bench diff`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]
// A benchmark's specs are made to check clean; anything else is a bug to see.
#![allow(clippy::unwrap_used)]

use choreo_compiler::evolution::compare;
use choreo_compiler::testing::synthetic_spec;
use choreo_compiler::{check, CheckedSpec, SourceFile};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

// The allocator choreoc uses, so the figures are choreoc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn checked(text: &str) -> CheckedSpec {
    check(&SourceFile::new("synthetic.choreo", text))
        .into_checked()
        .unwrap()
        .0
}

fn diff(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for reactions in [10_000usize, 100_000] {
        let old_text = synthetic_spec(reactions);
        // A change in every unit: a field added to a message and to the
        // record every unit reaches, and a variant added.
        let new_text = old_text
            .replace("reason: string }", "reason: string, code: u32? }")
            .replace("zip: string }", "zip: string, country: string? }")
            .replace("{ Drone, Truck }", "{ Drone, Truck, Bike }");
        let (old, new) = (checked(&old_text), checked(&new_text));
        assert!(compare(&old, &new).fails());
        group.bench_with_input(BenchmarkId::new("compare", reactions), &(), |b, ()| {
            b.iter(|| compare(&old, &new))
        });
        group.bench_with_input(
            BenchmarkId::new("check", reactions),
            &old_text,
            |b, text| b.iter(|| check(&SourceFile::new("synthetic.choreo", text.clone()))),
        );
    }
    group.finish();
}

criterion_group!(benches, diff);
criterion_main!(benches);
