//! The fleet of drones and the drone scheduler (operation GetDrone).
//!
//! The fleet is derived from a seed and a size, so that every process of
//! a deployment, and every test, starts from the same drones. The
//! scheduler is the only place a drone is handed out: one lock guards
//! which delivery holds which drone, so an assignment is atomic, and it
//! is idempotent per delivery (a redelivered GetDrone for a delivery that
//! holds a drone gets the same drone).
//!
//! With books in PostgreSQL ([`Scheduler::with_books`]) the same
//! decisions are made in one transaction each, the fleet locked while it
//! is decided (`pg_advisory_xact_lock`), and recorded per delivery: a
//! restarted scheduler goes on from the drones held, and a GetDrone
//! asked again gets the answer it got (the same drone, or the same
//! NoDroneAvailable). A partial unique index keeps a drone from being
//! held for two deliveries at once, whatever the code does.

use crate::books::{self, BooksError, DroneBooks};
use crate::drone_delivery::{
    drone_scheduler, Context, DeliveryCompleted, DroneAssigned, GetDrone, Key, NoDroneAvailable,
    PackageSize,
};
use crate::lock;
use choreo_runtime::service::HandlerError;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// How many times GetDrone is delivered at most: the first attempt and
/// the spec's `@retry(max = 3)`. The last attempt answers
/// `NoDroneAvailable` rather than fail, so that a busy fleet makes a
/// request wait (0.5 s, 1 s, 2 s) before it gives up.
pub const GET_DRONE_ATTEMPTS: u32 = 4;

/// One drone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drone {
    /// Its id (`drone-007`).
    pub id: String,
    /// The largest package size it takes.
    pub class: PackageSize,
    /// The heaviest package it lifts.
    pub capacity_kg: f64,
}

impl Drone {
    /// Whether it can carry a package of `size` weighing `weight_kg`.
    pub fn fits(&self, size: PackageSize, weight_kg: f64) -> bool {
        self.class >= size && self.capacity_kg >= weight_kg
    }
}

/// The heaviest package any drone lifts: large drones lift 10 to 12 kg.
pub const MAX_CAPACITY_KG: f64 = 12.0;

/// The fleet of `size` drones for `seed`: half small (2–3 kg), a third
/// medium (5–7 kg), a sixth large (10–12 kg), at least one of each from
/// three drones on.
pub fn generate(seed: u64, size: usize) -> Vec<Drone> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x00d0_0e5e_ed00);
    (0..size)
        .map(|i| {
            let class = match (size >= 3, i) {
                // The first three are one of each: even a fleet of three
                // carries every size.
                (true, 0) => PackageSize::Small,
                (true, 1) => PackageSize::Medium,
                (true, 2) => PackageSize::Large,
                _ => match i % 6 {
                    0 | 2 | 4 => PackageSize::Small,
                    1 | 3 => PackageSize::Medium,
                    _ => PackageSize::Large,
                },
            };
            let (low, high) = match class {
                PackageSize::Small => (2.0, 3.0),
                PackageSize::Medium => (5.0, 7.0),
                PackageSize::Large => (10.0, MAX_CAPACITY_KG),
            };
            let capacity_kg = ((low + rng.f64() * (high - low)) * 10.0).round() / 10.0;
            Drone {
                id: format!("drone-{:03}", i + 1),
                class,
                capacity_kg,
            }
        })
        .collect()
}

/// What the scheduler has done, and the invariant it keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulerStats {
    /// Drones handed out.
    pub assignments: u64,
    /// Drones taken back.
    pub releases: u64,
    /// GetDrone attempts that found every suitable drone busy and were
    /// retried.
    pub busy_retries: u64,
    /// Requests answered NoDroneAvailable because the fleet stayed busy.
    pub no_drone_busy: u64,
    /// Requests answered NoDroneAvailable because no drone of the fleet
    /// can carry the package.
    pub no_drone_unfit: u64,
    /// The most drones assigned at one time (never above the fleet).
    pub max_assigned: usize,
    /// A drone handed to a delivery while another held it, or a release
    /// naming a drone the delivery did not hold: must stay 0.
    pub violations: u64,
}

