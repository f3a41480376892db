//! The participants together: started all in one process, or one per
//! process against a shared broker, and what each reports.

use crate::delivery::{Deliveries, DeliveryStats, Ending};
use crate::driver::{self, DriveError, DriveOptions, Report};
use crate::drone_delivery::{
    self as dd, notifications, Context, CreatePackage, Key, ScheduleDelivery,
};
use crate::fleet::{self, FleetReport, Scheduler};
use crate::flight::{FlightStats, Flights};
use crate::lock;
use crate::packages::{PackageReport, Packages, WEIGHT_LIMIT_KG};
use choreo_runtime::progress::{InstanceTracker, TrackerOptions};
use choreo_runtime::service::{
    HandlerError, ServiceError, ServiceHandle, ServiceOptions, Stores, Topics,
};
use choreo_runtime::SharedBroker;
use example_support::{serve, Server, INGRESS};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The participants of the spec: what `--service` takes, with
/// [`INGRESS`] (the HTTP ingress, its instance tracker, and the driver).
pub const PARTICIPANTS: [&str; 6] = [
    "Ingestion",
    "Package",
    "DroneScheduler",
    "Delivery",
    "Flight",
    "Notifications",
];

/// What every process of a deployment must agree on.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Derives the fleet (and the driver's requests).
    pub seed: u64,
    /// The fleet's size.
    pub drones: usize,
    /// From pick-up to drop-off.
    pub flight_time: Duration,
    /// The heaviest package made.
    pub weight_limit_kg: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: 8,
            drones: 20,
            flight_time: Duration::from_millis(200),
            weight_limit_kg: WEIGHT_LIMIT_KG,
        }
    }
}

/// The ingestion service: takes delivery requests (from the HTTP
/// ingress) and passes them on as packages to make.
#[derive(Clone, Default)]
pub struct Ingestion {
    requests: Arc<AtomicU64>,
}

impl Ingestion {
    /// Requests taken.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl dd::Ingestion for Ingestion {
    async fn on_schedule_delivery(
        &self,
        _ctx: Context,
        event: ScheduleDelivery,
    ) -> Result<CreatePackage, HandlerError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(CreatePackage {
            owner_id: event.owner_id,
            pickup: event.pickup,
            dropoff: event.dropoff,
            deadline: event.deadline,
            package: event.package,
        })
    }
}

#[derive(Default)]
struct Sent {
    by_type: BTreeMap<String, u64>,
    told: HashSet<(Key, &'static str)>,
    repeats: u64,
}

/// The notification service: tells the client how the delivery goes
/// (here: counts what it would tell), once per kind of news.
#[derive(Clone, Default)]
pub struct Notifications {
    sent: Arc<Mutex<Sent>>,
}

impl Notifications {
    /// Notifications sent, by event type, and repeats left unsent.
    pub fn report(&self) -> (BTreeMap<String, u64>, u64) {
        let s = lock(&self.sent);
        (s.by_type.clone(), s.repeats)
    }
}

impl dd::Notifications for Notifications {
    async fn on_delivery_scheduled_or_delivery_rescheduled_or_delivery_completed_or_delivery_failed_or_delivery_cancelled_or_delivery_withdrawn_or_package_returned_or_package_deleted(
        &self,
        ctx: Context,
        event: notifications::OnDeliveryScheduledOrDeliveryRescheduledOrDeliveryCompletedOrDeliveryFailedOrDeliveryCancelledOrDeliveryWithdrawnOrPackageReturnedOrPackageDeletedTrigger,
    ) -> Result<(), HandlerError> {
        use notifications::OnDeliveryScheduledOrDeliveryRescheduledOrDeliveryCompletedOrDeliveryFailedOrDeliveryCancelledOrDeliveryWithdrawnOrPackageReturnedOrPackageDeletedTrigger as T;
        let (kind, repeatable) = match event {
            T::DeliveryScheduled(_) => ("DeliveryScheduled", false),
            // Each reschedule is news.
            T::DeliveryRescheduled(_) => ("DeliveryRescheduled", true),
            T::DeliveryCompleted(_) => ("DeliveryCompleted", false),
            T::DeliveryFailed(_) => ("DeliveryFailed", false),
            T::DeliveryCancelled(_) => ("DeliveryCancelled", false),
            T::DeliveryWithdrawn(_) => ("DeliveryWithdrawn", false),
            T::PackageReturned(_) => ("PackageReturned", false),
            T::PackageDeleted(_) => ("PackageDeleted", false),
        };
        let mut s = lock(&self.sent);
        // An end reported again (a landing reported once per course) is
        // not news.
        if !repeatable && !s.told.insert((*ctx.key(), kind)) {
            s.repeats += 1;
            return Ok(());
        }
        *s.by_type.entry(kind.to_string()).or_default() += 1;
        Ok(())
    }
}

/// Every participant's implementation, with the state tests and reports
/// read. Clones share the state.
#[derive(Clone)]
pub struct Participants {
    /// Ingestion.
    pub ingestion: Ingestion,
    /// Package.
    pub packages: Packages,
    /// DroneScheduler.
    pub scheduler: Scheduler,
    /// Delivery.
    pub deliveries: Deliveries,
    /// Flight.
    pub flights: Flights,
    /// Notifications.
    pub notifications: Notifications,
}

impl Participants {
    /// The participants of a deployment with `settings`: the fleet
    /// derived from its seed and size, all drones free.
    pub fn new(settings: &Settings) -> Self {
        Participants {
            ingestion: Ingestion::default(),
            packages: Packages::new(settings.weight_limit_kg),
            scheduler: Scheduler::new(fleet::generate(settings.seed, settings.drones)),
            // A reschedule before take-off waits for it: at most the
            // GetDrone retries (3.5 s) and a flight, with a margin.
            deliveries: Deliveries::new(Duration::from_secs(30) + settings.flight_time * 4),
            flights: Flights::new(settings.flight_time),
            notifications: Notifications::default(),
        }
    }

