//! The diagram graph shared by the flow and participant views of every
//! format: what to draw, before any format decides how.
//!
//! Nodes are the spec's commands and events, one node per reaction (named
//! after its participant), and gateway nodes that make a reaction's shape
//! visible: a decision where it has several outcomes, a fan-out where an
//! outcome emits several events, a join where it waits for several events,
//! and a "none" end where an outcome emits nothing. Building this once keeps
//! the three formats in agreement about what a view contains.

use crate::model::{
    CheckedSpec, Docs, MessageId, Outcome, ParticipantId, Reaction, ReactionId, Settlement, Spec,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// Which part of the spec a graph shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Everything.
    Flow,
    /// One participant's reactions, what they touch, and its peers.
    Participant(ParticipantId),
}

/// How an event is styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum EventStyle {
    /// Emitted and consumed inside the choreography.
    Plain,
    /// `@external`.
    External,
    /// `@terminal`.
    Success,
    /// `@terminal(failure)`.
    Failure,
}

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeKind {
    /// A command: an entry point.
    Command,
    /// An event.
    Event(EventStyle),
    /// A reaction of the participant with this index; `compensation` when
    /// it compensates an event.
    Reaction {
        participant: usize,
        compensation: bool,
    },
    /// Exactly one of the outgoing branches happens (`|`).
    Decision,
    /// All outgoing events are emitted together (`+`).
    FanOut,
    /// The reaction fires once all incoming events have arrived (`&`).
    Join,
    /// An outcome that emits nothing (`none`).
    Nothing,
    /// Another participant, in a participant view.
    Peer,
}

impl NodeKind {
    /// The legend entry of a kind of node (compensations are reactions).
    pub(super) fn legend_item(self) -> LegendItem {
        match self {
            NodeKind::Command => LegendItem::Command,
            NodeKind::Event(EventStyle::Plain) => LegendItem::Event,
            NodeKind::Event(EventStyle::External) => LegendItem::External,
            NodeKind::Event(EventStyle::Success) => LegendItem::Success,
            NodeKind::Event(EventStyle::Failure) => LegendItem::Failure,
            NodeKind::Reaction { .. } => LegendItem::Reaction,
            NodeKind::Decision => LegendItem::Decision,
            NodeKind::FanOut => LegendItem::FanOut,
            NodeKind::Join => LegendItem::Join,
            NodeKind::Nothing => LegendItem::Nothing,
            NodeKind::Peer => LegendItem::Peer,
        }
    }
}

/// A node.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// An identifier of `[A-Za-z0-9_]` characters, unique in the graph and
    /// the same for the same thing in every view.
    pub id: String,
    pub kind: NodeKind,
    /// The main line: a name, or a gateway's symbol.
    pub label: String,
    /// Smaller lines under the label (`@http` route, attributes).
    pub details: Vec<String>,
    /// Doc comment, for tooltips; may be empty.
    pub docs: String,
}

/// What an edge means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EdgeKind {
    /// Delivery or emission.
    Flow,
    /// From a compensating reaction to the event whose effect it undoes.
    Compensates,
    /// Between another participant and an event, in a participant view.
    Peer,
}

/// An edge, between indexes into [`Graph::nodes`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
}

/// One entry of a legend: a style that occurs in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum LegendItem {
    Command,
    Event,
    External,
    Success,
    Failure,
    Reaction,
    Compensation,
    Decision,
    FanOut,
    Join,
    Nothing,
    Peer,
}

impl LegendItem {
    /// What the style means, for the legend.
    pub fn description(self) -> &'static str {
        match self {
            LegendItem::Command => "command (entry point)",
            LegendItem::Event => "event",
            LegendItem::External => "external event",
            LegendItem::Success => "terminal event: success",
            LegendItem::Failure => "terminal event: failure",
            LegendItem::Reaction => "reaction of a participant",
            LegendItem::Compensation => "compensation (undoes an event)",
            LegendItem::Decision => "decision: exactly one outcome",
            LegendItem::FanOut => "fan-out: emitted together",
            LegendItem::Join => "join: waits for all",
            LegendItem::Nothing => "outcome that emits nothing",
            LegendItem::Peer => "other participant",
        }
    }
}

