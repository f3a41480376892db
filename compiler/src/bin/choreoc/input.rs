//! Reading spec files and showing what was found in them.

use choreo_compiler::render::{self, ColorMode};
use choreo_compiler::{CheckedSpec, Diagnostic, Report, SourceFile};
use clap::ValueEnum;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

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

impl Color {
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

/// Reads and checks a spec for a command that derives something from it:
/// warnings are shown; errors are shown as `check` shows them, followed by
/// `error: no {what}: …`. The error value is the exit status to return.
pub fn checked_spec(path: &Path, color: Color, what: &str) -> Result<CheckedSpec, u8> {
    let (file, report) = check_path(path).map_err(|message| {
        fail(&message);
        crate::status::FAILURE
    })?;
    match report.into_checked() {
        Ok((spec, warnings)) => {
            emit(&file, &warnings, Format::Text, color);
            Ok(spec)
        }
        Err(diagnostics) => {
            emit(&file, &diagnostics, Format::Text, color);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let plural = if errors == 1 { "error" } else { "errors" };
            say!("error: no {what}: the spec has {errors} {plural}");
            Err(crate::status::SPEC_ERRORS)
        }
    }
}