    /// Starts `service` (a name of [`PARTICIPANTS`]), or every
    /// participant for `None`.
    pub async fn start(
        &self,
        service: Option<&str>,
        broker: SharedBroker,
        stores: Stores,
        options: ServiceOptions,
    ) -> Result<Vec<ServiceHandle>, ServiceError> {
        match service {
            Some(name) => self.start_one(name, broker, stores, options).await,
            None => {
                let mut handles = Vec::new();
                for name in &PARTICIPANTS {
                    handles.extend(
                        self.start_one(name, broker.clone(), stores.clone(), options.clone())
                            .await?,
                    );
                }
                Ok(handles)
            }
        }
    }

    async fn start_one(
        &self,
        service: &str,
        broker: SharedBroker,
        stores: Stores,
        mut options: ServiceOptions,
    ) -> Result<Vec<ServiceHandle>, ServiceError> {
        let definition = match service {
            "Ingestion" => dd::ingestion::definition(self.ingestion.clone()),
            "Package" => dd::package::definition(self.packages.clone()),
            "DroneScheduler" => dd::drone_scheduler::definition(self.scheduler.clone()),
            "Delivery" => dd::delivery::definition(self.deliveries.clone()),
            "Flight" => dd::flight::definition(self.flights.clone()),
            "Notifications" => dd::notifications::definition(self.notifications.clone()),
            _ => return Ok(Vec::new()),
        };
        if matches!(service, "Delivery" | "Flight") {
            // Their handlers wait (a take-off, a flight) while holding a
            // slot: room enough that the waiting ones never crowd out the
            // events they wait for.
            options.max_in_flight = options.max_in_flight.max(4096);
        }
        Ok(vec![definition.start(broker, stores, options).await?])
    }

    /// What `service` holds now, as one JSON object (every participant's
    /// for `None`).
    pub fn report(&self, service: Option<&str>) -> Value {
        match service {
            None => {
                let mut all = serde_json::Map::new();
                for name in &PARTICIPANTS {
                    all.insert((*name).to_string(), self.report(Some(name)));
                }
                Value::Object(all)
            }
            Some("Ingestion") => json!({ "requests": self.ingestion.requests() }),
            Some("Package") => json!(self.packages.report()),
            Some("DroneScheduler") => json!(self.scheduler.report()),
            Some("Delivery") => json!(DeliveryReport::of(&self.deliveries)),
            Some("Flight") => json!(self.flights.stats()),
            Some("Notifications") => {
                let (sent, repeats) = self.notifications.report();
                json!({ "sent": sent, "repeats_not_sent": repeats })
            }
            Some(_) => Value::Null,
        }
    }
}

/// The delivery service's state: how each delivery ended.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeliveryReport {
    /// Deliveries not ended.
    pub open: usize,
    /// What it has done.
    pub stats: DeliveryStats,
    /// How each delivery ended, by key.
    pub endings: BTreeMap<String, Ending>,
}

impl DeliveryReport {
    /// The report of `deliveries`.
    pub fn of(deliveries: &Deliveries) -> Self {
        DeliveryReport {
            open: deliveries.open(),
            stats: deliveries.stats(),
            endings: deliveries.endings(),
        }
    }
}

/// The reports as tests read them back from a service's last line.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct FinalState {
    /// The service.
    pub service: String,
    /// Its report ([`Participants::report`]).
    pub state: Value,
}

/// The fleet report of a `DroneScheduler` final state.
pub fn fleet_of(state: &Value) -> Option<FleetReport> {
    serde_json::from_value(state.clone()).ok()
}

/// The flight report of a `Flight` final state.
pub fn flights_of(state: &Value) -> Option<FlightStats> {
    serde_json::from_value(state.clone()).ok()
}

/// The package report of a `Package` final state.
pub fn packages_of(state: &Value) -> Option<PackageReport> {
    serde_json::from_value(state.clone()).ok()
}

/// A part of a deployment that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A service did not start.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The instance tracker could not subscribe.
    #[error("the instance tracker cannot subscribe: {0}")]
    Tracker(#[from] choreo_runtime::BrokerError),
    /// The ingress cannot listen.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
}

