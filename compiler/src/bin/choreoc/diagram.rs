//! `choreoc diagram`.

use crate::input::{self, Color};
use crate::status;
use choreo_compiler::diagram::{self, Format, View};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Draw a spec as Mermaid, Graphviz DOT or a self-contained SVG
///
/// The spec is checked first: a spec with errors gets the same diagnostics
/// as `choreoc check` and no diagram. Warnings are shown and the diagram
/// is made.
///
/// Views:
///   flow               every participant, event and outcome (default):
///                      commands are entry points; diamonds mark decisions
///                      (|, exactly one outcome), fan-outs (+, emitted
///                      together) and joins (&, waits for all); terminal
///                      events are green (success) or red (failure);
///                      compensations are dashed orange
///   sequence           a Mermaid sequence diagram from each command to its
///                      outcomes, with alt for decisions and par for
///                      fan-outs (Mermaid only)
///   participant NAME   one participant: what it consumes, what it emits,
///                      and the participants on the other side
///
/// Examples:
///   choreoc diagram shop.choreo --format mermaid
///   choreoc diagram shop.choreo --format svg -o docs/shop.svg
///   choreoc diagram shop.choreo --format dot | dot -Tpng -o shop.png
///   choreoc diagram shop.choreo --view participant Payment
///
/// Exit status: 0 when the diagram was written, 1 when the spec has errors,
/// 2 when the command could not run (bad arguments, an unknown participant,
/// an unreadable spec or an unwritable output file).
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The `.choreo` file to draw; `-` reads it from standard input.
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// Output format. Without it, the extension of `-o` decides (`.mmd`,
    /// `.dot`/`.gv`, `.svg`), and Mermaid is the default.
    #[arg(long, short = 'f', value_enum)]
    format: Option<FormatArg>,
    /// What to draw: `flow`, `sequence`, or `participant NAME`.
    #[arg(long, num_args = 1..=2, value_names = ["VIEW", "NAME"], default_value = "flow")]
    view: Vec<String>,
    /// Write the diagram to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The formats, as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// Mermaid (flowchart, or sequenceDiagram for `--view sequence`).
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// Self-contained SVG.
    Svg,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Mermaid => Format::Mermaid,
            FormatArg::Dot => Format::Dot,
            FormatArg::Svg => Format::Svg,
        }
    }
}

pub fn run(args: Args, color: Color) -> u8 {
    let view = match parse_view(&args.view) {
        Ok(view) => view,
        Err(message) => {
            input::fail(&message);
            return status::FAILURE;
        }
    };
    let format = args
        .format
        .map(Format::from)
        .or_else(|| args.output.as_deref().and_then(format_of))
        .unwrap_or(Format::Mermaid);
    let spec = match input::checked_spec(&args.spec, color, "diagram") {
        Ok(accepted) => accepted.spec,
        Err(code) => return code,
    };
    let text = match diagram::render(&spec, format, &view) {
        Ok(text) => text,
        Err(err) => {
            input::fail(&err.to_string());
            return status::FAILURE;
        }
    };
    match &args.output {
        Some(path) => match std::fs::write(path, text.as_bytes()) {
            Ok(()) => {
                say!("wrote {} ({view}, {format})", path.display());
                status::OK
            }
            Err(err) => {
                input::fail(&format!("cannot write `{}`: {err}", path.display()));
                status::FAILURE
            }
        },
        None => {
            // A closed pipe (`| head`) is the reader's choice, not a failure.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            status::OK
        }
    }
}

fn parse_view(words: &[String]) -> Result<View, String> {
    match words {
        [view] if view == "flow" => Ok(View::Flow),
        [view] if view == "sequence" => Ok(View::Sequence),
        [view] if view == "participant" => Err(
            "`--view participant` needs the participant's name: `--view participant NAME`"
                .to_owned(),
        ),
        [view, name] if view == "participant" => Ok(View::Participant(name.clone())),
        [view, extra] if view == "flow" || view == "sequence" => Err(format!(
            "`--view {view}` takes no name (`{extra}` given); only `--view participant NAME` does"
        )),
        [view, ..] => Err(format!(
            "unknown view `{view}`: the views are `flow`, `sequence` and `participant NAME`"
        )),
        [] => Ok(View::Flow),
    }
}

/// The format an output file's extension asks for.
fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "mmd" | "mermaid" => Some(Format::Mermaid),
        "dot" | "gv" => Some(Format::Dot),
        "svg" => Some(Format::Svg),
        _ => None,
    }
}