/// What a flow or participant view shows.
#[derive(Debug, Clone)]
pub(super) struct Graph {
    /// The choreography's name, with its version.
    pub title: String,
    /// What is shown: `flow` or `participant Name`.
    pub view: String,
    /// The first paragraph of the doc comment of what is shown.
    pub summary: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// Builds the graph of one view.
    pub fn build(spec: &CheckedSpec, scope: Scope) -> Graph {
        let spec: &Spec = spec;
        let title = title(spec);
        let (view, summary, reactions): (String, String, Vec<ReactionId>) = match scope {
            Scope::Flow => (
                "flow".to_owned(),
                summary(&spec.docs),
                spec.reaction_ids().collect(),
            ),
            Scope::Participant(p) => {
                let participant = spec.participant(p);
                (
                    format!("participant {}", participant.name.text),
                    summary(&participant.docs),
                    participant.reactions.clone(),
                )
            }
        };
        let mut builder = Builder {
            spec,
            graph: Graph {
                title,
                view,
                summary,
                nodes: Vec::new(),
                edges: Vec::new(),
            },
            message_nodes: vec![None; spec.messages.len()],
        };
        let shown: BTreeSet<MessageId> = match scope {
            Scope::Flow => spec.message_ids().collect(),
            Scope::Participant(_) => reactions
                .iter()
                .flat_map(|&r| touched(spec.reaction(r)))
                .collect(),
        };
        for &id in &shown {
            builder.message(id);
        }
        for &r in &reactions {
            builder.reaction(r);
        }
        if let Scope::Participant(p) = scope {
            builder.peers(p, &shown);
        }
        builder.graph
    }

    /// The styles that occur, in a fixed order.
    pub fn legend(&self) -> Vec<LegendItem> {
        let mut items = BTreeSet::new();
        for node in &self.nodes {
            items.insert(node.kind.legend_item());
            if let NodeKind::Reaction {
                compensation: true, ..
            } = node.kind
            {
                items.insert(LegendItem::Compensation);
            }
        }
        items.into_iter().collect()
    }
}

/// Every message a reaction names: triggers, outcomes, what it compensates.
fn touched(r: &Reaction) -> impl Iterator<Item = MessageId> + '_ {
    r.trigger
        .ids()
        .chain(r.emitted())
        .chain(r.compensates.map(|c| c.id))
}

struct Builder<'a> {
    spec: &'a Spec,
    graph: Graph,
    message_nodes: Vec<Option<usize>>,
}

