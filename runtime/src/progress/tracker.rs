//! Follows every instance of a choreography: events seen, reactions still
//! pending, and settlement with its outcome.
//!
//! A reaction is pending for an event from the moment the tracker learns
//! of the event (from its topic, or from the notice of the handling that
//! emitted it) until the consuming service's [`ProgressNotice`] reports the
//! reaction done with it (handled, stored by a join, or dead-lettered).
//! An instance is settled when a terminal event has been emitted and no
//! reaction is pending.

use crate::sync::Recover;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use super::topology::{TerminalKind, Topology};
use crate::broker::{
    follow, BrokerError, Settlement, SharedBroker, StartPosition, SubscribeOptions,
};
use crate::envelope::{Envelope, EventId, SharedStr};
use crate::payload::Message;
use crate::service::notice::{Completion, CompletionOutcome, ProgressNotice};
use crate::service::Topics;

/// A reaction that still has an event to finish.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PendingReaction {
    /// The participant.
    pub participant: SharedStr,
    /// The reaction.
    pub reaction: SharedStr,
    /// The event it has to handle.
    pub event_id: EventId,
    /// The event's type.
    pub event_type: SharedStr,
}

/// An event of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// Its id.
    pub id: EventId,
    /// Its wire type.
    pub ty: SharedStr,
}

/// An event that a reaction gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRecord {
    /// The participant.
    pub participant: SharedStr,
    /// The reaction.
    pub reaction: SharedStr,
    /// The event.
    pub event_id: EventId,
    /// Why.
    pub reason: String,
}

/// How an instance ended: the first terminal event's kind and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceOutcome {
    /// Success or failure.
    pub kind: TerminalKind,
    /// The terminal event's type.
    pub event_type: SharedStr,
}

/// How far one instance has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProgress {
    /// The instance key.
    pub key: SharedStr,
    /// Every event seen, in the order the tracker learnt of them.
    pub events: Vec<SeenEvent>,
    /// Reactions still to finish an event.
    pub pending: Vec<PendingReaction>,
    /// The first terminal event, once emitted.
    pub outcome: Option<InstanceOutcome>,
    /// Events that reactions dead-lettered.
    pub dead_letters: Vec<DeadLetterRecord>,
    /// A terminal event was emitted and nothing is pending.
    pub settled: bool,
}

type PendingKey = (EventId, SharedStr, SharedStr);

#[derive(Default)]
struct Instance {
    events: Vec<SeenEvent>,
    seen: HashSet<EventId>,
    pending: HashMap<PendingKey, SharedStr>,
    completed: HashSet<PendingKey>,
    outcome: Option<InstanceOutcome>,
    dead_letters: Vec<DeadLetterRecord>,
    settled: bool,
}

impl Instance {
    fn progress(&self, key: &SharedStr) -> InstanceProgress {
        let mut pending: Vec<PendingReaction> = self
            .pending
            .iter()
            .map(|((id, p, r), ty)| PendingReaction {
                participant: p.clone(),
                reaction: r.clone(),
                event_id: id.clone(),
                event_type: ty.clone(),
            })
            .collect();
        pending.sort_by(|a, b| {
            (&a.participant, &a.reaction, &a.event_id).cmp(&(
                &b.participant,
                &b.reaction,
                &b.event_id,
            ))
        });
        InstanceProgress {
            key: key.clone(),
            events: self.events.clone(),
            pending,
            outcome: self.outcome.clone(),
            dead_letters: self.dead_letters.clone(),
            settled: self.settled,
        }
    }
}

struct State {
    topology: Topology,
    instances: HashMap<SharedStr, Instance>,
    listeners: Vec<mpsc::UnboundedSender<InstanceProgress>>,
}

impl State {
    fn see(&mut self, key: &SharedStr, id: &EventId, ty: &SharedStr) {
        let inst = self.instances.entry(key.clone()).or_default();
        if !inst.seen.insert(id.clone()) {
            return;
        }
        inst.events.push(SeenEvent {
            id: id.clone(),
            ty: ty.clone(),
        });
        for r in self.topology.consumers_of(ty) {
            let k = (id.clone(), r.participant.clone(), r.reaction.clone());
            if !inst.completed.contains(&k) {
                inst.pending.insert(k, ty.clone());
            }
        }
        if inst.outcome.is_none() {
            if let Some(kind) = self.topology.terminal_kind(ty) {
                inst.outcome = Some(InstanceOutcome {
                    kind,
                    event_type: ty.clone(),
                });
            }
        }
    }

