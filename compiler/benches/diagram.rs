//! How long `choreoc diagram` takes on a large spec: a checked spec of
//! 1,000 reactions, rendered in each format. The SVG must take well under a
//! second (layout included).
//!
//! Run with `cargo bench -p choreo-compiler --bench diagram`.

#[path = "support/synthetic.rs"]
mod synthetic;

use choreo_compiler::diagram::{render, Format, View};
use choreo_compiler::{check, CheckedSpec, SourceFile};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

fn checked(reactions: usize) -> CheckedSpec {
    let file = SourceFile::new("synthetic.choreo", synthetic::spec(reactions));
    match check(&file).into_checked() {
        Ok((spec, _warnings)) => spec,
        Err(diagnostics) => panic!("the synthetic spec has errors: {diagnostics:#?}"),
    }
}

fn diagrams(c: &mut Criterion) {
    let mut group = c.benchmark_group("diagram");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    for reactions in [100, 1_000] {
        let spec = checked(reactions);
        assert_eq!(spec.reactions.len(), reactions);
        for format in Format::ALL {
            group.bench_with_input(
                BenchmarkId::new(format.as_str(), reactions),
                &spec,
                |b, spec| b.iter(|| render(spec, format, &View::Flow)),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, diagrams);
criterion_main!(benches);
