//! Every instance of a choreography, fed observation by observation (an
//! event or command seen on its topic, a progress notice, a dead letter),
//! each with the time it was made, and classified against the [`Flow`].
//!
//! What the spec does not allow is a violation, with the reason:
//! - a type the spec does not declare on the topic it came on;
//! - an event that no participant's progress notice accounts for within
//!   [`WatchOptions::grace`] (unless `@external`), or one a notice says a
//!   reaction emitted that it has no outcome for;
//! - an event after the instance settled that nothing seen after the
//!   settlement caused (a later command or `@external` event may reopen
//!   an instance; what follows from it is allowed);
//! - two alternatives of one `|` from one firing;
//! - an event whose cause (its causation id) triggers no reaction that
//!   may emit it.
//!
//! An instance whose first event seen is not a command began before the
//! monitor could see it: it is `partial`, and never violated (what came
//! before is unknown).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use choreo_runtime::progress::{CompletionOutcome, ProgressNotice, TerminalKind};
use choreo_runtime::Envelope;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::flow::{Flow, ReactionIndex};

/// How the watch judges time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// An unsettled instance with no progress for this long is stuck.
    pub stuck_after: Duration,
    /// How long an emitted event may wait for the progress notice that
    /// accounts for it (notices follow the events they report).
    pub grace: Duration,
    /// Settled instances kept for looking up, newest first; older ones
    /// are forgotten and only counted.
    pub keep_settled: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            stuck_after: Duration::from_secs(30),
            grace: Duration::from_secs(10),
            keep_settled: 10_000,
        }
    }
}

/// What an instance is, as of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Under way.
    Running,
    /// Settled by a `@terminal` event.
    Succeeded,
    /// Settled by a `@terminal(failure)` event.
    Failed,
    /// Not settled within its command's `@deadline`, or no progress for
    /// [`WatchOptions::stuck_after`].
    Stuck,
    /// Something happened that the spec does not allow.
    Violated,
    /// An event of it was dead-lettered.
    DeadLettered,
    /// Begun before the monitor could see it.
    Partial,
}

impl InstanceState {
    /// Every state, in the order of [`Summary::instances`].
    pub const ALL: [InstanceState; 7] = [
        InstanceState::Running,
        InstanceState::Succeeded,
        InstanceState::Failed,
        InstanceState::Stuck,
        InstanceState::Violated,
        InstanceState::DeadLettered,
        InstanceState::Partial,
    ];

    /// Its name in the API (`dead_lettered`).
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Running => "running",
            InstanceState::Succeeded => "succeeded",
            InstanceState::Failed => "failed",
            InstanceState::Stuck => "stuck",
            InstanceState::Violated => "violated",
            InstanceState::DeadLettered => "dead_lettered",
            InstanceState::Partial => "partial",
        }
    }
}

impl std::str::FromStr for InstanceState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstanceState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = InstanceState::ALL.iter().map(|s| s.as_str()).collect();
                format!("no state `{s}`: the states are {}", names.join(", "))
            })
    }
}

/// Something the spec does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The offending event's id.
    pub event_id: String,
    /// Its wire type.
    pub event_type: String,
    /// What is wrong, in words.
    pub reason: String,
}

/// An event that was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The event's id.
    pub event_id: String,
    /// Its wire type.
    pub event_type: String,
    /// Why, as the runtime said.
    pub reason: String,
}

/// What an unsettled instance waits for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Waiting {
    /// The participant.
    pub participant: String,
    /// Its reaction.
    pub reaction: String,
    /// The events it has yet to handle (a pending reaction), or the
    /// events a half-filled join still lacks.
    pub events: Vec<String>,
    /// A join missing `events`, rather than a reaction yet to handle them.
    pub join: bool,
}

/// One event of an instance's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEvent {
    /// Its id.
    pub id: String,
    /// Its spec name (its wire type where the spec has none).
    pub name: String,
    /// When it was seen, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The participant whose reaction emitted it, by its progress notice.
    pub participant: Option<String>,
    /// That reaction's index in the spec's order (the diagram's `r<i>`).
    pub reaction: Option<usize>,
    /// Milliseconds since its cause was seen.
    pub latency_ms: Option<i64>,
}