    fn complete(&mut self, participant: &SharedStr, c: &Completion) {
        self.see(&c.instance, &c.event_id, &c.event_type);
        for e in &c.emitted {
            self.see(&c.instance, &e.id, &e.ty);
        }
        let inst = self.instances.entry(c.instance.clone()).or_default();
        let k = (c.event_id.clone(), participant.clone(), c.reaction.clone());
        inst.pending.remove(&k);
        inst.completed.insert(k);
        if let CompletionOutcome::DeadLettered { reason } = &c.outcome {
            inst.dead_letters.push(DeadLetterRecord {
                participant: participant.clone(),
                reaction: c.reaction.clone(),
                event_id: c.event_id.clone(),
                reason: reason.clone(),
            });
        }
    }

    /// Announces `key` if it has just settled.
    fn check(&mut self, key: &SharedStr) {
        let Some(inst) = self.instances.get_mut(key) else {
            return;
        };
        let settled = inst.outcome.is_some() && inst.pending.is_empty();
        if settled && !inst.settled {
            inst.settled = true;
            let p = inst.progress(key);
            self.listeners.retain(|l| l.send(p.clone()).is_ok());
        } else if !settled {
            inst.settled = false;
        }
    }
}

/// How a tracker subscribes.
#[derive(Debug, Clone)]
pub struct TrackerOptions {
    /// The deployment's topic names.
    pub topics: Topics,
    /// Its consumer group (default: a fresh one, so every tracker sees all).
    pub group: Option<String>,
    /// Where a new group starts.
    pub start: StartPosition,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions {
            topics: Topics::default(),
            group: None,
            start: StartPosition::Earliest,
        }
    }
}

/// Follows the instances of one choreography.
pub struct InstanceTracker {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl InstanceTracker {
    /// Subscribes to every type of `topology` and to the progress notices.
    pub async fn start(
        topology: Topology,
        broker: SharedBroker,
        options: TrackerOptions,
    ) -> Result<Self, BrokerError> {
        let mut topics: Vec<String> = topology
            .types()
            .map(|t| options.topics.for_type(t))
            .collect();
        topics.push(options.topics.progress(topology.choreography()));
        let group = options.group.unwrap_or_else(|| {
            format!(
                "choreo-tracker-{}-{:016x}",
                topology.choreography(),
                fastrand::u64(..)
            )
        });
        let mut o = SubscribeOptions::new(group, topics);
        o.start = options.start;
        o.max_in_flight = 1024;
        let sub = broker.subscribe(o).await?;
        let state = Arc::new(Mutex::new(State {
            topology,
            instances: HashMap::new(),
            listeners: Vec::new(),
        }));
        let changed = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let (st, ch) = (state.clone(), changed.clone());
        let task = tokio::spawn(follow(sub, stopped, "tracker", 1024, move |deliveries| {
            let mut settlements = Vec::with_capacity(deliveries.len());
            {
                let mut state = st.locked();
                for d in deliveries {
                    let s = observe(&mut state, d.envelope());
                    settlements.push((d, s));
                }
            }
            ch.notify_waiters();
            settlements
        }));
        Ok(InstanceTracker {
            state,
            changed,
            stop,
            task,
        })
    }

    /// How far `key` has got, if the tracker has seen it.
    pub fn instance(&self, key: &str) -> Option<InstanceProgress> {
        let state = self.state.locked();
        state
            .instances
            .get_key_value(key)
            .map(|(k, i)| i.progress(k))
    }

    /// Every instance seen.
    pub fn instances(&self) -> Vec<InstanceProgress> {
        let state = self.state.locked();
        state.instances.iter().map(|(k, i)| i.progress(k)).collect()
    }

    /// A stream of instances as they settle, from now on.
    pub fn settled(&self) -> mpsc::UnboundedReceiver<InstanceProgress> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state.locked().listeners.push(tx);
        rx
    }

    /// Waits until `key` has settled (or `timeout` passes).
    pub async fn wait_settled(&self, key: &str, timeout: Duration) -> Option<InstanceProgress> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(p) = self.instance(key).filter(|p| p.settled) {
                return Some(p);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Forgets `key` (trackers of long-running deployments drop settled
    /// instances once reported).
    pub fn forget(&self, key: &str) {
        self.state.locked().instances.remove(key);
    }

    /// Stops following.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn observe(state: &mut State, env: &Envelope) -> Settlement {
    if env.ty() == ProgressNotice::TYPE {
        match env.decode::<ProgressNotice>() {
            Ok(notice) => {
                let mut keys = Vec::new();
                for c in &notice.completions {
                    state.complete(&notice.participant, c);
                    keys.push(c.instance.clone());
                }
                for k in keys {
                    state.check(&k);
                }
                Settlement::Ack
            }
            Err(e) => Settlement::DeadLetter {
                reason: format!("tracker: {e}"),
            },
        }
    } else {
        let key = env.correlation_shared().clone();
        state.see(&key, env.id(), env.ty_shared());
        state.check(&key);
        Settlement::Ack
    }
}