/// The scheduler's state when asked (or when its service stops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    /// The fleet's size.
    pub drones: usize,
    /// Drones assigned now.
    pub assigned: usize,
    /// Who holds them: `(drone, delivery)`.
    pub holding: Vec<(String, String)>,
    /// What it has done.
    pub stats: SchedulerStats,
    /// Deliveries carried per drone.
    pub trips: Vec<(String, u64)>,
}

struct FleetState {
    drones: Vec<Drone>,
    /// Per drone: the delivery holding it.
    holder: Vec<Option<Key>>,
    by_delivery: HashMap<Key, usize>,
    /// Deliveries whose drone came back: a late GetDrone for one of them
    /// must not take a drone that nothing would ever release.
    released: HashSet<Key>,
    trips: Vec<u64>,
    stats: SchedulerStats,
}

/// The result of asking for a drone.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// This drone is the delivery's (also when it already was).
    Assigned(String),
    /// Every drone that could carry the package is busy.
    Busy(String),
    /// No drone of the fleet can carry the package.
    Unfit(String),
    /// The delivery is over: its drone was released already.
    Over,
}

/// The drone scheduler: the `DroneScheduler` participant. Clones share
/// one fleet.
#[derive(Clone)]
pub struct Scheduler {
    state: Arc<Mutex<FleetState>>,
    /// The books in PostgreSQL, when kept there (the memory state then
    /// holds only the drones).
    pg: Option<Arc<PgFleet>>,
}

impl Scheduler {
    /// A scheduler of `drones`, all free.
    pub fn new(drones: Vec<Drone>) -> Self {
        let n = drones.len();
        Scheduler {
            state: Arc::new(Mutex::new(FleetState {
                drones,
                holder: vec![None; n],
                by_delivery: HashMap::new(),
                released: HashSet::new(),
                trips: vec![0; n],
                stats: SchedulerStats::default(),
            })),
            pg: None,
        }
    }

    /// A scheduler of `drones` whose books are in PostgreSQL: the fleet
    /// is written there by [`Scheduler::prepare`] when it is not there
    /// yet, and what it holds is the truth.
    pub fn with_books(drones: Vec<Drone>, books: DroneBooks) -> Self {
        let pg = PgFleet::new(drones.clone(), books);
        Scheduler {
            pg: Some(Arc::new(pg)),
            ..Scheduler::new(drones)
        }
    }

    /// Before the service starts: with books in PostgreSQL, writes the
    /// fleet there, or checks that the fleet there is this one (every
    /// process of a deployment must have the same `--drones` and
    /// `--seed`). Nothing to do in memory.
    pub async fn prepare(&self) -> Result<(), BooksError> {
        match &self.pg {
            Some(pg) => pg.prepare().await,
            None => Ok(()),
        }
    }

    /// The fleet as its books have it (in PostgreSQL, or in memory).
    pub async fn books_report(&self) -> Result<FleetReport, BooksError> {
        match &self.pg {
            Some(pg) => pg.report().await,
            None => Ok(self.report()),
        }
    }

    /// Assigns a drone able to carry the package to `delivery`: the
    /// delivery's drone if it has one, else the smallest free drone that
    /// fits (the one with fewest trips among equals, to spread the wear).
    pub fn assign(&self, delivery: Key, size: PackageSize, weight_kg: f64) -> Assignment {
        let mut s = lock(&self.state);
        if let Some(&d) = s.by_delivery.get(&delivery) {
            return Assignment::Assigned(s.drones[d].id.clone());
        }
        if s.released.contains(&delivery) {
            return Assignment::Over;
        }
        let fitting: Vec<usize> = (0..s.drones.len())
            .filter(|&d| s.drones[d].fits(size, weight_kg))
            .collect();
        if fitting.is_empty() {
            s.stats.no_drone_unfit += 1;
            return Assignment::Unfit(format!(
                "no drone of the fleet can carry a {size:?} package of {weight_kg} kg"
            ));
        }
        let free = fitting
            .iter()
            .copied()
            .filter(|&d| s.holder[d].is_none())
            .min_by(|&a, &b| {
                (s.drones[a].class, s.trips[a], a).cmp(&(s.drones[b].class, s.trips[b], b))
            });
        let Some(d) = free else {
            return Assignment::Busy(format!(
                "all {} drones able to carry a {size:?} package of {weight_kg} kg are busy",
                fitting.len()
            ));
        };
        if s.holder[d].is_some() {
            // Cannot happen under the lock; counted so that tests prove it.
            s.stats.violations += 1;
        }
        s.holder[d] = Some(delivery);
        s.by_delivery.insert(delivery, d);
        s.trips[d] += 1;
        s.stats.assignments += 1;
        let assigned = s.by_delivery.len();
        s.stats.max_assigned = s.stats.max_assigned.max(assigned);
        Assignment::Assigned(s.drones[d].id.clone())
    }

