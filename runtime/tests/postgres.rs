//! The PostgreSQL stores against the server on 127.0.0.1:5432.
//!
//! Without a reachable server these tests skip with a message, unless
//! `CHOREO_REQUIRE_BROKERS=1`, when they fail. Each test works under its own
//! table prefix, so runs may overlap.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use choreo_runtime::broker::IntoSharedBroker;
use choreo_runtime::service::{Emit, Reaction, ServiceDefinition, ServiceOptions, Trigger};
use choreo_runtime::store::{Claim, Firings, InboxStore, PgStores, StateStore};
use choreo_runtime::{Envelope, EventId, MemoryBroker, Message, SharedBroker};
use common::*;

const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5";

/// Stores under a fresh prefix, or `None` (skip) when no server answers.
async fn stores() -> Option<(PgStores, String)> {
    let prefix = format!("t{:012x}_", fastrand::u64(..) >> 16);
    match PgStores::connect(SERVER, &prefix).await {
        Ok(s) => Some((s, prefix)),
        Err(e) => {
            server_missing("PostgreSQL on 127.0.0.1:5432", &e);
            None
        }
    }
}

#[tokio::test]
async fn postgres_inbox_claims_complete_release_and_lapse() {
    let Some((pg, prefix)) = stores().await else {
        return;
    };
    let inbox = pg.inbox();
    let (a, b) = (EventId::now(), EventId::from("text-id é"));
    let lease = Duration::from_secs(30);
    assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Acquired);
    assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Busy);
    assert_eq!(
        inbox.claim("other", &a, lease).await.unwrap(),
        Claim::Acquired
    );
    inbox.complete("s", &a).await.unwrap();
    assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Done);
    assert_eq!(inbox.claim("s", &b, lease).await.unwrap(), Claim::Acquired);
    inbox.release("s", &b).await.unwrap();
    assert_eq!(
        inbox
            .claim("s", &b, Duration::from_millis(50))
            .await
            .unwrap(),
        Claim::Acquired
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        inbox.claim("s", &b, lease).await.unwrap(),
        Claim::Acquired,
        "a lapsed claim is taken over"
    );
    // Releasing a completed id changes nothing.
    inbox.release("s", &a).await.unwrap();
    assert_eq!(inbox.claim("s", &a, lease).await.unwrap(), Claim::Done);
    // A batch: a repeat within it is Busy, a handled id Done.
    let c = EventId::now();
    let claims = inbox
        .claim_many("s", &[c.clone(), a.clone(), c.clone()], lease)
        .await
        .unwrap();
    assert_eq!(claims, [Claim::Acquired, Claim::Done, Claim::Busy]);
    inbox
        .complete_many("s", &[c.clone(), c.clone()])
        .await
        .unwrap();
    assert_eq!(inbox.claim("s", &c, lease).await.unwrap(), Claim::Done);
    pg.drop_tables(&prefix).await.unwrap();
}

#[tokio::test]
async fn postgres_concurrent_claims_have_one_winner() {
    let Some((pg, prefix)) = stores().await else {
        return;
    };
    let id = EventId::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let inbox = pg.inbox();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            inbox
                .claim("s", &id, Duration::from_secs(30))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap() == Claim::Acquired {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    pg.drop_tables(&prefix).await.unwrap();
}

#[tokio::test]
async fn postgres_join_slots_and_counters_survive_a_new_connection() {
    let Some((pg, prefix)) = stores().await else {
        return;
    };
    let state = pg.state();
    let a = Envelope::of("k", PaymentApproved { amount: 3 })
        .causation_id("c-1")
        .extension("tenant", "acme")
        .unwrap()
        .build();
    let b = Envelope::of("k", StockReserved { reservation: 9 }).build();
    assert_eq!(state.join_arrive("j", "k", 1, 2, &b).await.unwrap(), None);
    assert_eq!(state.record_firing("j", "k", "f1").await.unwrap(), 1);
    // A restart: a new pool on the same tables.
    let again = PgStores::connect(SERVER, &prefix).await.unwrap().state();
    let other = Envelope::of("k", StockReserved { reservation: 10 }).build();
    assert_eq!(
        again.join_arrive("j", "k", 1, 2, &other).await.unwrap(),
        None,
        "first arrival stays"
    );
    let all = again
        .join_arrive("j", "k", 0, 2, &a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all[0], a);
    assert_eq!(all[1], b);
    assert_eq!(all[0].decode::<PaymentApproved>().unwrap().amount, 3);
    assert_eq!(
        again.firings("j", "k", "f1").await.unwrap(),
        Firings {
            count: 1,
            counted: true
        }
    );
    assert_eq!(again.record_firing("j", "k", "f1").await.unwrap(), 1);
    assert_eq!(again.record_firing("j", "k", "f2").await.unwrap(), 2);
    assert_eq!(
        again.firings("j", "other", "f1").await.unwrap(),
        Firings::default()
    );
    pg.drop_tables(&prefix).await.unwrap();
}

/// Counters written before the stores kept their firings go on from
/// their count, and count each new firing once.
#[tokio::test]
async fn postgres_counters_made_before_firings_were_kept_go_on() {
    let Some((pg, prefix)) = stores().await else {
        return;
    };
    pg.drop_tables(&prefix).await.unwrap();
    let (client, connection) = tokio_postgres::connect(SERVER, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE TABLE {prefix}fired (scope text NOT NULL, instance text NOT NULL, \
             count bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (scope, instance)); \
             INSERT INTO {prefix}fired (scope, instance, count) VALUES ('b', 'k', 2)"
        ))
        .await
        .unwrap();
    let state = PgStores::connect(SERVER, &prefix).await.unwrap().state();
    assert_eq!(
        state.firings("b", "k", "f").await.unwrap(),
        Firings {
            count: 2,
            counted: false
        }
    );
    assert_eq!(state.record_firing("b", "k", "f").await.unwrap(), 3);
    assert_eq!(state.record_firing("b", "k", "f").await.unwrap(), 3);
    pg.drop_tables(&prefix).await.unwrap();
}

