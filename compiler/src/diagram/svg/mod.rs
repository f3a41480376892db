//! Self-contained SVG of the flow and participant views: laid out by
//! [`layout`], drawn with plain SVG shapes and presentation attributes (no
//! script, no external stylesheet or font), so any browser or image tool
//! shows it as it is.

mod layout;
mod text;

use super::escape::xml;
use super::graph::{EdgeKind, EventStyle, Graph, LegendItem, Node, NodeKind};
use super::style::{self, Paint, COMPENSATION, DASH, EDGE, INK, MUTED};
use layout::Point;
use std::fmt::Write;

const FONT: &str = "Helvetica, Arial, 'Liberation Sans', sans-serif";
const MARGIN: f64 = 24.0;
const LABEL_SIZE: f64 = 13.0;
const DETAIL_SIZE: f64 = 10.5;
const LABEL_LINE: f64 = 16.0;
const DETAIL_LINE: f64 = 13.0;
const PADDING_X: f64 = 14.0;
const PADDING_Y: f64 = 8.0;
const GATEWAY: f64 = 30.0;
const LEGEND_ROW: f64 = 24.0;
const LEGEND_GAP: f64 = 48.0;

/// Renders a graph as an SVG document.
pub(super) fn render(graph: &Graph) -> String {
    let sizes: Vec<(f64, f64)> = graph.nodes.iter().map(size).collect();
    let input = layout::Input {
        spread: graph
            .nodes
            .iter()
            .zip(&sizes)
            .map(|(n, s)| {
                if is_point_shape(n.kind) {
                    0.0
                } else {
                    s.0 * 0.6
                }
            })
            .collect(),
        sizes,
        top: graph
            .nodes
            .iter()
            .map(|n| n.kind == NodeKind::Command)
            .collect(),
        bottom: graph
            .nodes
            .iter()
            .map(|n| {
                matches!(
                    n.kind,
                    NodeKind::Event(EventStyle::Success | EventStyle::Failure)
                )
            })
            .collect(),
        // A compensation points back up at an earlier event: laid out the
        // other way round so that it does not turn the flow upside down.
        edges: graph
            .edges
            .iter()
            .map(|e| match e.kind {
                EdgeKind::Compensates => (e.to, e.from),
                EdgeKind::Flow | EdgeKind::Peer => (e.from, e.to),
            })
            .collect(),
    };
    let laid = layout::layout(&input);

    let title = format!("{}, {}", graph.title, graph.view);
    let summary = wrap(
        &graph.summary,
        ((laid.width + 300.0) / 6.5).max(60.0) as usize,
        3,
    );
    let header = 30.0 + 16.0 * summary.len() as f64 + 18.0;
    let legend = graph.legend();
    let legend_width = legend
        .iter()
        .map(|i| text::width(i.description(), 11.5, false))
        .fold(text::width("Legend", 12.0, true), f64::max)
        + 76.0;
    let legend_height = 34.0 + LEGEND_ROW * legend.len() as f64 + 8.0;
    let (ox, oy) = (MARGIN, MARGIN + header);
    let legend_x = ox + laid.width + LEGEND_GAP;
    let width = legend_x + legend_width + MARGIN;
    let height = oy + laid.height.max(legend_height) + MARGIN;

    let mut svg = Svg::default();
    svg.open(width, height, &title, &graph.summary);
    svg.text(MARGIN, MARGIN + 14.0, 18.0, true, INK, &title);
    for (i, line) in summary.iter().enumerate() {
        svg.text(
            MARGIN,
            MARGIN + 36.0 + 16.0 * i as f64,
            12.0,
            false,
            MUTED,
            line,
        );
    }

    svg.raw("<g class=\"edges\" fill=\"none\">\n");
    for (edge, route) in graph.edges.iter().zip(&laid.routes) {
        let mut points: Vec<Point> = route.iter().map(|&(x, y)| (x + ox, y + oy)).collect();
        if edge.kind == EdgeKind::Compensates {
            points.reverse();
        }
        let class = match edge.kind {
            EdgeKind::Flow => "flow",
            EdgeKind::Compensates => "compensates",
            EdgeKind::Peer => "peer",
        };
        // The ends by node id, so that a page showing the diagram can tell
        // which nodes an edge joins (the monitor highlights an instance's
        // path); ids are `[A-Za-z0-9_]`, escaped all the same.
        let id = |i: usize| graph.nodes.get(i).map_or("", |n| n.id.as_str());
        svg.edge(class, &points, id(edge.from), id(edge.to));
    }
    svg.raw("</g>\n<g class=\"nodes\">\n");
    for (node, &(cx, cy)) in graph.nodes.iter().zip(&laid.centers) {
        let (w, h) = size(node);
        svg.node(node, cx + ox, cy + oy, w, h);
    }
    svg.raw("</g>\n");
    svg.legend(legend_x, oy, legend_width, legend_height, &legend);
    svg.raw("</svg>\n");
    svg.out
}

