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
mod completions;
mod deps;
mod diagram;
mod diff;
mod explain;
mod export;
mod fmt;
mod generate;
mod input;
mod man;
mod new;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use input::Color;
use std::process::ExitCode;

// Checking a large spec allocates millions of small nodes; mimalloc keeps
// freed memory for reuse where glibc's malloc returns it to the kernel and
// page-faults it back in (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `choreoc -h` says choreoc is for.
const SUMMARY: &str = "The choreo compiler: checks an event-driven choreography and derives \
typed services and diagrams from it.";

/// What `choreoc --help` says choreoc is for, before the commands.
const ABOUT: &str = "\
The choreo compiler: checks an event-driven choreography and derives typed \
services and diagrams from it.

A `.choreo` spec lists the events with their payloads, the participants \
(services) and how each reacts, the instance key, the outcomes, \
compensations, retries and joins. choreoc checks it for what breaks such \
systems in production (cycles between services, events nobody consumes, \
instances that never finish, compensations in the wrong order) with \
rustc-style diagnostics. From a checked spec it generates Rust services, \
running on choreo-runtime, in which a handler cannot emit what the spec \
forbids, and draws the flow as Mermaid, Graphviz DOT or SVG.";

/// Typical uses, after the list of commands.
const EXAMPLES: &str = "\
Examples:
  choreoc check shop.choreo                  check a spec (`-` reads standard input)
  choreoc check specs/                       check every .choreo file under a directory
  choreoc explain E0204                      what a diagnostic means, with a fix
  choreoc new shop.choreo shop               a runnable workspace: cd shop && cargo run
  choreoc generate shop.choreo --out types   a library crate of typed services
  choreoc diagram shop.choreo -f svg -o shop.svg
  choreoc fmt shop.choreo                    rewrite a spec in the canonical layout
  choreoc diff --against origin/main shop.choreo
                                             what the change breaks in a rolling deployment
  choreoc export permissions shop.choreo --broker nats -o nats/
  choreoc completions bash > ~/.local/share/bash-completion/completions/choreoc

Environment: NO_COLOR turns colour off when --color is auto.";

/// The command line: a subcommand, and the options every subcommand takes.
#[derive(Debug, Parser)]
#[command(
    name = "choreoc",
    version,
    about = SUMMARY,
    long_about = ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// When to colour output: `auto` colours a terminal unless NO_COLOR is
    /// set.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    color: Color,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Diagram(diagram::Args),
    Diff(diff::Args),
    Explain(explain::Args),
    Export(export::Args),
    Fmt(fmt::Args),
    Generate(generate::Args),
    New(new::Args),
    Completions(completions::Args),
    Man(man::Args),
}

/// Writes `bytes` to standard output; a closed stream drops them, as
/// [`out!`] does.
fn write_stdout(bytes: &[u8]) -> u8 {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(bytes);
    status::OK
}

/// Exit statuses, as `choreoc --help` and the manual pages list them.
pub(crate) mod status {
    /// No error (warnings allowed unless denied).
    pub const OK: u8 = 0;
    /// The spec has errors.
    pub const SPEC_ERRORS: u8 = 1;
    /// The command itself could not run.
    pub const FAILURE: u8 = 2;
}

fn main() -> ExitCode {
    // clap colours its own help and errors by the same choice as the
    // diagnostics, which it can only learn from the arguments themselves;
    // on `auto` it looks at the stream it writes to and at NO_COLOR.
    let color = match input::color_in_args(std::env::args_os()) {
        Color::Always => clap::ColorChoice::Always,
        Color::Never => clap::ColorChoice::Never,
        Color::Auto => clap::ColorChoice::Auto,
    };
    let parsed = Cli::command()
        .color(color)
        .try_get_matches()
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    let cli = match parsed {
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
    let color = cli.color;
    let code = match cli.command {
        Command::Check(args) => check::run(args, color),
        Command::Diagram(args) => diagram::run(args, color),
        Command::Diff(args) => diff::run(args, color),
        Command::Explain(args) => explain::run(args),
        Command::Export(args) => export::run(args, color),
        Command::Fmt(args) => fmt::run(args, color),
        Command::Generate(args) => generate::run(args, color),
        Command::New(args) => new::run(args, color),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    };
    ExitCode::from(code)
}
