//! Join slots (`<prefix>choreo_joins`) and `@bounded` counters
//! (`<prefix>choreo_bounds`), each change a compare-and-set on the key's
//! revision.

use crate::sync::Recover;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, kv, kv::Operation};
use async_trait::async_trait;
use bytes::Bytes;

use super::slots::{age, decode_slots, encode_slots};
use super::{backend, compare_and_set, compare_and_set_at, current, key, CAS_TRIES};
use crate::envelope::Envelope;
use crate::store::{check_slot, Firings, JoinArrival, StateStore, StoreError};

/// Join slots (`<prefix>choreo_joins`) and `@bounded` counters
/// (`<prefix>choreo_bounds`).
#[derive(Clone)]
pub struct NatsKvStateStore {
    joins: kv::Store,
    bounds: kv::Store,
    js: jetstream::Context,
    hints: Arc<Mutex<Hints>>,
}

/// The join values this process wrote last, by key, with their revisions:
/// a join's arrivals mostly reach one process, whose next write can then
/// go straight to a compare-and-set on the revision it wrote (and a fired
/// join's clearing straight to its deletion) instead of reading first. A
/// hint decides nothing: a write that expected it and fails (another
/// writer came between) falls back to reading. Bounded: once full it
/// starts afresh, costing the hints lost a read each.
#[derive(Default)]
struct Hints {
    joins: HashMap<String, (Vec<Option<Envelope>>, u64)>,
}

/// The most join values [`Hints`] holds.
const MAX_HINTS: usize = 4096;

impl Hints {
    fn take(&mut self, key: &str) -> Option<(Vec<Option<Envelope>>, u64)> {
        self.joins.remove(key)
    }

    fn put(&mut self, key: String, slots: Vec<Option<Envelope>>, revision: u64) {
        if self.joins.len() >= MAX_HINTS {
            self.joins.clear();
        }
        self.joins.insert(key, (slots, revision));
    }
}

