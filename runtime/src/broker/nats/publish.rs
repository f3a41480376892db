//! Publishing: one message or a batch, waiting for JetStream's
//! acknowledgements (`Nats-Msg-Id` is the envelope id, for the server's
//! deduplication); once more if the topic's stream went away meanwhile.

use crate::sync::RecoverRw;

use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::Subject;
use bytes::Bytes;

use super::{unavailable, Inner};
use crate::broker::pull;
use crate::broker::BrokerError;
use crate::envelope::{Envelope, SharedStr};

impl Inner {
    /// Sends one message; the future resolves with the server's answer.
    pub(super) async fn send(
        &self,
        topic: &str,
        payload: Bytes,
        msg_id: String,
    ) -> Result<jetstream::context::PublishAckFuture, BrokerError> {
        let known = self
            .streams
            .read_locked()
            .get(topic)
            .map(|(_, subject)| subject.clone());
        let subject = match known {
            Some(subject) => subject,
            None => {
                self.stream_for(topic).await?;
                Subject::from(topic)
            }
        };
        self.js
            .send_publish(
                subject,
                // The id moves into the header (`message_id` would copy it).
                jetstream::message::PublishMessage::build()
                    .payload(payload)
                    .header(async_nats::header::NATS_MESSAGE_ID, msg_id),
            )
            .await
            .map_err(|e| unavailable("publish", e))
    }

    /// Publishes and waits for the acknowledgement; once more if the
    /// stream went away meanwhile.
    pub(super) async fn publish_one(
        &self,
        topic: &str,
        payload: Bytes,
        msg_id: String,
    ) -> Result<(), BrokerError> {
        let ack = self.send(topic, payload.clone(), msg_id.clone()).await?;
        match ack.await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                self.forget_stream(topic);
                let again = self.send(topic, payload, msg_id).await?;
                again
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable("publish", e))
            }
            Err(e) => Err(unavailable("publish", e)),
        }
    }

    /// Publishes a batch: everything sent, then the acknowledgements
    /// awaited together.
    pub(super) async fn publish_batch(
        &self,
        messages: Vec<(SharedStr, Envelope)>,
    ) -> Result<(), BrokerError> {
        // Send everything, then wait for the acknowledgements together.
        let mut acks = Vec::with_capacity(messages.len());
        let bodies = pull::encode_all(messages.iter().map(|(_, env)| env))?;
        for ((topic, env), body) in messages.iter().zip(bodies) {
            acks.push(self.send(topic, body, pull::id_text(env)).await?);
        }
        let mut retry = Vec::new();
        for (ack, (topic, env)) in acks.into_iter().zip(&messages) {
            match ack.await {
                Ok(_) => {}
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => retry.push((topic, env)),
                Err(e) => return Err(unavailable("publish", e)),
            }
        }
        for (topic, env) in retry {
            self.forget_stream(topic);
            self.publish_one(topic, pull::encode(env)?, pull::id_text(env))
                .await?;
        }
        Ok(())
    }
}
