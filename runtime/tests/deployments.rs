//! A small choreography (a plain reaction and a join) deployed on real
//! servers with their durable stores, under what production does to it.
//!
//! A connection cut for 5 s in the middle of a run, through a loopback TCP
//! proxy of the test's own between the services and their server: every
//! open connection is reset and new ones are refused, then the proxy
//! forwards again.
//! - PostgreSQL stores: the PostgreSQL connection is cut (the broker, in
//!   memory, is not).
//! - NATS stores: the NATS connection is cut, which carries both the
//!   broker and the stores.
//!
//! Two replicas of each participant on NATS and on Redis, with the
//! broker's own stores: the two events of a join reach different
//! replicas, and the join still fires once.
//!
//! Each time: nothing is dead-lettered, every instance settles, and no
//! handler runs twice (the test counts handler runs per event).
//!
//! A missing server skips with a message, unless `CHOREO_REQUIRE_BROKERS=1`.
#![cfg(all(feature = "nats", feature = "redis", feature = "postgres"))]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use choreo_runtime::broker::{IntoSharedBroker, NatsBroker};
use choreo_runtime::service::{
    Client, Emit, Reaction, ServiceDefinition, ServiceHandle, ServiceOptions, ServiceStats, Stores,
    Topics, Trigger,
};
use choreo_runtime::store::StoreOptions;
use choreo_runtime::{Envelope, MemoryBroker, Message, SharedBroker, SubscribeOptions};
use common::proxy::Proxy;
use common::{OrderPlaced, PaymentApproved, ShipmentScheduled};

const ORDERS: u64 = 300;
const CUT: Duration = Duration::from_secs(5);
const NATS: &str = "127.0.0.1:4222";
const POSTGRES: &str = "127.0.0.1:5432";
const REDIS: &str = "127.0.0.1:6379";

/// Handler runs per reaction and event (instance, for the join).
type Runs = Arc<Mutex<HashMap<String, u32>>>;

fn count(runs: &Runs, what: String) {
    *runs.lock().unwrap().entry(what).or_default() += 1;
}

/// Payment charges each order; Shipping joins the order with its payment.
fn services(runs: &Runs) -> [ServiceDefinition; 2] {
    let charge_runs = runs.clone();
    let payment = ServiceDefinition::new("Shop", "Payment").reaction(Reaction::new(
        "charge",
        Trigger::any([OrderPlaced::TYPE]),
        move |ctx, input| {
            let runs = charge_runs.clone();
            async move {
                count(&runs, format!("charge {}", ctx.event_id()));
                let order: OrderPlaced = input.decode()?;
                Ok(Emit::one(PaymentApproved {
                    amount: order.amount,
                }))
            }
        },
    ));
    let ship_runs = runs.clone();
    let shipping = ServiceDefinition::new("Shop", "Shipping").reaction(Reaction::new(
        "schedule",
        Trigger::all([OrderPlaced::TYPE, PaymentApproved::TYPE]),
        move |ctx, input| {
            let runs = ship_runs.clone();
            async move {
                count(&runs, format!("schedule {}", ctx.instance_key()));
                let payment: PaymentApproved = input.decode()?;
                Ok(Emit::one(ShipmentScheduled {
                    reservation: payment.amount,
                }))
            }
        },
    ));
    [payment, shipping]
}

