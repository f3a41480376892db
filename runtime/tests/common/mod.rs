//! Shared helpers of the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod brokers;
pub mod proxy;

use std::time::Duration;

use choreo_runtime::broker::{SharedBroker, SubscribeOptions, Subscription};
use choreo_runtime::service::{
    Client, ServiceDefinition, ServiceHandle, ServiceOptions, Stores, Topics,
};
use choreo_runtime::{Delivery, Message};
use serde::{Deserialize, Serialize};

/// How long an "eventually" may take on a loaded machine.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub amount: u64,
}
impl Message for OrderPlaced {
    const TYPE: &'static str = "Shop.OrderPlaced";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReserved {
    pub reservation: u64,
}
impl Message for StockReserved {
    const TYPE: &'static str = "Shop.StockReserved";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentApproved {
    pub amount: u64,
}
impl Message for PaymentApproved {
    const TYPE: &'static str = "Shop.PaymentApproved";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentScheduled {
    pub reservation: u64,
}
impl Message for ShipmentScheduled {
    const TYPE: &'static str = "Shop.ShipmentScheduled";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCompleted {}
impl Message for OrderCompleted {
    const TYPE: &'static str = "Shop.OrderCompleted";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderFailed {
    pub reason: String,
}
impl Message for OrderFailed {
    const TYPE: &'static str = "Shop.OrderFailed";
}

/// Polls `cond` until it holds (fails the test after [`EVENTUALLY`]).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A reader of a (dead-letter) topic.
pub async fn reader(broker: &SharedBroker, group: &str, topic: &str) -> Box<dyn Subscription> {
    broker
        .subscribe(SubscribeOptions::new(group, [topic]))
        .await
        .unwrap()
}

/// The next delivery on `sub`, acked.
pub async fn next(sub: &mut Box<dyn Subscription>) -> choreo_runtime::Envelope {
    let mut batch = tokio::time::timeout(EVENTUALLY, sub.next_batch(1))
        .await
        .expect("a delivery in time")
        .unwrap()
        .expect("subscription open");
    let d: Delivery = batch.remove(0);
    let env = d.envelope().clone();
    d.ack().await.unwrap();
    env
}

/// Starts `def` on `broker` with memory stores and default options.
pub async fn start(broker: &SharedBroker, def: ServiceDefinition) -> ServiceHandle {
    def.start(broker.clone(), Stores::memory(), ServiceOptions::default())
        .await
        .unwrap()
}

/// A client sending without a topic prefix.
pub fn client(broker: &SharedBroker) -> Client {
    Client::new(broker.clone(), Topics::default(), "test")
}

/// Whether every server the tests use must be there
/// (`CHOREO_REQUIRE_BROKERS=1`, as `.ci/run` sets it).
pub fn servers_required() -> bool {
    std::env::var("CHOREO_REQUIRE_BROKERS").as_deref() == Ok("1")
}

/// A server (or server binary) a test needs is missing: fails the test
/// when [`servers_required`], else says that the test skips. Every skip
/// of these tests comes here.
///
/// The line goes to the process's standard error itself, not through
/// `eprintln!`: the test harness captures what the print macros write and
/// shows it only for a test that fails, and a skipped test passes. URLs
/// in it show no credentials.
pub fn server_missing(what: &str, error: &dyn std::fmt::Display) {
    let (what, error) = (masked(what), masked(&error.to_string()));
    if servers_required() {
        panic!("{what} required (CHOREO_REQUIRE_BROKERS=1) but unavailable: {error}");
    }
    // libtest runs each test on a thread named after it.
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map_or_else(|| "a test".to_owned(), str::to_owned);
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {what} unavailable ({error}) (set CHOREO_REQUIRE_BROKERS=1 to fail instead)"
    );
}

/// `text` with the credentials of every URL in it masked
/// ([`choreo_runtime::secret::redact`]).
fn masked(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.find("://") {
            Some(at) if word.contains('@') => {
                // The URL starts with its scheme.
                let start = word[..at]
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
                    .map_or(0, |i| i + 1);
                format!(
                    "{}{}",
                    &word[..start],
                    choreo_runtime::secret::redact(&word[start..])
                )
            }
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
