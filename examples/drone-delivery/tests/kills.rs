//! One process per participant on NATS and on Redis, the books in
//! PostgreSQL (`--db`): participants killed with SIGKILL while deliveries
//! are under way, twice each, and started again. Every delivery settles,
//! and the books, read back from PostgreSQL by the services as they stop,
//! are exact: no drone ever held or flown for two deliveries at once,
//! every drone free, every package delivered, deleted or rejected once,
//! delivery by delivery as the delivery service recorded it, and in the
//! numbers of the driver's summary.
//!
//! What a killed participant held comes back after the broker's ack wait
//! (30 s): a run lasts about 40 s. The services' claim lease is 10 s
//! ([`CLAIM_LEASE`]), shorter than the ack wait. Skipped without the
//! servers (unless `CHOREO_REQUIRE_BROKERS=1`).
#![allow(clippy::unwrap_used)]

use choreo_runtime::sync::Recover;
use drone_delivery::books::{Books, DroneBooks};
use drone_delivery::delivery::Deliveries;
use drone_delivery::flight::Flights;
use drone_delivery::system::{FinalState, PARTICIPANTS};
use drone_delivery::verify::{check_books, Endings};
use example_support::testing::{
    broker_available, delete_nats_stream, delete_redis_keys, drop_books, spawn_until_ready,
    unique_prefix, ServiceProcess, NATS_URL, POSTGRES_URL, REDIS_URL,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_drone-delivery");
const DRONES: usize = 12;
const FLIGHT_MS: u64 = 300;
const N: usize = 150;
const READY: &str = "\"ready\":true";

/// The services' claim lease, in seconds: shorter than the ack wait, so
/// that an event held by a killed process is taken over when it comes
/// again (after 30 s) rather than after the runtime's default lease (60
/// s), which would double the tail of each run.
const CLAIM_LEASE: &str = "10";

/// Deletes what a test left on its servers (streams or keys, stores,
/// books), passed or failed.
struct Cleanup {
    broker: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Runtime::new() {
            rt.block_on(async {
                if self.broker.starts_with("nats") {
                    delete_nats_stream(&self.broker, &self.prefix).await;
                } else {
                    delete_redis_keys(&self.broker, &self.prefix).await;
                }
                drop_books(POSTGRES_URL, &self.prefix).await;
            });
        }
    }
}

/// The books of the test's deployment, read as the test goes.
struct Watch {
    rt: tokio::runtime::Runtime,
    db: DroneBooks,
    deliveries: Deliveries,
    flights: Flights,
}

impl Watch {
    fn open(prefix: &str) -> Watch {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let db = rt.block_on(async {
            let books = Books::connect(POSTGRES_URL, prefix).await.unwrap();
            DroneBooks::open(books).await.unwrap()
        });
        Watch {
            rt,
            db: db.clone(),
            deliveries: Deliveries::with_books(Duration::from_secs(1), db.clone()),
            flights: Flights::with_books(
                Duration::from_millis(FLIGHT_MS),
                Duration::from_secs(1),
                db,
            ),
        }
    }

    /// What the books hold of the deliveries the driver's summary says did
    /// not settle (`not settled: <key>` or `<key>: events …`).
    fn unsettled(&self, summary: &str) -> String {
        let mut out = String::new();
        for line in summary.lines() {
            let key = line
                .strip_prefix("not settled: ")
                .or_else(|| line.split_once(": events").map(|(k, _)| k));
            let Some(key) = key else { continue };
            if out.contains(key) {
                continue;
            }
            out.push_str(&format!("{key}:\n"));
            match self.rt.block_on(self.db.of_delivery(key)) {
                Ok(rows) => rows.iter().for_each(|r| out.push_str(&format!("  {r}\n"))),
                Err(e) => out.push_str(&format!("  (books unreadable: {e})\n")),
            }
        }
        out
    }

