//! In-process stores: fast, and gone with the process.

use crate::sync::Recover;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{check_slot, Claim, Firings, InboxStore, Seen, StateStore, StoreError};
use crate::envelope::{Envelope, EventId};

/// One word per id, which matters at a hundred thousand ids per scope:
/// with [`CLAIM`] set, the end of a claim's lease in milliseconds after
/// the inbox's creation; without, the id is done and this is its
/// completion number (what eviction goes by).
type Entry = u64;
const CLAIM: Entry = 1 << 63;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A UUID id as a key: its two halves, so that an entry is three words
/// (a table of a hundred thousand ids is a quarter smaller than with the
/// id itself as the key, and the inbox is mostly cache misses).
#[derive(Clone, Copy, PartialEq, Eq)]
struct UuidKey(u64, u64);

impl Hash for UuidKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128((u128::from(self.0) << 64) | u128::from(self.1));
    }
}

#[derive(Default)]
struct ScopeInbox {
    /// Ids that are UUIDs (what the runtime makes).
    uuids: Map<UuidKey, Entry>,
    /// Any other ids (from outside).
    texts: Map<EventId, Entry>,
    /// Completions so far (the next completion number).
    completed: u64,
    /// Done entries held.
    done: usize,
}

fn uuid_key(id: &EventId) -> Option<UuidKey> {
    id.as_uuid().map(|u| {
        let (hi, lo) = u.as_u64_pair();
        UuidKey(hi, lo)
    })
}

fn claim_in<K: Hash + Eq>(map: &mut Map<K, Entry>, key: K, now_ms: u64, until: Entry) -> Claim {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            let v = *e.get();
            if v & CLAIM == 0 {
                Claim::Done
            } else if v & !CLAIM > now_ms {
                Claim::Busy
            } else {
                e.insert(until);
                Claim::Acquired
            }
        }
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(until);
            Claim::Acquired
        }
    }
}

fn look_in<K: Hash + Eq>(map: &Map<K, Entry>, key: &K, now_ms: u64) -> Seen {
    match map.get(key) {
        Some(&v) if v & CLAIM == 0 => Seen::Done,
        Some(&v) if v & !CLAIM > now_ms => Seen::Claimed,
        _ => Seen::Unseen,
    }
}

/// Marks `key` done with completion number `seq`; false if it was already.
fn complete_in<K: Hash + Eq>(map: &mut Map<K, Entry>, key: K, seq: Entry) -> bool {
    match map.get_mut(&key) {
        Some(e) if *e & CLAIM == 0 => false,
        Some(e) => {
            *e = seq;
            true
        }
        None => {
            map.insert(key, seq);
            true
        }
    }
}

fn release_in<K: Hash + Eq>(map: &mut Map<K, Entry>, key: &K) {
    if map.get(key).is_some_and(|&e| e & CLAIM != 0) {
        map.remove(key);
    }
}

impl ScopeInbox {
    fn claim(&mut self, id: &EventId, now_ms: u64, until: Entry) -> Claim {
        match uuid_key(id) {
            Some(k) => claim_in(&mut self.uuids, k, now_ms, until),
            None => claim_in(&mut self.texts, id.clone(), now_ms, until),
        }
    }

    fn look(&self, id: &EventId, now_ms: u64) -> Seen {
        match uuid_key(id) {
            Some(k) => look_in(&self.uuids, &k, now_ms),
            None => look_in(&self.texts, id, now_ms),
        }
    }

    fn complete(&mut self, id: &EventId) {
        let seq = self.completed;
        let counted = match uuid_key(id) {
            Some(k) => complete_in(&mut self.uuids, k, seq),
            None => complete_in(&mut self.texts, id.clone(), seq),
        };
        if counted {
            self.completed += 1;
            self.done += 1;
        }
    }

