//! The package service (operation CreatePackage): a store of packages,
//! one per delivery, created when a request comes in, rejected when it
//! cannot be made (over the weight limit), deleted when the delivery will
//! not happen.
//!
//! With books in PostgreSQL ([`Packages::with_books`]) each package is a
//! row, created once per delivery (`INSERT … ON CONFLICT DO NOTHING`,
//! the row read back on conflict, so that the answer is the one given
//! first) and deleted once.

use crate::books::{self, BooksError, DroneBooks};
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
    /// The books in PostgreSQL, when kept there.
    pg: Option<Arc<PgPackages>>,
}

impl Packages {
    /// A store making packages up to `weight_limit_kg`.
    pub fn new(weight_limit_kg: f64) -> Self {
        Packages {
            store: Arc::new(Mutex::new(Store::default())),
            weight_limit_kg,
            pg: None,
        }
    }

    /// A store making packages up to `weight_limit_kg`, whose books are in
    /// PostgreSQL.
    pub fn with_books(weight_limit_kg: f64, books: DroneBooks) -> Self {
        Packages {
            pg: Some(Arc::new(PgPackages { db: books })),
            ..Packages::new(weight_limit_kg)
        }
    }

    /// Every delivery's package, by status, as the books have it (in
    /// PostgreSQL, or in memory).
    pub async fn books_report(&self) -> Result<PackageReport, BooksError> {
        match &self.pg {
            Some(pg) => pg.report().await,
            None => Ok(self.report()),
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
        if let Some(pg) = &self.pg {
            let made = match self.refusal(event.package.weight_kg) {
                Some(reason) => Err(reason),
                None => Ok(PackageCreated {
                    package_id: format!("pkg-{}", key.simple()),
                    size: event.package.size,
                    weight_kg: event.package.weight_kg,
                }),
            };
            return Ok(match pg.create(key, made).await? {
                Ok(created) => Out::PackageCreated(created),
                Err(reason) => Out::PackageRejected(PackageRejected { reason }),
            });
        }
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
        if let Some(pg) = &self.pg {
            return match pg.delete(*ctx.key()).await? {
                Some(package_id) => Ok(PackageDeleted { package_id }),
                None => Err(HandlerError::rejected(format!(
                    "delivery {} has no package to delete",
                    ctx.key()
                ))),
            };
        }
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

/// The package service's books in PostgreSQL.
struct PgPackages {
    db: DroneBooks,
}

impl PgPackages {
    /// Records `made` (the package, or why none can be made) for
    /// `delivery` unless something is recorded for it already, and
    /// returns what is recorded.
    async fn create(
        &self,
        delivery: Key,
        made: Result<PackageCreated, String>,
    ) -> Result<Result<PackageCreated, String>, BooksError> {
        let t = self.db.tables.clone();
        let delivery = delivery.to_string();
        self.db
            .books
            .transaction(move |tx| {
                let (t, delivery, made) = (t.clone(), delivery.clone(), made.clone());
                Box::pin(async move {
                    let package = &t.package;
                    let inserted = match &made {
                        Ok(p) => {
                            tx.execute(
                                &format!(
                                    "INSERT INTO {package} (delivery, package_id, size, weight_kg, status) \
                                     VALUES ($1, $2, $3, $4, 'created') ON CONFLICT (delivery) DO NOTHING"
                                ),
                                &[&delivery, &p.package_id, &books::size_code(p.size), &p.weight_kg],
                            )
                            .await?
                        }
                        Err(reason) => {
                            tx.execute(
                                &format!(
                                    "INSERT INTO {package} (delivery, status, reason) \
                                     VALUES ($1, 'rejected', $2) ON CONFLICT (delivery) DO NOTHING"
                                ),
                                &[&delivery, reason],
                            )
                            .await?
                        }
                    };
                    if inserted == 1 {
                        return Ok(made);
                    }
                    // Asked again for the same delivery: the answer given
                    // first.
                    let row = tx
                        .query_one(
                            &format!(
                                "SELECT package_id, size, weight_kg, status, reason \
                                 FROM {package} WHERE delivery = $1"
                            ),
                            &[&delivery],
                        )
                        .await?;
                    let status: String = row.get(3);
                    if status == "rejected" {
                        return Ok(Err(row.get::<_, Option<String>>(4).unwrap_or_default()));
                    }
                    Ok(Ok(PackageCreated {
                        package_id: row.get::<_, Option<String>>(0).unwrap_or_default(),
                        size: books::size_of(row.get::<_, Option<i16>>(1).unwrap_or(-1))?,
                        weight_kg: row.get::<_, Option<f64>>(2).unwrap_or(0.0),
                    }))
                })
            })
            .await
    }

    /// Deletes the package of `delivery` (once: deleted again, the same
    /// answer); `None` when it has none.
    async fn delete(&self, delivery: Key) -> Result<Option<String>, BooksError> {
        let t = self.db.tables.clone();
        let delivery = delivery.to_string();
        self.db
            .books
            .transaction(move |tx| {
                let (t, delivery) = (t.clone(), delivery.clone());
                Box::pin(async move {
                    let seq = books::next_seq(tx, &t).await?;
                    let row = tx
                        .query_opt(
                            &format!(
                                "UPDATE {} SET status = 'deleted', \
                                 deleted_seq = coalesce(deleted_seq, $2), deletes = deletes + 1 \
                                 WHERE delivery = $1 AND status <> 'rejected' RETURNING package_id",
                                t.package
                            ),
                            &[&delivery, &seq],
                        )
                        .await?;
                    Ok(row.map(|r| r.get::<_, Option<String>>(0).unwrap_or_default()))
                })
            })
            .await
    }

    async fn report(&self) -> Result<PackageReport, BooksError> {
        let sql = format!("SELECT delivery, status FROM {}", self.db.tables.package);
        let rows = self.db.rows(sql).await?;
        let mut r = PackageReport::default();
        for row in rows {
            let (key, status): (String, String) = (row.get(0), row.get(1));
            match status.as_str() {
                "created" => r.live.push(key),
                "deleted" => r.deleted.push(key),
                _ => r.rejected.push(key),
            }
        }
        r.live.sort();
        r.deleted.sort();
        r.rejected.sort();
        Ok(r)
    }
}
