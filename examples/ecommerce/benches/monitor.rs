//! The monitor (`choreo-monitor`) behind the ecommerce example: how fast it
//! classifies, how far behind a live run it stays, and what it keeps in
//! memory per settled instance.
//!
//! 1. **Classifier rate, in process.** The example runs on a memory broker
//!    that retains everything (every participant, the tracker and the
//!    ingress in this process, `--orders` orders over HTTP, nothing else
//!    subscribed); its production rate (events, commands and progress
//!    notices published per second, from the first POST to the last order
//!    settled) is the baseline: what a monitor must keep up with. After the
//!    run an observer reads back every observation the monitor would take,
//!    as `choreo_monitor::follow` subscribes (every topic of the spec, their
//!    dead-letter topics and the progress notices, from the earliest
//!    message). The recording is replayed into fresh `Watch`es (best of
//!    `--runs`, interleaved) in the order of the envelopes' times (as a live
//!    monitor takes them): as the monitor takes them (a notice decoded from
//!    its in-process payload), with every notice decoded from JSON as on a
//!    wire broker, and the `Watch` alone (notices decoded beforehand); and
//!    in the order read back (topic after topic: a monitor started after
//!    the run). Then the cost of `summary()`, `instances()` and one
//!    snapshot of the page's live feed over every instance kept.
//! 2. **Lag on NATS** (skipped when nothing answers on 127.0.0.1:4222): the
//!    example in this process on NATS JetStream under a prefix of its own
//!    (`--nats-orders` orders), a monitor on its own connection started
//!    before the first order; `Monitor::lag()` against, in the same run, a
//!    bare observer of the same topics on a connection of its own that
//!    only notes when each observation arrives (the broker's own delay),
//!    the ingress's instance tracker (from an instance's last observation
//!    to the tracker reporting it settled), and the services' own handling
//!    latency as the monitor measures it (`Summary::reactions`).
//! 3. **Memory per settled instance kept**: live heap bytes (counted by
//!    `stats_alloc` around the system allocator) of `Watch`es fed the
//!    recording with `keep_settled` 0, 1,000, 5,000 and every instance,
//!    sampled every tenth of the recording.
//!
//! `cargo bench -p ecommerce --bench monitor [-- --orders N --nats-orders N --runs R]`

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used)]

use std::alloc::System as SystemAllocator;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use choreo_monitor::{Flow, Monitor, MonitorOptions, Watch, WatchOptions};
use choreo_runtime::broker::{
    dead_letter_topic, follow, ObserveOptions, Settlement, SharedBroker, StartPosition,
    DEAD_LETTER_SUFFIX,
};
use choreo_runtime::progress::ProgressNotice;
use choreo_runtime::service::Topics;
use choreo_runtime::{Envelope, MemoryBroker, MemoryOptions};
use ecommerce::{DataOptions, Role, System};
use example_support::monitor::{flow, settled};
use example_support::testing::{broker_available, delete_nats_stream, unique_prefix, NATS_URL};
use example_support::Deployment;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::sync::watch as signal;

/// Every allocation of the bench is counted: the memory part reads the
/// live heap around a `Watch`.
#[global_allocator]
static GLOBAL: &StatsAlloc<SystemAllocator> = &INSTRUMENTED_SYSTEM;

const CONCURRENCY: usize = 64;
const PREFIX: &str = "shop.";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn data(orders: usize) -> DataOptions {
    // The proportions of the orders bench: ten orders per customer, twenty
    // per product.
    DataOptions {
        seed: 8,
        users: (orders as u64 / 10).max(1),
        products: (orders as u64 / 20).max(1),
    }
}

fn deployment(broker: &str, prefix: &str) -> Deployment {
    Deployment {
        broker: broker.into(),
        prefix: prefix.into(),
        ..Deployment::default()
    }
}

