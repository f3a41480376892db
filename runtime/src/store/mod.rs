//! Stores that make handling idempotent and joins exact: the inbox
//! (deduplication by event id) and the state store (join slots and
//! `@bounded` counters). Memory stores are always here. The durable ones
//! survive restarts and are shared by replicas: NATS JetStream Key-Value
//! (feature `nats`), Redis keys (feature `redis`) and PostgreSQL tables
//! (feature `postgres`); [`connect`](crate::service::Stores::connect)
//! picks one by URL.

mod connect;
mod memory;
#[cfg(feature = "nats")]
pub mod nats;
mod options;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use connect::{describe, Stores};
pub use memory::{MemoryInbox, MemoryStateStore};
#[cfg(feature = "nats")]
pub use nats::{NatsKvInbox, NatsKvStateStore, NatsKvStores};
pub use options::{StoreOptions, DEFAULT_WINDOW};
#[cfg(feature = "postgres")]
pub use postgres::{PgInbox, PgStateStore, PgStores};
#[cfg(feature = "redis")]
pub use redis::{RedisInbox, RedisStateStore, RedisStores};

use crate::envelope::{Envelope, EventId};

/// A store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed or cannot be reached.
    #[error("store backend error: {0}")]
    Backend(String),
    /// Stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A name given to the store is not usable.
    #[error("invalid store configuration: {0}")]
    Config(String),
}

/// The answer to [`InboxStore::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Yours: handle it, then [`InboxStore::complete`] or [`InboxStore::release`].
    Acquired,
    /// Handled already: acknowledge the duplicate and move on.
    Done,
    /// Someone holds a live claim (a concurrent duplicate): try later.
    Busy,
}

/// Remembers which events each reaction has handled.
///
/// `scope` names one reaction of one participant; `id` is the event id (or
/// for a join, an id derived from the instance). A claim is a lease: if its
/// holder dies without completing or releasing, the claim lapses after
/// `lease` and the event can be handled again (at-least-once).
///
/// The operations take batches (a service claims a whole delivery batch
/// in one call, one round trip to a database); an id repeated within one
/// batch is claimed once and `Busy` the other times.
#[async_trait]
pub trait InboxStore: Send + Sync + 'static {
    /// Claims each of `ids` in `scope` for `lease`; one answer per id, in order.
    async fn claim_many(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError>;
    /// [`InboxStore::claim_many`] on behalf of `owner`: a number the
    /// caller picks anew for each claim and keeps through the retries of
    /// that claim (never 0). A live claim that `owner` already holds is
    /// `Acquired` again, so that a retry after an answer lost on the way
    /// (the connection cut after the store took the claim) does not find
    /// its own claim `Busy` and wait out the lease. A store whose answers
    /// cannot be lost (in-process) may keep the default, which ignores
    /// `owner`.
    async fn claim_many_as(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
        owner: u64,
    ) -> Result<Vec<Claim>, StoreError> {
        let _ = owner;
        self.claim_many(scope, ids, lease).await
    }
    /// Marks `ids` handled for good.
    async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError>;
    /// Gives claims up (the handlings failed and will be retried).
    async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError>;

    /// Claims one id.
    async fn claim(&self, scope: &str, id: &EventId, lease: Duration) -> Result<Claim, StoreError> {
        let claims = self
            .claim_many(scope, std::slice::from_ref(id), lease)
            .await?;
        claims
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Backend("claim_many returned no answer".into()))
    }
    /// [`InboxStore::claim_many_as`] for one id.
    async fn claim_as(
        &self,
        scope: &str,
        id: &EventId,
        lease: Duration,
        owner: u64,
    ) -> Result<Claim, StoreError> {
        let claims = self
            .claim_many_as(scope, std::slice::from_ref(id), lease, owner)
            .await?;
        claims
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Backend("claim_many_as returned no answer".into()))
    }
    /// Marks one id handled.
    async fn complete(&self, scope: &str, id: &EventId) -> Result<(), StoreError> {
        self.complete_many(scope, std::slice::from_ref(id)).await
    }
    /// Gives one claim up.
    async fn release(&self, scope: &str, id: &EventId) -> Result<(), StoreError> {
        self.release_many(scope, std::slice::from_ref(id)).await
    }
}

/// Checks a join slot index against the join's size.
pub(crate) fn check_slot(slot: usize, slots: usize) -> Result<(), StoreError> {
    if slot < slots {
        Ok(())
    } else {
        Err(StoreError::Config(format!("join slot {slot} of {slots}")))
    }
}

/// Per-instance state of reactions: join slots and `@bounded` counters.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Puts `envelope` in `slot` (of `slots`) of the join `scope` for
    /// `instance`; the first envelope in a slot stays. Returns every slot's
    /// envelope, in slot order, once all are filled (each time it is asked
    /// after that too: the inbox, not this store, makes the join fire once).
    async fn join_arrive(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> Result<Option<Vec<Envelope>>, StoreError>;

    /// Forgets the slots of the join `scope` for `instance`, once it has
    /// fired and its firing is marked done, so that fired joins do not
    /// pile up. A store that forgets by itself may keep the default, which
    /// does nothing.
    async fn join_clear(&self, scope: &str, instance: &str) -> Result<(), StoreError> {
        let _ = (scope, instance);
        Ok(())
    }

    /// How many times the reaction `scope` has fired in `instance`.
    async fn fired_count(&self, scope: &str, instance: &str) -> Result<u64, StoreError>;

    /// Counts one more firing; returns the new count.
    async fn record_firing(&self, scope: &str, instance: &str) -> Result<u64, StoreError>;
}