/// One instance, as of a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceView {
    /// The key.
    pub key: String,
    /// Its state.
    pub state: InstanceState,
    /// Why it is in that state, for the states that need saying.
    pub reason: Option<String>,
    /// What happened, in the order seen.
    pub events: Vec<TimelineEvent>,
    /// What it waits for.
    pub waiting: Vec<Waiting>,
    /// What the spec does not allow.
    pub violations: Vec<Violation>,
    /// What was dead-lettered.
    pub dead_letters: Vec<DeadLetter>,
}

/// The counts of a whole deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Instances per state (every state named, zero included).
    pub instances: BTreeMap<&'static str, u64>,
    /// Events and commands seen, by spec name.
    pub events: BTreeMap<String, u64>,
    /// Every reaction of the spec, in its order, with what it did.
    pub reactions: Vec<ReactionStats>,
    /// Violations, by the spec name of the offending event (its wire type
    /// where the spec has none).
    pub violations: BTreeMap<String, u64>,
    /// Dead letters, by the spec name of the event dead-lettered.
    pub dead_letters: BTreeMap<String, u64>,
}

/// What one reaction did, over every instance seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReactionStats {
    /// The participant.
    pub participant: String,
    /// Its run-time name (as in progress notices).
    pub reaction: String,
    /// Its index in the spec's order of reactions (the diagram's `r<i>`).
    pub index: usize,
    /// Its trigger as the spec writes it: `OrderPlaced`, `A & B`, `A | B`.
    pub trigger: String,
    /// Events it reported done (a join: each arrival it stored too).
    pub handled: u64,
    /// Events it has yet to report, in unsettled instances; a half-filled
    /// join counts once per instance.
    pub waiting: u64,
    /// Events it gave up on.
    pub dead_lettered: u64,
    /// Instances stuck while waiting for it.
    pub stuck: u64,
    /// The median time from an event's publication to the notice that the
    /// reaction handled it, in milliseconds (none before the first).
    pub p50_ms: Option<f64>,
    /// The 99th percentile of the same.
    pub p99_ms: Option<f64>,
}

/// What a reaction did, kept across the instances forgotten.
struct ReactionCounters {
    handled: u64,
    dead_lettered: u64,
    /// Microseconds from an event's publication to the notice of its
    /// handling.
    latency: Histogram<u64>,
}

impl ReactionCounters {
    fn new() -> ReactionCounters {
        ReactionCounters {
            handled: 0,
            dead_lettered: 0,
            // Three significant digits, auto-resizing: a latency of any
            // size is recorded rather than dropped. `new` fails only for
            // more than five digits.
            latency: Histogram::new(3).expect("three significant digits are supported"),
        }
    }

    fn record(&mut self, latency_ms: i64) {
        let us = u64::try_from(latency_ms.max(0))
            .unwrap_or(0)
            .saturating_mul(1000);
        // `record` grows the histogram to fit; `saturating_record` would
        // clamp anything beyond its first range (2 ms) without a word. It
        // fails only when the histogram cannot grow, leaving it as it was.
        let _ = self.latency.record(us);
    }

    fn percentile(&self, q: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q) as f64 / 1000.0)
    }
}

struct Event {
    id: String,
    ty: String,
    at_ms: i64,
    cause: Option<String>,
    by: Option<ReactionIndex>,
    /// Emitted by a participant in reaction to another event: a progress
    /// notice must account for it, and its cause must be seen before the
    /// instance can be settled. Not a command, not `@external`, and not
    /// already a violation for its type.
    emitted: bool,
    /// Seen after the instance settled: its cause must be something seen
    /// after the settlement too (judged when its cause is in, as one
    /// subscription to many topics keeps no order across them).
    late: bool,
}

