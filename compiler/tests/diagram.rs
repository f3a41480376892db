//! Diagrams of the example specs: snapshots of every format and view,
//! escaping of hostile text, the real Graphviz and Mermaid parsers, and the
//! diagrams committed in `docs/` and the README.
//!
//! The tests that run Graphviz or Node skip with a message when the tool
//! is missing, and fail instead when `CHOREO_REQUIRE_TOOLS=1` (as in CI).

mod common;

use choreo_compiler::diagram::{render, DiagramError, Format, View};
use choreo_compiler::testing::{synthetic_pipeline, synthetic_spec};
use choreo_compiler::CheckedSpec;
use common::{checked, runs, tool_available};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The specs every format and view is snapshot for: (name, path from the
/// workspace root). The first two have their SVG committed in `docs/`.
const SPECS: [(&str, &str); 4] = [
    ("ecommerce", "examples/ecommerce/ecommerce.choreo"),
    (
        "drone-delivery",
        "examples/drone-delivery/drone-delivery.choreo",
    ),
    ("brief-example", "tests/cases/valid/brief_example.choreo"),
    // Styles the examples lack: an external event, a bounded cycle, `none`.
    ("features", "compiler/tests/diagram/features.choreo"),
];

/// The spec whose doc comments and names try to break out of each format.
const ESCAPING: &str = "compiler/tests/diagram/escaping.choreo";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the compiler crate sits in the workspace")
        .to_path_buf()
}

fn load(path: &str) -> CheckedSpec {
    let text = std::fs::read_to_string(root().join(path)).expect("spec readable");
    checked(path, text)
}

/// Every view of a spec: flow, sequence, then each participant.
fn views(spec: &CheckedSpec) -> Vec<View> {
    let mut views = vec![View::Flow, View::Sequence];
    views.extend(
        spec.participants
            .iter()
            .map(|p| View::Participant(p.name.text.to_string())),
    );
    views
}

/// Every (format, view) a spec has a diagram for.
fn diagrams(spec: &CheckedSpec) -> Vec<(Format, View)> {
    let mut out = Vec::new();
    for view in views(spec) {
        for format in Format::ALL {
            if view != View::Sequence || format == Format::Mermaid {
                out.push((format, view.clone()));
            }
        }
    }
    out
}

fn view_slug(view: &View) -> String {
    match view {
        View::Flow => "flow".to_owned(),
        View::Sequence => "sequence".to_owned(),
        View::Participant(name) => format!("participant-{name}"),
    }
}

fn draw(spec: &CheckedSpec, format: Format, view: &View) -> String {
    render(spec, format, view).unwrap_or_else(|e| panic!("{format} {view}: {e}"))
}

#[test]
fn snapshots_of_every_format_and_view() {
    for (name, path) in SPECS {
        let spec = load(path);
        for (format, view) in diagrams(&spec) {
            let snapshot = format!("{name}-{}.{}", view_slug(&view), format.extension());
            insta::assert_snapshot!(snapshot, draw(&spec, format, &view));
        }
    }
}

#[test]
fn output_is_deterministic() {
    let spec = load(SPECS[1].1);
    for (format, view) in diagrams(&spec) {
        assert_eq!(draw(&spec, format, &view), draw(&spec, format, &view));
    }
}

/// Counts in one of our SVGs: node groups and edge paths.
fn svg_counts(svg: &str) -> (usize, usize) {
    let doc = roxmltree::Document::parse(svg).expect("SVG is XML");
    let group = |class: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("g") && n.attribute("class") == Some(class))
            .map_or(0, |g| g.children().filter(|c| c.is_element()).count())
    };
    (group("nodes"), group("edges"))
}

/// All the text an SVG shows, element by element.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("SVG is XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn svg_is_xml_and_shows_every_participant_and_message() {
    for (_, path) in SPECS.iter().chain([&("escaping", ESCAPING)]) {
        let spec = load(path);
        let svg = draw(&spec, Format::Svg, &View::Flow);
        let texts = svg_texts(&svg);
        let names = spec
            .participants
            .iter()
            .map(|p| &p.name.text)
            .chain(spec.messages.iter().map(|m| &m.name.text));
        for name in names {
            assert!(
                texts.contains(&name.to_string()),
                "{path}: `{name}` not shown in the SVG"
            );
        }
        let doc = roxmltree::Document::parse(&svg).expect("SVG is XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let legend = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("legend"));
        assert!(legend.is_some(), "{path}: no legend");
    }
}