    /// Waits (up to 30 s) until `name` surely holds deliveries it has not
    /// acknowledged: deliveries are under way, and for Flight a drone is
    /// in the air (its course event is held until it lands). Returns what
    /// was under way.
    fn until_busy(&self, name: &str) -> (usize, usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let open = self
                .rt
                .block_on(self.deliveries.books_report())
                .unwrap()
                .open;
            let in_air = self.rt.block_on(self.flights.books_stats()).unwrap().in_air;
            if open >= 3 && (name != "Flight" || in_air >= 1) {
                return (open, in_air);
            }
            assert!(
                Instant::now() < deadline,
                "{name}: nothing under way to kill it in (open {open}, in the air {in_air})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One deployment at a time: seven processes with a pool of connections
/// each come close to PostgreSQL's default of 100 connections, and the
/// machine's CPUs to their end.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a deployment on `broker` with its books in PostgreSQL, kills each
/// group of `groups` (a couple of participants at a time) with SIGKILL
/// twice while deliveries are under way, restarting it each time, and
/// checks that every delivery settles and the books are exact.
fn killed_mid_run(broker: &str, groups: &[&[&str]]) {
    let _turn = ONE_AT_A_TIME.locked();
    let prefix = unique_prefix();
    let _clean = Cleanup {
        broker: broker.to_string(),
        prefix: prefix.clone(),
    };
    let (drones, flight_ms) = (DRONES.to_string(), FLIGHT_MS.to_string());
    let common = [
        "--broker",
        broker,
        "--prefix",
        &prefix,
        "--db",
        POSTGRES_URL,
        "--drones",
        &drones,
        "--seed",
        "5",
        "--flight-ms",
        &flight_ms,
        "--claim-lease",
        CLAIM_LEASE,
    ];
    let mut services = spawn_until_ready(
        Path::new(BIN),
        &PARTICIPANTS,
        &common,
        READY,
        Duration::from_secs(60),
    )
    .unwrap();
    for s in &services {
        let out = s.stdout_so_far();
        assert!(out.contains("books: PostgreSQL"), "{}: {out}", s.name());
        assert!(!out.contains("postgres@"), "{}: {out}", s.name());
    }
    let watch = Watch::open(&prefix);
    let n = N.to_string();
    let mut args = common.to_vec();
    args.extend([
        "--service",
        "ingress",
        "--deliveries",
        &n,
        "--concurrency",
        "30",
        "--cancel-share",
        "0.3",
        "--reschedule-share",
        "0.3",
        // Gives up before the test does, to print what did not settle.
        "--timeout",
        "150",
    ]);
    let driver = ServiceProcess::spawn("ingress", Path::new(BIN), &args).unwrap();
    let mut killed: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..2 {
        for group in groups {
            for name in *group {
                let busy = watch.until_busy(name);
                let at = services.iter().position(|s| s.name() == *name).unwrap();
                let done = services.swap_remove(at).kill().unwrap();
                assert!(!done.success, "{name} was killed, not stopped");
                println!("round {round}: killed {name} with {busy:?} (open, in the air)");
                *killed.entry(name).or_default() += 1;
            }
            std::thread::sleep(Duration::from_millis(300));
            services.extend(
                spawn_until_ready(
                    Path::new(BIN),
                    group,
                    &common,
                    READY,
                    Duration::from_secs(60),
                )
                .unwrap_or_else(|e| panic!("restart {round} of {group:?}: {e}")),
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let done = driver.wait(Duration::from_secs(220)).unwrap();
    println!("{}\n{}", done.stdout, done.stderr);
    assert!(
        done.success,
        "{}\n{}\nthe books of what did not settle:\n{}",
        done.stdout,
        done.stderr,
        watch.unsettled(&done.stdout)
    );
    let text = done.stdout.trim_end();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with(&format!("settled {N}/{N}: ")), "{last}");
    assert!(killed.values().all(|k| *k >= 2), "{killed:?}");
    // Nothing dead-lettered but commands that came too late: no event
    // lost to a crash, no decision refused on its redelivery.
    let endings = Endings::parse(text).unwrap();

    // Stopped as a supervisor stops them: each prints its books, read
    // back from PostgreSQL.
    let mut states = BTreeMap::new();
    for p in services {
        let name = p.name().to_string();
        let stopped = p.stop(Duration::from_secs(30)).unwrap();
        assert!(stopped.success, "{name}: {}", stopped.stderr);
        let last = stopped
            .stdout
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .to_string();
        let state: FinalState = serde_json::from_str(&last).unwrap();
        states.insert(state.service.clone(), state.state);
    }
    let problems = check_books(N, DRONES, &endings, &states);
    assert!(problems.is_empty(), "{problems:#?}\n{text}");
}

/// The participant with a join (`on CreatePackage & PackageCreated`):
/// Delivery.
const JOINS: [&[&str]; 1] = [&["Delivery"]];

/// Every participant, a couple at a time.
const ALL: [&[&str]; 3] = [
    &["Ingestion", "Flight"],
    &["Package", "Delivery"],
    &["DroneScheduler", "Notifications"],
];

#[test]
fn the_join_participant_killed_mid_run_loses_no_delivery_on_nats() {
    if broker_available(NATS_URL) && broker_available(POSTGRES_URL) {
        killed_mid_run(NATS_URL, &JOINS);
    }
}

#[test]
fn the_join_participant_killed_mid_run_loses_no_delivery_on_redis() {
    if broker_available(REDIS_URL) && broker_available(POSTGRES_URL) {
        killed_mid_run(REDIS_URL, &JOINS);
    }
}

#[test]
fn every_participant_killed_mid_run_loses_no_delivery_on_nats() {
    if broker_available(NATS_URL) && broker_available(POSTGRES_URL) {
        killed_mid_run(NATS_URL, &ALL);
    }
}

#[test]
fn every_participant_killed_mid_run_loses_no_delivery_on_redis() {
    if broker_available(REDIS_URL) && broker_available(POSTGRES_URL) {
        killed_mid_run(REDIS_URL, &ALL);
    }
}
