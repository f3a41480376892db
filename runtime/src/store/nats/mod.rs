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
//! - the joins bucket's `max_age` is [`StoreOptions::join_window`]
//!   (none by default: a join may wait for a late command), counted, as
//!   for the others, from the key's latest write, which is the join's
//!   latest arrival; [`StateStore::join_clear`] removes a fired join's slots by
//!   deleting their one message by sequence, leaving nothing behind (a KV
//!   delete would leave a marker; a stream purge filtered by the key's
//!   subject costs the server 15 to 40 times a write).
//!
//! Every change that depends on what is there is a compare-and-set on the
//! key's revision, never a read and a blind write, so that two replicas
//! racing on one key cannot both win.

mod inbox;
mod slots;
mod state;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use async_nats::jetstream::{self, stream::StorageType};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;

pub use inbox::NatsKvInbox;
pub use state::NatsKvStateStore;

use super::{StoreError, StoreOptions};

/// How many times a compare-and-set is tried again after another writer
/// changed the key in between, before the operation gives up with an
/// error (each retry means some other writer made progress).
const CAS_TRIES: usize = 64;

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
    Ok(compare_and_set_at(bucket, key, value, revision)
        .await?
        .is_some())
}

/// [`compare_and_set`], giving the new revision when written.
async fn compare_and_set_at(
    bucket: &kv::Store,
    key: &str,
    value: Bytes,
    revision: u64,
) -> Result<Option<u64>, StoreError> {
    match bucket.update(key, value, revision).await {
        Ok(written) => Ok(Some(written)),
        Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
        Err(e) => Err(backend("write", e)),
    }
}

/// The three buckets of one deployment.
#[derive(Clone)]
pub struct NatsKvStores {
    inbox: kv::Store,
    joins: kv::Store,
    bounds: kv::Store,
    js: jetstream::Context,
}

impl NatsKvStores {
    /// Connects to `url` (`nats://host:port`, `tls://host:port`, with TLS
    /// and credentials as the broker reads them:
    /// [`crate::broker::nats::url`]) and opens the deployment's buckets,
    /// making them where missing.
    /// A URL's `?replicas=N` sets [`StoreOptions::replicas`], as for the
    /// streams ([`crate::broker::nats::url_settings`]).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let (servers, settings) = crate::broker::nats::url_settings(url)
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let mut options = options.clone();
        if let Some(r) = settings.replicas {
            options.replicas = r;
        }
        let options = &options;
        let base = async_nats::ConnectOptions::new()
            .name("choreo-stores")
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(5)));
        let client = crate::broker::nats::url::connect(base, &servers, &settings)
            .await
            .map_err(|e| backend("connect", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client);
        NatsKvStores::open(&js, options).await
    }

    /// Opens the deployment's buckets on `js`, making them where missing.
    ///
    /// Replicated buckets (`options.replicas` above 1) are refused on a
    /// server older than [`SERIALIZABLE_CAS_SINCE`]: see
    /// [`check_replicated_cas`].
    pub async fn open(js: &jetstream::Context, options: &StoreOptions) -> Result<Self, StoreError> {
        if options.replicas > 1 {
            check_replicated_cas(&js.client().server_info().version).map_err(StoreError::Config)?;
        }
        Ok(NatsKvStores {
            inbox: bucket(js, options, "inbox", options.window).await?,
            joins: bucket(
                js,
                options,
                "joins",
                options.join_window.unwrap_or(Duration::ZERO),
            )
            .await?,
            bounds: bucket(js, options, "bounds", options.window).await?,
            js: js.clone(),
        })
    }

    /// The bucket names of `options`' deployment: inbox, joins, bounds.
    pub fn bucket_names(options: &StoreOptions) -> [String; 3] {
        ["inbox", "joins", "bounds"].map(|what| bucket_name(options, what))
    }

    /// The key of `id` in `scope` in any of the buckets: what a NATS
    /// user's permissions must allow (`$KV.<bucket>.<scope token>.*`).
    pub fn key_of(scope: &str, id: &str) -> String {
        key(scope, id)
    }

    /// The inbox.
    pub fn inbox(&self) -> NatsKvInbox {
        NatsKvInbox::new(self.inbox.clone())
    }

    /// The state store.
    pub fn state(&self) -> NatsKvStateStore {
        NatsKvStateStore::new(self.joins.clone(), self.bounds.clone(), self.js.clone())
    }
}

/// The first nats-server release whose replicated streams apply a
/// compare-and-set (an expected last sequence per subject) as part of the
/// replicated write.
pub const SERIALIZABLE_CAS_SINCE: (u64, u64, u64) = (2, 9, 21);

/// Refuses a server `version` (`2.9.10`, `2.10.27-beta`) older than
/// [`SERIALIZABLE_CAS_SINCE`] for replicated buckets.
///
/// Before it, a replicated stream checked a publish's expected last
/// sequence on the leader ahead of the replicated write, not within it,
/// so two concurrent compare-and-sets on one key could both be accepted
/// and the later overwrite the earlier: a join's two arrivals both saw it
/// waiting (the order lost, as the harness's cluster campaigns found on
/// nats-server 2.9.10, docs/reliability.md), and two replicas could both
/// claim one event. A version that does not parse is let through.
pub fn check_replicated_cas(version: &str) -> Result<(), String> {
    let numbers: Vec<u64> = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map_while(|n| n.parse().ok())
        .collect();
    let [major, minor, patch] = numbers[..] else {
        return Ok(());
    };
    if (major, minor, patch) >= SERIALIZABLE_CAS_SINCE {
        return Ok(());
    }
    let (a, b, c) = SERIALIZABLE_CAS_SINCE;
    Err(format!(
        "replicated Key-Value stores need nats-server {a}.{b}.{c} or later, and this one is \
         {version}: an older server can accept two concurrent compare-and-set writes to one \
         key of a replicated bucket, which loses join arrivals and lets two replicas claim \
         one event (upgrade the servers, or keep the stores on one replica, or in Redis or \
         PostgreSQL with --store)"
    ))
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
        // The joins bucket's fired slots are deleted by sequence (see
        // `join_clear`); nothing else deletes a message.
        deny_delete: what != "joins",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicated_buckets_need_a_server_with_serializable_compare_and_set() {
        for old in ["2.9.10", "v2.9.20", "2.8.4", "1.4.1"] {
            let e = check_replicated_cas(old).unwrap_err();
            assert!(e.contains("2.9.21 or later") && e.contains(old), "{e}");
        }
        for fine in [
            "2.9.21",
            "2.9.25",
            "2.10.27",
            "v2.11.0-beta.1",
            "3.0.0",
            "dev",
        ] {
            assert_eq!(check_replicated_cas(fine), Ok(()), "{fine}");
        }
    }

    #[test]
    fn keys_are_valid_whatever_the_text() {
        let k = key("Shop/Payment/on order", "a.b c/ü");
        assert!(k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        assert_ne!(key("a", "b.c"), key("a.b", "c"));
    }
}
