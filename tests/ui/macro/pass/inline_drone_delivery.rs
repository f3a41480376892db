// The drone delivery example written inline: the Ingestion participant
// started on the memory broker, a delivery requested through `Commands`.
use choreo_runtime::service::{HandlerError, ServiceOptions, Stores};
use choreo_runtime::types::{Timestamp, Uuid};
use std::time::Duration;
use tokio::sync::mpsc;

choreo_runtime::choreo! {
    /// Drone delivery without a central coordinator.
    ///
    /// Modelled on the drone delivery example: an ingestion
    /// service takes delivery requests over HTTP, a package service creates the
    /// package (operation CreatePackage), a drone scheduler assigns a drone
    /// (operation GetDrone), and a delivery service manages deliveries that are
    /// scheduled or in flight, which can be rescheduled (RescheduleDelivery) and
    /// cancelled (CancelDelivery) at any point.
    choreography DroneDelivery {
        version "1.0.0"

        /// Every event of one delivery carries its id.
        key delivery_id: uuid

        /// A point on the map.
        type Location {
            latitude: f64
            longitude: f64
        }

        /// How big a package is; larger ones need larger drones.
        enum PackageSize { Small, Medium, Large }

        /// What is to be delivered.
        type PackageInfo {
            size: PackageSize
            weight_kg: f64
            /// Free text shown to the courier.
            tag: string?
        }

        /// A client asks for a delivery (the ingestion service's HTTP endpoint).
        @http(POST "/deliveries")
        command ScheduleDelivery {
            owner_id: string
            pickup: Location
            dropoff: Location
            deadline: timestamp
            package: PackageInfo
        }

        /// The client moves the drop-off or the deadline.
        @http(PUT "/deliveries/{delivery_id}")
        command RescheduleDelivery {
            dropoff: Location
            deadline: timestamp
        }

        /// The client calls the delivery off.
        @http(DELETE "/deliveries/{delivery_id}")
        command CancelDelivery {
            reason: string?
        }

        /// Operation CreatePackage: the request is accepted and a package must
        /// be created for it.
        event CreatePackage {
            owner_id: string
            pickup: Location
            dropoff: Location
            deadline: timestamp
            package: PackageInfo
        }

        /// The package exists and waits at the pick-up point.
        event PackageCreated { package_id: string, size: PackageSize, weight_kg: f64 }

        /// No package can be made for this request (too heavy, say).
        event PackageRejected { reason: string }

        /// Operation GetDrone: a drone is needed for this package.
        event GetDrone {
            package_id: string
            size: PackageSize
            weight_kg: f64
            pickup: Location
            dropoff: Location
        }

        /// A drone is reserved for the delivery.
        event DroneAssigned { drone_id: string }

        /// No drone can carry the package now.
        event NoDroneAvailable { reason: string }

        /// The package is deleted because it will not be delivered.
        event PackageDeleted { package_id: string }

        /// The drone is on its way.
        event DeliveryScheduled { drone_id: string, pickup: Location, dropoff: Location, deadline: timestamp }

        /// The drop-off or deadline changed while the delivery was under way.
        event DeliveryRescheduled { dropoff: Location, deadline: timestamp }

        /// The drone landed, at the drop-off or back at the pick-up point.
        event DroneArrived { drone_id: string, location: Location, returned: bool }

        /// The package reached its drop-off.
        @terminal
        event DeliveryCompleted { drone_id: string, location: Location }

        /// No package or no drone could be had.
        @terminal(failure)
        event DeliveryFailed { reason: string }

        /// The client cancelled the delivery.
        @terminal(failure)
        event DeliveryCancelled { reason: string? }

        /// A cancellation came before take-off: the drone never flew.
        @terminal(failure)
        event DeliveryWithdrawn { }

        /// A cancellation came in flight: the drone brought the package back.
        @terminal(failure)
        event PackageReturned { drone_id: string }

        /// Takes delivery requests over HTTP and buffers them on the broker.
        participant Ingestion {
            on ScheduleDelivery -> CreatePackage
        }

        /// Creates and deletes packages.
        participant Package {
            /// Operation CreatePackage.
            on CreatePackage -> PackageCreated | PackageRejected
            /// A package that will not be delivered is deleted.
            on NoDroneAvailable | DeliveryWithdrawn | PackageReturned -> PackageDeleted compensates PackageCreated
        }

        /// Assigns drones from the fleet and takes them back.
        participant DroneScheduler {
            /// Operation GetDrone.
            @retry(max = 3, backoff = 500ms)
            on GetDrone -> DroneAssigned | NoDroneAvailable
            /// The drone is back in the pool after a delivery.
            on DeliveryCompleted
            /// The drone is freed when the delivery is called off.
            on DeliveryWithdrawn | PackageReturned compensates DroneAssigned
        }

        /// Manages deliveries that are scheduled or in flight.
        participant Delivery {
            /// Asks for a drone once the package exists, unless cancelled meanwhile.
            on CreatePackage & PackageCreated -> GetDrone | DeliveryWithdrawn
            on PackageRejected | NoDroneAvailable -> DeliveryFailed
            /// Operation ScheduleDelivery: the drone takes off.
            on DroneAssigned -> DeliveryScheduled | DeliveryWithdrawn
            on DroneArrived -> DeliveryCompleted | PackageReturned
            /// Operation RescheduleDelivery.
            on RescheduleDelivery -> DeliveryRescheduled
            /// Operation CancelDelivery.
            on CancelDelivery -> DeliveryCancelled
        }

        /// Flies the drones; a reschedule changes the course of a drone in flight.
        participant Flight {
            @timeout(2h)
            on DeliveryScheduled | DeliveryRescheduled -> DroneArrived
            /// A cancelled delivery turns its drone back.
            on DeliveryCancelled
        }

        /// Tells the client how the delivery goes.
        participant Notifications {
            on DeliveryScheduled | DeliveryRescheduled | DeliveryCompleted | DeliveryFailed | DeliveryCancelled | DeliveryWithdrawn | PackageReturned | PackageDeleted
        }
    }
}

