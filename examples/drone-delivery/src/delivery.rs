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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Where the package waits.
    pub pickup: Location,
    /// Where it goes.
    pub dropoff: Location,
    /// By when.
    pub deadline: Timestamp,
}

/// One delivery as the service knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

struct Entry {
    record: DeliveryRecord,
    /// A reschedule received before take-off, for the plan to come.
    course: Option<(Location, Timestamp)>,
    /// Whether the drone took off (`Some(true)`), or the delivery ended on
    /// the ground (`Some(false)`): what a reschedule before take-off waits
    /// for.
    took_off: watch::Sender<Option<bool>>,
}

impl Entry {
    fn new() -> Self {
        Entry {
            record: DeliveryRecord {
                phase: Phase::Requested,
                plan: None,
                cancelled: None,
                reschedules: 0,
                refused: Vec::new(),
            },
            course: None,
            took_off: watch::Sender::new(None),
        }
    }
}

#[derive(Default)]
struct State {
    deliveries: HashMap<Key, Entry>,
    stats: DeliveryStats,
}

impl State {
    fn entry(&mut self, key: Key) -> &mut Entry {
        self.deliveries.entry(key).or_insert_with(Entry::new)
    }

    fn end(&mut self, key: Key, ending: Ending) {
        *self
            .stats
            .endings
            .entry(ending.name().to_string())
            .or_default() += 1;
        let e = self.entry(key);
        let flew = matches!(e.record.phase, Phase::InFlight { .. });
        e.record.phase = Phase::Ended(ending);
        e.took_off.send_if_modified(|t| {
            let first = t.is_none();
            if first {
                *t = Some(flew);
            }
            first
        });
    }

    /// Refuses a command: recorded, and dead-lettered with `reason`.
    fn refuse(&mut self, key: Key, reason: String) -> HandlerError {
        self.stats.refused += 1;
        self.entry(key).record.refused.push(reason.clone());
        HandlerError::rejected(reason)
    }
}

/// The delivery service: the `Delivery` participant. Clones share one
/// state.
#[derive(Clone)]
pub struct Deliveries {
    state: Arc<Mutex<State>>,
    /// How long a reschedule before take-off waits for the take-off.
    take_off_wait: Duration,
}

impl Deliveries {
    /// A service in which a reschedule before take-off waits up to
    /// `take_off_wait` for the take-off.
    pub fn new(take_off_wait: Duration) -> Self {
        Deliveries {
            state: Arc::new(Mutex::new(State::default())),
            take_off_wait,
        }
    }

    /// The delivery `key`, if known.
    pub fn get(&self, key: &Key) -> Option<DeliveryRecord> {
        lock(&self.state)
            .deliveries
            .get(key)
            .map(|e| e.record.clone())
    }