#[derive(Default)]
struct Instance {
    /// Whether any event or command of it was seen.
    seen: bool,
    /// Whether a command of it was seen.
    has_command: bool,
    started_ms: Option<i64>,
    deadline: Option<Duration>,
    last_progress_ms: i64,
    events: Vec<Event>,
    index: HashMap<String, usize>,
    /// Reactions yet to report an event done: (reaction, event id).
    pending: BTreeSet<(ReactionIndex, String)>,
    /// Completions reported, so that a notice delivered twice counts once.
    done: HashSet<(ReactionIndex, String)>,
    /// Completions reported before their event was seen, with the time
    /// of their notice.
    completed_early: HashMap<(ReactionIndex, String), i64>,
    /// Which reaction emitted an event, reported before it was seen.
    emitted_early: HashMap<String, ReactionIndex>,
    /// The trigger types a join has stored.
    join_arrived: HashMap<ReactionIndex, BTreeSet<String>>,
    /// The types each firing emitted: by reaction and trigger (a join:
    /// by reaction alone, as it fires once per instance).
    fired: HashMap<(ReactionIndex, String), Vec<String>>,
    outcome: Option<TerminalKind>,
    settled_ms: Option<i64>,
    violations: Vec<Violation>,
    dead_letters: Vec<DeadLetter>,
}

impl Instance {
    /// Settled, judged on what was seen, whatever order it came in (one
    /// subscription to many topics keeps no order across them): a
    /// terminal event and its start seen, no reaction pending, every event
    /// a notice announced seen, and every event's cause seen.
    fn settled(&self) -> bool {
        self.outcome.is_some()
            && self.has_command
            && self.pending.is_empty()
            && self.emitted_early.is_empty()
            && self
                .events
                .iter()
                .all(|e| !e.emitted || e.cause.as_ref().is_none_or(|c| self.index.contains_key(c)))
    }

    fn violate(&mut self, event_id: &str, event_type: &str, reason: String) {
        self.violations.push(Violation {
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            reason,
        });
    }

    /// Begun before the monitor could see it: events, but no command.
    fn partial(&self) -> bool {
        self.seen && !self.has_command
    }

    /// The violations found by looking at the whole instance: events no
    /// notice accounts for after `grace`, and causes that cannot emit
    /// what they caused (the two may be seen in either order).
    fn derived(&self, flow: &Flow, now_ms: i64, grace: Duration) -> Vec<Violation> {
        let mut out = self.unaccounted(flow, now_ms, grace);
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        for e in self.events.iter().filter(|e| e.emitted) {
            let cause = e
                .cause
                .as_ref()
                .and_then(|c| self.index.get(c))
                .and_then(|&i| self.events.get(i));
            // Seen after the settlement: caused by something after it too
            // (a later command or `@external` event, or what followed
            // from one), or the spec did not allow it. A cause not seen
            // yet may still come, within `grace`.
            if let (true, Some(settled)) = (e.late, self.settled_ms) {
                let allowed = match cause {
                    Some(c) => c.at_ms > settled,
                    None => now_ms.saturating_sub(e.at_ms) <= grace_ms,
                };
                if !allowed {
                    out.push(Violation {
                        event_id: e.id.clone(),
                        event_type: e.ty.clone(),
                        reason: format!(
                            "`{}` came after the instance settled, and nothing seen since caused it",
                            flow.name_of(&e.ty)
                        ),
                    });
                }
            }
            let Some(c) = cause else {
                continue;
            };
            if !flow.may_cause(&c.ty, &e.ty) {
                out.push(Violation {
                    event_id: e.id.clone(),
                    event_type: e.ty.clone(),
                    reason: format!(
                        "`{}` is caused by `{}`, which triggers no reaction that may emit it",
                        flow.name_of(&e.ty),
                        flow.name_of(&c.ty)
                    ),
                });
            }
        }
        out
    }

    /// Every violation as of `now_ms`; none for a partial instance.
    fn all_violations(&self, flow: &Flow, now_ms: i64, grace: Duration) -> Vec<Violation> {
        if self.partial() {
            return Vec::new();
        }
        let mut all = self.violations.clone();
        all.extend(self.derived(flow, now_ms, grace));
        all
    }

    /// Events no notice accounts for after `grace`, as violations.
    fn unaccounted(&self, flow: &Flow, now_ms: i64, grace: Duration) -> Vec<Violation> {
        let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        self.events
            .iter()
            .filter(|e| e.emitted && e.by.is_none())
            .filter(|e| now_ms.saturating_sub(e.at_ms) > grace)
            .map(|e| Violation {
                event_id: e.id.clone(),
                event_type: e.ty.clone(),
                reason: format!(
                    "no participant's progress notice accounts for `{}`: nobody is known to have emitted it",
                    flow.name_of(&e.ty)
                ),
            })
            .collect()
    }

