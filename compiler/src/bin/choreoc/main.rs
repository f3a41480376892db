//! `choreoc`, the choreo command-line tool: checks `.choreo` specs and
//! derives code, diagrams and exports from them.

/// `eprintln!` that drops the line when standard error is closed, as it is
/// under `choreoc check … 2>&1 | head`: `eprintln!` would panic there, and a
/// reader that stopped reading is no failure of the spec or of the command.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that drops the line when standard output is closed; see
/// [`say!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod check;
mod diagram;
mod explain;
mod generate;
mod input;
mod new;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// Checking a large spec allocates millions of small nodes; mimalloc keeps
// freed memory for reuse where glibc's malloc returns it to the kernel and
// page-faults it back in (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The choreo compiler: checks event-driven choreographies and derives
/// typed Rust services, diagrams and exports from them.
#[derive(Debug, Parser)]
#[command(name = "choreoc", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Diagram(diagram::Args),
    Explain(explain::Args),
    Generate(generate::Args),
    New(new::Args),
}

/// Exit statuses, as the design fixes them.
pub(crate) mod status {
    /// No error (warnings allowed unless denied).
    pub const OK: u8 = 0;
    /// The spec has errors.
    pub const SPEC_ERRORS: u8 = 1;
    /// The command itself could not run.
    pub const FAILURE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with success, usage
            // errors to stderr; either way it knows best how to show them.
            let code = if err.use_stderr() {
                status::FAILURE
            } else {
                status::OK
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Diagram(args) => diagram::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Generate(args) => generate::run(args),
        Command::New(args) => new::run(args),
    };
    ExitCode::from(code)
}