/// Runs `replicas` of each of the two services on `broker` with `stores`
/// (one connection each), places [`ORDERS`] orders through `direct` (a
/// broker the cut does not touch) and, with a `proxy`, cuts it for [`CUT`]
/// while they flow; then checks that every order was shipped, nothing was
/// dead-lettered and no handler ran twice. The services' stats, summed.
async fn run_orders(
    broker: SharedBroker,
    stores: impl Fn() -> futures::future::BoxFuture<'static, Stores>,
    direct: SharedBroker,
    replicas: usize,
    proxy: Option<&Proxy>,
    prefix: &str,
) -> ServiceStats {
    let topics = Topics::new(prefix);
    let options = ServiceOptions {
        topics: topics.clone(),
        // Short, so that a delivery lost in the cut comes back soon; held
        // ones are kept alive through the outage.
        ack_wait: Duration::from_secs(3),
        ..ServiceOptions::default()
    };
    let runs: Runs = Arc::default();
    let mut handles: Vec<ServiceHandle> = Vec::new();
    for _ in 0..replicas {
        for def in services(&runs) {
            handles.push(
                def.start(broker.clone(), stores().await, options.clone())
                    .await
                    .unwrap(),
            );
        }
    }
    let mut shipped_sub = direct
        .subscribe(SubscribeOptions::new(
            format!("{prefix}reader"),
            [topics.for_type(ShipmentScheduled::TYPE)],
        ))
        .await
        .unwrap();
    let client = Client::new(direct.clone(), topics, "test");
    let connections_before = proxy.map(Proxy::connections);
    let place = tokio::spawn(async move {
        for n in 0..ORDERS {
            client
                .send_envelope(
                    Envelope::of(format!("order-{n}"), OrderPlaced { amount: n }).build(),
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cut_at = tokio::time::Instant::now();
    if let Some(proxy) = proxy {
        proxy.cut_for(CUT).await;
    }

    let mut shipped = HashSet::new();
    let deadline = cut_at + Duration::from_secs(120);
    while shipped.len() < ORDERS as usize {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let batch = tokio::time::timeout(left, shipped_sub.next_batch(64))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {ORDERS} orders shipped within 120 s of the cut",
                    shipped.len()
                )
            })
            .unwrap()
            .unwrap();
        for d in batch {
            shipped.insert(d.envelope().correlation_id().to_owned());
            d.ack().await.unwrap();
        }
    }
    place.await.unwrap();
    if let (Some(proxy), Some(before)) = (proxy, connections_before) {
        eprintln!(
            "every order shipped {:.1} s after the cut ended",
            (cut_at.elapsed().as_secs_f64() - CUT.as_secs_f64()).max(0.0)
        );
        assert!(
            proxy.connections() > before,
            "the services connected again after the cut"
        );
    }
    let mut total = ServiceStats::default();
    for h in handles {
        let name = h.participant().to_owned();
        let s = h.shutdown().await.unwrap();
        // Every replica took its share: the events of one join met on
        // different replicas too.
        assert!(s.deliveries > 0, "a replica of {name} got nothing: {s:?}");
        total.dead_lettered += s.dead_lettered;
        total.failures += s.failures;
        total.handled += s.handled;
        total.store_outages += s.store_outages;
        total.broker_outages += s.broker_outages;
    }
    assert_eq!(
        (total.dead_lettered, total.failures),
        (0, 0),
        "nothing dead-lettered or failed: {total:?}"
    );
    let runs = runs.lock().unwrap();
    let twice: Vec<_> = runs.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "handlers ran twice: {twice:?}");
    assert_eq!(
        runs.len() as u64,
        2 * ORDERS,
        "each order charged and shipped"
    );
    total
}

/// The server at `addr`, or `None` (skip, or fail in CI) when it does not
/// answer.
async fn reachable(addr: &str, what: &str) -> Option<SocketAddr> {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_) => Some(addr.parse().unwrap()),
        Err(e) => {
            common::server_missing(what, &e);
            None
        }
    }
}

/// Deletes a NATS deployment's stream and its stores' buckets.
async fn delete_nats_deployment(
    js: &async_nats::jetstream::Context,
    prefix: &str,
    options: &StoreOptions,
) {
    let _ = js.delete_stream(NatsBroker::stream_name(prefix)).await;
    for bucket in choreo_runtime::store::NatsKvStores::bucket_names(options) {
        let _ = js.delete_stream(format!("KV_{bucket}")).await;
    }
}