    fn state(
        &self,
        flow: &Flow,
        options: &WatchOptions,
        now_ms: i64,
    ) -> (InstanceState, Option<String>) {
        if self.partial() {
            return (
                InstanceState::Partial,
                Some("its start was before the monitor could see it".into()),
            );
        }
        if let Some(v) = self
            .violations
            .first()
            .cloned()
            .or_else(|| self.derived(flow, now_ms, options.grace).into_iter().next())
        {
            return (InstanceState::Violated, Some(v.reason));
        }
        if let Some(d) = self.dead_letters.first() {
            return (InstanceState::DeadLettered, Some(d.reason.clone()));
        }
        if self.settled() {
            return match self.outcome {
                Some(TerminalKind::Failure) => (InstanceState::Failed, None),
                _ => (InstanceState::Succeeded, None),
            };
        }
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if let (Some(deadline), Some(started)) = (self.deadline, self.started_ms) {
            if now_ms.saturating_sub(started) > ms(deadline) {
                return (
                    InstanceState::Stuck,
                    Some(format!("not settled within its deadline of {deadline:?}")),
                );
            }
        }
        let idle = now_ms.saturating_sub(self.last_progress_ms);
        if idle > ms(options.stuck_after) {
            return (
                InstanceState::Stuck,
                Some(format!("no progress for {} s", idle / 1000)),
            );
        }
        (InstanceState::Running, None)
    }

    fn waiting(&self, flow: &Flow) -> Vec<Waiting> {
        let mut by_reaction: BTreeMap<ReactionIndex, Vec<String>> = BTreeMap::new();
        for (r, id) in &self.pending {
            let ty = self
                .index
                .get(id)
                .and_then(|&i| self.events.get(i))
                .map_or_else(String::new, |e| flow.name_of(&e.ty).to_owned());
            by_reaction.entry(*r).or_default().push(ty);
        }
        let mut out = Vec::new();
        for (r, events) in by_reaction {
            if let Some(info) = flow.reactions.get(r) {
                out.push(Waiting {
                    participant: info.participant.clone(),
                    reaction: info.name.clone(),
                    events,
                    join: false,
                });
            }
        }
        for (r, arrived) in &self.join_arrived {
            let Some(info) = flow.reactions.get(*r) else {
                continue;
            };
            let missing: Vec<String> = info
                .triggers
                .iter()
                .filter(|t| !arrived.contains(*t))
                .map(|t| flow.name_of(t).to_owned())
                .collect();
            if !arrived.is_empty() && !missing.is_empty() {
                out.push(Waiting {
                    participant: info.participant.clone(),
                    reaction: info.name.clone(),
                    events: missing,
                    join: true,
                });
            }
        }
        out.sort();
        out
    }
}

/// Every instance of one choreography.
pub struct Watch {
    flow: Flow,
    options: WatchOptions,
    instances: HashMap<String, Instance>,
    events: BTreeMap<String, u64>,
    /// Settled instances, oldest first, for forgetting beyond
    /// [`WatchOptions::keep_settled`].
    settled: VecDeque<String>,
    /// Instances forgotten, by their final state.
    forgotten: BTreeMap<InstanceState, u64>,
    /// The violations and dead letters of the instances forgotten, by
    /// event name.
    forgotten_violations: BTreeMap<String, u64>,
    forgotten_dead_letters: BTreeMap<String, u64>,
    /// Per reaction, in [`Flow::reactions`] order.
    stats: Vec<ReactionCounters>,
}

impl Watch {
    /// An empty watch of `flow`.
    pub fn new(flow: Flow, options: WatchOptions) -> Watch {
        let stats = (0..flow.reactions.len())
            .map(|_| ReactionCounters::new())
            .collect();
        Watch {
            flow,
            options,
            instances: HashMap::new(),
            events: BTreeMap::new(),
            settled: VecDeque::new(),
            forgotten: BTreeMap::new(),
            forgotten_violations: BTreeMap::new(),
            forgotten_dead_letters: BTreeMap::new(),
            stats,
        }
    }

