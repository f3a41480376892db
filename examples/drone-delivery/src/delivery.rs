//! The delivery service: each delivery from the request to its end
//! (operations ScheduleDelivery, RescheduleDelivery, CancelDelivery).
//!
//! A delivery is requested, gets its package, waits for a drone, flies,
//! and ends: completed, failed (no package, no drone), withdrawn (cancelled
//! before take-off) or returned (cancelled in flight). What the client
//! asks on the way:
//!
//! - **cancel** before take-off: `DeliveryCancelled`, and the delivery's
//!   next step answers `DeliveryWithdrawn` (its drone and package are
//!   given back); in flight: `DeliveryCancelled`, which turns the drone
//!   back (`PackageReturned` when it lands) unless it lands first;
//! - **reschedule** in flight: `DeliveryRescheduled`, which changes the
//!   drone's course; before take-off the new drop-off goes into the plan
//!   the drone takes off with, and `DeliveryRescheduled` follows once it
//!   has (so that the flight service only ever hears of flights that
//!   happen);
//! - either **after the delivery ended** (or a reschedule of a cancelled
//!   delivery, or a second cancel): refused, so the command is
//!   dead-lettered with the reason and the delivery's end stands. The
//!   dead letter is where an operator, and `GET /deliveries/{id}`, see
//!   that the request came too late.
//!
//! Every flight's landing is reported once per course the flight service
//! was given (the spec has `DeliveryScheduled | DeliveryRescheduled ->
//! DroneArrived`): the first report ends the delivery, a later report of
//! the same landing repeats the same end, which every consumer handles
//! idempotently.
//!
//! Each handler's decision is a function of the delivery's record (and
//! the event), the same whether the records are in memory or, with books
//! in PostgreSQL ([`Deliveries::with_books`]), in a row locked for the
//! decision; there the answer is recorded with the event's id in the same
//! transaction, so that the event delivered again after a crash gets the
//! same answer, and a restarted service goes on from the records.

use crate::books::{self, BooksError, DroneBooks};
use crate::drone_delivery::{
    delivery, CancelDelivery, Context, CreatePackage, DeliveryCancelled, DeliveryCompleted,
    DeliveryFailed, DeliveryRescheduled, DeliveryScheduled, DeliveryWithdrawn, DroneArrived,
    DroneAssigned, GetDrone, Key, Location, PackageCreated, PackageReturned, RescheduleDelivery,
};
use crate::lock;
use choreo_runtime::service::HandlerError;
use choreo_runtime::types::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum Ending {
    /// The package reached its drop-off.
    Completed {
        /// The drone.
        drone_id: String,
        /// Where it landed.
        location: Location,
    },
    /// No package could be made.
    PackageRejected {
        /// Why.
        reason: String,
    },
    /// No drone could be had.
    NoDrone {
        /// Why.
        reason: String,
    },
    /// Cancelled before take-off.
    Withdrawn,
    /// Cancelled in flight: the drone brought the package back.
    Returned {
        /// The drone.
        drone_id: String,
    },
}

impl Ending {
    /// A short name: `completed`, `package_rejected`, `no_drone`,
    /// `withdrawn`, `returned`.
    pub fn name(&self) -> &'static str {
        match self {
            Ending::Completed { .. } => "completed",
            Ending::PackageRejected { .. } => "package_rejected",
            Ending::NoDrone { .. } => "no_drone",
            Ending::Withdrawn => "withdrawn",
            Ending::Returned { .. } => "returned",
        }
    }
}

/// Where a delivery is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Asked for; its package is being made.
    Requested,
    /// Its package exists; a drone is asked for.
    AwaitingDrone,
    /// The drone took off.
    InFlight {
        /// The drone.
        drone_id: String,
    },
    /// Over.
    Ended(Ending),
}

/// The course a drone is to fly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Where the package waits.
    pub pickup: Location,
    /// Where it goes.
    pub dropoff: Location,
    /// By when.
    pub deadline: Timestamp,
}

/// One delivery as the service knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Where it is.
    pub phase: Phase,
    /// Its course, once its package exists.
    pub plan: Option<Plan>,
    /// Whether the client cancelled it (and why).
    pub cancelled: Option<Option<String>>,
    /// Reschedules accepted.
    pub reschedules: u32,
    /// Commands refused, with the reason.
    pub refused: Vec<String>,
}

