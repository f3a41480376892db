//! `choreoc diff`: what a change of spec does to a rolling deployment.

mod git;
mod render;

use crate::input::{self, Color, Format};
use crate::status;
use choreo_compiler::evolution::{self, Comparison};
use choreo_compiler::{CheckedSpec, Diagnostic, Report, SourceFile};
use std::path::PathBuf;

/// Compare two versions of a spec: what the change does to a rolling
/// deployment, where old and new services run side by side and old events
/// are still in flight.
///
/// Each finding has a stable rule id (`choreoc explain RULE_ID`) and a
/// level, breaking or safe, and points into both specs. A new major
/// `version` moves every wire type, so old and new services share no
/// event: breaking findings are then listed as allowed. See
/// docs/evolution.md.
///
/// Exit status: 0 when nothing breaks (or a new major version allows it),
/// 1 when a change breaks a rolling deployment, 2 when the command could
/// not run (an unreadable file, a spec with errors, an unknown git
/// revision).
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "choreoc diff [OPTIONS] OLD NEW\n       choreoc diff [OPTIONS] --against GIT_REV SPEC"
)]
pub struct Args {
    /// The OLD and the NEW spec; with `--against`, the one SPEC to compare
    /// with its committed version.
    #[arg(required = true, num_args = 1..=2, value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// Compare SPEC with its version at this git revision (a branch, tag or
    /// commit, e.g. `origin/main`), read with `git show REV:PATH`.
    #[arg(long, value_name = "GIT_REV")]
    against: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    format: Output,
}

/// How findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// Like rustc, pointing into both specs, on standard error.
    Text,
    /// One JSON object on standard output, as docs/evolution.md describes.
    Json,
}

/// A spec that checked without errors, with its file for rendering.
struct Side {
    file: SourceFile,
    spec: CheckedSpec,
}

pub fn run(args: Args, color: Color) -> u8 {
    let (old, new) = match (&args.against, args.specs.as_slice()) {
        (Some(rev), [spec]) => {
            let old = git::committed(rev, spec).and_then(|(name, bytes)| {
                accept(choreo_compiler::check_bytes(&name, bytes), color)
            });
            (old, read(spec, color))
        }
        (None, [old, new]) => (read(old, color), read(new, color)),
        (Some(_), _) => {
            input::fail("`--against` compares one SPEC with its committed version; give one SPEC");
            return status::FAILURE;
        }
        (None, _) => {
            input::fail("give the OLD and the NEW spec, or one SPEC with `--against GIT_REV`");
            return status::FAILURE;
        }
    };
    // Both sides are read before either failure is shown, so that one run
    // reports every problem.
    let (old, new) = match (old, new) {
        (Ok(old), Ok(new)) => (old, new),
        (old, new) => {
            let mut messages: Vec<String> = [old.err(), new.err()].into_iter().flatten().collect();
            // A missing SPEC with `--against` is the same failure on both
            // sides: say it once.
            messages.dedup();
            for message in &messages {
                input::fail(message);
            }
            return status::FAILURE;
        }
    };
    let comparison = evolution::compare(&old.spec, &new.spec);
    match args.format {
        Output::Text => {
            let text = render::text(&old.file, &new.file, &comparison, color.mode());
            say!("{}", text.trim_end_matches('\n'));
        }
        Output::Json => out!("{}", render::json(&old.file, &new.file, &comparison)),
    }
    exit_status(&comparison)
}

/// 1 when a breaking finding is not allowed by a move of the wire types.
fn exit_status(comparison: &Comparison) -> u8 {
    if comparison.fails() {
        status::SPEC_ERRORS
    } else {
        status::OK
    }
}

fn read(path: &std::path::Path, color: Color) -> Result<Side, String> {
    input::check_path(path).and_then(|checked| accept(checked, color))
}

/// The checked spec; a spec with errors shows them as `check` does and
/// cannot be compared.
fn accept((file, report): (SourceFile, Report), color: Color) -> Result<Side, String> {
    match report.into_checked() {
        Ok((spec, _warnings)) => Ok(Side { file, spec }),
        Err(diagnostics) => {
            input::emit(&file, &diagnostics, Format::Text, color);
            let errors = diagnostics
                .iter()
                .filter(|d| Diagnostic::is_error(d))
                .count();
            let plural = if errors == 1 { "error" } else { "errors" };
            Err(format!(
                "cannot compare `{}`: the spec has {errors} {plural}",
                file.name()
            ))
        }
    }
}