    fn release(&mut self, id: &EventId) {
        match uuid_key(id) {
            Some(k) => release_in(&mut self.uuids, &k),
            None => release_in(&mut self.texts, id),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.uuids.len() + self.texts.len()
    }

    /// Forgets the oldest done ids beyond `capacity`, in one sweep once an
    /// eighth more has piled up: a sequential pass over the table costs
    /// less than evicting ids one by one at random places. Lapsed claims
    /// go in the same sweep.
    fn evict(&mut self, capacity: usize, now_ms: u64) {
        if self.done <= capacity + capacity / 8 {
            return;
        }
        let cutoff = self.completed.saturating_sub(capacity as u64);
        // The done entries kept are counted in the same pass: a second
        // walk over a table this size costs as much as the sweep.
        let mut done = 0usize;
        let mut keep = |e: &mut Entry| {
            let kept = if *e & CLAIM == 0 {
                *e >= cutoff
            } else {
                *e & !CLAIM > now_ms
            };
            done += usize::from(kept && *e & CLAIM == 0);
            kept
        };
        self.uuids.retain(|_, e| keep(e));
        self.texts.retain(|_, e| keep(e));
        self.done = done;
    }
}

/// An inbox in memory. It remembers at least the last `capacity` completed
/// ids per scope (default 100,000): a duplicate older than that is handled
/// again. That suits one process, where duplicates come from injection and
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
        let ms =
            u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        ms.min(CLAIM - 1)
    }

    fn with_scope<R>(&self, scope: &str, f: impl FnOnce(&mut ScopeInbox) -> R) -> R {
        let mut scopes = self.scopes.locked();
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
        let (now_ms, until) = (self.millis(now), CLAIM | self.millis(now + lease));
        Ok(self.with_scope(scope, |s| {
            ids.iter().map(|id| s.claim(id, now_ms, until)).collect()
        }))
    }

    async fn look_many(&self, scope: &str, ids: &[EventId]) -> Result<Vec<Seen>, StoreError> {
        let now_ms = self.millis(Instant::now());
        let first = super::first_occurrences(ids);
        Ok(self.with_scope(scope, |s| {
            ids.iter()
                .zip(first)
                .map(|(id, first)| {
                    if first {
                        s.look(id, now_ms)
                    } else {
                        Seen::Claimed
                    }
                })
                .collect()
        }))
    }

    async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        let (capacity, now_ms) = (self.capacity, self.millis(Instant::now()));
        self.with_scope(scope, |s| {
            for id in ids {
                s.complete(id);
            }
            s.evict(capacity, now_ms);
        });
        Ok(())
    }

    async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        self.with_scope(scope, |s| {
            for id in ids {
                s.release(id);
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
    /// The firings counted by (scope, instance): as many as the bound at
    /// most, since a reaction at its bound fires no more.
    fired: Mutex<HashMap<(String, String), Vec<String>>>,
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
        let mut joins = self.joins.locked();
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

    async fn join_clear(&self, scope: &str, instance: &str) -> Result<(), StoreError> {
        let mut joins = self.joins.locked();
        joins.remove(&(scope.to_owned(), instance.to_owned()));
        Ok(())
    }

    async fn firings(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<Firings, StoreError> {
        let fired = self.fired.locked();
        let ids = fired.get(&(scope.to_owned(), instance.to_owned()));
        Ok(Firings {
            count: ids.map_or(0, |ids| ids.len() as u64),
            counted: ids.is_some_and(|ids| ids.iter().any(|id| id == firing)),
        })
    }

    async fn record_firing(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<u64, StoreError> {
        let mut fired = self.fired.locked();
        let ids = fired
            .entry((scope.to_owned(), instance.to_owned()))
            .or_default();
        if !ids.iter().any(|id| id == firing) {
            ids.push(firing.to_owned());
        }
        Ok(ids.len() as u64)
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
    async fn the_inbox_remembers_at_least_its_capacity_of_latest_ids() {
        let inbox = MemoryInbox::with_capacity(100);
        let lease = Duration::from_secs(10);
        let ids: Vec<EventId> = (0..1000).map(|_| EventId::now()).collect();
        for chunk in ids.chunks(7) {
            inbox.claim_many("s", chunk, lease).await.unwrap();
            inbox.complete_many("s", chunk).await.unwrap();
        }
        let latest = inbox.claim_many("s", &ids[900..], lease).await.unwrap();
        assert!(latest.iter().all(|c| *c == Claim::Done));
        assert_eq!(
            inbox.claim("s", &ids[0], lease).await.unwrap(),
            Claim::Acquired
        );
        let held = inbox.with_scope("s", |s| s.len());
        assert!(held <= 100 + 100 / 8 + 7 + 1, "{held} ids held");
        // The sweep's running count of done entries is what the table holds.
        let (counted, actual) = inbox.with_scope("s", |s| {
            let done = |e: &&Entry| **e & CLAIM == 0;
            let actual =
                s.uuids.values().filter(done).count() + s.texts.values().filter(done).count();
            (s.done, actual)
        });
        assert_eq!(counted, actual);
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
        assert_eq!(store.record_firing("j", "k", "f1").await.unwrap(), 1);
        assert_eq!(store.record_firing("j", "k", "f1").await.unwrap(), 1);
        assert_eq!(
            store.firings("j", "k", "f1").await.unwrap(),
            Firings {
                count: 1,
                counted: true
            }
        );
        assert_eq!(
            store.firings("j", "other", "f1").await.unwrap(),
            Firings::default()
        );
    }
}
