//! Reading spec files and showing what was found in them.

use choreo_compiler::diagnostic::render::{self, ColorMode};
use choreo_compiler::{CheckedSpec, Diagnostic, Report, SourceFile};
use clap::ValueEnum;
use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable, like rustc, on standard error.
    Text,
    /// One JSON object per diagnostic and line, on standard output.
    Json,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Colour when standard error is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The `--color` choice among raw arguments, before clap has parsed them
/// (clap needs it to colour its own help and usage errors); `auto` when
/// absent or not a known choice, which clap then reports.
pub fn color_in_args(args: impl IntoIterator<Item = OsString>) -> Color {
    let mut args = args.into_iter();
    let mut chosen = Color::Auto;
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = if arg == "--color" {
            args.next()
        } else {
            arg.to_str()
                .and_then(|a| a.strip_prefix("--color="))
                .map(OsString::from)
        };
        if let Some(c) = value
            .as_deref()
            .and_then(|v| v.to_str())
            .and_then(|v| Color::from_str(v, false).ok())
        {
            chosen = c;
        }
    }
    chosen
}

impl Color {
    /// Whether to colour standard error: the explicit choice, else a
    /// terminal without `NO_COLOR` (https://no-color.org: a command-line
    /// flag overrides the variable).
    pub fn mode(self) -> ColorMode {
        match self {
            Color::Always => ColorMode::Always,
            Color::Never => ColorMode::Never,
            Color::Auto => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                if std::io::stderr().is_terminal() && !no_color {
                    ColorMode::Always
                } else {
                    ColorMode::Never
                }
            }
        }
    }
}

/// Reads and checks one spec; an unreadable path is an error message. The
/// path `-` reads standard input, so that a spec can be piped in.
pub fn check_path(path: &Path) -> Result<(SourceFile, Report), String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        // One byte past the limit is enough for the check to refuse it.
        let limit = choreo_compiler::source::MAX_SOURCE_BYTES as u64 + 1;
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(choreo_compiler::check_bytes("<stdin>", bytes));
    }
    if path.is_dir() {
        return Err(format!(
            "cannot read `{}`: it is a directory",
            path.display()
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    Ok(choreo_compiler::check_bytes(
        &path.display().to_string(),
        bytes,
    ))
}

/// Every `*.choreo` file under `dir`, in path order, skipping hidden
/// entries and what git ignores, as ripgrep does (so that copies under
/// `target/` are not checked twice); and a message for each entry that
/// could not be read, or for a directory that holds no spec.
pub fn expand_dir(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let (mut files, mut problems) = (Vec::new(), Vec::new());
    let walk = ignore::WalkBuilder::new(dir)
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    for entry in walk {
        match entry {
            Ok(entry) => {
                let is_file = entry.file_type().is_some_and(|t| t.is_file());
                if is_file && entry.path().extension().is_some_and(|e| e == "choreo") {
                    files.push(entry.into_path());
                }
            }
            Err(e) => problems.push(format!("cannot read under `{}`: {e}", dir.display())),
        }
    }
    if files.is_empty() && problems.is_empty() {
        problems.push(format!(
            "no `.choreo` file under `{}` (hidden and git-ignored files are skipped)",
            dir.display()
        ));
    }
    (files, problems)
}

/// Prints diagnostics of one file in the chosen format.
pub fn emit(file: &SourceFile, diagnostics: &[Diagnostic], format: Format, color: Color) {
    match format {
        Format::Text => {
            let text = render::render_text(file, diagnostics, color.mode());
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
        Format::Json => {
            let mut out = std::io::stdout().lock();
            for d in diagnostics {
                let _ = writeln!(out, "{}", render::json_line(file, d));
            }
        }
    }
}

/// `error: message` on standard error, for failures of the command itself.
pub fn fail(message: &str) {
    say!("error: {message}");
}

/// The closing hint of a failed check: which command explains the codes
/// that made it fail, as rustc points at `rustc --explain`. Nothing when
/// no diagnostic has a code.
pub fn explain_hint<'a>(codes: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut codes: Vec<&str> = codes.into_iter().collect();
    codes.sort_unstable();
    codes.dedup();
    match codes.as_slice() {
        [] => None,
        [one] => Some(format!(
            "for more information about this error, try `choreoc explain {one}`."
        )),
        [first, ..] => Some(format!(
            "some errors have detailed explanations: {}.\nfor more information about an error, try `choreoc explain {first}`.",
            codes.join(", ")
        )),
    }
}

/// A spec that [`checked_spec`] accepted, with the text it was read from.
pub struct Accepted {
    /// The checked spec.
    pub spec: CheckedSpec,
    /// Its source text.
    pub text: String,
}

/// Reads and checks a spec for a command that derives something from it:
/// warnings are shown; errors are shown as `check` shows them, followed by
/// `error: no {what}: …` and the hint to `choreoc explain`. The error
/// value is the exit status to return.
pub fn checked_spec(path: &Path, color: Color, what: &str) -> Result<Accepted, u8> {
    let (file, report) = check_path(path).map_err(|message| {
        fail(&message);
        crate::status::FAILURE
    })?;
    match report.into_checked() {
        Ok((spec, warnings)) => {
            emit(&file, &warnings, Format::Text, color);
            let text = file.text().to_string();
            Ok(Accepted { spec, text })
        }
        Err(diagnostics) => {
            emit(&file, &diagnostics, Format::Text, color);
            let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error()).collect();
            let plural = if errors.len() == 1 { "error" } else { "errors" };
            say!("error: no {what}: the spec has {} {plural}", errors.len());
            if let Some(hint) = explain_hint(errors.iter().map(|d| d.code.as_str())) {
                say!("{hint}");
            }
            Err(crate::status::SPEC_ERRORS)
        }
    }
}
