//! The Mermaid sequence diagram: each command's run, from the command
//! through every reaction it sets off to the outcomes.
//!
//! A run is a tree: a decision becomes `alt`, a fan-out `par`. Joins are
//! path-sensitive: a join fires in the branch where the last of its events
//! has been emitted, and elsewhere its arrival is marked as waiting. Where
//! a reaction would fire again on the same path (a bounded cycle), the
//! diagram says so instead of unrolling the cycle. Past a size budget,
//! reactions already drawn are referred to rather than drawn again, which
//! keeps the output linear in the spec for specs whose runs branch a lot.

use super::escape::{mermaid_line, mermaid_text};
use super::graph::{summary, title};
use crate::model::{CheckedSpec, MessageId, Outcome, ReactionId, Settlement, Spec};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Nesting beyond which blocks are no longer indented further.
const MAX_INDENT: usize = 12;
/// Lines after which reactions already drawn are no longer redrawn.
const BUDGET: usize = 4_000;

/// Renders the sequence diagram of a spec.
pub(super) fn render(spec: &CheckedSpec) -> String {
    let spec: &Spec = spec;
    let mut seq = Sequence {
        spec,
        out: String::from("sequenceDiagram\n"),
        lines: 0,
        drawn: BTreeSet::new(),
    };
    let title = title(spec);
    seq.line(
        0,
        &format!("accTitle: {}", mermaid_line(&format!("{title}, sequence"))),
    );
    let about = summary(&spec.docs);
    if !about.is_empty() {
        seq.line(0, &format!("accDescr: {}", mermaid_line(&about)));
    }
    seq.line(0, "actor client as Client");
    // `@external` events join an instance from outside, as commands start
    // one: each gets its own run, sent by an actor of its own.
    let external: Vec<MessageId> = spec
        .events()
        .filter(|&e| spec.message(e).external.is_some() && !receivers(spec, e).is_empty())
        .collect();
    if !external.is_empty() {
        seq.line(0, "actor outside as Outside");
    }
    for (i, p) in spec.participants.iter().enumerate() {
        seq.line(
            0,
            &format!("participant p{i} as {}", mermaid_text(&p.name.text)),
        );
    }
    for command in spec.commands() {
        seq.run("client", command);
    }
    for event in external {
        seq.run("outside", event);
    }
    seq.out
}

/// What has happened on the way to the current point of a run.
#[derive(Debug, Clone, Default)]
struct Path {
    /// Messages emitted so far.
    emitted: BTreeSet<MessageId>,
    /// Reactions that fired so far.
    fired: BTreeSet<ReactionId>,
}

/// The participants, by index and in order, whose reactions consume `m`.
fn receivers(spec: &Spec, m: MessageId) -> Vec<usize> {
    let mut ps: Vec<usize> = spec
        .flow
        .consumers(m)
        .iter()
        .map(|&r| spec.reaction(r).participant.index())
        .collect();
    ps.sort_unstable();
    ps.dedup();
    ps
}

struct Sequence<'a> {
    spec: &'a Spec,
    out: String,
    lines: usize,
    /// Reactions drawn anywhere in the diagram.
    drawn: BTreeSet<ReactionId>,
}