    /// The flow watched.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// An event or command seen on `topic` (its wire type, without the
    /// deployment's prefix) at `at_ms` (milliseconds since the epoch).
    pub fn observe_event(&mut self, topic: &str, env: &Envelope, at_ms: i64) {
        let flow = &self.flow;
        let ty = env.ty();
        let id = env.id().to_string();
        let message = flow.messages.get(ty);
        let instance = self
            .instances
            .entry(env.correlation_id().to_owned())
            .or_default();
        if instance.index.contains_key(&id) {
            // A duplicate: delivery is at least once.
            return;
        }
        let command_or_external = message.is_some_and(|m| m.command || m.external);
        instance.seen = true;
        if let Some(m) = message.filter(|m| m.command) {
            if !instance.has_command {
                instance.has_command = true;
                instance.started_ms = Some(at_ms);
                instance.deadline = m.deadline;
            }
        }
        *self.events.entry(flow.name_of(ty).to_owned()).or_default() += 1;
        let cause = env.causation_id().map(ToString::to_string);
        let by = instance.emitted_early.remove(&id);
        instance.index.insert(id.clone(), instance.events.len());
        instance.events.push(Event {
            id: id.clone(),
            ty: ty.to_owned(),
            at_ms,
            cause: cause.clone(),
            by,
            emitted: !command_or_external,
            late: instance.settled_ms.is_some(),
        });
        instance.last_progress_ms = at_ms;
        let Some(message) = message.filter(|_| ty == topic) else {
            let reason = if message.is_some() {
                format!(
                    "`{}` came on the topic of `{}`",
                    flow.name_of(ty),
                    flow.name_of(topic)
                )
            } else {
                format!("the spec declares no type `{ty}` (seen on `{topic}`)")
            };
            instance.violate(&id, ty, reason);
            if let Some(e) = instance.events.last_mut() {
                e.emitted = false;
            }
            return;
        };
        for &r in flow.consumers_of(ty) {
            match instance.completed_early.remove(&(r, id.clone())) {
                Some(done_ms) => {
                    if let Some(stats) = self.stats.get_mut(r) {
                        stats.record(done_ms - at_ms);
                    }
                }
                None => {
                    instance.pending.insert((r, id.clone()));
                }
            }
        }
        if instance.outcome.is_none() {
            instance.outcome = message.terminal;
        }
        self.settle(env.correlation_id(), at_ms);
    }

    /// A progress notice seen at `at_ms`.
    pub fn observe_notice(&mut self, notice: &ProgressNotice, at_ms: i64) {
        let mut touched = Vec::new();
        for c in &notice.completions {
            let flow = &self.flow;
            let key = c.instance.to_string();
            let instance = self.instances.entry(key.clone()).or_default();
            let event_id = c.event_id.to_string();
            instance.last_progress_ms = at_ms;
            let Some(r) = flow.reaction(&notice.participant, &c.reaction) else {
                let reason = format!(
                    "participant `{}` reported reaction `{}`, which the spec does not have",
                    notice.participant, c.reaction
                );
                instance.violate(&event_id, &c.event_type, reason);
                touched.push(key);
                continue;
            };
            let info = &flow.reactions[r];
            // Notices are at least once: the same completion again counts
            // once, but what it says it emitted is still checked (a second
            // firing of one event may emit another alternative).
            if instance.done.insert((r, event_id.clone())) {
                let stats = &mut self.stats[r];
                if instance.pending.remove(&(r, event_id.clone())) {
                    let seen = instance
                        .index
                        .get(&event_id)
                        .and_then(|&i| instance.events.get(i));
                    if let Some(e) = seen {
                        stats.record(at_ms - e.at_ms);
                    }
                } else {
                    instance
                        .completed_early
                        .insert((r, event_id.clone()), at_ms);
                }
                match &c.outcome {
                    CompletionOutcome::DeadLettered { .. } => stats.dead_lettered += 1,
                    _ => stats.handled += 1,
                }
            }
            match &c.outcome {
                CompletionOutcome::JoinWaiting => {
                    instance
                        .join_arrived
                        .entry(r)
                        .or_default()
                        .insert(c.event_type.to_string());
                }
                CompletionOutcome::Handled => {
                    if info.join {
                        instance.join_arrived.remove(&r);
                    }
                    let firing = if info.join {
                        String::new()
                    } else {
                        event_id.clone()
                    };
                    let mut emitted_types = Vec::new();
                    for e in &c.emitted {
                        let (eid, ety) = (e.id.to_string(), e.ty.to_string());
                        if !info.may_emit(&ety) {
                            let reason = format!(
                                "`{}` emitted `{}`, which it has no outcome for",
                                info.describe(flow),
                                flow.name_of(&ety)
                            );
                            instance.violate(&eid, &ety, reason);
                        }
                        match instance
                            .index
                            .get(&eid)
                            .and_then(|&i| instance.events.get_mut(i))
                        {
                            Some(seen) => seen.by = Some(r),
                            None => {
                                instance.emitted_early.insert(eid, r);
                            }
                        }
                        emitted_types.push(ety);
                    }
                    let all = instance.fired.entry((r, firing)).or_default();
                    all.extend(emitted_types);
                    all.sort();
                    all.dedup();
                    let together: Vec<&str> = all.iter().map(String::as_str).collect();
                    if !info.allows_together(&together) {
                        let names: Vec<&str> = together.iter().map(|t| flow.name_of(t)).collect();
                        let reason = format!(
                            "`{}` emitted `{}` from one firing: alternatives of one `|`",
                            info.describe(flow),
                            names.join("` and `")
                        );
                        instance.violate(&event_id, &c.event_type, reason);
                    }
                }
                // Reported by the notice and by the dead-letter topic: once.
                CompletionOutcome::DeadLettered { reason }
                    if !instance.dead_letters.iter().any(|d| d.event_id == event_id) =>
                {
                    instance.dead_letters.push(DeadLetter {
                        event_id: event_id.clone(),
                        event_type: c.event_type.to_string(),
                        reason: format!("{}: {reason}", info.describe(flow)),
                    });
                }
                CompletionOutcome::DeadLettered { .. } => {}
            }
            touched.push(key);
        }
        for key in touched {
            self.settle(&key, at_ms);
        }
    }

