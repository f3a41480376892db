//! `choreo_compiler::format` on every spec of the repository and on
//! generated variations of them: formatting is idempotent, keeps the
//! syntax tree (spans aside) and every comment, and refuses a spec that
//! does not parse with its E0001. The layout itself is pinned by the
//! snapshots of the cases under `tests/format/`.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::format::{format, same_tree};
use choreo_compiler::syntax::parse;
use choreo_compiler::{Code, SourceFile};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.choreo` file of the repository outside build output: the
/// corpus under tests/cases, the examples, tests/specs, the chaos specs
/// and the compiler's own test inputs.
fn corpus() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" || name.starts_with("target-") {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "choreo") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo(), &mut files);
    files.sort();
    files
}

/// Checks the properties on one text: `None` when it does not parse (and
/// then formatting refuses it with E0001 only), else the formatted text.
fn check_properties(name: &str, text: &str) -> Option<String> {
    let file = SourceFile::new(name, text);
    let Ok(tree) = parse(&file) else {
        let errors = format(&file).unwrap_err();
        assert!(errors.iter().all(|d| d.code == Code::E0001), "{name}");
        return None;
    };
    let once = format(&file).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let again = parse(&SourceFile::new(name, once.as_str())).unwrap();
    assert!(same_tree(&tree, &again), "{name}: the tree changed");
    let twice = format(&SourceFile::new(name, once.as_str())).unwrap();
    assert_eq!(once, twice, "{name}: not idempotent");
    assert_eq!(
        comment_count(text),
        comment_count(&once),
        "{name}: comments"
    );
    Some(once)
}

/// Comment openers outside strings, roughly: enough to see one lost.
fn comment_count(text: &str) -> usize {
    let mut count = 0;
    let mut in_string = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '/' if !in_string && matches!(chars.peek(), Some('/' | '*')) => {
                count += 1;
                if chars.next() == Some('/') {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    count
}

#[test]
fn every_corpus_spec_keeps_its_tree_and_formats_idempotently() {
    let files = corpus();
    assert!(files.len() > 80, "only {} specs found", files.len());
    let (mut formatted, mut refused) = (0, 0);
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        match check_properties(&path.display().to_string(), &text) {
            Some(_) => formatted += 1,
            None => refused += 1,
        }
    }
    eprintln!("{formatted} specs formatted, {refused} refused with E0001");
    assert!(formatted > 70);
}

#[test]
fn the_examples_are_formatted() {
    for example in ["ecommerce", "drone-delivery"] {
        let path = repo().join(format!("examples/{example}/{example}.choreo"));
        let text = std::fs::read_to_string(&path).unwrap();
        let formatted = format(&SourceFile::new(example, text.as_str())).unwrap();
        assert!(
            formatted == text,
            "`choreoc fmt {}` changes it",
            path.display()
        );
    }
}

#[test]
fn layout_snapshots() {
    let dir = repo().join("compiler/tests/format");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "choreo"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&case).unwrap();
        let formatted = check_properties(&name, &text).unwrap();
        insta::assert_snapshot!(format!("format__{name}"), formatted);
    }
}

/// A corpus spec that parses, read once for every case, and its
/// variation by [`vary`].
fn picked_and_varied(pick: prop::sample::Index, fills: &[String]) -> (&'static str, String) {
    static SPECS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let specs = SPECS.get_or_init(|| {
        corpus()
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|t| parse(&SourceFile::new("t", t.as_str())).is_ok())
            .collect()
    });
    let text = specs[pick.index(specs.len())].as_str();
    (text, vary(text, fills))
}

/// Whitespace or a comment, which may go between two tokens of a line.
fn filler() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ".to_string()),
        Just("  ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\n\n\n".to_string()),
        Just(" /* c */ ".to_string()),
        Just("/* a /* nested */ b */".to_string()),
        Just(" // line\n".to_string()),
        Just("\n// own line\n".to_string()),
    ]
}

/// Whitespace that may go between two tokens of a line. Not a blank
/// line: one between two items is kept, by design.
fn spacing() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ".to_string()),
        Just("  ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just(" \r\n\t".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A corpus spec with comments put between its tokens: it means the
    /// same, and formatting keeps the tree and the comments and is
    /// idempotent.
    #[test]
    fn commented_variations_keep_the_properties(
        pick in any::<prop::sample::Index>(),
        fills in prop::collection::vec(filler(), 64),
    ) {
        let (text, varied) = picked_and_varied(pick, &fills);
        let original = parse(&SourceFile::new("t", text)).unwrap();
        let varied_tree = parse(&SourceFile::new("t", varied.as_str())).unwrap();
        prop_assert!(same_tree(&original, &varied_tree));
        prop_assert!(check_properties("varied", &varied).is_some());
    }

    /// A corpus spec with a stretch cut out and text put in its place
    /// (mostly a spec that does not parse any more): formatting does not
    /// panic, and whatever parses keeps the properties.
    #[test]
    fn damaged_specs_are_refused_or_formatted(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..40,
        put in "[ -~\n]{0,12}",
    ) {
        let (text, _) = picked_and_varied(pick, &[String::new()]);
        let start = at.index(text.len());
        let start = (0..=start).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let end = (start + cut..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        let damaged = format!("{}{put}{}", &text[..start], &text[end..]);
        check_properties("damaged", &damaged);
    }

    /// A corpus spec with other whitespace between its tokens formats
    /// to the very text the spec formats to: one layout.
    #[test]
    fn respaced_variations_format_to_one_layout(
        pick in any::<prop::sample::Index>(),
        fills in prop::collection::vec(spacing(), 64),
    ) {
        let (text, varied) = picked_and_varied(pick, &fills);
        let once = check_properties("t", text).unwrap();
        prop_assert_eq!(check_properties("varied", &varied), Some(once));
    }
}

/// Replaces the single spaces between the tokens of each line with
/// `fills` in turn. Lines with comments or strings are kept, and so are
/// lines with a brace or a comma, where a newline could stand for a
/// missing comma or move a one-line list onto several lines, and
/// attribute lines, where it would separate attributes the layout joins.
fn vary(text: &str, fills: &[String]) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut k = 0;
    for line in text.split_inclusive('\n') {
        let (indent, rest) = line.split_at(line.len() - line.trim_start().len());
        let kept = ["//", "/*", "\"", "{", "}", ","]
            .iter()
            .any(|s| line.contains(s))
            || rest.starts_with('@');
        if kept {
            out.push_str(line);
            continue;
        }
        out.push_str(indent);
        for (i, word) in rest.split(' ').enumerate() {
            if i > 0 {
                out.push_str(&fills[k % fills.len()]);
                k += 1;
            }
            out.push_str(word);
        }
    }
    out
}
