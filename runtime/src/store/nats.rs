//! Stores in NATS JetStream Key-Value buckets: a deployment on NATS keeps
//! its inbox, join slots and `@bounded` counters on the server it already
//! runs, with the same storage (file) and replication as its streams.
//!
//! Three buckets under the deployment's prefix: `<prefix>choreo_inbox`,
//! `<prefix>choreo_joins` and `<prefix>choreo_bounds` (characters a bucket
//! name cannot have become `_`, with a hash of the prefix). A key is the
//! scope and the id (or instance), each in URL-safe base64, joined by `.`.
//!
//! nats-server 2.9 has no per-key TTL, so:
//! - a claim's lease is a deadline in the value, in milliseconds of the
//!   claimer's clock, and a lapsed claim is taken over by compare-and-set
//!   on the key's revision;
//! - done-marks and counters expire with their bucket's `max_age`
//!   ([`StoreOptions::window`]): each write of a key starts its age anew;
//! - the joins bucket has no `max_age` (a join may wait for a late
//!   command); [`StateStore::join_clear`] removes a fired join's slots,
//!   leaving nothing behind.
//!
//! Every change that depends on what is there is a compare-and-set on the
//! key's revision, never a read and a blind write, so that two replicas
//! racing on one key cannot both win.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use async_nats::jetstream::{self, stream::StorageType};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use futures::future::join_all;

use super::{check_slot, Claim, InboxStore, StateStore, StoreError, StoreOptions};
use crate::envelope::{json, Envelope, EventId};

/// How many times a compare-and-set is tried again after another writer
/// changed the key in between, before the operation gives up with an
/// error (each retry means some other writer made progress).
const CAS_TRIES: usize = 64;

/// The value of a done-mark.
const DONE: &[u8] = b"D";

fn backend(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("NATS KV {what}: {e}"))
}

/// A key of `scope` and `id`, valid in a bucket whatever their text.
fn key(scope: &str, id: &str) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(scope),
        URL_SAFE_NO_PAD.encode(id)
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A claim's value: `C<until>` (milliseconds after the epoch), then
/// `/<owner>` when it has one.
fn claim_value(lease: Duration, owner: u64) -> Bytes {
    let until = now_ms().saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX));
    if owner == 0 {
        Bytes::from(format!("C{until}"))
    } else {
        Bytes::from(format!("C{until}/{owner}"))
    }
}

/// What a stored inbox value says.
enum Mark {
    Done,
    /// Claimed until this many milliseconds after the epoch, by this
    /// owner (0: none said).
    Claimed(u64, u64),
}

fn mark(value: &[u8]) -> Result<Mark, StoreError> {
    if value == DONE {
        return Ok(Mark::Done);
    }
    let claimed = std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.strip_prefix('C'))
        .and_then(|v| {
            let (until, owner) = v.split_once('/').unwrap_or((v, "0"));
            Some(Mark::Claimed(until.parse().ok()?, owner.parse().ok()?))
        });
    claimed.ok_or_else(|| StoreError::Corrupt(format!("inbox value {value:?}")))
}

/// A key's current value and revision; `None` when it has none (never
/// written, deleted, purged or expired), with the revision to expect when
/// writing it (0 when never written).
async fn current(bucket: &kv::Store, key: &str) -> Result<(Option<Bytes>, u64), StoreError> {
    match bucket.entry(key).await.map_err(|e| backend("read", e))? {
        Some(e) if e.operation == Operation::Put => Ok((Some(e.value), e.revision)),
        Some(e) => Ok((None, e.revision)),
        None => Ok((None, 0)),
    }
}

/// Writes `value` at `key` if its revision is still `revision`: `Ok(false)`
/// when another writer came first.
async fn compare_and_set(
    bucket: &kv::Store,
    key: &str,
    value: Bytes,
    revision: u64,
) -> Result<bool, StoreError> {
    match bucket.update(key, value, revision).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(false),
        Err(e) => Err(backend("write", e)),
    }
}

/// The three buckets of one deployment.
#[derive(Clone)]
pub struct NatsKvStores {
    inbox: kv::Store,
    joins: kv::Store,
    bounds: kv::Store,
}

impl NatsKvStores {
    /// Connects to `url` (`nats://host:port`) and opens the deployment's
    /// buckets, making them where missing.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let client = async_nats::ConnectOptions::new()
            .name("choreo-stores")
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(5)))
            .connect(url)
            .await
            .map_err(|e| backend("connect", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client);
        NatsKvStores::open(&js, options).await
    }

    /// Opens the deployment's buckets on `js`, making them where missing.
    pub async fn open(js: &jetstream::Context, options: &StoreOptions) -> Result<Self, StoreError> {
        Ok(NatsKvStores {
            inbox: bucket(js, options, "inbox", options.window).await?,
            joins: bucket(js, options, "joins", Duration::ZERO).await?,
            bounds: bucket(js, options, "bounds", options.window).await?,
        })
    }

    /// The bucket names of `options`' deployment: inbox, joins, bounds.
    pub fn bucket_names(options: &StoreOptions) -> [String; 3] {
        ["inbox", "joins", "bounds"].map(|what| bucket_name(options, what))
    }

    /// The inbox.
    pub fn inbox(&self) -> NatsKvInbox {
        NatsKvInbox {
            bucket: self.inbox.clone(),
        }
    }

    /// The state store.
    pub fn state(&self) -> NatsKvStateStore {
        NatsKvStateStore {
            joins: self.joins.clone(),
            bounds: self.bounds.clone(),
        }
    }
}

