//! The durable stores through an outage of their server: on servers of the
//! test's own (free loopback ports, own data directories), killed with
//! SIGKILL mid-run and started again. While the server is down every call
//! returns an error within a bounded time (never a panic, never a hang);
//! once it is back the same store object works again, and what was
//! written before the kill is still there.
//!
//! A missing server binary skips with a message, unless
//! `CHOREO_REQUIRE_BROKERS=1`, when it fails.
#![cfg(all(feature = "nats", feature = "redis", feature = "postgres"))]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use choreo_runtime::service::Stores;
use choreo_runtime::store::{Claim, StoreOptions};
use choreo_runtime::{Envelope, EventId};
use common::brokers::OwnServer;

/// The longest one call may take while its server is down.
const DOWN_CALL_LIMIT: Duration = Duration::from_secs(15);
const LEASE: Duration = Duration::from_secs(30);

/// One store call: whether it failed.
type Call<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>;

/// Every kind of call, while the server is down: each an error, in time.
async fn every_call_fails_in_time(s: &Stores) {
    let id = EventId::now();
    let env = Envelope::builder("T", "k").id("x").build();
    let calls: Vec<(&str, Call<'_>)> = vec![
        (
            "claim",
            Box::pin(async { s.inbox.claim("s", &id, LEASE).await.is_err() }),
        ),
        (
            "complete",
            Box::pin(async { s.inbox.complete("s", &id).await.is_err() }),
        ),
        (
            "release",
            Box::pin(async { s.inbox.release("s", &id).await.is_err() }),
        ),
        (
            "join",
            Box::pin(async { s.state.join_arrive("j", "k", 0, 2, &env).await.is_err() }),
        ),
        (
            "count",
            Box::pin(async { s.state.firings("b", "k", "f").await.is_err() }),
        ),
        (
            "record",
            Box::pin(async { s.state.record_firing("b", "k", "f").await.is_err() }),
        ),
    ];
    for (what, call) in calls {
        let failed = tokio::time::timeout(DOWN_CALL_LIMIT, call)
            .await
            .unwrap_or_else(|_| panic!("{what} hung with the server down ({})", s.description));
        assert!(
            failed,
            "{what} succeeded with the server down ({})",
            s.description
        );
    }
}

/// The stores at `url` once the server there is ready: a server listens a
/// moment before it serves (PostgreSQL "is starting up", JetStream is
/// being enabled).
async fn connect_when_ready(url: &str) -> Stores {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Stores::connect(url, &StoreOptions::with_prefix("outage.")).await {
            Ok(s) => return s,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the stores at {url} did not open within 30 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Kills `server` after some writes, checks the calls fail, restarts it,
/// and checks that the same stores come back with their state.
async fn outage(server: &mut OwnServer, s: Stores) {
    let done = EventId::now();
    assert_eq!(
        s.inbox.claim("s", &done, LEASE).await.unwrap(),
        Claim::Acquired
    );
    s.inbox.complete("s", &done).await.unwrap();
    s.state.record_firing("b", "k", "f").await.unwrap();

    server.kill();
    every_call_fails_in_time(&s).await;

    server.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match s.inbox.claim("s", &done, LEASE).await {
            Ok(claim) => {
                assert_eq!(claim, Claim::Done, "the done-mark survived the restart");
                break;
            }
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the stores did not come back within 60 s of the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    assert_eq!(s.state.firings("b", "k", "f").await.unwrap().count, 1);
    let fresh = EventId::now();
    assert_eq!(
        s.inbox.claim("s", &fresh, LEASE).await.unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn nats_kv_stores_fail_cleanly_while_nats_is_down_and_come_back() {
    let Some(mut server) = common::brokers::nats::own_server() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.port);
    let s = connect_when_ready(&url).await;
    outage(&mut server, s).await;
}

#[tokio::test]
async fn redis_stores_fail_cleanly_while_redis_is_down_and_come_back() {
    let Some(mut server) = common::brokers::redis::own_server() else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}", server.port);
    let s = connect_when_ready(&url).await;
    outage(&mut server, s).await;
}

#[tokio::test]
async fn postgres_stores_fail_cleanly_while_postgres_is_down_and_come_back() {
    let Some(mut server) = common::brokers::postgres::own_server() else {
        return;
    };
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let s = connect_when_ready(&url).await;
    outage(&mut server, s).await;
}