/// The topics the monitor subscribes to, in its order
/// (`choreo_monitor::follow`): per type its dead letters and itself, then
/// the progress notices.
fn monitored_topics(flow: &Flow, topics: &Topics) -> (Vec<String>, String) {
    let mut names: Vec<&String> = flow.messages.keys().collect();
    names.sort();
    let mut all = Vec::new();
    for ty in names {
        let topic = topics.for_type(ty);
        all.push(dead_letter_topic(&topic));
        all.push(topic);
    }
    let progress = topics.progress(&flow.choreography);
    all.push(progress.clone());
    (all, progress)
}

/// What an observer received, in order: (topic, envelope).
type Recorded = Arc<Mutex<Vec<(String, Envelope)>>>;

/// An observer of every monitored topic from the earliest message,
/// recording what it receives until `stop`.
async fn record(
    broker: &SharedBroker,
    topics: Vec<String>,
) -> (Recorded, signal::Sender<bool>, tokio::task::JoinHandle<()>) {
    let mut o = ObserveOptions::new(topics);
    o.start = StartPosition::Earliest;
    o.max_in_flight = 1024;
    let sub = broker.observe(o).await.unwrap();
    let recorded: Recorded = Arc::default();
    let into = recorded.clone();
    let (stop, stopped) = signal::channel(false);
    let task = tokio::spawn(follow(sub, stopped, "recorder", 1024, move |deliveries| {
        let mut all = into.lock().unwrap();
        deliveries
            .into_iter()
            .map(|d| {
                all.push((d.topic().to_string(), d.envelope().clone()));
                (d, Settlement::Ack)
            })
            .collect()
    }));
    (recorded, stop, task)
}

