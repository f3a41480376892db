//! The notice a service publishes after handling events, so that a tracker
//! (in any process) sees every reaction complete, sinks included.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::envelope::{EventId, SharedStr};
use crate::payload::Message;

/// One batch of completed handlings of one participant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressNotice {
    /// The choreography.
    pub choreography: SharedStr,
    /// The participant that handled.
    pub participant: SharedStr,
    /// What was completed, in order.
    pub completions: Vec<Completion>,
}

impl Message for ProgressNotice {
    const TYPE: &'static str = "choreo.ProgressNotice";

    fn batch_len(&self) -> usize {
        self.completions.len()
    }
}

/// One reaction finished with one event (for good: retries pending are not
/// reported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The reaction.
    pub reaction: SharedStr,
    /// The instance key.
    pub instance: SharedStr,
    /// The event handled.
    pub event_id: EventId,
    /// Its wire type.
    pub event_type: SharedStr,
    /// How it ended.
    pub outcome: CompletionOutcome,
    /// The events the handling emitted (mostly one: kept inline).
    pub emitted: SmallVec<[EmittedEvent; 1]>,
}

/// How a reaction finished with an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CompletionOutcome {
    /// The handler ran and succeeded.
    Handled,
    /// A join stored the event and waits for the rest.
    JoinWaiting,
    /// The event was dead-lettered for this reaction.
    DeadLettered {
        /// Why.
        reason: String,
    },
}

/// An event a handling emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmittedEvent {
    /// Its id.
    pub id: EventId,
    /// Its wire type.
    #[serde(rename = "type")]
    pub ty: SharedStr,
}
