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

use crate::drone_delivery::{flight, Context, DeliveryCancelled, DroneArrived, Key, Location};
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