/// What the service has done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryStats {
    /// Deliveries by how they ended.
    pub endings: BTreeMap<String, u64>,
    /// Cancellations accepted.
    pub cancels: u64,
    /// Reschedules accepted while the drone flew.
    pub reschedules_in_flight: u64,
    /// Reschedules accepted before take-off.
    pub reschedules_before_take_off: u64,
    /// Cancels and reschedules refused (too late, or cancelled already).
    pub refused: u64,
    /// Repeated reports of a landing (one per course given to a flight).
    pub repeated_landings: u64,
}

/// What the service keeps of one delivery: in memory, or as a row of the
/// books.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot {
    record: DeliveryRecord,
    /// A reschedule received before take-off, for the plan to come.
    course: Option<(Location, Timestamp)>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            record: DeliveryRecord {
                phase: Phase::Requested,
                plan: None,
                cancelled: None,
                reschedules: 0,
                refused: Vec::new(),
            },
            course: None,
        }
    }

    /// Whether the drone took off (`Some(true)`), or the delivery ended on
    /// the ground (`Some(false)`): what a reschedule before take-off waits
    /// for.
    fn took_off(&self) -> Option<bool> {
        match &self.record.phase {
            Phase::InFlight { .. } => Some(true),
            Phase::Ended(end) => Some(matches!(
                end,
                Ending::Completed { .. } | Ending::Returned { .. }
            )),
            _ => None,
        }
    }

    fn end(&mut self, stats: &mut DeliveryStats, ending: Ending) {
        *stats.endings.entry(ending.name().to_string()).or_default() += 1;
        self.record.phase = Phase::Ended(ending);
    }

    /// Refuses a command: recorded, and dead-lettered with `reason`.
    fn refuse(&mut self, stats: &mut DeliveryStats, reason: String) -> Said {
        stats.refused += 1;
        self.record.refused.push(reason.clone());
        Said::Refused(reason)
    }
}

/// A handler's answer, as the books record it.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Said {
    GetDrone(GetDrone),
    Withdrawn,
    Failed(DeliveryFailed),
    Scheduled(DeliveryScheduled),
    Completed(DeliveryCompleted),
    Returned(PackageReturned),
    Rescheduled(DeliveryRescheduled),
    /// A reschedule before take-off: passed on once the drone is up.
    AwaitTakeOff(DeliveryRescheduled),
    Cancelled(DeliveryCancelled),
    /// A command refused (counted, and kept in the record).
    Refused(String),
    /// An event that cannot be handled.
    Rejected(String),
}

impl Said {
    /// The handler's error for an answer it did not expect: what the
    /// answer was, as a rejection.
    fn unexpected(self, reaction: &str) -> HandlerError {
        match self {
            Said::Refused(reason) | Said::Rejected(reason) => HandlerError::rejected(reason),
            other => HandlerError::rejected(format!(
                "{reaction}: the books hold an answer of another reaction ({other:?})"
            )),
        }
    }
}

fn ended_with(ending: &Ending) -> &'static str {
    match ending {
        Ending::Completed { .. } => "DeliveryCompleted",
        Ending::PackageRejected { .. } | Ending::NoDrone { .. } => "DeliveryFailed",
        Ending::Withdrawn => "DeliveryWithdrawn",
        Ending::Returned { .. } => "PackageReturned",
    }
}

/// `on CreatePackage & PackageCreated`: asks for a drone once the package
/// exists, unless the delivery was cancelled meanwhile.
fn decide_drone_request(
    key: Key,
    s: &mut Slot,
    stats: &mut DeliveryStats,
    create_package: &CreatePackage,
    package_created: &PackageCreated,
) -> Said {
    if let Phase::Ended(end) = &s.record.phase {
        let reason = format!("delivery {key} already ended ({})", ended_with(end));
        return s.refuse(stats, reason);
    }
    if let (Phase::AwaitingDrone | Phase::InFlight { .. }, Some(plan)) =
        (&s.record.phase, &s.record.plan)
    {
        // Fired again for a delivery under way: the same request, and
        // nothing goes back a step.
        return Said::GetDrone(GetDrone {
            package_id: package_created.package_id.clone(),
            size: package_created.size,
            weight_kg: package_created.weight_kg,
            pickup: plan.pickup.clone(),
            dropoff: plan.dropoff.clone(),
        });
    }
    if s.record.cancelled.is_some() {
        s.end(stats, Ending::Withdrawn);
        return Said::Withdrawn;
    }
    let (dropoff, deadline) = s
        .course
        .take()
        .unwrap_or((create_package.dropoff.clone(), create_package.deadline));
    let plan = Plan {
        pickup: create_package.pickup.clone(),
        dropoff,
        deadline,
    };
    let get = GetDrone {
        package_id: package_created.package_id.clone(),
        size: package_created.size,
        weight_kg: package_created.weight_kg,
        pickup: plan.pickup.clone(),
        dropoff: plan.dropoff.clone(),
    };
    s.record.plan = Some(plan);
    s.record.phase = Phase::AwaitingDrone;
    Said::GetDrone(get)
}

