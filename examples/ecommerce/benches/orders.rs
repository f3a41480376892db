//! Orders settled per second: 10,000 orders through the HTTP ingress,
//! every participant in this process on the memory broker (best of 3),
//! against a baseline taken in the same run — the same 10,000 POSTs through
//! the same client to the same ingress whose commands go to a broker where
//! nobody consumes them — so that the ratio says what the choreography
//! costs on top of taking the requests. Then, when NATS answers on
//! 127.0.0.1:4222, the same orders with one process per participant
//! (the release binary), against the in-process run.
//!
//! `cargo bench -p ecommerce --bench orders [-- --orders N --runs R]`

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used)]

use choreo_runtime::progress::{InstanceTracker, TrackerOptions};
use ecommerce::run::place;
use ecommerce::{ecommerce as spec, ingress, Catalogue, DataOptions, Role, System};
use example_support::testing::{
    broker_available, delete_nats_stream, spawn_until_ready, unique_prefix, ServiceProcess,
    NATS_URL,
};
use example_support::{serve, Deployment, HttpClient};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 64;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn data(orders: usize) -> DataOptions {
    // The default run's proportions: ten orders per customer, twenty per
    // product, so that the mix of endings is the same at every size.
    DataOptions {
        seed: 8,
        users: (orders as u64 / 10).max(1),
        products: (orders as u64 / 20).max(1),
    }
}

fn deployment(broker: &str) -> Deployment {
    Deployment {
        broker: broker.into(),
        service: None,
        prefix: unique_prefix(),
        duplicates: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        store: None,
    }
}

/// The ingress alone: POSTs per second answered `202`.
async fn ingress_alone(orders: usize) -> f64 {
    let catalogue = Arc::new(Catalogue::generate(data(orders)));
    let sink = choreo_runtime::connect("memory://").await.unwrap();
    // The tracker the router needs, on a broker of its own: nobody
    // consumes the commands.
    let elsewhere = choreo_runtime::connect("memory://").await.unwrap();
    let tracker = Arc::new(
        InstanceTracker::start(spec::topology(), elsewhere, TrackerOptions::default())
            .await
            .unwrap(),
    );
    let router = ingress(catalogue.clone(), spec::Commands::new(sink), tracker);
    let server = serve(router, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = HttpClient::new(server.base_url());
    let list = catalogue.orders(orders);
    let started = Instant::now();
    let keys = place(&client, &list, CONCURRENCY).await.unwrap();
    let rate = keys.len() as f64 / started.elapsed().as_secs_f64();
    server.shutdown().await.unwrap();
    rate
}

/// Everything in this process: orders settled per second (with every
/// event delivered twice when `duplicates`).
async fn in_process(orders: usize, duplicates: bool) -> f64 {
    let mut d = deployment("memory://");
    d.duplicates = duplicates;
    let system = System::start(&d, data(orders), Role::Everything)
        .await
        .unwrap();
    let (summary, _) = system
        .drive(orders, CONCURRENCY, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(summary.complete(), "{summary}");
    system.stop().await.unwrap();
    summary.per_second()
}

/// One process per participant on NATS, and an ingress process placing
/// the orders: its summary's orders settled per second.
fn nats_multi_process(orders: usize) -> f64 {
    let bin = Path::new(env!("CARGO_BIN_EXE_ecommerce"));
    let prefix = unique_prefix();
    let d = data(orders);
    let (users, products) = (d.users.to_string(), d.products.to_string());
    let common = [
        "--broker",
        NATS_URL,
        "--prefix",
        &prefix,
        "--users",
        &users,
        "--products",
        &products,
    ];
    let services = spawn_until_ready(
        bin,
        &ecommerce::PARTICIPANTS,
        &common,
        "running on",
        Duration::from_secs(60),
    )
    .unwrap();
    let n = orders.to_string();
    let mut args = common.to_vec();
    args.extend(["--service", "ingress", "--orders", &n]);
    let driver = ServiceProcess::spawn("ingress", bin, &args)
        .unwrap()
        .wait(Duration::from_secs(600))
        .unwrap();
    for s in services {
        s.stop(Duration::from_secs(60)).unwrap();
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_nats_stream(NATS_URL, &prefix));
    assert!(driver.success, "{}\n{}", driver.stdout, driver.stderr);
    // "10000 instances in 1.23 s (8130/s), 0 dead letters"
    let line = driver
        .stdout
        .lines()
        .find(|l| l.contains(" instances in "))
        .unwrap();
    let secs: f64 = line
        .split(" instances in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    orders as f64 / secs
}

fn best(rates: &[f64]) -> f64 {
    rates.iter().copied().fold(0.0, f64::max)
}

fn show(label: &str, rates: &[f64]) {
    let all: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{label}: best {:.0}/s (runs: {})",
        best(rates),
        all.join(", ")
    );
}

fn main() {
    let orders = arg("--orders", 10_000);
    let runs = arg("--runs", 3).max(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "ecommerce: {orders} orders, {CONCURRENCY} in flight, best of {runs}, {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut baseline = Vec::new();
    let mut memory = Vec::new();
    let mut twice = Vec::new();
    for _ in 0..runs {
        // Interleaved, so that a change in the machine's load weighs on
        // all alike.
        baseline.push(rt.block_on(ingress_alone(orders)));
        memory.push(rt.block_on(in_process(orders, false)));
        twice.push(rt.block_on(in_process(orders, true)));
    }
    show("HTTP ingress alone (202s/s)", &baseline);
    show("in process, memory broker (settled/s)", &memory);
    show(
        "in process, every event delivered twice (settled/s)",
        &twice,
    );
    println!(
        "in process / ingress alone: {:.2}",
        best(&memory) / best(&baseline)
    );
    println!(
        "every event twice / once: {:.2}",
        best(&twice) / best(&memory)
    );
    if !broker_available(NATS_URL) {
        return;
    }
    let nats: Vec<f64> = (0..runs).map(|_| nats_multi_process(orders)).collect();
    show("NATS, one process per participant (settled/s)", &nats);
    println!(
        "NATS multi-process / in process: {:.2}",
        best(&nats) / best(&memory)
    );
}