    /// A dead letter seen at `at_ms` (an envelope from a `.dlq` topic).
    pub fn observe_dead_letter(&mut self, env: &Envelope, at_ms: i64) {
        let reason = env
            .extensions()
            .get(choreo_runtime::broker::DLQ_REASON)
            .cloned()
            .unwrap_or_else(|| "dead-lettered".into());
        let instance = self
            .instances
            .entry(env.correlation_id().to_owned())
            .or_default();
        let id = env.id().to_string();
        if instance.dead_letters.iter().any(|d| d.event_id == id) {
            return;
        }
        instance.last_progress_ms = at_ms;
        instance.dead_letters.push(DeadLetter {
            event_id: id,
            event_type: env.ty().to_owned(),
            reason,
        });
    }

    /// Notes when `key` settles, and forgets the oldest settled instances
    /// beyond [`WatchOptions::keep_settled`].
    fn settle(&mut self, key: &str, at_ms: i64) {
        let Some(instance) = self.instances.get_mut(key) else {
            return;
        };
        if instance.settled_ms.is_some() || !instance.settled() {
            return;
        }
        instance.settled_ms = Some(at_ms);
        self.settled.push_back(key.to_owned());
        while self.settled.len() > self.options.keep_settled {
            let Some(old) = self.settled.pop_front() else {
                break;
            };
            if let Some(gone) = self.instances.remove(&old) {
                let (state, _) = gone.state(&self.flow, &self.options, at_ms);
                *self.forgotten.entry(state).or_default() += 1;
                let flow = &self.flow;
                for v in gone.all_violations(flow, at_ms, self.options.grace) {
                    *self
                        .forgotten_violations
                        .entry(flow.name_of(&v.event_type).to_owned())
                        .or_default() += 1;
                }
                for d in &gone.dead_letters {
                    *self
                        .forgotten_dead_letters
                        .entry(flow.name_of(&d.event_type).to_owned())
                        .or_default() += 1;
                }
            }
        }
    }

    /// Instance `key` as of `now_ms`.
    pub fn instance(&self, key: &str, now_ms: i64) -> Option<InstanceView> {
        let i = self.instances.get(key)?;
        Some(self.view(key, i, now_ms))
    }

