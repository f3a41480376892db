//! The Redis Streams adapter against a real server: the conformance suite
//! on the shared server (127.0.0.1:6379), a restart of a server of the
//! test's own in the middle of a stream of publishes (once, and twice
//! under publishers that retry, with the broker's health), a durable consumer
//! that was offline, a message that is not an envelope, a bad URL.
//!
//! Without a reachable server (or the `redis-server` binary) these tests
//! skip with a message, unless `CHOREO_REQUIRE_BROKERS=1`, when they fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use choreo_runtime::broker::{IntoSharedBroker, ObserveOptions, RedisBroker, RedisOptions};
use choreo_runtime::{Envelope, SharedBroker};
use common::brokers::{self, redis};

choreo_runtime::conformance_suite!(redis_conformance, if_available: async {
    crate::redis::shared().await.map(|b| -> choreo_runtime::SharedBroker { std::sync::Arc::new(b) })
});

// Once more with the broker's deduplication on (`?dedup=2m`), which
// changes what a duplicate publish delivers.
choreo_runtime::conformance_suite!(redis_deduplicating_conformance, if_available: async {
    crate::redis::shared_deduplicating()
        .await
        .map(|b| -> choreo_runtime::SharedBroker { std::sync::Arc::new(b) })
});

#[tokio::test]
async fn redis_restart_mid_stream_loses_no_confirmed_publish() {
    let Some(mut server) = redis::own_server() else {
        return;
    };
    let broker = own_broker(&server).await;
    brokers::restart_mid_stream(&mut server, broker, "restart.events").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_restarts_lose_no_publish_retried_until_confirmed() {
    let Some(mut server) = redis::own_server() else {
        return;
    };
    let broker = own_broker(&server).await;
    brokers::restarts_with_retrying_publishers(&mut server, broker, "restart.events").await;
}

#[tokio::test]
async fn redis_offline_durable_consumer_gets_what_it_missed() {
    let Some(admin) = redis::shared().await else {
        return;
    };
    let prefix = brokers::test_prefix();
    brokers::offline_consumer_catches_up(
        || async { redis::shared().await.unwrap().into_shared() },
        &prefix,
    )
    .await;
    redis::delete_streams(&admin, &prefix).await;
}

/// A message that is not an envelope, added with a plain `XADD`, as
/// `observer` (skipped) or a group (dead-lettered) meets it.
async fn not_an_envelope(observer: bool) {
    let Some(broker) = redis::shared().await else {
        return;
    };
    let prefix = brokers::test_prefix();
    let topic = format!("{prefix}.raw");
    let mut conn = broker.connection();
    let key = broker.stream_key(&topic);
    let shared: SharedBroker = broker.clone().into_shared();
    let publish = async move {
        let _: String = ::redis::cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg("event")
            .arg(brokers::RAW)
            .query_async(&mut conn)
            .await
            .unwrap();
    };
    if observer {
        brokers::observer_skips_undecodable(shared, &topic, publish).await;
    } else {
        brokers::undecodable_is_dead_lettered(shared, &topic, publish).await;
    }
    redis::delete_streams(&broker, &prefix).await;
}

#[tokio::test]
async fn redis_message_that_is_not_an_envelope_is_dead_lettered() {
    not_an_envelope(false).await;
}

#[tokio::test]
async fn redis_observer_skips_a_message_that_is_not_an_envelope() {
    not_an_envelope(true).await;
}

/// An observer reads with plain `XREAD`s: no consumer group, and no
/// stream made for a topic that has none yet.
#[tokio::test]
async fn redis_observer_leaves_nothing_on_the_server() {
    let Some(broker) = redis::shared().await else {
        return;
    };
    let prefix = brokers::test_prefix();
    let (a, b) = (format!("{prefix}.a"), format!("{prefix}.b"));
    let shared: SharedBroker = broker.clone().into_shared();
    shared
        .publish(&a, Envelope::builder("T", "k").build())
        .await
        .unwrap();
    let mut obs = shared
        .observe(ObserveOptions::new([a.clone(), b.clone()]))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), obs.next_batch(10))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    let mut conn = broker.connection();
    let groups: Vec<::redis::Value> = ::redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(broker.stream_key(&a))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(groups.is_empty(), "no consumer group: {groups:?}");
    let exists: u32 = ::redis::cmd("EXISTS")
        .arg(broker.stream_key(&b))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "no stream made for a topic without messages");
    obs.unsubscribe().await.unwrap();
    redis::delete_streams(&broker, &prefix).await;
}

#[tokio::test]
async fn redis_unreachable_server_is_a_clear_error() {
    brokers::unreachable_url_is_a_clear_error("redis").await;
}

/// A broker on the test's own server, quick to notice it is gone (2 s
/// timeouts).
async fn own_broker(server: &brokers::OwnServer) -> choreo_runtime::SharedBroker {
    let url = format!("redis://127.0.0.1:{}", server.port);
    let options = RedisOptions {
        response_timeout: Duration::from_secs(2),
        ..redis::options()
    };
    RedisBroker::connect_with(&url, options)
        .await
        .unwrap()
        .into_shared()
}
