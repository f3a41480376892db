//! The faults of a campaign in flight: injected from the seeded schedule,
//! ended when due, and watched until they show that they bit and that
//! what they hit recovered.

use std::time::{Duration, Instant};

use crate::duplicates::Duplicator;
use crate::faults::{Fault, NetFault, Schedule};
use crate::fleet::{Counters, Fleet, Snapshot};
use crate::net::{Condition, Proxy};
use crate::report::{Injected, Proof};
use crate::servers::{cluster_whole, stream_leader, BrokerKind, Servers};

/// What the faults act on.
pub(super) struct Stage<'a> {
    /// The participant processes.
    pub fleet: &'a mut Fleet,
    /// The broker servers.
    pub servers: &'a mut Servers,
    /// The proxies between the services and the servers.
    pub proxies: &'a [Proxy],
    /// The outside producer of late copies, when duplicates are chosen.
    pub duplicator: Option<&'a Duplicator>,
    /// The harness's runtime, for its calls to the servers.
    pub rt: &'a tokio::runtime::Runtime,
    /// Which servers.
    pub broker: BrokerKind,
    /// The deployment's prefix (its stream's name).
    pub prefix: &'a str,
    /// What went wrong, for the report.
    pub problems: &'a mut Vec<String>,
}

/// Something to do later.
enum Later {
    Restart(usize),
    Resume(usize),
    ServerUp(usize),
    NetClear,
}

/// Reads the counter that proves a fault bit.
type Counter = fn(&Counters) -> u64;

/// A fault whose effect is still being looked for.
struct Watching {
    entry: usize,
    since: Instant,
    /// Participant whose counters tell (`None`: all of them).
    participant: Option<&'static str>,
    handled: u64,
    /// The counter that proves the fault bit, and its value before.
    proof: Option<(Counter, u64)>,
    /// Recovery is measured only after this (the fault's end).
    ended: Option<Instant>,
    until: Instant,
}

impl Watching {
    /// Watches member `i`'s participant; gives it.
    fn on(&mut self, fleet: &Fleet, i: usize) -> &'static str {
        let p = fleet.participant(i);
        self.participant = Some(p);
        self.handled = fleet.total_of(p).handled;
        p
    }
}

/// How long a fault's effect is looked for after it was injected.
const WATCH_FOR: Duration = Duration::from_secs(60);

/// How long a kill or a pause looks for a process holding deliveries,
/// over a few of the processes' 200 ms reports, before it takes an idle
/// one: a fault that hits an idle process proves little.
const BUSY_WITHIN: Duration = Duration::from_millis(1500);

/// How soon a kind that could not be injected is tried again, and how
/// many times (a server is down for at most 4 s).
const AGAIN_AFTER: Duration = Duration::from_millis(500);
const AGAIN_TRIES: u32 = 20;

/// The longest a burst of duplicates may take: the loop that injects it
/// also ends the other faults (a server's restart among them) on time.
const DUPLICATES_WITHIN: Duration = Duration::from_secs(3);

/// The faults of one campaign.
pub(super) struct Injector {
    schedule: Schedule,
    started: Instant,
    /// The ack wait or the claim lease, whichever is longer: a pause
    /// outlasts it.
    lapse: Duration,
    next_fault: Instant,
    /// What is to be done, in order of time.
    later: Vec<(Instant, Later)>,
    watching: Vec<Watching>,
    timeline: Vec<Injected>,
    proof: Proof,
    /// The server killed, until it is up again (and, in a cluster, until
    /// the cluster is whole again: see [`Settling`]).
    server_down: Option<usize>,
    /// A cluster node started again, not yet caught up.
    settling: Option<Settling>,
    net_on: bool,
    /// No broker restart before this: a pause is proven when a sibling
    /// handles what the paused member held as a redelivery, after the
    /// ack wait, and a NATS server killed before that forgets the
    /// delivery counts, so the copy comes as a first delivery and the
    /// pause, though it bit, shows nothing.
    restart_gate: Instant,
    /// A broker restart put off by the gate, injected when it opens.
    restart_deferred: bool,
    /// The pause that closed the gate: it opens early once that bit.
    gate_pause: Option<usize>,
    /// A kind drawn that could not be injected then (a burst of
    /// duplicates while the server is down, a kill with every process
    /// down), tried again before the next draw: each kind of the
    /// schedule's first turn is injected, or a short campaign would miss
    /// it. With the tries left: one that never can is given up.
    again: Option<(Fault, u32)>,
}