    fn view(&self, key: &str, i: &Instance, now_ms: i64) -> InstanceView {
        let flow = &self.flow;
        let (state, reason) = i.state(flow, &self.options, now_ms);
        let events = i
            .events
            .iter()
            .map(|e| TimelineEvent {
                id: e.id.clone(),
                name: flow.name_of(&e.ty).to_owned(),
                at_ms: e.at_ms,
                participant: e
                    .by
                    .and_then(|r| flow.reactions.get(r))
                    .map(|r| r.participant.clone()),
                reaction: e.by,
                latency_ms: e
                    .cause
                    .as_ref()
                    .and_then(|c| i.index.get(c))
                    .and_then(|&ci| i.events.get(ci))
                    .map(|c| e.at_ms - c.at_ms),
            })
            .collect();
        let violations = i.all_violations(flow, now_ms, self.options.grace);
        InstanceView {
            key: key.to_owned(),
            state,
            reason,
            events,
            waiting: if i.settled() {
                Vec::new()
            } else {
                i.waiting(flow)
            },
            violations,
            dead_letters: i.dead_letters.clone(),
        }
    }

    /// The instances in `state` (every one with `None`), the most recently
    /// active first, at most `limit`.
    pub fn instances(
        &self,
        state: Option<InstanceState>,
        limit: usize,
        now_ms: i64,
    ) -> Vec<InstanceView> {
        // The state of every instance, but a view (timeline and all) only
        // of those listed: the live feed asks for three lists twice a
        // second while the watch is locked.
        let mut found: Vec<(i64, &String, &Instance)> = self
            .instances
            .iter()
            .filter(|(_, i)| {
                state.is_none_or(|s| i.state(&self.flow, &self.options, now_ms).0 == s)
            })
            .map(|(k, i)| (i.last_progress_ms, k, i))
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        found
            .into_iter()
            .take(limit)
            .map(|(_, k, i)| self.view(k, i, now_ms))
            .collect()
    }

    /// The counts as of `now_ms`.
    pub fn summary(&self, now_ms: i64) -> Summary {
        let flow = &self.flow;
        let mut instances: BTreeMap<&'static str, u64> =
            InstanceState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let mut waiting = vec![0u64; flow.reactions.len()];
        let mut stuck = vec![0u64; flow.reactions.len()];
        let mut violations = self.forgotten_violations.clone();
        let mut dead_letters = self.forgotten_dead_letters.clone();
        for i in self.instances.values() {
            let (state, _) = i.state(flow, &self.options, now_ms);
            *instances.entry(state.as_str()).or_default() += 1;
            for v in i.all_violations(flow, now_ms, self.options.grace) {
                *violations
                    .entry(flow.name_of(&v.event_type).to_owned())
                    .or_default() += 1;
            }
            for d in &i.dead_letters {
                *dead_letters
                    .entry(flow.name_of(&d.event_type).to_owned())
                    .or_default() += 1;
            }
            if i.settled() {
                continue;
            }
            let mut waits_for: Vec<ReactionIndex> = Vec::new();
            for (r, _) in &i.pending {
                if let Some(n) = waiting.get_mut(*r) {
                    *n += 1;
                }
                waits_for.push(*r);
            }
            for (r, arrived) in &i.join_arrived {
                if !arrived.is_empty() {
                    if let Some(n) = waiting.get_mut(*r) {
                        *n += 1;
                    }
                    waits_for.push(*r);
                }
            }
            if state == InstanceState::Stuck {
                waits_for.sort_unstable();
                waits_for.dedup();
                for r in waits_for {
                    if let Some(n) = stuck.get_mut(r) {
                        *n += 1;
                    }
                }
            }
        }
        for (state, n) in &self.forgotten {
            *instances.entry(state.as_str()).or_default() += n;
        }
        let reactions = flow
            .reactions
            .iter()
            .zip(&self.stats)
            .enumerate()
            .map(|(index, (info, c))| ReactionStats {
                participant: info.participant.clone(),
                reaction: info.name.clone(),
                index,
                trigger: info.trigger(flow),
                handled: c.handled,
                waiting: waiting.get(index).copied().unwrap_or(0),
                dead_lettered: c.dead_lettered,
                stuck: stuck.get(index).copied().unwrap_or(0),
                p50_ms: c.percentile(0.5),
                p99_ms: c.percentile(0.99),
            })
            .collect();
        Summary {
            instances,
            events: self.events.clone(),
            reactions,
            violations,
            dead_letters,
        }
    }
}
