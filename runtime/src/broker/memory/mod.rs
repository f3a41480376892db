//! The embedded broker: in process, nothing to set up.
//!
//! It implements the whole contract — consumer groups, competing members,
//! acks, nacks with delay, ack-wait redelivery, max deliveries, dead
//! letters, per-key order — and carries envelopes by reference: a payload
//! is never serialized.
//!
//! Each topic fans a published message out to one queue per consumer
//! group; members of a group take from its queue in batches. A topic also
//! retains its last messages ([`MemoryOptions::retained_per_topic`], batches
//! counted by what they carry, each with the time it was published) so
//! that a group created later with [`StartPosition::Earliest`] or
//! [`StartPosition::Since`] still sees them. An observer
//! ([`Broker::observe`]) is a queue of its own in the topics it follows,
//! filled from the same retention when it starts.
//! Nothing survives the process: the broker is not durable.

mod group;
mod observer;

use crate::sync::{Recover, RecoverRw};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use smallvec::SmallVec;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::group::{Group, GroupConfig, Member};
use self::observer::{MemoryObservation, Observer};
use super::{
    Broker, BrokerError, Capabilities, Delivery, Health, ObserveOptions, StartPosition,
    SubscribeOptions, Subscription,
};
use crate::envelope::{Envelope, SharedStr};

/// Settings of a [`MemoryBroker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Deliver every published message twice to every group (two separate
    /// deliveries of one envelope, same id): a test and operations switch
    /// to prove that consumers deduplicate.
    pub duplicate_deliveries: bool,
    /// How many of its latest messages a topic keeps for groups and
    /// observers created later from the earliest position or a time (0:
    /// none). A message that batches
    /// others counts for what it carries
    /// ([`Message::batch_len`](crate::Message::batch_len): a progress
    /// notice of 200 completions counts 200), and the latest message is
    /// kept whatever it counts. Groups that exist keep everything
    /// published after they were created, whatever this says.
    pub retained_per_topic: usize,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            duplicate_deliveries: false,
            retained_per_topic: 1024,
        }
    }
}

const OPEN: u8 = 0;
const DRAINING: u8 = 1;
const CLOSED: u8 = 2;

/// The in-memory broker. Cloning gives another handle on the same broker.
#[derive(Clone)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

struct Topic {
    name: SharedStr,
    state: Mutex<TopicState>,
}

#[derive(Default)]
struct TopicState {
    /// The latest messages, each with how many it stands for
    /// ([`Message::batch_len`](crate::Message::batch_len)), read once
    /// when it comes: evicting then touches nothing of the message but
    /// its reference count; and when it was published, for
    /// [`StartPosition::Since`].
    retained: VecDeque<(Envelope, usize, jiff::Timestamp)>,
    /// What `retained` stands for, in all.
    retained_len: usize,
    groups: Vec<Arc<Group>>,
    observers: Vec<Arc<Observer>>,
}

impl TopicState {
    /// The retained messages from `start` on, oldest first.
    fn history(&self, start: StartPosition) -> Vec<Envelope> {
        let since = match start {
            StartPosition::Latest => return Vec::new(),
            StartPosition::Earliest => None,
            StartPosition::Since(t) => Some(t),
        };
        // Filtered one by one rather than cut at the first match: the
        // wall clock may step back between two publishes.
        self.retained
            .iter()
            .filter(|(_, _, at)| since.is_none_or(|t| *at >= t))
            .map(|(env, _, _)| env.clone())
            .collect()
    }
}

pub(crate) struct Shared {
    topics: RwLock<HashMap<SharedStr, Arc<Topic>, foldhash::fast::RandomState>>,
    options: MemoryOptions,
    state: AtomicU8,
    next_member: AtomicU64,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::new()
    }
}

impl MemoryBroker {
    /// A new, empty broker with the default options.
    pub fn new() -> Self {
        MemoryBroker::with_options(MemoryOptions::default())
    }

    /// A new, empty broker.
    pub fn with_options(options: MemoryOptions) -> Self {
        MemoryBroker {
            shared: Arc::new(Shared {
                topics: RwLock::new(HashMap::default()),
                options,
                state: AtomicU8::new(OPEN),
                next_member: AtomicU64::new(1),
            }),
        }
    }

    /// A new broker that delivers every message twice to every group.
    pub fn with_duplicates() -> Self {
        MemoryBroker::with_options(MemoryOptions {
            duplicate_deliveries: true,
            ..MemoryOptions::default()
        })
    }
}

