//! `choreoc fmt`.

use crate::input::{self, Color, Format};
use crate::status;
use choreo_compiler::SourceFile;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Write specs in the one canonical layout (docs/language.md,
/// "Formatting").
///
/// Each FILE is rewritten in place when its layout changes, and left
/// untouched otherwise; `-` reads a spec from standard input and writes
/// it formatted to standard output. Comments stay where they were, and
/// the spec means what it meant.
///
/// Exit status: 0 when every file is formatted (with --check: when none
/// would change), 1 with --check when a file would change, 2 when the
/// command could not run (a syntax error, an unreadable or unwritable
/// file); a file with a syntax error is never written.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `.choreo` files to format; `-` reads one spec from standard
    /// input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write nothing: print a unified diff of each file that would
    /// change, and exit with status 1 if any would.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args, color: Color) -> u8 {
    let mut failed = false;
    let mut would_change = false;
    for path in &args.files {
        match one(path, args.check, color) {
            Ok(changed) => would_change |= changed,
            Err(message) => {
                if let Some(message) = message {
                    input::fail(&message);
                }
                failed = true;
            }
        }
    }
    if failed {
        status::FAILURE
    } else if args.check && would_change {
        status::SPEC_ERRORS
    } else {
        status::OK
    }
}

/// Formats one file: whether it changes (or would, with `check`); the
/// error is a message to print, or `None` when diagnostics were shown.
fn one(path: &Path, check: bool, color: Color) -> Result<bool, Option<String>> {
    let stdin = path == Path::new("-");
    let (name, text) = read(path, stdin)?;
    let file = SourceFile::new(name.as_str(), text);
    let formatted = match choreo_compiler::format::format(&file) {
        Ok(formatted) => formatted,
        Err(diagnostics) => {
            input::emit(&file, &diagnostics, Format::Text, color);
            return Err(Some(format!("`{name}` was not formatted")));
        }
    };
    let changed = formatted != file.text();
    if check {
        if changed {
            let diff = similar::TextDiff::from_lines(file.text(), formatted.as_str())
                .unified_diff()
                .header(&name, &name)
                .to_string();
            let _ = std::io::stdout().lock().write_all(diff.as_bytes());
        }
    } else if stdin {
        let _ = std::io::stdout().lock().write_all(formatted.as_bytes());
    } else if changed {
        write_atomically(path, &formatted)
            .map_err(|e| Some(format!("cannot write `{}`: {e}", path.display())))?;
    }
    Ok(changed)
}

fn read(path: &Path, stdin: bool) -> Result<(String, String), Option<String>> {
    let mut bytes = Vec::new();
    let name = if stdin {
        let limit = choreo_compiler::source::MAX_SOURCE_BYTES as u64 + 1;
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Some(format!("cannot read standard input: {e}")))?;
        "<stdin>".to_string()
    } else {
        if path.is_dir() {
            return Err(Some(format!(
                "cannot format `{}`: it is a directory",
                path.display()
            )));
        }
        bytes = std::fs::read(path)
            .map_err(|e| Some(format!("cannot read `{}`: {e}", path.display())))?;
        path.display().to_string()
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok((name, text)),
        Err(err) => {
            // Shown as `check` shows it: the diagnostic at the first bad byte.
            let (file, report) = choreo_compiler::check_bytes(&name, err.into_bytes());
            input::emit(&file, &report.diagnostics, Format::Text, Color::Never);
            Err(Some(format!("`{name}` was not formatted")))
        }
    }
}

/// Replaces `path` with `text` by renaming a file written beside it, so
/// that a reader never sees half a spec and a failed write leaves the
/// spec as it was.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp_name = format!(
        ".{}.choreoc-fmt.{}",
        name.unwrap_or_default(),
        std::process::id()
    );
    let temp = dir.map_or_else(|| PathBuf::from(&temp_name), |d| d.join(&temp_name));
    let result = std::fs::write(&temp, text).and_then(|()| {
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&temp, meta.permissions())?;
        }
        std::fs::rename(&temp, path)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
