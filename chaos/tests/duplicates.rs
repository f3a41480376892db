//! A burst of duplicates against a server that is down ends within its
//! bound. Its own test binary: the tests that start servers in one binary
//! run side by side, and two clusters and this server starting at once
//! compete for the two cores and for free ports. Skipped, loudly, where
//! nats-server is not installed (unless `CHOREO_REQUIRE_BROKERS=1`).
#![allow(clippy::unwrap_used)]

mod common;

use choreo_chaos::duplicates::Duplicator;
use choreo_chaos::servers::{jetstream_ready, nats_program, BrokerKind, Servers};
use common::{dir, installed, publish_all};
use std::time::{Duration, Instant};

/// The campaign that stalled for six minutes: a burst of duplicates drawn
/// while the server was down waited out every publish's acknowledgement
/// (5 s each), and the loop that restarts the server waited with it. The
/// burst now ends within its bound, having sent nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_for_a_server_that_is_down_end_within_their_bound() {
    if !installed(&nats_program()) {
        return;
    }
    let mut servers = Servers::start(BrokerKind::Nats, &dir("duplicates")).unwrap();
    assert!(jetstream_ready(&servers, 0, Duration::from_secs(30)).await);
    let url = servers.url();
    let broker = choreo_runtime::connect(&url).await.unwrap();
    publish_all(&broker, "d.Tick", 0..50).await;
    let duplicator = Duplicator::start(&url, vec!["d.Tick".into()], 7)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while duplicator.observed() < 50 {
        assert!(Instant::now() < deadline, "the duplicator saw no events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Up, the burst goes out.
    assert_eq!(duplicator.inject(10, Duration::from_secs(10)).await, 10);
    servers.kill(0);
    let began = Instant::now();
    let sent = duplicator.inject(80, Duration::from_secs(2)).await;
    let took = began.elapsed();
    assert_eq!(sent, 0, "nothing can be published to a server that is down");
    // Before the bound, this took 80 acknowledgement timeouts: 400 s.
    assert!(
        took < Duration::from_secs(10),
        "the burst took {took:?}, past its bound of 2 s"
    );
}
