//! What the adapters of real brokers (NATS JetStream, Redis Streams) share.
//!
//! Both pull messages from their server in a background task per member
//! (the *puller*) and hand them to [`Subscription::next_batch`] through a
//! channel, which makes `next_batch` cancel safe: a message the server sent
//! is never lost in a dropped future. The member's credit
//! ([`SubscribeOptions::max_in_flight`](super::SubscribeOptions)) bounds
//! what the puller asks for; every delivery handed out holds one unit of
//! credit until it is settled or its ack wait expires (when the server
//! redelivers it anyway). Leaving the group gives what the member held
//! back to the group at once, through the adapter's [`GiveBack`]; a puller
//! that is stopped goes on receiving what its last request brings until
//! the request ends, and gives that back too (a message the server sends
//! to a request nobody listens to any more would return only after the
//! ack wait, and NATS would not even count that delivery).
//!
//! Also here: the wire encoding and the dead letter of a message that does
//! not decode, which both adapters use; and [`Observation`], the
//! subscription of an observer ([`Broker::observe`](super::Broker::observe)),
//! which has no member, no credit and nothing to give back.

use crate::sync::Recover;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::Instant;

use super::{
    dead_letter_envelope, Backoff, BrokerError, Delivery, ObserverSettler, Settlement, Settler,
    Subscription, UNDECODABLE_TYPE,
};
use crate::envelope::{json, Envelope, EnvelopeError, SharedStr};
use crate::payload::Payload;

/// How long a puller waits before it asks a server that failed again.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The dead letter of raw bytes that are not an envelope: an envelope of
/// type [`UNDECODABLE_TYPE`] whose id and correlation id are `id` (the
/// broker's own name for the message), carrying the bytes as its data and
/// the decode error as its reason.
pub(crate) fn undecodable_dead_letter(
    raw: Bytes,
    id: &str,
    source: &'static str,
    topic: &str,
    group: &str,
    attempts: u32,
    error: &EnvelopeError,
) -> Envelope {
    let env = Envelope::builder(UNDECODABLE_TYPE, id.to_owned())
        .id(id)
        .source(source)
        .payload(Payload::json(raw))
        .build();
    let reason = format!("not an envelope: {error}");
    dead_letter_envelope(&env, topic, group, attempts, &reason)
}

/// The reason given to a message dead-lettered for too many deliveries.
pub(crate) fn max_deliveries_reason(delivered: u32, max: u32) -> String {
    format!("delivered {delivered} times without an ack (max_deliveries {max})")
}

/// Encodes an envelope for the wire: one structured-mode CloudEvent.
pub(crate) fn encode(env: &Envelope) -> Result<Bytes, BrokerError> {
    Ok(Bytes::from(json::encode(env)?))
}

/// Encodes envelopes for the wire into one buffer, each message a slice of
/// it: a batch costs one allocation, not one or two per message.
pub(crate) fn encode_all<'a>(
    envs: impl ExactSizeIterator<Item = &'a Envelope>,
) -> Result<Vec<Bytes>, BrokerError> {
    let mut buf = Vec::with_capacity(envs.len() * json::ENCODED_GUESS);
    let mut ends = Vec::with_capacity(envs.len());
    for env in envs {
        json::encode_into(env, &mut buf)?;
        ends.push(buf.len());
    }
    let all = Bytes::from(buf);
    let mut start = 0;
    Ok(ends
        .into_iter()
        .map(|end| {
            let one = all.slice(start..end);
            start = end;
            one
        })
        .collect())
}

/// The envelope's id as text.
pub(crate) fn id_text(env: &Envelope) -> String {
    env.id().with_text(|t| t.to_owned())
}

/// The id under which a dead letter is deduplicated: one dead letter per
/// message and group, whatever the retries of the dead-lettering.
pub(crate) fn dead_letter_dedup_id(id: &str, group: &str) -> String {
    format!("{id}/dlq/{group}")
}

/// `fut` (connecting to `server`), or an error once `timeout` has passed.
pub(crate) async fn within<T>(
    timeout: Duration,
    server: &str,
    fut: impl Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    tokio::time::timeout(timeout, fut).await.map_err(|_| {
        BrokerError::Unavailable(format!("no answer from {server} within {timeout:?}"))
    })?
}

