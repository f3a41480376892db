//! What the durable stores hold stays flat however long a deployment runs:
//! done-marks and `@bounded` counters expire after the window, a fired
//! join's slots are removed. Rounds of orders go through a plain reaction,
//! a join and a bounded reaction on NATS Key-Value, Redis and PostgreSQL
//! stores with a 1.5 s window; after each round (and a window's wait) the
//! test counts what each server holds for the deployment, and the
//! process's resident memory. From the second round on neither grows.
//!
//! One test in a binary of its own, so that the resident memory is this
//! run's alone. A missing server skips its store with a message, unless
//! `CHOREO_REQUIRE_BROKERS=1`. `CHOREO_FLAT_ONLY=nats` (or `redis`,
//! `postgres`) runs one store alone.
#![cfg(all(feature = "nats", feature = "redis", feature = "postgres"))]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use choreo_runtime::broker::IntoSharedBroker;
use choreo_runtime::service::{
    Client, Emit, Reaction, ServiceDefinition, ServiceOptions, Stores, Topics, Trigger,
};
use choreo_runtime::store::StoreOptions;
use choreo_runtime::{
    Envelope, MemoryBroker, MemoryOptions, Message, SharedBroker, SubscribeOptions,
};
use common::{OrderPlaced, PaymentApproved, ShipmentScheduled};

const ROUNDS: usize = 5;
const ORDERS: u64 = 150;
const WINDOW: Duration = Duration::from_millis(1500);

const NATS: &str = "nats://127.0.0.1:4222";
const REDIS: &str = "redis://127.0.0.1:6379";
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

fn services() -> Vec<ServiceDefinition> {
    let payment = ServiceDefinition::new("Shop", "Payment").reaction(Reaction::new(
        "charge",
        Trigger::any([OrderPlaced::TYPE]),
        |_ctx, input| async move {
            let order: OrderPlaced = input.decode()?;
            Ok(Emit::one(PaymentApproved {
                amount: order.amount,
            }))
        },
    ));
    let shipping = ServiceDefinition::new("Shop", "Shipping").reaction(Reaction::new(
        "schedule",
        Trigger::all([OrderPlaced::TYPE, PaymentApproved::TYPE]),
        |_ctx, input| async move {
            let payment: PaymentApproved = input.decode()?;
            Ok(Emit::one(ShipmentScheduled {
                reservation: payment.amount,
            }))
        },
    ));
    let audit = ServiceDefinition::new("Shop", "Audit").reaction(
        Reaction::new(
            "note",
            Trigger::any([PaymentApproved::TYPE]),
            |_ctx, _input| async move { Ok(Emit::none()) },
        )
        .bounded(3),
    );
    vec![payment, shipping, audit]
}

/// How many entries the deployment under `options.prefix` holds on the
/// server of `url`.
async fn held(url: &str, options: &StoreOptions) -> u64 {
    if url.starts_with("nats") {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut n = 0;
        for bucket in choreo_runtime::store::NatsKvStores::bucket_names(options) {
            let mut stream = js.get_stream(format!("KV_{bucket}")).await.unwrap();
            n += stream.info().await.unwrap().state.messages;
        }
        n
    } else if url.starts_with("redis") {
        redis_keys(url, options).await.1.len() as u64
    } else {
        let (client, connection) = tokio_postgres::connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test",
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let p = choreo_runtime::store::postgres::table_prefix(&options.prefix);
        let mut n = 0;
        for table in ["inbox", "join", "fired"] {
            let row = client
                .query_one(&format!("SELECT count(*) FROM {p}{table}"), &[])
                .await
                .unwrap();
            n += row.get::<_, i64>(0) as u64;
        }
        n
    }
}

/// A connection to the Redis at `url`, and the deployment's keys there.
async fn redis_keys(
    url: &str,
    options: &StoreOptions,
) -> (::redis::aio::MultiplexedConnection, Vec<String>) {
    let client = ::redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}*", options.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    (conn, keys)
}