/// Processes that start at once on a new prefix all make their tables:
/// two `CREATE TABLE IF NOT EXISTS` racing make the loser fail on the
/// catalogue (`type … already exists`), which stopped a chaos campaign's
/// participant before it was ready.
#[tokio::test]
async fn postgres_stores_started_at_once_all_make_their_tables() {
    let Some((pg, prefix)) = stores().await else {
        return;
    };
    pg.drop_tables(&prefix).await.unwrap();
    for round in 0..20 {
        let prefix = format!("{prefix}r{round}_");
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let prefix = prefix.clone();
                tokio::spawn(async move { PgStores::connect(SERVER, &prefix).await })
            })
            .collect();
        for start in starts {
            if let Err(e) = start.await.unwrap() {
                panic!("a store started at once with others failed: {e}");
            }
        }
        pg.drop_tables(&prefix).await.unwrap();
    }
}

#[tokio::test]
async fn postgres_stores_make_a_restarted_service_skip_what_it_handled() {
    let Some((pg, prefix)) = stores().await else {
        return;
    };
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let calls = Arc::new(Mutex::new(0u32));
    let def = |calls: Arc<Mutex<u32>>| {
        ServiceDefinition::new("Shop", "Payment").reaction(Reaction::new(
            "charge",
            Trigger::any([OrderPlaced::TYPE]),
            move |_ctx, input| {
                let calls = calls.clone();
                async move {
                    let o: OrderPlaced = input.decode()?;
                    *calls.lock().unwrap() += 1;
                    Ok(Emit::one(PaymentApproved { amount: o.amount }))
                }
            },
        ))
    };
    let client = client(&broker);
    let order = Envelope::of("order-1", OrderPlaced { amount: 4 }).build();
    let first = def(calls.clone())
        .start(broker.clone(), pg.stores(), ServiceOptions::default())
        .await
        .unwrap();
    client.send_envelope(order.clone()).await.unwrap();
    eventually("handled", || first.stats().handled == 1).await;
    first.shutdown().await.unwrap();
    // The process restarts: new pool, same database; the event comes again.
    let restarted = PgStores::connect(SERVER, &prefix).await.unwrap();
    let second = def(calls.clone())
        .start(
            broker.clone(),
            restarted.stores(),
            ServiceOptions::default(),
        )
        .await
        .unwrap();
    client.send_envelope(order.clone()).await.unwrap();
    eventually("the duplicate is settled", || {
        second.stats().duplicates == 1
    })
    .await;
    assert_eq!(*calls.lock().unwrap(), 1, "charged once across the restart");
    second.shutdown().await.unwrap();
    pg.drop_tables(&prefix).await.unwrap();
}

#[tokio::test]
async fn postgres_prefixes_are_checked() {
    // Needs no server: the prefix is refused before connecting.
    assert!(PgStores::connect(SERVER, "Robert'); DROP TABLE x;--")
        .await
        .is_err());
    assert!(PgStores::connect("not a = valid = string", "ok_")
        .await
        .is_err());
}
