//! Sends commands (and `@external` events) into a choreography from outside.

use std::time::Duration;

use crate::broker::{BrokerError, SharedBroker};
use crate::envelope::{Envelope, EventId, SharedStr};
use crate::payload::Message;

use super::topics::Topics;

/// Publishes commands for instances, typed.
#[derive(Clone)]
pub struct Client {
    broker: SharedBroker,
    topics: Topics,
    source: SharedStr,
    version: Option<SharedStr>,
    patience: Duration,
}

/// How long [`Client::send`] sends a command again while the broker is
/// unavailable, by default.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(10);

impl Client {
    /// A client publishing through `broker` under `topics`, with `source`
    /// as the CloudEvents source of what it sends.
    pub fn new(broker: SharedBroker, topics: Topics, source: impl Into<SharedStr>) -> Self {
        Client {
            broker,
            topics,
            source: source.into(),
            version: None,
            patience: DEFAULT_PATIENCE,
        }
    }

    /// How long a publish refused for want of the broker is tried again
    /// ([`DEFAULT_PATIENCE`]; zero: once).
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Stamps the spec version on what this client sends.
    pub fn with_version(mut self, version: impl Into<SharedStr>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sends `message` for the instance `key`, starting a new trace;
    /// returns its event id once the broker holds it.
    pub async fn send<M: Message>(
        &self,
        key: impl Into<SharedStr>,
        message: M,
    ) -> Result<EventId, BrokerError> {
        self.send_envelope(self.envelope(key, message).build())
            .await
    }

    /// Sends `message` for the instance `key` under the event id `id`,
    /// starting a new trace: sending it again with the same id is taken
    /// once (the broker's deduplication and the services' inboxes), which
    /// is how a retried HTTP request with an `Idempotency-Key` stays one
    /// command.
    pub async fn send_with_id<M: Message>(
        &self,
        key: impl Into<SharedStr>,
        message: M,
        id: EventId,
    ) -> Result<EventId, BrokerError> {
        self.send_envelope(self.envelope(key, message).id(id).build())
            .await
    }

    fn envelope<M: Message>(
        &self,
        key: impl Into<SharedStr>,
        message: M,
    ) -> crate::envelope::EnvelopeBuilder {
        let b = Envelope::of(key, message).source(self.source.clone());
        match &self.version {
            Some(v) => b.choreo_version(v.clone()),
            None => b,
        }
    }

    /// Sends a prepared envelope to its type's topic.
    ///
    /// A publish that fails for want of the broker
    /// ([`BrokerError::Unavailable`]: a restart, a cut connection, an
    /// acknowledgement that never came) is sent again, the same envelope,
    /// with a back-off, for up to the client's patience. A first try that
    /// was stored after all is then not taken twice: the broker drops the
    /// second copy of the id (NATS) or the services' inboxes do (the same
    /// event id). Only past the patience does the error come back, and
    /// then the command may or may not have been stored: a caller that
    /// sends it again under a new key may start a second instance.
    pub async fn send_envelope(&self, envelope: Envelope) -> Result<EventId, BrokerError> {
        let id = envelope.id().clone();
        // The type's text outlives the envelope we hand over.
        let ty = envelope.ty_shared().clone();
        let topic = self.topics.topic_of(&ty);
        let deadline = tokio::time::Instant::now() + self.patience;
        let mut delay = Duration::from_millis(50);
        loop {
            match self.broker.publish(&topic, envelope.clone()).await {
                Ok(()) => return Ok(id),
                Err(BrokerError::Unavailable(_))
                    if tokio::time::Instant::now() + delay < deadline =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
