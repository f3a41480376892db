//! The NATS JetStream adapter against a real server: the conformance suite
//! on the shared server (127.0.0.1:4222), a restart of a server of the
//! test's own in the middle of a stream of publishes (once, and twice
//! under publishers that retry, with the broker's health), a durable consumer
//! that was offline, a message that is not an envelope, a bad URL.
//!
//! Without a reachable server (or the `nats-server` binary) these tests
//! skip with a message, unless `CHOREO_REQUIRE_BROKERS=1`, when they fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use choreo_runtime::broker::{IntoSharedBroker, NatsBroker, NatsOptions, ObserveOptions};
use choreo_runtime::{Envelope, SharedBroker, SubscribeOptions};
use common::brokers::{self, nats};

choreo_runtime::conformance_suite!(nats_conformance, if_available: async {
    crate::nats::shared().await.map(|b| -> choreo_runtime::SharedBroker { std::sync::Arc::new(b) })
});

#[tokio::test]
async fn nats_restart_mid_stream_loses_no_confirmed_publish() {
    let Some(mut server) = nats::own_server() else {
        return;
    };
    let broker = own_broker(&server).await;
    brokers::restart_mid_stream(&mut server, broker, "restart.events").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_two_restarts_lose_no_publish_retried_until_confirmed() {
    let Some(mut server) = nats::own_server() else {
        return;
    };
    let broker = own_broker(&server).await;
    brokers::restarts_with_retrying_publishers(&mut server, broker, "restart.events").await;
}

#[tokio::test]
async fn nats_offline_durable_consumer_gets_what_it_missed() {
    let Some(admin) = nats::shared().await else {
        return;
    };
    let prefix = brokers::test_prefix();
    brokers::offline_consumer_catches_up(
        || async { nats::shared().await.unwrap().into_shared() },
        &prefix,
    )
    .await;
    nats::delete_stream(&admin, &prefix).await;
}

/// A message that is not an envelope, published with the plain client,
/// as `observer` (skipped) or a group (dead-lettered) meets it.
async fn not_an_envelope(observer: bool) {
    let Some(broker) = nats::shared().await else {
        return;
    };
    let topic = format!("{}.raw", brokers::test_prefix());
    let js = broker.jetstream().clone();
    let shared: SharedBroker = broker.clone().into_shared();
    let t = topic.clone();
    let publish = async move {
        js.publish(t, brokers::RAW.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    };
    if observer {
        brokers::observer_skips_undecodable(shared, &topic, publish).await;
    } else {
        brokers::undecodable_is_dead_lettered(shared, &topic, publish).await;
    }
    nats::delete_stream(&broker, &topic).await;
}

#[tokio::test]
async fn nats_message_that_is_not_an_envelope_is_dead_lettered() {
    not_an_envelope(false).await;
}

#[tokio::test]
async fn nats_observer_skips_a_message_that_is_not_an_envelope() {
    not_an_envelope(true).await;
}

/// An observer is an ephemeral consumer per topic, gone once it is
/// unsubscribed or dropped.
#[tokio::test]
async fn nats_observer_leaves_no_consumer_behind() {
    let Some(broker) = nats::shared().await else {
        return;
    };
    let prefix = brokers::test_prefix();
    let (a, b) = (format!("{prefix}.a"), format!("{prefix}.b"));
    let shared: SharedBroker = broker.clone().into_shared();
    let _group = shared
        .subscribe(SubscribeOptions::new(format!("{prefix}-g"), [a.clone()]))
        .await
        .unwrap();
    let consumers = || async {
        let stream = broker
            .jetstream()
            .get_stream(NatsBroker::stream_name(&a))
            .await
            .unwrap();
        stream.cached_info().state.consumer_count
    };
    let before = consumers().await;
    assert_eq!(before, 1, "the group's");
    let options = ObserveOptions::new([a.clone(), b.clone()]);
    let mut obs = shared.observe(options.clone()).await.unwrap();
    assert_eq!(consumers().await, before + 2, "one per topic");
    shared
        .publish(&b, Envelope::builder("T", "k").build())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), obs.next_batch(10))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    obs.unsubscribe().await.unwrap();
    assert_eq!(consumers().await, before, "unsubscribing deletes them");
    // Dropped without unsubscribing: deleted in the background.
    drop(shared.observe(options).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while consumers().await != before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a dropped observer's consumers stay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nats::delete_stream(&broker, &a).await;
}

#[tokio::test]
async fn nats_unreachable_server_is_a_clear_error() {
    brokers::unreachable_url_is_a_clear_error("nats").await;
}

/// A broker on the test's own server, quick to notice it is gone (2 s
/// timeouts).
async fn own_broker(server: &brokers::OwnServer) -> choreo_runtime::SharedBroker {
    let url = format!("nats://127.0.0.1:{}", server.port);
    let options = NatsOptions {
        request_timeout: Duration::from_secs(2),
        ..nats::options()
    };
    NatsBroker::connect_with(&url, options)
        .await
        .unwrap()
        .into_shared()
}