    /// Takes back the drone of `delivery`; `drone_id`, when the event
    /// names one, must be the drone it holds. Idempotent: releasing a
    /// delivery that holds nothing does nothing.
    pub fn release(&self, delivery: Key, drone_id: Option<&str>) {
        let mut s = lock(&self.state);
        s.released.insert(delivery);
        let Some(d) = s.by_delivery.remove(&delivery) else {
            return;
        };
        if s.holder[d] != Some(delivery) || drone_id.is_some_and(|id| id != s.drones[d].id) {
            s.stats.violations += 1;
        }
        s.holder[d] = None;
        s.stats.releases += 1;
    }

    /// The fleet as it is now.
    pub fn report(&self) -> FleetReport {
        let s = lock(&self.state);
        let mut holding: Vec<(String, String)> = s
            .holder
            .iter()
            .enumerate()
            .filter_map(|(d, h)| h.map(|k| (s.drones[d].id.clone(), k.to_string())))
            .collect();
        holding.sort();
        FleetReport {
            drones: s.drones.len(),
            assigned: s.by_delivery.len(),
            holding,
            stats: s.stats.clone(),
            trips: s
                .drones
                .iter()
                .zip(&s.trips)
                .map(|(d, t)| (d.id.clone(), *t))
                .collect(),
        }
    }

    /// The drones.
    pub fn drones(&self) -> Vec<Drone> {
        lock(&self.state).drones.clone()
    }

    fn count(&self, f: impl FnOnce(&mut SchedulerStats)) {
        f(&mut lock(&self.state).stats);
    }
}

impl crate::drone_delivery::DroneScheduler for Scheduler {
    async fn on_get_drone(
        &self,
        ctx: Context,
        event: GetDrone,
    ) -> Result<drone_scheduler::OnGetDroneOutcome, HandlerError> {
        use drone_scheduler::OnGetDroneOutcome as Out;
        if let Some(pg) = &self.pg {
            return pg.get_drone(&ctx, &event).await;
        }
        match self.assign(*ctx.key(), event.size, event.weight_kg) {
            Assignment::Assigned(drone_id) => Ok(Out::DroneAssigned(DroneAssigned { drone_id })),
            Assignment::Unfit(reason) => Ok(Out::NoDroneAvailable(NoDroneAvailable { reason })),
            Assignment::Busy(reason) if ctx.attempt() < GET_DRONE_ATTEMPTS => {
                self.count(|s| s.busy_retries += 1);
                Err(HandlerError::failed(reason))
            }
            Assignment::Busy(reason) => {
                self.count(|s| s.no_drone_busy += 1);
                Ok(Out::NoDroneAvailable(NoDroneAvailable {
                    reason: format!("{reason} (asked {} times)", ctx.attempt()),
                }))
            }
            Assignment::Over => Err(HandlerError::rejected(format!(
                "delivery {} is over and its drone released: no drone for it",
                ctx.key()
            ))),
        }
    }