impl Sequence<'_> {
    /// The run that `m`, sent by `actor`, sets off, under a note with its
    /// doc comment's summary.
    fn run(&mut self, actor: &str, m: MessageId) {
        let spec = self.spec;
        let message = spec.message(m);
        let about = summary(&message.docs);
        if !about.is_empty() {
            let over = match receivers(spec, m).first() {
                Some(h) => format!("{actor},p{h}"),
                None => actor.to_owned(),
            };
            self.line(
                0,
                &format!(
                    "Note over {over}: {}: {}",
                    mermaid_text(&message.name.text),
                    mermaid_text(&about)
                ),
            );
        }
        self.deliver(0, actor, m, &mut Path::default());
    }

    fn line(&mut self, depth: usize, text: &str) {
        // Indentation only helps the eye; capping it keeps a run a thousand
        // decisions deep from growing quadratically.
        let indent = 4 * (depth.min(MAX_INDENT) + 1);
        let _ = writeln!(self.out, "{:indent$}{text}", "");
        self.lines += 1;
    }

    /// `from` publishes `m`: an arrow to each participant that consumes it,
    /// then what each consuming reaction does.
    fn deliver(&mut self, depth: usize, from: &str, m: MessageId, path: &mut Path) {
        let spec = self.spec;
        path.emitted.insert(m);
        let name = mermaid_text(spec.message_name(m));
        let receivers = receivers(spec, m);
        for p in &receivers {
            self.line(depth, &format!("{from}-)p{p}: {name}"));
        }
        if let Some((settlement, _)) = spec.message(m).terminal {
            let how = match settlement {
                Settlement::Success => "success",
                Settlement::Failure => "failure",
            };
            self.line(
                depth,
                &format!("Note over {from}: {name} settles the instance: {how}"),
            );
        } else if receivers.is_empty() && !matches!(from, "client" | "outside") {
            self.line(depth, &format!("Note over {from}: emits {name}"));
        }
        // Joins that still wait are said first, next to the arrows, before
        // the runs of the reactions that fire unfold below.
        let (waiting, firing): (Vec<ReactionId>, Vec<ReactionId>) = spec
            .flow
            .consumers(m)
            .iter()
            .partition(|&&r| self.waits(r, path).is_some());
        for r in waiting {
            if let Some(missing) = self.waits(r, path) {
                let me = format!("p{}", spec.reaction(r).participant.index());
                self.line(depth, &format!("Note over {me}: waits for {missing}"));
            }
        }
        for r in firing {
            self.react(depth, r, m, path);
        }
    }

    /// For a join that cannot fire yet on this path, the events it lacks.
    fn waits(&self, r: ReactionId, path: &Path) -> Option<String> {
        let spec = self.spec;
        let reaction = spec.reaction(r);
        if !reaction.trigger.is_join() || path.fired.contains(&r) {
            return None;
        }
        let missing: Vec<String> = reaction
            .trigger
            .ids()
            .filter(|t| !path.emitted.contains(t))
            .map(|t| mermaid_text(spec.message_name(t)))
            .collect();
        (!missing.is_empty()).then(|| missing.join(" #38; "))
    }

    /// Reaction `r` receives `m`.
    fn react(&mut self, depth: usize, r: ReactionId, m: MessageId, path: &mut Path) {
        let spec = self.spec;
        let reaction = spec.reaction(r);
        let me = format!("p{}", reaction.participant.index());
        if reaction.trigger.is_join() {
            // A join fires once per instance.
            if path.fired.contains(&r) {
                return;
            }
        } else if path.fired.contains(&r) {
            if !reaction.is_sink() {
                self.line(
                    depth,
                    &format!("Note over {me}: reacts again, as above (a cycle)"),
                );
            }
            return;
        }
        if reaction.is_sink() {
            path.fired.insert(r);
            return;
        }
        if self.lines > BUDGET && self.drawn.contains(&r) {
            let on = mermaid_text(spec.message_name(m));
            self.line(
                depth,
                &format!("Note over {me}: on {on}, continues as shown above"),
            );
            return;
        }
        path.fired.insert(r);
        self.drawn.insert(r);
        if let Some(c) = reaction.compensates {
            let undone = mermaid_text(spec.message_name(c.id));
            self.line(depth, &format!("Note over {me}: compensates {undone}"));
        }
        match reaction.outcomes() {
            [] => {}
            [single] => self.outcome(depth, &me, single, path),
            outcomes => {
                for (k, outcome) in outcomes.iter().enumerate() {
                    let keyword = if k == 0 { "alt" } else { "else" };
                    self.line(depth, &format!("{keyword} {}", self.label(outcome)));
                    let mut branch = path.clone();
                    self.outcome(depth + 1, &me, outcome, &mut branch);
                }
                self.line(depth, "end");
            }
        }
    }

    fn label(&self, outcome: &Outcome) -> String {
        if outcome.is_none() {
            return "none".to_owned();
        }
        outcome
            .ids()
            .map(|e| mermaid_text(self.spec.message_name(e)))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    fn outcome(&mut self, depth: usize, me: &str, outcome: &Outcome, path: &mut Path) {
        let events: Vec<MessageId> = outcome.ids().collect();
        match events.as_slice() {
            [] => self.line(depth, &format!("Note over {me}: emits nothing")),
            [event] => self.deliver(depth, me, *event, path),
            _ => {
                // Emitted together: each is there before any is handled.
                path.emitted.extend(events.iter().copied());
                for (k, &event) in events.iter().enumerate() {
                    let keyword = if k == 0 { "par" } else { "and" };
                    let name = mermaid_text(self.spec.message_name(event));
                    self.line(depth, &format!("{keyword} {name}"));
                    self.deliver(depth + 1, me, event, path);
                }
                self.line(depth, "end");
            }
        }
    }
}
