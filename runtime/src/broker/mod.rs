//! The broker contract every adapter implements.
//!
//! # Why a trait object
//!
//! [`Broker`] is object safe (its async methods return boxed futures, via
//! `async-trait`): the broker is picked at run time from a URL
//! ([`connect`]), services hold an `Arc<dyn Broker>`, and one conformance
//! suite runs against any of them. The cost, one boxed future per call, is
//! small beside a handler invocation, and the hot paths take batches
//! ([`Subscription::next_batch`], [`settle_all`]) to spread it further.

mod backoff;
mod connect;
mod follow;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(any(feature = "nats", feature = "redis"))]
mod pull;
#[cfg(feature = "redis")]
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use backoff::Backoff;
pub use connect::{connect, ConnectError};
pub use follow::follow;
/// The NATS URL's former path.
#[cfg(feature = "nats")]
#[deprecated(note = "moved to `choreo_runtime::broker::nats::url`")]
pub mod nats_url {
    pub use super::nats::url::*;
}
#[cfg(feature = "nats")]
pub use nats::{NatsBroker, NatsOptions};
#[cfg(feature = "redis")]
pub use redis::{RedisBroker, RedisOptions};

use crate::envelope::{Envelope, SharedStr};
use crate::payload::EncodeError;

/// What an adapter guarantees beyond the common contract; the conformance
/// suite skips the cases whose capability is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Published messages survive a restart of the process and the broker.
    pub durable: bool,
    /// With [`SubscribeOptions::per_key_order`], messages with one
    /// correlation id reach a group in publish order, one at a time.
    /// Without it, a subscription asking for it is refused
    /// ([`BrokerError::InvalidOptions`]).
    pub per_key_order: bool,
    /// The broker itself drops a second publish of an id it has seen.
    pub native_dedup: bool,
    /// The broker holds published messages for groups and observers that
    /// come later ([`StartPosition::Earliest`] and
    /// [`StartPosition::Since`] reach back before they were created, within
    /// retention).
    pub history: bool,
}

/// Where a new consumer group, or an observer, starts reading. A group
/// that exists already keeps its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// The oldest message the broker still holds for the topic.
    #[default]
    Earliest,
    /// Only messages published after the group (or observer) was created.
    Latest,
    /// The first message published at or after this time, by the broker's
    /// clock (NATS: the stream's timestamp; Redis: the entry id, to the
    /// millisecond, so a message of the same millisecond just before it may
    /// be included; memory: the time of the publish call), among those the
    /// broker still holds. Meant for a time past: with one still to come,
    /// NATS and Redis skip what is published until then, the memory broker
    /// does not.
    Since(jiff::Timestamp),
}

/// How a group consumes one or more topics.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeOptions {
    /// The topics to consume.
    pub topics: Vec<String>,
    /// The consumer group: members of one group compete for messages,
    /// each group gets every message.
    pub group: String,
    /// Where a new group starts.
    pub start: StartPosition,
    /// The most deliveries this member holds unsettled at once.
    pub max_in_flight: usize,
    /// A delivery not settled within this time is redelivered.
    pub ack_wait: Duration,
    /// A message delivered this many times and still not acked goes to the
    /// dead-letter topic instead of being delivered again (at least 1).
    pub max_deliveries: u32,
    /// The delay before redelivery after a nack without its own delay.
    pub backoff: Backoff,
    /// Ask for per-key order (see [`Capabilities::per_key_order`]). An
    /// adapter without the capability refuses the subscription with
    /// [`BrokerError::InvalidOptions`] rather than ignore the flag.
    pub per_key_order: bool,
}

impl SubscribeOptions {
    /// Options for `group` on `topics`, with the defaults: earliest, 256 in
    /// flight, 30 s ack wait, 10 deliveries, 100 ms back-off, no key order.
    pub fn new<T: Into<String>>(
        group: impl Into<String>,
        topics: impl IntoIterator<Item = T>,
    ) -> Self {
        SubscribeOptions {
            topics: topics.into_iter().map(Into::into).collect(),
            group: group.into(),
            start: StartPosition::Earliest,
            max_in_flight: 256,
            ack_wait: Duration::from_secs(30),
            max_deliveries: 10,
            backoff: Backoff::default(),
            per_key_order: false,
        }
    }

