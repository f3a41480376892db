//! The seed corpus through every target, as the fuzzers start from it:
//! no crash, and each spec goes as far as its `// expect:` line says (a
//! spec with an error is rejected by all three targets; one without is
//! generated and drawn), so that the harness really reaches the back ends.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::{Code, Severity};
use choreo_fuzz::{seed_files, Outcome, Target};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the corpus's `// expect:` line says of a case: rejected when it
/// names a code of an error (E0203 is a warning); examples and other specs
/// must be accepted.
fn expected(path: &Path, text: &str) -> Outcome {
    let first = text.lines().next().unwrap_or_default();
    match first.strip_prefix("// expect:") {
        Some(codes) if codes.split_whitespace().any(is_error) => Outcome::Rejected,
        Some(_) => Outcome::Accepted,
        None => {
            assert!(
                !path.starts_with(root().join("tests/cases")),
                "{} has no `// expect:` line",
                path.display()
            );
            Outcome::Accepted
        }
    }
}

fn is_error(name: &str) -> bool {
    let code = Code::ALL.iter().find(|c| c.as_str() == name);
    code.unwrap_or_else(|| panic!("unknown code `{name}`"))
        .severity()
        == Severity::Error
}

#[test]
fn every_seed_goes_through_every_target_as_far_as_it_should() {
    let files = seed_files(&root()).unwrap();
    let mut accepted = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let want = expected(path, &String::from_utf8_lossy(&bytes));
        for target in Target::ALL {
            let got = target.run(&bytes);
            assert_eq!(got, want, "{target} on {}", path.display());
        }
        accepted += usize::from(want == Outcome::Accepted);
    }
    // Both examples, the keywords spec and the corpus's valid cases.
    assert!(files.len() > 70, "only {} seeds", files.len());
    assert!(accepted > 30, "only {accepted} seeds check clean");
    for example in ["ecommerce/ecommerce", "drone-delivery/drone-delivery"] {
        let path = root().join(format!("examples/{example}.choreo"));
        assert!(files.contains(&path), "{} is not a seed", path.display());
    }
}

#[test]
fn hostile_inputs_are_rejected_on_the_fuzzers_stack() {
    let deep = format!(
        "choreography X {{ key k: uuid type T {{ f: {} }} }}",
        "list<".repeat(100_000)
    );
    let comments = format!("{} choreography X {{ }}", "/*".repeat(100_000));
    let inputs: [&[u8]; 5] = [
        b"",
        b"choreography",
        &[0xff, 0xfe, b'{'],
        deep.as_bytes(),
        comments.as_bytes(),
    ];
    for input in inputs {
        for target in Target::ALL {
            assert_eq!(target.run(input), Outcome::Rejected, "{target}");
        }
    }
}
