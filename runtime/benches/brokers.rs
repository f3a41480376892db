//! Events per second through publish → consume → ack on a real broker,
//! through the runtime's adapter against the broker's raw client doing the
//! same loop on the same server with messages of the same size.
//!
//! - NATS JetStream (127.0.0.1:4222): raw = async-nats publishing with
//!   acknowledgements awaited per batch, and a pull consumer's message
//!   stream acking each message; runtime = `NatsBroker::publish_batch`,
//!   `Subscription::next_batch`, `settle_all`.
//! - Redis Streams (127.0.0.1:6379): raw = pipelined `XADD`s, `XREADGROUP
//!   COUNT … BLOCK` on a connection of its own, one `XACK` per batch read;
//!   runtime = `RedisBroker` the same way, as it comes (no deduplication
//!   by the broker) and with its publish deduplication on (`?dedup=2m`).
//!
//! One producer task publishes in batches while one consumer task consumes
//! and acks; the time is from the first publish to the last ack.
//!
//! Run: `cargo bench -p choreo-runtime --features nats,redis --bench brokers`
//! (`CHOREO_BENCH_EVENTS`: messages per round, default 50000;
//! `CHOREO_BENCH_ONLY=<text>`: only the measurements whose name holds it,
//! e.g. `nats`, `redis runtime`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_of;

use async_nats::jetstream::{self, consumer, stream};
use choreo_runtime::broker::{
    settle_all, NatsBroker, NatsOptions, RedisBroker, RedisOptions, Settlement, SubscribeOptions,
};
use choreo_runtime::{Broker, Envelope, Message, SharedStr};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// Messages published per batch (and the consumers' batch size).
const BATCH: usize = 256;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderPlaced {
    order_id: u64,
    customer: String,
    note: String,
}
impl Message for OrderPlaced {
    const TYPE: &'static str = "Bench.OrderPlaced";
}

fn event(n: u64) -> Envelope {
    Envelope::of(
        format!("order-{n}"),
        OrderPlaced {
            order_id: n,
            customer: format!("customer-{}", n % 1000),
            note: "x".repeat(96),
        },
    )
    .source("bench/orders")
    .build()
}

/// The encoded size of one message: what the raw clients send too.
fn wire_size() -> usize {
    choreo_runtime::envelope::json::encode(&event(1))
        .unwrap()
        .len()
}

fn unique(name: &str) -> String {
    format!("{name}{:08x}", fastrand::u32(..))
}

async fn nats_raw(n: u64, payload: bytes::Bytes) -> Sample {
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let js = jetstream::new(client);
    let name = unique("benchraw");
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("c".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            filter_subject: format!("{name}.events"),
            max_ack_pending: -1,
            ..Default::default()
        })
        .await
        .unwrap();
    let subject = format!("{name}.events");
    let timer = Timer::start("nats-server");
    let cons = tokio::spawn(async move {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .messages()
            .await
            .unwrap();
        let mut got = 0;
        while got < n {
            let m = messages.next().await.unwrap().unwrap();
            m.ack().await.unwrap();
            got += 1;
        }
    });
    let (js2, subject2) = (js.clone(), subject.clone());
    let prod = tokio::spawn(async move {
        let mut sent = 0;
        while sent < n {
            let k = (n - sent).min(BATCH as u64);
            let mut acks = Vec::with_capacity(k as usize);
            for i in 0..k {
                let id = format!("raw-{}", sent + i);
                acks.push(
                    js2.send_publish(
                        subject2.clone(),
                        jetstream::message::PublishMessage::build()
                            .payload(payload.clone())
                            .message_id(id),
                    )
                    .await
                    .unwrap(),
                );
            }
            for a in acks {
                a.await.unwrap();
            }
            sent += k;
        }
    });
    prod.await.unwrap();
    cons.await.unwrap();
    let elapsed = timer.stop();
    js.delete_stream(&name).await.unwrap();
    elapsed
}