/// Opens a new connection to the stores at `url` each time it is called.
fn stores_at(
    url: &str,
    options: &StoreOptions,
) -> impl Fn() -> futures::future::BoxFuture<'static, Stores> {
    let (url, options) = (url.to_owned(), options.clone());
    move || {
        let (url, options) = (url.clone(), options.clone());
        Box::pin(async move { Stores::connect(&url, &options).await.unwrap() })
    }
}

fn unique(what: &str) -> String {
    format!("cut{what}{:08x}.", fastrand::u32(..))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_connection_cut_for_5_s_loses_and_repeats_nothing() {
    let Some(server) = reachable(POSTGRES, "PostgreSQL on 127.0.0.1:5432").await else {
        return;
    };
    let proxy = Proxy::start(server).await;
    let prefix = unique("pg");
    let url = format!("postgres://postgres@{}/test", proxy.addr());
    let options = StoreOptions::with_prefix(prefix.clone());
    let stores = stores_at(&url, &options);
    let broker = MemoryBroker::new().into_shared();
    let total = run_orders(broker.clone(), stores, broker, 1, Some(&proxy), &prefix).await;
    assert!(total.store_outages >= 1, "the cut was felt: {total:?}");

    use choreo_runtime::store::{postgres::table_prefix, PgStores};
    let tables = table_prefix(&prefix);
    let direct = format!("postgres://postgres@{POSTGRES}/test");
    if let Ok(pg) = PgStores::connect(&direct, &tables).await {
        let _ = pg.drop_tables(&tables).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_connection_cut_for_5_s_loses_and_repeats_nothing() {
    let Some(server) = reachable(NATS, "NATS on 127.0.0.1:4222").await else {
        return;
    };
    let proxy = Proxy::start(server).await;
    let prefix = unique("nats");
    let url = format!("nats://{}", proxy.addr());
    let options = StoreOptions::with_prefix(prefix.clone());
    // The services reach NATS through the proxy, for events and stores
    // alike; the test's client and reader do not.
    let broker = NatsBroker::connect_with(&url, common::brokers::nats::options())
        .await
        .unwrap()
        .into_shared();
    let direct =
        NatsBroker::connect_with(&format!("nats://{NATS}"), common::brokers::nats::options())
            .await
            .unwrap();
    let stores = stores_at(&url, &options);
    let js = direct.jetstream().clone();
    // The NATS client reconnects by itself and holds its requests
    // meanwhile: the services may never see an error, only a pause.
    run_orders(
        broker,
        stores,
        direct.into_shared(),
        1,
        Some(&proxy),
        &prefix,
    )
    .await;
    delete_nats_deployment(&js, &prefix, &options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_nats_fire_each_join_once() {
    if reachable(NATS, "NATS on 127.0.0.1:4222").await.is_none() {
        return;
    }
    let prefix = unique("repnats");
    let url = format!("nats://{NATS}");
    let options = StoreOptions::with_prefix(prefix.clone());
    let broker = NatsBroker::connect_with(&url, common::brokers::nats::options())
        .await
        .unwrap();
    let js = broker.jetstream().clone();
    let broker = broker.into_shared();
    run_orders(
        broker.clone(),
        stores_at(&url, &options),
        broker,
        2,
        None,
        &prefix,
    )
    .await;
    delete_nats_deployment(&js, &prefix, &options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_redis_fire_each_join_once() {
    if reachable(REDIS, "Redis on 127.0.0.1:6379").await.is_none() {
        return;
    }
    let prefix = unique("repredis");
    let url = format!("redis://{REDIS}");
    let options = StoreOptions::with_prefix(prefix.clone());
    let redis = choreo_runtime::broker::RedisBroker::connect(&url)
        .await
        .unwrap();
    let broker = redis.clone().into_shared();
    run_orders(
        broker.clone(),
        stores_at(&url, &options),
        broker,
        2,
        None,
        &prefix,
    )
    .await;
    common::brokers::redis::delete_streams(&redis, &prefix).await;
    let mut conn = redis.connection();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}choreo:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for key in keys {
        let _: Result<(), _> = ::redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
    }
}
