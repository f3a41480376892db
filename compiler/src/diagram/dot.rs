//! Graphviz DOT of the flow and participant views.

use super::escape::dot_string;
use super::graph::{EdgeKind, Graph, Node, NodeKind};
use super::style::{self, COMPENSATION, EDGE, INK};
use std::fmt::Write;

/// Renders a graph as a top-down DOT digraph.
pub(super) fn render(graph: &Graph) -> String {
    let mut out = String::new();
    let title = format!("{}, {}", graph.title, graph.view);
    // Writing to a String cannot fail; the results are ignored throughout.
    let _ = writeln!(out, "digraph \"{}\" {{", dot_string(&title));
    let mut label = title.clone();
    if !graph.summary.is_empty() {
        label.push('\n');
        label.push_str(&graph.summary);
    }
    let _ = writeln!(
        out,
        "    graph [rankdir=TB, labelloc=t, fontname=\"Helvetica,Arial,sans-serif\", fontsize=16, label=\"{}\", nodesep=0.35, ranksep=0.45];",
        dot_string(&label)
    );
    let _ = writeln!(
        out,
        "    node [fontname=\"Helvetica,Arial,sans-serif\", fontsize=12, fontcolor=\"{INK}\", style=filled, margin=\"0.15,0.06\"];"
    );
    let _ = writeln!(
        out,
        "    edge [fontname=\"Helvetica,Arial,sans-serif\", fontsize=10, color=\"{EDGE}\", arrowsize=0.7];"
    );
    let commands: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Command)
        .map(|n| n.id.as_str())
        .collect();
    if !commands.is_empty() {
        let _ = writeln!(out, "    {{ rank=source; {}; }}", commands.join("; "));
    }
    for node in &graph.nodes {
        let _ = writeln!(out, "    {} [{}];", node.id, attributes(node));
    }
    for edge in &graph.edges {
        let (from, to) = (&graph.nodes[edge.from].id, &graph.nodes[edge.to].id);
        let attrs = match edge.kind {
            EdgeKind::Flow => String::new(),
            EdgeKind::Compensates => format!(
                " [style=dashed, color=\"{COMPENSATION}\", fontcolor=\"{COMPENSATION}\", label=\"compensates\", constraint=false]"
            ),
            EdgeKind::Peer => " [style=dashed]".to_owned(),
        };
        let _ = writeln!(out, "    {from} -> {to}{attrs};");
    }
    out.push_str("}\n");
    out
}

fn attributes(node: &Node) -> String {
    let paint = style::node(node.kind);
    let (shape, extra) = match node.kind {
        NodeKind::Command => ("box", ",rounded,bold"),
        NodeKind::Event(_) => ("box", ",rounded"),
        NodeKind::Reaction { .. } => ("box", ""),
        NodeKind::Decision | NodeKind::FanOut | NodeKind::Join => ("diamond", ""),
        NodeKind::Nothing => ("circle", ""),
        NodeKind::Peer => ("component", ""),
    };
    let dashed = if paint.dashed { ",dashed" } else { "" };
    let mut label = node.label.clone();
    for detail in &node.details {
        label.push('\n');
        label.push_str(detail);
    }
    let mut attrs = format!(
        "shape={shape}, style=\"filled{extra}{dashed}\", fillcolor=\"{}\", color=\"{}\", penwidth={}, label=\"{}\"",
        paint.fill,
        paint.stroke,
        paint.width,
        dot_string(&label)
    );
    if matches!(
        node.kind,
        NodeKind::Decision | NodeKind::FanOut | NodeKind::Join | NodeKind::Nothing
    ) {
        attrs.push_str(", width=0.4, height=0.4, fixedsize=true");
        attrs.push_str(if node.kind == NodeKind::Nothing {
            ", fontsize=9, fontcolor=\"#64748b\""
        } else {
            ", fontsize=14"
        });
    }
    if !node.docs.is_empty() {
        let _ = write!(attrs, ", tooltip=\"{}\"", dot_string(&node.docs));
    }
    attrs
}
