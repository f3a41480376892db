//! `choreoc diff`: every pair of `tests/cases/diff/` through the library and
//! the CLI, with snapshots of the text and the JSON; every rule with its
//! pair and its explanation; `--against` on a temporary git repository.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

mod common;

use choreo_compiler::evolution::{compare, Comparison, Level, Rule};
use choreo_compiler::{check, CheckedSpec, SourceFile};
use common::{choreoc, repo, stderr, stdout, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pairs_dir() -> PathBuf {
    repo().join("tests/cases/diff")
}

/// Every pair's directory name, sorted.
fn pairs() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pairs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The checked spec, or `None` when it has errors.
fn checked(name: &str, text: &str) -> Option<CheckedSpec> {
    check(&SourceFile::new(name, text))
        .into_checked()
        .ok()
        .map(|(spec, _)| spec)
}

/// The library's comparison of a pair, or `None` when a side has errors.
/// Each side's first line, `// expect: CODES`, says which diagnostics it
/// has, as in the rest of the corpus (the fuzzers' seeds rely on it).
fn library(pair: &str) -> Option<Comparison> {
    let read = |side: &str| {
        let text = std::fs::read_to_string(pairs_dir().join(pair).join(side)).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// expect:"))
            .unwrap_or_else(|| panic!("{pair}/{side}: no `// expect:` line"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>();
        let report = check(&SourceFile::new(side, text.as_str()));
        let codes: Vec<String> = report
            .diagnostics
            .iter()
            .map(|d| d.code.to_string())
            .collect();
        assert_eq!(codes, expected, "{pair}/{side}");
        text
    };
    let old = checked("old.choreo", &read("old.choreo"))?;
    let new = checked("new.choreo", &read("new.choreo"))?;
    Some(compare(&old, &new))
}

/// choreoc run from the pairs' directory, so that file names in the output
/// are the same on every machine.
fn choreoc_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_choreoc"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

#[test]
fn every_pair_gives_its_rule_its_exit_status_and_its_snapshots() {
    let dir = pairs_dir();
    for pair in pairs() {
        let (old, new) = (format!("{pair}/old.choreo"), format!("{pair}/new.choreo"));
        let comparison = library(&pair);
        let expected = match &comparison {
            None => 2,
            Some(c) if c.fails() => 1,
            Some(_) => 0,
        };
        if let Ok(rule) = pair.parse::<Rule>() {
            let c = comparison.as_ref().expect("a rule's pair checks clean");
            assert!(
                c.findings.iter().any(|f| f.rule == rule),
                "{pair}: the pair does not show its rule: {:?}",
                c.findings
            );
            // A breaking rule's pair fails unless it moves the wire types.
            if rule.level() == Level::Breaking && !c.moves_wire_types() {
                assert_eq!(expected, 1, "{pair}");
            }
        }

        let text = choreoc_in(&dir, &["diff", "--color", "never", &old, &new]);
        assert_eq!(
            text.status.code(),
            Some(expected),
            "{pair}: {}",
            stderr(&text)
        );
        assert!(text.stdout.is_empty(), "{pair}: text goes to stderr");
        insta::assert_snapshot!(format!("diff_{pair}.text"), stderr(&text));

        let json = choreoc_in(&dir, &["diff", "--format", "json", &old, &new]);
        assert_eq!(
            json.status.code(),
            Some(expected),
            "{pair}: {}",
            stderr(&json)
        );
        let Some(c) = comparison else {
            assert!(json.stdout.is_empty(), "{pair}: no JSON for bad input");
            assert!(stderr(&json).contains("cannot compare"), "{pair}");
            continue;
        };
        let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let rules: Vec<&str> = value["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        let expected_rules: Vec<&str> = c.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, expected_rules, "{pair}");
        assert_eq!(value["summary"]["fails"], c.fails(), "{pair}");
        insta::assert_snapshot!(format!("diff_{pair}.json"), stdout(&json));
    }
}

#[test]
fn json_spans_name_both_files_with_lines_columns_and_bytes() {
    let dir = pairs_dir();
    let out = choreoc_in(
        &dir,
        &[
            "diff",
            "--format",
            "json",
            "FIELD_TYPE_CHANGED/old.choreo",
            "FIELD_TYPE_CHANGED/new.choreo",
        ],
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["format"], 1);
    let finding = &value["findings"][0];
    assert_eq!(finding["rule"], "FIELD_TYPE_CHANGED");
    assert_eq!(finding["level"], "breaking");
    assert_eq!(finding["allowed"], false);
    for (side, ty) in [("old", "u32"), ("new", "u64")] {
        let span = &finding[side];
        assert_eq!(span["file"], format!("FIELD_TYPE_CHANGED/{side}.choreo"));
        let text =
            std::fs::read_to_string(dir.join(format!("FIELD_TYPE_CHANGED/{side}.choreo"))).unwrap();
        let (start, end) = (
            span["start"].as_u64().unwrap() as usize,
            span["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(&text[start..end], ty, "{side}");
        let line = text
            .lines()
            .nth(span["line"].as_u64().unwrap() as usize - 1)
            .unwrap();
        let column = span["column"].as_u64().unwrap() as usize;
        assert!(line[column - 1..].starts_with(ty), "{side}: {line}");
    }
    assert_eq!(value["old"]["version"], "1.0.0");
    assert_eq!(value["new"]["wire_prefix"], "Shop.v1.");
    assert_eq!(value["summary"]["breaking"], 2);
}

/// The `Before` and `After` specs of an explanation.
fn before_and_after(text: &str) -> (String, String) {
    let block = |heading: &str| {
        let rest = text.split(heading).nth(1).unwrap_or_default();
        let code = rest.split("```choreo\n").nth(1).unwrap_or_default();
        code.split("```").next().unwrap_or_default().to_string()
    };
    (block("## Before\n"), block("## After\n"))
}

#[test]
fn every_rule_has_a_pair_and_an_explanation_whose_before_and_after_show_it() {
    let pairs = pairs();
    for &rule in Rule::ALL {
        assert!(
            pairs.contains(&rule.to_string()),
            "{rule}: no pair in tests/cases/diff"
        );
        let text = rule.explanation();
        assert!(
            text.starts_with(&format!(
                "# {rule}: {}\n\nLevel: {}.",
                rule.summary(),
                rule.level()
            )),
            "{rule}: the explanation must start with its title and level"
        );
        let explained = choreo_compiler::explain::lookup(rule.as_str());
        assert_eq!(explained, Ok(text));
        let (before, after) = before_and_after(text);
        let old = checked("before.choreo", &before)
            .unwrap_or_else(|| panic!("{rule}: before has errors"));
        let new =
            checked("after.choreo", &after).unwrap_or_else(|| panic!("{rule}: after has errors"));
        let c = compare(&old, &new);
        assert!(
            c.findings.iter().any(|f| f.rule == rule),
            "{rule}: its before and after do not show it: {:?}",
            c.findings
        );
    }
}

#[test]
fn explain_knows_every_rule_and_suggests_a_near_miss() {
    let out = choreoc(&["explain", "enum_variant_added"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("# ENUM_VARIANT_ADDED: "));
    let out = choreoc(&["explain", "ENUM_VARIANT_ADDD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `ENUM_VARIANT_ADDED`?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn wrong_arguments_and_unreadable_files_exit_2() {
    let dir = pairs_dir();
    let one = "FIELD_REMOVED/old.choreo";
    let out = choreoc_in(&dir, &["diff", one]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("give the OLD and the NEW spec"),
        "{}",
        stderr(&out)
    );
    let out = choreoc_in(&dir, &["diff", "--against", "HEAD", one, one]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("give one SPEC"), "{}", stderr(&out));
    let out = choreoc_in(&dir, &["diff", "--against", "HEAD", "missing.choreo"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).matches("cannot read `missing.choreo`").count(),
        1
    );
    let out = choreoc_in(&dir, &["diff", one, "missing.choreo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read `missing.choreo`"),
        "{}",
        stderr(&out)
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=choreo",
            "-c",
            "user.email=choreo@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

#[test]
fn against_reads_the_old_spec_from_a_git_revision() {
    let root = temp_dir("diff-against");
    let specs = root.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let pair = pairs_dir().join("FIELD_REMOVED");
    std::fs::copy(pair.join("old.choreo"), specs.join("shop.choreo")).unwrap();
    git(&root, &["init", "--quiet"]);
    git(&root, &["add", "."]);
    git(&root, &["commit", "--quiet", "-m", "shop"]);
    std::fs::copy(pair.join("new.choreo"), specs.join("shop.choreo")).unwrap();

    // From the spec's own directory, and from elsewhere with a path.
    let out = choreoc_in(
        &specs,
        &[
            "diff",
            "--color",
            "never",
            "--against",
            "HEAD",
            "shop.choreo",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("error[FIELD_REMOVED]"), "{text}");
    assert!(text.contains("┌─ HEAD:specs/shop.choreo:"), "{text}");
    let spec = specs.join("shop.choreo").display().to_string();
    let out = choreoc(&["diff", "--format", "json", "--against", "main", &spec]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["old"]["file"], "main:specs/shop.choreo");

    // The committed spec against itself: nothing changes.
    git(&root, &["commit", "--quiet", "-am", "shop without city"]);
    let out = choreoc_in(&specs, &["diff", "--against", "HEAD", "shop.choreo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = choreoc_in(&specs, &["diff", "--against", "HEAD~1", "shop.choreo"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let out = choreoc_in(
        &specs,
        &["diff", "--against", "no-such-branch", "shop.choreo"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown git revision `no-such-branch`"),
        "{}",
        stderr(&out)
    );
    let out = choreoc_in(&specs, &["diff", "--against", "--all", "shop.choreo"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    std::fs::copy(specs.join("shop.choreo"), specs.join("new.choreo")).unwrap();
    let out = choreoc_in(&specs, &["diff", "--against", "HEAD", "new.choreo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`specs/new.choreo` does not exist at `HEAD`"),
        "{}",
        stderr(&out)
    );

    let outside = temp_dir("diff-no-repo");
    std::fs::copy(pair.join("old.choreo"), outside.join("shop.choreo")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_choreoc"))
        .args(["diff", "--against", "HEAD", "shop.choreo"])
        .current_dir(&outside)
        // Stop git's search for a repository at the temporary directory,
        // in case the machine's temporary directory sits inside one.
        .env("GIT_CEILING_DIRECTORIES", outside.parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not in a git repository"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn docs_evolution_md_lists_every_rule_with_its_level() {
    let doc = std::fs::read_to_string(repo().join("docs/evolution.md")).unwrap();
    for &rule in Rule::ALL {
        let row = format!("| `{rule}` | {} |", rule.level());
        assert!(doc.contains(&row), "docs/evolution.md lacks `{row}`");
    }
}