/// How long a cluster node started again may take to catch up.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// A cluster node started again, until the cluster is whole.
struct Settling {
    /// When it was started again.
    since: Instant,
    /// When to look next.
    next_look: Instant,
}

impl Injector {
    /// Faults from `schedule`, the first after one of its gaps.
    pub(super) fn new(schedule: Schedule, lapse: Duration, started: Instant) -> Self {
        let mut schedule = schedule;
        let next_fault = Instant::now() + schedule.gap();
        Injector {
            schedule,
            started,
            lapse,
            next_fault,
            later: Vec::new(),
            watching: Vec::new(),
            timeline: Vec::new(),
            proof: Proof::default(),
            server_down: None,
            settling: None,
            net_on: false,
            restart_gate: started,
            restart_deferred: false,
            gate_pause: None,
            again: None,
        }
    }

    /// Has member `i` started again at `at`, as a supervisor would.
    pub(super) fn restart_at(&mut self, i: usize, at: Instant) {
        self.push_later(at, Later::Restart(i));
    }

    /// One tick: ends the faults that are due, looks at what those still
    /// watched did, and injects the next fault when its time has come.
    pub(super) fn tick(&mut self, stage: &mut Stage<'_>, now: Instant) {
        self.end_due(stage, now);
        self.look_at_settling(stage, now);
        self.watch(&stage.fleet.snapshot());
        if now >= self.next_fault {
            self.next_fault = now + self.schedule.gap();
            if let Some(e) = self.gate_pause {
                if self.timeline.get(e).is_some_and(|p| p.bit) {
                    self.restart_gate = now;
                    self.gate_pause = None;
                }
            }
            let open = now >= self.restart_gate;
            let kind = if self.restart_deferred && open {
                self.restart_deferred = false;
                Some(Fault::BrokerRestart)
            } else if let Some((kind, _)) = self.again {
                Some(kind)
            } else {
                let unproven = self.unproven();
                self.schedule.kind_preferring(&unproven)
            };
            let (kind, done) = match kind {
                // Put off, and another kind meanwhile (a second restart
                // drawn now goes with the one put off).
                Some(Fault::BrokerRestart) if !open => {
                    self.restart_deferred = true;
                    let unproven = self.unproven();
                    match self.schedule.kind_preferring(&unproven) {
                        Some(other) if other != Fault::BrokerRestart => {
                            (Some(other), self.inject(other, stage, now))
                        }
                        _ => (None, true),
                    }
                }
                Some(kind) => (Some(kind), self.inject(kind, stage, now)),
                None => (None, true),
            };
            self.again = match (done, kind, self.again) {
                (true, _, _) | (false, None, _) => None,
                (false, Some(k), Some((was, left))) if k == was => {
                    (left > 1).then_some((k, left - 1))
                }
                (false, Some(k), _) => Some((k, AGAIN_TRIES)),
            };
            if self.again.is_some() {
                self.next_fault = now + AGAIN_AFTER;
            }
        }
    }

    /// Ends every fault still on.
    pub(super) fn end_all(&mut self, stage: &mut Stage<'_>) {
        for (_, what) in std::mem::take(&mut self.later) {
            end(&what, stage);
        }
        self.settling = None;
        self.server_down = None;
    }

    /// Whether the cluster node started again has caught up (looked at
    /// twice a second, each look bounded like every step of the loop):
    /// then the next restart may come. One that has not within
    /// [`SETTLE_WITHIN`] is a problem of the campaign.
    fn look_at_settling(&mut self, stage: &mut Stage<'_>, now: Instant) {
        let Some(settling) = &mut self.settling else {
            return;
        };
        if now < settling.next_look {
            return;
        }
        settling.next_look = now + Duration::from_millis(500);
        let stream = choreo_runtime::broker::NatsBroker::stream_name(stage.prefix);
        let whole = stage.rt.block_on(async {
            let look = cluster_whole(stage.servers, &stream);
            tokio::time::timeout(Duration::from_secs(2), look)
                .await
                .unwrap_or(false)
        });
        let late = now.duration_since(settling.since) > SETTLE_WITHIN;
        if late && !whole {
            let node = self.server_down.map_or("?", |i| stage.servers.name(i));
            stage.problems.push(format!(
                "the cluster was not whole {SETTLE_WITHIN:?} after server {node} started again"
            ));
        }
        if whole || late {
            self.settling = None;
            self.server_down = None;
        }
    }