/// `on PackageRejected | NoDroneAvailable`: the delivery fails.
fn decide_failure(key: Key, s: &mut Slot, stats: &mut DeliveryStats, ending: &Ending) -> Said {
    let reason = match ending {
        Ending::PackageRejected { reason } => format!("no package: {reason}"),
        Ending::NoDrone { reason } => format!("no drone: {reason}"),
        _ => String::new(),
    };
    match &s.record.phase {
        // The same end reported again: the same answer.
        Phase::Ended(end) if end == ending => return Said::Failed(DeliveryFailed { reason }),
        Phase::Ended(end) => {
            let refusal = format!("delivery {key} already ended ({})", ended_with(end));
            return s.refuse(stats, refusal);
        }
        _ => {}
    }
    s.end(stats, ending.clone());
    Said::Failed(DeliveryFailed { reason })
}

/// `on DroneAssigned`: the drone takes off, unless the delivery was
/// cancelled while it waited for it.
fn decide_take_off(key: Key, s: &mut Slot, stats: &mut DeliveryStats, drone_id: &str) -> Said {
    match (&s.record.phase, &s.record.plan) {
        (Phase::Ended(end), _) => {
            let reason = format!("delivery {key} already ended ({})", ended_with(end));
            s.refuse(stats, reason)
        }
        _ if s.record.cancelled.is_some() => {
            // Cancelled while waiting for the drone: it never takes off.
            s.end(stats, Ending::Withdrawn);
            Said::Withdrawn
        }
        (_, Some(plan)) => {
            let scheduled = DeliveryScheduled {
                drone_id: drone_id.to_string(),
                pickup: plan.pickup.clone(),
                dropoff: plan.dropoff.clone(),
                deadline: plan.deadline,
            };
            s.record.phase = Phase::InFlight {
                drone_id: drone_id.to_string(),
            };
            Said::Scheduled(scheduled)
        }
        (_, None) => Said::Rejected(format!(
            "delivery {key} got a drone before its package: no course to fly"
        )),
    }
}

/// `on DroneArrived`: completed at the drop-off, or returned.
fn decide_arrival(key: Key, s: &mut Slot, stats: &mut DeliveryStats, event: &DroneArrived) -> Said {
    let (ending, said) = if event.returned {
        (
            Ending::Returned {
                drone_id: event.drone_id.clone(),
            },
            Said::Returned(PackageReturned {
                drone_id: event.drone_id.clone(),
            }),
        )
    } else {
        (
            Ending::Completed {
                drone_id: event.drone_id.clone(),
                location: event.location.clone(),
            },
            Said::Completed(DeliveryCompleted {
                drone_id: event.drone_id.clone(),
                location: event.location.clone(),
            }),
        )
    };
    match &s.record.phase {
        Phase::InFlight { .. } => {
            s.end(stats, ending);
            said
        }
        Phase::Ended(end) if *end == ending => {
            stats.repeated_landings += 1;
            said
        }
        Phase::Ended(end) => {
            let reason = format!("delivery {key} already ended ({})", ended_with(end));
            s.refuse(stats, reason)
        }
        _ => Said::Rejected(format!("delivery {key} landed before it took off")),
    }
}