    async fn on_delivery_completed(
        &self,
        ctx: Context,
        event: DeliveryCompleted,
    ) -> Result<(), HandlerError> {
        if let Some(pg) = &self.pg {
            return Ok(pg.release(*ctx.key(), Some(&event.drone_id)).await?);
        }
        self.release(*ctx.key(), Some(&event.drone_id));
        Ok(())
    }

    async fn on_delivery_withdrawn_or_package_returned(
        &self,
        ctx: Context,
        event: drone_scheduler::OnDeliveryWithdrawnOrPackageReturnedTrigger,
    ) -> Result<(), HandlerError> {
        use drone_scheduler::OnDeliveryWithdrawnOrPackageReturnedTrigger as T;
        if let Some(pg) = &self.pg {
            let drone_id = match &event {
                T::DeliveryWithdrawn(_) => None,
                T::PackageReturned(r) => Some(r.drone_id.as_str()),
            };
            return Ok(pg.release(*ctx.key(), drone_id).await?);
        }
        match event {
            // Withdrawn before take-off: it may hold a drone or not.
            T::DeliveryWithdrawn(_) => self.release(*ctx.key(), None),
            T::PackageReturned(r) => self.release(*ctx.key(), Some(&r.drone_id)),
        }
        Ok(())
    }
}

/// What the books answered a GetDrone.
enum PgAnswer {
    Assigned(String),
    /// No drone of the fleet can carry it: NoDroneAvailable.
    Unfit(String),
    /// The fleet stayed busy: NoDroneAvailable.
    NoDrone(String),
    /// Every suitable drone busy: ask again.
    Busy(String),
    /// Released before it asked.
    Over,
}

/// The scheduler's books in PostgreSQL.
struct PgFleet {
    drones: Arc<Vec<Drone>>,
    db: DroneBooks,
    /// The fleet's lock: every assignment and release takes it.
    lock: i64,
}

impl PgFleet {
    fn new(drones: Vec<Drone>, db: DroneBooks) -> Self {
        PgFleet {
            lock: db.lock_key("fleet"),
            drones: Arc::new(drones),
            db,
        }
    }

