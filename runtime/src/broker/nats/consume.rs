//! Consuming: a member's pullers (pull requests on its durable consumers,
//! into the subscription's channel) and its settling (acks, nacks, dead
//! letters, progress, handing back).

use crate::sync::Recover;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use async_nats::Subject;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{unavailable, Held, Inner};
use crate::broker::pull::{self, GiveBack, Member, Settle};
use crate::broker::{
    dead_letter_envelope, dead_letter_topic, Backoff, BrokerError, Delivery, Settlement, Settler,
    SubscribeOptions,
};
use crate::envelope::{json, Envelope, SharedStr};

/// How long past its expiry a pull request may stay open without the
/// server ending it before the puller stops waiting and asks again. The
/// server's `408` comes within milliseconds of the expiry, but now and then
/// it never comes (seen with nats-server 2.9.10 after a request was mostly
/// filled), and async-nats waits 5 s more on its own: seconds in which the
/// topic's pending messages wait too.
const REQUEST_GRACE: Duration = Duration::from_millis(500);

impl Inner {
    async fn reply(&self, reply: &Subject, kind: AckKind) -> Result<(), BrokerError> {
        self.client
            .publish(reply.clone(), Bytes::from(kind))
            .await
            .map_err(|e| unavailable("settle", e))
    }