/// `on RescheduleDelivery`: in flight, passed on at once; before take-off,
/// into the plan, and passed on once the drone is up.
fn decide_reschedule(
    key: Key,
    s: &mut Slot,
    stats: &mut DeliveryStats,
    event: &RescheduleDelivery,
) -> Said {
    let rescheduled = DeliveryRescheduled {
        dropoff: event.dropoff.clone(),
        deadline: event.deadline,
    };
    if let Phase::Ended(end) = &s.record.phase {
        let reason = format!(
            "too late to reschedule delivery {key}: it already ended ({})",
            ended_with(end)
        );
        return s.refuse(stats, reason);
    }
    if s.record.cancelled.is_some() {
        let reason = format!("delivery {key} is cancelled: nothing to reschedule");
        return s.refuse(stats, reason);
    }
    s.record.reschedules += 1;
    match &mut s.record.plan {
        Some(plan) => {
            plan.dropoff = event.dropoff.clone();
            plan.deadline = event.deadline;
        }
        None => s.course = Some((event.dropoff.clone(), event.deadline)),
    }
    if matches!(s.record.phase, Phase::InFlight { .. }) {
        stats.reschedules_in_flight += 1;
        return Said::Rescheduled(rescheduled);
    }
    stats.reschedules_before_take_off += 1;
    Said::AwaitTakeOff(rescheduled)
}

/// A reschedule before take-off, once the wait is over: passed on if the
/// drone took off (`flew`), refused if the delivery ended on the ground
/// or the drone did not take off in time.
fn decide_after_take_off(
    key: Key,
    s: &mut Slot,
    stats: &mut DeliveryStats,
    rescheduled: &DeliveryRescheduled,
    flew: Option<bool>,
    waited: Duration,
) -> Said {
    match flew {
        Some(true) => Said::Rescheduled(rescheduled.clone()),
        Some(false) => {
            let reason = format!("delivery {key} ended before take-off: no flight to reschedule");
            s.refuse(stats, reason)
        }
        None => {
            let reason = format!(
                "delivery {key} did not take off within {waited:?}: reschedule not passed on"
            );
            s.refuse(stats, reason)
        }
    }
}

/// `on CancelDelivery`: before take-off the next step withdraws the
/// delivery; in flight the flight service turns the drone back.
fn decide_cancel(
    key: Key,
    s: &mut Slot,
    stats: &mut DeliveryStats,
    event: &CancelDelivery,
) -> Said {
    if let Phase::Ended(end) = &s.record.phase {
        let reason = format!(
            "too late to cancel delivery {key}: it already ended ({})",
            ended_with(end)
        );
        return s.refuse(stats, reason);
    }
    if s.record.cancelled.is_some() {
        let reason = format!("delivery {key} is cancelled already");
        return s.refuse(stats, reason);
    }
    s.record.cancelled = Some(event.reason.clone());
    stats.cancels += 1;
    Said::Cancelled(DeliveryCancelled {
        reason: event.reason.clone(),
    })
}

struct Entry {
    slot: Slot,
    /// [`Slot::took_off`], for a reschedule before take-off to wait for.
    took_off: watch::Sender<Option<bool>>,
}

impl Entry {
    fn new() -> Self {
        Entry {
            slot: Slot::new(),
            took_off: watch::Sender::new(None),
        }
    }
}

#[derive(Default)]
struct State {
    deliveries: HashMap<Key, Entry>,
    stats: DeliveryStats,
}

/// The delivery service: the `Delivery` participant. Clones share one
/// state.
#[derive(Clone)]
pub struct Deliveries {
    state: Arc<Mutex<State>>,
    /// How long a reschedule before take-off waits for the take-off.
    take_off_wait: Duration,
    /// The books in PostgreSQL, when kept there.
    pg: Option<Arc<PgDeliveries>>,
}

impl Deliveries {
    /// A service in which a reschedule before take-off waits up to
    /// `take_off_wait` for the take-off.
    pub fn new(take_off_wait: Duration) -> Self {
        Deliveries {
            state: Arc::new(Mutex::new(State::default())),
            take_off_wait,
            pg: None,
        }
    }

    /// [`Deliveries::new`], the records in PostgreSQL.
    pub fn with_books(take_off_wait: Duration, books: DroneBooks) -> Self {
        Deliveries {
            pg: Some(Arc::new(PgDeliveries { db: books })),
            ..Deliveries::new(take_off_wait)
        }
    }

    /// The delivery `key`, if known.
    pub fn get(&self, key: &Key) -> Option<DeliveryRecord> {
        lock(&self.state)
            .deliveries
            .get(key)
            .map(|e| e.slot.record.clone())
    }