    /// Checks the options an adapter cannot work with.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let bad = |m: &str| Err(BrokerError::InvalidOptions(m.to_owned()));
        if self.topics.is_empty() {
            return bad("a subscription names at least one topic");
        }
        if self.topics.iter().any(String::is_empty) || self.group.is_empty() {
            return bad("topic and group names are not empty");
        }
        if self.max_in_flight == 0 || self.max_deliveries == 0 {
            return bad("max_in_flight and max_deliveries are at least 1");
        }
        if self.ack_wait.is_zero() {
            return bad("ack_wait is more than zero");
        }
        Ok(())
    }

    /// For an adapter without [`Capabilities::per_key_order`]:
    /// [`BrokerError::InvalidOptions`] when the options ask for it.
    pub fn refuse_per_key_order(&self, broker: &str) -> Result<(), BrokerError> {
        if self.per_key_order {
            return Err(BrokerError::InvalidOptions(format!(
                "{broker} does not keep per-key order (group {}); subscribe without `per_key_order`",
                self.group
            )));
        }
        Ok(())
    }
}

/// How an observer follows one or more topics ([`Broker::observe`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveOptions {
    /// The topics to follow.
    pub topics: Vec<String>,
    /// Where the observer starts, on every topic.
    pub start: StartPosition,
    /// How many deliveries the observer reads ahead of
    /// [`Subscription::next_batch`], at most (about: an adapter may hold
    /// one read from the server more), and the largest batch it returns.
    pub max_in_flight: usize,
}

impl ObserveOptions {
    /// Options to follow `topics`, with the defaults: earliest, 256 read
    /// ahead.
    pub fn new<T: Into<String>>(topics: impl IntoIterator<Item = T>) -> Self {
        ObserveOptions {
            topics: topics.into_iter().map(Into::into).collect(),
            start: StartPosition::Earliest,
            max_in_flight: 256,
        }
    }

    /// Checks the options an adapter cannot work with.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let bad = |m: &str| Err(BrokerError::InvalidOptions(m.to_owned()));
        if self.topics.is_empty() {
            return bad("an observer names at least one topic");
        }
        if self.topics.iter().any(String::is_empty) {
            return bad("topic names are not empty");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight is at least 1");
        }
        Ok(())
    }
}

/// The settler of an observer's deliveries: there is nothing to settle.
/// An observer takes nothing from any group, so acks, nacks, dead letters
/// and keep-alives change nothing (a nack redelivers nothing, a dead letter
/// publishes nothing), and every settlement succeeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserverSettler;

#[async_trait]
impl Settler for ObserverSettler {
    async fn settle(&self, _batch: Vec<(u64, Settlement)>) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn keep_alive(&self, _tags: &[u64]) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// The suffix of a dead-letter topic.
pub const DEAD_LETTER_SUFFIX: &str = ".dlq";
/// Extension attribute on a dead letter: why it was dead-lettered.
pub const DLQ_REASON: &str = "dlqreason";
/// Extension attribute on a dead letter: the group that gave it up.
pub const DLQ_GROUP: &str = "dlqgroup";
/// Extension attribute on a dead letter: the topic it was published on.
pub const DLQ_TOPIC: &str = "dlqtopic";
/// Extension attribute on a dead letter: how many times it was delivered.
pub const DLQ_ATTEMPTS: &str = "dlqattempts";

/// The wire type of the dead letter an adapter makes of a message that does
/// not decode as an envelope: its id and correlation id are the broker's
/// name for the message, its data the raw message byte for byte, its
/// reason the decode error.
pub const UNDECODABLE_TYPE: &str = "choreo.Undecodable";

/// The dead-letter topic of `topic`. A dead letter keeps the original
/// envelope (same id) plus the `dlq*` extension attributes.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}{DEAD_LETTER_SUFFIX}")
}

/// The dead letter of `envelope`: the same envelope with the `dlq*`
/// extension attributes set. Adapters publish this to [`dead_letter_topic`].
pub fn dead_letter_envelope(
    envelope: &Envelope,
    topic: &str,
    group: &str,
    attempts: u32,
    reason: &str,
) -> Envelope {
    let mut b = envelope.to_builder();
    for (k, v) in [
        (DLQ_REASON, reason.to_owned()),
        (DLQ_GROUP, group.to_owned()),
        (DLQ_TOPIC, topic.to_owned()),
        (DLQ_ATTEMPTS, attempts.to_string()),
    ] {
        // The names are constants known to be valid extension names.
        b = match b.clone().extension(k, v) {
            Ok(next) => next,
            Err(_) => b,
        };
    }
    b.build()
}

/// What a consumer decides about one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Done: never deliver it again to this group.
    Ack,
    /// Not done: deliver it again, after `delay` (else the back-off).
    Nack {
        /// Wait at least this long before redelivery.
        delay: Option<Duration>,
    },
    /// Give up: move it to the dead-letter topic with this reason.
    DeadLetter {
        /// Why.
        reason: String,
    },
}

/// Settles deliveries of one subscription: the adapter side of
/// [`Delivery::ack`] and friends.
#[async_trait]
pub trait Settler: Send + Sync {
    /// Applies the settlements, by delivery tag, in order.
    async fn settle(&self, batch: Vec<(u64, Settlement)>) -> Result<(), BrokerError>;

