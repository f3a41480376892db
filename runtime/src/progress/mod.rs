//! How far each instance has got: a static [`Topology`], the
//! [`ProgressNotice`]s services publish after handling, and an
//! [`InstanceTracker`] that puts them together.
//!
//! This module reads what services write and never the other way: the
//! notice's wire format belongs to the services ([`crate::service::notice`]),
//! and is re-exported here for the trackers' users.

mod topology;
mod tracker;

/// The notice's former path.
#[deprecated(note = "moved to `choreo_runtime::service::notice`")]
pub mod notice {
    pub use crate::service::notice::*;
}

pub use crate::service::notice::{Completion, CompletionOutcome, EmittedEvent, ProgressNotice};
pub use topology::{ReactionRef, TerminalKind, Topology};
pub use tracker::{
    DeadLetterRecord, InstanceOutcome, InstanceProgress, InstanceTracker, PendingReaction,
    SeenEvent, TrackerOptions,
};
