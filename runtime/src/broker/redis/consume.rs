//! Consuming: a member's consumer groups (made if there are none), its
//! reader (`XREADGROUP … BLOCK` on a connection of its own, claims in
//! between) and the subscription that removes its consumer on leaving.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{RedisError, Script, Value};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::sync::Recover;

use super::connect::connection;
use super::scripts::FORGET_CONSUMER;
use super::streams::{id_before, read_entries, Entry};
use super::{ms, unavailable, Held, Inner, MemberCtx, FIELD};
use crate::broker::pull::{self, GiveBack, Member, PulledSubscription};
use crate::broker::{
    BrokerError, Delivery, Settler, StartPosition, SubscribeOptions, Subscription,
};
use crate::envelope::json;

/// Subscribes a member of `options.group` to its topics
/// ([`Broker::subscribe`](crate::broker::Broker::subscribe)).
pub(super) async fn subscribe(
    inner: &Arc<Inner>,
    options: SubscribeOptions,
) -> Result<Box<dyn Subscription>, BrokerError> {
    options.validate()?;
    // Refused rather than ignored (as it was): a consumer that relies
    // on per-key order must not run on a broker without it (the
    // conformance case `per_key_order` checks the refusal).
    options.refuse_per_key_order("Redis Streams")?;
    inner.life.check_open()?;
    let streams = inner.streams(&options.topics);
    let start = match options.start {
        StartPosition::Earliest => "0".to_owned(),
        StartPosition::Latest => "$".to_owned(),
        StartPosition::Since(t) => id_before(t),
    };
    let mut conn = inner.conn.clone();
    for (key, _) in &streams {
        let made: Result<(), RedisError> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(&options.group)
            .arg(&start)
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match made {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(unavailable("XGROUP CREATE", e)),
        }
    }
    let member = Member::new(options.max_in_flight, options.ack_wait);
    let ctx = Arc::new(MemberCtx {
        broker: inner.clone(),
        member: member.clone(),
        group: options.group.clone(),
        consumer: format!("m-{:016x}", fastrand::u64(..)),
        streams,
        ack_wait: options.ack_wait,
        max_in_flight: options.max_in_flight,
        max_deliveries: options.max_deliveries,
        backoff: options.backoff,
        claim_at: Mutex::new(Instant::now()),
    });
    inner.life.register(&ctx);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(ctx.clone().read(tx));
    Ok(Box::new(RedisSubscription {
        sub: PulledSubscription::new(rx, member, ctx.clone()),
        ctx,
    }))
}

