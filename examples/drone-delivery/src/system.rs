//! The participants together: started all in one process, or one per
//! process against a shared broker, and what each reports.

use crate::books::{self, Books, BooksError, DroneBooks};
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
    HandlerError, ServiceError, ServiceHandle, ServiceOptions, StatsReader, Stores, Topics,
};
use choreo_runtime::SharedBroker;
use example_support::{serve, HttpClient, Server, INGRESS};
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

impl Settings {
    /// How long the Flight service waits for a course to land before it
    /// gives up on it: twenty flights (a flight with every change of
    /// course and a return takes a few), at least a minute.
    pub fn landing_wait(&self) -> Duration {
        Duration::from_secs(60).max(self.flight_time * 20)
    }
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
    /// The books in PostgreSQL (one row per delivery requested), when kept
    /// there.
    books: Option<DroneBooks>,
}

impl Ingestion {
    /// An ingestion service whose books are in PostgreSQL.
    pub fn with_books(books: DroneBooks) -> Self {
        Ingestion {
            books: Some(books),
            ..Ingestion::default()
        }
    }

    /// Requests taken (by this process).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests taken, as the books have them (in PostgreSQL: by every
    /// process, each delivery once).
    pub async fn books_requests(&self) -> Result<u64, BooksError> {
        let Some(db) = &self.books else {
            return Ok(self.requests());
        };
        let t = db.tables.clone();
        db.books
            .transaction(move |tx| {
                let t = t.clone();
                Box::pin(async move {
                    let row = tx
                        .query_one(&format!("SELECT count(*) FROM {}", t.request), &[])
                        .await?;
                    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
                })
            })
            .await
    }
}

impl dd::Ingestion for Ingestion {
    async fn on_schedule_delivery(
        &self,
        ctx: Context,
        event: ScheduleDelivery,
    ) -> Result<CreatePackage, HandlerError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(db) = &self.books {
            let t = db.tables.clone();
            let key = ctx.key().to_string();
            db.books
                .transaction(move |tx| {
                    let (t, key) = (t.clone(), key.clone());
                    Box::pin(async move {
                        tx.execute(
                            &format!(
                                "INSERT INTO {} (delivery) VALUES ($1) ON CONFLICT DO NOTHING",
                                t.request
                            ),
                            &[&key],
                        )
                        .await?;
                        Ok(())
                    })
                })
                .await?;
        }
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
    /// The books in PostgreSQL (one row per piece of news sent), when
    /// kept there.
    books: Option<DroneBooks>,
}

impl Notifications {
    /// A notification service whose books are in PostgreSQL.
    pub fn with_books(books: DroneBooks) -> Self {
        Notifications {
            books: Some(books),
            ..Notifications::default()
        }
    }

    /// Notifications sent (by this process), by event type, and repeats
    /// left unsent.
    pub fn report(&self) -> (BTreeMap<String, u64>, u64) {
        let s = lock(&self.sent);
        (s.by_type.clone(), s.repeats)
    }