impl Shared {
    fn topic(&self, name: &str) -> Arc<Topic> {
        if let Some(t) = read(&self.topics).get(name) {
            return t.clone();
        }
        let mut topics = self.topics.write_locked();
        topics
            .entry(SharedStr::from(name.to_owned()))
            .or_insert_with(|| {
                Arc::new(Topic {
                    name: SharedStr::from(name.to_owned()),
                    state: Mutex::new(TopicState::default()),
                })
            })
            .clone()
    }

    /// Puts `env` in every group of `topic` (and the topic's retention).
    fn deliver(&self, topic: &str, env: &Envelope) {
        self.deliver_many(topic, std::slice::from_ref(env));
    }

    /// Puts `envs`, in order, in every group of `topic` (and the topic's
    /// retention): one topic lookup, and one lock per group, for them all.
    fn deliver_many(&self, topic: &str, envs: &[Envelope]) {
        {
            // The common case: a known topic, used under the read lock
            // without taking a reference.
            let topics = read(&self.topics);
            if let Some(t) = topics.get(topic) {
                self.deliver_to(t, envs);
                return;
            }
        }
        self.deliver_to(&self.topic(topic), envs);
    }

    fn deliver_to(&self, topic: &Topic, envs: &[Envelope]) {
        let copies = if self.options.duplicate_deliveries {
            2
        } else {
            1
        };
        let mut st = lock(&topic.state);
        let keep = self.options.retained_per_topic;
        if keep > 0 {
            // One reading of the clock for the batch: published together.
            let now = jiff::Timestamp::now();
            // A batch longer than the window leaves only its end in it.
            for env in &envs[envs.len().saturating_sub(keep)..] {
                // Counted at most as the whole window: what a message
                // says it stands for is the user's code, and the sum must
                // not overflow.
                let len = env.payload().batch_len().min(keep);
                st.retained.push_back((env.clone(), len, now));
                st.retained_len += len;
                // The latest message stays, whatever it stands for.
                while st.retained_len > keep && st.retained.len() > 1 {
                    if let Some((_, gone, _)) = st.retained.pop_front() {
                        st.retained_len -= gone;
                    }
                }
            }
        }
        for g in &st.groups {
            g.push(envs, copies);
        }
        // Observers get each message once: duplicate deliveries are a
        // group's (its consumers must deduplicate), and nothing dedups here.
        for o in &st.observers {
            o.push(&topic.name, envs);
        }
    }

    fn all_observers(&self) -> Vec<Arc<Observer>> {
        read(&self.topics)
            .values()
            .flat_map(|t| lock(&t.state).observers.clone())
            .collect()
    }

    fn all_groups(&self) -> Vec<Arc<Group>> {
        read(&self.topics)
            .values()
            .flat_map(|t| lock(&t.state).groups.clone())
            .collect()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read_locked()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.locked()
}

#[async_trait]
impl Broker for MemoryBroker {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn url(&self) -> Option<&str> {
        Some("memory://")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: false,
            per_key_order: true,
            native_dedup: false,
            history: self.shared.options.retained_per_topic > 0,
        }
    }

    async fn publish(&self, topic: &str, envelope: Envelope) -> Result<(), BrokerError> {
        // While draining, consumers still publish what their handling emits.
        if self.shared.state.load(Ordering::Acquire) == CLOSED {
            return Err(BrokerError::Closed);
        }
        self.shared.deliver(topic, &envelope);
        Ok(())
    }

