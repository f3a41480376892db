//! The cases of the conformance suite. Each takes a fresh broker and a
//! unique prefix, and panics on a broken guarantee.

use crate::sync::Recover;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{CaseContext, Outcome};
use crate::broker::{
    dead_letter_topic, Backoff, BrokerError, Delivery, Health, ObserveOptions, SharedBroker,
    StartPosition, SubscribeOptions, Subscription, DLQ_ATTEMPTS, DLQ_GROUP, DLQ_REASON,
};
use crate::envelope::{json, Envelope, SharedStr, TraceParent};
use crate::payload::Message;
use crate::store::{Claim, InboxStore, MemoryInbox};

mod delivery;
mod duplicates;
mod lifecycle;
mod observe;
mod order;
mod publishing;
mod redelivery;
mod subscriptions;

pub use delivery::*;
pub use duplicates::*;
pub use lifecycle::*;
pub use observe::*;
pub use order::*;
pub use publishing::*;
pub use redelivery::*;
pub use subscriptions::*;

/// The payload every case publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// A sequence number within the case.
    pub n: u64,
    /// Free text (with characters that need escaping).
    pub note: String,
}

impl Message for Probe {
    const TYPE: &'static str = "Conformance.Probe";
}

/// How long an "eventually" may take on a loaded machine.
const EVENTUALLY: Duration = Duration::from_secs(20);
/// How long to watch for something that must not arrive.
const QUIET: Duration = Duration::from_millis(300);

fn probe(key: &str, n: u64) -> Envelope {
    Envelope::of(
        key.to_owned(),
        Probe {
            n,
            note: format!("probe {n} \"é\""),
        },
    )
    .source("conformance")
    .build()
}

fn n_of(d: &Delivery) -> u64 {
    d.envelope()
        .decode::<Probe>()
        .expect("probe payload decodes")
        .n
}

/// Quick redelivery so cases do not wait on defaults.
fn options(group: String, topics: Vec<String>) -> SubscribeOptions {
    let mut o = SubscribeOptions::new(group, topics);
    o.ack_wait = Duration::from_secs(2);
    o.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        jitter: 0.0,
    };
    o
}

async fn subscribe(broker: &SharedBroker, o: SubscribeOptions) -> Box<dyn Subscription> {
    broker.subscribe(o).await.expect("subscribe")
}

async fn publish(broker: &SharedBroker, topic: &str, env: Envelope) {
    broker.publish(topic, env).await.expect("publish");
}

/// What arrives within `within` (possibly nothing).
async fn recv(sub: &mut Box<dyn Subscription>, max: usize, within: Duration) -> Vec<Delivery> {
    match tokio::time::timeout(within, sub.next_batch(max)).await {
        Ok(r) => r.expect("next_batch").unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Exactly `n` deliveries (fails if they do not come in time).
async fn recv_n(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + EVENTUALLY;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "got {} of {n} deliveries in {EVENTUALLY:?}",
            out.len()
        );
        out.extend(recv(sub, n - out.len(), left).await);
    }
    out
}

async fn ack_all(ds: Vec<Delivery>) {
    crate::broker::settle_all(ds.into_iter().map(|d| (d, crate::broker::Settlement::Ack)))
        .await
        .expect("ack");
}

async fn observe(
    broker: &SharedBroker,
    topics: &[&String],
    start: StartPosition,
) -> Box<dyn Subscription> {
    let mut o = ObserveOptions::new(topics.iter().map(|t| t.as_str()));
    o.start = start;
    broker.observe(o).await.expect("observe")
}

/// The probe numbers of `ds` on `topic`, in the order they came.
fn ns_on(ds: &[Delivery], topic: &str) -> Vec<u64> {
    ds.iter()
        .filter(|d| d.topic().as_str() == topic)
        .map(n_of)
        .collect()
}

/// Exactly `n` deliveries, then nothing more for a while.
async fn recv_exactly(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Delivery> {
    let got = recv_n(sub, n).await;
    let more = recv(sub, 10, QUIET).await;
    assert!(
        more.is_empty(),
        "more than {n} deliveries: also {:?}",
        more.iter().map(n_of).collect::<Vec<_>>()
    );
    got
}

/// Acks whatever `sub` delivers until every probe number of `want` has
/// come (fails if they do not come in time); what came, each as (number,
/// topic, attempt), in the order it came.
async fn collect_until(
    sub: &mut Box<dyn Subscription>,
    want: &HashSet<u64>,
) -> Vec<(u64, String, u32)> {
    let deadline = Instant::now() + EVENTUALLY;
    let mut got = Vec::new();
    let mut seen = HashSet::new();
    while !want.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "missing after {EVENTUALLY:?}: {:?}",
            sorted(want.difference(&seen).copied())
        );
        let batch = recv(sub, 256, left).await;
        for d in &batch {
            seen.insert(n_of(d));
            got.push((n_of(d), d.topic().to_string(), d.attempt()));
        }
        ack_all(batch).await;
    }
    got
}

fn sorted(ns: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = ns.into_iter().collect();
    v.sort_unstable();
    v
}