fn bucket_name(options: &StoreOptions, what: &str) -> String {
    crate::broker::nats::safe_name(&format!("{}choreo_{what}", options.prefix), 64)
}

/// Opens bucket `what`, or makes it with `max_age` (zero: never).
///
/// The bucket's stream is made here as async-nats' `create_key_value`
/// makes it, because that first reads the account's JetStream information
/// in a form nats-server 2.9 does not answer in (async-nats 0.46 fails to
/// parse it); opening a bucket needs no such read.
async fn bucket(
    js: &jetstream::Context,
    options: &StoreOptions,
    what: &str,
    max_age: Duration,
) -> Result<kv::Store, StoreError> {
    let name = bucket_name(options, what);
    // The server refuses a deduplication window longer than the age.
    let duplicate_window = if max_age.is_zero() {
        Duration::from_secs(120)
    } else {
        max_age.min(Duration::from_secs(120))
    };
    let config = jetstream::stream::Config {
        name: format!("KV_{name}"),
        description: Some(format!(
            "choreo {what} of the deployment `{}`",
            options.prefix
        )),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        duplicate_window,
        storage: StorageType::File,
        num_replicas: options.replicas.max(1),
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    if let Ok(mut store) = js.get_key_value(&name).await {
        // A window changed since the bucket was made applies from now on.
        let info = store
            .stream
            .info()
            .await
            .map_err(|e| backend("bucket", e))?;
        if info.config.max_age != max_age {
            js.update_stream(config)
                .await
                .map_err(|e| backend(&format!("bucket `{name}`"), e))?;
        }
        return Ok(store);
    }
    let made = js.create_stream(config).await.err();
    // Made here, or by another process in between.
    js.get_key_value(&name).await.map_err(|got| {
        let made = made.map_or_else(String::new, |e| format!("cannot make it ({e}) "));
        backend(
            &format!("bucket `{name}`"),
            format!("{made}cannot open it ({got})"),
        )
    })
}

/// The inbox, in the `<prefix>choreo_inbox` bucket.
#[derive(Clone)]
pub struct NatsKvInbox {
    bucket: kv::Store,
}

impl NatsKvInbox {
    async fn claim_one(&self, key: &str, lease: Duration, owner: u64) -> Result<Claim, StoreError> {
        // Most ids are new: a create (an update expecting revision 0) is
        // then the only round trip.
        if compare_and_set(&self.bucket, key, claim_value(lease, owner), 0).await? {
            return Ok(Claim::Acquired);
        }
        for _ in 0..CAS_TRIES {
            let (value, revision) = current(&self.bucket, key).await?;
            let lapsed = match value.as_deref().map(mark).transpose()? {
                Some(Mark::Done) => return Ok(Claim::Done),
                Some(Mark::Claimed(_, by)) if owner != 0 && by == owner => {
                    return Ok(Claim::Acquired)
                }
                Some(Mark::Claimed(until, _)) if until > now_ms() => return Ok(Claim::Busy),
                Some(Mark::Claimed(..)) => true,
                None => false,
            };
            if compare_and_set(&self.bucket, key, claim_value(lease, owner), revision).await? {
                return Ok(Claim::Acquired);
            }
            if lapsed {
                // Another delivery took the lapsed claim over first.
                return Ok(Claim::Busy);
            }
        }
        Ok(Claim::Busy)
    }

    async fn release_one(&self, key: &str) -> Result<(), StoreError> {
        let (value, revision) = current(&self.bucket, key).await?;
        if let Some(Mark::Claimed(..)) = value.as_deref().map(mark).transpose()? {
            // Only the claim read here: a done-mark written since stays.
            match self
                .bucket
                .delete_expect_revision(key, Some(revision))
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => {}
                Err(e) => return Err(backend("release", e)),
            }
        }
        Ok(())
    }
}

/// The first occurrence of each id in `ids`, by position.
fn first_occurrences(ids: &[EventId]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().map(|id| seen.insert(id)).collect()
}

#[async_trait]
impl InboxStore for NatsKvInbox {
    async fn claim_many(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        self.claim_many_as(scope, ids, lease, 0).await
    }

    async fn claim_many_as(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
        owner: u64,
    ) -> Result<Vec<Claim>, StoreError> {
        let first = first_occurrences(ids);
        // All at once: one round trip's wait for the batch, not one per id.
        let claims = ids.iter().zip(&first).map(|(id, &first)| async move {
            if first {
                self.claim_one(&key(scope, &id.to_string()), lease, owner)
                    .await
            } else {
                Ok(Claim::Busy)
            }
        });
        join_all(claims).await.into_iter().collect()
    }

