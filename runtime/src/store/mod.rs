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
#[cfg(feature = "postgres")]
pub mod postgres_tls;
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

/// What [`InboxStore::look_many`] found for an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Neither done nor claimed (a lapsed claim counts as none).
    Unseen,
    /// Handled already.
    Done,
    /// Someone holds a live claim.
    Claimed,
}

/// What a claim would have found: an acquired claim was unseen.
impl From<Claim> for Seen {
    fn from(claim: Claim) -> Seen {
        match claim {
            Claim::Acquired => Seen::Unseen,
            Claim::Done => Seen::Done,
            Claim::Busy => Seen::Claimed,
        }
    }
}

/// What a look means to a handling that took no claim: an unseen id is
/// its own to handle, as an acquired one.
impl From<Seen> for Claim {
    fn from(seen: Seen) -> Claim {
        match seen {
            Seen::Unseen => Claim::Acquired,
            Seen::Done => Claim::Done,
            Seen::Claimed => Claim::Busy,
        }
    }
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
    /// Reads what the inbox holds for each of `ids` in `scope`, writing
    /// nothing; one answer per id, in order, and an id repeated within
    /// one call is [`Seen::Claimed`] after its first time.
    ///
    /// The runtime looks instead of claiming where the broker already
    /// rules a concurrent copy out (a first delivery on a broker that
    /// drops a second publish of an id): the id is then handled, and
    /// completed or released, as if claimed. The default claims and gives
    /// back at once what it acquired, which leaves the inbox as it was; a
    /// store where a read costs less than two writes overrides it.
    async fn look_many(&self, scope: &str, ids: &[EventId]) -> Result<Vec<Seen>, StoreError> {
        let claims = self.claim_many(scope, ids, LOOK_LEASE).await?;
        let acquired: Vec<EventId> = ids
            .iter()
            .zip(&claims)
            .filter(|(_, c)| **c == Claim::Acquired)
            .map(|(id, _)| id.clone())
            .collect();
        self.release_many(scope, &acquired).await?;
        Ok(claims.into_iter().map(Seen::from).collect())
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

/// The lease of the claims that [`InboxStore::look_many`]'s default takes
/// (and gives back at once).
const LOOK_LEASE: Duration = Duration::from_secs(60);

/// The first occurrence of each id in `ids`, by position.
pub(crate) fn first_occurrences(ids: &[EventId]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().map(|id| seen.insert(id)).collect()
}

/// Checks a join slot index against the join's size.
pub(crate) fn check_slot(slot: usize, slots: usize) -> Result<(), StoreError> {
    if slot < slots {
        Ok(())
    } else {
        Err(StoreError::Config(format!("join slot {slot} of {slots}")))
    }
}

/// What a join arrival found (see [`StateStore::join_arrival`]).
#[derive(Debug, Clone, PartialEq)]
pub enum JoinArrival {
    /// A slot is still empty: the join waits.
    Waiting,
    /// Every slot is filled, the last by this very call: the arrival that
    /// completed the join, on its first try.
    Completed(Vec<Envelope>),
    /// Every slot was filled already.
    Full {
        /// Every slot's envelope, in slot order.
        all: Vec<Envelope>,
        /// Whether this envelope is the one whose arrival completed the
        /// join (it comes again); `false` where the store does not know.
        completed_by_this: bool,
        /// How long ago the join was completed, where the store knows.
        age: Option<Duration>,
    },
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

    /// [`StateStore::join_arrive`], telling apart the arrival that
    /// completed the join from later ones, which lets the runtime fire a
    /// join completed by a first delivery without an inbox claim (see
    /// docs/runtime.md). The default knows neither who completed the join
    /// nor when: a full join is [`JoinArrival::Full`] without an age, and
    /// its firing is claimed as always.
    async fn join_arrival(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> Result<JoinArrival, StoreError> {
        Ok(
            match self
                .join_arrive(scope, instance, slot, slots, envelope)
                .await?
            {
                None => JoinArrival::Waiting,
                Some(all) => JoinArrival::Full {
                    all,
                    completed_by_this: false,
                    age: None,
                },
            },
        )
    }

    /// Forgets the slots of the join `scope` for `instance`, once it has
    /// fired and its firing is marked done, so that fired joins do not
    /// pile up. A store that forgets by itself may keep the default, which
    /// does nothing.
    async fn join_clear(&self, scope: &str, instance: &str) -> Result<(), StoreError> {
        let _ = (scope, instance);
        Ok(())
    }

    /// How many times the reaction `scope` has fired in `instance`, and
    /// whether the firing `firing` (its delivery's dedup id) is one of
    /// them.
    async fn firings(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<Firings, StoreError>;

    /// Counts the firing `firing` of the reaction `scope` in `instance`,
    /// once: counting a firing already counted leaves the count as it
    /// is. Returns the count.
    ///
    /// Once, because a `@bounded` reaction counts after it publishes and
    /// before its delivery is marked done and acknowledged: a process
    /// killed or paused in between has its delivery come again, and a
    /// count per call would count that firing twice (a chaos campaign
    /// found rightful rounds dead-lettered as "bound exceeded").
    async fn record_firing(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<u64, StoreError>;
}

/// What a store knows of a `@bounded` reaction's firings in one instance
/// ([`StateStore::firings`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Firings {
    /// How many distinct firings were counted (within the store's window).
    pub count: u64,
    /// Whether the firing asked about is one of them: its events are out,
    /// and only its done-mark and acknowledgement were lost.
    pub counted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inbox that keeps the trait's default look.
    struct NoLook(MemoryInbox);

    #[async_trait]
    impl InboxStore for NoLook {
        async fn claim_many(
            &self,
            scope: &str,
            ids: &[EventId],
            lease: Duration,
        ) -> Result<Vec<Claim>, StoreError> {
            self.0.claim_many(scope, ids, lease).await
        }
        async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
            self.0.complete_many(scope, ids).await
        }
        async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
            self.0.release_many(scope, ids).await
        }
    }

    #[tokio::test]
    async fn the_default_look_leaves_the_inbox_as_it_was() {
        let inbox = NoLook(MemoryInbox::new());
        let (a, b, c) = (EventId::now(), EventId::now(), EventId::now());
        let lease = Duration::from_secs(30);
        inbox.complete("s", &b).await.unwrap();
        assert_eq!(inbox.claim("s", &c, lease).await.unwrap(), Claim::Acquired);
        let seen = inbox
            .look_many("s", &[a.clone(), a.clone(), b.clone(), c.clone()])
            .await
            .unwrap();
        assert_eq!(
            seen,
            [Seen::Unseen, Seen::Claimed, Seen::Done, Seen::Claimed]
        );
        // Nothing of the look stays: the unseen id is still free.
        assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Acquired);
        assert_eq!(inbox.claim("s", &c, lease).await.unwrap(), Claim::Busy);
    }
}