const OPEN: u8 = 0;
const DRAINING: u8 = 1;
const CLOSED: u8 = 2;

/// A broker's state (open, draining, closed) and its live members, whose
/// groups `close` drains.
pub(crate) struct Lifecycle<M> {
    state: AtomicU8,
    members: Mutex<Vec<Weak<M>>>,
    /// Stopped once closed: what observers wait for (they have nothing to
    /// drain, so they are not members).
    closed: Stop,
}

/// What [`Lifecycle`] needs of a member.
pub(crate) trait Live: Send + Sync {
    /// The member's stop signal.
    fn stop(&self) -> &Stop;
}

impl<M: Live> Lifecycle<M> {
    pub(crate) fn new() -> Self {
        Lifecycle {
            state: AtomicU8::new(OPEN),
            members: Mutex::new(Vec::new()),
            closed: Stop::default(),
        }
    }

    /// Stopped once the broker is closed.
    pub(crate) fn closed(&self) -> &Stop {
        &self.closed
    }

    /// `Err(Closed)` once closed (publishing goes on while draining).
    pub(crate) fn check_open(&self) -> Result<(), BrokerError> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            Err(BrokerError::Closed)
        } else {
            Ok(())
        }
    }

    /// `Some` problem to report while closing or closed.
    pub(crate) fn unhealthy(&self) -> Option<super::Health> {
        match self.state.load(Ordering::Acquire) {
            OPEN => None,
            DRAINING => Some(super::Health::Degraded(
                "closing: draining in-flight messages".into(),
            )),
            _ => Some(super::Health::Unhealthy("closed".into())),
        }
    }

    pub(crate) fn register(&self, member: &Arc<M>) {
        let mut members = self.members.locked();
        members.retain(|m| m.strong_count() > 0);
        members.push(Arc::downgrade(member));
        drop(members);
        // A member made while `close` ran (a subscribe that passed
        // `check_open` before it) may come after `close` ended the members
        // it found: it ends now, or its subscription would never end (the
        // conformance case `concurrent_subscribe_and_unsubscribe` caught
        // it). `close` marks the broker closed before it takes the list,
        // so a member it did not find sees the mark here.
        if self.state.load(Ordering::Acquire) == CLOSED {
            member.stop().stop();
        }
    }

    /// The members that have not left.
    pub(crate) fn live(&self) -> Vec<Arc<M>> {
        let mut members = self.members.locked();
        members.retain(|m| m.strong_count() > 0);
        members
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|m| !m.stop().is_stopped())
            .collect()
    }

    /// `Broker::close`: waits until `drained` says the live members' groups
    /// have nothing left (or `drain_timeout`), then ends every member.
    /// False if the broker was closing already.
    pub(crate) async fn close<F, Fut>(
        &self,
        drain_timeout: Duration,
        kind: &str,
        mut drained: F,
    ) -> bool
    where
        F: FnMut(Vec<Arc<M>>) -> Fut,
        Fut: Future<Output = bool>,
    {
        if self
            .state
            .compare_exchange(OPEN, DRAINING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let deadline = Instant::now() + drain_timeout;
        while !drained(self.live()).await {
            if Instant::now() >= deadline {
                tracing::warn!(broker = kind, "closed before every group drained");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.state.store(CLOSED, Ordering::Release);
        self.closed.stop();
        for m in self.live() {
            m.stop().stop();
        }
        true
    }
}

/// A stop signal many tasks can wait for.
#[derive(Default)]
pub(crate) struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub(crate) fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once stopped.
    pub(crate) async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

struct Held<H> {
    next_tag: u64,
    entries: HashMap<u64, (H, Instant), foldhash::fast::RandomState>,
    /// No entry's deadline is earlier than this.
    next_expiry: Option<Instant>,
}

/// One member of a group: its credit, what it holds, its stop signal.
pub(crate) struct Member<H> {
    held: Mutex<Held<H>>,
    credit: Semaphore,
    ack_wait: Duration,
    pub(crate) stop: Stop,
}

impl<H> Member<H> {
    pub(crate) fn new(max_in_flight: usize, ack_wait: Duration) -> Arc<Self> {
        Arc::new(Member {
            held: Mutex::new(Held {
                next_tag: 1,
                entries: HashMap::default(),
                next_expiry: None,
            }),
            credit: Semaphore::new(max_in_flight.min(Semaphore::MAX_PERMITS)),
            ack_wait,
            stop: Stop::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Held<H>> {
        self.held.locked()
    }

    /// Forgets deliveries whose ack wait has passed (the server redelivers
    /// them) and returns their credit; tells when the next one expires.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut held = self.lock();
        if held.next_expiry.is_some_and(|e| e <= now) {
            let before = held.entries.len();
            held.entries.retain(|_, (_, deadline)| *deadline > now);
            let expired = before - held.entries.len();
            held.next_expiry = held.entries.values().map(|(_, d)| *d).min();
            self.credit.add_permits(expired);
        }
        held.next_expiry
    }

    /// Waits for credit and reserves between 1 and `want` units of it;
    /// `None` once the member is stopped. Give back what goes unused with
    /// [`Member::release`].
    pub(crate) async fn reserve(&self, want: usize) -> Option<usize> {
        loop {
            if self.stop.is_stopped() {
                return None;
            }
            let next_expiry = self.expire(Instant::now());
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                permit = self.credit.acquire() => match permit {
                    Ok(p) => p.forget(),
                    Err(_) => return None,
                },
                _ = tokio::time::sleep_until(next_expiry.unwrap_or(far)) => continue,
                _ = self.stop.stopped() => return None,
            }
            let mut got = 1;
            while got < want {
                match self.credit.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                got += 1;
            }
            return Some(got);
        }
    }

    /// Returns reserved credit that was not used.
    pub(crate) fn release(&self, n: usize) {
        if n > 0 {
            self.credit.add_permits(n);
        }
    }

    /// Records a delivery made with one unit of reserved credit; its tag.
    pub(crate) fn hold(&self, handle: H) -> u64 {
        let deadline = Instant::now() + self.ack_wait;
        let mut held = self.lock();
        let tag = held.next_tag;
        held.next_tag += 1;
        held.entries.insert(tag, (handle, deadline));
        held.next_expiry = Some(held.next_expiry.map_or(deadline, |e| e.min(deadline)));
        tag
    }

    /// The delivery `tag`, no longer held (its credit returned), or `None`
    /// when it is not held (settled already, or its ack wait passed).
    pub(crate) fn take(&self, tag: u64) -> Option<H> {
        let taken = self.lock().entries.remove(&tag).map(|(h, _)| h);
        if taken.is_some() {
            self.credit.add_permits(1);
        }
        taken
    }

    /// [`Member::take`] for a whole settle batch, with the credit returned
    /// at once (so that the puller asks for a batch, not for one message).
    pub(crate) fn take_many(&self, tags: impl IntoIterator<Item = u64>) -> Vec<(u64, Option<H>)> {
        let mut held = self.lock();
        let out: Vec<(u64, Option<H>)> = tags
            .into_iter()
            .map(|tag| (tag, held.entries.remove(&tag).map(|(h, _)| h)))
            .collect();
        drop(held);
        self.credit
            .add_permits(out.iter().filter(|(_, h)| h.is_some()).count());
        out
    }

    /// Holds the deliveries `tags` for another ack wait from now; calls
    /// `renew` with each one still held (to tell the server so).
    pub(crate) fn keep_alive(&self, tags: &[u64], mut renew: impl FnMut(&H)) {
        let deadline = Instant::now() + self.ack_wait;
        let mut held = self.lock();
        // `next_expiry` stays a lower bound: deadlines only move later.
        for tag in tags {
            if let Some((h, d)) = held.entries.get_mut(tag) {
                *d = deadline;
                renew(h);
            }
        }
    }

    /// Everything held, no longer held.
    pub(crate) fn take_all(&self) -> Vec<H> {
        let mut held = self.lock();
        held.next_expiry = None;
        let all: Vec<H> = held.entries.drain().map(|(_, (h, _))| h).collect();
        self.credit.add_permits(all.len());
        all
    }
}

/// What a settlement comes to, for a delivery still held.
pub(crate) enum Settle<H> {
    Ack(H),
    /// Redeliver after the delay.
    Nack(H, Duration),
    /// Dead-letter with the reason.
    DeadLetter(H, String),
}

/// A held delivery's attempt number.
pub(crate) trait Attempt {
    fn attempt(&self) -> u32;
}

/// A settle batch's deliveries, no longer held, with what to do with each:
/// a nack of the last allowed delivery becomes a dead letter, a nack
/// without a delay takes the back-off's. Also the first tag not held.
pub(crate) fn sort<H: Attempt>(
    member: &Member<H>,
    batch: Vec<(u64, Settlement)>,
    max_deliveries: u32,
    backoff: &Backoff,
) -> (Vec<Settle<H>>, Option<u64>) {
    let mut unknown = None;
    let (tags, settlements): (Vec<u64>, Vec<Settlement>) = batch.into_iter().unzip();
    let mut out = Vec::with_capacity(tags.len());
    for ((tag, h), settlement) in member.take_many(tags).into_iter().zip(settlements) {
        let Some(h) = h else {
            unknown.get_or_insert(tag);
            continue;
        };
        out.push(match settlement {
            Settlement::Ack => Settle::Ack(h),
            Settlement::Nack { .. } if h.attempt() >= max_deliveries => {
                let reason = max_deliveries_reason(h.attempt(), max_deliveries);
                Settle::DeadLetter(h, reason)
            }
            Settlement::Nack { delay } => {
                let delay = delay.unwrap_or_else(|| backoff.delay(h.attempt()));
                Settle::Nack(h, delay)
            }
            Settlement::DeadLetter { reason } => Settle::DeadLetter(h, reason),
        });
    }
    (out, unknown)
}

/// The result of a settle call: its first error, else the first unknown tag.
pub(crate) fn settled(
    first_err: Option<BrokerError>,
    unknown: Option<u64>,
) -> Result<(), BrokerError> {
    match (first_err, unknown) {
        (Some(e), _) => Err(e),
        (None, Some(tag)) => Err(BrokerError::UnknownDelivery(tag)),
        (None, None) => Ok(()),
    }
}

/// How an adapter hands what a leaving member held back to its group.
#[async_trait]
pub(crate) trait GiveBack<H>: Send + Sync + 'static {
    /// Makes `held` deliverable again at once, to any member.
    async fn give_back(&self, held: Vec<H>);
}

/// A subscription fed by pullers through a channel.
pub(crate) struct PulledSubscription<H: Send + 'static> {
    rx: mpsc::UnboundedReceiver<Delivery>,
    member: Arc<Member<H>>,
    give_back: Arc<dyn GiveBack<H>>,
    left: bool,
}

impl<H: Send + 'static> PulledSubscription<H> {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Delivery>,
        member: Arc<Member<H>>,
        give_back: Arc<dyn GiveBack<H>>,
    ) -> Self {
        PulledSubscription {
            rx,
            member,
            give_back,
            left: false,
        }
    }
}

