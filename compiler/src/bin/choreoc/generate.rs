//! `choreoc generate`.

use crate::deps::DepsArg;
use crate::input::{self, Color};
use crate::status;
use choreo_compiler::codegen;
use choreo_compiler::output;
use std::path::PathBuf;

/// Generate a library crate of typed Rust services from a spec
///
/// The crate (`Cargo.toml` and `src/lib.rs`) holds one module named after
/// the choreography in snake_case: a struct per type, command and event, an
/// enum per enum, a trait per participant whose handlers can only return
/// the outcomes the spec declares, the wiring that runs an implementation
/// on any broker of choreo-runtime, a typed way to send each command, and a
/// test fixture per participant. See docs/codegen.md.
///
/// The spec is checked first: a spec with errors gets the same diagnostics
/// as `choreoc check` and nothing is written. Running it again regenerates
/// the files; a file changed since it was generated is never overwritten
/// (the command refuses and names it) unless --force is given.
///
/// choreo-runtime comes from the checkout choreoc was built from, if any,
/// else from crates.io; --deps chooses (the choice is printed).
///
/// Exit status: 0 when the crate was written, 1 when the spec has errors,
/// 2 when the command could not run (bad arguments, an unreadable spec,
/// files it refuses to overwrite, an unwritable directory).
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The `.choreo` file to generate from; `-` reads it from standard input.
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The directory of the crate to write (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    deps: DepsArg,
    /// Also generate the HTTP ingress of the spec's `@http` commands
    /// (`pub mod http`, an axum router; the crate then uses choreo-runtime's
    /// `http` feature).
    #[arg(long)]
    http: bool,
    /// Overwrite files even if they were changed since they were generated.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args, color: Color) -> u8 {
    let spec = match input::checked_spec(&args.spec, color, "crate written") {
        Ok(accepted) => accepted.spec,
        Err(code) => return code,
    };
    let deps = args.deps.resolve();
    let options = codegen::Options { http: args.http };
    let files = codegen::crate_files_with(&spec, &deps, options);
    report(output::write(&args.out, &files, args.force), &args.out)
}

/// Prints what a write did; the exit status.
pub fn report(
    result: Result<output::WriteReport, output::WriteError>,
    dir: &std::path::Path,
) -> u8 {
    match result {
        Ok(report) => {
            for kept in &report.kept {
                say!("kept {} (yours)", dir.join(kept).display());
            }
            say!(
                "wrote {} file{} to {} ({} unchanged)",
                report.written.len(),
                if report.written.len() == 1 { "" } else { "s" },
                dir.display(),
                report.unchanged.len()
            );
            status::OK
        }
        Err(err) => {
            input::fail(&err.to_string());
            status::FAILURE
        }
    }
}
