//! The flight service: each flight a cancellable, reschedulable timer.
//!
//! A `DeliveryScheduled` starts the flight: the drone reaches the drop-off
//! after the flight time. A `DeliveryRescheduled` changes its course: from
//! where it is, the new drop-off takes half a flight time. A
//! `DeliveryCancelled` turns it back: it flies back as long as it had
//! flown on its leg, and lands at the pick-up point (`returned`). A
//! cancellation that reaches this service before the `DeliveryScheduled`
//! (events of different types have no order between them) is kept: the
//! drone then never leaves, and lands `returned` at once.
//!
//! Every course handed to a flight (the schedule and each reschedule)
//! answers with the flight's one landing, as the spec's `DeliveryScheduled
//! | DeliveryRescheduled -> DroneArrived` wants.
//!
//! The service also checks, independently of the scheduler, that no drone
//! is in the air for two deliveries at once.
//!
//! With books in PostgreSQL ([`Flights::with_books`]) each flight is a
//! row: when its leg began and when it lands, by the database's clock,
//! whether it was cancelled or given a new course. Timers in the process
//! land the flights at their time; a restarted service reads the flights
//! in the air and arms their timers with the time that is left
//! ([`Flights::prepare`]), and a handler delivered again (after its
//! process died) waits for the landing it would have waited for. A
//! landing, a course change and a cancel are each decided against the
//! database's clock, so that a cancel that comes after the flight's time
//! is too late however late its timer runs.

use crate::books::{self, BooksError, DroneBooks};
use crate::drone_delivery::{
    flight, Context, DeliveryCancelled, DeliveryRescheduled, DeliveryScheduled, DroneArrived, Key,
    Location,
};
use crate::lock;
use choreo_runtime::service::HandlerError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What the flight service has done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlightStats {
    /// Flights that took off.
    pub flights: u64,
    /// Flights that landed at the drop-off.
    pub landed: u64,
    /// Flights turned back by a cancellation.
    pub turned_back: u64,
    /// Cancellations that came before the take-off: the drone never left.
    pub cancelled_on_ground: u64,
    /// Cancellations that came after the landing.
    pub cancelled_too_late: u64,
    /// Changes of course in flight.
    pub course_changes: u64,
    /// Drones in the air now.
    pub in_air: usize,
    /// The most drones in the air at once.
    pub max_in_air: usize,
    /// A drone taking off while in the air for another delivery: must
    /// stay 0.
    pub violations: u64,
}

#[derive(Default)]
struct Course {
    drone_id: Option<String>,
    pickup: Option<Location>,
    dropoff: Option<Location>,
    /// Bumped by every change of course.
    generation: u64,
    cancelled: bool,
    started: bool,
    landed: Option<DroneArrived>,
}

struct FlightCell {
    course: Mutex<Course>,
    /// Bumped whenever the course changes, it is cancelled, or it lands.
    changed: watch::Sender<u64>,
}

impl FlightCell {
    fn poke(&self) {
        self.changed.send_modify(|g| *g += 1);
    }
}

struct Inner {
    flight_time: Duration,
    /// How long a course handed over before the take-off waits for it.
    wait_limit: Duration,
    flights: Mutex<HashMap<Key, Arc<FlightCell>>>,
    /// Which delivery each drone in the air flies for.
    in_air: Mutex<HashMap<String, Key>>,
    stats: Mutex<FlightStats>,
}

/// The flight service: the `Flight` participant. Clones share one state.
#[derive(Clone)]
pub struct Flights {
    inner: Arc<Inner>,
    /// The books in PostgreSQL, when kept there.
    pg: Option<Arc<PgFlights>>,
}

impl Flights {
    /// Flights that take `flight_time` from pick-up to drop-off.
    pub fn new(flight_time: Duration) -> Self {
        Flights {
            inner: Arc::new(Inner {
                flight_time,
                wait_limit: Duration::from_secs(60).max(flight_time * 20),
                flights: Mutex::new(HashMap::new()),
                in_air: Mutex::new(HashMap::new()),
                stats: Mutex::new(FlightStats::default()),
            }),
            pg: None,
        }
    }

    /// Flights that take `flight_time`, whose books are in PostgreSQL; a
    /// handler waits at most `wait_limit` for a landing.
    pub fn with_books(flight_time: Duration, wait_limit: Duration, books: DroneBooks) -> Self {
        Flights {
            pg: Some(Arc::new(PgFlights {
                shared: Arc::new(PgShared {
                    db: books,
                    flight_ms: i64::try_from(flight_time.as_millis()).unwrap_or(i64::MAX),
                    wait_limit,
                    cells: Mutex::new(HashMap::new()),
                }),
            })),
            ..Flights::new(flight_time)
        }
    }