#[async_trait]
impl<H: Send + 'static> Subscription for PulledSubscription<H> {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        if self.left || self.member.stop.is_stopped() {
            return Ok(None);
        }
        let first = tokio::select! {
            d = self.rx.recv() => match d {
                Some(d) => d,
                None => return Ok(None),
            },
            _ = self.member.stop.stopped() => return Ok(None),
        };
        let mut out = Vec::with_capacity(max.clamp(1, 64));
        out.push(first);
        while out.len() < max {
            match self.rx.try_recv() {
                Ok(d) => out.push(d),
                Err(_) => break,
            }
        }
        Ok(Some(out))
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        if self.left {
            return Ok(());
        }
        self.left = true;
        self.member.stop.stop();
        self.rx.close();
        let held = self.member.take_all();
        if !held.is_empty() {
            self.give_back.give_back(held).await;
        }
        Ok(())
    }
}

impl<H: Send + 'static> Drop for PulledSubscription<H> {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.member.stop.stop();
        self.rx.close();
        let held = self.member.take_all();
        if held.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let give_back = self.give_back.clone();
                rt.spawn(async move { give_back.give_back(held).await });
            }
            // Outside a runtime: the server redelivers after the ack wait.
            Err(_) => tracing::debug!("subscription dropped outside a runtime"),
        }
    }
}

