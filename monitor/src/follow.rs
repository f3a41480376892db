//! The monitor on a broker: a [`Watch`] fed by a subscription to every
//! topic of the spec, their dead-letter topics and the progress notices.
//!
//! It reads as an observer, with no consumer group ([`Broker::observe`]:
//! an ordered consumer on NATS, `XREAD` on Redis), so that it takes
//! nothing from the services' groups, leaves nothing on the server, and
//! each start rebuilds from what the broker still holds. Observations
//! carry the time in their envelope (when their publisher made them), so a
//! monitor started late and one that watched live tell the same story.
//!
//! [`Broker::observe`]: choreo_runtime::broker::Broker::observe

use choreo_runtime::sync::Recover;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use choreo_runtime::broker::{
    dead_letter_topic, follow, BrokerError, ObserveOptions, Settlement, SharedBroker,
    StartPosition, DEAD_LETTER_SUFFIX,
};
use choreo_runtime::progress::ProgressNotice;
use choreo_runtime::service::Topics;
use choreo_runtime::Envelope;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch as signal;

use crate::flow::Flow;
use crate::watch::{InstanceState, InstanceView, Summary, Watch, WatchOptions};

/// How a monitor follows a deployment.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// The deployment's topics (its prefix).
    pub topics: Topics,
    /// Where its subscription starts: the oldest message the broker still
    /// holds (to rebuild what happened), or only what comes next.
    pub start: StartPosition,
    /// How it judges instances.
    pub watch: WatchOptions,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            topics: Topics::new(""),
            start: StartPosition::Earliest,
            watch: WatchOptions::default(),
        }
    }
}

/// A running monitor. Share it (`Arc<Monitor>`) between the tasks that
/// read it: every method takes `&self`.
pub struct Monitor {
    watch: Arc<Mutex<Watch>>,
    lag: Arc<Mutex<LagCounter>>,
    stop: signal::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How far behind the deployment the monitor is: from the time an
/// observation's publisher stamped on it to the moment the monitor took
/// it in (so it includes clock skew between machines).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lag {
    /// Observations taken in.
    pub observed: u64,
    /// The lag of the last one, in milliseconds.
    pub last_ms: f64,
    /// The median, in milliseconds (0 before the first).
    pub p50_ms: f64,
    /// The 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// The largest, in milliseconds.
    pub max_ms: f64,
}

struct LagCounter {
    last_us: u64,
    /// The latest publication time seen, in milliseconds since the epoch.
    latest_ms: i64,
    /// When the last batch was taken in.
    intake: Option<Instant>,
    /// Microseconds; auto-resizing, so no lag is dropped.
    all: Histogram<u64>,
}

/// Behind by more than this, the monitor is taking in a backlog...
const CATCHING_UP_LAG_US: u64 = 5_000_000;
/// ...as long as it took some in this recently (an idle monitor is up to
/// date, however old the last thing it saw).
const CATCHING_UP_IDLE: Duration = Duration::from_secs(1);

/// Microseconds since the Unix epoch, now.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock<T>(w: &Mutex<T>) -> MutexGuard<'_, T> {
    w.locked()
}

