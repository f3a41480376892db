//! The habits people expect of a command-line tool, in choreoc: shell
//! completions, manual pages, checking a directory, `--color` beside
//! `NO_COLOR`, a top-level help that says what it is for, a failing check
//! that points at `choreoc explain`, and `--deps` for where generated
//! crates get choreo's crates from.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

mod common;

use common::{case, choreoc, repo, stderr, stdout, temp_dir};
use std::path::Path;
use std::process::Command;

const SUBCOMMANDS: &[&str] = &[
    "check",
    "diagram",
    "diff",
    "explain",
    "fmt",
    "generate",
    "new",
    "completions",
    "man",
];

fn example() -> String {
    common::example("ecommerce")
}

/// Whether `name` is on the PATH. A missing tool skips its test with a
/// message, unless `CHOREO_REQUIRE_TOOLS=1` (as `.ci/run` sets it, having
/// installed them) makes it a failure.
fn has_program(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CHOREO_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "`{name}` is missing, and CHOREO_REQUIRE_TOOLS=1 requires it (see .ci/run)"
        );
        eprintln!(
            "SKIPPED: `{name}` is missing; set CHOREO_REQUIRE_TOOLS=1 to make this a failure"
        );
    }
    found
}

// ---- completions ----

#[test]
fn completions_are_printed_for_each_shell_and_name_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = choreoc(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for command in SUBCOMMANDS {
            assert!(script.contains(command), "{shell} lacks `{command}`");
        }
        // fish names options without their dashes.
        for option in ["deny-warnings", "deps", "color"] {
            assert!(script.contains(option), "{shell} lacks `{option}`");
        }
    }
    let out = choreoc(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&out)
    );
}

