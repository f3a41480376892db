//! `choreoc check`.

use crate::input::{self, Color, Format};
use crate::status;
use std::path::PathBuf;

/// Check specs and report problems with their exact place.
///
/// Each FILE is a spec, `-` (standard input), or a directory: every
/// `.choreo` file under it, in path order, skipping hidden and git-ignored
/// files.
///
/// Exit status: 0 when no file has an error (warnings are fine unless
/// --deny-warnings), 1 when a spec has errors, 2 when the command could not
/// run (bad arguments, an unreadable file, a directory without specs).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `.choreo` files or directories to check; `-` reads one spec
    /// from standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format: `text` (like rustc, on stderr) or `json` (one object
    /// per diagnostic and line, on stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Treat warnings as errors (exit status 1 when there is any).
    #[arg(long)]
    deny_warnings: bool,
}

pub fn run(args: Args, color: Color) -> u8 {
    let mut failed = false;
    let mut rejected = false;
    let (mut errors, mut warnings, mut checked) = (0, 0, 0);
    // The codes that made the check fail, for the closing hint.
    let mut failing_codes: Vec<&'static str> = Vec::new();
    for arg in &args.files {
        let paths = if arg.is_dir() {
            let (paths, problems) = input::expand_dir(arg);
            for message in &problems {
                input::fail(message);
                failed = true;
            }
            paths
        } else {
            vec![arg.clone()]
        };
        for path in &paths {
            let (file, report) = match input::check_path(path) {
                Ok(checked) => checked,
                Err(message) => {
                    input::fail(&message);
                    failed = true;
                    continue;
                }
            };
            input::emit(&file, &report.diagnostics, args.format, color);
            checked += 1;
            let (e, w) = report.counts();
            errors += e;
            warnings += w;
            if e > 0 || (args.deny_warnings && w > 0) {
                rejected = true;
            }
            failing_codes.extend(
                report
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error() || args.deny_warnings)
                    .map(|d| d.code.as_str()),
            );
        }
    }
    if args.format == Format::Text && checked > 0 {
        summary(checked, errors, warnings, args.deny_warnings);
        if rejected {
            if let Some(hint) = input::explain_hint(failing_codes) {
                say!("{hint}");
            }
        }
    }
    if failed {
        status::FAILURE
    } else if rejected {
        status::SPEC_ERRORS
    } else {
        status::OK
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn summary(files: usize, errors: usize, warnings: usize, deny_warnings: bool) {
    let checked = plural(files, "file");
    if errors == 0 && warnings == 0 {
        say!("checked {checked}: no problems found");
    } else if errors == 0 && !deny_warnings {
        say!("checked {checked}: {}", plural(warnings, "warning"));
    } else if errors == 0 {
        say!(
            "error: checked {checked}: {} (denied by --deny-warnings)",
            plural(warnings, "warning")
        );
    } else {
        say!(
            "error: checked {checked}: {}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        );
    }
}
