//! Diagrams of a checked spec: Mermaid, Graphviz DOT and self-contained SVG.
//!
//! Every view is derived from the [`CheckedSpec`] alone, so a diagram is
//! always true to the spec it was made from. Three views exist:
//!
//! - [`View::Flow`]: the whole topology. Commands are entry points, events
//!   flow into the reactions of participants, and gateways make the shape
//!   of each reaction visible: a decision (`|`, exactly one outcome), a
//!   fan-out (`+`, events emitted together) and a join (`&`, waits for all).
//!   Terminal events are marked success or failure, external events and
//!   compensations have their own style.
//! - [`View::Sequence`]: a Mermaid sequence diagram from each command
//!   through to its outcomes, with `alt` for decisions and `par` for
//!   fan-outs.
//! - [`View::Participant`]: one service's view: what it consumes, what it
//!   emits, and which other participants are on the other side.
//!
//! Output is deterministic (declaration order throughout), so it can be
//! snapshot-tested and committed. Every user string that reaches a diagram
//! (doc comments, `@http` paths, names) goes through [`escape`] for the
//! format at hand.
//!
//! ```
//! use choreo_compiler::{check, SourceFile};
//! use choreo_compiler::diagram::{render, Format, View};
//!
//! let file = SourceFile::new(
//!     "shop.choreo",
//!     "choreography Shop {
//!         key id: uuid
//!         command Buy { }
//!         @terminal event Bought { }
//!         participant Till { on Buy -> Bought }
//!     }",
//! );
//! let (spec, _warnings) = check(&file).into_checked().expect("a valid spec");
//! let mermaid = render(&spec, Format::Mermaid, &View::Flow).expect("renders");
//! assert!(mermaid.starts_with("flowchart TD"));
//! ```

mod dot;
pub mod escape;
mod graph;
// Durations as a spec writes them, for the AsyncAPI export too.
pub(crate) use graph::duration;
mod mermaid;
mod sequence;
mod style;
mod svg;

use crate::model::CheckedSpec;
use std::fmt;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Mermaid, as GitHub and GitLab render it in Markdown.
    Mermaid,
    /// Graphviz DOT, for `dot` and every tool that reads it.
    Dot,
    /// A self-contained SVG image, laid out and drawn by choreo itself.
    Svg,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Format; 3] = [Format::Mermaid, Format::Dot, Format::Svg];

    /// The name on the command line: `mermaid`, `dot` or `svg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Mermaid => "mermaid",
            Format::Dot => "dot",
            Format::Svg => "svg",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mermaid => "mmd",
            Format::Dot => "dot",
            Format::Svg => "svg",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a diagram shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum View {
    /// The whole choreography: participants, events, gateways, outcomes.
    Flow,
    /// A sequence diagram from each command through to its outcomes
    /// (Mermaid only).
    Sequence,
    /// One participant, by name: what it consumes and what it emits.
    Participant(String),
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            View::Flow => f.write_str("flow"),
            View::Sequence => f.write_str("sequence"),
            View::Participant(name) => write!(f, "participant {name}"),
        }
    }
}

/// Why a diagram could not be made. Each is a problem with the request, not
/// with the spec (a [`CheckedSpec`] always has a diagram).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiagramError {
    /// The participant view names no participant of the spec.
    #[error("{}", unknown_participant_message(.name, .known, .suggestion.as_deref()))]
    UnknownParticipant {
        /// The name asked for.
        name: String,
        /// The participants the spec has, in declaration order.
        known: Vec<String>,
        /// The closest known name, when the request looks like a typo.
        suggestion: Option<String>,
    },
    /// The view has no rendering in this format.
    #[error("the {view} view is only available as Mermaid: use `--format mermaid`")]
    Unsupported {
        /// The format asked for.
        format: Format,
        /// The view asked for.
        view: View,
    },
}

fn unknown_participant_message(name: &str, known: &[String], suggestion: Option<&str>) -> String {
    let mut message = format!("the spec has no participant `{name}`");
    if let Some(s) = suggestion {
        message.push_str(&format!("; did you mean `{s}`?"));
    }
    if known.is_empty() {
        message.push_str("\n\nthe spec has no participants");
    } else {
        message.push_str(&format!("\n\nthe participants are: {}", known.join(", ")));
    }
    message
}

/// Renders one view of a checked spec in one format.
///
/// # Errors
///
/// [`DiagramError::UnknownParticipant`] when the participant view names no
/// participant of the spec, and [`DiagramError::Unsupported`] for the
/// sequence view in another format than Mermaid.
pub fn render(spec: &CheckedSpec, format: Format, view: &View) -> Result<String, DiagramError> {
    let scope = match view {
        View::Flow => graph::Scope::Flow,
        View::Sequence => {
            return match format {
                Format::Mermaid => Ok(sequence::render(spec)),
                Format::Dot | Format::Svg => Err(DiagramError::Unsupported {
                    format,
                    view: view.clone(),
                }),
            }
        }
        View::Participant(name) => graph::Scope::Participant(find_participant(spec, name)?),
    };
    let graph = graph::Graph::build(spec, scope);
    Ok(match format {
        Format::Mermaid => mermaid::render(&graph),
        Format::Dot => dot::render(&graph),
        Format::Svg => svg::render(&graph),
    })
}

fn find_participant(
    spec: &CheckedSpec,
    name: &str,
) -> Result<crate::model::ParticipantId, DiagramError> {
    spec.find_participant(name).ok_or_else(|| {
        let known: Vec<String> = spec
            .participants
            .iter()
            .map(|p| p.name.text.to_string())
            .collect();
        let suggestion =
            crate::suggest::closest(name, known.iter().map(String::as_str)).map(str::to_owned);
        DiagramError::UnknownParticipant {
            name: name.to_owned(),
            known,
            suggestion,
        }
    })
}
