//! Observing: an ordered consumer per topic (ephemeral, no acks), read
//! into the observation's channel; deleted when it ends.

use std::sync::Arc;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::streams::distinct_subjects;
use super::subscribe::by_start_time;
use super::{unavailable, Inner};
use crate::broker::pull::{self, Observation, Observed};
use crate::broker::{BrokerError, ObserveOptions, StartPosition, Subscription};
use crate::envelope::{json, SharedStr};

/// Observes the topics of `options`
/// ([`Broker::observe`](crate::broker::Broker::observe)).
pub(super) async fn observe(
    inner: &Arc<Inner>,
    options: ObserveOptions,
) -> Result<Box<dyn Subscription>, BrokerError> {
    options.validate()?;
    inner.life.check_open()?;
    let topics = distinct_subjects(&options.topics)?;
    let base = format!("choreo-observer-{:016x}", fastrand::u64(..));
    let (tx, rx) = Observation::channel(options.max_in_flight);
    let mut made: Vec<(String, String)> = Vec::with_capacity(topics.len());
    let mut readers: Vec<tokio::task::JoinHandle<()>> = Vec::with_capacity(topics.len());
    for (i, topic) in topics.iter().enumerate() {
        let opened = inner
            .open_observer(topic, format!("{base}-{i}"), options.start)
            .await;
        let (stream_name, name, messages, floor) = match opened {
            Ok(o) => o,
            Err(e) => {
                // Nothing half made stays behind.
                for r in &readers {
                    r.abort();
                }
                delete_consumers(&inner.js, made).await;
                return Err(e);
            }
        };
        made.push((stream_name, name));
        readers.push(tokio::spawn(observe_topic(
            inner.clone(),
            SharedStr::from(topic.clone()),
            messages,
            floor,
            tx.clone(),
        )));
    }
    let js = inner.js.clone();
    Ok(Box::new(Observation::new(
        rx,
        readers,
        Some(Box::new(move || {
            Box::pin(async move { delete_consumers(&js, made).await })
        })),
    )))
}

/// What an observer skips on a topic: what comes before its start, should
/// the client library hand it out. It does when it recreates an ordered
/// consumer before the first message (after a restart of the server, or
/// missed heartbeats): it starts that one from the stream's beginning.
#[derive(Debug, Clone, Copy)]
enum Floor {
    /// Nothing: from the beginning anyway.
    None,
    /// Stream sequences below this.
    Sequence(u64),
    /// Messages stored before this time (Unix nanoseconds).
    Time(i128),
}

impl Floor {
    fn admits(self, info: &jetstream::message::Info<'_>) -> bool {
        match self {
            Floor::None => true,
            Floor::Sequence(s) => info.stream_sequence >= s,
            Floor::Time(t) => info.published.unix_timestamp_nanos() >= t,
        }
    }
}

type OrderedMessages = consumer::pull::Ordered;

impl Inner {
    /// An ordered consumer named `name` on `topic` from `start`, and its
    /// messages: (stream, consumer name, messages, floor).
    async fn open_observer(
        &self,
        topic: &str,
        name: String,
        start: StartPosition,
    ) -> Result<(String, String, OrderedMessages, Floor), BrokerError> {
        let stream_name = self.stream_for(topic).await?;
        let in_stream =
            |e: &dyn std::fmt::Display| unavailable(&format!("stream {stream_name}"), e);
        let stream = self
            .js
            .get_stream_no_info(&stream_name)
            .await
            .map_err(|e| in_stream(&e))?;
        let (deliver_policy, floor) = match start {
            StartPosition::Earliest => (consumer::DeliverPolicy::All, Floor::None),
            StartPosition::Latest => {
                // The stream's end now, rather than `New`: the floor then
                // says exactly what the consumer would not have delivered.
                let last = stream
                    .get_info()
                    .await
                    .map_err(|e| in_stream(&e))?
                    .state
                    .last_sequence;
                let next = last + 1;
                (
                    consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: next,
                    },
                    Floor::Sequence(next),
                )
            }
            StartPosition::Since(t) => (by_start_time(t)?, Floor::Time(t.as_nanosecond())),
        };
        let config = consumer::pull::OrderedConfig {
            name: Some(name.clone()),
            description: Some(format!("choreo observer on {topic}")),
            filter_subject: topic.to_owned(),
            deliver_policy,
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| unavailable(&format!("observer on {topic}"), e))?;
        match consumer.messages().await {
            Ok(messages) => Ok((stream_name, name, messages, floor)),
            Err(e) => {
                delete_consumers(&self.js, vec![(stream_name, name)]).await;
                Err(unavailable(&format!("observer on {topic}"), e))
            }
        }
    }
}

/// Deletes observers' consumers, each `(stream, consumer)`; one that cannot
/// be deleted now expires by itself.
async fn delete_consumers(js: &jetstream::Context, consumers: Vec<(String, String)>) {
    for (stream, name) in consumers {
        if let Err(e) = js.delete_consumer_from_stream(&name, &stream).await {
            tracing::debug!(stream, consumer = name, error = %e, "observer not deleted; it expires");
        }
    }
}

/// Reads one topic's ordered consumer into `tx` until the observation is
/// stopped (the task aborted), its channel closed or the broker closed.
async fn observe_topic(
    inner: Arc<Inner>,
    topic: SharedStr,
    mut messages: OrderedMessages,
    floor: Floor,
    tx: mpsc::Sender<Observed>,
) {
    let mut recent = json::Recent::default();
    let closed = inner.life.closed();
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = closed.stopped() => return,
        };
        let msg = match next {
            // The connection is closed.
            None => return,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // The client recreates the consumer by itself; this is
                // what it could not get past (yet).
                tracing::warn!(topic = %topic, error = %e, "observing failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(pull::RETRY_PAUSE) => continue,
                    () = closed.stopped() => return,
                }
            }
        };
        match msg.info() {
            Ok(info) if !floor.admits(&info) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(topic = %topic, error = %e, "ignoring a message without JetStream metadata");
                continue;
            }
        }
        let envelope = match json::decode_bytes_in(&msg.message.payload, &mut recent) {
            Ok(env) => env,
            Err(e) => {
                // An observer dead-letters nothing: the groups do that.
                let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
                tracing::warn!(topic = %topic, seq, error = %e, "skipping a message that is not an envelope");
                continue;
            }
        };
        tokio::select! {
            sent = tx.send((topic.clone(), envelope)) => if sent.is_err() {
                return;
            },
            () = closed.stopped() => return,
        }
    }
}