async fn nats_runtime(n: u64) -> Sample {
    let broker = NatsBroker::connect_with("nats://127.0.0.1:4222", NatsOptions::default())
        .await
        .unwrap();
    let prefix = unique("benchrt");
    let topic = format!("{prefix}.events");
    let elapsed = run_runtime(&broker, &topic, n, "nats-server").await;
    broker
        .jetstream()
        .delete_stream(NatsBroker::stream_name(&topic))
        .await
        .unwrap();
    elapsed
}

/// Publish → consume → ack through the Broker contract.
async fn run_runtime(
    broker: &(impl Broker + Clone),
    topic: &str,
    n: u64,
    server: &'static str,
) -> Sample {
    let mut o = SubscribeOptions::new(format!("{topic}.group"), [topic]);
    o.max_in_flight = 2 * BATCH;
    let mut sub = broker.subscribe(o).await.unwrap();
    let events: Vec<Envelope> = (0..n).map(event).collect();
    let timer = Timer::start(server);
    let cons = tokio::spawn(async move {
        let mut got = 0u64;
        while got < n {
            let batch = sub.next_batch(BATCH).await.unwrap().unwrap();
            got += batch.len() as u64;
            settle_all(batch.into_iter().map(|d| (d, Settlement::Ack)))
                .await
                .unwrap();
        }
    });
    let (b, t) = (broker.clone(), SharedStr::from(topic.to_owned()));
    let prod = tokio::spawn(async move {
        for chunk in events.chunks(BATCH) {
            b.publish_batch(chunk.iter().map(|e| (t.clone(), e.clone())).collect())
                .await
                .unwrap();
        }
    });
    prod.await.unwrap();
    cons.await.unwrap();
    timer.stop()
}

async fn redis_raw(n: u64, payload: bytes::Bytes) -> Sample {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut reader = client.get_multiplexed_async_connection().await.unwrap();
    let key = unique("bench:raw:");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    let timer = Timer::start("redis-server");
    let (k2, mut acker) = (key.clone(), conn.clone());
    let cons = tokio::spawn(async move {
        let mut got = 0u64;
        while got < n {
            let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("c")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&k2)
                .arg(">")
                .query_async(&mut reader)
                .await
                .unwrap();
            let ids: Vec<String> = reply
                .map(|r| {
                    r.keys
                        .into_iter()
                        .flat_map(|k| k.ids)
                        .map(|i| i.id)
                        .collect()
                })
                .unwrap_or_default();
            if ids.is_empty() {
                continue;
            }
            got += ids.len() as u64;
            let _: () = redis::cmd("XACK")
                .arg(&k2)
                .arg("g")
                .arg(&ids)
                .query_async(&mut acker)
                .await
                .unwrap();
        }
    });
    let (k3, mut pc) = (key.clone(), conn.clone());
    let prod = tokio::spawn(async move {
        let mut sent = 0;
        while sent < n {
            let k = (n - sent).min(BATCH as u64);
            let mut pipe = redis::pipe();
            for _ in 0..k {
                pipe.cmd("XADD")
                    .arg(&k3)
                    .arg("*")
                    .arg("event")
                    .arg(payload.as_ref())
                    .ignore();
            }
            let _: () = pipe.query_async(&mut pc).await.unwrap();
            sent += k;
        }
    });
    prod.await.unwrap();
    cons.await.unwrap();
    let elapsed = timer.stop();
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    elapsed
}

async fn redis_runtime(n: u64, dedup: bool) -> Sample {
    let options = RedisOptions {
        key_prefix: "bench:rt:".into(),
        dedup_window: dedup.then_some(Duration::from_secs(120)),
        ..RedisOptions::default()
    };
    let broker = RedisBroker::connect_with("redis://127.0.0.1:6379", options)
        .await
        .unwrap();
    let topic = unique("events");
    let elapsed = run_runtime(&broker, &topic, n, "redis-server").await;
    let mut conn = broker.connection();
    let _: () = redis::cmd("DEL")
        .arg(broker.stream_key(&topic))
        .query_async(&mut conn)
        .await
        .unwrap();
    // The dedup keys expire by themselves.
    elapsed
}

