//! Bad input never panics: every file, however broken, gets diagnostics.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::testing::synthetic_spec;
use choreo_compiler::{check, check_bytes, Code, SourceFile};
use proptest::prelude::*;
use std::path::Path;

fn codes(text: &str) -> Vec<Code> {
    check(&SourceFile::new("x.choreo", text))
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

/// Runs `f` on a thread with a small stack, as a test harness or a build
/// script might: deep recursion on hostile input would overflow it.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn empty_and_blank_files_are_syntax_errors() {
    for text in [
        "",
        "   \n\t\n",
        "// only a comment\n",
        "/* block */",
        "/// doc only\n",
    ] {
        assert_eq!(codes(text), [Code::E0001], "{text:?}");
    }
}

#[test]
fn binary_garbage_and_invalid_utf8_are_syntax_errors() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..65_536)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let (_, report) = check_bytes("garbage.choreo", garbage);
    assert_eq!(report.diagnostics.len(), 1);
    assert_eq!(report.diagnostics[0].code, Code::E0001);

    let (_, report) = check_bytes("nul.choreo", b"choreography X {\0}".to_vec());
    assert_eq!(report.diagnostics[0].code, Code::E0001);

    let (file, report) = check_bytes("latin1.choreo", b"choreography Caf\xe9 { }".to_vec());
    assert_eq!(report.diagnostics[0].code, Code::E0001);
    assert!(report.diagnostics[0].message.contains("UTF-8"));
    assert_eq!(
        file.line_col(report.diagnostics[0].primary.span.start())
            .column,
        17
    );
}

#[test]
fn ten_thousand_nested_block_comments_are_just_a_comment() {
    let text = format!(
        "{}{}\nchoreography X {{ key k: uuid command C {{ }} @terminal event E {{ }} participant P {{ on C -> E }} }}",
        "/*".repeat(10_000),
        "*/".repeat(10_000)
    );
    assert_eq!(on_small_stack(move || codes(&text)), []);
}

#[test]
fn unterminated_nested_comments_are_one_error() {
    let text = format!("choreography X {{ {} }}", "/*".repeat(10_000));
    assert_eq!(on_small_stack(move || codes(&text)), [Code::E0001]);
}

#[test]
fn ten_thousand_nested_brackets_are_syntax_errors_not_stack_overflows() {
    for open in ["{", "(", "[", "<", "list<"] {
        let text = format!(
            "choreography X {{ key k: uuid type T {{ f: {} }} }}",
            open.repeat(10_000)
        );
        let got = on_small_stack(move || codes(&text));
        assert_eq!(got, [Code::E0001], "{open}");
    }
    let text = format!("choreography X {{ @retry{} }}", "(".repeat(10_000));
    assert_eq!(on_small_stack(move || codes(&text)), [Code::E0001]);
}

/// pest runs without its native stack probe (see the workspace manifest):
/// the deepest nesting `scan` lets through must parse, lower and check on
/// a small stack, and one level more must be refused before pest runs.
#[test]
fn the_deepest_type_nesting_accepted_fits_a_small_stack() {
    let nested = |depth: usize| {
        format!(
            "choreography X {{ key k: uuid type T {{ f: {}string{} }} }}",
            "list<".repeat(depth),
            ">".repeat(depth)
        )
    };
    let deepest = nested(choreo_compiler::syntax::MAX_TYPE_NESTING);
    let got = on_small_stack(move || codes(&deepest));
    assert!(!got.contains(&Code::E0001), "{got:?}");
    let deeper = nested(choreo_compiler::syntax::MAX_TYPE_NESTING + 1);
    assert_eq!(on_small_stack(move || codes(&deeper)), [Code::E0001]);
}

#[test]
fn very_long_identifiers_work() {
    let long = format!("E{}", "x".repeat(1_000_000));
    let text = format!(
        "choreography X {{ key k: uuid command C {{ }} @terminal event {long} {{ }} participant P {{ on C -> {long} }} }}"
    );
    assert_eq!(codes(&text), []);
    let typo = text.replacen(&format!("-> {long}"), &format!("-> {long}y"), 1);
    assert_eq!(codes(&typo), [Code::E0101]);
}

#[test]
fn a_ten_megabyte_spec_checks() {
    let text = synthetic_spec(78_000);
    assert!(text.len() >= 10 * 1024 * 1024, "{} bytes", text.len());
    let report = check(&SourceFile::new("big.choreo", text));
    assert!(report.diagnostics.is_empty());
    assert_eq!(report.spec.unwrap().reactions.len(), 78_003);
}

#[test]
fn a_directory_is_not_a_spec() {
    // The CLI reads files; the library's `check_bytes` never sees a
    // directory. `tests/cli.rs` covers the exit status; here, reading one
    // fails cleanly in the standard library, which is what the CLI relies on.
    assert!(std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR"))).is_err());
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases");
    let mut files = Vec::new();
    for group in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir.join(group)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "choreo") {
                files.push(std::fs::read(path).unwrap());
            }
        }
    }
    files.sort();
    files
}

/// A byte edit: overwrite, insert or delete at a position (taken modulo the
/// length), with a byte drawn mostly from the characters that matter to the
/// grammar.
#[derive(Debug, Clone)]
enum Edit {
    Overwrite(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"{}()<>[]@/*\"\\,:|&+-?=\n ;#_0aZ\xff\xc3".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Overwrite(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_corpus_specs_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let files = corpus();
        let mut bytes = which.get(&files).clone();
        for e in edits {
            let len = bytes.len().max(1);
            match e {
                Edit::Overwrite(i, b) if !bytes.is_empty() => bytes[i % len] = b,
                Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Edit::Delete(i) if !bytes.is_empty() => { bytes.remove(i % len); }
                _ => {}
            }
        }
        let (file, report) = check_bytes("mutated.choreo", bytes);
        // Every diagnostic points inside the file and renders.
        for d in &report.diagnostics {
            prop_assert!(d.primary.span.start() <= file.text().len());
            prop_assert!(!d.message.is_empty());
        }
        let _ = choreo_compiler::diagnostic::render::render_text(&file, &report.diagnostics, choreo_compiler::diagnostic::render::ColorMode::Never);
    }
}
