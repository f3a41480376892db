//! The books in PostgreSQL, in one process: a flight in the air when its
//! service dies lands, or turns back, once a new service starts from the
//! same books. Skipped without a PostgreSQL server on loopback (unless
//! `CHOREO_REQUIRE_BROKERS=1`).
#![allow(clippy::unwrap_used)]

use choreo_runtime::broker::memory::MemoryBroker;
use choreo_runtime::service::{Client, ServiceOptions, Stores, Topics};
use choreo_runtime::types::Uuid;
use drone_delivery::books::{Books, DroneBooks};
use drone_delivery::drone_delivery::{
    flight, DeliveryCancelled, DeliveryScheduled, DroneArrived, Location,
};
use drone_delivery::flight::Flights;
use example_support::testing::{broker_available, drop_books, unique_prefix, POSTGRES_URL};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLIGHT: Duration = Duration::from_millis(1500);

fn at(latitude: f64) -> Location {
    Location {
        latitude,
        longitude: 0.0,
    }
}

fn scheduled(drone: &str) -> DeliveryScheduled {
    DeliveryScheduled {
        drone_id: drone.into(),
        pickup: at(1.0),
        dropoff: at(2.0),
        deadline: "2030-01-01T00:00:00Z".parse().unwrap(),
    }
}

async fn flights(prefix: &str) -> Flights {
    let books = Books::connect(POSTGRES_URL, prefix).await.unwrap();
    let db = DroneBooks::open(books).await.unwrap();
    Flights::with_books(FLIGHT, Duration::from_secs(30), db)
}

/// Drops the test's tables, passed or failed.
struct DropBooks(String);

impl Drop for DropBooks {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Runtime::new() {
            rt.block_on(drop_books(POSTGRES_URL, &self.0));
        }
    }
}

#[test]
fn a_flight_in_the_air_lands_or_turns_back_after_its_service_restarts() {
    if !broker_available(POSTGRES_URL) {
        return;
    }
    let prefix = unique_prefix();
    let _clean = DropBooks(prefix.clone());
    // Three flights: one flies on, one is cancelled before the crash (it
    // is flying back when its service dies), one after the restart.
    let (on, back_before, back_after) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    // The first service, in a runtime of its own: dropping the runtime
    // drops its handlers and timers mid-flight, as a crash would.
    let first = tokio::runtime::Runtime::new().unwrap();
    let took_off = first.block_on(async {
        let flights = flights(&prefix).await;
        assert_eq!(flights.prepare().await.unwrap(), 0);
        let broker: choreo_runtime::SharedBroker = Arc::new(MemoryBroker::new());
        let _service = flight::definition(flights.clone())
            .start(broker.clone(), Stores::memory(), ServiceOptions::default())
            .await
            .unwrap();
        let client = Client::new(broker, Topics::default(), "test");
        for (key, drone) in [
            (on, "drone-001"),
            (back_before, "drone-002"),
            (back_after, "drone-003"),
        ] {
            client
                .send(key.to_string(), scheduled(drone))
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while flights.books_stats().await.unwrap().in_air < 3 {
            assert!(Instant::now() < deadline, "the drones did not take off");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took_off = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .send(back_before.to_string(), DeliveryCancelled { reason: None })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while flights.books_stats().await.unwrap().turned_back < 1 {
            assert!(Instant::now() < deadline, "the cancel was not recorded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took_off
    });
    first.shutdown_background();
    // Well before any landing: 300 ms out, 300 ms back.
    assert!(took_off.elapsed() < Duration::from_millis(550));

    // A new service from the same books.
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let flights = flights(&prefix).await;
        let stats = flights.books_stats().await.unwrap();
        assert_eq!((stats.in_air, stats.flights, stats.turned_back), (3, 3, 1));
        // Its timers are armed again, with the time left.
        assert_eq!(flights.prepare().await.unwrap(), 3);
        let mut f = flight::fixture(flights.clone()).await.unwrap();
        assert!(f
            .deliver(&back_after, DeliveryCancelled { reason: None })
            .await
            .unwrap()
            .is_empty());
        let cancelled_at = took_off.elapsed();
        // Every flight lands by itself, on its timer, without an event.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = flights.books_stats().await.unwrap();
            if s.in_air == 0 {
                assert_eq!((s.landed, s.turned_back, s.violations), (1, 2, 0), "{s:?}");
                break;
            }
            assert!(Instant::now() < deadline, "still in the air: {s:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let landed_at = took_off.elapsed();
        // The one that flew on took its whole flight (`took_off` was
        // taken a little after the take-off), not a new one from the
        // restart.
        assert!(
            landed_at >= FLIGHT - Duration::from_millis(150),
            "{landed_at:?}"
        );
        assert!(landed_at < FLIGHT + Duration::from_secs(1), "{landed_at:?}");
        assert!(cancelled_at < FLIGHT, "{cancelled_at:?}");

        // The events the dead service held come again: each is answered
        // with its flight's landing, at once.
        let answered = Instant::now();
        let arrived = |e: choreo_runtime::testing::Emitted| e.one::<DroneArrived>().unwrap();
        let a = arrived(f.deliver(&on, scheduled("drone-001")).await.unwrap());
        assert_eq!((a.returned, a.location), (false, at(2.0)));
        for key in [back_before, back_after] {
            let drone = if key == back_before {
                "drone-002"
            } else {
                "drone-003"
            };
            let a = arrived(f.deliver(&key, scheduled(drone)).await.unwrap());
            assert_eq!(
                (a.returned, a.location, a.drone_id.as_str()),
                (true, at(1.0), drone)
            );
        }
        assert!(answered.elapsed() < Duration::from_secs(2));
        let s = flights.books_stats().await.unwrap();
        assert_eq!((s.flights, s.landed, s.turned_back, s.in_air), (3, 1, 2, 0));
        assert_eq!(s.max_in_air, 3);
        f.shutdown().await;
    });
}
