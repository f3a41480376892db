//! Mermaid flowcharts of the flow and participant views.

use super::escape::{mermaid_line, mermaid_text};
use super::graph::{EdgeKind, Graph, LegendItem, Node, NodeKind};
use super::style::{self, Paint, COMPENSATION, DASH, EDGE};
use std::fmt::Write;

/// Renders a graph as a top-down Mermaid flowchart.
pub(super) fn render(graph: &Graph) -> String {
    let mut out = String::from("flowchart TD\n");
    // Writing to a String cannot fail; the results are ignored throughout.
    let _ = writeln!(
        out,
        "    accTitle: {}",
        mermaid_line(&format!("{}, {}", graph.title, graph.view))
    );
    if !graph.summary.is_empty() {
        let _ = writeln!(out, "    accDescr: {}", mermaid_line(&graph.summary));
    }
    for node in &graph.nodes {
        let _ = writeln!(out, "    {}", shape(node));
    }
    let mut compensations = Vec::new();
    let mut peers = Vec::new();
    for (i, edge) in graph.edges.iter().enumerate() {
        let (from, to) = (&graph.nodes[edge.from].id, &graph.nodes[edge.to].id);
        let arrow = match edge.kind {
            EdgeKind::Flow => "-->",
            EdgeKind::Compensates => {
                compensations.push(i.to_string());
                "-. compensates .->"
            }
            EdgeKind::Peer => {
                peers.push(i.to_string());
                "-.->"
            }
        };
        let _ = writeln!(out, "    {from} {arrow} {to}");
    }
    for item in graph.legend() {
        if item == LegendItem::Reaction {
            continue;
        }
        let _ = writeln!(
            out,
            "    classDef {} {}",
            class(item),
            css(style::legend(item))
        );
    }
    let mut participants: Vec<usize> = graph
        .nodes
        .iter()
        .filter_map(|n| match n.kind {
            NodeKind::Reaction { participant, .. } => Some(participant),
            _ => None,
        })
        .collect();
    participants.sort_unstable();
    participants.dedup();
    for p in participants {
        let _ = writeln!(out, "    classDef p{p} {}", css(style::participant(p)));
    }
    for node in &graph.nodes {
        match node.kind {
            NodeKind::Reaction {
                participant,
                compensation,
            } => {
                let _ = writeln!(out, "    class {} p{participant}", node.id);
                if compensation {
                    let _ = writeln!(
                        out,
                        "    class {} {}",
                        node.id,
                        class(LegendItem::Compensation)
                    );
                }
            }
            kind => {
                let _ = writeln!(out, "    class {} {}", node.id, class(kind.legend_item()));
            }
        }
    }
    if !compensations.is_empty() {
        let _ = writeln!(
            out,
            "    linkStyle {} stroke:{COMPENSATION},stroke-width:1.5px,stroke-dasharray:{DASH}",
            compensations.join(",")
        );
    }
    if !peers.is_empty() {
        let _ = writeln!(
            out,
            "    linkStyle {} stroke:{EDGE},stroke-dasharray:{DASH}",
            peers.join(",")
        );
    }
    out
}

/// The node statement: id, shape and label.
fn shape(node: &Node) -> String {
    let mut label = mermaid_text(&node.label);
    for detail in &node.details {
        label.push_str("<br/><small>");
        label.push_str(&mermaid_text(detail));
        label.push_str("</small>");
    }
    let (open, close) = match node.kind {
        NodeKind::Command => ("[/", "/]"),
        NodeKind::Event(_) => ("([", "])"),
        NodeKind::Reaction { .. } => ("[", "]"),
        NodeKind::Decision | NodeKind::FanOut | NodeKind::Join => ("{", "}"),
        NodeKind::Nothing => ("((", "))"),
        NodeKind::Peer => ("[[", "]]"),
    };
    format!("{}{open}\"{label}\"{close}", node.id)
}

/// The class name of a style.
fn class(item: LegendItem) -> &'static str {
    match item {
        LegendItem::Command => "command",
        LegendItem::Event => "event",
        LegendItem::External => "external",
        LegendItem::Success => "success",
        LegendItem::Failure => "failure",
        LegendItem::Reaction => "reaction",
        LegendItem::Compensation => "compensation",
        LegendItem::Decision => "decision",
        LegendItem::FanOut => "fanout",
        LegendItem::Join => "join",
        LegendItem::Nothing => "nothing",
        LegendItem::Peer => "peer",
    }
}

fn css(paint: Paint) -> String {
    let mut css = format!(
        "fill:{},stroke:{},stroke-width:{}px,color:{}",
        paint.fill,
        paint.stroke,
        paint.width,
        style::INK
    );
    if paint.dashed {
        css.push_str(&format!(",stroke-dasharray:{DASH}"));
    }
    css
}
