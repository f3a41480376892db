//! The colours and strokes of each kind of node, shared by every format so
//! that a Mermaid, DOT and SVG diagram of one spec look alike.

use super::graph::{LegendItem, NodeKind};

/// How one kind of node is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Paint {
    pub fill: &'static str,
    pub stroke: &'static str,
    /// Stroke width in pixels.
    pub width: &'static str,
    /// Dashed outline.
    pub dashed: bool,
}

const fn paint(
    fill: &'static str,
    stroke: &'static str,
    width: &'static str,
    dashed: bool,
) -> Paint {
    Paint {
        fill,
        stroke,
        width,
        dashed,
    }
}

/// The dash pattern of dashed strokes.
pub(super) const DASH: &str = "5 3";
/// Text colour.
pub(super) const INK: &str = "#1e293b";
/// Secondary text colour (details, legend).
pub(super) const MUTED: &str = "#475569";
/// Colour of flow edges.
pub(super) const EDGE: &str = "#64748b";
/// Colour of compensation edges and outlines.
pub(super) const COMPENSATION: &str = "#c2410c";

/// Pale fills that tell participants apart; their outlines are `STROKES`.
const FILLS: [&str; 8] = [
    "#e0f2fe", "#fef9c3", "#ede9fe", "#ccfbf1", "#fce7f3", "#ecfccb", "#ffedd5", "#e2e8f0",
];
const STROKES: [&str; 8] = [
    "#0369a1", "#a16207", "#6d28d9", "#0f766e", "#be185d", "#4d7c0f", "#c2410c", "#475569",
];

/// The paint of a participant's reactions, by participant index.
pub(super) fn participant(index: usize) -> Paint {
    let i = index % FILLS.len();
    paint(FILLS[i], STROKES[i], "1.5", false)
}

/// The paint of a legend entry, and so of the nodes it stands for.
pub(super) fn legend(item: LegendItem) -> Paint {
    match item {
        LegendItem::Command => paint("#dbeafe", "#1d4ed8", "2", false),
        LegendItem::Event => paint("#ffffff", "#475569", "1.5", false),
        LegendItem::External => paint("#f8fafc", "#475569", "1.5", true),
        LegendItem::Success => paint("#dcfce7", "#15803d", "2.5", false),
        LegendItem::Failure => paint("#fee2e2", "#b91c1c", "2.5", false),
        LegendItem::Reaction => paint("#f1f5f9", "#475569", "1.5", false),
        LegendItem::Compensation => paint("#fff7ed", COMPENSATION, "2", true),
        LegendItem::Decision => paint("#fef3c7", "#b45309", "1.5", false),
        LegendItem::FanOut => paint("#e0e7ff", "#4338ca", "1.5", false),
        LegendItem::Join => paint("#f3e8ff", "#7e22ce", "1.5", false),
        LegendItem::Nothing => paint("#f8fafc", "#94a3b8", "1.5", true),
        LegendItem::Peer => paint("#f1f5f9", "#64748b", "1.5", true),
    }
}

/// The paint of a node: its legend entry's, or its participant's for a
/// reaction (with the compensation outline when it compensates).
pub(super) fn node(kind: NodeKind) -> Paint {
    match kind {
        NodeKind::Reaction {
            participant: p,
            compensation,
        } => {
            let base = participant(p);
            if compensation {
                let c = legend(LegendItem::Compensation);
                paint(base.fill, c.stroke, c.width, c.dashed)
            } else {
                base
            }
        }
        other => legend(other.legend_item()),
    }
}
