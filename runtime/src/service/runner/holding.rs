//! The event ids of the deliveries this process holds, unsettled: a copy
//! of one is busy until its holder settles.

use std::sync::{Arc, Mutex};

use super::{FastMap, FastSet};
use crate::broker::Delivery;
use crate::envelope::EventId;
use crate::sync::Recover;

/// The event ids of the deliveries this process holds, unsettled, and
/// how many copies of each. A first delivery is handled on a look at
/// the inbox, without a claim (see `Runner::looks_first`); when its
/// done mark is held up (a connection cut), the broker hands the event
/// out again, and the copy would find no claim and run the handler a
/// second time in this very process. A copy of an id held here is
/// busy instead: it comes back once the holder has settled. Kept only
/// where first deliveries look; elsewhere the claim does this.
#[derive(Default)]
pub(super) struct Held(Arc<Mutex<FastMap<EventId, u32>>>);

/// A batch's hold on its event ids in [`Held`], released on drop.
pub(super) struct Holding {
    held: Arc<Mutex<FastMap<EventId, u32>>>,
    ids: Vec<EventId>,
}

impl Held {
    /// Holds the ids of `deliveries`; also says, for each, whether another
    /// batch of this process held it already. Only where first deliveries
    /// look (`looks_first`).
    pub(super) fn take(&self, looks_first: bool, deliveries: &[Delivery]) -> (Holding, Vec<bool>) {
        if !looks_first {
            // Every delivery is claimed: a copy of one held here finds
            // the claim and is busy already, with no bookkeeping.
            let none = Holding {
                held: self.0.clone(),
                ids: Vec::new(),
            };
            return (none, vec![false; deliveries.len()]);
        }
        let ids: Vec<EventId> = deliveries
            .iter()
            .map(|d| d.envelope().id().clone())
            .collect();
        let mut held_here = Vec::with_capacity(ids.len());
        {
            let mut holding = self.0.locked();
            for id in &ids {
                let n = holding.entry(id.clone()).or_insert(0);
                held_here.push(*n > 0);
                *n += 1;
            }
        }
        // Copies within the batch are the batch's own business
        // (`Claims::is_repeat`), not another batch's.
        let mut seen = FastSet::default();
        for (id, here) in ids.iter().zip(held_here.iter_mut()) {
            if !seen.insert(id) {
                *here = false;
            }
        }
        let holding = Holding {
            held: self.0.clone(),
            ids,
        };
        (holding, held_here)
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let mut holding = self.held.locked();
        for id in &self.ids {
            if let Some(n) = holding.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    holding.remove(id);
                }
            }
        }
    }
}
