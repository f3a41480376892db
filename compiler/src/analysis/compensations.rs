//! The compensations of a spec, indexed by the event they undo.

use crate::model::{MessageId, ReactionId, Spec};
use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet as HashSet;

/// Per compensated event: its compensations, and the events that trigger
/// them (forbidden in the runs W0207 judges).
pub(crate) struct Compensations {
    pub by_event: HashMap<MessageId, (Vec<ReactionId>, HashSet<MessageId>)>,
}

impl Compensations {
    pub fn new(spec: &Spec) -> Self {
        let mut by_event: HashMap<MessageId, (Vec<ReactionId>, HashSet<MessageId>)> =
            HashMap::default();
        for rid in spec.reaction_ids() {
            if let Some(x) = spec.reaction(rid).compensates {
                let (comps, forbidden) = by_event.entry(x.id).or_default();
                comps.push(rid);
                forbidden.extend(spec.flow.trigger(rid).iter().copied());
            }
        }
        Compensations { by_event }
    }
}