/// Runs the bash completion function as bash does at a prompt where
/// `words` have been typed; what it offers.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _choreoc choreoc '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword],
        words[cword - 1],
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn the_bash_completions_complete_commands_options_and_values() {
    if !has_program("bash") {
        return;
    }
    let dir = temp_dir("bash");
    let script = dir.join("choreoc.bash");
    std::fs::write(&script, choreoc(&["completions", "bash"]).stdout).unwrap();
    assert_eq!(bash_completes(&script, &["choreoc", "ch"]), ["check"]);
    assert_eq!(
        bash_completes(&script, &["choreoc", "check", "--deny"]),
        ["--deny-warnings"]
    );
    let shells = bash_completes(&script, &["choreoc", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
    let formats = bash_completes(&script, &["choreoc", "check", "--format", ""]);
    assert_eq!(formats, ["text", "json"]);
}

#[test]
fn the_zsh_and_fish_completions_parse_where_those_shells_exist() {
    for (shell, check) in [("zsh", "-n"), ("fish", "--no-execute")] {
        if !has_program(shell) {
            continue;
        }
        let dir = temp_dir(shell);
        let script = dir.join("completions");
        std::fs::write(&script, choreoc(&["completions", shell]).stdout).unwrap();
        let out = Command::new(shell)
            .arg(check)
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
    }
}

// ---- man ----

#[test]
fn man_prints_a_page_and_writes_one_per_command() {
    let out = choreoc(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH choreoc 1"), "{page}");
    assert!(page.contains(".SH NAME"), "{page}");
    assert!(page.contains("event\\-driven choreography"), "{page}");
    for command in SUBCOMMANDS {
        assert!(page.contains(command), "the page lacks `{command}`");
    }

    let dir = temp_dir("man").join("man1");
    let out = choreoc(&["man", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("wrote the manual pages"));
    let mut pages = vec!["choreoc.1".to_string()];
    pages.extend(SUBCOMMANDS.iter().map(|c| format!("choreoc-{c}.1")));
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH choreoc"), "{page}: {text}");
    }
    let check = std::fs::read_to_string(dir.join("choreoc-check.1")).unwrap();
    assert!(check.contains("deny\\-warnings"), "{check}");

    // A file where the directory should be is an error, not a panic.
    let file = temp_dir("man-file").join("taken");
    std::fs::write(&file, "").unwrap();
    let out = choreoc(&["man", "--out", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("error: cannot"), "{}", stderr(&out));
}

#[test]
fn the_manual_pages_render_without_warnings_where_groff_exists() {
    if !has_program("groff") {
        return;
    }
    let dir = temp_dir("groff");
    choreoc(&["man", "--out", dir.to_str().unwrap()]);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", path.display());
        assert!(
            out.stderr.is_empty(),
            "{}: {}",
            path.display(),
            stderr(&out)
        );
        assert!(stdout(&out).contains("choreoc"), "{}", path.display());
    }
}

// ---- check DIR ----

#[test]
fn check_dir_checks_every_spec_under_it_in_path_order() {
    let dir = temp_dir("check-dir");
    let valid = std::fs::read_to_string(example()).unwrap();
    let invalid = std::fs::read_to_string(case("invalid/E0201_unhandled.choreo")).unwrap();
    std::fs::create_dir_all(dir.join("b/deeper")).unwrap();
    std::fs::create_dir_all(dir.join(".hidden")).unwrap();
    std::fs::create_dir_all(dir.join("skipped")).unwrap();
    std::fs::write(dir.join("a.choreo"), &valid).unwrap();
    std::fs::write(dir.join("b/deeper/c.choreo"), &invalid).unwrap();
    std::fs::write(dir.join("b/notes.txt"), "not a spec {").unwrap();
    std::fs::write(dir.join(".hidden/h.choreo"), "garbage {").unwrap();
    std::fs::write(dir.join("skipped/s.choreo"), "garbage {").unwrap();
    // Ignore files as git and ripgrep read them.
    std::fs::write(dir.join(".ignore"), "skipped/\n").unwrap();

    let out = choreoc(&["check", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let files: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["file"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(!files.is_empty());
    assert!(
        files.iter().all(|f| f.ends_with("b/deeper/c.choreo")),
        "{files:?}"
    );

    let out = choreoc(&["check", "--color", "never", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(text.contains("checked 2 files"), "{text}");
    assert!(
        !text.contains("h.choreo") && !text.contains("s.choreo"),
        "{text}"
    );

    // A directory and a file together; the directory's files come in
    // path order wherever it stands.
    let out = choreoc(&[
        "check",
        dir.join("b").to_str().unwrap(),
        dir.join("a.choreo").to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("checked 2 files"), "{}", stderr(&out));

    // The examples directory holds two clean specs.
    let examples = repo().join("examples");
    let out = choreoc(&["check", examples.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("checked 2 files: no problems found"));
}

#[test]
fn check_dir_without_specs_is_a_clear_error() {
    let dir = temp_dir("empty");
    std::fs::write(dir.join("README.md"), "no specs here").unwrap();
    let out = choreoc(&["check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no `.choreo` file under"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("checked"), "{}", stderr(&out));
}

// ---- --color and NO_COLOR ----

/// Runs choreoc under a pseudo-terminal (util-linux `script`), as a person
/// at a terminal does; its combined output.
fn on_a_terminal(args: &str, no_color: bool) -> Option<String> {
    if !has_program("script") {
        return None;
    }
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_choreoc"));
    let mut script = Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    script.env_remove("NO_COLOR");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    Some(stdout(&script.output().unwrap()))
}

#[test]
fn color_is_chosen_by_the_flag_first_then_no_color_then_the_terminal() {
    let file = case("invalid/E0201_unhandled.choreo");
    let esc = '\u{1b}';
    // Explicit choices, before or after the command.
    assert!(stderr(&choreoc(&["check", "--color", "always", &file])).contains(esc));
    assert!(stderr(&choreoc(&["--color", "always", "check", &file])).contains(esc));
    assert!(stderr(&choreoc(&["--color=always", "check", &file])).contains(esc));
    assert!(!stderr(&choreoc(&["check", "--color", "never", &file])).contains(esc));
    // Not a terminal: none.
    assert!(!stderr(&choreoc(&["check", &file])).contains(esc));
    // The flag wins over NO_COLOR.
    let out = Command::new(env!("CARGO_BIN_EXE_choreoc"))
        .args(["check", "--color", "always", &file])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(stderr(&out).contains(esc));
    // Every command that shows diagnostics takes it.
    for command in ["diagram", "generate", "new"] {
        let mut args = vec![command, &file];
        if command != "diagram" {
            args.push("/nonexistent-out");
        }
        if command == "generate" {
            args.insert(2, "--out");
        }
        args.extend(["--color", "always"]);
        let out = choreoc(&args);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", stderr(&out));
        assert!(stderr(&out).contains(esc), "{command}");
    }
    // clap's own help follows the choice too.
    assert!(stdout(&choreoc(&["--color", "always", "--help"])).contains(esc));
    assert!(!stdout(&choreoc(&["--color", "never", "--help"])).contains(esc));

    // On a terminal, auto colours unless NO_COLOR is set.
    let check = format!("check '{file}'");
    if let (Some(plain), Some(no_color)) =
        (on_a_terminal(&check, false), on_a_terminal(&check, true))
    {
        assert!(plain.contains("error[E0201]"), "{plain}");
        assert!(plain.contains(esc), "auto on a terminal: {plain}");
        assert!(no_color.contains("error[E0201]"), "{no_color}");
        assert!(!no_color.contains(esc), "NO_COLOR: {no_color}");
        let forced = on_a_terminal(&format!("{check} --color never"), false).unwrap();
        assert!(!forced.contains(esc), "{forced}");
    }
}

// ---- top-level help ----

#[test]
fn the_top_level_help_says_what_choreoc_is_for() {
    let out = choreoc(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in [
        "checks an event-driven choreography",
        "events nobody consumes",
        "a handler cannot emit what the spec",
        "Examples:",
        "choreoc explain E0204",
        "NO_COLOR",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    for command in SUBCOMMANDS {
        assert!(
            text.contains(&format!("  {command} ")),
            "`{command}`: {text}"
        );
    }
    // The short help says it in one line, without the long text.
    let short = stdout(&choreoc(&["-h"]));
    assert!(
        short.contains("checks an event-driven choreography"),
        "{short}"
    );
    assert!(!short.contains("events nobody consumes"), "{short}");
    // No command at all: the usage, on standard error, status 2.
    let none = choreoc(&[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("Usage: choreoc"),
        "{}",
        stderr(&none)
    );
}

// ---- the explain hint ----

#[test]
fn a_failing_check_ends_with_a_hint_to_explain_its_codes() {
    let one = choreoc(&["check", &case("invalid/E0101_unknown_names.choreo")]);
    assert_eq!(one.status.code(), Some(1));
    let text = stderr(&one);
    let last = text.lines().last().unwrap();
    assert_eq!(
        last, "for more information about this error, try `choreoc explain E0101`.",
        "{text}"
    );
    // The hint names a code that `explain` knows.
    let explained = choreoc(&["explain", "E0101"]);
    assert_eq!(explained.status.code(), Some(0));

    let two = choreoc(&["check", &case("invalid/E0204_brief_mutation.choreo")]);
    let text = stderr(&two);
    let tail: Vec<&str> = text.lines().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            "for more information about an error, try `choreoc explain E0201`.",
            "some errors have detailed explanations: E0201, E0204.",
        ],
        "{text}"
    );

    // Warnings alone pass, and get no hint; denied, they do.
    let warned = case("invalid/W0301_unused.choreo");
    let out = choreoc(&["check", &warned]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !stderr(&out).contains("choreoc explain"),
        "{}",
        stderr(&out)
    );
    let out = choreoc(&["check", "--deny-warnings", &warned]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("try `choreoc explain W0301`"),
        "{}",
        stderr(&out)
    );
    // JSON output is for programs: nothing beside it.
    let out = choreoc(&[
        "check",
        "--format",
        "json",
        &case("invalid/E0201_unhandled.choreo"),
    ]);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    // A clean check gets none.
    let out = choreoc(&["check", &example()]);
    assert!(
        !stderr(&out).contains("choreoc explain"),
        "{}",
        stderr(&out)
    );
    // Commands that check before they derive end the same way.
    let dir = temp_dir("hint-generate");
    let out = choreoc(&[
        "generate",
        &case("invalid/E0201_unhandled.choreo"),
        "--out",
        dir.join("crate").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .trim_end()
            .ends_with("try `choreoc explain E0201`."),
        "{}",
        stderr(&out)
    );
}

// ---- --deps ----

#[test]
fn new_and_generate_depend_on_the_checkout_choreoc_was_built_from_and_say_so() {
    let dir = temp_dir("deps");
    let root = repo();
    let out = choreoc(&["new", &example(), dir.join("shop").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "choreo's crates come from the checkout at {} (the checkout choreoc was built from",
            root.display()
        )),
        "{}",
        stderr(&out)
    );
    let manifest = std::fs::read_to_string(dir.join("shop/Cargo.toml")).unwrap();
    let runtime = format!(
        "choreo-runtime = {{ path = {:?}, features = [\"nats\", \"redis\", \"postgres\"] }}",
        root.join("runtime").display().to_string()
    );
    let compiler = format!(
        "choreo-compiler = {{ path = {:?}, default-features = false }}",
        root.join("compiler").display().to_string()
    );
    assert!(manifest.contains(&runtime), "{manifest}");
    assert!(manifest.contains(&compiler), "{manifest}");

    let out = choreoc(&[
        "generate",
        &example(),
        "--out",
        dir.join("types").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("the checkout choreoc was built from"));
    let manifest = std::fs::read_to_string(dir.join("types/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!(
            "choreo-runtime = {{ path = {:?} }}",
            root.join("runtime").display().to_string()
        )),
        "{manifest}"
    );
}

#[test]
fn deps_chooses_crates_io_a_path_or_git_and_refuses_anything_else() {
    let dir = temp_dir("deps-choice");
    let version = env!("CARGO_PKG_VERSION");
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            "crates-io",
            &format!("crates.io ({version}) (--deps)"),
            &format!("choreo-runtime = {{ version = \"{version}\", features = [\"nats\", \"redis\", \"postgres\"] }}"),
            &format!("choreo-compiler = {{ version = \"{version}\", default-features = false }}"),
        ),
        (
            "git:https://example.com/choreo.git#0123abc",
            "git https://example.com/choreo.git at 0123abc (--deps)",
            "choreo-runtime = { git = \"https://example.com/choreo.git\", rev = \"0123abc\", features = [\"nats\", \"redis\", \"postgres\"] }",
            "choreo-compiler = { git = \"https://example.com/choreo.git\", rev = \"0123abc\", default-features = false }",
        ),
        (
            &format!("path:{}", repo().join("compiler/..").display()),
            &format!("the checkout at {} (--deps)", repo().display()),
            &format!(
                "choreo-runtime = {{ path = {:?}, features = [\"nats\", \"redis\", \"postgres\"] }}",
                repo().join("runtime").display().to_string()
            ),
            &format!(
                "choreo-compiler = {{ path = {:?}, default-features = false }}",
                repo().join("compiler").display().to_string()
            ),
        ),
    ];
    for (i, (deps, said, runtime, compiler)) in cases.iter().enumerate() {
        let target = dir.join(format!("shop{i}"));
        let out = choreoc(&["new", &example(), target.to_str().unwrap(), "--deps", deps]);
        assert_eq!(out.status.code(), Some(0), "{deps}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("choreo's crates come from {said}")),
            "{deps}: {}",
            stderr(&out)
        );
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(runtime), "{deps}: {manifest}");
        assert!(manifest.contains(compiler), "{deps}: {manifest}");
    }

    for (bad, says) in [
        ("pypi", "is not a source of choreo's crates"),
        ("path:", "names no directory"),
        ("git:", "names no repository URL"),
        (
            "path:/definitely/not/here",
            "cannot use `/definitely/not/here`",
        ),
    ] {
        let target = dir.join("refused");
        for command in ["new", "generate"] {
            let mut args = vec![command.to_string(), example()];
            if command == "generate" {
                args.push("--out".into());
            }
            args.push(target.display().to_string());
            args.push(format!("--deps={bad}"));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = choreoc(&refs);
            assert_eq!(out.status.code(), Some(2), "{command} {bad}");
            assert!(
                stderr(&out).contains(says),
                "{command} {bad}: {}",
                stderr(&out)
            );
            assert!(!target.exists(), "{command} {bad}: nothing may be written");
        }
    }
}
