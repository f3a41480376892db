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
//!
//! With `-- --stores`, only the NATS run: the participants' durable stores
//! (NATS Key-Value, the default) against memory stores (`--store
//! memory://`), interleaved, with where each run's CPU went (seconds per
//! process, and the NATS server's).

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used)]

use choreo_runtime::progress::{InstanceTracker, TrackerOptions};
use ecommerce::run::place;
use ecommerce::{ecommerce as spec, ingress, Catalogue, DataOptions, Role, System};
use example_support::testing::{
    broker_available, delete_nats_stream, nats_kv_writes, spawn_until_ready, unique_prefix,
    ServiceProcess, NATS_URL,
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
        prefix: unique_prefix(),
        ..Deployment::default()
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

/// CPU seconds (user + system) of one process, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14,
    // stime 15 (proc(5)); clock ticks are 100 a second on Linux.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The CPU seconds so far of every process whose command line holds
/// `needle`, by the value after its `--service`.
fn cpu_by_service(needle: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        if !args.iter().any(|a| a == needle) {
            continue;
        }
        let service = args
            .iter()
            .position(|a| a == "--service")
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default();
        if let Some(secs) = cpu_seconds(&pid) {
            out.push((service, secs));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The CPU seconds so far of the nats-server process.
fn nats_server_cpu() -> f64 {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "nats-server")
        })
        .filter_map(|e| cpu_seconds(&e.file_name().to_string_lossy()))
        .sum()
}

/// Where one multi-process run's CPU went: seconds per process.
struct Profile {
    rate: f64,
    services: Vec<(String, f64)>,
    nats_server: f64,
    /// Writes per order to each Key-Value bucket (none with memory
    /// stores).
    kv_writes_per_order: Vec<(String, f64)>,
}

/// One process per participant on NATS, and an ingress process placing
/// the orders: its summary's orders settled per second. `store`: the
/// participants' `--store` (none: the broker's own, NATS Key-Value).
fn nats_multi_process(orders: usize, store: Option<&str>) -> Profile {
    let bin = Path::new(env!("CARGO_BIN_EXE_ecommerce"));
    let prefix = unique_prefix();
    let d = data(orders);
    let (users, products) = (d.users.to_string(), d.products.to_string());
    let mut common = vec![
        "--broker",
        NATS_URL,
        "--prefix",
        &prefix,
        "--users",
        &users,
        "--products",
        &products,
    ];
    if let Some(store) = store {
        common.extend(["--store", store]);
    }
    let server_before = nats_server_cpu();
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
    let driver = ServiceProcess::spawn("ingress", bin, &args).unwrap();
    // The participants' CPU just before they stop (the ingress: whatever
    // it had used when last seen running).
    let mut last_seen = Vec::new();
    let driver = loop {
        let now = cpu_by_service(&prefix);
        if now.iter().all(|(s, _)| s != "ingress") && !last_seen.is_empty() {
            break driver.wait(Duration::from_secs(600)).unwrap();
        }
        last_seen = now;
        std::thread::sleep(Duration::from_millis(100));
    };
    let nats_server = nats_server_cpu() - server_before;
    for s in services {
        s.stop(Duration::from_secs(60)).unwrap();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kv_writes = rt.block_on(nats_kv_writes(NATS_URL, &prefix));
    rt.block_on(delete_nats_stream(NATS_URL, &prefix));
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
    Profile {
        rate: orders as f64 / secs,
        services: last_seen,
        nats_server,
        kv_writes_per_order: kv_writes
            .into_iter()
            .map(|(bucket, n)| (bucket, n as f64 / orders as f64))
            .collect(),
    }
}

/// The NATS runs of one kind of store: rates, and the CPU profile of the
/// best run.
fn show_nats(label: &str, runs: &[Profile]) -> f64 {
    let rates: Vec<f64> = runs.iter().map(|p| p.rate).collect();
    show(label, &rates);
    if let Some(p) = runs.iter().max_by(|a, b| a.rate.total_cmp(&b.rate)) {
        let mut parts: Vec<String> = p
            .services
            .iter()
            .map(|(s, secs)| format!("{s} {secs:.1}"))
            .collect();
        parts.push(format!("nats-server {:.1}", p.nats_server));
        let total: f64 = p.services.iter().map(|(_, s)| s).sum::<f64>() + p.nats_server;
        println!(
            "  CPU seconds of its best run: {} (total {total:.1})",
            parts.join(", ")
        );
        if !p.kv_writes_per_order.is_empty() {
            let writes: Vec<String> = p
                .kv_writes_per_order
                .iter()
                .map(|(bucket, n)| format!("{bucket} {n:.1}"))
                .collect();
            let total: f64 = p.kv_writes_per_order.iter().map(|(_, n)| n).sum();
            println!(
                "  Key-Value writes per order: {} (total {total:.1})",
                writes.join(", ")
            );
        }
    }
    best(&rates)
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
    if std::env::args().any(|a| a == "--stores") {
        return nats_stores(orders, runs);
    }
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
    let nats: Vec<Profile> = (0..runs)
        .map(|_| nats_multi_process(orders, None))
        .collect();
    let nats = show_nats("NATS, one process per participant (settled/s)", &nats);
    println!(
        "NATS multi-process / in process: {:.2}",
        nats / best(&memory)
    );
}

/// `--stores`: one process per participant on NATS with the durable
/// stores (NATS Key-Value, the default) against the memory stores
/// (`--store memory://`), the runs interleaved.
fn nats_stores(orders: usize, runs: usize) {
    println!("ecommerce on NATS, one process per participant: {orders} orders, best of {runs}");
    if !broker_available(NATS_URL) {
        return;
    }
    let (mut memory, mut durable) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        memory.push(nats_multi_process(orders, Some("memory://")));
        durable.push(nats_multi_process(orders, None));
    }
    let m = show_nats("memory stores (settled/s)", &memory);
    let d = show_nats("NATS Key-Value stores (settled/s)", &durable);
    println!("NATS Key-Value / memory stores: {:.2}", d / m);
}