    /// How each delivery ended, by key (those not ended are left out).
    pub fn endings(&self) -> BTreeMap<String, Ending> {
        lock(&self.state)
            .deliveries
            .iter()
            .filter_map(|(k, e)| match &e.record.phase {
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
            .filter(|e| !matches!(e.record.phase, Phase::Ended(_)))
            .count()
    }

    /// What it has done.
    pub fn stats(&self) -> DeliveryStats {
        lock(&self.state).stats.clone()
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

impl crate::drone_delivery::Delivery for Deliveries {
    async fn on_create_package_and_package_created(
        &self,
        ctx: Context,
        create_package: CreatePackage,
        package_created: PackageCreated,
    ) -> Result<delivery::OnCreatePackageAndPackageCreatedOutcome, HandlerError> {
        use delivery::OnCreatePackageAndPackageCreatedOutcome as Out;
        let key = *ctx.key();
        let mut s = lock(&self.state);
        let e = s.entry(key);
        if let Phase::Ended(end) = &e.record.phase {
            let reason = format!("delivery {key} already ended ({})", ended_with(end));
            return Err(s.refuse(key, reason));
        }
        if let (Phase::AwaitingDrone | Phase::InFlight { .. }, Some(plan)) =
            (&e.record.phase, &e.record.plan)
        {
            // Fired again for a delivery under way: the same request, and
            // nothing goes back a step.
            return Ok(Out::GetDrone(GetDrone {
                package_id: package_created.package_id,
                size: package_created.size,
                weight_kg: package_created.weight_kg,
                pickup: plan.pickup.clone(),
                dropoff: plan.dropoff.clone(),
            }));
        }
        if e.record.cancelled.is_some() {
            s.end(key, Ending::Withdrawn);
            return Ok(Out::DeliveryWithdrawn(DeliveryWithdrawn {}));
        }
        let (dropoff, deadline) = e
            .course
            .take()
            .unwrap_or((create_package.dropoff, create_package.deadline));
        let plan = Plan {
            pickup: create_package.pickup,
            dropoff,
            deadline,
        };
        let get = GetDrone {
            package_id: package_created.package_id,
            size: package_created.size,
            weight_kg: package_created.weight_kg,
            pickup: plan.pickup.clone(),
            dropoff: plan.dropoff.clone(),
        };
        e.record.plan = Some(plan);
        e.record.phase = Phase::AwaitingDrone;
        Ok(Out::GetDrone(get))
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
        let reason = match &ending {
            Ending::PackageRejected { reason } => format!("no package: {reason}"),
            Ending::NoDrone { reason } => format!("no drone: {reason}"),
            _ => String::new(),
        };
        let mut s = lock(&self.state);
        match &s.entry(key).record.phase {
            // The same end reported again: the same answer.
            Phase::Ended(end) if *end == ending => return Ok(DeliveryFailed { reason }),
            Phase::Ended(end) => {
                let reason = format!("delivery {key} already ended ({})", ended_with(end));
                return Err(s.refuse(key, reason));
            }
            _ => {}
        }
        s.end(key, ending);
        Ok(DeliveryFailed { reason })
    }

    async fn on_drone_assigned(
        &self,
        ctx: Context,
        event: DroneAssigned,
    ) -> Result<delivery::OnDroneAssignedOutcome, HandlerError> {
        use delivery::OnDroneAssignedOutcome as Out;
        let key = *ctx.key();
        let mut s = lock(&self.state);
        let e = s.entry(key);
        match (&e.record.phase, &e.record.plan) {
            (Phase::Ended(end), _) => {
                let reason = format!("delivery {key} already ended ({})", ended_with(end));
                Err(s.refuse(key, reason))
            }
            _ if e.record.cancelled.is_some() => {
                // Cancelled while waiting for the drone: it never takes off.
                s.end(key, Ending::Withdrawn);
                Ok(Out::DeliveryWithdrawn(DeliveryWithdrawn {}))
            }
            (_, Some(plan)) => {
                let scheduled = DeliveryScheduled {
                    drone_id: event.drone_id.clone(),
                    pickup: plan.pickup.clone(),
                    dropoff: plan.dropoff.clone(),
                    deadline: plan.deadline,
                };
                e.record.phase = Phase::InFlight {
                    drone_id: event.drone_id,
                };
                e.took_off.send_replace(Some(true));
                Ok(Out::DeliveryScheduled(scheduled))
            }
            (_, None) => Err(HandlerError::rejected(format!(
                "delivery {key} got a drone before its package: no course to fly"
            ))),
        }
    }

    async fn on_drone_arrived(
        &self,
        ctx: Context,
        event: DroneArrived,
    ) -> Result<delivery::OnDroneArrivedOutcome, HandlerError> {
        use delivery::OnDroneArrivedOutcome as Out;
        let key = *ctx.key();
        let ending = if event.returned {
            Ending::Returned {
                drone_id: event.drone_id.clone(),
            }
        } else {
            Ending::Completed {
                drone_id: event.drone_id.clone(),
                location: event.location.clone(),
            }
        };
        let out = match &ending {
            Ending::Returned { drone_id } => Out::PackageReturned(PackageReturned {
                drone_id: drone_id.clone(),
            }),
            _ => Out::DeliveryCompleted(DeliveryCompleted {
                drone_id: event.drone_id,
                location: event.location,
            }),
        };
        let mut s = lock(&self.state);
        match &s.entry(key).record.phase {
            Phase::InFlight { .. } => {
                s.end(key, ending);
                Ok(out)
            }
            Phase::Ended(end) if *end == ending => {
                s.stats.repeated_landings += 1;
                Ok(out)
            }
            Phase::Ended(end) => {
                let reason = format!("delivery {key} already ended ({})", ended_with(end));
                Err(s.refuse(key, reason))
            }
            _ => Err(HandlerError::rejected(format!(
                "delivery {key} landed before it took off"
            ))),
        }
    }

    async fn on_reschedule_delivery(
        &self,
        ctx: Context,
        event: RescheduleDelivery,
    ) -> Result<DeliveryRescheduled, HandlerError> {
        let key = *ctx.key();
        let rescheduled = DeliveryRescheduled {
            dropoff: event.dropoff.clone(),
            deadline: event.deadline,
        };
        let mut took_off = {
            let mut s = lock(&self.state);
            let e = s.entry(key);
            if let Phase::Ended(end) = &e.record.phase {
                let reason = format!(
                    "too late to reschedule delivery {key}: it already ended ({})",
                    ended_with(end)
                );
                return Err(s.refuse(key, reason));
            }
            if e.record.cancelled.is_some() {
                let reason = format!("delivery {key} is cancelled: nothing to reschedule");
                return Err(s.refuse(key, reason));
            }
            e.record.reschedules += 1;
            match &mut e.record.plan {
                Some(plan) => {
                    plan.dropoff = event.dropoff;
                    plan.deadline = event.deadline;
                }
                None => e.course = Some((event.dropoff, event.deadline)),
            }
            if matches!(e.record.phase, Phase::InFlight { .. }) {
                s.stats.reschedules_in_flight += 1;
                return Ok(rescheduled);
            }
            let took_off = e.took_off.subscribe();
            s.stats.reschedules_before_take_off += 1;
            took_off
        };
        // Before take-off: the plan the drone takes off with has the new
        // course. The flight service hears of it once the drone is up.
        let flew = match tokio::time::timeout(
            self.take_off_wait,
            took_off.wait_for(Option::is_some),
        )
        .await
        {
            Ok(Ok(t)) => *t,
            _ => None,
        };
        match flew {
            Some(true) => Ok(rescheduled),
            Some(false) => {
                let mut s = lock(&self.state);
                let reason =
                    format!("delivery {key} ended before take-off: no flight to reschedule");
                Err(s.refuse(key, reason))
            }
            None => {
                let mut s = lock(&self.state);
                let reason = format!(
                    "delivery {key} did not take off within {:?}: reschedule not passed on",
                    self.take_off_wait
                );
                Err(s.refuse(key, reason))
            }
        }
    }

    async fn on_cancel_delivery(
        &self,
        ctx: Context,
        event: CancelDelivery,
    ) -> Result<DeliveryCancelled, HandlerError> {
        let key = *ctx.key();
        let mut s = lock(&self.state);
        let e = s.entry(key);
        if let Phase::Ended(end) = &e.record.phase {
            let reason = format!(
                "too late to cancel delivery {key}: it already ended ({})",
                ended_with(end)
            );
            return Err(s.refuse(key, reason));
        }
        if e.record.cancelled.is_some() {
            let reason = format!("delivery {key} is cancelled already");
            return Err(s.refuse(key, reason));
        }
        // Before take-off the next step withdraws the delivery; in flight
        // the flight service turns the drone back.
        e.record.cancelled = Some(event.reason.clone());
        s.stats.cancels += 1;
        Ok(DeliveryCancelled {
            reason: event.reason,
        })
    }
}
