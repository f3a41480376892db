//! Events per second through publish → dispatch → handler → ack on the
//! in-memory broker, against the same handlers wired by hand with tokio
//! mpsc channels (the physical limit of an in-process pipeline).
//!
//! Two stages: `PlaceOrder` → `place_order` → `OrderPlaced` → `charge`.
//! Each command makes two handlings; the figure is handlings per second.
//! Both sides carry the same values: envelopes built as the runtime builds
//! them (ids, time, trace, correlation, causation, typed payload).
//!
//! Run: `cargo bench -p choreo-runtime --bench pipeline`. Environment:
//! `CHOREO_BENCH_EVENTS` (commands per round, default 500000),
//! `CHOREO_BENCH_ROUNDS` (default 3), `CHOREO_BENCH_ONLY=raw|broker|quiet`
//! (one side; `quiet` is the broker with progress notices off, which
//! `CHOREO_BENCH_QUIET=1` adds to a full run).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_of;

use choreo_runtime::service::{
    Client, Emit, HandlerError, Reaction, ServiceDefinition, ServiceOptions, Stores, Topics,
    Trigger,
};
use choreo_runtime::{
    Envelope, EventId, MemoryBroker, Message, Payload, SharedBroker, SharedStr, TraceParent,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlaceOrder {
    order_id: u64,
    product_id: u64,
    quantity: u32,
}
impl Message for PlaceOrder {
    const TYPE: &'static str = "Bench.PlaceOrder";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderPlaced {
    order_id: u64,
    amount: u64,
}
impl Message for OrderPlaced {
    const TYPE: &'static str = "Bench.OrderPlaced";
}

// The handlers both pipelines run.
fn place_order(cmd: PlaceOrder) -> OrderPlaced {
    OrderPlaced {
        order_id: cmd.order_id,
        amount: cmd.product_id * 100 + u64::from(cmd.quantity),
    }
}

fn charge(evt: OrderPlaced, ledger: &AtomicU64) {
    ledger.fetch_add(evt.amount, Ordering::Relaxed);
}

fn command(n: u64) -> PlaceOrder {
    PlaceOrder {
        order_id: n,
        product_id: n % 97,
        quantity: 1 + (n % 5) as u32,
    }
}

const CHANNEL: usize = 1024;

/// The most values a raw stage takes off its channel at once.
const RAW_BATCH: usize = 128;

/// The command envelope, built as `Client::send` builds it: a v7 id, the
/// time, a new trace, the instance key, the typed payload.
fn command_envelope(n: u64) -> Envelope {
    Envelope::of(n.to_string(), command(n))
        .source("bench")
        .build()
}

/// The envelope of the event `place_order` emits, built as the runtime
/// builds it: derived id, causation, correlation, continued trace, time.
fn emitted_envelope(cause: &Envelope, source: &SharedStr, event: OrderPlaced) -> Envelope {
    Envelope::caused_by(
        cause,
        EventId::derived(cause.id(), "place", 0),
        SharedStr::from_static(OrderPlaced::TYPE),
        source.clone(),
        cause
            .traceparent()
            .map_or_else(TraceParent::new_root, |t| t.child()),
        None,
        Payload::typed(event),
    )
}

/// The physical limit: the same envelopes between the same handler
/// functions, over two bounded tokio mpsc channels, each stage taking
/// what is queued in one go (`recv_many`). No inbox, no acks.
async fn raw_pipeline(n: u64) -> Duration {
    let ledger = Arc::new(AtomicU64::new(0));
    let (tx1, mut rx1) = tokio::sync::mpsc::channel::<Envelope>(CHANNEL);
    let (tx2, mut rx2) = tokio::sync::mpsc::channel::<Envelope>(CHANNEL);
    let start = Instant::now();
    let stage1 = tokio::spawn(async move {
        let source = SharedStr::from_static("Bench/Orders");
        let mut buf = Vec::with_capacity(RAW_BATCH);
        while rx1.recv_many(&mut buf, RAW_BATCH).await > 0 {
            for cmd in buf.drain(..) {
                let out = place_order(cmd.decode().unwrap());
                tx2.send(emitted_envelope(&cmd, &source, out))
                    .await
                    .unwrap();
            }
        }
    });
    let l = ledger.clone();
    let stage2 = tokio::spawn(async move {
        let mut handled = 0u64;
        let mut buf = Vec::with_capacity(RAW_BATCH);
        while rx2.recv_many(&mut buf, RAW_BATCH).await > 0 {
            for evt in buf.drain(..) {
                charge(evt.decode().unwrap(), &l);
                handled += 1;
            }
        }
        handled
    });
    let producer = tokio::spawn(async move {
        for i in 0..n {
            tx1.send(command_envelope(i)).await.unwrap();
        }
    });
    producer.await.unwrap();
    stage1.await.unwrap();
    assert_eq!(stage2.await.unwrap(), n);
    start.elapsed()
}

/// What the broker pipeline's sink shares with the bench: one `Arc`, so
/// that a handling clones one pointer (its future must own what it uses).
struct Tally {
    ledger: AtomicU64,
    handled: AtomicU64,
    /// Commands the producer may still send (see `broker_pipeline`).
    window: tokio::sync::Semaphore,
    /// Told when the last command has been handled.
    done: tokio::sync::Notify,
    n: u64,
}

/// Permits go back to the producer this many at a time.
const WINDOW_STEP: u64 = 64;

async fn broker_pipeline(n: u64, notices: bool) -> Duration {
    let broker: SharedBroker = Arc::new(MemoryBroker::new());
    // The raw pipeline's bounded channels hold back its producer; a window
    // of as many commands holds back this one, so that neither measures a
    // growing backlog.
    let tally = Arc::new(Tally {
        ledger: AtomicU64::new(0),
        handled: AtomicU64::new(0),
        window: tokio::sync::Semaphore::new(2 * CHANNEL),
        done: tokio::sync::Notify::new(),
        n,
    });
    let orders = ServiceDefinition::new("Bench", "Orders").reaction(Reaction::new(
        "place",
        Trigger::any([PlaceOrder::TYPE]),
        |_ctx, input| async move {
            let cmd: PlaceOrder = input.decode()?;
            Ok::<_, HandlerError>(Emit::one(place_order(cmd)))
        },
    ));
    let t = tally.clone();
    let payment = ServiceDefinition::new("Bench", "Payment").reaction(Reaction::new(
        "charge",
        Trigger::any([OrderPlaced::TYPE]),
        move |_ctx, input| {
            let t = t.clone();
            async move {
                charge(input.decode()?, &t.ledger);
                let handled = t.handled.fetch_add(1, Ordering::Relaxed) + 1;
                if handled % WINDOW_STEP == 0 {
                    t.window.add_permits(WINDOW_STEP as usize);
                }
                if handled == t.n {
                    t.done.notify_one();
                }
                Ok(Emit::none())
            }
        },
    ));
    let options = ServiceOptions {
        progress_notices: notices,
        ..ServiceOptions::default()
    };
    let a = orders
        .start(broker.clone(), Stores::memory(), options.clone())
        .await
        .unwrap();
    let b = payment
        .start(broker.clone(), Stores::memory(), options)
        .await
        .unwrap();
    let client = Client::new(broker.clone(), Topics::default(), "bench");
    let finished = tally.done.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    let start = Instant::now();
    let t = tally.clone();
    let producer = tokio::spawn(async move {
        for i in 0..n {
            t.window.acquire().await.unwrap().forget();
            client.send(i.to_string(), command(i)).await.unwrap();
        }
    });
    producer.await.unwrap();
    finished.await;
    let took = start.elapsed();
    assert_eq!(tally.handled.load(Ordering::Relaxed), n);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    broker.close(Duration::from_secs(1)).await.unwrap();
    took
}

/// Runs `rounds` rounds; returns the best wall time and the CPU time per
/// handling over all rounds (a figure that other load on the machine
/// disturbs much less than throughput).
fn measure(
    rt: &tokio::runtime::Runtime,
    rounds: usize,
    n: u64,
    run: impl Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = Duration>>>,
) -> (Vec<Duration>, Option<f64>) {
    let before = cpu_of("self");
    let times: Vec<Duration> = (0..rounds).map(|_| rt.block_on(run(n))).collect();
    let cpu_ns_per_handling = match (before, cpu_of("self")) {
        (Some(a), Some(b)) => Some((b - a).as_nanos() as f64 / (rounds as f64 * 2.0 * n as f64)),
        _ => None,
    };
    (times, cpu_ns_per_handling)
}

pub fn main() {
    // `cargo test --benches` runs this binary with no work to do.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let n: u64 = std::env::var("CHOREO_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rounds: usize = std::env::var("CHOREO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let best = |v: &[Duration]| v.iter().min().copied().unwrap();
    // CHOREO_BENCH_ONLY=raw|broker|quiet runs one side (for profiling).
    let only = std::env::var("CHOREO_BENCH_ONLY").unwrap_or_default();
    let rate = |d: Duration| (2 * n) as f64 / d.as_secs_f64();
    let report = |name: &str, (times, cpu): &(Vec<Duration>, Option<f64>)| {
        let cpu = cpu.map_or("n/a".to_owned(), |c| format!("{c:.0} ns"));
        println!(
            "{name:<24}{:>12.0} events/s  CPU per handling {cpu}  (rounds: {times:?})",
            rate(best(times))
        );
    };
    println!("commands per round: {n} (each makes 2 handlings); best of {rounds} rounds");
    let raw = (only.is_empty() || only == "raw")
        .then(|| measure(&rt, rounds, n, |n| Box::pin(raw_pipeline(n))));
    let brk = (only.is_empty() || only == "broker")
        .then(|| measure(&rt, rounds, n, |n| Box::pin(broker_pipeline(n, true))));
    // Progress notices off (not the default): what they cost.
    let quiet = (only == "quiet" || std::env::var_os("CHOREO_BENCH_QUIET").is_some())
        .then(|| measure(&rt, rounds, n, |n| Box::pin(broker_pipeline(n, false))));
    if let Some(r) = &raw {
        report("raw mpsc pipeline:", r);
    }
    if let Some(b) = &brk {
        report("memory broker pipeline:", b);
    }
    if let Some(q) = &quiet {
        report("  (notices off):", q);
    }
    if let (Some(r), Some(b)) = (&raw, &brk) {
        println!(
            "ratio broker/raw:       {:>12.3}",
            rate(best(&b.0)) / rate(best(&r.0))
        );
    }
}