    /// Before the service starts: with books in PostgreSQL, arms the
    /// timers of the flights in the air (those of a process that died),
    /// with the time they have left. Nothing to do in memory.
    pub async fn prepare(&self) -> Result<usize, BooksError> {
        match &self.pg {
            Some(pg) => PgShared::resume(&pg.shared).await,
            None => Ok(0),
        }
    }

    /// What it has done, as the books have it (in PostgreSQL, or in
    /// memory).
    pub async fn books_stats(&self) -> Result<FlightStats, BooksError> {
        match &self.pg {
            Some(pg) => pg.shared.stats().await,
            None => Ok(self.stats()),
        }
    }

    /// What it has done.
    pub fn stats(&self) -> FlightStats {
        let mut s = lock(&self.inner.stats).clone();
        s.in_air = lock(&self.inner.in_air).len();
        s
    }

    fn cell(&self, key: Key) -> Arc<FlightCell> {
        lock(&self.inner.flights)
            .entry(key)
            .or_insert_with(|| {
                Arc::new(FlightCell {
                    course: Mutex::new(Course::default()),
                    changed: watch::Sender::new(0),
                })
            })
            .clone()
    }

    fn count(&self, f: impl FnOnce(&mut FlightStats)) {
        f(&mut lock(&self.inner.stats));
    }

    /// Waits until the flight of `cell` has landed, and reports the landing.
    async fn landing(&self, key: Key, cell: &FlightCell) -> Result<DroneArrived, HandlerError> {
        let mut changed = cell.changed.subscribe();
        let deadline = Instant::now() + self.inner.wait_limit;
        loop {
            if let Some(landed) = &lock(&cell.course).landed {
                return Ok(landed.clone());
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(HandlerError::rejected(format!(
                    "no flight of delivery {key} landed within {:?}",
                    self.inner.wait_limit
                )));
            }
        }
    }

    /// Flies the flight of `cell` to its end.
    async fn fly(&self, key: Key, cell: &FlightCell) -> DroneArrived {
        let flight_time = self.inner.flight_time;
        let mut changed = cell.changed.subscribe();
        let (drone_id, pickup) = {
            let c = lock(&cell.course);
            (
                c.drone_id.clone().unwrap_or_default(),
                c.pickup.clone().unwrap_or(Location {
                    latitude: 0.0,
                    longitude: 0.0,
                }),
            )
        };
        {
            let mut air = lock(&self.inner.in_air);
            if air.get(&drone_id).is_some_and(|k| *k != key) {
                self.count(|s| s.violations += 1);
            }
            air.insert(drone_id.clone(), key);
            let n = air.len();
            self.count(|s| {
                s.flights += 1;
                s.max_in_air = s.max_in_air.max(n);
            });
        }
        let mut leg_start = Instant::now();
        let mut leg = flight_time;
        let mut generation = lock(&cell.course).generation;
        let arrival = loop {
            let (cancelled, now_generation, dropoff) = {
                let c = lock(&cell.course);
                (c.cancelled, c.generation, c.dropoff.clone())
            };
            if cancelled {
                // Back the way it came: as long as it has flown this leg.
                let back = leg_start.elapsed().min(flight_time);
                self.count(|s| s.turned_back += 1);
                tokio::time::sleep(back).await;
                break DroneArrived {
                    drone_id: drone_id.clone(),
                    location: pickup.clone(),
                    returned: true,
                };
            }
            if now_generation != generation {
                // A new course from where the drone is.
                generation = now_generation;
                leg_start = Instant::now();
                leg = flight_time / 2;
                self.count(|s| s.course_changes += 1);
            }
            tokio::select! {
                () = tokio::time::sleep_until(leg_start + leg) => {
                    self.count(|s| s.landed += 1);
                    break DroneArrived {
                        drone_id: drone_id.clone(),
                        location: dropoff.unwrap_or_else(|| pickup.clone()),
                        returned: false,
                    };
                }
                _ = changed.changed() => {}
            }
        };
        self.land(key, cell, &arrival);
        arrival
    }

    fn land(&self, key: Key, cell: &FlightCell, arrival: &DroneArrived) {
        {
            let mut air = lock(&self.inner.in_air);
            if air.get(&arrival.drone_id) == Some(&key) {
                air.remove(&arrival.drone_id);
            }
        }
        lock(&cell.course).landed = Some(arrival.clone());
        cell.poke();
    }
}