/// An axis-aligned box: left, top, right, bottom.
type Box2 = (f64, f64, f64, f64);

fn numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().expect("a number"))
        .collect()
}

/// The box of a shape element of our SVGs.
fn shape_box(n: roxmltree::Node) -> Option<Box2> {
    let num = |a: &str| n.attribute(a).and_then(|v| v.parse::<f64>().ok());
    match n.tag_name().name() {
        "rect" => {
            let (x, y) = (num("x")?, num("y")?);
            Some((x, y, x + num("width")?, y + num("height")?))
        }
        "circle" => {
            let (cx, cy, r) = (num("cx")?, num("cy")?, num("r")?);
            Some((cx - r, cy - r, cx + r, cy + r))
        }
        "polygon" => {
            let ps = numbers(n.attribute("points")?);
            let xs = ps.iter().step_by(2);
            let ys = ps.iter().skip(1).step_by(2);
            Some((
                xs.clone().copied().fold(f64::INFINITY, f64::min),
                ys.clone().copied().fold(f64::INFINITY, f64::min),
                xs.copied().fold(f64::NEG_INFINITY, f64::max),
                ys.copied().fold(f64::NEG_INFINITY, f64::max),
            ))
        }
        _ => None,
    }
}

fn overlap(a: Box2, b: Box2, margin: f64) -> bool {
    a.0 < b.2 - margin && b.0 < a.2 - margin && a.1 < b.3 - margin && b.1 < a.3 - margin
}

/// Points along an SVG path made of `M x,y`, `L x,y` and
/// `C x1,y1 x2,y2 x,y` commands.
fn path_points(d: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut at = (0.0, 0.0);
    for part in d
        .split_inclusive(['M', 'L', 'C'])
        .collect::<Vec<_>>()
        .windows(2)
    {
        // Each command's letter ends the previous piece.
        let letter = part[0].chars().last().unwrap_or(' ');
        let v = numbers(part[1].trim_end_matches(['M', 'L', 'C']));
        match letter {
            'M' => at = (v[0], v[1]),
            'L' => {
                for i in 0..=40 {
                    let t = f64::from(i) / 40.0;
                    out.push((at.0 + (v[0] - at.0) * t, at.1 + (v[1] - at.1) * t));
                }
                at = (v[0], v[1]);
            }
            'C' => {
                for i in 0..=40 {
                    let t = f64::from(i) / 40.0;
                    let u = 1.0 - t;
                    let bez = |p0: f64, p1: f64, p2: f64, p3: f64| {
                        u * u * u * p0
                            + 3.0 * u * u * t * p1
                            + 3.0 * u * t * t * p2
                            + t * t * t * p3
                    };
                    out.push((bez(at.0, v[0], v[2], v[4]), bez(at.1, v[1], v[3], v[5])));
                }
                at = (v[4], v[5]);
            }
            other => panic!("unexpected path command {other:?} in {d}"),
        }
    }
    out
}

