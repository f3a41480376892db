//! The NATS JetStream adapter against a real server: the conformance suite
//! on the shared server (127.0.0.1:4222), a restart of a server of the
//! test's own in the middle of a stream of publishes, a durable consumer
//! that was offline, a message that is not an envelope, a bad URL.
//!
//! Without a reachable server (or the `nats-server` binary) these tests
//! skip with a message, unless `CHOREO_REQUIRE_BROKERS=1`, when they fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use choreo_runtime::broker::{IntoSharedBroker, NatsBroker, NatsOptions};
use choreo_runtime::SharedBroker;
use common::brokers::{self, nats};

choreo_runtime::conformance_suite!(nats_conformance, if_available: async {
    crate::nats::shared().await.map(|b| -> choreo_runtime::SharedBroker { std::sync::Arc::new(b) })
});

#[tokio::test]
async fn nats_restart_mid_stream_loses_no_confirmed_publish() {
    let Some(mut server) = nats::own_server() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.port);
    let options = NatsOptions {
        request_timeout: Duration::from_secs(2),
        ..nats::options()
    };
    let broker = NatsBroker::connect_with(&url, options).await.unwrap();
    brokers::restart_mid_stream(&mut server, broker.into_shared(), "restart.events").await;
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

#[tokio::test]
async fn nats_message_that_is_not_an_envelope_is_dead_lettered() {
    let Some(broker) = nats::shared().await else {
        return;
    };
    let topic = format!("{}.raw", brokers::test_prefix());
    let js = broker.jetstream().clone();
    let shared: SharedBroker = broker.clone().into_shared();
    let t = topic.clone();
    brokers::undecodable_is_dead_lettered(shared, &topic, async move {
        js.publish(t, brokers::RAW.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    })
    .await;
    nats::delete_stream(&broker, &topic).await;
}

#[tokio::test]
async fn nats_unreachable_server_is_a_clear_error() {
    brokers::unreachable_url_is_a_clear_error("nats").await;
}