impl crate::drone_delivery::Flight for Flights {
    async fn on_delivery_scheduled_or_delivery_rescheduled(
        &self,
        ctx: Context,
        event: flight::OnDeliveryScheduledOrDeliveryRescheduledTrigger,
    ) -> Result<DroneArrived, HandlerError> {
        use flight::OnDeliveryScheduledOrDeliveryRescheduledTrigger as T;
        let key = *ctx.key();
        if let Some(pg) = &self.pg {
            return PgShared::course(&pg.shared, key, event).await;
        }
        let cell = self.cell(key);
        match event {
            T::DeliveryScheduled(s) => {
                let on_ground = {
                    let mut c = lock(&cell.course);
                    if let Some(landed) = &c.landed {
                        return Ok(landed.clone());
                    }
                    if c.started {
                        None
                    } else {
                        c.started = true;
                        c.drone_id = Some(s.drone_id.clone());
                        c.pickup = Some(s.pickup.clone());
                        // A reschedule that came first holds the newer course.
                        if c.dropoff.is_none() {
                            c.dropoff = Some(s.dropoff);
                        }
                        Some(c.cancelled)
                    }
                };
                match on_ground {
                    // Taken off already (the event came twice).
                    None => self.landing(key, &cell).await,
                    Some(true) => {
                        self.count(|s| s.cancelled_on_ground += 1);
                        let arrival = DroneArrived {
                            drone_id: s.drone_id,
                            location: s.pickup,
                            returned: true,
                        };
                        self.land(key, &cell, &arrival);
                        Ok(arrival)
                    }
                    Some(false) => Ok(self.fly(key, &cell).await),
                }
            }
            T::DeliveryRescheduled(r) => {
                {
                    let mut c = lock(&cell.course);
                    if let Some(landed) = &c.landed {
                        // Landed before the new course came.
                        return Ok(landed.clone());
                    }
                    if !c.cancelled {
                        c.dropoff = Some(r.dropoff);
                        c.generation += 1;
                    }
                }
                cell.poke();
                self.landing(key, &cell).await
            }
        }
    }

    async fn on_delivery_cancelled(
        &self,
        ctx: Context,
        _event: DeliveryCancelled,
    ) -> Result<(), HandlerError> {
        if let Some(pg) = &self.pg {
            return Ok(PgShared::cancel(&pg.shared, *ctx.key()).await?);
        }
        let cell = self.cell(*ctx.key());
        let too_late = {
            let mut c = lock(&cell.course);
            c.cancelled = true;
            c.landed.is_some()
        };
        if too_late {
            self.count(|s| s.cancelled_too_late += 1);
        }
        cell.poke();
        Ok(())
    }
}

/// A flight as the books keep it (the `course` column, as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PgCourse {
    drone_id: Option<String>,
    pickup: Option<Location>,
    dropoff: Option<Location>,
    cancelled: bool,
    /// The `DeliveryScheduled` came: the drone took off, or never left.
    started: bool,
    /// When the current leg began and when the flight lands, in
    /// milliseconds by the database's clock.
    leg_start_ms: i64,
    lands_at_ms: i64,
    /// Turned back in flight: it lands at the pick-up.
    returning: bool,
    landed: Option<DroneArrived>,
    course_changes: u64,
    cancelled_on_ground: bool,
    cancelled_too_late: bool,
}

impl PgCourse {
    fn in_air(&self) -> bool {
        self.started && self.landed.is_none() && !self.cancelled_on_ground
    }

    /// Lands the flight if its time has come by `now_ms`; whether it did.
    fn land_by(&mut self, now_ms: i64) -> bool {
        if !self.in_air() || now_ms < self.lands_at_ms {
            return false;
        }
        let pickup = self.pickup.clone().unwrap_or(Location {
            latitude: 0.0,
            longitude: 0.0,
        });
        self.landed = Some(DroneArrived {
            drone_id: self.drone_id.clone().unwrap_or_default(),
            location: if self.returning {
                pickup
            } else {
                self.dropoff.clone().unwrap_or(pickup)
            },
            returned: self.returning,
        });
        true
    }
}

