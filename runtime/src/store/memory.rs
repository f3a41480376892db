//! In-process stores: fast, and gone with the process.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{check_slot, Claim, InboxStore, StateStore, StoreError};
use crate::envelope::{Envelope, EventId};

/// `DONE`, or the end of a claim's lease in milliseconds after the
/// inbox's creation (plus one): an entry is one word, which matters at
/// a hundred thousand entries per scope.
type Entry = u64;
const DONE: Entry = 0;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct ScopeInbox {
    entries: Map<EventId, Entry>,
    done_order: VecDeque<EventId>,
}

/// An inbox in memory. It remembers the last `capacity` completed ids per
/// scope (default 100,000): a duplicate older than that is handled again.
/// That suits one process, where duplicates come from injection and
/// redelivery within seconds; durable deployments use the PostgreSQL inbox.
pub struct MemoryInbox {
    scopes: Mutex<Map<String, ScopeInbox>>,
    capacity: usize,
    epoch: Instant,
}

impl Default for MemoryInbox {
    fn default() -> Self {
        MemoryInbox::with_capacity(100_000)
    }
}

impl MemoryInbox {
    /// An inbox remembering 100,000 ids per scope.
    pub fn new() -> Self {
        MemoryInbox::default()
    }

    /// An inbox remembering `capacity` completed ids per scope.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryInbox {
            scopes: Mutex::new(Map::default()),
            capacity: capacity.max(1),
            epoch: Instant::now(),
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX - 1)
            + 1
    }

    fn with_scope<R>(&self, scope: &str, f: impl FnOnce(&mut ScopeInbox) -> R) -> R {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = scopes.get_mut(scope) {
            return f(s);
        }
        f(scopes.entry(scope.to_owned()).or_default())
    }
}

#[async_trait]
impl InboxStore for MemoryInbox {
    async fn claim_many(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        let now = Instant::now();
        let (now_ms, until) = (self.millis(now), self.millis(now + lease));
        Ok(self.with_scope(scope, |s| {
            ids.iter()
                .map(|id| match s.entries.entry(id.clone()) {
                    std::collections::hash_map::Entry::Occupied(mut e) => match *e.get() {
                        DONE => Claim::Done,
                        held if held > now_ms => Claim::Busy,
                        _ => {
                            e.insert(until);
                            Claim::Acquired
                        }
                    },
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(until);
                        Claim::Acquired
                    }
                })
                .collect()
        }))
    }

    async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        let capacity = self.capacity;
        self.with_scope(scope, |s| {
            for id in ids {
                match s.entries.get_mut(id) {
                    Some(e) if *e == DONE => continue,
                    Some(e) => *e = DONE,
                    None => {
                        s.entries.insert(id.clone(), DONE);
                    }
                }
                s.done_order.push_back(id.clone());
            }
            while s.done_order.len() > capacity {
                if let Some(old) = s.done_order.pop_front() {
                    s.entries.remove(&old);
                }
            }
        });
        Ok(())
    }

    async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        self.with_scope(scope, |s| {
            for id in ids {
                if s.entries.get(id).is_some_and(|&e| e != DONE) {
                    s.entries.remove(id);
                }
            }
        });
        Ok(())
    }
}

/// Join slots by (scope, instance).
type JoinSlots = HashMap<(String, String), Vec<Option<Envelope>>>;

/// Join slots and counters in memory.
#[derive(Default)]
pub struct MemoryStateStore {
    joins: Mutex<JoinSlots>,
    counts: Mutex<HashMap<(String, String), u64>>,
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStateStore::default()
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn join_arrive(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> Result<Option<Vec<Envelope>>, StoreError> {
        check_slot(slot, slots)?;
        let mut joins = self.joins.lock().unwrap_or_else(|p| p.into_inner());
        let filled = joins
            .entry((scope.to_owned(), instance.to_owned()))
            .or_insert_with(|| vec![None; slots]);
        if filled.len() < slots {
            filled.resize(slots, None);
        }
        if filled[slot].is_none() {
            filled[slot] = Some(envelope.clone());
        }
        Ok(filled.iter().cloned().collect())
    }

    async fn fired_count(&self, scope: &str, instance: &str) -> Result<u64, StoreError> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        Ok(counts
            .get(&(scope.to_owned(), instance.to_owned()))
            .copied()
            .unwrap_or(0))
    }

    async fn record_firing(&self, scope: &str, instance: &str) -> Result<u64, StoreError> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let c = counts
            .entry((scope.to_owned(), instance.to_owned()))
            .or_insert(0);
        *c += 1;
        Ok(*c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn inbox_claims_lapse_and_completions_stick() {
        let inbox = MemoryInbox::with_capacity(2);
        let lease = Duration::from_secs(10);
        let (a, b, c) = (EventId::from("a"), EventId::from("b"), EventId::from("c"));
        assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Acquired);
        assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Busy);
        assert_eq!(
            inbox.claim("other", &a, lease).await.unwrap(),
            Claim::Acquired
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Acquired);
        inbox.complete("s", &a).await.unwrap();
        assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Done);
        assert_eq!(inbox.claim("s", &b, lease).await.unwrap(), Claim::Acquired);
        inbox.release("s", &b).await.unwrap();
        assert_eq!(inbox.claim("s", &b, lease).await.unwrap(), Claim::Acquired);
        inbox.complete("s", &b).await.unwrap();
        inbox.complete("s", &c).await.unwrap();
        // Capacity 2: the oldest completion is forgotten.
        assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Acquired);
        assert_eq!(inbox.claim("s", &c, lease).await.unwrap(), Claim::Done);
        // In one batch, a repeated id is claimed once.
        let d = EventId::from("d");
        let claims = inbox
            .claim_many("s", &[d.clone(), d.clone(), c.clone()], lease)
            .await
            .unwrap();
        assert_eq!(claims, [Claim::Acquired, Claim::Busy, Claim::Done]);
    }

    #[tokio::test]
    async fn join_slots_keep_the_first_arrival() {
        let store = MemoryStateStore::new();
        let e = |n: &str| Envelope::builder("T", "k").id(n).build();
        assert_eq!(
            store.join_arrive("j", "k", 1, 2, &e("b1")).await.unwrap(),
            None
        );
        assert_eq!(
            store.join_arrive("j", "k", 1, 2, &e("b2")).await.unwrap(),
            None
        );
        let all = store
            .join_arrive("j", "k", 0, 2, &e("a"))
            .await
            .unwrap()
            .unwrap();
        let ids: Vec<String> = all.iter().map(|e| e.id().to_string()).collect();
        assert_eq!(ids, ["a", "b1"]);
        assert!(store.join_arrive("j", "k", 5, 2, &e("x")).await.is_err());
        assert_eq!(store.record_firing("j", "k").await.unwrap(), 1);
        assert_eq!(store.fired_count("j", "k").await.unwrap(), 1);
        assert_eq!(store.fired_count("j", "other").await.unwrap(), 0);
    }
}