#[test]
fn svg_nodes_labels_and_legend_do_not_overlap_and_edges_go_around_nodes() {
    for (name, path) in SPECS {
        let spec = load(path);
        for view in views(&spec).into_iter().filter(|v| *v != View::Sequence) {
            let svg = draw(&spec, Format::Svg, &view);
            let doc = roxmltree::Document::parse(&svg).expect("SVG is XML");
            let group = |class: &str| {
                doc.descendants()
                    .find(|n| n.has_tag_name("g") && n.attribute("class") == Some(class))
                    .expect("group")
            };
            let nodes: Vec<Box2> = group("nodes")
                .children()
                .filter(|n| n.is_element())
                .map(|g| {
                    g.children()
                        .find_map(shape_box)
                        .expect("each node has a shape")
                })
                .collect();
            let legend = group("legend")
                .children()
                .find_map(shape_box)
                .expect("legend box");
            for (i, a) in nodes.iter().enumerate() {
                assert!(
                    !overlap(*a, legend, 0.0),
                    "{name} {view}: node over the legend"
                );
                for b in &nodes[i + 1..] {
                    assert!(
                        !overlap(*a, *b, 0.0),
                        "{name} {view}: nodes overlap: {a:?} {b:?}"
                    );
                }
            }
            // No edge runs through a node other than its own two ends (a
            // pixel of slack for the curves' ends touching their nodes).
            for edge in group("edges").children().filter(|n| n.is_element()) {
                let points = path_points(edge.attribute("d").expect("d"));
                assert!(points.len() > 40, "{name} {view}: an edge without a route");
                let (first, last) = (points[0], points[points.len() - 1]);
                let touches = |b: &Box2, p: (f64, f64)| {
                    p.0 >= b.0 - 1.0 && p.0 <= b.2 + 1.0 && p.1 >= b.1 - 1.0 && p.1 <= b.3 + 1.0
                };
                for b in nodes
                    .iter()
                    .filter(|b| !touches(b, first) && !touches(b, last))
                {
                    let inside = points.iter().any(|p| {
                        p.0 > b.0 + 2.0 && p.0 < b.2 - 2.0 && p.1 > b.1 + 2.0 && p.1 < b.3 - 2.0
                    });
                    assert!(!inside, "{name} {view}: an edge crosses the node at {b:?}");
                }
            }
        }
    }
}

#[test]
fn participant_views_show_what_the_participant_consumes_and_emits() {
    let spec = load(SPECS[0].1);
    let svg = draw(&spec, Format::Svg, &View::Participant("Payment".into()));
    let texts = svg_texts(&svg);
    for name in [
        "Payment",
        "OrderPlaced",
        "StockReserved",
        "PaymentApproved",
        "PaymentDeclined",
    ] {
        assert!(texts.iter().any(|t| t == name), "`{name}` missing");
    }
    // Who is on the other side: Orders emits OrderPlaced, Seller consumes
    // PaymentApproved; unrelated events are left out.
    for name in ["Orders", "Seller", "Inventory"] {
        assert!(texts.iter().any(|t| t == name), "peer `{name}` missing");
    }
    assert!(!texts.iter().any(|t| t == "ShipmentScheduled"));
}

#[test]
fn hostile_text_cannot_break_out_of_any_format() {
    let spec = load(ESCAPING);
    let doc = "Event doc with a quote \" and backslash \\ and }\"]; node [label=\"pwned\"]";

    // SVG: the doc comment comes back intact as the node's tooltip.
    let svg = draw(&spec, Format::Svg, &View::Flow);
    let parsed = roxmltree::Document::parse(&svg).expect("SVG is XML");
    let node = parsed
        .descendants()
        .find(|n| n.attribute("id") == Some("e_end"))
        .expect("node of event `end`");
    let title = node
        .children()
        .find(|n| n.has_tag_name("title"))
        .and_then(|t| t.text())
        .expect("tooltip");
    assert_eq!(title, format!("end\n{doc}"));
    assert!(!svg.contains("<script") && !svg.contains("<![CDATA["));
    assert_eq!(svg_counts(&svg), (8, 8));

    // DOT: the same text as one escaped string.
    let dot = draw(&spec, Format::Dot, &View::Flow);
    assert!(dot.contains(
        r#"tooltip="Event doc with a quote \" and backslash \\ and }\"]; node [label=\"pwned\"]""#
    ));

    // Mermaid: nothing a lexer could take for syntax is left in labels, and
    // no `%%` (a comment to the end of the line, wherever it stands).
    for view in [
        View::Flow,
        View::Sequence,
        View::Participant("graph".into()),
    ] {
        let mermaid = draw(&spec, Format::Mermaid, &view);
        assert!(!mermaid.contains("%%"), "{view}: {mermaid}");
        for line in mermaid
            .lines()
            .filter(|l| l.contains("[\"") || l.contains("Note"))
        {
            assert!(!line.contains('<') || line.contains("<br/>"), "{line}");
            assert!(
                !line.contains("]]>") && !line.contains("#quot;\""),
                "{line}"
            );
        }
        let quotes_balanced = mermaid
            .lines()
            .filter(|l| !l.trim_start().starts_with("acc"))
            .all(|l| l.matches('"').count() % 2 == 0);
        assert!(quotes_balanced, "{mermaid}");
    }
}