/// A flight's local signals: bumped when its course changes or it lands,
/// and its timer in this process.
struct Cell {
    changed: watch::Sender<u64>,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Cell {
    fn poke(&self) {
        self.changed.send_modify(|g| *g += 1);
    }
}

/// What a change of a flight did.
enum Changed {
    /// It has landed (now, or before).
    Landed(DroneArrived),
    /// It is in the air (or not yet taken off).
    Flying,
}

struct PgShared {
    db: DroneBooks,
    flight_ms: i64,
    wait_limit: Duration,
    cells: Mutex<HashMap<Key, Arc<Cell>>>,
}

/// The flight service's books in PostgreSQL; its timers stop when the
/// last clone of its service goes.
struct PgFlights {
    shared: Arc<PgShared>,
}

impl Drop for PgFlights {
    fn drop(&mut self) {
        for cell in lock(&self.shared.cells).values() {
            if let Some(t) = lock(&cell.timer).take() {
                t.abort();
            }
        }
    }
}

impl PgShared {
    fn cell(&self, key: Key) -> Arc<Cell> {
        lock(&self.cells)
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Cell {
                    changed: watch::Sender::new(0),
                    timer: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Runs `change` on the flight of `key` in one transaction (its row
    /// locked, made if missing) at the database's time, and saves it;
    /// returns what it said, the flight, and the time.
    async fn change<F>(&self, key: Key, change: F) -> Result<(Changed, PgCourse, i64), BooksError>
    where
        F: Fn(&mut PgCourse, i64) -> Changed + Send + Sync + 'static,
    {
        let t = self.db.tables.clone();
        let delivery = key.to_string();
        let change = Arc::new(change);
        self.db
            .books
            .transaction(move |tx| {
                let (t, delivery, change) = (t.clone(), delivery.clone(), change.clone());
                Box::pin(async move {
                    let flight = &t.flight;
                    let empty = books::to_json(&PgCourse::default());
                    tx.execute(
                        &format!(
                            "INSERT INTO {flight} (delivery, course) VALUES ($1, $2) \
                             ON CONFLICT (delivery) DO NOTHING"
                        ),
                        &[&delivery, &empty],
                    )
                    .await?;
                    let row = tx
                        .query_one(
                            &format!("SELECT course FROM {flight} WHERE delivery = $1 FOR UPDATE"),
                            &[&delivery],
                        )
                        .await?;
                    let mut course: PgCourse = books::from_json("a flight", row.get(0))?;
                    let was_in_air = course.in_air();
                    let was_landed = course.landed.is_some();
                    let now = books::now_ms(tx).await?;
                    // Landed by the clock, whether its timer ran or not.
                    course.land_by(now);
                    let changed = change(&mut course, now);
                    let took_off = !was_in_air && course.in_air();
                    if took_off {
                        // Checked apart from the scheduler: the drone is in
                        // the air for no other delivery.
                        let drone = course.drone_id.clone().unwrap_or_default();
                        let other = tx
                            .query_one(
                                &format!(
                                    "SELECT count(*) FROM {flight} WHERE drone_id = $1 \
                                     AND delivery <> $2 AND took_off_seq IS NOT NULL AND NOT landed"
                                ),
                                &[&drone, &delivery],
                            )
                            .await?;
                        books::count(tx, &t, "flight.violations", other.get::<_, i64>(0)).await?;
                    }
                    let took_off_seq = match took_off {
                        true => Some(books::next_seq(tx, &t).await?),
                        false => None,
                    };
                    let landed_seq = match !was_landed && course.landed.is_some() {
                        true => Some(books::next_seq(tx, &t).await?),
                        false => None,
                    };
                    tx.execute(
                        &format!(
                            "UPDATE {flight} SET course = $2, drone_id = $3, lands_at_ms = $4, \
                             landed = $5, took_off_seq = coalesce(took_off_seq, $6), \
                             landed_seq = coalesce(landed_seq, $7) WHERE delivery = $1"
                        ),
                        &[
                            &delivery,
                            &books::to_json(&course),
                            &course.drone_id,
                            &course.lands_at_ms,
                            &course.landed.is_some(),
                            &took_off_seq,
                            &landed_seq,
                        ],
                    )
                    .await?;
                    Ok((changed, course, now))
                })
            })
            .await
    }

    /// The flight of `key` as the books have it, if any.
    async fn read(&self, key: Key) -> Result<Option<PgCourse>, BooksError> {
        let table = &self.db.tables.flight;
        self.db
            .json_of("a flight", "course", table, key.to_string())
            .await
    }

    /// A course handed to the flight of `key` (its take-off, or a new
    /// drop-off): answered with its landing.
    async fn course(
        this: &Arc<Self>,
        key: Key,
        event: flight::OnDeliveryScheduledOrDeliveryRescheduledTrigger,
    ) -> Result<DroneArrived, HandlerError> {
        use flight::OnDeliveryScheduledOrDeliveryRescheduledTrigger as T;
        let flight_ms = this.flight_ms;
        let (changed, course, _) = match event {
            T::DeliveryScheduled(s) => {
                this.change(key, move |c, now| take_off(c, &s, now, flight_ms))
                    .await?
            }
            T::DeliveryRescheduled(r) => {
                this.change(key, move |c, now| new_course(c, &r, now, flight_ms))
                    .await?
            }
        };
        let cell = this.cell(key);
        cell.poke();
        match changed {
            Changed::Landed(arrival) => Ok(arrival),
            Changed::Flying => {
                if course.in_air() {
                    Self::arm(this, key);
                }
                this.landing(key, &cell).await
            }
        }
    }

    /// A cancellation: turns the flight back (or keeps it on the ground,
    /// or comes too late).
    async fn cancel(this: &Arc<Self>, key: Key) -> Result<(), BooksError> {
        let flight_ms = this.flight_ms;
        let (_, course, _) = this
            .change(key, move |c, now| {
                c.cancelled = true;
                if c.landed.is_some() {
                    c.cancelled_too_late = true;
                } else if c.in_air() && !c.returning {
                    // Back the way it came: as long as it has flown this leg.
                    c.returning = true;
                    let back = (now - c.leg_start_ms).clamp(0, flight_ms);
                    c.lands_at_ms = now + back;
                }
                Changed::Flying
            })
            .await?;
        this.cell(key).poke();
        if course.in_air() {
            Self::arm(this, key);
        }
        Ok(())
    }

    /// Starts the timer of the flight of `key` in this process, unless it
    /// runs.
    fn arm(this: &Arc<Self>, key: Key) {
        let cell = this.cell(key);
        let mut timer = lock(&cell.timer);
        if timer.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let shared = this.clone();
        let changes = cell.changed.subscribe();
        *timer = Some(tokio::spawn(async move { shared.fly(key, changes).await }));
    }

    /// The timer of the flight of `key`: lands it at its time, the time
    /// read again whenever its course changes.
    async fn fly(self: Arc<Self>, key: Key, mut changes: watch::Receiver<u64>) {
        let mut failures = 0u32;
        loop {
            let result = self.change(key, |_, _| Changed::Flying).await;
            let wait = match result {
                Ok((_, course, _)) if !course.in_air() => {
                    self.cell(key).poke();
                    return;
                }
                Ok((_, course, now)) => {
                    failures = 0;
                    // The time left by the database's clock; a course
                    // changed meanwhile wakes the timer.
                    let left = u64::try_from(course.lands_at_ms - now).unwrap_or(0);
                    Duration::from_millis(left.saturating_add(1))
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        eprintln!("warning: the flight of delivery {key} cannot land for now: {e}");
                    }
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = changes.changed() => {}
            }
        }
    }

    /// Waits until the flight of `key` has landed, and reports the landing.
    async fn landing(&self, key: Key, cell: &Cell) -> Result<DroneArrived, HandlerError> {
        let mut changed = cell.changed.subscribe();
        let deadline = Instant::now() + self.wait_limit;
        loop {
            if let Some(landed) = self.read(key).await?.and_then(|c| c.landed) {
                return Ok(landed);
            }
            // Woken by this process's timer; another process's (a replica
            // that handled a cancel) is seen by reading again.
            let poll = Instant::now() + Duration::from_millis(500);
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep_until(poll.min(deadline)) => {}
            }
            if Instant::now() >= deadline {
                return Err(HandlerError::rejected(format!(
                    "no flight of delivery {key} landed within {:?}",
                    self.wait_limit
                )));
            }
        }
    }

    /// Arms the timers of the flights in the air; how many.
    async fn resume(this: &Arc<Self>) -> Result<usize, BooksError> {
        let sql = format!(
            "SELECT delivery FROM {} WHERE took_off_seq IS NOT NULL AND NOT landed",
            this.db.tables.flight
        );
        let keys: Vec<String> = this.db.rows(sql).await?.iter().map(|r| r.get(0)).collect();
        for k in &keys {
            let key: Key = k
                .parse()
                .map_err(|e| BooksError::Corrupt(format!("flight key {k:?}: {e}")))?;
            Self::arm(this, key);
        }
        Ok(keys.len())
    }

    async fn stats(&self) -> Result<FlightStats, BooksError> {
        let counters = self.db.counters("flight.").await?;
        let t = self.db.tables.clone();
        let (rows, overlaps, most) = self
            .db
            .books
            .transaction(move |tx| {
                let t = t.clone();
                Box::pin(async move {
                    let flight = &t.flight;
                    let big = i64::MAX;
                    let rows = tx
                        .query(
                            &format!("SELECT course, took_off_seq IS NOT NULL FROM {flight}"),
                            &[],
                        )
                        .await?;
                    // A drone in the air for two deliveries at once: their
                    // times in the air, in the order of the books'
                    // sequence, overlap.
                    let overlaps = tx
                        .query_one(
                            &format!(
                                "SELECT count(*) FROM {flight} a JOIN {flight} b \
                                 ON a.drone_id = b.drone_id AND a.delivery < b.delivery \
                                 WHERE a.took_off_seq IS NOT NULL AND b.took_off_seq IS NOT NULL \
                                 AND a.took_off_seq < coalesce(b.landed_seq, {big}) \
                                 AND b.took_off_seq < coalesce(a.landed_seq, {big})"
                            ),
                            &[],
                        )
                        .await?
                        .get::<_, i64>(0);
                    let most = tx
                        .query_one(
                            &format!(
                                "SELECT coalesce(max(n), 0)::bigint FROM \
                                 (SELECT sum(d) OVER (ORDER BY s) AS n FROM \
                                  (SELECT took_off_seq AS s, 1 AS d FROM {flight} \
                                   WHERE took_off_seq IS NOT NULL \
                                   UNION ALL SELECT landed_seq, -1 FROM {flight} \
                                   WHERE took_off_seq IS NOT NULL AND landed_seq IS NOT NULL) e) x"
                            ),
                            &[],
                        )
                        .await?
                        .get::<_, i64>(0);
                    Ok((rows, overlaps, most))
                })
            })
            .await?;
        let mut s = FlightStats::default();
        for row in &rows {
            let course: PgCourse = books::from_json("a flight", row.get(0))?;
            let flew: bool = row.get(1);
            if flew {
                s.flights += 1;
                match &course.landed {
                    Some(a) if !a.returned => s.landed += 1,
                    None => s.in_air += 1,
                    Some(_) => {}
                }
                if course.returning {
                    s.turned_back += 1;
                }
            }
            s.cancelled_on_ground += u64::from(course.cancelled_on_ground);
            s.cancelled_too_late += u64::from(course.cancelled_too_late);
            s.course_changes += course.course_changes;
        }
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        s.max_in_air = usize::try_from(n(most)).unwrap_or(usize::MAX);
        s.violations = n(counters.get("violations").copied().unwrap_or(0)) + n(overlaps);
        Ok(s)
    }
}

/// The take-off of `c` on `s`'s course at `now`: as in memory, a
/// reschedule that came first holds the newer drop-off, and a cancel that
/// came first keeps the drone on the ground.
fn take_off(c: &mut PgCourse, s: &DeliveryScheduled, now: i64, flight_ms: i64) -> Changed {
    if let Some(landed) = &c.landed {
        return Changed::Landed(landed.clone());
    }
    if c.started {
        // Taken off already (the event came again).
        return Changed::Flying;
    }
    c.started = true;
    c.drone_id = Some(s.drone_id.clone());
    c.pickup = Some(s.pickup.clone());
    if c.dropoff.is_none() {
        c.dropoff = Some(s.dropoff.clone());
    }
    if c.cancelled {
        c.cancelled_on_ground = true;
        let arrival = DroneArrived {
            drone_id: s.drone_id.clone(),
            location: s.pickup.clone(),
            returned: true,
        };
        c.landed = Some(arrival.clone());
        return Changed::Landed(arrival);
    }
    c.leg_start_ms = now;
    c.lands_at_ms = now.saturating_add(flight_ms);
    Changed::Flying
}

/// A new drop-off for `c` at `now`: in the air, from where it is, half a
/// flight; before the take-off, the drop-off it will take off for.
fn new_course(c: &mut PgCourse, r: &DeliveryRescheduled, now: i64, flight_ms: i64) -> Changed {
    if let Some(landed) = &c.landed {
        // Landed before the new course came.
        return Changed::Landed(landed.clone());
    }
    if !c.cancelled {
        c.dropoff = Some(r.dropoff.clone());
        if c.in_air() {
            c.leg_start_ms = now;
            c.lands_at_ms = now.saturating_add(flight_ms / 2);
            c.course_changes += 1;
        }
    }
    Changed::Flying
}