    /// Goes on looking, for at most `within`, for the proof of the faults
    /// still watched once the driver is done: the copies of what a
    /// process killed or paused late in the run held come again only
    /// after the ack wait, when the driver may have placed its last
    /// instance already.
    pub(super) fn watch_out(&mut self, fleet: &Fleet, within: Duration) {
        let until = Instant::now() + within;
        while Instant::now() < until {
            self.watch(&fleet.snapshot());
            let timeline = &self.timeline;
            let open = self
                .watching
                .iter()
                .any(|w| w.proof.is_some() && !timeline[w.entry].bit);
            if !open {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The faults as they happened, and the evidence that they bit.
    pub(super) fn into_parts(self) -> (Vec<Injected>, Proof) {
        (self.timeline, self.proof)
    }

    fn push_later(&mut self, at: Instant, what: Later) {
        let place = self.later.partition_point(|(t, _)| *t <= at);
        self.later.insert(place, (at, what));
    }

    fn end_due(&mut self, stage: &mut Stage<'_>, now: Instant) {
        let due = self.later.partition_point(|(t, _)| *t <= now);
        for (_, what) in self.later.drain(..due).collect::<Vec<_>>() {
            let ended = Instant::now();
            end(&what, stage);
            match what {
                // A cluster node counts as down until it has caught up:
                // killing the next leader before would take two of the
                // three nodes, which the replicas are not meant to
                // survive, and leave the cluster without a quorum.
                Later::ServerUp(_) if stage.broker == BrokerKind::NatsCluster => {
                    self.settling = Some(Settling {
                        since: now,
                        next_look: now,
                    });
                }
                Later::ServerUp(_) => self.server_down = None,
                Later::NetClear => self.net_on = false,
                _ => {}
            }
            for w in self.watching.iter_mut().filter(|w| w.ended.is_none()) {
                let hit = &self.timeline[w.entry];
                let ends = match (&what, hit.kind) {
                    (Later::Restart(i), Fault::Kill) | (Later::Resume(i), Fault::Pause) => {
                        hit.target == stage.fleet.label(*i)
                    }
                    (Later::ServerUp(_), Fault::BrokerRestart) | (Later::NetClear, Fault::Net) => {
                        true
                    }
                    _ => false,
                };
                if ends {
                    w.ended = Some(ended);
                }
            }
        }
    }

    /// Marks the faults that bit and the recoveries seen in `counters`;
    /// stops watching a fault once both are known, or after a while.
    fn watch(&mut self, counters: &Snapshot) {
        let timeline = &mut self.timeline;
        self.watching.retain(|w| {
            let c = match w.participant {
                Some(p) => counters.total_of(p),
                None => counters.total(),
            };
            let entry = &mut timeline[w.entry];
            if let Some((counter, before)) = w.proof {
                if counter(&c) > before {
                    entry.bit = true;
                }
            }
            if entry.recovered_ms.is_none() && w.ended.is_some() && c.handled > w.handled {
                entry.recovered_ms =
                    u64::try_from(Instant::now().duration_since(w.since).as_millis()).ok();
            }
            let done = entry.recovered_ms.is_some() && (entry.bit || w.proof.is_none());
            !done && Instant::now() < w.until
        });
    }

    /// The kinds injected so far none of whose faults has bitten yet
    /// (a broker restart put off counts as on its way).
    fn unproven(&self) -> Vec<Fault> {
        let mut kinds: Vec<Fault> = Vec::new();
        for e in &self.timeline {
            if !kinds.contains(&e.kind) {
                kinds.push(e.kind);
            }
        }
        kinds.retain(|k| {
            !self.timeline.iter().any(|e| e.kind == *k && e.bit)
                && (*k != Fault::BrokerRestart || !self.restart_deferred)
        });
        kinds
    }

    /// Injects a fault of `kind`; false when none can be now.
    fn inject(&mut self, kind: Fault, stage: &mut Stage<'_>, now: Instant) -> bool {
        let mut injected = Injected {
            at_ms: u64::try_from(now.duration_since(self.started).as_millis()).unwrap_or(0),
            kind,
            target: String::new(),
            detail: String::new(),
            recovered_ms: None,
            bit: false,
        };
        let mut watch = Watching {
            entry: self.timeline.len(),
            since: now,
            participant: None,
            handled: stage.fleet.total().handled,
            proof: None,
            ended: None,
            until: now + WATCH_FOR,
        };
        let done = match kind {
            Fault::Kill | Fault::Pause => match self.pick_process(stage.fleet) {
                Some(i) if kind == Fault::Kill => {
                    self.kill(i, stage.fleet, now, &mut injected, &mut watch);
                    true
                }
                Some(i) => {
                    self.pause(i, stage.fleet, now, &mut injected, &mut watch);
                    true
                }
                None => false,
            },
            Fault::BrokerRestart if self.server_down.is_none() => {
                self.restart_server(stage, now, &mut injected);
                true
            }
            Fault::Net if !self.net_on => {
                self.net(stage.proxies, now, &mut injected);
                true
            }
            // A producer cannot publish to a server that is down: nothing
            // would bite.
            Fault::Duplicates if self.server_down.is_none() => match stage.duplicator {
                Some(d) => {
                    self.duplicates(d, stage, &mut injected, &mut watch);
                    true
                }
                None => false,
            },
            _ => false,
        };
        if done {
            println!(
                "chaos: {:>7.1}s {:?} {}: {}",
                injected.at_ms as f64 / 1000.0,
                injected.kind,
                injected.target,
                injected.detail
            );
            self.timeline.push(injected);
            self.watching.push(watch);
        }
        done
    }

    /// A running process for a kill or a pause: one that holds deliveries
    /// when one does within [`BUSY_WITHIN`], and one with a running
    /// sibling when there is one. A fault whose work no other member can
    /// take over (its siblings paused or killed already) proves nothing
    /// about takeovers: it merely waits for the process to come back.
    fn pick_process(&mut self, fleet: &Fleet) -> Option<usize> {
        let running = |i: usize| fleet.alive(i) && !fleet.paused(i);
        let alive: Vec<usize> = (0..fleet.len()).filter(|i| running(*i)).collect();
        let with_sibling: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|i| {
                alive
                    .iter()
                    .any(|j| j != i && fleet.participant(*j) == fleet.participant(*i))
            })
            .collect();
        let alive = if with_sibling.is_empty() {
            alive
        } else {
            with_sibling
        };
        let until = Instant::now() + BUSY_WITHIN;
        let busy = loop {
            let counters = fleet.snapshot();
            let busy: Vec<usize> = alive
                .iter()
                .copied()
                .filter(|i| counters.current(*i).in_flight() > 0)
                .collect();
            if !busy.is_empty() || Instant::now() >= until {
                break busy;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let usable = if busy.is_empty() { alive } else { busy };
        (!usable.is_empty()).then(|| usable[self.schedule.pick(usable.len())])
    }

    fn kill(
        &mut self,
        i: usize,
        fleet: &mut Fleet,
        now: Instant,
        injected: &mut Injected,
        watch: &mut Watching,
    ) {
        let p = watch.on(fleet, i);
        let held = fleet.kill(i);
        let back = self.schedule.millis(300, 2500);
        self.push_later(now + back, Later::Restart(i));
        injected.target = fleet.label(i);
        injected.detail = format!("SIGKILL holding {held} deliveries; restarted after {back:?}");
        self.proof.kills += 1;
        self.proof.kills_in_flight += usize::from(held > 0);
        if held > 0 {
            // It bit once its deliveries come again and are taken over.
            watch.proof = Some((Counters::taken_over, fleet.total_of(p).taken_over()));
        }
    }

    fn pause(
        &mut self,
        i: usize,
        fleet: &mut Fleet,
        now: Instant,
        injected: &mut Injected,
        watch: &mut Watching,
    ) {
        let p = watch.on(fleet, i);
        watch.proof = Some((Counters::taken_over, fleet.total_of(p).taken_over()));
        let held = fleet.current(i).in_flight();
        let lapse = self.lapse;
        let pause = lapse + self.schedule.millis(1000, 3000);
        fleet.pause(i);
        self.push_later(now + pause, Later::Resume(i));
        // The copies of what it held come again after the ack wait (the
        // lapse); a sibling takes them a moment later.
        self.restart_gate = self.restart_gate.max(now + lapse + Duration::from_secs(2));
        self.gate_pause = Some(watch.entry);
        injected.target = fleet.label(i);
        injected.detail = format!(
            "SIGSTOP for {pause:?} (past the {lapse:?} ack wait and claim lease), holding {held} deliveries"
        );
        watch.until = now + pause + WATCH_FOR;
        self.proof.pauses += 1;
    }

    fn restart_server(&mut self, stage: &mut Stage<'_>, now: Instant, injected: &mut Injected) {
        let cluster = stage.broker == BrokerKind::NatsCluster;
        let node = if cluster {
            let stream = choreo_runtime::broker::NatsBroker::stream_name(stage.prefix);
            stage
                .rt
                // Bounded like every step of the loop that ends faults.
                .block_on(async {
                    let within = Duration::from_secs(3);
                    let leader = stream_leader(stage.servers, &stream);
                    tokio::time::timeout(within, leader).await.ok().flatten()
                })
                .unwrap_or_else(|| self.schedule.pick(stage.servers.len()))
        } else {
            0
        };
        let down = self.schedule.millis(1000, 4000);
        stage.servers.kill(node);
        self.server_down = Some(node);
        self.push_later(now + down, Later::ServerUp(node));
        injected.target = format!("server {}", stage.servers.name(node));
        let whose = if cluster {
            " of the stream's leader"
        } else {
            ""
        };
        injected.detail = format!("SIGKILL{whose}; started again after {down:?}");
        // Every process loses its connection: bitten.
        injected.bit = true;
        self.proof.broker_restarts += 1;
    }

    fn net(&mut self, proxies: &[Proxy], now: Instant, injected: &mut Injected) {
        let fault = self.schedule.net();
        let (condition, lasts) = match fault {
            NetFault::Latency(d) => (Condition::Latency(d), self.schedule.millis(3000, 6000)),
            NetFault::Reset => (Condition::Refusing, self.schedule.millis(500, 2500)),
            NetFault::Blackhole => (Condition::Blackhole, self.schedule.millis(1500, 4000)),
        };
        let before: u64 = proxies.iter().map(Proxy::connections).sum();
        proxies.iter().for_each(|p| p.set(condition));
        self.net_on = true;
        self.push_later(now + lasts, Later::NetClear);
        injected.target = "every connection to the broker".into();
        injected.detail = format!("{fault:?} for {lasts:?}");
        // Connections exist (the services are up): the fault is on their
        // path.
        injected.bit = before > 0;
        self.proof.net_faults += 1;
    }

    fn duplicates(
        &mut self,
        d: &Duplicator,
        stage: &Stage<'_>,
        injected: &mut Injected,
        watch: &mut Watching,
    ) {
        let want = self.schedule.count(20, 80);
        let sent = stage.rt.block_on(d.inject(want, DUPLICATES_WITHIN));
        watch.proof = Some((|c| c.duplicates, stage.fleet.total().duplicates));
        watch.ended = Some(Instant::now());
        injected.target = format!("{} events seen so far", d.observed());
        let how = match stage.broker {
            BrokerKind::Redis => "",
            _ => ", under fresh message ids",
        };
        injected.detail = format!("published {sent} events again{how}");
    }
}

/// Ends a fault: the process started again (unless it runs already), let
/// go on, the server started again, the network clear.
fn end(what: &Later, stage: &mut Stage<'_>) {
    match *what {
        Later::Restart(i) => {
            if !stage.fleet.alive(i) {
                if let Err(e) = stage.fleet.restart(i) {
                    let label = stage.fleet.label(i);
                    stage.problems.push(format!("restarting {label}: {e}"));
                }
            }
        }
        Later::Resume(i) => stage.fleet.resume(i),
        Later::ServerUp(i) => {
            if let Err(e) = stage.servers.restart(i) {
                let name = stage.servers.name(i);
                stage
                    .problems
                    .push(format!("restarting server {name}: {e}"));
            }
        }
        Later::NetClear => stage.proxies.iter().for_each(|p| p.set(Condition::Clear)),
    }
}
