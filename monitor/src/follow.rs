//! The monitor on a broker: a [`Watch`] fed by a subscription to every
//! topic of the spec, their dead-letter topics and the progress notices.
//!
//! It subscribes as a consumer group of its own, named anew at each start,
//! so that it takes nothing from the services' groups. Observations carry
//! the time in their envelope (when their publisher made them), so a
//! monitor started late and one that watched live tell the same story.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use choreo_runtime::broker::{
    dead_letter_topic, follow, BrokerError, Settlement, SharedBroker, StartPosition,
    SubscribeOptions, DEAD_LETTER_SUFFIX,
};
use choreo_runtime::progress::ProgressNotice;
use choreo_runtime::service::Topics;
use choreo_runtime::Envelope;
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

/// A running monitor.
pub struct Monitor {
    watch: Arc<Mutex<Watch>>,
    stop: signal::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock(w: &Mutex<Watch>) -> MutexGuard<'_, Watch> {
    w.lock().unwrap_or_else(|p| p.into_inner())
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
        let group = format!(
            "choreo-monitor-{}-{:016x}",
            flow.choreography,
            fastrand::u64(..)
        );
        let mut o = SubscribeOptions::new(group, subscribed);
        o.start = options.start;
        o.max_in_flight = 1024;
        let sub = broker.subscribe(o).await?;
        let prefix = topics.prefix().to_owned();
        let watch = Arc::new(Mutex::new(Watch::new(flow, options.watch)));
        let (stop, stopped) = signal::channel(false);
        let w = watch.clone();
        let task = tokio::spawn(follow(sub, stopped, "monitor", 1024, move |deliveries| {
            let mut watch = lock(&w);
            deliveries
                .into_iter()
                .map(|d| {
                    observe(&mut watch, &prefix, &progress, d.topic(), d.envelope());
                    (d, Settlement::Ack)
                })
                .collect()
        }));
        Ok(Monitor { watch, stop, task })
    }

    /// The counts, now.
    pub fn summary(&self) -> Summary {
        lock(&self.watch).summary(now_ms())
    }

    /// Instance `key`, now.
    pub fn instance(&self, key: &str) -> Option<InstanceView> {
        lock(&self.watch).instance(key, now_ms())
    }

    /// The instances in `state` (all with `None`), most recently active
    /// first, at most `limit`.
    pub fn instances(&self, state: Option<InstanceState>, limit: usize) -> Vec<InstanceView> {
        lock(&self.watch).instances(state, limit, now_ms())
    }

    /// Stops following.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
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
