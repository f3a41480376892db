//! The package service (operation CreatePackage): a store of packages,
//! one per delivery, created when a request comes in, rejected when it
//! cannot be made (over the weight limit), deleted when the delivery will
//! not happen.

use crate::drone_delivery::{
    package, Context, CreatePackage, Key, PackageCreated, PackageDeleted, PackageRejected,
    PackageSize,
};
use crate::lock;
use choreo_runtime::service::HandlerError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The heaviest package the service makes, by default.
pub const WEIGHT_LIMIT_KG: f64 = 25.0;

/// Where a package is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageStatus {
    /// Made, and delivered or on its way.
    Created,
    /// Deleted: its delivery will not happen.
    Deleted,
}

/// A stored package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// Its id.
    pub package_id: String,
    /// Its size.
    pub size: PackageSize,
    /// Its weight.
    pub weight_kg: f64,
    /// Where it is.
    pub status: PackageStatus,
}

/// What the store holds, by delivery, sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PackageReport {
    /// Deliveries whose package exists.
    pub live: Vec<String>,
    /// Deliveries whose package was deleted.
    pub deleted: Vec<String>,
    /// Deliveries for which no package could be made.
    pub rejected: Vec<String>,
}

#[derive(Default)]
struct Store {
    packages: HashMap<Key, PackageRecord>,
    rejected: HashMap<Key, String>,
}

/// The package service: the `Package` participant. Clones share one store.
#[derive(Clone)]
pub struct Packages {
    store: Arc<Mutex<Store>>,
    weight_limit_kg: f64,
}

impl Packages {
    /// A store making packages up to `weight_limit_kg`.
    pub fn new(weight_limit_kg: f64) -> Self {
        Packages {
            store: Arc::new(Mutex::new(Store::default())),
            weight_limit_kg,
        }
    }

    /// The package of `delivery`.
    pub fn get(&self, delivery: &Key) -> Option<PackageRecord> {
        lock(&self.store).packages.get(delivery).cloned()
    }

    /// Every delivery's package, by status.
    pub fn report(&self) -> PackageReport {
        let s = lock(&self.store);
        let mut r = PackageReport::default();
        for (k, p) in &s.packages {
            match p.status {
                PackageStatus::Created => r.live.push(k.to_string()),
                PackageStatus::Deleted => r.deleted.push(k.to_string()),
            }
        }
        r.rejected = s.rejected.keys().map(Key::to_string).collect();
        r.live.sort();
        r.deleted.sort();
        r.rejected.sort();
        r
    }

    /// Why a package of `weight_kg` cannot be made, if it cannot.
    fn refusal(&self, weight_kg: f64) -> Option<String> {
        if !(weight_kg.is_finite() && weight_kg > 0.0) {
            Some(format!(
                "a package weighs a positive number of kg, not {weight_kg}"
            ))
        } else if weight_kg > self.weight_limit_kg {
            Some(format!(
                "the package weighs {weight_kg} kg, over the {} kg limit",
                self.weight_limit_kg
            ))
        } else {
            None
        }
    }
}

impl crate::drone_delivery::Package for Packages {
    async fn on_create_package(
        &self,
        ctx: Context,
        event: CreatePackage,
    ) -> Result<package::OnCreatePackageOutcome, HandlerError> {
        use package::OnCreatePackageOutcome as Out;
        let key = *ctx.key();
        let mut s = lock(&self.store);
        // Asked again for the same delivery: the same answer.
        if let Some(p) = s.packages.get(&key) {
            return Ok(Out::PackageCreated(PackageCreated {
                package_id: p.package_id.clone(),
                size: p.size,
                weight_kg: p.weight_kg,
            }));
        }
        if let Some(reason) = s.rejected.get(&key) {
            return Ok(Out::PackageRejected(PackageRejected {
                reason: reason.clone(),
            }));
        }
        let weight_kg = event.package.weight_kg;
        if let Some(reason) = self.refusal(weight_kg) {
            s.rejected.insert(key, reason.clone());
            return Ok(Out::PackageRejected(PackageRejected { reason }));
        }
        let record = PackageRecord {
            package_id: format!("pkg-{}", key.simple()),
            size: event.package.size,
            weight_kg,
            status: PackageStatus::Created,
        };
        let created = PackageCreated {
            package_id: record.package_id.clone(),
            size: record.size,
            weight_kg,
        };
        s.packages.insert(key, record);
        Ok(Out::PackageCreated(created))
    }

    async fn on_no_drone_available_or_delivery_withdrawn_or_package_returned(
        &self,
        ctx: Context,
        _event: package::OnNoDroneAvailableOrDeliveryWithdrawnOrPackageReturnedTrigger,
    ) -> Result<PackageDeleted, HandlerError> {
        let mut s = lock(&self.store);
        match s.packages.get_mut(ctx.key()) {
            // Deleted already (the delivery's end reported twice): the
            // same answer.
            Some(p) => {
                p.status = PackageStatus::Deleted;
                Ok(PackageDeleted {
                    package_id: p.package_id.clone(),
                })
            }
            None => Err(HandlerError::rejected(format!(
                "delivery {} has no package to delete",
                ctx.key()
            ))),
        }
    }
}
