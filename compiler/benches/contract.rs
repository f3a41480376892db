//! The contract tools at 10k reactions, each beside the check of the same
//! spec measured in the same run: `choreoc fmt`, `choreoc export asyncapi`
//! (YAML and JSON), `choreoc export jsonschema` and `choreoc diff` (the
//! comparison of two checked specs, also at 100k reactions).
//!
//! `cargo bench -p choreo-compiler --bench contract`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]
// A benchmark's specs are made to check clean; anything else is a bug to see.
#![allow(clippy::unwrap_used)]

use choreo_compiler::evolution::compare;
use choreo_compiler::export::asyncapi::{self, Format, Options};
use choreo_compiler::export::jsonschema::JsonSchemas;
use choreo_compiler::format::format;
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

/// What each tool does past the check (the CLI checks first): formatting
/// parses only, so it is measured from the text.
fn tools(c: &mut Criterion) {
    let mut group = c.benchmark_group("contract");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let reactions = 10_000usize;
    let text = synthetic_spec(reactions);
    let spec = checked(&text);
    group.bench_with_input(BenchmarkId::new("check", reactions), &text, |b, text| {
        b.iter(|| check(&SourceFile::new("synthetic.choreo", text.clone())))
    });
    group.bench_with_input(BenchmarkId::new("fmt", reactions), &text, |b, text| {
        b.iter(|| format(&SourceFile::new("synthetic.choreo", text.clone())).unwrap())
    });
    for (name, how) in [
        ("asyncapi-yaml", Format::Yaml),
        ("asyncapi-json", Format::Json),
    ] {
        group.bench_with_input(BenchmarkId::new(name, reactions), &spec, |b, spec| {
            b.iter(|| {
                let doc = asyncapi::document(spec, &Options::default());
                asyncapi::render(&doc, how).unwrap()
            })
        });
    }
    group.bench_with_input(
        BenchmarkId::new("jsonschema", reactions),
        &spec,
        |b, spec| b.iter(|| JsonSchemas::of(spec).files()),
    );
    group.finish();
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

criterion_group!(benches, tools, diff);
criterion_main!(benches);