/// Waits until `recorded` has not grown for half a second.
async fn quiet(recorded: &Recorded) {
    let mut last = usize::MAX;
    loop {
        let n = recorded.lock().unwrap().len();
        if n == last {
            return;
        }
        last = n;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One observation into the watch by the topic it came on, as
/// `choreo_monitor::follow` does it.
fn observe(watch: &mut Watch, progress: &str, topic: &str, env: &Envelope) {
    let at = env.time().as_millisecond();
    if topic == progress {
        if let Ok(notice) = env.decode::<ProgressNotice>() {
            watch.observe_notice(&notice, at);
        }
        return;
    }
    let topic = topic.strip_prefix(PREFIX).unwrap_or(topic);
    if topic.ends_with(DEAD_LETTER_SUFFIX) {
        watch.observe_dead_letter(env, at);
    } else {
        watch.observe_event(topic, env, at);
    }
}

/// An observation ready for the watch: its notice decoded beforehand.
enum Ready {
    Event(String, Envelope, i64),
    DeadLetter(Envelope, i64),
    Notice(ProgressNotice, i64),
}

fn feed(watch: &mut Watch, r: &Ready) {
    match r {
        Ready::Event(topic, env, at) => watch.observe_event(topic, env, *at),
        Ready::DeadLetter(env, at) => watch.observe_dead_letter(env, *at),
        Ready::Notice(n, at) => watch.observe_notice(n, *at),
    }
}

/// A recorded run.
struct Run {
    /// In the order of their envelopes' times: as a live monitor takes
    /// them.
    observations: Vec<(String, Envelope)>,
    /// As a monitor started after the run reads them from the broker's
    /// retention (topic after topic).
    afterwards: Vec<(String, Envelope)>,
    progress: String,
    orders: usize,
    elapsed: Duration,
    events: usize,
    notices: usize,
    completions: usize,
    dead_letters: usize,
    instances: usize,
    last_ms: i64,
}

/// The example on a memory broker that retains everything, then what it
/// published read back.
async fn recorded_run(flow: &Flow, orders: usize) -> Run {
    let broker: SharedBroker = Arc::new(MemoryBroker::with_options(MemoryOptions {
        retained_per_topic: usize::MAX / 2,
        ..MemoryOptions::default()
    }));
    let (topics, progress) = monitored_topics(flow, &Topics::new(PREFIX));
    let d = deployment("memory://", PREFIX);
    let system = System::start_on(broker.clone(), &d, data(orders), Role::Everything)
        .await
        .unwrap();
    let (summary, _) = system
        .drive(orders, CONCURRENCY, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(summary.complete(), "{summary}");
    // A monitor started now: the broker's retention, topic after topic.
    let (later, stop, task) = record(&broker, topics).await;
    quiet(&later).await;
    let _ = stop.send(true);
    task.await.unwrap();
    system.stop().await.unwrap();
    let afterwards = std::mem::take(&mut *later.lock().unwrap());
    let mut observations = afterwards.clone();
    // Stable: what was stamped in the same microsecond keeps the order of
    // its topic.
    observations.sort_by_key(|(_, e)| e.time().as_microsecond());
    let (mut events, mut notices, mut completions, mut dead_letters) = (0, 0, 0, 0);
    let mut keys = HashSet::new();
    for (topic, env) in &observations {
        if *topic == progress {
            notices += 1;
            completions += env.decode::<ProgressNotice>().unwrap().completions.len();
        } else if topic.ends_with(DEAD_LETTER_SUFFIX) {
            dead_letters += 1;
        } else {
            events += 1;
            keys.insert(env.correlation_id().to_owned());
        }
    }
    let last_ms = observations
        .last()
        .map_or(0, |(_, e)| e.time().as_millisecond());
    Run {
        observations,
        afterwards,
        progress,
        orders,
        elapsed: summary.elapsed,
        events,
        notices,
        completions,
        dead_letters,
        instances: keys.len(),
        last_ms,
    }
}

fn options(keep_settled: usize) -> WatchOptions {
    WatchOptions {
        keep_settled,
        ..WatchOptions::default()
    }
}

/// Replays `observations` as the monitor takes them; the time it took.
fn replay(flow: &Flow, run: &Run, observations: &[(String, Envelope)]) -> (Duration, Watch) {
    let mut watch = Watch::new(flow.clone(), WatchOptions::default());
    let started = Instant::now();
    for (topic, env) in observations {
        observe(&mut watch, &run.progress, topic, env);
    }
    (started.elapsed(), watch)
}

/// Replays with every notice decoded from its JSON, as on a wire broker.
fn replay_json(flow: &Flow, run: &Run, json: &[(String, Envelope, Option<Vec<u8>>)]) -> Duration {
    let mut watch = Watch::new(flow.clone(), WatchOptions::default());
    let started = Instant::now();
    for (topic, env, bytes) in json {
        match bytes {
            Some(b) => {
                let notice: ProgressNotice = serde_json::from_slice(b).unwrap();
                watch.observe_notice(&notice, env.time().as_millisecond());
            }
            None => observe(&mut watch, &run.progress, topic, env),
        }
    }
    let spent = started.elapsed();
    std::hint::black_box(&watch);
    spent
}

/// Feeds the watch alone, every notice decoded beforehand.
fn replay_ready(flow: &Flow, ready: &[Ready]) -> Duration {
    let mut watch = Watch::new(flow.clone(), WatchOptions::default());
    let started = Instant::now();
    for r in ready {
        feed(&mut watch, r);
    }
    let spent = started.elapsed();
    std::hint::black_box(&watch);
    spent
}

fn prepare(run: &Run) -> Vec<Ready> {
    run.observations
        .iter()
        .map(|(topic, env)| {
            let at = env.time().as_millisecond();
            if *topic == run.progress {
                Ready::Notice(env.decode::<ProgressNotice>().unwrap(), at)
            } else {
                let topic = topic.strip_prefix(PREFIX).unwrap_or(topic);
                if topic.ends_with(DEAD_LETTER_SUFFIX) {
                    Ready::DeadLetter(env.clone(), at)
                } else {
                    Ready::Event(topic.to_owned(), env.clone(), at)
                }
            }
        })
        .collect()
}

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn show_rate(label: &str, n: usize, instances: usize, times: &[Duration]) -> f64 {
    let rates: Vec<String> = times
        .iter()
        .map(|t| format!("{:.0}", per_second(n, *t)))
        .collect();
    let b = best(times);
    println!(
        "{label}: best {:.0} observations/s, {:.0} instances/s, {:.2} ms for {n} (runs: {})",
        per_second(n, b),
        per_second(instances, b),
        b.as_secs_f64() * 1e3,
        rates.join(", ")
    );
    per_second(n, b)
}

/// Times `f` `n` times: the fastest, in milliseconds.
fn fastest_ms(n: usize, mut f: impl FnMut()) -> f64 {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Every handling's latency in microseconds: from the time of the event
/// handled to the time of the notice that reports it (a join's arrival
/// stored counts as handled).
fn handling_us(observations: &[(String, Envelope)], progress: &str) -> Vec<i64> {
    let mut events: HashMap<String, i64> = HashMap::new();
    let mut done: Vec<(String, i64)> = Vec::new();
    for (topic, env) in observations {
        let at = env.time().as_microsecond();
        if topic == progress {
            if let Ok(n) = env.decode::<ProgressNotice>() {
                done.extend(n.completions.iter().map(|c| (c.event_id.to_string(), at)));
            }
        } else if !topic.ends_with(DEAD_LETTER_SUFFIX) {
            events.insert(env.id().to_string(), at);
        }
    }
    done.iter()
        .filter_map(|(id, at)| events.get(id).map(|e| at - e))
        .collect()
}

fn classify(flow: &Flow, run: &Run, runs: usize) {
    let produced = run.events + run.notices + run.dead_letters;
    let production = per_second(produced, run.elapsed);
    println!(
        "the run: {} orders settled in {:.3} s ({:.0}/s); published {} events and commands, \
         {} progress notices ({} completions), {} dead letters: {:.0} observations/s \
         (events {:.0}/s, notices {:.0}/s), {} instances",
        run.orders,
        run.elapsed.as_secs_f64(),
        per_second(run.orders, run.elapsed),
        run.events,
        run.notices,
        run.completions,
        run.dead_letters,
        production,
        per_second(run.events, run.elapsed),
        per_second(run.notices, run.elapsed),
        run.instances,
    );
    let ready = prepare(run);
    let json: Vec<(String, Envelope, Option<Vec<u8>>)> = run
        .observations
        .iter()
        .map(|(t, e)| {
            let bytes = (*t == run.progress).then(|| e.payload().to_json().unwrap().to_vec());
            (t.clone(), e.clone(), bytes)
        })
        .collect();
    let n = run.observations.len();
    let (mut monitor, mut wire, mut alone, mut later) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut kept, mut kept_later) = (None, None);
    for _ in 0..runs {
        // Interleaved, so that a change in the machine's load weighs on
        // all alike.
        let (t, w) = replay(flow, run, &run.observations);
        monitor.push(t);
        kept = Some(w);
        wire.push(replay_json(flow, run, &json));
        alone.push(replay_ready(flow, &ready));
        let (t, w) = replay(flow, run, &run.afterwards);
        later.push(t);
        kept_later = Some(w);
    }
    let rate = show_rate(
        "replay in time order, as the monitor takes it (notices decoded in process)",
        n,
        run.instances,
        &monitor,
    );
    let wire_rate = show_rate(
        "replay, every notice decoded from JSON (as on a wire broker)",
        n,
        run.instances,
        &wire,
    );
    show_rate(
        "the Watch alone (notices decoded beforehand)",
        n,
        run.instances,
        &alone,
    );
    show_rate(
        "replay topic after topic, as a monitor started after the run reads it",
        run.afterwards.len(),
        run.instances,
        &later,
    );
    println!(
        "classifier / production: {:.0} (notices from JSON: {:.0})",
        rate / production,
        wire_rate / production
    );
    // What the classification allocates (the counting allocator adds two
    // uncontended atomic additions to each allocation and each free).
    let region = Region::new(GLOBAL);
    let (_, w) = replay(flow, run, &run.observations);
    let c = region.change();
    drop(w);
    println!(
        "allocations per observation classified (time order): {:.1} (and {:.1} reallocations)",
        c.allocations as f64 / n as f64,
        c.reallocations as f64 / n as f64
    );
    let watch = kept.unwrap();
    for (order, w) in [
        ("time order", &watch),
        ("topic after topic", &kept_later.unwrap()),
    ] {
        let summary = w.summary(run.last_ms);
        let count = |s: &str| summary.instances.get(s).copied().unwrap_or(0);
        println!(
            "verdicts, {order}: succeeded {}, failed {}, violated {}, dead-lettered {}, \
             partial {}, running {}, stuck {}",
            count("succeeded"),
            count("failed"),
            count("violated"),
            count("dead_lettered"),
            count("partial"),
            count("running"),
            count("stuck")
        );
    }
    let reported: Vec<String> = watch
        .summary(run.last_ms)
        .reactions
        .iter()
        .map(|r| format!("{:?}/{:?}", r.p50_ms, r.p99_ms))
        .collect();
    let (p50, p99, max) = percentiles_ms(handling_us(&run.observations, &run.progress));
    println!(
        "handling latency (an event's time to its notice's), from the recording: p50 {p50:.2} ms, \
         p99 {p99:.2} ms, max {max:.2} ms; as the Watch's Summary::reactions reports it (p50/p99 \
         ms per reaction): {}",
        reported.join(" ")
    );
    let kept_n = run.instances;
    let s = fastest_ms(20, || {
        std::hint::black_box(watch.summary(run.last_ms));
    });
    let all = fastest_ms(20, || {
        std::hint::black_box(watch.instances(None, 50, run.last_ms));
    });
    let snapshot = fastest_ms(20, || {
        // What the page's live feed computes every 500 ms, under the
        // watch's lock.
        std::hint::black_box(watch.summary(run.last_ms));
        for state in ["stuck", "violated", "dead_lettered"] {
            std::hint::black_box(watch.instances(state.parse().ok(), 50, run.last_ms));
        }
    });
    println!(
        "over {kept_n} instances kept: summary() {s:.2} ms ({:.2} µs per instance), \
         instances(all, 50) {all:.2} ms, one live-feed snapshot (summary + 3 lists of 50) \
         {snapshot:.2} ms ({:.2} µs per instance)",
        s * 1e3 / kept_n as f64,
        snapshot * 1e3 / kept_n as f64,
    );
}

/// Microseconds since the Unix epoch, now.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A replica of the monitor's intake (`choreo_monitor::follow`): a
/// `Watch` fed from an observer of its own, which notes for every
/// observation its delay on arrival (µs from its envelope's time to the
/// moment its batch was taken in: `Monitor::lag`'s measure) and once
/// classified, and keeps what it saw for the baselines.
struct Replica {
    watch: Watch,
    arrival_us: Vec<i64>,
    classified_us: Vec<i64>,
    /// Per instance, the time of its last observation (an event of it, or
    /// a notice with a completion of it).
    last_us: HashMap<String, i64>,
    seen: Vec<(String, Envelope)>,
}

async fn replica(
    flow: &Flow,
    broker: &SharedBroker,
    prefix: String,
    topics: Vec<String>,
    progress: String,
) -> (
    Arc<Mutex<Replica>>,
    signal::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let mut o = ObserveOptions::new(topics);
    o.start = StartPosition::Earliest;
    o.max_in_flight = 1024;
    let sub = broker.observe(o).await.unwrap();
    let replica = Arc::new(Mutex::new(Replica {
        watch: Watch::new(flow.clone(), WatchOptions::default()),
        arrival_us: Vec::new(),
        classified_us: Vec::new(),
        last_us: HashMap::new(),
        seen: Vec::new(),
    }));
    let into = replica.clone();
    let (stop, stopped) = signal::channel(false);
    let task = tokio::spawn(follow(sub, stopped, "replica", 1024, move |deliveries| {
        let mut r = into.lock().unwrap();
        let arrived = now_us();
        deliveries
            .into_iter()
            .map(|d| {
                let env = d.envelope();
                let topic = d.topic().as_str();
                let (at, at_ms) = (env.time().as_microsecond(), env.time().as_millisecond());
                let notice = if topic == progress {
                    env.decode::<ProgressNotice>().ok()
                } else {
                    None
                };
                if let Some(n) = &notice {
                    r.watch.observe_notice(n, at_ms);
                } else if topic != progress {
                    let t = topic.strip_prefix(prefix.as_str()).unwrap_or(topic);
                    if t.ends_with(DEAD_LETTER_SUFFIX) {
                        r.watch.observe_dead_letter(env, at_ms);
                    } else {
                        r.watch.observe_event(t, env, at_ms);
                    }
                }
                let classified = now_us();
                r.arrival_us.push(arrived - at);
                r.classified_us.push(classified - at);
                let keys: Vec<String> = match &notice {
                    Some(n) => n
                        .completions
                        .iter()
                        .map(|c| c.instance.to_string())
                        .collect(),
                    None => vec![env.correlation_id().to_owned()],
                };
                for k in keys {
                    let last = r.last_us.entry(k).or_default();
                    *last = (*last).max(at);
                }
                r.seen.push((topic.to_owned(), env.clone()));
                (d, Settlement::Ack)
            })
            .collect()
    }));
    (replica, stop, task)
}

/// p50, p99 and max of microseconds, in milliseconds.
fn percentiles_ms(mut us: Vec<i64>) -> (f64, f64, f64) {
    if us.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    us.sort_unstable();
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    (at(0.5), at(0.99), at(1.0))
}

/// Lag behind the example on NATS.
async fn nats_lag(flow: &Flow, orders: usize) {
    if !broker_available(NATS_URL) {
        println!("NATS: skipped (nothing answers on {NATS_URL})");
        return;
    }
    let prefix = unique_prefix();
    let monitor_broker = choreo_runtime::connect(NATS_URL).await.unwrap();
    let monitor = Monitor::start(
        flow.clone(),
        monitor_broker,
        MonitorOptions {
            topics: Topics::new(prefix.clone()),
            start: StartPosition::Earliest,
            watch: WatchOptions::default(),
        },
    )
    .await
    .unwrap();
    let monitor = Arc::new(monitor);
    // The real monitor's lag of its latest observation, every 10 ms.
    let sampled: Arc<Mutex<Vec<f64>>> = Arc::default();
    let (stop_sampler, mut sampler_stopped) = signal::channel(false);
    let sampler = {
        let (monitor, into) = (monitor.clone(), sampled.clone());
        tokio::spawn(async move {
            let mut last_observed = 0;
            loop {
                tokio::select! {
                    _ = sampler_stopped.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
                let lag = monitor.lag();
                // Only when something new came in since the last sample.
                if lag.observed > last_observed {
                    last_observed = lag.observed;
                    into.lock().unwrap().push(lag.last_ms);
                }
            }
        })
    };
    let replica_broker = choreo_runtime::connect(NATS_URL).await.unwrap();
    let (topics, progress) = monitored_topics(flow, &Topics::new(prefix.clone()));
    let (replica, stop_replica, replica_task) = replica(
        flow,
        &replica_broker,
        prefix.clone(),
        topics,
        progress.clone(),
    )
    .await;
    let d = deployment(NATS_URL, &prefix);
    let system = System::start(&d, data(orders), Role::Everything)
        .await
        .unwrap();
    // When the ingress's tracker reports each instance settled.
    let mut settled_rx = system.tracker().unwrap().settled();
    let tracker_settled: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let into = tracker_settled.clone();
    let listener = tokio::spawn(async move {
        while let Some(p) = settled_rx.recv().await {
            let now = now_us();
            into.lock().unwrap().push((p.key.to_string(), now));
        }
    });
    let (summary, _) = system
        .drive(orders, CONCURRENCY, Duration::from_secs(600))
        .await
        .unwrap();
    let tracker_done = Instant::now();
    let seen = settled(&monitor, orders as u64, Duration::from_secs(60)).await;
    let caught_up = tracker_done.elapsed();
    let lag = monitor.lag();
    assert!(summary.complete(), "{summary}");
    let _ = stop_sampler.send(true);
    sampler.await.unwrap();
    // The replica has had as long as the monitor to catch up; give it as
    // long again.
    tokio::time::sleep(caught_up + Duration::from_millis(200)).await;
    let _ = stop_replica.send(true);
    replica_task.await.unwrap();
    let Replica {
        watch,
        arrival_us,
        classified_us,
        last_us,
        seen: replica_seen,
    } = Arc::try_unwrap(replica).ok().unwrap().into_inner().unwrap();
    let replica_summary = watch.summary(choreo_monitor::follow::now_ms());
    let tracker_delays: Vec<i64> = tracker_settled
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(k, at)| last_us.get(k).map(|last| at - last))
        .collect();
    let tracker_n = tracker_delays.len();
    let count = |s: &str| seen.instances.get(s).copied().unwrap_or(0);
    println!(
        "NATS, everything in this process: {} orders settled in {:.2} s ({:.0}/s); \
         the monitor counted {} succeeded, {} failed, {} violated, {} dead-lettered, {} running \
         ({:.0} ms after the tracker); the replica {} succeeded, {} failed, {} violated",
        orders,
        summary.elapsed.as_secs_f64(),
        summary.per_second(),
        count("succeeded"),
        count("failed"),
        count("violated"),
        count("dead_lettered"),
        count("running"),
        caught_up.as_secs_f64() * 1e3,
        replica_summary.instances["succeeded"],
        replica_summary.instances["failed"],
        replica_summary.instances["violated"],
    );
    println!(
        "Monitor::lag() over {} observations: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lag.observed, lag.p50_ms, lag.p99_ms, lag.max_ms
    );
    let samples = sampled
        .lock()
        .unwrap()
        .iter()
        .map(|ms| (ms * 1e3) as i64)
        .collect::<Vec<_>>();
    let n = samples.len();
    let (p50, p99, max) = percentiles_ms(samples);
    println!(
        "the monitor's lag of its latest observation (Lag::last_ms), sampled every 10 ms ({n} \
         samples): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
    );
    let n = arrival_us.len();
    let (p50, p99, max) = percentiles_ms(arrival_us);
    println!(
        "a replica of the monitor's intake, over {n} observations: on arrival (Monitor::lag's \
         measure) p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
    );
    let (p50, p99, max) = percentiles_ms(classified_us);
    println!("  once classified: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms");
    let (p50, p99, max) = percentiles_ms(tracker_delays);
    println!(
        "baseline, the ingress's tracker, from an instance's last observation to its \
         settlement reported, over {tracker_n} instances: p50 {p50:.1} ms, p99 {p99:.1} ms, \
         max {max:.1} ms"
    );
    let handling = handling_us(&replica_seen, &progress);
    let n = handling.len();
    let (p50, p99, max) = percentiles_ms(handling);
    println!(
        "baseline, the services' handling latency (an event's time to its notice's), over {n} \
         handlings: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
    );
    let reported: Vec<String> = seen
        .reactions
        .iter()
        .map(|r| format!("{:?}/{:?}", r.p50_ms, r.p99_ms))
        .collect();
    println!(
        "  as the monitor's Summary::reactions reports it (p50/p99 ms per reaction): {}",
        reported.join(" ")
    );
    system.stop().await.unwrap();
    listener.abort();
    monitor.shutdown().await;
    delete_nats_stream(NATS_URL, &prefix).await;
}

/// Live heap bytes since `region` began. `stats_alloc` counts a realloc's
/// growth in `bytes_allocated` (its shrinking in `bytes_deallocated`) and
/// again in `bytes_reallocated`, so that one is not added: with it, a
/// dropped watch left megabytes "live".
fn live(region: &Region<'_, SystemAllocator>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64
}

/// The live heap of a watch fed `ready` with `keep` settled instances kept,
/// every tenth of the way: (instances settled so far, bytes).
fn heap_of(flow: &Flow, ready: &[Ready], keep: usize, last_ms: i64) -> (Vec<(u64, i64)>, i64) {
    let region = Region::new(GLOBAL);
    let mut watch = Watch::new(flow.clone(), options(keep));
    let mut samples = Vec::new();
    let step = ready.len().div_ceil(10).max(1);
    for (i, r) in ready.iter().enumerate() {
        feed(&mut watch, r);
        if (i + 1) % step == 0 || i + 1 == ready.len() {
            let bytes = live(&region);
            let s = watch.summary(last_ms);
            let done = ["succeeded", "failed", "dead_lettered"]
                .iter()
                .map(|k| s.instances.get(k).copied().unwrap_or(0))
                .sum();
            samples.push((done, bytes));
        }
    }
    drop(watch);
    (samples, live(&region))
}

fn memory(flow: &Flow, run: &Run) {
    let ready = prepare(run);
    let keeps = [
        (0, "0"),
        (1_000, "1,000"),
        (5_000, "5,000"),
        (usize::MAX, "all"),
    ];
    let results: Vec<_> = keeps
        .iter()
        .map(|(k, _)| heap_of(flow, &ready, *k, run.last_ms))
        .collect();
    println!("live heap of the watch (KiB) as the recording is fed, by keep_settled:");
    println!(
        "  {:>8} {:>8} {}",
        "fed",
        "settled",
        keeps
            .iter()
            .map(|(_, l)| format!("{l:>10}"))
            .collect::<String>()
    );
    let rows = results.first().map_or(0, |(s, _)| s.len());
    for i in 0..rows {
        let settled = results[0].0[i].0;
        let cols: String = results
            .iter()
            .map(|(s, _)| format!("{:>10.0}", s[i].1 as f64 / 1024.0))
            .collect();
        println!("  {:>7}% {settled:>8} {cols}", (i + 1) * 10);
    }
    let last = |i: usize| results[i].0.last().map_or(0, |s| s.1);
    let settled = results[0].0.last().map_or(0, |s| s.0);
    let none = last(0);
    let per =
        |i: usize, kept: usize| (last(i) - none) as f64 / kept.min(settled as usize).max(1) as f64;
    // Bounded: the most the heap held once more had settled than kept.
    let peak_after = |i: usize, keep: u64| {
        results[i]
            .0
            .iter()
            .filter(|(done, _)| *done > keep)
            .map(|s| s.1)
            .max()
            .unwrap_or(0)
    };
    println!(
        "at the end ({settled} settled): per settled instance kept {:.0} bytes (all), \
         {:.0} (5,000), {:.0} (1,000); the largest heap once more had settled than kept: \
         {:.0} KiB (keep 1,000), {:.0} KiB (keep 5,000), against {:.0} and {:.0} KiB at the end; \
         after the watches are dropped: {} bytes",
        per(3, usize::MAX),
        per(2, 5_000),
        per(1, 1_000),
        peak_after(1, 1_000) as f64 / 1024.0,
        peak_after(2, 5_000) as f64 / 1024.0,
        last(1) as f64 / 1024.0,
        last(2) as f64 / 1024.0,
        results
            .iter()
            .map(|r| r.1.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
}

fn main() {
    let orders = arg("--orders", 10_000);
    let nats_orders = arg("--nats-orders", 2_000);
    let runs = arg("--runs", 5).max(1);
    println!(
        "monitor behind ecommerce: {orders} orders recorded (memory broker), {nats_orders} on NATS, \
         {CONCURRENCY} in flight, best of {runs}, {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let flow = flow(ecommerce::SPEC_NAME, ecommerce::SPEC).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = rt.block_on(recorded_run(&flow, orders));
    classify(&flow, &run, runs);
    rt.block_on(nats_lag(&flow, nats_orders));
    // No other thread allocates while the heap is counted.
    drop(rt);
    memory(&flow, &run);
}
