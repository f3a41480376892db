//! How far each instance has got: a static [`Topology`], the
//! [`ProgressNotice`]s services publish after handling, and an
//! [`InstanceTracker`] that puts them together.

pub mod notice;
mod topology;
mod tracker;

pub use notice::{Completion, CompletionOutcome, EmittedEvent, ProgressNotice};
pub use topology::{ReactionRef, TerminalKind, Topology};
pub use tracker::{
    DeadLetterRecord, InstanceOutcome, InstanceProgress, InstanceTracker, PendingReaction,
    SeenEvent, TrackerOptions,
};
