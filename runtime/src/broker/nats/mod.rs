//! The NATS JetStream adapter (feature `nats`, URLs `nats://host:port`,
//! `tls://host:port`; TLS and credentials: [`url`]).
//!
//! Layout on the server:
//!
//! - **Streams**: one per first token of the topic. A choreography's topics
//!   are `<Choreography>.<Type>`, so its events, commands and their
//!   dead-letter topics (`<topic>.dlq`) share the stream `<Choreography>`
//!   (subjects `<Choreography>.>`); progress notices share `choreo-progress`.
//!   A topic that a stream already on the server covers (one the operators
//!   made) goes to that stream instead. New streams are file-backed, keep
//!   everything (limits retention, no age limit unless
//!   [`NatsOptions::max_age`]) and deduplicate within
//!   [`NatsOptions::duplicate_window`].
//! - **Consumers**: a durable pull consumer per group and topic (its filter
//!   subject), named after both. JetStream servers before 2.10 filter a
//!   consumer on one subject only, and one group's topics may lie in
//!   different streams.
//! - **Publishing** waits for JetStream's acknowledgement (the message is
//!   stored); `Nats-Msg-Id` is the envelope id, so a second publish of an id
//!   within the duplicate window is dropped by the server.
//! - **Settling**: ack is `+ACK`; nack is `-NAK` with the delay (the
//!   subscription's back-off when none is given); a dead letter is published
//!   to `<topic>.dlq` (`Nats-Msg-Id` `<id>/dlq/<group>`), then the message is
//!   terminated (`+TERM`). Deliveries are counted by the server; the one
//!   past `max_deliveries` is dead-lettered instead of being handed out.
//! - **Reconnecting**: the client reconnects by itself; pullers re-issue
//!   their pull requests and the durable consumers continue where they were.
//! - **Observers** ([`Broker::observe`]): an ordered pull consumer per topic
//!   (ephemeral, in memory, one replica, no acks; the client recreates it
//!   from the last sequence it saw when it finds a gap), named
//!   `choreo-observer-<random>-<n>`. Unsubscribing deletes it; one whose
//!   client went away without that expires after 30 s without pulls.

mod connect;
mod consume;
mod observe;
mod publish;
mod streams;
mod subscribe;
pub mod url;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use async_nats::Subject;
use async_trait::async_trait;

use super::pull::{self, Lifecycle, Member};
use super::{
    Broker, BrokerError, Capabilities, Health, ObserveOptions, SubscribeOptions, Subscription,
};
use crate::envelope::{Envelope, SharedStr};

pub use connect::{inbox_prefix, NatsOptions};
pub(crate) use streams::safe_name;
pub use url::{url_settings, UrlSettings};

/// A broker on a NATS server with JetStream. Cloning gives another handle
/// on the same connection.
#[derive(Clone)]
pub struct NatsBroker {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    client: async_nats::Client,
    js: jetstream::Context,
    options: NatsOptions,
    /// topic → the stream that holds it, and the topic as a subject.
    streams: RwLock<HashMap<String, (String, Subject)>>,
    life: Lifecycle<Consumers>,
}

/// A member's consumers, for the drain of `close`.
struct Consumers {
    member: Arc<Member<Held>>,
    consumers: Vec<consumer::PullConsumer>,
}

impl pull::Live for Consumers {
    fn stop(&self) -> &pull::Stop {
        &self.member.stop
    }
}

/// What a member keeps of a delivery until it is settled.
struct Held {
    reply: Subject,
    envelope: Envelope,
    topic: SharedStr,
    attempt: u32,
}

impl pull::Attempt for Held {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("NATS {what}: {e}"))
}

#[async_trait]
impl Broker for NatsBroker {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn url(&self) -> Option<&str> {
        Some(&self.inner.url)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            per_key_order: false,
            native_dedup: true,
            history: true,
        }
    }

    async fn publish(&self, topic: &str, envelope: Envelope) -> Result<(), BrokerError> {
        self.inner.life.check_open()?;
        let body = pull::encode(&envelope)?;
        self.inner
            .publish_one(topic, body, pull::id_text(&envelope))
            .await
    }

    async fn publish_batch(&self, messages: Vec<(SharedStr, Envelope)>) -> Result<(), BrokerError> {
        self.inner.life.check_open()?;
        self.inner.publish_batch(messages).await
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BrokerError> {
        subscribe::subscribe(&self.inner, options).await
    }

    async fn observe(&self, options: ObserveOptions) -> Result<Box<dyn Subscription>, BrokerError> {
        observe::observe(&self.inner, options).await
    }

    async fn health(&self) -> Health {
        use async_nats::connection::State;
        if let Some(closing) = self.inner.life.unhealthy() {
            return closing;
        }
        match self.inner.client.connection_state() {
            State::Connected => Health::Healthy,
            State::Pending => Health::Degraded(format!(
                "reconnecting to {}",
                crate::secret::redact(&self.inner.url)
            )),
            State::Disconnected => Health::Unhealthy(format!(
                "disconnected from {}",
                crate::secret::redact(&self.inner.url)
            )),
        }
    }

    async fn close(&self, drain_timeout: Duration) -> Result<(), BrokerError> {
        let drained = |live: Vec<Arc<Consumers>>| async move {
            let mut asked = HashSet::new();
            for c in live.iter().flat_map(|m| m.consumers.iter()) {
                if !asked.insert(c.cached_info().name.clone()) {
                    continue;
                }
                match c.get_info().await {
                    Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0 => {}
                    _ => return false,
                }
            }
            true
        };
        if self.inner.life.close(drain_timeout, "nats", drained).await {
            // Closing the connection ends the open pull requests with it.
            let _ = self.inner.client.drain().await;
        }
        Ok(())
    }
}