#[test]
fn unknown_participant_lists_the_known_ones() {
    let spec = load(SPECS[0].1);
    let err = render(&spec, Format::Svg, &View::Participant("Paymnet".into()))
        .expect_err("no such participant");
    match &err {
        DiagramError::UnknownParticipant {
            suggestion, known, ..
        } => {
            assert_eq!(suggestion.as_deref(), Some("Payment"));
            assert_eq!(known.len(), spec.participants.len());
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("did you mean `Payment`?"), "{message}");
    assert!(message.contains("Orders, Inventory, Payment"), "{message}");
}

#[test]
fn sequence_is_mermaid_only() {
    let spec = load(SPECS[0].1);
    for format in [Format::Dot, Format::Svg] {
        assert!(matches!(
            render(&spec, format, &View::Sequence),
            Err(DiagramError::Unsupported { .. })
        ));
    }
}

#[test]
fn sequence_shows_alternatives_fan_outs_and_outcomes() {
    let spec = checked(
        "fan.choreo",
        "choreography Fan {
            key id: uuid
            command Go { }
            event Started { }
            event A { }
            event B { }
            event C { }
            @terminal event Done { }
            @terminal(failure) event Failed { }
            @terminal event Archived { }
            participant P {
                on Go -> Started | C
                on Started -> A + B
                on C -> Failed
            }
            participant R {
                on A & B -> Done
            }
            participant Q {
                on Done -> Archived | none
            }
        }"
        .to_owned(),
    );
    let text = draw(&spec, Format::Mermaid, &View::Sequence);
    for expected in [
        "alt Started",
        "else C",
        "par A",
        "and B",
        "alt Archived",
        "else none",
        "Note over p2: emits nothing",
        "Done settles the instance: success",
        "Failed settles the instance: failure",
    ] {
        assert!(text.contains(expected), "`{expected}` missing from\n{text}");
    }
}

/// Every flow and participant diagram of the specs and the escaping spec.
fn graph_views() -> Vec<(String, CheckedSpec, View)> {
    let mut out = Vec::new();
    for (name, path) in SPECS.iter().chain([&("escaping", ESCAPING)]) {
        let spec = load(path);
        for view in views(&spec) {
            if view != View::Sequence {
                out.push((format!("{name}-{}", view_slug(&view)), spec.clone(), view));
            }
        }
    }
    out
}

fn scratch(dir: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

#[test]
fn graphviz_accepts_the_dot_output() {
    if !tool_available("Graphviz (`dot`)", runs("dot", "-V")) {
        return;
    }
    let dir = scratch("dot");
    for (name, spec, view) in graph_views() {
        let path = dir.join(format!("{name}.dot"));
        std::fs::write(&path, draw(&spec, Format::Dot, &view)).expect("write");
        let out = Command::new("dot")
            .arg("-Tsvg")
            .arg(&path)
            .output()
            .expect("dot runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{name}: {stderr}"
        );
        let svg = String::from_utf8(out.stdout).expect("UTF-8");
        // Graphviz writes a DOCTYPE, which roxmltree rejects unless told.
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc =
            roxmltree::Document::parse_with_options(&svg, options).expect("Graphviz SVG is XML");
        let count = |class: &str| {
            doc.descendants()
                .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some(class))
                .count()
        };
        // Graphviz found exactly the nodes and edges we drew ourselves: no
        // label ended early and made up a node.
        let ours = svg_counts(&draw(&spec, Format::Svg, &view));
        assert_eq!((count("node"), count("edge")), ours, "{name}");
    }
}

