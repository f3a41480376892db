//! Each side's commands, events and participants by name, so that a spec
//! of a hundred thousand messages is compared in linear time.

use crate::model::{Message, Participant, Spec};
use rustc_hash::FxHashMap;

/// One side's items by name.
pub(super) struct Names<'a> {
    messages: FxHashMap<&'a str, &'a Message>,
    participants: FxHashMap<&'a str, &'a Participant>,
}

impl<'a> Names<'a> {
    pub(super) fn of(spec: &'a Spec) -> Self {
        Names {
            messages: spec
                .messages
                .iter()
                .map(|m| (m.name.text.as_str(), m))
                .collect(),
            participants: spec
                .participants
                .iter()
                .map(|p| (p.name.text.as_str(), p))
                .collect(),
        }
    }

    /// The message of this side that `m` of the other side is: same name
    /// and kind. A command that became an event (or back) is another wire
    /// contract, so it counts as removed and added.
    pub(super) fn counterpart(&self, m: &Message) -> Option<&'a Message> {
        self.messages
            .get(m.name.text.as_str())
            .copied()
            .filter(|other| other.kind == m.kind)
    }

    /// The participant of this name on this side.
    pub(super) fn participant(&self, name: &str) -> Option<&'a Participant> {
        self.participants.get(name).copied()
    }
}
