// `choreo!(file = …)` on the drone delivery example: the Package participant
// run alone in its test fixture.
use choreo_runtime::service::HandlerError;
use choreo_runtime::types::{Timestamp, Uuid};

choreo_runtime::choreo!(file = "specs/drone-delivery.choreo");

use drone_delivery::*;

/// Takes packages up to 5 kg.
struct Packages;

impl Package for Packages {
    async fn on_create_package(&self, _ctx: Context, request: CreatePackage) -> Result<package::OnCreatePackageOutcome, HandlerError> {
        Ok(if request.package.weight_kg <= 5.0 {
            package::OnCreatePackageOutcome::PackageCreated(PackageCreated {
                package_id: "P1".into(),
                size: request.package.size,
                weight_kg: request.package.weight_kg,
            })
        } else {
            package::OnCreatePackageOutcome::PackageRejected(PackageRejected { reason: "too heavy".into() })
        })
    }

    async fn on_no_drone_available_or_delivery_withdrawn_or_package_returned(
        &self,
        _ctx: Context,
        _event: package::OnNoDroneAvailableOrDeliveryWithdrawnOrPackageReturnedTrigger,
    ) -> Result<PackageDeleted, HandlerError> {
        Ok(PackageDeleted { package_id: "P1".into() })
    }
}

fn request(weight_kg: f64) -> CreatePackage {
    let here = Location { latitude: 45.76, longitude: 4.84 };
    CreatePackage {
        owner_id: "owner".into(),
        pickup: here.clone(),
        dropoff: here,
        deadline: Timestamp::now(),
        package: PackageInfo { size: PackageSize::Small, weight_kg, tag: None },
    }
}

#[tokio::main]
async fn main() {
    let mut packages = package::fixture(Packages).await.unwrap();
    let created: PackageCreated = packages.deliver(&Uuid::new_v4(), request(2.0)).await.unwrap().one().unwrap();
    assert_eq!(created.size, PackageSize::Small);
    let rejected: PackageRejected = packages.deliver(&Uuid::new_v4(), request(9.0)).await.unwrap().one().unwrap();
    assert_eq!(rejected.reason, "too heavy");
    packages.shutdown().await;
}
