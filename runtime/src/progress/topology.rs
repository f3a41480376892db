//! The static shape of a choreography that a tracker needs: which
//! reactions consume which types, and which events are terminal.

use std::collections::{BTreeSet, HashMap};

use crate::envelope::SharedStr;
use crate::service::ServiceDefinition;

/// How a terminal event settles its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalKind {
    /// `@terminal`.
    Success,
    /// `@terminal(failure)`.
    Failure,
}

/// One reaction of one participant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReactionRef {
    /// The participant.
    pub participant: SharedStr,
    /// The reaction.
    pub reaction: SharedStr,
}

/// Which reactions consume which wire types, and which types are terminal.
/// Generated code supplies it for the whole choreography.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub(crate) choreography: SharedStr,
    pub(crate) consumers: HashMap<SharedStr, Vec<ReactionRef>>,
    pub(crate) terminals: HashMap<SharedStr, TerminalKind>,
    pub(crate) types: BTreeSet<SharedStr>,
}

impl Topology {
    /// An empty topology of `choreography`.
    pub fn new(choreography: impl Into<SharedStr>) -> Self {
        Topology {
            choreography: choreography.into(),
            ..Topology::default()
        }
    }

    /// `participant`'s reaction `reaction` consumes these types (all of a
    /// join's types, or every alternative of `A | B`).
    pub fn reaction<T: Into<SharedStr>>(
        mut self,
        participant: impl Into<SharedStr>,
        reaction: impl Into<SharedStr>,
        consumes: impl IntoIterator<Item = T>,
    ) -> Self {
        let r = ReactionRef {
            participant: participant.into(),
            reaction: reaction.into(),
        };
        for t in consumes {
            let t = t.into();
            self.types.insert(t.clone());
            self.consumers.entry(t).or_default().push(r.clone());
        }
        self
    }

    /// A type to watch even if nobody consumes it.
    pub fn event(mut self, ty: impl Into<SharedStr>) -> Self {
        self.types.insert(ty.into());
        self
    }

    /// Emitting `ty` settles the instance with `kind` (the first terminal
    /// event of an instance decides).
    pub fn terminal(mut self, ty: impl Into<SharedStr>, kind: TerminalKind) -> Self {
        let ty = ty.into();
        self.types.insert(ty.clone());
        self.terminals.insert(ty, kind);
        self
    }

    /// Adds every reaction of `definition`.
    pub fn with_service(mut self, definition: &ServiceDefinition) -> Self {
        for r in definition.reactions() {
            self = self.reaction(
                definition.participant().to_owned(),
                r.name().to_owned(),
                r.trigger().types().iter().cloned(),
            );
        }
        self
    }

    /// The choreography's name.
    pub fn choreography(&self) -> &str {
        &self.choreography
    }

    /// The reactions consuming `ty`.
    pub fn consumers_of(&self, ty: &str) -> &[ReactionRef] {
        self.consumers.get(ty).map_or(&[], Vec::as_slice)
    }

    /// Whether, and how, `ty` is terminal.
    pub fn terminal_kind(&self, ty: &str) -> Option<TerminalKind> {
        self.terminals.get(ty).copied()
    }

    /// Every type named.
    pub fn types(&self) -> impl Iterator<Item = &SharedStr> {
        self.types.iter()
    }
}