impl Monitor {
    /// Subscribes to `broker` and starts following the deployment of
    /// `flow`.
    pub async fn start(
        flow: Flow,
        broker: SharedBroker,
        options: MonitorOptions,
    ) -> Result<Monitor, BrokerError> {
        let topics = &options.topics;
        let mut names: Vec<String> = flow.messages.keys().cloned().collect();
        names.sort();
        let mut subscribed: Vec<String> = Vec::new();
        for ty in &names {
            let topic = topics.for_type(ty);
            subscribed.push(dead_letter_topic(&topic));
            subscribed.push(topic);
        }
        let progress = topics.progress(&flow.choreography);
        subscribed.push(progress.clone());
        let mut o = ObserveOptions::new(subscribed);
        o.start = options.start;
        o.max_in_flight = 1024;
        let sub = broker.observe(o).await?;
        let prefix = topics.prefix().to_owned();
        let watch = Arc::new(Mutex::new(Watch::new(flow, options.watch)));
        let lag = Arc::new(Mutex::new(LagCounter {
            last_us: 0,
            latest_ms: 0,
            intake: None,
            // `new` fails only for more than five significant digits.
            all: Histogram::new(3).expect("three significant digits are supported"),
        }));
        let (stop, stopped) = signal::channel(false);
        let (w, l) = (watch.clone(), lag.clone());
        let task = tokio::spawn(follow(sub, stopped, "monitor", 1024, move |deliveries| {
            let mut watch = lock(&w);
            let now_us = now_us();
            let mut lag = lock(&l);
            lag.intake = Some(Instant::now());
            deliveries
                .into_iter()
                .map(|d| {
                    let env = d.envelope();
                    observe(&mut watch, &prefix, &progress, d.topic(), env);
                    let behind = now_us.saturating_sub(env.time().as_microsecond());
                    let behind = u64::try_from(behind).unwrap_or(0);
                    lag.last_us = behind;
                    lag.latest_ms = lag.latest_ms.max(env.time().as_millisecond());
                    // `record` grows the histogram to fit (a lag of hours,
                    // on a rebuild); `saturating_record` would not, and
                    // would clamp silently. It fails only when the
                    // histogram cannot grow, which leaves it as it was.
                    let _ = lag.all.record(behind);
                    (d, Settlement::Ack)
                })
                .collect()
        }));
        Ok(Monitor {
            watch,
            lag,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// How far behind the deployment the monitor is.
    pub fn lag(&self) -> Lag {
        let lag = lock(&self.lag);
        let ms = |us: u64| us as f64 / 1000.0;
        let any = !lag.all.is_empty();
        Lag {
            observed: lag.all.len(),
            last_ms: ms(lag.last_us),
            p50_ms: if any {
                ms(lag.all.value_at_quantile(0.5))
            } else {
                0.0
            },
            p99_ms: if any {
                ms(lag.all.value_at_quantile(0.99))
            } else {
                0.0
            },
            max_ms: if any { ms(lag.all.max()) } else { 0.0 },
        }
    }

    /// The flow watched.
    pub fn flow(&self) -> Flow {
        lock(&self.watch).flow().clone()
    }

    /// The moment the watch judges time by. Live, that is now; while the
    /// monitor is still taking in a backlog (what it reads from `--since`
    /// back, far behind the clock), it is the latest publication time
    /// taken in, so that an event whose notice is still in the backlog is
    /// not judged unaccounted for, nor an instance stuck, in the meantime.
    fn judged_at(&self) -> i64 {
        let now = now_ms();
        let lag = lock(&self.lag);
        let busy = lag.intake.is_some_and(|t| t.elapsed() < CATCHING_UP_IDLE);
        if busy && lag.last_us > CATCHING_UP_LAG_US {
            lag.latest_ms.min(now)
        } else {
            now
        }
    }

    /// The counts, now.
    pub fn summary(&self) -> Summary {
        let at = self.judged_at();
        lock(&self.watch).summary(at)
    }

    /// Instance `key`, now.
    pub fn instance(&self, key: &str) -> Option<InstanceView> {
        let at = self.judged_at();
        lock(&self.watch).instance(key, at)
    }

    /// The instances in `state` (all with `None`), most recently active
    /// first, at most `limit`.
    pub fn instances(&self, state: Option<InstanceState>, limit: usize) -> Vec<InstanceView> {
        let at = self.judged_at();
        lock(&self.watch).instances(state, limit, at)
    }

    /// Stops following; what was seen stays readable. A second call
    /// returns at once.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// One delivery into the watch, by the topic it came on.
fn observe(watch: &mut Watch, prefix: &str, progress: &str, topic: &str, env: &Envelope) {
    let at = env.time().as_millisecond();
    if topic == progress {
        match env.decode::<ProgressNotice>() {
            Ok(notice) => watch.observe_notice(&notice, at),
            Err(e) => tracing::warn!(error = %e, "monitor: a progress notice that does not decode"),
        }
        return;
    }
    let topic = topic.strip_prefix(prefix).unwrap_or(topic);
    if topic.ends_with(DEAD_LETTER_SUFFIX) {
        watch.observe_dead_letter(env, at);
    } else {
        watch.observe_event(topic, env, at);
    }
}
