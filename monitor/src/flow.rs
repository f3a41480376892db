//! What the spec allows, by the names the running services use: every
//! message's wire type and what it is, every reaction's participant, run-time
//! name, triggers and outcome alternatives. Built from the checked spec and
//! the compiler's [`wire_names`], the same planning as the generated code.

use std::collections::HashMap;
use std::time::Duration;

use choreo_compiler::codegen::wire_names;
use choreo_compiler::model::{Settlement, TriggerKind};
use choreo_compiler::CheckedSpec;
use choreo_runtime::progress::TerminalKind;

/// One command or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Its name in the spec.
    pub name: String,
    /// Its wire type, which is also its topic.
    pub wire: String,
    /// A command (it starts an instance).
    pub command: bool,
    /// `@external`: produced outside the choreography.
    pub external: bool,
    /// `@terminal`, and how it settles the instance.
    pub terminal: Option<TerminalKind>,
    /// `@deadline` of a command.
    pub deadline: Option<Duration>,
}

/// One reaction of one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionInfo {
    /// The participant.
    pub participant: String,
    /// Its run-time name (as in progress notices).
    pub name: String,
    /// A join (`A & B`): fires once every trigger has arrived.
    pub join: bool,
    /// The wire types that trigger it, in the order written.
    pub triggers: Vec<String>,
    /// Its outcome alternatives, each the wire types one firing emits
    /// together (`none` is an empty one); a sink has none at all.
    pub outcomes: Vec<Vec<String>>,
}

impl ReactionInfo {
    /// The spec's way of writing the reaction, for messages:
    /// `Payment on OrderPlaced & StockReserved`.
    pub fn describe(&self, flow: &Flow) -> String {
        format!("{} on {}", self.participant, self.trigger(flow))
    }

    /// Its trigger as the spec writes it: `OrderPlaced & StockReserved`.
    pub fn trigger(&self, flow: &Flow) -> String {
        let sep = if self.join { " & " } else { " | " };
        let triggers: Vec<&str> = self.triggers.iter().map(|t| flow.name_of(t)).collect();
        triggers.join(sep)
    }

    /// Whether one alternative emits every type of `emitted`.
    pub fn allows_together(&self, emitted: &[&str]) -> bool {
        emitted.is_empty()
            || self
                .outcomes
                .iter()
                .any(|alt| emitted.iter().all(|t| alt.iter().any(|a| a == t)))
    }

    /// Whether any alternative emits `ty`.
    pub fn may_emit(&self, ty: &str) -> bool {
        self.outcomes.iter().flatten().any(|t| t == ty)
    }
}

/// Index of a reaction in [`Flow::reactions`].
pub type ReactionIndex = usize;

/// The spec as the monitor reads the wire.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The choreography's name.
    pub choreography: String,
    /// Every command and event, by wire type.
    pub messages: HashMap<String, MessageInfo>,
    /// Every reaction, in the spec's order.
    pub reactions: Vec<ReactionInfo>,
    consumers: HashMap<String, Vec<ReactionIndex>>,
    by_name: HashMap<(String, String), ReactionIndex>,
}

impl Flow {
    /// The flow of a checked spec.
    pub fn new(spec: &CheckedSpec) -> Flow {
        let names = wire_names(spec);
        let wire = |id: choreo_compiler::model::MessageId| {
            names.types.get(id.index()).cloned().unwrap_or_default()
        };
        let mut messages = HashMap::new();
        for (i, m) in spec.messages.iter().enumerate() {
            let ty = names.types.get(i).cloned().unwrap_or_default();
            messages.insert(
                ty.clone(),
                MessageInfo {
                    name: m.name.text.to_string(),
                    wire: ty,
                    command: m.is_command(),
                    external: m.external.is_some(),
                    terminal: m.terminal.map(|(s, _)| match s {
                        Settlement::Success => TerminalKind::Success,
                        Settlement::Failure => TerminalKind::Failure,
                    }),
                    deadline: m.deadline.as_ref().map(|d| d.0),
                },
            );
        }
        let mut reactions = Vec::new();
        for (i, r) in spec.reactions.iter().enumerate() {
            reactions.push(ReactionInfo {
                participant: spec.participant(r.participant).name.text.to_string(),
                name: names.reactions.get(i).cloned().unwrap_or_default(),
                join: r.trigger.kind == TriggerKind::All && r.trigger.messages.len() > 1,
                triggers: r.trigger.ids().map(wire).collect(),
                outcomes: r
                    .outcomes()
                    .iter()
                    .map(|o| o.ids().map(wire).collect())
                    .collect(),
            });
        }
        Flow::of(spec.name.text.to_string(), messages, reactions)
    }

    /// A flow from its parts (tests, and tools that hold no spec).
    pub fn of(
        choreography: String,
        messages: HashMap<String, MessageInfo>,
        reactions: Vec<ReactionInfo>,
    ) -> Flow {
        let mut consumers: HashMap<String, Vec<ReactionIndex>> = HashMap::new();
        let mut by_name = HashMap::new();
        for (i, r) in reactions.iter().enumerate() {
            for t in &r.triggers {
                consumers.entry(t.clone()).or_default().push(i);
            }
            by_name.insert((r.participant.clone(), r.name.clone()), i);
        }
        Flow {
            choreography,
            messages,
            reactions,
            consumers,
            by_name,
        }
    }

    /// The reactions that `ty` triggers.
    pub fn consumers_of(&self, ty: &str) -> &[ReactionIndex] {
        self.consumers.get(ty).map_or(&[], Vec::as_slice)
    }

    /// The reaction `name` of `participant`.
    pub fn reaction(&self, participant: &str, name: &str) -> Option<ReactionIndex> {
        self.by_name
            .get(&(participant.to_owned(), name.to_owned()))
            .copied()
    }

    /// The spec's name of wire type `ty` (the wire type itself if unknown).
    pub fn name_of<'a>(&'a self, ty: &'a str) -> &'a str {
        self.messages.get(ty).map_or(ty, |m| m.name.as_str())
    }

    /// Whether some reaction that `cause` triggers may emit `ty`.
    pub fn may_cause(&self, cause: &str, ty: &str) -> bool {
        self.consumers_of(cause)
            .iter()
            .filter_map(|&i| self.reactions.get(i))
            .any(|r| r.may_emit(ty))
    }
}