    /// Tells the broker that the deliveries `tags` are still being worked
    /// on: each is held for another whole ack wait from now, and neither
    /// redelivered nor counted as a further attempt meanwhile (an
    /// in-progress ack). Tags no longer held are skipped.
    async fn keep_alive(&self, tags: &[u64]) -> Result<(), BrokerError>;
}

/// One message handed to one member of a group.
pub struct Delivery {
    envelope: Envelope,
    topic: SharedStr,
    attempt: u32,
    tag: u64,
    settler: Arc<dyn Settler>,
}

impl Delivery {
    /// Made by adapters: `attempt` counts from 1; `tag` identifies the
    /// delivery to `settler`.
    pub fn new(
        envelope: Envelope,
        topic: SharedStr,
        attempt: u32,
        tag: u64,
        settler: Arc<dyn Settler>,
    ) -> Self {
        Delivery {
            envelope,
            topic,
            attempt,
            tag,
            settler,
        }
    }
    /// The message.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
    /// The topic it was published on.
    pub fn topic(&self) -> &SharedStr {
        &self.topic
    }
    /// 1 for the first delivery of this message to this group, then 2, …
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// The adapter's handle on this delivery.
    pub fn tag(&self) -> u64 {
        self.tag
    }
    /// Keeps this delivery from redelivery for another ack wait (see
    /// [`Settler::keep_alive`]).
    pub async fn keep_alive(&self) -> Result<(), BrokerError> {
        self.settler.keep_alive(&[self.tag]).await
    }
    /// Settles this delivery.
    pub async fn settle(self, settlement: Settlement) -> Result<(), BrokerError> {
        self.settler.settle(vec![(self.tag, settlement)]).await
    }
    /// Done.
    pub async fn ack(self) -> Result<(), BrokerError> {
        self.settle(Settlement::Ack).await
    }
    /// Deliver again, after `delay` or the subscription's back-off.
    pub async fn nack(self, delay: Option<Duration>) -> Result<(), BrokerError> {
        self.settle(Settlement::Nack { delay }).await
    }
    /// Move to the dead-letter topic.
    pub async fn dead_letter(self, reason: impl Into<String>) -> Result<(), BrokerError> {
        self.settle(Settlement::DeadLetter {
            reason: reason.into(),
        })
        .await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("topic", &self.topic)
            .field("attempt", &self.attempt)
            .field("tag", &self.tag)
            .field("envelope", &self.envelope)
            .finish()
    }
}