/// Shapes whose top and bottom are a single point.
fn is_point_shape(kind: NodeKind) -> bool {
    matches!(
        kind,
        NodeKind::Decision | NodeKind::FanOut | NodeKind::Join | NodeKind::Nothing
    )
}

fn is_bold(kind: NodeKind) -> bool {
    matches!(
        kind,
        NodeKind::Command | NodeKind::Reaction { .. } | NodeKind::Peer
    )
}

/// The size of a node's box.
fn size(node: &Node) -> (f64, f64) {
    if is_point_shape(node.kind) {
        return (GATEWAY, GATEWAY);
    }
    let text_width = node
        .details
        .iter()
        .map(|d| text::width(d, DETAIL_SIZE, false))
        .fold(
            text::width(&node.label, LABEL_SIZE, is_bold(node.kind)),
            f64::max,
        );
    let rounded = matches!(node.kind, NodeKind::Event(_));
    let padding = if rounded { PADDING_X + 6.0 } else { PADDING_X };
    let width = (text_width + 2.0 * padding).max(72.0).ceil();
    let height = 2.0 * PADDING_Y + LABEL_LINE + DETAIL_LINE * node.details.len() as f64;
    (width, height)
}

/// Splits text into at most `lines` lines of about `columns` characters.
fn wrap(text: &str, columns: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > columns {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    if out.len() > lines {
        out.truncate(lines);
        if let Some(last) = out.last_mut() {
            last.push_str(" …");
        }
    }
    out
}

/// A number for an attribute: at most one decimal, no trailing `.0`.
fn num(v: f64) -> String {
    let rounded = (v * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

fn paint_attrs(paint: Paint) -> String {
    let mut attrs = format!(
        "fill=\"{}\" stroke=\"{}\" stroke-width=\"{}\"",
        paint.fill, paint.stroke, paint.width
    );
    if paint.dashed {
        attrs.push_str(&format!(" stroke-dasharray=\"{DASH}\""));
    }
    attrs
}

#[derive(Default)]
struct Svg {
    out: String,
}

impl Svg {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn open(&mut self, width: f64, height: f64, title: &str, summary: &str) {
        let (w, h) = (num(width.ceil()), num(height.ceil()));
        // Writing to a String cannot fail; the results are ignored throughout.
        let _ = writeln!(
            self.out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT}\" role=\"img\">"
        );
        let _ = writeln!(self.out, "<title>{}</title>", xml(title));
        if !summary.is_empty() {
            let _ = writeln!(self.out, "<desc>{}</desc>", xml(summary));
        }
        self.raw("<defs>\n");
        for (id, colour) in [("arrow", EDGE), ("arrow-compensates", COMPENSATION)] {
            let _ = writeln!(
                self.out,
                "<marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{colour}\"/></marker>"
            );
        }
        self.raw("</defs>\n");
        let _ = writeln!(
            self.out,
            "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
        );
    }

    fn text(&mut self, x: f64, y: f64, size: f64, bold: bool, colour: &str, content: &str) {
        self.text_anchored(x, y, size, bold, colour, content, "");
    }

    fn centered(&mut self, x: f64, y: f64, size: f64, bold: bool, colour: &str, content: &str) {
        self.text_anchored(x, y, size, bold, colour, content, " text-anchor=\"middle\"");
    }

    #[allow(clippy::too_many_arguments)]
    fn text_anchored(
        &mut self,
        x: f64,
        y: f64,
        size: f64,
        bold: bool,
        colour: &str,
        content: &str,
        anchor: &str,
    ) {
        let weight = if bold { " font-weight=\"bold\"" } else { "" };
        let _ = writeln!(
            self.out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\"{weight} fill=\"{colour}\"{anchor}>{}</text>",
            num(x),
            num(y),
            num(size),
            xml(content)
        );
    }

    /// A smooth path through the points, leaving and entering vertically.
    fn edge(&mut self, class: &str, points: &[Point], from: &str, to: &str) {
        let Some(&(x0, y0)) = points.first() else {
            return;
        };
        let mut d = format!("M{},{}", num(x0), num(y0));
        for pair in points.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            if ax == bx {
                let _ = write!(d, " L{},{}", num(bx), num(by));
                continue;
            }
            let my = (ay + by) / 2.0;
            let _ = write!(
                d,
                " C{},{} {},{} {},{}",
                num(ax),
                num(my),
                num(bx),
                num(my),
                num(bx),
                num(by)
            );
        }
        let (colour, marker, extra) = match class {
            "compensates" => (
                COMPENSATION,
                "arrow-compensates",
                format!(" stroke-dasharray=\"{DASH}\""),
            ),
            "peer" => (EDGE, "arrow", format!(" stroke-dasharray=\"{DASH}\"")),
            _ => (EDGE, "arrow", String::new()),
        };
        let _ = writeln!(
            self.out,
            "<path class=\"{class}\" data-from=\"{}\" data-to=\"{}\" d=\"{d}\" stroke=\"{colour}\" stroke-width=\"1.4\"{extra} marker-end=\"url(#{marker})\"/>",
            xml(from),
            xml(to)
        );
    }

    fn node(&mut self, node: &Node, cx: f64, cy: f64, w: f64, h: f64) {
        let paint = style::node(node.kind);
        let class = match node.kind {
            NodeKind::Command => "command",
            NodeKind::Event(_) => "event",
            NodeKind::Reaction { .. } => "reaction",
            NodeKind::Decision => "decision",
            NodeKind::FanOut => "fan-out",
            NodeKind::Join => "join",
            NodeKind::Nothing => "none",
            NodeKind::Peer => "peer",
        };
        let _ = writeln!(self.out, "<g class=\"{class}\" id=\"{}\">", xml(&node.id));
        let mut tooltip = node.label.clone();
        if !node.docs.is_empty() {
            tooltip.push('\n');
            tooltip.push_str(&node.docs);
        }
        let _ = writeln!(self.out, "<title>{}</title>", xml(&tooltip));
        self.shape(node.kind, paint, cx, cy, w, h);
        if is_point_shape(node.kind) {
            let (size, colour) = if node.kind == NodeKind::Nothing {
                (9.0, MUTED)
            } else {
                (15.0, paint.stroke)
            };
            self.centered(cx, cy + size * 0.35, size, true, colour, &node.label);
        } else {
            let lines = LABEL_LINE + DETAIL_LINE * node.details.len() as f64;
            let mut y = cy - lines / 2.0 + LABEL_LINE / 2.0 + LABEL_SIZE * 0.35;
            self.centered(cx, y, LABEL_SIZE, is_bold(node.kind), INK, &node.label);
            y += LABEL_LINE / 2.0 + DETAIL_LINE / 2.0 - 1.0;
            for detail in &node.details {
                let colour = if detail.starts_with("compensates") {
                    COMPENSATION
                } else {
                    MUTED
                };
                self.centered(cx, y, DETAIL_SIZE, false, colour, detail);
                y += DETAIL_LINE;
            }
        }
        self.raw("</g>\n");
    }

    fn shape(&mut self, kind: NodeKind, paint: Paint, cx: f64, cy: f64, w: f64, h: f64) {
        let attrs = paint_attrs(paint);
        let (x, y) = (cx - w / 2.0, cy - h / 2.0);
        let rect = |rx: f64| {
            format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" {attrs}/>\n",
                num(x),
                num(y),
                num(w),
                num(h),
                num(rx)
            )
        };
        let shape = match kind {
            NodeKind::Command => rect(4.0),
            NodeKind::Event(_) => rect((h / 2.0).min(16.0)),
            NodeKind::Reaction { .. } | NodeKind::Peer => rect(2.0),
            NodeKind::Decision | NodeKind::FanOut | NodeKind::Join => format!(
                "<polygon points=\"{},{} {},{} {},{} {},{}\" {attrs}/>\n",
                num(cx),
                num(y),
                num(x + w),
                num(cy),
                num(cx),
                num(y + h),
                num(x),
                num(cy)
            ),
            NodeKind::Nothing => format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" {attrs}/>\n",
                num(cx),
                num(cy),
                num(w / 2.0)
            ),
        };
        self.raw(&shape);
    }

    fn legend(&mut self, x: f64, y: f64, w: f64, h: f64, items: &[LegendItem]) {
        self.raw("<g class=\"legend\">\n");
        let _ = writeln!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\" fill=\"#ffffff\" stroke=\"#cbd5e1\"/>",
            num(x),
            num(y),
            num(w),
            num(h)
        );
        self.text(x + 12.0, y + 22.0, 12.0, true, INK, "Legend");
        for (i, &item) in items.iter().enumerate() {
            let row = y + 34.0 + LEGEND_ROW * i as f64 + LEGEND_ROW / 2.0;
            let sample = x + 12.0 + 20.0;
            let kind = match item {
                LegendItem::Command => NodeKind::Command,
                LegendItem::Event => NodeKind::Event(EventStyle::Plain),
                LegendItem::External => NodeKind::Event(EventStyle::External),
                LegendItem::Success => NodeKind::Event(EventStyle::Success),
                LegendItem::Failure => NodeKind::Event(EventStyle::Failure),
                LegendItem::Reaction => NodeKind::Reaction {
                    participant: 0,
                    compensation: false,
                },
                LegendItem::Compensation => NodeKind::Reaction {
                    participant: usize::MAX,
                    compensation: true,
                },
                LegendItem::Decision => NodeKind::Decision,
                LegendItem::FanOut => NodeKind::FanOut,
                LegendItem::Join => NodeKind::Join,
                LegendItem::Nothing => NodeKind::Nothing,
                LegendItem::Peer => NodeKind::Peer,
            };
            let (w, h) = if is_point_shape(kind) {
                (18.0, 18.0)
            } else {
                (40.0, 16.0)
            };
            let paint = if item == LegendItem::Reaction || item == LegendItem::Compensation {
                style::legend(item)
            } else {
                style::node(kind)
            };
            self.shape(kind, paint, sample, row, w, h);
            let symbol = match item {
                LegendItem::Decision => Some("|"),
                LegendItem::FanOut => Some("+"),
                LegendItem::Join => Some("&"),
                _ => None,
            };
            if let Some(symbol) = symbol {
                self.centered(sample, row + 4.0, 11.0, true, paint.stroke, symbol);
            }
            self.text(x + 64.0, row + 4.0, 11.5, false, INK, item.description());
        }
        self.raw("</g>\n");
    }
}