use drone_delivery::*;

/// Buffers each request and tells the test about it.
struct Intake(mpsc::UnboundedSender<(Key, CreatePackage)>);

impl Ingestion for Intake {
    async fn on_schedule_delivery(&self, ctx: Context, request: ScheduleDelivery) -> Result<CreatePackage, HandlerError> {
        let create = CreatePackage {
            owner_id: request.owner_id,
            pickup: request.pickup,
            dropoff: request.dropoff,
            deadline: request.deadline,
            package: request.package,
        };
        let _ = self.0.send((*ctx.key(), create.clone()));
        Ok(create)
    }
}

#[tokio::main]
async fn main() {
    let broker = choreo_runtime::connect("memory://").await.unwrap();
    let (taken, mut seen) = mpsc::unbounded_channel();
    let service = ingestion::definition(Intake(taken))
        .start(broker.clone(), Stores::memory(), ServiceOptions::default())
        .await
        .unwrap();

    let delivery = Uuid::new_v4();
    let here = Location { latitude: 45.76, longitude: 4.84 };
    let request = ScheduleDelivery {
        owner_id: "owner".into(),
        pickup: here.clone(),
        dropoff: here,
        deadline: Timestamp::now(),
        package: PackageInfo { size: PackageSize::Large, weight_kg: 3.5, tag: Some("fragile".into()) },
    };
    Commands::new(broker).schedule_delivery(&delivery, request).await.unwrap();

    let (key, create) = tokio::time::timeout(Duration::from_secs(10), seen.recv()).await.unwrap().unwrap();
    assert_eq!(key, delivery);
    assert_eq!(create.package.tag.as_deref(), Some("fragile"));
    service.shutdown().await.unwrap();
}
