//! The fault kinds, and the seeded schedule that picks them.

use std::time::Duration;

/// A kind of fault.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL a participant process; start it again after a random delay.
    Kill,
    /// SIGSTOP a participant process past the ack wait and the claim
    /// lease, then SIGCONT.
    Pause,
    /// Kill a broker server (on the cluster, the stream's leader) and
    /// start it again.
    BrokerRestart,
    /// Latency, reset connections or a blackhole between the services and
    /// the broker, for seconds.
    Net,
    /// Publish events again, late and out of order, so that they reach
    /// the services.
    Duplicates,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 5] = [
        Fault::Kill,
        Fault::Pause,
        Fault::BrokerRestart,
        Fault::Net,
        Fault::Duplicates,
    ];
}

/// What a network fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFault {
    /// This much latency on every chunk, for a while.
    Latency(Duration),
    /// Every connection reset, new ones refused, for a while.
    Reset,
    /// Nothing forwarded, for a while.
    Blackhole,
}

/// The seeded source of every random choice of a campaign: the same seed
/// and options give the same schedule (the processes' own timing varies).
pub struct Schedule {
    rng: fastrand::Rng,
    kinds: Vec<Fault>,
    turn: usize,
}

impl Schedule {
    /// A schedule over `kinds` from `seed`.
    pub fn new(seed: u64, kinds: &[Fault]) -> Self {
        let mut kinds = kinds.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        Schedule {
            rng: fastrand::Rng::with_seed(seed),
            kinds,
            turn: 0,
        }
    }

    /// The time until the next fault.
    pub fn gap(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(1200..3500))
    }

    /// The next fault's kind: each kind in turn first, so that a short
    /// campaign has them all, then at random.
    pub fn kind(&mut self) -> Option<Fault> {
        self.kind_preferring(&[])
    }

    /// As [`Schedule::kind`], but past the first turn a kind of `wanted`
    /// when there is one: a campaign asks again for the kinds that have
    /// not bitten yet (a pause of a process whose one delivery was
    /// settled already proves nothing), rather than leave their proof to
    /// chance.
    pub fn kind_preferring(&mut self, wanted: &[Fault]) -> Option<Fault> {
        if self.kinds.is_empty() {
            return None;
        }
        let wanted: Vec<Fault> = wanted
            .iter()
            .copied()
            .filter(|k| self.kinds.contains(k))
            .collect();
        let k = if self.turn < self.kinds.len() {
            self.kinds[self.turn]
        } else if !wanted.is_empty() {
            wanted[self.rng.usize(0..wanted.len())]
        } else {
            self.kinds[self.rng.usize(0..self.kinds.len())]
        };
        self.turn += 1;
        Some(k)
    }

    /// A random index below `n` (at least 1).
    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.usize(0..n.max(1))
    }

    /// A random duration between `lo` and `hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.u64(lo..hi.max(lo + 1)))
    }

    /// A random network fault.
    pub fn net(&mut self) -> NetFault {
        match self.rng.u8(0..3) {
            0 => NetFault::Latency(self.millis(50, 300)),
            1 => NetFault::Reset,
            _ => NetFault::Blackhole,
        }
    }

    /// A random count between `lo` and `hi`.
    pub fn count(&mut self, lo: usize, hi: usize) -> usize {
        self.rng.usize(lo..hi.max(lo + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_comes_first_in_turn_then_the_seed_decides() {
        let mut a = Schedule::new(7, &[Fault::Net, Fault::Kill, Fault::Kill]);
        assert_eq!(a.kind(), Some(Fault::Kill));
        assert_eq!(a.kind(), Some(Fault::Net));
        let mut b = Schedule::new(7, &[Fault::Kill, Fault::Net]);
        b.kind();
        b.kind();
        let later_a: Vec<_> = (0..20).map(|_| a.kind()).collect();
        let later_b: Vec<_> = (0..20).map(|_| b.kind()).collect();
        assert_eq!(later_a, later_b, "the same seed gives the same schedule");
        assert!(later_a.contains(&Some(Fault::Kill)) && later_a.contains(&Some(Fault::Net)));
        assert_eq!(Schedule::new(1, &[]).kind(), None);
    }

    #[test]
    fn past_the_first_turn_the_kinds_not_proven_yet_come_again() {
        let mut s = Schedule::new(3, &Fault::ALL);
        let first: Vec<_> = (0..5).map(|_| s.kind_preferring(&[Fault::Pause])).collect();
        // The first turn is every kind, whatever is wanted.
        assert_eq!(first, Fault::ALL.map(Some));
        for _ in 0..20 {
            assert_eq!(s.kind_preferring(&[Fault::Pause]), Some(Fault::Pause));
        }
        // A kind not chosen for the campaign is never asked for.
        let mut kills = Schedule::new(3, &[Fault::Kill]);
        kills.kind();
        assert_eq!(kills.kind_preferring(&[Fault::Pause]), Some(Fault::Kill));
    }
}