    /// How each delivery ended, by key (those not ended are left out).
    pub fn endings(&self) -> BTreeMap<String, Ending> {
        lock(&self.state)
            .deliveries
            .iter()
            .filter_map(|(k, e)| match &e.slot.record.phase {
                Phase::Ended(end) => Some((k.to_string(), end.clone())),
                _ => None,
            })
            .collect()
    }

    /// Deliveries not ended.
    pub fn open(&self) -> usize {
        lock(&self.state)
            .deliveries
            .values()
            .filter(|e| !matches!(e.slot.record.phase, Phase::Ended(_)))
            .count()
    }

    /// What it has done.
    pub fn stats(&self) -> DeliveryStats {
        lock(&self.state).stats.clone()
    }

    /// How each delivery ended, how many are open, and what the service
    /// has done, as the books have it (in PostgreSQL, or in memory).
    pub async fn books_report(&self) -> Result<crate::system::DeliveryReport, BooksError> {
        match &self.pg {
            Some(pg) => pg.report().await,
            None => Ok(crate::system::DeliveryReport::of(self)),
        }
    }

    /// Decides on the delivery `key` with `decide`: in memory under the
    /// lock, or in the books in one transaction, where the answer is
    /// recorded for (`reaction`, `id`) and given again when asked again.
    async fn decide(
        &self,
        reaction: &str,
        id: &str,
        key: Key,
        decide: impl Fn(&mut Slot, &mut DeliveryStats) -> Said + Send + Sync + 'static,
    ) -> Result<Said, BooksError> {
        if let Some(pg) = &self.pg {
            return pg.decide(reaction, id, key, decide).await;
        }
        let mut s = lock(&self.state);
        let State { deliveries, stats } = &mut *s;
        let e = deliveries.entry(key).or_insert_with(Entry::new);
        let said = decide(&mut e.slot, stats);
        let now = e.slot.took_off();
        if now.is_some() {
            e.took_off.send_if_modified(|t| {
                // Once known, it stays: a delivery that flew stays flown.
                let first = t.is_none() || (*t == Some(false) && now == Some(true));
                if first {
                    *t = now;
                }
                first
            });
        }
        Ok(said)
    }

    /// Waits up to `take_off_wait` for the drone of `key` to take off, or
    /// for the delivery to end on the ground.
    async fn take_off(&self, key: Key) -> Result<Option<bool>, BooksError> {
        if let Some(pg) = &self.pg {
            return pg.take_off(key, self.take_off_wait).await;
        }
        let mut took_off = lock(&self.state)
            .deliveries
            .entry(key)
            .or_insert_with(Entry::new)
            .took_off
            .subscribe();
        let flew = match tokio::time::timeout(
            self.take_off_wait,
            took_off.wait_for(Option::is_some),
        )
        .await
        {
            Ok(Ok(t)) => *t,
            _ => None,
        };
        Ok(flew)
    }
}

impl crate::drone_delivery::Delivery for Deliveries {
    async fn on_create_package_and_package_created(
        &self,
        ctx: Context,
        create_package: CreatePackage,
        package_created: PackageCreated,
    ) -> Result<delivery::OnCreatePackageAndPackageCreatedOutcome, HandlerError> {
        use delivery::OnCreatePackageAndPackageCreatedOutcome as Out;
        let key = *ctx.key();
        // The join fires once per delivery: its answer is the delivery's.
        let said = self
            .decide(
                "on_create_package_and_package_created",
                &key.to_string(),
                key,
                move |s, stats| {
                    decide_drone_request(key, s, stats, &create_package, &package_created)
                },
            )
            .await?;
        match said {
            Said::GetDrone(get) => Ok(Out::GetDrone(get)),
            Said::Withdrawn => Ok(Out::DeliveryWithdrawn(DeliveryWithdrawn {})),
            other => Err(other.unexpected("on_create_package_and_package_created")),
        }
    }

    async fn on_package_rejected_or_no_drone_available(
        &self,
        ctx: Context,
        event: delivery::OnPackageRejectedOrNoDroneAvailableTrigger,
    ) -> Result<DeliveryFailed, HandlerError> {
        use delivery::OnPackageRejectedOrNoDroneAvailableTrigger as T;
        let key = *ctx.key();
        let ending = match event {
            T::PackageRejected(r) => Ending::PackageRejected { reason: r.reason },
            T::NoDroneAvailable(r) => Ending::NoDrone { reason: r.reason },
        };
        let said = self
            .decide(
                "on_package_rejected_or_no_drone_available",
                &ctx.event_id().to_string(),
                key,
                move |s, stats| decide_failure(key, s, stats, &ending),
            )
            .await?;
        match said {
            Said::Failed(failed) => Ok(failed),
            other => Err(other.unexpected("on_package_rejected_or_no_drone_available")),
        }
    }

