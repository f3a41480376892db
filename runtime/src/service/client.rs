//! Sends commands (and `@external` events) into a choreography from outside.

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
}

impl Client {
    /// A client publishing through `broker` under `topics`, with `source`
    /// as the CloudEvents source of what it sends.
    pub fn new(broker: SharedBroker, topics: Topics, source: impl Into<SharedStr>) -> Self {
        Client {
            broker,
            topics,
            source: source.into(),
            version: None,
        }
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
        let mut b = Envelope::of(key, message).source(self.source.clone());
        if let Some(v) = &self.version {
            b = b.choreo_version(v.clone());
        }
        self.send_envelope(b.build()).await
    }

    /// Sends a prepared envelope to its type's topic.
    pub async fn send_envelope(&self, envelope: Envelope) -> Result<EventId, BrokerError> {
        let id = envelope.id().clone();
        // The type's text outlives the envelope we hand over.
        let ty = envelope.ty_shared().clone();
        let topic = self.topics.topic_of(&ty);
        self.broker.publish(&topic, envelope).await?;
        Ok(id)
    }
}
