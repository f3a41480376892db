//! The store conformance suite on every store: memory, and, against the
//! servers on loopback, NATS Key-Value (127.0.0.1:4222), Redis
//! (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432).
//!
//! Without a reachable server the cases of its store skip with a message,
//! unless `CHOREO_REQUIRE_BROKERS=1`, when they fail. Every case works
//! under a prefix of its own and removes its buckets, keys or tables
//! afterwards.
#![cfg(all(
    feature = "conformance",
    feature = "nats",
    feature = "redis",
    feature = "postgres"
))]
#![allow(clippy::unwrap_used)]

mod common;

use choreo_runtime::service::Stores;
use choreo_runtime::store::StoreOptions;

const NATS: &str = "nats://127.0.0.1:4222";
const REDIS: &str = "redis://127.0.0.1:6379";
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The stores at `url`, or `None` (skip, or fail in CI) when its server
/// does not answer.
async fn at(url: &str, what: &str, options: StoreOptions) -> Option<Stores> {
    match Stores::connect(url, &options).await {
        Ok(s) => Some(s),
        Err(e) => {
            common::server_missing(what, &e);
            None
        }
    }
}

async fn nats_cleanup(options: StoreOptions) {
    use choreo_runtime::store::NatsKvStores;
    let Ok(client) = async_nats::connect(NATS).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    for bucket in NatsKvStores::bucket_names(&options) {
        let _ = js.delete_stream(format!("KV_{bucket}")).await;
    }
}

async fn redis_cleanup(options: StoreOptions) {
    let Ok(client) = ::redis::Client::open(REDIS) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let pattern = format!("{}choreo:*", options.prefix);
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for key in keys {
        let _: Result<i64, _> = ::redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
    }
}

async fn postgres_cleanup(options: StoreOptions) {
    use choreo_runtime::store::{postgres::table_prefix, PgStores};
    let prefix = table_prefix(&options.prefix);
    if let Ok(pg) = PgStores::connect(POSTGRES, &prefix).await {
        let _ = pg.drop_tables(&prefix).await;
    }
}

choreo_runtime::store_conformance_suite!(
    memory,
    |_options| async { Some(choreo_runtime::service::Stores::memory()) },
    |_options| async {}
);

choreo_runtime::store_conformance_suite!(
    nats_kv,
    |options| async move { crate::at(crate::NATS, "NATS on 127.0.0.1:4222", options).await },
    crate::nats_cleanup
);

choreo_runtime::store_conformance_suite!(
    redis,
    |options| async move { crate::at(crate::REDIS, "Redis on 127.0.0.1:6379", options).await },
    crate::redis_cleanup
);

choreo_runtime::store_conformance_suite!(
    postgres,
    |options| async move { crate::at(crate::POSTGRES, "PostgreSQL on 127.0.0.1:5432", options).await },
    crate::postgres_cleanup
);