async fn clean(url: &str, options: &StoreOptions) {
    if url.starts_with("nats") {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        for bucket in choreo_runtime::store::NatsKvStores::bucket_names(options) {
            let _ = js.delete_stream(format!("KV_{bucket}")).await;
        }
    } else if url.starts_with("redis") {
        let (mut conn, keys) = redis_keys(url, options).await;
        for k in keys {
            let _: i64 = ::redis::cmd("DEL")
                .arg(&k)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    } else {
        use choreo_runtime::store::{postgres::table_prefix, PgStores};
        let prefix = table_prefix(&options.prefix);
        if let Ok(pg) = PgStores::connect(url, &prefix).await {
            let _ = pg.drop_tables(&prefix).await;
        }
    }
}

/// The process's resident memory, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident memory samples: (round, bytes), from every store's run.
type Samples = Arc<std::sync::Mutex<Vec<(usize, u64)>>>;

/// Rounds of orders on stores at `url`; what the server held after each.
async fn rounds(url: &'static str, samples: Samples) -> Option<Vec<u64>> {
    let prefix = format!("flat{:08x}.", fastrand::u32(..));
    let options = StoreOptions {
        window: WINDOW,
        ..StoreOptions::with_prefix(prefix.clone())
    };
    let stores = match Stores::connect(url, &options).await {
        Ok(s) => s,
        Err(e) => {
            common::server_missing(url, &e);
            return None;
        }
    };
    let broker: SharedBroker = MemoryBroker::with_options(MemoryOptions {
        retained_per_topic: 0,
        ..MemoryOptions::default()
    })
    .into_shared();
    let topics = Topics::new(prefix.clone());
    let opts = ServiceOptions {
        topics: topics.clone(),
        progress_notices: false,
        ..ServiceOptions::default()
    };
    let mut handles = Vec::new();
    for def in services() {
        handles.push(
            def.start(broker.clone(), stores.clone(), opts.clone())
                .await
                .unwrap(),
        );
    }
    let mut shipped = broker
        .subscribe(SubscribeOptions::new(
            "reader",
            [topics.for_type(ShipmentScheduled::TYPE)],
        ))
        .await
        .unwrap();
    let client = Client::new(broker.clone(), topics, "test");
    let mut counts = Vec::new();
    for round in 0..ROUNDS {
        for n in 0..ORDERS {
            let key = format!("r{round}-{n}");
            client
                .send_envelope(Envelope::of(key, OrderPlaced { amount: n }).build())
                .await
                .unwrap();
        }
        let mut seen = HashSet::new();
        while seen.len() < ORDERS as usize {
            let batch = tokio::time::timeout(Duration::from_secs(60), shipped.next_batch(64))
                .await
                .unwrap_or_else(|_| {
                    for h in &handles {
                        eprintln!("{}: {:?} {:?}", h.participant(), h.stats(), h.health());
                    }
                    panic!(
                        "{url}: round {round}: {} of {ORDERS} shipped within 60 s",
                        seen.len()
                    )
                })
                .unwrap()
                .unwrap();
            for d in batch {
                seen.insert(d.envelope().correlation_id().to_owned());
                d.ack().await.unwrap();
            }
        }
        // Done-marks and counters of this round outlive it by the window;
        // the sweeps (PostgreSQL: on writes, every half window) and the
        // server's expiry run meanwhile.
        tokio::time::sleep(WINDOW * 2).await;
        counts.push(held(url, &options).await);
        samples.lock().unwrap().push((round, resident()));
    }
    for h in handles {
        let s = h.shutdown().await.unwrap();
        assert_eq!(s.dead_lettered, 0, "{url}: {s:?}");
    }
    clean(url, &options).await;
    Some(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_memory_stay_flat_round_after_round() {
    let samples: Samples = Arc::default();
    let only = std::env::var("CHOREO_FLAT_ONLY").unwrap_or_default();
    let runs = futures::future::join_all([NATS, REDIS, POSTGRES].map(|url| {
        let samples = samples.clone();
        let skip = !only.is_empty() && !url.starts_with(only.as_str());
        async move {
            if skip {
                None
            } else {
                rounds(url, samples).await
            }
        }
    }))
    .await;
    let mut ran = 0;
    for (url, counts) in [NATS, REDIS, POSTGRES].iter().zip(runs) {
        let Some(counts) = counts else { continue };
        ran += 1;
        eprintln!("{url}: entries held a window after each round: {counts:?}");
        // A round leaves five entries per order at most (the done-marks
        // of charge, note and the join's firing, the counter, and a join
        // slot until its join fires). NATS and Redis expire them by
        // themselves; PostgreSQL sweeps on writes, so the last round's are
        // still there. Either way: never more than a round's worth, and no
        // pile-up round after round.
        // (PostgreSQL's sweep runs at most every half window, so what is
        // left varies by up to a round's entries of one kind.)
        let later = &counts[1..];
        let (low, high) = (
            later.iter().copied().min().unwrap_or(0),
            later.iter().copied().max().unwrap_or(0),
        );
        assert!(
            high - low <= ORDERS && high <= 6 * ORDERS,
            "{url}: entries grow round after round: {counts:?}"
        );
    }
    if ran == 0 {
        return;
    }
    // Memory: after the first two rounds (connections, tables and
    // allocator pools warmed up), the most resident memory seen at a later
    // round's end is within 16 MiB of the most seen by then.
    let samples = samples.lock().unwrap().clone();
    let peak = |rounds: std::ops::Range<usize>| {
        samples
            .iter()
            .filter(|(r, _)| rounds.contains(r))
            .map(|(_, b)| *b)
            .max()
            .unwrap_or(0)
    };
    let (warm, late) = (peak(0..2), peak(2..ROUNDS));
    eprintln!(
        "resident memory: {} MiB after two rounds, {} MiB at most after",
        warm >> 20,
        late >> 20
    );
    assert!(
        late <= warm + (16 << 20),
        "resident memory grew from {} to {} MiB over {ROUNDS} rounds",
        warm >> 20,
        late >> 20
    );
}
