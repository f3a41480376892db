//! `choreoc new`.

use crate::generate;
use crate::input::{self, Color};
use crate::status;
use choreo_compiler::codegen::RuntimeDependency;
use choreo_compiler::{output, scaffold};
use std::path::PathBuf;

/// Scaffold a runnable workspace for a spec.
///
/// DIR gets a crate with one binary per participant and one (`cargo run`)
/// that runs them all in one process on the in-memory broker, sends sample
/// commands and prints each instance as it settles. `build.rs` generates
/// the spec's typed module into OUT_DIR on every build; your code goes in
/// `src/participants/`, one file per participant, each handler marked
/// `TODO(choreo)` and returning a valid outcome.
///
/// Running it again over DIR adds files for new participants and rewrites
/// the files choreoc owns if they still hold what it wrote; it never
/// overwrites a file you changed (it refuses and names it), unless --force.
///
/// Exit status: 0 when the workspace was written, 1 when the spec has
/// errors (nothing is written), 2 when the command could not run.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The `.choreo` file to scaffold from.
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The directory to write (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Depend on choreo-runtime at this path (choreo's `runtime/`) instead
    /// of the published version.
    #[arg(long, value_name = "PATH")]
    runtime_path: Option<PathBuf>,
    /// Build-depend on choreo-compiler at this path (choreo's `compiler/`)
    /// instead of the published version.
    #[arg(long, value_name = "PATH")]
    compiler_path: Option<PathBuf>,
    /// Overwrite files even if they were changed since they were written.
    #[arg(long)]
    force: bool,
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

pub fn run(args: Args) -> u8 {
    let spec = match input::checked_spec(&args.spec, args.color, "workspace written") {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    // The spec was just read and checked; read its text again to copy it.
    let text = match std::fs::read_to_string(&args.spec) {
        Ok(text) => text,
        Err(e) => {
            input::fail(&format!("cannot read `{}`: {e}", args.spec.display()));
            return status::FAILURE;
        }
    };
    let dependency = |path: Option<&std::path::Path>| match path {
        None => Ok(RuntimeDependency::current()),
        Some(p) => generate::runtime_dependency(Some(p)),
    };
    let deps = match (
        dependency(args.runtime_path.as_deref()),
        dependency(args.compiler_path.as_deref()),
    ) {
        (Ok(runtime), Ok(compiler)) => scaffold::Dependencies { runtime, compiler },
        (Err(message), _) | (_, Err(message)) => {
            input::fail(&message);
            return status::FAILURE;
        }
    };
    let files = match scaffold::files(&spec, &text, &deps) {
        Ok(files) => files,
        Err(e) => {
            input::fail(&format!("cannot render the scaffold: {e}"));
            return status::FAILURE;
        }
    };
    let code = generate::report(output::write(&args.dir, &files, args.force), &args.dir);
    if code == status::OK {
        say!("next: cd {} && cargo run", args.dir.display());
    }
    code
}
