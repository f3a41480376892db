//! The Redis Streams adapter (feature `redis`, URLs `redis://host:port[/db]`,
//! `rediss://host:port[/db]` over TLS: [`url`]).
//!
//! Layout on the server (every key under [`RedisOptions::key_prefix`],
//! `choreo:` by default):
//!
//! - **Streams**: one per topic (`choreo:<topic>`), so one per event or
//!   command type; a topic's dead letters are the stream of
//!   `<topic>.dlq`. A consumer group reads only the streams of its topics,
//!   with nothing to filter out.
//! - **Groups**: a consumer group per group and stream (`XGROUP CREATE … 0`
//!   for [`StartPosition::Earliest`](super::StartPosition::Earliest), `$`
//!   for `Latest`, the id just before the time's millisecond for `Since`);
//!   each member is a consumer of its own name in it.
//! - **Publishing**: pipelined `XADD`s of structured-mode events (field
//!   `event`), one round trip per batch. Redis 7 has no deduplication of
//!   its own: the services' inboxes deduplicate. With
//!   [`RedisOptions::dedup_window`] (URL `?dedup=2m`) a script appends each
//!   event unless its id was published to the topic within the window,
//!   remembered in a hash per topic and time bucket
//!   (`choreo:dedup:<topic>:<bucket>`) that expires as a whole; a batch is
//!   one call of the script.
//! - **Receiving**: each member reads with `XREADGROUP … BLOCK` on a
//!   connection of its own (blocking commands would stall a shared one),
//!   whose response timeout is longer than the block time.
//! - **Redelivery**: an entry not acked within `ack_wait` is taken over by
//!   any member with `XAUTOCLAIM` (which counts the delivery); the count
//!   comes from `XPENDING`. A nack with a delay sets the entry's idle time
//!   to `ack_wait - delay` (`XCLAIM … IDLE … JUSTID`), so that it becomes
//!   claimable after the delay; delays longer than `ack_wait` are cut to it.
//! - **Dead letters**: published to the dead-letter stream (with the
//!   window, deduplicated by `<id>/dlq/<group>`), then the entry is acked.
//! - **Reconnecting**: the connections reconnect by themselves; what a
//!   member had read stays in its group's pending list and is claimed
//!   again after the ack wait.
//! - **Observers** ([`Broker::observe`]): plain `XREAD … BLOCK` over the
//!   topics' streams, on a connection of their own, from the ids each read
//!   last (at the start: `0-0`, the id before the time's millisecond, or
//!   the streams' last ids); no group, nothing left on the server. A stream
//!   that is not there yet is read all the same, from its first entry.

mod claim;
mod connect;
mod consume;
mod observe;
mod publish;
mod scripts;
mod settle;
mod streams;
pub mod url;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{Client, RedisError, Script};
use async_trait::async_trait;
use tokio::time::Instant;

use super::pull::{self, Lifecycle, Member};
use super::{
    Backoff, Broker, BrokerError, Capabilities, Health, ObserveOptions, SubscribeOptions,
    Subscription,
};
use crate::envelope::{Envelope, SharedStr};

pub use connect::RedisOptions;

/// The field of a stream entry that holds the event.
const FIELD: &str = "event";

/// A broker on a Redis server (7 or later). Cloning gives another handle
/// on the same connection.
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    client: Client,
    conn: ConnectionManager,
    options: RedisOptions,
    publish: Script,
    durable: bool,
    life: Lifecycle<MemberCtx>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("Redis {what}: {e}"))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
/// What a member keeps of a delivery until it is settled.
struct Held {
    /// Index into the member's streams.
    stream: usize,
    entry: String,
    envelope: Envelope,
    attempt: u32,
}

impl pull::Live for MemberCtx {
    fn stop(&self) -> &pull::Stop {
        &self.member.stop
    }
}

impl pull::Attempt for Held {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// One member: its streams, settler and reader.
struct MemberCtx {
    broker: Arc<Inner>,
    member: Arc<Member<Held>>,
    group: String,
    consumer: String,
    /// (stream key, topic) per topic.
    streams: Vec<(String, SharedStr)>,
    ack_wait: Duration,
    max_in_flight: usize,
    max_deliveries: u32,
    backoff: Backoff,
    /// When to look for claimable entries next (a nack brings it forward).
    claim_at: Mutex<Instant>,
}

#[async_trait]
impl Broker for RedisBroker {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn url(&self) -> Option<&str> {
        Some(&self.inner.url)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: self.inner.durable,
            per_key_order: false,
            native_dedup: self.inner.options.dedup_window.is_some(),
            history: true,
        }
    }

    async fn publish(&self, topic: &str, envelope: Envelope) -> Result<(), BrokerError> {
        self.inner.life.check_open()?;
        let body = pull::encode(&envelope)?;
        self.inner
            .publish_raw(&[(topic, body, self.inner.dedup_id(&envelope))])
            .await
    }

    async fn publish_batch(&self, messages: Vec<(SharedStr, Envelope)>) -> Result<(), BrokerError> {
        self.inner.life.check_open()?;
        let bodies = pull::encode_all(messages.iter().map(|(_, env)| env))?;
        let items: Vec<_> = messages
            .iter()
            .zip(bodies)
            .map(|((topic, env), body)| (topic.as_str(), body, self.inner.dedup_id(env)))
            .collect();
        self.inner.publish_raw(&items).await
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BrokerError> {
        consume::subscribe(&self.inner, options).await
    }

    async fn observe(&self, options: ObserveOptions) -> Result<Box<dyn Subscription>, BrokerError> {
        observe::observe(&self.inner, options).await
    }

    async fn health(&self) -> Health {
        if let Some(closing) = self.inner.life.unhealthy() {
            return closing;
        }
        let mut conn = self.inner.conn.clone();
        let ping: Result<String, RedisError> = ::redis::cmd("PING").query_async(&mut conn).await;
        match ping {
            Err(e) => Health::Unhealthy(format!(
                "{}: {}",
                crate::secret::redact(&self.inner.url),
                crate::secret::scrub(&e.to_string(), &self.inner.url)
            )),
            Ok(_) => Health::Healthy,
        }
    }

    async fn close(&self, drain_timeout: Duration) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let drained = |live: Vec<Arc<MemberCtx>>| async move {
            let mut asked = HashSet::new();
            for m in &live {
                for (key, _) in &m.streams {
                    if asked.insert((key.clone(), m.group.clone()))
                        && !inner.drained(key, &m.group).await.unwrap_or(false)
                    {
                        return false;
                    }
                }
            }
            true
        };
        inner.life.close(drain_timeout, "redis", drained).await;
        Ok(())
    }
}