impl Builder<'_> {
    fn node(&mut self, id: String, kind: NodeKind, label: String) -> usize {
        self.graph.nodes.push(Node {
            id,
            kind,
            label,
            details: Vec::new(),
            docs: String::new(),
        });
        self.graph.nodes.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize, kind: EdgeKind) {
        self.graph.edges.push(Edge { from, to, kind });
    }

    fn message(&mut self, id: MessageId) {
        let m = self.spec.message(id);
        let (node_id, kind) = if m.is_command() {
            (format!("c_{}", m.name.text), NodeKind::Command)
        } else {
            let style = match (m.terminal, m.external) {
                (Some((Settlement::Success, _)), _) => EventStyle::Success,
                (Some((Settlement::Failure, _)), _) => EventStyle::Failure,
                (None, Some(_)) => EventStyle::External,
                (None, None) => EventStyle::Plain,
            };
            (format!("e_{}", m.name.text), NodeKind::Event(style))
        };
        let n = self.node(node_id, kind, m.name.text.to_string());
        let node = &mut self.graph.nodes[n];
        if let Some(route) = &m.http {
            node.details
                .push(format!("{} {}", route.method.as_str(), route.path));
        }
        node.docs = docs_text(&m.docs);
        self.message_nodes[id.index()] = Some(n);
    }

    fn message_node(&self, id: MessageId) -> Option<usize> {
        self.message_nodes.get(id.index()).copied().flatten()
    }

    fn reaction(&mut self, rid: ReactionId) {
        let spec = self.spec;
        let r = spec.reaction(rid);
        let participant = spec.participant(r.participant);
        let base = format!("r{}", rid.index());
        let n = self.node(
            base.clone(),
            NodeKind::Reaction {
                participant: r.participant.index(),
                compensation: r.compensates.is_some(),
            },
            participant.name.text.to_string(),
        );
        let mut details = attributes(r);
        if let Some(c) = r.compensates {
            details.push(format!("compensates {}", spec.message_name(c.id)));
        }
        let docs = if r.docs.is_empty() {
            &participant.docs
        } else {
            &r.docs
        };
        self.graph.nodes[n].details = details;
        self.graph.nodes[n].docs = docs_text(docs);

        let triggers: Vec<usize> = r
            .trigger
            .ids()
            .filter_map(|t| self.message_node(t))
            .collect();
        if r.trigger.is_join() {
            let join = self.node(format!("{base}_join"), NodeKind::Join, "&".to_owned());
            for t in triggers {
                self.edge(t, join, EdgeKind::Flow);
            }
            self.edge(join, n, EdgeKind::Flow);
        } else {
            for t in triggers {
                self.edge(t, n, EdgeKind::Flow);
            }
        }

        match r.outcomes() {
            [] => {}
            [single] => self.outcome(&base, 0, n, single),
            outcomes => {
                let decision = self.node(format!("{base}_or"), NodeKind::Decision, "|".to_owned());
                self.edge(n, decision, EdgeKind::Flow);
                for (k, outcome) in outcomes.iter().enumerate() {
                    self.outcome(&base, k, decision, outcome);
                }
            }
        }

        if let Some(c) = r.compensates {
            if let Some(target) = self.message_node(c.id) {
                self.edge(n, target, EdgeKind::Compensates);
            }
        }
    }

    fn outcome(&mut self, base: &str, k: usize, from: usize, outcome: &Outcome) {
        let events: Vec<usize> = outcome.ids().filter_map(|e| self.message_node(e)).collect();
        match events.as_slice() {
            [] => {
                let nothing = self.node(
                    format!("{base}_none{k}"),
                    NodeKind::Nothing,
                    "none".to_owned(),
                );
                self.edge(from, nothing, EdgeKind::Flow);
            }
            [event] => self.edge(from, *event, EdgeKind::Flow),
            _ => {
                let fan = self.node(format!("{base}_all{k}"), NodeKind::FanOut, "+".to_owned());
                self.edge(from, fan, EdgeKind::Flow);
                for event in events {
                    self.edge(fan, event, EdgeKind::Flow);
                }
            }
        }
    }

    /// The other participants that emit what `p` consumes, and consume what
    /// it emits.
    fn peers(&mut self, p: ParticipantId, shown: &BTreeSet<MessageId>) {
        let spec = self.spec;
        let own = spec.participant(p);
        let consumed: BTreeSet<MessageId> = own
            .reactions
            .iter()
            .flat_map(|&r| spec.reaction(r).trigger.ids())
            .collect();
        let emitted: BTreeSet<MessageId> = own
            .reactions
            .iter()
            .flat_map(|&r| spec.reaction(r).emitted())
            .collect();
        // A peer that both feeds and consumes gets a node on each side, so
        // the view reads top to bottom: who emits what this participant
        // consumes, then its reactions, then who consumes what it emits.
        let mut upstream = Vec::new();
        let mut downstream = Vec::new();
        for &m in shown {
            let Some(message_node) = self.message_node(m) else {
                continue;
            };
            let others = |reactions: &[ReactionId]| -> BTreeSet<usize> {
                reactions
                    .iter()
                    .map(|&r| spec.reaction(r).participant)
                    .filter(|&q| q != p)
                    .map(ParticipantId::index)
                    .collect()
            };
            if consumed.contains(&m) {
                for q in others(spec.flow.producers(m)) {
                    upstream.push((q, message_node));
                }
            }
            if emitted.contains(&m) {
                for q in others(spec.flow.consumers(m)) {
                    downstream.push((q, message_node));
                }
            }
        }
        let from = self.peer_nodes("from", &upstream);
        let to = self.peer_nodes("to", &downstream);
        for (q, message_node) in upstream {
            if let Some(peer) = from[q] {
                self.edge(peer, message_node, EdgeKind::Peer);
            }
        }
        for (q, message_node) in downstream {
            if let Some(peer) = to[q] {
                self.edge(message_node, peer, EdgeKind::Peer);
            }
        }
    }

    /// One node per participant named in `pairs`, in declaration order,
    /// indexed by participant.
    fn peer_nodes(&mut self, side: &str, pairs: &[(usize, usize)]) -> Vec<Option<usize>> {
        let spec = self.spec;
        let mut wanted: Vec<usize> = pairs.iter().map(|e| e.0).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut nodes = vec![None; spec.participants.len()];
        for q in wanted {
            let participant = &spec.participants[q];
            let n = self.node(
                format!("{side}_{}", participant.name.text),
                NodeKind::Peer,
                participant.name.text.to_string(),
            );
            self.graph.nodes[n].docs = docs_text(&participant.docs);
            nodes[q] = Some(n);
        }
        nodes
    }
}

/// The choreography's name, with its version when it has one.
pub(super) fn title(spec: &Spec) -> String {
    match &spec.version {
        Some(version) => format!("{} {}", spec.name.text, version.value),
        None => spec.name.text.to_string(),
    }
}

/// A doc comment as plain text: lines trimmed, paragraphs kept.
pub(super) fn docs_text(docs: &Docs) -> String {
    docs.lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// The first paragraph of a doc comment, on one line.
pub(super) fn summary(docs: &Docs) -> String {
    docs.lines
        .iter()
        .map(|l| l.trim())
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reaction's attributes, as short lines.
pub(super) fn attributes(r: &Reaction) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(retry) = r.retry.as_deref() {
        lines.push(format!(
            "retry {}x from {}",
            retry.max,
            duration(retry.backoff)
        ));
    }
    if let Some(&(timeout, _)) = r.timeout.as_deref() {
        lines.push(format!("timeout {}", duration(timeout)));
    }
    if let Some(&(bound, _)) = r.bounded.as_deref() {
        lines.push(format!("bounded {bound}"));
    }
    lines
}

/// A duration as a spec would write it.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0ms".to_owned();
    }
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
