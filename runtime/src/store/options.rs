//! What every durable store is told: whose it is, and how long it keeps
//! what it may forget.

use std::time::Duration;

/// Options of the durable stores (NATS Key-Value, Redis, PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The deployment's prefix, as its topics have it: stores of two
    /// deployments on one server never meet.
    pub prefix: String,
    /// How long done-marks and `@bounded` counters are kept.
    ///
    /// A done-mark must outlive every way the same event can come again: a
    /// redelivery (by default at most `max_deliveries × ack_wait`, 100 ×
    /// 30 s, under an hour), a producer's retried publish (the broker's
    /// deduplication window, minutes) and a consumer group made anew at
    /// the start of a topic that still holds old events. The default, 7
    /// days, covers the first two many times over and the third for a
    /// week of retention; a deployment that keeps events longer should keep
    /// its done-marks as long. Waiting join slots go by
    /// [`StoreOptions::join_window`] instead; a fired join's slots are
    /// removed at once.
    pub window: Duration,
    /// How long a join that has not fired is kept after its latest
    /// arrival; `None` (the default) keeps it for ever, since a join may
    /// wait for a late command.
    ///
    /// A join whose other events can no longer come (its instance ended
    /// on another path: an order that failed before its payment) waits
    /// for ever too, so a deployment that runs for long should set one: as
    /// long as the longest a join's events may legitimately lie apart. An
    /// arrival later than that finds the join empty and waits again. A
    /// join is kept at least this long; PostgreSQL removes it at its next
    /// sweep after that (within a minute), NATS and Redis at once. The
    /// in-memory store keeps joins as long as its process.
    pub join_window: Option<Duration>,
    /// Replicas of what the store keeps, where the server replicates (NATS
    /// JetStream): as many as the deployment's streams have.
    pub replicas: usize,
}

/// The default [`StoreOptions::window`]: 7 days.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            prefix: String::new(),
            window: DEFAULT_WINDOW,
            join_window: None,
            replicas: 1,
        }
    }
}

impl StoreOptions {
    /// The defaults, under `prefix`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        StoreOptions {
            prefix: prefix.into(),
            ..StoreOptions::default()
        }
    }
}
