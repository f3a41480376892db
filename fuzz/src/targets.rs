//! The three targets and what each checks of the compiler's output.

use choreo_compiler::codegen::{self, CrateSource};
use choreo_compiler::diagnostic::render::{json_line, render_text, ColorMode};
use choreo_compiler::diagram::{self, Format, View};
use choreo_compiler::{check_bytes, Diagnostic, SourceFile};
use std::fmt;
use std::str::FromStr;

/// The stack each input runs on. A test harness's threads or a build
/// script (where `choreo!` and build scripts check specs) may have no more;
/// `compiler/tests/robustness.rs` holds the compiler to the same size, so
/// deep nesting that overflows it is a crash here too.
pub const STACK_BYTES: usize = 1024 * 1024;

/// A fuzz target: one of choreoc's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `choreoc check`: the front end (parse, model, checks) and the
    /// rendering of its diagnostics as text and JSON.
    Check,
    /// `choreoc generate --http`: the crate of a spec that checks clean;
    /// the diagnostics of one that does not.
    Generate,
    /// `choreoc diagram`: every view in every format of a spec that checks
    /// clean.
    Diagram,
}

/// How far an input went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The spec has errors: its diagnostics were rendered and nothing
    /// derived from it.
    Rejected,
    /// The spec checked clean (warnings allowed): `check` rendered its
    /// warnings, `generate` made its crate, `diagram` drew it.
    Accepted,
}

impl Target {
    /// Every target, in the order CI runs them.
    pub const ALL: [Target; 3] = [Target::Check, Target::Generate, Target::Diagram];

    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Check => "check",
            Target::Generate => "generate",
            Target::Diagram => "diagram",
        }
    }

    /// Runs the target on one input, on a thread with a stack of
    /// [`STACK_BYTES`]. Panics (so that the fuzzer records a crash) when the
    /// compiler panics or its output is not what it must be.
    pub fn run(self, bytes: &[u8]) -> Outcome {
        let bytes = bytes.to_vec();
        let thread = std::thread::Builder::new()
            .name(format!("fuzz-{self}"))
            .stack_size(STACK_BYTES)
            .spawn(move || self.run_here(bytes));
        match thread {
            Ok(handle) => match handle.join() {
                Ok(outcome) => outcome,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(err) => panic!("cannot start the fuzz thread: {err}"),
        }
    }

    /// Runs the target on the current thread.
    fn run_here(self, bytes: Vec<u8>) -> Outcome {
        match self {
            Target::Check => check(bytes),
            Target::Generate => generate(bytes),
            Target::Diagram => diagram(bytes),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown target `{s}`: the targets are `check`, `generate` and `diagram`")
            })
    }
}

/// `choreoc check`: diagnostics rendered as text (with and without colour)
/// and as JSON lines, each of which must be a JSON object.
fn check(bytes: Vec<u8>) -> Outcome {
    let (file, report) = check_bytes("fuzz.choreo", bytes);
    render_all(&file, &report.diagnostics);
    if report.has_errors() {
        Outcome::Rejected
    } else {
        Outcome::Accepted
    }
}

/// `choreoc generate --http`: a spec with errors gets its diagnostics
/// rendered; a clean one its crate, whose manifest must be TOML and whose
/// source must be Rust (the generator falls back to unformatted tokens
/// when its output does not parse, which would hide such a bug).
fn generate(bytes: Vec<u8>) -> Outcome {
    let (file, report) = check_bytes("fuzz.choreo", bytes);
    let spec = match report.into_checked() {
        Ok((spec, warnings)) => {
            render_text(&file, &warnings, ColorMode::Never);
            spec
        }
        Err(diagnostics) => {
            render_all(&file, &diagnostics);
            return Outcome::Rejected;
        }
    };
    let options = codegen::Options { http: true };
    for generated in codegen::crate_files_with(&spec, &CrateSource::crates_io(), options) {
        let (path, contents) = (&generated.path, &generated.contents);
        if path.ends_with(".rs") {
            if let Err(err) = syn::parse_file(contents) {
                panic!("generated `{path}` is not Rust: {err}\n{contents}");
            }
        } else if path.ends_with(".toml") {
            if let Err(err) = contents.parse::<toml::Table>() {
                panic!("generated `{path}` is not TOML: {err}\n{contents}");
            }
        }
    }
    Outcome::Accepted
}

/// `choreoc diagram`: the flow, sequence and each participant's view (and
/// one of an unknown participant, for its message) in Mermaid, DOT and SVG;
/// every SVG must be well-formed XML.
fn diagram(bytes: Vec<u8>) -> Outcome {
    let (_, report) = check_bytes("fuzz.choreo", bytes);
    let Ok((spec, _)) = report.into_checked() else {
        return Outcome::Rejected;
    };
    let mut views = vec![View::Flow, View::Sequence];
    views.extend(
        spec.participants
            .iter()
            .map(|p| View::Participant(p.name.text.to_string())),
    );
    views.push(View::Participant("NoSuchParticipant_".to_owned()));
    for view in &views {
        for format in Format::ALL {
            match diagram::render(&spec, format, view) {
                Ok(text) if format == Format::Svg => {
                    if let Err(err) = roxmltree::Document::parse(&text) {
                        panic!("the {view} view's SVG is not XML: {err}\n{text}");
                    }
                }
                Ok(_) => {}
                // The two refusals: the sequence view outside Mermaid, and
                // the unknown participant; their messages are made too.
                Err(err) => drop(err.to_string()),
            }
        }
    }
    Outcome::Accepted
}

/// Renders diagnostics as `choreoc check` does in each of its formats.
fn render_all(file: &SourceFile, diagnostics: &[Diagnostic]) {
    render_text(file, diagnostics, ColorMode::Never);
    render_text(file, diagnostics, ColorMode::Always);
    for d in diagnostics {
        let line = json_line(file, d);
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(value) if value.is_object() => {}
            Ok(_) => panic!("a JSON diagnostic is not an object: {line}"),
            Err(err) => panic!("a JSON diagnostic is not JSON: {err}: {line}"),
        }
    }
}
