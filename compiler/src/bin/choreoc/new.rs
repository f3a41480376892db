//! `choreoc new`.

use crate::deps::DepsArg;
use crate::generate;
use crate::input::{self, Color};
use crate::status;
use choreo_compiler::{output, scaffold};
use std::path::PathBuf;

/// Scaffold a runnable workspace for a spec
///
/// DIR gets a crate with one binary per participant and one (`cargo run`)
/// that runs them all in one process, sends sample commands and prints
/// each instance as it settles. Every binary runs on the in-memory broker,
/// or on NATS or Redis with `--broker URL`. `build.rs` generates
/// the spec's typed module into OUT_DIR on every build; your code goes in
/// `src/participants/`, one file per participant, each handler marked
/// `TODO(choreo)` and returning a valid outcome.
///
/// Running it again over DIR adds files for new participants and rewrites
/// the files choreoc owns if they still hold what it wrote; it never
/// overwrites a file you changed (it refuses and names it), unless --force.
///
/// choreo's crates come from the checkout choreoc was built from, if any,
/// else from crates.io; --deps chooses (the choice is printed).
///
/// Exit status: 0 when the workspace was written, 1 when the spec has
/// errors (nothing is written), 2 when the command could not run.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The `.choreo` file to scaffold from; `-` reads it from standard
    /// input.
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The directory to write (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    deps: DepsArg,
    /// Overwrite files even if they were changed since they were written.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args, color: Color) -> u8 {
    let input::Accepted { spec, text } =
        match input::checked_spec(&args.spec, color, "workspace written") {
            Ok(accepted) => accepted,
            Err(code) => return code,
        };
    let deps = args.deps.resolve();
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