    async fn on_drone_assigned(
        &self,
        ctx: Context,
        event: DroneAssigned,
    ) -> Result<delivery::OnDroneAssignedOutcome, HandlerError> {
        use delivery::OnDroneAssignedOutcome as Out;
        let key = *ctx.key();
        let said = self
            .decide(
                "on_drone_assigned",
                &ctx.event_id().to_string(),
                key,
                move |s, stats| decide_take_off(key, s, stats, &event.drone_id),
            )
            .await?;
        match said {
            Said::Scheduled(scheduled) => Ok(Out::DeliveryScheduled(scheduled)),
            Said::Withdrawn => Ok(Out::DeliveryWithdrawn(DeliveryWithdrawn {})),
            other => Err(other.unexpected("on_drone_assigned")),
        }
    }

    async fn on_drone_arrived(
        &self,
        ctx: Context,
        event: DroneArrived,
    ) -> Result<delivery::OnDroneArrivedOutcome, HandlerError> {
        use delivery::OnDroneArrivedOutcome as Out;
        let key = *ctx.key();
        let said = self
            .decide(
                "on_drone_arrived",
                &ctx.event_id().to_string(),
                key,
                move |s, stats| decide_arrival(key, s, stats, &event),
            )
            .await?;
        match said {
            Said::Completed(completed) => Ok(Out::DeliveryCompleted(completed)),
            Said::Returned(returned) => Ok(Out::PackageReturned(returned)),
            other => Err(other.unexpected("on_drone_arrived")),
        }
    }

    async fn on_reschedule_delivery(
        &self,
        ctx: Context,
        event: RescheduleDelivery,
    ) -> Result<DeliveryRescheduled, HandlerError> {
        let key = *ctx.key();
        let id = ctx.event_id().to_string();
        let said = self
            .decide("on_reschedule_delivery", &id, key, move |s, stats| {
                decide_reschedule(key, s, stats, &event)
            })
            .await?;
        let rescheduled = match said {
            Said::Rescheduled(r) => return Ok(r),
            Said::AwaitTakeOff(r) => r,
            other => return Err(other.unexpected("on_reschedule_delivery")),
        };
        // Before take-off: the plan the drone takes off with has the new
        // course. The flight service hears of it once the drone is up.
        let flew = self.take_off(key).await?;
        let waited = self.take_off_wait;
        let said = self
            .decide(
                "on_reschedule_delivery.passed",
                &id,
                key,
                move |s, stats| decide_after_take_off(key, s, stats, &rescheduled, flew, waited),
            )
            .await?;
        match said {
            Said::Rescheduled(r) => Ok(r),
            other => Err(other.unexpected("on_reschedule_delivery")),
        }
    }

    async fn on_cancel_delivery(
        &self,
        ctx: Context,
        event: CancelDelivery,
    ) -> Result<DeliveryCancelled, HandlerError> {
        let key = *ctx.key();
        let said = self
            .decide(
                "on_cancel_delivery",
                &ctx.event_id().to_string(),
                key,
                move |s, stats| decide_cancel(key, s, stats, &event),
            )
            .await?;
        match said {
            Said::Cancelled(cancelled) => Ok(cancelled),
            other => Err(other.unexpected("on_cancel_delivery")),
        }
    }
}

/// The delivery service's records in PostgreSQL.
struct PgDeliveries {
    db: DroneBooks,
}

/// The counters of [`DeliveryStats`] in the books, and `stats`' values
/// of them.
fn stat_counters(stats: &DeliveryStats) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = vec![
        ("delivery.cancels".into(), stats.cancels),
        (
            "delivery.reschedules_in_flight".into(),
            stats.reschedules_in_flight,
        ),
        (
            "delivery.reschedules_before_take_off".into(),
            stats.reschedules_before_take_off,
        ),
        ("delivery.refused".into(), stats.refused),
        ("delivery.repeated_landings".into(), stats.repeated_landings),
    ];
    for (name, n) in &stats.endings {
        v.push((format!("delivery.endings.{name}"), *n));
    }
    v
}