/// What an observer's readers put in its channel.
pub(crate) type Observed = (SharedStr, Envelope);

/// What leaving an observation does on the server once its readers ended
/// (NATS: delete its consumers).
pub(crate) type CleanUp = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

/// An observer's subscription: reader tasks feed a channel bounded by the
/// observer's `max_in_flight` (so a reader waits while the observer lags,
/// and the server holds what is not read yet), and end when the broker
/// closes, which ends the subscription once what they read is taken.
pub(crate) struct Observation {
    rx: mpsc::Receiver<Observed>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    clean_up: Option<CleanUp>,
    settler: Arc<dyn Settler>,
    next_tag: u64,
    left: bool,
}

impl Observation {
    /// The channel for `max_in_flight` deliveries: readers send to the
    /// sender.
    pub(crate) fn channel(
        max_in_flight: usize,
    ) -> (mpsc::Sender<Observed>, mpsc::Receiver<Observed>) {
        mpsc::channel(max_in_flight.clamp(1, Semaphore::MAX_PERMITS))
    }

    pub(crate) fn new(
        rx: mpsc::Receiver<Observed>,
        readers: Vec<tokio::task::JoinHandle<()>>,
        clean_up: Option<CleanUp>,
    ) -> Self {
        Observation {
            rx,
            readers,
            clean_up,
            settler: Arc::new(ObserverSettler),
            next_tag: 1,
            left: false,
        }
    }

