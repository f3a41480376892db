//! An outside producer of late duplicates: it follows the deployment's
//! topics as an observer, keeps a sample of what was published, and on
//! cue publishes some of it again, in random order and long after the
//! first publish. On NATS each copy goes out under a fresh `Nats-Msg-Id`
//! (the event id unchanged), so that the stream's own deduplication does
//! not drop it and it really reaches the services; Redis (without
//! `?dedup=`) deduplicates nothing, and takes the copy as it is.

use choreo_runtime::sync::Recover;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use choreo_runtime::broker::{NatsBroker, ObserveOptions, StartPosition};
use choreo_runtime::envelope::json;
use choreo_runtime::{Envelope, SharedBroker};

/// How many published events the sample holds.
const SAMPLE: usize = 2000;

/// The producer.
pub struct Duplicator {
    sample: Arc<Mutex<Vec<(String, Envelope)>>>,
    seen: Arc<AtomicU64>,
    injected: AtomicU64,
    rng: Mutex<fastrand::Rng>,
    target: Target,
    task: tokio::task::JoinHandle<()>,
}

enum Target {
    Nats(NatsBroker),
    Other(SharedBroker),
}

impl Duplicator {
    /// Follows `topics` on the broker at `url` (reached directly, not
    /// through the campaign's proxies) from their start.
    pub async fn start(url: &str, topics: Vec<String>, seed: u64) -> Result<Duplicator, String> {
        let broker = choreo_runtime::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let target = if url.starts_with("nats") {
            Target::Nats(NatsBroker::connect(url).await.map_err(|e| e.to_string())?)
        } else {
            Target::Other(broker.clone())
        };
        let mut options = ObserveOptions::new(topics);
        options.start = StartPosition::Earliest;
        let mut sub = broker.observe(options).await.map_err(|e| e.to_string())?;
        let sample = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (sample, seen) = (sample.clone(), seen.clone());
            let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
            async move {
                // Reservoir sampling: every event published so far is
                // equally likely to be in the sample, old and new.
                loop {
                    let batch = match sub.next_batch(256).await {
                        Ok(Some(b)) => b,
                        Ok(None) => break,
                        // The server restarting: the observer picks up
                        // where it was once it is back.
                        Err(_) => {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let mut s = sample.locked();
                    for d in batch {
                        let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
                        let entry = (d.topic().to_string(), d.envelope().clone());
                        if s.len() < SAMPLE {
                            s.push(entry);
                        } else if let Some(slot) =
                            usize::try_from(rng.u64(0..n)).ok().filter(|i| *i < SAMPLE)
                        {
                            s[slot] = entry;
                        }
                    }
                }
            }
        });
        Ok(Duplicator {
            sample,
            seen,
            injected: AtomicU64::new(0),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            target,
            task,
        })
    }

    /// Publishes `count` events of the sample again, in random order, for
    /// at most `within`; how many went out (a broker down refuses some).
    ///
    /// The bound matters: the campaign's faults are injected and ended
    /// from one loop, and a publish to a server that is down waits for
    /// its acknowledgement until the client's request timeout. Eighty of
    /// them once held that loop for six minutes, and with it the restart
    /// of the server (docs/reliability.md, "What the campaigns found").
    pub async fn inject(&self, count: usize, within: std::time::Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        let picked: Vec<(String, Envelope)> = {
            let s = self.sample.locked();
            let mut rng = self.rng.locked();
            (0..count.min(s.len()))
                .filter_map(|_| s.get(rng.usize(0..s.len())).cloned())
                .collect()
        };
        let mut sent = 0;
        for (topic, env) in picked {
            let n = self.injected.load(Ordering::Relaxed);
            let ok = match &self.target {
                Target::Nats(b) => {
                    let Ok(payload) = json::encode(&env) else {
                        continue;
                    };
                    let msg = async_nats::jetstream::message::PublishMessage::build()
                        .payload(payload.into())
                        .header(
                            async_nats::header::NATS_MESSAGE_ID,
                            format!("{}/chaos/{n}", env.id()),
                        );
                    let publish = async {
                        match b.jetstream().send_publish(topic, msg).await {
                            Ok(ack) => ack.await.is_ok(),
                            Err(_) => false,
                        }
                    };
                    tokio::time::timeout_at(deadline, publish).await
                }
                Target::Other(b) => {
                    tokio::time::timeout_at(deadline, async {
                        b.publish(&topic, env).await.is_ok()
                    })
                    .await
                }
            };
            let Ok(ok) = ok else {
                break;
            };
            if ok {
                self.injected.fetch_add(1, Ordering::Relaxed);
                sent += 1;
            }
        }
        sent
    }

    /// Events published again so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Events observed so far.
    pub fn observed(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for Duplicator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