    /// Publishes the dead letters, then terminates each message whose
    /// dead letter is stored; one whose dead letter failed is nacked, to
    /// be tried again.
    async fn dead_letter(
        &self,
        group: &str,
        items: Vec<(Subject, String, Envelope)>,
    ) -> Result<(), BrokerError> {
        let mut sent = Vec::with_capacity(items.len());
        for (reply, topic, env) in items {
            let dedup = pull::dead_letter_dedup_id(&pull::id_text(&env), group);
            let fut = match pull::encode(&env) {
                Ok(body) => self.send(&dead_letter_topic(&topic), body, dedup).await,
                Err(e) => Err(e),
            };
            sent.push((reply, env, fut));
        }
        let mut first_err = None;
        for (reply, env, fut) in sent {
            let stored = match fut {
                Ok(ack) => ack.await.map_err(|e| unavailable("dead letter", e)),
                Err(e) => Err(e),
            };
            let kind = match stored {
                Ok(_) => {
                    tracing::warn!(group, id = %env.id(), reason = env.extension(crate::broker::DLQ_REASON).unwrap_or(""), "dead-lettered");
                    AckKind::Term
                }
                Err(e) => {
                    tracing::warn!(group, id = %env.id(), error = %e, "dead letter not stored; retrying later");
                    first_err.get_or_insert(e);
                    AckKind::Nak(Some(Duration::from_secs(1)))
                }
            };
            if let Err(e) = self.reply(&reply, kind).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The settler and puller side of one member.
pub(super) struct MemberCtx {
    broker: Arc<Inner>,
    member: Arc<Member<Held>>,
    group: String,
    max_deliveries: u32,
    backoff: Backoff,
    /// When the last pull request of this member ends on the server.
    requests_end: Mutex<Option<Instant>>,
}

#[async_trait]
impl Settler for MemberCtx {
    async fn keep_alive(&self, tags: &[u64]) -> Result<(), BrokerError> {
        let mut replies = Vec::with_capacity(tags.len());
        self.member
            .keep_alive(tags, |h| replies.push(h.reply.clone()));
        let mut first_err = None;
        for reply in replies {
            // `+WPI`: the server restarts the message's ack wait.
            if let Err(e) = self.broker.reply(&reply, AckKind::Progress).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn settle(&self, batch: Vec<(u64, Settlement)>) -> Result<(), BrokerError> {
        let mut first_err = None;
        let mut dead = Vec::new();
        let (sorted, unknown) = pull::sort(&self.member, batch, self.max_deliveries, &self.backoff);
        for s in sorted {
            let (h, kind) = match s {
                Settle::Ack(h) => (h, AckKind::Ack),
                Settle::Nack(h, delay) => (h, AckKind::Nak(Some(delay))),
                Settle::DeadLetter(h, reason) => {
                    dead.push((h, reason));
                    continue;
                }
            };
            if let Err(e) = self.broker.reply(&h.reply, kind).await {
                first_err.get_or_insert(e);
            }
        }
        if !dead.is_empty() {
            let items = dead
                .into_iter()
                .map(|(h, reason)| {
                    let env = dead_letter_envelope(
                        &h.envelope,
                        &h.topic,
                        &self.group,
                        h.attempt,
                        &reason,
                    );
                    (h.reply, h.topic.to_string(), env)
                })
                .collect();
            if let Err(e) = self.broker.dead_letter(&self.group, items).await {
                first_err.get_or_insert(e);
            }
        }
        pull::settled(first_err, unknown)
    }
}

#[async_trait]
impl GiveBack<Held> for MemberCtx {
    async fn give_back(&self, held: Vec<Held>) {
        // A pull request of this member may still be open on the server
        // (NATS cannot cancel one): the server would hand what is given
        // back straight to it again. Wait until it has ended.
        let end = *self.requests_end.locked();
        let delay = end
            .map(|e| e.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
            .map(|d| d + Duration::from_millis(200));
        for h in held {
            if let Err(e) = self.broker.reply(&h.reply, AckKind::Nak(delay)).await {
                tracing::debug!(error = %e, "could not hand a delivery back; it returns after the ack wait");
            }
        }
    }
}

impl MemberCtx {
    /// The context of a new member of `options.group`.
    pub(super) fn new(
        broker: Arc<Inner>,
        member: Arc<Member<Held>>,
        options: &SubscribeOptions,
    ) -> Arc<MemberCtx> {
        Arc::new(MemberCtx {
            broker,
            member,
            group: options.group.clone(),
            max_deliveries: options.max_deliveries,
            backoff: options.backoff,
            requests_end: Mutex::new(None),
        })
    }

    /// Pulls one consumer's messages into `tx` while the member lives.
    pub(super) async fn pull(
        self: Arc<Self>,
        consumer: consumer::PullConsumer,
        topic: SharedStr,
        share: usize,
        tx: mpsc::UnboundedSender<Delivery>,
    ) {
        let settler: Arc<dyn Settler> = self.clone();
        let mut recent = json::Recent::default();
        let mut want = 1;
        loop {
            let Some(reserved) = self.member.reserve(want).await else {
                return;
            };
            let request_end = Instant::now() + self.broker.options.pull_expires;
            {
                let mut last = self.requests_end.locked();
                *last = Some(last.map_or(request_end, |l| l.max(request_end)));
            }
            let batch = consumer
                .batch()
                .max_messages(reserved)
                .expires(self.broker.options.pull_expires)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    self.member.release(reserved);
                    tracing::debug!(topic = %topic, error = %e, "pull request failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(pull::RETRY_PAUSE) => {}
                        _ = self.member.stop.stopped() => return,
                    }
                    continue;
                }
            };
            let mut used = 0;
            // Stopped or not, read the request to its end: what it brings
            // after a stop is given back below.
            let give_up = request_end + REQUEST_GRACE;
            loop {
                let next = tokio::select! {
                    // Whatever has arrived is taken before giving up.
                    biased;
                    next = batch.next() => next,
                    () = tokio::time::sleep_until(give_up) => {
                        tracing::debug!(topic = %topic, "the server did not end a pull request at its expiry; asking again");
                        None
                    }
                };
                let Some(next) = next else {
                    break;
                };
                let msg = match next {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::debug!(topic = %topic, error = %e, "pull request ended");
                        break;
                    }
                };
                if let Some(h) = self.receive(msg, &topic, &mut recent).await {
                    if self.member.stop.is_stopped() {
                        self.give_back(vec![h]).await;
                        continue;
                    }
                    used += 1;
                    let attempt = h.attempt;
                    let envelope = h.envelope.clone();
                    let tag = self.member.hold(h);
                    let d = Delivery::new(envelope, topic.clone(), attempt, tag, settler.clone());
                    if tx.send(d).is_err() {
                        // The subscription is gone meanwhile.
                        if let Some(h) = self.member.take(tag) {
                            self.give_back(vec![h]).await;
                        }
                    }
                }
            }
            self.member.release(reserved - used.min(reserved));
            want = if used == 0 { 1 } else { share };
        }
    }

    /// Turns a message into what the member holds, or dead-letters it
    /// (not an envelope, or delivered too often) and returns `None`.
    async fn receive(
        &self,
        msg: jetstream::Message,
        topic: &SharedStr,
        recent: &mut json::Recent,
    ) -> Option<Held> {
        let (delivered, seq) = match msg.info() {
            Ok(i) => (
                u32::try_from(i.delivered).unwrap_or(u32::MAX),
                i.stream_sequence,
            ),
            Err(e) => {
                tracing::warn!(topic = %topic, error = %e, "ignoring a message without JetStream metadata");
                return None;
            }
        };
        let reply = msg.message.reply.clone()?;
        let envelope = match json::decode_bytes_in(&msg.message.payload, recent) {
            Ok(env) => env,
            Err(e) => {
                let stream = msg.info().map(|i| i.stream.to_owned()).unwrap_or_default();
                let id = msg
                    .message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_else(|| format!("nats:{stream}:{seq}"));
                tracing::warn!(topic = %topic, id, error = %e, "a message that is not an envelope");
                let dead = pull::undecodable_dead_letter(
                    msg.message.payload.clone(),
                    &id,
                    "choreo-runtime/nats",
                    topic,
                    &self.group,
                    delivered,
                    &e,
                );
                let _ = self
                    .broker
                    .dead_letter(&self.group, vec![(reply, topic.to_string(), dead)])
                    .await;
                return None;
            }
        };
        if delivered > self.max_deliveries {
            // Its ack wait expired on the last allowed delivery.
            let attempts = delivered - 1;
            let reason = pull::max_deliveries_reason(attempts, self.max_deliveries);
            let dead = dead_letter_envelope(&envelope, topic, &self.group, attempts, &reason);
            let _ = self
                .broker
                .dead_letter(&self.group, vec![(reply, topic.to_string(), dead)])
                .await;
            return None;
        }
        Some(Held {
            reply,
            envelope,
            topic: topic.clone(),
            attempt: delivered,
        })
    }
}
