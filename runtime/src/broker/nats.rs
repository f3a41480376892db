//! The NATS JetStream adapter (feature `nats`, URLs `nats://host:port`,
//! `tls://host:port`; TLS and credentials: [`super::nats_url`]).
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

use crate::sync::{Recover, RecoverRw};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream, AckKind};
use async_nats::Subject;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::pull::{
    self, GiveBack, Lifecycle, Member, Observation, Observed, PulledSubscription, Settle,
};
use super::{
    dead_letter_envelope, dead_letter_topic, Backoff, Broker, BrokerError, Capabilities, Delivery,
    Health, ObserveOptions, Settlement, Settler, StartPosition, SubscribeOptions, Subscription,
};
use crate::envelope::{json, Envelope, SharedStr};

pub use super::nats_url::{url_settings, UrlSettings};

/// Settings of a [`NatsBroker`]. [`NatsOptions::default`] is what
/// `connect("nats://…")` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsOptions {
    /// The longest wait to connect (and to find JetStream) before
    /// [`NatsBroker::connect`] gives up.
    pub connect_timeout: Duration,
    /// The longest wait for a JetStream API answer or a publish
    /// acknowledgement.
    pub request_timeout: Duration,
    /// Replicas of the streams this adapter creates (1 on a single server;
    /// 3 on a cluster for durability against the loss of a node).
    pub replicas: usize,
    /// The age after which the streams this adapter creates drop messages
    /// (zero: never).
    pub max_age: Duration,
    /// How long the streams this adapter creates remember message ids to
    /// drop a second publish of one.
    pub duplicate_window: Duration,
    /// How long one pull request waits on the server for messages.
    pub pull_expires: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            replicas: 1,
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
            pull_expires: Duration::from_secs(2),
        }
    }
}

/// How many times the creation of a consumer is asked for again after a
/// failure (a timeout on a busy cluster) before a subscription gives up.
const CREATE_TRIES: u32 = 4;

/// How long past its expiry a pull request may stay open without the
/// server ending it before the puller stops waiting and asks again. The
/// server's `408` comes within milliseconds of the expiry, but now and then
/// it never comes (seen with nats-server 2.9.10 after a request was mostly
/// filled), and async-nats waits 5 s more on its own: seconds in which the
/// topic's pending messages wait too.
const REQUEST_GRACE: Duration = Duration::from_millis(500);

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

fn unavailable(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("NATS {what}: {e}"))
}

/// Whether `topic` can be used as a NATS subject as it is: tokens of
/// printable characters without wildcards.
fn check_subject(topic: &str) -> Result<(), BrokerError> {
    let ok = !topic.is_empty()
        && topic.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.chars().any(|c| c.is_whitespace())
        });
    if ok {
        Ok(())
    } else {
        Err(BrokerError::InvalidOptions(format!(
            "topic {topic:?} is not a NATS subject (dot-separated tokens, no spaces, no wildcards)"
        )))
    }
}

/// The inbox prefix of a connection as `user`: `_INBOX_<user>` (characters
/// a subject token cannot have become `_`). Its replies (JetStream's
/// answers and acknowledgements, pulled messages) come on
/// `_INBOX_<user>.>`, the one subject its permissions let it subscribe to.
pub fn inbox_prefix(user: &str) -> String {
    let token: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("_INBOX_{token}")
}

impl NatsBroker {
    /// Connects to `url` with the default [`NatsOptions`].
    pub async fn connect(url: &str) -> Result<NatsBroker, BrokerError> {
        NatsBroker::connect_with(url, NatsOptions::default()).await
    }

