//! How long `choreoc diagram` takes on large specs: checked specs of about
//! 100 and 1,000 reactions, as many independent orders (rendered in each
//! format) and as one deep pipeline (SVG, the layout's hard case). The SVG
//! of 1,000 reactions must take well under a second, layout included.
//!
//! Run with `cargo bench -p choreo-compiler --bench diagram`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use choreo_compiler::diagram::{render, Format, View};
use choreo_compiler::testing::{synthetic_pipeline, synthetic_spec};
use choreo_compiler::{check, CheckedSpec, SourceFile};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

fn checked(text: String) -> CheckedSpec {
    let file = SourceFile::new("synthetic.choreo", text);
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
    // Many independent orders (whole units of nine reactions: 108, 1,008).
    for reactions in [100, 1_000] {
        let spec = checked(synthetic_spec(reactions));
        let reactions = spec.reactions.len();
        for format in Format::ALL {
            group.bench_with_input(
                BenchmarkId::new(format.as_str(), reactions),
                &spec,
                |b, spec| b.iter(|| render(spec, format, &View::Flow)),
            );
        }
    }
    // One connected process as deep as it is long.
    for reactions in [100, 1_000] {
        let spec = checked(synthetic_pipeline(reactions));
        assert_eq!(spec.reactions.len(), reactions);
        group.bench_with_input(
            BenchmarkId::new("svg-pipeline", reactions),
            &spec,
            |b, spec| b.iter(|| render(spec, Format::Svg, &View::Flow)),
        );
    }
    group.finish();
}

criterion_group!(benches, diagrams);
criterion_main!(benches);