/// What one process of a deployment runs: some participants (all of them
/// in one process), and the HTTP ingress with its instance tracker when it
/// is the ingress (or everything).
pub struct Node {
    /// The participants' state (only those started here change).
    pub participants: Participants,
    service: Option<String>,
    handles: Vec<ServiceHandle>,
    tracker: Option<Arc<InstanceTracker>>,
    server: Option<Server>,
    broker: SharedBroker,
}

impl Node {
    /// Starts `service` of [`PARTICIPANTS`] or [`INGRESS`] (`None`: every participant and
    /// the ingress) on `broker`, keeping their inbox and joins in `stores`,
    /// under `topics`; the ingress listens on `listen`. Participants start
    /// before the ingress takes requests.
    pub async fn start(
        settings: &Settings,
        service: Option<&str>,
        broker: SharedBroker,
        stores: Stores,
        topics: Topics,
        listen: SocketAddr,
    ) -> Result<Node, StartError> {
        let participants = Participants::new(settings);
        let options = ServiceOptions {
            topics: topics.clone(),
            ..ServiceOptions::default()
        };
        let handles = participants
            .start(service, broker.clone(), stores, options)
            .await?;
        let (tracker, server) = if matches!(service, None | Some(INGRESS)) {
            let tracker = Arc::new(
                InstanceTracker::start(
                    dd::topology(),
                    broker.clone(),
                    TrackerOptions {
                        topics: topics.clone(),
                        ..TrackerOptions::default()
                    },
                )
                .await?,
            );
            let commands = dd::Commands::with_topics(broker.clone(), topics);
            let server = serve(dd::http::router(commands, tracker.clone()), listen).await?;
            (Some(tracker), Some(server))
        } else {
            (None, None)
        };
        Ok(Node {
            participants,
            service: service.map(str::to_string),
            handles,
            tracker,
            server,
            broker,
        })
    }

    /// Where the ingress listens, if it runs here.
    pub fn base_url(&self) -> Option<String> {
        self.server.as_ref().map(Server::base_url)
    }

    /// The instance tracker, if the ingress runs here.
    pub fn tracker(&self) -> Option<&Arc<InstanceTracker>> {
        self.tracker.as_ref()
    }

    /// The broker.
    pub fn broker(&self) -> &SharedBroker {
        &self.broker
    }

    /// Drives deliveries through this node's ingress; when every
    /// participant runs here, the report notes the fleet's, the flights'
    /// and the packages' state at the end.
    pub async fn drive(&self, options: &DriveOptions) -> Result<Report, DriveError> {
        let (Some(url), Some(tracker)) = (self.base_url(), self.tracker.clone()) else {
            return Err(DriveError::Unreachable(
                "(no ingress in this process)".into(),
            ));
        };
        let mut report = driver::drive(&url, tracker, options).await?;
        if self.service.is_none() {
            let fleet = self.participants.scheduler.report();
            let flights = self.participants.flights.stats();
            let packages = self.participants.packages.report();
            report.notes.push(format!(
                "fleet: {} drones, {} assigned now, at most {} at once, {} double assignments; \
                 at most {} in the air, {} turned back, {} course changes",
                fleet.drones,
                fleet.assigned,
                fleet.stats.max_assigned,
                fleet.stats.violations + flights.violations,
                flights.max_in_air,
                flights.turned_back,
                flights.course_changes,
            ));
            report.notes.push(format!(
                "packages: {} delivered, {} deleted, {} rejected",
                packages.live.len(),
                packages.deleted.len(),
                packages.rejected.len()
            ));
        }
        Ok(report)
    }

    /// Stops the ingress (its open requests finish), then the services
    /// (what they took is handled), and returns the state of what ran
    /// here (every participant's when all ran here).
    pub async fn stop(self) -> Value {
        if let Some(server) = self.server {
            if let Err(e) = server.shutdown().await {
                tracing_free_warn(&format!("the ingress stopped badly: {e}"));
            }
        }
        for h in self.handles {
            if let Err(e) = h.shutdown().await {
                tracing_free_warn(&format!("a service stopped badly: {e}"));
            }
        }
        let mut ingress = Value::Null;
        if let Some(tracker) = self.tracker {
            let instances = tracker.instances();
            let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
            for p in &instances {
                if let Some(o) = &p.outcome {
                    let name = o.event_type.rsplit('.').next().unwrap_or_default();
                    *outcomes.entry(name.to_string()).or_default() += 1;
                }
            }
            ingress = json!({
                "instances": instances.len(),
                "settled": instances.iter().filter(|p| p.settled).count(),
                "outcomes": outcomes,
            });
            if let Ok(tracker) = Arc::try_unwrap(tracker) {
                tracker.shutdown().await;
            }
        }
        match self.service.as_deref() {
            Some(INGRESS) => ingress,
            s => self.participants.report(s),
        }
    }
}

fn tracing_free_warn(message: &str) {
    eprintln!("warning: {message}");
}
