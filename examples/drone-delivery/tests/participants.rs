//! Participants alone, on the generated fixtures.
#![allow(clippy::unwrap_used)]

use choreo_runtime::types::Uuid;
use drone_delivery::delivery::Deliveries;
use drone_delivery::drone_delivery::{
    delivery, drone_scheduler, flight, CancelDelivery, CreatePackage, DeliveryCancelled,
    DeliveryCompleted, DeliveryScheduled, DeliveryWithdrawn, DroneArrived, DroneAssigned, GetDrone,
    Location, NoDroneAvailable, PackageCreated, PackageInfo, PackageSize,
};
use drone_delivery::fleet::{self, Scheduler};
use drone_delivery::flight::Flights;
use std::time::Duration;

fn here() -> Location {
    Location {
        latitude: 1.0,
        longitude: 2.0,
    }
}

fn get_drone(size: PackageSize, weight_kg: f64) -> GetDrone {
    GetDrone {
        package_id: "p".into(),
        size,
        weight_kg,
        pickup: here(),
        dropoff: here(),
    }
}

#[tokio::test]
async fn get_drone_waits_for_a_busy_fleet_then_gives_up_and_is_idempotent() {
    // One small drone.
    let scheduler = Scheduler::new(fleet::generate(1, 1));
    let mut f = drone_scheduler::fixture(scheduler.clone()).await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let first: DroneAssigned = f
        .deliver(&a, get_drone(PackageSize::Small, 1.0))
        .await
        .unwrap()
        .one()
        .unwrap();
    // Asked again for the same delivery: the same drone.
    let again: DroneAssigned = f
        .deliver(&a, get_drone(PackageSize::Small, 1.0))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(first, again);
    // Too big for the fleet: at once.
    let unfit: NoDroneAvailable = f
        .deliver(&b, get_drone(PackageSize::Large, 1.0))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert!(unfit.reason.contains("no drone of the fleet"), "{unfit:?}");
    // Busy: retried (0.5 s, 1 s, 2 s), then NoDroneAvailable.
    let started = std::time::Instant::now();
    let busy: NoDroneAvailable = f
        .deliver(&b, get_drone(PackageSize::Small, 1.0))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert!(busy.reason.contains("busy"), "{busy:?}");
    assert!(started.elapsed() >= Duration::from_millis(3000));
    assert_eq!(scheduler.report().stats.busy_retries, 3);
    // Released on completion (twice: once), then free for another.
    for _ in 0..2 {
        f.deliver(
            &a,
            DeliveryCompleted {
                drone_id: first.drone_id.clone(),
                location: here(),
            },
        )
        .await
        .unwrap();
    }
    let c = Uuid::new_v4();
    let next: DroneAssigned = f
        .deliver(&c, get_drone(PackageSize::Small, 1.0))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(next.drone_id, first.drone_id);
    let r = scheduler.report();
    assert_eq!(
        (r.stats.releases, r.stats.violations, r.assigned),
        (1, 0, 1)
    );
    f.shutdown().await;
}

#[tokio::test]
async fn a_cancel_that_reaches_flight_before_the_take_off_is_honoured() {
    let flights = Flights::new(Duration::from_secs(30));
    let mut f = flight::fixture(flights.clone()).await.unwrap();
    let key = Uuid::new_v4();
    assert!(f
        .deliver(&key, DeliveryCancelled { reason: None })
        .await
        .unwrap()
        .is_empty());
    let started = std::time::Instant::now();
    let arrived: DroneArrived = f
        .deliver(
            &key,
            DeliveryScheduled {
                drone_id: "drone-001".into(),
                pickup: here(),
                dropoff: Location {
                    latitude: 5.0,
                    longitude: 5.0,
                },
                deadline: "2030-01-01T00:00:00Z".parse().unwrap(),
            },
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    // Never left: back at the pick-up at once, not after a 30 s flight.
    assert!(arrived.returned);
    assert_eq!(arrived.location, here());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(flights.stats().cancelled_on_ground, 1);
    f.shutdown().await;
}

#[tokio::test]
async fn a_delivery_cancelled_before_its_package_exists_is_withdrawn() {
    let mut f = delivery::fixture(Deliveries::new(Duration::from_secs(5)))
        .await
        .unwrap();
    let key = Uuid::new_v4();
    let cancelled: DeliveryCancelled = f
        .deliver(
            &key,
            CancelDelivery {
                reason: Some("moved".into()),
            },
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(cancelled.reason.as_deref(), Some("moved"));
    let request = CreatePackage {
        owner_id: "o".into(),
        pickup: here(),
        dropoff: here(),
        deadline: "2030-01-01T00:00:00Z".parse().unwrap(),
        package: PackageInfo {
            size: PackageSize::Small,
            weight_kg: 1.0,
            tag: None,
        },
    };
    assert!(f.deliver(&key, request).await.unwrap().is_empty());
    let e = f
        .deliver(
            &key,
            PackageCreated {
                package_id: "p".into(),
                size: PackageSize::Small,
                weight_kg: 1.0,
            },
        )
        .await
        .unwrap();
    let _: DeliveryWithdrawn = e.one().unwrap();
    // A second cancel comes too late: refused, dead-lettered.
    let late = f
        .deliver(&key, CancelDelivery { reason: None })
        .await
        .unwrap();
    assert!(late.envelopes.is_empty());
    assert!(
        late.dead_letters[0].reason.contains("too late to cancel"),
        "{:?}",
        late.dead_letters
    );
    f.shutdown().await;
}