    /// [`Notifications::report`] as the books have it (in PostgreSQL: by
    /// every process).
    pub async fn books_report(&self) -> Result<(BTreeMap<String, u64>, u64), BooksError> {
        let Some(db) = &self.books else {
            return Ok(self.report());
        };
        let repeats = db.counters("notifications.").await?;
        let sql = format!(
            "SELECT kind, count(*) FROM {} GROUP BY kind",
            db.tables.notice
        );
        let sent = db
            .rows(sql)
            .await?
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                )
            })
            .collect::<BTreeMap<String, u64>>();
        let repeats = u64::try_from(repeats.get("repeats").copied().unwrap_or(0)).unwrap_or(0);
        Ok((sent, repeats))
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
        if let Some(db) = &self.books {
            // News sent once per delivery, or once per event for the
            // repeatable: the same event delivered again is not news.
            let t = db.tables.clone();
            let key = ctx.key().to_string();
            let event = if repeatable {
                ctx.event_id().to_string()
            } else {
                String::new()
            };
            db.books
                .transaction(move |tx| {
                    let (t, key, event) = (t.clone(), key.clone(), event.clone());
                    Box::pin(async move {
                        let sent = tx
                            .execute(
                                &format!(
                                    "INSERT INTO {} (delivery, kind, event) VALUES ($1, $2, $3) \
                                     ON CONFLICT DO NOTHING",
                                    t.notice
                                ),
                                &[&key, &kind, &event],
                            )
                            .await?;
                        if sent == 0 && !repeatable {
                            books::count(tx, &t, "notifications.repeats", 1).await?;
                        }
                        Ok(())
                    })
                })
                .await?;
            return Ok(());
        }
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

    /// [`Participants::new`] with their books in PostgreSQL, or in memory
    /// for `None`.
    pub fn with_books(settings: &Settings, books: Option<DroneBooks>) -> Self {
        let Some(books) = books else {
            return Participants::new(settings);
        };
        Participants {
            ingestion: Ingestion::with_books(books.clone()),
            packages: Packages::with_books(settings.weight_limit_kg, books.clone()),
            scheduler: Scheduler::with_books(
                fleet::generate(settings.seed, settings.drones),
                books.clone(),
            ),
            deliveries: Deliveries::with_books(
                Duration::from_secs(30) + settings.flight_time * 4,
                books.clone(),
            ),
            flights: Flights::with_books(
                settings.flight_time,
                settings.landing_wait(),
                books.clone(),
            ),
            notifications: Notifications::with_books(books),
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
    ) -> Result<Vec<ServiceHandle>, StartError> {
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
    ) -> Result<Vec<ServiceHandle>, StartError> {
        let definition = match service {
            "Ingestion" => dd::ingestion::definition(self.ingestion.clone()),
            "Package" => dd::package::definition(self.packages.clone()),
            "DroneScheduler" => {
                self.scheduler.prepare().await?;
                dd::drone_scheduler::definition(self.scheduler.clone())
            }
            "Delivery" => dd::delivery::definition(self.deliveries.clone()),
            "Flight" => {
                self.flights.prepare().await?;
                dd::flight::definition(self.flights.clone())
            }
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

    /// What `service` holds now, as its books have it (in PostgreSQL, or
    /// in memory), as one JSON object (every participant's for `None`);
    /// books that cannot be read give `{"error": …}`.
    pub async fn report(&self, service: Option<&str>) -> Value {
        match service {
            None => {
                let mut all = serde_json::Map::new();
                for name in &PARTICIPANTS {
                    all.insert((*name).to_string(), Box::pin(self.report(Some(name))).await);
                }
                Value::Object(all)
            }
            Some(name) => self
                .report_one(name)
                .await
                .unwrap_or_else(|e| json!({ "error": e.to_string() })),
        }
    }

    async fn report_one(&self, service: &str) -> Result<Value, BooksError> {
        Ok(match service {
            "Ingestion" => json!({ "requests": self.ingestion.books_requests().await? }),
            "Package" => json!(self.packages.books_report().await?),
            "DroneScheduler" => json!(self.scheduler.books_report().await?),
            "Delivery" => json!(self.deliveries.books_report().await?),
            "Flight" => json!(self.flights.books_stats().await?),
            "Notifications" => {
                let (sent, repeats) = self.notifications.books_report().await?;
                json!({ "sent": sent, "repeats_not_sent": repeats })
            }
            _ => Value::Null,
        })
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
    /// The books cannot be read or written.
    #[error(transparent)]
    Books(#[from] BooksError),
}

/// Where the ingress listens, and the bearer token it takes (`--token`).
#[derive(Clone)]
pub struct Ingress {
    /// The address (port 0: any free port).
    pub listen: SocketAddr,
    /// `Authorization: Bearer <token>` required of every request (none:
    /// no check).
    pub token: Option<String>,
}

// Never shows the token.
impl std::fmt::Debug for Ingress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingress")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| ".."))
            .finish()
    }
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
    // `--token`: the ingress lets only it in, and the driver sends it.
    token: Option<String>,
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
        let options = ServiceOptions {
            topics,
            ..ServiceOptions::default()
        };
        let ingress = Ingress {
            listen,
            token: None,
        };
        Node::start_with_books(settings, service, broker, stores, options, ingress, None).await
    }

    /// [`Node::start`] with the services' `options` (their topics those
    /// of the deployment), the ingress's address and token, the
    /// participants' books in PostgreSQL (`Some`) or in memory.
    pub async fn start_with_books(
        settings: &Settings,
        service: Option<&str>,
        broker: SharedBroker,
        stores: Stores,
        options: ServiceOptions,
        ingress: Ingress,
        books: Option<Books>,
    ) -> Result<Node, StartError> {
        let books = match books {
            Some(books) => Some(DroneBooks::open(books).await?),
            None => None,
        };
        let participants = Participants::with_books(settings, books);
        let topics = options.topics.clone();
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
            let mut router = dd::http::router(commands, tracker.clone());
            if let Some(token) = &ingress.token {
                router = router.layer(choreo_runtime::http::bearer(token.clone()));
            }
            let server = serve(router, ingress.listen).await?;
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
            token: ingress.token,
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

    /// Readers of the counts of the services running here (none for the
    /// ingress alone), which read the final counts once they stopped.
    pub fn stats_readers(&self) -> Vec<StatsReader> {
        self.handles
            .iter()
            .map(ServiceHandle::stats_reader)
            .collect()
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
        let client = HttpClient::new(url).with_token(self.token.as_deref());
        let mut report = driver::drive_with(client, tracker, options).await?;
        if self.service.is_none() {
            let p = &self.participants;
            let books = |e: BooksError| DriveError::Books(e.to_string());
            let fleet = p.scheduler.books_report().await.map_err(books)?;
            let flights = p.flights.books_stats().await.map_err(books)?;
            let packages = p.packages.books_report().await.map_err(books)?;
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
            s => self.participants.report(s).await,
        }
    }
}

fn tracing_free_warn(message: &str) {
    eprintln!("warning: {message}");
}