impl PgDeliveries {
    async fn decide(
        &self,
        reaction: &str,
        id: &str,
        key: Key,
        decide: impl Fn(&mut Slot, &mut DeliveryStats) -> Said + Send + Sync + 'static,
    ) -> Result<Said, BooksError> {
        let t = self.db.tables.clone();
        let delivery = key.to_string();
        let scope = format!("Delivery.{reaction}");
        let id = id.to_string();
        let decide = Arc::new(decide);
        self.db
            .books
            .transaction(move |tx| {
                let (t, delivery, scope, id, decide) = (
                    t.clone(),
                    delivery.clone(),
                    scope.clone(),
                    id.clone(),
                    decide.clone(),
                );
                Box::pin(async move {
                    let table = &t.delivery;
                    let fresh = books::to_json(&Slot::new());
                    tx.execute(
                        &format!(
                            "INSERT INTO {table} (delivery, slot) VALUES ($1, $2) \
                             ON CONFLICT (delivery) DO NOTHING"
                        ),
                        &[&delivery, &fresh],
                    )
                    .await?;
                    let row = tx
                        .query_one(
                            &format!("SELECT slot FROM {table} WHERE delivery = $1 FOR UPDATE"),
                            &[&delivery],
                        )
                        .await?;
                    if let Some(answer) = books::decision(tx, &t, &scope, &id).await? {
                        // Asked again (the event came again after a
                        // crash): the answer given.
                        return books::from_json("a recorded answer", &answer);
                    }
                    let mut slot: Slot = books::from_json("a delivery", row.get(0))?;
                    let mut delta = DeliveryStats::default();
                    let said = decide(&mut slot, &mut delta);
                    let ended: Option<&str> = match &slot.record.phase {
                        Phase::Ended(end) => Some(end.name()),
                        _ => None,
                    };
                    tx.execute(
                        &format!("UPDATE {table} SET slot = $2, ended = $3 WHERE delivery = $1"),
                        &[&delivery, &books::to_json(&slot), &ended],
                    )
                    .await?;
                    for (name, n) in stat_counters(&delta) {
                        books::count(tx, &t, &name, i64::try_from(n).unwrap_or(i64::MAX)).await?;
                    }
                    books::record(tx, &t, &scope, &id, &books::to_json(&said)).await?;
                    Ok(said)
                })
            })
            .await
    }

    /// The record of `key`, if any.
    async fn slot(&self, key: Key) -> Result<Option<Slot>, BooksError> {
        let table = &self.db.tables.delivery;
        self.db
            .json_of("a delivery", "slot", table, key.to_string())
            .await
    }

    /// [`Deliveries::take_off`] on the books: read again every 50 ms (the
    /// take-off may be recorded by another process).
    async fn take_off(&self, key: Key, wait: Duration) -> Result<Option<bool>, BooksError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(flew) = self.slot(key).await?.and_then(|s| s.took_off()) {
                return Ok(Some(flew));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn report(&self) -> Result<crate::system::DeliveryReport, BooksError> {
        let counters = self.db.counters("delivery.").await?;
        let sql = format!("SELECT delivery, slot FROM {}", self.db.tables.delivery);
        let rows = self.db.rows(sql).await?;
        let mut open = 0;
        let mut endings = BTreeMap::new();
        for row in &rows {
            let slot: Slot = books::from_json("a delivery", row.get(1))?;
            match slot.record.phase {
                Phase::Ended(end) => {
                    endings.insert(row.get::<_, String>(0), end);
                }
                _ => open += 1,
            }
        }
        let n = |name: &str| u64::try_from(counters.get(name).copied().unwrap_or(0)).unwrap_or(0);
        let stats = DeliveryStats {
            endings: counters
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("endings.")
                        .map(|e| (e.to_string(), u64::try_from(*v).unwrap_or(0)))
                })
                .collect(),
            cancels: n("cancels"),
            reschedules_in_flight: n("reschedules_in_flight"),
            reschedules_before_take_off: n("reschedules_before_take_off"),
            refused: n("refused"),
            repeated_landings: n("repeated_landings"),
        };
        Ok(crate::system::DeliveryReport {
            open,
            stats,
            endings,
        })
    }
}
