//! Deliveries settled per second: in one process on the memory broker,
//! and one process per participant on NATS, each against a baseline
//! measured in the same run (the HTTP ingress alone accepting the same
//! requests, nobody consuming them).
//!
//! `cargo bench -p drone-delivery --bench throughput`; the size with
//! `DRONE_BENCH_DELIVERIES` (5,000), the runs per figure with
//! `DRONE_BENCH_RUNS` (3, the median is kept). The NATS run needs a
//! server on 127.0.0.1:4222 and is skipped without one.
#![allow(clippy::unwrap_used, missing_docs)]

use choreo_runtime::broker::memory::MemoryBroker;
use choreo_runtime::service::{Stores, Topics};
use drone_delivery::driver::{plans, DriveOptions};
use drone_delivery::system::{Node, Settings, PARTICIPANTS};
use example_support::testing::{
    broker_available, delete_nats_stream, spawn_until_ready, unique_prefix, ServiceProcess,
    NATS_URL,
};
use example_support::HttpClient;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DRONES: usize = 1000;
const FLIGHT_MS: u64 = 20;
const CONCURRENCY: usize = 400;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn settings() -> Settings {
    Settings {
        seed: 8,
        drones: DRONES,
        flight_time: Duration::from_millis(FLIGHT_MS),
        ..Settings::default()
    }
}

fn options(n: usize) -> DriveOptions {
    DriveOptions {
        deliveries: n,
        seed: 8,
        cancel_share: 0.15,
        reschedule_share: 0.15,
        concurrency: CONCURRENCY,
        flight_time: Duration::from_millis(FLIGHT_MS),
        timeout: Duration::from_secs(600),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The ingress alone: the same POSTs, as many at once, accepted per second.
async fn ingress_alone(n: usize) -> f64 {
    let node = Node::start(
        &settings(),
        Some("ingress"),
        Arc::new(MemoryBroker::new()),
        Stores::memory(),
        Topics::new(unique_prefix()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = HttpClient::new(node.base_url().unwrap());
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for plan in plans(&options(n)) {
        let (client, slots) = (client.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            client.post("/deliveries", &plan.request).await.unwrap();
        });
    }
    while tasks.join_next().await.is_some() {}
    let rate = n as f64 / started.elapsed().as_secs_f64();
    node.stop().await;
    rate
}

/// Everything in one process: deliveries settled per second.
async fn in_process(n: usize) -> f64 {
    let node = Node::start(
        &settings(),
        None,
        Arc::new(MemoryBroker::new()),
        Stores::memory(),
        Topics::new(unique_prefix()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let report = node.drive(&options(n)).await.unwrap();
    assert!(report.complete(), "{report}");
    node.stop().await;
    report.summary.per_second()
}

/// One process per participant on NATS, driven by a process of its own:
/// the rate its summary reports.
fn nats(n: usize) -> f64 {
    let bin = Path::new(env!("CARGO_BIN_EXE_drone-delivery"));
    let prefix = unique_prefix();
    let (drones, flight_ms) = (DRONES.to_string(), FLIGHT_MS.to_string());
    let common = [
        "--broker",
        NATS_URL,
        "--prefix",
        &prefix,
        "--drones",
        &drones,
        "--flight-ms",
        &flight_ms,
        "--seed",
        "8",
    ];
    let services = spawn_until_ready(
        bin,
        &PARTICIPANTS,
        &common,
        "\"ready\":true",
        Duration::from_secs(60),
    )
    .unwrap();
    let (n, concurrency) = (n.to_string(), CONCURRENCY.to_string());
    let mut a = common.to_vec();
    a.extend([
        "--service",
        "ingress",
        "--deliveries",
        &n,
        "--concurrency",
        &concurrency,
    ]);
    let done = ServiceProcess::spawn("ingress", bin, &a)
        .unwrap()
        .wait(Duration::from_secs(600))
        .unwrap();
    assert!(done.success, "{}\n{}", done.stdout, done.stderr);
    for p in services {
        p.stop(Duration::from_secs(30)).unwrap();
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_nats_stream(NATS_URL, &prefix));
    // `N instances in S s (R/s), …`
    let line = done
        .stdout
        .lines()
        .find(|l| l.contains(" instances in "))
        .unwrap()
        .to_string();
    let at = line.find('(').unwrap() + 1;
    line[at..].split('/').next().unwrap().parse().unwrap()
}

fn main() {
    let n = env("DRONE_BENCH_DELIVERIES", 5000);
    let runs = env("DRONE_BENCH_RUNS", 3).max(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let baseline = median((0..runs).map(|_| rt.block_on(ingress_alone(n))).collect());
    let local = median((0..runs).map(|_| rt.block_on(in_process(n))).collect());
    println!("{n} deliveries, {DRONES} drones, {FLIGHT_MS} ms flights, {CONCURRENCY} at once, median of {runs}");
    println!("| run | per second | ratio |");
    println!("|---|---:|---:|");
    println!("| ingress alone, POST accepted (baseline) | {baseline:.0} | 1.00 |");
    println!(
        "| in one process, memory broker: settled | {local:.0} | {:.2} of the baseline |",
        local / baseline
    );
    if broker_available(NATS_URL) {
        drop(rt);
        let remote = median((0..runs).map(|_| nats(n)).collect());
        println!(
            "| one process per participant, NATS: settled | {remote:.0} | {:.2} of the in-process run |",
            remote / local
        );
    }
}
