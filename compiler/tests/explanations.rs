//! Every code's explanation holds a spec that triggers the code and the same
//! spec fixed; `docs/diagnostics.md` is generated from the explanations.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::checks::CHECKS;
use choreo_compiler::evolution::Rule;
use choreo_compiler::{check, explain::explanation, Code, SourceFile};
use std::path::Path;

fn examples(text: &str) -> Vec<String> {
    text.split("```choreo\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn each_explanation_has_an_example_that_fails_and_a_fix_that_does_not() {
    for &code in Code::ALL {
        let text = explanation(code);
        assert!(
            text.starts_with(&format!("# {code}: ")),
            "{code}: explanation must start with its title"
        );
        let blocks = examples(text);
        assert_eq!(blocks.len(), 2, "{code}: needs an example and a fix");
        let failing = check(&SourceFile::new("example.choreo", blocks[0].clone()));
        assert!(
            failing.diagnostics.iter().any(|d| d.code == code),
            "{code}: the example does not trigger it: {:?}",
            failing.diagnostics
        );
        let fixed = check(&SourceFile::new("fixed.choreo", blocks[1].clone()));
        assert!(
            fixed.diagnostics.is_empty(),
            "{code}: the fix still has diagnostics: {:?}",
            fixed.diagnostics
        );
    }
}

/// The checks' table is the list of codes: each code is reported by
/// exactly one check, as `choreoc explain` lists them.
#[test]
fn every_code_belongs_to_exactly_one_check() {
    let mut in_table: Vec<Code> = CHECKS
        .iter()
        .flat_map(|c| c.codes.iter().copied())
        .collect();
    in_table.sort();
    let mut all = Code::ALL.to_vec();
    all.sort();
    assert_eq!(in_table, all, "the checks' table and the codes differ");
}

/// Every code of the checks' table has its explanation file, and every
/// explanation file is the explanation of a code of the table.
#[test]
fn every_code_of_the_table_has_an_explanation_file_and_no_file_is_left_over() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("explanations");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // The rules of `choreoc diff` are explained beside the codes;
    // compiler/tests/diff.rs checks their before and after.
    let mut expected: Vec<String> = CHECKS
        .iter()
        .flat_map(|c| c.codes.iter().map(|code| format!("{code}.md")))
        .chain(Rule::ALL.iter().map(|rule| format!("{rule}.md")))
        .collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "compiler/explanations/ and the checks' table with the diff rules differ"
    );
    for check in CHECKS {
        for &code in check.codes {
            let path = dir.join(format!("{code}.md"));
            assert_eq!(std::fs::read_to_string(path).unwrap(), explanation(code));
        }
    }
}

/// The whole of `docs/diagnostics.md`, as generated from the explanations.
fn diagnostics_doc() -> String {
    let mut out = String::from(
        "# Diagnostics\n\n\
         <!-- Generated from compiler/explanations/*.md by \
         `CHOREO_UPDATE_DOCS=1 cargo test -p choreo-compiler --test explanations`. -->\n\n\
         Every diagnostic `choreoc check` reports has a stable code. Errors reject \
         the spec; warnings do not, unless `--deny-warnings` is given. \
         `choreoc explain CODE` prints the section below for one code.\n\n\
         | code | severity | meaning |\n|---|---|---|\n",
    );
    for &code in Code::ALL {
        out.push_str(&format!(
            "| [{code}](#{}) | {} | {} |\n",
            code.as_str().to_lowercase(),
            code.severity().as_str(),
            code.summary()
        ));
    }
    for &code in Code::ALL {
        out.push('\n');
        // Section headings one level down, anchored by code.
        let body = explanation(code)
            .replacen("# ", "## ", 1)
            .replace("\n## Example", "\n### Example")
            .replace("\n## Fixed", "\n### Fixed");
        out.push_str(&format!(
            "<a id=\"{}\"></a>\n\n",
            code.as_str().to_lowercase()
        ));
        out.push_str(&body);
    }
    out
}

#[test]
fn docs_diagnostics_md_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md");
    let expected = diagnostics_doc();
    if std::env::var_os("CHOREO_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/diagnostics.md is stale; regenerate it with\n  CHOREO_UPDATE_DOCS=1 cargo test -p choreo-compiler --test explanations"
    );
}