/// One round: its wall time and the CPU the client (this process) and the
/// server spent in it, from the first publish to the last ack (setting up
/// streams, groups and the events to send is not counted).
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    client: Option<Duration>,
    server: Option<Duration>,
}

struct Timer {
    wall: Instant,
    client: Option<Duration>,
    server: Option<Duration>,
    name: &'static str,
}

impl Timer {
    fn start(server: &'static str) -> Timer {
        Timer {
            client: process_cpu(),
            server: server_cpu(server),
            name: server,
            wall: Instant::now(),
        }
    }

    fn stop(self) -> Sample {
        let wall = self.wall.elapsed();
        let since =
            |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        Sample {
            wall,
            client: since(self.client, process_cpu()),
            server: since(self.server, server_cpu(self.name)),
        }
    }
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`.
fn process_cpu() -> Option<Duration> {
    cpu_of("self")
}

/// The CPU time so far of every process named `name` (the servers).
fn server_cpu(name: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == name {
            total += cpu_of(&pid).unwrap_or_default();
        }
    }
    Some(total)
}

pub fn main() {
    // `cargo test --benches` runs this binary with no work to do.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let n: u64 = std::env::var("CHOREO_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let only = std::env::var("CHOREO_BENCH_ONLY").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let size = wire_size();
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let rounds = 3;
    println!("messages per round: {n}; message size {size} bytes; batches of {BATCH}; best of {rounds} rounds");
    let mut table: Vec<(&'static str, Vec<Sample>)> = Vec::new();
    let mut measure = |name: &'static str, f: &dyn Fn() -> Sample| {
        if name.contains(only.as_str()) {
            table.push((name, (0..rounds).map(|_| f()).collect()));
        }
    };
    let p = payload.clone();
    measure("nats raw async-nats", &|| {
        rt.block_on(nats_raw(n, p.clone()))
    });
    measure("nats runtime", &|| rt.block_on(nats_runtime(n)));
    measure("redis raw XADD/XREADGROUP/XACK", &|| {
        rt.block_on(redis_raw(n, payload.clone()))
    });
    measure("redis runtime", &|| rt.block_on(redis_runtime(n, false)));
    measure("redis runtime, dedup=2m", &|| {
        rt.block_on(redis_runtime(n, true))
    });
    let rate = |v: &[Sample]| {
        let best = v.iter().map(|s| s.wall).min().unwrap();
        n as f64 / best.as_secs_f64()
    };
    // CPU per message over all rounds.
    let per = |v: &[Sample], part: fn(&Sample) -> Option<Duration>| {
        let total: Option<Duration> = v.iter().map(part).sum();
        total.map_or("n/a".to_owned(), |c| {
            format!(
                "{:.1} µs",
                c.as_secs_f64() * 1e6 / (v.len() as f64 * n as f64)
            )
        })
    };
    for (name, samples) in &table {
        println!(
            "{name:<32}{:>9.0} events/s  CPU per message: client {}, server {}  (rounds: {:?})",
            rate(samples),
            per(samples, |s| s.client),
            per(samples, |s| s.server),
            samples.iter().map(|s| s.wall).collect::<Vec<_>>()
        );
    }
    let get = |name: &str| table.iter().find(|(n, _)| *n == name).map(|(_, t)| rate(t));
    for (rt_name, raw_name) in [
        ("nats runtime", "nats raw async-nats"),
        ("redis runtime", "redis raw XADD/XREADGROUP/XACK"),
        ("redis runtime, dedup=2m", "redis raw XADD/XREADGROUP/XACK"),
    ] {
        if let (Some(a), Some(b)) = (get(rt_name), get(raw_name)) {
            println!("ratio {rt_name} / raw: {:.3}", a / b);
        }
    }
}