#[async_trait]
impl StateStore for NatsKvStateStore {
    async fn join_arrive(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> Result<Option<Vec<Envelope>>, StoreError> {
        Ok(
            match self
                .join_arrival(scope, instance, slot, slots, envelope)
                .await?
            {
                JoinArrival::Waiting => None,
                JoinArrival::Completed(all) | JoinArrival::Full { all, .. } => Some(all),
            },
        )
    }

    async fn join_arrival(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> Result<JoinArrival, StoreError> {
        check_slot(slot, slots)?;
        let key = key(scope, instance);
        // First without reading: on the revision this process wrote last,
        // or as a create when it knows of none (a join's first arrival);
        // then on what a read finds, while other writers come between.
        let (mut filled, mut revision) = match self.hints().take(&key) {
            Some((filled, revision))
                if filled.len() == slots && filled.get(slot).is_some_and(Option::is_none) =>
            {
                (filled, revision)
            }
            _ => (vec![None; slots], 0),
        };
        for _ in 0..=CAS_TRIES {
            if let Some(place) = filled.get_mut(slot) {
                *place = Some(envelope.clone());
            }
            let value = encode_slots(&filled, slot)?;
            if let Some(written) = compare_and_set_at(&self.joins, &key, value, revision).await? {
                return Ok(self.written(key, filled, written));
            }
            let entry = self
                .joins
                .entry(&key)
                .await
                .map_err(|e| backend("read", e))?;
            let (value, now, created) = match entry {
                Some(e) if e.operation == Operation::Put => {
                    let created = e.created.unix_timestamp_nanos();
                    (Some(e.value), e.revision, created)
                }
                Some(e) => (None, e.revision, 0),
                None => (None, 0, 0),
            };
            let (there, last) = match value {
                Some(v) => decode_slots(&v, slots)?,
                None => (vec![None; slots], None),
            };
            if there.get(slot).is_some_and(Option::is_some) {
                // The first arrival in a slot stays; nothing to write.
                self.hints().put(key, there.clone(), now);
                let Some(all) = there.into_iter().collect::<Option<Vec<_>>>() else {
                    return Ok(JoinArrival::Waiting);
                };
                let completed_by_this =
                    last == Some(slot) && all.get(slot).is_some_and(|e| e.id() == envelope.id());
                return Ok(JoinArrival::Full {
                    all,
                    completed_by_this,
                    age: last.map(|_| age(created)),
                });
            }
            (filled, revision) = (there, now);
        }
        Err(backend(
            "join",
            format!("`{key}` kept changing under {CAS_TRIES} tries"),
        ))
    }

    async fn join_clear(&self, scope: &str, instance: &str) -> Result<(), StoreError> {
        // The slots' one message is deleted by its sequence (the key's
        // revision), leaving nothing behind: a KV delete or purge would
        // leave a marker for every instance, in a bucket that never
        // expires anything, and a stream purge filtered by the key's
        // subject costs the server 15 to 40 times a write, more as the
        // bucket grows (runtime/benches/nats_kv_ops.rs, docs/benchmarks.md).
        let key = key(scope, instance);
        let hint = self.hints().take(&key);
        if let Some((_, revision)) = hint {
            if self.delete_message(revision).await? {
                return Ok(());
            }
        }
        let (value, revision) = current(&self.joins, &key).await?;
        if value.is_none() {
            return Ok(());
        }
        if self.delete_message(revision).await? {
            return Ok(());
        }
        // Not deleted: written again since (a late arrival, which clears
        // it in its turn), or a bucket made before deletes were allowed
        // in it, which only a purge clears.
        let (value, now) = current(&self.joins, &key).await?;
        if value.is_none() || now != revision {
            return Ok(());
        }
        let subject = format!("{}{key}", self.joins.prefix);
        self.joins
            .stream
            .purge()
            .filter(subject)
            .await
            .map(|_| ())
            .map_err(|e| backend("join clear", e))
    }

    async fn firings(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<Firings, StoreError> {
        let (value, _) = current(&self.bounds, &key(scope, instance)).await?;
        let counted = value
            .as_deref()
            .map_or(Ok(Counted::default()), Counted::decode)?;
        Ok(Firings {
            count: counted.count,
            counted: counted.firings.iter().any(|f| f == firing),
        })
    }

    async fn record_firing(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<u64, StoreError> {
        let key = key(scope, instance);
        for _ in 0..CAS_TRIES {
            let (value, revision) = current(&self.bounds, &key).await?;
            let mut counted = value
                .as_deref()
                .map_or(Ok(Counted::default()), Counted::decode)?;
            if counted.firings.iter().any(|f| f == firing) {
                return Ok(counted.count);
            }
            counted.count += 1;
            counted.firings.push(firing.to_owned());
            if compare_and_set(&self.bounds, &key, counted.encode()?, revision).await? {
                return Ok(counted.count);
            }
        }
        Err(backend(
            "count",
            format!("`{key}` kept changing under {CAS_TRIES} tries"),
        ))
    }
}

impl NatsKvStateStore {
    pub(super) fn new(joins: kv::Store, bounds: kv::Store, js: jetstream::Context) -> Self {
        NatsKvStateStore {
            joins,
            bounds,
            js,
            hints: Arc::default(),
        }
    }

    fn hints(&self) -> std::sync::MutexGuard<'_, Hints> {
        self.hints.locked()
    }

    /// The answer of a join arrival that wrote `filled` at `revision`,
    /// kept as the hint for the key's next write.
    fn written(&self, key: String, filled: Vec<Option<Envelope>>, revision: u64) -> JoinArrival {
        let all = filled.iter().cloned().collect::<Option<Vec<_>>>();
        self.hints().put(key, filled, revision);
        all.map_or(JoinArrival::Waiting, JoinArrival::Completed)
    }

    /// Deletes message `seq` of the joins bucket's stream without erasing
    /// its bytes (a secure erase would rewrite them on disk): whether the
    /// server deleted it.
    async fn delete_message(&self, seq: u64) -> Result<bool, StoreError> {
        #[derive(serde::Deserialize)]
        struct Deleted {
            #[serde(default)]
            success: bool,
        }
        let subject = format!("STREAM.MSG.DELETE.{}", self.joins.stream_name);
        let request = serde_json::json!({ "seq": seq, "no_erase": true });
        match self
            .js
            .request::<_, _, jetstream::response::Response<Deleted>>(subject, &request)
            .await
            .map_err(|e| backend("join clear", e))?
        {
            jetstream::response::Response::Ok(d) => Ok(d.success),
            // Gone already, or deletes denied: the caller looks again.
            jetstream::response::Response::Err { .. } => Ok(false),
        }
    }
}

/// A `@bounded` counter's value: the count and the firings it counted
/// (their deliveries' dedup ids), as JSON; a bare number is a counter
/// written before firings were kept, whose firings are unknown.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Counted {
    count: u64,
    #[serde(default)]
    firings: Vec<String>,
}

impl Counted {
    fn decode(value: &[u8]) -> Result<Counted, StoreError> {
        if let Some(count) = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
            return Ok(Counted {
                count,
                firings: Vec::new(),
            });
        }
        serde_json::from_slice(value).map_err(|e| {
            StoreError::Corrupt(format!(
                "counter value {:?}: {e}",
                String::from_utf8_lossy(value)
            ))
        })
    }

    fn encode(&self) -> Result<Bytes, StoreError> {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .map_err(|e| StoreError::Corrupt(format!("counter value: {e}")))
    }
}
