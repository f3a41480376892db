//! The monitor the same on NATS and Redis as on memory: started after the
//! fact, it rebuilds from `Since` back what the broker holds (an instance
//! begun before that is partial), then follows live. (That an observer
//! takes nothing from consumer groups is the runtime's conformance suite.)
//!
//! Needs NATS with JetStream on 127.0.0.1:4222 and Redis on 6379; skips
//! with a message without them, unless `CHOREO_REQUIRE_BROKERS=1`.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use choreo_monitor::{Flow, InstanceState, Monitor, MonitorOptions};
use choreo_runtime::broker::{connect, StartPosition};
use choreo_runtime::service::Topics;
use common::{spec, Publisher};

/// Whether something answers at `hostport`; when nothing does, the test
/// skips (or fails, with `CHOREO_REQUIRE_BROKERS=1`). The one skip of this
/// crate's tests: `example_support::testing::skip`, which the other crates
/// share, is out of reach (example-support depends on this crate).
///
/// The line goes to the process's standard error itself, not through
/// `eprintln!`: the test harness captures what the print macros write and
/// shows it only for a test that fails, and a skipped test passes.
fn available(hostport: &str) -> bool {
    let up = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok());
    if !up {
        let required = std::env::var("CHOREO_REQUIRE_BROKERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "nothing answers at {hostport}, and CHOREO_REQUIRE_BROKERS=1 requires it"
        );
        // libtest runs each test on a thread named after it.
        let test = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map_or_else(|| "a test".to_owned(), str::to_owned);
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED {test}: nothing answers at {hostport} (set CHOREO_REQUIRE_BROKERS=1 to fail instead)"
        );
    }
    up
}

async fn until(monitor: &Monitor, what: &str, ok: impl Fn(&Monitor) -> bool) {
    let started = Instant::now();
    while !ok(monitor) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {:#?}",
            monitor.instances(None, 10)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn state(monitor: &Monitor, key: &str) -> Option<InstanceState> {
    monitor.instance(key).map(|v| v.state)
}

async fn rebuilds_then_follows(url: &str) {
    let broker = connect(url).await.unwrap();
    // A prefix the runtime's broker tests sweep when left over.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let topics = Topics::new(format!(
        "choreotest-mon{:x}{nanos:08x}.",
        std::process::id()
    ));
    let shop = Publisher {
        broker: broker.clone(),
        flow: Flow::new(&spec()),
        topics: topics.clone(),
    };
    // `early` starts before the monitor's `since`; `done` and `open` after.
    shop.command("early").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    shop.rest("early", true).await;
    shop.order("done", true).await;
    shop.order("open", false).await;

    let options = MonitorOptions {
        topics: topics.clone(),
        start: StartPosition::Since(since),
        ..MonitorOptions::default()
    };
    let monitor = Monitor::start(shop.flow.clone(), broker.clone(), options)
        .await
        .unwrap();
    until(&monitor, "rebuilt", |m| {
        state(m, "done") == Some(InstanceState::Succeeded)
            && state(m, "open") == Some(InstanceState::Running)
            && m.instance("early").is_some_and(|v| v.events.len() == 2)
    })
    .await;
    // Its command was before `since`: partial, never violated.
    assert_eq!(state(&monitor, "early"), Some(InstanceState::Partial));
    let open = monitor.instance("open").unwrap();
    assert_eq!(open.waiting[0].participant, "Orders");
    assert_eq!(open.waiting[0].events, ["OrderPlaced"]);

    // Live: `open` completes, a new order comes and goes.
    let id = |s: &str| format!("open-{s}");
    shop.handled("open", (&id("p"), "OrderPlaced"), (&id("d"), "Completed"))
        .await;
    shop.event("open", "Completed", &id("d"), Some(&id("p")))
        .await;
    shop.order("later", true).await;
    until(&monitor, "followed live", |m| {
        state(m, "open") == Some(InstanceState::Succeeded)
            && state(m, "later") == Some(InstanceState::Succeeded)
    })
    .await;
    let s = monitor.summary();
    assert_eq!(s.instances["succeeded"], 3, "{s:#?}");
    assert_eq!(s.instances["partial"], 1, "{s:#?}");
    assert_eq!(s.instances["violated"], 0, "{s:#?}");
    // `early`'s command came before `since`: not seen.
    assert_eq!(s.events["PlaceOrder"], 3, "{s:#?}");
    monitor.shutdown().await;
    broker.close(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn on_nats_the_monitor_rebuilds_from_since_then_follows_live() {
    if available("127.0.0.1:4222") {
        rebuilds_then_follows("nats://127.0.0.1:4222").await;
    }
}

#[tokio::test]
async fn on_redis_the_monitor_rebuilds_from_since_then_follows_live() {
    if available("127.0.0.1:6379") {
        rebuilds_then_follows("redis://127.0.0.1:6379").await;
    }
}