    /// Stops the readers (at their next await: none of them is in the
    /// middle of anything worth finishing) and closes the channel.
    fn stop_readers(&mut self) {
        self.left = true;
        self.rx.close();
        for r in &self.readers {
            r.abort();
        }
    }
}

#[async_trait]
impl Subscription for Observation {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        if self.left {
            return Ok(None);
        }
        let Some(first) = self.rx.recv().await else {
            return Ok(None);
        };
        let max = max.max(1);
        let mut taken = Vec::with_capacity(max.min(64));
        taken.push(first);
        while taken.len() < max {
            match self.rx.try_recv() {
                Ok(o) => taken.push(o),
                Err(_) => break,
            }
        }
        let out = taken
            .into_iter()
            .map(|(topic, env)| {
                let tag = self.next_tag;
                self.next_tag += 1;
                Delivery::new(env, topic, 1, tag, self.settler.clone())
            })
            .collect();
        Ok(Some(out))
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        if self.left {
            return Ok(());
        }
        self.stop_readers();
        // Cleaned up only once no reader can make anything again (a NATS
        // ordered consumer that recreates itself, say).
        for r in self.readers.drain(..) {
            let _ = r.await;
        }
        if let Some(clean_up) = self.clean_up.take() {
            clean_up().await;
        }
        Ok(())
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.stop_readers();
        let Some(clean_up) = self.clean_up.take() else {
            return;
        };
        let readers = std::mem::take(&mut self.readers);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    for r in readers {
                        let _ = r.await;
                    }
                    clean_up().await;
                });
            }
            // Outside a runtime: what is left on the server expires.
            Err(_) => tracing::debug!("observation dropped outside a runtime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_encodes_to_the_bytes_of_each_message() {
        let envs: Vec<Envelope> = (0..5)
            .map(|i| {
                Envelope::builder("Shop.Placed", format!("order-{i}"))
                    .payload(Payload::json(format!("{{\"n\":{i}}}")))
                    .build()
            })
            .collect();
        let bodies = encode_all(envs.iter()).unwrap();
        assert_eq!(bodies.len(), envs.len());
        for (body, env) in bodies.iter().zip(&envs) {
            assert_eq!(body, &encode(env).unwrap());
            assert_eq!(&json::decode(body).unwrap(), env);
        }
        assert!(encode_all([].iter()).unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn credit_is_held_until_settled_or_expired() {
        let m = Member::<u32>::new(2, Duration::from_secs(1));
        assert_eq!(m.reserve(5).await, Some(2));
        let (a, _b) = (m.hold(1), m.hold(2));
        assert!(
            tokio::time::timeout(Duration::from_millis(100), m.reserve(1))
                .await
                .is_err(),
            "no credit while two are held"
        );
        assert_eq!(m.take(a), Some(1));
        assert_eq!(m.take(a), None);
        assert_eq!(m.reserve(5).await, Some(1));
        m.release(1);
        // The other one expires after its ack wait and frees its credit.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(m.reserve(5).await, Some(2));
        m.stop.stop();
        assert_eq!(m.reserve(1).await, None);
    }
}