    async fn publish_batch(&self, messages: Vec<(SharedStr, Envelope)>) -> Result<(), BrokerError> {
        if self.shared.state.load(Ordering::Acquire) == CLOSED {
            return Err(BrokerError::Closed);
        }
        // Runs of one topic go in together, in order.
        let mut messages = messages.into_iter().peekable();
        let mut run: SmallVec<[Envelope; 16]> = SmallVec::new();
        while let Some((topic, env)) = messages.next() {
            run.push(env);
            if messages.peek().is_none_or(|(next, _)| *next != topic) {
                self.shared.deliver_many(&topic, &run);
                run.clear();
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BrokerError> {
        options.validate()?;
        if self.shared.state.load(Ordering::Acquire) == CLOSED {
            return Err(BrokerError::Closed);
        }
        let member = Arc::new(Member {
            id: self.shared.next_member.fetch_add(1, Ordering::Relaxed),
            notify: Notify::new(),
            waiting: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            max_in_flight: options.max_in_flight,
            ended: AtomicBool::new(false),
        });
        let config = GroupConfig {
            ack_wait: options.ack_wait,
            max_deliveries: options.max_deliveries,
            backoff: options.backoff,
            per_key_order: options.per_key_order,
        };
        let mut groups = Vec::with_capacity(options.topics.len());
        let mut seen = std::collections::HashSet::new();
        for name in options.topics.iter().filter(|t| seen.insert(t.as_str())) {
            let topic = self.shared.topic(name);
            let mut st = lock(&topic.state);
            let existing = st
                .groups
                .iter()
                .find(|g| g.name == *options.group.as_str())
                .cloned();
            // The first subscription creates the group and fixes its
            // settings, as a durable consumer does on a real broker.
            let group = existing.unwrap_or_else(|| {
                let backlog = st.history(options.start);
                let g = Group::new(
                    SharedStr::from(options.group.clone()),
                    topic.name.clone(),
                    config.clone(),
                    Arc::downgrade(&self.shared),
                    backlog,
                );
                st.groups.push(g.clone());
                g
            });
            group.join(member.clone());
            groups.push(group);
        }
        Ok(Box::new(MemorySubscription {
            member,
            groups,
            broker: self.shared.clone(),
            next_group: 0,
            left: false,
        }))
    }

    async fn observe(&self, options: ObserveOptions) -> Result<Box<dyn Subscription>, BrokerError> {
        options.validate()?;
        if self.shared.state.load(Ordering::Acquire) == CLOSED {
            return Err(BrokerError::Closed);
        }
        let observer = Observer::new();
        let mut topics = Vec::with_capacity(options.topics.len());
        let mut seen = std::collections::HashSet::new();
        for name in options.topics.iter().filter(|t| seen.insert(t.as_str())) {
            let topic = self.shared.topic(name);
            {
                // The history and the registration under one lock: no
                // publish falls between them, none is seen twice.
                let mut st = lock(&topic.state);
                observer.push(&topic.name, &st.history(options.start));
                st.observers.push(observer.clone());
            }
            topics.push(topic);
        }
        Ok(Box::new(MemoryObservation::new(
            observer,
            topics,
            self.shared.clone(),
            options.max_in_flight,
        )))
    }

    async fn health(&self) -> Health {
        match self.shared.state.load(Ordering::Acquire) {
            OPEN => Health::Healthy,
            DRAINING => Health::Degraded("closing: draining in-flight messages".into()),
            _ => Health::Unhealthy("closed".into()),
        }
    }

    async fn close(&self, drain_timeout: Duration) -> Result<(), BrokerError> {
        if self
            .shared
            .state
            .compare_exchange(OPEN, DRAINING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(());
        }
        let deadline = Instant::now() + drain_timeout;
        loop {
            let groups = self.shared.all_groups();
            if groups.iter().all(|g| g.drained()) {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!("memory broker closed before every group drained");
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.shared.state.store(CLOSED, Ordering::Release);
        for g in self.shared.all_groups() {
            g.end_members();
        }
        for o in self.shared.all_observers() {
            o.end();
        }
        Ok(())
    }
}

/// One member of one group, on one or more topics.
struct MemorySubscription {
    member: Arc<Member>,
    groups: Vec<Arc<Group>>,
    broker: Arc<Shared>,
    // Where the next take starts, so that no topic starves the others.
    next_group: usize,
    left: bool,
}

impl MemorySubscription {
    fn ended(&self) -> bool {
        self.left
            || self.member.ended.load(Ordering::SeqCst)
            || self.broker.state.load(Ordering::Acquire) == CLOSED
    }

    fn leave(&mut self) {
        if !self.left {
            self.left = true;
            for g in &self.groups {
                g.leave(self.member.id);
            }
        }
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        loop {
            if self.ended() {
                return Ok(None);
            }
            // Announce the wait before looking, so a publish between the
            // look and the wait still wakes us (see `Member::wake`).
            self.member.waiting.store(true, Ordering::SeqCst);
            let held = self.member.in_flight.load(Ordering::SeqCst);
            // Asking for none would wait for ever: take at least one.
            let budget = max
                .max(1)
                .min(self.member.max_in_flight.saturating_sub(held));
            let now = Instant::now();
            let mut out = Vec::with_capacity(budget);
            let mut wake_at: Option<Instant> = None;
            let n = self.groups.len();
            for i in 0..n {
                let g = &self.groups[(self.next_group + i) % n];
                let at = g.take(&self.member, budget - out.len(), now, &mut out);
                wake_at = match (wake_at, at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            self.next_group = (self.next_group + 1) % n.max(1);
            if !out.is_empty() {
                self.member.waiting.store(false, Ordering::SeqCst);
                return Ok(Some(out));
            }
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = self.member.notify.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.member.notify.notified().await,
            }
        }
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        self.leave();
        Ok(())
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod conformance_tests {
    crate::conformance_suite!(memory, async { crate::MemoryBroker::new() });
    crate::conformance_suite!(memory_without_retention, async {
        crate::MemoryBroker::with_options(crate::MemoryOptions {
            retained_per_topic: 0,
            ..crate::MemoryOptions::default()
        })
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::broker::{connect, Settlement};

    fn env(n: u32) -> Envelope {
        Envelope::builder("T", "k").id(format!("e{n}")).build()
    }

    async fn ids(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            let batch = tokio::time::timeout(Duration::from_secs(10), sub.next_batch(n))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            for d in batch {
                out.push(d.envelope().id().to_string());
                d.ack().await.unwrap();
            }
        }
        out
    }

    #[tokio::test]
    async fn duplicate_deliveries_hand_every_message_out_twice() {
        let broker = MemoryBroker::with_duplicates();
        let mut sub = broker
            .subscribe(SubscribeOptions::new("g", ["t"]))
            .await
            .unwrap();
        broker.publish("t", env(1)).await.unwrap();
        let got = ids(&mut sub, 2).await;
        assert_eq!(got, ["e1", "e1"]);
    }

    #[tokio::test]
    async fn start_positions_and_retention() {
        let broker = MemoryBroker::with_options(MemoryOptions {
            retained_per_topic: 2,
            ..MemoryOptions::default()
        });
        for n in 0..3 {
            broker.publish("t", env(n)).await.unwrap();
        }
        let mut early = broker
            .subscribe(SubscribeOptions::new("early", ["t"]))
            .await
            .unwrap();
        assert_eq!(
            ids(&mut early, 2).await,
            ["e1", "e2"],
            "the last two were retained"
        );
        let mut o = SubscribeOptions::new("late", ["t"]);
        o.start = StartPosition::Latest;
        let mut late = broker.subscribe(o).await.unwrap();
        broker.publish("t", env(3)).await.unwrap();
        assert_eq!(ids(&mut late, 1).await, ["e3"]);
        assert_eq!(ids(&mut early, 1).await, ["e3"]);
    }

    /// A message that stands for several, as a progress notice does.
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Batched(Vec<u32>);
    impl crate::Message for Batched {
        const TYPE: &'static str = "Test.Batched";
        fn batch_len(&self) -> usize {
            self.0.len()
        }
    }

    /// A message that claims to stand for more than can be counted.
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Boastful;
    impl crate::Message for Boastful {
        const TYPE: &'static str = "Test.Boastful";
        fn batch_len(&self) -> usize {
            usize::MAX
        }
    }

    #[tokio::test]
    async fn retention_counts_a_batch_by_what_it_carries() {
        let broker = MemoryBroker::with_options(MemoryOptions {
            retained_per_topic: 4,
            ..MemoryOptions::default()
        });
        let batch = |n: u32, len: u32| {
            Envelope::of("k", Batched((0..len).collect()))
                .id(format!("b{n}"))
                .build()
        };
        // What a group created now from the earliest position gets first.
        let retained = |group: &'static str, n: usize| {
            let broker = broker.clone();
            async move {
                let o = SubscribeOptions::new(group, ["t"]);
                ids(&mut broker.subscribe(o).await.unwrap(), n).await
            }
        };
        // 3 + 3 is more than 4: only the second batch stays.
        broker.publish("t", batch(0, 3)).await.unwrap();
        broker.publish("t", batch(1, 3)).await.unwrap();
        assert_eq!(retained("a", 1).await, ["b1"]);
        // A batch bigger than the window is kept, alone, as the latest.
        broker.publish("t", batch(2, 9)).await.unwrap();
        assert_eq!(retained("b", 1).await, ["b2"]);
        // Plain messages count one each again, next to an empty batch.
        broker.publish("t", batch(3, 0)).await.unwrap();
        for n in 0..3 {
            broker.publish("t", env(n)).await.unwrap();
        }
        assert_eq!(retained("c", 4).await, ["b3", "e0", "e1", "e2"]);
        // Whatever a message claims to carry, the count cannot overflow.
        for n in 4..6 {
            let env = Envelope::of("k", Boastful).id(format!("b{n}")).build();
            broker.publish("t", env).await.unwrap();
        }
        assert_eq!(retained("d", 1).await, ["b5"]);
    }

    #[tokio::test]
    async fn bad_options_and_unknown_urls_are_errors() {
        let broker = MemoryBroker::new();
        let mut o = SubscribeOptions::new("g", ["t"]);
        o.max_in_flight = 0;
        assert!(matches!(
            broker.subscribe(o).await,
            Err(BrokerError::InvalidOptions(_))
        ));
        assert!(matches!(
            broker
                .subscribe(SubscribeOptions::new("g", Vec::<String>::new()))
                .await,
            Err(BrokerError::InvalidOptions(_))
        ));
        assert!(connect("memory://").await.is_ok());
        assert!(connect("").await.is_ok());
        assert!(matches!(
            connect("kafka://x").await,
            Err(crate::broker::ConnectError::UnknownScheme(_))
        ));
        #[cfg(not(feature = "nats"))]
        assert!(matches!(
            connect("nats://127.0.0.1:4222").await,
            Err(crate::broker::ConnectError::FeatureDisabled { .. })
        ));
        assert_eq!(broker.health().await, Health::Healthy);
        broker.close(Duration::from_secs(1)).await.unwrap();
        assert!(matches!(broker.health().await, Health::Unhealthy(_)));
        assert_eq!(broker.publish("t", env(1)).await, Err(BrokerError::Closed));
    }

    #[tokio::test]
    async fn bad_observe_options_are_errors() {
        let broker = MemoryBroker::new();
        let mut o = ObserveOptions::new(["t"]);
        o.max_in_flight = 0;
        assert!(matches!(
            broker.observe(o).await,
            Err(BrokerError::InvalidOptions(_))
        ));
        for topics in [vec![], vec![""]] {
            assert!(matches!(
                broker.observe(ObserveOptions::new(topics)).await,
                Err(BrokerError::InvalidOptions(_))
            ));
        }
    }

    #[tokio::test]
    async fn an_observer_takes_at_most_max_in_flight_at_once() {
        let broker = MemoryBroker::new();
        for n in 0..5 {
            broker.publish("t", env(n)).await.unwrap();
        }
        let mut o = ObserveOptions::new(["t", "t"]);
        o.max_in_flight = 2;
        let mut obs = broker.observe(o).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            let batch = obs.next_batch(10).await.unwrap().unwrap();
            assert!(batch.len() <= 2, "{batch:?}");
            got.extend(batch.iter().map(|d| d.envelope().id().to_string()));
        }
        assert_eq!(
            got,
            ["e0", "e1", "e2", "e3", "e4"],
            "a topic named twice counts once"
        );
    }

    /// A broker with one member of group `g` on topic `t`.
    async fn subscribed() -> (MemoryBroker, Box<dyn Subscription>) {
        let broker = MemoryBroker::new();
        let sub = broker
            .subscribe(SubscribeOptions::new("g", ["t"]))
            .await
            .unwrap();
        (broker, sub)
    }

    /// Publishes message `n` on `t` and takes its delivery.
    async fn deliver(broker: &MemoryBroker, sub: &mut Box<dyn Subscription>, n: u32) -> Delivery {
        broker.publish("t", env(n)).await.unwrap();
        sub.next_batch(1).await.unwrap().unwrap().remove(0)
    }

    #[tokio::test]
    async fn a_stale_tag_finds_nothing_even_when_its_slot_is_used_again() {
        let (broker, mut sub) = subscribed().await;
        let first = deliver(&broker, &mut sub, 1).await;
        let (stale, settler) = (first.tag(), first.settler.clone());
        first.ack().await.unwrap();
        let second = deliver(&broker, &mut sub, 2).await;
        assert_ne!(second.tag(), stale, "a reused slot gives a new tag");
        assert_eq!(
            settler.settle(vec![(stale, Settlement::Ack)]).await,
            Err(BrokerError::UnknownDelivery(stale))
        );
        second.ack().await.unwrap();
    }

    #[tokio::test]
    async fn settling_twice_is_an_error_not_a_panic() {
        let (broker, mut sub) = subscribed().await;
        let d = deliver(&broker, &mut sub, 1).await;
        let tag = d.tag();
        let again = Delivery::new(
            d.envelope().clone(),
            d.topic().clone(),
            1,
            tag,
            d.settler.clone(),
        );
        d.ack().await.unwrap();
        assert_eq!(again.ack().await, Err(BrokerError::UnknownDelivery(tag)));
    }
}
