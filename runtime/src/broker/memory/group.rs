//! One consumer group on one topic: its queue, its in-flight deliveries,
//! redelivery timers, per-key locks, and its members.

use crate::sync::Recover;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use smallvec::SmallVec;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Shared;
use crate::broker::{dead_letter_envelope, Backoff, BrokerError, Delivery, Settlement, Settler};
use crate::envelope::{Envelope, SharedStr};

/// One subscriber: shared by every group it consumes from.
pub(super) struct Member {
    pub(super) id: u64,
    pub(super) notify: Notify,
    /// Set while the member is about to wait; whoever clears it wakes it.
    pub(super) waiting: AtomicBool,
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: usize,
    pub(super) ended: AtomicBool,
}

impl Member {
    /// Wakes the member if it is waiting; true if it was.
    pub(super) fn wake(&self) -> bool {
        // A plain load first: most pushes find the member busy, and a load
        // does not pull the cache line away from it.
        if self.waiting.load(Ordering::SeqCst) && self.waiting.swap(false, Ordering::SeqCst) {
            self.notify.notify_one();
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct GroupConfig {
    pub(super) ack_wait: Duration,
    pub(super) max_deliveries: u32,
    pub(super) backoff: Backoff,
    pub(super) per_key_order: bool,
}

struct Pending {
    env: Envelope,
    /// Deliveries made so far.
    delivered: u32,
    /// Identity of this copy (a duplicate injection makes two copies).
    seq: u64,
}

struct Delayed {
    at: Instant,
    pending: Pending,
}

// Min-heap on the due time; ties by arrival.
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.pending.seq.cmp(&self.pending.seq))
    }
}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Delayed {}

struct InFlight {
    pending: Pending,
    /// The member holding it (see `GroupState::members`).
    member: u64,
    deadline: Instant,
}

/// The deliveries in flight, in reusable slots: a delivery's tag is its
/// slot and the slot's generation, so that a stale tag (settled already,
/// or given back when its member left) finds nothing. No hashing, and
/// memory bounded by what is in flight at once.
#[derive(Default)]
struct Slots {
    slots: Vec<(u32, Option<InFlight>)>,
    free: Vec<u32>,
    len: usize,
}

impl Slots {
    fn insert(&mut self, f: InFlight) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                // More than 2^32 deliveries in flight at once is out of reach.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(f);
        self.len += 1;
        (u64::from(slot.0) << 32) | u64::from(index)
    }

    fn remove(&mut self, tag: u64) -> Option<InFlight> {
        let index = (tag & u64::from(u32::MAX)) as u32;
        let slot = self.slots.get_mut(index as usize)?;
        if u64::from(slot.0) != tag >> 32 {
            return None;
        }
        let f = slot.1.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(f)
    }

    fn get_mut(&mut self, tag: u64) -> Option<&mut InFlight> {
        let index = (tag & u64::from(u32::MAX)) as u32;
        let slot = self.slots.get_mut(index as usize)?;
        if u64::from(slot.0) != tag >> 32 {
            return None;
        }
        slot.1.as_mut()
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &InFlight)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (generation, f))| {
                f.as_ref()
                    .map(|f| ((u64::from(*generation) << 32) | i as u64, f))
            })
    }

    fn values(&self) -> impl Iterator<Item = &InFlight> {
        self.slots.iter().filter_map(|(_, f)| f.as_ref())
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Default)]
struct GroupState {
    ready: VecDeque<Pending>,
    delayed: BinaryHeap<Delayed>,
    in_flight: Slots,
    next_seq: u64,
    /// No in-flight deadline is earlier than this (a lower bound).
    next_expiry: Option<Instant>,
    members: Vec<Arc<Member>>,
    /// Per-key order: the copy that holds each key, and the copies waiting.
    key_locks: HashMap<SharedStr, u64, foldhash::fast::RandomState>,
    parked: HashMap<SharedStr, VecDeque<Pending>, foldhash::fast::RandomState>,
}

/// Dead letters found under the lock, published after it is released.
pub(super) type DeadLetters = Vec<(String, Envelope)>;

pub(super) struct Group {
    pub(super) name: SharedStr,
    pub(super) topic: SharedStr,
    config: GroupConfig,
    state: Mutex<GroupState>,
    broker: Weak<Shared>,
    // A handle on ourselves for the deliveries we hand out.
    this: Weak<Group>,
}