/// Settles many deliveries with one call per subscription they came from.
pub async fn settle_all(
    settlements: impl IntoIterator<Item = (Delivery, Settlement)>,
) -> Result<(), BrokerError> {
    type Run = (Arc<dyn Settler>, Vec<(u64, Settlement)>);
    let settlements = settlements.into_iter();
    // Mostly one settler: room for everything in its batch at once.
    let room = settlements.size_hint().0.max(1);
    let mut runs: smallvec::SmallVec<[Run; 1]> = smallvec::SmallVec::new();
    for (d, s) in settlements {
        match runs.iter_mut().find(|(st, _)| Arc::ptr_eq(st, &d.settler)) {
            Some((_, batch)) => batch.push((d.tag, s)),
            None => {
                let mut batch = Vec::with_capacity(room);
                batch.push((d.tag, s));
                runs.push((d.settler, batch));
            }
        }
    }
    let mut first_err = None;
    for (settler, batch) in runs {
        if let Err(e) = settler.settle(batch).await {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// A set of deliveries to keep alive while they are worked on elsewhere
/// (moved into tasks, say): their tags, one list per subscription.
#[derive(Default)]
pub struct KeepAlive {
    runs: smallvec::SmallVec<[Tags; 1]>,
}

/// The tags of one subscription's deliveries.
type Tags = (Arc<dyn Settler>, Vec<u64>);

impl KeepAlive {
    /// The deliveries to keep alive.
    pub fn of<'a>(deliveries: impl IntoIterator<Item = &'a Delivery>) -> Self {
        let mut runs: smallvec::SmallVec<[Tags; 1]> = smallvec::SmallVec::new();
        for d in deliveries {
            match runs.iter_mut().find(|(st, _)| Arc::ptr_eq(st, &d.settler)) {
                Some((_, tags)) => tags.push(d.tag),
                None => runs.push((d.settler.clone(), vec![d.tag])),
            }
        }
        KeepAlive { runs }
    }

    /// [`Delivery::keep_alive`] for each, one call per subscription; those
    /// settled meanwhile are skipped.
    pub async fn renew(&self) -> Result<(), BrokerError> {
        let mut first_err = None;
        for (settler, tags) in &self.runs {
            if let Err(e) = settler.keep_alive(tags).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// One member's stream of deliveries (or an observer's:
/// [`Broker::observe`]).
#[async_trait]
pub trait Subscription: Send {
    /// Waits for deliveries and returns 1 to `max` of them, or `None` once
    /// the subscription has ended (unsubscribed, or the broker closed).
    /// Cancel safe: dropping the future loses nothing.
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError>;

    /// Leaves the group: nothing more is delivered here, and what this
    /// member held unsettled goes back to the group. Dropping the
    /// subscription does the same. An observer stops, and what it had on
    /// the server goes away.
    async fn unsubscribe(&mut self) -> Result<(), BrokerError>;
}

/// How a broker is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Working.
    Healthy,
    /// Working, with a problem worth reporting.
    Degraded(String),
    /// Not working.
    Unhealthy(String),
}

/// A broker operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker was closed.
    #[error("broker is closed")]
    Closed,
    /// The broker cannot be reached.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// Subscription options that the broker cannot honour.
    #[error("invalid subscription options: {0}")]
    InvalidOptions(String),
    /// A settlement for a delivery the broker no longer knows (settled
    /// already, or returned to the group when its member left).
    #[error("unknown delivery {0}")]
    UnknownDelivery(u64),
    /// The message could not be encoded for the wire.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Anything else the adapter reports.
    #[error("broker error: {0}")]
    Other(String),
}

/// A message broker: publish, subscribe with consumer groups, settle.
///
/// See `docs/runtime.md` for the delivery contract and how to write an
/// adapter; the conformance suite (feature `conformance`) checks it.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// A short name of the adapter (`memory`, `nats`, …).
    fn kind(&self) -> &'static str;

    /// What this adapter guarantees beyond the common contract.
    fn capabilities(&self) -> Capabilities;

    /// The URL this broker was connected with, so that the deployment's
    /// stores can open on the same server ([`Stores::of_broker`]); `None`
    /// for a broker made in code that has no URL. It may hold credentials:
    /// show it only through [`store::describe`](crate::store::describe).
    ///
    /// [`Stores::of_broker`]: crate::store::Stores::of_broker
    fn url(&self) -> Option<&str> {
        None
    }

    /// Publishes one message; returns once the broker holds it (a message
    /// for which this returned `Ok` is delivered to every group subscribed
    /// to `topic`, or survives until one subscribes, within retention).
    async fn publish(&self, topic: &str, envelope: Envelope) -> Result<(), BrokerError>;

    /// Publishes several messages, in order; returns once the broker holds
    /// all of them. Adapters may override it to batch.
    async fn publish_batch(&self, messages: Vec<(SharedStr, Envelope)>) -> Result<(), BrokerError> {
        for (topic, env) in messages {
            self.publish(&topic, env).await?;
        }
        Ok(())
    }

    /// Joins `options.group` on `options.topics` as a new member.
    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BrokerError>;

    /// Follows `options.topics` as an observer: every message from
    /// `options.start` on, then live ones, per topic in publish order,
    /// without a consumer group — it takes nothing from the groups, and
    /// their settlements do not affect it. Its deliveries settle with
    /// [`ObserverSettler`] (nothing to settle: nothing is redelivered or
    /// dead-lettered); a message that is not an envelope is skipped with a
    /// warning. [`Subscription::unsubscribe`] (or dropping it) stops it and
    /// leaves nothing of it on the server; it ends by itself when the
    /// broker closes (an observer has nothing to drain).
    ///
    /// What it costs on the server: NATS, an ephemeral ordered consumer per
    /// topic (no acks, deleted on unsubscribe, else expiring after 30 s
    /// without a client); Redis, plain `XREAD`s on a connection of its own;
    /// memory, a queue in the topics it follows.
    async fn observe(&self, options: ObserveOptions) -> Result<Box<dyn Subscription>, BrokerError>;

    /// How the broker is doing.
    async fn health(&self) -> Health;

    /// Closes the broker gracefully: members go on receiving, settling (and
    /// publishing what their handling emits) until every group with members
    /// has nothing left or `drain_timeout` passes; then every subscription
    /// ends and publishing fails with [`BrokerError::Closed`].
    async fn close(&self, drain_timeout: Duration) -> Result<(), BrokerError>;
}

/// A shared, run-time selected broker.
pub type SharedBroker = Arc<dyn Broker>;

/// Turns a concrete broker, or one already shared, into a [`SharedBroker`].
pub trait IntoSharedBroker {
    /// The shared broker.
    fn into_shared(self) -> SharedBroker;
}

impl<B: Broker> IntoSharedBroker for B {
    fn into_shared(self) -> SharedBroker {
        Arc::new(self)
    }
}

impl IntoSharedBroker for SharedBroker {
    fn into_shared(self) -> SharedBroker {
        self
    }
}