    /// Connects to `url` (`nats://host:port`, several comma-separated;
    /// `tls://` for TLS) and checks that JetStream answers, all within
    /// `options.connect_timeout`. The URL's query sets what it names over
    /// `options`, and TLS and credentials (see [`url_settings`] and the
    /// module [`nats_url`](super::nats_url)): `?replicas=3&max_age=7d`,
    /// `?tls_ca=/etc/choreo/ca.pem&nkey_seed_file=/run/secrets/seed`.
    pub async fn connect_with(
        url: &str,
        mut options: NatsOptions,
    ) -> Result<NatsBroker, BrokerError> {
        let (servers, settings) = url_settings(url)?;
        if let Some(r) = settings.replicas {
            options.replicas = r;
        }
        if let Some(age) = settings.max_age {
            options.max_age = age;
        }
        // The broker keeps the URL as given: stores opened from it
        // (`Stores::of_broker`) read the same settings.
        let given = url;
        let attempt = async {
            let base = async_nats::ConnectOptions::new()
                .name("choreo")
                .connection_timeout(options.connect_timeout)
                .request_timeout(Some(options.request_timeout));
            let client = super::nats_url::connect(base, &servers, &settings)
                .await
                .map_err(|e| unavailable("connect", e))?;
            let js = jetstream::ContextBuilder::new()
                .timeout(options.request_timeout)
                .build(client.clone());
            // The account's JetStream information; parsed loosely, as
            // servers of different versions answer with different fields.
            let no_js = "JetStream (is the server started with -js?)";
            let answer = client
                .request("$JS.API.INFO", Bytes::new())
                .await
                .map_err(|e| unavailable(no_js, e))?;
            let info: serde_json::Value =
                serde_json::from_slice(&answer.payload).map_err(|e| unavailable(no_js, e))?;
            if let Some(err) = info.get("error") {
                return Err(unavailable(no_js, err));
            }
            Ok::<_, BrokerError>((client, js))
        };
        let (client, js) = pull::within(options.connect_timeout, "NATS", attempt).await?;
        Ok(NatsBroker {
            inner: Arc::new(Inner {
                url: given.to_owned(),
                client,
                js,
                options,
                streams: RwLock::new(HashMap::new()),
                life: Lifecycle::new(),
            }),
        })
    }

    /// The JetStream context this broker uses, for administration (stream
    /// limits, clean-up) beyond the broker contract.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// The name of the stream this adapter creates for `topic` (the first
    /// token, with characters streams cannot have replaced).
    pub fn stream_name(topic: &str) -> String {
        let token = topic.split('.').next().unwrap_or(topic);
        safe_name(token, 64)
    }

    /// The name of the durable consumer this adapter makes for `group` on
    /// `topic`: the name a NATS user's permissions must allow.
    pub fn consumer_name(group: &str, topic: &str) -> String {
        consumer_name(group, topic)
    }
}

impl Inner {
    /// The stream holding `topic`, made if there is none.
    async fn stream_for(&self, topic: &str) -> Result<String, BrokerError> {
        if let Some(s) = self.streams.read_locked().get(topic) {
            return Ok(s.0.clone());
        }
        check_subject(topic)?;
        let name = match self.js.stream_by_subject(topic).await {
            Ok(existing) => existing,
            Err(_) => {
                let name = NatsBroker::stream_name(topic);
                let token = topic.split('.').next().unwrap_or(topic);
                let config = stream::Config {
                    name: name.clone(),
                    subjects: vec![format!("{token}.>")],
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    num_replicas: self.options.replicas,
                    max_age: self.options.max_age,
                    duplicate_window: self.options.duplicate_window,
                    ..Default::default()
                };
                self.js
                    .get_or_create_stream(config)
                    .await
                    .map_err(|e| unavailable(&format!("stream {name}"), e))?;
                name
            }
        };
        self.streams
            .write_locked()
            .insert(topic.to_owned(), (name.clone(), Subject::from(topic)));
        Ok(name)
    }

    fn forget_stream(&self, topic: &str) {
        self.streams.write_locked().remove(topic);
    }