    async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        let puts = ids.iter().map(|id| async move {
            self.bucket
                .put(key(scope, &id.to_string()), Bytes::from_static(DONE))
                .await
                .map_err(|e| backend("done-mark", e))
        });
        join_all(puts)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }

    async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        let releases = ids
            .iter()
            .map(|id| async move { self.release_one(&key(scope, &id.to_string())).await });
        join_all(releases)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }
}

/// Join slots (`<prefix>choreo_joins`) and `@bounded` counters
/// (`<prefix>choreo_bounds`).
#[derive(Clone)]
pub struct NatsKvStateStore {
    joins: kv::Store,
    bounds: kv::Store,
}

/// A join's slots as one value: per slot, its envelope's length as 4 bytes
/// (big-endian; `u32::MAX` for an empty slot), then the envelope's JSON.
fn encode_slots(slots: &[Option<Envelope>]) -> Result<Bytes, StoreError> {
    let mut out = Vec::new();
    for slot in slots {
        match slot {
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
            Some(env) => {
                let bytes = json::encode(env).map_err(|e| backend("encode", e))?;
                let len = u32::try_from(bytes.len())
                    .ok()
                    .filter(|&l| l != u32::MAX)
                    .ok_or_else(|| StoreError::Config("an envelope over 4 GiB".into()))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&bytes);
            }
        }
    }
    Ok(Bytes::from(out))
}

fn decode_slots(mut data: &[u8], slots: usize) -> Result<Vec<Option<Envelope>>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("join slots: {what}"));
    let mut out = Vec::with_capacity(slots);
    while !data.is_empty() {
        let (len, rest) = data
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("a cut length"))?;
        let len = u32::from_be_bytes(*len);
        if len == u32::MAX {
            out.push(None);
            data = rest;
            continue;
        }
        let len = usize::try_from(len).map_err(|_| corrupt("a length"))?;
        let (bytes, rest) = rest
            .split_at_checked(len)
            .ok_or_else(|| corrupt("a cut envelope"))?;
        out.push(Some(
            json::decode(bytes).map_err(|e| corrupt(&e.to_string()))?,
        ));
        data = rest;
    }
    if out.len() < slots {
        out.resize(slots, None);
    }
    Ok(out)
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
        check_slot(slot, slots)?;
        let key = key(scope, instance);
        for _ in 0..CAS_TRIES {
            let (value, revision) = current(&self.joins, &key).await?;
            let mut filled = match value {
                Some(v) => decode_slots(&v, slots)?,
                None => vec![None; slots],
            };
            if filled.get(slot).is_some_and(Option::is_some) {
                // The first arrival in a slot stays; nothing to write.
                return Ok(filled.into_iter().collect());
            }
            if let Some(place) = filled.get_mut(slot) {
                *place = Some(envelope.clone());
            }
            if compare_and_set(&self.joins, &key, encode_slots(&filled)?, revision).await? {
                return Ok(filled.into_iter().collect());
            }
        }
        Err(backend(
            "join",
            format!("`{key}` kept changing under {CAS_TRIES} tries"),
        ))
    }

    async fn join_clear(&self, scope: &str, instance: &str) -> Result<(), StoreError> {
        // A stream purge of the key's subject, not a KV purge: that would
        // leave a marker behind for every instance, in a bucket that never
        // expires anything.
        let subject = format!("{}{}", self.joins.prefix, key(scope, instance));
        self.joins
            .stream
            .purge()
            .filter(subject)
            .await
            .map(|_| ())
            .map_err(|e| backend("join clear", e))
    }

    async fn fired_count(&self, scope: &str, instance: &str) -> Result<u64, StoreError> {
        let (value, _) = current(&self.bounds, &key(scope, instance)).await?;
        value.as_deref().map_or(Ok(0), count)
    }

    async fn record_firing(&self, scope: &str, instance: &str) -> Result<u64, StoreError> {
        let key = key(scope, instance);
        for _ in 0..CAS_TRIES {
            let (value, revision) = current(&self.bounds, &key).await?;
            let next = value.as_deref().map_or(Ok(0), count)? + 1;
            if compare_and_set(&self.bounds, &key, Bytes::from(next.to_string()), revision).await? {
                return Ok(next);
            }
        }
        Err(backend(
            "count",
            format!("`{key}` kept changing under {CAS_TRIES} tries"),
        ))
    }
}

fn count(value: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("counter value {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_whatever_the_text() {
        let k = key("Shop/Payment/on order", "a.b c/ü");
        assert!(k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        assert_ne!(key("a", "b.c"), key("a.b", "c"));
    }

    #[test]
    fn slots_round_trip() {
        let e = Envelope::builder("T", "k").id("x").build();
        let slots = vec![None, Some(e.clone()), None];
        let back = decode_slots(&encode_slots(&slots).unwrap(), 3).unwrap();
        assert_eq!(back, slots);
        assert!(decode_slots(&[0, 0, 0, 9, 1], 2).is_err());
        assert!(decode_slots(&[0, 0], 2).is_err());
    }
}
