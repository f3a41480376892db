//! What a campaign writes: the JSON report (the fault timeline, the
//! recovery after each fault, the outcome of every instance, the proof
//! that each fault kind bit) and its one-line verdict.

use std::collections::BTreeMap;

use crate::example::Example;
use crate::faults::Fault;
use crate::servers::BrokerKind;

/// One fault as it happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Injected {
    /// Milliseconds from the campaign's start.
    pub at_ms: u64,
    /// Its kind.
    pub kind: Fault,
    /// What it hit (`Payment#1`, the server `n2`, every proxy).
    pub target: String,
    /// What exactly was done, and for how long.
    pub detail: String,
    /// Milliseconds from the fault until what it hit handled events
    /// again (`None`: not seen, as when no work came its way).
    pub recovered_ms: Option<u64>,
    /// Whether it is known to have hit work: deliveries in flight at a
    /// kill, deliveries taken over after a pause, duplicates that reached
    /// handlers.
    pub bit: bool,
}

/// A dead letter, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct DeadLetter {
    /// The event's type.
    pub event: String,
    /// The instance.
    pub key: String,
    /// The group that gave it up.
    pub group: String,
    /// The runtime's reason.
    pub reason: String,
}

/// Evidence that the faults chosen bit.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Proof {
    /// Participant processes killed.
    pub kills: usize,
    /// Of those, the ones holding deliveries in flight when killed.
    pub kills_in_flight: usize,
    /// Processes paused past the ack wait and the claim lease.
    pub pauses: usize,
    /// Deliveries lost by a killed or paused holder and taken over by
    /// another process (or the restarted one), which handled them or
    /// found them done already: takeovers.
    pub takeovers: u64,
    /// Broker servers killed and restarted.
    pub broker_restarts: usize,
    /// Network faults (latency, resets, blackholes).
    pub net_faults: usize,
    /// Events the outside producer published again.
    pub duplicates_injected: u64,
    /// Deliveries the services' inboxes recognised as handled already
    /// (the injected copies, and the redeliveries of the other faults).
    pub duplicates_delivered: u64,
    /// Commands the ingress refused with 503 and the driver sent again.
    pub retried_after_503: u64,
}

/// Recovery times, in milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Percentiles {
    /// How many were measured.
    pub count: usize,
    /// Median.
    pub p50: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Longest.
    pub max: Option<u64>,
}

impl Percentiles {
    /// Of `values`.
    pub fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        let at = |q: f64| {
            if values.is_empty() {
                return None;
            }
            let i = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
            values.get(i).copied()
        };
        Percentiles {
            count: values.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: values.last().copied(),
        }
    }
}

/// The report of a campaign.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The command that reproduces it.
    pub command: String,
    /// The example.
    pub example: Example,
    /// The broker.
    pub broker: BrokerKind,
    /// The seed of the faults and the data.
    pub seed: u64,
    /// Processes per participant.
    pub replicas: usize,
    /// The fault kinds chosen.
    pub faults: Vec<Fault>,
    /// Seconds the campaign took.
    pub seconds: f64,
    /// Instances placed (accepted by the ingress).
    pub placed: usize,
    /// Of those, settled.
    pub settled: usize,
    /// Accepted but never settled.
    pub lost: usize,
    /// Where the books do not add up.
    pub double_effects: Vec<String>,
    /// Every dead letter, with its reason.
    pub dead_letters: Vec<DeadLetter>,
    /// Recovery after each kill, from the kill until the participant
    /// handled events again.
    pub recovery_after_kill_ms: Percentiles,
    /// Every fault, in order.
    pub timeline: Vec<Injected>,
    /// That the faults bit.
    pub proof: Proof,
    /// Problems of the campaign itself (a fault kind that never bit, a
    /// process that crashed by itself).
    pub problems: Vec<String>,
    /// Processes that exited by themselves and were started again, as a
    /// supervisor does (mostly a start refused while a server was down).
    pub supervised: Vec<String>,
    /// How each instance ended, by key.
    pub instances: BTreeMap<String, Option<String>>,
    /// The driver's summary.
    pub summary: String,
    /// A soak's samples (none otherwise).
    pub samples: Vec<crate::soak::Sample>,
}

impl Report {
    /// Whether the campaign holds: everything settled, nothing lost or
    /// done twice, and every fault kind chosen bit.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.settled == self.placed
            && self.placed > 0
            && self.double_effects.is_empty()
            && self.problems.is_empty()
    }

    /// `chaos: settled N/N, lost 0, double effects 0, dead letters D`.
    pub fn line(&self) -> String {
        format!(
            "chaos: settled {}/{}, lost {}, double effects {}, dead letters {}",
            self.settled,
            self.placed,
            self.lost,
            self.double_effects.len(),
            self.dead_letters.len()
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let p = Percentiles::of((1..=100).rev().collect());
        assert_eq!(
            (p.count, p.p50, p.p99, p.max),
            (100, Some(50), Some(99), Some(100))
        );
        let p = Percentiles::of(vec![7]);
        assert_eq!((p.p50, p.p99), (Some(7), Some(7)));
        assert_eq!(Percentiles::of(vec![]).p50, None);
    }
}