    /// Sends one message; the future resolves with the server's answer.
    async fn send(
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
    async fn publish_one(
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
                    tracing::warn!(group, id = %env.id(), reason = env.extension(super::DLQ_REASON).unwrap_or(""), "dead-lettered");
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

impl pull::Attempt for Held {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// The settler and puller side of one member.
struct MemberCtx {
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
    /// Pulls one consumer's messages into `tx` while the member lives.
    async fn pull(
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

/// A name for a broker object (stream, consumer) made of `[A-Za-z0-9_-]`
/// only, at most `max` characters of it; when `text` had to change, a hash
/// of the whole of it follows, so different texts keep different names.
pub(crate) fn safe_name(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out != text {
        out.push_str(&format!(
            "_{:08x}",
            xxhash_rust::xxh3::xxh3_64(text.as_bytes()) as u32
        ));
    }
    out
}

/// The durable consumer name of `group` on `topic` (what least-privilege
/// permissions name; see [`NatsBroker::consumer_name`]).
fn consumer_name(group: &str, topic: &str) -> String {
    let last = topic.rsplit('.').next().unwrap_or(topic);
    let hash = xxhash_rust::xxh3::xxh3_64(format!("{group}\0{topic}").as_bytes());
    format!(
        "{}__{}__{hash:016x}",
        safe_name(group, 40),
        safe_name(last, 40)
    )
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
        // Send everything, then wait for the acknowledgements together.
        let mut acks = Vec::with_capacity(messages.len());
        let bodies = pull::encode_all(messages.iter().map(|(_, env)| env))?;
        for ((topic, env), body) in messages.iter().zip(bodies) {
            acks.push(self.inner.send(topic, body, pull::id_text(env)).await?);
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
            self.inner.forget_stream(topic);
            self.inner
                .publish_one(topic, pull::encode(env)?, pull::id_text(env))
                .await?;
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BrokerError> {
        options.validate()?;
        // Refused rather than ignored (as it was): a consumer that relies
        // on per-key order must not run on a broker without it (the
        // conformance case `per_key_order` checks the refusal).
        options.refuse_per_key_order("NATS JetStream")?;
        self.inner.life.check_open()?;
        let mut topics = Vec::new();
        let mut seen = HashSet::new();
        for t in options.topics.iter().filter(|t| seen.insert(t.as_str())) {
            check_subject(t)?;
            topics.push(t.clone());
        }
        let mut consumers = Vec::with_capacity(topics.len());
        for topic in &topics {
            let stream_name = self.inner.stream_for(topic).await?;
            let name = consumer_name(&options.group, topic);
            let config = consumer::pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!("choreo group {} on {topic}", options.group)),
                deliver_policy: match options.start {
                    StartPosition::Earliest => consumer::DeliverPolicy::All,
                    StartPosition::Latest => consumer::DeliverPolicy::New,
                    StartPosition::Since(t) => by_start_time(t)?,
                },
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: options.ack_wait,
                // Counted here: the delivery past `max_deliveries` is
                // dead-lettered by the adapter, not dropped by the server.
                max_deliver: -1,
                filter_subject: topic.clone(),
                max_ack_pending: -1,
                ..Default::default()
            };
            let stream = self
                .inner
                .js
                .get_stream_no_info(&stream_name)
                .await
                .map_err(|e| unavailable(&format!("stream {stream_name}"), e))?;
            // A cluster answers a consumer's creation once its replicas
            // agree, which on a busy one (or during a leader election)
            // can outlast the request timeout: the creation is asked for
            // again (it is idempotent) before the subscription gives up.
            let mut tries = 0;
            let consumer: consumer::PullConsumer = loop {
                match stream.get_or_create_consumer(&name, config.clone()).await {
                    Ok(c) => break c,
                    Err(e) if tries < CREATE_TRIES => {
                        tries += 1;
                        tracing::debug!(consumer = %name, error = %e, "consumer creation failed; asking again");
                        tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                    }
                    Err(e) => return Err(unavailable(&format!("consumer {name}"), e)),
                }
            };
            consumers.push(consumer);
        }
        let member = Member::new(options.max_in_flight, options.ack_wait);
        let ctx = Arc::new(MemberCtx {
            broker: self.inner.clone(),
            member: member.clone(),
            group: options.group.clone(),
            max_deliveries: options.max_deliveries,
            backoff: options.backoff,
            requests_end: Mutex::new(None),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let share = (options.max_in_flight / topics.len()).max(1);
        for (c, t) in consumers.iter().zip(&topics) {
            // Each puller ends by itself once the member stops.
            tokio::spawn(ctx.clone().pull(
                c.clone(),
                SharedStr::from(t.clone()),
                share,
                tx.clone(),
            ));
        }
        let live = Arc::new(Consumers {
            member: member.clone(),
            consumers,
        });
        self.inner.life.register(&live);
        Ok(Box::new(LiveSubscription {
            sub: PulledSubscription::new(rx, member, ctx),
            _live: live,
        }))
    }

    async fn observe(&self, options: ObserveOptions) -> Result<Box<dyn Subscription>, BrokerError> {
        options.validate()?;
        self.inner.life.check_open()?;
        let mut topics = Vec::new();
        let mut seen = HashSet::new();
        for t in options.topics.iter().filter(|t| seen.insert(t.as_str())) {
            check_subject(t)?;
            topics.push(t.clone());
        }
        let base = format!("choreo-observer-{:016x}", fastrand::u64(..));
        let (tx, rx) = Observation::channel(options.max_in_flight);
        let mut made: Vec<(String, String)> = Vec::with_capacity(topics.len());
        let mut readers: Vec<tokio::task::JoinHandle<()>> = Vec::with_capacity(topics.len());
        for (i, topic) in topics.iter().enumerate() {
            let opened = self
                .inner
                .open_observer(topic, format!("{base}-{i}"), options.start)
                .await;
            let (stream_name, name, messages, floor) = match opened {
                Ok(o) => o,
                Err(e) => {
                    // Nothing half made stays behind.
                    for r in &readers {
                        r.abort();
                    }
                    delete_consumers(&self.inner.js, made).await;
                    return Err(e);
                }
            };
            made.push((stream_name, name));
            readers.push(tokio::spawn(observe_topic(
                self.inner.clone(),
                SharedStr::from(topic.clone()),
                messages,
                floor,
                tx.clone(),
            )));
        }
        let js = self.inner.js.clone();
        Ok(Box::new(Observation::new(
            rx,
            readers,
            Some(Box::new(move || {
                Box::pin(async move { delete_consumers(&js, made).await })
            })),
        )))
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

/// `DeliverPolicy::ByStartTime` at `t`. Made from its wire form, so that
/// this crate needs no dependency of its own on the `time` crate (whose
/// type the policy holds, at the version async-nats uses).
fn by_start_time(t: jiff::Timestamp) -> Result<consumer::DeliverPolicy, BrokerError> {
    let wire = serde_json::json!({
        "deliver_policy": "by_start_time",
        "opt_start_time": t.to_string(),
    });
    serde_json::from_value(wire).map_err(|e| {
        BrokerError::InvalidOptions(format!("start time {t} is out of NATS's range: {e}"))
    })
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

/// A subscription that keeps its consumers registered for `close`.
struct LiveSubscription {
    sub: PulledSubscription<Held>,
    _live: Arc<Consumers>,
}

#[async_trait]
impl Subscription for LiveSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        self.sub.next_batch(max).await
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        self.sub.unsubscribe().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_keep_distinct_texts_apart() {
        assert_eq!(safe_name("Payment", 64), "Payment");
        let a = safe_name("a.b", 64);
        let b = safe_name("a_b", 64);
        assert_ne!(a, b);
        assert!(a.starts_with("a_b_"));
        assert!(safe_name(&"x".repeat(100), 10).starts_with("xxxxxxxxxx_"));
    }

    #[test]
    fn a_start_time_keeps_its_nanoseconds() {
        let t: jiff::Timestamp = "2025-03-04T05:06:07.123456789Z".parse().unwrap();
        match by_start_time(t).unwrap() {
            consumer::DeliverPolicy::ByStartTime { start_time } => {
                assert_eq!(start_time.unix_timestamp_nanos(), t.as_nanosecond());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_on_the_server() {
        assert_eq!(
            NatsBroker::stream_name("Ecommerce.OrderPlaced"),
            "Ecommerce"
        );
        assert_eq!(
            NatsBroker::stream_name("Ecommerce.OrderPlaced.dlq"),
            "Ecommerce"
        );
        assert_ne!(
            consumer_name("Payment", "Ecommerce.OrderPlaced"),
            consumer_name("Payment", "Ecommerce.StockReserved")
        );
        assert!(consumer_name("a.b", "x.y").starts_with("a_b_"));
        assert!(check_subject("a.b").is_ok());
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
    }
}