impl Group {
    pub(super) fn new(
        name: SharedStr,
        topic: SharedStr,
        config: GroupConfig,
        broker: Weak<Shared>,
        backlog: impl IntoIterator<Item = Envelope>,
    ) -> Arc<Group> {
        let mut state = GroupState::default();
        for env in backlog {
            let seq = state.next_seq;
            state.next_seq += 1;
            state.ready.push_back(Pending {
                env,
                delivered: 0,
                seq,
            });
        }
        Arc::new_cyclic(|this| Group {
            name,
            topic,
            config,
            state: Mutex::new(state),
            broker,
            this: this.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // A panic while holding the lock cannot leave the queue half
        // updated in a way that matters more than stopping the service.
        self.state.locked()
    }

    /// Enqueues newly published messages (each `copies` times) and wakes
    /// a member: one lock and one wake for a run of messages.
    pub(super) fn push<'a>(&self, envs: impl IntoIterator<Item = &'a Envelope>, copies: usize) {
        let mut st = self.lock();
        for env in envs {
            for _ in 0..copies {
                let seq = st.next_seq;
                st.next_seq += 1;
                st.ready.push_back(Pending {
                    env: env.clone(),
                    delivered: 0,
                    seq,
                });
            }
        }
        wake_one(&st.members);
    }

    pub(super) fn join(&self, member: Arc<Member>) {
        self.lock().members.push(member);
    }

    /// Removes `member` and gives back what it held.
    pub(super) fn leave(&self, member_id: u64) {
        let dead = {
            let mut st = self.lock();
            let leaving: Option<Arc<Member>> =
                st.members.iter().find(|m| m.id == member_id).cloned();
            st.members.retain(|m| m.id != member_id);
            let tags: Vec<u64> = st
                .in_flight
                .iter()
                .filter(|(_, f)| f.member == member_id)
                .map(|(t, _)| t)
                .collect();
            let mut dead = Vec::new();
            for tag in tags {
                if let Some(f) = st.in_flight.remove(tag) {
                    if let Some(m) = &leaving {
                        m.in_flight.fetch_sub(1, Ordering::SeqCst);
                    }
                    self.requeue(&mut st, f.pending, None, &mut dead);
                }
            }
            if !st.ready.is_empty() {
                wake_one(&st.members);
            }
            dead
        };
        self.publish_dead(dead);
    }

    /// Whether nothing is left to deliver or settle (members present).
    pub(super) fn drained(&self) -> bool {
        let st = self.lock();
        st.members.is_empty()
            || (st.ready.is_empty()
                && st.delayed.is_empty()
                && st.in_flight.is_empty()
                && st.parked.is_empty())
    }

    pub(super) fn end_members(&self) {
        for m in &self.lock().members {
            m.ended.store(true, Ordering::SeqCst);
            m.waiting.store(false, Ordering::SeqCst);
            m.notify.notify_one();
        }
    }

    /// Hands up to `budget` deliveries to `member`; returns when the group
    /// next needs attention (a delayed message or an ack deadline).
    pub(super) fn take(
        &self,
        member: &Arc<Member>,
        budget: usize,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Option<Instant> {
        let mut dead = Vec::new();
        let wake_at = {
            let mut st = self.lock();
            self.promote(&mut st, now, &mut dead);
            let settler = self.this.upgrade().map(|g| g as Arc<dyn Settler>);
            let deadline = now + self.config.ack_wait;
            let mut taken = 0;
            while taken < budget {
                let Some(mut p) = st.ready.pop_front() else {
                    break;
                };
                if self.config.per_key_order {
                    let key = p.env.correlation_shared();
                    match st.key_locks.get(key) {
                        None => {
                            st.key_locks.insert(key.clone(), p.seq);
                        }
                        Some(&holder) if holder == p.seq => {}
                        Some(_) => {
                            st.parked.entry(key.clone()).or_default().push_back(p);
                            continue;
                        }
                    }
                }
                p.delivered += 1;
                let (env, delivered) = (p.env.clone(), p.delivered);
                let tag = st.in_flight.insert(InFlight {
                    pending: p,
                    member: member.id,
                    deadline,
                });
                if let Some(settler) = &settler {
                    if out.capacity() == 0 {
                        out.reserve(budget);
                    }
                    out.push(Delivery::new(
                        env,
                        self.topic.clone(),
                        delivered,
                        tag,
                        settler.clone(),
                    ));
                }
                taken += 1;
            }
            if taken > 0 {
                // One count for the whole batch.
                member.in_flight.fetch_add(taken, Ordering::SeqCst);
                st.next_expiry = Some(st.next_expiry.map_or(deadline, |e| e.min(deadline)));
            }
            // Others may be waiting for what this member left.
            if !st.ready.is_empty() {
                wake_one_except(&st.members, member.id);
            }
            let delayed_at = st.delayed.peek().map(|d| d.at);
            match (delayed_at, st.next_expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        self.publish_dead(dead);
        wake_at
    }

    /// Moves due delayed messages to the queue and expired deliveries back.
    fn promote(&self, st: &mut GroupState, now: Instant, dead: &mut DeadLetters) {
        while st.delayed.peek().is_some_and(|d| d.at <= now) {
            if let Some(d) = st.delayed.pop() {
                st.ready.push_back(d.pending);
            }
        }
        if st.next_expiry.is_some_and(|e| e <= now) {
            let expired: Vec<u64> = st
                .in_flight
                .iter()
                .filter(|(_, f)| f.deadline <= now)
                .map(|(t, _)| t)
                .collect();
            for tag in expired {
                if let Some(f) = st.in_flight.remove(tag) {
                    if let Some(m) = st.members.iter().find(|m| m.id == f.member) {
                        m.in_flight.fetch_sub(1, Ordering::SeqCst);
                    }
                    tracing::debug!(group = %self.name, topic = %self.topic, id = %f.pending.env.id(), "ack wait expired, redelivering");
                    self.requeue(st, f.pending, None, dead);
                }
            }
            st.next_expiry = st.in_flight.values().map(|f| f.deadline).min();
        }
    }

    /// Puts a copy back for redelivery, or dead-letters it when it has
    /// been delivered `max_deliveries` times.
    fn requeue(
        &self,
        st: &mut GroupState,
        pending: Pending,
        delay: Option<Duration>,
        dead: &mut DeadLetters,
    ) {
        if pending.delivered >= self.config.max_deliveries {
            let reason = format!(
                "delivered {} times without an ack (max_deliveries {})",
                pending.delivered, self.config.max_deliveries
            );
            self.dead_letter(st, pending, &reason, dead);
            return;
        }
        match delay {
            Some(d) if !d.is_zero() => st.delayed.push(Delayed {
                at: Instant::now() + d,
                pending,
            }),
            _ => st.ready.push_back(pending),
        }
    }

    fn dead_letter(
        &self,
        st: &mut GroupState,
        pending: Pending,
        reason: &str,
        dead: &mut DeadLetters,
    ) {
        let env = dead_letter_envelope(
            &pending.env,
            &self.topic,
            &self.name,
            pending.delivered,
            reason,
        );
        dead.push((crate::broker::dead_letter_topic(&self.topic), env));
        self.release_key(st, &pending);
    }

    /// Per-key order: the next copy of the key may go now.
    fn release_key(&self, st: &mut GroupState, pending: &Pending) {
        if !self.config.per_key_order {
            return;
        }
        let key = pending.env.correlation_shared();
        if st.key_locks.get(key) == Some(&pending.seq) {
            st.key_locks.remove(key);
            if let Some(q) = st.parked.get_mut(key) {
                if let Some(next) = q.pop_front() {
                    st.ready.push_front(next);
                }
                if q.is_empty() {
                    st.parked.remove(key);
                }
            }
        }
    }

    fn publish_dead(&self, dead: DeadLetters) {
        if dead.is_empty() {
            return;
        }
        if let Some(broker) = self.broker.upgrade() {
            for (topic, env) in dead {
                tracing::warn!(group = %self.name, topic = %self.topic, id = %env.id(), reason = env.extension(crate::broker::DLQ_REASON).unwrap_or(""), "dead-lettered");
                broker.deliver(&topic, &env);
            }
        }
    }
}

fn wake_one(members: &[Arc<Member>]) {
    for m in members {
        if m.wake() {
            return;
        }
    }
}

fn wake_one_except(members: &[Arc<Member>], except: u64) {
    for m in members.iter().filter(|m| m.id != except) {
        if m.wake() {
            return;
        }
    }
}

#[async_trait]
impl Settler for Group {
    async fn keep_alive(&self, tags: &[u64]) -> Result<(), BrokerError> {
        let deadline = Instant::now() + self.config.ack_wait;
        let mut st = self.lock();
        // `next_expiry` stays a lower bound: deadlines only move later.
        for &tag in tags {
            if let Some(f) = st.in_flight.get_mut(tag) {
                f.deadline = deadline;
            }
        }
        Ok(())
    }

    async fn settle(&self, batch: Vec<(u64, Settlement)>) -> Result<(), BrokerError> {
        let mut unknown = None;
        let dead = {
            let mut st = self.lock();
            let mut dead = Vec::new();
            let mut requeued = false;
            // Settled per member (mostly one): one count update each.
            let mut freed: SmallVec<[(u64, usize); 2]> = SmallVec::new();
            for (tag, settlement) in batch {
                let Some(f) = st.in_flight.remove(tag) else {
                    unknown.get_or_insert(tag);
                    continue;
                };
                match freed.iter_mut().find(|(m, _)| *m == f.member) {
                    Some((_, n)) => *n += 1,
                    None => freed.push((f.member, 1)),
                }
                match settlement {
                    Settlement::Ack => self.release_key(&mut st, &f.pending),
                    Settlement::Nack { delay } => {
                        let delay =
                            delay.unwrap_or_else(|| self.config.backoff.delay(f.pending.delivered));
                        self.requeue(&mut st, f.pending, Some(delay), &mut dead);
                        requeued = true;
                    }
                    Settlement::DeadLetter { reason } => {
                        self.dead_letter(&mut st, f.pending, &reason, &mut dead)
                    }
                }
            }
            for (id, n) in freed {
                if let Some(m) = st.members.iter().find(|m| m.id == id) {
                    if m.in_flight.fetch_sub(n, Ordering::SeqCst) >= m.max_in_flight {
                        // It was at its limit: it may take more now.
                        m.wake();
                    }
                }
            }
            if st.in_flight.is_empty() {
                st.next_expiry = None;
            }
            if requeued || !st.ready.is_empty() {
                // A waiting member must learn of the new timer or message.
                wake_one(&st.members);
            }
            dead
        };
        self.publish_dead(dead);
        unknown.map_or(Ok(()), |tag| Err(BrokerError::UnknownDelivery(tag)))
    }
}