    async fn prepare(&self) -> Result<(), BooksError> {
        let (t, lock, drones) = (self.db.tables.clone(), self.lock, self.drones.clone());
        self.db
            .books
            .transaction(move |tx| {
                let (t, drones) = (t.clone(), drones.clone());
                Box::pin(async move {
                    books::lock(tx, lock).await?;
                    let fleet = &t.fleet;
                    let rows = tx
                        .query(
                            &format!(
                                "SELECT drone_id, class, capacity_kg FROM {fleet} ORDER BY idx"
                            ),
                            &[],
                        )
                        .await?;
                    if rows.is_empty() {
                        let insert = format!(
                            "INSERT INTO {fleet} (idx, drone_id, class, capacity_kg) \
                             VALUES ($1, $2, $3, $4)"
                        );
                        for (i, d) in drones.iter().enumerate() {
                            let idx = i32::try_from(i).unwrap_or(i32::MAX);
                            let class = books::size_code(d.class);
                            tx.execute(&insert, &[&idx, &d.id, &class, &d.capacity_kg])
                                .await?;
                        }
                        return Ok(());
                    }
                    let held: Vec<(String, i16, f64)> = rows
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2)))
                        .collect();
                    let ours: Vec<(String, i16, f64)> = drones
                        .iter()
                        .map(|d| (d.id.clone(), books::size_code(d.class), d.capacity_kg))
                        .collect();
                    if held != ours {
                        return Err(BooksError::Config(format!(
                            "the books hold a fleet of {} drones that is not this one of {}: \
                             every process of a deployment needs the same --drones and --seed",
                            held.len(),
                            ours.len()
                        )));
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn get_drone(
        &self,
        ctx: &Context,
        event: &GetDrone,
    ) -> Result<drone_scheduler::OnGetDroneOutcome, HandlerError> {
        use drone_scheduler::OnGetDroneOutcome as Out;
        let key = *ctx.key();
        let attempt = ctx.attempt();
        let (size, weight_kg) = (event.size, event.weight_kg);
        let fitting: Vec<i32> = self
            .drones
            .iter()
            .enumerate()
            .filter(|(_, d)| d.fits(size, weight_kg))
            .map(|(i, _)| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        let (t, lock) = (self.db.tables.clone(), self.lock);
        let delivery = key.to_string();
        let answer = self
            .db
            .books
            .transaction(move |tx| {
                let (t, delivery, fitting) = (t.clone(), delivery.clone(), fitting.clone());
                Box::pin(async move {
                    books::lock(tx, lock).await?;
                    let (fleet, assignment) = (&t.fleet, &t.assignment);
                    let known = tx
                        .query_opt(
                            &format!(
                                "SELECT drone_id, answer, reason FROM {assignment} WHERE delivery = $1"
                            ),
                            &[&delivery],
                        )
                        .await?;
                    if let Some(row) = known {
                        // Asked again: the answer it got.
                        let drone: Option<String> = row.get(0);
                        let answer: String = row.get(1);
                        let reason: Option<String> = row.get(2);
                        return Ok(match (answer.as_str(), drone) {
                            ("assigned", Some(d)) => PgAnswer::Assigned(d),
                            ("unfit", _) => PgAnswer::Unfit(reason.unwrap_or_default()),
                            ("busy", _) => PgAnswer::NoDrone(reason.unwrap_or_default()),
                            _ => PgAnswer::Over,
                        });
                    }
                    let record = format!(
                        "INSERT INTO {assignment} (delivery, drone_id, answer, reason, assigned_seq) \
                         VALUES ($1, $2, $3, $4, $5)"
                    );
                    let none: Option<String> = None;
                    let no_seq: Option<i64> = None;
                    if fitting.is_empty() {
                        let reason = format!(
                            "no drone of the fleet can carry a {size:?} package of {weight_kg} kg"
                        );
                        tx.execute(&record, &[&delivery, &none, &"unfit", &reason, &no_seq])
                            .await?;
                        return Ok(PgAnswer::Unfit(reason));
                    }
                    // The smallest free drone that fits, the one with
                    // fewest trips among equals: as in memory.
                    let free = tx
                        .query_opt(
                            &format!(
                                "SELECT idx, drone_id FROM {fleet} WHERE idx = ANY($1) \
                                 AND holder IS NULL ORDER BY class, trips, idx LIMIT 1"
                            ),
                            &[&fitting],
                        )
                        .await?;
                    let Some(free) = free else {
                        let reason = format!(
                            "all {} drones able to carry a {size:?} package of {weight_kg} kg are busy",
                            fitting.len()
                        );
                        if attempt < GET_DRONE_ATTEMPTS {
                            books::count(tx, &t, "fleet.busy_retries", 1).await?;
                            return Ok(PgAnswer::Busy(reason));
                        }
                        let reason = format!("{reason} (asked {attempt} times)");
                        tx.execute(&record, &[&delivery, &none, &"busy", &reason, &no_seq])
                            .await?;
                        return Ok(PgAnswer::NoDrone(reason));
                    };
                    let (idx, drone): (i32, String) = (free.get(0), free.get(1));
                    let taken = tx
                        .execute(
                            &format!(
                                "UPDATE {fleet} SET holder = $2, trips = trips + 1 \
                                 WHERE idx = $1 AND holder IS NULL"
                            ),
                            &[&idx, &delivery],
                        )
                        .await?;
                    if taken != 1 {
                        // Cannot happen under the lock; counted so that
                        // tests prove it.
                        books::count(tx, &t, "fleet.violations", 1).await?;
                    }
                    let seq = Some(books::next_seq(tx, &t).await?);
                    tx.execute(
                        &record,
                        &[&delivery, &Some(&drone), &"assigned", &none, &seq],
                    )
                    .await?;
                    Ok(PgAnswer::Assigned(drone))
                })
            })
            .await?;
        match answer {
            PgAnswer::Assigned(drone_id) => Ok(Out::DroneAssigned(DroneAssigned { drone_id })),
            PgAnswer::Unfit(reason) | PgAnswer::NoDrone(reason) => {
                Ok(Out::NoDroneAvailable(NoDroneAvailable { reason }))
            }
            PgAnswer::Busy(reason) => Err(HandlerError::failed(reason)),
            PgAnswer::Over => Err(HandlerError::rejected(format!(
                "delivery {key} is over and its drone released: no drone for it"
            ))),
        }
    }

    /// Takes back the drone of `delivery` once; a delivery that holds
    /// none is marked released, so that a late GetDrone gets no drone.
    async fn release(&self, delivery: Key, drone_id: Option<&str>) -> Result<(), BooksError> {
        let (t, lock) = (self.db.tables.clone(), self.lock);
        let delivery = delivery.to_string();
        let named = drone_id.map(str::to_string);
        self.db
            .books
            .transaction(move |tx| {
                let (t, delivery, named) = (t.clone(), delivery.clone(), named.clone());
                Box::pin(async move {
                    books::lock(tx, lock).await?;
                    let (fleet, assignment) = (&t.fleet, &t.assignment);
                    let known = tx
                        .query_opt(
                            &format!(
                                "SELECT drone_id, released_seq FROM {assignment} WHERE delivery = $1"
                            ),
                            &[&delivery],
                        )
                        .await?;
                    let held = match known {
                        // Released already: once is all.
                        Some(row) if row.get::<_, Option<i64>>(1).is_some() => return Ok(()),
                        Some(row) => Some(row.get::<_, Option<String>>(0)),
                        None => None,
                    };
                    let seq = books::next_seq(tx, &t).await?;
                    let Some(held) = held else {
                        tx.execute(
                            &format!(
                                "INSERT INTO {assignment} (delivery, answer, released_seq) \
                                 VALUES ($1, 'none', $2)"
                            ),
                            &[&delivery, &seq],
                        )
                        .await?;
                        return Ok(());
                    };
                    tx.execute(
                        &format!("UPDATE {assignment} SET released_seq = $2 WHERE delivery = $1"),
                        &[&delivery, &seq],
                    )
                    .await?;
                    if let Some(held) = held {
                        let freed = tx
                            .execute(
                                &format!(
                                    "UPDATE {fleet} SET holder = NULL WHERE drone_id = $1 AND holder = $2"
                                ),
                                &[&held, &delivery],
                            )
                            .await?;
                        if freed != 1 || named.as_ref().is_some_and(|id| *id != held) {
                            books::count(tx, &t, "fleet.violations", 1).await?;
                        }
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn report(&self) -> Result<FleetReport, BooksError> {
        let counters = self.db.counters("fleet.").await?;
        let counter =
            |name: &str| u64::try_from(counters.get(name).copied().unwrap_or(0)).unwrap_or(0);
        let t = self.db.tables.clone();
        let (drones, counts) = self
            .db
            .books
            .transaction(move |tx| {
                let t = t.clone();
                Box::pin(async move {
                    let (fleet, assignment) = (&t.fleet, &t.assignment);
                    let drones = tx
                        .query(
                            &format!("SELECT drone_id, trips, holder FROM {fleet} ORDER BY idx"),
                            &[],
                        )
                        .await?;
                    let big = i64::MAX;
                    let counts = tx
                        .query_one(
                            &format!(
                                "SELECT \
                                 (SELECT count(*) FROM {assignment} WHERE answer = 'assigned'), \
                                 (SELECT count(*) FROM {assignment} \
                                  WHERE answer = 'assigned' AND released_seq IS NOT NULL), \
                                 (SELECT count(*) FROM {assignment} WHERE answer = 'unfit'), \
                                 (SELECT count(*) FROM {assignment} WHERE answer = 'busy'), \
                                 (SELECT count(*) FROM {assignment} a JOIN {assignment} b \
                                  ON a.drone_id = b.drone_id AND a.delivery < b.delivery \
                                  WHERE a.answer = 'assigned' AND b.answer = 'assigned' \
                                  AND a.assigned_seq < coalesce(b.released_seq, {big}) \
                                  AND b.assigned_seq < coalesce(a.released_seq, {big})), \
                                 (SELECT count(*) FROM {fleet} f FULL JOIN \
                                  (SELECT drone_id, delivery FROM {assignment} \
                                   WHERE answer = 'assigned' AND released_seq IS NULL) a \
                                  ON f.drone_id = a.drone_id AND f.holder = a.delivery \
                                  WHERE (f.holder IS NOT NULL OR a.delivery IS NOT NULL) \
                                  AND (f.drone_id IS NULL OR a.drone_id IS NULL)), \
                                 (SELECT coalesce(max(n), 0)::bigint FROM \
                                  (SELECT sum(d) OVER (ORDER BY s) AS n FROM \
                                   (SELECT assigned_seq AS s, 1 AS d FROM {assignment} \
                                    WHERE answer = 'assigned' \
                                    UNION ALL SELECT released_seq, -1 FROM {assignment} \
                                    WHERE answer = 'assigned' AND released_seq IS NOT NULL) e) x)"
                            ),
                            &[],
                        )
                        .await?;
                    let counts: Vec<i64> = (0..7).map(|i| counts.get(i)).collect();
                    Ok((drones, counts))
                })
            })
            .await?;
        let n = |i: usize| u64::try_from(counts.get(i).copied().unwrap_or(0)).unwrap_or(0);
        let mut holding: Vec<(String, String)> = drones
            .iter()
            .filter_map(|r| {
                let h: Option<String> = r.get(2);
                h.map(|h| (r.get(0), h))
            })
            .collect();
        holding.sort();
        Ok(FleetReport {
            drones: drones.len(),
            assigned: holding.len(),
            holding,
            stats: SchedulerStats {
                assignments: n(0),
                releases: n(1),
                busy_retries: counter("busy_retries"),
                no_drone_busy: n(3),
                no_drone_unfit: n(2),
                max_assigned: usize::try_from(n(6)).unwrap_or(usize::MAX),
                // Counted as it happened, and from the books: two
                // deliveries whose holding times overlap on one drone, and
                // holders that disagree with the open assignments.
                violations: counter("violations") + n(4) + n(5),
            },
            trips: drones
                .iter()
                .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use choreo_runtime::types::Uuid;

    #[test]
    fn the_fleet_is_the_same_for_a_seed_and_has_every_class() {
        assert_eq!(generate(7, 12), generate(7, 12));
        assert_ne!(generate(7, 12), generate(8, 12));
        let fleet = generate(1, 3);
        let classes: Vec<_> = fleet.iter().map(|d| d.class).collect();
        assert_eq!(
            classes,
            [PackageSize::Small, PackageSize::Medium, PackageSize::Large]
        );
        assert!(fleet.iter().all(|d| d.capacity_kg <= MAX_CAPACITY_KG));
    }

    #[test]
    fn a_drone_is_never_held_twice_and_assignment_is_idempotent() {
        let s = Scheduler::new(generate(1, 3));
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let Assignment::Assigned(da) = s.assign(a, PackageSize::Large, 9.0) else {
            panic!()
        };
        assert_eq!(
            s.assign(a, PackageSize::Large, 9.0),
            Assignment::Assigned(da.clone())
        );
        assert!(matches!(
            s.assign(b, PackageSize::Large, 1.0),
            Assignment::Busy(_)
        ));
        assert!(matches!(
            s.assign(b, PackageSize::Small, 30.0),
            Assignment::Unfit(_)
        ));
        // A small package takes the small drone, not the free medium one.
        let Assignment::Assigned(dc) = s.assign(c, PackageSize::Small, 1.0) else {
            panic!()
        };
        assert_eq!(dc, "drone-001");
        s.release(a, Some(&da));
        s.release(a, Some(&da));
        assert_eq!(s.assign(a, PackageSize::Large, 9.0), Assignment::Over);
        assert!(matches!(
            s.assign(b, PackageSize::Large, 1.0),
            Assignment::Assigned(_)
        ));
        let r = s.report();
        assert_eq!(
            (r.assigned, r.stats.releases, r.stats.violations),
            (2, 1, 0)
        );
        assert_eq!(r.stats.max_assigned, 2);
    }
}