#[test]
fn mermaid_parses_the_mermaid_output() {
    let checker = root().join("tests/mermaid");
    let installed = checker.join("node_modules/mermaid/package.json").is_file();
    if !tool_available("Node.js", runs("node", "--version"))
        || !tool_available("the Mermaid parser (`npm ci` in tests/mermaid)", installed)
    {
        return;
    }
    let dir = scratch("mermaid");
    let mut expected: BTreeMap<String, (String, usize, usize)> = BTreeMap::new();
    let mut files = Vec::new();
    for (name, path) in SPECS.iter().chain([&("escaping", ESCAPING)]) {
        let spec = load(path);
        for view in views(&spec) {
            let text = draw(&spec, Format::Mermaid, &view);
            let file = dir.join(format!("{name}-{}.mmd", view_slug(&view)));
            std::fs::write(&file, &text).expect("write");
            let key = file.display().to_string();
            let counts = if view == View::Sequence {
                let arrows = text.lines().filter(|l| l.contains("-)")).count();
                // The client, and an actor for external events if any.
                let actors =
                    spec.participants.len() + 1 + usize::from(text.contains("actor outside"));
                ("sequence".to_owned(), actors, arrows)
            } else {
                let (nodes, edges) = svg_counts(&draw(&spec, Format::Svg, &view));
                ("flowchart-v2".to_owned(), nodes, edges)
            };
            expected.insert(key, counts);
            files.push(file);
        }
    }
    let out = Command::new("node")
        .arg(checker.join("check.mjs"))
        .args(&files)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Mermaid rejected a diagram:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = 0;
    for line in stdout.lines() {
        let report: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let file = report["file"].as_str().expect("file");
        let (kind, a, b) = &expected[file];
        assert_eq!(report["type"], kind.as_str(), "{file}");
        let counts = if kind == "sequence" {
            (report["actors"].as_u64(), report["arrows"].as_u64())
        } else {
            (report["vertices"].as_u64(), report["edges"].as_u64())
        };
        assert_eq!(counts, (Some(*a as u64), Some(*b as u64)), "{file}");
        seen += 1;
    }
    assert_eq!(seen, files.len());
}

/// The command that regenerates a committed diagram.
fn regenerate(spec: &str, out: &str) -> String {
    format!("cargo run -p choreo-compiler --bin choreoc -- diagram {spec} --format svg -o {out}")
}

fn updating() -> bool {
    std::env::var("CHOREO_UPDATE_DOCS").is_ok_and(|v| v == "1")
}

#[test]
fn docs_hold_the_current_svg_of_each_example() {
    for (name, path) in &SPECS[..2] {
        let expected = draw(&load(path), Format::Svg, &View::Flow);
        let out = format!("docs/{name}.svg");
        let file = root().join(&out);
        if updating() {
            std::fs::write(&file, &expected).expect("write");
        }
        let actual = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            actual == expected,
            "{out} is stale; regenerate it with\n    {}\n(or run the tests with CHOREO_UPDATE_DOCS=1)",
            regenerate(path, &out)
        );
    }
}

/// Where the README's generated Mermaid block starts.
const README_MARKER: &str =
    "<!-- generated: choreoc diagram examples/ecommerce/ecommerce.choreo --format mermaid -->";

#[test]
fn readme_shows_the_current_ecommerce_flow() {
    let expected = draw(&load(SPECS[0].1), Format::Mermaid, &View::Flow);
    let file = root().join("README.md");
    let readme = std::fs::read_to_string(&file).expect("README");
    let block = |readme: &str| -> Option<(usize, usize)> {
        let marker = readme.find(README_MARKER)?;
        let open = marker + readme[marker..].find("```mermaid\n")? + "```mermaid\n".len();
        let close = open + readme[open..].find("```")?;
        Some((open, close))
    };
    let Some((open, close)) = block(&readme) else {
        panic!("README.md has no Mermaid block after `{README_MARKER}`");
    };
    if updating() && readme[open..close] != expected {
        let updated = format!("{}{expected}{}", &readme[..open], &readme[close..]);
        std::fs::write(&file, updated).expect("write");
        return;
    }
    assert!(
        readme[open..close] == expected,
        "the README's ecommerce flow is stale; replace its ```mermaid block with the output of\n    \
         cargo run -p choreo-compiler --bin choreoc -- diagram examples/ecommerce/ecommerce.choreo --format mermaid\n\
         (or run the tests with CHOREO_UPDATE_DOCS=1)"
    );
}

#[test]
fn a_thousand_reactions_render_to_svg() {
    for spec in [
        checked("synthetic.choreo", synthetic_spec(1_000)),
        checked("pipeline.choreo", synthetic_pipeline(1_000)),
    ] {
        let svg = draw(&spec, Format::Svg, &View::Flow);
        let texts = svg_texts(&svg);
        for m in &spec.messages {
            assert!(
                texts.contains(&m.name.text.to_string()),
                "`{}` not shown",
                m.name.text
            );
        }
        let (nodes, edges) = svg_counts(&svg);
        assert!(nodes > spec.messages.len() + spec.reactions.len() && edges > nodes);
    }
}