impl MemberCtx {
    /// Reads this member's streams into `tx` while the member lives.
    async fn read(self: Arc<Self>, tx: mpsc::UnboundedSender<Delivery>) {
        let settler: Arc<dyn Settler> = self.clone();
        let options = &self.broker.options;
        let mut conn = match connection(
            &self.broker.client,
            options,
            options.block + options.response_timeout,
        )
        .await
        {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(group = %self.group, error = %e, "no reading connection yet");
                None
            }
        };
        let mut reader_id = None;
        let mut cursors = vec!["0-0".to_owned(); self.streams.len()];
        let mut first = 0;
        let mut recent = json::Recent::default();
        loop {
            let Some(reserved) = self.member.reserve(usize::MAX).await else {
                return;
            };
            let Some(c) = conn.as_mut() else {
                self.member.release(reserved);
                tokio::time::sleep(pull::RETRY_PAUSE).await;
                conn = connection(
                    &self.broker.client,
                    options,
                    options.block + options.response_timeout,
                )
                .await
                .ok();
                continue;
            };
            if reader_id.is_none() {
                // This connection's id, to unblock its read when leaving.
                reader_id = ::redis::cmd("CLIENT")
                    .arg("ID")
                    .query_async::<i64>(c)
                    .await
                    .ok();
            }
            let mut got: Vec<Entry> = Vec::new();
            let now = Instant::now();
            let claim_due = {
                let at = *self.claim_at.locked();
                at <= now
            };
            let mut failed = None;
            if claim_due {
                *self.claim_at.locked() = now + options.claim_interval;
                if let Err(e) = self.claim(c, reserved, &mut cursors, &mut got).await {
                    failed = Some(e);
                }
            }
            let left = reserved - got.len().min(reserved);
            if left > 0 && failed.is_none() {
                let until_claim = self
                    .claim_at
                    .locked()
                    .saturating_duration_since(Instant::now());
                let block = options.block.min(until_claim).max(Duration::from_millis(1));
                if let Err(e) = self
                    .read_new(c, left, block, &mut first, &reader_id, &mut got)
                    .await
                {
                    failed = Some(e);
                }
            }
            let used = self.hand_out(got, &tx, &settler, &mut recent).await;
            self.member.release(reserved - used.min(reserved));
            if let Some(e) = failed {
                // Maybe a new connection (a new id) after this.
                reader_id = None;
                tracing::debug!(group = %self.group, error = %e, "reading failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pull::RETRY_PAUSE) => {}
                    _ = self.member.stop.stopped() => {}
                }
            }
        }
    }

    /// New entries, up to `budget` over all streams.
    async fn read_new(
        &self,
        conn: &mut ConnectionManager,
        budget: usize,
        block: Duration,
        first: &mut usize,
        reader_id: &Option<i64>,
        got: &mut Vec<Entry>,
    ) -> Result<(), RedisError> {
        let n = self.streams.len();
        // COUNT applies per stream: read as many streams as the budget
        // allows, taking turns.
        let k = n.min(budget).max(1);
        let count = (budget / k).max(1);
        let chosen: Vec<usize> = (0..k).map(|i| (*first + i) % n).collect();
        *first = (*first + k) % n;
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(ms(block))
            .arg("STREAMS");
        for &i in &chosen {
            cmd.arg(&self.streams[i].0);
        }
        for _ in &chosen {
            cmd.arg(">");
        }
        let read = cmd.query_async::<Value>(conn);
        tokio::pin!(read);
        let reply = tokio::select! {
            r = &mut read => r?,
            _ = self.member.stop.stopped() => {
                // Leaving: end the blocked read now rather than let it take
                // entries nobody will handle (a process that exits closes
                // the connection, which does the same).
                if let Some(id) = *reader_id {
                    let mut shared = self.broker.conn.clone();
                    let _: Result<Value, RedisError> = ::redis::cmd("CLIENT")
                        .arg("UNBLOCK")
                        .arg(id)
                        .query_async(&mut shared)
                        .await;
                }
                read.await?
            }
        };
        read_entries(reply, &self.streams, got);
        Ok(())
    }

    /// Decodes entries and hands them out (or dead-letters those that do
    /// not decode or were delivered too often); how many were handed out.
    async fn hand_out(
        &self,
        got: Vec<Entry>,
        tx: &mpsc::UnboundedSender<Delivery>,
        settler: &Arc<dyn Settler>,
        recent: &mut json::Recent,
    ) -> usize {
        let mut used = 0;
        let mut dead = Vec::new();
        let mut back = Vec::new();
        for Entry {
            stream,
            id: entry,
            raw,
            attempt,
        } in got
        {
            let topic = &self.streams[stream].1;
            let raw = raw.map(Bytes::from);
            let decoded = match &raw {
                Some(b) => json::decode_bytes_in(b, recent),
                None => Err(crate::envelope::EnvelopeError::Malformed(format!(
                    "the stream entry has no field {FIELD:?}"
                ))),
            };
            let envelope = match decoded {
                Ok(env) => env,
                Err(e) => {
                    let id = format!("redis:{}:{entry}", self.streams[stream].0);
                    tracing::warn!(topic = %topic, id, error = %e, "an entry that is not an envelope");
                    let env = pull::undecodable_dead_letter(
                        raw.unwrap_or_default(),
                        &id,
                        "choreo-runtime/redis",
                        topic,
                        &self.group,
                        attempt,
                        &e,
                    );
                    // Already a dead letter: published as it is.
                    let reason = env
                        .extension(crate::broker::DLQ_REASON)
                        .unwrap_or_default()
                        .to_owned();
                    dead.push((
                        Held {
                            stream,
                            entry,
                            envelope: env,
                            attempt,
                        },
                        reason,
                    ));
                    continue;
                }
            };
            let held = Held {
                stream,
                entry,
                envelope,
                attempt,
            };
            if attempt > self.max_deliveries {
                let attempts = attempt - 1;
                let reason = pull::max_deliveries_reason(attempts, self.max_deliveries);
                dead.push((
                    Held {
                        attempt: attempts,
                        ..held
                    },
                    reason,
                ));
                continue;
            }
            if self.member.stop.is_stopped() {
                back.push(held);
                continue;
            }
            let (envelope, attempt) = (held.envelope.clone(), held.attempt);
            let tag = self.member.hold(held);
            used += 1;
            let d = Delivery::new(envelope, topic.clone(), attempt, tag, settler.clone());
            if tx.send(d).is_err() {
                if let Some(h) = self.member.take(tag) {
                    back.push(h);
                }
            }
        }
        if !dead.is_empty() {
            self.dead_letter_and_ack(dead).await;
        }
        if !back.is_empty() {
            self.give_back(back).await;
        }
        used
    }
}

/// A member's subscription; leaving also removes its consumer from the
/// group when it holds nothing.
struct RedisSubscription {
    sub: PulledSubscription<Held>,
    ctx: Arc<MemberCtx>,
}

impl RedisSubscription {
    async fn forget_consumer(&self) {
        let script = Script::new(FORGET_CONSUMER);
        let mut conn = self.ctx.broker.conn.clone();
        for (key, _) in &self.ctx.streams {
            let _: Result<Value, RedisError> = script
                .key(key)
                .arg(&self.ctx.group)
                .arg(&self.ctx.consumer)
                .invoke_async(&mut conn)
                .await;
        }
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        self.sub.next_batch(max).await
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        self.sub.unsubscribe().await?;
        self.forget_consumer().await;
        Ok(())
    }
}
